"""The formulas: likelihood, sample-based scores and memorisation, each a plain function.

Likelihood (models with a density)
    :func:`gaussian_log_likelihood` and :func:`bits_per_pixel`, which puts every model of the
    course on one scale: bits per pixel of the 17-level digits.

Sample-based scores (any generator)
    :func:`fid` (the Fréchet distance, :func:`frechet_distance`, between Gaussians fitted to
    features), :func:`kid` (an unbiased kernel score) and :func:`precision_recall` (k-NN
    manifolds) compare a real and a generated set. They take features ``(N, F)`` or digit
    images ``(N, 1, 8, 8)``, which they first map to features with the digit CNN of
    :mod:`course_lib.metrics.features`. On the 2D mixtures, :func:`mode_coverage` counts the
    modes a generator hits and :func:`mode_balance_kl` how evenly it shares them;
    :func:`mean_pairwise_distance` measures the diversity of a set.

Memorisation
    :func:`nearest_neighbour_distance` and :func:`memorisation_ratio` catch a "generator" that
    returns copies of its training images, which the scores above would rate as perfect.

Distances are computed exactly (``torch.cdist`` without the ``|a|²+|b|²-2ab`` shortcut), in
chunks of rows, and rescaled by a power of two when the points are huge or tiny.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import solve_triangular

from .._core import as_numpy, as_real_array, check_int, check_real, check_seed, resolve_device
from .features import digit_features

_LOG_2PI = math.log(2.0 * math.pi)
_CHUNK = 1024  # rows of a distance matrix computed at once (keeps memory small)
_KID_PRECOMPUTE_MAX = 6000  # kid() precomputes all kernel values up to this many rows in total


# ===================================================================== helpers


def _rank(x) -> int:
    """Number of dimensions of an array, tensor or nested list."""
    if isinstance(x, torch.Tensor):
        return x.dim()
    return np.ndim(x)


def _as_rows(x, name: str) -> np.ndarray:
    """Points ``(N, D)`` or images ``(N, C, H, W)`` (flattened) as a float64 array ``(N, D)``."""
    arr = as_real_array(x, name, ndim=(2, 4))
    return arr.reshape(arr.shape[0], -1)


def _common_scale(*arrays: np.ndarray) -> float:
    """A power of two that brings the largest absolute value of ``arrays`` near 1 when it lies
    beyond 2**±100 (else 1). Distances computed on the arrays divided by it, then multiplied
    by it, are exact to rounding and do not overflow in their squares (points near 1e300)."""
    largest = max(float(np.abs(a).max()) for a in arrays)
    if largest > 2.0**100 or 0 < largest < 2.0**-100:
        return float(np.ldexp(1.0, np.frexp(largest)[1]))
    return 1.0


def _finite_distances(d, scale: float, names: str):
    """``d * scale``, refusing a distance beyond float64's range."""
    out = d * scale
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{names}: distances between these points exceed float64's range "
                         f"(about 1.8e308); scale the data down")
    return out


def _check_same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Refuse two sets of rows that do not live in the same space."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of features per row, "
            f"got {a.shape[1]} and {b.shape[1]}"
        )


def _pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``(len(a), len(b))``, computed exactly (no ``|a|²+|b|²-2ab`` trick)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _nearest_distances_by_products(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Distance from each row of ``x`` to its nearest row of ``r`` (float64 tensors of values
    of order 1, e.g. images in [0, 1]), some ten times faster than :func:`_pairwise_distances`
    on many long rows (28×28 images against a training set of 60,000): the nearest row is
    found through ``|x|² + |r|² - 2 x·r`` (matrix products), then its distance is computed
    directly, so that a copy of a row is at distance exactly 0."""
    r_sq = (r * r).sum(1)
    out = []
    for start in range(0, len(x), 256):
        xc = x[start : start + 256]
        d2 = r_sq[None, :] - 2.0 * (xc @ r.T)  # |x|² added or not, the nearest is the same
        out.append((xc - r[d2.argmin(dim=1)]).norm(dim=1))
    return torch.cat(out)


def _kth_neighbour_radius(points: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in ``points``, itself excluded.

    Row ``i`` of the distance matrix contains ``d(i, i) = 0``; the k-th neighbour is therefore
    the ``(k+1)``-th smallest value of the row.
    """
    radii = []
    for start in range(0, len(points), _CHUNK):
        d = _pairwise_distances(points[start : start + _CHUNK], points)
        radii.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def _inside_union_of_balls(
    queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor
) -> torch.Tensor:
    """For each query, True if it lies within ``radii[j]`` of at least one ``centres[j]``."""
    inside = []
    for start in range(0, len(queries), _CHUNK):
        d = _pairwise_distances(queries[start : start + _CHUNK], centres)
        inside.append((d <= radii[None, :]).any(dim=1))
    return torch.cat(inside)


# ===================================================================== likelihood


def gaussian_log_likelihood(X, mean, cov) -> np.ndarray:
    r"""Log-density of each row of ``X`` under the Gaussian :math:`\mathcal N(\mu, \Sigma)`.

    Implements eq. (2.6) [eq-gauss-ll]:

    .. math::
        \log \mathcal N(x \mid \mu, \Sigma) = -\tfrac12 \big( D \log 2\pi + \log\det\Sigma
        + (x-\mu)^\top \Sigma^{-1} (x-\mu) \big).

    Computed with the Cholesky factor :math:`\Sigma = L L^\top`:
    :math:`\log\det\Sigma = 2\sum_i \log L_{ii}` and the quadratic form is
    :math:`\lVert L^{-1}(x-\mu) \rVert^2` (a triangular solve, never an explicit inverse).

    Parameters
    ----------
    X : array or tensor, shape (N, D) or images (N, C, H, W) (flattened to D = C·H·W)
    mean : shape (D,)
    cov : shape (D, D), symmetric positive definite. No jitter is added: a singular
        covariance raises ``ValueError`` (add ``eps * I`` yourself if that is what you mean).

    Returns
    -------
    np.ndarray, float64, shape (N,): log-density in nats of each row.
    """
    X = _as_rows(X, "X")
    mean = as_numpy(mean, "mean", ndim=(1, 2, 3), dtype=np.float64).reshape(-1)
    cov = as_numpy(cov, "cov", ndim=2, dtype=np.float64)
    D = X.shape[1]
    if mean.shape != (D,):
        raise ValueError(f"mean must have {D} entries (one per feature of X), got {mean.size}")
    if cov.shape != (D, D):
        raise ValueError(f"cov must have shape ({D}, {D}), got {cov.shape}")
    scale = max(float(np.abs(cov).max()), 1e-300)
    if not np.allclose(cov, cov.T, rtol=0.0, atol=1e-8 * scale):
        raise ValueError("cov must be symmetric")
    try:
        L = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError(
            "cov is not positive definite (Cholesky failed): a variance is zero or the "
            "covariance is singular; regularise it, e.g. cov + 1e-3 * I"
        ) from None
    diag = np.diag(L)
    if not np.all(diag > 0):
        raise ValueError("cov is not positive definite (zero pivot in its Cholesky factor)")
    z = solve_triangular(L, (X - mean).T, lower=True)  # (D, N): L^{-1}(x - mu)
    mahalanobis = np.sum(z**2, axis=0)
    log_det = 2.0 * np.sum(np.log(diag))
    return -0.5 * (D * _LOG_2PI + log_det + mahalanobis)


def bits_per_pixel(log_likelihood, n_pixels, n_levels=17) -> float:
    r"""Bits per pixel of discrete ``n_levels``-level images, from a density on dequantised data.

    Implements eq. (2.5) [eq-bpp]:

    .. math::
        \text{bpp} = -\frac{\overline{\log p(y)}}{D \ln 2} + \log_2 L,

    where :math:`y = (k + u)/L \in [0,1]^D` is the dequantised image (grey levels
    :math:`k \in \{0..L-1\}`, :math:`u \sim U[0,1)^D`, see ``load_digits(dequantize=True)``),
    :math:`\log p(y)` is the model's log-density in nats and the bar is the mean over samples.

    Why: the probability of the discrete image is the density integrated over its cell of
    volume :math:`L^{-D}`, :math:`P(k) = L^{-D}\,\mathbb E_u[p((k+u)/L)]`. By Jensen's
    inequality :math:`\log P(k) \ge -D\log L + \mathbb E_u \log p((k+u)/L)`, so the value
    returned is an *upper bound* on the true bits per pixel of the discrete data (Uria et al.
    2013; Theis et al. 2016). A uniform density on :math:`[0,1]^D` (log-density 0) gives
    exactly :math:`\log_2 17 \approx 4.087` bits for the digits: a model must do better than
    that to have learnt anything. Lower is better.

    Parameters
    ----------
    log_likelihood : float or array
        Log-density (nats) of each dequantised sample; the mean is taken.
    n_pixels : int
        Number of pixels D per image (64 for the 8×8 digits).
    n_levels : int
        Number of grey levels L of the discrete data (17 for the digits).
    """
    ll = as_numpy(log_likelihood, "log_likelihood", dtype=np.float64)
    n_pixels = check_int(n_pixels, "n_pixels", minimum=1)
    n_levels = check_int(n_levels, "n_levels", minimum=2)
    return float(-ll.mean() / (n_pixels * math.log(2.0)) + math.log2(n_levels))


# ===================================================================== Fréchet distance


def _check_covariance(sigma: np.ndarray, name: str, dim: int) -> np.ndarray:
    """``sigma`` checked to be a symmetric ``(dim, dim)`` matrix, made exactly symmetric."""
    if sigma.shape != (dim, dim):
        raise ValueError(f"{name} must have shape ({dim}, {dim}), got {sigma.shape}")
    scale = max(float(np.abs(sigma).max()), 1e-300)
    if not np.allclose(sigma, sigma.T, rtol=0.0, atol=1e-6 * scale):
        raise ValueError(f"{name} must be symmetric")
    return 0.5 * (sigma + sigma.T)  # remove rounding asymmetry


def _psd_sqrt(sigma: np.ndarray, name: str) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix via its eigendecomposition."""
    eigval, eigvec = np.linalg.eigh(sigma)
    tol = 1e-6 * max(float(np.abs(eigval).max()), 1e-300)
    if eigval.min() < -tol:
        raise ValueError(
            f"{name} must be positive semi-definite, found eigenvalue {eigval.min():.3g}"
        )
    eigval = np.clip(eigval, 0.0, None)  # tiny negatives are rounding errors
    return (eigvec * np.sqrt(eigval)) @ eigvec.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    r"""Fréchet (2-Wasserstein²) distance between two Gaussians.

    Implements eq. (2.10) [eq-fid]:

    .. math::
        d^2 = \lVert \mu_1 - \mu_2 \rVert^2
              + \operatorname{Tr}\big(\Sigma_1 + \Sigma_2 - 2 (\Sigma_1 \Sigma_2)^{1/2}\big).

    The trace of the matrix square root is computed stably, even for singular (rank-deficient)
    covariances: :math:`\Sigma_1\Sigma_2` has the same eigenvalues as the symmetric PSD matrix
    :math:`M = \Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}`, so
    :math:`\operatorname{Tr}(\Sigma_1\Sigma_2)^{1/2} = \sum_i \sqrt{\lambda_i(M)}`, with
    :math:`\Sigma_1^{1/2}` from ``eigh`` and tiny negative eigenvalues (rounding) clipped to 0.
    The result is clipped at 0 and never NaN.

    Parameters
    ----------
    mu1, mu2 : shape (D,)
    sigma1, sigma2 : shape (D, D), symmetric positive semi-definite.
    """
    mu1 = as_numpy(mu1, "mu1", ndim=1, dtype=np.float64)
    mu2 = as_numpy(mu2, "mu2", ndim=1, dtype=np.float64)
    D = mu1.shape[0]
    if mu2.shape != (D,):
        raise ValueError(f"mu2 must have {D} entries like mu1, got {mu2.shape[0]}")
    sigma1 = _check_covariance(as_numpy(sigma1, "sigma1", ndim=2, dtype=np.float64), "sigma1", D)
    sigma2 = _check_covariance(as_numpy(sigma2, "sigma2", ndim=2, dtype=np.float64), "sigma2", D)
    _psd_sqrt(sigma2, "sigma2")  # only to check that sigma2 is PSD
    root1 = _psd_sqrt(sigma1, "sigma1")
    M = root1 @ sigma2 @ root1
    M = 0.5 * (M + M.T)
    trace_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(M), 0.0, None))))
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)
    return max(value, 0.0)


# ===================================================================== FID, KID, precision/recall
# (real and generated sets of images or features)


def _features(x, name: str, device) -> np.ndarray:
    """Digit images ``(N,1,8,8)`` -> CNN features; 2D arrays ``(N, F)`` are taken as features."""
    if x is None or isinstance(x, (str, bytes)) or (
            isinstance(x, torch.Tensor) and x.device.type == "meta"):
        as_real_array(x, name)  # raises, naming the argument
    rank = _rank(x)
    if rank == 4:
        return digit_features(x, device=device)
    if rank == 2:
        return as_real_array(x, name, ndim=2)
    raise ValueError(
        f"{name} must be digit images (N, 1, 8, 8) or features (N, F), got {rank} dimensions"
    )


def _two_feature_sets(real, fake, device, min_rows: int, why: str):
    """The features of ``real`` and ``fake``, of the same width, at least ``min_rows`` each."""
    device = resolve_device(device)  # checked even when the inputs are features already
    fr = _features(real, "real", device)
    ff = _features(fake, "fake", device)
    _check_same_dim(fr, ff, "real", "fake")
    for name, f in (("real", fr), ("fake", ff)):
        if len(f) < min_rows:
            raise ValueError(f"{name} needs at least {min_rows} samples {why}, got {len(f)}")
    return fr, ff


def fid(real, fake, device=None) -> float:
    """Fréchet Inception Distance, with the digit CNN in place of Inception (Heusel et al. 2017).

    Fits a Gaussian (mean, unbiased covariance) to the features of each set and returns their
    :func:`frechet_distance`, eq. (2.10) [eq-fid]. Lower is better; 0 only for identical statistics.
    FID is biased upwards for small sets: compare models at equal sample sizes, against the
    floor "test split vs train split".

    ``real``, ``fake``: digit images ``(N, 1, 8, 8)`` in [0, 1], or precomputed features
    ``(N, F)`` (e.g. from :func:`digit_features`), at least 2 rows each.
    """
    fr, ff = _two_feature_sets(real, fake, device, 2, "to estimate a covariance")
    # np.cov of a single feature column is 0-d: reshape keeps it (F, F).
    cov_real = np.cov(fr, rowvar=False).reshape(fr.shape[1], fr.shape[1])
    cov_fake = np.cov(ff, rowvar=False).reshape(ff.shape[1], ff.shape[1])
    return frechet_distance(fr.mean(0), cov_real, ff.mean(0), cov_fake)


def _polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """k(x, y) = (xᵀy / d + 1)³, the kernel of KID."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def _mmd2_unbiased(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    r"""Unbiased estimate of MMD² from the kernel matrices of samples ``x`` (m) and ``y`` (n).

    ``kxx[i, j] = k(x_i, x_j)`` (m×m), ``kyy`` (n×n), ``kxy[i, j] = k(x_i, y_j)`` (m×n).

    Implements eq. (2.11) [eq-kid]:

    .. math::
        \widehat{\text{MMD}}^2 = \frac{1}{m(m-1)}\sum_{i \ne j} k(x_i, x_j)
        + \frac{1}{n(n-1)}\sum_{i \ne j} k(y_i, y_j) - \frac{2}{mn}\sum_{i,j} k(x_i, y_j).

    Leaving out the diagonal terms :math:`k(x_i, x_i)` is what makes it unbiased: its
    expectation is exactly 0 when both samples come from the same distribution (so single
    estimates can be negative).
    """
    m, n = kxy.shape
    sum_xx = kxx.sum() - np.trace(kxx)
    sum_yy = kyy.sum() - np.trace(kyy)
    return float(sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * kxy.sum() / (m * n))


def _kid_estimates(fr, ff, n_subsets: int, subset_size: int, seed: int) -> np.ndarray:
    """The ``n_subsets`` estimates of MMD² that :func:`kid` averages."""
    # For moderate sizes, compute every kernel value once; the subsets then only index them.
    precomputed = len(fr) + len(ff) <= _KID_PRECOMPUTE_MAX
    if precomputed:
        k_rr, k_ff = _polynomial_kernel(fr, fr), _polynomial_kernel(ff, ff)
        k_rf = _polynomial_kernel(fr, ff)
    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets)
    for s in range(n_subsets):
        i = rng.choice(len(fr), subset_size, replace=False)
        j = rng.choice(len(ff), subset_size, replace=False)
        if precomputed:
            kxx, kyy, kxy = k_rr[np.ix_(i, i)], k_ff[np.ix_(j, j)], k_rf[np.ix_(i, j)]
        else:
            x, y = fr[i], ff[j]
            kxx, kyy = _polynomial_kernel(x, x), _polynomial_kernel(y, y)
            kxy = _polynomial_kernel(x, y)
        values[s] = _mmd2_unbiased(kxx, kyy, kxy)
    return values


def kid(real, fake, n_subsets=100, subset_size=None, seed=0, device=None):
    """Kernel Inception Distance (Bińkowski et al. 2018) with the digit CNN's features.

    The unbiased MMD² of eq. (2.11) [eq-kid] with the cubic polynomial kernel
    ``k(x, y) = (xᵀy/d + 1)³``, averaged over ``n_subsets`` random subsets of ``subset_size``
    rows drawn (without replacement) from each set. Unlike FID it has no bias from the sample
    size: its expectation is 0 when real and fake come from the same distribution.

    Parameters
    ----------
    real, fake : digit images ``(N, 1, 8, 8)`` in [0, 1] or features ``(N, F)``.
    n_subsets : int >= 1
    subset_size : int >= 2 or None (default: ``min(1000, len(real), len(fake))``).
    seed : int, seed of the subset draws.

    Returns
    -------
    (mean, std) : floats, mean and standard deviation of the estimate over the subsets.
    """
    n_subsets = check_int(n_subsets, "n_subsets", minimum=1)
    seed = check_seed(seed, allow_none=False)
    fr, ff = _two_feature_sets(real, fake, device, 2, "for the unbiased estimator")
    largest = min(len(fr), len(ff))
    if subset_size is None:
        subset_size = min(1000, largest)
    subset_size = check_int(subset_size, "subset_size", minimum=2, maximum=largest)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below
        values = _kid_estimates(fr, ff, n_subsets, subset_size, seed)
    if not np.all(np.isfinite(values)):
        largest = max(float(np.abs(fr).max()), float(np.abs(ff).max()))
        raise ValueError(
            f"real, fake: KID overflows float64 with features this large (up to {largest:.3g}): "
            "its cubic kernel (x.y/d + 1)**3 exceeds 1.8e308; KID is not scale-free, so "
            "compare features of ordinary size (e.g. from digit_features)")
    return float(values.mean()), float(values.std())


def precision_recall(real, fake, k=3, device=None):
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    Around every real feature vector put a ball whose radius is the distance to its k-th
    nearest real neighbour (itself excluded); the union of the balls estimates the manifold of
    real data. **Precision** = fraction of fake samples inside the real manifold (are the
    samples realistic?). **Recall** = fraction of real samples inside the fake manifold, built
    the same way from the fakes (does the model cover the data?). Both in [0, 1], higher is
    better.

    Parameters
    ----------
    real, fake : digit images ``(N, 1, 8, 8)`` in [0, 1] or features ``(N, F)``.
    k : int, 1 <= k < min(len(real), len(fake)); the paper uses k = 3.

    Returns
    -------
    (precision, recall) : floats.
    """
    k = check_int(k, "k", minimum=1)
    fr, ff = _two_feature_sets(real, fake, device, 2, "to have neighbours")
    if k >= min(len(fr), len(ff)):
        raise ValueError(
            f"k must be smaller than the number of real and fake samples, got k={k} with "
            f"{len(fr)} real and {len(ff)} fake"
        )
    return _precision_recall(torch.from_numpy(fr), torch.from_numpy(ff), k)


def _precision_recall(tr: torch.Tensor, tf: torch.Tensor, k: int, radius_real=None):
    """:func:`precision_recall` on checked feature tensors; ``radius_real``: the real set's
    k-th neighbour radii if already known (the evaluation protocol computes them once)."""
    if radius_real is None:
        radius_real = _kth_neighbour_radius(tr, k)
    radius_fake = _kth_neighbour_radius(tf, k)
    precision = _inside_union_of_balls(tf, tr, radius_real).double().mean().item()
    recall = _inside_union_of_balls(tr, tf, radius_fake).double().mean().item()
    return float(precision), float(recall)


# ===================================================================== 2D mixtures


def mode_coverage(samples, centres, std, n_std=3.0, min_share=0.1) -> dict:
    """Modes captured, high-quality fraction and mode balance of samples from a mixture.

    A sample is *high quality* when it lies within ``n_std * std`` of its nearest mode centre
    (VEEGAN's definition). A mode is *captured* when its high-quality samples number at least
    ``min_share`` times its fair share ``N / M`` of the ``N`` samples (``M`` modes): with the
    default 0.1 and 2,500 samples, 32 samples on the ring (8 modes), 10 on the grid (25 modes).
    ``modes_any`` counts instead every mode with at least one high-quality sample (the looser
    count that the published tables use), so a mode hit by a single stray sample counts there
    but not in ``modes``.

    The balance is PacGAN's "reverse KL" (Lin et al. 2018): the Kullback–Leibler divergence
    ``KL(h ‖ u) = Σ_k h_k log(M h_k)`` in nats from the histogram ``h`` of the high-quality
    samples over the modes to the uniform ``u = 1/M`` of the data, eq. (5.11) [gan-mode-kl]:
    0 when every mode holds the same share, ``log M`` when all sit on one mode. Empty modes add
    nothing to the sum, so it is finite under collapse, and it is computed on the high-quality
    samples only: it measures how the generator shares its mass between the modes it hits, the
    modes and the high-quality fraction the rest. With no high-quality sample at all it is
    reported as ``log M``, its worst value.

    Parameters
    ----------
    samples : (N, D) generated points.
    centres : (M, D) mode centres (as returned by ``ring_of_gaussians`` / ``grid_of_gaussians``).
    std : float > 0, standard deviation of each mode.
    n_std : float > 0, the radius in units of ``std`` (3 in the papers).
    min_share : float in [0, 1], the fraction of its fair share ``N / M`` that a mode needs to
        count as captured (0: one high-quality sample suffices, as in ``modes_any``).

    Returns
    -------
    dict with ``modes`` (int, captured modes by the ``min_share`` rule), ``modes_any`` (int,
    modes with at least one high-quality sample), ``high_quality`` (float, fraction of
    high-quality samples), ``balance_kl`` (float, nats, the reverse KL above) and ``counts``
    (int array (M,), high-quality samples per mode).
    """
    x = as_numpy(samples, "samples", ndim=2, dtype=np.float64)
    c = as_numpy(centres, "centres", ndim=2, dtype=np.float64)
    _check_same_dim(x, c, "samples", "centres")
    std = check_real(std, "std", minimum=0.0, strict_min=True)
    n_std = check_real(n_std, "n_std", minimum=0.0, strict_min=True)
    min_share = check_real(min_share, "min_share", minimum=0.0, maximum=1.0)
    d = _pairwise_distances(torch.from_numpy(x), torch.from_numpy(c)).numpy()
    nearest = d.argmin(axis=1)
    high_quality = d[np.arange(len(x)), nearest] <= n_std * std
    counts = np.bincount(nearest[high_quality], minlength=len(c))
    threshold = max(min_share * len(x) / len(c), 1.0)
    return {
        "modes": int((counts >= threshold).sum()),
        "modes_any": int((counts > 0).sum()),
        "high_quality": float(high_quality.mean()),
        "balance_kl": mode_balance_kl(counts),
        "counts": counts,
    }


def mode_balance_kl(counts) -> float:
    """PacGAN's mode balance, eq. (5.11) [gan-mode-kl]: ``KL(h ‖ uniform) = Σ_k h_k log(M h_k)``.

    ``counts``: (M,) non-negative numbers of samples per mode; ``h = counts / counts.sum()``.
    Nats; 0 for equal counts, ``log M`` for one occupied mode (and, by convention, for all-zero
    counts). See :func:`mode_coverage`.
    """
    n = as_numpy(counts, "counts", ndim=1, dtype=np.float64)
    if len(n) == 0 or np.any(n < 0):
        raise ValueError(f"counts must be a non-empty array of non-negative numbers, got {n!r}")
    if n.sum() == 0:
        return float(np.log(len(n)))
    h = n[n > 0] / n.sum()
    return float(max(np.sum(h * np.log(len(n) * h)), 0.0))


# ===================================================================== memorisation


def nearest_neighbour_distance(samples, reference) -> np.ndarray:
    """Euclidean distance from each sample to its nearest row of ``reference``.

    ``samples`` ``(N, D)`` or images ``(N, C, H, W)``; ``reference`` likewise (images are
    compared in pixel space, flattened). Returns float64 ``(N,)``.
    """
    x, r = _as_rows(samples, "samples"), _as_rows(reference, "reference")
    _check_same_dim(x, r, "samples", "reference")
    scale = _common_scale(x, r)
    x, r = torch.from_numpy(x / scale), torch.from_numpy(r / scale)
    out = []
    for start in range(0, len(x), _CHUNK):
        out.append(_pairwise_distances(x[start : start + _CHUNK], r).min(dim=1).values)
    return _finite_distances(torch.cat(out).numpy(), scale, "samples, reference")


def memorisation_ratio(samples, train, test) -> float:
    """How close generated samples are to the training set, relative to fresh real data.

    ``median NN distance(samples → train) / median NN distance(test → train)``.

    How to read it: held-out real images (the test split) are as far from the training set as
    new, never-seen data should be; a model that generalises produces samples about that far,
    so the ratio is **about 1**. A model that copies training images produces samples at
    distance 0 from the training set: the ratio goes **towards 0** (below ~0.5 deserves a look
    at the nearest neighbours). A ratio well above 1 means samples unlike any training image
    (often blurry or broken samples), which FID and precision will show. A perfect FID with a
    ratio near 0 is the signature of memorisation.

    ``samples``, ``train``, ``test``: images ``(N, C, H, W)`` or rows ``(N, D)`` of the same
    dimension.
    """
    samples = _as_rows(samples, "samples")
    train = _as_rows(train, "train")
    test = _as_rows(test, "test")
    _check_same_dim(train, test, "train", "test")
    _check_same_dim(samples, train, "samples", "train")
    scale = _common_scale(samples, train, test)  # the ratio does not depend on the scale
    samples, train, test = samples / scale, train / scale, test / scale
    reference = float(np.median(nearest_neighbour_distance(test, train)))
    if reference == 0.0:
        raise ValueError("test has a median distance of 0 to train: test contains training rows")
    return float(np.median(nearest_neighbour_distance(samples, train))) / reference


# ===================================================================== diversity


def mean_pairwise_distance(X) -> float:
    """Mean Euclidean distance between two different rows (images flattened): diversity."""
    x = _as_rows(X, "X")
    if len(x) < 2:
        raise ValueError(f"X needs at least 2 rows, got {len(x)}")
    scale = _common_scale(x)
    x = torch.from_numpy(x / scale)
    d = _pairwise_distances(x, x)
    return float(_finite_distances(float(d.sum() / (len(x) * (len(x) - 1))), scale, "X"))

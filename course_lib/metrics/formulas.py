"""How to evaluate a generative model of images: likelihoods, sample-based scores, memorisation.

Likelihood (models with a density)
    :func:`gaussian_log_likelihood` and :func:`bits_per_pixel`, which puts every model of the
    course on one scale: bits per pixel of the 17-level digits.

Sample-based scores (any generator)
    Digit images are first mapped to features by a small CNN trained on the training split
    (:func:`digit_classifier`, :func:`digit_features`); then :func:`fid` (Fréchet distance
    between Gaussians fitted to the features, :func:`frechet_distance`), :func:`kid` (an
    unbiased kernel score) and :func:`precision_recall` (k-NN manifolds) compare real and
    generated sets. On the 2D mixtures, :func:`mode_coverage` counts the modes a generator hits.

Memorisation
    :func:`nearest_neighbour_distance` and :func:`memorisation_ratio` catch a "generator" that
    returns copies of its training images, which the scores above would rate as perfect.

The digit CNN is the course's fixed feature network, as Inception-v3 is FID's: its trained
weights ship with the package (``course_lib/assets/``, made by ``tools/ship_classifier.py`` with
:func:`_train_classifier`, on the CPU with a fixed seed), so every machine scores with the same
features and nothing is ever downloaded. If that file is missing or damaged, the network is
trained the first time it is needed (a few seconds) and cached on disk instead.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._core import (
    as_numpy,
    as_real_array,
    cache_dir,
    check_choice,
    check_images,
    check_int,
    check_real,
    check_seed,
    load_verified,
    resolve_device,
    save_verified,
)

__all__ = [
    "gaussian_log_likelihood",
    "bits_per_pixel",
    "frechet_distance",
    "DigitCNN",
    "digit_classifier",
    "digit_features",
    "classifier_accuracy",
    "fid",
    "kid",
    "precision_recall",
    "mode_coverage",
    "mode_balance_kl",
    "nearest_neighbour_distance",
    "memorisation_ratio",
    "predict_digits",
    "class_accuracy",
    "mean_pairwise_distance",
    "Evaluation",
    "evaluate",
    "evaluate_floor",
    "comparison_table",
    "Table",
    "separated",
    "EVAL_SIZE",
    "EVAL_DRAWS",
    "EVAL_SEED",
    "EVAL_METRICS",
    "EVAL_GROUPS",
    "CLASSIFIER_MIN_ACCURACY",
]

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
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of features per row, "
            f"got {a.shape[1]} and {b.shape[1]}"
        )


def _pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``(len(a), len(b))``, computed exactly (no ``|a|²+|b|²-2ab`` trick)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


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
    from scipy.linalg import solve_triangular

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


# ===================================================================== digit classifier

_CLASSIFIER_VERSION = "v1"
# Everything that determines the trained weights; its hash names the cache file, so changing
# any of it retrains instead of loading stale weights.
_CLASSIFIER_CONFIG = {
    "version": _CLASSIFIER_VERSION,
    "architecture": "conv32-conv32-pool-conv64-pool-fc128-fc10",
    "seed": 0,
    "epochs": 20,
    "batch_size": 64,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "augment": "shift1",
    "split": "train",
    "threads": 1,
}
_CLASSIFIER_MEMO: dict = {}  # (cache file, device) -> trained module, per process


class DigitCNN(nn.Module):
    """A small CNN for the 8×8 digits; its 128 penultimate activations are the FID features.

    ``(N,1,8,8)`` → conv 3×3 (32) → conv 3×3 (32) → max-pool → conv 3×3 (64) → max-pool
    → 256 → fully connected 128 (ReLU: the *features*) → 10 logits.
    """

    n_features = 128

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 2 * 2, self.n_features)
        self.fc2 = nn.Linear(self.n_features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 8x8 -> 4x4
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)  # 4x4 -> 2x2
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


#: Where the shipped weights live; their file name carries the configuration's hash, so a
#: changed configuration finds no shipped file and trains its own network.
_ASSETS = Path(__file__).resolve().parent / "assets"


def _classifier_file_name() -> str:
    digest = hashlib.sha256(
        json.dumps(_CLASSIFIER_CONFIG, sort_keys=True).encode("utf-8")
    ).hexdigest()[:12]
    return f"digit_cnn_{_CLASSIFIER_VERSION}_{digest}.pt"


def _classifier_path() -> Path:
    """The cache file a classifier trained on this machine is saved to."""
    return cache_dir() / _classifier_file_name()


def _shipped_classifier_path() -> Path:
    """The weights shipped with the package (``tools/ship_classifier.py`` writes them)."""
    return _ASSETS / _classifier_file_name()


def _random_shifts(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by -1, 0 or +1 pixel in each direction (zeros come in at the border)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n,), generator=generator)
    dx = torch.randint(0, 3, (n,), generator=generator)
    out = torch.empty_like(x)
    for oy in range(3):
        for ox in range(3):
            mask = (dy == oy) & (dx == ox)
            out[mask] = padded[mask, :, oy : oy + h, ox : ox + w]
    return out


def _train_classifier() -> DigitCNN:
    """Train :class:`DigitCNN` on the training split, on the CPU, deterministically.

    Runs on one CPU thread: the network is tiny, so one thread is as fast on an idle machine,
    far faster on a busy one (parallel test workers), and the float summation order, hence the
    weights, does not depend on the machine's number of cores.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_classifier_one_thread()
    finally:
        torch.set_num_threads(threads)


def _train_classifier_one_thread() -> DigitCNN:
    from .data import load_digits

    cfg = _CLASSIFIER_CONFIG
    X, y = load_digits(cfg["split"])
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    # Weight initialisation uses torch's global RNG: fork it so the caller's RNG is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg["seed"])
        model = DigitCNN()
    gen = torch.Generator().manual_seed(cfg["seed"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    model.train()
    for _ in range(cfg["epochs"]):
        order = torch.randperm(len(X), generator=gen)
        for start in range(0, len(X), cfg["batch_size"]):
            idx = order[start : start + cfg["batch_size"]]
            xb = _random_shifts(X[idx], gen)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


#: The digit classifier must label at least this fraction of the test split correctly,
#: after training and after every load from the cache; otherwise it is not used (measured:
#: 0.989 with the configuration above).
CLASSIFIER_MIN_ACCURACY = 0.95


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _classifier_problem(model: DigitCNN) -> str | None:
    """Why ``model`` must not be used (non-finite weights, low test accuracy), or None."""
    from .data import load_digits

    if not all(bool(torch.isfinite(p).all()) for p in model.state_dict().values()):
        return "its weights contain NaN or infinite values"
    X, y = load_digits("test")
    device = next(model.parameters()).device  # check it where it is; never move the caller's model
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(X).to(device)).cpu()
    if not bool(torch.isfinite(logits).all()):
        return "its outputs contain NaN or infinite values"
    accuracy = float((logits.argmax(1) == torch.from_numpy(y)).float().mean())
    if accuracy < CLASSIFIER_MIN_ACCURACY:
        return f"its test accuracy is {accuracy:.3f} < {CLASSIFIER_MIN_ACCURACY}"
    return None


def _load_classifier(path: Path) -> DigitCNN:
    """The network stored at ``path``; a ``ValueError`` says why it must not be used."""
    model = DigitCNN()
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # unreadable, or made for another architecture
        raise ValueError(f"it cannot be loaded ({type(exc).__name__})") from exc
    why = _classifier_problem(model)
    if why is not None:
        raise ValueError(why)
    return model


def _load_verified_classifier(path: Path, what: str = "cached") -> DigitCNN | None:
    """The classifier stored at ``path`` if the file is intact and the network passes the
    sanity check; ``None`` if there is no file.

    The file's SHA-256 is stored next to it (``.sha256``) when it is written: a truncated or
    altered file, a file for another architecture or a network with broken weights is reported
    with a warning (``what``: "cached" or "shipped") and ``None`` is returned, so that the
    caller falls back (shipped → cache → training). The checks are
    :func:`course_lib._core.load_verified`'s, shared with the cached fits.
    """
    then = "retraining it" if what == "cached" else "using the cache or retraining"
    return load_verified(path, _load_classifier, label=f"the {what} digit classifier {path}",
                         then=then, stacklevel=3)


def digit_classifier(device=None) -> DigitCNN:
    """The trained digit CNN in eval mode, on ``device`` (``None``: :func:`get_device`).

    Loads the weights shipped in ``course_lib/assets/`` (``weights_only=True``) and verifies
    them: the checksum, finite weights, and a test accuracy of at least
    :data:`CLASSIFIER_MIN_ACCURACY`. Without a usable shipped file (reported if damaged), it
    uses a classifier trained on this machine: loaded from the cache folder
    (``$COURSE_CACHE_DIR``, else ``<repo>/.cache``, else ``~/.cache/course_lib``, else a
    temporary folder) and verified the same way, or trained on the CPU (seed 0, a few
    seconds) and saved there with its SHA-256 beside it. A file that fails is reported and
    rebuilt, never used. The module is memoised per process: do not modify it in place.
    """
    device = resolve_device(device)
    path = _classifier_path()
    key = (str(path), str(device))
    if key in _CLASSIFIER_MEMO:
        return _CLASSIFIER_MEMO[key]
    model = _load_verified_classifier(_shipped_classifier_path(), "shipped")
    if model is None:
        model = _load_verified_classifier(path)
    if model is None:
        # The caller may be inside torch.no_grad() (e.g. digit_features): training needs grads.
        with torch.inference_mode(False), torch.enable_grad():
            model = _train_classifier()
        why = _classifier_problem(model)
        if why is not None:  # pragma: no cover - the configuration above reaches 0.989
            raise RuntimeError(f"the digit classifier failed its sanity check after training: {why}")
        try:
            save_verified(model.state_dict(), path)
        except OSError as exc:  # a read-only or full cache folder costs a retraining next time
            warnings.warn(f"could not cache the digit classifier at {path}: {exc}", stacklevel=2)
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    _CLASSIFIER_MEMO[key] = model
    return model


def _check_digit_images(X, name: str, device) -> torch.Tensor:
    x = check_images(X, name, device=device)
    if tuple(x.shape[1:]) != (1, 8, 8):
        raise ValueError(f"{name} must be digit images of shape (N, 1, 8, 8), got {tuple(x.shape)}")
    return x


@torch.no_grad()
def digit_features(X, device=None) -> np.ndarray:
    """Penultimate-layer features ``(N, 128)`` of the digit CNN for images ``(N, 1, 8, 8)`` in [0, 1].

    Deterministic: no augmentation or dropout at inference time. Returned as float64 NumPy.
    """
    return _cnn_features(X, resolve_device(device)).cpu().numpy().astype(np.float64)


@torch.no_grad()
def _cnn_features(X, device) -> torch.Tensor:
    """The CNN's features of the images ``X`` as a float32 tensor on ``device``; the class
    logits are ``digit_classifier(device).fc2`` of them."""
    x = _check_digit_images(X, "X", device)
    model = digit_classifier(device)
    return torch.cat([model.features(x[i : i + 4096]) for i in range(0, len(x), 4096)])


@torch.no_grad()
def classifier_accuracy(split: str = "test", device=None) -> float:
    """Fraction of the digits of ``split`` ("train", "test" or "all") the CNN labels correctly."""
    from .data import load_digits

    check_choice(split, "split", ("train", "test", "all"))
    device = resolve_device(device)
    X, y = load_digits(split)
    logits = digit_classifier(device)(torch.from_numpy(X).to(device))
    return float((logits.argmax(dim=1).cpu() == torch.from_numpy(y)).float().mean())


# ===================================================================== FID, KID, precision/recall


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


# ===================================================================== the evaluation protocol
#
# One protocol for every chapter: the same reference set, the same set sizes for real and
# generated images, several independent draws, mean ± standard deviation. Its constants are
# fixed here once for the whole course (and documented on the book's evaluation page).

#: Generated images per draw: the size of the digits test split, so that real and generated
#: sets always have the same size.
EVAL_SIZE = 359
#: Independent draws of a generated set; every score is reported as mean ± std over them.
EVAL_DRAWS = 10
#: Seed of the first draw (draw ``d`` uses ``EVAL_SEED + d``).
EVAL_SEED = 0
#: The scores of the protocol, in the order of its tables.
EVAL_METRICS = ("fid", "kid", "precision", "recall", "classes", "diversity", "memorisation")
#: The same scores in two groups, for tables that must fit a page's text column
#: (``comparison_table(..., groups=EVAL_GROUPS)``): distance to the test split, then coverage,
#: diversity and originality.
EVAL_GROUPS = (("fid", "kid", "precision", "recall"), ("classes", "diversity", "memorisation"))
#: What each score measures and which way is better (for tables and the book page).
EVAL_DESCRIPTIONS = {
    "fid": "Fréchet distance of CNN features to the test split (lower is better)",
    "kid": "kernel distance (unbiased MMD², cubic kernel) to the test split (lower is better; 0 = same distribution)",
    "precision": "fraction of generated images inside the test split's k-NN manifold (higher: more realistic)",
    "recall": "fraction of test images inside the generated set's k-NN manifold (higher: more diverse)",
    "classes": "digit classes (of 10) that receive at least half their share of the samples",
    "diversity": "mean pixel-space distance between two generated images",
    "memorisation": "median NN distance to the train split, relative to the test split's (≈1 generalises, →0 copies)",
}

_REFERENCE_MEMO: dict = {}  # device -> dict of reference quantities
_PR_K = 3  # the k of precision and recall in the protocol (Kynkäänniemi et al.'s choice)


def _reference(device) -> dict:
    """Test-split features, class shares and the memorisation reference, computed once."""
    from .data import load_digits

    key = (str(_classifier_path()), str(device))
    if key not in _REFERENCE_MEMO:
        X_test, y_test = load_digits("test")
        X_train, _ = load_digits("train")
        features = digit_features(X_test, device=device)
        _REFERENCE_MEMO[key] = {
            "features": features,
            "radius": _kth_neighbour_radius(torch.from_numpy(features), _PR_K),
            "class_share": np.bincount(y_test, minlength=10) / len(y_test),
            "test": X_test,
            "train": X_train,
            "nn_test_train": float(np.median(nearest_neighbour_distance(X_test, X_train))),
        }
    return _REFERENCE_MEMO[key]


@torch.no_grad()
def predict_digits(X, device=None) -> np.ndarray:
    """The digit classifier's label (0-9) of each image ``(N, 1, 8, 8)`` in [0, 1]."""
    device = resolve_device(device)
    return _labels_of_features(_cnn_features(X, device), device)


@torch.no_grad()
def _labels_of_features(features: torch.Tensor, device) -> np.ndarray:
    return digit_classifier(device).fc2(features).argmax(1).cpu().numpy()


def class_accuracy(images, labels, device=None) -> float:
    """Fraction of ``images`` that the digit classifier labels as the requested ``labels``.

    The check of a conditional generator: ask for digit ``labels[i]``, get ``images[i]``.
    """
    pred = predict_digits(images, device=device)
    labels = np.asarray(labels)
    if labels.shape != pred.shape or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {len(pred)} integers (one per image), got {labels.shape}")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError("labels must be digit classes 0..9")
    return float((pred == labels).mean())


def mean_pairwise_distance(X) -> float:
    """Mean Euclidean distance between two different rows (images flattened): diversity."""
    x = _as_rows(X, "X")
    if len(x) < 2:
        raise ValueError(f"X needs at least 2 rows, got {len(x)}")
    scale = _common_scale(x)
    x = torch.from_numpy(x / scale)
    d = _pairwise_distances(x, x)
    return float(_finite_distances(float(d.sum() / (len(x) * (len(x) - 1))), scale, "X"))


def _score_draw(fake: np.ndarray, ref: dict, device) -> dict:
    """Every score of the protocol for one generated set of ``EVAL_SIZE``-like images."""
    features = _cnn_features(fake, device)  # one pass of the CNN: features and labels
    ff = features.cpu().numpy().astype(np.float64)
    fr = ref["features"]
    k_mean, _ = kid(fr, ff, n_subsets=1, subset_size=min(len(fr), len(ff)))
    precision, recall = _precision_recall(torch.from_numpy(fr), torch.from_numpy(ff), _PR_K,
                                          ref["radius"])
    counts = np.bincount(_labels_of_features(features, device), minlength=10)
    classes = int((counts >= 0.5 * ref["class_share"] * len(fake)).sum())
    nn_fake = float(np.median(nearest_neighbour_distance(fake, ref["train"])))
    return {
        "fid": fid(fr, ff),
        "kid": k_mean,
        "precision": precision,
        "recall": recall,
        "classes": float(classes),
        "diversity": mean_pairwise_distance(fake),
        "memorisation": nn_fake / ref["nn_test_train"],
    }


class Evaluation:
    """Scores of one model under the course's evaluation protocol: every draw kept.

    ``ev["fid"]`` is ``(mean, std)`` over the draws; ``ev.draws["fid"]`` the values;
    ``ev.format("fid")`` a string ``"12.3 ± 0.4"``. In a notebook it displays as a table.
    """

    def __init__(self, draws: dict, name: str = "model", n_draws: int = 0, size: int = 0):
        self.draws = {k: np.asarray(v, dtype=np.float64) for k, v in draws.items()}
        self.name = name
        self.n_draws = n_draws
        self.size = size

    def __getitem__(self, metric: str) -> tuple[float, float]:
        v = self.draws[metric]
        return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0

    def __iter__(self):
        return iter(self.draws)

    def keys(self):
        return self.draws.keys()

    def mean(self, metric: str) -> float:
        return self[metric][0]

    def std(self, metric: str) -> float:
        return self[metric][1]

    def format(self, metric: str, digits: int | None = None) -> str:
        """``"mean ± std"`` with a sensible number of digits for the metric."""
        m, s = self[metric]
        if digits is None:
            digits = {"fid": 1, "kid": 1, "classes": 1, "diversity": 2}.get(metric, 3)
        return f"{m:.{digits}f} ± {s:.{digits}f}"

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={self.format(k)}" for k in self.draws)
        return f"Evaluation({self.name!r}: {body}; {self.n_draws} draws of {self.size})"

    def _repr_html_(self) -> str:
        return comparison_table({self.name: self})._repr_html_()


class Table:
    """A small table that shows as one HTML table in a notebook and as Markdown in text.

    ``columns``: header names; ``rows``: dict row label -> list of cell strings.
    ``groups``: None (one table), or the columns split into groups (sequences of column names,
    each column in exactly one group): then it shows as one table per group, each with the
    row labels, one under the other, so that a table with many columns fits a page's text
    column. The title goes above the first.
    """

    def __init__(self, columns, rows: dict, title: str = "", groups=None):
        self.columns = list(columns)
        self.rows = {str(k): [str(c) for c in v] for k, v in rows.items()}
        self.title = title
        if groups is not None:
            groups = [list(g) for g in groups]
            flat = [c for g in groups for c in g]
            if (any(not g for g in groups) or sorted(flat) != sorted(self.columns)
                    or len(set(flat)) != len(flat)):
                raise ValueError(f"groups must split the columns {self.columns} into non-empty "
                                 f"groups, each column in exactly one; got {groups}")
        self.groups = groups

    def _parts(self):
        """[(columns, rows)] for each table shown: one, or one per group."""
        if self.groups is None:
            return [(self.columns, self.rows)]
        index = {c: i for i, c in enumerate(self.columns)}
        return [(g, {k: [v[index[c]] for c in g] for k, v in self.rows.items()})
                for g in self.groups]

    def __str__(self) -> str:
        tables = []
        for columns, rows in self._parts():
            head = ["", *columns]
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join([k, *v]) + " |" for k, v in rows.items()]
            tables.append("\n".join(lines))
        return (self.title + "\n\n" if self.title else "") + "\n\n".join(tables)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from html import escape

        tables = []
        for i, (columns, rows) in enumerate(self._parts()):
            head = "".join(f"<th>{escape(c)}</th>" for c in ["", *columns])
            body = "".join(
                "<tr><th>" + escape(k) + "</th>" + "".join(f"<td>{escape(c)}</td>" for c in v)
                + "</tr>"
                for k, v in rows.items()
            )
            caption = f"<caption>{escape(self.title)}</caption>" if self.title and i == 0 else ""
            tables.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                          "</table>")
        return "\n".join(tables)


def comparison_table(evaluations: dict, metrics=EVAL_METRICS, title: str = "",
                     groups=None) -> Table:
    """One row per model, one column per score, cells ``"mean ± std"`` (:class:`Table`).

    ``groups``: show the scores as several tables, e.g. :data:`EVAL_GROUPS` (two tables of
    four and three scores, which fit a page's text column where seven do not).
    """
    metrics = list(metrics)
    rows = {name: [ev.format(m) for m in metrics] for name, ev in evaluations.items()}
    return Table(metrics, rows, title=title, groups=groups)


def separated(a: Evaluation, b: Evaluation, metric: str, n_sigma: float = 2.0) -> bool:
    """True when the means of ``metric`` differ by more than ``n_sigma`` times their spread.

    The spread is ``sqrt(std_a² + std_b²)`` with the per-draw standard deviations: a
    conservative rule (the standard error of a mean over ``EVAL_DRAWS`` draws is about three
    times smaller). The book interprets only differences for which this is True.
    """
    n_sigma = check_real(n_sigma, "n_sigma", minimum=0.0)
    (ma, sa), (mb, sb) = a[metric], b[metric]
    return abs(ma - mb) > n_sigma * math.hypot(sa, sb)


def _draw(sampler, d: int, size: int, seed: int):
    if callable(sampler):
        out = sampler(size, (seed + d) % 2**64)  # a valid seed, even from seed = 2**64 - 1
        if isinstance(out, tuple):  # e.g. GaussianMixture.sample returns (X, y)
            out = out[0]
        return out
    return sampler[d * size : (d + 1) * size]


def evaluate(
    sampler,
    *,
    name: str = "model",
    n_draws: int = EVAL_DRAWS,
    size: int = EVAL_SIZE,
    seed: int = EVAL_SEED,
    device=None,
) -> Evaluation:
    """The course's evaluation protocol for a generator of 8×8 digits.

    ``n_draws`` times, draw ``size`` images and score them against the **test split** (359
    real images never used for training): FID, KID, precision and recall on the digit CNN's
    features, the number of digit classes covered (by the digit classifier), the diversity
    (mean pairwise pixel distance) and the memorisation ratio against the train split. Every
    score is reported as mean ± standard deviation over the draws (:class:`Evaluation`), so
    that a difference between two models can be compared with the spread of each.

    Parameters
    ----------
    sampler : a function ``sampler(n, seed)`` returning ``n`` images ``(n, 1, 8, 8)`` in
        [0, 1] (or a tuple whose first item they are) that draws fresh images for every
        ``seed``; or an array of at least ``n_draws * size`` images, cut into ``n_draws``
        disjoint sets.
    name : label of the model in tables.
    n_draws : >= 2. size : >= 10 (FID needs a covariance; precision/recall need neighbours).
    seed : draw ``d`` calls ``sampler(size, seed + d)`` (modulo 2**64, so that every seed
        the course accepts, up to 2**64 - 1, gives valid seeds).

    Raises ``ValueError`` when a draw has the wrong shape or values outside [0, 1] (clip the
    samples first: the scores compare images, not raw model outputs), or when two draws are
    identical (the sampler ignores its seed, and the spread would be a lie).
    """
    n_draws = check_int(n_draws, "n_draws", minimum=2)
    size = check_int(size, "size", minimum=10)
    seed = check_seed(seed, allow_none=False)
    device = resolve_device(device)
    if not callable(sampler):
        if _rank(sampler) != 4 or len(sampler) < n_draws * size:
            raise ValueError(
                f"sampler must be a function sampler(n, seed) or at least n_draws*size = "
                f"{n_draws * size} images (N, 1, 8, 8)"
            )
    ref = _reference(device)
    draws: dict[str, list] = {k: [] for k in EVAL_METRICS}
    previous = None
    for d in range(n_draws):
        images = _draw(sampler, d, size, seed)
        fake = _check_digit_images(images, f"draw {d} of the sampler", "cpu").numpy()
        if len(fake) != size:
            raise ValueError(f"sampler returned {len(fake)} images for draw {d}, expected {size}")
        if previous is not None and np.array_equal(previous, fake):
            raise ValueError(
                "sampler returned identical images for two seeds: it must draw fresh images "
                "for each seed (e.g. pass the seed on to the model's sample method)"
            )
        previous = fake
        for k, v in _score_draw(fake, ref, device).items():
            draws[k].append(v)
    return Evaluation(draws, name=name, n_draws=n_draws, size=size)


def evaluate_floor(*, n_draws: int = EVAL_DRAWS, size: int = EVAL_SIZE, seed: int = EVAL_SEED,
                   device=None) -> Evaluation:
    """The real-vs-real floor: :func:`evaluate` of a "model" that returns random training images.

    Each draw takes ``size`` distinct images of the train split: real digits from the same
    distribution as the test split, so their scores are the best a generator can expect at
    this set size (FID is biased upwards at small sizes; KID is not). Their memorisation ratio
    is 0 by construction: they *are* training images.
    """
    from .data import load_digits

    X_train, _ = load_digits("train")

    def real(n, s):
        rng = np.random.default_rng(s)
        return X_train[rng.choice(len(X_train), n, replace=False)]

    return evaluate(real, name="real (floor)", n_draws=n_draws, size=size, seed=seed, device=device)

"""A pairwise MRF over binarised 8×8 digits (fully visible Boltzmann machine)."""

from __future__ import annotations

import math

import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from .._core import (
    Float,
    Int,
    as_tensor,
    check_bool,
    check_choice,
    check_input,
    check_int,
    check_params,
    check_real,
    dense_input_tags,
    make_generator,
    resolve_device,
)
from .._core import progress as _progress  # `progress` is also an argument name below
from ._ais import _anneal, _log_mean_exp
from ._lattice import _conditional


def binarize_digits(X, threshold: float = 0.5) -> torch.Tensor:
    """``{0, 1}`` float images ``(N, 1, 8, 8)``: 1 where the intensity exceeds ``threshold``."""
    threshold = check_real(threshold, "threshold", minimum=0.0, maximum=1.0)
    X = as_tensor(X, "X", ndim=4, min_value=0.0, max_value=1.0)
    return (X > threshold).to(torch.float32)


class PairwiseMRF(BaseEstimator):
    """A pairwise MRF with a coupling between every pair of pixels and a bias per pixel.

    Over spins ``s = 2x - 1 ∈ {-1, +1}^D`` of ``D = C·H·W`` pixels::

        p(s) = exp(½ sᵀ W s + bᵀ s) / Z,    W symmetric, zero diagonal,

    i.e. an Ising model on the complete graph with free couplings: a fully visible
    Boltzmann machine. The conditional of one pixel is ``p(s_i = +1 | rest) = σ(2 a_i)``
    with ``a_i = Σ_j W_ij s_j + b_i`` (eq. (4.9) [mrf-gibbs-conditional] with ``β = 1``).

    Parameters
    ----------
    l2 : float
        Weight-decay strength on the couplings (and, 100 times weaker, on the biases, so
        that always-off border pixels do not drive a bias to -∞).
    n_chains : int
        Persistent chains for SML.
    device : None, "cpu" or "cuda"

    Learned state: ``W_`` ``(D, D)``, ``b_`` ``(D,)``, ``image_shape_``, ``history_``.
    """

    #: Every hyperparameter and what it must be, checked by :meth:`fit`
    #: (:func:`course_lib._core.check_params`); ``device`` is read, not just checked.
    _hyperparameters = {"l2": Float(minimum=0.0), "n_chains": Int(minimum=1),
                        "device": resolve_device}

    def __init__(self, l2: float = 1e-3, n_chains: int = 256, device=None):
        # stored as given (scikit-learn's rule: clone and set_params rely on it); validated
        # where they are used
        self.l2 = l2
        self.n_chains = n_chains
        self.device = device

    def __sklearn_tags__(self):
        """Input: ``{0, 1}`` images ``(N, C, H, W)`` (4-D only), dense, no NaN; no ``y``."""
        return dense_input_tags(super().__sklearn_tags__(), two_d_array=False)  # (N, C, H, W) only

    # ------------------------------------------------------------ data
    def _to_spins(self, X, threshold=None, name="X", check_shape=True) -> torch.Tensor:
        X = as_tensor(X, name, ndim=4, device=self._device)
        if threshold is not None:
            X = binarize_digits(X, threshold)
        elif bool(((X != 0) & (X != 1)).any()):
            raise ValueError(
                f"{name} must contain only 0 and 1 (binarised images); pass threshold=0.5 "
                "or use binarize_digits(X) for [0, 1] grey images"
            )
        if check_shape and hasattr(self, "image_shape_") and tuple(X.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"{name} has image shape {tuple(X.shape[1:])}, expected {self.image_shape_}"
            )
        return (2 * X - 1).flatten(1)

    @property
    def _device(self):
        return resolve_device(self.device)

    def _check_fitted(self):
        if not hasattr(self, "W_"):
            raise NotFittedError("this PairwiseMRF is not fitted yet: call fit(X) first")

    # ------------------------------------------------------------ pseudo-likelihood
    @staticmethod
    def _pll_per_image(s, W, b) -> torch.Tensor:
        """Σ_i log σ(2 s_i a_i) for each image, with ``a = s W + b`` (``a_i = Σ_j W_ij s_j +
        b_i``): eq. (4.15) [mrf-pseudolikelihood] for the pairwise MRF."""
        return torch.nn.functional.logsigmoid(2 * s * (s @ W + b)).sum(1)

    def pseudo_log_likelihood(self, X, threshold=None, reduction: str = "mean"):
        """Pseudo-log-likelihood ``Σ_i log p(x_i | x_rest)`` in nats per image.

        ``reduction="mean"`` gives the average over images (float), ``"none"`` an ``(N,)``
        array.
        """
        self._check_fitted()
        check_choice(reduction, "reduction", ("mean", "none"))
        s = self._to_spins(X, threshold)
        with torch.no_grad():
            pll = self._pll_per_image(s, self.W_, self.b_)
        return float(pll.mean()) if reduction == "mean" else pll.cpu().numpy()

    # ------------------------------------------------------------ likelihood (AIS)
    @staticmethod
    def _coupling_term(s, W) -> torch.Tensor:
        """½ sᵀ W s for each image: the pairwise part of ``log p̃(s)``."""
        return 0.5 * ((s @ W) * s).sum(1)

    def estimate_log_partition(
        self, n_chains: int = 200, n_steps: int = 300, seed=0, return_weights: bool = False
    ):
        """``log Z = log Σ_s exp(½ sᵀ W s + bᵀ s)`` estimated by annealed importance sampling.

        Implements eq. (4.3) [mrf-ais] with the couplings switched on gradually: the chains start
        from the field-only model ``exp(bᵀ s)`` (independent pixels, sampled exactly, with
        ``log Z_0 = Σ_i log(2 cosh b_i)`` exact) and move through ``p_t(s) ∝ exp(t · ½ sᵀ
        W s + bᵀ s)`` for ``n_steps`` evenly spaced ``t`` from 0 to 1, one sequential Gibbs
        sweep at each, accumulating ``log w = Σ_k (t_k - t_{k-1}) · ½ s_{k-1}ᵀ W s_{k-1}``.
        ``E[w] = Z / Z_0`` exactly, so the estimate ``log Z_0 + log mean(w)`` is, by
        Jensen's inequality, *below* ``log Z`` on average (a stochastic lower bound): held-out
        log-likelihoods computed with it are too high, bits per pixel too low, by about the
        Monte Carlo error or less. Returns ``log Z`` in nats (and, with
        ``return_weights=True``, the ``(n_chains,)`` log weights: their spread gives the
        Monte Carlo error, :func:`~course_lib.mrf.ais_standard_error`).
        """
        self._check_fitted()
        n_chains = check_int(n_chains, "n_chains", minimum=2)
        n_steps = check_int(n_steps, "n_steps", minimum=1)
        return_weights = check_bool(return_weights, "return_weights")
        dev = self._device
        gen = make_generator(seed, dev)
        W, b = self.W_.to(dev, torch.float32), self.b_.to(dev, torch.float32)
        p_up = torch.sigmoid(2 * b)  # the field-only model: independent pixels
        s = torch.where(torch.rand(n_chains, len(b), generator=gen, device=dev) < p_up, 1.0, -1.0)
        log_w = _anneal(
            s,
            torch.linspace(0.0, 1.0, n_steps + 1, dtype=torch.float64).tolist(),
            lambda s: self._coupling_term(s, W),
            lambda s, t: self._gibbs(s, t * W, b, 1, gen, "sequential"),
        )
        b64 = b.double()
        log_z0 = float(torch.logaddexp(b64, -b64).sum())
        estimate = log_z0 + _log_mean_exp(log_w)
        return (estimate, log_w.cpu().numpy()) if return_weights else estimate

    def score_samples(self, X, threshold=None, log_partition=None, seed=0):
        """``log p(x) = ½ sᵀ W s + bᵀ s - log Z`` in nats for each ``{0, 1}`` image ``(N,)``.

        ``log_partition``: ``log Z`` from :meth:`estimate_log_partition` (pass it to score
        several sets with one estimate); by default it is estimated here with the default
        settings and ``seed``. Since the AIS estimate of ``log Z`` is low on average, these
        log-likelihoods are high on average by the same amount.
        """
        self._check_fitted()
        s = self._to_spins(X, threshold)
        if log_partition is None:
            log_partition = self.estimate_log_partition(seed=seed)
        else:
            log_partition = check_real(log_partition, "log_partition")
        W, b = self.W_.to(s.device, torch.float64), self.b_.to(s.device, torch.float64)
        s = s.double()
        return (self._coupling_term(s, W) + s @ b - log_partition).cpu().numpy()

    def bits_per_pixel(self, X, threshold=None, log_partition=None, seed=0) -> float:
        """Held-out bits per *binary* pixel: ``-mean log₂ p(x) / D`` over the images ``X``.

        An exact discrete likelihood (no dequantisation): 1 bit per pixel is what fair coins
        score. Not comparable with :func:`course_lib.metrics.bits_per_pixel` of 17-level
        grey digits. ``log_partition`` and ``seed``: as in :meth:`score_samples`; the AIS
        estimate makes the result slightly optimistic (too low) on average.
        """
        log_p = self.score_samples(X, threshold, log_partition, seed)
        return float(-log_p.mean() / (self.W_.shape[0] * math.log(2.0)))

    # ------------------------------------------------------------ fitting
    def fit(
        self,
        X,
        y=None,
        method: str = "pseudolikelihood",
        n_epochs: int | None = None,
        lr: float | None = None,
        batch_size: int = 100,
        threshold=None,
        seed=0,
        progress: bool = False,
    ) -> PairwiseMRF:
        """Learn ``W`` and ``b`` from ``{0, 1}`` images ``(N, C, H, W)``.

        ``threshold``: binarise ``[0, 1]`` images first (e.g. ``0.5``).

        - ``"pseudolikelihood"`` (default: 300 full-batch Adam steps, ``lr=0.05``):
          maximise the mean pseudo-log-likelihood minus the L2 penalty.
        - ``"sml"`` (default: 30 epochs of minibatches of ``batch_size``, ``lr=0.02``):
          gradient ascent with eq. (4.14) [mrf-likelihood-gradient], ``∂/∂W_ij = E_data[s_i s_j]
          - E_model[s_i s_j]`` and ``∂/∂b_i = E_data[s_i] - E_model[s_i]``, the model
          expectations taken over ``n_chains`` persistent chains advanced by one Gibbs
          sweep per minibatch (persistent contrastive divergence, Tieleman 2008).

        ``history_`` holds ``"pseudo_log_likelihood"`` (per image, on the training data)
        after every epoch.
        """
        check_choice(method, "method", ("pseudolikelihood", "sml"))
        progress = check_bool(progress, "progress")
        X = check_input(X, "X")
        s = self._to_spins(X, threshold, check_shape=False)
        image_shape = tuple(as_tensor(X, "X", ndim=4).shape[1:])
        params = check_params(self, self._hyperparameters)
        gen = make_generator(seed, params["device"])
        # start: no couplings, biases matching the pixel means (independent pixels)
        b0 = torch.atanh(s.mean(0).clamp(-0.98, 0.98))
        chains = None
        default_epochs, default_lr = _FIT_DEFAULTS[method]
        n_epochs = default_epochs if n_epochs is None else check_int(n_epochs, "n_epochs", minimum=1)
        lr = default_lr if lr is None else check_real(lr, "lr", minimum=0.0, strict_min=True)
        if method == "pseudolikelihood":
            W, b, history = _fit_pseudolikelihood(s, b0, params["l2"], n_epochs, lr, progress)
        else:
            batch_size = check_int(batch_size, "batch_size", minimum=1)
            W, b, chains, history = _fit_sml(s, b0, params["l2"], params["n_chains"], n_epochs,
                                             lr, batch_size, gen, make_generator(seed, "cpu"),
                                             progress)
        if not (torch.isfinite(W).all() and torch.isfinite(b).all()):
            raise RuntimeError("training diverged (non-finite parameters): lower lr")
        # only now, after everything succeeded, is the model changed (a failed refit leaves
        # the previous fit intact)
        self.W_, self.b_ = W, b
        self.image_shape_ = image_shape
        self.history_ = history
        if chains is not None:
            self.chains_ = chains
        elif hasattr(self, "chains_"):
            del self.chains_
        return self

    # ------------------------------------------------------------ sampling
    @staticmethod
    def _gibbs(s, W, b, n_sweeps, gen, scan):
        """``n_sweeps`` Gibbs sweeps over the D pixels, vectorised over the chains."""
        n, D = s.shape
        s = s.clone()
        for _ in range(n_sweeps):
            order = (
                torch.randperm(D, generator=gen, device=s.device) if scan == "random" else range(D)
            )
            u = torch.rand(n, D, generator=gen, device=s.device)
            for k, i in enumerate(order):
                a_i = s @ W[:, i] + b[i]
                s[:, i] = torch.where(u[:, k] < _conditional(a_i, 1.0), 1.0, -1.0)
        return s

    def sample(self, n_samples: int, n_sweeps: int = 200, seed=None, scan: str = "sequential",
               init=None):
        """``n_samples`` images ``(n_samples, C, H, W)`` in ``{0, 1}`` by Gibbs sampling from
        random noise.

        Each of the ``n_samples`` chains starts from independent fair coins (or from ``init``,
        ``{0, 1}`` images) and runs ``n_sweeps`` sweeps; one sweep visits the ``D`` pixels
        in order (``scan="sequential"``) or in a fresh random order (``"random"``), each
        update drawing a pixel from its conditional given all others.
        """
        self._check_fitted()
        n = check_int(n_samples, "n_samples", minimum=1)
        n_sweeps = check_int(n_sweeps, "n_sweeps", minimum=0)
        check_choice(scan, "scan", ("sequential", "random"))
        dev = self._device
        gen = make_generator(seed, dev)
        D = self.W_.shape[0]
        if init is None:
            s = torch.where(torch.rand(n, D, generator=gen, device=dev) < 0.5, -1.0, 1.0)
        else:
            s = self._to_spins(init, None, "init")
            if s.shape[0] != n:
                raise ValueError(f"init has {s.shape[0]} images, expected n_samples={n}")
        s = self._gibbs(s, self.W_.to(dev), self.b_.to(dev), n_sweeps, gen, scan)
        return ((s + 1) / 2).reshape(n, *self.image_shape_)


# ------------------------------------------------------------ the two learners of fit()

#: Default ``(n_epochs, lr)`` of :meth:`PairwiseMRF.fit` per method.
_FIT_DEFAULTS = {"pseudolikelihood": (300, 0.05), "sml": (30, 0.02)}



def _fit_pseudolikelihood(s, b0, l2, n_epochs, lr, show_progress):
    """Full-batch Adam on the mean pseudo-log-likelihood (eq. (4.15) [mrf-pseudolikelihood])
    minus the L2 penalty; ``W`` is the symmetric, zero-diagonal part of a free matrix ``U``.
    Returns ``(W, b, history)``."""
    off_diag = 1.0 - torch.eye(s.shape[1], device=s.device)
    U = torch.zeros_like(off_diag, requires_grad=True)
    b = b0.clone().requires_grad_(True)
    opt = torch.optim.Adam([U, b], lr=lr)
    history = {"pseudo_log_likelihood": []}
    for _ in _progress(range(n_epochs), show_progress, desc="pseudo-likelihood"):
        W = (U + U.T) * off_diag / 2
        pll = PairwiseMRF._pll_per_image(s, W, b).mean()
        loss = -pll + l2 * (W**2).sum() / 2 + l2 / 100 * (b**2).sum() / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        history["pseudo_log_likelihood"].append(float(pll.detach()))
    return ((U + U.T) * off_diag / 2).detach(), b.detach(), history


def _fit_sml(s, b0, l2, n_chains, n_epochs, lr, batch_size, gen, cpu_gen, show_progress):
    """Persistent contrastive divergence (Tieleman 2008): for every minibatch, one Gibbs sweep
    of the ``n_chains`` persistent chains, then one step along eq. (4.14)
    [mrf-likelihood-gradient] with step size ``lr / sqrt(1 + epoch/5)``.
    Returns ``(W, b, chains, history)``."""
    N, D = s.shape
    off_diag = 1.0 - torch.eye(D, device=s.device)
    W, b = torch.zeros(D, D, device=s.device), b0.clone()
    chains = torch.where(torch.rand(n_chains, D, generator=gen, device=s.device) < 0.5, -1.0, 1.0)
    history = {"pseudo_log_likelihood": []}
    for epoch in _progress(range(n_epochs), show_progress, desc="SML"):
        order = torch.randperm(N, generator=cpu_gen).to(s.device)
        step = lr / math.sqrt(1.0 + epoch / 5.0)
        for start in range(0, N, batch_size):
            batch = s[order[start : start + batch_size]]
            chains = PairwiseMRF._gibbs(chains, W, b, 1, gen, "sequential")
            W, b = _sml_step(W, b, batch, chains, off_diag, step, l2)
        history["pseudo_log_likelihood"].append(float(PairwiseMRF._pll_per_image(s, W, b).mean()))
    return W, b, chains, history


def _sml_step(W, b, batch, chains, off_diag, step, l2):
    """One ascent step along eq. (4.14) [mrf-likelihood-gradient], ``E_data[φ] - E_model[φ]``
    (data: the minibatch; model: the chains), with weight decay; returns the new ``(W, b)``."""
    grad_W = batch.T @ batch / len(batch) - chains.T @ chains / len(chains)
    grad_b = batch.mean(0) - chains.mean(0)
    return W + step * (grad_W * off_diag - l2 * W), b + step * (grad_b - l2 / 100 * b)

"""Denoising a binary image with an Ising prior."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from .._core import (
    as_tensor,
    check_binary,
    check_bool,
    check_choice,
    check_input,
    check_int,
    check_real,
    dense_input_tags,
    make_generator,
    resolve_device,
)
from ._lattice import _gibbs_sweep, _ising_energy, _neighbour_sum, checkerboard_masks


def _check_labels(image, name: str) -> torch.Tensor:
    """A {0, 1} image of shape (H, W), H, W ≥ 2, as a float tensor."""
    t = as_tensor(image, name, ndim=2, dtype=torch.float32, device="cpu")
    if t.shape[0] < 2 or t.shape[1] < 2:
        raise ValueError(f"{name} must be at least 2×2, got shape {tuple(t.shape)}")
    check_binary(t, name, values=(0, 1))
    return t


class BinaryDenoiser(BaseEstimator):
    """Restore a binary image from a noisy copy with an Ising prior (Geman & Geman 1984).

    Model: the clean image ``y ∈ {0,1}^{H×W}`` has the Ising prior with coupling
    ``coupling`` (open boundary), and each pixel is flipped independently with probability
    ``p`` (binary symmetric channel). In spins ``s = 2y - 1``, ``t = 2z - 1``, the posterior
    is ``p(y | z) ∝ exp(-E(y; z))`` with the energy of :meth:`energy`, where the data weight
    is ``η = ½ ln((1 - p) / p)``.

    Give ``data_weight`` (``η > 0``) or ``noise_rate`` (``p ∈ (0, 0.5)``), not both; or
    neither, and call :meth:`fit` (:meth:`fit_noise_rate`) to estimate the noise rate by EM.
    After a fit, the estimated ``noise_rate_`` is used by :meth:`denoise`. The constructor
    only stores its arguments (scikit-learn's rule); they are validated where they are used.
    """

    METHODS = ("icm", "gibbs", "anneal", "mean_field", "graphcut")

    def __init__(self, coupling: float = 1.0, data_weight: float | None = None, noise_rate=None):
        self.coupling = coupling
        self.data_weight = data_weight
        self.noise_rate = noise_rate

    def __sklearn_tags__(self):
        """Input: one ``{0, 1}`` image ``(H, W)`` (a 2-D array), dense, no NaN; no ``y``."""
        return dense_input_tags(super().__sklearn_tags__(), two_d_array=True)

    def _coupling(self) -> float:
        return check_real(self.coupling, "coupling")

    @staticmethod
    def _check_noise_rate(p, name: str) -> float:
        return check_real(p, name, minimum=0.0, maximum=0.5, strict_min=True, strict_max=True)

    @staticmethod
    def weight_from_noise_rate(p: float) -> float:
        """``η = ½ ln((1 - p) / p)``: the binary symmetric channel in Ising form.

        ``p(t_i | s_i) = (1 - p)`` if ``t_i = s_i`` else ``p``, which equals
        ``sqrt(p (1 - p)) · exp(η s_i t_i)``.
        """
        p = BinaryDenoiser._check_noise_rate(p, "noise_rate")
        return 0.5 * math.log((1.0 - p) / p)

    def _eta(self) -> float:
        """The data weight in use: from the fitted ``noise_rate_``, else from the constructor's
        ``noise_rate`` or ``data_weight`` (exactly one of them)."""
        if hasattr(self, "noise_rate_"):
            return self.weight_from_noise_rate(self.noise_rate_)
        if self.noise_rate is not None and self.data_weight is not None:
            raise ValueError("give at most one of data_weight and noise_rate, got both")
        if self.noise_rate is not None:
            return self.weight_from_noise_rate(self.noise_rate)
        if self.data_weight is not None:
            return check_real(self.data_weight, "data_weight", minimum=0.0, strict_min=True)
        raise NotFittedError(
            "This BinaryDenoiser has no noise model: give data_weight or noise_rate, or call "
            "fit(noisy) to estimate the noise rate by EM"
        )

    # ------------------------------------------------------------ energy
    def energy(self, labels, noisy) -> float:
        """Posterior energy ``E(y; z) = -c Σ_<ij> s_i s_j - η Σ_i s_i t_i``.

        Implements eq. (4.17) [mrf-denoise-energy], with ``s = 2y - 1`` (candidate clean image),
        ``t = 2z - 1`` (observed noisy image), ``c`` = ``coupling``, ``<ij>`` the
        horizontal and vertical neighbour pairs of the image (no wrap-around) and ``η`` the
        data weight. ``p(y | z) ∝ exp(-E(y; z))``; the MAP image minimises it.
        """
        y = _check_labels(labels, "labels")
        z = _check_labels(noisy, "noisy")
        if y.shape != z.shape:
            raise ValueError(f"labels shape {tuple(y.shape)} != noisy shape {tuple(z.shape)}")
        return self._energy_spins(2 * y.double() - 1, 2 * z.double() - 1)

    def _energy_spins(self, s: torch.Tensor, t: torch.Tensor) -> float:
        pair = _ising_energy(s, self._coupling(), 0.0, periodic=False)
        return float(pair - self._eta() * (s * t).sum())

    def _record_energy(self, history: list | None, s: torch.Tensor, t: torch.Tensor) -> None:
        """Append the energy of the spins ``s`` to ``history``, unless it is ``None``."""
        if history is not None:
            history.append(self._energy_spins(s.double(), t.double()))

    # ------------------------------------------------------------ methods
    def _field(self, s: torch.Tensor, t: torch.Tensor, eta: float | None = None) -> torch.Tensor:
        """Local field of the posterior: c Σ_neighbours s_j + η t_i."""
        eta = self._eta() if eta is None else eta
        return self._coupling() * _neighbour_sum(s, periodic=False) + eta * t

    def denoise(self, noisy, method: str = "graphcut", n_sweeps: int | None = None,
                burn_in: int | None = None, seed=0, device=None, T_start: float = 4.0,
                T_end: float = 0.05, return_history: bool = False):
        """Restore a noisy ``{0, 1}`` image ``(H, W)``; returns ``{0, 1}`` labels (uint8 array).

        ``method``:

        - ``"icm"`` iterated conditional modes (Besag 1986): set every site, colour by
          colour, to its most probable value given its neighbours; stops at a local minimum
          of the energy (``n_sweeps`` at most, default 50).
        - ``"gibbs"``: posterior marginals from Gibbs sampling at temperature 1
          (:meth:`posterior_marginals`), thresholded at ½: the maximiser of the posterior
          marginals (MPM), not the MAP. Default 200 sweeps after 50 of burn-in.
        - ``"anneal"``: simulated annealing (Kirkpatrick et al. 1983; Geman & Geman 1984),
          Gibbs sweeps at temperatures falling geometrically from ``T_start`` to ``T_end``
          (default 300 sweeps), finished by ICM.
        - ``"mean_field"``: iterate ``m_i = tanh(c Σ_j m_j + η t_i)`` colour by colour
          (default 50 sweeps) and threshold the means at 0.
        - ``"graphcut"``: the exact MAP as a minimum s-t cut (Greig, Porteous & Seheult 1989)
          through PyMaxflow (Boykov & Kolmogorov 2004); needs ``coupling ≥ 0``.

        With ``return_history=True`` returns ``(labels, energies)`` where ``energies`` is the
        energy after each sweep (empty for graphcut).
        """
        z = _check_labels(noisy, "noisy")
        check_choice(method, "method", self.METHODS)
        self._eta()  # the noise model is complete and valid
        return_history = check_bool(return_history, "return_history")
        dev = resolve_device(device)  # validated for every method (the graph cut runs on the CPU)
        if method == "graphcut":
            labels = self._graphcut(z)
            return (labels, []) if return_history else labels
        t, masks, gen = _posterior_setup(z, seed, dev)
        history = [] if return_history else None  # energies per sweep cost time: only on request
        n_sweeps = _DEFAULT_SWEEPS[method] if n_sweeps is None else \
            check_int(n_sweeps, "n_sweeps", minimum=1)
        if method == "icm":
            s = self._icm(t.clone(), t, masks, n_sweeps, history)
        elif method == "mean_field":
            s = torch.where(self._mean_field(t, n_sweeps, masks, history=history) >= 0, 1.0, -1.0)
        elif method == "gibbs":
            burn_in = 50 if burn_in is None else check_int(burn_in, "burn_in", minimum=0)
            q = self._marginals(t, n_sweeps, burn_in, gen, masks, history)
            s = torch.where(q > 0.5, 1.0, -1.0)
        else:
            s = self._anneal(t, _temperatures(T_start, T_end, n_sweeps), gen, masks, history)
        labels = ((s.cpu() + 1) / 2).to(torch.uint8).numpy()
        return (labels, history) if return_history else labels

    def _icm(self, s, t, masks, n_sweeps, history):
        """Iterated conditional modes: each site, colour by colour, to its most probable value
        given its neighbours, until nothing changes (or ``n_sweeps``)."""
        for _ in range(n_sweeps):
            changed = False
            for mask in masks:
                f = self._field(s, t)
                # the most probable value given the neighbours; keep the current one on a tie
                best = torch.where(f > 0, 1.0, torch.where(f < 0, -1.0, s))
                new = torch.where(mask, best, s)
                changed |= bool((new != s).any())
                s = new
            self._record_energy(history, s, t)
            if not changed:
                break
        return s

    def _marginals(self, t, n_sweeps, burn_in, gen, masks, history, eta=None):
        """The fraction of the ``n_sweeps`` sweeps after ``burn_in`` in which each site is +1."""
        # the posterior is an Ising model (open boundary) with the field η t_i at site i
        field = (self._eta() if eta is None else eta) * t
        s = t.clone()
        count = torch.zeros_like(t)
        for sweep in range(burn_in + n_sweeps):
            s = _gibbs_sweep(s, 1.0, self._coupling(), field, False, gen, masks)
            if sweep >= burn_in:
                count += s > 0
            self._record_energy(history, s, t)
        return count / n_sweeps

    def _anneal(self, t, temperatures, gen, masks, history):
        """Simulated annealing: one posterior Gibbs sweep at each temperature, then ICM."""
        s, field = t.clone(), self._eta() * t
        for T in temperatures:
            s = _gibbs_sweep(s, 1.0 / T, self._coupling(), field, False, gen, masks)
            self._record_energy(history, s, t)
        return self._icm(s, t, masks, 50, history)

    def _mean_field(self, t, n_sweeps, masks, eta=None, history=None):
        """Mean-field means: ``m_i = tanh(c Σ_j m_j + η t_i)`` colour by colour, from ``t``."""
        m = t.clone()
        for _ in range(n_sweeps):
            for mask in masks:
                m = torch.where(mask, torch.tanh(self._field(m, t, eta)), m)
            self._record_energy(history, torch.where(m >= 0, 1.0, -1.0), t)
        return m

    def _graphcut(self, z: torch.Tensor) -> np.ndarray:
        """The exact MAP labels as a minimum s-t cut; needs ``coupling >= 0``."""
        if self._coupling() < 0:
            raise ValueError(
                f"coupling must be >= 0 for method='graphcut', got {self._coupling()}: a "
                "graph cut finds the exact MAP only for submodular (attractive) pairs"
            )
        _check_graphcut_memory(*z.shape)
        return _min_cut_labels(z.numpy(), self._coupling(), self._eta())

    def posterior_marginals(self, noisy, n_sweeps: int = 200, burn_in: int = 50, seed=0,
                            device=None):
        """``p(y_i = 1 | z)`` for every pixel, estimated by Gibbs sampling of the posterior.

        The chain starts at the noisy image, runs ``burn_in`` sweeps, then averages the
        indicator ``[y_i = 1]`` over ``n_sweeps`` sweeps. Returns a float64 array ``(H, W)``.
        """
        z = _check_labels(noisy, "noisy")
        n_sweeps = check_int(n_sweeps, "n_sweeps", minimum=1)
        burn_in = check_int(burn_in, "burn_in", minimum=0)
        dev = resolve_device(device)
        t, masks, gen = _posterior_setup(z, seed, dev)
        q = self._marginals(t, n_sweeps, burn_in, gen, masks, None)
        return q.cpu().double().numpy()

    def fit(self, noisy, y=None, **kwargs) -> BinaryDenoiser:
        """Estimate the noise rate from a noisy ``{0, 1}`` image ``(H, W)``: the same as
        :meth:`fit_noise_rate` (keyword arguments are passed on); ``y`` is ignored."""
        return self.fit_noise_rate(noisy, **kwargs)

    def fit_noise_rate(self, noisy, init: float = 0.25, n_iter: int = 15, method: str = "gibbs",
                       n_sweeps: int = 30, burn_in: int = 10, tol: float = 1e-3, seed=0,
                       device=None) -> BinaryDenoiser:
        """Estimate the unknown flip rate ``p`` by EM (Monte Carlo EM with ``method="gibbs"``).

        Implements eq. (4.16) [mrf-noise-em].

        The clean image is hidden, so EM applies: the E-step computes the posterior
        marginals ``q_i = p(y_i = 1 | z; p)`` (Gibbs sampling or mean field) with the
        current ``p``; the M-step sets ``p`` to the expected fraction of flipped pixels,
        ``(1/n) Σ_i [z_i = 0] q_i + [z_i = 1] (1 - q_i)``. The coupling stays fixed.
        Stops when ``p`` changes by less than ``tol``. Sets ``noise_rate_`` and
        ``history_`` (``{"noise_rate": [...]}``, the starting value first).
        """
        z = _check_labels(check_input(noisy, "noisy"), "noisy")
        p = self._check_noise_rate(init, "init")
        n_iter = check_int(n_iter, "n_iter", minimum=1)
        check_choice(method, "method", ("gibbs", "mean_field"))
        n_sweeps = check_int(n_sweeps, "n_sweeps", minimum=1)
        burn_in = check_int(burn_in, "burn_in", minimum=0)
        tol = check_real(tol, "tol", minimum=0.0)
        dev = resolve_device(device)
        t, masks, gen = _posterior_setup(z, seed, dev)
        z = z.to(dev)
        history = [p]
        for _ in range(n_iter):
            eta = self.weight_from_noise_rate(p)  # the E-step uses the current p
            if method == "gibbs":
                q = self._marginals(t, n_sweeps, burn_in, gen, masks, None, eta)
            else:
                q = (self._mean_field(t, n_sweeps, masks, eta) + 1) / 2
            expected_flips = torch.where(z == 0, q, 1 - q).mean()
            new_p = float(expected_flips.clamp(1e-6, 0.5 - 1e-6))
            history.append(new_p)
            p, previous = new_p, p
            if abs(p - previous) < tol:
                break
        self.noise_rate_ = p
        self.history_ = {"noise_rate": history}
        return self




def _posterior_setup(z: torch.Tensor, seed, dev):
    """What every sampler of the posterior starts from: the observed spins ``t = 2z - 1`` on
    ``dev``, the image's colour masks (open boundary) and the random generator."""
    t = (2 * z - 1).to(dev)
    masks = checkerboard_masks(tuple(t.shape), periodic=False, device=dev)
    return t, masks, make_generator(seed, dev)


#: Default ``n_sweeps`` of :meth:`BinaryDenoiser.denoise` per method.
_DEFAULT_SWEEPS = {"icm": 50, "mean_field": 50, "gibbs": 200, "anneal": 300}


def _temperatures(T_start, T_end, n_sweeps: int) -> np.ndarray:
    """The annealing schedule: ``n_sweeps`` temperatures falling geometrically."""
    T_start = check_real(T_start, "T_start", minimum=0.0, strict_min=True)
    T_end = check_real(T_end, "T_end", minimum=0.0, strict_min=True)
    return np.geomspace(T_start, T_end, n_sweeps)


def _min_cut_labels(z: np.ndarray, coupling: float, eta: float) -> np.ndarray:
    """The labels minimising eq. (4.17) [mrf-denoise-energy] as a minimum s-t cut through
    PyMaxflow (Greig, Porteous & Seheult 1989; Boykov & Kolmogorov 2004)."""
    import maxflow

    # In labels: E = const + 2c Σ_<ij> [y_i != y_j] + 2η Σ_i [y_i != z_i].
    g = maxflow.Graph[float]()
    nodes = g.add_grid_nodes(z.shape)
    right_down = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0]])
    g.add_grid_edges(nodes, weights=2.0 * coupling, structure=right_down, symmetric=True)
    # A node on the sink side (label 1) pays its source capacity, on the source side
    # (label 0) its sink capacity: label 1 costs 2η where z = 0, label 0 costs 2η where z = 1.
    g.add_grid_tedges(nodes, 2.0 * eta * (z == 0), 2.0 * eta * (z == 1))
    g.maxflow()
    return g.get_grid_segments(nodes).astype(np.uint8)


#: Memory PyMaxflow needs per pixel of a 4-neighbour grid graph (nodes, arcs, the labels):
#: measured 185 bytes on a 1500×1500 image with PyMaxflow 1.3; rounded up.
GRAPHCUT_BYTES_PER_PIXEL = 224


def _available_memory_bytes() -> int | None:
    """Memory this process may still allocate: the least of the free physical memory
    (``MemAvailable``), the address-space limit (``RLIMIT_AS``) and a cgroup's
    ``memory.max``, where known; ``None`` when none is known."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            used = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            limits.append(soft - used)
    except (OSError, ValueError, ImportError):
        pass
    try:
        cg = Path("/sys/fs/cgroup")
        high = (cg / "memory.max").read_text().strip()
        if high != "max":
            limits.append(int(high) - int((cg / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(limits) if limits else None


def _check_graphcut_memory(H: int, W: int) -> None:
    """Refuse, before allocating anything, a graph cut that will not fit in memory."""
    need = GRAPHCUT_BYTES_PER_PIXEL * H * W
    available = _available_memory_bytes()
    if available is not None and need > available:
        raise MemoryError(
            f"noisy: a graph cut on a {H}×{W} image needs about {need / 2**30:.1f} GiB "
            f"({GRAPHCUT_BYTES_PER_PIXEL} bytes per pixel) but only {available / 2**30:.1f} GiB "
            "is available. Denoise the image in tiles, downsample it, or use "
            "method='icm' or 'mean_field', which need a few bytes per pixel."
        )

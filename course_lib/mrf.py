"""Markov random fields on images: the Ising model, MRF denoising and a pairwise MRF of digits.

Three models live here, all built from the same two ideas, *local energy terms* and
*Gibbs sampling*:

- :class:`IsingModel`: the 2D Ising model ``p(x) ∝ exp(-beta E(x))`` over spins
  ``x_i ∈ {-1, +1}`` on a square lattice. It is sampled by checkerboard Gibbs sampling,
  its partition function is computed exactly on tiny lattices, and its parameter ``beta``
  is learned from samples by pseudo-likelihood or by stochastic maximum likelihood. The
  functions :func:`onsager_magnetization` and :func:`onsager_energy_per_spin` give the exact
  results for the infinite lattice that the sampler is checked against.
- :class:`BinaryDenoiser`: restoration of a binary image seen through a binary symmetric
  channel, with an Ising prior. ICM, Gibbs sampling (posterior marginals), simulated
  annealing, mean field, and the exact MAP by a graph cut (PyMaxflow). EM estimates an
  unknown noise rate: the one place in this chapter where EM belongs, because the clean
  image is hidden.
- :class:`PairwiseMRF`: a fully visible Boltzmann machine over the 64 pixels of binarised
  8×8 digits, learned by pseudo-likelihood or stochastic maximum likelihood and sampled by
  Gibbs sampling, so that this chapter too generates digits.

Conventions: spins are ``±1`` (float or int8 tensors of shape ``(N, H, W)`` or ``(H, W)``)
for the Ising model; images and labels are ``{0, 1}``. ``J = k_B = 1`` by default and the
temperature is ``T = 1 / beta``.

Every formula of the book lives in one function whose docstring names its equation label.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from ._core import (
    as_tensor,
    check_binary,
    check_choice,
    check_int,
    check_real,
    make_generator,
    resolve_device,
)
from ._core import progress as _progress  # `progress` is also an argument name below

__all__ = [
    "ising_critical_temperature",
    "onsager_magnetization",
    "onsager_energy_per_spin",
    "checkerboard_masks",
    "local_field",
    "gibbs_conditional",
    "gibbs_sweep",
    "IsingModel",
    "BinaryDenoiser",
    "PairwiseMRF",
    "binarize_digits",
    "state_index",
    "MAX_ENUMERATION_SITES",
]

#: Largest lattice (in sites) for which the partition function is computed by enumeration:
#: 2**16 = 65,536 configurations. A 5×5 lattice would already need 2**25 ≈ 34 million.
MAX_ENUMERATION_SITES = 16


# =====================================================================================
# Exact results for the infinite 2D Ising model (checks for the sampler)
# =====================================================================================


def ising_critical_temperature(J: float = 1.0) -> float:
    """Critical temperature of the 2D square-lattice Ising model (Onsager 1944).

    Implements eq. (mrf-critical-temperature).

    ``T_c = 2 J / ln(1 + √2) ≈ 2.269185 J`` (with ``k_B = 1``).
    """
    J = check_real(J, "J", minimum=0.0, strict_min=True)
    return 2.0 * J / math.log1p(math.sqrt(2.0))


def _check_temperature(T) -> np.ndarray:
    T_arr = np.asarray(T, dtype=np.float64)
    if not np.all(np.isfinite(T_arr)):
        raise ValueError(f"T must be finite, got {T!r}")
    if np.any(T_arr <= 0):
        raise ValueError(f"T (temperature) must be > 0, got {T!r}")
    return T_arr


def _scalar_or_array(values: np.ndarray, like):
    return float(values) if np.ndim(like) == 0 else values


def onsager_magnetization(T, J: float = 1.0):
    """Exact spontaneous magnetisation per spin of the infinite 2D Ising model.

    Implements eq. (mrf-yang).

    Yang (1952): ``M(T) = (1 - sinh(2J/T)**-4) ** (1/8)`` for ``T < T_c`` and ``0`` above.
    Accepts a number or an array of temperatures (returns the same kind).
    """
    J = check_real(J, "J", minimum=0.0, strict_min=True)
    T_arr = _check_temperature(T)
    Tc = ising_critical_temperature(J)
    with np.errstate(over="ignore"):
        inner = 1.0 - np.sinh(2.0 * J / T_arr) ** -4.0
    M = np.where(T_arr < Tc, np.clip(inner, 0.0, None) ** 0.125, 0.0)
    return _scalar_or_array(M, T)


def onsager_energy_per_spin(T, J: float = 1.0):
    """Exact energy per spin of the infinite 2D Ising model (Onsager 1944), ``h = 0``.

    Implements eq. (mrf-onsager-energy).

    With ``K = J/T``, ``k = 2 sinh(2K) / cosh(2K)**2`` and the complete elliptic integral
    of the first kind ``K1(k) = ∫_0^{π/2} dθ / sqrt(1 - k² sin²θ)``::

        u(T) = -J coth(2K) [1 + (2/π) (2 tanh(2K)**2 - 1) K1(k)]

    SciPy's ``ellipk(m)`` takes the *parameter* ``m = k²``, not the modulus ``k``. At
    ``T_c`` the factor ``2 tanh² - 1`` vanishes while ``K1`` diverges only logarithmically,
    so ``u(T_c) = -J coth(2K_c) = -√2 J``; as ``T → 0``, ``u → -2J`` (all bonds satisfied).
    """
    from scipy.special import ellipk

    J = check_real(J, "J", minimum=0.0, strict_min=True)
    T_arr = _check_temperature(T)
    K = J / T_arr
    with np.errstate(over="ignore", invalid="ignore"):
        t2 = np.tanh(2.0 * K)
        k = 2.0 * np.sinh(2.0 * K) / np.cosh(2.0 * K) ** 2
        k = np.where(np.isfinite(k), k, 0.0)  # T → 0: sinh/cosh² → 0
        factor = 2.0 * t2**2 - 1.0
        elliptic = ellipk(np.minimum(k**2, 1.0))
        # At T_c exactly: 0 × ∞ → the limit 0.
        product = np.where(factor == 0.0, 0.0, factor * elliptic)
        product = np.where(np.isfinite(product), product, 0.0)
        u = -J / t2 * (1.0 + 2.0 / np.pi * product)
    return _scalar_or_array(u, T)


# =====================================================================================
# Lattice helpers: colours, local field, Gibbs conditional, one sweep
# =====================================================================================


def _check_spins(x, name: str = "x", *, device=None, dtype=torch.float32) -> torch.Tensor:
    """±1 spins of shape (H, W) or (N, H, W), H, W ≥ 2."""
    t = as_tensor(x, name, ndim=(2, 3), dtype=dtype, device=device)
    if t.shape[-1] < 2 or t.shape[-2] < 2:
        raise ValueError(f"{name}: the lattice must be at least 2×2, got shape {tuple(t.shape)}")
    check_binary(t, name, values=(-1, 1))
    return t


def _check_shape(shape) -> tuple[int, int]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape, shape)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a pair (H, W), got {shape!r}") from None
    if len(shape) != 2:
        raise ValueError(f"shape must be a pair (H, W), got {shape!r}")
    H = check_int(shape[0], "shape[0]")
    W = check_int(shape[1], "shape[1]")
    if H < 2 or W < 2:
        raise ValueError(f"shape: the lattice must be at least 2×2, got {shape!r}")
    return H, W


@lru_cache(maxsize=64)
def _colouring(H: int, W: int, periodic: bool) -> tuple[np.ndarray, int]:
    """A proper colouring of the lattice graph: no two neighbours share a colour.

    The checkerboard ``(i + j) % 2`` works for open boundaries and for periodic lattices
    with even sides. On a periodic lattice with an odd side the wrap-around bonds join two
    sites of the same parity, so we colour greedily (at most 5 colours; e.g. 3 on 3×3).
    """
    i, j = np.indices((H, W))
    if not periodic or (H % 2 == 0 and W % 2 == 0):
        return (i + j) % 2, 2
    colours = -np.ones((H, W), dtype=np.int64)
    for r in range(H):  # one-off set-up, cached; sampling itself never loops over pixels
        for c in range(W):
            taken = {
                colours[(r - 1) % H, c],
                colours[(r + 1) % H, c],
                colours[r, (c - 1) % W],
                colours[r, (c + 1) % W],
            }
            colours[r, c] = min(k for k in range(5) if k not in taken)
    return colours, int(colours.max()) + 1


def checkerboard_masks(shape, periodic: bool = True, device=None) -> tuple[torch.Tensor, ...]:
    """Boolean masks of the colour classes of the lattice (implements eq. (mrf-checkerboard)).

    For an ``(H, W)`` lattice with an open boundary, or a periodic one with even sides,
    these are the two checkerboard colours ``(black, white)`` with ``black = (i + j) even``:
    every neighbour of a black site is white, so all black sites are conditionally
    independent given the white ones and can be resampled at once. A periodic lattice with
    an odd side needs a third colour (the wrap-around bonds join equal colours), so then
    more than two masks are returned. The masks are disjoint and cover the lattice.
    """
    H, W = _check_shape(shape)
    colours, n_colours = _colouring(H, W, bool(periodic))
    dev = resolve_device(device) if device is not None else torch.device("cpu")
    col = torch.as_tensor(colours, device=dev)
    return tuple(col == k for k in range(n_colours))


def _neighbour_sum(x: torch.Tensor, periodic: bool) -> torch.Tensor:
    """Σ over the four nearest neighbours of every site; last two dims are the lattice."""
    if periodic:
        return (
            torch.roll(x, 1, -2)
            + torch.roll(x, -1, -2)
            + torch.roll(x, 1, -1)
            + torch.roll(x, -1, -1)
        )
    s = torch.zeros_like(x)
    s[..., 1:, :] += x[..., :-1, :]
    s[..., :-1, :] += x[..., 1:, :]
    s[..., :, 1:] += x[..., :, :-1]
    s[..., :, :-1] += x[..., :, 1:]
    return s


def local_field(x, J: float = 1.0, h: float = 0.0, periodic: bool = True) -> torch.Tensor:
    """Local field at every site: ``f_i = J Σ_{j ∈ N(i)} x_j + h``.

    Implements eq. (mrf-local-field). ``x``: ±1 spins ``(H, W)`` or ``(N, H, W)``.
    ``N(i)`` are the four nearest neighbours; with ``periodic=True`` the lattice wraps
    around (on a side of length 2 the same neighbour is then counted twice, as in the
    energy), otherwise sites outside the lattice contribute 0.
    """
    x = _check_spins(x)
    J = check_real(J, "J")
    h = check_real(h, "h")
    return J * _neighbour_sum(x, bool(periodic)) + h


def gibbs_conditional(field, beta: float) -> torch.Tensor:
    """Probability that a spin is +1 given its neighbours: ``σ(2 β f_i)``.

    Implements eq. (mrf-gibbs-conditional): ``p(x_i = +1 | x_rest) = 1 / (1 + exp(-2 β f_i))``
    where ``f_i`` is the local field of :func:`local_field`.
    """
    beta = check_real(beta, "beta", minimum=0.0, strict_min=True)
    field = as_tensor(field, "field", dtype=torch.float32)
    return _conditional(field, beta)


def _conditional(field: torch.Tensor, beta: float) -> torch.Tensor:
    """gibbs_conditional without the input checks, for the samplers' inner loops."""
    return torch.sigmoid(2.0 * beta * field)


def gibbs_sweep(
    x, beta: float, J: float = 1.0, h: float = 0.0, periodic: bool = True, generator=None
) -> torch.Tensor:
    """One checkerboard Gibbs sweep: resample every colour class in turn.

    Implements eq. (mrf-checkerboard). For each colour (black, then white) all its sites
    are resampled at once from :func:`gibbs_conditional`, which is exact because sites of
    one colour are never neighbours. No loop over pixels: one tensor operation per colour.
    Returns a new float tensor of ±1 spins with the shape of ``x``.
    """
    x = _check_spins(x)
    beta = check_real(beta, "beta", minimum=0.0, strict_min=True)
    J = check_real(J, "J")
    h = check_real(h, "h")
    masks = checkerboard_masks(tuple(x.shape[-2:]), periodic=periodic, device=x.device)
    return _gibbs_sweep(x, beta, J, h, bool(periodic), generator, masks)


def _gibbs_sweep(x, beta, J, h, periodic, generator, masks) -> torch.Tensor:
    """gibbs_sweep without the input checks (for loops that call it many times)."""
    for mask in masks:
        p_up = _conditional(J * _neighbour_sum(x, periodic) + h, beta)
        u = torch.rand(x.shape, generator=generator, device=x.device)
        x = torch.where(mask, torch.where(u < p_up, 1.0, -1.0), x)
    return x


def _ising_energy(x: torch.Tensor, J: float, h: float, periodic: bool) -> torch.Tensor:
    """``E(x) = -J Σ_<ij> x_i x_j - h Σ_i x_i`` per configuration (last two dims = lattice)."""
    if not x.dtype.is_floating_point:
        x = x.to(torch.float32)
    if periodic:
        bonds = (x * torch.roll(x, -1, -2)).sum((-2, -1)) + (x * torch.roll(x, -1, -1)).sum(
            (-2, -1)
        )
    else:
        bonds = (x[..., :-1, :] * x[..., 1:, :]).sum((-2, -1)) + (
            x[..., :, :-1] * x[..., :, 1:]
        ).sum((-2, -1))
    return -J * bonds - h * x.sum((-2, -1))


# ------------------------------------------------------------ fast checkerboard sampler
#
# The sampler behind IsingModel.sample for lattices with even sides (eq. mrf-checkerboard,
# the same algorithm as gibbs_sweep, organised for speed). The lattice is split into four
# quarter-lattices q[a][b] = x[..., a::2, b::2]. Black sites (i + j even) are q00 and q11,
# white sites q01 and q10. Every neighbour of a site in one quarter lies in a quarter of
# the other colour, at the same position or one row/column before or after it:
#
#   site of       up/down neighbours (rows)     left/right neighbours (columns)
#   q00 (2r,2c)     q10[r-1, c], q10[r, c]        q01[r, c-1], q01[r, c]
#   q11 (2r+1,2c+1) q01[r, c],   q01[r+1, c]      q10[r, c],   q10[r, c+1]
#   q01 (2r,2c+1)   q11[r-1, c], q11[r, c]        q00[r, c],   q00[r, c+1]
#   q10 (2r+1,2c)   q00[r, c],   q00[r+1, c]      q11[r, c-1], q11[r, c]
#
# so a half-sweep reads the other colour through shifted slices and writes only its own
# colour: no full-lattice copies, no masks. Spins are int8 (1 byte per spin). The uniform
# random numbers are 32-bit integers (two per call of the 64-bit generator), compared with
# the acceptance probability mapped to the same integer scale.

_SHIFTS = {  # quarter -> (row source, row shift, column source, column shift)
    "q00": ("q10", +1, "q01", +1),
    "q11": ("q01", -1, "q10", -1),
    "q01": ("q11", +1, "q00", -1),
    "q10": ("q00", -1, "q11", +1),
}


def _add_shifted(out: torch.Tensor, src: torch.Tensor, step: int, dim: int, periodic: bool) -> None:
    """out[k] += src[k - step] along ``dim`` (wrapping if periodic, else 0 outside)."""
    n = src.shape[dim]
    if step == +1:
        out.narrow(dim, 1, n - 1).add_(src.narrow(dim, 0, n - 1))
        if periodic:
            out.narrow(dim, 0, 1).add_(src.narrow(dim, n - 1, 1))
    else:
        out.narrow(dim, 0, n - 1).add_(src.narrow(dim, 1, n - 1))
        if periodic:
            out.narrow(dim, n - 1, 1).add_(src.narrow(dim, 0, 1))


_COLOURS = {"black": ("q00", "q11"), "white": ("q01", "q10")}


class _QuarterLattice:
    """Batch of (N, H, W) ±1 lattices (H, W even) stored as int8 quarter-lattices.

    ``colour["black"]`` is the stack (q00, q11) and ``colour["white"]`` the stack (q01, q10),
    each of shape (2, N, H/2, W/2); ``q[name]`` are views of these.
    """

    def __init__(self, x: torch.Tensor, periodic: bool):
        self.periodic = periodic
        x = x.to(torch.int8)
        self.colour = {
            colour: torch.stack([x[:, int(name[1]) :: 2, int(name[2]) :: 2] for name in names])
            for colour, names in _COLOURS.items()
        }
        self.q = {
            name: self.colour[c][k] for c, names in _COLOURS.items() for k, name in enumerate(names)
        }
        shape = self.colour["black"].shape
        self._sum = torch.empty(shape, dtype=torch.int8, device=x.device)
        self._field = torch.empty(shape, dtype=torch.float32, device=x.device)
        n = self._sum.numel()
        self._bits = torch.empty((n + 1) // 2, dtype=torch.int64, device=x.device)

    def full(self) -> torch.Tensor:
        n, h, w = self.q["q00"].shape
        x = torch.empty((n, 2 * h, 2 * w), dtype=torch.int8, device=self.q["q00"].device)
        for a in (0, 1):
            for b in (0, 1):
                x[:, a::2, b::2] = self.q[f"q{a}{b}"]
        return x

    def neighbour_sum(self, name: str, out: torch.Tensor | None = None) -> torch.Tensor:
        """Σ of the four neighbours of every site of quarter ``name`` (int8, in -4..4)."""
        rows, row_step, cols, col_step = _SHIFTS[name]
        R, C = self.q[rows], self.q[cols]
        out = torch.add(R, C, out=out)  # the neighbours at the same (r, c)
        _add_shifted(out, R, row_step, -2, self.periodic)
        _add_shifted(out, C, col_step, -1, self.periodic)
        return out

    def colour_neighbour_sums(self, colour: str) -> torch.Tensor:
        """Neighbour sums of both quarters of ``colour``, shape (2, N, H/2, W/2), int8."""
        for k, name in enumerate(_COLOURS[colour]):
            self.neighbour_sum(name, out=self._sum[k])
        return self._sum

    def update(self, colour: str, a: float, b: float, generator) -> None:
        """Heat-bath update of all sites of one colour: +1 with probability σ(a s + b).

        ``s`` is the neighbour sum, ``a = 2 beta J``, ``b = 2 beta h``
        (eq. mrf-gibbs-conditional). Sites of one colour are never neighbours, so they are
        all updated at once.
        """
        s = self.colour_neighbour_sums(colour)
        # threshold on the integer scale: u < p  <=>  r < p * 2**32 - 2**31,
        # where r = u * 2**32 - 2**31 is a uniform 32-bit signed integer.
        f = self._field
        f.copy_(s).mul_(a).add_(b).sigmoid_().mul_(2.0**32).sub_(2.0**31)
        r = self._bits.random_(-(2**63), None, generator=generator).view(torch.int32)
        r = r[: f.numel()].view(f.shape)
        x = self.colour[colour]
        torch.lt(r, f, out=x)  # 1 where the new spin is +1, else 0
        x.mul_(2).sub_(1)

    def sweep(self, a: float, b: float, generator) -> None:
        """One checkerboard sweep in place: the black sites, then the white ones."""
        self.update("black", a, b, generator)
        self.update("white", a, b, generator)

    def magnetization(self) -> torch.Tensor:
        """Mean spin of each of the N lattices."""
        total = sum(x.sum((0, -2, -1), dtype=torch.float32) for x in self.colour.values())
        return total / (4 * self.q["q00"][0].numel())

    def energy(self, J: float, h: float) -> torch.Tensor:
        """E(x) of each of the N lattices (eq. mrf-ising-energy)."""
        # Every bond joins a black and a white site: summing x_i · (neighbour sum) over the
        # black sites counts each bond exactly once.
        black = self.colour["black"]
        bonds = (black * self.colour_neighbour_sums("black")).sum((0, -2, -1), dtype=torch.float32)
        n_sites = 4 * self.q["q00"][0].numel()
        return -J * bonds - h * self.magnetization() * n_sites


def _heat_bath_coefficients(beta: float, J: float, h: float) -> tuple[float, float]:
    """(a, b) with p(x_i = +1 | s_i) = σ(a s_i + b): a = 2 beta J, b = 2 beta h."""
    return 2.0 * beta * J, 2.0 * beta * h


# =====================================================================================
# The Ising model
# =====================================================================================


def _check_beta(beta) -> float:
    return check_real(beta, "beta", minimum=0.0, strict_min=True)


def state_index(x) -> torch.Tensor:
    """Integer code of each ±1 configuration ``(..., H, W)`` of a tiny lattice.

    Bit ``k`` of the code is 1 where the spin at the flattened (row-major) site ``k`` is
    +1: the order of :meth:`IsingModel.exact_distribution`, so
    ``torch.bincount(state_index(samples), minlength=2**(H*W))`` counts how often each
    state was sampled. At most 62 sites.
    """
    x = as_tensor(x, "x", ndim=(2, 3))
    if x.shape[-1] * x.shape[-2] > 62:
        raise ValueError(f"x: at most 62 sites fit in a 64-bit code, got shape {tuple(x.shape)}")
    bits = (x.flatten(-2) > 0).to(torch.int64)
    weights = 2 ** torch.arange(bits.shape[-1], dtype=torch.int64, device=bits.device)
    return (bits * weights).sum(-1)


def _all_states(H: int, W: int) -> torch.Tensor:
    """All 2**(H·W) ±1 configurations, shape (2**(H·W), H, W), ordered by state_index."""
    n = H * W
    codes = torch.arange(2**n, dtype=torch.int64)
    bits = (codes[:, None] >> torch.arange(n)) & 1
    return (2 * bits - 1).to(torch.float32).reshape(-1, H, W)


class IsingModel:
    """The 2D Ising model ``p(x) = exp(-beta E(x)) / Z(beta)`` over ±1 spins on a lattice.

    Parameters
    ----------
    beta : float > 0
        Inverse temperature ``1 / T`` (``k_B = 1``). Also the starting value for :meth:`fit`.
    J : float
        Coupling: ``J > 0`` favours equal neighbours (ferromagnet).
    h : float
        External field: ``h > 0`` favours ``+1``.
    periodic : bool
        Periodic (toroidal) boundary, or an open one where edge sites have fewer neighbours.

    After :meth:`fit`, ``beta_`` and ``h_`` hold the learned values, and :meth:`sample`,
    :meth:`log_partition` and :meth:`exact_distribution` use them.
    """

    def __init__(self, beta: float = 0.4, J: float = 1.0, h: float = 0.0, periodic: bool = True):
        self.beta = _check_beta(beta)
        self.J = check_real(J, "J")
        self.h = check_real(h, "h")
        if not isinstance(periodic, (bool, np.bool_)):
            raise TypeError(f"periodic must be True or False, got {periodic!r}")
        self.periodic = bool(periodic)

    # ---------------------------------------------------------------- parameters
    def _params(self) -> tuple[float, float]:
        """(beta, h) in use: the learned ones after fit, else the constructor's."""
        return getattr(self, "beta_", self.beta), getattr(self, "h_", self.h)

    @property
    def temperature(self) -> float:
        return 1.0 / self._params()[0]

    # ---------------------------------------------------------------- energy
    def energy(self, x) -> torch.Tensor:
        """Energy of each configuration: ``E(x) = -J Σ_<ij> x_i x_j - h Σ_i x_i``.

        Implements eq. (mrf-ising-energy). ``x``: ±1 spins ``(H, W)`` (returns a 0-d
        tensor) or ``(N, H, W)`` (returns ``(N,)``). ``<ij>`` runs over nearest-neighbour
        bonds, each once (right and down neighbours, wrapping when ``periodic``).
        """
        x = _check_spins(x)
        return _ising_energy(x, self.J, self._params()[1], self.periodic)

    # ---------------------------------------------------------------- exact (tiny lattices)
    def _check_enumerable(self, shape) -> tuple[int, int]:
        H, W = _check_shape(shape)
        if H * W > MAX_ENUMERATION_SITES:
            raise ValueError(
                f"shape={shape!r}: exact enumeration of a {H}×{W} lattice would sum "
                f"2**{H * W} = {2 ** (H * W):,} terms; only lattices with at most "
                f"{MAX_ENUMERATION_SITES} sites (2**{MAX_ENUMERATION_SITES} = "
                f"{2**MAX_ENUMERATION_SITES:,} terms, e.g. 4×4) are enumerated. This "
                "exponential blow-up is why Z is never computed this way for real images."
            )
        return H, W

    def log_partition(self, shape) -> float:
        """``log Z(beta) = log Σ_x exp(-beta E(x))`` by enumerating all ``2**(H·W)`` states.

        Implements eq. (mrf-partition). Only for tiny lattices (at most 16 sites, e.g. 4×4):
        the number of terms doubles with every site.
        """
        H, W = self._check_enumerable(shape)
        beta, h = self._params()
        states = _all_states(H, W)
        log_weights = -beta * _ising_energy(states.double(), self.J, h, self.periodic)
        return float(torch.logsumexp(log_weights, 0))

    def exact_distribution(self, shape) -> tuple[torch.Tensor, torch.Tensor]:
        """All states of a tiny lattice and their exact Boltzmann probabilities.

        Implements eq. (mrf-gibbs): ``p(x) = exp(-beta E(x)) / Z(beta)``, the Gibbs
        distribution with features ``φ = (Σ_<ij> x_i x_j, Σ_i x_i)`` and weights
        ``θ = (beta J, beta h)``.

        Returns ``(states, probs)``: ``states`` is ``(2**(H·W), H, W)`` float ±1, with
        state ``k`` having spin ``+1`` at the flattened site ``i`` iff bit ``i`` of ``k``
        is 1; ``probs`` is ``(2**(H·W),)`` float64 summing to 1.
        """
        H, W = self._check_enumerable(shape)
        beta, h = self._params()
        states = _all_states(H, W)
        log_weights = -beta * _ising_energy(states.double(), self.J, h, self.periodic)
        probs = torch.softmax(log_weights, 0)
        return states, probs

    # ---------------------------------------------------------------- sampling
    def sample(
        self,
        n: int,
        shape=(64, 64),
        n_sweeps: int = 100,
        burn_in: int = 0,
        init="random",
        seed=None,
        device=None,
        progress: bool = False,
        return_stats: bool = False,
    ):
        """Run ``n`` independent chains of checkerboard Gibbs sampling, batched.

        Each chain starts from ``init`` (``"random"``: independent fair coins, i.e.
        infinite temperature; ``"up"``: all +1, the ordered state; or a ±1 tensor of shape
        ``(H, W)`` or ``(n, H, W)``) and runs ``burn_in + n_sweeps`` sweeps. One sweep
        resamples every site once (eq. (mrf-checkerboard)). Lattices with even sides run a
        fast implementation of the same algorithm (int8 quarter-lattices, see
        ``_QuarterLattice``); others run :func:`gibbs_sweep`'s colour masks. Same ``seed``,
        same result on the CPU.

        Returns the final states, a float tensor ``(n, H, W)`` of ±1 on ``device``. With
        ``return_stats=True`` returns ``(samples, stats)`` where ``stats`` holds
        ``"magnetization"`` and ``"energy"`` (per spin), each ``(burn_in + n_sweeps, n)``
        on the CPU (one row per sweep, burn-in included, for plots), and ``"burn_in"``.
        """
        n = check_int(n, "n", minimum=1)
        H, W = _check_shape(shape)
        n_sweeps = check_int(n_sweeps, "n_sweeps", minimum=0)
        burn_in = check_int(burn_in, "burn_in", minimum=0)
        dev = resolve_device(device)
        gen = make_generator(seed, dev)
        beta, h = self._params()

        if isinstance(init, str):
            check_choice(init, "init", ("random", "up", "down"))
            if init == "random":
                x = torch.randint(0, 2, (n, H, W), generator=gen, device=dev, dtype=torch.int8)
                x = 2 * x - 1
            else:
                x = torch.full((n, H, W), 1 if init == "up" else -1, dtype=torch.int8, device=dev)
        else:
            x0 = _check_spins(init, "init", device=dev)
            if tuple(x0.shape[-2:]) != (H, W):
                raise ValueError(
                    f"init has lattice shape {tuple(x0.shape[-2:])}, expected {(H, W)}"
                )
            if x0.dim() == 3 and x0.shape[0] != n:
                raise ValueError(f"init has {x0.shape[0]} chains, expected n={n}")
            x = x0.expand(n, H, W).to(torch.int8).clone()

        total = burn_in + n_sweeps
        mags, energies = [], []
        n_sites = H * W
        if H % 2 == 0 and W % 2 == 0:
            lattice = _QuarterLattice(x, self.periodic)
            a, b = _heat_bath_coefficients(beta, self.J, h)
            for _ in _progress(range(total), progress, desc="Gibbs sweeps"):
                lattice.sweep(a, b, gen)
                if return_stats:
                    mags.append(lattice.magnetization().cpu())
                    energies.append((lattice.energy(self.J, h) / n_sites).cpu())
            x = lattice.full()
        else:  # odd side: the general colour-class sampler
            xf = x.to(torch.float32)
            masks = checkerboard_masks((H, W), periodic=self.periodic, device=dev)
            for _ in _progress(range(total), progress, desc="Gibbs sweeps"):
                xf = _gibbs_sweep(xf, beta, self.J, h, self.periodic, gen, masks)
                if return_stats:
                    mags.append(xf.mean((-2, -1)).cpu())
                    energies.append((_ising_energy(xf, self.J, h, self.periodic) / n_sites).cpu())
            x = xf
        samples = x.to(torch.float32)
        if not return_stats:
            return samples
        empty = torch.zeros((0, n))
        stats = {
            "magnetization": torch.stack(mags) if mags else empty,
            "energy": torch.stack(energies) if energies else empty,
            "burn_in": burn_in,
        }
        return samples, stats

    # ---------------------------------------------------------------- learning
    def _features(self, x: torch.Tensor):
        """Per-site pieces of the pseudo-likelihood: x_i, J·(neighbour sum)_i."""
        return x, self.J * _neighbour_sum(x, self.periodic)

    def pseudo_log_likelihood(self, x, beta=None, h=None) -> float:
        """Mean over sites and samples of ``log p(x_i | x_rest)`` (eq. (mrf-pseudolikelihood)).

        ``log PL(beta, h) = (1/(N·H·W)) Σ_n Σ_i log σ(2 beta x_i (J s_i + h))`` with ``s_i``
        the sum of the neighbours of site ``i``: no partition function is needed, only
        each site's conditional given its neighbours (Besag 1975).
        """
        x = _check_spins(x, "x")
        if x.dim() == 2:
            x = x[None]
        b0, h0 = self._params()
        beta = b0 if beta is None else _check_beta(beta)
        h = h0 if h is None else check_real(h, "h")
        spins, js = self._features(x.double())
        return float(torch.nn.functional.logsigmoid(2.0 * beta * spins * (js + h)).mean())

    def fit(
        self,
        samples,
        method: str = "pseudolikelihood",
        fit_h: bool = False,
        n_iter: int | None = None,
        lr: float = 1.0,
        n_chains: int = 64,
        seed=None,
        device=None,
        progress: bool = False,
    ) -> IsingModel:
        """Learn ``beta`` (and ``h`` when ``fit_h``) from ±1 samples ``(N, H, W)``.

        ``J`` stays fixed (only ``beta·J`` is identifiable). There are no hidden variables,
        so EM has nothing to do here; two standard methods instead:

        - ``"pseudolikelihood"`` (Besag 1975): maximise eq. (mrf-pseudolikelihood), a
          concave function of ``(beta, beta·h)``, by Newton's method (``n_iter`` steps,
          default 50, stopping early at convergence).
        - ``"sml"``: stochastic maximum likelihood / persistent contrastive divergence
          (Younes 1989; Tieleman 2008): gradient ascent on the log-likelihood, whose
          gradient eq. (mrf-likelihood-gradient) is ``E_data[φ] - E_model[φ]``; the model
          expectation comes from ``n_chains`` persistent Gibbs chains advanced by one
          sweep per step (``n_iter`` steps, default 400, step size ``lr / sqrt(1 + t/50)``).
          The estimate returned is the average of the second half of the iterates.

        Sets ``beta_``, ``h_`` and ``history_`` (dict of lists: ``"beta"``, ``"h"``,
        ``"pseudo_log_likelihood"`` for PL, or ``"phi_data"``/``"phi_model"`` for SML).
        """
        x = _check_spins(samples, "samples")
        if x.dim() == 2:
            x = x[None]
        check_choice(method, "method", ("pseudolikelihood", "sml"))
        lr = check_real(lr, "lr", minimum=0.0, strict_min=True)
        if method == "pseudolikelihood":
            n_iter = 50 if n_iter is None else check_int(n_iter, "n_iter", minimum=1)
            self._fit_pseudolikelihood(x.double(), bool(fit_h), n_iter)
        else:
            n_iter = 400 if n_iter is None else check_int(n_iter, "n_iter", minimum=1)
            n_chains = check_int(n_chains, "n_chains", minimum=1)
            self._fit_sml(x, bool(fit_h), n_iter, lr, n_chains, seed, device, progress)
        return self

    def _fit_pseudolikelihood(self, x: torch.Tensor, fit_h: bool, n_iter: int) -> None:
        spins, js = self._features(x)
        # log σ(z) with z = 2 x_i beta (J s_i + h): a logistic regression of each spin on
        # its neighbours, linear in the natural parameters θ = (beta, beta·h).
        beta0, h0 = self._params()
        if fit_h:  # features (2 x_i J s_i, 2 x_i) for θ = (beta, beta·h)
            A = torch.stack([(2 * spins * js).flatten(), (2 * spins).flatten()], 1)
        else:  # h stays at its current value: one feature 2 x_i (J s_i + h) for θ = beta
            A = (2 * spins * (js + h0)).flatten()[:, None]
        # Start from the weakly coupled beta = 0.1, beta·h = 0.
        theta = torch.tensor([0.1, 0.0][: A.shape[1]], dtype=torch.float64)
        offset = 0.0

        def objective(th):
            return float(torch.nn.functional.logsigmoid(A @ th + offset).mean())

        def record(th, value):
            history["beta"].append(float(th[0]))
            history["h"].append(float(th[1] / th[0]) if fit_h else h0)
            history["pseudo_log_likelihood"].append(value)

        history = {"beta": [], "h": [], "pseudo_log_likelihood": []}
        value = objective(theta)
        record(theta, value)
        for _ in range(n_iter):
            sig = torch.sigmoid(A @ theta + offset)
            grad = A.T @ (1 - sig) / len(sig)
            hess = -(A * (sig * (1 - sig))[:, None]).T @ A / len(sig)
            eye = torch.eye(len(theta), dtype=hess.dtype)
            step = -torch.linalg.solve(hess - 1e-12 * eye, grad)  # Newton direction (ascent)
            # Damped Newton: halve the step until the (concave) objective increases.
            for _ in range(40):
                new_value = objective(theta + step)
                if new_value >= value:
                    break
                step = step / 2
            theta, value = theta + step, new_value
            if not torch.isfinite(theta).all() or theta[0] > 1e3:
                raise RuntimeError(
                    "pseudo-likelihood diverged: the samples look perfectly ordered (e.g. all "
                    "spins equal), for which the maximum is at beta = infinity"
                )
            record(theta, value)
            if float(step.abs().max()) < 1e-10:
                break
        if float(theta[0]) <= 0:
            raise RuntimeError(
                f"pseudo-likelihood gave beta = {float(theta[0]):.4g} <= 0: the samples are "
                "anti-correlated, which a ferromagnetic model with J > 0 cannot describe"
            )
        self.beta_ = float(theta[0])
        self.h_ = float(theta[1] / theta[0]) if fit_h else h0
        self.history_ = history

    def _fit_sml(self, x, fit_h, n_iter, lr, n_chains, seed, device, show_progress) -> None:
        dev = resolve_device(device)
        gen = make_generator(seed, dev)
        x = x.to(dev)
        H, W = x.shape[-2:]
        n_sites = H * W

        def phi(spins: torch.Tensor) -> torch.Tensor:
            """Features per site, averaged over samples: (J Σ_<ij> x_i x_j, Σ_i x_i) / n_sites."""
            spins = spins.to(torch.float32)
            bonds = -_ising_energy(spins, 1.0, 0.0, self.periodic)
            return torch.stack([bonds.mean() * self.J, spins.sum((-2, -1)).mean()]) / n_sites

        phi_data = phi(x)
        beta, h = self._params()
        theta = torch.tensor([beta, beta * h], dtype=torch.float64)  # natural parameters
        chains = (
            2 * torch.randint(0, 2, (n_chains, H, W), generator=gen, device=dev, dtype=torch.int8)
            - 1
        )
        fast = H % 2 == 0 and W % 2 == 0
        lattice = _QuarterLattice(chains, self.periodic) if fast else None
        masks = checkerboard_masks((H, W), periodic=self.periodic, device=dev)
        chains = chains.float()
        history = {"beta": [], "h": [], "phi_data": [], "phi_model": []}
        for t in _progress(range(n_iter), show_progress, desc="SML"):
            b = float(theta[0])
            hh = float(theta[1]) / b if fit_h else h
            # advance the persistent chains by one sweep at the current parameters
            if fast:
                lattice.sweep(*_heat_bath_coefficients(b, self.J, hh), gen)
                # the same features as phi(), read off the quarter-lattices directly
                phi_model = (
                    torch.stack(
                        [
                            -lattice.energy(self.J, 0.0).mean(),
                            lattice.magnetization().mean() * n_sites,
                        ]
                    )
                    / n_sites
                )
            else:
                chains = _gibbs_sweep(chains, b, self.J, hh, self.periodic, gen, masks)
                phi_model = phi(chains)
            # eq. (mrf-likelihood-gradient): d/dθ (1/n_sites) log p = E_data[φ] - E_model[φ]
            grad = (phi_data - phi_model).double().cpu()
            step = lr / math.sqrt(1.0 + t / 50.0)
            theta[0] += step * grad[0]
            if fit_h:
                theta[1] += step * grad[1]
            theta[0] = max(float(theta[0]), 1e-3)  # beta must stay positive
            history["beta"].append(float(theta[0]))
            history["h"].append(float(theta[1] / theta[0]) if fit_h else h)
            history["phi_data"].append(phi_data.cpu().numpy())
            history["phi_model"].append(phi_model.cpu().numpy())
        half = n_iter // 2
        self.beta_ = float(np.mean(history["beta"][half:]))
        self.h_ = float(np.mean(history["h"][half:])) if fit_h else h
        self.history_ = history


# =====================================================================================
# Denoising a binary image with an Ising prior
# =====================================================================================


def _check_labels(image, name: str) -> torch.Tensor:
    """A {0, 1} image of shape (H, W), H, W ≥ 2, as a float tensor."""
    t = as_tensor(image, name, ndim=2, dtype=torch.float32, device="cpu")
    if t.shape[0] < 2 or t.shape[1] < 2:
        raise ValueError(f"{name} must be at least 2×2, got shape {tuple(t.shape)}")
    check_binary(t, name, values=(0, 1))
    return t


class BinaryDenoiser:
    """Restore a binary image from a noisy copy with an Ising prior (Geman & Geman 1984).

    Model: the clean image ``y ∈ {0,1}^{H×W}`` has the Ising prior with coupling
    ``coupling`` (open boundary), and each pixel is flipped independently with probability
    ``p`` (binary symmetric channel). In spins ``s = 2y - 1``, ``t = 2z - 1``, the posterior
    is ``p(y | z) ∝ exp(-E(y; z))`` with the energy of :meth:`energy`, where the data weight
    is ``η = ½ ln((1 - p) / p)``.

    Give ``data_weight`` (``η > 0``) or ``noise_rate`` (``p ∈ (0, 0.5)``), not both.
    After :meth:`fit_noise_rate`, the estimated ``noise_rate_`` is used by :meth:`denoise`.
    """

    METHODS = ("icm", "gibbs", "anneal", "mean_field", "graphcut")

    def __init__(self, coupling: float = 1.0, data_weight: float | None = None, noise_rate=None):
        self.coupling = check_real(coupling, "coupling")
        if (data_weight is None) == (noise_rate is None):
            raise ValueError("give exactly one of data_weight and noise_rate")
        if noise_rate is not None:
            self.noise_rate = self._check_noise_rate(noise_rate, "noise_rate")
            self.data_weight = None
        else:
            self.data_weight = check_real(data_weight, "data_weight", minimum=0.0, strict_min=True)
            self.noise_rate = None

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
        if hasattr(self, "noise_rate_"):
            return self.weight_from_noise_rate(self.noise_rate_)
        if self.noise_rate is not None:
            return self.weight_from_noise_rate(self.noise_rate)
        return self.data_weight

    # ------------------------------------------------------------ energy
    def energy(self, labels, noisy) -> float:
        """Posterior energy ``E(y; z) = -c Σ_<ij> s_i s_j - η Σ_i s_i t_i``.

        Implements eq. (mrf-denoise-energy), with ``s = 2y - 1`` (candidate clean image),
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
        pair = _ising_energy(s, self.coupling, 0.0, periodic=False)
        return float(pair - self._eta() * (s * t).sum())

    # ------------------------------------------------------------ methods
    def _field(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Local field of the posterior: c Σ_neighbours s_j + η t_i."""
        return self.coupling * _neighbour_sum(s, periodic=False) + self._eta() * t

    def denoise(
        self,
        noisy,
        method: str = "graphcut",
        n_sweeps: int | None = None,
        burn_in: int | None = None,
        seed=0,
        device=None,
        T_start: float = 4.0,
        T_end: float = 0.05,
        return_history: bool = False,
    ):
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
        if method == "graphcut":
            if self.coupling < 0:
                raise ValueError(
                    f"coupling must be >= 0 for method='graphcut', got {self.coupling}: a "
                    "graph cut finds the exact MAP only for submodular (attractive) pairs"
                )
            labels = self._graphcut(z.numpy())
            return (labels, []) if return_history else labels
        dev = resolve_device(device)
        t = (2 * z - 1).to(dev)
        gen = make_generator(seed, dev)
        masks = checkerboard_masks(tuple(t.shape), periodic=False, device=dev)
        history = [] if return_history else None  # energies per sweep cost time: only on request
        if method == "icm":
            n_sweeps = 50 if n_sweeps is None else check_int(n_sweeps, "n_sweeps", minimum=1)
            s = self._icm(t.clone(), t, masks, n_sweeps, history)
        elif method == "mean_field":
            n_sweeps = 50 if n_sweeps is None else check_int(n_sweeps, "n_sweeps", minimum=1)
            m = t.clone()
            for _ in range(n_sweeps):
                for mask in masks:
                    m = torch.where(mask, torch.tanh(self._field(m, t)), m)
                if history is not None:
                    history.append(
                        self._energy_spins(torch.where(m >= 0, 1.0, -1.0).double(), t.double())
                    )
            s = torch.where(m >= 0, 1.0, -1.0)
        elif method == "gibbs":
            n_sweeps = 200 if n_sweeps is None else check_int(n_sweeps, "n_sweeps", minimum=1)
            burn_in = 50 if burn_in is None else check_int(burn_in, "burn_in", minimum=0)
            q = self._marginals(t, n_sweeps, burn_in, gen, masks, history)
            s = torch.where(q > 0.5, 1.0, -1.0)
        else:  # anneal
            n_sweeps = 300 if n_sweeps is None else check_int(n_sweeps, "n_sweeps", minimum=1)
            T_start = check_real(T_start, "T_start", minimum=0.0, strict_min=True)
            T_end = check_real(T_end, "T_end", minimum=0.0, strict_min=True)
            temps = np.geomspace(T_start, T_end, n_sweeps)
            s = t.clone()
            for T in temps:
                for mask in masks:
                    p_up = _conditional(self._field(s, t), 1.0 / T)
                    u = torch.rand(s.shape, generator=gen, device=dev)
                    s = torch.where(mask, torch.where(u < p_up, 1.0, -1.0), s)
                if history is not None:
                    history.append(self._energy_spins(s.double(), t.double()))
            s = self._icm(s, t, masks, 50, history)
        labels = ((s.cpu() + 1) / 2).to(torch.uint8).numpy()
        return (labels, history) if return_history else labels

    def _icm(self, s, t, masks, n_sweeps, history):
        for _ in range(n_sweeps):
            changed = False
            for mask in masks:
                f = self._field(s, t)
                # the most probable value given the neighbours; keep the current one on a tie
                best = torch.where(f > 0, 1.0, torch.where(f < 0, -1.0, s))
                new = torch.where(mask, best, s)
                changed |= bool((new != s).any())
                s = new
            if history is not None:
                history.append(self._energy_spins(s.double(), t.double()))
            if not changed:
                break
        return s

    def _marginals(self, t, n_sweeps, burn_in, gen, masks, history):
        s = t.clone()
        count = torch.zeros_like(t)
        for sweep in range(burn_in + n_sweeps):
            for mask in masks:
                p_up = _conditional(self._field(s, t), 1.0)
                u = torch.rand(s.shape, generator=gen, device=s.device)
                s = torch.where(mask, torch.where(u < p_up, 1.0, -1.0), s)
            if sweep >= burn_in:
                count += s > 0
            if history is not None:
                history.append(self._energy_spins(s.double(), t.double()))
        return count / n_sweeps

    def _graphcut(self, z: np.ndarray) -> np.ndarray:
        import maxflow

        eta = self._eta()
        # In labels: E = const + 2c Σ_<ij> [y_i != y_j] + 2η Σ_i [y_i != z_i].
        g = maxflow.Graph[float]()
        nodes = g.add_grid_nodes(z.shape)
        right_down = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0]])
        g.add_grid_edges(nodes, weights=2.0 * self.coupling, structure=right_down, symmetric=True)
        # A node on the sink side (label 1) pays its source capacity, on the source side
        # (label 0) its sink capacity: label 1 costs 2η where z = 0, label 0 costs 2η where z = 1.
        g.add_grid_tedges(nodes, 2.0 * eta * (z == 0), 2.0 * eta * (z == 1))
        g.maxflow()
        return g.get_grid_segments(nodes).astype(np.uint8)

    def posterior_marginals(
        self, noisy, n_sweeps: int = 200, burn_in: int = 50, seed=0, device=None
    ):
        """``p(y_i = 1 | z)`` for every pixel, estimated by Gibbs sampling of the posterior.

        The chain starts at the noisy image, runs ``burn_in`` sweeps, then averages the
        indicator ``[y_i = 1]`` over ``n_sweeps`` sweeps. Returns a float64 array ``(H, W)``.
        """
        z = _check_labels(noisy, "noisy")
        n_sweeps = check_int(n_sweeps, "n_sweeps", minimum=1)
        burn_in = check_int(burn_in, "burn_in", minimum=0)
        dev = resolve_device(device)
        t = (2 * z - 1).to(dev)
        masks = checkerboard_masks(tuple(t.shape), periodic=False, device=dev)
        gen = make_generator(seed, dev)
        q = self._marginals(t, n_sweeps, burn_in, gen, masks, None)
        return q.cpu().double().numpy()

    def _mean_field_marginals(self, t, n_sweeps, masks):
        m = t.clone()
        for _ in range(n_sweeps):
            for mask in masks:
                m = torch.where(mask, torch.tanh(self._field(m, t)), m)
        return (m + 1) / 2

    def fit_noise_rate(
        self,
        noisy,
        init: float = 0.25,
        n_iter: int = 15,
        method: str = "gibbs",
        n_sweeps: int = 30,
        burn_in: int = 10,
        tol: float = 1e-3,
        seed=0,
        device=None,
    ) -> BinaryDenoiser:
        """Estimate the unknown flip rate ``p`` by EM (Monte Carlo EM with ``method="gibbs"``).

        Implements eq. (mrf-noise-em).

        The clean image is hidden, so EM applies: the E-step computes the posterior
        marginals ``q_i = p(y_i = 1 | z; p)`` (Gibbs sampling or mean field) with the
        current ``p``; the M-step sets ``p`` to the expected fraction of flipped pixels,
        ``(1/n) Σ_i [z_i = 0] q_i + [z_i = 1] (1 - q_i)``. The coupling stays fixed.
        Stops when ``p`` changes by less than ``tol``. Sets ``noise_rate_`` and
        ``history_`` (``{"noise_rate": [...]}``, the starting value first).
        """
        z = _check_labels(noisy, "noisy")
        p = self._check_noise_rate(init, "init")
        n_iter = check_int(n_iter, "n_iter", minimum=1)
        check_choice(method, "method", ("gibbs", "mean_field"))
        n_sweeps = check_int(n_sweeps, "n_sweeps", minimum=1)
        burn_in = check_int(burn_in, "burn_in", minimum=0)
        tol = check_real(tol, "tol", minimum=0.0)
        dev = resolve_device(device)
        t = (2 * z - 1).to(dev)
        z = z.to(dev)
        masks = checkerboard_masks(tuple(t.shape), periodic=False, device=dev)
        gen = make_generator(seed, dev)
        history = [p]
        for _ in range(n_iter):
            self.noise_rate_ = p  # used by _eta() inside the E-step
            if method == "gibbs":
                q = self._marginals(t, n_sweeps, burn_in, gen, masks, None)
            else:
                q = self._mean_field_marginals(t, n_sweeps, masks)
            expected_flips = torch.where(z == 0, q, 1 - q).mean()
            new_p = float(expected_flips.clamp(1e-6, 0.5 - 1e-6))
            history.append(new_p)
            done = abs(new_p - p) < tol
            p = new_p
            if done:
                break
        self.noise_rate_ = p
        self.history_ = {"noise_rate": history}
        return self


# =====================================================================================
# A pairwise MRF over binarised 8×8 digits (fully visible Boltzmann machine)
# =====================================================================================


def binarize_digits(X, threshold: float = 0.5) -> torch.Tensor:
    """``{0, 1}`` float images ``(N, 1, 8, 8)``: 1 where the intensity exceeds ``threshold``."""
    threshold = check_real(threshold, "threshold", minimum=0.0, maximum=1.0)
    X = as_tensor(X, "X", ndim=4, min_value=0.0, max_value=1.0)
    return (X > threshold).to(torch.float32)


class PairwiseMRF:
    """A pairwise MRF with a coupling between every pair of pixels and a bias per pixel.

    Over spins ``s = 2x - 1 ∈ {-1, +1}^D`` of ``D = C·H·W`` pixels::

        p(s) = exp(½ sᵀ W s + bᵀ s) / Z,    W symmetric, zero diagonal,

    i.e. an Ising model on the complete graph with free couplings: a fully visible
    Boltzmann machine. The conditional of one pixel is ``p(s_i = +1 | rest) = σ(2 a_i)``
    with ``a_i = Σ_j W_ij s_j + b_i`` (eq. (mrf-gibbs-conditional) with ``β = 1``).

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

    def __init__(self, l2: float = 1e-3, n_chains: int = 256, device=None):
        self.l2 = check_real(l2, "l2", minimum=0.0)
        self.n_chains = check_int(n_chains, "n_chains", minimum=1)
        self.device = device

    # ------------------------------------------------------------ data
    def _to_spins(self, X, threshold=None, name="X") -> torch.Tensor:
        X = as_tensor(X, name, ndim=4, device=self._device)
        if threshold is not None:
            X = binarize_digits(X, threshold)
        else:
            if bool(((X != 0) & (X != 1)).any()):
                raise ValueError(
                    f"{name} must contain only 0 and 1 (binarised images); pass threshold=0.5 "
                    "or use binarize_digits(X) for [0, 1] grey images"
                )
        if hasattr(self, "image_shape_") and tuple(X.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"{name} has image shape {tuple(X.shape[1:])}, expected {self.image_shape_}"
            )
        return (2 * X - 1).flatten(1)

    @property
    def _device(self):
        return resolve_device(self.device)

    def _check_fitted(self):
        if not hasattr(self, "W_"):
            raise RuntimeError("this PairwiseMRF is not fitted yet: call fit(X) first")

    # ------------------------------------------------------------ pseudo-likelihood
    @staticmethod
    def _activation(s, W, b):
        """a_i = Σ_j W_ij s_j + b_i for every pixel (W symmetric, zero diagonal)."""
        return s @ W + b

    @staticmethod
    def _pll_per_image(s, W, b) -> torch.Tensor:
        """Σ_i log σ(2 s_i a_i) for each image: eq. (mrf-pseudolikelihood) for the pairwise MRF."""
        return torch.nn.functional.logsigmoid(2 * s * PairwiseMRF._activation(s, W, b)).sum(1)

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

    # ------------------------------------------------------------ fitting
    def fit(
        self,
        X,
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
          gradient ascent with eq. (mrf-likelihood-gradient), ``∂/∂W_ij = E_data[s_i s_j]
          - E_model[s_i s_j]`` and ``∂/∂b_i = E_data[s_i] - E_model[s_i]``, the model
          expectations taken over ``n_chains`` persistent chains advanced by one Gibbs
          sweep per minibatch (persistent contrastive divergence, Tieleman 2008).

        ``history_`` holds ``"pseudo_log_likelihood"`` (per image, on the training data)
        after every epoch.
        """
        check_choice(method, "method", ("pseudolikelihood", "sml"))
        if hasattr(self, "image_shape_"):
            del self.image_shape_
        s = self._to_spins(X, threshold)
        N, D = s.shape
        self.image_shape_ = tuple(as_tensor(X, "X", ndim=4).shape[1:])
        dev = self._device
        gen = make_generator(seed, dev)
        torch_gen_cpu = make_generator(seed, "cpu")
        # start: no couplings, biases matching the pixel means (independent pixels)
        mean = s.mean(0).clamp(-0.98, 0.98)
        b0 = torch.atanh(mean)
        W = torch.zeros(D, D, device=dev)
        history = {"pseudo_log_likelihood": []}
        off_diag = 1.0 - torch.eye(D, device=dev)

        if method == "pseudolikelihood":
            n_epochs = 300 if n_epochs is None else check_int(n_epochs, "n_epochs", minimum=1)
            lr = 0.05 if lr is None else check_real(lr, "lr", minimum=0.0, strict_min=True)
            U = torch.zeros(D, D, device=dev, requires_grad=True)
            b = b0.clone().requires_grad_(True)
            opt = torch.optim.Adam([U, b], lr=lr)
            for _ in _progress(range(n_epochs), progress, desc="pseudo-likelihood"):
                W = (U + U.T) * off_diag / 2
                pll = self._pll_per_image(s, W, b).mean()
                loss = -pll + self.l2 * (W**2).sum() / 2 + self.l2 / 100 * (b**2).sum() / 2
                opt.zero_grad()
                loss.backward()
                opt.step()
                history["pseudo_log_likelihood"].append(float(pll.detach()))
            W = ((U + U.T) * off_diag / 2).detach()
            b = b.detach()
        else:
            n_epochs = 30 if n_epochs is None else check_int(n_epochs, "n_epochs", minimum=1)
            lr = 0.02 if lr is None else check_real(lr, "lr", minimum=0.0, strict_min=True)
            batch_size = check_int(batch_size, "batch_size", minimum=1)
            b = b0.clone()
            chains = torch.where(
                torch.rand(self.n_chains, D, generator=gen, device=dev) < 0.5, -1.0, 1.0
            )
            for epoch in _progress(range(n_epochs), progress, desc="SML"):
                order = torch.randperm(N, generator=torch_gen_cpu).to(dev)
                step = lr / math.sqrt(1.0 + epoch / 5.0)
                for start in range(0, N, batch_size):
                    batch = s[order[start : start + batch_size]]
                    chains = self._gibbs(chains, W, b, 1, gen, "sequential")
                    # eq. (mrf-likelihood-gradient): E_data[φ] - E_model[φ]
                    grad_W = batch.T @ batch / len(batch) - chains.T @ chains / len(chains)
                    grad_b = batch.mean(0) - chains.mean(0)
                    W = W + step * (grad_W * off_diag - self.l2 * W)
                    b = b + step * (grad_b - self.l2 / 100 * b)
                history["pseudo_log_likelihood"].append(float(self._pll_per_image(s, W, b).mean()))
            self.chains_ = chains
        if not (torch.isfinite(W).all() and torch.isfinite(b).all()):
            raise RuntimeError("training diverged (non-finite parameters): lower lr")
        self.W_, self.b_ = W, b
        self.history_ = history
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

    def sample(self, n: int, n_sweeps: int = 200, seed=None, scan: str = "sequential", init=None):
        """``n`` images ``(n, C, H, W)`` in ``{0, 1}`` by Gibbs sampling from random noise.

        Each of the ``n`` chains starts from independent fair coins (or from ``init``,
        ``{0, 1}`` images) and runs ``n_sweeps`` sweeps; one sweep visits the ``D`` pixels
        in order (``scan="sequential"``) or in a fresh random order (``"random"``), each
        update drawing a pixel from its conditional given all others.
        """
        self._check_fitted()
        n = check_int(n, "n", minimum=1)
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
                raise ValueError(f"init has {s.shape[0]} images, expected n={n}")
        s = self._gibbs(s, self.W_.to(dev), self.b_.to(dev), n_sweeps, gen, scan)
        return ((s + 1) / 2).reshape(n, *self.image_shape_)

"""Lattice helpers of the Ising model: exact results, colour classes, local field, Gibbs
conditional and sweeps, the fast int8 quarter-lattice sampler, enumeration of tiny lattices."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy.special import ellipk

from .._core import as_tensor, check_binary, check_int, check_real, resolve_device

#: Largest lattice (in sites) for which the partition function is computed by enumeration:
#: 2**16 = 65,536 configurations. A 5×5 lattice would already need 2**25 ≈ 34 million.
MAX_ENUMERATION_SITES = 16


# =====================================================================================
# Exact results for the infinite 2D Ising model (checks for the sampler)
# =====================================================================================


def ising_critical_temperature(J: float = 1.0) -> float:
    """Critical temperature of the 2D square-lattice Ising model (Onsager 1944).

    Implements eq. (4.5) [mrf-critical-temperature].

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

    Implements eq. (4.6) [mrf-yang].

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

    Implements eq. (4.7) [mrf-onsager-energy].

    With ``K = J/T``, ``k = 2 sinh(2K) / cosh(2K)**2`` and the complete elliptic integral
    of the first kind ``K1(k) = ∫_0^{π/2} dθ / sqrt(1 - k² sin²θ)``::

        u(T) = -J coth(2K) [1 + (2/π) (2 tanh(2K)**2 - 1) K1(k)]

    SciPy's ``ellipk(m)`` takes the *parameter* ``m = k²``, not the modulus ``k``. At
    ``T_c`` the factor ``2 tanh² - 1`` vanishes while ``K1`` diverges only logarithmically,
    so ``u(T_c) = -J coth(2K_c) = -√2 J``; as ``T → 0``, ``u → -2J`` (all bonds satisfied).
    """
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


def _cycle_colours(n: int) -> np.ndarray:
    """A proper colouring of a cycle of ``n`` sites with values in {0, 1, 2}: 0, 1, 0, 1, …,
    and on an odd cycle the last site gets 2."""
    c = np.arange(n) % 2
    if n % 2 == 1:
        c[-1] = 2
    return c


@lru_cache(maxsize=64)
def _colouring(H: int, W: int, periodic: bool) -> tuple[np.ndarray, int]:
    """A proper colouring of the lattice graph: no two neighbours share a colour.

    Two colours, the checkerboard ``(i + j) % 2``, for open boundaries and for periodic
    lattices with even sides: the 4-neighbour lattice is then bipartite (every bond joins an
    even and an odd site). On a periodic lattice with an odd side the wrap-around bonds close
    cycles of odd length, which no two colours can colour, and exactly three suffice:
    ``(a(i) + b(j)) % 3`` with ``a`` and ``b`` proper colourings of the row and column cycles
    with values in {0, 1, 2}. Neighbours differ in one coordinate only, so their colours
    differ by ``a(i) - a(i')`` or ``b(j) - b(j')``, never 0 mod 3.
    """
    i, j = np.indices((H, W))
    if not periodic or (H % 2 == 0 and W % 2 == 0):
        return (i + j) % 2, 2
    a, b = _cycle_colours(H), _cycle_colours(W)
    return (a[:, None] + b[None, :]) % 3, 3


def checkerboard_masks(shape, periodic: bool = True, device=None) -> tuple[torch.Tensor, ...]:
    """Boolean masks of the colour classes of the lattice (implements eq. (4.10) [mrf-checkerboard]).

    For an ``(H, W)`` lattice with an open boundary, or a periodic one with even sides,
    these are the two checkerboard colours ``(black, white)`` with ``black = (i + j) even``:
    every neighbour of a black site is white, so all black sites are conditionally
    independent given the white ones and can be resampled at once. A periodic lattice with
    an odd side needs a third colour (the wrap-around bonds close odd cycles), and then
    exactly three masks are returned (see ``_colouring``). The masks are disjoint and cover the lattice.
    """
    H, W = _check_shape(shape)
    colours, n_colours = _colouring(H, W, bool(periodic))
    dev = resolve_device(device) if device is not None else torch.device("cpu")
    col = torch.as_tensor(colours, device=dev)
    return tuple(col == k for k in range(n_colours))


def _neighbour_sum(x: torch.Tensor, periodic: bool) -> torch.Tensor:
    """Σ over the four nearest neighbours of every site; last two dims are the lattice."""
    if periodic:
        return (torch.roll(x, 1, -2) + torch.roll(x, -1, -2)
                + torch.roll(x, 1, -1) + torch.roll(x, -1, -1))
    s = torch.zeros_like(x)
    s[..., 1:, :] += x[..., :-1, :]
    s[..., :-1, :] += x[..., 1:, :]
    s[..., :, 1:] += x[..., :, :-1]
    s[..., :, :-1] += x[..., :, 1:]
    return s


def local_field(x, J: float = 1.0, h: float = 0.0, periodic: bool = True) -> torch.Tensor:
    """Local field at every site: ``f_i = J Σ_{j ∈ N(i)} x_j + h``.

    Implements eq. (4.8) [mrf-local-field]. ``x``: ±1 spins ``(H, W)`` or ``(N, H, W)``.
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

    Implements eq. (4.9) [mrf-gibbs-conditional]: ``p(x_i = +1 | x_rest) = 1 / (1 + exp(-2 β f_i))``
    where ``f_i`` is the local field of :func:`local_field`.
    """
    beta = check_real(beta, "beta", minimum=0.0, strict_min=True)
    field = as_tensor(field, "field", dtype=torch.float32)
    return _conditional(field, beta)


def _conditional(field: torch.Tensor, beta: float) -> torch.Tensor:
    """gibbs_conditional without the input checks, for the samplers' inner loops."""
    return torch.sigmoid(2.0 * beta * field)


def gibbs_sweep(x, beta: float, J: float = 1.0, h: float = 0.0, periodic: bool = True,
                generator=None) -> torch.Tensor:
    """One checkerboard Gibbs sweep: resample every colour class in turn.

    Implements eq. (4.10) [mrf-checkerboard]. For each colour (black, then white) all its sites
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
    """``E(x) = -J Σ_<ij> x_i x_j - h Σ_i x_i`` per configuration of the floating-point
    spins ``x`` (last two dims = lattice)."""
    if periodic:
        down, right = x * torch.roll(x, -1, -2), x * torch.roll(x, -1, -1)
    else:
        down, right = x[..., :-1, :] * x[..., 1:, :], x[..., :, :-1] * x[..., :, 1:]
    bonds = down.sum((-2, -1)) + right.sum((-2, -1))
    return -J * bonds - h * x.sum((-2, -1))


# ------------------------------------------------------------ fast checkerboard sampler
#
# The sampler behind IsingModel.sample for lattices with even sides (eq. (4.10) [mrf-checkerboard],
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


def _shifted_pairs(out: torch.Tensor, src: torch.Tensor, step: int, dim: int, periodic: bool):
    """(destination, source) view pairs with ``out[k] += src[k - step]`` along ``dim``
    (wrapping if periodic, else 0 outside)."""
    n = src.shape[dim]
    if step == +1:
        pairs = [(out.narrow(dim, 1, n - 1), src.narrow(dim, 0, n - 1))]
        if periodic:
            pairs.append((out.narrow(dim, 0, 1), src.narrow(dim, n - 1, 1)))
    else:
        pairs = [(out.narrow(dim, 0, n - 1), src.narrow(dim, 1, n - 1))]
        if periodic:
            pairs.append((out.narrow(dim, n - 1, 1), src.narrow(dim, 0, 1)))
    return pairs


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
        # The quarters and the sum buffer live as long as the lattice and are only updated in
        # place, so the shifted views that the neighbour sums read are built once, here
        # (building them anew at every half-sweep cost as much as the arithmetic on small
        # lattices).
        self._plan = {}
        for names in _COLOURS.values():
            for k, name in enumerate(names):
                rows, row_step, cols, col_step = _SHIFTS[name]
                R, C, out = self.q[rows], self.q[cols], self._sum[k]
                pairs = _shifted_pairs(out, R, row_step, -2, periodic)
                pairs += _shifted_pairs(out, C, col_step, -1, periodic)
                self._plan[name] = (R, C, out, pairs)

    def full(self) -> torch.Tensor:
        n, h, w = self.q["q00"].shape
        x = torch.empty((n, 2 * h, 2 * w), dtype=torch.int8, device=self.q["q00"].device)
        for a in (0, 1):
            for b in (0, 1):
                x[:, a::2, b::2] = self.q[f"q{a}{b}"]
        return x

    def colour_neighbour_sums(self, colour: str) -> torch.Tensor:
        """Neighbour sums (int8, in -4..4) of both quarters of ``colour``, shape
        (2, N, H/2, W/2), through the views prepared in ``__init__``."""
        for name in _COLOURS[colour]:
            R, C, out, pairs = self._plan[name]
            torch.add(R, C, out=out)  # the neighbours at the same (r, c)
            for dst, src in pairs:
                dst.add_(src)
        return self._sum

    def update(self, colour: str, a: float, b: float, generator) -> None:
        """Heat-bath update of all sites of one colour: +1 with probability σ(a s + b).

        ``s`` is the neighbour sum, ``a = 2 beta J``, ``b = 2 beta h``
        (eq. (4.9) [mrf-gibbs-conditional]). Sites of one colour are never neighbours, so they are
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
        """E(x) of each of the N lattices (eq. (4.4) [mrf-ising-energy])."""
        # Every bond joins a black and a white site: summing x_i · (neighbour sum) over the
        # black sites counts each bond exactly once.
        black = self.colour["black"]
        bonds = (black * self.colour_neighbour_sums("black")).sum((0, -2, -1), dtype=torch.float32)
        n_sites = 4 * self.q["q00"][0].numel()
        return -J * bonds - h * self.magnetization() * n_sites


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



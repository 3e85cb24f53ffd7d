"""A batch of Ising Markov chains, advanced by one of the course's three sweeps.

:meth:`IsingModel.sample` runs independent chains to equilibrium, and stochastic maximum
likelihood (``_learning.fit_sml``) advances persistent chains by one sweep per step. Both
need the same three things from a batch of chains, whatever the sweep: *one sweep* at given
``(beta, h)``, the *statistics* of the current states, and the *states* themselves. Each
class below gives them for one sweep:

- :class:`_SwendsenWangChains`: Swendsen–Wang cluster sweeps (eq. (4.13) [mrf-sw-bond]);
- :class:`_QuarterLatticeChains`: checkerboard Gibbs sweeps (eq. (4.10) [mrf-checkerboard])
  on int8 quarter-lattices, the fast code for lattices with even sides;
- :class:`_MaskedGibbsChains`: the same Gibbs sweeps through colour masks, for any lattice.

:func:`make_chains` picks the class for a method and a lattice.
"""

from __future__ import annotations

import numpy as np
import torch

from ._lattice import _gibbs_sweep, _ising_energy, _QuarterLattice, checkerboard_masks
from .cluster import _sw_sweep


def make_chains(method: str, x: torch.Tensor, J: float, periodic: bool, generator, device):
    """Chains started at the int8 ±1 states ``x`` ``(n, H, W)``, swept by ``method``
    (``"swendsen_wang"`` or ``"gibbs"``; Gibbs on even sides runs the quarter-lattice code)."""
    H, W = x.shape[-2:]
    if method == "swendsen_wang":
        return _SwendsenWangChains(x, J, periodic, generator, device)
    if H % 2 == 0 and W % 2 == 0:
        return _QuarterLatticeChains(x, J, periodic, generator, device)
    return _MaskedGibbsChains(x, J, periodic, generator, device)


def sufficient_statistics(spins, J: float, periodic: bool, device) -> torch.Tensor:
    """The Ising model's features per site, averaged over the batch:
    ``(J Σ_<ij> x_i x_j, Σ_i x_i) / (H·W)``, the ``φ`` of eq. (4.14) [mrf-likelihood-gradient]."""
    spins = torch.as_tensor(spins, device=device).to(torch.float32)
    n_sites = spins.shape[-2] * spins.shape[-1]
    bonds = -_ising_energy(spins, 1.0, 0.0, periodic)
    return torch.stack([bonds.mean() * J, spins.sum((-2, -1)).mean()]) / n_sites


class _Chains:
    """What every batch of chains shares: the coupling, the boundary and the generator."""

    desc = "sweeps"  # the progress bar's label

    def __init__(self, J: float, periodic: bool, generator, device):
        self.J, self.periodic, self.generator, self.device = J, periodic, generator, device

    def features(self) -> torch.Tensor:
        """:func:`sufficient_statistics` of the current states."""
        return sufficient_statistics(self.states(), self.J, self.periodic, self.device)


class _SwendsenWangChains(_Chains):
    """Chains kept as an int8 NumPy array, advanced by Swendsen–Wang cluster sweeps."""

    desc = "Swendsen-Wang sweeps"

    def __init__(self, x, J, periodic, generator, device):
        super().__init__(J, periodic, generator, device)
        self.arr = x.cpu().numpy()

    def sweep(self, beta: float, h: float) -> None:
        self.arr = _sw_sweep(self.arr, beta, self.J, h, self.periodic, self.generator, self.device)

    def magnetization(self) -> torch.Tensor:
        return _np_magnetization_energy(self.arr, self.J, 0.0, self.periodic)[0]

    def energy_per_spin(self, h: float) -> torch.Tensor:
        return _np_magnetization_energy(self.arr, self.J, h, self.periodic)[1]

    def states(self) -> torch.Tensor:
        return torch.as_tensor(self.arr, device=self.device).to(torch.float32)


class _QuarterLatticeChains(_Chains):
    """Chains on lattices with even sides, advanced by the int8 quarter-lattice Gibbs sweep."""

    desc = "Gibbs sweeps"

    def __init__(self, x, J, periodic, generator, device):
        super().__init__(J, periodic, generator, device)
        self.lattice = _QuarterLattice(x, periodic)
        self.n_sites = x.shape[-2] * x.shape[-1]

    def sweep(self, beta: float, h: float) -> None:
        self.lattice.sweep(2.0 * beta * self.J, 2.0 * beta * h, self.generator)

    def magnetization(self) -> torch.Tensor:
        return self.lattice.magnetization().cpu()

    def energy_per_spin(self, h: float) -> torch.Tensor:
        return (self.lattice.energy(self.J, h) / self.n_sites).cpu()

    def features(self) -> torch.Tensor:
        """:func:`sufficient_statistics`, read off the quarter-lattices directly."""
        lattice, n_sites = self.lattice, self.n_sites
        per_lattice = [-lattice.energy(self.J, 0.0).mean(), lattice.magnetization().mean() * n_sites]
        return torch.stack(per_lattice) / n_sites

    def states(self) -> torch.Tensor:
        return self.lattice.full().to(torch.float32)


class _MaskedGibbsChains(_Chains):
    """Chains as float tensors, advanced by :func:`gibbs_sweep`'s colour masks (any lattice,
    odd sides included)."""

    desc = "Gibbs sweeps"

    def __init__(self, x, J, periodic, generator, device):
        super().__init__(J, periodic, generator, device)
        self.x = x.to(torch.float32)
        self.masks = checkerboard_masks(tuple(x.shape[-2:]), periodic=periodic, device=device)

    def sweep(self, beta: float, h: float) -> None:
        self.x = _gibbs_sweep(self.x, beta, self.J, h, self.periodic, self.generator, self.masks)

    def magnetization(self) -> torch.Tensor:
        return self.x.mean((-2, -1)).cpu()

    def energy_per_spin(self, h: float) -> torch.Tensor:
        n_sites = self.x.shape[-2] * self.x.shape[-1]
        return (_ising_energy(self.x, self.J, h, self.periodic) / n_sites).cpu()

    def states(self) -> torch.Tensor:
        return self.x.to(torch.float32)


def _np_magnetization_energy(x: np.ndarray, J: float, h: float, periodic: bool):
    """Mean spin and energy per spin of each lattice of an int8 (N, H, W) batch."""
    xf = x.astype(np.float32)
    if periodic:
        bonds = (xf * np.roll(xf, -1, 2)).sum((1, 2)) + (xf * np.roll(xf, -1, 1)).sum((1, 2))
    else:
        bonds = (xf[:, :, :-1] * xf[:, :, 1:]).sum((1, 2)) + (xf[:, :-1] * xf[:, 1:]).sum((1, 2))
    m = xf.mean((1, 2))
    n_sites = x.shape[1] * x.shape[2]
    return torch.from_numpy(m), torch.from_numpy((-J * bonds - h * m * n_sites) / n_sites)

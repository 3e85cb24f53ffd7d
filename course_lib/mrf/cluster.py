"""Swendsen–Wang cluster updates for the Ising model (Swendsen & Wang 1987).

One sweep (eq. (4.13) [mrf-sw-bond]):

1. **Bonds.** Every nearest-neighbour pair ``<ij>`` whose bond is satisfied
   (``J x_i x_j > 0``) is *frozen* with probability ``p = 1 - exp(-2 beta |J|)``;
   unsatisfied pairs are never frozen.
2. **Ghost spin** (the external field). A ghost site with the fixed spin ``sign(h)`` is joined to
   every site with ``h x_i > 0`` with probability ``p_h = 1 - exp(-2 beta |h|)``: the field is
   the coupling to one extra spin that neighbours every site.
3. **Clusters.** The connected components of the frozen bonds are found at once by
   ``scipy.ndimage.label`` (all chains of a batch in one call) and a vectorised union–find
   for the bonds that wrap around and the ghost's; there is no Python loop over sites.
4. **Flips.** Every cluster is flipped with probability ½, except a cluster that contains
   the ghost, which keeps the ghost's sign.

This leaves the Ising distribution invariant (it is a Gibbs sampler of the Fortuin–Kasteleyn
joint distribution of spins and bonds, Edwards & Sokal 1988) and, unlike single-site Gibbs
updates, flips whole domains in one step: near ``T_c`` its autocorrelation time grows far
more slowly with the lattice size (critical slowing down, Sokal 1997).

The labelling runs on the CPU (scipy); spins on a GPU are copied there and back.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

from .._core import check_real, make_generator
from ._lattice import _check_spins

__all__ = ["swendsen_wang_sweep", "bond_probability"]


def bond_probability(beta: float, J: float = 1.0) -> float:
    """``p = 1 - exp(-2 beta |J|)``: the chance that a satisfied bond is frozen (eq. (4.13) [mrf-sw-bond])."""
    beta = check_real(beta, "beta", minimum=0.0, strict_min=True)
    J = check_real(J, "J")
    return -math.expm1(-2.0 * beta * abs(J))


def _uniform(shape, generator, device) -> np.ndarray:
    return torch.rand(shape, generator=generator, device=device).cpu().numpy()


_STRUCTURE = np.zeros((3, 3, 3), dtype=bool)  # 4-neighbour connectivity within each chain
_STRUCTURE[1, 1, :] = _STRUCTURE[1, :, 1] = True


def _sw_sweep(x: np.ndarray, beta: float, J: float, h: float, periodic: bool, generator,
              device="cpu") -> np.ndarray:
    """One Swendsen–Wang sweep of a batch ``x`` (int8 ±1, shape (N, H, W)), returns new int8.

    Clusters are labelled with ``scipy.ndimage.label`` on an image of twice the lattice's
    resolution in which site ``(i, j)`` is pixel ``(2i, 2j)`` and a frozen bond is the pixel
    between its two sites; bonds that wrap around a periodic lattice and the ghost's bonds
    then merge labels by a vectorised union–find (:func:`_merge`) on the few labels they
    touch.
    """
    N, H, W = x.shape
    p = -math.expm1(-2.0 * beta * abs(J))
    sign_J = 1 if J >= 0 else -1
    u = _uniform((2, N, H, W), generator, device)
    bond_r = (x * np.roll(x, -1, axis=2) * sign_J > 0) & (u[0] < p)
    bond_d = (x * np.roll(x, -1, axis=1) * sign_J > 0) & (u[1] < p)
    img = np.zeros((N, 2 * H - 1, 2 * W - 1), dtype=bool)
    img[:, ::2, ::2] = True
    img[:, ::2, 1::2] = bond_r[:, :, :-1]
    img[:, 1::2, ::2] = bond_d[:, :-1, :]
    lab, n_lab = ndimage.label(img, structure=_STRUCTURE)
    site = lab[:, ::2, ::2]  # labels 1..n_lab; label 0 is free: it stands for the ghost
    a, b = [], []
    if periodic:
        wrap_r, wrap_d = bond_r[:, :, -1], bond_d[:, -1, :]
        a += [site[:, :, -1][wrap_r], site[:, -1, :][wrap_d]]
        b += [site[:, :, 0][wrap_r], site[:, 0, :][wrap_d]]
    if h != 0.0:
        p_h = -math.expm1(-2.0 * beta * abs(h))
        u_h = _uniform((N, H, W), generator, device)
        ghost = (x * (1 if h > 0 else -1) > 0) & (u_h < p_h)
        touched = site[ghost]
        a.append(touched)
        b.append(np.zeros_like(touched))
    root = np.arange(n_lab + 1)
    if a and sum(len(e) for e in a):
        root = _merge(root, np.concatenate(a), np.concatenate(b))
    flip = _uniform((n_lab + 1,), generator, device) < 0.5
    flip[root[0]] = False  # the ghost's cluster keeps the ghost's sign
    out = x.copy()
    out[flip[root[site]]] *= -1
    return out


def _merge(root: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Join the labels ``a[k]``–``b[k]``: each label's new root is the smallest in its group.

    Vectorised union–find on the few extra edges (wrap-around and ghost bonds): hook the larger
    root of every edge whose ends differ onto the smaller one, compress the paths by pointer
    jumping, repeat until every edge joins equal roots. Roots only decrease, so it ends.
    """
    root = root.copy()
    while True:
        ra, rb = root[a], root[b]
        differ = ra != rb
        if not differ.any():
            return root
        np.minimum.at(root, np.maximum(ra, rb)[differ], np.minimum(ra, rb)[differ])
        while True:  # pointer jumping: afterwards root[root] == root
            jumped = root[root]
            if np.array_equal(jumped, root):
                break
            root = jumped


def swendsen_wang_sweep(
    x, beta: float, J: float = 1.0, h: float = 0.0, periodic: bool = True, generator=None
) -> torch.Tensor:
    """One Swendsen–Wang sweep of ±1 spins ``(H, W)`` or ``(N, H, W)`` (see the module).

    Implements eq. (4.13) [mrf-sw-bond]. Returns a new float tensor of ±1 with the shape and device
    of ``x``. ``generator``: a ``torch.Generator`` (or a seed) for reproducible draws.
    """
    x = _check_spins(x)
    beta = check_real(beta, "beta", minimum=0.0, strict_min=True)
    J = check_real(J, "J")
    h = check_real(h, "h")
    if not isinstance(generator, torch.Generator):
        generator = make_generator(generator, "cpu")
    batch = x if x.dim() == 3 else x[None]
    arr = batch.cpu().numpy().astype(np.int8)
    new = _sw_sweep(arr, beta, J, h, bool(periodic), generator, generator.device)
    out = torch.as_tensor(new, dtype=torch.float32, device=x.device)
    return out if x.dim() == 3 else out[0]

"""Markov random fields on images: the Ising model, MRF denoising and a pairwise MRF of digits.

A package; every public name is re-exported here:

- ``_lattice``: exact results, colour classes, local field, Gibbs conditional and sweeps;
- ``_ising``: :class:`IsingModel`;
- ``cluster``: Swendsen–Wang cluster updates (:func:`swendsen_wang_sweep`);
- ``diagnostics``: autocorrelation time, effective sample size, Gelman–Rubin R̂;
- ``denoise``: :class:`BinaryDenoiser`; ``pairwise``: :class:`PairwiseMRF`.

Three models live here, all built from the same two ideas, *local energy terms* and
*Markov chain sampling*:

- :class:`IsingModel`: the 2D Ising model ``p(x) ∝ exp(-beta E(x))`` over spins
  ``x_i ∈ {-1, +1}`` on a square lattice. It is sampled by Swendsen–Wang cluster updates
  (the default) or checkerboard Gibbs sampling, with convergence diagnostics; its partition
  function is computed exactly on tiny lattices and estimated by annealed importance
  sampling on any lattice, and its parameter ``beta``
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

Every formula of the book lives in one function whose docstring cites the equation by the
number the book shows and by its label in the sources, e.g. eq. (4.9) [mrf-gibbs-conditional].
"""

from ._ais import ais_standard_error
from ._ising import DEFAULT_SWEEPS, IsingModel
from ._lattice import (
    MAX_ENUMERATION_SITES,
    checkerboard_masks,
    gibbs_conditional,
    gibbs_sweep,
    ising_critical_temperature,
    local_field,
    onsager_energy_per_spin,
    onsager_magnetization,
    state_index,
)
from .cluster import swendsen_wang_sweep
from .denoise import BinaryDenoiser
from .diagnostics import effective_sample_size, gelman_rubin, integrated_autocorrelation_time
from .pairwise import PairwiseMRF, binarize_digits

__all__ = [
    "ising_critical_temperature",
    "onsager_magnetization",
    "onsager_energy_per_spin",
    "checkerboard_masks",
    "local_field",
    "gibbs_conditional",
    "gibbs_sweep",
    "swendsen_wang_sweep",
    "integrated_autocorrelation_time",
    "effective_sample_size",
    "gelman_rubin",
    "ais_standard_error",
    "IsingModel",
    "BinaryDenoiser",
    "PairwiseMRF",
    "binarize_digits",
    "state_index",
    "MAX_ENUMERATION_SITES",
    "DEFAULT_SWEEPS",
]

"""Variational autoencoders (VAE): a latent-variable model trained by maximising the ELBO.

The chapter "Variational autoencoders" (book/06_vae.md) derives every formula used here. Each
one lives in exactly one module-level function, whose docstring cites the equation by the
number the book shows and by its label in the sources, e.g. eq. (6.3) [vae-elbo]:

=========================================  ===================================================
function                                   book equation
=========================================  ===================================================
:func:`affine_marginal_log_prob`           (6.2) ``vae-affine``   log N(x | b, s²I + W Wᵀ) (erratum 4)
:func:`prior_monte_carlo_log_prob`         (6.1) ``vae-marginal`` log ∫ p(z) p(x|z) dz by sampling the prior
:func:`reparameterize`                     (6.5) ``vae-reparam``  z = μ + σ ⊙ ε
:func:`gaussian_kl`                        (6.4) ``vae-kl``       KL(N(μ, diag σ²) ‖ N(0, I)), closed form
:func:`mixture_prior_log_prob`             (6.11) ``vae-vamp``    log Σ_k π_k N(z | m_k, diag v_k): learned prior
:func:`monte_carlo_kl`                     (6.12) ``vae-mckl``    log q(z|x) − log p(z) at a draw z ~ q(z|x)
:func:`elbo_terms`                         (6.3) ``vae-elbo``     E_q[log p(x|z)] − KL(q ‖ p)
:func:`discretized_logistic_log_prob`      (6.7) ``vae-dlogistic`` P(level) of a discretised logistic
:func:`categorical_log_prob`               (6.6) ``vae-categorical`` P(level) of a 17-way softmax
:func:`iwae_log_likelihood`                (6.9) ``vae-iwae``     log (1/k) Σ_i p(x, z_i) / q(z_i | x)
:func:`pixel_histogram_log_prob`           (6.8) ``vae-histogram`` independent pixels, one histogram each
:func:`reparam_gradient`                   (6.13) ``vae-gradrep``  d/dμ E f(z) by f'(μ + σε)
:func:`score_function_gradient`            (6.14) ``vae-gradscore`` d/dμ E f(z) by f(z) ∂_μ log q(z) (REINFORCE)
:func:`elbo_gap_split`                     (6.15) ``vae-gaps``    approximation + amortisation gap
:meth:`VAE.rate_distortion`                (6.16) ``vae-ratedist`` −ELBO = distortion + rate
:func:`active_units`                       (6.17) ``vae-active``  Cov_x(E_q[z_u]) > 0.01
:func:`free_bits_kl`                       (6.18) ``vae-freebits`` Σ_g max(λ, mean KL_g)
=========================================  ===================================================

A package; every public name is re-exported here. Read it in this order:

- ``formulas``: the equations above, on tensors, one function each;
- ``likelihoods``: the decoders p(x | z), eqs. (6.6)-(6.7) (and the independent-pixel baseline, eq. (6.8)), the course's likelihood scale, and
  the presets each decoder implies for the data (``DATA_PRESETS``: grey levels, points or
  binary images);
- ``networks``: the encoder, the decoder and the prior p(z), and the one-draw ELBO;
- ``train``: the pieces of :meth:`VAE.fit`: the data of a fit, :func:`vae_train_step`, one
  epoch, validation and early stopping;
- ``model``: :class:`VAE` itself: hyperparameters, fit, encode, decode, sample;
- ``analysis``: the chapter's tools for a fitted VAE (rate and distortion, inference gaps,
  the IWAE log-likelihood), also offered as methods of :class:`VAE`.
"""

from ..training import mlp
from .analysis import ELBO, InferenceGaps
from .formulas import (
    active_units,
    affine_marginal_log_prob,
    elbo_gap_split,
    elbo_terms,
    free_bits_kl,
    gaussian_kl,
    iwae_curve,
    iwae_log_likelihood,
    iwae_standard_error,
    log_normal_diag,
    mixture_prior_log_prob,
    monte_carlo_kl,
    prior_monte_carlo_log_prob,
    reparam_gradient,
    reparameterize,
    score_function_gradient,
)
from .likelihoods import (
    DATA_PRESETS,
    LIKELIHOODS,
    DataPreset,
    bernoulli_log_prob,
    categorical_log_prob,
    decoder_log_prob,
    discretized_logistic_log_prob,
    gaussian_log_prob,
    n_decoder_params,
    pixel_histogram_log_prob,
    to_levels,
)
from .model import VAE
from .networks import PRIORS, MixturePrior, VampPrior
from .train import vae_train_step

__all__ = [
    "VAE",
    "LIKELIHOODS",
    "ELBO",
    "affine_marginal_log_prob",
    "prior_monte_carlo_log_prob",
    "reparameterize",
    "gaussian_kl",
    "mixture_prior_log_prob",
    "monte_carlo_kl",
    "PRIORS",
    "MixturePrior",
    "VampPrior",
    "vae_train_step",
    "log_normal_diag",
    "elbo_terms",
    "to_levels",
    "discretized_logistic_log_prob",
    "categorical_log_prob",
    "gaussian_log_prob",
    "bernoulli_log_prob",
    "decoder_log_prob",
    "iwae_log_likelihood",
    "iwae_curve",
    "iwae_standard_error",
    "pixel_histogram_log_prob",
    "reparam_gradient",
    "score_function_gradient",
    "elbo_gap_split",
    "active_units",
    "free_bits_kl",
    "InferenceGaps",
    "mlp",
    "n_decoder_params",
    "DATA_PRESETS",
    "DataPreset",
]

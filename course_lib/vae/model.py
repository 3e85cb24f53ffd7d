"""The estimator :class:`VAE`: its hyperparameters, the checks of its inputs, training
(:meth:`VAE.fit`), and the model's own uses: encode, decode, sample.

The equations it calls are in :mod:`.formulas` and :mod:`.likelihoods`, its networks and
prior in :mod:`.networks`, the pieces of training in :mod:`.train`, and the chapter's
analysis tools (offered as methods) in :mod:`.analysis`.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from .._core import check_bool, check_int, progress
from ..data import DIGIT_LEVELS
from ..training import NeuralEstimator, one_hot, seeded
from . import analysis
from .checks import (
    check_data,
    check_hyperparameters,
    fitted_input,
    label_one_hot,
    latent_tensor,
    net_device,
)
from .likelihoods import _decoder_mean
from .networks import (
    build_networks,
    build_prior,
    decode,
    encode,
    prior_components,
    sample_prior,
)
from .train import (
    EarlyStopping,
    build_training,
    resume_run,
    run_state,
    train_epoch,
    training_set,
    validate,
)

# ====================================================================== the estimator


def _class_prior(y_idx, classes):
    """p(y): the training labels' frequencies (None for an unconditional model)."""
    if y_idx is None:
        return None
    return np.bincount(y_idx.numpy(), minlength=len(classes)) / len(y_idx)


class VAE(NeuralEstimator):
    r"""Variational autoencoder (Kingma & Welling 2014; Rezende et al. 2014), conditional when
    labels are given to :meth:`fit` (Sohn et al. 2015).

    Model: :math:`z \sim p(z)`, :math:`x \mid z \sim p_\theta(x \mid z)` with a
    decoder network giving the parameters of ``likelihood`` for every pixel; encoder
    :math:`q_\phi(z \mid x) = \mathcal N(\mu_\phi(x), \mathrm{diag}\,\sigma^2_\phi(x))`.
    The prior p(z) is by default a VampPrior (Tomczak & Welling 2018), eq. (6.11) [vae-vamp], the mixture
    :math:`\frac1K\sum_k q_\phi(z \mid u_k)` at K learned pseudo-inputs, learnt with the rest;
    ``prior="gaussian"`` is the textbook :math:`\mathcal N(0, I_d)`. Trained by maximising the
    ELBO, eq. (6.3) [vae-elbo] (its KL by Monte Carlo for a learned prior, eq. (6.12)
    [vae-mckl], :func:`monte_carlo_kl`), with Adam on minibatches through
    :func:`course_lib.training.train_loop`, keeping a moving average of the weights, and stopped
    early on a validation split.

    The defaults were chosen by ``benchmarks/vae_prior.py`` (results in
    ``benchmarks/results/vae_prior_cpu.txt``): on the digits the textbook set-up (N(0, I)
    prior, large batches, a fixed number of epochs, no validation split) overfits the training
    digits and samples the holes between the prior and the aggregate posterior.

    Parameters
    ----------
    latent_dim : int >= 1, default 16
    likelihood : {"discretized_logistic", "categorical", "gaussian", "bernoulli"}
        The decoder p(x | z); see :mod:`course_lib.vae.likelihoods` for the scale of each. It
        also says what the data are (grey levels, points, binary images) and so how the
        encoder and the VampPrior treat them: the presets ``DATA_PRESETS``. The default, the
        discretised logistic, gave the best held-out bits per pixel on the digits
        (``benchmarks/vae_digits.py``).
    hidden : tuple of int, default (512,)
        Widths of the hidden layers of the default MLP encoder (the decoder mirrors them);
        with ``architecture="conv"``, ``hidden[0]`` is the channels of the first convolution.
    architecture : {"mlp", "conv"}, default "mlp"
        The default networks: MLPs, or for images the DCGAN-style networks of
        :mod:`course_lib.convnets` (the GAN's, with μ and log σ² as the encoder's outputs and
        the decoder's parameters per pixel as the generator's; ``dropout`` is then unused).
    epochs : int >= 1, default 1000
        The most epochs; early stopping usually ends training long before.
    batch_size : int >= 1, default 64
    lr : float > 0, default 3e-3 (Adam; AdamW when ``weight_decay`` > 0)
    prior : {"vamp", "mixture", "gaussian"}, default "vamp"
        p(z): the VampPrior, a learned mixture of ``n_components`` diagonal Gaussians
        (:func:`mixture_prior_log_prob`), or N(0, I). :meth:`sample`, the ELBO and the IWAE
        weights all use it.
    n_components : int >= 1, default 100
        Pseudo-inputs of the VampPrior, or components of the mixture prior.
    conditional_prior : bool, default False
        For a conditional model with the VampPrior: the prior of class y, p(z | y), is the
        mixture of the pseudo-inputs that carry class y only (pseudo-input k carries class
        ``k mod n_classes``), in training, scoring and :meth:`sample`. False: one p(z) for
        every class (the label reaches the decoder only). Needs ``prior="vamp"`` and, with
        labels, ``n_components >= n_classes``; no effect without labels.
    dropout : float in [0, 1), default 0.0
        Dropout after each hidden layer of the default MLPs (during training only).
    weight_decay : float >= 0, default 0.0 (decoupled, AdamW)
    kl_warmup : int >= 0, default 0
        Epochs over which the KL's weight β rises linearly to 1 (0: β = 1 throughout); no
        early-stopping patience is lost during the warm-up. A remedy for posterior collapse
        (inactive latent units, eq. (6.17) [vae-active]); off by default, like ``free_bits``.
    free_bits : float >= 0, default 0.0
        λ, nats per latent dimension: training charges max(λ, mini-batch mean KL) for each
        latent dimension with the N(0, I) prior, and max(λ·d, mean KL) for the whole KL with a
        learned prior, eq. (6.18) [vae-freebits] (Kingma et al. 2016), so that the objective
        stops pushing a unit's KL below λ. The validation ELBO, the history and every score
        are the true ELBO. 0: off. Not with ``train_samples`` > 1. Both remedies made every
        unit of the digits' VAE active without improving its held-out likelihood or FID
        (``benchmarks/results/vae_collapse_cpu.txt``): they are off by default.
    train_samples : int >= 1, default 1
        1: maximise the ELBO; k > 1: the importance-weighted bound of k draws, eq. (6.9)
        [vae-iwae] (Burda et al. 2016).
    ema : float in [0, 1), default 0.999
        Decay of the exponential moving average of the weights (Polyak averaging; the decay
        is ``min(ema, (1 + s)/(10 + s))`` at step s). The averaged networks are validated,
        kept and returned. 0: the last weights.
    validation_fraction : float in [0, 1), default 0.1
        If > 0, this fraction of the training data is held out (stratified by label when
        labels are given and every class can spare one); its ELBO (one draw per sample,
        fixed noise) is computed after every epoch (``history_["val_elbo"]``) and training
        stops after ``n_iter_no_change`` epochs without improvement, keeping the best
        weights. 0: train for ``epochs`` epochs on all the data.
    n_iter_no_change : int >= 1, default 20
    n_levels : int >= 2, default 17
        Grey levels of the discrete decoders.
    encoder, decoder : callable or None
        ``encoder(in_features, out_features) -> nn.Module`` replaces the default MLP: it maps
        flattened inputs (plus a one-hot label for a conditional model) to ``2 * latent_dim``
        numbers (μ and log σ²). ``decoder(latent_dim [+ n_classes], D * P)`` maps z to the
        ``P`` parameters of every pixel. (A model with custom networks is saved with its
        weights but not its callables: load it with ``VAE.load(path, encoder=..., decoder=...)``,
        the same callables; a plain ``VAE.load(path)`` refuses it.)
    random_state : int or None
        Seeds the weights, the minibatch order and the noise. Same value, same result on the CPU.
    device : str, torch.device or None (``None``: :func:`course_lib.get_device`)
    progress : bool, default True

    Attributes
    ----------
    encoder_, decoder_ : nn.Module;  prior_ : nn.Module, the prior's parameters
        (:class:`VampPrior`, :class:`MixturePrior`, or an empty module for N(0, I))
    input_shape_ : tuple, the shape of one sample (``(D,)`` or ``(C, H, W)``)
    n_features_in_ : int, D
    classes_ : ndarray or None, the labels of a conditional model
    class_prior_ : ndarray or None, p(y): the training labels' frequencies (conditional models)
    history_ : dict of lists: per training step ``elbo``, ``reconstruction``, ``kl`` (nats per
        sample, minibatch); per epoch ``train_elbo`` (the mean of the epoch's minibatch ELBOs)
        and ``val_elbo`` (when a validation split is used): the learning curve
    n_epochs_ : int, epochs run;  best_epoch_ : int;  fit_time_ : float, seconds
    resumed_ : dict or None, after ``fit(..., checkpoint=path)`` went on from a stopped run:
        what its earlier segments cost (``segments``, ``done`` epochs, ``cpu_s``, ``wall_s``,
        ``machines``: the processor of each)
    """

    _fitted_attribute = "decoder_"

    def __init__(self, latent_dim: int = 16, likelihood: str = "discretized_logistic",
                 hidden=(512,), architecture: str = "mlp", epochs: int = 1000,
                 batch_size: int = 64, lr: float = 3e-3,
                 prior: str = "vamp", n_components: int = 100,
                 conditional_prior: bool = False, dropout: float = 0.0,
                 weight_decay: float = 0.0, kl_warmup: int = 0, free_bits: float = 0.0,
                 train_samples: int = 1, ema: float = 0.999, validation_fraction: float = 0.1,
                 n_iter_no_change: int = 20, n_levels: int = DIGIT_LEVELS, encoder=None,
                 decoder=None, random_state=None, device=None, progress: bool = True):
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.hidden = hidden
        self.architecture = architecture
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.prior = prior
        self.n_components = n_components
        self.conditional_prior = conditional_prior
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.kl_warmup = kl_warmup
        self.free_bits = free_bits
        self.train_samples = train_samples
        self.ema = ema
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_levels = n_levels
        self.encoder = encoder
        self.decoder = decoder
        self.random_state = random_state
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None, *, checkpoint=None):
        """Fit by maximising the ELBO; labels ``y`` make the model conditional. Returns self.

        Reads top to bottom: the set-up (checks, labels, the validation split, networks and
        optimiser), the epochs of :func:`~course_lib.vae.train.vae_train_step` (the ELBO,
        eq. (6.3) [vae-elbo], or the importance-weighted bound, eq. (6.9) [vae-iwae]) with
        early stopping on the validation ELBO, and the fitted state.

        ``checkpoint``: a file path. The run's whole state is saved there after every epoch
        (:class:`~course_lib.training.RunCheckpoint`); a ``fit`` that finds the file of an
        earlier, stopped fit of the same model on the same data goes on from it (with its seed,
        even when ``random_state`` is None), with the same result on the same CPU and thread
        count as a run that never stopped, and deletes the file when it succeeds (``resumed_``
        then says what the earlier segments cost; None otherwise). On a GPU the resumed run is
        close but not identical: its kernels, and dropout's generator there, are not
        reproducible."""
        hidden = check_hyperparameters(self)
        device = self._target_device()
        X = check_data(self, X, reset=True)
        run_file, loaded, seed = self._open_run(checkpoint, X, y)  # and a stopped run's state
        classes, y_idx = self._fit_labels(y, len(X))
        if self.conditional_prior and classes is not None and self.n_components < len(classes):
            raise ValueError(f"conditional_prior=True needs n_components >= the number of "
                             f"classes ({len(classes)}: one pseudo-input per class at least), "
                             f"got n_components={self.n_components}")
        seeds = np.random.SeedSequence(seed).generate_state(3, dtype=np.uint64)
        gen = self._seeded_generator(int(seeds[0]), device)  # the noise epsilon
        cpu_gen = self._seeded_generator(int(seeds[1]), "cpu")  # split and minibatch order
        data = training_set(self, X.reshape(len(X), -1), classes, y_idx, cpu_gen, device)
        nets, opt = build_training(self, tuple(X.shape[1:]), classes, hidden, int(seeds[2]),
                                   device)
        # Polyak averaging: the averaged copies are validated, kept and returned
        averaged = tuple(copy.deepcopy(net) for net in nets) if self.ema > 0 else None
        kept = nets if averaged is None else averaged

        history = {"elbo": [], "reconstruction": [], "kl": [], "train_elbo": []}
        stopping = EarlyStopping(self.n_iter_no_change, self.kl_warmup)
        start = time.perf_counter()
        # dropout draws from torch's global RNG: seeded, so that the result depends on the
        # seed only, and the caller's RNG is left as it was
        with seeded(int(seeds[2]) + 1):
            first = 0
            if loaded is not None:  # a stopped run goes on
                first, history = resume_run(loaded, nets, averaged, opt, gen, data, stopping)
            epochs = progress(range(first, self.epochs), self.progress, desc="VAE",
                              unit="epoch", initial=first, total=self.epochs)
            for epoch in epochs:
                train_epoch(self, epoch, history, nets, opt, averaged, data, gen)
                stopping.n_epochs = epoch + 1
                if data.val_idx is not None:
                    v = validate(self, nets, kept, data, stopping.n_epochs)
                    history.setdefault("val_elbo", []).append(v)
                    if stopping.update(v, kept):
                        break
                if hasattr(epochs, "set_postfix"):
                    epochs.set_postfix(elbo=f"{history['elbo'][-1]:.1f}")
                if run_file is not None and epoch + 1 < self.epochs:
                    run_file.save(epoch + 1, *run_state(seed, nets, averaged, opt, gen, history,
                                                        stopping))
        if hasattr(epochs, "close"):
            epochs.close()
        stopping.restore_best(kept)

        resumed = None if run_file is None else run_file.finish()
        self._set_fitted(kept, classes, _class_prior(y_idx, classes), tuple(X.shape[1:]),
                         stopping.n_epochs, stopping.best_epoch,
                         time.perf_counter() - start + (resumed or {}).get("wall_s", 0.0))
        self.history_ = history
        self.resumed_ = resumed
        self._rng_ = gen
        return self

    def _set_fitted(self, nets, classes, class_prior, input_shape, n_epochs, best_epoch,
                    fit_time) -> None:
        """The fitted state, set by :meth:`fit` and by loading a saved model."""
        for net in nets:
            net.eval()
        self.encoder_, self.decoder_, self.prior_ = nets
        self.classes_ = classes
        self.class_prior_ = class_prior
        self.input_shape_ = input_shape
        self.n_features_in_ = int(np.prod(input_shape))
        self.n_epochs_ = n_epochs
        self.best_epoch_ = best_epoch
        self.fit_time_ = fit_time

    # ------------------------------------------------------------------ save / load

    def _networks_state(self):  # save() has checked that the model is fitted
        return {"encoder": self.encoder_.state_dict(), "decoder": self.decoder_.state_dict(),
                "prior": self.prior_.state_dict()}

    def _checkpoint_meta(self):
        return {"input_shape": list(self.input_shape_),
                "classes": None if self.classes_ is None else self.classes_.tolist(),
                "class_prior": None if self.class_prior_ is None else self.class_prior_.tolist(),
                "n_epochs": int(self.n_epochs_), "best_epoch": int(self.best_epoch_),
                "fit_time": float(self.fit_time_)}

    def _restore(self, meta, state):
        """The fitted state of a saved model (for :meth:`load`)."""
        hidden = check_hyperparameters(self)
        device = self._target_device()
        self._set_fitted(*_from_checkpoint(self, meta, state, hidden, device))
        self._rng_ = self._seeded_generator(self._training_seed(), device)

    # ------------------------------------------------------------------ the fitted model

    def _images(self, z, y1h, draw, generator) -> np.ndarray:
        """The decoder's mean E[x | z], or a draw from p(x | z), at z: images in X's shape."""
        params = decode(self, self.decoder_, z, y1h, self.n_features_in_)
        flat = _decoder_mean(self.likelihood, params, self.n_levels, draw, generator)
        return flat.cpu().numpy().astype(np.float32).reshape(len(flat), *self.input_shape_)

    @torch.no_grad()
    def encode(self, X, labels=None, *, return_log_var: bool = False):
        """Mean of q(z | x) for each sample, (N, latent_dim); with ``return_log_var`` also
        log σ²."""
        self._check_fitted()
        return_log_var = check_bool(return_log_var, "return_log_var")
        x, y1h = fitted_input(self, X, labels)
        mean, log_var = (t.cpu().numpy() for t in encode(self, self.encoder_, x, y1h))
        return (mean, log_var) if return_log_var else mean

    @torch.no_grad()
    def decode(self, Z, labels=None, *, draw: bool = False, seed=None) -> np.ndarray:
        """Images from latent vectors Z (N, latent_dim): the decoder's mean E[x | z], or a draw
        from p(x | z) with ``draw=True``. Discrete decoders give grey levels on the
        ``level / (n_levels - 1)`` scale (that of ``load_digits()``)."""
        self._check_fitted()
        draw = check_bool(draw, "draw")
        device = net_device(self)
        z = latent_tensor(self, Z, device)
        y1h = label_one_hot(self, labels, len(z))
        return self._images(z, y1h, draw,
                            self._sampling_generator(seed, device) if draw else None)

    def reconstruct(self, X, labels=None, *, draw: bool = False, seed=None) -> np.ndarray:
        """decode(encode(X)): the decoder's mean (or a draw) at the encoder's mean."""
        return self.decode(self.encode(X, labels), labels, draw=draw, seed=seed)

    @torch.no_grad()
    def sample(self, n_samples: int = 1, labels=None, *, draw: bool = False, seed=None,
               return_labels: bool = False):
        """``n_samples`` new images in X's shape: z ~ p(z) (the model's prior), then the
        decoder's **mean** E[x | z] (default: smooth images), or a draw from p(x | z) with
        ``draw=True`` (what the likelihood describes, pixel noise included).

        A conditional model draws the requested ``labels`` (one class label for every sample,
        or an array of shape ``(n_samples,)``; default: the classes in turn,
        ``classes_[i % n_classes]``); ``return_labels=True`` returns ``(images, labels)``.
        """
        self._check_fitted()
        draw = check_bool(draw, "draw")
        return_labels = check_bool(return_labels, "return_labels")
        n = check_int(n_samples, "n_samples", minimum=1)
        device = net_device(self)
        gen = self._sampling_generator(seed, device)
        # indices into classes_: the classes in turn by default, else the checked labels
        idx = self._label_index(labels, n)  # None for an unconditional model
        lab = None if idx is None else self.classes_[idx.numpy()]
        y1h = None if idx is None else one_hot(idx, len(self.classes_), device)
        z = sample_prior(self, n, prior_components(self, self.encoder_, self.prior_, y1h), gen,
                         device)
        images = self._images(z, y1h, draw, gen if draw else None)
        return (images, lab) if return_labels else images

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "density_estimator"  # score_samples is a log-likelihood
        return tags

    # ------------------------------------------------------------------ the chapter's analysis
    # Each is a function of course_lib/vae/analysis.py taking the fitted model first.

    elbo = analysis.elbo
    rate_distortion = analysis.rate_distortion
    optimize_posterior = analysis.optimize_posterior
    inference_gaps = analysis.inference_gaps
    log_weights = analysis.log_weights
    log_likelihood = analysis.log_likelihood
    score_samples = analysis.score_samples
    score = analysis.score
    log_px_given_z = analysis.log_px_given_z
    interpolate = analysis.interpolate


def _from_checkpoint(model, meta, state, hidden, device):
    """The arguments of :meth:`VAE._set_fitted` from a saved model's ``meta`` and networks'
    ``state``: the networks rebuilt (default MLPs unless the model has its own callables) and
    loaded onto ``device``, the classes and their frequencies (uniform for older files), the
    input shape and the training record."""
    classes = None if meta["classes"] is None else np.asarray(meta["classes"])
    input_shape = tuple(int(s) for s in meta["input_shape"])
    D, n_classes = int(np.prod(input_shape)), 0 if classes is None else len(classes)
    stored = meta.get("class_prior")  # older checkpoints: uniform over the classes
    class_prior = (None if classes is None else np.full(n_classes, 1.0 / n_classes)
                   if stored is None else np.asarray(stored, dtype=np.float64))
    enc, dec = build_networks(model, input_shape, n_classes, hidden)
    prior = build_prior(model, D, n_classes)
    enc.load_state_dict(state["encoder"])
    dec.load_state_dict(state["decoder"])
    prior.load_state_dict(state.get("prior", {}))
    return ((enc.to(device), dec.to(device), prior.to(device)), classes, class_prior,
            input_shape, int(meta.get("n_epochs", 0)), int(meta.get("best_epoch", 0)),
            float(meta.get("fit_time", 0.0)))

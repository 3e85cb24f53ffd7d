"""How :meth:`course_lib.vae.VAE.fit` trains: the data of a fit (the validation split and the
minibatches), the networks and their optimiser, one step (:func:`vae_train_step`), one epoch,
the validation ELBO and early stopping.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from .._core import make_generator
from ..training import DivergenceError, minibatches, one_hot, seeded, skip_batches, train_loop
from .formulas import _log_mean_exp, free_bits_kl
from .networks import build_networks, build_prior, k_draw_terms, one_draw_elbo

# ====================================================================== the data of a fit


class TrainingSet(NamedTuple):
    """The data of one fit, on the device: every row (flattened) with its one-hot label, the
    training rows, the validation rows' indices (None without validation) and the endless
    stream of minibatch indices into the training rows."""

    x: torch.Tensor
    y1h: torch.Tensor | None
    x_train: torch.Tensor
    y_train: torch.Tensor | None
    val_idx: torch.Tensor | None
    batches: Iterator[torch.Tensor]
    steps_per_epoch: int


def training_set(model, x, classes, y_idx, cpu_gen, device) -> TrainingSet:
    """The :class:`TrainingSet` of the flattened rows ``x`` (N, D) and their label indices:
    ``model.validation_fraction`` of them held out (:func:`validation_split`), minibatches
    of ``model.batch_size`` training rows, both drawn from ``cpu_gen``."""
    val_idx, train_idx = validation_split(model.validation_fraction, len(x), y_idx, classes,
                                          cpu_gen)
    x = x.to(device)
    y1h = one_hot(y_idx, 0 if classes is None else len(classes), device)
    train_idx_dev = train_idx.to(device)
    batch_size = min(model.batch_size, len(train_idx))
    return TrainingSet(x, y1h, x[train_idx_dev], None if y1h is None else y1h[train_idx_dev],
                       val_idx, minibatches(len(train_idx), batch_size, cpu_gen),
                       math.ceil(len(train_idx) / batch_size))


def validation_split(fraction, N, y_idx, classes, cpu_gen):
    """The validation split ``(val_idx, train_idx)`` of ``fraction`` of the N rows (stratified
    by label when there are labels and every class can spare one), drawn from ``cpu_gen``;
    ``val_idx`` is None without validation."""
    if not fraction > 0:
        return None, torch.arange(N)
    perm = torch.randperm(N, generator=cpu_gen)
    n_val = max(1, int(round(fraction * N)))
    val_idx = perm[:n_val]
    if y_idx is not None:
        vals = []
        for c in range(len(classes)):
            members = perm[y_idx[perm] == c]
            vals.append(members[: int(round(fraction * len(members)))])
        if sum(len(v) for v in vals):  # else too few per class: an unstratified split
            val_idx = torch.cat(vals)
    mask = torch.ones(N, dtype=torch.bool)
    mask[val_idx] = False
    train_idx = torch.nonzero(mask).flatten()
    if len(train_idx) == 0:
        raise ValueError(f"validation_fraction={fraction} leaves an "
                         f"empty training set for {N} samples")
    return val_idx, train_idx


def build_training(model, shape, classes, hidden, seed, device):
    """The networks ``(encoder, decoder, prior)`` for samples of ``shape`` on the device,
    initialised from ``seed``
    (torch's global RNG is left untouched), and their optimiser (AdamW when
    ``weight_decay`` > 0, else Adam)."""
    n_classes = 0 if classes is None else len(classes)
    with seeded(seed):
        enc, dec = build_networks(model, shape, n_classes, hidden)
        prior = build_prior(model, int(np.prod(shape)), n_classes)
    enc, dec, prior = enc.to(device), dec.to(device), prior.to(device)
    params = [*enc.parameters(), *dec.parameters(), *prior.parameters()]
    if model.weight_decay > 0:
        opt = torch.optim.AdamW(params, lr=model.lr, weight_decay=model.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=model.lr)
    return (enc, dec, prior), opt


# ====================================================================== one step, one epoch


def vae_train_step(t, *, model, nets, optimizer, batches, x, y1h, generator, beta,
                   averaged=None, ema=0.0, step_offset=0):
    """One Adam step of :meth:`VAE.fit` on the next minibatch: maximise
    reconstruction − β · KL (the ELBO, eq. (6.3) [vae-elbo], when β = 1; β < 1 during the KL
    warm-up; with ``model.free_bits`` = λ > 0 the KL term is eq. (6.18) [vae-freebits]), or
    with ``model.train_samples = k > 1`` the importance-weighted bound
    eq. (6.9) [vae-iwae] of k draws (their log-weights with β on log p(z) − log q(z|x)).
    ``nets`` is ``(encoder, decoder, prior)``; ``batches`` yields index tensors.

    With ``averaged`` (copies of ``nets``) and ``ema`` > 0, their parameters then move to an
    exponential moving average of the trained ones (Polyak averaging) with decay
    ``min(ema, (1 + s) / (10 + s))`` at global step ``s = step_offset + t``.

    Returns the minibatch means of the ELBO (β = 1; for k > 1 the mean of the k one-draw
    ELBOs), the reconstruction and the KL, for the history that
    :func:`course_lib.training.train_loop` keeps."""
    idx = next(batches).to(x.device)
    xb, yb = x[idx], None if y1h is None else y1h[idx]
    k = model.train_samples
    if k == 1 and model.free_bits > 0:
        (elbo, rec, kl), groups = one_draw_elbo(model, nets, xb, yb, generator, kl_groups=True)
        lam = model.free_bits * (1 if groups.shape[-1] == model.latent_dim else model.latent_dim)
        loss = -(rec.mean() - beta * free_bits_kl(groups, lam))
    elif k == 1:
        elbo, rec, kl = one_draw_elbo(model, nets, xb, yb, generator)
        loss = -(rec - beta * kl).mean()
    else:
        rec, kl = k_draw_terms(model, nets, xb, yb, generator, k)  # (k, N) each
        loss = -_log_mean_exp(rec - beta * kl, dim=0).mean()
        elbo, rec, kl = (rec - kl).mean(0), rec.mean(0), kl.mean(0)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if averaged is not None:
        decay = min(ema, (1.0 + step_offset + t) / (10.0 + step_offset + t))
        with torch.no_grad():
            for avg, net in zip(averaged, nets):
                for pa, p in zip(avg.parameters(), net.parameters()):
                    pa.lerp_(p, 1.0 - decay)
    return {"elbo": elbo.mean().detach(), "reconstruction": rec.mean().detach(),
            "kl": kl.mean().detach()}


def train_epoch(model, epoch, history, nets, opt, averaged, data: TrainingSet, gen) -> None:
    """One epoch of :func:`vae_train_step` (the ELBO, eq. (6.3) [vae-elbo]; its KL weighted by
    β = min(1, (epoch + 1) / kl_warmup) during the warm-up), the networks in training mode;
    appends the steps' scalars and the epoch's mean ELBO to ``history``."""
    beta = min(1.0, (epoch + 1) / model.kl_warmup) if model.kl_warmup else 1.0
    for net in nets:
        net.train()
    step = functools.partial(vae_train_step, model=model, nets=nets, optimizer=opt,
                             batches=data.batches, x=data.x_train, y1h=data.y_train,
                             generator=gen, beta=beta, averaged=averaged, ema=model.ema,
                             step_offset=epoch * data.steps_per_epoch)
    h = train_loop(step, data.steps_per_epoch, progress=False, desc="VAE", check=("elbo",))
    for key in ("elbo", "reconstruction", "kl"):
        history[key].extend(h[key])
    history["train_elbo"].append(float(np.mean(h["elbo"])))


# ====================================================================== validation, early stopping


def validate(model, nets, kept, data: TrainingSet, n_epochs) -> float:
    """The mean one-sample ELBO, eq. (6.3) [vae-elbo], of the kept networks on the
    validation rows (fixed noise: seed 0), all networks in evaluation mode. Raises
    :class:`course_lib.training.DivergenceError` if it is not finite."""
    for net in (*nets, *kept):
        net.eval()
    device = data.x.device
    with torch.no_grad():
        vi = data.val_idx.to(device)
        v = one_draw_elbo(model, kept, data.x[vi], None if data.y1h is None else data.y1h[vi],
                          make_generator(0, device=device))[0].mean().item()
    if not math.isfinite(v):
        raise DivergenceError(f"the validation ELBO became {v} after epoch "
                              f"{n_epochs}; try a smaller lr")
    return v


class EarlyStopping:
    """The per-epoch bookkeeping of :meth:`VAE.fit`'s early stopping: the epochs run
    (``n_epochs``), the best validation ELBO so far with the kept networks' weights at that
    epoch, and the epochs since it improved. Patience is lost only after the KL warm-up."""

    def __init__(self, n_iter_no_change: int, kl_warmup: int):
        self.n_iter_no_change, self.kl_warmup = n_iter_no_change, kl_warmup
        self.n_epochs = 0
        self.best = -math.inf
        self.best_state = None
        self.best_at = 0
        self.stale = 0

    def update(self, v: float, kept) -> bool:
        """Record the validation ELBO ``v`` of epoch ``n_epochs`` (copying the weights of
        ``kept`` when it is the best); True when training should stop."""
        if v > self.best:
            self.best, self.best_at, self.stale = v, self.n_epochs, 0
            self.best_state = tuple(copy.deepcopy(net.state_dict()) for net in kept)
        elif self.n_epochs > self.kl_warmup:  # no patience lost during the warm-up
            self.stale += 1
            return self.stale >= self.n_iter_no_change
        return False

    def restore_best(self, kept) -> None:
        """Load the best epoch's weights into ``kept`` (nothing without validation)."""
        if self.best_state is not None:
            for net, sd in zip(kept, self.best_state):
                net.load_state_dict(sd)

    @property
    def best_epoch(self) -> int:
        """The epoch whose weights were kept: the best one, or the last without validation."""
        return self.best_at if self.best_state is not None else self.n_epochs


# ====================================================================== stop and go on


def run_state(seed, nets, averaged, opt, gen, history,
              stopping: EarlyStopping) -> tuple[dict, dict]:
    """What a :class:`course_lib.training.RunCheckpoint` keeps of a :meth:`VAE.fit` after an
    epoch, as ``(meta, state)``: the fit's seed, the networks, their moving averages and the
    best epoch's weights, the optimiser, the states of the noise generator and of torch's
    global RNG on the CPU (dropout draws from it), the history and the early-stopping
    bookkeeping."""
    state = {f"net{i}": net.state_dict() for i, net in enumerate(nets)}
    state.update({f"average{i}": net.state_dict() for i, net in enumerate(averaged or ())})
    state.update({f"best{i}": sd for i, sd in enumerate(stopping.best_state or ())})
    state["optimizer"] = opt.state_dict()
    state["rng"] = {"noise": gen.get_state(), "global": torch.get_rng_state()}
    meta = {"seed": int(seed), "epochs": stopping.n_epochs, "history": history,
            "stopping": {"best": stopping.best, "best_at": stopping.best_at,
                         "stale": stopping.stale, "has_best": stopping.best_state is not None}}
    return meta, state


def resume_run(loaded, nets, averaged, opt, gen, data: TrainingSet,
               stopping: EarlyStopping) -> tuple[int, dict]:
    """Load a saved :func:`run_state` into a fit that was set up afresh from the saved seed (so
    with the same validation split) and return ``(epochs done, history)``; the minibatch
    stream goes on where it stopped."""
    meta, state = loaded
    for i, net in enumerate(nets):
        net.load_state_dict(state[f"net{i}"])
    for i, net in enumerate(averaged or ()):
        net.load_state_dict(state[f"average{i}"])
    opt.load_state_dict(state["optimizer"])
    gen.set_state(state["rng"]["noise"])
    torch.set_rng_state(state["rng"]["global"])
    kept = meta["stopping"]
    stopping.n_epochs, stopping.best = int(meta["epochs"]), float(kept["best"])
    stopping.best_at, stopping.stale = int(kept["best_at"]), int(kept["stale"])
    stopping.best_state = (tuple(state[f"best{i}"] for i in range(len(nets)))
                           if kept["has_best"] else None)
    skip_batches(data.batches, stopping.n_epochs * data.steps_per_epoch)
    return stopping.n_epochs, meta["history"]

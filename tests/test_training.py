"""The shared training machinery: mini-batches, the loop, the divergence guard, checkpoints."""

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from torch import nn

from course_lib.training import (
    DivergenceError,
    NeuralEstimator,
    load_checkpoint,
    minibatches,
    save_checkpoint,
    seeded,
    train_loop,
)


def test_minibatches_cover_every_row_once_per_epoch_and_are_deterministic():
    def first(n_batches, seed):
        it = minibatches(10, 3, torch.Generator().manual_seed(seed))
        return [next(it) for _ in range(n_batches)]

    epoch = first(4, 0)  # 3 + 3 + 3 + 1 rows
    assert [len(b) for b in epoch] == [3, 3, 3, 1]
    assert sorted(torch.cat(epoch).tolist()) == list(range(10))
    assert all(torch.equal(a, b) for a, b in zip(first(8, 0), first(8, 0)))
    assert not all(torch.equal(a, b) for a, b in zip(first(8, 0), first(8, 1)))
    it = minibatches(10, 3, torch.Generator().manual_seed(0), drop_last=True)
    assert all(len(next(it)) == 3 for _ in range(7))


def test_minibatches_validate_arguments():
    gen = torch.Generator()
    with pytest.raises(ValueError, match="batch_size"):
        next(minibatches(10, 0, gen))
    with pytest.raises(TypeError, match="n_rows"):
        next(minibatches(10.5, 2, gen))


def test_train_loop_records_history_and_runs_every_step():
    calls = []

    def step(t):
        calls.append(t)
        return {"loss": torch.tensor(1.0 / (t + 1)), "lr": 0.1}

    history = train_loop(step, 5)
    assert calls == [0, 1, 2, 3, 4]
    assert history["loss"] == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    assert history["lr"] == [0.1] * 5


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_train_loop_stops_on_a_non_finite_loss_naming_it(bad):
    def step(t):
        return {"loss_d": 0.5, "loss_g": bad if t == 3 else 1.0}

    with pytest.raises(DivergenceError, match=r"loss_g became .* at step 4 of 10.*learning rate"):
        train_loop(step, 10, desc="GAN")


def test_train_loop_checks_only_the_named_quantities():
    history = train_loop(lambda t: {"loss": 1.0, "ratio": math.inf}, 3, check=["loss"])
    assert history["ratio"] == [math.inf] * 3


def test_train_loop_rejects_bad_steps():
    with pytest.raises(TypeError, match="dict"):
        train_loop(lambda t: 1.0, 2)
    with pytest.raises(ValueError, match="scalars"):
        train_loop(lambda t: {"loss": torch.ones(2)}, 2)
    with pytest.raises(ValueError, match="n_steps"):
        train_loop(lambda t: {}, 0)


def test_seeded_makes_initial_weights_depend_on_the_seed_only():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    with seeded(7):
        a = nn.Linear(3, 2).weight.clone()
    after = torch.rand(1)
    with seeded(7):
        b = nn.Linear(3, 2).weight.clone()
    assert torch.equal(a, b)
    assert torch.equal(before, after), "the caller's RNG state is restored"


# ------------------------------------------------------------------ a tiny estimator


class Line(NeuralEstimator):
    """y = w x + b fitted by gradient descent: just enough model to test the base class."""

    def __init__(self, width=1, lr=0.1, n_steps=50, random_state=0, device=None):
        self.width = width
        self.lr = lr
        self.n_steps = n_steps
        self.random_state = random_state
        self.device = device

    def _build(self, n_features):
        with seeded(self._training_seed()):
            return nn.Linear(n_features, self.width)

    def fit(self, X, y):
        X = torch.as_tensor(X, dtype=torch.float32)
        y = torch.as_tensor(y, dtype=torch.float32)
        net = self._build(X.shape[1])
        opt = torch.optim.SGD(net.parameters(), lr=self.lr)

        def step(t):
            loss = ((net(X).squeeze(-1) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return {"loss": loss}

        history = train_loop(step, self.n_steps, desc="Line")
        self.net_, self.n_features_in_, self.history_ = net, X.shape[1], history
        return self

    def _networks_state(self):
        return {"net": self.net_.state_dict()}

    def _checkpoint_meta(self):
        return {"n_features_in": self.n_features_in_}

    def _restore(self, meta, state):
        net = self._build(meta["n_features_in"])
        net.load_state_dict(state["net"])
        self.net_, self.n_features_in_ = net, meta["n_features_in"]


class Other(Line):
    pass


def _data():
    X = torch.linspace(-1, 1, 20)[:, None]
    return X, 2 * X[:, 0] + 1


def test_estimator_is_deterministic_and_clonable():
    X, y = _data()
    a, b = Line().fit(X, y), Line().fit(X, y)
    assert a.history_["loss"] == b.history_["loss"]
    assert a.history_["loss"][-1] < a.history_["loss"][0] / 10
    c = clone(a)
    assert c.get_params() == a.get_params() and not hasattr(c, "history_")


def test_save_load_round_trip(tmp_path):
    X, y = _data()
    model = Line(lr=0.2).fit(X, y)
    model.save(tmp_path / "line.pt")
    back = Line.load(tmp_path / "line.pt")
    assert back.lr == 0.2
    assert torch.equal(back.net_.weight, model.net_.weight)
    assert back.history_["loss"] == pytest.approx(model.history_["loss"])


def test_load_refuses_other_models_other_architectures_and_junk(tmp_path):
    X, y = _data()
    Line(width=1).fit(X, y).save(tmp_path / "line.pt")
    with pytest.raises(ValueError, match="holds a 'Line' model, not a 'Other'"):
        Other.load(tmp_path / "line.pt")
    with pytest.raises(ValueError, match="do not fit the architecture"):
        Line.load(tmp_path / "line.pt", width=3)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        Line.load(tmp_path / "junk.pt")
    data = (tmp_path / "line.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        Line.load(tmp_path / "cut.pt")
    with pytest.raises(FileNotFoundError, match="path"):
        Line.load(tmp_path / "missing.pt")
    with pytest.raises(NotFittedError):
        Line().save(tmp_path / "unfitted.pt")


def test_checkpoint_refuses_non_plain_metadata(tmp_path):
    with pytest.raises(TypeError, match="params"):
        save_checkpoint(tmp_path / "x.pt", kind="X", params={"f": object()}, meta={}, state={})
    save_checkpoint(tmp_path / "x.pt", kind="X", params={"a": [1, 2]}, meta={}, state={})
    assert load_checkpoint(tmp_path / "x.pt", kind="X")["params"] == {"a": [1, 2]}


def test_fit_cached_trains_once_then_loads_and_rebuilds_a_damaged_cache(tmp_path, monkeypatch):
    from course_lib.training import fit_cached

    X, y = _data()
    fits = []
    original = Line.fit

    def counting_fit(self, X, y):
        fits.append(self.get_params()["lr"])
        return original(self, X, y)

    monkeypatch.setattr(Line, "fit", counting_fit)
    first = fit_cached(Line(), X, y, folder=tmp_path)
    second = fit_cached(Line(), X, y, folder=tmp_path)
    assert fits == [0.1] and second is not first
    assert torch.equal(first.net_.weight, second.net_.weight)
    assert second.history_["loss"] == pytest.approx(first.history_["loss"])
    # other hyperparameters or other data: a new fit
    fit_cached(Line(lr=0.2), X, y, folder=tmp_path)
    fit_cached(Line(), X, y + 1, folder=tmp_path)
    assert fits == [0.1, 0.2, 0.1]
    # a damaged file is detected, reported and replaced
    for p in tmp_path.glob("Line_*.pt"):
        p.write_bytes(p.read_bytes()[:-10])
    with pytest.warns(UserWarning, match="not usable.*checksum"):
        again = fit_cached(Line(), X, y, folder=tmp_path)
    assert len(fits) == 4 and torch.equal(again.net_.weight, first.net_.weight)
    fit_cached(Line(), X, y, folder=tmp_path)  # and the rebuilt file is used
    assert len(fits) == 4


def test_flags_must_be_booleans():
    with pytest.raises(TypeError, match="drop_last"):
        next(minibatches(10, 2, torch.Generator(), drop_last="False"))
    with pytest.raises(TypeError, match="progress"):
        train_loop(lambda t: {"loss": 1.0}, 2, progress="no")


def test_fit_cached_accepts_a_torch_device(tmp_path, device):
    from course_lib.training import fit_cached

    X, y = _data()
    fit_cached(Line(device=torch.device(device)), X, y, folder=tmp_path)
    assert len(list(tmp_path.glob("Line_*.pt"))) == 1
    again = fit_cached(Line(device=torch.device(device)), X, y, folder=tmp_path)
    assert again.device == device


# ---------------------------------------------------------------- labels asked of sample()


def _conditional_models(device):
    from course_lib.data import load_digits
    from course_lib.gan import GAN
    from course_lib.vae import VAE

    X, y = load_digits("train")
    Xd, yd = load_digits("train", dequantize=True)
    gan = GAN(n_steps=5, rejection_steps=2, progress=False, random_state=0, device=device)
    vae = VAE(epochs=1, hidden=(16,), progress=False, random_state=0, device=device)
    return {"GAN": gan.fit(X[:200], y[:200]), "VAE": vae.fit(Xd[:200], yd[:200])}


@pytest.fixture(scope="module")
def conditional_models(device):
    return _conditional_models(device)


@pytest.mark.parametrize("name", ["GAN", "VAE"])
def test_gan_and_vae_take_the_same_label_shapes(conditional_models, name):
    """One class label means every sample of that class; an array must have shape (n,)."""
    model = conditional_models[name]
    one = model.sample(4, labels=3, seed=0)
    assert np.array_equal(one, model.sample(4, labels=np.int64(3), seed=0))
    assert np.array_equal(one, model.sample(4, labels=[3, 3, 3, 3], seed=0))
    assert not np.array_equal(one, model.sample(4, labels=[3, 3, 3, 4], seed=0))
    for bad in ([3], [[3], [3], [3], [3]], np.full((2, 2), 3)):
        with pytest.raises(ValueError, match=r"labels must be one class label or an array of "
                                             r"shape \(4,\)"):
            model.sample(4, labels=bad, seed=0)
    if name == "VAE":
        _, labels = model.sample(4, labels=3, seed=0, return_labels=True)
        assert labels.tolist() == [3, 3, 3, 3]

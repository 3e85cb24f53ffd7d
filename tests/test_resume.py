"""A fit that stops and goes on (``fit(X, y, checkpoint=path)``): the same result, to the
last bit on the CPU, as a fit that never stopped; a file of another run is refused.

A stop is simulated by an exception raised inside the run (as a closed laptop or a killed
process would stop it) between two checkpoints (a GAN step that is not a multiple of
``checkpoint_every``; a minibatch in the middle of a VAE epoch), so the resumed run also
repeats the work done after the last checkpoint."""

import functools

import numpy as np
import pytest
import torch

import course_lib.gan as gan_module
import course_lib.vae.train as vae_train
from course_lib.data import load_digits
from course_lib.gan import GAN
from course_lib.training import RunCheckpoint, train_loop
from course_lib.vae import VAE


class Stop(Exception):
    """What stops the simulated run."""


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits("train")
    return X[:240], y[:240]


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _stopped_gan_fit(monkeypatch, model, X, y, path, at, every):
    step = gan_module._GANRun.step

    def stopping(run, t):
        if t == at:
            raise Stop
        return step(run, t)

    with monkeypatch.context() as m:
        m.setattr(gan_module._GANRun, "step", stopping)
        with pytest.raises(Stop):
            model.fit(X, y, checkpoint=path, checkpoint_every=every)


GAN_CASES = {
    "rejection sampling": dict(rejection=True, rejection_steps=30),
    "wasserstein, 5 critic steps": dict(loss="wasserstein", n_critic=5, rejection=False),
    "conditional, conv, moving average, lazy R1": dict(architecture="conv", hidden=8, ema=0.9,
                                                       r1_every=4, rejection=False),
}


@pytest.mark.parametrize("case", GAN_CASES)
def test_a_stopped_gan_goes_on_to_the_same_result(digits, tmp_path, monkeypatch, case):
    X, y = digits
    kw = dict(n_steps=50, batch_size=32, random_state=5, progress=False, snapshots=4,
              device="cpu", **GAN_CASES[case])
    labels = y if case.startswith("conditional") else None
    whole = GAN(**kw).fit(X, labels)
    path = tmp_path / "run.pt"
    _stopped_gan_fit(monkeypatch, GAN(**kw), X, labels, path, at=27, every=10)
    assert path.is_file()  # the checkpoint after step 20 is there
    resumed = GAN(**kw).fit(X, labels, checkpoint=path, checkpoint_every=10)

    assert not path.exists()  # deleted once the fit succeeded
    assert resumed.resumed_["segments"] == 1 and resumed.resumed_["done"] == 20
    assert resumed.resumed_["cpu_s"] > 0 and resumed.fit_time_ > resumed.resumed_["wall_s"]
    assert _same_weights(whole.generator_, resumed.generator_)
    assert _same_weights(whole.discriminator_, resumed.discriminator_)
    assert whole.history_ == resumed.history_
    assert [t for t, _ in whole.snapshots_] == [t for t, _ in resumed.snapshots_]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(whole.snapshots_, resumed.snapshots_))
    if kw["rejection"]:
        assert torch.equal(whole.log_m_, resumed.log_m_)
    # the sampling stream that fit leaves behind goes on identically too
    assert np.array_equal(whole.sample(8, labels=None), resumed.sample(8, labels=None))


def test_a_gan_that_never_stopped_leaves_no_file_and_no_resumed_record(digits, tmp_path):
    X, _ = digits
    kw = dict(n_steps=30, batch_size=32, random_state=1, progress=False, rejection=False,
              device="cpu")
    path = tmp_path / "run.pt"
    model = GAN(**kw).fit(X, checkpoint=path, checkpoint_every=10)
    assert not path.exists() and model.resumed_ is None
    assert _same_weights(model.generator_, GAN(**kw).fit(X).generator_)  # saving changes nothing


def _stopped_vae_fit(monkeypatch, model, X, y, path, at):
    """Stop ``model.fit`` at the third minibatch of epoch ``at`` (counted from 0)."""
    step_fn = vae_train.vae_train_step
    epochs_begun = []

    def stopping(t, **kw):  # t counts the minibatches of the epoch from 0
        epochs_begun.extend([t] if t == 0 else [])
        if len(epochs_begun) == at + 1 and t == 2:
            raise Stop
        return step_fn(t, **kw)

    with monkeypatch.context() as m:
        m.setattr(vae_train, "vae_train_step", stopping)
        with pytest.raises(Stop):
            model.fit(X, y, checkpoint=path)


VAE_CASES = {
    "conditional, dropout, moving average": dict(dropout=0.2, epochs=7),
    "no moving average, stops early": dict(ema=0.0, lr=3e-2, epochs=40, n_iter_no_change=3,
                                           kl_warmup=0),
}


@pytest.mark.parametrize("case", VAE_CASES)
def test_a_stopped_vae_goes_on_to_the_same_result(digits, tmp_path, monkeypatch, case):
    X, y = digits
    kw = dict(hidden=(32,), latent_dim=4, batch_size=32, random_state=3, progress=False,
              device="cpu", **VAE_CASES[case])
    labels = y if case.startswith("conditional") else None
    whole = VAE(**kw).fit(X, labels)
    path = tmp_path / "run.pt"
    # the early-stopping case stops in the epochs without improvement just before the end,
    # so that the resumed run must carry the count of stale epochs to stop when the other did
    early = case.endswith("early")
    stop_at = whole.n_epochs_ - 1 if early else 4
    _stopped_vae_fit(monkeypatch, VAE(**kw), X, labels, path, at=stop_at)
    resumed = VAE(**kw).fit(X, labels, checkpoint=path)

    assert not path.exists()
    assert resumed.resumed_["done"] == stop_at
    if early:  # the case exercises the early-stopping state: stale epochs at the stop
        assert whole.n_epochs_ < kw["epochs"] and whole.n_epochs_ - whole.best_epoch_ >= 2
    assert (whole.n_epochs_, whole.best_epoch_) == (resumed.n_epochs_, resumed.best_epoch_)
    for net in ("encoder_", "decoder_", "prior_"):
        assert _same_weights(getattr(whole, net), getattr(resumed, net)), net
    assert whole.history_ == resumed.history_
    assert np.array_equal(whole.sample(6), resumed.sample(6))


def test_a_run_without_a_random_state_goes_on_with_its_own_seed(digits, tmp_path, monkeypatch):
    """random_state=None draws a fresh seed: the checkpoint keeps it, and the resumed run is the
    run of that seed (for the VAE, with the same validation split)."""
    X, y = digits
    path = tmp_path / "run.pt"
    gan_kw = dict(n_steps=30, batch_size=32, progress=False, rejection=False, device="cpu")
    _stopped_gan_fit(monkeypatch, GAN(**gan_kw), X, None, path, at=15, every=10)
    seed = torch.load(path, weights_only=True)["meta"]["run"]["seed"]
    resumed = GAN(**gan_kw).fit(X, checkpoint=path, checkpoint_every=10)
    whole = GAN(**gan_kw, random_state=seed).fit(X)
    assert _same_weights(whole.generator_, resumed.generator_)

    vae_kw = dict(hidden=(32,), latent_dim=4, batch_size=32, epochs=4, progress=False,
                  device="cpu")
    _stopped_vae_fit(monkeypatch, VAE(**vae_kw), X, None, path, at=2)
    seed = torch.load(path, weights_only=True)["meta"]["run"]["seed"]
    resumed = VAE(**vae_kw).fit(X, checkpoint=path)
    whole = VAE(**vae_kw, random_state=seed).fit(X)
    assert _same_weights(whole.decoder_, resumed.decoder_)
    assert whole.history_ == resumed.history_  # val_elbo included: the same validation rows


def test_what_does_not_change_the_run_does_not_refuse_its_file(digits, tmp_path, monkeypatch):
    """The progress bar, the device spelt None or "cpu" on this CPU, a NumPy integer for an
    int: the same run, so the file is accepted."""
    X, _ = digits
    kw = dict(n_steps=30, batch_size=32, random_state=4, rejection=False)
    path = tmp_path / "run.pt"
    _stopped_gan_fit(monkeypatch, GAN(**kw, progress=False, device=None), X, None, path, at=15,
                     every=10)
    if torch.cuda.is_available():
        pytest.skip("device=None means the GPU here")
    resumed = GAN(**{**kw, "n_steps": np.int64(30)}, progress=True, device="cpu").fit(
        X, checkpoint=path, checkpoint_every=10)
    assert resumed.resumed_["done"] == 10


def test_a_checkpoint_of_another_run_is_refused_and_kept(digits, tmp_path, monkeypatch):
    X, y = digits
    kw = dict(n_steps=30, batch_size=32, random_state=2, progress=False, rejection=False,
              device="cpu")
    path = tmp_path / "run.pt"
    _stopped_gan_fit(monkeypatch, GAN(**kw), X, None, path, at=15, every=10)
    before = path.read_bytes()
    for model, data, labels in ((GAN(**{**kw, "lr": 3e-4}), X, None),  # other hyperparameters
                                (GAN(**kw), X[:200], None),  # other data
                                (GAN(**kw), X, y)):  # labels: another (a conditional) model
        with pytest.raises(ValueError, match="checkpoint: .* holds the state of another run"):
            model.fit(data, labels, checkpoint=path)
        assert not hasattr(model, "history_")  # left unfitted
    with pytest.raises(ValueError, match="checkpoint: .* holds a 'GAN run'"):
        VAE(epochs=1, progress=False).fit(X, checkpoint=path)
    assert path.read_bytes() == before  # the other run's file is never overwritten or removed
    GAN(**kw).fit(X, checkpoint=path)  # the run it belongs to still goes on from it
    assert not path.exists()


def test_a_model_with_networks_of_its_own_cannot_be_resumed(digits, tmp_path):
    X, _ = digits
    with pytest.raises(ValueError, match="checkpoint: a model built with networks of your own "
                                         r"\(generator\)"):
        GAN(n_steps=2, generator=torch.nn.Linear(8, 64), progress=False).fit(
            X, checkpoint=tmp_path / "run.pt")


def test_a_folder_is_not_a_checkpoint_file(digits, tmp_path):
    X, _ = digits
    with pytest.raises(ValueError, match="checkpoint: .* is a folder; name a file in it"):
        GAN(n_steps=2, progress=False).fit(X, checkpoint=tmp_path)


def test_train_loop_goes_on_from_start_and_calls_checkpoint_every_n_steps():
    calls, saved = [], []

    def step(t):
        calls.append(t)
        return {"t": t}

    history = train_loop(step, 10, start=4, history={"t": [0.0, 1.0, 2.0, 3.0]},
                         checkpoint=lambda done, h: saved.append((done, len(h["t"]))),
                         checkpoint_every=3)
    assert calls == [4, 5, 6, 7, 8, 9]
    assert history["t"] == [float(t) for t in range(10)]
    assert saved == [(6, 6), (9, 9)]  # after steps 6 and 9 of 10; never after the last


def test_run_checkpoint_adds_up_the_cost_of_the_segments(tmp_path, digits):
    X, _ = digits
    model = GAN(n_steps=5, progress=False)
    first = RunCheckpoint(tmp_path / "run.pt", model, X)
    assert first.load() is None
    first.save(3, {"x": 1}, {"w": {"a": torch.ones(2)}})
    second = RunCheckpoint(tmp_path / "run.pt", model, X)
    meta, state = second.load()
    assert meta == {"x": 1} and torch.equal(state["w"]["a"], torch.ones(2))
    spent = second.spent(5)
    assert spent["segments"] == 2 and spent["done"] == 5
    assert spent["cpu_s"] >= second.earlier["cpu_s"] > 0
    assert second.finish()["done"] == 3 and not (tmp_path / "run.pt").exists()


def test_the_ship_tool_adds_up_the_segments_of_a_stopped_fit(tmp_path, monkeypatch):
    """tools/ship_models.py --checkpoint-dir: the record of a fit that stopped and went on
    counts the CPU seconds of both segments and names their processors."""
    from tests._shared import load_script

    tool = load_script("tools/ship_models.py")
    path = tmp_path / "gan_digits.run.pt"
    step = gan_module._GANRun.step

    def stopping(run, t):
        if t == 25:
            raise Stop
        return step(run, t)

    # the tool keeps the fit's default of a checkpoint every 1,000 steps; here every 10
    monkeypatch.setattr(GAN, "fit", functools.partialmethod(GAN.fit, checkpoint_every=10))
    with monkeypatch.context() as m:
        m.setattr(gan_module._GANRun, "step", stopping)
        with pytest.raises(Stop):
            tool.fit("gan_digits", path, n_steps=40, hidden=16, rejection=False)
    model, record = tool.fit("gan_digits", path, n_steps=40, hidden=16, rejection=False)
    assert model.resumed_["done"] == 20 and not path.exists()
    assert record["segments"] == 2 and len(record["segment_cpus"]) == 2
    assert record["fit_cpu_s"] >= model.resumed_["cpu_s"] > 0
    _, whole = tool.fit("gan_digits", n_steps=40, hidden=16, rejection=False)
    assert "segments" not in whole


def test_make_bench_trains_the_fashion_models_with_a_checkpoint_in_the_cache(tmp_path,
                                                                             monkeypatch):
    """benchmarks/fashion_models.py --train (hours, run by `make bench`) hands the ship tool a
    checkpoint folder in the course's cache, so that a stopped run goes on."""
    from tests._shared import load_script

    bench = load_script("benchmarks/fashion_models.py")
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    calls = []
    monkeypatch.setattr(bench.subprocess, "run", lambda args, **kw: calls.append(args))
    bench.train_neural()
    (args,) = calls
    assert args[1].endswith("ship_models.py") and set(bench.NEURAL) <= set(args)
    assert args[args.index("--checkpoint-dir") + 1] == str(tmp_path / "runs")


def test_the_ship_tool_run_again_after_a_stop_skips_the_models_it_had_shipped(tmp_path,
                                                                              monkeypatch):
    """tools/ship_models.py a b --checkpoint-dir DIR, stopped while fitting b: the same command
    again does not train a again, and once both are shipped the next command starts afresh."""
    from tests._shared import load_script

    tool = load_script("tools/ship_models.py")
    records, shipped, stop = {}, [], {"vae_digits"}
    monkeypatch.setattr(tool, "SHIPPED_MODELS", tmp_path / "models")
    monkeypatch.setattr(tool, "shipped_records", lambda: dict(records))

    def fake_ship(name, runs, threads=1):
        assert runs == tmp_path / "runs" and threads == 1
        if name in stop:
            stop.discard(name)
            raise Stop
        shipped.append(name)
        records[name] = {"sha256": f"digest of {name}", "scores": {}, "fit_cpu_s": 1.0}
        return records[name]

    monkeypatch.setattr(tool, "ship", fake_ship)
    (tmp_path / "models").mkdir()
    (tmp_path / "runs").mkdir()
    command = ["gan_digits", "vae_digits", "--checkpoint-dir", str(tmp_path / "runs")]
    with pytest.raises(Stop):
        tool.main(command)
    assert tool.main(command) == 0
    assert shipped == ["gan_digits", "vae_digits"]  # gan_digits once: skipped the second time
    assert not list((tmp_path / "runs").glob("*.shipped"))
    assert tool.main(command) == 0 and shipped[2:] == ["gan_digits", "vae_digits"]
    with pytest.raises(SystemExit):  # bad input: named, before anything is trained
        tool.main(command + ["--threads", "0"])
    assert shipped[4:] == [] and tool.threads_note(1) == "one CPU thread"
    assert tool.threads_note(2) == "2 CPU threads"


def test_the_book_says_how_often_a_run_is_saved():
    """Chapter 8 and the instructors' page give the default spacing of the saves: the GAN's
    ``checkpoint_every`` and one epoch for the VAE; and the page names this file's cases."""
    import inspect

    from tests._shared import ROOT

    every = inspect.signature(GAN.fit).parameters["checkpoint_every"].default
    assert "checkpoint" in inspect.signature(VAE.fit).parameters
    chapter = " ".join((ROOT / "book" / "08_scaling.md").read_text(encoding="utf-8").split())
    instructors = " ".join((ROOT / "book" / "instructors.md").read_text(encoding="utf-8").split())
    assert f"# saved every {every:,} steps (checkpoint_every)" in chapter
    assert f"at most {every:,} steps or one epoch" in chapter
    assert f"every {every:,} GAN steps, every VAE epoch" in instructors
    section = chapter[chapter.index("## Runs longer than a sitting"):chapter.index("## On a GPU")]
    assert "tests/test_resume.py" in section
    assert "five critic steps" in section and GAN_CASES["wasserstein, 5 critic steps"]["n_critic"] == 5

"""Chapter 8: the shipped Fashion-MNIST models, the benchmark's results and what the chapter
claims of them (issue 23).

The results come from ``benchmarks/fashion_models.py`` (which reads the shipped models' records
and fits the statistical families); these tests check that the files agree with each other and
with the tool that made them, that the models load and sample, and that the claims hold.
"""

import json
import re
import warnings

import numpy as np
import pytest
import torch
from _shared import ROOT, load_script

import course_lib.gan  # noqa: F401  (shipped_model needs the classes imported)
import course_lib.vae  # noqa: F401
import course_lib.vae.train
from course_lib import metrics
from course_lib.gan import GAN
from course_lib.training import shipped_model, shipped_records, shipped_training_data
from course_lib.vae import VAE

NEURAL = ("gan_fashion", "cgan_fashion", "vae_fashion", "cvae_fashion")
ROWS = {r["name"]: r for r in json.loads(
    (ROOT / "benchmarks" / "results" / "fashion_models_cpu.json").read_text())}
GMM = next(n for n in ROWS if n.startswith("diagonal GMM"))


def _separated(a, b, metric):
    return metrics.separated(ROWS[a], ROWS[b], metric)  # the rule, on the recorded rows


def test_the_book_shows_the_results_file():
    """book/08_scaling.md's table is the benchmark's results, row for row."""
    bench = load_script("benchmarks/fashion_models.py")
    page = (ROOT / "book" / "08_scaling.md").read_text(encoding="utf-8")
    for row in bench.markdown_rows(list(ROWS.values())):
        assert row in page, row


def test_the_conv_gan_beats_the_mixture_on_fid():
    assert ROWS["gan_fashion"]["fid"][0] < ROWS[GMM]["fid"][0]
    assert _separated("gan_fashion", GMM, "fid")


def test_the_conv_vae_beats_the_mixture_and_independent_pixels_on_likelihood():
    vae = ROWS["vae_fashion"]["bpp"]
    assert vae < ROWS[GMM]["bpp"] and vae < ROWS["independent pixels"]["bpp"]


def test_the_benchmark_read_the_shipped_records():
    records = shipped_records()
    for name in NEURAL:
        for metric in ("fid", "kid", "precision", "recall", "classes"):
            assert list(ROWS[name][metric]) == records[name]["scores"][metric], (name, metric)
        assert ROWS[name]["fit_cpu_s"] == records[name]["fit_cpu_s"]


def test_the_records_are_the_tool_recipes():
    """Each record's hyperparameters are those tools/ship_models.py builds from its recipe:
    rerunning the tool trains the same models."""
    tool = load_script("tools/ship_models.py")
    records = shipped_records()
    for name in NEURAL:
        cls, spec, overrides = tool.MODELS[name]
        params = cls(**overrides, random_state=tool.SEED).get_params(deep=False)
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()
                  if k not in ("device", "progress")}
        assert records[name]["params"] == params, name
        assert records[name]["data"]["dataset"] == "fashion"
        assert records[name]["data"]["labels"] == spec["labels"]
        assert records[name]["fit_cpu_s"] > 0 and len(records[name]["curve"]) >= 5


@pytest.mark.parametrize("name", NEURAL)
def test_a_shipped_fashion_model_loads_verified_and_samples(name, device):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checksum or sanity failure would warn and retrain
        model = shipped_model(name, device=device)
    assert isinstance(model, GAN if name.endswith("gan_fashion") else VAE)
    assert model.architecture == "conv"
    labels = np.arange(10) if model.classes_ is not None else None
    images = model.sample(10, labels=labels, seed=0)
    assert images.shape == (10, 1, 28, 28)
    assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1


def test_both_conditional_models_draw_the_class_asked_for():
    """Chapter 8's finding: the conditional GAN, and the conditional VAE with a prior per class,
    draw the class they are given (chance is 0.1; the feature network is right on 91% of real
    test images)."""
    assert ROWS["cgan_fashion"]["class_accuracy"] > 0.8
    assert ROWS["cvae_fashion"]["class_accuracy"] > 0.8
    assert shipped_records()["cvae_fashion"]["params"]["conditional_prior"] is True


def test_the_per_class_prior_beats_the_shared_one_in_the_screen():
    """benchmarks/fashion_cvae_prior.py: with everything else equal, the per-class prior's
    samples show the class asked for more often than the shared prior's, seed by seed; and with
    either prior the decoder keeps the encoded image's class more often than it follows a
    swapped label (the book's reading of the label-swap columns)."""
    bench = load_script("benchmarks/fashion_cvae_prior.py")
    runs = {(r["prior"], r["seed"]): [r["class_acc"], r["keeps"], r["follows"]]
            for r in bench.read_rows()}
    seeds = sorted({seed for _, seed in runs})
    assert len(runs) == 2 * len(seeds) >= 4
    for seed in seeds:
        shared, per_class = runs[("shared p(z)", seed)], runs[("per class p(z | y)", seed)]
        assert per_class[0] > shared[0]
        for _acc, keeps, follows in (shared, per_class):
            assert keeps > 2 * follows


def test_the_shipped_training_data_of_a_fashion_record():
    record = shipped_records()["cgan_fashion"]
    X, y = shipped_training_data(record)
    assert X.shape[1:] == (1, 28, 28) and len(X) in (60_000, 8_000)
    assert y is not None and len(y) == len(X)
    X2, y2 = shipped_training_data(shipped_records()["gan_fashion"])
    assert y2 is None and np.array_equal(X, X2)


SCREEN = load_script("benchmarks/fashion_gan_screen.py")


def _gan_ladder() -> list[tuple[int, float, float, float, float, float]]:
    """Chapter 8's budget ladder of the conv GAN: the screen's separate runs of the shipped
    recipe (γ = 10) and the shipped model, by steps: (steps, CPU s, FID mean, FID std,
    precision, recall)."""
    runs = [(r["steps"], r["cpu_s"], *r["fid"], r["precision"][0], r["recall"][0])
            for r in SCREEN.read_rows() if r["setting"] == "r1-10"]
    gan = ROWS["gan_fashion"]
    shipped = (shipped_records()["gan_fashion"]["params"]["n_steps"], gan["fit_cpu_s"],
               *gan["fid"], gan["precision"][0], gan["recall"][0])
    return sorted(runs + [shipped])


def test_the_book_shows_the_gan_budget_ladder():
    """book/08_scaling.md's "How many steps" table is the ladder, row for row."""
    page = (ROOT / "book" / "08_scaling.md").read_text(encoding="utf-8")
    for steps, cpu, fid, sd, precision, recall in _gan_ladder():
        row = f"| {steps:,} | {cpu:,.0f} | {fid:.1f} ± {sd:.1f} | {precision:.3f} | {recall:.3f} |"
        assert row in page, row


def test_the_screen_reads_its_rows_and_does_not_run_a_recorded_setting_again(tmp_path, monkeypatch):
    rows = SCREEN.read_rows()
    assert {"base", "r1-10"} <= {r["setting"] for r in rows}
    base = next(r for r in rows if r["setting"] == "base")
    assert base["steps"] == 3000 and base["fid"] == (113.5, 3.4) and base["classes"] == 8.0
    copy = tmp_path / "screen.txt"
    copy.write_text(SCREEN.RESULTS.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(SCREEN, "RESULTS", copy)
    before = copy.read_text(encoding="utf-8")
    # the registered command of `make bench` finds both rows recorded and trains nothing
    assert SCREEN.main(["--settings", "base", "r1-10", "--save"]) == 0
    assert copy.read_text(encoding="utf-8") == before
    with pytest.raises(SystemExit):
        SCREEN.main(["--threads", "0"])


#: The page's label of each setting of the GAN screen (book/08_scaling.md, its two screen tables).
SCREEN_LABELS = {"r1-0.1": "γ = 0.1", "base": "γ = 1 (the digits')",
                 "b128": "γ = 1, batches of 128", "r1-3": "γ = 3", "r1-10": "γ = 10",
                 "r1-10-ref": "γ = 10 (shipped, again)", "r1-30": "γ = 30",
                 "r1-10-b128": "γ = 10, batches of 128",
                 "r1-10-latent8": "γ = 10, latent 8 (the digits')"}


def test_the_book_shows_every_screened_setting():
    """The screen tables of book/08_scaling.md are the results file's 3,000-step rows, the
    losers included; none is left out."""
    page = (ROOT / "book" / "08_scaling.md").read_text(encoding="utf-8")
    rows = [r for r in SCREEN.read_rows() if r["steps"] == 3000]
    assert {r["setting"] for r in rows} == set(SCREEN_LABELS)
    for r in rows:
        line = (f"| {SCREEN_LABELS[r['setting']]} | {r['fid'][0]:.1f} ± {r['fid'][1]:.1f} | "
                f"{r['precision'][0]:.3f} | {r['recall'][0]:.3f} | {r['classes']:.1f} | "
                f"{r['cpu_s']:,.0f} |")
        assert line in page, line


def test_the_second_screen_keeps_the_recipe():
    """Chapter 8's second screen (another CPU, its own reference): the reference is within the
    spread of the first machine's γ = 10; γ = 30 is within the spread of it; batches of 128 are
    separated from it at about twice its CPU seconds, but 6,000 steps of batches of 64 (as many
    images) are separated from, and better than, 3,000 of 128, with γ = 10 and with γ = 1."""
    rows = {(r["setting"], r["steps"]): r for r in SCREEN.read_rows()}
    ref, first = rows["r1-10-ref", 3000], rows["r1-10", 3000]
    assert not metrics.separated(ref, first, "fid")
    assert not metrics.separated(rows["r1-30", 3000], ref, "fid")
    b128 = rows["r1-10-b128", 3000]
    assert metrics.separated(b128, ref, "fid") and b128["fid"][0] < ref["fid"][0]
    assert 1.9 < b128["cpu_s"] / ref["cpu_s"] < 2.2
    six = rows["r1-10", 6000]
    assert metrics.separated(six, b128, "fid") and six["fid"][0] < b128["fid"][0]
    # γ = 1: the 6,000-step model shipped until d869c2e, whose record the file's comment keeps
    found = re.search(r"gamma 1 +\(commit \w+\): conv GAN FID ([\d.]+) ± ([\d.]+)",
                      SCREEN.RESULTS.read_text(encoding="utf-8"))
    gamma1_6k = {"fid": (float(found[1]), float(found[2]))}
    assert metrics.separated(gamma1_6k, rows["b128", 3000], "fid")
    assert gamma1_6k["fid"][0] < rows["b128", 3000]["fid"][0]


def test_the_latent_of_8_leads_at_3000_steps_but_not_at_6000():
    """Chapter 8: the digits' latent size (8) against the recipe's 32, γ = 10: separated and
    better at 3,000 steps (against the second machine's reference), within the spread at 6,000
    (against the ladder's run), with a lower recall, separated, at both."""
    rows = {(r["setting"], r["steps"]): r for r in SCREEN.read_rows()}
    for steps, ref in ((3000, rows["r1-10-ref", 3000]), (6000, rows["r1-10", 6000])):
        small = rows["r1-10-latent8", steps]
        assert metrics.separated(small, ref, "recall") and small["recall"][0] < ref["recall"][0]
        assert metrics.separated(small, ref, "fid") == (steps == 3000)
        if steps == 3000:
            assert small["fid"][0] < ref["fid"][0]
    page = (ROOT / "book" / "08_scaling.md").read_text(encoding="utf-8")
    six = rows["r1-10-latent8", 6000]
    assert f"steps: {six['fid'][0]:.1f} ± {six['fid'][1]:.1f}, within the spread" in page


def test_two_screens_side_by_side_keep_their_lines_under_their_own_headers(tmp_path, monkeypatch):
    """Two runs of the screen on the two cores append to one file: a line written after the
    other run's lines comes under its own run's header again."""
    results = tmp_path / "screen.txt"
    results.write_text("# earlier\n", encoding="utf-8")
    monkeypatch.setattr(SCREEN, "RESULTS", results)
    monkeypatch.setattr(SCREEN, "load_fashion_mnist", lambda split, verbose: (None, None))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)

    def run(name, steps, X, y):  # the other run appends its block while r1-30 trains
        if name == "r1-30":
            with results.open("a", encoding="utf-8") as f:
                f.write("# the other run's header\nr1-10-b128 line\n")
        return f"{name} line"

    monkeypatch.setattr(SCREEN, "run", run)
    assert SCREEN.main(["--settings", "r1-10-ref", "r1-30", "--steps", "7", "--save"]) == 0
    lines = results.read_text(encoding="utf-8").splitlines()
    ours = [i for i, ln in enumerate(lines) if ln.startswith("# ") and ln.endswith("--steps 7")]
    assert len(ours) == 2 and lines[0] == "# earlier"
    assert lines[ours[0] + 2] == "r1-10-ref line" and lines[ours[1] + 2] == "r1-30 line"
    assert lines[ours[0] + 1] == lines[ours[1] + 1] == SCREEN.HEADER
    assert lines.index("r1-10-b128 line") < ours[1]


def test_the_gan_budget_ladder_levels_off_at_the_shipped_budget_and_beats_the_vae():
    """Chapter 8's budget ladder: separate runs of the shipped GAN recipe (γ = 10) from 3,000 to
    80,000 steps and the shipped model, the last rung: every rung up to 80,000 steps is separated
    from, and better than, the one before, by a third or more per doubling up to 40,000 and by
    less after it (the curve bends); the shipped model's doubling is the first within the spread
    (levelled off by the course's rule, as the page says), its mean still lower. At equal budgets
    the GAN beats the VAE: the 40,000-step rung, with CPU seconds within 15% of the conv VAE's, is
    separated from it and better; so is the shipped GAN."""
    ladder = _gan_ladder()
    steps = [r[0] for r in ladder]
    shipped = shipped_records()["gan_fashion"]["params"]["n_steps"]
    assert len(ladder) >= 6 and steps == sorted(set(steps)) and steps[-1] == shipped
    ratios, separated = [], []
    for (s0, _, f0, sd0, *_), (s1, _, f1, sd1, *_) in zip(ladder, ladder[1:]):
        assert f1 < f0
        separated.append(metrics.separated({"fid": (f0, sd0)}, {"fid": (f1, sd1)}, "fid"))
        ratios.append((f1 / f0) ** (1 / np.log2(s1 / s0)))  # FID ratio per doubling of the steps
    assert all(separated[:-1]) and not separated[-1]
    assert 2 * steps[-2] == shipped  # the last step is a doubling
    at_40k = steps.index(40000)
    assert max(ratios[:at_40k]) < 0.7 < min(ratios[at_40k:]) and ratios[at_40k:] == sorted(ratios[at_40k:])
    gan, vae = ROWS["gan_fashion"], ROWS["vae_fashion"]
    assert _separated("gan_fashion", "vae_fashion", "fid") and gan["fid"][0] < vae["fid"][0]
    _, cpu_40k, fid_40k, sd_40k, *_ = ladder[at_40k]
    assert abs(cpu_40k / vae["fit_cpu_s"] - 1) < 0.15
    assert metrics.separated({"fid": (fid_40k, sd_40k)}, vae, "fid") and fid_40k < vae["fid"][0]


def test_the_conditional_gan_levelled_off_and_beats_the_conditional_vae_with_less_compute():
    """Chapter 8: a separate run of the conditional GAN's recipe with half the shipped steps is
    within the spread of the shipped model (doubling its steps bought nothing measurable), and it
    beats the conditional VAE, by the rule, with fewer CPU seconds."""
    runs = [r for r in SCREEN.read_rows() if r["setting"] == "cgan-r1-10"]
    shipped = shipped_records()["cgan_fashion"]["params"]["n_steps"]
    assert [r["steps"] for r in runs] == [shipped // 2]
    half, cvae = runs[0], ROWS["cvae_fashion"]
    assert not metrics.separated(half, ROWS["cgan_fashion"], "fid")
    assert metrics.separated(half, cvae, "fid") and half["fid"][0] < cvae["fid"][0]
    assert half["cpu_s"] < cvae["fit_cpu_s"]


VAE_SCREEN = load_script("benchmarks/fashion_vae_screen.py")


def test_the_vae_screen_reads_its_rows_diverged_ones_included(tmp_path, monkeypatch):
    results = tmp_path / "screen.txt"
    results.write_text("# a run\n" + VAE_SCREEN.HEADER + "\n"
                       "lr1e-3            0   10000       6       3.7400             -       160.0\n"
                       "c32-lr3e-3        1   10000       6            -       epoch 1       90.5\n",
                       encoding="utf-8")
    monkeypatch.setattr(VAE_SCREEN, "RESULTS", results)
    rows = VAE_SCREEN.read_rows()
    assert [(r["setting"], r["seed"], r["val_bpp"], r["diverged"]) for r in rows] == [
        ("lr1e-3", 0, 3.74, "-"), ("c32-lr3e-3", 1, None, "epoch 1")]
    assert rows[1]["images"] == 10_000 and rows[1]["epochs"] == 6 and rows[1]["cpu_s"] == 90.5
    # recorded at these images and epochs: skipped, nothing trained or written
    before = results.read_text(encoding="utf-8")
    assert VAE_SCREEN.main(["--settings", "lr1e-3", "--seeds", "0", "--save"]) == 0
    assert VAE_SCREEN.main(["--settings", "c32-lr3e-3", "--seeds", "1", "--save"]) == 0
    assert results.read_text(encoding="utf-8") == before
    with pytest.raises(SystemExit):
        VAE_SCREEN.main(["--epochs", "0"])


#: The page's label of each setting of the VAE screen (book/08_scaling.md).
VAE_SCREEN_LABELS = {"lr1e-3": "16 channels, lr 10⁻³ (the recipe)",
                     "lr3e-3": "16 channels, lr 3 × 10⁻³ (the digits')",
                     "lr3e-4": "16 channels, lr 3 × 10⁻⁴", "c32-lr1e-3": "32 channels, lr 10⁻³",
                     "c32-lr3e-3": "32 channels, lr 3 × 10⁻³"}


def _vae_screen() -> dict[str, dict[int, dict]]:
    by = {}
    for r in VAE_SCREEN.read_rows():
        assert (r["images"], r["epochs"]) == (10_000, 6) and r["diverged"] == "-", r
        by.setdefault(r["setting"], {})[r["seed"]] = r
    return by


def test_the_book_shows_the_vae_screen():
    page = (ROOT / "book" / "08_scaling.md").read_text(encoding="utf-8")
    screen = _vae_screen()
    assert set(screen) == set(VAE_SCREEN_LABELS) == set(VAE_SCREEN.SETTINGS)
    for name, runs in screen.items():
        row = (f"| {VAE_SCREEN_LABELS[name]} | {runs[0]['val_bpp']:.4f} | {runs[1]['val_bpp']:.4f} | "
               f"{runs[0]['cpu_s']:,.0f} |")
        assert row in page, row


def test_the_vae_screen_keeps_the_rate_and_the_width():
    """Chapter 8's VAE screen: 3e-4 is worse than the recipe's 1e-3 on both seeds, by more than
    the recipe moves from seed to seed; 3e-3 is worse on average (and by that much on one seed);
    with 32 channels 3e-3 ends worse than independent pixels on both seeds while 1e-3 beats 16
    channels on both, at more than 2.5 times the CPU seconds."""
    screen = _vae_screen()
    s = {name: {seed: r["val_bpp"] for seed, r in runs.items()} for name, runs in screen.items()}
    noise = abs(s["lr1e-3"][0] - s["lr1e-3"][1])
    for seed in (0, 1):
        assert s["lr3e-4"][seed] - s["lr1e-3"][seed] > noise
        assert s["c32-lr3e-3"][seed] > ROWS["independent pixels"]["bpp"]
        assert s["c32-lr1e-3"][seed] < s["lr1e-3"][seed]
    assert np.mean(list(s["lr3e-3"].values())) > np.mean(list(s["lr1e-3"].values()))
    assert max(s["lr3e-3"][k] - s["lr1e-3"][k] for k in (0, 1)) > noise
    cpu = {name: runs[0]["cpu_s"] for name, runs in screen.items()}
    assert cpu["c32-lr1e-3"] / cpu["lr1e-3"] > 2.5


VAE_LADDER = load_script("benchmarks/fashion_vae_ladder.py")


def test_one_vae_run_gives_the_weights_of_every_shorter_run():
    """The VAE ladder's premise: with a constant learning rate, the weights that a run of E
    epochs returns are those that a longer run of the same seed kept after epoch E, so one run
    gives the whole ladder (checked on a small digits VAE, three epochs against two)."""
    from course_lib.data import load_digits

    X, _ = load_digits("train", dequantize=True, seed=0)
    kw = {"hidden": (32,), "latent_dim": 4, "n_iter_no_change": 50, "random_state": 0,
          "device": "cpu"}
    with VAE_LADDER._recording() as by_epoch:
        VAE(epochs=3, **kw).fit(X[:400])
    assert sorted(by_epoch) == [1, 2, 3]
    state, best_at = by_epoch[2]
    short = VAE(epochs=2, **kw).fit(X[:400])
    assert best_at == short.best_epoch_
    for sd, net in zip(state, (short.encoder_, short.decoder_, short.prior_)):
        for key, value in net.state_dict().items():
            assert torch.equal(sd[key], value), key
    assert VAE_LADDER.vae_model.EarlyStopping is course_lib.vae.train.EarlyStopping  # restored


def test_a_vae_ladder_that_stops_and_goes_on_keeps_the_rungs_it_passed(tmp_path, monkeypatch):
    """--checkpoint-dir: a ladder run stopped after its rung at epoch 2 goes on from its
    checkpoint and ends with every rung's weights, those of the run that never stopped; the
    same command with other rungs is refused."""
    from course_lib.data import load_digits

    X, _ = load_digits("train", dequantize=True, seed=0)
    kw = {"hidden": (32,), "latent_dim": 4, "n_iter_no_change": 50, "random_state": 0,
          "device": "cpu", "epochs": 4, "progress": False}
    with VAE_LADDER._recording() as whole:
        VAE(**kw).fit(X[:300])
    run, store = tmp_path / "run.pt", tmp_path / "rungs.pt"
    epoch_fn = course_lib.vae.model.train_epoch

    def stopping(model, epoch, *args):
        if epoch == 3:
            raise RuntimeError("stopped")
        return epoch_fn(model, epoch, *args)

    with VAE_LADDER._recording(store, rungs=(2, 4)), monkeypatch.context() as m:
        m.setattr(course_lib.vae.model, "train_epoch", stopping)
        with pytest.raises(RuntimeError, match="stopped"):
            VAE(**kw).fit(X[:300], checkpoint=run)
    # going on with other rungs is refused before any training: rung 1 passed unrecorded
    with pytest.raises(SystemExit, match="--rungs 2 4"), VAE_LADDER._recording(store, rungs=(1, 2, 4)):
        pass
    with VAE_LADDER._recording(store, rungs=(2, 4)) as resumed:
        assert sorted(resumed) == [2]  # the rung passed before the stop, read back
        VAE(**kw).fit(X[:300], checkpoint=run)
    for e in (2, 4):
        assert resumed[e][1] == whole[e][1]
        for a, b in zip(resumed[e][0], whole[e][0]):
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), e


def test_the_vae_ladder_reads_its_rows_and_does_not_run_a_recorded_model_again(tmp_path,
                                                                               monkeypatch):
    rows = VAE_LADDER.read_rows()
    assert rows and {r["model"] for r in rows} == {"vae_fashion", "cvae_fashion"}
    copy = tmp_path / "ladder.txt"
    copy.write_text(VAE_LADDER.RESULTS.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(VAE_LADDER, "RESULTS", copy)
    before = copy.read_text(encoding="utf-8")
    # the registered command of `make bench` finds the model recorded and trains nothing, and
    # so does the command that made the conditional VAE's rows
    assert VAE_LADDER.main(["--save"]) == 0
    assert VAE_LADDER.main(["--models", "cvae_fashion", "--threads", "1", "--save"]) == 0
    assert copy.read_text(encoding="utf-8") == before
    with pytest.raises(SystemExit):
        VAE_LADDER.main(["--epochs", "0"])


def _vae_ladder(model: str = "vae_fashion") -> dict[int, dict]:
    """A conv VAE's epoch ladder (benchmarks/fashion_vae_ladder.py), by epochs."""
    return {r["epoch"]: r for r in VAE_LADDER.read_rows() if r["model"] == model}


# the rungs of each ladder
@pytest.mark.parametrize("model, rungs", [("vae_fashion", [5, 10, 20, 40, 60, 80]),
                                          ("cvae_fashion", [5, 10, 20, 40, 60, 80])])
def test_the_book_shows_the_vae_epoch_ladder(model, rungs):
    """book/08_scaling.md's tables under "Is it converged?" are the VAEs' ladders, row for row,
    and the sentence under each lists its rungs' held-out bits per pixel."""
    page = " ".join((ROOT / "book" / "08_scaling.md").read_text(encoding="utf-8").split())
    ladder = _vae_ladder(model)
    assert sorted(ladder) == rungs
    for e, r in ladder.items():
        row = (f"| {e} | {r['cpu_s']:,.0f} | {r['fid'][0]:.1f} ± {r['fid'][1]:.1f} | "
               f"{r['precision'][0]:.3f} | {r['recall'][0]:.3f} |")
        assert row in page, row
    bpp = [f"{r['test_bpp']:.4f}" for r in ladder.values()]
    assert f"were {', '.join(bpp[:-1])} and {bpp[-1]})" in page


def test_the_vae_fid_levelled_off_by_its_shipped_epochs_and_stays_behind_the_gan():
    """Chapter 8: the VAE's FID falls, by the rule, with every doubling of its epochs up to the
    shipped 40 and not from 40 to 80; the ladder's 40-epoch rung reproduces the shipped VAE within
    the spread; and at about the same CPU seconds on the same two threads the GAN's 80,000-step
    run beats the 80-epoch VAE, as the shipped GAN beats it too."""
    ladder = _vae_ladder()
    shipped = shipped_records()["vae_fashion"]["params"]["epochs"]
    assert sorted(ladder) == [5, 10, 20, 40, 60, 80] and shipped == 40
    for e in (5, 10, 20):
        assert metrics.separated(ladder[e], ladder[2 * e], "fid")
        assert ladder[2 * e]["fid"][0] < ladder[e]["fid"][0]
    assert not metrics.separated(ladder[shipped], ladder[2 * shipped], "fid")
    assert not metrics.separated(ladder[shipped], ROWS["vae_fashion"], "fid")
    # the likelihood still improved at every rung (early stopping never triggered)
    assert all(ladder[a]["val_bpp"] > ladder[b]["val_bpp"] for a, b in zip(ladder, list(ladder)[1:]))
    gan_80k = next(r for r in SCREEN.read_rows() if r["setting"] == "r1-10" and r["steps"] == 80_000)
    vae_80 = ladder[80]
    assert abs(gan_80k["cpu_s"] / vae_80["cpu_s"] - 1) < 0.05
    for gan in (gan_80k, ROWS["gan_fashion"]):
        assert metrics.separated(gan, vae_80, "fid") and gan["fid"][0] < vae_80["fid"][0]


def test_the_cvae_fid_levelled_off_by_its_shipped_epochs_and_stays_behind_the_cgan():
    """Chapter 8's conditional VAE ladder (one 80-epoch run): every doubling up to the shipped
    40 epochs is separated, each by a larger ratio (the curve bends); 40 -> 80 is within the
    spread, so by the rule the FID has levelled off at the shipped budget, while the likelihood
    still improves at every rung; the 40-epoch rung reproduces the shipped model within the
    spread; and after 80 epochs it is still behind the conditional GAN's 20,000-step run."""
    ladder = _vae_ladder("cvae_fashion")
    shipped = shipped_records()["cvae_fashion"]["params"]["epochs"]
    assert sorted(ladder) == [5, 10, 20, 40, 60, 80] and shipped == 40
    ratios = []
    for e in (5, 10, 20, 40):
        ratios.append(ladder[2 * e]["fid"][0] / ladder[e]["fid"][0])
        assert metrics.separated(ladder[e], ladder[2 * e], "fid") == (e < shipped)
    assert ratios == sorted(ratios) and ratios[-1] < 1
    assert all(ladder[a]["val_bpp"] > ladder[b]["val_bpp"] for a, b in zip(ladder, list(ladder)[1:]))
    assert not metrics.separated(ladder[shipped], ROWS["cvae_fashion"], "fid")
    cgan_20k = next(r for r in SCREEN.read_rows() if r["setting"] == "cgan-r1-10")
    assert metrics.separated(cgan_20k, ladder[80], "fid") and cgan_20k["fid"][0] < ladder[80]["fid"][0]
    assert all(r["classes"] == 10.0 for r in ladder.values())
    page = " ".join((ROOT / "book" / "08_scaling.md").read_text(encoding="utf-8").split())
    (f40, s40), (f80, s80) = ladder[40]["fid"], ladder[80]["fid"]
    assert (f"fell from {f40:.1f} to {f80:.1f}, **within the spread** ({f40 - f80:.1f} against "
            f"the rule's {2 * np.hypot(s40, s80):.1f})") in page
    assert "per doubling " + ", ".join(f"{r:.2f}" for r in ratios[:2]) + f" and {ratios[2]:.2f}" in page
    assert f"a ratio of {ratios[3]:.2f} for the doubling" in page


def test_the_benchmark_can_refresh_the_neural_rows_alone(tmp_path, monkeypatch):
    """--records-only (for a model shipped again, e.g. on another machine): the neural rows are
    read from the records again, the statistical rows and the scaling timings are the saved
    run's, under a line that names its date and machine, which a second such run keeps; without
    a saved run it stops with a message rather than writing a half file."""
    bench = load_script("benchmarks/fashion_models.py")
    saved = ROOT / "benchmarks" / "results" / "fashion_models_cpu.txt"
    for name in ("fashion_models_cpu.txt", "fashion_models_cpu.json"):
        (tmp_path / name).write_text((saved.parent / name).read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    records = shipped_records()
    records["gan_fashion"] = {**records["gan_fashion"], "cpu": "Another CPU",
                              "fit_cpu_s": records["gan_fashion"]["fit_cpu_s"] + 1000.0}
    monkeypatch.setattr(bench, "shipped_records", lambda: records)
    assert bench.main(["--records-only", "--save"]) == 0
    before, after = saved.read_text(encoding="utf-8"), (tmp_path / saved.name).read_text(encoding="utf-8")
    kept = re.search(r"kept from the run of (.+?) \(--records-only", before)  # saved so itself
    when = kept[1] if kept else before.splitlines()[0].rsplit("; ", 1)[1]
    assert f"kept from the run of {when} (--records-only" in after
    machine = next(ln for ln in before.splitlines() if ln.startswith("# Machine"))
    assert machine in after.splitlines() and "gan_fashion Another CPU" in after
    changed = {ln.split()[0] for ln in set(before.splitlines()) ^ set(after.splitlines())
               if not ln.startswith("#")}
    assert changed == {"gan_fashion"}  # the table: only the row whose record changed
    scaling = [ln for ln in before.splitlines() if ln.startswith(("#   8x8", "#   28x28", "#   ratio"))]
    assert len(scaling) == 3 and all(ln in after.splitlines() for ln in scaling)
    rows = {r["name"]: r for r in json.loads((tmp_path / "fashion_models_cpu.json").read_text())}
    assert rows["gan_fashion"]["fit_cpu_s"] == ROWS["gan_fashion"]["fit_cpu_s"] + 1000.0
    assert rows[GMM] == ROWS[GMM]
    assert bench.main(["--records-only", "--save"]) == 0  # again: still the first run's date
    assert f"kept from the run of {when} (--records-only" in (tmp_path / saved.name).read_text()
    (tmp_path / "fashion_models_cpu.json").unlink()
    with pytest.raises(SystemExit, match="fashion_models_cpu.json"):
        bench.main(["--records-only"])
    with pytest.raises(SystemExit):
        bench.main(["--records-only", "--train"])

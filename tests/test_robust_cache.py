"""Cache files under attack and faults (issue 25): a symlink planted where a cache file goes,
a cache folder owned by someone else, a shared temporary folder, a full disk.

The writes go through one helper (``course_lib._core.write_files``): each file is written to
a new temporary file in the target folder, created exclusively, then renamed over the target,
so that a symlink at the target is replaced and never followed.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from pathlib import Path

import pytest
import torch
from test_training import Line, _data

from course_lib import _core, metrics, training
from course_lib.training import fit_cached

# ---------------------------------------------------------------- symlinks


def _victim(tmp_path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    return victim


def test_write_files_replaces_a_symlink_instead_of_following_it(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    victim = _victim(tmp_path)
    target = folder / "data.bin"
    target.symlink_to(victim)
    _core.write_files({target: b"new"})
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink() and target.read_bytes() == b"new"
    assert sorted(p.name for p in folder.iterdir()) == ["data.bin"]  # no temporary left


@pytest.mark.parametrize("planted", ["checksum", "weights"])
def test_fit_cached_never_writes_through_a_planted_symlink(tmp_path, planted):
    X, y = _data()
    folder = tmp_path / "cache"
    fit_cached(Line(), X, y, folder=folder)  # learn the file names
    weights = next(folder.glob("Line_*.pt"))
    link = weights.with_name(weights.name + ".sha256") if planted == "checksum" else weights
    for p in folder.iterdir():
        p.unlink()
    victim = _victim(tmp_path)
    link.symlink_to(victim)
    fit_cached(Line(), X, y, folder=folder)
    assert victim.read_text() == "precious\n"
    assert not link.is_symlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the cache written is intact and is used
        again = fit_cached(Line(), X, y, folder=folder)
    assert isinstance(again, Line)


def test_the_classifier_cache_never_writes_through_a_planted_symlink(tmp_path, monkeypatch):
    good = metrics.DigitCNN()

    def fake_training():
        return good

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(metrics.features, "_ASSETS", tmp_path / "no_assets")
    monkeypatch.setattr(metrics.features, "_train_classifier", fake_training)
    monkeypatch.setattr(metrics.features, "_classifier_problem", lambda model: None)
    monkeypatch.setattr(metrics.features, "_CLASSIFIER_MEMO", {})
    path = metrics.features._classifier_path()
    victim = _victim(tmp_path)
    path.symlink_to(victim)
    path.with_name(path.name + ".sha256").symlink_to(victim)
    metrics.digit_classifier("cpu")
    assert victim.read_text() == "precious\n"
    assert not path.is_symlink() and torch.load(path, weights_only=True).keys() == \
        good.state_dict().keys()


# ---------------------------------------------------------------- whose folder


def _owned_by_someone_else(path: Path, monkeypatch) -> Path:
    """Make ``path`` a folder of another user: really (chown) where this process may, else by
    making ``_core``'s one ownership test see that folder as foreign (without root, or in a
    user namespace such as ``unshare -r``, which maps no other uid: chown fails there)."""
    path.mkdir(parents=True, exist_ok=True)
    if not hasattr(os, "geteuid"):
        pytest.skip("no user ids on this system")
    try:
        os.chown(path, os.geteuid() + 1, -1)
    except OSError:
        ino = path.stat().st_ino
        real = _core._foreign
        monkeypatch.setattr(_core, "_foreign", lambda info: info.st_ino == ino or real(info))
    return path


def test_a_cache_folder_owned_by_someone_else_is_refused(tmp_path, monkeypatch):
    theirs = _owned_by_someone_else(tmp_path / "theirs", monkeypatch)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(theirs))
    monkeypatch.setattr(_core, "_REPO_CACHE", tmp_path / "repo")
    with pytest.warns(UserWarning, match="owned by another user"):
        assert _core.cache_dir() == tmp_path / "repo"


def test_the_temporary_fallback_is_private_and_per_user(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("COURSE_CACHE_DIR", str(blocker / "env"))
    monkeypatch.setattr(_core, "_REPO_CACHE", blocker / "repo")
    monkeypatch.setenv("HOME", str(blocker / "home"))
    monkeypatch.setattr(_core, "_TEMP_CACHE", [])
    monkeypatch.setattr(_core.tempfile, "tempdir", str(tmp_path / "shared-tmp"))
    (tmp_path / "shared-tmp").mkdir()
    with pytest.warns(UserWarning, match="temporary folder"):
        path = _core.cache_dir()
    assert path.parent == tmp_path / "shared-tmp"
    if hasattr(os, "getuid"):
        assert str(os.getuid()) in path.name
        info = path.lstat()
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == os.getuid()


def test_a_planted_temporary_fallback_is_not_used(tmp_path, monkeypatch):
    """Another user created the per-user folder name first (or planted a symlink there)."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("COURSE_CACHE_DIR", str(blocker / "env"))
    monkeypatch.setattr(_core, "_REPO_CACHE", blocker / "repo")
    monkeypatch.setenv("HOME", str(blocker / "home"))
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    monkeypatch.setattr(_core.tempfile, "tempdir", str(shared))
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir()
    name = _core._temp_cache_name()
    (shared / name).symlink_to(elsewhere)
    monkeypatch.setattr(_core, "_TEMP_CACHE", [])
    with pytest.warns(UserWarning):
        path = _core.cache_dir()
    assert path != shared / name and elsewhere not in path.parents and path != elsewhere
    assert stat.S_IMODE(path.lstat().st_mode) == 0o700
    # a real folder of the right name, but owned by someone else
    (shared / name).unlink()
    _owned_by_someone_else(shared / name, monkeypatch)
    monkeypatch.setattr(_core, "_TEMP_CACHE", [])
    with pytest.warns(UserWarning, match="owned by another user"):
        path = _core.cache_dir()
    assert path != shared / name


# ---------------------------------------------------------------- a full disk


def _disk_full(kind):
    def write(fd, data):
        if kind == "iostream":
            raise RuntimeError("basic_ios::clear: iostream error")
        if kind == "enforce":
            raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter "
                               "failed writing file data/0: file write failed")
        os.write(fd, data[: len(data) // 2])  # half written, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write


@pytest.mark.parametrize("kind", ["enospc", "iostream", "enforce"])
def test_a_full_disk_is_an_oserror_naming_the_folder_and_the_space(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(_core, "_write_all", _disk_full(kind))
    target = tmp_path / "weights.pt"
    with pytest.raises(OSError) as info:
        _core.write_files({target: b"x" * 5000, tmp_path / "weights.pt.sha256": b"abc\n"})
    text = str(info.value)
    assert str(tmp_path) in text and "5,004 bytes" in text
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary


@pytest.mark.parametrize("kind", ["enospc", "iostream"])
def test_save_atomically_reports_a_full_disk(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(_core, "_write_all", _disk_full(kind))
    with pytest.raises(OSError, match="could not write .* bytes in the folder"):
        training.save_atomically({"w": torch.zeros(100)}, tmp_path / "w.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["enospc", "iostream", "enforce"])
def test_fit_cached_goes_on_without_caching_on_a_full_disk(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(_core, "_write_all", _disk_full(kind))
    X, y = _data()
    with pytest.warns(UserWarning, match="could not cache") as record:
        model = fit_cached(Line(), X, y, folder=tmp_path)
    assert str(tmp_path) in str(record[0].message)
    assert hasattr(model, "net_")
    assert list(tmp_path.iterdir()) == []


def test_torch_save_failing_inside_fit_cached_is_an_oserror_too(tmp_path, monkeypatch):
    """The same when the failure comes from torch.save itself (it writes through a C++ stream)."""

    def failing_save(*args, **kwargs):
        raise RuntimeError("basic_ios::clear: iostream error")

    monkeypatch.setattr(torch, "save", failing_save)
    X, y = _data()
    with pytest.warns(UserWarning, match="could not cache"):
        model = fit_cached(Line(), X, y, folder=tmp_path)
    assert hasattr(model, "net_") and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["enospc", "enforce"])
def test_the_classifier_is_used_without_caching_on_a_full_disk(tmp_path, monkeypatch, kind):
    good = metrics.DigitCNN()
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(metrics.features, "_ASSETS", tmp_path / "no_assets")
    monkeypatch.setattr(metrics.features, "_train_classifier", lambda: good)
    monkeypatch.setattr(metrics.features, "_classifier_problem", lambda model: None)
    monkeypatch.setattr(metrics.features, "_CLASSIFIER_MEMO", {})
    monkeypatch.setattr(_core, "_write_all", _disk_full(kind))
    with pytest.warns(UserWarning, match="could not cache the digit classifier"):
        model = metrics.digit_classifier("cpu")
    assert model is good
    assert [p for p in tmp_path.iterdir() if p.name.startswith("digit_cnn")] == []

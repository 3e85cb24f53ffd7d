"""Private helpers shared by every model: device, seeding, input validation, progress, and
the cache (its folder, and the one way files are written and verified).

Models import from here; nothing here imports a model.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import platform
import random
import shutil
import stat
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "get_device",
    "resolve_device",
    "seed_everything",
    "make_generator",
    "MAX_SEED",
    "check_seed",
    "cache_dir",
    "write_files",
    "torch_bytes",
    "save_verified",
    "checksum_path",
    "file_problem",
    "load_verified",
    "as_real_array",
    "as_tensor",
    "as_numpy",
    "check_bool",
    "check_int",
    "check_real",
    "check_choice",
    "check_params",
    "Int",
    "Float",
    "Flag",
    "OneOf",
    "Seed",
    "check_images",
    "check_binary",
    "progress",
]

_DEVICE_ENV = "COURSE_DEVICE"


def get_device() -> torch.device:
    """Return the torch device the course runs on.

    Reads the environment variable ``COURSE_DEVICE``:

    - ``cpu``: always the CPU;
    - ``cuda``: the GPU; raises ``RuntimeError`` if none is available (never a silent
      fallback to the CPU);
    - unset or empty: the GPU if one is available, else the CPU.
    """
    choice = os.environ.get(_DEVICE_ENV, "").strip().lower()
    if choice in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"{_DEVICE_ENV}=cuda but torch.cuda.is_available() is False: "
                "no CUDA GPU is visible to PyTorch. Unset COURSE_DEVICE or set it to cpu."
            )
        return torch.device("cuda")
    raise ValueError(f"{_DEVICE_ENV} must be 'cpu', 'cuda' or unset, got {choice!r}")


_DEVICE_TYPES = ("cpu", "cuda")


def resolve_device(device, name: str = "device") -> torch.device:
    """Turn a user's ``device`` argument into a ``torch.device``, or raise naming ``name``.

    Accepted: ``None`` or ``"auto"`` (then :func:`get_device`, which reads ``COURSE_DEVICE``),
    ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and the same as a ``torch.device``. Anything else
    (``"gpu"``, ``12345``, ``True``, ``"meta"``) is a ``ValueError``. A CUDA device when PyTorch
    sees no GPU, or an index past the last GPU, is a ``RuntimeError``: never a silent fallback.
    """
    if device is None:
        return get_device()
    expected = "None, 'cpu', 'cuda', 'cuda:N' or a torch.device"
    if isinstance(device, str):
        text = device.strip().lower()
        if text == "auto":
            return get_device()
        try:
            dev = torch.device(text)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be {expected}, got {device!r}") from exc
    elif isinstance(device, torch.device):
        dev = device
    else:  # ints, bools, floats...: torch.device(0) would mean "accelerator 0"; be explicit
        raise ValueError(
            f"{name} must be {expected}, got {type(device).__name__} {device!r}"
            + (" (write 'cuda:N' for GPU number N)" if isinstance(device, Integral) else "")
        )
    if dev.type not in _DEVICE_TYPES:
        raise ValueError(f"{name} must be {expected}, got {device!r} (device type {dev.type!r})")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"{name}={device!r} was asked for but PyTorch sees no CUDA GPU "
                "(torch.cuda.is_available() is False): use 'cpu' or None"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"{name}={device!r}: PyTorch sees {torch.cuda.device_count()} GPU(s), "
                f"numbered 0 to {torch.cuda.device_count() - 1}"
            )
    return dev


#: Largest seed accepted anywhere in the course: what ``torch.manual_seed`` accepts.
MAX_SEED = 2**64 - 1


def check_seed(seed, name: str = "seed", *, allow_none: bool = True):
    """The one seed check of the course: ``None`` (when ``allow_none``) or an int in
    ``[0, MAX_SEED]`` (NumPy integers accepted, booleans refused). Returns ``None`` or an int.

    Every function taking a ``seed``/``random_state`` validates it here, so that a bad seed
    gets the same clear error everywhere instead of one from deep inside NumPy or PyTorch.
    """
    if seed is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be an integer in [0, 2**64 - 1], got None")
    if isinstance(seed, torch.Tensor) and seed.numel() == 1 and not seed.is_floating_point() \
            and not seed.is_complex() and seed.dtype != torch.bool:
        seed = int(seed.item())
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (Integral, np.integer)):
        what = "None or an integer" if allow_none else "an integer"
        raise TypeError(
            f"{name} must be {what} in [0, 2**64 - 1], got {type(seed).__name__} {seed!r}"
        )
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be in [0, 2**64 - 1], got {seed}")
    return seed


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and PyTorch (CPU and CUDA).

    With the same seed, every computation of the course gives the same result on the CPU.
    ``seed``: an int in ``[0, 2**64 - 1]`` (see :func:`check_seed`).
    """
    seed = check_seed(seed, "seed", allow_none=False)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def make_generator(seed, device="cpu", *, name: str = "seed") -> torch.Generator:
    """A torch.Generator on ``device`` seeded from ``seed`` (an int) or, for ``None``, from
    torch's global RNG. ``seed`` goes through :func:`check_seed`, ``device`` through
    :func:`resolve_device`; ``name`` is the argument's name in error messages."""
    seed = check_seed(seed, name)
    gen = torch.Generator(device=resolve_device(device))
    if seed is None:
        gen.manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
    else:
        gen.manual_seed(seed)
    return gen


# ---------------------------------------------------------------- cache folder

_CACHE_ENV = "COURSE_CACHE_DIR"
_REPO_CACHE = Path(__file__).resolve().parent.parent / ".cache"
_TEMP_CACHE: list[Path] = []  # the temporary fallback, chosen once per process


def _owned_by_someone_else(path: Path) -> bool:
    """True if ``path`` exists and belongs to another user (never on systems without uids)."""
    try:
        return _foreign(path.stat())
    except OSError:
        return False


def _foreign(info: os.stat_result) -> bool:
    """True if the file whose ``stat`` is ``info`` belongs to another user (the one ownership
    test of the cache folders)."""
    return hasattr(os, "geteuid") and info.st_uid != os.geteuid()


def _usable_dir(path: Path) -> bool:
    """True if ``path`` exists (or can be made) and a file can really be written in it.

    ``os.access`` is not enough: it says yes to root on a read-only mount.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.remove(probe)
        return True
    except OSError:
        return False


def _cache_folders() -> list[tuple[str, Path | None]]:
    env = os.environ.get(_CACHE_ENV, "").strip()
    try:
        home = Path.home() / ".cache" / "course_lib"
    except (RuntimeError, KeyError):  # no home directory at all
        home = None
    return [(_CACHE_ENV, Path(env).expanduser() if env else None), ("repository", _REPO_CACHE),
            ("home", home)]


def _temp_cache_name() -> str:
    """The fallback folder's name in the shared temporary folder: one per user."""
    user = os.geteuid() if hasattr(os, "geteuid") else os.environ.get("USERNAME", "user")
    return f"course_lib-cache-{user}"


def _private_temp_cache() -> Path:
    """``<tempdir>/course_lib-cache-<uid>``, a real folder of this user's with mode 0700 (made
    so if new); if that name is taken by anything else (another user's folder, a symlink, a
    file), a fresh private folder with a random name, with a warning."""
    path = Path(tempfile.gettempdir()) / _temp_cache_name()
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return Path(tempfile.mkdtemp(prefix="course_lib-cache-"))
    info = path.lstat()
    why = None
    if not stat.S_ISDIR(info.st_mode):  # a symlink or a file: never follow it
        why = "is not a folder (a symlink?)"
    elif _foreign(info):
        why = "is owned by another user"
    if why is None:
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(path, 0o700)
        return path
    fresh = Path(tempfile.mkdtemp(prefix="course_lib-cache-"))
    warnings.warn(f"{path} {why}: not using it; caching in {fresh} instead", stacklevel=3)
    return fresh


def cache_dir() -> Path:
    """The folder where the course caches what it computes once (e.g. the digit classifier).

    In order: ``$COURSE_CACHE_DIR``; ``<repository>/.cache``; ``~/.cache/course_lib``; the
    first of them that can be written is used. A folder owned by another user is never used
    (another user could replace its files): it is skipped with a ``UserWarning``. When none
    can be used (read-only checkout and read-only home), the process caches in
    ``<tempdir>/course_lib-cache-<uid>``, a folder private to the user (mode 0700; if that name
    is taken by another user or by a symlink, a fresh private folder), and a ``UserWarning``
    says so, once. An unusable ``$COURSE_CACHE_DIR`` also gets a warning, since it was asked
    for explicitly. Files are written into the cache by :func:`write_files`, which never
    follows a symlink.
    """
    folders = _cache_folders()
    for i, (label, path) in enumerate(folders):
        if path is None:
            continue
        if _owned_by_someone_else(path):
            warnings.warn(f"cache folder {path} ({label}) is owned by another user: not using "
                          "it (its files could be replaced under you)", stacklevel=2)
            continue
        if _usable_dir(path):
            return path
        if i == 0:
            warnings.warn(f"{_CACHE_ENV}={str(path)!r} cannot be written; trying the default "
                          "cache folders", stacklevel=2)
    if _TEMP_CACHE and _usable_dir(_TEMP_CACHE[0]):
        return _TEMP_CACHE[0]
    _TEMP_CACHE[:] = [_private_temp_cache()]
    warnings.warn(
        f"no writable cache folder ({_CACHE_ENV} unset or unusable, {_REPO_CACHE} and "
        f"{folders[2][1]} read-only): caching in the temporary folder {_TEMP_CACHE[0]} (private "
        f"to you; the system may clear it). Set {_CACHE_ENV} to a writable folder to keep the "
        "cache.",
        stacklevel=2,
    )
    return _TEMP_CACHE[0]


# ---------------------------------------------------------------- verified files
#
# The one way the course writes and reads back what it caches or ships (the digit classifier,
# cached fits, checkpoints): write every file to a new temporary file in its folder (created
# exclusively, so nothing planted there is opened), then rename it over the target (a symlink
# at the target is replaced, never followed); a SHA-256 beside the file says it is intact.

#: Messages of ``torch.save`` (its C++ writer) when the disk is full or the file cannot be
#: written; such a RuntimeError is reported as an OSError.
_WRITE_FAILURES = ("iostream error", "inline_container", "file write failed",
                   "PytorchStreamWriter", "No space left")


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to the open file ``fd`` (tests replace this to simulate a full disk)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _is_write_failure(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or (
        isinstance(exc, RuntimeError) and any(s in str(exc) for s in _WRITE_FAILURES))


def _write_error(folder: Path, needed: int, exc: BaseException) -> OSError:
    """An ``OSError`` naming the folder, the space needed and the space free."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or (free is not None and free < needed):
        code, what = errno.ENOSPC, "no space left"
    elif code:
        what = os.strerror(code).lower()
    else:
        code, what = errno.EIO, "the write failed"
    space = "free space unknown" if free is None else f"{free:,} bytes free"
    return OSError(code, f"could not write {needed:,} bytes in the folder {folder} ({what}; "
                         f"{space}): {type(exc).__name__}: {exc}")


def write_files(files: dict, *, mode: int | None = None) -> None:
    """Write ``{path: bytes}`` so that each file appears whole or not at all, and never
    through a symlink.

    Each file is written to a new temporary file created exclusively in the target's folder
    (``tempfile.mkstemp``), and only when every one is written are they renamed over their
    targets (``os.replace``: a symlink planted at a target is replaced, its own target left
    untouched). A failure (e.g. a full disk) leaves no temporary and no partial file and
    raises an ``OSError`` naming the folder and the number of bytes needed. ``mode``: the
    files' permissions (default: ``0o666`` less the umask, like any new file).
    """
    files = {Path(p): bytes(d) for p, d in files.items()}
    needed = sum(len(d) for d in files.values())
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    written: dict[Path, str] = {}
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            written[path] = tmp
            try:
                _write_all(fd, data)
                if hasattr(os, "fchmod"):  # mkstemp makes it private; give it normal permissions
                    os.fchmod(fd, mode)
                os.fsync(fd)  # on the disk before the rename: a power cut leaves old or new
            finally:
                os.close(fd)
        for path, tmp in written.items():
            os.replace(tmp, path)
    except BaseException as exc:
        for tmp in written.values():
            with contextlib.suppress(OSError):
                os.remove(tmp)
        if _is_write_failure(exc):
            folder = next(iter(files)).parent
            raise _write_error(folder, needed, exc) from exc
        raise


def torch_bytes(obj) -> bytes:
    """``torch.save(obj)`` into memory: the bytes a ``.pt`` file holds. A failure of
    torch's writer is reported as an ``OSError``."""
    buffer = io.BytesIO()
    try:
        torch.save(obj, buffer)
    except RuntimeError as exc:
        if _is_write_failure(exc):
            raise OSError(errno.EIO, f"torch.save failed: {exc}") from exc
        raise
    return buffer.getvalue()


def checksum_path(path) -> Path:
    """Where the SHA-256 of ``path`` is kept: ``<path>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def save_verified(obj, path) -> None:
    """``torch.save(obj)`` to ``path`` with its SHA-256 in ``<path>.sha256``, both through
    :func:`write_files` (whole or not at all, never through a symlink; a full disk is an
    ``OSError`` naming the folder)."""
    data = torch_bytes(obj)
    digest = hashlib.sha256(data).hexdigest() + "\n"
    write_files({Path(path): data, checksum_path(path): digest.encode()})


def file_problem(path, expected: str | None = None, against: str = "") -> str | None:
    """Why the file at ``path`` cannot be trusted, or ``None`` if it is intact.

    ``expected``: its SHA-256 (default: read from ``<path>.sha256``); ``against`` names where
    an ``expected`` value came from, for the message ("models.json").
    """
    path = Path(path)
    if not path.is_file():
        return "the file is missing"
    if expected is None:
        try:
            expected = checksum_path(path).read_text().strip()
        except OSError:
            return "its checksum file is missing"
    if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        return "its checksum does not match" + (f" {against}" if against else "")
    return None


def load_verified(path, load, *, label: str, then: str, expected: str | None = None,
                  against: str = "", missing_ok: bool = True, category=UserWarning,
                  stacklevel: int = 2):
    """``load(path)`` if the file is intact (:func:`file_problem`), else ``None`` with a
    warning "``label`` is not usable (why): ``then``".

    ``load`` returns the object or raises ``ValueError`` saying why it is not usable (a file
    that cannot be read, a failed sanity check). A missing file returns ``None`` silently when
    ``missing_ok``, else with the warning.
    """
    path = Path(path)
    if missing_ok and not path.exists():
        return None
    why = file_problem(path, expected, against)
    if why is None:
        try:
            return load(path)
        except ValueError as exc:
            why = str(exc)
    warnings.warn(f"{label} is not usable ({why}): {then}", category, stacklevel=stacklevel + 1)
    return None


# ---------------------------------------------------------------- validation


def check_bool(value, name: str) -> bool:
    """Return ``value`` as a bool, or raise ``TypeError`` naming ``name``.

    Only ``True`` and ``False`` (and NumPy's booleans) are flags: the string ``"False"``, the
    number ``0`` or ``None`` are refused rather than read by their truth value.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def check_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming ``name``. Booleans are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_real(
    value,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_min: bool = False,
    strict_max: bool = False,
) -> float:
    """Return ``value`` as a finite float within the bounds, or raise naming ``name``.

    Accepts Python and NumPy reals and one-element real tensors; refuses booleans, complex
    numbers (even with a zero imaginary part) and strings with a ``TypeError``.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex() \
            and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.floating, np.integer)):
        kind = "a complex number" if _is_complex(value) else f"{type(value).__name__} {value!r}"
        raise TypeError(f"{name} must be a real number, got {kind}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict_min else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict_min else '>='} {minimum}, got {value}")
    if maximum is not None and (value >= maximum if strict_max else value > maximum):
        raise ValueError(f"{name} must be {'<' if strict_max else '<='} {maximum}, got {value}")
    return value


def check_choice(value, name: str, options: Sequence[str]):
    """Raise unless ``value`` is one of ``options``."""
    try:
        ok = bool(value in options)
    except Exception:  # e.g. an array, compared elementwise
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
    return value


# ---------------------------------------------------------------- declared hyperparameters
#
# An estimator declares its hyperparameters once, as a table ``{name: rule}``, and checks them
# all with one call, ``check_params(self, table)``: scikit-learn's idea of declared parameter
# constraints (``check_scalar``, ``_parameter_constraints``), in a few lines. Each rule calls
# the check_* function above, so every message is the one those functions give.


@dataclass(frozen=True)
class Int:
    """An integer (booleans refused) in ``[minimum, maximum]``."""

    minimum: int | None = None
    maximum: int | None = None

    def __call__(self, value, name: str) -> int:
        return check_int(value, name, minimum=self.minimum, maximum=self.maximum)


@dataclass(frozen=True)
class Float:
    """A finite real number in the range, each bound inclusive unless ``strict_*``."""

    minimum: float | None = None
    maximum: float | None = None
    strict_min: bool = False
    strict_max: bool = False

    def __call__(self, value, name: str) -> float:
        return check_real(value, name, minimum=self.minimum, maximum=self.maximum,
                          strict_min=self.strict_min, strict_max=self.strict_max)


@dataclass(frozen=True)
class Flag:
    """``True`` or ``False``, nothing else."""

    def __call__(self, value, name: str) -> bool:
        return check_bool(value, name)


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of options (strings)."""

    options: tuple

    def __call__(self, value, name: str):
        return check_choice(value, name, self.options)


@dataclass(frozen=True)
class Seed:
    """A seed (:func:`check_seed`); with ``random_state``, a NumPy ``RandomState`` too."""

    allow_none: bool = True
    random_state: bool = False

    def __call__(self, value, name: str):
        if self.random_state and isinstance(value, np.random.RandomState):
            return value
        return check_seed(value, name, allow_none=self.allow_none)


def check_params(estimator, table: dict) -> dict:
    """Check the hyperparameters of ``estimator`` declared in ``table`` (``{name: rule}``, a
    rule being one of :class:`Int`, :class:`Float`, :class:`Flag`, :class:`OneOf`,
    :class:`Seed` or any ``rule(value, name)``), in the table's order; return the checked
    values by name. The first bad one raises ``TypeError``/``ValueError`` naming it."""
    return {name: check_param(estimator, table, name) for name in table}


def check_param(estimator, table: dict, name: str):
    """Check one hyperparameter declared in ``table`` and return its checked value: for a model
    whose methods each use only some of its hyperparameters (the Ising model's ``energy``
    needs ``J`` and ``h``, not ``beta``)."""
    return table[name](getattr(estimator, name), name)


def _is_complex(x) -> bool:
    if isinstance(x, torch.Tensor):
        return x.is_complex()
    if isinstance(x, (complex, np.complexfloating)):
        return True
    return isinstance(x, np.ndarray) and np.iscomplexobj(x)


def _tensor_from_array_like(x, name: str) -> torch.Tensor:
    """A NumPy array or nested list as a CPU tensor (sharing memory where it can), refusing
    strings, ragged lists, complex values and non-numbers with a ``TypeError`` naming ``name``:
    the non-tensor half of :func:`as_tensor`."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an array or tensor of numbers, got a string {x!r}")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged nested lists, objects numpy cannot read
        raise TypeError(
            f"{name} must be an array or tensor of numbers; NumPy cannot read this "
            f"{type(x).__name__} as one array (rows of different lengths?)"
        ) from exc
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got a complex array (dtype {arr.dtype})")
    if arr.dtype.kind not in "biuf":  # objects, strings, dates, timedeltas, records
        raise TypeError(f"{name} must hold numbers (real), got dtype {arr.dtype}")
    if not arr.flags.writeable:  # e.g. np.load(mmap_mode="r"): torch cannot share it
        arr = arr.copy()  # safely, so copy it (and the warning PyTorch gives goes away)
    return torch.from_numpy(np.ascontiguousarray(arr))


def as_tensor(
    x,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    dtype: torch.dtype = torch.float32,
    device=None,
    finite: bool = True,
    min_value: float | None = None,
    max_value: float | None = None,
    detach: bool = True,
) -> torch.Tensor:
    """Convert a NumPy array, a tensor or a nested list to a tensor, checking it.

    Raises ``TypeError`` naming ``name`` for what is not an array of real numbers (strings,
    objects, ragged lists, complex values: a complex array is refused even when its imaginary
    part is zero, since a cast would drop it without a word) and ``ValueError`` naming ``name``
    for a wrong rank, an empty array, NaN/inf values (when ``finite``) or values outside
    ``[min_value, max_value]``. ``detach=False`` keeps a tensor's autograd graph (gradients
    flow through the conversion).
    """
    finite = check_bool(finite, "finite")
    if x is None:
        raise TypeError(f"{name} must be an array or tensor of numbers, got None")
    if isinstance(x, torch.Tensor):
        t = x.detach() if detach else x
        if t.device.type == "meta":
            raise ValueError(_META_MESSAGE.format(name=name))
        if t.is_complex():
            raise TypeError(f"{name} must be real, got a complex tensor (dtype {t.dtype})")
    else:
        t = _tensor_from_array_like(x, name)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if t.dim() not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")
    t = t.to(device=resolve_device(device) if device is not None else t.device, dtype=dtype)
    if finite and dtype.is_floating_point and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if min_value is not None and bool((t < min_value).any()):
        raise ValueError(f"{name} must be >= {min_value}, found {t.min().item():.4g}")
    if max_value is not None and bool((t > max_value).any()):
        raise ValueError(f"{name} must be <= {max_value}, found {t.max().item():.4g}")
    return t


_META_MESSAGE = ("{name} is a tensor on the 'meta' device, which has a shape but no values: "
                 "nothing can be computed from it (create it on 'cpu' or 'cuda')")


def as_real_array(x, name: str, *, finite: bool = True, nonnegative: bool = False,
                  positive: bool = False, min_size: int = 1, ndim=None,
                  keep_tensor: bool = False):
    """The equation and metric functions' one input check: ``x`` (a NumPy array, a tensor on
    any device, a nested list or a number) as a new float64 NumPy array, or a clear error
    naming ``name``.

    ``TypeError`` for what does not hold real numbers: ``None``, strings, objects, dates and
    times, complex values (even with a zero imaginary part); ``ValueError`` for a tensor on
    the ``meta`` device (no values), fewer than ``min_size`` entries, a rank not in ``ndim``,
    NaN or ±inf (when ``finite``) and, when ``nonnegative`` (densities, probabilities) or
    ``positive`` (what a logarithm is taken of), an entry out of range or a NaN. Booleans and
    integers are read as numbers.

    ``keep_tensor``: a floating-point tensor is checked where it is (on its device, its graph
    kept: gradients flow through) and returned as it is; other tensors become float64 tensors
    on their device. Other inputs still become NumPy arrays.
    """
    if x is None:
        raise TypeError(f"{name} must be an array or tensor of real numbers, got None")
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an array or tensor of real numbers, got a string {x!r}")
    if isinstance(x, torch.Tensor):
        if x.device.type == "meta":
            raise ValueError(_META_MESSAGE.format(name=name))
        if x.is_complex():
            raise TypeError(f"{name} must be real, got a complex tensor (dtype {x.dtype})")
        if keep_tensor:
            t = x if x.is_floating_point() else x.to(torch.float64)
            _check_values(t.detach(), name, finite, nonnegative, positive, min_size, ndim,
                          shape=tuple(t.shape))
            return t
        arr = x.detach().to("cpu", torch.float64).numpy()
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged nested lists, objects numpy cannot read
            raise TypeError(f"{name} must be an array of real numbers; NumPy cannot read this "
                            f"{type(x).__name__} as one array (rows of different lengths?)"
                            ) from exc
        if arr.dtype.kind == "c":
            raise TypeError(f"{name} must be real, got a complex array (dtype {arr.dtype})")
        if arr.dtype.kind in "mM":
            raise TypeError(f"{name} must hold real numbers, got dates or times (dtype "
                            f"{arr.dtype}): convert them to numbers first")
        if arr.dtype.kind not in "biuf":  # objects (None inside), strings, records
            raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = np.array(arr, dtype=np.float64)  # a copy: the caller's data are never modified
    _check_values(arr, name, finite, nonnegative, positive, min_size, ndim, shape=arr.shape)
    return arr


def _check_values(a, name, finite, nonnegative, positive, min_size, ndim, *, shape) -> None:
    """:func:`as_real_array`'s checks of rank, size and values, for an array or a tensor."""
    lib = torch if isinstance(a, torch.Tensor) else np
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(shape) not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {shape}")
    size = int(np.prod(shape, dtype=np.int64))
    if size < min_size:
        raise ValueError(f"{name} is empty (shape {shape})" if size == 0 else
                         f"{name} needs at least {min_size} values, got shape {shape}")
    if size == 0:
        return
    if finite and not bool(lib.isfinite(a).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    if nonnegative or positive:
        if bool(lib.isnan(a).any()):
            raise ValueError(f"{name} contains NaN values (it must be "
                             f"{'> 0' if positive else '>= 0'})")
        if positive and bool((a <= 0).any()):
            raise ValueError(f"{name} must be > 0 (its logarithm is taken), found "
                             f"{float(a.min()):.4g}")
        if bool((a < 0).any()):
            raise ValueError(f"{name} must be >= 0 (a density or a probability), found "
                             f"{float(a.min()):.4g}")


def as_numpy(x, name: str, *, ndim=None, dtype=np.float64, finite: bool = True) -> np.ndarray:
    """Like :func:`as_tensor` but returns a NumPy array (on the CPU)."""
    torch_dtype = {np.float64: torch.float64, np.float32: torch.float32}.get(dtype, torch.float64)
    return as_tensor(x, name, ndim=ndim, dtype=torch_dtype, device="cpu", finite=finite).numpy()


def check_images(x, name: str = "X", *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Images ``(N, C, H, W)`` with values in [0, 1]; returns a float tensor."""
    return as_tensor(x, name, ndim=4, dtype=dtype, device=device, min_value=0.0, max_value=1.0)


def check_binary(x, name: str, *, values=(0, 1)) -> None:
    """Raise unless every entry of tensor/array ``x`` is one of ``values``."""
    if _is_complex(x) or (not isinstance(x, torch.Tensor) and np.iscomplexobj(np.asarray(x))):
        raise TypeError(f"{name} must be real, got complex values")
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    ok = torch.zeros_like(t, dtype=torch.bool)
    for v in values:
        ok |= t == v
    if not bool(ok.all()):
        bad = t[~ok].flatten()[:3].tolist()
        raise ValueError(f"{name} must contain only the values {tuple(values)}, found e.g. {bad}")


def progress(iterable: Iterable, enabled: bool = True, **kwargs):
    """Wrap ``iterable`` in a ``tqdm.auto`` progress bar when ``enabled`` (True or False)."""
    if not check_bool(enabled, "progress"):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


class ComplexDataError(TypeError, ValueError):
    """Complex values where real numbers are expected.

    Both a ``TypeError`` (the course's error for a value of the wrong kind) and a
    ``ValueError`` (scikit-learn's "Complex data not supported"), so that either ``except``
    clause catches it.
    """


def check_input(X, name: str = "X", *, min_samples: int = 1):
    """The estimators' first look at their data, with scikit-learn's wording, before
    :func:`course_lib._core.as_tensor` checks rank, dtype, NaN/inf and range.

    Refuses sparse matrices (``TypeError``: densify them), complex values
    (:class:`ComplexDataError`), an array with no rows or, in 2-D, no columns, and fewer than
    ``min_samples`` rows (``ValueError``, "Found array with 0 sample(s) (shape=...) while a
    minimum of 1 is required."); reads object arrays of numbers as floats (a ``TypeError``
    for anything else). Returns ``X``, or the float array read from an object array.
    """
    import scipy.sparse

    if scipy.sparse.issparse(X):
        raise TypeError(
            f"{name}: sparse input is not supported (sparse data were passed, but dense data "
            f"are required); densify it with {name}.toarray() if it fits in memory"
        )
    if isinstance(X, torch.Tensor):
        complex_, shape = X.is_complex(), tuple(X.shape)
    else:
        if isinstance(X, (str, bytes)):
            return X  # as_tensor names the problem
        try:
            arr = np.asarray(X)
        except Exception:  # ragged lists etc.: as_tensor names the problem
            return X
        if arr.dtype.kind == "O":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{name} must hold real numbers: {exc}") from exc
            X = arr
        complex_, shape = arr.dtype.kind == "c", arr.shape
    if complex_:
        raise ComplexDataError(f"Complex data not supported: {name} must be real, got complex "
                               "values")
    if len(shape) == 2 and shape[1] == 0:
        raise ValueError(f"{name}: Found array with 0 feature(s) (shape={shape}) while a "
                         "minimum of 1 is required.")
    if len(shape) >= 1 and shape[0] < min_samples:
        raise ValueError(f"{name}: Found array with {shape[0]} sample(s) (shape={shape}) while "
                         f"a minimum of {min_samples} is required.")
    return X


def dense_input_tags(tags, *, two_d_array: bool, three_d_array: bool = False):
    """scikit-learn estimator tags shared by the course's estimators: dense real input (no
    sparse matrices, no NaN), ``y`` optional; ``two_d_array``/``three_d_array`` say whether
    ``(N, D)`` tables or ``(N, H, W)`` stacks are among the inputs (images ``(N, C, H, W)``
    have no tag of their own). Returns ``tags``, changed in place."""
    tags.input_tags.two_d_array = two_d_array
    tags.input_tags.three_d_array = three_d_array
    tags.input_tags.sparse = False
    tags.input_tags.allow_nan = False
    tags.target_tags.required = False
    return tags


def cpu_name() -> str:
    """The processor's model name (Linux: ``/proc/cpuinfo``; elsewhere what ``platform``
    knows), for the records that say what a result was measured on: results files, shipped
    models, the shipped classifier."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"

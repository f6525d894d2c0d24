"""CIFAR-10 on disk: where it is, whether it is the official release, and its arrays.

Resolution order for the directory that holds ``cifar-10-batches-py/``: ``--data-dir``, then
``$REPRO_DATA_DIR``, then the per-user cache (``$XDG_CACHE_HOME/repro``, else
``~/.cache/repro``). A directory given by ``--data-dir`` or ``$REPRO_DATA_DIR`` must hold
the files: a typo is an error naming it, never a fall-back to another copy. When the cache
lacks them, they are downloaded into it through torchvision (which checks the archive's MD5);
offline, a :class:`DataError` says where we looked and how to provide the data.

A readable copy that is not byte-identical to the official release (the lossy offline JPEG
re-encoding, for example) is accepted, with a warning, and every run records that it was not
official together with a fingerprint of the arrays it used.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


class DataError(Exception):
    """The data set is missing, unreadable or malformed; the message says what to do."""


@dataclass(frozen=True)
class Cifar10:
    """The whole data set as uint8 arrays in NCHW layout, with where it came from."""

    train_images: np.ndarray  # (N, 3, 32, 32) uint8
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray
    test_labels: np.ndarray
    path: Path
    official: bool
    fingerprint: str  # sha256 over all four arrays

    def describe(self) -> str:
        kind = "official release" if self.official else "NOT the official release"
        return (
            f"CIFAR-10 from {self.path} ({kind}; {len(self.train_labels)} train, "
            f"{len(self.test_labels)} test; sha256 {self.fingerprint[:12]})"
        )


def candidate_dirs(data_dir: str | Path | None) -> list[tuple[str, Path]]:
    """Where we look, in order, each with the reason it is on the list."""
    out = []
    if data_dir is not None:
        out.append(("--data-dir", Path(data_dir)))
    if env := os.environ.get("REPRO_DATA_DIR"):
        out.append(("$REPRO_DATA_DIR", Path(env).expanduser()))  # set in quotes, as "~/cifar"
    out.append(("per-user cache", cache_dir()))
    return out


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "repro"


def locate(data_dir: str | Path | None = None, *, download: bool = True) -> Path:
    """The ``cifar-10-batches-py`` directory to use; download into the cache if needed."""
    looked = []
    for reason, root in candidate_dirs(data_dir):
        for folder in (root / FOLDER, root):
            if (folder / TEST_FILE).exists() or (folder / TRAIN_FILES[0]).exists():
                return folder
        if reason != "per-user cache":
            raise DataError(_not_there(reason, root))
        looked.append(f"  {reason}: {root}")
    if download:
        target = cache_dir()
        try:
            _download(target)
        except OSError as exc:  # URLError and socket errors are OSErrors
            reason = f"download failed: {exc}"
        else:
            return target / FOLDER
    else:
        reason = "downloading was not allowed"
    raise DataError(
        "CIFAR-10 not found. Looked for cifar-10-batches-py/ in:\n"
        + "\n".join(looked)
        + f"\nand {reason}.\n"
        "Provide it in one of these ways, then run the same command again:\n"
        f"  - on a machine with internet access it is downloaded automatically;\n"
        f"  - download {OFFICIAL_URL}, extract it into a directory and pass\n"
        "    --data-dir DIR (or set REPRO_DATA_DIR=DIR);\n"
        "  - any copy in the official python layout works (data_batch_1..5, test_batch);\n"
        "    a copy that is not the official release is used with a warning and marked so."
    )


def _not_there(reason: str, root: Path) -> str:
    """A location the user gave (--data-dir or $REPRO_DATA_DIR) without the data: an error, never
    a silent fall-back to another copy (a typo would train on other data)."""
    flag = reason == "--data-dir"
    given = f"--data-dir {root}" if flag else f"REPRO_DATA_DIR={root}"
    if (archive := _unextracted(root)) is not None:
        # The release as downloaded: the python layout is inside it.
        into = root if root.is_dir() else root.parent
        return (
            f"{given}: {archive} is the CIFAR-10 archive, not yet extracted; extract it with "
            f"`tar xzf {archive} -C {into}`, then give {into} (which will hold {FOLDER}/) "
            f"{'to --data-dir' if flag else 'as REPRO_DATA_DIR'}."
        )
    if not root.exists():
        what = "does not exist"
    elif not root.is_dir():
        what = "is a file, not a directory"
    else:
        what = f"holds no {FOLDER}/ (nor its files)"
    instead = "leave out --data-dir" if flag else "unset REPRO_DATA_DIR"
    return (
        f"{given}: {root} {what}. Give the directory that holds {FOLDER}/ (data_batch_1..5, "
        f"test_batch), or {instead} to use the per-user cache ({cache_dir()}, downloaded "
        "there when online)."
    )


ARCHIVE = OFFICIAL_URL.rsplit("/", 1)[1]  # cifar-10-python.tar.gz


def _unextracted(root: Path) -> Path | None:
    """The release's archive where the data was looked for: ``root`` itself, or in it."""
    if root.is_file() and root.name.endswith((".tar.gz", ".tgz")):
        return root
    return root / ARCHIVE if (root / ARCHIVE).is_file() else None


def _download(root: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    root.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        download_and_extract_archive(
            OFFICIAL_URL, download_root=str(root), md5="c58f30108f718f92721af3b95e74349a"
        )
    finally:
        socket.setdefaulttimeout(previous)


# The official release's batch files and their MD5s, as torchvision's CIFAR10 lists them
# (tests/test_data.py checks that they agree). Written out here so that loading the data
# does not import torchvision, which slows the start of every process that trains.
OFFICIAL_MD5S = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}


def _official_md5s() -> dict[str, str]:
    return OFFICIAL_MD5S


def is_official(folder: Path) -> bool:
    """True when every batch file has the MD5 of the official release."""
    for name, md5 in _official_md5s().items():
        digest = hashlib.md5((folder / name).read_bytes()).hexdigest()
        if digest != md5:
            return False
    return True


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only: a batch file cannot run code."""

    ALLOWED: frozenset[tuple[str, str]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("_codecs", "encode"),
            # how protocol 2 writes an empty array's bytes (an empty batch is then refused
            # by the checks, with its name, instead of as unreadable)
            ("__builtin__", "bytes"),
            ("builtins", "bytes"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _remedy(folder: Path, mend: str) -> str:
    """What to do about a partial or damaged copy. The cache is repro's: deleted, it is
    downloaded again. A copy given with --data-dir or $REPRO_DATA_DIR is the user's (the
    offline JPEG copy, say): deleting it downloads nothing, since a given directory never
    falls back to the cache, so the copy is mended or another one given."""
    if folder.resolve().is_relative_to(cache_dir().resolve()):
        return (f"Delete {folder} and run the command again: repro downloads CIFAR-10 into "
                "its cache afresh (online; offline, see --data-dir).")  # fmt: skip
    return f"{mend} (or write the whole copy again), or give another complete copy with --data-dir."


def _missing(path: Path) -> str:
    return (f"{path} is missing: the directory holds part of CIFAR-10 only. "
            + _remedy(path.parent, "Copy the complete set there"))  # fmt: skip


def _a_directory(path: Path) -> str:
    return (f"{path} is a directory, where CIFAR-10 keeps that batch. Put the batch file "
            "there, or give a complete copy with --data-dir.")  # fmt: skip


def _unreadable_file(path: Path, exc: OSError) -> str:
    return (f"{path} cannot be read ({exc.strerror or exc}); make it readable to this user, "
            "or give another copy with --data-dir.")  # fmt: skip


def _not_a_batch(path: Path, why: str) -> str:
    return (
        f"{path} is not a readable CIFAR-10 batch ({why}). The file is corrupt or "
        "truncated. " + _remedy(path.parent, "Copy that file again from its source")
    )


def check_complete(folder: Path) -> int | None:
    """Every batch file of ``folder`` is there and would load: what a parent whose workers
    load the data checks first, so that a bad copy is one error rather than every worker
    failing. Each batch is read and checked as loading reads it (so a missing, cut or wrong
    one, dtype, shape or labels, gets the loader's own error) and dropped at once, one at a
    time; nothing is concatenated or fingerprinted. That costs about what walking the
    pickle's opcodes in Python did, which caught cuts only (the offline JPEG copy's six files
    on the 2-core development VM, 2026-11-27: 0.10 s against 0.13 s when idle, 0.34-0.36 s
    against 0.32-0.34 s when loaded by other jobs; at most 60 MB of memory against 30 MB).
    Returns how many training images the batches hold (what a --subset is checked against),
    None where one was not read."""
    train_images: int | None = 0
    for name in (*TRAIN_FILES, TEST_FILE):
        path = folder / name
        if path.exists() and not path.is_dir() and not path.is_file():
            # A named pipe or device: opening it here could block the parent for good; the
            # worker that reads it can be stopped while it waits (tests/test_signals.py).
            train_images = None if name in TRAIN_FILES else train_images
            continue
        labels = _read_batch(path)[1]
        if name in TRAIN_FILES and train_images is not None:
            train_images += len(labels)
    return train_images


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file, checked: uint8 pixels in 3072-byte rows, one integer label 0..9 each,
    at least one image. A copy that breaks any of these is refused with the file's name
    rather than converted (float pixels would wrap around into other images)."""
    if not path.exists():
        raise DataError(_missing(path))
    if path.is_dir():
        raise DataError(_a_directory(path))
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise DataError(_unreadable_file(path, exc)) from None
    try:
        raw = _ArraysOnly(io.BytesIO(content), encoding="bytes").load()
        batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
        data = np.asarray(batch["data"])
        labels = np.asarray(batch["labels"])
    # Any Exception, not a list: a byte flipped on disk makes the unpickler raise nearly
    # anything (LookupError for a mangled codec name, MemoryError or OverflowError for a
    # mangled length, IndexError, numpy's SystemError), and each was a bare traceback.
    except Exception as exc:
        raise DataError(_not_a_batch(path, f"{type(exc).__name__}: {exc}")) from None
    if data.dtype != np.uint8:
        raise DataError(
            f"{path} holds pixels of type {data.dtype}; CIFAR-10 batches hold uint8 (0..255). "
            "Write the copy with uint8 pixels (the official layout) rather than converting here."
        )
    # data.ndim first: a bare number where the rows belong has no len() (a traceback).
    if labels.ndim == 1 and (len(labels) == 0 or (data.ndim > 0 and len(data) == 0)):
        raise DataError(f"{path} holds no images: the copy is incomplete.")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{path} has labels of type {labels.dtype} and shape {labels.shape}; a CIFAR-10 "
            "batch has a list of integer class indices 0..9."
        )
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(
            f"{path} has data of shape {data.shape} and {len(labels)} labels; a CIFAR-10 batch "
            "has one 3072-byte row (32x32, red then green then blue) per label."
        )
    if labels.min() < 0 or labels.max() >= len(CLASSES):
        raise DataError(f"{path} has labels outside 0..9: it is not CIFAR-10.")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def fingerprint(*arrays: np.ndarray) -> str:
    """sha256 over the arrays' bytes, shapes and dtypes: identifies exactly what a run used."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


SHOWN = 12  # characters of a fingerprint shown to people: its prefix names a data set


def shown_apart(*fingerprints: str) -> list[str]:
    """``fingerprints`` as shown side by side: their first 12 characters, or as many more as
    it takes for different ones to differ. Two data sets whose fingerprints share the first
    12 would otherwise read as one, and a refusal to mix them would show no difference."""
    distinct = set(fingerprints)
    n = SHOWN
    while len({f[:n] for f in distinct}) < len(distinct):
        n += 1
    return [f[:n] for f in fingerprints]


def load(folder: Path) -> Cifar10:
    """Read and check all batches in ``folder`` (a ``cifar-10-batches-py`` directory)."""
    train = [_read_batch(folder / name) for name in TRAIN_FILES]
    test_images, test_labels = _read_batch(folder / TEST_FILE)
    train_images = np.concatenate([x for x, _ in train])
    train_labels = np.concatenate([y for _, y in train])
    return Cifar10(
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        path=folder,
        official=is_official(folder),
        fingerprint=fingerprint(train_images, train_labels, test_images, test_labels),
    )


@cache
def load_cached(folder: Path) -> Cifar10:
    """One load per process: a study's runs share the arrays."""
    return load(folder)


def non_official_warning(data: Cifar10) -> str:
    return (
        f"WARNING: the CIFAR-10 copy in {data.path} is not the official release (its files' "
        "checksums differ). Runs are marked as such and the report flags them; accuracies on "
        "a re-encoded copy can be worse than on the official data."
    )

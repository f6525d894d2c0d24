"""What a repro killed halfway (SIGKILL, a lost machine) leaves behind, told apart from what
a live repro is using (imports nothing heavy: harness.outputs uses it before any work).

Every scratch file or folder repro makes where no run's lock covers it carries its maker in
its name, ``<pid>@<host>+`` (:func:`tag`): a probe of a folder, a file written atomically, an
export's or import's scratch folder. A later process on the same host asks the kernel
whether that pid still runs (``os.kill(pid, 0)``); only one whose maker is gone is its own
and dead, and removed. One made on another host (a store shared over NFS), or named before
makers were recorded, cannot be proven dead: callers name it, or remove it only where no
writer could still be at it (a file older than any write takes, :data:`WRITE_AGE_S`).
A pid reused by another process reads alive, so the doubt always keeps, never removes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Older than any write in progress: an atomic write or a probe takes seconds at most.
WRITE_AGE_S = 60.0
# The host as host() writes it holds no "+", which ends the tag, nor "/".
_TAG = re.compile(r"(?P<pid>\d+)@(?P<host>[^+/]+)\+")
PROBE = ".repro-probe-"
# An export copies the runs' files aside, an import unpacks the archive, into these.
EXPORT_SCRATCH, IMPORT_SCRATCH = "repro-export-", "repro-import-"
SCRATCH = (EXPORT_SCRATCH, IMPORT_SCRATCH)
PARTIAL = ".partial"  # the end of an export's archive until it is whole (partial_archive)


def host() -> str:
    """This host's name as a tag writes it, with the PID namespace this process numbers its
    pids in. The name is percent-encoded wherever it is not letters, digits, dots, dashes or
    underscores: the kernel takes any bytes for a host name, and a "/" in one made every
    write of the store fail (the temporary's name led into a folder that is not there), while
    a "+" ended the tag early, so that no leftover of this host was ever told its own. The
    namespace: containers that share the host's name (Kubernetes' hostNetwork pods, docker
    --uts=host) each number their processes apart, so a live writer's pid in one is no
    process in another, where a sweep took it for dead. Two hosts never read as one."""
    name = urllib.parse.quote(socket.gethostname(), safe="").replace("~", "%7E") or "%"
    space = _pid_namespace()
    return f"{name}~{space}" if space else name


def _pid_namespace() -> str:
    """The inode of this process's PID namespace, or "" where /proc does not give it."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def tag() -> str:
    """This process's mark, for the name of something it makes and removes itself."""
    return f"{os.getpid()}@{host()}+"


@dataclass(frozen=True)
class Maker:
    pid: int
    host: str

    def gone(self) -> bool | None:
        """True when the maker provably no longer runs, False while it (or a process that
        took its pid) does, None where it cannot be told (another host)."""
        if self.host != host():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's process: alive
            return False
        except (OverflowError, ValueError):  # no pid the kernel could give
            return None
        return False


def maker(name: str) -> Maker | None:
    """Who made the file or folder of this name, or None where its name does not say."""
    found = _TAG.search(name)
    return None if found is None else Maker(int(found["pid"]), found["host"])


def _gone(path: Path) -> bool | None:
    """Whether ``path``'s maker is provably gone (True), runs (False), or cannot be told
    (None: another host, or a name that does not say)."""
    who = maker(path.name)
    return who.gone() if who is not None else None


def dead(path: Path, *, by_age: bool, now: float | None = None) -> bool:
    """Whether ``path`` was left by a process that is gone: its maker provably is, or, with
    ``by_age``, its maker cannot be told and it is older than any write takes (for small
    files only: an export's copy of a checkpoint can take longer). ``now``: the time on the
    file system's own clock, where the caller knows it (store.run_lock); this machine's
    otherwise, which on a store shared over NFS may run minutes ahead of the server that
    stamps the files, and make another host's write in progress read old."""
    if (gone := _gone(path)) is not None:
        return gone
    if not by_age:
        return False
    try:
        return (time.time() if now is None else now) - path.lstat().st_mtime > WRITE_AGE_S
    except FileNotFoundError:
        return False


@dataclass
class Swept:
    """What a sweep removed, and what it found but could not prove dead (kept, and named)."""

    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)  # dead, but this user may not remove it
    what: str = "scratch folder"  # what was swept, for the notes

    def notes(self) -> list[str]:
        out = []
        if self.removed:
            out.append(f"removed {self._count(self.removed)} left by killed repro processes: "
                       f"{_names(self.removed)}")  # fmt: skip
        if self.kept:
            out.append(f"kept {self._count(self.kept)} of repro's that may still be in use "
                       "(made on another host, or by a repro that did not record its "
                       f"process): {_names(self.kept)}; remove them by hand once no repro "
                       "export or import runs there")  # fmt: skip
        if self.failed:
            out.append(f"could not remove {self._count(self.failed)} left by killed repro "
                       f"processes (another user's, or read-only): {_names(self.failed)}; "
                       "remove them by hand")  # fmt: skip
        return out

    def _count(self, paths: list[Path]) -> str:
        return f"1 {self.what}" if len(paths) == 1 else f"{len(paths)} {self.what}s"

    def sweep(self, path: Path) -> None:
        """Remove ``path`` (a file or a folder) where its maker is gone; keep and name it
        where that cannot be told; leave it where its maker (or a process of its pid) runs."""
        gone = _gone(path)
        if gone:
            self.remove(path)
        elif gone is None:  # its maker cannot be asked: a long export may still be at it
            self.kept.append(path)

    def remove(self, path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        (self.failed if os.path.lexists(path) else self.removed).append(path)


# Names listed in one note: a machine that ran an older repro for long can hold dozens of
# unmarked scratch folders, and every export and import says so until they are removed.
MOST_NAMED = 5


def _names(paths: list[Path]) -> str:
    shown = ", ".join(str(p) for p in paths[:MOST_NAMED])
    if len(paths) <= MOST_NAMED:
        return shown
    where = ", ".join(sorted({str(p.parent) for p in paths[MOST_NAMED:]}))
    return f"{shown} and {len(paths) - MOST_NAMED} more in {where}"


@contextlib.contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    """A scratch folder in the temp dir for the duration, named with its maker: one a kill
    leaves is removed by the next export or import (:func:`sweep_scratch`). Copies, not a
    stream, because both must read every file twice: an export writes the manifest, every
    file's checksum, first, so what it packs must be what it summed though a run still
    training replaces its files meanwhile; an import checks every file against the
    manifest before it touches the store."""
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{tag()}"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sweep_scratch() -> Swept:
    """Remove the export and import scratch folders in the temp dir whose maker is gone; name
    those it cannot tell. They hold copies of checkpoints (gigabytes for a big net), which a
    killed export or import never removes. One of a live process is never touched."""
    swept = Swept()
    try:
        entries = sorted(Path(tempfile.gettempdir()).iterdir())
    except OSError:
        return swept
    for path in entries:
        if path.name.startswith(SCRATCH) and path.is_dir() and not path.is_symlink():
            swept.sweep(path)
    return swept


def partial_archive(out: Path) -> Path:
    """The name an export writes ``out`` under until it is whole, named with its maker so that
    one a kill left is removed by the next export to that folder (sweep_partial_archives)."""
    return out.with_name(f".{out.name}.{tag()}{PARTIAL}")


def sweep_partial_archives(out: Path) -> Swept:
    """Remove the partial archives beside ``out`` whose maker is gone (a whole store's runs,
    checkpoints included, each); name those it cannot tell. One a repro before makers were
    recorded left for ``out`` itself (``.<out>.partial``) was replaced by the next export to
    ``out``: removed now instead, as no export writes that name any more."""
    swept = Swept(what="partial archive")
    try:
        entries = sorted(out.parent.glob(f".*{PARTIAL}"))
    except OSError:
        return swept
    for path in entries:
        if not path.is_file() or path.is_symlink():
            continue
        if maker(path.name) is not None:
            swept.sweep(path)
        elif path.name == f".{out.name}{PARTIAL}":
            swept.remove(path)
    return swept


def sweep_probes(folder: Path) -> list[Path]:
    """Remove the empty probe files (harness.outputs.probe) in ``folder`` that a process
    killed between making and removing one left; a probe lasts microseconds, so one older
    than WRITE_AGE_S whose maker cannot be told is dead too."""
    removed = []
    try:
        entries = list(folder.glob(f"{PROBE}*"))
    except OSError:
        return removed
    for path in entries:
        try:
            empty = path.is_file() and not path.is_symlink() and path.stat().st_size == 0
            if empty and dead(path, by_age=True):
                path.unlink()
                removed.append(path)
        except OSError:  # gone meanwhile, or not ours to remove
            continue
    return removed

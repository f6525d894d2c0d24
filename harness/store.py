"""The run store: one directory per run, plain files written atomically, one lock per run.

    <results>/<study>/<experiment>/seed-<k>/          a faithful run
    <results>/<study>/<experiment>/seed-<k>~<label>/  a run with overrides (--smoke, --epochs...)

Each directory holds ``config.json`` (the resolved config and its hash), ``environment.json``
(provenance of the latest session), ``metrics.jsonl`` (one line per finished epoch),
``checkpoint.pt`` (everything needed to resume), ``progress.json`` (while running),
``summary.json`` (once the run has ended, however it ended), ``error.txt`` (when it failed),
and ``lock``. Every file is written to a temporary name and renamed, so a reader, a second
process or an rsync never sees half a file, and a SIGKILL leaves the previous version intact.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.outputs import probe as _probe

CONFIG = "config.json"
ENVIRONMENT = "environment.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
PROGRESS = "progress.json"
SUMMARY = "summary.json"
ERROR = "error.txt"
LOCK = "lock"
JOB = "job.json"  # written when a scheduler accepts the run: job id, executor, log paths
WORKER_LOG = "worker.log"
SUPERSEDED = ".superseded"
# A released checkpoint evaluated on one copy of the data (`repro evaluate`), in
# <results>/<study>/<checkpoint>/data-<fingerprint[:12]>/; see harness.evaluate.
EVALUATION = "evaluation.json"

# How a run ended (summary.json "status"); "interrupted" runs (stopped by a signal) and
# "paused" ones (stopped by a time budget) resume, the others are final except "failed",
# which is retried.
COMPLETE, DIVERGED, FAILED, INTERRUPTED = "complete", "diverged", "failed", "interrupted"
PAUSED = "paused"
STATUSES = (COMPLETE, DIVERGED, FAILED, INTERRUPTED, PAUSED)
# Not a way to end: a run whose files cannot be read back (a torn line, garbage, a summary of
# the wrong shape) or disagree (check_ended). Report and status list it and go on; `repro run`
# keeps the damaged file aside and rebuilds it from the checkpoint.
DAMAGED = "damaged"
FINAL = (COMPLETE, DIVERGED)


class StoreUnusable(Exception):
    """The results directory cannot be created or written to."""


def ensure_writable(results: Path) -> None:
    """Fail early, with what to do, when the store cannot hold runs (a path below a regular
    file, a read-only file system, no permission) rather than in the middle of a run.
    Nothing is created: the probe goes into the nearest directory that exists."""
    existing, exc = _probe(results)
    if exc is not None:
        raise StoreUnusable(
            f"{results} cannot hold the run store ({exc.strerror or exc}: {existing}): give "
            "--results a directory you can write to"
        )


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    _atomic_write(path, lambda f: f.write(text.encode()))


def write_jsonl(path: Path, rows: list[dict]) -> None:
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    _atomic_write(path, lambda f: f.write(text.encode()))


def write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def save_torch(path: Path, obj: Any) -> None:
    _atomic_write(path, lambda f: torch.save(obj, f))


def read_json(path: Path) -> Any | None:
    """The parsed file, or None when it is absent or unreadable (never half-written)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


class DamagedFile(Exception):
    """A store file that exists but cannot be used; the message names it and what is wrong."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


def read_jsonl(path: Path) -> list[dict]:
    """Every row of a JSON-lines file ([] when absent); DamagedFile for any bad line."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedFile(path, f"cannot be read ({exc})") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DamagedFile(path, f"line {number} is not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("epoch"), int):
            raise DamagedFile(path, f"line {number} is not an epoch record")
        rows.append(row)
    return rows


def read_summary(run_dir: Path) -> dict | None:
    """The run's summary (None when there is none yet); DamagedFile when it cannot be used."""
    path = run_dir / SUMMARY
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedFile(path, f"is not readable JSON ({exc})") from None
    if not isinstance(summary, dict):
        raise DamagedFile(path, f"holds a {type(summary).__name__}, not a summary")
    if summary.get("status") not in STATUSES:
        raise DamagedFile(path, f"has no valid status (given: {summary.get('status')!r})")
    for key in ("epochs_done", "epochs_total"):
        if summary.get(key) is not None and not isinstance(summary[key], int):
            raise DamagedFile(path, f"{key} is {summary[key]!r}, not a number of epochs")
    return summary


def read_config(run_dir: Path) -> dict | None:
    """The run's config.json (None when absent); DamagedFile when unusable."""
    path = run_dir / CONFIG
    if not path.exists():
        return None
    config = read_json(path)
    if not isinstance(config, dict) or not isinstance(config.get("hash"), str):
        raise DamagedFile(path, "is not a run config with a hash")
    return config


def set_aside(path: Path, why: str = "unreadable") -> Path:
    """Keep a file the run cannot use beside it under another name; never delete it."""
    target = path.with_name(f"{path.name}.{why}-{time.strftime('%Y%m%d-%H%M%S')}")
    path.rename(target)
    return target


class LockHeld(Exception):
    """Another process is training this run right now."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run's lock for the duration; raise LockHeld if another process has it.

    ``flock`` is released by the kernel when its holder dies, even by SIGKILL, so a crashed
    run never leaves a stale lock behind.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise LockHeld(holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_locked(run_dir: Path) -> bool:
    path = run_dir / LOCK
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def supersede(run_dir: Path, reason: str) -> Path:
    """Move a run directory aside (never delete results); return where it went."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = run_dir.parent / SUPERSEDED / f"{run_dir.name}-{stamp}"
    n = 1
    while target.exists():  # two in the same second: moving into the first would nest them
        n += 1
        target = run_dir.parent / SUPERSEDED / f"{run_dir.name}-{stamp}-{n}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run_dir), str(target))
    write_text(target / "SUPERSEDED", reason + "\n")
    return target


@dataclass(frozen=True)
class RunState:
    """What the store says about one run directory."""

    status: str  # absent | pending | running | interrupted | complete | diverged | failed
    epochs_done: int = 0
    config_hash: str | None = None
    detail: str = ""


def summary_status(run_dir: Path) -> str | None:
    try:
        summary = read_summary(run_dir)
    except DamagedFile:
        return DAMAGED
    return summary.get("status") if summary else None


def recorded_epochs(run_dir: Path) -> int:
    """Finished epochs in metrics.jsonl; a damaged file counts as none (the checkpoint still
    holds the history, and `repro run` rebuilds the file from it)."""
    try:
        return len(read_jsonl(run_dir / METRICS))
    except DamagedFile:
        return 0


def mark_failed(run_dir: Path, error: str) -> None:
    """Record a run as failed when it died without saying so itself (killed, node lost)."""
    _mark(run_dir, {"status": FAILED, "error": error})


def mark_interrupted(run_dir: Path, reason: str) -> None:
    """Record a run as interrupted when it was stopped before it could say so itself (while
    starting up, or killed after a stop request). Its checkpoint and metrics stay: it resumes.
    """
    _mark(run_dir, {"status": INTERRUPTED, "error": None, "stop_reason": reason})


def _mark(run_dir: Path, fields: dict) -> None:
    """Write how a run ended over its summary; an unreadable summary is kept aside first."""
    try:
        summary = read_summary(run_dir) or {}
    except DamagedFile as damaged:
        summary = {}
        set_aside(damaged.path)
    write_json(run_dir / SUMMARY, {**summary, **fields, "epochs_done": recorded_epochs(run_dir)})


def check_ended(run_dir: Path, summary: dict, rows: list[dict]) -> None:
    """DamagedFile where an ended run's readable files disagree, since such a run would count:
    a complete one has all its epochs, and the curves hold exactly the epochs its summary
    says (a summary copied without its curves, edited, or left from another attempt)."""
    status = summary["status"]
    if status not in FINAL:
        return
    done, total = summary.get("epochs_done"), summary.get("epochs_total")
    if status == COMPLETE and (done is None or done != total):
        raise DamagedFile(run_dir / SUMMARY, f"says complete after {done} of {total} epochs")
    if not (run_dir / METRICS).exists():
        raise DamagedFile(run_dir / METRICS, f"is missing; the summary says {status} after "
                                             f"{done} epochs")  # fmt: skip
    got = [r["epoch"] for r in rows]
    if got != list(range(1, (done or 0) + 1)):
        span = f"{got[0]}..{got[-1]}" if got else "none"
        raise DamagedFile(run_dir / METRICS, f"holds {len(got)} epochs ({span}), not the "
                                             f"{done} its summary says")  # fmt: skip


def inspect(run_dir: Path) -> RunState:
    try:
        return _inspect(run_dir)
    except DamagedFile as damaged:
        config = read_json(run_dir / CONFIG)
        digest = config.get("hash") if isinstance(config, dict) else None
        if is_locked(run_dir):  # mid-write by its trainer is not damage
            return RunState("running", 0, digest, "")
        return RunState(DAMAGED, 0, digest, str(damaged))


def _inspect(run_dir: Path) -> RunState:
    config = read_config(run_dir)
    summary = read_summary(run_dir)
    if config is None:
        if summary is not None:  # a job that died before it started training
            return RunState(summary["status"], 0, None, summary.get("error") or "")
        job = read_json(run_dir / JOB)
        if job is not None:
            return RunState("queued", 0, None, f"job {job.get('job_id')}")
        return RunState("absent")
    config_hash = config.get("hash")
    progress = read_json(run_dir / PROGRESS) or {}
    rows = read_jsonl(run_dir / METRICS)
    epochs = len(rows)
    if is_locked(run_dir):
        return RunState(
            "running", progress.get("epoch", epochs), config_hash, progress.get("host", "")
        )
    if summary is not None:
        check_ended(run_dir, summary, rows)
        detail = summary.get("error", "") if summary["status"] == FAILED else ""
        return RunState(summary["status"], summary.get("epochs_done", epochs), config_hash, detail)
    if (run_dir / CHECKPOINT).exists() or epochs:
        return RunState(INTERRUPTED, epochs, config_hash, "killed or stopped before the end")
    return RunState("pending", 0, config_hash)

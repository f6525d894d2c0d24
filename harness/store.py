"""The run store: one directory per run, plain files written atomically, one lock per run.

    <results>/<study>/<experiment>/seed-<k>/          a faithful run
    <results>/<study>/<experiment>/seed-<k>~<label>/  a run with overrides (--smoke, --epochs...)

Each directory holds ``config.json`` (the resolved config and its hash), ``environment.json``
(provenance of the latest session), ``metrics.jsonl`` (one line per finished epoch, each
with its digest: harness.epoch_digest),
``checkpoint.pt`` (everything needed to resume), ``progress.json`` (while running),
``summary.json`` (once the run has ended, however it ended), ``error.txt`` (when it failed;
a retry keeps it aside, set_aside, as ``error.txt.earlier-failure-<time>``), and ``lock``;
``SUPERSEDING`` only while its files are being moved aside one by one (supersede_files).
Every file is written to a temporary name and renamed, so a reader, a second process or an
rsync never sees half a file, and a SIGKILL leaves the previous version intact (and the
temporary, named with its writer's pid and host, for the next holder of the run's lock to
sweep: sweep_temporaries, harness.leftovers).
A run that adopted the complete training of a twin in another study (harness.twins) holds a
copy of the twin's files, its summary naming the run that trained (``shared_with``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from harness import epoch_digest
from harness.leftovers import dead, tag
from harness.outputs import probe as _probe
from harness.placement import misplaced

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
SUPERSEDED_NOTE = "SUPERSEDED"  # in a run moved to .superseded/: why it was moved
SUPERSEDING = "SUPERSEDING"  # in a run's folder while its files move aside one by one
# In a run's folder while a twin's copy is checked there (harness.twins.adopt), under the lock.
ADOPTING = ".adopting"
# A released checkpoint evaluated on one copy of the data (`repro evaluate`), in
# <results>/<study>/<checkpoint>/data-<fingerprint[:12]>/; see harness.evaluate.
EVALUATION = "evaluation.json"

# How a run ended (summary.json "status"); "interrupted" runs (stopped by a signal) and
# "paused" ones (stopped by a time budget) resume, the others are final except "failed",
# which is retried.
COMPLETE, DIVERGED, FAILED, INTERRUPTED = "complete", "diverged", "failed", "interrupted"
PAUSED = "paused"
STATUSES = (COMPLETE, DIVERGED, FAILED, INTERRUPTED, PAUSED)
# Not a way to end: a run whose files cannot be read back (a torn line, garbage, a summary or
# curve row of the wrong shape or types: SUMMARY_FIELDS, EPOCH_FIELDS; a link that leads
# nowhere), disagree (check_ended, check_order), or lack the config of a run that trained
# (_missing_config). Report and status list it and go on; `repro run` keeps the damaged
# file aside and rebuilds it from the checkpoint (runner._recover).
DAMAGED = "damaged"
# Not a way to end either: a run whose config or summary records another study, experiment,
# seed or label than the folder it lies in (harness.placement): a copy, never counted there.
# `repro run` moves it aside whole, then adopts a complete twin where one may be adopted,
# else trains the run; `repro import` refuses it.
MISPLACED = "misplaced"
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


# The errors after which no write to the store can succeed until the user acts: a full disk
# or quota, and a folder this user may not write (read-only, another user's).
FULL = (errno.ENOSPC, errno.EDQUOT)
DENIED = (errno.EROFS, errno.EACCES, errno.EPERM)


class CannotWrite(OSError):
    """A write to the store that cannot succeed (FULL, DENIED). Every file of the store is
    written whole or not at all (_atomic_write), so what is there stays as it was: the
    command stops, saying what and what to do, rather than writing a failure record that
    could not be written either (that was a traceback)."""

    def __init__(self, path: Path, cause: OSError):
        super().__init__(cause.errno, cause.strerror)
        self.path = path

    def __str__(self) -> str:
        if self.errno in FULL:
            what = (f"no space left to write {self.path} ({self.strerror}): free space on "
                    "its disk (or give --results a store on another)")  # fmt: skip
        else:
            what = (f"cannot write {self.path} ({self.strerror}): make its folder writable "
                    "to this user (or give --results a store you can write to)")  # fmt: skip
        return (f"{what}, then run the same command again; nothing already written was "
                "lost, and a run resumes from its last complete checkpoint")  # fmt: skip


class CannotRead(OSError):
    """A folder of the store that cannot be listed (another user's, or its permissions
    changed): its runs cannot be read, and no command may go on as if they were not there
    (status would call them pending, run train them again, report judge without them). The
    command stops, saying which folder and what to do; that was a traceback."""

    def __init__(self, path: Path, cause: OSError):
        super().__init__(cause.errno, cause.strerror)
        self.path = path

    def __str__(self) -> str:
        return (f"cannot read {self.path} ({self.strerror}): make it readable to this user "
                "(or give --results a store you can read), then run the same command "
                "again")  # fmt: skip


class _Recording:
    """A file that remembers the first OSError its writes raised: torch.save swallows it
    into a RuntimeError ("unexpected pos ...") that says nothing of a full disk."""

    def __init__(self, f):
        self._f, self.error = f, None

    def write(self, data):
        try:
            return self._f.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def __getattr__(self, name):
        return getattr(self._f, name)


def cannot_write(path: Path, exc: BaseException,
                 recorded: OSError | None = None) -> CannotWrite | None:  # fmt: skip
    """``exc`` (or the write error ``recorded`` beneath it) as CannotWrite, if it is one."""
    for cause in (recorded, exc):
        if isinstance(cause, OSError) and cause.errno in FULL + DENIED:
            return cause if isinstance(cause, CannotWrite) else CannotWrite(path, cause)
    return None


def new_file_mode() -> int:
    """The mode an ordinary ``open(path, "w")`` would give a new file here: 0666 less the
    process's umask. mkstemp makes its files 0600, which once left every file of a store
    unreadable to the other members of a lab sharing it (a group-readable results folder).
    Linux states the umask in /proc; setting it to read it (the fallback) would, for an
    instant, give a file another thread creates no mask at all."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(path: Path, write) -> None:
    tmp = _write_temporary(path, write)
    try:
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if (refused := cannot_write(path, exc)) is not None:
            raise refused from exc
        raise


def _write_temporary(path: Path, write) -> Path:
    """Write ``path``'s content whole (flushed to disk) under a temporary name beside it, named
    with this process; return that name. Removed again if the write fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Named with this process (harness.leftovers), so that a sweep can tell one a kill
        # left from one a live writer is still at.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{tag()}", suffix=".tmp",
                                   dir=path.parent)  # fmt: skip
    except OSError as exc:  # no inode left, a read-only folder
        raise (cannot_write(path, exc) or exc) from None
    with contextlib.suppress(OSError):  # a file system without modes keeps its own
        os.fchmod(fd, new_file_mode())
    recording = None
    try:
        with os.fdopen(fd, "wb") as f:
            recording = _Recording(f)
            write(recording)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        refused = cannot_write(path, exc, recording.error if recording else None)
        if refused is not None:
            raise refused from exc
        raise
    return Path(tmp)


def write_json(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    _atomic_write(path, lambda f: f.write(text.encode()))


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """metrics.jsonl, each line with its digest (harness.epoch_digest), which read_jsonl checks."""
    text = "".join(json.dumps(epoch_digest.sealed(r), sort_keys=True) + "\n" for r in rows)
    _atomic_write(path, lambda f: f.write(text.encode()))


def write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def save_torch(path: Path, obj: Any) -> None:
    _atomic_write(path, lambda f: torch.save(obj, f))


def read_json(path: Path) -> Any | None:
    """The parsed file, or None when it is absent or unreadable (never half-written)."""
    try:
        return json.loads(path.read_text())
    # OSError: a directory (or a file this user may not read) where the file belongs.
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


# The shape of summary.json and of a metrics.jsonl row, checked where they are read (read_summary,
# read_jsonl): report, status and run index and format these fields without checking again,
# so a hand-edited file with a string for a number is damaged like a torn one, never a
# traceback and never counted. Each field may be absent (older runs, a summary written by
# mark_failed) or null unless it is required; the kinds nest for the records in a summary.
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


INT = ("a whole number", _is_int)
NUMBER = ("a number", _is_number)
TEXT = ("text", lambda v: isinstance(v, str))
FLAG = ("true or false", lambda v: isinstance(v, bool))
RECORD = ("an object", lambda v: isinstance(v, dict))
TEXTS = ("a list of text", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))

DATA_FIELDS = {"official": FLAG, "dataset_fingerprint": TEXT, "path": TEXT,
               "train_fingerprint": TEXT, "test_fingerprint": TEXT,
               "validation_fingerprint": TEXT, "train_images": INT, "test_images": INT,
               "validation_images": INT}  # fmt: skip
SESSION_FIELDS = {"time": TEXT, "hostname": TEXT, "device_name": TEXT, "command": TEXT,
                  "pipeline": TEXT, "precision": TEXT, "compile": FLAG, "compile_mode": TEXT,
                  "from_epoch": INT, "official": FLAG, "dataset_fingerprint": TEXT}  # fmt: skip
# harness.telemetry.run_totals. An epoch's telemetry (metrics.jsonl) is checked only for being a
# record: its readers take each figure only where it is one (timings._positive), and compare
# its energy_share with the labels telemetry writes, so another value is no label.
TELEMETRY_FIELDS = {"gpu_seconds": NUMBER, "energy_j": NUMBER, "energy_upper_bound_j": NUMBER,
                    "gpu_processes_max": NUMBER, "gpu_util_mean": NUMBER, "power_w_mean": NUMBER,
                    "torch_peak_memory_mib": NUMBER}  # fmt: skip
SUMMARY_FIELDS: dict[str, Any] = {
    "study": TEXT, "experiment": TEXT, "seed": INT, "label": TEXT, "config_hash": TEXT,
    "study_file": TEXT, "counts_as_reproduction": FLAG, "params": INT,
    "epochs_done": INT, "epochs_total": INT, "iterations_done": INT, "iterations_total": INT,
    "test_error": NUMBER, "reported_epoch": INT, "reported_by": TEXT,
    "reported_val_error": NUMBER, "final_test_error": NUMBER, "best_test_error": NUMBER,
    "best_epoch": INT, "final_train_loss": NUMBER, "final_train_error": NUMBER,
    "val_error": NUMBER, "sec_per_epoch": NUMBER, "sec_per_epoch_device": TEXT,
    "sec_per_epoch_by_device": [{"device": TEXT, "epochs": INT, "sec_per_epoch": NUMBER}],
    "train_seconds_total": NUMBER,
    "eval_seconds_total": NUMBER, "wall_seconds_total": NUMBER,
    "warmup_ended_at_iteration": INT, "compile_fallback": TEXT, "finished": TEXT,
    "error": TEXT, "stop_reason": TEXT,
    "data": DATA_FIELDS, "execution": {"precision": TEXT, "pipeline": TEXT,
                                       "device_shared_by": INT},
    "normalization": RECORD, "telemetry": TELEMETRY_FIELDS,
    "diverged_at": {"epoch": INT, "iteration": INT}, "paused": RECORD,
    "sessions": [SESSION_FIELDS],
    "shared_with": TEXT,  # adopted from a twin run of another study (harness.twins)
}  # fmt: skip
EPOCH_FIELDS: dict[str, Any] = {
    "epoch": INT, "iteration": INT, "lr": NUMBER, "train_loss": NUMBER,
    "train_error": NUMBER, "test_loss": NUMBER, "test_error": NUMBER, "val_loss": NUMBER,
    "val_error": NUMBER, "train_seconds": NUMBER, "eval_seconds": NUMBER, "images": INT,
    "images_per_second": NUMBER, "full_epoch": FLAG, "first_of_session": FLAG,
    "warmup": FLAG, "device": TEXT, "telemetry": RECORD, epoch_digest.FIELD: TEXT,
}  # fmt: skip
# environment.json: harness.environment.environment and Execution.describe, the provenance of
# the run's latest session. Report and timings read these fields without checking again.
ENVIRONMENT_FIELDS: dict[str, Any] = {
    "time": TEXT, "hostname": TEXT, "command": TEXT, "python": TEXT, "platform": TEXT,
    "repro": TEXT, "harness": {"commit": TEXT, "dirty": FLAG, "from": TEXT, "git_says": TEXT},
    "torch": TEXT, "torchvision": TEXT, "cuda": TEXT, "cudnn": INT, "device": TEXT,
    "device_name": TEXT, "driver": TEXT, "pipeline": TEXT, "precision": TEXT, "compile": FLAG,
    "compile_mode": TEXT, "channels_last": FLAG, "workers": INT, "deterministic": FLAG,
    "cudnn_benchmark": FLAG, "device_shared_by": INT, "fused": INT, "fused_group": TEXTS,
}  # fmt: skip
# evaluation.json (harness.evaluate): one file, result and provenance together, so a field of
# the wrong type anywhere in it makes the evaluation damaged, as a summary's would the run.
EVALUATION_FIELDS: dict[str, Any] = {
    "kind": TEXT, "study": TEXT, "checkpoint": TEXT, "study_file": TEXT, "model_name": TEXT,
    "config_hash": TEXT, "config": RECORD, "status": TEXT, "params": INT,
    "file": {"path": TEXT, "sha256": TEXT, "origin": TEXT, "url": TEXT, "tensors": INT,
             "metadata": RECORD},
    "transforms": [{"name": TEXT, "description": TEXT}], "data": DATA_FIELDS,
    "images": INT, "wrong": INT, "test_error": NUMBER, "test_accuracy": NUMBER,
    "test_loss": NUMBER, "normalization": RECORD, "seconds": NUMBER,
    "environment": ENVIRONMENT_FIELDS, "finished": TEXT,
}  # fmt: skip
# What the curves are drawn from (results.curves_frame): present in every row, maybe null.
EPOCH_REQUIRED = ("iteration", "lr", "train_loss", "train_error", "test_error",
                  "train_seconds")  # fmt: skip


def _wrong_fields(record: dict, fields: dict[str, Any], required: tuple = (),
                  within: str = "") -> str | None:  # fmt: skip
    """What is wrong with ``record`` against ``fields`` (the first problem), or None."""
    for key in required:
        if key not in record:
            return f"{within}{key} is missing"
    for key, kind in fields.items():
        value = record.get(key)
        if value is None:
            continue
        name = f"{within}{key}"
        if isinstance(kind, dict):
            if not isinstance(value, dict):
                return f"{name} is {_shown(value)}, not an object"
            if wrong := _wrong_fields(value, kind, within=f"{name}."):
                return wrong
        elif isinstance(kind, list):
            if not isinstance(value, list):
                return f"{name} is {_shown(value)}, not a list"
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    return f"{name}[{i}] is {_shown(item)}, not an object"
                if wrong := _wrong_fields(item, kind[0], within=f"{name}[{i}]."):
                    return wrong
        elif not kind[1](value):
            return f"{name} is {_shown(value)}, not {kind[0]}"
    return None


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


class DamagedFile(Exception):
    """A store file that exists but cannot be used; the message names it and what is wrong."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


def read_jsonl(path: Path) -> list[dict]:
    """Every epoch record of metrics.jsonl ([] when absent); DamagedFile for any bad line."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedFile(path, f"cannot be read ({exc})") from None
    rows: list[dict] = []
    sealed: list[bool] = []  # whether each row carried a digest (harness.epoch_digest)
    numbers: list[int] = []  # each row's line
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        numbers.append(number)
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DamagedFile(path, f"line {number} is not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not _is_int(row.get("epoch")):
            raise DamagedFile(path, f"line {number} is not an epoch record")
        if wrong := _wrong_fields(row, EPOCH_FIELDS, EPOCH_REQUIRED):
            raise DamagedFile(path, f"line {number} (epoch {row['epoch']}): {wrong}")
        stated = row.pop(epoch_digest.FIELD, None)  # the readers take the figures alone
        if stated is not None and stated != epoch_digest.digest(row):
            raise DamagedFile(path, f"line {number} (epoch {row['epoch']}): its figures are not "
                                    "those training wrote on it (its digest does not match "
                                    "them): edited or damaged since")  # fmt: skip
        sealed.append(stated is not None)
        rows.append(row)
    if any(sealed) and not all(sealed):
        # Training writes the file whole, every line with a digest or (before 2026-11-27) none.
        number = sealed.index(False)
        raise DamagedFile(path, f"line {numbers[number]} (epoch {rows[number]['epoch']}) has no "
                                "digest where the others have one: added or pasted since "
                                "training wrote the file")  # fmt: skip
    return rows


def present(path: Path) -> bool:
    """Something stands at ``path``, readable or not: a link that leads nowhere (a loop, a
    deleted target) is there, where ``Path.exists`` says it is not, so that a summary or
    config under such a link read as absent, and the run as interrupted or another config's."""
    return os.path.lexists(path)


def _json_object(path: Path, what: str) -> dict | None:
    """The JSON object in ``path`` (None when absent); DamagedFile when it is not one."""
    if not present(path):
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedFile(path, f"is not readable JSON ({exc})") from None
    if not isinstance(value, dict):
        raise DamagedFile(path, f"holds a {type(value).__name__}, not {what}")
    return value


def data_fingerprints(summary: dict) -> list[str | None]:
    """The data a run trained on, as its summary records it: each session's fingerprint in
    order (sessions record their own since 2026-11-26), then the summary's, which is the
    latest session's (None where it is not recorded). A run may have been carried to another
    machine and resumed on another copy, which only the sessions can show."""
    recorded = [s["dataset_fingerprint"] for s in summary.get("sessions") or []
                if s.get("dataset_fingerprint")]  # fmt: skip
    return [*recorded, (summary.get("data") or {}).get("dataset_fingerprint")]


def read_summary(run_dir: Path) -> dict | None:
    """The run's summary (None when there is none yet); DamagedFile when it cannot be used."""
    path = run_dir / SUMMARY
    summary = _json_object(path, "a summary")
    if summary is None:
        return None
    if summary.get("status") not in STATUSES:
        raise DamagedFile(path, f"has no valid status (given: {summary.get('status')!r})")
    if wrong := _wrong_fields(summary, SUMMARY_FIELDS):
        raise DamagedFile(path, wrong)
    return summary


def read_environment(run_dir: Path) -> dict | None:
    """The run's environment.json (None when absent); DamagedFile when it cannot be used.

    Unlike a damaged summary or curve, a damaged environment does not make the run damaged
    (inspect never reads it): it is metadata of the latest session, not the result, which the
    summary and the curves hold, and `repro run` could not rebuild it from the checkpoint.
    Its readers (results.scan, runner.first_execution) ignore it instead, and the report does
    not trust the run's seconds or device (harness.timings)."""
    path = run_dir / ENVIRONMENT
    environment = _json_object(path, "an environment")
    if environment is None:
        return None
    if wrong := _wrong_fields(environment, ENVIRONMENT_FIELDS):
        raise DamagedFile(path, wrong)
    return environment


def environment_or_damage(run_dir: Path) -> tuple[dict | None, str | None]:
    """The run's environment (None when absent or damaged), and why a damaged one is ignored
    (see read_environment)."""
    try:
        return read_environment(run_dir), None
    except DamagedFile as damaged:
        return None, str(damaged)


def read_evaluation(path: Path) -> dict:
    """A checkpoint evaluation's record (evaluation.json); DamagedFile when it cannot be used."""
    record = read_json(path)
    if not isinstance(record, dict) or not isinstance(record.get("config_hash"), str):
        raise DamagedFile(path, "is not a readable evaluation record")
    if wrong := _wrong_fields(record, EVALUATION_FIELDS):
        raise DamagedFile(path, wrong)
    return record


def read_job(run_dir: Path) -> dict | None:
    """The scheduler's record of the run's job (job.json, as executors.submit writes it), or
    None when there is none or the file is not one: it is bookkeeping, not a result, so a
    damaged one is ignored and the run reads as if it had not been submitted."""
    job = read_json(run_dir / JOB)
    return job if isinstance(job, dict) and isinstance(job.get("job_id"), str) else None


def read_config(run_dir: Path) -> dict | None:
    """The run's config.json (None when absent); DamagedFile when unusable."""
    config = _json_object(run_dir / CONFIG, "a run config")
    if config is not None and not isinstance(config.get("hash"), str):
        raise DamagedFile(run_dir / CONFIG, "is not a run config with a hash")
    return config


def set_aside(path: Path, why: str = "unreadable") -> Path:
    """Keep a file the run cannot use beside it under another name; never delete it."""
    stamp = f"{path.name}.{why}-{time.strftime('%Y%m%d-%H%M%S')}"
    target, n = path.with_name(stamp), 1
    while present(target):  # two in the same second: rename would replace the first
        n += 1
        target = path.with_name(f"{stamp}-{n}")
    path.rename(target)
    return target


def file_in_the_way(run_dir: Path) -> Path | None:
    """A file (not a directory) where the run's directory, or its experiment's or study's,
    belongs: a stray copy or an edit, below which nothing can be read or written. Commands
    say so; `repro run` keeps it aside (set_aside) to make way, as any file it cannot use."""
    for path in (run_dir.parent.parent, run_dir.parent, run_dir):
        if present(path) and not path.is_dir():  # a link that leads nowhere is in the way too
            return path
    return None


def not_a_folder(path: Path) -> str | None:
    """What stands at ``path`` where a folder of the store belongs and cannot be read as one
    ("a link that leads nowhere ...", "a file, not a folder"), or None (a folder, or nothing:
    a store or study with no runs yet). A scan passes over such a path as if it held nothing."""
    if not present(path) or path.is_dir():
        return None
    if not path.exists():  # present, yet nothing at its end: a link
        return "a link that leads nowhere (a loop, or its target is gone)"
    return "a file, not a folder"


IN_THE_WAY = "not-a-directory"  # how set_aside names a file kept out of the store's way


def directories_in_the_way(
    run_dir: Path, names: tuple[str, ...] = (CONFIG, ENVIRONMENT, PROGRESS, ERROR)
) -> list[tuple[Path, Path]]:
    """Keep aside each directory where a file a session writes belongs (by default config,
    environment, progress, error; the worker executor asks for its log): it could be neither
    replaced nor removed. Returns (where, kept as). The summary, curves and checkpoint are not
    looked at: their readers find such a directory unreadable and keep it aside already."""
    moved = []
    for name in names:
        if (path := run_dir / name).is_dir():
            moved.append((path, set_aside(path, "not-a-file")))
    return moved


def lock_in_the_way(run_dir: Path) -> tuple[Path, Path] | None:
    """Keep aside what stands where the run's lock file belongs but is no file (a directory,
    a link that leads nowhere): run_lock could not open it, and the run could never train
    again. Returns (where, kept as). A lock file left by a killed process is no problem:
    flock is released with its holder, and the file is reused."""
    path = run_dir / LOCK
    if present(path) and not path.is_file():
        return path, set_aside(path, "not-a-file")
    return None


class LockHeld(Exception):
    """Another process is training this run right now."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


# What a holder that keeps the lock only to tidy (harness.tidy) adds to its name in the lock
# file, and how long another waits for it rather than take the run for busy.
TIDYING = "(tidying up)"
TIDYING_WAIT_S = 10.0
# How long run_lock waits for a holder that has not yet written its name (a tidy among them).
NAMING_WAIT_S = 0.1


@contextlib.contextmanager
def run_lock(run_dir: Path, *, tidying: bool = False) -> Iterator[None]:
    """Hold the run's lock for the duration; raise LockHeld if another process has it.

    ``flock`` is released by the kernel when its holder dies, even by SIGKILL, so a crashed
    run never leaves a stale lock behind. ``tidying``: held for an instant by a command that
    only tidies the run (`repro status` included); a lock so held is waited for, not taken
    for a run being trained (_take).
    """
    path = run_dir / LOCK
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a folder this user may not write (read-only, another's)
        raise (cannot_write(path, exc) or exc) from None
    try:
        if (holder := _take(fd, fcntl.LOCK_EX, NAMING_WAIT_S)) is not None:
            raise LockHeld(holder)
        os.ftruncate(fd, 0)
        try:
            name = f"pid {os.getpid()} on {socket.gethostname()}"
            os.pwrite(fd, f"{name}{f' {TIDYING}' if tidying else ''}\n".encode(), 0)
        except OSError as exc:  # the lock is held all the same; the rest will not fit
            fcntl.flock(fd, fcntl.LOCK_UN)
            raise (cannot_write(path, exc) or exc) from None
        # The lock file was written just now: its time is the file system's (a store shared
        # over NFS is stamped by its server's clock, not this machine's).
        sweep_temporaries(run_dir, now=os.fstat(fd).st_mtime)
        # An adoption stages its copy only under this lock: one found now was killed midway.
        # Its files are copies or hard links of the twin's, never the run's own.
        stage = run_dir / ADOPTING
        if stage.is_dir() and not stage.is_symlink():
            shutil.rmtree(stage, ignore_errors=True)
        # A move aside its killed holder began: finished before anything trains there.
        finish_superseding(run_dir)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _take(fd: int, operation: int, naming_s: float = 0.0) -> str | None:
    """Lock ``fd`` (``operation``: flock's LOCK_EX or LOCK_SH), or name the lock's holder. A
    holder that is tidying is waited for, up to TIDYING_WAIT_S: a `repro run` that met
    `repro status` finishing a killed move or clearing a stale marker took the run for busy,
    "being trained by another process", and skipped it. One that has not yet written its
    name (an instant here; on another host sharing the store over NFS, until its write
    reaches the server) is waited for ``naming_s`` only: a look at the runs another host has
    just begun (is_locked, for every run of a report) stays quick."""
    started = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
        patience = TIDYING_WAIT_S if holder.endswith(TIDYING) else 0.0 if holder else naming_s
        if time.monotonic() - started >= patience:
            return holder.removesuffix(TIDYING).strip() or "another process"
        time.sleep(0.01)


def sweep_temporaries(run_dir: Path, now: float | None = None) -> list[Path]:
    """Remove what writes cut short left behind (``_atomic_write``'s ``.<name>.*.tmp``, a
    checkpoint's up to megabytes): a process abandoned mid-write (a third Ctrl-C, SIGKILL)
    never renames them, and nothing reads them. Called with the run's lock held; one whose
    writer still runs is left, in case a writer without the lock (an import racing a start)
    is still at it, and so is one younger than WRITE_AGE_S whose writer cannot be told
    (another host, an older repro), by the file system's clock where ``now`` gives it:
    harness.leftovers.dead."""
    removed = []
    for tmp in run_dir.glob(".*.tmp"):
        try:
            if tmp.is_file() and dead(tmp, by_age=True, now=now):
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:
            continue
    return removed


def is_locked(run_dir: Path) -> bool:
    path = run_dir / LOCK
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if _take(fd, fcntl.LOCK_SH) is not None:  # one that only tidies is waited out
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def supersede(run_dir: Path, reason: str) -> Path:
    """Move a run directory aside whole (never delete results); return where it went.

    Why travels inside the folder: the note is written whole under its temporary name (named
    with this process) in the run's folder, the folder is moved with one rename, then the note
    takes its name. Killed before the rename, the run is where it was with a temporary the
    next `repro run` or `repro status` removes (harness.tidy); after it, the moved run holds
    its note whole, which they put in place. Never a moved run without why, nor half a run."""
    target = _superseded_target(run_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    note = _write_temporary(run_dir / SUPERSEDED_NOTE, lambda f: f.write(f"{reason}\n".encode()))
    try:
        shutil.move(str(run_dir), str(target))  # one rename where both are on one file system
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            note.unlink()
        raise
    os.replace(target / note.name, target / SUPERSEDED_NOTE)
    return target


# The note of a run whose mover was killed before it wrote why (harness.tidy adds what it holds).
LOST_REASON = "moved aside by a repro that was killed before it wrote why"


@dataclass(frozen=True)
class Superseding:
    """What a run's folder is being emptied into (``supersede_files``), recorded in the
    folder (SUPERSEDING) before the first file moves, so that a kill midway is finished by
    the next holder of the run's lock rather than leave the run split in two."""

    target: Path
    reason: str
    keep: tuple[str, ...]

    def to_json(self) -> dict:
        return {"target": self.target.name, "reason": self.reason, "keep": list(self.keep)}


def superseding(run_dir: Path) -> Superseding | None:
    """The move aside begun in ``run_dir`` and not finished, or None. A record that cannot be
    read (edited by hand) still means a move was begun: it is finished into a new folder,
    saying why is lost, keeping the lock only."""
    if not present(run_dir / SUPERSEDING):
        return None
    data = read_json(run_dir / SUPERSEDING)
    data = data if isinstance(data, dict) else {}
    name, reason, keep = data.get("target"), data.get("reason"), data.get("keep")
    # one folder of .superseded/, never a path that leads elsewhere
    named = isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name
    if not (named and isinstance(reason, str) and isinstance(keep, list)
            and all(isinstance(k, str) for k in keep)):  # fmt: skip
        return Superseding(_superseded_target(run_dir), LOST_REASON, (LOCK,))
    return Superseding(run_dir.parent / SUPERSEDED / name, reason, tuple(keep))


def supersede_files(run_dir: Path, reason: str, keep: tuple[str, ...] = (LOCK,)) -> Path:
    """Move a run's files aside as ``supersede`` moves its directory, but for those named in
    ``keep``: a caller holding the run's lock keeps the lock file where other processes look
    for it. The files move one by one, so what is to be done is recorded first (Superseding),
    and a move a kill cut short is finished by the next holder of the lock (run_lock)."""
    finish_superseding(run_dir)  # one a killed holder of the lock began: never two at once
    intent = Superseding(_superseded_target(run_dir), reason, keep)
    write_json(run_dir / SUPERSEDING, intent.to_json())
    return finish_superseding(run_dir) or intent.target


def finish_superseding(run_dir: Path) -> Path | None:
    """Carry out the move aside recorded in ``run_dir`` (with the run's lock held), from
    wherever it was cut short; where the files went, or None where none was begun. Each step
    may be done again: the note is written once, moved files are gone from the run's folder,
    and the record goes last."""
    intent = superseding(run_dir)
    if intent is None:
        return None
    # The lock stays where other processes look for it, whatever a record edited by hand says.
    keep = {*intent.keep, LOCK, SUPERSEDING}
    if not _may_receive(intent.target, run_dir, keep):
        intent = replace(intent, target=_superseded_target(run_dir))
    if read_json(run_dir / SUPERSEDING) != intent.to_json():  # a new folder: recorded first,
        write_json(run_dir / SUPERSEDING, intent.to_json())  # so a kill finishes into it too
    intent.target.mkdir(parents=True, exist_ok=True)
    if not present(intent.target / SUPERSEDED_NOTE):
        write_text(intent.target / SUPERSEDED_NOTE, intent.reason + "\n")
    for child in sorted(run_dir.iterdir()):
        if child.name not in keep:
            shutil.move(str(child), str(intent.target / child.name))
    (run_dir / SUPERSEDING).unlink()
    return intent.target


def _may_receive(target: Path, run_dir: Path, keep: set[str]) -> bool:
    """Whether ``run_dir``'s files (but ``keep``) may move into ``target``: a real folder, or
    none yet, holding none of their names. A move cut short leaves each file in one place or
    the other, never both; a record edited by hand could name another attempt's folder, whose
    files a move would write over (a rename replaces a file), or a link leading out of the
    store."""
    if target.is_symlink() or (present(target) and not target.is_dir()):
        return False
    if not present(target):
        return True
    return not any(present(target / c.name) for c in run_dir.iterdir() if c.name not in keep)


def _superseded_target(run_dir: Path) -> Path:
    folder = run_dir.parent / SUPERSEDED
    if present(folder) and not folder.is_dir():  # a stray file of that name: kept, not lost
        set_aside(folder, IN_THE_WAY)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = run_dir.parent / SUPERSEDED / f"{run_dir.name}-{stamp}"
    n = 1
    while target.exists():  # two in the same second: moving into the first would nest them
        n += 1
        target = run_dir.parent / SUPERSEDED / f"{run_dir.name}-{stamp}-{n}"
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
    return recorded_progress(run_dir)[0]


def recorded_progress(run_dir: Path) -> tuple[int, int]:
    """(epochs, iterations) metrics.jsonl holds, as recorded_epochs counts them."""
    try:
        rows = read_jsonl(run_dir / METRICS)
    except DamagedFile:
        return 0, 0
    return len(rows), rows[-1]["iteration"] if rows else 0


def epochs_on_record(run_dir: Path) -> int | None:
    """How far a run got by the furthest epoch its curves or its summary attest, each where
    it still reads; None where neither does. For a damaged run, which inspect gives 0 epochs
    (nothing it read can be trusted as a whole), so that status does not show a false 0."""
    attested = []
    with contextlib.suppress(DamagedFile):
        attested += [row["epoch"] for row in read_jsonl(run_dir / METRICS)]
    with contextlib.suppress(DamagedFile):
        summary = read_summary(run_dir) or {}
        if summary.get("epochs_done") is not None:
            attested.append(summary["epochs_done"])
    return max(attested, default=None)


def mark_failed(run_dir: Path, error: str) -> None:
    """Record a run as failed when it died without saying so itself (killed, node lost)."""
    _mark(run_dir, {"status": FAILED, "error": error})


def mark_interrupted(run_dir: Path, reason: str) -> None:
    """Record a run as interrupted when it was stopped before it could say so itself (while
    starting up, or killed after a stop request). Its checkpoint and metrics stay: it resumes.
    """
    _mark(run_dir, {"status": INTERRUPTED, "error": None, "stop_reason": reason})


def _mark(run_dir: Path, fields: dict) -> None:
    """Write how a run ended over its summary; an unreadable summary is kept aside first.

    A session removes the summary as it begins (it writes its own at the end), so a run
    killed in one has none, nor has one whose summary was damaged: such a summary lists the
    sessions its checkpoint holds, and their latest data, as train.finish's does for a run
    that failed before its session took up its record. Without them `repro status` could not
    say what data the run began on, and `repro run` resumed it on any (runner.data_conflict).
    """
    try:
        summary = read_summary(run_dir) or {}
    except DamagedFile as damaged:
        summary = {}
        set_aside(damaged.path)
    if not summary.get("sessions"):
        from harness.train import checkpoint_sessions  # train writes through this module

        if sessions := checkpoint_sessions(run_dir):
            latest = sessions[-1]
            summary["sessions"] = sessions
            summary.setdefault("data", {k: latest[k] for k in ("official", "dataset_fingerprint")
                                        if latest.get(k) is not None})  # fmt: skip
    write_json(run_dir / SUMMARY, {**summary, **fields, "epochs_done": recorded_epochs(run_dir)})


def check_ended(run_dir: Path, summary: dict, rows: list[dict]) -> None:
    """DamagedFile where an ended run's readable files disagree, since such a run would count:
    a complete one has all its epochs, and the curves hold exactly the epochs its summary
    says (a summary copied without its curves, edited, or left from another attempt).

    A paused run counts at the epochs it has (a claim on one epoch) and the report shows how
    far it got from its summary: training pauses between epochs, after writing the curves, so
    they hold exactly the summary's epochs too. An interrupted run's summary may say one epoch
    more than its curves (a stop between the epoch's checkpoint and its line: the checkpoint
    holds it, and resuming writes it) or fewer (a harness before 2026-11-26 said 0 for a run
    stopped before it took up its history), never two more: then lines were lost."""
    status = summary["status"]
    done, total = summary.get("epochs_done"), summary.get("epochs_total")
    got = [r["epoch"] for r in rows]
    if status == INTERRUPTED and done is not None and done > len(got) + 1:
        raise DamagedFile(run_dir / METRICS, f"holds {len(got)} epochs, where its summary says "
                                             f"interrupted after {done}")  # fmt: skip
    if status not in (*FINAL, PAUSED):
        return
    if status == COMPLETE and (done is None or done != total):
        raise DamagedFile(run_dir / SUMMARY, f"says complete after {done} of {total} epochs")
    if status in FINAL and not (run_dir / METRICS).exists():
        raise DamagedFile(run_dir / METRICS, f"is missing; the summary says {status} after "
                                             f"{done} epochs")  # fmt: skip
    if got != list(range(1, (done or 0) + 1)):
        span = f"{got[0]}..{got[-1]}" if got else "none"
        raise DamagedFile(run_dir / METRICS, f"holds {len(got)} epochs ({span}), not the "
                                             f"{done} its summary says")  # fmt: skip


def check_order(run_dir: Path, rows: list[dict]) -> None:
    """DamagedFile where the curves are not epochs 1..n in order: training writes them whole
    from its history, so a repeated or missing epoch was added by hand or by a bad merge, and
    a claim at an epoch would read whichever row came first (check_ended says the same of an
    ended run, against its summary)."""
    got = [r["epoch"] for r in rows]
    if got != list(range(1, len(got) + 1)):
        shown = ", ".join(map(str, got[:8])) + (", ..." if len(got) > 8 else "")
        raise DamagedFile(run_dir / METRICS, f"holds epochs {shown}, not 1..{len(got)} in "
                                             "order")  # fmt: skip


def _missing_config(run_dir: Path, summary: dict | None) -> str | None:
    """Why a run without config.json is damaged (what it holds of its training), or None for
    one that never trained (a job that died first leaves only a summary, or a job record)."""
    held = [name for name in (METRICS, CHECKPOINT) if present(run_dir / name)]
    if summary is not None and summary["status"] in FINAL:
        held.append(f"a {summary['status']} summary")
    if not held:
        return None
    return f"is missing, though the run holds {', '.join(held)}"


def config_damage(run_dir: Path) -> DamagedFile | None:
    """Why the run's config.json cannot be used, as inspect finds it (unreadable, or missing
    from a run that trained), or None; for `repro run`, which writes it again or moves the run
    aside, and `repro status`, which says which."""
    try:
        config = read_config(run_dir)
    except DamagedFile as damaged:
        return damaged
    if config is not None:
        return None
    try:
        summary = read_summary(run_dir)
    except DamagedFile:
        summary = None
    missing = _missing_config(run_dir, summary)
    return None if missing is None else DamagedFile(run_dir / CONFIG, missing)


@dataclass(frozen=True)
class RunFiles:
    """The summary and the curves that inspect read to reach its answer (see read_run)."""

    summary: dict | None
    rows: list[dict]


def inspect(run_dir: Path) -> RunState:
    return read_run(run_dir)[0]


def read_run(run_dir: Path) -> tuple[RunState, RunFiles | None]:
    """inspect's answer, with the summary and curves it read and checked to reach it; None
    where it found damage or a misplaced run. So that a reader of the whole store
    (results.scan) parses and checks each metrics.jsonl once rather than twice: on the 253
    runs of benchmarks/big_store.py the second parse took 1.6 s under cProfile."""
    try:
        return _inspect(run_dir)
    except DamagedFile as damaged:
        config = read_json(run_dir / CONFIG)
        digest = config.get("hash") if isinstance(config, dict) else None
        if is_locked(run_dir):  # mid-write by its trainer is not damage
            # how far it got, as its progress marker or its readable records say (never a false 0)
            epoch, host = _progress(run_dir)
            return RunState("running", epoch or epochs_on_record(run_dir) or 0, digest, host), None
        return RunState(DAMAGED, 0, digest, str(damaged)), None


def _progress(run_dir: Path) -> tuple[int | None, str]:
    """The epoch and host a running run's progress.json gives; only a hint, so one of the
    wrong shape gives (None, ""), never damage."""
    progress = read_json(run_dir / PROGRESS)
    progress = progress if isinstance(progress, dict) else {}
    epoch, host = progress.get("epoch"), progress.get("host")
    return (epoch if _is_int(epoch) else None), (host if isinstance(host, str) else "")


def _inspect(run_dir: Path) -> tuple[RunState, RunFiles | None]:
    # First, from the files as they read: a misplaced run that is damaged too must not be
    # repaired (runner._recover) into the run of the folder it lies in.
    as_read = read_json(run_dir / CONFIG)
    if (wrong := misplaced(run_dir, as_read, read_json(run_dir / SUMMARY))) is not None:
        digest = as_read.get("hash") if isinstance(as_read, dict) else None
        # No epoch of it is this folder's run: `repro run` trains the run from 0 (queue
        # costs and fused groups, which read epochs_done, plan it so).
        return RunState(MISPLACED, 0, digest, wrong), None
    config = read_config(run_dir)
    summary = read_summary(run_dir)
    if config is None:
        if (missing := _missing_config(run_dir, summary)) is not None:
            # Read as a job that died before it started (or as absent), such a run was
            # listed as complete for no config, or trained over its own history.
            raise DamagedFile(run_dir / CONFIG, missing)
        # No curves to read: a run that holds some without a config is damaged (above).
        files = RunFiles(summary, [])
        if summary is not None:  # a job that died before it started training
            return RunState(summary["status"], 0, None, summary.get("error") or ""), files
        job = read_job(run_dir)
        if job is not None:
            return RunState("queued", 0, None, f"job {job.get('job_id')}"), files
        return RunState("absent"), files
    config_hash = config.get("hash")
    rows = read_jsonl(run_dir / METRICS)
    files = RunFiles(summary, rows)
    if summary is None or summary["status"] not in FINAL:
        check_order(run_dir, rows)
    epochs = len(rows)
    if is_locked(run_dir):
        epoch, host = _progress(run_dir)
        return RunState("running", epochs if epoch is None else epoch, config_hash, host), files
    if summary is not None:
        check_ended(run_dir, summary, rows)
        detail = summary.get("error", "") if summary["status"] == FAILED else ""
        state = RunState(summary["status"], summary.get("epochs_done", epochs), config_hash,
                         detail)  # fmt: skip
        return state, files
    if (run_dir / CHECKPOINT).exists() or epochs:
        return RunState(INTERRUPTED, epochs, config_hash, "killed or stopped before the end"), files
    return RunState("pending", 0, config_hash), files

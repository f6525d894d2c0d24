"""A store that travels: `repro export` packs a study's runs, `repro import` merges them.

GPU time comes in slots on machines that keep nothing, so a study's evidence is carried from
slot to slot (and from cluster to laptop) as one archive:

    manifest.json                         format, origin, and per run: status, epochs, files
    <study>/<experiment>/seed-<k>[~label]/config.json, environment.json, metrics.jsonl,
                                          summary.json, error.txt, worker.log, checkpoint.pt,
                                          error.txt.earlier-failure-<time> (history)

Every file's SHA-256 is in the manifest, and import refuses an archive in which anything
differs, is missing, is extra or points outside the store, before touching the store. Runs
are then merged one by one: a run is added when the store lacks it and advanced when the
archive has more of it; it is never replaced by one with fewer finished epochs, a run being
trained here is left alone, and a run whose config hash differs is refused (the study
changed between the two machines). A replaced run is moved to ``.superseded/``, not deleted.

What the store keeps aside travels as a user moving it would expect: an earlier failure's
traceback (kept when a failed run was retried) is small and says why the run once failed, so
it goes with the run and lands beside it, never over a file here; the attempts moved to
``.superseded/`` are bulky (their checkpoints) and stay, and export says how many, where.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import socket
import tarfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from harness import store
from harness.environment import git_commit, now_utc
from harness.leftovers import (
    EXPORT_SCRATCH,
    IMPORT_SCRATCH,
    partial_archive,
    scratch_folder,
    sweep_partial_archives,
    sweep_scratch,
    tag,
)
from harness.results import EvaluationRecord, RunRecord, scan, scan_evaluations

# Format 2 may carry history files (HISTORY); an archive without any is written as format 1,
# which a repro from before them reads too.
FORMAT = 2
READABLE_FORMATS = (1, 2)
MANIFEST = "manifest.json"
EVALUATED = "evaluated"  # the status an archive gives a checkpoint evaluation
# The files of a run that make it evidence; locks, progress markers and job records are
# about one machine and stay behind. The checkpoint travels only for unfinished runs.
RUN_FILES = (store.CONFIG, store.ENVIRONMENT, store.METRICS, store.SUMMARY, store.EVALUATION,
             store.ERROR,
             store.WORKER_LOG)  # fmt: skip
# A run's history: the tracebacks of its earlier failures, as train.keep_the_earlier_failure
# names them (store.set_aside: a time stamp, "-<n>" for a second in the same second, and
# "-imported..." for one an import put beside a local one of the same name). One path part.
HISTORY = re.compile(r"error\.txt\.earlier-failure-[A-Za-z0-9_-]+")


def is_history(name: str) -> bool:
    return HISTORY.fullmatch(name) is not None


class TransferError(Exception):
    """An archive that cannot be trusted or read, an export with nothing to pack, or a store
    an import cannot write to."""


@dataclass(frozen=True)
class ArchivedRun:
    path: str  # <study>/<experiment>/seed-<k>[~label], relative to the store
    config_hash: str | None
    status: str
    epochs: int  # finished epochs the run holds (its metrics)
    resumable_from: int  # the epoch training continues from: the checkpoint's, or the end
    files: dict[str, str]  # name -> sha256

    def to_json(self) -> dict:
        return self.__dict__.copy()


@dataclass
class ExportResult:
    path: Path
    runs: list[ArchivedRun]
    bytes: int
    # the study's attempts in .superseded/ folders, which do not travel (checkpoints included)
    left_behind: list[Path] = field(default_factory=list)
    scratch: list[str] = field(default_factory=list)  # leftovers.Swept.notes of killed ones

    def notes(self) -> list[str]:
        """What the archive does not hold that the store does, and where it stays; what
        killed exports and imports had left in the temp dir."""
        if not self.left_behind:
            return self.scratch
        n = len(self.left_behind)
        folders = sorted({str(p.parent) for p in self.left_behind})
        return [f"{n} superseded attempt{'s' if n != 1 else ''} left behind (not exported: "
                "earlier attempts moved aside, with their checkpoints), in "
                f"{', '.join(folders)}; copy them by hand if they should travel",
                *self.scratch]  # fmt: skip


@dataclass
class ImportResult:
    added: list[str] = field(default_factory=list)
    advanced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "run: why"
    refused: list[str] = field(default_factory=list)  # "run: why"
    scratch: list[str] = field(default_factory=list)  # leftovers.Swept.notes of killed ones

    def lines(self) -> list[str]:
        out = [f"added     {r}" for r in self.added]
        out += [f"advanced  {r}" for r in self.advanced]
        out += [f"skipped   {r}" for r in self.skipped]
        out += [f"REFUSED   {r}" for r in self.refused]
        counts = (f"{len(self.added)} added, {len(self.advanced)} advanced, "
                  f"{len(self.skipped)} skipped, {len(self.refused)} refused")  # fmt: skip
        return [*out, counts, *self.scratch]


# --------------------------------------------------------------------------- export


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _snapshot(run_dir: Path, into: Path, checkpoints: bool) -> ArchivedRun:
    """Copy a run's files aside first: a run still training replaces them as it goes."""
    into.mkdir(parents=True)
    for name in RUN_FILES:
        if (run_dir / name).is_file():  # a directory in a file's place is no file of the run
            shutil.copy2(run_dir / name, into / name)
    for path in sorted(run_dir.iterdir()):
        if is_history(path.name) and path.is_file():
            shutil.copy2(path, into / path.name)
    if (into / store.EVALUATION).exists():  # a released checkpoint evaluated: one file
        record = store.read_json(into / store.EVALUATION)
        digest = record.get("config_hash") if isinstance(record, dict) else None
        files = {p.name: _sha256(p) for p in sorted(into.iterdir())}
        return ArchivedRun("", digest, EVALUATED, 0, 0, files)
    state = store.inspect(run_dir)
    summary = store.read_json(into / store.SUMMARY)
    status = (summary.get("status") if isinstance(summary, dict) else None) or state.status
    if state.status in (store.DAMAGED, store.MISPLACED):
        # Never carried on as what its summary says: it travels as damaged, with the
        # checkpoint that `repro run` rebuilds it from on the other side; a misplaced run
        # as what it is, which the other side refuses (_merge).
        status = state.status
    epochs = store.recorded_epochs(into)
    config = store.read_json(into / store.CONFIG)
    config_hash = config.get("hash") if isinstance(config, dict) else None
    resumable_from = epochs if status in store.FINAL else 0
    if checkpoints and status not in store.FINAL and (run_dir / store.CHECKPOINT).is_file():
        shutil.copy2(run_dir / store.CHECKPOINT, into / store.CHECKPOINT)
        resumable_from = _checkpoint_epoch(into, config_hash)
    return ArchivedRun(
        path="",
        config_hash=config_hash,
        status=status,
        epochs=epochs,
        resumable_from=resumable_from,
        files={p.name: _sha256(p) for p in sorted(into.iterdir())},
    )


def _checkpoint_epoch(run_dir: Path, config_hash: str | None) -> int:
    """The epoch training would continue from, as it would decide: 0 for a checkpoint it
    cannot resume (unreadable, damaged, or made with another config or format)."""
    from harness.train import resume_point

    return resume_point(run_dir, config_hash)[0] if config_hash is not None else 0


def export_study(
    study: str, results: Path, out: Path, *, checkpoints: bool = True, replace: bool = False
) -> ExportResult:
    """Pack every run (and checkpoint evaluation) of ``study`` in ``results`` into ``out``;
    an existing ``out`` is refused unless ``replace``: it may be another machine's only copy."""
    _refuse_existing(out, replace)
    records: list[RunRecord | EvaluationRecord] = list(scan(results, study))
    records += [e for e in scan_evaluations(results) if e.study == study]
    if not records:
        for folder in (results, results / study):  # read as empty, it is not: say so
            if (what := store.not_a_folder(folder)) is not None:
                raise TransferError(
                    f"{folder} is {what}, so the runs of study {study!r} cannot be read and "
                    "nothing was exported; put the folder of runs there (or give --results "
                    "the store that holds it) and export again"
                )
        if not store.present(results):  # a mistyped --results read as a store with no runs
            raise TransferError(
                f"{results} does not exist: no runs of study {study!r} there, nothing to "
                "export; give --results the store that holds its runs (by default results/ in "
                "the current directory)"
            )
        raise TransferError(f"no runs of study {study!r} under {results}: nothing to export")
    return export_runs(records, results, out, study=study, checkpoints=checkpoints, replace=replace)


def _refuse_existing(out: Path, replace: bool) -> None:
    if replace or not out.exists():
        return
    raise TransferError(
        f"{out} already exists ({out.stat().st_size} bytes): it may be the only copy of another "
        "machine's runs, so it is kept and nothing was written; give --out another path, or "
        "add --force to replace it"
    )


def export_runs(
    records: list[RunRecord | EvaluationRecord],
    results: Path,
    out: Path,
    *,
    study: str,
    checkpoints: bool = True,
    replace: bool = True,
) -> ExportResult:
    """Pack the given runs (of one study) into ``out``; written under a temporary name first.

    ``replace``: an existing ``out`` is replaced (the GPU box rewrites its own archives every
    minute); without it, one is refused before any work and again just before the rename, as
    an export with checkpoints takes a while."""
    _refuse_existing(out, replace)
    runs = []
    left_behind = sorted(p for p in (results / study).glob(f"*/{store.SUPERSEDED}/*")
                         if p.is_dir())  # fmt: skip
    swept = sweep_scratch().notes() + sweep_partial_archives(out).notes()
    with scratch_folder(EXPORT_SCRATCH) as tmp:
        for r in records:
            rel = r.path.relative_to(results).as_posix()
            run = _snapshot(r.path, Path(tmp) / rel, checkpoints)
            runs.append(ArchivedRun(**{**run.to_json(), "path": rel}))
        history = any(is_history(name) for r in runs for name in r.files)
        manifest = {
            "format": FORMAT if history else 1,
            "kind": "repro-store",
            "study": study,
            "created": now_utc(),
            "host": socket.gethostname(),
            "harness": git_commit(),
            "checkpoints": checkpoints,
            "runs": [r.to_json() for r in runs],
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_archive(out)
        try:
            _write_archive(partial, manifest, runs, Path(tmp))
            _refuse_existing(out, replace)
        except BaseException as exc:
            # A full disk or a Ctrl-C halfway leaves no half archive behind to be taken for one.
            partial.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise TransferError(f"could not write {out} ({exc}); nothing was written, and "
                                    "the store is as it was") from None  # fmt: skip
            raise
        partial.replace(out)  # never a half-written archive under the real name
    return ExportResult(out, runs, out.stat().st_size, left_behind, swept)


def _write_archive(path: Path, manifest: dict, runs: list[ArchivedRun], snapshot: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        data = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
        for run in runs:
            for name in run.files:
                tar.add(snapshot / run.path / name, arcname=f"{run.path}/{name}")


# --------------------------------------------------------------------------- import


ENDS_EARLY = (
    "it ends too soon, as a copy or download that did not finish leaves it: copy it "
    "again from where it was exported"
)


def _ends_early(exc: BaseException) -> bool:
    """An archive that ends early: gzip's EOFError, or tar's own for an uncompressed one."""
    return isinstance(exc, EOFError) or "unexpected end" in str(exc)


def read_manifest(archive: Path) -> dict:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            manifest = json.loads(member.read()) if member else None
    except (tarfile.TarError, OSError, KeyError, json.JSONDecodeError, EOFError) as exc:
        # Finding the manifest reads the whole archive: one cut short by a copy that did not
        # finish ends here, and was told to "make one with `repro export`", as if it were
        # some other file.
        remedy = ENDS_EARLY if _ends_early(exc) else "make one with `repro export`"
        raise TransferError(
            f"{archive}: not a readable repro store archive ({type(exc).__name__}: {exc}); {remedy}"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("kind") != "repro-store":
        raise TransferError(f"{archive}: has no repro manifest; make one with `repro export`")
    if manifest.get("format") not in READABLE_FORMATS:
        raise TransferError(f"{archive}: archive format {manifest.get('format')}, this repro "
                            f"reads formats {', '.join(map(str, READABLE_FORMATS))}; use the "
                            "repro that wrote it")  # fmt: skip
    return manifest


def _verified_runs(archive: Path, into: Path) -> list[ArchivedRun]:
    """Unpack into ``into`` and check every file against the manifest; raise on any doubt."""
    manifest = read_manifest(archive)
    try:
        runs = [ArchivedRun(**r) for r in manifest["runs"]]
    except (KeyError, TypeError) as exc:
        raise TransferError(f"{archive}: its manifest is malformed ({exc})") from None
    expected = {f"{r.path}/{name}": sha for r in runs for name, sha in r.files.items()}
    for r in runs:
        # An absolute path ("/tmp/x") starts with the part "/": its files would be unpacked
        # and placed outside the store.
        parts = PurePosixPath(r.path).parts
        if len(parts) != 3 or any(p in ("", ".", "..") or p.startswith((".", "/")) for p in parts):
            raise TransferError(f"{archive}: run path {r.path!r} is not <study>/<experiment>/"
                                "seed-<k>; refusing the archive")  # fmt: skip
        # A file name is joined to the run's path too: "../../x" would be unpacked outside.
        # Only the files an export writes can be in a run.
        for name in r.files:
            if name not in (*RUN_FILES, store.CHECKPOINT) and not is_history(name):
                raise TransferError(f"{archive}: run {r.path} has a file {name!r}, which is not "
                                    "one of a run's files; refusing the archive")  # fmt: skip
    seen = set()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name == MANIFEST:
                    continue
                if member.name not in expected:
                    raise TransferError(f"{archive}: {member.name!r} is not in its manifest; "
                                        "the archive was altered, refusing it")  # fmt: skip
                if not member.isfile():  # a link or device under a run file's name
                    raise TransferError(f"{archive}: {member.name!r} is not a plain file but a "
                                        f"{_kind(member)}; the archive was altered, refusing "
                                        "it")  # fmt: skip
                target = into / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                if _sha256(target) != expected[member.name]:
                    raise TransferError(f"{archive}: {member.name} does not match its checksum; "
                                        "the archive is damaged or altered, nothing was "
                                        "imported")  # fmt: skip
                seen.add(member.name)
    except (tarfile.TarError, OSError, EOFError) as exc:
        then = f"; {ENDS_EARLY}" if _ends_early(exc) else ""
        raise TransferError(f"{archive}: cannot be read to the end ({exc}); nothing was "
                            f"imported{then}") from None  # fmt: skip
    missing = sorted(set(expected) - seen)
    if missing:
        raise TransferError(f"{archive}: {missing[0]} is in the manifest but not in the archive "
                            f"({len(missing)} missing); nothing was imported")  # fmt: skip
    return runs


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"symbolic link to {member.linkname!r}"
    if member.islnk():
        return f"hard link to {member.linkname!r}"
    return "directory" if member.isdir() else "special file"


def _local_progress(run_dir: Path) -> tuple[str, int, int]:
    """(status, finished epochs, epoch training would continue from) of a local run."""
    summary = store.read_json(run_dir / store.SUMMARY)
    state = store.inspect(run_dir)
    status = (summary.get("status") if isinstance(summary, dict) else None) or state.status
    if state.status == store.DAMAGED:  # what it holds is its checkpoint, not its summary
        status = store.DAMAGED
    epochs = store.recorded_epochs(run_dir)
    if status in store.FINAL:
        return status, epochs, epochs
    config = store.read_json(run_dir / store.CONFIG)
    return status, epochs, _checkpoint_epoch(run_dir, config.get("hash")
                                             if isinstance(config, dict) else None)  # fmt: skip


def import_archive(archive: Path, results: Path) -> ImportResult:
    """Merge the archive's runs into the store at ``results``, run by run."""
    try:
        store.ensure_writable(results)  # before unpacking: a store that cannot be written to
    except store.StoreUnusable as exc:
        raise TransferError(f"{exc}; nothing was imported") from None
    result = ImportResult()
    # Checked before the archive is unpacked: a store below a file or on a read-only file
    # system would otherwise fail at the first run's directory, as a traceback.
    try:
        store.ensure_writable(results)
    except store.StoreUnusable as exc:
        raise TransferError(str(exc)) from None
    result.scratch = sweep_scratch().notes()
    with scratch_folder(IMPORT_SCRATCH) as tmp:
        runs = _verified_runs(archive, Path(tmp))
        for run in runs:
            try:
                _merge(run, Path(tmp) / run.path, results / run.path, archive, result)
            except OSError as exc:  # a full disk, a run's folder this user may not write
                raise (store.cannot_write(results / run.path, exc) or exc) from None
    return result


def _merge(run: ArchivedRun, src: Path, dst: Path, archive: Path, result: ImportResult) -> None:
    with_ckpt = store.CHECKPOINT in run.files
    if (blocking := store.file_in_the_way(dst)) is not None:
        result.refused.append(f"{run.path}: {blocking} is a file where a directory belongs; "
                              "move it aside and import again")  # fmt: skip
        return
    # Asked first: a run whose training has just started holds its lock before it writes
    # config.json, and the trainer would overwrite (or retrain over) files placed now.
    if store.is_locked(dst):
        result.skipped.append(f"{run.path}: being trained here right now")
        return
    if run.status == EVALUATED:
        _merge_evaluation(run, src, dst, result)
        return
    # Judged on the files, as they would lie here (the manifest may predate the check): a
    # run copied into another run's folder before export would count as that run.
    if (unpacked := store.inspect(src)).status == store.MISPLACED:
        result.refused.append(f"{run.path}: misplaced in the archive: {unpacked.detail}; it "
                              "was not imported. Export the run from the folder it belongs "
                              "in")  # fmt: skip
        return
    if run.status != store.DAMAGED and store.inspect(src).status == store.DAMAGED:
        # The manifest says what the exporting machine read (an older repro did not flag
        # every damage); the files are what lands here. Taken at its word, a "complete" run
        # with torn curves replaced a healthy unfinished one, and then trained from epoch 0:
        # an ended run travels without its checkpoint.
        resumable = _checkpoint_epoch(src, run.config_hash) if with_ckpt else 0
        run = replace(run, status=store.DAMAGED, resumable_from=resumable)
    if _cut_short(run, dst):
        _place(src, dst)
        result.added.append(f"{run.path}: {run.status}, {run.epochs} epochs (the rest of it: "
                            "an import of it here was cut short)")  # fmt: skip
        return
    if not (dst / store.CONFIG).exists() and not (dst / store.SUMMARY).exists():
        _place(src, dst)
        note = "" if with_ckpt or run.status in store.FINAL else " (no checkpoint: restarts)"
        result.added.append(f"{run.path}: {run.status}, {run.epochs} epochs{note}")
        return
    if (damaged := store.config_damage(dst)) is not None:
        # Which config the run here was made with cannot be told: it was refused as one of
        # another config ("None"), telling the user to make the study files agree.
        result.refused.append(f"{run.path}: {damaged}; run `repro run` on its study here first "
                              "(it writes the config again or moves the run aside), then "
                              "import again")  # fmt: skip
        return
    config = store.read_json(dst / store.CONFIG)
    local_hash = config.get("hash") if isinstance(config, dict) else None
    if local_hash != run.config_hash:
        result.refused.append(
            f"{run.path}: its config ({run.config_hash}) differs from the one here "
            f"({local_hash}): the study changed between the two machines. Make the study "
            "files agree (or move the local run aside) and import again"
        )
        return
    status, epochs, resumable = _local_progress(dst)
    # Ended beats unfinished (an ended run is never replaced by an unfinished one), then the
    # epoch training would continue from, then the epochs on record.
    here = (status in store.FINAL, resumable, epochs)
    there = (run.status in store.FINAL, run.resumable_from, run.epochs)
    if there <= here:
        # The run here stays; what the archive knows of its past failures joins it.
        kept = _place_history(src, dst)
        also = f"; {_tracebacks(kept)} put beside it" if kept else ""
        result.skipped.append(
            f"{run.path}: here {status} at {epochs} epochs, archive {run.status} at "
            f"{run.epochs}: nothing newer{also}"
        )
        return
    where = store.supersede(dst, f"advanced by import of {archive.name}")
    _place(src, dst)
    result.advanced.append(
        f"{run.path}: {status} at {epochs} -> {run.status} at {run.epochs} epochs "
        f"(previous kept in {where})"
    )


def _cut_short(run: ArchivedRun, dst: Path) -> bool:
    """Whether ``dst`` holds what an import of ``run`` killed halfway (SIGKILL, a lost
    machine) left: some of its files but not all, each the archive's own. _place moves them
    in one by one, so such a run could lack its config and be refused by the next import
    ("run `repro run` first", which retrains an ended run), or lack its summary and be judged
    as less than it is. Nothing else may be there but the lock and dot-files (temporaries)."""
    try:
        here = [f for f in dst.iterdir() if f.name != store.LOCK and not f.name.startswith(".")]
    except OSError:  # no folder (or not one): nothing was placed
        return False
    names = {f.name for f in here}
    if not names or not names < set(run.files):
        return False
    return all(f.is_file() and not f.is_symlink() and _sha256(f) == run.files[f.name]
               for f in here)  # fmt: skip


def _merge_evaluation(run: ArchivedRun, src: Path, dst: Path, result: ImportResult) -> None:
    """An evaluation of fixed weights on one copy of the data: the same inputs give the same
    record, so one that is here already stays; one for another checkpoint config is refused."""
    here = store.read_json(dst / store.EVALUATION)
    if here is None:
        _place(src, dst)
        result.added.append(f"{run.path}: checkpoint evaluation")
        return
    local_hash = here.get("config_hash") if isinstance(here, dict) else None
    if local_hash != run.config_hash:
        result.refused.append(f"{run.path}: evaluated here with checkpoint config {local_hash}, "
                              f"in the archive with {run.config_hash}")  # fmt: skip
        return
    result.skipped.append(f"{run.path}: already evaluated here")


def _place(src: Path, dst: Path) -> None:
    """Move the verified files into the store, each atomically; history as _place_history."""
    dst.mkdir(parents=True, exist_ok=True)
    _place_history(src, dst)
    for f in src.iterdir():
        _move_in(f, dst / f.name)


def _place_history(src: Path, dst: Path) -> int:
    """Move the archive's history files beside the run at ``dst``, never over a file here:
    one already here with the same content is not doubled, one of the same name with other
    content (two machines' failures in the same second) stays, the archive's going beside it
    as ``<name>-imported[-n]``. Returns how many were put beside the run."""
    placed = 0
    for f in sorted(src.iterdir()):
        if not is_history(f.name):
            continue
        target, n = dst / f.name, 1
        while store.present(target) and not (target.is_file() and _sha256(target) == _sha256(f)):
            target = dst / f"{f.name}-imported{'' if n == 1 else f'-{n}'}"
            n += 1
        if store.present(target):  # the same traceback is here already
            f.unlink()
            continue
        dst.mkdir(parents=True, exist_ok=True)
        _move_in(f, target)
        placed += 1
    return placed


def _tracebacks(n: int) -> str:
    return "1 earlier failure's traceback" if n == 1 else f"{n} earlier failures' tracebacks"


def _move_in(f: Path, target: Path) -> None:
    # Named as store._atomic_write names its temporaries, so that a copy a kill cut short
    # (from the temp dir, another disk: a checkpoint's gigabytes) is swept when the run is
    # next locked (store.sweep_temporaries), as theirs are.
    tmp = target.with_name(f".{target.name}.{tag()}importing.tmp")
    shutil.move(str(f), tmp)
    tmp.replace(target)

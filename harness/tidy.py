"""What a killed repro left in a study's folders, finished or removed by the next `repro run`
or `repro status` on it, and said.

- A probe file (harness.outputs.probe) in the store's folder, empty: removed once its
  maker is gone (harness.leftovers).
- A move to ``.superseded/`` a kill cut short. store.supersede writes the note saying why
  into the run's folder under its temporary name, moves the folder with one rename, then
  names the note: killed before the rename, the run stayed whole where it was and the
  temporary is removed; after it, the note is put in place. A note whose text is not whole
  (it ends with its newline), or a moved folder with no note at all (left by an older repro,
  which wrote the note after the move), is written again from what the moved run holds,
  saying that why it was moved is lost. store.supersede_files (a twin adopted over a run's
  folder, whose lock stays) moves files one by one after recording where to
  (store.SUPERSEDING): the move is finished under the run's lock (store.run_lock), so the
  run is never split between its folder and .superseded/, nor trained on top of half of it.
- ``progress.json`` in a run whose summary says it ended: a session writes its summary,
  then removes the marker, and was killed between the two. Status and report never read it
  there (store.inspect reads it only while the run's lock is held), so it never showed the
  run as running; it is removed under the run's lock, so never from a run being trained.

Nothing whose maker may still be at it is touched (harness.leftovers.dead).
The run's lock is taken only as tidying (store.TIDYING): a `repro run` that meets it waits
the instant out rather than take the run for busy and skip it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from harness import store
from harness.leftovers import dead, sweep_probes
from harness.results import run_directories


def tidy_study(results: Path, study: str) -> list[str]:
    """Finish or remove what killed processes left in the store's folder and the study's
    run and .superseded/ folders; one line for each thing done."""
    notes = [f"removed {p}, an empty probe a killed repro left" for p in sweep_probes(results)]
    study_dir = results / study
    if study_dir.is_dir():
        notes += _finish_moves(study_dir)
        note = f".{store.SUPERSEDED_NOTE}.*.tmp"
        for tmp in sorted(study_dir.glob(f"*/*/{note}")):  # in a run's folder: never moved
            if _dead_file(tmp):
                notes.append(_or_said(tmp, _remove_unmoved))
        for tmp in sorted(study_dir.glob(f"*/{store.SUPERSEDED}/*/{note}")):
            if _dead_file(tmp):
                notes.append(_or_said(tmp, finish_note))
        for folder in sorted(study_dir.glob(f"*/{store.SUPERSEDED}/*")):
            if _noteless(folder):
                notes.append(_or_said(folder, write_lost_note))
    stale = [d for d in run_directories(results, study) if clear_stale_progress(d)]
    if stale:
        shown = ", ".join(d.relative_to(study_dir).as_posix() for d in stale)
        notes.append(f"removed the progress marker ({store.PROGRESS}) a killed session left in "
                     f"{len(stale)} ended run{'s' if len(stale) != 1 else ''} of {study}: "
                     f"{shown}")  # fmt: skip
    return notes


def finish_note(tmp: Path) -> str:
    """Put the superseded run's note in place from its temporary file ``tmp``, whose writer
    is gone; say what was done."""
    folder = tmp.parent
    note = folder / store.SUPERSEDED_NOTE
    try:
        text = tmp.read_bytes().decode()
    except UnicodeDecodeError:
        text = ""
    if store.present(note):  # written since, by another hand: the temporary is a spare copy
        tmp.unlink()
        return f"removed {tmp}, a spare copy of {note} a killed repro left"
    if text.endswith("\n") and text.strip():
        os.replace(tmp, note)
        return f"finished {note}, which a killed repro wrote whole but did not put in place"
    write_lost_note(folder)
    tmp.unlink()
    return (f"wrote {note} again, saying why the run was moved aside is lost: the repro that "
            "moved it was killed while writing it")  # fmt: skip


def write_lost_note(folder: Path) -> str:
    """Write the note of a run moved aside whose mover was killed before it wrote why, from
    what the run holds; say what was done."""
    note = folder / store.SUPERSEDED_NOTE
    status = store.summary_status(folder) or "no summary"
    epochs = store.recorded_epochs(folder)
    store.write_text(note, f"{store.LOST_REASON}; it holds a run of {epochs} epochs "
                           f"({status})\n")  # fmt: skip
    return (f"wrote {note}, saying why the run was moved aside is lost: the repro that moved "
            "it was killed before it wrote why")  # fmt: skip


def _finish_moves(study_dir: Path) -> list[str]:
    """Finish the moves to .superseded/ (store.supersede_files) whose mover was killed midway:
    taking the run's lock does it (store.run_lock); one whose lock is held is under way."""
    notes = []
    for record in sorted(study_dir.glob(f"*/*/{store.SUPERSEDING}")):
        run_dir = record.parent
        intent = store.superseding(run_dir)
        try:
            with store.run_lock(run_dir, tidying=True):
                pass
        except store.LockHeld:
            continue
        except OSError as exc:  # a store this user may read, not write: status goes on
            notes.append(f"could not finish moving {run_dir} to {store.SUPERSEDED}/ "
                         f"({exc.strerror or exc}), which a killed repro began")  # fmt: skip
            continue
        if intent is not None and not store.present(record):
            notes.append(f"finished moving {run_dir}'s files to {intent.target}, which a killed "
                         f"repro began ({intent.reason}); none of its files is left in the "
                         "run's folder")  # fmt: skip
    return notes


def _remove_unmoved(tmp: Path) -> str:
    tmp.unlink(missing_ok=True)
    return (f"removed {tmp}: the repro that was moving {tmp.parent} to {store.SUPERSEDED}/ was "
            "killed before it did; the run stayed where it was, whole")  # fmt: skip


def _dead_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink() and dead(path, by_age=True)


def _noteless(folder: Path) -> bool:
    """A folder of .superseded/ with no note nor its temporary, older than any move takes."""
    if folder.is_symlink() or not folder.is_dir() or store.present(folder / store.SUPERSEDED_NOTE):
        return False
    return not any(folder.glob(f".{store.SUPERSEDED_NOTE}.*.tmp")) and dead(folder, by_age=True)


def _or_said(path: Path, finish) -> str:
    """``finish(path)``'s line, or, where the store may be read but not written (status goes
    on), what could not be done."""
    try:
        return finish(path)
    except OSError as exc:
        return (f"could not finish or remove {path} ({exc.strerror or exc}), which a killed "
                f"repro left while moving a run to {store.SUPERSEDED}/")  # fmt: skip


def _ended(run_dir: Path) -> bool:
    try:
        return store.read_summary(run_dir) is not None
    except store.DamagedFile:  # its repair is `repro run`'s, which takes the lock
        return False


def clear_stale_progress(run_dir: Path) -> bool:
    """Remove ``progress.json`` from a run whose summary says it ended, unless a process
    holds the run's lock (then it is training the run again, and the marker is its own)."""
    if not (run_dir / store.PROGRESS).is_file() or not _ended(run_dir):
        return False
    with contextlib.suppress(store.LockHeld, OSError), store.run_lock(run_dir, tidying=True):
        if _ended(run_dir):  # asked again under the lock: a new session may have begun
            (run_dir / store.PROGRESS).unlink(missing_ok=True)
            return True
    return False

"""What a killed repro left in a study's folders, finished or removed by the next `repro run`
or `repro status` on it, and said.

- A probe file (harness.outputs.probe) in the store's folder, empty: removed once its
  maker is gone (harness.leftovers).
- The note saying why a run was moved to ``.superseded/`` (store.supersede), still under
  its temporary name because the mover was killed before the rename: finished where its
  text is whole (it ends with its newline), else written again from what the moved run
  holds, saying that why it was moved is lost.
- ``progress.json`` in a run whose summary says it ended: a session writes its summary,
  then removes the marker, and was killed between the two. Status and report never read it
  there (store.inspect reads it only while the run's lock is held), so it never showed the
  run as running; it is removed under the run's lock, so never from a run being trained.

Nothing whose maker may still be at it is touched (harness.leftovers.dead).
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
        for tmp in sorted(study_dir.glob(f"*/{store.SUPERSEDED}/*/.{store.SUPERSEDED_NOTE}.*.tmp")):
            if tmp.is_file() and not tmp.is_symlink() and dead(tmp, by_age=True):
                try:
                    notes.append(finish_note(tmp))
                except OSError as exc:  # a store this user may read, not write: status goes on
                    notes.append(f"could not put {tmp} in place as {store.SUPERSEDED_NOTE} "
                                 f"({exc.strerror or exc}); a killed repro left it")  # fmt: skip
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
    status = store.summary_status(folder) or "no summary"
    epochs = store.recorded_epochs(folder)
    store.write_text(note, "moved aside by a repro that was killed before it wrote why; it "
                           f"holds a run of {epochs} epochs ({status})\n")  # fmt: skip
    tmp.unlink()
    return (f"wrote {note} again, saying why the run was moved aside is lost: the repro that "
            "moved it was killed while writing it")  # fmt: skip


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
    with contextlib.suppress(store.LockHeld, OSError), store.run_lock(run_dir):
        if _ended(run_dir):  # asked again under the lock: a new session may have begun
            (run_dir / store.PROGRESS).unlink(missing_ok=True)
            return True
    return False

"""A study file that shares its ``name:`` with another file: whose runs the store holds.

The store keys a run by study name, experiment and seed, so a copy of a study that keeps the
original's name plans the original's run directories. A run there made with another config
is, for an edited study, stale: `repro run` moves it to .superseded/ and trains the run again
(runner._decide). But where another study file made it, and that file still plans the run
with the config it was made with, the run is that file's result, maybe hours of GPU: training
over it would take it out of the original's report and spend the hours again, unasked. So
`repro run` refuses before anything trains (runner.pending_runs), unless told to supersede
such runs (--supersede, or --force, which redoes every run), and `repro status` says so.

Which file made a run is what its summary records (``study_file``, resolved when it trained).
That file still claims the run where it exists, is another file than the one run now (the
same file reached from another working directory or through a link is not another file, nor
is the same path in another checkout of the project: a pulled edit is an edit, not a copy),
still has this study's name, and plans the run's experiment and seed with the hash the run
was made with. Anything else (an edited study, an original moved or deleted since, a run that
recorded no file, a summary that cannot be read) is superseded as before: refusing there
would stop a user for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import store
from harness.plan import Overrides, PlanError, RunPlan, plan
from harness.schema import Study
from harness.studyfile import StudyError, load_study


@dataclass(frozen=True)
class Displaced:
    """A run of this study name that another study file made and still plans."""

    plan: RunPlan
    status: str
    epochs_done: int
    other_file: Path


def displaced_runs(plans: list[RunPlan], results: Path, overrides: Overrides) -> list[Displaced]:
    """The planned runs whose directories hold another study file's result (see above)."""
    loaded: dict[Path, Study | None] = {}
    found = []
    for p in plans:
        run_dir = p.directory(results)
        # Its config's hash first: the study's own runs (nearly all) are not read further,
        # so that `repro run` and `repro status` on a large store do not read them twice.
        config = store.read_json(run_dir / store.CONFIG)
        if not isinstance(config, dict) or config.get("hash") in (None, p.hash):
            continue
        state = store.inspect(run_dir)
        if state.config_hash is None or state.config_hash == p.hash:
            continue
        # A run with nothing done costs nothing to redo; a damaged or misplaced one is
        # repaired or moved aside by its own rules; a busy one is left to its process.
        if state.status not in (*store.FINAL, store.PAUSED, store.INTERRUPTED, store.FAILED):
            continue
        if state.status not in store.FINAL and state.epochs_done < 1:
            continue
        other = claimant(p, run_dir, state.config_hash, overrides, loaded)
        if other is not None:
            found.append(Displaced(p, state.status, state.epochs_done, other))
    return found


def claimant(p: RunPlan, run_dir: Path, made_with: str, overrides: Overrides,
             loaded: dict[Path, Study | None]) -> Path | None:  # fmt: skip
    """The other study file that made the run in ``run_dir`` (with config hash
    ``made_with``) and still plans it so; None where there is none. ``loaded`` caches the
    study files read."""
    if p.study_file is None:
        return None
    try:
        recorded = (store.read_summary(run_dir) or {}).get("study_file")
    except store.DamagedFile:
        return None
    if not recorded:
        return None
    there, here = Path(recorded), Path(p.study_file).resolve()
    if not _another_file(there, here):
        return None
    if there not in loaded:
        try:
            loaded[there] = load_study(there)
        except (StudyError, OSError, ValueError):
            loaded[there] = None  # it cannot plan anything, so it claims nothing
    study = loaded[there]
    if study is None or study.name != p.study:
        return None
    # The run's own overrides (--smoke, --epochs, --subset) are in its directory's label,
    # which is this plan's: the other file's run of that directory is planned with them.
    asked = Overrides(only=(p.experiment.name,), seeds=p.seed + 1, epochs=overrides.epochs,
                      subset=overrides.subset, smoke=overrides.smoke)  # fmt: skip
    try:
        planned = plan(study, asked, str(there))
    except (PlanError, ValueError):  # it has no such experiment any more
        return None
    if any(r.seed == p.seed and r.name == p.name and r.hash == made_with for r in planned):
        return there
    return None


def _another_file(there: Path, here: Path) -> bool:
    """Whether the recorded study file ``there`` is a file of its own beside ``here``, the
    one run now: it exists, is not ``here`` by another path, and is not ``here``'s path in
    another checkout of the project."""
    try:
        if not there.is_file() or there.samefile(here):
            return False
    except OSError:  # gone, or unreadable: a moved original is not a copy
        return False
    a, b = _within_checkout(there), _within_checkout(here)
    return a is None or a != b


def _within_checkout(path: Path) -> Path | None:
    """The path of ``path`` inside the git checkout that holds it; None outside one."""
    for folder in path.resolve().parents:
        if (folder / ".git").exists():
            return path.resolve().relative_to(folder)
    return None


def refusal(displaced: list[Displaced], study_file: str, command: str = "repro run") -> str:
    """What ``command`` (`repro run`, `repro queue`) says as it refuses: which runs, which two
    files, and the ways out."""
    others = sorted({str(d.other_file) for d in displaced})
    made_by = others[0] if len(others) == 1 else " and ".join(others)
    shown = [f"{d.plan.name} ({d.status}, {_epochs(d.epochs_done)})" for d in displaced[:5]]
    more = f", and {len(displaced) - 5} more" if len(displaced) > 5 else ""
    return (
        f"{study_file} has the study name {displaced[0].plan.study!r}, as {made_by} "
        f"{'does' if len(others) == 1 else 'do'}; these runs of that name in the store were "
        f"made by {made_by}, which still plans them with another config than "
        f"{study_file}'s: {', '.join(shown)}{more}. Training them under {study_file} would "
        "move them to .superseded/ and take them out of that study's report, so nothing was "
        f"trained. To keep both, give {study_file} a name of its own (its `name:` line). To "
        f"replace those runs with {study_file}'s on purpose, run `{command}` again with "
        "--supersede (they "
        "are moved to .superseded/, not deleted)."
    )


def status_text(other_file: Path) -> str:
    """What `repro status` says of a run another study file made and still plans."""
    return (f"made by {other_file}, which still plans it as it was made: `repro run` "
            "refuses to train over it (give this study file a name of its own, or supersede "
            "it on purpose with --supersede)")  # fmt: skip


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"

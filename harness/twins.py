"""Twin runs: a training that two studies declare alike is trained once.

Studies may declare the same training: studies/degradation.yaml and studies/shortcuts.yaml
both train park-resnet56 with the same recipe, and studies/he2015_table6.yaml shares
he-resnet20 and he-resnet56 with the degradation study. The store keys a run by its resolved
config (harness.plan.resolved_config: the model spec, the recipe after overrides, the seed
and the override label; names, notes and claims are not in it): a run directory holding
another config is moved aside and trained again (runner._decide). Runs of two studies with
equal configs are therefore the same training, and once one of them is complete the other
adopts it instead of training: the twin's files are copied into the adopting run's own
directory, which is then an ordinary run of its own study (report, status, export, import
and the damage checks read it like any other), and its summary names the run that trained
(``shared_with``).

Strict, because a wrong adoption puts one training's numbers under another's name: the
config must be equal as a whole (not only its hash), the twin complete (not diverged,
paused or damaged) and not being trained, and it must have run in the precision and
pipeline that this command trains in, on the same copy of the data: what the report treats
as one kind of evidence. `repro run --force` trains anyway.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import store
from harness.data import shown_apart
from harness.execution import label
from harness.plan import RunPlan

SHARED_WITH = "shared_with"  # summary field: the run that did the training this one adopted
STAGE = store.ADOPTING  # inside the adopting run's directory while its copy is checked
# Copied in this order, the summary last: until it lands the run reads as unfinished.
COPIED = (store.CONFIG, store.ENVIRONMENT, store.METRICS, store.CHECKPOINT, store.SUMMARY)
# What the adopting study says of its run in the copied summary; the rest is the training's.
OWN_FIELDS = ("study", "experiment", "study_file", "counts_as_reproduction")


class NotAdopted(Exception):
    """The twin's files changed while they were copied (retrained, moved aside)."""


@dataclass(frozen=True)
class Twin:
    run_dir: Path
    name: str  # <study>/<experiment>/seed-<k>[~label], as the store places it
    summary: dict

    @property
    def origin(self) -> str:
        """The run that did the training: the twin, or the run the twin adopted in turn."""
        return self.summary.get(SHARED_WITH) or self.name


def complete_twins(p: RunPlan, results: Path) -> list[Twin]:
    """The complete runs of other studies in the store whose config is exactly ``p``'s, in
    store order; whether they ran as this command would train is ``mismatch``'s to say."""
    config = {"hash": p.hash, **p.config}
    found = []
    for run_dir in _same_seed_dirs(p, results):
        if store.read_json(run_dir / store.CONFIG) != config or store.is_locked(run_dir):
            continue
        if store.inspect(run_dir).status != store.COMPLETE:  # also checks its files agree
            continue
        try:
            summary = store.read_summary(run_dir)
        except store.DamagedFile:  # replaced between the two reads
            continue
        if summary is not None:
            found.append(Twin(run_dir, "/".join(run_dir.parts[-3:]), summary))
    return found


def _same_seed_dirs(p: RunPlan, results: Path) -> Iterator[Path]:
    """Run directories of other studies named as ``p``'s is (seed and label are in the
    config, so a twin's directory has the same name; its experiment's may differ)."""
    if not results.is_dir():
        return
    name = p.directory(results).name
    for study_dir in sorted(results.iterdir()):
        if study_dir.name == p.study or study_dir.name.startswith(".") or not study_dir.is_dir():
            continue
        for exp_dir in sorted(study_dir.iterdir()):
            if not exp_dir.name.startswith(".") and (exp_dir / name / store.CONFIG).is_file():
                yield exp_dir / name


def mismatch(twin: Twin, precision: str, pipeline: str, fingerprint: str) -> str | None:
    """Why the twin is not the training this command would do (None when it is): every
    session of it in ``precision`` and ``pipeline``, on the data of ``fingerprint``."""
    ran = executions(twin.summary)
    if ran != {(precision, pipeline)}:
        shown = " + ".join(sorted(label(*r) for r in ran)) or "an unrecorded execution"
        return f"it ran in {shown}, this command trains in {label(precision, pipeline)}"
    # A run that trained on two copies (its sessions say so) is no training on one.
    theirs = set(store.data_fingerprints(twin.summary))
    if theirs != {fingerprint}:
        *recorded, here = shown_apart(*sorted(f for f in theirs if f), fingerprint)
        shown = " + ".join(recorded) or "not recorded"
        return f"it was trained on other data ({shown}, here {here})"
    return None


def first_adoptable(
    found: list[Twin], precision: str, pipeline: str, fingerprint: str | None
) -> tuple[Twin | None, list[tuple[Twin, str]]]:
    """The first of ``found`` that is the training this command would do (see mismatch), and
    why each twin before it is not. The one rule by which `repro run` adopts a twin and
    `repro status` says it will. ``fingerprint`` None: the data is not here to check, so each
    twin is judged on the data it trained on (only one trained on two copies is refused)."""
    unlike = []
    for twin in found:
        data = fingerprint if fingerprint is not None else store.data_fingerprints(twin.summary)[0]
        if (why := mismatch(twin, precision, pipeline, data)) is None:
            return twin, unlike
        unlike.append((twin, why))
    return None, unlike


def executions(summary: dict) -> set[tuple[str | None, str | None]]:
    """(precision, pipeline) of every session of a run, as its summary records them."""
    recorded = {(s.get("precision"), s.get("pipeline"))
                for s in summary.get("sessions") or [] if s.get("precision")}  # fmt: skip
    if recorded:
        return recorded
    ex = summary.get("execution") or {}
    return {(ex.get("precision"), ex.get("pipeline"))} if ex.get("precision") else set()


def adopt(
    p: RunPlan, run_dir: Path, twin: Twin, attempt: str | None = None
) -> tuple[dict, Path | None]:
    """Make ``run_dir`` (whose lock the caller holds) ``p``'s copy of the twin's training;
    return its summary and where what the run's directory held went (``attempt`` says what
    it was: "paused", "interrupted", "pending"...; None when the directory held nothing).

    The copy is made and checked (complete, with ``p``'s config, files that agree) in a stage
    inside the run's directory before anything of the run is touched; whatever the directory
    then holds (an earlier attempt, a pending run's config and environment, what a repair
    kept aside or could not read: runner._recover) is moved to .superseded/, never deleted
    nor written over. The checkpoint comes along (hard-linked where the file system allows;
    files are only ever replaced, never written in place): it is what `repro run` rebuilds a
    damaged run's curves and summary from. NotAdopted when the twin's files changed
    meanwhile; the run is then as it was.
    """
    stage = run_dir / STAGE  # one an adoption killed midway left went as the lock was taken
    stage.mkdir(parents=True)
    try:
        summary = _stage_copy(p, twin, stage)
        moved = None
        if held(run_dir):
            what = f"this {attempt} attempt" if attempt else "what this run's directory held"
            moved = store.supersede_files(run_dir, f"its complete twin {twin.origin} was "
                                                   f"adopted over {what}",
                                          keep=(store.LOCK, STAGE))  # fmt: skip
        for name in COPIED:
            if (stage / name).exists():
                os.replace(stage / name, run_dir / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return summary, moved


def held(run_dir: Path) -> list[str]:
    """What a run's directory holds besides its lock and an adoption's stage: what adopt
    moves to .superseded/ before it writes the twin's files."""
    if not run_dir.is_dir():
        return []
    return sorted(c.name for c in run_dir.iterdir() if c.name not in (store.LOCK, STAGE))


def _stage_copy(p: RunPlan, twin: Twin, stage: Path) -> dict:
    for name in COPIED:
        source = twin.run_dir / name
        if name == store.CHECKPOINT and source.exists():
            _link_or_copy(source, stage / name)
        elif source.exists():
            shutil.copy2(source, stage / name)
    try:
        copied = store.read_summary(stage)
    except store.DamagedFile as exc:
        raise NotAdopted(f"its summary changed while it was copied ({exc})") from None
    if copied is None:
        raise NotAdopted("its summary went away while it was copied")
    own = {"study": p.study, "experiment": p.experiment.name,
           "study_file": str(Path(p.study_file).resolve()) if p.study_file else None,
           "counts_as_reproduction": p.counts_as_reproduction}  # fmt: skip
    summary = {**copied, **own, SHARED_WITH: copied.get(SHARED_WITH) or twin.name}
    store.write_json(stage / store.SUMMARY, summary)
    state = store.inspect(stage)
    if state.status != store.COMPLETE or state.config_hash != p.hash:
        raise NotAdopted(f"its files changed while they were copied ({state.status}"
                         f"{': ' + state.detail if state.detail else ''})")  # fmt: skip
    return summary


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, target)

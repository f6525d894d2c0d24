"""Reading the run store back: one record per run directory, and the curves as a frame.

Works on whatever is there: finished runs, runs in progress (no summary yet, metrics so
far), interrupted and failed ones. Superseded runs (``.superseded/``) are ignored.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness import store

if TYPE_CHECKING:  # pandas is imported by curves_frame, the report's, when it is called
    import pandas as pd

_SEED_DIR = re.compile(r"^seed-(?P<seed>\d+)(?:~(?P<label>[A-Za-z0-9_.-]+))?$")


@dataclass
class RunRecord:
    study: str
    experiment: str
    seed: int
    label: str
    path: Path
    status: str
    config_hash: str | None
    summary: dict | None
    environment: dict | None
    history: list[dict] = field(repr=False, default_factory=list)
    damage: str | None = None  # why a damaged run's files cannot be read, or a misplaced
    # run's record disagrees with its folder (harness.placement)
    # Why its environment.json was ignored (file, field, value); the run itself may count.
    environment_damage: str | None = None

    @property
    def name(self) -> str:
        suffix = f"~{self.label}" if self.label else ""
        return f"{self.study}/{self.experiment}/seed-{self.seed}{suffix}"

    @property
    def data(self) -> dict:
        return (self.summary or {}).get("data") or {}

    def value(self, key: str):
        """A summary figure, or None while the run has no summary."""
        return (self.summary or {}).get(key)


def environment_ignored(damage: str, *, resumes: bool = False) -> str:
    """What an ignored environment.json (``damage``: its file, field and value) costs the run,
    for `repro report` and `repro status`; a run that ``resumes`` (paused, interrupted, failed)
    gets a new one from its next session (harness.train.keep_a_damaged_environment)."""
    if resumes:
        return f"{damage}: ignored; `repro run` keeps it aside when it next trains the run"
    return f"{damage}: ignored; the run counts for its accuracy, never for speed or device claims"


def scan(results: Path, study: str | None = None) -> list[RunRecord]:
    """Every run directory under ``results`` (``<study>/<experiment>/seed-<k>[~label]``), or
    only ``study``'s: what `repro export` packs, which read every study's runs to keep one's."""
    return [_read(run_dir.parent.parent.name, run_dir.parent.name, m, run_dir)
            for run_dir, m in _run_dirs(results, study)]  # fmt: skip


def run_directories(results: Path, study: str) -> list[Path]:
    """The run directories of one study that scan would read, without reading them: for
    `repro status`, which reads each run itself (scanning the whole store once per study
    read every run's files once per study)."""
    return [run_dir for run_dir, _ in _run_dirs(results, study)]


def recorded_study_files(results: Path) -> list[tuple[str, str | None]]:
    """(study, the study file its summary records) for every run under ``results``, reading
    the summaries alone: how `repro status`, which reads each run itself, finds the studies of
    a store outside a checkout without reading every run's curves first. A summary that does
    not read names none."""
    found = []
    for run_dir, _ in _run_dirs(results):
        summary = None
        with contextlib.suppress(store.DamagedFile):
            summary = store.read_summary(run_dir)
        found.append((run_dir.parent.parent.name, (summary or {}).get("study_file")))
    return found


def _run_dirs(results: Path, study: str | None = None) -> list[tuple[Path, re.Match]]:
    """Run directories (with their name's match), of every study or of ``study``."""
    found = []
    if not results.is_dir():
        return found
    studies = [results / study] if study is not None else _listing(results)
    for study_dir in sorted(p for p in studies if p.is_dir()):
        for exp_dir in sorted(p for p in _listing(study_dir) if p.is_dir()):
            if exp_dir.name.startswith("."):
                continue
            for run_dir in sorted(_listing(exp_dir)):
                m = _SEED_DIR.match(run_dir.name)
                if not (m and run_dir.is_dir()):
                    continue
                _listing(run_dir)  # one this user may not read is said, not read as pending
                found.append((run_dir, m))
    return found


def _listing(folder: Path) -> list[Path]:
    """What ``folder`` holds; one that cannot be listed is store.CannotRead, and one gone
    since it was seen (moved aside by another command) holds nothing."""
    try:
        return list(folder.iterdir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise store.CannotRead(folder, exc) from None


def _read(study: str, experiment: str, m: re.Match, run_dir: Path) -> RunRecord:
    state, files = store.read_run(run_dir)  # each file parsed once, as inspect read it
    environment, environment_damage = store.environment_or_damage(run_dir)
    if state.status in (store.DAMAGED, store.MISPLACED):
        # Listed with what is wrong, never counted; what can be read is kept for the page (a
        # misplaced run's curves are another folder's: not drawn as this one's).
        return RunRecord(study, experiment, int(m["seed"]), m["label"] or "", run_dir,
                         state.status, state.config_hash, None, environment,
                         damage=state.detail, environment_damage=environment_damage)  # fmt: skip
    if files is not None:
        summary, history = files.summary, files.rows
    else:
        # A run being trained reads as running even where a file does not read (inspect: it
        # may be mid-write); what does not read is left out, never a traceback, and nothing of
        # it counts.
        summary, history = None, []
        with contextlib.suppress(store.DamagedFile):
            summary = store.read_summary(run_dir)
        with contextlib.suppress(store.DamagedFile):
            history = store.read_jsonl(run_dir / store.METRICS)
    return RunRecord(
        study=study,
        experiment=experiment,
        seed=int(m["seed"]),
        label=m["label"] or "",
        path=run_dir,
        status=state.status,
        config_hash=state.config_hash,
        summary=summary,
        environment=environment,
        history=history,
        environment_damage=environment_damage,
    )


_EVALUATION_DIR = re.compile(r"^data-[0-9a-f]+$")


@dataclass
class EvaluationRecord:
    """A released checkpoint evaluated on one copy of the data (see harness.evaluate)."""

    study: str
    checkpoint: str
    path: Path  # <results>/<study>/<checkpoint>/data-<fingerprint[:12]>
    record: dict | None  # evaluation.json; None when it cannot be read
    damage: str | None = None

    @property
    def name(self) -> str:
        return f"{self.study}/{self.checkpoint}/{self.path.name}"

    @property
    def data(self) -> dict:
        return (self.record or {}).get("data") or {}

    def value(self, key: str):
        return (self.record or {}).get(key)


def scan_evaluations(results: Path) -> list[EvaluationRecord]:
    """Every checkpoint evaluation under ``results``; an unreadable one is listed as damaged
    (never counted), so a torn file cannot stop a report."""
    found = []
    if not results.is_dir():
        return found
    # The folders, then their record: a glob for the record itself passes over a link that
    # leads nowhere, and the evaluation read "not evaluated" rather than damaged.
    for run_dir in sorted(results.glob("*/*/data-*")):
        path = run_dir / store.EVALUATION
        if not _EVALUATION_DIR.match(run_dir.name) or run_dir.parent.name.startswith("."):
            continue
        if not (run_dir.is_dir() and store.present(path)):
            continue
        try:
            record, damage = store.read_evaluation(path), None
        except store.DamagedFile as damaged:
            record, damage = None, str(damaged)
        found.append(EvaluationRecord(
            study=run_dir.parent.parent.name, checkpoint=run_dir.parent.name, path=run_dir,
            record=record, damage=damage,
        ))  # fmt: skip
    return found


def curves_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per (run, epoch): the curves the report draws."""
    # Imported here, not with the module: `repro run` and each of its workers read the store
    # through this module (runner -> tidy) and never draw a curve; pandas cost every one of
    # those processes 0.3 s of start-up.
    import pandas as pd

    rows = [
        {
            "study": r.study,
            "experiment": r.experiment,
            "seed": r.seed,
            "label": r.label,
            "epoch": h["epoch"],
            "iteration": h["iteration"],
            "lr": h["lr"],
            "train_loss": h["train_loss"],
            "train_error": h["train_error"],
            "test_error": h["test_error"],
        }
        for r in records
        for h in r.history
    ]
    columns = ["study", "experiment", "seed", "label", "epoch", "iteration", "lr",
               "train_loss", "train_error", "test_error"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)

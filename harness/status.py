"""`repro status`: where every run of a study stands, from the store and the scheduler.

A run is pending, queued (submitted, not started), running (epoch x of y), interrupted (by a
signal), paused (by a time budget; both resume), complete, diverged, failed (with the error
and the tail of its log) or damaged (a file that cannot be read back, or of the wrong shape;
with what `repro run` will do: keep it aside and rebuild it from the checkpoint, or train the
run again where the checkpoint cannot serve; how far it got, by the furthest epoch its
curves or summary still attest, or "?" where neither reads). A released checkpoint is not evaluated,
evaluated (on which data) or damaged. A run adopted from a twin in another study
(harness.twins) says which run did its training; a run `repro run` would train whose twin
is complete says whether `repro run` adopts the twin (it does so before it would resume, or
refuse, the run's own attempt) or not, and why. A run whose environment.json cannot be
read or holds a field of the wrong type says that the file is ignored, as `repro report`
does, and what that costs. When the scheduler says a run's job ended in failure but the run
never recorded an ending (killed for memory, node lost), the run is marked failed here, with
its log path, so nothing goes missing.
A run that `repro run` would resume (paused, interrupted, failed) says which data it began
on and, where the data `repro run` would use is here (:class:`DataCheck`), whether it would
resume the run on it or refuse it; and, where it has epochs to resume, what precision and
pipeline it ran in, with the flags to give where `repro run`'s defaults here would be refused.
A run made with another config than the study's now, ended or not, says that `repro run`
moves it to .superseded/ and trains it again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import store
from harness.copies import displaced_runs, status_text
from harness.data import Cifar10, DataError, load_cached, locate, shown_apart
from harness.execution import Execution, label
from harness.executors import TERMINAL_FAILURES, job_state
from harness.placement import WHAT_TO_DO
from harness.plan import Overrides, plan
from harness.plural import plural
from harness.results import environment_ignored, run_directories, scan_evaluations
from harness.runner import made_with_another_config, state_after_recovery, summary_or_checkpoint
from harness.schema import Study
from harness.tidy import tidy_study
from harness.twins import SHARED_WITH, Twin, complete_twins, first_adoptable, held


@dataclass
class StatusRow:
    run: str
    state: str
    epochs: str
    detail: str
    log_tail: list[str] = field(default_factory=list)


def _tail(path: Path, lines: int = 5) -> list[str]:
    try:
        text = path.read_text(errors="replace").rstrip().splitlines()
    except FileNotFoundError:
        return []
    return text[-lines:]


def _log_of(run_dir: Path) -> Path | None:
    job = store.read_job(run_dir) or {}
    stderr = job.get("stderr")
    for candidate in (run_dir / store.ERROR, Path(stderr) if isinstance(stderr, str) else None,
                      run_dir / store.WORKER_LOG):  # fmt: skip
        # is_file: a directory under a log's name is no log (and cannot be read as one)
        if candidate is not None and candidate.is_file():
            return candidate
    return None


# What `repro run` resumes from its checkpoint: where the data it began on matters.
RESUMABLE = (store.PAUSED, store.INTERRUPTED, store.FAILED)


@dataclass
class DataCheck:
    """The data `repro run` would use here (--data-dir, else $REPRO_DATA_DIR, else the cache;
    never downloaded), read once and only when a run to resume, or a run with a complete twin
    (twin_note), needs it: its fingerprint reads every image, which costs `repro status`
    under a second on CIFAR-10 (measured: README, "Running a study"). Not found: nothing is
    checked, and ``note`` says so where the check was ``asked`` for (--check-data or
    --data-dir); by default a machine without the data stays quiet."""

    data_dir: Path | None = None
    asked: bool = False
    note: str = ""
    _data: Cifar10 | None = field(default=None, repr=False)
    _tried: bool = field(default=False, repr=False)

    def data(self) -> Cifar10 | None:
        if not self._tried:
            self._tried = True
            try:
                self._data = load_cached(locate(self.data_dir, download=False))
            except (DataError, OSError) as exc:  # OSError: a file it may not read
                if self.asked:
                    self.note = (f"note: no data set to check the runs to resume against "
                                 f"({str(exc).splitlines()[0]}); whether `repro run` would "
                                 "resume them is not known")  # fmt: skip
        return self._data


def began_on(summary: dict, here: Cifar10 | None = None) -> str:
    """The data a run began on, as the report names it: "data ccecff3e0fe7 (not the official
    release)"; "" where not recorded. `repro run` resumes a run only on this data. Shown
    beside the data ``here``, as long as it takes to differ from it (data.shown_apart)."""
    fingerprint = store.data_fingerprints(summary)[0]
    if not fingerprint:
        return ""
    sessions = [s for s in summary.get("sessions") or [] if s.get("dataset_fingerprint")]
    official = (sessions[0] if sessions else summary.get("data") or {}).get("official")
    which = {True: "official release", False: "not the official release"}.get(official)
    shown = shown_apart(fingerprint, *([here.fingerprint] if here else []))[0]
    return f"data {shown}" + (f" ({which})" if which else "")


def data_verdict(run_dir: Path, data: Cifar10, summary: dict) -> str:
    """Whether `repro run` on ``data`` resumes the run or refuses it (runner.data_conflict,
    the very check it makes), or, with no checkpoint, starts it over; the data here is shown
    as long as it takes to differ from the data the run began on (``summary``'s, as began_on
    shows it)."""
    from harness.runner import data_conflict

    began = store.data_fingerprints(summary)[0] or data.fingerprint
    shown = shown_apart(began, data.fingerprint)[1]
    here = f"{shown}, {'official' if data.official else 'not official'}"
    if not (run_dir / store.CHECKPOINT).exists():  # nothing to resume, so nothing to mix
        return f"no epoch to resume: `repro run` starts it over on the data here ({here})"
    if data_conflict(run_dir, data) is None:
        return f"resumes on the data here ({here})"
    return (f"`repro run` would REFUSE to resume it on the data here ({here}): finish it where "
            "the data it began on is, or redo it with --force")  # fmt: skip


def default_execution() -> Execution:
    """How `repro run` trains on this machine when given no --device, --precision or
    --pipeline: what status checks a run to resume (and a twin to adopt) against."""
    from harness.runner import RunOptions, execution_for

    return execution_for(RunOptions())


def execution_note(run_dir: Path) -> str:
    """What a run to resume ran in and, where `repro run`'s defaults here would be refused
    (runner.execution_conflict, the very check it makes), the flags that resume it; "" where
    nothing is to resume (it starts over in whatever it is given) or nothing was recorded."""
    from harness.runner import execution_conflict, first_execution

    first = first_execution(run_dir)
    if first is None or not (run_dir / store.CHECKPOINT).exists():
        return ""
    text = f"ran in {label(*first)}"
    ex = default_execution()
    if execution_conflict(run_dir, ex) is None:
        return text
    flags = [f"--{what} {began}" for what, began, default in
             (("precision", first[0], ex.precision), ("pipeline", first[1], ex.pipeline))
             if began != default]  # fmt: skip
    return f"{text}, not `repro run`'s default here ({ex.label}): resume it with {' '.join(flags)}"


@dataclass
class TwinNote:
    text: str
    adopts: bool  # known to be adopted: what the run would otherwise do does not happen
    maybe: bool = False  # adopted if the data here is what the twin trained on: not known


def twin_note(found: list[Twin], check: DataCheck | None, attempt: bool) -> TwinNote:
    """What `repro run` with its defaults here does with a run whose twins (``found``) are
    complete, as runner._adopt decides it: the first that ran in its execution on the data
    here is adopted, before the run's own resume could be refused (``attempt``: there is
    one, which is moved to .superseded/). Without the data here, the twin's data is named."""
    ex = default_execution()
    data = check.data() if check is not None else None
    here = data.fingerprint if data is not None else None
    twin, unlike = first_adoptable(found, ex.precision, ex.pipeline, here)
    if twin is None:
        twin, why = unlike[0]
        return TwinNote(f"its twin {twin.name} is complete but `repro run` here does not adopt it: "
                        f"{why}", adopts=False)  # fmt: skip
    if data is None:
        theirs = store.data_fingerprints(twin.summary)[0]
        shown = shown_apart(theirs)[0] if theirs else "not recorded"
        return TwinNote(f"its twin {twin.name} is complete ({ex.label}, data {shown}): "
                        "`repro run` adopts it if it trains on that data",
                        adopts=False, maybe=True)  # fmt: skip
    moved = ", moving this attempt to .superseded/" if attempt else ""
    return TwinNote(f"its twin {twin.name} is complete and ran as `repro run` trains here "
                    f"({ex.label}, on the data here): `repro run` adopts it{moved}",
                    adopts=True)  # fmt: skip


# What to do with a misplaced run in a folder its study does not plan: it trains nothing there,
# so there is no twin to adopt (placement.WHAT_TO_DO is for a planned run's folder).
UNPLANNED_TO_DO = "move it back to where it belongs, or delete it"
# A run folder the study plans no run in (a seed or experiment it no longer has), damaged or
# unfinished: `repro run` goes through the planned runs only, so it neither repairs, resumes
# nor trains it, whatever the same state of a planned run would bring.
UNPLANNED = ("the study plans no run here, so `repro run` leaves it as it is (to go on with "
             "it, plan it in the study again)")  # fmt: skip


def row_for(name: str, run_dir: Path, planned_hash: str | None = None,
            check: DataCheck | None = None,
            twins: Callable[[], list[Twin]] | None = None,
            repaired: Callable[[], store.RunState | None] | None = None,
            made_by: Path | None = None, planned: bool = True) -> StatusRow:  # fmt: skip
    """``twins``: the complete twins of the planned run (harness.twins), asked for only
    where `repro run` would train it; ``repaired``: what a damaged run is once `repro run`
    has repaired it (runner.state_after_recovery), asked for only when it has twins;
    ``made_by``: the other study file of the same name that made the run and still plans it
    (harness.copies), which `repro run` refuses to supersede; ``planned``: False for a run
    folder the study plans no run in (UNPLANNED), which `repro run` leaves as it is."""
    if (blocking := store.file_in_the_way(run_dir)) is not None:
        return StatusRow(name, store.DAMAGED, "?", f"{blocking} is a file where a directory "
                         "belongs; `repro run` keeps it aside (renamed) and trains the "
                         "run")  # fmt: skip
    state = store.inspect(run_dir)
    if state.status == "absent":  # nothing on disk yet: to the user, it is pending
        state = store.RunState("pending")
    scheduler = job_state(run_dir)
    if scheduler in TERMINAL_FAILURES and state.status not in (*store.FINAL, store.FAILED):
        log = _log_of(run_dir)
        store.mark_failed(run_dir, f"job ended {scheduler} (log: {log})")
        state = store.inspect(run_dir)
    try:
        summary = store.read_summary(run_dir) or {}
    except store.DamagedFile:
        summary = {}
    progress = store.read_json(run_dir / store.PROGRESS)
    progress = progress if isinstance(progress, dict) else {}
    total = summary.get("epochs_total") or progress.get("epochs")
    done: int | str = state.epochs_done
    if state.status == store.DAMAGED:  # inspect says 0: what its readable records say, or ?
        on_record = store.epochs_on_record(run_dir)
        done = "?" if on_record is None else on_record
    epochs = f"{done}/{total}" if total else str(done or "")
    detail, tail = "", []
    if state.status == "running":
        detail = f"on {state.detail}" if state.detail else ""
    elif state.status == "queued":
        detail = f"{state.detail}" + (f", scheduler: {scheduler}" if scheduler else "")
    elif state.status == store.COMPLETE and summary.get("test_error") is not None:
        detail = f"test error {summary['test_error']:.2f}%"
    if state.status == store.COMPLETE and summary.get(SHARED_WITH):
        detail = (detail + f" (shared with {summary[SHARED_WITH]})").strip()
    elif state.status == store.MISPLACED and planned_hash is None:
        # A folder the study plans no run in (seed-1 of a one-seed study): `repro run` goes
        # through the planned runs only (runner.pending_runs), so it never touches this one.
        detail = (f"{state.detail}; the study plans no run here, so `repro run` leaves it as it "
                  f"is: {UNPLANNED_TO_DO}")  # fmt: skip
    elif state.status == store.MISPLACED:  # what `repro run` does next: with its twin, below
        detail = f"{state.detail}; {WHAT_TO_DO} (`repro run` moves it aside{{trains}})"
    elif state.status == store.DAMAGED and not planned:  # not repaired: see UNPLANNED
        detail = f"{state.detail}; {UNPLANNED}"
    elif state.status == store.DAMAGED:
        from harness.runner import damage_repair

        repair = damage_repair(run_dir, planned_hash)
        detail = f"{state.detail}; {repair}"
    elif state.status == store.DIVERGED:
        detail = f"loss NaN at epoch {(summary.get('diverged_at') or {}).get('epoch')}"
    elif state.status == store.FAILED:
        detail = summary.get("error") or "failed"
        log = _log_of(run_dir)
        tail = _tail(log) if log else []
        if log:
            detail += f" [log: {log}]"
    job = store.read_job(run_dir)
    if job and state.status not in ("queued",):
        detail = (detail + f" (job {job['job_id']})").strip()
    if not planned and state.status in (*RESUMABLE, "pending"):  # not resumed nor trained
        detail = (f"{detail}; " if detail else "") + UNPLANNED
    # A planned run made with another config, ended or not, is not kept: `repro run` moves it
    # aside and trains it again on the data here (runner._decide), so no data of its own is in
    # question; a complete one read as done while it is to cost its training again.
    superseded = (state.status in (*RESUMABLE, *store.FINAL)
                  and None not in (planned_hash, state.config_hash)
                  and made_with_another_config(state, planned_hash))  # fmt: skip
    # What `repro run` does next with a run it would train: a complete twin may be adopted
    # first (runner._train_in_turn adopts before it claims, and refuses, a run to resume).
    # (None where `repro run` refuses the run: made by another file of the study's name.)
    found = twins() if twins is not None and made_by is None and (superseded or state.status in (
        "pending", *RESUMABLE, store.DAMAGED, store.MISPLACED)) else []  # fmt: skip
    # What the run's directory holds goes to .superseded/ when the twin is adopted (twins.adopt).
    attempt = (state.status in RESUMABLE and not superseded) or (
        state.status == "pending" and bool(held(run_dir)))  # fmt: skip
    if found and state.status == store.DAMAGED:
        # runner._decide repairs a damaged run first (_recover), then goes on with what the
        # repair left: ended with the study's config, it is kept (the twin does not matter);
        # anything else (unfinished, moved aside, made with another config) adopts the twin.
        after = repaired() if repaired is not None else None
        if after is None or after.status == "queued" or (
                after.status in store.FINAL and after.config_hash == planned_hash):  # fmt: skip
            found = []
        else:  # the repair's leftovers, or the run it moved aside, end in .superseded/
            attempt = True
    twin = twin_note(found, check, attempt=attempt) if found else None
    adopted = twin is not None and twin.adopts
    if state.status == store.MISPLACED:  # runner._decide moves it aside whole, then _adopt
        trains = "" if adopted else " and trains the run"
        trains += " unless it adopts its twin" if twin is not None and twin.maybe else ""
        detail = detail.replace("{trains}", trains, 1)
    if adopted and state.status == store.DAMAGED:  # it is not trained again nor rebuilt
        detail = detail.replace(f"{state.detail}; {repair}", state.detail, 1)
    if superseded and made_by is not None:
        detail = (f"{detail}; " if detail else "") + status_text(made_by)
    elif superseded:
        detail = (f"{detail}; " if detail else "") + "made with another config: `repro run` " \
            "moves it to .superseded/" + ("" if adopted else " and trains it again")  # fmt: skip
    # The data it began on: the summary's, or, for a run killed in a session (which removed
    # the summary as it began) or one whose summary is damaged, its checkpoint's sessions.
    resumed = state.status in RESUMABLE and not superseded and not adopted and planned
    record = summary_or_checkpoint(run_dir) if resumed else {}
    if store.data_fingerprints(record)[0]:
        data = check.data() if check is not None else None
        detail = (f"{detail}; " if detail else "") + f"began on {began_on(record, data)}"
        if data is not None:
            detail += f"; {data_verdict(run_dir, data, record)}"
    if resumed and (ran := execution_note(run_dir)):
        detail = (f"{detail}; " if detail else "") + ran
    if twin is not None:
        detail = (f"{detail}; " if detail else "") + twin.text
    # Metadata, not the result: the run stands as it is, but the report ignores the file.
    if ignored := store.environment_or_damage(run_dir)[1]:
        resumes = state.status in RESUMABLE and planned
        detail = (f"{detail}; " if detail else "") + environment_ignored(ignored, resumes=resumes)
    return StatusRow(name, state.status, epochs, detail, tail)


def missing_store_note(results: Path) -> str | None:
    """What to say when the store is not there: every run then reads pending, which a
    mistyped --results would make look like work to do."""
    if results.exists():
        return None
    what = "is a link that leads nowhere" if store.present(results) else "does not exist"
    return (f"note: {results} {what}, so every run reads pending; if the store is "
            "elsewhere, give its path with --results")  # fmt: skip


def leftover_notes(study: Study, results: Path) -> list[str]:
    """What killed processes left in the study's folders, finished or removed now (harness.tidy),
    as status notes: the next command on the store cleans up, `repro status` included."""
    return [f"note: {note}" for note in tidy_study(results, study.name)]


def study_status(study: Study, results: Path, check: DataCheck | None = None,
                 study_file: str | None = None) -> list[StatusRow]:  # fmt: skip
    """Every planned run of the study, then any other run directory of it in the store;
    with ``check``, each run `repro run` would resume checked against the data here; with
    ``study_file``, each run another file of the study's name made and still plans."""
    rows, seen = [], set()
    plans = plan(study, study_file=study_file)
    made_by = {d.plan.name: d.other_file for d in displaced_runs(plans, results, Overrides())}
    for p in plans:
        run_dir = p.directory(results)
        seen.add(run_dir)
        rows.append(row_for(p.name, run_dir, p.hash, check,
                            twins=lambda p=p: complete_twins(p, results),
                            repaired=lambda p=p, d=run_dir: state_after_recovery(p, d),
                            made_by=made_by.get(p.name)))  # fmt: skip
    for run_dir in run_directories(results, study.name):  # listed, not read twice
        if run_dir not in seen:
            rows.append(row_for(run_dir.relative_to(results / study.name).as_posix(),
                                run_dir, check=check, planned=False))  # fmt: skip
    return rows


def render(study: Study, rows: list[StatusRow]) -> str:
    counts = Counter(r.state for r in rows)
    summary = ", ".join(f"{n} {state}" for state, n in counts.most_common())
    lines = [f"{study.name}: {plural(len(rows), 'run')}: {summary}"]
    width = max((len(r.run) for r in rows), default=10)
    for r in rows:
        lines.append(f"  {r.run:<{width}}  {r.state:<11} {r.epochs:>9}  {r.detail}")
        lines += [f"      | {line}" for line in r.log_tail]
    return "\n".join(lines)


def checkpoint_lines(study: Study, results: Path) -> list[str]:
    """Where each released checkpoint stands: the data it was evaluated on, or not yet."""
    if not study.checkpoints:
        return []
    found: dict[str, list] = {}
    for e in scan_evaluations(results):
        if e.study == study.name:
            found.setdefault(e.checkpoint, []).append(e)
    width = max(len(c.name) for c in study.checkpoints)
    released = plural(len(study.checkpoints), "released checkpoint")
    lines = [f"{study.name}: {released} (`repro evaluate`)"]
    for c in study.checkpoints:
        done = found.get(c.name, [])
        if not done:
            lines.append(f"  {c.name:<{width}}  not evaluated")
        for e in done:
            if e.record is None:
                lines.append(f"  {c.name:<{width}}  damaged      {e.damage}; `repro evaluate` "
                             "evaluates it again, keeping this record in .superseded/")  # fmt: skip
                continue
            data = ("the official release" if e.data.get("official")
                    else "a copy that is not the official release")  # fmt: skip
            error = e.value("test_error")
            shown = "not recorded" if error is None else f"{error:.2f}%"
            lines.append(f"  {c.name:<{width}}  evaluated    test error {shown} on {data} "
                         f"({e.path.name})")  # fmt: skip
    return lines


def data_check(check_data: bool | None, data_dir: Path | None) -> DataCheck | None:
    """The data check `repro status` makes: by default, against the data found here; none
    with --no-check-data; asked for (a note where there is no data) with --check-data or
    --data-dir."""
    if check_data is False:
        return None
    return DataCheck(data_dir, asked=bool(check_data) or data_dir is not None)

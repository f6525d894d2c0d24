"""Running a study: decide for each run whether to skip, resume, redo or train it, then do so.

One run's failure never stops the others; a diverging run is a result, not an error; Ctrl-C,
SIGTERM or a hang-up (SIGHUP, see harness.stop_signals) stops after recording the current run
as interrupted, and the same command later resumes it from its last checkpoint (while the
data loads, before any run started, it stops without recording anything). Either way the
command exits 130. A second Ctrl-C while the run is recorded says so; a third abandons the
recording at once, and the run resumes from its last saved epoch. With a time budget, the run
whose next epoch would not fit is paused at its last epoch, the runs after it are left
pending, and the command ends normally: the same command in the next slot carries on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from harness import store
from harness.budget import Deadline
from harness.data import Cifar10, load_cached, locate, non_official_warning, shown_apart
from harness.environment import device_name
from harness.execution import Execution, choose, compiled_label, label
from harness.plan import Overrides, RunPlan, only_by_study, plan
from harness.progress import BarProgress
from harness.schema import Study
from harness.stop_signals import stop_requested, stops_taken
from harness.tidy import tidy_study
from harness.train import (
    RunFailed,
    SilentProgress,
    checkpoint_history,
    checkpoint_sessions,
    train,
)

Echo = Callable[[str], None]


class RunError(Exception):
    """A problem with the request itself (device, data); nothing was trained."""


@dataclass(frozen=True)
class RunOptions:
    results: Path = Path("results")
    data_dir: Path | None = None
    device: str = "auto"  # auto | cpu | cuda
    force: bool = False
    # Supersede the runs another study file of the same name made and still plans
    # (harness.copies); without it (or --force), `repro run` refuses them.
    supersede: bool = False
    quiet: bool = False
    overrides: Overrides = field(default_factory=Overrides)
    pipeline: str = "fast"
    precision: str = "auto"
    compile: bool | None = None  # None: on for the fast path on CUDA
    # None: reduce-overhead (CUDA graphs) for a run on CUDA, "default" for a fused group
    # (harness.execution.default_compile_mode says why)
    compile_mode: str | None = None
    workers: int | None = None
    deterministic: bool = False
    # A time budget: ``deadline`` is absolute (time.time()); ``time_budget`` is seconds from
    # the start of whichever process trains (a Slurm job starts when the scheduler says).
    deadline: float | None = None
    time_budget: float | None = None
    runs_per_device: int = 1  # runs sharing one GPU (--runs-per-gpu), recorded with each run
    # Runs trained as one fused network (harness.grouping): 1 (off), "auto" or a group size.
    fuse: int | str = 1

    def stop_at(self) -> Deadline | None:
        if self.deadline is not None:
            return Deadline(self.deadline)
        return Deadline.after(self.time_budget) if self.time_budget is not None else None

    def to_dict(self) -> dict:
        """Plain data, to hand the same options to a worker process or a Slurm job."""
        d = asdict(self)
        d["results"] = str(self.results.resolve())
        d["data_dir"] = str(self.data_dir.resolve()) if self.data_dir else None
        d["overrides"]["only"] = list(self.overrides.only)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunOptions:
        o = dict(d["overrides"], only=tuple(d["overrides"]["only"]))
        return cls(**{**d, "results": Path(d["results"]),
                      "data_dir": Path(d["data_dir"]) if d["data_dir"] else None,
                      "overrides": Overrides(**o)})  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    plan: RunPlan
    # complete | diverged | failed | interrupted | paused | pending | skipped | busy | refused
    # | adopted
    status: str
    message: str


NOT_STARTED = "not started: the time budget is spent; the same command later trains it"
REFUSED = "refused"  # resuming would mix precisions, pipelines or data sets in one run
ADOPTED = "adopted"  # a complete twin in another study did its training (harness.twins)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RunError(
            "--device cuda was asked for, but torch sees no CUDA device "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}). "
            "Use --device cpu, or check the driver with nvidia-smi."
        )
    return torch.device(name)


def cpu_note(options: RunOptions, ex: Execution) -> str | None:
    """Said once training is about to start where --device auto found no GPU: nothing else
    told a user whose torch is a CPU-only build (or whose driver is broken) that the study
    was training on the CPU, until its progress bars crawled."""
    if options.device != "auto" or ex.device.type != "cpu":
        return None
    build = (f"built for CUDA {torch.version.cuda}; where there is an NVIDIA GPU, check its "
             "driver with nvidia-smi" if torch.version.cuda else "a CPU-only build")  # fmt: skip
    return (f"note: torch sees no GPU (torch {torch.__version__}, {build}), so the runs train "
            "on the CPU: right for studies/smoke.yaml and --smoke or --epochs trials, much too "
            "slow for a whole study; --device cpu says so and drops this note")  # fmt: skip


def gpu_note(options: RunOptions, ex: Execution) -> str | None:
    """Said once training is about to start on a GPU: the device and how the runs compute
    there, which each run records but nothing printed, so a wrong GPU, precision or compile
    mode showed only in the records afterwards."""
    if ex.device.type != "cuda":
        return None

    def how(mode: str) -> str:
        graphs = " = CUDA graphs" if mode == "reduce-overhead" else ""
        return compiled_label(mode) + graphs

    said = ex.label
    if ex.compile:
        said += ", " + how(ex.compile_mode)
        if options.fuse != 1 and ex.fused_compile_mode != ex.compile_mode:
            said += f" (a fused group: {how(ex.fused_compile_mode)})"
    if ex.channels_last:
        said += ", channels_last"
    return f"training on {device_name(ex.device)}: {said}"


def execution_for(options: RunOptions) -> Execution:
    return choose(
        resolve_device(options.device),
        pipeline=options.pipeline,
        precision=options.precision,
        compile=options.compile,
        compile_mode=options.compile_mode,
        workers=options.workers,
        deterministic=options.deterministic,
        shared_by=options.runs_per_device,
    )


def run_members(plans: list[RunPlan], options: RunOptions) -> list[Outcome]:
    """A job's work in this process (a worker's, a Slurm task's): one run, or a group of runs
    trained as one fused network."""
    done = [Outcome(p, "skipped", "already ended") for p in plans
            if store.summary_status(p.directory(options.results)) in store.FINAL]  # fmt: skip
    ended = {o.plan.name for o in done}
    todo = [p for p in plans if p.name not in ended]
    deadline = options.stop_at()
    if deadline is not None and deadline.passed():
        return done + [Outcome(p, "pending", NOT_STARTED) for p in todo]
    if not todo:
        return done
    data = load_data(options, print)
    ex = execution_for(options)
    adopted, todo = adopt_twins(todo, options, ex, lambda: data, print)
    if not todo:
        return done + adopted
    return done + adopted + _train(todo, data, ex, options, deadline, print)


def pending_runs(
    study: Study, options: RunOptions, echo: Echo, study_file: str | None = None
) -> tuple[list[Outcome], list[RunPlan]]:
    """The runs still to do; the others (finished, busy, queued) are reported and returned.

    Deciding up front is safe with other processes at work: a run is checked again under
    its lock just before it trains.
    """
    try:
        store.ensure_writable(options.results)
    except store.StoreUnusable as exc:
        raise RunError(str(exc)) from None
    for note in tidy_study(options.results, study.name):  # what killed processes left
        echo(f"note: {note}")
    plans = plan(study, options.overrides, study_file)
    refuse_displacing(plans, options, study_file)
    outcomes, todo = [], []
    for p in plans:
        decision = _decide(p, options.results, options.force, echo)
        if decision is None:
            todo.append(p)
        else:
            outcomes.append(decision)
            echo(line(decision))
    return outcomes, todo


def refuse_displacing(plans: list[RunPlan], options: RunOptions, study_file: str | None,
                      command: str = "repro run") -> None:  # fmt: skip
    """RunError, before anything is moved or trained, where the study's runs in the store
    were made by another study file of the same name that still plans them (a copy that
    kept the original's `name:`, harness.copies); --supersede or --force lets them go.
    ``command`` is the one the refusal tells to run again with --supersede."""
    from harness.copies import displaced_runs, refusal

    if options.force or options.supersede or study_file is None:
        return
    if displaced := displaced_runs(plans, options.results, options.overrides):
        raise RunError(refusal(displaced, study_file, command))


def options_by_study(studies: list[Study], options: RunOptions) -> list[RunOptions | None]:
    """Each study's options with its own of --only's names (all of them when none is named);
    None for a study that has none of them, which is not run (harness.only)."""
    return [None if mine is None else replace(options, overrides=replace(options.overrides,
                                                                         only=mine))
            for mine in only_by_study(studies, options.overrides.only)]  # fmt: skip


def refuse_displacing_any(studies: list[tuple[Study, str, RunOptions]]) -> None:
    """refuse_displacing for each (study, its file, its options: its own of --only's names)
    that a command is to run, before the first of them trains."""
    for study, study_file, options in studies:
        if study.experiments:
            refuse_displacing(plan(study, options.overrides, study_file), options, study_file)


def run_study(
    study: Study, options: RunOptions, echo: Echo, study_file: str | None = None
) -> list[Outcome]:
    """Train the study's pending runs one after another in this process."""
    outcomes, todo = pending_runs(study, options, echo, study_file)
    if not todo:
        return outcomes
    deadline = options.stop_at()
    ex = execution_for(options)
    for note in (cpu_note(options, ex), gpu_note(options, ex)):
        if note:
            echo(note)
    with stops_taken(STOPPING, raises=True):
        return outcomes + _train_in_turn(todo, ex, options, echo, deadline)


STOPPING = "\nstopping ({}): the current run is recorded as interrupted at its last finished epoch"


def _train_in_turn(
    todo: list[RunPlan], ex: Execution, options: RunOptions, echo: Echo,
    deadline: Deadline | None,
) -> list[Outcome]:  # fmt: skip
    """Load the data, then train the runs one after another until one is interrupted."""
    try:
        data = load_data(options, echo)
    except KeyboardInterrupt:  # no run has started: the store stays as it was
        outcome = Outcome(todo[0], store.INTERRUPTED, "stopped while loading the data; run again")
        echo(line(outcome))
        return [outcome]
    for p in todo:  # every run's request checked against the data before the first trains
        _check_subset(p, len(data.train_labels))
    outcomes, todo = adopt_twins(todo, options, ex, lambda: data, echo)
    from harness.grouping import groups

    for group in groups(todo, options.results, ex, options.fuse, echo=echo):
        if stop_requested():  # a stop whose KeyboardInterrupt was swallowed: start no more
            outcome = Outcome(group[0], store.INTERRUPTED, "stopped before it started; run again")
            outcomes.append(outcome)
            echo(line(outcome))
            break
        if deadline is not None and deadline.passed():
            done = [Outcome(p, "pending", NOT_STARTED) for p in group]
        else:
            done = _train(group, data, ex, options, deadline, echo)
        for outcome in done:
            outcomes.append(outcome)
            echo(line(outcome))
        if any(o.status == store.INTERRUPTED for o in done):
            break
    return outcomes


def _train(group: list[RunPlan], data: Cifar10, ex: Execution, o: RunOptions,
           deadline: Deadline | None, echo: Echo) -> list[Outcome]:  # fmt: skip
    """Train one run, or a group of them as one fused network."""
    if len(group) == 1:
        return [_train_one(group[0], group[0].directory(o.results), data, ex, o, deadline)]
    return _train_fused(group, data, ex, o, deadline, echo)


def _train_fused(group: list[RunPlan], data: Cifar10, ex: Execution, o: RunOptions,
                 deadline: Deadline | None, echo: Echo) -> list[Outcome]:  # fmt: skip
    """Train a group as one fused network, under every member's lock. Members that another
    process holds, that ended meanwhile or that may not resume under ``ex`` go their own
    way; the rest train apart when fewer than two are left or fusing them is refused."""
    from harness.fused_train import train_group
    from harness.fusion import FusionError

    for p in group:
        _check_subset(p, len(data.train_labels))
    alone: list[Outcome] = []
    members: list[RunPlan] = []
    with contextlib.ExitStack() as locks:
        for p in group:
            refused = _claim(p, p.directory(o.results), ex, data, locks)
            if refused is None:
                members.append(p)
            else:
                alone.append(refused)
        if len(members) >= 2:
            echo(f"fused: {len(members)} runs as one network: "
                 + ", ".join(p.name for p in members))  # fmt: skip
            progress = SilentProgress() if o.quiet else BarProgress()
            dirs = [p.directory(o.results) for p in members]
            try:
                summaries = train_group(members, data, dirs, ex, progress, deadline)
            except FusionError as exc:
                echo(f"note: not fused ({exc}); training them one after another")
            except RunFailed as exc:
                # One member's failure (a checkpoint that does not fit, say) fails the whole
                # group, now and at every later attempt, as the same group forms again: its
                # partners would never finish. Each goes on alone, failing or not on its own.
                echo(f"note: the fused group failed ({exc}); its runs go on one after "
                     "another, so that each fails or not on its own")  # fmt: skip
                ended = [_ended_before(p, d) for p, d in zip(members, dirs, strict=True)]
                alone += [out for out in ended if out is not None]
                members = [p for p, out in zip(members, ended, strict=True) if out is None]
            except KeyboardInterrupt:
                return alone + [_ended_before(p, d)
                                or Outcome(p, store.INTERRUPTED, stopped_text(d))
                                for p, d in zip(members, dirs, strict=True)]  # fmt: skip
            else:
                return alone + [summary_outcome(p, s)
                                for p, s in zip(members, summaries, strict=True)]  # fmt: skip
    # apart: the locks are released, and each run takes its own again
    return alone + [_train_one(p, p.directory(o.results), data, ex, o, deadline)
                    for p in members]  # fmt: skip


def _ended_before(p: RunPlan, run_dir: Path) -> Outcome | None:
    """The outcome of a fused member that had already ended (diverged) when its group failed
    or was stopped: the store says so, and the line must not call it failed or stopped."""
    try:
        summary = store.read_summary(run_dir) or {}
    except store.DamagedFile:
        return None
    return summary_outcome(p, summary) if summary.get("status") == store.DIVERGED else None


def adopt_twins(
    todo: list[RunPlan], options: RunOptions, ex: Execution, data: Callable[[], Cifar10],
    echo: Echo,
) -> tuple[list[Outcome], list[RunPlan]]:  # fmt: skip
    """The runs about to train whose training a complete twin in another study already did
    (harness.twins) adopt it; returns their outcomes and the runs left to train. ``data``
    gives the data this command trains on, loaded only once a twin is found. --force trains
    every run."""
    if options.force:
        return [], list(todo)
    adopted, rest = [], []
    for p in todo:
        outcome = _adopt(p, options, ex, data, echo)
        if outcome is None:
            rest.append(p)
        else:
            adopted.append(outcome)
            echo(line(outcome))
    return adopted, rest


def _adopt(p: RunPlan, options: RunOptions, ex: Execution, data: Callable[[], Cifar10],
           echo: Echo) -> Outcome | None:  # fmt: skip
    """Adopt the first twin that ran as this command trains; None: train the run."""
    from harness import twins

    found = twins.complete_twins(p, options.results)
    if not found:
        return None
    twin, unlike = twins.first_adoptable(found, ex.precision, ex.pipeline, data().fingerprint)
    if twin is None:
        why = "; ".join(f"{t.name}: {w}" for t, w in unlike)
        echo(f"note: {p.study}/{p.name}: a complete run of the same config is not this command's "
             f"training, so it trains: {why}")  # fmt: skip
        _say_resume(p, p.directory(options.results), echo)
        return None
    run_dir = p.directory(options.results)
    state = store.inspect(run_dir)  # before the lock, under which it would read "running"
    attempt = None if state.status == "absent" else state.status
    with contextlib.ExitStack() as lock:
        if (taken := _lock(p, run_dir, lock)) is not None:
            return taken
        try:
            summary, moved = twins.adopt(p, run_dir, twin, attempt)
        except (twins.NotAdopted, OSError) as exc:
            echo(f"note: {p.study}/{p.name}: not adopting its twin {twin.name} ({exc}); "
                 "training it")  # fmt: skip
            _say_resume(p, run_dir, echo)
            return None
    if moved is not None:
        if attempt in (store.FAILED, store.INTERRUPTED, store.PAUSED):
            what = f"its {attempt} attempt"
        else:  # a pending or queued run, what a repair left (twins.held)
            what = "what its directory held" + (f" ({attempt})" if attempt else "")
        echo(f"note: {p.study}/{p.name}: {what} moved to {moved}")
    origin = summary[twins.SHARED_WITH]
    return Outcome(p, ADOPTED, f"shared with {origin}, the same training "
                               f"(complete){result_text(summary)}")  # fmt: skip


def _say_resume(p: RunPlan, run_dir: Path, echo: Echo) -> None:
    """What training a run that was not adopted will do, when it had started (_decide left
    this to _adopt where a twin might be adopted)."""
    state = store.inspect(run_dir)
    if state.status in (store.FAILED, store.INTERRUPTED, store.PAUSED):
        echo(resume_text(p, run_dir, state))


def _check_subset(p: RunPlan, train_images: int) -> None:
    """A --subset (or a recipe's train_images) larger than the data (of ``train_images``
    training images) would be clamped while the run kept its label, and a hold-out of the
    whole training set leaves nothing to train on: refuse them instead, before anything
    trains."""
    wanted = p.recipe.train_images
    available = train_images - p.recipe.validation_images
    if available < 1:
        raise RunError(
            f"{p.study}/{p.name}: validation_images {p.recipe.validation_images} holds out every "
            f"one of the data's {train_images} training images, leaving none to train "
            f"on. Hold out fewer than {train_images} (5000 for a 45k/5k split)."
        )
    if wanted is not None and wanted > available and not p.label.startswith("smoke"):
        raise RunError(
            f"{p.study}/{p.name}: {wanted} training images asked for (--subset or the recipe's "
            f"train_images), but the data has {available} after the validation hold-out. "
            f"Ask for {available} or fewer."
        )


def find_data(options: RunOptions, todo: list[RunPlan] | None = None) -> Path:
    """The data's folder with every batch file present and one that loading accepts, none
    kept: what a parent checks before its workers load the data (data.check_complete), with
    each run of ``todo`` checked against it as one process checks them before its first run
    (_check_subset): a --subset larger than the data refuses the whole command, not only
    that run inside its worker."""
    from harness.data import DataError, check_complete

    try:
        folder = locate(options.data_dir)
        train_images = check_complete(folder)
    except DataError as exc:
        raise RunError(str(exc)) from None
    if train_images is not None:  # None: a batch a worker reads (a pipe) was not read here
        for p in todo or []:
            _check_subset(p, train_images)
    return folder


def load_data(options: RunOptions, echo: Echo) -> Cifar10:
    from harness.data import DataError

    try:
        data = load_cached(locate(options.data_dir))
    except DataError as exc:
        raise RunError(str(exc)) from None
    echo(data.describe())
    if not data.official:
        echo(non_official_warning(data))
    return data


def _decide(p: RunPlan, results: Path, force: bool, echo: Echo) -> Outcome | None:
    """Skip or make way for a run; None means: train (or resume) it now.

    Results are never deleted: a run whose config changed, or that --force redoes, is moved
    to ``<experiment>/.superseded/``.
    """
    run_dir = p.directory(results)
    if (blocking := store.file_in_the_way(run_dir)) is not None:
        kept = store.set_aside(blocking, store.IN_THE_WAY)
        echo(f"note: {blocking} is a file where a directory of the store belongs; kept as "
             f"{kept.name}, and {p.study}/{p.name} is trained")  # fmt: skip
    if (lock := store.lock_in_the_way(run_dir)) is not None:
        echo(f"note: {lock[0]} is not a file, so the run could not be locked; kept as "
             f"{lock[1].name}")  # fmt: skip
    state = store.inspect(run_dir)
    if state.status == store.MISPLACED:
        # Another folder's run (harness.placement): neither resumed as this one nor repaired
        # into it, but kept whole beside the run, which is then trained (or adopts a twin).
        where = store.supersede(run_dir, f"misplaced: {state.detail}")
        then = _trained_or_adopted(p, results, force)
        then = "and the run is trained" if then == TRAINED_AGAIN else f"and {then}"
        echo(f"note: {p.study}/{p.name} is misplaced: {state.detail}; moved to {where}, "
             f"{then}")  # fmt: skip
        state = store.inspect(run_dir)
    if state.status == store.DAMAGED:
        state = _recover(p, run_dir, state, echo, then=_trained_or_adopted(p, results, force))
    if state.status == "absent":
        return None
    if state.status == "queued":
        if force or not scheduler_says_alive(run_dir):
            (run_dir / store.JOB).unlink(missing_ok=True)
            return None
        return Outcome(p, "busy", f"already queued as {state.detail}")
    if state.status == "running":
        return Outcome(p, "busy", f"being trained by another process ({state.detail})")
    if state.config_hash is None and state.status in (store.FAILED, store.INTERRUPTED):
        # It ended before training started (no config.json yet): there is no other config,
        # only the record of that attempt, which is kept beside the run.
        kept = store.set_aside(run_dir / store.SUMMARY, "before-training")
        echo(f"{p.study}/{p.name}: starting; its last attempt ended {state.status} before "
             f"training ({state.detail or 'no detail'}; kept as {kept.name})")  # fmt: skip
        return None
    if made_with_another_config(state, p.hash):
        where = store.supersede(run_dir, f"config changed: {state.config_hash} -> {p.hash}")
        echo(f"note: {p.study}/{p.name} was made with another config; moved to {where}")
        return None
    if force:
        where = store.supersede(run_dir, "redone with --force")
        echo(f"note: {p.study}/{p.name}: previous run moved to {where} (--force)")
        return None
    if state.status in store.FINAL:
        summary = store.read_summary(run_dir) or {}
        return Outcome(p, "skipped", f"already {state.status}{result_text(summary)}")
    if state.status != "pending":  # interrupted, paused or failed: say what happens next
        from harness import twins

        if twins.complete_twins(p, results):  # adopted, or told why not (_adopt)
            echo(f"{p.study}/{p.name}: {state.status}; a complete twin in another study did "
                 "the same training: adopting it if it ran as this command trains")  # fmt: skip
        else:
            echo(resume_text(p, run_dir, state))
    return None


def made_with_another_config(state: store.RunState, planned_hash: str) -> bool:
    """Whether _decide moves the run in ``state`` to .superseded/ as made with another config
    than the study's now (``planned_hash``), to train it again or adopt a complete twin; read
    by `repro status` and the queue's standing (run_to_go_on_from). Never a run that is absent,
    queued or running (left to its process), nor one that ended before training started (no
    config: the record of an attempt, kept beside the run, which is then trained). A damaged
    or misplaced run is first repaired or moved aside (_decide), then judged so."""
    if state.status in ("absent", "queued", "running"):
        return False
    if state.config_hash is None and state.status in (store.FAILED, store.INTERRUPTED):
        return False
    return state.config_hash != planned_hash


def run_to_go_on_from(p: RunPlan, run_dir: Path) -> store.RunState:
    """The run as `repro run` goes on from it after _decide, moving nothing (for the queue's
    standing): a damaged run as its repair leaves it (state_after_recovery; as it reads where
    that cannot be told), and "absent" where _decide moves the run to .superseded/ (misplaced,
    or made with another config), so that it is trained again or adopts a complete twin. A run
    it trains goes on from its checkpoint (resume_text, as train() does): its epochs done are
    those the checkpoint holds, none where it has no usable one (it starts over from epoch 0)."""
    from harness.train import resume_point

    state = store.inspect(run_dir)
    if state.status == store.DAMAGED:
        state = state_after_recovery(p, run_dir) or state
    if state.status == store.MISPLACED or made_with_another_config(state, p.hash):
        return store.RunState("absent")
    if state.status in (store.INTERRUPTED, store.PAUSED, store.FAILED, "pending"):
        state = replace(state, epochs_done=resume_point(run_dir, p.hash)[0])
    return state


TRAINED_AGAIN = "it is trained again"
# What follows a run moved aside when a twin may be adopted: whether it is, _adopt decides
# only once the data is loaded, and says so then ("[shared]", or why not and that it trains).
ADOPTED_OR_TRAINED = ("a complete twin in another study did the same training: adopting it if "
                      "it ran as this command trains, else training the run")  # fmt: skip


def _trained_or_adopted(p: RunPlan, results: Path, force: bool) -> str:
    """What `repro run` does with a run whose directory it moved aside: train it, or adopt
    a complete twin (adopt_twins: never with --force)."""
    from harness import twins

    if not force and twins.complete_twins(p, results):
        return ADOPTED_OR_TRAINED
    return TRAINED_AGAIN


def resume_text(p: RunPlan, run_dir: Path, state: store.RunState) -> str:
    """What training this run now will do, as train() will do it: resume from the checkpoint,
    start over (saying why, when epochs had finished), or only write its summary again."""
    from harness.train import resume_point

    where, why = f"{p.study}/{p.name}", state.status
    epoch, iteration, problem = resume_point(run_dir, p.hash)
    recorded = state.epochs_done
    if problem is not None:
        if recorded == 0:
            return f"{where}: starting over ({why}): no epoch had finished"
        return (f"{where}: starting over from epoch 0 ({why}): {problem}, so its "
                f"{_epochs(recorded)} cannot be resumed (their metrics are kept "
                "aside)")  # fmt: skip
    total = p.recipe.epochs
    if (iteration >= p.recipe.iterations) if p.recipe.iterations else (epoch >= total):
        return (f"{where}: all {_epochs(epoch)} had finished ({why}); its summary is written "
                "again from the checkpoint, nothing is trained")  # fmt: skip
    text = f"{where}: resuming ({why}) at epoch {epoch + 1}" + (f"/{total}" if total else "")
    if recorded > epoch:
        text += (f"; its checkpoint is at epoch {epoch}, so the {recorded - epoch} recorded "
                 "after it are trained again (their metrics are kept aside)")  # fmt: skip
    return text


def _recover(p: RunPlan, run_dir: Path, state: store.RunState, echo: Echo,
             then: str = TRAINED_AGAIN) -> store.RunState:  # fmt: skip
    """Keep a damaged run's unusable files aside so that it can resume; ``then`` says what
    follows when the run is moved aside whole (_trained_or_adopted).

    The checkpoint holds the whole history, so training rebuilds metrics.jsonl and the
    summary from it (a finished run's too: its checkpoint is at the last epoch). An unreadable
    config is written again from the study when the checkpoint was made with the study's
    config; otherwise the run cannot be matched to the study any more: it is moved aside
    whole and trained again (damage_repair says the same to `repro status`).
    """
    from harness.train import resume_point

    echo(f"note: {p.study}/{p.name} is damaged: {state.detail}")
    # A summary (or a file kept aside as inconsistent) is rebuilt when the run trains, not
    # here; where a complete twin may be adopted instead (``then``), the run is moved aside as
    # it is, unrebuilt (_adopt), so the line says so rather than claim a rebuild.
    # With no checkpoint to resume from, training starts over and makes them anew.
    unusable = resume_point(run_dir, p.hash)[2]
    later = (
        "rebuilt from the checkpoint"
        if unusable is None
        else f"made anew as the run trains again from epoch 0 ({unusable})"
    ) + ("" if then == TRAINED_AGAIN else " if the run trains, not if it adopts its twin")
    if (damaged := store.config_damage(run_dir)) is not None:
        present = store.present(damaged.path)  # unreadable, not missing: kept aside below
        if unusable is not None:
            where = store.supersede(run_dir, f"damaged: {state.detail}")
            echo(f"  its config {'cannot be read' if present else 'is missing'} and {unusable}: "
                 f"moved to {where}; {then}")  # fmt: skip
            return store.inspect(run_dir)
        # Its checkpoint was made with the study's config as it is now: that is the config.
        kept = store.set_aside(damaged.path).name if present else None
        store.write_json(run_dir / store.CONFIG, {"hash": p.hash, **p.config})
        aside = (
            f"kept {store.CONFIG} aside as {kept}; written" if kept else f"{store.CONFIG} written"
        )
        echo(f"  {aside} again from the study (its checkpoint was made with the same "
             "config)")  # fmt: skip
    metrics_kept = None  # metrics.jsonl kept aside as damaged: said below, with what follows
    for read, path in ((store.read_summary, run_dir), (store.read_jsonl, run_dir / store.METRICS)):
        try:
            read(path)
        except store.DamagedFile as damaged:
            kept = store.set_aside(damaged.path)
            if damaged.path.name == store.METRICS:
                metrics_kept = kept.name  # curves are rebuilt below, now, if they can be
            else:
                echo(f"  kept {damaged.path.name} aside as {kept.name}; {later}")
    if not (run_dir / store.METRICS).exists():
        # An ended run is not trained again, so its curves come back from the checkpoint here.
        history = checkpoint_history(run_dir)
        if history is not None:
            store.write_jsonl(run_dir / store.METRICS, history)
        aside = f"kept {store.METRICS} aside as {metrics_kept}; " if metrics_kept else ""
        if history is not None and metrics_kept:
            echo(f"  {aside}rebuilt from the checkpoint")
        elif history is None:  # nothing is rebuilt: the run is left without curves
            rebuilt = "not rebuilt: " if metrics_kept else ""
            why = _no_history(run_dir, either=metrics_kept is not None)
            echo(f"  {aside}{rebuilt}{why}, so the run has no curves")
    state = store.inspect(run_dir)
    if state.status == store.DAMAGED:
        # Readable files that disagree (store.check_ended): which one is wrong cannot be told,
        # so both are kept aside and the run resumes from its checkpoint, which holds the
        # whole history (a checkpoint at the run's end only writes its summary again).
        for name in (store.SUMMARY, store.METRICS):
            if (run_dir / name).exists():
                kept = store.set_aside(run_dir / name, "inconsistent")
                echo(f"  kept {name} aside as {kept.name}; {later}")
        state = store.inspect(run_dir)
    return state


def _no_history(run_dir: Path, either: bool) -> str:
    """Why the checkpoint gives no curves to rebuild (checkpoint_history found none): there
    is none, it cannot be read (``either``: as the curves could not), or it reads but holds no
    per-epoch records (of another format)."""
    from harness.train import UnreadableCheckpoint, read_checkpoint

    path = run_dir / store.CHECKPOINT
    if not store.present(path):
        return "it has no checkpoint to rebuild them from"
    try:
        read_checkpoint(path)
    except UnreadableCheckpoint:
        return "its checkpoint cannot be read" + (" either" if either else "")
    return "its checkpoint (of another format) holds no per-epoch records"


def state_after_recovery(p: RunPlan, run_dir: Path) -> store.RunState | None:
    """What a damaged run is once `repro run` has repaired it (_recover), for `repro status`,
    which may change nothing: _recover runs on a scratch copy (the checkpoint linked, not
    copied: it is only read). Whether `repro run` then adopts a complete twin hangs on it
    (_decide): a run the repair leaves ended with the study's config is kept, any other adopts
    the twin. None: it cannot be told (the copy failed)."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="repro-status-") as tmp:
        # Under the same study/experiment/seed names: placement is judged by them.
        scratch = Path(tmp, run_dir.parent.parent.name, run_dir.parent.name, run_dir.name)

        def its_checkpoint(folder: str, _: list[str]) -> list[str]:
            return [store.CHECKPOINT] if Path(folder) == run_dir else []

        try:
            shutil.copytree(run_dir, scratch, symlinks=True, ignore=its_checkpoint)
            if store.present(run_dir / store.CHECKPOINT):
                (scratch / store.CHECKPOINT).symlink_to((run_dir / store.CHECKPOINT).absolute())
            return _recover(p, scratch, store.inspect(scratch), lambda _: None)
        except OSError:
            return None


def damage_repair(run_dir: Path, planned_hash: str | None) -> str:
    """What `repro run` does with a damaged run (as _recover does it), for `repro status`;
    ``planned_hash`` is the config hash the study gives the run (None: not a planned run)."""
    from harness.train import resume_point

    generic = "`repro run` keeps it aside and rebuilds it from the checkpoint"
    if (damaged := store.config_damage(run_dir)) is not None:
        present = store.present(damaged.path)
        if planned_hash is None:
            return f"its config {'cannot be read' if present else 'is missing'}"
        problem = resume_point(run_dir, planned_hash)[2]
        if problem is None:
            how = "keeps it aside and writes it again" if present else "writes it again"
            return (f"`repro run` {how} from the study (the checkpoint was made with the same "
                    "config)")  # fmt: skip
        return f"{problem}: `repro run` moves the run to .superseded/ and trains it again"
    config = store.read_config(run_dir)
    digest = planned_hash or (config or {}).get("hash")
    if digest is None:
        return generic
    if config is not None and config.get("hash") != digest:
        return "made with another config: `repro run` moves it to .superseded/ and trains it again"
    problem = resume_point(run_dir, digest)[2]
    if problem is None:
        return generic
    return f"`repro run` keeps it aside, but {problem}: the run is trained again from epoch 0"


def scheduler_says_alive(run_dir: Path) -> bool:
    """Whether the job recorded for a run is still pending or running (unknown: assume so)."""
    from harness.executors import job_state

    state = job_state(run_dir)
    return state is None or state in ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING",
                                      "RESIZING", "SUSPENDED", "UNKNOWN")  # fmt: skip


def _train_one(p: RunPlan, run_dir: Path, data: Cifar10, ex: Execution, o: RunOptions,
               deadline: Deadline | None = None) -> Outcome:  # fmt: skip
    _check_subset(p, len(data.train_labels))
    progress = SilentProgress() if o.quiet else BarProgress()
    with contextlib.ExitStack() as lock:
        if (refused := _claim(p, run_dir, ex, data, lock)) is not None:
            return refused
        try:
            summary = train(p, data, run_dir, ex, progress, deadline)
        except RunFailed as exc:
            return Outcome(p, store.FAILED, f"{exc} (traceback in {run_dir / store.ERROR})")
        except KeyboardInterrupt:
            return Outcome(p, store.INTERRUPTED, stopped_text(run_dir))
    return summary_outcome(p, summary)


def _lock(p: RunPlan, run_dir: Path, locks: contextlib.ExitStack) -> Outcome | None:
    """Take the run's lock into ``locks`` (to train it or to adopt its twin); or the outcome
    when another process holds it or finished the run between our look and the lock."""
    try:
        locks.enter_context(store.run_lock(run_dir))
    except store.LockHeld as held:
        return Outcome(p, "busy", f"being trained by another process ({held.holder})")
    if store.summary_status(run_dir) in store.FINAL:
        return Outcome(p, "skipped", "finished by another process meanwhile")
    return None


def _claim(p: RunPlan, run_dir: Path, ex: Execution, data: Cifar10,
           locks: contextlib.ExitStack) -> Outcome | None:  # fmt: skip
    """Take the run's lock into ``locks`` for training under ``ex`` on ``data``; or, when it
    may not train now, the outcome that says why."""
    if (taken := _lock(p, run_dir, locks)) is not None:
        return taken
    if (conflict := execution_conflict(run_dir, ex) or data_conflict(run_dir, data)) is not None:
        return Outcome(p, REFUSED, conflict)
    return None


STOPPED_TEXT = "stopped; run the same command again to resume from its last finished epoch"


def stopped_text(run_dir: Path, summary: dict | None = None) -> str:
    """What a run stopped by a signal kept, from its ``summary`` (read from ``run_dir`` when not
    given): the epoch it resumes after, or that it starts over. A run stopped in its first
    epoch was told "resume from its last finished epoch", which it had none of."""
    if summary is None:
        with contextlib.suppress(store.DamagedFile):
            summary = store.read_summary(run_dir)
    if not summary or summary.get("status") != store.INTERRUPTED:
        return STOPPED_TEXT  # the recording was abandoned (a third Ctrl-C): nothing to read
    done, total = summary.get("epochs_done"), summary.get("epochs_total")
    if done == 0:
        return ("stopped in its first epoch, before any epoch was kept; run the same command "
                "again to start it over")  # fmt: skip
    if isinstance(done, int) and (run_dir / store.CHECKPOINT).exists():
        return (f"stopped after epoch {done}/{total}; run the same command again to resume at "
                f"epoch {done + 1}")  # fmt: skip
    return STOPPED_TEXT


def summary_outcome(p: RunPlan, summary: dict) -> Outcome:
    """How a run that trained in this process ended, from its summary."""
    status = summary["status"]
    if status == store.PAUSED:
        return Outcome(p, status, paused_text(summary))
    if status == store.DIVERGED:
        at = summary["diverged_at"]
        return Outcome(
            p,
            status,
            f"loss became NaN/inf at epoch {at['epoch']}; recorded with its curves so far",
        )
    return Outcome(p, status, result_text(summary).lstrip(": "))


def execution_conflict(run_dir: Path, ex: Execution) -> str | None:
    """Why resuming the run in ``run_dir`` under ``ex`` is refused, or None when it may go on.

    Precision and pipeline are not part of the config hash (runs on the GPU keep their hash
    whatever they ran with), so one run directory would otherwise hold bf16 epochs and fp32
    ones, or fast and canonical ones, and its numbers would belong to neither. A run resumes
    only as its first session ran; one with nothing to resume starts over as asked.
    """
    if not (run_dir / store.CHECKPOINT).exists():
        return None
    first = first_execution(run_dir)
    if first is None or first == (ex.precision, ex.pipeline):
        return None
    began = label(*first)
    precision, pipeline = first
    return (
        f"its epochs so far ran in {began}; resuming it in {ex.label} would mix the two in one "
        f"run. Finish it as it began (--precision {precision} --pipeline {pipeline}), redo it in "
        f"{ex.label} with --force (the old run is moved to .superseded/), or train the "
        "other execution into another store with --results DIR"
    )


def data_conflict(run_dir: Path, data: Cifar10) -> str | None:
    """Why resuming the run in ``run_dir`` on ``data`` is refused, or None when it may go on.

    A run's epochs are one training on one data set: resumed on another copy (the JPEG copy
    here, the official release there, after `repro export` and `repro import`), its curves and
    final error would belong to neither, and no verdict could use it. A run resumes only on
    the data it began on; one whose data was not recorded (or with nothing to resume) goes on.
    """
    if not (run_dir / store.CHECKPOINT).exists():
        return None
    began = first_data(run_dir)
    if began is None or began == data.fingerprint:
        return None
    which = "the official release" if data.official else "not the official release"
    then, now = shown_apart(began, data.fingerprint)
    return (
        f"its epochs so far trained on data {then}; this command's data is "
        f"{now} ({which}), and resuming on it would mix two data sets in one "
        "run. Finish it on the data it began on (--data-dir or REPRO_DATA_DIR naming that "
        "copy), redo it on this data with --force (the old run is moved to .superseded/), or "
        "train on this data into another store with --results DIR"
    )


def first_data(run_dir: Path) -> str | None:
    """The fingerprint of the data the run's first session trained on, as recorded: its
    session's own, else the summary's, which is the first one's where a run never changed
    its data (store.data_fingerprints). Where the summary does not say (a session killed
    before it wrote one, a damaged one), the checkpoint's sessions do."""
    return store.data_fingerprints(summary_or_checkpoint(run_dir))[0]


def summary_or_checkpoint(run_dir: Path) -> dict:
    """The run's summary, or, where it records no data (none, or damaged: a session removes
    it as it begins, so one killed leaves none), the sessions its checkpoint holds, as a
    summary would list them: what data its epochs so far trained on."""
    try:
        summary = store.read_summary(run_dir) or {}
    except store.DamagedFile:
        summary = {}
    if store.data_fingerprints(summary)[0]:
        return summary
    return {"sessions": checkpoint_sessions(run_dir)}


def first_execution(run_dir: Path) -> tuple[str, str] | None:
    """(precision, pipeline) of the run's first session, as recorded."""
    try:
        summary = store.read_summary(run_dir) or {}
    except store.DamagedFile:  # kept aside before training; the environment still tells
        summary = {}
    sessions = [s for s in summary.get("sessions") or [] if s.get("precision")]
    # Without a summary (killed before it wrote one) the environment is that of the
    # session that was killed, which ran as the first one did; a damaged one tells nothing,
    # as a missing one (it is kept aside when the run's next session begins).
    first = sessions[0] if sessions else store.environment_or_damage(run_dir)[0] or {}
    if not (first.get("precision") and first.get("pipeline")):
        return None
    return first["precision"], first["pipeline"]


def result_text(summary: dict) -> str:
    if summary.get("test_error") is None:
        return ""
    speed = speed_text(summary)
    selected = ""
    if summary.get("reported_by") == "best_validation":
        selected = f" (epoch {summary.get('reported_epoch')}, the best on validation)"
    return (
        f": test error {summary['test_error']:.2f}%{selected} after "
        f"{_epochs(summary['epochs_done'])}{speed}"
    )


def speed_text(summary: dict) -> str:
    """The run's seconds per epoch and the device they were timed on; for a run that trained on
    several, each device's (a median over two GPUs' epochs is neither's speed). A summary from
    before summaries named the device gives its figure alone."""
    timed = [d for d in summary.get("sec_per_epoch_by_device") or [] if d.get("sec_per_epoch")]
    if len(timed) > 1:
        each = [f"{d['sec_per_epoch']:.2f}{' s/epoch' * (i == 0)} on {d['device']} "
                f"({_epochs(d['epochs'])})" for i, d in enumerate(timed)]  # fmt: skip
        return ", " + ", then ".join(each)
    if not (spe := summary.get("sec_per_epoch")):
        return ""
    on = f" on {device}" if (device := summary.get("sec_per_epoch_device")) else ""
    return f", {spe:.2f} s/epoch{on}"


def paused_text(summary: dict) -> str:
    done, total = summary.get("epochs_done"), summary.get("epochs_total")
    return (f"paused by the time budget at epoch {done}/{total}; the same command later "
            "resumes it")  # fmt: skip


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


_MARK = {
    "complete": "done",
    "diverged": "DIVERGED",
    "failed": "FAILED",
    "interrupted": "stopped",
    "paused": "paused",
    "pending": "later",
    "skipped": "skip",
    "busy": "busy",
    "submitted": "queued",
    REFUSED: "REFUSED",
    ADOPTED: "shared",
}


def line(o: Outcome) -> str:
    """One line per run for the terminal."""
    label = "" if o.plan.counts_as_reproduction else "  [not a reproduction]"
    return f"[{_MARK[o.status]:>8}] {o.plan.study}/{o.plan.name}: {o.message}{label}"

"""Where runs execute: this process, worker processes over several GPUs, or Slurm via submitit.

- ``local`` with one slot: runs train one after another in this process (``harness.runner``).
- ``local`` with several slots (``--gpus N`` x ``--runs-per-gpu K``): each run trains in its
  own ``repro worker`` process, pinned to one GPU with ``CUDA_VISIBLE_DEVICES``; a new run
  starts as soon as a slot frees. SIGINT (Ctrl-C), SIGTERM or SIGHUP (a hang-up) to the
  command is forwarded to every worker; each records its run as interrupted (resumable) and
  the command exits 130. Runs not yet started stay pending. A second Ctrl-C or SIGTERM says
  that the workers are still stopping; a third kills them and exits 130 at once, as in one
  process (``harness.stop_signals``). A signal to one worker stops that run only.
- ``slurm``: every pending run becomes one task of a Slurm job array, submitted through
  submitit; the command returns at once. On preemption or time-out submitit calls
  :meth:`RunJob.checkpoint`, which requeues the same run; it resumes from its last epoch.
- ``submitit-local``: the Slurm path on this machine (submitit's local executor), for trying
  it without a cluster.

Whatever the executor, every run takes its lock before training, so no two processes or jobs
ever train the same run, and the store stays the single source of truth.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from harness import store
from harness.choices import EXECUTORS  # noqa: F401 (re-exported)
from harness.environment import now_utc
from harness.execution import COMPILE_THREADS, Execution, choose, cores_each
from harness.plan import RunPlan, plan
from harness.plural import plural
from harness.runner import (
    ADOPTED,
    NOT_STARTED,
    REFUSED,
    Outcome,
    RunError,
    RunOptions,
    adopt_twins,
    cpu_note,
    execution_for,
    find_data,
    gpu_note,
    line,
    load_data,
    paused_text,
    pending_runs,
    resolve_device,
    result_text,
    run_members,
    stopped_text,
)
from harness.schema import SlurmSettings, Study
from harness.stop_signals import (
    leave_a_hung_up_terminal,
    raise_unless_deferred,
    request_stop,
    stop_requested,
    stop_signals,
    stops_taken,
    take_stop_signals,
)
from harness.studyfile import load_study
from harness.twins import SHARED_WITH

Echo = Callable[[str], None]
NOT_STARTED_EXIT = 75  # a worker whose time budget was spent before its run could start
REFUSED_EXIT = 76  # a worker that would have resumed its run under another execution or data
BUSY_EXIT = 77  # a worker that found its run being trained by another process: not a failure


# --------------------------------------------------------------------------- one run as a job


@dataclass(frozen=True)
class RunJob:
    """One run, or a fused group of runs, as plain data: what a worker process or a Slurm
    array task executes. ``partners`` are the group's other runs as (experiment, seed);
    ``outcome_file``, where given, receives every run's outcome (a worker's parent reads it)."""

    study_file: str
    experiment: str
    seed: int
    options: dict  # RunOptions.to_dict()
    partners: tuple[tuple[str, int], ...] = ()
    outcome_file: str | None = None
    # Torch threads for a job that shares this machine's cores with the others of its batch
    # (submitit's local executor starts them all at once); None: torch's own choice.
    threads: int | None = None

    def plans(self) -> list[RunPlan]:
        opts = RunOptions.from_dict(self.options)
        study = load_study(self.study_file)
        by_key = {(p.experiment.name, p.seed): p
                  for p in plan(study, opts.overrides, self.study_file)}  # fmt: skip
        wanted = [(self.experiment, self.seed), *map(tuple, self.partners)]
        missing = [f"{e}, seed {s}" for e, s in wanted if (e, s) not in by_key]
        if missing:
            raise RunError(f"{self.study_file} no longer has {'; '.join(missing)}")
        return [by_key[key] for key in wanted]

    def plan(self) -> RunPlan:
        return self.plans()[0]

    def __call__(self) -> dict:
        if self.threads and "OMP_NUM_THREADS" not in os.environ:  # a user's setting wins
            torch.set_num_threads(self.threads)
        outcomes = run_members(self.plans(), RunOptions.from_dict(self.options))
        if len(outcomes) == 1:
            return _as_dict(outcomes[0])
        return {"runs": [_as_dict(o) for o in outcomes]}

    def checkpoint(self, *args, **kwargs):
        """Called by submitit on preemption or time-out: requeue this run unchanged.

        Nothing needs saving here: the run's own checkpoint from its last finished epoch is
        already on disk, and the requeued job resumes from it.
        """
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunJob:
        fields = json.loads(text)
        fields["partners"] = tuple(tuple(x) for x in fields.get("partners", ()))
        return cls(**fields)


def _as_dict(o: Outcome) -> dict:
    return {"run": o.plan.name, "status": o.status, "message": o.message}


def _job(group: list[RunPlan], study_file: str, options: RunOptions,
         outcome_file: Path | None = None, threads: int | None = None) -> RunJob:  # fmt: skip
    quiet = replace(options, quiet=True)  # a job's output goes to a log file: no progress bars
    first, *partners = group
    return RunJob(str(Path(study_file).resolve()), first.experiment.name, first.seed,
                  quiet.to_dict(), tuple((p.experiment.name, p.seed) for p in partners),
                  str(outcome_file) if outcome_file else None, threads)  # fmt: skip


def _units(todo: list[RunPlan], options: RunOptions, ex: Execution,
           auto: int | None = None, echo: Echo | None = None) -> list[list[RunPlan]]:  # fmt: skip
    """What each job trains: one run, or (``--fuse``) a group as one fused network."""
    from harness.grouping import groups

    return groups(todo, options.results, ex, options.fuse, auto, echo)


# --------------------------------------------------------------------------- local, parallel


def visible_gpus() -> list[str]:
    if (env := os.environ.get("CUDA_VISIBLE_DEVICES")) is not None:
        return [g for g in env.split(",") if g.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def local_slots(
    options: RunOptions, gpus: int | str, runs_per_gpu: int, *, given: bool = False
) -> list[str | None]:
    """One entry per concurrent run: the GPU it is pinned to (None on the CPU).

    On the CPU, ``--gpus`` given (``given``) as anything but 1 is refused, ``all`` included;
    a study's ``executor.local.gpus`` is a default for machines with GPUs and only 1 or all
    pass there."""
    device = resolve_device(options.device)
    if device.type != "cuda":
        if gpus != 1 and (given or gpus != "all"):
            where = f"--gpus {gpus}" if given else f"the study's executor.local.gpus: {gpus}"
            raise RunError(f"{where} needs CUDA, and training is on the CPU here (no GPU in "
                           "use); leave out --gpus, and use --runs-per-gpu N for N concurrent "
                           "runs on the CPU")  # fmt: skip
        return [None] * runs_per_gpu
    available = visible_gpus()
    wanted = len(available) if gpus == "all" else int(gpus)
    if wanted > len(available):
        raise RunError(f"--gpus {gpus}: only {plural(len(available), 'GPU')} visible "
                       f"({', '.join(available) or 'none'})")  # fmt: skip
    return [g for g in available[:wanted] for _ in range(runs_per_gpu)]


# A stopped worker records its run in moments; this is the last resort for one that hangs.
STOP_GRACE_S = 120.0
# The workers training now, by slot: each one's process, the runs it trains, where a fused
# group's worker reports their outcomes.
RunningWorkers = dict[int, tuple[subprocess.Popen, list[RunPlan], Path | None]]


def run_parallel(
    study: Study, study_file: str, options: RunOptions, slots: list[str | None], echo: Echo
) -> list[Outcome]:
    """Train the study's pending runs in worker processes, one per slot at a time.

    On SIGINT, SIGTERM or SIGHUP no further run starts, and every worker is stopped and waited for
    (a third Ctrl-C or SIGTERM kills them instead: ``_abandon_workers``).
    """
    outcomes, todo = pending_runs(study, options, echo, study_file)
    ex = execution_for(options)
    for note in (cpu_note(options, ex), gpu_note(options, ex)) if todo else ():
        if note:
            echo(note)
    if todo:
        # Found here, once, before any worker starts, as one process finds it before its
        # first run: a copy that is missing, lacks a batch file or has one cut short or that
        # the loader refuses (dtype, shape, labels), or a --subset larger than it, is one
        # error that says what to do (a RunError), not every worker failing its run with
        # "worker exited with code 1" (and K workers downloading into the cache at once).
        # Each batch is checked and dropped; keeping the arrays is left to the workers, which
        # a stop signal may interrupt there. Before adopting, as one process checks every
        # run's --subset before it adopts any twin (runner._train_in_turn).
        find_data(options, todo)
    # Here rather than in a worker: a run that adopts its twin needs no worker started.
    adopted, todo = adopt_twins(todo, options, ex, lambda: load_data(options, echo), echo)
    outcomes += adopted
    units = _units(todo, options, ex, echo=echo)
    running: RunningWorkers = {}
    # Runs side by side share the CPU's cores (for training on the CPU, for compiling on a
    # GPU) instead of each taking all of them: K cold compilations with a thread per core
    # each would starve one another.
    threads = cores_each(len(slots))
    per_gpu = Counter(slots)
    deadline = options.stop_at()
    # The loop looks at stop_requested between its steps, so a signal never lands between
    # starting a worker and recording it (which would leave that worker training on its own).
    # A third Ctrl-C kills the workers still in `running` and exits 130 at once.
    with stops_taken(WORKERS_STOPPING, raises=False, still_stopping=WORKERS_STILL_STOPPING,
                     abandon=lambda name: _abandon_workers(running, name)):  # fmt: skip
        try:
            while (units or running) and not stop_requested():
                for slot, (proc, group, report) in list(running.items()):
                    if proc.poll() is not None:
                        del running[slot]
                        for outcome in _unit_outcomes(group, options, proc.returncode, report):
                            outcomes.append(outcome)
                            echo(line(outcome))
                for slot, gpu in enumerate(slots):
                    if slot not in running and units and not stop_requested():
                        group = units.pop(0)
                        if deadline is not None and deadline.passed():
                            for p in group:
                                outcome = Outcome(p, "pending", NOT_STARTED)
                                outcomes.append(outcome)
                                echo(line(outcome))
                            continue
                        shared = replace(options, runs_per_device=per_gpu[gpu])
                        report = _report_file(group, options)
                        proc = _start_worker(group, study_file, shared, gpu, threads, report, echo)
                        running[slot] = (proc, group, report)
                time.sleep(0.2)
        finally:
            # Stopped (or failing here): no worker may go on training without us.
            outcomes += _stop_workers(list(running.values()), options, echo)
    return outcomes


WORKERS_STOPPING = ("\nstopping ({}): each worker records its run as interrupted at its last "
                    "finished epoch")  # fmt: skip
WORKERS_STILL_STOPPING = (
    "\nstill stopping (each worker records its run at its last finished epoch); Ctrl-C again "
    "to abandon now: the workers are killed and their runs resume from their last saved epoch\n"
)
ABANDON_WAIT_S = 5.0  # at most, for the killed workers to be gone before the prompt returns


def _abandon_workers(running: RunningWorkers, signal_name: str) -> str:
    """At a third stop signal: SIGKILL every worker still running (each ignores every signal
    after its first) and return the line that says what was abandoned. Run in the signal
    handler, which ends this process right after; no output but that line (a print here
    could land inside one of the interrupted code's)."""
    killed: list[int] = []
    names: list[str] = []
    for proc, group, _ in list(running.values()):
        if proc.returncode is not None:
            continue  # reaped: its runs are recorded
        try:
            if os.waitpid(proc.pid, os.WNOHANG)[0]:
                continue  # it ended meanwhile: its runs are recorded
            os.kill(proc.pid, signal.SIGKILL)
        except (ChildProcessError, ProcessLookupError):
            continue  # reaped by the wait that this signal interrupted
        killed.append(proc.pid)
        names += [f"{p.study}/{p.name}" for p in group]
    deadline = time.monotonic() + ABANDON_WAIT_S
    for pid in killed:
        with contextlib.suppress(ChildProcessError):
            while not os.waitpid(pid, os.WNOHANG)[0] and time.monotonic() < deadline:
                time.sleep(0.02)
    if not names:
        return f"\nabandoned ({signal_name}): no worker was still running\n"
    return (f"\nabandoned ({signal_name}): killed the workers still recording "
            f"{', '.join(names)}; each run resumes from its last saved epoch (starts over if "
            "it saved none)\n")  # fmt: skip


def _stop_workers(
    workers: list[tuple[subprocess.Popen, list[RunPlan], Path | None]],
    options: RunOptions,
    echo: Echo,
) -> list[Outcome]:
    """SIGTERM every worker and wait for each to record its runs; SIGKILL those that hang."""
    for proc, _, _ in workers:
        proc.send_signal(signal.SIGTERM)  # does nothing to one that has already ended
    deadline = time.monotonic() + STOP_GRACE_S
    outcomes = []
    for proc, group, report in workers:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            reason = f"SIGKILL: still running {STOP_GRACE_S:g} s after SIGTERM"
            for p in group:
                store.mark_interrupted(p.directory(options.results), reason)
        for outcome in _unit_outcomes(group, options, proc.returncode, report):
            outcomes.append(outcome)
            echo(line(outcome))
    return outcomes


# Outcomes a group's worker reports that the store cannot tell (nothing was written).
_REPORTED_ONLY = ("busy", "pending", "skipped", REFUSED)


def _unit_outcomes(group: list[RunPlan], options: RunOptions, returncode: int,
                   report: Path | None) -> list[Outcome]:  # fmt: skip
    """How each run of a worker's job ended: from the store, with what the group's worker
    reported for runs it left alone; a worker that died without reporting fails (or, when
    stopped, interrupts) every run of its group."""
    if len(group) == 1:
        return [_worker_outcome(group[0], options, returncode)]
    reported = {}
    if report is not None:
        entries = store.read_json(report)
        if isinstance(entries, list):
            reported = {e.get("run"): e for e in entries if isinstance(e, dict)}
        report.unlink(missing_ok=True)
    outcomes = []
    for p in group:
        entry = reported.get(p.name)
        if entry is not None and entry.get("status") in _REPORTED_ONLY:
            outcomes.append(Outcome(p, entry["status"], entry.get("message", "")))
        else:
            outcomes.append(_worker_outcome(p, options, returncode))
    return outcomes


REPORTS = ".workers"  # under the results: where groups' workers report their runs' outcomes


def _report_file(group: list[RunPlan], options: RunOptions) -> Path | None:
    """Where a group's worker writes its runs' outcomes (one run's are its exit status),
    named for the parent that reads it: its host and process."""
    if len(group) == 1:
        return None
    first = group[0]
    folder = options.results / REPORTS
    folder.mkdir(parents=True, exist_ok=True)
    sweep_reports(folder)
    path = folder / (f"{first.study}-{first.experiment.name}-{first.seed}-"
                     f"{socket.gethostname()}-{os.getpid()}.json")  # fmt: skip
    path.unlink(missing_ok=True)
    return path


def sweep_reports(folder: Path) -> None:
    """Remove the reports whose parent is gone: it read and removed each as its worker
    ended, unless it was abandoned (a third Ctrl-C, with a worker that had just reported) or
    killed. Only this host's: a store is shared, and another machine's processes cannot be
    asked; a live process's (a parent training beside this one) stays."""
    host = socket.gethostname()
    for path in folder.glob("*.json"):
        rest, _, pid = path.stem.rpartition("-")
        if not (rest.endswith(f"-{host}") and pid.isdigit()) or _alive(int(pid)):
            continue
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's: alive
    return True


def _make_way_for_log(run_dir: Path, echo: Echo) -> None:
    """A directory named like the worker's log (a stray copy, an edit) could not be opened
    for appending: keep it aside, with what it holds, as a run's other files are."""
    for path, kept in store.directories_in_the_way(run_dir, (store.WORKER_LOG,)):
        echo(f"warning: {path} is a directory where a file belongs; kept as {kept.name}")


def _start_worker(group: list[RunPlan], study_file: str, options: RunOptions, gpu: str | None,
                  threads: int | None, report: Path | None, echo: Echo):  # fmt: skip
    p = group[0]
    run_dir = p.directory(options.results)
    run_dir.mkdir(parents=True, exist_ok=True)
    _make_way_for_log(run_dir, echo)
    for partner in group[1:]:  # a partner's log says where its training was logged
        partner_dir = partner.directory(options.results)
        partner_dir.mkdir(parents=True, exist_ok=True)
        _make_way_for_log(partner_dir, echo)
        with open(partner_dir / store.WORKER_LOG, "a") as note:
            note.write(f"--- {now_utc()} trained fused with {p.name}: log in "
                       f"{run_dir / store.WORKER_LOG}\n")  # fmt: skip
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    else:
        env["OMP_NUM_THREADS"] = str(threads)
    env.setdefault(COMPILE_THREADS, str(threads))
    log = open(run_dir / store.WORKER_LOG, "a")  # noqa: SIM115 (the child owns it)
    names = ", ".join(m.name for m in group)
    where = f"GPU {gpu}" if gpu is not None else f"the CPU ({plural(threads, 'thread')})"
    log.write(f"--- {now_utc()} worker for {names} on {where}\n")
    log.flush()
    job = _job(group, study_file, options, report)
    command = [sys.executable, "-m", "harness", "worker", job.to_json()]
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


# How a worker ends when a stop signal stopped it: 130 once it has recorded its run;
# killed by the signal itself when that came before its handler, while starting up. Other
# deaths by a signal (SIGSEGV, the kernel's OOM killer's SIGKILL) are crashes: failed.
STOPPED_EXITS = (130, -signal.SIGINT, -signal.SIGTERM, -signal.SIGHUP)


def _worker_outcome(p: RunPlan, options: RunOptions, returncode: int) -> Outcome:
    run_dir = p.directory(options.results)
    log = run_dir / store.WORKER_LOG
    if returncode == BUSY_EXIT:  # another process has it: never mark it failed under them
        return Outcome(p, "busy", "being trained by another process")
    if returncode == REFUSED_EXIT:  # the run was left as it was: not a failure of the run
        return Outcome(p, REFUSED, "resuming it under another precision or pipeline, or on "
                                   f"other data, was refused; what to do: {log}")  # fmt: skip
    try:
        summary = store.read_summary(run_dir) or {}
    except store.DamagedFile:
        summary = {}
    status = summary.get("status")
    if status == store.COMPLETE and summary.get(SHARED_WITH):  # the worker adopted a twin
        return Outcome(p, ADOPTED, f"shared with {summary[SHARED_WITH]}, the same training"
                                   f"{result_text(summary)}")  # fmt: skip
    if status in (store.COMPLETE, store.DIVERGED):
        return Outcome(p, status, result_text(summary).lstrip(": ") or status)
    if status == store.PAUSED:
        return Outcome(p, status, paused_text(summary))
    if status is None and returncode == NOT_STARTED_EXIT:
        return Outcome(p, "pending", NOT_STARTED)
    if status == store.INTERRUPTED:
        return Outcome(p, status, stopped_text(run_dir, summary))
    if returncode in STOPPED_EXITS:
        _record_interrupted(run_dir)  # in case the signal came before the worker's handler
        return Outcome(p, store.INTERRUPTED, stopped_text(run_dir))
    if status != store.FAILED:
        store.mark_failed(run_dir, f"worker exited with code {returncode}; log: {log}")
    error = str((store.read_summary(run_dir) or {}).get("error"))
    # The log once: the error that mark_failed wrote above names it already.
    return Outcome(p, store.FAILED, error if str(log) in error else f"{error} (log: {log})")


def worker_main(spec: str) -> int:
    """Entry point of `repro worker`: train one run; exit 0 unless it failed (1), was stopped
    (130) or found its time budget spent before it could start (NOT_STARTED_EXIT).

    SIGINT, SIGTERM or SIGHUP, from start-up to the last epoch, leaves the run recorded as
    interrupted with its checkpoint, and the worker exits 130.
    """
    take_stop_signals()
    for s in stop_signals():
        signal.signal(s, _interrupt_once)
    job = RunJob.from_json(spec)
    options = RunOptions.from_dict(job.options)
    group = job.plans()
    try:
        outcomes = run_members(group, options)
    except KeyboardInterrupt:  # before training started (signals are ignored from here on)
        outcomes = [Outcome(p, store.INTERRUPTED, "stopped before training started")
                    for p in group]  # fmt: skip
    for o in outcomes:
        print(json.dumps(_as_dict(o)))
    if job.outcome_file:
        store.write_json(Path(job.outcome_file), [_as_dict(o) for o in outcomes])
    if len(outcomes) > 1:
        stopped = [o for o in outcomes if o.status == store.INTERRUPTED]
        for o in stopped:
            _record_interrupted(o.plan.directory(options.results))
        if stopped:
            return 130
        ok = ("complete", "diverged", "paused", "skipped", "pending", "busy", REFUSED, ADOPTED)
        return 0 if all(o.status in ok for o in outcomes) else 1
    outcome = outcomes[0]
    if outcome.status == store.INTERRUPTED:
        _record_interrupted(outcome.plan.directory(options.results))
        return 130
    if outcome.status == "pending":
        return NOT_STARTED_EXIT
    if outcome.status == REFUSED:
        return REFUSED_EXIT
    if outcome.status == "busy":
        return BUSY_EXIT
    return 0 if outcome.status in ("complete", "diverged", "paused", "skipped", ADOPTED) else 1


def _interrupt_once(signum, frame) -> None:
    """Stop at the first stop signal (SIGINT, SIGTERM, SIGHUP), ignore later ones.

    Ctrl-C reaches a worker twice, from the terminal and forwarded by its parent; the second
    must not cut short the recording of the first. A DataLoader worker forked from this
    process inherits this handler; there it does nothing (see ``harness.stop_signals``).
    """
    if not request_stop(signum):
        return
    leave_a_hung_up_terminal(signum)
    raise_unless_deferred(signum)


def _record_interrupted(run_dir: Path) -> None:
    """Make sure the store says a stopped run is interrupted.

    Training records that itself; a worker stopped before training started has not.
    """
    if store.summary_status(run_dir) == store.INTERRUPTED:
        return
    if store.is_locked(run_dir):
        return  # another process took the run meanwhile and trains it: not ours to mark
    store.mark_interrupted(run_dir, "a stop signal before training started")


# --------------------------------------------------------------------------- slurm


@dataclass
class Submission:
    outcomes: list[Outcome]
    jobs: list  # submitit jobs, in the order of the submitted outcomes


NO_SLURM = (
    "--executor slurm: no Slurm on this machine (srun not found); use --executor local, "
    "or submitit-local to try the Slurm path here"
)


def submit(
    study: Study,
    study_file: str,
    options: RunOptions,
    settings: SlurmSettings,
    echo: Echo,
    cluster: str = "slurm",
) -> Submission:
    """Submit every pending run as one task of a job array; return at once."""
    try:
        import submitit
    except ImportError:
        raise RunError("--executor slurm needs submitit: pip install -e '.[slurm]'") from None
    if cluster == "slurm" and shutil.which("srun") is None:
        raise RunError(NO_SLURM)
    outcomes, todo = pending_runs(study, options, echo, study_file)
    if not todo:
        return Submission(outcomes, [])
    folder = options.results / ".submitit" / study.name
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    except RuntimeError as exc:  # submitit's own check that Slurm is here
        raise RunError(f"{NO_SLURM} ({exc})") from None
    executor.update_parameters(**slurm_parameters(settings, study.name, cluster))
    # Grouped here, where the GPU the jobs will get is not known: `--fuse auto` takes the
    # largest group (harness.grouping.AUTO_MAX); give K to size groups for a smaller GPU.
    from harness.grouping import AUTO_MAX, AUTO_MAX_CPU

    auto = AUTO_MAX_CPU if options.device == "cpu" else AUTO_MAX
    units = _units(todo, options, choose(torch.device("cpu"), pipeline=options.pipeline), auto)
    # On this machine (submitit-local) the jobs start at once and share its cores, as local
    # workers do: with torch's thread per core each, two jobs on two cores spun against each
    # other (69 s of CPU instead of 18 s, the 2-core development VM under load, 2026-11-26).
    # On a cluster Slurm gives each task its own CPUs.
    threads = cores_each(len(units)) if cluster == "local" else None
    with executor.batch():
        jobs = [executor.submit(_job(group, study_file, options, threads=threads))
                for group in units]  # fmt: skip
    for group, job in zip(units, jobs, strict=True):
        for p in group:
            run_dir = p.directory(options.results)
            store.write_json(run_dir / store.JOB, {
                "executor": cluster, "job_id": job.job_id, "folder": str(folder.resolve()),
                "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr),
                "submitted": now_utc(),
            })  # fmt: skip
            fused = f" (fused with {plural(len(group) - 1, 'other run')})" if len(group) > 1 else ""
            outcome = Outcome(p, "submitted", f"job {job.job_id}{fused}")
            outcomes.append(outcome)
            echo(line(outcome))
    what = f"job array {jobs[0].job_id.split('_')[0]}" if cluster == "slurm" else "local jobs"
    grouped = f" in {plural(len(jobs), 'job')}" if len(jobs) != len(todo) else ""
    # The store is named as `repro run`'s "next:" line names it: without it, status would
    # read the default store and show none of these runs.
    echo(f"submitted {plural(len(todo), 'run')}{grouped} as {what}; follow with "
         f"`repro status {study_file} --results {options.results}`; logs in {folder}")  # fmt: skip
    return Submission(outcomes, jobs)


def slurm_parameters(settings: SlurmSettings, study: str, cluster: str) -> dict:
    """submitit parameters for a study's array (generic names plus ``slurm_`` ones)."""
    params: dict = {
        "name": f"repro-{study}",
        "timeout_min": settings.time_min,
        "gpus_per_node": settings.gpus_per_task,
        "cpus_per_task": settings.cpus_per_task,
        "tasks_per_node": 1,
        "nodes": 1,
    }
    if settings.mem_gb:
        params["mem_gb"] = settings.mem_gb
    if cluster == "slurm":
        params["slurm_array_parallelism"] = settings.array_parallelism
        # Eligible for requeue after preemption; submitit requeues on time-out itself.
        params["slurm_additional_parameters"] = {"requeue": True}
        for key in ("partition", "constraint", "account", "qos"):
            if getattr(settings, key):
                params[f"slurm_{key}"] = getattr(settings, key)
    else:
        params["gpus_per_node"] = 0 if not torch.cuda.is_available() else settings.gpus_per_task
    return params


TERMINAL_FAILURES = ("FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
                     "PREEMPTED", "BOOT_FAIL", "DEADLINE")  # fmt: skip


def job_state(run_dir: Path) -> str | None:
    """The scheduler's state of the run's recorded job, or None when it cannot be asked."""
    info = store.read_job(run_dir)
    if not info or info.get("executor") != "slurm":
        return None
    try:
        import submitit

        state = submitit.SlurmJob(folder=info["folder"], job_id=info["job_id"]).state
    except Exception:
        return None
    return state.split()[0] if state else None

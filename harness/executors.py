"""Where runs execute: this process, worker processes over several GPUs, or Slurm via submitit.

- ``local`` with one slot: runs train one after another in this process (``harness.runner``).
- ``local`` with several slots (``--gpus N`` x ``--runs-per-gpu K``): each run trains in its
  own ``repro worker`` process, pinned to one GPU with ``CUDA_VISIBLE_DEVICES``; a new run
  starts as soon as a slot frees. SIGINT (Ctrl-C) or SIGTERM to the command is forwarded to
  every worker; each records its run as interrupted (resumable) and the command exits 130.
  Runs not yet started stay pending. A signal to one worker stops that run only.
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
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from harness import store
from harness.choices import EXECUTORS  # noqa: F401 (re-exported)
from harness.environment import now_utc
from harness.plan import RunPlan, plan
from harness.runner import (
    NOT_STARTED,
    REFUSED,
    Outcome,
    RunError,
    RunOptions,
    line,
    paused_text,
    pending_runs,
    resolve_device,
    result_text,
    run_single,
)
from harness.schema import SlurmSettings, Study
from harness.studyfile import load_study

Echo = Callable[[str], None]
NOT_STARTED_EXIT = 75  # a worker whose time budget was spent before its run could start
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
REFUSED_EXIT = 76  # a worker that would have resumed its run under another execution
BUSY_EXIT = 77  # a worker that found its run being trained by another process: not a failure


# --------------------------------------------------------------------------- one run as a job


@dataclass(frozen=True)
class RunJob:
    """One run, as plain data: what a worker process or a Slurm array task executes."""

    study_file: str
    experiment: str
    seed: int
    options: dict  # RunOptions.to_dict()

    def plan(self) -> RunPlan:
        opts = RunOptions.from_dict(self.options)
        study = load_study(self.study_file)
        for p in plan(study, opts.overrides, self.study_file):
            if p.experiment.name == self.experiment and p.seed == self.seed:
                return p
        raise RunError(f"{self.study_file} no longer has {self.experiment}, seed {self.seed}")

    def __call__(self) -> dict:
        outcome = run_single(self.plan(), RunOptions.from_dict(self.options))
        return {"run": outcome.plan.name, "status": outcome.status, "message": outcome.message}

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
        return cls(**json.loads(text))


def _job(p: RunPlan, study_file: str, options: RunOptions) -> RunJob:
    quiet = replace(options, quiet=True)  # a job's output goes to a log file: no progress bars
    return RunJob(str(Path(study_file).resolve()), p.experiment.name, p.seed, quiet.to_dict())


# --------------------------------------------------------------------------- local, parallel


def visible_gpus() -> list[str]:
    if (env := os.environ.get("CUDA_VISIBLE_DEVICES")) is not None:
        return [g for g in env.split(",") if g.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def local_slots(options: RunOptions, gpus: int | str, runs_per_gpu: int) -> list[str | None]:
    """One entry per concurrent run: the GPU it is pinned to (None on the CPU)."""
    device = resolve_device(options.device)
    if device.type != "cuda":
        if gpus not in (1, "all"):
            raise RunError(f"--gpus {gpus} needs CUDA; on the CPU use --runs-per-gpu for "
                           "concurrent runs")  # fmt: skip
        return [None] * runs_per_gpu
    available = visible_gpus()
    wanted = len(available) if gpus == "all" else int(gpus)
    if wanted > len(available):
        raise RunError(f"--gpus {gpus}: only {len(available)} GPU(s) visible "
                       f"({', '.join(available) or 'none'})")  # fmt: skip
    return [g for g in available[:wanted] for _ in range(runs_per_gpu)]


# A stopped worker records its run in moments; this is the last resort for one that hangs.
STOP_GRACE_S = 120.0
STOPPED = "stopped; run again to resume"


def run_parallel(
    study: Study, study_file: str, options: RunOptions, slots: list[str | None], echo: Echo
) -> list[Outcome]:
    """Train the study's pending runs in worker processes, one per slot at a time.

    On SIGINT or SIGTERM no further run starts, and every worker is stopped and waited for.
    """
    outcomes, todo = pending_runs(study, options, echo, study_file)
    running: dict[int, tuple[subprocess.Popen, RunPlan]] = {}
    # Runs side by side share the CPU's cores (for training on the CPU, for compiling on a
    # GPU) instead of each taking all of them: K cold compilations with a thread per core
    # each would starve one another.
    threads = max(1, (os.cpu_count() or 1) // len(slots))
    per_gpu = Counter(slots)
    deadline = options.stop_at()
    with _stop_requests() as stop:
        try:
            while (todo or running) and not stop:
                for slot, (proc, p) in list(running.items()):
                    if proc.poll() is not None:
                        del running[slot]
                        outcome = _worker_outcome(p, options, proc.returncode)
                        outcomes.append(outcome)
                        echo(line(outcome))
                for slot, gpu in enumerate(slots):
                    if slot not in running and todo:
                        p = todo.pop(0)
                        if deadline is not None and deadline.passed():
                            outcome = Outcome(p, "pending", NOT_STARTED)
                            outcomes.append(outcome)
                            echo(line(outcome))
                            continue
                        shared = replace(options, runs_per_device=per_gpu[gpu])
                        running[slot] = (_start_worker(p, study_file, shared, gpu, threads), p)
                time.sleep(0.2)
        finally:
            # Stopped (or failing here): no worker may go on training without us.
            outcomes += _stop_workers(list(running.values()), options, echo)
    return outcomes


@contextlib.contextmanager
def _stop_requests() -> Iterator[list[int]]:
    """While inside, SIGINT and SIGTERM are noted in the yielded list instead of acting at once.

    The scheduling loop looks at the list between its steps, so a signal never lands between
    starting a worker and recording it (which would leave that worker training on its own),
    and a second Ctrl-C cannot cut short the stopping of the workers.
    """
    noted: list[int] = []

    def note(signum, frame) -> None:
        if not noted:
            name = signal.Signals(signum).name
            print(f"\nstopping ({name}): each worker records its run as interrupted at its "
                  "last finished epoch", file=sys.stderr, flush=True)  # fmt: skip
        noted.append(signum)

    previous = {s: signal.signal(s, note) for s in STOP_SIGNALS}
    try:
        yield noted
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _stop_workers(
    workers: list[tuple[subprocess.Popen, RunPlan]], options: RunOptions, echo: Echo
) -> list[Outcome]:
    """SIGTERM every worker and wait for each to record its run; SIGKILL those that hang."""
    for proc, _ in workers:
        proc.send_signal(signal.SIGTERM)  # does nothing to one that has already ended
    deadline = time.monotonic() + STOP_GRACE_S
    outcomes = []
    for proc, p in workers:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            reason = f"SIGKILL: still running {STOP_GRACE_S:g} s after SIGTERM"
            store.mark_interrupted(p.directory(options.results), reason)
        outcome = _worker_outcome(p, options, proc.returncode)
        outcomes.append(outcome)
        echo(line(outcome))
    return outcomes


def _start_worker(
    p: RunPlan, study_file: str, options: RunOptions, gpu: str | None, threads: int | None
):
    run_dir = p.directory(options.results)
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    else:
        env["OMP_NUM_THREADS"] = str(threads)
    env.setdefault("TORCHINDUCTOR_COMPILE_THREADS", str(threads))
    log = open(run_dir / store.WORKER_LOG, "a")  # noqa: SIM115 (the child owns it)
    log.write(f"--- {now_utc()} worker for {p.name} on GPU {gpu or '-'}\n")
    log.flush()
    job = _job(p, study_file, options)
    command = [sys.executable, "-m", "harness", "worker", job.to_json()]
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


# How a worker ends when SIGINT or SIGTERM stopped it: 130 once it has recorded its run;
# killed by the signal itself when that came before its handler, while starting up. Other
# deaths by a signal (SIGSEGV, the kernel's OOM killer's SIGKILL) are crashes: failed.
STOPPED_EXITS = (130, -signal.SIGINT, -signal.SIGTERM)


def _worker_outcome(p: RunPlan, options: RunOptions, returncode: int) -> Outcome:
    run_dir = p.directory(options.results)
    log = run_dir / store.WORKER_LOG
    if returncode == BUSY_EXIT:  # another process has it: never mark it failed under them
        return Outcome(p, "busy", "being trained by another process")
    if returncode == REFUSED_EXIT:  # the run was left as it was: not a failure of the run
        return Outcome(p, REFUSED, f"resuming it under another precision or pipeline was "
                                   f"refused; what to do: {log}")  # fmt: skip
    try:
        summary = store.read_summary(run_dir) or {}
    except store.DamagedFile:
        summary = {}
    status = summary.get("status")
    if status in (store.COMPLETE, store.DIVERGED):
        return Outcome(p, status, result_text(summary).lstrip(": ") or status)
    if status == store.PAUSED:
        return Outcome(p, status, paused_text(summary))
    if status is None and returncode == NOT_STARTED_EXIT:
        return Outcome(p, "pending", NOT_STARTED)
    if status == store.INTERRUPTED:
        return Outcome(p, status, STOPPED)
    if returncode in STOPPED_EXITS:
        _record_interrupted(run_dir)  # in case the signal came before the worker's handler
        return Outcome(p, store.INTERRUPTED, STOPPED)
    if status != store.FAILED:
        store.mark_failed(run_dir, f"worker exited with code {returncode}; log: {log}")
    error = (store.read_summary(run_dir) or {}).get("error")
    return Outcome(p, store.FAILED, f"{error} (log: {log})")


def worker_main(spec: str) -> int:
    """Entry point of `repro worker`: train one run; exit 0 unless it failed (1), was stopped
    (130) or found its time budget spent before it could start (NOT_STARTED_EXIT).

    SIGINT or SIGTERM, from start-up to the last epoch, leaves the run recorded as interrupted
    with its checkpoint, and the worker exits 130.
    """
    for s in STOP_SIGNALS:
        signal.signal(s, _interrupt_once)
    job = RunJob.from_json(spec)
    options = RunOptions.from_dict(job.options)
    try:
        outcome = run_single(job.plan(), options)
    except KeyboardInterrupt:  # before training started (signals are ignored from here on)
        outcome = Outcome(job.plan(), store.INTERRUPTED, "stopped before training started")
    print(json.dumps({"run": outcome.plan.name, "status": outcome.status,
                      "message": outcome.message}))  # fmt: skip
    if outcome.status == store.INTERRUPTED:
        _record_interrupted(outcome.plan.directory(options.results))
        return 130
    if outcome.status == "pending":
        return NOT_STARTED_EXIT
    if outcome.status == REFUSED:
        return REFUSED_EXIT
    if outcome.status == "busy":
        return BUSY_EXIT
    return 0 if outcome.status in ("complete", "diverged", "paused", "skipped") else 1


def _interrupt_once(signum, frame) -> None:
    """Stop at the first SIGINT or SIGTERM, ignore later ones.

    Ctrl-C reaches a worker twice, from the terminal and forwarded by its parent; the second
    must not cut short the recording of the first.
    """
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def _record_interrupted(run_dir: Path) -> None:
    """Make sure the store says a stopped run is interrupted.

    Training records that itself; a worker stopped before training started has not.
    """
    if store.summary_status(run_dir) == store.INTERRUPTED:
        return
    if store.is_locked(run_dir):
        return  # another process took the run meanwhile and trains it: not ours to mark
    store.mark_interrupted(run_dir, "SIGINT or SIGTERM before training started")


# --------------------------------------------------------------------------- slurm


@dataclass
class Submission:
    outcomes: list[Outcome]
    jobs: list  # submitit jobs, in the order of the submitted outcomes


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
    outcomes, todo = pending_runs(study, options, echo, study_file)
    if not todo:
        return Submission(outcomes, [])
    folder = options.results / ".submitit" / study.name
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(**slurm_parameters(settings, study.name, cluster))
    with executor.batch():
        jobs = [executor.submit(_job(p, study_file, options)) for p in todo]
    for p, job in zip(todo, jobs, strict=True):
        run_dir = p.directory(options.results)
        store.write_json(run_dir / store.JOB, {
            "executor": cluster, "job_id": job.job_id, "folder": str(folder.resolve()),
            "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr),
            "submitted": now_utc(),
        })  # fmt: skip
        outcome = Outcome(p, "submitted", f"job {job.job_id}")
        outcomes.append(outcome)
        echo(line(outcome))
    what = f"job array {jobs[0].job_id.split('_')[0]}" if cluster == "slurm" else "local jobs"
    echo(f"submitted {len(jobs)} run(s) as {what}; follow with `repro status {study_file}`; "
         f"logs in {folder}")  # fmt: skip
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
    info = store.read_json(run_dir / store.JOB)
    if not info or info.get("executor") != "slurm":
        return None
    try:
        import submitit

        state = submitit.SlurmJob(folder=info["folder"], job_id=info["job_id"]).state
    except Exception:
        return None
    return state.split()[0] if state else None

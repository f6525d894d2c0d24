"""`repro bench`: steady-state seconds per epoch of the canonical pipeline and the fast path.

For each model, both pipelines train the same recipe (SGD, batch 128 by default, pad-4 crop
and flip, per-channel normalisation) on the same device in one invocation. The first
``warmup`` epochs of each (compilation, cuDNN autotuning, worker start-up) are dropped; the
median of the measured epochs is reported with images/s and achieved TFLOP/s
(6 x forward MACs per image, see ``harness.flops``). Only the training part of an epoch is
timed, as in ``repro run``'s sec/epoch.

With ``fuse`` (widths K), each model also gets fusion rows: the aggregate images/s of K runs
trained as one fused network (``harness.fused_train``), one after another, and as K
concurrent processes on the same device (see :func:`run_fusion`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import multiprocessing as mp
import os
import platform
import queue
import statistics
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from harness.choices import BENCH_MODELS
from harness.data import Cifar10
from harness.environment import cudnn_text, device_name, git_commit
from harness.execution import (
    COMPILE_THREADS,
    Execution,
    choose,
    compiled_label,
    configure_backends,
    cores_each,
)
from harness.flops import TRAIN_FLOPS_PER_MAC, forward_macs
from harness.loader import derive_seed
from harness.plural import plural
from harness.schedule import LearningRate, Length
from harness.schema import Recipe
from harness.step_phases import HostPhases, time_phases
from harness.stop_signals import release_held_stops, stops_held
from harness.store import write_text
from harness.train import Batches, SilentProgress, Trainer, make_loader, prepare_data
from harness.zoo import ModelSpec, spec_from_name

DEFAULT_MODELS = BENCH_MODELS
# Training steps a profile holds (`repro bench --profile`): 30 of resnet20 were 44 ms of GPU
# time and 258 to 347 ms of CPU time on an H100 (benchmarks/profile-h100/, 2026-11-26).
PROFILE_STEPS = 30


def bench_recipe(batch_size: int, subset: int | None, epochs: int) -> Recipe:
    return Recipe.model_validate(
        {
            "optimizer": {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
            "batch_size": batch_size,
            "epochs": epochs,
            "normalization": {"kind": "per_channel"},
            "augmentation": {"crop": {"padding": 4}, "flip": True},
            "train_images": subset,
        }
    )


def synthetic_cifar(train: int = 50_000, test: int = 1_000) -> Cifar10:
    """Random images of CIFAR-10's shape: timing does not depend on what the pixels show."""
    rng = np.random.default_rng(0)
    return Cifar10(
        train_images=rng.integers(0, 256, (train, 3, 32, 32), dtype=np.uint8),
        train_labels=rng.integers(0, 10, train),
        test_images=rng.integers(0, 256, (test, 3, 32, 32), dtype=np.uint8),
        test_labels=rng.integers(0, 10, test),
        path=Path("synthetic"),
        official=False,
        fingerprint="synthetic",
    )


@dataclass
class Measurement:
    model: str
    pipeline: str
    epoch_seconds: list[float]  # measured epochs only
    sec_per_epoch: float
    images_per_epoch: int
    images_per_second: float
    forward_macs: int
    tflops: float
    execution: dict
    compile_fallback: str | None
    speedup: float | None = None  # canonical / fast, on the fast row
    # What the row cost, to size a GPU slot's bench: its warm-up epochs (compilation and
    # autotuning included) and its whole wall time, set-up to last epoch (no profile).
    warmup_seconds: list[float] = field(default_factory=list)
    row_seconds: float | None = None
    # With --profile, every fast row: where the host's time per step goes (no profiler)
    host_phases: HostPhases | None = None


FUSION_MODES = ("fused", "sequential", "concurrent")


@dataclass
class FusionMeasurement:
    """K runs of one model on one device, trained one of three ways (``mode``):

    - ``fused``: one network of K members (median of the measured epochs' group seconds);
    - ``sequential``: one after another, i.e. K x the fastest solo fast row's sec/epoch;
    - ``concurrent``: K OS processes at once, each one solo run (in the fastest solo fast
      row's execution); the wall time of the
      measured span (first start to last end), divided by the measured epochs.

    ``sec_per_epoch`` is always the wall time in which all K runs train one epoch each, so
    the aggregate images/s is ``k * images_per_epoch / sec_per_epoch`` in every mode.
    """

    model: str
    k: int
    mode: str
    sec_per_epoch: float
    images_per_epoch: int  # of one run
    images_per_second: float  # aggregate, all K runs
    execution: dict
    epoch_seconds: list[float] = field(default_factory=list)  # measured epochs, if timed here
    compile_fallback: str | None = None
    gain_vs_sequential: float | None = None  # this row's images/s / the sequential row's
    gain_vs_concurrent: float | None = None  # on the fused row
    # the row's whole wall time (set-up, compilation, warm-up, measured epochs; processes
    # started and joined); None for the sequential row, which is not trained
    row_seconds: float | None = None


@dataclass
class BenchReport:
    date: str
    device: str
    device_name: str
    versions: dict
    settings: dict
    measurements: list[Measurement] = field(default_factory=list)
    fusion: list[FusionMeasurement] = field(default_factory=list)
    # False until every row asked for is measured: the files are rewritten after each row,
    # so a bench stopped by a slot's timeout still returns what it measured, marked partial.
    complete: bool = False

    def to_json(self) -> dict:
        return asdict(self)


def fast_executions(
    device: torch.device, compile: bool | None, compile_modes: tuple[str, ...] | None
) -> list[Execution]:
    """The fast path's executions a bench times, one per compile mode. None: the one `repro
    run` trains in on the device (harness.execution.choose), its fused groups' mode included.
    Without compilation the mode means nothing: one."""
    fast = [choose(device, compile=compile, compile_mode=m) for m in compile_modes or (None,)]
    return fast if fast[0].compile else fast[:1]


def run_bench(
    data: Cifar10,
    device: torch.device,
    *,
    models: tuple[str, ...] = DEFAULT_MODELS,
    batch_size: int = 128,
    epochs: int = 3,
    warmup: int = 1,
    subset: int | None = None,
    workers: int | None = None,
    compile: bool | None = None,
    compile_modes: tuple[str, ...] | None = None,
    fuse: tuple[int, ...] = (),
    fuse_concurrent: bool = True,
    echo=print,
    on_row: Callable[[BenchReport], None] = lambda report: None,
    profile_dir: Path | None = None,
    profile_steps: int = PROFILE_STEPS,
) -> BenchReport:
    """Time the canonical pipeline, then the fast path once per compile mode, for each model.

    Several modes (``default``, ``reduce-overhead`` = CUDA graphs, ...) give one fast row
    each, so one invocation shows which pays on the device at hand. Each width K in
    ``fuse`` adds fusion rows (:func:`run_fusion`): fused on the fast path in the first mode,
    against the fastest fast row one after another and as K processes;
    ``fuse_concurrent=False`` leaves out the concurrent processes. ``on_row`` sees the report
    after each measured row (and once more when it is complete). With ``profile_dir``, the
    first fast row's trainer, warm from its timed epochs, is profiled right after that row
    (:func:`profile_trainer`): before the model's other rows, so a bench stopped later keeps
    the profile, and with no second set-up or compilation.
    """
    check_subset(data, subset)
    recipe = bench_recipe(batch_size, subset, warmup + epochs)
    fast = fast_executions(device, compile, compile_modes)
    compiled = fast[0].compile
    modes = [ex.compile_mode for ex in fast]
    report = BenchReport(
        date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        device=device.type,
        device_name=device_name(device),
        versions={
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version()
            if torch.backends.cudnn.is_available()
            else None,
            "python": platform.python_version(),
            "harness": git_commit(),
        },
        settings={
            "batch_size": batch_size,
            "measured_epochs": epochs,
            "warmup_epochs": warmup,
            "train_images": subset or len(data.train_labels),
            "compile_modes": modes if compiled else None,
            "data": str(data.path),
            "fuse": list(fuse) or None,
        },
    )
    for name in models:
        spec = spec_from_name(name)
        macs = forward_macs(spec)
        executions = [choose(device, pipeline="canonical", workers=workers)]
        executions += fast
        rows = []
        for ex in executions:
            echo(f"{name}: {ex.pipeline} pipeline ({_how(ex.describe())}), "
                 f"{warmup}+{epochs} epochs ...")  # fmt: skip
            row, warm = _measure(name, spec, recipe, data, ex, warmup, macs)
            if rows:  # the canonical row comes first
                row.speedup = rows[0].sec_per_epoch / row.sec_per_epoch
            rows.append(row)
            report.measurements.append(row)
            on_row(report)
            if profile_dir is not None and ex is not executions[0]:  # a fast row
                echo(f"{name}: host time of {profile_steps} more steps ...")
                row.host_phases = host_phases(warm, profile_steps)
                on_row(report)
            if profile_dir is not None and ex is executions[1]:  # the first fast row
                echo(f"{name}: profile of {profile_steps} fast-path steps ...")
                echo(f"wrote {profile_trainer(warm, name, profile_dir, profile_steps)}")
            del warm  # the trainer's device memory, before the next row's
        # Fusion's gain is over the fastest way measured to train the K runs unfused: the
        # fastest fast row, one after another and as K processes. The first fast row would
        # flatter it where another mode is faster (on an H200, 2026-11-27: resnet20 at 3.993
        # s/epoch in the default mode, 1.705 under CUDA graphs, which `repro run` trains in).
        fastest = min(range(1, len(rows)), key=lambda i: rows[i].sec_per_epoch)
        for k in fuse:
            for fusion_row in run_fusion(
                name,
                spec,
                recipe,
                data,
                executions[1],
                warmup,
                k,
                solo=rows[fastest],
                solo_ex=executions[fastest],
                concurrent=fuse_concurrent,
                echo=echo,
            ):
                report.fusion.append(fusion_row)
                on_row(report)
    report.complete = True
    on_row(report)
    return report


def check_subset(data: Cifar10, subset: int | None) -> None:
    """A --subset larger than the data would be clamped while the table and JSON kept saying
    the number asked for: refuse it, as `repro run` does, so every figure is what was measured."""
    available = len(data.train_labels)
    if subset is not None and subset > available:
        raise BenchError(
            f"--subset {subset}: the data ({data.path}) has {available} training images; "
            f"ask for {available} or fewer, or leave out --subset to time them all"
        )


def run_fusion(
    name: str, spec: ModelSpec, recipe: Recipe, data: Cifar10, ex: Execution, warmup: int,
    k: int, *, solo: Measurement, solo_ex: Execution | None = None, concurrent: bool = True,
    echo=print,
) -> Iterator[FusionMeasurement]:  # fmt: skip
    """K runs (seeds 0..K-1) fused in ``ex``, one after another and (optionally) as K
    processes, each of those a solo run in ``solo_ex`` (default: ``ex``).

    One after another is not trained again: K solo runs in sequence take K times the solo
    fast row's sec/epoch (``solo``, measured in ``solo_ex`` in the same invocation), so its
    aggregate images/s is the solo row's.

    Each row is yielded as soon as it is measured, so that a bench stopped while the K
    processes run keeps the fused row (the H200 slot of 2026-11-27 lost its K=6 fused row
    so); the fused row's gain over the processes is set once they are measured.
    """
    echo(f"{name}: K={k} fused ({_how(ex.describe())}), {warmup}+{len(solo.epoch_seconds)} "
         "epochs ...")  # fmt: skip
    fused = _measure_fused(name, spec, recipe, data, ex, warmup, k)
    sequential = FusionMeasurement(
        model=name, k=k, mode="sequential", sec_per_epoch=k * solo.sec_per_epoch,
        images_per_epoch=solo.images_per_epoch, images_per_second=solo.images_per_second,
        execution=solo.execution, compile_fallback=solo.compile_fallback,
    )  # fmt: skip
    fused.gain_vs_sequential = fused.images_per_second / sequential.images_per_second
    yield fused
    yield sequential
    if concurrent:
        echo(f"{name}: K={k} as concurrent processes ...")
        processes = _measure_concurrent(name, spec, recipe, data, solo_ex or ex, warmup, k)
        processes.gain_vs_sequential = processes.images_per_second / sequential.images_per_second
        fused.gain_vs_concurrent = fused.images_per_second / processes.images_per_second
        yield processes


def _measure_fused(name, spec, recipe, data, ex, warmup, k) -> FusionMeasurement:
    """Train a FusedTrainer of K members for warmup + measured epochs; median group seconds."""
    from harness.fused_train import FusedTrainer, member_batches, member_data

    started = time.perf_counter()
    seeds = list(range(k))
    ex = ex.fused(tuple(f"seed-{s}" for s in seeds))
    configure_backends(ex)
    loaders = [make_loader(recipe, s, run_data, ex) for s, run_data
               in zip(seeds, member_data([(recipe, s) for s in seeds], data, ex.device),
                      strict=True)]  # fmt: skip
    length = Length.of(recipe, len(loaders[0]))
    lr_ats = [LearningRate(recipe, length) for _ in seeds]
    trainer = FusedTrainer(spec, [recipe] * k, seeds, ex)
    seconds, iteration, images = [], 0, 0
    for epoch in range(length.epochs):
        trainer.reseed_dropout([derive_seed(s, "dropout", epoch) for s in seeds])
        steps = member_batches(loaders, epoch, len(loaders[0]))
        results = trainer.train_epoch(steps, lr_ats, iteration, SilentProgress())
        iteration, images = results[0].iteration, results[0].images
        if epoch >= warmup:
            seconds.append(results[0].seconds)  # the group's wall time, the same for all
    median = statistics.median(seconds)
    return FusionMeasurement(
        model=name, k=k, mode="fused", sec_per_epoch=median, images_per_epoch=images,
        images_per_second=k * images / median, execution=ex.describe(), epoch_seconds=seconds,
        compile_fallback=trainer.compile_fallback, row_seconds=time.perf_counter() - started,
    )  # fmt: skip


class BenchError(RuntimeError):
    """A benchmark could not be measured (a concurrent process failed)."""


@dataclass
class _ProcessTiming:
    """What one concurrent process sends back: its measured span, or why it failed."""

    seed: int
    start: float = 0.0  # time.monotonic(): one clock for every process of the machine
    end: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)
    images: int = 0
    compile_fallback: str | None = None
    error: str | None = None
    broken: bool = False  # stopped because another process failed


def _measure_concurrent(name, spec, recipe, data, ex, warmup, k) -> FusionMeasurement:
    """K spawned processes, each one solo fast-path run (seed 0..K-1) on the same device.

    Every process sets up and trains its warm-up epochs, then waits at a barrier, so the
    measured epochs start together. The row's sec/epoch is the measured span's wall time
    (the first process's start to the last one's end) divided by the measured epochs: the
    time in which all K runs trained one epoch each, stragglers included. "spawn", not
    "fork": a forked CUDA context is unusable. On a CPU the cores are split between the
    processes, as K runs sharing a machine would be, rather than oversubscribed.
    """
    began = time.perf_counter()
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(k), ctx.Queue()
    threads = max(1, torch.get_num_threads() // k) if ex.device.type == "cpu" else None
    ex = dataclasses.replace(ex, shared_by=k)
    procs = [ctx.Process(target=_solo_process,
                         args=(spec, recipe, data, ex, seed, warmup, threads, barrier, results))
             for seed in range(k)]  # fmt: skip
    started = []  # a stop may land while they start: those started are stopped
    try:
        with _compile_threads_shared(k):
            for p in procs:
                with stops_held():  # a stop raised inside start() left p half started
                    p.start()
                    started.append(p)
        timings = _collect(procs, barrier, results)
    except BaseException:  # a failure or a stop: the others' figures are of no use now
        _stop_processes(started)
        raise
    finally:
        for p in started:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    epochs = len(timings[0].epoch_seconds)
    span = max(t.end for t in timings) - min(t.start for t in timings)
    images = timings[0].images
    fallbacks = {t.compile_fallback for t in timings} - {None}
    return FusionMeasurement(
        model=name, k=k, mode="concurrent", sec_per_epoch=span / epochs,
        images_per_epoch=images, images_per_second=k * images * epochs / span,
        execution=ex.describe(),
        # per epoch, the slowest process's seconds: what the span is made of
        epoch_seconds=[max(e) for e in zip(*(t.epoch_seconds for t in timings), strict=True)],
        compile_fallback=next(iter(fallbacks), None), row_seconds=time.perf_counter() - began,
    )  # fmt: skip


@contextlib.contextmanager
def _compile_threads_shared(k: int):
    """The processes started within get 1/K of the cores each for Inductor's compile workers,
    as `repro run --runs-per-gpu K` gives its workers (harness.execution.COMPILE_THREADS)."""
    if COMPILE_THREADS in os.environ:
        yield
        return
    os.environ[COMPILE_THREADS] = str(cores_each(k))
    try:
        yield
    finally:
        del os.environ[COMPILE_THREADS]


# How long a concurrent process has to end after its SIGTERM before it is killed: it ends at
# its next Python step, and a GPU slot's stage allows the bench 20 s from its own SIGTERM.
STOP_GRACE_S = 10


def _stop_processes(procs: list) -> None:
    """End the concurrent processes: SIGTERM, which each turns into an ordinary exit
    (_exit_on_sigterm), then SIGKILL for any still running after STOP_GRACE_S.

    Killed at once, a process never ran its clean-up: the named semaphores it held (on a GPU,
    torch.compile's progress bars make one in each) were left to the resource tracker, which
    warned of "leaked semaphore objects" as the bench ended."""
    for p in procs:
        p.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # as death by the signal says it, but through the clean-up


def _collect(procs, barrier, results) -> list[_ProcessTiming]:
    """Every process's timing, in seed order; the first failure (a traceback sent back, or a
    process that died without one) breaks the barrier so that the others stop waiting."""
    timings: dict[int, _ProcessTiming] = {}
    while len(timings) < len(procs):
        try:
            t = results.get(timeout=1.0)
        except queue.Empty:
            dead = [i for i, p in enumerate(procs)
                    if p.exitcode not in (None, 0) and i not in timings]  # fmt: skip
            if dead:
                barrier.abort()
                raise BenchError(f"concurrent process {dead[0]} died "
                                 f"(exit code {procs[dead[0]].exitcode})") from None  # fmt: skip
            continue
        if t.broken:  # the failing process's own message or exit code follows
            timings[t.seed] = t
            continue
        if t.error is not None:
            barrier.abort()
            raise BenchError(f"concurrent process {t.seed} failed:\n{t.error}")
        timings[t.seed] = t
    if any(t.broken for t in timings.values()):  # unreachable unless the barrier was reset
        raise BenchError("a concurrent process stopped without saying why")
    return [timings[i] for i in range(len(procs))]


def _solo_process(spec, recipe, data, ex, seed, warmup, threads, barrier, results) -> None:
    """One concurrent process: warm up, wait for the others, time the measured epochs."""
    release_held_stops(_exit_on_sigterm)  # its parent stops it (_stop_processes)
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        trainer, loader, lr_at, length = _setup(spec, recipe, data, ex, seed)
        iteration, seconds, images = 0, [], 0
        for epoch in range(length.epochs):
            if epoch == warmup:
                barrier.wait()
                start = time.monotonic()
            result = trainer.train_epoch(loader.epoch(epoch), lr_at, iteration, SilentProgress())
            iteration, images = result.iteration, result.images
            if epoch >= warmup:
                seconds.append(result.seconds)
        results.put(_ProcessTiming(seed, start, time.monotonic(), seconds, images,
                                   trainer.compile_fallback))  # fmt: skip
    except threading.BrokenBarrierError:  # another process failed: it says why
        results.put(_ProcessTiming(seed, error="another process failed", broken=True))
    except SystemExit:  # stopped by the parent, which reads nothing more
        raise
    except BaseException:  # sent back whole, so that the parent can say what went wrong
        results.put(_ProcessTiming(seed, error=traceback.format_exc()))
        barrier.abort()  # after the message: the parent reads this one before the others'


def _setup(spec, recipe, data, ex, seed: int = 0) -> tuple[Trainer, Batches, LearningRate, Length]:
    """What a timed or profiled training needs: trainer, batches, learning rate, length."""
    configure_backends(ex)
    run_data = prepare_data(recipe, seed, data, ex.device)
    loader = make_loader(recipe, seed, run_data, ex)
    length = Length.of(recipe, len(loader))
    return Trainer(spec, recipe, seed, ex), loader, LearningRate(recipe, length), length


@dataclass
class WarmTrainer:
    """A trainer after its timed epochs, and where its training stands: what a profile of the
    same steps goes on from, compiled and autotuned already."""

    trainer: Trainer
    loader: Batches
    lr_at: LearningRate
    iteration: int
    epoch: int  # the next epoch's index
    batch_size: int


def _measure(name, spec, recipe, data, ex, warmup, macs) -> tuple[Measurement, WarmTrainer]:
    started = time.perf_counter()
    trainer, loader, lr_at, length = _setup(spec, recipe, data, ex)
    seconds, warming, iteration, images = [], [], 0, 0
    for epoch in range(length.epochs):
        result = trainer.train_epoch(loader.epoch(epoch), lr_at, iteration, SilentProgress())
        iteration, images = result.iteration, result.images
        (seconds if epoch >= warmup else warming).append(result.seconds)
    median = statistics.median(seconds)
    warm = WarmTrainer(trainer, loader, lr_at, iteration, length.epochs, recipe.batch_size)
    return Measurement(
        model=name,
        pipeline=ex.pipeline,
        epoch_seconds=seconds,
        sec_per_epoch=median,
        images_per_epoch=images,
        images_per_second=images / median,
        forward_macs=macs,
        tflops=TRAIN_FLOPS_PER_MAC * macs * images / median / 1e12,
        execution=ex.describe(),
        compile_fallback=trainer.compile_fallback,
        warmup_seconds=warming,
        row_seconds=time.perf_counter() - started,
    ), warm


def _how(ex: dict, compile_fallback: str | None = None) -> str:
    """'bf16, compiled (reduce-overhead), NHWC': an execution in a table cell."""
    how = ex["precision"]
    if compile_fallback:
        how += ", eager (compile failed)"
    elif ex["compile"]:
        how += ", " + compiled_label(ex["compile_mode"])
    else:
        how += ", eager"
    return how + (", NHWC" if ex["channels_last"] else "")


def table(report: BenchReport) -> str:
    hows = [_how(m.execution, m.compile_fallback) for m in report.measurements]
    w = max([len("execution"), *map(len, hows)])
    header = (f"{'model':<12} {'pipeline':<10} {'execution':<{w}} {'sec/epoch':>10} "
              f"{'images/s':>10} {'TFLOP/s':>8} {'speed-up':>9}")  # fmt: skip
    lines = [f"{report.device_name}, torch {report.versions['torch']}, "
             f"batch {report.settings['batch_size']}, "
             f"{report.settings['train_images']} images/epoch, {report.date}", header,
             "-" * len(header)]  # fmt: skip
    for m, how in zip(report.measurements, hows, strict=True):
        speedup = f"{m.speedup:.2f}x" if m.speedup else ""
        lines.append(f"{m.model:<12} {m.pipeline:<10} {how:<{w}} {m.sec_per_epoch:>10.3f} "
                     f"{m.images_per_second:>10,.0f} {m.tflops:>8.3f} {speedup:>9}")  # fmt: skip
    if phased := _phased(report):
        lines += ["", PHASES_TITLE]
        for m, how in phased:
            lines.append(f"{m.model:<12} {how:<{w}} {_phases_text(m.host_phases)}")
    if report.fusion:
        lines += ["", *_fusion_table(report.fusion)]
    return "\n".join(lines)


PHASES_TITLE = "Host time per step (ms), fast rows, no profiler"
PHASES_PARTS = ("data", "step", "optimizer", "loop")


def _phased(report: BenchReport) -> list[tuple[Measurement, str]]:
    return [(m, _how(m.execution, m.compile_fallback)) for m in report.measurements
            if m.host_phases is not None]  # fmt: skip


def _phases_text(ph: HostPhases) -> str:
    parts = ", ".join(f"{name} {getattr(ph, name + '_ms'):.2f}" for name in PHASES_PARTS)
    return f"wall {ph.wall_ms:.2f}: {parts}; device waited for the host: {_waited(ph)}"


def _waited(ph: HostPhases) -> str:
    """In how many steps the device had finished the step before when the host had issued
    the next: most of them says the host bounds the step (harness.step_phases)."""
    if ph.device_waited is None:
        return "\u2013"  # the host computes: nothing to wait for
    return f"{ph.device_waited}/{max(ph.steps - 1, 0)}"


FUSION_TITLE = "Fusion: aggregate images/s of K runs"


def _took(seconds: float | None) -> str:
    """A row's whole wall time in the markdown table: what it costs a slot."""
    return f"{seconds:.0f} s" if seconds is not None else ""


def _gain(value: float | None) -> str:
    return f"{value:.2f}x" if value else ""


def _fusion_table(rows: list[FusionMeasurement]) -> list[str]:
    header = (f"{'model':<12} {'K':>2} {'mode':<10} {'sec/epoch':>10} {'images/s':>10} "
              f"{'vs seq.':>8} {'vs conc.':>8}")  # fmt: skip
    lines = [f"{FUSION_TITLE} (sec/epoch: all K runs train one epoch each)", header,
             "-" * len(header)]  # fmt: skip
    for r in rows:
        lines.append(f"{r.model:<12} {r.k:>2} {r.mode:<10} {r.sec_per_epoch:>10.3f} "
                     f"{r.images_per_second:>10,.0f} {_gain(r.gain_vs_sequential):>8} "
                     f"{_gain(r.gain_vs_concurrent):>8}")  # fmt: skip
    return lines


def markdown(report: BenchReport, command: str) -> str:
    """The committed form of a benchmark: what, where, when and how, then the table."""
    v = report.versions
    commit = (v.get("harness") or {}).get("commit") or "unknown"
    lines = [
        f"# repro bench on {report.device_name}",
        "",
        f"- date: {report.date}",
        f"- command: `{command}`",
        f"- torch {v['torch']}, CUDA {v['cuda']}, cuDNN {cudnn_text(v['cudnn'])}, "
        f"Python {v['python']}",
        f"- harness commit: {commit}",
        f"- batch {report.settings['batch_size']}, {report.settings['train_images']} training "
        f"images per epoch, median of {report.settings['measured_epochs']} epochs after "
        f"{plural(report.settings['warmup_epochs'], 'warm-up epoch')}; data: "
        f"{report.settings['data']}",
        *(
            []
            if report.complete
            else [
                "- **partial**: the bench was stopped before every row asked for was measured; "
                "the rows below are the ones it finished"
            ]
        ),
        "",
        "| model | pipeline | execution | sec/epoch | images/s | TFLOP/s | speed-up | row took |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for m in report.measurements:
        how = _how(m.execution, m.compile_fallback)
        speedup = f"{m.speedup:.2f}x" if m.speedup else ""
        lines.append(f"| {m.model} | {m.pipeline} | {how} | {m.sec_per_epoch:.3f} | "
                     f"{m.images_per_second:,.0f} | {m.tflops:.3f} | {speedup} | "
                     f"{_took(m.row_seconds)} |")  # fmt: skip
    if phased := _phased(report):
        lines += ["", *_phases_markdown(phased)]
    if report.fusion:
        lines += ["", *_fusion_markdown(report.fusion)]
    return "\n".join(lines) + "\n"


def _phases_markdown(phased: list[tuple[Measurement, str]]) -> list[str]:
    steps = phased[0][0].host_phases.steps
    lines = [
        f"## {PHASES_TITLE}",
        "",
        f"With --profile, each fast row trains {steps} more steps, timed part by part with the "
        "host's clock (harness.step_phases): the wall time per step, then the host's time in "
        "drawing the batch (data), the step less its optimizer (forward, loss, backward, error "
        "count), the optimizer step, and the rest of the loop (the end's wait for the device "
        "included). Device waited: in how many steps the GPU had finished the step before "
        "when the host had issued the next; most of them says the host bounds the step, few "
        "that the GPU does (its full launch queue then stalls the host's parts).",
        "",
        "| model | execution | wall | data | step | optimizer | loop | device waited |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m, how in phased:
        ph = m.host_phases
        parts = " | ".join(f"{getattr(ph, name + '_ms'):.2f}" for name in PHASES_PARTS)
        lines.append(f"| {m.model} | {how} | {ph.wall_ms:.2f} | {parts} | {_waited(ph)} |")
    return lines


def _fusion_markdown(rows: list[FusionMeasurement]) -> list[str]:
    lines = [
        f"## {FUSION_TITLE}",
        "",
        "K runs (seeds 0..K-1) of the bench recipe on the fast path: fused into one network, "
        "one after another (K x the fastest solo fast row's sec/epoch, not trained again), and "
        "as K concurrent processes in that row's execution (wall time of the measured span). "
        "sec/epoch: the time in which all K runs train one epoch each; images/s: all K runs "
        "together.",
        "",
        "| model | K | mode | execution | sec/epoch | images/s | vs sequential | vs concurrent "
        "| row took |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        how = _how(r.execution, r.compile_fallback)
        gains = f"{_gain(r.gain_vs_sequential)} | {_gain(r.gain_vs_concurrent)}"
        lines.append(f"| {r.model} | {r.k} | {r.mode} | {how} | {r.sec_per_epoch:.3f} "
                     f"| {r.images_per_second:,.0f} | {gains} "
                     f"| {_took(r.row_seconds)} |")  # fmt: skip
    return lines


# Kineto's log level, read when the profiler starts: at 5 (the value PyTorch's own tests set
# to quiet it) its ERROR lines are not printed; its two USDT markers (profiler_start and
# profiler_stop) still are (torch 2.14.1 on the 2-core development VM, 2026-11-26).
KINETO_QUIET = "5"


@contextlib.contextmanager
def _kineto_errors_quiet_off_cuda(device: torch.device):
    """Profiling on the CPU with a CUDA build of torch and no GPU driver, kineto asks for the
    GPUs' properties as the trace ends and prints "gpuGetDeviceCount failed with code 35" (no
    driver) to stderr: noise, as no CUDA activity is profiled. Its error lines are turned off
    for a CPU profile (not for a GPU one, where they may matter), unless KINETO_LOG_LEVEL is
    set."""
    if device.type == "cuda" or "KINETO_LOG_LEVEL" in os.environ:
        yield
        return
    os.environ["KINETO_LOG_LEVEL"] = KINETO_QUIET
    try:
        yield
    finally:
        # Kineto has read it by now; the environment is left as it was for what follows.
        os.environ.pop("KINETO_LOG_LEVEL", None)


def profile_text(title: str, averages, wall: float, steps: int, device: torch.device) -> str:
    """A profile's text: the steps' wall time against the time the profiler saw the device and
    the host spend in operators, then the operators by self time on the device (on CUDA) and
    on the host. The fast path is bound by the host when the device is busy a small part of
    the wall time (the H100 profile of 2026-11-26: 44 ms of kernels in 30 steps), and the
    host's table says which operators take its time; the device's alone would not. Under CUDA
    graphs (reduce-overhead) the profiler may not see the replayed kernels (pytorch#100441),
    so there the device's share is a lower bound."""
    host_ms = sum(e.self_cpu_time_total for e in averages) / 1e3
    lines = [title, "",
             f"wall time of the {steps} steps, under the profiler (which slows the host): "
             f"{wall * 1e3:.1f} ms, {wall * 1e3 / max(steps, 1):.2f} ms a step",
             f"host time in operators: {host_ms:.1f} ms ({_share(host_ms, wall)} of the wall "
             "time)"]  # fmt: skip
    tables = []
    if device.type == "cuda":
        device_ms = sum(e.self_device_time_total for e in averages) / 1e3
        lines.append(
            f"device time the profiler saw: {device_ms:.1f} ms ({_share(device_ms, wall)}"
            " of the wall time; under CUDA graphs it may miss the replayed kernels)"
        )
        tables.append(
            (
                "by self time on the device",
                averages.table(sort_by="self_device_time_total", row_limit=30),
            )
        )
    tables.append(("by self time on the host",
                   averages.table(sort_by="self_cpu_time_total", row_limit=30)))  # fmt: skip
    for heading, table in tables:
        lines += ["", f"Operators {heading}:", table]
    return "\n".join(lines) + "\n"


def _share(ms: float, wall: float) -> str:
    return f"{100 * ms / 1e3 / wall:.0f}%" if wall > 0 else "?"


def host_phases(warm: WarmTrainer, steps: int = PROFILE_STEPS) -> HostPhases:
    """``steps`` more steps of a warm trainer, timed part by part on the host
    (harness.step_phases): what says, under CUDA graphs too, where a step's time goes."""
    epochs = (warm.loader.epoch(e) for e in range(warm.epoch, warm.epoch + steps))
    return time_phases(warm.trainer, epochs, warm.lr_at, warm.iteration, steps)


def profile_trainer(
    warm: WarmTrainer, model: str, out_dir: Path, steps: int = PROFILE_STEPS
) -> Path:
    """Profile ``steps`` more training steps of a warm trainer with torch.profiler.

    Writes ``profile-<model>.txt`` (operators by self time on the device, or the CPU without
    one) and a Chrome trace beside it (``profile-<model>.trace.json``, megabytes: see
    benchmarks/README.md), each whole or not at all; returns the text file's path. The
    batches are drawn before the profile starts, from the epochs after the timed ones, as
    many as it takes, so it holds training steps only.
    """
    from torch.profiler import ProfilerActivity, profile

    trainer, ex = warm.trainer, warm.trainer.ex
    # At most `steps` epochs: enough at one batch each, and an end were they empty.
    epochs = (warm.loader.epoch(e) for e in range(warm.epoch, warm.epoch + steps))
    batches = list(itertools.islice(itertools.chain.from_iterable(epochs), steps))
    activities = [ProfilerActivity.CPU]
    if ex.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with _kineto_errors_quiet_off_cuda(ex.device), profile(activities=activities) as prof:
        # train_epoch waits for the device at its end: the wall time is the steps' own
        wall = trainer.train_epoch(batches, warm.lr_at, warm.iteration, SilentProgress()).seconds
    text = out_dir / f"profile-{model}.txt"
    mode = f", {ex.compile_mode}" if ex.compile else ""
    title = (
        f"{len(batches)} fast-path training steps of {model}, batch {warm.batch_size}, "
        f"on {device_name(ex.device)} ({ex.precision}, compile={ex.compile}{mode})"
    )
    write_text(text, profile_text(title, prof.key_averages(), wall, len(batches), ex.device))
    trace = out_dir / f"profile-{model}.trace.json"
    partial = out_dir / f".{trace.name}.{os.getpid()}.tmp"  # a dot-file: the slot leaves it
    try:
        prof.export_chrome_trace(str(partial))
        os.replace(partial, trace)
    finally:
        partial.unlink(missing_ok=True)
    return text

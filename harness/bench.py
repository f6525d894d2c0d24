"""`repro bench`: steady-state seconds per epoch of the canonical pipeline and the fast path.

For each model, both pipelines train the same recipe (SGD, batch 128 by default, pad-4 crop
and flip, per-channel normalisation) on the same device in one invocation. The first
``warmup`` epochs of each (compilation, cuDNN autotuning, worker start-up) are dropped; the
median of the measured epochs is reported with images/s and achieved TFLOP/s
(6 x forward MACs per image, see ``harness.flops``). Only the training part of an epoch is
timed, as in ``repro run``'s sec/epoch.
"""

from __future__ import annotations

import datetime as dt
import platform
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from harness.choices import BENCH_MODELS
from harness.data import Cifar10
from harness.environment import device_name, git_commit
from harness.execution import choose, configure_backends
from harness.flops import TRAIN_FLOPS_PER_MAC, forward_macs
from harness.schedule import LearningRate, Length
from harness.schema import Recipe
from harness.train import Batches, SilentProgress, Trainer, make_loader, prepare_data
from harness.zoo import spec_from_name

DEFAULT_MODELS = BENCH_MODELS


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


@dataclass
class BenchReport:
    date: str
    device: str
    device_name: str
    versions: dict
    settings: dict
    measurements: list[Measurement] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


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
    compile_modes: tuple[str, ...] = ("default",),
    echo=print,
) -> BenchReport:
    """Time the canonical pipeline, then the fast path once per compile mode, for each model.

    Several modes (``default``, ``reduce-overhead`` = CUDA graphs, ...) give one fast row
    each, so one invocation shows which pays on the device at hand.
    """
    recipe = bench_recipe(batch_size, subset, warmup + epochs)
    # Without compilation the mode means nothing: one fast row.
    compiled = choose(device, compile=compile).compile
    modes = compile_modes if compiled else compile_modes[:1]
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
            "compile_modes": list(modes) if compiled else None,
            "data": str(data.path),
        },
    )
    for name in models:
        spec = spec_from_name(name)
        macs = forward_macs(spec)
        executions = [choose(device, pipeline="canonical", workers=workers)]
        executions += [choose(device, compile=compile, compile_mode=mode) for mode in modes]
        rows = []
        for ex in executions:
            echo(f"{name}: {ex.pipeline} pipeline ({_how(ex.describe())}), "
                 f"{warmup}+{epochs} epochs ...")  # fmt: skip
            rows.append(_measure(name, spec, recipe, data, ex, warmup, macs))
        canonical, *fast = rows
        for row in fast:
            row.speedup = canonical.sec_per_epoch / row.sec_per_epoch
        report.measurements += rows
    return report


def _setup(spec, recipe, data, ex) -> tuple[Trainer, Batches, LearningRate, Length]:
    """What a timed or profiled training needs: trainer, batches, learning rate, length."""
    configure_backends(ex)
    run_data = prepare_data(recipe, 0, data, ex.device)
    loader = make_loader(recipe, 0, run_data, ex)
    length = Length.of(recipe, len(loader))
    return Trainer(spec, recipe, 0, ex), loader, LearningRate(recipe, length), length


def _measure(name, spec, recipe, data, ex, warmup, macs) -> Measurement:
    trainer, loader, lr_at, length = _setup(spec, recipe, data, ex)
    seconds, iteration, images = [], 0, 0
    for epoch in range(length.epochs):
        result = trainer.train_epoch(loader.epoch(epoch), lr_at, iteration, SilentProgress())
        iteration, images = result.iteration, result.images
        if epoch >= warmup:
            seconds.append(result.seconds)
    median = statistics.median(seconds)
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
    )


def _how(ex: dict, compile_fallback: str | None = None) -> str:
    """'bf16, compiled (reduce-overhead), NHWC': an execution in a table cell."""
    how = ex["precision"]
    if compile_fallback:
        how += ", eager (compile failed)"
    elif ex["compile"]:
        mode = ex["compile_mode"]
        how += ", compiled" + ("" if mode == "default" else f" ({mode})")
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
    return "\n".join(lines)


def markdown(report: BenchReport, command: str) -> str:
    """The committed form of a benchmark: what, where, when and how, then the table."""
    v = report.versions
    commit = (v.get("harness") or {}).get("commit") or "unknown"
    lines = [
        f"# repro bench on {report.device_name}",
        "",
        f"- date: {report.date}",
        f"- command: `{command}`",
        f"- torch {v['torch']}, CUDA {v['cuda']}, cuDNN {v['cudnn']}, Python {v['python']}",
        f"- harness commit: {commit}",
        f"- batch {report.settings['batch_size']}, {report.settings['train_images']} training "
        f"images per epoch, median of {report.settings['measured_epochs']} epochs after "
        f"{report.settings['warmup_epochs']} warm-up epoch(s); data: {report.settings['data']}",
        "",
        "| model | pipeline | execution | sec/epoch | images/s | TFLOP/s | speed-up |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for m in report.measurements:
        how = _how(m.execution, m.compile_fallback)
        speedup = f"{m.speedup:.2f}x" if m.speedup else ""
        lines.append(f"| {m.model} | {m.pipeline} | {how} | {m.sec_per_epoch:.3f} | "
                     f"{m.images_per_second:,.0f} | {m.tflops:.3f} | {speedup} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def profile_fast_path(
    data: Cifar10, device: torch.device, model: str, out_dir: Path, *, batch_size: int = 128,
    steps: int = 30, compile: bool | None = None, compile_mode: str = "default",
) -> Path:  # fmt: skip
    """Profile a few warm fast-path steps with torch.profiler; write the top operators.

    Writes ``profile-<model>.txt`` (operators by self time on the device, or the CPU without
    one) and a Chrome trace beside it; returns the text file's path.
    """
    from torch.profiler import ProfilerActivity, profile

    ex = choose(device, pipeline="fast", compile=compile, compile_mode=compile_mode)
    recipe = bench_recipe(batch_size, (steps * 2 + 1) * batch_size, 2)
    trainer, loader, lr_at, _ = _setup(spec_from_name(model), recipe, data, ex)
    batches = list(loader.epoch(0))
    trainer.train_epoch(batches[:steps], lr_at, 0, SilentProgress())  # warm up, compile
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        trainer.train_epoch(batches[steps : 2 * steps], lr_at, steps, SilentProgress())
    out_dir.mkdir(parents=True, exist_ok=True)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    text = out_dir / f"profile-{model}.txt"
    text.write_text(
        f"{steps} fast-path training steps of {model}, batch {batch_size}, on "
        f"{device_name(device)} ({ex.precision}, compile={ex.compile})\n\n"
        + prof.key_averages().table(sort_by=key, row_limit=30)
    )
    prof.export_chrome_trace(str(out_dir / f"profile-{model}.trace.json"))
    return text

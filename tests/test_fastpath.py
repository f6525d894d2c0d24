"""The fast path against the canonical pipeline, on CPU: same augmentation distribution,
same losses in fp32, no host syncs inside the step; plus execution defaults and `repro bench`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import small_recipe
from PIL import Image

from harness import data as cifar
from harness.bench import synthetic_cifar
from harness.canonical import transform_for
from harness.choices import COMPILE_MODES
from harness.cli import main
from harness.execution import choose
from harness.flops import forward_macs
from harness.loader import Normalizer, augment, generator
from harness.schedule import LearningRate, Length
from harness.schema import Augmentation, Crop, Normalization
from harness.train import SilentProgress, Trainer, make_loader, prepare_data
from harness.zoo import spec_from_name

CPU = torch.device("cpu")


def coordinate_image() -> np.ndarray:
    """An image whose pixels say where they are: R = 100 + row, G = 100 + column."""
    img = np.zeros((3, 32, 32), dtype=np.uint8)
    img[0] = 100 + np.arange(32)[:, None]
    img[1] = 100 + np.arange(32)[None, :]
    img[2] = 200
    return img


def decode(out: np.ndarray, padding: int) -> tuple[int, int, bool]:
    """(dy, dx, flipped) of an augmented coordinate image, read off its central pixels."""
    row = int(out[0, 16, 16]) - 100  # the source row of output row 16
    c16, c17 = int(out[1, 16, 16]) - 100, int(out[1, 16, 17]) - 100
    flipped = c17 < c16
    dy = row - 16 + padding
    dx = (c16 - 15 + padding) if flipped else (c16 - 16 + padding)
    return dy, dx, flipped


def fast_draws(n: int, aug: Augmentation) -> list[tuple[int, int, bool]]:
    batch = torch.from_numpy(np.stack([coordinate_image()] * n))
    out = augment(batch, aug, generator(CPU, 0, "epoch", 0)).numpy()
    return [decode(o, aug.crop.padding) for o in out]


def canonical_draws(n: int, aug: Augmentation) -> list[tuple[int, int, bool]]:
    normalizer = Normalizer(
        Normalization(kind="none"), torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    )
    transform = transform_for(aug, normalizer)
    pil = Image.fromarray(coordinate_image().transpose(1, 2, 0))
    torch.manual_seed(1)
    draws = []
    for _ in range(n):
        x01 = transform.transforms[-2](transform.transforms[1](transform.transforms[0](pil)))
        out = np.rint(x01.numpy() * 255).astype(np.uint8)
        draws.append(decode(out, aug.crop.padding))
    return draws


@pytest.mark.parametrize("fill", ["zeros", "reflect"])
def test_fast_and_canonical_augmentation_draw_from_the_same_distribution(fill):
    aug = Augmentation(crop=Crop(padding=4, fill=fill), flip=True)
    n = 4000
    fast, canonical = fast_draws(n, aug), canonical_draws(n, aug)
    cells = [(dy, dx) for dy in range(9) for dx in range(9)]
    for draws in (fast, canonical):
        assert {(dy, dx) for dy, dx, _ in draws} <= set(cells)  # every crop is a legal window
    # Chi-square test of homogeneity over the 81 offsets (df = 80; 0.1% critical value 124.8).
    f = np.array([sum((d[0], d[1]) == c for d in fast) for c in cells], dtype=float)
    g = np.array([sum((d[0], d[1]) == c for d in canonical) for c in cells], dtype=float)
    expected = (f + g) / 2
    chi2 = (((f - expected) ** 2 + (g - expected) ** 2) / expected).sum()
    assert chi2 < 124.8
    # Flip rates: both about one half (within 4 standard errors).
    for draws in (fast, canonical):
        rate = np.mean([flip for _, _, flip in draws])
        assert abs(rate - 0.5) < 4 * (0.25 / n) ** 0.5


def test_padding_fills_agree_pixel_for_pixel():
    """Same offsets and flip: the fast path's crop equals torchvision's, zeros and reflection."""
    img = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    pil = Image.fromarray(img.transpose(1, 2, 0))
    from torchvision.transforms import functional as TF

    for fill, mode in (("zeros", "constant"), ("reflect", "reflect")):
        padded = TF.pad(pil, 4, padding_mode=mode)
        aug = Augmentation(crop=Crop(padding=4, fill=fill), flip=False)
        batch = torch.from_numpy(np.stack([img] * 64))
        out = augment(batch, aug, generator(CPU, 3, "epoch", 0)).numpy()
        windows = {
            (dy, dx): np.asarray(padded)[dy : dy + 32, dx : dx + 32].transpose(2, 0, 1)
            for dy in range(9)
            for dx in range(9)
        }
        for o in out:
            assert any(np.array_equal(o, w) for w in windows.values())


def losses(pipeline: str, dataset, steps: int = 4) -> list[float]:
    recipe = small_recipe(train_images=steps * 32)
    ex = choose(CPU, pipeline=pipeline, workers=0)
    run_data = prepare_data(recipe, 0, dataset, CPU)
    loader = make_loader(recipe, 0, run_data, ex)
    trainer = Trainer(spec_from_name("resnet8"), recipe, 0, ex)
    out = []
    for x, y in loader.epoch(0):
        trainer.model.train()
        out.append(trainer.step(x, y)[1].item())
    return out


def test_a_few_steps_of_both_pipelines_give_matching_losses_in_fp32(cifar_root):
    dataset = cifar.load(cifar_root / cifar.FOLDER)
    fast, canonical = losses("fast", dataset), losses("canonical", dataset)
    assert len(fast) == len(canonical) == 4
    assert fast == pytest.approx(canonical, rel=1e-4)
    assert fast[-1] != fast[0]  # the steps did train


def test_the_training_step_never_reads_the_device(cifar_root, device_reads):
    """Host reads (.item(), .tolist(), bool/float of a tensor) happen once per epoch, not per step."""
    dataset = cifar.load(cifar_root / cifar.FOLDER)
    reads = device_reads

    def reads_for(steps: int) -> int:
        recipe = small_recipe(train_images=steps * 32, augmentation={"crop": {"padding": 4}})
        ex = choose(CPU)
        run_data = prepare_data(recipe, 0, dataset, CPU)
        loader = make_loader(recipe, 0, run_data, ex)
        trainer = Trainer(spec_from_name("resnet8"), recipe, 0, ex)
        lr_at = LearningRate(recipe, Length.of(recipe, len(loader)))
        before = reads["n"]
        trainer.train_epoch(loader.epoch(0), lr_at, 0, SilentProgress())
        return reads["n"] - before

    assert reads_for(2) == reads_for(8) <= 3


def test_the_fast_path_is_the_default_on_cuda_and_the_baseline_stays_plain():
    cuda = torch.device("cuda")
    fast = choose(cuda)
    assert (fast.pipeline, fast.precision, fast.compile, fast.channels_last) == (
        "fast", "bf16", True, True,
    )  # fmt: skip
    assert not choose(cuda, compile=False).compile
    base = choose(cuda, pipeline="canonical", precision="bf16", compile=True)
    assert (base.precision, base.compile, base.channels_last) == ("fp32", False, False)
    cpu = choose(CPU)
    assert (cpu.precision, cpu.compile, cpu.channels_last) == ("fp32", False, False)


def test_cuda_graphs_are_the_fast_paths_default_on_cuda_but_not_for_fused_groups():
    """reduce-overhead trained like the default mode on an H100 and an H200 and ran 2.5 to
    3.8x the canonical pipeline there; a fused group's step was never checked in it, so a
    group compiles in the default mode unless a mode is asked for."""
    cuda = torch.device("cuda")
    fast = choose(cuda)
    assert fast.describe()["compile_mode"] == "reduce-overhead"
    group = fast.fused(("s/a/seed-0", "s/a/seed-1"))
    assert (group.describe()["compile_mode"], group.describe()["fused"]) == ("default", 2)
    for asked in COMPILE_MODES:  # a mode asked for holds for solo runs and groups alike
        ex = choose(cuda, compile_mode=asked)
        assert ex.compile_mode == ex.fused(("a", "b")).compile_mode == asked
    # The CPU stays eager (and compiles in the default mode when asked); so does the baseline.
    assert choose(CPU).describe()["compile_mode"] is None
    assert choose(CPU, compile=True).describe()["compile_mode"] == "default"
    assert choose(cuda, pipeline="canonical").describe()["compile_mode"] is None
    assert choose(cuda, compile=False).describe()["compile_mode"] is None


def test_repro_run_and_queue_leave_the_compile_mode_to_the_device(monkeypatch):
    """Neither command fixes a mode unless given one, so `repro run`, `repro queue` and the
    GPU slot's training stage (which gives none) all train in CUDA graphs on CUDA."""
    from harness import runner
    from harness.runner import RunOptions, execution_for

    monkeypatch.setattr(runner, "resolve_device", lambda name: torch.device("cuda"))
    assert execution_for(RunOptions()).compile_mode == "reduce-overhead"
    asked = RunOptions(compile_mode="default")
    assert execution_for(asked).compile_mode == "default"
    assert RunOptions.from_dict(asked.to_dict()).compile_mode == "default"  # to workers, jobs
    assert RunOptions.from_dict(RunOptions().to_dict()).compile_mode is None
    for command in ("run", "queue"):
        text = " ".join(CliRunner().invoke(main, [command, "--help"]).output.split())
        assert "Default: reduce-overhead (CUDA graphs) on CUDA, except for fused groups" in text


def test_a_failing_compilation_falls_back_to_eager_and_says_why(monkeypatch, cifar_root):
    def broken_compile(model, **kwargs):
        def call(*args, **kw):
            raise RuntimeError("inductor could not build a kernel")

        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    dataset = cifar.load(cifar_root / cifar.FOLDER)
    recipe = small_recipe(train_images=64)
    ex = choose(CPU, compile=True)
    run_data = prepare_data(recipe, 0, dataset, CPU)
    loader = make_loader(recipe, 0, run_data, ex)
    trainer = Trainer(spec_from_name("resnet8"), recipe, 0, ex)
    lr_at = LearningRate(recipe, Length.of(recipe, len(loader)))
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*--no-compile"):
        result = trainer.train_epoch(loader.epoch(0), lr_at, 0, SilentProgress())
    assert result.finite and result.iteration == 2
    assert trainer.compile_fallback == "RuntimeError: inductor could not build a kernel"


def test_channels_last_batches():
    x = torch.zeros(8, 3, 32, 32, dtype=torch.uint8)
    from harness.loader import DeviceLoader

    loader = DeviceLoader(x, torch.zeros(8, dtype=torch.long), batch_size=4,
                          augmentation=Augmentation(), seed=0, drop_last=False,
                          normalizer=Normalizer(Normalization(kind="none"), x),
                          channels_last=True)  # fmt: skip
    xb, _ = next(loader.epoch(0))
    assert xb.is_contiguous(memory_format=torch.channels_last)


def test_macs_of_resnet20_counted_by_hand():
    # stem 32*32*16*27 + stage 1: 6 convs of 32*32*16*144 + stage 2: 16*16*32*144 and
    # 5 x 16*16*32*288 + stage 3: 8*8*64*288 and 5 x 8*8*64*576 + linear 64*10
    by_hand = (442_368 + 6 * 2_359_296 + 1_179_648 + 5 * 2_359_296 + 1_179_648
               + 5 * 2_359_296 + 640)  # fmt: skip
    assert forward_macs(spec_from_name("resnet20")) == by_hand == 40_551_040
    assert forward_macs(spec_from_name("resnet56")) == 125_485_696


def test_bench_runs_on_cpu_and_writes_its_figures(tmp_path):
    out = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    result = CliRunner().invoke(main, [
        "bench", "--device", "cpu", "--synthetic", "--models", "resnet8", "--subset", "64",
        "--epochs", "2", "--warmup-epochs", "1", "--workers", "0", "--json", str(out),
        "--markdown", str(md),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "speed-up" in result.output and "resnet8" in result.output
    figures = json.loads(out.read_text())
    assert figures["device"] == "cpu" and figures["versions"]["torch"] == torch.__version__
    assert figures["settings"]["train_images"] == 64 and figures["command"].startswith("repro")
    canonical, fast = figures["measurements"]
    assert (canonical["pipeline"], fast["pipeline"]) == ("canonical", "fast")
    for m in (canonical, fast):
        assert len(m["epoch_seconds"]) == 2 and m["sec_per_epoch"] > 0
        assert m["images_per_epoch"] == 64 and m["tflops"] > 0
        # what the row cost a slot: its warm-up (compilation included) and all of it
        assert len(m["warmup_seconds"]) == 1
        assert m["row_seconds"] > sum(m["epoch_seconds"]) + sum(m["warmup_seconds"])
    assert fast["speedup"] == pytest.approx(canonical["sec_per_epoch"] / fast["sec_per_epoch"])
    assert "| resnet8 | fast |" in md.read_text()
    assert "| speed-up | row took |" in md.read_text()
    assert f"| {fast['row_seconds']:.0f} s |" in md.read_text().splitlines()[-1]


def test_a_bench_stopped_midway_leaves_the_rows_it_measured_marked_partial(tmp_path, monkeypatch):
    """A GPU slot's stage timeout stops the bench with SIGTERM: the rows measured until then
    must be in the files, marked partial, not lost with the rest."""
    import harness.bench as bench

    real_measure, calls = bench._measure, []

    def measure_then_die(*args):
        calls.append(args[0])
        if len(calls) == 2:
            raise SystemExit(143)  # as the stage's SIGTERM would end it
        return real_measure(*args)

    monkeypatch.setattr(bench, "_measure", measure_then_die)
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    args = ["bench", "--device", "cpu", "--synthetic", "--models", "resnet8", "--subset", "32",
            "--epochs", "1", "--warmup-epochs", "0", "--workers", "0", "--json", str(out),
            "--markdown", str(md)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 143
    partial = json.loads(out.read_text())
    assert partial["complete"] is False
    assert [m["pipeline"] for m in partial["measurements"]] == ["canonical"]
    assert "**partial**" in md.read_text() and "| resnet8 | canonical |" in md.read_text()
    monkeypatch.setattr(bench, "_measure", real_measure)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["complete"] is True and "partial" not in md.read_text()


def test_bench_times_each_compile_mode_asked_for(tmp_path, monkeypatch):
    real_compile, modes = torch.compile, []

    def recording_compile(model, mode, **kw):  # Dynamo's capture alone: fast on a CPU
        modes.append(mode)
        return real_compile(model, backend="eager", dynamic=kw["dynamic"])

    monkeypatch.setattr(torch, "compile", recording_compile)
    out = tmp_path / "bench.json"
    args = ["bench", "--device", "cpu", "--synthetic", "--models", "resnet8", "--subset", "32",
            "--epochs", "1", "--warmup-epochs", "0", "--workers", "0", "--json", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, [*args, "--compile", "--compile-mode",
                                       "default,reduce-overhead"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert modes == ["default", "reduce-overhead"]
    rows = json.loads(out.read_text())["measurements"]
    assert [(m["pipeline"], m["execution"]["compile_mode"]) for m in rows] == [
        ("canonical", None), ("fast", "default"), ("fast", "reduce-overhead"),
    ]  # fmt: skip
    assert all(m["speedup"] > 0 and m["compile_fallback"] is None for m in rows[1:])
    assert "fp32, compiled (reduce-overhead)" in result.output
    # Without compilation a mode changes nothing: one fast row.
    result = CliRunner().invoke(main, [*args, "--no-compile", "--compile-mode",
                                       "default,reduce-overhead"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["measurements"]) == 2
    result = CliRunner().invoke(main, [*args, "--compile-mode", "default,fastest"])
    assert result.exit_code == 2 and "modes are default, reduce-overhead" in result.output


PROBE_ERROR = "gpuGetDeviceCount"  # kineto's line where a CUDA build finds no GPU driver
BARE_PROFILE = """
import torch
from torch.profiler import ProfilerActivity, profile
with profile(activities=[ProfilerActivity.CPU]):
    torch.ones(8, 8) @ torch.ones(8, 8)
"""
OUR_PROFILE = """
import sys
from pathlib import Path
import torch
from harness.bench import run_bench, synthetic_cifar
run_bench(synthetic_cifar(train=64, test=8), torch.device("cpu"), models=("resnet8",),
          batch_size=16, epochs=1, warmup=0, subset=32, workers=0, compile=False,
          profile_dir=Path(sys.argv[1]), profile_steps=2)
"""


def test_profiling_on_the_cpu_prints_no_cuda_probe_error(tmp_path):
    """`repro bench --profile` on a CPU printed kineto's "gpuGetDeviceCount failed with code
    35" (a CUDA build of torch without a GPU driver). Fresh processes each: kineto reads its
    log level once. Where a bare profile prints no such line, there is nothing to prove."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    env = {k: v for k, v in os.environ.items() if k != "KINETO_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))

    def stderr_of(code: str, *args: str) -> str:
        done = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stderr

    if PROBE_ERROR not in stderr_of(BARE_PROFILE):
        pytest.skip("torch's profiler prints no gpuGetDeviceCount line on this machine")
    assert PROBE_ERROR not in stderr_of(OUR_PROFILE, str(tmp_path))
    assert (tmp_path / "profile-resnet8.txt").exists()


def test_bench_without_data_points_to_synthetic(tmp_path):
    result = CliRunner().invoke(main, ["bench", "--device", "cpu", "--data-dir",
                                       str(tmp_path)])  # fmt: skip
    assert result.exit_code == 2 and "--synthetic" in result.output


def test_synthetic_data_has_the_shape_of_cifar():
    d = synthetic_cifar(train=100, test=10)
    assert d.train_images.shape == (100, 3, 32, 32) and d.train_images.dtype == np.uint8


def test_a_run_on_the_canonical_pipeline_is_recorded_as_such(tmp_path, cifar_root):
    from conftest import tiny_study

    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n")
    results = tmp_path / "results"
    result = CliRunner().invoke(main, [
        "run", str(study), "--data-dir", str(cifar_root), "--results", str(results),
        "--device", "cpu", "--quiet", "--pipeline", "canonical", "--workers", "2",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    run = results / "tiny" / "r8" / "seed-0"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["execution"]["pipeline"] == "canonical"
    env = json.loads((run / "environment.json").read_text())
    assert (env["pipeline"], env["precision"], env["compile"], env["workers"]) == (
        "canonical", "fp32", False, 2,
    )  # fmt: skip
    assert summary["test_error"] < 60

"""`repro bench --profile`: each model's profile is written as soon as its first fast row is
measured, so a bench stopped later (a GPU slot's stage timeout) keeps it (on a CPU, tiny
settings: the figures mean nothing here; what the slot packs: tests/test_gpu_box.py)."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import harness.bench as bench
from harness.cli import main

TWO_MODELS = ["bench", "--device", "cpu", "--synthetic", "--models", "resnet8,resnet14",
              "--subset", "32", "--batch-size", "16", "--epochs", "1", "--warmup-epochs", "0",
              "--workers", "0", "--no-compile"]  # fmt: skip


def _stop(*args, **kwargs):
    raise SystemExit(143)  # as the stage's SIGTERM ends `repro bench`


@pytest.mark.parametrize("stopped_in", ["the fusion rows", "the next model"])
def test_a_bench_stopped_after_a_models_fast_row_keeps_that_models_profile(
    tmp_path, monkeypatch, stopped_in
):
    """Two H200 slots (2026-11-27) stopped the bench in resnet20's K=6 fusion rows and after
    resnet56's rows: the profile, taken only after every row, never came back."""
    real_measure, calls, real_setup, setups = bench._measure, [], bench._setup, []

    def counted_setup(*args):
        setups.append(args[0])
        return real_setup(*args)

    monkeypatch.setattr(bench, "_setup", counted_setup)

    def measure_until_the_next_model(*args):
        calls.append(args[0])
        if len(calls) == 3:  # resnet14's first row
            _stop()
        return real_measure(*args)

    if stopped_in == "the fusion rows":
        monkeypatch.setattr(bench, "run_fusion", _stop)
        extra = ["--fuse", "2"]
    else:
        monkeypatch.setattr(bench, "_measure", measure_until_the_next_model)
        extra = []
    out, profiles = tmp_path / "bench.json", tmp_path / "profile"
    result = CliRunner().invoke(main, [*TWO_MODELS, *extra, "--json", str(out), "--profile",
                                       str(profiles)])  # fmt: skip
    assert result.exit_code == 143, result.output
    canonical, fast = json.loads(out.read_text())["measurements"]
    assert [canonical["model"], fast["model"]] == ["resnet8"] * 2
    # the fast row's host time per step came back in the figures, before the profile
    assert canonical["host_phases"] is None and fast["host_phases"]["steps"] == bench.PROFILE_STEPS
    text = (profiles / "profile-resnet8.txt").read_text()
    assert text.startswith(f"{bench.PROFILE_STEPS} fast-path training steps of resnet8, batch 16")
    assert "aten::convolution" in text and "Self CPU" in text
    # what says whether the host or the device bounds the steps (the GPU's tables say both)
    assert f"wall time of the {bench.PROFILE_STEPS} steps, under the profiler" in text
    assert "host time in operators: " in text and "Operators by self time on the host:" in text
    assert json.loads((profiles / "profile-resnet8.trace.json").read_text())["traceEvents"]
    assert sorted(p.name for p in profiles.iterdir()) == [
        "profile-resnet8.trace.json",
        "profile-resnet8.txt",
    ]
    assert len(setups) == 2  # the profile goes on from the fast row's trainer: no third
    lines = result.output.splitlines()
    wrote = lines.index(f"wrote {profiles / 'profile-resnet8.txt'}")
    assert lines[wrote - 1] == f"resnet8: profile of {bench.PROFILE_STEPS} fast-path steps ..."
    assert all(not line.startswith(("resnet8: K=", "resnet14: ")) for line in lines[:wrote])


def test_a_bench_of_two_models_measures_both(tmp_path):
    """The second model's rows were built from the first model's measurements (a name reused
    for two things in run_bench), so a bench of two models stopped with a traceback at the
    second: the slot's `--bench-models resnet20,resnet110` would have lost resnet110."""
    out = tmp_path / "b.json"
    result = CliRunner().invoke(main, [*TWO_MODELS, "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["measurements"]
    assert [(r["model"], r["pipeline"]) for r in rows] == [
        ("resnet8", "canonical"), ("resnet8", "fast"),
        ("resnet14", "canonical"), ("resnet14", "fast")]  # fmt: skip


class _Averages(list):
    """What profile_text reads of torch.profiler's key averages, with made-up times."""

    def table(self, sort_by, row_limit):
        return f"<table by {sort_by}>"


class _Event:
    def __init__(self, host_us, device_us):
        self.self_cpu_time_total, self.self_device_time_total = host_us, device_us


def test_a_gpu_profile_says_how_busy_the_device_was_and_where_the_host_spends_its_time():
    """The H100 profiles of 2026-11-26 sorted by device time alone: a fast path bound by the
    host showed which kernels were short, not where the host's time went."""
    import torch

    averages = _Averages([_Event(200_000, 30_000), _Event(58_000, 14_000)])
    text = bench.profile_text("title", averages, wall=0.5, steps=30,
                              device=torch.device("cuda"))  # fmt: skip
    assert text.splitlines()[:5] == [
        "title",
        "",
        "wall time of the 30 steps, under the profiler (which slows the host): 500.0 ms, "
        "16.67 ms a step",
        "host time in operators: 258.0 ms (52% of the wall time)",
        "device time the profiler saw: 44.0 ms (9% of the wall time; under CUDA graphs it may "
        "miss the replayed kernels)",
    ]
    device_at = text.index("Operators by self time on the device:\n<table by self_device_time")
    assert device_at < text.index("Operators by self time on the host:\n<table by self_cpu_time")
    cpu = bench.profile_text("t", averages, wall=0.5, steps=30, device=torch.device("cpu"))
    assert "device time" not in cpu and "<table by self_cpu_time_total>" in cpu


def test_host_phases_time_each_part_of_real_steps_and_leave_the_trainer_as_it_was():
    from harness.execution import choose
    from harness.step_phases import time_phases
    from harness.zoo import spec_from_name

    data = bench.synthetic_cifar(train=64, test=8)
    trainer, loader, lr_at, _ = bench._setup(spec_from_name("resnet8"),
                                             bench.bench_recipe(16, 64, 1), data,
                                             choose(torch.device("cpu"), compile=False))  # fmt: skip
    before = [p.detach().clone() for p in trainer.model.parameters()]
    phases = time_phases(trainer, (loader.epoch(e) for e in range(3)), lr_at, 0, steps=10)
    assert phases.steps == 10 and phases.device_waited is None  # a CPU computes itself
    parts = (phases.data_ms, phases.step_ms, phases.optimizer_ms, phases.loop_ms)
    assert all(part > 0 for part in parts[:3]) and phases.loop_ms >= 0
    assert sum(parts) == pytest.approx(phases.wall_ms)
    # the steps trained (the optimizer was called through the timer), and the timers are gone
    assert any(
        not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True)
    )
    assert "step" not in vars(trainer.optimizer) and "_train_batch" not in vars(trainer)


def test_the_device_waited_for_the_host_in_the_steps_whose_previous_step_had_ended(monkeypatch):
    """On CUDA, the host asks after issuing each step whether the device has finished the one
    before (torch.cuda.Event.query, which never waits); the count says who bounds the step."""
    import types

    from harness.step_phases import time_phases

    answers = iter([True, False, True, True])  # steps 2..5: what query() says of the one before

    class Event:
        def record(self):
            pass

        def query(self):
            return next(answers)

    monkeypatch.setattr(torch.cuda, "Event", Event)

    class Steps:
        ex = types.SimpleNamespace(device=torch.device("cuda"))
        optimizer = types.SimpleNamespace(step=lambda: None)

        def _train_batch(self, batch):
            self.optimizer.step()

        def train_epoch(self, batches, lr_at, iteration, progress):
            for batch in batches:
                self._train_batch(batch)
            return types.SimpleNamespace(seconds=0.01)

    phases = time_phases(Steps(), [range(5)], None, 0, steps=5)
    assert (phases.steps, phases.device_waited) == (5, 3)
    lines = bench._phases_markdown([(bench.Measurement(
        "resnet20", "fast", [1.0], 1.0, 8, 8.0, 1, 0.0, {}, None, host_phases=phases),
        "bf16")])  # fmt: skip
    assert lines[-1].startswith("| resnet20 | bf16 | 2.00 | ") and lines[-1].endswith(" | 3/4 |")

"""`repro bench --profile`: each model's profile is written as soon as its first fast row is
measured, so a bench stopped later (a GPU slot's stage timeout) keeps it (on a CPU, tiny
settings: the figures mean nothing here; what the slot packs: tests/test_gpu_box.py)."""

from __future__ import annotations

import json

import pytest
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
    assert [m["model"] for m in json.loads(out.read_text())["measurements"]] == ["resnet8"] * 2
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

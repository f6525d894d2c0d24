"""`repro bench --fuse`: aggregate images/s of K runs fused, one after another and as
concurrent processes, on a CPU with tiny settings (the figures mean nothing here; the rows,
their arithmetic and the refusals do)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner
from conftest import ROOT

from harness.bench import (
    FUSION_MODES,
    BenchError,
    BenchReport,
    Measurement,
    _measure_concurrent,
    bench_recipe,
    markdown,
    run_fusion,
    synthetic_cifar,
)
from harness.cli import main
from harness.execution import choose
from harness.zoo import spec_from_name

CPU = torch.device("cpu")
TINY = ["bench", "--device", "cpu", "--synthetic", "--models", "resnet8", "--subset", "32",
        "--batch-size", "16", "--epochs", "1", "--warmup-epochs", "0", "--workers", "0"]  # fmt: skip


def test_fuse_gives_fused_sequential_and_concurrent_rows_for_each_width(tmp_path):
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    result = CliRunner().invoke(main, [*TINY, "--fuse", "1,2", "--json", str(out),
                                       "--markdown", str(md)])  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["settings"]["fuse"] == [1, 2]
    solo = figures["measurements"][1]  # the fast row: what one after another is made of
    rows = {(r["k"], r["mode"]): r for r in figures["fusion"]}
    assert set(rows) == {(k, mode) for k in (1, 2) for mode in FUSION_MODES}
    for (k, _mode), r in rows.items():
        assert r["model"] == "resnet8" and r["images_per_epoch"] == 32
        assert r["sec_per_epoch"] > 0 and r["images_per_second"] > 0
        # sec/epoch is the time in which all K runs train one epoch each
        assert r["images_per_second"] == pytest.approx(k * 32 / r["sec_per_epoch"])
    for k in (1, 2):
        fused, seq, conc = (rows[k, mode] for mode in FUSION_MODES)
        assert seq["sec_per_epoch"] == pytest.approx(k * solo["sec_per_epoch"])
        assert seq["images_per_second"] == pytest.approx(solo["images_per_second"])
        assert fused["execution"].get("fused") == k and conc["execution"]["device_shared_by"] == k
        assert fused["gain_vs_sequential"] == pytest.approx(
            fused["images_per_second"] / seq["images_per_second"]
        )
        assert fused["gain_vs_concurrent"] == pytest.approx(
            fused["images_per_second"] / conc["images_per_second"]
        )
        assert seq["gain_vs_sequential"] is None and conc["gain_vs_sequential"] > 0
        # what each trained row cost a slot; one after another is not trained
        assert fused["row_seconds"] > sum(fused["epoch_seconds"]) and seq["row_seconds"] is None
        assert conc["row_seconds"] > conc["sec_per_epoch"] * len(conc["epoch_seconds"])
    assert "Fusion: aggregate images/s of K runs" in result.output
    for mode in FUSION_MODES:
        assert f"resnet8       2 {mode}" in result.output
    text = md.read_text()
    assert "## Fusion: aggregate images/s of K runs" in text and "| resnet8 | 2 | fused |" in text


def test_without_fuse_the_bench_has_no_fusion_rows_or_table(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, [*TINY, "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["fusion"] == [] and "Fusion" not in result.output


def test_concurrent_processes_can_be_left_out():
    recipe = bench_recipe(16, 32, 1)
    solo = Measurement("resnet8", "fast", [1.0], 1.0, 32, 32.0, 1, 0.0, {}, None)
    rows = list(run_fusion("resnet8", spec_from_name("resnet8"), recipe,
                           synthetic_cifar(train=64, test=8), choose(CPU), 0, 2, solo=solo,
                           concurrent=False, echo=lambda _: None))  # fmt: skip
    assert [r.mode for r in rows] == ["fused", "sequential"]
    assert rows[1].sec_per_epoch == 2.0 and rows[1].images_per_second == 32.0
    assert rows[0].gain_vs_concurrent is None and rows[0].gain_vs_sequential > 0


def test_fusion_is_measured_against_the_fastest_solo_row_not_the_first(monkeypatch):
    """The slot benches --compile-mode default,reduce-overhead: resnet20 ran 3.993 s/epoch in
    the first and 1.705 in the second on an H200 (2026-11-27). Fusion's gain over K x the
    first would have been 2.3x too kind, against the way `repro run` trains solo runs."""
    import harness.bench as bench

    speeds = iter([4.0, 4.0, 1.7])  # canonical, fast default, fast reduce-overhead
    concurrent_ex = []

    def measured(name, spec, recipe, data, ex, warmup, macs):
        spe = next(speeds)
        row = Measurement(name, ex.pipeline, [spe], spe, 32, 32 / spe, macs, 0.0,
                          ex.describe(), None)  # fmt: skip
        return row, None

    def fused(name, spec, recipe, data, ex, warmup, k):
        return bench.FusionMeasurement(name, k, "fused", 2.0, 32, k * 32 / 2.0, ex.describe())

    def concurrent(name, spec, recipe, data, ex, warmup, k):
        concurrent_ex.append(ex)
        return bench.FusionMeasurement(name, k, "concurrent", 3.0, 32, k * 32 / 3.0, {})

    monkeypatch.setattr(bench, "_measure", measured)
    monkeypatch.setattr(bench, "_measure_fused", fused)
    monkeypatch.setattr(bench, "_measure_concurrent", concurrent)
    report = bench.run_bench(synthetic_cifar(train=64, test=8), CPU, models=("resnet8",),
                             batch_size=16, epochs=1, warmup=0, compile=True,
                             compile_modes=("default", "reduce-overhead"), fuse=(4,),
                             echo=lambda _: None)  # fmt: skip
    fused_row, sequential, _ = report.fusion
    assert sequential.sec_per_epoch == pytest.approx(4 * 1.7)
    assert sequential.execution["compile_mode"] == "reduce-overhead"
    assert [ex.compile_mode for ex in concurrent_ex] == ["reduce-overhead"]
    assert fused_row.gain_vs_sequential == pytest.approx((4 * 32 / 2.0) / (32 / 1.7))


@pytest.mark.parametrize("user_set", [None, "3"])
def test_concurrent_processes_share_the_cores_for_compilation(monkeypatch, user_set):
    """Six cold compilations each with a worker per core took their slot's time; the
    processes start with 1/K of the cores each, as repro run's workers do, unless the user
    said otherwise, and the bench's own environment is left as it was."""
    import multiprocessing.context
    import os

    seen = []

    def start(process):
        seen.append(os.environ.get("TORCHINDUCTOR_COMPILE_THREADS"))
        raise KeyboardInterrupt  # no process needs to run to see what it would inherit

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", start)
    if user_set:
        monkeypatch.setenv("TORCHINDUCTOR_COMPILE_THREADS", user_set)
    else:
        monkeypatch.delenv("TORCHINDUCTOR_COMPILE_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    with pytest.raises(KeyboardInterrupt):
        _measure_concurrent("resnet8", spec_from_name("resnet8"), bench_recipe(8, 16, 1),
                            synthetic_cifar(train=16, test=4), choose(CPU), 0, 6)  # fmt: skip
    assert seen == [user_set or "2"]
    assert os.environ.get("TORCHINDUCTOR_COMPILE_THREADS") == user_set


def test_a_bench_stopped_while_its_processes_run_keeps_the_fused_row(tmp_path, monkeypatch):
    """The H200 slot of 2026-11-27 stopped the bench in the K=6 concurrent processes, after
    its fused row was measured: the rows were written only once all three were, so it was
    lost."""
    import harness.bench as bench

    def stopped(*args, **kwargs):
        raise SystemExit(143)  # as the slot stage's SIGTERM ends `repro bench`

    monkeypatch.setattr(bench, "_measure_concurrent", stopped)
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, [*TINY, "--no-compile", "--fuse", "2", "--json", str(out)])
    assert result.exit_code == 143, result.output
    figures = json.loads(out.read_text())
    assert figures["complete"] is False
    assert [(r["k"], r["mode"]) for r in figures["fusion"]] == [(2, "fused"), (2, "sequential")]
    fused = figures["fusion"][0]
    assert fused["gain_vs_sequential"] > 0 and fused["gain_vs_concurrent"] is None


def test_a_failing_concurrent_process_is_reported_not_waited_for():
    # Images without a channel axis: every process fails in its first step.
    data = synthetic_cifar(train=16, test=4)
    broken = dataclasses.replace(data, train_images=data.train_images[:, 0])
    with pytest.raises(BenchError, match=r"concurrent process \d failed") as error:
        _measure_concurrent("resnet8", spec_from_name("resnet8"), bench_recipe(8, 16, 1),
                            broken, choose(CPU), 0, 2)  # fmt: skip
    assert "Traceback" in str(error.value)  # the process's own, sent back


# `repro bench` run in a process of its own, whose concurrent processes each hold a named
# semaphore from their set-up on and then wait: as on a GPU, where torch.compile's first step
# creates tqdm's lock (a multiprocessing RLock) in each of them.
_HOLDING_BENCH = """\
import multiprocessing, sys, time
from pathlib import Path
from harness import bench

real_setup = bench._setup


def holding_setup(spec, recipe, data, ex, seed=0):
    if ex.shared_by == 1:  # the bench's own rows, in this process
        return real_setup(spec, recipe, data, ex, seed)
    held = multiprocessing.RLock()  # in this spawned process: a named, tracked semaphore
    (Path(sys.argv[1]) / f"holding-{seed}").write_text("")
    time.sleep(600)
    return held


bench._setup = holding_setup  # here, in the parent and in each spawned process
if __name__ == "__main__":
    from harness.cli import main

    main(sys.argv[2:])
"""


def test_a_bench_stopped_while_its_processes_run_exits_cleanly_with_its_rows(tmp_path):
    """SIGTERM (a GPU slot's stage timeout) stopped `repro bench` in its concurrent rows; it
    SIGKILLed its processes, whose semaphores were left to Python's resource tracker, which
    said "There appear to be 5 leaked semaphore objects" as the bench ended."""
    (tmp_path / "holding_bench.py").write_text(_HOLDING_BENCH)
    out = tmp_path / "bench.json"
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "holding_bench.py"), str(tmp_path), *TINY,
         "--fuse", "2", "--json", str(out)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while len(list(tmp_path.glob("holding-*"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=120)[0]
    finally:
        proc.kill()
    assert proc.returncode == 130 and "stopped (SIGTERM)" in output, output
    assert "leaked" not in output and "Traceback" not in output, output
    assert [m["pipeline"] for m in json.loads(out.read_text())["measurements"]] == [
        "canonical", "fast"]  # fmt: skip


# `repro bench` stopped as a concurrent process has just been spawned, before multiprocessing
# writes it its start-up data: every time, not by luck of timing. SIGTERM reaches the bench
# alone (a scheduler's); SIGINT the new process too, as the terminal's Ctrl-C reaches the
# whole group.
_STOPPED_AS_A_PROCESS_IS_SPAWNED = """\
import multiprocessing.popen_spawn_posix as popen_spawn, os, signal, sys, time

real_spawn = popen_spawn.util.spawnv_passfds
signum = int(sys.argv[1])


def python_catches_ctrl_c(pid):
    status = open(f"/proc/{pid}/status").read()
    caught = int(status.split("SigCgt:")[1].split()[0], 16)
    return caught >> (signal.SIGINT - 1) & 1


def spawn_then_stop(path, args, passfds):
    pid = real_spawn(path, args, passfds)
    if "--multiprocessing-fork" in args:  # one of the bench's processes, not its resource tracker
        if signum == signal.SIGINT:  # once its Python is up, which a Ctrl-C then interrupts
            deadline = time.monotonic() + 60
            while not python_catches_ctrl_c(pid) and time.monotonic() < deadline:
                time.sleep(0.001)
            os.kill(pid, signum)
        signal.raise_signal(signum)  # the bench's handler runs before this returns
    return pid


popen_spawn.util.spawnv_passfds = spawn_then_stop
if __name__ == "__main__":
    from harness.cli import main

    main(sys.argv[2:])
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_bench_stopped_while_it_spawns_a_process_says_stopped_and_nothing_else(tmp_path, signum):
    """The stop was raised inside the spawn: the process, left without its start-up data,
    printed "EOFError: Ran out of input" (or "pickle data was truncated", cut mid-write)
    with its traceback after the bench had said "stopped (SIGTERM)"; a Ctrl-C reaching that
    process too killed it with a KeyboardInterrupt traceback while it started."""
    (tmp_path / "stop_on_spawn.py").write_text(_STOPPED_AS_A_PROCESS_IS_SPAWNED)
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "stop_on_spawn.py"), str(int(signum)), *TINY,
         "--no-compile", "--fuse", "2", "--json", str(out)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=300,
    )  # fmt: skip
    # The pipe closes once every process holding it has ended: a spawned one's output too.
    assert proc.returncode == 130, proc.stdout
    assert proc.stdout.rstrip().endswith(f"stopped ({signum.name})"), proc.stdout
    assert "Traceback" not in proc.stdout and "leaked" not in proc.stdout, proc.stdout
    fusion = json.loads(out.read_text())["fusion"]
    assert [(r["k"], r["mode"]) for r in fusion] == [(2, "fused"), (2, "sequential")]


@pytest.mark.parametrize(("value", "says"), [
    ("0", "'0' is not a positive integer"),
    ("x", "'x' is not a positive integer"),
    ("2,,3", "an empty item in '2,,3'"),
    ("4,-1", "'-1' in '4,-1' is not a positive integer"),
])  # fmt: skip
def test_a_bad_fuse_value_is_refused_with_a_clear_message(value, says):
    result = CliRunner().invoke(main, ["bench", "--device", "cpu", "--synthetic", "--fuse", value])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "Invalid value for '--fuse'" in result.output and says in result.output
    assert "e.g. 1,2,4,6,8" in result.output


def test_fuse_widths_keep_their_order_without_duplicates():
    from harness.cli import FuseWidths

    assert FuseWidths().convert("1,2,4,6,8", None, None) == (1, 2, 4, 6, 8)
    assert FuseWidths().convert(" 4, 2 ,4", None, None) == (4, 2)


@pytest.mark.parametrize(("recorded", "shown"), [(91900, "9.19.0"), (8902, "8.9.2"), (None, "–")])
def test_the_bench_s_markdown_names_cudnn_by_its_dotted_version(recorded, shown):
    # It printed torch's integer, "cuDNN 91900" for 9.19.0; the JSON keeps that integer.
    versions = {"torch": "2.14.1", "cuda": "13.0", "cudnn": recorded, "python": "3.11.7"}
    settings = {"batch_size": 128, "train_images": 50000, "measured_epochs": 2,
                "warmup_epochs": 1, "data": "synthetic"}  # fmt: skip
    report = BenchReport("2026-11-27", "cuda", "NVIDIA H100", versions, settings, complete=True)
    assert f"- torch 2.14.1, CUDA 13.0, cuDNN {shown}, Python 3.11.7\n" in markdown(report, "x")
    assert report.to_json()["versions"]["cudnn"] == recorded

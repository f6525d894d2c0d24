"""The GPU slot's runbook (benchmarks/gpu_box.py), rehearsed on the CPU: every stage, a
machine lost in the middle of training (SIGKILL to the whole process group), and a second
slot that imports what the first one returned and finishes the runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from conftest import QUICK_RECIPE, ROOT, tiny_study

# Ten epochs: the first slot is killed after an export holds two epochs of each run, and the
# runs must not finish within the few seconds that takes (an export every 2 s, a poll every
# 0.5 s), which eight epochs of two runs sharing a 2-core machine never do (4 s an epoch
# each on this VM, 2026-11-27). At twenty the second slot's 18 epochs were 100 of the test's
# 139 s, the slowest test of the suite.
RECIPE = """\
    optimizer: {lr: 0.05, momentum: 0.9, weight_decay: 5.0e-4}
    batch_size: 50
    epochs: 10
    schedule: {kind: multistep, milestones: [7], gamma: 0.1}
    normalization: {kind: per_channel}
    augmentation: {crop: {padding: 2}, flip: true}
"""


def _manifest(archive: Path) -> dict | None:
    try:
        with tarfile.open(archive) as tar:
            return json.loads(tar.extractfile("manifest.json").read())
    except (OSError, tarfile.TarError, KeyError, json.JSONDecodeError, EOFError):
        return None  # not there yet, or being replaced


def _box(tmp_path: Path, cifar_root: Path, name: str, *extra: str,
         budget: int = 150) -> list[str]:  # fmt: skip
    return [sys.executable, str(ROOT / "benchmarks" / "gpu_box.py"), "--rehearse",
            "--out", str(tmp_path / f"out-{name}"), "--work", str(tmp_path / f"work-{name}"),
            "--data-dir", str(cifar_root), "--queue", str(tmp_path / "queue.yaml"),
            "--export-every", "2", "--budget", str(budget), *extra]  # fmt: skip


# The slots' budget in the test below. Neither slot waits for it: the first is killed once an
# export holds two epochs of each run, the second ends when its runs are complete. It only
# has to be long enough for a 2-core machine shared with other work to train that far: at
# 150 s, check and bench left the first slot's queue 35 s, too little at a load of 9.
KILLED_SLOT_BUDGET_S = 600


def test_a_slot_killed_while_training_loses_nothing_the_next_slot_finishes(tmp_path, cifar_root):
    tiny_study(tmp_path / "s.yaml",
               "  - {name: a, model: resnet8, recipe: base}\n"
               "  - {name: b, model: plain8, recipe: base}\n", recipe=RECIPE)  # fmt: skip
    (tmp_path / "queue.yaml").write_text(
        "achieved_tflops: 0.001\nrate_source: tests\nitems:\n"
        "  - {name: both, why: the rehearsal, study: s.yaml, runs_per_gpu: 2}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(_box(tmp_path, cifar_root, "1", budget=KILLED_SLOT_BUDGET_S),
                             env=env, start_new_session=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    archive = tmp_path / "out-1" / "store-tiny.tar.gz"
    deadline = time.time() + KILLED_SLOT_BUDGET_S
    try:
        while time.time() < deadline:
            manifest = _manifest(archive)
            if manifest and all(r["resumable_from"] >= 2 for r in manifest["runs"]):
                break
            assert first.poll() is None, first.stdout.read()
            time.sleep(0.5)
        else:
            raise AssertionError("no export with two epochs of each run in time")
    finally:
        # The machine is gone, every process with it; a slot that already ended (the failure
        # reported above) has no group left to kill.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    log = (tmp_path / "out-1" / "box.log").read_text()
    assert "stage check: exit 0" in log and "stage bench: exit 0" in log
    assert (tmp_path / "out-1" / "bench.tar.gz").exists()
    exported = {r["path"]: r for r in _manifest(archive)["runs"]}
    assert all(r["status"] != "complete" for r in exported.values())

    second = subprocess.run(_box(tmp_path, cifar_root, "2", "--skip", "check,bench",
                                 "--fuse", "2", "--import", str(archive),
                                 budget=KILLED_SLOT_BUDGET_S),
                            env=env, capture_output=True, text=True,
                            timeout=KILLED_SLOT_BUDGET_S + 60)  # fmt: skip
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "added     tiny/a/seed-0" in second.stdout
    out = tmp_path / "out-2"
    returned = {p.name for p in out.iterdir()}
    assert {"box.json", "box.log", "store-tiny.tar.gz"} <= returned
    assert len(returned) <= 8 and all(p.is_file() for p in out.iterdir())  # what a slot returns
    final = {r["path"]: r for r in _manifest(out / "store-tiny.tar.gz")["runs"]}
    assert {p: (r["status"], r["epochs"]) for p, r in final.items()} == {
        "tiny/a/seed-0": ("complete", 10), "tiny/b/seed-0": ("complete", 10)}  # fmt: skip
    for path, run in exported.items():
        summary = json.loads((tmp_path / "work-2" / "results" / path / "summary.json").read_text())
        # Resumed where the first slot's checkpoint was, not from scratch; every epoch once.
        assert summary["sessions"][-1]["from_epoch"] == run["resumable_from"] > 0
        metrics = (tmp_path / "work-2" / "results" / path / "metrics.jsonl").read_text()
        assert [json.loads(line)["epoch"] for line in metrics.splitlines()] == list(range(1, 11))
    record = json.loads((out / "box.json").read_text())
    assert [s["stage"] for s in record["stages"]] == ["train"]
    assert record["stages"][0]["rc"] == 0
    # --fuse reached the queue (a and b are different nets: nothing fuses)
    command = record["stages"][0]["command"]
    assert command[command.index("--fuse") + 1] == "2"


def test_the_compile_cache_returns_in_parts_and_is_joined_again(tmp_path):
    """On the H100 the cache held 65-85 MiB, more than one returned file may: it goes out in
    parts where there is room, and the next slot joins them."""
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_box", ROOT / "benchmarks" / "gpu_box.py")
    gpu_box = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_box)

    def box(name: str, imports=(), part_mib=2 / 1024) -> object:
        args = argparse.Namespace(out=str(tmp_path / f"out-{name}"), work=str(tmp_path / name),
                                  started=time.time(), budget=60, imports=list(imports),
                                  part_mib=part_mib)  # fmt: skip
        Path(args.out).mkdir(parents=True)
        return gpu_box.Box(args)

    first = box("first")
    kernel = os.urandom(5000)  # incompressible: 5 kB packs into three 2 kB parts
    (first.cache / "triton").mkdir(parents=True)
    (first.cache / "triton" / "kernel.cubin").write_bytes(kernel)
    first.pack_compile_cache()
    parts = sorted((tmp_path / "out-first").glob("compile-cache.tar.gz.part-*"))
    assert [p.name[-6:] for p in parts] == ["part-1", "part-2", "part-3"]
    second = box("second", imports=parts)
    second.import_archives()
    assert (second.cache / "triton" / "kernel.cubin").read_bytes() == kernel
    crowded = box("crowded", part_mib=1 / 1024)
    for k in range(6):
        (tmp_path / "out-crowded" / f"store-{k}.tar.gz").write_bytes(b"x")
    (crowded.cache / "triton").mkdir(parents=True)
    (crowded.cache / "triton" / "kernel.cubin").write_bytes(kernel)
    crowded.pack_compile_cache()  # 5+ parts, room for 1 (with box.log): it stays behind
    assert not list((tmp_path / "out-crowded").glob("compile-cache*"))


def test_the_slot_can_time_fused_training_in_its_bench(tmp_path, cifar_root):
    """--fuse-widths passes the widths to `repro bench --fuse`: the fusion rows come back."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    (tmp_path / "queue.yaml").write_text("achieved_tflops: 0.001\nrate_source: tests\nitems: []\n")
    done = subprocess.run(_box(tmp_path, cifar_root, "f", "--skip", "check,train",
                               "--fuse-widths", "2"),
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with tarfile.open(tmp_path / "out-f" / "bench.tar.gz") as tar:
        bench = json.loads(tar.extractfile("bench.json").read())
    modes = {(row["k"], row["mode"]) for row in bench["fusion"]}
    assert {(2, "fused"), (2, "sequential"), (2, "concurrent")} <= modes


def test_a_slot_can_train_first_and_only_the_first_item(tmp_path, cifar_root):
    """--order check,train,bench: a slot that must finish runs trains before the bench can eat
    its time; --queue-items 1 ends training with the first unfinished item, leaving the rest
    of the slot to the bench."""
    tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n"
               "  - {name: b, model: plain8, recipe: base}\n", recipe=QUICK_RECIPE)  # fmt: skip
    (tmp_path / "queue.yaml").write_text(
        "achieved_tflops: 0.001\nrate_source: tests\nitems:\n"
        "  - {name: first, why: first, study: s.yaml, only: [a]}\n"
        "  - {name: second, why: second, study: s.yaml, only: [b]}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(_box(tmp_path, cifar_root, "o", "--order", "train,bench,check",
                               "--skip", "check", "--queue-items", "1"),
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads((tmp_path / "out-o" / "box.json").read_text())
    assert [s["stage"] for s in record["stages"]] == ["train", "bench"]
    assert all(s["rc"] == 0 for s in record["stages"])
    runs = {
        r["path"]: r["status"] for r in _manifest(tmp_path / "out-o" / "store-tiny.tar.gz")["runs"]
    }
    assert runs == {"tiny/a/seed-0": "complete"}  # b, the second item, was not started


def _refused(capsys, *argv: str) -> str:
    """What gpu_box.py writes to stderr for arguments it must refuse with exit status 2. Run
    in this process: argparse refuses before anything is started or written, so a process
    of its own (a start-up of Python, harness and torch, seconds) would prove nothing more."""
    with pytest.raises(SystemExit) as exited:
        _gpu_box().main(list(argv))
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_the_slot_refuses_stages_not_given_once(tmp_path, cifar_root, capsys):
    bad = _refused(capsys, *_box(tmp_path, cifar_root, "x", "--order", "train,bench")[2:])
    assert "give each of check, bench, train once" in bad
    assert not (tmp_path / "out-x").exists()


def test_the_slot_refuses_a_bad_fuse_before_it_starts(tmp_path, capsys):
    bad = _refused(capsys, "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path),
                   "--fuse", "0")  # fmt: skip
    assert "--fuse '0': give auto, off or a group size such as 4" in bad
    assert not (tmp_path / "out").exists()


def _staged(monkeypatch):
    """gpu_box.py as on a GPU (CUDA faked) whose stages are recorded, not run: (name, command
    line, timeout) each; no archives imported or exported."""
    gpu_box = _gpu_box()
    stages = []
    monkeypatch.setattr(gpu_box, "cuda_visible", lambda box: True)
    monkeypatch.setattr(gpu_box.Box, "import_archives", lambda box: None)
    monkeypatch.setattr(gpu_box.Box, "export", lambda box, final: None)
    monkeypatch.setattr(gpu_box.Box, "pack_compile_cache", lambda box: None)
    monkeypatch.setattr(gpu_box.Box, "stage",
                        lambda box, name, command, timeout: stages.append(
                            (name, command, min(timeout, box.stage_time()))) or 0)  # fmt: skip
    return gpu_box, stages


def test_the_slot_refuses_check_tests_that_select_none_before_it_starts(tmp_path, capsys):
    bad = _refused(capsys, "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path),
                   "--check-tests", "no_such_test")  # fmt: skip
    assert "--check-tests 'no_such_test' selects no test of tests/test_gpu.py" in bad
    assert "deselected" in bad  # pytest's own words, which say why
    assert not (tmp_path / "out").exists()


def test_check_tests_runs_only_the_gpu_tests_they_select(tmp_path, monkeypatch):
    """The check stage's pytest gets the expression, and it selects exactly the named tests
    (collected here, where CUDA is absent, as on the GPU)."""
    gpu_box, stages = _staged(monkeypatch)
    expression = "fused and cuda_graphs or a_run_on_cuda"
    assert gpu_box.main(["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                         "--data-dir", str(tmp_path), "--skip", "bench,train",
                         "--check-tests", expression]) == 0  # fmt: skip
    command = {name: command for name, command, _ in stages}["check"]
    assert command[command.index("-k") + 1] == expression
    quiet = [arg for arg in command if arg != "-v"]  # -q alone lists one test a line
    listed = subprocess.run([*quiet, "--collect-only", "-q"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    chosen = sorted(line.split("::")[1] for line in listed.stdout.splitlines() if "::" in line)
    assert chosen == ["test_a_fused_group_trains_under_cuda_graphs_like_the_default_mode",
                      "test_a_run_on_cuda_takes_and_records_the_fast_path"]  # fmt: skip


def test_a_slot_on_a_machine_without_cuda_trains_nothing(tmp_path, cifar_root):
    # A slot whose torch sees no GPU (a driver that did not load, a CPU-only wheel) would
    # otherwise spend its minutes training on the CPU and return CPU runs as its progress.
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n", recipe=RECIPE)
    (tmp_path / "queue.yaml").write_text(
        "achieved_tflops: 0.001\nrate_source: tests\nitems:\n"
        "  - {name: a, why: the rehearsal, study: s.yaml}\n"
    )
    argv = [
        arg for arg in _box(tmp_path, cifar_root, "n", "--skip", "check") if arg != "--rehearse"
    ]
    done = subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 5, done.stdout[-3000:] + done.stderr[-3000:]
    log = (tmp_path / "out-n" / "box.log").read_text()
    assert "no CUDA device" in log and "devices 0" in log
    record = json.loads((tmp_path / "out-n" / "box.json").read_text())
    assert record["no_cuda"] and [s["stage"] for s in record["stages"]] == ["cuda"]
    assert sorted(p.name for p in (tmp_path / "out-n").iterdir()) == ["box.json", "box.log"]
    assert not (tmp_path / "work-n" / "results" / "tiny").exists()


@pytest.mark.parametrize("case", ["no cuda", "bad option"])
def test_box_log_holds_everything_gpu_box_sh_shows(tmp_path, cifar_root, case):
    """box.log is what a slot returns of its console, but gpu_box.sh's set-up line (how long
    it took, where the data is) and what gpu_box.py wrote to stderr reached the console only.
    CUDA is hidden: this is the shell script's part, on any machine."""
    extra = ["--skip", "check"] if case == "no cuda" else ["--no-such-option"]
    env = {**os.environ, "PYTHON": sys.executable, "REPRO_DATA_DIR": str(cifar_root),
           "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip
    done = subprocess.run([str(ROOT / "benchmarks" / "gpu_box.sh"), str(tmp_path / "out"),
                           "--work", str(tmp_path / "work"), *extra],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == (5 if case == "no cuda" else 2), done.stdout + done.stderr
    log = (tmp_path / "out" / "box.log").read_text()
    shown = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert any("gpu_box: set-up took" in line for line in shown), shown
    assert [line for line in shown if line not in log] == []


def _gpu_box():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_box", ROOT / "benchmarks" / "gpu_box.py")
    gpu_box = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_box)
    return gpu_box


def _bare_box(gpu_box, tmp_path: Path, budget: float, **more):
    """A Box of ``budget`` seconds from now, outside a slot (no stage run yet)."""
    import argparse

    more.setdefault("train_budget", None)

    args = argparse.Namespace(out=str(tmp_path / "out"), work=str(tmp_path / "work"),
                              started=time.time(), budget=budget, imports=[],
                              part_mib=15, reserve=2, stop_grace=1, export_every=1000,
                              rehearse=True, **more)  # fmt: skip
    Path(args.out).mkdir(parents=True)
    return gpu_box.Box(args)


def test_a_stage_that_hangs_is_killed_with_its_children_before_the_time_kept_for_the_end(
    tmp_path,
):
    """A stage that ignores SIGTERM (a hung CUDA call) was killed 20 s after the budget's end,
    its parent only: the final export came after the slot's call could end, and a queue's
    workers went on training during it. Now the kill lands before the reserve, and takes the
    whole process group."""
    gpu_box = _gpu_box()
    box = _bare_box(gpu_box, tmp_path, budget=6)
    child = tmp_path / "child.pid"
    hang = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            " p = subprocess.Popen([sys.executable, '-c', 'import signal, time; signal.signal("
            "signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']);"
            f" open({str(child)!r}, 'w').write(str(p.pid)); time.sleep(60)")  # fmt: skip
    rc = box.stage("hang", [sys.executable, "-c", hang], timeout=300)
    assert time.time() <= box.end - box.args.reserve + 1.5  # 0.5 s polls, 1 s for the reader
    assert rc == -signal.SIGKILL
    pid = int(child.read_text())
    deadline = time.time() + 5
    while time.time() < deadline and Path(f"/proc/{pid}").exists():
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            break  # killed; its parent, killed too, did not reap it
        time.sleep(0.1)
    else:
        assert not Path(f"/proc/{pid}").exists(), "the stage's child outlived the stage"
    record = json.loads((tmp_path / "out" / "box.json").read_text())
    assert record["stages"][0]["timed_out"]
    # Once the time kept for the end is all that is left, a stage is not started at all.
    assert box.stage("late", [sys.executable, "-c", "pass"], timeout=300) == -1
    assert "stage late: no time left" in (tmp_path / "out" / "box.log").read_text()


def test_the_training_stage_stops_and_is_stopped_before_the_time_kept_for_the_end(tmp_path):
    """Its time budget, the queue's winding down after it, SIGTERM and SIGKILL all come before
    the reserve: the queue's budget was the whole time left but the reserve, its SIGTERM 5 s
    after the budget's end and its SIGKILL 25 s after."""
    gpu_box = _gpu_box()
    box = _bare_box(gpu_box, tmp_path, budget=400, queue=str(tmp_path / "queue.yaml"),
                    queue_items=1, data_dir=str(tmp_path), fuse="off")  # fmt: skip
    box.args.reserve, box.args.stop_grace = 25, 20
    stages = []
    box.export = lambda final: None
    box.stage = lambda name, command, timeout: stages.append((command, timeout))
    gpu_box.train(box, box.args)
    [(command, timeout)] = stages
    budget = int(command[command.index("--time-budget") + 1].removesuffix("s"))
    assert timeout + box.args.stop_grace + box.args.reserve <= box.left() + 0.5
    assert budget + gpu_box.WIND_DOWN_S <= timeout
    assert budget >= 400 - 25 - 20 - gpu_box.WIND_DOWN_S - 2  # no more is kept than that


def test_a_slot_without_a_carried_compile_cache_says_it_compiles_from_scratch(tmp_path):
    """A fresh clone has no .compile-carry/ (ignored, never committed): the slot goes on and
    its log and record say that every compilation is paid again, so that its timings are
    read as cold ones; a carried cache says how many parts it came from."""
    gpu_box = _gpu_box()
    box = _bare_box(gpu_box, tmp_path, budget=60)
    box.import_archives()
    log = (tmp_path / "out" / "box.log").read_text()
    assert "compile cache: none given" in log and "starts from scratch" in log
    assert box.record["compile_cache"] == "none given"
    (box.cache / "triton").mkdir(parents=True)
    box.pack_compile_cache()  # nothing compiled: no empty archive takes a returned file
    assert not list((tmp_path / "out").glob("compile-cache*"))
    assert "compile cache: empty; nothing to return" in (tmp_path / "out" / "box.log").read_text()
    (box.cache / "triton" / "kernel.cubin").write_bytes(b"k" * 1000)
    box.pack_compile_cache()
    parts = sorted((tmp_path / "out").glob("compile-cache.tar.gz.part-*"))
    again = _bare_box(gpu_box, tmp_path / "again", budget=60)
    again.args.imports = [str(p) for p in parts]
    again.import_archives()
    assert again.record["compile_cache"] == f"from {len(parts)} part(s)"
    assert (again.cache / "triton" / "kernel.cubin").read_bytes() == b"k" * 1000


def test_the_compile_cache_is_not_packed_once_the_budget_has_ended(tmp_path):
    """Packed last; a slot whose budget is spent returns without it rather than packing tens
    of MiB while the call that runs it ends."""
    gpu_box = _gpu_box()
    box = _bare_box(gpu_box, tmp_path, budget=0)
    (box.cache / "triton").mkdir(parents=True)
    (box.cache / "triton" / "kernel.cubin").write_bytes(b"k" * 1000)
    box.pack_compile_cache()
    assert not list((tmp_path / "out").glob("compile-cache*"))
    assert "it stays behind" in (tmp_path / "out" / "box.log").read_text()


# The next GPU slot's options (after gpu_box.sh's own --out, --data-dir, --started, --import).
NEXT_SLOT = ("--order", "check,train,bench", "--queue-items", "1", "--train-budget", "180",
             "--fuse-widths", "6", "--bench-models", "resnet20,resnet110")  # fmt: skip


def test_the_gpu_slots_own_bench_and_queue_command_lines_are_ones_repro_accepts(
    tmp_path, cifar_root, monkeypatch
):
    """The rehearsal runs CPU-sized stages; the command lines a GPU slot runs (NEXT_SLOT's)
    are built otherwise and ran nowhere but on the GPU. gpu_box.py parses the slot's own
    options and builds its stages here as on the GPU (CUDA faked, the stages not run); each
    repro command line is then parsed and checked by `repro` itself, up to where it would
    start to measure or train."""
    from click.testing import CliRunner

    from harness import bench as bench_module
    from harness import queue as queue_module
    from harness.cli import main

    gpu_box, stages = _staged(monkeypatch)
    assert gpu_box.main(["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                         "--data-dir", str(cifar_root), "--started", str(time.time()),
                         *NEXT_SLOT]) == 0  # fmt: skip
    assert [name for name, _, _ in stages] == ["check", "train", "bench"]
    commands = {name: command for name, command, _ in stages}
    timeouts = {name: timeout for name, _, timeout in stages}
    assert timeouts["train"] == 180
    queue_line = commands["train"]
    assert queue_line[queue_line.index("--time-budget") + 1] == f"{180 - gpu_box.WIND_DOWN_S}s"

    class Reached(Exception):
        pass

    def reached(*args, **kwargs):
        raise Reached(kwargs, args)

    monkeypatch.setattr(bench_module, "run_bench", reached)
    monkeypatch.setattr(queue_module, "run_queue", reached)
    for name in ("bench", "train"):
        command = commands[name]
        assert command[1:3] == ["-m", "harness"] and "--device" not in command
        outcome = CliRunner().invoke(main, command[3:])
        assert isinstance(outcome.exception, Reached), (name, outcome.output)
        options = outcome.exception.args[0]
        if name == "bench":
            assert options["models"] == ("resnet20", "resnet110")
            assert options["compile_modes"] == ("default", "reduce-overhead")
            assert options["fuse"] == (6,)
            assert options["profile_dir"] == tmp_path / "work" / "bench" / "profile"
        else:
            assert options["limit"] == 1
            # no --compile-mode: the runs train in the fast path's default, CUDA graphs
            assert outcome.exception.args[1][1].compile_mode is None


def _rehearsal():
    import importlib.util

    path = ROOT / "benchmarks" / "rehearse_slot.py"
    spec = importlib.util.spec_from_file_location("rehearse_slot", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_the_rehearsal_says_what_would_not_come_back_from_a_slot(tmp_path):
    """The device tool brings back at most 8 plain files of 16 MiB each: a file over the size,
    a link or a folder, or a ninth file, would be lost without a word at the end of a slot."""
    rehearsal = _rehearsal()
    out = tmp_path / "out"
    out.mkdir()
    for k in range(7):
        (out / f"store-{k}.tar.gz").write_bytes(b"x" * 10)
    (out / ".box.json.tmp").write_text("{}")  # hidden: not returned, not counted
    assert rehearsal.limit_problems(rehearsal.returned_files(out)) == []
    with (out / "compile-cache.tar.gz.part-1").open("wb") as big:
        big.truncate(16 * 2**20 + 1)  # sparse: no 16 MiB written
    (out / "profile").mkdir()
    (out / "link").symlink_to(out / "store-0.tar.gz")
    problems = rehearsal.limit_problems(rehearsal.returned_files(out))
    assert "compile-cache.tar.gz.part-1 is 16.0 MiB, over the 16 MiB that come back" in problems
    assert "profile is not a plain file: it would not come back" in problems
    assert "link is not a plain file: it would not come back" in problems
    assert "10 files returned, over the 8 that come back" in problems


def test_the_rehearsal_refuses_a_carried_tree_over_the_limit_before_the_slot(tmp_path, capsys):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the rehearsal copies `git archive HEAD`")
    rehearsal = _rehearsal()
    rc = rehearsal.main(["--scratch", str(tmp_path / "r"), "--carry-limit-mib", "1",
                         "--budget", "60"])  # fmt: skip
    said = capsys.readouterr().out
    assert rc == 6, said
    assert "the carried tree is" in said and "over the 1 MiB the device tool carries" in said
    assert "gpu_box.sh" not in said  # the slot did not run
    assert not (tmp_path / "r").exists()  # the scratch copy is removed


def test_the_rehearsal_outside_a_git_checkout_says_so(tmp_path):
    """A copy without .git (an unpacked archive, the device's tree) has no HEAD to rehearse:
    one line saying so, not git's traceback."""
    (tmp_path / "benchmarks").mkdir()
    script = tmp_path / "benchmarks" / "rehearse_slot.py"
    script.write_text((ROOT / "benchmarks" / "rehearse_slot.py").read_text())
    done = subprocess.run([sys.executable, str(script), "--scratch", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is not a git checkout" in done.stdout and "Traceback" not in done.stderr


DEAF_BENCH = """
import signal, sys, time
from pathlib import Path
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # deaf to the stage's SIGTERM: SIGKILL ends it
profile = Path(sys.argv[1]) / "profile"
profile.mkdir(parents=True)
(profile.parent / "bench.json").write_text("{}")
(profile / "profile-resnet20.txt").write_text("operators")
(profile / "profile-resnet20.trace.json").write_text("{}")
(profile / ".profile-resnet56.trace.json.123.tmp").write_text("{")  # the kill came mid-write
print("written", flush=True)
time.sleep(60)
"""


def test_a_bench_stage_killed_still_returns_the_profiles_it_wrote_and_no_more(tmp_path):
    """The H200 slots (2026-11-27) stopped the bench stage at its timeout. bench.tar.gz is
    packed after the stage ends, SIGKILL included: the profile's table comes back; the Chrome
    traces (megabytes each) and a file the kill left half-written do not."""
    gpu_box = _gpu_box()
    box = _bare_box(gpu_box, tmp_path, budget=60, data_dir="d", bench_models="resnet20",
                    compile_modes="default", bench_subset=None, fuse_widths="",
                    bench_timeout=1)  # fmt: skip
    box.args.rehearse = False
    box.repro = lambda *args: [sys.executable, "-c", DEAF_BENCH, str(box.work / "bench")]
    gpu_box.bench(box, box.args)
    stage = box.record["stages"][-1]
    assert stage["timed_out"] and stage["rc"] == -signal.SIGKILL
    with tarfile.open(tmp_path / "out" / "bench.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["bench.json", "profile/profile-resnet20.txt"]


def test_a_training_budget_leaves_the_stages_after_training_their_time(tmp_path):
    """A first queue item longer than the slot (the shortcut nets: about 15 GPU-minutes) took
    the whole budget with --order check,train,bench, leaving the bench nothing; --train-budget
    caps the stage, its queue's time budget and winding down included."""
    gpu_box = _gpu_box()
    box = _bare_box(gpu_box, tmp_path, budget=400, queue=str(tmp_path / "queue.yaml"),
                    queue_items=1, data_dir=str(tmp_path), fuse="off", train_budget=120)  # fmt: skip
    stages = []
    box.export = lambda final: None
    box.stage = lambda name, command, timeout: stages.append((command, timeout))
    gpu_box.train(box, box.args)
    [(command, timeout)] = stages
    assert timeout == 120
    assert command[command.index("--time-budget") + 1] == f"{120 - gpu_box.WIND_DOWN_S}s"

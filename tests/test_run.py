"""`repro run` end to end on CPU: learning, divergence, failure, resumption, skipping, locks."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import QUICK_RECIPE, ROOT, TINY_RECIPE, tiny_study

from harness import store
from harness.cli import main
from harness.plan import Overrides, plan
from harness.runner import RunOptions, run_study
from harness.studyfile import load_study

CURVE_KEYS = (
    "epoch",
    "iteration",
    "lr",
    "train_loss",
    "train_error",
    "test_loss",
    "test_error",
    "val_loss",
    "val_error",
    "warmup",
)


def repro(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result


def run_args(study: Path, cifar_root: Path, results: Path, *extra: str) -> list[str]:
    return [
        "run",
        str(study),
        "--data-dir",
        str(cifar_root),
        "--results",
        str(results),
        "--device",
        "cpu",
        "--quiet",
        *extra,
    ]


def summary(results: Path, run: str) -> dict:
    return json.loads((results / run / "summary.json").read_text())


def curves(results: Path, run: str) -> list[dict]:
    rows = store.read_jsonl(results / run / "metrics.jsonl")
    return [{k: r.get(k) for k in CURVE_KEYS} for r in rows]


def test_training_lowers_the_loss_and_records_everything(tmp_path, cifar_root):
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n")
    results = tmp_path / "results"
    result = repro(*run_args(study, cifar_root, results))
    assert result.exit_code == 0, result.output
    assert "not the official release" in result.output
    run = results / "tiny" / "r8" / "seed-0"
    assert {p.name for p in run.iterdir()} >= {
        "config.json",
        "environment.json",
        "metrics.jsonl",
        "summary.json",
        "checkpoint.pt",
    }
    rows = curves(results, "tiny/r8/seed-0")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_loss"] < 0.7 * rows[0]["train_loss"]
    s = summary(results, "tiny/r8/seed-0")
    assert s["status"] == "complete" and s["counts_as_reproduction"]
    assert s["params"] == 75_290
    assert s["test_error"] < 40  # ten colour classes: far below chance (90%)
    assert s["sec_per_epoch"] > 0 and s["epochs_done"] == 3
    assert s["data"]["official"] is False
    assert s["data"]["train_images"] == 600 and len(s["data"]["train_fingerprint"]) == 64
    assert s["telemetry"]["available"] is False and "CPU" in s["telemetry"]["reason"]
    env = json.loads((run / "environment.json").read_text())
    for key in (
        "torch",
        "cuda",
        "cudnn",
        "device_name",
        "driver",
        "harness",
        "hostname",
        "precision",
        "command",
    ):
        assert key in env
    config = json.loads((run / "config.json").read_text())
    assert config["hash"] == s["config_hash"] and config["seed"] == 0
    # milestone 2: the rate drops after two epochs, as MultiStepLR([2]) stepped per epoch
    assert [r["lr"] for r in rows] == pytest.approx([0.05, 0.05, 0.005])


def test_a_diverging_run_is_recorded_and_the_study_goes_on(tmp_path, cifar_root):
    study = tiny_study(
        tmp_path / "s.yaml",
        "  - name: wild\n    model: plain8\n    recipe:\n      extends: base\n"
        "      optimizer: {lr: 10, momentum: 0.9, weight_decay: 0.5}\n"
        # calm only has to finish beside it: 100 images (wild on 100 did not diverge)
        "  - {name: calm, model: resnet8, recipe: {extends: base, train_images: 100}}\n",
    )
    results = tmp_path / "results"
    result = repro(*run_args(study, cifar_root, results))
    assert result.exit_code == 0, result.output
    assert "DIVERGED" in result.output and "NaN/inf" in result.output
    wild = summary(results, "tiny/wild/seed-0")
    assert wild["status"] == "diverged" and wild["diverged_at"]["epoch"] >= 1
    rows = curves(results, "tiny/wild/seed-0")
    assert len(rows) == wild["diverged_at"]["epoch"] and rows[-1]["train_loss"] is None
    assert summary(results, "tiny/calm/seed-0")["status"] == "complete"
    # A diverged run is a result: running again does not retrain it.
    again = repro(*run_args(study, cifar_root, results))
    assert again.output.count("[    skip]") == 2


def test_a_failing_run_is_recorded_and_the_study_goes_on(tmp_path, cifar_root):
    study = tiny_study(
        tmp_path / "s.yaml",
        "  - name: broken\n    model: resnet8\n    recipe:\n      extends: base\n"
        "      batch_size: 1000\n      last_batch: drop\n"
        "  - {name: fine, model: resnet8, recipe: base}\n",
        recipe=QUICK_RECIPE,
    )
    results = tmp_path / "results"
    result = repro(*run_args(study, cifar_root, results))
    assert result.exit_code == 1
    assert "FAILED" in result.output and "fewer training images than one batch" in result.output
    broken = summary(results, "tiny/broken/seed-0")
    assert broken["status"] == "failed" and "ValueError" in broken["error"]
    # It failed building its loader, before any epoch: its summary still says where it ran.
    (session,) = broken["sessions"]
    env = store.read_environment(results / "tiny/broken/seed-0")
    assert (session["from_epoch"], session["device_name"]) == (0, env["device_name"])
    assert session["dataset_fingerprint"] == broken["data"]["dataset_fingerprint"]
    assert "Traceback" in (results / "tiny/broken/seed-0/error.txt").read_text()
    assert summary(results, "tiny/fine/seed-0")["status"] == "complete"


def test_complete_runs_are_skipped_and_changed_ones_superseded(tmp_path, cifar_root):
    experiments = "  - {name: r8, model: resnet8, recipe: base}\n"
    study = tiny_study(tmp_path / "s.yaml", experiments, QUICK_RECIPE)
    results = tmp_path / "results"
    assert repro(*run_args(study, cifar_root, results)).exit_code == 0
    summary_file = results / "tiny/r8/seed-0/summary.json"
    before = summary_file.stat().st_mtime_ns
    again = repro(*run_args(study, cifar_root, results))
    assert "[    skip]" in again.output and "already complete" in again.output
    assert summary_file.stat().st_mtime_ns == before

    forced = repro(*run_args(study, cifar_root, results, "--force"))
    assert "moved to" in forced.output and "[    done]" in forced.output
    assert len(list((results / "tiny/r8/.superseded").iterdir())) == 1

    tiny_study(tmp_path / "s.yaml", experiments, QUICK_RECIPE.replace("lr: 0.05", "lr: 0.02"))
    changed = repro(*run_args(study, cifar_root, results))
    assert "made with another config" in changed.output and "[    done]" in changed.output
    assert len(list((results / "tiny/r8/.superseded").iterdir())) == 2
    assert summary(results, "tiny/r8/seed-0")["status"] == "complete"


def test_overrides_are_stored_apart_and_never_count(tmp_path, cifar_root):
    study = tiny_study(
        tmp_path / "s.yaml",
        "  - {name: r8, model: resnet8, recipe: base}\n"
        "  - {name: p8, model: plain8, recipe: base}\n",
    )
    results = tmp_path / "results"
    result = repro(*run_args(study, cifar_root, results, "--smoke"))
    assert result.exit_code == 0, result.output
    for name in ("r8", "p8"):
        s = summary(results, f"tiny/{name}/seed-0~smoke")
        assert s["status"] == "complete" and not s["counts_as_reproduction"]
        assert s["iterations_done"] == 4 and s["data"]["train_images"] == 200
    assert "[not a reproduction]" in result.output
    trial = repro(
        *run_args(
            study,
            cifar_root,
            results,
            "--epochs",
            "1",
            "--subset",
            "100",
            "--only",
            "r8",
            "--seeds",
            "2",
        )
    )
    assert trial.exit_code == 0, trial.output
    for seed in (0, 1):
        s = summary(results, f"tiny/r8/seed-{seed}~epochs1-subset100")
        assert s["epochs_done"] == 1 and s["data"]["train_images"] == 100
    assert not (results / "tiny/r8/seed-0").exists()


def test_threshold_warmup_ends_during_training(tmp_path, cifar_root):
    recipe = TINY_RECIPE + "    warmup: {lr: 0.01, until_train_error_below: 85, window: 5}\n"
    study = tiny_study(
        tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n", recipe
    )
    results = tmp_path / "results"
    assert repro(*run_args(study, cifar_root, results)).exit_code == 0
    s = summary(results, "tiny/r8/seed-0")
    assert s["warmup_ended_at_iteration"] is not None and s["warmup_ended_at_iteration"] >= 5


def test_a_locked_run_is_left_to_its_holder(tmp_path, cifar_root):
    study_path = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n",
                            QUICK_RECIPE)  # fmt: skip
    study = load_study(study_path)
    results = tmp_path / "results"
    run_dir = plan(study)[0].directory(results)
    lines = []
    options = RunOptions(results=results, data_dir=cifar_root, device="cpu", quiet=True)
    with store.run_lock(run_dir):
        assert store.inspect(run_dir).status == "absent"
        with pytest.raises(store.LockHeld), store.run_lock(run_dir):
            pass
        outcomes = run_study(study, options, lines.append)
    assert [o.status for o in outcomes] == ["busy"]
    assert "being trained by another process" in lines[-1]
    assert not (run_dir / "summary.json").exists()
    assert [o.status for o in run_study(study, options, lines.append)] == ["complete"]


def _cli(results: Path, study: Path, cifar_root: Path) -> list[str]:
    return [sys.executable, "-m", "harness", *run_args(study, cifar_root, results)]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def repro_on_one_thread(*args: str):
    """`repro` in this process on one thread, as the processes of ``_cli`` run (_env sets
    OMP_NUM_THREADS=1), so that their numbers agree bit for bit: a start-up of torch fewer
    for a reference run or a resumption whose process nothing kills."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return repro(*args)
    finally:
        torch.set_num_threads(threads)


def kill_twice(command: list[str], metrics: Path, rng: random.Random) -> int:
    """Start ``command`` twice and SIGKILL it at a random moment after 1, then 3 epochs are
    in ``metrics``; return how many times it was killed (not at all if it finished first)."""
    kills = 0
    for target_epochs in (1, 3):
        proc = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.time() + 120
        while len(store.read_jsonl(metrics)) < target_epochs and time.time() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    return kills


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, cifar_root):
    recipe = TINY_RECIPE.replace("epochs: 3", "epochs: 5").replace("[2]", "[3]")
    recipe += "    validation_images: 100\n"
    study = tiny_study(
        tmp_path / "s.yaml",
        "  - {name: w, model: {name: wrn-10-1, dropout: 0.2}, recipe: base}\n",
        recipe,
    )
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    # Only the killed processes need processes of their own: the uninterrupted reference and
    # the resumption that ends the killed run are trained in this process, on one thread.
    reference = repro_on_one_thread(*run_args(study, cifar_root, straight))
    assert reference.exit_code == 0, reference.output
    metrics = killed / "tiny/w/seed-0/metrics.jsonl"
    kills = kill_twice(_cli(killed, study, cifar_root), metrics, random.Random(0))
    assert kills >= 1, "the run finished before it could be killed; make it longer"
    assert store.inspect(killed / "tiny/w/seed-0").status in ("interrupted", "complete")
    resumed = repro_on_one_thread(*run_args(study, cifar_root, killed))
    assert resumed.exit_code == 0, resumed.output

    a, b = curves(straight, "tiny/w/seed-0"), curves(killed, "tiny/w/seed-0")
    assert [r["epoch"] for r in b] == [1, 2, 3, 4, 5]  # none lost, none duplicated
    assert a == b  # bit-for-bit the same numbers
    resumed = summary(killed, "tiny/w/seed-0")
    assert resumed["status"] == "complete" and len(resumed["sessions"]) == kills + 1
    assert resumed["test_error"] == summary(straight, "tiny/w/seed-0")["test_error"]


def test_two_processes_on_one_study_never_train_the_same_run(tmp_path, cifar_root):
    study = tiny_study(
        tmp_path / "s.yaml",
        "".join(f"  - {{name: r{i}, model: resnet8, recipe: base}}\n" for i in range(3)),
    )
    results = tmp_path / "results"
    procs = [
        subprocess.Popen(
            _cli(results, study, cifar_root),
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    for i in range(3):
        s = summary(results, f"tiny/r{i}/seed-0")
        assert s["status"] == "complete" and len(s["sessions"]) == 1  # trained exactly once
    done = sum(o.count("[    done]") for o in outputs)
    assert done == 3


def test_only_selects_among_all_the_studies_given(tmp_path, cifar_root):
    """`repro run a.yaml b.yaml --only X` was refused when a.yaml lacked X though b.yaml had
    it; a name that no study has is refused naming each study searched and what it has."""
    a = tiny_study(tmp_path / "a.yaml", "  - {name: r8, model: resnet8, recipe: base}\n", name="a")
    b = tiny_study(tmp_path / "b.yaml", "  - {name: p8, model: resnet8, recipe: base}\n", name="b")
    results = tmp_path / "results"
    wrong = repro(*run_args(a, cifar_root, results, str(b), "--only", "p9"))
    assert wrong.exit_code == 2, wrong.output
    assert ("--only p9: none of the studies given has such an experiment (did you mean p8?); "
            "the studies searched: 'a' has r8; 'b' has p8") in wrong.output  # fmt: skip
    assert not results.exists()  # nothing trained before the refusal
    ran = repro(*run_args(a, cifar_root, results, str(b), "--only", "p8"))
    assert ran.exit_code == 0, ran.output
    assert "a: has none of the experiments --only names; not run" in ran.output
    assert summary(results, "b/p8/seed-0")["status"] == "complete"
    assert not (results / "a").exists()


def test_unknown_experiment_and_missing_cuda_are_clear_errors(tmp_path, cifar_root):
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n")
    results = tmp_path / "results"
    only = repro(*run_args(study, cifar_root, results, "--only", "r9"))
    assert (
        only.exit_code == 2
        and "has no such experiment (did you mean r8?); it has: r8" in only.output
    )
    import torch

    if not torch.cuda.is_available():
        cuda = repro(
            "run",
            str(study),
            "--data-dir",
            str(cifar_root),
            "--results",
            str(results),
            "--device",
            "cuda",
        )
        assert cuda.exit_code == 2 and "sees no CUDA device" in cuda.output
    assert "Traceback" not in only.output


def test_the_smoke_override_plans_every_experiment_of_a_real_study():
    study = load_study(ROOT / "studies" / "degradation.yaml")
    plans = plan(study, Overrides(smoke=True))
    assert len(plans) == len(study.experiments)
    for p in plans:
        r = p.recipe
        assert r.train_images == 4 * r.batch_size and r.test_images == 500
        assert (r.iterations or r.epochs * 4) == 4
        assert p.directory(Path("results")).name == "seed-0~smoke"


def test_an_unreadable_checkpoint_is_kept_and_the_run_starts_over(tmp_path, cifar_root):
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n",
                       QUICK_RECIPE)  # fmt: skip
    results = tmp_path / "results"
    assert repro(*run_args(study, cifar_root, results, "--epochs", "1")).exit_code == 0
    run = results / "tiny" / "r8" / "seed-0~epochs1"
    # Make it look interrupted, with a damaged checkpoint (a disk that filled up, say).
    (run / "summary.json").unlink()
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    result = repro(*run_args(study, cifar_root, results, "--epochs", "1"))
    assert result.exit_code == 0, result.output
    assert "could not be read" in result.output and "starts over" in result.output
    kept = list(run.glob("checkpoint.pt.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"not a checkpoint"
    s = summary(results, "tiny/r8/seed-0~epochs1")
    assert s["status"] == "complete" and s["epochs_done"] == 1


def test_a_results_path_that_cannot_hold_runs_is_a_clear_error(tmp_path, cifar_root):
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n")
    (tmp_path / "file").write_text("not a directory")
    below_a_file = repro(*run_args(study, cifar_root, tmp_path / "file" / "results"))
    assert below_a_file.exit_code == 2, below_a_file.output
    assert "cannot hold the run store" in below_a_file.output
    assert "Traceback" not in below_a_file.output


def test_a_read_only_results_directory_is_a_clear_error(tmp_path, cifar_root, monkeypatch):
    """Tests run as root, for whom permissions do not bind: a read-only file system is
    stood in for by the error the kernel would give."""
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n")
    results = tmp_path / "results"
    results.mkdir()
    real_mkstemp = store.tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve().is_relative_to(results.resolve()):
            raise OSError(30, "Read-only file system", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(store.tempfile, "mkstemp", read_only)
    out = repro(*run_args(study, cifar_root, results))
    assert out.exit_code == 2, out.output
    assert "cannot hold the run store" in out.output and "Read-only" in out.output
    assert "Traceback" not in out.output


def _paused_after_one_epoch(tmp_path, cifar_root, monkeypatch) -> tuple[Path, Path]:
    """A study of one run, paused by its time budget after its first epoch: (study, store)."""
    from harness import budget

    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n",
                       QUICK_RECIPE)  # fmt: skip
    results = tmp_path / "results"
    fits = iter([True, False])  # one epoch fits the budget, the second does not
    monkeypatch.setattr(budget.Deadline, "fits", lambda self, estimate: next(fits, False))
    paused = repro(*run_args(study, cifar_root, results, "--time-budget", "10m"))
    assert "[  paused]" in paused.output, paused.output
    monkeypatch.undo()
    return study, results


def _untouched_then_finished(study: Path, cifar_root: Path, results: Path) -> dict:
    """After a refused resume: the paused run is as it was, and the command it began with
    finishes it. Returns its summary."""
    left = summary(results, "tiny/a/seed-0")
    assert (left["status"], left["epochs_done"]) == ("paused", 1)  # untouched
    same = repro(*run_args(study, cifar_root, results))
    assert same.exit_code == 0, same.output
    done = summary(results, "tiny/a/seed-0")
    assert done["status"] == "complete"
    return done


def test_a_run_resumed_on_another_device_reports_each_devices_speed(
    tmp_path, cifar_root, monkeypatch
):
    """A run whose later epochs ran on another GPU (resumed in another slot) had one
    sec_per_epoch, the median over both devices' epochs, and `repro run`'s [done] line gave it
    as if it were one device's speed. The summary gives the latest device's, naming it, and
    each device's; the line names the devices."""
    from harness import environment

    study, results = _paused_after_one_epoch(tmp_path, cifar_root, monkeypatch)
    first = summary(results, "tiny/a/seed-0")["sec_per_epoch_device"]
    monkeypatch.setattr(environment, "device_name", lambda device: "Other GPU")
    resumed = repro(*run_args(study, cifar_root, results))
    assert resumed.exit_code == 0, resumed.output
    epochs = store.read_jsonl(results / "tiny/a/seed-0" / store.METRICS)
    assert [h["device"] for h in epochs] == [first, "Other GPU", "Other GPU"]
    s = summary(results, "tiny/a/seed-0")
    # the first epoch of the session on the other device compiles: only the third is timed
    other = epochs[2]["train_seconds"]
    assert (s["sec_per_epoch"], s["sec_per_epoch_device"]) == (other, "Other GPU")
    assert s["sec_per_epoch_by_device"] == [
        {"device": first, "epochs": 1, "sec_per_epoch": epochs[0]["train_seconds"]},
        {"device": "Other GPU", "epochs": 2, "sec_per_epoch": other},
    ]
    assert (f"after 3 epochs, {epochs[0]['train_seconds']:.2f} s/epoch on {first} (1 epoch), "
            f"then {other:.2f} on Other GPU (2 epochs)") in resumed.output, resumed.output  # fmt: skip
    assert repro("report", str(study), "--results", str(results), "--out",
                 str(tmp_path / "r.html")).exit_code == 0  # fmt: skip


def test_a_run_is_never_resumed_under_another_pipeline_or_precision(
    tmp_path, cifar_root, monkeypatch
):
    study, results = _paused_after_one_epoch(tmp_path, cifar_root, monkeypatch)

    other = repro(*run_args(study, cifar_root, results, "--pipeline", "canonical"))
    assert other.exit_code == 2, other.output
    assert "[ REFUSED] tiny/a/seed-0" in other.output
    assert "fp32, fast pipeline" in other.output and "fp32, canonical pipeline" in other.output
    assert "--force" in other.output and "--results" in other.output
    done = _untouched_then_finished(study, cifar_root, results)
    assert {s["pipeline"] for s in done["sessions"]} == {"fast"}


def test_a_run_paused_in_one_compile_mode_resumes_in_another(tmp_path, cifar_root, monkeypatch):
    """The compile mode is not numerics (CUDA graphs replay the same kernels): a run paused in
    the default mode resumes in reduce-overhead, the fast path's default on CUDA since, and
    each session records its mode, which the report shows. torch.compile only notes the mode
    here: compiling on the CPU would take a minute and say nothing more."""
    from harness import budget
    from harness.report.runs import _execution

    modes = []
    monkeypatch.setattr(torch, "compile", lambda model, mode, dynamic: modes.append(mode) or model)
    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n",
                       QUICK_RECIPE)  # fmt: skip
    results = tmp_path / "results"
    fits = iter([True, False])  # one epoch fits the budget, the second does not
    with monkeypatch.context() as m:
        m.setattr(budget.Deadline, "fits", lambda self, estimate: next(fits, False))
        paused = repro(*run_args(study, cifar_root, results, "--compile", "--compile-mode",
                                 "default", "--time-budget", "10m"))  # fmt: skip
    assert "[  paused]" in paused.output, paused.output
    resumed = repro(*run_args(study, cifar_root, results, "--compile", "--compile-mode",
                              "reduce-overhead"))  # fmt: skip
    assert resumed.exit_code == 0 and "REFUSED" not in resumed.output, resumed.output
    done = summary(results, "tiny/a/seed-0")
    assert done["status"] == "complete" and modes == ["default", "reduce-overhead"]
    assert [(s["from_epoch"], s["compile_mode"]) for s in done["sessions"]] == [
        (0, "default"), (1, "reduce-overhead")]  # fmt: skip
    env = json.loads((results / "tiny/a/seed-0" / store.ENVIRONMENT).read_text())
    assert _execution(env, done) == "fp32 compiled (reduce-overhead)"


def test_a_run_is_never_resumed_on_other_data(tmp_path, cifar_root, monkeypatch):
    """A run paused on one copy of the data and asked to go on with another (a store carried
    to a machine with the official release, or another copy) is refused and left as it is:
    its curves would belong to neither data set."""
    from cifar_fixture import write_cifar

    from harness.data import load_cached, locate

    study, results = _paused_after_one_epoch(tmp_path, cifar_root, monkeypatch)
    began = load_cached(locate(cifar_root)).fingerprint
    assert summary(results, "tiny/a/seed-0")["sessions"][0]["dataset_fingerprint"] == began

    other_root = write_cifar(tmp_path / "other", noise=True)
    other = repro(*run_args(study, other_root, results))
    assert other.exit_code == 2, other.output
    assert "[ REFUSED] tiny/a/seed-0" in other.output
    now = load_cached(locate(other_root)).fingerprint
    assert f"trained on data {began[:12]}" in other.output and now[:12] in other.output
    assert "--force" in other.output and "--results" in other.output
    done = _untouched_then_finished(study, cifar_root, results)
    assert {s["dataset_fingerprint"] for s in done["sessions"]} == {began}

    redo = repro(*run_args(study, other_root, results, "--force"))
    assert redo.exit_code == 0, redo.output
    assert summary(results, "tiny/a/seed-0")["data"]["dataset_fingerprint"] == now


def test_status_says_what_data_a_paused_run_began_on_and_whether_run_would_refuse_it(
    tmp_path, cifar_root, monkeypatch
):
    """`repro status` showed a paused run as "paused 1/3" and nothing more: that `repro run`
    would refuse it on this machine's data came as a surprise at the next run."""
    from cifar_fixture import write_cifar

    from harness.data import load_cached, locate

    study, results = _paused_after_one_epoch(tmp_path, cifar_root, monkeypatch)
    began = load_cached(locate(cifar_root)).fingerprint[:12]

    def status(*extra: str) -> str:
        out = repro("status", str(study), "--results", str(results), *extra)
        assert out.exit_code == 0 and "a/seed-0  paused" in out.output, out.output
        return out.output

    # No data on this machine (the tests' cache is empty): which data it began on, quietly.
    plain = status()
    assert (
        f"a/seed-0  paused            1/3  began on data {began} (not the official release); "
        "ran in fp32, fast pipeline\n" in plain
    )
    assert "note:" not in plain.split("evidence queue")[0]
    # The data `repro run` would use found here ($REPRO_DATA_DIR): it resumes on it.
    monkeypatch.setenv("REPRO_DATA_DIR", str(cifar_root))
    assert f"; resumes on the data here ({began}, not official)" in status()
    assert "resumes on" not in status("--no-check-data")
    # Another copy: refused, as `repro run` then does.
    other_root = write_cifar(tmp_path / "other", noise=True)
    now = load_cached(locate(other_root)).fingerprint[:12]
    refusal = status("--data-dir", str(other_root))
    assert (f"began on data {began} (not the official release); `repro run` would REFUSE to "
            f"resume it on the data here ({now}, not official)") in refusal  # fmt: skip
    refused = repro(*run_args(study, other_root, results))
    assert "[ REFUSED] tiny/a/seed-0" in refused.output, refused.output
    # Asked for, with no data where it was said to be: a note, the table still shown.
    nowhere = status("--check-data", "--data-dir", str(tmp_path / "nowhere"))
    assert "note: no data set to check the runs to resume against" in nowhere
    assert str(tmp_path / "nowhere") in nowhere and "REFUSE" not in nowhere


@pytest.mark.parametrize("case", ["no summary, marked failed", "damaged summary, marked failed",
                                  "no summary, not marked"])  # fmt: skip
def test_a_run_that_died_in_a_session_keeps_the_data_it_began_on(
    tmp_path, cifar_root, monkeypatch, case
):
    """A session removes the run's summary when it begins (it writes its own), so a worker
    killed in it left none, and mark_failed wrote one of status and error only: `repro
    status` no longer said what data the run began on, the report's run table had no data
    for it, and `repro run` on other data resumed it, mixing two data sets in one run. A
    summary damaged when the run failed lost the same. The checkpoint still holds its sessions.
    """
    from cifar_fixture import write_cifar

    from harness.data import load_cached, locate
    from harness.report import build
    from harness.results import scan

    study, results = _paused_after_one_epoch(tmp_path, cifar_root, monkeypatch)
    run_dir = results / "tiny/a/seed-0"
    began = load_cached(locate(cifar_root)).fingerprint
    if case.startswith("damaged"):
        (run_dir / store.SUMMARY).write_text('{"status": "pau')
    else:
        (run_dir / store.SUMMARY).unlink()  # as the killed session's start left it
    if case.endswith("marked failed"):
        store.mark_failed(run_dir, "worker exited with code -9; log: worker.log")
        kept = summary(results, "tiny/a/seed-0")
        assert kept["status"] == "failed" and kept["epochs_done"] == 1
        assert [s["dataset_fingerprint"] for s in kept["sessions"]] == [began]
        assert kept["data"] == {"official": False, "dataset_fingerprint": began}
        (run,) = (
            build([(load_study(study), str(study))], scan(results), str(results)).studies[0].runs
        )
        assert (run.status, run.official_data, run.device) == ("failed", False, kept[
            "sessions"][0]["device_name"])  # fmt: skip
    other_root = write_cifar(tmp_path / "other", noise=True)
    now = load_cached(locate(other_root)).fingerprint
    out = repro("status", str(study), "--results", str(results), "--data-dir", str(other_root))
    assert (f"began on data {began[:12]} (not the official release); `repro run` would "
            f"REFUSE to resume it on the data here ({now[:12]}, not official)") in out.output, \
        out.output  # fmt: skip
    refused = repro(*run_args(study, other_root, results))
    assert refused.exit_code == 2 and "[ REFUSED] tiny/a/seed-0" in refused.output, refused.output
    assert f"trained on data {began[:12]}" in refused.output
    done = _untouched_then_finished_from(study, cifar_root, results)
    assert {s["dataset_fingerprint"] for s in done["sessions"]} == {began}


def _untouched_then_finished_from(study: Path, cifar_root: Path, results: Path) -> dict:
    """After a refused resume, the command the run began with finishes it: its summary."""
    same = repro(*run_args(study, cifar_root, results))
    assert same.exit_code == 0, same.output
    done = summary(results, "tiny/a/seed-0")
    assert (done["status"], done["epochs_done"]) == ("complete", 3), done
    return done


def _data_of(fingerprint: str, official: bool = False):
    """A data set known only by its fingerprint: all that the resume check reads of it."""
    import numpy as np

    from harness.data import Cifar10

    empty = np.zeros((0, 3, 32, 32), np.uint8), np.zeros(0, np.int64)
    return Cifar10(*empty, *empty, Path("/data"), official, fingerprint)


def test_two_data_sets_that_share_twelve_characters_are_shown_apart(tmp_path):
    """The refusal to resume a run on other data, and `repro status`'s "began on data ...",
    showed 12 characters of each fingerprint: two data sets that share them printed as one,
    and the user could not see why the run was refused."""
    from fake_runs import fake_run

    from harness.runner import data_conflict
    from harness.status import DataCheck, row_for

    study = load_study(tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet20, "
                                  "recipe: base}\n"))  # fmt: skip
    began, here = "0123456789ab" + "c" * 52, "0123456789ab" + "d" * 52
    run_dir = fake_run(tmp_path / "results", study, "a", status="paused", official=False,
                       fingerprint=began)  # fmt: skip
    (run_dir / store.CHECKPOINT).write_bytes(b"a checkpoint")
    refusal = data_conflict(run_dir, _data_of(here))
    assert refusal is not None
    assert "trained on data 0123456789abc; this command's data is 0123456789abd (" in refusal
    check = DataCheck(_data=_data_of(here), _tried=True)
    row = row_for("a/seed-0", run_dir, check=check)
    assert (
        "began on data 0123456789abc (not the official release); `repro run` would REFUSE to "
        "resume it on the data here (0123456789abd, not official)"
    ) in row.detail, row.detail
    # Data sets that differ within 12 characters keep the short form; the same data too.
    assert "trained on data 0123456789ab;" in data_conflict(run_dir, _data_of("f" * 64))
    assert data_conflict(run_dir, _data_of(began)) is None
    same = row_for("a/seed-0", run_dir, check=DataCheck(_data=_data_of(began), _tried=True))
    assert "began on data 0123456789ab (not the official release); resumes on the data here " \
        "(0123456789ab, not official)" in same.detail, same.detail  # fmt: skip


def test_status_predicts_no_refusal_for_a_paused_run_whose_study_entry_changed(tmp_path):
    """`repro run` moves a run made with another config to .superseded/ and trains it again,
    on whatever data is here; `repro status` said it "would REFUSE to resume it on the data
    here", sending the user off to find the data it began on for nothing."""
    from fake_runs import fake_run

    from harness.plan import plan
    from harness.runner import _decide, data_conflict
    from harness.status import DataCheck, study_status

    study = load_study(tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet20, "
                                  "recipe: base}\n"))  # fmt: skip
    results = tmp_path / "results"
    run_dir = fake_run(results, study, "a", status="paused", official=False,
                       fingerprint="c" * 64, stale=True)  # fmt: skip
    (run_dir / store.CHECKPOINT).write_bytes(b"a checkpoint")
    here = _data_of("d" * 64)
    (row,) = study_status(study, results, DataCheck(_data=here, _tried=True))
    assert row.state == "paused" and "REFUSE" not in row.detail, row.detail
    assert "made with another config: `repro run` moves it to .superseded/ and trains it " \
        "again" in row.detail, row.detail  # fmt: skip
    # What `repro run` does: it makes way for the run, which then has nothing to refuse.
    (p,) = plan(study)
    assert _decide(p, results, force=False, echo=lambda _: None) is None
    assert data_conflict(run_dir, here) is None
    assert list((run_dir.parent / ".superseded").iterdir())


@pytest.mark.parametrize("status", ["complete", "diverged"])
def test_status_says_an_ended_run_whose_study_entry_changed_is_trained_again(tmp_path, status):
    """A complete (or diverged) run made with another config than the study plans now read
    as done in `repro status`, while `repro run` moves it to .superseded/ and trains it
    again: GPU hours nobody saw coming."""
    from fake_runs import fake_run

    from harness.plan import plan
    from harness.runner import _decide
    from harness.status import study_status

    study = load_study(tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet20, "
                                  "recipe: base}\n"))  # fmt: skip
    results = tmp_path / "results"
    run_dir = fake_run(results, study, "a", status=status, stale=True)
    (row,) = study_status(study, results)
    assert row.state == status, row
    assert "made with another config: `repro run` moves it to .superseded/ and trains it " \
        "again" in row.detail, row.detail  # fmt: skip
    # The same run with the study's config is left alone, and says nothing of the kind.
    fresh = fake_run(tmp_path / "fresh", study, "a", status=status)
    (kept,) = study_status(study, tmp_path / "fresh")
    assert "another config" not in kept.detail and fresh.is_dir()
    # What `repro run` does: it makes way for the run, which it then trains.
    (p,) = plan(study)
    assert _decide(p, results, force=False, echo=lambda _: None) is None
    assert not run_dir.exists() and list((run_dir.parent / ".superseded").iterdir())


@pytest.mark.parametrize(("began", "gpu", "said"), [
    ("fp32", False, "ran in fp32, fast pipeline"),
    ("bf16", False, "ran in bf16, fast pipeline, not `repro run`'s default here (fp32, fast "
                    "pipeline): resume it with --precision bf16"),
    ("fp32", True, "ran in fp32, fast pipeline, not `repro run`'s default here (bf16, fast "
                   "pipeline): resume it with --precision fp32"),
])  # fmt: skip
def test_status_says_what_execution_a_run_to_resume_began_in(tmp_path, monkeypatch, began, gpu,
                                                              said):  # fmt: skip
    """`repro run` refuses to resume a run in another precision or pipeline than it began in
    (runner.execution_conflict), which depends on the coming command's flags: status said
    nothing of it. It says what the run ran in and, where `repro run`'s defaults on this
    machine would be refused, which flag to give."""
    import torch
    from fake_runs import fake_run

    from harness.runner import execution_conflict
    from harness.status import default_execution, row_for

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    study = load_study(tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet20, "
                                  "recipe: base}\n"))  # fmt: skip
    run_dir = fake_run(tmp_path / "results", study, "a", status="paused", precision=began)
    (run_dir / store.CHECKPOINT).write_bytes(b"a checkpoint")
    row = row_for("a/seed-0", run_dir)
    assert row.detail.endswith(said), row.detail
    # The runner's own check agrees: refused under the defaults exactly where status says so.
    refused = execution_conflict(run_dir, default_execution())
    assert (refused is not None) == ("resume it with" in said), refused
    # With nothing to resume, the run starts over in whatever it is given: nothing to say.
    (run_dir / store.CHECKPOINT).unlink()
    assert "ran in" not in row_for("a/seed-0", run_dir).detail


def test_status_says_a_run_with_no_epoch_to_resume_starts_over_on_the_data_here(tmp_path):
    """A run that failed in its first epoch records the data that session began on, but has
    no checkpoint: `repro run` starts it over on the data here (data_conflict has nothing to
    mix), while `repro status` said "began on data c...; resumes on the data here (d...)"."""
    from fake_runs import fake_run

    from harness.runner import data_conflict
    from harness.status import DataCheck, row_for

    study = load_study(tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet20, "
                                  "recipe: base}\n"))  # fmt: skip
    run_dir = fake_run(tmp_path / "results", study, "a", status="failed", official=False,
                       fingerprint="c" * 64)  # fmt: skip
    here = _data_of("d" * 64)
    assert data_conflict(run_dir, here) is None  # what `repro run` decides
    row = row_for("a/seed-0", run_dir, check=DataCheck(_data=here, _tried=True))
    assert "resumes" not in row.detail, row.detail
    assert "began on data cccccccccccc (not the official release); no epoch to resume: " \
        "`repro run` starts it over on the data here (dddddddddddd, not official)" \
        in row.detail, row.detail  # fmt: skip


@pytest.mark.parametrize("ending", ["error", "stop"])
def test_a_fused_member_that_diverged_before_its_group_ended_is_said_to_have_diverged(
    tmp_path, cifar_root, monkeypatch, ending
):
    """The outcome lines of a fused group that failed or was stopped come from the store for
    a member that had already diverged, not from how the group ended."""
    import harness.fused_train as fused_train
    from harness.train import RunFailed

    def train_group(members, data, dirs, ex, progress, deadline):
        dirs[1].mkdir(parents=True, exist_ok=True)
        store.write_json(dirs[1] / store.SUMMARY,
                         {"status": store.DIVERGED, "diverged_at": {"epoch": 1}})  # fmt: skip
        if ending == "stop":
            raise KeyboardInterrupt
        raise RunFailed("RuntimeError: boom")

    monkeypatch.setattr(fused_train, "train_group", train_group)
    # QUICK_RECIPE: after an error the partner trains on alone, which no data set size sharpens
    study = load_study(tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, "
                                  "recipe: base}\n", QUICK_RECIPE, seeds=2))  # fmt: skip
    options = RunOptions(results=tmp_path / "results", data_dir=cifar_root, device="cpu",
                         quiet=True, fuse=2)  # fmt: skip
    outcomes = {o.plan.seed: o for o in run_study(study, options, lambda _: None)}
    # After an error the partner goes on alone (see the next test); a stop stops it.
    first = store.COMPLETE if ending == "error" else store.INTERRUPTED
    assert (outcomes[0].status, outcomes[1].status) == (first, store.DIVERGED)
    assert "loss became NaN/inf at epoch 1" in outcomes[1].message


def test_one_members_failure_never_holds_back_its_partners(tmp_path, cifar_root, monkeypatch):
    """A member that cannot go on (its checkpoint does not fit the model) failed its whole
    fused group, and again at every later attempt, as the same group formed again: its
    partner never finished. The group's runs go on apart: the partner completes, the broken
    run fails alone, naming its file, and keeps failing alone."""
    import torch

    from harness import budget

    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n",
                       QUICK_RECIPE, seeds=2)  # fmt: skip
    results = tmp_path / "results"
    fits = iter([True, False])  # the group trains one epoch, then pauses
    monkeypatch.setattr(budget.Deadline, "fits", lambda self, estimate: next(fits, False))
    paused = repro(*run_args(study, cifar_root, results, "--fuse", "2", "--time-budget", "10m"))
    assert "fused: 2 runs as one network" in paused.output, paused.output
    assert paused.output.count("[  paused]") == 2, paused.output
    monkeypatch.undo()
    broken = results / "tiny/a/seed-1" / store.CHECKPOINT
    checkpoint = torch.load(broken, weights_only=True)
    checkpoint["model"].popitem()
    torch.save(checkpoint, broken)

    out = repro(*run_args(study, cifar_root, results, "--fuse", "2"))
    assert out.exit_code == 1, out.output
    assert "note: the fused group failed" in out.output
    assert summary(results, "tiny/a/seed-0")["status"] == "complete"
    assert summary(results, "tiny/a/seed-1")["status"] == "failed"
    assert f"{broken} does not fit" in out.output
    again = repro(*run_args(study, cifar_root, results, "--fuse", "2"))
    assert "[    skip] tiny/a/seed-0" in again.output and "fused:" not in again.output
    assert summary(results, "tiny/a/seed-1")["status"] == "failed"


def _made_by(run_dir: Path, study_file: Path | str) -> None:
    """Record in a hand-made run's summary the study file that made it, as training does."""
    record = json.loads((run_dir / store.SUMMARY).read_text())
    store.write_json(run_dir / store.SUMMARY, {**record, "study_file": str(study_file)})


TWO_RUNS = (
    "  - {name: a, model: resnet20, recipe: base}\n  - {name: b, model: resnet20, recipe: base}\n"
)


def test_a_copy_that_keeps_the_study_name_is_refused_before_anything_trains(tmp_path):
    """A copy of a study that kept the original's `name:` and changed its schedule found the
    original's runs (complete, or paused after hours of GPU) made "with another config",
    moved them to .superseded/ and trained them again under the copy: the original's results
    left its report, unasked. `repro run` refuses, naming both files and the ways out; `repro
    status` says so; --supersede replaces them on purpose."""
    from fake_runs import fake_run

    from harness.runner import pending_runs

    (tmp_path / "studies").mkdir()
    original = tiny_study(tmp_path / "studies" / "s.yaml", TWO_RUNS)
    results = tmp_path / "results"
    done = fake_run(results, load_study(original), "a", status="complete", epochs=4)
    paused = fake_run(results, load_study(original), "b", status="paused", epochs=6)
    for run_dir in (done, paused):
        _made_by(run_dir, original.resolve())
    copy = tiny_study(tmp_path / "mine.yaml", TWO_RUNS,
                      TINY_RECIPE.replace("kind: multistep, milestones: [2], gamma: 0.1",
                                          "kind: cosine"))  # fmt: skip

    refused = repro("run", str(copy), "--results", str(results), "--device", "cpu")
    assert refused.exit_code == 2, refused.output
    said = " ".join(refused.output.split())
    assert str(copy) in said and str(original.resolve()) in said, said
    assert "a/seed-0 (complete, 4 epochs), b/seed-0 (paused, 3 epochs)" in said, said
    assert "name of its own" in said and "--supersede" in said and "nothing was trained" in said
    assert (done / store.SUMMARY).exists() and (paused / store.SUMMARY).exists()
    assert not (done.parent / ".superseded").exists()

    status = repro("status", str(copy), "--results", str(results), "--no-check-data")
    shown = " ".join(status.output.split())
    assert f"made by {original.resolve()}, which still plans it" in shown, shown
    assert "refuses to train over it" in shown and "trains it again" not in shown, shown
    # The original itself reads its own runs as ever.
    own = repro("status", str(original), "--results", str(results), "--no-check-data")
    assert "made by" not in own.output and "another config" not in own.output, own.output

    # On purpose: the runs are moved aside (kept) and trained under the copy.
    options = RunOptions(results=results, device="cpu", supersede=True)
    outcomes, todo = pending_runs(load_study(copy), options, lambda _: None, str(copy))
    assert [p.name for p in todo] == ["a/seed-0", "b/seed-0"] and not outcomes
    assert len(list((done.parent / ".superseded").iterdir())) == 1


@pytest.mark.parametrize("how", ["edited", "other directory", "moved", "other checkout",
                                 "renamed", "no file recorded"])  # fmt: skip
def test_a_run_no_other_study_file_still_plans_is_superseded_as_before(tmp_path, monkeypatch,
                                                                        how):  # fmt: skip
    """Only a run that another, existing study file of the same name still plans is refused:
    an edited study (the same file, reached by any path), a moved original, the same study in
    another checkout, an original renamed since, or a run that recorded no file is superseded
    and trained again, as ever."""
    from fake_runs import fake_run

    from harness.runner import pending_runs

    checkout = tmp_path / "A"
    (checkout / ".git").mkdir(parents=True)
    (checkout / "studies").mkdir()
    before = tiny_study(checkout / "studies" / "s.yaml", TWO_RUNS)
    results = tmp_path / "results"
    run_dir = fake_run(results, load_study(before), "a", status="complete")
    _made_by(run_dir, before.resolve())
    changed = TINY_RECIPE.replace("lr: 0.05", "lr: 0.02")
    now = before
    if how in ("edited", "other directory"):
        tiny_study(before, TWO_RUNS, changed)
        if how == "other directory":
            monkeypatch.chdir(checkout / "studies")
            now = Path("s.yaml")
    elif how == "moved":
        now = tiny_study(tmp_path / "elsewhere.yaml", TWO_RUNS, changed)
        before.unlink()
    elif how == "other checkout":
        (tmp_path / "B" / ".git").mkdir(parents=True)
        (tmp_path / "B" / "studies").mkdir()
        now = tiny_study(tmp_path / "B" / "studies" / "s.yaml", TWO_RUNS, changed)
    elif how == "renamed":
        tiny_study(before, TWO_RUNS, name="theirs")
        now = tiny_study(tmp_path / "mine.yaml", TWO_RUNS, changed)
    else:
        record = json.loads((run_dir / store.SUMMARY).read_text())
        store.write_json(run_dir / store.SUMMARY, {**record, "study_file": None})
        now = tiny_study(tmp_path / "mine.yaml", TWO_RUNS, changed)
    said = []
    options = RunOptions(results=results, device="cpu")
    _, todo = pending_runs(load_study(now), options, said.append, str(now))
    assert [p.name for p in todo] == ["a/seed-0", "b/seed-0"]
    assert any("made with another config; moved to" in s for s in said), said


# --------------------------------------------------------------------------- reportcounts
# The closing line of `repro run` says what the command did to each run.


def test_the_closing_line_says_an_adopted_run_was_adopted_not_skipped(tmp_path, cifar_root):
    # Study two declares the training study one did: it adopts it. The tally said "1 adopted"
    # and the line under it "0 runs trained, 1 skipped", as if the run were left alone, when
    # the command had just made it complete in study two.
    results = tmp_path / "results"
    run = "  - {name: x, model: resnet8, recipe: base}\n"
    one = tiny_study(tmp_path / "one.yaml", run, QUICK_RECIPE, name="one")
    assert repro(*run_args(one, cifar_root, results)).exit_code == 0
    two = tiny_study(tmp_path / "two.yaml", run.replace("x,", "y,"), QUICK_RECIPE, name="two")
    out = repro(*run_args(two, cifar_root, results))
    assert out.exit_code == 0, out.output
    assert "[  shared] two/y/seed-0: shared with one/x/seed-0" in out.output
    assert "\n1 adopted\n0 runs trained, 1 adopted in " in out.output, out.output
    assert "skipped" not in out.output
    # Run again, it is complete and left alone: skipped.
    again = repro(*run_args(two, cifar_root, results)).output
    assert "\n0 runs trained, 1 skipped in " in again, again


# --- `repro run`'s closing line counts GPU time as each run's share (branch gputime) ---


def test_run_summary_counts_gpu_time_as_each_runs_share_of_its_gpu(tmp_path):
    """Six runs that shared one GPU for 720 s each read as 12 minutes of GPU time, the
    report's figure, not 1h12m (each run's own clock added up, as the line did)."""
    from types import SimpleNamespace

    from fake_runs import fake_run

    from harness.describe import run_summary

    path = tiny_study(
        tmp_path / "s.yaml", "  - {name: a, model: resnet20, recipe: base, seeds: 6}\n"
    )
    study = load_study(path)
    results = tmp_path / "results"
    outcomes = []
    for p in plan(study):
        run = fake_run(results, study, p.experiment.name, p.seed, epochs=4,
                       telemetry={"seconds": 180.0, "gpu_processes_mean": 6.0})  # fmt: skip
        env = json.loads((run / "environment.json").read_text())
        (run / "environment.json").write_text(json.dumps({**env, "device_shared_by": 6}))
        summary = json.loads((run / "summary.json").read_text())  # totals as the run writes them
        summary["telemetry"] = {"gpu_seconds": 720.0, "gpu_processes_max": 6}
        (run / "summary.json").write_text(json.dumps(summary))
        outcomes.append(SimpleNamespace(plan=p, status="complete"))
    assert len(outcomes) == 6
    line = run_summary(outcomes, results, [str(path)], 800.0).splitlines()[0]
    assert ", 12m00s of GPU time in these runs (NVML, each run's share of its GPU);" in line


@pytest.mark.parametrize("extra", [[], ["--runs-per-gpu", "2"]], ids=["one-process", "workers"])
def test_training_on_the_cpu_for_want_of_a_gpu_is_said_once_it_starts(
    tmp_path, cifar_root, monkeypatch, extra
):
    """With --device auto and no GPU (a CPU-only torch, a broken driver), nothing said the
    study trained on the CPU until its progress bars crawled; --device cpu asked for it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n",
                       QUICK_RECIPE)  # fmt: skip
    # run_args without its --device cpu
    args = ["run", str(study), "--data-dir", str(cifar_root), "--results", str(tmp_path / "auto"),
            "--quiet"]  # fmt: skip
    out = repro(*args, *extra)
    assert out.exit_code == 0, out.output
    assert out.output.count("note: torch sees no GPU (torch ") == 1, out.output
    assert "so the runs train on the CPU" in out.output
    assert "--device cpu says so and drops this note" in out.output
    asked = repro(*run_args(study, cifar_root, tmp_path / "asked"), *extra)
    assert asked.exit_code == 0 and "torch sees no GPU" not in asked.output, asked.output
    again = repro(*args, *extra)  # nothing left to train: nothing to say
    assert again.exit_code == 0 and "torch sees no GPU" not in again.output, again.output


def test_training_on_a_gpu_says_on_which_and_how(monkeypatch):
    """Each run records its device and execution, but nothing printed them: a study that
    trained on the wrong GPU, or in a compile mode not meant, showed it only afterwards.
    (The device is faked: CI has no GPU; tests/test_gpu.py sees the line on a real one.)"""
    from harness import runner
    from harness.execution import Execution

    monkeypatch.setattr(runner, "device_name", lambda device: "NVIDIA H100 80GB HBM3")
    ex = Execution(torch.device("cuda"), precision="bf16", compile=True,
                   compile_mode="reduce-overhead", fused_compile_mode="default",
                   channels_last=True)  # fmt: skip
    said = runner.gpu_note(runner.RunOptions(), ex)
    assert said == ("training on NVIDIA H100 80GB HBM3: bf16, fast pipeline, compiled "
                    "(reduce-overhead) = CUDA graphs, channels_last")  # fmt: skip
    fused = runner.gpu_note(runner.RunOptions(fuse="auto"), ex)
    assert "CUDA graphs (a fused group: compiled), channels_last" in fused
    assert runner.gpu_note(runner.RunOptions(), Execution(torch.device("cpu"))) is None


def test_the_store_is_read_without_pandas(monkeypatch):
    """`repro run` and each worker it starts read the store through harness.results (runner ->
    tidy), and never draw a curve: importing pandas with it cost each process 0.3 s."""
    import importlib.util

    import harness.results

    monkeypatch.setitem(sys.modules, "pandas", None)  # any `import pandas` now raises
    spec = importlib.util.spec_from_file_location("results_without_pandas",
                                                  harness.results.__file__)  # fmt: skip
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look it up there
    spec.loader.exec_module(module)  # raised ImportError while results imported pandas
    assert module.run_directories
    monkeypatch.delitem(sys.modules, "pandas")
    assert list(harness.results.curves_frame([]).columns)[:2] == ["study", "experiment"]

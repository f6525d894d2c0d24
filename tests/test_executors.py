"""Scaling out: parallel local workers, submitit jobs (local and Slurm), requeue, status."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import QUICK_RECIPE, TINY_RECIPE, tiny_study

from harness import data as cifar
from harness import store
from harness.cli import main
from harness.executors import RunJob, slurm_parameters, submit
from harness.plan import Overrides, plan
from harness.runner import RunOptions
from harness.schema import SlurmSettings
from harness.studyfile import load_study

submitit = pytest.importorskip("submitit", reason="the slurm extra (pip install -e '.[slurm]')")


def options(results: Path, cifar_root: Path, **kw) -> RunOptions:
    return RunOptions(results=results, data_dir=cifar_root, device="cpu", quiet=True, **kw)


def metrics_epochs(run_dir: Path) -> list[int]:
    return [r["epoch"] for r in store.read_jsonl(run_dir / "metrics.jsonl")]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    """Child processes of ``pid`` (Linux /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def test_options_survive_the_trip_to_a_job(tmp_path):
    o = RunOptions(results=tmp_path, device="cpu", overrides=Overrides(only=("a",), epochs=2),
                   precision="fp32", workers=0)  # fmt: skip
    assert RunOptions.from_dict(json.loads(json.dumps(o.to_dict()))) == o


def test_submitit_local_jobs_in_parallel_one_preempted_and_requeued(
    tmp_path, cifar_root, monkeypatch
):
    # Both jobs train at once on this machine and share its cores, as local workers do: the
    # executor gives each its share of threads (see the last assertion).
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    recipe = TINY_RECIPE.replace("epochs: 3", "epochs: 6").replace("[2]", "[4]")
    study_file = tiny_study(tmp_path / "s.yaml",
                            "  - {name: long, model: resnet8, recipe: base}\n"
                            "  - {name: short, model: plain8, recipe: {extends: base, epochs: 3,\n"
                            "       schedule: {kind: multistep, milestones: [2]},\n"
                            # the partner only needs to train beside long, not on 600 images
                            "       train_images: 100, test_images: 50}}\n",
                            recipe)  # fmt: skip
    study = load_study(study_file)
    results = tmp_path / "results"
    lines: list[str] = []
    submission = submit(study, str(study_file), options(results, cifar_root, workers=0),
                        SlurmSettings(time_min=30), lines.append, cluster="local")  # fmt: skip
    assert [o.status for o in submission.outcomes] == ["submitted", "submitted"]
    long_job = submission.jobs[0]
    long_dir = results / "tiny" / "long" / "seed-0"
    assert store.read_json(long_dir / "job.json")["job_id"] == long_job.job_id
    # Preempt the long run once it has finished an epoch, as Slurm does: USR2 to the task.
    # submitit's handler calls RunJob.checkpoint, the task exits to be requeued, submitit's
    # local controller starts it again, and the run resumes from its last epoch.
    wait_for(lambda: len(metrics_epochs(long_dir)) >= 1, 240, "the first epoch")
    (task,) = _children(long_job._process.pid)
    os.kill(task, signal.SIGUSR2)
    for job in submission.jobs:
        job.result()  # waits; raises if the job failed
    for name, epochs in (("long", 6), ("short", 3)):
        run_dir = results / "tiny" / name / "seed-0"
        s = store.read_json(run_dir / "summary.json")
        assert s["status"] == "complete", s
        assert metrics_epochs(run_dir) == list(range(1, epochs + 1))  # none lost or repeated
    sessions = store.read_json(long_dir / "summary.json")["sessions"]
    assert len(sessions) == 2 and sessions[1]["from_epoch"] >= 1  # resumed, not restarted
    share = max(1, (os.cpu_count() or 1) // 2)
    for name in ("long", "short"):
        device = store.read_json(results / "tiny" / name / "seed-0" / "environment.json")
        assert f"cores, {share} threads)" in device["device_name"], device["device_name"]
    info = store.read_json(long_dir / "job.json")
    assert "this job is preempted" in Path(info["stderr"]).read_text()
    assert "Requeued job" in Path(info["stdout"]).read_text()
    # A second submission finds nothing to do.
    again = submit(study, str(study_file), options(results, cifar_root), SlurmSettings(),
                   lines.append, cluster="local")  # fmt: skip
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"] and not again.jobs


FAKE_SLURM = {
    "srun": "#!/bin/sh\nexit 0\n",
    "sbatch": (
        "#!/bin/sh\n"
        'echo "$@" >> "$FAKE_SLURM_LOG/sbatch.args"\n'
        'cp "$1" "$FAKE_SLURM_LOG/job.sbatch"\n'
        'echo "Submitted batch job 4242"\n'
    ),
    "sacct": (
        '#!/bin/sh\necho "JobID|State|NodeList"\ncat "$FAKE_SLURM_LOG/sacct.lines" 2>/dev/null\n'
    ),
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """srun, sbatch and sacct stand-ins on PATH: record what would be submitted."""
    bin_dir, log = tmp_path / "bin", tmp_path / "slurm-log"
    bin_dir.mkdir()
    log.mkdir()
    for name, text in FAKE_SLURM.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_LOG", str(log))
    submitit.SlurmJob.watcher.clear()
    return log


def test_slurm_submission_builds_one_requeueable_array(tmp_path, cifar_root, fake_slurm):
    study_file = tiny_study(
        tmp_path / "s.yaml",
        "  - {name: a, model: resnet8, recipe: base}\n  - {name: b, model: plain8, recipe: base}\n",
        seeds=2,
    )
    text = study_file.read_text() + (
        "executor:\n  slurm: {partition: gpu, time_min: 90, constraint: h100, cpus_per_task: 6,"
        " array_parallelism: 3, account: lab}\n"
    )
    study_file.write_text(text)
    results = tmp_path / "results"
    result = CliRunner().invoke(main, [
        "run", str(study_file), "--results", str(results), "--data-dir", str(cifar_root),
        "--executor", "slurm", "--mem-gb", "24", "--qos", "high",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "submitted 4 runs as job array 4242" in result.output
    # What to type next names this store, not the default one.
    assert f"follow with `repro status {study_file} --results {results}`" in result.output
    sbatch = (fake_slurm / "job.sbatch").read_text()
    for line in ("--array=0-3%3", "--partition=gpu", "--time=90", "--constraint=h100",
                 "--cpus-per-task=6", "--gpus-per-node=1", "--mem=24GB", "--qos=high",
                 "--account=lab", "--signal=USR2@90", "--requeue", "--open-mode=append",
                 "--job-name=repro-tiny"):  # fmt: skip
        assert f"#SBATCH {line}" in sbatch, line
    assert "submitit.core._submit" in sbatch
    # Each array task is one run, and knows how to requeue itself.
    folder = results / ".submitit" / "tiny"
    jobs = []
    for pkl in sorted(folder.glob("4242_*_submitted.pkl")):
        delayed = pickle.loads(pkl.read_bytes())
        assert isinstance(delayed.function, RunJob)
        jobs.append((delayed.function.experiment, delayed.function.seed))
        requeued = delayed.function.checkpoint()
        assert requeued.function == delayed.function
        assert delayed._timeout_countdown >= 1  # requeues allowed after a time-out
    assert sorted(jobs) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    info = store.read_json(results / "tiny" / "a" / "seed-1" / "job.json")
    assert info["executor"] == "slurm" and info["job_id"].startswith("4242_")

    # Submitting again while the jobs are queued adds nothing to the queue.
    (fake_slurm / "sacct.lines").write_text("4242_0|PENDING|\n4242_1|RUNNING|n1\n"
                                            "4242_2|PENDING|\n4242_3|PENDING|\n")  # fmt: skip
    submitit.SlurmJob.watcher.clear()
    (fake_slurm / "sbatch.args").unlink()
    again = CliRunner().invoke(main, ["run", str(study_file), "--results", str(results),
                                      "--executor", "slurm"])  # fmt: skip
    assert again.exit_code == 0 and again.output.count("already queued") == 4
    assert not (fake_slurm / "sbatch.args").exists()


def test_status_marks_a_dead_job_failed_with_its_log(tmp_path, cifar_root, fake_slurm):
    study_file = tiny_study(
        tmp_path / "s.yaml",
        "  - {name: a, model: resnet8, recipe: base}\n  - {name: b, model: plain8, recipe: base}\n",
    )
    results = tmp_path / "results"
    CliRunner().invoke(main, ["run", str(study_file), "--results", str(results),
                              "--executor", "slurm"])  # fmt: skip
    log = Path(store.read_json(results / "tiny/a/seed-0/job.json")["stderr"])
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("loading data\nslurmstepd: error: Detected 1 oom_kill event\n")
    (fake_slurm / "sacct.lines").write_text("4242_0|OUT_OF_MEMORY|n1\n4242_1|PENDING|\n")
    submitit.SlurmJob.watcher.clear()
    result = CliRunner().invoke(main, ["status", str(study_file), "--results", str(results)])
    assert result.exit_code == 0, result.output
    assert "tiny: 2 runs: 1 failed, 1 queued" in result.output
    assert "job ended OUT_OF_MEMORY" in result.output and str(log) in result.output
    assert "oom_kill" in result.output  # the log's tail
    assert "scheduler: PENDING" in result.output
    s = store.read_json(results / "tiny/a/seed-0/summary.json")
    assert s["status"] == "failed"
    # The failed run is submitted again; the queued one is not.
    submitit.SlurmJob.watcher.clear()
    again = CliRunner().invoke(main, ["run", str(study_file), "--results", str(results),
                                      "--executor", "slurm"])  # fmt: skip
    assert "[  queued] tiny/a/seed-0" in again.output and "already queued" in again.output


def test_parallel_local_workers_share_the_store(tmp_path, cifar_root):
    study_file = tiny_study(
        tmp_path / "s.yaml",
        "".join(f"  - {{name: r{i}, model: resnet8, recipe: base}}\n" for i in range(3))
        + "  - name: broken\n    model: resnet8\n    recipe: {extends: base, batch_size: 5000,"
        " last_batch: drop}\n",
        recipe=QUICK_RECIPE,
    )
    results = tmp_path / "results"
    result = CliRunner().invoke(main, [
        "run", str(study_file), "--results", str(results), "--data-dir", str(cifar_root),
        "--device", "cpu", "--runs-per-gpu", "2",
    ])  # fmt: skip
    assert result.exit_code == 1, result.output  # one run failed, the others did not
    assert result.output.count("[    done]") == 3
    assert "FAILED" in result.output and "fewer training images" in result.output
    for i in range(3):
        s = store.read_json(results / f"tiny/r{i}/seed-0/summary.json")
        assert s["status"] == "complete" and len(s["sessions"]) == 1
        assert metrics_epochs(results / f"tiny/r{i}/seed-0") == [1, 2, 3]
    broken = store.read_json(results / "tiny/broken/seed-0/summary.json")
    assert broken["status"] == "failed" and "fewer training images" in broken["error"]


def _refused_before_any_worker(tmp_path, expected: str, *data_flags: str) -> None:
    """Two runs with two workers: the command stops with ``expected`` before any worker
    starts, so no run is marked failed and no worker's exit is reported."""
    study_file = tiny_study(tmp_path / "s.yaml", "".join(
        f"  - {{name: r{i}, model: resnet8, recipe: base}}\n" for i in range(2)))  # fmt: skip
    results = tmp_path / "results"
    result = CliRunner().invoke(main, [
        "run", str(study_file), "--results", str(results), *data_flags,
        "--device", "cpu", "--runs-per-gpu", "2",
    ])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert expected in result.output, result.output
    assert "worker exited" not in result.output and "FAILED" not in result.output
    assert "Traceback" not in result.output
    assert not list(results.rglob("summary.json")), "no run was marked failed"


@pytest.mark.parametrize("copy", ["empty", "partial"])
def test_workers_without_usable_data_are_one_clear_error_before_any_run(tmp_path, cifar_root,
                                                                        copy):  # fmt: skip
    """With --runs-per-gpu (and so in `repro queue`), a missing or partial data copy made
    every worker fail its run as "worker exited with code 1", marked failed in the store,
    where one process stops before its first run with what to do."""
    data = tmp_path / "data"
    if copy == "empty":
        data.mkdir()
        expected = "holds no cifar-10-batches-py/"
    else:
        shutil.copytree(cifar_root, data)
        next(data.rglob("data_batch_2")).unlink()
        expected = "data_batch_2 is missing: the directory holds part of CIFAR-10 only"
    _refused_before_any_worker(tmp_path, expected, "--data-dir", str(data))


def test_workers_refuse_a_subset_larger_than_the_data_before_any_run(tmp_path, cifar_root):
    """One process refuses a --subset larger than the data before its first run; with
    workers, each run failed inside its own worker. The parent now refuses the whole
    command before any worker starts, with the same message."""
    study_file = tiny_study(tmp_path / "s.yaml", "".join(
        f"  - {{name: r{i}, model: resnet8, recipe: base}}\n" for i in range(2)))  # fmt: skip
    said = {}
    for how, flags in (("one process", []), ("workers", ["--runs-per-gpu", "2"])):
        results = tmp_path / how
        result = CliRunner().invoke(main, [
            "run", str(study_file), "--results", str(results), "--data-dir", str(cifar_root),
            "--device", "cpu", "--subset", "5000", *flags,
        ])  # fmt: skip
        assert result.exit_code == 2, result.output
        # (not "worker" alone: the study's path, in a warning, holds the test's name)
        assert "worker exited" not in result.output, result.output
        assert "FAILED" not in result.output, result.output
        assert not list(results.rglob("summary.json")), "no run was marked failed"
        said[how] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert said["workers"] == said["one process"], said
    assert "5000 training images asked for" in said["workers"][0]


@pytest.mark.parametrize("whose", ["data-dir", "cache"])
@pytest.mark.parametrize("cut", ["in-an-argument", "at-an-opcode"])
def test_workers_with_a_truncated_batch_are_one_clear_error_before_any_run(
    tmp_path, monkeypatch, cifar_root, whose, cut
):
    """A batch file that is there but truncated passed the parent's check (only that the
    files exist), and every worker then failed its run with "worker exited with code 1".
    The parent now gives, before any worker starts, the error one process gives (the remedy
    depending on whose copy it is), without loading the data."""
    if whose == "cache":
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        data, given = tmp_path / "cache" / "repro", []
    else:
        data = tmp_path / "data"
        given = ["--data-dir", str(data)]
    shutil.copytree(cifar_root, data)
    batch = data / "cifar-10-batches-py" / "data_batch_2"
    content = batch.read_bytes()
    # Cut inside the pixels' bytes, or just before the final STOP (between two opcodes):
    # the unpickler says "pickle data was truncated" for one and "Ran out of input" for the
    # other, and the parent says the same.
    batch.write_bytes(content[: len(content) // 2] if cut == "in-an-argument" else content[:-1])
    with pytest.raises(cifar.DataError) as one_process:
        cifar.load(batch.parent)
    expected = str(one_process.value)
    assert "data_batch_2 is not a readable CIFAR-10 batch" in expected
    _refused_before_any_worker(tmp_path, expected, *given)


# Batches that read to their end but that the loader refuses: each made every worker fail.
WRONG_BATCHES = {
    "rows-short-of-labels": lambda data, labels: ({b"data": data[:-1], b"labels": labels},
                                                  "has data of shape"),
    "label-out-of-range": lambda data, labels: ({b"data": data, b"labels": [*labels[:-1], 10]},
                                                "has labels outside 0..9"),
    "float-pixels": lambda data, labels: ({b"data": data.astype("float64"), b"labels": labels},
                                          "holds pixels of type float64"),
}  # fmt: skip


@pytest.mark.parametrize("wrong", WRONG_BATCHES)
def test_workers_with_a_wrong_batch_are_one_clear_error_before_any_run(tmp_path, cifar_root,
                                                                       wrong):  # fmt: skip
    """A batch file whole to its STOP but with the wrong shape, labels or dtype passed the
    parent's check (which walked the opcodes only), and every worker then failed its run
    with "worker exited with code 1". The parent now refuses it before any worker starts,
    with the error one process gives."""
    data = tmp_path / "data"
    shutil.copytree(cifar_root, data)
    batch = data / "cifar-10-batches-py" / "data_batch_4"
    whole = pickle.loads(batch.read_bytes(), encoding="bytes")
    content, says = WRONG_BATCHES[wrong](whole[b"data"], whole[b"labels"])
    batch.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(cifar.DataError) as one_process:
        cifar.load(batch.parent)
    expected = str(one_process.value)
    assert f"data_batch_4 {says}" in expected
    _refused_before_any_worker(tmp_path, expected, "--data-dir", str(data))


def test_gpus_on_a_machine_without_them_is_a_clear_error(tmp_path, cifar_root):
    study_file = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    result = CliRunner().invoke(main, ["run", str(study_file), "--device", "cpu", "--gpus", "2",
                                       "--results", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 2 and "--gpus 2 needs CUDA" in result.output
    for bad in ("banana", "0", "-1"):
        out = CliRunner().invoke(main, ["run", str(study_file), "--gpus", bad])
        assert out.exit_code == 2 and "invalid literal" not in out.output
        assert f"{bad!r} is not a number of GPUs" in out.output and "or 'all'" in out.output
    out = CliRunner().invoke(main, ["run", str(study_file), "--device", "cpu", "--gpus", "all",
                                    "--results", str(tmp_path / "r")])  # fmt: skip
    assert out.exit_code == 2 and "--gpus all needs CUDA" in out.output, out.output
    assert not (tmp_path / "r").exists()


def test_slurm_parameters_from_settings():
    params = slurm_parameters(SlurmSettings(partition="p", constraint="a100", qos="q"),
                              "deg", "slurm")  # fmt: skip
    assert params["slurm_partition"] == "p" and params["slurm_constraint"] == "a100"
    assert params["slurm_additional_parameters"] == {"requeue": True}
    assert params["timeout_min"] == 24 * 60 and params["name"] == "repro-deg"


def test_a_job_is_one_run_of_the_study(tmp_path):
    study_file = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n",
                            seeds=3)  # fmt: skip
    job = RunJob(str(study_file), "a", 2, RunOptions(results=tmp_path).to_dict())
    assert RunJob.from_json(job.to_json()) == job
    p = job.plan()
    assert (p.experiment.name, p.seed) == ("a", 2)
    assert p.hash == plan(load_study(study_file))[2].hash


def test_a_worker_that_refused_to_resume_leaves_its_run_as_it_was(tmp_path):
    from harness.executors import REFUSED_EXIT, _worker_outcome

    study_file = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    (p,) = plan(load_study(study_file))
    run_dir = p.directory(tmp_path / "results")
    store.write_json(run_dir / store.SUMMARY, {"status": "paused", "epochs_done": 1})
    outcome = _worker_outcome(p, RunOptions(results=tmp_path / "results"), REFUSED_EXIT)
    assert outcome.status == "refused" and "worker.log" in outcome.message
    assert store.read_json(run_dir / store.SUMMARY)["status"] == "paused"  # not marked failed


def test_a_worker_that_died_names_its_log_once(tmp_path):
    """A worker that exits 1 without recording its run (killed, out of memory) read "worker
    exited with code 1; log: L (log: L)"."""
    from harness.executors import _worker_outcome

    study_file = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    (p,) = plan(load_study(study_file))
    log = p.directory(tmp_path / "results") / store.WORKER_LOG
    outcome = _worker_outcome(p, RunOptions(results=tmp_path / "results"), 1)
    assert outcome.status == "failed"
    assert outcome.message == f"worker exited with code 1; log: {log}"


def test_a_worker_that_finds_its_run_busy_never_marks_it_failed(tmp_path, cifar_root):
    """Another process holds the run: the worker says busy, and the store keeps no false
    'failed' under the process that is training it."""
    study_file = tiny_study(tmp_path / "s.yaml",
                            "  - {name: a, model: resnet8, recipe: base}\n"
                            "  - {name: b, model: resnet8, recipe: base}\n",
                            recipe=QUICK_RECIPE)  # fmt: skip
    results = tmp_path / "results"
    held = results / "tiny" / "a" / "seed-0"
    with store.run_lock(held):
        out = CliRunner().invoke(main, ["run", str(study_file), "--data-dir", str(cifar_root),
                                        "--results", str(results), "--device", "cpu", "--quiet",
                                        "--runs-per-gpu", "2"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "[    busy] tiny/a/seed-0" in out.output and "FAILED" not in out.output
    assert not (held / "summary.json").exists()
    assert store.read_json(results / "tiny" / "b" / "seed-0" / "summary.json")["status"] == (
        "complete")  # fmt: skip


def test_a_run_that_ended_before_training_starts_again_without_a_false_config_note(
    tmp_path, cifar_root
):
    study_file = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n",
                            recipe=QUICK_RECIPE)  # fmt: skip
    results = tmp_path / "results"
    run = results / "tiny" / "a" / "seed-0"
    run.mkdir(parents=True)
    store.mark_failed(run, "worker exited with code -9 (killed while loading the data)")
    out = CliRunner().invoke(main, ["run", str(study_file), "--data-dir", str(cifar_root),
                                    "--results", str(results), "--device", "cpu", "--quiet"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "another config" not in out.output and "ended failed before training" in out.output
    assert not (run.parent / ".superseded").exists()
    assert list(run.glob("summary.json.before-training-*"))
    assert store.read_json(run / "summary.json")["status"] == "complete"


# --------------------------------------------------------------------------- fused groups


def test_local_workers_train_fused_groups_one_per_worker(tmp_path, cifar_root):
    study_file = tiny_study(
        tmp_path / "s.yaml",
        "  - {name: a, model: resnet8, recipe: base}\n  - {name: b, model: plain8, recipe: base}\n",
        recipe=QUICK_RECIPE,
        seeds=2,
    )
    results = tmp_path / "results"
    result = CliRunner().invoke(main, [
        "run", str(study_file), "--results", str(results), "--data-dir", str(cifar_root),
        "--device", "cpu", "--runs-per-gpu", "2", "--fuse", "2",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("[    done]") == 4
    for exp in ("a", "b"):
        group = [f"tiny/{exp}/seed-{s}" for s in (0, 1)]
        for name in group:
            s = store.read_summary(results / name)
            assert s["status"] == "complete" and s["execution"]["fused_group"] == group
            assert metrics_epochs(results / name) == [1, 2, 3]
        # the partner's log says where the group's training was logged
        assert "trained fused with a/seed-0" in (results / "tiny/a/seed-1/worker.log").read_text() \
            if exp == "a" else True  # fmt: skip
    # on the CPU, a worker's log says so and with how many threads (it said "on GPU -")
    from harness.execution import cores_each
    from harness.plural import plural

    threads = plural(cores_each(2), "thread")
    assert f"worker for a/seed-0, a/seed-1 on the CPU ({threads})\n" in (
        results / "tiny/a/seed-0/worker.log").read_text()  # fmt: skip
    assert not list((results / ".workers").glob("*.json"))  # the reports were read and removed


def test_reports_left_by_a_gone_parent_are_swept_never_a_live_ones(tmp_path):
    """A group's worker reports to its parent in results/.workers/, which the parent reads
    and removes; a parent abandoned (a third Ctrl-C just after a worker reported) or killed
    left the file for good. The next group's start removes those of this host whose parent
    is gone; another host's, and a live parent's, stay."""
    import socket
    import subprocess

    from harness.executors import _report_file

    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    folder = tmp_path / ".workers"
    folder.mkdir()
    names = {
        "abandoned": f"tiny-a-0-{host}-{gone.pid}.json",
        "live": f"tiny-b-0-{host}-{os.getppid()}.json",
        "another host": f"tiny-c-0-elsewhere-{gone.pid}.json",
        "no host (older)": f"tiny-d-0-{gone.pid}.json",
    }
    for name in names.values():
        (folder / name).write_text("[]")
    study_file = tiny_study(tmp_path / "s.yaml", "  - {name: e, model: resnet8, recipe: base}\n",
                            seeds=2)  # fmt: skip
    group = plan(load_study(study_file))
    path = _report_file(group, RunOptions(results=tmp_path))
    left = {p.name for p in folder.iterdir()}
    assert left == {n for what, n in names.items() if what != "abandoned"}
    assert path.parent == folder and path.name.endswith(f"-{host}-{os.getpid()}.json")


def test_a_fused_job_runs_its_whole_group(tmp_path, cifar_root):
    """What a Slurm array task executes: the group, trained as one network, each run's
    outcome returned."""
    study_file = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n",
                            recipe=QUICK_RECIPE, seeds=2)  # fmt: skip
    opts = options(tmp_path / "results", cifar_root, fuse=2)
    job = RunJob(str(study_file), "a", 0, opts.to_dict(), partners=(("a", 1),))
    assert RunJob.from_json(job.to_json()) == job
    assert [p.name for p in job.plans()] == ["a/seed-0", "a/seed-1"]
    done = job()
    assert [r["status"] for r in done["runs"]] == ["complete", "complete"]
    s = store.read_summary(tmp_path / "results/tiny/a/seed-1")
    assert s["execution"]["fused"] == 2
    assert [r["status"] for r in job()["runs"]] == ["skipped", "skipped"]


def test_slurm_submits_a_fused_group_as_one_task(tmp_path, cifar_root, fake_slurm):
    study_file = tiny_study(
        tmp_path / "s.yaml",
        "  - {name: a, model: resnet8, recipe: base}\n  - {name: b, model: plain8, recipe: base}\n",
        seeds=2,
    )
    results = tmp_path / "results"
    result = CliRunner().invoke(main, [
        "run", str(study_file), "--results", str(results), "--data-dir", str(cifar_root),
        "--executor", "slurm", "--fuse", "2",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "submitted 4 runs in 2 jobs as job array 4242" in result.output
    assert "--array=0-1" in (fake_slurm / "job.sbatch").read_text()
    tasks = []
    for pkl in sorted((results / ".submitit" / "tiny").glob("4242_*_submitted.pkl")):
        job = pickle.loads(pkl.read_bytes()).function
        tasks.append([(job.experiment, job.seed), *job.partners])
    assert sorted(tasks) == [[("a", 0), ("a", 1)], [("b", 0), ("b", 1)]]
    ids = {store.read_json(results / f"tiny/{e}/seed-{s}/job.json")["job_id"]
           for e in "ab" for s in (0, 1)}  # fmt: skip
    assert len(ids) == 2


def test_slurm_without_slurm_here_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun on it
    study_file = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    out = CliRunner().invoke(main, ["run", str(study_file), "--executor", "slurm",
                                    "--results", str(tmp_path / "r")])  # fmt: skip
    assert out.exit_code == 2 and isinstance(out.exception, SystemExit)
    assert "no Slurm on this machine (srun not found)" in out.output
    assert "use --executor local, or submitit-local" in out.output

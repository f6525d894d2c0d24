"""Hand-made run directories in the store's format, for verdict cases real runs can't cover."""

from __future__ import annotations

import math
from pathlib import Path

from conftest import tiny_study

from harness import store
from harness.plan import config_hash, nominal_batches_per_epoch, resolved_config
from harness.schedule import Length
from harness.schema import Study
from harness.studyfile import load_study


def fake_run(
    results: Path,
    study: Study,
    experiment: str,
    seed: int = 0,
    *,
    status: str = "complete",
    test_error: float | None = 10.0,
    train_loss: float = 0.5,
    train_error: float = 5.0,
    label: str = "",
    stale: bool = False,
    epochs: int | None = None,
    sec_per_epoch: float = 2.0,
    device: str = "CPU (test)",
    official: bool = True,
    fingerprint: str = "f" * 64,
    precision: str = "fp32",
    pipeline: str = "fast",
    telemetry: dict | None = None,
    compile_fallback: str | None = None,
    iterations_per_epoch: int = 10,
) -> Path:
    """A run directory of ``epochs`` epochs (half of them unless complete, its summary's
    figures then the curve's so far, as training writes them); the curve's
    iterations step by ``iterations_per_epoch`` (391 is a full CIFAR-10 epoch at batch 128,
    for a store the size of a real one: benchmarks/big_store.py). ``epochs`` is by default the
    length of the experiment's recipe for a complete run, as training records it (a complete
    run of another length never counts), and 4 for any other."""
    exp = study.experiment(experiment)
    if epochs is None:
        recipe = exp.recipe
        complete = Length.of(recipe, nominal_batches_per_epoch(recipe)).epochs
        epochs = complete if status == "complete" else 4
    config = resolved_config(exp, exp.recipe, seed, label)
    digest = "0" * 16 if stale else config_hash(config)
    name = f"seed-{seed}" + (f"~{label}" if label else "")
    run_dir = results / study.name / experiment / name
    store.write_json(run_dir / store.CONFIG, {"hash": digest, **config})
    history = []
    done = epochs if status == "complete" else max(1, epochs // 2)
    for e in range(1, done + 1):
        frac = e / epochs
        diverged_now = status == "diverged" and e == done
        history.append({
            "epoch": e, "iteration": e * iterations_per_epoch, "lr": 0.1 if e < epochs else 0.01,
            "train_loss": None if diverged_now else train_loss * (2 - frac),
            "train_error": math.nan if diverged_now else train_error * (2 - frac),
            "test_error": None if diverged_now else (test_error or 50) * (1.5 - frac / 2),
            "test_loss": None, "val_loss": None, "val_error": None,
            "train_seconds": sec_per_epoch, "eval_seconds": 0.1, "images": 500,
            "images_per_second": 500 / sec_per_epoch, "full_epoch": True,
            "first_of_session": e == 1, "warmup": False, "telemetry": telemetry,
        })  # fmt: skip
    store.write_jsonl(run_dir / store.METRICS, history)
    env = {
        "time": "2026-11-23T10:00:00+00:00", "hostname": "test", "command": "repro run",
        "torch": "2.14.1", "torchvision": "0.29.1", "cuda": "13.0", "cudnn": 91000,
        "python": "3.11.7", "device": "cpu", "device_name": device, "driver": None,
        "precision": precision, "compile": compile_fallback is not None, "pipeline": pipeline,
        "harness": {"commit": "abc123", "dirty": False},
    }  # fmt: skip
    store.write_json(run_dir / store.ENVIRONMENT, env)
    if status in ("running", "interrupted"):
        return run_dir  # no summary yet
    final = None if status == "diverged" else test_error
    loss, error = (None, None) if status == "diverged" else (train_loss, train_error)
    if status not in ("complete", "diverged"):  # its figures so far, as training derives them
        final, loss, error = (history[-1][k] for k in ("test_error", "train_loss", "train_error"))
    store.write_json(run_dir / store.SUMMARY, {
        "study": study.name, "experiment": experiment, "seed": seed, "label": label,
        "counts_as_reproduction": not label, "config_hash": digest, "status": status,
        "params": None, "epochs_done": done, "epochs_total": epochs,
        "test_error": final, "best_test_error": final,
        "final_train_loss": loss, "final_train_error": error,
        "sec_per_epoch": sec_per_epoch,
        "diverged_at": {"epoch": done, "iteration": done * iterations_per_epoch} if status == "diverged" else None,
        "data": {"official": official, "dataset_fingerprint": fingerprint, "path": "/data"},
        "execution": {"precision": precision, "pipeline": pipeline},
        "telemetry": {"gpu_seconds": 100.0, "energy_j": 36000.0} if telemetry else
                     {"available": False, "reason": "test"},
        "sessions": [{"time": env["time"], "hostname": "test", "device_name": device,
                      "command": "repro run", "from_epoch": 0, "precision": precision,
                      "pipeline": pipeline}],
        "compile_fallback": compile_fallback,
        "finished": "2026-11-23T11:00:00+00:00", "error": None,
    })  # fmt: skip
    return run_dir


def fake_evaluation(
    results: Path,
    study: Study,
    checkpoint: str,
    *,
    test_error: float = 8.27,
    official: bool = True,
    fingerprint: str | None = None,
    stale: bool = False,
    finished: str = "2026-11-26T08:00:00+00:00",
) -> Path:
    """A hand-made `repro evaluate` record of a released checkpoint on one copy of the data."""
    from harness.evaluate import declaration, declaration_hash, evaluation_dir

    spec = study.checkpoint(checkpoint)
    sha = spec.sha256 or "a" * 64
    fingerprint = fingerprint or ("0" if official else "c") * 64
    digest = "0" * 16 if stale else declaration_hash(declaration(study, spec, sha))
    run_dir = evaluation_dir(results, study.name, checkpoint, fingerprint)
    store.write_json(run_dir / store.EVALUATION, {
        "kind": "checkpoint evaluation", "study": study.name, "checkpoint": checkpoint,
        "config_hash": digest, "status": "complete", "params": None,
        "file": {"sha256": sha, "origin": "cache", "metadata": {"best_prec1": 91.78}},
        "data": {"official": official, "dataset_fingerprint": fingerprint, "path": "/data",
                 "test_images": 10000},
        "test_error": test_error, "images": 10000, "seconds": 12.5,
        "environment": {"device_name": "CPU (test)", "command": "repro evaluate s.yaml",
                        "torch": "2.14.1", "python": "3.11.7",
                        "harness": {"commit": "abc123", "dirty": False}},
        "finished": finished,
    })  # fmt: skip
    return run_dir


def kept_apart_store(
    tmp_path: Path, *, extra_claims: str = "", b_model: str = "resnet20", paused_bf16: bool = False
) -> tuple[Study, Path, Path]:
    """A study whose verdict on ``a`` stands on two fp32 runs and keeps three apart (two bf16,
    one on a copy of the data), with ``b`` a run only a parameter count is claimed of: the
    store every "what counts" test of the glance, study line, run table and curves shares.
    ``paused_bf16`` leaves the second bf16 run paused (past epoch 2) instead of complete."""
    experiments = (f"  - {{name: a, model: resnet20, recipe: base, seeds: 5}}\n"
                   f"  - {{name: b, model: {b_model}, recipe: base}}\n"
                   "claims:\n"
                   "  - {source: test, where: T1, experiment: a, metric: test_error, value: 8.75}\n"
                   + extra_claims +
                   "  - {source: test, where: T2, experiment: b, metric: params, value: 269722}\n")  # fmt: skip
    path = tiny_study(tmp_path / "apart.yaml", experiments, name="apart")
    study = load_study(path)
    results = tmp_path / "results"
    fake_run(results, study, "a", 0, test_error=8.6)
    fake_run(results, study, "a", 1, test_error=8.7)
    fake_run(results, study, "a", 2, test_error=12.0, precision="bf16")
    if paused_bf16:
        fake_run(results, study, "a", 3, status="paused", precision="bf16")
    else:
        fake_run(results, study, "a", 3, test_error=12.1, precision="bf16")
    fake_run(results, study, "a", 4, test_error=19.0, official=False, fingerprint="c" * 64)
    fake_run(results, study, "b", 0)  # counts, but a parameter count reads no run
    return study, path, results

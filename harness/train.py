"""Training one run: data -> model -> recipe -> epochs, with a checkpoint after every epoch.

The loop is deliberately plain (torchvision's reference trainer is the model): set the
learning rate, forward, loss, backward, step. Metrics are accumulated on the device and read
once per epoch, so the step never waits for the host. Everything an epoch needs is either
in the checkpoint (weights, optimizer, warm-up state, history) or derived from (seed, epoch)
(data order, augmentation, dropout), so a run resumed after SIGKILL ends with exactly the
metrics of an uninterrupted one.
"""

from __future__ import annotations

import itertools
import statistics
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from harness import store
from harness.data import Cifar10, fingerprint
from harness.environment import environment, now_utc
from harness.loader import (
    DeviceLoader,
    Normalizer,
    derive_seed,
    eval_batches,
    split_indices,
)
from harness.plan import RunPlan
from harness.schedule import LearningRate, Length, WarmupState
from harness.telemetry import Telemetry, run_totals
from harness.zoo import build_model, count_parameters

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class Execution:
    """How a run executes, as opposed to what it computes (that is the config)."""

    device: torch.device
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    compile: bool = False
    channels_last: bool = False
    deterministic: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "compile": self.compile,
            "channels_last": self.channels_last,
            "deterministic": self.deterministic,
            "pipeline": "device",
        }


class Progress(Protocol):
    """What the trainer tells the outside world (a progress bar, a log, nothing)."""

    def start(self, plan: RunPlan, total_iterations: int, done_iterations: int) -> None: ...
    def advance(self, iterations: int) -> None: ...
    def epoch_done(self, record: dict) -> None: ...
    def close(self) -> None: ...


class SilentProgress:
    def start(self, plan, total_iterations, done_iterations):
        pass

    def advance(self, iterations):
        pass

    def epoch_done(self, record):
        pass

    def close(self):
        pass


class RunFailed(Exception):
    """The run stopped with an error; its directory has the summary and the traceback."""


@dataclass
class _Tensors:
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    data_record: dict


def _prepare_data(plan: RunPlan, data: Cifar10, device: torch.device) -> _Tensors:
    recipe = plan.recipe
    split = split_indices(
        len(data.train_labels), recipe.validation_images, recipe.train_images, plan.seed
    )
    n_test = recipe.test_images or len(data.test_labels)
    arrays = {
        "train_x": data.train_images[split.train],
        "train_y": data.train_labels[split.train],
        "val_x": data.train_images[split.validation],
        "val_y": data.train_labels[split.validation],
        "test_x": data.test_images[:n_test],
        "test_y": data.test_labels[:n_test],
    }
    record = {
        "path": str(data.path),
        "official": data.official,
        "dataset_fingerprint": data.fingerprint,
        "train_fingerprint": fingerprint(arrays["train_x"], arrays["train_y"]),
        "validation_fingerprint": fingerprint(arrays["val_x"], arrays["val_y"]),
        "test_fingerprint": fingerprint(arrays["test_x"], arrays["test_y"]),
        "train_images": len(split.train),
        "validation_images": len(split.validation),
        "test_images": n_test,
    }
    tensors = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
    return _Tensors(**tensors, data_record=record)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _evaluate(model, x, y, normalizer, ex: Execution) -> tuple[float, float]:
    """Mean loss and error (percent) over a whole split; one host sync at the end."""
    if len(y) == 0:
        return float("nan"), float("nan")
    model.eval()
    loss_sum = torch.zeros((), device=ex.device)
    wrong = torch.zeros((), device=ex.device, dtype=torch.long)
    with torch.inference_mode(), _autocast(ex):
        for xb, yb in eval_batches(x, y, normalizer, channels_last=ex.channels_last):
            out = model(xb).float()
            loss_sum += F.cross_entropy(out, yb, reduction="sum")
            wrong += (out.argmax(1) != yb).sum()
    n = len(y)
    return loss_sum.item() / n, 100.0 * wrong.item() / n


def _autocast(ex: Execution):
    return torch.autocast(
        device_type=ex.device.type, dtype=torch.bfloat16, enabled=ex.precision == "bf16"
    )


def train(
    plan: RunPlan,
    data: Cifar10,
    run_dir: Path,
    ex: Execution,
    progress: Progress | None = None,
) -> dict:
    """Train (or resume) one run to its end; return its summary (also in summary.json).

    Raises KeyboardInterrupt after recording the run as interrupted, and RunFailed after
    recording it as failed. A diverging run is not an error: it ends with status "diverged".
    """
    progress = progress or SilentProgress()
    telemetry = Telemetry(ex.device)
    summary_base: dict[str, Any] = {
        "study": plan.study,
        "experiment": plan.experiment.name,
        "seed": plan.seed,
        "label": plan.label,
        "counts_as_reproduction": plan.counts_as_reproduction,
        "config_hash": plan.hash,
        "study_file": str(Path(plan.study_file).resolve()) if plan.study_file else None,
    }
    state = _RunState(session_start=time.perf_counter())
    try:
        (run_dir / store.SUMMARY).unlink(missing_ok=True)
        (run_dir / store.ERROR).unlink(missing_ok=True)
        store.write_json(run_dir / store.CONFIG, {"hash": plan.hash, **plan.config})
        env = environment(ex.device, driver=telemetry.driver_version(), execution=ex.describe())
        store.write_json(run_dir / store.ENVIRONMENT, env)
        _run_epochs(plan, data, run_dir, ex, progress, telemetry, env, state)
        status = store.DIVERGED if state.diverged_at else store.COMPLETE
        return _finish(run_dir, summary_base, state, status, telemetry)
    except KeyboardInterrupt:
        _finish(run_dir, summary_base, state, store.INTERRUPTED, telemetry)
        raise
    except Exception as exc:
        store.write_text(run_dir / store.ERROR, traceback.format_exc())
        message = f"{type(exc).__name__}: {exc}"
        _finish(run_dir, summary_base, state, store.FAILED, telemetry, message)
        raise RunFailed(message) from exc
    finally:
        telemetry.stop()
        progress.close()


@dataclass
class _RunState:
    """What the summary is made from; filled in as training goes."""

    session_start: float
    history: list[dict] | None = None
    params: int | None = None
    data_record: dict | None = None
    normalization: dict | None = None
    warmup_ended_at: int | None = None
    diverged_at: dict | None = None
    wall_before: float = 0.0
    sessions: list[dict] | None = None
    length: Length | None = None


def _run_epochs(plan, data, run_dir, ex, progress, telemetry, env, state: _RunState) -> None:
    recipe = plan.recipe
    if ex.deterministic:
        torch.use_deterministic_algorithms(True)
    tensors = _prepare_data(plan, data, ex.device)
    state.data_record = tensors.data_record
    normalizer = Normalizer(recipe.normalization, tensors.train_x)
    state.normalization = normalizer.describe()
    dtype = torch.bfloat16 if ex.precision == "bf16" else torch.float32
    loader = DeviceLoader(
        tensors.train_x,
        tensors.train_y,
        batch_size=recipe.batch_size,
        augmentation=recipe.augmentation,
        normalizer=normalizer,
        drop_last=recipe.last_batch == "drop",
        seed=plan.seed,
        dtype=dtype,
        channels_last=ex.channels_last,
    )
    length = Length.of(recipe, len(loader))
    state.length = length

    torch.manual_seed(derive_seed(plan.seed, "init"))
    model = build_model(plan.experiment.model).to(ex.device)
    if ex.channels_last:
        model = model.to(memory_format=torch.channels_last)
    state.params = count_parameters(model)
    opt = recipe.optimizer
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=opt.lr,
        momentum=opt.momentum,
        nesterov=opt.nesterov,
        weight_decay=opt.weight_decay,
    )
    step_model = torch.compile(model) if ex.compile else model

    history: list[dict] = []
    warmup_state: WarmupState | None = None
    start_epoch = iteration = 0
    checkpoint = _load_checkpoint(run_dir, plan.hash)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        history = checkpoint["history"]
        start_epoch, iteration = checkpoint["epoch"], checkpoint["iteration"]
        if checkpoint["warmup"] is not None and recipe.warmup is not None:
            warmup_state = WarmupState.from_dict(checkpoint["warmup"], recipe.warmup.window)
        state.wall_before = checkpoint["wall_seconds"]
        state.sessions = checkpoint["sessions"]
    state.history = history
    state.sessions = [*(state.sessions or []), _session(env, start_epoch)]
    lr_at = LearningRate(recipe, length, warmup_state)
    state.warmup_ended_at = lr_at.state.ended_at
    # The history may be a step ahead of metrics.jsonl if a kill came between the two writes.
    store.write_jsonl(run_dir / store.METRICS, history)

    progress.start(plan, length.total_iterations, iteration)
    telemetry.start()
    for epoch in range(start_epoch, length.epochs):
        torch.manual_seed(derive_seed(plan.seed, "dropout", epoch))
        first_of_session = epoch == start_epoch
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=ex.device)
        wrong_sum = torch.zeros((), device=ex.device, dtype=torch.long)
        seen = 0
        pending: list[tuple[torch.Tensor, int]] = []
        lr = lr_at(iteration)
        batches = min(len(loader), length.total_iterations - iteration)
        for x, y in itertools.islice(loader.epoch(epoch), batches):
            lr = lr_at(iteration)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with _autocast(ex):
                out = step_model(x)
                loss = F.cross_entropy(out.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            wrong = (out.argmax(1) != y).sum()
            loss_sum += loss.detach() * len(y)
            wrong_sum += wrong
            seen += len(y)
            iteration += 1
            if lr_at.needs_errors:
                pending.append((wrong, len(y)))
                if len(pending) >= LearningRate.CHECK_EVERY:
                    _feed_warmup(lr_at, iteration, pending)
            progress.advance(1)
        if pending:
            _feed_warmup(lr_at, iteration, pending)
        _sync(ex.device)
        train_seconds = time.perf_counter() - t0
        train_loss = loss_sum.item() / max(seen, 1)
        train_error = 100.0 * wrong_sum.item() / max(seen, 1)

        t1 = time.perf_counter()
        finite = bool(torch.isfinite(loss_sum))
        if finite:
            test_loss, test_error = _evaluate(model, tensors.test_x, tensors.test_y, normalizer, ex)
            val_loss, val_error = _evaluate(model, tensors.val_x, tensors.val_y, normalizer, ex)
        else:
            test_loss = test_error = val_loss = val_error = None
        eval_seconds = time.perf_counter() - t1
        record = {
            "epoch": epoch + 1,
            "iteration": iteration,
            "lr": lr,
            "train_loss": train_loss if finite else None,
            "train_error": train_error,
            "test_loss": test_loss,
            "test_error": test_error,
            "val_loss": val_loss if len(tensors.val_y) else None,
            "val_error": val_error if len(tensors.val_y) else None,
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            "images": seen,
            "images_per_second": seen / train_seconds if train_seconds > 0 else None,
            "full_epoch": batches == len(loader),
            "first_of_session": first_of_session,
            "warmup": lr_at.state.active,
            "telemetry": telemetry.take_epoch(),
        }
        history.append(record)
        state.warmup_ended_at = lr_at.state.ended_at
        progress.epoch_done(record)
        if not finite:
            state.diverged_at = {"epoch": epoch + 1, "iteration": iteration}
            store.write_jsonl(run_dir / store.METRICS, history)
            return
        wall = state.wall_before + (time.perf_counter() - state.session_start)
        _save_checkpoint(
            run_dir, plan, model, optimizer, history, epoch + 1, iteration, lr_at, state, wall
        )
        store.write_jsonl(run_dir / store.METRICS, history)
        store.write_json(
            run_dir / store.PROGRESS,
            {
                "status": "running",
                "epoch": epoch + 1,
                "epochs": length.epochs,
                "iteration": iteration,
                "host": env["hostname"],
                "updated": now_utc(),
            },
        )


def _feed_warmup(lr_at: LearningRate, iteration: int, pending: list) -> None:
    errors = [
        100.0 * w / n
        for w, n in zip(
            torch.stack([w for w, _ in pending]).tolist(), [n for _, n in pending], strict=True
        )
    ]
    lr_at.observe_errors(iteration - 1, errors)
    pending.clear()


def _session(env: dict, start_epoch: int) -> dict:
    return {
        "time": env["time"],
        "hostname": env["hostname"],
        "device_name": env["device_name"],
        "command": env["command"],
        "from_epoch": start_epoch,
    }


def _save_checkpoint(
    run_dir, plan, model, optimizer, history, epoch, iteration, lr_at, state: _RunState, wall: float
) -> None:
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    store.save_torch(
        run_dir / store.CHECKPOINT,
        {
            "format": CHECKPOINT_FORMAT,
            "config_hash": plan.hash,
            "epoch": epoch,
            "iteration": iteration,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "warmup": lr_at.state.to_dict() if lr_at.warmup else None,
            "history": history,
            "rng": rng,
            "wall_seconds": wall,
            "sessions": state.sessions,
        },
    )


def _load_checkpoint(run_dir: Path, config_hash: str) -> dict | None:
    path = run_dir / store.CHECKPOINT
    if not path.exists():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # Never delete: keep the unreadable file beside the run and start over.
        target = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
        path.rename(target)
        print(f"warning: {path} could not be read ({exc}); kept as {target.name}, starting over")
        return None
    if (
        checkpoint.get("config_hash") != config_hash
        or checkpoint.get("format") != CHECKPOINT_FORMAT
    ):
        return None
    return checkpoint


def _finish(run_dir, base, state: _RunState, status, telemetry, error=None) -> dict:
    history = state.history or []
    done = [h for h in history if h.get("test_error") is not None]
    final = done[-1] if done else None
    best = min(done, key=lambda h: h["test_error"]) if done else None
    timed = [h["train_seconds"] for h in history if h["full_epoch"] and not h["first_of_session"]]
    if not timed:
        timed = [h["train_seconds"] for h in history if h["full_epoch"]]
    length = state.length
    summary = {
        **base,
        "status": status,
        "params": state.params,
        "epochs_done": len(history),
        "epochs_total": length.epochs if length else None,
        "iterations_done": history[-1]["iteration"] if history else 0,
        "iterations_total": length.total_iterations if length else None,
        "test_error": final["test_error"] if final else None,
        "best_test_error": best["test_error"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "final_train_loss": final["train_loss"] if final else None,
        "final_train_error": final["train_error"] if final else None,
        "val_error": final["val_error"] if final else None,
        "sec_per_epoch": statistics.median(timed) if timed else None,
        "train_seconds_total": sum(h["train_seconds"] for h in history),
        "eval_seconds_total": sum(h["eval_seconds"] for h in history),
        "wall_seconds_total": state.wall_before + (time.perf_counter() - state.session_start),
        "warmup_ended_at_iteration": state.warmup_ended_at,
        "diverged_at": state.diverged_at,
        "data": state.data_record,
        "normalization": state.normalization,
        "telemetry": run_totals(history)
        or {"available": False, "reason": telemetry.reason or "no samples"},
        "sessions": state.sessions,
        "finished": now_utc(),
        "error": error,
    }
    store.write_json(run_dir / store.SUMMARY, summary)
    (run_dir / store.PROGRESS).unlink(missing_ok=True)
    return summary

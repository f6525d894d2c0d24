"""Training one run: data -> model -> recipe -> epochs, with a checkpoint after every epoch.

:class:`Trainer` is the training step and evaluation and nothing else (``repro bench`` times
it). :func:`train` adds the bookkeeping of a run: data split, resumption, metrics, checkpoint,
summary. The step is deliberately plain (torchvision's reference trainer is the model): set
the learning rate, forward, loss, backward, step. Metrics are accumulated on the device and
read once per epoch, so the step never waits for the host. Everything an epoch needs is
either in the checkpoint (weights, optimizer, warm-up state, history) or derived from
(seed, epoch) (data order, augmentation, dropout), so a run resumed after SIGKILL ends with
exactly the metrics of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from harness import store
from harness.budget import BudgetReached, Deadline, epoch_estimate
from harness.data import Cifar10, fingerprint
from harness.environment import environment, now_utc
from harness.execution import Execution, configure_backends
from harness.loader import DeviceLoader, Normalizer, derive_seed, eval_batches, split_indices
from harness.plan import RunPlan
from harness.schedule import LearningRate, Length, WarmupState
from harness.schema import Optimizer, Recipe
from harness.stop_signals import stop_requested
from harness.telemetry import Telemetry, run_totals
from harness.timings import reported_speed, seconds_by_device
from harness.zoo import ModelSpec, build_model, count_parameters

CHECKPOINT_FORMAT = 1


class Progress(Protocol):
    """What the trainer tells the outside world (a progress bar, a log, nothing)."""

    def start(self, plan: RunPlan, total_iterations: int, done_iterations: int) -> None: ...
    def note(self, text: str) -> None: ...
    def advance(self, iterations: int) -> None: ...
    def epoch_done(self, record: dict) -> None: ...
    def close(self) -> None: ...


class SilentProgress:
    def start(self, plan, total_iterations, done_iterations):
        pass

    def note(self, text):
        pass

    def advance(self, iterations):
        pass

    def epoch_done(self, record):
        pass

    def close(self):
        pass


class RunFailed(Exception):
    """The run stopped with an error; its directory has the summary and the traceback."""


# --------------------------------------------------------------------------- the step


@dataclass(frozen=True)
class EpochResult:
    train_loss: float  # nan when the loss became NaN/inf
    train_error: float
    images: int
    iteration: int  # after the epoch
    lr: float  # the rate of the epoch's last step
    seconds: float  # the training part alone, device synchronised

    @property
    def finite(self) -> bool:
        return not np.isnan(self.train_loss)


class StepLoop:
    """What a solo trainer and a fused one (``harness.fused_train``) share: compilation on
    the first step with an eager fallback, and the epoch loop, which keeps each member's
    loss and error sums on the device (one member for a solo run) and reads them once.

    A trainer supplies ``_step(x, y)`` (running ``self._forward(batch)``, the compiled or the
    eager model), ``_zero_grad()``, ``_set_lrs(lrs)`` and ``_train_batch(batch)``, which
    returns each member's mean loss and count of errors, both of shape (K,), and the batch
    size.
    """

    ex: Execution
    model: torch.nn.Module

    def _setup_compile(self) -> None:
        self.compile_fallback: str | None = None
        self._compiled = None
        self._compiled_batch: int | None = None  # the first batch's size; None before it
        if self.ex.compile:
            # Dynamo keeps compiled code per Python function, across model instances, and past
            # `recompile_limit` variants it silently runs eagerly. A process that trains several
            # models in turn (a study, a bench) would reach that, so every run starts afresh.
            torch._dynamo.reset()
            self._compiled = torch.compile(self.model, mode=self.ex.compile_mode, dynamic=False)

    def _autocast(self):
        dtype = self.ex.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.ex.device.type, dtype=dtype)

    def _forward(self, batch: int) -> Callable[[torch.Tensor], torch.Tensor]:
        # A batch of another size (the last, partial one of an epoch) runs eagerly: compiling
        # it too would cost a second compilation per run and session (19 s for ResNet-8 on a
        # 2-core CPU) to save milliseconds. (And not `self._compiled or ...`: a compiled
        # module's truth value calls len().)
        compiled = self._compiled is not None and batch == self._compiled_batch
        return self._compiled if compiled else self.model

    def _logits(self, out: torch.Tensor) -> torch.Tensor:
        """The loss is computed in float32 (float64 in an fp64 execution), whatever autocast
        computed the outputs in."""
        return out.to(torch.float64) if self.ex.dtype == torch.float64 else out.float()

    def _step(self, x: torch.Tensor, y: torch.Tensor):
        raise NotImplementedError

    def _zero_grad(self) -> None:
        raise NotImplementedError

    def step(self, x: torch.Tensor, y: torch.Tensor):
        """One training step: the outputs and the (detached) loss."""
        if self._compiled_batch is None:
            return self._first_step(x, y)
        return self._step(x, y)

    def _first_step(self, x: torch.Tensor, y: torch.Tensor):
        """The first step compiles; if compilation fails, fall back to eager and say why."""
        self._compiled_batch = y.shape[-1]
        try:
            return self._step(x, y)
        except Exception as exc:
            if self._compiled is None:
                raise
            self.compile_fallback = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            self._compiled = None
            warnings.warn(
                f"torch.compile failed ({self.compile_fallback}); training goes on eagerly, "
                "which is slower, and the run records why. --no-compile skips compilation.",
                RuntimeWarning,
                stacklevel=2,
            )
            self._zero_grad()
            return self._step(x, y)

    def _epoch(
        self,
        batches: Iterable,
        lr_ats: Sequence[LearningRate],
        iteration: int,
        progress: Progress,
        should_stop: Callable[[], bool] | None,
    ) -> list[EpochResult]:
        """One epoch over ``batches``, member k at the rates of ``lr_ats[k]``; see
        :meth:`Trainer.train_epoch`."""
        self.model.train()
        device, k = self.ex.device, len(lr_ats)
        t0 = time.perf_counter()
        loss_sum = torch.zeros(k, device=device, dtype=self.ex.dtype)
        wrong_sum = torch.zeros(k, device=device, dtype=torch.long)
        seen = 0
        pending: list[list[tuple[torch.Tensor, int]]] = [[] for _ in range(k)]
        lrs = [lr_at(iteration) for lr_at in lr_ats]
        for batch in batches:
            if stop_requested():  # its KeyboardInterrupt may have been swallowed on the way
                raise KeyboardInterrupt("a stop signal arrived")
            if should_stop is not None and should_stop():
                raise BudgetReached("the time budget ran out during an epoch")
            lrs = [lr_at(iteration) for lr_at in lr_ats]
            self._set_lrs(lrs)
            losses, wrong, size = self._train_batch(batch)
            loss_sum += losses * size
            wrong_sum += wrong
            seen += size
            iteration += 1
            for m, lr_at in enumerate(lr_ats):
                if lr_at.needs_errors:
                    # Only while a threshold warm-up waits: read errors every few steps.
                    pending[m].append((wrong[m], size))
                    if len(pending[m]) >= LearningRate.CHECK_EVERY:
                        feed_warmup(lr_at, iteration, pending[m])
            progress.advance(1)
        for lr_at, waiting in zip(lr_ats, pending, strict=True):
            if waiting:
                feed_warmup(lr_at, iteration, waiting)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        totals, wrongs = loss_sum.tolist(), wrong_sum.tolist()  # the epoch's reads of the device
        results = []
        for m in range(k):
            finite = bool(np.isfinite(totals[m]))
            results.append(EpochResult(
                train_loss=totals[m] / max(seen, 1) if finite else float("nan"),
                train_error=100.0 * wrongs[m] / max(seen, 1),
                images=seen, iteration=iteration, lr=lrs[m], seconds=seconds,
            ))  # fmt: skip
        return results


class Trainer(StepLoop):
    """A model, its optimizer and the training step for one execution; no files."""

    def __init__(self, spec: ModelSpec, recipe: Recipe, seed: int, ex: Execution) -> None:
        self.ex = ex
        self.model = initial_model(spec, seed, ex)
        self.params = count_parameters(self.model)
        opt = recipe.optimizer
        self.optimizer = torch.optim.SGD(
            parameter_groups(self.model, opt),
            lr=opt.lr,
            momentum=opt.momentum,
            nesterov=opt.nesterov,
            weight_decay=opt.weight_decay,
        )
        self._setup_compile()

    def _zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        forward = self._forward(len(y))
        with self._autocast():
            out = forward(x.to(self.ex.dtype))
            loss = F.cross_entropy(self._logits(out), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return out, loss.detach()

    def _set_lrs(self, lrs: list[float]) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lrs[0]  # a Python float: no device work, no sync

    def _train_batch(self, batch: tuple[torch.Tensor, torch.Tensor]):
        x, y = batch
        out, loss = self.step(x, y)
        return loss.view(1), (out.argmax(1) != y).sum().view(1), len(y)

    def train_epoch(
        self,
        batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
        lr_at: LearningRate,
        iteration: int,
        progress: Progress,
        should_stop: Callable[[], bool] | None = None,
    ) -> EpochResult:
        """Train over ``batches``; ``should_stop`` (a time budget: a look at the clock, no
        device work) is asked before every step and ends the epoch early, unfinished, by
        raising BudgetReached."""
        return self._epoch(batches, [lr_at], iteration, progress, should_stop)[0]

    def evaluate(
        self, x: torch.Tensor, y: torch.Tensor, normalizer: Normalizer
    ) -> tuple[float | None, float | None]:
        """Mean loss and error (percent) over a split; one host read at the end.

        Uses the eager model: evaluation is outside the timed training part, and a compiled
        model would recompile for eval mode.
        """
        if len(y) == 0:
            return None, None
        self.model.eval()
        loss_sum = torch.zeros((), device=self.ex.device, dtype=self.ex.dtype)
        wrong = torch.zeros((), device=self.ex.device, dtype=torch.long)
        with torch.no_grad(), self._autocast():
            for xb, yb in eval_batches(x, y, normalizer, channels_last=self.ex.channels_last):
                out = self._logits(self.model(xb.to(self.ex.dtype)))
                loss_sum += F.cross_entropy(out, yb, reduction="sum")
                wrong += (out.argmax(1) != yb).sum()
        return loss_sum.item() / len(y), 100.0 * wrong.item() / len(y)


def initial_model(spec: ModelSpec, seed: int, ex: Execution) -> torch.nn.Module:
    """The run's network as its first step finds it: initialised from the run's own seed,
    on the device, in the execution's dtype and memory layout."""
    torch.manual_seed(derive_seed(seed, "init"))
    model = build_model(spec).to(ex.device, ex.dtype)
    if ex.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def parameter_groups(model: torch.nn.Module, opt: Optimizer) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: one, unless some kinds of parameter go without weight
    decay (``opt.no_weight_decay``); then those form a second group with decay 0."""
    exempt: set[int] = set()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            kinds = {"norm_scale": module.weight, "norm_shift": module.bias}
        elif isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
            kinds = {"bias": module.bias}
        else:
            continue
        exempt |= {id(p) for kind, p in kinds.items()
                   if p is not None and kind in opt.no_weight_decay}  # fmt: skip
    params = list(model.parameters())
    decayed = [p for p in params if id(p) not in exempt]
    groups: list[dict[str, Any]] = [{"params": decayed}]
    if exempt:
        groups.append({"params": [p for p in params if id(p) in exempt], "weight_decay": 0.0})
    return groups


def feed_warmup(lr_at: LearningRate, iteration: int, pending: list) -> None:
    counts = [n for _, n in pending]
    wrongs = torch.stack([w for w, _ in pending]).tolist()
    lr_at.observe_errors(
        iteration - 1, [100.0 * w / n for w, n in zip(wrongs, counts, strict=True)]
    )
    pending.clear()


# --------------------------------------------------------------------------- data of a run


@dataclass
class RunData:
    """The arrays a run trains, validates and tests on, and how they are normalised."""

    train_images: np.ndarray  # on the host, for the canonical pipeline's workers
    train_labels: np.ndarray
    train_x: torch.Tensor  # the same images on the device, for the fast path
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    normalizer: Normalizer  # on the device
    record: dict


def prepare_data(recipe: Recipe, seed: int, data: Cifar10, device: torch.device) -> RunData:
    split = split_indices(len(data.train_labels), recipe.validation_images, recipe.train_images,
                          seed)  # fmt: skip
    n_test = recipe.test_images or len(data.test_labels)
    train_x, train_y = data.train_images[split.train], data.train_labels[split.train]
    val_x, val_y = data.train_images[split.validation], data.train_labels[split.validation]
    test_x, test_y = data.test_images[:n_test], data.test_labels[:n_test]
    train_x_device = torch.from_numpy(train_x).to(device)
    normalizer = Normalizer(recipe.normalization, train_x_device)
    record = {
        "path": str(data.path),
        "official": data.official,
        "dataset_fingerprint": data.fingerprint,
        "train_fingerprint": fingerprint(train_x, train_y),
        "validation_fingerprint": fingerprint(val_x, val_y),
        "test_fingerprint": fingerprint(test_x, test_y),
        "train_images": len(split.train),
        "validation_images": len(split.validation),
        "test_images": len(test_y),  # what exists, not what the recipe asked for
    }

    def on_device(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(device)

    return RunData(train_x, train_y, train_x_device, on_device(train_y), on_device(val_x),
                   on_device(val_y), on_device(test_x), on_device(test_y), normalizer,
                   record)  # fmt: skip


class Batches(Protocol):
    """A pipeline's training batches: :class:`DeviceLoader`, or the canonical pipeline's
    ``harness.canonical.CanonicalLoader``."""

    def __len__(self) -> int: ...
    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


def make_loader(recipe: Recipe, seed: int, run_data: RunData, ex: Execution) -> Batches:
    """The training batches of the execution's pipeline (fast or canonical)."""
    common = {
        "batch_size": recipe.batch_size,
        "augmentation": recipe.augmentation,
        "normalizer": run_data.normalizer,
        "drop_last": recipe.last_batch == "drop",
        "seed": seed,
    }
    if ex.pipeline == "canonical":
        # Imported here: torchvision, which only this pipeline uses, added about 0.3 s of
        # CPU to the start of every process that trains (a 3 s `repro run` of one tiny run
        # on the 2-core VM, 2026-11-26).
        from harness.canonical import CanonicalLoader

        return CanonicalLoader(run_data.train_images, run_data.train_labels, device=ex.device,
                               workers=ex.workers, **common)  # fmt: skip
    return DeviceLoader(
        run_data.train_x,
        run_data.train_y,
        channels_last=ex.channels_last,
        **common,
    )


# --------------------------------------------------------------------------- one run


@dataclass
class RunState:
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
    compile_fallback: str | None = None
    paused: dict | None = None  # why and when a time budget stopped the run
    reported_epoch: str = "last"  # the recipe's rule: "last" or "best_validation"
    env: dict | None = None  # this session's environment, once written (begin_session)


def train(
    plan: RunPlan,
    data: Cifar10,
    run_dir: Path,
    ex: Execution,
    progress: Progress | None = None,
    deadline: Deadline | None = None,
) -> dict:
    """Train (or resume) one run to its end; return its summary (also in summary.json).

    Raises KeyboardInterrupt after recording the run as interrupted, and RunFailed after
    recording it as failed. A diverging run is not an error: it ends with status "diverged".
    With a ``deadline``, a run whose next epoch would not fit ends with status "paused" at its
    last finished epoch and resumes from there next time.
    """
    progress = progress or SilentProgress()
    telemetry = Telemetry(ex.device, shared_by=ex.shared_by)
    configure_backends(ex)  # applied before they are recorded: the record says what ran
    summary_base = summary_fields(plan, ex)
    state = RunState(session_start=time.perf_counter(), reported_epoch=plan.recipe.reported_epoch)
    try:
        env = state.env = begin_session(run_dir, plan, ex, telemetry)
        _run_epochs(plan, data, run_dir, ex, progress, telemetry, env, state, deadline)
        status = store.DIVERGED if state.diverged_at else store.COMPLETE
        return finish(run_dir, summary_base, state, status, telemetry)
    except BudgetReached as stop:
        state.paused = paused_by(stop, deadline)
        return finish(run_dir, summary_base, state, store.PAUSED, telemetry)
    except (KeyboardInterrupt, SystemExit):
        # Ctrl-C, SIGTERM, or a scheduler's preemption handler exiting to requeue the job.
        finish(run_dir, summary_base, state, store.INTERRUPTED, telemetry)
        raise
    except Exception as exc:

        def end(status: str, error: str | None) -> None:
            finish(run_dir, summary_base, state, status, telemetry, error)

        end_after_error(exc, end, [run_dir / store.ERROR])
    finally:
        telemetry.stop()
        progress.close()


def paused_by(stop: BudgetReached, deadline: Deadline | None) -> dict:
    """What a run's summary says of the time budget that paused it."""
    return {"reason": "time budget", "detail": str(stop),
            "deadline": deadline.describe() if deadline else None}  # fmt: skip


def end_after_error(exc: Exception, end: Callable[[str, str | None], object],
                    error_files: Iterable[Path]) -> NoReturn:  # fmt: skip
    """How training that raised ``exc`` ends, one run's or a fused group's: called in the
    ``except`` that caught it, with ``end(status, error)``, which records the run (each
    member of the group) as ending so, and ``error_files``, where the traceback goes.

    After a stop signal, the error is what the signal broke on its way (a DataLoader worker
    it ended): the runs are interrupted, as by the signal, and KeyboardInterrupt is raised.
    Otherwise each error file gets the traceback, the runs are failed with the error, and
    RunFailed is raised.
    """
    if stop_requested():
        end(store.INTERRUPTED, None)
        raise KeyboardInterrupt("a stop signal arrived") from exc
    if isinstance(exc, store.CannotWrite):
        # A full disk or a folder that cannot be written: neither the traceback nor a failed
        # summary could be written either. The run stays as its last checkpoint left it
        # (interrupted, to resume), and `repro run` stops saying why.
        raise exc
    text = traceback.format_exc()
    for path in error_files:
        store.write_text(path, text)
    message = f"{type(exc).__name__}: {exc}"
    end(store.FAILED, message)
    raise RunFailed(message) from exc


def summary_fields(plan: RunPlan, ex: Execution) -> dict[str, Any]:
    """What a run's summary says of the run itself, whatever happens to it."""
    return {
        "study": plan.study,
        "experiment": plan.experiment.name,
        "seed": plan.seed,
        "label": plan.label,
        "counts_as_reproduction": plan.counts_as_reproduction,
        "config_hash": plan.hash,
        "study_file": str(Path(plan.study_file).resolve()) if plan.study_file else None,
        "execution": ex.describe(),
    }


def begin_session(run_dir: Path, plan: RunPlan, ex: Execution, telemetry: Telemetry) -> dict:
    """Clear what the last session concluded, write the config and this session's
    environment; return the environment."""
    for path, kept in store.directories_in_the_way(run_dir):
        print(f"warning: {path} is a directory where a file belongs; kept as {kept.name}")
    clear_summary(run_dir)
    keep_the_earlier_failure(run_dir)
    store.write_json(run_dir / store.CONFIG, {"hash": plan.hash, **plan.config})
    keep_a_damaged_environment(run_dir)
    env = environment(ex.device, driver=telemetry.driver_version(), execution=ex.describe())
    store.write_json(run_dir / store.ENVIRONMENT, env)
    return env


EARLIER_FAILURE = "earlier-failure"  # how set_aside names the error.txt of a failure retried


def keep_the_earlier_failure(run_dir: Path) -> None:
    """error.txt is the current failure's traceback (status shows it, and a retry that fails
    writes its own), so a new session takes it away; it is kept beside the run under another
    name, not deleted: a retry that fails otherwise, or succeeds, would lose why it failed."""
    if store.present(run_dir / store.ERROR):
        store.set_aside(run_dir / store.ERROR, EARLIER_FAILURE)


def keep_a_damaged_environment(run_dir: Path) -> None:
    """A session's environment replaces the last one's (the summary's sessions keep their
    story); one that cannot be read is kept aside first, as any damaged file of the store."""
    try:
        store.read_environment(run_dir)
    except store.DamagedFile as damaged:
        kept = store.set_aside(damaged.path)
        print(f"warning: {damaged}; kept as {kept.name}")


def _run_epochs(plan, data, run_dir, ex, progress, telemetry, env, state: RunState,
                deadline: Deadline | None) -> None:  # fmt: skip
    recipe = plan.recipe
    run_data = prepare_data(recipe, plan.seed, data, ex.device)
    state.data_record = run_data.record
    state.normalization = run_data.normalizer.describe()
    loader = make_loader(recipe, plan.seed, run_data, ex)
    length = Length.of(recipe, len(loader))
    state.length = length
    trainer = Trainer(plan.experiment.model, recipe, plan.seed, ex)
    state.params = trainer.params

    start_epoch = iteration = 0
    checkpoint = load_checkpoint(run_dir, plan.hash)
    if checkpoint is not None:
        with restoring(run_dir / store.CHECKPOINT):
            trainer.model.load_state_dict(checkpoint["model"])
            trainer.optimizer.load_state_dict(checkpoint["optimizer"])
        start_epoch, iteration = checkpoint["epoch"], checkpoint["iteration"]
    history, lr_at = take_up(run_dir, recipe, checkpoint, state, env, start_epoch, length)

    progress.start(plan, length.total_iterations, iteration)
    if ex.compile:
        progress.note("compiling the model (torch.compile): the first step takes a while")
    telemetry.start()
    session_epochs: list[float] = []  # wall seconds of each epoch of this session
    should_stop = deadline.passed if deadline is not None else None
    for epoch in range(start_epoch, length.epochs):
        if stop_requested():
            raise KeyboardInterrupt("a stop signal arrived")
        check_the_next_epoch_fits(deadline, session_epochs, history, env["device_name"])
        epoch_start = time.perf_counter()
        torch.manual_seed(derive_seed(plan.seed, "dropout", epoch))
        batches = min(len(loader), length.total_iterations - iteration)
        result = trainer.train_epoch(
            itertools.islice(loader.epoch(epoch), batches), lr_at, iteration, progress,
            should_stop,
        )  # fmt: skip
        iteration = result.iteration
        state.compile_fallback = trainer.compile_fallback
        t1 = time.perf_counter()
        if result.finite:
            test_loss, test_error = trainer.evaluate(run_data.test_x, run_data.test_y,
                                                     run_data.normalizer)  # fmt: skip
            val_loss, val_error = trainer.evaluate(run_data.val_x, run_data.val_y,
                                                   run_data.normalizer)  # fmt: skip
        else:
            test_loss = test_error = val_loss = val_error = None
        record = epoch_record(
            epoch, iteration, result, (test_loss, test_error, val_loss, val_error),
            eval_seconds=time.perf_counter() - t1, full_epoch=batches == len(loader),
            first_of_session=epoch == start_epoch, warmup=lr_at.state.active,
            device=env["device_name"], telemetry=telemetry.take_epoch(),
        )  # fmt: skip
        history.append(record)
        state.warmup_ended_at = lr_at.state.ended_at
        progress.epoch_done(record)
        if not result.finite:
            state.diverged_at = {"epoch": epoch + 1, "iteration": iteration}
            store.write_jsonl(run_dir / store.METRICS, history)
            return
        wall = state.wall_before + (time.perf_counter() - state.session_start)
        save_checkpoint(run_dir, plan, trainer.model.state_dict(),
                        trainer.optimizer.state_dict(), history, epoch + 1, iteration, lr_at,
                        state, wall)  # fmt: skip
        write_epoch_files(run_dir, history, length, env)
        session_epochs.append(time.perf_counter() - epoch_start)


def take_up(run_dir: Path, recipe: Recipe, checkpoint: dict | None, state: RunState, env: dict,
            start_epoch: int, length: Length) -> tuple[list[dict], LearningRate]:  # fmt: skip
    """Take up a run's record where its ``checkpoint`` left it (None: from the start), one
    run's or a fused group member's: its history, wall time and sessions, with this one
    added; its learning rate, with the warm-up's state; metrics.jsonl written again from the
    history. Returns the history and the learning rate."""
    history: list[dict] = []
    warmup_state: WarmupState | None = None
    if checkpoint is not None:
        history = checkpoint["history"]
        if checkpoint["warmup"] is not None and recipe.warmup is not None:
            warmup_state = WarmupState.from_dict(checkpoint["warmup"], recipe.warmup.window)
        state.wall_before = checkpoint["wall_seconds"]
        state.sessions = checkpoint["sessions"]
    state.history = history
    state.sessions = [*(state.sessions or []),
                      session_record(env, start_epoch, state.data_record)]  # fmt: skip
    lr_at = LearningRate(recipe, length, warmup_state)
    state.warmup_ended_at = lr_at.state.ended_at
    # The history may be a step ahead of metrics.jsonl if a kill came between the two writes.
    keep_metrics_the_history_lacks(run_dir, history)
    store.write_jsonl(run_dir / store.METRICS, history)
    return history, lr_at


def check_the_next_epoch_fits(deadline: Deadline | None, session_epochs: list[float],
                              history: list[dict], device: str) -> None:  # fmt: skip
    """Raise BudgetReached where the next epoch, as long as this session's (or the
    history's) say, would not end before the deadline."""
    if deadline is not None and not deadline.fits(epoch_estimate(session_epochs, history, device)):
        raise BudgetReached(f"the next epoch would not fit before {deadline.describe()}")


def epoch_record(epoch: int, iteration: int, result: EpochResult, evals: tuple, *,
                 eval_seconds: float, full_epoch: bool, first_of_session: bool, warmup: bool,
                 device: str, telemetry: dict | None) -> dict:  # fmt: skip
    """One line of metrics.jsonl."""
    test_loss, test_error, val_loss, val_error = evals
    return {
        "epoch": epoch + 1,
        "iteration": iteration,
        "lr": result.lr,
        "train_loss": result.train_loss if result.finite else None,
        "train_error": result.train_error,
        "test_loss": test_loss,
        "test_error": test_error,
        "val_loss": val_loss,
        "val_error": val_error,
        "train_seconds": result.seconds,
        "eval_seconds": eval_seconds,
        "images": result.images,
        "images_per_second": result.images / result.seconds if result.seconds > 0 else None,
        "full_epoch": full_epoch,
        "first_of_session": first_of_session,
        "warmup": warmup,
        "device": device,
        "telemetry": telemetry,
    }


def write_epoch_files(run_dir: Path, history: list[dict], length: Length, env: dict) -> None:
    """After the checkpoint: the curves and what `repro status` shows of a running run."""
    store.write_jsonl(run_dir / store.METRICS, history)
    last = history[-1]
    store.write_json(
        run_dir / store.PROGRESS,
        {"status": "running", "epoch": last["epoch"], "epochs": length.epochs,
         "iteration": last["iteration"], "host": env["hostname"], "updated": now_utc()},
    )  # fmt: skip


def clear_summary(run_dir: Path) -> None:
    """A new session writes its own summary; an unreadable old one is kept aside, not lost."""
    try:
        store.read_summary(run_dir)
    except store.DamagedFile as damaged:
        store.set_aside(damaged.path)
        return
    (run_dir / store.SUMMARY).unlink(missing_ok=True)


def keep_metrics_the_history_lacks(run_dir: Path, history: list[dict]) -> None:
    """metrics.jsonl is rewritten from the checkpoint's history; if the file holds epochs the
    history does not (the checkpoint was unreadable and the run starts over) or cannot be
    read, it is kept aside first."""
    path = run_dir / store.METRICS
    try:
        rows = store.read_jsonl(path)
    except store.DamagedFile:
        store.set_aside(path)
        return
    if len(rows) > len(history):
        kept = store.set_aside(path, "not-in-checkpoint")
        print(f"warning: {path} holds {len(rows)} epochs that the checkpoint lacks; "
              f"kept as {kept.name}")  # fmt: skip


def session_record(env: dict, start_epoch: int, data: dict | None = None) -> dict:
    """One session of a run, for its summary's story. ``data``: the run's data record, of
    which the session keeps what says which data it was (the summary keeps only the latest
    session's, and a run carried between machines may resume on another copy)."""
    data = data or {}
    return {
        "time": env["time"],
        "hostname": env["hostname"],
        "device_name": env["device_name"],
        "command": env["command"],
        "pipeline": env.get("pipeline"),
        "precision": env.get("precision"),
        "compile": env.get("compile"),
        # Not numerics (a run may resume in another mode), but its seconds per epoch differ.
        "compile_mode": env.get("compile_mode"),
        # How the device was shared in this session: a run fused or crowded in one session and
        # alone in the next has seconds per epoch that are no solo run's (harness.timings).
        "fused": env.get("fused"),
        "device_shared_by": env.get("device_shared_by"),
        "from_epoch": start_epoch,
        "official": data.get("official"),
        "dataset_fingerprint": data.get("dataset_fingerprint"),
    }


def save_checkpoint(run_dir, plan, model_state, optimizer_state, history, epoch, iteration,
                    lr_at, state: RunState, wall: float) -> None:  # fmt: skip
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
            "model": model_state,
            "optimizer": optimizer_state,
            "warmup": lr_at.state.to_dict() if lr_at.warmup else None,
            "history": history,
            "rng": rng,
            "wall_seconds": wall,
            "sessions": state.sessions,
        },
    )


# What save_checkpoint writes; resuming reads all of it, so a file of this format that lacks
# one, or holds one of another kind, is as damaged as a torn one. The kinds are those
# save_checkpoint writes and resuming needs, no narrower: a check that refused a good
# checkpoint would cost the run every epoch it holds.
def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_tensors(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in v.items()
    )


def _is_records(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(r, dict) for r in v)


def _is_optimizer_state(v: Any) -> bool:
    return (isinstance(v, dict) and isinstance(v.get("state"), dict)
            and isinstance(v.get("param_groups"), list))  # fmt: skip


def _is_warmup(v: Any) -> bool:
    return v is None or (
        isinstance(v, dict) and {"active", "ended_at", "recent_errors"} <= v.keys()
        and isinstance(v["recent_errors"], list)
    )  # fmt: skip


CHECKPOINT_KINDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "config_hash": ("a string", lambda v: isinstance(v, str)),
    "epoch": ("a whole number of at least 0", _is_count),
    "iteration": ("a whole number of at least 0", _is_count),
    "model": ("a mapping of names to tensors", _is_tensors),
    "optimizer": ("an optimizer's state dict", _is_optimizer_state),
    "warmup": ("none or a warm-up's state", _is_warmup),
    "history": ("a list of epoch records", _is_records),
    "rng": ("a mapping", lambda v: isinstance(v, dict)),
    "wall_seconds": (
        "a number of seconds",
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0,
    ),
    "sessions": ("a list of session records", _is_records),
}
CHECKPOINT_KEYS = ("format", *CHECKPOINT_KINDS)


class UnreadableCheckpoint(Exception):
    """A run's checkpoint that cannot be used at all; the message says why."""


def _kind_of(value: Any) -> str:
    name = type(value).__name__
    return "none" if value is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def read_checkpoint(path: Path) -> dict:
    """The checkpoint at ``path`` as save_checkpoint wrote it (maybe of another config or
    format, which the caller judges); UnreadableCheckpoint for a torn or foreign file, and for
    one that loads but is no run's checkpoint (a list or a tensor saved under its name, a
    mapping without a format and config hash, one of this format that lacks a part or holds
    one of the wrong kind)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not its format
        raise UnreadableCheckpoint(str(exc)) from None
    if not isinstance(checkpoint, dict):
        raise UnreadableCheckpoint(f"it holds a {type(checkpoint).__name__}, not a run's "
                                   "checkpoint")  # fmt: skip
    if "format" not in checkpoint or "config_hash" not in checkpoint:
        raise UnreadableCheckpoint("it has no format and config hash: it is not a run's "
                                   "checkpoint")  # fmt: skip
    if checkpoint["format"] != CHECKPOINT_FORMAT:
        return checkpoint  # another format: _not_resumable says so
    missing = [k for k in CHECKPOINT_KEYS if k not in checkpoint]
    if missing:
        raise UnreadableCheckpoint(f"it lacks {', '.join(missing)}")
    for key, (kind, fits) in CHECKPOINT_KINDS.items():
        if not fits(checkpoint[key]):
            raise UnreadableCheckpoint(f"its {key} is {_kind_of(checkpoint[key])}, not {kind}")
    return checkpoint


def checkpoint_history(run_dir: Path) -> list[dict] | None:
    """The per-epoch records a run's checkpoint holds, or None when it cannot be read."""
    try:
        checkpoint = read_checkpoint(run_dir / store.CHECKPOINT)
    except UnreadableCheckpoint:
        return None
    history = checkpoint.get("history")  # another format may hold none
    return list(history) if _is_records(history) else None


def resume_point(run_dir: Path, config_hash: str) -> tuple[int, int, str | None]:
    """(epoch, iteration) training will continue from, as load_checkpoint will decide, and
    why it starts over when the checkpoint cannot be used (None when it can)."""
    path = run_dir / store.CHECKPOINT
    if not store.present(path):  # a link that leads nowhere is there, and cannot be read
        return 0, 0, "its checkpoint is missing"
    try:
        checkpoint = read_checkpoint(path)
    except UnreadableCheckpoint:
        return 0, 0, "its checkpoint cannot be read"
    if (problem := _not_resumable(checkpoint, config_hash)) is not None:
        return 0, 0, problem
    return checkpoint["epoch"], checkpoint["iteration"], None


def _not_resumable(checkpoint: dict, config_hash: str) -> str | None:
    """Why a readable checkpoint cannot be resumed from, or None when it can."""
    if checkpoint["config_hash"] != config_hash:
        return "its checkpoint was made with another config"
    if checkpoint["format"] != CHECKPOINT_FORMAT:
        return "its checkpoint is of another format"
    return None


def load_checkpoint(run_dir: Path, config_hash: str) -> dict | None:
    """The checkpoint training resumes from, or None when it starts over. A checkpoint it
    cannot use is kept beside the run under another name, never deleted: the first epoch of
    the new start would overwrite it."""
    path = run_dir / store.CHECKPOINT
    if not store.present(path):
        return None
    try:
        checkpoint = read_checkpoint(path)
    except UnreadableCheckpoint as exc:
        target = store.set_aside(path)
        print(f"warning: {path} could not be read ({exc}); kept as {target.name}. The run starts "
              "over from epoch 0; its earlier metrics are kept beside it.")  # fmt: skip
        return None
    if (problem := _not_resumable(checkpoint, config_hash)) is not None:
        target = store.set_aside(path, "not-resumable")
        print(f"warning: {path} {problem.removeprefix('its checkpoint ')}, so it cannot be "
              f"resumed; kept as {target.name}. The run starts over from epoch 0; its earlier "
              "metrics are kept beside it.")  # fmt: skip
        return None
    return checkpoint


class CheckpointMismatch(Exception):
    """A run's checkpoint that reads but whose weights or optimizer state do not fit the
    run's model: other code made it (a model changed under the same config), or it was
    altered. The run fails saying what to do; the file is left as it is, for its epochs may
    be wanted once the code is put right."""


@contextlib.contextmanager
def restoring(source: str | Path) -> Iterator[None]:
    """Around loading a checkpoint's weights and optimizer state: what does not fit them
    raises CheckpointMismatch naming ``source`` and what to do."""
    try:
        yield
    except Exception as exc:  # load_state_dict raises several kinds for a misfit
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise CheckpointMismatch(
            f"{source} does not fit this run's model or optimizer ({reason[:300]}); other code "
            "made it, or it was altered. It is left as it is: to resume, run the code that made "
            "it; to train the run again from epoch 0, move it aside (rename it) and run again"
        ) from exc


def sessions_so_far(run_dir: Path, config_hash: str, state: RunState,
                    from_epoch: int) -> list[dict] | None:  # fmt: skip
    """The sessions a summary lists: those the session took up, or, for a run that stopped
    before it took up its record (building its data or model failed, or its checkpoint does
    not fit), the sessions its checkpoint holds (they return on resume) and this one, from
    ``from_epoch``, once its environment was written. Without them a failed run's summary
    said ``sessions: null``: nothing of the machines and data it ran on."""
    if state.sessions is not None:
        return state.sessions
    earlier = checkpoint_sessions(run_dir, config_hash)
    current = [session_record(state.env, from_epoch, state.data_record)] if state.env else []
    return earlier + current or None


def checkpoint_sessions(run_dir: Path, config_hash: str | None = None) -> list[dict]:
    """The sessions the run's checkpoint holds, where it is one the run resumes from (of
    ``config_hash``, default the run's config.json's, and of this format): [] where there is
    none, or it is unreadable (load_checkpoint says so) or another config's. Where the
    summary lacks them (a session removes it as it begins, so a killed one leaves none),
    they still tell what machines and data the run's epochs so far ran on."""
    if config_hash is None:
        try:
            config_hash = (store.read_config(run_dir) or {}).get("hash")
        except store.DamagedFile:
            return []
    try:
        checkpoint = read_checkpoint(run_dir / store.CHECKPOINT)
    except (OSError, UnreadableCheckpoint):
        return []
    if _not_resumable(checkpoint, config_hash) is not None:  # another config's are not its
        return []
    return list(checkpoint["sessions"] or [])


def reported_record(done: list[dict], rule: str) -> dict | None:
    """The epoch whose test error a run reports: the last one, or (``best_validation``) the
    first epoch with the lowest validation error, as seed 004's code keeps the weights of the
    first epoch that beats every earlier one on its hold-out."""
    if rule == "best_validation":
        validated = [h for h in done if h.get("val_error") is not None]
        return min(validated, key=lambda h: h["val_error"]) if validated else None
    return done[-1] if done else None


def finish(run_dir, base, state: RunState, status, telemetry, error=None) -> dict:
    history = state.history or []
    done = [h for h in history if h.get("test_error") is not None]
    final = done[-1] if done else None
    best = min(done, key=lambda h: h["test_error"]) if done else None
    reported = reported_record(done, state.reported_epoch)
    # The speed a run reports is one device's (timings.reported_speed); each device's is
    # kept beside it.
    per_device = seconds_by_device(history)
    speed = reported_speed(per_device)
    length = state.length
    epochs_done, iterations_done = len(history), history[-1]["iteration"] if history else 0
    if state.history is None:
        # Failed or stopped before the session took up the run's history (a checkpoint that
        # does not fit, the model or data failing to build): the epochs the run holds are
        # still there and resume next time, so the summary says so, as mark_failed's does;
        # 0 would have status, the queue and fusion treat the run as never started.
        epochs_done, iterations_done = store.recorded_progress(run_dir)
    summary = {
        **base,
        "status": status,
        "params": state.params,
        "epochs_done": epochs_done,
        "epochs_total": length.epochs if length else None,
        "iterations_done": iterations_done,
        "iterations_total": length.total_iterations if length else None,
        # The test error the recipe reports: the last epoch's, or the best-validation epoch's.
        "test_error": reported["test_error"] if reported else None,
        "reported_epoch": reported["epoch"] if reported else None,
        "reported_by": state.reported_epoch,
        "reported_val_error": reported["val_error"] if reported else None,
        "final_test_error": final["test_error"] if final else None,
        "best_test_error": best["test_error"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "final_train_loss": final["train_loss"] if final else None,
        "final_train_error": final["train_error"] if final else None,
        "val_error": final["val_error"] if final else None,
        "sec_per_epoch": speed.sec_per_epoch if speed else None,
        "sec_per_epoch_device": speed.device if speed else None,
        "sec_per_epoch_by_device": [asdict(d) for d in per_device],
        "train_seconds_total": sum(h["train_seconds"] for h in history),
        "eval_seconds_total": sum(h["eval_seconds"] for h in history),
        "wall_seconds_total": state.wall_before + (time.perf_counter() - state.session_start),
        "warmup_ended_at_iteration": state.warmup_ended_at,
        "diverged_at": state.diverged_at,
        "paused": state.paused,
        "compile_fallback": state.compile_fallback,
        "data": state.data_record,
        "normalization": state.normalization,
        "telemetry": run_totals(history)
        or {"available": False, "reason": telemetry.reason or "no samples"},
        "sessions": sessions_so_far(run_dir, base["config_hash"], state, epochs_done),
        "finished": now_utc(),
        "error": error,
    }
    store.write_json(run_dir / store.SUMMARY, summary)
    (run_dir / store.PROGRESS).unlink(missing_ok=True)
    return summary

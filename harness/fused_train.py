"""Training a fused group: K runs of one architecture as one network (``harness.fusion``).

Each member is trained exactly as its solo run would be: initialised from its own seed, fed
its own batches, crops and flips (its own loader and seed) normalised its own way, stepped
with its own learning rate, warm-up, momentum and weight decay, and its dropout masks drawn
from its own generator. The loss is the sum of the members' mean losses, so each member's
gradient is its solo gradient. What members must share is what makes one network of them:
the architecture, the batch size and last-batch policy, and the number of steps
(:func:`fusion_key`).

The store does not change: each member writes its own config, environment, metrics,
summary and checkpoint, every epoch, in the ordinary formats (the checkpoint is the solo
run's: its slice of the weights and its ``torch.optim.SGD`` state). So a fused run resumes
fused or solo, and solo runs at the same epoch resume fused. A member whose loss becomes
NaN is recorded as diverged and left out from then on; the others go on. The environment
names the group, and every epoch's seconds are the group's wall time.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import store
from harness.budget import BudgetReached, Deadline
from harness.data import Cifar10
from harness.execution import Execution, configure_backends
from harness.fusion import FusedSGD, FusionError, fuse_models, reseed_dropout
from harness.loader import DeviceLoader, derive_seed, eval_batches
from harness.plan import RunPlan
from harness.schedule import LearningRate, Length
from harness.schema import Recipe
from harness.telemetry import Telemetry
from harness.train import (
    Batches,
    EpochResult,
    Progress,
    RunData,
    RunState,
    SilentProgress,
    StepLoop,
    begin_session,
    check_the_next_epoch_fits,
    end_after_error,
    epoch_record,
    finish,
    initial_model,
    load_checkpoint,
    make_loader,
    paused_by,
    prepare_data,
    restoring,
    save_checkpoint,
    summary_fields,
    take_up,
    write_epoch_files,
)
from harness.zoo import ModelSpec, count_parameters

# Every field of a Recipe is one or the other; tests/test_fusion.py fails when a field is
# added to the schema without being put in one of the two, so that no field is ever read from
# one member for the whole group unseen.
#
# What members must share: these make one network of them, with the same batches per epoch
# (batch size, last-batch policy, the sizes of the training, validation and test splits) and
# the same number of steps (the length).
SHARED_RECIPE_FIELDS = frozenset({"batch_size", "last_batch", "train_images",
                                  "validation_images", "test_images", "epochs",
                                  "iterations"})  # fmt: skip
# What each member has of its own, and where it is honoured: the optimizer by FusedSGD (its
# fields: FusedSGD.HONOURS; whether momentum is on is shared, see fusion_key), the schedule
# and warm-up by each member's LearningRate, normalisation and augmentation by each member's
# own data and loader, the reporting rule by each member's summary. The last four are handed
# whole to the solo run's own code, so a field added inside them is per member by
# construction. The note changes nothing.
PER_MEMBER_RECIPE_FIELDS = frozenset({"optimizer", "schedule", "warmup", "normalization",
                                      "augmentation", "reported_epoch", "note"})  # fmt: skip


def fusion_key(p: RunPlan) -> tuple:
    """Runs with equal keys can be one fused network: same architecture (every field of the
    model spec), the :data:`SHARED_RECIPE_FIELDS`, and momentum on or off (one optimizer
    keeps momentum buffers for all members or for none). Everything else
    (:data:`PER_MEMBER_RECIPE_FIELDS`, the seed) may differ per member."""
    r = p.recipe
    return (
        p.experiment.model.model_dump_json(),
        *(getattr(r, name) for name in sorted(SHARED_RECIPE_FIELDS)),
        r.optimizer.momentum != 0,
    )


class FusedTrainer(StepLoop):
    """K members as one network, with :class:`FusedSGD`; no files.

    ``states[k]``, when given, is member k's checkpoint (model and optimizer) to start from;
    ``sources[k]`` names it where it does not fit (CheckpointMismatch).
    """

    def __init__(self, spec: ModelSpec, recipes: Sequence[Recipe], seeds: Sequence[int],
                 ex: Execution, states: Sequence[dict | None] | None = None,
                 sources: Sequence[str | Path] | None = None) -> None:  # fmt: skip
        self.ex = ex
        self.k = len(seeds)
        sources = sources or [f"member {i}'s checkpoint" for i in range(self.k)]
        models = []
        for i, seed in enumerate(seeds):
            model = initial_model(spec, seed, ex)
            if states and states[i] is not None:
                with restoring(sources[i]):
                    model.load_state_dict(states[i]["model"])
            models.append(model)
        self.params = count_parameters(models[0])
        self.model = fuse_models(models)
        if ex.channels_last:  # before the optimizer takes views of the parameters
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = FusedSGD(self.model, [r.optimizer for r in recipes])
        if states:
            for i, state in enumerate(states):
                if state is not None:
                    with restoring(sources[i]):
                        self.optimizer.load_member_state_dict(i, state["optimizer"])
        self.active = list(range(self.k))
        self._lrs = [r.optimizer.lr for r in recipes]
        self._setup_compile()

    def _zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def reseed_dropout(self, seeds: Sequence[int]) -> None:
        reseed_dropout(self.model, seeds, self.ex.device)

    def drop(self, member: int) -> None:
        """Leave a diverged member out: no more updates, its loss out of the sum."""
        if member in self.active:
            self.active.remove(member)
            self.optimizer.drop(member)
            self._alive = None

    _alive: torch.Tensor | None = None

    def _alive_mask(self) -> torch.Tensor:
        # Made once and again only when a member drops out: a copy to the GPU every step is a
        # host synchronisation every step. (Comparing devices to decide is no good: the
        # execution's "cuda" is not equal to the mask's "cuda:0", and the first GPU slot's
        # no-sync test counted one synchronisation per fused step.)
        if self._alive is None:
            mask = torch.zeros(self.k, dtype=torch.bool)
            mask[self.active] = True
            self._alive = mask.to(self.ex.device)
        return self._alive

    def _step(self, x: torch.Tensor, ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: (B, K*3, 32, 32); ``ys``: (K, B). Returns outputs (B, K, N) and each
        member's (detached) mean loss, (K,)."""
        forward = self._forward(ys.shape[-1])
        with self._autocast():
            out = forward(x.to(self.ex.dtype))
            losses = F.cross_entropy(self._logits(out).transpose(1, 2), ys.T,
                                     reduction="none").mean(0)  # fmt: skip
            # A diverged member's NaN stays out of the sum (its gradient is never used).
            loss = torch.where(self._alive_mask(), losses, 0).sum()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step(self._lrs)
        return out, losses.detach()

    def _set_lrs(self, lrs: list[float]) -> None:
        self._lrs = lrs  # Python floats for FusedSGD.step: no device work

    def _train_batch(self, batch: Sequence[tuple[torch.Tensor, torch.Tensor]]):
        """One step on the members' batches, side by side in the channels."""
        x = torch.cat([xb for xb, _ in batch], dim=1)
        if self.ex.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ys = torch.stack([yb for _, yb in batch])
        out, losses = self.step(x, ys)
        return losses, (out.argmax(2) != ys.T).sum(0), ys.shape[1]

    def train_epoch(
        self,
        batches: Iterable[Sequence[tuple[torch.Tensor, torch.Tensor]]],
        lr_ats: Sequence[LearningRate],
        iteration: int,
        progress: Progress,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[EpochResult]:
        """As :meth:`harness.train.Trainer.train_epoch`, for every member: ``batches`` yields
        each step's K (images, labels), one per member (:func:`member_batches`)."""
        return self._epoch(batches, lr_ats, iteration, progress, should_stop)

    def evaluate(self, splits: Sequence[tuple[torch.Tensor, torch.Tensor]],
                 normalizers: Sequence) -> list[tuple[float | None, float | None]]:  # fmt: skip
        """Each member's mean loss and error on its own split (all of one size), each
        normalised its own way; one host read."""
        n = len(splits[0][1])
        if n == 0:
            return [(None, None)] * self.k
        self.model.eval()
        loss_sum = torch.zeros(self.k, device=self.ex.device, dtype=self.ex.dtype)
        wrong = torch.zeros(self.k, device=self.ex.device, dtype=torch.long)
        iters = [eval_batches(x, y, norm, channels_last=self.ex.channels_last)
                 for (x, y), norm in zip(splits, normalizers, strict=True)]  # fmt: skip
        with torch.no_grad(), self._autocast():
            for parts in zip(*iters, strict=True):
                x = torch.cat([xb for xb, _ in parts], dim=1).to(self.ex.dtype)
                if self.ex.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                ys = torch.stack([yb for _, yb in parts])
                out = self._logits(self.model(x))
                loss_sum += F.cross_entropy(out.transpose(1, 2), ys.T, reduction="none").sum(0)
                wrong += (out.argmax(2) != ys.T).sum(0)
        losses, wrongs = loss_sum.tolist(), wrong.tolist()
        return [(losses[m] / n, 100.0 * wrongs[m] / n) for m in range(self.k)]

    def member_states(self) -> list[tuple[dict, dict]]:
        """(model state, optimizer state) of each member, in the solo formats."""
        from harness.fusion import split_model_state

        models = split_model_state(self.model.state_dict(), self.k)
        return [(models[m], self.optimizer.member_state_dict(m)) for m in range(self.k)]


# --------------------------------------------------------------------------- a group's runs


@dataclass
class Member:
    """One run of a fused group and its bookkeeping."""

    plan: RunPlan
    run_dir: Path
    state: RunState
    base: dict
    env: dict | None = None
    data: RunData | None = None
    loader: DeviceLoader | None = None
    lr_at: LearningRate | None = None
    history: list[dict] = dataclasses.field(default_factory=list)
    summary: dict | None = None  # written when the member ends (early, if it diverges)

    @property
    def alive(self) -> bool:
        return self.summary is None


def train_group(
    plans: Sequence[RunPlan],
    data: Cifar10,
    run_dirs: Sequence[Path],
    ex: Execution,
    progress: Progress | None = None,
    deadline: Deadline | None = None,
) -> list[dict]:
    """Train (or resume) K compatible runs as one fused network; return their summaries.

    Every member ends as its solo run would: complete, diverged, paused (a time budget),
    interrupted (KeyboardInterrupt, re-raised after all are recorded) or failed (RunFailed,
    raised after all are recorded).
    """
    progress = progress or SilentProgress()
    if ex.pipeline != "fast":
        raise FusionError("only the fast pipeline fuses runs; the canonical one is the baseline")
    # Checked before any file is touched: a group that cannot be one network is a mistake
    # of whoever grouped it, not a failure of its runs.
    if len({fusion_key(p) for p in plans}) != 1:
        raise FusionError("these runs cannot be fused: " + ", ".join(p.name for p in plans))
    checkpoints = [load_checkpoint(d, p.hash) for p, d in zip(plans, run_dirs, strict=True)]
    if len({(c["epoch"], c["iteration"]) if c else (0, 0) for c in checkpoints}) != 1:
        raise FusionError("the members of a fused group must resume from the same epoch; "
                          "train them apart (--fuse off)")  # fmt: skip
    ex = ex.fused(tuple(f"{p.study}/{p.name}" for p in plans))
    telemetry = Telemetry(ex.device, shared_by=ex.shared_by)
    configure_backends(ex)
    members = [
        Member(p, d, RunState(session_start=time.perf_counter(),
                              reported_epoch=p.recipe.reported_epoch), summary_fields(p, ex))
        for p, d in zip(plans, run_dirs, strict=True)
    ]  # fmt: skip
    try:
        for m in members:
            m.env = m.state.env = begin_session(m.run_dir, m.plan, ex, telemetry)
        _run_group(members, checkpoints, data, ex, progress, telemetry, deadline)
        return [_end(m, store.COMPLETE, telemetry) for m in members]
    except BudgetReached as stop:
        for m in members:
            m.state.paused = paused_by(stop, deadline)
        return [_end(m, store.PAUSED, telemetry) for m in members]
    except (KeyboardInterrupt, SystemExit):
        for m in members:
            _end(m, store.INTERRUPTED, telemetry)
        raise
    except Exception as exc:

        def end(status: str, error: str | None) -> None:
            for m in members:
                _end(m, status, telemetry, error)  # a diverged member keeps its summary

        # Only the members still training get the traceback.
        end_after_error(exc, end, [m.run_dir / store.ERROR for m in members if m.alive])
    finally:
        telemetry.stop()
        progress.close()


def _end(m: Member, status: str, telemetry: Telemetry, error: str | None = None) -> dict:
    """The member's summary: written once, when it diverged earlier, else now."""
    if m.summary is None:
        m.summary = finish(m.run_dir, m.base, m.state, status, telemetry, error)
    return m.summary


def member_data(runs: Sequence[tuple[Recipe, int]], data: Cifar10,
                device: torch.device) -> list[RunData]:  # fmt: skip
    """Each (recipe, seed)'s arrays; runs whose split and normalisation agree share one copy
    on the device (the split depends on the seed only where images are held out or sub-set)."""
    cache: dict[tuple, RunData] = {}
    out = []
    for recipe, seed in runs:
        seeded = recipe.validation_images > 0 or recipe.train_images is not None
        key = (seed if seeded else None, recipe.validation_images, recipe.train_images,
               recipe.test_images, recipe.normalization.model_dump_json())  # fmt: skip
        if key not in cache:
            cache[key] = prepare_data(recipe, seed, data, device)
        out.append(cache[key])
    return out


def _run_group(members: list[Member], checkpoints: list[dict | None], data: Cifar10,
               ex: Execution, progress: Progress, telemetry: Telemetry,
               deadline: Deadline | None) -> None:  # fmt: skip
    runs = [(m.plan.recipe, m.plan.seed) for m in members]
    for m, run_data in zip(members, member_data(runs, data, ex.device), strict=True):
        m.data = run_data
        m.state.data_record = m.data.record
        m.state.normalization = m.data.normalizer.describe()
        m.loader = make_loader(m.plan.recipe, m.plan.seed, m.data, ex)
    length = Length.of(members[0].plan.recipe, len(members[0].loader))
    c = checkpoints[0]
    start_epoch, iteration = (c["epoch"], c["iteration"]) if c else (0, 0)
    trainer = FusedTrainer(members[0].plan.experiment.model, [m.plan.recipe for m in members],
                           [m.plan.seed for m in members], ex, checkpoints,
                           [m.run_dir / store.CHECKPOINT for m in members])  # fmt: skip
    for m, c in zip(members, checkpoints, strict=True):
        m.state.length = length
        m.state.params = trainer.params
        m.history, m.lr_at = take_up(m.run_dir, m.plan.recipe, c, m.state, m.env, start_epoch,
                                     length)  # fmt: skip

    progress.start(members[0].plan, length.total_iterations, iteration)
    progress.note(f"fused group of {len(members)}: " + ", ".join(m.plan.name for m in members))
    if ex.compile:
        progress.note("compiling the model (torch.compile): the first step takes a while")
    telemetry.start()
    session_epochs: list[float] = []
    should_stop = deadline.passed if deadline is not None else None
    env = members[0].env
    loader_len = len(members[0].loader)
    for epoch in range(start_epoch, length.epochs):
        alive = [m for m in members if m.alive]
        if not alive:
            return
        check_the_next_epoch_fits(deadline, session_epochs, alive[0].history,
                                  env["device_name"])  # fmt: skip
        epoch_start = time.perf_counter()
        trainer.reseed_dropout([derive_seed(m.plan.seed, "dropout", epoch) for m in members])
        batches = min(loader_len, length.total_iterations - iteration)
        steps = member_batches([m.loader if m.alive else None for m in members],
                               epoch, batches)  # fmt: skip
        results = trainer.train_epoch(steps, [m.lr_at for m in members], iteration, progress,
                                      should_stop)  # fmt: skip
        iteration = results[0].iteration
        trainer_fallback = trainer.compile_fallback
        t1 = time.perf_counter()
        tests = trainer.evaluate([(m.data.test_x, m.data.test_y) for m in members],
                                 [m.data.normalizer for m in members])  # fmt: skip
        vals = trainer.evaluate([(m.data.val_x, m.data.val_y) for m in members],
                                [m.data.normalizer for m in members])  # fmt: skip
        eval_seconds = time.perf_counter() - t1
        gpu = telemetry.take_epoch()
        wall_now = time.perf_counter()
        states = trainer.member_states()
        for i, m in enumerate(members):
            if not m.alive:
                continue
            result = results[i]
            evals = (*tests[i], *vals[i]) if result.finite else (None,) * 4
            record = epoch_record(
                epoch, iteration, result, evals, eval_seconds=eval_seconds,
                full_epoch=batches == loader_len, first_of_session=epoch == start_epoch,
                warmup=m.lr_at.state.active, device=env["device_name"],
                telemetry=_member_share(gpu, len(alive)),
            )  # fmt: skip
            m.history.append(record)
            m.state.warmup_ended_at = m.lr_at.state.ended_at
            m.state.compile_fallback = trainer_fallback
            if not result.finite:
                m.state.diverged_at = {"epoch": epoch + 1, "iteration": iteration}
                store.write_jsonl(m.run_dir / store.METRICS, m.history)
                trainer.drop(i)
                _end(m, store.DIVERGED, telemetry)
                continue
            wall = m.state.wall_before + (wall_now - m.state.session_start)
            model_state, optimizer_state = states[i]
            save_checkpoint(m.run_dir, m.plan, model_state, optimizer_state, m.history,
                            epoch + 1, iteration, m.lr_at, m.state, wall)  # fmt: skip
            write_epoch_files(m.run_dir, m.history, length, m.env)
        progress.epoch_done(alive[0].history[-1])
        session_epochs.append(time.perf_counter() - epoch_start)


def member_batches(loaders: Sequence[Batches | None], epoch: int, batches: int) -> Iterator[list]:
    """Each step's batches, one per member from its own loader; a member without one (it
    diverged) gets zeros, whose outputs are never read, so the others' batches stay exactly
    their solo ones."""
    streams = [itertools.islice(x.epoch(epoch), batches) if x is not None else None
               for x in loaders]  # fmt: skip
    for _ in range(batches):
        yield _fill_dead([next(s) if s is not None else None for s in streams])


def _fill_dead(step: list) -> list:
    template = next(b for b in step if b is not None)
    return [b if b is not None else (torch.zeros_like(template[0]), torch.zeros_like(template[1]))
            for b in step]  # fmt: skip


def _member_share(gpu: dict | None, members: int) -> dict | None:
    """A member's telemetry: the whole GPU's readings, and its share of the energy."""
    if gpu is None:
        return None
    share = dict(gpu)
    if share.get("energy_j") is not None:
        share["energy_j"] = share["energy_j"] / members
    share["fused_members"] = members
    return share

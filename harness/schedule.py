"""Learning rate at every iteration: the recipe's schedule, preceded by an optional warm-up.

The schedule is a pure function of the position in training, so it never needs state and is
the same after a resume. Epoch-based schedules change the rate at epoch boundaries, as
``torch.optim.lr_scheduler`` stepped once per epoch does; iteration-based ones at the exact
iteration. A warm-up only replaces the rate while it lasts; the schedule keeps counting from
the start of training (He et al.: warm up, "then go back to 0.1").
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from harness.schema import Constant, Cosine, MultiStep, Recipe, Warmup


def batches_per_epoch(images: int, batch_size: int, drop_last: bool) -> int:
    """Iterations in one pass over ``images``: the last, smaller batch counts unless dropped."""
    whole, rest = divmod(images, batch_size)
    return whole + (1 if rest and not drop_last else 0)


@dataclass(frozen=True)
class Length:
    """How long a run is, in both units."""

    iterations_per_epoch: int
    total_iterations: int

    @property
    def epochs(self) -> int:
        return math.ceil(self.total_iterations / self.iterations_per_epoch)

    @classmethod
    def of(cls, recipe: Recipe, iterations_per_epoch: int) -> Length:
        if iterations_per_epoch < 1:
            raise ValueError("fewer training images than one batch: nothing to train on")
        total = recipe.iterations or recipe.epochs * iterations_per_epoch
        return cls(iterations_per_epoch, total)


def scheduled_lr(recipe: Recipe, length: Length, iteration: int) -> float:
    """The schedule's rate at ``iteration`` (0-based), ignoring any warm-up."""
    base = recipe.optimizer.lr
    sched = recipe.schedule
    epoch = iteration // length.iterations_per_epoch
    if isinstance(sched, Constant):
        return base
    if isinstance(sched, MultiStep):
        position = epoch if sched.unit == "epoch" else iteration
        passed = sum(1 for m in sched.milestones if position >= m)
        return base * sched.gamma**passed
    if isinstance(sched, Cosine):
        if sched.unit == "epoch":
            progress = epoch / length.epochs
        else:
            progress = iteration / length.total_iterations
        return sched.min_lr + (base - sched.min_lr) * (1 + math.cos(math.pi * progress)) / 2
    raise TypeError(f"unknown schedule {sched!r}")


@dataclass
class WarmupState:
    """Whether the warm-up is still on; for the threshold form, the recent training errors.

    Saved in every checkpoint, so a resumed run continues the warm-up where it stopped.
    """

    active: bool
    ended_at: int | None = None
    recent_errors: deque[float] = field(default_factory=deque)

    def to_dict(self) -> dict:
        return {
            "active": self.active,
            "ended_at": self.ended_at,
            "recent_errors": list(self.recent_errors),
        }

    @classmethod
    def from_dict(cls, d: dict, window: int) -> WarmupState:
        return cls(d["active"], d["ended_at"], deque(d["recent_errors"], maxlen=window))


class LearningRate:
    """The rate for each iteration, with the warm-up's end decided along the way."""

    # The threshold form needs the training error on the host; it is read every this many
    # iterations (and only while warming up), not at every step.
    CHECK_EVERY = 10

    def __init__(self, recipe: Recipe, length: Length, state: WarmupState | None = None) -> None:
        self.recipe = recipe
        self.length = length
        self.warmup: Warmup | None = recipe.warmup
        window = self.warmup.window if self.warmup else 1
        self.state = state or WarmupState(
            active=self.warmup is not None, recent_errors=deque(maxlen=window)
        )

    def __call__(self, iteration: int) -> float:
        w = self.warmup
        if w is not None and self.state.active:
            end = self._fixed_end()
            if end is not None and iteration >= end:
                self._end(iteration)
            else:
                return w.lr
        return scheduled_lr(self.recipe, self.length, iteration)

    def _fixed_end(self) -> int | None:
        """The iteration where the warm-up ends at the latest (None: only the threshold ends it)."""
        w = self.warmup
        if w.epochs is not None:
            return w.epochs * self.length.iterations_per_epoch
        return w.iterations if w.iterations is not None else w.max_iterations

    @property
    def needs_errors(self) -> bool:
        """True while a threshold warm-up waits for training errors."""
        return (
            self.state.active
            and self.warmup is not None
            and self.warmup.until_train_error_below is not None
        )

    def observe_errors(self, iteration: int, errors_percent: list[float]) -> None:
        """Feed per-iteration training errors (percent); may end a threshold warm-up."""
        if not self.needs_errors:
            return
        self.state.recent_errors.extend(errors_percent)
        window = self.state.recent_errors
        if len(window) == window.maxlen:
            mean = sum(window) / len(window)
            if mean < self.warmup.until_train_error_below:
                self._end(iteration + 1)

    def _end(self, iteration: int) -> None:
        self.state.active = False
        self.state.ended_at = iteration

"""The metrics a claim can be about: names, scales, and which direction is better.

One table so that the schema, the verdicts and the report agree on what ``test_error`` means
and on how far two seeds of the same run typically land on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

MetricName = Literal[
    "test_error",
    "test_error_at_epoch",
    "test_accuracy",
    "best_test_error",
    "final_train_loss",
    "final_train_error",
    "params",
    "sec_per_epoch",
]


@dataclass(frozen=True)
class Scale:
    """What a metric is measured in, and the seed-to-seed noise a verdict assumes for it where
    our runs cannot measure it (one run) and the source states none.

    The noise is ``seed_noise`` in the metric's unit, or ``relative_noise`` times the value
    where that is larger: losses span decades over training, so a fixed amount would be far
    too wide for one net and far too narrow for another.
    """

    unit: str  # printed after a value: "%", "", " s"
    name: str
    seed_noise: float
    relative_noise: float = 0.0
    why: str = ""

    def noise(self, value: float) -> float:
        return max(self.seed_noise, self.relative_noise * abs(value))

    def describe(self) -> str:
        parts = [f"{self.seed_noise:g}"] if self.seed_noise else []
        if self.relative_noise:
            parts.append(f"{self.relative_noise:.0%} of the value")
        return " or ".join(parts) if parts else "none (exact)"


PERCENTAGE_POINTS = Scale(
    "%", "errors and accuracies, in percentage points", 0.2,
    why="He et al. 2015 report ResNet-110 at 6.61 +/- 0.16 over five runs",
)  # fmt: skip
LOSS = Scale(
    "", "losses (cross-entropy, unitless)", 0.001, relative_noise=0.1,
    why="no source states a seed spread for a loss; an assumption",
)  # fmt: skip
SECONDS = Scale(
    " s", "seconds per epoch", 0.0, relative_noise=0.05,
    why="run-to-run timing on one machine; an assumption",
)  # fmt: skip
PARAMETERS = Scale("", "parameters", 0.0, why="a count: exact")

CHANCE_ERROR = 90.0  # percent: guessing among CIFAR-10's ten classes
# The cross-entropy (in nats, as training computes it) of a uniform prediction over the ten
# classes, whatever the labels: the loss of a net that did not learn.
CHANCE_LOSS = math.log(10)


@dataclass(frozen=True)
class Diverged:
    """What a run whose loss became NaN/inf counts as under a claim on this metric: a
    diverged net is a result (a net that did not learn), not a missing run."""

    value: float
    means: str


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    scale: Scale
    lower_is_better: bool
    # Quantities that depend on the run rather than only on the architecture.
    from_training: bool = True
    diverged: Diverged | None = None  # None: a diverged run has no value to give
    short: str = ""  # for table cells; the page spells out ``label`` beside the table

    @property
    def unit(self) -> str:
        return self.scale.unit


CHANCE = Diverged(CHANCE_ERROR, f"chance error ({CHANCE_ERROR:g}%, ten classes)")

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("test_error", "test error (final epoch)", PERCENTAGE_POINTS, lower_is_better=True,
               diverged=CHANCE, short="test error"),
        # The claim says which epoch (``epoch:``); a run that diverged before it is at chance.
        Metric("test_error_at_epoch", "test error at epoch k", PERCENTAGE_POINTS,
               lower_is_better=True, diverged=CHANCE, short="test error @k"),
        Metric("test_accuracy", "test accuracy (final epoch)", PERCENTAGE_POINTS,
               lower_is_better=False,
               diverged=Diverged(100 - CHANCE_ERROR, f"chance accuracy ({100 - CHANCE_ERROR:g}%)"),
               short="test accuracy"),
        # The lowest over the epochs it had, where it has one (see harness.report.counting._metric).
        Metric("best_test_error", "lowest test error over epochs", PERCENTAGE_POINTS,
               lower_is_better=True, diverged=CHANCE, short="best test error"),
        Metric("final_train_loss", "training loss (final epoch)", LOSS, lower_is_better=True,
               # At chance, not infinite: an infinite loss made any mean it entered the worst,
               # so one diverged seed of five decided an ordering alone; at chance it is an
               # outlier that widens its side's spread, as a diverged seed's 90% error does.
               diverged=Diverged(CHANCE_LOSS, f"chance loss (ln 10 = {CHANCE_LOSS:.3f}, a "
                                 "uniform guess over ten classes)"),
               short="train loss"),
        Metric("final_train_error", "training error (final epoch)", PERCENTAGE_POINTS,
               lower_is_better=True, diverged=CHANCE, short="train error"),
        Metric("params", "trainable parameters", PARAMETERS, lower_is_better=True,
               from_training=False, short="parameters"),
        Metric("sec_per_epoch", "seconds per training epoch", SECONDS, lower_is_better=True,
               short="s/epoch"),
    )
}  # fmt: skip


def label(name: str, epoch: int | None = None) -> str:
    """The metric's label, with the claim's epoch where it has one."""
    text = METRICS[name].label
    return text.replace("epoch k", f"epoch {epoch}") if epoch is not None else text


def short_label(name: str, epoch: int | None = None) -> str:
    """The metric's short label ("test error @90"), for table cells."""
    text = METRICS[name].short
    return text.replace("@k", f"@{epoch}") if epoch is not None else text

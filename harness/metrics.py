"""The metrics a claim can be about: names, units, and which direction is better.

One table so that the schema, the verdicts and the report agree on what ``test_error`` means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricName = Literal[
    "test_error",
    "test_accuracy",
    "best_test_error",
    "final_train_loss",
    "final_train_error",
    "params",
    "sec_per_epoch",
]


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str
    lower_is_better: bool
    # Quantities that depend on the run rather than only on the architecture.
    from_training: bool = True


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("test_error", "test error (final epoch)", "%", lower_is_better=True),
        Metric("test_accuracy", "test accuracy (final epoch)", "%", lower_is_better=False),
        Metric("best_test_error", "lowest test error over epochs", "%", lower_is_better=True),
        Metric("final_train_loss", "training loss (final epoch)", "", lower_is_better=True),
        Metric("final_train_error", "training error (final epoch)", "%", lower_is_better=True),
        Metric("params", "trainable parameters", "", lower_is_better=True, from_training=False),
        Metric("sec_per_epoch", "seconds per training epoch", "s", lower_is_better=True),
    )
}

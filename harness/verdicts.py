"""How a claim is judged against reproduction runs: the rules are RULES, printed on the page."""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass

from harness.metrics import METRICS
from harness.schema import Claim, OrderingClaim, Rule

FLOOR = {"%": 0.5}  # percentage points for errors/accuracies; none on other scales
K = 2.0

REPRODUCED = "reproduced"
BETTER = "better than claimed"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not yet run"
NOT_COMPARABLE = "not comparable"
OUTCOMES = (REPRODUCED, BETTER, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN, NOT_COMPARABLE)

# The scales of the metrics that runs measure, each once, for the rules.
_SCALES = list(dict.fromkeys(m.scale for m in METRICS.values() if m.from_training))

RULES = (
    "Only runs that count are used: complete, trained with the study's current config for "
    "that experiment and seed, on the full data, with no overrides (--smoke, --epochs, "
    "--subset). Diverged, failed, unfinished, stale and override runs are listed, never counted.",
    "The reproduced value follows the claim's own reporting rule over the first N seeds: best "
    "of N (lowest error, highest accuracy), median of N, or mean of N (with its sample std). "
    "A single-run claim is compared with the median of the seeds we have. Fewer counted runs "
    f"than the rule needs: {INCONCLUSIVE}.",
    f"Tolerance = max({FLOOR['%']} percentage points for errors, {K:g} x sqrt(s_claim^2 + "
    "s_runs^2)), where s_claim is the spread the source states (0 if none) and s_runs the "
    "sample std of our runs; with a single run, the metric's own seed noise is assumed: "
    + "; ".join(f"{s.name}: {s.describe()} ({s.why})" for s in _SCALES)
    + ".",
    f"|reproduced - claimed| <= tolerance: {REPRODUCED}. Beyond it: {BETTER} or "
    f"{NOT_REPRODUCED}, by the metric's direction. With a single run, a difference less than "
    f"{K:g} x the assumed seed noise beyond the tolerance is {INCONCLUSIVE}: one seed cannot "
    "decide it.",
    f"If every run of the experiment diverged (loss NaN/inf): {NOT_REPRODUCED}; the source "
    "trained that network and we could not.",
    "Parameter counts must match exactly where the source gives an exact figure, and after "
    "the source's rounding otherwise (1.7M: to 0.1M). Speeds measured on other hardware are "
    f"{NOT_COMPARABLE}; on the same hardware they must agree within 10%.",
    "An ordering claim holds when each consecutive pair moves in the stated direction, "
    "comparing means over counted runs; an experiment whose runs all diverged counts as the "
    "worst. If both sides of a pair have two or more runs and differ by less than "
    f"{K:g} standard errors: {INCONCLUSIVE}.",
)


@dataclass(frozen=True)
class Reproduction:
    """A claim's metric over our counted runs, under the claim's rule."""

    value: float
    n: int
    minimum: float
    maximum: float
    std: float | None  # sample std over the runs used (None for one run)
    rule_applied: str


@dataclass(frozen=True)
class Verdict:
    outcome: str
    reason: str
    difference: float | None = None
    tolerance: float | None = None


def apply_rule(values: list[float], rule: Rule, lower_is_better: bool) -> Reproduction | None:
    """``values`` in seed order; None when there are none."""
    if not values:
        return None
    if rule.kind == "single":
        used, how = values, ("single run" if len(values) == 1 else f"median of {len(values)}")
        value = statistics.median(used)
    else:
        used = values[: rule.n]
        how = f"{rule.kind} of {len(used)}"
        if rule.kind == "best":
            value = min(used) if lower_is_better else max(used)
        elif rule.kind == "median":
            value = statistics.median(used)
        else:
            value = statistics.fmean(used)
    std = statistics.stdev(used) if len(used) >= 2 else None
    return Reproduction(value, len(used), min(used), max(used), std, how)


def judge_value(
    claim: Claim, repro: Reproduction | None, *, diverged: int = 0, pending: int = 0
) -> Verdict:
    """Verdict for a claim on a training metric (errors, accuracies, losses)."""
    metric = METRICS[claim.metric]
    if repro is None:
        if diverged:
            return Verdict(NOT_REPRODUCED, f"all {diverged} run(s) diverged (loss became NaN)")
        if pending:
            return Verdict(NOT_RUN, f"{pending} run(s) started, none finished")
        return Verdict(NOT_RUN, "no counted run yet")
    difference = repro.value - claim.value
    assumed = metric.scale.noise(claim.value)
    seed_std = repro.std if repro.std is not None else assumed
    tolerance = max(FLOOR.get(metric.unit, 0.0), K * math.hypot(claim.std or 0.0, seed_std))
    if repro.n < claim.rule.n:
        return Verdict(
            INCONCLUSIVE,
            f"the claim is the {claim.rule} runs; {repro.n} counted so far",
            difference,
            tolerance,
        )
    worse = difference > 0 if metric.lower_is_better else difference < 0
    if abs(difference) <= tolerance:
        return Verdict(
            REPRODUCED,
            f"|difference| {abs(difference):.2f} <= tolerance {tolerance:.2f}",
            difference,
            tolerance,
        )
    if repro.n == 1 and abs(difference) <= tolerance + K * assumed:
        return Verdict(
            INCONCLUSIVE,
            f"difference {difference:+.2f} is just beyond the tolerance {tolerance:.2f}; "
            "one seed cannot decide it: run more seeds",
            difference,
            tolerance,
        )
    outcome = NOT_REPRODUCED if worse else BETTER
    return Verdict(
        outcome,
        f"difference {difference:+.2f} beyond tolerance {tolerance:.2f}",
        difference,
        tolerance,
    )


def judge_params(claim: Claim, measured: int) -> Verdict:
    difference = measured - claim.value
    if claim.resolution is None:
        if measured == claim.value:
            return Verdict(REPRODUCED, "exact match", 0.0, 0.0)
        return Verdict(NOT_REPRODUCED, f"off by {difference:+,.0f}", difference, 0.0)
    unit = claim.resolution
    if round(measured / unit) == round(claim.value / unit):
        return Verdict(
            REPRODUCED, f"rounds to the stated figure (unit {unit:,.0f})", difference, unit / 2
        )
    return Verdict(
        NOT_REPRODUCED,
        f"{measured:,} does not round to the stated {claim.value:,.0f} (unit {unit:,.0f})",
        difference,
        unit / 2,
    )


def judge_speed(claim: Claim, measured: float | None, device_names: set[str]) -> Verdict:
    if measured is None:
        return Verdict(NOT_RUN, "no counted run yet")
    same = any(
        claim.hardware and name and name.lower() in claim.hardware.lower() for name in device_names
    )
    if not same:
        return Verdict(
            NOT_COMPARABLE,
            f"claimed on {claim.hardware}; measured on {', '.join(sorted(device_names))}",
            measured - claim.value,
        )
    ratio = measured / claim.value
    outcome = REPRODUCED if 0.9 <= ratio <= 1.1 else (BETTER if ratio < 1 else NOT_REPRODUCED)
    return Verdict(
        outcome,
        f"{ratio:.2f}x the claimed time on the same hardware",
        measured - claim.value,
        0.1 * claim.value,
    )


@dataclass(frozen=True)
class Side:
    """One experiment's values in an ordering claim."""

    experiment: str
    values: list[float]
    diverged: bool = False  # every run diverged: worst possible

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan


def judge_ordering(claim: OrderingClaim, sides: list[Side]) -> Verdict:
    missing = [s.experiment for s in sides if not s.values and not s.diverged]
    if missing:
        return Verdict(NOT_RUN, f"no counted run yet for {', '.join(missing)}")
    lower_is_better = METRICS[claim.metric].lower_is_better
    worst = math.inf if lower_is_better else -math.inf

    def level(side: Side) -> float:
        return worst if side.diverged else side.mean

    rising = claim.direction == "increasing"
    broken, unsure = [], []
    for a, b in itertools.pairwise(sides):
        delta = level(b) - level(a)
        if math.isnan(delta) or (delta > 0) != rising or delta == 0:
            broken.append(f"{a.experiment} -> {b.experiment}")
            continue
        if len(a.values) >= 2 and len(b.values) >= 2 and not (a.diverged or b.diverged):
            se = math.hypot(
                statistics.stdev(a.values) / math.sqrt(len(a.values)),
                statistics.stdev(b.values) / math.sqrt(len(b.values)),
            )
            if abs(delta) <= K * se:
                unsure.append(f"{a.experiment} -> {b.experiment}")
    shown = ", ".join(
        f"{s.experiment} {'diverged' if s.diverged else f'{s.mean:.4g}'}" for s in sides
    )
    if broken:
        return Verdict(NOT_REPRODUCED, f"not {claim.direction} at {'; '.join(broken)} ({shown})")
    if unsure:
        return Verdict(INCONCLUSIVE, f"within seed noise at {'; '.join(unsure)} ({shown})")
    return Verdict(REPRODUCED, f"{claim.direction} as claimed ({shown})")

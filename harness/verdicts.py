"""How a claim is judged against reproduction runs: the rules are RULES, printed on the page."""

from __future__ import annotations

import decimal
import functools
import itertools
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, replace

from harness.metrics import METRICS, Scale
from harness.plural import plural
from harness.schema import Claim, OrderingClaim, Rule

K = 2.0  # standard errors: a difference within K SE is a match
# Our runs spreading more than this many times the seed noise disagree for a reason other than
# the seed (see RULES); their statistic is not judged as if they did not.
SPREAD_LIMIT = 3.0
MAD_TO_STD = 1.4826  # the median absolute deviation of normal data, times this, is its std
# Words that name a maker or a product line, not the chip: "NVIDIA GeForce GTX 980" is the
# "GTX 980" a source names.
VENDOR_WORDS = frozenset({"nvidia", "geforce", "tesla", "quadro", "amd", "radeon", "intel"})

REPRODUCED = "reproduced"
BETTER = "better than claimed"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
# No verdict yet, and why: runs that may count have started but none counts yet (paused,
# running or interrupted), or none has started (stale, override, smoke, failed and damaged runs
# never count, so they start nothing).
UNDER_WAY = "under way"
NOT_RUN = "not yet run"
NOT_COMPARABLE = "not comparable"
JUDGED = (REPRODUCED, BETTER, NOT_REPRODUCED, INCONCLUSIVE)
# A verdict from runs on a copy of CIFAR-10 that is not the official release carries this
# qualifier in its very name, so no summary, table or export can show it without it.
ON_NONOFFICIAL_DATA = "on non-official data"
OUTCOMES = (*JUDGED, *(f"{o} {ON_NONOFFICIAL_DATA}" for o in JUDGED), UNDER_WAY, NOT_RUN,
            NOT_COMPARABLE)  # fmt: skip
# akamaster's released ResNet-20: its README's test error on the official data, and the error
# `repro evaluate studies/checkpoints.yaml` measured on the offline JPEG copy
# (results/published/checkpoints-jpeg-copy-cpu-2026-11-26/).
JPEG_COPY_COST = (8.27, 18.97)
# That copy is one set of arrays (JPEG quality 75, 4:2:0, of the official images), named by its
# fingerprint (harness.data.fingerprint) in every record made on it: the page says its cost only
# of runs and evaluations on it, and of another copy that its cost is not measured.
JPEG_COPY_FINGERPRINT = "ccecff3e0fe7847edfaa02b441d4ffed97015c5c6c60a1d871f3726a4f777766"

# The scales of the metrics that runs measure, each once, for the rules.
_SCALES = list(dict.fromkeys(m.scale for m in METRICS.values() if m.from_training))


def _diverged_counts_as() -> str:
    """What a diverged run counts as, once per kind, with the metrics it applies to."""
    names = defaultdict(list)
    for m in METRICS.values():
        if m.diverged is not None:
            names[m.diverged].append(m.name)
    return "; ".join(f"{d.means} for {', '.join(ns)}" for d, ns in names.items())


# Released weights evaluated again: nothing is random, so no seed noise. What may differ is
# the claim's rounding and a few borderline images flipping between libraries and devices
# (each image is 0.01 points of CIFAR-10's 10,000).
FIXED_WEIGHTS_IMAGES = 3

# How far off a parameter count is, as a word that fits: a count within rounding is not "off",
# one that matches when counted the other way is a question of convention, and beyond that a
# fraction of a percent is a detail of the architecture (a shortcut, a bias), more is another net.
COUNT_CONVENTIONS = {"all": "with batch norm's scale and shift",
                     "without_batchnorm": "without batch norm's scale and shift"}  # fmt: skip
SMALL_COUNT_DIFFERENCE = 0.01  # relative


RULES = (
    "Only runs that count are used: complete or diverged, trained with the study's current "
    "config for that experiment and random seed, on the full data, with no overrides (--smoke, "
    "--epochs, --subset). Failed, stale and override runs are listed, never counted; "
    "so are damaged ones, whose files cannot be read, hold the wrong types (a string for a "
    "number) or disagree (a summary that says complete "
    "before the last epoch or after another number of epochs than the recipe trains, curves "
    "missing or not the epochs the summary says, a line of the curves that is not what "
    "training wrote on it (its digest does not match: a figure edited, lines swapped or "
    "copied over another), a summary "
    "figure its curve contradicts: a test error, best test error, final training loss or "
    "error, or seconds per epoch other than the one training derives from the curve, or "
    "missing from a complete run's summary where the curve has it; a paused or interrupted "
    "run's too, which then counts at no epoch, nor may a paused run's curves hold other epochs "
    "than its summary says), and runs whose "
    "summary or curve holds a figure no run can (NaN or infinite, an error outside 0 to 100%, "
    "a negative loss), whatever their status. Unfinished "
    "runs are listed and not counted, with one exception: a claim on the test error at one "
    "epoch counts a paused, running or interrupted run (of the current config on the full "
    "data with no overrides) that has recorded that epoch, since later epochs cannot change "
    "it; the run table says where a run counts only so. "
    f"A claim with no counted run is '{UNDER_WAY}' while a run that may still count is paused, "
    "running or interrupted (one of the current config on the full data with no overrides; "
    "for a speed claim, one alone on the claim's hardware so far; for an ordering, one for "
    f"every experiment without counted runs), else '{NOT_RUN}': neither is a verdict, and "
    "where an unfinished run stands decides nothing.",
    "A run whose loss became NaN/inf (diverged) is a result, not a missing run: it counts "
    "under the claim's rule like any other seed, as "
    + _diverged_counts_as()
    + " (a lowest test error over epochs, or a test error at an epoch it reached, is read from "
    "the epochs it had). "
    "So a net that did not learn (90%) is reproduced by runs that diverged, a diverged seed "
    "moves a median or a mean as it would, and each row says how many runs diverged. A loss "
    "counts at chance, not as infinite: an infinite loss would make any mean it entered the "
    "worst, so one diverged seed among five would decide a mean or an ordering on its own; at "
    "chance it is an outlier whose distance from the others widens its side's spread (such a "
    "mean or ordering is then usually inconclusive), while a side where most seeds diverged "
    "still reads as worse than one whose seeds trained. A net that ends worse than chance "
    "(an error above 90%, a loss above ln 10) ranks below a diverged one.",
    "Runs of another precision (bf16, fp32) or pipeline (fast, canonical) are not pooled: "
    "neither is part of a run's config hash, so each claim uses the counted runs of one "
    "execution, the one with the most of them (on a tie fp32, the sources' precision, then "
    "the canonical pipeline), names it in its row and lists the others as kept apart. A study "
    "or a claim that says `pool_executions: true` pools them, and the row says so. An ordering "
    f"compares runs of one execution; where none has runs of every experiment: {NOT_COMPARABLE}.",
    "Runs on a copy of CIFAR-10 that is not byte-identical to the official release never pool "
    "with runs on the official release, which a verdict prefers, nor do runs whose records name "
    "different data fingerprints (the official release has one); a run whose sessions trained "
    "on different data (paused on a copy, resumed on the official release) is on mixed data, "
    "which is not the official release. A verdict from a copy says so "
    f"in its name ('{NOT_REPRODUCED} {ON_NONOFFICIAL_DATA}'), in the summary's counts and in "
    "the exports, and its row names the data: it does not say whether the claim holds. The "
    "offline JPEG copy costs about 10 points of test error (the released ResNet-20 of a "
    f"common PyTorch reimplementation: {JPEG_COPY_COST[0]}% on the official data, "
    f"{JPEG_COPY_COST[1]}% on the copy), so '{NOT_REPRODUCED} {ON_NONOFFICIAL_DATA}' is what "
    "a sound reproduction shows there. Orderings on a copy are marked the same way: their "
    "runs saw the same images, but whether the copy keeps an ordering is not measured.",
    "The reproduced value follows the claim's own reporting rule over the first N counted "
    "seeds of the runs chosen as above: best "
    "of N (lowest error, highest accuracy), median of N, or mean of N (with its sample std). "
    "A single-run claim is compared with the median of the seeds we have. Fewer counted runs "
    f"than the rule needs: {INCONCLUSIVE}.",
    "Both the claimed and the reproduced value are statistics of noisy runs, so the difference "
    "is judged by its standard error SE = sqrt(SE_claim^2 + SE_ours^2), each the standard error "
    "of the statistic that side reports, from the seed-to-seed std s: s/sqrt(n) for a mean "
    "(and for a median of one or two runs, which is their mean); 1.2533 s/sqrt(n) for a median "
    "of three or more (its large-sample value for normal data, slightly wide for small n); "
    "for best of N, the std of the smallest of N normal draws (0.83 s for N = 2, 0.67 s for "
    "N = 5), since both sides take the best of the same N and the shift of a minimum cancels; "
    "s for a single run. Our s is the spread of our runs when we have two or more (the sample "
    f"std; for a median of three or more, {MAD_TO_STD} times the median absolute deviation, "
    "a spread that one outlying run moves no more than it moves the median), the spread the "
    "source states when we have one run, else the metric's assumed seed noise: "
    + "; ".join(f"{s.name}: {s.describe()} ({s.why})" for s in _SCALES)
    + ". Where our s comes from our runs, it is pooled with that assumed noise as if the noise "
    "were one more degree of freedom, s^2 = (noise^2 + (n - 1) s_runs^2) / n: two seeds that "
    "agree by chance do not make a tolerance of zero, and five seeds' own spread dominates. "
    "The claim's s is the spread it states, else ours. "
    f"Tolerance = {K:g} SE, shown as the range the reproduced value must fall in; no fixed "
    "floor.",
    f"Runs that spread more than {SPREAD_LIMIT:g} times the seed noise (the assumed noise, or "
    "the spread the source states where larger) disagree beyond seed noise: a seed that "
    "diverged or did not learn, a broken run. Their statistic would come with a tolerance as "
    "wide as their spread and could not fail, so it decides nothing: "
    f"{INCONCLUSIVE}, unless every run, judged alone as a single run, falls beyond the claim "
    f"on the same side ({NOT_REPRODUCED} or {BETTER}).",
    f"|reproduced - claimed| <= tolerance: {REPRODUCED}. Beyond it: {BETTER} or "
    f"{NOT_REPRODUCED}, by the metric's direction. Where s is only assumed (one run, no spread "
    f"stated), a difference up to twice the tolerance is {INCONCLUSIVE}: one seed cannot "
    "decide it.",
    "Parameter counts must match exactly where the source gives an exact figure, and after "
    "the source's rounding otherwise (1.7M: to 0.1M, a tie rounding up, so 265,000 is 0.27M), "
    "counted the way the claim says: every "
    "trainable parameter, or without batch norm's scale and shift where the claim says "
    "`counts: without_batchnorm` (He et al. 2016's 10.2M for ResNet-1001 is 10,178,490 so "
    "counted, 10,327,706 with them). A count that does not match but matches counted the "
    "other way (with or without batch norm's scale and shift) is "
    f"{INCONCLUSIVE}: a question of how the source counted, not a failed reproduction. "
    "Otherwise the row gives the relative difference and calls it a small difference (under "
    f"{SMALL_COUNT_DIFFERENCE:.0%}: a detail such as a shortcut or a bias) or a large one "
    f"({NOT_REPRODUCED} either way). A speed is the median seconds per epoch of complete solo "
    "runs (a source times a run that had its GPU alone: a run fused into a group, sharing its "
    "GPU or moved between devices is left out) on the claim's hardware only: runs on other "
    f"hardware are left out, and with none on it the claim is {NOT_COMPARABLE}; of those, the "
    "runs of one execution and data are chosen as for any claim (a median over bf16 and fp32 "
    "runs is neither's time; one on a copy is marked as such); it must "
    "agree within 10%. The same hardware: "
    "the GPU's name equals one comma-separated part of the claim's hardware once vendor words "
    f"({', '.join(sorted(VENDOR_WORDS))}), case and punctuation are dropped, so 'NVIDIA "
    "GeForce GTX 980' is the 'NVIDIA GTX 980' of a claim and a 'GTX 980 Ti' is not.",
    "An ordering claim holds when each consecutive pair moves in the stated direction, "
    "comparing means over counted runs (diverged ones at chance, as above, so that a diverged "
    "seed among good ones widens its side's standard error rather than deciding the pair). "
    f"A pair whose means differ by less than {K:g} standard errors of "
    "their difference, either way, is within seed noise: "
    f"{INCONCLUSIVE}. A side's std is pooled with the metric's assumed seed noise as above, "
    "and a side with one run gets exactly that noise, so "
    "a gap between two single runs must exceed about 2.8 times that noise (0.57 percentage "
    "points of error) to decide the order. An ordering on seconds per epoch compares only "
    "complete solo runs, as a speed claim does, and every side's on one device (the same GPU "
    f"name): otherwise {NOT_COMPARABLE}.",
    "A claim on released weights (a checkpoint evaluated with `repro evaluate`) involves no "
    "randomness: its tolerance is the claim's rounding (half a unit of its last digit) plus "
    f"{FIXED_WEIGHTS_IMAGES} test images (0.01 points each) that libraries and devices may "
    "decide differently, with no seed noise.",
)

MEDIAN_SE = math.sqrt(math.pi / 2)  # SE of a median over SE of a mean, large normal samples


@dataclass(frozen=True)
class Reproduction:
    """A claim's metric over our counted runs, under the claim's rule."""

    value: float
    n: int
    minimum: float
    maximum: float
    std: float | None  # sample std over the runs used (None for one run)
    statistic: str  # single | best | median | mean: what ``value`` is over the n runs
    # The seed-to-seed spread the statistic is judged by: ``std``, or for a median of three or
    # more a robust one from the median absolute deviation (None for one run).
    spread: float | None = None

    @property
    def rule_applied(self) -> str:
        return "single run" if self.statistic == "single" else f"{self.statistic} of {self.n}"


@dataclass(frozen=True)
class Verdict:
    outcome: str
    reason: str
    difference: float | None = None
    tolerance: float | None = None
    interval: tuple[float, float] | None = None  # where the reproduced value had to fall
    severity: str = ""  # parameter counts: how far off, in words (see judge_params)


def apply_rule(values: list[float], rule: Rule, lower_is_better: bool) -> Reproduction | None:
    """``values`` in seed order; None when there are none."""
    if not values:
        return None
    if rule.kind == "single":
        used = values
        statistic = "single" if len(values) == 1 else "median"
    else:
        used, statistic = values[: rule.n], rule.kind
    if statistic == "best":
        value = min(used) if lower_is_better else max(used)
    elif statistic == "mean":
        value = statistics.fmean(used)
    else:
        value = statistics.median(used)
    # A figure no run can give (counting refuses such records) has no spread.
    finite = [v for v in used if math.isfinite(v)]
    std = statistics.stdev(finite) if len(finite) >= 2 else None
    spread = std
    if statistic == "median" and len(used) >= 3:
        # The median shrugs off one wild run; a sample std would not, and would then excuse
        # any difference (or, with a diverged seed among five, refuse to judge at all).
        spread = MAD_TO_STD * statistics.median(abs(v - value) for v in used)
    return Reproduction(value, len(used), min(used), max(used), std, statistic, spread)


def pooled(spread: float, n: int, noise: float) -> float:
    """The seed-to-seed std of ``n`` runs whose spread is ``spread``, pooled with the assumed
    ``noise`` as one more degree of freedom: a sample std from a few runs can be near zero by
    chance, and a tolerance built on it would call any difference a failure."""
    return math.sqrt((noise**2 + (n - 1) * spread**2) / n)


def standard_error(statistic: str, n: int, std: float) -> float:
    """Standard error of a statistic over ``n`` runs whose seed-to-seed std is ``std``."""
    if statistic == "best":
        return std * _std_of_best(n)
    if statistic == "median" and n >= 3:
        return MEDIAN_SE * std / math.sqrt(n)
    return std / math.sqrt(n)  # a mean, a single run, a median of one or two (their mean)


@functools.cache
def _std_of_best(n: int) -> float:
    """Standard deviation of the smallest of ``n`` standard normal draws, integrated
    numerically (the largest has the same, by symmetry)."""
    normal = statistics.NormalDist()
    step = 0.002
    xs = [i * step for i in range(-5000, 5001)]
    weights = [n * normal.pdf(x) * (1 - normal.cdf(x)) ** (n - 1) * step for x in xs]
    mean = sum(x * w for x, w in zip(xs, weights, strict=True))
    return math.sqrt(sum((x - mean) ** 2 * w for x, w in zip(xs, weights, strict=True)))


def judge_fixed_weights(claim: Claim, value: float) -> Verdict:
    """Verdict for a claim on released weights: deterministic, so the tolerance is the
    claim's rounding plus a few images, not a seed-to-seed spread."""
    if claim.decimals is not None:  # as the source wrote it: 6.90 is rounded to 0.01
        rounding = 0.5 * 10.0**-claim.decimals
    else:  # a claim made in code: its shortest form
        exponent = decimal.Decimal(repr(claim.value)).normalize().as_tuple().exponent
        rounding = 0.5 * 10.0 ** min(0, exponent)
    tolerance = rounding + FIXED_WEIGHTS_IMAGES * 0.01
    difference = value - claim.value
    interval = (claim.value - tolerance, claim.value + tolerance)
    why = (f"|difference| {abs(difference):.2f} vs {tolerance:.3f} (the claim's rounding "
           f"{rounding:g} + {FIXED_WEIGHTS_IMAGES} test images)")  # fmt: skip
    if abs(difference) <= tolerance:
        return Verdict(REPRODUCED, why, difference, tolerance, interval)
    worse = difference > 0 if METRICS[claim.metric].lower_is_better else difference < 0
    return Verdict(NOT_REPRODUCED if worse else BETTER, why, difference, tolerance, interval)


def _not_yet(pending: int, what: str = "run") -> Verdict:
    """No counted run: under way while ``pending`` runs that may count are unfinished."""
    if pending:
        return Verdict(UNDER_WAY, f"{plural(pending, what)} under way, none counted yet")
    return Verdict(NOT_RUN, "no counted run yet")


def judge_value(claim: Claim, repro: Reproduction | None, *, pending: int = 0) -> Verdict:
    """Verdict for a claim on a training metric (errors, accuracies, losses); ``pending``:
    the runs under way that may yet count for it."""
    metric = METRICS[claim.metric]
    if repro is None:
        return _not_yet(pending)
    difference = repro.value - claim.value
    worse = difference > 0 if metric.lower_is_better else difference < 0
    too_few = (f"the claim is the {claim.rule} runs; {repro.n} counted so far"
               if repro.n < claim.rule.n else "")  # fmt: skip
    if not math.isfinite(difference):  # even a diverged run counts as a finite figure
        return Verdict(INCONCLUSIVE, too_few or f"the {repro.rule_applied} is {repro.value}, "
                       "which no run can give: a run's record is broken; check the runs",
                       difference)  # fmt: skip
    noise = metric.scale.noise(claim.value)
    wild = repro.spread is not None and repro.spread > SPREAD_LIMIT * max(noise, claim.std or 0)
    if wild and not too_few:
        return _too_spread(claim, repro, noise, difference)
    if repro.spread is not None:
        ours, assumed = pooled(repro.spread, repro.n, noise), False
    elif claim.std is not None:
        ours, assumed = claim.std, False
    else:
        ours, assumed = noise, True
    theirs = claim.std if claim.std is not None else ours
    se = math.hypot(
        standard_error(claim.rule.kind, claim.rule.n, theirs),
        standard_error(repro.statistic, repro.n, ours),
    )
    tolerance = K * se
    interval = (claim.value - tolerance, claim.value + tolerance)

    def verdict(outcome: str, reason: str) -> Verdict:
        return Verdict(outcome, reason, difference, tolerance, interval)

    if too_few:
        return verdict(INCONCLUSIVE, too_few)
    within = f"{K:g} x SE {se:.2f} = {tolerance:.2f}"
    if abs(difference) <= tolerance:
        return verdict(REPRODUCED, f"|difference| {abs(difference):.2f} <= {within}")
    if assumed and abs(difference) <= 2 * tolerance:
        return verdict(
            INCONCLUSIVE,
            f"difference {difference:+.2f} is beyond {within} but within twice that, and the "
            "seed noise is only assumed: one seed cannot decide it; run more seeds",
        )
    return verdict(
        NOT_REPRODUCED if worse else BETTER, f"difference {difference:+.2f} beyond {within}"
    )


def _too_spread(claim: Claim, repro: Reproduction, noise: float, difference: float) -> Verdict:
    """Runs that disagree beyond seed noise: decided only where every one of them, judged alone
    as a single run against the claim, falls beyond it on the same side."""
    metric = METRICS[claim.metric]
    theirs = claim.std if claim.std is not None else noise
    alone = K * math.hypot(standard_error(claim.rule.kind, claim.rule.n, theirs), noise)
    low, high = claim.value - alone, claim.value + alone
    spread = (f"our {repro.n} runs spread {repro.spread:.2f} ({repro.minimum:.4g} to "
              f"{repro.maximum:.4g}), over {SPREAD_LIMIT:g} x the seed noise "
              f"{max(noise, claim.std or 0):g}")  # fmt: skip
    if repro.minimum > high or repro.maximum < low:
        worse = (repro.minimum > high) == metric.lower_is_better
        return Verdict(NOT_REPRODUCED if worse else BETTER,
                       f"{spread}, but every one of them alone is beyond {alone:.2f} of the "
                       "claim, on the same side", difference)  # fmt: skip
    return Verdict(INCONCLUSIVE,
                   f"{spread}: they disagree beyond seed noise (a diverged or failed seed?), so "
                   f"their {repro.rule_applied} decides nothing; look at the runs, or run "
                   "more seeds", difference)  # fmt: skip


def on_nonofficial_data(verdict: Verdict) -> Verdict:
    """The verdict of runs on a copy of the data, marked (a verdict that judged nothing, such
    as "not yet run" or "under way", needs no mark: where unfinished runs on a copy stand, the
    claim's progress line marks)."""
    if verdict.outcome not in JUDGED:
        return verdict
    return replace(verdict, outcome=f"{verdict.outcome} {ON_NONOFFICIAL_DATA}")


def _count_matches(claim: Claim, count: int) -> bool:
    """Whether ``count`` is the claim's figure: exactly, or as the source rounded it. A
    source's tie rounds up (265,000 parameters print as 0.27M), where Python's round() went to
    the even digit and judged 265,000 a match for 0.26M and not for 0.27M."""
    if claim.resolution is None:
        return count == claim.value
    half = claim.resolution / 2
    return claim.value - half <= count < claim.value + half


def judge_params(
    claim: Claim, measured: int, other_counts: dict[str, int] | None = None
) -> Verdict:
    """Verdict for a parameter count, counted the way the claim says (``measured``);
    ``other_counts`` are the same net counted by the other conventions, which decide whether a
    mismatch is a question of counting rather than of the architecture."""
    difference = measured - claim.value
    unit = claim.resolution
    tolerance = 0.0 if unit is None else unit / 2
    if _count_matches(claim, measured):
        if unit is None:
            return Verdict(REPRODUCED, "exact match", 0.0, 0.0, severity="exact")
        return Verdict(REPRODUCED, f"rounds to the stated figure (unit {unit:,.0f})", difference,
                       tolerance, severity="within rounding")  # fmt: skip
    stated = (f"does not round to the stated {claim.value:,.0f} (unit {unit:,.0f})" if unit
              else f"off by {difference:+,.0f}")  # fmt: skip
    for counts, count in (other_counts or {}).items():
        if _count_matches(claim, count):
            return Verdict(
                INCONCLUSIVE,
                f"{measured:,} {stated}, but {count:,} counted {COUNT_CONVENTIONS[counts]} "
                "does: how the source counted decides it (a claim's `counts:` says it)",
                difference, tolerance, severity="counting convention",
            )  # fmt: skip
    small = abs(difference) / claim.value < SMALL_COUNT_DIFFERENCE
    return Verdict(
        NOT_REPRODUCED,
        stated if unit is None else f"{measured:,} {stated}",
        difference,
        tolerance,
        severity="small difference" if small else "large difference",
    )


def judge_speed(
    claim: Claim, timings: list[tuple[str, float]], *, pending: int = 0
) -> tuple[Verdict, list[float]]:
    """Verdict for a speed claim over solo runs' (device, seconds per epoch), and the seconds
    it took the median of: only those on the claim's hardware, since a median over several
    GPUs is no GPU's time and one matching run must not let the others in. ``pending``: the
    runs under way, alone on the claim's hardware so far."""
    if not timings:
        return _not_yet(pending, "solo run"), []
    used = [s for device, s in timings if same_hardware(device, claim.hardware or "")]
    if not used:
        devices = ", ".join(sorted({device for device, _ in timings}))
        return Verdict(NOT_COMPARABLE, f"claimed on {claim.hardware}; measured on {devices}"), []
    measured = statistics.median(used)
    ratio = measured / claim.value
    outcome = REPRODUCED if 0.9 <= ratio <= 1.1 else (BETTER if ratio < 1 else NOT_REPRODUCED)
    others = len(timings) - len(used)
    reason = f"{ratio:.2f}x the claimed time on the same hardware" + (
        f"; {plural(others, 'run')} on other hardware left out" if others else "")  # fmt: skip
    return Verdict(outcome, reason, measured - claim.value, 0.1 * claim.value), used


def gpu_name(text: str) -> str:
    """A device name without vendor words, case or punctuation: "gtx 980"."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return " ".join(w for w in words if w not in VENDOR_WORDS)


def same_hardware(device: str, claimed: str) -> bool:
    """Whether ``device`` is the GPU a claim names. The claim may add details after commas or
    in brackets ("NVIDIA GTX 980, Theano/Lasagne, batch 64"); one of its parts must be the
    same chip, so a "GTX 980 Ti" is not a "GTX 980"."""
    name = gpu_name(device)
    return bool(name) and any(gpu_name(part) == name for part in re.split(r"[,;()]", claimed))


@dataclass(frozen=True)
class Side:
    """One experiment's values in an ordering claim (diverged runs at what they count as)."""

    experiment: str
    values: list[float]
    diverged: int = 0  # how many of the values are diverged runs

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    def standard_error(self, scale: Scale) -> tuple[float, bool]:
        """The standard error of the mean, and whether the seed noise behind it is assumed
        (one run) rather than measured."""
        noise = scale.noise(self.mean)
        if len(self.values) >= 2:
            n = len(self.values)
            return pooled(statistics.stdev(self.values), n, noise) / math.sqrt(n), False
        return noise, True

    def describe(self) -> str:
        text = f"{self.experiment} {self.mean:.4g}"
        return text + (
            f" ({self.diverged} of {len(self.values)} diverged)" if self.diverged else ""
        )


def judge_ordering(
    claim: OrderingClaim, sides: list[Side], under_way: Collection[str] = ()
) -> Verdict:
    """Verdict for an ordering; ``under_way``: the experiments with runs under way that may
    yet count. Sides without counted runs leave it under way where each has such runs."""
    missing = [s.experiment for s in sides if not s.values]
    if missing:
        why = f"no counted run yet for {', '.join(missing)}"
        started = [name for name in missing if name in under_way]
        if started == missing:
            return Verdict(UNDER_WAY, f"runs under way, none counted yet, for {', '.join(missing)}")
        if started:
            why += f" (runs under way for {', '.join(started)})"
        return Verdict(NOT_RUN, why)
    metric = METRICS[claim.metric]
    rising = claim.direction == "increasing"
    broken, unsure, assumed = [], [], False
    for a, b in itertools.pairwise(sides):
        pair = f"{a.experiment} -> {b.experiment}"
        delta = b.mean - a.mean
        # Even a diverged run counts as a finite figure: a mean that is not one holds a figure
        # no run can give (counting refuses such records), and tells nothing apart.
        if not math.isfinite(delta):
            unsure.append(pair)
            continue
        (se_a, assumed_a), (se_b, assumed_b) = (side.standard_error(metric.scale)
                                                for side in (a, b))  # fmt: skip
        if abs(delta) <= K * math.hypot(se_a, se_b):
            unsure.append(pair)
            assumed = assumed or assumed_a or assumed_b
            continue
        if (delta > 0) != rising:
            broken.append(pair)
    shown = ", ".join(s.describe() for s in sides)
    if broken:
        return Verdict(NOT_REPRODUCED, f"not {claim.direction} at {'; '.join(broken)} ({shown})")
    if unsure:
        why = (
            "one run on a side, so its seed noise is assumed: run more seeds"
            if assumed
            else "run more seeds"
        )
        return Verdict(
            INCONCLUSIVE,
            f"within seed noise ({K:g} standard errors) at {'; '.join(unsure)} ({shown}); {why}",
        )
    return Verdict(REPRODUCED, f"{claim.direction} as claimed ({shown})")

"""The study schema: what a study YAML may say, as pydantic models.

Read top-down: a :class:`Study` has sources, experiments (a model spec and a :class:`Recipe`),
seeds, released checkpoints (a model spec, a file and a :class:`WeightLayout`) and claims.
Every class forbids unknown keys; ``harness.studyfile`` turns pydantic's errors into messages
that name the file, line, field path, what was given and what is allowed.
Short forms (a model name, a recipe name, ``extends:``) are expanded by ``harness.studyfile``
before these classes see the data, so each class here has one shape only.
"""

from __future__ import annotations

import itertools
import re
import typing
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    Tag,
    field_validator,
    model_validator,
)

from harness import kinds
from harness.choices import GPU_COUNT, MAX_BATCH_SIZE, RUNS_PER_GPU
from harness.metrics import METRICS, MetricName
from harness.metrics import label as metric_label
from harness.near import near_names
from harness.zoo import ModelSpec

# CIFAR-10's training and test sets, whole.
CIFAR10_TRAIN_IMAGES = 50_000
CIFAR10_TEST_IMAGES = 10_000

SLUG = r"^[a-z0-9][a-z0-9_.-]*$"
Positive = Annotated[StrictFloat, Field(gt=0)]


class Strict(BaseModel):
    # strict: a number must be written as a number and a switch as true/false. Coercion
    # would take `epochs: true` as 1 and `lr: '0.05'` as 0.05 without a word (an int is still
    # a valid float).
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)


# --------------------------------------------------------------------------- recipe


# Parameters weight decay can leave alone: batch norm's scale (gamma) and shift (beta), and the
# biases of convolutions and linear layers (here only the classifier has one).
DecayExempt = Literal["norm_scale", "norm_shift", "bias"]


class Optimizer(Strict):
    """SGD with momentum, the only optimiser the sources use.

    ``weight_decay`` is PyTorch's: ``weight_decay * w`` is added to each gradient, which is the
    gradient of an L2 penalty ``weight_decay / 2 * sum(w^2)`` (a penalty ``1e-4 * sum(w^2)`` as
    in document 004's code is ``weight_decay: 2.0e-4``). ``no_weight_decay`` lists the kinds of
    parameter it does not apply to; by default it applies to every parameter.
    """

    name: Literal["sgd"] = "sgd"
    lr: float = Field(gt=0, le=10, description="initial (peak) learning rate")
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(1e-4, ge=0, lt=1)
    # Lax for the container alone (YAML gives a list), strict for each name.
    no_weight_decay: tuple[DecayExempt, ...] = Field(
        (),
        strict=False,
        description="parameters without weight decay: norm_scale, norm_shift (batch norm's gamma "
        "and beta), bias",
    )

    @field_validator("no_weight_decay")
    @classmethod
    def _each_once_in_order(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        # One order, so that the same choice always has the same config hash.
        if len(set(v)) != len(v):
            raise ValueError(f"no_weight_decay names a kind twice: {list(v)}")
        return tuple(sorted(v))

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> Optimizer:
        # torch.optim.SGD refuses it, so such a run fails when it starts; found at load, it
        # also never trains an epoch in a fused group only to fail the whole group then.
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: true needs momentum (it is 0): give momentum, or "
                             "leave nesterov out")  # fmt: skip
        return self


Unit = Literal["epoch", "iteration"]


class MultiStep(Strict):
    """Multiply the learning rate by ``gamma`` at each milestone (epochs or iterations)."""

    kind: Literal["multistep"]
    milestones: list[Annotated[int, Field(gt=0)]] = Field(min_length=1)
    gamma: float = Field(0.1, gt=0, lt=1)
    unit: Unit = "epoch"

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError(f"milestones must be strictly increasing, got {v}")
        return v


class Cosine(Strict):
    """Cosine annealing from the initial rate to ``min_lr`` over the whole run.

    ``unit: epoch`` changes the rate once per epoch (``CosineAnnealingLR`` stepped per epoch,
    as most CIFAR code does); ``unit: iteration`` changes it every step.
    """

    kind: Literal["cosine"]
    min_lr: float = Field(0.0, ge=0)
    unit: Unit = "epoch"


class Constant(Strict):
    kind: Literal["constant"]


# A schedule must say its kind; a kind it does not have is named at its line (harness.kinds).
Schedule = Annotated[
    Annotated[MultiStep, Tag("multistep")]
    | Annotated[Cosine, Tag("cosine")]
    | Annotated[Constant, Tag("constant")],
    kinds.union("schedule", MultiStep, Cosine, Constant),
]


class Warmup(Strict):
    """A constant lower rate at the start, then back to the schedule.

    Ends after a fixed ``epochs`` or ``iterations``, or once the training error (averaged over
    the last ``window`` iterations) falls below ``until_train_error_below`` percent, as He et al.
    2015 do for ResNet-110 ("until the training error is below 80%, about 400 iterations").
    ``max_iterations`` bounds the threshold form so a net that never learns still moves on.
    """

    lr: float = Field(
        gt=0,
        le=10,
        description="the constant learning rate of the warm-up (He et al.: 0.01), the schedule's "
        "after it; a linear ramp is not a warm-up repro has",
    )
    epochs: int | None = Field(None, gt=0)
    iterations: int | None = Field(None, gt=0)
    until_train_error_below: float | None = Field(None, gt=0, lt=100)
    window: int = Field(50, gt=0, le=10_000)
    max_iterations: int | None = Field(None, gt=0)

    @field_validator("until_train_error_below")
    @classmethod
    def _percent_not_fraction(cls, v: float | None) -> float | None:
        # 0.8 for He et al.'s 80% would hold the warm-up's low rate until the training error
        # is under 0.8%: late in training, or never.
        if v is not None and v <= 1:
            raise ValueError(
                f"until_train_error_below is in percent: {v:g} would keep the warm-up going until "
                f"the training error is below {v:g}%, late in training or never; He et al.'s "
                f"80% is written 80 (a fraction {v:g} is {v * 100:g})"
            )
        return v

    @model_validator(mode="after")
    def _one_end(self) -> Warmup:
        ends = [self.epochs, self.iterations, self.until_train_error_below]
        if sum(e is not None for e in ends) != 1:
            raise ValueError(
                "a warm-up ends in exactly one way: give one of epochs, iterations, "
                "until_train_error_below"
            )
        if self.max_iterations is not None and self.until_train_error_below is None:
            raise ValueError("max_iterations only bounds a warm-up with until_train_error_below")
        return self


@kinds.literal("normalization")
class Normalization(Strict):
    """How pixels are normalised before the network sees them.

    per_pixel_mean: subtract the mean image of the training set (He et al.).
    per_pixel_mean_std: subtract the mean image and divide by the per-pixel std.
    per_channel: subtract ``mean`` and divide by ``std`` per colour channel (values on the
      0..1 scale); computed from the training images when not given.
    none: pixels scaled to 0..1 only.
    """

    kind: Literal["per_pixel_mean", "per_pixel_mean_std", "per_channel", "none"]
    # Lax for the container alone (YAML gives a list), strict for each number.
    mean: tuple[StrictFloat, StrictFloat, StrictFloat] | None = Field(None, strict=False)
    std: tuple[Positive, Positive, Positive] | None = Field(None, strict=False)

    @model_validator(mode="after")
    def _values_only_for_per_channel(self) -> Normalization:
        if self.kind != "per_channel" and (self.mean is not None or self.std is not None):
            raise ValueError(f"mean/std values apply to kind 'per_channel' only, not {self.kind!r}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std, or neither (then both are computed)")
        return self


class Crop(Strict):
    """Pad by ``padding`` pixels (zeros or reflection), then take a random 32x32 crop."""

    padding: int = Field(4, ge=0, le=16)
    fill: Literal["zeros", "reflect"] = "zeros"


class Augmentation(Strict):
    """Random crops and flips of the training images.

    ``draw: per_image`` (what torchvision's transforms do) draws a crop offset and a flip for
    every image; ``per_batch`` draws one offset and one flip decision for a whole batch, as
    document 004's code does.

    By default pixels are augmented, then normalised (torchvision's order): zero padding is
    black, and a per-pixel mean is subtracted where a pixel lands. ``normalize_first`` augments
    the normalised images instead, as document 004's code and He et al.'s Torch code do: zero
    padding is then the training mean (the mean colour, for per-channel normalisation), and a
    per-pixel mean is subtracted where a pixel came from.
    """

    crop: Crop | None = Field(default_factory=Crop)
    flip: bool = Field(True, description="random horizontal flip with probability 0.5")
    draw: Literal["per_image", "per_batch"] = Field(
        "per_image", description="one crop offset and flip per image, or one per batch"
    )
    normalize_first: bool = Field(
        False, description="normalise, then pad, crop and flip (padding is then the mean)"
    )

    @model_validator(mode="after")
    def _something_to_draw(self) -> Augmentation:
        if self.crop is None and not self.flip:
            if self.draw != "per_image":
                raise ValueError(f"draw: {self.draw} needs a crop or a flip to draw")
            if self.normalize_first:
                raise ValueError("normalize_first orders normalisation and a crop or flip: "
                                 "there is neither")  # fmt: skip
        return self


class Recipe(Strict):
    """Everything about training except the architecture and the seed."""

    optimizer: Optimizer
    batch_size: int = Field(gt=0, le=MAX_BATCH_SIZE)
    epochs: int | None = Field(None, gt=0, le=100_000)
    iterations: int | None = Field(None, gt=0, le=100_000_000)
    last_batch: Literal["keep", "drop"] = Field(
        "keep", description="keep: a smaller last batch each epoch (PyTorch default); drop it"
    )
    schedule: Schedule = Field(default_factory=lambda: Constant(kind="constant"))
    warmup: Warmup | None = None
    normalization: Normalization
    augmentation: Augmentation = Field(default_factory=Augmentation)
    validation_images: int = Field(
        0,
        ge=0,
        lt=CIFAR10_TRAIN_IMAGES,
        description="training images held out for validation (5000 = 45k/5k)",
    )
    reported_epoch: Literal["last", "best_validation"] = Field(
        "last",
        description="whose test error the run reports: the last epoch's, or that of the epoch "
        "with the lowest validation error (model selection on the hold-out; document 004's code)",
    )
    train_images: int | None = Field(
        None,
        gt=0,
        le=CIFAR10_TRAIN_IMAGES,
        description="train on a seeded subset of this many images "
        "(smoke studies only: such a run never counts as a reproduction)",
    )
    test_images: int | None = Field(
        None,
        gt=0,
        le=CIFAR10_TEST_IMAGES,
        description="evaluate on the first N test images (smoke studies)",
    )
    note: str | None = None

    @property
    def on_all_data(self) -> bool:
        """Trains on all of CIFAR-10's training set (a validation hold-out aside) and tests on
        all of its test set: only such a recipe's runs can reproduce a claim."""
        return not self.train_images and not self.test_images

    @property
    def nominal_training_images(self) -> int:
        """The images an epoch trains on, on the whole of CIFAR-10."""
        return min(self.train_images or CIFAR10_TRAIN_IMAGES,
                   CIFAR10_TRAIN_IMAGES - self.validation_images)  # fmt: skip

    @model_validator(mode="after")
    def _one_length(self) -> Recipe:
        if (self.epochs is None) == (self.iterations is None):
            raise ValueError("give the training length as exactly one of epochs, iterations")
        return self

    @model_validator(mode="after")
    def _selection_needs_a_hold_out(self) -> Recipe:
        if self.reported_epoch == "best_validation" and not self.validation_images:
            raise ValueError(
                "reported_epoch 'best_validation' selects an epoch on held-out training images: "
                "give validation_images (5000 for a 45k/5k split)"
            )
        return self

    @model_validator(mode="after")
    def _milestones_inside(self) -> Recipe:
        """A milestone at or past the end of training would never apply: a typo, surely."""
        if not isinstance(self.schedule, MultiStep):
            return self
        whole, rest = divmod(self.nominal_training_images, self.batch_size)
        per_epoch = max(1, whole + (1 if rest and self.last_batch == "keep" else 0))
        length = self.iterations or self.epochs * per_epoch  # in iterations
        unit = per_epoch if self.schedule.unit == "epoch" else 1
        late = [m for m in self.schedule.milestones if m * unit >= length]
        if late:
            end = f"{self.epochs} epochs" if self.epochs else f"{self.iterations} iterations"
            if self.iterations and self.schedule.unit == "epoch":
                end += f", about {-(-length // per_epoch)} epochs of batch {self.batch_size}"
            # He et al.'s 32k/48k of 64k written without `unit:`: the default unit, epochs,
            # is the slip, and saying so is the fix.
            hint = ""
            milestones = self.schedule.milestones
            if self.schedule.unit == "epoch" and late == milestones and milestones[-1] < length:
                hint = (
                    "; a schedule counts epochs unless it says otherwise: if these are "
                    "iterations, add `unit: iteration` to it"
                )
            raise ValueError(
                f"milestones {late} ({self.schedule.unit}s) are at or past the end of training "
                f"({end}), so they would never apply{hint}"
            )
        return self


# --------------------------------------------------------------------------- executors


class SlurmSettings(Strict):
    """Defaults for ``repro run --executor slurm``; command-line flags override them."""

    partition: str | None = None
    time_min: int = Field(24 * 60, gt=0, le=30 * 24 * 60, description="time limit per job")
    gpus_per_task: int = Field(1, ge=0, le=16)
    cpus_per_task: int = Field(8, ge=1, le=256)
    mem_gb: int | None = Field(None, gt=0, le=4096)
    constraint: str | None = None
    array_parallelism: int = Field(64, ge=1, le=10_000, description="runs at once")
    account: str | None = None
    qos: str | None = None

    @field_validator("partition", "constraint", "account", "qos")
    @classmethod
    def _names_something(cls, value: str | None) -> str | None:
        # Empty, the job would go where the key's absence sends it, which the study did not say.
        if value is not None and not value.strip():
            raise ValueError("empty: it names nothing; leave the key out for the cluster's "
                             "default, or name one")  # fmt: skip
        return value


class LocalSettings(Strict):
    """Defaults for ``repro run --executor local``."""

    gpus: int | Literal["all"] = Field(1, description="GPUs to use, one run per GPU at a time")
    runs_per_gpu: int = Field(1, ge=RUNS_PER_GPU[0], le=RUNS_PER_GPU[1])

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpu_count(cls, value: Any) -> Any:
        # Checked before the union, so that a wrong value gets one message with what `--gpus`
        # takes too, not one per member of the union; 0 or less would train on no GPU (or
        # a slice of the list from its end) instead of failing.
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value == "all" or (whole and value >= 1):
            return value
        raise ValueError(f"not a number of GPUs; give {GPU_COUNT}")


class ExecutorSettings(Strict):
    """Where a study's runs execute; not part of any run's config (results do not depend
    on it)."""

    local: LocalSettings | None = None
    slurm: SlurmSettings | None = None


# --------------------------------------------------------------------------- study


class Source(Strict):
    title: str
    authors: str
    year: int | None = Field(None, ge=1990, le=2100)
    document: str | None = Field(None, description="path of the source document, if we hold it")
    url: str | None = None
    publication: bool = Field(
        True,
        description="false for the harness's own claims (the smoke test's): listed in their "
        "study, never in the headlines or the scoreboard, which are about published numbers",
    )


class Experiment(Strict):
    """One trainable configuration: a model and a recipe. Runs are experiment x seed."""

    name: str = Field(pattern=SLUG, max_length=80)
    model: ModelSpec
    model_name: str | None = Field(None, description="the short name the study used, if any")
    recipe: Recipe
    recipe_name: str | None = Field(None, description="the named recipe it extends, if any")
    seeds: int | None = Field(None, gt=0, le=100, description="overrides the study's seeds")
    follows: str | None = Field(None, description="id of the source whose recipe this follows")
    note: str | None = None


# "single run" and "median of 5 runs" too: the report prints rules so, and papers write them so.
_RULE = re.compile(r"^(single(?: run)?|(best|median|mean) of (\d+)(?: runs?)?)$")
_NUMBER_WORDS = {w: str(n) for n, w in enumerate(["two", "three", "four", "five", "six", "seven",
                                                  "eight", "nine", "ten"], 2)}  # fmt: skip


@kinds.literal("reporting rule")
class Rule(Strict):
    """How a source turned its runs into the one number it reports."""

    kind: Literal["single", "best", "median", "mean"]
    n: int = Field(ge=1)

    @classmethod
    def parse(cls, text: str) -> Rule:
        m = _RULE.match(text.strip().lower())
        if not m:
            # A slip in the rule's word ('bset of 5') is named as any misspelt kind is.
            first, *rest = text.strip().lower().split() or [""]
            kinds = typing.get_args(cls.model_fields["kind"].annotation)
            last = rest[-1] if rest else ""
            if first in kinds and first != "single":
                # The statistic is right: the count is what is wrong ('median of five').
                n = last if last.isdigit() else _NUMBER_WORDS.get(last, "N")
                near, words = [first], [first, "of", n]
            else:
                near = near_names(first, kinds)
                words = near[:1] if near == ["single"] else near[:1] + rest
            meant = f"; did you mean {' '.join(words)!r}?" if near else ""
            raise ValueError(
                f"reporting rule {text!r} is not one of 'single', 'best of N', "
                f"'median of N', 'mean of N'{meant}"
            )
        if m[1].startswith("single"):
            return cls(kind="single", n=1)
        return cls(kind=m[2], n=int(m[3]))

    def __str__(self) -> str:
        return "single run" if self.kind == "single" else f"{self.kind} of {self.n}"


def _parse_rule(value: Any) -> Any:
    return Rule.parse(value) if isinstance(value, str) else value


_SI = re.compile(r"^(?P<num>\d+(?:\.(?P<dec>\d+))?)\s*(?P<suffix>[kKM])$")
# A percentage with its sign, as a source's table prints it ("7.17%").
_PERCENT = re.compile(r"^(?P<num>\d+(?:\.(?P<dec>\d+))?)\s*%$")


def _fraction_for_percent(metric: Any, value: Any) -> str | None:
    """Why a test error or accuracy looks like a fraction copied as it stands (0.0717 for
    7.17%), or None. Read as percent, it would claim a test error below 1% or an accuracy
    below chance, and every verdict on it would be a confident "not reproduced"."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return None
    if metric == "test_accuracy" and value <= 1:
        what = "a test accuracy far below chance (10%)"
    elif metric in ("test_error", "test_error_at_epoch", "best_test_error") and value < 1:
        what = "a test error below 1%"
    else:
        return None
    return (
        f"{metric} is in percent, so {value:g} claims {value:g}%, {what}: a source's fraction "
        f"{value:g} is written {value * 100:g} here; a value that really is that low is "
        f"written with its sign, value: '{value:g}%'"
    )


class StatedFloat(float):
    """A number as a study file writes it: 6.90 keeps its two decimals, which say how the
    source rounded (YAML, like float, would make it 6.9). Made by the study file's reader."""

    decimals: int | None = None

    @classmethod
    def from_text(cls, value: float, text: str) -> StatedFloat:
        number = cls(value)
        if m := re.fullmatch(r"[-+]?[0-9_]*\.([0-9_]*)", text.strip()):
            number.decimals = len(m[1].replace("_", ""))
        return number


class Claim(Strict):
    """A number a source states about one experiment.

    ``value`` is as stated; parameter counts may be written as "1.7M" or "0.27M", and then
    ``resolution`` records the rounding the source applied (100,000 and 10,000 there).
    ``std`` records a stated spread (mean ± std claims). A parameter count may say what it
    ``counts``: every trainable parameter (the default) or all but batch norm's scale and
    shift (``without_batchnorm``), and is verified that way.
    """

    kind: Literal["value"] = "value"
    id: str | None = Field(None, pattern=SLUG)
    source: str
    where: str = Field(description="table, figure or section in the source")
    experiment: str | None = Field(None, description="the experiment the claim is about")
    checkpoint: str | None = Field(
        None, description="or the released checkpoint it is about (see `checkpoints:`)"
    )
    metric: MetricName
    epoch: int | None = Field(
        None, gt=0, le=100_000, description="for test_error_at_epoch: after which epoch (1, 2, ...)"
    )
    value: float
    # How many decimals the source gave (6.90: two), from the file's text; None where unknown.
    decimals: int | None = Field(None, ge=0, le=12)
    resolution: float | None = Field(None, gt=0)
    std: float | None = Field(None, ge=0)
    counts: Literal["all", "without_batchnorm"] | None = Field(
        None, description="for params: what the source counts (default: all)"
    )
    rule: Annotated[Rule, Field(default_factory=lambda: Rule(kind="single", n=1))]
    hardware: str | None = Field(None, description="where a speed was measured")
    pool_executions: bool | None = Field(
        None, description="pool runs of any precision and pipeline (default: the study's)"
    )
    note: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        value = data.get("value")
        if isinstance(value, StatedFloat) and value.decimals is not None:
            data.setdefault("decimals", value.decimals)
        elif isinstance(value, int) and not isinstance(value, bool):
            data.setdefault("decimals", 0)
        if isinstance(value, str) and (m := _SI.match(value.strip())):
            scale = {"k": 1e3, "K": 1e3, "M": 1e6}[m["suffix"]]
            decimals = len(m["dec"] or "")
            data["value"] = round(float(m["num"]) * scale)
            data.setdefault("resolution", scale / 10**decimals)
        metric = data.get("metric")
        percent = isinstance(metric, str) and metric in METRICS and METRICS[metric].unit == "%"
        if percent and isinstance(value, str) and (m := _PERCENT.match(value.strip())):
            data["value"] = float(m["num"])
            data.setdefault("decimals", len(m["dec"] or ""))
        elif why := _fraction_for_percent(metric, value):
            raise ValueError(why)
        return data

    # A field's own validator, so that a rule it cannot read is named at `rule:`, with what was
    # given there (in the claim's validator, the whole claim was the given).
    @field_validator("rule", mode="before")
    @classmethod
    def _rule_in_words(cls, value: Any) -> Any:
        return _parse_rule(value)

    @field_validator("std")
    @classmethod
    def _a_spread(cls, std: float | None) -> float | None:
        # Seeds never agree exactly: a source's "± 0" is a spread rounded away, and as the
        # spread a verdict's tolerance is built from it would be a tolerance of zero.
        if std == 0:
            raise ValueError(
                "a stated spread of 0 would make a tolerance of zero, so that any difference "
                "decided the verdict: leave `std` out (the metric's assumed seed noise is used) "
                "or give the spread the source states"
            )
        return std

    @model_validator(mode="after")
    def _metric_needs(self) -> Claim:
        if (self.experiment is None) == (self.checkpoint is None):
            raise ValueError("a claim is about one experiment or one checkpoint: give exactly "
                             "one of `experiment:`, `checkpoint:`")  # fmt: skip
        if self.metric == "sec_per_epoch" and not self.hardware:
            raise ValueError("a sec_per_epoch claim must say the hardware it was measured on")
        if METRICS[self.metric].unit == "%" and not 0 <= self.value <= 100:
            raise ValueError(f"{self.metric} is a percentage; {self.value} is not in 0..100")
        if self.metric == "params" and self.value != int(self.value):
            raise ValueError("a parameter count is a whole number (or write it as '1.7M')")
        if self.counts is not None and self.metric != "params":
            raise ValueError(f"only a params claim says what it counts, not {self.metric}")
        _check_epoch(self.metric, self.epoch)
        return self

    def stated(self) -> str:
        """The value as the source wrote it: 6.90 stays 6.90."""
        return f"{self.value:g}" if self.decimals is None else f"{self.value:.{self.decimals}f}"

    @property
    def subject(self) -> str:
        """The experiment or checkpoint the claim is about."""
        return self.experiment if self.experiment is not None else self.checkpoint

    @property
    def label(self) -> str:
        return f"{self.subject} {metric_label(self.metric, self.epoch)}"


def _check_epoch(metric: str, epoch: int | None) -> None:
    if metric == "test_error_at_epoch" and epoch is None:
        raise ValueError("test_error_at_epoch needs `epoch:`, the epoch the source read it at")
    if metric != "test_error_at_epoch" and epoch is not None:
        raise ValueError(f"`epoch:` is only for test_error_at_epoch, not {metric}")


class OrderingClaim(Strict):
    """A qualitative claim: a metric rises or falls along a list of experiments.

    "plain-56 ends with higher training loss than plain-20" is
    ``metric: final_train_loss, experiments: [plain20, plain56], direction: increasing``.
    """

    kind: Literal["ordering"]
    id: str | None = Field(None, pattern=SLUG)
    source: str
    where: str
    statement: str = Field(description="the claim in the source's words")
    metric: MetricName
    epoch: int | None = Field(
        None, gt=0, le=100_000, description="for test_error_at_epoch: after which epoch (1, 2, ...)"
    )
    experiments: list[str] = Field(min_length=2)
    direction: Literal["increasing", "decreasing"]
    pool_executions: bool | None = Field(
        None, description="pool runs of any precision and pipeline (default: the study's)"
    )
    note: str | None = None

    @model_validator(mode="after")
    def _metric_needs(self) -> OrderingClaim:
        _check_epoch(self.metric, self.epoch)
        return self


# Read as a value claim, as it once was, `kind: ordreing` was told its statement, experiments
# and direction were unknown keys, and not a word about its kind (harness.kinds). A claim
# without `kind:` states a value, unless its keys are an ordering claim's alone: then the
# missing kind is the mistake to name.
AnyClaim = Annotated[
    Annotated[Claim, Tag("value")] | Annotated[OrderingClaim, Tag("ordering")],
    kinds.union("claim", Claim, OrderingClaim, default="value", default_means="states a value"),
]


# --------------------------------------------------------------------------- checkpoints

# Where a template of a renaming rule refers to a named group of its pattern, optionally
# shifted by a whole number: "{stage-1}" is the group "stage" minus one.
TEMPLATE_FIELD = re.compile(r"\{(?P<group>[A-Za-z_][A-Za-z0-9_]*)(?P<shift>[+-]\d+)?\}")
SHA256 = r"^[0-9a-f]{64}$"
# Conventions of other code that change the function, not only the names; each is implemented
# and documented in harness.checkpoints (TRANSFORMS) and proven equal in tests/test_evaluate.py.
Transform = Literal["option_a_both_sides"]
# What a released checkpoint can be judged on: the test set and the architecture. Metrics of
# training (losses, curves, seconds) were never measured by evaluating weights.
CHECKPOINT_METRICS = ("test_error", "test_accuracy", "params")


class WeightRule(Strict):
    """One renaming rule: a source tensor whose name (after ``strip_prefix``) matches
    ``pattern`` in full gets the name ``to``, in which ``{group}`` (or ``{group-1}``) is a named
    group of the pattern. Names may address a residual unit as ``stages.S.U`` (stage S from 0,
    unit U of that stage from 0), which the loader turns into the zoo's running unit index."""

    pattern: str = Field(min_length=1)
    to: str = Field(min_length=1)

    @model_validator(mode="after")
    def _template_fits_the_pattern(self) -> WeightRule:
        try:
            compiled = re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"pattern {self.pattern!r} is not a regular expression: "
                             f"{exc}") from None  # fmt: skip
        groups = set(compiled.groupindex)
        unknown = [m["group"] for m in TEMPLATE_FIELD.finditer(self.to) if m["group"] not in groups]
        if unknown:
            have = ", ".join(sorted(groups)) or "none"
            raise ValueError(
                f"`to` uses {{{unknown[0]}}}, which is not a named group of the pattern "
                f"(its named groups: {have}; write (?P<name>...))"
            )
        rest = TEMPLATE_FIELD.sub("", self.to)
        if "{" in rest or "}" in rest:
            raise ValueError(f"`to` {self.to!r} has a brace that is not {{group}} or {{group-1}}")
        return self


class WeightLayout(Strict):
    """How one source stores its weights: where the tensors sit in the file, how they are
    named, and the declared transforms its architecture needs. One layout serves every
    checkpoint of that source; the rules are data, not code per checkpoint."""

    description: str | None = None
    state_dict_key: str | None = Field(
        "state_dict",
        description="the key of the file's top-level mapping that holds the tensors "
        "(null: the file is the mapping of tensors itself)",
    )
    strip_prefix: str | None = Field(
        None, description="removed from every name first ('module.' of torch.nn.DataParallel)"
    )
    rules: list[WeightRule] = Field(min_length=1, description="the first matching rule applies")
    transforms: list[Transform] = Field(default_factory=list)


class CheckpointSpec(Strict):
    """A released set of weights: the model it is, where it comes from, how to read it, and
    the normalisation it was trained with (which the test images get too)."""

    name: str = Field(pattern=SLUG, max_length=80)
    model: ModelSpec
    model_name: str | None = Field(None, description="the short name the study used, if any")
    source: str | None = Field(None, description="id of the source that released it")
    url: str | None = Field(None, description="where it is downloaded from (http, https, file)")
    sha256: str | None = Field(None, pattern=SHA256, description="of the file, 64 hex digits")
    path: str | None = Field(
        None, description="a local file instead of a download (relative to the study file)"
    )
    layout: str = Field(description="the name of one of the study's `layouts:`")
    normalization: Normalization
    note: str | None = None

    @model_validator(mode="after")
    def _one_origin(self) -> CheckpointSpec:
        if (self.url is None) == (self.path is None):
            raise ValueError("a checkpoint comes from one place: give `url:` (with `sha256:`) "
                             "or `path:`")  # fmt: skip
        if self.url is not None and self.sha256 is None:
            raise ValueError("a downloaded checkpoint needs `sha256:` to be checked against")
        if self.url is not None and not re.match(r"^(https?|file)://", self.url):
            raise ValueError(f"url {self.url!r} is not an http(s):// or file:// address")
        return self


class Study(Strict):
    name: str = Field(pattern=SLUG, max_length=80)
    description: str
    sources: dict[str, Source] = Field(min_length=1)
    seeds: int = Field(1, gt=0, le=100, description="runs per experiment, seeds 0..N-1")
    recipes: dict[str, Recipe] = Field(
        default_factory=dict, description="named recipes that experiments use or extend"
    )
    experiments: list[Experiment] = Field(default_factory=list)
    layouts: dict[str, WeightLayout] = Field(
        default_factory=dict, description="how sources name their released weights"
    )
    checkpoints: list[CheckpointSpec] = Field(
        default_factory=list, description="released weights to evaluate (`repro evaluate`)"
    )
    claims: list[AnyClaim] = Field(default_factory=list)
    pool_executions: bool = Field(
        False,
        description="judge runs of different precision (bf16, fp32) and pipeline (fast, "
        "canonical) together; by default each claim uses runs of one execution",
    )
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    # Cross-references (claims to experiments and sources, unique names, enough seeds for a
    # reporting rule) are checked by harness.studyfile, where each problem gets its own path.

    @model_validator(mode="after")
    def _something_to_do(self) -> Study:
        if not self.experiments and not self.checkpoints:
            raise ValueError("a study declares at least one experiment (to train) or one "
                             "checkpoint (to evaluate)")  # fmt: skip
        return self

    def experiment(self, name: str) -> Experiment:
        for e in self.experiments:
            if e.name == name:
                return e
        raise KeyError(name)

    def checkpoint(self, name: str) -> CheckpointSpec:
        for c in self.checkpoints:
            if c.name == name:
                return c
        raise KeyError(name)

    def seeds_of(self, experiment: Experiment) -> int:
        return experiment.seeds or self.seeds

    def pools_executions(self, claim: Claim | OrderingClaim) -> bool:
        """Whether a claim's verdict may pool runs of different precision and pipeline."""
        return self.pool_executions if claim.pool_executions is None else claim.pool_executions

"""From a study and the command line's overrides to the list of runs to do.

A run is (experiment, seed) with its *resolved config*: the model spec, the recipe after
overrides, and the seed. The config's hash identifies the run in the store: re-running a
study skips runs whose directory holds the same hash and supersedes ones that do not.

Overrides for trying things (``--epochs``, ``--subset``, ``--smoke``) change the config, are
stored under a labelled directory (``seed-0~smoke``) and never count as reproductions.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.near import listing, near_names
from harness.only import split_only
from harness.schedule import batches_per_epoch
from harness.schema import Experiment, Recipe, Study, Warmup

FORMAT = 1  # bump when the meaning of a stored config changes

# Recipe fields added to the schema after format 1, as paths into the recipe. A run's hash
# covers its whole dumped config, so a new field would move the hash of every run already
# stored (and of the published ones) although nothing about those runs changed. Each is
# therefore left out of the config while it holds its default, which is what every earlier
# run did; set to anything else, it enters the config and the hash. Add new fields here.
RECIPE_FIELDS_ADDED_AFTER_FORMAT_1: tuple[tuple[str, ...], ...] = (
    ("optimizer", "no_weight_decay"),
    ("reported_epoch",),
    ("augmentation", "draw"),
    ("augmentation", "normalize_first"),
)

# --smoke: a few steps of every experiment on a small subset, through the same code path.
# The subset is SMOKE_ITERATIONS batches, so one epoch of it is that many steps.
SMOKE_TEST_IMAGES = 500
SMOKE_VALIDATION_IMAGES = 100
SMOKE_ITERATIONS = 4


@dataclass(frozen=True)
class Overrides:
    only: tuple[str, ...] = ()
    seeds: int | None = None
    epochs: int | None = None
    subset: int | None = None
    smoke: bool = False

    @property
    def label(self) -> str:
        """Directory suffix and report label; empty for a faithful run."""
        parts = []
        if self.smoke:
            parts.append("smoke")
        if self.epochs is not None:
            parts.append(f"epochs{self.epochs}")
        if self.subset is not None:
            parts.append(f"subset{self.subset}")
        return "-".join(parts)


@dataclass(frozen=True)
class RunPlan:
    study: str
    experiment: Experiment
    seed: int
    recipe: Recipe  # after overrides
    label: str  # "" for a faithful run
    config: dict[str, Any] = field(repr=False)
    hash: str = ""
    study_file: str | None = None  # where the study came from, for the report (not hashed)

    @property
    def name(self) -> str:
        suffix = f"~{self.label}" if self.label else ""
        return f"{self.experiment.name}/seed-{self.seed}{suffix}"

    def directory(self, results: Path) -> Path:
        return results / self.study / self.name

    @property
    def counts_as_reproduction(self) -> bool:
        """Only runs of the recipe as declared, on all the data, can reproduce a claim."""
        return not self.label and self.recipe.on_all_data


class PlanError(Exception):
    """The command line asks for something the study does not have."""


def plan(
    study: Study, overrides: Overrides = Overrides(), study_file: str | None = None
) -> list[RunPlan]:
    names = [e.name for e in study.experiments]
    unknown = [n for n in overrides.only if n not in names]
    if unknown:
        raise PlanError(
            f"--only {', '.join(unknown)}: study {study.name!r} has no such experiment"
            f"{_hint(study.experiments, unknown)}; it has: {listing(names, quote=False)}"
        )
    runs = []
    for exp in study.experiments:
        if overrides.only and exp.name not in overrides.only:
            continue
        recipe = apply_overrides(exp.recipe, overrides)
        seeds = overrides.seeds or study.seeds_of(exp)
        for seed in range(seeds):
            config = resolved_config(exp, recipe, seed, overrides.label)
            runs.append(
                RunPlan(
                    study=study.name,
                    experiment=exp,
                    seed=seed,
                    recipe=recipe,
                    label=overrides.label,
                    config=config,
                    hash=config_hash(config),
                    study_file=study_file,
                )
            )
    return runs


def only_by_study(studies: list[Study], only: tuple[str, ...]) -> list[tuple[str, ...] | None]:
    """`repro run --only` over several studies: each study's experiments among those named,
    None for a study that has none of them (harness.only)."""
    experiments = [e for s in studies for e in s.experiments]
    return split_only(only, [(s.name, [e.name for e in s.experiments]) for s in studies],
                      "experiment", lambda unknown: _hint(experiments, unknown))  # fmt: skip


def _hint(experiments: list[Experiment], unknown: list[str]) -> str:
    """A model name given for an experiment: the experiments that use it; else the closest."""
    hints = []
    for name in unknown:
        using = [e.name for e in experiments
                 if e.model_name == name or e.model_name == name.lower()]  # fmt: skip
        if using:
            hints.append(f"{name} is a model; the experiments that train it: {', '.join(using)}")
        elif close := near_names(name, [e.name for e in experiments], n=2):
            hints.append(f"did you mean {' or '.join(close)}?")
    return f" ({'; '.join(hints)})" if hints else ""


def resolved_config(exp: Experiment, recipe: Recipe, seed: int, label: str) -> dict[str, Any]:
    """Everything that determines the run's result; notes and names are left out."""
    return {
        "format": FORMAT,
        "model": exp.model.model_dump(mode="json"),
        "recipe": _recipe_config(recipe),
        "seed": seed,
        "overrides": label,
    }


def _recipe_config(recipe: Recipe) -> dict[str, Any]:
    """The recipe as hashed: without its note, and without fields added after format 1 while
    they hold their defaults."""
    dumped = recipe.model_dump(mode="json", exclude={"note"})
    for path in RECIPE_FIELDS_ADDED_AFTER_FORMAT_1:
        owner: Any = recipe
        for part in path[:-1]:
            owner = getattr(owner, part)
        if owner is None:
            continue
        default = type(owner).model_fields[path[-1]].get_default(call_default_factory=True)
        if getattr(owner, path[-1]) == default:
            container = dumped
            for part in path[:-1]:
                container = container[part]
            del container[path[-1]]
    return dumped


def config_hash(config: dict[str, Any]) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def apply_overrides(recipe: Recipe, o: Overrides) -> Recipe:
    """The recipe with --smoke / --subset / --epochs applied.

    A shorter run keeps the shape of the recipe: milestones, warm-up lengths and iteration
    budgets are scaled by the same factor, so a 3-epoch trial still decays its learning rate.
    Where a point counted in epochs does not land on a whole epoch of the trial, rounding it
    would move it (a 5-epoch warm-up of 160 epochs is 0.3 epochs of a 10-epoch trial, and
    rounded up it is 10% of the trial at the warm-up's rate; in a 1-epoch trial it is the
    whole trial, milestones 80 and 120 both its end): then the warm-up and the schedule are
    counted in iterations instead, so the trial runs the whole shape in miniature, each change
    at the recipe's fraction of it within a step (see :func:`trial_shape`). A trial whose
    points all land on whole epochs keeps the recipe's units (and the config it always had).
    """
    data: dict[str, Any] = {}
    if o.smoke:
        smoke_images = SMOKE_ITERATIONS * recipe.batch_size
        data["train_images"] = min(recipe.train_images or smoke_images, smoke_images)
        data["test_images"] = min(recipe.test_images or SMOKE_TEST_IMAGES, SMOKE_TEST_IMAGES)
        if recipe.validation_images:
            data["validation_images"] = min(recipe.validation_images, SMOKE_VALIDATION_IMAGES)
    if o.subset is not None:
        data["train_images"] = o.subset
    if data:
        recipe = recipe.model_copy(update=data)
    if o.smoke:
        recipe = _scaled(recipe, min(1.0, SMOKE_ITERATIONS / nominal_iterations(recipe)))
    if o.epochs is not None:
        recipe = _scaled(recipe, o.epochs / _epochs(recipe))
    return recipe


def nominal_batches_per_epoch(recipe: Recipe) -> int:
    """Batches per epoch on full CIFAR-10 (for scaling lengths and drawing schedules; training
    counts the data it actually has)."""
    return max(1, batches_per_epoch(recipe.nominal_training_images, recipe.batch_size,
                                    recipe.last_batch == "drop"))  # fmt: skip


def nominal_iterations(recipe: Recipe) -> int:
    """The recipe's length in steps on full CIFAR-10 (whichever unit it was written in)."""
    return recipe.iterations or recipe.epochs * nominal_batches_per_epoch(recipe)


def _epochs(recipe: Recipe) -> float:
    return recipe.epochs or recipe.iterations / nominal_batches_per_epoch(recipe)


def _scaled(recipe: Recipe, factor: float) -> Recipe:
    if factor == 1.0:
        return recipe

    def scale(n: int) -> int:
        return max(1, round(n * factor))

    update: dict[str, Any] = {}
    if recipe.epochs:
        update["epochs"] = scale(recipe.epochs)
    else:
        update["iterations"] = scale(recipe.iterations)
    sched = recipe.schedule
    if sched.kind == "multistep":
        milestones = sorted({scale(m) for m in sched.milestones})
        update["schedule"] = sched.model_copy(update={"milestones": milestones})
    if recipe.warmup is not None:
        update["warmup"] = _scaled_warmup(recipe.warmup, scale)
    trial = recipe.model_copy(update=update)
    if _keeps_its_shape(recipe, trial) and _lands_on_whole_epochs(recipe, factor):
        return trial
    return _in_iterations(recipe, trial, factor)


def _lands_on_whole_epochs(recipe: Recipe, factor: float) -> bool:
    """Whether every point of the recipe counted in epochs (a warm-up's end, a multistep
    schedule's milestones) falls on a whole epoch of the trial, so that counting the trial in
    epochs moves none of them. Points counted in iterations move by under a step anyway."""
    points = []
    if (w := recipe.warmup) is not None and w.epochs is not None:
        points.append(w.epochs)
    sched = recipe.schedule
    if sched.kind == "multistep" and sched.unit == "epoch":
        points += sched.milestones
    return all(abs(p * factor - round(p * factor)) < 1e-9 * p for p in points)


def _scaled_warmup(w: Warmup, scale) -> Warmup:
    update = {}
    for key in ("epochs", "iterations", "max_iterations"):
        if getattr(w, key) is not None:
            update[key] = scale(getattr(w, key))
    return w.model_copy(update=update)


def _changes(recipe: Recipe) -> list[int]:
    """The iterations (0-based) where the rate of a fixed warm-up and of a multistep
    schedule changes, on full CIFAR-10, in order of the recipe's (warm-up end first)."""
    per_epoch = nominal_batches_per_epoch(recipe)
    points = []
    if (w := recipe.warmup) is not None and (w.epochs or w.iterations):
        points.append(w.epochs * per_epoch if w.epochs else w.iterations)
    sched = recipe.schedule
    if sched.kind == "multistep":
        unit = per_epoch if sched.unit == "epoch" else 1
        points += [m * unit for m in sched.milestones]
    return points


def _keeps_its_shape(recipe: Recipe, trial: Recipe) -> bool:
    """Whether the trial, in the recipe's own units, changes its rate at every point where
    the recipe does, in the same order, before its end: a warm-up that ends, then each
    milestone; a cosine stepped per epoch has at least two epochs to fall over."""
    points, length = _changes(trial), nominal_iterations(trial)
    if len(points) != len(_changes(recipe)) or any(p >= length for p in points):
        return False
    if _ordered(_changes(recipe)) and not _ordered(points):
        return False
    sched = trial.schedule
    return not (sched.kind == "cosine" and sched.unit == "epoch" and _epochs(trial) < 2)


def _ordered(points: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(points))


def _in_iterations(recipe: Recipe, trial: Recipe, factor: float) -> Recipe:
    """The trial with its warm-up and schedule counted in iterations, each change at the
    same fraction of the trial as of the recipe (within a step), and inside it."""
    per_epoch, length = nominal_batches_per_epoch(recipe), nominal_iterations(trial)

    def at(n: int) -> int:
        return min(length - 1, max(1, round(n * factor)))

    update: dict[str, Any] = {}
    sched = recipe.schedule
    if sched.kind != "constant":
        unit = per_epoch if sched.unit == "epoch" else 1
        changed: dict[str, Any] = {"unit": "iteration"}
        if sched.kind == "multistep":
            changed["milestones"] = sorted({at(m * unit) for m in sched.milestones})
        update["schedule"] = sched.model_copy(update=changed)
    if (w := recipe.warmup) is not None and (w.epochs or w.iterations):
        end = at(w.epochs * per_epoch if w.epochs else w.iterations)
        update["warmup"] = trial.warmup.model_copy(update={"epochs": None, "iterations": end})
    return trial.model_copy(update=update)


def trial_shape(recipe: Recipe) -> str:
    """The learning rate of a (trial) recipe over its run, in words and iterations on full
    CIFAR-10: what `repro run` says a trial trains at."""
    per_epoch, length = nominal_batches_per_epoch(recipe), nominal_iterations(recipe)
    epochs = -(-length // per_epoch)
    parts = [f"{epochs} epoch{'s' if epochs != 1 else ''} of {per_epoch} iterations"
             if recipe.epochs else f"{length} iterations"]  # fmt: skip
    lr, w = recipe.optimizer.lr, recipe.warmup
    if w is not None:
        if w.epochs or w.iterations:
            end = w.epochs * per_epoch if w.epochs else w.iterations
            end = min(end, length)
            span = "iteration 1" if end == 1 else f"iterations 1-{end}"
            parts.append(f"warm-up at lr {w.lr:g} for {span}")
        else:
            parts.append(f"warm-up at lr {w.lr:g} until the training error is below "
                         f"{w.until_train_error_below:g}%")  # fmt: skip
    sched = recipe.schedule
    if sched.kind == "multistep":
        unit = per_epoch if sched.unit == "epoch" else 1
        steps = ", ".join(f"x{sched.gamma:g} from iteration {m * unit + 1}"
                          for m in sched.milestones)  # fmt: skip
        parts.append(f"lr {lr:g}, {steps}")
    elif sched.kind == "cosine":
        stepped = "each epoch" if sched.unit == "epoch" else "each iteration"
        parts.append(f"lr {lr:g} falling to {sched.min_lr:g} on a cosine, stepped {stepped}")
    else:
        parts.append(f"lr {lr:g} throughout")
    return "; ".join(parts)

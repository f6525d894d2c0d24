"""The evidence queue: what the next GPU slot trains, in order of value per GPU minute.

One YAML file (``queue.yaml`` at the top of the repository) lists items; an item is a study,
the experiments of it to train (all when omitted), how many seeds, how many of its runs
share one GPU, and whether they train fused (``fuse``). ``repro queue`` trains the items in
order within a time budget; ``repro status`` shows where each item stands and how many GPU
minutes it still needs.

GPU minutes are estimates and say so: an item's training FLOPs (6 x forward MACs per image,
``harness.flops``, times the images its recipe trains on) over the whole-GPU rate the file
states, which is itself a measured figure once a slot has measured one. A training is costed
once: a run whose twin in another study is complete, or is trained by an earlier item, costs
nothing, since it adopts that training (``harness.twins``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness import store, twins
from harness.choices import RUNS_PER_GPU, FuseChoiceError, parse_fuse
from harness.copies import displaced_runs
from harness.flops import TRAIN_FLOPS_PER_MAC, forward_macs
from harness.near import near_names
from harness.plan import (
    Overrides,
    PlanError,
    RunPlan,
    nominal_batches_per_epoch,
    nominal_iterations,
    plan,
)
from harness.plural import plural
from harness.schema import Study
from harness.studyfile import StudyError, load_study, yaml_problems

Echo = Callable[[str], None]


class QueueError(Exception):
    """A queue file that cannot be used; the message says where and what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


FUSE_CHOICES = "not a fuse setting: give auto, off or a group size such as 4"
FUSE_WORDS = ("auto", "off")


class QueueItem(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    study: str = Field(description="study file, relative to the queue file")
    only: tuple[str, ...] = ()
    seeds: int | None = Field(None, ge=1, le=100)
    runs_per_gpu: int = Field(1, ge=RUNS_PER_GPU[0], le=RUNS_PER_GPU[1])
    # `repro run --fuse` for this item's runs: 1 (off), "auto" or a group size; None: what
    # `repro queue --fuse` says. The item wins: it is written for its own runs (an item whose
    # speed claims need solo timings says `fuse: off` whatever the slot fuses).
    fuse: int | str | None = Field(None, description="auto, off or a group size such as 4")
    why: str

    @field_validator("fuse", mode="before")
    @classmethod
    def _fuse_choice(cls, value: Any) -> int | str | None:
        if value is None:
            return None
        if value is False:  # YAML 1.1 reads a bare `off` (or `no`) as false
            return 1
        if isinstance(value, bool):
            raise ValueError(FUSE_CHOICES)
        try:
            return parse_fuse(str(value))
        except FuseChoiceError:
            # A slip in a setting's word ('atuo') is named as a misspelt kind is.
            near = near_names(str(value).strip().lower(), FUSE_WORDS)
            meant = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(FUSE_CHOICES + meant) from None


class QueueFile(_Strict):
    achieved_tflops: float = Field(gt=0, description="whole-GPU training rate for estimates")
    rate_source: str
    items: list[QueueItem] = Field(min_length=1)


@dataclass(frozen=True)
class Queue:
    path: Path
    rate_tflops: float
    rate_source: str
    items: tuple[QueueItem, ...]
    # The study files read so far, each once for the queue's life (one command): a queue
    # names a study in several items, and load_queue, standing and summary each walk every
    # item; reading the studies again cost `repro status` 0.2 s a call, a second or so on a
    # large queue (benchmarks/report-scale-2026-11-27.md).
    studies: dict[Path, Study] = field(default_factory=dict, compare=False, repr=False)

    def study_file(self, item: QueueItem) -> Path:
        return self.path.parent / item.study

    def plans(self, item: QueueItem) -> list[RunPlan]:
        """The item's runs, its study read once for the queue's life."""
        study_file = self.study_file(item)
        if study_file not in self.studies:
            self.studies[study_file] = load_study(study_file)
        study = self.studies[study_file]
        return plan(study, Overrides(only=item.only, seeds=item.seeds), str(study_file))


def load_queue(path: str | Path) -> Queue:
    """Read and check a queue file; a QueueError lists its problems as a study's are listed
    (file:line: field: what is wrong, given, allowed)."""
    path = Path(path)
    if not path.exists():
        raise QueueError(f"{path}: no such queue file")
    problems, parsed, _ = yaml_problems(path, QueueFile, "queue")
    if problems:
        raise QueueError("\n".join(str(p) for p in problems))
    queue = Queue(path, parsed.achieved_tflops, parsed.rate_source, tuple(parsed.items))
    names = Counter(i.name for i in queue.items)
    if dupes := [n for n, k in names.items() if k > 1]:
        raise QueueError(f"{path}: item names must differ; repeated: {', '.join(dupes)}")
    for item in queue.items:
        try:
            queue.plans(item)
        except StudyError as exc:
            raise QueueError(f"{path}: item {item.name}: its study has problems:\n{exc}") from None
        except PlanError as exc:  # `only` names an experiment the study lacks
            raise QueueError(f"{path}: item {item.name}: {exc}") from None
    return queue


# --------------------------------------------------------------------------- estimates


@cache
def _macs(spec_json: str) -> int:
    from harness.zoo import ModelSpec

    return forward_macs(ModelSpec.model_validate_json(spec_json))


def training_flops(p: RunPlan) -> float:
    """FLOPs of the whole run: 6 x MACs per image x images seen over the schedule."""
    images = nominal_iterations(p.recipe) * p.recipe.batch_size
    return TRAIN_FLOPS_PER_MAC * _macs(p.experiment.model.model_dump_json()) * images


@dataclass(frozen=True)
class ItemStanding:
    item: QueueItem
    runs: int
    ended: int  # complete or diverged, with the config the study plans now
    started: int  # with at least one finished epoch, not ended
    epochs_done: int
    epochs_total: int
    pflop_total: float
    pflop_left: float
    gpu_minutes_left: float
    twinned: int = 0  # not ended, but a complete twin in another study did the training
    elsewhere: int = 0  # costed in an earlier item, which trains the same run or its twin
    # Made by another study file of this study's name that still plans it (harness.copies),
    # or planned otherwise by an earlier item from such a file (clashes): `repro queue`
    # refuses to train over it, so no twin is adopted for it either; costed whole, as
    # --supersede trains it.
    refused: int = 0

    @property
    def done(self) -> bool:
        return self.ended == self.runs


@dataclass
class _Tally:
    ended: int = 0
    started: int = 0
    twinned: int = 0
    elsewhere: int = 0
    refused: int = 0
    epochs_done: int = 0
    epochs_total: int = 0
    flops_total: float = 0.0
    flops_left: float = 0.0


def standing(queue: Queue, results: Path) -> list[ItemStanding]:
    """Where each item stands. A training is costed once: a run costs nothing when a complete
    twin in another study did its training (`repro queue` adopts it, harness.twins, when it
    ran in the same precision and pipeline on the same data: an estimate), or when an earlier
    item lists the same run or its twin (trained there first, then adopted)."""
    out = []
    planned: dict[str, set[Path]] = {}  # config hash -> directories of earlier items' runs
    clashing = {(c.item, c.plan.name) for c in clashes(queue, queue.items, results)}
    for item in queue.items:
        plans = queue.plans(item)
        t = _Tally()
        # As `repro queue` refuses them before any item trains (runner.refuse_displacing,
        # clashes).
        overrides = Overrides(only=item.only, seeds=item.seeds)
        refused = {d.plan.name for d in displaced_runs(plans, results, overrides)}
        refused |= {name for it, name in clashing if it == item.name}
        for p in plans:
            _count(p, results, planned, t, refused=p.name in refused)
        for p in plans:
            planned.setdefault(p.hash, set()).add(p.directory(results))
        out.append(
            ItemStanding(
                item,
                len(plans),
                t.ended,
                t.started,
                t.epochs_done,
                t.epochs_total,
                t.flops_total / 1e15,
                t.flops_left / 1e15,
                t.flops_left / (queue.rate_tflops * 1e12) / 60,
                t.twinned,
                t.elsewhere,
                t.refused,
            )
        )
    return out


def _count(p: RunPlan, results: Path, planned: dict[str, set[Path]], t: _Tally,
           refused: bool = False) -> None:  # fmt: skip
    from harness.runner import run_to_go_on_from  # torch: not for `repro validate`

    flops = training_flops(p)
    epochs = _nominal_epochs(p)
    run_dir = p.directory(results)
    # As `repro run` goes on from it: a run it moves to .superseded/ (made with another config
    # than the study's now, or misplaced) is to train again, however it ended; a damaged one
    # as its repair leaves it.
    state = run_to_go_on_from(p, run_dir)
    t.flops_total += flops
    t.epochs_total += epochs
    if state.status in store.FINAL:
        t.ended += 1
        t.epochs_done += epochs
        return
    if refused:  # not trained, nor adopted from a twin, until --supersede lets it go
        t.refused += 1
        t.flops_left += flops
        return
    if twins.complete_twins(p, results):
        t.twinned += 1
        t.epochs_done += epochs
        return
    finished = min(state.epochs_done, epochs)
    t.started += finished > 0
    t.epochs_done += finished
    if _trained_earlier(p, run_dir, planned):
        t.elsewhere += 1
    else:
        t.flops_left += flops * (1 - finished / epochs)


@dataclass(frozen=True)
class Clash:
    """A run that a later item plans in the run directory an earlier item plans, with
    another config, from another study file of the same study name."""

    plan: RunPlan
    item: str
    earlier: str
    earlier_file: str


def clashes(queue: Queue, items: tuple[QueueItem, ...] | list[QueueItem],
            results: Path) -> list[Clash]:  # fmt: skip
    """The runs of ``items`` (in order) that an earlier one of them plans otherwise from a
    copy of its study that kept its name: trained in turn, the later item would find the
    earlier's fresh run made by a file that still plans it, which `repro run` refuses
    (harness.copies), midway. An empty store shows no such run yet, so the queue looks at
    the plans themselves."""
    seen: dict[Path, tuple[str, str, str]] = {}  # run directory -> (hash, study file, item)
    found = []
    for item in items:
        study_file = str(queue.study_file(item).resolve())
        for p in queue.plans(item):
            where = p.directory(results)
            if where not in seen:
                seen[where] = (p.hash, study_file, item.name)
                continue
            digest, other_file, other = seen[where]
            if digest != p.hash and other_file != study_file:
                found.append(Clash(p, item.name, other, other_file))
    return found


def clash_refusal(queue: Queue, found: list[Clash]) -> str:
    """What `repro queue` says as it refuses ``found`` (clashes) before training."""
    first = found[0]
    pair = [c for c in found if (c.item, c.earlier) == (first.item, first.earlier)]
    later_file = str(queue.study_file(next(i for i in queue.items if i.name == first.item)))
    runs = ", ".join(f"{c.plan.study}/{c.plan.name}" for c in pair[:5])
    runs += f", and {len(pair) - 5} more" if len(pair) > 5 else ""
    more = len(found) - len(pair)
    others = f" ({plural(more, 'other run')} of other items too)" if more else ""
    return (
        f"{queue.path}: items {first.earlier} and {first.item} plan the same "
        f"{plural(len(pair), 'run')} with different configs, from two study files of the study "
        f"name {first.plan.study!r} ({first.earlier_file} and {later_file}): {runs}{others}. "
        f"Training {first.item} after {first.earlier} would move {first.earlier}'s runs to "
        ".superseded/ and take them out of that study's report, so nothing was trained. To "
        f"keep both, give {later_file} a name of its own (its `name:` line). To train "
        f"{first.item}'s over them on purpose, run `repro queue` again with --supersede (they "
        "are moved to .superseded/, not deleted)."
    )


def _trained_earlier(p: RunPlan, run_dir: Path, planned: dict[str, set[Path]]) -> bool:
    """Whether an earlier item trains this run's training: the same run, or its twin in
    another study (runs of one study are never twins of each other: harness.twins)."""
    return any(d == run_dir or d.parent.parent.name != p.study for d in planned.get(p.hash, ()))


def _nominal_epochs(p: RunPlan) -> int:
    return -(-nominal_iterations(p.recipe) // nominal_batches_per_epoch(p.recipe))


def render(queue: Queue, rows: list[ItemStanding]) -> str:
    lines = [
        f"evidence queue ({queue.path}): GPU minutes estimated at {queue.rate_tflops:g} "
        f"TFLOP/s achieved ({queue.rate_source})"
    ]
    width = max(len(r.item.name) for r in rows)
    states = [_state(r) for r in rows]
    state_width = max(32, *map(len, states))
    for k, (r, state) in enumerate(zip(rows, states, strict=True), 1):
        lines.append(
            f"  {k:>2}. {r.item.name:<{width}}  {state:<{state_width}} epochs {r.epochs_done}/"
            f"{r.epochs_total}, {r.pflop_total:.1f} PFLOP, ~{r.gpu_minutes_left:.0f} GPU-min left"
        )
    left = sum(r.gpu_minutes_left for r in rows)
    nxt = next((r.item.name for r in rows if not r.done), None)
    lines.append(f"  next: {nxt or 'nothing: every item is done'}; ~{left:.0f} GPU-min left in all")
    # run_queue checks every item it is to train (the unfinished ones, or the first --items
    # of them) before the first trains: one refused item stops them all.
    if refused := [r for r in rows if r.refused]:
        one = len(refused) == 1
        names = ("item " if one else "items ") + ", ".join(r.item.name for r in refused)
        n = sum(r.refused for r in refused)
        them = "it" if n == 1 else "them"
        lines.append(f"  note: {names} plan{'s' * one} {plural(n, 'run')} that another study "
                     "file of the same study name made and still plans, or that an earlier item "
                     f"plans from such a file with another config: `repro queue` refuses {them}, "
                     "training nothing, while "
                     f"{'that item is' if one else 'those items are'} among those it is to "
                     "train (every unfinished one, or the first --items); --supersede trains "
                     f"over {them} (moved to .superseded/, not deleted)")  # fmt: skip
    return "\n".join(lines)


def summary(queue: Queue) -> str:
    """A valid queue in a screen, for `repro validate`: each item's runs and their whole cost
    (before twins and progress, which `repro status --queue` counts against the store)."""
    lines = [f"{queue.path}  valid evidence queue of {len(queue.items)} items, GPU minutes "
             f"estimated at {queue.rate_tflops:g} TFLOP/s achieved"]  # fmt: skip
    width = max(len(item.name) for item in queue.items)
    for k, item in enumerate(queue.items, 1):
        plans = queue.plans(item)
        flops = sum(training_flops(p) for p in plans)
        runs = f"{len(plans):>3} run{'s' * (len(plans) != 1)}"
        lines.append(f"  {k:>2}. {item.name:<{width}}  {runs} of "
                     f"{queue.study_file(item)}, {flops / 1e15:.1f} PFLOP, "
                     f"~{flops / (queue.rate_tflops * 1e12) / 60:.0f} GPU-min")  # fmt: skip
    lines.append(f"  where each stands (twins and runs done count): repro status --queue "
                 f"{queue.path}")  # fmt: skip
    return "\n".join(lines)


def _state(r: ItemStanding) -> str:
    if r.done:
        return "done"
    # A run an earlier item trains costs nothing here: say so, or the minutes look short.
    elsewhere = f", {r.elsewhere} from an earlier item" if r.elsewhere else ""
    if r.ended or r.started or r.twinned or r.refused:
        twinned = f", {r.twinned} done by twins" if r.twinned else ""
        refused = f", {r.refused} refused" if r.refused else ""
        return f"{r.ended}/{r.runs} runs ended, {r.started} under way{twinned}{refused}{elsewhere}"
    return f"{r.runs} run{'s' * (r.runs != 1)} pending{elsewhere}"


# --------------------------------------------------------------------------- training


def run_queue(queue: Queue, options, echo: Echo, limit: int | None = None) -> list:
    """Train the unfinished items in order, each with its runs K to a GPU, until the time
    budget (``options``' deadline) is spent; returns every run's outcome. ``options.fuse``
    (`repro queue --fuse`) fuses the runs of items that do not say `fuse:` themselves."""
    from harness.executors import local_slots, run_parallel
    from harness.runner import RunError, refuse_displacing, run_study

    outcomes = []
    deadline = options.stop_at()
    if deadline is not None and options.deadline is None:  # one budget for the whole queue
        options = replace(options, deadline=deadline.at, time_budget=None)
    items = [s.item for s in standing(queue, options.results) if not s.done][:limit]
    prepared = []
    for item in items:
        study_file = str(queue.study_file(item))
        study = load_study(study_file)
        item_options = replace(options, overrides=Overrides(only=item.only, seeds=item.seeds),
                               fuse=options.fuse if item.fuse is None else item.fuse)  # fmt: skip
        prepared.append((item, study_file, study, item_options))
    # As `repro run` does: a copied study's item that would train over the runs another study
    # file still plans is refused before any item trains (harness.copies); --supersede lets
    # them go.
    for _, study_file, study, item_options in prepared:
        plans = plan(study, item_options.overrides, study_file)  # as queue.plans reads it
        refuse_displacing(plans, item_options, study_file, command="repro queue")
    # Two of them that would do so to each other, the earlier training first.
    found = clashes(queue, [item for item, *_ in prepared], options.results)
    if found and not (options.force or options.supersede):
        raise RunError(clash_refusal(queue, found))
    for item, study_file, study, item_options in prepared:
        if deadline is not None and deadline.passed():
            echo(f"time budget spent before item {item.name}")
            break
        echo(f"--- queue item {item.name}: {item.why}")
        slots = local_slots(item_options, 1, item.runs_per_gpu)
        if len(slots) > 1:
            item_outcomes = run_parallel(study, study_file, item_options, slots, echo)
        else:
            item_outcomes = run_study(study, item_options, echo, study_file=study_file)
        outcomes += item_outcomes
        if any(o.status == store.INTERRUPTED for o in item_outcomes):
            break
    return outcomes

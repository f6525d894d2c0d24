"""The report: paper versus reproduction, as plain data, rendered by a jinja2 template.

``build`` matches the runs in the store against the studies (which runs count, which are
stale, diverged, unfinished or made with overrides), and the evaluations of released
checkpoints against the checkpoints the studies declare, applies the verdict rules of
:mod:`harness.verdicts` to both, and returns a :class:`Report` of plain dataclasses. ``render_html``
hands it to ``report_templates/report.html.j2``; ``claims_frame`` gives the same claim table
to pandas for CSV or JSON. No HTML is built in Python.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import jinja2
import markupsafe
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from harness import execution, plots, store, timings, verdicts
from harness.describe import parameter_count, recipe_summary
from harness.environment import PACKAGE_ROOT, git_commit, now_utc
from harness.metrics import METRICS, SECONDS, short_label
from harness.metrics import label as metric_label
from harness.plan import config_hash, nominal_batches_per_epoch, resolved_config
from harness.results import EvaluationRecord, RunRecord, curves_frame, environment_ignored
from harness.schedule import LearningRate, Length
from harness.schema import (
    CIFAR10_TEST_IMAGES,
    CIFAR10_TRAIN_IMAGES,
    CheckpointSpec,
    Claim,
    Experiment,
    OrderingClaim,
    Study,
    Warmup,
)

TEMPLATES = PACKAGE_ROOT / "report_templates"
PARAMETERS = "parameters"  # the metric column of a parameter count's row


# --------------------------------------------------------------------------- plain data


@dataclass
class RunView:
    name: str
    experiment: str
    seed: int
    status: str
    counted: bool
    why_not: str
    test_error: float | None
    epochs: str
    sec_per_epoch: float | None
    device: str
    precision: str
    official_data: bool | None
    finished: str
    path: str
    epochs_done: int = 0
    epochs_total: int | None = None
    not_solo: str = ""  # why its seconds per epoch are not one solo run's (harness.timings)
    # Unfinished but past the epoch of a claim on the test error at that epoch: counted there.
    counted_at_epochs: tuple[int, ...] = ()
    shared_with: str = ""  # the run of another study whose training this one adopted
    warning: str = ""  # an environment.json that was ignored, and what that costs the run
    under_way: bool = False  # unfinished and may yet count (_Classified.under_way)
    # Where its test error is on part of the test set, or it trained on part of the training
    # set: "on 1,000 test images, trained on 2,000", said beside that test error.
    images_note: str = ""

    @property
    def counted_text(self) -> str:
        """The run table's "counted" cell: yes, no, or, for an unfinished run past a claimed
        epoch, only there (its figure at that epoch is in a verdict; the rest of it is not)."""
        if self.counted:
            return "yes"
        if self.counted_at_epochs:
            return f"for the test error at {_epochs_text(self.counted_at_epochs)} only"
        return "no"


def _epochs_text(epochs: tuple[int, ...]) -> str:
    """ "epoch 90", "epochs 60 and 90"."""
    if len(epochs) == 1:
        return f"epoch {epochs[0]}"
    return f"epochs {', '.join(map(str, epochs[:-1]))} and {epochs[-1]}"


def counted_at_epoch_text(runs: list[RunView]) -> str:
    """The unfinished runs that count only for a claim on the test error at an epoch they
    have passed, said beside a count of the runs that count in full: "1 unfinished run
    counted only for the test error at epoch 90, which it has passed"."""
    early = [r for r in runs if not r.counted and r.counted_at_epochs]
    if not early:
        return ""
    return f"{_plural(len(early), 'unfinished run')} counted only for {_passed_epochs(early)}"


def _passed_epochs(early: list[RunView]) -> str:
    """What unfinished runs count for: "the test error at epoch 90, which it has passed"."""
    epochs = tuple(sorted({e for r in early for e in r.counted_at_epochs}))
    which = "it has" if len(early) == 1 else "they have"
    return f"the test error at {_epochs_text(epochs)}, which {which} passed"


@dataclass
class ClaimRow:
    study: str
    anchor: str
    kind: str  # value | params | speed | ordering
    experiment: str
    source: str
    where: str
    metric: str
    unit: str
    claimed: str
    claimed_value: float | None
    claimed_std: float | None
    rule: str
    reproduced: str
    reproduced_value: float | None
    rule_applied: str
    n: int
    minimum: float | None
    maximum: float | None
    std: float | None
    difference: float | None
    tolerance: float | None
    verdict: str
    reason: str
    hardware: str = ""
    notes: list[str] = field(default_factory=list)
    # The range the reproduced value had to fall in (value claims on training metrics).
    interval_low: float | None = None
    interval_high: float | None = None
    execution: str = ""  # the precision and pipeline of the runs behind the verdict
    data: str = ""  # whether those runs used the official release of CIFAR-10
    # Parameter counts: measured / claimed - 1, and how far off that is in words.
    relative_difference: float | None = None
    severity: str = ""
    short_metric: str = ""  # the metric in a word or two, for table cells
    # Runs under way (paused, running): where they stand, or, beside a verdict reached on the
    # runs that count, that more are coming. Never a verdict.
    progress: str = ""
    claimed_stated: str = ""  # the claimed value as the source wrote it ("6.90"), no unit
    under_way: list[str] = field(default_factory=list)  # orderings: experiments under way


@dataclass
class SpeedRow:
    experiment: str
    sec_per_epoch: float | None
    images_per_second: float | None
    runs: int
    devices: str
    precision: str
    claimed: str
    claimed_hardware: str
    verdict: str


@dataclass
class ExperimentView:
    name: str
    model: str
    architecture: str
    params: int
    seeds: int
    recipe: str
    notes: list[str]


@dataclass
class EvaluationView:
    """One released checkpoint evaluated on one copy of the data."""

    name: str
    checkpoint: str
    counted: bool
    why_not: str
    test_error: float | None
    official_data: bool | None
    data: str
    device: str
    seconds: float | None
    finished: str
    command: str
    path: str
    file: str  # the file's SHA-256 and where it came from


@dataclass
class CheckpointView:
    name: str
    model: str
    architecture: str
    params: int
    origin: str  # the URL or the local path
    sha256: str
    layout: str
    normalization: str
    notes: list[str]


@dataclass
class LayoutView:
    name: str
    description: str
    strip_prefix: str
    state_dict_key: str
    rules: list[str]  # "pattern -> to"
    transforms: list[str]  # "name: what it does"


@dataclass
class Figure:
    title: str
    caption: str
    plot: MplFigure = field(repr=False)  # what was drawn, readable by tests
    alt: str = ""  # the figure in words, for a reader who cannot see it
    # The same drawn for a phone (plots.PHONE: panels stacked, type that stays readable),
    # which the page shows where it is narrow.
    phone: MplFigure | None = field(default=None, repr=False)

    @functools.cached_property
    def uri(self) -> str:
        return plots.to_data_uri(self.plot)

    @functools.cached_property
    def phone_uri(self) -> str:
        return plots.to_data_uri(self.phone) if self.phone is not None else ""


@dataclass
class ScoreLine:
    """One claim in a scoreboard cell: what is claimed, what was measured, the verdict."""

    what: str  # the metric in short, with the experiment where a cell holds several
    claimed: str
    reproduced: str
    n: int
    verdict: str
    anchor: str  # the claim's row further down
    progress: str = ""


@dataclass
class ScoreRow:
    model: str
    cells: list[list[ScoreLine]]  # one per source; empty where the source claims nothing


@dataclass
class OrderingLine:
    """An ordering claim in the panel beside the scoreboard: the nets it compares, in order."""

    source: str
    metric: str
    chain: str  # "plain-20 < plain-56": lower to the right of "<", higher to the right of ">"
    verdict: str
    anchor: str
    progress: str = ""  # where the runs under way stand (the claim row's), in a tooltip
    # Beside the verdict, in brief: "runs under way" beside a verdict reached, the nets under
    # way beside "not yet run" ("plain-20 under way"); none beside "under way", which says it.
    note: str = ""


@dataclass
class Scoreboard:
    """The top of the page: a row per model, a column per source, and the orderings."""

    sources: list[str]
    rows: list[ScoreRow]
    orderings: list[OrderingLine]
    # Below it, one line per model whose claims sit in studies with nothing run yet: every
    # model of the sources keeps a row until it is reproduced, without a table of blanks.
    waiting: list[WaitingModel] = field(default_factory=list)

    @property
    def undecided(self) -> list[str]:
        """The outcomes that are not verdicts ("under way", "not yet run") found on the board,
        in that order: its key says what each means."""
        shown = {line.verdict for row in self.rows for cell in row.cells for line in cell}
        shown |= {o.verdict for o in self.orderings}
        return [o for o in (verdicts.UNDER_WAY, verdicts.NOT_RUN) if o in shown]


@dataclass
class WaitingModel:
    """A model with claims in studies that have nothing run yet."""

    model: str
    claims: list[str]  # "He et al. 2015: test error 8.75%"
    studies: list[str]  # where they are, each folded into one line (its anchor: folded-<slug>)


@dataclass
class _ScoreEntry:
    model: str
    order: tuple  # where its row goes: by family (_family), then by depth
    source: str
    experiment: str
    line: ScoreLine


@dataclass
class Headline:
    """One kind of claim at a glance, apart from the others ("accuracy 0/12 tested"), so that
    a study with nothing trained never reads as reproduced because its parameter counts match."""

    kind: str  # accuracy | orderings | speed | released weights | parameter counts
    total: int
    done: int  # tested (a verdict was reached), evaluated, or, for counts, matching
    verb: str
    parts: list[tuple[str, int, str]]  # (what, how many, the verdict its colour is)

    @property
    def text(self) -> str:
        head = f"{self.kind} {self.done}/{self.total} {self.verb}"
        return head + (": " + ", ".join(f"{n} {what}" for what, n, _ in self.parts)
                       if self.parts else "")  # fmt: skip


@dataclass
class EvidenceLine:
    """What the page's verdicts stand on, in a line each (runs, devices, data, released
    weights), with the caveat a reader must not miss where there is one."""

    what: str
    text: str
    caveat: str = ""


UNDER_WAY = ("paused", "running", "interrupted")  # a run that may yet count


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _evidence(studies: list[StudyReport]) -> list[EvidenceLine]:
    """The runs and evaluations behind the studies shown: how many, how many random seeds,
    how many count and why the others do not (unfinished ones first), on which devices and
    how (shared or fused timings), and on what data."""
    runs = [(s.name, r) for s in studies for r in s.runs]
    evaluations = [e for s in studies for e in s.evaluations]
    lines = []
    if runs:
        seeds: dict[tuple[str, str], set[int]] = defaultdict(set)
        for study, r in runs:
            seeds[(study, r.experiment)].add(r.seed)
        low, high = min(map(len, seeds.values())), max(map(len, seeds.values()))
        each = f"{low} random seed{'' if high == 1 else 's'}"
        each = each if low == high else f"{low} to {high} random seeds"
        counted = sum(r.counted for _, r in runs)
        text = f"{_plural(len(runs), 'run')} of {_plural(len(seeds), 'experiment')} "
        text += f"({each} each), {counted} counted"
        # An unfinished run past a claimed epoch counts there: "0 counted" alone read as if no
        # verdict stood on any run, while one did (the run table says "for ... only" too).
        if early := [r for _, r in runs if not r.counted and r.counted_at_epochs]:
            epochs = tuple(sorted({e for r in early for e in r.counted_at_epochs}))
            text += f" in full, {len(early)} for the test error at {_epochs_text(epochs)} only"
        # Runs that may yet count are the caveat; the others (stale, override, smoke, damaged,
        # failed) never will, whatever their status, and are counted by why.
        others = Counter(r.why_not.split(":")[0] for _, r in runs
                         if not r.counted and not r.under_way)  # fmt: skip
        if others:
            text += "; not counted: " + ", ".join(f"{n} {why}" for why, n in others.items())
        unfinished = [r for _, r in runs if not r.counted and r.under_way]
        lines.append(EvidenceLine("Runs", text, _unfinished_caveat(unfinished, counted)))
        on = Counter((r.device, r.precision) for _, r in runs)
        shared = sum(bool(r.not_solo) for _, r in runs)
        lines.append(EvidenceLine(
            "Devices", "; ".join(f"{d} ({_plural(n, 'run')}): {p}" for (d, p), n in on.items()),
            f"{shared} of {len(runs)} shared their device or trained fused: their seconds per "
            "epoch are not solo timings, and no speed claim uses them" if shared else "",
        ))  # fmt: skip
    if runs or evaluations:
        parts = []
        for flag, what in ((True, "the official release"), (False, "not the official release"),
                           (None, "not recorded")):  # fmt: skip
            n_runs = sum(r.official_data is flag for _, r in runs)
            n_evaluations = sum(e.official_data is flag for e in evaluations)
            counts = [_plural(n_runs, "run")] if n_runs else []
            counts += [_plural(n_evaluations, "checkpoint evaluation")] if n_evaluations else []
            if counts:
                parts.append(f"{what}: {' and '.join(counts)}")
        copies = any(r.official_data is False for _, r in runs) or any(
            e.official_data is False for e in evaluations)  # fmt: skip
        lines.append(EvidenceLine("Data", "; ".join(parts), (
            "figures on a copy are not comparable with the sources' (the offline JPEG copy "
            "costs released weights about ten points of test error)") if copies else "",
        ))  # fmt: skip
    if evaluations:
        counted = sum(e.counted for e in evaluations)
        devices = ", ".join(sorted({e.device for e in evaluations}))
        lines.append(EvidenceLine(
            "Released weights",
            f"{_plural(len(evaluations), 'evaluation')} of released checkpoints, {counted} "
            f"counted, on {devices} (no training, so no random seeds)",
        ))  # fmt: skip
    return lines


def _unfinished_caveat(unfinished: list[RunView], counted: int) -> str:
    """Runs that may yet count, and where they stand: "6 unfinished (paused) at epochs 138 to
    145 of 164: no verdict uses them yet"."""
    if not unfinished:
        return ""
    status = "/".join(sorted({r.status for r in unfinished}))
    done = sorted(r.epochs_done for r in unfinished)
    total = {r.epochs_total for r in unfinished}
    at = f"epoch {done[0]}" if done[0] == done[-1] else f"epochs {done[0]} to {done[-1]}"
    at += f" of {total.pop()}" if len(total) == 1 and None not in total else ""
    if any(r.counted_at_epochs for r in unfinished):  # the line's text says where they count
        uses = "not counted in full yet"
    else:
        uses = "no verdict uses them yet" if not counted else "not counted yet"
    return f"{len(unfinished)} unfinished ({status}) at {at}: {uses}"


# A verdict was reached (on any data): what "tested" counts.
JUDGED = {o for o in verdicts.OUTCOMES
          if o not in (verdicts.UNDER_WAY, verdicts.NOT_RUN, verdicts.NOT_COMPARABLE)}  # fmt: skip
HEADLINE_KINDS = ("accuracy", "orderings", "speed", "released weights", "parameter counts")
# The verdict whose colour a parameter count's severity takes.
SEVERITY_TONE = {"counting convention": verdicts.INCONCLUSIVE,
                 "small difference": verdicts.NOT_REPRODUCED,
                 "large difference": verdicts.NOT_REPRODUCED}  # fmt: skip


def _tested(kind: str, rows: list[ClaimRow], verb: str = "tested") -> Headline:
    """How many claims of a kind reached a verdict, and which."""
    seen = Counter(r.verdict for r in rows if r.verdict != verdicts.NOT_RUN)
    parts = [(o, seen[o], o) for o in verdicts.OUTCOMES if seen.get(o)]
    return Headline(kind, len(rows), sum(r.verdict in JUDGED for r in rows), verb, parts)


def _matching(rows: list[ClaimRow]) -> Headline:
    """Parameter counts: how many match, and how far off the others are."""
    off = Counter(r.severity for r in rows if r.verdict != verdicts.REPRODUCED)
    parts = [(what, off[what], tone) for what, tone in SEVERITY_TONE.items() if off.get(what)]
    done = sum(r.verdict == verdicts.REPRODUCED for r in rows)
    return Headline("parameter counts", len(rows), done, "match", parts)


def _headlines(values, orderings, speed_claims, params, checkpoint_claims) -> list[Headline]:
    weights = [c for c in checkpoint_claims if c.kind == "checkpoint" and c.metric != PARAMETERS]
    counts = params + [c for c in checkpoint_claims if c.metric == PARAMETERS]
    heads = [_tested("accuracy", values), _tested("orderings", orderings),
             _tested("speed", speed_claims), _tested("released weights", weights, "evaluated"),
             _matching(counts)]  # fmt: skip
    return [h for h in heads if h.total]


def _merged_headlines(studies: list[StudyReport]) -> list[Headline]:
    """The studies' headlines added up, kind by kind."""
    merged: dict[str, Headline] = {}
    for h in (h for s in studies for h in s.headlines):
        if h.kind not in merged:
            merged[h.kind] = Headline(h.kind, 0, 0, h.verb, [])
        m = merged[h.kind]
        m.total, m.done = m.total + h.total, m.done + h.done
        tally = {what: [n, tone] for what, n, tone in m.parts}
        for what, n, tone in h.parts:
            tally.setdefault(what, [0, tone])[0] += n
        m.parts = [(what, n, tone) for what, (n, tone) in tally.items()]
    return [merged[k] for k in HEADLINE_KINDS if k in merged]


def _score_entries(study: Study, rows: list[ClaimRow]) -> list[_ScoreEntry]:
    """The value claims (accuracies, losses, speeds, released weights) as scoreboard lines;
    parameter counts and orderings have their own places."""
    entries = []
    for r in rows:
        if r.metric == PARAMETERS:
            continue
        spec = (study.checkpoint(r.experiment) if r.kind == "checkpoint"
                else study.experiment(r.experiment)).model  # fmt: skip
        what = r.short_metric
        if r.kind == "checkpoint":  # a test error is what released weights are judged by
            what = "released weights" + ("" if what == "test error" else f", {what}")
        claimed = (
            f"{r.claimed_stated}{r.unit}"
            if r.claimed_stated
            else _value_text(r.claimed_value, r.unit)
        )
        if r.rule and r.rule != "single run":  # He et al.'s 6.43 is a best of 5, 6.61 a mean
            claimed += f" ({r.rule})"
        line = ScoreLine(what, claimed, r.reproduced
                         if r.reproduced_value is None else _fmt(r.reproduced_value, r.unit),
                         r.n, r.verdict, r.anchor, r.progress)  # fmt: skip
        order = (_family(spec), spec.depth, spec.label())
        entries.append(_ScoreEntry(spec.label(), order, r.source, r.experiment, line))
    return entries


def _family(spec) -> int:
    """Where a model's family goes on the scoreboard: the original ResNets, then
    pre-activation ones, wide ones and plain nets last (by depth within each, so that
    WRN-16-4 does not come before ResNet-20)."""
    if spec.shortcut == "none":
        return 3
    return 2 if spec.width > 1 else 1 if spec.preact else 0


def _value_text(value: float | None, unit: str) -> str:
    return "\u2013" if value is None else f"{value:g}{unit}"


def _scoreboard(studies: list[StudyReport], waiting: list[StudyReport]) -> Scoreboard:
    """The scoreboard of the studies shown, and the models only ``waiting`` studies claim of."""
    entries = [e for s in studies for e in s.score_entries]
    sources = list(dict.fromkeys(e.source for e in entries))
    models = sorted({e.model: e.order for e in entries}.items(), key=lambda kv: kv[1])
    rows = []
    for model, _ in models:
        cells = []
        for source in sources:
            mine = [e for e in entries if e.model == model and e.source == source]
            several = len({e.experiment for e in mine}) > 1
            cells.append([replace(e.line, what=f"{e.experiment}: {e.line.what}") if several
                          else e.line for e in mine])  # fmt: skip
        rows.append(ScoreRow(model, cells))
    orderings = [o for s in studies for o in s.ordering_lines]
    return Scoreboard(sources, rows, orderings, _waiting_models(waiting))


def _waiting_models(studies: list[StudyReport]) -> list[WaitingModel]:
    found: dict[str, tuple[tuple, WaitingModel]] = {}  # model: (where its row goes, the row)
    for s in studies:
        for e in s.score_entries:
            m = found.setdefault(e.model, (e.order, WaitingModel(e.model, [], [])))[1]
            claim = f"{e.source}: {e.line.what} {e.line.claimed}"
            if claim not in m.claims:  # two studies may declare one source's claim
                m.claims.append(claim)
            if s.name not in m.studies:
                m.studies.append(s.name)
    return [m for _, m in sorted(found.values(), key=lambda om: om[0])]


def _ordering_lines(study: Study, rows: list[ClaimRow]) -> list[OrderingLine]:
    """The ordering claims as chains of the nets they compare ("plain-20 < plain-56")."""
    # A row is its claim's by anchor: the rows may leave out claims (a source that is no
    # publication has none in the panel).
    claims = {f"{study.name}-claim-{i}": c for i, c in enumerate(study.claims)}
    lines = []
    for row in rows:
        claim = claims[row.anchor]
        arrow = " < " if claim.direction == "increasing" else " > "
        chain = arrow.join(study.experiment(e).model.label() for e in claim.experiments)
        lines.append(OrderingLine(row.source, row.short_metric, chain, row.verdict, row.anchor,
                                  row.progress, _ordering_note(study, row)))  # fmt: skip
    return lines


def _ordering_note(study: Study, row: ClaimRow) -> str:
    """What the orderings panel says beside a verdict of where runs under way stand."""
    if not row.progress or row.verdict == verdicts.UNDER_WAY:
        return ""
    nets = [study.experiment(e).model.label() for e in row.under_way]
    if row.verdict == verdicts.NOT_RUN and nets:  # the others have not started
        return f"{' and '.join(dict.fromkeys(nets))} under way"
    return "runs under way"


@dataclass
class StudyReport:
    name: str
    description: str
    path: str
    sources: list[dict]
    counts: dict[str, int]
    values: list[ClaimRow]
    params: list[ClaimRow]
    speed_claims: list[ClaimRow]
    speeds: list[SpeedRow]
    orderings: list[ClaimRow]
    experiments: list[ExperimentView]
    figures: list[Figure]
    runs: list[RunView]
    gpu_seconds: float | None
    energy_kj: float | None
    counted_runs: int
    checkpoint_claims: list[ClaimRow] = field(default_factory=list)
    checkpoints: list[CheckpointView] = field(default_factory=list)
    layouts: list[LayoutView] = field(default_factory=list)
    evaluations: list[EvaluationView] = field(default_factory=list)
    copy_penalty: list[dict] = field(default_factory=list)
    headlines: list[Headline] = field(default_factory=list)
    recipe_notes: list[tuple[str, str]] = field(default_factory=list)  # (recipe, its note)
    # Nothing run or evaluated, and the page not asked to show such studies: one line.
    folded: bool = False
    score_entries: list[_ScoreEntry] = field(default_factory=list, repr=False)
    ordering_lines: list[OrderingLine] = field(default_factory=list, repr=False)

    @property
    def all_claims(self) -> list[ClaimRow]:
        return (self.values + self.params + self.speed_claims + self.orderings
                + self.checkpoint_claims)  # fmt: skip

    @property
    def counted_evaluations(self) -> int:
        return sum(e.counted for e in self.evaluations)

    @property
    def counted_at_epoch(self) -> str:
        """Beside its count of counted runs: the unfinished ones that count at one epoch."""
        return counted_at_epoch_text(self.runs)

    @property
    def metric_key(self) -> list[tuple[str, str]]:
        """The short metric labels of the claim tables, each with what it means."""
        rows = self.values + self.orderings + self.checkpoint_claims + self.speed_claims
        return list(dict.fromkeys((r.short_metric, r.metric) for r in rows
                                  if r.short_metric and r.short_metric != r.metric))  # fmt: skip


@dataclass
class Provenance:
    datasets: list[dict]
    software: list[dict]
    devices: list[dict]
    commits: list[dict]
    first: str
    last: str
    # What a copy of the data costs, measured: released checkpoints evaluated on it against
    # the same weights on the official release (ours, or the source's stated figure).
    copy_penalty: list[dict] = field(default_factory=list)
    copy_penalty_mean: float | None = None

    @property
    def copy_penalty_words(self) -> tuple[str, str]:
        """The copy's cost section's heading and what it compares: the test error on the copy
        is always ours; the one on the official release is ours only where we evaluated the
        weights there too, else the source's stated figure, and the heading says which (a
        heading that read "(measured)" over the source's figures claimed a measurement that
        was half someone else's)."""
        ours = sum(r["reference_kind"] == OUR_REFERENCE for r in self.copy_penalty)
        stated = len(self.copy_penalty) - ours
        heading = "What the copy of the data costs released weights"
        if not stated:
            return (f"{heading} (measured: our test errors on the copy and on the official "
                    "release)", "; we evaluated them on the official release as well")  # fmt: skip
        if not ours:
            return (f"{heading} (our test error on the copy against the source's stated figure "
                    "on the official release)",
                    "; the test error on the official release is the one their source states "
                    "for the same weights, not evaluated here")  # fmt: skip
        return (f"{heading} (our test error on the copy against ours on the official release "
                f"for {ours}, the source's stated figure for {stated})",
                f"; on the official release, our own evaluation for {ours} of them, the "
                f"source's stated figure for the other {stated} (the column \u201cwhich\u201d "
                "says which)")  # fmt: skip


@dataclass
class Report:
    generated: str
    harness: dict
    results_dir: str
    rules: tuple[str, ...]
    outcomes: tuple[str, ...]
    studies: list[StudyReport]
    provenance: Provenance
    nonofficial_runs: int
    nonofficial_fingerprints: list[str]
    total_runs: int
    unmatched_runs: list[RunView]
    total_evaluations: int = 0
    nonofficial_evaluations: int = 0
    headlines: list[Headline] = field(default_factory=list)  # every study's, added up
    evidence: list[EvidenceLine] = field(default_factory=list)  # what the verdicts stand on
    scoreboard: Scoreboard = field(default_factory=lambda: Scoreboard([], [], []))

    @property
    def shown(self) -> list[StudyReport]:
        """The studies shown in full (the others are one line each)."""
        return [s for s in self.studies if not s.folded]

    @property
    def folded(self) -> list[StudyReport]:
        return [s for s in self.studies if s.folded]

    @property
    def metric_key(self) -> list[tuple[str, str]]:
        """The short metric labels of the scoreboard and orderings ("test error @90"), spelt
        out once beside them as each study's tables do."""
        return list(dict.fromkeys(pair for s in self.shown for pair in s.metric_key))

    @property
    def empty(self) -> bool:
        return self.total_runs == 0 and self.total_evaluations == 0

    @property
    def nonofficial_mark(self) -> str:
        return verdicts.ON_NONOFFICIAL_DATA

    @property
    def under_way(self) -> str:
        return verdicts.UNDER_WAY

    @property
    def not_run(self) -> str:
        return verdicts.NOT_RUN


# --------------------------------------------------------------------------- matching runs


@dataclass
class _Classified:
    record: RunRecord
    counted: bool
    why_not: str
    faithful: bool  # current config, no overrides: its curves belong to the experiment
    # Unfinished (UNDER_WAY) and may yet count: faithful, on the full data. What makes a claim
    # "under way" rather than "not yet run".
    under_way: bool = False

    @property
    def timed(self) -> bool:
        """Counted and complete: its seconds per epoch are a whole run's."""
        return self.counted and self.record.status == "complete"

    def counts_for(self, metric: str, epoch: int | None = None) -> bool:
        """Counted, or, for a claim on the test error at one epoch, a run paused, interrupted
        or running past that epoch: later epochs cannot change that figure, so waiting for
        the end would only hide evidence. A subset (smoke) run or one without a summary to
        say so still waits."""
        if self.counted:
            return True
        r = self.record
        return (
            metric == "test_error_at_epoch"
            and self.under_way  # it goes on from where it is: its epochs stay
            and r.summary is not None
            and any(h["epoch"] == epoch and h.get("test_error") is not None for h in r.history)
        )

    def pending_for(self, metric: str, epoch: int | None = None) -> bool:
        """Under way and not yet counting for the claim: what leaves it "under way"."""
        return self.under_way and not self.counts_for(metric, epoch)


def _classify(study: Study, records: list[RunRecord]) -> list[_Classified]:
    names = {e.name: e for e in study.experiments}
    out = []
    for r in records:
        exp = names.get(r.experiment)
        if exp is None:
            out.append(_Classified(r, False, "experiment no longer in the study", False))
            continue
        if r.label:
            out.append(_Classified(r, False, f"override run ({r.label})", False))
            continue
        expected = config_hash(resolved_config(exp, exp.recipe, r.seed, ""))
        if r.config_hash != expected:
            out.append(_Classified(r, False, "stale: made with an older config", False))
            continue
        summary = r.summary or {}
        ended = r.status in ("complete", "diverged")  # a diverged run is a result too
        # A run on a subset never counts: its recipe says so (its summary too, once written).
        subset = not exp.recipe.on_all_data or summary.get("counts_as_reproduction") is False
        if r.status == store.DAMAGED:
            out.append(_Classified(r, False, f"damaged: {r.damage}", True))
        elif broken := _impossible_figures(r):
            # Whatever its status: a paused run past a claimed epoch counts there too, and a
            # NaN reads as no worse than any claim (a -inf or a negative error as better).
            why = (f"its record holds an impossible figure ({'; '.join(broken)}): never "
                   "counted; check the run")  # fmt: skip
            out.append(_Classified(r, False, why, True))
        elif ended and subset:
            why = "the recipe trains on a subset (smoke study)"
            out.append(_Classified(r, False, why, True))
        elif ended:
            out.append(_Classified(r, True, "", True))
        else:  # unfinished: under way unless it trains on a subset
            under_way = r.status in UNDER_WAY and not subset
            why = r.status if not subset else f"{r.status} on a subset (smoke study)"
            out.append(_Classified(r, False, why, True, under_way))
    return out


# The figures verdicts read, and what a run can hold in each: training records a loss that
# became NaN/inf as diverged, leaving that epoch's loss and test error empty (None), and an
# error is a share of images. Anything else was written by something other than training.
def _is_error(v: float) -> bool:
    return 0.0 <= v <= 100.0


_SUMMARY_FIGURES = {"test_error": _is_error, "best_test_error": _is_error,
                    "final_test_error": _is_error, "final_train_error": _is_error,
                    "final_train_loss": lambda v: v >= 0,
                    "sec_per_epoch": lambda v: v > 0}  # fmt: skip


def _impossible_figures(record: RunRecord) -> list[str]:
    """The figures of a run's summary, and the test errors of its curve, that no run can hold
    (NaN, infinite, an error outside 0..100%, a negative loss, no time), each named."""

    def wrong(value, possible) -> bool:
        return isinstance(value, int | float) and not (math.isfinite(value) and possible(value))

    summary = record.summary or {}
    found = [f"summary {k} = {summary[k]}" for k, possible in _SUMMARY_FIGURES.items()
             if wrong(summary.get(k), possible)]  # fmt: skip
    found += [f"epoch {h['epoch']} test_error = {h['test_error']}" for h in record.history
              if wrong(h.get("test_error"), _is_error)]  # fmt: skip
    return found


def _metric(record: RunRecord, metric: str, epoch: int | None = None) -> float | None:
    summary = record.summary or {}
    diverged = METRICS[metric].diverged
    if metric == "test_error_at_epoch":
        # Read from the curve; a run that diverged before that epoch is at chance there.
        at = [h["test_error"] for h in record.history
              if h["epoch"] == epoch and h.get("test_error") is not None]  # fmt: skip
        return at[0] if at else (diverged.value if record.status == "diverged" else None)
    if record.status == "diverged" and diverged is not None:
        if metric == "best_test_error" and summary.get(metric) is not None:
            return min(summary[metric], diverged.value)  # the epochs it had still count
        return diverged.value
    if metric == "test_accuracy":
        error = summary.get("test_error")
        return None if error is None else 100.0 - error
    if metric == "params":
        return summary.get("params")
    return summary.get(metric)


# --------------------------------------------------------------------------- building


def build(studies: list[tuple[Study, str]], records: list[RunRecord], results_dir: str,
          evaluations: list[EvaluationRecord] | None = None, *,
          show_unrun: bool = False) -> Report:  # fmt: skip
    """The report; ``show_unrun`` shows studies with no runs and no evaluations in full
    (by default each is one line: its claims would all read "not yet run")."""
    by_study: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        by_study[r.study].append(r)
    evaluations = evaluations or []
    evaluated: dict[str, list[EvaluationRecord]] = defaultdict(list)
    for e in evaluations:
        evaluated[e.study].append(e)
    reports = [
        _study_report(study, path, by_study.pop(study.name, []), evaluated.get(study.name, []))
        for study, path in studies
    ]
    for r in reports:
        r.folded = not show_unrun and not r.runs and not r.evaluations
    unmatched = [
        _run_view(_Classified(r, False, "its study file is not part of this report", False))
        for rs in by_study.values()
        for r in rs
    ]
    nonofficial = [r for r in records if _official(r) is False]
    copies = [e for e in evaluations if e.data.get("official") is False]
    return Report(
        generated=now_utc(),
        harness=git_commit(),
        results_dir=results_dir,
        rules=verdicts.RULES,
        outcomes=verdicts.OUTCOMES,
        studies=reports,
        provenance=_provenance(records, reports, evaluations),
        nonofficial_runs=len(nonofficial),
        nonofficial_fingerprints=sorted(
            {r.data.get("dataset_fingerprint", "")[:16] for r in [*nonofficial, *copies]}
        ),
        total_runs=len(records),
        unmatched_runs=unmatched,
        total_evaluations=len(evaluations),
        nonofficial_evaluations=len(copies),
        headlines=_merged_headlines(reports),
        evidence=_evidence(reports),
        scoreboard=_scoreboard(
            [r for r in reports if not r.folded], waiting=[r for r in reports if r.folded]
        ),
    )


def _study_report(study: Study, path: str, records: list[RunRecord],
                  evaluations: list[EvaluationRecord]) -> StudyReport:  # fmt: skip
    classified = _classify(study, records)
    judged = _classify_evaluations(study, evaluations)
    by_exp: dict[str, list[_Classified]] = defaultdict(list)
    for c in classified:
        by_exp[c.record.experiment].append(c)
    source_label = {k: _source_label(s) for k, s in study.sources.items()}

    values, params, speed_claims, orderings, checkpoint_claims = [], [], [], [], []
    for i, claim in enumerate(study.claims):
        anchor = f"{study.name}-claim-{i}"
        if isinstance(claim, Claim) and claim.checkpoint is not None:
            checkpoint_claims.append(
                _checkpoint_row(study, path, claim, judged, anchor, source_label)
            )
        elif isinstance(claim, OrderingClaim):
            orderings.append(_ordering_row(study, claim, by_exp, anchor, source_label))
        elif claim.metric == "params":
            params.append(_params_row(study, claim, anchor, source_label))
        elif claim.metric == "sec_per_epoch":
            speed_claims.append(_speed_claim_row(study, claim, by_exp, anchor, source_label))
        else:
            values.append(_value_row(study, claim, by_exp, anchor, source_label))
    rows = values + params + speed_claims + orderings + checkpoint_claims
    counts = Counter(r.verdict for r in rows)
    # The headlines and the scoreboard answer "do the published numbers hold?": a claim the
    # harness makes of itself (the smoke test's) stays in its study's list only.
    ours = {f"{study.name}-claim-{i}" for i, c in enumerate(study.claims)
            if not study.sources[c.source].publication}  # fmt: skip

    def published(claim_rows: list[ClaimRow]) -> list[ClaimRow]:
        return [r for r in claim_rows if r.anchor not in ours]

    telemetry = [(c.record.summary or {}).get("telemetry") or {} for c in classified]
    gpu_seconds = [t["gpu_seconds"] for t in telemetry if t.get("gpu_seconds")]
    energy = [t["energy_j"] for t in telemetry if t.get("energy_j")]
    return StudyReport(
        name=study.name,
        description=study.description,
        path=path,
        sources=[{"id": k, **s.model_dump()} for k, s in study.sources.items()],
        counts={o: counts.get(o, 0) for o in verdicts.OUTCOMES if counts.get(o)},
        values=values,
        params=params,
        speed_claims=speed_claims,
        speeds=_speed_rows(study, by_exp),
        orderings=orderings,
        experiments=[_experiment_view(study, e) for e in study.experiments],
        figures=_figures(study, classified),
        runs=[_run_view(c, _counted_at_epochs(study, c)) for c in classified],
        gpu_seconds=sum(gpu_seconds) if gpu_seconds else None,
        energy_kj=sum(energy) / 1000 if energy else None,
        counted_runs=sum(c.counted for c in classified),
        checkpoint_claims=checkpoint_claims,
        checkpoints=[_checkpoint_view(study, c) for c in study.checkpoints],
        layouts=[_layout_view(name, layout) for name, layout in study.layouts.items()],
        evaluations=[_evaluation_view(j) for j in judged],
        copy_penalty=_copy_penalty(judged, study),
        headlines=_headlines(
            *(
                published(rows)
                for rows in (values, orderings, speed_claims, params, checkpoint_claims)
            )
        ),
        score_entries=_score_entries(study, published(values + speed_claims + checkpoint_claims)),
        ordering_lines=_ordering_lines(study, published(orderings)),
        recipe_notes=_recipe_notes(study),
    )


def slug(text: str) -> str:
    """An HTML id from a name: what the page's anchors are made of."""
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower())


def _source_label(source) -> str:
    """A short citation: "He et al. 2016", "Muellerklein"; the full one is listed above."""
    authors = [a.strip() for a in source.authors.replace(" and ", ",").split(",") if a.strip()]
    first = authors[0].split()[-1] if authors else source.title
    names = (
        authors[0]
        if len(authors) == 1
        else (f"{first} and {authors[1].split()[-1]}" if len(authors) == 2 else f"{first} et al.")
    )
    return f"{names} {source.year}" if source.year else names


def _counted_runs(exp_runs: list[_Classified], metric: str,
                  epoch: int | None = None) -> list[tuple[RunRecord, float]]:  # fmt: skip
    """The runs counted for ``metric`` that have a value for it, with it, in seed order."""
    runs = sorted((c.record for c in exp_runs if c.counts_for(metric, epoch)),
                  key=lambda r: r.seed)  # fmt: skip
    return [(r, v) for r in runs if (v := _metric(r, metric, epoch)) is not None]


# --------------------------------------------------------------------------- pools
# Runs that may share a verdict: the same data, and the same precision and pipeline unless a
# study or claim pools those. Neither data nor execution is in the config hash (runs keep
# their hash whatever data and execution made them), so runs of one experiment and seed may
# differ in both; a verdict never pools them silently.

POOLED = "pooled"  # the execution of a pool of every execution


@dataclass(frozen=True)
class _Pool:
    official: bool  # the official release of CIFAR-10
    data: str  # "official release" | "not the official release (data <fingerprint>)"
    execution: str  # "bf16, fast pipeline" | POOLED
    device: str = ""  # seconds only: the one device they were measured on (harness.timings)
    # The data's fingerprint: the official release is one set of arrays, so runs that say
    # "official" but name two fingerprints did not train on the same data and never pool.
    fingerprint: str = ""

    def describe(self) -> str:
        data = self.data
        if self.official and self.fingerprint:
            data += f" (data {self.fingerprint[:12]})"
        return f"{self.execution}; {data}" + (f"; on {self.device}" if self.device else "")


def _pool_of(record: RunRecord, pooled: bool, by_device: bool = False) -> _Pool:
    official, text = _run_data(record)
    device = timings.devices(record)[0] if by_device else ""
    fingerprint = record.data.get("dataset_fingerprint") or ""
    return _Pool(official, text, POOLED if pooled else _execution_of(record), device, fingerprint)


def _data_of(data: dict) -> tuple[bool, str]:
    """Whether a run's (or an evaluation's) data is the official release, and how to say it."""
    if data.get("official") is True:
        return True, "official release"
    fingerprint = (data.get("dataset_fingerprint") or "")[:12] or "not recorded"
    return False, f"not the official release (data {fingerprint})"


def _run_data(record: RunRecord) -> tuple[bool, str]:
    """As _data_of, for a run: its summary records the latest session's data only, so a run
    whose sessions say they trained on different data (a run paused on a copy and resumed on
    the official release) is on mixed data, which is not the official release."""
    fingerprints = {s.get("dataset_fingerprint") for s in _sessions(record)}
    fingerprints |= {record.data.get("dataset_fingerprint")}
    flags = {s.get("official") for s in _sessions(record)} | {record.data.get("official")}
    recorded = sorted(f[:12] for f in fingerprints if f)
    if len(recorded) > 1 or {True, False} <= flags:
        return False, "mixed data: not the official release (data " + " + ".join(recorded) + ")"
    return _data_of(record.data)


def _official(record: RunRecord) -> bool | None:
    """Whether a run trained on the official release, as its summary's data says (None: not
    recorded), but False where its sessions trained on different data (_run_data)."""
    flag = record.data.get("official")
    return False if flag and not _run_data(record)[0] else flag


def _sessions(record: RunRecord) -> list[dict]:
    """The sessions that recorded their data (older runs' did not)."""
    return [s for s in (record.summary or {}).get("sessions") or []
            if s.get("dataset_fingerprint") or s.get("official") is not None]  # fmt: skip


def _execution_of(record: RunRecord) -> str:
    """The precision and pipeline the run's epochs were computed with: "bf16, fast pipeline";
    "mixed: ..." for a run resumed under another one (before `repro run` refused that)."""
    summary = record.summary or {}
    recorded = {(s["precision"], s.get("pipeline"))
                for s in summary.get("sessions") or [] if s.get("precision")}  # fmt: skip
    if not recorded:
        ex = summary.get("execution") or record.environment or {}
        recorded = {(ex.get("precision"), ex.get("pipeline"))}
    labels = sorted(execution.label(*r) for r in recorded)
    return labels[0] if len(labels) == 1 else "mixed: " + " + ".join(labels)


def _by_pool(
    exp_runs: list[_Classified],
    pooled: bool,
    by_device: bool = False,
    metric: str = "",
    epoch: int | None = None,
) -> dict[_Pool, list[_Classified]]:
    """The runs counted for ``metric``, grouped by pool (and by device, for seconds)."""
    groups: dict[_Pool, list[_Classified]] = defaultdict(list)
    for c in exp_runs:
        if c.counts_for(metric, epoch):
            groups[_pool_of(c.record, pooled, by_device)].append(c)
    return dict(groups)


def _solo_timed(exp_runs: list[_Classified]) -> tuple[list[_Classified], list[str]]:
    """The counted runs whose seconds per epoch compare (complete, and solo on one device:
    harness.timings), and why each other counted run is left out."""
    kept, why = [], []
    for c in exp_runs:
        if not c.counted:
            continue
        reason = timings.not_solo(c.record) if c.timed else "diverged: not a whole run's seconds"
        if reason:
            why.append(reason)
        else:
            kept.append(c)
    return kept, why


def _rank(pool: _Pool, runs: int) -> tuple:
    """Which pool a verdict uses: the official data first (only it tests the claim), then
    the most runs; on a tie fp32 (the sources' precision), then the canonical pipeline (the
    kind of code they ran); the rest makes the choice the same every time."""
    ex = pool.execution
    return (pool.official, runs, ex.startswith("fp32"), "canonical" in ex, pool.data, ex,
            pool.device, pool.fingerprint)  # fmt: skip


def _execution_text(pool: _Pool | None, runs: list[_Classified]) -> str:
    if pool is None or pool.execution != POOLED:
        return pool.execution if pool else ""
    labels = sorted({_execution_of(c.record) for c in runs})
    return labels[0] if len(labels) == 1 else "pooled: " + " + ".join(labels)


def _kept_apart(groups: dict[_Pool, list[_Classified]], chosen: _Pool | None) -> list[str]:
    return [f"{len(runs)} counted run(s) in {pool.describe()} kept apart: runs on other data "
            "never pool, nor runs of another precision or pipeline unless the study or claim "
            "says `pool_executions: true`"
            for pool, runs in groups.items() if pool != chosen]  # fmt: skip


def _on_data(verdict: verdicts.Verdict, pool: _Pool | None) -> verdicts.Verdict:
    """A verdict from runs on a copy of the data, marked as such wherever it is shown."""
    return verdict if pool is None or pool.official else verdicts.on_nonofficial_data(verdict)


def _diverged_note(runs: list[tuple[RunRecord, float]], metric: str) -> list[str]:
    diverged = sum(1 for r, _ in runs if r.status == "diverged")
    if not diverged:
        return []
    return [f"{diverged} of the {len(runs)} run(s) used diverged (loss NaN/inf); each counts as "
            f"{METRICS[metric].diverged.means}"]  # fmt: skip


def _run_notes(exp_runs: list[_Classified], metric: str = "",
               epoch: int | None = None) -> list[str]:  # fmt: skip
    """What exists for the experiment beyond the counted runs, said once per kind. An
    unfinished run that counts for this claim all the same (a test error at an epoch it has
    passed) is said to count here, not listed as not counted."""
    early = [c for c in exp_runs if not c.counted and c.counts_for(metric, epoch)]
    reasons = Counter(c.why_not for c in exp_runs
                      if not c.counted and not c.counts_for(metric, epoch))  # fmt: skip
    notes = [f"{n} run(s) not counted: {why}" for why, n in sorted(reasons.items())]
    if early:
        status = "/".join(sorted({c.record.status for c in early}))
        notes.insert(
            0,
            f"{len(early)} unfinished ({status}) run(s) counted: each has recorded "
            f"epoch {epoch}, and later epochs cannot change its test error there",
        )
    return notes


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2013"
    if unit == "" and abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) < 0.5 * 10**-digits:
        value = 0.0  # no "-0.00"
    return f"{value:.{digits}f}{unit}"


def _filled(rows: list, attr: str, empty: tuple = (None, "", "\u2013")) -> bool:
    """Whether any row has a value for ``attr``: a column that is all "–" is left out."""
    return any(_get(row, attr) not in empty for row in rows)


def _get(row, attr: str):
    return row.get(attr) if isinstance(row, dict) else getattr(row, attr)


def _tone(outcome: str) -> str:
    """The verdict a colour stands for, on any data (a CSS class suffix)."""
    base = outcome.removesuffix(f" {verdicts.ON_NONOFFICIAL_DATA}")
    return "".join(ch if ch.isalnum() else "-" for ch in base)


def _brief(outcome: str) -> str:
    """A verdict for a scoreboard cell: "not reproduced*" where the page explains the *."""
    base = outcome.removesuffix(f" {verdicts.ON_NONOFFICIAL_DATA}")
    return base + ("*" if base != outcome else "")


def _quoted(statement: str) -> str:
    """A source's words in quotation marks, once: a statement that quotes the source itself
    ('"As the layer increasing, ...", at 56 layers') keeps its own marks, made curly, and is
    not wrapped again."""
    if '"' not in statement:
        return f"\u201c{statement}\u201d"
    parts = statement.split('"')
    return "".join(part + ("\u201c\u201d"[i % 2] if i < len(parts) - 1 else "")
                   for i, part in enumerate(parts))  # fmt: skip


def _signed_percent(fraction: float | None) -> str:
    """A relative difference as "+1.25%" (exactly 0: "0%")."""
    if fraction is None:
        return "\u2013"
    return "0%" if fraction == 0 else f"{100 * fraction:+.2f}%"


def _claimed_text(claim: Claim, unit: str) -> str:
    spread = f" \u00b1 {claim.std:g}" if claim.std is not None else ""
    return f"{claim.stated()}{spread}{unit} ({claim.rule})"


def _value_row(study, claim: Claim, by_exp, anchor, source_label) -> ClaimRow:
    metric = METRICS[claim.metric]
    exp_runs = by_exp.get(claim.experiment, [])
    groups = _by_pool(exp_runs, study.pools_executions(claim), metric=claim.metric,
                      epoch=claim.epoch)  # fmt: skip
    chosen = max(groups, key=lambda k: _rank(k, len(groups[k]))) if groups else None
    runs = _counted_runs(groups.get(chosen, []), claim.metric, claim.epoch)
    repro = verdicts.apply_rule([v for _, v in runs], claim.rule, metric.lower_is_better)
    # Runs under way that do not count yet (_Classified.under_way): a damaged, stale,
    # override, subset or failed run is not (its note says why it does not count).
    pending = sum(c.pending_for(claim.metric, claim.epoch) for c in exp_runs)
    verdict = _on_data(verdicts.judge_value(claim, repro, pending=pending), chosen)
    unit = metric.unit
    return ClaimRow(
        study=study.name,
        anchor=anchor,
        kind="value",
        experiment=claim.experiment,
        source=source_label[claim.source],
        where=claim.where,
        metric=_value_metric_label(study, claim),
        unit=unit,
        claimed=_claimed_text(claim, unit),
        claimed_value=claim.value,
        claimed_std=claim.std,
        claimed_stated=claim.stated(),
        rule=str(claim.rule),
        reproduced=_reproduced_text(repro, unit),
        reproduced_value=repro.value if repro else None,
        rule_applied=repro.rule_applied if repro else "",
        n=repro.n if repro else 0,
        minimum=repro.minimum if repro else None,
        maximum=repro.maximum if repro else None,
        std=repro.std if repro else None,
        difference=verdict.difference,
        tolerance=verdict.tolerance,
        verdict=verdict.outcome,
        reason=verdict.reason,
        notes=[
            *filter(None, [claim.note]),
            *_diverged_note(runs[: repro.n] if repro else [], claim.metric),
            *_kept_apart(groups, chosen),
            *_run_notes(exp_runs, claim.metric, claim.epoch),
        ],
        interval_low=verdict.interval[0] if verdict.interval else None,
        interval_high=verdict.interval[1] if verdict.interval else None,
        execution=_execution_text(chosen, groups.get(chosen, [])),
        data=chosen.data if chosen else "",
        short_metric=_value_metric_label(study, claim, short=True),
        progress=_progress(exp_runs, claim, judged=repro is not None),
    )


def _value_metric_label(study: Study, claim: Claim, *, short: bool = False) -> str:
    """The metric's label; a test error that the experiment's recipe reports at its
    best-validation epoch (a run's summary ``test_error``) says so instead of "final epoch"."""
    text = (short_label if short else metric_label)(claim.metric, claim.epoch)
    recipe = study.experiment(claim.experiment).recipe
    if claim.metric in ("test_error", "test_accuracy") and (
        recipe.reported_epoch == "best_validation"
    ):
        if short:
            return text + " (best val.)"
        return text.replace("(final epoch)", "(best-validation epoch)")
    return text


def _progress(exp_runs: list[_Classified], claim: Claim, *, judged: bool = False) -> str:
    """Where the unfinished runs of a claim's experiment stand (paused, running, interrupted):
    the claim's metric at their last epoch, which decides nothing until a run counts. Beside a
    verdict already reached (``judged``), only that they are under way: the verdict is of the
    runs that count now, and may change once these count too."""
    runs = _unfinished(exp_runs, claim.metric, claim.epoch)
    if not runs:
        return ""
    if judged:
        more = f"{len(runs)} more run{'s' if len(runs) > 1 else ''}"
        return (f"{more} under way at {_where(runs, count=False)}: not counted yet; the "
                "verdict may change once they count")  # fmt: skip
    unit = METRICS[claim.metric].unit
    values = [v for r in runs if (v := _so_far(r.history, claim.metric, claim.epoch)) is not None]
    where = _where(runs)
    if not values:
        return f"at {where}: not counted"
    value = statistics.median(values)
    return f"so far {_fmt(value, unit, 2 if unit else 3)} at {where}: not counted"


def _unfinished(exp_runs: list[_Classified], metric: str = "",
                epoch: int | None = None) -> list[RunRecord]:  # fmt: skip
    """The runs under way with curves that do not already count for ``metric`` (a run past a
    claimed epoch does)."""
    return [c.record for c in exp_runs if c.pending_for(metric, epoch) and c.record.history]


def _where(runs: list[RunRecord], *, count: bool = True) -> str:
    """Where unfinished runs stand: "epoch 145/164 (paused)", "epoch 2-3/4 (paused, 2 runs)"."""
    done = sorted({len(r.history) for r in runs})
    total = {(r.summary or {}).get("epochs_total") for r in runs} - {None}
    epochs = f"{done[0]}" if len(done) == 1 else f"{done[0]}-{done[-1]}"
    epochs += f"/{total.pop()}" if len(total) == 1 else ""
    status = "/".join(sorted({r.status for r in runs}))
    where = f"epoch {epochs} ({status}" + (f", {len(runs)} runs" if count and len(runs) > 1 else "")
    return where + _copies(runs)


def _copies(runs: list[RunRecord]) -> str:
    """The end of a progress line's "(paused, 2 runs" that says where unfinished runs train
    on a copy of the data: a paused run's error on the JPEG copy is not the official data's,
    and is read against the source's figure before it counts."""
    copies = sum(_official(r) is False for r in runs)
    if not copies:
        return ")"
    if copies == len(runs):
        return f") {verdicts.ON_NONOFFICIAL_DATA}"
    return f", {copies} of them {verdicts.ON_NONOFFICIAL_DATA})"


def _so_far(history: list[dict], metric: str, epoch: int | None) -> float | None:
    """A metric as of a run's last epoch (the final-epoch metrics as if it ended there)."""
    last = history[-1]
    if metric == "test_error_at_epoch":
        at = [h.get("test_error") for h in history if h["epoch"] == epoch]
        return at[0] if at else None
    if metric == "best_test_error":
        errors = [h["test_error"] for h in history if h.get("test_error") is not None]
        return min(errors) if errors else None
    if metric == "test_accuracy":
        error = last.get("test_error")
        return None if error is None else 100.0 - error
    key = {"test_error": "test_error", "final_train_loss": "train_loss",
           "final_train_error": "train_error"}.get(metric)  # fmt: skip
    return last.get(key) if key else None


def _reproduced_text(repro: verdicts.Reproduction | None, unit: str) -> str:
    if repro is None:
        return "\u2013"
    text = _fmt(repro.value, unit)
    if repro.std is not None and repro.rule_applied.startswith("mean"):
        text += f" \u00b1 {repro.std:.2f}"
    return f"{text} ({repro.rule_applied})"


def _params_row(study, claim: Claim, anchor, source_label, kind: str = "params") -> ClaimRow:
    counts = claim.counts or "all"
    declared = (study.experiment(claim.experiment) if claim.experiment is not None
                else study.checkpoint(claim.checkpoint))  # fmt: skip
    measured = parameter_count(declared.model, counts)
    others = {c: parameter_count(declared.model, c) for c in verdicts.COUNT_CONVENTIONS
              if c != counts}  # fmt: skip
    verdict = verdicts.judge_params(claim, measured, others)
    stated = (
        f"{claim.value:,.0f}"
        if claim.resolution is None
        else (f"{claim.value / 1e6:g}M" if claim.resolution >= 1e4 else f"{claim.value:,.0f}")
    )
    return ClaimRow(
        study=study.name, anchor=anchor, kind=kind, experiment=claim.subject,
        source=source_label[claim.source], where=claim.where, metric=PARAMETERS, unit="",
        claimed=stated, claimed_value=claim.value, claimed_std=None,
        rule=("exact" if claim.resolution is None else f"rounded to {claim.resolution:,.0f}")
        + ("" if counts == "all" else ", without batch-norm parameters"),
        reproduced=f"{measured:,}", reproduced_value=measured, rule_applied="counted",
        n=1, minimum=measured, maximum=measured, std=None, difference=verdict.difference,
        tolerance=verdict.tolerance, verdict=verdict.outcome, reason=verdict.reason,
        notes=[*filter(None, [claim.note])],
        relative_difference=measured / claim.value - 1, severity=verdict.severity,
        short_metric=PARAMETERS,
    )  # fmt: skip


def _speed_claim_row(study, claim: Claim, by_exp, anchor, source_label) -> ClaimRow:
    counted = [c.record for c in by_exp.get(claim.experiment, []) if c.timed]
    speed = _speed_verdict(claim, counted, by_exp.get(claim.experiment, []),
                           study.pools_executions(claim))  # fmt: skip
    verdict, values, devices = speed.verdict, speed.used, speed.devices
    measured = statistics.median(values) if values else None
    return ClaimRow(
        study=study.name, anchor=anchor, kind="speed", experiment=claim.experiment,
        source=source_label[claim.source], where=claim.where, metric="seconds per epoch",
        unit=" s", claimed=f"{claim.stated()} s", claimed_value=claim.value, claimed_std=None,
        claimed_stated=claim.stated(),
        rule=str(claim.rule), reproduced=_fmt(measured, " s"), reproduced_value=measured,
        rule_applied=f"median of {len(values)}" if values else "", n=len(values),
        minimum=min(values) if values else None, maximum=max(values) if values else None,
        std=None, difference=verdict.difference, tolerance=verdict.tolerance,
        verdict=verdict.outcome, reason=verdict.reason, hardware=claim.hardware or "",
        notes=([f"solo runs measured on {', '.join(devices)}"] if devices else [])
        + _kept_apart(speed.pools, speed.chosen),
        execution=_execution_text(speed.chosen, speed.pools.get(speed.chosen, [])),
        data=speed.chosen.data if speed.chosen else "",
        short_metric=short_label("sec_per_epoch"),
    )  # fmt: skip


@dataclass
class _Speed:
    """A speed claim's verdict, the seconds per epoch it took the median of, the devices of
    the solo runs, and the pools of the solo runs on the claim's hardware (the chosen one's
    runs are those judged)."""

    verdict: verdicts.Verdict
    used: list[float]
    devices: list[str]
    pools: dict[_Pool, list[_Classified]] = field(default_factory=dict)
    chosen: _Pool | None = None


def _speed_verdict(
    claim: Claim, counted: list[RunRecord], exp_runs: list[_Classified], pooled: bool
) -> _Speed:
    """A speed claim's verdict over the counted complete runs of its experiment. A source's
    timing is of a run that had its device alone: only solo runs compare (harness.timings), so
    only a run under way alone on the claim's hardware so far leaves the claim under way. Of
    the solo runs on the claim's hardware, those of one execution and data count, chosen as
    for any claim (_rank): a median over bf16 and fp32 runs is neither's time, and runs on a
    copy of the data give a verdict marked as such."""
    solo = [r for r in counted if not timings.not_solo(r)]
    pending = sum(c.under_way and not timings.not_solo(c.record)
                  and verdicts.same_hardware(timings.devices(c.record)[0], claim.hardware or "")
                  for c in exp_runs)  # fmt: skip
    classified = {id(c.record): c for c in exp_runs}
    pools: dict[_Pool, list[_Classified]] = defaultdict(list)
    elsewhere = []  # on other hardware: judge_speed says how many it left out
    for r in solo:
        if verdicts.same_hardware(timings.devices(r)[0], claim.hardware or ""):
            pools[_pool_of(r, pooled)].append(classified[id(r)])
        else:
            elsewhere.append(r)
    chosen = max(pools, key=lambda k: _rank(k, len(pools[k]))) if pools else None
    judged = [c.record for c in pools.get(chosen, [])] + elsewhere
    verdict, used = verdicts.judge_speed(
        claim,
        [(timings.devices(r)[0], v) for r in judged if (v := r.value("sec_per_epoch")) is not None],
        pending=pending,
    )
    verdict = _on_data(verdict, chosen)
    if counted and not solo:
        why = "; ".join(sorted({timings.not_solo(r) for r in counted}))
        verdict = verdicts.Verdict(
            verdicts.NOT_COMPARABLE,
            f"no counted run had its device alone ({why}); a solo run is needed to compare "
            "with the source's timing",
        )
    return _Speed(verdict, used, sorted({timings.devices(r)[0] for r in solo}), dict(pools),
                  chosen)  # fmt: skip


def _ordering_row(study, claim: OrderingClaim, by_exp, anchor, source_label) -> ClaimRow:
    pooled = study.pools_executions(claim)
    exp_runs = [by_exp.get(name, []) for name in claim.experiments]
    # Seconds compare as a speed claim's do: solo runs only, every side on one device.
    timed = METRICS[claim.metric].scale is SECONDS
    left_out: dict[str, list[str]] = {}
    if timed:
        solo = [_solo_timed(runs) for runs in exp_runs]
        exp_runs = [kept for kept, _ in solo]
        left_out = {n: why for n, (_, why) in zip(claim.experiments, solo, strict=True) if why}
    groups = [_by_pool(runs, pooled, by_device=timed, metric=claim.metric, epoch=claim.epoch)
              for runs in exp_runs]  # fmt: skip
    keys = {key for g in groups for key in g}
    # One execution for every side: the one that covers most sides, then as for values.
    chosen = max(keys, key=lambda k: (sum(k in g for g in groups),
                                      *_rank(k, sum(len(g.get(k, [])) for g in groups))),
                 default=None)  # fmt: skip
    sides = []
    for name, g in zip(claim.experiments, groups, strict=True):
        runs = _counted_runs(g.get(chosen, []), claim.metric, claim.epoch)
        diverged = sum(1 for r, _ in runs if r.status == "diverged")
        sides.append(verdicts.Side(name, [v for _, v in runs], diverged))
    # Sides with runs that may yet count (a side on seconds: runs alone on their device so far).
    under_way = [name for name in claim.experiments
                 if any(c.pending_for(claim.metric, claim.epoch)
                        and not (timed and timings.not_solo(c.record))
                        for c in by_exp.get(name, []))]  # fmt: skip
    verdict = _on_data(verdicts.judge_ordering(claim, sides, under_way), chosen)
    stranded = [(name, g) for name, g in zip(claim.experiments, groups, strict=True)
                if g and chosen not in g]  # fmt: skip
    if stranded:
        found = "; ".join(f"{name}: {' | '.join(sorted(p.describe() for p in g))}"
                          for name, g in stranded)  # fmt: skip
        verdict = verdicts.Verdict(
            verdicts.NOT_COMPARABLE,
            f"no counted runs of every experiment under one execution and data"
            f"{' on one device' if timed else ''} ({chosen.describe()} for the others; "
            f"{found}); runs on other data never pool, nor runs of another precision or "
            "pipeline unless the study or claim says `pool_executions: true`"
            + ("; seconds on one device say nothing of another's" if timed else ""),
        )
    if unsolo := [n for n, g in zip(claim.experiments, groups, strict=True)
                  if not g and n in left_out]:  # fmt: skip
        why = "; ".join(sorted({w for n in unsolo for w in left_out[n]}))
        verdict = verdicts.Verdict(
            verdicts.NOT_COMPARABLE,
            f"no counted run of {', '.join(unsolo)} had its device alone ({why}); a source "
            "times a run that had its GPU alone, so only solo runs' seconds compare",
        )
    arrow = " < " if claim.direction == "increasing" else " > "
    return ClaimRow(
        study=study.name, anchor=anchor, kind="ordering", experiment=", ".join(claim.experiments),
        source=source_label[claim.source], where=claim.where,
        metric=metric_label(claim.metric, claim.epoch), unit="", claimed=claim.statement,
        claimed_value=None, claimed_std=None,
        rule=arrow.join(claim.experiments), reproduced=verdict.reason if sides else "",
        reproduced_value=None,
        rule_applied="mean over counted " + ("solo runs on one device" if timed else "runs"),
        n=min(len(s.values) for s in sides), minimum=None, maximum=None, std=None,
        difference=None, tolerance=None, verdict=verdict.outcome, reason=verdict.reason,
        notes=[*filter(None, [claim.note]),
               *(f"{k} run(s) of {n} left out: {w}" for n, ws in left_out.items()
                 for w, k in Counter(ws).items())],
        execution=_execution_text(chosen, [c for g in groups for c in g.get(chosen, [])]),
        data=chosen.data if chosen else "",
        short_metric=short_label(claim.metric, claim.epoch),
        progress=_ordering_progress(claim, by_exp, verdict),
        under_way=under_way,
    )  # fmt: skip


def _ordering_progress(claim: OrderingClaim, by_exp, verdict: verdicts.Verdict) -> str:
    """The runs under way of an ordering's experiments, each side's where it stands."""
    sides = [(name, runs) for name in claim.experiments
             if (runs := _unfinished(by_exp.get(name, []), claim.metric, claim.epoch))]  # fmt: skip
    if not sides:
        return ""
    where = "; ".join(f"{name} at {_where(runs)}" for name, runs in sides)
    if verdict.outcome in (verdicts.UNDER_WAY, verdicts.NOT_RUN):
        return f"under way, not counted: {where}"
    return f"under way, not counted yet (the verdict may change once they count): {where}"


def _speed_rows(study: Study, by_exp) -> list[SpeedRow]:
    claims = {c.experiment: c for c in study.claims
              if isinstance(c, Claim) and c.metric == "sec_per_epoch"}  # fmt: skip
    rows = []
    for exp in study.experiments:
        # Every run whose seconds are a whole run's, solo or not (the table says which), but
        # not one whose environment was ignored: it cannot say on what or how they were made.
        counted = [c.record for c in by_exp.get(exp.name, [])
                   if c.timed and not c.record.environment_damage]  # fmt: skip
        claim = claims.get(exp.name)
        if not counted and claim is None:
            continue
        spe = [v for r in counted if (v := r.value("sec_per_epoch")) is not None]
        ips = [h["images_per_second"] for r in counted for h in r.history
               if h.get("full_epoch") and not h.get("first_of_session")
               and h.get("images_per_second")]  # fmt: skip
        envs = [r.environment or {} for r in counted]
        verdict = ""
        if claim:
            verdict = _speed_verdict(
                claim, counted, by_exp.get(exp.name, []), study.pools_executions(claim)
            ).verdict.outcome
        rows.append(
            SpeedRow(
                experiment=exp.name,
                sec_per_epoch=statistics.median(spe) if spe else None,
                images_per_second=statistics.median(ips) if ips else None,
                runs=len(counted),
                devices=", ".join(sorted({e.get("device_name", "?") for e in envs})) or "\u2013",
                precision=", ".join(
                    sorted({_execution(r.environment or {}, r.summary) for r in counted})
                )
                or "\u2013",
                claimed=f"{claim.value:g} s" if claim else "",
                claimed_hardware=claim.hardware or "" if claim else "",
                verdict=verdict,
            )
        )
    return rows


def _execution(env: dict, summary: dict | None = None) -> str:
    parts = [env.get("precision", "?")]
    if (summary or {}).get("compile_fallback"):
        parts.append("eager (compilation failed)")
    elif env.get("compile"):
        parts.append("compiled")
    if env.get("pipeline") == "canonical":
        parts.append("canonical pipeline")
    if env.get("fused"):
        parts.append(f"fused group of {env['fused']} (sec/epoch is the group's)")
    elif (shared := timings.sharing(env, summary)) > 1:
        parts.append(f"GPU shared by {shared} runs")
    return " ".join(parts)


def _per_device(history: list[dict]) -> str:
    """For a run trained on several devices: each one's epochs and median sec/epoch."""
    by_device: dict[str, list[dict]] = defaultdict(list)
    for h in history:
        by_device[h.get("device") or "?"].append(h)
    if len(by_device) < 2:
        return ""
    parts = []
    for device, epochs in by_device.items():
        timed = [h["train_seconds"] for h in epochs
                 if h.get("full_epoch") and not h.get("first_of_session")]  # fmt: skip
        timed = timed or [h["train_seconds"] for h in epochs]
        parts.append(f"{device}: {len(epochs)} epochs, {statistics.median(timed):.2f} s/epoch")
    return "; ".join(parts)


def _recipe_notes(study: Study) -> list[tuple[str, str]]:
    """The notes of the named recipes that experiments use, once each."""
    used = {e.recipe_name for e in study.experiments}
    return [(name, r.note) for name, r in study.recipes.items() if r.note and name in used]


def _experiment_view(study: Study, exp: Experiment) -> ExperimentView:
    notes = [n for n in (exp.note,) if n]  # the recipe's note is listed once, not per experiment
    if exp.recipe.note and exp.recipe != study.recipes.get(exp.recipe_name or ""):
        notes.append(exp.recipe.note)  # a recipe of its own, changed from the named one
    return ExperimentView(
        name=exp.name,
        model=exp.model_name or "(spec)",
        architecture=f"depth {exp.model.depth}, {exp.model.describe()}",
        params=parameter_count(exp.model),
        seeds=study.seeds_of(exp),
        recipe=(exp.recipe_name + ": " if exp.recipe_name else "") + recipe_summary(exp.recipe),
        notes=notes,
    )


def _in_store(path: Path) -> str:
    """A run's or an evaluation's directory relative to the results directory, which the page
    names once: the store's layout is always <study>/<experiment or checkpoint>/<run>."""
    return "/".join(Path(path).parts[-3:])


def _counted_at_epochs(study: Study, c: _Classified) -> tuple[int, ...]:
    """The epochs of the study's claims on the test error at one epoch that this run, not
    counted otherwise, counts for (_Classified.counts_for)."""
    if c.counted:
        return ()
    epochs = {claim.epoch for claim in study.claims
              if isinstance(claim, Claim) and claim.metric == "test_error_at_epoch"
              and claim.experiment == c.record.experiment
              and c.counts_for(claim.metric, claim.epoch)}  # fmt: skip
    return tuple(sorted(epochs))


def _run_view(c: _Classified, counted_at_epochs: tuple[int, ...] = ()) -> RunView:
    r = c.record
    s = r.summary or {}
    env = r.environment or {}
    total = s.get("epochs_total")
    done = s.get("epochs_done", len(r.history))
    return RunView(
        name=r.name,
        experiment=r.experiment,
        seed=r.seed,
        status=r.status,
        counted=c.counted,
        why_not=c.why_not,
        test_error=s.get("test_error"),
        epochs=f"{done}/{total}" if total else str(done),
        sec_per_epoch=s.get("sec_per_epoch"),
        device=_per_device(r.history) or env.get("device_name", "\u2013"),
        precision=_execution(env, s) if env else "\u2013",
        official_data=_official(r),
        finished=s.get("finished", ""),
        path=_in_store(r.path),
        epochs_done=done if isinstance(done, int) else len(r.history),
        epochs_total=total if isinstance(total, int) else None,
        not_solo=timings.not_solo(r) if env else "",
        counted_at_epochs=counted_at_epochs,
        shared_with=s.get("shared_with") or "",
        warning=environment_warning(r),
        under_way=c.under_way,
        images_note=_images_note(r.data),
    )


def _images_note(data: dict) -> str:
    """What a run's test error is on where that is not the whole test set (a smoke study's
    1,000 test images, --smoke's 500), and what it trained on where that is a subset beyond
    any validation hold-out: its summary's record of the images it used."""
    test, train = data.get("test_images"), data.get("train_images")
    held = data.get("validation_images") if isinstance(data.get("validation_images"), int) else 0
    part_test = isinstance(test, int) and 0 < test < CIFAR10_TEST_IMAGES
    part_train = isinstance(train, int) and train + held < CIFAR10_TRAIN_IMAGES
    if part_test and part_train:
        return f"on {test:,} test images, trained on {train:,}"
    if part_test:
        return f"on {test:,} test images"
    return f"trained on {train:,} images" if part_train else ""


def environment_warning(r: RunRecord) -> str:
    """What an ignored environment.json costs its run, naming the file, field and value."""
    return environment_ignored(r.environment_damage) if r.environment_damage else ""


# --------------------------------------------------------------------------- checkpoints
# A released checkpoint's claims: an evaluation is one value of the claim's metric, judged by
# verdicts.judge_fixed_weights (the claim's rounding plus a few images: no seed noise), and
# one made on a copy of the data is marked so (on_nonofficial_data).
# What differs is only which evaluation counts: one whose declaration (file, model, layout,
# normalisation) is the study's current one, preferring the official release.

EVALUATED_WITH = "fp32, evaluation of released weights"
# A checkpoint has no epochs of ours: its figures are of the weights as released.
CHECKPOINT_LABELS = {"test_error": "test error", "test_accuracy": "test accuracy"}


@dataclass
class _Judged:
    record: EvaluationRecord
    counted: bool
    why_not: str

    @property
    def official(self) -> bool:
        return self.record.data.get("official") is True


def _classify_evaluations(study: Study, evaluations: list[EvaluationRecord]) -> list[_Judged]:
    from harness.evaluate import declaration, declaration_hash

    specs = {c.name: c for c in study.checkpoints}
    out = []
    for e in evaluations:
        spec = specs.get(e.checkpoint)
        if spec is None:
            out.append(_Judged(e, False, "checkpoint no longer in the study"))
            continue
        if e.record is None:
            out.append(_Judged(e, False, f"damaged: {e.damage}"))
            continue
        sha = spec.sha256 or ((e.record.get("file") or {}).get("sha256") or "")
        expected = declaration_hash(declaration(study, spec, sha))
        error = e.record.get("test_error")
        if e.record.get("config_hash") != expected:
            out.append(_Judged(e, False, "stale: the study's declaration of it changed since"))
        elif not isinstance(error, int | float) or not (math.isfinite(error)
                                                        and _is_error(error)):  # fmt: skip
            out.append(_Judged(e, False, "its record has no test error in 0..100%"))
        else:
            out.append(_Judged(e, True, ""))
    return out


def _chosen_evaluation(judged: list[_Judged], checkpoint: str) -> tuple[_Judged | None, list]:
    """The evaluation a claim uses (official data first, then the latest), and the others."""
    counted = [j for j in judged if j.counted and j.record.checkpoint == checkpoint]
    if not counted:
        return None, []
    counted.sort(key=lambda j: (j.official, j.record.value("finished") or ""), reverse=True)
    return counted[0], counted[1:]


def _checkpoint_row(study, path: str, claim: Claim, judged: list[_Judged], anchor,
                    source_label) -> ClaimRow:  # fmt: skip
    if claim.metric == "params":
        return _params_row(study, claim, anchor, source_label, kind="checkpoint")
    metric = METRICS[claim.metric]
    chosen, others = _chosen_evaluation(judged, claim.checkpoint)
    value = None
    if chosen is not None:
        error = chosen.record.value("test_error")
        value = 100.0 - error if claim.metric == "test_accuracy" else error
    repro = verdicts.apply_rule([value] if value is not None else [], claim.rule,
                                metric.lower_is_better)  # fmt: skip
    if repro is None:
        # The study file as given, which a user can run as it stands (not the study's name).
        verdict = verdicts.Verdict(verdicts.NOT_RUN, f"not evaluated yet: `repro evaluate {path}` "
                                   "(no training needed)")  # fmt: skip
    else:
        verdict = verdicts.judge_fixed_weights(claim, repro.value)
        if not chosen.official:
            verdict = verdicts.on_nonofficial_data(verdict)
    data = _data_of(chosen.record.data)[1] if chosen else ""
    notes = [*filter(None, [claim.note])]
    if chosen is not None:
        notes.append(f"evaluated {chosen.record.value('finished')} on {data}: "
                     f"{_in_store(chosen.record.path)}")  # fmt: skip
        metadata = (chosen.record.value("file") or {}).get("metadata") or {}
        notes += [f"the file itself records {k} = {v:.6g}" for k, v in metadata.items()
                  if isinstance(v, int | float)]  # fmt: skip
    notes += [f"also evaluated on {_data_of(o.record.data)[1]}: test error "
              f"{o.record.value('test_error'):.2f}% (not used: the official release is "
              "preferred, then the latest)" for o in others]  # fmt: skip
    reasons = Counter(j.why_not for j in judged
                      if j.record.checkpoint == claim.checkpoint and not j.counted)  # fmt: skip
    notes += [f"{n} evaluation(s) not counted: {why}" for why, n in sorted(reasons.items())]
    unit = metric.unit
    return ClaimRow(
        study=study.name, anchor=anchor, kind="checkpoint", experiment=claim.checkpoint,
        source=source_label[claim.source], where=claim.where,
        metric=CHECKPOINT_LABELS[claim.metric], unit=unit,
        claimed=_claimed_text(claim, unit), claimed_value=claim.value, claimed_std=claim.std,
        claimed_stated=claim.stated(),
        rule=str(claim.rule), reproduced=_reproduced_text(repro, unit),
        reproduced_value=repro.value if repro else None,
        rule_applied=repro.rule_applied if repro else "", n=repro.n if repro else 0,
        minimum=repro.minimum if repro else None, maximum=repro.maximum if repro else None,
        std=None, difference=verdict.difference, tolerance=verdict.tolerance,
        verdict=verdict.outcome, reason=verdict.reason, notes=notes,
        interval_low=verdict.interval[0] if verdict.interval else None,
        interval_high=verdict.interval[1] if verdict.interval else None,
        execution=EVALUATED_WITH if chosen else "", data=data,
        short_metric=short_label(claim.metric),
    )  # fmt: skip


def _checkpoint_view(study: Study, spec: CheckpointSpec) -> CheckpointView:
    norm = spec.normalization
    normalization = norm.kind + (f" (mean {list(norm.mean)}, std {list(norm.std)})"
                                 if norm.mean is not None else "")  # fmt: skip
    return CheckpointView(
        name=spec.name,
        model=spec.model_name or "(spec)",
        architecture=f"depth {spec.model.depth}, {spec.model.describe()}",
        params=parameter_count(spec.model),
        origin=spec.url or spec.path or "",
        sha256=spec.sha256 or "(not declared: recorded when evaluated)",
        layout=spec.layout,
        normalization=normalization,
        notes=[n for n in (spec.note,) if n],
    )


def _layout_view(name: str, layout) -> LayoutView:
    from harness.checkpoints import TRANSFORMS

    return LayoutView(
        name=name,
        description=layout.description or "",
        strip_prefix=layout.strip_prefix or "",
        state_dict_key=layout.state_dict_key or "(the file is the state dict)",
        rules=[f"{r.pattern} \u2192 {r.to}" for r in layout.rules],
        transforms=[f"{t}: {TRANSFORMS[t].description}" for t in layout.transforms],
    )


def _evaluation_view(j: _Judged) -> EvaluationView:
    r = j.record
    env = r.value("environment") or {}
    file = r.value("file") or {}
    return EvaluationView(
        name=r.name,
        checkpoint=r.checkpoint,
        counted=j.counted,
        why_not=j.why_not,
        test_error=r.value("test_error"),
        official_data=r.data.get("official"),
        data=_data_of(r.data)[1] if r.record else "–",
        device=env.get("device_name", "–"),
        seconds=r.value("seconds"),
        finished=r.value("finished") or "",
        command=_command_text(env.get("command") or ""),
        path=_in_store(r.path),
        file=f"sha256 {file.get('sha256', '?')[:16]}, from the {file.get('origin', '?')}",
    )


def _command_text(command: str) -> str:
    """The recorded command as a person types it: `repro ...`, not the script's path."""
    parts = command.split(" ", 1)
    if parts and Path(parts[0]).name in ("repro", "__main__.py"):
        return "repro" + (f" {parts[1]}" if len(parts) > 1 else "")
    return command


# Whose test error on the official release a copy's cost is measured against.
OUR_REFERENCE = "ours, on the official release"
STATED_REFERENCE = "the source's stated figure"


def _copy_penalty(judged: list[_Judged], study: Study) -> list[dict]:
    """Each checkpoint evaluated on a copy of the data, against the same weights on the
    official release: our own evaluation where there is one, else the source's stated test
    error (a claim on the very weights evaluated). A measured figure, with where and how."""
    stated = {c.checkpoint: c.value for c in study.claims
              if isinstance(c, Claim) and c.checkpoint and c.metric == "test_error"}  # fmt: skip
    rows = []
    for j in judged:
        if not j.counted or j.official:
            continue
        ours = [o for o in judged if o.counted and o.official
                and o.record.checkpoint == j.record.checkpoint]  # fmt: skip
        if ours:
            reference, kind = ours[0].record.value("test_error"), OUR_REFERENCE
        elif j.record.checkpoint in stated:
            reference, kind = stated[j.record.checkpoint], STATED_REFERENCE
        else:
            continue
        view = _evaluation_view(j)
        error = j.record.value("test_error")
        rows.append({
            "study": study.name, "checkpoint": j.record.checkpoint,
            "data": (j.record.data.get("dataset_fingerprint") or "")[:12],
            "copy_error": error, "reference": reference, "reference_kind": kind,
            "penalty": error - reference, "finished": view.finished, "device": view.device,
            "command": view.command,
        })  # fmt: skip
    return rows


# --------------------------------------------------------------------------- figures


GREYED_NOTE = (
    " Greyed lines with hollow markers, labelled \u201cnot counted\u201d, are runs that count "
    "toward no verdict (paused, unfinished, smoke or override runs, stale configs): drawn for "
    "what they show."
)


COUNTED_AT_NOTE = (
    " A greyed run labelled \u201ccounted only at epoch N\u201d is unfinished but has passed "
    "that epoch: its test error there counts toward the claim drawn as a star, the rest of "
    "its curve toward none."
)


def _figures(study: Study, classified: list[_Classified]) -> list[Figure]:
    if not study.experiments:
        return []  # a study of released checkpoints only: nothing was trained
    figures = []
    for group, series in _series_by_group(study, classified).items():
        # The source as the tables cite it ("Wen-Jie Tseng 2018"), not its key in the study.
        title = study.name
        if group != study.name:
            title += f", experiments following {_source_label(study.sources[group])}"
        greyed = "" if all(s.counted for s in series) else GREYED_NOTE
        if any(s.counted_at for s in series):
            greyed += COUNTED_AT_NOTE
        if any(s.planned_epochs and s.curves["epoch"].max() < s.planned_epochs for s in series):
            greyed += (" The epoch axis runs to the planned last epoch, dotted: unfinished runs "
                       "stop short of it.")  # fmt: skip
        claimed = _CLAIMED_NOTE if any(s.claims for s in series) else ""
        drawn = {e.name for e in study.experiments if (e.follows or study.name) == group}
        data = _data_note([c.record for c in classified
                           if c.record.history and c.record.experiment in drawn],
                          claimed=bool(claimed))  # fmt: skip
        if any(s.plain for s in series) and any(not s.plain for s in series):
            plot = plots.degradation_plot(series, title)
            figures.append(Figure(
                f"{title}: plain versus residual",
                data + "Drawn like He et al. 2015, Figure 6: thin dashed lines are training "
                "error, bold lines test error; shaded bands span the random seeds." + _LOOK_NOTE
                + claimed + _range_note(plot, "error", from_zero=True) + greyed,
                plot,
                _alt("Two panels of line charts, plain nets and residual nets, of training "
                     "and test error (%) against epoch, on one error axis from 0", plot,
                     series, ["train_error", "test_error"])
                + (" " + data.strip() if data else ""),
                plots.degradation_plot(series, title, plots.PHONE),
            ))  # fmt: skip
        plot = plots.curves_plot(series, title)
        figures.append(Figure(
            f"{title}: training loss and test error",
            data + "Mean over random seeds; shaded bands span them." + _LOOK_NOTE + claimed
            + _range_note(plot, "test error") + greyed,
            plot,
            _alt("Two line charts against epoch: training loss"
                 + (" (log scale)" if plot.axes[0].get_yscale() == "log" else "")
                 + " and test error (%)", plot, series, ["train_loss", "test_error"])
            + (" " + data.strip() if data else ""),
            plots.curves_plot(series, title, plots.PHONE),
        ))  # fmt: skip
    figures.append(_lr_figure(study, classified))
    return figures


def _data_note(records: list[RunRecord], *, claimed: bool) -> str:
    """The first words of a figure's caption where its runs trained on a copy of the data: a
    curve on the JPEG copy drawn beside a source's claimed value invites the comparison that
    the banner at the top warns against, and a figure is often read without the banner."""
    copies = [r for r in records if _official(r) is False]  # as the banner counts
    if not copies:
        return ""
    fingerprints = sorted({_run_data(r)[1].removeprefix("not the official release ")
                           for r in copies})  # fmt: skip
    if len(copies) == len(records):
        which = {1: "The run drawn", 2: "Both runs drawn"}.get(
            len(copies), f"All {len(copies)} runs drawn")  # fmt: skip
    else:
        which = f"{len(copies)} of the {len(records)} runs drawn"
    text = (
        f"{which} trained and {'was' if len(copies) == 1 else 'were'} tested on a copy of "
        f"CIFAR-10 that is not the official release {', '.join(fingerprints)}: "
        f"{'its' if len(copies) == 1 else 'their'} errors are not those of the official data"
    )
    return text + (", so not to be read against the sources' claimed values drawn beside "
                   "them. " if claimed else ". ")  # fmt: skip


def _alt(what: str, plot: MplFigure, series: list[plots.Series], columns: list[str]) -> str:
    """The figure's alt text: what is drawn, where each curve ends, what is claimed for it,
    and what runs off the axes."""
    off = plots.off_scale(plot, spoken=True)
    return (f"{what}. {plots.describe(series, columns)}"
            + (f" Off the axes: {'; '.join(off)}." if off else ""))  # fmt: skip


_LOOK_NOTE = " Each net has its own colour and marker, the same in every figure of the study."
_CLAIMED_NOTE = (
    " Dash-dot lines are the values the sources claim at the end of training, ending in the "
    "net's marker at the last epoch; a star is a test error claimed after a given epoch."
)


def _range_note(plot: MplFigure, what: str, *, from_zero: bool = False) -> str:
    """What the error axis shows where it leaves early epochs or far claims off: said in the
    caption as well as over the panel, so that a clipped curve is not read as one that started
    low, nor a claim marked at the edge as one at the edge's value."""
    notes = plots.off_scale(plot)
    if not notes:
        return ""
    text = (f" The {what} axis{' starts at 0 and' if from_zero else ''} is fitted to the last "
            "half of training and the claimed values, where runs and claims differ")  # fmt: skip
    said = []
    if any(re.search(r"off scale \((up|down) to", n) for n in notes):
        said.append("the note over a panel says which earlier epochs run off it (\u25b2 above, "
                    "\u25bc below) and how far")  # fmt: skip
    if plots.claims_off_scale(plot):
        said.append(f"a claimed value more than {plots.CLAIM_REACH:g} times the curves' range "
                    "from them is a triangle at the edge it lies beyond, its value in the note "
                    "over the panel and in the legend")  # fmt: skip
    return text + "; " + "; ".join(said) + "."


# A claim on a curve's end, or at one epoch, drawn against that curve.
_CURVE_OF = {
    "test_error": "test_error", "best_test_error": "test_error",
    "test_error_at_epoch": "test_error", "test_accuracy": "test_error",
    "final_train_loss": "train_loss", "final_train_error": "train_error",
}  # fmt: skip


def _claims_drawn(study: Study, exp: Experiment) -> tuple[plots.Claimed, ...]:
    """The experiment's claimed values that a curve can be read against."""
    drawn = []
    for c in study.claims:
        if not isinstance(c, Claim) or c.experiment != exp.name or c.metric not in _CURVE_OF:
            continue
        unit = METRICS[c.metric].unit
        what = f"{short_label(c.metric, c.epoch)} {c.stated()}{unit}"
        value = c.value
        if c.metric == "test_accuracy":  # drawn as the error it is
            value = 100 - c.value
            what += f" (error {value:.4g}%)"
        where = c.where if c.source == exp.follows else \
            f"{_source_label(study.sources[c.source])}, {c.where}"  # fmt: skip
        epoch = c.epoch if c.metric == "test_error_at_epoch" else None
        drawn.append(plots.Claimed(_CURVE_OF[c.metric], value, f"{what} ({where})", epoch))
    return tuple(drawn)


def _series_by_group(study: Study, classified: list[_Classified]) -> dict[str, list]:
    """Every run with curves, as series grouped by the source their experiment follows: the
    counted runs of an experiment as one series, the rest by why they do not count (an
    override's runs by their label), so that a study whose runs are all paused or smoke runs
    still shows its curves, greyed."""
    bundles: dict[tuple, list[RunRecord]] = defaultdict(list)
    for c in classified:
        if c.record.history:
            why = "" if c.counted else _why_not_briefly(c)
            at = _counted_at_epochs(study, c)  # not counted, but at these epochs
            bundles[(c.record.experiment, c.record.label, why, at)].append(c.record)
    groups: dict[str, list[plots.Series]] = defaultdict(list)
    styles = _styles(study)
    for exp in study.experiments:
        mine = sorted((k for k in bundles if k[0] == exp.name), key=lambda k: (bool(k[2]), k))
        for n, (_, label, why, at) in enumerate(mine):
            runs = bundles[(exp.name, label, why, at)]
            planned = [t for r in runs if isinstance(t := r.value("epochs_total"), int)]
            groups[exp.follows or study.name].append(plots.Series(
                label=exp.name + (f"~{label}" if label else ""),
                curves=curves_frame(runs),
                depth=exp.model.depth, plain=exp.model.shortcut == "none",
                model=exp.model.label(), counted=not why, why_not=why,
                planned_epochs=max(planned, default=None),
                claims=_claims_drawn(study, exp) if n == 0 else (),  # drawn once
                style=styles[exp.name], counted_at=at,
            ))  # fmt: skip
    return {g: series for g, series in groups.items() if series}


def _styles(study: Study) -> dict[str, int]:
    """Each experiment's colour and marker (by number), the same in every figure of the study:
    one per net ("ResNet-20" looks the same in every source's figures), or per experiment
    where two experiments of one source train the same net."""
    by_group: dict[str, list[Experiment]] = defaultdict(list)
    for exp in study.experiments:
        by_group[exp.follows or study.name].append(exp)
    keys = {}
    for exps in by_group.values():
        nets = Counter(e.model.label() for e in exps)
        keys.update({e.name: e.model.label() if nets[e.model.label()] == 1 else e.name
                     for e in exps})  # fmt: skip
    # By depth, so that the nets one figure compares most (plain-20 and ResNet-20) take the
    # first colours, which are the furthest apart (blue and red), then in the study's order.
    exps = sorted(study.experiments, key=lambda e: e.model.depth)
    order = list(dict.fromkeys(keys[e.name] for e in exps))
    return {name: order.index(key) for name, key in keys.items()}


def _why_not_briefly(c: _Classified) -> str:
    """Why a run does not count, in a word or two for a legend (the run table says it all)."""
    if c.record.label:
        return "override"
    if c.why_not.startswith("stale"):
        return "stale config"
    if "subset" in c.why_not:
        return "trained on a subset"
    if c.record.status in ("complete", "diverged"):
        return "see the run table"
    return c.record.status


def _lr_figure(study: Study, classified: list[_Classified]) -> Figure:
    """Each experiment's own schedule, computed from its recipe; experiments whose schedules
    are identical share one line (named by the sources whose recipes they are), and the
    caption says so."""
    points: dict[str, list[tuple[float, float]]] = {}
    warmups: dict[str, str] = {}
    for exp in study.experiments:
        points[exp.name], warmups[exp.name] = _schedule(exp, classified)
    lines: dict[tuple, list[Experiment]] = defaultdict(list)
    for exp in study.experiments:
        lines[tuple(points[exp.name])].append(exp)
    schedules, notes, named_all = {}, [], []
    for line, exps in lines.items():
        named = _schedule_names(study, exps, lines.values())
        named_all += named.values()
        names = list(dict.fromkeys(named.values()))
        for exp in exps:
            note = f"{named[exp.name]}: {warmups[exp.name]}" if warmups[exp.name] else ""
            notes += [note] if note and note not in notes else []
        if len(names) > 1:
            notes.append(f"{' and '.join(names)} have the same schedule, drawn once")
        schedules[" = ".join(names)] = list(line)
    caption = "Learning rate against epoch for each experiment, computed from its recipe"
    if any(name not in points for name in named_all):
        caption += ", a line named by the source whose recipe it draws"
    caption += ("; " + "; ".join(notes) + ".") if notes else "."
    plot = plots.lr_plot(schedules, "learning rate")
    scale = " (log scale)" if plot.axes[0].get_yscale() == "log" else ""
    return Figure(
        f"{study.name}: learning-rate schedules",
        caption,
        plot,
        f"A step chart of learning rate{scale} against epoch. {plots.describe_steps(schedules)}",
        plots.lr_plot(schedules, "learning rate", plots.PHONE),
    )


def _schedule_names(study: Study, exps: list[Experiment], lines) -> dict[str, str]:
    """What to call one line, by experiment: its recipe, where it is the named recipe as
    declared and all of that recipe's experiments are on this line, by the source whose recipe
    it is as the page cites it ("Wen-Jie Tseng 2018", not the study's key "tseng2018"); else
    the experiment, by its name as the tables give it."""
    names = {}
    for exp in exps:
        named = study.recipes.get(exp.recipe_name or "")
        whole = named is not None and exp.recipe == named and all(
            e in exps for line in lines for e in line if e.recipe_name == exp.recipe_name
            and e.recipe == named
        )  # fmt: skip
        names[exp.name] = _recipe_label(study, exp.recipe_name) if whole else exp.name
    return names


def _recipe_label(study: Study, recipe: str | None) -> str:
    """A named recipe by the sources its experiments follow: "He et al. 2015"; with its key
    where another recipe follows the same sources ("He et al. 2015 (recipe he2015-warmup)"),
    and by its key alone where its experiments follow no source ("recipe tiny")."""

    def followed(name: str | None) -> tuple[str, ...]:
        mine = [e.follows for e in study.experiments if e.recipe_name == name]
        return tuple(dict.fromkeys(f for f in mine if f in study.sources))

    sources = followed(recipe)
    if not sources:
        return f"recipe {recipe}"
    label = " and ".join(_source_label(study.sources[s]) for s in sources)
    shared = [r for r in {e.recipe_name for e in study.experiments} if followed(r) == sources]
    return f"{label} (recipe {recipe})" if len(shared) > 1 else label


def _schedule(exp: Experiment, classified: list[_Classified]) -> tuple[list, str]:
    """The experiment's learning rate against epoch, and a note where it depends on runs
    (without the line's name, which the caller gives it)."""
    recipe, note = exp.recipe, ""
    warmup = recipe.warmup
    if warmup is not None and warmup.until_train_error_below is not None:
        # Where a threshold warm-up ends is only known from runs: draw the median end.
        ends = [
            end
            for c in classified
            if c.faithful and c.record.experiment == exp.name
            if (end := c.record.value("warmup_ended_at_iteration")) is not None
        ]
        fixed = Warmup(lr=warmup.lr, iterations=int(statistics.median(ends))) if ends else None
        recipe = recipe.model_copy(update={"warmup": fixed})
        note = f"warm-up until training error < {warmup.until_train_error_below:g}%, " + (
            "drawn at the median end observed" if ends else "not drawn (no run yet)"
        )
    per_epoch = nominal_batches_per_epoch(recipe)
    length = Length.of(recipe, per_epoch)
    lr = LearningRate(recipe, length)
    step = max(1, length.total_iterations // 2000)
    return [(i / per_epoch, lr(i)) for i in range(0, length.total_iterations, step)], note


# --------------------------------------------------------------------------- provenance


def _provenance(records: list[RunRecord], reports: list[StudyReport],
                evaluations: list[EvaluationRecord]) -> Provenance:  # fmt: skip
    datasets: Counter = Counter()
    evaluated: Counter = Counter()  # checkpoint evaluations per data set
    software: Counter = Counter()
    devices: Counter = Counter()
    commits: Counter = Counter()
    times = []
    for r in records:
        env = r.environment or {}
        data = r.data
        if data:
            datasets[(data.get("dataset_fingerprint", ""), data.get("official"),
                      data.get("path", ""))] += 1  # fmt: skip
        if env:
            software[(env.get("torch"), env.get("torchvision"), env.get("cuda"),
                      env.get("cudnn"), env.get("python"))] += 1  # fmt: skip
            devices[(env.get("device_name"), env.get("driver"), _execution(env, r.summary))] += 1
            h = env.get("harness") or {}
            commits[(h.get("commit"), h.get("dirty"))] += 1
        if isinstance(env.get("time"), str):  # a run still in its first session has no summary
            times.append(env["time"])
        for s in (r.summary or {}).get("sessions") or []:
            if isinstance(s, dict) and isinstance(s.get("time"), str):
                times.append(s["time"])
        if (r.summary or {}).get("finished"):
            times.append(r.summary["finished"])
    for e in evaluations:
        if e.data:
            evaluated[(e.data.get("dataset_fingerprint", ""), e.data.get("official"),
                       e.data.get("path", ""))] += 1  # fmt: skip
        env = e.value("environment") or {}
        if env:  # the software, device and code of an evaluation count like a run's
            software[(env.get("torch"), env.get("torchvision"), env.get("cuda"),
                      env.get("cudnn"), env.get("python"))] += 1  # fmt: skip
            devices[(env.get("device_name"), env.get("driver"), "fp32 evaluation")] += 1
            h = env.get("harness") or {}
            commits[(h.get("commit"), h.get("dirty"))] += 1
        if isinstance(e.value("finished"), str):
            times.append(e.value("finished"))
    return Provenance(
        datasets=[{"fingerprint": f, "official": o, "path": p, "runs": datasets[(f, o, p)],
                   "evaluations": evaluated[(f, o, p)]}
                  for (f, o, p), _ in (datasets + evaluated).most_common()],
        software=[{"torch": t, "torchvision": tv, "cuda": c, "cudnn": cd, "python": py,
                   "runs": n} for (t, tv, c, cd, py), n in software.most_common()],
        devices=[{"device": d, "driver": dr, "execution": e, "runs": n}
                 for (d, dr, e), n in devices.most_common()],
        commits=[{"commit": c, "dirty": d, "runs": n} for (c, d), n in commits.most_common()],
        first=min(times) if times else "",
        last=max(times) if times else "",
        copy_penalty=(penalty := [row for s in reports for row in s.copy_penalty]),
        copy_penalty_mean=statistics.fmean(r["penalty"] for r in penalty) if penalty else None,
    )  # fmt: skip


# --------------------------------------------------------------------------- output


def _tolerance_digits(tolerance: float | None) -> int:
    """Decimals that show a tolerance to two significant figures, at least two: released
    weights' 0.035 (rounding plus 3 test images) read "± 0.03" beside a reason that said
    0.035, and its range 8.23 – 8.30% was not 8.27 ± 0.035."""
    if tolerance is None or not math.isfinite(tolerance) or tolerance <= 0:
        return 2
    return min(4, max(2, 1 - math.floor(math.log10(tolerance))))


def _code_spans(text: str) -> markupsafe.Markup:
    """Text written with Markdown's code spans (the rules' `pool_executions: true`, a study's
    `repro evaluate`) as HTML: escaped, each span in <code>, no backticks left on the page."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: not a code span, leave it as written
        return markupsafe.escape(text)
    return markupsafe.Markup("").join(
        markupsafe.Markup("<code>{}</code>").format(part) if i % 2 else markupsafe.escape(part)
        for i, part in enumerate(parts)
    )


def render_html(report: Report) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt
    env.filters["signed_percent"] = _signed_percent
    env.filters["quoted"] = _quoted
    env.filters["tone"] = _tone
    env.globals["filled"] = _filled
    env.globals["tolerance_digits"] = _tolerance_digits
    env.filters["brief"] = _brief
    env.filters["slug"] = slug
    env.filters["code_spans"] = _code_spans
    return env.get_template("report.html.j2").render(report=report)


CLAIM_COLUMNS = [
    "study", "kind", "experiment", "source", "where", "metric", "claimed", "claimed_value",
    "claimed_std", "rule", "reproduced_value", "rule_applied", "n", "minimum", "maximum",
    "std", "difference", "tolerance", "interval_low", "interval_high", "verdict", "reason",
    "hardware", "execution", "data", "relative_difference", "severity",
]  # fmt: skip


def claims_frame(report: Report) -> pd.DataFrame:
    rows = [asdict(c) for s in report.studies for c in s.all_claims]
    return (
        pd.DataFrame(rows, columns=CLAIM_COLUMNS) if rows else pd.DataFrame(columns=CLAIM_COLUMNS)
    )


def write(report: Report, out: Path, fmt: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        out.write_text(render_html(report), encoding="utf-8")
    elif fmt == "csv":
        claims_frame(report).to_csv(out, index=False)
    else:
        claims_frame(report).to_json(out, orient="records", indent=2)


def report_for(study_files: list[Path], results: Path, *, show_unrun: bool = False) -> Report:
    """Load studies and the store, and build the report (what `repro report` calls)."""
    from harness.results import scan, scan_evaluations
    from harness.studyfile import load_study

    studies = [(load_study(p), str(p)) for p in study_files]
    return build(studies, scan(results), str(results), scan_evaluations(results),
                 show_unrun=show_unrun)  # fmt: skip

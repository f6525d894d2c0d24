"""The plain data the template renders: a run (:class:`RunView`), a claim's row
(:class:`ClaimRow`), a speed, an experiment, a released checkpoint and its evaluations, a
figure, the headlines, the evidence and the scoreboard, each study's report
(:class:`StudyReport`), the provenance and the whole :class:`Report`. Dataclasses, and the
few words on runs that the glance and each study share (:func:`counted_in_full`), so that
they cannot disagree: what fills them lives in the modules named for each part of the page.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field

from matplotlib.figure import Figure as MplFigure

from harness import plots, verdicts
from harness.plural import plural
from harness.report.text import _curly_quotes, _epochs_text

PARAMETERS = "parameters"  # the metric column of a parameter count's row


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
    # Each device it trained on with its epochs there, in order (harness.report.runs.trained_on):
    # the glance counts a run moved between devices on each.
    trained_on: tuple[tuple[str, int], ...] = ()
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
    in_verdict: bool = False  # a claim's verdict stands on it (ClaimRow.used_runs)
    # Counted, yet every verdict on it kept it apart: how its pool differs ("bf16 vs fp32").
    kept_apart: str = ""
    # Counted (or at an epoch), yet no claim's verdict reads it nor kept it apart: an
    # experiment with only a parameter count, a seed past a rule's n.
    unread: bool = False

    @property
    def counted_text(self) -> str:
        """The run table's "counted" cell: yes, no, or, for an unfinished run past a claimed
        epoch, only there (its figure at that epoch is in a verdict; the rest of it is not);
        a run every verdict kept apart, or that none reads, says so, as the glance does."""
        if self.kept_apart:
            return f"kept apart ({self.kept_apart})"
        if self.unread:
            return "no verdict reads it"
        if self.counted:
            return "yes"
        if self.counted_at_epochs:
            return f"for the test error at {_epochs_text(self.counted_at_epochs)} only"
        return "no"


# What "counted" means wherever the page counts runs (the glance's Runs line, each study's
# line, the run table's cell): a verdict stands on the run. A run every verdict kept apart (on
# another precision, pipeline or data than the pool it used) could count but does not; the
# glance and the studies read these helpers so that the two counts can never disagree.


def counted_in_full(runs: list[RunView]) -> int:
    """The runs a verdict stands on whole: counted, and in the pool a verdict used."""
    return sum(r.counted and r.in_verdict for r in runs)


def counted_at_epochs_only(runs: list[RunView]) -> list[RunView]:
    """The unfinished runs a verdict stands on only at an epoch they have passed (a claim on
    the test error at that epoch); one kept apart there is set aside instead."""
    return [r for r in runs if not r.counted and r.counted_at_epochs and r.in_verdict]


def set_aside_text(runs: list[RunView]) -> str:
    """Of the runs that could count, those no verdict stands on: the ones kept apart, by how
    their pool differed from the one the verdict used (", 2 kept apart (bf16 vs fp32)"), and
    any that no claim reads (an experiment with only a parameter count, say)."""
    eligible = [r for r in runs if (r.counted or r.counted_at_epochs) and not r.in_verdict]
    apart = Counter(r.kept_apart for r in eligible if r.kept_apart)
    text = ""
    if apart:
        how = (next(iter(apart)) if len(apart) == 1
               else "; ".join(f"{n} {why}" for why, n in sorted(apart.items())))  # fmt: skip
        text += f", {apart.total()} kept apart ({how})"
    if unread := sum(r.unread for r in runs):
        text += f", {unread} that no verdict reads"
    return text


def counted_at_epoch_text(runs: list[RunView]) -> str:
    """The unfinished runs that count only for a claim on the test error at an epoch they
    have passed, said beside a count of the runs that count in full: "1 unfinished run
    counted only for the test error at epoch 90, which it has passed"."""
    early = counted_at_epochs_only(runs)
    if not early:
        return ""
    return f"{plural(len(early), 'unfinished run')} counted only for {_passed_epochs(early)}"


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
    claim_id: str = ""  # what the claim is about (harness.claimtable): nights match on it
    # The runs (by directory) its verdict stands on, and those it kept apart (another
    # precision, pipeline, data or device than the pool it used) with how they differ: what the
    # glance and the run table count as counted or kept apart (harness.report.runs).
    used_runs: list[str] = field(default_factory=list, repr=False)
    kept_apart_runs: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def where_text(self) -> str:
        """Where the source says it, as the page prints it: the study file's straight quotation
        marks made typographic, as the page quotes the sources' statements (Figure 4
        ("90.pth") sat beside “As the layer increased, ...”). The claim table (CSV,
        JSON) keeps ``where`` as the study file writes it."""
        return _curly_quotes(self.where)


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
    judged: str = ""  # what the verdict is over: "10 s, the median of 2 solo runs on ..."


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
    own: str  # what its caption says of it alone: its data first, what it draws
    plot: MplFigure = field(repr=False)  # what was drawn, readable by tests
    alt: str = ""  # the figure in words, for a reader who cannot see it
    # The same drawn for a phone (plots.PHONE: panels stacked, type that stays readable),
    # which the page shows where it is narrow.
    phone: MplFigure | None = field(default=None, repr=False)
    # How to read it, in sentences its study's other figures share (colours and markers,
    # claimed values, fitted axes, greyed runs): the page says them once, above the study's
    # figures (StudyReport.curves_key), where each caption repeated them.
    key: tuple[str, ...] = ()

    @property
    def caption(self) -> str:
        """All a reader of this figure alone needs: its own words, then its key."""
        return " ".join([self.own, *self.key]).strip()

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
    # Of its claims, those on released weights: they wait for `repro evaluate`, never a run.
    evaluations: int = 0


@dataclass
class _ScoreEntry:
    model: str
    order: tuple  # where its row goes: by family (_family), then by depth
    source: str
    experiment: str
    line: ScoreLine
    released: bool = False  # a claim on released weights, which an evaluation answers


@dataclass
class Headline:
    """One kind of claim at a glance, apart from the others ("accuracy 0/12 tested"), so that
    a study with nothing trained never reads as reproduced because its parameter counts match."""

    kind: str  # accuracy | orderings | speed | released weights | parameter counts
    total: int
    done: int  # tested (a verdict was reached), evaluated, or, for counts, matching
    verb: str
    parts: list[tuple[str, int, str]]  # (what, how many, the verdict its colour is)
    # The claims not tested, said after the tested ones and apart from them ("under way",
    # "not comparable"): "1/12 tested: 1 better than claimed, 4 under way" counted the
    # four among what was tested.
    apart: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        head = f"{self.kind} {self.done}/{self.total} {self.verb}"
        for sep, parts in ((": ", self.parts), ("; ", self.apart)):
            head += sep + ", ".join(f"{n} {what}" for what, n, _ in parts) if parts else ""
        return head


@dataclass
class EvidenceLine:
    """What the page's verdicts stand on, in a line each (runs, devices, data, released
    weights), with the caveat a reader must not miss where there is one."""

    what: str
    text: str
    caveat: str = ""


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
    # GPU time and energy as the runs' shares of their devices (harness.timings.device_time);
    # the wall seconds of runs that shared a GPU with an unrecorded number of others, and the
    # whole GPU's energy meanwhile (an upper bound of theirs), are said apart, never guessed
    # into them; the runs' own clocks added up are shown beside where larger.
    gpu_seconds: float | None
    energy_kj: float | None
    gpu_unknown_seconds: float = 0.0
    gpu_clock_seconds: float = 0.0
    energy_unknown_kj: float = 0.0
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
    def counted_runs(self) -> int:
        """The runs a verdict stands on, as the glance counts them (counted_in_full)."""
        return counted_in_full(self.runs)

    @property
    def counted_at_epoch(self) -> str:
        """Beside its count of counted runs: the unfinished ones that count at one epoch."""
        return counted_at_epoch_text(self.runs)

    @property
    def set_aside(self) -> str:
        """Beside its count of counted runs: those kept apart or that no verdict reads."""
        return set_aside_text(self.runs)

    @property
    def curves_key(self) -> list[str]:
        """How to read the study's figures: each sentence of their keys once, in order."""
        return list(dict.fromkeys(k for f in self.figures for k in f.key))

    @property
    def metric_key(self) -> list[tuple[str, str]]:
        """The short metric labels of the claim tables, each with what it means."""
        rows = self.values + self.orderings + self.checkpoint_claims + self.speed_claims
        return list(dict.fromkeys((r.short_metric, r.metric) for r in rows
                                  if r.short_metric and r.short_metric != r.metric))  # fmt: skip


@dataclass(frozen=True)
class CopyCost:
    """A copy of CIFAR-10 the page's runs or evaluations used, and what is known of its cost
    against the official release: the offline JPEG copy's was measured once
    (verdicts.JPEG_COPY_COST); another's only where released checkpoints were evaluated on it
    here (Provenance), else it is not measured ("the offline JPEG copy costs ..." was said of
    whatever copy the runs used)."""

    name: str  # "the copy", or "the copy cccccccccccc" beside others
    jpeg: bool  # the offline JPEG copy (verdicts.JPEG_COPY_FINGERPRINT)
    mean: float | None  # test error released checkpoints lost on it here, on average

    def words(self, weights: str) -> str:
        """What it costs ``weights`` ("released weights"), where that is known."""
        if self.jpeg:
            return f"the offline JPEG copy costs {weights} about ten points of test error"
        if self.mean is None:
            return f"what {self.name} costs against the official release is not measured"
        return f"{self.name} costs {weights} {self.mean:.2f} points of test error on average"


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
    unmatched_evaluations: int = 0  # of studies not in this report
    copy_costs: list[CopyCost] = field(default_factory=list)  # of the copies used, the JPEG first
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
    def reported_runs(self) -> int:
        """The runs of the studies in this report: the store's others are only listed."""
        return self.total_runs - len(self.unmatched_runs)

    @property
    def reported_evaluations(self) -> int:
        """The checkpoint evaluations of the studies in this report, as reported_runs."""
        return self.total_evaluations - self.unmatched_evaluations

    @property
    def empty(self) -> bool:
        return self.total_runs == 0 and self.total_evaluations == 0

    @property
    def nonofficial_text(self) -> str:
        """Who used a copy of the data, for the page's notice: "6 runs", "4 checkpoint
        evaluations" or both (a page of released weights alone read "0 runs and 4 checkpoint
        evaluations used a copy")."""
        counts = [plural(n, word) for n, word in ((self.nonofficial_runs, "run"),
                  (self.nonofficial_evaluations, "checkpoint evaluation")) if n]  # fmt: skip
        return " and ".join(counts)

    @property
    def copy_cost_known(self) -> bool:
        """Whether the page states what a copy costs released weights: then it says too that
        what it costs a net trained on it is not measured."""
        return any(c.jpeg or c.mean is not None for c in self.copy_costs)

    @property
    def nonofficial_mark(self) -> str:
        return verdicts.ON_NONOFFICIAL_DATA

    @property
    def under_way(self) -> str:
        return verdicts.UNDER_WAY

    @property
    def not_run(self) -> str:
        return verdicts.NOT_RUN


# Whose test error on the official release a copy's cost is measured against.
OUR_REFERENCE = "ours, on the official release"
STATED_REFERENCE = "the source's stated figure"

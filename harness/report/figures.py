"""The figures of a study: each group's curves against the sources' claimed values, and
the learning-rate schedules, with their alt text and the notes under them.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict

from matplotlib.figure import Figure as MplFigure

from harness import plots
from harness.metrics import METRICS, short_label
from harness.plan import nominal_batches_per_epoch
from harness.report.counting import _Classified, _official, _run_data
from harness.report.text import _curly_quotes, _source_label
from harness.report.views import Figure, RunView, counted_at_epochs_only, counted_in_full
from harness.results import RunRecord, curves_frame
from harness.schedule import LearningRate, Length
from harness.schema import Claim, Experiment, Study, Warmup

# The sentences of a figure's key (views.Figure.key): the page says each once, above its
# study's figures, for all of them.
GREYED_NOTE = (
    "Greyed lines with hollow markers, labelled \u201cnot counted\u201d, are runs that count "
    "toward no verdict (paused, unfinished, smoke or override runs, stale configs, runs that no "
    "verdict reads): drawn for what they show."
)

KEPT_APART_NOTE = (
    "Greyed dotted lines with hollow markers, labelled \u201ckept apart\u201d, are runs that "
    "could count but that every verdict on them kept apart from the runs it used (another "
    "precision, pipeline or data, as the label says): they count toward no verdict."
)

COUNTED_AT_NOTE = (
    "A greyed run labelled \u201ccounted only at epoch N\u201d is unfinished but has passed "
    "that epoch: its test error there counts toward the claim drawn as a star, the rest of "
    "its curve toward none."
)

PLANNED_NOTE = (
    "The epoch axis runs to the planned last epoch, dotted: unfinished runs stop short of it."
)

BANDS_NOTE = "Shaded bands span the random seeds."


def _figures(study: Study, classified: list[_Classified], runs: list[RunView]) -> list[Figure]:
    """``runs``: the run table's view of each of ``classified``, in the same order, which says
    which verdicts stand on each run."""
    if not study.experiments:
        return []  # a study of released checkpoints only: nothing was trained
    figures = []
    for group, series in _series_by_group(study, classified, runs).items():
        # The source as the tables cite it ("Wen-Jie Tseng 2018"), not its key in the study.
        title = study.name
        if group != study.name:
            title += f", experiments following {_source_label(study.sources[group])}"
        greyed = [GREYED_NOTE] if any(not s.counted and not s.kept_apart for s in series) else []
        if any(s.kept_apart for s in series):
            greyed.append(KEPT_APART_NOTE)
        if any(s.counted_at for s in series):
            greyed.append(COUNTED_AT_NOTE)
        if any(s.planned_epochs and s.curves["epoch"].max() < s.planned_epochs for s in series):
            greyed.append(PLANNED_NOTE)
        claimed = [_CLAIMED_NOTE] if any(s.claims for s in series) else []
        drawn = {e.name for e in study.experiments if (e.follows or study.name) == group}
        data = _data_note([c.record for c in classified
                           if c.record.history and c.record.experiment in drawn],
                          claimed=bool(claimed))  # fmt: skip
        if any(s.plain for s in series) and any(not s.plain for s in series):
            plot = plots.degradation_plot(series, title)
            figures.append(Figure(
                f"{title}: plain versus residual",
                data + "Drawn like He et al. 2015, Figure 6: thin dashed lines are training "
                "error, bold lines test error, on one error axis from 0.",
                plot,
                _alt("Two panels of line charts, plain nets and residual nets, of training "
                     "and test error (%) against epoch, on one error axis from 0", plot,
                     series, ["train_error", "test_error"])
                + (" " + data.strip() if data else ""),
                plots.degradation_plot(series, title, plots.PHONE),
                (BANDS_NOTE, _LOOK_NOTE, *claimed, *_range_notes(plot), *greyed),
            ))  # fmt: skip
        plot = plots.curves_plot(series, title)
        figures.append(Figure(
            f"{title}: training loss and test error",
            data + "Mean over random seeds.",
            plot,
            _alt("Two line charts against epoch: training loss"
                 + (" (log scale)" if plot.axes[0].get_yscale() == "log" else "")
                 + " and test error (%)", plot, series, ["train_loss", "test_error"])
            + (" " + data.strip() if data else ""),
            plots.curves_plot(series, title, plots.PHONE),
            (BANDS_NOTE, _LOOK_NOTE, *claimed, *_range_notes(plot), *greyed),
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


_LOOK_NOTE = "Each net has its own colour and marker, the same in every figure of the study."
_CLAIMED_NOTE = (
    "Dash-dot lines are the values the sources claim at the end of training, ending in the "
    "net's marker at the last epoch; a star is a test error claimed after a given epoch."
)


def _range_notes(plot: MplFigure) -> list[str]:
    """What the error axes show where they leave early epochs or far claims off: said in the
    key as well as over the panel, so that a clipped curve is not read as one that started
    low, nor a claim marked at the edge as one at the edge's value. (Where a plain-versus-
    residual figure's axis starts, at 0, its own caption says.)"""
    notes = plots.off_scale(plot)
    if not notes:
        return []
    said = ["Error axes are fitted to the last half of training and the claimed values, where "
            "runs and claims differ."]  # fmt: skip
    if any(re.search(r"off scale \((up|down) to", n) for n in notes):
        said.append("The note over a panel says which earlier epochs run off it (\u25b2 above, "
                    "\u25bc below) and how far.")  # fmt: skip
    if plots.claims_off_scale(plot):
        said.append(f"A claimed value more than {plots.CLAIM_REACH:g} times the curves' range "
                    "from them is a triangle at the edge it lies beyond, its value in the note "
                    "over the panel and in the legend.")  # fmt: skip
    return said


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
        # The study file's straight quotation marks made typographic, as the tables print
        # a claim's place (ClaimRow.where_text): the legend and the alt text say it too.
        where = _curly_quotes(c.where)
        if c.source != exp.follows:
            where = f"{_source_label(study.sources[c.source])}, {where}"
        epoch = c.epoch if c.metric == "test_error_at_epoch" else None
        drawn.append(plots.Claimed(_CURVE_OF[c.metric], value, f"{what} ({where})", epoch))
    return tuple(drawn)


def _series_by_group(
    study: Study, classified: list[_Classified], views: list[RunView]
) -> dict[str, list]:
    """Every run with curves, as series grouped by the source their experiment follows: the
    runs a verdict stands on of an experiment as one series, the rest by why no verdict does
    (kept apart, by how; an override's runs by their label), so that a study whose runs are
    all paused or smoke runs still shows its curves, greyed."""
    bundles: dict[tuple, list[RunRecord]] = defaultdict(list)
    for c, view in zip(classified, views, strict=True):
        if c.record.history:
            why, at, apart = _standing(c, view)
            bundles[(c.record.experiment, c.record.label, why, at, apart)].append(c.record)
    groups: dict[str, list[plots.Series]] = defaultdict(list)
    styles = _styles(study)
    for exp in study.experiments:
        # The counted runs first: the claimed values are drawn with the first series.
        mine = sorted((k for k in bundles if k[0] == exp.name),
                      key=lambda k: (bool(k[2] or k[4]), k))  # fmt: skip
        for n, key in enumerate(mine):
            _, label, why, at, apart = key
            runs = bundles[key]
            planned = [t for r in runs if isinstance(t := r.value("epochs_total"), int)]
            groups[exp.follows or study.name].append(plots.Series(
                label=exp.name + (f"~{label}" if label else ""),
                curves=curves_frame(runs),
                depth=exp.model.depth, plain=exp.model.shortcut == "none",
                model=exp.model.label(), counted=not (why or apart), why_not=why,
                planned_epochs=max(planned, default=None),
                claims=_claims_drawn(study, exp) if n == 0 else (),  # drawn once
                style=styles[exp.name], counted_at=at, kept_apart=apart,
            ))  # fmt: skip
    return {g: series for g, series in groups.items() if series}


def _standing(c: _Classified, view: RunView) -> tuple[str, tuple[int, ...], str]:
    """How a run is drawn, by the rule the glance, each study's line and the run table count
    runs by (harness.report.views): why no verdict stands on it ("" where one stands on it
    whole), the claimed epochs it counts at only, and how its pool differs where every verdict
    kept it apart. Its classification alone drew a run the verdicts kept apart (bf16 beside an
    fp32 pool) or that none reads as counted."""
    if view.kept_apart:
        return "", (), view.kept_apart
    if view.unread:
        return "no verdict reads it", (), ""
    if counted_in_full([view]):
        return "", (), ""
    at = view.counted_at_epochs if counted_at_epochs_only([view]) else ()
    return _why_not_briefly(c), at, ""


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

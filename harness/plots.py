"""Figures for the report, as self-contained SVG data URIs (no files, no external assets).

Uses matplotlib's object API (``Figure``), never pyplot's global state. Each ``*_plot``
function takes plain data (pandas frames and lists) and returns the matplotlib ``Figure``, so
tests can read what was drawn (ticks, ranges, lines, labels); ``to_data_uri`` turns it into a
``data:image/svg+xml;base64,...`` string for the page.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

matplotlib.rcParams["svg.fonttype"] = "path"  # glyphs as paths: no font files needed

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
          "#e377c2", "#7f7f7f", "#bcbd22"]  # fmt: skip
# With its colour, each experiment has a marker: lines stay apart for a reader who does not
# tell the colours apart, and in print. Seven markers against ten colours: the pairs repeat
# only after seventy experiments. Filled for counted runs, hollow for the rest.
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
MARKS_PER_LINE = 8  # markers along a long curve: enough to follow it, few enough to read it
# The learning-rate schedules, drawn as steps that often coincide: told apart by dashes.
DASHES = ["-", (0, (5, 2)), (0, (1, 1.5)), (0, (6, 2, 1, 2))]


GREY = (0.62, 0.64, 0.66)
# A y-range whose top is this many times its bottom is drawn on a log axis: a loss that falls
# from 2 to 0.002 is a flat line on a linear one.
DECADE = 10.0
# The error axes are fitted to the epochs after this fraction of training (and the claimed
# values): an error that falls from 60% to 8% otherwise spends the axis on the first epochs,
# and the last half, where runs and claims differ by a point or two, is a sliver.
LATER = 0.5
# Runs shorter than this many epochs are shown whole: their first epochs are most of them.
FOCUS_FROM = 10
# A fitted error axis spans at least this many points: seeds of one CIFAR net differ by a few
# tenths of a point, and on an axis two points high that noise looks like a trend.
MIN_ERROR_SPAN = 4.0
OFF_SCALE = "off-scale"  # the gid of the note that says what runs off an axis


@dataclass(frozen=True)
class Claimed:
    """A value a source claims for an experiment, drawn beside its curves: a horizontal line
    (at the end of training) or a point (``epoch``: after that epoch)."""

    column: str  # the curve it is read against: "test_error", "train_error", "train_loss"
    value: float
    label: str  # what and where, for the legend: "test error 8.51% (Table 1)"
    epoch: int | None = None


@dataclass(frozen=True)
class Series:
    """One experiment's curves over its runs (rows of a curves frame, all seeds)."""

    label: str
    curves: pd.DataFrame  # columns: seed, epoch, train_loss, train_error, test_error, lr
    depth: int = 0
    plain: bool = False
    model: str = ""  # the family label: "ResNet-20", "WRN-10-1 (dropout 0.1)"
    counted: bool = True  # runs that count toward a verdict; others are drawn greyed
    why_not: str = ""  # why they do not count, in a word or two: "paused", "override"
    planned_epochs: int | None = None  # how long the runs are to train (paused ones: longer)
    claims: tuple[Claimed, ...] = ()  # the sources' values for this experiment
    style: int | None = None  # its colour and marker; None: its place in the figure
    # Not counted, but past the epochs of claims on the test error at those epochs, where
    # its test error counts (drawn greyed all the same: the rest of the curve counts nowhere).
    counted_at: tuple[int, ...] = ()

    def look(self, place: int) -> tuple[str, str, int]:
        """The base colour, the marker and the style's number: the same experiment looks the
        same in every figure where the report numbers its styles (``style``)."""
        k = self.style if self.style is not None else place
        return COLORS[k % len(COLORS)], MARKERS[k % len(MARKERS)], k

    @property
    def legend(self) -> str:
        if self.counted:
            return self.label
        if self.counted_at:
            epochs = "epoch" + ("s" if len(self.counted_at) > 1 else "")
            at = ", ".join(map(str, self.counted_at))
            return f"{self.label} ({self.why_not}: counted only at {epochs} {at})"
        return f"{self.label} (not counted: {self.why_not})"


def to_data_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def greyed(color) -> tuple[float, float, float]:
    """A colour faded most of the way to grey: lines stay apart, and read as not counted."""
    return tuple(0.3 * c + 0.7 * g for c, g in zip(to_rgb(color), GREY, strict=True))


def _color(series: Series, color) -> tuple[float, float, float]:
    return to_rgb(color) if series.counted else greyed(color)


def _stats(series: Series, column: str) -> pd.DataFrame:
    frame = series.curves.dropna(subset=[column])
    return frame.groupby("epoch")[column].agg(["mean", "min", "max", "count"])


def _same_as(series: list[Series], columns: list[str]) -> list[int | None]:
    """For each series, the earlier one it is identical to (same means at the same epochs in
    every column), or None: identical lines would hide each other, so the later is dashed."""
    keys = [tuple(tuple(_stats(s, c)["mean"].round(9).items()) for c in columns) for s in series]
    return [next((j for j in range(i) if keys[j] == keys[i]), None) for i in range(len(keys))]


def _markevery(points: int, style: int):
    """Every point of a short line (a line through two points is hardly a line); along a long
    one, a few, shifted by the style so that two lines' markers do not sit on each other."""
    if points <= 5:
        return None
    step = max(2, round(points / MARKS_PER_LINE))
    return (round(step * (style % len(MARKERS)) / len(MARKERS)), step)


def _band(ax, series: Series, column: str, color, *, bold: bool = True, label=None,
          dashed: bool = False, marker: str = "o", style: int = 0) -> None:  # fmt: skip
    """Mean over seeds as a line with the experiment's markers (hollow for runs that do not
    count), min..max over seeds as a band."""
    stats = _stats(series, column)
    if stats.empty:
        return
    ls = (3, (4, 3)) if dashed else ("-" if bold else "--")  # offset: both lines show
    ax.plot(stats.index, stats["mean"], color=color, lw=1.8 if bold else 0.8, ls=ls,
            label=label, marker=marker, ms=5 if bold else 3.5, mew=1.0 if bold else 0.7,
            mfc=color if series.counted else "white",
            markevery=_markevery(len(stats), style))  # fmt: skip
    if (stats["count"] > 1).any():
        ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.18, lw=0)


def _whole_epochs(ax) -> None:
    """Epochs are counted, not measured: ticks at whole numbers, even for a one-epoch run."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _planned_length(ax, series: list[Series]) -> None:
    """An axis to the planned last epoch where runs are unfinished: a run paused at 145 of
    164 epochs then shows the epochs it has still to train as blank, instead of looking
    complete, and its epochs line up with the learning-rate schedule's."""
    planned = [s.planned_epochs for s in series if s.planned_epochs]
    if planned and max(planned) > ax.get_xlim()[1]:
        ax.set_xlim(right=max(planned) * 1.04)
        ax.axvline(max(planned), color=GREY, lw=0.8, ls=":")


def fit_y(ax, values: list, *, bounds: tuple[float, float] | None = None) -> None:
    """A y-range around the data (every point inside, a small margin), on a log axis where the
    data span a decade or more; ``bounds`` clip a linear range (errors stay in 0..100)."""
    finite = [np.asarray(v, dtype=float) for v in values]
    data = np.concatenate(finite) if finite else np.array([])
    data = data[np.isfinite(data)]
    if not data.size:
        return
    lo, hi = float(data.min()), float(data.max())
    if lo > 0 and hi / lo >= DECADE:
        ax.set_yscale("log")
        # Ticks at 1, 2 and 5 of each decade over a few decades, at each decade beyond.
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0,) if hi / lo > 1000 else (1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(lo / 1.1, hi * 1.1)
        return
    pad = 0.06 * (hi - lo) or 0.05 * abs(hi) or 1.0
    low, high = lo - pad, hi + pad
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    ax.set_ylim(low, high)


def _values(series: list[Series], columns: list[str], start: float = 0) -> list[pd.Series]:
    """Every drawn value (the bands' edges) at epochs from ``start``."""
    return [
        stats.loc[stats.index >= start, k]
        for s in series
        for c in columns
        for stats in [_stats(s, c)]
        for k in ("min", "max")
    ]


def _claimed(series: list[Series], columns: list[str]) -> list[float]:
    return [c.value for s in series for c in s.claims if c.column in columns]


def _later(series: list[Series], columns: list[str]) -> float:
    """The first epoch an error axis is fitted to: the last half of training (of the planned
    epochs, where runs are unfinished), or every epoch where runs are short or none has
    reached the last half yet."""
    epochs = [e for s in series for c in columns for e in _stats(s, c).index]
    if not epochs:
        return 0
    end = max([max(epochs)] + [s.planned_epochs or 0 for s in series])
    start = end * LATER
    return start if end >= FOCUS_FROM and max(epochs) >= start else 0


def focus_y(ax, series: list[Series], columns: list[str], *, unit: str = "%",
            floor: float | None = None, note: bool = True) -> None:  # fmt: skip
    """The y-range of an error axis: the last half of training and the claimed values, so that
    where runs and claims differ fills the axis; earlier epochs that fall outside it run off
    the axis, and a note above it says which and how far (``note``). ``floor``: a linear
    axis from there (He et al.'s Figure 6 draws error from 0)."""
    start = _later(series, columns)
    shown = [*_values(series, columns, start), _claimed(series, columns)]
    if floor is None:
        fit_y(ax, shown, bounds=(0, 100))
        _widen(ax, MIN_ERROR_SPAN, bounds=(0, 100))
    else:
        data = np.concatenate([np.asarray(v, dtype=float) for v in shown])
        data = data[np.isfinite(data)]
        if data.size:
            top = float(data.max())
            ax.set_ylim(floor, min(100.0, top + 0.08 * (top - floor) or 1.0))
    if note:
        _note_off_scale(ax, series, columns, unit)


def _widen(ax, span: float, *, bounds: tuple[float, float]) -> None:
    """A linear y-range at least ``span`` high, about the same middle, kept within ``bounds``."""
    lo, hi = ax.get_ylim()
    if ax.get_yscale() != "linear" or hi - lo >= span:
        return
    middle = (lo + hi) / 2
    lo = min(max(middle - span / 2, bounds[0]), bounds[1] - span)
    ax.set_ylim(lo, lo + span)


def _note_off_scale(ax, series: list[Series], columns: list[str], unit: str) -> None:
    """Over the axis, which epochs run off it and how far. Where curves of more than one
    column run off (training and test error on one axis), each is named on its own line:
    "epochs 1-81 off scale" of the test error stood over a training error drawn from epoch 38."""
    lo, hi = ax.get_ylim()
    off: dict[str, tuple[list, list]] = {c: ([], []) for c in columns}
    for s in series:
        for c in columns:
            stats = _stats(s, c)
            off[c][0].extend((e, v) for e, v in stats["max"].items() if v > hi)
            off[c][1].extend((e, v) for e, v in stats["min"].items() if v < lo)
    named = sum(bool(above or below) for above, below in off.values()) > 1
    notes = []
    for mark, way, side, extreme in (("\u25b2", "up", 0, max), ("\u25bc", "down", 1, min)):
        if named:
            groups = [(f"{NAMES.get(c, c)} ", off[c][side]) for c in columns]
        else:
            groups = [("", [p for c in columns for p in off[c][side]])]
        for what, points in groups:
            if not points:
                continue
            first, last = min(int(e) for e, _ in points), max(int(e) for e, _ in points)
            span = f"epoch {first}" if first == last else f"epochs {first}\u2013{last}"
            value = extreme(v for _, v in points)
            notes.append(f"{mark} {what}{span} off scale ({way} to {value:.3g}{unit})")
    if notes:
        ax.text(0, 1.015, ("\n" if named else "; ").join(notes), transform=ax.transAxes,
                fontsize=7, ha="left", va="bottom", color="#57606a", gid=OFF_SCALE)  # fmt: skip
        _title_over_note(ax.figure.axes)


def _title_over_note(axes) -> None:
    """Titles lifted over the off-scale notes, by as much on every panel, to stay in a row:
    as much as the note of most lines needs."""
    lines = max((t.get_text().count("\n") + 1 for ax in axes for t in ax.texts
                 if t.get_gid() == OFF_SCALE), default=1)  # fmt: skip
    for ax in axes:
        ax.set_title(ax.get_title(), pad=16 + 9 * (lines - 1))


def off_scale(fig: Figure, *, spoken: bool = False) -> list[str]:
    """What each axis leaves off its scale, as its note says: ["test error: ▲ epochs ..."];
    ``spoken``: in words, for alt text ("test error: epochs 1–81 above the axis, up to 55%")."""
    notes = [
        f"{ax.get_title() or ax.get_ylabel()}: {t.get_text().replace(chr(10), '; ')}"
        for ax in fig.axes
        for t in ax.texts
        if t.get_gid() == OFF_SCALE
    ]
    if spoken:
        notes = [re.sub(r"([\u25b2\u25bc]) (.*?) off scale \((.*?)\)", _in_words, n) for n in notes]
    return notes


def _in_words(match: re.Match) -> str:
    side = "above" if match[1] == "\u25b2" else "below"
    return f"{match[2]} {side} the axis, {match[3]}"


NAMES = {"train_loss": "training loss", "train_error": "training error",
         "test_error": "test error"}  # fmt: skip


def describe(series: list[Series], columns: list[str]) -> str:
    """The curves in words, for the figure's alt text: where each series ends, and the
    values claimed for it."""
    ends = []
    for s in series:
        stats = {c: _stats(s, c) for c in columns if not _stats(s, c).empty}
        if not stats:
            continue
        last = int(max(st.index.max() for st in stats.values()))
        of = f" of {s.planned_epochs}" if s.planned_epochs and s.planned_epochs > last else ""
        seeds = s.curves["seed"].nunique()
        mean = f", mean of {seeds} seeds" if seeds > 1 else ""
        values = [f"{NAMES.get(c, c)} {_spoken(c, st['mean'].iloc[-1])}"
                  for c, st in stats.items()]  # fmt: skip
        ends.append(f"{s.legend}, epoch {last}{of}{mean}: {', '.join(values)}")
    text = "Where each ends: " + "; ".join(ends) + "." if ends else "No curves yet."
    claims = [f"{s.label.split('~')[0]} {c.label}" + (f" after epoch {c.epoch}" if c.epoch else "")
              for s in series for c in s.claims if c.column in columns]  # fmt: skip
    return text + (" Claimed: " + "; ".join(claims) + "." if claims else "")


def describe_steps(schedules: dict[str, list[tuple[float, float]]]) -> str:
    """Learning-rate schedules in words, for the figure's alt text: each value and the epoch
    it starts at; a schedule that changes often (cosine) by its ends."""
    parts = []
    for name, points in schedules.items():
        runs: list[tuple[float, float]] = []  # (learning rate, the epoch it starts at)
        for epoch, lr in points:
            if not runs or not np.isclose(runs[-1][0], lr, rtol=1e-9, atol=0):
                runs.append((lr, epoch))
        if len(runs) <= 6:
            text = ", then ".join(f"{lr:g} from epoch {epoch:.4g}" for lr, epoch in runs)
        else:
            text = (f"from {runs[0][0]:g} at epoch {runs[0][1]:.4g} to {runs[-1][0]:g} at "
                    f"epoch {points[-1][0]:.4g}, in {len(runs)} steps")  # fmt: skip
        parts.append(f"{name}: {text}")
    return "; ".join(parts) + "." if parts else "No schedule."


def _spoken(column: str, value: float) -> str:
    if not np.isfinite(value):
        return "not a number (diverged)"
    return f"{value:.3g}" if column == "train_loss" else f"{value:.2f}%"


def _claims(ax, series: Series, columns: list[str], color, marker: str = "o") -> None:
    """The source's values: a dash-dot line for the end of training, ending in the
    experiment's marker at the last epoch, and a star for a value after a given epoch; in the
    experiment's own colour (never greyed: the claim is the source's). Drawn once the epoch
    axis has its length."""
    curve = [e for c in columns for e in _stats(series, c).index]
    first = min(curve, default=1)
    last = max([*curve, series.planned_epochs or 0]) or 1
    for c in series.claims:
        if c.column not in columns:
            continue
        label = f"{series.label.split('~')[0]}: claimed {c.label}"
        if c.epoch is None:
            ax.plot([first, last], [c.value] * 2, color=to_rgb(color), lw=1.0, ls="-.",
                    label=label, marker=marker, markevery=[1], ms=6)  # fmt: skip
        else:
            ax.plot([c.epoch], [c.value], ls="none", marker="*", ms=10, color=to_rgb(color),
                    mec="black", mew=0.5, label=label, zorder=5)  # fmt: skip


def _legend(fig: Figure, axes) -> None:
    """One legend for the figure, below its panels, where it hides no curve: the error axes
    are fitted to where the curves end, and so is the upper right corner."""
    found: dict[str, object] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            found.setdefault(label, handle)
    if found:
        longest, many = max(map(len, found)), len(found) > 6
        ncols = 1 if len(found) == 1 or longest > 70 else 3 if many and longest <= 45 else 2
        fig.legend(list(found.values()), list(found), loc="outside lower center", fontsize=7,
                   ncols=ncols, frameon=False)  # fmt: skip


def curves_plot(series: list[Series], title: str) -> Figure:
    """Training loss and test error against epoch, one line per experiment, with the claimed
    values; the test error's axis is fitted to the last half of training and the claims."""
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    loss_ax, err_ax = fig.subplots(1, 2)
    same = _same_as(series, ["train_loss", "test_error"])
    for i, s in enumerate(series):
        base, marker, k = s.look(i)
        color = _color(s, base)
        label = s.legend + (f" (same as {series[same[i]].label})" if same[i] is not None else "")
        for ax, column in ((loss_ax, "train_loss"), (err_ax, "test_error")):
            _band(ax, s, column, color, label=label, dashed=same[i] is not None, marker=marker,
                  style=k)  # fmt: skip
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="training loss")
    err_ax.set(xlabel="epoch", ylabel="test error (%)", title="test error")
    fit_y(loss_ax, [*_values(series, ["train_loss"]), _claimed(series, ["train_loss"])])
    for ax in (loss_ax, err_ax):
        ax.grid(alpha=0.3)
        _whole_epochs(ax)
        _planned_length(ax, series)
    for i, s in enumerate(series):
        base, marker, _ = s.look(i)
        _claims(loss_ax, s, ["train_loss"], base, marker)
        _claims(err_ax, s, ["test_error"], base, marker)
    focus_y(err_ax, series, ["test_error"])
    _legend(fig, [err_ax, loss_ax])
    fig.suptitle(title, fontsize=10)
    return fig


def degradation_plot(series: list[Series], title: str) -> Figure:
    """He et al. 2015, Figure 6 style: plain nets and ResNets side by side, each in the colour
    and marker it has in the other figures; thin dashed lines are training error, bold lines
    test error; seeds as a band; the claimed values beside them. Error from 0, as there, up
    to the last half of training and the claims: the first epochs run off the top."""
    place = {id(s): i for i, s in enumerate(series)}
    plain = sorted((s for s in series if s.plain), key=lambda s: s.depth)
    residual = sorted((s for s in series if not s.plain), key=lambda s: s.depth)
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, group, name in ((axes[0], plain, "plain"), (axes[1], residual, "residual")):
        same = _same_as(group, ["train_error", "test_error"])
        for i, s in enumerate(group):
            base, marker, k = s.look(place[id(s)])
            color = _color(s, base)
            label = f"{s.model or s.label} ({s.legend})"
            if same[i] is not None:
                label += f" (same as {group[same[i]].label})"
            _band(ax, s, "train_error", color, bold=False, marker=marker, style=k)
            _band(ax, s, "test_error", color, label=label, dashed=same[i] is not None,
                  marker=marker, style=k)  # fmt: skip
        ax.set(xlabel="epoch", title=f"{name} nets")
        ax.grid(alpha=0.3)
        _whole_epochs(ax)
        _planned_length(ax, series)
        for s in group:
            base, marker, _ = s.look(place[id(s)])
            _claims(ax, s, ["test_error", "train_error"], base, marker)
    axes[0].set_ylabel("error (%)  dashed: training, bold: test")
    focus_y(axes[0], series, ["train_error", "test_error"], floor=0.0, note=False)
    for ax, group in ((axes[0], plain), (axes[1], residual)):
        _note_off_scale(ax, group, ["train_error", "test_error"], "%")
    _legend(fig, axes)
    fig.suptitle(title, fontsize=10)
    return fig


def lr_plot(schedules: dict[str, list[tuple[float, float]]], title: str) -> Figure:
    """Learning rate against epoch for each schedule: ``{label: [(epoch, lr), ...]}``."""
    fig = Figure(figsize=(10, 2.6), layout="constrained")
    ax = fig.subplots()
    for i, (name, points) in enumerate(schedules.items()):
        xs, ys = zip(*points, strict=True)
        ax.step(xs, ys, where="post", color=COLORS[i % len(COLORS)], label=name, lw=1.4,
                ls=DASHES[i % len(DASHES)])  # fmt: skip
    ax.set(xlabel="epoch", ylabel="learning rate", title=title)
    fit_y(ax, [[y for _, y in points] for points in schedules.values()])
    ax.grid(alpha=0.3)
    _whole_epochs(ax)
    ax.legend(fontsize=7, loc="lower left")
    return fig

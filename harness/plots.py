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
import textwrap
from dataclasses import dataclass, field

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from matplotlib.transforms import ScaledTranslation

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
# Losses and learning rates, which change by factors, go logarithmic from half a decade. At a
# decade, the one study's curves of runs paused near their first learning-rate decay (losses
# from about 1.8 to 0.18) were drawn on a log axis at 10.7x (Tseng's) and on linear ones at
# 9.8x and 9.7x (He's, Park's), where the later epochs and the gap between plain and residual
# nets sank into the bottom tenth. Below half a decade (a smoke run's 2.3 to 2.0) the two
# scales differ little, and a linear axis has more ticks. Error axes, in points, keep DECADE.
FACTORS = 10**0.5
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
# A claimed value further from the curves' range (of the later epochs, at least
# MIN_ERROR_SPAN high) than this many times that range is not fitted into an error axis, so
# that the curves keep a third of the axis or more against claims on one side of them:
# Tseng's 90% for a plain-110 that did not learn stretched an axis of curves at 5-20% to 0-97%
# and flattened them all. Such a claim is marked at the axis's edge instead (OFF_SCALE_CLAIM),
# its value in the note over the panel and in the legend.
CLAIM_REACH = 2.0
OFF_SCALE_CLAIM = "off-scale-claim"  # the gid of a claim's marker at an axis's edge


@dataclass(frozen=True)
class Layout:
    """How a figure is laid out for a screen. At a desk, panels stand side by side on a figure
    10 inches wide, shown at about its natural size (96 CSS pixels an inch), its type 10 pt or
    more: printed, the page shrinks it to a sheet's printable width (about 700 to 740 CSS
    pixels, 73% to 77%), where its legend and notes, drawn at 7 pt, were about 5 pt; at 10 pt
    they print at 7.3 pt or more. A phone's page is about 370 pixels wide: that figure
    shrank to 38% there. For a phone, panels stand one above another on a figure as wide as
    the screen (3.9 in is 374 pixels), the type stays 8 pt or more, legend entries and notes
    wrap to its width. Either way the figure grows as tall as its panels, notes, title and
    legend need (_fit_height), and its legend's columns and title wrap to its width."""

    width: float  # inches
    stacked: bool  # panels one above another (a phone), else side by side
    small: float  # pt: legend entries and the notes over the panels
    text: float | None = None  # pt: ticks, axis labels and titles; None: matplotlib's own
    wrap: int | None = None  # characters a legend entry or a title wraps at; None: never


DESK = Layout(width=10.0, stacked=False, small=10.0)
PHONE = Layout(width=3.9, stacked=True, small=8.0, text=8.0, wrap=52)
PANEL = 2.2  # inches: the height of a panel's axes, on a phone and at a desk
PHONE_PANEL = PANEL
MARGIN = 0.06  # inches round a figure's content, besides constrained layout's own pad
LR_PANEL = 1.9  # inches: a desk's learning-rate panel, a step or two in a line


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
    # Runs that could count, but that every verdict on them kept apart from the pool it used:
    # how their pool differs ("bf16 vs fp32"). Greyed like the others that count toward no
    # verdict, and dotted, so that they are not read as paused or stale runs either.
    kept_apart: str = ""
    # _stats by column, worked out once: drawing and describing a figure asks for them again
    # and again (4340 times for the 20 figures of benchmarks/big_store.py's store).
    _stats: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def look(self, place: int) -> tuple[str, str, int]:
        """The base colour, the marker and the style's number: the same experiment looks the
        same in every figure where the report numbers its styles (``style``)."""
        k = self.style if self.style is not None else place
        return COLORS[k % len(COLORS)], MARKERS[k % len(MARKERS)], k

    @property
    def legend(self) -> str:
        if self.counted:
            return self.label
        if self.kept_apart:
            return f"{self.label} (kept apart: {self.kept_apart})"
        if self.counted_at:
            epochs = "epoch" + ("s" if len(self.counted_at) > 1 else "")
            at = ", ".join(map(str, self.counted_at))
            return f"{self.label} ({self.why_not}: counted only at {epochs} {at})"
        return f"{self.label} (not counted: {self.why_not})"


def to_data_uri(fig: Figure) -> str:
    """The figure as an SVG data URI, laid out once and drawn once. Saved with a layout engine
    or a tight box, matplotlib lays the figure out in a draw of its own before the draw that
    writes it (and measures the tight box after that): an HTML report spent more than half its
    time drawing SVGs so. The figure's size (_fit_height) leaves room for all it holds, and
    constrained layout fits everything inside it, so nothing needs a tight box."""
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)  # where the panels go, measured once
        fig.set_layout_engine(None)  # laid out: the draw that writes the SVG is the only one
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        if engine is not None:
            fig.set_layout_engine(engine)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def _points(text: str, size: float) -> float:
    """How wide ``text`` is drawn at ``size`` pt, in points (its widest line), measured from
    the font as the SVG draws it: no figure, no renderer."""
    font = FontProperties(size=size)
    return max(text_to_path.get_text_width_height_descent(line, font, ismath=False)[0]
               for line in text.split("\n"))  # fmt: skip


def _wrap_to(text: str, size: float, points: float, indent: str = "") -> str:
    """``text`` wrapped at spaces (as _wrap) to lines at most ``points`` wide at ``size`` pt; a
    word wider than that alone keeps its own line."""
    if _points(text, size) <= points:
        return text
    start = int(len(text) * points / _points(text, size)) + 5  # about where it fits
    for width in range(min(start, len(text) - 1), 9, -1):
        wrapped = _wrap(text, width, indent)
        if _points(wrapped, size) <= points:
            return wrapped
    return _wrap(text, 10, indent)


def greyed(color) -> tuple[float, float, float]:
    """A colour faded most of the way to grey: lines stay apart, and read as not counted."""
    return tuple(0.3 * c + 0.7 * g for c, g in zip(to_rgb(color), GREY, strict=True))


def _color(series: Series, color) -> tuple[float, float, float]:
    return to_rgb(color) if series.counted else greyed(color)


def _stats(series: Series, column: str) -> pd.DataFrame:
    """Mean, min, max and count over seeds by epoch (shared: read it, never change it)."""
    if column not in series._stats:
        frame = series.curves.dropna(subset=[column])
        series._stats[column] = frame.groupby("epoch")[column].agg(["mean", "min", "max", "count"])
    return series._stats[column]


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
    count), min..max over seeds as a band; dotted for runs kept apart."""
    stats = _stats(series, column)
    if stats.empty:
        return
    # Offset dashes: a line identical to an earlier one and that one both show.
    ls = (3, (4, 3)) if dashed else (":" if series.kept_apart else "-" if bold else "--")
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


def fit_y(ax, values: list, *, bounds: tuple[float, float] | None = None,
          log_from: float = DECADE) -> None:  # fmt: skip
    """A y-range around the data (every point inside, a small margin), on a log axis where the
    top is ``log_from`` times the bottom or more; ``bounds`` clip a linear range (errors stay
    in 0..100)."""
    finite = [np.asarray(v, dtype=float) for v in values]
    data = np.concatenate(finite) if finite else np.array([])
    data = data[np.isfinite(data)]
    if not data.size:
        return
    lo, hi = float(data.min()), float(data.max())
    if lo > 0 and hi / lo >= log_from:
        ax.set_yscale("log")
        # Ticks at 1, 2 and 5 of each decade over a few decades, at each decade beyond; more
        # within a range of under a decade, where 1, 2 and 5 left some ranges one tick.
        ratio = hi / lo
        if ratio > 1000:
            subs: tuple[float, ...] = (1.0,)
        elif ratio >= DECADE:
            subs = (1.0, 2.0, 5.0)
        elif ratio >= 5:
            subs = (1.0, 2.0, 3.0, 5.0)
        else:
            subs = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
        ax.yaxis.set_major_locator(LogLocator(subs=subs))
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
            floor: float | None = None, note: bool = True,
            layout: Layout = DESK) -> None:  # fmt: skip
    """The y-range of an error axis: the last half of training and the claimed values, so that
    where runs and claims differ fills the axis; earlier epochs that fall outside it run off
    the axis, and a note above it says which and how far (``note``). ``floor``: a linear
    axis from there (He et al.'s Figure 6 draws error from 0)."""
    start = _later(series, columns)
    curves = _values(series, columns, start)
    shown = [*curves, _in_reach(curves, _claimed(series, columns), floor)]
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
        _note_off_scale(ax, series, columns, unit, layout)


def _in_reach(curves: list, claims: list[float], floor: float | None) -> list[float]:
    """The claimed values an error axis is fitted to: those within CLAIM_REACH times the
    curves' range of it (from ``floor``, where the axis starts there); all where no curve has
    a value yet."""
    data = np.concatenate([np.asarray(v, dtype=float) for v in curves] or [np.array([])])
    data = data[np.isfinite(data)]
    if not data.size:
        return claims
    lo = float(data.min()) if floor is None else floor
    hi = float(data.max())
    reach = CLAIM_REACH * max(hi - lo, MIN_ERROR_SPAN)
    return [v for v in claims if lo - reach <= v <= hi + reach]


def _widen(ax, span: float, *, bounds: tuple[float, float]) -> None:
    """A linear y-range at least ``span`` high, about the same middle, kept within ``bounds``."""
    lo, hi = ax.get_ylim()
    if ax.get_yscale() != "linear" or hi - lo >= span:
        return
    middle = (lo + hi) / 2
    lo = min(max(middle - span / 2, bounds[0]), bounds[1] - span)
    ax.set_ylim(lo, lo + span)


def _note_off_scale(ax, series: list[Series], columns: list[str], unit: str,
                    layout: Layout = DESK) -> None:  # fmt: skip
    """Over the axis, which epochs run off it and how far. Where curves of more than one
    column run off (training and test error on one axis), each is named on its own line:
    "epochs 1-81 off scale" of the test error stood over a training error drawn from epoch 38.
    The claimed values beyond the axis (_in_reach) take a line for each edge, each named with
    its value."""
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
    claims = []  # a line for those beyond each edge, however many: the axes keep their height
    for mark, edge, beyond in (("\u25b2", "top", True), ("\u25bc", "bottom", False)):
        values = [f"{name} {c.value:.4g}{unit}" + (f" at epoch {c.epoch}" if c.epoch else "")
                  for name, c in _claims_off(ax, series, columns)
                  if (c.value > hi) == beyond]  # fmt: skip
        if values:
            claims.append(f"{mark} claimed off scale (marked at the {edge} edge): "
                          + ", ".join(values))  # fmt: skip
    if notes or claims:
        # Wrapped to the panel's width, measured: a longer line widened the figure's layout and
        # squeezed every panel to make room for it, or ran past the figure's edge.
        room = _panel_width(layout, len(ax.figure.axes)) * 72
        lines = [_wrap_to(line, layout.small, room, "   ")
                 for line in ((notes + claims) if named or claims or layout.stacked
                              else ["; ".join(notes)])]  # fmt: skip
        ax.text(0, 1.015, "\n".join(lines), transform=ax.transAxes, fontsize=layout.small,
                ha="left", va="bottom", color="#57606a", gid=OFF_SCALE)  # fmt: skip
        _title_over_note(ax.figure.axes, layout)


def _panel_width(layout: Layout, panels: int) -> float:
    """Inches a panel's axes take across (on a phone, one a row; at a desk, side by side): the
    figure's width less its margins and each panel's tick labels and axis label."""
    return (layout.width - 0.2) / (1 if layout.stacked else panels) - 0.75


def _wrap(text: str, width: int, indent: str = "") -> str:
    """Lines of at most ``width`` characters, the later ones indented, broken at spaces only
    ("park-plain20" stays whole)."""
    return "\n".join(textwrap.wrap(text, width, subsequent_indent=indent,
                                   break_on_hyphens=False)) or text  # fmt: skip


def _claims_off(ax, series: list[Series], columns: list[str]) -> list[tuple[str, Claimed]]:
    """The claimed values, with their experiment, that lie beyond the axis's y-range."""
    lo, hi = ax.get_ylim()
    return [(s.label.split("~")[0], c) for s in series for c in s.claims
            if c.column in columns and not lo <= c.value <= hi]  # fmt: skip


def _title_over_note(axes, layout: Layout) -> None:
    """Titles lifted over the off-scale notes, by as much on every panel, to stay in a row:
    as much as the note of most lines needs. Stacked (a phone), each over its own note."""
    most = max(_note_lines(axes), default=1)
    for ax in axes:
        lines = max(_note_lines([ax]), default=0) if layout.stacked else most
        pad = layout.small * (2.3 + 1.3 * (lines - 1)) if lines else 6.0  # 6: matplotlib's own
        ax.set_title(ax.get_title(), pad=pad)


def _note_lines(axes) -> list[int]:
    """The lines of each panel's note over it, for the panels that have one."""
    return [t.get_text().count("\n") + 1 for ax in axes for t in ax.texts
            if t.get_gid() == OFF_SCALE]  # fmt: skip


def off_scale(fig: Figure, *, spoken: bool = False) -> list[str]:
    """What each axis leaves off its scale, as its note says: ["test error: ▲ epochs ..."];
    ``spoken``: in words, for alt text ("test error: epochs 1–81 above the axis, up to 55%")."""
    notes = [
        f"{ax.get_title() or ax.get_ylabel()}: "
        + re.sub(r"\n   ", " ", t.get_text()).replace("\n", "; ")  # wrapped lines joined
        for ax in fig.axes
        for t in ax.texts
        if t.get_gid() == OFF_SCALE
    ]
    if spoken:
        notes = [re.sub(r"([\u25b2\u25bc]) (.*?) off scale \((.*?)\)", _in_words, n) for n in notes]
    return notes


def claims_off_scale(fig: Figure) -> int:
    """How many claimed values are marked at an axis's edge, beyond its range."""
    return sum(line.get_gid() == OFF_SCALE_CLAIM for ax in fig.axes for line in ax.get_lines())


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
    off = [c for _, c in _claims_off(ax, [series], columns)]
    for c in series.claims:
        if c.column not in columns:
            continue
        label = f"{series.label.split('~')[0]}: claimed {c.label}"
        if c in off:
            _claim_at_edge(ax, c, c.epoch or last, color, label)
        elif c.epoch is None:
            ax.plot([first, last], [c.value] * 2, color=to_rgb(color), lw=1.0, ls="-.",
                    label=label, marker=marker, markevery=[1], ms=6)  # fmt: skip
        else:
            ax.plot([c.epoch], [c.value], ls="none", marker="*", ms=10, color=to_rgb(color),
                    mec="black", mew=0.5, label=label, zorder=5)  # fmt: skip


def _claim_at_edge(ax, claim: Claimed, epoch: float, color, label: str) -> None:
    """A claim beyond the y-range, as a triangle just inside the edge it lies beyond, pointing
    there, at its epoch (the last, for a claim on the end of training); beside another one at
    that place, it moves left of it. Its value is in the note over the panel and the legend
    (where its label is the claim's, its triangle saying where it is drawn)."""
    top = claim.value > ax.get_ylim()[1]
    marked = [line for line in ax.get_lines() if line.get_gid() == OFF_SCALE_CLAIM]
    taken = sum(1 for line in marked
                if line.get_xdata()[0] == epoch and (line.get_ydata()[0] > 0.5) == top)  # fmt: skip
    shift = ScaledTranslation(-9 * taken / 72, 0, ax.figure.dpi_scale_trans)
    ax.plot([epoch], [0.965 if top else 0.035], ls="none", marker="^" if top else "v", ms=8,
            color=to_rgb(color), mec="black", mew=0.5, zorder=5, clip_on=False,
            gid=OFF_SCALE_CLAIM, transform=ax.get_xaxis_transform() + shift,
            label=label)  # fmt: skip


def _legend(fig: Figure, axes, layout: Layout = DESK) -> None:
    """One legend for the figure, below its panels, where it hides no curve: the error axes
    are fitted to where the curves end, and so is the upper right corner. As many columns
    (up to three) as fit the figure's width, measured; an entry wider than the figure wraps.
    On a phone, one entry a row, each wrapped to the figure's width."""
    found: dict[str, object] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            found.setdefault(label, handle)
    if found:
        longest, many = max(map(len, found)), len(found) > 6
        ncols = 1 if len(found) == 1 or longest > 70 else 3 if many and longest <= 45 else 2
        labels = list(found)
        if layout.wrap:
            ncols, labels = 1, [_wrap(label, layout.wrap, "  ") for label in labels]
        room = _legend_room(layout)
        while ncols > 1 and _legend_width(labels, ncols, layout.small) > room:
            ncols -= 1
        if ncols == 1:
            entry = room - _legend_width([""], 1, layout.small)
            labels = [_wrap_to(label, layout.small, entry, "  ") for label in labels]
        legend = fig.legend(list(found.values()), labels, loc="outside lower center",
                            fontsize=layout.small, ncols=ncols, frameon=False)  # fmt: skip
        legend.set_gid(LEGEND)


LEGEND = "legend"  # the gid of a figure's legend: the page's test measures its type


def _legend_room(layout: Layout) -> float:
    """Points a legend below the panels may take: the figure's width less the layout's pads."""
    return (layout.width - 0.2) * 72


def _legend_width(labels: list[str], ncols: int, size: float) -> float:
    """Points a legend of these entries in ``ncols`` columns takes (filled a column at a time,
    as matplotlib fills them): each column as wide as its widest entry and its handle, the
    columns apart by matplotlib's spacing, and the legend's own pad."""
    rc = matplotlib.rcParams
    handle = (rc["legend.handlelength"] + rc["legend.handletextpad"]) * size
    rows = -(-len(labels) // ncols)
    columns = [labels[i : i + rows] for i in range(0, len(labels), rows)]
    widths = [handle + max(_points(label, size) for label in column) for column in columns]
    return sum(widths) + (len(columns) - 1) * rc["legend.columnspacing"] * size \
        + 2 * rc["legend.borderpad"] * size  # fmt: skip


def _legend_lines(fig: Figure) -> int:
    """Lines of text the figure's legend below its panels takes: in each column, its entries'
    lines, in the fullest column."""
    lines = 0
    for legend in fig.legends:
        texts = [t.get_text().count("\n") + 1 for t in legend.get_texts()]
        rows = -(-len(texts) // max(1, legend._ncols))
        lines += max((sum(texts[i : i + rows]) for i in range(0, len(texts), rows)), default=0)
    return lines


def _panels(fig: Figure, count: int, layout: Layout, **shared):
    """The figure's panels: side by side at a desk, one above another on a phone (the
    figure's height follows in _fit_height)."""
    fig.set_size_inches(layout.width, 2 * PANEL if not layout.stacked else count * PANEL)
    rows, cols = (count, 1) if layout.stacked else (1, count)
    axes = fig.subplots(rows, cols, squeeze=False, **shared)
    return list(axes.flat)


def _finish(fig: Figure, title: str, layout: Layout, panel: float = PANEL) -> None:
    """The figure's title (wrapped to its width), its type on a phone, and its height: each
    panel ``panel`` inches high or so, however many lines its note, the title and the legend
    take."""
    if layout.wrap:
        title = _wrap(title, layout.wrap)
    size = layout.text + 1 if layout.text else 10
    title = _wrap_to(title, size, (layout.width - 0.2) * 72) if title else title
    if title:
        fig.suptitle(title, fontsize=size)
    if layout.text is not None:
        for ax in fig.axes:
            ax.tick_params(labelsize=layout.text)
            ax.xaxis.label.set_size(layout.text)
            ax.yaxis.label.set_size(layout.text)
            ax.title.set_size(layout.text + 1)
    _fit_height(fig, layout, panel)


def _fit_height(fig: Figure, layout: Layout, panel: float) -> None:
    """The figure's height: its rows of panels, ``panel`` inches each, and what stands over and
    under them (the title, each row's panel titles, notes, ticks and axis labels, the legend
    below), reckoned from their type and lines. Constrained layout then fits all of it
    inside the figure, the panels taking what is left: saved without a tight box, a figure
    too short for a long legend squeezed its panels (a desk's to 1.5 in), and one the layout
    could not fit at all would have been cut off."""
    text = layout.text or matplotlib.rcParams["font.size"]
    line = layout.small / 72 * 1.25  # inches a line of small type takes
    rows = [[ax] for ax in fig.axes] if layout.stacked else [fig.axes]
    notes = sum(max(_note_lines(row), default=0) for row in rows)
    # Per row: a panel title, tick labels and an axis label, in lines of the text's type.
    decoration = 6.75 * text / 72
    title = fig.get_suptitle()
    title_lines = title.count("\n") + 1 if title else 0
    height = (len(rows) * (panel + decoration) + notes * line + _legend_lines(fig) * line * 1.2
              + title_lines * text / 72 * 1.5 + 0.2 + 2 * MARGIN)  # fmt: skip
    fig.set_figheight(height)
    # A margin all round, as the tight box's pad left: a title at the top edge of the image
    # read as cut off.
    w, h = MARGIN / layout.width, MARGIN / height
    fig.get_layout_engine().set(rect=(w, h, 1 - 2 * w, 1 - 2 * h))


def curves_plot(series: list[Series], title: str, layout: Layout = DESK) -> Figure:
    """Training loss and test error against epoch, one line per experiment, with the claimed
    values; the test error's axis is fitted to the last half of training and the claims."""
    fig = Figure(layout="constrained")
    loss_ax, err_ax = _panels(fig, 2, layout)
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
    fit_y(loss_ax, [*_values(series, ["train_loss"]), _claimed(series, ["train_loss"])],
          log_from=FACTORS)  # fmt: skip
    for ax in (loss_ax, err_ax):
        ax.grid(alpha=0.3)
        _whole_epochs(ax)
        _planned_length(ax, series)
    # First the range: a claim beyond it is drawn at its edge.
    focus_y(err_ax, series, ["test_error"], layout=layout)
    for i, s in enumerate(series):
        base, marker, _ = s.look(i)
        _claims(loss_ax, s, ["train_loss"], base, marker)
        _claims(err_ax, s, ["test_error"], base, marker)
    _legend(fig, [err_ax, loss_ax], layout)
    _finish(fig, title, layout)
    return fig


def degradation_plot(series: list[Series], title: str, layout: Layout = DESK) -> Figure:
    """He et al. 2015, Figure 6 style: plain nets and ResNets side by side, each in the colour
    and marker it has in the other figures; thin dashed lines are training error, bold lines
    test error; seeds as a band; the claimed values beside them. Error from 0, as there, up
    to the last half of training and the claims: the first epochs run off the top."""
    place = {id(s): i for i, s in enumerate(series)}
    plain = sorted((s for s in series if s.plain), key=lambda s: s.depth)
    residual = sorted((s for s in series if not s.plain), key=lambda s: s.depth)
    fig = Figure(layout="constrained")
    axes = _panels(fig, 2, layout, sharey=True)
    for ax, group, name in ((axes[0], plain, "plain"), (axes[1], residual, "residual")):
        same = _same_as(group, ["train_error", "test_error"])
        for i, s in enumerate(group):
            base, marker, k = s.look(place[id(s)])
            color = _color(s, base)
            # The family, then the experiment and how it stands: "plain-20: tseng-plain20
            # (not counted: paused)", not brackets inside brackets.
            label = f"{s.model}: {s.legend}" if s.model else s.legend
            if same[i] is not None:
                label += f" (same as {group[same[i]].label})"
            _band(ax, s, "train_error", color, bold=False, marker=marker, style=k)
            _band(ax, s, "test_error", color, label=label, dashed=same[i] is not None,
                  marker=marker, style=k)  # fmt: skip
        ax.set(xlabel="epoch", title=f"{name} nets")
        ax.grid(alpha=0.3)
        _whole_epochs(ax)
        _planned_length(ax, series)
    # The key in the label of the one axis a desk shows, on each panel of a phone's (its
    # label runs the height of one panel, too short for the key).
    for ax in axes if layout.stacked else axes[:1]:
        if layout.stacked:
            ax.set(ylabel="error (%)", title=f"{ax.get_title()} (dashed: training, bold: test)")
        else:
            ax.set_ylabel("error (%)  dashed: training, bold: test")
    # First the range: a claim beyond it is drawn at its edge.
    focus_y(axes[0], series, ["train_error", "test_error"], floor=0.0, note=False)
    for ax, group in ((axes[0], plain), (axes[1], residual)):
        _note_off_scale(ax, group, ["train_error", "test_error"], "%", layout)
        for s in group:
            base, marker, _ = s.look(place[id(s)])
            _claims(ax, s, ["test_error", "train_error"], base, marker)
    _legend(fig, axes, layout)
    _finish(fig, title, layout)
    return fig


def lr_plot(schedules: dict[str, list[tuple[float, float]]], title: str,
            layout: Layout = DESK) -> Figure:  # fmt: skip
    """Learning rate against epoch for each schedule: ``{label: [(epoch, lr), ...]}``."""
    fig = Figure(layout="constrained")
    (ax,) = _panels(fig, 1, layout)
    for i, (name, points) in enumerate(schedules.items()):
        xs, ys = zip(*points, strict=True)
        ax.step(xs, ys, where="post", color=COLORS[i % len(COLORS)], label=name, lw=1.4,
                ls=DASHES[i % len(DASHES)])  # fmt: skip
    ax.set(xlabel="epoch", ylabel="learning rate", title=title)
    fit_y(ax, [[y for _, y in points] for points in schedules.values()], log_from=FACTORS)
    ax.grid(alpha=0.3)
    _whole_epochs(ax)
    if layout.stacked:  # below the axes, where an entry may take the figure's width
        _legend(fig, [ax], layout)
    else:
        ax.legend(fontsize=layout.small, loc="lower left").set_gid(LEGEND)
    _finish(fig, "", layout, PANEL if layout.stacked else LR_PANEL)
    return fig

"""Figures for the report, as self-contained SVG data URIs (no files, no external assets).

Uses matplotlib's object API (``Figure``), never pyplot's global state. Each ``*_plot``
function takes plain data (pandas frames and lists) and returns the matplotlib ``Figure``, so
tests can read what was drawn (ticks, ranges, lines, labels); ``to_data_uri`` turns it into a
``data:image/svg+xml;base64,...`` string for the page.
"""

from __future__ import annotations

import base64
import io
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


GREY = (0.62, 0.64, 0.66)
# A y-range whose top is this many times its bottom is drawn on a log axis: a loss that falls
# from 2 to 0.002 is a flat line on a linear one.
DECADE = 10.0


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

    @property
    def legend(self) -> str:
        return self.label if self.counted else f"{self.label} (not counted: {self.why_not})"


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


def _band(ax, series: Series, column: str, color, *, bold: bool = True, label=None,
          dashed: bool = False) -> None:  # fmt: skip
    """Mean over seeds as a line, min..max over seeds as a band."""
    stats = _stats(series, column)
    if stats.empty:
        return
    style = (3, (4, 3)) if dashed else ("-" if bold else "--")  # offset: both lines show
    few = len(stats) <= 5  # a line through one or two points is hardly a line: mark them
    ax.plot(stats.index, stats["mean"], color=color, lw=1.8 if bold else 0.8, ls=style,
            label=label, marker="o" if few else None, ms=3 if bold else 2)  # fmt: skip
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


def _values(series: list[Series], columns: list[str]) -> list[pd.Series]:
    return [_stats(s, c)[k] for s in series for c in columns for k in ("min", "max")]


def curves_plot(series: list[Series], title: str) -> Figure:
    """Training loss and test error against epoch, one line per experiment."""
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    loss_ax, err_ax = fig.subplots(1, 2)
    same = _same_as(series, ["train_loss", "test_error"])
    for i, s in enumerate(series):
        color = _color(s, COLORS[i % len(COLORS)])
        label = s.legend + (f" (same as {series[same[i]].label})" if same[i] is not None else "")
        dashed = same[i] is not None
        _band(loss_ax, s, "train_loss", color, label=label, dashed=dashed)
        _band(err_ax, s, "test_error", color, label=label, dashed=dashed)
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="training loss")
    err_ax.set(xlabel="epoch", ylabel="test error (%)", title="test error")
    fit_y(loss_ax, _values(series, ["train_loss"]))
    fit_y(err_ax, _values(series, ["test_error"]), bounds=(0, 100))
    for ax in (loss_ax, err_ax):
        ax.grid(alpha=0.3)
        _whole_epochs(ax)
        _planned_length(ax, series)
    err_ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    return fig


def _size_key(series: Series) -> str:
    """What a colour stands for across the two panels: the model without its family, so
    plain-20 and ResNet-20 share one, as in He et al.'s figure."""
    model = series.model or series.label
    return model.split("-", 1)[1] if "-" in model else model


def degradation_plot(series: list[Series], title: str) -> Figure:
    """He et al. 2015, Figure 6 style: plain nets and ResNets side by side, one colour per
    size; thin dashed lines are training error, bold lines test error; seeds as a band."""
    plain = sorted((s for s in series if s.plain), key=lambda s: s.depth)
    residual = sorted((s for s in series if not s.plain), key=lambda s: s.depth)
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    keys = list(dict.fromkeys(_size_key(s) for s in sorted(series, key=lambda s: s.depth)))
    color_of = {k: COLORS[i % len(COLORS)] for i, k in enumerate(keys)}
    for ax, group, name in ((axes[0], plain, "plain"), (axes[1], residual, "residual")):
        same = _same_as(group, ["train_error", "test_error"])
        for i, s in enumerate(group):
            color = _color(s, color_of[_size_key(s)])
            label = f"{s.model or s.label} ({s.legend})"
            if same[i] is not None:
                label += f" (same as {group[same[i]].label})"
            _band(ax, s, "train_error", color, bold=False)
            _band(ax, s, "test_error", color, label=label, dashed=same[i] is not None)
        ax.set(xlabel="epoch", title=f"{name} nets")
        ax.grid(alpha=0.3)
        _whole_epochs(ax)
        _planned_length(ax, series)
        if group:
            ax.legend(fontsize=7, loc="upper right")
    axes[0].set_ylabel("error (%)  dashed: training, bold: test")
    fit_y(axes[0], _values(series, ["train_error", "test_error"]), bounds=(0, 100))
    fig.suptitle(title, fontsize=10)
    return fig


def lr_plot(schedules: dict[str, list[tuple[float, float]]], title: str) -> Figure:
    """Learning rate against epoch for each schedule: ``{label: [(epoch, lr), ...]}``."""
    fig = Figure(figsize=(10, 2.6), layout="constrained")
    ax = fig.subplots()
    for i, (name, points) in enumerate(schedules.items()):
        xs, ys = zip(*points, strict=True)
        ax.step(xs, ys, where="post", color=COLORS[i % len(COLORS)], label=name, lw=1.4)
    ax.set(xlabel="epoch", ylabel="learning rate", title=title)
    fit_y(ax, [[y for _, y in points] for points in schedules.values()])
    ax.grid(alpha=0.3)
    _whole_epochs(ax)
    ax.legend(fontsize=7, loc="lower left")
    return fig

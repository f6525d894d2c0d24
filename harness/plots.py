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
import pandas as pd
from matplotlib.figure import Figure

matplotlib.rcParams["svg.fonttype"] = "path"  # glyphs as paths: no font files needed

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
          "#e377c2", "#7f7f7f", "#bcbd22"]  # fmt: skip


@dataclass(frozen=True)
class Series:
    """One experiment's curves over its runs (rows of a curves frame, all seeds)."""

    label: str
    curves: pd.DataFrame  # columns: seed, epoch, train_loss, train_error, test_error, lr
    depth: int = 0
    plain: bool = False


def to_data_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()


def _band(ax, series: Series, column: str, color: str, *, bold: bool = True, label=None) -> None:
    """Mean over seeds as a line, min..max over seeds as a band."""
    frame = series.curves.dropna(subset=[column])
    if frame.empty:
        return
    stats = frame.groupby("epoch")[column].agg(["mean", "min", "max", "count"])
    ax.plot(
        stats.index,
        stats["mean"],
        color=color,
        lw=1.8 if bold else 0.8,
        ls="-" if bold else "--",
        label=label,
    )
    if (stats["count"] > 1).any():
        ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.18, lw=0)


def curves_plot(series: list[Series], title: str) -> Figure:
    """Training loss and test error against epoch, one line per experiment."""
    fig = Figure(figsize=(10, 3.4))
    loss_ax, err_ax = fig.subplots(1, 2)
    for i, s in enumerate(series):
        color = COLORS[i % len(COLORS)]
        _band(loss_ax, s, "train_loss", color, label=s.label)
        _band(err_ax, s, "test_error", color, label=s.label)
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="training loss")
    err_ax.set(xlabel="epoch", ylabel="test error (%)", title="test error")
    _limit_error_axis(err_ax, series, ["test_error"])
    for ax in (loss_ax, err_ax):
        ax.grid(alpha=0.3)
    err_ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    return fig


def degradation_plot(series: list[Series], title: str) -> Figure:
    """He et al. 2015, Figure 6 style: plain nets and ResNets side by side, one line per depth;
    thin dashed lines are training error, bold lines test error; seeds as a band."""
    plain = sorted((s for s in series if s.plain), key=lambda s: s.depth)
    residual = sorted((s for s in series if not s.plain), key=lambda s: s.depth)
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    depths = sorted({s.depth for s in series})
    color_of = {d: COLORS[i % len(COLORS)] for i, d in enumerate(depths)}
    for ax, group, name in ((axes[0], plain, "plain"), (axes[1], residual, "ResNet")):
        for s in group:
            color = color_of[s.depth]
            _band(ax, s, "train_error", color, bold=False)
            _band(ax, s, "test_error", color, label=f"{name}-{s.depth} ({s.label})")
        ax.set(xlabel="epoch", title=f"{name} nets")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    axes[0].set_ylabel("error (%)  dashed: training, bold: test")
    _limit_error_axis(axes[0], series, ["train_error", "test_error"])
    fig.suptitle(title, fontsize=10)
    return fig


def _limit_error_axis(ax, series: list[Series], columns: list[str]) -> None:
    """Error axes from 0 to a little above the worst error after the first epochs."""
    values = [s.curves[c].dropna() for s in series for c in columns if c in s.curves]
    values = [v for v in values if not v.empty]
    if values:
        top = max(float(v.quantile(0.9)) for v in values)
        ax.set_ylim(0, min(100, max(5.0, top * 1.15)))


def lr_plot(schedules: dict[str, list[tuple[float, float]]], title: str) -> Figure:
    """Learning rate against epoch for each recipe: ``{recipe: [(epoch, lr), ...]}``."""
    fig = Figure(figsize=(10, 2.6))
    ax = fig.subplots()
    for i, (name, points) in enumerate(schedules.items()):
        xs, ys = zip(*points, strict=True)
        ax.step(xs, ys, where="post", color=COLORS[i % len(COLORS)], label=name, lw=1.4)
    ax.set(xlabel="epoch", ylabel="learning rate", yscale="log", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return fig

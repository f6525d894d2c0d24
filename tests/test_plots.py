"""The report's figures, read back from what matplotlib drew: ticks, ranges, lines, labels."""

from __future__ import annotations

import base64
import colorsys
import itertools
import re

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, TINY_RECIPE, tiny_study
from fake_runs import fake_run, kept_apart_store
from matplotlib.colors import to_rgb

from harness import plots
from harness.report import build, render_html
from harness.results import scan
from harness.studyfile import load_study

SMOKE = ROOT / "studies" / "smoke.yaml"
DEGRADATION = ROOT / "studies" / "degradation.yaml"


def curves(epochs: int, test_error, train_loss=None, seeds: int = 1) -> pd.DataFrame:
    """A curves frame: ``test_error`` and ``train_loss`` are functions of the epoch."""
    rows = [{"seed": s, "epoch": e, "train_loss": (train_loss or (lambda e: 1.0 / e))(e),
             "train_error": test_error(e) / 2, "test_error": test_error(e), "lr": 0.1}
            for s in range(seeds) for e in range(1, epochs + 1)]  # fmt: skip
    return pd.DataFrame(rows)


def visible_ticks(ax) -> list[float]:
    lo, hi = sorted(ax.get_xlim())
    return [t for t in ax.get_xticks() if lo <= t <= hi]


def lines(fig) -> list:
    return [line for ax in fig.axes for line in ax.get_lines() if line.get_label()[:1] != "_"]


def saturation(color) -> float:
    return colorsys.rgb_to_hsv(*to_rgb(color))[1]


def report_figures(study_path, results):
    study = load_study(study_path)
    return build([(study, str(study_path))], scan(results), str(results)).studies[0].figures


# --------------------------------------------------------------------------- axes


def test_epoch_ticks_are_whole_numbers_and_a_short_run_shows_its_points():
    two = plots.Series("short", curves(2, lambda e: 30.0 / e), depth=8)
    plain = plots.Series("plain", curves(2, lambda e: 40.0 / e), depth=8, plain=True)
    one = plots.Series("one", curves(1, lambda e: 80.0), depth=8)
    figures = [
        plots.curves_plot([two], "two epochs"),
        plots.curves_plot([one], "one epoch"),
        plots.degradation_plot([two, plain], "two epochs"),
        plots.lr_plot({"tiny": [(i / 20, 0.1) for i in range(40)]}, "learning rate"),
    ]
    for fig in figures:
        for ax in fig.axes:
            ticks = visible_ticks(ax)
            assert ticks and all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)
    # A line through one or two points is hard to see: its points are marked.
    for fig in figures[:3]:
        for line in lines(fig):
            assert line.get_marker() in plots.MARKERS and line.get_markevery() is None, fig.texts


def test_the_y_range_is_fitted_to_the_data_and_logarithmic_where_it_spans_decades():
    # Test error from 40% to 12% over a short run: every point inside, not from 0 to 100.
    falling = plots.Series("falling", curves(8, lambda e: 12 + 28 / e, lambda e: 2.0 / e**3))
    fig = plots.curves_plot([falling], "t")
    loss_ax, err_ax = fig.axes
    lo, hi = err_ax.get_ylim()
    assert lo <= 12 + 28 / 8 and hi >= 40.0, (lo, hi)
    assert lo > 6 and hi < 48, "the range should hug the data"
    assert err_ax.get_yscale() == "linear" and plots.off_scale(fig) == []
    # The training loss falls from 2 to 0.004: almost three decades, on a log axis.
    assert loss_ax.get_yscale() == "log"
    lo, hi = loss_ax.get_ylim()
    assert lo <= 2.0 / 8**3 and hi >= 2.0 and hi / lo < 2.0 / (2.0 / 8**3) * 2


def test_a_loss_is_logarithmic_from_half_a_decade_an_error_axis_from_a_decade():
    # Runs paused near their first learning-rate decay, losses falling from 1.8 to about 0.18:
    # with a decade as the threshold, one study drew Tseng's (10.7x) on a log axis and He's and
    # Park's (9.8x, 9.7x) on linear ones, their later epochs in the bottom tenth.
    paused = plots.Series("paused", curves(80, lambda e: 20 + 40 / e, lambda e: 1.8 / e**0.52))
    loss_ax = plots.curves_plot([paused], "paused").axes[0]
    lo, hi = loss_ax.get_ylim()
    assert loss_ax.get_yscale() == "log" and 9 < hi / lo < 12, (lo, hi)
    assert [round(t, 3) for t in loss_ax.get_yticks() if lo <= t <= hi] == [0.2, 0.3, 0.5, 1]
    # Half a decade: a loss from 0.9 to 0.28 as well, with ticks enough to read it.
    half = plots.Series("half", curves(30, lambda e: 20 + 40 / e, lambda e: 0.9 / e**0.35))
    loss_ax = plots.curves_plot([half], "half").axes[0]
    lo, hi = loss_ax.get_ylim()
    assert loss_ax.get_yscale() == "log"
    assert [round(t, 3) for t in loss_ax.get_yticks() if lo <= t <= hi] == [0.3, 0.4, 0.5,
                                                                               0.6, 0.8]  # fmt: skip
    # A smoke run's loss (2.3 to 2.0 in two epochs) stays linear, and so do errors in points
    # that span less than a decade (a short run's 60% to 7.5%: errors are read in points).
    smoke = plots.Series("smoke", curves(2, lambda e: 80.0 - 3 * e, lambda e: 2.45 - 0.15 * e))
    assert plots.curves_plot([smoke], "smoke").axes[0].get_yscale() == "linear"
    short = plots.Series("short", curves(8, lambda e: 60.0 / e, lambda e: 2.0 / e))
    assert plots.curves_plot([short], "short").axes[1].get_yscale() == "linear"
    # Learning rates change by factors too: a single 5x step is drawn on a log axis.
    lr = plots.lr_plot({"step": [(0, 0.1), (50, 0.02), (100, 0.02)]}, "learning rate")
    assert lr.axes[0].get_yscale() == "log"


def early_and_late():
    """A test error that falls from about 90% to 10-11% within ten epochs and then barely
    moves, as real runs do: on an axis fitted to every point, the last half is a sliver."""
    return lambda e: 10 + 80 / e**2 + (e % 7) / 7


def test_error_axes_show_the_last_half_of_training_and_the_claims():
    claimed = (plots.Claimed("test_error", 8.0, "test error 8% (T1)"),)
    run = plots.Series("run", curves(100, early_and_late(), seeds=2), claims=claimed)
    fig = plots.curves_plot([run], "zoomed")
    loss_ax, err_ax = fig.axes
    lo, hi = err_ax.get_ylim()
    # From the claim (8%) to the last half's highest error (about 11%), not up to 90%.
    assert lo < 8.0 < 10 < 11 < hi < 13, (lo, hi)
    (claim,) = [line for line in err_ax.get_lines() if "claimed" in line.get_label()]
    assert list(claim.get_ydata()) == [8.0, 8.0] and claim.get_linestyle() == "-."
    assert claim.get_label() == "run: claimed test error 8% (T1)"
    # What runs off the axis is said over it: the first epochs, and how high they go.
    (note,) = plots.off_scale(fig)
    assert note.startswith("test error: \u25b2 epochs 1\u2013") and "(up to 90.1%)" in note, note
    # The training loss keeps every epoch (a log axis gives the late ones room already).
    assert not [t for t in loss_ax.texts if t.get_gid() == plots.OFF_SCALE]
    lo, hi = loss_ax.get_ylim()
    assert lo <= 1.0 / 100 and hi >= 1.0
    # A paused run that has not reached the last half of its planned epochs shows them all.
    early = plots.Series("early", curves(30, early_and_late()), planned_epochs=100)
    fig = plots.curves_plot([early], "paused early")
    assert fig.axes[1].get_ylim()[1] >= 90 and plots.off_scale(fig) == []


def test_a_claim_after_one_epoch_is_a_point_and_a_claim_near_the_curves_widens_the_axis():
    claimed = (plots.Claimed("test_error", 17.0, "test error @90 17% (F4)", epoch=90),)
    run = plots.Series("run", curves(100, early_and_late()), claims=claimed)
    err_ax = plots.curves_plot([run], "at 90").axes[1]
    (star,) = [line for line in err_ax.get_lines() if "claimed" in line.get_label()]
    assert list(star.get_xdata()) == [90] and list(star.get_ydata()) == [17.0]
    assert star.get_marker() == "*" and star.get_linestyle() == "None"
    lo, hi = err_ax.get_ylim()
    assert lo < 10 and 17 < hi < 20, (lo, hi)


def test_a_claim_far_from_the_curves_is_marked_at_the_axis_edge_with_its_value(tmp_path):
    # Tseng's 90% for a plain-110 that did not learn, fitted into an axis of curves at 5-20%,
    # stretched it to 0-97% and flattened every curve. Beyond twice the curves' range from
    # them, a claim is a triangle at the edge instead, its value in the note and the legend.
    path = tiny_study(tmp_path / "far.yaml", """\
  - {name: plain, model: plain20, recipe: base}
  - {name: res, model: resnet20, recipe: base}
claims:
  - {source: test, where: T1, experiment: plain, metric: test_error, value: 90.00}
  - {source: test, where: T1, experiment: res, metric: test_error, value: 8.5}
""", name="far", recipe=TINY_RECIPE.replace("epochs: 3", "epochs: 20"))  # fmt: skip
    study = load_study(path)
    results = tmp_path / "results"
    fake_run(results, study, "plain", epochs=20, test_error=12.0)  # 18% falling to 12%
    fake_run(results, study, "res", epochs=20, test_error=10.0)
    figures = report_figures(path, results)
    (versus,) = [f for f in figures if f.title.endswith("plain versus residual")]
    (drawn,) = [f for f in figures if f.title.endswith("training loss and test error")]
    for figure, ax in ((versus, versus.plot.axes[0]), (drawn, drawn.plot.axes[1])):
        lo, hi = ax.get_ylim()
        assert hi < 25, (figure.title, lo, hi)  # the curves keep the axis
        (edge,) = [line for line in ax.get_lines() if line.get_gid() == plots.OFF_SCALE_CLAIM]
        assert edge.get_marker() == "^" and list(edge.get_xdata()) == [20]  # the last epoch
        assert list(edge.get_ydata()) == [0.965]  # just under the top edge, in axes fraction
        # In the legend as the claim it is, with the triangle it is drawn as.
        assert edge.get_label() == "plain: claimed test error 90.00% (repro, T1)"
        labels = [t.get_text() for t in figure.plot.legends[0].get_texts()]
        assert edge.get_label() in labels
        (note,) = [t.get_text() for t in ax.texts if t.get_gid() == plots.OFF_SCALE]
        assert "\u25b2 claimed off scale (marked at the top edge): plain 90%" in note.split("\n")
        assert "claimed above the axis, marked at the top edge: plain 90%" in figure.alt
        assert "is a triangle at the edge it lies beyond" in figure.caption
        # No line is drawn for it (it would be clipped away), and the near claim is a line.
        assert not [line for line in ax.get_lines()
                    if line.get_label().startswith("plain: claimed") and line is not edge]  # fmt: skip
    res = [line for line in drawn.plot.axes[1].get_lines()
           if line.get_label() == "res: claimed test error 8.5% (repro, T1)"]  # fmt: skip
    assert [list(line.get_ydata()) for line in res] == [[8.5, 8.5]]
    assert plots.claims_off_scale(versus.plot) == 1 and plots.claims_off_scale(drawn.plot) == 1
    # Far below the curves (a net claimed at 1% against runs at 50-60%), at the bottom edge;
    # and two far claims at one place stand side by side, not on each other.
    claims = (plots.Claimed("test_error", 1.0, "test error 1% (T1)"),
              plots.Claimed("test_error", 1.5, "best test error 1.5% (T1)"))  # fmt: skip
    high = plots.Series("high", curves(40, lambda e: 50 + 40 / e), claims=claims)
    fig = plots.curves_plot([high], "low claims")
    edges = [line for line in fig.axes[1].get_lines() if line.get_gid() == plots.OFF_SCALE_CLAIM]
    assert [line.get_marker() for line in edges] == ["v", "v"] and fig.axes[1].get_ylim()[0] > 40
    fig.canvas.draw()
    xs = [line.get_transform().transform((40, 0.035))[0] for line in edges]
    assert xs[0] - xs[1] > 5, xs  # pixels apart
    (note,) = plots.off_scale(fig)  # one line for both, the axes keep their height
    assert note.endswith("\u25bc claimed off scale (marked at the bottom edge): high 1%, high 1.5%")


def test_the_plain_versus_residual_error_axis_starts_at_0_like_he_et_al_s():
    claimed = (plots.Claimed("test_error", 9.5, "test error 9.5% (T1)"),)
    plain = plots.Series("plain", curves(100, early_and_late()), 20, True, claims=claimed)
    res = plots.Series("res", curves(100, lambda e: early_and_late()(e) - 1), depth=20)
    fig = plots.degradation_plot([plain, res], "fig 6")
    lo, hi = fig.axes[0].get_ylim()
    assert lo == 0 and 11 < hi < 14, (lo, hi)  # training error (half the test error) below
    assert fig.axes[1].get_ylim() == (lo, hi)  # shared between the panels
    notes = plots.off_scale(fig)
    assert [n.split(":")[0] for n in notes] == ["plain nets", "residual nets"], notes
    assert any("claimed test error 9.5%" in line.get_label() for line in fig.axes[0].get_lines())


def test_the_note_over_a_panel_names_each_curve_that_runs_off_it():
    # Over the plain-versus-residual panels, "epochs 1-81 off scale (up to 64.3%)" joined
    # the test error (off until epoch 81, up to 55%) and the training error (off until epoch
    # 35, up to 64.3%), above a training error drawn from epoch 36.
    frame = curves(100, lambda e: 40.0 if e <= 40 else 12.0)
    frame["train_error"] = [80.0 / e for e in frame["epoch"]]
    plain = plots.Series("plain", frame, 20, True)
    res = plots.Series("res", frame.assign(test_error=frame["test_error"] - 1), depth=20)
    fig = plots.degradation_plot([plain, res], "fig 6")
    (note,) = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == plots.OFF_SCALE]
    training, test = note.split("\n")
    assert training.startswith("\u25b2 training error epochs 1\u2013") and "(up to 80%)" in training
    assert test == "\u25b2 test error epochs 1\u201340 off scale (up to 40%)"
    last = int(training.split("\u2013")[1].split()[0])
    assert 80.0 / last > fig.axes[0].get_ylim()[1] > 80.0 / (last + 1)
    spoken = plots.off_scale(fig, spoken=True)[0]
    assert spoken.startswith("plain nets: training error epochs 1\u2013")
    assert spoken.endswith("; test error epochs 1\u201340 above the axis, up to 40%")
    # The titles clear both lines, on both panels alike.
    assert fig.axes[0].title.get_position() == fig.axes[1].title.get_position()
    # One curve off an axis: one line, unnamed, as before.
    fig = plots.curves_plot([plots.Series("run", curves(100, early_and_late()))], "one")
    (note,) = plots.off_scale(fig)
    assert note.startswith("test error: \u25b2 epochs 1\u2013") and "\n" not in note


# --------------------------------------------------------------------------- labels and lines


def test_each_net_is_labelled_by_its_own_family(tmp_path):
    study = load_study(SMOKE)
    results = tmp_path / "results"
    for name in ("resnet8", "plain8", "wrn-10-1-dropout"):
        fake_run(results, study, name, epochs=3)
    figures = report_figures(SMOKE, results)
    (versus,) = [f for f in figures if "plain versus residual" in f.title]
    labels = [line.get_label() for line in lines(versus.plot)]
    assert any(label.startswith("WRN-10-1") for label in labels), labels
    assert not any("ResNet-10" in label for label in labels), labels
    assert any(label.startswith("ResNet-8") for label in labels)
    assert any(label.startswith("plain-8") for label in labels)


def test_a_net_s_legend_names_its_family_then_its_experiment_without_nesting_brackets():
    # "plain-20 (tseng-plain20 (not counted: paused))": the family, then the experiment and
    # why it does not count, read as brackets inside brackets.
    run = curves(10, lambda e: 20 + 10 / e)
    series = [plots.Series("p20", run, 20, plain=True, model="plain-20", counted=False,
                           why_not="paused"),
              plots.Series("r20", run.copy(), 20, model="ResNet-20")]  # fmt: skip
    fig = plots.degradation_plot(series, "versus")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["plain-20: p20 (not counted: paused)", "ResNet-20: r20"], labels
    assert not any(re.search(r"\([^)]*\(", label) for label in labels), labels


def test_identical_series_are_drawn_so_that_both_show():
    same = curves(10, lambda e: 20 + 10 / e)
    fig = plots.curves_plot([plots.Series("a", same), plots.Series("b", same.copy())], "twins")
    _, err_ax = fig.axes
    a, b = [line for line in err_ax.get_lines() if line.get_label()[:1] != "_"]
    assert a.get_linestyle() == "-" and b.get_linestyle() not in ("-", "None")
    assert "same as a" in b.get_label()


def test_every_experiment_s_own_schedule_is_drawn(tmp_path):
    # smoke.yaml's wrn-10-1-dropout extends the recipe "tiny" with its own schedule.
    (lr,) = [f for f in report_figures(SMOKE, tmp_path / "none") if "learning-rate" in f.title]
    labels = [line.get_label() for line in lines(lr.plot)]
    assert labels == ["repro developers", "wrn-10-1-dropout"], labels  # the source, the net
    tiny, wrn = (np.asarray(line.get_ydata()) for line in lines(lr.plot))
    assert not np.array_equal(tiny, wrn)


def test_identical_schedules_are_merged_with_a_note(tmp_path):
    # Park's and He et al.'s recipes train 64,000 iterations with the same steps.
    (lr,) = [f for f in report_figures(DEGRADATION, tmp_path / "none")
             if "learning-rate" in f.title]  # fmt: skip
    labels = [line.get_label() for line in lines(lr.plot)]
    assert labels == ["Wen-Jie Tseng 2018", "Yoonjeong Park = He et al. 2015"], labels
    assert "Yoonjeong Park and He et al. 2015 have the same schedule, drawn once" in lr.caption


def test_a_schedule_is_named_by_the_source_whose_recipe_it_is(tmp_path):
    # The legend read "tseng2018" and "park = he2015", the study's keys, where the figures'
    # titles and the tables say "Wen-Jie Tseng 2018": a reader cannot look a key up on the page.
    (lr,) = [f for f in report_figures(DEGRADATION, tmp_path / "none")
             if "learning-rate" in f.title]  # fmt: skip
    labels = [line.get_label() for line in lines(lr.plot)]
    assert not {"tseng2018", "park", "he2015"} & {n for label in labels
                                                  for n in label.split(" = ")}  # fmt: skip
    assert "a line named by the source whose recipe it draws" in lr.caption
    assert lr.alt.split(". ", 1)[1].startswith("Wen-Jie Tseng 2018: 0.1 from epoch 0")
    # A source with several recipes: each line says which, by the recipe's key as well.
    preact = ROOT / "studies" / "preact_wide.yaml"
    (lr,) = [f for f in report_figures(preact, tmp_path / "none") if "learning-rate" in f.title]
    labels = [line.get_label() for line in lines(lr.plot)]
    assert labels == [
        "Florian Muellerklein (recipe muellerklein)",
        "Florian Muellerklein (recipe muellerklein-bottleneck)",
        "Florian Muellerklein (recipe muellerklein-code)",
        "He et al. 2016",
        "Zagoruyko and Komodakis 2016",
    ], labels


def test_runs_that_do_not_count_are_drawn_greyed_and_labelled(tmp_path):
    path = tiny_study(tmp_path / "grey.yaml", """\
  - {name: plain, model: plain20, recipe: base}
  - {name: res, model: resnet20, recipe: base}
  - {name: done, model: resnet20, recipe: base}
claims:
  - {source: test, where: T1, experiment: done, metric: test_error, value: 8.75}
""", name="grey")  # fmt: skip
    study = load_study(path)
    results = tmp_path / "results"
    fake_run(results, study, "plain", label="smoke", epochs=2)  # an override run
    fake_run(results, study, "res", status="paused", epochs=6)  # paused by a time budget
    fake_run(results, study, "done")  # the only counted run
    figures = report_figures(path, results)
    (drawn,) = [f for f in figures if "training loss and test error" in f.title]
    found = {line.get_label(): line for line in lines(drawn.plot)}
    counted = found["done"]
    greyed = {k: v for k, v in found.items() if "not counted" in k}
    assert set(greyed) == {"plain~smoke (not counted: override)",
                           "res (not counted: paused)"}, list(found)  # fmt: skip
    assert saturation(counted.get_color()) > 0.5
    assert all(saturation(line.get_color()) < 0.35 for line in greyed.values())
    assert "not counted" in drawn.caption
    # Only uncounted runs: still drawn, not an empty section.
    (versus,) = [f for f in figures if "plain versus residual" in f.title]
    assert any("plain~smoke" in line.get_label() for line in lines(versus.plot))


def test_runs_kept_apart_or_read_by_no_verdict_are_not_drawn_as_counted(tmp_path):
    # The curves greyed a run by its classification alone: bf16 runs and one on a copy of the
    # data, which every verdict kept apart from its fp32 pool, and a run only a parameter count
    # is claimed of, were drawn in full colour as counted while the glance, the study's line
    # and the run table said "2 counted, 3 kept apart, 1 that no verdict reads".
    _, path, results = kept_apart_store(tmp_path, b_model="plain20")
    figures = report_figures(path, results)
    for title in ("training loss and test error", "plain versus residual"):
        (drawn,) = [f for f in figures if title in f.title]
        found = {line.get_label(): line for line in lines(drawn.plot) if "claimed" not in
                 line.get_label()}  # fmt: skip
        assert len(found) == 4, list(found)
        counted = [k for k in found if "kept apart" not in k and "not counted" not in k]
        assert counted in (["a"], ["ResNet-20: a"]), list(found)
        apart = {k: v for k, v in found.items() if "kept apart" in k}
        assert sorted(k.rsplit("(kept apart: ", 1)[1].rstrip(")") for k in apart) == [
            "bf16 vs fp32", "data cccccccccccc vs official release"]  # fmt: skip
        (unread,) = [k for k in found if "not counted: no verdict reads it" in k]
        assert saturation(found[counted[0]].get_color()) > 0.5
        for label in [*apart, unread]:
            assert saturation(found[label].get_color()) < 0.35, label
            assert found[label].get_markerfacecolor() == "white", label
        # Kept apart is a style of its own: dotted, unlike the counted and the other greyed.
        assert all(line.get_linestyle() == ":" for line in apart.values())
        assert found[unread].get_linestyle() == found[counted[0]].get_linestyle() == "-"
        assert "kept apart" in drawn.caption and "no verdict reads" in drawn.caption
        assert "(kept apart: bf16 vs fp32)" in drawn.alt


def test_unfinished_runs_are_drawn_against_their_planned_length(tmp_path):
    # A run paused at 3 of 6 epochs ended where its axis ended and looked complete, and its
    # epochs did not line up with the learning-rate schedule's (drawn to the planned end).
    path = tiny_study(tmp_path / "paused.yaml", """\
  - {name: plain, model: plain20, recipe: base}
  - {name: res, model: resnet20, recipe: base}
""", name="paused")  # fmt: skip
    study = load_study(path)
    results = tmp_path / "results"
    fake_run(results, study, "plain", status="paused", epochs=6)
    fake_run(results, study, "res", status="paused", epochs=6)
    figures = report_figures(path, results)
    for title in ("plain versus residual", "training loss and test error"):
        (figure,) = [f for f in figures if title in f.title]
        for ax in figure.plot.axes:
            assert ax.get_xlim()[1] >= 6, (title, ax.get_xlim())
            assert [line.get_xdata()[0] for line in ax.get_lines()
                    if list(line.get_xdata()) == [6, 6]], "a dotted line at epoch 6"  # fmt: skip
        assert "planned last epoch" in figure.caption
    # Complete runs keep the axis fitted to their epochs, with no note.
    done = tmp_path / "done"
    fake_run(done, study, "plain", epochs=4)
    fake_run(done, study, "res", epochs=4)
    for figure in report_figures(path, done)[:2]:
        assert figure.plot.axes[0].get_xlim()[1] < 5 and "planned" not in figure.caption


def test_the_report_draws_each_experiment_s_claims_against_its_curves(tmp_path):
    path = tiny_study(tmp_path / "claims.yaml", """\
  - {name: plain, model: plain20, recipe: base}
  - {name: res, model: resnet20, recipe: base}
claims:
  - {source: test, where: T1, experiment: res, metric: test_error, value: 8.5}
  - {source: test, where: F2, experiment: res, metric: test_error_at_epoch, epoch: 15, value: 11.0}
  - {source: test, where: T1, experiment: plain, metric: test_accuracy, value: 90.5}
  - {source: test, where: T1, experiment: plain, metric: final_train_loss, value: 0.3}
  - {source: test, where: T1, experiment: plain, metric: params, value: 269722}
""", name="claims", recipe=TINY_RECIPE.replace("epochs: 3", "epochs: 20"))  # fmt: skip
    study = load_study(path)
    results = tmp_path / "results"
    fake_run(results, study, "plain", epochs=20, test_error=10.0)
    fake_run(results, study, "res", epochs=20, test_error=9.0)
    fake_run(results, study, "res", epochs=20, label="smoke")  # drawn, claims not again
    figures = report_figures(path, results)
    (drawn,) = [f for f in figures if "training loss and test error" in f.title]
    loss_ax, err_ax = drawn.plot.axes
    claimed = {line.get_label(): line for line in err_ax.get_lines()
               if "claimed" in line.get_label()}  # fmt: skip
    assert set(claimed) == {
        "res: claimed test error 8.5% (repro, T1)",
        "res: claimed test error @15 11.0% (repro, F2)",
        "plain: claimed test accuracy 90.5% (error 9.5%) (repro, T1)",
    }, list(claimed)
    assert list(claimed["plain: claimed test accuracy 90.5% (error 9.5%) (repro, T1)"].get_ydata()) \
        == [9.5, 9.5]  # fmt: skip
    assert [line.get_label() for line in loss_ax.get_lines() if "claimed" in line.get_label()] \
        == ["plain: claimed train loss 0.3 (repro, T1)"]  # fmt: skip
    # The first epochs (up to 15% error) run off the axis, which the caption says.
    assert err_ax.get_ylim()[0] < 8.5 and err_ax.get_ylim()[1] < 13
    assert "fitted to the last half of training and the claimed values" in drawn.caption
    assert "Dash-dot lines are the values the sources claim" in drawn.caption
    # Without claims or early epochs off the axis, neither is said.
    bare = tmp_path / "bare"
    fake_run(bare, study, "plain", epochs=4)
    fake_run(bare, study, "res", epochs=4)
    for figure in report_figures(path, bare)[:2]:
        assert "fitted to the last half" not in figure.caption
        assert "Dash-dot" in figure.caption  # the claims are drawn all the same


def test_series_differ_by_marker_as_well_as_colour_and_runs_that_do_not_count_are_hollow():
    runs = [plots.Series(name, curves(60, lambda e, k=k: 10 + k + 30 / e))
            for k, name in enumerate(["a", "b", "c"])]  # fmt: skip
    runs.append(plots.Series("d", curves(60, lambda e: 14 + 30 / e), counted=False,
                             why_not="paused"))  # fmt: skip
    for fig in (plots.curves_plot(runs, "four"), plots.degradation_plot(runs, "four")):
        drawn = [line for line in lines(fig) if "claimed" not in line.get_label()]
        looks = {(line.get_label(), line.get_marker()) for line in drawn}
        markers = {marker for _, marker in looks}
        assert len(markers) == 4 and markers <= set(plots.MARKERS), looks
        for line in drawn:
            hollow = line.get_markerfacecolor() == "white"
            assert hollow == ("not counted" in line.get_label()), line.get_label()
            # A few markers along a long line, not one on every epoch.
            start, step = line.get_markevery()
            assert 5 <= len(line.get_xdata()[start::step]) <= 12


def test_an_experiment_looks_the_same_in_every_figure_of_its_study(tmp_path):
    study = load_study(DEGRADATION)
    results = tmp_path / "results"
    for k, name in enumerate(("tseng-plain20", "tseng-resnet20", "park-resnet20", "he-plain20")):
        fake_run(results, study, name, epochs=6, test_error=10.0 + k)
    looks: dict[str, set] = {}
    for figure in report_figures(DEGRADATION, results):
        if "learning-rate" in figure.title:
            continue
        for line in lines(figure.plot):
            if "claimed" not in line.get_label():
                net = "plain-20" if "plain20" in line.get_label() else "ResNet-20"
                looks.setdefault(net, set()).add((to_rgb(line.get_color()), line.get_marker()))
    # plain-20 and ResNet-20 each look one way in every source's figures, and not alike.
    assert len(looks["plain-20"]) == 1 and len(looks["ResNet-20"]) == 1, looks
    assert looks["plain-20"] != looks["ResNet-20"]
    (plain,), (res,) = looks["plain-20"], looks["ResNet-20"]
    assert plain[0] != res[0] and plain[1] != res[1]  # by colour, and by marker as well
    # The learning-rate schedules, which often coincide, differ by dashes as well.
    (lr,) = [f for f in report_figures(DEGRADATION, results) if "learning-rate" in f.title]
    assert len({str(line.get_linestyle()) for line in lines(lr.plot)}) == 2


def test_each_figure_says_in_its_alt_text_what_it_shows():
    published = ROOT / "tests" / "data" / "degradation-paused" / "store"  # paused runs
    figures = report_figures(DEGRADATION, published)
    (tseng,) = [f for f in figures if f.title.endswith("Tseng 2018: training loss and test error")]
    assert tseng.alt.startswith("Two line charts against epoch: training loss (log scale) and "
                                "test error (%). Where each ends: tseng-plain20 (not counted: "
                                "paused), epoch 138 of 164: training loss 0.0731, test error "
                                "13.52%;"), tseng.alt  # fmt: skip
    assert "Claimed: tseng-plain20 test error 9.66% (Table 1);" in tseng.alt
    assert "test error: epochs 1\u201381 above the axis, up to 55%." in tseng.alt
    (park,) = [f for f in figures if f.title.endswith("Park: plain versus residual")]
    # The study file's straight quotation marks made typographic, as the page prints them.
    assert ("park-resnet20 test error @90 27.9% (Figure 4 (\u201c90.pth\u201d)) after epoch 90"
            in park.alt)  # fmt: skip
    assert "training error 1.82%, test error 12.90%" in park.alt
    (lr,) = [f for f in figures if "learning-rate" in f.title]
    assert lr.alt == ("A step chart of learning rate (log scale) against epoch. Wen-Jie Tseng "
                      "2018: 0.1 from epoch 0, then 0.01 from epoch 81.02, then 0.001 from epoch "
                      "122; Yoonjeong Park = He et al. 2015: 0.1 from epoch 0, then 0.01 from "
                      "epoch 81.84, then 0.001 from epoch 122.8."), lr.alt  # fmt: skip
    assert all(len(f.alt) > 3 * len(f.title) for f in figures)
    # The page gives the text to the image.
    html = render_html(build([(load_study(DEGRADATION), str(DEGRADATION))], scan(published),
                             str(published)))  # fmt: skip
    assert html.count('alt="Two line charts against epoch') == 3


def test_an_error_axis_is_never_so_narrow_that_seed_noise_looks_like_a_trend():
    # Two seeds within a few tenths of a point over the last half, no claim: the axis still
    # spans MIN_ERROR_SPAN points, about the same middle.
    run = plots.Series("run", curves(100, lambda e: 12.5 + (e % 5) / 10 + 60 / e, seeds=2))
    lo, hi = plots.curves_plot([run], "narrow").axes[1].get_ylim()
    assert hi - lo == pytest.approx(plots.MIN_ERROR_SPAN) and lo < 12.5 and hi > 13.7, (lo, hi)
    # Near 0 the range is pushed up, not cut below 0.
    low = plots.Series("low", curves(100, lambda e: 0.3 + (e % 3) / 10 + 30 / e**2))
    lo, hi = plots.curves_plot([low], "near zero").axes[1].get_ylim()
    assert (lo, hi) == (0, plots.MIN_ERROR_SPAN), (lo, hi)


# --------------------------------------------------------------------------- on a phone


def test_a_phone_gets_its_figures_stacked_in_type_that_stays_readable():
    # The desk's figures, 10 inches wide, shrank to 38% on a phone: their 7 pt legend to under
    # 4 CSS pixels. A phone's figure is about as wide as its screen, panels stacked, its type
    # 8 pt, and nothing in it (legend entries, notes over the panels) makes it wider.
    claims = (plots.Claimed("test_error", 9.5, "test error 9.5% (Table 1 of a long source name)"),
              plots.Claimed("test_error", 90.0, "test error 90% (Table 1)", epoch=60))  # fmt: skip
    plain = plots.Series("tseng-plain110", curves(100, early_and_late()), 110, True,
                         model="plain-110 (bottleneck)", counted=False,
                         why_not="paused", planned_epochs=164, claims=claims)  # fmt: skip
    res = plots.Series("tseng-resnet110", curves(100, lambda e: early_and_late()(e) - 1), 110,
                       model="ResNet-110 (bottleneck)", counted_at=(90,), counted=False,
                       why_not="paused", planned_epochs=164)  # fmt: skip
    schedules = {"Wen-Jie Tseng 2018 = Yoonjeong Park = He et al. 2015": [(0, 0.1), (80, 0.01)]}
    for desk, phone in (
        (plots.curves_plot([plain, res], "t"), plots.curves_plot([plain, res], "t", plots.PHONE)),
        (plots.degradation_plot([plain, res], "t"),
         plots.degradation_plot([plain, res], "t", plots.PHONE)),
        (plots.lr_plot(schedules, "lr"), plots.lr_plot(schedules, "lr", plots.PHONE)),
    ):  # fmt: skip
        assert desk.get_figwidth() == 10 and phone.get_figwidth() == plots.PHONE.width
        # The same ranges and notes, so the words about a figure hold for both.
        assert [ax.get_ylim() for ax in desk.axes] == [ax.get_ylim() for ax in phone.axes]
        notes = [[re.search("[\u25b2\u25bc].*", n)[0] for n in plots.off_scale(f)]
                 for f in (desk, phone)]  # fmt: skip
        assert notes[0] == notes[1], notes  # (a phone's panel titles hold the key as well)
        phone.canvas.draw()
        boxes = [ax.get_position() for ax in phone.axes]
        assert all(a.y0 > b.y1 for a, b in itertools.pairwise(boxes)), boxes  # stacked
        (legend,) = phone.legends
        assert legend.get_gid() == plots.LEGEND
        texts = legend.get_texts() + [t for ax in phone.axes for t in ax.texts]
        assert min(t.get_fontsize() for t in texts) >= 8
        assert all(label.get_fontsize() >= 8 for ax in phone.axes
                   for label in ax.get_xticklabels() + ax.get_yticklabels())  # fmt: skip
        # The page shows the drawing at its width: it is no wider than the figure (and the
        # tenth of an inch a side that savefig's tight box leaves).
        svg = plots.to_data_uri(phone).split(",")[1]
        width = float(re.search(r'width="([\d.]+)pt"', base64.b64decode(svg).decode()).group(1))
        assert width <= (plots.PHONE.width + 0.2) * 72 + 1, width
        # And its panels keep their height, however many lines the legend and notes take.
        for ax in phone.axes:
            assert ax.get_position().height * phone.get_figheight() > 0.8 * plots.PHONE_PANEL


# --------------------------------------------------------------------------- saving


def _crowded(layout=plots.DESK):
    """Each kind of figure with all that stands around its panels at its fullest: a long title,
    notes of several lines over both panels, claims off the axes, ten experiments with long
    legend entries (paused, counted only at an epoch, kept apart)."""
    claims = (plots.Claimed("test_error", 9.5, "test error 9.5% (Table 1 of a long source name)"),
              plots.Claimed("test_error", 90.0, "test error 90% (Table 1)", epoch=60),
              plots.Claimed("test_error", 0.5, "best test error 0.5% (Table 2)"))  # fmt: skip
    series = [plots.Series(f"somebody-{'plain' if k % 2 else 'resnet'}{20 + 18 * k}",
                           curves(100, lambda e, k=k: early_and_late()(e) + k / 3), 20 + 18 * k,
                           bool(k % 2), model=f"ResNet-{20 + 18 * k} (bottleneck, option B)",
                           counted=k < 4, why_not="paused", planned_epochs=164,
                           counted_at=(90,) if k == 5 else (),
                           kept_apart="bf16 vs fp32" if k == 6 else "",
                           claims=claims if k < 2 else ())
              for k in range(10)]  # fmt: skip
    title = "a study with a long name, experiments following Somebody With A Long Name et al. " * 2
    schedules = {f"Source {k} with a long recipe name = Source {k + 1} = He et al. 2015":
                 [(0, 0.1 / (k + 1)), (80, 0.01), (120, 0.001)] for k in range(4)}  # fmt: skip
    return [plots.curves_plot(series, title, layout), plots.degradation_plot(series, title, layout),
            plots.lr_plot(schedules, "learning rate", layout)]  # fmt: skip


@pytest.mark.parametrize("layout", [plots.DESK, plots.PHONE], ids=["desk", "phone"])
def test_a_figure_is_drawn_once_as_it_is_saved_and_nothing_in_it_is_cut_off(layout, monkeypatch):
    """Saved with a layout engine or a tight box, matplotlib drew each figure twice (a draw to
    lay it out or measure it, then the draw that writes the SVG): more than half of an HTML
    report's time. Drawn once, the figure is its own size, so everything in it must lie
    inside it: titles, the notes over the panels, axis labels, the legend below, however
    many lines each takes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    draws = []
    real_draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda fig, renderer: draws.append(fig)
                        or real_draw(fig, renderer))  # fmt: skip
    for fig in _crowded(layout):
        draws.clear()
        svg = base64.b64decode(plots.to_data_uri(fig).split(",")[1]).decode()
        assert draws == [fig], f"drawn {len(draws)} times"
        # The SVG is the figure, not a box cut around what was drawn.
        width, height = (
            float(re.search(rf'{a}="([\d.]+)pt"', svg)[1]) for a in ("width", "height")
        )
        assert (width, height) == pytest.approx(tuple(72 * fig.get_size_inches()), abs=0.01)
        renderer = FigureCanvasAgg(fig).get_renderer()
        inside = fig.bbox.padded(-1)  # a pixel in from each edge, for rounding
        for artist in [*fig.legends, *fig.texts, *fig.axes]:
            box = artist.get_tightbbox(renderer)
            assert inside.x0 <= box.x0 and box.x1 <= inside.x1, (artist, box, fig.bbox)
            assert inside.y0 <= box.y0 and box.y1 <= inside.y1, (artist, box, fig.bbox)
        # The notes over a panel, the legend below and the title cover no panel.
        for text in [*fig.legends, *fig.texts, *(t for ax in fig.axes for t in ax.texts)]:
            box = text.get_window_extent(renderer)
            for ax in fig.axes:
                assert not _overlap(box, ax.bbox), (text, box, ax.bbox)
        # And its panels keep their height, however many lines the legend and notes take.
        panel = plots.LR_PANEL if len(fig.axes) == 1 and not layout.stacked else plots.PANEL
        for ax in fig.axes:
            assert ax.get_position().height * fig.get_figheight() > 0.9 * panel


def test_printed_figure_type_is_7_pt_or_more():
    """Printed, the page shrinks a desk's figure (10 inches, 960 CSS pixels) to a sheet's
    printable width: 700 CSS pixels or so (A4 or Letter, less the browser's margins). Its
    7 pt legend and notes printed at 5 pt; every text of the figure prints at 7 pt or more."""
    for fig in _crowded():
        svg = base64.b64decode(plots.to_data_uri(fig).split(",")[1]).decode()
        width = float(re.search(r'width="([\d.]+)pt"', svg)[1]) * 96 / 72  # CSS pixels
        # matplotlib draws each text as glyph paths 100 units to the em, scaled to its size
        sizes = [100 * float(s) for s in re.findall(r"scale\(([\d.]+) -[\d.]+\)", svg)]
        assert sizes and min(sizes) * min(1, 700 / width) >= 7, (min(sizes), width)


def _overlap(a, b) -> bool:
    """Whether two boxes share more than a pixel's edge."""
    return a.x0 < b.x1 - 1 and b.x0 < a.x1 - 1 and a.y0 < b.y1 - 1 and b.y0 < a.y1 - 1

"""What `repro report` and `repro status` read and draw on a store the size a lab has: each
run's files once, one reading of the store, figures only for the page, each net built once
to count its parameters, each study file read once for the queue's standing
(benchmarks/report-scale-2026-11-27.md). Counts, not seconds, so that a loaded machine
cannot fail them."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
from conftest import TINY_RECIPE, tiny_study
from fake_runs import fake_run
from test_queue import _queue
from test_run import repro

import harness.queue
import harness.report.page
import harness.results
from harness import describe, plots, store, verdicts
from harness.queue import load_queue, standing, summary
from harness.results import scan
from harness.studyfile import load_study
from harness.zoo import spec_from_name


def _counting(monkeypatch, module, name: str, key=lambda args: "calls") -> Counter:
    """Calls of ``module.name`` from here on, by ``key`` of their arguments."""
    calls: Counter = Counter()
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls[key(args)] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.fixture
def runs(tmp_path):
    """A study of two experiments, with a complete, a paused and a longer complete run."""
    path = tiny_study(tmp_path / "s.yaml",
                      "  - {name: a, model: resnet8, recipe: base}\n"
                      "  - {name: b, model: plain8, recipe: base}\n", recipe=TINY_RECIPE)  # fmt: skip
    study = load_study(path)
    results = tmp_path / "results"
    fake_run(results, study, "a", 0, epochs=3)
    fake_run(results, study, "a", 1, epochs=3, status="paused")
    fake_run(results, study, "b", 0, epochs=8, iterations_per_epoch=391)
    return path, results


def test_a_scan_parses_each_runs_curves_once(runs, monkeypatch):
    _, results = runs
    reads = _counting(monkeypatch, store, "read_jsonl", key=lambda args: str(args[0]))
    records = scan(results)
    assert [(r.experiment, r.seed, r.status, len(r.history)) for r in records] == [
        ("a", 0, "complete", 3), ("a", 1, "paused", 1), ("b", 0, "complete", 8)]  # fmt: skip
    assert records[2].history[-1]["iteration"] == 8 * 391
    assert records[0].summary == store.read_summary(records[0].path)
    reads.clear()
    scan(results)
    assert sorted(reads.values()) == [1, 1, 1], reads


def test_report_reads_the_store_once_and_draws_figures_only_for_the_page(
    runs, tmp_path, monkeypatch
):
    path, results = runs
    read = _counting(monkeypatch, harness.results, "_read")
    drawn = _counting(monkeypatch, harness.report.page, "_figures")
    for out, figures in (("claims.csv", 0), ("claims.json", 0), ("report.html", 1)):
        read.clear()
        drawn.clear()
        done = repro("report", "--study", str(path), "--results", str(results),
                     "--out", str(tmp_path / out))  # fmt: skip
        assert done.exit_code == 0, done.output
        assert "3 runs" in done.output
        assert read["calls"] == 3, f"{out}: the store was read {read['calls'] / 3:g} times"
        assert drawn["calls"] == figures, out


def test_status_reads_each_run_once(runs, tmp_path, monkeypatch):
    path, results = runs
    monkeypatch.chdir(tmp_path)  # no queue.yaml here: the store's runs alone
    reads = _counting(monkeypatch, store, "read_jsonl", key=lambda args: str(args[0]))
    done = repro("status", str(path), "--results", str(results), "--no-check-data")
    assert done.exit_code == 0, done.output
    assert "3 runs: 2 complete, 1 paused" in done.output
    assert sorted(reads.values()) == [1, 1, 1], reads


def test_a_net_is_not_built_to_count_its_parameters_or_macs(monkeypatch):
    """Counting once built the net on the meta device (once for both conventions): seconds
    for WRN-1000-10, never ending for a million layers. Now worked out from the spec."""
    from harness.flops import forward_macs
    from harness.resnet import CifarResNet

    built = _counting(monkeypatch, CifarResNet, "__init__")
    spec = spec_from_name("wrn-1000-10")
    counts = {c: describe.parameter_count(spec, c) for c in verdicts.COUNT_CONVENTIONS}
    assert counts["all"] == 1_604_846_554 and counts["without_batchnorm"] < counts["all"]
    assert forward_macs(spec) > 0
    assert built["calls"] == 0


def test_a_series_aggregates_each_curve_once():
    curves = pd.DataFrame({"seed": [0, 0, 1, 1], "epoch": [1, 2, 1, 2],
                           "test_error": [50.0, 40.0, 52.0, None]})  # fmt: skip
    series = plots.Series("a", curves)
    stats = plots._stats(series, "test_error")
    assert stats["mean"].tolist() == [51.0, 40.0] and stats["count"].tolist() == [2, 1]
    assert plots._stats(series, "test_error") is stats


def test_the_queue_reads_each_study_file_once(tmp_path, monkeypatch):
    path = _queue(tmp_path)  # two items of one study file
    loads = _counting(monkeypatch, harness.queue, "load_study")
    queue = load_queue(path)
    assert loads["calls"] == 1
    loads.clear()
    # what load_queue read serves the standing and the summary: `repro status` and `repro
    # validate` read each study once, not once more for each (0.2 s a call on queue.yaml)
    assert [s.runs for s in standing(queue, tmp_path / "results")] == [1, 4]
    assert "valid evidence queue of 2 items" in summary(queue)
    assert loads["calls"] == 0


def test_export_reads_only_its_studys_runs(runs, tmp_path, monkeypatch):
    path, results = runs
    other = tiny_study(tmp_path / "o.yaml", "  - {name: c, model: resnet8, recipe: base}\n",
                       name="other")  # fmt: skip
    fake_run(results, load_study(other), "c", 0)
    read = _counting(monkeypatch, harness.results, "_read", key=lambda args: args[0])
    out = tmp_path / "tiny.tar.gz"
    done = repro("export", str(path), "--results", str(results), "--out", str(out))
    assert done.exit_code == 0, done.output
    assert "3 runs (1 unfinished)" in done.output
    assert read == {"tiny": 3}

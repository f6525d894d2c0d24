"""`repro report`: verdicts for every case, the page's tables, self-containedness, exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from cifar_fixture import write_cifar
from click.testing import CliRunner
from conftest import ROOT, TINY_RECIPE, tiny_study
from fake_runs import fake_evaluation, fake_run, kept_apart_store

from harness import verdicts as V
from harness.cli import main
from harness.report import build, claims_frame, render_html, report_for
from harness.report.filters import _words
from harness.results import scan, scan_evaluations
from harness.schema import Claim
from harness.store import read_jsonl, write_jsonl
from harness.studyfile import load_study

EXPERIMENTS = """\
  - {name: same, model: resnet20, recipe: base}
  - {name: worse, model: resnet20, recipe: base}
  - {name: better, model: resnet20, recipe: base}
  - {name: edge, model: resnet20, recipe: base}
  - {name: partial, model: resnet110, recipe: base, seeds: 5}
  - {name: five, model: resnet56, recipe: base, seeds: 5}
  - {name: twin, model: resnet56, recipe: base, seeds: 5}
  - {name: boom, model: plain20, recipe: base}
  - {name: never, model: plain20, recipe: base}
  - {name: stale, model: resnet32, recipe: base}
  - {name: acc, model: resnet68b, recipe: base}
claims:
  - {source: paper, where: T1, experiment: same, metric: test_error, value: 8.75}
  - {source: paper, where: T1, experiment: worse, metric: test_error, value: 8.75}
  - {source: paper, where: T1, experiment: better, metric: test_error, value: 8.75}
  - {source: paper, where: T1, experiment: edge, metric: test_error, value: 8.75}
  - {source: paper, where: T1, experiment: partial, metric: test_error, value: 6.43, rule: best of 5}
  - {source: paper, where: T1, experiment: five, metric: test_error, value: 6.61, std: 0.16, rule: mean of 5}
  - {source: paper, where: T1, experiment: five, metric: test_error, value: 6.43, rule: best of 5}
  - {source: paper, where: T1, experiment: boom, metric: test_error, value: 9.66}
  - {source: paper, where: T1, experiment: never, metric: test_error, value: 9.66}
  - {source: paper, where: T1, experiment: stale, metric: test_error, value: 7.51}
  - {source: paper, where: T1, experiment: acc, metric: test_accuracy, value: 90.14}
  - {source: paper, where: T2, experiment: same, metric: params, value: 269722}
  - {source: paper, where: T2, experiment: partial, metric: params, value: 1.7M}
  - {source: paper, where: T2, experiment: never, metric: params, value: 270000}
  - {source: paper, where: T3, experiment: same, metric: sec_per_epoch, value: 90, hardware: NVIDIA GTX 980}
  - {kind: ordering, source: paper, where: F1, statement: worse is worse, metric: test_error, experiments: [same, worse], direction: increasing}
  - {kind: ordering, source: paper, where: F1, statement: better is worse, metric: test_error, experiments: [same, better], direction: increasing}
  - {kind: ordering, source: paper, where: F1, statement: twins differ, metric: test_error, experiments: [five, twin], direction: decreasing}
  - {kind: ordering, source: paper, where: F1, statement: the diverged net is worst, metric: test_error, experiments: [same, boom], direction: increasing}
  - {kind: ordering, source: paper, where: F1, statement: not run yet, metric: test_error, experiments: [same, never], direction: increasing}
"""

DEGRADATION = ROOT / "studies" / "degradation.yaml"

EXPECTED = {
    ("value", "same"): V.REPRODUCED,
    ("value", "worse"): V.NOT_REPRODUCED,
    ("value", "better"): V.BETTER,
    ("value", "edge"): V.INCONCLUSIVE,
    ("value", "partial"): V.INCONCLUSIVE,
    ("value", "boom"): V.NOT_REPRODUCED,
    ("value", "never"): V.UNDER_WAY,  # its run was killed (interrupted): it may yet count
    ("value", "stale"): V.NOT_RUN,  # a stale run and an override run: neither can count
    ("value", "acc"): V.REPRODUCED,
    ("params", "same"): V.REPRODUCED,
    ("params", "partial"): V.REPRODUCED,
    ("params", "never"): V.NOT_REPRODUCED,
    ("speed", "same"): V.NOT_COMPARABLE,
    ("ordering", "same, worse"): V.REPRODUCED,
    ("ordering", "same, better"): V.NOT_REPRODUCED,
    ("ordering", "five, twin"): V.INCONCLUSIVE,
    ("ordering", "same, boom"): V.REPRODUCED,
    ("ordering", "same, never"): V.UNDER_WAY,
}


@pytest.fixture
def verdict_store(tmp_path):
    """A study with hand-made runs: one experiment per verdict case."""
    path = tiny_study(tmp_path / "verdicts.yaml", EXPERIMENTS, name="verdicts").resolve()
    text = path.read_text().replace(
        "sources: {test: {title: tests, authors: repro}}",
        "sources: {paper: {title: A Paper, authors: 'A. One, B. Two, C. Three', year: 2016}}",
    )
    path.write_text(text)
    study = load_study(path)
    results = tmp_path / "results"
    fake_run(results, study, "same", test_error=8.6)
    fake_run(results, study, "worse", test_error=12.0, train_loss=0.9)
    fake_run(results, study, "better", test_error=7.0)
    fake_run(results, study, "edge", test_error=9.4)  # 0.65 off: beyond 0.5, within 0.5 + 0.4
    for seed, err in enumerate([6.5, 6.9, 7.2]):
        fake_run(results, study, "partial", seed, test_error=err)
    five = [6.50, 6.62, 6.70, 6.58, 6.65]
    for seed, err in enumerate(five):
        fake_run(
            results,
            study,
            "five",
            seed,
            test_error=err,
            sec_per_epoch=3.0,
            telemetry={"gpu_seconds": 3.0},
        )
        fake_run(results, study, "twin", seed, test_error=err + (0.02 if seed % 2 else -0.03))
    fake_run(results, study, "boom", status="diverged")
    fake_run(results, study, "stale", stale=True, test_error=7.5)
    # Made offline on a copy of the data: the banner says so (it never counts anyway).
    fake_run(results, study, "stale", label="smoke", test_error=7.5, official=False)
    fake_run(results, study, "acc", test_error=9.5, compile_fallback="RuntimeError: no compiler")
    fake_run(results, study, "never", seed=0, status="running")
    return study, path, results


def claim_rows(report):
    (s,) = report.studies
    return {(c.kind, c.experiment): c for c in s.all_claims}


def test_every_verdict_case(verdict_store):
    study, path, results = verdict_store
    report = build([(study, str(path))], scan(results), str(results))
    rows = claim_rows(report)
    got = {key: rows[key].verdict for key in EXPECTED}
    assert got == EXPECTED
    five_mean = next(c for c in report.studies[0].values
                     if c.experiment == "five" and c.rule == "mean of 5")  # fmt: skip
    assert five_mean.reproduced_value == pytest.approx(6.61)
    assert five_mean.n == 5 and five_mean.minimum == 6.50 and five_mean.maximum == 6.70
    # 2 standard errors of the difference of two means of five: the source's and ours (our
    # std 0.0755 pooled with the assumed 0.2 as one more degree of freedom)
    ours = ((0.2**2 + 4 * 0.0755**2) / 5) ** 0.5
    assert five_mean.tolerance == pytest.approx(2 * (0.16**2 + ours**2) ** 0.5 / 5**0.5,
                                                rel=0.01)  # fmt: skip
    assert rows[("value", "partial")].reason.endswith("3 counted so far")
    assert rows[("value", "acc")].reproduced_value == pytest.approx(90.5)
    assert "1 run not counted: stale" in " ".join(rows[("value", "stale")].notes)
    assert "override run (smoke)" in " ".join(rows[("value", "stale")].notes)
    boom = rows[("value", "boom")]  # a diverged run counts, as chance error
    assert boom.n == 1 and boom.reproduced_value == 90.0
    assert "1 of the 1 run used diverged" in " ".join(boom.notes)
    assert rows[("value", "never")].reason == "1 run under way, none counted yet"
    assert rows[("ordering", "same, never")].reason == ("runs under way, none counted yet, for "
                                                        "never")  # fmt: skip
    counts = report.studies[0].counts
    # the table above plus the two claims on "five" (mean of 5, best of 5), both reproduced
    assert counts[V.REPRODUCED] == 8 and counts[V.NOT_REPRODUCED] == 4


class _Rows(HTMLParser):
    """Text of every table row that has an id, and every src/href in the page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self._row: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        for key in ("src", "href", "action", "poster", "data"):
            if key in attrs:
                self.refs.append((tag, key, attrs[key]))
        if tag == "tr" and "id" in attrs:
            self._row = attrs["id"]
            self.rows[self._row] = ""

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._row:
            self.rows[self._row] += " " + data.strip()


def test_the_page_shows_the_tables_and_nothing_external(verdict_store, tmp_path):
    study, path, results = verdict_store
    report = build([(study, str(path))], scan(results), str(results))
    html = render_html(report)
    parser = _Rows()
    parser.feed(html)
    rows = claim_rows(report)
    same = parser.rows[rows[("value", "same")].anchor]
    assert "8.75% (single run)" in same and "8.60% (single run)" in same
    assert "reproduced" in same and "One et al. 2016, T1" in same
    five = [c for c in report.studies[0].values if c.experiment == "five"]
    assert "6.61 ± 0.16% (mean of 5)" in parser.rows[five[0].anchor]
    assert "6.61% ± 0.08 (mean of 5)" in parser.rows[five[0].anchor]
    assert "± 0.17" in parser.rows[five[0].anchor]  # 2 SE, and the range it gives:
    assert "6.44 – 6.78%" in parser.rows[five[0].anchor]
    assert "269,722" in parser.rows[rows[("params", "same")].anchor]
    assert "does not round" not in parser.rows[rows[("params", "never")].anchor]
    assert "off by -278" in parser.rows[rows[("params", "never")].anchor]
    assert "not comparable" in html and "claimed on NVIDIA GTX 980" in html
    assert "within seed noise" in parser.rows[rows[("ordering", "five, twin")].anchor]
    text = _text(html)
    for rule in V.RULES:
        assert _text(_code(rule)) in text
    assert "Non-official data" in html
    assert "fp32 eager (compilation failed)" in html  # the "acc" run fell back
    # He-style plain-versus-residual figure, loss and error curves, learning-rate schedule
    assert html.count("<img") == 3 and "plain versus residual" in html
    # Nothing outside the page: every reference is a data URI or an anchor on the page.
    assert parser.refs, "figures are expected"
    for tag, key, value in parser.refs:
        assert value.startswith(("data:", "#")), (tag, key, value[:80])
    assert "link" not in parser.tags and "script" not in parser.tags
    assert not re.search(r"url\(|@import", html)


def test_partial_and_empty_stores(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()  # a missing directory is an error (tests/test_cli.py); an empty one is not
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--results",
            str(empty),
            "--out",
            str(tmp_path / "r.html"),
            "--study",
            str(ROOT / "studies" / "degradation.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r.html").read_text()
    assert "Nothing has run yet" in html and "Non-official data" not in html
    # One line for the study, with what needs no training: its parameter counts.
    assert "degradation: nothing run yet (accuracy 0/12 tested; orderings 0/13 tested; " \
        "parameter counts 4/4 match)" in _text(html)  # fmt: skip
    full = tmp_path / "full.html"
    result = CliRunner().invoke(main, ["report", "--results", str(empty), "--out", str(full),
                                       "--study", str(DEGRADATION), "--show-unrun"])  # fmt: skip
    html = full.read_text()
    assert "not yet run" in html and ">reproduced<" in html  # params need no runs


def _text(html: str) -> str:
    """The page's words, tags dropped and spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _code(text: str) -> str:
    """Text with Markdown code spans as the page shows them: each in <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", text)


def test_accuracy_orderings_and_architecture_checks_have_their_own_headlines(tmp_path):
    # Nothing trained: four matching parameter counts are not "4 reproduced" in green.
    empty = tmp_path / "empty"
    empty.mkdir()
    studies = [ROOT / "studies" / "degradation.yaml", CHECKPOINTS]
    report = report_for(studies, empty)
    degradation, checkpoints = ([h.text for h in s.headlines] for s in report.studies)
    assert degradation == ["accuracy 0/12 tested", "orderings 0/13 tested",
                           "parameter counts 4/4 match"]  # fmt: skip
    assert checkpoints == ["released weights 0/4 evaluated", "parameter counts 4/4 match"]
    assert [h.text for h in report.headlines] == [
        "accuracy 0/12 tested", "orderings 0/13 tested", "released weights 0/4 evaluated",
        "parameter counts 8/8 match"]  # fmt: skip
    text = _text(render_html(report))
    assert "accuracy 0/12 tested" in text and "parameter counts 8/8 match" in text
    assert not re.search(r"(?<![\d,])[48] reproduced", text)


def test_a_headline_breaks_down_what_was_tested(verdict_store):
    study, path, results = verdict_store
    report = build([(study, str(path))], scan(results), str(results))
    (s,) = report.studies
    heads = {h.kind: h.text for h in s.headlines}
    # What was not tested comes apart, after what was ("tested: ..., 1 under way" listed it
    # among the tested), on the page as in the text.
    assert heads["accuracy"] == ("accuracy 9/11 tested: 4 reproduced, 1 better than claimed, "
                                 "2 not reproduced, 2 inconclusive; 1 under way")  # fmt: skip
    assert heads["orderings"] == ("orderings 4/5 tested: 2 reproduced, 1 not reproduced, "
                                  "1 inconclusive; 1 under way")  # fmt: skip
    assert heads["parameter counts"] == "parameter counts 2/3 match: 1 small difference"
    assert heads["speed"] == "speed 0/1 tested; 1 not comparable"
    text = " ".join(unescape(re.sub(r"<[^>]+>", "", render_html(report))).split())
    assert all(h.text in text for h in s.headlines), text


def test_csv_and_json_give_the_same_claim_table(verdict_store, tmp_path):
    _, path, results = verdict_store
    runner = CliRunner()
    for fmt in ("csv", "json"):
        out = tmp_path / f"claims.{fmt}"
        r = runner.invoke(
            main, ["report", "--results", str(results), "--study", str(path), "--out", str(out)]
        )
        assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "claims.csv")
    assert len(table) == 20
    assert set(table.verdict) == set(EXPECTED.values())
    records = json.loads((tmp_path / "claims.json").read_text())
    assert [r["verdict"] for r in records] == list(table.verdict)
    # The nightly check reads both forms: the same results never regress against themselves.
    same = runner.invoke(main, ["compare", str(tmp_path / "claims.json"),
                                str(tmp_path / "claims.csv")])  # fmt: skip
    assert same.exit_code == 0 and "0 no longer hold" in same.output, same.output


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    """The real smoke study, trained on CPU on a 2,500-image look-alike of CIFAR-10."""
    root = write_cifar(tmp_path_factory.mktemp("cifar-smoke"), per_batch=500, test=1000)
    results = tmp_path_factory.mktemp("smoke-results")
    result = CliRunner().invoke(main, [
        "run", str(ROOT / "studies" / "smoke.yaml"), "--data-dir", str(root),
        "--results", str(results), "--device", "cpu", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    return results


def test_report_over_real_smoke_runs(smoke_store, tmp_path):
    out = tmp_path / "report.html"
    study = ROOT / "studies" / "smoke.yaml"
    result = CliRunner().invoke(
        main, ["report", "--results", str(smoke_store), "--study", str(study), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    parser = _Rows()
    parser.feed(html)
    assert "3 run directories found" in html
    assert "the recipe trains on a subset (smoke study)" in html  # shown, never counted
    assert "smoke/resnet8/seed-0" in html and str(smoke_store) in html
    assert "on 1,000 test images, trained on 2,000" in html  # beside each run's test error
    assert "0 counted runs" in html
    assert html.count("data:image/svg+xml;base64,") >= 3


def _browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browse(page, width: int, screenshot=None, *, full_page: bool = False,
            printed: bool = False) -> dict:  # fmt: skip
    """What headless Chromium sees of ``page`` at ``width`` pixels (tests/browser_check.py),
    ``printed``: laid out for a printer."""
    browser = _browser()
    if browser is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it as root)")
    pytest.importorskip("playwright", reason="the test extras install playwright")
    script = ROOT / "tests" / "browser_check.py"
    command = [sys.executable, str(script), browser, str(page)]
    command += [str(screenshot)] if screenshot else []
    command += ["--width", str(width)] + (["--full-page"] if full_page else [])
    command += ["--print"] if printed else []
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout)
    assert seen["console_errors"] == [] and seen["page_errors"] == []
    assert seen["external_requests"] == []
    assert seen["images_loaded"] == seen["images"] and seen["broken_images"] == 0
    assert "repro: paper versus reproduction" in seen["title"]
    return seen


def test_the_page_loads_in_headless_chromium_without_console_errors(verdict_store, tmp_path):
    study, path, results = verdict_store
    out = tmp_path / "report.html"
    out.write_text(render_html(build([(study, str(path))], scan(results), str(results))))
    seen = _browse(out, 1400)
    assert seen["images"] == 3
    assert seen["long_cells"] == [] and seen["overflowing"] == []
    assert seen["scrolling_tables"] == []  # at a desk, every table fits the page


@pytest.mark.parametrize("width", [1400, 390])
def test_the_page_reads_at_a_desk_and_on_a_phone(published_page, tmp_path, width):
    """The real runs and evaluations, at a desk's width and a phone's. The screenshots stay
    with the test's files (the path is printed: pytest -s shows it)."""
    out = tmp_path / "report.html"
    out.write_text(published_page)
    top, whole = tmp_path / f"top-{width}px.png", tmp_path / f"page-{width}px.png"
    seen = _browse(out, width, top)
    _browse(out, width, whole, full_page=True)
    print(f"screenshots: {top} {whole}")
    assert top.stat().st_size > 10_000 and whole.stat().st_size > top.stat().st_size
    # Nothing sticks out of the window, and no table scrolls sideways in its own box either.
    assert seen["page_width"] <= width and seen["overflowing"] == []
    assert seen["scrolling_tables"] == [], seen["scrolling_tables"]
    # No text in a table wraps over four lines: on a phone, side by side, the experiments'
    # and evaluations' columns were a word or two wide (a URL over 18 lines).
    assert seen["long_cells"] == [], seen["long_cells"]
    # A table stacked as cards labels each cell with its column's name (unless the cell is the
    # row's name or a verdict): "1" or "yes" alone under a name says nothing.
    assert seen["unlabelled_cells"] == [], seen["unlabelled_cells"]
    board, panel = seen["boxes"]["scoreboard"], seen["boxes"]["orderings"]
    if width >= 1000:
        assert seen["stacked_tables"] == [], "at a desk every table keeps its column headers"
        assert board["top"] < 1000, "the scoreboard is on the first screen"
        assert panel["left"] >= board["right"] and abs(panel["top"] - board["top"]) < 60
    else:
        assert panel["top"] >= board["bottom"], "on a phone the orderings come below"
        # and the scoreboard's cells stack, each under its source's name: side by side, the
        # phone showed one source's column, ResNet-32's row looking empty, with no sign that
        # the table scrolled to its released weights
        assert board["right"] <= width
        # The tables of claims stack as cards, each verdict on screen: side by side, the
        # verdict was the last of up to ten columns, off the screen behind a sideways scroll.
        # So do the run table (its device, data and time a run ended were off the screen),
        # the experiments, checkpoints and evaluations, and the provenance's tables (data,
        # what the copy costs, software, devices, harness versions), all of which scrolled.
        assert seen["verdict_cells"] >= 30
    assert seen["verdicts_off_screen"] == []
    # Every figure's type, as drawn in the window, is at least the 9.3 CSS pixels (7 pt) of a
    # desk's legend: the desk's figures, shrunk to a phone's width, drew it under 4 pixels.
    # A phone gets the figures drawn for it (panels stacked), as wide as the page.
    figures = seen["figures"]
    assert len(figures) == 7, figures
    assert all(f["text"] >= 9 for f in figures), figures  # the smallest text of each
    assert all(f["legend"] is not None and f["legend"] >= 9 for f in figures), figures
    assert all(f["phone"] == (width < 1000) for f in figures), figures
    assert all(f["width"] <= width for f in figures), figures


def test_the_page_prints_every_column(published_page, tmp_path):
    """Printed (an A4 or Letter sheet's printable width is about 700 to 740 CSS pixels), a
    table wider than the page was cut off at its box's edge, which scrolls on a screen but not
    on paper: the claims' verdicts, the released checkpoints' and the copy's commands were
    lost. On paper every table fits the sheet, side by side, and nothing sticks out."""
    out = tmp_path / "report.html"
    out.write_text(published_page)
    seen = _browse(out, 700, printed=True)
    assert seen["scrolling_tables"] == [], seen["scrolling_tables"]
    assert seen["page_width"] <= 700 and seen["overflowing"] == [], seen["overflowing"]
    assert seen["verdicts_off_screen"] == [] and seen["verdict_cells"] >= 30
    assert seen["stacked_tables"] == [], "on paper the tables keep their column headers"
    # Nothing unfolds on paper: the rules in full, the experiments, runs, checkpoints and
    # evaluations, and the notes in a verdict's cell are printed open.
    assert seen["folded"] == 0


def test_studies_with_no_runs_keep_the_page_short(catalogue_report, catalogue_unrun_page,
                                                 tmp_path):  # fmt: skip
    folded, full = tmp_path / "folded.html", tmp_path / "full.html"
    folded.write_text(render_html(catalogue_report))
    full.write_text(catalogue_unrun_page)
    short, tall = (_browse(page, 1400)["page_height"] for page in (folded, full))
    assert short < 0.6 * tall, (short, tall)


def test_the_models_waiting_for_a_run_read_on_a_phone(catalogue_report, tmp_path):
    """The folded catalogue's table of models with nothing run, at 390 pixels: side by side,
    its names broke over four lines ("ResNet-56 (option B)") and a model's list of claims over
    eleven; it stacks as cards, a model each, as the other tables do."""
    page = tmp_path / "folded.html"
    page.write_text(render_html(catalogue_report))
    seen = _browse(page, 390)
    assert seen["page_width"] <= 390 and seen["overflowing"] == []
    assert seen["scrolling_tables"] == [], seen["scrolling_tables"]
    stacked = seen["stacked_tables"]
    assert any(t.startswith("Models whose claims wait") for t in stacked), stacked
    assert seen["unlabelled_cells"] == [], seen["unlabelled_cells"]
    # A list of five claims stacked, a line or so each, is the longest text left.
    assert all(lines <= 5 for lines, _ in seen["long_cells"]), seen["long_cells"]


SPEED_STUDY = """\
  - {name: moved, model: resnet20, recipe: base}
  - {name: shared, model: resnet20, recipe: base, seeds: 2}
  - {name: solo, model: resnet20, recipe: base, seeds: 2}
claims:
  - {source: test, where: T3, experiment: shared, metric: sec_per_epoch, value: 2, hardware: NVIDIA H100 80GB HBM3}
  - {source: test, where: T3, experiment: solo, metric: sec_per_epoch, value: 2, hardware: NVIDIA H100 80GB HBM3}
"""
H100 = "NVIDIA H100 80GB HBM3"
# A recipe of four epochs: the runs these tests build record four (a complete run of another
# length than its recipe never counts), so that two sessions or devices may have two each.
FOUR_EPOCHS = TINY_RECIPE.replace("epochs: 3", "epochs: 4")


class _TableRows(HTMLParser):
    """The text of every table row, cells joined by " | "."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th") and self.rows:
            self.rows[-1].append("")

    def handle_data(self, data):
        if self.rows and self.rows[-1]:
            self.rows[-1][-1] += " " + data

    def row(self, first_cell: str) -> list[str]:
        cells = [[" ".join(c.split()) for c in r] for r in self.rows]
        (found,) = [r for r in cells if r and r[0] == first_cell]
        return found


def _update(path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _share(run_dir, *, environment: int | None = None, processes: int | None = None) -> None:
    """Mark a hand-made run as having shared its GPU, the way each source records it."""
    if environment is not None:
        _update(run_dir / "environment.json", device_shared_by=environment)
    if processes is not None:
        _update(run_dir / "summary.json", telemetry={"gpu_seconds": 8.0,
                                                     "gpu_processes_max": processes})  # fmt: skip


def _speed_report(tmp_path):
    """A study of speed claims: a run moved from an H100 to a CPU, runs sharing their GPU and
    solo ones."""
    path = tiny_study(tmp_path / "speeds.yaml", SPEED_STUDY, name="speeds", recipe=FOUR_EPOCHS)
    study = load_study(path)
    results = tmp_path / "results"
    moved = fake_run(results, study, "moved", device=H100)
    # Paused on the H100 after two epochs, finished on a CPU: each device's own epochs.
    rows = read_jsonl(moved / "metrics.jsonl")
    timing = [(H100, 9.0, True), (H100, 2.0, False), ("CPU (x86_64)", 50.0, True),
              ("CPU (x86_64)", 30.0, False)]  # fmt: skip
    for row, (device, seconds, first) in zip(rows, timing, strict=True):
        row.update(device=device, train_seconds=seconds, first_of_session=first)
    write_jsonl(moved / "metrics.jsonl", rows)  # as training writes it
    # Its summary's seconds as training writes them from these epochs: the median of the
    # epochs that were not a session's first (2 s and 30 s).
    summary = json.loads((moved / "summary.json").read_text())
    (moved / "summary.json").write_text(json.dumps({**summary, "sec_per_epoch": 16.0}))
    _share(fake_run(results, study, "shared", 0, device=H100, sec_per_epoch=2.0), environment=3)
    _share(fake_run(results, study, "shared", 1, device=H100, sec_per_epoch=2.0), processes=2)
    fake_run(results, study, "solo", 0, device=H100, sec_per_epoch=2.1)
    # Three times slower with the GPU shared: were it compared, the median would be 5.55 s.
    _share(fake_run(results, study, "solo", 1, device=H100, sec_per_epoch=9.0), environment=3)
    return build([(study, str(path))], scan(results), str(results))


def test_speed_claims_compare_solo_runs_and_the_run_table_shows_each_device(tmp_path):
    report = _speed_report(tmp_path)
    claims = claim_rows(report)
    shared, solo = claims[("speed", "shared")], claims[("speed", "solo")]
    assert shared.verdict == V.NOT_COMPARABLE and shared.reproduced_value is None
    assert "shared its device with up to 3 runs" in shared.reason and "solo run" in shared.reason
    assert solo.verdict == V.REPRODUCED and (solo.n, solo.reproduced_value) == (1, 2.1)
    assert "1.05x the claimed time on the same hardware" in solo.reason
    speeds = {r.experiment: r.verdict for r in report.studies[0].speeds}
    assert speeds == {"moved": "", "shared": V.NOT_COMPARABLE, "solo": V.REPRODUCED}
    # The speed table's sec/epoch is over every counted run (5.55 s, the shared seed
    # included) and its verdict over the solo one alone: the verdict cell says which, so
    # "5.55 | 2 s | reproduced" does not read as 5.55 s reproducing 2.
    (solo_speed,) = [r for r in report.studies[0].speeds if r.experiment == "solo"]
    assert solo_speed.sec_per_epoch == pytest.approx(5.55)
    assert solo_speed.judged == f"2.1 s, the median of 1 solo run on {H100}"

    table = _TableRows()
    table.feed(render_html(report))
    (verdict_cell,) = [r[-1] for r in table.rows if r and " ".join(r[0].split()) == "solo"
                       and "median" in r[-1]]  # fmt: skip
    # (the parser runs the text after the table on into the table's last cell)
    assert " ".join(verdict_cell.split()).startswith(
        f"{V.REPRODUCED} (2.1 s, the median of 1 solo run on {H100})")  # fmt: skip
    device = table.row("speeds/moved/seed-0")[6]
    assert device.startswith(f"{H100}: 2 epochs, 2.00 s/epoch; CPU (x86_64): 2 epochs, "
                             "30.00 s/epoch")  # fmt: skip
    assert table.row("speeds/solo/seed-0")[6] == f"{H100} fp32"
    assert table.row("speeds/shared/seed-0")[6] == f"{H100} fp32 GPU shared by 3 runs"
    assert table.row("speeds/shared/seed-1")[6] == f"{H100} fp32 GPU shared by 2 runs"
    assert table.row("speeds/solo/seed-1")[6].endswith("GPU shared by 3 runs")


def test_the_speed_table_reads_on_a_phone(tmp_path):
    """The speed table with its source's figures and verdicts (the published page has none):
    at 390 pixels, side by side, it scrolled sideways; it stacks as cards, as the others do."""
    out = tmp_path / "report.html"
    out.write_text(render_html(_speed_report(tmp_path)))
    seen = _browse(out, 390)
    assert seen["page_width"] <= 390 and seen["overflowing"] == []
    assert seen["scrolling_tables"] == [], seen["scrolling_tables"]
    assert any(t.startswith("speeds, speed per experiment") for t in seen["stacked_tables"])
    assert seen["unlabelled_cells"] == [] and seen["long_cells"] == [], seen


GTX980, GTX1080 = "NVIDIA GeForce GTX 980", "NVIDIA GeForce GTX 1080"
HARDWARE_STUDY = """\
  - {name: mixed, model: resnet20, recipe: base, seeds: 2}
  - {name: elsewhere, model: resnet20, recipe: base}
claims:
  - {source: test, where: T3, experiment: mixed, metric: sec_per_epoch, value: 100, hardware: NVIDIA GTX 980}
  - {source: test, where: T3, experiment: elsewhere, metric: sec_per_epoch, value: 100, hardware: NVIDIA GTX 980}
"""


def test_a_speed_claim_takes_only_the_runs_on_its_hardware(tmp_path):
    path = tiny_study(tmp_path / "hw.yaml", HARDWARE_STUDY, name="hw")
    study = load_study(path)
    results = tmp_path / "results"
    # Solo both, on two GPUs: pooled, the median would be 75 s, "better than claimed".
    fake_run(results, study, "mixed", 0, device=GTX980, sec_per_epoch=100.0)
    fake_run(results, study, "mixed", 1, device=GTX1080, sec_per_epoch=50.0)
    fake_run(results, study, "elsewhere", 0, device=GTX1080, sec_per_epoch=100.0)
    report = build([(study, str(path))], scan(results), str(results))
    claims = claim_rows(report)
    mixed, elsewhere = claims[("speed", "mixed")], claims[("speed", "elsewhere")]
    assert mixed.verdict == V.REPRODUCED and (mixed.n, mixed.reproduced_value) == (1, 100.0)
    assert "1 run on other hardware left out" in mixed.reason
    # No run on the claim's GPU: nothing measures the claim, whatever the other GPU shows.
    assert elsewhere.verdict == V.NOT_COMPARABLE and elsewhere.reproduced_value is None
    assert f"measured on {GTX1080}" in elsewhere.reason
    speeds = {r.experiment: r.verdict for r in report.studies[0].speeds}
    assert speeds == {"mixed": V.REPRODUCED, "elsewhere": V.NOT_COMPARABLE}


def test_a_run_fused_or_crowded_in_an_earlier_session_is_no_solo_run(tmp_path):
    """Its environment is its last session's: alone. Its summary's sessions remember the first,
    fused into a group (or beside other runs), whose seconds its epochs still include."""
    path = tiny_study(tmp_path / "hw.yaml", HARDWARE_STUDY, name="hw")
    study = load_study(path)
    results = tmp_path / "results"
    for seed, earlier in enumerate(({"fused": 4}, {"device_shared_by": 3})):
        run = fake_run(results, study, "mixed", seed, device=GTX980, sec_per_epoch=90.0)
        summary = json.loads((run / "summary.json").read_text())
        first = {**summary["sessions"][0], **earlier, "from_epoch": 0}
        _update(run / "summary.json", sessions=[first, {**summary["sessions"][0],
                                                        "from_epoch": 2}])  # fmt: skip
    claims = claim_rows(build([(study, str(path))], scan(results), str(results)))
    mixed = claims[("speed", "mixed")]
    assert mixed.verdict == V.NOT_COMPARABLE and mixed.reproduced_value is None, mixed.reason
    assert "fused into a group of 4" in mixed.reason
    assert "shared its device with up to 3 runs" in mixed.reason


def test_a_session_records_how_its_device_was_shared():
    from harness.train import session_record

    env = {"time": "t", "hostname": "h", "device_name": "d", "command": "c", "fused": 2,
           "device_shared_by": 1}  # fmt: skip
    record = session_record(env, 3)
    assert (record["fused"], record["device_shared_by"], record["from_epoch"]) == (2, 1, 3)


ORDERING_STUDY = """\
  - {name: wide, model: resnet20, recipe: base, seeds: 2}
  - {name: deep, model: resnet56, recipe: base, seeds: 2}
claims:
  - {kind: ordering, source: test, where: S, statement: deep is slower, metric: sec_per_epoch, experiments: [wide, deep], direction: increasing}
  - {kind: ordering, source: test, where: S, statement: deep is better, metric: test_error, experiments: [wide, deep], direction: decreasing}
"""


def _ordering(results, study, path) -> tuple:
    report = build([(study, str(path))], scan(results), str(results))
    rows = {r.metric: r for r in report.studies[0].orderings}
    return rows["seconds per training epoch"], rows["test error (final epoch)"]


@pytest.mark.parametrize("case", ["fused", "shared", "devices", "solo"])
def test_an_ordering_on_seconds_compares_solo_runs_on_one_device(tmp_path, case):
    path = tiny_study(tmp_path / "order.yaml", ORDERING_STUDY, name="order")
    study = load_study(path)
    results = tmp_path / "results"
    for seed in (0, 1):
        fake_run(results, study, "wide", seed, device=H100, sec_per_epoch=20.0 + seed,
                 test_error=6.0)  # fmt: skip
        # Three times the seconds: a fused group's, or a CPU's; the deep net's own is unknown.
        deep = fake_run(results, study, "deep", seed, device="CPU (x86_64)" if case == "devices"
                        else H100, sec_per_epoch=60.0 + seed, test_error=5.0)  # fmt: skip
        if case == "fused":
            _update(deep / "environment.json", fused=8, fused_group=[f"g{k}" for k in range(8)])
        elif case == "shared":
            _share(deep, processes=3)
    seconds, errors = _ordering(results, study, path)
    assert errors.verdict == V.REPRODUCED  # an ordering on errors compares any counted runs
    if case == "solo":
        assert seconds.verdict == V.REPRODUCED, seconds.reason
        return
    assert seconds.verdict == V.NOT_COMPARABLE, seconds.reason
    why = {"fused": "fused into a group of 8", "shared": "shared its device with up to 3 runs",
           "devices": "on NVIDIA H100 80GB HBM3"}[case]  # fmt: skip
    assert why in seconds.reason


DISAGREEING = {
    # A summary that says complete before the last epoch (copied early, edited by hand).
    "early": ("summary.json: says complete after 2 of 4 epochs",
              lambda run: _update(run / "summary.json", epochs_done=2)),
    # Curves that did not travel with the summary.
    "bare": ("metrics.jsonl: is missing; the summary says complete after 4 epochs",
             lambda run: (run / "metrics.jsonl").unlink()),
    # Curves that are not the summary's epochs: one lost.
    "gap": ("metrics.jsonl: holds 3 epochs (1..4), not the 4 its summary says",
            lambda run: (run / "metrics.jsonl").write_text("".join(
                line for line in (run / "metrics.jsonl").read_text().splitlines(True)
                if '"epoch": 3,' not in line))),
}  # fmt: skip


def test_a_run_whose_files_disagree_is_damaged_and_never_counts(tmp_path):
    experiments = "".join(f"  - {{name: {n}, model: resnet20, recipe: base}}\n"
                          for n in DISAGREEING)  # fmt: skip
    claims = "".join(f"  - {{source: test, where: T1, experiment: {n}, metric: test_error, "
                     "value: 10.0}\n" for n in DISAGREEING)  # fmt: skip
    path = tiny_study(tmp_path / "d.yaml", experiments + "claims:\n" + claims, name="disagree",
                      recipe=FOUR_EPOCHS)  # fmt: skip
    study = load_study(path)
    results = tmp_path / "results"
    for name, (_, spoil) in DISAGREEING.items():
        spoil(fake_run(results, study, name, test_error=10.0))
    report = build([(study, str(path))], scan(results), str(results))
    (s,) = report.studies
    assert s.counted_runs == 0
    assert {c.experiment: c.verdict for c in s.values} == dict.fromkeys(DISAGREEING, V.NOT_RUN)
    assert {c.reason for c in s.values} == {"no counted run yet"}  # not "started": it ended
    runs = {r.experiment: r for r in s.runs}
    for name, (what, _) in DISAGREEING.items():
        assert runs[name].status == "damaged" and not runs[name].counted
        assert runs[name].why_not.startswith("damaged: ") and what in runs[name].why_not


# --------------------------------------------------------------------------- checkpoints

CHECKPOINTS = ROOT / "studies" / "checkpoints.yaml"


def test_checkpoint_claims_are_judged_by_the_rules_of_trained_runs(tmp_path):
    study = load_study(CHECKPOINTS)
    results = tmp_path / "results"
    fake_evaluation(results, study, "akamaster-resnet20", test_error=8.27)
    fake_evaluation(results, study, "akamaster-resnet20", test_error=30.0, official=False,
                    fingerprint="d" * 64, stale=True)  # fmt: skip
    fake_evaluation(results, study, "akamaster-resnet32", test_error=9.0)
    fake_evaluation(results, study, "akamaster-resnet44", test_error=17.33, official=False)
    fake_evaluation(results, study, "akamaster-resnet56", test_error=6.61)
    fake_evaluation(results, study, "akamaster-resnet56", test_error=16.80, official=False)
    report = build([(study, str(CHECKPOINTS))], scan(results), str(results),
                   scan_evaluations(results))  # fmt: skip
    (s,) = report.studies
    rows = {(c.experiment, c.metric): c for c in s.checkpoint_claims}
    got = {name: rows[(name, "test error")].verdict for name, _ in rows}
    assert got == {
        "akamaster-resnet20": V.REPRODUCED,
        "akamaster-resnet32": V.NOT_REPRODUCED,  # 1.63 beyond twice 2 SE of one run each side
        "akamaster-resnet44": f"{V.NOT_REPRODUCED} {V.ON_NONOFFICIAL_DATA}",
        "akamaster-resnet56": V.REPRODUCED,  # the official release is preferred to the copy
    }
    assert all(rows[(n, "parameters")].verdict == V.REPRODUCED for n, _ in rows)
    r20, r56 = (
        rows[("akamaster-resnet20", "test error")],
        rows[("akamaster-resnet56", "test error")],
    )
    assert "1 evaluation not counted: stale" in " ".join(r20.notes)
    assert "the file itself records best_prec1 = 91.78" in r20.notes
    # "evaluated ... on not the official release": the data's name is no place to evaluate on
    assert any("also evaluated on a copy that is not the official release (data cccccccccccc)"
               in n and "16.80%" in n for n in r56.notes)  # fmt: skip
    assert any(n.startswith("evaluated 2026-11-26T08:00:00+00:00 on the official release: ")
               for n in r56.notes)  # fmt: skip
    r44 = rows[("akamaster-resnet44", "test error")]
    assert any(n.startswith("evaluated 2026-11-26T08:00:00+00:00 on a copy that is not the "
                            "official release (data cccccccccccc): ") for n in r44.notes)  # fmt: skip
    assert not [n for n in r20.notes + r44.notes + r56.notes if "on not the" in n]
    assert r56.data == "official release" and r20.n == 1 and r20.rule_applied == "single run"
    assert s.counts[V.REPRODUCED] == 6 and s.counted_evaluations == 5
    # The copy's cost, measured: ours on both copies where we have both, else the source's figure
    penalty = {c["checkpoint"]: c for c in report.provenance.copy_penalty}
    assert penalty["akamaster-resnet56"]["reference_kind"] == "ours, on the official release"
    assert penalty["akamaster-resnet56"]["penalty"] == pytest.approx(10.19)
    assert penalty["akamaster-resnet44"]["reference_kind"] == "the source's stated figure"
    assert report.provenance.copy_penalty_mean == pytest.approx((10.19 + 10.43) / 2)

    html = render_html(report)
    parser = _Rows()
    parser.feed(html)
    assert "Released checkpoints" in html and "<h3>Curves</h3>" not in html
    # Its copies are not the offline JPEG copy (verdicts.JPEG_COPY_FINGERPRINT): the page
    # said "the offline JPEG copy costs ..." of them. What is known of each is said instead.
    text = _text(html)
    assert "JPEG" not in text.split("rules in full (")[0]
    assert ("the copy cccccccccccc costs released checkpoints, trained on the official release, "
            "10.31 points of test error on average (see Provenance ); what the copy dddddddddddd "
            "costs against the official release is not measured.") in text  # fmt: skip
    assert ("not comparable with the sources' (the copy cccccccccccc costs released weights "
            "10.31 points of test error on average; what the copy dddddddddddd costs against the "
            "official release is not measured)") in text  # fmt: skip
    assert "16.80%" in parser.rows["copy-penalty-akamaster-resnet56-cccccccccccc"]
    assert "layer(?P&lt;s&gt;\\d+)" in html  # the layout's rules are on the page
    assert "3 checkpoint evaluations used a copy" in " ".join(html.split())  # stale too
    # A study of released weights alone trains nothing: not "0 counted runs", as if missing.
    assert "no experiments, so no runs; 5 counted checkpoint evaluations" in _text(html)
    assert "0 counted runs" not in _text(html)
    table = report_for([CHECKPOINTS], results)
    assert [c.verdict for c in table.studies[0].checkpoint_claims] == [
        c.verdict for c in s.checkpoint_claims
    ]


def _copy_section(html: str) -> str:
    """The words of the section on what the copy of the data costs, from its heading on."""
    start = html.index('<h3 id="copy-penalty">')
    return _text(html[start : html.index("<table", start)])


@pytest.mark.parametrize(
    ("official", "heading"),
    [
        (
            (),
            "What the copy of the data costs released weights (our test error on the copy "
            "against the source's stated figure on the official release)",
        ),
        (
            ("akamaster-resnet20", "akamaster-resnet56"),
            "What the copy of the data costs released weights (measured: our test errors on the "
            "copy and on the official release)",
        ),
        (
            ("akamaster-resnet56",),
            "What the copy of the data costs released weights (our test error on the copy against "
            "ours on the official release for 1, the source's stated figure for 1)",
        ),
    ],
)
def test_the_copy_s_cost_says_whose_figure_on_the_official_release_it_uses(
    tmp_path, official, heading
):
    # "What the copy of the data costs (measured)" stood over rows whose figure on the official
    # release was the source's stated one, not ours: only the copy's half was measured.
    study = load_study(CHECKPOINTS)
    results = tmp_path / "results"
    for name, error in (("akamaster-resnet20", 18.97), ("akamaster-resnet56", 16.80)):
        fake_evaluation(results, study, name, test_error=error, official=False)
    for name in official:
        fake_evaluation(results, study, name, test_error=8.3)
    report = build([(study, str(CHECKPOINTS))], scan(results), str(results),
                   scan_evaluations(results))  # fmt: skip
    section = _copy_section(render_html(report))
    assert section.startswith(heading + " Released checkpoints"), section
    assert "(measured)" not in section and "measured here rather than assumed" not in section
    if not official:
        assert ("the test error on the official release is the one their source states for "
                "the same weights, not evaluated here") in section  # fmt: skip
    elif len(official) == 2:
        assert "we evaluated them on the official release as well" in section
    else:
        assert ("on the official release, our own evaluation for 1 of them, the source's "
                "stated figure for the other 1") in section  # fmt: skip


def test_a_parameter_count_s_verdict_says_exact_once(verdict_store):
    # The cell read "reproduced exact / exact match": the rule's word twice over.
    study, path, results = verdict_store
    html = render_html(build([(study, str(path))], scan(results), str(results)))
    start = html.index("<h3>Parameter counts</h3>")
    table = html[start : html.index("</table>", start)]
    cells = [_text(c) for c in re.findall(r'<td class="verdict-cell">(.*?)</td>', table, re.S)]
    assert cells == [
        "reproduced exact match",
        "reproduced within rounding rounds to the stated figure (unit 100,000)",
        "not reproduced small difference off by -278",
    ], cells


def test_a_study_of_checkpoints_before_any_evaluation(tmp_path):
    out = tmp_path / "r.html"
    (tmp_path / "empty").mkdir()  # a missing directory is an error (tests/test_cli.py)
    result = CliRunner().invoke(main, ["report", "--results", str(tmp_path / "empty"), "--study",
                                       str(CHECKPOINTS), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "Nothing has run yet" in html and f"repro evaluate {CHECKPOINTS}" in html
    result = CliRunner().invoke(main, ["report", "--results", str(tmp_path / "empty"), "--study",
                                       str(CHECKPOINTS), "--out", str(out), "--show-unrun"])  # fmt: skip
    html = out.read_text()
    # four test errors to evaluate, in the scoreboard, the claim list and the table; four
    # counts that hold, in the claim list and the table
    assert html.count(">not yet run<") == 12 and html.count(">reproduced<") == 8


# --------------------------------------------------------------------------- at a glance

PUBLISHED = ROOT / "results" / "published"


EVALUATIONS = PUBLISHED / "checkpoints-jpeg-copy-cpu-2026-11-26" / "store"


def _one_store(tmp_path_factory, name: str, *stores: Path) -> Path:
    """Copies of committed stores, merged into one scratch store."""
    store = tmp_path_factory.mktemp(name) / "store"
    for source in stores:
        shutil.copytree(source, store, dirs_exist_ok=True)
    return store


@pytest.fixture(scope="module")
def published_store(tmp_path_factory):
    """The committed GPU runs and the CPU evaluations of released checkpoints, in one store."""
    return _one_store(tmp_path_factory, "published", PUBLISHED / "degradation-20" / "store",
                      EVALUATIONS)  # fmt: skip


# Reports over the published store, built once for the tests that only read them: a page
# costs a second or more to build and draw (its figures), the whole catalogue's 3 to 4 s.
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))


@pytest.fixture(scope="module")
def published_report(published_store):
    """Degradation and checkpoints: what the published page shows."""
    return report_for([DEGRADATION, CHECKPOINTS], published_store)


@pytest.fixture(scope="module")
def published_page(published_report) -> str:
    return render_html(published_report)


@pytest.fixture(scope="module")
def degradation_report(published_store):
    return report_for([DEGRADATION], published_store)


# The same six runs paused at 138 to 145 of 164 epochs, as the second GPU slot left them
# (tests/data/degradation-paused/README.md): real unfinished runs, for what the page says of them.
PAUSED = ROOT / "tests" / "data" / "degradation-paused" / "store"


@pytest.fixture(scope="module")
def paused_store(tmp_path_factory):
    return _one_store(tmp_path_factory, "paused", PAUSED, EVALUATIONS)


@pytest.fixture(scope="module")
def paused_report(paused_store):
    return report_for([DEGRADATION, CHECKPOINTS], paused_store)


@pytest.fixture(scope="module")
def paused_page(paused_report) -> str:
    return render_html(paused_report)


@pytest.fixture(scope="module")
def paused_degradation_report(paused_store):
    return report_for([DEGRADATION], paused_store)


@pytest.fixture(scope="module")
def catalogue_report(published_store):
    """Every study, those with nothing run folded."""
    return report_for(STUDIES, published_store)


@pytest.fixture(scope="module")
def catalogue_unrun_report(published_store):
    """Every study in full (--show-unrun)."""
    return report_for(STUDIES, published_store, show_unrun=True)


@pytest.fixture(scope="module")
def catalogue_unrun_page(catalogue_unrun_report) -> str:
    return render_html(catalogue_unrun_report)


def test_the_scoreboard_comes_first_a_row_per_model_a_column_per_source(paused_report, paused_page):
    report = paused_report
    board = report.scoreboard
    assert board.sources == ["Wen-Jie Tseng 2018", "Yoonjeong Park", "Yerlan Idelbayev 2018"]
    models = [r.model for r in board.rows]
    assert models[:4] == ["ResNet-20", "ResNet-32", "ResNet-44", "ResNet-56"]
    assert "plain-110 (bottleneck)" in models and len(models) == len(set(models))
    resnet20 = board.rows[0]
    tseng, park, released = resnet20.cells
    (line,) = tseng
    assert (line.claimed, line.reproduced, line.n, line.verdict) == ("8.51%", "\u2013", 0,
                                                                     V.UNDER_WAY)  # fmt: skip
    # Paused halfway: never a verdict, but where the training stands, and on what data: the
    # JPEG copy's 12.59% is not a figure to hold against the source's 8.51%.
    assert line.progress == ("so far 12.59% at epoch 145/164 (paused) on non-official data: "
                             "not counted")  # fmt: skip
    assert [p.what for p in park] == ["test error", "test error @90"]
    (weights,) = released
    assert (weights.claimed, weights.reproduced, weights.n) == ("8.27%", "18.97%", 1)
    assert weights.verdict == f"{V.NOT_REPRODUCED} {V.ON_NONOFFICIAL_DATA}"
    # The orderings beside it, one line each, as chains of the nets they compare.
    assert len(board.orderings) == 13
    chain = "ResNet-20 > ResNet-56 (bottleneck) > ResNet-110 (bottleneck)"
    assert board.orderings[0].chain == chain
    html = paused_page
    first = html.index('id="scoreboard"')
    assert first < html.index('id="orderings-panel"') < html.index('id="claims"')
    rules, study = html.index('id="rules"'), html.index('id="study-degradation"')
    assert html.index('id="claims"') < rules < study
    assert first < html.index(board.rows[0].cells[0][0].anchor)


def test_the_published_runs_finished_and_the_page_reads_their_verdicts(published_report):
    # The six 20-layer runs finished their 164 epochs in the third GPU slot (one H200,
    # 2026-11-27): every accuracy claim on them is decided, on the JPEG copy, and says so.
    report = published_report
    heads = {h.kind: h.text for h in report.headlines}
    assert heads["accuracy"] == ("accuracy 5/12 tested: 3 better than claimed on non-official "
                                 "data, 2 not reproduced on non-official data")  # fmt: skip
    lines = {e.what: e for e in report.evidence}
    assert lines["Runs"].text == "6 runs of 6 experiments (1 random seed each), 6 counted"
    assert not lines["Runs"].caveat
    board = {(row.model, line.what, line.claimed): (line.reproduced, line.n, line.verdict)
             for row in report.scoreboard.rows for cell in row.cells for line in cell}  # fmt: skip
    copy = V.ON_NONOFFICIAL_DATA
    assert board["ResNet-20", "test error", "8.51%"] == ("12.41%", 1, f"{V.NOT_REPRODUCED} {copy}")
    assert board["plain-20", "test error", "9.66%"] == ("13.81%", 1, f"{V.NOT_REPRODUCED} {copy}")
    assert board["ResNet-20", "test error", "27.9%"] == ("12.79%", 1, f"{V.BETTER} {copy}")
    assert board["ResNet-20", "test error @90", "27.9%"] == ("12.41%", 1, f"{V.BETTER} {copy}")
    assert board["plain-20", "test error", "32.5%"] == ("13.77%", 1, f"{V.BETTER} {copy}")
    # Nothing is under way: the deeper nets of every ordering have not started.
    assert not [v for v in board.values() if v[2] == V.UNDER_WAY]
    assert {o.verdict for o in report.scoreboard.orderings} == {V.NOT_RUN}


def test_the_speed_table_names_every_device_a_run_trained_on(degradation_report):
    # Each published run trained 138 to 145 epochs on an H100 and the rest on an H200; the
    # table named the H200 alone (the latest session's), beside a median over both.
    (study,) = degradation_report.studies
    devices = {r.experiment: r.devices for r in study.speeds}
    assert devices["tseng-plain20"] == "NVIDIA H100 80GB HBM3, NVIDIA H200", devices


def test_studies_with_no_runs_fold_into_one_line_each(published_store, catalogue_report, tmp_path):
    studies = STUDIES
    report = catalogue_report
    shown = [s.name for s in report.studies if not s.folded]
    assert shown == ["checkpoints", "degradation"]
    html = render_html(report)
    text = _text(html)
    for name in ("he2015_table6", "preact_wide", "resnet68", "shortcuts", "smoke"):
        assert f'id="study-{name.replace("_", "-")}"' not in html
        assert f"{name}: nothing run yet" in text
    assert re.search(r"repro run \S*studies/preact_wide\.yaml", text)
    # The flag shows them in full.
    out = tmp_path / "full.html"
    result = CliRunner().invoke(main, ["report", "--results", str(published_store), "--out",
                                       str(out), "--show-unrun",
                                       *(a for s in studies for a in ("--study", str(s)))])  # fmt: skip
    assert result.exit_code == 0, result.output
    full = out.read_text()
    assert 'id="study-he2015-table6"' in full and "nothing run yet" not in _text(full)


def test_claims_waiting_for_a_run_are_not_called_models_with_nothing_run(catalogue_report):
    # "Models with nothing run yet: ResNet-20" stood under a scoreboard whose ResNet-20 row
    # has a counted run: the line lists he2015_table6's claims, which wait, not the model.
    board = [r.model for r in catalogue_report.scoreboard.rows]
    waiting = [m.model for m in catalogue_report.scoreboard.waiting]
    assert "ResNet-20" in board and "ResNet-20" in waiting
    text = _text(render_html(catalogue_report))
    assert "Models with nothing run yet" not in text
    assert "Claims with nothing run yet, by model" in text


def test_released_weights_waiting_are_said_to_wait_for_an_evaluation_not_a_run(tmp_path):
    # Akamaster's released ResNets stood under "claims waiting for a run", though released
    # weights are never run: `repro evaluate` answers them.
    (tmp_path / "empty").mkdir()
    report = report_for([DEGRADATION, CHECKPOINTS], tmp_path / "empty")
    waiting = {m.model: m for m in report.scoreboard.waiting}
    resnet20 = waiting["ResNet-20"]
    assert "Yerlan Idelbayev 2018: released weights 8.27%, waiting for an evaluation" in \
        resnet20.claims  # fmt: skip
    assert "Wen-Jie Tseng 2018: test error 8.51%" in resnet20.claims and resnet20.evaluations == 1
    text = _text(render_html(report))
    assert "claims waiting for a run or an evaluation" in text
    alone = report_for([DEGRADATION], tmp_path / "empty")
    assert "claims waiting for a run study" in _text(render_html(alone))  # its header, as was
    assert not [c for m in alone.scoreboard.waiting for c in m.claims if "evaluation" in c]


def test_every_model_keeps_a_row_until_it_is_reproduced(published_store, catalogue_report,
                                                        tmp_path):  # fmt: skip
    """The scoreboard holds the studies with runs; every other model a source makes a claim
    of has its line below it, linked to its folded study, and nothing that is not a
    publication (the smoke test's own claims) enters either or the headlines."""
    studies = STUDIES
    for results in (published_store, tmp_path / "empty"):
        results.mkdir(exist_ok=True)
        report = catalogue_report if results == published_store else report_for(studies, results)
        board = report.scoreboard
        shown = {r.model for r in board.rows} | {m.model for m in board.waiting}
        expected = set()
        for study_file in studies:
            study = load_study(study_file)
            if study.name == "smoke":
                continue
            for c in study.claims:
                if isinstance(c, Claim) and c.experiment and c.metric != "params":
                    expected.add(study.experiment(c.experiment).model.label())
        assert expected <= shown, expected - shown
        for name in ("ResNet-68 (option B)", "pre-act ResNet-164", "WRN-16-4 (dropout 0.3)",
                     "ResNet-56 (option B)"):  # fmt: skip
            assert name in shown
        assert "resnet8" not in shown and "ResNet-8" not in shown  # the smoke test's nets
        params = next(h for h in report.headlines if h.kind == "parameter counts")
        assert params.total == sum(len(s.params) + sum(c.metric == "parameters" for c in
                                   s.checkpoint_claims) for s in report.studies
                                   if s.name != "smoke")  # fmt: skip
        html = render_html(report)
        if results == published_store:
            assert board.rows and 'id="waiting-models"' in html
        else:
            assert not board.rows and len(board.waiting) > 15
        (shortcuts,) = [m for m in board.waiting if m.model == "ResNet-56 (option B)"]
        assert shortcuts.studies == ["shortcuts"] and 'href="#folded-shortcuts"' in html
        # By family, then depth: WRN-16-4 used to come before ResNet-20, by its depth alone.
        order = [m.model for m in board.waiting]
        resnets = [m for m in order if m.startswith("ResNet-")]
        assert order.index(resnets[-1]) < order.index("pre-act ResNet-110")
        assert order.index("pre-act ResNet-164") < order.index("WRN-16-4 (dropout 0.3)")
        assert all(order.index("WRN-16-4 (dropout 0.3)") < order.index(m) for m in order
                   if m.startswith("plain"))  # fmt: skip
        assert "Yoonjeong Park: test error 25.9%" in shortcuts.claims


class _Tables(HTMLParser):
    """Every table: its rows of cell texts (the header row first)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.tables[-1][-1].append("")

    def handle_data(self, data):
        if self.tables and self.tables[-1] and self.tables[-1][-1]:
            self.tables[-1][-1][-1] += " " + data

    def cleaned(self) -> list[list[list[str]]]:
        return [[[" ".join(c.split()) for c in r] for r in t] for t in self.tables]


def _empty_columns(html: str) -> list[tuple[str, list[str]]]:
    """(header, the table's header row) for each column whose body cells are all empty or "–"."""
    parser = _Tables()
    parser.feed(html)
    found = []
    for header, *body in parser.cleaned():
        for i, name in enumerate(header):
            cells = [r[i] for r in body if len(r) == len(header)]
            if cells and all(c in ("", "\u2013") for c in cells):
                found.append((name, header))
    return found


def test_tables_have_short_labels_no_empty_columns_and_paths_in_the_store(
    published_store, published_page, verdict_store
):
    html = published_page
    assert _empty_columns(html) == []
    study, path, results = verdict_store
    assert _empty_columns(render_html(build([(study, str(path))], scan(results),
                                            str(results)))) == []  # fmt: skip
    # Short metric labels in the cells, spelt out once beside the table.
    parser = _Tables()
    parser.feed(html)
    claims = next(t for t in parser.cleaned() if t[0][:3] == ["experiment", "source", "metric"])
    assert {r[2] for r in claims[1:]} == {"test error", "test error @90"}
    text = _text(html)
    assert "test error: test error (final epoch)" in text
    assert "test error @90: test error at epoch 90" in text
    # Directories relative to the store, which the page names once.
    runs = next(t for t in parser.cleaned() if t[0][0] == "run")
    assert runs[1][0] == "degradation/he-plain20/seed-0"
    evaluations = next(t for t in parser.cleaned() if t[0][0] == "evaluation")
    assert evaluations[1][-1] == "checkpoints/akamaster-resnet20/data-ccecff3e0fe7"
    assert str(published_store) not in html.replace(f"<code>{published_store}</code>", "", 1)


class _Captions(HTMLParser):
    """Each table's caption (None where the table has none, or not as its first child)."""

    def __init__(self) -> None:
        super().__init__()
        self.captions: list[str | None] = []
        self._after_table = self._in_caption = False

    def handle_starttag(self, tag, attrs):
        if self._after_table and tag == "caption":
            self.captions[-1], self._in_caption = "", True
        self._after_table = tag == "table"
        if tag == "table":
            self.captions.append(None)

    def handle_endtag(self, tag):
        self._in_caption = self._in_caption and tag != "caption"

    def handle_data(self, data):
        if self._in_caption:
            self.captions[-1] += data


def test_every_table_has_a_caption_that_says_what_it_shows(published_page, verdict_store):
    study, path, results = verdict_store
    pages = [published_page,
             render_html(build([(study, str(path))], scan(results), str(results)))]  # fmt: skip
    for html in pages:
        parser = _Captions()
        parser.feed(html)
        assert parser.captions and None not in parser.captions, parser.captions
        captions = [" ".join(c.split()) for c in parser.captions]
        assert all(len(c) > 30 for c in captions), captions
        assert len(set(captions)) == len(captions), "two tables that read the same"
    parser = _Captions()
    parser.feed(pages[0])
    text = " | ".join(parser.captions)
    for expected in ("Published claims by model (rows) and source (columns)",
                     "degradation, claims:", "degradation, every run by its directory:",
                     "checkpoints, released checkpoints:", "Software versions"):  # fmt: skip
        assert expected in text, text


def test_source_documents_and_random_seeds_have_different_names(catalogue_unrun_page):
    # "seed 000" named a source document (seeds/000_*.txt) while "seeds" counted random seeds:
    # "the test errors of seeds 000 and 002" read as two random seeds. Documents are
    # "document 000"; random seeds are "random seeds" where a header or caption counts them.
    from harness.describe import catalogue_table
    from harness.queue import load_queue

    text = _text(catalogue_unrun_page)
    collision = re.compile(r"\b[Ss]eeds? \d{3}\b")
    assert not collision.findall(text)
    assert "documents 000 and 002" in text and "random seeds" in text
    assert not collision.findall(catalogue_table())
    assert not collision.findall(str(load_queue(ROOT / "queue.yaml")))


# --------------------------------------------------------------------------- the page at a glance

PAUSED_STUDY = """\
  - {name: copy, model: resnet20, recipe: base, seeds: 2}
  - {name: mixed, model: resnet20, recipe: base, seeds: 2}
claims:
  - {source: test, where: T1, experiment: copy, metric: test_error, value: 8.75}
  - {source: test, where: T1, experiment: mixed, metric: test_error, value: 8.75}
"""


def test_where_unfinished_runs_stand_says_what_data_they_train_on(tmp_path):
    path = tiny_study(tmp_path / "p.yaml", PAUSED_STUDY, name="paused")
    study = load_study(path)
    results = tmp_path / "results"
    fake_run(results, study, "copy", 0, status="paused", test_error=18.0, official=False)
    fake_run(results, study, "mixed", 0, status="paused", test_error=18.0, official=False)
    fake_run(results, study, "mixed", 1, status="paused", test_error=18.0)
    rows = claim_rows(build([(study, str(path))], scan(results), str(results)))
    assert rows[("value", "copy")].progress == (
        "so far 22.50% at epoch 2/4 (paused) on non-official data: not counted"
    )
    assert rows[("value", "mixed")].progress == (
        "so far 22.50% at epoch 2/4 (paused, 2 runs, 1 of them on non-official data): "
        "not counted")  # fmt: skip


PENDING_STUDY = """\
  - {name: early, model: resnet20, recipe: base, seeds: 3}
  - {name: other, model: resnet56, recipe: base}
claims:
  - {source: test, where: T1, experiment: early, metric: test_error, value: 8.75}
  - {kind: ordering, source: test, where: F1, statement: deeper is better, metric: test_error, experiments: [early, other], direction: decreasing}
"""


def test_a_verdict_reached_while_more_runs_are_under_way_says_so(tmp_path):
    # A single-run claim takes the median of the seeds that count: with one of three seeds
    # complete and two paused, "reproduced, n=1" looked final though the median may move.
    path = tiny_study(tmp_path / "p.yaml", PENDING_STUDY, name="pending")
    study = load_study(path)
    results = tmp_path / "results"
    fake_run(results, study, "early", 0, test_error=8.7)
    fake_run(results, study, "early", 1, status="paused", test_error=12.0)
    fake_run(results, study, "early", 2, status="paused", test_error=12.0)
    fake_run(results, study, "other", 0, test_error=7.0)
    report = build([(study, str(path))], scan(results), str(results))
    rows = claim_rows(report)
    value, ordering = rows[("value", "early")], rows[("ordering", "early, other")]
    assert value.verdict == V.REPRODUCED and value.n == 1  # the rules are unchanged
    assert value.progress == ("2 more runs under way at epoch 2/4 (paused): not counted yet; "
                              "the verdict may change once they count")  # fmt: skip
    assert ordering.progress == ("under way, not counted yet (the verdict may change once they "
                                 "count): early at epoch 2/4 (paused, 2 runs)")  # fmt: skip
    text = _text(render_html(report))
    board = text[text.index("At a glance") : text.index("Every claim, by study")]
    assert "reproduced n=1 2 more runs under way" in board
    parser = _Rows()
    parser.feed(render_html(report))
    assert "the verdict may change once they count" in parser.rows[ordering.anchor]
    # The orderings panel beside the scoreboard says so too, in brief, the rest in a tooltip.
    html = render_html(report)
    panel = html[html.index('id="orderings-panel"') : html.index("</aside>", html.index(
        'id="orderings-panel"'))]  # fmt: skip
    assert f'title="{ordering.progress}">(runs under way)</span>' in panel


def test_the_top_says_what_the_verdicts_stand_on_and_its_caveats(
    paused_report, paused_page, tmp_path
):
    # Within seconds: how many runs and seeds, how many count, that all six are paused, the
    # device and that its timings are shared, and that the data is a copy; before the board.
    report = paused_report
    lines = {e.what: e for e in report.evidence}
    assert list(lines) == ["Runs", "Devices", "Data", "Released weights"]
    # Park's ResNet-20, paused at 145, counts for the test error at epoch 90: the line said
    # "0 counted" and left the exception to its caveat, and a reader took the count as the truth.
    assert lines["Runs"].text == ("6 runs of 6 experiments (1 random seed each), 0 counted in "
                                  "full, 1 for the test error at epoch 90 only")  # fmt: skip
    assert lines["Runs"].caveat == (
        "6 unfinished (paused) at epochs 138 to 145 of 164: not counted in full yet"
    )
    assert lines["Devices"].text.startswith("NVIDIA H100 80GB HBM3 (6 runs): bf16")
    assert "not solo timings" in lines["Devices"].caveat
    assert lines["Data"].text == "not the official release: 6 runs and 4 checkpoint evaluations"
    assert "about ten points" in lines["Data"].caveat
    assert lines["Released weights"].text.startswith("4 evaluations of released checkpoints, "
                                                     "4 counted")  # fmt: skip
    html = paused_page
    assert html.index('id="glance"') < html.index('id="evidence"') < html.index('id="scoreboard"')
    text = _text(html)
    assert ("Runs: 6 runs of 6 experiments (1 random seed each), 0 counted in full, 1 for the "
            "test error at epoch 90 only. \u26a0 6 unfinished") in text  # fmt: skip
    # The run table says the same of that run, in the same words.
    assert "for the test error at epoch 90 only" in text.split("Runs (6)")[1]
    # Nothing run: nothing to stand on, and the page says so in its own box instead.
    (tmp_path / "empty").mkdir()
    empty = report_for([DEGRADATION], tmp_path / "empty")
    assert empty.evidence == [] and 'id="evidence"' not in render_html(empty)


H200 = "NVIDIA H200"


def _trained_on(run_dir, *devices: str) -> None:
    """Name each epoch's device in a hand-made run, the last one in its environment.json (and
    its driver, which only the latest session's device records), as a run moved between
    machines leaves them."""
    rows = read_jsonl(run_dir / "metrics.jsonl")
    for row, device in zip(rows, devices, strict=True):
        row["device"] = device
    write_jsonl(run_dir / "metrics.jsonl", rows)  # as training writes it
    _update(run_dir / "environment.json", device_name=devices[-1], driver="580.159.04")


def test_runs_moved_between_devices_name_each_device_once(tmp_path):
    # Six runs each trained ~140 epochs on an H100 and the rest on an H200: the glance keyed
    # its Devices line on each run's own history ("H100: 138 epochs, 4.71 s/epoch; H200: ...
    # (1 run)"), six groups of one; the Devices table named the H200 alone, for all six.
    path = tiny_study(tmp_path / "m.yaml", PENDING_STUDY, name="moves", recipe=FOUR_EPOCHS)
    study = load_study(path)
    results = tmp_path / "results"
    _trained_on(fake_run(results, study, "early", 0, device=H100), H100, H100, H100, H200)
    _trained_on(fake_run(results, study, "early", 1, device=H100), H100, H100, H200, H200)
    _trained_on(fake_run(results, study, "early", 2, device=H100), H100, H100, H100, H100)
    report = build([(study, str(path))], scan(results), str(results))
    devices = next(e for e in report.evidence if e.what == "Devices")
    assert devices.text == (f"{H100} (3 runs, 9 epochs), {H200} (2 runs, 3 epochs): fp32; "
                            "2 runs moved between devices (in each device's count)")  # fmt: skip
    assert devices.caveat.startswith("2 of 3 shared their device, trained fused or moved between "
                                     "devices: their seconds per epoch are not solo timings")  # fmt: skip
    # The table: a row per device, driver and execution, the moved runs' H100 driver unknown
    # (a run keeps its latest device's only).
    assert [
        (d["device"], d["driver"], d["runs"], d["epochs"]) for d in report.provenance.devices
    ] == [(H100, None, 2, 5), (H200, "580.159.04", 2, 3), (H100, "580.159.04", 1, 4)]
    html = render_html(report)
    table = _TableRows()
    table.feed(html)
    assert table.row(H200)[1:] == ["580.159.04", "fp32", "2", "3"]
    assert "a run moved between devices is in each one's count" in _text(html)
    # The run table still gives each run's own split, and a run on one device is as before.
    assert table.row("moves/early/seed-0")[6].startswith(f"{H100}: 3 epochs, 2.00 s/epoch; {H200}")
    plain = tmp_path / "plain"
    fake_run(plain, study, "early", 0, device=H100)
    fake_run(plain, study, "other", 0, device=H200)
    report = build([(study, str(path))], scan(plain), str(plain))
    devices = next(e for e in report.evidence if e.what == "Devices")
    assert devices.text == f"{H100} (1 run), {H200} (1 run): fp32"
    assert all(d["epochs"] is None for d in report.provenance.devices)
    assert "in each one's count" not in _text(render_html(report))


def test_the_evidence_line_names_why_runs_do_not_count(verdict_store):
    study, path, results = verdict_store
    report = build([(study, str(path))], scan(results), str(results))
    runs = next(e for e in report.evidence if e.what == "Runs")
    assert runs.text == ("22 runs of 11 experiments (1 to 5 random seeds each), 19 counted; "
                         "not counted: 1 stale, 1 override run (smoke)")  # fmt: skip
    assert runs.caveat == "1 unfinished (interrupted) at epoch 2: not counted yet"


def test_the_glance_counts_only_runs_a_verdict_stands_on(tmp_path):
    # Two fp32 runs made the verdict; the bf16 ones and the one on a copy were kept apart (the
    # claim row said so) yet the glance said "5 counted", as if all five stood behind it.
    study, path, results = kept_apart_store(tmp_path)
    report = build([(study, str(path))], scan(results), str(results))
    runs = next(e for e in report.evidence if e.what == "Runs")
    assert runs.text == (
        "6 runs of 2 experiments (1 to 5 random seeds each), 2 counted, 3 kept apart "
        "(2 bf16 vs fp32; 1 data cccccccccccc vs official release), "
        "1 that no verdict reads"
    )
    # The run table says the same of each run.
    cells = {r.seed: r.counted_text for r in report.studies[0].runs if r.experiment == "a"}
    assert cells == {0: "yes", 1: "yes", 2: "kept apart (bf16 vs fp32)",
                     3: "kept apart (bf16 vs fp32)",
                     4: "kept apart (data cccccccccccc vs official release)"}  # fmt: skip
    assert "kept apart (bf16 vs fp32)" in _text(render_html(report))


def test_each_study_counts_its_runs_as_the_glance_does(tmp_path):
    # The glance said "2 counted, 3 kept apart (...)" while the study's own line further down
    # said "6 counted run(s)", counting the runs every verdict kept apart as well. An unfinished
    # run past the claimed epoch but kept apart was "counted only for the test error at epoch
    # 2" there too, while the run table said "kept apart".
    study, path, results = kept_apart_store(
        tmp_path,
        extra_claims="  - {source: test, where: T3, experiment: a, metric: test_error_at_epoch, "
        "epoch: 2, value: 11.0}\n",
        paused_bf16=True,  # past epoch 2
    )
    report = build([(study, str(path))], scan(results), str(results))
    (s,) = report.studies
    assert {r.seed: r.counted_text for r in s.runs if r.experiment == "a"}[3] == (
        "kept apart (bf16 vs fp32)")  # fmt: skip
    runs = next(e for e in report.evidence if e.what == "Runs")
    assert runs.text.startswith(
        "6 runs of 2 experiments (1 to 5 random seeds each), 2 counted, 3 kept apart "
        "(2 bf16 vs fp32; 1 data cccccccccccc vs official release), 1 that no verdict reads"
    ), runs.text
    assert s.counted_runs == 2
    text = _text(render_html(report))
    assert ("2 counted runs, 3 kept apart (2 bf16 vs fp32; 1 data cccccccccccc vs official "
            "release), 1 that no verdict reads") in text  # fmt: skip
    assert "counted only for the test error at epoch 2" not in text


def test_the_run_table_says_of_a_run_no_verdict_reads_what_the_glance_says(tmp_path):
    # The glance and the study's line said "1 counted, 1 that no verdict reads" while the run
    # table's counted cell said "yes" for both runs: two "yes" under a count of one.
    experiments = ("  - {name: a, model: resnet20, recipe: base}\n"
                   "  - {name: b, model: resnet20, recipe: base}\n"
                   "claims:\n"
                   "  - {source: test, where: T1, experiment: a, metric: test_error, value: 8.75}\n"
                   "  - {source: test, where: T2, experiment: b, metric: params, value: 269722}\n")  # fmt: skip
    path = tiny_study(tmp_path / "unread.yaml", experiments, name="unread")
    study = load_study(path)
    results = tmp_path / "results"
    fake_run(results, study, "a", 0, test_error=8.6)
    fake_run(results, study, "b", 0)  # counts, but a parameter count reads no run
    report = build([(study, str(path))], scan(results), str(results))
    runs = next(e for e in report.evidence if e.what == "Runs")
    assert runs.text == ("2 runs of 2 experiments (1 random seed each), 1 counted, 1 that no "
                         "verdict reads")  # fmt: skip
    (s,) = report.studies
    assert {r.experiment: r.counted_text for r in s.runs} == {"a": "yes",
                                                             "b": "no verdict reads it"}  # fmt: skip
    assert sum(r.counted_text == "yes" for r in s.runs) == s.counted_runs == 1


def test_the_caveat_calls_an_unfinished_run_kept_apart_not_counted_yet(tmp_path):
    # A paused bf16 run past the claimed epoch, kept apart from the fp32 pool the verdict used:
    # the Runs line said "1 kept apart (bf16 vs fp32)" and its caveat "not counted in full
    # yet", as if a verdict stood on it at that epoch already.
    experiments = ("  - {name: a, model: resnet20, recipe: base, seeds: 3}\n"
                   "claims:\n"
                   "  - {source: test, where: T1, experiment: a, metric: test_error, value: 8.75}\n"
                   "  - {source: test, where: T3, experiment: a, metric: test_error_at_epoch, "
                   "epoch: 2, value: 11.0}\n")  # fmt: skip
    path = tiny_study(tmp_path / "apart.yaml", experiments, name="apart")
    study = load_study(path)
    results = tmp_path / "results"
    fake_run(results, study, "a", 0, test_error=8.6)
    fake_run(results, study, "a", 1, test_error=8.7)
    fake_run(results, study, "a", 2, status="paused", precision="bf16")  # past epoch 2
    report = build([(study, str(path))], scan(results), str(results))
    runs = next(e for e in report.evidence if e.what == "Runs")
    assert runs.text.endswith("2 counted, 1 kept apart (bf16 vs fp32)"), runs.text
    assert runs.caveat == "1 unfinished (paused) at epoch 2 of 4: not counted yet"
    # In the fp32 pool, the same run counts there: the caveat says so.
    fake_run(results, study, "a", 2, status="paused")
    report = build([(study, str(path))], scan(results), str(results))
    runs = next(e for e in report.evidence if e.what == "Runs")
    assert "1 for the test error at epoch 2 only" in runs.text, runs.text
    assert runs.caveat == "1 unfinished (paused) at epoch 2 of 4: not counted in full yet"


def test_copies_whose_fingerprints_share_twelve_characters_are_told_apart(tmp_path):
    # Two copies of the data kept apart read "data 0123456789ab vs data 0123456789ab", and a
    # run resumed on the other "mixed data (data 0123456789ab + 0123456789ab)".
    from harness import store

    experiments = ("  - {name: a, model: resnet20, recipe: base, seeds: 4}\n"
                   "claims:\n"
                   "  - {source: test, where: T1, experiment: a, metric: test_error, value: 8.75}\n")  # fmt: skip
    path = tiny_study(tmp_path / "near.yaml", experiments, name="near")
    study = load_study(path)
    results = tmp_path / "results"
    one, other = "0123456789ab" + "c" * 52, "0123456789ab" + "d" * 52
    fake_run(results, study, "a", 0, official=False, fingerprint=one)
    fake_run(results, study, "a", 1, official=False, fingerprint=one)
    fake_run(results, study, "a", 2, official=False, fingerprint=other)
    mixed = fake_run(results, study, "a", 3, official=False, fingerprint=other)
    summary = store.read_json(mixed / store.SUMMARY)
    summary["sessions"] = [{**summary["sessions"][0], "dataset_fingerprint": one},
                           {**summary["sessions"][0], "dataset_fingerprint": other}]  # fmt: skip
    store.write_json(mixed / store.SUMMARY, summary)
    report = build([(study, str(path))], scan(results), str(results))
    cells = {r.seed: r.counted_text for r in report.studies[0].runs}
    assert cells[2] == "kept apart (data 0123456789abd vs data 0123456789abc)", cells
    text = _text(render_html(report))
    assert "mixed data: not the official release (data 0123456789abc + 0123456789abd)" in text


def test_the_rules_are_folded_under_a_summary_so_the_evidence_follows_the_claims(verdict_store):
    # Eleven paragraphs of rules stood between the list of claims and their tables and curves.
    study, path, results = verdict_store
    html = render_html(build([(study, str(path))], scan(results), str(results)))
    section = html[html.index('id="rules"') : html.index('id="study-verdicts"')]
    folded = section[section.index("<details") : section.index("</details>")]
    assert all(_text(_code(rule)) in _text(folded) for rule in V.RULES)
    summary = _text(section[: section.index("<details")])
    assert "twice the standard error of the difference" in summary
    assert f"\u201c{V.ON_NONOFFICIAL_DATA}\u201d" in summary


def test_a_statement_that_quotes_its_source_is_not_quoted_twice(tmp_path):
    (tmp_path / "empty").mkdir()
    text = _text(render_html(report_for([DEGRADATION], tmp_path / "empty", show_unrun=True)))
    assert "\u201cAs the layer increasing, ResNet outperforms plain CNN\u201d, at 56 layers" in text
    assert (
        "\u201cThe deep plain nets suffer from increased depth, and exhibit higher training "
        "error when going deeper\u201d"
    ) in text  # one pair of marks
    assert not re.search(r"\u201c[\"\u201c]|[\"\u201d]\u201d", text), "nested quotation marks"


def test_the_run_table_names_each_run_once_by_its_directory(verdict_store, tmp_path):
    # Its "run" and "directory" columns both read "verdicts/same/seed-0", and the list of runs
    # of studies not in the report gave each path twice as well.
    study, path, results = verdict_store
    other = load_study(tiny_study(tmp_path / "other.yaml", "  - {name: net, model: resnet20, "
                                  "recipe: base}\n", name="other"))  # fmt: skip
    fake_run(results, other, "net")
    html = render_html(build([(study, str(path))], scan(results), str(results)))
    parser = _Tables()
    parser.feed(html)
    (runs,) = [t for t in parser.cleaned() if t[0][0] == "run"]
    assert "directory" not in runs[0]
    assert [r[0] for r in runs[1:4]] == [
        "verdicts/acc/seed-0", "verdicts/better/seed-0", "verdicts/boom/seed-0"]  # fmt: skip
    for row in runs[1:]:
        assert " | ".join(row).count(row[0]) == 1, row
    assert "relative to the results directory named at the top" in _text(html)
    unmatched = _text(html[html.index("Runs of studies not in this report") :])
    assert unmatched.count("other/net/seed-0") == 1, unmatched


def test_the_run_table_does_not_call_a_paused_run_finished(paused_degradation_report):
    # Every published run is paused; its summary's time is when its last session ended.
    parser = _Tables()
    parser.feed(render_html(paused_degradation_report))
    (runs,) = [t for t in parser.cleaned() if t[0][0] == "run"]
    assert "last session ended" in runs[0] and "finished" not in runs[0]
    assert {r[1] for r in runs[1:]} == {"paused"}


def test_the_scoreboard_spells_out_its_short_metric_labels(published_page):
    # "test error @90" and "train loss" were explained only under each study's tables.
    html = published_page
    glance = _text(html[html.index('id="glance"') : html.index('id="claims"')])
    assert "test error @90: test error at epoch 90" in glance
    assert "train loss: training loss (final epoch)" in glance


def test_models_with_nothing_run_list_each_claim_once(tmp_path):
    # degradation and shortcuts both declare Park's ResNet-56 claims: they were listed twice.
    (tmp_path / "empty").mkdir()
    report = report_for(sorted((ROOT / "studies").glob("*.yaml")), tmp_path / "empty")
    (resnet56,) = [m for m in report.scoreboard.waiting if m.model == "ResNet-56"]
    assert resnet56.claims.count("Yoonjeong Park: test error 28.5%") == 1
    assert all(len(m.claims) == len(set(m.claims)) for m in report.scoreboard.waiting)
    assert {"degradation", "shortcuts"} <= set(resnet56.studies)
    html = render_html(report)
    assert "<strong>smoke: nothing run yet</strong>:" in html  # no headline, no stray space


def test_claims_of_paused_runs_read_under_way_wherever_the_page_lists_outcomes(
    paused_report, paused_page
):
    # The six published runs, paused at 138 to 145 of 164 epochs: their claims read "not yet
    # run", as if nothing had started, with a progress line under them that said otherwise.
    report = paused_report
    heads = {h.kind: h.text for h in report.headlines}
    assert heads["accuracy"] == ("accuracy 1/12 tested: 1 better than claimed on non-official "
                                 "data; 4 under way")  # fmt: skip
    lines = [line for row in report.scoreboard.rows for cell in row.cells for line in cell]
    under_way = [line for line in lines if line.verdict == V.UNDER_WAY]
    assert len(under_way) == 4  # Tseng's and Park's test errors of plain-20 and ResNet-20
    # Still where each stands and on what data: the runs train on the JPEG copy.
    assert all(line.progress.endswith(f"(paused) {V.ON_NONOFFICIAL_DATA}: not counted")
               for line in under_way)  # fmt: skip
    assert all(not line.progress for line in lines if line.verdict == V.NOT_RUN)
    # Every ordering pairs a 20-layer net with a deeper one that has not started: not yet
    # run, and the panel names the net that is under way.
    orderings = report.scoreboard.orderings
    assert {o.verdict for o in orderings} == {V.NOT_RUN}
    assert {o.note for o in orderings} == {"", "plain-20 under way", "ResNet-20 under way"}
    html = paused_page
    board = html[html.index('id="scoreboard"') : html.index("</aside>")]
    assert board.count('<a class="score t-under-way"') == 4
    assert board.count('<span class="verdict v-under-way">under way</span>') == 4
    text = _text(board)
    assert "\u201cunder way\u201d and a dotted edge: no verdict yet" in text
    assert "\u201cnot yet run\u201d: no run that may count has started" in text
    assert "not yet run (plain-20 under way)" in text
    assert ".t-under-way { border-color: var(--going) !important; border-left-style: dotted" \
        in html  # fmt: skip
    start = html.index('id="rules"')
    rules = _text(html[start : html.index("<details", start)])
    assert (
        "A claim with no counted run is \u201cunder way\u201d while a run that may still "
        "count is paused, running or interrupted, else \u201cnot yet run\u201d"
    ) in rules
    claims = _text(html[html.index('id="claims"') : html.index('id="rules"')])
    assert claims.count("under way : tseng-") == 2 and claims.count("under way : park-") == 2
    table = claims_frame(report)
    assert (table.verdict == V.UNDER_WAY).sum() == 4


def test_the_orderings_panel_says_under_way_once(verdict_store):
    # "under way (runs under way)" would say it twice: the progress is the verdict's tooltip.
    study, path, results = verdict_store
    report = build([(study, str(path))], scan(results), str(results))
    (line,) = [o for o in report.scoreboard.orderings if o.verdict == V.UNDER_WAY]
    assert line.note == "" and line.progress.startswith("under way, not counted: never at")
    html = render_html(report)
    panel = html[html.index('id="orderings-panel"') : html.index("</aside>")]
    assert f'<span class="verdict v-under-way" title="{line.progress}">under way</span>' in panel


def test_a_verdict_on_a_copy_is_marked_by_more_than_its_colour(paused_page):
    # The released weights' "not reproduced on non-official data" had the same solid red edge
    # as a failed reproduction on the official data; a "not yet run" line said n=0.
    html = paused_page
    board = html[html.index('id="scoreboard"') : html.index('id="orderings-panel"')]
    copies = re.findall(r'<a class="score t-not-reproduced copy"', board)
    assert len(copies) == 4  # the four released ResNets, evaluated on the JPEG copy
    assert 'title="not reproduced on non-official data: does not say whether' in board
    assert "a dashed edge" in _text(html) and "border-left-style: dashed" in html
    # n=1: the four released ResNets, and Park's test error after epoch 90 of ResNet-20,
    # which the run paused at epoch 145 has recorded
    assert "n=0" not in board and board.count("n=1") == 5


def test_figures_name_the_source_as_the_tables_cite_it(degradation_report):
    report = degradation_report
    titles = [f.title for f in report.studies[0].figures]
    assert "degradation, experiments following Wen-Jie Tseng 2018: plain versus residual" in titles
    assert not [t for t in titles if "tseng2018" in t or "he2015" in t]
    drawn = [f.plot.texts[0].get_text() for f in report.studies[0].figures if f.plot.texts]
    assert "degradation, experiments following He et al. 2015" in drawn


def test_the_data_banner_says_not_to_read_a_copy_against_the_sources(degradation_report):
    # It said accuracies on the copy "can differ"; the JPEG copy costs about ten points.
    text = _text(render_html(degradation_report))
    assert "Do not read their errors against the sources' figures: the offline JPEG copy" in text
    assert "can differ" not in text
    assert "where unfinished runs on it stand, are marked \u201con non-official data\u201d" in text


def test_a_scoreboard_of_many_sources_takes_the_page_s_width(
    catalogue_unrun_report, catalogue_unrun_page, published_page
):
    # Eight sources beside the orderings panel scrolled sideways at a laptop's width, with the
    # wide-net rows' claims out of sight and their visible cells empty.
    many = catalogue_unrun_page
    assert len(catalogue_unrun_report.scoreboard.sources) > 3
    assert '<div class="glance wide">' in many and 'class="scoreboard wide"' in many
    few = published_page
    assert '<div class="glance">' in few and 'class="scoreboard"' in few


def test_a_scoreboard_line_says_a_claim_s_rule_where_it_is_not_one_run(verdict_store, tmp_path):
    # He et al.'s ResNet-110 is 6.43% (best of 5) and 6.61% (mean of 5): two lines that read
    # "test error 6.43%" and "test error 6.61%" on one model, with nothing to tell them apart.
    study, path, results = verdict_store
    report = build([(study, str(path))], scan(results), str(results))
    five = {c.anchor for c in report.studies[0].values if c.experiment == "five"}
    claimed = [line.claimed for row in report.scoreboard.rows for cell in row.cells
               for line in cell if line.anchor in five]  # fmt: skip
    assert sorted(claimed) == ["6.43% (best of 5)", "6.61% (mean of 5)"]
    (tmp_path / "empty").mkdir()
    waiting = report_for([ROOT / "studies" / "he2015_table6.yaml"], tmp_path / "empty")
    (resnet110,) = [m for m in waiting.scoreboard.waiting if m.model == "ResNet-110"]
    assert resnet110.claims == ["He et al. 2015: test error 6.43% (best of 5)",
                                "He et al. 2015: test error 6.61% (mean of 5)"]  # fmt: skip
    same = next(line for row in report.scoreboard.rows for cell in row.cells for line in cell
                if line.anchor == claim_rows(report)[("value", "same")].anchor)  # fmt: skip
    assert same.claimed == "8.75%"  # a single run says nothing more


def test_a_run_on_part_of_the_test_set_says_so_beside_its_test_error(tmp_path):
    # A smoke run's 45.20% stood in the run table's test error column with nothing to say
    # that it is on 1,000 test images (after 2,000 training images), not CIFAR-10's 10,000.
    study = load_study(ROOT / "studies" / "smoke.yaml")
    images = {
        "resnet8": {"train_images": 2000, "validation_images": 500, "test_images": 1000},
        "plain8": {"train_images": 45000, "validation_images": 5000, "test_images": 10000},
        "wrn-10-1-dropout": {"train_images": 2000, "validation_images": 0, "test_images": 10000},
    }
    for name, used in images.items():
        run = fake_run(tmp_path, study, name, test_error=45.2)
        summary = json.loads((run / "summary.json").read_text())
        _update(run / "summary.json", data={**summary["data"], **used})
    table = _TableRows()
    table.feed(render_html(report_for([ROOT / "studies" / "smoke.yaml"], tmp_path)))
    header = next(r for r in table.rows if r and r[0].strip() == "run")
    column = [" ".join(c.split()) for c in header].index("test error")
    assert table.row("smoke/resnet8/seed-0")[column] == (
        "45.20% on 1,000 test images, trained on 2,000"
    )
    assert table.row("smoke/plain8/seed-0")[column] == "45.20%"  # all of it, less validation
    assert table.row("smoke/wrn-10-1-dropout/seed-0")[column] == ("45.20% trained on 2,000 images")


def test_an_ordering_claim_of_a_source_that_is_no_publication_stays_out_of_the_panel(tmp_path):
    # The harness's own orderings (a source with publication: false) are listed in the study's
    # section only; the panel pairs each published row with its own claim, not by position.
    path = tmp_path / "own.yaml"
    path.write_text(
        "name: own\ndescription: an own ordering before a published one\n"
        "sources:\n  ours: {title: our own check, authors: repro, publication: false}\n"
        "  paper: {title: A paper, authors: Someone, year: 2016}\n"
        "seeds: 1\nrecipes:\n  base:\n"
        "    optimizer: {lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4}\n"
        "    batch_size: 128\n    epochs: 2\n    normalization: {kind: per_channel}\n"
        "experiments:\n"
        "  - {name: a20, model: resnet20, recipe: base, follows: paper}\n"
        "  - {name: a32, model: resnet32, recipe: base, follows: paper}\n"
        "  - {name: p20, model: plain20, recipe: base, follows: paper}\n"
        "claims:\n"
        "  - {kind: ordering, source: ours, where: here, statement: ours, metric: test_error,\n"
        "     experiments: [p20, a20], direction: decreasing}\n"
        "  - {kind: ordering, source: paper, where: Fig. 1, statement: deeper is better,\n"
        "     metric: test_error, experiments: [a20, a32], direction: decreasing}\n"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    (s,) = report_for([path], empty).studies
    assert [line.chain for line in s.ordering_lines] == ["ResNet-20 > ResNet-32"]
    assert len(s.orderings) == 2


def test_a_paused_run_that_can_never_count_is_not_said_to_be_under_way(tmp_path):
    # The smoke study trains on a subset: its paused run is listed with why it never counts,
    # not as a run that "no verdict uses yet".
    study = load_study(ROOT / "studies" / "smoke.yaml")
    fake_run(tmp_path, study, "resnet8", status="paused")
    report = report_for([ROOT / "studies" / "smoke.yaml"], tmp_path)
    runs = next(e for e in report.evidence if e.what == "Runs")
    assert runs.text == ("1 run of 1 experiment (1 random seed each), 0 counted; not counted: "
                         "1 paused on a subset (smoke study)")  # fmt: skip
    assert runs.caveat == ""
    (paused,) = [r for r in report.studies[0].runs if r.status == "paused"]
    assert not paused.under_way and not paused.counted


def test_a_run_that_counts_at_one_epoch_is_not_called_uncounted_anywhere(paused_degradation_report):
    # Park's ResNet-20, paused at epoch 145 of 164, decides Park's test error after epoch 90
    # (n=1), yet that claim's own row said "1 run not counted: paused", the run table
    # "counted: no", the study "0 counted runs", its curve "not counted: paused", and the
    # rules "unfinished runs are listed, never counted".
    report = paused_degradation_report
    (study,) = report.studies
    (row,) = [c for c in study.values
              if c.experiment == "park-resnet20" and c.short_metric == "test error @90"]  # fmt: skip
    assert row.n == 1 and row.verdict == f"{V.BETTER} {V.ON_NONOFFICIAL_DATA}"
    assert not [n for n in row.notes if "not counted" in n], row.notes
    # one run "has" recorded it ("1 ... run counted: each has" spoke of several)
    assert "1 unfinished (paused) run counted: it has recorded epoch 90" in row.notes[-1]
    # The final-epoch claim of the same run still says it does not count there.
    (final,) = [c for c in study.values
                if c.experiment == "park-resnet20" and c.short_metric == "test error"]  # fmt: skip
    assert "1 run not counted: paused" in final.notes
    html = render_html(report)
    parser = _Tables()
    parser.feed(html)
    (runs,) = [t for t in parser.cleaned() if t[0][0] == "run"]
    counted = {r[0]: r[2] for r in runs[1:]}
    assert counted["degradation/park-resnet20/seed-0"] == (
        "for the test error at epoch 90 only paused"
    )
    assert counted["degradation/park-plain20/seed-0"] == "no paused"
    text = _text(html)
    assert ("0 counted runs; 1 unfinished run counted only for the test error at epoch 90, "
            "which it has passed") in text  # fmt: skip
    # The rules, in short and in full, say so as well.
    assert "Failed, unfinished, stale and override runs are listed, never counted" not in text
    assert "for a test error claimed at one epoch, unfinished runs that have recorded" in text
    # And the curve of the run that counts there is labelled as such, with the caption's key.
    (figure,) = [f for f in study.figures
                 if f.title.endswith("Yoonjeong Park: training loss and test error")]  # fmt: skip
    labels = figure.plot.legends[0].get_texts()
    assert "park-resnet20 (paused: counted only at epoch 90)" in [t.get_text() for t in labels]
    assert "park-plain20 (not counted: paused)" in [t.get_text() for t in labels]
    assert "\u201ccounted only at epoch N\u201d is unfinished but has passed" in figure.caption


def test_a_figure_of_runs_on_a_copy_says_so_beside_the_claims_it_draws(
    degradation_report, tmp_path
):
    # The curves of runs on the JPEG copy were drawn beside the sources' claimed values with
    # nothing in the caption or the alt text about the data: a figure is often read alone.
    report = degradation_report
    figures = [f for f in report.studies[0].figures if "learning-rate" not in f.title]
    assert len(figures) == 6
    for f in figures:
        assert f.caption.startswith("Both runs drawn trained and were tested on a copy of "
                                    "CIFAR-10 that is not the official release (data "
                                    "ccecff3e0fe7): their errors are not those of the "
                                    "official data"), f.caption  # fmt: skip
        assert "(data ccecff3e0fe7): their errors are not those of the official data" in f.alt
    claimed = [f for f in figures if "Dash-dot lines" in f.caption]
    assert len(claimed) == 4  # Tseng's and Park's: He et al.'s figure claims no value
    assert all("not to be read against the sources' claimed values" in f.caption
               for f in claimed)  # fmt: skip
    # Runs on the official release: nothing said.
    path = tiny_study(
        tmp_path / "official.yaml", "  - {name: net, model: resnet20, recipe: base}\n"
    )
    study, results = load_study(path), tmp_path / "results"
    fake_run(results, study, "net", test_error=8.0)
    (official,) = build([(study, str(path))], scan(results), str(results)).studies
    assert official.figures and not [f for f in official.figures
                                     if "not the official release" in f.caption + f.alt]  # fmt: skip


def test_how_to_read_the_curves_is_said_once_above_them_not_under_each(paused_page):
    # Each of the six curve figures repeated the same key (bands, colours and markers,
    # dash-dot claims, fitted axes, greyed runs, the planned last epoch) under its own data
    # warning: about 900 characters a caption, 17 lines each on a phone. The key is said once
    # above a study's figures; each caption keeps what is its own, its data first.
    captions = [_text(c) for c in re.findall(r"<figcaption>(.*?)</figcaption>", paused_page,
                                             re.S)]  # fmt: skip
    assert len(captions) == 7
    text = _text(paused_page)
    for sentence in ("Each net has its own colour and marker", "Dash-dot lines are the values",
                     "Greyed lines with hollow markers", "unfinished but has passed that epoch",
                     "The epoch axis runs to the planned last epoch",
                     "is a triangle at the edge it lies beyond"):  # fmt: skip
        assert text.count(sentence) == 1, sentence  # the degradation study's key, once
        assert not any(sentence in c for c in captions), sentence
    assert text.index("Reading the curves") < text.index(captions[0])
    assert all(len(c) < 600 for c in captions), [len(c) for c in captions]
    assert all("not the official release" in c for c in captions[:6])


def test_a_command_or_a_time_breaks_between_its_words_never_at_their_hyphens(published_page):
    # At 1400 px the copy's table broke its command as "repro evaluate ... -" over
    # "-data-dir /tmp/...", which reads as two options, and its times as "2026-11-" over
    # "26T08:16:43+00:00". Each word is a box a line breaks around (inside it only where the
    # word alone is wider than the line, as a long path on a phone).
    assert ('<code class="path"><span class="word">repro</span> <span class="word">evaluate'
            "</span> <span class=\"word\">studies/checkpoints.yaml</span> "
            '<span class="word">--data-dir</span>') in published_page  # fmt: skip
    assert '<span class="time">2026-11-26T08:16:43+00:00</span>' in published_page
    assert re.search(r"\.word \{[^}]*display: inline-block", published_page)
    assert re.search(r"\.time \{[^}]*white-space: nowrap", published_page)
    assert str(_words("a  b-c <d>")) == (
        '<span class="word">a</span> <span class="word">b-c</span> '
        '<span class="word">&lt;d&gt;</span>')  # fmt: skip


def test_the_list_of_claims_says_ours_never_reproduced_beside_a_verdict(paused_page):
    # "not reproduced on non-official data: akamaster-resnet20, test error claimed 8.27%
    # (single run), reproduced 18.97% (single run)" said reproduced and not reproduced in one
    # line, and a claim with nothing counted read "reproduced –". Ours, as the scoreboard says
    # ("the source's claim → ours"), and nothing where nothing counts.
    text = _text(paused_page)
    assert ("not reproduced on non-official data : akamaster-resnet20, test error claimed 8.27% "
            "(single run), ours 18.97% (single run)") in text  # fmt: skip
    nothing = "under way : tseng-resnet20, test error (final epoch) claimed 8.51% (single run) "
    assert nothing in text
    assert ", reproduced" not in text


def test_the_banner_says_on_what_the_copy_s_cost_was_measured(published_page, tmp_path):
    # "The offline JPEG copy costs about ten points of test error (measured 10.35 points on
    # released checkpoints)" stood over six runs trained on the copy as well, whose ResNet-20
    # is 4 points off the sources' 8.51% (12.59%): the ten points are what the copy costs
    # weights trained on the official release, which is not what it costs these runs.
    banner = _text(published_page)
    assert ("the offline JPEG copy costs released checkpoints, trained on the official release, "
            "about ten points of test error (10.35 points on average, see Provenance )") in banner  # fmt: skip
    assert "; what it costs a net trained on the copy as well is not measured here." in banner
    # Released weights alone: nothing trained, nothing to say of training on the copy.
    weights = tmp_path / "weights"
    shutil.copytree(EVALUATIONS, weights)
    alone = _text(render_html(report_for([CHECKPOINTS], weights)))
    assert "about ten points of test error (10.35 points on average, see Provenance )" in alone
    assert "trained on the copy as well" not in alone


def test_code_spans_are_code_on_the_page_not_backticks(published_store):
    # The rules printed "`pool_executions: true`" and the checkpoints study "by `repro
    # evaluate`", backticks and all: Markdown that the page never rendered.
    html = render_html(report_for([DEGRADATION, CHECKPOINTS], published_store, show_unrun=True))
    assert "`" not in _text(html)
    assert "<code>pool_executions: true</code>" in html
    assert "<code>counts: without_batchnorm</code>" in html
    assert "evaluated on the CIFAR-10 test set by <code>repro evaluate</code> (no training)" in html
    # A note of a study's recipe, too, and still escaped: no markup of the study's own.
    preact = render_html(report_for([ROOT / "studies" / "preact_wide.yaml"], published_store,
                                    show_unrun=True))  # fmt: skip
    assert "runs <code>-batchSize 64 -nGPU 2</code>, batch norm" in preact
    assert "`" not in _text(preact)
    from harness.report import _code_spans

    assert str(_code_spans("a `<b>` & `c`")) == "a <code>&lt;b&gt;</code> &amp; <code>c</code>"
    assert str(_code_spans("one ` alone <i>")) == "one ` alone &lt;i&gt;"
    # Quotation marks outside the spans are typographic, one around a span closing after it.
    assert str(_code_spans('run "`repro x`" as "is"')) == (
        "run \u201c<code>repro x</code>\u201d as \u201cis\u201d"
    )
    assert str(_code_spans('`a "b"`')) == "<code>a &#34;b&#34;</code>"  # code keeps its own


def test_each_scoreboard_cell_names_its_source_for_a_phone(published_report, published_page):
    # On a phone the cells stack under their model: each says whose claims it holds, and an
    # empty one is left out instead of standing as a blank under the model's name.
    report = published_report
    html = published_page
    board = html[
        html.index('id="scoreboard"') : html.index("</table>", html.index('id="scoreboard"'))
    ]
    cells = re.findall(r'<td data-source="([^"]*)"( class="no-claims")?>', board)
    sources = report.scoreboard.sources
    assert len(cells) == len(report.scoreboard.rows) * len(sources)
    for row, start in zip(report.scoreboard.rows, range(0, len(cells), len(sources)), strict=True):
        mine = cells[start : start + len(sources)]
        assert [c[0] for c in mine] == sources
        assert [bool(c[1]) for c in mine] == [not cell for cell in row.cells]
    css = html[html.index("@media (max-width: 600px)") :]
    assert "table.scoreboard td::before { content: attr(data-source)" in css
    # A class of its own: the page's "empty" box (nothing run yet) drew every empty cell of
    # the board at a desk as a dashed grey box.
    style = html[: html.index("</style>")]
    assert style.count("no-claims") == 1 and "no-claims" in css[: css.index("\n  }")]
    assert "table.scoreboard tr.sources, table.scoreboard td.no-claims { display: none; }" in css


def test_a_tolerance_is_shown_to_the_digits_it_has(published_page):
    # Released weights' tolerance, 0.035 (the claim's rounding 0.005 plus 3 test images),
    # read "± 0.03" beside a reason that said 0.035, and the range "8.23 – 8.30%" around 8.27.
    parser = _Tables()
    parser.feed(published_page)
    (weights,) = [t for t in parser.cleaned() if t[0][0] == "checkpoint" and "tolerance" in t[0]]
    header = weights[0]
    (row,) = [r for r in weights[1:] if r[0] == "akamaster-resnet20" and r[2] == "test error"]
    assert row[header.index("tolerance")] == "± 0.035"
    assert row[header.index("reproduced if within")] == "8.235 – 8.305%"
    assert "vs 0.035" in row[-1]
    # Seed noise keeps two decimals: Park's test error after epoch 90, 27.9 ± 0.57.
    (claims,) = [t for t in parser.cleaned() if t[0][:2] == ["experiment", "source"]
                 and "tolerance" in t[0]]  # fmt: skip
    (park,) = [r for r in claims[1:] if r[0] == "park-resnet20" and r[2] == "test error @90"]
    assert park[claims[0].index("tolerance")] == "± 0.57"
    assert park[claims[0].index("reproduced if within")] == "27.33 – 28.47%"


def test_provenance_names_what_the_store_holds(verdict_store, tmp_path):
    # "Runs and evaluations made between ..." over a store of runs alone (the smoke study's),
    # and "runs and evaluations" columns over one of checkpoint evaluations alone.
    study, path, results = verdict_store
    runs = _text(render_html(build([(study, str(path))], scan(results), str(results))))
    assert "Runs made between" in runs and "evaluations" not in runs[runs.index("Provenance") :]
    weights = tmp_path / "weights"
    shutil.copytree(EVALUATIONS, weights)
    alone = _text(render_html(report_for([CHECKPOINTS], weights)))
    provenance = alone[alone.index("Provenance") :]
    assert "Evaluations made between" in provenance
    assert "Software versions, with how many evaluations used each" in provenance
    assert "runs and evaluations" not in provenance


@pytest.mark.parametrize(("recorded", "shown"), [(91000, "9.10.0"), (8902, "8.9.2")])
def test_provenance_shows_cudnn_s_version_dotted_and_the_record_keeps_torch_s_integer(
    tmp_path, recorded, shown
):
    # The software table printed torch's integer, "91900" for cuDNN 9.19.0.
    path = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet20, recipe: base}\n")
    study, results = load_study(path), tmp_path / "results"
    run = fake_run(results, study, "a")
    _update(run / "environment.json", cudnn=recorded)
    parser = _Tables()
    parser.feed(render_html(report_for([path], results)))
    (software,) = [t for t in parser.cleaned() if t[0][0] == "torch"]
    assert software[1][software[0].index("cuDNN")] == shown
    assert json.loads((run / "environment.json").read_text())["cudnn"] == recorded


@pytest.mark.parametrize("copies", [("jpeg",), ("other",), ("jpeg", "other")])
def test_the_offline_jpeg_copy_s_cost_is_said_only_of_runs_on_it(tmp_path, copies):
    # The banner and the glance said "the offline JPEG copy costs ... about ten points" of
    # runs on any copy; another copy's cost is not measured, and the page says so.
    experiments = "".join(f"  - {{name: {c}, model: resnet20, recipe: base}}\n" for c in copies)
    path = tiny_study(tmp_path / "s.yaml", experiments)
    study, results = load_study(path), tmp_path / "results"
    for c in copies:
        fake_run(results, study, c, official=False,
                 fingerprint=V.JPEG_COPY_FINGERPRINT if c == "jpeg" else "d" * 64)  # fmt: skip
    text = _text(render_html(report_for([path], results)))
    banner = text.split("Non-official data.")[1].split("At a glance")[0]
    data = text.split("Data: ")[1].split(" . ")[0]
    jpeg = "the offline JPEG copy costs released checkpoints, trained on the official release, " \
        "about ten points of test error"  # fmt: skip
    other = "what the copy {}costs against the official release is not measured"
    if copies == ("jpeg",):
        assert f"{jpeg}; what it costs a net trained on the copy as well is not measured" in banner
        assert "(the offline JPEG copy costs released weights about ten points" in data
    elif copies == ("other",):
        assert f"figures: {other.format('')}. Verdicts" in banner and "JPEG" not in banner
        assert f"({other.format('')})" in data and "JPEG" not in data
    else:
        assert (f"{jpeg}; {other.format('dddddddddddd ')}; what a copy costs a net trained on "
                "it as well is not measured here") in banner  # fmt: skip
        assert ("(the offline JPEG copy costs released weights about ten points of test error; "
                f"{other.format('dddddddddddd ')})") in data  # fmt: skip


def test_the_banner_does_not_call_the_copy_s_cost_measured_where_half_is_the_source_s(
    published_store,
):
    # The published cost compares our errors on the copy with the sources' stated figures on
    # the official release: an average of those differences, not a measurement of both.
    report = report_for([CHECKPOINTS], published_store)
    kinds = {c["reference_kind"] for c in report.provenance.copy_penalty}
    assert kinds == {"the source's stated figure"}
    banner = _text(render_html(report)).split("Non-official data.")[1].split("At a glance")[0]
    assert "(measured" not in banner and "(10.35 points on average, see Provenance )" in banner


# --- figures: printed type, names that never break at their hyphens (branch figures) ---


def test_printed_figures_keep_their_type_at_7_pt_or_more(published_page, tmp_path):
    """Printed, the page shrinks each desk figure (10 inches, 960 CSS pixels) to a sheet's
    printable width (about 700 CSS pixels, A4 or Letter less the browser's margins): its
    7 pt legend and notes printed at about 5 pt. Every text of every figure, as laid out for
    a printer, is 7 pt (9.33 CSS pixels) or more."""
    out = tmp_path / "report.html"
    out.write_text(published_page)
    figures = _browse(out, 700, printed=True)["figures"]
    assert len(figures) == 7, figures
    seven_pt = 7 * 96 / 72
    assert all(f["text"] >= seven_pt and f["legend"] >= seven_pt for f in figures), figures


def test_names_in_the_tables_never_break_at_their_hyphens(published_page):
    """In the claims table's first column, a few words wide at 1400 px, a browser broke
    "tseng-resnet110" as "tseng-" over "resnet110", and on a phone an ordering's chain and a
    model's name ("ResNet-110" as "ResNet-" over "110"): two names to a reader. Each word of a
    name with a hyphen is a box no line breaks inside (.name), the text still breaking at its
    spaces; the tables still stack or fit (the desk's and phone's browser tests)."""
    from harness.report.filters import _code_spans, _names

    assert re.search(r"\.name \{[^}]*white-space: nowrap", published_page)
    assert str(_names("ResNet-110 (bottleneck) < he-plain20 at a/b-c <x>")) == (
        '<span class="name">ResNet-110</span> (bottleneck) &lt; <span class="name">he-plain20'
        "</span> at a/b-c &lt;x&gt;"
    )
    assert str(_code_spans("for he-plain20 (`--data-dir x`)", names=True)) == (
        'for <span class="name">he-plain20</span> (<code>--data-dir x</code>)'
    )
    # Every name cell of every table (the experiments, models, checkpoints, orderings; not a
    # source's quoted words, a path or a device) and every verdict's reason.
    cells = re.findall(
        r'<(?:td class="title"|th scope="row"|td data-label="(?:ordering|model)"|div class="why")>'
        r"(?!<code|\u201c)(.*?)</(?:td|th|div)>",
        published_page,
        re.S,
    )
    assert len(cells) > 60, len(cells)
    for cell in cells:
        text = re.sub(r'<span class="name">[^<]*</span>|<code>[^<]*</code>', "", cell)
        text = re.sub(r"<div.*", "", text, flags=re.S)  # the notes under a name
        assert not re.search(r"\w-\w", text), cell


# --------------------------------------------------------------------------- what the page counts
# (reportcounts) Each count on the page is of the studies it reports: the store's runs and
# evaluations of other studies are only counted apart.


def test_the_copy_notice_and_provenance_count_only_the_studies_reported(
    published_store, degradation_report
):
    # Over the published store (six degradation runs, four checkpoint evaluations, all on the
    # JPEG copy), the checkpoints page said "6 runs and 4 checkpoint evaluations used a copy"
    # and its provenance counted six runs on an H100 it does not show, and the degradation
    # page said "and 4 checkpoint evaluations" of weights it does not show.
    weights = report_for([CHECKPOINTS], published_store)
    assert (weights.nonofficial_runs, weights.nonofficial_evaluations) == (0, 4)
    text = _text(render_html(weights))
    banner = text.split("Non-official data.")[1].split("Do not read")[0]
    assert banner.startswith(" 4 checkpoint evaluations used a copy of CIFAR-10"), banner
    provenance = text[text.index("Provenance Evaluations made between") :]
    assert "runs and evaluations" not in provenance and "H100" not in provenance
    assert [(d["runs"], d["evaluations"]) for d in weights.provenance.datasets] == [(0, 4)]
    assert "6 run directories found, 0 of them of the studies in this report" in text
    runs = degradation_report
    assert (runs.nonofficial_runs, runs.nonofficial_evaluations) == (6, 0)
    banner = _text(render_html(runs)).split("Non-official data.")[1].split("Do not read")[0]
    assert banner.strip().startswith("6 runs used a copy of CIFAR-10"), banner
    assert "checkpoint evaluation" not in banner
    assert [(d["runs"], d["evaluations"]) for d in runs.provenance.datasets] == [(6, 0)]
    assert "CPU (x86_64" not in str(runs.provenance.devices)


def test_a_claim_s_where_quotes_its_source_as_the_page_quotes_statements(
    published_report, published_page
):
    # Park's epoch-90 claims are cited at Figure 4 ("90.pth") in the study file; the page
    # printed those straight marks beside statements it quotes in typographic ones.
    text = _text(published_page)
    assert "Yoonjeong Park, Figure 4 (\u201c90.pth\u201d)" in text
    assert 'Figure 4 ("90.pth")' not in text
    assert "the figure, where \u201cbold lines denote testing error\u201d: plain-56" in text
    # So are the notes copied from the study file (a claim's, an experiment's, a recipe's)
    # and the figures' alt text, which kept the file's straight marks.
    assert "deep plain nets \u201cexhibit higher training error when going deeper\u201d" in text
    assert "both \u201c163 epochs\u201d and \u201c90.pth\u201d" in text
    alts = re.findall(r'alt="([^"]*)"', published_page)
    assert any("(Figure 4 (\u201c90.pth\u201d))" in a for a in alts), alts
    words = re.sub(r"<style.*?</style>", "", published_page, flags=re.S)
    assert "&#34;" not in words and "&quot;" not in words
    # The claim table keeps the study file's words: `repro compare` matches older tables on them.
    frame = claims_frame(published_report)
    assert 'Figure 4 ("90.pth")' in set(frame["where"])
    assert not frame["where"].str.contains("\u201c").any()


def test_provenance_says_none_of_the_studies_reported_where_only_others_ran(tmp_path):
    # The released-weights study over a store of the degradation runs alone: its provenance
    # listed the six H100 runs; counting only the studies reported, it would have said "No
    # runs yet" under a line that counts 6 run directories.
    store = tmp_path / "store"
    shutil.copytree(PUBLISHED / "degradation-20" / "store", store)
    text = _text(render_html(report_for([CHECKPOINTS], store)))
    assert "6 run directories found, 0 of them of the studies in this report" in text
    provenance = text[text.index("Provenance") :]
    assert provenance.startswith(
        "Provenance No runs or evaluations of the studies in this report yet, so no data, "
        "software or device to report."
    ), provenance[:300]
    assert "H100" not in provenance and "Non-official data" not in text


# --- GPU time as each run's share of its GPU (branch gputime) ---


def _epoch_telemetry(seconds: float, processes: float | None, gpu_energy_j: float = 100.0) -> dict:
    """One epoch's NVML readings as harness.telemetry recorded them before branch energy: the
    whole GPU's energy as the run's where NVML listed no processes."""
    return {"seconds": seconds, "gpu_energy_j": gpu_energy_j, "gpu_processes_mean": processes,
            "energy_j": gpu_energy_j / (processes or 1),
            "gpu_processes_max": None if processes is None else round(processes)}  # fmt: skip


def test_gpu_time_counts_each_runs_share_of_a_shared_gpu(tmp_path):
    """Two runs that shared one GPU for 4 x 90 s each were 360 s of GPU time, not 720 (each
    records its own clock); a solo run counts whole; a run placed beside others whose epochs
    counted no processes is said apart, never guessed into the total. Summing each run's own
    clock read 0.40 h here. Energy is shared out alike (27 kJ an epoch: 300 W for 90 s): the
    crowded run's whole-GPU 108 kJ is an upper bound said apart, not its energy, as the store
    written before branch energy had it (0.090 kWh in all)."""
    path = tiny_study(tmp_path / "speeds.yaml", SPEED_STUDY, name="speeds", recipe=FOUR_EPOCHS)
    study = load_study(path)
    results = tmp_path / "results"
    for seed in (0, 1):
        run = fake_run(results, study, "shared", seed, device=H100,
                       telemetry=_epoch_telemetry(90.0, 2.0, 27000.0))  # fmt: skip
        _update(run / "environment.json", device_shared_by=2)
        _update(run / "summary.json", telemetry={"gpu_seconds": 360.0, "energy_j": 54000.0})
    for seed, placed in ((0, 1), (1, 3)):
        run = fake_run(results, study, "solo", seed, device=H100,
                       telemetry=_epoch_telemetry(90.0, None, 27000.0))  # fmt: skip
        _update(run / "environment.json", device_shared_by=placed)
        _update(run / "summary.json", telemetry={"gpu_seconds": 360.0, "energy_j": 108000.0})
    report = build([(study, str(path))], scan(results), str(results))
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", render_html(report))).split())
    assert ("GPU time and energy of this study's runs, those still running included, each "
            "run's share of its GPU (its wall time and the GPU's energy over the processes "
            "computing on the GPU beside it and its fused group's size): 0.20 h (0.40 h if each "
            "run's own clock were added up: runs shared GPUs) and 0.060 kWh; 0.10 h of wall "
            "time not counted, of runs that shared a GPU with an unrecorded number of others "
            "(their share unknown), nor their energy, at most 0.030 kWh (the whole GPU's while "
            "each ran).") in text  # fmt: skip
    s = report.studies[0]
    assert (s.gpu_seconds, s.gpu_unknown_seconds, s.gpu_clock_seconds) == (720.0, 360.0, 1440.0)
    assert (s.energy_kj, s.energy_unknown_kj) == (216.0, 108.0)


def test_gpu_time_of_a_fused_group_is_shared_among_its_members(tmp_path):
    """A fused group is one process on the GPU: each member's epochs count over its size."""
    from harness.timings import device_time

    epochs = [{"epoch": e, "telemetry": {**_epoch_telemetry(60.0, 1.0), "fused_members": 3}}
              for e in (1, 2)]  # fmt: skip
    assert device_time(epochs, {"fused": 3}, None).share == pytest.approx(40.0)
    # No processes counted, placed alone: the group had the GPU, the member a third of it.
    for e in epochs:
        e["telemetry"]["gpu_processes_mean"] = None
    assert device_time(epochs, {"fused": 3}, None).share == pytest.approx(40.0)
    # A hand-edited count is no count: unrecorded, not a crash of the report.
    epochs[0]["telemetry"].update(gpu_processes_mean="six", fused_members=True)
    assert device_time(epochs, {}, None).share == pytest.approx(80.0)


# --- energy where a run shared its GPU (branch energy) ---


NO_SPEED_CLAIM = "  - {name: net, model: resnet20, recipe: base}\n"


def _report_of_gpu_runs(tmp_path, experiment: str, statuses: tuple[str, ...],
                        experiments: str = SPEED_STUDY):  # fmt: skip
    """The report of a study (``experiments``) with one run of ``experiment`` per status (seeds
    0, 1, ...), each epoch 90 s on an H100 and 12 kJ of the GPU's energy, NVML listing no
    processes."""
    path = tiny_study(tmp_path / "speeds.yaml", experiments, name="speeds", recipe=FOUR_EPOCHS)
    study = load_study(path)
    results = tmp_path / "results"
    for seed, status in enumerate(statuses):
        fake_run(results, study, experiment, seed, device=H100, status=status,
                 telemetry=_epoch_telemetry(90.0, None, 12000.0))  # fmt: skip
    return build([(study, str(path))], scan(results), str(results))


def test_energy_counts_the_same_runs_as_gpu_time(tmp_path):
    """A run still running has its epochs' telemetry but no summary yet: GPU time counted its
    two epochs and energy did not (0.013 kWh, the ended run's alone). Both count it now."""
    report = _report_of_gpu_runs(tmp_path, "solo", ("complete", "running"))
    s = report.studies[0]
    assert s.gpu_seconds == 540.0 and s.energy_kj == 72.0  # 4 + 2 epochs of each
    text = _text(render_html(report))
    assert ("GPU time and energy of this study's runs, those still running included, each "
            "run's share of its GPU (its wall time and the GPU's energy over the processes "
            "computing on the GPU beside it and its fused group's size): 0.15 h and "
            "0.020 kWh.") in text  # fmt: skip


def test_energy_of_an_unknown_share_is_bounded_by_the_gpus_over_a_fused_group():
    """A fused group of 3 placed beside another worker, NVML listing no processes: the member's
    share is unknown, and at most a third of the GPU's energy (the group's, at most the GPU's,
    shared equally among its members); energy recorded before processes were counted (no
    gpu_energy_j) was the whole GPU's."""
    from harness.timings import device_time

    epoch = {"seconds": 60.0, "energy_j": None, "gpu_energy_j": 900.0, "fused_members": 3}
    counted = device_time([{"telemetry": epoch}], {"device_shared_by": 2, "fused": 3}, None)
    assert (counted.share, counted.unknown, counted.energy_j) == (0.0, 60.0, 0.0)
    assert counted.energy_unknown_j == 300.0
    old = {"seconds": 60.0, "energy_j": 900.0}
    assert device_time([{"telemetry": old}], {}, None).energy_j == 900.0


def test_gpu_time_of_runs_all_under_way_is_shown_without_a_speed_table(tmp_path):
    """The published degradation study's six runs, paused on an H100 at 138 to 145 of 164
    epochs, had cost GPU time and energy, but the page said nothing of either: the sentence
    lived in the Speed section, shown only with a speed table (complete runs) or a speed
    claim. It is shown for the GPU time alone now, saying why no seconds per epoch yet."""
    report = _report_of_gpu_runs(tmp_path, "net", ("paused", "running"), NO_SPEED_CLAIM)
    assert report.studies[0].speeds == [] and not report.studies[0].speed_claims
    text = _text(render_html(report))
    assert " Speed No seconds per epoch yet: a run's are shown once it has completed and " \
        "counts (a run paused or still running has not timed a whole run). GPU time and " \
        "energy of this study's runs, those still running included" in text  # fmt: skip
    # A study with no GPU telemetry at all still has no Speed section.
    study = load_study(tmp_path / "speeds.yaml")
    fake_run(tmp_path / "cpu", study, "net", 0, status="paused")
    report = build([(study, str(tmp_path / "speeds.yaml"))], scan(tmp_path / "cpu"),
                   str(tmp_path / "cpu"))  # fmt: skip
    assert " Speed " not in _text(render_html(report))


def test_a_run_paused_on_the_jpeg_copy_and_resumed_on_the_official_release_is_said_of_it(
    tmp_path,
):
    # Its summary's data is the latest session's, the official release's: the page asked what
    # "the copy" (the official release's arrays) costs, and never named the JPEG copy the run
    # trained its first epochs on.
    from harness import store

    path = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet20, recipe: base}\n")
    study, results = load_study(path), tmp_path / "results"
    run = fake_run(results, study, "a")
    summary = store.read_json(run / store.SUMMARY)
    first = {**summary["sessions"][0], "official": False,
             "dataset_fingerprint": V.JPEG_COPY_FINGERPRINT}  # fmt: skip
    summary["sessions"] = [first, {**first, "official": True, "dataset_fingerprint": "f" * 64}]
    store.write_json(run / store.SUMMARY, summary)
    text = _text(render_html(report_for([path], results)))
    assert "mixed data: not the official release" in text
    data = text.split("Data: ")[1].split(" . ")[0]
    assert "(the offline JPEG copy costs released weights about ten points" in data, data
    assert "not measured" not in data.split("(")[1], data
    banner = text.split("Non-official data.")[1].split("At a glance")[0]
    assert "(data fingerprint ccecff3e0fe7847e )" in banner, banner

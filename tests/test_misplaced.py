"""A run folder in the wrong place never counts where it lies (harness.placement).

The config hash leaves names out, so a run copied by hand into another experiment's, study's
or seed's folder could count there: one training under another paper's claim, or ``seed-0``
copied to ``seed-1`` counted as two seeds. Each such copy reads "misplaced": the report never
counts it and says so, `repro status` says what to do, `repro run` keeps it aside whole
before training the run, and `repro import` refuses it. A twin adopted by the harness records
its own place and is not misplaced.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import QUICK_RECIPE, tiny_study
from fake_runs import fake_run
from test_run import repro, run_args

from harness import store
from harness.report.counting import _classify
from harness.results import scan
from harness.studyfile import load_study

# Experiments a and b train alike (same model and recipe: one config hash), and so does a of
# the study "other": a copy between them hashes as the folder's own run.
EXPERIMENTS = ("  - {name: a, model: resnet8, recipe: base}\n"
               "  - {name: b, model: resnet8, recipe: base}\n"
               "claims:\n"
               "  - {source: test, where: T1, experiment: b, metric: test_error, value: 9.5}\n")  # fmt: skip


def _store(tmp_path: Path, recipe: str | None = None) -> tuple[Path, Path]:
    extra = {"recipe": recipe} if recipe else {}
    path = tiny_study(tmp_path / "tiny.yaml", EXPERIMENTS, seeds=2, **extra)
    other = tiny_study(tmp_path / "other.yaml", EXPERIMENTS, name="other", **extra)
    results = tmp_path / "results"
    fake_run(results, load_study(path), "a", 0, test_error=9.4)
    fake_run(results, load_study(other), "a", 0, test_error=9.6)
    return path, results


def _adopted(run: Path) -> None:
    """What twins.adopt writes over a copied summary: the adopting run's own place."""
    summary = json.loads((run / store.SUMMARY).read_text())
    summary.update(study="tiny", experiment="b", shared_with="tiny/a/seed-0")
    store.write_json(run / store.SUMMARY, summary)


# copied from, to, what it records that the folder contradicts (None: not misplaced)
COPIES = {
    "into another experiment": ("tiny/a/seed-0", "tiny/b/seed-0", "summary.json records "
                                "experiment 'a'"),
    "into another seed": ("tiny/a/seed-0", "tiny/a/seed-1", "config.json records seed 0"),
    "into another study": ("other/a/seed-0", "tiny/a/seed-0", "summary.json records study "
                           "'other'"),
    "into an override folder": ("tiny/a/seed-0", "tiny/a/seed-0~x", "config.json records "
                                "label ''"),
}  # fmt: skip


@pytest.mark.parametrize("case", COPIES)
def test_a_run_copied_into_another_folder_is_misplaced_and_never_counted(tmp_path, case):
    study, results = _store(tmp_path)
    source, target, recorded = COPIES[case]
    if case == "into another study":
        shutil.rmtree(results / target)
    shutil.copytree(results / source, results / target)

    judged = {c.record.name: c for c in _classify(load_study(study), scan(results))}
    assert not judged[target].counted
    assert judged[target].why_not.startswith("misplaced: ")
    state = store.inspect(results / target)
    assert (state.status, recorded in state.detail) == ("misplaced", True)

    report = repro("report", "--study", str(study), "--results", str(results),
                   "--out", str(tmp_path / "r.html"))  # fmt: skip
    assert report.exit_code == 0, report.output
    assert recorded.replace("'", "&#39;") in (tmp_path / "r.html").read_text()
    status = repro("status", str(study), "--results", str(results))
    assert status.exit_code == 0, status.output
    assert "misplaced" in status.output and "move it back" in status.output


def test_a_twin_adopted_by_the_harness_is_not_misplaced_and_counts(tmp_path):
    study, results = _store(tmp_path)
    shutil.copytree(results / "tiny/a/seed-0", results / "tiny/b/seed-0")
    _adopted(results / "tiny/b/seed-0")
    assert store.inspect(results / "tiny/b/seed-0").status == store.COMPLETE
    judged = {c.record.name: c for c in _classify(load_study(study), scan(results))}
    assert judged["tiny/b/seed-0"].counted


def test_an_older_run_is_judged_by_what_it_records(tmp_path):
    """A summary without the place fields (older runs) disagrees with nothing; the config's
    seed still does."""
    _, results = _store(tmp_path)
    run = results / "tiny/a/seed-0"
    summary = json.loads((run / store.SUMMARY).read_text())
    for key in ("study", "experiment", "seed", "label"):
        del summary[key]
    store.write_json(run / store.SUMMARY, summary)
    assert store.inspect(run).status == store.COMPLETE
    shutil.copytree(run, results / "tiny/b/seed-0")  # nothing says it is a's: not caught
    assert store.inspect(results / "tiny/b/seed-0").status == store.COMPLETE
    shutil.copytree(run, results / "tiny/a/seed-1")
    assert store.inspect(results / "tiny/a/seed-1").status == store.MISPLACED


def test_run_keeps_a_misplaced_run_aside_whole_and_trains_the_run(tmp_path, cifar_root):
    study, results = _store(tmp_path, recipe=QUICK_RECIPE)
    copy = results / "tiny/b/seed-0"
    shutil.copytree(results / "tiny/a/seed-0", copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}

    out = repro(*run_args(study, cifar_root, results, "--only", "b", "--seeds", "1"))
    assert out.exit_code == 0, out.output
    assert "tiny/b/seed-0 is misplaced" in out.output and "moved to" in out.output
    (kept,) = (results / "tiny/b/.superseded").iterdir()
    assert {n: (kept / n).read_bytes() for n in before} == before
    assert "misplaced" in (kept / "SUPERSEDED").read_text()
    summary = json.loads((copy / store.SUMMARY).read_text())
    assert (summary["experiment"], summary["status"]) == ("b", "complete")


def test_status_and_run_agree_a_misplaced_runs_twin_is_adopted(tmp_path, cifar_root):
    """Status said "`repro run` moves it aside and trains the run" of a misplaced copy whose
    run has a complete twin in another study; `repro run` moves it aside and adopts the twin
    (said "and the run is trained" too). Both now say what happens, status from the same
    decision (twins.first_adoptable)."""
    from harness.data import load_cached, locate

    study = tiny_study(tmp_path / "tiny.yaml", EXPERIMENTS)
    other = tiny_study(tmp_path / "other.yaml", EXPERIMENTS, name="other")
    results = tmp_path / "results"
    here = load_cached(locate(cifar_root)).fingerprint
    fake_run(results, load_study(study), "a", 0)
    fake_run(results, load_study(other), "a", 0, fingerprint=here)  # b's twin, on this data
    shutil.copytree(results / "tiny/a/seed-0", results / "tiny/b/seed-0")
    status = repro("status", str(study), "--results", str(results), "--data-dir", str(cifar_root))
    assert status.exit_code == 0, status.output
    (line,) = [s for s in status.output.splitlines() if s.strip().startswith("b/seed-0 ")]
    assert "misplaced" in line and "(`repro run` moves it aside)" in line, line
    assert ("its twin other/a/seed-0 is complete and ran as `repro run` trains here (fp32, fast "
            "pipeline, on the data here): `repro run` adopts it") in line, line  # fmt: skip
    assert "trains the run" not in line, line
    out = repro(*run_args(study, cifar_root, results, "--only", "b"))
    assert out.exit_code == 0, out.output
    assert "the run is trained" not in out.output, out.output
    assert "[  shared] tiny/b/seed-0: shared with other/a/seed-0" in out.output, out.output
    assert "misplaced" in next((results / "tiny/b/.superseded").iterdir()).joinpath(
        "SUPERSEDED").read_text()  # fmt: skip


def test_import_refuses_a_misplaced_run_in_an_archive(tmp_path):
    study, results = _store(tmp_path)
    shutil.copytree(results / "tiny/a/seed-0", results / "tiny/a/seed-1")
    archive = tmp_path / "tiny.tar.gz"
    export = repro("export", str(study), "--out", str(archive), "--results", str(results))
    assert export.exit_code == 0, export.output
    assert "tiny/a/seed-1 goes as misplaced" in export.output

    here = tmp_path / "here"
    imported = repro("import", str(archive), "--results", str(here))
    assert imported.exit_code == 1, imported.output
    assert "tiny/a/seed-1: misplaced in the archive" in imported.output
    assert "config.json records seed 0" in imported.output
    assert not (here / "tiny/a/seed-1").exists()
    assert store.inspect(here / "tiny/a/seed-0").status == store.COMPLETE  # the rest lands


def test_status_says_run_leaves_a_misplaced_run_the_study_does_not_plan(tmp_path, cifar_root):
    """seed-0 copied by hand into seed-1 of a one-seed study: `repro status` said "`repro run`
    moves it aside and trains the run", but the study plans no run there, and `repro run`
    neither moves nor trains anything for it. Status now says so, as run then does."""
    study = tiny_study(tmp_path / "tiny.yaml", EXPERIMENTS, recipe=QUICK_RECIPE)
    results = tmp_path / "results"
    for name in ("a", "b"):
        fake_run(results, load_study(study), name, 0, test_error=9.4)
    copy = results / "tiny/a/seed-1"
    shutil.copytree(results / "tiny/a/seed-0", copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}

    status = repro("status", str(study), "--results", str(results), "--no-check-data")
    assert status.exit_code == 0, status.output
    (said,) = [s for s in status.output.splitlines() if s.strip().startswith("a/seed-1 ")]
    said = " ".join(said.split())
    assert ("config.json records seed 0, but it lies in the folder of seed 1: a copy, never "
            "counted here; the study plans no run here, so `repro run` leaves it as it is: "
            "move it back to where it belongs, or delete it") in said, said  # fmt: skip
    assert "trains" not in said and "adopt" not in said, said

    out = repro(*run_args(study, cifar_root, results))
    assert out.exit_code == 0, out.output
    assert "seed-1" not in out.output and "0 runs trained, 2 skipped" in out.output, out.output
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before
    assert not (results / "tiny/a/.superseded").exists()


# --------------------------------------------------------------------------- storeslips3


@pytest.mark.parametrize("left", ["damaged curves", "damaged config", "interrupted", "failed"])
def test_status_says_run_leaves_a_damaged_or_unfinished_run_the_study_does_not_plan(
    tmp_path, cifar_root, left
):
    """seed-1 of a study that has one seed now (trained when it had two), damaged or stopped:
    `repro status` said `repro run` keeps its files aside and rebuilds it, or trains it again,
    or resumes it on the data here, but `repro run` goes through the planned runs only and
    leaves it as it is. Status now says so, as run then does (both run here)."""
    study = tiny_study(tmp_path / "tiny.yaml", EXPERIMENTS, recipe=QUICK_RECIPE)
    results = tmp_path / "results"
    for name in ("a", "b"):
        fake_run(results, load_study(study), name, 0, test_error=9.4)
    status = left if left in ("interrupted", "failed") else "complete"
    old = fake_run(results, load_study(study), "a", 1, status=status)
    if left == "damaged curves":
        (old / store.METRICS).write_bytes(b"\x00\xffnot json\n")
    elif left == "damaged config":
        (old / store.CONFIG).write_text("{not json")
    before = {p.name: p.read_bytes() for p in old.iterdir()}

    shown = repro("status", str(study), "--results", str(results), "--data-dir", str(cifar_root))
    assert shown.exit_code == 0, shown.output
    (said,) = [s for s in shown.output.splitlines() if s.strip().startswith("a/seed-1 ")]
    said = " ".join(said.split())
    assert "the study plans no run here, so `repro run` leaves it as it is" in said, said
    for claim in ("rebuild", "trains", "trained again", "writes it again", "resumes", "refuse"):
        assert claim not in said, said

    out = repro(*run_args(study, cifar_root, results))
    assert out.exit_code == 0, out.output
    assert "seed-1" not in out.output and "0 runs trained, 2 skipped" in out.output, out.output
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before
    assert not (results / "tiny/a/.superseded").exists()


def test_status_counts_a_one_run_study_in_words(tmp_path):
    """`repro status` headed a one-run study "beta: 1 runs: 1 pending" (seen in a hand-made
    store of two studies); counts are words everywhere else (harness.plural)."""
    study = tiny_study(tmp_path / "tiny.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    out = repro("status", str(study), "--results", str(tmp_path / "results"), "--no-check-data")
    assert out.exit_code == 0, out.output
    assert "tiny: 1 run: 1 pending" in out.output, out.output

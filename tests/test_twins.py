"""Twin runs (harness.twins): a training two studies declare alike is trained once, the second
study adopting a copy of the first's complete run; near-twins are trained."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import tiny_study
from fake_runs import fake_run
from test_run import repro, run_args, summary

from harness import store
from harness.data import load_cached, locate
from harness.plan import Overrides, plan
from harness.report import render_html, report_for
from harness.studyfile import load_study
from harness.transfer import export_study, import_archive
from harness.twins import complete_twins, mismatch

# Study "one" trains x; study "two" declares the same training as y (another name, a claim
# of its own) and a second seed of it, which has no twin.
ONE = "  - {name: x, model: resnet8, recipe: base}\n"
TWO = """\
  - {name: y, model: resnet8, recipe: base, seeds: 2}
claims:
  - {source: test, where: T1, experiment: y, metric: test_error, value: 50.0}
"""


@pytest.fixture(scope="module")
def trained_one(tmp_path_factory, cifar_root) -> Path:
    """A store in which study one's x is trained (once for the module: CPU time is scarce)."""
    folder = tmp_path_factory.mktemp("one")
    one = tiny_study(folder / "one.yaml", ONE, name="one")
    out = repro(*run_args(one, cifar_root, folder / "results"))
    assert out.exit_code == 0, out.output
    return folder / "results"


@pytest.fixture
def twins(tmp_path, trained_one):
    """Study one trained, in a store of this test's own; study two not yet."""
    two = tiny_study(tmp_path / "two.yaml", TWO, name="two")
    results = tmp_path / "results"
    shutil.copytree(trained_one, results)
    return two, results


def test_the_second_study_adopts_the_twin_instead_of_training_it(twins, cifar_root):
    two, results = twins
    before = repro("status", str(two), "--results", str(results))
    assert "seed-0  pending" in before.output
    assert "its twin one/x/seed-0 is complete" in before.output
    out = repro(*run_args(two, cifar_root, results))
    assert out.exit_code == 0, out.output
    assert "[  shared] two/y/seed-0: shared with one/x/seed-0, the same training" in out.output
    assert "1 adopted, 1 complete" in out.output and "1 run trained" in out.output
    trained, adopted = results / "one/x/seed-0", results / "two/y/seed-0"
    # Not trained again: the curves are the twin's to the last timing, and so is the checkpoint.
    for name in (store.METRICS, store.CONFIG, store.ENVIRONMENT):
        assert (adopted / name).read_bytes() == (trained / name).read_bytes()
    assert (adopted / store.CHECKPOINT).read_bytes() == (trained / store.CHECKPOINT).read_bytes()
    got, twin = summary(results, "two/y/seed-0"), summary(results, "one/x/seed-0")
    assert (got["study"], got["experiment"], got["shared_with"]) == ("two", "y", "one/x/seed-0")
    assert got["study_file"] == str(two.resolve())
    assert {k: v for k, v in got.items() if k not in ("study", "experiment", "study_file",
                                                      "shared_with")} == {
        k: v for k, v in twin.items() if k not in ("study", "experiment", "study_file")}  # fmt: skip
    assert not list(adopted.glob(".adopting*"))
    # The second seed has no twin: it trained.
    assert "shared_with" not in summary(results, "two/y/seed-1")
    # It is an ordinary run of its study: status, and the same command again skips it.
    status = repro("status", str(two), "--results", str(results))
    assert "test error" in status.output and "(shared with one/x/seed-0)" in status.output
    again = repro(*run_args(two, cifar_root, results))
    assert "[    skip] two/y/seed-0" in again.output and "shared" not in again.output


def test_the_adopting_study_is_judged_from_the_adopted_run(twins, cifar_root, tmp_path):
    two, results = twins
    assert repro(*run_args(two, cifar_root, results, "--seeds", "1")).exit_code == 0
    report = report_for([two], results)
    (study,) = report.studies
    (claim,) = study.all_claims  # y's test error: its only run is the adopted one
    assert claim.n == 1
    assert claim.reproduced_value == summary(results, "one/x/seed-0")["test_error"]
    (row,) = study.runs
    assert row.counted and row.shared_with == "one/x/seed-0"
    assert "training shared with one/x/seed-0" in render_html(report)
    # Both studies on one page: the one training stands as two runs, and the page says so.
    one = tiny_study(tmp_path / "one.yaml", ONE, name="one")
    both = {line.what: line.text for line in report_for([one, two], results).evidence}
    # Study one claims nothing of x: its run counts for no verdict, and is not called counted.
    assert both["Runs"] == ("2 runs of 2 experiments (1 random seed each; 1 adopted the "
                            "training of a twin in another study), 1 counted, 1 that no "
                            "verdict reads")  # fmt: skip


def test_an_adopted_run_travels_and_force_trains_it(twins, cifar_root, tmp_path):
    two, results = twins
    assert repro(*run_args(two, cifar_root, results, "--seeds", "1")).exit_code == 0
    # Exported and imported alone, it is a complete run of its study that names its origin.
    archive = tmp_path / "two.tar.gz"
    export_study("two", results, archive)
    elsewhere = tmp_path / "elsewhere"
    merged = import_archive(archive, elsewhere)
    assert merged.added == ["two/y/seed-0: complete, 3 epochs"]
    assert store.inspect(elsewhere / "two/y/seed-0").status == store.COMPLETE
    assert summary(elsewhere, "two/y/seed-0")["shared_with"] == "one/x/seed-0"
    # --force trains it: the adopted copy goes aside, the new run is its own.
    out = repro(*run_args(two, cifar_root, results, "--force", "--seeds", "1"))
    assert out.exit_code == 0, out.output
    assert "shared with" not in out.output and "1 complete" in out.output
    assert "shared_with" not in summary(results, "two/y/seed-0")
    (moved,) = (results / "two/y/.superseded").iterdir()
    assert json.loads((moved / store.SUMMARY).read_text())["shared_with"] == "one/x/seed-0"


def test_a_paused_run_adopts_its_complete_twin_and_its_attempt_is_kept(twins, cifar_root):
    two, results = twins
    fake_run(results, load_study(two), "y", epochs=3, status="paused")  # by a time budget
    assert store.inspect(results / "two/y/seed-0").status == store.PAUSED
    out = repro(*run_args(two, cifar_root, results, "--seeds", "1"))
    assert "shared with one/x/seed-0" in out.output and "its paused attempt moved to" in out.output
    # Not first "starting over from epoch 0" as if it would train: what happens is said.
    assert "starting over" not in out.output and "resuming" not in out.output
    assert "two/y/seed-0: paused; a complete twin in another study did the same training" in (
        out.output)  # fmt: skip
    (kept,) = (results / "two/y/.superseded").iterdir()
    assert json.loads((kept / store.SUMMARY).read_text())["status"] == store.PAUSED
    assert (results / "two/y/seed-0" / store.LOCK).exists()
    assert store.inspect(results / "two/y/seed-0").status == store.COMPLETE


def _twin_in_bf16(tmp_path, cifar_root):
    """Study two's run y, whose only twin (one/x) is complete but ran in bf16: not what this
    command (fp32) trains, so never adopted."""
    one = load_study(tiny_study(tmp_path / "one.yaml", ONE, name="one"))
    two = tiny_study(tmp_path / "two.yaml", "  - {name: y, model: resnet8, recipe: base}\n",
                     name="two")  # fmt: skip
    results = tmp_path / "results"
    data = load_cached(locate(cifar_root))
    fake_run(results, one, "x", epochs=3, precision="bf16", fingerprint=data.fingerprint)
    return two, results


def test_a_twin_that_ran_in_another_precision_is_not_adopted(tmp_path, cifar_root):
    two, results = _twin_in_bf16(tmp_path, cifar_root)
    out = repro(*run_args(two, cifar_root, results))
    assert out.exit_code == 0, out.output
    assert (
        "is not this command's training, so it trains: one/x/seed-0: it ran in bf16, fast "
        "pipeline, this command trains in fp32, fast pipeline" in out.output
    )
    assert "shared_with" not in summary(results, "two/y/seed-0")


def test_a_paused_run_whose_twin_is_not_adopted_still_says_what_it_will_do(tmp_path, cifar_root):
    two, results = _twin_in_bf16(tmp_path, cifar_root)
    fake_run(results, load_study(two), "y", epochs=3, status="paused")  # no checkpoint
    out = repro(*run_args(two, cifar_root, results))
    assert out.exit_code == 0, out.output
    said = out.output
    twin = said.index("two/y/seed-0: paused; a complete twin in another study")
    trains = said.index("is not this command's training, so it trains")
    assert twin < trains < said.index("two/y/seed-0: starting over from epoch 0 (paused)")
    assert "shared_with" not in summary(results, "two/y/seed-0")


# --------------------------------------------------------------------------- who is a twin

NEAR = """\
  - {name: same, model: resnet8, recipe: base}
  - {name: lr, model: resnet8, recipe: {extends: base, optimizer: {lr: 0.06}}}
  - {name: epochs, model: resnet8, recipe: {extends: base, epochs: 4}}
  - {name: depth, model: resnet14, recipe: base}
  - {name: option-b, model: resnet8b, recipe: base}
"""


def _near(tmp_path: Path) -> tuple[dict, Path]:
    """The store holds study one's x (a complete fake run); plans of study two, by name."""
    one = load_study(tiny_study(tmp_path / "one.yaml", ONE, name="one"))
    results = tmp_path / "results"
    fake_run(results, one, "x", epochs=3)
    two = load_study(tiny_study(tmp_path / "two.yaml", NEAR, name="two"))
    return {p.experiment.name: p for p in plan(two)}, results


def test_only_the_same_config_in_another_study_is_a_twin(tmp_path):
    plans, results = _near(tmp_path)
    assert [t.name for t in complete_twins(plans["same"], results)] == ["one/x/seed-0"]
    for near in ("lr", "epochs", "depth", "option-b"):
        assert complete_twins(plans[near], results) == [], near
    # another seed, or the same training squeezed by --epochs, is another run
    two = load_study(tmp_path / "two.yaml")
    (_, seed1) = plan(two, Overrides(only=("same",), seeds=2))
    assert seed1.seed == 1 and complete_twins(seed1, results) == []
    (short,) = plan(two, Overrides(only=("same",), epochs=3))
    assert short.label == "epochs3" and complete_twins(short, results) == []
    # a run of the same study with the same config is not adopted across experiments
    one = load_study(tmp_path / "one.yaml")
    (own,) = plan(one)
    assert complete_twins(own, results) == []


@pytest.mark.parametrize("status", ["diverged", "interrupted", "paused", "failed"])
def test_a_twin_that_did_not_complete_is_not_adopted(tmp_path, status):
    one = load_study(tiny_study(tmp_path / "one.yaml", ONE, name="one"))
    results = tmp_path / "results"
    fake_run(results, one, "x", epochs=3, status=status)
    two = load_study(tiny_study(tmp_path / "two.yaml", NEAR, name="two"))
    assert complete_twins(plan(two)[0], results) == []


def test_a_damaged_or_locked_twin_is_not_adopted(tmp_path):
    plans, results = _near(tmp_path)
    twin_dir = results / "one/x/seed-0"
    with store.run_lock(twin_dir):  # being redone (--force) right now
        assert complete_twins(plans["same"], results) == []
    rows = store.read_jsonl(twin_dir / store.METRICS)
    store.write_jsonl(twin_dir / store.METRICS, rows[:-1])  # curves short of the summary
    assert complete_twins(plans["same"], results) == []


def test_a_twin_must_have_run_as_this_command_trains_on_the_same_data(tmp_path):
    plans, results = _near(tmp_path)
    (twin,) = complete_twins(plans["same"], results)
    assert mismatch(twin, "fp32", "fast", "f" * 64) is None
    assert "bf16, fast pipeline" in mismatch(twin, "bf16", "fast", "f" * 64)
    assert "fp32, canonical pipeline" in mismatch(twin, "fp32", "canonical", "f" * 64)
    assert "other data" in mismatch(twin, "fp32", "fast", "e" * 64)
    # a run whose sessions ran in two executions is no one execution's twin
    mixed = {**twin.summary, "sessions": [*twin.summary["sessions"],
                                          {"precision": "bf16", "pipeline": "fast"}]}  # fmt: skip
    assert "+" in mismatch(type(twin)(twin.run_dir, twin.name, mixed), "fp32", "fast", "f" * 64)
    # nor is a run whose sessions trained on two copies of the data, the latest one this one
    resumed = {**twin.summary, "sessions": [{**s, "dataset_fingerprint": "e" * 64}
                                            for s in twin.summary["sessions"]]}  # fmt: skip
    why = mismatch(type(twin)(twin.run_dir, twin.name, resumed), "fp32", "fast", "f" * 64)
    assert why is not None and "eeeeeeeeeeee + ffffffffffff" in why
    # Data sets whose fingerprints share the first 12 characters are shown long enough to
    # differ: "other data (ffffffffffff, here ffffffffffff)" said nothing.
    near = "f" * 12 + "0" * 52
    assert "other data (fffffffffffff, here ffffffffffff0)" in mismatch(twin, "fp32", "fast", near)


@pytest.mark.parametrize("twin_data", ["the data here", "the run's own data"])
def test_status_says_only_what_run_does_with_a_paused_run_and_its_complete_twin(
    twins, cifar_root, tmp_path, twin_data
):
    """A paused run that began on other data than the data here, with a complete twin: status
    said both "`repro run` would REFUSE to resume it" and "its twin ... is complete: `repro
    run` adopts it". `repro run` adopts before it claims the run (runner._train_in_turn:
    adopt_twins, then _claim's refusal), so a twin that trained on the data here is adopted
    and nothing is refused; a twin that trained elsewhere is not, and the run is refused."""
    from cifar_fixture import write_cifar

    two, results = twins
    other_root = write_cifar(tmp_path / "other", noise=True)
    here_root, began_root = (
        (cifar_root, other_root) if twin_data == "the data here" else (other_root, cifar_root)
    )
    began = load_cached(locate(began_root)).fingerprint
    run = fake_run(results, load_study(two), "y", epochs=3, status="paused", official=False,
                   fingerprint=began)  # fmt: skip
    (run / store.CHECKPOINT).write_bytes(b"a checkpoint")  # what makes a resume refusable
    status = repro("status", str(two), "--results", str(results), "--data-dir", str(here_root))
    assert status.exit_code == 0, status.output
    (line,) = [s for s in status.output.splitlines() if s.strip().startswith("y/seed-0 ")]
    out = repro(*run_args(two, here_root, results, "--seeds", "1"))
    if twin_data == "the data here":
        assert "REFUSE" not in line and "began on" not in line, line
        assert ("its twin one/x/seed-0 is complete and ran as `repro run` trains here (fp32, "
                "fast pipeline, on the data here): `repro run` adopts it, moving this attempt "
                "to .superseded/") in line, line  # fmt: skip
        assert out.exit_code == 0, out.output
        assert "[  shared] two/y/seed-0" in out.output and "REFUSED" not in out.output
        assert summary(results, "two/y/seed-0")["shared_with"] == "one/x/seed-0"
    else:
        assert "adopts" not in line, line
        assert "its twin one/x/seed-0 is complete but `repro run` here does not adopt it: it " \
            "was trained on other data" in line, line  # fmt: skip
        assert "`repro run` would REFUSE to resume it on the data here" in line, line
        assert out.exit_code == 2, out.output
        assert "[ REFUSED] two/y/seed-0" in out.output and "shared" not in out.output
        assert summary(results, "two/y/seed-0")["status"] == store.PAUSED


def _torn(path: Path) -> None:
    path.write_text(path.read_text() + "{torn")


def _own_training_of_x(results: Path, two: Path) -> Path:
    """two/y holding a training of its own (x's files, placed as y's), with its checkpoint."""
    run = results / "two/y/seed-0"
    shutil.copytree(results / "one/x/seed-0", run)
    record = json.loads((run / store.SUMMARY).read_text())
    (run / store.SUMMARY).write_text(json.dumps({**record, "study": "two", "experiment": "y"}))
    assert store.inspect(run).status == store.COMPLETE
    return run


DAMAGED_WITH_A_TWIN = {
    # (what is damaged, whether `repro run` adopts the twin after its repair)
    "paused, curves torn": (lambda results, two: _torn(
        fake_run(results, load_study(two), "y", epochs=3, status="paused") / store.METRICS),
        True),
    "complete, config garbage": (lambda results, two: (
        fake_run(results, load_study(two), "y", epochs=3) / store.CONFIG).write_text("garbage"),
        True),
    "complete, curves rebuilt from its checkpoint": (lambda results, two: _torn(
        _own_training_of_x(results, two) / store.METRICS), False),
}  # fmt: skip


@pytest.mark.parametrize("damage", DAMAGED_WITH_A_TWIN)
def test_status_says_whether_run_adopts_a_damaged_runs_twin(twins, cifar_root, damage):
    """`repro status` told, for a damaged run with a complete twin, only its repair ("the run
    is trained again from epoch 0", "moves the run to .superseded/ and trains it again"); `repro
    run` repairs it and then adopts the twin, unless the repair leaves it complete. Status now
    says which, as run then does it."""
    two, results = twins
    spoil, adopts = DAMAGED_WITH_A_TWIN[damage]
    spoil(results, two)
    assert store.inspect(results / "two/y/seed-0").status == store.DAMAGED
    status = repro("status", str(two), "--results", str(results), "--data-dir", str(cifar_root))
    assert status.exit_code == 0, status.output
    (line,) = [s for s in status.output.splitlines() if s.strip().startswith("y/seed-0 ")]
    out = repro(*run_args(two, cifar_root, results, "--seeds", "1"))
    assert out.exit_code == 0, out.output
    if adopts:
        assert ("its twin one/x/seed-0 is complete and ran as `repro run` trains here (fp32, "
                "fast pipeline, on the data here): `repro run` adopts it, moving this attempt "
                "to .superseded/") in line, line  # fmt: skip
        assert "again" not in line, line  # neither trained nor rebuilt
        assert "[  shared] two/y/seed-0" in out.output, out.output
        # `repro run` said "moved to ...; it is trained again", then adopted the twin.
        assert "trained again" not in out.output, out.output
        if damage == "complete, config garbage":  # the whole run is moved aside, then:
            (said,) = [s for s in out.output.splitlines() if "its config cannot be read" in s]
            assert "moved to " in said and said.endswith(
                "; a complete twin in another study did the same training: adopting it if it "
                "ran as this command trains, else training the run"), said  # fmt: skip
        assert summary(results, "two/y/seed-0")["shared_with"] == "one/x/seed-0"
    else:
        assert "twin" not in line and "rebuilds it from the checkpoint" in line, line
        assert "[    skip] two/y/seed-0: already complete" in out.output, out.output
        assert "shared_with" not in summary(results, "two/y/seed-0")


def test_adopting_over_a_repaired_run_left_pending_keeps_its_files(twins, cifar_root):
    """A damaged run the repair leaves pending (its curves and summary torn, its checkpoint a
    link that leads nowhere) was adopted over in place: the twin's files replaced its own
    environment.json and checkpoint link, and the repair's kept-aside files stayed beside the
    adopted run. Now everything the run directory held goes to .superseded/ first."""
    two, results = twins
    run = fake_run(results, load_study(two), "y", epochs=3, status="paused")
    _torn(run / store.SUMMARY)
    _torn(run / store.METRICS)
    (run / store.CHECKPOINT).symlink_to(run / "gone.pt")
    held = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert store.inspect(run).status == store.DAMAGED
    before = repro("status", str(two), "--results", str(results), "--data-dir", str(cifar_root))
    assert "`repro run` adopts it, moving this attempt to .superseded/" in before.output
    out = repro(*run_args(two, cifar_root, results, "--seeds", "1"))
    assert out.exit_code == 0, out.output
    assert "[  shared] two/y/seed-0" in out.output, out.output
    (kept,) = (results / "two/y/.superseded").iterdir()
    assert f"two/y/seed-0: what its directory held (pending) moved to {kept}" in out.output
    assert os.readlink(kept / store.CHECKPOINT) == str(run / "gone.pt")
    for name, data in held.items():  # the repair's kept-aside copies hold the torn files
        (copy,) = [p for p in kept.iterdir() if p.name.split(".unreadable-")[0] == name]
        assert copy.read_bytes() == data, name
    # The adopted run holds the twin's files only, and reads as it did before.
    assert sorted(p.name for p in run.iterdir()) == sorted(
        [store.LOCK, store.CONFIG, store.ENVIRONMENT, store.METRICS, store.CHECKPOINT,
         store.SUMMARY])  # fmt: skip
    assert (run / store.ENVIRONMENT).read_bytes() == (
        results / "one/x/seed-0" / store.ENVIRONMENT).read_bytes()  # fmt: skip
    status = repro("status", str(two), "--results", str(results))
    assert "2 runs" in status.output and "(shared with one/x/seed-0)" in status.output


def test_a_repaired_run_that_adopts_its_twin_is_not_said_to_be_rebuilt(twins, cifar_root):
    """A paused run whose summary was torn, with a complete twin: `repro run` said "kept
    summary.json aside as ...; rebuilt from the checkpoint", then adopted the twin, moving the
    run aside unrebuilt. What it prints for the run now holds once the twin is adopted."""
    two, results = twins
    run = fake_run(results, load_study(two), "y", epochs=3, status="paused")
    _torn(run / store.SUMMARY)
    assert store.inspect(run).status == store.DAMAGED
    out = repro(*run_args(two, cifar_root, results, "--seeds", "1"))
    assert out.exit_code == 0, out.output
    assert "[  shared] two/y/seed-0" in out.output, out.output
    (said,) = [s for s in out.output.splitlines() if "kept summary.json aside as" in s]
    # It has no checkpoint: were it trained, it would start over, not be rebuilt from one.
    assert said.endswith("; made anew as the run trains again from epoch 0 (its checkpoint is "
                         "missing) if the run trains, not if it adopts its twin"), said  # fmt: skip
    assert "its interrupted attempt moved to " in out.output, out.output
    assert summary(results, "two/y/seed-0")["shared_with"] == "one/x/seed-0"


def test_a_stage_an_adoption_killed_midway_left_is_removed_when_the_run_is_next_locked(twins):
    """An adoption killed midway (SIGKILL) left its stage, `.adopting/` with a copy of the
    twin's files, in the run's folder; only the next adoption removed it, so a run that then
    trained instead kept it for good. Adoption stages only under the run's lock, so the next
    holder of the lock removes it, and the run's own files stay."""
    from test_chaos import killed_at

    from harness import twins as twins_module

    two, results = twins
    p = next(q for q in plan(load_study(two)) if q.seed == 0)
    (twin,) = complete_twins(p, results)
    run_dir = p.directory(results)
    twin_files = {f.name: f.read_bytes() for f in twin.run_dir.iterdir() if f.is_file()}
    killed_at(os, "replace", lambda: twins_module.adopt(p, run_dir, twin))
    assert (run_dir / store.ADOPTING / store.METRICS).is_file()
    with store.run_lock(run_dir):
        assert not (run_dir / store.ADOPTING).exists()
    # the twin's own files are untouched (the stage held hard links or copies of them)
    assert {f.name: f.read_bytes() for f in twin.run_dir.iterdir() if f.is_file()} == twin_files

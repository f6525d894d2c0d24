"""A damaged run store: one bad file must not stop anyone, and nothing is ever lost.

A shared store is many people's results. A torn line in metrics.jsonl, a summary.json of the
wrong shape or with NaN in it, an unreadable checkpoint: report and status list the run as
damaged and go on; `repro run` keeps the damaged file aside and rebuilds it from the
checkpoint, which holds the whole history. A fuzz test throws random damage at a finished
store and checks that no command tracebacks and no file disappears.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_RECIPE, tiny_study
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_run import curves, repro, run_args

from harness import leftovers, store

# 100 training and 50 test images: a damaged file is found, kept aside and rebuilt alike
# whatever the runs learnt, and a rebuilt run retrains in a fraction of the time.
RECIPE = """\
    optimizer: {lr: 0.05, momentum: 0.9, weight_decay: 5.0e-4}
    batch_size: 100
    epochs: 3
    schedule: {kind: multistep, milestones: [2], gamma: 0.1}
    normalization: {kind: per_channel}
    augmentation: {crop: {padding: 2}, flip: true}
    train_images: 100
    test_images: 50
"""
RUNS = ("tiny/a/seed-0", "tiny/b/seed-0")


@pytest.fixture(scope="session")
def finished_store(tmp_path_factory, cifar_root) -> Path:
    """A study with two finished runs (and their checkpoints), trained once."""
    root = tmp_path_factory.mktemp("finished")
    study = tiny_study(root / "s.yaml",
                       "  - {name: a, model: resnet8, recipe: base}\n"
                       "  - {name: b, model: plain8, recipe: base}\n", recipe=RECIPE)  # fmt: skip
    out = repro(*run_args(study, cifar_root, root / "results"))
    assert out.exit_code == 0, out.output
    return root


def _copy(finished_store: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(finished_store, tmp_path / "w")
    return tmp_path / "w" / "s.yaml", tmp_path / "w" / "results"


def _files(results: Path) -> dict[str, bytes]:
    return {p.relative_to(results).as_posix(): p.read_bytes()
            for p in sorted(results.rglob("*")) if p.is_file() and p.name != "lock"}  # fmt: skip


def _kept(before: dict[str, bytes], results: Path) -> None:
    """Every file that was there is still there, or kept aside with its bytes intact."""
    after = _files(results)
    contents = set(after.values())
    for name, data in before.items():
        assert name in after or data in contents, f"{name} was lost"


def _edit_row(data: bytes, edit) -> bytes:
    """metrics.jsonl with its second row edited."""
    rows = [json.loads(line) for line in data.decode().splitlines()]
    rows[1] = edit(rows[1])
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


DAMAGE = {
    "torn metrics line": (store.METRICS, lambda b: b[: len(b) // 2]),
    "garbage metrics line": (store.METRICS, lambda b: b + b"\x00\xffnot json\n"),
    "metrics row not a record": (store.METRICS, lambda b: b + b"[1, 2]\n"),
    "empty summary object": (store.SUMMARY, lambda b: b"{}"),
    "summary is a list": (store.SUMMARY, lambda b: b"[]"),
    "summary garbage": (store.SUMMARY, lambda b: b"\x89PNG..."),
    "summary with a string for epochs": (
        store.SUMMARY, lambda b: json.dumps({**json.loads(b), "epochs_done": "3"}).encode()),
    # Hand edits of the wrong type (the audit): each gave report, status or run a traceback.
    "summary with a string for test_error": (
        store.SUMMARY, lambda b: json.dumps({**json.loads(b), "test_error": "abc"}).encode()),
    "summary with a string for final_test_error": (
        store.SUMMARY, lambda b: json.dumps({**json.loads(b), "final_test_error": "abc"}).encode()),
    "summary with a string for data": (
        store.SUMMARY, lambda b: json.dumps({**json.loads(b), "data": "zzz"}).encode()),
    "metrics row with a string for test_error": (
        store.METRICS, lambda b: _edit_row(b, lambda row: {**row, "test_error": "x"})),
    "metrics row without test_error": (
        store.METRICS, lambda b: _edit_row(b, lambda row: {k: v for k, v in row.items()
                                                           if k != "test_error"})),
}  # fmt: skip


@pytest.mark.parametrize("damage", DAMAGE)
def test_report_and_status_list_a_damaged_run_and_run_rebuilds_it(
    finished_store, tmp_path, cifar_root, damage
):
    study, results = _copy(finished_store, tmp_path)
    name, spoil = DAMAGE[damage]
    target = results / RUNS[0] / name
    original_curves = curves(results, RUNS[0])
    target.write_bytes(spoil(target.read_bytes()))
    before = _files(results)

    report = repro("report", "--study", str(study), "--results", str(results),
                   "--out", str(tmp_path / "r.html"))  # fmt: skip
    assert report.exit_code == 0, report.output
    page = (tmp_path / "r.html").read_text()
    assert "damaged" in page and name in page
    status = repro("status", str(study), "--results", str(results))
    assert status.exit_code == 0, status.output
    assert "damaged" in status.output and name in status.output

    again = repro(*run_args(study, cifar_root, results))
    assert again.exit_code == 0, again.output
    assert f"kept {name} aside" in again.output
    assert json.loads((results / RUNS[0] / store.SUMMARY).read_text())["status"] == "complete"
    assert curves(results, RUNS[0]) == original_curves  # rebuilt from the checkpoint
    assert list((results / RUNS[0]).glob(f"{name}.unreadable-*"))
    _kept(before, results)


def _without_last_epoch(run: Path) -> None:
    lines = (run / store.METRICS).read_text().splitlines(True)
    (run / store.METRICS).write_text("".join(lines[:-1]))


# Files that read but disagree (store.check_ended): a run that would otherwise count.
DISAGREE = {
    "complete before its last epoch": lambda run: (run / store.SUMMARY).write_text(json.dumps(
        {**json.loads((run / store.SUMMARY).read_text()), "epochs_done": 2})),
    "curves missing": lambda run: (run / store.METRICS).unlink(),
    "curves without the last epoch": _without_last_epoch,
}  # fmt: skip


@pytest.mark.parametrize("case", DISAGREE)
def test_a_run_whose_files_disagree_is_damaged_and_run_rebuilds_it(
    finished_store, tmp_path, cifar_root, case
):
    study, results = _copy(finished_store, tmp_path)
    original_curves = curves(results, RUNS[0])
    DISAGREE[case](results / RUNS[0])
    assert store.inspect(results / RUNS[0]).status == store.DAMAGED
    before = _files(results)
    status = repro("status", str(study), "--results", str(results))
    assert status.exit_code == 0 and "damaged" in status.output, status.output

    again = repro(*run_args(study, cifar_root, results))
    assert again.exit_code == 0, again.output
    assert store.inspect(results / RUNS[0]).status == store.COMPLETE
    assert curves(results, RUNS[0]) == original_curves  # from the checkpoint
    _kept(before, results)


WRONG_TYPES = {
    "summary.json": (store.SUMMARY, {"test_error": "abc"}, 'test_error is "abc", not a number'),
    "summary.json ": (store.SUMMARY, {"data": "zzz"}, 'data is "zzz", not an object'),
    "summary.json  ": (store.SUMMARY, {"sessions": [{"precision": 16}]},
                       "sessions[0].precision is 16, not text"),
    "metrics.jsonl": (store.METRICS, {"test_error": "x"},
                      'line 2 (epoch 2): test_error is "x", not a number'),
    "metrics.jsonl ": (store.METRICS, {"lr": None, "iteration": True},
                       "line 2 (epoch 2): iteration is true, not a whole number"),
}  # fmt: skip


@pytest.mark.parametrize("case", WRONG_TYPES)
def test_a_file_of_the_wrong_shape_is_damaged_and_says_what_is_wrong(tmp_path, case):
    """Hand-made, no training: the message names the file, the field and what was found."""
    from fake_runs import fake_run

    from harness.studyfile import load_study

    name, change, problem = WRONG_TYPES[case]
    study = load_study(
        tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    )
    run = fake_run(tmp_path / "results", study, "a")
    assert store.inspect(run).status == store.COMPLETE
    path = run / name
    if name == store.SUMMARY:
        path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    else:
        path.write_bytes(_edit_row(path.read_bytes(), lambda row: {**row, **change}))
    state = store.inspect(run)
    assert state.status == store.DAMAGED
    assert state.detail == f"{path}: {problem}"


ENVIRONMENT_STUDY = """\
  - {name: a, model: resnet8, recipe: base, seeds: 2}
claims:
  - {source: test, where: T1, experiment: a, metric: test_error, value: 10}
  - {source: test, where: T2, experiment: a, metric: sec_per_epoch, value: 2, hardware: NVIDIA GTX 980}
"""
# environment.json edited or broken: (what is written, what the warning says is wrong). Each
# of the first five gave `repro report` a traceback; the last two were ignored silently, and
# the run then passed for one that had its device alone.
BAD_ENVIRONMENTS = {
    "device_name": ({"device_name": 5}, "device_name is 5, not text"),
    "harness": ({"harness": [1, 2]}, "harness is [1, 2], not an object"),
    "harness.commit": ({"harness": {"commit": ["x"]}}, 'harness.commit is ["x"], not text'),
    "device_shared_by": ({"device_shared_by": "2"}, 'device_shared_by is "2", not a whole number'),
    "precision": ({"precision": 16}, "precision is 16, not text"),
    "a list": (b"[1]", "holds a list, not an environment"),
    "garbage": (b"\x00{", "is not readable JSON"),
}  # fmt: skip


def _spoil_environment(run: Path, bad) -> None:
    path = run / store.ENVIRONMENT
    if isinstance(bad, bytes):
        path.write_bytes(bad)
    else:
        path.write_text(json.dumps({**json.loads(path.read_text()), **bad}))


@pytest.mark.parametrize("case", BAD_ENVIRONMENTS)
def test_a_damaged_environment_is_ignored_with_a_warning_and_the_run_still_counts(tmp_path, case):
    """Metadata, not the result: the run keeps counting for its accuracy, but its seconds and
    device are not trusted; report and status go on, and the warning names file and field."""
    from fake_runs import fake_run

    from harness.report import build
    from harness.results import scan
    from harness.studyfile import load_study

    path = tiny_study(tmp_path / "s.yaml", ENVIRONMENT_STUDY)
    study, results = load_study(path), tmp_path / "results"
    spoilt = fake_run(results, study, "a", 0, device="NVIDIA GeForce GTX 980")
    fake_run(results, study, "a", 1, device="NVIDIA GeForce GTX 980")
    bad, problem = BAD_ENVIRONMENTS[case]
    _spoil_environment(spoilt, bad)
    said = f"{spoilt / store.ENVIRONMENT}: {problem}"
    assert store.inspect(spoilt).status == store.COMPLETE

    report = build([(study, str(path))], scan(results), str(results))
    (s,) = report.studies
    value, speed = sorted(s.all_claims, key=lambda c: c.metric != "test error")
    assert value.n == 2  # both runs count for their accuracy
    assert speed.n == 1, speed.reason  # only the other one's seconds compare
    (view,) = [r for r in s.runs if r.seed == 0]
    assert view.warning.startswith(said) and "never for speed or device claims" in view.warning

    out = repro("report", "--study", str(path), "--results", str(results),
                "--out", str(tmp_path / "r.html"))  # fmt: skip
    assert out.exit_code == 0, out.output
    assert f"warning: {said}" in out.output
    assert problem in (tmp_path / "r.html").read_text().replace("&#34;", '"')
    status = repro("status", str(path), "--results", str(results))
    assert status.exit_code == 0 and "2 complete" in status.output, status.output


@pytest.mark.parametrize("case", ["device_name", "garbage"])
def test_status_says_a_damaged_environment_is_ignored_and_what_that_costs(tmp_path, case):
    """`repro status` listed such a run as plain "complete": only the report said that its
    environment.json is ignored. A paused run's next session keeps the file aside."""
    from fake_runs import fake_run

    from harness.studyfile import load_study

    path = tiny_study(tmp_path / "s.yaml", ENVIRONMENT_STUDY)
    study, results = load_study(path), tmp_path / "results"
    complete = fake_run(results, study, "a", 0)
    paused = fake_run(results, study, "a", 1, status="paused")
    for run in (complete, paused):
        _spoil_environment(run, BAD_ENVIRONMENTS[case][0])
    problem = BAD_ENVIRONMENTS[case][1]
    out = repro("status", str(path), "--results", str(results))
    assert out.exit_code == 0, out.output
    lines = {line.split()[0]: line for line in out.output.splitlines() if "seed-" in line}
    done, resumes = lines["a/seed-0"], lines["a/seed-1"]
    assert f"test error 10.00%; {complete / store.ENVIRONMENT}: {problem}" in done, done
    assert done.endswith(": ignored; the run counts for its accuracy, never for speed or "
                         "device claims")  # fmt: skip
    # After the data it began on, which `repro status` names for every run to resume.
    assert f"(official release); {paused / store.ENVIRONMENT}: {problem}" in resumes, resumes
    assert resumes.endswith(": ignored; `repro run` keeps it aside when it next trains the run")
    # A readable one says nothing.
    fake_run(results, study, "a", 0)
    out = repro("status", str(path), "--results", str(results))
    assert "ignored" not in next(line for line in out.output.splitlines() if "seed-0" in line)


@pytest.mark.parametrize("case", ["a list", "precision"])
def test_a_run_resumes_past_a_damaged_environment_and_keeps_it_aside(
    finished_store, tmp_path, cifar_root, case
):
    """Killed before its summary, a run's environment says how its first session ran; a
    damaged one says nothing (it gave a traceback, or a refusal to mix precision 16 with
    fp32), so the run resumes, and the new session's environment does not erase the old."""
    study, results = _copy(finished_store, tmp_path)
    run = results / RUNS[0]
    original_curves = curves(results, RUNS[0])
    _interrupted(run)
    _spoil_environment(run, BAD_ENVIRONMENTS[case][0])
    before = _files(results)
    out = repro(*run_args(study, cifar_root, results))
    assert out.exit_code == 0, out.output
    assert "all 3 epochs had finished (interrupted)" in out.output
    assert f"kept as {store.ENVIRONMENT}.unreadable-" in out.output
    assert store.inspect(run).status == store.COMPLETE
    assert store.read_environment(run)["precision"] == "fp32"  # this session's, readable
    assert curves(results, RUNS[0]) == original_curves
    _kept(before, results)


# evaluation.json edited: result and provenance are one file, damaged as a summary would be.
# Each gave `repro report` a traceback; the last, `repro status`.
BAD_EVALUATIONS = {
    "environment": ({"environment": 5}, "environment is 5, not an object"),
    "environment.harness": ({"environment": {"harness": 3}},
                            "environment.harness is 3, not an object"),
    "environment.torch": ({"environment": {"torch": [1]}}, "environment.torch is [1], not text"),
    "file": ({"file": "x"}, 'file is "x", not an object'),
    "test_error": ({"test_error": "8.27"}, 'test_error is "8.27", not a number'),
}  # fmt: skip


@pytest.mark.parametrize("case", [*BAD_EVALUATIONS, "no test error"])
def test_an_evaluation_record_of_the_wrong_shape_is_damaged_and_says_why(tmp_path, case):
    from fake_runs import fake_evaluation

    from harness.studyfile import load_study

    path = Path(__file__).resolve().parents[1] / "studies" / "checkpoints.yaml"
    results = tmp_path / "results"
    done = fake_evaluation(results, load_study(path), "akamaster-resnet20") / store.EVALUATION
    change, problem = BAD_EVALUATIONS.get(case, ({"test_error": None}, None))
    record = json.loads(done.read_text())
    done.write_text(json.dumps({**record, **change}))
    report = repro("report", "--study", str(path), "--results", str(results),
                   "--out", str(tmp_path / "r.html"))  # fmt: skip
    assert report.exit_code == 0, report.output
    status = repro("status", str(path), "--results", str(results))
    assert status.exit_code == 0, status.output
    page = (tmp_path / "r.html").read_text().replace("&#34;", '"')
    if problem is None:
        assert "test error not recorded" in status.output
        assert "its record has no test error" in page
    else:
        assert f"damaged: {done}: {problem}" in page
        assert f"damaged      {done}: {problem}" in status.output


def test_an_unreadable_config_is_written_again_when_the_checkpoint_matches(
    finished_store, tmp_path, cifar_root
):
    """The checkpoint was made with the study's config: 164 epochs are not trained again."""
    study, results = _copy(finished_store, tmp_path)
    run = results / RUNS[1]
    config, summary = (run / store.CONFIG).read_text(), (run / store.SUMMARY).read_text()
    (run / store.CONFIG).write_text("[]")
    before = _files(results)
    status = repro("status", str(study), "--results", str(results))
    assert "keeps it aside and writes it again from the study" in status.output, status.output
    out = repro(*run_args(study, cifar_root, results))
    assert out.exit_code == 0, out.output
    assert "config.json aside" in out.output and "written again from the study" in out.output
    assert "[    skip] tiny/b/seed-0: already complete" in out.output, out.output
    assert (run / store.CONFIG).read_text() == config
    assert (run / store.SUMMARY).read_text() == summary  # not trained again
    assert not (results / "tiny" / "b" / ".superseded").exists()
    assert list(run.glob("config.json.unreadable-*"))
    _kept(before, results)


def test_an_unreadable_config_without_its_checkpoint_is_moved_aside_and_trained_again(
    finished_store, tmp_path, cifar_root
):
    study, results = _copy(finished_store, tmp_path)
    (results / RUNS[1] / store.CONFIG).write_text("[]")
    (results / RUNS[1] / store.CHECKPOINT).unlink()
    before = _files(results)
    status = repro("status", str(study), "--results", str(results))
    assert "checkpoint is missing: `repro run` moves the run to .superseded/ and trains it " \
           "again" in status.output, status.output  # fmt: skip
    out = repro(*run_args(study, cifar_root, results))
    assert out.exit_code == 0, out.output
    assert "config cannot be read and its checkpoint is missing" in out.output
    assert json.loads((results / RUNS[1] / store.SUMMARY).read_text())["status"] == "complete"
    assert list((results / "tiny" / "b" / ".superseded").iterdir())
    _kept(before, results)


def _save(path: Path, obj) -> None:
    torch.save(obj, path)


def _edit_checkpoint(run: Path, edit) -> None:
    checkpoint = torch.load(run / store.CHECKPOINT, weights_only=True)
    edit(checkpoint)
    torch.save(checkpoint, run / store.CHECKPOINT)


def _interrupted(run: Path) -> None:
    """As if killed after its last epoch: no summary."""
    (run / store.SUMMARY).unlink()


RESUMES = {
    # (what is done to a finished run, what `repro run` must say, what it must not say)
    "checkpoint deleted": (
        lambda run: (_interrupted(run), (run / store.CHECKPOINT).unlink()),
        "starting over from epoch 0 (interrupted): its checkpoint is missing, so its 3 epochs "
        "cannot be resumed", "no epoch had finished"),
    "checkpoint truncated": (
        lambda run: (_interrupted(run), (run / store.CHECKPOINT).write_bytes(
            (run / store.CHECKPOINT).read_bytes()[:1000])),
        "starting over from epoch 0 (interrupted): its checkpoint cannot be read", "resuming"),
    # Files that load but are no run's checkpoint: damaged like a torn one, not a traceback.
    "checkpoint is a list": (
        lambda run: (_interrupted(run), _save(run / store.CHECKPOINT, [1, 2])),
        "starting over from epoch 0 (interrupted): its checkpoint cannot be read", "resuming"),
    "checkpoint is a tensor": (
        lambda run: (_interrupted(run), _save(run / store.CHECKPOINT, torch.zeros(3))),
        "starting over from epoch 0 (interrupted): its checkpoint cannot be read", "resuming"),
    "checkpoint without its weights": (
        lambda run: (_interrupted(run), _edit_checkpoint(run, lambda c: c.pop("model"))),
        "starting over from epoch 0 (interrupted): its checkpoint cannot be read", "resuming"),
    # A mapping without a format and config hash was said to be "made with another config",
    # and the first epoch of the new start overwrote it.
    "checkpoint without a format": (
        lambda run: (_interrupted(run), _save(run / store.CHECKPOINT, {"epoch": 3})),
        "starting over from epoch 0 (interrupted): its checkpoint cannot be read", "resuming"),
    # One of this format with a part of the wrong kind failed the run with a TypeError.
    "checkpoint with a string for its epoch": (
        lambda run: (_interrupted(run), _edit_checkpoint(run, lambda c: c.update(epoch="3"))),
        "starting over from epoch 0 (interrupted): its checkpoint cannot be read", "resuming"),
    # Another run's checkpoint: not resumed, and (the loss) overwritten by the new start.
    "checkpoint of another config": (
        lambda run: (_interrupted(run), _edit_checkpoint(run, lambda c: c.update(
            config_hash="0123456789abcdef"))),
        "starting over from epoch 0 (interrupted): its checkpoint was made with another config",
        "resuming"),
    "summary damaged after the last epoch": (
        lambda run: (run / store.SUMMARY).write_text("{}"),
        "all 3 epochs had finished (interrupted); its summary is written again from the "
        "checkpoint, nothing is trained", "resuming"),
}  # fmt: skip


@pytest.mark.parametrize("case", RESUMES)
def test_what_run_says_it_will_do_is_what_it_does(finished_store, tmp_path, cifar_root, case):
    study, results = _copy(finished_store, tmp_path)
    spoil, said, never = RESUMES[case]
    original_curves = curves(results, RUNS[0])
    spoil(results / RUNS[0])
    before = _files(results)
    out = repro(*run_args(study, cifar_root, results))
    assert out.exit_code == 0, out.output
    assert said in out.output and never not in out.output, out.output
    summary = json.loads((results / RUNS[0] / store.SUMMARY).read_text())
    assert summary["status"] == "complete"
    from_epoch = [s["from_epoch"] for s in summary["sessions"]]
    if "starting over" in said:
        assert from_epoch[-1] == 0
        # the new start's first epoch writes checkpoint.pt: the old one is kept aside first
        old = before.get(f"{RUNS[0]}/{store.CHECKPOINT}")
        assert old is None or old in _files(results).values(), "the old checkpoint was lost"
    else:
        assert from_epoch[-1] == 3 and curves(results, RUNS[0]) == original_curves
    _kept(before, results)


def test_export_carries_a_damaged_run_as_damaged_with_its_checkpoint(
    finished_store, tmp_path, cifar_root
):
    """Its summary says complete, but it is damaged: the archive never says complete, and the
    store it lands in rebuilds it; a good copy of the run replaces a damaged one there."""
    study, results = _copy(finished_store, tmp_path)
    run = results / RUNS[0]
    good = tmp_path / "good.tar.gz"
    assert repro("export", str(study), "--out", str(good), "--results", str(results)).exit_code == 0
    summary = json.loads((run / store.SUMMARY).read_text())
    (run / store.SUMMARY).write_text(json.dumps({**summary, "test_error": "abc"}))
    out = repro("export", str(study), "--out", str(tmp_path / "d.tar.gz"),
                "--results", str(results))  # fmt: skip
    assert out.exit_code == 0, out.output
    assert f"{RUNS[0]} goes as damaged" in out.output and "from its checkpoint" in out.output
    from harness.transfer import read_manifest

    (archived,) = [r for r in read_manifest(tmp_path / "d.tar.gz")["runs"] if r["path"] == RUNS[0]]
    assert archived["status"] == store.DAMAGED and store.CHECKPOINT in archived["files"]

    elsewhere = tmp_path / "elsewhere"
    imported = repro("import", str(tmp_path / "d.tar.gz"), "--results", str(elsewhere))
    assert imported.exit_code == 0, imported.output
    assert store.inspect(elsewhere / RUNS[0]).status == store.DAMAGED
    again = repro(*run_args(study, cifar_root, elsewhere))
    assert again.exit_code == 0, again.output
    assert store.inspect(elsewhere / RUNS[0]).status == store.COMPLETE

    # the damaged run here is advanced by the good archive (and kept in .superseded/)
    merged = repro("import", str(good), "--results", str(results))
    assert merged.exit_code == 0 and f"advanced  {RUNS[0]}: damaged" in merged.output, merged.output
    assert store.inspect(run).status == store.COMPLETE


UNUSABLE_CHECKPOINTS = {
    "garbage": lambda path: path.write_bytes(b"not a checkpoint"),
    "a list": lambda path: torch.save([1, 2], path),
    "a tensor": lambda path: torch.save(torch.zeros(3), path),
}


@pytest.mark.parametrize("content", UNUSABLE_CHECKPOINTS)
def test_an_unreadable_checkpoint_keeps_the_metrics_it_would_have_overwritten(
    finished_store, tmp_path, cifar_root, content
):
    study, results = _copy(finished_store, tmp_path)
    run = results / RUNS[0]
    (run / store.SUMMARY).write_text("{}")  # so that the run is resumed
    UNUSABLE_CHECKPOINTS[content](run / store.CHECKPOINT)
    before = _files(results)
    out = repro(*run_args(study, cifar_root, results))
    assert out.exit_code == 0, out.output
    assert "could not be read" in out.output and "starts over" in out.output
    assert json.loads((run / store.SUMMARY).read_text())["status"] == "complete"
    assert list(run.glob("checkpoint.pt.unreadable-*"))
    assert list(run.glob("metrics.jsonl.not-in-checkpoint-*")), "the old history was overwritten"
    _kept(before, results)


@pytest.mark.parametrize("content", ["a list", "a tensor"])
def test_a_file_that_loads_but_is_no_run_checkpoint_is_kept_aside(tmp_path, capsys, content):
    """Every reader of a run's checkpoint (training and fused training resume from
    load_checkpoint) takes it for an unreadable one: said, kept aside, started over."""
    from harness.train import checkpoint_history, load_checkpoint, resume_point

    run = tmp_path / "run"
    run.mkdir()
    UNUSABLE_CHECKPOINTS[content](run / store.CHECKPOINT)
    assert checkpoint_history(run) is None
    assert resume_point(run, "h") == (0, 0, "its checkpoint cannot be read")
    assert load_checkpoint(run, "h") is None
    kind = "list" if content == "a list" else "Tensor"
    said = capsys.readouterr().out
    assert f"could not be read (it holds a {kind}, not a run's checkpoint)" in said
    assert list(run.glob("checkpoint.pt.unreadable-*")) and not (run / store.CHECKPOINT).exists()


def _good_checkpoint() -> dict:
    """A checkpoint of the shape save_checkpoint writes, small enough to build by hand."""
    return {"format": 1, "config_hash": "h", "epoch": 2, "iteration": 4,
            "model": {"w": torch.zeros(2)}, "optimizer": {"state": {}, "param_groups": []},
            "warmup": {"active": False, "ended_at": 3, "recent_errors": []},
            "history": [{"epoch": 1}, {"epoch": 2}], "rng": {"torch": torch.zeros(1)},
            "wall_seconds": 1.5, "sessions": [{"from_epoch": 0}]}  # fmt: skip


# A checkpoint of this format with a part of the wrong kind: (part, value, what is said). Each
# failed the run with a TypeError or AttributeError on resume, every time it was run again.
WRONG_KINDS = {
    "epoch a string": ("epoch", "3", "its epoch is a str, not a whole number of at least 0"),
    "epoch negative": ("epoch", -1, "its epoch is an int, not a whole number of at least 0"),
    "epoch true": ("iteration", True, "its iteration is a bool, not a whole number"),
    "model a list": ("model", [1], "its model is a list, not a mapping of names to tensors"),
    "model of numbers": ("model", {"w": 1.0}, "its model is a dict, not a mapping of names"),
    "optimizer without state": ("optimizer", {"param_groups": []}, "its optimizer is a dict, "
                                "not an optimizer's state dict"),
    "warmup without its errors": ("warmup", {"active": True}, "its warmup is a dict, not none "
                                  "or a warm-up's state"),
    "history a number": ("history", 5, "its history is an int, not a list of epoch records"),
    "history of strings": ("history", ["x"], "its history is a list, not a list of epoch"),
    "wall seconds a string": ("wall_seconds", "1", "its wall_seconds is a str, not a number"),
    "sessions none": ("sessions", None, "its sessions is none, not a list of session records"),
    "config hash a number": ("config_hash", 7, "its config_hash is an int, not a string"),
}  # fmt: skip


@pytest.mark.parametrize("case", WRONG_KINDS)
def test_a_checkpoint_with_a_part_of_the_wrong_kind_is_kept_aside(tmp_path, capsys, case):
    from harness.train import load_checkpoint, read_checkpoint, resume_point

    run = tmp_path / "run"
    run.mkdir()
    torch.save(_good_checkpoint(), run / store.CHECKPOINT)
    assert resume_point(run, "h") == (2, 4, None)  # the unspoilt one is good
    key, value, said = WRONG_KINDS[case]
    torch.save({**_good_checkpoint(), key: value}, run / store.CHECKPOINT)
    data = (run / store.CHECKPOINT).read_bytes()
    with pytest.raises(Exception, match=re.escape(said)):
        read_checkpoint(run / store.CHECKPOINT)
    assert resume_point(run, "h") == (0, 0, "its checkpoint cannot be read")
    assert load_checkpoint(run, "h") is None
    assert said in capsys.readouterr().out
    (kept,) = run.glob("checkpoint.pt.unreadable-*")
    assert kept.read_bytes() == data


def test_a_checkpoint_of_another_config_or_format_is_kept_aside_not_overwritten(tmp_path, capsys):
    from harness.train import load_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    for changed, said in (({"config_hash": "other"}, "was made with another config"),
                          ({"format": 99}, "is of another format")):  # fmt: skip
        torch.save({**_good_checkpoint(), **changed}, run / store.CHECKPOINT)
        assert load_checkpoint(run, "h") is None
        out = capsys.readouterr().out
        assert f"{run / store.CHECKPOINT} {said}, so it cannot be resumed; kept as " in out
        assert not (run / store.CHECKPOINT).exists()
    assert len(list(run.glob("checkpoint.pt.not-resumable-*"))) == 2


def test_a_checkpoint_that_does_not_fit_the_model_fails_the_run_saying_what_to_do(
    finished_store, tmp_path, cifar_root
):
    """Other code (a model changed under the same config) or an edit: the weights do not
    load. The run fails naming the file and what to do, every time, and the file stays."""
    study, results = _copy(finished_store, tmp_path)
    run = results / RUNS[0]
    _interrupted(run)
    _edit_checkpoint(run, lambda c: c["model"].popitem())
    before = _files(results)
    for _ in range(2):
        out = repro(*run_args(study, cifar_root, results))
        assert out.exit_code == 1, out.output
        assert (f"{run / store.CHECKPOINT} does not fit this run's model or optimizer "
                "(RuntimeError: Error(s) in loading state_dict") in out.output  # fmt: skip
        assert "move it aside (rename it) and run again" in out.output
        assert (run / store.CHECKPOINT).read_bytes() == before[f"{RUNS[0]}/{store.CHECKPOINT}"]
    _kept(before, results)


def test_a_run_that_fails_before_its_history_loads_keeps_its_epochs_in_the_summary(
    finished_store, tmp_path, cifar_root
):
    """A failure before the session took up the run's history (here a checkpoint that does
    not fit) recorded 0 epochs, though metrics and checkpoint held 3: status said 0/3, and
    the queue and fusion took the run as never started. The summary says what the run holds."""
    study, results = _copy(finished_store, tmp_path)
    run = results / RUNS[0]
    _interrupted(run)
    _edit_checkpoint(run, lambda c: c["model"].popitem())
    out = repro(*run_args(study, cifar_root, results, "--only", "a"))
    assert out.exit_code == 1 and "CheckpointMismatch" in out.output, out.output
    summary = json.loads((run / store.SUMMARY).read_text())
    assert summary["status"] == store.FAILED
    assert (summary["epochs_done"], summary["epochs_total"]) == (3, 3)
    assert summary["iterations_done"] == store.read_jsonl(run / store.METRICS)[-1]["iteration"] > 0
    assert store.inspect(run).epochs_done == 3
    status = repro("status", str(study), "--results", str(results))
    assert re.search(r"a/seed-0  failed +3/3 ", status.output), status.output


def test_a_run_that_fails_before_its_history_loads_keeps_its_sessions_in_the_summary(
    finished_store, tmp_path, cifar_root
):
    """The same early failure wrote ``sessions: null``: the summary, the run table and the
    provenance lost what machines and data the run had trained on, though its checkpoint
    held them (they return on resume). It lists them, and this session after them."""
    study, results = _copy(finished_store, tmp_path)
    run = results / RUNS[0]
    _interrupted(run)
    earlier = torch.load(run / store.CHECKPOINT, weights_only=True)["sessions"]
    _edit_checkpoint(run, lambda c: c["model"].popitem())
    out = repro(*run_args(study, cifar_root, results, "--only", "a"))
    assert out.exit_code == 1 and "CheckpointMismatch" in out.output, out.output
    summary = json.loads((run / store.SUMMARY).read_text())
    assert summary["status"] == store.FAILED
    assert len(earlier) == 1 and summary["sessions"][:-1] == earlier
    this = summary["sessions"][-1]
    env = store.read_environment(run)
    assert (this["time"], this["hostname"], this["device_name"], this["from_epoch"]) == (
        env["time"], env["hostname"], env["device_name"], 3)  # fmt: skip
    assert this["dataset_fingerprint"] == summary["data"]["dataset_fingerprint"]
    assert this["dataset_fingerprint"] == earlier[0]["dataset_fingerprint"]


def test_retrying_a_failed_run_keeps_the_earlier_failure_aside(
    finished_store, tmp_path, cifar_root
):
    """A session began by deleting error.txt: retrying a failed run lost the traceback of
    its failure. It is kept beside the run under another name; status, which shows the
    current error.txt, no longer shows it once the retry has ended otherwise."""
    study, results = _copy(finished_store, tmp_path)
    run = results / RUNS[0]
    _interrupted(run)
    good = (run / store.CHECKPOINT).read_bytes()
    _edit_checkpoint(run, lambda c: c["model"].popitem())
    out = repro(*run_args(study, cifar_root, results, "--only", "a"))
    assert out.exit_code == 1 and "CheckpointMismatch" in out.output, out.output
    failure = (run / store.ERROR).read_text()
    assert "CheckpointMismatch" in failure

    (run / store.CHECKPOINT).write_bytes(good)  # the user puts the right checkpoint back
    out = repro(*run_args(study, cifar_root, results, "--only", "a"))
    assert out.exit_code == 0, out.output
    assert store.inspect(run).status == store.COMPLETE
    assert not store.present(run / store.ERROR)
    (kept,) = run.glob(f"{store.ERROR}.earlier-failure-*")
    assert kept.read_text() == failure
    status = repro("status", str(study), "--results", str(results))
    assert re.search(r"a/seed-0  complete +3/3 ", status.output), status.output
    assert "CheckpointMismatch" not in status.output


def test_a_fused_member_whose_checkpoint_does_not_fit_is_named():
    from conftest import small_recipe

    from harness.execution import Execution
    from harness.fused_train import FusedTrainer
    from harness.train import CheckpointMismatch
    from harness.zoo import spec_from_name

    ex = Execution(device=torch.device("cpu"))
    state = {"model": {"nothing": torch.zeros(1)}, "optimizer": {}}
    with pytest.raises(CheckpointMismatch, match=r"^runs/b/checkpoint.pt does not fit"):
        FusedTrainer(spec_from_name("resnet8"), [small_recipe()] * 2, [0, 1], ex,
                     [None, state], ["runs/a/checkpoint.pt", "runs/b/checkpoint.pt"])  # fmt: skip


def test_nan_in_a_summary_never_counts_and_is_flagged(finished_store, tmp_path):
    study, results = _copy(finished_store, tmp_path)
    path = results / RUNS[0] / store.SUMMARY
    summary = json.loads(path.read_text())
    path.write_text(json.dumps({**summary, "test_error": math.nan}))
    out = repro("report", "--study", str(study), "--results", str(results), "--format", "json",
                "--out", str(tmp_path / "c.json"))  # fmt: skip
    assert out.exit_code == 0, out.output
    repro("report", "--study", str(study), "--results", str(results),
          "--out", str(tmp_path / "r.html"))  # fmt: skip
    assert "impossible figure (summary test_error = nan)" in (tmp_path / "r.html").read_text()


def test_provenance_with_only_unfinished_runs_says_when_they_ran(tmp_path):
    from harness.report import report_for

    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    run = tmp_path / "results" / "tiny" / "a" / "seed-0"
    from harness.plan import plan
    from harness.studyfile import load_study

    (p,) = plan(load_study(study))
    store.write_json(run / store.CONFIG, {"hash": p.hash, **p.config})
    store.write_json(run / store.ENVIRONMENT, {"time": "2026-11-26T06:35:18+00:00"})
    built = report_for([study], tmp_path / "results")
    assert built.provenance.first == built.provenance.last == "2026-11-26T06:35:18+00:00"


FILES = (store.METRICS, store.SUMMARY, store.CONFIG, store.ENVIRONMENT, store.CHECKPOINT)


@st.composite
def damages(draw):
    run = draw(st.sampled_from(RUNS))
    name = draw(st.sampled_from(FILES))
    # "digit", "swap" and "repeat" leave a file that still reads: one digit changed (a figure,
    # an epoch, a count), two lines swapped, a line written over the next.
    how = draw(st.sampled_from(["truncate", "garbage", "delete", "shape", "loop", "digit",
                                "swap", "repeat"]))  # fmt: skip
    cut = draw(st.floats(0, 1))
    junk = draw(st.binary(min_size=1, max_size=40))
    shape = draw(st.sampled_from([b"{}", b"[]", b"null", b"3", b'{"status": 7}', b'"x"']))
    return run, name, how, cut, junk, shape


def _another_digit(data: bytes, where: float) -> bytes:
    """``data`` with the digit nearest ``where`` (a share of the digits) changed."""
    digits = [i for i, b in enumerate(data) if b in b"0123456789"]
    if not digits:
        return data
    i = digits[int(where * (len(digits) - 1))]
    return data[:i] + str((data[i] - ord("0") + 1) % 10).encode() + data[i + 1 :]


def _lines_moved(data: bytes, where: float, *, swap: bool) -> bytes:
    """``data`` with the line at ``where`` (a share of the lines) swapped with the next, or
    written over it."""
    lines = data.splitlines(True)
    if len(lines) < 2:
        return data
    i = int(where * (len(lines) - 2))
    first, second = lines[i], lines[i + 1]
    lines[i], lines[i + 1] = (second, first) if swap else (first, first)
    return b"".join(lines)


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(hits=st.lists(damages(), min_size=1, max_size=3))
def test_random_damage_never_tracebacks_and_never_loses_a_file(
    finished_store, tmp_path_factory, cifar_root, hits
):
    tmp_path = tmp_path_factory.mktemp("fuzz")
    study, results = _copy(finished_store, tmp_path)
    for run, name, how, cut, junk, shape in hits:
        path = results / run / name
        if not path.exists():
            continue
        data = path.read_bytes()
        if how == "truncate":
            path.write_bytes(data[: int(len(data) * cut)])
        elif how == "garbage":
            at = int(len(data) * cut)
            path.write_bytes(data[:at] + junk + data[at:])
        elif how == "delete":
            path.unlink()
        elif how == "loop":  # a link to itself: there, but leads nowhere
            path.unlink()
            os.symlink(path.name, path)
        elif how == "digit":
            path.write_bytes(_another_digit(data, cut))
        elif how in ("swap", "repeat"):
            path.write_bytes(_lines_moved(data, cut, swap=how == "swap"))
        else:
            path.write_bytes(shape)
    before = _files(results)
    for args in (["report", "--study", str(study), "--results", str(results),
                  "--out", str(tmp_path / "r.html")],
                 ["status", str(study), "--results", str(results)],
                 run_args(study, cifar_root, results)):  # fmt: skip
        out = repro(*args)
        assert out.exception is None or isinstance(out.exception, SystemExit), (
            args[0],
            "".join(__import__("traceback").format_exception(out.exception)),
        )
        assert out.exit_code in (0, 1), (args[0], out.output)
    _kept(before, results)


@pytest.mark.parametrize("where", ["tiny", "tiny/a", "tiny/a/seed-0"])
def test_a_file_where_a_directory_of_the_store_belongs(finished_store, tmp_path, cifar_root,
                                                      where):  # fmt: skip
    """A stray file as a study's, experiment's or run's directory gave status, import and
    run a NotADirectoryError traceback. Status calls the run damaged and says what run will
    do; import refuses the run; run keeps the file aside and trains the run."""
    study, _ = _copy(finished_store, tmp_path)
    archive = tmp_path / "a.tar.gz"
    assert repro("export", str(study), "--out", str(archive),
                 "--results", str(tmp_path / "w" / "results")).exit_code == 0  # fmt: skip
    results = tmp_path / "stray"
    (results / where).parent.mkdir(parents=True, exist_ok=True)
    (results / where).write_text("not a directory\n")
    stray = f"{results / where} is a file where a directory"

    status = repro("status", str(study), "--results", str(results))
    assert status.exit_code == 0, status.output
    assert "a/seed-0  damaged" in status.output and stray in status.output
    assert "`repro run` keeps it aside (renamed) and trains the run" in status.output

    imported = repro("import", str(archive), "--results", str(results))
    assert imported.exit_code == 1 and imported.exception is not None, imported.output
    assert isinstance(imported.exception, SystemExit), imported.output
    assert f"REFUSED   {RUNS[0]}: {stray} belongs; move it aside and import again" \
        in imported.output  # fmt: skip
    assert (results / where).read_text() == "not a directory\n"

    out = repro(*run_args(study, cifar_root, results, "--only", "a"))
    assert out.exit_code == 0, out.output
    assert f"note: {stray} of the store belongs; kept as " in out.output
    (kept,) = (results / where).parent.glob(f"{Path(where).name}.not-a-directory-*")
    assert kept.read_text() == "not a directory\n"
    assert store.inspect(results / RUNS[0]).status == store.COMPLETE


@pytest.mark.parametrize("name", [store.SUMMARY, store.METRICS, store.CONFIG, store.ENVIRONMENT,
                                  store.PROGRESS, store.ERROR, store.CHECKPOINT])  # fmt: skip
def test_a_directory_where_a_run_file_belongs(finished_store, tmp_path, cifar_root, name):
    """A directory named like a run's file gave tracebacks: status, report and export for
    config.json and progress.json, export for the summary, curves and environment, run for
    progress.json and error.txt. Each now reads it as the unreadable file it stands for, and
    run keeps it aside (with what it holds) and goes on."""
    study, results = _copy(finished_store, tmp_path)
    run = results / RUNS[0]
    _interrupted(run)
    (run / name).unlink(missing_ok=True)
    (run / name).mkdir()
    (run / name / "inside.txt").write_text("kept\n")
    before = _files(results)
    for args in (["status", str(study), "--results", str(results)],
                 ["report", "--study", str(study), "--results", str(results),
                  "--out", str(tmp_path / "r.html")],
                 ["export", str(study), "--results", str(results),
                  "--out", str(tmp_path / "a.tar.gz")],
                 run_args(study, cifar_root, results, "--only", "a")):  # fmt: skip
        out = repro(*args)
        assert out.exit_code == 0 and out.exception is None, (args[0], out.output)
    assert store.inspect(run).status == store.COMPLETE
    assert [p.read_text() for p in run.glob(f"{name}*/inside.txt")] == ["kept\n"]
    _kept(before, results)


def test_a_directory_where_the_worker_log_belongs(finished_store, tmp_path, cifar_root):
    """worker.log is opened for appending by the parent of `--runs-per-gpu` workers: a
    directory there gave the parent an IsADirectoryError traceback, and status one for a
    failed run, whose log it shows. Status now passes it by; run keeps it aside (with what
    it holds), says so, and trains the run."""
    study, results = _copy(finished_store, tmp_path)
    run = results / RUNS[0]
    store.mark_failed(run, "the test's failure")
    (run / store.WORKER_LOG).mkdir()
    (run / store.WORKER_LOG / "inside.txt").write_text("kept\n")
    before = _files(results)

    status = repro("status", str(study), "--results", str(results))
    assert status.exit_code == 0 and status.exception is None, status.output
    assert "a/seed-0  failed" in status.output, status.output

    out = repro(*run_args(study, cifar_root, results, "--only", "a", "--runs-per-gpu", "2"))
    assert out.exit_code == 0 and out.exception is None, out.output
    assert f"warning: {run / store.WORKER_LOG} is a directory where a file belongs" in out.output
    assert store.inspect(run).status == store.COMPLETE
    assert (run / store.WORKER_LOG).is_file()
    assert [p.read_text() for p in run.glob("worker.log.*/inside.txt")] == ["kept\n"]
    _kept(before, results)


@pytest.mark.parametrize("job", ['[1]', '"x"', "3", '{"executor": "slurm"}',
                                 '{"job_id": "7", "executor": "slurm", "stderr": 5}'])  # fmt: skip
def test_a_job_record_of_the_wrong_shape_is_ignored(tmp_path, job):
    """job.json is the scheduler's bookkeeping; one of the wrong shape gave status (and run,
    for a run not yet started) an AttributeError, KeyError or TypeError traceback."""
    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    run = tmp_path / "results" / "tiny" / "a" / "seed-0"
    run.mkdir(parents=True)
    (run / store.JOB).write_text(job)
    out = repro("status", str(study), "--results", str(tmp_path / "results"))
    assert out.exit_code == 0 and out.exception is None, out.output
    shown = "queued" if job.startswith('{"job_id"') else "pending"
    assert f"a/seed-0  {shown}" in out.output, out.output
    assert store.inspect(run).status == ("queued" if shown == "queued" else "absent")


def test_two_supersedes_in_one_second_keep_both(tmp_path):
    """Folder names carry the second: the second move must not land inside the first."""
    run = tmp_path / "tiny" / "a" / "seed-0"
    for n in range(3):
        store.write_text(run / "summary.json", f"{n}")
        store.supersede(run, f"round {n}")
    kept = sorted((tmp_path / "tiny" / "a" / ".superseded").iterdir())
    assert len(kept) == 3 and sorted(p.joinpath("summary.json").read_text() for p in kept) == [
        "0", "1", "2"]  # fmt: skip


def test_two_files_kept_aside_in_one_second_keep_both(tmp_path):
    """The second took the first's name, and rename replaced it: a checkpoint kept aside was
    lost when the next one was kept aside within the second."""
    path = tmp_path / store.CHECKPOINT
    for n in range(3):
        path.write_text(f"{n}")
        store.set_aside(path)
    kept = sorted(tmp_path.glob("checkpoint.pt.unreadable-*"))
    assert sorted(p.read_text() for p in kept) == ["0", "1", "2"]


@pytest.mark.parametrize("stray", ["a file", "a link loop"])
def test_a_file_named_like_the_superseded_folder_is_kept_aside_not_in_the_way(tmp_path, stray):
    """supersede (a changed config, --force, an import that advances a run) failed with
    FileExistsError where a file took the folder's name, and where a link to itself did
    (Path.exists said there was nothing there)."""
    run = tmp_path / "tiny" / "a" / "seed-0"
    store.write_text(run / "summary.json", "{}")
    if stray == "a file":
        (run.parent / ".superseded").write_text("stray\n")
    else:
        os.symlink(".superseded", run.parent / ".superseded")
    where = store.supersede(run, "redone")
    assert where.parent == run.parent / ".superseded" and (where / "summary.json").exists()
    (kept,) = run.parent.glob(".superseded.not-a-directory-*")
    assert kept.is_symlink() if stray == "a link loop" else kept.read_text() == "stray\n"


def test_what_an_abandoned_write_left_is_swept_when_the_run_is_next_locked(tmp_path):
    """A process abandoned mid-write (a third Ctrl-C, SIGKILL) leaves _atomic_write's
    temporary file, a checkpoint's up to megabytes, that nothing reads: the next holder of
    the run's lock removes it; a fresh one (a writer without the lock still at it) stays."""
    run_dir = tmp_path / "run"
    store.write_json(run_dir / store.CONFIG, {"hash": "x"})
    stale = run_dir / ".checkpoint.pt.k3j2.tmp"
    fresh = run_dir / ".summary.json.q9z1.tmp"
    stale.write_bytes(b"\0" * 1000)
    fresh.write_text("{")
    old = time.time() - 2 * leftovers.WRITE_AGE_S
    os.utime(stale, (old, old))
    with store.run_lock(run_dir):
        assert not stale.exists() and fresh.exists()
    assert store.read_json(run_dir / store.CONFIG) == {"hash": "x"}


# --------------------------------------------------------------------------- the sweep
# Damage the cases above did not reach (the audit of 2026-11-27), each tried on status, report,
# export and run. A link that leads nowhere (a loop here) read as no file at all: the run as
# interrupted, pending, or made with another config (then trained again over its history);
# a lock that is no file, or a folder of the store that is such a link, gave run a traceback.


def _loop(name: str):
    def spoil(run: Path) -> None:
        (run / name).unlink(missing_ok=True)
        os.symlink(name, run / name)

    return spoil


def _folder_loop(up: int):
    """The run's folder (0), its experiment's (1): a link to itself, all it held moved away."""

    def spoil(run: Path) -> None:
        folder = [run, run.parent][up]
        folder.rename(folder.with_name("moved-away"))
        os.symlink(folder.name, folder)

    return spoil


def _rows(order):
    """metrics.jsonl with its rows in this order (indices), as a hand merge could leave it."""

    def spoil(run: Path) -> None:
        lines = (run / store.METRICS).read_text().splitlines(True)
        (run / store.METRICS).write_text("".join(lines[i] for i in order))

    return spoil


def _lines(edit):
    """metrics.jsonl with its lines, as read with their digests, edited by hand: ``edit`` takes
    the list of records and returns the file's."""

    def spoil(run: Path) -> None:
        rows = [json.loads(line) for line in (run / store.METRICS).read_text().splitlines()]
        (run / store.METRICS).write_text("".join(json.dumps(r) + "\n" for r in edit(rows)))

    return spoil


def _renumbered(rows: list[dict]) -> list[dict]:
    """Each record numbered by its line again, as a hand edit that hides a move would."""
    return [{**r, "epoch": i} for i, r in enumerate(rows, 1)]


def _set(index: int, **fields):
    return _lines(lambda rows: [{**r, **fields} if i == index else r for i, r in enumerate(rows)])


def _paused(run: Path) -> None:
    summary = json.loads((run / store.SUMMARY).read_text())
    (run / store.SUMMARY).write_text(json.dumps({**summary, "status": store.PAUSED}))


def _lock(make):
    def spoil(run: Path) -> None:
        (run / store.LOCK).unlink(missing_ok=True)
        make(run / store.LOCK)

    return spoil


def _unreadable(run: Path) -> None:
    (run / store.SUMMARY).chmod(0)


def _then(*steps):
    return lambda run: [step(run) for step in steps]


def _unknown_files(run: Path) -> None:
    (run / "notes.txt").write_text("mine\n")
    (run.parent.parent / "README").write_text("a study folder note\n")


# case: (what is done to tiny/a/seed-0, what status says of it (a damaged run's line holds
# the file, what is wrong and what run will do; otherwise its status), what run says)
SWEEP = {
    "summary.json a link loop": (
        _loop(store.SUMMARY),
        "summary.json: is not readable JSON ([Errno 40] Too many levels of symbolic links",
        "kept summary.json aside as summary.json.unreadable-"),
    "summary.json unreadable (chmod 000)": (
        _unreadable, "summary.json: is not readable JSON ([Errno 13] Permission denied",
        "kept summary.json aside as summary.json.unreadable-"),
    "config.json a link loop": (
        _loop(store.CONFIG),
        "config.json: is not readable JSON ([Errno 40] Too many levels of symbolic links",
        "kept config.json aside as config.json.unreadable-"),
    "config.json missing": (
        lambda run: (run / store.CONFIG).unlink(),
        "config.json: is missing, though the run holds metrics.jsonl, checkpoint.pt, a "
        "complete summary; `repro run` writes it again from the study (the checkpoint was "
        "made with the same config)",
        "  config.json written again from the study (its checkpoint was made with the same "
        "config)"),
    "config.json missing, interrupted": (
        _then(_interrupted, lambda run: (run / store.CONFIG).unlink()),
        "config.json: is missing, though the run holds metrics.jsonl, checkpoint.pt; ",
        "all 3 epochs had finished (interrupted); its summary is written again"),
    "an epoch twice, interrupted": (
        _then(_interrupted, _rows([0, 1, 2, 2])),
        "metrics.jsonl: holds epochs 1, 2, 3, 3, not 1..4 in order; `repro run` keeps it "
        "aside and rebuilds it from the checkpoint",
        "kept metrics.jsonl aside as metrics.jsonl.inconsistent-"),
    "epochs out of order, paused": (
        _then(_paused, _rows([1, 0, 2])),
        "metrics.jsonl: holds epochs 2, 1, 3, not 1..3 in order",
        "kept metrics.jsonl aside as metrics.jsonl.inconsistent-"),
    # A line that still reads, changed in the middle of the curve: its own digest names it
    # (harness.epoch_digest); each read as a result, at epoch 2 for the claim there.
    "a test error edited": (
        _set(1, test_error=60.0),
        "metrics.jsonl: line 2 (epoch 2): its figures are not those training wrote on it",
        "kept metrics.jsonl aside as metrics.jsonl.unreadable-"),
    "a test error edited, paused": (
        _then(_paused, _set(1, test_error=60.0)), "line 2 (epoch 2): its figures are not",
        "kept metrics.jsonl aside as metrics.jsonl.unreadable-"),
    "a loss edited, interrupted": (
        _then(_interrupted, _set(0, train_loss=0.01)), "line 1 (epoch 1): its figures are not",
        "kept metrics.jsonl aside as metrics.jsonl.unreadable-"),
    "two lines swapped, epochs put right": (
        _lines(lambda rows: _renumbered([rows[1], rows[0], rows[2]])),
        "line 1 (epoch 1): its figures are not",
        "kept metrics.jsonl aside as metrics.jsonl.unreadable-"),
    "a line over another, its epoch put right": (
        _lines(lambda rows: _renumbered([rows[0], rows[0], rows[2]])),
        "line 2 (epoch 2): its figures are not",
        "kept metrics.jsonl aside as metrics.jsonl.unreadable-"),
    "a line without its digest": (
        _lines(lambda rows: [rows[0], {k: v for k, v in rows[1].items() if k != "digest"},
                             rows[2]]),
        "metrics.jsonl: line 2 (epoch 2) has no digest where the others have one",
        "kept metrics.jsonl aside as metrics.jsonl.unreadable-"),
    "curves short of a paused summary": (
        _then(_paused, _without_last_epoch),
        "metrics.jsonl: holds 2 epochs (1..2), not the 3 its summary says",
        "kept metrics.jsonl aside as metrics.jsonl.inconsistent-"),
    "checkpoint.pt a link loop, interrupted": (
        _then(_interrupted, _loop(store.CHECKPOINT)), "interrupted",
        "starting over from epoch 0 (interrupted): its checkpoint cannot be read, so its 3 "
        "epochs cannot be resumed"),
    "run folder a link loop": (
        _folder_loop(0), "seed-0 is a file where a directory belongs; `repro run` keeps it "
        "aside (renamed) and trains the run", "kept as seed-0.not-a-directory-"),
    "experiment folder a link loop": (
        _folder_loop(1), "tiny/a is a file where a directory belongs",
        "kept as a.not-a-directory-"),
    "lock a directory, interrupted": (
        _then(_interrupted, _lock(Path.mkdir)), "interrupted",
        "lock is not a file, so the run could not be locked; kept as lock.not-a-file-"),
    "lock a link loop, interrupted": (
        _then(_interrupted, _lock(lambda path: os.symlink(path.name, path))), "interrupted",
        "lock is not a file, so the run could not be locked; kept as lock.not-a-file-"),
    "lock left by a killed process, interrupted": (
        _then(_interrupted, _lock(lambda path: path.write_text("pid 99999 on gone\n"))),
        "interrupted", "all 3 epochs had finished (interrupted)"),
    "unknown files beside the run's": (_unknown_files, "complete", "already complete"),
}  # fmt: skip
SWEEP_CLAIMS = """\
claims:
  - {source: test, where: T1, experiment: a, metric: test_error, value: 60}
  - {source: test, where: T2, experiment: a, metric: test_error_at_epoch, epoch: 2, value: 60}
"""


@pytest.mark.parametrize("case", SWEEP)
def test_the_sweep_each_command_says_what_is_damaged_and_run_repairs_it(
    finished_store, tmp_path, cifar_root, case
):
    """No command tracebacks; status says which file, what is wrong and what run will do;
    the report never counts the run; run repairs it, says how, and keeps every file."""
    from harness.report import report_for

    if case.endswith("(chmod 000)") and os.geteuid() == 0:
        pytest.skip("root reads a file whatever its mode: chmod 000 is no damage to root")
    study, results = _copy(finished_store, tmp_path)
    study.write_text(study.read_text() + SWEEP_CLAIMS)
    spoil, says, does = SWEEP[case]
    healthy = {n: d for n, d in _files(results).items() if n.startswith(RUNS[1])}
    original_curves = curves(results, RUNS[0])
    spoil(results / RUNS[0])
    before = _files(results)

    status = repro("status", str(study), "--results", str(results))
    assert status.exit_code == 0 and status.exception is None, status.output
    (line,) = [s for s in status.output.splitlines() if s.strip().startswith("a/seed-0 ")]
    damaged = not says.isalpha()
    assert says in line and ("  damaged  " in line) == damaged, line
    views = [v for v in report_for([study], results).studies[0].runs if v.experiment == "a"]
    if damaged:  # listed as damaged, or not at all (a folder that is no folder): never counted
        assert all(v.status == store.DAMAGED and not v.counted and not v.counted_at_epochs
                   and v.why_not.startswith("damaged: ") for v in views), views  # fmt: skip
    for args in (["report", "--study", str(study), "--results", str(results),
                  "--out", str(tmp_path / "r.html")],
                 ["export", str(study), "--results", str(results),
                  "--out", str(tmp_path / "a.tar.gz")]):  # fmt: skip
        out = repro(*args)
        assert out.exit_code == 0 and out.exception is None, (args[0], out.output)

    out = repro(*run_args(study, cifar_root, results))
    assert out.exit_code == 0 and out.exception is None, out.output
    assert does in out.output, out.output
    assert store.inspect(results / RUNS[0]).status == store.COMPLETE
    assert curves(results, RUNS[0]) == original_curves  # from the checkpoint, or retrained
    _kept(before, results)
    assert {n: d for n, d in _files(results).items() if n.startswith(RUNS[1])} == healthy


# Two seeds on the whole of the tests' data set (600 training, 200 test images, six steps an
# epoch): runs that count, unlike those of a recipe on a subset.
COUNTING_STUDY = """\
  - {name: a, model: resnet8, recipe: base, seeds: 2}
claims:
  - {source: test, where: T1, experiment: a, metric: test_error, value: 60}
  - {source: test, where: T2, experiment: a, metric: test_error_at_epoch, epoch: 1, value: 60}
"""
TWO_EPOCHS = (TINY_RECIPE.replace("batch_size: 50", "batch_size: 100")
              .replace("epochs: 3", "epochs: 2").replace("[2]", "[1]"))  # fmt: skip


def test_real_paused_resumed_and_fused_runs_are_never_taken_for_damaged(
    tmp_path, cifar_root, monkeypatch
):
    """What the checks on a curve and its summary read is what training writes, however it
    trained: a run paused by its budget and resumed from its checkpoint, and a fused pair,
    count (the paused one at epoch 1 while it waits), none listed as damaged."""
    from harness import budget
    from harness.report import report_for

    study = tiny_study(tmp_path / "s.yaml", COUNTING_STUDY, recipe=TWO_EPOCHS)

    def views(results: Path) -> list:
        return report_for([study], results).studies[0].runs

    paused = tmp_path / "paused"
    fits = iter([True, False])  # it pauses after its first epoch
    monkeypatch.setattr(budget.Deadline, "fits", lambda self, estimate: next(fits, False))
    out = repro(*run_args(study, cifar_root, paused, "--seeds", "1", "--time-budget", "10m"))
    assert out.exit_code == 0 and "1 run paused" in out.output, out.output
    (waiting,) = views(paused)
    assert (waiting.status, waiting.under_way, waiting.counted_at_epochs) == ("paused", True, (1,))
    monkeypatch.undo()
    out = repro(*run_args(study, cifar_root, paused, "--seeds", "1"))  # from its checkpoint
    assert out.exit_code == 0, out.output
    out = repro(*run_args(study, cifar_root, tmp_path / "fused", "--fuse", "2"))
    assert out.exit_code == 0 and "fused: 2 runs as one network" in out.output, out.output
    for results, seeds in ((paused, 1), (tmp_path / "fused", 2)):
        counted = views(results)
        assert len(counted) == seeds and all(v.counted for v in counted), counted


def _garbage(name: str):
    return lambda run: (run / name).write_bytes(b"\x00\xffnot json\n")


# case: (what is done to tiny/a/seed-0, what status shows in its epochs column)
HOW_FAR = {
    "torn curves, summary readable": (_garbage(store.METRICS), "3/3"),
    "summary garbage, curves readable": (_garbage(store.SUMMARY), "3"),
    "summary a link loop, curves readable": (_loop(store.SUMMARY), "3"),
    "curves without the last epoch": (_without_last_epoch, "3/3"),
    "an epoch twice, interrupted": (_then(_interrupted, _rows([0, 1, 2, 2])), "3"),
    "both unreadable": (_then(_garbage(store.METRICS), _garbage(store.SUMMARY)), "?"),
    "run folder a link loop": (_folder_loop(0), "?"),
}


@pytest.mark.parametrize("case", HOW_FAR)
def test_status_says_how_far_a_damaged_run_got_or_that_it_cannot_tell(
    finished_store, tmp_path, case
):
    """Status showed 0 epochs (0/3) for every damaged run, though its curves or summary
    still said it had trained 3. It shows the furthest epoch a readable record attests, and
    "?" where none reads, never a false 0."""
    study, results = _copy(finished_store, tmp_path)
    spoil, shown = HOW_FAR[case]
    spoil(results / RUNS[0])
    status = repro("status", str(study), "--results", str(results))
    assert status.exit_code == 0, status.output
    (line,) = [s for s in status.output.splitlines() if s.strip().startswith("a/seed-0 ")]
    assert re.search(rf"a/seed-0  damaged +{re.escape(shown)}  ", line), line


@pytest.mark.parametrize(("spoil", "problem"), [
    (lambda path: path.unlink(), "is missing, though the run holds metrics.jsonl, checkpoint.pt, "
                                 "a complete summary"),
    (lambda path: path.write_text("[]"), "holds a list, not a run config"),
])  # fmt: skip
def test_import_over_a_run_without_a_usable_config_says_so(finished_store, tmp_path, spoil,
                                                           problem):  # fmt: skip
    """It was refused as a run of another config, "(None)", the study said to have changed
    between the two machines: which config the run here has cannot be told, and repro run
    repairs that first."""
    study, results = _copy(finished_store, tmp_path)
    archive = tmp_path / "a.tar.gz"
    assert (
        repro("export", str(study), "--out", str(archive), "--results", str(results)).exit_code == 0
    )
    spoil(results / RUNS[0] / store.CONFIG)
    before = _files(results)
    out = repro("import", str(archive), "--results", str(results))
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit), out.output
    assert (f"REFUSED   {RUNS[0]}: {results / RUNS[0] / store.CONFIG}: {problem}; run `repro run` "
            "on its study here first (it writes the config again or moves the run aside), then "
            "import again") in out.output  # fmt: skip
    assert "differs from the one here" not in out.output
    assert _files(results) == before


@pytest.mark.parametrize("progress", ["[1]", '"x"', "3", "null"])
def test_a_progress_marker_of_the_wrong_shape_never_stops_status(tmp_path, progress):
    """progress.json is a hint of a running run's epoch: one of the wrong shape gave status an
    AttributeError traceback while the run was being trained."""
    from fake_runs import fake_run

    from harness.studyfile import load_study

    path = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    run = fake_run(tmp_path / "results", load_study(path), "a", status="running")
    (run / store.PROGRESS).write_text(progress)
    with store.run_lock(run):
        out = repro("status", str(path), "--results", str(tmp_path / "results"))
    assert out.exit_code == 0 and out.exception is None, out.output
    assert "a/seed-0  running" in out.output, out.output


STORE_IN_THE_WAY = {
    "a file": (lambda path: path.write_text("not a store\n"), "is a file"),
    "a link loop": (lambda path: os.symlink(path.name, path), "a link that leads nowhere"),
    "below a file": (lambda path: path.parent.joinpath("file").write_text("x\n"),
                     "a path below a regular file"),
}  # fmt: skip


@pytest.mark.parametrize("case", STORE_IN_THE_WAY)
def test_a_store_that_is_no_folder_is_a_clear_error_for_every_command(
    finished_store, tmp_path, cifar_root, case
):
    """A link loop as --results gave run, evaluate and import an OSError traceback (the
    writable check walked past it to its parent), and a path below a file gave import a
    NotADirectoryError; each now refuses with exit status 2 and one line, touching nothing.
    (A regular file as --results is refused while parsing: tests/test_cli.py.) Status and report read it as no store."""
    study, _ = _copy(finished_store, tmp_path)
    archive = tmp_path / "a.tar.gz"
    assert repro("export", str(study), "--out", str(archive),
                 "--results", str(tmp_path / "w" / "results")).exit_code == 0  # fmt: skip
    make, said = STORE_IN_THE_WAY[case]
    target = tmp_path / "store"
    make(target)
    results = tmp_path / "file" / "store" if case == "below a file" else target
    checkpoints = Path(__file__).resolve().parents[1] / "studies" / "checkpoints.yaml"
    for args in (run_args(study, cifar_root, results),
                 ["import", str(archive), "--results", str(results)],
                 ["evaluate", str(checkpoints), "--results", str(results), "--data-dir",
                  str(cifar_root), "--device", "cpu"]):  # fmt: skip
        out = repro(*args)
        assert out.exit_code == 2 and isinstance(out.exception, SystemExit), (args[0], out.output)
        assert said in out.output and "--results" in out.output, (args[0], out.output)
    for args in (["status", str(study), "--results", str(results)],
                 ["report", "--study", str(study), "--results", str(results),
                  "--out", str(tmp_path / "r.html")]):  # fmt: skip
        out = repro(*args)
        assert out.exception is None or isinstance(out.exception, SystemExit), out.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "r.html") == sorted(
        ["w", "a.tar.gz", "store" if case != "below a file" else "file"])  # fmt: skip
    assert os.path.lexists(target) or (tmp_path / "file").read_text() == "x\n"


def test_an_archived_run_is_judged_by_its_files_not_by_its_manifest(finished_store, tmp_path):
    """An archive whose run says complete in its manifest but whose files are damaged (an
    epoch twice in its curves: as an older repro exported it, checksums and all) advanced a
    healthy unfinished run here, which then trained from epoch 0, as an ended run travels
    without its checkpoint. Import now reads the files: the run is damaged, and no more than
    the one here."""
    import hashlib

    from test_transfer import _manifest, _members, _pack, _with_manifest

    study, results = _copy(finished_store, tmp_path)
    good = tmp_path / "good.tar.gz"
    assert repro("export", str(study), "--out", str(good), "--results", str(results)).exit_code == 0
    members = _members(good)
    name = f"{RUNS[0]}/{store.METRICS}"
    lines = members[name].decode().splitlines(True)
    members[name] = "".join([*lines, lines[-1]]).encode()
    manifest = _manifest(members)
    for run in manifest["runs"]:
        if run["path"] == RUNS[0]:
            assert run["status"] == store.COMPLETE
            run["files"][store.METRICS] = hashlib.sha256(members[name]).hexdigest()
    archive = _pack(tmp_path / "old.tar.gz", _with_manifest(members, manifest))

    _interrupted(results / RUNS[0])  # healthy: only its summary is to be written again
    before = _files(results)
    out = repro("import", str(archive), "--results", str(results))
    assert out.exit_code == 0, out.output
    assert f"skipped   {RUNS[0]}: here interrupted at 3 epochs, archive damaged at 3" in out.output
    assert _files(results) == before

    elsewhere = tmp_path / "elsewhere"
    out = repro("import", str(archive), "--results", str(elsewhere))
    assert out.exit_code == 0, out.output
    assert f"added     {RUNS[0]}: damaged, 3 epochs (no checkpoint: restarts)" in out.output
    assert store.inspect(elsewhere / RUNS[0]).status == store.DAMAGED


@pytest.mark.parametrize(("case", "shown"), [
    ("torn curves, progress says 2", "2/4"),
    ("stale summary garbage, curves say 2", "2 "),  # no total where no record reads
    ("torn curves, progress of the wrong shape", "0/4"),
])  # fmt: skip
def test_status_says_how_far_a_locked_damaged_run_got(tmp_path, case, shown):
    """A run being trained whose files do not all read (a torn line mid-write, a summary of
    an earlier session that is garbage) showed as running at 0 epochs: inspect's fallback
    for a locked run ignored progress.json and the curves. It shows how far they say."""
    from fake_runs import fake_run

    from harness.studyfile import load_study

    path = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    run = fake_run(tmp_path / "results", load_study(path), "a", status="running")  # 2 of 4
    if case.startswith("torn curves"):
        with (run / store.METRICS).open("a") as f:
            f.write('{"epoch": 3, "trai')
    else:
        (run / store.SUMMARY).write_text("garbage")
    if case.endswith("progress says 2"):
        store.write_json(run / store.PROGRESS, {"epoch": 2, "epochs": 4, "host": "node7"})
    elif case.endswith("wrong shape"):
        store.write_json(run / store.PROGRESS, {"epoch": "two", "epochs": 4, "host": ["x"]})
    with store.run_lock(run):
        assert store.inspect(run).status == "running"
        out = repro("status", str(path), "--results", str(tmp_path / "results"))
    assert out.exit_code == 0 and out.exception is None, out.output
    (line,) = [s for s in out.output.splitlines() if s.strip().startswith("a/seed-0 ")]
    assert re.search(rf"a/seed-0  running +{re.escape(shown)}", line + " "), line
    if case.endswith("progress says 2"):
        assert line.endswith("on node7"), line


def test_damaged_metrics_with_an_unreadable_checkpoint_are_not_said_to_be_rebuilt(tmp_path):
    """The repair says what it does: with no readable checkpoint, nothing is rebuilt."""
    from fake_runs import fake_run

    from harness.plan import plan
    from harness.runner import _recover
    from harness.studyfile import load_study

    study = load_study(
        tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    )
    run = fake_run(tmp_path / "results", study, "a")
    (run / store.METRICS).write_bytes(b"\x00\xffnot json\n")
    (run / store.CHECKPOINT).write_bytes(b"not a checkpoint")
    [p] = [p for p in plan(study) if p.experiment.name == "a"]
    said: list[str] = []
    after = _recover(p, run, store.inspect(run), said.append)
    text = "\n".join(said)
    assert "rebuilt from the checkpoint" not in text, text
    assert re.search(r"kept metrics\.jsonl aside as \S+; not rebuilt: its checkpoint cannot be "
                     "read either", text), text  # fmt: skip
    # Its summary, kept aside as inconsistent, is made anew by training from epoch 0.
    assert "made anew as the run trains again from epoch 0 (its checkpoint cannot be read)" in text
    assert (after.status, after.epochs_done) == ("interrupted", 0)


# --------------------------------------------------------------------------- storeslips3


@pytest.mark.parametrize(("checkpoint", "why"), [
    ("absent", "it has no checkpoint to rebuild them from"),
    ("unreadable", "its checkpoint cannot be read either"),
    ("no history", "its checkpoint (of another format) holds no per-epoch records"),
])  # fmt: skip
def test_the_repair_says_why_curves_are_not_rebuilt_as_it_is(tmp_path, checkpoint, why):
    """Damaged curves that the checkpoint cannot rebuild: the repair said "its checkpoint
    cannot be read either" whether the run had no checkpoint at all or a readable one that
    holds no per-epoch history (another format). It says which of the three it is."""
    import torch
    from fake_runs import fake_run

    from harness.plan import plan
    from harness.runner import _recover
    from harness.studyfile import load_study

    study = load_study(
        tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    )
    run = fake_run(tmp_path / "results", study, "a")
    (run / store.METRICS).write_bytes(b"\x00\xffnot json\n")
    if checkpoint == "unreadable":
        (run / store.CHECKPOINT).write_bytes(b"not a checkpoint")
    elif checkpoint == "no history":
        torch.save({"format": -1, "config_hash": "0" * 16}, run / store.CHECKPOINT)
    [p] = plan(study)
    said: list[str] = []
    _recover(p, run, store.inspect(run), said.append)
    text = "\n".join(said)
    assert re.search(rf"kept metrics\.jsonl aside as \S+; not rebuilt: {re.escape(why)}, so the "
                     "run has no curves", text), text  # fmt: skip
    assert "rebuilt from the checkpoint" not in text, text


def test_a_summarys_energy_upper_bound_is_checked_like_its_neighbours(tmp_path):
    """A run that shared its GPU with runs NVML did not list records energy_upper_bound_j in
    its summary's telemetry (harness.telemetry.run_totals), a field the summary's check did
    not know: a string there passed as a healthy summary, where one in energy_j beside it is
    damage. Now it is checked as they are; the figure run_totals writes reads back."""
    from fake_runs import fake_run

    from harness.studyfile import load_study
    from harness.telemetry import UNKNOWN, run_totals

    study = load_study(tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n"))  # fmt: skip
    epoch = {"seconds": 10.0, "energy_j": None, "gpu_energy_j": 500.0, "energy_share": UNKNOWN,
             "gpu_processes_max": None, "gpu_util_mean": 90.0, "torch_peak_memory_mib": 12.0}  # fmt: skip
    run = fake_run(tmp_path / "results", study, "a", telemetry=epoch, epochs=4)
    summary = json.loads((run / store.SUMMARY).read_text())
    summary["telemetry"] = run_totals(store.read_jsonl(run / store.METRICS))
    assert summary["telemetry"]["energy_upper_bound_j"] == 2000.0  # 4 epochs of 500 J
    store.write_json(run / store.SUMMARY, summary)
    assert store.read_summary(run)["telemetry"]["energy_upper_bound_j"] == 2000.0
    for field in ("energy_j", "energy_upper_bound_j"):
        summary["telemetry"] = {**summary["telemetry"], field: "2 kJ"}
        store.write_json(run / store.SUMMARY, summary)
        with pytest.raises(store.DamagedFile, match=f'telemetry.{field} is "2 kJ", not a number'):
            store.read_summary(run)
        assert store.inspect(run).status == store.DAMAGED
        summary["telemetry"][field] = None


@pytest.mark.parametrize("edit", ["another attempt", "a link out", "no lock kept", "not JSON"])
def test_a_superseding_record_edited_by_hand_never_moves_files_onto_others_nor_out(tmp_path, edit):
    """A record of a move aside (store.SUPERSEDING) is finished by the next holder of the
    run's lock. One edited by hand named another attempt's folder of .superseded/, whose
    files the move wrote over (a rename replaces a file), or a link in .superseded/ leading
    out of the store, which the run's files followed; or kept no lock, which moved the lock
    file from under its holder. Now such a move goes to a new folder, recorded first, and
    the lock stays; nothing anywhere is written over."""
    from fake_runs import fake_run

    from harness.studyfile import load_study

    study = load_study(tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n"))  # fmt: skip
    run = fake_run(tmp_path / "results", study, "a")
    files = {p.name: p.read_bytes() for p in run.iterdir()}
    attic = run.parent / store.SUPERSEDED
    other = attic / "seed-0-20261101-000000"
    other.mkdir(parents=True)
    for name in files:
        (other / name).write_text(f"an earlier attempt's {name}\n")
    (other / store.SUPERSEDED_NOTE).write_text("redone with --force\n")
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (attic / "out").symlink_to(outside)
    record = {"another attempt": {"target": other.name, "reason": "why", "keep": ["lock"]},
              "a link out": {"target": "out", "reason": "why", "keep": ["lock"]},
              "no lock kept": {"target": "seed-0-x", "reason": "why", "keep": []}}  # fmt: skip
    if edit == "not JSON":
        (run / store.SUPERSEDING).write_text('{"target": "seed-0-x", "rea')
    else:
        (run / store.SUPERSEDING).write_text(json.dumps(record[edit]))
    with store.run_lock(run):
        assert sorted(p.name for p in run.iterdir()) == [store.LOCK]
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before
    assert list(outside.iterdir()) == []
    (moved,) = [p for p in attic.iterdir() if p not in (other, attic / "out")]
    assert {p.name: p.read_bytes() for p in moved.iterdir() if p.name != "SUPERSEDED"} == files
    assert (moved / store.SUPERSEDED_NOTE).read_text() == (
        f"{store.LOST_REASON}\n" if edit == "not JSON" else "why\n"
    )

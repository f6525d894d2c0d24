"""The evidence queue: the repository's own file, bad queue files, the standing, and
`repro queue` training items in order within a budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import QUICK_RECIPE, ROOT, tiny_study
from test_run import repro, summary

from harness import store
from harness.queue import QueueError, load_queue, render, standing, training_flops

QUEUE = """\
achieved_tflops: 0.001
rate_source: a figure for the tests
items:
  - {name: first, why: the one that matters, study: s.yaml, only: [b], runs_per_gpu: 1}
  - {name: rest, why: everything else, study: s.yaml, seeds: 2, runs_per_gpu: 2}
"""


def _queue(tmp_path: Path, text: str = QUEUE) -> Path:
    tiny_study(tmp_path / "s.yaml",
               "  - {name: a, model: resnet8, recipe: base}\n"
               "  - {name: b, model: plain8, recipe: base}\n", recipe=QUICK_RECIPE)  # fmt: skip
    path = tmp_path / "queue.yaml"
    path.write_text(text)
    return path


def test_the_repository_queue_is_valid_and_starts_with_the_20_layer_runs():
    queue = load_queue(ROOT / "queue.yaml")
    first = queue.items[0]
    assert first.study == "studies/degradation.yaml" and first.runs_per_gpu == 6
    assert {p.experiment.model.depth for p in queue.plans(first)} == {20}
    # The six 20-layer runs: 164 epochs (or 64,000 iterations) of about 41M MACs per image.
    pflop = sum(training_flops(p) for p in queue.plans(first)) / 1e15
    assert pflop == pytest.approx(12.0, abs=0.1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("runs_per_gpu: 1}", "runs_per_gpu: 1, colour: red}"), "colour"),
        (("only: [b]", "only: [nope]"), "no such experiment"),
        (("study: s.yaml, only", "study: missing.yaml, only"), "file not found"),
        (("name: rest", "name: first"), "repeated: first"),
        (("achieved_tflops: 0.001", "achieved_tflops: -1"), "achieved_tflops"),
        (("items:", "items: 3\nx:"), "items"),
        (("runs_per_gpu: 1}", "runs_per_gpu: 1, fuse: 0}"), r"items\[0\].fuse: not a fuse setting"),
        (("runs_per_gpu: 1}", "runs_per_gpu: 1, fuse: on}"), "give auto, off or a group size"),
        (("runs_per_gpu: 1}", "runs_per_gpu: 1, fuse: lots}"), "given:   'lots'"),
    ],
)
def test_a_bad_queue_file_says_what_is_wrong(tmp_path, change, message):
    path = _queue(tmp_path, QUEUE.replace(*change))
    with pytest.raises(QueueError, match=message):
        load_queue(path)


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        pytest.param(
            ("runs_per_gpu: 1}", "runs_per_gpu: 1, fuse: atuo}"),
            "queue.yaml:4: items[0].fuse: not a fuse setting: give auto, off or a group size "
            "such as 4; did you mean 'auto'?",
            "given:   'atuo'",
            id="fuse-slip",
        ),
        pytest.param(
            ("runs_per_gpu: 1}", "runs_per_gpu: 1, kind: study}"),
            "queue.yaml:4: items[0].kind: unknown key 'kind': `items[0]` has no kinds",
            "allowed: fuse, name, only, runs_per_gpu, seeds, study, why",
            id="item-has-no-kind",
        ),
        pytest.param(
            ("rate_source:", "kind: queue\nrate_source:"),
            "queue.yaml:2: kind: unknown key 'kind': this file has no kinds",
            "allowed: achieved_tflops, items, rate_source",
            id="file-has-no-kind",
        ),
    ],
)
def test_a_kind_slip_in_a_queue_gets_one_message(tmp_path, change, line, message):
    """As in a study (tests/test_studyfile.py): a misspelt choice of a queue item is offered
    the one it is probably a slip for, and a `kind:` where the queue has none says so (it was
    an unknown key offered nothing, or a key nowhere near)."""
    path = _queue(tmp_path, QUEUE.replace(*change))
    with pytest.raises(QueueError) as info:
        load_queue(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2 and lines[0].endswith(line), str(info.value)
    assert lines[1].strip() == message, str(info.value)


def test_status_shows_where_the_queue_stands(tmp_path, cifar_root):
    path = _queue(tmp_path)
    queue = load_queue(path)
    results = tmp_path / "results"
    rows = standing(queue, results)
    assert [(r.runs, r.ended, r.epochs_done, r.epochs_total) for r in rows] == [
        (1, 0, 0, 3), (4, 0, 0, 12)]  # fmt: skip
    assert rows[0].gpu_minutes_left == pytest.approx(
        rows[0].pflop_total * 1e15 / (0.001 * 1e12) / 60)  # fmt: skip
    assert "next: first" in render(queue, rows)

    out = repro("queue", str(path), "--items", "1", "--device", "cpu", "--quiet",
                "--results", str(results), "--data-dir", str(cifar_root))  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "--- queue item first" in out.output and "queue item rest" not in out.output
    assert summary(results, "tiny/b/seed-0")["status"] == "complete"
    rows = standing(queue, results)
    assert rows[0].done and rows[0].gpu_minutes_left == 0
    # The shared run (b, seed 0) counts for the second item too.
    assert (rows[1].ended, rows[1].epochs_done) == (1, 3)
    status = repro("status", str(tmp_path / "s.yaml"), "--results", str(results),
                   "--queue", str(path))  # fmt: skip
    assert status.exit_code == 0, status.output
    assert "1. first  done" in status.output and "next: rest" in status.output


def test_repro_queue_stops_at_its_budget_and_resumes(tmp_path, cifar_root):
    path = _queue(tmp_path)
    results = tmp_path / "results"
    args = ["--device", "cpu", "--quiet", "--results", str(results),
            "--data-dir", str(cifar_root)]  # fmt: skip
    out = repro("queue", str(path), "--time-budget", "0.001s", *args)
    assert out.exit_code == 0, out.output
    assert "not started" in out.output or "time budget spent" in out.output
    out = repro("queue", str(path), *args)
    assert out.exit_code == 0, out.output
    assert all(r.done for r in standing(load_queue(path), results))


def test_validate_checks_a_queue_as_a_queue(tmp_path):
    """`repro validate` given a queue checks it, with the studies its items name, instead of
    listing every queue key as unknown to a study."""
    path = _queue(tmp_path)
    out = repro("validate", str(path), str(tmp_path / "s.yaml"))
    assert out.exit_code == 0, out.output
    assert f"{path}  valid evidence queue of 2 items" in out.output
    assert "1. first    1 run of" in out.output and "2. rest     4 runs of" in out.output
    assert "tiny  (" in out.output and "valid" in out.output  # the study beside it
    path.write_text(QUEUE.replace("only: [b]", "only: [nope]"))
    bad = repro("validate", str(path))
    assert bad.exit_code == 1 and "no such experiment" in bad.output, bad.output
    assert "1 of 1 file invalid" in bad.output and "unknown key" not in bad.output


def test_a_queue_where_a_study_belongs_and_a_study_where_a_queue_belongs_say_so(tmp_path):
    path = _queue(tmp_path)
    for command in (["run", str(path)], ["status", str(path)], ["report", "--study", str(path)]):
        out = repro(*command)
        assert out.exit_code == 2, (command, out.output)
        assert "this is an evidence queue (it has `items:`), not a study" in out.output, command
        assert f"repro queue {path}" in out.output and "unknown key" not in out.output
    out = repro("queue", str(tmp_path / "s.yaml"))
    assert out.exit_code == 2, out.output
    assert "this is a study (it has `experiments:`), not an evidence queue" in out.output
    assert "unknown key" not in out.output


def test_a_bad_queue_is_a_clear_error(tmp_path):
    out = repro("queue", str(tmp_path / "none.yaml"))
    assert out.exit_code == 2 and "no such queue file" in out.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "",
            "queue.yaml: the file is empty; a queue is a mapping with achieved_tflops, "
            "rate_source and items",
        ),
        (
            QUEUE.replace("runs_per_gpu: 1}", "runs_per_gpu: 0}"),
            "queue.yaml:4: items[0].runs_per_gpu: value out of range\n    given:   0\n"
            "    allowed: a number >= 1",
        ),
        ("achieved_tflops: [\n", "queue.yaml:2: not valid YAML"),
    ],
    ids=["empty", "out-of-range", "not-yaml"],
)
def test_queue_problems_name_the_line_like_a_study_and_status_still_shows_the_studies(
    tmp_path, monkeypatch, text, expected
):
    _queue(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()  # a store, so that status has no note on it to give first
    out = repro("status", "s.yaml")
    assert out.exit_code == 2 and isinstance(out.exception, SystemExit)
    assert out.output.startswith("tiny: 2 runs: 2 pending"), out.output  # the study first
    assert f"error: {expected}" in out.output
    assert "Input should be" not in out.output and "instance of QueueFile" not in out.output


# --------------------------------------------------------------------------- twins

TWIN_QUEUE = """\
achieved_tflops: 0.001
rate_source: a figure for the tests
items:
  - {name: first, why: trains the training, study: one.yaml}
  - {name: second, why: declares the same training, study: two.yaml}
"""


def test_a_training_two_items_declare_is_costed_and_trained_once(tmp_path, cifar_root):
    tiny_study(tmp_path / "one.yaml", "  - {name: x, model: resnet8, recipe: base}\n", name="one")
    tiny_study(tmp_path / "two.yaml", "  - {name: y, model: resnet8, recipe: base}\n", name="two")
    path = tmp_path / "queue.yaml"
    path.write_text(TWIN_QUEUE)
    queue, results = load_queue(path), tmp_path / "results"
    first, second = standing(queue, results)
    # Both pending: the first item trains it, the second adopts it, so it is costed once.
    assert first.gpu_minutes_left > 0 and second.gpu_minutes_left == 0
    assert second.pflop_total == first.pflop_total and second.twinned == 0
    # ... and the second's line says why its minutes are none, not only "1 run pending".
    assert "1 run pending, 1 from an earlier item" in render(queue, [first, second])
    args = ["--device", "cpu", "--quiet", "--results", str(results),
            "--data-dir", str(cifar_root)]  # fmt: skip
    out = repro("queue", str(path), "--items", "1", *args)
    assert out.exit_code == 0, out.output
    first, second = standing(queue, results)
    assert first.done and not second.done
    assert (second.twinned, second.epochs_done, second.gpu_minutes_left) == (1, 3, 0)
    assert "0/1 runs ended, 0 under way, 1 done by twins" in render(queue, [first, second])
    out = repro("queue", str(path), *args)
    assert out.exit_code == 0, out.output
    assert "[  shared] two/y/seed-0: shared with one/x/seed-0" in out.output
    assert "1 adopted" in out.output and all(r.done for r in standing(queue, results))
    assert summary(results, "two/y/seed-0")["shared_with"] == "one/x/seed-0"


# --------------------------------------------------------------------------- fusion

FUSE_QUEUE = """\
achieved_tflops: 0.001
rate_source: a figure for the tests
items:
  - {name: fused, why: the command's --fuse, study: s.yaml, only: [a], seeds: 2, runs_per_gpu: 2}
  - {name: solo, why: its own fuse wins, study: s.yaml, only: [b], seeds: 2, fuse: off}
"""


def _environment(results: Path, run: str) -> dict:
    return json.loads((results / run / "environment.json").read_text())


def test_repro_queue_fuses_as_repro_run_does_and_an_items_own_fuse_wins(tmp_path, cifar_root):
    path = _queue(tmp_path, FUSE_QUEUE)
    queue = load_queue(path)
    assert [i.fuse for i in queue.items] == [None, 1]  # YAML's bare `off` is false: off
    results = tmp_path / "results"
    out = repro("queue", str(path), "--fuse", "2", "--device", "cpu", "--quiet",
                "--results", str(results), "--data-dir", str(cifar_root))  # fmt: skip
    assert out.exit_code == 0, out.output
    # The first item's two seeds trained as one network, in one worker (2 runs to a "GPU").
    for seed in (0, 1):
        env = _environment(results, f"tiny/a/seed-{seed}")
        assert env["fused"] == 2 and env["fused_group"] == ["tiny/a/seed-0", "tiny/a/seed-1"]
        assert summary(results, f"tiny/a/seed-{seed}")["status"] == "complete"
        assert "fused" not in _environment(results, f"tiny/b/seed-{seed}")
    assert "fused: 2 runs as one network: b/seed-0" not in out.output


@pytest.mark.parametrize("value", ["0", "two", "-1", ""])
def test_repro_queue_refuses_a_bad_fuse_in_one_line(tmp_path, value):
    path = _queue(tmp_path)
    out = repro("queue", str(path), "--fuse", value, "--device", "cpu")
    assert out.exit_code == 2
    assert out.output == f"error: --fuse {value!r}: give auto, off or a group size such as 4\n"


@pytest.mark.parametrize(("given", "parsed"), [("auto", "auto"), ("3", 3), ("off", 1), ("1", 1)])
def test_a_queue_item_says_fuse_as_the_command_line_does(tmp_path, given, parsed):
    path = _queue(tmp_path, QUEUE.replace("runs_per_gpu: 1}", f"runs_per_gpu: 1, fuse: {given}}}"))
    assert load_queue(path).items[0].fuse == parsed


def test_repro_queue_refuses_a_copied_study_over_the_originals_runs_unless_told_to_supersede(
    tmp_path, cifar_root
):
    """`repro queue` had no --supersede: a queue item whose study was a copy that kept the
    original's `name:` was refused (the original still plans those runs) with a message to run
    "again with --supersede", which `repro queue` did not take. It takes the flag, with the
    meaning `repro run --supersede` has, and its refusal names `repro queue`."""
    from fake_runs import fake_run
    from test_run import _made_by

    from harness import store
    from harness.studyfile import load_study

    one = "  - {name: a, model: resnet8, recipe: base}\n"
    (tmp_path / "studies").mkdir()
    original = tiny_study(tmp_path / "studies" / "s.yaml", one, recipe=QUICK_RECIPE)
    results = tmp_path / "results"
    # Paused: the queue's standing counts any run that ended as done, whatever its config.
    done = fake_run(results, load_study(original), "a", status="paused", epochs=2)
    _made_by(done, original.resolve())
    tiny_study(tmp_path / "mine.yaml", one,
               QUICK_RECIPE.replace("kind: multistep, milestones: [2], gamma: 0.1",
                                    "kind: cosine"))  # fmt: skip
    path = tmp_path / "queue.yaml"
    path.write_text("achieved_tflops: 0.001\nrate_source: a figure for the tests\nitems:\n"
                    "  - {name: copy, why: the copy, study: mine.yaml, runs_per_gpu: 1}\n")  # fmt: skip
    args = ("queue", str(path), "--results", str(results), "--data-dir", str(cifar_root),
            "--device", "cpu", "--quiet")  # fmt: skip

    refused = repro(*args)
    said = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "nothing was trained" in said, refused.output
    assert "run `repro queue` again with --supersede" in said, said
    assert not (done.parent / ".superseded").exists()

    trained = repro(*args, "--supersede")
    assert trained.exit_code == 0, trained.output
    assert len(list((done.parent / ".superseded").iterdir())) == 1
    assert json.loads((done / store.SUMMARY).read_text())["status"] == "complete"
    assert "mine.yaml" in json.loads((done / store.SUMMARY).read_text())["study_file"]


# --------------------------------------------------------------------------- stale runs


def test_a_run_made_with_another_config_is_pending_in_the_queue_as_repro_run_trains_it(
    tmp_path, cifar_root
):
    """A complete run made before its study was edited (another config hash) is one that
    `repro run` moves to .superseded/ and trains again, and `repro status` says so: the
    queue's standing counts it pending, not done, and `repro queue` trains it, as `repro run`
    would. A complete twin in another study still makes it cost nothing."""
    from fake_runs import fake_run

    from harness.status import study_status
    from harness.studyfile import load_study

    path = _queue(tmp_path)
    queue, results = load_queue(path), tmp_path / "results"
    study = load_study(tmp_path / "s.yaml")
    stale = fake_run(results, study, "b", stale=True)
    row = {r.run: r for r in study_status(study, results)}["b/seed-0"]
    assert row.state == "complete" and "moves it to .superseded/ and trains it again" in row.detail
    first, rest = standing(queue, results)
    assert not first.done and (first.ended, first.epochs_done) == (0, 0)
    assert first.gpu_minutes_left == pytest.approx(first.pflop_total * 1e15 / 1e9 / 60)
    assert rest.ended == 0 and "next: first" in render(queue, [first, rest])
    # A complete twin in another study did the training: `repro run` adopts it, so it is free.
    other = tiny_study(tmp_path / "other.yaml", "  - {name: b, model: plain8, recipe: base}\n",
                       name="other", recipe=QUICK_RECIPE)  # fmt: skip
    twin = fake_run(results, load_study(other), "b")
    first = standing(queue, results)[0]
    assert (first.twinned, first.gpu_minutes_left) == (1, 0)
    twin.rename(tmp_path / "twin-kept-out")

    out = repro("queue", str(path), "--items", "1", "--device", "cpu", "--quiet",
                "--results", str(results), "--data-dir", str(cifar_root))  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "--- queue item first" in out.output
    assert "tiny/b/seed-0 was made with another config; moved to" in out.output
    [moved] = (stale.parent / ".superseded").iterdir()
    assert (moved / "SUPERSEDED").read_text().startswith("config changed: 0000000000000000 -> ")
    made = summary(results, "tiny/b/seed-0")
    assert made["status"] == "complete" and made["config_hash"] == queue.plans(first.item)[0].hash
    assert standing(queue, results)[0].done
    # A damaged run reads as `repro run` repairs it: its unreadable config is written again
    # from the study (its checkpoint was made with that config), so the item stays done.
    (results / "tiny/b/seed-0/config.json").write_text("{not json")
    row = {r.run: r for r in study_status(study, results)}["b/seed-0"]
    assert row.state == "damaged" and "writes it again from the study" in row.detail, row.detail
    assert standing(queue, results)[0].done


def test_an_interrupted_run_without_its_checkpoint_counts_no_epoch_done_as_repro_run_starts_over(
    tmp_path,
):
    """`repro run` trains an interrupted run with no checkpoint again from epoch 0: the
    standing counts none of its recorded epochs done and its whole cost left."""
    from fake_runs import fake_run

    from harness.runner import resume_text
    from harness.studyfile import load_study

    path = _queue(tmp_path)
    queue, results = load_queue(path), tmp_path / "results"
    run = fake_run(results, load_study(tmp_path / "s.yaml"), "b", status="interrupted", epochs=4)
    assert store.inspect(run).epochs_done == 2 and not (run / store.CHECKPOINT).exists()
    [p] = queue.plans(queue.items[0])
    assert "starting over from epoch 0" in resume_text(p, run, store.inspect(run))
    first = standing(queue, results)[0]
    assert (first.started, first.epochs_done, first.epochs_total) == (0, 0, 3)
    assert first.gpu_minutes_left == pytest.approx(first.pflop_total * 1e15 / 1e9 / 60)


def test_a_queue_item_whose_runs_a_copy_of_its_study_made_is_refused_as_repro_run_refuses(
    tmp_path,
):
    """An item naming a copy of a study that kept the original's name: the original's complete
    run, which the copy plans with another config, is not the item's (not done), and `repro
    queue` refuses it as `repro run` does (harness.copies), moving and training nothing."""
    from fake_runs import fake_run
    from test_run import _made_by

    from harness.studyfile import load_study

    path = _queue(tmp_path, QUEUE.replace("study: s.yaml, only", "study: copy.yaml, only"))
    original = tmp_path / "s.yaml"
    results = tmp_path / "results"
    made = fake_run(results, load_study(original), "b")
    _made_by(made, original.resolve())
    tiny_study(tmp_path / "copy.yaml", "  - {name: b, model: plain8, recipe: base}\n",
               recipe=QUICK_RECIPE.replace("lr: 0.05", "lr: 0.02"))  # fmt: skip
    queue = load_queue(path)
    assert queue.plans(queue.items[0])[0].hash != json.loads((made / "config.json").read_text())[
        "hash"]  # fmt: skip
    first = standing(queue, results)[0]
    assert not first.done and first.ended == 0
    out = repro("queue", str(path), "--items", "1", "--results", str(results))
    said = " ".join(out.output.split())
    assert out.exit_code == 2 and "nothing was trained" in said, out.output
    assert summary(results, "tiny/b/seed-0")["status"] == "complete"
    assert not (made.parent / ".superseded").exists()


def test_a_run_a_copy_of_the_items_study_may_not_train_over_is_not_counted_done_by_its_twin(
    tmp_path,
):
    """An item naming a copy of a study that kept the original's name, whose run the original
    made and still plans, while another study holds a complete twin of the copy's config: the
    standing counted that run "done by twins" and costed it nothing, while `repro queue` (and
    `repro run`) refuse it before anything trains, and `repro status` says so. The standing
    now counts it refused, names the way out, and costs its training."""
    from fake_runs import fake_run
    from test_run import _made_by

    from harness.status import study_status
    from harness.studyfile import load_study

    path = _queue(tmp_path, QUEUE.replace("study: s.yaml, only", "study: copy.yaml, only"))
    original = tmp_path / "s.yaml"
    results = tmp_path / "results"
    made = fake_run(results, load_study(original), "b")
    _made_by(made, original.resolve())
    changed = QUICK_RECIPE.replace("lr: 0.05", "lr: 0.02")
    copy = tiny_study(tmp_path / "copy.yaml", "  - {name: b, model: plain8, recipe: base}\n",
                      recipe=changed)  # fmt: skip
    other = tiny_study(tmp_path / "other.yaml", "  - {name: b, model: plain8, recipe: base}\n",
                       name="other", recipe=changed)  # fmt: skip
    fake_run(results, load_study(other), "b")
    queue = load_queue(path)
    first = standing(queue, results)[0]
    shown = render(queue, [first])
    assert "done by twins" not in shown and first.twinned == 0, shown
    assert first.refused == 1 and not first.done, first
    assert "1 refused" in shown and "--supersede" in shown, shown
    assert "item first plans 1 run that another study file of the same study name made" in " ".join(
        shown.split()), shown  # fmt: skip
    assert first.gpu_minutes_left == pytest.approx(first.pflop_total * 1e15 / 1e9 / 60)
    # what `repro status` and `repro queue` say of the same run
    row = {r.run: r for r in study_status(load_study(copy), results, study_file=str(copy))}
    assert "refuses to train over it" in row["b/seed-0"].detail, row["b/seed-0"].detail
    out = repro("queue", str(path), "--items", "1", "--results", str(results))
    assert out.exit_code == 2 and "nothing was trained" in " ".join(out.output.split())


def test_two_items_of_same_named_study_files_that_plan_one_run_two_ways_are_refused_up_front(
    tmp_path,
):
    """Item `first` names s.yaml, item `copy` a copy of it that kept its name and changed the
    recipe: both plan tiny/b/seed-0, with two configs. With the store empty, `repro queue`
    trained `first`, then stopped at `copy` with "nothing was trained" and "run `repro run`
    again with --supersede" (the copy refusal, met mid-queue), and the standing had counted
    both as pending. The standing counts the copy's run refused, and `repro queue` refuses
    before training anything, naming both items."""
    path = _queue(tmp_path, QUEUE.replace(
        "  - {name: rest,", "  - {name: copy, why: the copy, study: copy.yaml, only: [b]}\n"
        "  - {name: rest,"))  # fmt: skip
    tiny_study(tmp_path / "copy.yaml", "  - {name: b, model: plain8, recipe: base}\n",
               recipe=QUICK_RECIPE.replace("lr: 0.05", "lr: 0.02"))  # fmt: skip
    results = tmp_path / "results"
    queue = load_queue(path)
    first, copy, _ = standing(queue, results)
    assert (first.refused, copy.refused) == (0, 1), (first, copy)
    assert "item copy plans 1 run" in " ".join(render(queue, [first, copy]).split())
    out = repro("queue", str(path), "--results", str(results))
    said = " ".join(out.output.split())
    assert out.exit_code == 2 and "nothing was trained" in said, out.output
    assert "items first and copy" in said and "tiny/b/seed-0" in said, said
    assert "--supersede" in said and "repro run`" not in said, said
    assert not (results / "tiny").exists()

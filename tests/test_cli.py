"""The command line meets a newcomer halfway: fast failures for typos, suggestions, a summary
at the end of a run with the next command, and honest words for every state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import QUICK_RECIPE, ROOT, tiny_study
from test_run import repro, run_args


def _repro_process(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return done, time.perf_counter() - t0


def test_the_command_line_imports_no_torch_before_it_has_checked_its_arguments():
    probe = "import sys, harness.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_a_misspelled_study_path_fails_at_once_with_a_suggestion():
    done, seconds = _repro_process("run", "studies/degradaton.yaml")
    assert done.returncode == 2
    assert "no such file" in done.stderr and "Did you mean studies/degradation.yaml" in done.stderr
    assert seconds < 2.0, f"took {seconds:.1f} s"  # torch alone takes longer to import


def test_a_study_named_without_its_folder_is_found_in_studies(monkeypatch):
    """From the checkout, `repro run degradation.yaml` (or `smoke`) said only "no such file":
    the suggestions came from the current directory alone."""
    monkeypatch.chdir(ROOT)
    for given, meant in [("degradation.yaml", "studies/degradation.yaml"),
                         ("smoke", "studies/smoke.yaml")]:  # fmt: skip
        out = repro("run", given)
        assert out.exit_code == 2, out.output
        assert f"{given}: no such file. Did you mean {meant}?" in out.output, out.output


def test_a_study_named_like_none_gets_the_list_of_studies_not_a_poor_guess(tmp_path, monkeypatch):
    """`repro run nope.yaml` was offered smoke.yaml: with the extension, any two .yaml names
    looked alike. Names are compared without it, and with none close the studies are listed."""
    monkeypatch.chdir(ROOT)
    out = repro("run", "nope.yaml")
    assert out.exit_code == 2, out.output
    studies = ", ".join(f"studies/{p.name}" for p in sorted((ROOT / "studies").glob("*.yaml")))
    assert f"nope.yaml: no such file. No study file is named like it; those in studies: " \
        f"{studies}." in out.output  # fmt: skip
    assert "Did you mean" not in out.output
    assert "Did you mean studies/shortcuts.yaml?" in repro("run", "shortcut.yml").output
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    for name in ("a.yaml", "b.yaml", "notes.txt"):
        (tmp_path / "mine" / name).write_text("")
    out = repro("validate", "mine/zzz.yaml")
    assert "mine/zzz.yaml: no such file. No study file is named like it; those in mine: " \
        "mine/a.yaml, mine/b.yaml." in out.output, out.output  # fmt: skip
    out = repro("validate", "nowhere/a.yaml")
    assert "nowhere/a.yaml: no such file. There is no folder nowhere either." in out.output


def test_a_misspelled_model_and_a_model_given_to_only_are_explained(tmp_path, cifar_root):
    out = repro("bench", "--models", "resnt20", "--device", "cpu", "--synthetic")
    assert out.exit_code == 2 and "did you mean resnet20" in out.output
    study = ROOT / "studies" / "degradation.yaml"
    out = repro(*run_args(study, cifar_root, tmp_path / "r", "--only", "resnet20"))
    assert out.exit_code == 2
    assert "resnet20 is a model; the experiments that train it: tseng-resnet20" in out.output
    out = repro(*run_args(study, cifar_root, tmp_path / "r", "--only", "he-resnt20"))
    assert "did you mean he-resnet20" in out.output


@pytest.mark.parametrize(
    ("study", "only", "says"),
    [
        # Was "did you mean resnet8?": the letters alike, the depth not.
        pytest.param("smoke.yaml", "resnet20", "--only resnet20: study 'smoke' has no such "
                     "experiment; it has: resnet8, plain8, wrn-10-1-dropout", id="none-close"),
        # Was "did you mean he-resnet20 or tseng-resnet110?".
        pytest.param("degradation.yaml", "he-resnet110", "(did you mean tseng-resnet110?); it "
                     "has: tseng-plain20, ", id="same-depth-only"),
        # Was "did you mean mk-preresnet110?", and then all 18 experiments.
        pytest.param("preact_wide.yaml", "park-resnet20", "no such experiment; it has: "
                     "mk-preresnet110, mk-preresnet164, ", id="none-close-of-many"),
        pytest.param("preact_wide.yaml", "park-resnet20", ", he2016-preresnet1001 and 6 more\n",
                     id="many-shortened"),
    ],
)  # fmt: skip
def test_only_an_experiment_of_another_depth_is_no_suggestion(tmp_path, cifar_root, study,
                                                               only, says):  # fmt: skip
    out = repro(*run_args(ROOT / "studies" / study, cifar_root, tmp_path / "r", "--only", only))
    assert out.exit_code == 2 and says in out.output, out.output


def test_report_says_when_the_store_is_missing_or_empty(tmp_path):
    missing = repro(
        "report", "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")
    )
    assert missing.exit_code == 2 and "no such results directory" in missing.output
    (tmp_path / "empty").mkdir()
    empty = repro("report", "--study", str(ROOT / "studies" / "smoke.yaml"), "--results",
                  str(tmp_path / "empty"), "--out", str(tmp_path / "r.html"))  # fmt: skip
    assert empty.exit_code == 0 and "holds no runs or checkpoint evaluations yet" in empty.output


def test_the_format_follows_the_extension_of_out_in_either_case(tmp_path):
    """`--out claims.CSV` wrote the HTML page into a file named .CSV: the extension was
    lower-cased only after it was compared with the lower-case ones."""
    (tmp_path / "results").mkdir()
    for name, fmt, starts in [("claims.CSV", "csv", "study,"), ("claims.Json", "json", "[")]:
        out = repro("report", "--study", str(ROOT / "studies" / "smoke.yaml"), "--results",
                    str(tmp_path / "results"), "--out", str(tmp_path / name))  # fmt: skip
        assert out.exit_code == 0, out.output
        assert f"({fmt}: 1 study," in out.output
        assert (tmp_path / name).read_text().startswith(starts)


def test_an_out_extension_that_names_no_format_is_refused_without_format(tmp_path):
    """`--out report.pdf` wrote the HTML page into a file named .pdf and said "html:"; now it
    is refused, naming the formats, unless --format says what to write there."""
    (tmp_path / "results").mkdir()
    args = ["report", "--study", str(ROOT / "studies" / "smoke.yaml"), "--results",
            str(tmp_path / "results"), "--out"]  # fmt: skip
    pdf = tmp_path / "report.pdf"
    out = repro(*args, str(pdf))
    assert out.exit_code == 2 and isinstance(out.exception, SystemExit), out.output
    assert (f"error: --out {pdf}: repro report writes html, csv or json, chosen by the "
            "extension (.html, .csv or .json), and '.pdf' is none of them; name the file so, "
            "or give --format html|csv|json to write that format to report.pdf") in out.output  # fmt: skip
    assert not pdf.exists()
    asked = repro(*args, str(pdf), "--format", "html")
    assert asked.exit_code == 0 and "(html: 1 study," in asked.output, asked.output
    assert pdf.read_text().startswith("<!DOCTYPE html>")
    for name in ("report", "page.HTM"):  # no extension, or HTML's short one: the page
        out = repro(*args, str(tmp_path / name))
        assert out.exit_code == 0 and "(html: 1 study," in out.output, (name, out.output)


def test_a_run_ends_with_a_summary_and_the_next_command(tmp_path, cifar_root):
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n",
                       QUICK_RECIPE)  # fmt: skip
    results = tmp_path / "results"
    out = repro(*run_args(study, cifar_root, results, "--epochs", "1"))
    assert out.exit_code == 0, out.output
    assert "1 run trained in" in out.output and f"results in {results / 'tiny'}" in out.output
    assert f"next: repro report --study {study} --results {results} --out report.html" in out.output
    status = repro("status", str(study), "--results", str(tmp_path / "other"))
    assert "pending" in status.output and "absent" not in status.output


def test_the_closing_line_of_a_run_counts_what_happened(tmp_path, cifar_root):
    """A run in which every run failed ended with "2 run(s) trained": failed runs were
    counted as trained."""
    broken = ("  - name: {}\n    model: resnet8\n    recipe:\n      extends: base\n"
              "      batch_size: 1000\n      last_batch: drop\n")  # fmt: skip
    study = tiny_study(tmp_path / "s.yaml", broken.format("b1") + broken.format("b2"),
                       QUICK_RECIPE)  # fmt: skip
    results = tmp_path / "results"
    out = repro(*run_args(study, cifar_root, results))
    assert out.exit_code == 1, out.output
    assert "\n0 runs trained, 2 failed in " in out.output, out.output
    fine = "  - {name: fine, model: resnet8, recipe: base}\n"
    tiny_study(study, broken.format("b1") + fine, QUICK_RECIPE)
    assert "\n1 run trained, 1 failed in " in repro(*run_args(study, cifar_root, results)).output
    again = repro(*run_args(study, cifar_root, results)).output
    assert "\n0 runs trained, 1 failed, 1 skipped in " in again, again


def test_status_of_a_store_that_is_not_there_says_so(tmp_path):
    """Every run read pending without a word: a mistyped --results looked like work to do."""
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n")
    out = repro("status", str(study), "--results", str(tmp_path / "reslts"))
    assert out.exit_code == 0 and "r8/seed-0  pending" in out.output, out.output
    assert f"note: {tmp_path / 'reslts'} does not exist, so every run reads pending; if the " \
        "store is elsewhere, give its path with --results" in out.output  # fmt: skip
    (tmp_path / "reslts").mkdir()
    assert "does not exist" not in repro("status", str(study), "--results",
                                         str(tmp_path / "reslts")).output  # fmt: skip


def test_evaluate_on_studies_without_released_checkpoints_is_a_mistake(tmp_path):
    """It said 'no checkpoints' and exited 0, as if it had done its work."""
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n")
    out = repro("evaluate", str(study), "--results", str(tmp_path / "r"))
    assert out.exit_code == 2 and isinstance(out.exception, SystemExit), out.output
    assert "none of the study files declares a released checkpoint" in out.output
    assert "`repro run` trains a study's experiments" in out.output
    assert not (tmp_path / "r").exists()


def test_validate_estimates_what_a_study_costs(monkeypatch):
    monkeypatch.chdir(ROOT)  # the rate is the one in queue.yaml here
    out = repro("validate", str(ROOT / "studies" / "degradation.yaml"))
    assert out.exit_code == 0, out.output
    assert "cost: 61.2 PFLOP of training, about 1.2 GPU-hours" in out.output


def test_validate_never_says_a_small_study_costs_nothing(monkeypatch):
    """ResNet-68's 50 epochs read "2.3 PFLOP of training, about 0.0 GPU-hours" (some three
    GPU-minutes) and the smoke study "0.0 PFLOP ..., about 0.0 GPU-hours": a cost of nothing,
    or none worked out."""
    monkeypatch.chdir(ROOT)  # the rate is the one in queue.yaml here
    out = repro("validate", "studies/resnet68.yaml", "studies/smoke.yaml")
    assert out.exit_code == 0, out.output
    assert "cost: 2.3 PFLOP of training, about 3 GPU-minutes at the 13.8 TFLOP/s" in out.output
    assert "cost: 0.9 TFLOP of training, under a GPU-minute at the" in out.output, out.output
    assert "0.0 " not in out.output


def test_validate_costs_a_study_at_the_rate_of_the_queue_here(tmp_path, monkeypatch):
    """It read queue.yaml beside the package, which an installed copy has not, whatever
    queue the directory it ran in held."""
    study = ROOT / "studies" / "degradation.yaml"
    monkeypatch.chdir(tmp_path)
    out = repro("validate", str(study))
    assert out.exit_code == 0, out.output
    assert "cost: 61.2 PFLOP of training (no queue.yaml here to give a measured GPU rate " \
        "to convert it)" in out.output  # fmt: skip
    (tmp_path / "queue.yaml").write_text(
        "achieved_tflops: 27.6\nrate_source: a figure for the tests\nitems:\n"
        f"  - {{name: d, why: the runs, study: {study}}}\n"
    )
    out = repro("validate", str(study))
    assert "cost: 61.2 PFLOP of training, about 0.6 GPU-hours at the 27.6 TFLOP/s" in out.output
    (tmp_path / "queue.yaml").write_text("achieved_tflops: [\n")
    out = repro("validate", str(study))
    assert out.exit_code == 0, out.output
    assert "cost: 61.2 PFLOP of training (queue.yaml here has problems, so no measured GPU " \
        "rate converts it: `repro validate queue.yaml` lists them)" in out.output  # fmt: skip


def test_a_store_of_checkpoint_evaluations_alone_is_not_called_empty(tmp_path):
    store_dir = ROOT / "results" / "published" / "checkpoints-jpeg-copy-cpu-2026-11-26" / "store"
    out = repro("report", "--study", str(ROOT / "studies" / "checkpoints.yaml"), "--results",
                str(store_dir), "--out", str(tmp_path / "r.html"))  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "holds no runs" not in out.output


def test_bench_refuses_a_subset_larger_than_the_data_it_would_measure(cifar_root, tmp_path):
    """The table and JSON said "5000 images/epoch" for a 600-image copy: refuse, as run does."""
    out = repro("bench", "--device", "cpu", "--models", "resnet8", "--data-dir", str(cifar_root),
                "--subset", "5000", "--json", str(tmp_path / "b.json"))  # fmt: skip
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert "--subset 5000: the data" in out.output and "600 training images" in out.output
    assert not (tmp_path / "b.json").exists()
    out = repro("bench", "--device", "cpu", "--synthetic", "--subset", "60000")
    assert out.exit_code == 2 and "50000 training images" in out.output
    assert "ValidationError" not in out.output


def test_bench_refuses_a_batch_size_past_the_limit_while_parsing():
    out = repro("bench", "--device", "cpu", "--synthetic", "--batch-size", "100000")
    assert out.exit_code == 2 and "ValidationError" not in out.output
    assert "'--batch-size': 100000 is not in the range 1<=x<=65536" in out.output


def test_a_directory_where_a_file_belongs_names_the_files_to_give(tmp_path):
    """`repro run studies` (a newcomer's first guess) says to name the files, with the glob
    that names them all where the command takes several, instead of click's bare "is a
    directory"; a directory given as an output file, or a file as a directory, says what the
    option wants. All before any work."""
    folder = tmp_path / "mine"
    folder.mkdir()
    tiny_study(folder / "a.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    tiny_study(folder / "b.yaml", "  - {name: b, model: resnet8, recipe: base}\n")
    for args in (["run", str(folder)], ["validate", str(folder)], ["status", str(folder)],
                 ["evaluate", str(folder)]):  # fmt: skip
        out = repro(*args)
        assert out.exit_code == 2, (args, out.output)
        assert f"{folder} is a directory, not a study file: name the files in it, e.g. " \
            f"{folder}/*.yaml for all of them (a.yaml, b.yaml)" in out.output, args  # fmt: skip
    for args in (["export", str(folder), "--out", str(tmp_path / "x.tar.gz")],
                 ["report", "--study", str(folder)]):  # fmt: skip
        out = repro(*args)
        assert out.exit_code == 2, (args, out.output)
        assert f"name one file in it, e.g. {folder}/a.yaml (a.yaml, b.yaml)" in out.output, args
    out = repro("import", str(folder))
    assert out.exit_code == 2
    assert f"{folder} is a directory, not a store archive: name the store archive itself" in (
        out.output
    )
    out = repro("queue", str(folder))
    assert out.exit_code == 2 and "not a queue file: name the queue file itself" in out.output

    (tmp_path / "results").mkdir()
    results = ["--results", str(tmp_path / "results")]
    for args, option in [
        (["report", *results, "--study", str(folder / "a.yaml"), "--out", str(folder)], "--out"),
        (["export", str(folder / "a.yaml"), *results, "--out", str(folder)], "--out"),
        (["bench", "--device", "cpu", "--synthetic", "--json", str(folder)], "--json"),
    ]:
        out = repro(*args)
        assert out.exit_code == 2, (args, out.output)
        assert f"error: {option} {folder}: is a directory; give a file name" in out.output

    afile = folder / "a.yaml"
    for args, wants in [
        (["run", str(afile), "--results", str(afile)], "give --results the directory that"),
        (["run", str(afile), "--data-dir", str(afile)], "give --data-dir the directory that holds"),
        (["bench", "--synthetic", "--profile", str(afile)], "give --profile a directory"),
    ]:
        out = repro(*args)
        assert out.exit_code == 2, (args, out.output)
        assert f"{afile} is a file, not a directory; {wants}" in out.output, args
    assert sorted(p.name for p in folder.iterdir()) == ["a.yaml", "b.yaml"]


def test_a_file_given_as_a_folder_says_what_to_give_for_every_command(tmp_path):
    """Every command with --results (found on the command line itself, so a new one is
    covered too) refuses a regular file with the store to give and where it lives by
    default; an archive from `repro export` is pointed to `repro import`. `repro status
    --data-dir` gave click's "Directory ... is a file", which names no remedy."""
    from harness.cli import main

    commands = sorted(name for name, command in main.commands.items()
                      if any(p.name == "results" for p in command.params))  # fmt: skip
    assert set(commands) >= {"evaluate", "export", "import", "queue", "report", "run", "status"}
    afile, archive = tmp_path / "notes.txt", tmp_path / "tiny.tar.gz"
    afile.write_text("mine\n")
    archive.write_bytes(b"\x1f\x8b")
    for name in commands:
        # --results first: click converts options in the order given, so it is judged before
        # any argument the command requires is found missing.
        out = repro(name, "--results", str(afile))
        assert out.exit_code == 2, (name, out.output)
        assert (f"{afile} is a file, not a directory; give --results the directory that holds "
                "(or will hold) the run store (by default results/ in the current directory)"
                ) in " ".join(out.output.split()), (name, out.output)  # fmt: skip
        out = repro(name, "--results", str(archive))
        assert out.exit_code == 2, (name, out.output)
        assert (
            f"an archive from `repro export` is merged into a store with `repro import "
            f"{archive} --results DIR`"
        ) in " ".join(out.output.split()), (name, out.output)
    out = repro("status", "--data-dir", str(afile))
    assert out.exit_code == 2, out.output
    assert (
        f"{afile} is a file, not a directory; give --data-dir the directory that holds "
        "cifar-10-batches-py/"
    ) in " ".join(out.output.split()), out.output
    assert afile.read_text() == "mine\n" and archive.read_bytes() == b"\x1f\x8b"


def test_a_link_that_leads_nowhere_is_named_for_every_command(tmp_path):
    """`repro report --results L`, L a link to itself (`ln -s L L`), said "no such results
    directory"; every command with --results now says the link loops or lacks its target,
    and what to do. A study file behind such a link is told the same."""
    from harness.cli import main

    commands = sorted(name for name, command in main.commands.items()
                      if any(p.name == "results" for p in command.params))  # fmt: skip
    loop, dangling = tmp_path / "L", tmp_path / "M"
    loop.symlink_to(loop)
    dangling.symlink_to(tmp_path / "gone")
    for name in commands:
        for results, why in [(loop, "it loops"), (dangling, "its target is missing"),
                             (loop / "sub", "it loops")]:  # fmt: skip
            out = repro(name, "--results", str(results))
            said = " ".join(out.output.split())
            assert out.exit_code == 2, (name, out.output)
            assert f"is a link that leads nowhere and cannot be read: {why}" in said, (name, said)
            link = loop if results.parent == loop else results
            assert f"point it at a directory (`ln -sfn TARGET {link}`) or remove it" in said
            assert "no such" not in said, (name, said)
    out = repro("validate", str(loop))
    assert out.exit_code == 2, out.output
    assert (f"{loop} is a link that leads nowhere and cannot be read: it loops (it points to "
            f"{loop}); "
            f"point it at the study file (`ln -sfn TARGET {loop}`) or give the study file's "
            "own path") in " ".join(out.output.split())  # fmt: skip
    assert not (tmp_path / "gone").exists()


def test_a_path_this_user_cannot_read_says_what_to_do(tmp_path, monkeypatch):
    """click's own "Path 'x' is not readable." named no remedy. The tests may run as root,
    who reads everything, so the permission check is what is denied here."""
    study, store, out = tmp_path / "s.yaml", tmp_path / "store", tmp_path / "old.html"
    study.write_text("name: s\n")
    store.mkdir()
    out.write_text("old\n")
    access = os.access
    denied = {str(study), str(store), str(out)}
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: str(p) not in denied
                        and access(p, mode, **kw))  # fmt: skip
    for args, says in [
        (["validate", str(study)], f"`chmod u+r {study}` if it is yours, else ask its owner) "
                                   "or give a file you can read"),
        (["status", "--results", str(store)], f"`chmod u+rx {store}` if it is yours, else ask "
                                               "its owner) or give a directory you can read"),
        (["report", "--out", str(out)], f"`chmod u+r {out}` if it is yours, else ask its "
                                        "owner) or give another file name"),
    ]:  # fmt: skip
        result = repro(*args)
        said = " ".join(result.output.split())
        assert result.exit_code == 2, (args, result.output)
        assert "is not readable by this user; make it readable (" + says in said, (args, said)
    assert out.read_text() == "old\n"


def test_a_bad_study_file_says_what_each_command_did_not_do(tmp_path):
    """`repro report`, `repro export` and `repro status` with a broken study said "nothing was
    run", which they never do; each names what it did not do."""
    study = tmp_path / "s.yaml"
    study.write_text("name: [unclosed\n")
    (tmp_path / "results").mkdir()
    results = ["--results", str(tmp_path / "results")]
    for args, nothing in [
        (["run", str(study), *results], "nothing was run"),
        (["report", "--study", str(study), *results, "--out", str(tmp_path / "r.html")],
         "nothing was written"),
        (["export", str(study), *results, "--out", str(tmp_path / "a.tar.gz")],
         "nothing was written"),
        (["evaluate", str(study), *results], "nothing was evaluated"),
        (["status", str(study), *results], "nothing was shown"),
    ]:  # fmt: skip
        out = repro(*args)
        assert out.exit_code == 2, (args, out.output)
        assert f"error: fix the study file above; {nothing}\n" in out.output, args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "s.yaml"]


def test_an_output_path_below_a_regular_file_is_refused_before_any_work(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    (tmp_path / "results").mkdir()
    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    results = ["--results", str(tmp_path / "results")]
    for args, option in [
        (["report", *results, "--study", str(study), "--out", f"{afile}/x.html"], "--out"),
        (["export", str(study), *results, "--out", f"{afile}/x.tar.gz"], "--out"),
        (["bench", "--device", "cpu", "--synthetic", "--json", f"{afile}/x.json"], "--json"),
        (["bench", "--device", "cpu", "--synthetic", "--markdown", f"{afile}/x.md"], "--markdown"),
        (["bench", "--device", "cpu", "--synthetic", "--profile", f"{afile}/p"], "--profile"),
    ]:
        out = repro(*args)
        assert out.exit_code == 2, (args, out.output)
        assert isinstance(out.exception, SystemExit)  # a message, not a traceback
        assert f"error: {option} {afile}/" in out.output
        assert "a path below a regular file" in out.output and f"give {option} a path" in out.output


def test_status_without_study_files_says_so_and_how_to_name_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = repro("status")
    assert out.exit_code == 2
    assert "no study files: none given, no studies/*.yaml here and no run in results names one" \
        in out.output  # fmt: skip
    assert "repro status studies/degradation.yaml" in out.output


def test_status_outside_a_checkout_shows_the_studies_the_runs_in_the_store_came_from(
    tmp_path, monkeypatch
):
    """`repro run mine.yaml --results R`, then `repro status --results R`: "no study files",
    where `repro report --results R` found the study from its runs' summaries."""
    from fake_runs import fake_run

    from harness.studyfile import load_study

    monkeypatch.chdir(tmp_path)
    study = tiny_study(tmp_path / "mine.yaml", "  - {name: r8, model: resnet8, recipe: base}\n")
    run_dir = fake_run(tmp_path / "R", load_study(study), "r8")
    summary = json.loads((run_dir / "summary.json").read_text())  # as `repro run` records it
    (run_dir / "summary.json").write_text(json.dumps({**summary, "study_file": str(study)}))
    out = repro("status", "--results", "R")
    assert out.exit_code == 0, out.output
    assert "tiny: 1 run: 1 complete" in out.output and "r8/seed-0  complete" in out.output


def test_report_and_queue_outside_a_checkout_say_what_to_name(tmp_path, monkeypatch):
    """Their defaults (studies/*.yaml, queue.yaml) are a checkout's: elsewhere, as for an
    installed copy, report wrote a page with nothing on it and queue gave no way out."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    out = repro("report")
    assert out.exit_code == 2 and isinstance(out.exception, SystemExit), out.output
    assert "no study files: none given with --study, no studies/*.yaml here and no run in " \
        "results names one" in out.output  # fmt: skip
    assert "repro report --study studies/degradation.yaml" in out.output
    assert not (tmp_path / "report.html").exists()
    out = repro("queue")
    assert out.exit_code == 2 and isinstance(out.exception, SystemExit), out.output
    assert "queue.yaml: no such queue file here (the default)" in out.output
    assert "`repro queue PATH`" in out.output


def test_report_says_which_runs_it_left_out_because_their_study_is_gone(tmp_path, monkeypatch):
    from fake_runs import fake_run

    from harness.studyfile import load_study

    monkeypatch.chdir(tmp_path)
    study_file = tiny_study(tmp_path / "gone.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    fake_run(tmp_path / "R", load_study(study_file), "a")
    study_file.unlink()
    out = repro("report", "--results", "R", "--out", "r.html")
    assert out.exit_code == 0, out.output
    # the closing line counts the reported studies' runs (none); the note names the one left out
    assert "0 studies, 0 claims, 0 runs)" in out.output
    assert "note: 1 run of study 'tiny' is not reported: its study file is not in " \
        "studies/ and was not found" in out.output  # fmt: skip
    assert "give it with --study FILE" in out.output


def test_a_hold_out_of_the_whole_training_set_is_refused_before_anything_trains(
    tmp_path, cifar_root
):
    from conftest import TINY_RECIPE

    recipe = TINY_RECIPE + "    validation_images: 600\n"
    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n"
                       "  - {name: b, model: plain8, recipe: base}\n", recipe=recipe)  # fmt: skip
    assert repro("validate", str(study)).exit_code == 0  # the data's size is not known there
    out = repro(*run_args(study, cifar_root, tmp_path / "r"))
    assert out.exit_code == 2, out.output
    assert "validation_images 600 holds out every one of the data's 600 training images" \
        in out.output  # fmt: skip
    assert not list((tmp_path / "r").rglob("summary.json")), "no run recorded as failed"


def test_validate_refuses_two_files_of_one_study_name_as_run_does(tmp_path):
    a = tiny_study(tmp_path / "a.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    b = tiny_study(tmp_path / "b.yaml", "  - {name: b, model: resnet8, recipe: base}\n")
    out = repro("validate", str(a), str(b))
    assert out.exit_code == 1
    assert f"{b}: name: study name 'tiny' is already used by {a}" in out.output
    assert "1 of 2 files invalid" in out.output


def test_fuse_on_the_canonical_pipeline_says_why_it_does_not_fuse(tmp_path):
    import torch

    from harness.execution import choose
    from harness.grouping import groups
    from harness.plan import Overrides, plan
    from harness.studyfile import load_study

    study = load_study(tiny_study(tmp_path / "s.yaml",
                                  "  - {name: a, model: resnet8, recipe: base}\n", seeds=2))  # fmt: skip
    heard: list[str] = []
    ex = choose(torch.device("cpu"), pipeline="canonical")
    out = groups(plan(study, Overrides()), tmp_path / "r", ex, 2, echo=heard.append)
    assert [len(g) for g in out] == [1, 1]
    assert heard == ["--fuse 2: not fusing: fused training is on the fast pipeline only, and "
                     "--pipeline canonical trains each run on its own"]  # fmt: skip


def test_each_command_says_what_its_device_does():
    """`repro evaluate` trains nothing: its --device says where it evaluates."""

    def words(command: str) -> str:  # the help, unwrapped
        return " ".join(repro(command, "--help").output.split())

    assert "Where to evaluate (auto: CUDA when torch sees a GPU)" in words("evaluate")
    assert "Where to train" not in words("evaluate")
    for command in ("run", "queue", "bench"):
        assert "Where to train (auto: CUDA when torch sees a GPU)" in words(command), command


def test_the_top_level_help_names_every_command():
    # A newcomer reads `repro --help` first: a command it never names (queue, export and
    # import were missing) is one they will not find.
    from click.testing import CliRunner

    from harness.cli import main

    text = " ".join(CliRunner().invoke(main, ["--help"]).output.split())
    shown = [name for name, command in main.commands.items() if not command.hidden]
    assert len(shown) >= 10
    assert [name for name in shown if f"repro {name} " not in text] == []


def test_validate_lines_up_short_experiment_names_under_their_headings(tmp_path):
    """Names shorter than the heading "experiment" pulled every row left of its column, and a
    study with one ordering claim counted "1 orderings"."""
    study = tiny_study(
        tmp_path / "s.yaml",
        "  - {name: r8, model: resnet8, recipe: base}\n"
        "  - {name: p8, model: plain8, recipe: base}\n"
        "claims:\n"
        "  - {kind: ordering, source: test, where: F6, statement: plain is worse,\n"
        "     metric: final_train_error, experiments: [r8, p8], direction: increasing}\n",
    )
    out = repro("validate", str(study))
    assert out.exit_code == 0, out.output
    assert "1 claim (0 on values, 1 ordering)" in out.output, out.output
    lines = out.output.splitlines()
    heading = next(line for line in lines if line.lstrip().startswith("experiment"))
    row = next(line for line in lines if line.lstrip().startswith("r8 "))
    for column in ("experiment", "model", "recipe"):  # left-aligned: the value starts there
        start = heading.index(column)
        assert row[start] != " " and row[start - 1] == " ", f"{column}:\n{heading}\n{row}"
    for column in ("params", "seeds", "claims"):  # right-aligned: the value ends there
        end = heading.index(column) + len(column)
        assert row[end - 1] != " " and row[end] == " ", f"{column}:\n{heading}\n{row}"


def test_report_takes_study_files_as_arguments_as_every_other_command_does(tmp_path):
    """`repro report mine.yaml` was "Got unexpected extra argument (mine.yaml)": run, status,
    validate and export take their study files so, and only report wanted --study."""
    study = tiny_study(
        tmp_path / "mine.yaml",
        "  - {name: r8, model: resnet8, recipe: base}\n"
        "claims:\n"
        "  - {source: test, where: T1, experiment: r8, metric: test_error, value: 9.5}\n",
        name="mine",
    )
    (tmp_path / "results").mkdir()
    out = repro("report", str(study), "--results", str(tmp_path / "results"),
                "--out", str(tmp_path / "claims.csv"))  # fmt: skip
    assert out.exit_code == 0, out.output
    assert f"wrote {tmp_path / 'claims.csv'}" in out.output, out.output
    rows = (tmp_path / "claims.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("mine,value,r8,"), rows


def test_repro_run_warns_of_two_experiments_that_train_the_same_thing(tmp_path, cifar_root):
    """`repro validate` says it, and so must `repro run`, which is where the GPU time goes:
    the warning comes before the first run trains, and the run goes on (it may be meant)."""
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r0, model: resnet8, recipe: base}\n"
                       "  - {name: r1, model: resnet8, recipe: base}\n", recipe=QUICK_RECIPE)  # fmt: skip
    out = repro(*run_args(study, cifar_root, tmp_path / "r", "--smoke"))
    assert out.exit_code == 0, out.output
    warning = f"{study}:"
    lines = out.output.splitlines()
    said = [i for i, line in enumerate(lines) if line.startswith(warning)
            and "experiments[1]: warning: trains exactly what experiments[0] ('r0') trains" in line]  # fmt: skip
    trained = [i for i, line in enumerate(lines) if "r0/seed-0" in line]
    assert said and trained and said[0] < trained[0], out.output


def test_bench_times_the_compile_mode_repro_run_trains_in_unless_told(monkeypatch):
    # CUDA graphs became repro run's default on CUDA; the bench went on timing the default
    # mode alone, so `repro bench` no longer timed what `repro run` does.
    import torch
    from click.testing import CliRunner

    import harness.bench
    from harness.bench import fast_executions
    from harness.cli import main

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    [solo] = fast_executions(cuda, None, None)
    assert (solo.compile_mode, solo.fused(("a", "b")).compile_mode) == ("reduce-overhead",
                                                                        "default")  # fmt: skip
    assert [e.compile_mode for e in fast_executions(cuda, None, ("default", "reduce-overhead"))
            ] == ["default", "reduce-overhead"]  # fmt: skip
    [eager] = fast_executions(cpu, None, ("default", "reduce-overhead"))  # nothing compiles
    assert not eager.compile
    seen = []

    def fake_bench(data, device, **kwargs):
        seen.append(kwargs["compile_modes"])
        raise harness.bench.BenchError("stop here")

    monkeypatch.setattr(harness.bench, "run_bench", fake_bench)
    CliRunner().invoke(main, ["bench", "--device", "cpu", "--synthetic"])
    CliRunner().invoke(main, ["bench", "--device", "cpu", "--synthetic",
                              "--compile-mode", "default,reduce-overhead"])  # fmt: skip
    assert seen == [None, ("default", "reduce-overhead")]
    result = CliRunner().invoke(main, ["bench", "--synthetic", "--compile-mode", ","])
    assert result.exit_code == 2 and "modes are" in result.output


def test_run_with_every_run_ended_says_the_data_dir_was_not_read(tmp_path):
    """`repro run --data-dir DIR` with nothing left to train never reads DIR, and said nothing
    of it: a user who meant to train again on other data (or gave an empty directory by
    mistake) learnt neither why nothing happened nor what to do."""
    from fake_runs import fake_run

    from harness.studyfile import load_study

    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    fake_run(tmp_path / "R", load_study(study), "a")
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["run", str(study), "--results", str(tmp_path / "R"), "--device", "cpu"]
    out = repro(*args, "--data-dir", str(empty))
    assert out.exit_code == 0, out.output
    assert "1 skipped" in out.output
    assert (f"note: nothing was trained, so --data-dir {empty} was not read: every run had "
            "already ended (complete or diverged). To train them again, on this data or "
            "other, add --force") in out.output  # fmt: skip
    assert "--data-dir" not in repro(*args).output  # none given: nothing to say of it


@pytest.mark.parametrize("statuses", [["skipped", "complete"], ["skipped", "busy"], []])
def test_the_unread_data_note_is_only_for_a_run_with_every_run_ended(statuses):
    from types import SimpleNamespace

    from harness.describe import unread_data_note

    outcomes = [SimpleNamespace(status=s) for s in statuses]
    assert unread_data_note(outcomes, Path("d")) is None


def test_a_leading_tilde_in_a_path_option_is_the_home_directory(tmp_path, monkeypatch):
    """`--results=~/R` reaches repro unexpanded (bash expands ~ after = only in variable
    assignments): status read a store '~/R' that is not there (every run pending), a run
    would have made a folder named '~' here, and `--data-dir=~/cifar` was said not to exist."""
    from fake_runs import fake_run

    from harness.studyfile import load_study

    home, here = tmp_path / "home", tmp_path / "here"
    home.mkdir()
    here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    study = tiny_study(home / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    fake_run(home / "R", load_study(study), "a")
    out = repro("status", "~/s.yaml", "--results=~/R")
    assert out.exit_code == 0, out.output
    assert "tiny: 1 run: 1 complete" in out.output
    out = repro("report", "--study=~/s.yaml", "--results=~/R", "--out=~/r.json")
    assert out.exit_code == 0, out.output
    assert (home / "r.json").is_file()
    out = repro("run", "~/s.yaml", "--results=~/new", "--data-dir=~/cifar", "--device", "cpu")
    assert out.exit_code == 2 and f"{home / 'cifar'} does not exist" in out.output, out.output
    monkeypatch.setenv("REPRO_DATA_DIR", "~/cifar")  # set in quotes: nothing expanded it
    out = repro("run", "~/s.yaml", "--results=~/new", "--device", "cpu")
    assert out.exit_code == 2 and f"{home / 'cifar'} does not exist" in out.output, out.output
    assert list(here.iterdir()) == []  # no folder named '~'


@pytest.mark.parametrize("command", [
    ["status"], ["report", "--out", "r.html", "--study"], ["run", "--device", "cpu"],
    ["export", "--out", "r.tar.gz"],
])  # fmt: skip
def test_a_store_folder_that_cannot_be_listed_is_a_clear_error(tmp_path, monkeypatch, command):
    """A study's folder in the store that this user may not list (another user's, or its
    permissions changed) was a PermissionError traceback from every command that reads the
    store. Root lists any folder, so the refusal is made here, as the OS makes it to others."""
    import errno

    from fake_runs import fake_run

    from harness.studyfile import load_study

    monkeypatch.chdir(tmp_path)
    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    fake_run(tmp_path / "R", load_study(study), "a")
    locked, listing = tmp_path / "R" / "tiny", Path.iterdir

    def iterdir(self):
        if self == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    out = repro(*command, str(study), "--results", str(tmp_path / "R"))
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit), out.output
    assert (f"error: cannot read {locked} (Permission denied): make it readable to this "
            "user (or give --results a store you can read)") in out.output  # fmt: skip
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "r.tar.gz").exists()


def test_a_run_folder_that_cannot_be_read_is_a_clear_error(tmp_path):
    """A run's own folder that this user may not read was a PermissionError traceback (from
    the stat of its progress file) to `repro status` and `repro run`. As root, setpriv drops
    the capability that reads every folder, so the OS refuses root as it refuses others."""
    import shutil

    from fake_runs import fake_run

    from harness.studyfile import load_study

    head = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root reads every folder, and there is no setpriv here to stop that")
        drop = "-dac_override,-dac_read_search"
        head = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}"]
    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    run_dir = fake_run(tmp_path / "R", load_study(study), "a")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run_dir.chmod(0)
    try:
        for command in (["status"], ["run", "--device", "cpu"]):
            proc = subprocess.run(
                [*head, sys.executable, "-m", "harness", *command, str(study), "--results",
                 str(tmp_path / "R")],
                env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            said = proc.stdout + proc.stderr
            assert proc.returncode == 1 and "Traceback" not in said, said
            assert f"error: cannot read {run_dir} (Permission denied)" in said, said
    finally:
        run_dir.chmod(0o755)

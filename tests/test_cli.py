"""The command line meets a newcomer halfway: fast failures for typos, suggestions, a summary
at the end of a run with the next command, and honest words for every state."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import ROOT, tiny_study
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


def test_a_misspelled_model_and_a_model_given_to_only_are_explained(tmp_path, cifar_root):
    out = repro("bench", "--models", "resnt20", "--device", "cpu", "--synthetic")
    assert out.exit_code == 2 and "did you mean resnet20" in out.output
    study = ROOT / "studies" / "degradation.yaml"
    out = repro(*run_args(study, cifar_root, tmp_path / "r", "--only", "resnet20"))
    assert out.exit_code == 2
    assert "resnet20 is a model; the experiments that train it: tseng-resnet20" in out.output
    out = repro(*run_args(study, cifar_root, tmp_path / "r", "--only", "he-resnt20"))
    assert "did you mean he-resnet20" in out.output


def test_report_says_when_the_store_is_missing_or_empty(tmp_path):
    missing = repro(
        "report", "--results", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")
    )
    assert missing.exit_code == 2 and "no such results directory" in missing.output
    (tmp_path / "empty").mkdir()
    empty = repro("report", "--study", str(ROOT / "studies" / "smoke.yaml"), "--results",
                  str(tmp_path / "empty"), "--out", str(tmp_path / "r.html"))  # fmt: skip
    assert empty.exit_code == 0 and "holds no runs or checkpoint evaluations yet" in empty.output


def test_a_run_ends_with_a_summary_and_the_next_command(tmp_path, cifar_root):
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n")
    results = tmp_path / "results"
    out = repro(*run_args(study, cifar_root, results, "--epochs", "1"))
    assert out.exit_code == 0, out.output
    assert "1 run(s) trained in" in out.output and f"results in {results / 'tiny'}" in out.output
    assert f"next: repro report --study {study} --results {results} --out report.html" in out.output
    status = repro("status", str(study), "--results", str(tmp_path / "other"))
    assert "pending" in status.output and "absent" not in status.output


def test_validate_estimates_what_a_study_costs():
    out = repro("validate", str(ROOT / "studies" / "degradation.yaml"))
    assert out.exit_code == 0, out.output
    assert "cost: 61.2 PFLOP of training, about 1.2 GPU-hours" in out.output


def test_a_store_of_checkpoint_evaluations_alone_is_not_called_empty(tmp_path):
    store_dir = ROOT / "results" / "published" / "checkpoints-jpeg-copy-cpu-2026-11-26" / "store"
    out = repro("report", "--study", str(ROOT / "studies" / "checkpoints.yaml"), "--results",
                str(store_dir), "--out", str(tmp_path / "r.html"))  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "holds no runs" not in out.output

"""The harness installed from a wheel, not run from a checkout: what it reads at run time
must travel inside the package (a cluster's `pip install repro-*.whl` has no repository)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, tiny_study
from fake_runs import fake_run

from harness.studyfile import load_study

STUDY = """\
  - {name: r20, model: resnet20, recipe: base}
claims:
  - {source: test, where: T1, experiment: r20, metric: test_error, value: 8.75}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The wheel of this tree, built offline and installed into a folder of its own.

    It is built from a copy of the sources: setuptools builds in the tree it is given and
    leaves build/ behind, whose stale files would go into the next wheel built there."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "harness", src / "harness",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(work / "dist"), str(src)], check=True)  # fmt: skip
    (wheel,) = (work / "dist").glob("repro-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "-q",
                    "--target", str(work / "site"), str(wheel)], check=True)  # fmt: skip
    return work / "site"


def installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m harness ARGS` with only the installed copy importable, run outside the
    repository."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd,
                          env={**env, "PYTHONPATH": str(site)}, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_the_installed_harness_is_the_wheel_s_not_the_checkout_s(site, tmp_path):
    out = subprocess.run([sys.executable, "-c", "import harness; print(harness.__file__)"],
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)},
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert Path(out.stdout.strip()).is_relative_to(site), out.stdout
    assert not tmp_path.is_relative_to(ROOT)


def test_an_installed_wheel_renders_a_report_outside_the_repository(site, tmp_path):
    """`repro report` from a wheel stopped with TemplateNotFound: its template lay in
    report_templates/ at the repository's top, which no wheel carries."""
    study_file = tiny_study(tmp_path / "s.yaml", STUDY, name="installed")
    fake_run(tmp_path / "results", load_study(study_file), "r20", test_error=8.6)
    out = installed(site, tmp_path, "report", "--study", "s.yaml", "--out", "page.html")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "wrote page.html (html: 1 study, 1 claim, 1 run)" in out.stdout
    html = (tmp_path / "page.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "installed" in html and "8.75%" in html and "8.60%" in html and "reproduced" in html


def test_an_installed_wheel_gives_its_help(site, tmp_path):
    out = installed(site, tmp_path, "--help")
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout and "report" in out.stdout


def test_an_installed_copy_claims_no_commit_of_a_repository_around_it(site, tmp_path):
    """A wheel installed in a virtual environment inside some checkout (as .venv/ sits in
    this one) recorded that checkout's commit as the harness's own in every run."""
    repo = tmp_path / "checkout"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text(".venv/\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "add", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a repository the harness is not from"],
                   check=True)  # fmt: skip
    inner = repo / ".venv" / "site"
    shutil.copytree(site, inner)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REPRO_HARNESS_COMMIT")}
    code = (
        "import json; from harness.environment import git_commit; print(json.dumps(git_commit()))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         env={**env, "PYTHONPATH": str(inner)}, text=True, check=True)  # fmt: skip
    assert json.loads(out.stdout.splitlines()[-1]) == {"commit": None, "dirty": None}


def test_a_checkout_still_gives_its_commit(monkeypatch):
    from harness.environment import git_commit

    monkeypatch.delenv("REPRO_HARNESS_COMMIT", raising=False)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True)  # fmt: skip
    if head.returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout here")
    assert git_commit()["commit"] == head.stdout.strip()


def test_the_report_counts_what_it_wrote_in_words(tmp_path, monkeypatch):
    """`repro report --out x.csv` said "wrote x.csv (csv: 1 studies, 1 claims, 1 runs)":
    each count takes its own plural. (The CLI here, not the wheel: the wording is the same.)"""
    from click.testing import CliRunner

    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    study = load_study(tiny_study(tmp_path / "s.yaml", STUDY, name="words", seeds=2))
    for seed in (0, 1):
        fake_run(tmp_path / "results", study, "r20", seed)
    out = CliRunner().invoke(main, ["report", "s.yaml", "--out", "x.csv"])
    assert out.exit_code == 0, out.output
    assert "wrote x.csv (csv: 1 study, 1 claim, 2 runs)" in out.output, out.output


def test_the_report_counts_only_the_runs_of_the_studies_it_reports(tmp_path, monkeypatch):
    """A run of a study left out of the report is listed apart, not counted as reported: the
    line said "2 runs" for the one run of the study written."""
    from click.testing import CliRunner

    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    study = load_study(tiny_study(tmp_path / "s.yaml", STUDY, name="words"))
    other = load_study(tiny_study(tmp_path / "o.yaml", STUDY, name="other"))
    fake_run(tmp_path / "results", study, "r20")
    fake_run(tmp_path / "results", other, "r20")
    out = CliRunner().invoke(main, ["report", "s.yaml", "--out", "x.csv"])
    assert out.exit_code == 0, out.output
    assert "wrote x.csv (csv: 1 study, 1 claim, 1 run)" in out.output, out.output
    out = CliRunner().invoke(main, ["report", "s.yaml", "--out", "x.html"])
    assert out.exit_code == 0, out.output
    html = (tmp_path / "x.html").read_text()
    assert "2 run directories found, 1 of them of the studies in this report." in html
    assert "Runs of studies not in this report" in html and "other/r20/seed-0" in html

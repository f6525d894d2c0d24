"""Provenance as it is: execution settings recorded after they are applied, and the harness
commit as stated by whoever copied the code to a machine without (or with a stale) .git."""

from __future__ import annotations

import json

import torch
from conftest import QUICK_RECIPE, tiny_study
from test_run import repro, run_args

from harness import environment, store


def test_settings_are_recorded_after_they_are_applied(tmp_path, cifar_root, monkeypatch):
    """On CUDA, configure_backends turns cuDNN autotuning on; the record must say so even in
    a fresh process where nothing turned it on before (it did not: it read the flag first)."""

    def stand_in_for_cuda(ex):
        torch.backends.cudnn.benchmark = True

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr("harness.train.configure_backends", stand_in_for_cuda)
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r8, model: resnet8, recipe: base}\n",
                       QUICK_RECIPE)  # fmt: skip
    results = tmp_path / "results"
    out = repro(*run_args(study, cifar_root, results, "--epochs", "1"))
    assert out.exit_code == 0, out.output
    run = results / "tiny" / "r8" / "seed-0~epochs1"
    env = store.read_environment(run)  # of the shape the store checks it against
    summary = json.loads((run / "summary.json").read_text())
    assert env["cudnn_benchmark"] is True
    assert summary["execution"]["cudnn_benchmark"] is True


def test_a_stated_commit_wins_over_git(monkeypatch):
    monkeypatch.setenv("REPRO_HARNESS_COMMIT", "26b39fc")
    stated = environment.git_commit()
    assert stated["commit"] == "26b39fc" and stated["from"] == "REPRO_HARNESS_COMMIT"
    monkeypatch.delenv("REPRO_HARNESS_COMMIT")
    assert environment.git_commit().get("from") is None

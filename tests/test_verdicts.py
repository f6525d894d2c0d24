"""Verdicts on constructed run stores: the statistics behind each rule, case by case.

Every test builds a small study and hand-made runs (tests/fake_runs.py), builds the report and
reads the verdict of the claim it is about.
"""

from __future__ import annotations

import pytest
from conftest import tiny_study
from fake_runs import fake_run

from harness import verdicts as V
from harness.metrics import METRICS
from harness.report import ClaimRow, build
from harness.results import scan
from harness.studyfile import load_study


def make_study(tmp_path, experiments: str, claims: str, *, top: str = ""):
    """A study with the given experiments and claims (source ``test``); ``top`` adds
    study-level keys."""
    path = tiny_study(tmp_path / "v.yaml", experiments + "claims:\n" + claims, name="v")
    if top:
        path.write_text(path.read_text().replace("seeds: 1\n", f"seeds: 1\n{top}"))
    return load_study(path), path, tmp_path / "results"


def rows(study, path, results) -> list[ClaimRow]:
    (s,) = build([(study, str(path))], scan(results), str(results)).studies
    return s.all_claims


def row(study, path, results, experiment: str, claimed: float | None = None) -> ClaimRow:
    (found,) = [r for r in rows(study, path, results) if r.experiment == experiment
                and (claimed is None or r.claimed_value == claimed)]  # fmt: skip
    return found


ORDER = """\
  - {name: a, model: resnet20, recipe: base}
  - {name: b, model: resnet20, recipe: base}
"""
FIVE = "  - {name: five, model: resnet20, recipe: base, seeds: 5}\n"


# --------------------------------------------------------------------------- 3. scales


def test_a_loss_claim_gets_a_loss_noise_not_0_2_percentage_points(tmp_path):
    claims = ("  - {source: test, where: F5, experiment: a, metric: final_train_loss,"
              " value: 0.05}\n")  # fmt: skip
    study, path, results = make_study(tmp_path, ORDER, claims)
    fake_run(results, study, "a", train_loss=0.30)  # six times the claimed loss
    r = row(study, path, results, "a")
    assert r.verdict == V.NOT_REPRODUCED, r.reason
    assert r.tolerance < 0.05


def test_every_metric_has_a_scale():
    assert METRICS["test_error"].scale.unit == "%"
    assert METRICS["test_error"].scale.noise(7.0) == pytest.approx(0.2)
    assert METRICS["final_train_loss"].scale.unit == ""
    assert METRICS["final_train_loss"].scale.noise(0.5) == pytest.approx(0.05)
    assert METRICS["sec_per_epoch"].scale.unit == " s"
    assert METRICS["params"].scale.noise(269_722) == 0

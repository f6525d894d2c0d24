"""Published and carried results stay valid: every run committed under results/published/ and
results/slots/ still has the config hash its study gives it today. A schema change that
alters hashes (a new recipe field, a renamed default) would otherwise silently make the next
slot supersede and retrain them from scratch."""

from __future__ import annotations

import json
import tarfile

import pytest
from conftest import ROOT

from harness.plan import plan
from harness.studyfile import load_study

STUDIES = {load_study(p).name: p for p in sorted((ROOT / "studies").glob("*.yaml"))}


def _published() -> list[tuple[str, str, str]]:
    runs = []
    for config in sorted((ROOT / "results" / "published").glob("*/store/*/*/seed-*/config.json")):
        study, experiment, seed = config.parts[-4:-1]
        runs.append((f"{study}/{experiment}/{seed}", json.loads(config.read_text())["hash"],
                     str(config.relative_to(ROOT))))  # fmt: skip
    for archive in sorted((ROOT / "results" / "slots").glob("*.tar.gz")):
        with tarfile.open(archive) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())
        runs += [(r["path"], r["config_hash"], archive.name) for r in manifest["runs"]]
    return runs


@pytest.mark.parametrize(("run", "digest", "where"), _published())
def test_a_committed_run_still_has_its_study_s_config_hash(run, digest, where):
    study, experiment, seed_dir = run.split("/")
    planned = {p.name: p.hash for p in plan(load_study(STUDIES[study]))}
    name = f"{experiment}/{seed_dir}"
    if "~" in seed_dir:
        pytest.skip("override runs are planned with their overrides")
    assert name in planned, f"{where}: {run} is no longer planned by its study"
    assert planned[name] == digest, (
        f"{where}: {run} was made with config {digest}, its study now plans {planned[name]}; "
        "a change to the schema or the study moved the hash (see harness/plan.py)"
    )

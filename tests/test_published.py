"""Published and carried results stay valid: every run committed under results/published/ and
results/slots/ still has the config hash its study gives it today. A schema change that
alters hashes (a new recipe field, a renamed default) would otherwise silently make the next
slot supersede and retrain them from scratch."""

from __future__ import annotations

import json
import tarfile

import pytest
from conftest import ROOT

from harness import store
from harness.plan import plan
from harness.results import scan
from harness.studyfile import load_study
from harness.transfer import import_archive

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


# Runs recorded before harness.placement judged where a run lies: each must still read where
# it lies (a published run read as misplaced would stop counting, an imported slot be refused).
@pytest.mark.parametrize("where", sorted((ROOT / "results" / "published").glob("*/store")),
                         ids=lambda p: p.parent.name)  # fmt: skip
def test_no_published_run_reads_as_misplaced(where):
    assert [r.name for r in scan(where) if r.status == store.MISPLACED] == []


@pytest.mark.parametrize("archive", sorted((ROOT / "results" / "slots").glob("*.tar.gz")),
                         ids=lambda p: p.name)  # fmt: skip
def test_a_slot_archive_imports_with_no_run_misplaced(archive, tmp_path):
    merged = import_archive(archive, tmp_path / "results")
    assert merged.refused == [] and merged.added
    assert [r.name for r in scan(tmp_path / "results") if r.status == store.MISPLACED] == []

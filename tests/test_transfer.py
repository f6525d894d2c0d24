"""`repro export` / `repro import` with real runs: a paused run resumes bit-exactly across the
archive, a damaged or altered archive is refused before the store is touched, and a merge
never replaces a run with less of it."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import TINY_RECIPE, tiny_study
from test_run import curves, repro, run_args

from harness import store
from harness.data import load_cached, locate
from harness.plan import plan
from harness.runner import RunOptions, execution_for
from harness.studyfile import load_study
from harness.train import train
from harness.transfer import TransferError, import_archive, read_manifest

# Four short epochs (two steps each), the rate dropping after the third: long enough to
# pause a run halfway and see the schedule carried across the archive.
RECIPE = (
    TINY_RECIPE.replace("epochs: 3", "epochs: 4").replace("[2]", "[3]")
    + "    train_images: 100\n    test_images: 100\n"
)
EXPERIMENTS = (
    "  - {name: done, model: resnet8, recipe: base}\n"
    "  - {name: half, model: resnet8, recipe: base}\n"
)
DONE, HALF = "tiny/done/seed-0", "tiny/half/seed-0"


class EpochLimit:
    """A deadline that lets ``epochs`` epochs start, then none: a slot's end, made exact."""

    def __init__(self, epochs: int) -> None:
        self.left = epochs

    def fits(self, estimate: float | None) -> bool:
        self.left -= 1
        return self.left >= 0

    def passed(self) -> bool:
        return False

    def describe(self) -> str:
        return "the end of the test's slot"


def _pause_after(study_file: Path, results: Path, cifar_root: Path, epochs: int) -> None:
    """Train (or resume) tiny/half for ``epochs`` more epochs, then pause it."""
    (p,) = [p for p in plan(load_study(study_file)) if p.experiment.name == "half"]
    run_dir = p.directory(results)
    data = load_cached(locate(cifar_root))
    with store.run_lock(run_dir):
        summary = train(p, data, run_dir, execution_for(RunOptions(device="cpu")),
                        deadline=EpochLimit(epochs))  # fmt: skip
    assert summary["status"] == store.PAUSED


@pytest.fixture(scope="module")
def made(tmp_path_factory, cifar_root):
    """A source store (done: complete; half: paused at 2 of 4 epochs) and its archives.

    ``early``: the source when half was paused at 1 epoch; ``archive``: at 2 epochs, with
    its checkpoint; ``bare``: the same without checkpoints; ``straight``: a store where half
    trained in one go, the reference for resumption.
    """
    root = tmp_path_factory.mktemp("transfer")
    study = tiny_study(root / "s.yaml", EXPERIMENTS, RECIPE)
    source, straight = root / "source", root / "straight"
    done = repro(*run_args(study, cifar_root, source, "--only", "done"))
    assert done.exit_code == 0, done.output
    full = repro(*run_args(study, cifar_root, straight, "--only", "half"))
    assert full.exit_code == 0, full.output
    out = {"study": study, "source": source, "straight": straight}
    for name, epochs, extra in [("early", 1, ()), ("archive", 1, ()),
                                ("bare", 0, ("--no-checkpoints",))]:  # fmt: skip
        if epochs:
            _pause_after(study, source, cifar_root, epochs)
        out[name] = root / f"{name}.tar.gz"
        export = repro("export", str(study), "--out", str(out[name]), "--results", str(source),
                       *extra)  # fmt: skip
        assert export.exit_code == 0, export.output
        assert "for tiny: 2 runs (1 unfinished)" in export.output
    return out


def _import(archive: Path, results: Path):
    return repro("import", str(archive), "--results", str(results))


def _listing(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) with its SHA-256."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def _pack(out: Path, members: dict[str, bytes]) -> Path:
    """A tar.gz of these members, in this order (the manifest as it is given)."""
    with tarfile.open(out, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(data, Link):
                info.type, info.linkname = data.kind, data.target
                tar.addfile(info)
                continue
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


@dataclass(frozen=True)
class Link:
    """A member that is a link (tarfile.SYMTYPE or LNKTYPE), not a file."""

    kind: bytes
    target: str


def _manifest(members: dict[str, bytes]) -> dict:
    return json.loads(members["manifest.json"])


def _with_manifest(members: dict[str, bytes], manifest: dict) -> dict[str, bytes]:
    return {**members, "manifest.json": json.dumps(manifest).encode()}


def _checkpoint_epoch(path: Path) -> int:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)["epoch"]


# --------------------------------------------------------------------------- round trip


def test_a_paused_run_resumes_across_the_archive_bit_exactly(made, tmp_path, cifar_root):
    manifest = read_manifest(made["archive"])
    runs = {r["path"]: r for r in manifest["runs"]}
    assert (runs[DONE]["status"], runs[DONE]["epochs"], runs[DONE]["resumable_from"]) == (
        "complete", 4, 4)  # fmt: skip
    assert (runs[HALF]["status"], runs[HALF]["epochs"], runs[HALF]["resumable_from"]) == (
        "paused", 2, 2)  # fmt: skip
    # Only the unfinished run's checkpoint travels; locks and progress markers stay behind.
    assert "checkpoint.pt" in runs[HALF]["files"] and "checkpoint.pt" not in runs[DONE]["files"]
    assert not {"lock", "progress.json"} & {n.rsplit("/", 1)[-1] for n in _members(made["archive"])}

    here = tmp_path / "here"
    first = _import(made["archive"], here)
    assert first.exit_code == 0, first.output
    assert f"added     {DONE}: complete, 4 epochs\n" in first.output
    assert f"added     {HALF}: paused, 2 epochs\n" in first.output
    assert "2 added, 0 advanced, 0 skipped, 0 refused" in first.output
    for run in (DONE, HALF):  # the files as they were at the source, byte for byte
        got = _listing(here / run)
        assert got and all(_listing(made["source"] / run)[n] == sha for n, sha in got.items())
    again = _import(made["archive"], here)
    assert again.exit_code == 0, again.output
    assert f"skipped   {HALF}: here paused at 2 epochs, archive paused at 2: nothing newer" in (
        again.output)  # fmt: skip
    assert "0 added, 0 advanced, 2 skipped, 0 refused" in again.output

    resumed = repro(*run_args(made["study"], cifar_root, here))
    assert resumed.exit_code == 0, resumed.output
    assert "already complete" in resumed.output  # tiny/done is not trained again
    summary = store.read_json(here / HALF / "summary.json")
    assert summary["status"] == "complete"
    assert [s["from_epoch"] for s in summary["sessions"]] == [0, 1, 2]  # not from zero
    assert curves(here, HALF) == curves(made["straight"], HALF)  # bit for bit
    assert summary["test_error"] == store.read_json(made["straight"] / HALF / "summary.json")[
        "test_error"]  # fmt: skip

    # Back to a store that still has the run paused: it advances, the old one kept aside.
    back, there = tmp_path / "back.tar.gz", tmp_path / "there"
    shutil.copytree(made["source"], there)
    assert repro("export", str(made["study"]), "--out", str(back), "--results",
                 str(here)).exit_code == 0  # fmt: skip
    merged = _import(back, there)
    assert merged.exit_code == 0, merged.output
    assert f"advanced  {HALF}: paused at 2 -> complete at 4 epochs (previous kept in " in (
        merged.output)  # fmt: skip
    assert "0 added, 1 advanced, 1 skipped, 0 refused" in merged.output
    assert curves(there, HALF) == curves(made["straight"], HALF)
    (kept,) = (there / "tiny/half/.superseded").iterdir()
    assert len(store.read_jsonl(kept / "metrics.jsonl")) == 2


def test_without_checkpoints_the_unfinished_run_restarts(made, tmp_path, cifar_root):
    members = _members(made["bare"])
    assert not [n for n in members if n.endswith("checkpoint.pt")]
    runs = {r["path"]: r for r in _manifest(members)["runs"]}
    assert runs[HALF]["resumable_from"] == 0 and runs[HALF]["epochs"] == 2
    here = tmp_path / "here"
    result = _import(made["bare"], here)
    assert result.exit_code == 0, result.output
    assert f"added     {HALF}: paused, 2 epochs (no checkpoint: restarts)" in result.output
    assert f"added     {DONE}: complete, 4 epochs\n" in result.output  # ended: needs none
    # And it does restart: trained from epoch 0, to the same numbers.
    assert repro(*run_args(made["study"], cifar_root, here)).exit_code == 0
    summary = store.read_json(here / HALF / "summary.json")
    assert summary["sessions"][-1]["from_epoch"] == 0
    assert curves(here, HALF) == curves(made["straight"], HALF)


# --------------------------------------------------------------------------- refusals


def _tampered(members, tmp):
    name = f"{HALF}/metrics.jsonl"
    return {**members, name: members[name].replace(b'"epoch": 2', b'"epoch": 3')}


def _extra(members, tmp):
    return {**members, f"{HALF}/notes.txt": b"not from repro\n"}


def _escaping_member(members, tmp):
    return {**members, "../outside.txt": b"written outside the store\n"}


def _missing(members, tmp):
    return {n: d for n, d in members.items() if n != f"{DONE}/summary.json"}


def _run_path(path: str):
    """The run tiny/half moved to ``path`` in the manifest and in the members' names."""

    def make(members, tmp):
        manifest = _manifest(members)
        for run in manifest["runs"]:
            if run["path"] == HALF:
                run["path"] = path.format(tmp=tmp)
        renamed = {n.replace(HALF, path.format(tmp=tmp)): d for n, d in members.items()}
        return _with_manifest(renamed, manifest)

    return make


def _file_name(name: str):
    """tiny/half's summary.json renamed ``name`` in the manifest and in the archive."""

    def make(members, tmp):
        manifest = _manifest(members)
        for run in manifest["runs"]:
            if run["path"] == HALF:
                run["files"][name] = run["files"].pop("summary.json")
        renamed = {n.replace(f"{HALF}/summary.json", f"{HALF}/{name}"): d
                   for n, d in members.items()}  # fmt: skip
        return _with_manifest(renamed, manifest)

    return make


def _linked(kind: bytes, target: str):
    """tiny/half's summary.json, named in the manifest, a link in the archive: unpacked, it
    would read (or, followed by a later member, write) a file outside the store."""

    def make(members, tmp):
        return {**members, f"{HALF}/summary.json": Link(kind, target)}

    return make


def _no_manifest(members, tmp):
    return {n: d for n, d in members.items() if n != "manifest.json"}


def _foreign_manifest(members, tmp):
    return _with_manifest(members, {"kind": "something-else", "files": []})


# A unique directory right under /tmp: "/tmp/<name>" has three parts, as a run path must.
ABSOLUTE = f"/tmp/repro-escape-{uuid.uuid4().hex[:12]}"

REFUSALS = {
    "tampered": (_tampered, "metrics.jsonl does not match its checksum"),
    "extra": (_extra, "'tiny/half/seed-0/notes.txt' is not in its manifest"),
    "escaping member": (_escaping_member, "'../outside.txt' is not in its manifest"),
    "missing": (_missing, "summary.json is in the manifest but not in the archive"),
    "dotdot run": (_run_path("tiny/../seed-0"), "run path 'tiny/../seed-0' is not"),
    "absolute run": (_run_path(ABSOLUTE), f"run path '{ABSOLUTE}' is not"),
    "dotdot file": (_file_name("../../../../../outside.txt"), "'../../../../../outside.txt'"),
    "dotdot history": (
        _file_name("error.txt.earlier-failure-1/../../../../../../outside.txt"),
        "'error.txt.earlier-failure-1/../../../../../../outside.txt'",
    ),
    "symlink member": (
        _linked(tarfile.SYMTYPE, "/etc/passwd"),
        f"'{HALF}/summary.json' is not a plain file but a symbolic link to '/etc/passwd'",
    ),
    "hard link member": (
        _linked(tarfile.LNKTYPE, f"{HALF}/metrics.jsonl"),
        f"'{HALF}/summary.json' is not a plain file but a hard link to '{HALF}/metrics.jsonl'",
    ),
    "no manifest": (_no_manifest, "manifest.json"),
    "foreign manifest": (_foreign_manifest, "has no repro manifest"),
}


def _store_with_runs(made, tmp_path) -> Path:
    here = tmp_path / "here"
    shutil.copytree(made["source"], here)
    return here


@pytest.mark.parametrize("case", list(REFUSALS))
def test_an_altered_archive_is_refused_and_the_store_left_alone(case, made, tmp_path,
                                                                monkeypatch):  # fmt: skip
    alter, problem = REFUSALS[case]
    # Unpacking happens in a temporary directory here, so that a file escaping it would land
    # in tmp_path (where the test looks for it) rather than somewhere on the machine.
    (tmp_path / "t").mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "t"))
    bad = _pack(tmp_path / "bad.tar.gz", alter(_members(made["archive"]), tmp_path))
    here = _store_with_runs(made, tmp_path)
    before = _listing(here)
    try:
        with pytest.raises(TransferError) as raised:
            import_archive(bad, here)
        assert problem in str(raised.value)
        result = _import(bad, here)
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
        assert f"error: {bad}: " in result.output and problem in result.output
        assert "Traceback" not in result.output
        assert _listing(here) == before
        assert not (tmp_path / "outside.txt").exists()
        assert not Path(ABSOLUTE).exists()
    finally:
        shutil.rmtree(ABSOLUTE, ignore_errors=True)


@pytest.mark.parametrize("content", [b"hello, not an archive\n", "truncated"])
def test_an_unreadable_file_is_refused(content, made, tmp_path):
    bad = tmp_path / "bad.tar.gz"
    data = made["archive"].read_bytes()
    bad.write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    here = _store_with_runs(made, tmp_path)
    before = _listing(here)
    problem = "Compressed file ended" if content == "truncated" else "not a gzip file"
    with pytest.raises(TransferError, match=problem):
        import_archive(bad, here)
    result = _import(bad, here)
    assert result.exit_code == 2 and "not a readable repro store archive" in result.output
    assert problem in result.output
    assert "Traceback" not in result.output
    assert _listing(here) == before


@pytest.mark.parametrize("kept", [0.1, 0.5, 0.99])
def test_an_archive_cut_short_is_told_to_be_copied_again(kept, made, tmp_path):
    """A copy of an archive that did not finish (an scp cut off) was told "not a readable repro
    store archive ...; make one with `repro export`", as if it were some other file."""
    bad = tmp_path / "cut.tar.gz"
    data = made["archive"].read_bytes()
    bad.write_bytes(data[: int(len(data) * kept)])
    result = _import(bad, _store_with_runs(made, tmp_path))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "it ends too soon, as a copy or download that did not finish leaves it: copy it " \
        "again from where it was exported" in result.output, result.output  # fmt: skip
    assert "make one with `repro export`" not in result.output


def test_a_run_whose_config_differs_is_refused(made, tmp_path):
    here = tmp_path / "here"
    assert _import(made["early"], here).exit_code == 0
    config = store.read_json(here / HALF / "config.json")
    theirs = config["hash"]
    # As if the study had changed here since: same run, another config hash.
    store.write_json(here / HALF / "config.json", {**config, "hash": "0123456789abcdef"})
    before = _listing(here / HALF)
    result = _import(made["archive"], here)
    assert result.exit_code == 1, result.output
    assert f"REFUSED   {HALF}: its config ({theirs}) differs from the one here " \
           "(0123456789abcdef)" in result.output  # fmt: skip
    assert "0 added, 0 advanced, 1 skipped, 1 refused" in result.output
    assert _listing(here / HALF) == before
    assert not (here / "tiny/half/.superseded").exists()


# --------------------------------------------------------------------------- merging


def test_a_run_is_never_replaced_by_less_of_it(made, tmp_path):
    # Archive behind the store: paused at 1 epoch against 2 here.
    ahead = tmp_path / "ahead"
    assert _import(made["archive"], ahead).exit_code == 0
    before = _listing(ahead)
    behind = _import(made["early"], ahead)
    assert behind.exit_code == 0, behind.output
    assert f"skipped   {HALF}: here paused at 2 epochs, archive paused at 1: nothing newer" in (
        behind.output)  # fmt: skip
    assert _listing(ahead) == before

    # Archive ahead of the store: the run advances, the local one is moved aside, not lost.
    early = tmp_path / "early"
    assert _import(made["early"], early).exit_code == 0
    local = _listing(early / HALF)
    forward = _import(made["archive"], early)
    assert forward.exit_code == 0, forward.output
    assert f"advanced  {HALF}: paused at 1 -> paused at 2 epochs" in forward.output
    assert _listing(early / HALF) == _listing(ahead / HALF)
    assert _checkpoint_epoch(early / HALF / "checkpoint.pt") == 2
    (kept,) = (early / "tiny/half/.superseded").iterdir()
    assert {n: local[n] for n in _listing(kept) if n != "SUPERSEDED"} == local
    assert "advanced by import of archive.tar.gz" in (kept / "SUPERSEDED").read_text()


def test_a_finished_run_is_never_replaced_by_an_unfinished_one(made, tmp_path):
    # Complete here with all four epochs.
    complete = tmp_path / "complete"
    shutil.copytree(made["straight"], complete)
    before = _listing(complete / HALF)
    result = _import(made["archive"], complete)
    assert f"skipped   {HALF}: here complete at 4 epochs, archive paused at 2" in result.output
    assert _listing(complete / HALF) == before
    # Ended here after one epoch (say it diverged), while the archive has two: still kept.
    ended = tmp_path / "ended"
    assert _import(made["early"], ended).exit_code == 0
    summary = store.read_json(ended / HALF / "summary.json")
    store.write_json(ended / HALF / "summary.json", {**summary, "status": "diverged"})
    before = _listing(ended)
    result = _import(made["archive"], ended)
    assert f"skipped   {HALF}: here diverged at 1 epochs, archive paused at 2" in result.output
    assert _listing(ended) == before


def test_a_run_being_trained_here_is_left_alone(made, tmp_path):
    here = tmp_path / "here"
    assert _import(made["early"], here).exit_code == 0
    fresh = tmp_path / "fresh"  # a run whose training has just started: the lock, no files yet
    for results in (here, fresh):
        before = _listing(results / HALF)
        with store.run_lock(results / HALF):
            result = _import(made["archive"], results)
        assert result.exit_code == 0, result.output
        assert f"skipped   {HALF}: being trained here right now" in result.output
        after = _listing(results / HALF)
        assert {n: d for n, d in after.items() if n != "lock"} == {
            n: d for n, d in before.items() if n != "lock"}  # fmt: skip


def _spoil_checkpoint(run: Path) -> None:
    """As if another run's checkpoint were copied in: training would start over."""
    import torch

    checkpoint = torch.load(run / store.CHECKPOINT, weights_only=True)
    torch.save({**checkpoint, "config_hash": "0123456789abcdef"}, run / store.CHECKPOINT)


def test_a_checkpoint_training_would_not_resume_counts_for_nothing(made, tmp_path):
    """Export and import judged a checkpoint by the epoch it names, where training would
    start over: an archive said it resumes at 2, and a local run that would start over was
    kept over an archive that resumes."""
    source = tmp_path / "source"
    shutil.copytree(made["source"], source)
    _spoil_checkpoint(source / HALF)
    out = repro("export", str(made["study"]), "--out", str(tmp_path / "a.tar.gz"),
                "--results", str(source))  # fmt: skip
    assert out.exit_code == 0, out.output
    (half,) = [r for r in read_manifest(tmp_path / "a.tar.gz")["runs"] if r["path"] == HALF]
    assert half["epochs"] == 2 and half["resumable_from"] == 0

    here = tmp_path / "here"
    assert _import(made["archive"], here).exit_code == 0  # paused at 2 epochs
    _spoil_checkpoint(here / HALF)
    result = _import(made["early"], here)  # paused at 1, and resumes there
    assert f"advanced  {HALF}: paused at 2 -> paused at 1 epochs" in result.output, result.output
    assert list((here / "tiny/half/.superseded").iterdir())


def test_a_run_whose_config_is_not_a_mapping_is_exported_without_a_traceback(made, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(made["source"], source)
    (source / HALF / store.CONFIG).write_text("[1]")
    out = repro("export", str(made["study"]), "--out", str(tmp_path / "a.tar.gz"),
                "--results", str(source))  # fmt: skip
    assert out.exit_code == 0, out.output
    assert f"{HALF} goes as damaged" in out.output
    (half,) = [r for r in read_manifest(tmp_path / "a.tar.gz")["runs"] if r["path"] == HALF]
    assert half["config_hash"] is None and half["resumable_from"] == 0


def test_exporting_a_study_without_runs_is_a_clear_error(tmp_path):
    study = tiny_study(tmp_path / "s.yaml", EXPERIMENTS, RECIPE)
    out = tmp_path / "a.tar.gz"
    result = repro("export", str(study), "--out", str(out), "--results", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert "no runs of study 'tiny'" in result.output and "nothing to export" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_exporting_from_a_store_that_is_not_there_says_so(tmp_path):
    """A mistyped --results read "no runs of study 'tiny' under reslts", as if the study had
    none yet; it names the missing folder and what to give."""
    study = tiny_study(tmp_path / "s.yaml", EXPERIMENTS, RECIPE)
    (tmp_path / "results").mkdir()
    out = tmp_path / "a.tar.gz"
    result = repro("export", str(study), "--out", str(out), "--results", str(tmp_path / "reslts"))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"{tmp_path / 'reslts'} does not exist: no runs of study 'tiny' there" in result.output
    assert "give --results the store that holds its runs" in result.output
    assert not out.exists()
    empty = repro("export", str(study), "--out", str(out), "--results", str(tmp_path / "results"))
    assert "no runs of study 'tiny' under" in empty.output and "does not exist" not in empty.output


@pytest.mark.parametrize(("name", "kind", "instead"), [
    ("runs.zip", "a zip file", "runs.tar.gz"),
    ("runs.tar", "an uncompressed tar", "runs.tar.gz"),
    ("runs.tar.xz", "an xz file", "runs.tar.gz"),
])  # fmt: skip
def test_an_export_named_as_another_kind_of_archive_is_refused(tmp_path, name, kind, instead):
    """`--out runs.zip` wrote a gzipped tar under a .zip name, which unzip cannot open."""
    study = tiny_study(tmp_path / "s.yaml", EXPERIMENTS, RECIPE)
    (tmp_path / "results").mkdir()
    result = repro("export", str(study), "--out", str(tmp_path / name), "--results",
                   str(tmp_path / "results"))  # fmt: skip
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"writes a gzipped tar, not {kind}; name it {tmp_path / instead}" in result.output
    assert not (tmp_path / name).exists()


# What stands where the store, or the study's folder in it, belongs: (make it, words said).
FOLDER_UNREADABLE = {
    "study folder a link loop": ("r/tiny", lambda p: os.symlink(p.name, p), "a link that leads nowhere"),
    "study folder a dead link": ("r/tiny", lambda p: os.symlink("gone", p), "a link that leads nowhere"),
    "study folder a file": ("r/tiny", lambda p: p.write_text("x\n"), "a file, not a folder"),
    "store a link loop": ("r", lambda p: os.symlink(p.name, p), "a link that leads nowhere"),
}  # fmt: skip


@pytest.mark.parametrize("case", FOLDER_UNREADABLE)
def test_exporting_from_a_folder_that_cannot_be_read_says_so(tmp_path, case):
    """A study folder (or store) that is a link loop read as empty: export said "no runs of
    study", as if none had been trained, when they could not be read. It names the path,
    what stands there and what to do."""
    study = tiny_study(tmp_path / "s.yaml", EXPERIMENTS, RECIPE)
    where, make, said = FOLDER_UNREADABLE[case]
    if where != "r":
        (tmp_path / "r").mkdir()
    make(tmp_path / where)
    out = tmp_path / "a.tar.gz"
    result = repro("export", str(study), "--out", str(out), "--results", str(tmp_path / "r"))
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"{tmp_path / where} is {said}" in result.output, result.output
    assert "cannot be read" in result.output and "no runs of study" not in result.output
    assert not out.exists()
    assert os.path.lexists(tmp_path / where)


def test_checkpoint_evaluations_travel_and_are_never_doubled(tmp_path):
    """`repro evaluate`'s records go into the study's archive and come back once."""
    from harness import store
    from harness.transfer import export_study, import_archive

    source = tmp_path / "source"
    record = source / "ck" / "released" / "data-0123456789ab" / store.EVALUATION
    store.write_json(record, {"config_hash": "c" * 16, "test_error": 18.97})
    archive = tmp_path / "ck.tar.gz"
    export_study("ck", source, archive)
    target = tmp_path / "target"
    first = import_archive(archive, target)
    assert first.added == ["ck/released/data-0123456789ab: checkpoint evaluation"]
    assert store.read_json(target / "ck/released/data-0123456789ab" / store.EVALUATION)[
        "test_error"] == 18.97  # fmt: skip
    again = import_archive(archive, target)
    assert again.skipped == ["ck/released/data-0123456789ab: already evaluated here"]
    store.write_json(target / "ck/released/data-0123456789ab" / store.EVALUATION,
                     {"config_hash": "d" * 16, "test_error": 8.27})  # fmt: skip
    assert import_archive(archive, target).refused


def _one_fake_run(tmp_path: Path) -> tuple[Path, Path]:
    from fake_runs import fake_run

    study = tiny_study(tmp_path / "s.yaml", EXPERIMENTS, RECIPE)
    fake_run(tmp_path / "r", load_study(study), "done")
    return study, tmp_path / "r"


def test_an_existing_archive_is_never_overwritten_without_force(tmp_path):
    """The file at --out may be the only copy of another machine's runs."""
    study, results = _one_fake_run(tmp_path)
    out = tmp_path / "a.tar.gz"
    out.write_bytes(b"the other machine's runs")
    result = repro("export", str(study), "--out", str(out), "--results", str(results))
    assert result.exit_code == 2, result.output
    assert f"{out} already exists" in result.output
    assert "another path" in result.output and "--force" in result.output
    assert "Traceback" not in result.output
    assert out.read_bytes() == b"the other machine's runs"
    assert [p.name for p in tmp_path.iterdir() if "a.tar.gz" in p.name] == ["a.tar.gz"]

    forced = repro("export", str(study), "--out", str(out), "--results", str(results), "--force")
    assert forced.exit_code == 0, forced.output
    assert [r["path"] for r in read_manifest(out)["runs"]] == [DONE]


def test_the_closing_line_of_an_export_counts_in_words_and_sizes_a_small_archive(tmp_path):
    """One run read "1 runs", and an archive of a few KiB "(0.0 MiB)", as if it were empty."""
    study, results = _one_fake_run(tmp_path)
    out = tmp_path / "a.tar.gz"
    result = repro("export", str(study), "--out", str(out), "--results", str(results))
    assert result.exit_code == 0, result.output
    size = f"{out.stat().st_size / 1024:.1f} KiB"
    assert f"wrote {out} ({size}) for tiny: 1 run (0 unfinished), 0 checkpoint evaluations" \
        in result.output, result.output  # fmt: skip


def test_an_archive_that_appears_during_an_export_is_kept(tmp_path, monkeypatch):
    """Packing checkpoints takes a while: a file written at --out meanwhile is not replaced."""
    from harness import transfer

    study, results = _one_fake_run(tmp_path)
    out = tmp_path / "a.tar.gz"
    snapshot = transfer._snapshot

    def meanwhile(*args):
        out.write_bytes(b"copied in meanwhile")
        return snapshot(*args)

    monkeypatch.setattr(transfer, "_snapshot", meanwhile)
    result = repro("export", str(study), "--out", str(out), "--results", str(results))
    assert result.exit_code == 2 and f"{out} already exists" in result.output, result.output
    assert out.read_bytes() == b"copied in meanwhile"
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_an_export_that_cannot_finish_leaves_no_half_archive(tmp_path, monkeypatch, failure):
    """A full disk is said in a line (no traceback); a full disk or a Ctrl-C halfway leaves
    neither the archive nor its partial file behind."""
    import tarfile

    study, results = _one_fake_run(tmp_path)
    out = tmp_path / "a.tar.gz"

    def fails(self, *args, **kwargs):
        raise failure

    monkeypatch.setattr(tarfile.TarFile, "add", fails)
    result = repro("export", str(study), "--out", str(out), "--results", str(results))
    if isinstance(failure, OSError):
        assert result.exit_code == 2, result.output
        assert "No space left on device" in result.output and "nothing was written" in result.output
        assert "Traceback" not in result.output
    else:
        assert result.exit_code == 130, result.output  # a stopped command, as anywhere
    assert not out.exists() and not list(tmp_path.glob(".*partial"))


def test_export_runs_replaces_by_default_for_the_gpu_box(tmp_path):
    from harness.results import scan
    from harness.transfer import export_runs

    _, results = _one_fake_run(tmp_path)
    out = tmp_path / "store-tiny.tar.gz"
    out.write_bytes(b"the box's archive of a minute ago")
    export_runs(scan(results), results, out, study="tiny")
    assert [r["path"] for r in read_manifest(out)["runs"]] == [DONE]


def test_a_store_that_cannot_be_written_is_a_clear_error_before_the_import(tmp_path, monkeypatch):
    """`repro import --results` below a file or on a read-only file system says so, as `repro
    run` does, instead of a traceback from the first run's directory. Tests run as root, for
    whom permissions do not bind: a read-only file system is stood in for by the kernel's
    error."""
    study, source = _one_fake_run(tmp_path)
    archive = tmp_path / "a.tar.gz"
    assert (
        repro("export", str(study), "--out", str(archive), "--results", str(source)).exit_code == 0
    )
    (tmp_path / "file").write_text("not a directory")
    below_a_file = _import(archive, tmp_path / "file" / "results")
    assert below_a_file.exit_code == 2, below_a_file.output
    assert "cannot hold the run store" in below_a_file.output
    assert "give --results a directory you can write to" in below_a_file.output
    assert "Traceback" not in below_a_file.output

    target = tmp_path / "read-only"
    target.mkdir()
    real_mkstemp = store.tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve().is_relative_to(target.resolve()):
            raise OSError(30, "Read-only file system", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(store.tempfile, "mkstemp", read_only)
    read_only_store = _import(archive, target)
    assert read_only_store.exit_code == 2, read_only_store.output
    assert "cannot hold the run store" in read_only_store.output
    assert "Read-only" in read_only_store.output and "Traceback" not in read_only_store.output
    assert list(target.iterdir()) == []


def test_an_earlier_failure_travels_and_superseded_attempts_stay_said(tmp_path):
    """`repro export` carried a run's named files only, so the traceback of an earlier failed
    attempt (kept aside when the run was retried) was lost with the GPU slot. It now travels
    and lands beside the run without replacing anything here (one of the same name but other
    content here stays, the archive's is kept beside it, and importing twice adds nothing);
    the superseded attempts (with their checkpoints) stay, and export says how many, where."""
    study, results = _one_fake_run(tmp_path)
    run = results / DONE
    earlier = "error.txt.earlier-failure-20261127-010203"
    (run / earlier).write_text("Traceback: CUDA out of memory on the GPU box\n")
    attempt = run.parent / store.SUPERSEDED / "seed-0-20261126-230000"
    attempt.mkdir(parents=True)
    (attempt / store.CHECKPOINT).write_bytes(b"an earlier attempt's weights")
    fresh = tmp_path / "fresh"
    here = tmp_path / "here"  # already holds the run, with another traceback of that name
    shutil.copytree(results, here)
    (here / DONE / earlier).write_text("this machine's own traceback\n")

    out = tmp_path / "a.tar.gz"
    exported = repro("export", str(study), "--out", str(out), "--results", str(results))
    assert exported.exit_code == 0, exported.output
    assert earlier in read_manifest(out)["runs"][0]["files"]
    assert read_manifest(out)["format"] == 2  # without history, 1: older repros read it
    assert "1 superseded attempt left behind" in exported.output, exported.output
    assert str(run.parent / store.SUPERSEDED) in exported.output

    added = _import(out, fresh)
    assert added.exit_code == 0, added.output
    assert (fresh / DONE / earlier).read_text() == (run / earlier).read_text()
    assert not list(fresh.rglob(store.SUPERSEDED))

    merged = _import(out, here)
    assert merged.exit_code == 0 and "skipped" in merged.output, merged.output
    assert "1 earlier failure's traceback put beside it" in merged.output, merged.output
    assert (here / DONE / earlier).read_text() == "this machine's own traceback\n"
    kept = [p for p in (here / DONE).iterdir() if p.name.startswith(earlier) and p.name != earlier]
    assert [p.read_text() for p in kept] == [(run / earlier).read_text()]
    before = _listing(here)
    again = _import(out, here)
    assert again.exit_code == 0 and "put beside it" not in again.output, again.output
    assert _listing(here) == before


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler catches it."""


def _files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def test_an_import_killed_halfway_is_finished_by_the_next(tmp_path, monkeypatch):
    """`repro import` moves a run's files in one by one; killed after some (before its
    config.json), the next import refused the run as one that lost its config and told the
    user to run `repro run` first, which retrains an ended run. Killed at every file, the
    next import now ends with the store a whole import makes."""
    from harness import transfer

    _, results = _one_fake_run(tmp_path)
    archive = tmp_path / "a.tar.gz"
    transfer.export_study("tiny", results, archive)
    clean = tmp_path / "clean"
    import_archive(archive, clean)
    moves = len(read_manifest(archive)["runs"][0]["files"])
    real = transfer._move_in
    for k in range(1, moves):
        target, done = tmp_path / f"cut-{k}", []

        def move_in(f, to, done=done, k=k):
            if len(done) == k:
                raise _Killed
            done.append(f)
            real(f, to)

        monkeypatch.setattr(transfer, "_move_in", move_in)
        with pytest.raises(_Killed):
            import_archive(archive, target)
        monkeypatch.setattr(transfer, "_move_in", real)
        result = import_archive(archive, target)
        assert not result.refused and len(result.added) == 1, (k, result.lines())
        assert _files(target) == _files(clean), k


def test_an_import_into_a_run_folder_that_cannot_be_written_says_so(tmp_path, monkeypatch):
    """A full disk or a run's folder this user may not write, met while the files are moved
    in, was a traceback; it names the folder and what to do, and the next import finishes."""
    import errno

    from harness import transfer

    _, results = _one_fake_run(tmp_path)
    archive = tmp_path / "a.tar.gz"
    transfer.export_study("tiny", results, archive)

    def read_only(f, to):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(to))

    monkeypatch.setattr(transfer, "_move_in", read_only)
    out = repro("import", str(archive), "--results", str(tmp_path / "to"))
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit), out.output
    assert f"cannot write {tmp_path / 'to' / DONE} (Read-only file system)" in out.output
    monkeypatch.undo()
    assert repro("import", str(archive), "--results", str(tmp_path / "to")).exit_code == 0
    assert _files(tmp_path / "to" / DONE) == _files(results / DONE)


def test_scratch_folders_a_kill_left_are_removed_by_the_next_export_or_import(
    tmp_path, monkeypatch
):
    """Killed halfway (SIGKILL: no cleanup runs), an export left its copies of the runs'
    files, an import the unpacked archive, in /tmp/repro-export-*, /tmp/repro-import-*:
    gigabytes for big checkpoints, kept for good. Each is named with its process now, and the
    next export or import removes those whose process is gone; one of a live process (this
    test's) stays, and one whose process cannot be told (named by an older repro) is named."""
    import tempfile

    from test_chaos import killed_at

    from harness import transfer
    from harness.leftovers import tag

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # the child's too: it is forked
    study, results = _one_fake_run(tmp_path)
    archive = tmp_path / "a.tar.gz"
    killed_at(transfer, "_write_archive", lambda: transfer.export_study("tiny", results, archive))
    (export,) = scratch.iterdir()
    assert export.name.startswith("repro-export-") and (export / DONE / store.SUMMARY).is_file()
    mine = scratch / f"repro-import-{tag()}live0000"
    older = scratch / "repro-export-k3j2q9z1"  # as a repro before this one named it
    for folder in (mine, older):
        (folder / "tiny").mkdir(parents=True)
    out = repro("export", str(study), "--out", str(archive), "--results", str(results))
    assert out.exit_code == 0, out.output
    assert f"removed 1 scratch folder left by killed repro processes: {export}" in out.output
    assert f"kept 1 scratch folder of repro's that may still be in use (made on another host, " \
           f"or by a repro that did not record its process): {older}; remove them by hand" \
           in out.output  # fmt: skip
    assert str(mine) not in out.output
    assert sorted(scratch.iterdir()) == sorted([mine, older])

    killed_at(transfer, "_merge", lambda: import_archive(archive, tmp_path / "to"))
    (unpacked,) = (p for p in scratch.glob("repro-import-*") if p != mine)
    assert (unpacked / DONE / store.SUMMARY).is_file() and not (tmp_path / "to" / DONE).exists()
    out = repro("import", str(archive), "--results", str(tmp_path / "to"))
    assert out.exit_code == 0, out.output
    assert f"removed 1 scratch folder left by killed repro processes: {unpacked}" in out.output
    assert sorted(scratch.iterdir()) == sorted([mine, older])
    assert _files(tmp_path / "to" / DONE) == _files(results / DONE)


def test_a_file_an_import_was_moving_in_when_killed_is_swept_when_the_run_is_next_locked(
    tmp_path, monkeypatch
):
    """An import moves each file into the run's folder under a temporary name, then renames
    it. Killed between the two (SIGKILL), it left `.<name>.importing` there for good: a copy
    from the temp dir, a checkpoint's gigabytes. It is named as the store's temporaries now,
    and swept with them when the run is next locked; the next import places the run whole."""
    import tempfile

    from test_chaos import killed_at

    from harness import transfer

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the child's scratch stays here
    _, results = _one_fake_run(tmp_path)
    archive = tmp_path / "a.tar.gz"
    transfer.export_study("tiny", results, archive)
    run = tmp_path / "to" / DONE
    killed_at(os, "replace", lambda: import_archive(archive, tmp_path / "to"))
    (left,) = run.iterdir()
    assert left.name.startswith(".") and left.is_file()
    with store.run_lock(run):
        assert sorted(p.name for p in run.iterdir()) == [store.LOCK]
    assert len(import_archive(archive, tmp_path / "to").added) == 1
    assert _files(run) == {**_files(results / DONE), store.LOCK: _files(run)[store.LOCK]}


def test_a_partial_archive_a_killed_export_left_is_swept_by_the_next_export_there(
    tmp_path, monkeypatch
):
    """Killed while writing (SIGKILL: no cleanup runs), an export left `.<out>.partial` beside
    --out, a whole store's runs with their checkpoints; only the next export to that very
    path replaced it. It is named with its process now, and the next export into that folder
    removes one whose process is gone (whatever --out it was for), and says so; one of a live
    process (this test's) stays, one whose process cannot be told (another host) is named,
    and one an older repro left for the same --out, which that export would have replaced,
    is removed."""
    import tempfile

    from test_chaos import killed_at

    from harness import transfer
    from harness.leftovers import tag

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the child's scratch stays here
    study, results = _one_fake_run(tmp_path)
    archives = tmp_path / "archives"
    killed_at(os, "replace", lambda: transfer.export_study("tiny", results, archives / "b.tar.gz"))
    (left,) = archives.glob(".*partial")
    assert left.name.startswith(".b.tar.gz.") and f"{os.getpid()}@" not in left.name
    assert transfer.read_manifest(left)["study"] == "tiny"  # whole, killed before its rename
    mine = archives / f".c.tar.gz.{tag()}.partial"
    elsewhere = archives / ".d.tar.gz.4242@node-elsewhere+.partial"
    older = archives / ".a.tar.gz.partial"  # as an older repro named it, for the same --out
    for path in (mine, elsewhere, older):
        path.write_bytes(b"half an archive")
    out = repro("export", str(study), "--out", str(archives / "a.tar.gz"), "--results",
                str(results))  # fmt: skip
    assert out.exit_code == 0, out.output
    assert f"removed 2 partial archives left by killed repro processes: {older}, {left}" \
           in out.output  # fmt: skip
    assert f"kept 1 partial archive of repro's that may still be in use (made on another host, " \
           f"or by a repro that did not record its process): {elsewhere}" in out.output  # fmt: skip
    assert str(mine) not in out.output
    assert sorted(archives.iterdir()) == sorted([archives / "a.tar.gz", mine, elsewhere])


def test_many_scratch_folders_that_cannot_be_told_are_counted_not_all_named(tmp_path, monkeypatch):
    """The slot's rehearsal on the development VM said "kept 45 scratch folders ..." and named
    all 45, made by older repros' test runs, on every import: the note names five and counts
    the rest with their folder."""
    import tempfile

    from harness.leftovers import sweep_scratch

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    for k in range(7):
        (scratch / f"repro-import-old{k}").mkdir()  # unmarked: named by a repro before makers
    (note,) = sweep_scratch().notes()
    shown = ", ".join(str(scratch / f"repro-import-old{k}") for k in range(5))
    assert note.startswith(f"kept 7 scratch folders of repro's that may still be in use (made on "
                           f"another host, or by a repro that did not record its process): "
                           f"{shown} and 2 more in {scratch}; remove them by hand")  # fmt: skip
    assert len(list(scratch.iterdir())) == 7

"""What breaking the machine under `repro run` does: a disk that fills at a given write."""

from __future__ import annotations

import errno
import io
import json
import os

import pytest
from click.testing import CliRunner
from conftest import QUICK_RECIPE, tiny_study

from harness import store
from harness.cli import main

KEYS = ("epoch", "iteration", "lr", "train_loss", "train_error", "test_loss", "test_error")


class _NoSpace(io.RawIOBase):
    """A file on a full disk: every write fails as the kernel's does."""

    def __init__(self, f):
        self._f = f

    def writable(self) -> bool:
        return True

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fileno(self) -> int:
        return self._f.fileno()

    def close(self) -> None:
        self._f.close()
        super().close()


@pytest.fixture
def disk(monkeypatch):
    """``disk["full_from"] = n``: the n-th file the store writes from now on, and every one
    after it, finds the disk full; None frees it."""
    state = {"full_from": None, "writes": 0}
    real = os.fdopen

    def fdopen(fd, mode="r", *args, **kwargs):
        f = real(fd, mode, *args, **kwargs)
        if "w" not in mode or state["full_from"] is None:
            return f
        state["writes"] += 1
        return _NoSpace(f) if state["writes"] >= state["full_from"] else f

    monkeypatch.setattr(os, "fdopen", fdopen)
    return state


def _run(study, cifar_root, results):
    return CliRunner().invoke(main, ["run", str(study), "--data-dir", str(cifar_root),
                                     "--results", str(results), "--device", "cpu", "--quiet"])  # fmt: skip


def _curves(results):
    rows = store.read_jsonl(results / "tiny/r/seed-0/metrics.jsonl")
    return [{k: r[k] for k in KEYS} for r in rows]


def test_a_disk_that_fills_mid_run_is_one_clear_error_and_the_run_resumes(
    tmp_path, cifar_root, disk
):
    """A full disk gave `repro run` a traceback (writing error.txt, the failure's own record,
    failed too), or, filling during a checkpoint, a failed run whose error was torch's
    "unexpected pos 165696 vs 165584". Now it stops with what and what to do, the run keeps
    its last checkpoint, and with space again it resumes from there (bit-exactly, as any
    resumed run: tests/test_run.py), no epoch lost or repeated."""
    recipe = QUICK_RECIPE.replace("epochs: 3", "epochs: 2").replace("[2]", "[1]")
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r, model: resnet8, recipe: base}\n", recipe)
    # Writes: config, environment, metrics, then per epoch checkpoint, metrics, progress:
    # the 7th is the second (last) epoch's checkpoint, written by torch.save.
    disk["full_from"] = 7
    out = _run(study, cifar_root, tmp_path / "full")
    assert out.exit_code == 1, out.output
    assert isinstance(out.exception, SystemExit)  # not the OSError, as a traceback
    assert "error: no space left to write " in out.output
    assert "checkpoint.pt (No space left on device): free space on its disk" in out.output
    run_dir = tmp_path / "full/tiny/r/seed-0"
    assert store.inspect(run_dir).status == "interrupted"
    assert not list(run_dir.glob(".*.tmp"))  # no half-written file left behind
    disk["full_from"] = None
    assert _run(study, cifar_root, tmp_path / "full").exit_code == 0
    assert [r["epoch"] for r in _curves(tmp_path / "full")] == [1, 2]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert [s["from_epoch"] for s in summary["sessions"]] == [0, 1]  # resumed, not restarted


def test_a_full_disk_when_the_lock_is_taken_is_that_error(tmp_path, monkeypatch):
    def no_space(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", no_space)
    lock = store.run_lock(tmp_path / "run")
    with pytest.raises(store.CannotWrite, match=r"no space left to write .*lock"), lock:
        pass
    monkeypatch.undo()
    with store.run_lock(tmp_path / "run"):  # the lock was given back
        assert store.is_locked(tmp_path / "run")


def test_a_run_folder_that_cannot_be_written_is_one_clear_error(tmp_path, cifar_root, monkeypatch):
    """A run's folder this user may not write (read-only, another user's in a shared store)
    gave `repro run` a traceback when it took the run's lock; now it says which file and what
    to do, and the runs there are as they were."""
    study = tiny_study(tmp_path / "s.yaml", "  - {name: r, model: resnet8, recipe: base}\n",
                       QUICK_RECIPE)  # fmt: skip
    run_dir = tmp_path / "r/tiny/r/seed-0"
    run_dir.mkdir(parents=True)
    (run_dir / "kept.txt").write_text("mine\n")
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if str(path).startswith(str(run_dir)) and flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    out = _run(study, cifar_root, tmp_path / "r")
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit), out.output
    assert f"error: cannot write {run_dir / 'lock'} (Read-only file system): make its" in out.output
    assert sorted(p.name for p in run_dir.iterdir()) == ["kept.txt"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_store_files_are_as_readable_as_the_users_umask_makes_new_files(tmp_path, umask, mode):
    """mkstemp makes 0600 files: a lab sharing a group-readable results folder could not read
    one another's runs. The store's atomic writes now give what open() would."""
    old = os.umask(umask)
    try:
        store.write_json(tmp_path / "summary.json", {"status": "complete"})
        store.write_jsonl(tmp_path / "metrics.jsonl", [{"epoch": 1}])
        store.save_torch(tmp_path / "checkpoint.pt", {"epoch": 1})
    finally:
        os.umask(old)
    for name in ("summary.json", "metrics.jsonl", "checkpoint.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name

"""What breaking the machine under `repro run` does: a disk that fills at a given write, and
what a SIGKILL at a given file operation leaves behind, which the next command cleans up."""

from __future__ import annotations

import collections
import errno
import io
import itertools
import json
import os
import socket
import time

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


# --------------------------------------------------------------------------- leftovers
# What a SIGKILL leaves, made by killing a forked child at the very file operation: os._exit
# runs no finally, no handler and no cleanup, as SIGKILL. The next ordinary command cleans up
# what is provably a dead process's, and never what a live one (this test's) is using.

KILLED = 137


def killed_at(module, name: str, call, nth: int = 1) -> int:
    """Run ``call`` in a forked child that dies where it reaches ``module.name`` for the
    ``nth`` time; its pid."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            real, reached = getattr(module, name), itertools.count(1)

            def die_at_nth(*args, **kwargs):
                if next(reached) >= nth:
                    os._exit(KILLED)
                return real(*args, **kwargs)

            setattr(module, name, die_at_nth)
            call()
        finally:
            os._exit(1)  # it never reached the point it was to be killed at
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == KILLED
    return pid


def live(name: str) -> str:
    """``name`` as this (live) process would have made it (harness.leftovers.tag)."""
    from harness.leftovers import tag

    return name.replace("PID", tag())


def _old(path) -> None:
    """Older than any write takes: only its live maker may keep it."""
    then = time.time() - 600
    os.utime(path, (then, then))


def _status(study, results):
    return CliRunner().invoke(main, ["status", str(study), "--results", str(results)])


def _fake_study(tmp_path):
    from fake_runs import fake_run

    from harness.studyfile import load_study

    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    return study, fake_run(tmp_path / "results", load_study(study), "a")


def test_a_probe_a_kill_left_is_removed_by_the_next_command_and_a_live_ones_kept(tmp_path):
    """Killed between making its probe file and removing it, a command left an empty
    `.repro-probe-*` in the store's folder for good; the next one removes it."""
    from harness import outputs

    study, _ = _fake_study(tmp_path)
    results = tmp_path / "results"
    pid = killed_at(os, "unlink", lambda: outputs.probe(results))
    (left,) = results.glob(".repro-probe-*")
    assert left.stat().st_size == 0 and f"{pid}@" in left.name
    mine = results / live(".repro-probe-PIDlive0000")
    mine.touch()
    _old(mine)
    out = _status(study, results)
    assert out.exit_code == 0, out.output
    assert f"note: removed {left}, an empty probe a killed repro left" in out.output
    assert [p.name for p in results.glob(".repro-probe-*")] == [mine.name]
    assert store.ensure_writable(results) is None  # a probe here sweeps too, and keeps mine
    assert [p.name for p in results.glob(".repro-probe-*")] == [mine.name]


@pytest.mark.parametrize("whole", [True, False])
def test_a_superseded_note_a_kill_left_unfinished_is_finished_or_written_again(tmp_path, whole):
    """store.supersede moves the run aside with its note under a temporary name, then names
    the note. Killed before that rename, it left `.SUPERSEDED.*.tmp` whole: the next status
    puts it in place. One not whole (an older repro wrote the note after the move, and was
    killed in the write) is written again, saying why the run was moved is lost. A note a
    live process is writing stays."""
    study, run = _fake_study(tmp_path)
    results = tmp_path / "results"
    if whole:
        killed_at(os, "replace", lambda: store.supersede(run, "config changed: aaaa -> bbbb"))
    else:
        older = run.parent / store.SUPERSEDED / "seed-0-20261126-000000"
        older.parent.mkdir()
        run.rename(older)
        (older / ".SUPERSEDED.k2j3h4.tmp").write_text("config chan")
        _old(older / ".SUPERSEDED.k2j3h4.tmp")
    (moved,) = (run.parent / store.SUPERSEDED).iterdir()
    (tmp,) = moved.glob(".SUPERSEDED.*.tmp")
    assert not (moved / "SUPERSEDED").exists()
    writing = run.parent / store.SUPERSEDED / "seed-0-20261127-000000"
    writing.mkdir()
    theirs = writing / live(".SUPERSEDED.PIDabcd1234.tmp")
    theirs.write_text("redone with --force\n")
    _old(theirs)
    out = _status(study, results)
    assert out.exit_code == 0, out.output
    note = (moved / "SUPERSEDED").read_text()
    if whole:
        assert note == "config changed: aaaa -> bbbb\n"
        assert (
            f"note: finished {moved / 'SUPERSEDED'}, which a killed repro wrote whole" in out.output
        )
    else:
        assert note == ("moved aside by a repro that was killed before it wrote why; it holds a "
                        "run of 3 epochs (complete)\n")  # fmt: skip
        assert f"note: wrote {moved / 'SUPERSEDED'} again, saying why the run was moved aside " \
               "is lost" in out.output  # fmt: skip
    assert not tmp.exists() and theirs.exists() and not (writing / "SUPERSEDED").exists()
    assert sorted(p.name for p in moved.iterdir()) == sorted(
        ["SUPERSEDED", "config.json", "environment.json", "metrics.jsonl", "summary.json"]
    )


def test_a_stale_progress_marker_in_an_ended_run_is_removed_never_a_live_ones(tmp_path, cifar_root):
    """A session writes its summary, then removes progress.json; killed between the two, the
    marker stayed in the complete run for good. Status never read it there (it reads one only
    while the run's lock is held): the run showed complete, as it does. The next status, or
    run, removes it; while a process holds the run's lock (training it again) it stays."""
    study, run = _fake_study(tmp_path)
    results = tmp_path / "results"
    marker = {"status": "running", "epoch": 3, "epochs": 4, "iteration": 30, "host": "node7"}
    store.write_json(run / store.PROGRESS, marker)
    with store.run_lock(run):  # a live process's: kept
        out = _status(study, results)
    assert out.exit_code == 0 and (run / store.PROGRESS).exists(), out.output
    out = _status(study, results)
    assert out.exit_code == 0, out.output
    assert "a/seed-0  complete" in out.output and "node7" not in out.output
    assert not (run / store.PROGRESS).exists()
    assert ("note: removed the progress marker (progress.json) a killed session left in 1 ended "
            "run of tiny: a/seed-0") in out.output  # fmt: skip
    store.write_json(run / store.PROGRESS, marker)  # `repro run` removes it too
    out = _run(study, cifar_root, results)
    assert out.exit_code == 0 and not (run / store.PROGRESS).exists(), out.output
    assert "note: removed the progress marker" in out.output


# --------------------------------------------------------------------------- superseding
# A run moved to .superseded/ (a changed config, --force, a damaged or misplaced run, an
# import that advances it, a twin adopted over it) killed at each file operation of the move.

OPERATIONS = ("mkdir", "open", "fchmod", "fsync", "rename", "replace", "unlink")
REASON = "config changed: aaaa -> bbbb"


def _operations(monkeypatch, call) -> list[tuple[str, int]]:
    """The file operations ``call`` makes, in order: (name, how many of that name so far)."""
    made, seen = [], collections.Counter()

    def counting(name, real):
        def counted(*args, **kwargs):
            seen[name] += 1
            made.append((name, seen[name]))
            return real(*args, **kwargs)

        return counted

    for name in OPERATIONS:
        monkeypatch.setattr(os, name, counting(name, getattr(os, name)))
    call()
    monkeypatch.undo()
    return made


def _files(folder) -> dict[str, bytes]:
    """Every file in ``folder`` (hidden ones too) and its bytes; the lock file aside."""
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != store.LOCK}


def _moved(run) -> list:
    return sorted((run.parent / store.SUPERSEDED).glob("*"))


def _each_kill(tmp_path, monkeypatch, supersede):
    """For each file operation ``supersede(run)`` makes: a fresh fake run, killed there, then
    the study tidied as `repro run` and `repro status` begin (harness.tidy); yields the run,
    its files before, where the kill was, and tidy's notes."""
    from fake_runs import fake_run

    from harness.studyfile import load_study
    from harness.tidy import tidy_study

    study = load_study(tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n"))  # fmt: skip
    counted = fake_run(tmp_path / "count", study, "a")
    ops = _operations(monkeypatch, lambda: supersede(counted))
    assert ("rename", 1) in ops and ("replace", 1) in ops  # a move, a note put in place
    for i, (name, nth) in enumerate(ops):
        run = fake_run(tmp_path / f"killed-{i}", study, "a")
        before = _files(run)
        killed_at(os, name, lambda run=run: supersede(run), nth)
        yield run, before, f"{name} #{nth}", tidy_study(tmp_path / f"killed-{i}", "tiny")


def test_a_supersede_killed_at_any_file_operation_leaves_the_run_whole_and_says_why(
    tmp_path, monkeypatch
):
    """store.supersede moved the run's folder, then wrote why in it: killed between the two,
    .superseded/ held a run with no note at all, which nothing ever explained. Now, killed at
    each of its file operations, what the next status or run finds is the run whole where it
    was (a note's temporary a kill left in it removed, and said), or moved whole with its
    note saying why; never a file lost or the run in two places. Done again, it goes through
    and the run's folder is free for the new run."""
    for run, before, at, notes in _each_kill(tmp_path, monkeypatch,
                                             lambda run: store.supersede(run, REASON)):  # fmt: skip
        if run.exists():  # killed before the move: the run as it was, the note's temporary gone
            assert _files(run) == before and not _moved(run), at
            where = store.supersede(run, REASON)  # the next `repro run` supersedes it then
        else:
            (where,) = _moved(run)
            assert any(str(where) in n for n in notes), (at, notes)
        assert _files(where) == {**before, store.SUPERSEDED_NOTE: f"{REASON}\n".encode()}, at
        assert store.inspect(run).status == "absent", at  # trained anew, in a folder of its own


def test_a_move_of_a_runs_files_killed_midway_is_finished_before_the_run_trains(
    tmp_path, monkeypatch
):
    """store.supersede_files (a twin adopted over a run, whose lock file stays) moved the files
    one by one and wrote the note last: killed midway, the run was split between its folder
    and .superseded/, the moved part without a note, and `repro run` went on from what was
    left. Now it records the move first; killed at each file operation, the next status (or
    anything taking the run's lock) finishes it: all the run's files in one folder with the
    note saying why, the run's folder empty for the new run; or, killed before the record,
    the run as it was."""

    def locked(run):
        with store.run_lock(run):  # as twins.adopt holds it
            store.supersede_files(run, REASON)

    cases = set()
    for run, before, at, notes in _each_kill(tmp_path, monkeypatch, locked):
        if not _moved(run):  # killed before the move was recorded: a temporary at most
            with store.run_lock(run):  # swept as the run is next locked, as any run's are
                assert _files(run) == before, at
            cases.add("before")
            continue
        (where,) = _moved(run)
        assert _files(run) == {} and store.inspect(run).status == "absent", at
        assert _files(where) == {**before, store.SUPERSEDED_NOTE: f"{REASON}\n".encode()}, at
        assert any(n.startswith(f"finished moving {run}'s files to {where}") for n in notes), at
        cases.add("finished")
    assert cases == {"before", "finished"}  # the record goes last: every kill after it is finished


def test_a_split_run_is_made_whole_when_its_lock_is_next_taken_and_status_says_so(tmp_path):
    """Killed between moving two of the run's files: whoever takes the run's lock next (`repro
    run` about to train, an adoption) finishes the move first, so nothing trains on top of
    half a run; `repro status` finishes it too, and says what it finished."""
    from fake_runs import fake_run

    from harness.studyfile import load_study

    study, statused = _fake_study(tmp_path)
    before = _files(statused)
    for locking in (True, False):
        run = fake_run(tmp_path / "locked", load_study(study), "a") if locking else statused
        killed_at(os, "rename", lambda run=run: store.supersede_files(run, REASON), nth=2)
        (where,) = _moved(run)
        assert 1 < len(_files(where)) < len(before) + 1  # the note and some of the files
        assert store.present(run / store.SUPERSEDING)
        if locking:
            with store.run_lock(run):
                assert _files(run) == {}
        else:
            out = _status(study, tmp_path / "results")
            assert out.exit_code == 0, out.output
            assert f"note: finished moving {run}'s files to {where}, which a killed repro began " \
                   f"({REASON}); none of its files is left in the run's folder" in out.output  # fmt: skip
        assert _files(run) == {} and not store.present(run / store.SUPERSEDING)
        assert _files(where) == {**before, store.SUPERSEDED_NOTE: f"{REASON}\n".encode()}


def test_a_moved_run_with_no_note_at_all_gets_one_saying_why_is_lost(tmp_path):
    """An older repro moved the run, then wrote its note: killed between the two it left a
    moved run with no note and no temporary, which nothing explained. The next status writes
    the note, saying why is lost; a folder moved within the last minute (its mover may be
    about to write the note) is left."""
    study, run = _fake_study(tmp_path)
    results = tmp_path / "results"
    (run.parent / store.SUPERSEDED).mkdir()
    old = run.parent / store.SUPERSEDED / "seed-0-20261126-000000"
    run.rename(old)
    _old(old)
    young = run.parent / store.SUPERSEDED / "seed-0-20261127-000000"
    young.mkdir()
    out = _status(study, results)
    assert out.exit_code == 0, out.output
    assert (old / store.SUPERSEDED_NOTE).read_text() == (
        "moved aside by a repro that was killed before it wrote why; it holds a run of 3 epochs "
        "(complete)\n"
    )
    assert f"note: wrote {old / store.SUPERSEDED_NOTE}, saying why the run was moved aside is " \
           "lost" in out.output  # fmt: skip
    assert not (young / store.SUPERSEDED_NOTE).exists()


# --------------------------------------------------------------------------- review
# What a second look at the code above found.


@pytest.mark.parametrize("host", ["lab/node7", "node7+gpu", "nœud 7@lab"])
def test_a_host_name_of_any_characters_writes_and_tells_its_own_leftovers(
    tmp_path, monkeypatch, host
):
    """The kernel takes any bytes for a host name, and a temporary's name held it as it was:
    with a "/" every write of the store failed (the name led into a folder that is not
    there); with a "+", which ends the tag, no temporary of this host was ever told its own,
    so one a killed writer left stayed until it was old, and a live writer's old one was
    removed by age. Now the host is encoded in the name."""
    from harness import leftovers

    monkeypatch.setattr(socket, "gethostname", lambda: host)
    run = tmp_path / "run"
    store.write_json(run / store.SUMMARY, {"status": "complete"})
    pid = killed_at(os, "replace", lambda: store.write_json(run / store.SUMMARY, {"epoch": 2}))
    (left,) = run.glob(".*.tmp")
    assert f"{pid}@" in left.name and "/" not in left.name.split(f"{pid}@")[1]
    mine = run / f".metrics.jsonl.{leftovers.tag()}live0000.tmp"
    mine.write_text("{}\n")
    _old(mine)  # a live writer's, however old: kept
    with store.run_lock(run):
        pass
    assert not left.exists() and mine.exists()  # the dead writer's, however young: removed
    assert json.loads((run / store.SUMMARY).read_text()) == {"status": "complete"}


def test_a_run_that_meets_status_tidying_its_folder_waits_rather_than_skip_it_as_busy(
    tmp_path, monkeypatch
):
    """`repro status` takes a run's lock for an instant to tidy it (here to finish a move a
    kill cut short; a stale progress marker too). A `repro run` that looked in that instant
    read the run as running and took it for busy, "being trained by another process" (status
    itself), and skipped it; it now waits the instant out. A trainer's lock is busy at once."""
    import contextlib
    import threading

    from harness import runner
    from harness.plan import plan
    from harness.studyfile import load_study

    study, run = _fake_study(tmp_path)
    killed_at(os, "rename", lambda: store.supersede_files(run, REASON), nth=2)
    p = plan(load_study(study))[0]
    seen, looked = [], threading.Event()
    pread = os.pread

    def reading_the_holder(*args):  # a second process finds the lock held
        looked.set()
        return pread(*args)

    def repro_run():  # what `repro run` asks of a run before it trains it
        seen.append(store.is_locked(run))
        with contextlib.ExitStack() as locks:
            seen.append(runner._lock(p, run, locks))

    sweep, other = store.sweep_temporaries, threading.Thread(target=repro_run)

    def meanwhile(run_dir, **when):  # run_lock calls it once the lock is held: status's
        if threading.current_thread() is threading.main_thread() and other.ident is None:
            other.start()
            assert looked.wait(5)
        return sweep(run_dir, **when)

    monkeypatch.setattr(os, "pread", reading_the_holder)
    monkeypatch.setattr(store, "sweep_temporaries", meanwhile)
    out = _status(study, tmp_path / "results")
    other.join(5)
    assert out.exit_code == 0 and "note: finished moving" in out.output, out.output
    assert seen == [False, None]  # not running, and locked to be trained
    with store.run_lock(run), contextlib.ExitStack() as locks:
        started = time.monotonic()
        busy = runner._lock(p, run, locks)
        assert busy is not None and busy.status == "busy"
        assert time.monotonic() - started < store.TIDYING_WAIT_S / 10


def test_a_clock_ahead_of_the_stores_never_makes_another_hosts_write_in_progress_read_old(
    tmp_path, monkeypatch
):
    """On a store shared over NFS the server stamps the files, and this machine's clock may
    run minutes ahead of it. The lock's holder removed the temporaries older than a minute by
    its own clock: a write another host had begun a second before (an import's copy of a
    checkpoint, a superseded note) read as minutes old and was removed from under it. Ages
    are now read against the lock file the holder has just written, on the store's clock."""
    run = tmp_path / "run"
    run.mkdir()
    theirs = run / ".checkpoint.pt.4242@node-b+importing.tmp"
    theirs.write_bytes(b"half a checkpoint")
    left = run / ".summary.json.4242@node-b+abcd1234.tmp"
    left.write_text("{}")
    _old(left)  # ten minutes old on the store's clock: a killed writer's
    ahead = time.time() + 300
    monkeypatch.setattr(time, "time", lambda: ahead)
    with store.run_lock(run):
        pass
    assert theirs.read_bytes() == b"half a checkpoint" and not left.exists()


def test_a_leftover_of_another_pid_namespace_on_this_host_is_never_taken_for_dead(
    tmp_path, monkeypatch
):
    """Containers that share this host's name (Kubernetes' hostNetwork pods, docker
    --uts=host) number their processes apart: a live writer's pid in one is no process in
    another, and a sweep there removed its temporary as a dead process's. A tag now names its
    PID namespace too; one of another namespace is told as another host's, kept while young."""
    from harness import leftovers

    run = tmp_path / "run"
    run.mkdir()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)  # no process of that pid in this namespace
    monkeypatch.setattr(os, "getpid", lambda: pid)
    monkeypatch.setattr(leftovers, "_pid_namespace", lambda: "4026500001", raising=False)
    theirs = store._write_temporary(run / store.METRICS, lambda f: f.write(b"{}\n"))
    monkeypatch.undo()
    with store.run_lock(run):
        pass
    assert theirs.read_bytes() == b"{}\n"


def test_status_on_a_read_only_store_with_every_leftover_says_so_and_changes_nothing(
    tmp_path, monkeypatch
):
    """`repro status` now tidies what killed processes left, under runs' locks; on a store
    this user may read but not write it says what it could not do, lists the runs, and no
    file changes. (Made read-only by refusing writes below the store: the tests run as root.)"""
    from fake_runs import fake_run

    from harness.studyfile import load_study

    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n"
                       "  - {name: b, model: resnet8, recipe: base}\n")  # fmt: skip
    results = tmp_path / "results"
    a, b = (fake_run(results, load_study(study), name) for name in "ab")
    store.write_json(a / store.PROGRESS, {"status": "running"})  # a stale marker
    killed_at(os, "rename", lambda: store.supersede_files(b, REASON), nth=2)  # a split run
    (results / ".repro-probe-left").touch()
    note = a / ".SUPERSEDED.99999999@elsewhere+k2j3.tmp"  # a killed move's note, unmoved
    note.write_text(f"{REASON}\n")
    noteless = a.parent / store.SUPERSEDED / "seed-0-20260101-000000"
    noteless.mkdir(parents=True)
    (noteless / store.METRICS).write_text("")
    for path in (results / ".repro-probe-left", note, noteless):
        _old(path)
    before = {p: p.read_bytes() for p in results.rglob("*") if p.is_file()}

    def refused(name, real):
        def call(path, *args, **kwargs):
            writes = name != "open" or args[0] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            if writes and str(path).startswith(str(results)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real(path, *args, **kwargs)

        return call

    for name in ("open", "unlink", "rename", "replace", "mkdir", "rmdir"):
        monkeypatch.setattr(os, name, refused(name, getattr(os, name)))
    out = _status(study, results)
    monkeypatch.undo()
    assert out.exit_code == 0 and out.exception is None, out.output
    assert (
        f"note: could not finish moving {b} to .superseded/ (Read-only file system)" in out.output
    )
    assert f"note: could not finish or remove {note} (Read-only file system)" in out.output
    assert f"note: could not finish or remove {noteless} (Read-only file system)" in out.output
    assert "a/seed-0  complete" in out.output
    assert {p: p.read_bytes() for p in results.rglob("*") if p.is_file()} == before

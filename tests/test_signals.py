"""SIGTERM, SIGINT and a hang-up (SIGHUP) reach every run: each run they stop ends interrupted and resumable.

Real processes on the CPU: `repro run --runs-per-gpu 2` with its workers, signalled while
they train or while they load the data. A data set whose first batch is a named pipe holds a
process in its data loading for as long as a test needs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, TINY_RECIPE, tiny_study

from harness import store
from harness.cli import main
from harness.executors import WORKERS_STILL_STOPPING, _stop_workers
from harness.plan import plan
from harness.runner import RunOptions
from harness.stop_signals import stop_signals
from harness.studyfile import load_study

# Five epochs: long enough to be still training when signalled after the first, short
# enough for the rerun to finish them in seconds.
RECIPE = TINY_RECIPE.replace("epochs: 3", "epochs: 5").replace("[2]", "[4]")
TIMEOUT = 120  # seconds; generous for two cores, never reached when things work


def two_runs(tmp_path: Path) -> Path:
    runs = (
        "  - {name: a, model: resnet8, recipe: base}\n  - {name: b, model: resnet8, recipe: base}\n"
    )
    return tiny_study(tmp_path / "s.yaml", runs, RECIPE)


def run_dir(results: Path, name: str) -> Path:
    return results / "tiny" / name / "seed-0"


def epochs(results: Path, name: str) -> int:
    return len(store.read_jsonl(run_dir(results, name) / store.METRICS))


def wait_for(condition, what: str, proc: subprocess.Popen) -> None:
    deadline = time.time() + TIMEOUT
    while not condition():
        assert proc.poll() is None, f"repro ended before {what}: {proc.communicate()[0]}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def worker_pid(results: Path, name: str) -> int:
    """The process training a run, from its lock ("pid N on host")."""
    return int((run_dir(results, name) / store.LOCK).read_text().split()[1])


def alive(pid: int) -> bool:
    """Running, and not a zombie that only waits to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    """Child processes of ``pid``: how to find a worker before it has taken its run's lock."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
    return kids


@pytest.fixture
def repro(cifar_root):
    """Start `repro run` in its own process group; whatever is left of it is killed after."""
    started: list[subprocess.Popen] = []

    def start(study: Path, results: Path, *extra: str, data: Path = cifar_root):
        command = [sys.executable, "-m", "harness", "run", str(study), "--data-dir", str(data),
                   "--results", str(results), "--device", "cpu", "--quiet", *extra]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
        started.append(proc)
        return proc

    yield start
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # workers a broken parent left training
        proc.wait()


def finish(proc: subprocess.Popen) -> str:
    return proc.communicate(timeout=TIMEOUT)[0]


def stop_the_parent(tmp_path: Path, repro, signum: int) -> list[str]:
    """Signal `repro run` while both its workers train; check each run stopped resumably."""
    study, results = two_runs(tmp_path), tmp_path / "results"
    proc = repro(study, results, "--runs-per-gpu", "2")
    wait_for(lambda: epochs(results, "a") >= 1 and epochs(results, "b") >= 1, "training", proc)
    workers = [worker_pid(results, name) for name in ("a", "b")]
    proc.send_signal(signum)
    output = finish(proc)
    assert proc.returncode == 130, output
    assert not [pid for pid in workers if alive(pid)], "a worker outlived its parent"
    for name in ("a", "b"):
        summary = store.read_json(run_dir(results, name) / store.SUMMARY)
        assert summary["status"] == "interrupted", (name, output)
        assert (run_dir(results, name) / store.CHECKPOINT).exists()
        assert 1 <= epochs(results, name) < 5
    assert output.count("[ stopped]") == 2 and "FAILED" not in output
    return proc.args[3:]  # the arguments of `repro`


def test_sigterm_to_the_parent_stops_every_worker_and_the_same_command_resumes(tmp_path, repro):
    args = stop_the_parent(tmp_path, repro, signal.SIGTERM)
    # The same command again (in this process, to spare a start-up) finishes both runs.
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    for name in ("a", "b"):
        summary = store.read_json(run_dir(tmp_path / "results", name) / store.SUMMARY)
        assert summary["status"] == "complete" and len(summary["sessions"]) == 2  # resumed
        assert epochs(tmp_path / "results", name) == 5  # none lost, none repeated


def test_sigint_to_the_parent_stops_every_worker(tmp_path, repro):
    stop_the_parent(tmp_path, repro, signal.SIGINT)  # the store as SIGTERM leaves it


def test_a_signal_to_one_worker_stops_that_run_only(tmp_path, repro):
    study, results = two_runs(tmp_path), tmp_path / "results"
    proc = repro(study, results, "--runs-per-gpu", "2")
    wait_for(lambda: epochs(results, "a") >= 1, "training", proc)
    os.kill(worker_pid(results, "a"), signal.SIGTERM)
    output = finish(proc)
    assert proc.returncode == 130, output
    stopped = store.read_json(run_dir(results, "a") / store.SUMMARY)
    assert stopped["status"] == "interrupted", output
    assert (run_dir(results, "a") / store.CHECKPOINT).exists()
    assert store.read_json(run_dir(results, "b") / store.SUMMARY)["status"] == "complete"
    assert "[ stopped] tiny/a/seed-0" in output and "[    done] tiny/b/seed-0" in output


@pytest.fixture
def blocking_data(tmp_path, cifar_root) -> Path:
    """A copy of the data set whose first batch is a named pipe (see `reader_blocked`)."""
    folder = tmp_path / "data" / "cifar-10-batches-py"
    shutil.copytree(cifar_root / "cifar-10-batches-py", folder)
    (folder / "data_batch_1").unlink()
    os.mkfifo(folder / "data_batch_1")
    return folder.parent


@contextlib.contextmanager
def reader_blocked(data: Path, proc: subprocess.Popen, fifo: Path | None = None) -> Iterator[None]:
    """Wait until a process opens the pipe to read the data (or ``fifo``); keep it blocked in
    its read.

    Opening the write end succeeds only once a reader has the pipe open; holding it open
    without writing keeps that reader waiting until we let go (it then reads end-of-file).
    Signal it inside, and let go before waiting for it: a signal that lands between its open
    and its read is acted on only when the read returns, as with any blocking call.
    """
    fifo = fifo or data / "cifar-10-batches-py" / "data_batch_1"
    fd = None

    def opened() -> bool:
        nonlocal fd
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: nobody has it open to read yet
                raise
        return fd is not None

    wait_for(opened, "the data loading", proc)
    try:
        yield
    finally:
        os.close(fd)


def test_a_worker_stopped_while_loading_the_data_is_interrupted(tmp_path, repro, blocking_data):
    results = tmp_path / "results"
    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    proc = repro(study, results, "--runs-per-gpu", "2", data=blocking_data)
    with reader_blocked(blocking_data, proc):
        (worker,) = children(proc.pid)
        os.kill(worker, signal.SIGTERM)
    output = finish(proc)
    assert proc.returncode == 130, output
    summary = store.read_json(run_dir(results, "a") / store.SUMMARY)
    assert summary["status"] == "interrupted", output
    assert "[ stopped] tiny/a/seed-0" in output and "FAILED" not in output
    # The worker recorded it itself, not only its parent after the fact.
    assert '"status": "interrupted"' in (run_dir(results, "a") / store.WORKER_LOG).read_text()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_one_process_stopped_while_loading_the_data_exits_130(
    tmp_path, repro, blocking_data, signum
):
    results = tmp_path / "results"
    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    proc = repro(study, results, data=blocking_data)
    with reader_blocked(blocking_data, proc):
        proc.send_signal(signum)
    output = finish(proc)
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "[ stopped] tiny/a/seed-0" in output
    assert store.inspect(run_dir(results, "a")).status == "absent"  # nothing to resume


def test_ctrl_c_while_starting_up_exits_130_without_aborted(tmp_path, repro, cifar_root):
    """Before `repro run` takes the stop signals (here: reading its study file, a named pipe
    held empty), Ctrl-C still exits 130 with one line, not click's "Aborted!" and status 1."""
    study = tmp_path / "s.yaml"
    os.mkfifo(study)
    proc = repro(study, tmp_path / "results")
    with reader_blocked(cifar_root, proc, fifo=study):
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    output = finish(proc)
    assert proc.returncode == 130, output
    assert "stopped (SIGINT)" in output
    assert "Aborted" not in output and "Traceback" not in output
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_or_a_hang_up_while_starting_up_exits_130_with_one_line(
    tmp_path, repro, cifar_root, signum
):
    """As Ctrl-C does, and as they do once training has begun: not Python's default, a
    silent death by the signal (status -15 or -1) with nothing said."""
    study = tmp_path / "s.yaml"
    os.mkfifo(study)
    proc = repro(study, tmp_path / "results")
    with reader_blocked(cifar_root, proc, fifo=study):
        proc.send_signal(signum)
    output = finish(proc)
    assert proc.returncode == 130, output
    assert output.strip() == f"stopped ({signal.Signals(signum).name})", output
    assert not (tmp_path / "results").exists()


def test_a_stop_while_importing_waits_for_the_import_and_then_stops(tmp_path, monkeypatch):
    """Raised inside an import, the stop left the module half made (numpy without linalg,
    then torch recursing on it), or landed in importlib's clean-up callback, which swallowed
    it and let `repro run` train on. It now waits for the import to end, then stops."""
    from harness.stop_signals import StopSignal, stops_at_startup

    (tmp_path / "slow_to_import.py").write_text(
        "import signal, time\n"
        "signal.raise_signal(signal.SIGTERM)\n"
        "for _ in range(20):\n"
        "    time.sleep(0.01)  # runs Python between sleeps: where a handler would raise\n"
        "COMPLETE = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_to_import", raising=False)
    with pytest.raises(StopSignal) as stopped, stops_at_startup():
        import slow_to_import  # noqa: F401

        imported = time.monotonic()
        time.sleep(5)  # the stop comes here, after the import, and wakes the sleep
        pytest.fail("the stop never came")
    assert stopped.value.signum == signal.SIGTERM and time.monotonic() - imported < 2
    assert sys.modules["slow_to_import"].COMPLETE


def test_a_stop_swallowed_at_start_up_is_raised_before_training_or_at_the_end():
    """Code that swallows a KeyboardInterrupt (a `__del__`, a fork hook, a library's
    `except BaseException`) no longer loses the stop: the command ends when it takes the
    signals itself (and so trains nothing), or when it returns."""
    from harness.stop_signals import StopSignal, stops_at_startup, take_stop_signals

    def swallowed() -> None:
        try:
            signal.raise_signal(signal.SIGTERM)
            time.sleep(0.01)
        except BaseException:
            pass

    with pytest.raises(StopSignal), stops_at_startup():
        swallowed()
        take_stop_signals()
        pytest.fail("training would start")
    with pytest.raises(StopSignal), stops_at_startup():
        swallowed()
    with stops_at_startup():  # and a later command does not inherit it
        take_stop_signals()


def test_a_command_puts_back_the_signal_handlers_it_found():
    """`repro` commands run inside other programs too (the tests, a notebook): the start-up
    handlers are put back when a command ends without having been stopped."""
    before = {s: signal.getsignal(s) for s in stop_signals()}
    assert CliRunner().invoke(main, ["models"]).exit_code == 0
    assert {s: signal.getsignal(s) for s in stop_signals()} == before


# The console script `repro` as pip writes it for pyproject's [project.scripts]: it imports
# harness.cli (so harness/__init__.py, then click) before it calls anything.
CONSOLE_SCRIPT = (
    "import sys\nfrom harness.cli import main\nif __name__ == '__main__':\n    sys.exit(main())\n"
)
ENTRIES = ["python-m", "console-script"]
# Imported by a sitecustomize.py on PYTHONPATH, after Python's own start-up and before
# anything of harness: sends the signal from inside the import of MODULE, as a Ctrl-C right
# after Enter lands, every time (raise_signal runs the Python handler before it returns).
SIGNAL_ON_IMPORT = """
import signal, sys

class SignalOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            sys.meta_path.remove(self)
            signal.raise_signal({signum})
        return None

sys.meta_path.insert(0, SignalOnImport())
"""


def launch(tmp_path: Path, entry: str, data: Path, sitecustomize: str = "") -> subprocess.Popen:
    """Start `repro run` on a tiny study, by ``entry``, with ``sitecustomize`` run first."""
    if entry == "console-script":
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "repro").write_text(CONSOLE_SCRIPT)
        head = [sys.executable, str(tmp_path / "bin" / "repro")]
    else:
        head = [sys.executable, "-m", "harness"]
    path = [str(ROOT)]
    if sitecustomize:
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "sitecustomize.py").write_text(sitecustomize)
        path.insert(0, str(tmp_path / "site"))
    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    command = [*head, "run", str(study), "--data-dir", str(data), "--results",
               str(tmp_path / "results"), "--device", "cpu", "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip


@pytest.mark.parametrize("module", ["harness.cli", "click"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_a_stop_while_the_command_is_imported_exits_130_with_one_line(
    tmp_path, cifar_root, entry, signum, module
):
    """Ctrl-C in the first tenth of a second, while Python imports the CLI and click, printed
    a KeyboardInterrupt traceback, and SIGTERM killed the command silently (-15). Both now end
    it as they do later in its start-up: one line, 130, nothing written."""
    hook = SIGNAL_ON_IMPORT.format(module=module, signum=int(signum))
    proc = launch(tmp_path, entry, cifar_root, sitecustomize=hook)
    output = finish(proc)
    assert proc.returncode == 130, output
    assert output.strip() == f"stopped ({signum.name})", output
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("delay_ms", [0, 20, 50])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_a_stop_just_after_enter_never_prints_a_traceback(
    tmp_path, cifar_root, entry, signum, delay_ms
):
    """A signal at a real moment of start-up, as a user or Slurm sends it. Where it lands
    depends on the machine's load, so the outcomes allowed are every one that is right: the
    command's one line and 130; or death by the signal, with nothing said, before Python or
    harness took it; or a traceback wholly inside Python's own start-up (its site module,
    before harness runs a line: beyond any project's reach). Never a traceback through
    harness."""
    proc = launch(tmp_path, entry, cifar_root)
    time.sleep(delay_ms / 1000)
    proc.send_signal(signum)
    output = finish(proc)
    assert str(ROOT / "harness") not in output, output
    if "Traceback" in output:
        return  # Python's own start-up, above
    if proc.returncode == 130:  # by harness: at once, or (on a loaded machine) later
        assert "stopped" in output, output
    else:
        assert (proc.returncode, output) == (-signum, ""), output


SPAWNED = "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=6, pipe_handle=11)"


@pytest.mark.parametrize(
    ("argv", "orig_argv", "launched"),
    [
        (["/venv/bin/repro", "run"], ["/venv/bin/python", "/venv/bin/repro", "run"], True),
        (["-m", "run"], ["python", "-m", "harness", "run"], True),
        (["-m", "run"], ["python", "-mharness", "run"], True),
        (["-m", "run"], ["python", "-m", "harness.cli", "run"], False),
        (["-m", "-q"], ["python", "-m", "pytest", "-q"], False),
        (["/venv/bin/pytest"], ["python", "/venv/bin/pytest"], False),
        (["-c"], ["python", "-c", "import harness"], False),
        ([], ["python"], False),
        # a process `repro bench --fuse` spawned: it takes its parent's argv
        (
            ["/venv/bin/repro", "bench"],
            ["/venv/bin/python", "-B", "-c", SPAWNED, "--multiprocessing-fork"],
            False,
        ),
    ],
)
def test_only_the_command_takes_the_signals_at_launch(monkeypatch, argv, orig_argv, launched):
    """A program that imports harness (the tests, a notebook) keeps its own handlers."""
    import harness

    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "orig_argv", orig_argv)
    assert harness._launched_as_repro() is launched


def test_the_handlers_of_the_launch_are_put_back_when_a_command_ends(monkeypatch):
    """`repro` (harness/__init__.py) catches the stop signals from its first line; a command
    that takes them over ends with the ones the process had before, not those."""
    import harness

    originals = {s: signal.getsignal(s) for s in stop_signals()}
    monkeypatch.setattr(harness, "handlers_before_launch", {})
    try:
        for s in originals:
            harness.handlers_before_launch[s] = signal.signal(s, harness.stopped_at_launch)
        assert CliRunner().invoke(main, ["models"]).exit_code == 0
        assert {s: signal.getsignal(s) for s in originals} == originals
    finally:
        for s, handler in originals.items():
            signal.signal(s, handler)


def ctrl_c(proc: subprocess.Popen, results: Path, *, twice: bool = False) -> str:
    """Ctrl-C to the whole process group, as a terminal sends it, once at least an epoch
    is done and while DataLoader workers exist (forking them is the touchiest moment);
    ``twice``: again as soon as the command says it is stopping. Returns the output."""
    wait_for(lambda: epochs(results, "a") >= 1, "an epoch", proc)
    wait_for(lambda: children(proc.pid), "DataLoader workers", proc)
    os.killpg(proc.pid, signal.SIGINT)
    shown = ""
    if twice:
        while "stopping (" not in shown and (text := proc.stdout.readline()):
            shown += text
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
    return shown + finish(proc)


def assert_stopped_once(proc: subprocess.Popen, output: str, results: Path) -> None:
    assert proc.returncode == 130, output
    assert output.count("stopping (SIGINT)") == 1, output  # said by this process only
    assert "Traceback" not in output and "Exception ignored" not in output, output
    summary = store.read_json(run_dir(results, "a") / store.SUMMARY)
    assert summary["status"] == "interrupted", output
    assert not (run_dir(results, "a") / store.ERROR).exists()
    assert (run_dir(results, "a") / store.CHECKPOINT).exists()
    assert 1 <= epochs(results, "a") < 5


def test_ctrl_c_with_dataloader_workers_is_interrupted_not_failed(tmp_path, repro):
    """The canonical pipeline's DataLoader workers get the terminal's Ctrl-C too: they must
    not die of it (the run would fail: "DataLoader worker exited unexpectedly"), nor may the
    KeyboardInterrupt be swallowed where it lands (in a fork hook, and training goes on)."""
    study, results = two_runs(tmp_path), tmp_path / "results"
    proc = repro(study, results, "--only", "a", "--pipeline", "canonical", "--workers", "2")
    output = ctrl_c(proc, results)
    assert_stopped_once(proc, output, results)


def test_a_second_ctrl_c_while_recording_cuts_nothing_short(tmp_path, repro):
    study, results = two_runs(tmp_path), tmp_path / "results"
    proc = repro(study, results, "--only", "a", "--pipeline", "canonical", "--workers", "2")
    output = ctrl_c(proc, results, twice=True)
    assert_stopped_once(proc, output, results)
    assert output.count("still stopping") <= 1 and "abandoned" not in output, output


# A process whose recording of a stopped run hangs (its summary is never written).
HANG_RECORDING = """\
import sys, time

import harness.train

real = harness.train.finish


def finish(run_dir, base, state, status, *args, **kwargs):
    if status == "interrupted":
        print("recording hangs", flush=True)
        while True:
            time.sleep(1)
    return real(run_dir, base, state, status, *args, **kwargs)


harness.train.finish = finish
"""
REPRO = """\
from harness.cli import main

sys.argv[0] = "repro"
main()
"""
HANGING = HANG_RECORDING + REPRO  # `repro run` as such a process


def read_until(proc: subprocess.Popen, text: str, seconds: float = 30) -> str:
    """What the process has printed once ``text`` is among it; fails, not hangs, without it.
    Read from the descriptor: a buffered readline could hold ``text`` where select cannot
    see it."""
    shown, deadline = b"", time.time() + seconds
    while text.encode() not in shown:
        assert time.time() < deadline, f"no {text!r} in {seconds:g} s: {shown.decode()}"
        assert proc.poll() is None, f"ended before {text!r}: {shown.decode()}"
        if select.select([proc.stdout], [], [], 0.1)[0]:
            shown += os.read(proc.stdout.fileno(), 65536)
    return shown.decode()


def test_a_third_ctrl_c_abandons_a_recording_that_hangs_and_it_resumes(tmp_path, cifar_root):
    study, results = two_runs(tmp_path), tmp_path / "results"
    script = tmp_path / "hanging_repro.py"
    script.write_text(HANGING)
    args = ["run", str(study), "--data-dir", str(cifar_root), "--results", str(results),
            "--device", "cpu", "--quiet", "--only", "a"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: epochs(results, "a") >= 1, "an epoch", proc)
        shown = ""
        for then in ("recording hangs", "still stopping"):
            os.killpg(proc.pid, signal.SIGINT)
            shown += read_until(proc, then)
        os.killpg(proc.pid, signal.SIGINT)
        output = shown + finish(proc)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 130, output
    assert output.count("still stopping (recording the run") == 1, output
    assert (
        "abandoned (SIGINT): the run resumes from its last saved epoch (starts over if it saved none)"
        in output
    ), output
    assert "Traceback" not in output, output
    run = run_dir(results, "a")
    done = epochs(results, "a")
    assert store.inspect(run).status == "interrupted" and not (run / store.SUMMARY).exists()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert f"resuming (interrupted) at epoch {done + 1}/5" in again.output, again.output
    assert store.read_json(run / store.SUMMARY)["status"] == "complete"
    assert epochs(results, "a") == 5


def test_with_workers_a_second_ctrl_c_says_so_and_a_third_kills_them_and_they_resume(
    tmp_path, cifar_root
):
    """`repro run --runs-per-gpu 2` whose workers' recording hangs: the parent says that they
    are still stopping at the second Ctrl-C, and at the third kills them and exits 130 at
    once (not after executors.STOP_GRACE_S); their runs resume from their checkpoints."""
    study, results = two_runs(tmp_path), tmp_path / "results"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HANG_RECORDING)  # in the workers too
    args = ["run", str(study), "--data-dir", str(cifar_root), "--results", str(results),
            "--device", "cpu", "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "harness", *args, "--runs-per-gpu", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    names = ("a", "b")
    try:
        wait_for(lambda: all(epochs(results, n) >= 1 for n in names), "an epoch each", proc)
        workers = [worker_pid(results, n) for n in names]
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal: the parent and its workers

        def hanging() -> bool:
            logs = [(run_dir(results, n) / store.WORKER_LOG).read_text() for n in names]
            return all("recording hangs" in log for log in logs)

        wait_for(hanging, "the workers' recording", proc)
        os.killpg(proc.pid, signal.SIGINT)
        shown = read_until(proc, "still stopping")
        assert all(alive(pid) for pid in workers), "a second Ctrl-C cut the stopping short"
        os.killpg(proc.pid, signal.SIGINT)
        output = shown + proc.communicate(timeout=30)[0]  # not STOP_GRACE_S
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 130, output
    assert "Traceback" not in output, output
    assert output.count("stopping (SIGINT): each worker records its run") == 1, output
    (still,) = [x for x in output.splitlines() if "still stopping" in x]
    assert still == WORKERS_STILL_STOPPING.strip(), output  # one line, once
    (abandoned,) = [x for x in output.splitlines() if x.startswith("abandoned")]
    assert abandoned == (
        "abandoned (SIGINT): killed the workers still recording tiny/a/seed-0, "
        "tiny/b/seed-0; each run resumes from its last saved epoch (starts over if it saved none)"
    ), output
    assert not [pid for pid in workers if alive(pid)], "a worker outlived its parent"
    done = {}
    for name in names:
        run = run_dir(results, name)
        assert store.inspect(run).status == "interrupted" and not (run / store.SUMMARY).exists()
        done[name] = epochs(results, name)
    again = CliRunner().invoke(main, args)  # in one process, to spare the workers' start-up
    assert again.exit_code == 0, again.output
    for name in names:
        assert f"resuming (interrupted) at epoch {done[name] + 1}/5" in again.output
        assert store.read_json(run_dir(results, name) / store.SUMMARY)["status"] == "complete"
        assert epochs(results, name) == 5


FORKED = """\
import os, signal
from harness import stop_signals

stop_signals.take_stop_signals()
stop_signals.request_stop(signal.SIGINT)
stop_signals.abandon_on_a_third_stop()
child = os.fork()
if child == 0:  # as a DataLoader worker before its worker_init_fn: it must live on, silent
    for _ in range(3):
        signal.raise_signal(signal.SIGINT)
    os._exit(7)
print("helper exited", os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]), flush=True)
for _ in range(2):
    signal.raise_signal(signal.SIGTERM)
print("not abandoned", flush=True)
"""


def test_only_the_stopped_process_abandons_not_a_helper_it_forked():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", FORKED], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)  # fmt: skip
    assert done.stdout == "helper exited 7\n", (done.stdout, done.stderr)
    assert done.stderr.count("still stopping") == 1 and "abandoned (SIGTERM)" in done.stderr
    assert done.returncode == 130


def test_a_worker_that_ignores_sigterm_is_killed_and_recorded_interrupted(tmp_path, monkeypatch):
    study_file = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n")
    (p,) = plan(load_study(study_file))
    options = RunOptions(results=tmp_path / "results", device="cpu")
    monkeypatch.setattr("harness.executors.STOP_GRACE_S", 0.5)
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
         "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert stubborn.stdout.readline() == "ready\n"
    lines: list[str] = []
    (outcome,) = _stop_workers([(stubborn, [p], None)], options, lines.append)
    stubborn.stdout.close()
    assert stubborn.returncode == -signal.SIGKILL
    assert outcome.status == "interrupted" and "[ stopped]" in lines[0]
    summary = store.read_json(p.directory(options.results) / store.SUMMARY)
    assert summary["status"] == "interrupted" and "SIGKILL" in summary["stop_reason"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_after_some_epochs_resumes_at_the_right_epoch(tmp_path, repro, signum):
    """One process, no workers: stopped after two epochs, the rerun starts at the third."""
    study, results = two_runs(tmp_path), tmp_path / "results"
    proc = repro(study, results, "--only", "a")
    wait_for(lambda: epochs(results, "a") >= 2, "two epochs", proc)
    proc.send_signal(signum)
    output = finish(proc)
    assert proc.returncode == 130, output
    stopped = store.read_json(run_dir(results, "a") / store.SUMMARY)
    assert stopped["status"] == "interrupted" and stopped["epochs_done"] >= 2
    assert "stopping (SIG" in output  # said as soon as the signal arrived
    again = CliRunner().invoke(main, [*proc.args[3:]])
    assert again.exit_code == 0, again.output
    assert f"resuming (interrupted) at epoch {stopped['epochs_done'] + 1}/5" in again.output
    summary = store.read_json(run_dir(results, "a") / store.SUMMARY)
    assert summary["status"] == "complete"
    assert summary["sessions"][-1]["from_epoch"] == stopped["epochs_done"]
    assert [r["epoch"] for r in store.read_jsonl(run_dir(results, "a") / store.METRICS)] == [
        1, 2, 3, 4, 5]  # fmt: skip


@pytest.mark.parametrize(
    ("kept", "said"),
    [(0, "stopped in its first epoch, before any epoch was kept; run the same command again to "
         "start it over"),
     (2, "stopped after epoch 2/3; run the same command again to resume at epoch 3")],
    ids=["in-the-first-epoch", "after-two-epochs"],
)  # fmt: skip
def test_the_line_of_a_stopped_run_says_where_the_same_command_takes_it_up(
    tmp_path, cifar_root, monkeypatch, kept, said
):
    """Stopped in its first epoch, a run was told "run the same command again to resume from
    its last finished epoch", which it did not have (it starts over: `repro status` said so);
    stopped later, the line did not say which epoch it resumes at."""
    from conftest import QUICK_RECIPE
    from test_run import run_args

    import harness.train

    study = tiny_study(tmp_path / "s.yaml", "  - {name: a, model: resnet8, recipe: base}\n",
                       QUICK_RECIPE)  # fmt: skip
    results = tmp_path / "results"
    metrics = run_dir(results, "a") / store.METRICS
    # The stop arrives once the run has kept ``kept`` epochs, as a Ctrl-C would then.
    monkeypatch.setattr(harness.train, "stop_requested",
                        lambda: len(store.read_jsonl(metrics)) >= kept)  # fmt: skip
    out = CliRunner().invoke(main, run_args(study, cifar_root, results))
    assert out.exit_code == 130, out.output
    assert store.read_json(run_dir(results, "a") / store.SUMMARY)["epochs_done"] == kept
    assert f"[ stopped] tiny/a/seed-0: {said}" in out.output, out.output


def _on_a_terminal(command: list[str], env: dict) -> tuple[subprocess.Popen, int]:
    """Start ``command`` in a new session whose controlling terminal is a fresh pty.

    Closing the returned master end is a real hang-up: the kernel sends SIGHUP to the
    session's processes on that terminal, and writing to it fails from then on (EIO).
    """
    master, slave = pty.openpty()

    def take_the_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(command, env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, preexec_fn=take_the_terminal)  # fmt: skip
    os.close(slave)
    return proc, master


@pytest.mark.parametrize("extra", [[], ["--runs-per-gpu", "2"]], ids=["one-process", "workers"])
def test_a_hang_up_records_every_run_interrupted_and_the_same_command_resumes(
    tmp_path, cifar_root, extra
):
    """An ssh session that drops: SIGHUP, and a terminal that fails every later write."""
    study, results = two_runs(tmp_path), tmp_path / "results"
    command = [sys.executable, "-m", "harness", "run", str(study), "--data-dir", str(cifar_root),
               "--results", str(results), "--device", "cpu", *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc, master = _on_a_terminal(command, env)
    shown = b""
    try:
        deadline = time.time() + TIMEOUT
        while epochs(results, "a") < 1:  # read what it shows, or it blocks on a full terminal
            assert proc.poll() is None, f"repro ended early: {shown.decode(errors='replace')}"
            assert time.time() < deadline, "timed out waiting for training"
            if select.select([master], [], [], 0.05)[0]:
                with contextlib.suppress(OSError):
                    shown += os.read(master, 65536)
    finally:
        os.close(master)  # the hang-up
    try:
        proc.wait(timeout=TIMEOUT)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    trained = [name for name in ("a", "b") if run_dir(results, name).exists()]
    assert trained == (["a", "b"] if extra else ["a"])
    for name in trained:
        summary = store.read_json(run_dir(results, name) / store.SUMMARY)
        assert summary["status"] == "interrupted", summary.get("error")
        assert not (run_dir(results, name) / store.ERROR).exists()
    again = CliRunner().invoke(main, [*command[3:], "--quiet"])
    assert again.exit_code == 0, again.output
    for name in ("a", "b"):
        assert store.read_json(run_dir(results, name) / store.SUMMARY)["status"] == "complete"
        assert epochs(results, name) == 5


def test_a_hang_up_is_left_ignored_under_nohup(monkeypatch):
    monkeypatch.setattr(signal, "getsignal", lambda s: signal.SIG_IGN if s == signal.SIGHUP
                        else signal.SIG_DFL)  # fmt: skip
    assert signal.SIGHUP not in stop_signals()
    monkeypatch.undo()
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        assert signal.SIGHUP in stop_signals()
    finally:
        signal.signal(signal.SIGHUP, previous)

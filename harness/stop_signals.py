"""The signals that stop a training command, and what a hang-up needs besides.

SIGINT (Ctrl-C) and SIGTERM (a scheduler, `kill`) stop a run after recording it as
interrupted. So does SIGHUP: the terminal that started the command went away, as when an ssh
session drops; unless the command was started under `nohup`, which asked for hang-ups to be
ignored, and then it is left ignored. Before a command takes them (``stops_at_startup``),
each ends it as Ctrl-C does, with one line and status 130: from the first line of `repro`
on, harness/__init__.py catches them while Python imports the command. In the process of `repro run`
that the user stopped, training in it or waiting for its workers, a second Ctrl-C or
SIGTERM while the runs are recorded says so, and a third abandons the recording
(``abandon_on_a_third_stop``), killing the workers first where there are any.

A stop is noted here as well as raised (``request_stop``), and noted for good: a
KeyboardInterrupt can land where it is swallowed (a fork hook of the DataLoader's, a
``__del__``), so the training loop also asks ``stop_requested`` before every step, a look at a
Python flag. Only the process that took the handlers acts: a DataLoader worker forked from it
inherits them, and must neither print nor die of the terminal's Ctrl-C (its parent would see a
worker that "exited unexpectedly"); its ``ignore_stop_signals`` makes it deaf to them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import harness

_ALL = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # every signal that may stop a command
_owner: int | None = None  # the process whose handlers act; their forked copies do nothing
_stopped: int | None = None  # the first stop signal the owner received
_later = 0  # stop signals after the first, where a third abandons (abandon_on_a_third_stop)
_deferring = 0  # inside stops_deferred: a stop signal is noted, not raised
STOPPED_EXIT = 130  # however a command is stopped, by which signal and when: as a shell's Ctrl-C


class StopSignal(KeyboardInterrupt):
    """A stop signal at start-up, raised where Ctrl-C raises KeyboardInterrupt; it names its
    signal for the line the command ends with."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def stop_name(stop: KeyboardInterrupt) -> str:
    """The signal that raised ``stop``: SIGINT for Python's own KeyboardInterrupt."""
    return signal.Signals(getattr(stop, "signum", signal.SIGINT)).name


@contextlib.contextmanager
def stops_at_startup() -> Iterator[None]:
    """Inside, until a command takes the stop signals itself, SIGTERM and a hang-up raise
    StopSignal as Ctrl-C raises KeyboardInterrupt: while torch is imported, the study read or
    the store looked at, they end the command as Ctrl-C does (one line, STOPPED_EXIT, nothing
    recorded) instead of killing it silently, Python's default.

    A command that took a signal keeps its own handler to the end (a stopped `repro run`
    handles later signals its way while it finishes); the others are put back on the way
    out."""
    global _startup_stop
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (a test may invoke a command elsewhere)
        return
    _startup_stop = None
    previous = {s: _before_launch(s, signal.signal(s, _stop_at_startup)) for s in stop_signals()}
    try:
        yield
        # A stop that was swallowed (see _stop_at_startup) ends the command as it would have.
        _raise_a_startup_stop()
    finally:
        _startup_stop = None
        for s, handler in previous.items():
            if signal.getsignal(s) is _stop_at_startup:
                signal.signal(s, handler)


def _before_launch(signum: int, handler: object) -> object:
    """The handler to put back in place of ``handler``: for harness's own, which covers the
    moments before a command takes the signals (harness/__init__.py), the one it replaced, so
    that a command ends with the handlers the process started with, as before it existed."""
    if handler is harness.stopped_at_launch:
        return harness.handlers_before_launch.pop(signum, signal.SIG_DFL)
    return handler


_startup_stop: int | None = None  # a stop at start-up not yet seen to end the command
_RETRY_S = 0.05  # how soon a stop that landed in an import is tried again


def _stop_at_startup(signum: int, frame: FrameType | None) -> None:
    """Raise StopSignal, but never inside an import: raised there, it leaves the module half
    made (numpy without linalg, and torch recursing on it), or lands in importlib's clean-up
    callback, which swallows it with a traceback and trains on. Noted instead, and tried
    again every _RETRY_S until the import is done. A stop still noted when the command takes
    the signals itself, or when it ends, was swallowed on the way: it is raised then."""
    global _startup_stop
    leave_a_hung_up_terminal(signum)  # the line that says so must not fail on a lost terminal
    if _startup_stop is None:
        _startup_stop = signum
    if _holding:
        return  # raised as the held step ends (stops_held)
    if _inside_an_import(frame):
        timer = threading.Timer(_RETRY_S, _try_again, (signum,))
        timer.daemon = True
        timer.start()
        return
    raise StopSignal(_startup_stop)


def _inside_an_import(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _try_again(signum: int) -> None:
    """From the timer's thread: send the noted stop to the main thread again, so that its
    handler looks where it lands now (a real signal, which wakes a blocking call as the
    first did); unless the start-up is over meanwhile."""
    if _startup_stop is not None and signal.getsignal(signum) is _stop_at_startup:
        signal.pthread_kill(threading.main_thread().ident, signum)


_holding = 0  # inside stops_held: a stop at start-up waits for the step to end


@contextlib.contextmanager
def stops_held() -> Iterator[None]:
    """Inside, a stop at start-up (stops_at_startup) is noted, and raised as the block ends:
    for starting a process, which a stop must not cut in two. A process that multiprocessing
    spawns exists before its start-up data is written to it; stopped between the two, the
    command said "stopped" and that process then printed its traceback ("pickle data was
    truncated", "Ran out of input") to the terminal.

    The stop signals are also blocked in this thread meanwhile, and a process started inside
    inherits them blocked: a Ctrl-C or hang-up sent to the whole group waits in it (until it
    takes them itself, ``release_held_stops``) instead of killing it, with a traceback,
    before it has read its start-up data, which left this process writing that data to
    nobody, for good. This process still sees them (another of its threads takes them, or
    they are delivered as the block ends). A block left by an exception raises nothing here:
    the noted stop ends the command at the end of stops_at_startup, after the exception's
    clean-up."""
    global _holding
    _holding += 1
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _ALL)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # one waiting is noted here
        _holding -= 1
    if not _holding:
        _raise_a_startup_stop()


def release_held_stops(on_sigterm: Callable[[int, FrameType | None], object]) -> None:
    """In a helper process started inside ``stops_held``, once it can be stopped cleanly: its
    parent stops it with SIGTERM (``on_sigterm``), which a stop that waited since its start
    then reaches; the terminal's Ctrl-C and hang-up, sent to the whole group, are its
    parent's to act on, and are ignored here."""
    signal.signal(signal.SIGTERM, on_sigterm)
    for s in (signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _ALL)


def _raise_a_startup_stop() -> None:
    if _startup_stop is not None:
        raise StopSignal(_startup_stop)


@contextlib.contextmanager
def stops_taken(stopping: str, *, raises: bool, still_stopping: str | None = None,
                abandon: Callable[[str], str] | None = None) -> Iterator[None]:  # fmt: skip
    """Inside, this process handles the stop signals as `repro run` does, whether it trains
    (runner.run_study) or waits for its workers (executors.run_parallel).

    The first is noted (``stop_requested``), said at once (``stopping``, given the signal's
    name) and, where the code inside ``raises``, raised as KeyboardInterrupt unless deferred;
    code that does not looks at ``stop_requested`` between its steps. Later signals go to
    abandon_on_a_third_stop with ``still_stopping`` and ``abandon``: the second says so,
    the third abandons. Once stopped, the command only reports and exits 130, and these
    handlers stay to its end; a command that was not stopped gets the old ones back.
    """
    take_stop_signals()

    def first_stop(signum: int, frame: object) -> None:
        if not request_stop(signum):
            return  # a later one (until abandon_on_a_third_stop), or a forked worker's copy
        abandon_on_a_third_stop(still_stopping, abandon)  # a third signal ends it at once
        leave_a_hung_up_terminal(signum)
        # Said at once: the runs are recorded before the process ends, which can take a moment.
        print(stopping.format(signal.Signals(signum).name), file=sys.stderr, flush=True)
        if raises:
            raise_unless_deferred(signum)

    previous = {s: signal.signal(s, first_stop) for s in stop_signals()}
    try:
        yield
    finally:
        if not stop_requested():
            for s, handler in previous.items():
                signal.signal(s, handler)


def take_stop_signals() -> None:
    """This process handles the stop signals from now on; no stop is requested yet. A stop
    at start-up that was swallowed on its way (_stop_at_startup) is raised here, before
    anything is trained."""
    global _owner, _stopped, _later
    _raise_a_startup_stop()
    _owner, _stopped, _later = os.getpid(), None, 0


def request_stop(signum: int) -> bool:
    """Note a stop signal; True for the first in the process that took them.

    False in an inherited handler of a forked child (a DataLoader worker), and for a signal
    after the first: a second Ctrl-C must not cut short the recording of the run. From the
    first on, the stop signals are ignored by the OS, not by a Python handler: the
    interpreter puts those back to the default (death by the signal) while it exits.
    Where the user stops the command directly, abandon_on_a_third_stop replaces that.
    """
    global _stopped
    if os.getpid() != _owner or _stopped is not None:
        return False
    _stopped = signum
    for s in _ALL:
        signal.signal(s, signal.SIG_IGN)
    return True


def abandon_on_a_third_stop(still_stopping: str | None = None,
                            abandon: Callable[[str], str] | None = None) -> None:  # fmt: skip
    """After the first stop (request_stop), in the process the user stopped: a second SIGINT
    or SIGTERM says that the run is still being recorded (``still_stopping``, by default
    STILL_STOPPING) and is otherwise ignored, so that it cannot cut the recording short; a
    third ends the process at once (STOPPED_EXIT), for a recording that hangs. Hang-ups stay
    ignored: a terminal that went away asks nothing.

    ``abandon``, given the third signal's name, does what abandoning takes besides ending
    this process, and returns the line that says what was abandoned (by default ABANDONED):
    `repro run` with workers kills them there (executors._abandon_workers), as they ignore
    every signal after their first.

    Abandoning cannot break the store: every file is written to a temporary name and renamed
    (store._atomic_write), so each is whole, old or new; the run's lock goes with the process;
    and a run without a summary (each session removes the last one's first) is interrupted
    and resumes from its checkpoint, whose history may be an epoch ahead of metrics.jsonl
    (train.keep_metrics_the_history_lacks reconciles the two).
    A worker of `repro run` keeps ignoring later signals: Ctrl-C reaches it from the terminal
    and again from its parent, and its parent bounds its wait (executors.STOP_GRACE_S) or
    kills it at the user's third Ctrl-C.
    A main thread stuck inside one call that never returns to Python runs no handler at all;
    SIGKILL remains for that.
    """
    global _still_stopping, _abandon
    _still_stopping = still_stopping or STILL_STOPPING
    _abandon = abandon or ABANDONED.format
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _later_stop)


STILL_STOPPING = ("\nstill stopping (recording the run at its last finished epoch); Ctrl-C again "
                  "to abandon now: the run resumes from its last saved epoch (starts over if "
                  "none)\n")  # fmt: skip
ABANDONED = (
    "\nabandoned ({}): the run resumes from its last saved epoch (starts over if it saved none)\n"
)
_still_stopping = STILL_STOPPING  # what a second stop says (abandon_on_a_third_stop)
_abandon: Callable[[str], str] = ABANDONED.format  # what a third does and says


def _later_stop(signum: int, frame: object) -> None:
    global _later
    if os.getpid() != _owner:
        return  # a DataLoader worker forked before its worker_init_fn made it deaf to these
    _later += 1
    if _later == 1:
        _say(_still_stopping)
        return
    name = signal.Signals(signum).name
    text = ABANDONED.format(name)
    try:
        text = _abandon(name)
    finally:  # whatever abandoning met on its way, the process ends now
        _say(text)
        os._exit(STOPPED_EXIT)


def _say(text: str) -> None:
    """Straight to the descriptor: print() in a handler that interrupted a print() of the
    main code would fail on the stream's buffer (a reentrant call), and a terminal that went
    away must not raise here."""
    with contextlib.suppress(OSError):
        os.write(2, text.encode())


@contextlib.contextmanager
def stops_deferred() -> Iterator[None]:
    """Inside, a stop signal is noted but raises nothing: for code that a KeyboardInterrupt
    would leave broken or noisy, such as a DataLoader forking its workers (the exception
    lands in a fork hook, which swallows it with a traceback) or taking their batches. The
    training loop, which asks ``stop_requested`` before every step, stops at the next one."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1


def raise_unless_deferred(signum: int) -> None:
    """The end of a stop signal's handler: raise KeyboardInterrupt, unless inside
    ``stops_deferred``, where the noted stop is acted on at the next step."""
    if not _deferring:
        raise KeyboardInterrupt(f"signal {signum}")


def stop_requested() -> bool:
    """Whether a stop signal has arrived (a look at a flag: no system call, no device work)."""
    return _stopped is not None


def ignore_stop_signals(*_: object) -> None:
    """For a helper process (a DataLoader worker's ``worker_init_fn``): its parent acts on the
    stop signals and ends it; the terminal's Ctrl-C, sent to the whole group, must not."""
    for s in _ALL:
        signal.signal(s, signal.SIG_IGN)


def stop_signals() -> tuple[signal.Signals, ...]:
    """The signals to catch now: SIGHUP only where nobody chose to ignore it."""
    hangup = () if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN else (signal.SIGHUP,)
    return (signal.SIGINT, signal.SIGTERM, *hangup)


def leave_a_hung_up_terminal(signum: int) -> None:
    """After SIGHUP, send what would go to the vanished terminal to /dev/null instead.

    Writing to a hung-up terminal fails (EIO), and a message or progress bar failing there
    would turn the careful recording of the stopped run into a crash. Files and pipes stay.
    A hung-up terminal no longer answers `isatty` (that asks the terminal), so any character
    device is taken for it: /dev/null is one too, and swapping it for itself is harmless.
    """
    if signum != signal.SIGHUP:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            try:
                if stat.S_ISCHR(os.fstat(fd).st_mode):
                    os.dup2(devnull, fd)
            except OSError:
                pass  # a descriptor that is closed already needs nothing
    finally:
        os.close(devnull)

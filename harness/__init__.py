"""repro: a reproducibility harness for the CIFAR-10 residual-network literature."""

# First, before any other import: while `repro` starts (Python imports this package, click,
# the CLI), Ctrl-C raised KeyboardInterrupt inside some import, a traceback, and a
# scheduler's SIGTERM killed it silently. Users press Ctrl-C right after Enter, and Slurm
# sends SIGTERM when it likes. Until the command takes the signals
# (stop_signals.stops_at_startup, which puts back the handlers saved here), they end it
# here with the command's one line and status 130, as stops_at_startup does. Nothing has
# been written yet, so exiting at once loses nothing. Only `repro` and `python -m harness`:
# a program that merely imports harness keeps its own handlers.
import os as _os
import signal as _signal
import sys as _sys


def _launched_as_repro() -> bool:
    """The console script `repro`, or `python -m harness` (sys.argv[0] is "-m" while the
    package is imported; which module, only the original command line says)."""
    argv = getattr(_sys, "argv", None) or [""]  # an embedded Python may have none
    orig = getattr(_sys, "orig_argv", [])
    if "--multiprocessing-fork" in orig:
        # A process `repro bench` spawned, which takes its parent's argv: its parent stops it
        # (harness.bench._stop_processes), and the launch's handlers would end it with no
        # clean-up, saying "stopped" once for each.
        return False
    if _os.path.basename(argv[0]) == "repro":
        return True
    if argv[0] != "-m":
        return False
    # never fail the import over this: a short or odd command line is simply not ours
    return len(orig) >= len(argv) and orig[-len(argv)] in ("harness", "-mharness")


def stopped_at_launch(signum: int, frame: object) -> None:
    """Exit at once: a KeyboardInterrupt raised here would land inside an import (a traceback,
    or swallowed by importlib), and only the command's own handlers know how to stop."""
    try:  # noqa: SIM105 (contextlib is one import more) a hung-up terminal takes no line
        _os.write(2, f"\nstopped ({_signal.Signals(signum).name})\n".encode())
    except OSError:
        pass
    _os._exit(130)  # stop_signals.STOPPED_EXIT, not imported here to keep this instant


# The handlers stopped_at_launch replaced, for stops_at_startup to put back at the end.
handlers_before_launch: dict[int, object] = {}
if _launched_as_repro():
    for _s in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP):
        if _signal.getsignal(_s) != _signal.SIG_IGN:  # under nohup a hang-up stays ignored
            handlers_before_launch[_s] = _signal.signal(_s, stopped_at_launch)

"""The signals that stop a training command, and what a hang-up needs besides.

SIGINT (Ctrl-C) and SIGTERM (a scheduler, `kill`) stop a run after recording it as
interrupted. So does SIGHUP: the terminal that started the command went away, as when an ssh
session drops; unless the command was started under `nohup`, which asked for hang-ups to be
ignored, and then it is left ignored.
"""

from __future__ import annotations

import os
import signal
import stat


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

"""Time budgets: train until the next epoch would not fit, then pause cleanly.

A GPU usually comes in slots (a Slurm time limit, a booked hour, a preemptible instance).
``repro run --time-budget 8m`` (or ``--deadline 14:30``) turns the end of the slot into a
:class:`Deadline`. Before each epoch the trainer asks whether the epoch fits, from the run's
own measured epochs and a margin; if not, it checkpoints and records the run as *paused*
(resumable, not failed). A first epoch has nothing to be estimated from (and usually
compiles), so inside an epoch the deadline itself is a hard stop: the partial epoch is
dropped and the run resumes from its last finished epoch, exactly as after a kill.
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
import time
from dataclasses import dataclass

# An epoch is assumed to take this much longer than the median of the measured ones, plus a
# fixed allowance for the checkpoint and metrics written after it.
MARGIN = 1.15
SLACK_S = 2.0

_UNITS = {"s": 1, "m": 60, "h": 3600}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smh])")


class BudgetError(ValueError):
    """A --time-budget or --deadline that cannot be read."""


class BudgetReached(Exception):
    """Raised inside a run when the next epoch (or the current one) does not fit the budget."""


@dataclass(frozen=True)
class Deadline:
    """An absolute end (seconds since the epoch, as ``time.time()``)."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.time() + seconds)

    def remaining(self) -> float:
        return self.at - time.time()

    def passed(self) -> bool:
        return self.remaining() <= 0

    def fits(self, epoch_seconds: float | None) -> bool:
        """Whether an epoch estimated at ``epoch_seconds`` ends before the deadline.

        Without an estimate (a run's first epoch) anything left is enough to try: the hard
        stop inside the epoch keeps the deadline.
        """
        if epoch_seconds is None:
            return not self.passed()
        return epoch_seconds * MARGIN + SLACK_S <= self.remaining()

    def describe(self) -> str:
        return dt.datetime.fromtimestamp(self.at).astimezone().isoformat(timespec="seconds")


def parse_duration(text: str) -> float:
    """Seconds in '8m', '90s', '1h30m', '2.5m' or a bare number of seconds."""
    s = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", s):
        seconds = float(s)
    else:
        parts = _DURATION.findall(s)
        if not parts or _DURATION.sub("", s).strip():
            raise BudgetError(
                f"time budget {text!r}: write a duration such as 90s, 8m, 1h30m "
                "or a number of seconds"
            )
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise BudgetError(f"time budget {text!r}: must be more than zero")
    return seconds


def parse_deadline(text: str, now: dt.datetime | None = None) -> float:
    """A clock time ('14:30', '14:30:15': the next such time) or an ISO date and time."""
    now = now or dt.datetime.now().astimezone()
    s = text.strip()
    clock = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", s)
    if clock:
        h, m, sec = int(clock[1]), int(clock[2]), int(clock[3] or 0)
        if h > 23 or m > 59 or sec > 59:
            raise BudgetError(f"deadline {text!r}: not a time of day; write hours 00-23, "
                              "minutes and seconds 00-59 (23:30, or 00:30 for half past "
                              "midnight)")  # fmt: skip
        at = now.replace(hour=h, minute=m, second=sec, microsecond=0)
        if at <= now:
            at += dt.timedelta(days=1)
        return at.timestamp()
    try:
        at = dt.datetime.fromisoformat(s)
    except ValueError:
        raise BudgetError(
            f"deadline {text!r}: write a time of day (14:30) or an ISO date and time "
            "(2026-11-26T14:30, optionally with a UTC offset)"
        ) from None
    if at.tzinfo is None:
        at = at.astimezone()  # local time, as a person would mean it
    if at <= now:
        raise BudgetError(f"deadline {text!r} has already passed (now {now:%Y-%m-%d %H:%M})")
    return at.timestamp()


def epoch_estimate(session_seconds: list[float], history: list[dict], device: str) -> float | None:
    """How long the next epoch will take, from this run's own epochs.

    This session's epochs (wall time, checkpoint included) are the best guide; the first of
    a session compiles and autotunes, so it only counts while it is the only one. Before any
    epoch of this session has finished, earlier sessions' full epochs (training plus
    evaluation) on the same device stand in. Epochs timed on another device say nothing (a
    CPU epoch would keep a GPU from ever starting), so then there is no estimate.
    """
    if len(session_seconds) > 1:
        return statistics.median(session_seconds[1:])
    if session_seconds:
        return session_seconds[0]
    earlier = [
        h["train_seconds"] + h["eval_seconds"]
        for h in history
        if h.get("full_epoch") and not h.get("first_of_session") and h.get("device") == device
    ]
    return statistics.median(earlier[-5:]) if earlier else None

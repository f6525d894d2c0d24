"""Whose seconds per epoch compare: a source times one run that had its GPU alone.

A fused run's seconds are its whole group's, a run beside others on one GPU is slowed by them,
and a run trained across devices mixes their speeds: none of these is a solo run's time, so a
speed claim and an ordering on seconds leave them out. Seconds on one GPU say nothing about
another, so the runs that remain compare only with runs on the same device.

The GPU time a run stands for is likewise its share of its device, not its own clock
(``device_time``): the report's and `repro run`'s totals add shares. Its energy is shared out
by the same rule (``share_divisor``), where it is recorded and where it is added up.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import astuple, dataclass


def _most(env: dict, summary: dict | None, key: str) -> int:
    """The largest ``key`` of the run's environment (its last session) and of every session
    its summary records: a run resumed alone after a fused or crowded session is still not a
    solo run."""
    sessions = (summary or {}).get("sessions") or []
    return max([env.get(key) or 1, *((s.get(key) or 1) for s in sessions)])


def sharing(env: dict, summary: dict | None) -> int:
    """How many runs computed on the run's device at once, at most (1: it had it alone).
    A fused run shared it with its group: its seconds are the group's, never a solo run's."""
    telemetry = (summary or {}).get("telemetry") or {}
    return max(_most(env, summary, "device_shared_by"), telemetry.get("gpu_processes_max") or 1,
               _most(env, summary, "fused"))  # fmt: skip


def devices(record) -> list[str]:
    """The devices a run's epochs ran on, in order (each epoch names its own; a run from before
    they did: its environment's)."""
    named = list(dict.fromkeys(h["device"] for h in record.history if h.get("device")))
    return named or [(record.environment or {}).get("device_name") or "?"]


def epochs_by_device(history: list[dict]) -> dict[str, list[dict]]:
    """A run's epochs by the device each names ("?" for epochs from before they named theirs),
    in the order it first ran on them."""
    by_device: dict[str, list[dict]] = defaultdict(list)
    for h in history:
        by_device[h.get("device") or "?"].append(h)
    return by_device


@dataclass(frozen=True)
class DeviceSeconds:
    """A run's epochs on one device and their median seconds of training (None where none of
    them was a full epoch: a partial epoch's seconds are no epoch's)."""

    device: str
    epochs: int
    sec_per_epoch: float | None


def seconds_by_device(history: list[dict]) -> list[DeviceSeconds]:
    """Each device's seconds per epoch, in the order the run trained on them: the median of its
    full epochs, leaving out the first of each session (it compiles and autotunes) unless
    there are only those. A median over two devices' epochs is neither's speed, so a run
    resumed on another GPU gets one figure per device."""
    return [DeviceSeconds(device, len(epochs), _median_seconds(epochs))
            for device, epochs in epochs_by_device(history).items()]  # fmt: skip


def _median_seconds(epochs: list[dict]) -> float | None:
    """The median training seconds of the full epochs, leaving out each session's first (it
    compiles and autotunes) unless there are only those; None without a full epoch."""
    full = [h for h in epochs if h.get("full_epoch")]
    timed = [h["train_seconds"] for h in full if not h.get("first_of_session")]
    timed = timed or [h["train_seconds"] for h in full]
    return statistics.median(timed) if timed else None


def reported_speed(per_device: list[DeviceSeconds]) -> DeviceSeconds | None:
    """The seconds per epoch a run's summary reports, of its ``seconds_by_device``: its latest
    device's that timed a full epoch, so that a run resumed on another GPU never shows a
    median over both as if one device had run at it."""
    timed = [d for d in per_device if d.sec_per_epoch is not None]
    return timed[-1] if timed else None


def sec_per_epoch_before_devices(history: list[dict]) -> float | None:
    """The seconds per epoch a summary reported before summaries named their device
    (``sec_per_epoch_device``, 2026-11-27): the median over every device's full epochs,
    leaving out each session's first unless there are only those. Such a summary is read as
    it was written; only a run moved between devices differs from ``reported_speed``."""
    return _median_seconds(history)


def not_solo(record) -> str:
    """Why a run's seconds per epoch are not one solo run's on one device ("" when they are)."""
    if record.environment_damage:
        # The file says how the latest session shared its device (and, for older runs, on
        # which device it ran); one that no longer reads as the harness wrote it was edited
        # or broken since, and its absence must not pass for "alone".
        return (f"its environment.json cannot be trusted ({record.environment_damage}), so "
                "how it shared its device is unknown")  # fmt: skip
    env = record.environment or {}
    if (fused := _most(env, record.summary, "fused")) > 1:
        return f"fused into a group of {fused}, whose seconds it records"
    if (shared := sharing(env, record.summary)) > 1:
        return f"shared its device with up to {shared} runs"
    if len(ran_on := devices(record)) > 1:
        return f"trained on {len(ran_on)} devices ({', '.join(ran_on)})"
    return ""


def share_divisor(telemetry: dict, placed: int) -> float | None:
    """What an epoch's whole-GPU reading (its wall seconds, the GPU's energy) is divided by to
    give the run's share, or None where the share is unknown.

    NVML reads the whole GPU, so the share is the reading over the processes NVML saw
    computing on the device in the epoch (their mean over it), times the run's fused group's
    size (a group is one process). Where NVML listed none (a driver or container that lists
    no processes) the count is unknown: a run placed alone had the device to itself (its group
    did, fused); a run placed beside others had an unknown share, never guessed from how many
    were placed, since runs placed together end at different times.
    """
    fused = _positive(telemetry.get("fused_members")) or 1
    if processes := _positive(telemetry.get("gpu_processes_mean")):
        return max(1.0, processes) * fused
    return fused if placed <= 1 else None


@dataclass(frozen=True)
class DeviceTime:
    """The GPU time and energy a run's epochs stand for, counted as the run's share of its
    device (``share_divisor``).

    Each epoch records its own wall-clock seconds on the GPU; six runs sharing one GPU for
    12 minutes record 12 minutes each, 1.2 GPU-hours where the GPU was busy for 0.2, and each
    reads the whole GPU's energy. Where an epoch's share is unknown its seconds and the whole
    GPU's energy in it are kept apart (``unknown``, ``energy_unknown_j``): that energy is an
    upper bound of the run's, never counted as its own.
    """

    share: float = 0.0  # seconds of GPU time that were this run's
    unknown: float = 0.0  # wall seconds of epochs shared with an unrecorded number of runs
    clock: float = 0.0  # the epochs' own seconds added up, shared or not
    energy_j: float = 0.0  # joules of the GPU's energy that were this run's
    energy_unknown_j: float = 0.0  # the whole GPU's joules in the epochs of unknown share

    def __add__(self, other: DeviceTime) -> DeviceTime:
        return DeviceTime(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def device_time(history: list[dict], env: dict | None, summary: dict | None) -> DeviceTime:
    """A run's GPU time and energy from its epochs' telemetry (an epoch without NVML readings
    adds none): its metrics, so a running run counts as far as it got, as an ended one does.

    Each epoch is shared out by the placement it records, its session's. Epochs recorded before
    they did take the run's largest placement: the environment's (the latest session's) and
    the summary's sessions', which a running run lacks (a session clears the summary as it
    begins), so there they are read by the latest session's alone."""
    most = max(_most(env or {}, summary, "device_shared_by"), 1)
    share = unknown = clock = energy = energy_unknown = 0.0
    for epoch in history:
        t = epoch.get("telemetry") or {}
        if (seconds := _positive(t.get("seconds"))) is None:
            continue
        clock += seconds
        whole = _gpu_energy(t)
        placed = _positive(t.get("device_shared_by")) or most
        if divisor := share_divisor(t, placed):
            share += seconds / divisor
            energy += (whole or 0.0) / divisor
        else:
            unknown += seconds
            # A fused member's share is its group's over the group's size, whatever the
            # group's share was: the whole GPU's over that size still bounds it.
            energy_unknown += (whole or 0.0) / (_positive(t.get("fused_members")) or 1)
    return DeviceTime(share, unknown, clock, energy, energy_unknown)


def _gpu_energy(telemetry: dict) -> float | None:
    """The whole GPU's joules in an epoch. Runs recorded before telemetry counted processes
    (no ``gpu_energy_j``) kept only ``energy_j``, which was then the whole GPU's."""
    if "gpu_energy_j" in telemetry:
        return _positive(telemetry["gpu_energy_j"])
    return _positive(telemetry.get("energy_j"))


def _positive(value) -> float | None:
    """A recorded count or duration, None where absent or not one: metrics.jsonl's telemetry is
    checked only for being a record, and an edited field must not break the report."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if number and math.isfinite(value) and value > 0 else None

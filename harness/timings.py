"""Whose seconds per epoch compare: a source times one run that had its GPU alone.

A fused run's seconds are its whole group's, a run beside others on one GPU is slowed by them,
and a run trained across devices mixes their speeds: none of these is a solo run's time, so a
speed claim and an ordering on seconds leave them out. Seconds on one GPU say nothing about
another, so the runs that remain compare only with runs on the same device.
"""

from __future__ import annotations


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

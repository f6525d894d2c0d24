"""Provenance: what software, hardware and code produced a run."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> dict:
    """The harness's own commit, and whether its tracked files differ from it.

    Whoever copies the working tree elsewhere (a GPU box, a cluster's scratch space) can state
    the commit in REPRO_HARNESS_COMMIT; that statement wins, because a copy's .git may be
    missing or stale (on the 2026-11-26 GPU slot it still named the session's first commit).

    Git is asked only where it tracks this very file: an installed copy (a wheel in a
    virtual environment inside some checkout, site-packages below a repository) would
    otherwise be given the commit of a repository its code did not come from.
    """
    stated = os.environ.get("REPRO_HARNESS_COMMIT")

    def ask(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(PACKAGE_ROOT), *args],
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    this_file = Path(__file__).resolve().relative_to(PACKAGE_ROOT).as_posix()
    checkout = ask("ls-files", "--error-unmatch", "--", this_file) is not None

    def git(*args: str) -> str | None:
        return ask(*args) if checkout else None

    if stated:
        return {"commit": stated, "dirty": None, "from": "REPRO_HARNESS_COMMIT",
                "git_says": git("rev-parse", "HEAD")}  # fmt: skip
    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(dirty)}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def cudnn_text(version: int | None) -> str:
    """cuDNN's version as people write it: the record keeps torch's integer (91900), which
    packs major * 10000 + minor * 100 + patch from cuDNN 9 on (9.19.0) and major * 1000 +
    minor * 100 + patch before it (8902 is 8.9.2). None (no cuDNN, a CPU run): "\u2013"."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        return "\u2013" if version is None else str(version)
    major, rest = divmod(version, 10000 if version >= 10000 else 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


def environment(device: torch.device, *, driver: str | None, execution: dict) -> dict:
    """Everything a reader needs to trace a number to the machine and code behind it."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "time": now_utc(),
        "hostname": socket.gethostname(),
        "command": shlex.join(sys.argv),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "repro": _version("repro"),
        "harness": git_commit(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "device": device.type,
        "device_name": device_name(device),
        "driver": driver,
        **execution,
    }

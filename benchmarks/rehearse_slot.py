#!/usr/bin/env python3
"""Rehearse a GPU slot on this machine's CPU before asking for the GPU (README, "Short GPU slots").

What the device tool would carry (the committed tree, as `git archive HEAD`, with the ignored
.whl/, .data/ and .compile-carry/ where they exist) is copied to a scratch folder and checked
against the tool's 64 MiB; benchmarks/gpu_box.sh runs there with --rehearse and the slot's own
options (REPRO_HARNESS_COMMIT set to HEAD, as the slot's command sets it); what it returned is
checked against the 8 files of at most 16 MiB that come back. Each step is timed.

    benchmarks/rehearse_slot.py [gpu_box.py options, as the slot will give them]

Run it with a Python that has torch and repro's dependencies (.venv/bin/python); gpu_box.sh
runs under the same one. Exit status: gpu_box.sh's, else 6 where a limit is broken.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20
CARRY_LIMIT = 64 * MIB  # the device tool carries the tree and the named folders, 64 MiB in all
RETURNED_FILES = 8  # it brings back at most 8 files from $OUT ...
RETURNED_FILE_LIMIT = 16 * MIB  # ... each of at most 16 MiB
CARRIED = (".whl", ".data", ".compile-carry")
LIMIT_BROKEN = 6  # gpu_box.sh uses 3 and 4, gpu_box.py 5
# The rehearsal's training, on the CPU: long enough to start the queue's runs and export them,
# where the slot's whole budget (465 s at commit 71c2654, 2026-11-27) trained the 56-layer
# shortcut nets without finishing an epoch.
REHEARSED_TRAINING_S = 60
# What each carried folder's absence means for the slot (gpu_box.sh).
MISSING = {
    ".whl": "the GPU image lacks pydantic, so the slot would stop at once (exit 3): "
    "run benchmarks/fetch_wheels.sh .whl",
    ".data": "the slot has no CIFAR-10 unless REPRO_DATA_DIR names one (else exit 4): copy "
    "the archive and its converter into .data/ (README)",
    ".compile-carry": "the slot compiles from scratch (a fresh clone has none: normal)",
}


@dataclass
class Returned:
    name: str
    size: int
    plain: bool  # a regular file, not a link or a folder: only those come back


def tree_size(folder: Path) -> int:
    """Bytes of every file under ``folder`` (links counted as links, as they travel)."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def returned_files(out: Path) -> list[Returned]:
    """What a slot left in OUT that the device tool would try to bring back (the box's hidden
    temporary files excepted, none of which should be left at the end)."""
    if not out.is_dir():
        return []
    return [
        Returned(p.name, p.lstat().st_size, p.is_file() and not p.is_symlink())
        for p in sorted(out.iterdir())
        if not p.name.startswith(".")
    ]


def limit_problems(files: list[Returned]) -> list[str]:
    problems = [
        f"{f.name} is not a plain file: it would not come back" for f in files if not f.plain
    ]
    problems += [
        f"{f.name} is {f.size / MIB:.1f} MiB, over the 16 MiB that come back"
        for f in files
        if f.plain and f.size > RETURNED_FILE_LIMIT
    ]
    if len(files) > RETURNED_FILES:
        problems.append(f"{len(files)} files returned, over the {RETURNED_FILES} that come back")
    return problems


def say(text: str) -> None:
    print(f"rehearse: {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        allow_abbrev=False,  # every other option is gpu_box.py's
        epilog="Every other option is handed to benchmarks/gpu_box.sh after --rehearse.",
    )
    ap.add_argument("--scratch", default="/tmp/repro-rehearsal",
                    help="scratch folder, emptied first and removed at the end")  # fmt: skip
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--train-seconds", type=float, default=REHEARSED_TRAINING_S,
                    help="the training stage's time on the CPU (gpu_box.py --train-budget, "
                    "given after the slot's own options, so it wins over theirs)")  # fmt: skip
    ap.add_argument("--carry-limit-mib", type=float, default=CARRY_LIMIT / MIB,
                    help=argparse.SUPPRESS)  # the tests lower it  # fmt: skip
    args, slot_options = ap.parse_known_args(argv)
    if not (ROOT / ".git").exists():
        say(f"{ROOT} is not a git checkout: the rehearsal copies `git archive HEAD`, what the "
            "slot's REPRO_HARNESS_COMMIT names")  # fmt: skip
        return 2
    scratch = Path(args.scratch)
    tree = scratch / "tree"
    shutil.rmtree(scratch, ignore_errors=True)
    tree.mkdir(parents=True)
    try:
        return _rehearse(args, slot_options, scratch, tree)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


def _rehearse(args: argparse.Namespace, slot_options: list[str], scratch: Path, tree: Path) -> int:
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    commit = head.stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True)
    if dirty.stdout.strip():
        # The device tool carries the working tree, but the slot states HEAD's commit.
        say("warning: uncommitted changes; this rehearses HEAD, and a slot run now would carry "
            "them under HEAD's commit: commit first")  # fmt: skip

    t = time.time()
    archive = scratch / "head.tar"
    subprocess.run([*git, "archive", "--output", str(archive), "HEAD"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="tar")
    archive.unlink()
    say(f"git archive HEAD ({commit[:7]}) unpacked in {time.time() - t:.1f} s")
    t = time.time()
    for name in CARRIED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tree / name, symlinks=True)
        else:
            say(f"no {name}/: {MISSING[name]}")
    say(f"carried folders copied in {time.time() - t:.1f} s")
    sizes = {name: tree_size(tree / name) for name in (*CARRIED, "results")}
    size = tree_size(tree)
    parts = ", ".join(f"{name} {b / MIB:.1f}" for name, b in sizes.items() if b)
    limit = args.carry_limit_mib * MIB
    say(f"the carried tree is {size / MIB:.1f} MiB of {limit / MIB:.0f} ({parts})")
    if size > limit:
        say(f"over the {limit / MIB:.0f} MiB the device tool carries: leave .compile-carry/ out "
            "(the slot then compiles from scratch) or make it smaller")  # fmt: skip
        return LIMIT_BROKEN

    t = time.time()
    env = {**os.environ, "REPRO_HARNESS_COMMIT": commit, "PYTHON": sys.executable}
    command = ["benchmarks/gpu_box.sh", str(scratch / "out"), "--rehearse", *slot_options,
               "--work", str(scratch / "work"),
               "--train-budget", f"{args.train_seconds:g}"]  # fmt: skip
    say(" ".join(command))
    rc = subprocess.run(command, cwd=tree, env=env).returncode
    say(f"gpu_box.sh exit {rc} after {time.time() - t:.0f} s")

    files = returned_files(scratch / "out")
    for f in files:
        say(f"returned {f.name:<36} {f.size / MIB:7.2f} MiB")
    problems = limit_problems(files)
    for problem in problems:
        say(problem)
    if rc:
        return rc
    if problems:
        return LIMIT_BROKEN
    say(f"{len(files)} files, within the limits")
    return 0


if __name__ == "__main__":
    sys.exit(main())

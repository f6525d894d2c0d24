#!/usr/bin/env python3
"""The stages of one GPU slot, each with its own timeout, results in OUT after every stage.

Started by benchmarks/gpu_box.sh once Python and the data are ready. Within ``--budget``
seconds of the slot's start (the shell script's ``--started``):

  a. check   nvidia-smi and tests/test_gpu.py: the GPU is visible, compiled steps match
             eager ones, no host syncs in the step, NVML reads (skipped without CUDA);
             --check-tests EXPR runs only the tests a pytest -k expression selects
  b. bench   `repro bench` of resnet20, canonical against fast (with --fuse-widths, also K
             runs fused into one network), and each model's profile as soon as its fast row
             is measured; it also warms the compile cache for the runs that follow
  c. train   `repro queue --time-budget` on the evidence queue (queue.yaml), K runs to a GPU
             (fused with --fuse, for the items that do not say `fuse:` themselves); the store
             is exported to OUT every --export-every seconds while it trains
  d. export  the final export, checkpoints of unfinished runs included; then the compile
             cache, while the budget lasts

Every stage ends before the budget's last --reserve seconds, kept for (d): SIGTERM at its
timeout, SIGKILL to its process group --stop-grace seconds later; the training stage's time
budget ends WIND_DOWN_S before its timeout, for the queue to wind down.

``--order`` runs a, b and c in another order (check,train,bench puts finishing runs before
the bench); ``--skip`` leaves stages out.

OUT receives at most eight plain files: box.log (everything printed, gpu_box.sh's set-up and
what this script writes to stderr included), box.json (what each stage did and for how long),
bench.tar.gz, store-<study>[-<part>].tar.gz archives (`repro import` merges them), and the
compile cache in parts (compile-cache.tar.gz.part-<k>) where room is left, none over 15 MiB.
Given back to the next slot with --import (the parts are joined), the cache spares it the
compilations this slot paid for.

``--rehearse`` runs the same stages at CPU size; the test suite uses it (tests/test_gpu_box.py).
Without it, a machine where torch sees no CUDA device runs the check stage only and exits 5:
training there would spend the slot on the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import store  # noqa: E402 (after the path set-up above)
from harness.choices import FuseChoiceError, parse_fuse  # noqa: E402
from harness.queue import QueueError, load_queue, render, standing  # noqa: E402
from harness.results import scan  # noqa: E402
from harness.transfer import (  # noqa: E402
    RUN_FILES,
    TransferError,
    export_runs,
    import_archive,
)

PART_LIMIT = 15 * 2**20  # the slot returns files of at most 16 MiB
COMPILE_CACHE_ARCHIVE = "compile-cache.tar.gz"
RETURNED_FILES = 8  # what a slot can return through OUT
NO_CUDA = 5  # exit status of a slot whose torch sees no GPU (gpu_box.sh uses 3 and 4)
# Between the training stage's time budget and its timeout: the queue, its budget spent,
# waits for its workers to end their last epoch, record their runs and exit. The second H100
# slot's queue (2026-11-26, box-call3.log) exited 365 s after it started with a 346 s budget.
WIND_DOWN_S = 25


class Box:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.work = Path(args.work)
        self.results = self.work / "results"
        self.cache = self.work / "compile-cache"
        self.end = args.started + args.budget
        self.log = (self.out / "box.log").open("a", buffering=1)
        self.record: dict = {"started": args.started, "budget_s": args.budget, "stages": []}
        self._export_lock = threading.Lock()

    # ---------------------------------------------------------------- output

    def say(self, text: str) -> None:
        line = f"[box {time.time() - self.args.started:6.0f}s] {text}"
        print(line, flush=True)
        self.log.write(line + "\n")

    def left(self) -> float:
        return self.end - time.time()

    def save_record(self) -> None:
        tmp = self.out / ".box.json.tmp"
        tmp.write_text(json.dumps(self.record, indent=2))
        tmp.replace(self.out / "box.json")

    # ---------------------------------------------------------------- stages

    def stage(self, name: str, command: list[str], timeout: float) -> int:
        """Run one stage, its output into the log: SIGTERM at the timeout, SIGKILL to its whole
        process group ``--stop-grace`` seconds later. Both land before the time kept for the
        end (``--reserve``), so that a stage that hangs, or ignores SIGTERM, still leaves the
        final export its time within the budget."""
        timeout = min(timeout, self.stage_time())
        if timeout < 1:
            self.say(f"stage {name}: no time left ({self.left():.0f} s to the end, "
                     f"{self.kept():.0f} s kept for stopping a stage and the final export); "
                     "skipped")  # fmt: skip
            self.record["stages"].append({"stage": name, "command": command, "rc": None,
                                          "seconds": 0, "timed_out": False,
                                          "skipped": True})  # fmt: skip
            self.save_record()
            return -1
        grace = self.args.stop_grace
        self.say(f"stage {name}: {' '.join(command)} (timeout {timeout:.0f} s)")
        t0 = time.time()
        # Its own process group: the kill reaches what the stage started too (a queue's
        # workers, a bench's processes, the compiler's), which would otherwise go on using the
        # GPU, and writing the store during the export, after their parent was killed.
        proc = subprocess.Popen(command, cwd=ROOT, env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)  # fmt: skip
        reader = threading.Thread(target=self._copy, args=(proc,), daemon=True)
        reader.start()
        timed_out = False
        next_export = time.time() + self.args.export_every
        while proc.poll() is None:
            time.sleep(0.5)
            if name == "train" and time.time() >= next_export:
                self.export(final=False)
                next_export = time.time() + self.args.export_every
            if not timed_out and time.time() - t0 > timeout:
                timed_out = True
                self.say(f"stage {name}: timed out; SIGTERM")
                proc.send_signal(signal.SIGTERM)  # the parent stops its workers itself
                kill_at = time.time() + grace
            if timed_out and time.time() > kill_at and proc.poll() is None:
                self.say(f"stage {name}: still running; SIGKILL to its process group")
                _kill_group(proc)
        _kill_group(proc)  # whatever it left behind
        reader.join(timeout=5)
        seconds = time.time() - t0
        self.say(f"stage {name}: exit {proc.returncode} after {seconds:.0f} s")
        self.record["stages"].append(
            {"stage": name, "command": command, "rc": proc.returncode,
             "seconds": round(seconds, 1), "timed_out": timed_out}
        )  # fmt: skip
        self.save_record()
        return proc.returncode

    def kept(self) -> float:
        """Seconds kept at the end of the budget: a stage's SIGTERM-to-SIGKILL grace and the
        final export (--reserve)."""
        return self.args.stop_grace + self.args.reserve

    def stage_time(self) -> float:
        """The longest timeout a stage starting now may have."""
        return self.left() - self.kept()

    def _copy(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            print(line, end="", flush=True)
            self.log.write(line)

    def env(self) -> dict:
        env = dict(os.environ)
        env["TORCHINDUCTOR_CACHE_DIR"] = str(self.cache)  # travels with the store
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        return env

    def repro(self, command: str, *args: str) -> list[str]:
        """A repro command line; a rehearsal's runs on the CPU."""
        cpu = ["--device", "cpu"] if self.args.rehearse else []
        return [sys.executable, "-m", "harness", command, *cpu, *args]

    # ---------------------------------------------------------------- store

    def import_archives(self) -> None:
        archives = [Path(a) for a in self.args.imports]
        parts = sorted((a for a in archives if a.name.startswith(COMPILE_CACHE_ARCHIVE)),
                       key=lambda a: a.name)  # fmt: skip
        if parts:
            self._unpack_compile_cache(parts)
        else:
            # A fresh clone has no .compile-carry/ (ignored, never committed): nothing is
            # wrong, but every compilation of the slot is paid again, which its timings show.
            self.record["compile_cache"] = "none given"
            self.say("compile cache: none given (no compile-cache.tar.gz.part-* among the "
                     "imports: .compile-carry/ absent or empty); every compilation starts "
                     "from scratch")  # fmt: skip
        for archive in archives:
            if archive in parts:
                continue
            try:
                merged = import_archive(archive, self.results)
            except TransferError as exc:
                self.say(f"import of {archive} refused: {exc}")
                continue
            for text in merged.lines():
                self.say(f"import {archive.name}: {text}")

    def export(self, final: bool) -> None:
        """Every study in the store to OUT, split into parts under the size limit."""
        with self._export_lock:
            written = set()
            for study, parts in _partition(self.results).items():
                for k, records in enumerate(parts, 1):
                    name = (
                        f"store-{study}.tar.gz" if len(parts) == 1 else f"store-{study}-{k}.tar.gz"
                    )
                    try:
                        export_runs(records, self.results, self.out / name, study=study)
                    except (TransferError, OSError) as exc:
                        self.say(f"export of {study} failed: {exc}")
                        continue
                    written.add(name)
            for stale in self.out.glob("store-*.tar.gz"):
                if stale.name not in written:
                    stale.unlink()  # an earlier partition of the same runs
            sizes = ", ".join(f"{n} {(self.out / n).stat().st_size / 2**20:.1f} MiB"
                              for n in sorted(written))  # fmt: skip
            self.say(f"{'final ' if final else ''}export: {sizes or 'no runs yet'}")

    def pack_compile_cache(self) -> None:
        """The compile cache, in as many parts as the returned files have room for.

        On the H100 (2026-11-26) it held 65 to 85 MiB after a slot, so it is split into parts
        under the file limit (compile-cache.tar.gz.part-1, -2, ...), which the next slot
        joins again; with too little room it stays behind and the next slot compiles anew.
        """
        if not self.cache.is_dir() or not any(p.is_file() for p in self.cache.rglob("*")):
            # Nothing compiled (a CPU rehearsal, an eager slot): an empty archive would take one
            # of the few files a slot returns.
            self.say("compile cache: empty; nothing to return")
            return
        packed = self.work / COMPILE_CACHE_ARCHIVE
        limit = int(self.args.part_mib * 2**20)
        room = RETURNED_FILES - sum(1 for p in self.out.iterdir() if not p.name.startswith("."))
        # Last of the slot, and the least of what it returns: packed file by file while the
        # budget lasts (the slot's call ends soon after it) and while it fits the room left
        # (the second H100 slot took 15 s to pack 31.8 MiB, box-call3.log), else left behind.
        with tarfile.open(packed, "w:gz") as tar:
            for path in [self.cache, *sorted(self.cache.rglob("*"))]:
                if self.left() <= 0 or packed.stat().st_size > room * limit:
                    why = "the budget ended" if self.left() <= 0 else f"room for {room} part(s)"
                    self.say(f"compile cache: over {packed.stat().st_size / 2**20:.0f} MiB "
                             f"packed when it stopped ({why}); it stays behind")  # fmt: skip
                    return
                tar.add(path, arcname=path.relative_to(self.cache).as_posix() or ".",
                        recursive=False)  # fmt: skip
        size = packed.stat().st_size
        needed = max(1, -(-size // limit))
        if needed > room:
            self.say(f"compile cache is {size / 2**20:.0f} MiB packed: {needed} parts, room for "
                     f"{room}; it stays behind")  # fmt: skip
            return
        with packed.open("rb") as src:
            for k in range(1, needed + 1):
                (self.out / f"{COMPILE_CACHE_ARCHIVE}.part-{k}").write_bytes(src.read(limit))
        self.say(f"compile cache: {size / 2**20:.1f} MiB packed, in {needed} part(s)")

    def _unpack_compile_cache(self, parts: list[Path]) -> None:
        """Join the parts a slot returned and unpack them as this slot's compile cache."""
        joined = self.work / f"{COMPILE_CACHE_ARCHIVE}.joined"
        joined.parent.mkdir(parents=True, exist_ok=True)
        with joined.open("wb") as out:
            for part in parts:
                out.write(part.read_bytes())
        try:
            with tarfile.open(joined) as tar:
                tar.extractall(self.cache, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            self.record["compile_cache"] = "unusable"
            self.say(f"compile cache from {len(parts)} part(s) unusable ({exc}); compiling anew")
            return
        self.record["compile_cache"] = f"from {len(parts)} part(s)"
        self.say(f"compile cache from {len(parts)} part(s): {', '.join(p.name for p in parts)}")


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # none left
        os.killpg(proc.pid, signal.SIGKILL)


def _run_bytes(run_dir: Path) -> int:
    names = list(RUN_FILES)
    if store.summary_status(run_dir) not in store.FINAL:
        names.append(store.CHECKPOINT)
    return sum((run_dir / n).stat().st_size for n in names if (run_dir / n).exists())


def _partition(results: Path) -> dict[str, list[list]]:
    """Each study's runs in groups whose files fit one returned file."""
    groups: dict[str, list[list]] = {}
    used: dict[str, int] = {}  # bytes in each study's last group
    for record in scan(results):
        parts = groups.setdefault(record.study, [[]])
        size = _run_bytes(record.path)
        if parts[-1] and used[record.study] + size > PART_LIMIT:
            parts.append([])
            used[record.study] = 0
        parts[-1].append(record)
        used[record.study] = used.get(record.study, 0) + size
    return groups


# -------------------------------------------------------------------- the stages


def cuda_visible(box: Box) -> bool:
    """Whether torch, as the stages will run it, sees a CUDA device (its versions logged)."""
    probe = ("import sys, torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda,"
             " 'devices', torch.cuda.device_count()); sys.exit(0 if torch.cuda.is_available()"
             " else 1)")  # fmt: skip
    return box.stage("cuda", [sys.executable, "-c", probe], 90) == 0


def check(box: Box, args: argparse.Namespace) -> None:
    if shutil.which("nvidia-smi"):
        box.stage("gpu", ["nvidia-smi"], 20)
    # Every test runs (no -x): a slot is too short to learn about the others next time. -v
    # names each test as it ends, so a check stopped by its timeout still says which passed;
    # the durations size the next slot's --check-timeout.
    box.stage("check", [*CHECK_COMMAND, *_selected(args), "-v", "--durations=0"],
              args.check_timeout)  # fmt: skip


# tests/test_gpu.py as the check stage runs it; --check-tests adds a -k expression.
CHECK_COMMAND = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_gpu.py"]


def _selected(args: argparse.Namespace) -> list[str]:
    return ["-k", args.check_tests] if args.check_tests else []


def check_selection(args: argparse.Namespace) -> str | None:
    """Why --check-tests cannot be used (None when it can): an expression that selects no
    test would spend the check stage on pytest's "no tests ran", found out after the slot.
    pytest collects without CUDA, so this runs wherever the slot is rehearsed."""
    listed = subprocess.run([*CHECK_COMMAND, *_selected(args), "--collect-only", "-q"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    chosen = [line for line in listed.stdout.splitlines() if "::" in line]
    if listed.returncode == 0 and chosen:
        return None
    said = (listed.stdout + listed.stderr).strip().splitlines()
    return (f"--check-tests {args.check_tests!r} selects no test of tests/test_gpu.py "
            f"(pytest: {said[-1] if said else f'exit {listed.returncode}'}); give a pytest -k "
            "expression naming some of its tests, e.g. 'fused and cuda_graphs'")  # fmt: skip


def bench(box: Box, args: argparse.Namespace) -> None:
    bench_dir = box.work / "bench"
    if args.rehearse:
        sized = ["--synthetic", "--subset", "128", "--models", "resnet8", "--epochs", "1",
                 "--warmup-epochs", "0", "--workers", "1", "--no-compile"]  # fmt: skip
    else:
        sized = ["--data-dir", args.data_dir, "--models", args.bench_models, "--epochs", "2",
                 "--warmup-epochs", "1", "--profile", str(bench_dir / "profile"),
                 "--compile-mode", args.compile_modes]  # fmt: skip
        if args.bench_subset:
            sized += ["--subset", str(args.bench_subset)]
    if args.fuse_widths:
        sized += ["--fuse", args.fuse_widths]
    # The stage's timeout keeps the end's time (Box.stage); a bench stopped by it keeps the
    # rows it measured and each model's profile taken by then (repro bench writes them as it
    # goes), which are packed once the stage has ended, however it ended.
    box.stage("bench", box.repro("bench", *sized, "--json", str(bench_dir / "bench.json"),
                                 "--markdown", str(bench_dir / "bench.md")),
              args.bench_timeout)  # fmt: skip
    if bench_dir.is_dir():
        with tarfile.open(box.out / "bench.tar.gz", "w:gz") as tar:
            for f in sorted(bench_dir.rglob("*")):
                if f.is_file() and _returned_from_bench(f.name):
                    tar.add(f, arcname=f.relative_to(bench_dir).as_posix())


def _returned_from_bench(name: str) -> bool:
    """Not a Chrome trace: 14.9 MB for 30 steps of resnet20 on a CPU (1.1 MB gzipped), the
    profile's table (a few kB) says where the time goes; not a dot-file, which is a write a
    stopped bench left half-done."""
    return not name.endswith(".trace.json") and not name.startswith(".")


def train(box: Box, args: argparse.Namespace) -> None:
    box.export(final=False)  # what earlier slots left, back out even if this stage is lost
    # The queue pauses its runs by the time budget and then winds down (the workers record
    # their runs and exit): WIND_DOWN_S after it, still within the stage's timeout, which
    # keeps the end's time (Box.stage).
    timeout = box.stage_time()
    if args.train_budget is not None:
        # A first queue item longer than the slot would take all of it: this leaves the
        # stages after training (--order check,train,bench) their time.
        timeout = min(timeout, args.train_budget)
    budget = timeout - WIND_DOWN_S
    if budget <= 10:
        box.say(f"no time left to train ({budget:.0f} s)")
        return
    items = ["--items", str(args.queue_items)] if args.queue_items else []
    box.stage("train", box.repro("queue", args.queue, *items, "--time-budget",
                                 f"{int(budget)}s", "--results", str(box.results),
                                 "--data-dir", args.data_dir, "--fuse", args.fuse, "--quiet"),
              timeout)  # fmt: skip


STAGES = {"check": check, "bench": bench, "train": train}


# -------------------------------------------------------------------- the slot


def _fuse_choice(text: str) -> str:
    """--fuse checked before the slot starts, as `repro queue` would check it at its stage."""
    try:
        parse_fuse(text)
    except FuseChoiceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="where the returned files go")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--budget", type=float, default=540, help="seconds for the whole slot")
    ap.add_argument("--started", type=float, default=time.time(), help="the slot's start")
    ap.add_argument("--work", default="/tmp/repro-box", help="store and compile cache")
    ap.add_argument("--queue", default=str(ROOT / "queue.yaml"))
    ap.add_argument("--import", dest="imports", nargs="*", default=[])
    ap.add_argument("--export-every", type=float, default=60)
    ap.add_argument("--reserve", type=float, default=25,
                    help="seconds kept for the final export and the compile cache")  # fmt: skip
    ap.add_argument("--stop-grace", type=float, default=20,
                    help="seconds from a stage's SIGTERM to its SIGKILL")  # fmt: skip
    ap.add_argument("--part-mib", type=float, default=PART_LIMIT / 2**20,
                    help="largest returned file, MiB")  # fmt: skip
    # tests/test_gpu.py took 125 s of 150 on an H200 (2026-11-27, box-call4.log) before it
    # gained a fused CUDA-graphs test and the solo tests took CUDA graphs (captures, compiles)
    ap.add_argument("--check-timeout", type=float, default=240)
    # A slot whose GPU tests passed before may run only those that never ran on a GPU, to
    # leave the measurements the time the others would take.
    ap.add_argument("--check-tests", metavar="EXPR",
                    help="check: only the tests of tests/test_gpu.py that this pytest -k "
                    "expression selects (default: all)")  # fmt: skip
    ap.add_argument("--bench-timeout", type=float, default=150)
    ap.add_argument("--train-budget", type=float,
                    help="seconds for the training stage at most, its winding down included "
                    "(default: what the slot has left)")  # fmt: skip
    # CUDA graphs measured 3.8x the canonical pipeline (2026-11-26): time them every slot.
    ap.add_argument("--compile-modes", default="default,reduce-overhead",
                    help="bench: compile mode(s)")  # fmt: skip
    # Fused training's GPU figure (six resnet20 runs as one network against one after another;
    # goal 4x). Off by default: each width compiles once more, time the queue's runs need.
    ap.add_argument(
        "--fuse-widths",
        default="",
        help="bench: also time K runs fused, e.g. 6 or 1,2,4,6 (repro bench --fuse)",
    )
    ap.add_argument("--bench-models", default="resnet20", help="bench: model(s), comma-separated")
    ap.add_argument("--bench-subset", type=int, help="bench: images per epoch (default: all)")
    ap.add_argument(
        "--queue-items",
        type=int,
        help="train: at most this many unfinished queue items (repro queue --items)",
    )
    # Fused training in the queue: off by default until the bench's fusion rows show on a GPU
    # that it pays (items may still say `fuse:` themselves).
    ap.add_argument("--fuse", default="off", type=_fuse_choice,
                    help="train: repro queue --fuse (auto, off or a group size K)")  # fmt: skip
    ap.add_argument("--skip", default="", help="stages to leave out, e.g. check,bench")
    # The default warms the compile cache in the bench before the runs; a slot whose first
    # need is to finish runs puts train before bench (check,train,bench) so a slow bench
    # cannot eat the training time.
    ap.add_argument(
        "--order",
        default=",".join(STAGES),
        help=f"stages in order, a permutation of {','.join(STAGES)}",
    )
    ap.add_argument("--rehearse", action="store_true", help="CPU-sized stages, for the tests")
    args = ap.parse_args(argv)
    order = args.order.split(",")
    if sorted(order) != sorted(STAGES):
        ap.error(f"--order {args.order}: give each of {', '.join(STAGES)} once")
    skip = set(filter(None, args.skip.split(",")))
    if args.check_tests and "check" not in skip and (why := check_selection(args)):
        ap.error(why)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    box = Box(args)
    box.results.mkdir(parents=True, exist_ok=True)

    if not args.rehearse and not cuda_visible(box):
        # Training or benching on the CPU would spend the slot on figures nobody wants and
        # store CPU runs as if the slot had made progress; what the GPU checks say (and
        # nvidia-smi) is what the next session needs to know.
        box.say(
            "no CUDA device: torch sees none, so the slot trains and benches nothing "
            "(see the torch line above and, unless skipped, the check stage's output)"
        )
        box.record["no_cuda"] = True
        if "check" not in skip:
            check(box, args)
        box.record["ended"] = time.time()
        box.save_record()
        return NO_CUDA
    box.import_archives()
    for name in order:
        if name not in skip:
            STAGES[name](box, args)
    box.export(final=True)
    try:
        queue = load_queue(args.queue)
        box.say("standing:\n" + render(queue, standing(queue, box.results)))
    except QueueError as exc:
        box.say(f"standing: {exc}")
    box.pack_compile_cache()  # last: what the budget may leave behind
    box.record["ended"] = time.time()
    box.record["seconds"] = round(time.time() - args.started, 1)
    box.save_record()
    returned = sorted(p.name for p in box.out.iterdir() if not p.name.startswith("."))
    box.say(f"done in {time.time() - args.started:.0f} s; returned: {', '.join(returned)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

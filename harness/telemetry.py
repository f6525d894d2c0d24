"""GPU telemetry through NVML: utilisation, memory, power and energy, sampled per epoch.

A background thread samples the run's GPU every ``interval`` seconds. At each epoch end the
trainer takes the aggregate since the previous epoch and stores it in that epoch's metrics,
so telemetry survives resumption with the rest of the history. Without a CUDA device, or
without NVML, nothing is sampled and the run records telemetry as absent, with the reason.

NVML reads the whole GPU. When several runs share it (``--runs-per-gpu K``), each sample
also counts the processes computing on the GPU, and a run is given its share of the energy
by the rule that shares out its GPU time (``harness.timings.share_divisor``); the whole-GPU
figure is kept beside it so that a group's total is never counted K times. Where NVML lists no
processes (some drivers and containers) and the run was placed beside others, its share is
unknown: it records none, only the whole GPU's energy, labelled an upper bound of its own.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import torch

from harness import timings

# How an epoch's ``energy_j`` was attributed (its ``energy_share``), said in the record itself
# so that a reader of metrics.jsonl or summary.json never takes the GPU's energy for the run's.
SHARED_OUT = ("the run's share: the GPU's energy over the processes computing on it (and over "
              "its fused group's size)")  # fmt: skip
ALONE = ("the run's: NVML listed no processes, and the run was placed alone on the GPU (a fused "
         "run: its group's, over the group's size)")  # fmt: skip
UNKNOWN = ("unknown: the GPU was shared with runs NVML did not list; gpu_energy_j, the whole "
           "GPU's, is an upper bound of this run's")  # fmt: skip


@dataclass
class _Samples:
    util: list[float] = field(default_factory=list)
    memory_mib: list[float] = field(default_factory=list)
    power_w: list[float] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)  # processes computing on the GPU


class Telemetry:
    def __init__(self, device: torch.device, interval: float = 0.5, shared_by: int = 1) -> None:
        self.device = device
        self.interval = interval
        self.shared_by = shared_by  # runs placed on the device (--runs-per-gpu), this one included
        self.available = False
        self.reason = ""
        self._handle = None
        self._nvml = None
        self._lock = threading.Lock()
        self._samples = _Samples()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._energy_mj: int | None = None
        self._t0 = time.perf_counter()
        if device.type != "cuda":
            self.reason = "no CUDA device: training ran on the CPU"
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = _handle_for(pynvml, device)
            self.available = True
        except Exception as exc:  # NVML missing or refusing: telemetry is optional
            self.reason = f"NVML unavailable: {exc}"

    def driver_version(self) -> str | None:
        if not self.available:
            return None
        version = self._nvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else version

    def start(self) -> None:
        if not self.available:
            return
        self._energy_mj = self._read_energy()
        self._t0 = time.perf_counter()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._thread = threading.Thread(target=self._loop, name="repro-telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()

    def take_epoch(self) -> dict | None:
        """Aggregates since the previous call (or start); None when telemetry is absent."""
        if not self.available:
            return None
        now = time.perf_counter()
        with self._lock:
            s, self._samples = self._samples, _Samples()
        energy = self._read_energy()
        seconds = now - self._t0
        if energy is not None and self._energy_mj is not None:
            energy_j = (energy - self._energy_mj) / 1000.0
            energy_source = "counter"
        else:
            energy_j = _mean(s.power_w) * seconds if s.power_w else None
            energy_source = "power x time"
        sharing = _mean([float(n) for n in s.processes]) if s.processes else None
        divisor = timings.share_divisor({"gpu_processes_mean": sharing}, self.shared_by)
        share = energy_j / divisor if energy_j is not None and divisor else None
        self._energy_mj, self._t0 = energy, now
        peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        torch.cuda.reset_peak_memory_stats(self.device)
        return {
            "samples": len(s.util),
            "gpu_util_mean": _mean(s.util),
            "gpu_memory_mib_max": max(s.memory_mib) if s.memory_mib else None,
            "power_w_mean": _mean(s.power_w),
            "energy_j": share,  # this run's share when the GPU was shared, None if unknown
            "energy_share": _how_shared(sharing, divisor) if energy_j is not None else None,
            "gpu_energy_j": energy_j,  # the whole GPU's
            "gpu_processes_mean": sharing,
            "gpu_processes_max": max(s.processes) if s.processes else None,
            # The placement this epoch's share was worked out under: a run resumed with another
            # (crowded, then alone) is shared out by each session's (timings.device_time).
            "device_shared_by": self.shared_by,
            "energy_source": energy_source,
            "torch_peak_memory_mib": peak,
            "seconds": seconds,
        }

    def _loop(self) -> None:
        nv, h = self._nvml, self._handle
        while not self._stop.wait(self.interval):
            try:
                util = nv.nvmlDeviceGetUtilizationRates(h).gpu
                mem = nv.nvmlDeviceGetMemoryInfo(h).used / 2**20
                power = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
            except Exception:
                continue
            try:
                processes = len(nv.nvmlDeviceGetComputeRunningProcesses(h))
            except Exception:  # not every driver or container lists processes
                processes = None
            with self._lock:
                self._samples.util.append(float(util))
                self._samples.memory_mib.append(float(mem))
                self._samples.power_w.append(float(power))
                if processes:
                    self._samples.processes.append(processes)

    def _read_energy(self) -> int | None:
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:
            return None


def _handle_for(pynvml, device: torch.device):
    """NVML's handle for torch's device (indices differ under CUDA_VISIBLE_DEVICES)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is not None:
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
        except Exception:
            pass
    return pynvml.nvmlDeviceGetHandleByIndex(index)


def _how_shared(processes: float | None, divisor: float | None) -> str:
    if divisor is None:
        return UNKNOWN
    return SHARED_OUT if processes else ALONE


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def run_totals(epochs: list[dict]) -> dict | None:
    """Sum a run's per-epoch telemetry: energy and GPU seconds, mean power and utilisation."""
    parts = [e["telemetry"] for e in epochs if e.get("telemetry")]
    if not parts:
        return None
    energies = [p["energy_j"] for p in parts if p.get("energy_j") is not None]
    # Epochs whose share is unknown: the whole GPU's energy in them bounds the run's (a fused
    # member's, over its group's size, as harness.timings.device_time bounds it).
    unshared = [
        p["gpu_energy_j"] / (p.get("fused_members") or 1)
        for p in parts
        if p.get("energy_share") == UNKNOWN and p.get("gpu_energy_j") is not None
    ]
    sharing = [p["gpu_processes_max"] for p in parts if p.get("gpu_processes_max")]
    utils = [p["gpu_util_mean"] for p in parts if p.get("gpu_util_mean") is not None]
    peaks = [p["torch_peak_memory_mib"] for p in parts if p.get("torch_peak_memory_mib")]
    seconds = sum(p["seconds"] for p in parts)
    # Part of a run's energy is no figure of it: with any epoch unknown it records none, only
    # the upper bound (its known shares and the whole GPU's energy in the other epochs).
    energy = sum(energies) if energies and not unshared else None
    return {
        "energy_j": energy,
        "energy_upper_bound_j": sum(energies) + sum(unshared) if unshared else None,
        "gpu_seconds": seconds,
        "power_w_mean": energy / seconds if energy and seconds else None,
        "gpu_util_mean": _mean(utils),
        "torch_peak_memory_mib": max(peaks) if peaks else None,
        # how many processes computed on the GPU at once, at most (1: it had the GPU alone)
        "gpu_processes_max": max(sharing) if sharing else None,
    }

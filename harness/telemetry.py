"""GPU telemetry through NVML: utilisation, memory, power and energy, sampled per epoch.

A background thread samples the run's GPU every ``interval`` seconds. At each epoch end the
trainer takes the aggregate since the previous epoch and stores it in that epoch's metrics,
so telemetry survives resumption with the rest of the history. Without a CUDA device, or
without NVML, nothing is sampled and the run records telemetry as absent, with the reason.

NVML reads the whole GPU. When several runs share it (``--runs-per-gpu K``), each sample
also counts the processes computing on the GPU, and a run is given its share of the energy
(whole-GPU energy over the mean number of processes); the whole-GPU figure is kept beside it
so that a group's total is never counted K times.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import torch


@dataclass
class _Samples:
    util: list[float] = field(default_factory=list)
    memory_mib: list[float] = field(default_factory=list)
    power_w: list[float] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)  # processes computing on the GPU


class Telemetry:
    def __init__(self, device: torch.device, interval: float = 0.5) -> None:
        self.device = device
        self.interval = interval
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
        share = energy_j / max(1.0, sharing) if energy_j is not None and sharing else energy_j
        self._energy_mj, self._t0 = energy, now
        peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        torch.cuda.reset_peak_memory_stats(self.device)
        return {
            "samples": len(s.util),
            "gpu_util_mean": _mean(s.util),
            "gpu_memory_mib_max": max(s.memory_mib) if s.memory_mib else None,
            "power_w_mean": _mean(s.power_w),
            "energy_j": share,  # this run's share when the GPU was shared
            "gpu_energy_j": energy_j,  # the whole GPU's
            "gpu_processes_mean": sharing,
            "gpu_processes_max": max(s.processes) if s.processes else None,
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


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def run_totals(epochs: list[dict]) -> dict | None:
    """Sum a run's per-epoch telemetry: energy and GPU seconds, mean power and utilisation."""
    parts = [e["telemetry"] for e in epochs if e.get("telemetry")]
    if not parts:
        return None
    energies = [p["energy_j"] for p in parts if p.get("energy_j") is not None]
    sharing = [p["gpu_processes_max"] for p in parts if p.get("gpu_processes_max")]
    utils = [p["gpu_util_mean"] for p in parts if p.get("gpu_util_mean") is not None]
    peaks = [p["torch_peak_memory_mib"] for p in parts if p.get("torch_peak_memory_mib")]
    seconds = sum(p["seconds"] for p in parts)
    energy = sum(energies) if energies else None
    return {
        "energy_j": energy,
        "gpu_seconds": seconds,
        "power_w_mean": energy / seconds if energy and seconds else None,
        "gpu_util_mean": _mean(utils),
        "torch_peak_memory_mib": max(peaks) if peaks else None,
        # how many processes computed on the GPU at once, at most (1: it had the GPU alone)
        "gpu_processes_max": max(sharing) if sharing else None,
    }

"""GPU telemetry without a GPU: a stand-in NVML with known readings, and torch's CUDA memory
calls replaced, so the sampling thread, the per-epoch aggregates and the run totals are checked
against figures worked out by hand."""

from __future__ import annotations

import sys
import time
import types
from types import SimpleNamespace

import pytest
import torch

from harness.telemetry import Telemetry, run_totals

CUDA0 = torch.device("cuda", 0)


class FakeNvml(types.ModuleType):
    """The calls harness.telemetry makes, answering with fixed readings."""

    def __init__(
        self, *, energy: bool = True, fail_init: bool = False, processes: int | None = None
    ) -> None:
        super().__init__("pynvml")
        self.energy_mj = 1_000_000 if energy else None
        self.fail_init = fail_init
        self.processes = processes  # None: the driver cannot list them
        self.handles: list[str] = []
        self.shut = False

    def nvmlInit(self):
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self):
        self.shut = True

    def nvmlSystemGetDriverVersion(self):
        return b"580.95.05"

    def nvmlDeviceGetHandleByUUID(self, uuid):
        self.handles.append(uuid)
        return "handle"

    def nvmlDeviceGetHandleByIndex(self, index):
        self.handles.append(f"index {index}")
        return "handle"

    def nvmlDeviceGetUtilizationRates(self, handle):
        return SimpleNamespace(gpu=80)

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=3 * 2**30)

    def nvmlDeviceGetPowerUsage(self, handle):
        return 250_000  # milliwatts

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if self.energy_mj is None:
            raise RuntimeError("Not Supported")
        self.energy_mj += 500_000  # 500 J between two reads
        return self.energy_mj

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        if self.processes is None:
            raise RuntimeError("Not Supported")
        return [SimpleNamespace(pid=4000 + i, usedGpuMemory=2**30) for i in range(self.processes)]


@pytest.fixture
def fake_cuda(monkeypatch):
    def install(nvml: FakeNvml) -> FakeNvml:
        monkeypatch.setitem(sys.modules, "pynvml", nvml)
        props = SimpleNamespace(uuid="58c6a4f2-0000-1111-2222-333344445555")
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
        monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 512 * 2**20)
        return nvml

    return install


def _two_epochs(telemetry: Telemetry) -> list[dict]:
    telemetry.start()
    epochs = []
    for _ in range(2):
        deadline = time.monotonic() + 5
        while telemetry._samples.util == [] and time.monotonic() < deadline:
            time.sleep(0.005)
        epochs.append({"telemetry": telemetry.take_epoch()})
    telemetry.stop()
    return epochs


def test_samples_are_aggregated_per_epoch_and_summed_per_run(fake_cuda):
    nvml = fake_cuda(FakeNvml())
    telemetry = Telemetry(CUDA0, interval=0.01)
    assert telemetry.available and telemetry.driver_version() == "580.95.05"
    assert nvml.handles == ["GPU-58c6a4f2-0000-1111-2222-333344445555"]  # by UUID, not index
    epochs = _two_epochs(telemetry)
    for e in epochs:
        t = e["telemetry"]
        assert t["samples"] >= 1
        assert (t["gpu_util_mean"], t["gpu_memory_mib_max"], t["power_w_mean"]) == (80, 3072, 250)
        assert (t["energy_j"], t["energy_source"]) == (500.0, "counter")
        assert t["torch_peak_memory_mib"] == 512
    totals = run_totals(epochs)
    seconds = sum(e["telemetry"]["seconds"] for e in epochs)
    assert totals["energy_j"] == 1000.0 and totals["gpu_seconds"] == pytest.approx(seconds)
    assert totals["power_w_mean"] == pytest.approx(1000.0 / seconds)
    assert totals["gpu_util_mean"] == 80 and totals["torch_peak_memory_mib"] == 512
    assert nvml.shut


def test_without_an_energy_counter_energy_is_power_times_time(fake_cuda):
    fake_cuda(FakeNvml(energy=False))
    epochs = _two_epochs(Telemetry(CUDA0, interval=0.01))
    for e in epochs:
        t = e["telemetry"]
        assert t["energy_source"] == "power x time"
        assert t["energy_j"] == pytest.approx(250.0 * t["seconds"])


def test_missing_nvml_leaves_telemetry_absent_with_the_reason(fake_cuda):
    fake_cuda(FakeNvml(fail_init=True))
    telemetry = Telemetry(CUDA0)
    assert not telemetry.available and telemetry.driver_version() is None
    assert telemetry.reason == "NVML unavailable: NVML Shared Library Not Found"
    telemetry.start()  # nothing to start, nothing to fail
    assert telemetry.take_epoch() is None
    telemetry.stop()
    cpu = Telemetry(torch.device("cpu"))
    assert not cpu.available and "CPU" in cpu.reason


def test_a_shared_gpu_gives_each_run_its_share_of_the_energy(fake_cuda):
    fake_cuda(FakeNvml(processes=3))
    epochs = _two_epochs(Telemetry(CUDA0, interval=0.01))
    for e in epochs:
        t = e["telemetry"]
        assert t["gpu_energy_j"] == 500.0 and t["energy_j"] == pytest.approx(500.0 / 3)
        assert t["gpu_processes_mean"] == 3 and t["gpu_processes_max"] == 3
    totals = run_totals(epochs)
    assert totals["energy_j"] == pytest.approx(1000.0 / 3) and totals["gpu_processes_max"] == 3


def test_without_a_process_list_a_run_is_given_the_whole_gpu(fake_cuda):
    fake_cuda(FakeNvml(processes=None))
    epochs = _two_epochs(Telemetry(CUDA0, interval=0.01))
    for e in epochs:
        t = e["telemetry"]
        assert t["energy_j"] == t["gpu_energy_j"] == 500.0
        assert t["gpu_processes_mean"] is None and t["gpu_processes_max"] is None
    totals = run_totals(epochs)
    assert totals["energy_j"] == 1000.0 and totals["gpu_processes_max"] is None

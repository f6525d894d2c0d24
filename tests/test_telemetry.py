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

from harness.telemetry import ALONE, SHARED_OUT, UNKNOWN, Telemetry, run_totals
from harness.timings import device_time

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


# --- energy where a run shared its GPU (branch energy) ---


def test_a_gpu_shared_with_unlisted_runs_records_no_energy_of_its_own(fake_cuda):
    """Placed beside two others, and NVML lists no processes (as in many containers): the
    whole GPU's 500 J an epoch is an upper bound of the run's, labelled so, never its energy.
    Before, the run recorded all 1000 J as its own."""
    fake_cuda(FakeNvml(processes=None))
    epochs = _two_epochs(Telemetry(CUDA0, interval=0.01, shared_by=3))
    for e in epochs:
        t = e["telemetry"]
        assert t["energy_j"] is None and t["gpu_energy_j"] == 500.0
        assert t["energy_share"] == UNKNOWN and "upper bound" in t["energy_share"]
    totals = run_totals(epochs)
    assert totals["energy_j"] is None and totals["power_w_mean"] is None
    assert totals["energy_upper_bound_j"] == 1000.0


def test_a_known_count_shares_energy_by_the_rule_of_gpu_time(fake_cuda):
    """Three processes listed: a third of the GPU's energy and a third of the wall time, the
    one divisor (timings.share_divisor), whether recorded or added up by the report."""
    fake_cuda(FakeNvml(processes=3))
    epochs = _two_epochs(Telemetry(CUDA0, interval=0.01, shared_by=3))
    for e in epochs:
        t = e["telemetry"]
        assert t["energy_j"] == pytest.approx(500.0 / 3) and t["energy_share"] == SHARED_OUT
    totals = run_totals(epochs)
    assert totals["energy_j"] == pytest.approx(1000.0 / 3)
    assert totals["energy_upper_bound_j"] is None
    counted = device_time(epochs, {"device_shared_by": 3}, None)
    seconds = sum(e["telemetry"]["seconds"] for e in epochs)
    assert counted.energy_j == pytest.approx(totals["energy_j"])
    assert counted.share == pytest.approx(seconds / 3) and counted.energy_unknown_j == 0


@pytest.mark.parametrize("processes, label", [(None, ALONE), (1, SHARED_OUT)])
def test_a_solo_run_keeps_the_whole_gpus_energy(fake_cuda, processes, label):
    """Placed alone, whether NVML lists its one process or none: all 500 J an epoch are its."""
    fake_cuda(FakeNvml(processes=processes))
    epochs = _two_epochs(Telemetry(CUDA0, interval=0.01, shared_by=1))
    for e in epochs:
        t = e["telemetry"]
        assert t["energy_j"] == t["gpu_energy_j"] == 500.0 and t["energy_share"] == label
    totals = run_totals(epochs)
    assert totals["energy_j"] == 1000.0 and totals["energy_upper_bound_j"] is None
    counted = device_time(epochs, {}, None)
    assert (counted.energy_j, counted.energy_unknown_j) == (1000.0, 0.0)


def test_one_epoch_of_unknown_share_leaves_the_run_only_an_upper_bound():
    """A run that shared with listed processes for one epoch and unlisted ones for the next
    has no energy of its own to record: its share of the first plus the whole GPU's second."""
    known = {"seconds": 10.0, "energy_j": 100.0, "gpu_energy_j": 300.0,
             "gpu_processes_mean": 3.0, "energy_share": SHARED_OUT}  # fmt: skip
    unknown = {"seconds": 10.0, "energy_j": None, "gpu_energy_j": 300.0,
               "gpu_processes_mean": None, "energy_share": UNKNOWN}  # fmt: skip
    totals = run_totals([{"telemetry": known}, {"telemetry": unknown}])
    assert totals["energy_j"] is None and totals["energy_upper_bound_j"] == 400.0
    # A member of a fused group of 2: its share is at most half the GPU's.
    unknown["fused_members"] = 2
    assert run_totals([{"telemetry": unknown}])["energy_upper_bound_j"] == 150.0


# --- a run resumed with another placement (review) ---


def test_each_epoch_is_shared_out_by_the_placement_of_its_own_session(fake_cuda):
    """Placed beside two others in a container that lists no processes, then resumed alone:
    the first session's epochs have an unknown share, the second's are the run's own, as
    the run recorded them. Before, the report and `repro run`'s closing line applied one
    placement to every epoch: the run's latest while it ran (its summary is cleared as a
    session begins), so the crowded session's whole-GPU 1000 J and wall time counted as the
    run's own; its largest once it ended, so the solo session's read as shared."""
    fake_cuda(FakeNvml(processes=None))
    crowded = _two_epochs(Telemetry(CUDA0, interval=0.01, shared_by=3))
    alone = _two_epochs(Telemetry(CUDA0, interval=0.01, shared_by=1))
    history = crowded + alone
    crowded_s = sum(e["telemetry"]["seconds"] for e in crowded)
    alone_s = sum(e["telemetry"]["seconds"] for e in alone)
    totals = run_totals(history)
    assert totals["energy_j"] is None and totals["energy_upper_bound_j"] == 2000.0
    ended = {"sessions": [{"device_shared_by": 3}, {"device_shared_by": 1}]}
    for summary in (None, ended):  # running (no summary yet), then ended
        counted = device_time(history, {"device_shared_by": 1}, summary)
        assert (counted.energy_j, counted.energy_unknown_j) == (1000.0, 1000.0), summary
        assert counted.share == pytest.approx(alone_s), summary
        assert counted.unknown == pytest.approx(crowded_s), summary
        assert counted.energy_j + counted.energy_unknown_j == totals["energy_upper_bound_j"]

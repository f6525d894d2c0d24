"""Where the evidence came from: the data sets, software, devices and commits of the
runs and evaluations, and what a copy of the data costs, for the page's provenance section.
"""

from __future__ import annotations

import statistics
from collections import Counter

from harness import verdicts
from harness.data import shown_apart
from harness.environment import cudnn_text
from harness.report.runs import _execution, trained_on
from harness.report.views import CopyCost, Provenance, StudyReport
from harness.results import EvaluationRecord, RunRecord


def _provenance(records: list[RunRecord], reports: list[StudyReport],
                evaluations: list[EvaluationRecord]) -> Provenance:  # fmt: skip
    datasets: Counter = Counter()
    evaluated: Counter = Counter()  # checkpoint evaluations per data set
    software: Counter = Counter()
    devices: Counter = Counter()
    epochs: Counter = Counter()  # of runs, by the devices' keys
    moved = False  # a run trained on several devices: each row says its epochs
    commits: Counter = Counter()
    times = []
    for r in records:
        env = r.environment or {}
        data = r.data
        if data:
            datasets[(data.get("dataset_fingerprint", ""), data.get("official"),
                      data.get("path", ""))] += 1  # fmt: skip
        if env:
            software[(env.get("torch"), env.get("torchvision"), env.get("cuda"),
                      env.get("cudnn"), env.get("python"))] += 1  # fmt: skip
            # A run moved between devices is on each one's row: by its latest device's
            # name alone, it hid the one that trained most of it. The environment's driver is
            # that latest device's; another's is not recorded.
            ran_on = trained_on(r.history, env)
            moved |= len(ran_on) > 1
            for device, n in ran_on:
                driver = env.get("driver") if device == env.get("device_name") else None
                key = (device, driver, _execution(env, r.summary))
                devices[key] += 1
                epochs[key] += n
            h = env.get("harness") or {}
            commits[(h.get("commit"), h.get("dirty"))] += 1
        if isinstance(env.get("time"), str):  # a run still in its first session has no summary
            times.append(env["time"])
        for s in (r.summary or {}).get("sessions") or []:
            if isinstance(s, dict) and isinstance(s.get("time"), str):
                times.append(s["time"])
        if (r.summary or {}).get("finished"):
            times.append(r.summary["finished"])
    for e in evaluations:
        if e.data:
            evaluated[(e.data.get("dataset_fingerprint", ""), e.data.get("official"),
                       e.data.get("path", ""))] += 1  # fmt: skip
        env = e.value("environment") or {}
        if env:  # the software, device and code of an evaluation count like a run's
            software[(env.get("torch"), env.get("torchvision"), env.get("cuda"),
                      env.get("cudnn"), env.get("python"))] += 1  # fmt: skip
            devices[(env.get("device_name"), env.get("driver"), "fp32 evaluation")] += 1
            h = env.get("harness") or {}
            commits[(h.get("commit"), h.get("dirty"))] += 1
        if isinstance(e.value("finished"), str):
            times.append(e.value("finished"))
    return Provenance(
        datasets=[{"fingerprint": f, "official": o, "path": p, "runs": datasets[(f, o, p)],
                   "evaluations": evaluated[(f, o, p)]}
                  for (f, o, p), _ in (datasets + evaluated).most_common()],
        # cuDNN as people write it (9.19.0), not torch's integer the record keeps (91900)
        software=[{"torch": t, "torchvision": tv, "cuda": c, "python": py, "runs": n,
                   "cudnn": None if cd is None else cudnn_text(cd)}
                  for (t, tv, c, cd, py), n in software.most_common()],
        devices=[{"device": d, "driver": dr, "execution": e, "runs": n,
                  "epochs": epochs[(d, dr, e)] if moved else None}
                 for (d, dr, e), n in devices.most_common()],
        commits=[{"commit": c, "dirty": d, "runs": n} for (c, d), n in commits.most_common()],
        first=min(times) if times else "",
        last=max(times) if times else "",
        copy_penalty=(penalty := [row for s in reports for row in s.copy_penalty]),
        copy_penalty_mean=statistics.fmean(r["penalty"] for r in penalty) if penalty else None,
    )  # fmt: skip


def _copy_costs(fingerprints: set[str], penalty: list[dict]) -> list[CopyCost]:
    """What is known of each copy's cost (``fingerprints``: the copies' data, as recorded),
    the offline JPEG copy first; ``penalty``: Provenance.copy_penalty, released checkpoints'
    test error on a copy less theirs on the official release, by the copy's first 12
    characters."""
    ordered = sorted(fingerprints, key=lambda f: (f != verdicts.JPEG_COPY_FINGERPRINT, f))
    shown = shown_apart(*ordered)
    costs = []
    for fingerprint, short in zip(ordered, shown, strict=True):
        lost = [r["penalty"] for r in penalty if r["data"] == fingerprint[:12]]
        name = "the copy" if len(ordered) == 1 else f"the copy {short or 'of unrecorded data'}"
        costs.append(CopyCost(name, fingerprint == verdicts.JPEG_COPY_FINGERPRINT,
                              statistics.fmean(lost) if lost else None))  # fmt: skip
    return costs

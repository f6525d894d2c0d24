"""Whether a run directory lies where its own records say it belongs.

A run's config hash leaves names out (two studies that declare the same training share it:
harness.twins), so a run folder copied by hand into another experiment's, study's or
seed's folder may hash as that folder's own run, and count there: one training counted
for another paper's claim, or ``seed-0`` copied to ``seed-1`` counted as a second seed.

What a run records of its place, and where:

* ``config.json``: ``seed`` and ``overrides`` (the label): in the hash, so in every run that
  trained, old ones included;
* ``summary.json``: ``study``, ``experiment``, ``seed`` and ``label`` (train.summary_fields),
  written at the end of every session however it ended; an adopted twin's summary names the
  adopting run here (twins.OWN_FIELDS), the training's origin in ``shared_with``.

A run is judged by what it records: a field that is absent (an older run, a summary written
before training began) disagrees with nothing. A run killed within its first session has
no summary yet, so only its seed and label can be checked; it never counts until a session
ends, which writes its place.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# As harness.results reads the store: <study>/<experiment>/seed-<k>[~label].
SEED_DIR = re.compile(r"^seed-(?P<seed>\d+)(?:~(?P<label>[A-Za-z0-9_.-]+))?$")

WHAT_TO_DO = (
    "move it back to where it belongs, or delete it; to use another study's complete run of "
    "the same training, let `repro run` adopt it (a checked copy, harness.twins)"
)


def misplaced(run_dir: Path, config: Any, summary: Any) -> str | None:
    """How the place ``config`` and ``summary`` (as read, maybe not objects) record for the
    run disagrees with the folder it lies in, or None. A folder not named as a run's (a stage
    of an adoption, an unpacked archive's scratch copy of a file) is not judged."""
    m = SEED_DIR.match(run_dir.name)
    if m is None:
        return None
    here = {"study": run_dir.parent.parent.name, "experiment": run_dir.parent.name,
            "seed": int(m["seed"]), "label": m["label"] or ""}  # fmt: skip
    recorded = []  # (field, value, file)
    if isinstance(config, dict):
        recorded += [("seed", config.get("seed"), "config.json"),
                     ("label", config.get("overrides"), "config.json")]  # fmt: skip
    if isinstance(summary, dict):
        recorded += [(key, summary.get(key), "summary.json") for key in here]
    for key, value, file in recorded:
        if value is None or type(value) is not type(here[key]) or value == here[key]:
            continue  # not recorded (or of no kind a run writes: damage, said elsewhere)
        return (f"its {file} records {key} {value!r}, but it lies in the folder of "
                f"{key} {here[key]!r}: a copy, never counted here")  # fmt: skip
    return None

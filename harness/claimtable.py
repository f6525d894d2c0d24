"""The claim table as data, as `repro report --format csv|json` writes it and `repro compare`
reads it back: what names a claim from one night to the next, and the count of rows that
shows a copy cut short.

A CSV cut between two rows (a download that stopped) is still a valid CSV, one with fewer
claims; every row therefore carries how many rows the report wrote, in the last column, so
a table that lost rows (or a last row cut mid-way, whose count is gone) is known as such.
A column, not a trailer line or a separate file: pandas and spreadsheets read it as they
read the others, and the table stays one file.
"""

from __future__ import annotations

import re

from harness.metrics import METRICS
from harness.schema import SLUG, Claim, OrderingClaim

ID = "claim_id"
ROWS = "rows_in_table"


def claim_id(claim: Claim | OrderingClaim) -> str:
    """What a claim is about, not how it is worded: its ``id:`` where the study file gives
    one, else its source (the study's key for it, not the citation), what it is about
    (experiment, checkpoint, or an ordering's experiments from the lowest metric to the
    highest, so that ``[a, c] increasing`` and ``[c, a] decreasing`` are one claim), metric
    and epoch, and for a value the reporting rule and what the figure depends on (the
    hardware of a speed, what a parameter count counts). ``where``, the claimed figure's text
    and an ordering's statement are wording: a new wording of them is the same claim."""
    if claim.id is not None:
        return claim.id
    metric = claim.metric if claim.epoch is None else f"{claim.metric}@{claim.epoch}"
    if isinstance(claim, OrderingClaim):
        rising = claim.experiments if claim.direction == "increasing" else claim.experiments[::-1]
        return f"{claim.source}:{'<'.join(rising)}:{metric}"
    subject = claim.experiment if claim.experiment is not None else f"checkpoint/{claim.checkpoint}"
    parts = [claim.source, subject, metric, f"{claim.rule.kind}-{claim.rule.n}"]
    if claim.hardware is not None:
        parts.append(f"hardware={claim.hardware}")
    if claim.counts == "without_batchnorm":  # `counts: all` is the default written out
        parts.append(f"counts={claim.counts}")
    return ":".join(parts)


_NAME = re.compile(SLUG)


def canonical(identity: str) -> str:
    """``identity`` as this version writes it. Tables written before an ordering's id was
    normalized name a decreasing ordering by its experiments as written, joined by ``>``
    (``src:a>c:metric``); read as ``src:c<a:metric`` it matches tonight's id of the same claim
    instead of reading as one claim lost and one new. Any other id is returned as it is: an
    ``id:`` from a study file has no ``:``, and only an ordering's part of a derived id is a
    chain of experiment names joined by ``>``."""
    parts = identity.rsplit(":", 2)
    if len(parts) != 3:
        return identity
    source, order, metric = parts
    names = order.split(">")
    if (
        len(names) < 2
        or not all(_NAME.match(n) for n in names)
        or metric.split("@", 1)[0] not in METRICS
    ):
        return identity
    return f"{source}:{'<'.join(reversed(names))}:{metric}"

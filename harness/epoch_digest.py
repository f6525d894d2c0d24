"""A digest on each line of metrics.jsonl: a line edited or damaged after training wrote it is
told from what training wrote.

The report reads claims from a run's curve (the test error at an epoch, the best over the
epochs, an ordering of curves) and draws it; a changed figure in a line that still parses, or
a line copied over another with its epoch number put right, read as a result. The epoch
numbering (store.check_order) catches lines moved, repeated or lost whole, but no invariant
the file carries says what an epoch's loss or error was.

Each line carries the first 16 hex digits of the SHA-256 of its other fields as canonical JSON
(keys sorted, no spaces), taken over the fields as JSON reads them back, so that reading the
line gives the same digest whatever its key order or spacing. Not a signature: whoever edits
a line can compute it again; it catches accidents and hand edits, not forgery. Lines written by
a harness before 2026-11-27 carry none and are read as before.
"""

from __future__ import annotations

import hashlib
import json

FIELD = "digest"


def digest(row: dict) -> str:
    """The digest of ``row``'s fields other than its digest, as JSON reads them back."""
    fields = {k: v for k, v in row.items() if k != FIELD}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sealed(row: dict) -> dict:
    """``row`` as a line of metrics.jsonl holds it: its fields as JSON reads them back (a
    tuple is a list once read), with their digest. A digest it carries is taken again, never
    trusted: the row is what is being written."""
    fields = json.loads(json.dumps({k: v for k, v in row.items() if k != FIELD}))
    return {**fields, FIELD: digest(fields)}

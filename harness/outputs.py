"""Whether an output path can be written, checked before any work (imports nothing heavy).

A path below a regular file, a read-only file system or a missing permission is reported
with the option that gave it and what to do, before anything is measured or built, so no
work is lost to a bad path and no traceback is shown.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from harness.leftovers import PROBE, sweep_probes, tag


class OutputError(ValueError):
    """An output path (--out, --json, ...) that cannot be written; the message says why."""


def probe(folder: Path) -> tuple[Path, OSError | None]:
    """Whether files can be created in ``folder`` (or where it would be created): the nearest
        directory that exists, and the error that writing there gives, if any. Creates nothing,
    and removes the empty probes that killed processes left there."""
    existing = folder
    # lexists: a link that leads nowhere (a loop) is there, and in the way; exists() walked
    # past it to a writable parent, and creating the folder then failed with a traceback.
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.exists():
            raise FileNotFoundError(2, "a link that leads nowhere", str(existing))
        if not existing.is_dir():
            raise NotADirectoryError(20, "a path below a regular file", str(existing))
        # Named with this process, so that a later probe here removes one a kill left between
        # these lines (sweep_probes) and never one still in use.
        fd, name = tempfile.mkstemp(prefix=f"{PROBE}{tag()}", dir=existing)
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):  # a sweep took it: it was written
            os.unlink(name)
    except OSError as exc:
        return existing, exc
    sweep_probes(existing)
    return existing, None


def ensure_can_write(path: Path, option: str, *, folder: bool = False) -> None:
    """Refuse an output file (or, with ``folder``, a directory) given by ``option`` (--out,
    --json, ...) that cannot be written: checked before any work, so none is lost to it."""
    existing, exc = probe(path if folder else path.parent)
    if exc is None and not folder and path.is_dir():
        raise OutputError(f"{option} {path}: is a directory; give a file name")
    if exc is not None:
        raise OutputError(
            f"{option} {path}: cannot write there ({exc.strerror or exc}: {existing}); give "
            f"{option} a path you can write to"
        )


# `repro report`'s formats, by --out's extension (any case); ".htm" is HTML too.
REPORT_FORMATS = {".html": "html", ".htm": "html", ".csv": "csv", ".json": "json"}
REPORT_DEFAULT_OUT = {"html": "report.html", "csv": "claims.csv", "json": "claims.json"}


def report_output(out: Path | None, fmt: str | None) -> tuple[Path, str]:
    """Where `repro report` writes and in which format: --format when given, else --out's
    extension (none: HTML). Another extension without --format is refused: `--out report.pdf`
    wrote an HTML page into a file named .pdf, whose name promised something else."""
    if fmt is None and out is not None and out.suffix:
        fmt = REPORT_FORMATS.get(out.suffix.lower())
        if fmt is None:
            raise OutputError(
                f"--out {out}: repro report writes html, csv or json, chosen by the extension "
                f"(.html, .csv or .json), and {out.suffix!r} is none of them; name the file "
                f"so, or give --format html|csv|json to write that format to {out.name}"
            )
    fmt = fmt or "html"
    return out or Path(REPORT_DEFAULT_OUT[fmt]), fmt

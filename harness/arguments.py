"""The command line's argument types: paths and numbers checked while click parses them, so a
mistake is refused in a fraction of a second, before torch is imported, and with what to give
instead (click's own messages name no remedy)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import click

from harness.choices import GPU_COUNT


def expand_home(value):
    """A path's leading ``~`` (``~/r``, ``~user/r``) made the home directory it means, as the
    shell does where it expands it; not after ``--results=`` (bash expands it after ``=``
    only in variable assignments), where repro got '~/r' verbatim: it made a folder named
    '~' in the current one for the store, and said of a data directory that '~/cifar' did
    not exist. A path object or any other value passes unchanged."""
    if isinstance(value, str) and value.startswith("~"):
        return os.path.expanduser(value)
    return value


class ReadablePath(click.Path):
    """click.Path whose refusal of a path this user cannot read says what to do: click's own
    "Path 'x' is not readable." named no remedy. A directory needs execute permission too, to
    be listed and entered, which click does not check. ``instead``: what else to give, where
    not one that can be read (an output file is overwritten, and click checks it all the same)."""

    instead = ""

    def convert(self, value, param, ctx):
        if self.readable and os.path.exists(value):
            folder = os.path.isdir(value)
            if not os.access(value, os.R_OK | (os.X_OK if folder else 0)):
                kind, mode = ("a directory", "u+rx") if folder else ("a file", "u+r")
                instead = self.instead or f"{kind} you can read"
                self.fail(f"{value} is not readable by this user; make it readable (`chmod "
                          f"{mode} {value}` if it is yours, else ask its owner) or give "
                          f"{instead}", param, ctx)  # fmt: skip
        return super().convert(value, param, ctx)


class ExistingFile(ReadablePath):
    """A file that must exist, checked while parsing (before torch is imported), with the
    closest names beside it suggested for a typo; ``what`` names the kind of file, and
    ``pattern`` the files a directory given instead may hold (``studies`` for
    ``studies/*.yaml``: a newcomer's first guess), listed so the command can be written;
    ``hint``, said of a missing file, where such a file comes from."""

    def __init__(self, what: str = "study file", pattern: str = "*.yaml", *,
                 must_exist: bool = True, path_type: type | None = None,
                 hint: str = "") -> None:  # fmt: skip
        super().__init__(path_type=path_type)
        self.what, self.pattern, self.must_exist, self.hint = what, pattern, must_exist, hint

    def convert(self, value, param, ctx):
        value = expand_home(value)
        path = Path(value)
        if path.is_dir():
            many = param is not None and param.nargs == -1
            self.fail(_a_directory(path, self.what, self.pattern, many), param, ctx)
        wanted = f"the {self.what}"
        if self.must_exist and (
            nowhere := _leads_nowhere(path, wanted, f"or give {wanted}'s own path")
        ):
            self.fail(nowhere, param, ctx)
        if self.must_exist and not path.exists():
            hint = f" ({self.hint})" if self.hint else ""
            near = _did_you_mean(path) or _what_there_is(path, self.what, self.pattern)
            self.fail(f"{value}: no such file.{near}{hint}", param, ctx)
        return super().convert(value, param, ctx)


def _leads_nowhere(path: Path, wanted: str, instead: str) -> str | None:
    """What is wrong with the symbolic link on ``path`` (itself or a folder it passes
    through) that leads nowhere, one that loops (as `ln -s L L` makes) or whose target is
    missing, and what to do: point it at ``wanted`` (what ``path`` should be; a folder on the
    way, a directory) or ``instead``; None where there is none. Such a path does not "exist",
    and was called "no such results directory" (or file), which sent the user looking for
    what the link hides."""
    for link in (path, *path.parents):
        if not link.is_symlink():
            continue
        try:
            link.stat()
            continue
        except OSError as exc:
            why = "it loops" if exc.errno == errno.ELOOP else "its target is missing"
        where, want = ("", wanted) if link == path else (f" (on the way to {path})", "a directory")
        return (f"{link}{where} is a link that leads nowhere and cannot be read: {why} (it "
                f"points to {os.readlink(link)}); point it at {want} (`ln -sfn TARGET {link}`) "
                f"{instead}")  # fmt: skip
    return None


def _a_directory(path: Path, what: str, pattern: str, many: bool) -> str:
    """What to write instead of a directory: its files, all at once where the argument takes
    several (a shell expands ``studies/*.yaml``), else one of them."""
    inside = sorted(p.name for p in path.glob(pattern) if p.is_file())
    if not inside:
        return f"{path} is a directory, not a {what}: name the {what} itself"
    shown = ", ".join(inside[:4]) + (", ..." if len(inside) > 4 else "")
    if many:
        return (f"{path} is a directory, not a {what}: name the files in it, e.g. "
                f"{path / pattern} for all of them ({shown})")  # fmt: skip
    return (f"{path} is a directory, not a {what}: name one file in it, e.g. "
            f"{path / inside[0]} ({shown})")  # fmt: skip


def _did_you_mean(path: Path) -> str:
    """Files named like ``path`` beside where it points, and in studies/ for a bare name
    (``repro run degradation.yaml`` from the checkout, without the folder). Names are compared
    without their extensions: with them, every ``.yaml`` shared five letters, and ``nope.yaml``
    was offered ``smoke.yaml``."""
    import difflib

    files = [p for f in _folders(path) for p in f.iterdir() if p.is_file()]
    stems = {_stem(p) for p in files}
    close = difflib.get_close_matches(_stem(path), stems, n=3, cutoff=0.6)
    named = dict.fromkeys(str(p) for c in close for p in files if _stem(p) == c)
    return f" Did you mean {' or '.join(list(named)[:3])}?" if named else ""


def _what_there_is(path: Path, what: str, pattern: str) -> str:
    """With no name close enough, the files of the kind wanted (``pattern``) that there are:
    in studies/ for a bare name when it holds some (where a newcomer's studies are), else
    beside where ``path`` points; or that the folder it names is not there either."""
    if not path.parent.is_dir():
        return f" There is no folder {path.parent} either."
    for folder in reversed(_folders(path)):
        found = sorted(str(p) for p in folder.glob(pattern) if p.is_file())
        if found:
            shown = ", ".join(found[:8]) + (", ..." if len(found) > 8 else "")
            return f" No {what} is named like it; those in {folder}: {shown}."
    return ""


def _folders(path: Path) -> list[Path]:
    """Where a file meant by ``path`` may be: its folder (the current one when that does not
    exist), and studies/ too for a bare name."""
    folders = [path.parent if path.parent.is_dir() else Path(".")]
    if path.parent == Path(".") and Path("studies").is_dir():
        folders.append(Path("studies"))
    return folders


def _stem(path: Path) -> str:
    """A file's name without its extensions: ``s.tar.gz`` -> ``s``; a dot-file keeps its name."""
    return path.name.split(".")[0] or path.name


class Folder(ReadablePath):
    """A directory option (--results, --data-dir, --profile); a regular file given instead
    is refused with what the option wants (click's own words name no remedy). ``store``: the
    option names a run store, where an archive from `repro export` is a likely slip; ``data``:
    it names the data set's folder, where the downloaded CIFAR-10 archive is one."""

    def __init__(self, wants: str, *, store: bool = False, data: bool = False) -> None:
        super().__init__(path_type=Path)
        self.wants, self.store, self.data = wants, store, data

    def convert(self, value, param, ctx):
        value = expand_home(value)
        path = Path(value)
        if nowhere := _leads_nowhere(path, "a directory", "or remove it"):
            self.fail(f"{nowhere}; {self.wants}", param, ctx)
        if path.exists() and not path.is_dir():
            message = f"{value} is a file, not a directory; {self.wants}"
            if self.store and path.name.endswith((".tar.gz", ".tgz", ".tar")):
                message += (f"; an archive from `repro export` is merged into a store with "
                            f"`repro import {value} --results DIR`")  # fmt: skip
            if self.data and path.name.endswith((".tar.gz", ".tgz")):
                message += (f"; an archive of CIFAR-10 is extracted first: `tar xzf {value} -C "
                            f"{path.parent}`, then give --data-dir {path.parent}")  # fmt: skip
            self.fail(message, param, ctx)
        return super().convert(value, param, ctx)


class OutputFile(ReadablePath):
    """An output file's option takes any path here (a leading ~ expanded): harness.outputs
    checks it before any work and says what to do with a directory (give a file name) or a
    path that cannot be written."""

    instead = "another file name"

    def convert(self, value, param, ctx):
        return super().convert(expand_home(value), param, ctx)


class FuseWidths(click.ParamType):
    """`repro bench --fuse 1,2,4`: positive group sizes in order, duplicates dropped; checked
    while parsing (before torch is imported), naming the bad item."""

    name = "K[,K...]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        widths = []
        for item in (part.strip() for part in value.split(",")):
            if not item.isdigit() or int(item) < 1:
                where = "" if item == value.strip() else f" in {value!r}"
                bad = (
                    f"{item!r}{where} is not a positive integer"
                    if item
                    else f"an empty item{where}"
                )
                self.fail(f"{bad}; give a comma list of positive group sizes, e.g. 1,2,4,6,8",
                          param, ctx)  # fmt: skip
            widths.append(int(item))
        return tuple(dict.fromkeys(widths))


class GpuCount(click.ParamType):
    """`repro run --gpus`: a positive whole number or 'all', checked while parsing."""

    name = "N|all"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "all":
            return value
        text = value.strip().lower()
        if text == "all":
            return "all"
        if text.isdigit() and int(text) >= 1:
            return int(text)
        self.fail(f"{value!r} is not a number of GPUs; give {GPU_COUNT}", param, ctx)

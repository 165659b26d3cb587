"""The options of a ``%%lazycache`` line, parsed and checked where they
enter: one ``UsageError`` line for bad input, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import io
import os

from IPython.core.error import UsageError

from . import magic_help

PREFIX = "lazycache:"
MAGIC = "%%lazycache"


def is_lazycache_cell(text: str) -> bool:
    """The cell starts with ``%%lazycache`` (the line's text, leading space removed)."""
    return text.startswith(MAGIC) and (len(text) == len(MAGIC) or text[len(MAGIC)].isspace())


class HelpRequested(Exception):
    """``--help`` (or ``-h``) was among the options: ``str(exc)`` is the help
    text to show instead of running the cell."""


#: --files paths already reported as missing this session (one line each).
_missing_files: set = set()


def parse_line(line: str, parser: argparse.ArgumentParser):
    """Parse and validate the options of a ``%%lazycache`` line.

    Words are split the way a shell splits them (quotes group, backslashes
    escape), so ``--files "my data.csv"`` names one file. Returns the
    argparse namespace; raises :class:`UsageError` (one line) for bad input
    and :class:`HelpRequested` (carrying the help text) for ``--help``.
    ``--files`` paths are expanded (``~``) and checked: a folder or a device
    is refused, a missing path is reported once and keyed as missing.
    """
    parsed = _parsed_lines.get(line)
    if parsed is None:
        parsed = _parse_words(line, parser)
        if len(_parsed_lines) >= 64:
            _parsed_lines.clear()
        _parsed_lines[line] = parsed
    args = argparse.Namespace(**vars(parsed))  # callers may change theirs; the memo's stays as parsed
    args.deps = list(parsed.deps)
    args.files = [_check_file(p) for p in parsed.files]  # every time: files come and go
    return args


#: Options by line: a cell run again (every hit) skips shlex and argparse.
_parsed_lines: dict = {}


def _parse_words(line: str, parser: argparse.ArgumentParser):
    """The pure part of :func:`parse_line`: the words, parsed and validated."""
    import shlex

    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%%lazycache {line.strip()[:80]}: {exc}") from None
    if "-h" in words or "--help" in words:
        raise HelpRequested(magic_help.cell_help(parser))
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            args = parser.parse_args(words)
    except (UsageError, SystemExit) as exc:
        raise UsageError(f"%%lazycache {line.strip()[:80]}: {exc}") from None
    for name in args.deps:
        if not name.isidentifier():
            raise UsageError(f"lazycache: --deps takes variable names; {name!r} is not one")
    return args


def _check_file(path: str) -> str:
    """A ``--files`` path, checked where it enters (see :func:`parse_line`)."""
    import stat

    path = os.path.expanduser(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if path not in _missing_files:
            _missing_files.add(path)
            print(f"{PREFIX} --files {path} does not exist; it is part of the key as missing.")
        return path
    except OSError as exc:  # the cell runs uncached when hashing it fails too
        raise UsageError(f"lazycache: --files {path} cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"lazycache: --files takes files; {path} is a folder")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"lazycache: --files takes regular files; {path} is a device, pipe or socket")
    return path

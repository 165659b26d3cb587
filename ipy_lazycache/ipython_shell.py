"""What the run sequence asks of the shell, done by IPython: show recorded
outputs, show a value's display, format a value, run a line magic, record
what the body shows, and note each entry a cell uses in the export list."""

from __future__ import annotations

import ast
import os
import sys

from .capture import Capture, flush_inline_figures, jsonable, replay, show_result
from .core.sequence import PREFIX, local_tier
from .core.shell import Shell
from .progress import Progress


class IPythonShell(Shell):
    """The IPython shell as the run sequence sees it (see :class:`.core.sequence.Shell`)."""

    def __init__(self, magics):
        self.magics = magics

    def show(self, outputs):
        replay(self.magics.shell, outputs)

    def show_result(self, result):
        show_result(self.magics.shell, result)

    def format(self, value):
        data, metadata = self.magics.shell.display_formatter.format(value)
        return jsonable(data), jsonable(metadata)

    def run_magic(self, name, line):
        self.magics.shell.run_line_magic(name, line)

    def record(self):
        capture = Capture(self.magics.shell)
        capture.__enter__()
        sys.displayhook = capture.pause(sys.displayhook)  # IPython's display trap puts it back
        return capture

    def input_server(self):
        return getattr(self.magics.shell, "kernel", None)  # ipykernel's, which serves input() and getpass()

    def describe_folder(self, store):
        root = getattr(store, "root", None)
        where = os.path.abspath(root) if root is not None else str(store)
        setting = getattr(self.magics, "dir_setting", None)
        return f"{where} ({setting})" if setting else where

    def settle(self):
        flush_inline_figures()

    def progress(self, label):
        return Progress(label)  # a bar only after 2 s

    def used(self, store, key):
        """Note in the cache folder's export list that this cell uses ``key``."""
        magics = self.magics
        try:
            from . import export

            local = local_tier(store)
            cell = export.cell_identity(getattr(magics, "_cell_info", None))
            notebook = export.notebook_path(magics.shell)
            # A hit of a cell this session recorded reads the list only if
            # someone changed it since (its stat differs): every hit would
            # otherwise read and parse it to find the record already there.
            recorded = magics.__dict__.setdefault("_exported", {})
            where = (id(local), notebook, cell)
            last = recorded.get(where)
            if last is not None and last[0] == key and _stat_of(last[1]) == last[2]:
                return
            path = export.record(local, key, cell, notebook)
            stat = _stat_of(path) if path is not None else None
            if stat is not None:
                recorded[where] = (key, path, stat)
        except Exception as exc:
            if "export" not in magics._warned:
                magics._warned.add("export")
                print(f"{PREFIX} could not update the export list ({type(exc).__name__}: {exc}).")


def _stat_of(path):
    """What tells a file changed: inode, size and modification time."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def show_as_recorded(formatter, value, shown: dict) -> None:
    """The next display of ``value`` (the hit's, by IPython's displayhook)
    shows what the run showed: a restored object may format otherwise (a
    label laid out by the inline backend after the run's display)."""
    original = formatter.format

    def format(obj, *args, **kwargs):
        vars(formatter).pop("format", None)  # once, whatever it is asked
        if obj is value:
            return dict(shown.get("data") or {}), dict(shown.get("metadata") or {})
        return original(obj, *args, **kwargs)

    formatter.format = format


def cell_magic_of(tree) -> str | None:
    """The name of the cell magic the cell is a call of, or None."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    call = tree.body[0].value
    if (
        isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "run_cell_magic"
        and bool(call.args) and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
    ):
        return call.args[0].value
    return None

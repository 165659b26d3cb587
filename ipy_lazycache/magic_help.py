"""What the magics say about themselves: ``%%lazycache --help`` as it is
typed, and the commands only ``%lazycache`` has, for its help and errors."""

from __future__ import annotations

import argparse

#: Commands only the line magic has (``auto`` is run before parsing; listed for help and errors).
LINE_EXTRA = [("stats", "this session's hits and misses"),
              ("auto", "cache every slow cell, no cell magic needed: auto on|off [--min-time S]")]

WHY_HELP = """usage: %lazycache why [CELL_ID]
       %lazycache why NOTEBOOK.ipynb [CELL_ID] [--dir D]

Why the last cached cell (or the cell CELL_ID, where the front end gives cell
ids) was restored, missed or ran uncached this session. For a miss, what
differs from the nearest earlier entry of the same cell: the code lines, a
variable's content (an array's shape or which elements, a data frame's
columns), a function's code, a module, a file, an environment variable, a
seed or an option. With a notebook: each cell's entry in the cache folder
(as `ipy-lazycache why NOTEBOOK [CELL_ID]`)."""


def cell_help(options: argparse.ArgumentParser) -> str:
    """The usage as it is typed and every option of ``options`` (the cell
    magic's parser), ``--off`` and ``--help`` included (read before parsing)."""
    parser = argparse.ArgumentParser(
        prog="%%lazycache", parents=[options], add_help=False,
        description="Cache this cell: restore its variables and outputs when its code and the content of "
                    "everything it reads are unchanged; otherwise run it. Must be the cell's first line, or the "
                    "line below a cell magic that runs its body itself (%%time).")
    parser.add_argument("--off", action="store_true", help="run the cell plainly (auto mode's opt-out)")
    parser.add_argument("-h", "--help", action="store_true", help="show this help and run nothing")
    return parser.format_help()

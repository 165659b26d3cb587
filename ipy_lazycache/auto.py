"""Auto mode's policy: which cells it caches, when their inputs are hashed,
and how it is switched on (``%lazycache auto``, the environment).

No IPython here: the glue (:mod:`.magics`) asks these functions at its
events, and the run sequence (:mod:`.core.sequence`) asks :class:`Codes`.
"""

from __future__ import annotations

import argparse
import ast
import os

PREFIX = "lazycache:"

#: Cells whose inputs would take longer than this (µs, estimated) to hash
#: are only timed on their first run, so a cheap cell reading a large array
#: pays nothing; a slow one is keyed from its next run on.
BUDGET = 300

#: The record of code that has entries or ran slowly: ``codes/<hash>``.
CODES = "codes"

DEFAULT_MIN_TIME = 1.0


def eligible(raw: str) -> bool:
    """Auto mode leaves alone other cell magics and cells that opt out."""
    if raw.startswith("%%"):
        return False
    first = raw.split("\n", 1)[0].strip().lower().replace(" ", "")
    return first != "#lazycache:off"


def only_setup(tree) -> bool:
    """Cells that only import or run magics (``%matplotlib``, ``%config``)
    always run: caching them would gain nothing and hide their effects."""
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            func = stmt.value.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) and \
                    isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython":
                continue
        return False
    return True


def keeps(duration: float, min_time: float) -> bool:
    """A run auto mode stores: a cheap cell always runs, so its effects always happen."""
    return duration >= min_time


class Codes:
    """Code hashes known to have entries or slow runs: only their inputs are
    hashed however large (the code is looked up first, §10 of the design)."""

    def __init__(self):
        self._known: set[str] = set()

    def known(self, store, code) -> bool:
        if code in self._known:
            return True
        try:
            known = store.has(f"{CODES}/{code}")
        except Exception:
            known = False
        if known:
            self._known.add(code)
        return known

    def mark(self, local, code):
        """Record ``code`` in the cache folder's own tier ``local``."""
        if not code or code in self._known:
            return
        self._known.add(code)
        try:
            local.put(f"{CODES}/{code}", b"")
        except Exception:
            pass  # a read-only folder: the next session times the cell again

    def budget(self, store, code):
        """The hashing budget for a cell: none for code known slow or stored,
        :data:`BUDGET` for code never seen slow."""
        return None if self.known(store, code) else BUDGET


def from_environment(settings, environ=os.environ):
    """IPY_LAZYCACHE_AUTO / _AUTO_MIN_TIME turn auto mode on for a team, a
    docs build or a JupyterLite site without touching notebooks. Sets
    ``settings.auto`` and ``settings.auto_min_time``; a bad value is one line."""
    on = environ.get("IPY_LAZYCACHE_AUTO", "").strip().lower()
    if on in ("1", "true", "on", "yes"):
        settings.auto = True
    elif on not in ("", "0", "false", "off", "no"):
        print(f"{PREFIX} IPY_LAZYCACHE_AUTO={on!r} is not on/off; auto mode stays off.")
    min_time = environ.get("IPY_LAZYCACHE_AUTO_MIN_TIME", "").strip()
    if min_time:
        try:
            value = float(min_time)
            if not 0 <= value < 1e9:
                raise ValueError
            settings.auto_min_time = value
        except ValueError:
            print(f"{PREFIX} IPY_LAZYCACHE_AUTO_MIN_TIME={min_time!r} is not a number of seconds; using "
                  f"{settings.auto_min_time:g}.")


def command(settings, words):
    """``%lazycache auto [on|off] [--min-time S]`` on ``settings`` (``.auto``,
    ``.auto_min_time``); bad input raises :class:`.manage.BadInput`."""
    from .manage import BadInput

    parser = argparse.ArgumentParser(prog="%lazycache auto", description="Cache every cell that runs at least "
                                     "--min-time seconds, with no %%lazycache line.", exit_on_error=False)
    parser.add_argument("state", nargs="?", choices=["on", "off"], help="turn auto mode on or off")
    parser.add_argument("--min-time", type=float, default=None, metavar="S",
                        help="store only cells whose run took at least S seconds (default 1)")
    if "-h" in words or "--help" in words:
        print(parser.format_help())
        return
    try:
        args = parser.parse_args(words)
    except (argparse.ArgumentError, SystemExit) as exc:
        raise BadInput(f"%lazycache auto: {exc}") from None
    if args.min_time is not None:
        if not 0 <= args.min_time < 1e9:
            raise BadInput(f"%lazycache auto: --min-time {args.min_time:g} is not a number of seconds")
        settings.auto_min_time = args.min_time
    if args.state:
        settings.auto = args.state == "on"
    print(f"{PREFIX} auto mode is {'on' if settings.auto else 'off'}"
          + (f": cells that run {settings.auto_min_time:g} s or more are cached." if settings.auto else "."))


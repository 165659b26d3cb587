"""Run cells in a new Python process: a kernel restart, for real.

``session(folder, cells, names)`` starts a process with a real IPython
``InteractiveShell`` in ``folder``, loads the extension (unless
``magic=False``, which also drops ``%%lazycache`` lines: the plain run to
compare with), runs each cell and returns, per cell, what it printed and
whether it succeeded, plus ``repr`` of the requested names afterwards.

A cell that fails raises :class:`CellFailed` unless its index is in
``fails`` (a test that wants a failure names it), so a broken cell can never
pass as "the values are equal on both sides"; a failing ``%load_ext`` always
raises.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = r"""
import io, json, sys, contextlib
from IPython.core.interactiveshell import InteractiveShell
spec = json.load(open(sys.argv[1]))
sh = InteractiveShell.instance()
loaded = None
if spec["magic"]:
    r = sh.run_cell("%load_ext ipy_lazycache", store_history=False)
    loaded = r.success and "lazycache" in sh.magics_manager.magics["cell"]
cells = []
for code in spec["cells"]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        r = sh.run_cell(code, store_history=True)
    cells.append({"out": out.getvalue(), "err": err.getvalue(), "ok": r.success,
                  "error": repr(r.error_before_exec or r.error_in_exec)})
values = {}
for name in spec["names"]:
    try:
        values[name] = repr(eval(name, sh.user_ns))
    except Exception as exc:
        values[name] = f"<{type(exc).__name__}>"
json.dump({"cells": cells, "values": values, "loaded": loaded}, open(sys.argv[2], "w"))
"""


class CellFailed(AssertionError):
    """A cell of a fresh session failed though the test did not say it may."""


def session(folder, cells, names=(), magic=True, env=None, timeout=120, fails=()):
    """``fails``: indices of cells expected to fail (any other failing cell raises :class:`CellFailed`)."""
    folder = str(folder)
    if not magic:
        cells = ["\n".join(l for l in c.split("\n") if not l.startswith("%%lazycache")) for c in cells]
    spec, out = os.path.join(folder, ".spec.json"), os.path.join(folder, ".out.json")
    with open(spec, "w") as f:
        json.dump({"cells": list(cells), "names": list(names), "magic": magic}, f)
    environ = {**os.environ, "PYTHONPATH": ROOT, "MPLBACKEND": "agg", **(env or {})}
    environ.pop("IPY_LAZYCACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, spec, out], cwd=folder, env=environ,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"session failed:\n{proc.stdout}\n{proc.stderr}")
    with open(out) as f:
        result = json.load(f)
    result["runs"] = runs_in(folder)
    if magic and not result["loaded"]:
        raise CellFailed("%load_ext ipy_lazycache failed in the fresh session")
    bad = [(i, c["error"], c["out"][-600:], c["err"][-600:]) for i, c in enumerate(result["cells"])
           if not c["ok"] and i not in fails]
    if bad:
        raise CellFailed(f"cells failed in the fresh session ({folder}): {bad}")
    return result


def runs_in(folder, name="runs.txt") -> int:
    try:
        with open(os.path.join(str(folder), name)) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


#: A line a cached body appends to, so a test can tell a run from a hit.
RUN = 'open("runs.txt", "a").write("run\\n")\n'


def twice(tmp_path, cells, names):
    """The plain run's values, then two sessions with the extension (a restart between)."""
    plain = tmp_path / "plain"
    plain.mkdir()
    expected = session(plain, cells, names, magic=False)["values"]
    work = tmp_path / "work"
    work.mkdir()
    return expected, session(work, cells, names), session(work, cells, names)

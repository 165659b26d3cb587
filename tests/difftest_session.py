"""One session of the differential tester, in its own process (``python tests/difftest.py session SPEC OUT``).

A real ``InteractiveShell`` runs the cells of ``SPEC`` and writes, per cell, what was printed, displayed and raised,
whether the cell's own code ran (:class:`RunProbe`) and the process state after it; at the end, the namespace as
:mod:`difftest_describe` sees it and each name's content hash by the extension's own hasher. With the magic, two
oracles watch the extension's key and store steps: the namespace must be the same before and after each.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import random
import re
import sys
import types

import difftest_describe as dd

STATUS = "lazycache:"
SEED = 20261205  # both chains start from the same generator states, so unseeded draws are comparable too
_INPUT = re.compile(r"<ipython-input-(\d+)-[0-9a-f]+>")  # the hash is of the raw cell, which has the magic line
_IPY_NAMES = re.compile(r"^(_i+|_i\d+|_\d+|_dh|_oh|_ih|In|Out|exit|quit|get_ipython|__builtins?__|_{1,3})$")
#: The extension's steps the oracles watch: (step, function name), looked up in its modules.
ORACLE_STEPS = (("key", "plan"), ("store", "save"))


def clean(text: str) -> str:
    """Drop the extension's own status lines; memory addresses differ between processes."""
    lines = [ln for ln in text.splitlines(keepends=True) if not ln.startswith(STATUS)]
    return _INPUT.sub(r"<ipython-input-\1-?>", dd.ADDR.sub("0x?", "".join(lines)))


def user_names(shell) -> list:
    ns, hidden = shell.user_ns, set(shell.user_ns_hidden)
    return sorted(k for k in ns if k not in hidden and not _IPY_NAMES.match(k)
                  and not (k.startswith("__") and k.endswith("__")))


def describe_namespace(shell) -> dict:
    """Every user name, ``_``/``__``/``___`` and ``Out`` (history is observable), walked with one identity memo."""
    ns = shell.user_ns
    d = dd.Describer(ns)
    out = {k: d.describe(k, ns[k]) for k in user_names(shell)}
    for k in ("_", "__", "___"):
        if k in ns:
            out[f"history {k}"] = d.describe(k, ns[k])
    out["history Out"] = {str(n): d.describe(f"Out[{n}]", x) for n, x in sorted(ns.get("Out", {}).items())}
    out["arrays sharing memory"] = d.sharing()
    return out


def value_hashes(shell) -> dict:
    """Each name's content hash by the extension's hasher: a restored def must hash like the value a run made."""
    try:
        from ipy_lazycache.hashing import Unhashable, value_hash
    except ImportError as exc:
        return {"<hasher>": f"{dd.CANNOT}: the extension's value_hash is gone ({exc})>"}
    out = {}
    for k in user_names(shell):
        try:
            out[k] = value_hash(shell.user_ns[k])
        except Unhashable:
            out[k] = "<unhashable>"
        except Exception as exc:  # noqa: BLE001
            out[k] = f"{dd.CANNOT}: hashing raised {type(exc).__name__}>"
    return out


def first_statement(code: str) -> str | None:
    """The cell's own first statement as IPython parses it (the magic line blanked, as the extension does)."""
    from IPython.core.inputtransformer2 import TransformerManager

    lines = code.split("\n")
    if lines[0].startswith("%%lazycache"):
        lines[0] = ""
    try:
        tree = ast.parse(TransformerManager().transform_cell("\n".join(lines)))
    except SyntaxError:
        return None
    return ast.dump(tree.body[0]) if tree.body else None


class RunProbe(ast.NodeTransformer):
    """The last AST transformer: sees the tree that is about to run. The cell's own code ran iff that tree holds
    the cell's first statement (a hit gives the extension's replacement tree instead). A fact about what ran,
    not the extension's word."""

    def __init__(self):
        self.want, self.ran = None, False

    def start(self, code: str):
        self.want, self.ran = first_statement(code), False

    def visit(self, node):
        if self.want is not None and any(ast.dump(s) == self.want for s in getattr(node, "body", ())):
            self.ran = True
        return node


class Oracles:
    """Wraps the extension's key and store steps: a canonical description of the namespace before and after each
    must be equal (keying and storing never change the user's objects). ``reached`` counts the calls, so a step
    the wrappers no longer find is reported instead of passing unseen."""

    def __init__(self, shell):
        self.shell, self.found, self.reached, self.changes = shell, {}, {s: 0 for s, _ in ORACLE_STEPS}, []
        self.cell = 0
        mods = [(n, m) for n, m in list(sys.modules.items())
                if n.startswith("ipy_lazycache") and isinstance(m, types.ModuleType)]
        wrapped = {}  # id(function) -> its wrapper
        for name, mod in mods:
            for step, fname in ORACLE_STEPS:
                fn = vars(mod).get(fname)
                if isinstance(fn, types.FunctionType) and fn.__module__ == name:
                    wrapped[id(fn)] = self._wrap(step, fn)
                    self.found[step] = f"{name}.{fname}"
        for _, mod in mods:  # every binding of the step, under any name (``from .plan import plan as make_plan``)
            for k, v in list(vars(mod).items()):
                if id(v) in wrapped and isinstance(v, types.FunctionType):
                    setattr(mod, k, wrapped[id(v)])

    def _snapshot(self) -> dict:
        d = dd.Describer(self.shell.user_ns)
        return {k: d.describe(k, self.shell.user_ns[k]) for k in user_names(self.shell)}

    def _wrap(self, step, fn):
        def watched(*args, **kwargs):
            before = self._snapshot()
            try:
                return fn(*args, **kwargs)
            finally:
                after = self._snapshot()
                self.reached[step] += 1
                for k in sorted(set(before) | set(after)):
                    if before.get(k) != after.get(k):
                        self.changes.append({"cell": self.cell, "step": step, "name": k,
                                             "before": before.get(k, "<unbound>"), "after": after.get(k, "<unbound>")})

        return watched

    def report(self) -> dict:
        return {"found": self.found, "reached": self.reached, "changes": self.changes}


def stale_dunders(shell, done: set):
    """Mutant ``stale-dunder``: each notebook class's ``__eq__`` (or ``__init__``) becomes a wrapper with the same
    behaviour but other code, as a stale restore of an older class would leave it. The tester must see it."""
    for v in list(shell.user_ns.values()):
        if isinstance(v, type) and v.__module__ == "__main__" and id(v) not in done:
            for dunder in ("__eq__", "__init__"):
                old = v.__dict__.get(dunder)
                if isinstance(old, types.FunctionType):
                    def stale(self, *args, _old=old, **kwargs):
                        return _old(self, *args, **kwargs)

                    setattr(v, dunder, stale)
                    done.add(id(v))
                    break


def _start(spec):
    os.chdir(spec["cwd"])
    sys.path.insert(0, "")  # as in a kernel: the notebook's folder provides modules
    import numpy as np
    from IPython.core.interactiveshell import InteractiveShell

    random.seed(SEED)
    np.random.seed(SEED % 2**32)
    shell = InteractiveShell.instance()
    shell.run_line_magic("colors", "nocolor")
    shell.enable_gui = lambda gui=None: None  # as ipykernel's shell does for the inline backend
    loaded = None
    if spec["magic"]:
        r = shell.run_cell("%load_ext ipy_lazycache", store_history=False)
        magics = shell.magics_manager.registry.get("LazyCache")
        loaded = bool(r.success and "lazycache" in shell.magics_manager.magics["cell"] and magics is not None)
        if spec.get("auto"):
            loaded = loaded and getattr(magics, "auto", False) is True
    return shell, loaded


def run_session(spec_path: str, out_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    shell, loaded = _start(spec)
    oracles = Oracles(shell) if spec["magic"] else None
    probe = RunProbe()
    shell.ast_transformers.append(probe)
    shown, publish = [], shell.display_pub.publish

    def spy(data, metadata=None, source=None, *, transient=None, update=False, **kw):
        shown.append({"data": {k: (x if isinstance(x, str) else dd.digest(repr(x).encode()))
                               for k, x in sorted(data.items())},
                      "metadata": json.loads(json.dumps(metadata or {}, default=repr)),
                      "transient": json.loads(json.dumps(transient or {}, default=repr)), "update": update})
        return publish(data, metadata, transient=transient, update=update, **kw)

    shell.display_pub.publish = spy
    cells, mutated = [], set()
    for i, code in enumerate(spec["cells"]):
        out, err = io.StringIO(), io.StringIO()
        shown.clear()
        probe.start(code)
        if oracles:
            oracles.cell = i + 1
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            result = shell.run_cell(code, store_history=True)
        if spec.get("mutant") == "stale-dunder" and spec["magic"]:
            stale_dunders(shell, mutated)
        exc = result.error_before_exec or result.error_in_exec
        raw = out.getvalue() + err.getvalue()
        displays = [{**d, "data": {k: clean(x) for k, x in d["data"].items()}} for d in shown
                    if not any(str(x).startswith(STATUS) for x in d["data"].values())]
        cells.append({
            "stdout": clean(out.getvalue()), "stderr": clean(err.getvalue()), "displays": displays,
            "error": f"{type(exc).__name__}: {exc}" if exc else None,
            "status": [ln for ln in raw.splitlines() if ln.startswith(STATUS)],
            "ran": probe.ran,
            "state": {**dd.environment_state(), **dd.shell_state(shell)},
        })
    result = {"loaded": loaded, "cells": cells, "namespace": describe_namespace(shell),
              "hashes": value_hashes(shell), "oracles": oracles.report() if oracles else None}
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1, default=repr)

"""Differential tester: a hit must be indistinguishable from a run (DESIGN §9).

Generates small notebooks from a grammar with a seeded RNG, runs each one with
``%%lazycache`` and without it (the same cells, the magic line stripped), each
session in a fresh Python process with a real ``InteractiveShell``, and
compares what a user could notice: every cell's printed text, displays and
errors, and at the end a canonical description of the namespace (types,
content, identity relations, views) and of process state (random generators,
``DT_*`` environment variables, working directory, changed rcParams).

A scenario is ten sessions: the notebook's version 1 (populates the cache),
version 1 again after a restart (hits), version 2, an edited notebook (must
miss where it should), then version 1 and version 2 again (back and forth:
every cell hits an entry, which must be the right one); each with the magic
(one cache folder per scenario) and without. Session k with the magic is compared to session k
without. Lines starting with ``lazycache:`` are the extension's own status
and are dropped before comparing.

The notebook is made of independent *motifs* (a few cells exercising one
feature, with unique names), so a difference can be attributed to the motif
whose cell or name differs, and confirmed by running that motif alone.

Run as a script::

    python tests/difftest.py run [--n N] [--seed S] [--confirm]   # a batch, prints reports
    python tests/difftest.py session SPEC OUT                     # one session (internal)

``IPY_LAZYCACHE_DIFF_PKG`` is the folder whose ``ipy_lazycache`` the sessions
import (default: the repository holding this file), so the tester can be
pointed at another checkout, e.g. a worktree of an older commit.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MAGIC = "%%lazycache"
STATUS = "lazycache:"
SESSIONS = ("v1 first run", "v1 after restart", "v2 (edited) after restart", "v1 again", "v2 again")
VERSIONS = (1, 1, 2, 1, 2)


def package_dir() -> str:
    return os.environ.get("IPY_LAZYCACHE_DIFF_PKG") or REPO


# ---------------------------------------------------------------------------------------------------------------------
# The notebook model


PREV = "<prev>"  # in a cell's text: the execution count of the cell before it (so a motif can run alone)


@dataclass
class Cell:
    v1: str
    v2: str
    cached: bool = False
    opts: str = ""  # options of the magic line, e.g. "--deps base"
    raises: bool = False  # the cell raises on purpose (the error itself must be the same)

    def text(self, version: int, magic: bool, count: int = 0) -> str:
        body = (self.v1 if version == 1 else self.v2).replace(PREV, str(count - 1))
        return f"{MAGIC} {self.opts}".rstrip() + f"\n{body}" if (magic and self.cached) else body


@dataclass
class Motif:
    tag: str  # the feature class, e.g. "seed-draw"
    variant: str  # which form of it, e.g. "np"
    cells: list = field(default_factory=list)
    files1: dict = field(default_factory=dict)  # local modules, version 1
    files2: dict = field(default_factory=dict)  # and as edited for version 2
    needs: set = field(default_factory=set)  # "pd", "plt"
    seeds: set = field(default_factory=set)  # generators this motif seeds ("random", "np")

    @property
    def label(self) -> str:
        return f"{self.tag}/{self.variant}"


@dataclass
class Notebook:
    motifs: list
    setup_cached: bool = False
    seed: int = 0
    index: int = 0

    def cells(self) -> list:
        """The setup cell, then each motif's cells; ``[(motif or None, Cell)]``."""
        needs = set().union(*(m.needs for m in self.motifs)) if self.motifs else set()
        lines = ["import os, sys, random, functools, dataclasses, collections, enum", "import numpy as np"]
        if "pd" in needs:
            lines.append("import pandas as pd")
        if "plt" in needs:
            # as in a notebook: figures are shown (PNG) and closed after each cell
            lines += ["import matplotlib as mpl", "import matplotlib.pyplot as plt", "%matplotlib inline"]
        setup = "\n".join(lines)
        out = [(None, Cell(setup, setup, self.setup_cached))]
        for m in self.motifs:
            out += [(m, c) for c in m.cells]
        return out

    def sources(self, version: int, magic: bool) -> list:
        return [c.text(version, magic, i) for i, (_, c) in enumerate(self.cells(), 1)]

    def files(self, version: int) -> dict:
        out = {}
        for m in self.motifs:
            out.update(m.files1 if version == 1 else m.files2)
        return out

    def seeded(self) -> list:
        return sorted(set().union(*(m.seeds for m in self.motifs))) if self.motifs else []

    def render(self) -> str:
        """The notebook as a reader would want it in a report: v1, with v2 edits marked."""
        rows = []
        for files_v in (1, 2):
            for path, text in sorted(self.files(files_v).items()):
                if files_v == 2 and self.files(1).get(path) == text:
                    continue
                rows.append(f"  file {path} (v{files_v}): " + text.strip().replace("\n", "\n    "))
        for i, (m, c) in enumerate(self.cells(), 1):
            head = f"  [{i}]" + (f" ({m.label})" if m else " (setup)")
            rows.append(head)
            v1, v2 = c.text(1, True, i), c.text(2, True, i)
            rows += ["    " + line for line in v1.splitlines()]
            if v2 != v1:
                rows.append("    -- v2:")
                rows += ["    " + line for line in v2.splitlines() if not line.startswith(MAGIC)]
        return "\n".join(rows)


# ---------------------------------------------------------------------------------------------------------------------
# The grammar: each motif is a function of (Gen) adding one Motif with fresh names.


class Gen:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.n = 0
        self.count = 1  # execution count of the next cell (the setup cell is 1)

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def edit(self) -> bool:
        return self.rng.random() < 0.6

    def lit(self, lo=1, hi=9):
        """A literal, and the literal version 2 has (changed or not)."""
        a = self.rng.randint(lo, hi)
        return a, (a + 1 if self.edit() else a)

    def maybe(self, p=0.3) -> bool:
        return self.rng.random() < p


def _add(m: Motif, g: Gen, v1: str, v2: str | None = None, cached: bool | None = None, **kw) -> int:
    """Append a cell; returns its execution count. ``cached=None`` caches it sometimes."""
    if cached is None:
        cached = g.maybe(0.3)
    m.cells.append(Cell(v1, v1 if v2 is None else v2, cached, **kw))
    g.count += 1
    return g.count


def m_seed_draw(g: Gen) -> Motif:
    lib = g.rng.choice(["np", "random"])
    m = Motif("seed-draw", lib, seeds={lib})
    s1, s2 = g.lit(0, 5)
    e, f = g.name("draw"), g.name("after")
    if lib == "np":
        _add(m, g, f"np.random.seed({s1})", f"np.random.seed({s2})")
        size = g.rng.randint(1, 3)
        _add(m, g, f"{e} = np.random.normal(size={size})", cached=True)
        if g.maybe(0.6):
            _add(m, g, f"{f} = np.random.rand()")
    else:
        _add(m, g, f"random.seed({s1})", f"random.seed({s2})")
        _add(m, g, f"{e} = [random.randint(0, 10**6) for _ in range({g.rng.randint(1, 3)})]", cached=True)
        if g.maybe(0.6):
            _add(m, g, f"{f} = random.random()")
    return m


def m_history(g: Gen) -> Motif:
    variant = g.rng.choice(["_", "Out[n]", "__"])
    m = Motif("history", variant)
    a, b = g.lit(10, 50)
    y = g.name("hist")
    _add(m, g, f"{a}", f"{b}", cached=False)
    if variant == "__":
        _add(m, g, f"{a + 100}", cached=False)
        _add(m, g, f"{y} = __ * 2", cached=True)
    elif variant == "_":
        _add(m, g, f"{y} = _ * 2", cached=True)
    else:
        _add(m, g, f"{y} = Out[{PREV}] + 1", cached=True)
    return m


_COLLIDING = [(1, 9), (2, 10), (3, 11, 19), (4, 12, 20)]  # same slot mod 8: iteration order = insertion order


def m_set_order(g: Gen) -> Motif:
    variant = g.rng.choice(["list", "first", "join", "dict-keys", "array-order"])
    m = Motif("set-order", variant)
    if variant == "array-order":  # equal arrays, different memory order: tobytes/ravel('K') see it
        x, o = g.name("arr"), g.name("raw")
        c_order = "np.arange(6).reshape(2, 3)"
        _add(m, g, f"{x} = {c_order}", f"{x} = np.asfortranarray({c_order})" if g.edit() else None, cached=False)
        _add(m, g, f"{o} = {x}.ravel(order='K').tolist()", cached=True)
        return m
    if variant == "dict-keys":  # equal dicts, different order: observable, so part of the key
        d, o = g.name("d"), g.name("keys")
        swap = g.edit()
        _add(m, g, f"{d} = {{'a': 1, 'b': 2}}", f"{d} = {{'b': 2, 'a': 1}}" if swap else None, cached=False)
        _add(m, g, f"{o} = list({d})", cached=True)
        return m
    items = list(g.rng.choice(_COLLIDING))
    s, o = g.name("s"), g.name("order")
    v2 = list(reversed(items)) if g.edit() else items
    _add(m, g, f"{s} = {{{', '.join(map(str, items))}}}", f"{s} = {{{', '.join(map(str, v2))}}}", cached=False)
    body = {"list": f"{o} = list({s})", "first": f"{o} = next(iter({s}))", "join": f"{o} = '-'.join(map(str, {s}))"}
    _add(m, g, body[variant], cached=True)
    return m


def m_builtin_subclass(g: Gen) -> Motif:
    variant = g.rng.choice(["str", "list-attr", "dict-attr", "str-attr"])
    m = Motif("builtin-subclass", variant)
    cls, v, r = g.name("Tag"), g.name("tagged"), g.name("derived")
    _add(m, g, f"class {cls}({variant.split('-')[0]}):\n    pass", cached=False)
    a, b = g.lit()
    if variant == "str":
        _add(m, g, f"{v} = {cls}('ab{a}')", f"{v} = {cls}('ab{b}')", cached=False)
        _add(m, g, f"{r} = {v}.upper() + '!'", cached=True)
    elif variant == "str-attr":
        _add(m, g, f"{v} = {cls}('ab')\n{v}.unit = 'u{a}'", f"{v} = {cls}('ab')\n{v}.unit = 'u{b}'", cached=False)
        _add(m, g, f"{r} = {v} + {v}.unit", cached=True)
    elif variant == "list-attr":
        _add(m, g, f"{v} = {cls}([1, 2])\n{v}.unit = 'u{a}'", f"{v} = {cls}([1, 2])\n{v}.unit = 'u{b}'", cached=False)
        _add(m, g, f"{r} = f'{{len({v})}} {{{v}.unit}}'", cached=True)
    else:
        _add(m, g, f"{v} = {cls}(k={a})", f"{v} = {cls}(k={b})", cached=False)
        _add(m, g, f"{r} = {v}['k'] * 3", cached=True)
    return m


def m_function_change(g: Gen) -> Motif:
    variant = g.rng.choice(
        ["wraps", "lru_cache", "partial", "attribute", "two-lambdas", "closure", "default", "method", "separate-defs"]
    )
    m = Motif("function-change", variant)
    f, r = g.name("fn"), g.name("res")
    a, b = g.lit()
    call = f"{r} = {f}(3)"
    if variant == "wraps":  # the edit is in the wrapper, in what it wraps, or in the wrapper's argument
        d, raw = g.name("deco"), g.name("raw")
        deco = (
            "def {d}(k):\n    def wrap(func):\n        @functools.wraps(func)\n        def inner(*args):\n"
            "            return func(*args) + k * {k}\n        return inner\n    return wrap"
        )
        where = g.rng.choice(["wrapper", "wrapped", "argument"])
        _add(m, g, deco.format(d=d, k=a), deco.format(d=d, k=b if where == "wrapper" else a), cached=g.maybe(0.5))
        _add(
            m,
            g,
            f"def {raw}(x):\n    return x * {a}",
            f"def {raw}(x):\n    return x * {b if where == 'wrapped' else a}",
            cached=g.maybe(0.5),
        )
        _add(
            m, g, f"{f} = {d}({a})({raw})", f"{f} = {d}({b if where == 'argument' else a})({raw})", cached=g.maybe(0.5)
        )
    elif variant == "separate-defs":  # two restored functions must keep their own sources (back and forth)
        f0 = g.name("other")
        _add(m, g, f"def {f0}(x):\n    return x + 100", cached=True)
        _add(m, g, f"def {f}(x):\n    return x * {a}", f"def {f}(x):\n    return x * {b}", cached=True)
    elif variant == "lru_cache":
        _add(
            m,
            g,
            f"@functools.lru_cache\ndef {f}(x):\n    return x * {a}",
            f"@functools.lru_cache\ndef {f}(x):\n    return x * {b}",
        )
    elif variant == "partial":
        h = g.name("base")
        _add(m, g, f"def {h}(k, x):\n    return k * x", cached=False)
        _add(m, g, f"{f} = functools.partial({h}, {a})", f"{f} = functools.partial({h}, {b})")
    elif variant == "attribute":
        _add(m, g, f"def {f}(x):\n    return x * {f}.scale", cached=False)
        _add(m, g, f"{f}.scale = {a}", f"{f}.scale = {b}", cached=False)
    elif variant == "two-lambdas":
        f0 = g.name("lam")
        _add(
            m,
            g,
            f"{f0}, {f} = (lambda x: x + 1), (lambda x: x * {a})",
            f"{f0}, {f} = (lambda x: x + 1), (lambda x: x * {b})",
            cached=False,
        )
    elif variant == "closure":
        mk = g.name("make")
        _add(m, g, f"def {mk}(k):\n    def inner(x):\n        return x * k\n    return inner", cached=False)
        _add(m, g, f"{f} = {mk}({a})", f"{f} = {mk}({b})", cached=False)
    elif variant == "default":
        _add(m, g, f"def {f}(x, k={a}):\n    return x * k", f"def {f}(x, k={b}):\n    return x * k", cached=False)
    else:
        c, o = g.name("Cls"), g.name("obj")
        _add(
            m,
            g,
            f"class {c}:\n    def twice(self, x):\n        return x * {a}",
            f"class {c}:\n    def twice(self, x):\n        return x * {b}",
            cached=False,
        )
        _add(m, g, f"{o} = {c}()", cached=False)
        call = f"{r} = {o}.twice(3)"
    _add(m, g, call, cached=True)
    return m


def m_local_module(g: Gen) -> Motif:
    variant = g.rng.choice(["import-edit", "from-edit", "runtime-const", "deco-from-module"])
    m = Motif("local-module", variant)
    mod, r = g.name("nbmod"), g.name("modres")
    a, b = g.lit()
    src = "import math\nCONST = {k}\n\ndef f(x):\n    return x + CONST + math.floor(0.5)\n"
    if variant == "deco-from-module":
        src = (
            "import time, functools\nCONST = {k}\n\ndef timed(func):\n    @functools.wraps(func)\n"
            "    def inner(*a):\n        time.perf_counter()\n        return func(*a) + CONST\n    return inner\n"
        )
    edit_file = variant != "runtime-const"
    m.files1[f"{mod}.py"] = src.format(k=a)
    m.files2[f"{mod}.py"] = src.format(k=b if edit_file else a)
    if variant == "import-edit":
        _add(m, g, f"import {mod}", cached=False)
        _add(m, g, f"{r} = {mod}.f(1)", cached=True)
    elif variant == "from-edit":
        _add(m, g, f"from {mod} import f as {mod}_f", cached=False)
        _add(m, g, f"{r} = {mod}_f(1)", cached=True)
    elif variant == "runtime-const":
        _add(m, g, f"import {mod}", cached=False)
        c1, c2 = a + 10, (a + 11 if g.edit() else a + 10)
        _add(m, g, f"{mod}.CONST = {c1}", f"{mod}.CONST = {c2}", cached=False)
        _add(m, g, f"{r} = {mod}.f(1)", cached=True)
    else:
        fn = g.name("timedfn")
        _add(m, g, f"from {mod} import timed as {mod}_timed", cached=False)
        _add(m, g, f"@{mod}_timed\ndef {fn}(x):\n    return x * 2", cached=True)
        _add(m, g, f"{r} = {fn}(5)", cached=g.maybe(0.5))
    return m


def m_effect(g: Gen) -> Motif:
    """A cached cell with a side effect on process state, observed by a later plain cell."""
    variant = g.rng.choice(
        [
            "np-seed",
            "random-seed",
            "environ",
            "%env",
            "chdir",
            "%cd",
            "rcParams",
            "plt.rc",
            "style",
            "global",
            "mutate-via-helper",
            "draw-advances",
            "pd-option",
            "sys.path",
        ]
    )
    m = Motif("effect-on-hit", variant)
    k, obs = g.name("k"), g.name("seen")
    a, b = g.lit()
    var = f"DT_{g.name('V')}"
    if variant == "np-seed":
        m.seeds.add("np")
        _add(m, g, f"np.random.seed({a})\n{k} = 1", f"np.random.seed({b})\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = np.random.rand()", cached=False)
    elif variant == "random-seed":
        m.seeds.add("random")
        _add(m, g, f"random.seed({a})\n{k} = 1", f"random.seed({b})\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = random.random()", cached=False)
    elif variant == "draw-advances":
        m.seeds.add("np")
        _add(m, g, f"np.random.seed({a})", f"np.random.seed({b})", cached=False)
        _add(m, g, f"{k} = np.random.randint(100)", cached=True)
        _add(m, g, f"{obs} = np.random.randint(100)", cached=False)
    elif variant == "environ":
        _add(m, g, f"os.environ['{var}'] = 'v{a}'\n{k} = 1", f"os.environ['{var}'] = 'v{b}'\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = os.environ.get('{var}')", cached=False)
    elif variant == "%env":
        _add(m, g, f"%env {var}=v{a}\n{k} = 1", f"%env {var}=v{b}\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = os.environ.get('{var}')", cached=False)
    elif variant in ("chdir", "%cd"):
        go = "os.chdir('sub')" if variant == "chdir" else "%cd -q sub"
        _add(m, g, f"{go}\n{k} = {a}", f"{go}\n{k} = {b}", cached=True)
        _add(m, g, f"{obs} = os.path.basename(os.getcwd())", cached=False)
        _add(m, g, "os.chdir(os.environ['DT_NB'])", cached=False)  # back, so later motifs see the notebook folder
    elif variant in ("rcParams", "plt.rc", "style"):
        m.needs.add("plt")
        w1, w2 = a + 0.5, b + 0.5
        if variant == "rcParams":
            v1, v2 = f"plt.rcParams['lines.linewidth'] = {w1}", f"plt.rcParams['lines.linewidth'] = {w2}"
        elif variant == "plt.rc":
            v1, v2 = f"plt.rc('lines', linewidth={w1})", f"plt.rc('lines', linewidth={w2})"
        else:
            s1, s2 = ("ggplot", "bmh") if g.edit() else ("ggplot", "ggplot")
            v1, v2 = f"plt.style.use('{s1}')", f"plt.style.use('{s2}')"
        _add(m, g, f"{v1}\n{k} = 1", f"{v2}\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = (plt.rcParams['lines.linewidth'], plt.rcParams['axes.facecolor'])", cached=False)
        _add(m, g, "mpl.rcdefaults()", cached=False)  # so later motifs start from the defaults
    elif variant == "pd-option":
        m.needs.add("pd")
        _add(
            m,
            g,
            f"pd.set_option('display.max_rows', {a + 10})\n{k} = 1",
            f"pd.set_option('display.max_rows', {b + 10})\n{k} = 1",
            cached=True,
        )
        _add(m, g, f"{obs} = pd.get_option('display.max_rows')", cached=False)
        _add(m, g, "pd.reset_option('display.max_rows')", cached=False)
    elif variant == "sys.path":
        _add(m, g, f"sys.path.append('extra{a}')\n{k} = 1", f"sys.path.append('extra{b}')\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = [p for p in sys.path if p.startswith('extra')]", cached=False)
    elif variant == "global":
        cnt, bump = g.name("counter"), g.name("bump")
        _add(
            m,
            g,
            f"{cnt} = {a}\ndef {bump}():\n    global {cnt}\n    {cnt} += 1\n    return {cnt}",
            f"{cnt} = {b}\ndef {bump}():\n    global {cnt}\n    {cnt} += 1\n    return {cnt}",
            cached=False,
        )
        _add(m, g, f"{k} = {bump}() * 10", cached=True)
        _add(m, g, f"{obs} = {cnt}", cached=False)
    else:
        items, add = g.name("items"), g.name("add")
        _add(m, g, f"{items} = [0]\ndef {add}(v):\n    {items}.append(v)", cached=False)
        _add(m, g, f"{add}({a})\n{k} = len({items})", f"{add}({b})\n{k} = len({items})", cached=True)
        _add(m, g, f"{obs} = list({items})", cached=False)
    return m


def m_relation(g: Gen) -> Motif:
    variant = g.rng.choice(["alias-list", "alias-dict", "np-view", "element", "alias-frame", "instance-class", "enum"])
    m = Motif("relation", variant)
    a, b = g.name("orig"), g.name("rel")
    k1, k2 = g.lit()
    if variant == "alias-list":
        _add(m, g, f"{a} = [1, 2, {k1}]", f"{a} = [1, 2, {k2}]", cached=False)
        _add(m, g, f"{b} = {a}", cached=True)
        _add(m, g, f"{a}.append(99)", cached=False)
    elif variant == "alias-dict":
        _add(m, g, f"{a} = {{'k': {k1}}}", f"{a} = {{'k': {k2}}}", cached=False)
        _add(m, g, f"{b} = {a}\n{b}['n'] = 1", cached=True)
        _add(m, g, f"{a}['z'] = 0", cached=False)
    elif variant == "np-view":
        _add(m, g, f"{a} = np.arange(8.0) * {k1}", f"{a} = np.arange(8.0) * {k2}", cached=False)
        _add(m, g, f"{b} = {a}[::2]", cached=True)
        _add(m, g, f"{a} += 1", cached=False)
    elif variant == "element":
        _add(m, g, f"{a} = [[{k1}], [2]]", f"{a} = [[{k2}], [2]]", cached=False)
        _add(m, g, f"{b} = {a}[0]", cached=True)
        _add(m, g, f"{a}[0].append(7)", cached=False)
    elif variant == "alias-frame":
        m.needs.add("pd")
        _add(
            m,
            g,
            f"{a} = pd.DataFrame({{'x': [1.0, None, {k1}]}})",
            f"{a} = pd.DataFrame({{'x': [1.0, None, {k2}]}})",
            cached=False,
        )
        _add(m, g, f"{b} = {a}\n{a}.dropna(inplace=True)", cached=True)
    elif variant == "instance-class":
        c, mk = g.name("Pt"), g.name("make")
        _add(
            m,
            g,
            f"class {c}:\n    def __init__(self, v):\n        self.v = v\ndef {mk}(v):\n    return {c}(v)",
            cached=False,
        )
        _add(m, g, f"{b} = {mk}({k1})", f"{b} = {mk}({k2})", cached=True)
        _add(m, g, f"{a} = isinstance({b}, {c})", cached=False)
    else:
        c = g.name("Color")
        _add(m, g, f"class {c}(enum.Enum):\n    RED = 1\n    BLUE = 2", cached=False)
        member = "RED" if k1 % 2 else "BLUE"
        member2 = "RED" if k2 % 2 else "BLUE"
        _add(m, g, f"{b} = {c}.{member}", f"{b} = {c}.{member2}", cached=True)
        _add(m, g, f"{a} = ({b} == {c}.{member}, {b} is {c}.{member})", cached=False)
    return m


def m_output(g: Gen) -> Motif:
    variant = g.rng.choice(
        ["semicolon", "print", "display", "last-value", "stderr", "print-and-value", "logging", "display-update"]
    )
    m = Motif("output", variant)
    v = g.name("shown")
    a, b = g.lit()
    body = {
        "semicolon": f"{v} = {{k}}\n[{v}, {v} + 1];",
        "print": f"{v} = {{k}}\nprint('value', {v})",
        "display": f"from IPython.display import display\n{v} = {{k}}\ndisplay({{'v': {v}}})",
        "last-value": f"{v} = {{k}}\n{v} * 2",
        "stderr": f"{v} = {{k}}\nprint('warn', {v}, file=sys.stderr)",
        "print-and-value": f"{v} = {{k}}\nprint({v})\n({v}, 'x')",
        "logging": f"import logging\n{v} = {{k}}\nlogging.getLogger('dt').warning('logged %s', {v})",
        "display-update": f"from IPython.display import display, update_display\n{v} = {{k}}\n"
        f"display('first', display_id='{v}')\nupdate_display({v}, display_id='{v}')",
    }[variant]
    _add(m, g, body.replace("{k}", str(a)), body.replace("{k}", str(b)), cached=True)
    if variant in ("semicolon", "last-value") and g.maybe(0.5):
        _add(m, g, f"{g.name('after')} = _", cached=False)
    return m


def m_mutate(g: Gen) -> Motif:
    variant = g.rng.choice(["list.append", "dict.update", "arr+=", "frame-col", "set.add"])
    m = Motif("mutate", variant)
    x, k = g.name("mut"), g.name("done")
    a, b = g.lit()
    init = {
        "list.append": "[1, 2]",
        "dict.update": "{'a': 1}",
        "arr+=": "np.arange(4)",
        "set.add": "{1, 2}",
        "frame-col": "pd.DataFrame({'a': [1, 2]})",
    }[variant]
    if variant == "frame-col":
        m.needs.add("pd")
    _add(m, g, f"{x} = {init}", cached=False)
    op = {
        "list.append": f"{x}.append({{}})",
        "dict.update": f"{x}.update(b={{}})",
        "arr+=": f"{x} += {{}}",
        "set.add": f"{x}.add({{}})",
        "frame-col": f"{x}['c'] = {x}['a'] * {{}}",
    }[variant]
    _add(m, g, f"{op.format(a)}\n{k} = 1", f"{op.format(b)}\n{k} = 1", cached=True)
    _add(m, g, f"{g.name('copy')} = repr({x})", cached=False)
    return m


def m_delete(g: Gen) -> Motif:
    variant = g.rng.choice(["del-ref", "del-own", "del-then-plain"])
    m = Motif("delete", variant)
    t, w = g.name("tmp"), g.name("kept")
    a, b = g.lit()
    if variant == "del-ref":
        _add(m, g, f"{t} = {a}", f"{t} = {b}", cached=False)
        _add(m, g, f"{w} = {t} * 2\ndel {t}", cached=True)
    elif variant == "del-own":
        _add(m, g, f"{t} = {a}\n{w} = {t} * 2\ndel {t}", f"{t} = {b}\n{w} = {t} * 2\ndel {t}", cached=True)
    else:
        _add(m, g, f"{t} = [{a}]\n{w} = len({t})", f"{t} = [{b}]\n{w} = len({t})", cached=True)
        _add(m, g, f"del {t}", cached=False)
    return m


_VALUES = {
    "int": ("", "{n} = {k} ** 20"),
    "float": ("", "{n} = {k} / 7"),
    "str": ("", "{n} = 'é' * {k}"),
    "bytes": ("", "{n} = bytes(range({k}))"),
    "tuple": ("", "{n} = ({k}, 'a', (1.5, None))"),
    "nested": ("", "{n} = [{k}, {{'b': [1, 2], 'a': {{3, 11}}}}, (True,)]"),
    "dict-order": ("", "{n} = {{'b': {k}, 'a': 1}}"),
    "array": ("", "{n} = np.arange(6, dtype=np.int32).reshape(2, 3) * {k}"),
    "fortran": ("", "{n} = np.asfortranarray(np.arange(6.0).reshape(2, 3)) + {k}"),
    "frame": ("pd", "{n} = pd.DataFrame({{'a': [{k}, 2], 'b': ['x', 'y']}}, index=[3, 1])"),
    "series": ("pd", "{n} = pd.Series([{k}, 2.5], name='s')"),
    "dataclass": ("@dataclasses.dataclass\nclass {C}:\n    a: int\n    b: list", "{n} = {C}({k}, [1])"),
    "namedtuple": ("{C} = collections.namedtuple('{C}', 'x y')", "{n} = {C}({k}, 'y')"),
    "slots": (
        "class {C}:\n    __slots__ = ('a', 'b')\n    def __init__(self, a):\n        self.a, self.b = a, [a]",
        "{n} = {C}({k})",
    ),
    "enum": ("class {C}(enum.Enum):\n    A = 1\n    B = 2", "{n} = [{C}.A, {C}({k} % 2 + 1)]"),
    "instance": (
        "class {C}:\n    def __init__(self, v):\n        self.v = v\n    def get(self):\n        return self.v",
        "{n} = {C}({k})",
    ),
    "str-sub": ("class {C}(str):\n    pass", "{n} = {C}('w{k}')\n{n}.note = 'n'"),
    "dict-sub": ("class {C}(dict):\n    pass", "{n} = {C}(a={k})\n{n}.meta = [1]"),
}


def m_values(g: Gen) -> Motif:
    """A cached cell making several values of assorted types; they must all come back exactly."""
    kinds = g.rng.sample(sorted(_VALUES), g.rng.randint(2, 4))
    m = Motif("values", "+".join(kinds))
    a, b = g.lit()
    classes, lines = [], []
    for kind in kinds:
        need, make = _VALUES[kind][0], _VALUES[kind][1]
        cls = g.name("K")
        if need == "pd":
            m.needs.add("pd")
        elif need:
            classes.append(need.format(C=cls))
        lines.append(make.format(n=g.name("val"), k="{k}", C=cls))
    if classes:
        _add(m, g, "\n".join(classes), cached=False)
    body = "\n".join(lines)
    _add(m, g, body.replace("{k}", str(a)), body.replace("{k}", str(b)), cached=True)
    return m


def m_memo(g: Gen) -> Motif:
    """Code that is not a plain cell changes a restored value; a later cached cell must not reuse its old hash."""
    variant = g.rng.choice(["uncacheable-cell", "silent-run"])
    m = Motif("hash-memo", variant)
    gen, lst, tot = g.name("gen"), g.name("lst"), g.name("total")
    a, b = g.lit()
    if variant == "uncacheable-cell":
        _add(m, g, f"{gen} = iter([{a}, 5])", f"{gen} = iter([{b}, 5])", cached=False)
        _add(m, g, f"{lst} = [1, 2]", cached=True)
        _add(m, g, f"{lst}.append(next({gen}))", cached=True)  # a generator ref: runs normally, every time
    else:
        _add(m, g, f"{lst} = [1, 2]", cached=True)
        _add(
            m,
            g,
            f"get_ipython().run_cell('{lst}.append({a})', silent=True)\n{gen} = 0",
            f"get_ipython().run_cell('{lst}.append({b})', silent=True)\n{gen} = 0",
            cached=True,
        )
    _add(m, g, f"{tot} = sum({lst})", cached=True)
    return m


def m_dynamic(g: Gen) -> Motif:
    """Names reached through globals()/vars()/eval are refs nobody can see: the cell must not hit stale."""
    variant = g.rng.choice(["globals", "vars", "eval", "locals", "helper-globals", "builtins", "%run"])
    m = Motif("dynamic", variant)
    x, r = g.name("hidden"), g.name("dyn")
    a, b = g.lit()
    if variant == "%run":  # the script a cell runs is code too: an edit to it must be seen
        script = g.name("script")
        m.files1[f"{script}.py"] = f"{x} = {a}\n"
        m.files2[f"{script}.py"] = f"{x} = {b}\n"
        _add(m, g, f"%run {script}.py\n{r} = {x} * 2", cached=True)
        return m
    if variant == "builtins":  # a value put into builtins is read by a bare name no namespace shows
        # (auto mode would cache the setting cell too, and a hit does not set it again: a known limit, reported)
        off = "# lazycache: off\nimport builtins\nbuiltins"
        _add(m, g, f"{off}.{x} = {a}", f"{off}.{x} = {b}", cached=False)
        _add(m, g, f"{r} = {x} * 2", cached=True)
        _add(m, g, f"del builtins.{x}", cached=False)  # later motifs' names never meet it
        return m
    _add(m, g, f"{x} = {a}", f"{x} = {b}", cached=False)
    if variant == "helper-globals":  # a helper reads a global by a string
        fn = g.name("get")
        _add(m, g, f"def {fn}(name):\n    return globals()[name] * 2", cached=False)
        _add(m, g, f"{r} = {fn}('{x}')", cached=True)
        return m
    body = {
        "globals": f"{r} = globals()['{x}'] * 2",
        "vars": f"{r} = vars()['{x}'] * 2",
        "eval": f"{r} = eval('{x} * 2')",
        "locals": f"{r} = locals()['{x}'] * 2",
    }[variant]
    _add(m, g, body, cached=True)
    return m


def m_hidden_defs(g: Gen) -> Motif:
    """Bindings analysis cannot see (exec, star imports) are defs too."""
    variant = g.rng.choice(["exec-deps", "star-import"])
    m = Motif("hidden-defs", variant)
    r = g.name("hd")
    a, b = g.lit()
    if variant == "exec-deps":
        base, z = g.name("base"), g.name("z")
        _add(m, g, f"{base} = {a}", f"{base} = {b}", cached=False)
        _add(m, g, f"exec('{z} = {base} + 1')", cached=True, opts=f"--deps {base}")
        _add(m, g, f"{r} = {z} * 2", cached=False)
    else:
        _add(m, g, "from math import *", cached=True)
        _add(m, g, f"{r} = sqrt({a * a})", f"{r} = sqrt({b * b})", cached=False)
    return m


def m_first_run(g: Gen) -> Motif:
    """The first run with the magic is a plain run: names visible to called code, await, errors."""
    variant = g.rng.choice(["helper-reads-def", "await", "raises", "warning"])
    m = Motif("first-run", variant)
    x, r = g.name("df"), g.name("fr")
    a, b = g.lit()
    if variant == "helper-reads-def":
        f = g.name("add_col")
        _add(
            m,
            g,
            f"{x} = [1, {a}]\ndef {f}():\n    return {x} + [3]",
            f"{x} = [1, {b}]\ndef {f}():\n    return {x} + [3]",
            cached=False,
        )
        _add(m, g, f"{x} = {f}()", cached=True)
    elif variant == "await":
        _add(
            m,
            g,
            f"import asyncio\nawait asyncio.sleep(0)\n{r} = {a}",
            f"import asyncio\nawait asyncio.sleep(0)\n{r} = {b}",
            cached=True,
        )
    elif variant == "raises":
        _add(m, g, f"{r} = {a}\n{r} / 0", f"{r} = {b}\n{r} / 0", cached=True, raises=True)
    else:
        _add(
            m,
            g,
            f"import warnings\n{r} = {a}\nwarnings.warn('careful {a}')",
            f"import warnings\n{r} = {b}\nwarnings.warn('careful {b}')",
            cached=True,
        )
    return m


def m_chain(g: Gen) -> Motif:
    """Cached cells over each other's restored values, with changes in place in between."""
    variant = g.rng.choice(
        ["array-inplace", "list-inplace", "frame-inplace", "plain-change-between", "redefine", "restored-fn-global"]
    )
    m = Motif("chain", variant)
    x, r = g.name("ch"), g.name("use")
    a, b = g.lit()
    if variant == "array-inplace":
        _add(m, g, f"{x} = np.arange(6.0) * {a}", f"{x} = np.arange(6.0) * {b}", cached=True)
        _add(m, g, f"{x} += 1\n{x}[0] = -1", cached=True)
        _add(m, g, f"{r} = float({x}.sum())", cached=True)
    elif variant == "list-inplace":
        _add(m, g, f"{x} = [[{a}], [2]]", f"{x} = [[{b}], [2]]", cached=True)
        _add(m, g, f"{x}[0].append(5)\n{x}.append({x}[0])", cached=True)
        _add(m, g, f"{r} = repr({x})", cached=True)
    elif variant == "frame-inplace":
        m.needs.add("pd")
        _add(
            m,
            g,
            f"{x} = pd.DataFrame({{'a': [1.0, None, {a}]}})",
            f"{x} = pd.DataFrame({{'a': [1.0, None, {b}]}})",
            cached=True,
        )
        _add(m, g, f"{x}.dropna(inplace=True)\n{x}['b'] = {x}['a'] * 2", cached=True)
        _add(m, g, f"{r} = {x}.to_dict('list')", cached=True)
    elif variant == "plain-change-between":
        _add(m, g, f"{x} = np.zeros(4) + {a}", f"{x} = np.zeros(4) + {b}", cached=True)
        _add(m, g, f"{x}[1] = 7", cached=False)
        _add(m, g, f"{r} = {x}.tolist()", cached=True)
    elif variant == "redefine":
        _add(m, g, f"{x} = {a}", f"{x} = {b}", cached=True)
        _add(m, g, f"{x} = {x} * 10 + 1", cached=True)
        _add(m, g, f"{r} = {x} + 1", cached=True)
    else:
        fn, glob = g.name("reads"), g.name("G")
        _add(m, g, f"def {fn}():\n    return {glob} * 2", cached=True)
        _add(m, g, f"{glob} = {a}", f"{glob} = {b}", cached=False)
        _add(m, g, f"{r} = {fn}()", cached=True)
    return m


def m_reach(g: Gen) -> Motif:
    """A cached cell changes an object that another name holds, reached through what it calls or reads:
    a hit must change it too (or not be stored)."""
    variant = g.rng.choice(["bound-method", "partial", "callback", "nested", "closure", "local-module"])
    m = Motif("reach", variant)
    lst, k, obs = g.name("held"), g.name("k"), g.name("seen")
    a, b = g.lit()
    if variant == "local-module":
        mod = g.name("regmod")
        src = "REG = [0]\n\ndef register(x):\n    REG.append(x)\n"
        m.files1[f"{mod}.py"] = m.files2[f"{mod}.py"] = src
        _add(m, g, f"import {mod}", cached=False)
        call = g.rng.choice([f"{mod}.REG.append({{}})", f"{mod}.register({{}})"])
        _add(m, g, f"{call.format(a)}\n{k} = 1", f"{call.format(b)}\n{k} = 1", cached=True)
        _add(m, g, f"{obs} = list({mod}.REG)", cached=False)
        return m
    if variant == "closure":
        mk, inc = g.name("counter"), g.name("inc")
        _add(
            m,
            g,
            f"def {mk}(n):\n    def inc():\n        nonlocal n\n        n += 1\n        return n\n    return inc\n"
            f"{inc} = {mk}({a})",
            f"def {mk}(n):\n    def inc():\n        nonlocal n\n        n += 1\n        return n\n    return inc\n"
            f"{inc} = {mk}({b})",
            cached=False,
        )
        _add(m, g, f"{k} = {inc}()", cached=True)
        _add(m, g, f"{obs} = {inc}()", cached=False)
        return m
    via = g.name("via")
    setup = {
        "bound-method": f"{lst} = [0]\n{via} = {lst}.append",
        "partial": f"{lst} = [0]\n{via} = functools.partial({lst}.append)",
        "callback": f"{lst} = [0]\ndef {via}_fn(x):\n    {lst}.append(x)\n{via} = {{'cb': {via}_fn}}",
        "nested": f"{lst} = [0]\n{via} = {{'a': {{'b': {lst}}}}}",
    }[variant]
    call = {
        "bound-method": f"{via}({{}})",
        "partial": f"{via}({{}})",
        "callback": f"{via}['cb']({{}})",
        "nested": f"{via}['a']['b'].append({{}})",
    }[variant]
    _add(m, g, setup, cached=False)
    _add(m, g, f"{call.format(a)}\n{k} = 1", f"{call.format(b)}\n{k} = 1", cached=True)
    _add(m, g, f"{obs} = list({lst})", cached=False)
    return m


def m_plot(g: Gen) -> Motif:
    """A cached cell that plots: the figure, its artists and pyplot's open figures are as after a run."""
    variant = g.rng.choice(["subplots", "pyplot-state", "legend;"])
    m = Motif("plot", variant)
    m.needs.add("plt")
    fig, ax, obs = g.name("fig"), g.name("ax"), g.name("seen")
    a, b = g.lit()
    if variant == "subplots":
        _add(
            m,
            g,
            f"{fig}, {ax} = plt.subplots()\n{ax}.plot([1, {a}])\n{ax}.set_title('t{a}')",
            f"{fig}, {ax} = plt.subplots()\n{ax}.plot([1, {b}])\n{ax}.set_title('t{b}')",
            cached=True,
        )
        _add(m, g, f"{obs} = ({ax}.get_title(), len({ax}.lines), list({ax}.lines[0].get_ydata()))", cached=False)
    elif variant == "pyplot-state":
        _add(
            m,
            g,
            f"plt.figure()\nplt.plot([0, {a}])\n{fig} = 1",
            f"plt.figure()\nplt.plot([0, {b}])\n{fig} = 1",
            cached=True,
        )
        _add(m, g, f"{obs} = (plt.get_fignums(), [list(l.get_ydata()) for l in plt.gca().lines])", cached=False)
    else:
        _add(
            m,
            g,
            f"plt.figure()\nplt.plot([0, {a}], label='x')\nplt.legend(loc='best');",
            f"plt.figure()\nplt.plot([0, {b}], label='x')\nplt.legend(loc='best');",
            cached=True,
        )
        _add(m, g, f"{obs} = len(plt.get_fignums())", cached=False)
    _add(m, g, "plt.close('all')", cached=False)
    return m


MOTIFS = {
    "seed-draw": m_seed_draw,
    "history": m_history,
    "set-order": m_set_order,
    "builtin-subclass": m_builtin_subclass,
    "function-change": m_function_change,
    "local-module": m_local_module,
    "effect-on-hit": m_effect,
    "relation": m_relation,
    "output": m_output,
    "mutate": m_mutate,
    "delete": m_delete,
    "values": m_values,
    "hash-memo": m_memo,
    "dynamic": m_dynamic,
    "hidden-defs": m_hidden_defs,
    "first-run": m_first_run,
    "chain": m_chain,
    "plot": m_plot,
    "reach": m_reach,
}


def generate(seed: int, index: int, n_motifs: tuple = (2, 5), tags=None) -> Notebook:
    """Scenario ``index`` of a batch with ``seed``: a notebook of a few random motifs."""
    rng = random.Random(f"{seed}:{index}")
    g = Gen(rng)
    pool = sorted(tags or MOTIFS)
    motifs = [MOTIFS[rng.choice(pool)](g) for _ in range(rng.randint(*n_motifs))]
    return Notebook(motifs, setup_cached=rng.random() < 0.2, seed=seed, index=index)


# ---------------------------------------------------------------------------------------------------------------------
# One session (runs in the child process)

_ADDR = re.compile(r"0x[0-9a-fA-F]{4,}")
_INPUT = re.compile(r"<ipython-input-(\d+)-[0-9a-f]+>")  # the hash is of the raw cell, which has the magic line
_ATOMS = (type(None), bool, int, float, complex, str, bytes)


def _digest(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()[:16]


def _clean(text: str) -> str:
    """Drop the extension's own status lines; memory addresses differ between processes."""
    lines = [ln for ln in text.splitlines(keepends=True) if not ln.startswith(STATUS)]
    return _INPUT.sub(r"<ipython-input-\1-?>", _ADDR.sub("0x?", "".join(lines)))


def _code(co) -> str:
    """A function's code without line numbers or file names (those legitimately differ)."""
    consts = [(_code(c) if hasattr(c, "co_code") else repr(c)) for c in co.co_consts]
    return f"code({co.co_name},{_digest(co.co_code)},{consts},{co.co_names},{co.co_varnames},{co.co_freevars})"


def canon(v, ns_types: dict, seen: frozenset = frozenset()) -> str:
    """A stable description of a value: what a user could observe of it, without addresses."""
    try:
        return _canon(v, ns_types, seen)
    except Exception as exc:  # noqa: BLE001 -- a stand-in that raises on any use: the user sees that too
        return f"<cannot describe: {type(exc).__name__}: {_ADDR.sub('0x?', str(exc))[:200]}>"


def _canon(v, ns_types: dict, seen: frozenset) -> str:
    import enum
    import functools
    import types

    t = type(v)
    tn = f"{t.__module__}.{t.__qualname__}"
    if t in _ATOMS:
        return repr(v)
    if id(v) in seen:
        return f"<cycle {tn}>"
    seen = seen | {id(v)}

    def c(x):
        return canon(x, ns_types, seen)

    def attrs():
        d = getattr(v, "__dict__", None)
        slots = [s for k in t.__mro__ for s in getattr(k, "__slots__", ()) if isinstance(s, str)]
        parts = {k: c(x) for k, x in (d or {}).items()}
        parts.update({s: c(getattr(v, s)) for s in slots if s != "__dict__" and hasattr(v, s)})
        mine = ""
        if t.__module__ == "__main__":  # an instance of the notebook's class, not a restored look-alike
            mine = f" class-is-notebook's={ns_types.get(t.__qualname__) is t}"
        return (f" attrs={parts}" if parts else "") + mine

    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    if isinstance(v, enum.Enum):
        return f"{tn}.{v.name}({c(v.value)}) is-member={t.__members__.get(v.name) is v}" + attrs()
    if isinstance(v, type):
        body = {
            k: (_code(x.__code__) if hasattr(x, "__code__") else c(x))
            for k, x in v.__dict__.items()
            if not k.startswith("__") or k == "__slots__"
        }
        return f"class {v.__module__}.{v.__qualname__}({[b.__qualname__ for b in v.__mro__[1:]]}) {body}"
    if isinstance(v, types.ModuleType):
        return f"module {v.__name__}"
    if np is not None and isinstance(v, np.ndarray):
        data = _digest(np.ascontiguousarray(v).tobytes()) if v.dtype != object else c(v.tolist())
        f = v.flags
        return f"{tn} {v.dtype} {v.shape} C={f.c_contiguous} F={f.f_contiguous} W={f.writeable} {data}" + attrs()
    if pd is not None and isinstance(v, (pd.DataFrame, pd.Series)):
        dtypes = str(v.dtypes.to_dict()) if isinstance(v, pd.DataFrame) else str(v.dtype)
        return f"{tn} {dtypes} {v.to_json(orient='split', double_precision=15)} attrs={v.attrs}"
    if isinstance(v, str):
        return f"{tn}({str.__repr__(v)})" + attrs()
    if isinstance(v, bytes):
        return f"{tn}({bytes.__repr__(v)})" + attrs()
    if isinstance(v, (int, float)):
        return f"{tn}({type(v).__mro__[-2].__repr__(v)})" + attrs()
    if isinstance(v, tuple) and hasattr(t, "_fields"):
        return f"{tn}({[c(x) for x in v]})" + attrs()
    if isinstance(v, (list, tuple)):
        return f"{tn}[{', '.join(c(x) for x in v)}]" + attrs()
    if isinstance(v, dict):
        return f"{tn}{{{', '.join(f'{c(k)}: {c(x)}' for k, x in v.items())}}}" + attrs()
    if isinstance(v, (set, frozenset)):
        return f"{tn}{{{', '.join(c(x) for x in v)}}} (iteration order)" + attrs()
    if isinstance(v, functools.partial):
        return f"partial({c(v.func)}, {c(v.args)}, {c(v.keywords)})"
    if isinstance(v, (types.FunctionType, types.MethodType)) or hasattr(v, "__wrapped__"):
        fn = getattr(v, "__func__", v)
        code = _code(fn.__code__) if hasattr(fn, "__code__") else repr(type(fn))
        cells = [c(cl.cell_contents) if _filled(cl) else "<empty>" for cl in (getattr(fn, "__closure__", None) or ())]
        extra = {k: c(x) for k, x in getattr(fn, "__dict__", {}).items()}
        return (
            f"{tn} {getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')} {code} "
            f"defaults={c(getattr(fn, '__defaults__', None))} kw={c(getattr(fn, '__kwdefaults__', None))} "
            f"closure={cells} dict={extra}"
        )
    if t.__module__ == "__main__" or hasattr(v, "__dict__") and t.__module__.split(".")[0] in ("dataclasses",):
        return tn + attrs()
    return f"{tn} {_ADDR.sub('0x?', repr(v))}"


def _filled(cell) -> bool:
    try:
        _ = cell.cell_contents
        return True
    except ValueError:
        return False


_IPY_NAMES = re.compile(r"^(_i+|_i\d+|_\d+|_dh|_oh|_ih|In|Out|exit|quit|get_ipython|__builtins?__|_{1,3})$")


def describe_namespace(shell) -> dict:
    """Every user name described, plus ``_``/``__``/``___``/``Out`` (history is observable)."""
    ns = shell.user_ns
    hidden = set(shell.user_ns_hidden)
    names = sorted(
        k for k in ns if k not in hidden and not _IPY_NAMES.match(k) and not (k.startswith("__") and k.endswith("__"))
    )
    types_ = {k: ns[k] for k in names if isinstance(ns[k], type)}
    out = {k: canon(ns[k], types_) for k in names}
    for k in ("_", "__", "___"):
        if k in ns:
            out[f"history {k}"] = canon(ns[k], types_)
    out["history Out"] = {str(n): canon(x, types_) for n, x in sorted(ns.get("Out", {}).items())}
    out["relations"] = _relations({k: ns[k] for k in names})
    return out


def _relations(objs: dict) -> list:
    """Identity relations among names: aliases, array views, elements of containers."""
    np = sys.modules.get("numpy")
    rel, by_id = [], {}
    for k, v in objs.items():
        if not isinstance(v, _ATOMS):
            by_id.setdefault(id(v), []).append(k)
    rel += [" is ".join(g) for g in by_id.values() if len(g) > 1]
    arrays = [(k, v) for k, v in objs.items() if np is not None and isinstance(v, np.ndarray)]
    for i, (k1, a1) in enumerate(arrays):
        for k2, a2 in arrays[i + 1 :]:
            if a1 is not a2 and np.shares_memory(a1, a2):
                rel.append(f"{k1} shares memory with {k2}")
    for k, v in objs.items():
        items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, (list, tuple)) else ()
        for i, x in list(items)[:100]:
            if not isinstance(x, _ATOMS) and id(x) in by_id:
                rel.append(f"{k}[{i!r}] is {by_id[id(x)][0]}")
    return sorted(rel)


def describe_state(spec: dict) -> dict:
    """Process state a later cell could observe."""
    state = {
        "cwd": os.path.relpath(os.getcwd(), spec["cwd"]),
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("DT_") and k != "DT_NB"},
    }
    if "random" in spec["seeded"]:
        state["random"] = _digest(repr(random.getstate()).encode())
    np = sys.modules.get("numpy")
    if np is not None and "np" in spec["seeded"]:
        st = np.random.get_state()
        state["np.random"] = _digest(st[1].tobytes() + repr(st[2:]).encode())
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        rc, default = mpl.rcParams, mpl.rcParamsDefault
        changed = {k: repr(rc[k]) for k in sorted(rc) if k != "backend" and repr(rc[k]) != repr(default[k])}
        if changed:  # matplotlib merely imported (by the notebook or the extension) is no difference
            state["rcParams changed"] = changed
    return state


def run_session(spec_path: str, out_path: str) -> None:
    import contextlib
    import io

    with open(spec_path) as f:
        spec = json.load(f)
    os.chdir(spec["cwd"])
    sys.path.insert(0, "")  # as in a kernel: the notebook's folder provides modules
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("colors", "nocolor")
    shell.enable_gui = lambda gui=None: None  # as ipykernel's shell does for the inline backend
    if spec["magic"]:
        shell.run_cell("%load_ext ipy_lazycache", store_history=False)
    shown = []
    publish = shell.display_pub.publish

    def spy(data, metadata=None, **kw):
        shown.append({k: (x if isinstance(x, str) else _digest(repr(x).encode())) for k, x in sorted(data.items())})
        return publish(data, metadata, **kw)

    shell.display_pub.publish = spy
    cells = []
    for code in spec["cells"]:
        out, err = io.StringIO(), io.StringIO()
        shown.clear()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            result = shell.run_cell(code, store_history=True)
        exc = result.error_before_exec or result.error_in_exec
        raw = out.getvalue() + err.getvalue()
        cells.append(
            {
                "stdout": _clean(out.getvalue()),
                "stderr": _clean(err.getvalue()),
                "displays": [{k: _clean(x) for k, x in d.items() if not x.startswith(STATUS)} for d in shown],
                "error": f"{type(exc).__name__}: {exc}" if exc else None,
                "status": [ln for ln in raw.splitlines() if ln.startswith(STATUS)],
            }
        )
    result = {"cells": cells, "namespace": describe_namespace(shell), "state": describe_state(spec)}
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1, default=repr)


# ---------------------------------------------------------------------------------------------------------------------
# Running a scenario (parent process)


def _write_files(folder: str, files: dict) -> None:
    os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
    for path, text in files.items():
        with open(os.path.join(folder, path), "w") as f:
            f.write(text)


def run_chain(nb: Notebook, magic: bool, root: str, timeout: float = 120, side: str = "", auto: bool = False) -> list:
    """The sessions (``VERSIONS``) with or without the magic, each in a fresh process. ``auto``: the
    extension in auto mode (every eligible cell cached, whatever it takes), no ``%%lazycache`` lines."""
    folder = os.path.join(root, side or ("magic" if magic else "plain"), "nb")
    cache = os.path.join(root, "cache")
    os.makedirs(folder, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IPY_LAZYCACHE", "DT_", "PYTHONPATH"))}
    env.update(
        PYTHONPATH=package_dir(),
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="Agg",
        IPY_LAZYCACHE_DIR=cache,
        DT_NB=folder,
    )
    if auto:
        env.update(IPY_LAZYCACHE_AUTO="1", IPY_LAZYCACHE_AUTO_MIN_TIME="0")
    results = []
    for k, version in enumerate(VERSIONS):
        _write_files(folder, nb.files(version))
        spec = {"cells": nb.sources(version, magic and not auto), "cwd": folder, "magic": magic,
                "seeded": nb.seeded()}
        spec_path = os.path.join(root, f"spec-{'m' if magic else 'p'}{k}.json")
        out_path = spec_path.replace("spec-", "out-")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "session", spec_path, out_path],
            check=False,
            env=env,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0 or not os.path.exists(out_path):
            tail = proc.stderr.strip().splitlines()[-6:]
            results.append({"crash": f"exit {proc.returncode}: " + " | ".join(tail)})
            break
        with open(out_path) as f:
            text = f.read().replace(folder, "<NB>")  # the two chains use different folders
        results.append(json.loads(text))
    return results


@dataclass
class Difference:
    session: int
    where: str  # "cell 4 stdout", "name x", "state cwd", ...
    plain: object
    magic: object
    motif: Motif | None = None

    def line(self) -> str:
        who = f" [{self.motif.label}]" if self.motif else ""
        return (
            f"session {self.session + 1} ({SESSIONS[self.session]}): {self.where}{who}\n"
            f"      plain: {_short(self.plain)}\n      magic: {_short(self.magic)}"
        )


def _short(x, n=400) -> str:
    s = x if isinstance(x, str) else json.dumps(x, default=repr)
    return s if len(s) <= n else s[:n] + "..."


_LINE_NUMBERS = [
    (re.compile(r"(Cell In\[\d+\], line )\d+"), r"\1?"),
    (re.compile(r"(<ipython-input-\d+-\?>):\d+:"), r"\1:?:"),
    (re.compile(r"^(---->|      ) ?\d+( |$)", re.M), r"\1 ?\2"),  # a traceback's context lines
]


def _same_lines(x):
    """Line numbers inside a cell are not compared: a ``%%lazycache`` cell has one more line than the plain
    cell it is compared with, and either way of counting is defensible. The cell number still is."""
    if isinstance(x, str):
        for pattern, repl in _LINE_NUMBERS:
            x = pattern.sub(repl, x)
    return x


def compare(nb: Notebook, plain: list, magic: list) -> list:
    """Every difference, session by session, each attributed to the motif owning the cell or name."""
    cells = nb.cells()
    owner = {}
    for m, c in cells:
        for name in re.findall(r"[A-Za-z_]\w*", c.v1 + c.v2):
            owner.setdefault(name, m)
    diffs = []
    for s in range(len(VERSIONS)):
        p = plain[s] if s < len(plain) else {"crash": "no session"}
        q = magic[s] if s < len(magic) else {"crash": "no session"}
        if "crash" in p or "crash" in q:
            if p.get("crash") != q.get("crash"):
                diffs.append(Difference(s, "session crashed", p.get("crash"), q.get("crash")))
            break
        for i, (a, b) in enumerate(zip(p["cells"], q["cells"])):
            for key in ("error", "stdout", "stderr", "displays"):
                if _same_lines(a[key]) != _same_lines(b[key]):
                    diffs.append(Difference(s, f"cell [{i + 1}] {key}", a[key], b[key], cells[i][0]))
        pn, qn = p["namespace"], q["namespace"]
        for name in sorted(set(pn) | set(qn)):
            if pn.get(name, "<unbound>") != qn.get(name, "<unbound>"):
                if name == "relations":
                    extra = sorted(set(pn[name]) ^ set(qn.get(name, [])))
                    m = next((owner.get(w) for r in extra for w in re.findall(r"\w+", r) if owner.get(w)), None)
                    diffs.append(Difference(s, "relations", pn.get(name), qn.get(name), m))
                elif name == "history Out":
                    a, b = pn[name], qn.get(name, {})
                    for n in sorted(set(a) | set(b), key=int):
                        if a.get(n) != b.get(n):
                            m = cells[int(n) - 1][0] if 0 < int(n) <= len(cells) else None
                            diffs.append(Difference(s, f"Out[{n}]", a.get(n, "<none>"), b.get(n, "<none>"), m))
                else:
                    diffs.append(
                        Difference(
                            s,
                            f"name {name}",
                            pn.get(name, "<unbound>"),
                            qn.get(name, "<unbound>"),
                            owner.get(name.split()[-1]),
                        )
                    )
        for key in sorted(set(p["state"]) | set(q["state"])):
            if p["state"].get(key) != q["state"].get(key):
                diffs.append(Difference(s, f"state {key}", p["state"].get(key), q["state"].get(key)))
    return diffs


def plain_errors(nb: Notebook, plain: list) -> list:
    """Errors in the plain run are the grammar's bugs, not the cache's (but for cells meant to raise)."""
    raises = [c.raises for _, c in nb.cells()]
    out = []
    for s, r in enumerate(plain):
        if "crash" in r:
            out.append(f"session {s + 1} crashed: {r['crash']}")
            continue
        out += [
            f"session {s + 1} cell [{i + 1}]: {c['error']}"
            for i, c in enumerate(r["cells"])
            if c["error"] and not raises[i]
        ]
    return out


@dataclass
class Outcome:
    nb: Notebook
    diffs: list
    grammar_errors: list
    misses_on_rerun: list  # cached cells that did not hit in session 2 (info only: a spurious miss is allowed)
    seconds: float

    def report(self, limit: int = 6) -> str:
        head = f"scenario seed={self.nb.seed} index={self.nb.index} motifs={[m.label for m in self.nb.motifs]}"
        rows = [head]
        if self.grammar_errors:
            rows += ["  GRAMMAR BUG (the plain run failed):"] + ["    " + e for e in self.grammar_errors]
        if self.diffs:
            rows.append(f"  {len(self.diffs)} difference(s), first {min(limit, len(self.diffs))}:")
            rows += ["    " + d.line() for d in self.diffs[:limit]]
        if self.grammar_errors or self.diffs:
            rows += ["  notebook:", self.nb.render()]
        return "\n".join(rows)


def run_scenario(nb: Notebook, pool: concurrent.futures.Executor | None = None, control: bool = False,
                 auto: bool = False) -> Outcome:
    """Both chains of a scenario; ``control`` runs the second one without the magic too (the tester's own
    noise, which must be none); ``auto`` runs it in auto mode instead of with ``%%lazycache`` lines."""
    start = time.monotonic()
    root = tempfile.mkdtemp(prefix="lazycache-diff-")
    try:
        pool = pool or concurrent.futures.ThreadPoolExecutor(1)
        fp = pool.submit(run_chain, nb, False, root)
        fm = pool.submit(run_chain, nb, not control, root, side="magic", auto=auto)
        plain, magic = fp.result(), fm.result()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    misses = []
    if len(magic) > 1 and "crash" not in magic[1] and not auto:
        for i, c in enumerate(magic[1]["cells"]):
            if nb.cells()[i][1].cached and not any("restored" in ln for ln in c["status"]):
                misses.append(i + 1)
    return Outcome(nb, compare(nb, plain, magic), plain_errors(nb, plain), misses, time.monotonic() - start)


def run_batch(seed: int, n: int, workers: int = 2, on_done=None) -> list:
    """``n`` scenarios of a batch; two chains run at once per scenario, scenarios in sequence."""
    outcomes = []
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for i in range(n):
            o = run_scenario(generate(seed, i), pool)
            outcomes.append(o)
            if on_done:
                on_done(o)
    return outcomes


def confirm(o: Outcome, pool, skip=()) -> dict:
    """Each motif a difference was attributed to, run alone: ``{label: (Notebook, [Difference])}`` where it
    reproduces, so each finding has a minimal repro. Labels in ``skip`` are not run again."""
    found = {}
    for m in {d.motif.label: d.motif for d in o.diffs if d.motif and d.motif.label not in skip}.values():
        alone = Notebook([m], setup_cached=o.nb.setup_cached, seed=o.nb.seed, index=o.nb.index)
        r = run_scenario(alone, pool)
        if r.diffs and not r.grammar_errors:
            found[m.label] = (alone, r.diffs)
    return found


def _git_head(folder: str) -> str:
    proc = subprocess.run(
        ["git", "-C", folder, "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "?"


def write_findings(path: str, args, outcomes: list, findings: dict) -> None:
    """A readable list of what still differs, one minimal repro per motif class (DIFF_FINDINGS.md)."""
    seen = sorted({m.label for o in outcomes for m in o.nb.motifs})
    implicated = sorted({d.motif.label for o in outcomes for d in o.diffs if d.motif})
    unattributed = sorted({d.where for o in outcomes for d in o.diffs if not d.motif})
    failing = [o for o in outcomes if o.diffs or o.grammar_errors]
    rows = [
        "# Differential tester findings",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} by `python tests/difftest.py run "
        f"--n {args.n} --seed {args.seed} --confirm --findings ...` (tests/difftest.py).",
        f"Package under test: `{package_dir()}` at `{_git_head(package_dir())}`.",
        "",
        f"**{len(failing)} of {len(outcomes)} scenarios differ.** Motif classes run: {len(seen)}; implicated in a "
        f"difference: {len(implicated)}; confirmed alone (minimal repro below): {len(findings)}.",
        "",
        "Each repro is the setup cell plus one motif; `-- v2:` shows the edit before session 3. Sessions: "
        + "; ".join(f"{i + 1} = {s}" for i, s in enumerate(SESSIONS))
        + ". `plain` is IPython without the magic.",
        "",
    ]
    for label, (nb, diffs) in sorted(findings.items()):
        rows += [f"## {label}", "", "```", nb.render(), "```", ""]
        rows += ["```"] + [d.line() for d in diffs[:3]] + ["```", ""]
    rest = sorted(set(implicated) - set(findings))
    if rest:
        rows += ["## Implicated, but not reproduced by the motif alone (interaction or flaky)", ""]
        rows += [f"- {label}" for label in rest] + [""]
    if unattributed:
        more = f" (and {len(unattributed) - 8} more)" if len(unattributed) > 8 else ""
        rows += ["## Differences not attributed to one motif", "", ", ".join(unattributed[:8]) + more, ""]
    clean = sorted(set(seen) - set(implicated))
    rows += ["## Motif classes with no difference in this run", "", ", ".join(clean) or "(none)", ""]
    misses = sorted(
        {nb_label for o in outcomes for i in o.misses_on_rerun for nb_label in [_label_of(o.nb, i)] if nb_label}
    )
    rows += [
        "## Info: cached cells that did not hit after a restart (spurious misses, allowed)",
        "",
        ", ".join(misses) or "(none)",
        "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(rows))


def _label_of(nb: Notebook, count: int) -> str:
    m = nb.cells()[count - 1][0]
    return m.label if m else "setup"


def main(argv: list) -> int:
    if argv and argv[0] == "session":
        run_session(argv[1], argv[2])
        return 0
    import argparse

    ap = argparse.ArgumentParser(prog="difftest.py")
    ap.add_argument("cmd", choices=["run"])
    ap.add_argument("--n", type=int, default=int(os.environ.get("IPY_LAZYCACHE_DIFF_N", "20")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("IPY_LAZYCACHE_DIFF_SEED", "0")))
    ap.add_argument("--confirm", action="store_true", help="re-run each implicated motif alone (minimal repro)")
    ap.add_argument("--json", help="write a summary of confirmed findings here")
    ap.add_argument("--tags", help="only these motifs, comma-separated (see MOTIFS)")
    ap.add_argument("--findings", help="write a markdown summary (implies --confirm)")
    args = ap.parse_args(argv)
    args.confirm = args.confirm or bool(args.findings)
    outcomes = []
    print(f"package: {package_dir()}  seed={args.seed} n={args.n}", flush=True)
    failing, findings, tried = 0, {}, set()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for i in range(args.n):
            tags = args.tags.split(",") if args.tags else None
            o = run_scenario(generate(args.seed, i, tags=tags), pool)
            outcomes.append(o)
            failing += bool(o.diffs or o.grammar_errors)
            print(
                o.report()
                if (o.diffs or o.grammar_errors)
                else f"scenario seed={args.seed} index={i} ok ({o.seconds:.0f} s) {[m.label for m in o.nb.motifs]}",
                flush=True,
            )
            if args.confirm and o.diffs:
                for label, (alone, diffs) in confirm(o, pool, skip=set(findings) | tried).items():
                    findings[label] = (alone, diffs)
                    print(f"  CONFIRMED alone: {label}: {diffs[0].line()}", flush=True)
                tried |= {d.motif.label for d in o.diffs if d.motif}
    print(f"\n{failing} of {args.n} scenarios differ")
    if args.confirm:
        print(f"confirmed classes ({len(findings)}): {sorted(findings)}")
    if args.findings:
        write_findings(args.findings, args, outcomes, findings)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    label: {"notebook": nb.render(), "differences": [d.line() for d in diffs[:4]]}
                    for label, (nb, diffs) in sorted(findings.items())
                },
                f,
                indent=1,
            )
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

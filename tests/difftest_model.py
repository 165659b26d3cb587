"""The notebook model of the differential tester (tests/difftest.py): cells with two versions, motifs (a few
cells exercising one feature, with unique names) and the generator state motifs draw names and literals from."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

MAGIC = "%%lazycache"

PREV = "<prev>"  # in a cell's text: the execution count of the cell before it (so a motif can run alone)


@dataclass
class Cell:
    v1: str
    v2: str
    cached: bool = False
    opts: str = ""  # options of the magic line, e.g. "--deps base"
    raises: bool = False  # the cell raises on purpose (the error itself must be the same)
    #: why this cached cell may run again on an unedited re-run; empty: it must hit (the tester fails a miss)
    misses: str = ""
    auto_misses: str = ""  # the same, in auto mode only (where no --deps or other option can be given)

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

"""One run of one corpus notebook in a new kernel, and its outputs made comparable.

Used by ``bench/corpus.py`` (and ``tests/test_corpus.py``). A run executes the
notebook through nbclient with ``allow_errors`` (every cell runs, as Run All
with errors shown would), in an empty working folder, and returns the outputs
of each code cell of the *original* notebook (images by digest), which
``describe`` turns into one record per cell:

- ``out``: the cell's outputs as text, normalised (see ``NORMALISATIONS``);
- ``error``: ``"Name: value"`` of an error output, or None;
- ``hit`` / ``stored``: whether the tool printed ``lazycache: restored`` /
  ``lazycache: stored`` for the cell (its one status line per hit or store,
  printed in both modes at the default verbosity);
- ``status``: every ``lazycache:`` line of the cell (for the defects list).

How hits are counted: from the status lines, cross-checked against the
session statistics the extension keeps (``LazyCache.stats``), which a last
cell the runner appends prints; a run whose counts disagree is reported.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tempfile

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

LOAD = "%load_ext ipy_lazycache"
MODES = {
    "magic": LOAD,  # and %%lazycache on every code cell
    "auto": LOAD + "\n%lazycache auto on --min-time 0.05",
}
# Opted out of auto mode: a hit would replay an earlier session's statistics.
PROBE = ('# lazycache: off\nprint("corpus-stats:", __import__("json").dumps(getattr('
         'get_ipython().magics_manager.registry.get("LazyCache"), "stats", None)))')
STATUS = "lazycache:"

# What differs between two plain runs for reasons that are not the cell's
# result; only these are normalised (listed in bench/corpus/RESULTS.md).
NORMALISATIONS = [
    ("memory addresses", re.compile(r"0x[0-9a-fA-F]{6,16}"), "0x?"),
    ("uuids (xarray/pandas HTML ids)", re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
     "<uuid>"),
    # and adjacent stream outputs are joined (coalesce), as a notebook shows them; stderr is compared
    # as one text after the rest: when it lands between stdout chunks depends on the kernel's flush timer
    ("ipykernel cell file names (a digest of the cell's text)", re.compile(r"\b\d{6,}\.py\b"), "<cell>.py"),
    ("%timeit's 'The slowest run took N times longer' warning",
     re.compile(r"The slowest run took [\d.]+ times longer than the fastest\.[^\n]*\n?"), ""),
    ("%%time / %timeit timings",
     re.compile(r"(CPU times|Wall time|[\d.]+ [mnuμµ]?s ± [\d.]+ [mnuμµ]?s per loop)[^\n]*"), "<time>"),
]


def variant(nb, mode: str | None, edit: tuple[str, str] | None = None):
    """The notebook as run: plain (mode None), or with the extension loaded in
    a first cell and, in magic mode, ``%%lazycache`` on every code cell; an
    edit replaces a literal in the first cell that holds it."""
    nb = copy.deepcopy(nb)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    if edit is not None:
        old, new = edit
        cell = next((c for c in cells if old in c.source), None)
        if cell is None:
            raise ValueError(f"edit {old!r} is in no cell")
        cell.source = cell.source.replace(old, new, 1)
    if mode == "magic":
        for c in cells:
            c.source = "%%lazycache\n" + c.source
    if mode is not None:
        cells = [nbformat.v4.new_code_cell(MODES[mode]), *cells, nbformat.v4.new_code_cell(PROBE)]
    nb.cells = cells
    for c in cells:
        c.outputs, c.execution_count = [], None
    return nb


def normalise(text: str) -> str:
    for _, pattern, repl in NORMALISATIONS:
        text = pattern.sub(repl, text)
    return text


# A syntax error names the line as the user sees the cell: with ``%%lazycache`` on line 1, the body's line n is
# line n + 1 (docs/defects-round3.md D4, kept by design); the plain run has no magic line, so compare n - 1.
SYNTAX_LINE = re.compile(r"^((?:SyntaxError|IndentationError|TabError): .*, line )(\d+)\)$")


def describe(outputs, magic_lines: int = 0) -> dict:
    """One cell's outputs as comparable text, its error and its status lines
    (``magic_lines``: lines the run's cell has above the plain cell's)."""
    parts, status, error = [], [], None
    for o in coalesce([o for o in outputs if o.get("name") != "stderr"]) + coalesce(
            [o for o in outputs if o.get("name") == "stderr"]):
        kind = o.get("output_type")
        if kind == "stream":
            lines = o.get("text", "").splitlines(keepends=True)
            status += [ln.strip() for ln in lines if ln.startswith(STATUS)]
            text = "".join(ln for ln in lines if not ln.startswith(STATUS))
            if text:
                parts.append(f"[{o.get('name')}] {text}")
        elif kind == "display_data" and set(o.get("data", {})) == {"text/plain"} and _text(
                o["data"]["text/plain"]).startswith(STATUS):  # a slow store's bar, replaced by its status line
            status.append(_text(o["data"]["text/plain"]).strip())
        elif kind in ("display_data", "execute_result"):
            data = o.get("data", {})
            parts += [f"[{mime}] {_text(data[mime])}" for mime in sorted(data)]
        elif kind == "error":
            error = SYNTAX_LINE.sub(lambda m: f"{m[1]}{int(m[2]) - magic_lines})",
                                    f"{o.get('ename')}: {o.get('evalue')}")
            parts.append(f"[error] {error}")
    out = normalise("".join(p if p.endswith("\n") else p + "\n" for p in parts))
    hit = any(s.startswith(f"{STATUS} restored") for s in status)
    stored = any(s.startswith(f"{STATUS} stored") for s in status)
    return {"out": out, "error": error, "hit": hit, "stored": stored, "status": status}


def coalesce(outputs) -> list:
    """Adjacent stream outputs of one stream as one, as the notebook shows
    them: how the text was split into messages is not the cell's result."""
    merged = []
    for o in outputs:
        if (o.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == o.get("name")):
            merged[-1] = {**merged[-1], "text": merged[-1]["text"] + o.get("text", "")}
        else:
            merged.append(o)
    return merged


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def execute(nb, timeout: int = 300) -> dict:
    """Run ``nb`` in a new kernel in an empty folder; each cell's outputs
    (``slim``; ``describe`` makes them comparable), the extension's session
    stats (from the probe cell) and a run-level failure."""
    with tempfile.TemporaryDirectory(prefix="corpus-run-") as work:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": work}})
        failure = None
        try:
            client.execute()
        except (CellTimeoutError, DeadKernelError, RuntimeError) as exc:
            failure = f"{type(exc).__name__}: {str(exc)[:300]}"
    cells = [slim(c.get("outputs", [])) for c in nb.cells]
    stats = None
    last = describe(cells[-1])["out"] if cells else ""
    if last.startswith("[stdout] corpus-stats:"):
        stats = json.loads(last.split("corpus-stats:", 1)[1])
    if nb.cells and nb.cells[0].source.startswith(LOAD):
        cells = cells[1:-1]  # the runner's own first and last cells
    return {"cells": cells, "stats": stats, "failure": failure}


def slim(outputs) -> list:
    """Outputs as kept for scoring: images by digest, no tracebacks or metadata."""
    kept = []
    for o in outputs:
        o = {k: v for k, v in o.items() if k not in ("metadata", "traceback", "execution_count")}
        if "data" in o:
            o["data"] = {m: ("sha1:" + hashlib.sha1(_text(d).encode()).hexdigest() if m.startswith("image/") else d)
                         for m, d in o["data"].items()}
        kept.append(o)
    return kept

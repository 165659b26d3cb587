"""``ipy-lazycache why NOTEBOOK [CELL_ID]``: each cached cell's entry in the
cache folder, with no kernel: which entry the cell last used (its export
list, else its recorded cell id, else its code), whether the notebook's code
is still the entry's, and what changed from the entry before it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from . import explain as ex, export, manage
from .manage import BadInput
from .options import is_lazycache_cell
from .reports import Lines, human_age


def _cells(notebook: Path) -> list[dict]:
    try:
        nb = json.loads(notebook.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise BadInput(f"why: no notebook at {notebook}") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        raise BadInput(f"why: cannot read {notebook} as a notebook") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise BadInput(f"why: {notebook} is not a notebook (no list of cells)")
    out = []
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            out.append({"id": cell.get("id") if isinstance(cell.get("id"), str) else None, "source": source})
    return out


def body(source: str) -> list[str]:
    """A cell's code as an entry records it: no ``%%lazycache`` line, no blank lines, no trailing space."""
    lines = source.splitlines()
    if lines and is_lazycache_cell(lines[0].lstrip()):
        lines = lines[1:]
    return [line.rstrip() for line in lines if line.strip()]


def _listed(cache_dir: Path, notebook: Path) -> dict:
    """Cell identity -> key, from the folder's export lists of this notebook
    (or of sessions that did not know their notebook)."""
    lists = export.lists_in(cache_dir)
    mine = lists.get(export.list_name(str(notebook)))
    chosen = [mine] if mine else [d for d in lists.values() if not d.get("notebook")]
    out = {}
    for data in chosen:
        for cell, rec in (data.get("cells") or {}).items():
            if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                out[cell] = rec["key"]
    return out


def _entry_of(cell: dict, listed: dict, manifests: dict) -> dict | None:
    """The entry the cell last used: by its export record, its recorded id, its code."""
    for identity in (f"id:{cell['id']}" if cell["id"] else None, export.source_id(cell["source"])):
        if identity and listed.get(identity) in manifests:
            return manifests[listed[identity]]
    mine = [m for m in manifests.values() if cell["id"] and (ex.parts_of(m) or {}).get("cell_id") == cell["id"]]
    mine = mine or [m for m in manifests.values() if body(m.get("source") or "") == body(cell["source"])]
    return max(mine, key=ex.created_at) if mine else None


def report(notebook, cache_dir=None, cell_id=None) -> Lines:
    """The report of ``ipy-lazycache why``: a line a cached cell, or all
    that is known of the cell ``cell_id`` (an id, or a 1-based number)."""
    notebook = Path(notebook)
    folder = Path(cache_dir or os.environ.get("IPY_LAZYCACHE_DIR") or notebook.parent / "__lazycache__")
    cells = _cells(notebook)
    store = manage.open_store(folder)
    manifests = {e.key: e.manifest for e in manage.entries(store) if e.manifest is not None}
    listed = _listed(folder, notebook) if (folder / export.EXPORTS).is_dir() else {}
    if cell_id is None:
        lines = [f"{notebook.name}: cached cells and their entries in {store.describe()}"]
        for number, cell in enumerate(cells, 1):
            m = _entry_of(cell, listed, manifests)
            if m is not None or is_lazycache_cell(cell["source"].lstrip()):
                lines.append(f"  {_label(number, cell)}: {_summary(m, cell)}")
        if len(lines) == 1:
            lines.append("  no cell of this notebook is cached there")
        return Lines(lines)
    number, cell = _find(cells, cell_id, notebook)
    m = _entry_of(cell, listed, manifests)
    lines = [f"{_label(number, cell)} of {notebook.name}: {_summary(m, cell)}"]
    if m is not None:
        lines.extend(_detail(m, cell, list(manifests.values())))
    return Lines(lines)


def _find(cells, cell_id: str, notebook) -> tuple[int, dict]:
    for number, cell in enumerate(cells, 1):
        if cell["id"] == cell_id:
            return number, cell
    if cell_id.isdigit() and 1 <= int(cell_id) <= len(cells):
        return int(cell_id), cells[int(cell_id) - 1]
    raise BadInput(f"why: {notebook} has no code cell {cell_id!r} (give a cell id or a number from 1)")


def _label(number: int, cell: dict) -> str:
    return f"cell {number}" + (f" (id {cell['id']})" if cell["id"] else "")


def _summary(m, cell) -> str:
    if m is None:
        return "no entry in this folder (it has not been stored here)"
    defs = sorted(m.get("defs") or {})
    what = ", ".join(defs[:6]) + (f" and {len(defs) - 6} more" if len(defs) > 6 else "") if defs else "its outputs"
    ran = m.get("duration")
    took = f"; the run took {ran:.1f} s" if isinstance(ran, (int, float)) else ""
    edited = "" if body(m.get("source") or "") == body(cell["source"]) else "; its code was edited since: it would miss"
    return f"entry {m['key'][:10]}, stored {human_age(time.time() - ex.created_at(m))}, restores {what}{took}{edited}"


def _detail(m, cell, manifests) -> list[str]:
    out = []
    if body(m.get("source") or "") != body(cell["source"]):
        out.append("The notebook's code differs from the entry's:")
        out.extend(ex.code_diff("\n".join(body(m.get("source") or "")), "\n".join(body(cell["source"]))))
    return out + ex.compared(manifests, m, where="the folder")

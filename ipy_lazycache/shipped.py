"""The notebook a site's visitor sees: the outputs of its native run, as a
plain run shows them.

The cache's own lines (``lazycache: stored ... as 392b50ae11``, hit and
warning lines) are about the build, not the notebook: they are in the build
log and are left out here. Every stream is one string, because JupyterLite
shows a stream stored as a list of lines with commas between them.
"""

from __future__ import annotations

import copy

#: How every line the extension prints begins.
OWN_LINE = "lazycache:"


def for_visitors(doc):
    """A copy of the nbformat document ``doc`` without the cache's lines."""
    doc = copy.deepcopy(doc)
    for cell in doc.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                out["text"] = without_own_lines(out.get("text", ""))
                if not out["text"]:
                    continue
            outputs.append(out)
        cell["outputs"] = outputs
    return doc


def without_own_lines(text) -> str:
    """Stream text (a string or a list of lines) as one string, less the
    lines the extension printed."""
    if isinstance(text, list):
        text = "".join(text)
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(OWN_LINE))


def own_lines(doc) -> list[tuple[int, str]]:
    """``(code cell number from 1, line)`` for every line the extension printed
    in ``doc``'s streams: what the build log shows instead of the page."""
    out, n = [], 0
    for cell in doc.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        n += 1
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                text = "".join(o["text"]) if isinstance(o.get("text"), list) else o.get("text", "")
                out += [(n, line) for line in text.splitlines() if line.startswith(OWN_LINE)]
    return out

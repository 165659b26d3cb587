"""The parts of an entry's key, recorded in its manifest (``parts``) when it
is stored, so a later miss can name what differs (:mod:`.explain`).

Only metadata: the key itself is made as before. What is recorded here is
computed at store time, never on a hit: digests the key already holds
(code, one per ref, options), the installed versions, the cell's id, and for
some values a cheap description the key's single digest cannot give back
(an array's shape and dtype and a digest per slice, a data frame's column
digests, a notebook function's source).
"""

from __future__ import annotations

import os
import types

import xxhash

#: ``parts["v"]``: bumped when the meaning of a field changes.
VERSION = 1
#: An array or frame larger than this is described by its shape alone:
#: digesting its slices would cost the store more than an explanation is worth.
MOST_BYTES = 256 << 20
#: Slices an array's elements are cut into, each digested.
SLICES = 64
#: Columns of a frame digested one by one; a wider frame is one digest.
MOST_COLUMNS = 200
#: A notebook function's source kept for a diff (characters).
MOST_SOURCE = 4000
#: The descriptions' size in the manifest at most (bytes of JSON): every hit
#: parses the manifest, and one over 64 KiB is validated again each time.
MOST_ABOUT = 16 << 10


def parts(plan, ns: dict, changed=(), cell_id=None) -> dict:
    """The parts of ``plan``'s key. ``changed``: names the run rebound,
    mutated or deleted, whose value now is not what was keyed (described
    by nothing but their digest)."""
    out = {
        "v": VERSION,
        "code": plan.code,
        "refs": dict(plan.refs),
        "options": {k: str(v) for k, v in plan.options.items()},
        "versions": dict(plan.versions),
    }
    if cell_id:
        out["cell_id"] = str(cell_id)
    about = {}
    for name in plan.refs:
        if name in ns and name not in changed and plan.before.get(name, ns[name]) is ns[name]:
            described = describe(ns[name])
            if described:
                about[name] = described
    about = _within(about)
    if about:
        out["about"] = about
    environ = environ_digests(plan)
    if environ:
        out["environ"] = environ
    return out


def _within(about: dict) -> dict:
    """``about`` made small enough for the manifest: functions' sources go
    first, then slice and column digests, then everything."""
    import json

    for drop in ("source", "slices", "columns"):
        if len(json.dumps(about)) <= MOST_ABOUT:
            return about
        about = {name: {k: v for k, v in d.items() if k != drop} for name, d in about.items()}
    return about if len(json.dumps(about)) <= MOST_ABOUT else {}


def environ_digests(plan) -> dict:
    """``{NAME: digest}`` of the environment variables the key observed."""
    cell = getattr(plan, "observed", None)
    if cell is None or "environ" not in plan.ambient:
        return {}
    try:
        names = sorted(cell.environ_names())
    except Exception:
        return {}
    return {name: digest_text(repr(os.environ.get(name))) for name in names if isinstance(name, str)}


def digest_text(text: str) -> str:
    return xxhash.xxh3_64_hexdigest(text.encode("utf-8", "surrogatepass"))


def describe(value) -> dict | None:
    """A short description of a value for explanations, or None. Only by
    type: no attribute of an arbitrary object is read (its ``__getattr__``
    could change it)."""
    t = type(value)
    module, name = t.__module__, t.__qualname__
    try:
        if module == "numpy" and name == "ndarray":
            return _array(value)
        if module.startswith("pandas") and name == "DataFrame":
            return _frame(value)
        if isinstance(value, types.FunctionType) and getattr(value, "__module__", None) == "__main__":
            return _function(value)
        if t in (int, float, bool, complex) and len(repr(value)) <= 40:  # numbers only: a string may be a secret
            return {"type": name, "value": repr(value)}
        if t in (list, tuple, dict, set, frozenset, str, bytes):
            return {"type": name, "len": len(value)}
    except Exception:
        return None  # a description is a courtesy: never a reason not to store
    return None


def _array(a) -> dict:
    out = {"type": "ndarray", "shape": list(a.shape), "dtype": str(a.dtype)}
    if a.dtype.hasobject or a.nbytes > MOST_BYTES or a.size == 0:
        return out
    import numpy as np

    flat = np.ascontiguousarray(a).reshape(-1)
    n = flat.size
    cuts = [n * i // SLICES for i in range(SLICES + 1)]
    out["slices"] = [xxhash.xxh3_64_hexdigest(flat[cuts[i]:cuts[i + 1]].view(np.uint8))[:8]
                     for i in range(SLICES) if cuts[i + 1] > cuts[i]]
    return out


def _frame(df) -> dict:
    from .hashing import value_hash

    out = {"type": "DataFrame", "shape": list(df.shape)}
    columns = [str(c) for c in df.columns]
    if len(columns) > MOST_COLUMNS or len(set(columns)) != len(columns):
        return out
    if int(df.memory_usage(index=True, deep=False).sum()) > MOST_BYTES:
        return out
    out["columns"] = {c: value_hash(df.iloc[:, i]) for i, c in enumerate(columns)}
    out["index"] = value_hash(df.index)
    return out


def _function(f) -> dict:
    import inspect

    try:
        source = inspect.getsource(f)
    except (OSError, TypeError):
        return {"type": "function"}
    return {"type": "function", "code": digest_text(source), "source": source[:MOST_SOURCE]}

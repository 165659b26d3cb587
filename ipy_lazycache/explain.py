"""Why a key differs from an earlier one, in the user's terms.

Entries record their key's parts (:mod:`.key_parts`). A miss is explained
by the nearest earlier entry of the same cell (:func:`nearest`) and what
differs between the two (:func:`differences`): code lines, a variable's
content (an array's shape or which elements, a frame's columns), a
function's code, a module, a file, an environment variable, a seed or an
option. Computed only when asked; no IPython here.
"""

from __future__ import annotations

import difflib

from . import manifest as mf
from .key_parts import SLICES, digest_text

#: Process-state providers (:mod:`.ambient`) in words.
PROVIDERS = {
    "environ": "the environment variables it reads", "cwd": "the working directory", "sys.path": "sys.path",
    "timezone": "the time zone", "locale": "the locale", "recursionlimit": "the recursion limit",
    "random": "the random module's seed (or draws before this cell)",
    "numpy.random": "numpy's random seed (or draws before this cell)", "numpy": "numpy's print options",
    "matplotlib": "matplotlib's settings (rcParams)", "pandas": "pandas' options", "decimal": "the decimal context",
    "warnings": "the warning filters", "formatters": "IPython's display formatters",
    "transformers": "IPython's input transformers", "interactivity": "IPython's ast_node_interactivity",
    "inline": "the inline backend's settings", "sys.modules": "modules the notebook put into sys.modules",
}

#: Lines of a code diff shown; the rest are counted.
MOST_DIFF_LINES = 12

_NOT_SET = digest_text(repr(None))


def parts_of(m) -> dict | None:
    """An entry's recorded parts, or None (an entry older than explanations).
    A field of the wrong shape (a damaged or foreign manifest) reads as
    empty: an explanation never raises."""
    parts = m.get("parts") if isinstance(m, dict) else None
    if not isinstance(parts, dict):
        return None
    out = {k: v if isinstance(v, dict) else {} for k, v in parts.items() if k in _OBJECTS}
    out["about"] = {k: v for k, v in out.get("about", {}).items() if isinstance(v, dict)}
    out.update((k, parts[k]) for k in ("code", "cell_id") if isinstance(parts.get(k), str))
    return out


_OBJECTS = ("refs", "options", "versions", "about", "environ")


def created_at(m) -> float:
    c = m.get("created")
    return float(c) if isinstance(c, (int, float)) else 0.0


def nearest(manifests, key: str | None, cell_id, source: str, before: float | None = None) -> dict | None:
    """The most recent entry (other than ``key``, created before ``before``)
    of the same cell: the same cell id; else the code most like ``source``
    (its first line the same, or at least half of it alike) among entries
    that record no cell id."""
    others = [m for m in manifests if m.get("key") != key and (before is None or created_at(m) < before)]
    if cell_id:
        same = [m for m in others if (parts_of(m) or {}).get("cell_id") == cell_id]
        if same:
            return max(same, key=created_at)
        others = [m for m in others if not (parts_of(m) or {}).get("cell_id")]  # the others are other cells'
    first, best, score = mf.first_line(source), None, 0.0
    for m in others:
        text = m.get("source") or ""
        alike = difflib.SequenceMatcher(None, text, source).ratio() if text else 0.0
        s = alike + (0.5 if first and mf.first_line(text) == first else 0.0)
        if alike >= 0.5 or s >= 0.5:
            if (s, created_at(m)) > (score, created_at(best) if best else 0.0):
                best, score = m, s
    return best


def code_diff(old: str, new: str) -> list[str]:
    """Changed lines, ``-`` old and ``+`` new, at most :data:`MOST_DIFF_LINES`."""
    lines = [line for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
             if not line.startswith(("---", "+++", "@@")) and line[1:].strip()]
    if len(lines) > MOST_DIFF_LINES:
        lines = [*lines[:MOST_DIFF_LINES], f"... and {len(lines) - MOST_DIFF_LINES} more changed lines"]
    return ["    " + line for line in lines]


def differences(old: dict, new_parts: dict, new_source: str) -> list[str] | None:
    """What differs from entry ``old`` (a manifest) to a key of ``new_parts``
    and ``new_source``, one item a line (diff lines indented); None when
    ``old`` records no parts."""
    old_parts = parts_of(old)
    if old_parts is None:
        return None
    out = []
    if old_parts.get("code") != new_parts.get("code"):
        out.append("the code changed:")
        out.extend(code_diff(old.get("source") or "", new_source) or ["    (only in how it is written)"])
    out.extend(_refs(old_parts, new_parts))
    out.extend(_options(old_parts, new_parts))
    out.extend(_versions(old_parts.get("versions") or {}, new_parts.get("versions") or {}))
    return out


def _refs(old: dict, new: dict) -> list[str]:
    a, b = old.get("refs") or {}, new.get("refs") or {}
    about_a, about_b = old.get("about") or {}, new.get("about") or {}
    out = []
    for label, how in _differing(a, b):
        if how == CHANGED:
            out.extend(_changed(label, about_a.get(label), about_b.get(label)))
        else:
            out.append(f"it {how} {_what(label)}")
    return out


NOW, NO_LONGER, CHANGED = "now reads", "no longer reads", "changed"


def _differing(a: dict, b: dict):
    """``(name, how)`` for each name whose value differs between two records,
    in order: how is :data:`NOW` (only in ``b``), :data:`NO_LONGER` (only in
    ``a``) or :data:`CHANGED`."""
    for name in sorted(set(a) | set(b)):
        if name not in a:
            yield name, NOW
        elif name not in b:
            yield name, NO_LONGER
        elif a[name] != b[name]:
            yield name, CHANGED


def _what(label: str) -> str:
    if label.startswith("import "):
        return f"module {label[7:]}"
    if label.startswith("%run "):
        return f"the script of {label}"
    if label.startswith("del "):
        return f"whether {label[4:]} exists"
    if label.isidentifier():
        return f"variable {label}"
    return label


def _changed(label: str, a, b) -> list[str]:
    if label.startswith("import "):
        return [f"module {label[7:]} changed (its file, or a value in it)"]
    if not label.isidentifier():
        return [f"{_what(label)} changed"]
    if not isinstance(a, dict) or not isinstance(b, dict):
        return [f"variable {label} changed"]
    if a.get("type") != b.get("type"):
        return [f"variable {label} changed: it was a {a.get('type')}, now a {b.get('type')}"]
    kind = a.get("type")
    if kind == "function":
        if a.get("code") and a.get("code") == b.get("code"):
            return [f"function {label}: its code is the same, but something it reads changed (a global, a default)"]
        diff = code_diff(a.get("source") or "", b.get("source") or "")
        return [f"function {label}'s code changed" + (":" if diff else ""), *diff]
    if kind == "ndarray":
        return [_array(label, a, b)]
    if kind == "DataFrame":
        return [_frame(label, a, b)]
    if "value" in a and "value" in b:
        return [f"variable {label} changed: {a['value']} → {b['value']}"]
    if "len" in a and a.get("len") != b.get("len"):
        unit = "characters" if kind == "str" else "bytes" if kind == "bytes" else "items"
        return [f"variable {label} changed: {a['len']} → {b.get('len')} {unit}"]
    return [f"variable {label} changed (its content)"]


def _shape(s) -> str:
    s = tuple(s or ())
    return str(s)


def _array(label, a, b) -> str:
    if a.get("shape") != b.get("shape") or a.get("dtype") != b.get("dtype"):
        parts = []
        if a.get("shape") != b.get("shape"):
            parts.append(f"shape {_shape(a.get('shape'))} → {_shape(b.get('shape'))}")
        if a.get("dtype") != b.get("dtype"):
            parts.append(f"dtype {a.get('dtype')} → {b.get('dtype')}")
        return f"array {label} changed: {', '.join(parts)}"
    head = f"array {label} ({_shape(a.get('shape'))}, {a.get('dtype')}) changed"
    sa, sb = a.get("slices"), b.get("slices")
    if not (isinstance(sa, list) and isinstance(sb, list) and len(sa) == len(sb)):
        return head + ": its content, same shape and dtype"
    n = 1
    for d in a.get("shape") or ():
        n *= int(d)
    cuts = [n * i // SLICES for i in range(SLICES + 1)]
    cuts = [c for i, c in enumerate(cuts[:-1]) if cuts[i + 1] > c] + [n]
    differ = [i for i, (x, y) in enumerate(zip(sa, sb)) if x != y]
    if not differ:
        return head + ": its content, same shape and dtype (its layout or memory sharing)"
    lo, hi = cuts[differ[0]], cuts[differ[-1] + 1]
    return head + f": values differ in {len(differ)} of {len(sa)} slices of its {n} elements, within flat " \
        f"positions {lo}–{hi - 1}"


def _frame(label, a, b) -> str:
    ca, cb = a.get("columns"), b.get("columns")
    if not (isinstance(ca, dict) and isinstance(cb, dict)):
        if a.get("shape") != b.get("shape"):
            return f"data frame {label} changed: shape {_shape(a.get('shape'))} → {_shape(b.get('shape'))}"
        return f"data frame {label} changed (its content)"
    parts = []
    added = [c for c in cb if c not in ca]
    removed = [c for c in ca if c not in cb]
    changed = [c for c in cb if c in ca and ca[c] != cb[c]]
    for words, names in (("columns added", added), ("columns removed", removed), ("columns changed", changed)):
        if names:
            parts.append(f"{words}: {', '.join(names[:8])}" + (f" and {len(names) - 8} more" if len(names) > 8 else ""))
    if a.get("index") != b.get("index"):
        parts.append("its index (rows) changed")
    if not parts and list(ca) != list(cb):
        parts.append("its columns were reordered")
    if a.get("shape") != b.get("shape"):
        parts.append(f"shape {_shape(a.get('shape'))} → {_shape(b.get('shape'))}")
    return f"data frame {label} changed: " + ("; ".join(parts) or "its content")


def _options(old: dict, new: dict) -> list[str]:
    a, b = old.get("options") or {}, new.get("options") or {}
    out = []
    for name in sorted(set(a) | set(b)):
        if a.get(name) == b.get(name):
            continue
        if name == "files":
            out.extend(_files(a.get(name) or "", b.get(name) or ""))
        elif name == "ambient:environ":
            out.extend(_environ(old.get("environ") or {}, new.get("environ") or {}))
        elif name.startswith("ambient:delta:"):
            if name == "ambient:delta:environ" and a.get("ambient:environ") != b.get("ambient:environ"):
                continue  # the variables it reads are named above
            out.append(f"{_provider(name[14:])}: what this session changed since the kernel started differs")
        elif name.startswith("ambient:"):
            out.append(f"{_provider(name[8:])} changed")
        elif name == "sharing":
            out.append("which of its inputs share objects changed (b = a, or views of one array)")
        else:
            out.append(f"the key's option {name} changed")
    return out


def _provider(name: str) -> str:
    return PROVIDERS.get(name, name)


def _files(a: str, b: str) -> list[str]:
    def table(text):
        return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)

    ta, tb = table(a), table(b)
    out = []
    for path, how in _differing(ta, tb):
        if how == CHANGED:
            state = " (it is missing now)" if tb[path] == "missing" else \
                " (it was missing)" if ta[path] == "missing" else ""
            out.append(f"file {path} changed{state}")
        else:
            out.append(f"file {path} is {'now' if how == NOW else 'no longer'} one of its --files")
    return out


def _environ(a: dict, b: dict) -> list[str]:
    out = []
    for name, how in _differing(a, b):
        if how == CHANGED:
            state = " (now unset)" if b[name] == _NOT_SET else " (it was unset)" if a[name] == _NOT_SET else ""
            out.append(f"environment variable {name} changed{state}")
        else:
            out.append(f"it {how} environment variable {name}")
    return out or [f"{PROVIDERS['environ']} changed"]


def _versions(a: dict, b: dict) -> list[str]:
    return [f"package {name}: {a[name]} → {b[name]}" for name in sorted(set(a) & set(b)) if a[name] != b[name]]


def compared(manifests, m: dict, cell_id=None, where: str = "the cache folder") -> list[str]:
    """Lines saying what differs between entry ``m`` and the nearest earlier
    entry of its cell among ``manifests`` (each change a ``  - `` line)."""
    import time

    from .reports import human_age

    parts = parts_of(m)
    if parts is None:
        return ["This entry predates explanations (an older ipy_lazycache stored it)."]
    earlier = nearest(manifests, m.get("key"), cell_id or parts.get("cell_id"), m.get("source") or "",
                      before=created_at(m) or None)
    if earlier is None:
        return [f"No earlier entry of this cell is in {where}: it is its first run with this cache."]
    which = f"entry {earlier['key'][:10]} (stored {human_age(time.time() - created_at(earlier))})"
    diff = differences(earlier, parts, m.get("source") or "")
    if diff is None:
        return [f"The nearest earlier entry of this cell, {which}, predates explanations "
                "(an older ipy_lazycache stored it)."]
    if not diff:
        return [f"Compared with {which}: nothing its key records differs."]
    return [f"Compared with {which}, what changed:"] + [d if d.startswith("    ") else f"  - {d}" for d in diff]

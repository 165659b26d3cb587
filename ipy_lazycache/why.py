"""Why a cell hit, missed or ran uncached, asked from the kernel: before it
runs (:func:`predict`, for a front end's badge) and after
(``%lazycache why``).

:func:`predict` keys the cell as its run would (same options, same
transformed text, same analysis and key) and looks the key up, without
running it, restoring anything or writing the store.
"""

from __future__ import annotations

import ast
import contextlib
import io

from . import auto
from .core.plan import OverBudget, Uncacheable, plan as make_plan
from .core.restore import load_manifest
from .manifest import CorruptEntry

PREFIX = "lazycache:"
WOULD_HIT, WOULD_MISS, UNKNOWN = "would hit", "would miss", "unknown"


def loaded():
    """The loaded extension (a :class:`.magics.LazyCache`), or None."""
    import sys

    return getattr(sys.modules.get(__package__), "_magics", None)  # not imported: the package loads the magics


def predict(extension, code: str, cell_id=None) -> dict:
    """``{"state": "would hit" | "would miss" | "unknown", "reason": str}``
    for the cell ``code`` if it ran now in ``extension``'s shell. Never
    raises and prints nothing (a front end asks this in the background).
    A miss's reason is what differs from the nearest entry of the cell
    (``cell_id``, else the most alike code): that reads the folder's
    manifests, so it costs a few milliseconds per hundred entries."""
    extension = extension or loaded()
    if extension is None:
        return _said(UNKNOWN, "ipy_lazycache is not loaded")
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return _predict(extension, code, cell_id)
    except Exception as exc:
        return _said(UNKNOWN, f"it could not be keyed ({type(exc).__name__}: {exc})")


def _said(state: str, reason: str) -> dict:
    return {"state": state, "reason": reason}


def _options(extension, code: str):
    """The cell's options as its run reads them, or a reason it is not cached."""
    from .options import MAGIC, is_lazycache_cell as _is_lazycache_cell, parse_line

    raw = (code or "").lstrip()
    if not _is_lazycache_cell(raw):
        if extension.auto and auto.eligible(raw):
            return parse_line("", extension.lazycache.parser), True
        return "it is not a cached cell", None
    line = raw.split("\n", 1)[0][len(MAGIC):]
    if "--off" in line.split():
        return "--off: it opts out", None
    try:
        return parse_line(line, extension.lazycache.parser), False
    except Exception as exc:  # a bad option or --help: the cell runs uncached
        return f"its options are not usable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})", None


def _predict(extension, code: str, cell_id=None) -> dict:
    from .ipython_shell import cell_magic_of

    args, is_auto = _options(extension, code)
    if is_auto is None:
        return _said(UNKNOWN, args)
    if args.force:
        return _said(WOULD_MISS, "--force runs it and stores it again")
    shell = extension.shell
    source = shell.transform_cell(code)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return _said(UNKNOWN, "it does not parse")
    if cell_magic_of(tree) is not None:
        return _said(UNKNOWN, f"%%{cell_magic_of(tree)} runs it uncached")
    if is_auto and auto.only_setup(tree):
        return _said(UNKNOWN, "imports and configuration always run")
    store = extension._open(args.dir or extension.dir or None, args.store, args.store_readonly,
                            option=bool(args.dir))
    sequence = extension.sequence
    budget = None
    if is_auto:
        from .hashing import code_hash

        budget = sequence.codes.budget(store, code_hash(tree))
    try:
        plan = make_plan(tree, shell.user_ns, sequence.memo, deps=args.deps, files=args.files, source=source,
                         ambient=sequence.ambient, budget=budget, exact_source=True)
    except OverBudget:
        return _said(UNKNOWN, "auto mode times its first run before hashing its large inputs")
    except Uncacheable as exc:
        return _said(UNKNOWN, f"it cannot be cached: {exc}")
    return _looked_up(sequence, store, plan, shell.user_ns, cell_id)


def _looked_up(sequence, store, plan, ns, cell_id) -> dict:
    try:
        manifest = load_manifest(store, plan.key)
    except CorruptEntry:
        return _said(WOULD_MISS, "its entry is damaged")
    if manifest is None:
        return _said(WOULD_MISS, _differs(store, plan, ns, cell_id))
    if not sequence.still_valid(manifest):
        return _said(WOULD_MISS, sequence.unmet_requirement(manifest))
    return _said(WOULD_HIT, f"entry {plan.key[:10]} has its current code and inputs")


def _differs(store, plan, ns, cell_id) -> str:
    """What differs from the nearest entry of the cell, in one line."""
    from . import explain as ex, key_parts, manage
    from .core.sequence import local_tier

    manifests = [e.manifest for e in manage.entries(local_tier(store)) if e.manifest is not None]
    earlier = ex.nearest(manifests, plan.key, cell_id, plan.source)
    if earlier is None:
        return "no entry of this cell yet"
    diff = ex.differences(earlier, key_parts.parts(plan, ns, (), cell_id), plan.source)
    changes = [d.rstrip(":") for d in diff or () if not d.startswith("    ")]
    if not changes:
        return "no entry has its current code and inputs"
    return changes[0] + (f" (and {len(changes) - 1} more)" if len(changes) > 1 else "")


# -- after a run: %lazycache why [CELL_ID] -------------------------------------------------


def explain(extension=None, cell_id=None):
    """What ``%lazycache why [CELL_ID]`` says about the last cell (or the
    cell ``cell_id``) of this session: a :class:`.reports.Lines` report."""
    from .reports import Lines

    extension = extension or loaded()
    if extension is None:
        return Lines([f"{PREFIX} ipy_lazycache is not loaded."])
    outcome = extension.outcomes.get(cell_id) if cell_id else extension.outcomes.last
    if outcome is None:
        which = f"cell {cell_id} has not run" if cell_id else "no cell has run"
        return Lines([f"{PREFIX} {which} with the cache this session."])
    return Lines(outcome_lines(outcome))


def outcome_lines(outcome) -> list[str]:
    """An outcome in words; a miss compared with the nearest earlier entry of its cell."""
    from .core.sequence import local_tier, names_line, secs

    cell = f"cell {outcome.cell_id}" if outcome.cell_id else "the last cell"
    auto_note = " (auto mode)" if outcome.auto else ""
    if outcome.state == "ran uncached":
        return [f"{PREFIX} {cell} ran uncached{auto_note}: {outcome.reason}."]
    names = names_line(outcome.names) or "its outputs"
    if outcome.state == "restored":
        return [f"{PREFIX} {cell} was restored{auto_note} from entry {outcome.key[:10]}: {names}, in "
                f"{secs(outcome.seconds)}, saving {secs(outcome.saved)}."]
    lines = [f"{PREFIX} {cell} missed{auto_note}, ran {secs(outcome.seconds)} and was stored as "
             f"{outcome.key[:10]} ({names})."]
    if outcome.reason:  # its own key had an entry: no other entry says more
        return lines + [f"It ran though an entry of its key exists: {outcome.reason}."]
    if outcome.store is None:
        return lines
    return lines + miss_lines(local_tier(outcome.store), outcome.key, outcome.cell_id)


def miss_lines(store, key: str, cell_id=None) -> list[str]:
    """Why the entry ``key`` was made: what differs from the nearest earlier
    entry of its cell in ``store`` (a cache folder)."""
    from . import explain as ex, manage
    from .core.restore import load_manifest

    try:
        m = load_manifest(store, key)
    except Exception as exc:
        return [f"Its entry cannot be read ({exc})."]
    if m is None:
        return ["Its entry is gone from the cache folder."]
    manifests = [e.manifest for e in manage.entries(store) if e.manifest is not None]
    return ex.compared(manifests, m, cell_id, store.describe())


def forget(extension=None, cell_id=None) -> str:
    """Remove the entry the cell (or the last cell) last restored or stored
    from its cache folder (a shared store behind it keeps its copy): its
    next run runs it. One line saying what was done."""
    from .core.sequence import local_tier
    from .manage import remove_entry

    extension = extension or loaded()
    outcome = None if extension is None else extension.outcomes.get(cell_id) if cell_id else extension.outcomes.last
    if outcome is None or not outcome.key or outcome.store is None:
        return f"{PREFIX} no entry to forget for {f'cell {cell_id}' if cell_id else 'the last cell'}."
    remove_entry(local_tier(outcome.store), outcome.key)
    return f"{PREFIX} removed entry {outcome.key[:10]}; the cell runs at its next run."


def command(extension, words):
    """``%lazycache why [CELL_ID]``; ``why NOTEBOOK [CELL_ID]`` is the command line's."""
    if words[:1] and words[0] in ("-h", "--help"):
        return None
    if len(words) > 1 and not words[0].endswith(".ipynb"):
        from .manage import BadInput

        raise BadInput("%lazycache why: give at most one cell id (or a NOTEBOOK.ipynb and a cell id)")
    return explain(extension, words[0] if words else None)

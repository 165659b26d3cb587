"""The first step of a cell: analysis, then the key, then the lookup.

:func:`plan` turns a cell's tree and the namespace into a :class:`Plan` (its
key, its refs' hashes, the modules it reads); :func:`installed_differ` says
when a hit was stored with other package versions. Everything here takes a
plain dict as the namespace, so it runs without a kernel.
"""

from __future__ import annotations

import ast
import types

from ..analysis import Analysis, Dynamic, analyze, run_input
from ..hashing import Unhashable, cell_key, code_hash, value_hash
from ..hashing_base import UnboundedFile, digest_file
from ..hashing_graph import Graph
from ..hashing_guard import peek
from ..hashing_modules import module_version
from .memo import _IMMUTABLE, Memo

#: The blob name under which a cell's last expression value is stored.
RESULT = "__lazycache_result__"

#: The blob name of the ``__annotations__`` entries the run set (``n: int = 5``).
ANNOTATIONS = "__lazycache_annotations__"


class Uncacheable(Exception):
    """The cell cannot be keyed; it runs uncached and one line says why."""


class OverBudget(Exception):
    """Hashing the cell's inputs would cost more than the caller allowed."""


def hash_cost(obj) -> float:
    """A cheap estimate of the microseconds :func:`value_hash` takes: buffers
    at ~10 GB/s, containers at ~1 µs an element. Only a bound for auto mode."""
    nbytes = peek(obj, "nbytes")
    if isinstance(nbytes, int):
        return nbytes / 10_000
    if isinstance(obj, (bytes, bytearray, str)):
        return len(obj) / 10_000
    if type(obj).__module__.startswith("pandas") and hasattr(obj, "size"):
        try:
            return int(obj.size) * 8 / 10_000
        except Exception:
            return float("inf")
    if isinstance(obj, (list, tuple, dict, set, frozenset)):
        return len(obj)
    if isinstance(obj, (types.FunctionType, type)) and getattr(obj, "__module__", None) == "__main__":
        return 150  # its source is parsed and its own globals hashed
    return 1


class Plan:
    """A keyed cell, ready to restore or to run and store.

    Plain classes here and for :class:`Outcome`, :class:`Restored`: making
    a dataclass costs a third of a millisecond at import, which every first
    hit after a restart pays."""

    def __init__(self, key: str, source: str, analysis: Analysis, refs: dict, ambient: dict | None = None,
                 code: str = "", versions: dict | None = None):
        self.key, self.source, self.analysis = key, source, analysis
        self.refs = refs  # name -> content hash before the run
        # {name: object} of the user namespace just before the body ran (IPython
        # names excluded): what the run bound, rebound or deleted is found by identity.
        self.before: dict = {}
        # id(item) -> (ref name, step, item) for the direct items of container refs
        # before the run (take_before): where a mutated ref's old items were.
        self.items: dict = {}
        self.ambient = ambient or {}  # provider -> digest of observed process state (in the key)
        self.code = code  # the code's own hash (auto mode remembers which code has entries)
        self.versions = versions or {}  # installed module -> version, for modules the cell imports
        # local module -> (module, digest of its values) before the run, for the
        # notebook's own modules the cell reaches (take_before): a run that
        # changes what one holds (``cfg.REG.append(1)``) is not stored.
        self.modules: dict = {}
        # what the cell reads from files, as keyed: "--files path" -> digest,
        # "%run line" -> the script's input (:func:`changed_reads` after the run)
        self.read: dict = {}
        self.annotations: dict = {}  # the namespace's __annotations__ before the run (a copy)
        self.options: dict = {}  # the key's options (files, observed process state, sharing): its parts, kept
        self.observed = None  # the ambient Cell the key observed (its environment variables), if any
        # id -> (object, state, items keyed) of the refs' objects the key covered by their reduce
        # (hashing_graph.Graph.reduced): the only library internals a relation may pass through
        self.keyed: dict = {}


def file_hash(path) -> str:
    """The content hash of a ``--files`` path ("missing" when absent), read
    boundedly (:func:`.hashing_base.digest_file`: no FIFO, device or
    ``/proc`` file can hang the cell). A path that cannot be read makes the
    cell uncacheable (it runs, with one line), never a traceback."""
    try:
        return digest_file(path)
    except FileNotFoundError:
        return "missing"
    except UnboundedFile as exc:
        raise Uncacheable(f"--files {exc.strerror}") from None
    except OSError as exc:
        raise Uncacheable(f"--files {path} cannot be read ({exc.strerror or exc})") from None


def plan(tree, ns: dict, memo: Memo | None = None, deps=(), files=(), source: str | None = None,
         ambient=None, budget: float | None = None, code: str | None = None, exact_source: bool = False) -> Plan:
    """Analyze and key a (transformed) cell against ``ns``.

    ``tree`` is the cell's module AST (or its source). ``ambient`` (an
    :class:`.ambient.Registry`) adds the process state the cell observes.
    ``exact_source``: ``tree`` is exactly ``ast.parse(source)`` (no AST
    transformer changed it), so its analysis and code hash may be reused
    from an earlier cell with the same text.
    Raises :class:`Uncacheable` naming the ref that cannot be hashed, and
    ``SyntaxError`` for code that does not parse.
    """
    if isinstance(tree, str):
        source, tree, exact_source = tree, ast.parse(tree), True
    elif source is None:
        source = ast.unparse(tree)
    analysis, tree_code = _analyzed(tree, source if exact_source else None)
    inputs = _inputs(analysis, ns, deps)
    names = {n for n in inputs if n in ns}
    versions = _installed_versions(inputs)
    if budget is not None:
        _within_budget(inputs, memo, budget)
    graph = Graph()
    refs = _ref_hashes(inputs, memo, graph)
    sharing = graph.digest()
    observed, cell = {}, None
    if ambient is not None:
        from ..ambient import Cell

        cell = Cell(tree, ns, names, source if exact_source else None)
        observed = ambient.key(cell)
    options = {}
    read = {f"--files {p}": file_hash(p) for p in sorted(files)}
    if files:
        options["files"] = "\n".join(f"{p}\t{read[f'--files {p}']}" for p in sorted(files))
    read.update((label, value) for label, value in inputs.items() if label.startswith("%run "))
    for name, digest in observed.items():
        options[f"ambient:{name}"] = digest
    if sharing:  # the refs share objects or memory (only then: keys of values that share nothing stay)
        options["sharing"] = sharing
    code = code or tree_code or code_hash(tree)
    key = cell_key(code, refs, options)
    made = Plan(key=key, source=source, analysis=analysis, refs=refs, ambient=observed, code=code, versions=versions)
    made.read, made.options, made.observed, made.keyed = read, options, cell, graph.reduced
    return made


def changed_reads(plan: Plan) -> list[str]:
    """The ``--files`` and ``%run`` scripts whose content is not what was
    keyed before the run: a file that changed while the cell ran (the cell
    wrote it, or another process did) may have been read in either state,
    so the run is no result of the keyed content."""
    changed = []
    for label, before in plan.read.items():
        kind, _, what = label.partition(" ")
        try:
            now = file_hash(what) if kind == "--files" else run_input(what)
        except (Uncacheable, Dynamic, OSError):
            now = None
        if now != before:
            changed.append(what if kind == "--files" else f"the script of %run {what}")
    return changed


def _inputs(analysis, ns: dict, deps) -> dict:
    """Refs, deps, history names read, values read through modules, imports
    (:meth:`.analysis.Analysis.inputs`); :class:`Uncacheable` when one
    cannot be known."""
    for name in deps:
        if name not in ns:
            raise Uncacheable(f"--deps names {name!r}, which is not defined")
    try:
        return analysis.inputs(ns, deps)
    except (Dynamic, Unhashable) as exc:  # Unhashable: a local module edited since its import
        raise Uncacheable(str(exc)) from None


def _installed_versions(inputs: dict) -> dict:
    """Installed modules the cell imports -> their versions: checked at
    lookup, not keyed (see :func:`installed_differ`)."""
    versions = {}
    for label, value in inputs.items():
        if label.startswith("import ") and isinstance(value, tuple) and value[:1] == ("installed",):
            version = module_version(value[1])
            if version:
                versions[value[1].split(".")[0]] = version
    return versions


def _within_budget(inputs: dict, memo, budget: float) -> None:
    cost = sum(hash_cost(obj) for name, obj in inputs.items() if not (memo and memo.get(name, obj)))
    if cost > budget:
        raise OverBudget(f"hashing the inputs would take about {cost:.0f} µs")


def _ref_hashes(inputs: dict, memo, graph: Graph) -> dict:
    """Each input's hash, the memo's where it may be reused (and recorded
    there when computed); what the inputs share goes into ``graph``."""
    refs = {}
    for number, name in enumerate(sorted(inputs)):
        obj = inputs[name]
        graph.next_ref(number)
        known = memo.get(name, obj) if memo else None
        if known is not None and type(obj) not in _IMMUTABLE:
            graph.see(obj, 0)  # not walked (an array over the cache's own mapping): its memory still counts
        if known is None:
            try:
                known = value_hash(obj, graph)
            except Unhashable as exc:
                raise Uncacheable(f"variable {name!r} cannot be hashed: {exc}") from None
            except RecursionError:
                raise Uncacheable(f"variable {name!r} is nested too deeply to hash") from None
            if memo is not None:
                memo.record(name, obj, known)
        refs[name] = known
    return refs


def installed_differ(versions: dict) -> list[str]:
    """Modules an entry's run imported that are installed here at another
    version, on the platform that wrote it (``{name: "platform:version"}``).
    Across platforms versions differ by nature (a site's Pyodide builds), and
    shipping results there is the point; a module absent here is no reason to
    run either: the cell could not."""
    import importlib.util
    import sys

    out = []
    for name, tagged in versions.items():
        where, _, version = tagged.rpartition(":")
        if where != sys.platform:
            continue
        try:
            here = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            here = False
        if here and module_version(name) != version:
            out.append(name)
    return out


#: Analysis and code hash of recent cell texts: a cell run again unchanged
#: (every hit) skips the AST walks. Both depend on the text alone.
_ANALYZED: dict[str, tuple[Analysis, str]] = {}


_ANALYZED_MAX = 256


def _analyzed(tree, source: str | None) -> tuple[Analysis, str | None]:
    """``analyze(tree)``, and the code hash when known: from the memo when
    ``source`` (the exact text ``tree`` was parsed from) was seen before.
    The Analysis is shared between plans: nothing may modify it."""
    if source is None:
        return analyze(tree), None
    known = _ANALYZED.get(source)
    if known is None:
        if len(_ANALYZED) >= _ANALYZED_MAX:
            _ANALYZED.pop(next(iter(_ANALYZED)))  # the oldest text
        known = _ANALYZED[source] = (analyze(tree), code_hash(tree))
    return known

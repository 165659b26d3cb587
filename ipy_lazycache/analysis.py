"""Which names a cell reads before binding them (refs), binds (defs) and
deletes, at module level.

Refs err on the side of too many: an extra ref only costs a hash, a missed
one gives a wrong restore. But a name the cell itself binds before every read
of it is not a ref, or a cell would never hit on its second run (its own
previous defs would enter the key).
"""

from __future__ import annotations

import ast
import types

from . import sources
from .hashing import module_input
from .hashing_base import UnboundedFile, Unhashable, digest_file
from .hashing_code import injected_builtin
from .hashing_modules import ModuleAttr
from .names import _HISTORY_CONTAINERS, _Names

#: IPython's own bookkeeping names; never part of a key, never restored.
IPYTHON_NAMES = frozenset(
    {"In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_oh", "_ih", "_dh", "get_ipython", "exit", "quit"}
)


class Dynamic(Exception):
    """The cell reads names that analysis cannot see, and no --deps names them."""


def is_ipython_name(name: str) -> bool:
    if name in IPYTHON_NAMES:
        return True
    if name.startswith("_i") and name[2:].isdigit():
        return True
    return name.startswith("_") and name[1:].isdigit()


class Analysis:
    """What a cell reads and binds. A plain class: making a dataclass costs a
    third of a millisecond at import, which every first hit after a restart pays."""

    def __init__(self):
        self.reads: set[str] = set()  # may be read before the cell binds them
        self.defs: set[str] = set()  # bound at module level
        self.deletes: set[str] = set()  # deleted at module level
        self.unbound_deletes: set[str] = set()  # deleted before the cell binds them: they must exist
        self.has_dynamic = False  # eval/exec/globals()/locals()/vars()/dir(): reads names unseen
        self.star_import = False  # ``from m import *``: binds names unseen
        self.surely: set[str] = set()  # bound on every path when the cell finishes without raising

        # Key inputs besides plain names (DESIGN §9), resolved by :meth:`inputs`:
        self.subscripts: dict = {}  # history container -> constant subscripts read
        self.whole: set[str] = set()  # history containers read other than by a constant subscript
        self.chains: set[tuple] = set()  # dotted reads ('cfg', 'THRESHOLD'), through modules
        self.imports: set[str] = set()  # modules the cell imports (full names)
        self.imported: dict = {}  # name bound by an import -> (module, attribute or None)
        self.runs: set[str] = set()  # the arguments of %run lines: scripts the cell executes

    def refs(self, namespace) -> list[str]:
        """The reads that exist in ``namespace`` before the cell runs (user
        names: IPython's history names are keyed by :meth:`inputs`)."""
        return sorted(
            n for n in self.reads if n in namespace and not is_ipython_name(n) and not _is_ipython_open(namespace[n])
        )

    def inputs(self, namespace, deps=()) -> dict:
        """Everything the key holds, as {label: object to hash}: the refs and
        ``deps`` by name; the history names the cell reads (``Out[3]`` is only
        entry 3, so the key does not change with every new output); values
        read through modules (``cfg.THRESHOLD``); the modules the cell
        imports. Labels other than plain names are never names in the
        namespace. Raises :class:`Dynamic` for a dynamic cell without ``deps``."""
        if self.has_dynamic and not deps:
            raise Dynamic(
                "it reads names through eval/exec/globals()/locals()/vars()/dir(), which analysis cannot see; "
                "name them with --deps NAME ... to cache it"
            )
        out = {n: namespace[n] for n in self.refs(namespace)}
        for name in deps:
            out[name] = namespace[name]
        if self.has_dynamic:  # eval/exec can read defs that already exist
            out.update((n, namespace[n]) for n in self.defs if n in namespace and not is_ipython_name(n))
        out.update(_history(self, namespace))
        for name in sorted(self.unbound_deletes):  # ``del big`` succeeds only if big exists: its absence is keyed
            if name not in namespace:
                out[f"del {name}"] = "absent"
        for line in sorted(self.runs):
            out[f"%run {line}"] = run_input(line)
        for name in self.reads:  # builtins.LIMIT = 3 in an earlier cell, read here as LIMIT
            if name not in namespace:
                injected = injected_builtin(name)
                if injected is not None:
                    out[f"builtins.{name}"] = injected[0]
        out.update(_through_modules(self, namespace))
        return out


def _is_ipython_open(obj) -> bool:
    """IPython puts its own ``open`` wrapper into every user namespace. It
    stands for the builtin, not data; hashed, it would key cells that call
    ``open()`` on the IPython version (9.18 natively, 9.12 in Pyodide)."""
    import io
    import types

    if not isinstance(obj, types.FunctionType):  # never getattr on user objects: __getattr__ may change them
        return False
    return obj.__code__.co_name == "_modified_open" and getattr(obj, "__wrapped__", None) is io.open


# ----------------------------------------------------------------------------
# Module level: flow-sensitive reads


class _Flow:
    """Walks module statements in order, tracking names that are surely
    bound; a load of a name that may not be bound yet is a ref."""

    def __init__(self):
        self.out = Analysis()

    def stmts(self, body, bound: set) -> set:
        for stmt in body:
            bound = self.stmt(stmt, bound)
        return bound

    def _simple(self, node, bound: set) -> _Names:
        names = _Names()
        names.scan(node)
        self.out.reads |= names.loads - bound
        self.out.defs |= names.binds | names.maybe
        self.out.deletes |= names.deletes
        self.out.unbound_deletes |= names.deletes - bound
        self.out.has_dynamic |= names.dynamic
        self.out.star_import |= names.star
        for name, keys in names.subscripts.items():
            if name not in bound:
                self.out.subscripts.setdefault(name, set()).update(keys)
        self.out.whole |= names.whole - bound
        self.out.chains |= names.chains
        self.out.imports |= names.imports
        self.out.runs |= names.runs
        self.out.imported.update(names.imported)
        return names

    def _exprs(self, nodes, bound):
        for node in nodes:
            if node is not None:
                self._simple(node, bound)

    def stmt(self, node, bound: set) -> set:
        if isinstance(node, (ast.If, ast.While)):
            self._exprs([node.test], bound)
            after_body = self.stmts(node.body, set(bound))
            after_else = self.stmts(node.orelse, set(bound))
            return bound | (after_body & after_else) if isinstance(node, ast.If) else bound
        if isinstance(node, (ast.For, ast.AsyncFor)):
            self._exprs([node.iter], bound)
            target = self._simple(node.target, bound)
            self.stmts(node.body, bound | target.binds)
            self.stmts(node.orelse, set(bound))
            return bound
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self._exprs([item.context_expr], bound)
                if item.optional_vars is not None:
                    bound = bound | self._simple(item.optional_vars, bound).binds
            # A context manager can swallow the body's exception
            # (contextlib.suppress): what the body binds is maybe-bound, as in an ``if``.
            self.stmts(node.body, set(bound))
            return bound
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            # Handlers start from what was bound before the try; afterwards a
            # name is bound if the body (plus else) and every handler bound it.
            surely = self.stmts(node.orelse, self.stmts(node.body, set(bound)))
            for handler in node.handlers:
                self._exprs([handler.type], bound)
                name = {handler.name} if handler.name else set()
                self.out.defs |= name
                self.out.deletes |= name
                surely &= self.stmts(handler.body, bound | name) - name
            return self.stmts(node.finalbody, set(bound)) | surely
        if type(node).__name__ == "Match":
            self._exprs([node.subject], bound)
            for case in node.cases:
                captures = self._simple(case.pattern, bound).binds
                self._exprs([case.guard], bound | captures)
                self.stmts(case.body, bound | captures)
            return bound
        names = self._simple(node, bound)
        binds = names.binds
        if isinstance(node, ast.AnnAssign) and node.value is None:
            binds = binds - {node.target.id} if isinstance(node.target, ast.Name) else binds  # ``x: int`` binds nothing
        return (bound | binds) - names.deletes


def analyze(tree_or_source) -> Analysis:
    """Analyze a module AST (or source string) for refs, defs and deletes."""
    tree = ast.parse(tree_or_source) if isinstance(tree_or_source, str) else tree_or_source
    flow = _Flow()
    flow.out.surely = flow.stmts(tree.body, set())
    return flow.out


# ----------------------------------------------------------------------------
# Key inputs besides plain names


def _history_label(name: str) -> str:
    """``Out[3]`` for ``_3``, ``In[3]`` for ``_i3``, ``Out[_]`` for ``_``."""
    if name.startswith("_i") and name[2:].isdigit():
        return f"In[{int(name[2:])!r}]"
    if name[1:].isdigit():
        return f"Out[{int(name[1:])!r}]"
    return f"In[{name}]" if name.startswith("_i") else f"Out[{name}]"


def _history(a: Analysis, ns) -> dict:
    """IPython's history names the cell reads. ``(present, value)`` pairs, so
    that a missing entry and a stored value never look alike. After a restart
    and a re-run, ``_`` is the same value again: the key still matches."""
    out = {}
    for name in sorted(a.reads):
        if not is_ipython_name(name) or name in ("get_ipython", "exit", "quit"):
            continue
        if name not in _HISTORY_CONTAINERS:
            out[_history_label(name)] = (name in ns, ns.get(name))
            continue
        target, container = _HISTORY_CONTAINERS[name], ns.get(name)
        if name in a.whole or container is None or target == "_dh":
            out[f"{target}[:]"] = container  # the whole history: such a cell rarely hits twice
            continue
        for key in sorted(a.subscripts.get(name, ()), key=repr):
            try:
                out[f"{target}[{key!r}]"] = (True, container[key])
            except (KeyError, IndexError, TypeError):
                out[f"{target}[{key!r}]"] = (False, None)
    return out


def _through_modules(a: Analysis, ns) -> dict:
    """The modules the cell imports, and every value it reads through a
    module by a dotted name (``cfg.THRESHOLD``, ``np.pi``) or imports from one
    (``from cfg import THRESHOLD``). ``os.environ`` is left to the ambient
    environment provider, which keys only the variables read."""
    out = {}
    if not (a.imports or a.chains or a.imported):
        return out
    for module in sorted(a.imports):
        out[f"import {module}"] = module_input(module)
    # Names the cell binds by its own imports are not followed: whether their
    # module is loaded yet must not change the key (the import itself is keyed
    # above, by file or version, the same either way).
    starts = []  # (labels so far, object, attributes still to read)
    for chain in sorted(a.chains):
        root = chain[0]
        if root in a.imported:
            continue
        if root in a.reads and root in ns and not is_ipython_name(root):
            obj = ns[root]
        else:
            continue
        starts.append(([root], obj, list(chain[1:])))
    for labels, obj, attrs in starts:
        owner, rest = obj, list(attrs)
        while rest and isinstance(obj, types.ModuleType) and not (obj.__name__ == "os" and rest[0] == "environ"):
            owner = obj
            try:  # a module's __getattr__ may import or raise: the run would do the same
                obj = getattr(obj, rest[0], ModuleAttr.ABSENT)
            except Exception:  # noqa: BLE001
                obj = ModuleAttr.ABSENT
            labels = [*labels, rest.pop(0)]
            if obj is ModuleAttr.ABSENT:
                break
        if len(labels) > 1 and owner is not obj:
            out[".".join(labels)] = ModuleAttr(owner, obj, labels[-1])
        if rest and obj is not ModuleAttr.ABSENT:
            patched = _patched(obj, rest[0])
            if patched is not None:
                out[".".join([*labels, rest[0]])] = patched
    return out


def _patched(obj, attr):
    """A notebook function set on an installed class (``pd.DataFrame.f = f``),
    read as ``df.f`` or ``pd.DataFrame.f``: the class is keyed by its name and
    version only, so the function is keyed here. Looked up on the class, as
    Python does, without calling any descriptor."""
    cls = obj if isinstance(obj, type) else type(obj)
    if sources.is_notebook_module_name(getattr(cls, "__module__", None)):
        return None  # a notebook class is keyed with all its attributes
    for klass in getattr(cls, "__mro__", ()):
        value = klass.__dict__.get(attr)
        if value is not None:
            break
    else:
        return None
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    elif isinstance(value, property):
        value = value.fget
    code = getattr(value, "__code__", None)
    return value if isinstance(value, types.FunctionType) and sources.is_notebook_code(code) else None


def run_input(line: str):
    """What ``%run line`` executes, to key it: the script's content (or the
    module's, for ``-m``). Raises :class:`Dynamic` where the script is named
    by an expansion (``%run $path``) or cannot be found."""
    import os
    import shlex

    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    takes_value = {"-s", "-T", "-D", "-l"}  # profiler options (-p) followed by their value
    i = 0
    while i < len(words) and words[i].startswith("-"):
        if words[i] == "-m" and i + 1 < len(words):
            return ("module", module_input(words[i + 1]))
        i += 2 if words[i] in takes_value else 1
    path = os.path.expanduser(words[i]) if i < len(words) else ""
    if not path or any(c in path for c in "${}*?["):
        raise Dynamic(f"%run {line!r} names its script by an expansion analysis cannot follow")
    for candidate in (path, path + ".py", path + ".ipy"):
        if os.path.isfile(candidate):
            try:
                return ("script", digest_file(candidate))
            except UnboundedFile as exc:  # /proc/self/pagemap: a "file" that never ends
                raise Unhashable(f"%run {exc.strerror}") from None
            except OSError as exc:
                raise Unhashable(f"%run {candidate} cannot be read ({exc.strerror or exc})") from None
    return ("missing", path)



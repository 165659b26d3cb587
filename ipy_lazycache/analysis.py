"""Which names a cell reads before binding them (refs), binds (defs) and
deletes, at module level.

Refs err on the side of too many: an extra ref only costs a hash, a missed
one gives a wrong restore. But a name the cell itself binds before every read
of it is not a ref, or a cell would never hit on its second run (its own
previous defs would enter the key).
"""

from __future__ import annotations

import ast
import keyword
import re
import sys
import types

from . import sources
from .hashing import ModuleAttr, digest_file, import_state, injected_builtin

#: IPython's own bookkeeping names; never part of a key, never restored.
IPYTHON_NAMES = frozenset(
    {"In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_oh", "_ih", "_dh", "get_ipython", "exit", "quit"}
)

#: Calls through which code can read names that analysis cannot see.
DYNAMIC = frozenset({"eval", "exec", "globals", "locals", "vars", "dir"})

#: Of those, the ones that read only what they are given with an argument
#: (``vars(obj)``, ``dir(obj)``) or a globals mapping (``eval(s, g)``).
_ARG_SAFE = {"vars": 1, "dir": 1, "eval": 2, "exec": 2}

#: Magics and shell attributes that read the whole namespace.
_DYNAMIC_MAGICS = frozenset({"who", "whos", "who_ls", "store"})
_DYNAMIC_SHELL = frozenset({"user_ns", "user_global_ns", "ev", "ex", "run_cell", "push"})

#: History names that are containers, and what a constant subscript of them reads.
_HISTORY_CONTAINERS = {"In": "In", "_ih": "In", "Out": "Out", "_oh": "Out", "_dh": "_dh"}


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
        for line in sorted(self.runs):
            out[f"%run {line}"] = _run_input(line)
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

    code = getattr(obj, "__code__", None)
    return getattr(code, "co_name", None) == "_modified_open" and getattr(obj, "__wrapped__", None) is io.open


_SCOPES = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
)


class _Names:
    """Direct loads and bindings of one scope; nested scopes add their free names."""

    def __init__(self):
        self.loads: set[str] = set()
        self.binds: set[str] = set()
        self.deletes: set[str] = set()
        self.globals: set[str] = set()
        self.maybe: set[str] = set()  # walrus targets of comprehensions, which may not run
        self.dynamic = False
        self.star = False
        self.subscripts: dict[str, set] = {}
        self.whole: set[str] = set()
        self.chains: set[tuple] = set()
        self.imports: set[str] = set()
        self.imported: dict[str, tuple] = {}
        self.runs: set[str] = set()
        self._safe_calls: set[int] = set()  # ids of eval/dir/... Name nodes called with enough arguments

    def absorb(self, inner: _Names):
        """What a nested scope reads besides plain names."""
        for name, keys in inner.subscripts.items():
            self.subscripts.setdefault(name, set()).update(keys)
        self.whole |= inner.whole
        self.chains |= inner.chains
        self.imports |= inner.imports
        self.runs |= inner.runs
        self.dynamic |= inner.dynamic

    def scan(self, node):
        if isinstance(node, _SCOPES):
            self._nested(node)
            return
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            base, key = node.value, node.slice
            if (
                isinstance(base, ast.Name)
                and base.id in _HISTORY_CONTAINERS
                and isinstance(key, ast.Constant)
                and type(key.value) in (int, str)
            ):
                self.loads.add(base.id)
                self.subscripts.setdefault(base.id, set()).add(key.value)
                return
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            chain = _chain(node)
            if chain is not None:
                self.chains.add(chain)
                self.dynamic |= chain[-1] in ("user_ns", "user_global_ns")
            self.dynamic |= _shell_attr(node) in _DYNAMIC_SHELL
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and len(node.args) + len(node.keywords) >= _ARG_SAFE.get(node.func.id, 99)
        ):
            self._safe_calls.add(id(node.func))
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.loads.add(node.id)
                self.dynamic |= node.id in DYNAMIC and id(node) not in self._safe_calls
                if node.id in _HISTORY_CONTAINERS:
                    self.whole.add(node.id)
            elif isinstance(node.ctx, ast.Store):
                self.binds.add(node.id)
            else:
                self.deletes.add(node.id)
            return
        magic = _magic_name(node)
        if magic in _DYNAMIC_MAGICS:
            self.dynamic = True
        elif magic == "run":  # %run script.py: the script's code is the cell's code too
            line = node.args[1] if len(node.args) > 1 else None
            self.runs.add(line.value if isinstance(line, ast.Constant) and isinstance(line.value, str) else "$")
        inline = _magic_code(node)
        if inline is not None:
            for stmt in inline.body:  # %time x = f(): x is bound, f is read
                self.scan(stmt)
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            self.loads.add(node.target.id)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                self.imports.add(alias.name)
                bound = alias.asname or alias.name.split(".")[0]
                self.binds.add(bound)
                self.imported[bound] = (alias.name if alias.asname else bound, None)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                self.imports.add(node.module)
            for alias in node.names:
                if alias.name == "*":
                    self.star = True
                else:
                    self.binds.add(alias.asname or alias.name)
                    if node.level == 0 and node.module:
                        self.imported[alias.asname or alias.name] = (node.module, alias.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            self.globals.update(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            self.binds.add(node.name)
            self.deletes.add(node.name)  # Python unbinds it after the handler
        elif type(node).__name__ in ("MatchAs", "MatchStar") and node.name:
            self.binds.add(node.name)
        elif type(node).__name__ == "MatchMapping" and node.rest:
            self.binds.add(node.rest)
        elif type(node).__name__ == "TypeAlias":  # 3.12+: ``type X = ...``
            self.binds.add(node.name.id)
            self._nested_expr(node.value)
            return
        for child in ast.iter_child_nodes(node):
            self.scan(child)

    def _nested(self, node):
        """A nested scope: bind its name here; its free names are loads here.

        Decorators, defaults and bases are evaluated here too; scanning them
        with the body over-approximates, which is safe.
        """
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.binds.add(node.name)
        free, globals_bound, walrus, inner = _free(node)
        self.loads |= free
        self.maybe |= globals_bound | walrus
        self.absorb(inner)

    def _nested_expr(self, node):
        inner = _Names()
        inner.scan(node)
        self.loads |= inner.loads
        self.absorb(inner)


def _shell_attr(node) -> str | None:
    """'user_ns' for ``get_ipython().user_ns``."""
    base = node.value
    if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "get_ipython":
        return node.attr
    return None


def _chain(node) -> tuple | None:
    """('a', 'b', 'c') for ``a.b.c``; None when the base is not a name."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return (node.id, *reversed(attrs)) if isinstance(node, ast.Name) else None


#: Magics whose argument (or cell body) is Python run in the user namespace.
CODE_MAGICS = frozenset({"time", "timeit", "prun", "capture"})


#: IPython expands ``{expr}`` and ``$name`` in magic and shell lines.
_EXPANDED = re.compile(r"\{([^{}]*)\}|\$([A-Za-z_]\w*)")


def _magic_name(node) -> str | None:
    """'who' for ``get_ipython().run_line_magic('who', '')``."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("run_line_magic", "run_cell_magic")
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return node.args[0].value
    return None


def _magic_code(node):
    """Code hidden in strings by IPython's transforms, as a module: the code of
    ``%time x = f()`` (``run_line_magic('time', 'x = f()')``, and the cell
    magic form), and the ``{expr}``/``$name`` expansions of any magic or
    ``!shell`` line. Its names are the cell's names too. None otherwise."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    kind = node.func.attr
    if kind not in ("run_line_magic", "run_cell_magic", "system", "getoutput") or not node.args:
        return None
    args = node.args
    if not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args):
        return None
    if kind in ("run_line_magic", "run_cell_magic") and len(args) >= 2 and args[0].value in CODE_MAGICS:
        code = args[-1].value
    else:
        code = "\n".join(m.group(1) or m.group(2) for a in args for m in _EXPANDED.finditer(a.value))
    try:
        return ast.parse(code)
    except SyntaxError:  # e.g. %timeit -n 10 f(x): every identifier is a read
        words = [w for w in re.findall(r"[A-Za-z_]\w*", code) if not keyword.iskeyword(w)]
        return ast.parse("\n".join(words))


def _params(args: ast.arguments) -> set[str]:
    every = list(getattr(args, "posonlyargs", [])) + args.args + args.kwonlyargs
    every += [a for a in (args.vararg, args.kwarg) if a]
    return {a.arg for a in every}


def _free(node):
    """Names a nested scope reads from outside, names it binds in the module
    through ``global``, walrus targets that leak out of comprehensions, and
    the scope's own :class:`_Names` (dynamic access, dotted reads...)."""
    inner = _Names()
    local: set[str] = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        local |= _params(node.args)
        for d in getattr(node, "decorator_list", []):
            inner.scan(d)
        for default in node.args.defaults + [d for d in node.args.kw_defaults if d]:
            inner.scan(default)
        body = node.body if isinstance(node.body, list) else [node.body]
        for stmt in body:
            inner.scan(stmt)
        if not isinstance(node, ast.Lambda):
            for a in (node.args.posonlyargs + node.args.args + node.args.kwonlyargs):
                if a.annotation:
                    inner.scan(a.annotation)
            if node.returns:
                inner.scan(node.returns)
        local |= inner.binds - inner.globals
        walrus = set()
    elif isinstance(node, ast.ClassDef):
        for expr in node.decorator_list + node.bases + [k.value for k in node.keywords]:
            inner.scan(expr)
        for stmt in node.body:
            inner.scan(stmt)
        # Class bodies read their own names first, then globals: keep them all.
        walrus = set()
    else:  # a comprehension
        targets = _Names()
        for gen in node.generators:
            targets.scan(gen.target)
            inner.scan(gen.iter)
            for cond in gen.ifs:
                inner.scan(cond)
        for part in ("elt", "key", "value"):
            if getattr(node, part, None) is not None:
                inner.scan(getattr(node, part))
        local |= targets.binds
        walrus = {n.target.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr)}
        inner.binds -= walrus
    return inner.loads - local, inner.globals & inner.binds, walrus, inner


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
            return self.stmts(node.body, bound)
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


def imports_in(tree) -> set[str]:
    """Modules a function's (or class's) code imports when it runs."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def module_input(name: str):
    """What ``import name`` reads, to key it (see :func:`_module_input`)."""
    return _module_input(name)


def reads_globals_unseen(tree) -> bool:
    """Whether a function's (or class's) code reads its module's globals by
    names its source does not show: ``globals()``, ``eval``/``exec`` without
    a globals mapping (or passed around), ``import __main__``, the shell's
    namespace. (There ``locals()``, ``vars()`` and ``dir()`` see only the
    function's own names.)"""
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
            if len(node.args) + len(node.keywords) < 2:
                return True
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id == "globals" or node.id in ("eval", "exec") and id(node) not in called:
                return True
        elif isinstance(node, ast.Import) and any(a.name == "__main__" for a in node.names):
            return True
        elif isinstance(node, ast.ImportFrom) and node.module == "__main__":
            return True
        elif isinstance(node, ast.Attribute) and node.attr in ("user_ns", "user_global_ns"):
            return True
    return False


def free_names(tree) -> set[str]:
    """Globals read by a function's (or class's) source, for hashing it."""
    nodes = tree.body if isinstance(tree, ast.Module) else [tree]
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, _SCOPES):
            out |= _free(node)[0]
        else:
            names = _Names()
            names.scan(node)
            out |= names.loads
    return out


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
        out[f"import {module}"] = _module_input(module)
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


def _run_input(line: str):
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
            return ("module", _module_input(words[i + 1]))
        i += 2 if words[i] in takes_value else 1
    path = os.path.expanduser(words[i]) if i < len(words) else ""
    if not path or any(c in path for c in "${}*?["):
        raise Dynamic(f"%run {line!r} names its script by an expansion analysis cannot follow")
    for candidate in (path, path + ".py", path + ".ipy"):
        if os.path.isfile(candidate):
            return ("script", digest_file(candidate))
    return ("missing", path)


def _module_input(name: str):
    """A module an ``import`` reads, the same whether it is loaded yet or not:
    its file when the notebook's folder provides it (the import reads it),
    else its name."""
    loaded = sys.modules.get(name)
    path = getattr(loaded, "__file__", None) if loaded is not None else _module_file(name)
    if path is not None and sources.is_local_file(path):
        if loaded is not None:  # the code as imported (stale: Unhashable), plus values changed since
            return ("file", name, import_state(loaded))
        try:
            return ("file", name, digest_file(path))
        except OSError:
            return ("unreadable", name)
    # Installed: by name only, so a site whose Pyodide has another version
    # (or none) can still hit; the version is checked at lookup instead
    # (cache.plan records it, the magic compares).
    return ("installed", name)


def _module_file(name: str) -> str | None:
    """The file ``import name`` would execute, found without importing."""
    import importlib.util
    import os

    top, *rest = name.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except Exception:  # noqa: BLE001 - ImportError, ValueError, or a broken finder: the import will say
        return None
    if spec is None:
        return None
    path = spec.origin if spec.has_location else None
    locations = list(spec.submodule_search_locations or [])
    for part in rest:
        path = None
        for folder in locations:
            for candidate in (os.path.join(folder, part, "__init__.py"), os.path.join(folder, part + ".py")):
                if os.path.isfile(candidate):
                    path = candidate
                    break
            if path:
                break
        if path is None:
            return None
        locations = [os.path.dirname(path)] if path.endswith("__init__.py") else []
    return path

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
from dataclasses import dataclass, field

#: IPython's own bookkeeping names; never part of a key, never restored.
IPYTHON_NAMES = frozenset(
    {"In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_oh", "_ih", "_dh", "get_ipython", "exit", "quit"}
)

#: Calls through which code can read names that analysis cannot see.
DYNAMIC = frozenset({"eval", "exec", "globals", "locals", "vars"})


def is_ipython_name(name: str) -> bool:
    if name in IPYTHON_NAMES:
        return True
    if name.startswith("_i") and name[2:].isdigit():
        return True
    return name.startswith("_") and name[1:].isdigit()


@dataclass
class Analysis:
    reads: set[str] = field(default_factory=set)  # may be read before the cell binds them
    defs: set[str] = field(default_factory=set)  # bound at module level
    deletes: set[str] = field(default_factory=set)  # deleted at module level
    has_dynamic: bool = False  # eval/exec/globals()/import *
    surely: set[str] = field(default_factory=set)  # bound on every path when the cell finishes without raising

    def refs(self, namespace) -> list[str]:
        """The reads that exist in ``namespace`` before the cell runs."""
        return sorted(
            n for n in self.reads if n in namespace and not is_ipython_name(n) and not _is_ipython_open(namespace[n])
        )


def _is_ipython_open(obj) -> bool:
    """IPython puts its own ``open`` wrapper into every user namespace. It
    stands for the builtin, not data; hashed, it would key cells that call
    ``open()`` on the IPython version (9.18 natively, 9.12 in Pyodide)."""
    import io

    code = getattr(obj, "__code__", None)
    return getattr(code, "co_name", None) == "_modified_open" and getattr(obj, "__wrapped__", None) is io.open


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class _Names:
    """Direct loads and bindings of one scope; nested scopes add their free names."""

    def __init__(self):
        self.loads: set[str] = set()
        self.binds: set[str] = set()
        self.deletes: set[str] = set()
        self.globals: set[str] = set()
        self.maybe: set[str] = set()  # walrus targets of comprehensions, which may not run
        self.dynamic = False

    def scan(self, node):
        if isinstance(node, _SCOPES):
            self._nested(node)
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.loads.add(node.id)
                self.dynamic |= node.id in DYNAMIC
            elif isinstance(node.ctx, ast.Store):
                self.binds.add(node.id)
            else:
                self.deletes.add(node.id)
            return
        inline = _magic_code(node)
        if inline is not None:
            for stmt in inline.body:  # %time x = f(): x is bound, f is read
                self.scan(stmt)
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            self.loads.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    self.dynamic = True
                else:
                    self.binds.add(alias.asname or alias.name.split(".")[0])
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
        free, globals_bound, walrus, dynamic = _free(node)
        self.loads |= free
        self.maybe |= globals_bound | walrus
        self.dynamic |= dynamic

    def _nested_expr(self, node):
        inner = _Names()
        inner.scan(node)
        self.loads |= inner.loads
        self.dynamic |= inner.dynamic


#: Magics whose argument (or cell body) is Python run in the user namespace.
CODE_MAGICS = frozenset({"time", "timeit", "prun", "capture"})


#: IPython expands ``{expr}`` and ``$name`` in magic and shell lines.
_EXPANDED = re.compile(r"\{([^{}]*)\}|\$([A-Za-z_]\w*)")


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
    whether it uses dynamic access."""
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
    return inner.loads - local, inner.globals & inner.binds, walrus, inner.dynamic


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

"""Which names a piece of code reads and binds, scope by scope: the AST
walk under :mod:`.analysis` (a cell's refs and defs) and :mod:`.hashing`
(the globals and imports of a notebook function)."""

from __future__ import annotations

import ast
import keyword
import re

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
        if self._history_read(node):
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
            self._name(node)
            return
        self.dynamic |= reaches_main(node)  # the namespace through sys.modules['__main__'], like globals()
        self._magic(node)
        if self._binding(node):
            return
        for child in ast.iter_child_nodes(node):
            self.scan(child)

    def _history_read(self, node) -> bool:
        """``Out[3]``, ``In[2]``: a constant subscript of a history container."""
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
                return True
        return False

    def _name(self, node):
        if isinstance(node.ctx, ast.Load):
            self.loads.add(node.id)
            self.dynamic |= node.id in DYNAMIC and id(node) not in self._safe_calls
            if node.id in _HISTORY_CONTAINERS:
                self.whole.add(node.id)
        elif isinstance(node.ctx, ast.Store):
            self.binds.add(node.id)
        else:
            self.deletes.add(node.id)

    def _magic(self, node):
        """Magics that read the namespace, ``%run``, and code inside magics."""
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

    def _binding(self, node) -> bool:
        """Names a statement binds other than by assignment; True where its
        children are done with (a type alias)."""
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            self.loads.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self._imports(node)
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
            return True
        return False

    def _imports(self, node):
        if isinstance(node, ast.Import):
            for alias in node.names:
                self.imports.add(alias.name)
                bound = alias.asname or alias.name.split(".")[0]
                self.binds.add(bound)
                self.imported[bound] = (alias.name if alias.asname else bound, None)
            return
        if node.level == 0 and node.module:
            self.imports.add(node.module)
        for alias in node.names:
            if alias.name == "*":
                self.star = True
            else:
                self.binds.add(alias.asname or alias.name)
                if node.level == 0 and node.module:
                    self.imported[alias.asname or alias.name] = (node.module, alias.name)

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


def imports_in(tree) -> set[str]:
    """Modules a function's (or class's) code imports when it runs."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


#: Attributes that are the notebook's namespace (or may be), on any object.
_NAMESPACE_ATTRS = frozenset({"user_ns", "user_global_ns", "user_module", "f_globals", "f_locals"})


def reaches_main(node) -> bool:
    """Whether ``node`` reaches the notebook's namespace through the module
    object: ``import __main__``, ``sys.modules['__main__']``,
    ``__import__('__main__')``, ``importlib.import_module('__main__')``
    (a ``__name__ == "__main__"`` test reads nothing); or an attribute that
    is a namespace, whatever it is read from (``get_ipython().user_module``,
    ``sys._getframe().f_globals``)."""
    if isinstance(node, ast.Attribute):
        return node.attr in _NAMESPACE_ATTRS
    if isinstance(node, ast.Import):
        return any(a.name == "__main__" for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.module == "__main__"
    if isinstance(node, ast.Subscript):
        key = node.slice
        return isinstance(key, ast.Constant) and key.value == "__main__"
    if isinstance(node, ast.Call) and node.args:
        func, first = node.func, node.args[0]
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name in ("__import__", "import_module", "get") and isinstance(first, ast.Constant) and (
            first.value == "__main__")
    return False


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
        elif reaches_main(node):
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

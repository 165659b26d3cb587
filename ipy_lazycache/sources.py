"""Where code comes from: the AST node of a function or lambda, and whether a
module or function belongs to the notebook (its cells and its own folder) or
to an installed package.

A function is keyed by its own node, found from its code object, never by
``inspect.getsource``: that follows ``__wrapped__`` (a decorator's wrapper
would be keyed by the function it wraps) and returns whole lines (two lambdas
on one line would share a key).
"""

from __future__ import annotations

import ast
import linecache
import os
import sys

#: Parsed sources, by file name: (the linecache lines list, its tree).
_trees: dict[str, tuple[list, ast.Module]] = {}


class SourceUnknown(Exception):
    """The node of a code object cannot be found soundly."""


def _tree(filename: str, module_globals=None):
    lines = linecache.getlines(filename, module_globals)
    if not lines:
        return None
    cached = _trees.get(filename)
    if cached is not None and cached[0] is lines:
        return cached[1]
    flags = ast.PyCF_ONLY_AST | getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)
    try:
        tree = compile("".join(lines), filename, "exec", flags, dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    _trees[filename] = (lines, tree)
    return tree


def _params(args: ast.arguments) -> tuple:
    names = [a.arg for a in list(args.posonlyargs) + list(args.args)]
    names += [a.arg for a in args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a]
    return tuple(names)


def _code_params(code) -> tuple:
    n = code.co_argcount + code.co_kwonlyargcount
    n += bool(code.co_flags & 0x04) + bool(code.co_flags & 0x08)  # *args, **kwargs
    return tuple(code.co_varnames[:n])


def _first_line(node) -> int:
    decorators = getattr(node, "decorator_list", None)
    return min([node.lineno] + [d.lineno for d in decorators]) if decorators else node.lineno


def _contains(node, pos) -> bool:
    line, end_line, col, end_col = pos
    start, stop = (node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)
    return start <= (line, col) and (end_line, end_col) <= stop


def code_node(code, module_globals=None):
    """The ``def``/``lambda`` node that compiled to ``code``, or None when its
    source is not available. Raises :class:`SourceUnknown` when the source is
    there but the node cannot be told apart from another one."""
    tree = _tree(code.co_filename, module_globals)
    if tree is None:
        return None
    is_lambda = code.co_name == "<lambda>"
    params = _code_params(code)
    found = []
    for node in ast.walk(tree):
        if is_lambda:
            if isinstance(node, ast.Lambda) and node.lineno == code.co_firstlineno:
                found.append(node)
        elif (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name == code.co_name
            and _first_line(node) == code.co_firstlineno
        ):
            found.append(node)
    found = [n for n in found if _params(n.args) == params]
    if len(found) > 1:
        found = _by_position(found, code)
    if len(found) > 1 and len({ast.dump(n.body if is_lambda else n) for n in found}) == 1:
        found = found[:1]  # identical code: either node gives the same key
    if len(found) == 1:
        return found[0]
    if not found:
        return None  # the file changed since the function was defined
    raise SourceUnknown(
        f"{len(found)} lambdas on line {code.co_firstlineno} of {code.co_filename} cannot be told apart; "
        "give them names with def"
    )


def _by_position(nodes, code):
    """Python 3.11+: the innermost candidate whose body holds every position
    the code's instructions carry. On 3.10 (no positions) nothing narrows."""
    positions = getattr(code, "co_positions", None)
    if positions is None:
        return nodes
    seen = {p for p in positions() if None not in p and p[2] != p[3]}
    if not seen:
        return nodes
    inside = [n for n in nodes if all(_contains(n.body if isinstance(n, ast.Lambda) else n, p) for p in seen)]
    if len(inside) <= 1:
        return inside
    innermost = [n for n in inside if not any(m is not n and _contains(n, _span(m)) for m in inside)]
    return innermost


def _span(node):
    return (node.lineno, node.end_lineno, node.col_offset, node.end_col_offset)


# ----------------------------------------------------------------------------
# Notebook code or installed code


def _installed_roots() -> tuple[str, ...]:
    import site
    import sysconfig

    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.realpath(path))
    try:
        roots.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # virtualenv's old site.py
        pass
    roots.add(os.path.realpath(getattr(site, "USER_SITE", None) or "/nonexistent"))
    return tuple(sorted(r.rstrip(os.sep) + os.sep for r in roots))


_INSTALLED: tuple[str, ...] | None = None


def is_installed_path(path: str) -> bool:
    global _INSTALLED
    if _INSTALLED is None:
        _INSTALLED = _installed_roots()
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts or real.startswith(_INSTALLED)


_local: dict[tuple[str, str], bool] = {}


_OWN = os.path.dirname(os.path.realpath(__file__)) + os.sep  # this package: never the notebook's


def is_local_file(path: str | None) -> bool:
    """A file of the notebook's own project: under its working directory or
    that directory's parent (``notebooks/`` next to ``src/`` with
    ``sys.path.append('..')``), and not of an installed package, the
    standard library or this extension."""
    if not path or path.startswith("<"):
        return False
    cwd = os.getcwd()
    known = _local.get((path, cwd))
    if known is None:
        real = os.path.realpath(path)
        folder = os.path.realpath(cwd)
        roots = [folder.rstrip(os.sep) + os.sep]
        parent = os.path.dirname(folder.rstrip(os.sep))
        if parent and parent != os.sep:
            roots.append(parent.rstrip(os.sep) + os.sep)
        known = (
            real.startswith(tuple(roots)) and not real.startswith(_OWN) and not is_installed_path(real)
        )
        _local[(path, cwd)] = known
    return known


def is_local_module(module) -> bool:
    name = getattr(module, "__name__", None)
    if name == "__main__":
        return True
    return is_local_file(getattr(module, "__file__", None))


def is_notebook_code(code) -> bool:
    """Code compiled from a cell (IPython's in-memory sources, ``<...>``
    names, ipykernel's cell files) or from a local module."""
    filename = code.co_filename
    if filename.startswith("<"):
        return True
    entry = linecache.cache.get(filename)
    if entry is not None and entry[1] is None:  # registered in memory: a cell
        return True
    return is_local_file(filename)


def is_notebook_module_name(name: str | None) -> bool:
    """``__main__`` or a local module already imported."""
    if not name:
        return False
    if name == "__main__":
        return True
    module = sys.modules.get(name)
    return module is not None and is_local_module(module)


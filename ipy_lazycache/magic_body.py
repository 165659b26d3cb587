"""How a ``%%lazycache`` cell's text reaches IPython.

On a cell's first line the magic line is blanked by a cleanup transform and
the body runs as the plain cell it is (:mod:`.magics` keys it from events).
Below another cell magic that runs its body itself (``%%time`` above
``%%lazycache``), the line stays: IPython calls the ``lazycache`` magic with
the body, as it would without the extension, and :func:`run_body` runs it.
"""

from __future__ import annotations

import ast
import sys

from .options import is_lazycache_cell as _is_lazycache_cell


def strip_magic_line(lines: list[str]) -> list[str]:
    """IPython cleanup transform: blank a leading ``%%lazycache`` line, so
    the body runs as a plain cell with its line numbers unchanged. Not in the
    body another cell magic transforms itself (``%%time`` above
    ``%%lazycache``): IPython then calls the ``lazycache`` magic, which caches."""
    if lines and _is_lazycache_cell(lines[0]) and not _in_cell_magic():
        if len(lines) > 1 and lines[1].startswith("%%"):
            # another cell magic (%%time, %%capture, %%writefile) runs the
            # cell: it must be the first line for IPython to call it
            return lines[1:]
        return ["\n", *lines[1:]]
    return lines


def _in_cell_magic() -> bool:
    """Whether the text being transformed is a cell magic's body (the nearest
    of IPython's frames is ``run_cell_magic``'s), not a cell about to run
    (``_run_cell``'s: also a cell that ``%%capture`` runs)."""
    frame = sys._getframe(2)
    for _ in range(80):
        if frame is None:
            return False
        if frame.f_globals.get("__name__") == "IPython.core.interactiveshell":
            if frame.f_code.co_name == "run_cell_magic":
                return True
            if frame.f_code.co_name in ("_run_cell", "run_cell_async", "run_cell"):
                return False
        frame = frame.f_back
    return False


def run_body(shell, source: str, tree):
    """Run a body the ``lazycache`` magic was given as ``%%time`` runs its
    own: the statements, then the value of a last expression, returned (the
    caller shows it). Compiled under a cell's file name, so tracebacks and
    ``inspect.getsource`` find its lines: the running cell's number (a cell
    that stores history has counted itself already)."""
    __tracebackhide__ = True
    name = shell.compile.cache(source, max(shell.execution_count - 1, 0))
    body = list(tree.body)
    last = body.pop() if body and isinstance(body[-1], ast.Expr) else None
    exec(shell.compile(ast.Module(body=body, type_ignores=[]), name, "exec"), shell.user_global_ns, shell.user_ns)
    if last is not None:
        return eval(shell.compile(ast.Expression(body=last.value), name, "eval"), shell.user_global_ns, shell.user_ns)
    return None

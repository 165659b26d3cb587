"""The cache without IPython, as the steps a cell's data takes.

A cell is planned (:mod:`.plan`: analysis, key, lookup, with hashes reused by
:mod:`.memo`); on a miss its body runs and :mod:`.run` says what it changed,
which :mod:`.save` stores (values encoded by :mod:`.pickles`); on a hit
:mod:`.restore` loads and checks the entry (functions re-pointed by
:mod:`.rebind`, their sources registered by :mod:`.restored_sources`) and :mod:`.apply`
binds it into the namespace. Everything takes a plain dict as the namespace,
so it can be driven and tested without a kernel; :mod:`ipy_lazycache.magics`
adds parsing, output capture and printing on top.
"""

# The steps as attributes (``core.plan.plan``, ``core.save.save``), so a caller
# imports the package once and names the step it uses.
from . import apply, decode, memo, pickles, plan, rebind, restore, restored_sources, run, save, verify  # noqa: F401, E402

"""ipy_lazycache: ``%%lazycache`` restores a cell's variables and outputs
when its code and the content of everything it reads are unchanged."""

from .version import __version__  # noqa: F401  (ipy_lazycache.__version__)

_magics = None
_badges = None  # the comm to a front end's cell badges (cell_state.Badges), when there is a kernel


def load_ipython_extension(ipython):
    global _magics, _badges
    from . import cell_state
    from .magics import LazyCache

    if _magics is not None and _magics.shell is ipython:
        return
    _magics = LazyCache(shell=ipython)
    _magics.register()
    _badges = cell_state.start(_magics)


def unload_ipython_extension(ipython):
    global _magics, _badges
    if _magics is None:
        return
    if _badges is not None:
        _badges.stop()
        _badges = None
    _magics.unregister()
    ipython.magics_manager.magics["cell"].pop("lazycache", None)
    ipython.magics_manager.magics["line"].pop("lazycache", None)
    _magics = None

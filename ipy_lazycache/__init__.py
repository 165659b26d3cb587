"""ipy_lazycache: ``%%lazycache`` restores a cell's variables and outputs
when its code and the content of everything it reads are unchanged."""

from .version import __version__  # noqa: F401  (ipy_lazycache.__version__)

_magics = None


def load_ipython_extension(ipython):
    global _magics
    from .magics import LazyCache

    if _magics is not None and _magics.shell is ipython:
        return
    _magics = LazyCache(shell=ipython)
    _magics.register()


def unload_ipython_extension(ipython):
    global _magics
    if _magics is None:
        return
    _magics.unregister()
    ipython.magics_manager.magics["cell"].pop("lazycache", None)
    ipython.magics_manager.magics["line"].pop("lazycache", None)
    _magics = None

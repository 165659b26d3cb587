# Run by an IPython kernel as it starts, through $PYTHONSTARTUP: the lite
# addon points a JupyterLite site's Pyodide kernel (and, with auto mode, the
# kernel that executes notebooks at build time) here, so a notebook needs no
# `%load_ext ipy_lazycache` line. IPython executes this file in the user's
# namespace: it binds no names there, and says nothing (loading is silent,
# and a `%load_ext ipy_lazycache` the notebook has anyway finds it loaded).
# No module docstring on purpose: it would become the notebook's __doc__.
from IPython import get_ipython as _ipy_lazycache_shell

import ipy_lazycache as _ipy_lazycache

_ipy_lazycache.load_ipython_extension(_ipy_lazycache_shell())
del _ipy_lazycache, _ipy_lazycache_shell

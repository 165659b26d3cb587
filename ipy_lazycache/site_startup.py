# Run by an IPython kernel as it starts, through $PYTHONSTARTUP: the lite
# addon points a JupyterLite site's Pyodide kernel (and, with auto mode, the
# kernel that executes notebooks at build time) here, so a notebook needs no
# `%load_ext ipy_lazycache` line (see ipy_lazycache.site_kernel.kernel_started).
# IPython executes this file in the user's namespace: it binds no names there,
# and says nothing (a `%load_ext ipy_lazycache` the notebook has anyway finds
# the extension loaded). No module docstring: it would become the notebook's __doc__.
from IPython import get_ipython as _ipy_lazycache_shell

from ipy_lazycache.site_kernel import kernel_started as _ipy_lazycache_started

_ipy_lazycache_started(_ipy_lazycache_shell())
del _ipy_lazycache_started, _ipy_lazycache_shell

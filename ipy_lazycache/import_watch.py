"""What the notebook's own modules held right after their import.

A cell that imports a local module (``from cfg import THRESHOLD``) reads what
the module holds now, which code may have changed since the import
(``cfg.THRESHOLD = 7``). Keying the module's current values would change the
key between its first run (not imported yet) and its second (imported); keying
only its file would miss the runtime change. So the values are recorded when
the module is executed, and :func:`.hashing.import_state` adds them to the key
only when they differ from that record.
"""

from __future__ import annotations

import sys
from importlib.machinery import PathFinder

from .hashing_base import Unhashable

#: module name -> (the module's spec when executed, digest of its values then or None)
snapshots: dict[str, tuple] = {}


class _Snapshots:
    """A meta path finder for local source modules only: PathFinder's spec,
    with the loader's ``exec_module`` recording the values afterwards."""

    def find_spec(self, fullname, path=None, target=None):
        from . import sources

        spec = PathFinder.find_spec(fullname, path, target)
        loader = getattr(spec, "loader", None)
        if spec is None or not sources.is_local_file(spec.origin) or not hasattr(loader, "exec_module"):
            return None  # the other finders decide, as without this one
        original = loader.exec_module

        def exec_module(module, _original=original):
            _original(module)
            snapshots[module.__name__] = (module.__spec__, _values_digest(module))

        loader.exec_module = exec_module  # this loader instance serves this spec only
        return spec

    def invalidate_caches(self):
        pass


def _values_digest(module):
    try:
        return _digest[0](module)
    except (Unhashable, RecursionError):
        return None


#: How a module's values are digested (:func:`.hashing.module_values_digest`),
#: given by :func:`install`: the walk of values is above this module.
_digest: list = []


def install(values_digest):
    """Idempotent; modules imported before are keyed with their values."""
    _digest[:] = [values_digest]
    if not any(isinstance(f, _Snapshots) for f in sys.meta_path):
        sys.meta_path.insert(0, _Snapshots())

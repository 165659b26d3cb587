"""Values to bytes and back: the one place the core asks.

Codecs are chosen by the value's type *name* (:mod:`.codec_registry`), so
choosing one never imports numpy or pandas for a value that does not use
them: ``.npy`` (:mod:`.codecs_numpy`), Arrow IPC for frames
(:mod:`.codecs_arrow`). Everything without a special codec goes through
pickle protocol 5 (:mod:`.pickling`, :mod:`.unpickling`: cloudpickle, so
functions and classes defined in the notebook are stored by value).
Restoring into objects already in the namespace is :mod:`.in_place`.
"""

from __future__ import annotations

import sys

from . import codecs_arrow, codecs_numpy  # noqa: F401  (each registers its codec)
from .codec_registry import CODECS, Codec, as_mapping, codec_for, codec_named, register  # noqa: F401
from .in_place import _slot_names, can_update_in_place, update_in_place  # noqa: F401
from .pickling import _ATOMIC, Shared, dumps  # noqa: F401
from .unpickling import _is_notebook_lru, _pending, loads, set_state  # noqa: F401

# Blobs written before the split name these reconstructors here.
from .unpickling import _lru, _module_attr  # noqa: F401,E402  isort: skip


def missing_modules(modules) -> list[str]:
    """Modules a blob needs that cannot be imported here (e.g. in a browser)."""
    import importlib.util

    out = []
    for name in modules:
        if name in sys.modules:
            continue
        try:
            if importlib.util.find_spec(name) is None:
                out.append(name)
        except (ImportError, ValueError):
            out.append(name)
    return sorted(out)

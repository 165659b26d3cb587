"""Library value objects: keyed by content, whoever else holds them.

The hash walk feeds an object met again as a back-reference to its first
visit, because sharing a mutable object is observable (``[x, x]`` is not
``[x, copy(x)]``). For an immutable value of a library (a sympy expression,
a ``Decimal``, a ``datetime``) it is not, except through ``is``, and the
library decides it: sympy's cache interns the symbols of an expression
unpickled in a new kernel, so the restored tree shares what the run's did
not and every cell reading it keyed anew. Such objects are fed by the digest
of their content (computed once per hash), which equal copies share.
"""

from __future__ import annotations

import types

# Modules whose objects the walk keys by their own rules (arrays, frames), or whose hashable objects are not values.
_OWN_RULES = frozenset({"numpy", "pandas", "pyarrow", "polars", "builtins", "__main__", "functools", "types",
                        "matplotlib", "ipy_lazycache", "weakref", "re"})
_NOT_VALUES = (list, dict, set, bytearray, BaseException, types.MethodType, types.BuiltinFunctionType, type)
_KNOWN: dict[type, bool] = {}


def is_value_type(t: type) -> bool:
    """Instances of ``t`` are library values: a hash of their own (not
    identity), no ``__dict__``, from a library whose objects have no rule of
    their own in the walk."""
    known = _KNOWN.get(t)
    if known is None:
        h = getattr(t, "__hash__", None)
        known = _KNOWN[t] = bool(
            h is not None and h is not object.__hash__ and not getattr(t, "__dictoffset__", 0)
            and (t.__module__ or "").split(".")[0] not in _OWN_RULES and not issubclass(t, _NOT_VALUES))
    return known

"""Reductions of library objects that pickle's default gets wrong (used by :mod:`.pickling`).

A restored value must hash like the run's (the store's round trip checks it;
Arrow and ``.npy`` blobs aside, by decoding): numpy's masked arrays and the
instances a library holds as module globals need a reduction of their own.
"""

from __future__ import annotations

import dis
import io
import sys

from .hashing_code import library_global
from .hashing_guard import own_dict
from .pickling_code import _leave_classes
from .unpickling import _masked, _module_attr, _self_dict, _view, _with_state, paused_gc


def library_reduce(obj, t, modules: set, views: Views):
    """A reduction for ``obj`` (of type ``t``) where pickle's own would not
    come back as the run's value, or None; ``modules``: what a load imports,
    ``views``: the arrays' memory met so far in this dump."""
    if t.__name__ == "MaskedArray" and t.__module__ in ("numpy.ma", "numpy.ma.core"):
        return masked_reduce(obj)
    if t is not dict and isinstance(obj, dict) and own_dict(obj) is obj:
        # its attributes are its items (statsmodels' Dataset): a copy had a __dict__ of its own
        return _self_dict, (t,), None, None, iter(dict.items(obj))
    if _ignores_state(t) and own_dict(obj):
        # scikit-learn's Bunch: its __setstate__ drops the attributes pickle carries; set them as the run had them
        func, args, state, items, pairs = (*obj.__reduce_ex__(5), None, None, None)[:5]
        if isinstance(state, dict):
            return _with_state, (func, args, state), None, items, pairs
    if t.__name__ == "ndarray" and t.__module__ == "numpy" and (view := _view_reduce(obj, views)) is not None:
        return view
    if has_singletons(t) and (name := library_global(obj)) is not None:
        # numpy's global generator inside a frozen distribution: the module's own, as the key names it
        modules.add(name.split(".")[0].split(":")[0])
        return _module_attr, tuple(name.split(":"))
    return None


class Views:
    """The memory of the arrays one dump meets: a view of a base much larger
    than itself is pickled as a copy (a slice of a big temporary is stored
    alone), unless the dump holds the base too, or other views that with it
    cover a quarter of the base (GridSearchCV's per-split scores are the
    columns of one array; ``np.split``'s parts). The key holds where arrays'
    memory lies relative to each other, so copies made every reader miss
    after a restart; :meth:`again` names the bases a second dump keeps."""

    __slots__ = ("apart", "keep", "whole")

    def __init__(self, keep=frozenset()):
        self.keep = keep  # ids of bases whose views are pickled as views, whatever their size
        self.apart: dict[int, list] = {}  # id(base) -> [base, bytes of its views copied, how many]
        self.whole: set[int] = set()  # ids of arrays owning their memory, pickled themselves

    def again(self) -> frozenset:
        """The bases whose views this dump copied though they share them: empty, mostly."""
        return frozenset(i for i, (base, n, count) in self.apart.items()
                         if i in self.whole or (count > 1 and 4 * n >= base.nbytes))


def dump_keeping_views(value, make, check=None):
    """Dump ``value`` with the pickler ``make(buf)`` returns; once more where
    the dump copied views of a base it shares (:class:`Views`),
    keeping them views. ``check(p)`` runs after each dump, gc still paused."""
    keep = frozenset()
    while True:
        buf = io.BytesIO()
        p = make(buf)
        p.views.keep = keep
        with paused_gc():
            try:
                p.dump(value)
            finally:
                _leave_classes(p)
            if check is not None:
                check(p)
        again = p.views.again()
        if not again or again <= keep:
            return buf, p
        keep = keep | again


def _view_reduce(arr, views: Views):
    """A view over an array that owns its memory, as a view of that array
    (pickle keeps the base once, shared): numpy pickles a view as a copy, so
    ``digits.images`` no longer shared ``digits.data`` after a restore, and
    the sharing is keyed. Not where the base is much larger than the view,
    unless :class:`Views` says to keep it; not for object arrays."""
    base = arr.base
    if base is None:
        views.whole.add(id(arr))
        return None
    if type(base).__name__ != "ndarray" or base.base is not None or arr.dtype.hasobject or base.dtype.hasobject:
        return None
    if base.nbytes > 4 * arr.nbytes and id(base) not in views.keep:
        seen = views.apart.setdefault(id(base), [base, 0, 0])
        seen[1] += arr.nbytes
        seen[2] += 1
        return None
    offset = arr.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return _view, (base, offset, arr.shape, arr.strides, arr.dtype, None, None, arr.flags.writeable)


def _ignores_state(t) -> bool:
    """Whether ``t.__setstate__`` is a function that does nothing (cached per type)."""
    known = _NOOP_SETSTATE.get(t)
    if known is None:
        code = getattr(getattr(t, "__setstate__", None), "__code__", None)
        ops = {i.opname for i in dis.get_instructions(code)} if code is not None else {"?"}
        known = _NOOP_SETSTATE[t] = ops <= {"RESUME", "NOP", "LOAD_CONST", "RETURN_VALUE", "RETURN_CONST"}
    return known


_NOOP_SETSTATE: dict[type, bool] = {}


def has_singletons(t) -> bool:
    """Whether the module defining ``t`` holds an instance of it (cached per type)."""
    known = _SINGLETON_TYPES.get(t)
    if known is None:
        module = sys.modules.get(t.__module__ or "") if t.__module__ not in ("builtins", "__main__") else None
        known = _SINGLETON_TYPES[t] = module is not None and any(type(v) is t for v in list(vars(module).values()))
    return known


_SINGLETON_TYPES: dict[type, bool] = {}


def masked_reduce(obj):
    """A numpy masked array as the run had it: its own ``__setstate__`` gives
    it a fill value (where the run had none yet), a full mask (for ``nomask``)
    and a soft mask, so it hashed unlike the run's and every reader missed."""
    fn, args, state = obj.__reduce__()
    d = vars(obj)
    kept = {k: d[k] for k in ("_fill_value", "_hardmask", "_sharedmask", "_isfield") if k in d}
    return _masked, (fn, args, state, kept, d.get("_mask") is sys.modules["numpy"].ma.nomask)

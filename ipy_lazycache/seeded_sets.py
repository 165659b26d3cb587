"""Sets whose iteration order follows the process's string hash seed.

A set of str (or bytes, or tuples holding them) iterates in an order set by
``PYTHONHASHSEED``, random per kernel: two kernels holding the same set list
it in different orders, and no restore can give a new kernel the order the
storing one had (a plain run there gives its own). For such a set the order is
not part of the value: it is keyed by its items in an order no seed sets, and
stored as it is (a restore iterates it as the new process does). Sets of
numbers keep their order (it is the same in every process, and a restore
rebuilds it), and so does every other set.
"""

from __future__ import annotations

_SEEDED = frozenset({str, bytes})
_SCALARS = frozenset({str, bytes, int, float, bool, type(None)})


def seeded(s) -> bool:
    """Whether the iteration order of the set ``s`` follows the hash seed."""
    if len(s) < 2:
        return False
    types = set(map(type, s))
    return types <= _SEEDED or (types == {tuple} and _tuples_seeded(s))


def seed_free(s) -> list | None:
    """The items of ``s`` in an order no hash seed sets, or None when its own
    order is the same in every process (or not known to follow the seed)."""
    if not seeded(s):
        return None
    if set(map(type, s)) in ({str}, {bytes}):
        return sorted(s)
    return sorted(s, key=repr)  # str beside bytes, or tuples of scalars: repr is a canonical, seed-free key


def _tuples_seeded(s) -> bool:
    seeded = False
    for t in s:
        kinds = set(map(type, t))
        if not kinds <= _SCALARS:
            return False
        seeded = seeded or bool(kinds & _SEEDED)
    return seeded

"""Encoding a run's values into blobs: codecs first, pickles for the rest.

:func:`_encode` chooses a codec per def; :class:`_Pickles` pickles the
remainder so objects shared between defs stay shared; a def that cannot be
stored becomes a tripwire blob that says why on a hit.
"""

from __future__ import annotations

import types

from .. import codecs
from ..stores.base import chunks


def _blob_stem(name: str, index: int) -> str:
    return name if name.isascii() and name.isidentifier() else f"def{index}"


def _encode(values: dict, pids: dict, locate=None) -> dict:
    """Encode defs into blobs: one per def, except that defs which reference
    each other in a cycle, or hold one object between them (``fig, ax =
    plt.subplots()``: ax's Axes are inside fig), share one pickle, so their
    identities survive."""
    blobs = {}
    # Names bound to one object share one blob, so they stay one object.
    aliases: dict[int, list] = {}
    for name, value in values.items():
        aliases.setdefault(id(value), []).append(name)
    same = {names[0]: names for names in aliases.values()}
    todo = {}  # first name -> root ids, for the defs that are pickled
    for index, names in enumerate(aliases.values()):
        name, value = names[0], values[names[0]]
        stem = _blob_stem(name, index)
        pid = pids.get(id(value))
        is_ref = pid is not None and pid[0][0] == "ref" and pid[1] is value
        if is_ref or (locate is not None and type(value) not in codecs._ATOMIC and locate.locate(value) is not None):
            # a ref's object, or a view, element or module attribute: a
            # pickle of the relation (a few bytes), never a copy
            todo[name] = () if is_ref else (id(value),)
            continue
        if isinstance(value, types.ModuleType) and _importable(value):
            # its top-level package as "modules": where that is missing (pandas
            # in a browser) the def is a tripwire and the blob is not fetched
            blobs[f"{stem}.module"] = _blob("module", names, value.__name__.encode(),
                                            modules=[value.__name__.split(".")[0]])
            continue
        codec = codecs.codec_for(value)
        if codec is not None:
            try:
                parts = codec.encode(value)
            except Exception:
                codec = None
            else:
                # The value's own library too (pandas for a frame in Arrow), so
                # a browser without it makes a tripwire instead of a failed decode.
                needs = {*codec.modules, type(value).__module__.split(".")[0]} - {"builtins"}
                blobs[f"{stem}.{codec.ext}"] = _blob(codec.name, names, parts, modules=sorted(needs))
                continue
        todo[name] = (id(value),)
    groups = _Pickles(values, pids, locate, todo, blobs, same).encode()
    for members, (data, used, modules, exact) in groups.items():
        members = sorted(members)
        if len(members) == 1:
            name = members[0]
            blobs[f"{_blob_stem(name, len(blobs))}.pkl"] = _blob("pickle", same[name], data, used, modules, exact)
            continue
        stem = "group-" + "-".join(_blob_stem(n, i) for i, n in enumerate(members))[:80]
        blobs[f"{stem}.pkl"] = _blob("pickle-group", [a for n in members for a in same[n]], data, used, modules,
                                     exact)
        blobs[f"{stem}.pkl"]["aliases"] = {n: same[n] for n in members if len(same[n]) > 1}
    return blobs


#: Objects each def's cheap pre-pass visits looking for objects shared with another def.
_GUESS_BUDGET = 5000


def _reachable(obj):
    """What pickling ``obj`` is likely to write: items, values, attributes,
    the items of object arrays, and what a function holds of its own (its
    closure cells, which two closures of one call share, and its defaults);
    not classes, a function's globals or modules."""
    t = type(obj)
    if t in (list, tuple, set, frozenset):
        return obj
    if t is types.FunctionType:
        return [*(obj.__closure__ or ()), *(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).values()]
    if t is types.CellType:
        try:
            return (obj.cell_contents,)
        except ValueError:  # an empty cell
            return ()
    if t is dict:
        return obj.values()
    if t.__module__ == "numpy" and t.__name__ == "ndarray":
        return obj.ravel().tolist() if obj.dtype.hasobject and obj.size <= _GUESS_BUDGET else ()
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict) and not isinstance(obj, (type, types.FunctionType, types.ModuleType)):
        return state.values()
    return ()


#: Pickles smaller than this (bytes) are bundled per module set (see _Pickles._bundle_small).
_SMALL_PICKLE = 64 * 1024


_BUNDLE_FROM = 8


class _Pickles:
    """The pickled defs of one entry, grouped: each def alone, unless it and
    others refer to each other (pids) or hold a common object (found while
    pickling, which then stops at once), in which case they are pickled as
    one dict. A def that cannot be pickled gets a tripwire blob."""

    def __init__(self, values, pids, locate, todo, blobs, same):
        self.values, self.pids, self.locate, self.todo, self.blobs, self.same = values, pids, locate, todo, blobs, same
        self.first = {n: first for first, names in same.items() for n in names}  # alias -> its blob's name
        self.shared = {}  # id(obj) -> (first name, obj), across all pickles
        self.links = {n: set() for n in todo}  # names that hold common objects
        self.dead = set()  # names that became tripwires
        self._guess_links()

    def _guess_links(self):
        """Link defs that reach one object within a few thousand steps, before
        any pickling (``fig, ax``: ax's Axes are in ``fig.axes``), so the group
        they end up as is pickled once. A missed sharing still surfaces as
        :class:`.codecs.Shared` while pickling; a wrong guess only groups."""
        if len(self.todo) < 2:
            return
        import collections

        reached: dict[int, str] = {}
        for name in self.todo:
            todo, seen, budget = collections.deque([self.values[name]]), set(), _GUESS_BUDGET
            while todo and budget > 0:
                obj = todo.popleft()  # breadth first: shared parts sit near the top (fig._localaxes)
                if id(obj) in seen:
                    continue
                seen.add(id(obj))
                budget -= 1
                other = reached.setdefault(id(obj), name)
                if other != name:
                    self.links[name].add(other)
                    self.links[other].add(name)
                    continue
                todo.extend(c for c in _reachable(obj) if id(c) not in self.pids and type(c) not in codecs._ATOMIC)

    def _dumps(self, members, also=frozenset()):
        me = frozenset(members) | self.dead | also
        shared = self.shared
        if not also and not shared and me >= set(self.todo):
            # The first pickle and it holds every def (``fig, ax``, one model):
            # no other pickle follows it (see encode), so there is nothing to
            # share with, and watching each mutable object would cost a third
            # of the pickling.
            shared = None
        if len(members) == 1:
            (name,) = members
            return codecs.dumps(self.values[name], self.pids, self.todo[name], self.locate, shared, me)
        group = {n: self.values[n] for n in sorted(members)}
        roots = [r for n in members for r in self.todo[n]]  # a ref's own object stays a reference
        return codecs.dumps(group, self.pids, roots, self.locate, shared, me)

    def encode(self) -> dict:
        done = {}  # frozenset of names -> (bytes, used, modules, exact)
        for name in self.todo:
            if self.links[name]:
                continue  # pickled with the defs it shares objects with, below
            try:
                done[frozenset([name])] = self._dumps([name])
            except codecs.Shared as exc:
                self._link(name, exc.owner)
            except Exception as exc:
                self._kill([name], exc)
        for _round in range(2 * len(self.todo) + 2):
            live = [n for n in self.todo if n not in self.dead]
            deps = {n: set(self.links[n]) - self.dead for n in live}
            for members, (_, used, *_) in done.items():
                for n in members:
                    deps[n] |= {self.first.get(p[1], p[1]) for p in used if p[0] == "def"} & set(live)
            grouped = {frozenset(g) for g in _cycles(deps)}
            wanted = grouped | {frozenset([n]) for n in live if not any(n in g for g in grouped)}
            # A new group's pickle may need a def outside it (IntBox and T grouped, needing Box, which needs T):
            # the deps are computed again with it, until every group wanted is pickled already.
            new = wanted - set(done)
            retry = bool(new)
            for members in new:
                try:
                    done[members] = self._dumps(sorted(members))
                except codecs.Shared as exc:
                    self._link(min(members), exc.owner)
                    break
                except Exception as exc:
                    self._split(members, exc, done)
                    break
            if not retry:
                return self._bundle_small({m: done[m] for m in wanted})
        raise RuntimeError("grouping the pickled defs did not settle")  # not reached: links only grow

    def _bundle_small(self, result: dict) -> dict:
        """Small pickles needing the same modules go into one blob: ``from
        numpy import *`` stores hundreds of references, and each blob is a
        file to write (and fsync), so one per def took seconds."""
        buckets: dict[frozenset, list] = {}
        for members, (data, _, modules, _) in result.items():
            if len(members) == 1 and len(data) < _SMALL_PICKLE:
                buckets.setdefault(frozenset(modules), []).append(members)
        for singles in buckets.values():
            if len(singles) < _BUNDLE_FROM:
                continue  # a few blobs cost little, and one per def keeps damage and tripwires to that def
            members = frozenset().union(*singles)
            try:
                bundled = self._dumps(sorted(members))
            except Exception:
                continue  # kept one blob each
            for single in singles:
                del result[single]
            result[members] = bundled
        return result

    def _split(self, members, exc, done):
        """A def or group that cannot be pickled: each member alone where it
        can be (a guessed link may have tied a good def to a bad one), the
        rest tripwires. Members no longer count as sharing with each other."""
        if len(members) == 1:
            self._kill(sorted(members), exc)
            return
        for n in members:
            self.links[n] -= members
        for n in sorted(members):
            try:
                done[frozenset([n])] = self._dumps([n], also=members)
            except codecs.Shared as shared:
                self._link(n, shared.owner)
            except Exception as own:
                self._kill([n], own)

    def _link(self, a, b):
        if b in self.links and b not in self.dead:
            self.links[a].add(b)
            self.links[b].add(a)
        else:
            self.dead.add(b)  # a failed def's objects: not a reason to group

    def _kill(self, members, exc):
        for n in members:
            self.dead.add(n)
            self.blobs[f"{_blob_stem(n, len(self.blobs))}.tripwire"] = _tripwire_blob(self.same[n], self.values[n], exc)


def _blob(codec, names, parts, used=(), modules=(), exact=False):
    """A blob as the manifest lists it; ``exact`` (a pickle of builtins only,
    :data:`.pickling._EXACT`) is for the store's round trip and not written."""
    blob = {
        "codec": codec,
        "defs": list(names),
        "parts": chunks(parts) if isinstance(parts, (list, tuple)) else [parts],
        "needs": sorted([list(p) for p in used]),
        "modules": sorted(modules),
    }
    if exact:
        blob["exact"] = True
    return blob


def _tripwire_blob(names, value, exc) -> dict:
    """The blob of a def that cannot be stored: its reason, shown by the
    tripwire a hit restores; ``why`` (the error alone) is said when storing."""
    why = f"{type(exc).__name__}: {exc}"[:200]
    blob = _blob("tripwire", names, f"{type(value).__name__} could not be stored ({why})"[:300].encode())
    blob["why"] = why
    return blob


def _importable(module) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module.__name__) is not None
    except (ImportError, ValueError):
        return False


def _cycles(deps: dict) -> list[set]:
    """Groups of two or more names that reach each other (Tarjan's SCCs)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1 or v in deps.get(v, ()):
                out.append(group)

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return out

"""Hashing modules: installed ones by name and distribution version, the
notebook's own by their file (as imported: an edit since raises) and their
values; values read through a module (:class:`ModuleAttr`)."""

from __future__ import annotations

import sys

import xxhash

from . import sources
from .hashing_base import Unhashable, _tag, digest_file
from .module_closure import closure

_module_versions: dict[str, str] = {}


def module_version(name: str) -> str:
    """Distribution version of a module's top-level package, or ''."""
    top = name.split(".")[0]
    if top not in _module_versions:
        version = getattr(sys.modules.get(top), "__version__", None)
        if not isinstance(version, str):
            version = _dist_version(top)
        _module_versions[top] = version
    return _module_versions[top]


def _dist_version(top: str) -> str:
    """Version of the distribution that installs module ``top`` (its name may
    differ: ``yaml`` comes from PyYAML), or '' for the standard library."""
    if top in sys.builtin_module_names or top in getattr(sys, "stdlib_module_names", ()):
        return ""
    try:
        from importlib import metadata

        try:
            return metadata.version(top)
        except metadata.PackageNotFoundError:
            names = metadata.packages_distributions().get(top) or []
            return ",".join(sorted(f"{n}=={metadata.version(n)}" for n in set(names)))
    except Exception:  # noqa: BLE001 - broken metadata: no version, as before
        return ""


def _feed_named(h, obj, module: str | None = None):
    """Installed code (a function, class or module): by where it lives and the
    version of the distribution that provides it."""
    module = module if module is not None else getattr(obj, "__module__", None) or ""
    _tag(h, b"f", f"{module}:{getattr(obj, '__qualname__', None) or getattr(obj, '__name__', repr(obj))}".encode())
    _tag(h, b"v", module_version(module).encode())


#: Local modules seen: name -> (spec, (mtime_ns, size), digest of the file).
_module_files: dict[str, tuple] = {}


_DUNDER_SKIP = frozenset({"__builtins__", "__file__", "__cached__", "__loader__", "__spec__", "__path__"})


def local_module_digest(module) -> str:
    """Digest of a local module's file as imported. Raises :class:`Unhashable`
    when the file changed on disk after the import: the module in memory runs
    the old code, and keying it by the new file would be a wrong hit later."""
    import os

    name, path = module.__name__, module.__file__
    try:
        st = os.stat(path)
    except OSError:
        raise Unhashable(f"module {name}'s file {path} is gone; reload it or restart the kernel") from None
    stamp = (st.st_mtime_ns, st.st_size)
    seen = _module_files.get(name)
    if seen is not None and seen[0] is module.__spec__:  # importlib.reload makes a new spec
        if seen[1] != stamp:
            raise Unhashable(f"module {name} changed on disk after it was imported; importlib.reload it or restart")
        return seen[2]
    if _pyc_disagrees(module, st):
        raise Unhashable(f"module {name} changed on disk after it was imported; importlib.reload it or restart")
    digest = digest_file(path)
    _module_files[name] = (module.__spec__, stamp, digest)
    return digest


def _process_start() -> float:
    """When this process started (Linux), else when this module was imported."""
    global _STARTED
    if _STARTED is None:
        try:
            with open("/proc/self/stat") as f:
                ticks = int(f.read().rsplit(")", 1)[1].split()[19])
            with open("/proc/stat") as f:
                boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
            import os

            _STARTED = boot + ticks / os.sysconf("SC_CLK_TCK")
        except Exception:  # noqa: BLE001 - not Linux
            _STARTED = _IMPORTED
    return _STARTED


_STARTED = None


_IMPORTED = __import__("time").time()


def _pyc_disagrees(module, st) -> bool:
    """The import wrote (or checked) a pyc for the source it read: a pyc
    recording another mtime or size than the file's now means the file changed
    since, if it changed after this process started (before, the import read
    the current file, and the pyc is only one it could not rewrite)."""
    if st.st_mtime < _process_start() - 1:
        return False
    cached = getattr(module, "__cached__", None)
    try:
        with open(cached, "rb") as f:
            header = f.read(16)
    except (OSError, TypeError):
        return False
    if len(header) < 16 or int.from_bytes(header[4:8], "little") != 0:  # hash-based pycs: no stamp
        return False
    mtime, size = int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little")
    return (mtime, size) != (int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF)


def _feed_module(h, module, hasher):
    """Installed modules by name and version; the notebook's own modules by
    their source and every value they hold now (``cfg.THRESHOLD = 2`` at
    runtime changes what the module gives)."""
    name = module.__name__
    if name == "__main__" or not sources.is_local_module(module):
        _tag(h, b"M", name.encode())
        _tag(h, b"v", module_version(name).encode())
        return
    _tag(h, b"ML", name.encode())
    _tag(h, b"s", local_module_digest(module).encode())
    imported = closure_digest(name, module.__file__)
    if imported:  # only then: keys of modules that import no local module stay as they were
        _tag(h, b"MC", imported.encode())
    for attr, value in list(vars(module).items()):
        if attr in _DUNDER_SKIP:
            continue
        _tag(h, b"g", attr.encode())
        hasher(h, value)


class ModuleAttr:
    """A value a cell reads through a module (``cfg.THRESHOLD``, ``np.pi``).
    Through the notebook's own modules, hashed like any value. Through an
    installed module, a value that cannot be hashed (``sys.stdout``) is the
    library's own object: keyed by the module's version instead of making
    every cell that prints through it uncacheable."""

    ABSENT = object()
    __slots__ = ("local", "module", "name", "value")

    def __init__(self, module, value, name=""):
        self.module, self.value, self.name = module.__name__, value, name
        self.local = sources.is_local_module(module)


def _feed_module_attr(h, attr, hasher):
    if attr.value is ModuleAttr.ABSENT:
        _tag(h, b"MA0")
        return
    _tag(h, b"MA")
    if attr.local:
        hasher(h, attr.value)
        return
    value = attr.value
    code = getattr(value, "__code__", None)
    if attr.name and (callable(value) or isinstance(value, type)) and not (
            code is not None and sources.is_notebook_code(code)):
        # An installed module's function or class, by where it is reached and
        # the module's version: platforms patch some (Pyodide's time.sleep is
        # a wrapper), and the key must not depend on the platform.
        _tag(h, b"f", f"{attr.module}:{attr.name}".encode())
        _tag(h, b"v", module_version(attr.module).encode())
        return
    sub = xxhash.xxh3_128()
    try:
        hasher(sub, attr.value)
    except Unhashable:
        _feed_named(h, type(attr.value))
        _tag(h, b"v", module_version(attr.module).encode())
        return
    _tag(h, b"h", sub.hexdigest().encode())


#: path -> ((mtime_ns, size), digest) of local files not loaded (loaded ones: :func:`local_module_digest`).
_digests: dict[str, tuple] = {}


def closure_digest(name: str, path: str) -> str:
    """Digest of the local modules module ``name`` (file ``path``) imports,
    transitively (:func:`.module_closure.closure`), by their files as
    imported (an edit since the import raises :class:`Unhashable`); '' when
    it imports none. What they hold at runtime is keyed through the values
    of the modules that hold them."""
    members = closure(name, path)
    if not members:
        return ""
    h = xxhash.xxh3_128()
    for dep in sorted(members):
        h.update(f"{dep}\t{_file_state(dep, members[dep])}\n".encode())
    return h.hexdigest()


def _file_state(name: str, path: str) -> str:
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == path:
        return local_module_digest(loaded)  # the code in memory: raises when the file changed since
    import os

    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    stamp = (st.st_mtime_ns, st.st_size)
    known = _digests.get(path)
    if known is None or known[0] != stamp:
        known = _digests[path] = (stamp, digest_file(path))
    return known[1]

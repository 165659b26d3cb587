"""What a shared store's URL needs, checked before anything is opened or made.

fsspec's own errors name the wrong thing or nothing: a ``gs://`` URL without
``gcsfs`` raises an ``ImportError`` with no module name (so it read "needs
fsspec" with fsspec installed), and a ``file://`` URL of a folder that is not
there is created on the first write, at whatever path a typo gave. One line
here says what is missing, before any of that happens.
"""

from __future__ import annotations

import importlib.util
import os
from urllib.parse import unquote, urlsplit

REMOTE_EXTRA = "pip install 'ipy_lazycache[remote]'"


class Unusable(Exception):
    """A store URL that cannot be used here; the message is :func:`problem`'s line."""


def check(url: str) -> None:
    """Raise :class:`Unusable` with :func:`problem`'s line, if there is one."""
    why = problem(url)
    if why:
        raise Unusable(why)


def protocol(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def local_path(url: str) -> str | None:
    """The folder a ``file://`` (or ``local://``) URL names, else None."""
    if protocol(url) not in ("file", "local"):
        return None
    if "://" not in url:
        return os.path.abspath(os.path.expanduser(url))
    parts = urlsplit(url)
    path = unquote(parts.netloc + parts.path) if parts.netloc not in ("", "localhost") else unquote(parts.path)
    return os.path.abspath(path or "/")


def problem(url: str) -> str | None:
    """Why ``url`` cannot be used as a store here, in one line, or None."""
    if importlib.util.find_spec("fsspec") is None:
        return f"{url} needs fsspec: {REMOTE_EXTRA}"
    path = local_path(url)
    if path is not None:
        if not os.path.isdir(path):
            return f"{url}: there is no folder {path} (a shared store is never created: make the folder first)"
        return None
    from fsspec.registry import known_implementations, registry

    name = protocol(url)
    if name in registry:  # registered at run time: its module is loaded
        return None
    known = known_implementations.get(name)
    if known is None:
        return f"{url}: fsspec knows no {name}:// file system"
    module = known["class"].split(".", 1)[0]
    if importlib.util.find_spec(module) is None:
        how = REMOTE_EXTRA if module == "s3fs" else f"pip install {module}"
        return f"{url} needs {module} for {name}://: {how}"
    return None

"""Whether a run read standard input: such a cell is never stored.

A cell that asks a person for something (``input()``, ``getpass()``) is
slow because someone is typing, and what was typed (a token) would be
pickled into the entry and restored after a restart without the prompt.
While a run is watched, ``builtins.input`` and ``getpass.getpass`` are
wrapped, and so is the kernel's own input request (ipykernel routes both
through ``kernel._input_request``, which also catches a ``getpass`` bound
before the run). Each wrapper only notes the read and calls what it
replaced; when the last watched run ends, whatever is still a wrapper of
ours is put back (a cell that installed its own ``input`` keeps it).
"""

from __future__ import annotations

import builtins
import functools

#: One list per watched run (nested cells): ``[True]`` once it read stdin.
_active: list[list] = []
#: ``(owner, attribute, original, wrapper, whether the owner had its own)``
#: installed while a run is watched.
_installed: list[tuple] = []


def start(kernel=None) -> list:
    """Watch the runs from now on; returns this run's token for :func:`stop`.
    ``kernel``: the object whose ``_input_request`` serves input (ipykernel's
    kernel), if any."""
    token: list = []
    if not _active:
        _install(kernel)
    _active.append(token)
    return token


def stop(token: list) -> bool:
    """Stop watching ``token``'s run; whether it read standard input."""
    if any(t is token for t in _active):
        _active[:] = [t for t in _active if t is not token]
    if not _active:
        _uninstall()
    return bool(token)


def _noted(original):
    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        for token in _active:
            if not token:
                token.append(True)
        return original(*args, **kwargs)

    wrapper.__lazycache_stdin__ = True
    return wrapper


def _targets(kernel):
    yield builtins, "input"
    try:
        import getpass
    except ImportError:  # pragma: no cover - always there natively
        getpass = None
    if getpass is not None:
        yield getpass, "getpass"
    if kernel is not None and callable(getattr(kernel, "_input_request", None)):
        yield kernel, "_input_request"


def _install(kernel) -> None:
    for owner, name in _targets(kernel):
        original = getattr(owner, name, None)
        if original is None or getattr(original, "__lazycache_stdin__", False):
            continue
        wrapper = _noted(original)
        try:
            setattr(owner, name, wrapper)
        except (AttributeError, TypeError):
            continue
        _installed.append((owner, name, original, wrapper, name in vars(owner)))


def _uninstall() -> None:
    while _installed:
        owner, name, original, wrapper, own = _installed.pop()
        if getattr(owner, name, None) is not wrapper:
            continue  # replaced during the run: theirs stays
        if own:
            setattr(owner, name, original)
        else:
            delattr(owner, name)  # ours shadowed the class's method: uncover it

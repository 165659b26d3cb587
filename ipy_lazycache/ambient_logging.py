"""Logging configuration as process state (DESIGN §11).

A cached run that configures logging (``basicConfig``, a handler, a level,
a formatter) changed the process in a way a hit cannot make again: a
handler holds this kernel's stream, and a logger the cell defines pickles
as ``getLogger(name)``, which in a new kernel is a bare logger. So such a
run is not stored, and the message says which loggers it configured.
Loggers a library configures when the run imports it are no change: a hit
imports the library again, and it configures them again.
"""

from __future__ import annotations

import sys

from .ambient_cell import Provider, Unreplayable

#: A logger as ``getLogger`` makes it: no level, propagating, no handler or filter.
_FRESH = (0, True, False, (), ())


class _Logging(Provider):
    name = "logging"

    def snapshot(self):
        logging = sys.modules.get("logging")
        if logging is None:
            return None
        manager = logging.Logger.manager
        loggers = {"": _state(logging.root)}
        for name, logger in list(manager.loggerDict.items()):
            if isinstance(logger, logging.Logger):
                loggers[name] = _state(logger)
        return {"loggers": loggers, "disable": manager.disable, "modules": frozenset(sys.modules)}

    def effect(self, before, after):
        if after is None or before == after:
            return None
        was = before["loggers"] if before else {}
        imported = after["modules"] - (before["modules"] if before else frozenset())
        changed = []
        for name, state in after["loggers"].items():
            old = was.get(name)
            if old == state or (old is None and (state == _FRESH or _by_import(name, imported))):
                continue
            changed.append(name or "root")
        if before and before["disable"] != after["disable"]:
            changed.append("logging.disable")
        if changed:
            shown = ", ".join(repr(n) for n in sorted(changed)[:3]) + (" ..." if len(changed) > 3 else "")
            raise Unreplayable(f"it configures logging ({shown})")
        return None


def _state(logger) -> tuple:
    """What a logger does with a record: level, propagation, handlers (which
    object, its level and format) and filters, by identity where a replaced
    object would behave differently."""
    handlers = tuple(
        (id(h), h.level, getattr(h.formatter, "_fmt", None), getattr(h.formatter, "datefmt", None))
        for h in list(logger.handlers))
    return (logger.level, logger.propagate, logger.disabled, handlers, tuple(id(f) for f in logger.filters))


def _by_import(name: str, imported: frozenset) -> bool:
    """A logger named after a module the run imported (``getLogger(__name__)``
    in a library): its import configured it, and a hit's import does again."""
    top = name.split(".")[0]
    return top != "__main__" and (name in imported or top in imported)

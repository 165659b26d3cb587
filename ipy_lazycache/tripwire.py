"""A stand-in for a def that could not be stored or restored here.

Any use raises an error that names the variable and says how to recompute
it, so a missing value is never silently taken for a real one.
"""

from __future__ import annotations


class TripwireError(RuntimeError):
    pass


class Tripwire:
    __slots__ = ("_lc_name", "_lc_reason", "_lc_hash")

    def __init__(self, name: str, reason: str, content_hash: str | None = None):
        object.__setattr__(self, "_lc_name", name)
        object.__setattr__(self, "_lc_reason", reason)
        object.__setattr__(self, "_lc_hash", content_hash)

    def _trip(self, *args, **kwargs):
        raise TripwireError(
            f"{self._lc_name!r} was not restored by %%lazycache: {self._lc_reason}. "
            "Re-run the cell that defines it with `%%lazycache --force`."
        )

    def __repr__(self):
        return f"<not restored by %%lazycache: {self._lc_name} ({self._lc_reason})>"

    def __getattr__(self, name):
        self._trip()

    __call__ = __getitem__ = __setitem__ = __iter__ = __len__ = __bool__ = _trip
    __setattr__ = __delattr__ = __contains__ = __add__ = __radd__ = __sub__ = __mul__ = _trip
    __truediv__ = __lt__ = __gt__ = __le__ = __ge__ = __int__ = __float__ = __index__ = _trip
    __reduce_ex__ = _trip


def is_closed_file(value) -> bool:
    """A file object already closed (what ``with open(...) as f:`` leaves in
    ``f``): it cannot be stored, and nothing can be done with it but read its
    name, so a stand-in for it is not worth a line."""
    import io

    return isinstance(value, io.IOBase) and value.closed

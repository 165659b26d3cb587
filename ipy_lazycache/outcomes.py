"""What happened to each cached cell this session: restored, stored, or ran
uncached (and why), kept by the run sequence for ``%lazycache why`` and for
front ends (the cell badge listens through :attr:`Outcomes.listeners`).

No IPython here: the sequence records, the glue reads.
"""

from __future__ import annotations

import time

RESTORED = "restored"
STORED = "stored"
UNCACHED = "ran uncached"
STATES = (RESTORED, STORED, UNCACHED)


class Outcome:
    """One cell's outcome. ``cell_id``: the front end's id of the cell (None
    where it gives none); ``code``: the cell's code digest; ``key``: the
    entry restored or stored (None for an uncached run); ``reason``: why an
    uncached run was not cached (or why a stored cell missed, e.g. --force);
    ``names``: what was restored or stored; ``seconds``: how long the run
    took (on a hit: how long the hit took); ``saved``: seconds a hit saved;
    ``store``: where the entry is (not sent to a front end)."""

    def __init__(self, state: str, *, cell_id=None, code=None, key=None, reason="", names=(), seconds=0.0,
                 saved=0.0, auto=False, at=None, store=None):
        if state not in STATES:
            raise ValueError(f"unknown outcome state {state!r}")
        self.state, self.cell_id, self.code, self.key, self.reason = state, cell_id, code, key, reason
        self.names, self.seconds, self.saved, self.auto = sorted(names), seconds, saved, auto
        self.at = time.time() if at is None else at
        self.store = store

    def to_dict(self) -> dict:
        """JSON-ready, for a comm message."""
        return {"state": self.state, "cell_id": self.cell_id, "code": self.code, "key": self.key,
                "reason": self.reason, "names": list(self.names), "seconds": self.seconds, "saved": self.saved,
                "auto": self.auto, "at": self.at}

    def __repr__(self):
        return f"Outcome({self.state!r}, cell_id={self.cell_id!r}, key={(self.key or '')[:10]!r})"


class Outcomes:
    """The session's outcomes: the last one, and the last one of each cell id.
    Listeners are called with each outcome; one that raises is dropped from
    nothing and breaks nothing (a front end's comm may be gone)."""

    #: Outcomes kept by cell id; the oldest go first (a session of many cells).
    MOST = 2000

    def __init__(self):
        self.last: Outcome | None = None
        self._by_cell: dict = {}
        self.listeners: list = []

    def record(self, outcome: Outcome) -> Outcome:
        self.last = outcome
        if outcome.cell_id:
            self._by_cell.pop(outcome.cell_id, None)
            self._by_cell[outcome.cell_id] = outcome
            if len(self._by_cell) > self.MOST:
                self._by_cell.pop(next(iter(self._by_cell)))
        for listener in list(self.listeners):
            try:
                listener(outcome)
            except Exception:
                pass  # never a cell's failure
        return outcome

    def get(self, cell_id) -> Outcome | None:
        return self._by_cell.get(cell_id)

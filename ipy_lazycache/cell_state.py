"""The kernel side of the cell badge: a comm (target ``ipy_lazycache``)
through which the kernel tells a front end what happened to each cached
cell, and answers its questions (would this cell miss? why? forget it).

Comm messages are not outputs: nothing here shows in a cell or lands in a
saved notebook. In a shell with no kernel (plain IPython, a script) nothing
is registered or sent; the kernel opens the comm only for a front end that
sends cell ids (see :meth:`Badges._greet`), and one without the badge
extension closes it.

Messages, all ``{"type": ...}`` dicts:

* kernel -> front end: ``hello`` (the comm's open data); ``outcome``
  (``cell_id``, ``msg_id`` of the execute request, ``cell_state``,
  ``summary``, ``seconds``, ``saved``, ``reason``, ``auto``) after each
  cached cell (and each cell auto mode looked at);
  replies to requests, carrying the request's ``request`` number back. No
  message has a top-level ``state``: nbclient takes that for a widget's
  state and fails the run (the lite build executes notebooks with it).
* front end -> kernel: ``predict`` (``cells``: ``[{cell_id, code}]``;
  reply ``cells``: ``[{cell_id, state, reason}]``, state ``would hit``,
  ``would miss`` or ``unknown``), ``why`` (``cell_id``; reply ``text``),
  ``forget`` (``cell_id``: its entry is removed; reply ``text``).
  "Run anyway" needs no message: the front end runs the cell with ``--force``.
"""

from __future__ import annotations

from .version import __version__

TARGET = "ipy_lazycache"
#: Cells one predict request may ask about (a front end sends a notebook's cached cells).
MOST_CELLS = 500


def _kernel(shell):
    """The kernel object behind ``shell`` (ipykernel's or Pyodide's), or None."""
    kernel = getattr(shell, "kernel", None)
    return kernel if kernel is not None and hasattr(kernel, "get_parent") else None


def parent_of(shell) -> dict:
    """The request the kernel is answering now (an execute request while a
    cell runs), or ``{}``."""
    kernel = _kernel(shell)
    try:
        parent = kernel.get_parent() if kernel is not None else None
    except Exception:
        parent = None
    return parent if isinstance(parent, dict) else {}


def summary(outcome) -> str:
    """What the badge says: ``restored (saved 2.1 s)``, ``stored``,
    ``ran uncached: <reason>``."""
    from .core.sequence import secs

    state = outcome.state
    if state == "restored":
        return f"restored (saved {secs(outcome.saved)})" if outcome.saved else "restored"
    if state == "ran uncached" and outcome.reason:
        return f"ran uncached: {outcome.reason}"
    return state


class Badges:
    """The comm endpoint of one loaded extension (:class:`.magics.LazyCache`)."""

    def __init__(self, extension):
        self.extension = extension
        self.comms: dict = {}  # comm_id -> open comm (one per front end that answered)
        self._manager = None

    # -- wiring ------------------------------------------------------------------
    def start(self) -> bool:
        """Register the target, listen to outcomes and greet the front ends.
        False (and nothing done) without a kernel or the outcome record."""
        outcomes = getattr(self.extension, "outcomes", None)
        if _kernel(self.extension.shell) is None or outcomes is None:
            return False
        import comm

        self._manager = comm.get_comm_manager()
        # A front end reloaded while the kernel ran opens its own comm to this target.
        self._manager.register_target(TARGET, self._opened_by_front_end)
        outcomes.listeners.append(self.tell)
        if not self._greet():
            self.extension.shell.events.register("pre_run_cell", self._greet_later)
        return True

    def _greet(self) -> bool:
        """Open the comm to the front end if the request being answered
        comes from one with cells: JupyterLab, Notebook 7 and JupyterLite
        send each cell's id with its execute request. nbclient (nbconvert,
        papermill, the lite build) sends none, and would log a warning for a
        comm it has no handler for."""
        if not (parent_of(self.extension.shell).get("metadata") or {}).get("cellId"):
            return False
        import comm

        self._keep(comm.create_comm(target_name=TARGET, data={"type": "hello", "version": __version__}))
        return True

    def _greet_later(self, _info=None):
        """Loaded with no such request (a startup file, nbclient): greet at the first cell that has one."""
        if self._greet():
            self.extension.shell.events.unregister("pre_run_cell", self._greet_later)

    def stop(self):
        try:
            self.extension.shell.events.unregister("pre_run_cell", self._greet_later)
        except ValueError:
            pass  # greeted already
        outcomes = getattr(self.extension, "outcomes", None)
        if outcomes is not None and self.tell in outcomes.listeners:
            outcomes.listeners.remove(self.tell)
        if self._manager is not None:
            self._manager.unregister_target(TARGET, self._opened_by_front_end)
        for comm in list(self.comms.values()):
            try:
                comm.close()
            except Exception:
                pass
        self.comms.clear()

    def _keep(self, comm):
        self.comms[comm.comm_id] = comm
        comm.on_msg(lambda msg: self.received(comm, msg))
        comm.on_close(lambda _msg: self.comms.pop(comm.comm_id, None))

    def _opened_by_front_end(self, comm, _msg):
        self._keep(comm)
        comm.send({"type": "hello", "version": __version__})

    # -- kernel -> front end -----------------------------------------------------------
    def tell(self, outcome):
        """An outcome listener: send the cell's state to every front end."""
        if not self.comms:
            return
        parent = parent_of(self.extension.shell)
        cell_id = outcome.cell_id or (parent.get("metadata") or {}).get("cellId")
        message = {
            "type": "outcome", "cell_id": cell_id, "msg_id": (parent.get("header") or {}).get("msg_id"),
            "cell_state": outcome.state, "summary": summary(outcome), "reason": outcome.reason or "",
            "seconds": outcome.seconds, "saved": outcome.saved, "auto": bool(outcome.auto),
        }
        self._send(message)

    def _send(self, message, comm=None):
        for target in [comm] if comm is not None else list(self.comms.values()):
            try:
                target.send(message)
            except Exception:
                self.comms.pop(getattr(target, "comm_id", None), None)  # that front end is gone

    # -- front end -> kernel -----------------------------------------------------------
    def received(self, comm, msg):
        """Answer one request; never raises (a comm handler's error would be
        logged by the kernel, far from the user)."""
        data: dict = {}
        try:
            data = (msg.get("content") or {}).get("data") or {}
            answer = {"predict": self.predict, "why": self.why, "forget": self.forget}.get(data.get("type"))
            if answer is None:
                return
            reply = answer(data)
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        self._send({"type": data.get("type", "error"), "request": data.get("request"), **reply}, comm)

    def predict(self, data) -> dict:
        from . import why

        cells = []
        for cell in list(data.get("cells") or [])[:MOST_CELLS]:
            said = why.predict(self.extension, str(cell.get("code") or ""), cell_id=cell.get("cell_id"))
            cells.append({"cell_id": cell.get("cell_id"), "state": said["state"], "reason": said["reason"]})
        return {"cells": cells}

    def why(self, data) -> dict:
        cell_id = data.get("cell_id")
        return {"cell_id": cell_id, "text": why_text(self.extension, cell_id)}

    def forget(self, data) -> dict:
        """Remove the entry the cell last restored or stored (``%lazycache why``'s forget)."""
        from . import why

        cell_id = data.get("cell_id")
        text = why.forget(self.extension, cell_id) if cell_id else "lazycache: no cell named: nothing forgotten."
        return {"cell_id": cell_id, "text": text}


def why_text(extension, cell_id) -> str:
    """What ``%lazycache why CELL_ID`` prints."""
    from . import why

    if not cell_id:
        return "lazycache: no cell named."
    return why.explain(extension, cell_id).text()


def start(extension) -> Badges | None:
    """Called as the extension loads: the comm, if there is a kernel to carry it."""
    badges = Badges(extension)
    try:
        return badges if badges.start() else None
    except Exception:
        return None  # an old comm package or a kernel without comms: no badges, nothing else changes

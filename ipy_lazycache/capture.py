"""Output capture and replay: what a cell showed, as nbformat-like outputs.

Recording passes everything through, so a slow cell's output is seen live.
"""

from __future__ import annotations

import sys


class _Tee:
    """A stream that writes through and records, so a slow cell's output is
    seen live and is also stored."""

    def __init__(self, stream, name, capture):
        self._stream, self._name, self._capture = stream, name, capture

    def write(self, text):
        events = self._capture.events
        if self._capture.publishing or self._capture.paused:
            pass  # a terminal's display publisher prints; the display is recorded already
        elif events and events[-1].get("name") == self._name:
            events[-1]["text"] += text
        else:
            if events and events[-1].get("output_type") == "stream":
                # the other stream's text comes first: flush it, so a front
                # end shows the order recorded (and replayed), not the buffers'
                self._capture.flush(events[-1]["name"])
            events.append({"output_type": "stream", "name": self._name, "text": text})
        return self._stream.write(text)

    def __getattr__(self, attr):
        return getattr(self._stream, attr)


#: The place among the outputs where the cell's value was shown: outputs
#: after it (inline figures, drawn after the cell) are replayed after it too.
RESULT_MARK = "lazycache_result"


def split_at_result(outputs):
    """Outputs shown before the cell's value, and those shown after it."""
    for i, out in enumerate(outputs):
        if out.get("output_type") == RESULT_MARK:
            return outputs[:i], outputs[i + 1:]
    return outputs, []


class Capture:
    """Record stdout, stderr and rich displays while passing them through.

    Displays keep their ``display_id`` and later updates of it are recorded
    as ``update_display_data``, so a replay ends with the final content.
    Logging handlers made before the cell hold the streams of before the
    cell, not ``sys.stdout``/``sys.stderr``: while recording they write
    through the recording streams too (what they log reaches the cell's
    output, so it is part of what the cell showed).
    """

    def __init__(self, shell):
        self.shell = shell
        self.events: list[dict] = []
        self.publishing = False
        self.paused = 0  # >0 while IPython's displayhook shows the cell's value
        self.shown = None  # the cell's value as the displayhook showed it: {"data", "metadata"}

    def pause(self, hook):
        """Wrap a displayhook so nothing it shows is recorded: a hit shows the
        restored value through the same hook, so recording it would show it twice."""

        def paused(value):
            if value is not None and not any(e.get("output_type") == RESULT_MARK for e in self.events):
                self.events.append({"output_type": RESULT_MARK})  # where the value showed, for a hit's order
            self.paused += 1
            formatter = self.shell.display_formatter
            had = vars(formatter).get("format")
            formatter.format = self._noting(formatter.format, value)
            try:
                return hook(value)
            finally:
                self.paused -= 1
                if had is None:
                    vars(formatter).pop("format", None)
                else:
                    formatter.format = had

        return paused

    def _noting(self, format, value):
        """``format``, noting what it made of ``value``: the run's display is
        what a hit shows again (the object may format otherwise by the time
        it is stored: a label laid out by the inline backend after the cell)."""

        def noted(obj, *args, **kwargs):
            out = format(obj, *args, **kwargs)
            if obj is value and self.shown is None:
                self.shown = {"data": jsonable(out[0]), "metadata": jsonable(out[1])}
            return out

        return noted

    def __enter__(self):
        self._out, self._err = sys.stdout, sys.stderr
        sys.stdout = _Tee(sys.stdout, "stdout", self)
        sys.stderr = _Tee(sys.stderr, "stderr", self)
        self._tees = sys.stdout, sys.stderr
        _redirect_handlers({id(self._out): sys.stdout, id(self._err): sys.stderr})
        pub = self.shell.display_pub
        self._pub = pub
        # Whatever else wraps this publisher (another extension, a test) is
        # put back as it was on exit.
        self._saved = {k: vars(pub)[k] for k in ("publish", "clear_output") if k in vars(pub)}
        self._publish, self._clear = pub.publish, pub.clear_output
        events = self.events

        def publish(data, metadata=None, *args, **kwargs):
            if not self.paused:
                event = {
                    "output_type": "update_display_data" if kwargs.get("update") else "display_data",
                    "data": jsonable(data), "metadata": jsonable(metadata or {}),
                }
                display_id = (kwargs.get("transient") or {}).get("display_id")
                if display_id is not None:
                    event["transient"] = {"display_id": str(display_id)}
                if event["output_type"] == "display_data" or display_id is not None:
                    events.append(event)
            self.publishing = True
            try:
                return self._publish(data, metadata, *args, **kwargs)
            finally:
                self.publishing = False

        def clear_output(wait=False):
            events.append({"output_type": "clear_output", "wait": bool(wait)})
            return self._clear(wait)

        pub.publish, pub.clear_output = publish, clear_output
        return self

    def flush(self, name):
        stream = self._out if name == "stdout" else self._err
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or odd stream; the text is recorded anyway
            pass

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self._out, self._err
        # Handlers pointed at the recording streams, by us or made in the cell
        # (``logging.basicConfig()``), write to the real streams again.
        _redirect_handlers({id(self._tees[0]): self._out, id(self._tees[1]): self._err})
        del self._pub.publish, self._pub.clear_output
        vars(self._pub).update(self._saved)


def _redirect_handlers(tees: dict):
    """Point logging handlers that write to one of the streams ``tees`` maps
    (by id) at the stream it maps to."""
    logging = sys.modules.get("logging")
    if logging is None:
        return
    loggers = [logging.getLogger()] + [
        lg for lg in list(logging.Logger.manager.loggerDict.values()) if isinstance(lg, logging.Logger)
    ]
    for logger in loggers:
        for handler in list(logger.handlers):
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and id(stream) in tees and tees[id(stream)] is not stream:
                handler.stream = tees[id(stream)]


def jsonable(bundle: dict) -> dict:
    """Mime bundles as nbformat stores them: bytes (PNG) as base64 text."""
    import base64
    import json

    out = {}
    for k, v in bundle.items():
        if isinstance(v, bytes):
            v = base64.b64encode(v).decode()
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            v = str(v)
        out[k] = v
    return out


def flush_inline_figures():
    """Show pending matplotlib-inline figures inside the capture, so plots are
    stored; IPython would otherwise draw them after the cell, uncaptured."""
    backend = sys.modules.get("matplotlib_inline.backend_inline")
    if backend is not None:
        backend.flush_figures()


def replay(shell, outputs):
    """Show recorded outputs again, in their order; displays with their
    ``display_id`` and its updates, so the front end ends with the final
    content and a later ``handle.update`` still finds the display."""
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            stream = sys.stderr if out.get("name") == "stderr" else sys.stdout
            stream.write(out.get("text", ""))
            stream.flush()  # in the recorded order, whatever the streams' buffers would do
        elif kind in ("display_data", "update_display_data"):
            extra = {"transient": out["transient"]} if out.get("transient") else {}
            if kind == "update_display_data":
                extra["update"] = True
            shell.display_pub.publish(data=out.get("data", {}), metadata=out.get("metadata", {}), **extra)
        elif kind == "clear_output":
            shell.display_pub.clear_output(out.get("wait", False))


def show_result(shell, result: dict):
    """Show a stored last-expression bundle as the cell's result (``Out[n]:``)
    without putting anything in ``Out``, ``_`` or the history: for a value
    that could not be stored, so no stand-in of ours ever takes its place."""
    hook = shell.displayhook
    hook.start_displayhook()
    hook.write_output_prompt()
    hook.write_format_data(result.get("data", {}), result.get("metadata", {}))
    hook.finish_displayhook()

"""A progress bar for slow stores and restores, and nothing on fast ones.

Nothing is imported or shown until an operation has run for :data:`DELAY`
seconds, so a fast hit pays for one ``perf_counter`` call per chunk.

Where the bar goes:

- **In a Jupyter kernel** it is a display with a ``display_id``, updated in
  place, and blanked when the operation ends. A bar must never stay in the
  saved notebook, and no widget or stream output can be taken back: a widget
  view outlives its closed model in the saved outputs, and a stream keeps every
  ``\\r``-overwritten line. The caller can hand the blanked display its final
  status line (:meth:`Progress.say`), so the slow case leaves the same single
  line the fast case prints. (Not ``tqdm.auto`` either: without ipywidgets its
  notebook bar raises instead of drawing.)
- **In a terminal** it is tqdm's text bar on stderr (``leave=False``), when
  tqdm is installed and stderr is the terminal itself. Anywhere else there is
  no bar: a stderr that is not a terminal is someone's record of the cell
  (``%%capture``, a redirect, a test harness), and ``\r``-erased text stays in it.
"""

from __future__ import annotations

import time

#: Seconds before a bar appears.
DELAY = 2.0
#: Large chunks are written in slices of this size, so the bar moves.
SLICE = 64 << 20
#: Seconds between two redraws of a kernel bar (each is a message to the frontend).
REDRAW = 0.2


class Progress:
    """Counts bytes; shows a bar once :data:`DELAY` seconds have passed.

    Use as a context manager; give it to :func:`cache.save` or
    :func:`cache.restore` as ``progress``.
    """

    def __init__(self, desc: str, delay: float = DELAY):
        self.desc = desc
        self.delay = delay
        self.started = time.perf_counter()
        self.done = 0
        self.size = None
        self.bar = None
        self._failed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def shown(self) -> bool:
        """Whether a bar was ever shown (and, in a kernel, left a blank display)."""
        return self.bar is not None

    def total(self, n: int):
        self.size = n
        if self.bar is not None:
            self.bar.total(n)

    def update(self, n: int):
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif not self._failed and time.perf_counter() - self.started >= self.delay:
            self._open()

    def _open(self):
        try:
            if _in_kernel():
                self.bar = _DisplayBar(self)
            elif _stderr_is_terminal():
                self.bar = _TextBar(self)
            else:
                self._failed = True  # nowhere to draw that nobody records
        except Exception:  # noqa: BLE001 - no tqdm, no display: no bar, never an error
            self._failed = True
            self.bar = None

    def wrap(self, parts):
        """The chunks of one ``put``, as a list that counts them as they are
        iterated (in slices of at most :data:`SLICE` bytes, no copies)."""
        return _Counted(parts, self)

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def say(self, text: str) -> bool:
        """Put ``text`` where a kernel bar was (after :meth:`close`), and
        return True; False when there is no such place (print it yourself)."""
        return self.bar is not None and self.bar.say(text)


def _in_kernel() -> bool:
    """Inside a Jupyter kernel, where displays reach a notebook."""
    import sys

    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


def _stderr_is_terminal() -> bool:
    import sys

    try:
        return bool(sys.stderr.isatty())
    except Exception:  # noqa: BLE001 - a replaced stderr without isatty: not a terminal
        return False


class _DisplayBar:
    """A display updated in place; blanked on close."""

    def __init__(self, progress: Progress):
        from IPython.display import display

        self.p = progress
        self.last = 0.0
        self.closed = False
        self.handle = display(self._bundle(), raw=True, display_id=True)

    def _bundle(self) -> dict:
        import html

        from .reports import human_size

        p = self.p
        secs = time.perf_counter() - p.started
        rate = f"{human_size(p.done / secs)}/s" if secs > 0 else ""
        if p.size:
            text = f"{p.desc}: {100 * p.done / p.size:3.0f}% {human_size(p.done)} of {human_size(p.size)}, {rate}"
            bar = f'<progress value="{p.done}" max="{p.size}" style="width: 20em"></progress> '
        else:
            text = f"{p.desc}: {human_size(p.done)}, {rate}"
            bar = ""
        return {"text/plain": text, "text/html": f"<div>{bar}{html.escape(text)}</div>"}

    def total(self, n):
        self._draw(force=True)

    def update(self, n):
        self._draw()

    def _draw(self, force=False):
        now = time.perf_counter()
        if not self.closed and (force or now - self.last >= REDRAW):
            self.last = now
            self.handle.update(self._bundle(), raw=True)

    def close(self):
        if not self.closed:
            self.closed = True
            self.handle.update({"text/plain": ""}, raw=True)

    def say(self, text):
        self.close()
        self.handle.update({"text/plain": text}, raw=True)
        return True


class _TextBar:
    """tqdm's text bar on stderr; it erases itself on close (``leave=False``)."""

    def __init__(self, progress: Progress):
        import sys

        from tqdm.std import tqdm

        self.bar = tqdm(
            total=progress.size, initial=progress.done, desc=progress.desc, unit="B", unit_scale=True,
            unit_divisor=1024, leave=False, file=sys.stderr,
        )

    def total(self, n):
        self.bar.total = n
        self.bar.refresh()

    def update(self, n):
        self.bar.update(n)

    def close(self):
        self.bar.close()

    def say(self, text):
        return False


class _Counted(list):
    """A list of chunks whose iteration reports progress; ``len`` and
    indexing see the original chunks, iteration sees slices of them."""

    def __init__(self, parts, progress):
        super().__init__(parts)
        self._progress = progress

    def __iter__(self):
        for part in list.__iter__(self):
            view = memoryview(part)
            if view.nbytes <= SLICE:
                yield part
                self._progress.update(view.nbytes)
                continue
            view = view.cast("B")
            for start in range(0, view.nbytes, SLICE):
                piece = view[start : start + SLICE]
                yield piece
                self._progress.update(piece.nbytes)

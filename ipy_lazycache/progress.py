"""A progress bar for slow stores and restores, and nothing on fast ones.

``tqdm`` (its notebook-aware ``tqdm.auto``) is optional and imported only once
an operation has run for :data:`DELAY` seconds, so a fast hit pays for one
``perf_counter`` call per chunk and never for the import.
"""

from __future__ import annotations

import time

#: Seconds before a bar appears.
DELAY = 2.0
#: Large chunks are written in slices of this size, so the bar moves.
SLICE = 64 << 20


class Progress:
    """Counts bytes; shows a tqdm bar once :data:`DELAY` seconds have passed.

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

    def total(self, n: int):
        self.size = n
        if self.bar is not None:
            self.bar.total = n
            self.bar.refresh()

    def update(self, n: int):
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif not self._failed and time.perf_counter() - self.started >= self.delay:
            self._open()

    def _open(self):
        try:
            from tqdm.auto import tqdm
        except Exception:  # tqdm not installed: no bar, never an error
            self._failed = True
            return
        self.bar = tqdm(
            total=self.size, initial=self.done, desc=self.desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False
        )

    def wrap(self, parts):
        """The chunks of one ``put``, as a list that counts them as they are
        iterated (in slices of at most :data:`SLICE` bytes, no copies)."""
        return _Counted(parts, self)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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

"""What the run sequence asks of the shell (:class:`Shell`): show outputs,
show a value's display, format a value, run a line magic, record outputs, a
progress bar. The defaults suit a plain dict namespace with no front end;
:mod:`ipy_lazycache.ipython_shell` is IPython's."""

from __future__ import annotations

import contextlib


class Recording:
    """What a :class:`Shell` records while the body runs; this one records nothing."""

    def __init__(self):
        self.events: list = []

    def __exit__(self, *exc):
        pass


class Shell:
    """What the sequence asks of the shell. The defaults suit a plain dict
    namespace with no front end: nothing is shown or recorded, values are
    formatted by ``repr``."""

    def show(self, outputs: list):
        """Show recorded outputs again, in their order."""

    def show_result(self, result: dict):
        """Show a stored display of the cell's value (a value not stored)."""

    def format(self, value) -> tuple[dict, dict]:
        return {"text/plain": repr(value)}, {}

    def run_magic(self, name: str, line: str):
        """Run a configuring line magic again (a hit does what the run did)."""
        raise LookupError(f"no shell to run %{name}")

    def record(self):
        """Start recording what the body shows: an object with ``events``
        (outputs, nbformat-like) and ``__exit__`` to stop."""
        return Recording()

    def settle(self):
        """Before storing: show what the run still holds (pending figures)."""

    def progress(self, label: str):
        """A context manager with a progress bar for a long store."""
        return contextlib.nullcontext()

    def used(self, store, key: str):
        """The cell used entry ``key`` (the export list records it)."""

    def say(self, text: str):
        print(text)

    def input_server(self):
        """The object whose ``_input_request`` serves ``input()`` (a kernel), if any."""
        return None

    def describe_folder(self, store) -> str:
        """A cache folder for a message: where it is (and which setting chose it)."""
        return str(getattr(store, "root", store))

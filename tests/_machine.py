"""One "machine" for the shared-store tests: a real InteractiveShell in its own
process, driven one cell at a time over stdin/stdout as JSON lines.

Request:  {"cell": "...", "values": ["name", ...]}
Reply:    {"out": "...", "success": bool, "seconds": float,
           "values": {name: {"hash": ..., "type": ..., "repr": ...}}}
"""

import contextlib
import io
import json
import sys
import time

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config


def mapped(value) -> bool:
    """Whether an array's memory is a file mapping (its base chain ends in one)."""
    for _ in range(10):
        if type(value).__name__ in ("memmap", "mmap"):
            return True
        value = getattr(value, "base", None)
        if value is None:
            return False
    return False


def main():
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.run_cell("%load_ext ipy_lazycache", store_history=False)
    reply = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        buf = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            result = shell.run_cell(request["cell"], store_history=True)
        seconds = time.perf_counter() - started
        values = {}
        for name in request.get("values", []):
            from ipy_lazycache.hashing import value_hash

            value = shell.user_ns.get(name)
            values[name] = {
                "hash": value_hash(value), "type": type(value).__name__, "repr": repr(value)[:200],
                "mapped": mapped(value),
            }
        reply.write(json.dumps({"out": buf.getvalue(), "success": result.success, "seconds": seconds,
                                "values": values}) + "\n")
        reply.flush()


if __name__ == "__main__":
    main()

"""The progress bar of a slow store is shown live and leaves nothing behind:
neither in the notebook saved after the run nor in the outputs a hit replays.
Through real kernels (nbclient + ipykernel), as a user's notebook runs."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

CELLS = [
    "%load_ext ipy_lazycache",
    # Pickling `slow` takes over the bar's 2 s delay, so the bar appears as
    # soon as the blobs are written.
    (
        "%%lazycache\n"
        "open('runs.txt', 'a').write('run\\n')\n"  # a body-run counter: a hit must not run it
        "import time\n"
        "class Slow:\n"
        "    def __reduce__(self):\n"
        "        time.sleep(2.3)\n"
        "        return (Slow, ())\n"
        "slow = Slow()\n"
        "print('made')"
    ),
    "print(type(slow).__name__)",
]


class Recording(NotebookClient):
    """Keeps every iopub message, to see what the frontend was shown live."""

    def process_message(self, msg, cell, cell_index):
        self.__dict__.setdefault("seen", []).append((cell_index, msg["msg_type"], msg["content"]))
        return super().process_message(msg, cell, cell_index)


def execute(path):
    nb = nbformat.read(path, as_version=4)
    client = Recording(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb, client.seen


def shown_bars(seen, cell_index):
    return [
        c["data"]["text/plain"]
        for i, kind, c in seen
        if i == cell_index
        and kind in ("display_data", "update_display_data")
        and "%" in c["data"].get("text/plain", "")
    ]


def texts(cell):
    out = []
    for o in cell.outputs:
        out.append(o.get("text", ""))
        out.extend(str(v) for v in o.get("data", {}).values())
    return "\n".join(out)


def test_a_slow_store_shows_a_bar_that_the_saved_notebook_does_not_keep(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS]), path)

    first, seen = execute(path)
    bars = shown_bars(seen, 1)
    assert bars and all(b.startswith("lazycache: storing") for b in bars), "no bar was shown: the test proves nothing"
    saved = texts(first.cells[1])
    assert "made" in saved and "lazycache: stored" in saved
    assert "storing" not in saved and "%" not in saved and "<progress" not in saved
    blank = [o for o in first.cells[1].outputs if "data" in o and not any(str(v).strip() for v in o["data"].values())]
    assert not blank, "the bar left an empty output in the saved cell (the status line goes in its place)"
    assert saved.count("lazycache: stored") == 1
    assert texts(first.cells[2]).strip() == "Slow"

    runs = tmp_path / "runs.txt"
    assert runs.read_text() == "run\n"
    second, _ = execute(path)
    replayed = texts(second.cells[1])
    assert runs.read_text() == "run\n", "the second kernel ran the body: no hit"
    assert "lazycache: restored" in replayed
    assert "made" in replayed and "storing" not in replayed and "<progress" not in replayed
    assert texts(second.cells[2]).strip() == "Slow"


def test_an_auto_mode_store_refused_after_its_bar_showed_leaves_no_empty_output(tmp_path):
    """Auto mode keeps quiet about a cell it does not store, but once the bar showed 'storing' in the cell, its
    place says why (an empty display stayed in the saved notebook)."""
    cell = CELLS[1].replace("%%lazycache\n", "") + "\ngen = (i for i in range(3))"
    cells = ["%load_ext ipy_lazycache\n%lazycache auto on --min-time 0", cell]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    first, seen = execute(path)
    assert shown_bars(seen, 1), "no bar was shown: the test proves nothing"
    outputs = first.cells[1].outputs
    assert not [o for o in outputs if "data" in o and not any(str(v).strip() for v in o["data"].values())]
    assert "made" in texts(first.cells[1]) and "not stored" in texts(first.cells[1])

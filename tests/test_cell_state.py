"""The cell badge's kernel side (issue 24) through a real ipykernel: the
comm the extension opens, an outcome message per cached cell (matched to
its cell by id and by the execute request), and the front end's requests
(predict, why, forget), across a kernel restart. Comm messages are not
outputs: the cells show exactly what they show without a front end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CELL = "%%lazycache\nopen('runs.txt', 'a').write('run\\n')\ntotal = sum(range(n))\nprint('total', total)"


@pytest.fixture
def kernel(tmp_path):
    from jupyter_client import KernelManager

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("IPY_LAZYCACHE_DIR", None)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path), env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def _collect(kc, msg_id):
    """Every iopub message the request ``msg_id`` caused, until the kernel is idle again."""
    seen = []
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return seen
        seen.append(msg)


def execute(kc, code, cell_id=None):
    """Run ``code`` as JupyterLab runs a cell (its id in the request's metadata)."""
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}
    msg = kc.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
    kc.shell_channel.send(msg)
    return msg["header"]["msg_id"], _collect(kc, msg["header"]["msg_id"])


def ask(kc, comm_id, **data):
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
    kc.shell_channel.send(msg)
    replies = [m["content"]["data"] for m in _collect(kc, msg["header"]["msg_id"]) if m["msg_type"] == "comm_msg"]
    assert len(replies) == 1, replies
    return replies[0]


def loaded(kc) -> str:
    _, seen = execute(kc, "%load_ext ipy_lazycache", cell_id="cell-load")
    (opened,) = [m for m in seen if m["msg_type"] == "comm_open"]
    assert opened["content"]["target_name"] == "ipy_lazycache" and opened["content"]["data"]["type"] == "hello"
    return opened["content"]["comm_id"]


def test_the_comm_opens_for_a_front_end_with_cells(kernel):
    """Loaded by a request with no cell id (a startup file, nbclient): no
    comm until a cell with an id runs, then one, once."""
    _km, kc = kernel
    _, seen = execute(kc, "%load_ext ipy_lazycache\nn = 2")
    assert not [m for m in seen if m["msg_type"].startswith("comm")], seen
    _, seen = execute(kc, CELL)  # still no cell id: nothing is sent
    assert not [m for m in seen if m["msg_type"].startswith("comm")], seen
    _, seen = execute(kc, CELL, cell_id="cell-a")
    assert [m["msg_type"] for m in seen if m["msg_type"].startswith("comm")] == ["comm_open", "comm_msg"], seen
    _, seen = execute(kc, CELL, cell_id="cell-a")
    assert [m["msg_type"] for m in seen if m["msg_type"].startswith("comm")] == ["comm_msg"], seen


def outcome_and_text(seen):
    (said,) = [m["content"]["data"] for m in seen if m["msg_type"] == "comm_msg"]
    text = "".join(m["content"]["text"] for m in seen if m["msg_type"] == "stream")
    assert not [m for m in seen if m["msg_type"] in ("display_data", "execute_result")], seen
    return said, text


def test_outcomes_and_requests_through_a_kernel_restart(kernel, tmp_path):
    km, kc = kernel
    comm = loaded(kc)
    execute(kc, "n = 5")
    msg_id, seen = execute(kc, CELL, cell_id="cell-a")
    said, text = outcome_and_text(seen)
    assert said["type"] == "outcome" and said["cell_state"] == "stored" and said["summary"] == "stored", said
    assert said["cell_id"] == "cell-a" and said["msg_id"] == msg_id and said["auto"] is False, said
    assert "total 10" in text and "lazycache: stored" in text, text

    other = CELL.replace("total 10", "sum").replace("print('total', total)", "print('sum', total)")
    reply = ask(kc, comm, type="predict", request=7,
                cells=[{"cell_id": "cell-a", "code": CELL}, {"cell_id": "cell-b", "code": other}])
    assert reply["request"] == 7
    assert [(c["cell_id"], c["state"]) for c in reply["cells"]] == [("cell-a", "would hit"), ("cell-b", "would miss")]

    km.restart_kernel(now=True)
    kc.wait_for_ready(timeout=60)
    comm = loaded(kc)
    execute(kc, "n = 5")
    _, seen = execute(kc, CELL, cell_id="cell-a")
    said, text = outcome_and_text(seen)
    assert said["cell_state"] == "restored" and said["summary"].startswith("restored"), said
    assert "total 10" in text and (tmp_path / "runs.txt").read_text() == "run\n"  # the body did not run again
    why = ask(kc, comm, type="why", request=8, cell_id="cell-a")
    assert why["cell_id"] == "cell-a" and "restored" in why["text"].lower(), why

    execute(kc, "n = 6")  # an input changed: the cell's entry no longer fits
    (cell,) = ask(kc, comm, type="predict", request=9, cells=[{"cell_id": "cell-a", "code": CELL}])["cells"]
    assert cell["state"] == "would miss", cell
    said, text = outcome_and_text(execute(kc, CELL, cell_id="cell-a")[1])
    assert said["cell_state"] == "stored" and "total 15" in text

    forgot = ask(kc, comm, type="forget", request=10, cell_id="cell-a", code=CELL)
    assert "removed" in forgot["text"], forgot
    (cell,) = ask(kc, comm, type="predict", request=11, cells=[{"cell_id": "cell-a", "code": CELL}])["cells"]
    assert cell["state"] == "would miss", cell


def test_no_kernel_no_comm(shell, capfd):
    """A plain IPython shell (a script, a terminal): nothing registered, nothing printed."""
    import ipy_lazycache

    assert ipy_lazycache._badges is None
    shell.run_cell("n = 3")
    capfd.readouterr()
    shell.run_cell(CELL)
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert lines[0] == "total 3" and lines[1].startswith("lazycache: stored total as ") and len(lines) == 2, out
    assert err == ""


def test_nbclient_runs_a_notebook_that_loads_the_extension(tmp_path, monkeypatch, caplog):
    """nbclient (``jupyter lite build --LazyCacheAddon.execute``, nbconvert) is
    a front end with no badge: it ignores the comm, and the notebook's
    outputs are exactly the cells' own."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("IPY_LAZYCACHE_DIR", raising=False)
    cells = ("%load_ext ipy_lazycache", "n = 4", CELL)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=60, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[2].outputs
    assert [o.output_type for o in outputs] == ["stream"], outputs
    assert outputs[0].text.startswith("total 6\nlazycache: stored total as "), outputs
    assert nb.cells[0].outputs == [] and "widgets" not in nb.metadata, nb.metadata
    assert not [r for r in caplog.records if "ipy_lazycache" in r.getMessage()]  # no "no handler for comm" warning

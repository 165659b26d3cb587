"""Export lists (which entries a notebook uses) and ``ipy-lazycache export``."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ipy_lazycache import core, export
from ipy_lazycache.stores import FileStore

CLI = [sys.executable, "-m", "ipy_lazycache.cli"]


def cli(*args, cwd=None):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def entry_keys(folder):
    return sorted(p.name for p in Path(folder).iterdir() if len(p.name) == 32)


def test_a_cell_keeps_only_its_latest_key(shell, tmp_path, runs):
    shell.user_ns["__session__"] = str(tmp_path / "work" / "analysis.ipynb")  # as ipykernel sets it
    body = 'print("ran", file=open("runs.txt", "a"))\n'
    assert shell.run_cell(f"%%lazycache\na = 1\n{body}", cell_id="cell-a").success
    assert shell.run_cell(f"%%lazycache\nb = a + 1\n{body}", cell_id="cell-b").success
    lst = export.read_list(tmp_path / "__lazycache__" / "exports" / export.list_name("analysis.ipynb"))
    assert lst["notebook"].endswith("analysis.ipynb")
    first = {c: r["key"] for c, r in lst["cells"].items()}
    assert sorted(first) == ["id:cell-a", "id:cell-b"]

    # The user edits cell b: its new key replaces the old one.
    assert shell.run_cell(f"%%lazycache\nb = a + 2\n{body}", cell_id="cell-b").success
    # A hit records too (and changes nothing here).
    assert shell.run_cell(f"%%lazycache\na = 1\n{body}", cell_id="cell-a").success
    assert runs() == 3  # the last cell was a hit
    lst = export.read_list(tmp_path / "__lazycache__" / "exports" / export.list_name("analysis.ipynb"))
    now = {c: r["key"] for c, r in lst["cells"].items()}
    assert now["id:cell-a"] == first["id:cell-a"] and now["id:cell-b"] != first["id:cell-b"]
    # All three entries are in the folder; only the two in use are listed.
    assert len(export.all_keys(tmp_path / "__lazycache__")) == 3
    assert export.listed_keys(tmp_path / "__lazycache__") == set(now.values())

    proc = cli("export", tmp_path / "__lazycache__", tmp_path / "site" / "__lazycache__")
    assert proc.returncode == 0, proc.stderr
    assert "copied 2 entries" in proc.stdout
    assert entry_keys(tmp_path / "site" / "__lazycache__") == sorted(now.values())
    # Only entries: no export lists, no recency files.
    assert not (tmp_path / "site" / "__lazycache__" / "exports").exists()
    proc = cli("export", "--all", tmp_path / "__lazycache__", tmp_path / "all")
    assert proc.returncode == 0 and "copied 3 entries" in proc.stdout


def test_without_cell_ids_the_notebook_decides(shell, tmp_path):
    """nbclient sends no cell id: records are keyed by source, and cells no
    longer in the notebook are dropped when the notebook is given."""
    shell.run_cell("%%lazycache\nx = 1", cell_id=None)
    shell.run_cell("%%lazycache\nx = 2", cell_id=None)
    folder = tmp_path / "__lazycache__"
    assert len(export.listed_keys(folder)) == 2
    nb = tmp_path / "session.ipynb"
    nb.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "c1", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "%%lazycache\nx = 2"}]}))
    keys = export.listed_keys(folder, nb)
    assert len(keys) == 1
    m = core.restore.load_manifest(FileStore(folder), next(iter(keys)))
    assert m["source"].strip() == "x = 2"


KILLED = textwrap.dedent("""
    import os, sys
    from IPython.core.interactiveshell import InteractiveShell
    sh = InteractiveShell.instance()
    sh.run_cell("%load_ext ipy_lazycache")
    sh.user_ns["__session__"] = "killed.ipynb"
    for i, code in enumerate(["a = list(range(1000))", "b = sum(a)"]):
        assert sh.run_cell("%%lazycache\\n" + code, cell_id=f"c{i}").success
    print("READY", flush=True)
    sh.run_cell("%%lazycache\\nimport time\\ntime.sleep(60)\\nc = 1", cell_id="c2")
""")


def test_a_killed_kernels_list_is_valid(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILLED], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or lines[-1] not in ("READY", ""):
            lines.append(proc.stdout.readline().strip())
        assert lines[-1] == "READY", lines
        time.sleep(0.3)  # inside the third cell's body
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    folder = tmp_path / "__lazycache__"
    lst = export.read_list(folder / "exports" / export.list_name("killed.ipynb"))
    assert sorted(lst["cells"]) == ["id:c0", "id:c1"]
    # Every listed entry is whole: exporting them verifies every digest.
    out = export.export(folder, tmp_path / "out", export.listed_keys(folder), progress=False)
    assert out.ok and len(out.copied) == 2, out.lines()


WRITER = textwrap.dedent("""
    import sys
    from ipy_lazycache import export
    from ipy_lazycache.stores import FileStore
    store = FileStore(sys.argv[1])
    i = 0
    print("GO", flush=True)
    while True:
        export.record(store, f"{i:032x}", f"id:cell{i % 7}", "busy.ipynb")
        i += 1
""")


def test_a_list_killed_mid_write_is_never_torn(tmp_path):
    path = tmp_path / "c" / "exports" / export.list_name("busy.ipynb")
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "c")], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "GO"
        time.sleep(0.2 + 0.05 * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        data = json.loads(path.read_text())  # whole JSON, every time
        assert 1 <= len(data["cells"]) <= 7
        assert all(len(r["key"]) == 32 for r in data["cells"].values())


def test_a_tampered_entry_fails_export(shell, tmp_path):
    shell.run_cell("%%lazycache\ngood = 'fine'", cell_id="g")
    shell.run_cell("%%lazycache\nbad = list(range(100))", cell_id="b")
    folder = tmp_path / "__lazycache__"
    bad_blob = next(folder.glob("*/bad.*.pkl"))
    data = bytearray(bad_blob.read_bytes())
    data[-3] ^= 0xFF
    bad_blob.write_bytes(bytes(data))
    bad_key = bad_blob.parent.name

    proc = cli("export", folder, tmp_path / "dest", "--no-progress")
    assert proc.returncode == 1
    damaged = f"export: {bad_key[:10]} is damaged (blob {bad_blob.name} does not match its digest); not copied"
    assert damaged in proc.stdout
    assert "copied 1 entry " in proc.stdout and "1 failed" in proc.stdout
    # The damaged entry left nothing behind in the destination.
    assert not (tmp_path / "dest" / bad_key).exists() or not any((tmp_path / "dest" / bad_key).iterdir())
    good = [k for k in entry_keys(tmp_path / "dest") if (tmp_path / "dest" / k / "manifest.json").exists()]
    assert good and bad_key not in good


def test_a_listed_entry_that_is_gone_fails_export(shell, tmp_path):
    import shutil

    shell.run_cell("%%lazycache\nz = 3", cell_id="z")
    folder = tmp_path / "__lazycache__"
    (key,) = export.listed_keys(folder)
    shutil.rmtree(folder / key)
    proc = cli("export", folder, tmp_path / "dest")
    assert proc.returncode == 1
    assert f"export: {key[:10]} is listed but not in the cache folder" in proc.stdout


def test_export_without_a_list_says_what_to_do(tmp_path):
    (tmp_path / "c").mkdir()
    proc = cli("export", tmp_path / "c", tmp_path / "d")
    assert proc.returncode == 1
    assert "has no export list" in proc.stdout and "--all" in proc.stdout
    proc = cli("export", tmp_path / "missing", tmp_path / "d")
    assert proc.returncode == 2 and "no cache folder" in proc.stderr


def test_export_progress_bar_appears_when_copying_takes_long(tmp_path, monkeypatch, capsys):
    store = FileStore(tmp_path / "c")
    ns = {}
    p = core.plan.plan("big1 = bytes(3_000_000)\nbig2 = bytes(3_000_001)\nbig3 = bytes(3_000_002)", ns)
    exec(p.source, ns)
    core.save.save(store, p, ns, core.run.Outcome([], None))
    real_put = FileStore.put

    def slow_put(self, key, data):
        time.sleep(0.6)
        return real_put(self, key, data)

    monkeypatch.setattr(FileStore, "put", slow_put)
    out = export.export(tmp_path / "c", tmp_path / "d", progress=True)
    assert out.ok and out.copied == [p.key]
    err = capsys.readouterr().err
    assert "export:" in err and "MB" in err  # tqdm's bar, in bytes


def test_ipythons_open_wrapper_is_not_part_of_a_key():
    """IPython injects its own ``open`` into user namespaces; a cell calling
    open() must key the same in every IPython (and so in the browser)."""
    from IPython.core.interactiveshell import _modified_open

    src = 'print("x", file=open("/tmp/x.txt", "a"))\ny = 1'
    assert core.plan.plan(src, {"open": _modified_open}).key == core.plan.plan(src, {}).key
    # the user's own open is data
    assert core.plan.plan(src, {"open": lambda *a: None}).key != core.plan.plan(src, {}).key


@pytest.mark.slow
def test_sessions_without_a_notebook_name_share_one_list(tmp_path, monkeypatch):
    """nbconvert / papermill / myst-nb run notebooks through nbclient, which
    tells the kernel no notebook name: two runs leave one list, not two."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    cells = ["%load_ext ipy_lazycache", "%%lazycache\nx = sum(range(10))\nprint(x)"]
    for _ in range(2):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        client = NotebookClient(nb, timeout=60, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
        assert "45" in nb.cells[1].outputs[0]["text"]
    lists = sorted(p.name for p in (tmp_path / "__lazycache__" / "exports").iterdir())
    assert lists == ["sessions.json"]
    assert len(export.listed_keys(tmp_path / "__lazycache__")) == 1


# ----------------------------------------------------------------------------
# Issue 22: list names are injective and bounded; no list is read, written or
# removed through a link; an absurd list is one line.


def test_notebooks_whose_names_differ_only_in_non_ascii_letters_get_two_lists(shell, tmp_path):
    """On 2d4d966 both names mapped to ``__.ipynb.json``: one list, and the
    other notebook's entries were not shipped."""
    keys = {}
    for name, value in (("分析.ipynb", 1), ("解析.ipynb", 2)):
        shell.user_ns["__session__"] = str(tmp_path / name)
        assert shell.run_cell(f"%%lazycache\nv = {value}", cell_id="same-id").success
        keys[name] = export.listed_keys(tmp_path / "__lazycache__", tmp_path / name)
    lists = sorted(p.name for p in (tmp_path / "__lazycache__" / "exports").iterdir())
    assert len(lists) == 2, lists
    assert len(keys["分析.ipynb"]) == len(keys["解析.ipynb"]) == 1 and keys["分析.ipynb"] != keys["解析.ipynb"]


def test_a_long_notebook_name_gets_a_list_of_a_bounded_name(shell, tmp_path):
    """A 249-character name plus ``.json`` is past a file system's 255 bytes:
    on 2d4d966 the notebook got no list at all."""
    name = "n" * 243 + ".ipynb"
    shell.user_ns["__session__"] = str(tmp_path / name)
    assert shell.run_cell("%%lazycache\nlong = 1", cell_id="c").success
    (lst,) = (tmp_path / "__lazycache__" / "exports").iterdir()
    assert len(lst.name.encode()) <= 100 and lst.name.startswith("nnnn")
    assert len(export.listed_keys(tmp_path / "__lazycache__", name)) == 1


def test_an_old_style_list_is_still_read_for_its_own_notebook_only(tmp_path):
    exports = tmp_path / "c" / "exports"
    exports.mkdir(parents=True)
    old = {"format": 1, "notebook": str(tmp_path / "analysis.ipynb"), "cells": {"id:a": {"key": "a" * 32}}}
    (exports / "analysis.ipynb.json").write_text(json.dumps(old))
    assert export.listed_keys(tmp_path / "c", "analysis.ipynb") == {"a" * 32}
    # Another notebook whose old name was the same file gets nothing from it.
    old["notebook"] = "解析.ipynb"
    (exports / "__.ipynb.json").write_text(json.dumps(old))
    assert export.listed_keys(tmp_path / "c", "分析.ipynb") == set()
    # A full run forgets the old list too.
    export.reset_list(tmp_path / "c", "analysis.ipynb")
    assert not (exports / "analysis.ipynb.json").exists() and (exports / "__.ipynb.json").exists()


def test_lists_are_never_written_or_removed_through_a_linked_exports_folder(run, shell, tmp_path):
    """On 2d4d966 ``reset_list`` (a build's execution) removed
    ``<linked folder>/<list>`` through the link."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / export.list_name("nb.ipynb")
    victim.write_text("precious")
    (elsewhere / "nb.ipynb.json").write_text("precious")  # the old name, too
    (tmp_path / "__lazycache__").mkdir()
    (tmp_path / "__lazycache__" / "exports").symlink_to(elsewhere)
    with pytest.raises(OSError, match="symbolic link"):
        export.reset_list(tmp_path / "__lazycache__", tmp_path / "nb.ipynb")
    shell.user_ns["__session__"] = str(tmp_path / "nb.ipynb")
    r = run("%%lazycache\nw = 1", cell_id="c")
    assert r.success and "could not update the export list" in r.out
    assert sorted(p.name for p in elsewhere.iterdir()) == sorted([victim.name, "nb.ipynb.json"])
    assert victim.read_text() == (elsewhere / "nb.ipynb.json").read_text() == "precious"
    assert export.lists_in(tmp_path / "__lazycache__") == {}


def test_a_deeply_nested_list_is_one_line_not_a_recursion_error(shell, tmp_path):
    shell.run_cell("%%lazycache\nq = 1", cell_id="q")
    folder = tmp_path / "__lazycache__"
    (folder / "exports" / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    proc = cli("export", folder, tmp_path / "dest", "--no-progress")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert "export: exports/deep.json is not an export list (nested too deeply); ignored" in proc.stdout
    assert "copied 1 entry" in proc.stdout  # the readable list still ships
    (folder / "exports" / "deep.json").write_text("{" * 100_000)
    proc = cli("export", folder, tmp_path / "dest2", "--no-progress")
    assert "Traceback" not in proc.stderr and proc.stdout.count("deep.json") == 1


def test_an_entry_whose_cell_sets_environment_variables_is_never_exported(shell, tmp_path, runs):
    """Issue 22: a cell that loads a ``.env`` into ``os.environ`` keeps the
    values in its manifest (to set them again on a hit); on 2d4d966 export
    and the addon published them."""
    secret = "sk-live-0123456789abcdef"
    (tmp_path / ".env").write_text(f"API_TOKEN={secret}\nREGION=eu\n")
    load = ("%%lazycache\nimport os\nfor line in open('.env'):\n    k, v = line.strip().split('=', 1)\n"
            "    os.environ[k] = v\nloaded = True\nopen('runs.txt', 'a').write('run\\n')")
    assert shell.run_cell(load, cell_id="env").success
    assert shell.run_cell("%%lazycache\nplain = 41 + 1", cell_id="plain").success
    folder = tmp_path / "__lazycache__"
    proc = cli("export", folder, tmp_path / "site", "--no-progress")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if "sets environment" in x]
    assert "environment variables API_TOKEN, REGION; not copied" in line
    assert "copied 1 entry" in proc.stdout and "1 failed" in proc.stdout
    shipped = [p.read_bytes() for p in (tmp_path / "site").rglob("*") if p.is_file()]
    assert shipped and not any(secret.encode() in data for data in shipped)
    # The local hit still sets them (the folder is as private as the .env). Both go, so the session's
    # environment is again what it was when the entry was made (what a session changed is part of every key).
    del os.environ["API_TOKEN"], os.environ["REGION"]
    assert shell.run_cell(load, cell_id="env").success and os.environ.pop("API_TOKEN") == secret
    assert os.environ.pop("REGION") == "eu"
    assert runs() == 1, "the second run was a hit"

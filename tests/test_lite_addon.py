"""The ``jupyter lite build`` addon, through a real ``jupyter lite build``."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ipy_lazycache import export
from tests._ci import unavailable
from tests._lite import write_notebook

pytestmark = pytest.mark.slow
JUPYTER = Path(sys.executable).with_name("jupyter")
KERNEL = "@jupyterlite/pyodide-kernel-extension:kernel"

if not JUPYTER.exists():
    unavailable("jupyterlite is not installed", module_level=True)  # fails under CI=true
try:
    import jupyterlite_core  # noqa: F401
except ImportError:
    unavailable("jupyterlite_core is not installed", module_level=True)


def lite_build(lite, contents, out, *extra, command="build"):
    lite.mkdir(parents=True, exist_ok=True)
    (lite / ".jupyterlite.doit.db").unlink(missing_ok=True)
    cmd = [str(JUPYTER), "lite", command, "--lite-dir", str(lite), "--contents", str(contents),
           "--output-dir", str(out), "--apps", "notebooks", "--no-sourcemaps", *extra]
    return subprocess.run(cmd, cwd=lite, capture_output=True, text=True)


def entries(folder):
    """The entries in a shipped cache folder (beside them: auto mode's ``codes/`` record)."""
    return {p.name: sorted(f.name for f in p.iterdir()) for p in Path(folder).iterdir() if p.name != "codes"}


CELLS_V1 = ["%load_ext ipy_lazycache",
            "%%lazycache\nx = list(range(10))\nprint('x ready')",
            "%%lazycache\ny = sum(x)\ny"]


def test_build_ships_exactly_the_listed_entries_and_writes_settings(tmp_path):
    contents, lite, out = tmp_path / "contents", tmp_path / "lite", tmp_path / "_output"
    nb = write_notebook(contents / "sub" / "nb.ipynb", CELLS_V1)
    # First build executes it (the execute option) and ships both entries.
    proc = lite_build(lite, contents, out, "--LazyCacheAddon.execute=True")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cache = contents / "sub" / "__lazycache__"
    first = export.listed_keys(cache, nb)
    assert len(first) == 2 and set(entries(out / "files" / "sub" / "__lazycache__")) == first

    # The user edits the last cell and builds again (executing): the old entry
    # stays in the folder but is no longer used, so it is not shipped.
    write_notebook(nb, CELLS_V1[:2] + ["%%lazycache\ny = sum(x) * 2\ny"])
    (cache / "notes.txt").write_text("not an entry")  # other things in the folder
    other = write_notebook(contents / "other" / "plain.ipynb", ["1 + 1"])
    stray_key = sorted(first)[0]  # a cache folder with an entry but no export list
    shutil.copytree(cache / stray_key, other.parent / "__lazycache__" / stray_key)
    # Configuration from jupyter_lite_config.json, too.
    (lite / "jupyter_lite_config.json").write_text(json.dumps(
        {"LazyCacheAddon": {"execute": True, "cache_url": "https://cache.example.org/files/"}}))
    proc = lite_build(lite, contents, out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "executed nb.ipynb" in proc.stdout
    now = export.listed_keys(cache, nb)
    assert len(export.all_keys(cache)) == 3 and len(now) == 2 and len(now & first) == 1

    shipped = entries(out / "files" / "sub" / "__lazycache__")
    assert set(shipped) == now
    # Which code ran slowly goes along (empty files): the site's auto mode keys those cells in full.
    codes = out / "files" / "sub" / "__lazycache__" / "codes"
    assert {p.name for p in codes.iterdir()} == {p.name for p in (cache / "codes").iterdir()}
    assert all(p.stat().st_size == 0 for p in codes.iterdir())
    for key, files in shipped.items():
        m = json.loads((cache / key / "manifest.json").read_text())
        assert files == sorted([*m["blobs"], "manifest.json"])  # an entry, and only its files
    assert not (out / "files" / "other" / "__lazycache__").exists()
    assert "has entries but no export list" in proc.stdout + proc.stderr
    assert (out / "files" / "other" / "plain.ipynb").exists()

    # The kernel reads the entries over HTTP; the file browser does not show the cache folder.
    listing = json.loads((out / "api" / "contents" / "sub" / "all.json").read_text())
    assert {c["name"] for c in listing["content"]} == {"nb.ipynb"}

    # Kernel settings: the cache URL, and nothing that forces a local Pyodide.
    settings = json.loads((out / "jupyter-lite.json").read_text())["jupyter-config-data"]["litePluginSettings"][KERNEL]
    assert settings["loadPyodideOptions"]["env"] == {"IPY_LAZYCACHE_URL": "https://cache.example.org/files/"}
    assert "pyodideUrl" not in settings
    # Pyodide loads the shipped wheel and its requirements as it boots: no install cell.
    (whl,) = (out / "pypi").glob("ipy_lazycache-*-py3-none-any.whl")
    assert settings["loadPyodideOptions"]["packages"] == [
        "cloudpickle", "xxhash", "pyodide-http", f"../../../../pypi/{whl.name}"]

    # The wheel is in the piplite index, with the requirements Pyodide's lock resolves.
    (whl,) = (out / "pypi").glob("ipy_lazycache-*-py3-none-any.whl")
    index = json.loads((out / "pypi" / "all.json").read_text())
    assert "ipy-lazycache" in index or "ipy_lazycache" in index
    with zipfile.ZipFile(whl) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "ipy_lazycache/magics.py" in names and "ipy_lazycache/stores/http.py" in names
    # What `%pip install ipy_lazycache` pulls in: the requirements, no extras.
    requires = sorted(line.split(":", 1)[1].split(">")[0].strip() for line in meta.splitlines()
                      if line.startswith("Requires-Dist:"))
    assert requires == ["cloudpickle", "ipython", "pyodide-http", "xxhash"], meta
    assert not any("__pycache__" in n for n in names)

    # --lazycache-all ships every entry of the folder instead (still only entries).
    proc = lite_build(lite, contents, out, "--lazycache-all")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert set(entries(out / "files" / "sub" / "__lazycache__")) == export.all_keys(cache)
    assert set(entries(out / "files" / "other" / "__lazycache__")) == {stray_key}


def test_a_failing_cell_fails_the_build_with_its_error(tmp_path):
    contents, lite, out = tmp_path / "contents", tmp_path / "lite", tmp_path / "_output"
    write_notebook(contents / "broken.ipynb", ["%load_ext ipy_lazycache", "%%lazycache\nz = 1 / 0"])
    proc = lite_build(lite, contents, out, "--lazycache-execute")
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "broken.ipynb failed while executing" in text
    assert "ZeroDivisionError" in text and "z = 1 / 0" in text


def test_a_tampered_entry_fails_the_build_and_check(tmp_path):
    from jupyterlite_core.manager import LiteManager

    from ipy_lazycache.lite import LazyCacheAddon

    contents, lite, out = tmp_path / "contents", tmp_path / "lite", tmp_path / "_output"
    write_notebook(contents / "nb.ipynb", CELLS_V1)
    proc = lite_build(lite, contents, out, "--lazycache-execute")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    shipped = out / "files" / "__lazycache__"

    # check: every shipped digest is verified (the addon's check action).
    addon = LazyCacheAddon(LiteManager(lite_dir=lite, output_dir=out, contents=[contents]))
    assert addon.verify_folder(shipped) is True
    blob = next(p for p in shipped.glob("*/*.pkl"))
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
    failed = addon.verify_folder(shipped)
    assert failed is not True and f"{blob.parent.name[:10]}: blob {blob.name} does not match its digest" in str(failed)

    # The same damage in the notebook's own cache fails the build (no silent shipping).
    src_blob = contents / "__lazycache__" / blob.parent.name / blob.name
    src_blob.write_bytes(src_blob.read_bytes()[:-1] + b"\x00")
    proc = lite_build(lite, contents, out)
    assert proc.returncode != 0
    damaged = f"{blob.parent.name[:10]} is damaged (blob {blob.name} does not match its digest)"
    assert damaged in proc.stdout + proc.stderr
    proc = lite_build(lite, contents, out, command="check")
    assert proc.returncode != 0


def outputs_text(nb_path):
    nb = json.loads(Path(nb_path).read_text())
    return [
        "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in c["outputs"])
        for c in nb["cells"] if c["cell_type"] == "code"
    ]


def test_an_executed_notebook_ships_with_the_outputs_of_its_native_run(tmp_path):
    contents, lite, out = tmp_path / "contents", tmp_path / "lite", tmp_path / "_output"
    nb = write_notebook(contents / "sub" / "nb.ipynb", CELLS_V1)
    written = nb.read_bytes()
    proc = lite_build(lite, contents, out, "--lazycache-execute")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "executing nb.ipynb natively" in proc.stdout  # the build says what it is doing
    shipped = outputs_text(out / "files" / "sub" / "nb.ipynb")
    # What a plain run shows: the cache's own lines are in the build log only.
    assert shipped[1] == "x ready\n" and "lazycache: stored" in proc.stdout + proc.stderr, shipped
    streams = [o for c in json.loads((out / "files" / "sub" / "nb.ipynb").read_text())["cells"]
               for o in c.get("outputs", []) if o["output_type"] == "stream"]
    assert streams and all(isinstance(o["text"], str) for o in streams)  # a list shows commas in JupyterLite
    cells = json.loads((out / "files" / "sub" / "nb.ipynb").read_text())["cells"]
    results = [o["data"]["text/plain"] for o in cells[2]["outputs"] if o["output_type"] == "execute_result"]
    assert ["".join(r) for r in results] == ["45"]
    assert nb.read_bytes() == written  # the user's notebook is not touched
    # The contents index agrees with the file it lists.
    listing = json.loads((out / "api" / "contents" / "sub" / "all.json").read_text())
    (entry,) = [c for c in listing["content"] if c["name"] == "nb.ipynb"]
    assert entry["size"] == (out / "files" / "sub" / "nb.ipynb").stat().st_size

    # The option ships it as written (the cache is still filled and shipped).
    proc = lite_build(lite, contents, out, "--lazycache-execute", "--lazycache-as-written")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "files" / "sub" / "nb.ipynb").read_bytes() == written
    assert len(entries(out / "files" / "sub" / "__lazycache__")) == 2


@pytest.mark.parametrize("cache_dir", ["../../victim_data", "/"])
def test_a_cache_dir_outside_the_notebooks_folder_is_one_line_and_deletes_nothing(tmp_path, cache_dir):
    """Issue 22: on 2d4d966 ``cache_dir=../../victim_data`` exited 0 after
    removing ``victim_data`` beside the lite folder (the copy step cleared
    ``files/<dir>/<cache_dir>`` in the output), and ``/`` was a traceback."""
    contents, lite, out = tmp_path / "contents", tmp_path / "lite", tmp_path / "site" / "_output"
    write_notebook(contents / "nb.ipynb", ["1 + 1"])
    victim = tmp_path / "victim_data"
    victim.mkdir()
    (victim / "data.csv").write_text("precious")
    proc = lite_build(lite, contents, out, f"--LazyCacheAddon.cache_dir={cache_dir}")
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in text, text[-3000:]
    lines = [line for line in text.splitlines() if "LazyCacheAddon.cache_dir must name a folder" in line]
    assert len(lines) == 1 and repr(cache_dir) in lines[0], text[-3000:]
    assert (victim / "data.csv").read_text() == "precious"


def test_execution_never_deletes_through_a_linked_exports_folder(tmp_path):
    """Issue 22: on 2d4d966 executing a notebook whose ``__lazycache__/exports``
    is a link removed ``<that folder>/nb.ipynb.json``."""
    contents, lite, out = tmp_path / "contents", tmp_path / "lite", tmp_path / "_output"
    write_notebook(contents / "nb.ipynb", CELLS_V1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("nb.ipynb.json", export.list_name("nb.ipynb")):
        (elsewhere / name).write_text("precious")
    (contents / "__lazycache__").mkdir()
    (contents / "__lazycache__" / "exports").symlink_to(elsewhere)
    proc = lite_build(lite, contents, out, "--lazycache-execute")
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "exports is a symbolic link" in text, text[-3000:]
    assert sorted(p.read_text() for p in elsewhere.iterdir()) == ["precious", "precious"]

"""Files a cached run leaves in its working folder are part of what a hit
does (DESIGN §11: an effect is replayed exactly or the cell is not stored).

Each test runs real IPython sessions in new processes (``tests/_fresh.py``):
a run stores, the folder changes between sessions (a fresh clone, a
``git checkout``, a teammate's machine), and the next session's hit must
leave the files a run would have left, without running the body.
"""

import json
import os

import pytest

from tests._fresh import RUN, runs_in, session

#: The writers a notebook uses, each writing ``name`` in the working folder.
WRITERS = {
    "to_csv": ("out.csv", "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']}).to_csv('out.csv')\n"),
    "np_save": ("a.npy", "import numpy as np\nnp.save('a.npy', np.arange(6).reshape(2, 3))\n"),
    "open_write": ("report.txt", "open('report.txt', 'w').write('total: 42\\n')\n"),
    "path_write_text": ("sub/p.txt", "import pathlib\npathlib.Path('sub').mkdir(exist_ok=True)\n"
                                     "pathlib.Path('sub/p.txt').write_text('from pathlib')\n"),
    "writefile_magic": ("w.txt", None),  # %%lazycache above %%writefile (the probes' case)
}


def cell_for(writer):
    name, body = WRITERS[writer]
    if body is None:
        return "%%lazycache\n%%writefile w.txt\nfresh content\n", name
    return "%%lazycache\n" + RUN + body + "done = True\n", name


def read(name):
    return f"open({name!r}, 'rb').read()"


def test_every_writer_is_put_back_after_the_file_is_deleted_or_changed(tmp_path):
    cells = [cell_for(w)[0] for w in WRITERS if w != "writefile_magic"]
    names = [WRITERS[w][0] for w in WRITERS if w != "writefile_magic"]
    probes = [read(n) for n in names]
    plain = tmp_path / "plain"
    plain.mkdir()
    expected = session(plain, cells, probes, magic=False)["values"]
    work = tmp_path / "work"
    work.mkdir()
    session(work, cells, probes)
    assert runs_in(work) == len(cells)
    for n in names:  # deleted (a fresh clone)
        os.remove(work / n)
    second = session(work, cells, probes)
    assert runs_in(work) == len(cells), "a hit must not run the body"
    assert second["values"] == expected
    assert all("restored" in c["out"] for c in second["cells"])
    for n in names:  # changed (a checkout, a teammate's edit)
        (work / n).write_bytes(b"stale")
    third = session(work, cells, probes)
    assert runs_in(work) == len(cells) and third["values"] == expected


@pytest.mark.slow
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_one_writer_per_cell_then_a_plain_cell_reads_it(tmp_path, writer):
    cell, name = cell_for(writer)
    reader = f"got = {read(name)}"
    plain = tmp_path / "plain"
    plain.mkdir()
    expected = session(plain, [cell, reader], ["got"], magic=False)["values"]
    work = tmp_path / "work"
    work.mkdir()
    first = session(work, [cell, reader], ["got"])
    # %%writefile under %%lazycache runs uncached (issue 21, item 5): it writes every time
    word = "running it uncached" if writer == "writefile_magic" else "stored"
    assert first["values"] == expected and word in first["cells"][0]["out"]
    (work / name).write_bytes(b"stale")
    second = session(work, [cell, reader], ["got"])
    assert second["values"] == expected
    if writer != "writefile_magic":
        assert "restored" in second["cells"][0]["out"], second["cells"][0]
        assert runs_in(work) == 1


def test_a_removal_and_a_rename_are_replayed(tmp_path):
    cell = ("%%lazycache\n" + RUN + "import os\nif os.path.exists('old.txt'):\n    os.remove('old.txt')\n"
            "open('tmp.txt', 'w').write('draft')\nos.replace('tmp.txt', 'final.txt')\nok = 1\n")
    names = ["os.path.exists('old.txt')", "os.path.exists('tmp.txt')", read("final.txt")]
    (tmp_path / "old.txt").write_text("old")
    first = session(tmp_path, ["import os", cell], names)
    (tmp_path / "old.txt").write_text("old")  # the checkout brings it back
    (tmp_path / "tmp.txt").write_text("left over")
    os.remove(tmp_path / "final.txt")
    second = session(tmp_path, ["import os", cell], names)
    assert runs_in(tmp_path) == 1
    assert second["values"] == first["values"] == {names[0]: "False", names[1]: "False", names[2]: "b'draft'"}


def test_auto_mode_puts_the_files_back_too(tmp_path):
    cells = ["%lazycache auto on --min-time 0.1",
             RUN + "import time\ntime.sleep(0.3)\nopen('auto.txt', 'w').write('slow result')\nx = 1\n"]
    session(tmp_path, cells, ["x"])
    os.remove(tmp_path / "auto.txt")
    second = session(tmp_path, cells, [read("auto.txt")])
    assert runs_in(tmp_path) == 1, "the slow cell hits"
    assert second["values"] == {read("auto.txt"): "b'slow result'"}


def test_a_file_outside_the_folder_is_not_put_back_and_the_cell_still_hits(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    target = str(outside / "x.txt")
    cell = f"%%lazycache\n{RUN}open({target!r}, 'w').write('out')\nopen('in.txt', 'w').write('in')\ny = 2\n"
    session(work, [cell], ["y"])
    os.remove(target)
    os.remove(work / "in.txt")
    second = session(work, [cell], ["y", read("in.txt")])
    assert runs_in(work) == 1 and second["values"][read("in.txt")] == "b'in'"
    assert not os.path.exists(target), "a path outside the working folder is the machine's: not replayed"


def _entry(folder):
    cache = folder / "__lazycache__"
    (manifest,) = [p for p in cache.glob("*/manifest.json")]
    return manifest


@pytest.mark.parametrize("path", ["../evil.txt", "ABS", "sub/../../evil.txt"])
def test_an_entry_naming_a_path_outside_the_folder_is_a_miss_and_writes_nothing(tmp_path, path):
    work = tmp_path / "work"
    work.mkdir()
    cell = "%%lazycache\n" + RUN + "open('out.txt', 'w').write('mine')\nz = 3\n"
    session(work, [cell], ["z"])
    manifest = _entry(work)
    m = json.loads(manifest.read_text())
    evil = str(tmp_path / "evil.txt") if path == "ABS" else path
    m["files"] = {evil: m["files"].pop("out.txt")}
    manifest.write_text(json.dumps(m))
    os.remove(work / "out.txt")
    second = session(work, [cell], ["z"])
    out = second["cells"][0]["out"]
    assert "is damaged (file path" in out and "not inside the working folder" in out, out
    assert len([line for line in out.splitlines() if "damaged" in line]) == 1
    assert runs_in(work) == 2, "a refused entry is a miss: the cell runs"
    assert not (tmp_path / "evil.txt").exists()
    assert (work / "out.txt").read_text() == "mine"


def test_a_path_through_a_link_out_of_the_folder_is_a_miss(tmp_path):
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    cell = "%%lazycache\n" + RUN + "import os\nos.makedirs('sub', exist_ok=True)\nopen('sub/o.txt', 'w').write('s')\n"
    session(work, [cell], [])
    (work / "sub" / "o.txt").unlink()
    (work / "sub").rmdir()
    (work / "sub").symlink_to(outside)  # a hostile checkout: sub now leads outside
    second = session(work, [cell], [])
    assert "leads outside the working folder" in second["cells"][0]["out"]
    assert runs_in(work) == 2, "the cell runs (and writes through the link, as a plain run does)"


@pytest.mark.slow  # writes 65 MiB twice
def test_too_many_bytes_or_an_update_in_place_are_not_stored(tmp_path):
    big = "%%lazycache\n" + RUN + "open('big.bin', 'wb').write(b'0' * (65 << 20))\n"
    (tmp_path / "data.bin").write_bytes(b"0123456789")
    in_place = "%%lazycache\n" + RUN + "f = open('data.bin', 'r+b')\nf.seek(2)\nf.write(b'xx')\nf.close()\n"
    first = session(tmp_path, [big, in_place], [])
    assert "not stored: it writes more than 64.0 MiB of files" in first["cells"][0]["out"]
    assert "not stored: it updates the file data.bin in place" in first["cells"][1]["out"]
    session(tmp_path, [big, in_place], [])
    assert runs_in(tmp_path) == 4


def test_a_file_name_the_schema_refuses_is_not_stored_rather_than_damaged_on_every_load(tmp_path):
    cell = "%%lazycache\n" + RUN + "open('a\\\\b.txt', 'w').write('x')\nq = 1\n"
    first = session(tmp_path, [cell], ["q"])
    assert "not stored: it writes 'a\\\\b.txt', a file name a hit cannot write safely" in first["cells"][0]["out"]
    second = session(tmp_path, [cell], ["q"])
    assert "damaged" not in second["cells"][0]["out"] and runs_in(tmp_path) == 2


def test_a_file_written_without_pythons_open_is_not_stored(tmp_path):
    """pyarrow writes Parquet natively and ``!cmd`` is a child process: no
    audit event names the file, the folder's scan sees it changed."""
    parquet = ("%%lazycache\n" + RUN + "import pandas as pd\npd.DataFrame({'a': [1, 2]}).to_parquet('t.parquet')\n"
               "n = 2\n")
    shell = "%%lazycache\n" + RUN + "!echo hello > shell.txt\nm = 1\n"
    first = session(tmp_path, [parquet, shell], ["n"])
    for i, name in enumerate(["t.parquet", "shell.txt"]):
        out = first["cells"][i]["out"]
        assert f"not stored: it changed the file {name} without Python's open" in out, out
    os.remove(tmp_path / "t.parquet")
    second = session(tmp_path, [parquet, shell, "import pandas as pd\nk = len(pd.read_parquet('t.parquet'))"],
                     ["k"])
    assert runs_in(tmp_path) == 4 and second["values"]["k"] == "2"

"""Views of arrays across a restart (DESIGN §9: relations survive, a hit is a run).

A cached cell makes a view of an array (``rel = orig[::2]``), and a later
cell, cached or not, changes the array in place (``orig += 1``). After a
restart every cached cell hits, and the view must still show what the base
holds, as it does when the notebook simply runs. Each scenario runs in new
processes with real InteractiveShells, both in auto mode (every cell cached,
no magic lines) and with ``%%lazycache`` on the cells, and is compared with
the same cells run without the extension.
"""

import pytest

from tests._fresh import RUN, session

pytest.importorskip("numpy")

pytestmark = pytest.mark.slow  # every test starts several Python processes

AUTO = {"IPY_LAZYCACHE_AUTO": "1", "IPY_LAZYCACHE_AUTO_MIN_TIME": "0"}


def check(tmp_path, mode, cells, names, cached=None):
    """Run ``cells`` (after ``import numpy as np``) plainly once, and with the extension twice (a restart in
    between): both sessions must show what the plain run shows, and the second must run no cached body.
    ``cached``: which cells get ``%%lazycache`` in "magic" mode (default all); returns the second session."""
    cached = range(len(cells)) if cached is None else cached
    plain_dir, work = tmp_path / "plain", tmp_path / "work"
    plain_dir.mkdir()
    work.mkdir()
    expected = session(plain_dir, ["import numpy as np", *cells], names, magic=False)["values"]
    if mode == "auto":
        env, body = AUTO, [RUN + c for c in cells]
    else:
        env, body = None, [("%%lazycache\n" + RUN if i in cached else "") + c for i, c in enumerate(cells)]
    body = ["import numpy as np", *body]
    first = session(work, body, names, env=env)
    assert first["values"] == expected, first
    ran = first["runs"]
    assert ran == (len(cells) if mode == "auto" else len(cached))
    again = session(work, body, names, env=env)
    assert again["runs"] == ran, f"a cached body ran again after the restart: {again}"
    assert all(c["ok"] for c in again["cells"]), again
    assert again["values"] == expected, again
    return again["values"]


@pytest.mark.parametrize("mode", ["auto", "magic"])
def test_a_view_sees_its_base_changed_in_place_by_a_cached_cell(tmp_path, mode):
    """The differential tester's finding (auto mode, seed 7): ``orig9 += 1`` in a cached cell was stored as a
    new binding of ``orig9``, so its hit put a copy in its place and ``rel10`` no longer saw it."""
    cells = ["orig9 = np.arange(8.0) * 1", "rel10 = orig9[::2]", "orig9 += 1"]
    seen = check(tmp_path, mode, cells, ["rel10.tolist()", "np.shares_memory(rel10, orig9)", "rel10.base is orig9"])
    assert seen["rel10.tolist()"] == "[1.0, 3.0, 5.0, 7.0]"
    assert seen["np.shares_memory(rel10, orig9)"] == "True"

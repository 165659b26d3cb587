"""Auto mode (DESIGN §10): every slow cell is cached without a %%lazycache
line; cheap cells always run, so their effects always happen."""

import nbformat
import pytest

from tests.test_kernel import execute, visible  # one notebook runner and output filter for both

SLOW = 'import time\ntime.sleep(0.4)\nopen("slow.txt", "a").write("run\\n")\n'
CHEAP = 'open("cheap.txt", "a").write("run\\n")\n'


def count(path) -> int:
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


@pytest.fixture
def auto(run):
    run("%lazycache auto on --min-time 0.3")
    return run


def test_slow_cells_are_cached_and_cheap_cells_always_run(auto, shell, tmp_path):
    auto("n = 12")
    slow = SLOW + "squares = [i * i for i in range(n)]\nprint('done', len(squares))"
    cheap = CHEAP + "total = sum(squares)"
    first = auto(slow)
    assert "done 12" in first.out and "lazycache: stored squares" in first.out
    auto(cheap)
    shell.user_ns.pop("squares")
    second = auto(slow)
    assert count(tmp_path / "slow.txt") == 1, "a slow cell's hit must not run its body"
    assert "done 12" in second.out and "lazycache: restored squares, time" in second.out
    assert shell.user_ns["squares"][-1] == 121
    third = auto(cheap)
    assert count(tmp_path / "cheap.txt") == 2 and "lazycache" not in third.out
    # An input changed: a miss, recomputed.
    auto("n = 3")
    auto(slow)
    assert count(tmp_path / "slow.txt") == 2 and shell.user_ns["squares"] == [0, 1, 4]


def test_nothing_is_printed_for_cells_that_simply_run(auto):
    r = auto(CHEAP + "x = 1\nprint('hello')")
    assert r.out == "hello\n"


def test_opting_out_and_other_cell_magics(auto, shell, tmp_path):
    auto("# lazycache: off\n" + SLOW + "a = 1")
    auto("# lazycache: off\n" + SLOW + "a = 1")
    assert count(tmp_path / "slow.txt") == 2
    auto("%%lazycache --off\n" + SLOW + "b = 1")
    auto("%%lazycache --off\n" + SLOW + "b = 1")
    assert count(tmp_path / "slow.txt") == 4 and shell.user_ns["b"] == 1
    auto("%%capture out\n" + SLOW + "c = 1")
    auto("%%capture out\n" + SLOW + "c = 1")
    assert count(tmp_path / "slow.txt") == 6


def test_a_slow_cell_whose_defs_cannot_be_stored_always_runs(auto, tmp_path):
    cell = SLOW + "gen = (i for i in range(3))"
    auto(cell)
    r = auto(cell)
    assert count(tmp_path / "slow.txt") == 2 and "lazycache" not in r.out


def test_a_cheap_cell_reading_a_large_array_is_not_hashed_but_a_slow_one_is_cached_next(auto, shell, tmp_path):
    np = pytest.importorskip("numpy")
    shell.user_ns["big"] = np.ones(20_000_000)  # 160 MB: too large to hash for a cell that may be cheap
    cheap = CHEAP + "first = big[0]"
    auto(cheap)
    assert shell.user_ns["first"] == 1.0
    slow = SLOW + "total = float(big.sum())"
    auto(slow)  # first run: only timed (hashing its input before the run could cost more than the cell)
    auto(slow)  # seen slow: keyed and stored
    r = auto(slow)
    assert count(tmp_path / "slow.txt") == 2 and "lazycache: restored time, total" in r.out
    big = shell.user_ns["big"]
    big[0] = 5.0
    auto(slow)
    assert count(tmp_path / "slow.txt") == 3 and shell.user_ns["total"] == 20_000_004.0


def test_auto_mode_from_config_and_environment(run, shell, monkeypatch, tmp_path):
    run("%config LazyCache.auto = True")
    run("%config LazyCache.auto_min_time = 0.3")
    run(SLOW + "v = 1")
    run(SLOW + "v = 1")
    assert count(tmp_path / "slow.txt") == 1
    run("%lazycache auto off")
    run(SLOW + "v = 1")
    assert count(tmp_path / "slow.txt") == 2
    monkeypatch.setenv("IPY_LAZYCACHE_AUTO", "banana")
    r = run("%reload_ext ipy_lazycache")
    assert "IPY_LAZYCACHE_AUTO='banana'" in r.out


def test_stats_show_what_auto_mode_saved(auto, shell):
    auto(SLOW + "w = 2")
    auto(SLOW + "w = 2")
    r = auto("%lazycache stats")
    assert "auto mode on" in r.out and "1 hit" in r.out


@pytest.mark.slow
def test_a_notebook_without_magic_lines_replays_in_a_new_kernel(tmp_path, monkeypatch):
    """Run twice in new kernels with IPY_LAZYCACHE_AUTO=1: the slow cell's
    body runs once, the cheap cells twice, and the outputs are those of a
    plain run."""
    cells = [
        "%load_ext ipy_lazycache",
        "import time\nn = 50",
        "time.sleep(1.2)\nopen('slow.txt', 'a').write('run\\n')\nsquares = [i * i for i in range(n)]\n"
        "print('sum', sum(squares))\nsquares[-1]",
        "open('cheap.txt', 'a').write('run\\n')\nlast = squares[-1] + 1\nlast",
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    plain_path = plain_dir / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells[1:]]), plain_path)

    plain = execute(plain_path)
    monkeypatch.setenv("IPY_LAZYCACHE_AUTO", "1")
    first = execute(path)
    second = execute(path)
    assert count(tmp_path / "slow.txt") == 1 and count(tmp_path / "cheap.txt") == 2
    for i in (2, 3):
        assert visible(second.cells[i]) == visible(first.cells[i]) == visible(plain.cells[i - 1])
    status = "".join(o.get("text", "") for o in second.cells[2].outputs if o["output_type"] == "stream")
    assert "lazycache: restored squares" in status

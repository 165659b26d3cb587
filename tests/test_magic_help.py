"""What the magics say about themselves, and quiet mode: ``%%lazycache
--help`` reads as it is typed and lists every option; ``%lazycache``'s help
and its errors name ``auto``; ``LazyCache.verbose = 0`` prints nothing, so a
docs page is the same on every build; a closed file a ``with`` block leaves
behind is not worth a line."""

import pytest

RUNS = "ran = open('runs.txt', 'a').write('x\\n')\n"


def test_cell_help_shows_the_usage_as_typed_and_every_option(run, runs):
    out = run("%%lazycache --help\n" + RUNS + "x = 1").out
    assert out.startswith("usage: %%lazycache [--force]"), out
    assert "::" not in out and "\n  %lazycache" not in out
    for option in ("--force", "--dir", "--deps", "--files", "--quiet", "--store", "--store-readonly", "--off",
                   "-h, --help"):
        assert f"\n  {option} " in out, (option, out)
    assert runs() == 0


@pytest.mark.parametrize("line", ["--help", "bogus"])
def test_the_line_magic_names_auto(run, line):
    r = run(f"%lazycache {line}")
    said = r.out + (str(r.error_in_exec) if r.error_in_exec else "")
    assert "auto" in said and "stats" in said, said


CELL = ("%%lazycache\nwith open('data.txt') as f:\n    text = f.read()\n"
        "import threading\nlock = threading.Lock()\n" + RUNS)


def again(run, shell):
    """The cell as a new kernel runs it: none of its names bound (a stand-in
    never replaces a live value; such a hit runs the cell instead)."""
    for name in ("f", "text", "lock", "threading"):
        shell.user_ns.pop(name, None)
    return run(CELL).out


def test_quiet_means_quiet_from_the_first_run_on(run, runs, tmp_path, shell):
    (tmp_path / "data.txt").write_text("hello")
    run("%config LazyCache.verbose = 0")
    outputs = [run(CELL).out, again(run, shell)]
    assert outputs == ["", ""] and runs() == 1  # stored, then restored: nothing said either time


def test_a_closed_file_is_not_worth_a_line(run, runs, tmp_path, shell):
    (tmp_path / "data.txt").write_text("hello")
    first, second = run(CELL).out, again(run, shell)
    assert runs() == 1 and shell.user_ns["text"] == "hello"
    # The lock is named (a hit will not give it back); the closed file is not.
    assert "lock could not be stored" in first and "stored ran, text, threading as" in first, first
    assert " f " not in first.replace("f.read", "") and "f could not" not in first, first
    assert "not restored by %%lazycache: lock" in second and "%%lazycache: f " not in second, second


def test_a_cell_run_without_post_run_cell_does_not_stop_caching(run, runs, shell):
    """JupyterLite's kernel runs a cell with top-level await (``%pip install``
    becomes ``await piplite.install(...)``) through ``run_cell_async``, which
    sends ``pre_run_cell`` but never ``post_run_cell``: later cells must not
    count as nested (auto mode skipped every one of them)."""
    from IPython.core.interactiveshell import ExecutionInfo

    # What such a cell sends (this IPython's run_cell_async may send both; that kernel's does not).
    info = ExecutionInfo("await piplite.install('x')", store_history=True, silent=False, shell_futures=True,
                         cell_id=None)
    shell.events.trigger("pre_execute")
    shell.events.trigger("pre_run_cell", info)
    run("%lazycache auto on --min-time 0")
    for _ in range(2):
        shell.user_ns.pop("y", None)
        run(RUNS + "y = 41 + 1", store_history=True)  # as a notebook's front end runs cells
    assert shell.user_ns["y"] == 42 and runs() == 1  # auto mode stored it, and the second run restored

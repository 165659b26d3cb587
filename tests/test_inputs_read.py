"""Inputs read during a run are keyed by what the run read (issue 20, DESIGN §11).

``--files`` paths and ``%run`` scripts are hashed before the run (the key)
and again after it: a file that changed while the cell ran (the cell wrote
it, or another process did) may have been read in either state, so the run
is stored under neither; one line says so and the next run runs again.
"""

from tests._fresh import RUN

SELF_EDIT = "%%lazycache --files data.txt\n" + RUN + "v = open('data.txt').read()\nopen('data.txt', 'w').write(v + '!')"


def test_a_files_input_changed_by_the_run_is_not_stored(run, runs):
    assert run("open('data.txt', 'w').write('A')").success
    first = run(SELF_EDIT)
    assert first.success and runs() == 1
    assert "not stored: data.txt changed while the cell ran." in first.out
    assert run("open('data.txt', 'w').write('A')").success  # the keyed content again
    again = run(SELF_EDIT)
    assert again.success and runs() == 2, "a hit would skip the write a plain run does"
    assert open("data.txt").read() == "A!"


def test_a_files_input_left_alone_is_stored_and_hits(run, runs):
    assert run("open('data.txt', 'w').write('A')").success
    cell = "%%lazycache --files data.txt\n" + RUN + "v = open('data.txt').read()"
    assert run(cell).success and run(cell).success
    assert runs() == 1 and run.shell.user_ns["v"] == "A"


def test_a_run_script_changed_by_the_run_is_not_stored(run, runs):
    script = "n = len(open('step.py').read())\nopen('step.py', 'a').write('# ran\\n')\n"
    cell = "%%lazycache\n" + RUN + "%run step.py"
    assert run(f"open('step.py', 'w').write({script!r})").success
    first = run(cell)
    assert first.success and runs() == 1
    assert "not stored: the script of %run step.py changed while the cell ran." in first.out
    assert run(f"open('step.py', 'w').write({script!r})").success
    assert run(cell).success and runs() == 2
    assert open("step.py").read().endswith("# ran\n")

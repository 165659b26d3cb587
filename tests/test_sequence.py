"""The run sequence end to end on a plain dict, with no kernel: the steps the
IPython events call, driven by :func:`ipy_lazycache.core.sequence.run` with
the shell's functions given as arguments."""

import ast
import os
import subprocess
import sys

import pytest

from ipy_lazycache.core.sequence import Sequence, Shell, run
from ipy_lazycache.stores.memory import MemoryStore

CELL = "import math\nroots = [math.sqrt(x) for x in data]\ntotal = sum(roots)\nprint('total', total)\ntotal * 2\n"


class Front(Shell):
    """A shell with no front end: what it was asked to show, and one
    recorded output per run, as a kernel's capture would record a print."""

    def __init__(self):
        self.shown, self.said = [], []

    def show(self, outputs):
        self.shown.extend(outputs)

    def record(self):
        recording = super().record()
        recording.events.append({"output_type": "stream", "name": "stdout", "text": "total ...\n"})
        return recording

    def say(self, text):
        self.said.append(text)


def _body(ns, runs):
    """Run the cell in ``ns`` as a shell would: the last expression is the value."""

    def run_body():
        runs.append(1)
        tree = ast.parse(CELL)
        last = tree.body.pop()
        exec(compile(tree, "<cell>", "exec"), ns)
        return eval(compile(ast.Expression(last.value), "<cell>", "eval"), ns)

    return run_body


def test_a_miss_runs_and_stores_and_a_hit_restores_without_running():
    store, runs = MemoryStore(), []

    first_ns = {"data": [1.0, 4.0, 9.0]}
    first = Sequence(Front())
    value = run(first, CELL, first_ns, _body(first_ns, runs), store)
    assert value == 12.0 and runs == [1]
    assert first.stats["misses"] == 1 and any("stored" in line for line in first.shell.said)

    # Another session (a new sequence, memo and namespace) with the same inputs: a hit.
    front = Front()
    ns = {"data": [1.0, 4.0, 9.0]}
    value = run(Sequence(front), CELL, ns, _body(ns, runs), store)
    assert runs == [1], "the body ran again: not a hit"
    assert value == 12.0
    assert ns["roots"] == [1.0, 2.0, 3.0] and ns["total"] == 6.0 and ns["math"].sqrt(16) == 4.0
    assert front.shown == [{"output_type": "stream", "name": "stdout", "text": "total ...\n"}]
    assert any(line.startswith("lazycache: restored") for line in front.said)

    # Changed input: a miss, the body runs.
    ns = {"data": [16.0]}
    assert run(Sequence(Front()), CELL, ns, _body(ns, runs), store) == 8.0
    assert runs == [1, 1] and ns["total"] == 4.0


def test_a_failed_run_is_not_stored_and_force_runs_again():
    store, runs = MemoryStore(), []
    ns = {"data": "not numbers"}
    sequence = Sequence(Front())
    with pytest.raises(TypeError):
        run(sequence, CELL, ns, _body(ns, runs), store)
    assert runs == [1] and list(store.keys()) == []

    ns = {"data": [4.0]}
    run(sequence, CELL, ns, _body(ns, runs), store)
    run(sequence, CELL, ns, _body(ns, runs), store, force=True)
    assert runs == [1, 1, 1]
    run(sequence, CELL, ns, _body(ns, runs), store)
    assert runs == [1, 1, 1] and sequence.stats["hits"] == 1


def test_the_sequence_and_auto_policy_import_no_ipython():
    code = ("import sys, ipy_lazycache.core.sequence, ipy_lazycache.auto; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('IPython', 'traitlets')))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""The cell badge (issue 24) in a real JupyterLab 4 and Notebook 7, in
headless Chromium: run a cached cell, its badge says "stored"; restart the
kernel and run again, "restored (saved ...)"; change what it reads, "would
miss", run it, "stored". Clicking the badge shows why, and "Run anyway"
runs the body again with --force. The saved notebook holds none of it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests import _jupyter_server as js
from tests._ci import unavailable
from tests._jupyter_server import TOKEN, jupyter_server, labextension_installed, wait_badge
from tests._lite import write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CACHED = ("%%lazycache\nimport time\nopen('runs.txt', 'a').write('run\\n')\ntime.sleep(1.2)\n"
          "total = sum(range(n))\nprint('total', total)")
SQUARES = "%%lazycache\nimport time\ntime.sleep(0.8)\nsquares = [i * i for i in range(3000)]\nprint(len(squares))"
#: Cell 2 reads n; cell 3 reads nothing that changes; cell 5 reads a generator, which cannot be hashed.
CELLS = ["%load_ext ipy_lazycache", "n = 5", CACHED, SQUARES, "numbers = (i for i in range(3))",
         "%%lazycache\nfirst = next(numbers)\nfirst"]
#: Set to a path (docs/badges.png) to keep a screenshot of the badges.
SCREENSHOT = os.environ.get("IPY_LAZYCACHE_SCREENSHOT")


@pytest.fixture
def page(lite_browser):
    reason = labextension_installed()
    if reason:
        unavailable(reason)
    context = lite_browser.new_context(viewport={"width": 900, "height": 800})
    page = context.new_page()
    page.console = []
    page.on("console", lambda m: page.console.append(f"{m.type}: {m.text}"))
    page.set_default_timeout(90_000)
    yield page
    context.close()


def runs(folder) -> int:
    path = Path(folder) / "runs.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def open_notebook(page, base, path, app):
    where = "lab/tree" if app == "jupyterlab" else "notebooks"
    page.goto(f"{base}{where}/{path}?token={TOKEN}")
    page.wait_for_function(js.KERNEL_IDLE, timeout=90_000, polling=200)


def stored_restored_would_miss(page, folder):
    """The core path; returns the badge texts seen."""
    page.evaluate(js.RUN_ALL)
    seen = [wait_badge(page, 2, "stored")]
    assert "total 10" in page.evaluate(js.OUTPUT_TEXT, 2) and runs(folder) == 1
    assert page.evaluate(js.BADGE, 1) is None  # a plain cell has no badge

    page.evaluate(js.RESTART)
    page.wait_for_function(js.KERNEL_IDLE, polling=200)
    page.evaluate(js.RUN_ALL)
    seen.append(wait_badge(page, 2, "restored (saved "))
    assert "total 10" in page.evaluate(js.OUTPUT_TEXT, 2) and runs(folder) == 1  # the body did not run
    wait_badge(page, 3, "restored (saved ")
    assert wait_badge(page, 5, "ran uncached: ").startswith("ran uncached: variable 'numbers' cannot be hashed")

    page.evaluate(js.SET_SOURCE, [1, "n = 6"])  # an input of the cached cell changes ...
    page.evaluate(js.RUN_CELL, 1)
    seen.append(wait_badge(page, 2, "would miss"))  # ... so its entry no longer fits, before it runs
    assert page.evaluate(js.BADGE, 3).startswith("restored")  # what the others read did not change
    screenshot(page)
    page.evaluate(js.RUN_CELL, 2)
    seen.append(wait_badge(page, 2, "stored"))
    assert "total 15" in page.evaluate(js.OUTPUT_TEXT, 2) and runs(folder) == 2
    return seen


def screenshot(page):
    """The README's picture (IPY_LAZYCACHE_SCREENSHOT=docs/badges.png), from JupyterLab."""
    if SCREENSHOT and page.evaluate("() => !!document.querySelector('.jp-LabShell')"):
        Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
        page.evaluate("async () => { const app = window.jupyterapp; if (!app.shell.leftCollapsed) "
                      "await app.commands.execute('application:toggle-left-area'); }")
        page.wait_for_timeout(500)
        page.screenshot(path=SCREENSHOT)


def click_badge(page, i: int, button: str) -> str:
    """Click cell i's badge, then a button of its dialog; returns the dialog's why text."""
    page.evaluate("(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].node"
                  ".querySelector('.jp-LazyCacheBadge').click()", i)
    text = page.wait_for_selector(".jp-Dialog .jp-LazyCacheWhy").inner_text()
    page.click(f".jp-Dialog button:has-text({button!r})")
    page.wait_for_function("() => !document.querySelector('.jp-Dialog')")
    return text


def run_anyway(page, folder):
    """Run anyway: the body runs again (--force), the saved source unchanged."""
    said = click_badge(page, 2, "Run anyway")  # what %lazycache why says of its last run
    assert "missed" in said and "variable n changed: 5 → 6" in said, said
    deadline = time.monotonic() + 60
    while runs(folder) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert runs(folder) == 3, "Run anyway did not run the body"
    page.wait_for_function(f"(i) => ({js.OUTPUT_TEXT})(i).includes('lazycache: stored')", arg=2)
    assert "total 15" in page.evaluate(js.OUTPUT_TEXT, 2) and wait_badge(page, 2, "stored")


def reload_edit_forget(page, folder, open_again):
    """A page opened on a running kernel gets badges too; editing the cell's
    own code says would miss before it runs; Forget removes its entry."""
    open_again()
    page.evaluate(js.RUN_CELL, 2)
    wait_badge(page, 2, "restored (saved ")
    assert runs(folder) == 3
    changed = CACHED.replace("sum(range(n))", "sum(range(n + 1))")
    page.evaluate(js.SET_SOURCE, [2, changed])
    wait_badge(page, 2, "would miss")
    page.evaluate(js.SET_SOURCE, [2, CACHED])
    wait_badge(page, 2, "restored (saved ")
    click_badge(page, 2, "Forget this entry")
    wait_badge(page, 2, "would miss")  # its entry is gone: the next run runs the body


@pytest.mark.parametrize("app", ["jupyterlab", "notebook"])
def test_badges_in_a_real_server(tmp_path, page, app):
    folder = tmp_path / "work"
    write_notebook(folder / "badges.ipynb", CELLS)
    with jupyter_server(folder, app) as base:
        open_notebook(page, base, "badges.ipynb", app)
        seen = stored_restored_would_miss(page, folder)
        print(f"\n{app}: badges seen {seen}")

        run_anyway(page, folder)
        page.evaluate(js.SAVE)
        saved = json.loads((folder / "badges.ipynb").read_text())
        # The file holds the cell as written and its outputs: no badge, no comm, no --force.
        assert "".join(saved["cells"][2]["source"]) == CACHED
        assert "LazyCacheBadge" not in json.dumps(saved) and "cell_state" not in json.dumps(saved)
        reload_edit_forget(page, folder, lambda: open_notebook(page, base, "badges.ipynb", app))
    assert not [e for e in page.console if e.startswith("error") and "lazycache" in e.lower()], page.console

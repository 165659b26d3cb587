"""A real JupyterLab or Notebook 7 server on 127.0.0.1 for the badge's
browser tests, and the page scripts that drive a notebook in it.

The server runs from this environment (``python -m jupyterlab`` or ``-m
notebook``), so it loads the labextensions installed here, the badge's
among them (``share/jupyter/labextensions/ipy-lazycache``); its kernels
import this checkout (``PYTHONPATH``). Settings, workspaces and runtime files
go under the test's folder; nothing is fetched from the network.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "badge-test-token"


def labextension_installed() -> str | None:
    """Why the badge cannot show in this environment, or None."""
    from jupyter_core.paths import jupyter_path

    for folder in jupyter_path("labextensions"):
        if (Path(folder) / "ipy-lazycache" / "package.json").is_file():
            return None
    return "the ipy-lazycache labextension is not installed (pip install -e . with node and npm on PATH)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_server(root: Path, app: str = "jupyterlab"):
    """Run ``python -m <app>`` serving ``root``; yields its base URL."""
    port = _free_port()
    home = root.parent / f".{app}-home"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    env.pop("IPY_LAZYCACHE_DIR", None)
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false"}')  # no "get notified about news?" toast over the cells
    cmd = [sys.executable, "-m", app, "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
           "--expose-app-in-browser", "--allow-root"]
    if app == "jupyterlab":  # no news feed, no update check: nothing leaves 127.0.0.1
        cmd += ["--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(root.parent / f"{app}.log", "w")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    said = (root.parent / f"{app}.log").read_text()[-3000:]
                    raise RuntimeError(f"{app} did not start:\n{said}") from None
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# -------------------------------------------------------------- page scripts --
KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === "idle" && !!w.content && w.content.widgets.length > 0;
}"""

RUN_ALL = """async () => { await window.jupyterapp.commands.execute("notebook:run-all-cells"); }"""

RUN_CELL = """async (i) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  nb.activeCellIndex = i;
  await window.jupyterapp.commands.execute("notebook:run-cell");
}"""

SET_SOURCE = """([i, text]) => {
  window.jupyterapp.shell.currentWidget.content.widgets[i].model.sharedModel.setSource(text);
}"""

RESTART = """async () => { await window.jupyterapp.shell.currentWidget.sessionContext.restartKernel(); }"""

SAVE = """async () => { await window.jupyterapp.shell.currentWidget.context.save(); }"""

# The badge beside cell i's prompt: its text, or null when there is none.
BADGE = """(i) => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[i];
  const badge = cell && cell.node.querySelector(".jp-LazyCacheBadge");
  return badge ? badge.textContent : null;
}"""

OUTPUT_TEXT = """(i) => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[i];
  return cell.outputArea ? cell.outputArea.node.innerText : "";
}"""


def wait_badge(page, i: int, start: str, timeout: float = 60) -> str:
    """Wait until cell ``i``'s badge starts with ``start``; return its text."""
    try:
        page.wait_for_function(f"(i) => (({BADGE})(i) || '').startsWith({start!r})", arg=i,
                               timeout=timeout * 1000, polling=100)
    except Exception as exc:
        raise AssertionError(f"cell {i}'s badge never said {start!r}: it says {page.evaluate(BADGE, i)!r}") from exc
    return page.evaluate(BADGE, i)

"""A real JupyterLite site, built and run offline in headless Chromium."""

import base64
import hashlib
import time
import zipfile

import pytest

from ipy_lazycache import offline_pyodide

# lite_browser comes from conftest: importing it here too would make a second
# session browser, and Playwright's sync API refuses a second one in a thread.
from tests._lite import build_site, run_notebook, serve, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PROBE = "http://probe.invalid/ipy_lazycache-smoke"


def make_tiny_wheel(dest):
    """A one-module pure wheel, to check ``%pip install`` from the piplite index."""
    name, version = "lazycache_tiny", "0.1"
    files = {
        f"{name}.py": "VALUE = 'tiny wheel works'\n",
        f"{name}-{version}.dist-info/METADATA":
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL":
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = f"{name}-{version}.dist-info/RECORD"
    lines = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest())
        lines.append(f"{path},sha256={digest.rstrip(b'=').decode()},{len(text)}")
    files[record] = "\n".join(lines + [f"{record},,"]) + "\n"
    whl = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return whl


def test_lite_site_runs_offline(tmp_path, lite_browser):
    lite = tmp_path / "lite-src"
    offline_pyodide.prepare(lite, wheels=[make_tiny_wheel(tmp_path)])
    contents = tmp_path / "contents"
    write_notebook(contents / "smoke.ipynb", [
        "import sys; print(sys.platform)",
        "%pip install lazycache_tiny\nimport lazycache_tiny; print(lazycache_tiny.VALUE)",
        "import xxhash; xxhash.xxh64(b'a').hexdigest()",
        # Negative control: a request from the kernel's worker to elsewhere
        # must show up in run.requests (and fail: the resolver maps it away).
        f"from pyodide.http import pyfetch\ntry:\n    await pyfetch({PROBE!r})\n"
        "except Exception as e:\n    print('blocked', type(e).__name__)",
    ])
    t0 = time.monotonic()
    out = build_site(lite, contents, tmp_path / "site")
    build_s = time.monotonic() - t0
    with serve(out) as base:
        run = run_notebook(lite_browser, base, "smoke.ipynb")
    print(f"build {build_s:.1f}s, timings {run.timings}")

    assert not run.errors(), run.errors()
    assert run.text(0) == "emscripten\n"
    assert run.text(1).endswith("tiny wheel works\n")
    assert run.text(2) == "'d24ec4f1a98c6e5b'\n"
    assert run.text(3).startswith("blocked")
    assert [c["execution_count"] for c in run.cells] == [1, 2, 3, 4]
    # The kernel really loaded from this site (the worker's requests are seen)
    # and nothing but the deliberate probe went elsewhere.
    assert any(u.endswith("pyodide.asm.wasm") for u in run.requests), run.requests
    assert set(run.external_requests) == {PROBE}  # seen twice: worker + SW

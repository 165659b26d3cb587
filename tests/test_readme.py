"""Every shell command the README shows is run by a test or by ``.ci/run``:
each is matched to the file that runs it, and that file must still run it.
A new command in the README needs a line here, and a test."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: README command (its start) -> (the file that runs it, what that file must contain).
RUN_BY = {
    "python3 -m venv .venv": (".ci/run", "python3 -m venv .venv"),
    "pip install -e .": (".ci/run", 'pip install -q -e ".[lite,sphinx,remote,data,progress,demo'),
    'pip install -e ".[demo]" && python jupyterlite_demo/build.py --serve':
        ("tests/test_demo.py", 'build.serve('),
    'pip install -e ".[lite]"': (".ci/run", "lite,"),
    'pip install -e ".[remote]"': (".ci/run", "remote,"),
    "pip install build && python -m build": ("tests/test_package.py", '"-m", "build"'),
    'pip install "dist/ipy_lazycache-0.1.0-py3-none-any.whl': ("tests/test_package.py", '"pip", "install"'),
    "jupyter lite build --contents notebooks/ --LazyCacheAddon.execute=True":
        ("tests/test_lite_addon.py", '"--LazyCacheAddon.execute=True"'),
    "export IPY_LAZYCACHE_STORE=": ("tests/test_s3.py", "IPY_LAZYCACHE_STORE"),
    "export IPY_LAZYCACHE_KEY=": ("tests/test_signing.py", "IPY_LAZYCACHE_KEY"),
    "bash .ci/run": (".ci/run", "pytest -q"),
    ".venv/bin/ruff check .": (".ci/run", ".venv/bin/ruff check ."),
    '.venv/bin/python -m pytest -q -m "not slow"': (".ci/run", '.venv/bin/python -m pytest -q -m "not slow"'),
    ".venv/bin/python -m pytest -q": (".ci/run", ".venv/bin/python -m pytest -q"),
}


def commands(path):
    text = (ROOT / path).read_text()
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line:
                yield line


def test_every_command_is_run_by_a_test_or_ci():
    readme = "README.md"
    found = list(commands(readme))
    assert found
    for line in found:
        starts = [k for k in RUN_BY if line.startswith(k)]
        assert starts, f"{readme}: no test runs `{line}` (add it to tests/test_readme.py RUN_BY)"
        where, needle = RUN_BY[max(starts, key=len)]
        assert needle in (ROOT / where).read_text(), f"{where} no longer runs `{line}` ({needle!r})"


def test_the_readme_is_short_and_usage_comes_first():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 320
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings.index("How it works") > headings.index("Manage the cache") > headings.index("Install")
    for page in ("docs/how-it-works.md", "bench/README.md", "SECURITY.md", "ARCHITECTURE.md", "docs/testing.md"):
        assert f"]({page}" in text and (ROOT / page).exists(), page

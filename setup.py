"""The package build also builds the cell badge, a JupyterLab 4 extension
(``js/``, with npm and ``@jupyterlab/builder``), and ships it as data files
under ``share/jupyter/labextensions/ipy-lazycache``, where JupyterLab,
Notebook 7 and ``jupyter lite build`` find it. Everything else is in
pyproject.toml.

Without node and npm (the FAST lane, a machine with no node) the build goes
on without the badge: the cache works as before, no badge shows. Built
assets are reused while they are newer than ``js/``'s sources (a wheel made
from the sdist, which carries them, needs no npm).
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build import build
from setuptools.command.editable_wheel import editable_wheel
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
JS = HERE / "js"
BUILT = JS / "labextension"
SHARE = "share/jupyter/labextensions/ipy-lazycache"
SOURCES = ("src", "style", "core", "package.json", "package-lock.json", "tsconfig.json")


def _newest(paths) -> float:
    stamps = [p.stat().st_mtime for top in paths if top.exists()
              for p in ([top] if top.is_file() else top.rglob("*")) if p.is_file()]
    return max(stamps, default=0.0)


def _up_to_date() -> bool:
    marker = BUILT / "package.json"
    return marker.is_file() and marker.stat().st_mtime >= _newest(JS / s for s in SOURCES)


def _data_files():
    """``(folder, [files])`` pairs that put the built extension under ``SHARE``."""
    if not (BUILT / "package.json").is_file():
        return []
    pairs = {SHARE: [os.path.relpath(JS / "install.json", HERE)]}
    for path in sorted(p for p in BUILT.rglob("*") if p.is_file()):
        folder = Path(SHARE, path.parent.relative_to(BUILT)).as_posix()
        pairs.setdefault(folder, []).append(os.path.relpath(path, HERE))
    return sorted(pairs.items())


class BuildLabextension(Command):
    description = "build the cell badge's JupyterLab extension (js/) when node and npm are there"
    user_options = []

    def initialize_options(self):
        pass

    def finalize_options(self):
        pass

    def run(self):
        if (JS / "package.json").is_file() and not _up_to_date():
            self._build()
        self.distribution.data_files = _data_files()

    def _build(self):
        npm = shutil.which("npm")
        if npm is None:
            self.announce("ipy_lazycache: no npm on PATH; building without the cell badge's labextension", 3)
            return
        try:
            installed = JS / "node_modules" / ".package-lock.json"
            if not installed.is_file() or installed.stat().st_mtime < (JS / "package-lock.json").stat().st_mtime:
                subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True)
            subprocess.run([npm, "run", "build"], cwd=JS, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            if os.environ.get("IPY_LAZYCACHE_REQUIRE_LABEXTENSION"):
                raise
            self.announce(f"ipy_lazycache: the labextension did not build ({exc}); building without it", 3)


class Build(build):
    sub_commands = [("build_labextension", None), *build.sub_commands]


class EditableWheel(editable_wheel):
    """``pip install -e .`` installs the extension too: editable_wheel asks
    the distribution ``has_data()``, which no Distribution has, so it never
    installs data files by itself."""

    def _run_install(self, category):
        super()._run_install(category)
        if category == "data" and self.distribution.has_data_files():
            self.run_command("install_data")


class Sdist(sdist):
    """The sdist carries the built assets, so a wheel made from it needs no npm."""

    def run(self):
        self.run_command("build_labextension")
        super().run()


setup(
    cmdclass={"build": Build, "build_labextension": BuildLabextension, "sdist": Sdist, "editable_wheel": EditableWheel},
    data_files=_data_files(),
)

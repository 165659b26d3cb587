"""Make a JupyterLite lite dir (or a plain Pyodide dir) work with no CDN.

A JupyterLite site with the Pyodide kernel normally loads Pyodide and the
wheels named by ``pyodide-lock.json`` from a CDN.  Where only PyPI and the npm
registry are reachable (CI, air-gapped demos) the kernel then hangs.  This
module lays everything the kernel loads at start-up into the lite dir itself:

* Pyodide's core files, taken from the npm package ``pyodide@PYODIDE_VERSION``;
* the wheels that the lock names for ``micropip``, ``ipython``, ``jedi``,
  ``parso`` and the requested extra packages (with their closure), downloaded
  from PyPI; the lock is rewritten to list only those, with PyPI's hashes;
* ``comm`` and any extra wheels (e.g. this project's own) in ``pypi/``, the
  piplite index, so ``%pip install`` finds them;
* ``jupyter-lite.json`` settings that point the kernel at the local Pyodide.

Only the standard library is imported; ``npm`` and ``pip`` run as subprocesses.
Downloads are cached (``$IPY_LAZYCACHE_DOWNLOADS`` or
``~/.cache/ipy_lazycache``) so a second run needs no network at all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

#: Must equal ``jupyterlite_pyodide_kernel.constants.PYODIDE_VERSION``.
PYODIDE_VERSION = "314.0.6"
PYTHON_VERSION = "3.14"
CORE_FILES = (
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)
#: What the Pyodide kernel loads from the lock when it starts.
KERNEL_PACKAGES = ("micropip", "ipython", "jedi", "parso")
#: What ipy_lazycache needs on top of that (the lock pins them, so piplite
#: resolves the project wheel's dependencies without PyPI).
DEFAULT_PACKAGES = ("xxhash", "cloudpickle", "pyodide-http")
#: Not in Pyodide's lock, but the kernel shims import it: goes to ``pypi/``.
PIPLITE_PACKAGES = ("comm==0.2.3",)
KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"


def cache_dir() -> Path:
    """Where npm tarballs and wheels are kept between runs."""
    env = os.environ.get("IPY_LAZYCACHE_DOWNLOADS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ipy_lazycache"


def normalize(name: str) -> str:
    """PEP 503 name, the form Pyodide's lock uses as keys."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _say(message: str) -> None:
    """Progress for the slow first run (downloads); silent once cached."""
    print(f"offline_pyodide: {message}", file=sys.stderr, flush=True)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


# --------------------------------------------------------------------- npm --
def fetch_pyodide(cache: Path | None = None) -> Path:
    """Return a folder holding the npm package ``pyodide@PYODIDE_VERSION``.

    ``npm pack`` only downloads the tarball (no install, no scripts), which is
    all we need: the core files are inside it.
    """
    cache = Path(cache or cache_dir())
    dest = cache / f"pyodide-{PYODIDE_VERSION}"
    if (dest / "package" / "pyodide-lock.json").exists():
        return dest / "package"
    cache.mkdir(parents=True, exist_ok=True)
    tgz = cache / f"pyodide-{PYODIDE_VERSION}.tgz"
    if not tgz.exists():
        _say(f"downloading pyodide@{PYODIDE_VERSION} from npm (about 10 MB, once) ...")
        _run(["npm", "pack", f"pyodide@{PYODIDE_VERSION}", "--silent",
              "--pack-destination", str(cache)])
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(tgz) as tf:
        tf.extractall(tmp, **safe)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest / "package"


# --------------------------------------------------------------------- pip --
def _wheel_tags(lock_file_name: str | None) -> list[str]:
    """pip download flags for a wheel like the one the lock names.

    A ``*-none-any`` file means a pure wheel; otherwise reuse the lock's
    python/abi/platform tags (e.g. ``cp314-cp314-pyemscripten_2026_0_wasm32``),
    which PyPI serves for some packages (PEP 783).
    """
    common = ["--only-binary", ":all:", "--python-version", PYTHON_VERSION]
    if lock_file_name and not lock_file_name.endswith("-none-any.whl"):
        py, abi, plat = lock_file_name[: -len(".whl")].split("-")[-3:]
        return common + ["--platform", plat, "--implementation", py[:2], "--abi", abi]
    return common + ["--platform", "any", "--implementation", "py"]


def _cached_wheel(wheels: Path, name: str, version: str, plat: str) -> Path | None:
    """The wheel already downloaded for this name, version and platform."""
    stem = re.sub(r"[-_.]+", "_", name).lower()
    for whl in sorted(wheels.glob(f"*-{version}-*{plat}.whl")):
        if whl.name.split("-")[0].lower() == stem:
            return whl
    return None


def _pip_download(req: str, flags: list[str], wheels: Path) -> Path | None:
    """Run ``pip download`` for one requirement; the wheel's path or None."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
           "--disable-pip-version-check", "-d", str(wheels), *flags, req]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = re.findall(r"^\s*(?:Saved|File was already downloaded) (.+\.whl)\s*$",
                       proc.stdout, re.M)
    return Path(found[-1]).resolve() if proc.returncode == 0 and found else None


def download_wheel(spec: str, lock_entry: dict | None = None,
                   cache: Path | None = None) -> Path:
    """Download one wheel from PyPI into the cache, or reuse the cached one.

    ``spec`` is ``name`` or ``name==version``.  Without a version the lock's
    version is tried first, then the newest one PyPI has for the platform
    (xxhash: the lock says 3.6.0, PyPI has emscripten wheels from 4.0 on).
    What an unpinned spec resolved to is recorded, so later runs are offline.
    """
    cache = Path(cache or cache_dir())
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    name, _, pinned = spec.partition("==")
    flags = _wheel_tags(lock_entry and lock_entry["file_name"])
    plat = flags[flags.index("--platform") + 1]
    record = wheels / "resolved.json"
    resolved = json.loads(record.read_text()) if record.exists() else {}
    key = f"{normalize(name)} {plat}"
    versions = [pinned] if pinned else [
        v for v in (lock_entry and lock_entry["version"], resolved.get(key)) if v]
    for ver in versions:
        hit = _cached_wheel(wheels, name, ver, plat)
        if hit:
            return hit
    for req in [f"{name}=={v}" for v in versions] + ([] if pinned else [name]):
        _say(f"downloading {req} ({plat}) from PyPI, once ...")
        hit = _pip_download(req, flags, wheels)
        if hit:
            if not pinned:
                resolved[key] = hit.name.split("-")[1]
                record.write_text(json.dumps(resolved, indent=1, sort_keys=True))
            return hit
    raise RuntimeError(f"pip could not download a {plat} wheel for {spec}")


def _wheel_entry(whl: Path) -> dict:
    """A lock entry for a wheel that Pyodide's lock does not know."""
    with zipfile.ZipFile(whl) as zf:
        names = zf.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        headers = zf.read(meta).decode()
    name = re.search(r"^Name: (.+)$", headers, re.M).group(1).strip()
    version = re.search(r"^Version: (.+)$", headers, re.M).group(1).strip()
    deps = [normalize(re.match(r"[A-Za-z0-9_.\-]+", d).group(0))
            for d in re.findall(r"^Requires-Dist: (.+)$", headers, re.M)
            if ";" not in d]
    tops = {n.split("/")[0] for n in names if "/" in n}
    tops |= {n[:-3] for n in names if "/" not in n and n.endswith(".py")}
    imports = sorted(t for t in tops if not t.endswith((".dist-info", ".data")))
    return {"name": name, "version": version, "file_name": whl.name,
            "install_dir": "site", "package_type": "package", "imports": imports,
            "depends": deps, "unvendored_tests": False, "sha256": ""}


# ----------------------------------------------------------------- pyodide --
def install_pyodide(dest: Path, packages=DEFAULT_PACKAGES, *, core: bool = True,
                    cache: Path | None = None) -> dict:
    """Fill ``dest`` with Pyodide and a self-contained ``pyodide-lock.json``.

    ``packages`` (plus ``KERNEL_PACKAGES``) and their closure from the lock are
    downloaded from PyPI and copied next to the lock, which Pyodide uses as
    the base URL of package files.  Entries not shipped are dropped, so a
    missing package fails at once instead of reaching for the CDN.  With
    ``core=False`` only the lock and wheels are written (Node loads the core
    from its own npm install and takes ``lockFileURL`` pointing here).
    Returns the new lock.
    """
    cache = Path(cache or cache_dir())
    npm_pkg = fetch_pyodide(cache)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if core:
        for name in CORE_FILES:
            shutil.copy2(npm_pkg / name, dest / name)
    lock = json.loads((npm_pkg / "pyodide-lock.json").read_text())
    known = lock["packages"]
    specs = {normalize(s.partition("==")[0]): s for s in (*KERNEL_PACKAGES, *packages)}
    todo, shipped = list(specs), {}
    while todo:
        key = todo.pop()
        if key in shipped:
            continue
        entry = dict(known.get(key) or {})
        whl = download_wheel(specs.get(key, key), entry or None, cache)
        if not entry:
            entry = _wheel_entry(whl)
        entry.update(file_name=whl.name, version=whl.name.split("-")[1],
                     sha256=_sha256(whl), unvendored_tests=False)
        shipped[key] = entry
        todo += [normalize(d) for d in entry["depends"] if normalize(d) in known]
        shutil.copy2(whl, dest / whl.name)
    lock["packages"] = dict(sorted(shipped.items()))
    (dest / "pyodide-lock.json").write_text(json.dumps(lock, indent=1))
    return lock


# --------------------------------------------------------------- jupyterlite --
def write_config(lite_dir: Path) -> dict:
    """Merge the offline settings into ``lite_dir/jupyter-lite.json``.

    ``pyodideUrl`` makes the kernel load the local Pyodide (whose lock then
    points at the local wheels); ``disablePyPIFallback`` makes a missing wheel
    fail fast instead of hanging on pypi.org; ``exposeAppInBrowser`` gives
    tests ``window.jupyterapp``.
    """
    path = Path(lite_dir) / "jupyter-lite.json"
    cfg = json.loads(path.read_text()) if path.exists() else {}
    cfg.setdefault("jupyter-lite-schema-version", 0)
    data = cfg.setdefault("jupyter-config-data", {})
    data["exposeAppInBrowser"] = True
    kernel = data.setdefault("litePluginSettings", {}).setdefault(KERNEL_PLUGIN, {})
    kernel["pyodideUrl"] = "./static/pyodide/pyodide.mjs"
    kernel["disablePyPIFallback"] = True
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return cfg


def prepare(lite_dir, wheels=(), packages=DEFAULT_PACKAGES, cache=None) -> Path:
    """Make ``lite_dir`` build into a site that needs nothing but itself.

    ``wheels`` are local wheel files (e.g. this project's, from
    ``pip wheel --no-deps .``) put into the piplite index ``pypi/``.
    Build afterwards from a clean state (``rm -rf _output
    .jupyterlite.doit.db``): an incremental rebuild once lost ``pyodideUrl``.
    """
    lite_dir = Path(lite_dir)
    install_pyodide(lite_dir / "static" / "pyodide", packages, cache=cache)
    pypi = lite_dir / "pypi"
    pypi.mkdir(parents=True, exist_ok=True)
    for spec in PIPLITE_PACKAGES:
        shutil.copy2(download_wheel(spec, None, cache), pypi)
    for whl in wheels:
        shutil.copy2(whl, pypi)
    write_config(lite_dir)
    return lite_dir


def main(argv=None) -> int:
    """``ipy-lazycache lite-pyodide LITE_DIR [--wheel W ...] [--package P ...]``."""
    ap = argparse.ArgumentParser(
        prog="ipy-lazycache lite-pyodide",
        description="Make a JupyterLite lite dir self-contained (no CDN).")
    ap.add_argument("lite_dir", type=Path)
    ap.add_argument("--wheel", action="append", default=[], type=Path,
                    help="local wheel to put into the piplite index (repeatable)")
    ap.add_argument("--package", action="append", default=None,
                    help="extra Pyodide package, NAME or NAME==VER (repeatable; "
                         f"default: {' '.join(DEFAULT_PACKAGES)})")
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args(argv)
    prepare(args.lite_dir, args.wheel, args.package or DEFAULT_PACKAGES,
            args.cache_dir)
    print(f"prepared {args.lite_dir} (Pyodide {PYODIDE_VERSION}, offline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

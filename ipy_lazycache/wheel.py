"""A pure ``py3-none-any`` wheel of the installed ipy_lazycache, made
without a build backend or network, for a JupyterLite site's piplite index
(the lite addon ships it; the site's kernel loads it as it starts)."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path


def make_wheel(dest) -> Path:
    """A pure ``py3-none-any`` wheel of the installed ipy_lazycache, made
    without a build backend or network (works for editable installs too).

    Metadata comes from the source tree's ``pyproject.toml`` when there is
    one, else from the installed distribution. Timestamps are fixed, so the
    same sources give the same bytes.
    """
    import ipy_lazycache

    pkg = Path(ipy_lazycache.__file__).parent
    name, version = "ipy_lazycache", ipy_lazycache.__version__
    metadata = _metadata(pkg, version)
    files = {}
    for path in sorted(pkg.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            files[f"{name}/{path.relative_to(pkg).as_posix()}"] = path.read_bytes()
    info = f"{name}-{version}.dist-info"
    files[f"{info}/METADATA"] = metadata.encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: ipy_lazycache.lite\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    whl = dest / f"{name}-{version}-py3-none-any.whl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zi = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
    whl.write_bytes(buf.getvalue())
    return whl


def _metadata(pkg: Path, version: str) -> str:
    pyproject = pkg.parent / "pyproject.toml"
    project = None
    if pyproject.is_file():
        try:
            import tomllib
        except ImportError:  # Python 3.10
            tomllib = None
        if tomllib is not None:
            project = tomllib.loads(pyproject.read_text()).get("project")
    if project and project.get("name", "").replace("-", "_") == "ipy_lazycache":
        lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {version}"]
        if project.get("description"):
            lines.append(f"Summary: {project['description']}")
        if project.get("requires-python"):
            lines.append(f"Requires-Python: {project['requires-python']}")
        lines += [f"Requires-Dist: {d}" for d in project.get("dependencies", [])]
        return "\n".join(lines) + "\n"
    from importlib.metadata import distribution

    dist = distribution("ipy_lazycache")
    return dist.read_text("METADATA") or dist.read_text("PKG-INFO") or (
        f"Metadata-Version: 2.1\nName: ipy_lazycache\nVersion: {version}\n")

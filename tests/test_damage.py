"""Damaged entries and failing disks, through a real InteractiveShell.

Damage: every case makes the cell re-run with exactly one warning line,
evicts the bad entry, and leaves the other entry in the cache a hit.

Faults are simulated at the OS-call boundary the FileStore uses (we run as
root, where a read-only ``chmod`` does not deny anything): ``os.fsync``
failing with ENOSPC (disk full mid-entry, or at the manifest), ``mkstemp``
failing with EROFS (read-only file system) and EACCES (permission denied),
and ``os.replace`` failing with EACCES.
"""

import errno
import json
import os
import tempfile

import pytest

from ipy_lazycache import cli

BODY = 'open("runs.txt", "a").write("run\\n")\n'
CELL = (
    "%%lazycache\n" + BODY + "import numpy as np\n"
    "arr = np.arange(100_000, dtype=np.float64)\n"
    "obj = {'a': list(range(1000)), 'b': 'text'}\n"
    "word = 'hello'\n"
    "print('computed')\n"
)
OTHER = '%%lazycache\nopen("other.txt", "a").write("run\\n")\nkept = [1, 2, 3]\n'


def check_values(ns):
    import numpy as np

    assert np.array_equal(ns["arr"], np.arange(100_000, dtype=np.float64))
    assert ns["obj"] == {"a": list(range(1000)), "b": "text"}
    assert ns["word"] == "hello"


def entry_dir(key_prefix=None):
    root = "__lazycache__"
    dirs = sorted(os.listdir(root))
    found = []
    for d in dirs:
        if len(d) != 32:  # exports/ and other non-entry folders
            continue
        with open(os.path.join(root, d, "manifest.json")) as fh:
            m = json.load(fh)
        if "arr" in m["defs"]:
            found.append(os.path.join(root, d))
    assert len(found) == 1
    return found[0]


def blob(d, prefix):
    (name,) = [n for n in os.listdir(d) if n.startswith(prefix + ".")]
    return os.path.join(d, name)


def truncate(path):
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)


def bitflip(path):
    with open(path, "r+b") as fh:
        data = bytearray(fh.read())
        data[len(data) // 2] ^= 0x10
        fh.seek(0)
        fh.write(data)


def edit_manifest(d, change):
    path = os.path.join(d, "manifest.json")
    with open(path) as fh:
        m = json.load(fh)
    change(m)
    with open(path, "w") as fh:
        json.dump(m, fh)


def _digest(m, prefix, value):
    for name, b in m["blobs"].items():
        if name.startswith(prefix + "."):
            b["digest"] = value


DAMAGE = {
    "truncated pickle": lambda d: truncate(blob(d, "obj")),
    "bit-flipped pickle": lambda d: bitflip(blob(d, "obj")),
    "missing pickle": lambda d: os.unlink(blob(d, "obj")),
    "truncated npy": lambda d: truncate(blob(d, "arr")),
    "missing npy": lambda d: os.unlink(blob(d, "arr")),
    "extended npy": lambda d: open(blob(d, "arr"), "ab").write(b"\0" * 64),
    "truncated manifest": lambda d: truncate(os.path.join(d, "manifest.json")),
    "non-JSON manifest": lambda d: open(os.path.join(d, "manifest.json"), "wb").write(b"\x00\xffnot json"),
    "JSON list manifest": lambda d: open(os.path.join(d, "manifest.json"), "w").write("[1, 2]"),
    "future format": lambda d: edit_manifest(d, lambda m: m.update(format=m["format"] + 1)),
    "manifest of another key": lambda d: edit_manifest(d, lambda m: m.update(key="0" * 32)),
    "manifest without blobs field": lambda d: edit_manifest(d, lambda m: m.pop("blobs")),
    "digest mismatch": lambda d: edit_manifest(d, lambda m: _digest(m, "obj", "0" * 32)),
    "wrong size in manifest": lambda d: edit_manifest(
        d, lambda m: [b.update(size=b["size"] + 1) for b in m["blobs"].values()]),
    "unknown codec": lambda d: edit_manifest(
        d, lambda m: [b.update(codec="nope") for n, b in m["blobs"].items() if n.startswith("word.")]),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damage_reruns_with_one_warning_and_evicts(run, shell, runs, case):
    assert run(OTHER).success
    assert run(CELL).success and runs() == 1
    d = entry_dir()
    DAMAGE[case](d)
    for name in ("arr", "obj", "word"):
        shell.user_ns.pop(name)

    r = run(CELL)
    assert r.success, r.err
    assert runs() == 2, "the damaged entry must not be restored"
    check_values(shell.user_ns)
    warnings = [line for line in r.out.splitlines() if line.startswith("lazycache:") and "damaged" in line]
    assert len(warnings) == 1, r.out
    assert len([line for line in r.out.splitlines() if line.startswith("lazycache:")]) == 2  # + "stored"
    assert "Traceback" not in r.out + r.err

    # Evicted and stored afresh: whole again, and a hit.
    assert cli.main(["verify"]) == 0
    r = run(CELL)
    assert runs() == 2 and "damaged" not in r.out
    check_values(shell.user_ns)
    # Nothing else lost.
    before = open("other.txt").read()
    assert run(OTHER).success and open("other.txt").read() == before


def test_missing_manifest_is_a_plain_miss(run, shell, runs):
    """No manifest is no entry (the manifest is the commit marker: this is
    what an interrupted store leaves), so no warning; the re-run repairs it."""
    assert run(OTHER).success
    run(CELL)
    d = entry_dir()
    os.unlink(os.path.join(d, "manifest.json"))
    r = run(CELL)
    assert runs() == 2 and "damaged" not in r.out
    check_values(shell.user_ns)
    run(CELL)
    assert runs() == 2
    before = open("other.txt").read()
    run(OTHER)
    assert open("other.txt").read() == before


def test_bitflip_in_mmapped_npy_is_found_by_verify(run, shell, runs, capfd):
    """By design a restore memory-maps ``.npy`` without reading it (O(1), and
    it is never unpickled), so it cannot see a flipped bit; ``verify`` does,
    and ``verify --fix`` evicts the entry."""
    run(OTHER)
    run(CELL)
    d = entry_dir()
    bitflip(blob(d, "arr"))
    capfd.readouterr()
    assert cli.main(["verify"]) == 1
    out = capfd.readouterr().out
    assert "found 1 bad entry in" in out and "does not match its digest" in out
    assert cli.main(["verify", "--fix"]) == 0
    assert not os.path.exists(d)
    assert cli.main(["verify"]) == 0
    run(CELL)
    assert runs() == 2
    check_values(shell.user_ns)


# ----------------------------------------------------------------------------
# Faults


def _err(code):
    return OSError(code, os.strerror(code))


def fail_fsync(monkeypatch, on_call):
    """Disk full: the ``on_call``-th fsync (1-based; -1 = every one after the
    blobs, i.e. the manifest's) raises ENOSPC."""
    import ipy_lazycache.stores.file as filemod

    real = filemod.os.fsync
    calls = {"n": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] == on_call:
            raise _err(errno.ENOSPC)
        return real(fd)

    monkeypatch.setattr(filemod.os, "fsync", fsync)


FAULTS = {
    "disk full at the first blob": lambda mp: fail_fsync(mp, 1),
    "disk full at the third blob": lambda mp: fail_fsync(mp, 3),
    "disk full at the manifest": lambda mp: fail_manifest(mp),
    "read-only file system": lambda mp: mp.setattr(tempfile, "mkstemp", _raiser(errno.EROFS)),
    "permission denied (create)": lambda mp: mp.setattr(tempfile, "mkstemp", _raiser(errno.EACCES)),
    "permission denied (rename)": lambda mp: _fail_replace(mp),
}


def fail_manifest(mp):
    """ENOSPC when the manifest (written last) is committed."""
    import ipy_lazycache.stores.file as filemod

    real = filemod.os.replace

    def replace(src, dst, *a, **k):
        if str(dst).endswith("manifest.json") and "exports" not in str(dst):
            raise _err(errno.ENOSPC)
        return real(src, dst, *a, **k)

    mp.setattr(filemod.os, "replace", replace)


def _raiser(code):
    def f(*a, **k):
        raise _err(code)

    return f


def _fail_replace(mp):
    import ipy_lazycache.stores.file as filemod

    mp.setattr(filemod.os, "replace", _raiser(errno.EACCES))


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_runs_the_cell_says_not_stored_and_leaves_nothing(run, shell, runs, monkeypatch, fault):
    with monkeypatch.context() as mp:
        FAULTS[fault](mp)
        r = run(CELL)
    assert r.success, r.err
    assert runs() == 1 and "computed" in r.out
    check_values(shell.user_ns)
    lines = [line for line in r.out.splitlines() if line.startswith("lazycache:")]
    assert len(lines) == 1 and "not stored" in lines[0], r.out
    files = [os.path.join(p, f) for p, _, fs in os.walk("__lazycache__") for f in fs if "exports" not in p]
    assert files == [], f"partial entry left: {files}"
    # With the disk back, the cell stores normally and then hits.
    run(CELL)
    run(CELL)
    assert runs() == 2
    check_values(shell.user_ns)


def test_fault_at_manifest_keeps_a_concurrent_entry(run, shell, runs, monkeypatch):
    """A failed --force store removes only its own blobs, not the entry's."""
    run(CELL)
    d = entry_dir()
    before = sorted(os.listdir(d))
    with monkeypatch.context() as mp:
        fail_manifest(mp)
        r = run(CELL.replace("%%lazycache", "%%lazycache --force"))
    assert "not stored" in r.out and runs() == 2
    assert sorted(n for n in os.listdir(d) if not n.startswith(".tmp-")) == before
    run(CELL)
    assert runs() == 2
    check_values(shell.user_ns)

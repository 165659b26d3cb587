"""Signed manifests: a tampered pickle is never unpickled under on/strict."""

import hashlib
import json
import os
import pickle

import pytest
import xxhash
from IPython.core.error import UsageError

from ipy_lazycache import cli, signing

BODY = 'open("runs.txt", "a").write("run\\n")\n'
CELL = "%%lazycache\n" + BODY + "obj = {'a': list(range(100))}\nimport numpy as np\narr = np.arange(10)\n"


class Payload:
    """Unpickling this runs a shell command with a visible side effect."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def entry():
    (d,) = [os.path.join("__lazycache__", n) for n in os.listdir("__lazycache__") if len(n) == 32]
    return d


def tamper(d, marker):
    """What an attacker with write access but no key can do: swap a pickle
    for a payload and fix every unkeyed digest in the manifest to match."""
    payload = pickle.dumps(Payload(marker))
    path = os.path.join(d, "manifest.json")
    with open(path) as fh:
        m = json.load(fh)
    (name,) = [n for n in m["blobs"] if n.startswith("obj.")]
    with open(os.path.join(d, name), "wb") as fh:
        fh.write(payload)
    b = m["blobs"][name]
    b["size"] = len(payload)
    b["digest"] = xxhash.xxh3_128(payload).hexdigest()
    if "sha256" in b:
        b["sha256"] = hashlib.sha256(payload).hexdigest()
    with open(path, "w") as fh:
        json.dump(m, fh)


def test_signed_entry_is_a_hit(run, shell, runs, monkeypatch):
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", "team secret")
    run(CELL)
    run(CELL)
    assert runs() == 1 and shell.user_ns["obj"] == {"a": list(range(100))}
    with open(os.path.join(entry(), "manifest.json")) as fh:
        m = json.load(fh)
    assert m["signature"]["alg"] == "hmac-sha256"
    assert all(len(b["sha256"]) == 64 for b in m["blobs"].values())
    assert cli.main(["verify"]) == 0


def test_payload_runs_without_signing(run, shell, runs, tmp_path):
    """The control: with signing off, matching digests are all a tampered
    entry needs (this is why shared folders should be signed)."""
    marker = tmp_path / "PWNED-off"
    run(CELL)
    tamper(entry(), marker)
    run(CELL)
    assert marker.exists(), "the test payload should be live"


@pytest.mark.parametrize("how", ["env", "config"])
def test_tampered_pickle_is_refused_under_on(run, shell, runs, tmp_path, monkeypatch, how):
    marker = tmp_path / "PWNED-on"
    if how == "env":
        monkeypatch.setenv("IPY_LAZYCACHE_KEY", "team secret")
    else:
        run('%config LazyCache.signing_key = "team secret"')
    run(CELL)
    tamper(entry(), marker)
    r = run(CELL)
    assert not marker.exists(), "the payload ran"
    assert r.success and runs() == 2
    assert shell.user_ns["obj"] == {"a": list(range(100))}
    lines = [line for line in r.out.splitlines() if "not trusted" in line]
    assert len(lines) == 1 and "signature does not match" in lines[0], r.out
    run(CELL)  # re-stored, signed: a hit again
    assert runs() == 2 and not marker.exists()


def test_tampered_pickle_is_an_error_under_strict(run, shell, runs, tmp_path, monkeypatch):
    marker = tmp_path / "PWNED-strict"
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", "team secret")
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "strict")
    run(CELL)
    tamper(entry(), marker)
    r = run(CELL)
    assert not marker.exists(), "the payload ran"
    assert isinstance(r.error_in_exec, UsageError) and "not trusted" in str(r.error_in_exec)
    assert runs() == 1, "strict: the cell neither restores nor runs"
    # verify reports it; verify --fix removes it; then the cell stores afresh.
    assert cli.main(["verify"]) == 1
    assert not marker.exists()
    assert cli.main(["verify", "--fix"]) == 0
    run(CELL)
    assert runs() == 2 and not marker.exists()


def test_unsigned_entry_under_on_is_a_miss_and_under_strict_an_error(run, shell, runs, monkeypatch):
    run(CELL)  # written without a key: unsigned
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", "k")
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "strict")
    r = run(CELL)
    assert isinstance(r.error_in_exec, UsageError) and "not signed" in str(r.error_in_exec)
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "on")
    r = run(CELL)
    assert runs() == 2 and "not signed" in r.out
    run(CELL)
    assert runs() == 2


def test_wrong_key_is_a_miss(run, runs, monkeypatch):
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", "alice")
    run(CELL)
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", "mallory")
    r = run(CELL)
    assert runs() == 2 and "signature does not match" in r.out


def test_mode_without_key_and_bad_mode_are_usage_lines_and_the_cell_runs(run, monkeypatch, runs):
    """DESIGN §8: one clear line, and the cell still runs (uncached: nothing
    is written or read without a usable signing setting)."""
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "on")
    r = run(CELL)
    assert r.success and runs() == 1
    assert [line for line in r.out.splitlines() if line.startswith("UsageError")] == [
        line for line in r.out.splitlines() if "needs a key" in line
    ] != []
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "sometimes")
    r = run(CELL)
    assert r.success and runs() == 2 and "must be one of" in r.out
    assert not os.path.exists("__lazycache__") or not [n for n in os.listdir("__lazycache__") if len(n) == 32]


def test_canonical_encoding_is_domain_separated_and_order_free():
    m1 = {"key": "k", "b": 1, "a": [1, 2]}
    m2 = {"a": [1, 2], "b": 1, "key": "k", "signature": {"mac": "x"}}
    assert signing.canonical(m1) == signing.canonical(m2)
    assert signing.canonical(m1).startswith(signing.DOMAIN)
    s = signing.Signer(b"key", "on")
    signed = s.sign(dict(m1))
    assert s.problem(signed) is None
    signed["b"] = 2
    assert s.problem(signed) == "its signature does not match"


# ----------------------------------------------------------------------------
# Issue 22: public-key signatures a reader cannot forge (Ed25519), and keys
# with stray whitespace refused in one line.


def keygen(path):
    """A key through the command a user runs; returns its fingerprint."""
    import subprocess
    import sys

    pytest.importorskip("cryptography")
    proc = subprocess.run([sys.executable, "-m", "ipy_lazycache.cli", "keygen", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("trust with:")]
    return line.split("=", 1)[1]


def resign_hmac(d, key: bytes):
    """What any HMAC reader can do after tampering: sign the forged manifest."""
    path = os.path.join(d, "manifest.json")
    with open(path) as fh:
        m = json.load(fh)
    signing.Signer(key, "on").sign(m)
    with open(path, "w") as fh:
        json.dump(m, fh)


def resign_ed25519(d, private_path):
    """What a reader with a key of their own can do: sign the forged manifest."""
    path = os.path.join(d, "manifest.json")
    with open(path) as fh:
        m = json.load(fh)
    signing.from_config(private_key=str(private_path), environ={}).sign(m)
    with open(path, "w") as fh:
        json.dump(m, fh)


def test_an_ed25519_signed_entry_is_a_hit_for_a_reader_holding_only_the_fingerprint(run, shell, runs, tmp_path,
                                                                                      monkeypatch):
    fp = keygen(tmp_path / "ci.key")
    assert oct((tmp_path / "ci.key").stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("IPY_LAZYCACHE_PRIVATE_KEY", str(tmp_path / "ci.key"))
    run(CELL)  # the signer (CI) stores
    with open(os.path.join(entry(), "manifest.json")) as fh:
        m = json.load(fh)
    assert m["signature"]["alg"] == "ed25519" and all(len(b["sha256"]) == 64 for b in m["blobs"].values())
    monkeypatch.delenv("IPY_LAZYCACHE_PRIVATE_KEY")
    monkeypatch.setenv("IPY_LAZYCACHE_TRUSTED_KEYS", f"SHA256:{'A' * 43}, {fp}")
    shell.user_ns.pop("obj")
    r = run(CELL)  # a reader: a hit
    assert runs() == 1 and shell.user_ns["obj"] == {"a": list(range(100))}, r.out
    assert cli.main(["verify"]) == 0
    # A reader who trusts another key only: a miss that says whose key signed it.
    monkeypatch.setenv("IPY_LAZYCACHE_TRUSTED_KEYS", f"SHA256:{'A' * 43}")
    r = run(CELL)
    assert runs() == 2 and f"signed by {fp}, which is not a trusted key" in r.out
    assert "nothing to sign with" in r.out  # and it cannot store an entry it would trust


def test_under_hmac_a_reader_forges_under_ed25519_a_reader_cannot(run, shell, runs, tmp_path, monkeypatch):
    """The point of public keys: with HMAC, anyone who can verify can sign a
    payload (the control); with Ed25519 a reader's own signature is untrusted."""
    marker = tmp_path / "PWNED-hmac"
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", "team secret")
    run(CELL)
    tamper(entry(), marker)
    resign_hmac(entry(), b"team secret")  # a reader holds the same key
    run(CELL)
    assert marker.exists(), "control: an HMAC reader can forge"

    monkeypatch.delenv("IPY_LAZYCACHE_KEY")
    cli.main(["clear"])
    fp = keygen(tmp_path / "ci.key")
    keygen(tmp_path / "mallory.key")
    monkeypatch.setenv("IPY_LAZYCACHE_PRIVATE_KEY", str(tmp_path / "ci.key"))
    run(CELL)
    marker = tmp_path / "PWNED-ed25519"
    tamper(entry(), marker)
    resign_ed25519(entry(), tmp_path / "mallory.key")  # a reader signs with their own key
    monkeypatch.delenv("IPY_LAZYCACHE_PRIVATE_KEY")
    monkeypatch.setenv("IPY_LAZYCACHE_TRUSTED_KEYS", fp)
    before = runs()
    r = run(CELL)
    assert not marker.exists(), "the payload ran"
    assert runs() == before + 1 and "which is not a trusted key" in r.out
    # Keeping the CI's signature over the forged manifest does not verify either.
    monkeypatch.setenv("IPY_LAZYCACHE_SIGNING", "strict")
    resign_ed25519(entry(), tmp_path / "mallory.key")
    r = run(CELL)
    assert not marker.exists() and isinstance(r.error_in_exec, UsageError)
    assert cli.main(["verify"]) == 1 and not marker.exists()


def test_a_forged_manifest_under_the_trusted_keys_name_does_not_verify(tmp_path):
    private = tmp_path / "ci.key"
    fp = keygen(private)
    writer = signing.from_config(private_key=str(private), environ={})
    reader = signing.from_config(trusted_keys=fp, mode="verify", environ={})
    m = writer.sign({"key": "k" * 32, "blobs": {"a.pkl": {"sha256": "0" * 64}}})
    assert reader.problem(m) is None and reader.mode == "on"
    m["blobs"]["a.pkl"]["sha256"] = "1" * 64  # the signer's public key is kept; the content changed
    assert reader.problem(m) == "its signature does not match"
    assert signing.from_config(key="shared", environ={}).problem(m) == (
        "it is signed by " + fp + ", which is not a trusted key ($IPY_LAZYCACHE_TRUSTED_KEYS)")


@pytest.mark.parametrize("value", ["team secret\n", "   ", "\tsecret"])
def test_a_signing_key_with_stray_whitespace_is_one_line(run, runs, monkeypatch, value):
    """On 2d4d966 such a key was used without a word: a machine that kept the
    newline and one that did not called each other's entries forged."""
    monkeypatch.setenv("IPY_LAZYCACHE_KEY", value)
    r = run(CELL)
    assert r.success and runs() == 1
    lines = [line for line in r.out.splitlines() if "IPY_LAZYCACHE_KEY" in line]
    assert len(lines) == 1 and "whitespace" in lines[0], r.out
    assert cli.main(["verify"]) == 2


def test_bad_ed25519_settings_are_one_line_naming_the_setting(tmp_path):
    cases = {
        "IPY_LAZYCACHE_PRIVATE_KEY": (str(tmp_path / "missing.key"), "cannot read"),
        "IPY_LAZYCACHE_TRUSTED_KEYS": ("abc", "is not a key fingerprint"),
    }
    for name, (value, says) in cases.items():
        with pytest.raises(signing.SigningError, match=f"^\\${name}: .*{says}"):
            signing.from_config(environ={name: value})
    pytest.importorskip("cryptography")
    (tmp_path / "not.key").write_text("hello")
    with pytest.raises(signing.SigningError, match="LazyCache.private_key: not a PEM or OpenSSH private key"):
        signing.from_config(private_key=str(tmp_path / "not.key"), environ={})

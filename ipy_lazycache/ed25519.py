"""Ed25519 keys for public-key signed manifests (see :mod:`.signing`).

Only a private key's holder can sign; anyone can verify with the public key.
A manifest carries its signer's public key, and a reader trusts it when its
fingerprint is in the reader's list, so readers keep short fingerprints, not
key files. The fingerprint is OpenSSH's (``SHA256:`` and the unpadded
base64 of the SHA-256 of the key's SSH wire form), so ``ssh-keygen -lf``
shows the same text for the same key, and OpenSSH Ed25519 keys work as is.

``cryptography`` is an optional dependency (``pip install
'ipy_lazycache[sign]'``), imported only when an Ed25519 key is used.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import struct

ALGORITHM = "ed25519"
#: Domain separation from HMAC signatures (and anything else signed with the key).
DOMAIN = b"ipy_lazycache manifest signature ed25519 v1\x00"
FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")
_HEX = re.compile(r"^[0-9a-f]*$")
INSTALL = "pip install 'ipy_lazycache[sign]'"


class BadKey(ValueError):
    """A key that cannot be used: one line naming the setting."""


def _crypto():
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise BadKey(f"Ed25519 signatures need the cryptography package ({INSTALL})") from None
    return ed25519


def fingerprint(public: bytes) -> str:
    """OpenSSH's fingerprint of a raw 32-byte Ed25519 public key."""
    name = b"ssh-ed25519"
    wire = struct.pack(">I", len(name)) + name + struct.pack(">I", len(public)) + public
    return "SHA256:" + base64.b64encode(hashlib.sha256(wire).digest()).decode().rstrip("=")


class PrivateKey:
    """A signer's key: signs manifests, and knows its own fingerprint."""

    def __init__(self, key):
        from cryptography.hazmat.primitives import serialization

        self._key = key
        self.public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.fingerprint = fingerprint(self.public)

    def sign(self, data: bytes) -> dict:
        return {"alg": ALGORITHM, "key": self.public.hex(), "sig": self._key.sign(DOMAIN + data).hex()}

    def __repr__(self):
        return f"PrivateKey({self.fingerprint})"


def load_private(value: str, setting: str) -> PrivateKey:
    """The key in ``value``: PEM (PKCS#8) or OpenSSH text, or the path of a
    file holding it. Raises :class:`BadKey` naming ``setting``."""
    text = value if "-----BEGIN" in value else None
    path = None
    if text is None:
        path = os.path.expanduser(value.strip())
        try:
            with open(path, "rb") as f:
                data = f.read(64 << 10)
        except OSError as exc:
            raise BadKey(f"{setting}: cannot read {path} ({exc.strerror or exc})") from None
        st = os.stat(path)
        return _parse(data, setting, (path, st.st_mtime_ns, st.st_size))
    return _parse(text.encode(), setting, None)


@functools.lru_cache(maxsize=8)
def _parse(data: bytes, setting: str, _stamp) -> PrivateKey:
    ed25519 = _crypto()
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    loaders = (serialization.load_pem_private_key, serialization.load_ssh_private_key)
    problem = "not a PEM or OpenSSH private key"
    for load in loaders:
        try:
            key = load(data, password=None)
        except TypeError:  # encrypted: a password would be needed
            problem = "the key is encrypted with a passphrase; use an unencrypted key file only you can read"
            continue
        except (ValueError, IndexError, UnsupportedAlgorithm):
            continue
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise BadKey(f"{setting}: not an Ed25519 key ({type(key).__name__})")
        return PrivateKey(key)
    raise BadKey(f"{setting}: {problem}")


def parse_trusted(value, setting: str) -> frozenset:
    """Fingerprints from a comma- or space-separated string (or a list)."""
    items = re.split(r"[\s,]+", value) if isinstance(value, str) else list(value or ())
    out = set()
    for item in items:
        item = item.strip() if isinstance(item, str) else item
        if not item:
            continue
        if not isinstance(item, str) or not FINGERPRINT_RE.match(item):
            raise BadKey(f"{setting}: {item!r} is not a key fingerprint (like SHA256:<43 base64 characters>, "
                            "as `ipy-lazycache keygen` or `ssh-keygen -lf` print it)")
        out.add(item)
    return frozenset(out)


def signed_by(sig: dict) -> str | None:
    """The fingerprint of the key an Ed25519 signature names, or None if malformed."""
    key = sig.get("key")
    if not (isinstance(key, str) and len(key) == 64 and _HEX.match(key) and isinstance(sig.get("sig"), str)):
        return None
    return fingerprint(bytes.fromhex(key))


def verify(sig: dict, data: bytes) -> bool:
    """Whether ``sig`` (already known to name a trusted key) signs ``data``."""
    s = sig["sig"]
    if len(s) != 128 or not _HEX.match(s):
        return False
    ed25519 = _crypto()
    from cryptography.exceptions import InvalidSignature

    try:
        ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(sig["key"])).verify(bytes.fromhex(s), DOMAIN + data)
    except InvalidSignature:
        return False
    return True


def generate(path: str) -> PrivateKey:
    """Write a new private key to ``path`` (PKCS#8 PEM, mode 0600, never over
    an existing file) and its public key to ``path.pub`` (OpenSSH format)."""
    ed25519 = _crypto()
    from cryptography.hazmat.primitives import serialization

    for target in (path, path + ".pub"):
        if os.path.lexists(target):
            raise BadKey(f"{target} exists; not replacing a key")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    for target, data, mode in ((path, pem, 0o600), (path + ".pub", pub + b" ipy_lazycache\n", 0o644)):
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return PrivateKey(key)

"""Ed25519 signing keys of the governance service (through ``cryptography``).

Two keys, each in ``<data_dir>/keys/<name>.ed25519`` (PEM, mode 0600):

- ``consent``: signs the consent-and-policy documents agents fetch;
  agents hold its public key (``tracework consent public-key``).
- ``audit``: signs the heads of the audit log.

They are separate so that the key an agent trusts cannot sign audit heads.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ConfigError


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short stable name of a public key: first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_b64(public_key: Ed25519PublicKey) -> str:
    """Raw public key bytes, base64: the form given to agents and verifiers."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public_key(value: str | bytes | Ed25519PublicKey) -> Ed25519PublicKey:
    """A public key from base64 raw bytes, PEM text, or a key object."""
    if isinstance(value, Ed25519PublicKey):
        return value
    data = value.encode() if isinstance(value, str) else value
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(data, validate=True))
    except ValueError as exc:
        raise ConfigError(
            f"not an Ed25519 public key: {exc}",
            hint="pass the value printed by `tracework consent public-key`",
        ) from None


@dataclass
class SigningKey:
    """A private Ed25519 key with helpers for detached base64 signatures."""

    private: Ed25519PrivateKey

    @functools.cached_property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @functools.cached_property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, data: bytes) -> str:
        """Detached signature of ``data``, base64."""
        return base64.b64encode(self.private.sign(data)).decode()


def verify_signature(public_key: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    """True when ``signature_b64`` is a valid signature of ``data``."""
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), data)
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def load_or_create_key(data_dir: str | Path, name: str) -> SigningKey:
    """The named key from ``<data_dir>/keys``, created on first use."""
    path = Path(data_dir) / "keys" / f"{name}.ed25519"
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as exc:
            raise ConfigError(f"{path} is not a readable private key ({exc})", hint="restore it from backup") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{path} is not an Ed25519 key", hint="restore it from backup")
        return SigningKey(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Write-then-rename with 0600 from the start: the key is never readable by others,
    # and two processes starting at once cannot leave a half-written file.
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    try:
        os.link(tmp, path)  # fails if another process won the race
    except FileExistsError:
        os.unlink(tmp)
        return load_or_create_key(data_dir, name)
    os.unlink(tmp)
    return SigningKey(key)

"""Devices and their upload tokens (``<data_dir>/governance.db``).

A device is enrolled for a person and receives a random bearer token once.
Only the token's SHA-256 is stored; authentication hashes the presented token
and looks the hash up. Looking up by a hash of a 256-bit secret leaks nothing
useful through timing (an attacker cannot steer the hash), which is what makes
this a constant-time comparison in effect; the final equality check uses
:func:`hmac.compare_digest` as well.

Public API (kept small and stable; governance extends it):

    DeviceRegistry(data_dir)
        .enroll(person_id, name) -> (device_id, token)
        .authenticate(token) -> DeviceIdentity | None
        .check(token) -> AuthResult (identity or the reason it failed)
        .revoke(device_id, reason="revoked") -> bool
        .list() -> list[DeviceRecord]
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import GovernanceError
from ..privacy.pseudonym import pseudonym
from .db import ThreadLocalConnections, ensure_schema, store_location
from .keys import PseudonymKeyring

TOKEN_BYTES = 32
#: Devices whose pseudonyms a registry remembers (two short strings each);
#: more active devices than this only cost recomputing some HMACs.
PSEUDONYM_CACHE_SIZE = 4096

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS devices (
        device_id TEXT PRIMARY KEY,
        person_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        token_sha256 BLOB NOT NULL UNIQUE,
        enrolled_ns INTEGER NOT NULL,
        revoked_ns INTEGER,
        revoke_reason TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS devices_person ON devices (person_id)",
]


@dataclass(frozen=True)
class DeviceIdentity:
    """Who an authenticated request comes from. The pseudonyms are what reaches
    the lake; ``person_id`` and ``device_id`` stay in governance."""

    device_id: str
    person_id: str
    person_pseudonym: str
    device_pseudonym: str


@dataclass(frozen=True)
class AuthResult:
    """Outcome of :meth:`DeviceRegistry.check`: an identity, or why there is none
    (``missing``, ``unknown`` or ``revoked``)."""

    identity: DeviceIdentity | None
    reason: str | None = None


@dataclass(frozen=True)
class DeviceRecord:
    device_id: str
    person_id: str
    name: str
    enrolled_ns: int
    revoked_ns: int | None
    revoke_reason: str | None

    @property
    def active(self) -> bool:
        return self.revoked_ns is None


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _device_pseudonyms(key: bytes, person_id: str, device_id: str) -> tuple[str, str]:
    """(person pseudonym, device pseudonym) under ``key``."""
    return pseudonym(key, "person", person_id), pseudonym(key, "device", device_id)


#: The device of a token hash and the current pseudonym key (created in
#: keys.py's table ``pseudonym_keys``; one row has current = 1), read in one
#: statement: one round trip per request, and both from the same snapshot.
_CHECK_SQL = (
    "SELECT d.device_id, d.person_id, d.token_sha256, d.revoked_ns, k.key "
    "FROM devices AS d LEFT JOIN pseudonym_keys AS k ON k.current = 1 WHERE d.token_sha256 = ?"
)


class DeviceRegistry:
    """Enrolled devices, backed by the governance store of ``data_dir``."""

    def __init__(self, data_dir: str | Path, *, store_url: str | None = None):
        # PostgreSQL when ``store_url`` (or TRACEWORK_GOVERNANCE_STORE) names
        # one, so several collectors share devices and one pseudonym key.
        self.path = store_location(data_dir, store_url)
        self._conns = ThreadLocalConnections(self.path)
        ensure_schema(self._conns.get(), "devices", 1, _SCHEMA)
        self.keyring = PseudonymKeyring(connections=self._conns)
        # Fetch (creating if needed) the key now so the first request does not pay for it.
        self.keyring.current()
        # Per registry, keyed by the key itself (not its id), so a rotation
        # starts afresh and entries of a retired key are pushed out by use.
        self._pseudonyms = functools.lru_cache(maxsize=PSEUDONYM_CACHE_SIZE)(_device_pseudonyms)

    def enroll(self, person_id: str, name: str = "") -> tuple[str, str]:
        """Register a device for ``person_id``; returns ``(device_id, token)``.
        The token is shown only here: it is stored as a SHA-256 hash."""
        person_id = (person_id or "").strip()
        if not person_id:
            raise GovernanceError("a device must be enrolled for a person", hint="pass --person <id>")
        if len(person_id) > 256 or len(name) > 256:
            raise GovernanceError("person id and device name must be at most 256 characters")
        device_id = "dev_" + secrets.token_hex(8)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self._conns.get().execute(
            "INSERT INTO devices (device_id, person_id, name, token_sha256, enrolled_ns) VALUES (?, ?, ?, ?, ?)",
            (device_id, person_id, name, _hash(token), time.time_ns()),
        )
        return device_id, token

    def check(self, token: str | None) -> AuthResult:
        """Authenticate ``token`` and say why when it fails.

        Every call reads the device's row (so a revocation, also by another
        process on the same store, refuses the very next request) and the
        current pseudonym key (so a rotation applies to the very next
        request), in one statement; only the pseudonyms, a pure function of
        key and ids, are remembered (``self._pseudonyms``, per key)."""
        if not token:
            return AuthResult(None, "missing")
        digest = _hash(token)
        row = self._conns.get().execute(_CHECK_SQL, (digest,)).fetchone()
        if row is None or not hmac.compare_digest(bytes(row[2]), digest):
            return AuthResult(None, "unknown")
        if row[3] is not None:
            return AuthResult(None, "revoked")
        device_id, person_id = row[0], row[1]
        # No current key (none created yet): the keyring creates it.
        key = self.keyring.current().key if row[4] is None else bytes(row[4])
        person_pseudonym, device_pseudonym = self._pseudonyms(key, person_id, device_id)
        return AuthResult(
            DeviceIdentity(
                device_id=device_id,
                person_id=person_id,
                person_pseudonym=person_pseudonym,
                device_pseudonym=device_pseudonym,
            )
        )

    def authenticate(self, token: str | None) -> DeviceIdentity | None:
        """The identity behind ``token``, or None when it is missing, unknown or
        revoked (use :meth:`check` to learn which)."""
        return self.check(token).identity

    def revoke(self, device_id: str, reason: str = "revoked") -> bool:
        """Revoke a device's token at once; returns False if the device is unknown
        or already revoked. Its data stays (erasure is a separate request)."""
        cur = self._conns.get().execute(
            "UPDATE devices SET revoked_ns = ?, revoke_reason = ? WHERE device_id = ? AND revoked_ns IS NULL",
            (time.time_ns(), reason, device_id),
        )
        return cur.rowcount == 1

    def get(self, device_id: str) -> DeviceRecord | None:
        """One device, or None."""
        rows = self._select("WHERE device_id = ?", (device_id,))
        return rows[0] if rows else None

    def list(self, person_id: str | None = None) -> list[DeviceRecord]:
        """Every device (of one person when given), oldest first."""
        if person_id is None:
            return self._select("", ())
        return self._select("WHERE person_id = ?", (person_id,))

    def _select(self, where: str, args: tuple) -> list[DeviceRecord]:
        try:
            rows = self._conns.get().execute(
                "SELECT device_id, person_id, name, enrolled_ns, revoked_ns, revoke_reason FROM devices "
                f"{where} ORDER BY enrolled_ns",
                args,
            ).fetchall()
        except (sqlite3.Error, OSError) as exc:
            raise GovernanceError(f"the governance store {self.path} is unreadable: {exc}") from None
        return [DeviceRecord(*r) for r in rows]

    def close(self) -> None:
        """Close the registry's database connections."""
        self._conns.close()

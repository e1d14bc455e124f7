"""The pseudonym key, kept in the governance store and nowhere else.

32 random bytes are created on first use. Keys have ids so they can be
rotated later: a new key becomes *current* and new data is pseudonymised with
it, while old keys stay available to the privacy officer to map old
pseudonyms (the procedure is described in docs/governance.md by the
governance owner). The key is never written to the lake, logs or responses.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..privacy.pseudonym import pseudonym
from .db import ThreadLocalConnections, connect, ensure_schema, store_location, transaction

KEY_BYTES = 32

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS pseudonym_keys (
        key_id INTEGER PRIMARY KEY,
        key BLOB NOT NULL,
        created_ns INTEGER NOT NULL,
        current INTEGER NOT NULL DEFAULT 0
    )""",
]


@dataclass(frozen=True)
class PseudonymKey:
    key_id: int
    key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"PseudonymKey(key_id={self.key_id}, key=<{len(self.key)} bytes>)"


class PseudonymKeyring:
    """The pseudonym keys in ``<data_dir>/governance.db``.

    ``current()`` returns the key new data is pseudonymised with, creating it
    on first use (two processes racing to create it end up with the same key:
    creation runs in one IMMEDIATE transaction).
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        conn: sqlite3.Connection | None = None,
        connections: ThreadLocalConnections | None = None,
        store_url: str | None = None,
    ):
        # ``connections`` (one per thread) is for multi-threaded users such as
        # the collector; ``conn`` for single-threaded tools.
        if connections is not None:
            self._get_conn = connections.get
        else:
            if conn is None:
                if data_dir is None:
                    raise ValueError("give data_dir, conn or connections")
                conn = connect(store_location(data_dir, store_url))
            self._get_conn = lambda: conn
        ensure_schema(self._conn, "pseudonym_keys", 1, _SCHEMA)

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._get_conn()

    def current(self) -> PseudonymKey:
        """The current key (created on first call)."""
        row = self._conn.execute("SELECT key_id, key FROM pseudonym_keys WHERE current = 1").fetchone()
        if row is None:
            with transaction(self._conn):
                row = self._conn.execute("SELECT key_id, key FROM pseudonym_keys WHERE current = 1").fetchone()
                if row is None:
                    key = secrets.token_bytes(KEY_BYTES)
                    cur = self._conn.execute(
                        "INSERT INTO pseudonym_keys (key, created_ns, current) VALUES (?, ?, 1)",
                        (key, time.time_ns()),
                    )
                    row = (cur.lastrowid, key)
        return PseudonymKey(key_id=row[0], key=bytes(row[1]))

    @property
    def current_key_id(self) -> int:
        """Id of the current key."""
        return self.current().key_id

    def get(self, key_id: int) -> PseudonymKey | None:
        """A key by id (current or retired), or None."""
        row = self._conn.execute("SELECT key_id, key FROM pseudonym_keys WHERE key_id = ?", (key_id,)).fetchone()
        return None if row is None else PseudonymKey(key_id=row[0], key=bytes(row[1]))

    def rotate(self) -> PseudonymKey:
        """Make a fresh random key current; older keys are kept (retired)."""
        with transaction(self._conn):
            self._conn.execute("UPDATE pseudonym_keys SET current = 0 WHERE current = 1")
            key = secrets.token_bytes(KEY_BYTES)
            cur = self._conn.execute(
                "INSERT INTO pseudonym_keys (key, created_ns, current) VALUES (?, ?, 1)", (key, time.time_ns())
            )
        return PseudonymKey(key_id=cur.lastrowid, key=key)

    def pseudonym(self, kind: str, identifier: str, key_id: int | None = None) -> str:
        """Pseudonym of ``identifier`` under the current key (or ``key_id``)."""
        key = self.current() if key_id is None else self.get(key_id)
        if key is None:
            raise KeyError(f"no pseudonym key with id {key_id}")
        return pseudonym(key.key, kind, identifier)

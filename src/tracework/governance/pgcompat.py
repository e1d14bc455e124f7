"""A sqlite3-style connection over PostgreSQL, so the modules written against
the small SQLite helper (``db``: device registry, pseudonym keyring) run
unchanged on the PostgreSQL governance store.

Only what those modules use is provided: ``execute(sql, params)`` returning a
cursor with ``fetchone``/``fetchall``/``rowcount``/``lastrowid``, and
``close``. Their SQL is rewritten on the way:

- ``?`` placeholders become ``%s``;
- ``BLOB`` becomes ``BYTEA``; ``INTEGER PRIMARY KEY`` (SQLite's rowid alias,
  which numbers rows by itself) becomes ``BIGSERIAL PRIMARY KEY`` and any other
  ``INTEGER`` ``BIGINT`` (SQLite integers are 64-bit); a trailing
  ``WITHOUT ROWID`` is dropped;
- ``PRAGMA`` statements are ignored (SQLite tuning);
- ``BEGIN IMMEDIATE`` (SQLite: take the write lock now) becomes ``BEGIN`` plus
  a transaction-scoped advisory lock, which serialises read-then-write
  sections across processes the same way;
- an ``INSERT`` into a table with a serial key gets ``RETURNING`` so that
  ``lastrowid`` works.
"""

from __future__ import annotations

import re

#: Advisory lock id taken by ``BEGIN IMMEDIATE`` (any constant; "trwk").
_WRITE_LOCK = 0x7472776B

# Table -> its serial key column. Learnt from DDL, and seeded with the
# keyring's table because a process that finds the schema already created
# never runs that DDL but still needs ``lastrowid`` after its inserts.
_SERIAL_TABLES: dict[str, str] = {"pseudonym_keys": "key_id"}


def is_postgres_url(value) -> bool:
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def _translate(sql: str) -> str | None:
    stripped = sql.strip()
    upper = stripped.upper()
    if upper.startswith("PRAGMA"):
        return None
    if upper == "BEGIN IMMEDIATE":
        return "BEGIN"
    if upper.startswith("CREATE TABLE"):
        m = re.search(r"CREATE TABLE IF NOT EXISTS\s+(\w+)\s*\(\s*(\w+)\s+INTEGER PRIMARY KEY", stripped, re.I)
        if m:
            _SERIAL_TABLES[m.group(1).lower()] = m.group(2)
        stripped = re.sub(r"\bINTEGER PRIMARY KEY\b", "BIGSERIAL PRIMARY KEY", stripped, flags=re.I)
        # SQLite integers are 64-bit (nanosecond times need it); PostgreSQL's INTEGER is not.
        stripped = re.sub(r"\bINTEGER\b", "BIGINT", stripped, flags=re.I)
        stripped = re.sub(r"\bBLOB\b", "BYTEA", stripped, flags=re.I)
        stripped = re.sub(r"\)\s*WITHOUT ROWID\s*$", ")", stripped, flags=re.I)
    m = re.match(r"INSERT INTO\s+(\w+)", stripped, re.I)
    if m and m.group(1).lower() in _SERIAL_TABLES and "RETURNING" not in upper:
        stripped += f" RETURNING {_SERIAL_TABLES[m.group(1).lower()]}"
    return stripped.replace("%", "%%").replace("?", "%s")


class _Cursor:
    def __init__(self, cursor=None, returning: bool = False):
        self._cursor = cursor
        self.rowcount = cursor.rowcount if cursor is not None else -1
        self.lastrowid = None
        self._rows = None
        if returning and cursor is not None:
            row = cursor.fetchone()
            self.lastrowid = row[0] if row else None
            self._rows = []

    def fetchone(self):
        if self._rows is not None or self._cursor is None or self._cursor.description is None:
            return None
        row = self._cursor.fetchone()
        return tuple(row) if row is not None else None

    def fetchall(self):
        if self._rows is not None or self._cursor is None or self._cursor.description is None:
            return []
        return [tuple(r) for r in self._cursor.fetchall()]


class PgCompatConnection:
    """sqlite3.Connection-like access to a PostgreSQL database (autocommit
    outside explicit BEGIN … COMMIT, like ``isolation_level=None``)."""

    def __init__(self, url: str):
        import psycopg

        from ..errors import ConfigError

        try:
            self._conn = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise ConfigError(
                f"cannot connect to the governance database: {str(exc).strip()}",
                hint="check the PostgreSQL URL and that the server is running",
            ) from None

    def execute(self, sql: str, params=()):
        translated = _translate(sql)
        if translated is None:
            return _Cursor()
        cursor = self._conn.execute(translated, tuple(bytes(p) if isinstance(p, memoryview) else p for p in params))
        if translated == "BEGIN":
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
        return _Cursor(cursor, returning=translated.endswith(tuple(f"RETURNING {c}" for c in _SERIAL_TABLES.values())))

    def close(self) -> None:
        self._conn.close()

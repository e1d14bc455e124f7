"""One store interface for governance records, two backends.

``SQLiteStore`` (the embedded default: ``<data_dir>/governance.db``) and
``PostgresStore`` (the production option) run the same portable SQL: the
services in this package write ``?`` placeholders and plain types (TEXT,
BIGINT), and the Postgres backend rewrites the placeholders. Every governance
test runs against both backends (tests/governance/conftest.py).

Choose the backend with :func:`open_store`: an empty URL (or ``sqlite:///path``)
gives SQLite, ``postgresql://...`` gives PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Protocol

from ..errors import ConfigError, GovernanceError

# Tables are prefixed ``gov_`` because the SQLite file is shared with the
# collector's device registry (tracework.governance.devices).
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS gov_people (
        person_id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        team TEXT NOT NULL,
        created_ns BIGINT NOT NULL,
        status TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS gov_consent_events (
        id BIGINT PRIMARY KEY,
        person_id TEXT NOT NULL,
        purpose TEXT NOT NULL,
        action TEXT NOT NULL,
        classes TEXT NOT NULL,
        notice_version INTEGER NOT NULL,
        at_ns BIGINT NOT NULL,
        actor TEXT NOT NULL,
        request_id TEXT UNIQUE
    )""",
    "CREATE INDEX IF NOT EXISTS gov_consent_person ON gov_consent_events (person_id, purpose, id)",
    """CREATE TABLE IF NOT EXISTS gov_tokens (
        token_hash TEXT PRIMARY KEY,
        token_id TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        person_id TEXT,
        label TEXT NOT NULL,
        created_ns BIGINT NOT NULL,
        revoked_ns BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS gov_audit (
        seq BIGINT PRIMARY KEY,
        at_ns BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS gov_audit_heads (
        seq BIGINT PRIMARY KEY,
        hash TEXT NOT NULL,
        signed_ns BIGINT NOT NULL,
        signature TEXT NOT NULL,
        key_id TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS gov_policy (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_ns BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS gov_requests (
        request_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        at_ns BIGINT NOT NULL,
        status TEXT NOT NULL,
        result TEXT NOT NULL
    )""",
]


class Store(Protocol):
    """What the governance services need from a database."""

    backend: str

    def execute(self, sql: str, params: tuple = ()) -> int:
        """Run one statement; returns the number of rows changed."""

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run a query and return all rows."""

    def transaction(self, lock: str | None = None):
        """Context manager: statements inside commit together or not at all.
        ``lock`` names a table to lock against concurrent writers (the audit
        chain needs appends serialised)."""

    def close(self) -> None:
        """Release the connection."""


class SQLiteStore:
    """Embedded store in one SQLite file (WAL mode, so readers do not block the writer)."""

    backend = "sqlite"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so a
        # transaction spans exactly the statements we mean.
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._lock = threading.RLock()
        self._depth = 0
        for stmt in SCHEMA:
            self._conn.execute(stmt)

    def execute(self, sql: str, params: tuple = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, params).rowcount

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[None]:
        with self._lock:
            if self._depth:  # nested: the outer transaction decides
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            # IMMEDIATE takes the write lock up front, which serialises
            # audit appends across processes sharing the file.
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresStore:
    """Production store on PostgreSQL (psycopg 3)."""

    backend = "postgresql"

    def __init__(self, dsn: str):
        import psycopg

        try:
            self._conn = psycopg.connect(dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise ConfigError(
                f"cannot connect to the governance database: {str(exc).strip()}",
                hint="check the PostgreSQL URL and that the server is running",
            ) from None
        self._lock = threading.RLock()
        self._depth = 0
        with self._conn.transaction():
            # Several processes may open the store at once on first start;
            # the advisory lock keeps their CREATE TABLE IF NOT EXISTS apart.
            self._conn.execute("SELECT pg_advisory_xact_lock(74657276)")
            for stmt in SCHEMA:
                self._conn.execute(stmt)

    @staticmethod
    def _sql(sql: str) -> str:
        # Portable SQL uses '?'; psycopg wants '%s'. No statement in this
        # package has a literal '?' or '%' so the rewrite is safe.
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, params: tuple = ()) -> int:
        with self._lock:
            return self._conn.execute(self._sql(sql), params).rowcount

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(self._sql(sql), params).fetchall()

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[None]:
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                with self._conn.transaction():
                    if lock:
                        if not lock.isidentifier():
                            raise GovernanceError(f"bad table name {lock!r}")
                        self._conn.execute(f"LOCK TABLE {lock} IN SHARE ROW EXCLUSIVE MODE")
                    yield
            finally:
                self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_store(url: str | None, data_dir: str | Path) -> Store:
    """The store named by ``url``: empty = SQLite in ``<data_dir>/governance.db``,
    ``sqlite:///path`` = SQLite at path, ``postgresql://...`` = PostgreSQL."""
    if not url:
        return SQLiteStore(Path(data_dir) / "governance.db")
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///") :])
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    raise ConfigError(
        f"unknown governance store URL {url!r}",
        hint="use an empty value (SQLite in the data folder), sqlite:///path or postgresql://...",
    )


def next_id(store: Store, table: str, column: str) -> int:
    """Next integer key for ``table`` (call inside a locked transaction)."""
    row = store.query(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")
    return int(row[0][0]) + 1


def as_int(value: Any) -> int:
    return int(value) if value is not None else 0

"""A small SQLite helper for the governance store (``<data_dir>/governance.db``).

Every connection runs in WAL mode (readers never block the collector's writes,
and several processes — the collector and the CLI — share the file), with
foreign keys enforced and a busy timeout so short write contention waits
instead of failing. Schemas are created idempotently by the modules that own
their tables via :func:`ensure_schema`.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

GOVERNANCE_DB = "governance.db"
BUSY_TIMEOUT_MS = 10_000


def governance_db_path(data_dir: str | Path) -> Path:
    """Path of the governance store inside a data folder."""
    return Path(data_dir) / GOVERNANCE_DB


def store_location(data_dir: str | Path, store_url: str | None = None) -> str | Path:
    """Where the governance tables live: ``store_url`` when it is a PostgreSQL
    URL (given, or from ``TRACEWORK_GOVERNANCE_STORE``), else ``<data_dir>/governance.db``."""
    from .pgcompat import is_postgres_url

    url = store_url if store_url is not None else governance_store_setting()
    return url if is_postgres_url(url) else governance_db_path(data_dir)


#: ``synchronous`` levels a caller may choose (see :func:`connect`).
SYNCHRONOUS_LEVELS = ("FULL", "NORMAL")


def connect(path: str | Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open (creating the folder if needed) a SQLite database with WAL, foreign keys
    and a busy timeout. The connection is in autocommit mode: use
    ``with transaction(conn):`` for multi-statement atomic changes.

    ``synchronous`` is FULL (every commit survives power loss) unless the caller
    owns a store that can rebuild its newest transactions from elsewhere and
    asks for NORMAL (in WAL mode a power cut may then roll back the last
    transactions whole; the file stays consistent). Governance tables
    (devices, consent, audit) always use FULL. Ignored for PostgreSQL.

    ``path`` may also be a ``postgresql://`` URL (the production governance
    store): the result is then a sqlite3-style connection over PostgreSQL
    (:mod:`tracework.governance.pgcompat`) that runs the same statements."""
    from .pgcompat import PgCompatConnection, is_postgres_url

    if synchronous not in SYNCHRONOUS_LEVELS:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS_LEVELS}, not {synchronous!r}")
    if is_postgres_url(path):
        return PgCompatConnection(path)  # type: ignore[return-value]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL by default: a committed change survives power loss (consent, device
    # and audit changes must). The collector's batch ledger opts into NORMAL:
    # its rows are rebuilt from the Delta log at every start (see
    # tracework.collector.ledger), so losing its newest rows loses nothing.
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class transaction:
    """``with transaction(conn):`` runs the block in BEGIN IMMEDIATE … COMMIT
    (ROLLBACK on error). IMMEDIATE takes the write lock up front so two
    processes cannot both read-then-write the same rows."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def ensure_schema(conn: sqlite3.Connection, component: str, version: int, statements: list[str]) -> None:
    """Create ``component``'s tables once. ``statements`` must be idempotent
    (``CREATE TABLE IF NOT EXISTS``); the applied version is recorded in
    ``schema_versions`` so later versions can add migrations."""
    with transaction(conn):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        row = conn.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
        if row is not None and row[0] >= version:
            return
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
            "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
            (component, version),
        )


class ThreadLocalConnections:
    """One SQLite connection per thread for a database path (sqlite3 connections
    must not be used from two threads at once; the collector authenticates on
    many worker threads)."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL"):
        from .pgcompat import is_postgres_url

        self.path = path if is_postgres_url(path) else Path(path)
        self.synchronous = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, synchronous=self.synchronous)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection opened through this object."""
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - closing must go on for the others
                    pass
            self._all.clear()
        self._local = threading.local()


def governance_store_setting() -> str:
    """The ``governance.store`` setting (environment ``TRACEWORK_GOVERNANCE_STORE``
    or ``[governance] store`` in tracework.toml); empty means SQLite in the data folder."""
    from .. import config

    return config.load()["governance.store"]

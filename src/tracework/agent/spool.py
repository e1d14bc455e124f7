"""The agent's durable spool: SQLite in WAL mode, one file in the agent home.

Rules (see docs/agent.md):

* Events arrive here only after the privacy pipeline; the flusher appends them
  in one transaction per flush, and assigns ``seq`` in that transaction, so
  ``seq`` is strictly increasing per device across sessions and restarts and a
  committed flush is never lost (``synchronous=FULL``: a commit survives
  kill -9 and power loss).
* The uploader forms a batch from the oldest events and records its id and seq
  range *before* sending; after a crash the same id and range are resent, so
  the collector's idempotency makes the resend harmless.
* Events leave the spool only when the collector acknowledged their batch
  (2xx), or when it refused the batch for good (4xx other than 401/403), in
  which case they move to ``dead_letter`` and are reported, never dropped.
* Disk use is bounded by ``agent.max_spool_bytes``; the agent stops capture
  when it is reached (see :class:`tracework.agent.runner.Agent`). A real
  ``SQLITE_FULL`` (disk full) raises :class:`SpoolFullError` and the flush is
  kept in memory to be retried, never dropped.

Tables::

    events(seq PRIMARY KEY, data)        data = the event's wire JSON line
    batches(batch_id, first_seq, last_seq, event_count, created_ns, attempts)
    dead_letter(batch_id, first_seq, last_seq, status, code, message, body, at_ns)
    kv(key, value)                       counters, agent state, control requests
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import msgspec

from ..errors import SpoolFullError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead_letter (
    batch_id TEXT PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    status INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    body BLOB NOT NULL,
    at_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_encoder = msgspec.json.Encoder()

# WAL files are not shrunk after a checkpoint unless told to; without this limit
# a burst could leave a large -wal file behind and break the disk bound.
_JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True)
class Batch:
    """A batch formed from the spool: its id and seq range are persisted."""

    batch_id: str
    first_seq: int
    last_seq: int
    lines: list[bytes]
    attempts: int


@dataclass(frozen=True)
class DeadLetter:
    batch_id: str
    first_seq: int
    last_seq: int
    status: int
    code: str
    message: str
    event_count: int


def _is_full(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc)


class Spool:
    """One connection to the spool file. Use one instance per thread."""

    def __init__(self, path: str | Path, *, timeout_s: float = 10.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so that a
        # flush is exactly one transaction.
        self.db = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(f"PRAGMA journal_size_limit={_JOURNAL_SIZE_LIMIT}")
        self.db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        try:
            self.db.executescript(_SCHEMA)
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                raise SpoolFullError(f"the spool {self.path} cannot be created: the disk is full",
                                     hint="free disk space in the agent home") from None
            raise
        try:
            os.chmod(self.path, 0o600)
        except OSError:
            pass

    def close(self) -> None:
        self.db.close()

    # ---- key/value state -------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def set_many(self, values: dict[str, Any]) -> None:
        self._write(lambda: self.db.executemany(
            "INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)",
            [(k, json.dumps(v)) for k, v in values.items()],
        ))

    def _write(self, fn):
        """Run ``fn`` in one write transaction; SQLITE_FULL becomes SpoolFullError."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                result = fn()
                self.db.execute("COMMIT")
                return result
            except BaseException:
                # SQLITE_FULL may already have rolled the transaction back.
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                raise SpoolFullError(
                    f"the spool {self.path} is full (the disk or the database size limit was reached)",
                    hint="free disk space in the agent home or raise agent.max_spool_bytes; "
                    "capture resumes by itself when uploads drain the spool",
                ) from None
            raise

    # ---- events ------------------------------------------------------------

    def next_seq(self) -> int:
        return int(self.get("next_seq", 0))

    def append(self, events: Sequence[msgspec.Struct]) -> int:
        """Assign ``seq`` to ``events`` and store them in one transaction.

        Returns the number stored. On :class:`SpoolFullError` nothing was
        stored and ``seq`` did not advance; the caller keeps the events and
        retries later.
        """
        if not events:
            return 0

        def write() -> int:
            first = self.next_seq()
            rows = []
            for offset, ev in enumerate(events):
                ev.seq = first + offset
                rows.append((ev.seq, _encoder.encode(ev)))
            self.db.executemany("INSERT INTO events(seq, data) VALUES (?, ?)", rows)
            self.set("next_seq", first + len(rows))
            return len(rows)

        return self._write(write)

    def append_lines(self, rows: Sequence[tuple[int, bytes]], next_seq: int) -> None:
        """Store already-encoded rows (used by benchmarks' naive baseline)."""
        def write() -> None:
            self.db.executemany("INSERT INTO events(seq, data) VALUES (?, ?)", rows)
            self.set("next_seq", next_seq)

        self._write(write)

    def pending(self) -> tuple[int, int]:
        """(events waiting to be uploaded, their bytes)."""
        n, size = self.db.execute("SELECT count(*), coalesce(sum(length(data)), 0) FROM events").fetchone()
        return int(n), int(size)

    def used_bytes(self) -> int:
        """Bytes the spool holds on disk, not counting free pages SQLite will reuse."""
        page_size = self.db.execute("PRAGMA page_size").fetchone()[0]
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        wal = Path(str(self.path) + "-wal")
        wal_size = wal.stat().st_size if wal.exists() else 0
        return (pages - free) * page_size + wal_size

    def checkpoint(self) -> None:
        """Fold the WAL into the database and truncate it (keeps disk use bounded)."""
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass  # busy: the next checkpoint will do it

    # ---- batches -------------------------------------------------------------

    def next_batch(self, max_events: int) -> Batch | None:
        """The oldest unacknowledged batch, or a new one formed from the oldest
        unbatched events (its id and range persisted before it is sent)."""
        row = self.db.execute(
            "SELECT batch_id, first_seq, last_seq, attempts FROM batches ORDER BY first_seq LIMIT 1"
        ).fetchone()
        if row:
            batch_id, first, last, attempts = row
            lines = [r[0] for r in self.db.execute(
                "SELECT data FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last))]
            if lines:
                return Batch(batch_id, first, last, lines, attempts)
            # Its events are gone (acknowledged by a run that crashed before
            # deleting the batch row): nothing left to send.
            self._write(lambda: self.db.execute("DELETE FROM batches WHERE batch_id=?", (batch_id,)))
            return self.next_batch(max_events)

        def form() -> Batch | None:
            top = self.db.execute("SELECT max(last_seq) FROM batches").fetchone()[0]
            start = -1 if top is None else top
            rows = self.db.execute(
                "SELECT seq, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (start, max_events)
            ).fetchall()
            if not rows:
                return None
            batch_id = uuid.uuid4().hex
            self.db.execute(
                "INSERT INTO batches(batch_id, first_seq, last_seq, event_count, created_ns) VALUES (?,?,?,?,?)",
                (batch_id, rows[0][0], rows[-1][0], len(rows), time.time_ns()),
            )
            return Batch(batch_id, rows[0][0], rows[-1][0], [r[1] for r in rows], 0)

        return self._write(form)

    def record_attempt(self, batch_id: str) -> None:
        self._write(lambda: self.db.execute(
            "UPDATE batches SET attempts = attempts + 1 WHERE batch_id=?", (batch_id,)))

    def ack(self, batch: Batch) -> None:
        """The collector stored the batch: remove its events, count them."""
        def write() -> None:
            self.db.execute("DELETE FROM events WHERE seq BETWEEN ? AND ?", (batch.first_seq, batch.last_seq))
            self.db.execute("DELETE FROM batches WHERE batch_id=?", (batch.batch_id,))
            self.set("uploaded_events", int(self.get("uploaded_events", 0)) + len(batch.lines))
            self.set("uploaded_batches", int(self.get("uploaded_batches", 0)) + 1)
            self.set("last_upload_ns", time.time_ns())

        self._write(write)

    def dead_letter(self, batch: Batch, status: int, code: str, message: str) -> None:
        """The collector refused the batch for good: keep it aside, with the reason."""
        def write() -> None:
            self.db.execute(
                "INSERT OR REPLACE INTO dead_letter(batch_id, first_seq, last_seq, status, code, message, body, at_ns)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (batch.batch_id, batch.first_seq, batch.last_seq, status, code, message,
                 b"\n".join(batch.lines), time.time_ns()),
            )
            self.db.execute("DELETE FROM events WHERE seq BETWEEN ? AND ?", (batch.first_seq, batch.last_seq))
            self.db.execute("DELETE FROM batches WHERE batch_id=?", (batch.batch_id,))
            self.set("dead_letter_events", int(self.get("dead_letter_events", 0)) + len(batch.lines))

        self._write(write)

    def dead_letters(self) -> list[DeadLetter]:
        rows = self.db.execute(
            "SELECT batch_id, first_seq, last_seq, status, code, message, last_seq - first_seq + 1"
            " FROM dead_letter ORDER BY first_seq"
        ).fetchall()
        return [DeadLetter(*r) for r in rows]

"""The batch ledger: which batches are already durable in the lake.

``<data_dir>/collector.db`` holds one row per committed batch, keyed by
(device pseudonym, batch id). The row is written *after* the Delta commit that
holds the batch, so the ledger can lag the lake (crash between the two) but
never lead it. That lag is closed at startup by :meth:`BatchLedger.reconcile`,
which reads the batch keys every newer Delta commit recorded in its
``commitInfo`` (or, if those log files are gone, scans the lake itself).

Because of that, the ledger's SQLite file runs with ``synchronous=NORMAL``
(one fsync fewer per group commit than FULL): after a power cut WAL mode may
roll back its newest transactions whole — batch rows together with the
``lake_version`` they advanced — which is the same lag as a crash between the
Delta commit (fsync'ed first) and the ledger row, and the same startup
reconciliation closes it before any request is served. A process crash loses
nothing either way. The governance store keeps FULL.

Erasure (:func:`forget_devices`) deletes every row of an erased person's
devices and leaves no copy of them in the file: their device pseudonyms and
batch ids say which device sent how many events when. Their devices are
revoked first (:func:`tracework.governance.requests.erase_person`), so a resent
old batch is refused at authentication and cannot be stored again although
the ledger no longer knows it. Reconciliation cannot bring the rows back
either: erasure removes the Delta log files that listed those batches.

Retention (:func:`forget_committed_before`) deletes, the same way, the rows of
batches committed so long ago that the collector's time window refuses any
resend of them anyway (422 ``events_too_old``); without it the file would keep
every device's batch ids long after the raw rows they name were deleted.
Because that rests on the collector's window, which can differ from the
settings retention reads or be widened later, the ledger also keeps:

- ``pruned_before_ns`` in ``ledger_state``: the largest cut-off any prune has
  used (written before its first delete). The collector reads it in the same
  statement as its duplicate look-up and refuses a batch too old for the
  ledger to still recognise (:meth:`BatchLedger.lookup`).
- the running collector's window (``collector.max_age_days``,
  ``collector.max_future_seconds``, and the largest ``max_future_seconds`` any
  collector on this ledger has run with), recorded at its start; retention
  computes its cut-off from the larger of these and its own settings.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..governance.db import ThreadLocalConnections, connect, ensure_schema, transaction
from ..lake import commit_metadata, open_table
from ..lake.layout import table_path
from ..lake.read import table_dataset

LEDGER_DB = "collector.db"
#: SQLite ``synchronous`` level of the ledger file (see the module docstring).
LEDGER_SYNCHRONOUS = "NORMAL"
#: Key in a Delta commit's commitInfo listing the batches the commit holds.
COMMIT_BATCHES_KEY = "tracework.batches"
#: Rows deleted per transaction by :func:`forget_committed_before`: each
#: transaction holds the ledger's write lock, which the collector's commits
#: wait for (at most the busy timeout), so a first prune of months of batch
#: rows must not hold it for one long delete.
PRUNE_CHUNK_ROWS = 5_000

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS batches (
        device TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        events INTEGER NOT NULL,
        lake_version INTEGER NOT NULL,
        committed_ns INTEGER NOT NULL,
        PRIMARY KEY (device, batch_id)
    ) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS ledger_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
]


#: ``ledger_state`` keys (values are integers).
PRUNED_BEFORE_KEY = "pruned_before_ns"
MAX_AGE_DAYS_KEY = "collector.max_age_days"
MAX_FUTURE_SECONDS_KEY = "collector.max_future_seconds"
#: The largest max_future_seconds of every collector start on this ledger: a
#: batch accepted by any of them has no event later than its commit + this.
MAX_FUTURE_SECONDS_SEEN_KEY = "collector.max_future_seconds_seen"

# One statement, so one read snapshot: a row missing because retention
# deleted it is never seen without the watermark written before the delete.
_LOOKUP_SQL = (
    "SELECT (SELECT 1 FROM batches WHERE device = ? AND batch_id = ?), "
    f"(SELECT value FROM ledger_state WHERE key = '{PRUNED_BEFORE_KEY}')"
)
_RAISE_STATE_SQL = (
    "INSERT INTO ledger_state (key, value) VALUES (?, ?) "
    "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)"
)
_SET_STATE_SQL = (
    "INSERT INTO ledger_state (key, value) VALUES (?, ?) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
)


def encode_commit_batches(keys: list[tuple[str, str, int]]) -> str:
    """commitInfo value for a commit holding ``(device, batch_id, events)`` batches."""
    return json.dumps([[d, b, n] for d, b, n in keys], separators=(",", ":"))


@contextmanager
def _erasing_connection(data_dir: str | Path) -> Iterator[sqlite3.Connection | None]:
    """A connection to ``<data_dir>/collector.db`` for deletes that must leave
    no copy of the deleted rows in the file or its WAL; None if there is no
    ledger (no file, or no batches table yet). Never creates the file."""
    path = Path(data_dir) / LEDGER_DB
    if not path.exists():
        yield None
        return
    conn = connect(path, synchronous=LEDGER_SYNCHRONOUS)
    try:
        # A deleted row's bytes stay in the page's free space unless
        # secure_delete zeroes them; SQLite builds differ in its default.
        conn.execute("PRAGMA secure_delete = ON")
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batches'").fetchone() is None:
            yield None
            return
        yield conn
        # The WAL still holds page images from before the delete: copy the
        # zeroed pages into the database file and cut the log to zero bytes.
        # If a reader holds an old snapshot the log cannot be cut yet; the
        # erasure's scan then still finds the rows and runs another round
        # (retention's next run or the collector's own checkpoints copy the
        # zeroed pages over the old ones).
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()


def forget_devices(data_dir: str | Path, devices: Iterable[str]) -> int:
    """Erasure: delete every batch row of these device pseudonyms from
    ``<data_dir>/collector.db`` (no file: nothing to do) and leave no copy of
    them in the database file or its WAL. Returns how many rows were deleted.

    Safe while a collector runs on the same file: the delete waits for the
    writer's lock like any ledger write, and another device's rows are untouched.
    The caller must have revoked the devices first (see the module docstring)."""
    devices = sorted(set(devices))
    if not devices:
        return 0
    with _erasing_connection(data_dir) as conn:
        if conn is None:
            return 0
        deleted = 0
        with transaction(conn):
            for device in devices:
                deleted += conn.execute("DELETE FROM batches WHERE device = ?", (device,)).rowcount
        if deleted:
            # secure_delete zeroes the deleted cells, but B-tree rebalancing
            # during earlier inserts left stale copies of rows in pages'
            # unallocated space, which no delete reaches (seen in about 4 % of
            # runs of tests/collector/test_ledger_erasure.py without this).
            # VACUUM writes every live row into fresh pages, so no old byte
            # survives in the file. It holds the write lock for the rewrite
            # (the collector's ledger writes wait, up to the busy timeout);
            # erasure is rare and retention keeps the ledger bounded.
            conn.execute("VACUUM")
    return deleted


def forget_committed_before(data_dir: str | Path, cutoff_ns: int, *, dry_run: bool = False) -> int:
    """Retention: delete every batch row committed before ``cutoff_ns`` from
    ``<data_dir>/collector.db`` with the same care as :func:`forget_devices`
    (secure_delete, WAL truncated). Returns how many rows were (with
    ``dry_run``: would be) deleted.

    Only safe for a cut-off past which the collector refuses every resend
    of a batch by its time window (see
    :func:`tracework.governance.retention.ledger_cutoff_ns`): the ledger then
    no longer needs to recognise those batches. Safe while a collector runs:
    rows are deleted a chunk per short transaction, found by primary key
    order so the whole run reads the table once."""
    if dry_run:
        return _count_committed_before(data_dir, cutoff_ns)
    with _erasing_connection(data_dir) as conn:
        if conn is None:
            return 0
        # The watermark goes in before any row goes, so the collector never
        # misses a deleted row without seeing it (see _LOOKUP_SQL). It only
        # grows: a later run with a narrower window does not un-forget rows.
        with transaction(conn):
            conn.execute(_RAISE_STATE_SQL, (PRUNED_BEFORE_KEY, cutoff_ns))
        deleted = 0
        after: tuple[str, str] | None = None
        while True:
            # Rows are never updated (INSERT OR IGNORE), so the keys read here
            # are still old when the delete below runs; the delete re-checks
            # the time all the same.
            if after is None:
                keys = conn.execute(
                    "SELECT device, batch_id FROM batches WHERE committed_ns < ? ORDER BY device, batch_id LIMIT ?",
                    (cutoff_ns, PRUNE_CHUNK_ROWS),
                ).fetchall()
            else:
                keys = conn.execute(
                    "SELECT device, batch_id FROM batches WHERE (device, batch_id) > (?, ?) AND committed_ns < ? "
                    "ORDER BY device, batch_id LIMIT ?",
                    (*after, cutoff_ns, PRUNE_CHUNK_ROWS),
                ).fetchall()
            if not keys:
                break
            with transaction(conn):
                deleted += conn.executemany(
                    "DELETE FROM batches WHERE device = ? AND batch_id = ? AND committed_ns < ?",
                    [(d, b, cutoff_ns) for d, b in keys],
                ).rowcount
            after = keys[-1]
    return deleted


def recorded_window(data_dir: str | Path) -> dict[str, int]:
    """The collector window recorded in ``<data_dir>/collector.db`` at the
    collector's last start: ``max_age_days`` and ``max_future_seconds`` (the
    largest any collector on this ledger ran with), each only if recorded.
    Never creates the file."""
    path = Path(data_dir) / LEDGER_DB
    if not path.exists():
        return {}
    conn = connect(path, synchronous=LEDGER_SYNCHRONOUS)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ledger_state'").fetchone() is None:
            return {}
        state = dict(conn.execute("SELECT key, value FROM ledger_state"))
    finally:
        conn.close()
    window = {}
    if MAX_AGE_DAYS_KEY in state:
        window["max_age_days"] = int(state[MAX_AGE_DAYS_KEY])
    futures = [int(state[k]) for k in (MAX_FUTURE_SECONDS_KEY, MAX_FUTURE_SECONDS_SEEN_KEY) if k in state]
    if futures:
        window["max_future_seconds"] = max(futures)
    return window


def _count_committed_before(data_dir: str | Path, cutoff_ns: int) -> int:
    path = Path(data_dir) / LEDGER_DB
    if not path.exists():
        return 0
    # Only a read: no secure_delete, and no checkpoint rewriting the file.
    conn = connect(path, synchronous=LEDGER_SYNCHRONOUS)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batches'").fetchone() is None:
            return 0
        return conn.execute("SELECT count(*) FROM batches WHERE committed_ns < ?", (cutoff_ns,)).fetchone()[0]
    finally:
        conn.close()


class BatchLedger:
    """Durable set of committed batch keys, safe to use from many threads."""

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        self._conns = ThreadLocalConnections(self.data_dir / LEDGER_DB, synchronous=LEDGER_SYNCHRONOUS)
        ensure_schema(self._conns.get(), "collector_ledger", 1, _SCHEMA)

    def contains(self, device: str, batch_id: str) -> bool:
        """Whether this batch is already durable in the lake."""
        row = self._conns.get().execute(
            "SELECT 1 FROM batches WHERE device = ? AND batch_id = ?", (device, batch_id)
        ).fetchone()
        return row is not None

    def lookup(self, device: str, batch_id: str) -> tuple[bool, int | None]:
        """Whether this batch is already durable in the lake, and the prune
        watermark (``pruned_before_ns``, None if retention never pruned), read
        together in one statement (one SQLite step: a watermark written by
        retention in another process is seen by the next request)."""
        known, pruned_before = self._conns.get().execute(_LOOKUP_SQL, (device, batch_id)).fetchone()
        return known is not None, pruned_before

    def record_window(self, max_age_days: int, max_future_seconds: int) -> int:
        """Record the running collector's time window for retention; returns the
        largest ``max_future_seconds`` any collector on this ledger has recorded
        (this one's included)."""
        conn = self._conns.get()
        with transaction(conn):
            conn.execute(_SET_STATE_SQL, (MAX_AGE_DAYS_KEY, max_age_days))
            conn.execute(_SET_STATE_SQL, (MAX_FUTURE_SECONDS_KEY, max_future_seconds))
            conn.execute(_RAISE_STATE_SQL, (MAX_FUTURE_SECONDS_SEEN_KEY, max_future_seconds))
            return int(conn.execute("SELECT value FROM ledger_state WHERE key = ?",
                                    (MAX_FUTURE_SECONDS_SEEN_KEY,)).fetchone()[0])

    def record(self, keys: list[tuple[str, str, int]], lake_version: int) -> None:
        """Record batches committed in ``lake_version`` (one transaction)."""
        now = time.time_ns()
        conn = self._conns.get()
        with transaction(conn):
            conn.executemany(
                "INSERT OR IGNORE INTO batches (device, batch_id, events, lake_version, committed_ns) VALUES (?, ?, ?, ?, ?)",
                [(d, b, n, lake_version, now) for d, b, n in keys],
            )
            conn.execute(
                "INSERT INTO ledger_state (key, value) VALUES ('lake_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                (lake_version,),
            )

    @property
    def lake_version(self) -> int:
        """Newest lake version whose batches the ledger is known to hold (-1: none)."""
        row = self._conns.get().execute("SELECT value FROM ledger_state WHERE key = 'lake_version'").fetchone()
        return -1 if row is None else int(row[0])

    def count(self) -> int:
        """Number of batches recorded."""
        return self._conns.get().execute("SELECT count(*) FROM batches").fetchone()[0]

    def reconcile(self) -> int:
        """Bring the ledger up to the lake: record every batch of the Delta commits
        newer than :attr:`lake_version`. Returns how many batch keys were added."""
        dt = open_table(self.data_dir)
        if dt is None:
            return 0
        lake_version = dt.version()
        known = self.lake_version
        if lake_version <= known:
            return 0
        before = self.count()
        infos = commit_metadata(self.data_dir, known + 1)
        if infos is not None:
            for info in infos:
                raw = info.get(COMMIT_BATCHES_KEY)
                if raw:
                    self.record([tuple(k) for k in json.loads(raw)], int(info["version"]))
            self.record([], lake_version)
        else:
            # The log files were cleaned up: fall back to scanning the lake.
            import duckdb

            con = duckdb.connect()
            try:
                con.register("events", table_dataset(dt, table_path(self.data_dir)))
                rows = con.execute("SELECT device, batch_id, count(*) FROM events GROUP BY 1, 2").fetchall()
            finally:
                con.close()
            self.record([(d, b, int(n)) for d, b, n in rows], lake_version)
        return self.count() - before

    def close(self) -> None:
        self._conns.close()

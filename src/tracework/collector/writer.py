"""Group commit: one writer thread turns many concurrent batches into one
Delta commit, then releases every request waiting on it.

A request submits its rows and blocks on a :class:`Pending`. The writer takes
the first waiting batch, keeps gathering for up to ``commit_interval_ms`` (or
until ``max_commit_rows``), commits them together, records them in the batch
ledger, and only then resolves the pendings: a request is answered after its
batch is durable and findable by the duplicate check, never before.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import LakeError
from ..lake import LakeWriter
from ..events.arrow_wire import type_codes, type_column
from ..lake.layout import RAW_EVENTS_SCHEMA
from .ledger import COMMIT_BATCHES_KEY, BatchLedger, encode_commit_batches
from .metrics import CollectorMetrics

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """A batch waiting to be committed: its event columns and the values of
    the ingest columns, which are the same for every row of a batch (the
    ``day`` too, unless the batch spans midnight UTC)."""

    key: tuple[str, str]  # (device pseudonym, batch id)
    table: pa.Table  # event columns (EVENT_SCHEMA, the start of RAW_EVENTS_SCHEMA)
    person: str  # person pseudonym
    received_ns: int
    day: str | pa.Array  # the UTC day of every row, or one per row
    type_codes: np.ndarray | None = None  # per row, its type's position in arrow_wire.TAGS (from validation)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    lake_version: int | None = None

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)


def _per_batch(values: list[str], counts: np.ndarray) -> pa.DictionaryArray:
    """A string column holding ``values[i]`` on the ``counts[i]`` rows of
    batch i, dictionary-encoded: one copy of each distinct value instead of
    one per row, which the Parquet writer stores as its dictionary page
    without hashing every row again (the same file as from plain strings)."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) == 1:
        codes = np.zeros(int(counts.sum()), np.int32)
    else:
        index = {v: i for i, v in enumerate(distinct)}
        codes = np.repeat(np.fromiter((index[v] for v in values), np.int32, len(values)), counts)
    return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(distinct, pa.string()))


def _days(group: list[Pending], counts: np.ndarray) -> pa.DictionaryArray:
    if all(isinstance(p.day, str) for p in group):
        return _per_batch([p.day for p in group], counts)
    # A batch spanning days (rare): per-row days for it, one for the others.
    distinct = list(dict.fromkeys(d for p in group for d in ([p.day] if isinstance(p.day, str) else p.day.unique().to_pylist())))
    dictionary = pa.array(distinct, pa.string())
    codes = [
        np.full(len(p.table), distinct.index(p.day), np.int32) if isinstance(p.day, str)
        else pc.index_in(p.day, value_set=dictionary).to_numpy(zero_copy_only=False).astype(np.int32)
        for p in group
    ]
    return pa.DictionaryArray.from_arrays(pa.array(np.concatenate(codes)), dictionary)


def commit_table(group: list[Pending]) -> pa.Table:
    """The rows of a group commit: the batches' event columns, then the
    ingest columns built once per batch (pseudonyms, batch id, received
    time, day) rather than once per row. Strings per batch are
    dictionary-encoded, and so is ``type`` (from the codes validation found):
    the Parquet writer then stores their dictionaries instead of hashing
    every row; :meth:`LakeWriter.append` accepts that encoding."""
    counts = np.fromiter((p.table.num_rows for p in group), np.int64, len(group))
    events = pa.concat_tables([p.table for p in group]) if len(group) > 1 else group[0].table
    codes = np.concatenate([type_codes(p.table) if p.type_codes is None else p.type_codes for p in group])
    events = events.set_column(0, "type", type_column(codes))
    ingest = {
        "person": _per_batch([p.person for p in group], counts),
        "device": _per_batch([p.key[0] for p in group], counts),
        "batch_id": _per_batch([p.key[1] for p in group], counts),
        "received_ns": pa.array(np.repeat(np.fromiter((p.received_ns for p in group), np.int64, len(group)), counts)),
        "day": _days(group, counts),
    }
    names = RAW_EVENTS_SCHEMA.names
    columns = events.columns + [ingest[name] for name in names[events.num_columns :]]
    return pa.Table.from_arrays(columns, names=names)


_STOP = object()


def _name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` in the OS too (Linux; at most 15
    bytes), so ``top -H`` and /proc show the writer's CPU apart from the
    request threads. Python names only its own Thread object."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


class GroupCommitWriter:
    """The single lake writer of a collector."""

    def __init__(
        self,
        lake: LakeWriter,
        ledger: BatchLedger,
        metrics: CollectorMetrics,
        *,
        commit_interval_ms: int,
        max_commit_rows: int = 250_000,
        max_queued_rows: int = 1_000_000,
        queue_wait_seconds: float = 30.0,
        on_settled=None,
    ):
        self.lake = lake
        self.ledger = ledger
        self.metrics = metrics
        self.interval = commit_interval_ms / 1000
        self.max_commit_rows = max_commit_rows
        # Backpressure: when the lake falls behind, requests wait for room
        # and then answer 503 instead of letting the queue (memory) grow.
        self.max_queued_rows = max_queued_rows
        self.queue_wait_seconds = queue_wait_seconds
        self._room = threading.Condition()
        # Called with the list of pendings after they are resolved (the
        # ingest service drops them from its in-flight set there).
        self.on_settled = on_settled
        self._queue: queue.Queue = queue.Queue()
        self._rows_waiting = 0
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="tracework-lake-writer", daemon=True)
        self._thread.start()

    def submit(self, pending: Pending) -> None:
        """Queue a batch for the next commit (waiting for room if the queue is full)."""
        rows = pending.table.num_rows
        with self._room:
            has_room = self._room.wait_for(
                lambda: self._rows_waiting == 0 or self._rows_waiting + rows <= self.max_queued_rows,
                timeout=self.queue_wait_seconds,
            )
        if not has_room:
            raise LakeError("the collector is busy: the lake writer is behind", hint="retry later")
        with self._lock:
            if self._closed:
                raise LakeError("the collector is shutting down", hint="retry in a moment")
            self._rows_waiting += rows
            self.metrics.queue_rows.set(self._rows_waiting)
            self._queue.put(pending)

    def close(self, timeout: float = 60.0) -> None:
        """Commit everything queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        _name_os_thread("tw-lake-writer")
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            group = [first]
            rows = first.table.num_rows
            deadline = time.monotonic() + self.interval
            while rows < self.max_commit_rows:
                remaining = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    # Commit what we have, then drain what is left below.
                    stopping = True
                    break
                group.append(item)
                rows += item.table.num_rows
            self._commit(group, rows)
        # Shutdown: flush whatever arrived before close() without waiting.
        rest = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                rest.append(item)
        if rest:
            self._commit(rest, sum(p.table.num_rows for p in rest))

    def _commit(self, group: list[Pending], rows: int) -> None:
        keys = [(p.key[0], p.key[1], p.table.num_rows) for p in group]
        started = time.perf_counter()
        try:
            version = self.lake.append(commit_table(group), {COMMIT_BATCHES_KEY: encode_commit_batches(keys)})
            self.metrics.commit_seconds.observe(time.perf_counter() - started)
            self.ledger.record(keys, version)
            for p in group:
                p.lake_version = version
        except BaseException as exc:  # noqa: BLE001 - every waiter must be released
            log.exception("lake commit of %d batches failed", len(group))
            # The commit may have landed before the failure (e.g. fsync):
            # reconcile so a retry of these batches is seen as a duplicate
            # instead of being stored twice.
            try:
                self.ledger.reconcile()
            except Exception:  # noqa: BLE001
                log.exception("ledger reconciliation after a failed commit failed")
            for p in group:
                p.error = exc
        finally:
            self.metrics.commit_batches.observe(len(group))
            with self._lock:
                self._rows_waiting -= rows
                self.metrics.queue_rows.set(self._rows_waiting)
            with self._room:
                self._room.notify_all()
            if self.on_settled is not None:
                self.on_settled(group)
            for p in group:
                p.done.set()

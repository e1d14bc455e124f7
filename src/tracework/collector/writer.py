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

import pyarrow as pa

from ..errors import LakeError
from ..lake import LakeWriter
from .ledger import COMMIT_BATCHES_KEY, BatchLedger, encode_commit_batches
from .metrics import CollectorMetrics

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """A batch waiting to be committed."""

    key: tuple[str, str]  # (device pseudonym, batch id)
    table: pa.Table
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    lake_version: int | None = None

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)


_STOP = object()


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
            table = pa.concat_tables([p.table for p in group])
            version = self.lake.append(table, {COMMIT_BATCHES_KEY: encode_commit_batches(keys)})
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

"""The collector's domain service: from an uploaded batch to durable rows.

No HTTP here; :mod:`tracework.collector.app` is a thin layer over
:meth:`IngestService.ingest`. Steps, in order (each failure is an
:class:`IngestError` and nothing is written):

    authenticate (401) → content type/encoding (415) → body size (413)
    → decompress with a cap (413 zip bomb, 400 bad zstd) → decode and validate
    every event (400, naming line/row and field; 413 too many events)
    → time window (422) → consent hook (403) → duplicate check
    → columnarize, add pseudonyms/batch/received/day → group commit (503 if the lake fails)

Two wire formats are accepted (both zstd-compressed, ``Content-Encoding: zstd``):
NDJSON (``application/x-ndjson``, :mod:`tracework.events.codec`), validated by
msgspec into Structs and then columnarized; and an Arrow IPC stream
(``application/vnd.apache.arrow.stream``, :mod:`tracework.events.arrow_wire`),
validated column by column with vectorized checks as strict as the model and
stored without per-event Python. Both give the same lake rows for the same events.

Duplicates: a batch is identified by (device pseudonym, batch id). One already
in the ledger, or one in flight from a concurrent request, is acknowledged
with ``duplicate=True`` and stored zero times more — the in-flight case waits
for the first copy's commit so that its 200 still means "durable".
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import zstandard

from .. import config
from ..errors import ConsentError, LakeError, TraceworkError
from ..events import (
    CONTENT_ENCODING,
    CONTENT_TYPE,
    SCHEMA_VERSION,
    BatchDecodeError,
    DecodedBatch,
    decode_batch,
    decompress_limited,
    events_to_table,
)
from ..events.arrow_wire import ARROW_CONTENT_TYPE, ArrowBatch, decode_arrow_batch
from ..governance.devices import DeviceIdentity, DeviceRegistry
from ..lake import LakeWriter
from ..lake.writer import min_max
from .ledger import BatchLedger
from .metrics import CollectorMetrics
from .writer import GroupCommitWriter, Pending

NS_PER_DAY = 86_400 * 1_000_000_000

#: Batches decoded and columnarized at once. The work holds the GIL anyway,
#: so more is not faster: on a quiet 2-core machine one slot cost 0.51-0.54
#: us of request-thread CPU per event against 0.66-0.71 with four (threads
#: contending for the GIL), same wall throughput (benchmarks/collector,
#: BENCHMARKS.md). The bound also keeps memory at one batch's worth (each may
#: decompress to max_decompressed_bytes) however many requests arrive together.
DECODE_SLOTS = 1

#: How long a request waits for its commit before answering 503 (the batch
#: may still commit; the agent's retry is then acknowledged as a duplicate).
COMMIT_WAIT_SECONDS = 120.0


class IngestError(TraceworkError):
    """A batch was refused. ``status`` is the HTTP status the app answers with,
    ``code`` a stable machine-readable reason, the message says what to do.
    5xx errors are transient (retry later); 4xx are terminal for that batch."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.transient = status >= 500

    def to_json(self) -> dict:
        """The collector's one error shape."""
        return {"ok": False, "status": self.status, "error": {"code": self.code, "message": self.message}}


@dataclass(frozen=True)
class IngestResult:
    batch_id: str
    stored: int
    duplicate: bool
    lake_version: int | None = None

    def to_json(self) -> dict:
        return {"ok": True, "batch_id": self.batch_id, "stored": self.stored, "duplicate": self.duplicate}


@dataclass(frozen=True)
class IngestLimits:
    max_body_bytes: int = 8 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_events_per_batch: int = 20_000
    max_future_seconds: int = 300
    max_age_days: int = 30

    @classmethod
    def from_settings(cls, settings: dict) -> "IngestLimits":
        return cls(
            max_body_bytes=settings["collector.max_body_bytes"],
            max_decompressed_bytes=settings["collector.max_decompressed_bytes"],
            max_events_per_batch=settings["collector.max_events_per_batch"],
            max_future_seconds=settings["collector.max_future_seconds"],
            max_age_days=settings["collector.max_age_days"],
        )


#: The consent hook gets the decoded batch: ``.header`` and ``.events`` (for an
#: Arrow batch, a sequence that makes the Structs on demand) — either a
#: :class:`DecodedBatch` or an :class:`ArrowBatch`.
ConsentCheck = Callable[[DeviceIdentity, "DecodedBatch | ArrowBatch"], None]

#: Media types of the accepted wire formats.
CONTENT_TYPES = (CONTENT_TYPE, ARROW_CONTENT_TYPE)

_AUTH_MESSAGES = {
    "missing": "no device token: send 'Authorization: Bearer <token>' (enroll with `tracework devices enroll`)",
    "unknown": "unknown device token: enroll this device again with `tracework devices enroll --person <id>`",
    "revoked": "this device's token was revoked: ask an administrator to enroll the device again",
}

# Decode errors that are about size, not shape.
_SIZE_CODES = {"too_large_decompressed", "too_many_events"}


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _day_name(day_number: int) -> str:
    return dt.datetime.fromtimestamp(day_number * 86_400, dt.timezone.utc).strftime("%Y-%m-%d")


_zstd = threading.local()


def _decompress(body: bytes, limit: int) -> bytes:
    """:func:`decompress_limited`, in one step for the usual body: a single
    zstd frame whose header declares a size within ``limit``. The output
    buffer is then allocated at that size and zstd refuses to write past it
    (a frame that lies about its size fails), so the cap holds. Anything
    else (no declared size, too large, several frames, corrupt data) takes
    the streaming path, which decides and words the error. Measured 2-5x
    less CPU than the streaming reader for a 1 MB batch."""
    try:
        size = zstandard.frame_content_size(body)
    except zstandard.ZstdError:
        size = -1
    if 0 <= size <= limit:
        dctx = getattr(_zstd, "dctx", None)
        if dctx is None:
            dctx = _zstd.dctx = zstandard.ZstdDecompressor()  # one per thread: not thread-safe
        try:
            return dctx.decompress(body, allow_extra_data=False)
        except zstandard.ZstdError:
            pass
    return decompress_limited(body, limit)


class IngestService:
    """Authenticates, validates, deduplicates and durably stores event batches."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        limits: IngestLimits | None = None,
        commit_interval_ms: int = 50,
        consent_check: ConsentCheck | None = None,
        fsync: bool = True,
        clock: Callable[[], int] = time.time_ns,
    ):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.limits = limits or IngestLimits()
        # Governance plugs its consent check in here; the default allows all.
        self.consent_check = consent_check
        self.clock = clock
        self.metrics = CollectorMetrics()
        self.registry = DeviceRegistry(self.data_dir)
        self.ledger = BatchLedger(self.data_dir)
        # Tell retention this collector's window (it prunes by the larger of
        # its own and this), and learn the largest max_future_seconds any
        # collector on this ledger accepted batches with (_check_prune_watermark).
        self._max_future_seen_s = self.ledger.record_window(self.limits.max_age_days, self.limits.max_future_seconds)
        # Close any gap left by a crash between a lake commit and its ledger row.
        self.reconciled_at_start = self.ledger.reconcile()
        self._decode_slots = threading.BoundedSemaphore(DECODE_SLOTS)
        self._inflight: dict[tuple[str, str], Pending] = {}
        self._inflight_lock = threading.Lock()
        self.writer = GroupCommitWriter(
            LakeWriter(self.data_dir, fsync=fsync),
            self.ledger,
            self.metrics,
            commit_interval_ms=commit_interval_ms,
            on_settled=self._settled,
        )

    @classmethod
    def from_settings(cls, settings: dict | None = None, **overrides) -> "IngestService":
        """A service configured from :func:`tracework.config.load` settings."""
        settings = settings or config.load()
        kwargs = dict(
            limits=IngestLimits.from_settings(settings),
            commit_interval_ms=settings["collector.commit_interval_ms"],
        )
        kwargs.update(overrides)
        return cls(settings["data_dir"], **kwargs)

    # -- the steps ---------------------------------------------------------

    def authenticate(self, token: str | None) -> DeviceIdentity:
        """The device behind ``token`` or a 401 naming why not."""
        result = self.registry.check(token)
        if result.identity is None:
            raise self._reject(401, f"{result.reason}_token", _AUTH_MESSAGES[result.reason or "unknown"])
        return result.identity

    def check_headers(self, content_type: str | None, content_encoding: str | None) -> None:
        """415 unless the body is declared as zstd-compressed NDJSON or Arrow stream."""
        if _media_type(content_type) not in CONTENT_TYPES:
            raise self._reject(
                415,
                "unsupported_content_type",
                f"Content-Type must be {CONTENT_TYPE} or {ARROW_CONTENT_TYPE} (got {content_type or 'none'}); "
                "encode the body with tracework.events.encode_batch or tracework.events.arrow_wire.encode_arrow_batch",
            )
        if (content_encoding or "").strip().lower() != CONTENT_ENCODING:
            raise self._reject(
                415,
                "unsupported_content_encoding",
                f"Content-Encoding must be {CONTENT_ENCODING} (got {content_encoding or 'none'}); compress the body with zstd",
            )

    def body_too_large(self) -> IngestError:
        """The 413 for a body over ``max_body_bytes`` (raised by the app while reading)."""
        return self._reject(
            413,
            "body_too_large",
            f"the request body is larger than {self.limits.max_body_bytes} bytes; send smaller batches",
        )

    def ingest(
        self,
        token: str | None,
        body: bytes,
        content_type: str | None = CONTENT_TYPE,
        content_encoding: str | None = CONTENT_ENCODING,
        *,
        identity: DeviceIdentity | None = None,
    ) -> IngestResult:
        """Store one wire batch; returns once it is durable (or a duplicate of a
        durable batch). ``identity`` skips authentication when the caller has
        already done it with :meth:`authenticate`."""
        if identity is None:
            identity = self.authenticate(token)
        self.check_headers(content_type, content_encoding)
        if len(body) > self.limits.max_body_bytes:
            raise self.body_too_large()
        arrow = _media_type(content_type) == ARROW_CONTENT_TYPE
        with self._decode_slots:
            decoded = self._decode(body, arrow)
            header = decoded.header
            if arrow:
                table = decoded.table if decoded.table.num_rows else None
            else:
                table = events_to_table(decoded.events) if decoded.events else None
            bounds = self._check_time_window(table) if table is not None else None
        self._check_consent(identity, decoded)

        key = (identity.device_pseudonym, header.batch_id)
        # Made before taking the in-flight lock so concurrent requests do not
        # wait on each other's work (wasted only for duplicates).
        codes = decoded.type_codes if arrow else None
        pending = self._pending(key, table, identity, bounds, codes) if table is not None else None
        with self._inflight_lock:
            first = self._inflight.get(key)
            if first is None:
                known, pruned_before = self.ledger.lookup(*key)
                if known:
                    self.metrics.duplicates.inc()
                    return IngestResult(header.batch_id, 0, True)
                if bounds is not None and pruned_before is not None:
                    self._check_prune_watermark(bounds, pruned_before)
                if pending is None:
                    # An empty batch is valid and stores nothing; it is not
                    # recorded, so it is never reported as a duplicate.
                    return IngestResult(header.batch_id, 0, False)
                self._inflight[key] = pending
        if first is not None:
            # A concurrent copy of this batch is being committed: answer only
            # once it is durable, and as a duplicate.
            self._wait(first)
            self.metrics.duplicates.inc()
            return IngestResult(header.batch_id, 0, True, first.lake_version)
        try:
            self.writer.submit(pending)
        except LakeError as exc:
            self._settled([pending])
            code = "collector_busy" if "busy" in exc.message else "lake_unavailable"
            raise self._reject(503, code, f"{exc.message}; retry later") from None
        self._wait(pending)
        self.metrics.batches_accepted.inc()
        self.metrics.events_accepted.inc(table.num_rows)
        self.metrics.batches_by_format.labels(format="arrow" if arrow else "ndjson").inc()
        return IngestResult(header.batch_id, table.num_rows, False, pending.lake_version)

    def close(self) -> None:
        """Commit everything queued and release resources (clean shutdown)."""
        self.writer.close()
        self.ledger.close()
        self.registry.close()

    # -- helpers -------------------------------------------------------------

    def _reject(self, status: int, code: str, message: str) -> IngestError:
        self.metrics.batches_rejected.labels(code=code).inc()
        return IngestError(status, code, message)

    def _decode(self, body: bytes, arrow: bool = False) -> DecodedBatch | ArrowBatch:
        try:
            raw = _decompress(body, self.limits.max_decompressed_bytes)
            if arrow:
                decoded = decode_arrow_batch(raw, self.limits.max_events_per_batch)
            else:
                decoded = decode_batch(raw, self.limits.max_events_per_batch)
        except BatchDecodeError as exc:
            status = 413 if exc.code in _SIZE_CODES else 400
            raise self._reject(status, exc.code, exc.message) from None
        except UnicodeDecodeError as exc:
            raise self._reject(400, "bad_encoding", f"the batch is not valid UTF-8 ({exc}); encode events as JSON") from None
        if decoded.header.schema_version > SCHEMA_VERSION:
            raise self._reject(
                400,
                "schema_too_new",
                f"the batch uses event schema version {decoded.header.schema_version}, this collector knows "
                f"up to {SCHEMA_VERSION}; upgrade the collector before the agents",
            )
        return decoded

    def _check_time_window(self, table: pa.Table) -> dict:
        """422 unless every t_ns is within the accepted window; returns the batch's min/max t_ns."""
        now = self.clock()
        bounds = min_max(table.column("t_ns"))
        latest_ok = now + self.limits.max_future_seconds * 1_000_000_000
        oldest_ok = now - self.limits.max_age_days * NS_PER_DAY
        if bounds["max"] > latest_ok:
            raise self._reject(
                422,
                "events_from_future",
                f"the batch has events {(bounds['max'] - now) / 1e9:.0f} s in the future (limit "
                f"{self.limits.max_future_seconds} s); fix the device clock, then resend",
            )
        if bounds["min"] < oldest_ok:
            raise self._reject(
                422,
                "events_too_old",
                f"the batch has events {(now - bounds['min']) / NS_PER_DAY:.1f} days old (limit "
                f"{self.limits.max_age_days} days); they are past retention and will not be stored",
            )
        return bounds

    def _check_prune_watermark(self, bounds: dict, pruned_before_ns: int) -> None:
        """422 ``events_too_old`` for a batch the ledger may have forgotten.

        Retention deleted the ledger rows of batches committed before
        ``pruned_before_ns`` (W). A batch committed at T passed
        :meth:`_check_time_window` at some ``now <= T`` (its ledger row is
        stamped after its lake commit), so all its events have ``t <= now +
        max_future <= T + max_future``, with the max_future of the collector
        that accepted it; every such collector recorded it in the ledger, so
        ``_max_future_seen_s`` bounds it. A forgotten batch (T < W) thus has
        its oldest event before ``W + max_future_seen``; a resend carries the
        same events. Refusing every batch whose oldest event is that old
        refuses every forgotten batch, whatever the window is now (e.g.
        ``max_age_days`` raised after the prune) — and, with an unchanged
        window, nothing the time window does not refuse already (retention's
        cut-off lies a window and a day further back). Assumed: the wall
        clock does not step back between a batch's window check and its
        ledger row (a step back of S would let its events reach T +
        max_future + S; the cut-off itself keeps a day of margin for that,
        see :func:`tracework.governance.retention.ledger_cutoff_ns`).

        Called with the watermark read in the same statement as the duplicate
        look-up, so a row that is gone is never missed without its watermark."""
        limit = pruned_before_ns + self._max_future_seen_s * 1_000_000_000
        if bounds["min"] < limit:
            raise self._reject(
                422,
                "events_too_old",
                f"the batch has events from {_day_name(bounds['min'] // NS_PER_DAY)}, before "
                f"{_day_name(limit // NS_PER_DAY)}: older than this collector can still recognise as a "
                "duplicate (retention has forgotten the batches sent then), so it is not stored; drop the "
                "batch, or send only newer events in a new batch",
            )

    def _check_consent(self, identity: DeviceIdentity, decoded: DecodedBatch | ArrowBatch) -> None:
        if self.consent_check is None:
            return
        try:
            self.consent_check(identity, decoded)
        except IngestError as exc:
            self.metrics.batches_rejected.labels(code=exc.code).inc()
            raise
        except (ConsentError, PermissionError) as exc:
            raise self._reject(403, "consent_refused", str(exc) or "the person has not consented to this data") from None
        except Exception as exc:  # noqa: BLE001 - an unavailable check must not store or drop data
            raise self._reject(503, "consent_unavailable", f"the consent check failed ({exc}); retry later") from None

    def _pending(self, key: tuple[str, str], table: pa.Table, identity: DeviceIdentity, bounds: dict | None = None,
                 codes=None) -> Pending:
        """The batch as the writer takes it: its event columns plus the values
        of the ingest columns (pseudonyms, batch id, received time, day),
        which the writer turns into columns once per group commit."""
        bounds = bounds or min_max(table.column("t_ns"))
        if bounds["min"] // NS_PER_DAY == bounds["max"] // NS_PER_DAY:
            # Nearly every batch lies within one UTC day.
            day = _day_name(bounds["min"] // NS_PER_DAY)
        else:
            day_numbers = pc.divide(table.column("t_ns"), NS_PER_DAY)  # integer division; t_ns >= 0 by the model
            distinct = pc.unique(day_numbers).to_pylist()
            names = pa.array([_day_name(d) for d in distinct], pa.string())
            day = pc.take(names, pc.index_in(day_numbers, value_set=pa.array(distinct, pa.int64()))).combine_chunks()
        return Pending(key=key, table=table, person=identity.person_pseudonym, received_ns=self.clock(), day=day,
                       type_codes=codes)

    def _wait(self, pending: Pending) -> None:
        if not pending.wait(COMMIT_WAIT_SECONDS):
            raise self._reject(503, "commit_timeout", "the lake did not confirm the batch in time; retry later")
        if pending.error is not None:
            raise self._reject(503, "lake_unavailable", f"the lake could not store the batch ({pending.error}); retry later")

    def _settled(self, group: list[Pending]) -> None:
        with self._inflight_lock:
            for p in group:
                if self._inflight.get(p.key) is p:
                    del self._inflight[p.key]

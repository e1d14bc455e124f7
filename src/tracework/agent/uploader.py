"""The uploader: moves batches from the spool to the collector.

Contract with the collector (``POST {url}/v1/batches``): bearer device token,
``Content-Encoding: zstd`` and, by default (``UploadSettings.wire_format =
"arrow"``), ``Content-Type: application/vnd.apache.arrow.stream``: an Arrow IPC
stream of the batch's events with the batch header in the schema metadata
(:mod:`tracework.events.arrow_wire`), which the collector stores without
per-event Python. ``wire_format="ndjson"`` sends ``application/x-ndjson``
(header line + one event per line) instead; so does any batch whose spooled
lines do not decode locally (the collector then names the bad line), and so
does the uploader from then on if the collector answers 415 to Arrow (a
collector older than the Arrow format). Outcomes:

* 2xx: the batch is durable at the collector; its events leave the spool.
* 403 ``consent_refused``: the batch carries a class its person withdrew
  (captured before the agent's next consent poll); it moves to the dead-letter
  table, so it is never stored, and the uploader goes on.
* other 401 / 403: the token was refused; uploading stops (nothing is
  deleted) and the reason is reported in ``agent status``.
* any other 4xx: this batch will never be accepted as it is; it moves to the
  spool's dead-letter table and is reported; the uploader goes on.
* network error, timeout, 5xx: transient; retried with exponential backoff
  and full jitter (sleep a random time in [0, min(cap, base * 2**attempt)]).

A batch's id and seq range are stored before the first send, so a resend
after a crash carries the same id and the collector stores it once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass

import httpx
import msgspec
import pyarrow as pa
import zstandard

from .. import __version__
from ..errors import AuthError, BatchRejected, CollectorUnavailable
from ..events import CONTENT_ENCODING, CONTENT_TYPE, SCHEMA_VERSION, BatchHeader, encode_batch_lines
from ..events.arrow_wire import ARROW_CONTENT_TYPE, encode_arrow_batch
from ..events.model import AnyEvent
from .spool import Batch, Spool

log = logging.getLogger("tracework.agent")


@dataclass
class UploadSettings:
    collector_url: str
    token: str
    batch_events: int = 2000
    interval_s: float = 1.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 60.0
    timeout_s: float = 30.0
    #: "arrow" (columnar, the default) or "ndjson" (simple clients, debugging).
    wire_format: str = "arrow"

    def __post_init__(self) -> None:
        if self.wire_format not in WIRE_FORMATS:
            raise ValueError(f"wire_format must be one of {', '.join(WIRE_FORMATS)} (got {self.wire_format!r})")


WIRE_FORMATS = ("arrow", "ndjson")


class _KeyDownRedactions(msgspec.Struct):
    type: str
    redacted: str | None = None


_redaction_decoder = msgspec.json.Decoder(_KeyDownRedactions)


def redaction_counts(lines: list[bytes]) -> dict[str, int]:
    """Redacted spans in a batch, by placeholder type.

    A span is a run of consecutive key downs carrying the same ``redacted``
    placeholder (the redactor marks each key of a redacted token).
    """
    counts: dict[str, int] = {}
    previous = None
    for line in lines:
        if b'"redacted"' not in line:
            if b'"key_down"' in line:
                previous = None
            continue
        ev = _redaction_decoder.decode(line)
        if ev.type != "key_down":
            continue
        if ev.redacted and ev.redacted != previous:
            counts[ev.redacted] = counts.get(ev.redacted, 0) + 1
        previous = ev.redacted
    return counts


def _header(batch: Batch) -> BatchHeader:
    return BatchHeader(batch_id=batch.batch_id, schema_version=SCHEMA_VERSION, event_count=len(batch.lines),
                       agent_version=__version__, redaction_counts=redaction_counts(batch.lines))


def encode_body(batch: Batch) -> bytes:
    """The batch as zstd NDJSON (the spooled lines as they are)."""
    return zstandard.ZstdCompressor(level=3).compress(encode_batch_lines(_header(batch), batch.lines))


_events_decoder = msgspec.json.Decoder(list[AnyEvent])


def encode_arrow_body(batch: Batch) -> bytes:
    """The batch as a zstd Arrow IPC stream. Raises ``msgspec.DecodeError``
    when a spooled line is not a valid event, ``OverflowError`` or an Arrow
    error when a value does not fit its column (the caller sends NDJSON then)."""
    events = _events_decoder.decode(b"[" + b",".join(batch.lines) + b"]")
    return encode_arrow_batch(_header(batch), events)


def encode_for_wire(batch: Batch, wire_format: str) -> tuple[bytes, str]:
    """(body, content type) of ``batch`` in ``wire_format``; a batch whose
    lines do not decode goes as NDJSON so that the collector's answer (a 400
    naming the line, then the dead-letter table) says what is wrong."""
    if wire_format == "arrow":
        try:
            return encode_arrow_body(batch), ARROW_CONTENT_TYPE
        except (msgspec.DecodeError, OverflowError, pa.ArrowException) as exc:
            log.warning("batch %s has a line that is not a valid event (%s); sending it as NDJSON", batch.batch_id, exc)
    return encode_body(batch), CONTENT_TYPE


class Uploader:
    """Sends spool batches until stopped. One thread; its own spool connection."""

    def __init__(self, spool: Spool, settings: UploadSettings, *, rng: random.Random | None = None):
        self.spool = spool
        self.settings = settings
        self.rng = rng or random.Random()
        self.client = httpx.Client(timeout=settings.timeout_s)
        self.stopped_reason: str | None = None  # set on 401/403: uploads stop
        self.wire_format = settings.wire_format  # may fall back to ndjson (415 from an older collector)
        self._wake = threading.Event()

    def close(self) -> None:
        self.client.close()

    def wake(self) -> None:
        self._wake.set()

    def send(self, batch: Batch) -> dict:
        """POST one batch. Returns the collector's JSON on 2xx, raises otherwise."""
        url = self.settings.collector_url.rstrip("/") + "/v1/batches"
        body, content_type = encode_for_wire(batch, self.wire_format)
        response = self._post(url, body, content_type)
        if response.status_code == 415 and content_type == ARROW_CONTENT_TYPE:
            # A collector that predates the Arrow format: the same batch (same
            # id) as NDJSON, and NDJSON from now on.
            log.warning("the collector does not accept Arrow batches (415); sending NDJSON from now on")
            self.wire_format = "ndjson"
            response = self._post(url, encode_body(batch), CONTENT_TYPE)
        if 200 <= response.status_code < 300:
            try:
                return response.json()
            except ValueError:
                return {}
        code, message = _error_of(response)
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise CollectorUnavailable(f"the collector answered {response.status_code} {code}: {message}",
                                       hint="the agent keeps the events and retries")
        if response.status_code == 403 and code == "consent_refused":
            # Events captured before the agent learnt of a withdrawal (it polls
            # every 15 s): governance no longer allows them, so they must not be
            # stored. The batch goes to the dead letters; later ones go on.
            raise BatchRejected(f"the collector refused batch {batch.batch_id}: consent withdrawn ({message})",
                                status=403, code=code,
                                hint="the batch was moved to the spool's dead-letter table; capture follows "
                                "the consent document")
        if response.status_code in (401, 403):
            raise AuthError(
                f"the collector refused this device ({response.status_code} {code}: {message})",
                hint="uploads are stopped; enroll the device again and run "
                "`tracework agent configure --token TOKEN`, or check consent",
            )
        raise BatchRejected(f"the collector refused batch {batch.batch_id} ({response.status_code} {code}: {message})",
                            status=response.status_code, code=code,
                            hint="the batch was moved to the spool's dead-letter table")

    def _post(self, url: str, body: bytes, content_type: str) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.settings.token}",
            "Content-Type": content_type,
            "Content-Encoding": CONTENT_ENCODING,
        }
        try:
            return self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise CollectorUnavailable(f"the collector at {self.settings.collector_url} is unreachable ({exc})",
                                       hint="the agent keeps the events and retries") from None

    def upload_once(self) -> str:
        """Try the next batch once. Returns ``idle`` (nothing to send), ``sent``,
        ``retry`` (transient failure), ``rejected`` (dead-lettered) or ``stopped``."""
        if self.stopped_reason:
            return "stopped"
        batch = self.spool.next_batch(self.settings.batch_events)
        if batch is None:
            return "idle"
        self.spool.record_attempt(batch.batch_id)
        try:
            self.send(batch)
        except CollectorUnavailable as exc:
            self._note_error(str(exc.message))
            return "retry"
        except AuthError as exc:
            self.stopped_reason = exc.message
            self._note_error(exc.message, stopped=True)
            log.error("uploads stopped: %s", exc)
            return "stopped"
        except BatchRejected as exc:
            self.spool.dead_letter(batch, exc.status, exc.code, exc.message)
            self._note_error(exc.message)
            log.error("%s", exc)
            return "rejected"
        self.spool.ack(batch)
        self.spool.set_many({"last_error": None})
        return "sent"

    def _note_error(self, message: str, stopped: bool = False) -> None:
        values = {"last_error": message, "last_error_ns": time.time_ns()}
        if stopped:
            values["uploads_stopped"] = message
        self.spool.set_many(values)

    def backoff(self, attempt: int) -> float:
        """Full jitter: a uniform sleep up to the capped exponential."""
        ceiling = min(self.settings.backoff_cap_s, self.settings.backoff_base_s * (2 ** min(attempt, 30)))
        return self.rng.uniform(0, ceiling)

    def run(self, stop: threading.Event) -> None:
        """Upload until ``stop`` is set."""
        attempt = 0
        while not stop.is_set():
            try:
                outcome = self.upload_once()
            except Exception as exc:  # keep the agent alive; the spool still holds everything
                log.exception("upload failed unexpectedly")
                self._safe_note(f"unexpected upload failure: {exc}")
                outcome = "retry"
            if outcome in ("sent", "rejected"):
                attempt = 0
                continue  # more may be waiting
            if outcome == "retry":
                delay = self.backoff(attempt)
                attempt += 1
            else:
                attempt = 0
                delay = self.settings.interval_s
            self._wake.wait(delay)
            self._wake.clear()

    def drain(self, deadline_s: float) -> str:
        """Final upload at shutdown: send what is left, within ``deadline_s``."""
        end = time.monotonic() + deadline_s
        attempt = 0
        outcome = "idle"
        # A hung connection must not hold shutdown past the deadline.
        self.client.timeout = httpx.Timeout(max(0.5, min(self.settings.timeout_s, deadline_s)))
        while time.monotonic() < end:
            outcome = self.upload_once()
            if outcome in ("idle", "stopped"):
                return outcome
            if outcome == "retry":
                time.sleep(min(self.backoff(attempt), max(0.0, end - time.monotonic())))
                attempt += 1
        return outcome

    def _safe_note(self, message: str) -> None:
        try:
            self._note_error(message)
        except Exception:
            pass


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        err = body.get("error") or {}
        return str(err.get("code", "error")), str(err.get("message", response.text[:200]))
    except (ValueError, AttributeError):
        return "error", response.text[:200] or response.reason_phrase

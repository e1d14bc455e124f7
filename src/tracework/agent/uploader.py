"""The uploader: moves batches from the spool to the collector.

Contract with the collector (``POST {url}/v1/batches``): bearer device token,
``Content-Encoding: zstd`` and, by default (``UploadSettings.wire_format =
"arrow"``), ``Content-Type: application/vnd.apache.arrow.stream``: an Arrow IPC
stream of the batch's events with the batch header in the schema metadata
(:mod:`tracework.events.arrow_wire`), which the collector stores without
per-event Python. ``wire_format="ndjson"`` sends ``application/x-ndjson``
(header line + one event per line) instead; so does any batch whose spooled
lines do not decode locally (the collector then names the bad line).

Older collectors (rolling upgrades): when the collector turns an Arrow batch
down for a reason NDJSON does not have, the same batch (same id) is sent
again at once as NDJSON, and later batches go as NDJSON for
``UploadSettings.arrow_retry_s`` (then Arrow is tried again):

* 415: a collector older than the Arrow format.
* 400 ``bad_schema`` "unknown column ...": a collector older than a field
  this agent sends. The event model only gains fields with defaults, and the
  NDJSON decoder skips keys it does not know, so the collector stores the
  events without that field instead of refusing them.

Outcomes (of the NDJSON resend, where there was one):

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
    #: After the collector refused Arrow for a reason NDJSON does not have
    #: (see the module docstring), batches go as NDJSON for this many seconds,
    #: then Arrow is tried again (the collector may have been upgraded).
    arrow_retry_s: float = 900.0

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

    def __init__(self, spool: Spool, settings: UploadSettings, *, rng: random.Random | None = None,
                 clock=time.monotonic):
        self.spool = spool
        self.settings = settings
        self.rng = rng or random.Random()
        self.client = httpx.Client(timeout=settings.timeout_s)
        self.stopped_reason: str | None = None  # set on 401/403: uploads stop
        # The format of the next batch: settings.wire_format, or "ndjson" for
        # a while after an older collector refused Arrow (_fall_back_to_ndjson).
        self.wire_format = settings.wire_format
        self._clock = clock  # monotonic seconds; a parameter so tests can move time on
        self._arrow_again_at = 0.0
        self._wake = threading.Event()

    def close(self) -> None:
        self.client.close()

    def wake(self) -> None:
        self._wake.set()

    def send(self, batch: Batch) -> dict:
        """POST one batch. Returns the collector's JSON on 2xx, raises otherwise."""
        url = self.settings.collector_url.rstrip("/") + "/v1/batches"
        body, content_type = encode_for_wire(batch, self._next_format())
        response = self._post(url, body, content_type)
        if content_type == ARROW_CONTENT_TYPE:
            reason = _arrow_refusal_ndjson_avoids(response)
            if reason:
                # Resent at once, per batch: this batch's events are stored now
                # (the collector knows the batch id, so a batch it did store is
                # answered as a duplicate, not stored twice). See _fall_back_to_ndjson
                # for the batches after it.
                self._fall_back_to_ndjson(reason)
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

    def _next_format(self) -> str:
        if self.wire_format != self.settings.wire_format and self._clock() >= self._arrow_again_at:
            log.info("trying %s batches again", self.settings.wire_format)
            self.wire_format = self.settings.wire_format
        return self.wire_format

    def _fall_back_to_ndjson(self, reason: str) -> None:
        """NDJSON for the next ``arrow_retry_s``, then Arrow again.

        Remembered for a while, not per batch only: an agent newer than its
        collector fills its new field in most batches (the field exists because
        it is captured), so trying Arrow on each would send most batches twice
        and have the collector decompress and refuse each. Not for good either:
        the collector may be upgraded any minute, and Arrow costs it less CPU;
        one refused batch every ``arrow_retry_s`` is the price of noticing.
        NDJSON stores the same events (it skips only what the collector does
        not know, which Arrow could not have stored there either)."""
        log.warning("the collector refused an Arrow batch (%s); sending NDJSON for the next %.0f s",
                    reason, self.settings.arrow_retry_s)
        self.wire_format = "ndjson"
        self._arrow_again_at = self._clock() + self.settings.arrow_retry_s

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


def _arrow_refusal_ndjson_avoids(response: httpx.Response) -> str | None:
    """Why the collector refused an Arrow body, when the same batch as NDJSON
    can be accepted: 415 (no Arrow support) or 400 ``bad_schema`` naming an
    unknown column (a field newer than the collector; every collector with
    Arrow words it "unknown column 'name'; ..."). Other refusals (a known column
    with a wrong type, a missing required column, bad values) do not come from
    the collector being older: either NDJSON would be refused too, or the Arrow
    encoder is broken and a resend would hide it. ``None``: the batch goes to
    the dead letters as before."""
    if response.status_code == 415:
        return "415, it predates Arrow batches"
    if response.status_code == 400:
        code, message = _error_of(response)
        if code == "bad_schema" and message.startswith("unknown column "):
            return f"400 bad_schema: {message.split(';', 1)[0]}; it predates a field this agent sends"
    return None


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        err = body.get("error") or {}
        return str(err.get("code", "error")), str(err.get("message", response.text[:200]))
    except (ValueError, AttributeError):
        return "error", response.text[:200] or response.reason_phrase

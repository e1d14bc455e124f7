"""The wire batch codec.

A batch on the wire is zstd-compressed NDJSON: the first line is a
:class:`~tracework.events.model.BatchHeader`, every following line one event.
NDJSON keeps each event independently decodable (the collector names the line
of a bad event) and lets both msgspec (validation) and Arrow's JSON reader
(columnar conversion) parse it at C speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import zstandard

from .model import AnyEvent, BatchHeader

CONTENT_TYPE = "application/x-ndjson"
CONTENT_ENCODING = "zstd"

_event_decoder = msgspec.json.Decoder(AnyEvent)
_header_decoder = msgspec.json.Decoder(BatchHeader)
_encoder = msgspec.json.Encoder()


class BatchDecodeError(ValueError):
    """A batch could not be decoded. ``code`` is a stable machine-readable reason."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DecodedBatch:
    header: BatchHeader
    events: list
    # The NDJSON bytes of the events alone, kept so the collector can hand
    # them to a columnar reader without encoding them again.
    event_lines: bytes


def encode_event(event) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes):
    return _event_decoder.decode(data)


def encode_batch_lines(header: BatchHeader, event_lines: list[bytes]) -> bytes:
    """NDJSON body (uncompressed) from a header and already-encoded events."""
    return _encoder.encode(header) + b"\n" + b"\n".join(event_lines) + (b"\n" if event_lines else b"")


def encode_batch(header: BatchHeader, events: list, level: int = 3) -> bytes:
    """Encode and compress a batch for the wire."""
    body = encode_batch_lines(header, [_encoder.encode(e) for e in events])
    return zstandard.ZstdCompressor(level=level).compress(body)


def decompress_limited(data: bytes, max_size: int) -> bytes:
    """Decompress zstd data, refusing to produce more than ``max_size`` bytes
    (a small body that inflates to gigabytes must not exhaust memory)."""
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
        chunks = []
        total = 0
        while True:
            chunk = reader.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > max_size:
                raise BatchDecodeError(
                    "too_large_decompressed",
                    f"the batch decompresses to more than {max_size} bytes; send smaller batches",
                )
            chunks.append(chunk)
        return b"".join(chunks)
    except zstandard.ZstdError as exc:
        raise BatchDecodeError("bad_compression", f"the body is not valid zstd data ({exc})") from None


def decode_batch(body: bytes, max_events: int) -> DecodedBatch:
    """Validate an uncompressed NDJSON batch against the event model.

    Raises :class:`BatchDecodeError` naming the line and field of the first
    problem; nothing is returned for a partly valid batch.
    """
    newline = body.find(b"\n")
    if newline < 0:
        raise BatchDecodeError("bad_batch", "the batch has no header line; the first line must be a batch header")
    try:
        header = _header_decoder.decode(body[:newline])
    except msgspec.DecodeError as exc:
        raise BatchDecodeError("bad_header", f"line 1 (batch header): {exc}") from None
    event_lines = body[newline + 1 :]
    try:
        events = _event_decoder.decode_lines(event_lines)
    except msgspec.DecodeError as exc:
        raise BatchDecodeError("bad_event", _locate_bad_line(event_lines) or f"event: {exc}") from None
    if len(events) != header.event_count:
        raise BatchDecodeError(
            "count_mismatch",
            f"the header announces {header.event_count} events but the body holds {len(events)}; "
            "the batch was probably truncated in transit, resend it",
        )
    if len(events) > max_events:
        raise BatchDecodeError(
            "too_many_events", f"the batch holds {len(events)} events, the limit is {max_events}; send smaller batches"
        )
    return DecodedBatch(header=header, events=events, event_lines=event_lines)


def _locate_bad_line(event_lines: bytes) -> str | None:
    """On failure only: decode line by line to name the first bad one."""
    for number, line in enumerate(event_lines.split(b"\n"), start=2):
        if not line.strip():
            continue
        try:
            _event_decoder.decode(line)
        except msgspec.DecodeError as exc:
            return f"line {number}: {exc}"
    return None

"""The collector's one-step zstd decompression gives exactly what the
streaming, capped decompress_limited gives: the same bytes, or the same
refusal (code), for every kind of body."""

from __future__ import annotations

import os

import pytest
import zstandard

from tracework.collector.ingest import _decompress
from tracework.events import BatchDecodeError, decompress_limited

LIMIT = 100_000


def _outcome(fn, body: bytes):
    try:
        return ("ok", fn(body, LIMIT))
    except BatchDecodeError as exc:
        return ("refused", exc.code)


def _streamed(data: bytes) -> bytes:
    """A frame without a declared content size (streaming compressor)."""
    cobj = zstandard.ZstdCompressor().compressobj()
    return cobj.compress(data) + cobj.flush()


def _bodies():
    c = zstandard.ZstdCompressor()
    data = os.urandom(2_000) * 10
    frame = c.compress(data)
    yield "one frame", frame
    yield "two frames", frame + c.compress(b"more")
    yield "frame then garbage", frame + b"\x00garbage"
    yield "no declared size", _streamed(data)
    yield "no declared size, over the cap", _streamed(b"a" * (LIMIT + 1))
    yield "declared size over the cap", c.compress(b"a" * (LIMIT + 1))
    yield "declared size exactly the cap", c.compress(b"b" * LIMIT)
    yield "truncated frame", frame[: len(frame) // 2]
    yield "empty body", b""
    yield "not zstd", os.urandom(500)
    yield "empty frame", c.compress(b"")
    # A frame whose header declares fewer bytes than it holds: the one-step
    # path must not write past the declared size (zstd refuses; the
    # streaming path then decides).
    # Both headers are magic, descriptor, then a one-byte size (50 / 200).
    small = c.compress(b"x" * 50)
    big = c.compress(b"x" * 200)
    assert small[:5] == big[:5] and zstandard.frame_content_size(small[:6] + big[6:]) == 50
    yield "frame lying about its size", small[:6] + big[6:]


@pytest.mark.parametrize("name,body", list(_bodies()), ids=[n for n, _ in _bodies()])
def test_same_result_as_streaming(name, body):
    assert _outcome(_decompress, body) == _outcome(decompress_limited, body)


def test_the_usual_body_takes_the_one_step_path(monkeypatch):
    called = []
    monkeypatch.setattr("tracework.collector.ingest.decompress_limited", lambda *a: called.append(a))
    body = zstandard.ZstdCompressor().compress(b"events" * 1000)
    assert _decompress(body, LIMIT) == b"events" * 1000
    assert called == []

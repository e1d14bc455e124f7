"""POST /v1/batches is a bare ASGI endpoint the app calls before Starlette's
routing (tracework.collector.app.BatchEndpoint). Driven here at the ASGI
level, to see what the HTTP tests cannot: the body is not read before
authentication and the content-type check, a disconnect mid-body is a 400,
the fast path and Starlette's route (taken under a root_path) answer the
same, and a request that is not refused is not counted as a 413."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from tracework.collector.app import create_app
from tracework.collector.ingest import IngestLimits, IngestService

from collector_helpers import headers, make_batch, make_events

pytestmark = pytest.mark.timeout(120)

CAP = 64 * 1024


@pytest.fixture
def app(data_dir):
    service = IngestService(
        data_dir, commit_interval_ms=5, limits=dataclasses.replace(IngestLimits(), max_body_bytes=CAP)
    )
    token = service.registry.enroll("alice", "laptop")[1]
    try:
        yield create_app(service, tune_gc=False), service, token
    finally:
        service.close()


def call(app, hdrs: dict, chunks: list[bytes], *, root_path: str = "", disconnect: bool = False):
    """One POST /v1/batches through the ASGI app: (status, headers, JSON body,
    how many times the app asked for the request body)."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1 or disconnect}
                for i, c in enumerate(chunks)] or [{"type": "http.request", "body": b"", "more_body": False}]
    if disconnect:
        messages.append({"type": "http.disconnect"})
    received = 0
    sent = []

    async def receive():
        nonlocal received
        received += 1
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": root_path + "/v1/batches", "raw_path": (root_path + "/v1/batches").encode(),
        "root_path": root_path, "query_string": b"", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8470),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in hdrs.items()],
    }
    asyncio.run(app(scope, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    assert start["type"] == "http.response.start"
    return start["status"], dict(start["headers"]), json.loads(body), received


def _rejected(service, code: str) -> float:
    return service.metrics.batches_rejected.labels(code=code)._value.get()


@pytest.mark.parametrize("root_path", ["", "/behind-proxy"])
def test_answers_and_error_shapes(app, root_path):
    app_, service, token = app
    batch_id, body = make_batch(make_events(10))
    status, hdrs, payload, _ = call(app_, headers(token), [body[:7], body[7:]], root_path=root_path)
    assert (status, payload) == (200, {"ok": True, "batch_id": batch_id, "stored": 10, "duplicate": False})
    assert hdrs[b"content-type"] == b"application/json"
    assert int(hdrs[b"content-length"]) == len(json.dumps(payload, separators=(",", ":")))
    status, _, payload, _ = call(app_, headers(token), [body], root_path=root_path)
    assert (status, payload["duplicate"], payload["stored"]) == (200, True, 0)

    cases = [
        # (headers, chunks, status, code, whether the body may be read)
        (headers(None), [body], 401, "missing_token", False),
        (headers("not-a-token"), [body], 401, "unknown_token", False),
        ({**headers(token), "Content-Type": "text/plain"}, [body], 415, "unsupported_content_type", False),
        ({**headers(token), "Content-Encoding": "gzip"}, [body], 415, "unsupported_content_encoding", False),
        ({**headers(token), "Content-Length": str(CAP + 1)}, [body], 413, "body_too_large", False),
        # No Content-Length: refused once the chunks read pass the cap.
        (headers(token), [b"x" * 40_000, b"x" * 40_000, b"x" * 40_000], 413, "body_too_large", True),
        (headers(token), [b"not zstd at all"], 400, None, True),
    ]
    for hdrs_, chunks, want_status, want_code, reads in cases:
        status, _, payload, received = call(app_, hdrs_, chunks, root_path=root_path)
        assert status == want_status and payload["ok"] is False and payload["status"] == want_status, payload
        assert set(payload) == {"ok", "status", "error"} and set(payload["error"]) == {"code", "message"}
        if want_code is not None:
            assert payload["error"]["code"] == want_code
        if not reads:
            assert received == 0, "the body was read before the request was refused"
        if want_code == "body_too_large" and reads:
            assert received == 2, "the body kept being read past the cap"


def test_disconnect_mid_body_is_a_400_and_stores_nothing(app, data_dir):
    app_, service, token = app
    _, body = make_batch(make_events(10))
    status, _, payload, _ = call(app_, headers(token), [body[:10]], disconnect=True)
    assert status == 400 and payload["error"]["code"] == "client_disconnected"
    assert service.ledger.count() == 0


def test_accepted_batches_are_not_counted_as_too_large(app):
    """The 413 error used to be built (and counted) for every request before
    the body was read; it is counted only for a body over the cap now."""
    app_, service, token = app
    for _ in range(3):
        status, *_ = call(app_, headers(token), [make_batch(make_events(5))[1]])
        assert status == 200
    assert _rejected(service, "body_too_large") == 0
    status, *_ = call(app_, {**headers(token), "Content-Length": str(CAP + 1)}, [b""])
    assert status == 413
    assert _rejected(service, "body_too_large") == 1

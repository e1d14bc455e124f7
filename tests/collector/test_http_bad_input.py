"""Every bad input of issue 2 against a real collector process on 127.0.0.1:
a clear 4xx in the one error shape, nothing written (Delta version and row
count unchanged), and the server keeps serving."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import msgspec
import pytest
import zstandard


from collector_helpers import enroll, headers, lake_state, make_batch, make_events

pytestmark = pytest.mark.timeout(120)

DAY_NS = 86_400 * 10**9

REVOKE = (
    "import sys; from click.testing import CliRunner; from tracework.cli.collector_cmd import devices; "
    "r = CliRunner().invoke(devices, ['revoke', sys.argv[2], '--data-dir', sys.argv[1]]); "
    "print(r.output); sys.exit(r.exit_code)"
)


def _zstd(raw: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(raw)


def _ndjson(header: dict, lines: list[bytes]) -> bytes:
    return msgspec.json.encode(header) + b"\n" + b"\n".join(lines) + b"\n"


def _valid_line(seq: int = 0, **overrides) -> dict:
    d = {"type": "mouse_move", "seq": seq, "t_ns": time.time_ns(), "session": "s1", "x": 1, "y": 2}
    d.update(overrides)
    return d


def _body_with(events: list[dict], count: int | None = None, batch_id: str = "bad-batch-0001") -> bytes:
    header = {"batch_id": batch_id, "schema_version": 1, "event_count": len(events) if count is None else count}
    return _zstd(_ndjson(header, [msgspec.json.encode(e) for e in events]))


def _good_batch():
    return make_batch(make_events(20))[1]


def _cases():
    good = _good_batch()
    now = time.time_ns()
    yield "garbage body", os.urandom(5000), {}, 400, None
    yield "truncated body", good[: len(good) // 2], {}, 400, None
    yield "fewer events than announced", _body_with([_valid_line(0), _valid_line(1)], count=3), {}, 400, "count_mismatch"
    yield "no header line", _zstd(b'{"batch_id": "x"'), {}, 400, "bad_batch"
    yield "bad header", _body_with([_valid_line()], batch_id="x"), {}, 400, "bad_header"
    yield "wrong field type", _body_with([_valid_line(0), _valid_line(1, x="left")]), {}, 400, "bad_event"
    yield "missing field", _body_with([{"type": "mouse_move", "seq": 0, "t_ns": now, "session": "s", "x": 1}]), {}, 400, "bad_event"
    yield "unknown event type", _body_with([_valid_line(type="telepathy")]), {}, 400, "bad_event"
    yield "negative seq", _body_with([_valid_line(seq=-1)]), {}, 400, "bad_event"
    yield "not utf-8", _zstd(b'{"batch_id":"abcdefgh","schema_version":1,"event_count":1}\n{"type":"\xff\xfe"}\n'), {}, 400, None
    yield "schema from the future", _zstd(
        _ndjson({"batch_id": "abcdefgh", "schema_version": 999, "event_count": 1}, [msgspec.json.encode(_valid_line())])
    ), {}, 400, "schema_too_new"
    yield "events from the future", _body_with([_valid_line(t_ns=now + DAY_NS)]), {}, 422, "events_from_future"
    yield "events from the far past", _body_with([_valid_line(t_ns=now - 400 * DAY_NS)]), {}, 422, "events_too_old"
    yield "wrong content type", good, {"Content-Type": "application/json"}, 415, "unsupported_content_type"
    yield "wrong content encoding", good, {"Content-Encoding": "gzip"}, 415, "unsupported_content_encoding"
    yield "no content encoding", good, {"Content-Encoding": ""}, 415, "unsupported_content_encoding"
    yield "oversized body", os.urandom(300 * 1024), {}, 413, "body_too_large"
    bomb = _zstd(b'{"batch_id":"abcdefgh","schema_version":1,"event_count":1}\n' + b" " * (64 * 1024 * 1024))
    yield "zip bomb", bomb, {}, 413, "too_large_decompressed"
    yield "too many events", make_batch(make_events(5001))[1], {}, 413, "too_many_events"


CASES = list(_cases())


@pytest.mark.parametrize("name,body,extra_headers,status,code", CASES, ids=[c[0] for c in CASES])
def test_bad_batch_is_refused_and_changes_nothing(shared_collector, name, body, extra_headers, status, code):
    collector, device = shared_collector
    # Make sure the lake exists so "unchanged" is checked against a real version.
    _ensure_lake(collector, device)
    before = lake_state(collector.data_dir)
    h = headers(device.token)
    h.update(extra_headers)
    h = {k: v for k, v in h.items() if v != ""}
    r = httpx.post(collector.url + "/v1/batches", content=body, headers=h, timeout=60)
    assert r.status_code == status, r.text
    payload = r.json()
    assert payload["ok"] is False and payload["status"] == status
    assert payload["error"]["message"], "every error says what to do"
    if code is not None:
        assert payload["error"]["code"] == code
    assert lake_state(collector.data_dir) == before
    assert httpx.get(collector.url + "/healthz", timeout=10).json() == {"ok": True, "status": "serving"}


def test_bad_event_message_names_line_and_field(shared_collector):
    collector, device = shared_collector
    body = _body_with([_valid_line(0), _valid_line(1), _valid_line(2, y="up")])
    r = httpx.post(collector.url + "/v1/batches", content=body, headers=headers(device.token), timeout=30)
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    # The header is line 1, so the third event is line 4.
    assert "line 4" in message and "y" in message, message


def test_oversized_chunked_body_without_content_length(shared_collector):
    collector, device = shared_collector
    _ensure_lake(collector, device)
    before = lake_state(collector.data_dir)

    def chunks():
        for _ in range(40):
            yield os.urandom(16 * 1024)

    r = httpx.post(collector.url + "/v1/batches", content=chunks(), headers=headers(device.token), timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert lake_state(collector.data_dir) == before


@pytest.mark.parametrize(
    "auth,code",
    [(None, "missing_token"), ("Bearer", "missing_token"), ("Basic abc", "missing_token"), ("Bearer not-a-token", "unknown_token")],
)
def test_bad_credentials_get_401(shared_collector, auth, code):
    collector, _ = shared_collector
    before = lake_state(collector.data_dir)
    h = headers(None)
    if auth is not None:
        h["Authorization"] = auth
    r = httpx.post(collector.url + "/v1/batches", content=_good_batch(), headers=h, timeout=30)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == code
    assert lake_state(collector.data_dir) == before


def test_revoked_token_gets_401_and_nothing_written(shared_collector):
    collector, _ = shared_collector
    device = enroll(collector.data_dir, person="bob", name="bob-pc")
    ok = httpx.post(collector.url + "/v1/batches", content=_good_batch(), headers=headers(device.token), timeout=30)
    assert ok.status_code == 200
    # Revoked from another process, as an administrator would, while it runs.
    subprocess.run(
        [sys.executable, "-c", REVOKE, str(collector.data_dir), device.device_id],
        check=True,
        capture_output=True,
    )
    before = lake_state(collector.data_dir)
    r = httpx.post(collector.url + "/v1/batches", content=_good_batch(), headers=headers(device.token), timeout=30)
    assert r.status_code == 401 and r.json()["error"]["code"] == "revoked_token"
    assert "revoked" in r.json()["error"]["message"]
    assert lake_state(collector.data_dir) == before


def test_replayed_batch_is_acknowledged_not_stored_twice(shared_collector):
    collector, device = shared_collector
    batch_id, body = make_batch(make_events(50))
    first = httpx.post(collector.url + "/v1/batches", content=body, headers=headers(device.token), timeout=30)
    assert first.json() == {"ok": True, "batch_id": batch_id, "stored": 50, "duplicate": False}
    before = lake_state(collector.data_dir)
    for _ in range(3):
        again = httpx.post(collector.url + "/v1/batches", content=body, headers=headers(device.token), timeout=30)
        assert again.status_code == 200
        assert again.json() == {"ok": True, "batch_id": batch_id, "stored": 0, "duplicate": True}
    assert lake_state(collector.data_dir) == before
    rows = collector_rows_for_batch(collector, batch_id)
    assert rows == 50


@pytest.mark.parametrize("method,path,status", [("GET", "/v1/batches", 405), ("GET", "/nope", 404), ("PUT", "/healthz", 405)])
def test_other_routes_use_the_same_error_shape(shared_collector, method, path, status):
    collector, _ = shared_collector
    r = httpx.request(method, collector.url + path, timeout=10)
    assert r.status_code == status
    body = r.json()
    assert body["ok"] is False and body["status"] == status and body["error"]["code"] and body["error"]["message"]


def collector_rows_for_batch(collector, batch_id: str) -> int:
    from tracework.lake import query

    return query(collector.data_dir, f"SELECT count(*) AS n FROM events WHERE batch_id = '{batch_id}'").column("n")[0].as_py()


def _ensure_lake(collector, device) -> None:
    if lake_state(collector.data_dir)[0] is None:
        r = httpx.post(collector.url + "/v1/batches", content=_good_batch(), headers=headers(device.token), timeout=30)
        assert r.status_code == 200

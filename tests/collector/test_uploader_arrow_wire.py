"""The agent's uploader sends Arrow batches by default, against a real
collector process on 127.0.0.1; NDJSON stays available, and a spooled line
that is not a valid event still reaches the collector's verdict (as NDJSON)."""

from __future__ import annotations

import time

import httpx
import pytest

from tracework.agent.spool import Spool
from tracework.agent.uploader import UploadSettings, Uploader, encode_arrow_body, encode_for_wire
from tracework.events import CONTENT_TYPE, KeyDown, MouseMove, decompress_limited
from tracework.events.arrow_wire import ARROW_CONTENT_TYPE, decode_arrow_batch
from tracework.lake import query

from collector_helpers import make_events

pytestmark = pytest.mark.timeout(120)


def _uploader(spool, collector, device, **kw) -> Uploader:
    return Uploader(spool, UploadSettings(collector_url=collector.url, token=device.token, batch_events=100,
                                          backoff_base_s=0.05, backoff_cap_s=0.2, timeout_s=10, **kw))


def _formats(collector) -> dict:
    text = httpx.get(collector.url + "/metrics", timeout=10).text
    out = {}
    for fmt in ("arrow", "ndjson"):
        line = next((l for l in text.splitlines() if l.startswith(f'tracework_batches_by_format_total{{format="{fmt}"}}')), None)
        out[fmt] = int(float(line.split()[-1])) if line else 0
    return out


def test_uploader_sends_arrow_by_default_and_ndjson_on_request(tmp_path, shared_collector):
    collector, device = shared_collector
    before = _formats(collector)
    spool = Spool(tmp_path / "spool.db")
    events = make_events(150, session="uploader-arrow")
    spool.append(events)
    up = _uploader(spool, collector, device)
    assert [up.upload_once() for _ in range(3)] == ["sent", "sent", "idle"]
    up.close()
    spool.append(make_events(30, session="uploader-ndjson"))
    up = _uploader(spool, collector, device, wire_format="ndjson")
    assert [up.upload_once() for _ in range(2)] == ["sent", "idle"]
    up.close()
    after = _formats(collector)
    assert after["arrow"] - before["arrow"] == 2 and after["ndjson"] - before["ndjson"] == 1
    rows = query(collector.data_dir, "SELECT session, count(*) AS n, count(DISTINCT batch_id) AS b FROM events "
                 "WHERE session LIKE 'uploader-%' GROUP BY session ORDER BY session").to_pylist()
    assert rows == [{"session": "uploader-arrow", "n": 150, "b": 2}, {"session": "uploader-ndjson", "n": 30, "b": 1}]


def test_arrow_body_holds_the_spooled_events_and_header(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    spool.append([KeyDown(seq=0, t_ns=time.time_ns(), session="s", key_class="letter", redacted="EMAIL") for _ in range(3)]
                 + [MouseMove(seq=0, t_ns=time.time_ns(), session="s", x=1, y=2)])
    batch = spool.next_batch(10)
    decoded = decode_arrow_batch(decompress_limited(encode_arrow_body(batch), 1 << 20), 100)
    assert decoded.header.batch_id == batch.batch_id and decoded.header.redaction_counts == {"EMAIL": 1}
    assert decoded.table.column("seq").to_pylist() == [0, 1, 2, 3]
    assert decoded.table.column("type").to_pylist() == ["key_down"] * 3 + ["mouse_move"]


def test_a_line_that_is_not_an_event_goes_as_ndjson_and_is_dead_lettered(tmp_path, shared_collector):
    collector, device = shared_collector
    spool = Spool(tmp_path / "spool.db")
    spool.append(make_events(3, session="uploader-bad"))
    batch = spool.next_batch(10)
    batch.lines[1] = b'{"type": "mouse_move", "seq": 1}'  # as if the spool held a broken line
    body, content_type = encode_for_wire(batch, "arrow")
    assert content_type == CONTENT_TYPE
    ok_body, ok_type = encode_for_wire(spool.next_batch(10), "arrow")
    assert ok_type == ARROW_CONTENT_TYPE
    r = httpx.post(collector.url + "/v1/batches", content=body, timeout=30,
                   headers={"Authorization": f"Bearer {device.token}", "Content-Type": content_type, "Content-Encoding": "zstd"})
    assert r.status_code == 400 and "line 3" in r.json()["error"]["message"]


def test_unknown_wire_format_is_refused():
    with pytest.raises(ValueError, match="wire_format"):
        UploadSettings(collector_url="http://127.0.0.1:9", token="t", wire_format="xml")

"""The collector's consent check on Arrow (columnar) batches, against a real
collector with consent enforced (the default of `tracework serve`): classes
are read from the columns, and the verdicts and messages match the NDJSON
path's."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
from agent_helpers import grant_consent  # noqa: E402
from collector_helpers import headers, lake_state, make_events  # noqa: E402

from tracework import events as ev  # noqa: E402
from tracework.events.arrow_wire import ARROW_CONTENT_TYPE, encode_arrow_batch  # noqa: E402


def _arrow(events):
    header = ev.BatchHeader(batch_id=uuid.uuid4().hex, schema_version=ev.SCHEMA_VERSION, event_count=len(events))
    return encode_arrow_batch(header, events)


def _ndjson(events):
    header = ev.BatchHeader(batch_id=uuid.uuid4().hex, schema_version=ev.SCHEMA_VERSION, event_count=len(events))
    return ev.encode_batch(header, events)


def _post(c, token, body, arrow: bool):
    h = headers(token)
    if arrow:
        h["Content-Type"] = ARROW_CONTENT_TYPE
    return httpx.post(c.url + "/v1/batches", content=body, headers=h, timeout=30)


def test_arrow_batches_get_the_same_consent_verdicts_as_ndjson(collector):
    c = collector(require_consent=True)
    token = c.enroll("mia@example.org", consent=False)
    grant_consent(c.data_dir, "mia@example.org", classes=["mouse"], purpose="cursor_models")

    mixed = make_events(40, session="m-1")  # moves, keys, clicks, focus changes
    first_key = next(i for i, e in enumerate(mixed) if isinstance(e, ev.KeyDown))
    before = lake_state(c.data_dir)
    r_arrow = _post(c, token, _arrow(mixed), arrow=True)
    r_ndjson = _post(c, token, _ndjson(mixed), arrow=False)
    assert r_arrow.status_code == r_ndjson.status_code == 403
    assert r_arrow.json()["error"]["code"] == r_ndjson.json()["error"]["code"] == "consent_refused"
    assert f"first at row {first_key}" in r_arrow.json()["error"]["message"]
    assert f"first at event line {first_key + 2}" in r_ndjson.json()["error"]["message"]
    assert lake_state(c.data_dir) == before

    moves = [e for e in mixed if isinstance(e, (ev.MouseMove, ev.ButtonDown))]
    assert _post(c, token, _arrow(moves), arrow=True).status_code == 200
    assert lake_state(c.data_dir)[1] == before[1] + len(moves)
    # A key reduced on the device to its class carries timing only: still refused here.
    reduced = [ev.KeyDown(seq=0, t_ns=moves[0].t_ns, session="m-2", key_class="letter")]
    r = _post(c, token, _arrow(reduced), arrow=True)
    assert r.status_code == 403 and "key_timing" in r.json()["error"]["message"]

"""The agent-side consent watcher against a real collector on 127.0.0.1:
it follows grants and withdrawals, stops when its document expires without a
fresh one (collector unreachable), refuses replayed documents across restarts,
and drops everything when the device is revoked. Time is given explicitly
(the watcher's clock), so no test waits for real seconds."""

from __future__ import annotations

import json

import httpx

from tracework.governance.agent_consent import ConsentWatcher
from tracework.governance.consent import DOCUMENT_TTL_S, POLL_INTERVAL_S


def test_watcher_follows_consent_and_stops_within_a_minute(gov, op, served, tmp_path):
    key = served["client"].get("/v1/consent/public-key").json()["public_key"]
    clock = {"now": None}

    def now():
        import time

        return clock["now"] if clock["now"] is not None else time.time_ns()

    w = ConsentWatcher(served["url"], served["device"], key, state_path=tmp_path / "consent.json", clock=now)
    try:
        assert w.classes() == frozenset()
        assert w.poll() is not None and w.classes() == frozenset()  # opt-in: nothing before consent
        gov.grant(op, "pat", "cursor_models", ["mouse"], 1)
        doc = w.poll()
        assert w.classes() == {"mouse"}
        # Withdrawal: the next poll (at most POLL_INTERVAL_S later) empties the classes.
        gov.withdraw(op, "pat", "cursor_models")
        assert w.poll() is not None and w.classes() == frozenset()

        gov.grant(op, "pat", "cursor_models", ["mouse", "window_titles"], 1)
        doc = w.poll()
        assert w.classes() == {"mouse", "window_titles"}
        # The collector becomes unreachable: the last document holds until it
        # expires, then capture stops, within a minute of its issue.
        assert POLL_INTERVAL_S < DOCUMENT_TTL_S <= 60
        unreachable = ConsentWatcher("http://127.0.0.1:9", served["device"], key, clock=now)
        unreachable.document = doc
        assert unreachable.poll() is None and "unreachable" in unreachable.last_error
        clock["now"] = doc.expires_ns - 1
        assert unreachable.classes() == {"mouse", "window_titles"}
        clock["now"] = doc.expires_ns
        assert unreachable.classes() == frozenset()
        unreachable.close()
        clock["now"] = None

        # A restart keeps the replay guard: an older document is refused.
        old = served["client"].get("/v1/consent", headers={"authorization": f"Bearer {served['device']}"}).content
        gov.withdraw(op, "pat", "cursor_models")
        assert w.poll() is not None
        saved = json.loads((tmp_path / "consent.json").read_text())
        restarted = ConsentWatcher(served["url"], served["device"], key, state_path=tmp_path / "consent.json",
                                   client=httpx.Client(transport=_Replay(old)))
        assert restarted.poll() is None and "replayed" in restarted.last_error
        assert restarted.classes() == frozenset()
        assert saved["consent_version"] > json.loads(json.loads(old)["payload"])["consent_version"]
        restarted.close()

        # A revoked device: the collector answers 401 and the watcher drops its document at once.
        gov.grant(op, "pat", "cursor_models", ["mouse"], 1)
        assert w.poll() is not None and w.classes() == {"mouse"}
        device_id = served["service"].registry.list("pat")[0].device_id
        served["service"].registry.revoke(device_id)
        assert w.poll() is None and "401" in w.last_error
        assert w.classes() == frozenset()
    finally:
        w.close()


class _Replay(httpx.BaseTransport):
    """Serves one recorded real response again: what a replaying attacker or
    a stale cache would do."""

    def __init__(self, body: bytes):
        self.body = body

    def handle_request(self, request):
        return httpx.Response(200, content=self.body, headers={"content-type": "application/json"})

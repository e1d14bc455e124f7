"""Consent withdrawal with a real agent (Xvfb + xdotool) uploading to a real
collector on 127.0.0.1 with the governance consent check plugged in: what was
typed before the withdrawal is stored; right after it the collector refuses the
device's next batch (403 consent_refused, nothing stored); the running agent,
following its signed consent document, pauses capture, and nothing typed after
that reaches the lake. (How fast the agent pauses is the agent's own test.)"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
from agent_helpers import AgentProcess, lake_rows, typed_text, wait_until, xdo  # noqa: E402

from tracework.collector.app import create_app  # noqa: E402
from tracework.collector.governance_routes import governance_routes  # noqa: E402
from tracework.collector.ingest import IngestService  # noqa: E402
from tracework.events import BatchHeader, KeyDown, encode_batch  # noqa: E402
from tracework.governance import open_governance, operator  # noqa: E402

pytestmark = [pytest.mark.x11, pytest.mark.slow]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_collector_refuses_the_next_batch_after_withdrawal(tmp_path, xvfb, x_window):
    data = tmp_path / "data"
    gov = open_governance(data)
    op = operator("test")
    service = IngestService(data, consent_check=gov.consent_check, fsync=False)
    app = create_app(service, tune_gc=False)
    app.router.routes.extend(governance_routes(gov, device_registry=service.registry))
    port = _port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    agent = AgentProcess(tmp_path / "home", xvfb, tmp_path)
    try:
        wait_until(lambda: server.started or not thread.is_alive(), what="the collector to start")
        assert server.started
        gov.add_person(op, "pat", "Pat", "eng")
        gov.grant(op, "pat", "agent_training", ["key_text", "key_timing", "mouse", "window_titles"], 1)
        _, token = service.registry.enroll("pat", "laptop")
        agent.cli("agent", "configure", "--collector", f"http://127.0.0.1:{port}", "--token", token)
        agent.cli("agent", "consent", "--accept")
        notes = x_window("Notes - withdrawal test", "WithdrawNotes", 20, 20)
        agent.start()
        xdo(xvfb, "windowfocus", "--sync", str(notes["xid"]))
        xdo(xvfb, "type", "--delay", "15", "before withdrawal")
        wait_until(lambda: "before withdrawal" in typed_text(lake_rows(data)) if (data / "lake").exists() else False,
                   what="the typed text to reach the lake")

        gov.withdraw(op, "pat", "agent_training")
        # The collector refuses the device's next batch at once: 403, nothing stored.
        now = time.time_ns()
        body = encode_batch(BatchHeader(batch_id="after-withdrawal-1", schema_version=1, event_count=1),
                            [KeyDown(seq=10**6, t_ns=now, session="probe", key_code=38, key_sym="a", char="a")])
        r = httpx.post(f"http://127.0.0.1:{port}/v1/batches", content=body, headers={
            "authorization": f"Bearer {token}", "content-type": "application/x-ndjson", "content-encoding": "zstd"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "consent_refused", r.text
        # The running agent follows its next signed consent document: it pauses
        # capture for consent (a Pause event carries no data class, so it is stored).
        wait_until(lambda: any(row["type"] == "pause" and row["reason"] == "consent" for row in lake_rows(data)),
                   timeout=120, what="the agent to pause for consent")
        xdo(xvfb, "type", "--delay", "15", " after withdrawal")
        agent.stop(timeout=180)  # bounds a hang only
        rows = lake_rows(data)
        assert "before withdrawal" in typed_text(rows) and "after" not in typed_text(rows)
        withdrawn_at = max(r["t_ns"] for r in rows if r["type"] == "pause" and r["reason"] == "consent")
        assert not [r for r in rows if r["type"] in ("key_down", "key_up") and r["t_ns"] > withdrawn_at]
        assert "probe" not in {r["session"] for r in rows}
    finally:
        agent.cleanup()
        server.should_exit = True
        thread.join(timeout=60)
        gov.close()

"""Consent withdrawal with a real agent (Xvfb + xdotool) uploading to a real
collector on 127.0.0.1 with the governance consent check plugged in: what was
typed before the withdrawal is stored, the agent's next batch after it is
refused with 403 consent_refused and nothing of it is stored.

(The agent stopping by itself within 60 s needs the agent to poll
GET /v1/consent; that is the agent's side and is tested there once it does.)"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
from agent_helpers import AgentProcess, lake_rows, typed_text, wait_until, xdo  # noqa: E402

from tracework.collector.app import create_app  # noqa: E402
from tracework.collector.governance_routes import governance_routes  # noqa: E402
from tracework.collector.ingest import IngestService  # noqa: E402
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
        stored = len(lake_rows(data))

        gov.withdraw(op, "pat", "agent_training")
        xdo(xvfb, "type", "--delay", "15", " after withdrawal")
        wait_until(lambda: agent.status().get("last_error") or agent.status().get("stopped_reason"),
                   what="the agent to report the refusal")
        status = agent.status()
        assert "403" in str(status) and "consent_refused" in str(status), status
        summary = agent.stop()
        assert summary["pending"] > 0  # kept on the device, not stored
        rows = lake_rows(data)
        assert len(rows) == stored
        assert "after" not in typed_text(rows)
    finally:
        agent.cleanup()
        server.should_exit = True
        thread.join(timeout=60)
        gov.close()

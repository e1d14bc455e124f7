"""The agent's upload format setting (`agent.wire_format`): Arrow by default,
NDJSON on request, and a clear error for anything else. Real parts: Xvfb,
xdotool, the real agent and a real collector; the collector's metrics say
which format the stored batches came in."""

from __future__ import annotations

import re

import httpx
import pytest

from agent_helpers import AgentProcess, lake_rows, run_tracework, typed_text, wait_until, xdo

pytestmark = pytest.mark.x11


def _batches_by_format(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r'^tracework_batches_by_format_total\{format="(\w+)"\} (\S+)$', text, re.M)}


@pytest.mark.parametrize("wire_format", ["arrow", "ndjson"])
def test_the_agent_uploads_in_the_configured_format(xvfb, x_window, collector, tmp_path, wire_format):
    c = collector()
    window = x_window(f"Notes - {wire_format}", "WireNotes", 0, 0)
    agent = AgentProcess(tmp_path / "agent", xvfb, tmp_path, {"TRACEWORK_AGENT_WIRE_FORMAT": wire_format})
    try:
        agent.setup(c.url, c.enroll())
        agent.start()
        xdo(xvfb, "windowfocus", "--sync", str(window["xid"]), "type", "--delay", "20", "hello wire")
        agent.stop()
    finally:
        agent.cleanup()
    wait_until(lambda: "hello wire" in typed_text(lake_rows(c.data_dir)), what="the typed text in the lake")
    counts = _batches_by_format(c.url)
    other = "ndjson" if wire_format == "arrow" else "arrow"
    assert counts.get(wire_format, 0) >= 1 and counts.get(other, 0) == 0, counts


def test_an_unknown_wire_format_is_refused_before_capture(xvfb, collector, tmp_path):
    c = collector()
    agent = AgentProcess(tmp_path / "agent", xvfb, tmp_path, {"TRACEWORK_AGENT_WIRE_FORMAT": "protobuf"})
    agent.setup(c.url, c.enroll())
    result = run_tracework("agent", "run", "--duration", "2", env=agent.env)
    assert result.returncode != 0
    assert "agent.wire_format must be one of arrow, ndjson" in result.stderr
    assert lake_rows(c.data_dir) == []

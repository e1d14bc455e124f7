"""``tracework serve``: help, a clear error when the port is taken, and a
clean stop on SIGINT as well as SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import httpx
from click.testing import CliRunner

from tracework.cli.collector_cmd import serve

from collector_helpers import enroll, headers, make_batch, make_events, start_collector


def test_serve_help_documents_every_option():
    r = CliRunner().invoke(serve, ["--help"])
    assert r.exit_code == 0
    for option in ("--data-dir", "--host", "--port", "--log-level"):
        assert option in r.output


def test_sigterm_stop_reports_the_flush(data_dir):
    enroll(data_dir)
    c = start_collector(data_dir)
    c.stop(signal.SIGTERM)
    assert "every accepted batch is committed" in c.log()


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "tracework.collector", "--data-dir", str(tmp_path), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={"TRACEWORK_CONFIG": str(tmp_path / "none.toml"), "PATH": "/usr/bin:/bin"},
        )
    assert r.returncode != 0
    assert "could not listen" in r.stderr and "--port" in r.stderr
    assert "serving" not in r.stdout


def test_sigint_stops_cleanly_and_data_is_kept(data_dir):
    device = enroll(data_dir)
    c = start_collector(data_dir)
    try:
        _, body = make_batch(make_events(100))
        r = httpx.post(c.url + "/v1/batches", content=body, headers=headers(device.token), timeout=30)
        assert r.json()["stored"] == 100
        assert f"http://127.0.0.1:{c.port}" in c.log()
    finally:
        code = c.stop(signal.SIGINT)
    assert code == 0, c.log()
    assert "every accepted batch is committed" in c.log()
    from tracework.lake import read_events

    assert read_events(data_dir).num_rows == 100


def test_require_consent_refuses_unconsented_classes(data_dir):
    """`serve --require-consent` plugs governance's consent check into ingest:
    a person without consent gets 403 and nothing is stored; once they grant
    consent for what the batch carries, it is stored."""
    from tracework.governance import open_governance, operator
    from tracework.lake import read_events

    from collector_helpers import lake_state

    gov = open_governance(data_dir)
    op = operator("test")
    gov.add_person(op, "carol", "Carol", "eng")
    device = enroll(data_dir, person="carol")
    c = start_collector(data_dir, args=("--require-consent",))
    try:
        _, body = make_batch(make_events(30))
        r = httpx.post(c.url + "/v1/batches", content=body, headers=headers(device.token), timeout=30)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "consent_refused"
        assert lake_state(data_dir) == (None, 0)
        notice = gov.current_notice_version() if hasattr(gov, "current_notice_version") else 1
        gov.grant(op, "carol", "agent_training", ["key_text", "key_timing", "mouse", "window_titles"], notice)
        r = httpx.post(c.url + "/v1/batches", content=body, headers=headers(device.token), timeout=30)
        assert r.status_code == 200 and r.json()["stored"] == 30
        assert read_events(data_dir).num_rows == 30
    finally:
        c.stop()


def test_serve_mounts_the_governance_routes(data_dir):
    enroll(data_dir)
    c = start_collector(data_dir)
    try:
        r = httpx.get(c.url + "/v1/consent", timeout=30)
        # The route exists (not 404) and answers in the collector's error shape.
        assert r.status_code == 401
        assert r.json()["ok"] is False and r.json()["error"]["code"]
    finally:
        c.stop()

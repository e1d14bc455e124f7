"""Helpers for the collector tests (imported by name: a unique module name
keeps pytest's rootdir imports unambiguous across test folders).

A real ``tracework serve`` process on a
free 127.0.0.1 port, an enrolled device, and batch builders."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from tracework import events as ev
from tracework.governance.devices import DeviceRegistry
from tracework.lake import open_table, read_events

TRACEWORK = str(Path(sys.executable).with_name("tracework"))

# Small limits so that oversize cases stay small in the tests.
TEST_LIMITS = {
    "TRACEWORK_COLLECTOR_MAX_BODY_BYTES": str(256 * 1024),
    "TRACEWORK_COLLECTOR_MAX_DECOMPRESSED_BYTES": str(4 * 1024 * 1024),
    "TRACEWORK_COLLECTOR_MAX_EVENTS_PER_BATCH": "5000",
    "TRACEWORK_COLLECTOR_COMMIT_INTERVAL_MS": "20",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Collector:
    """A running collector subprocess."""

    data_dir: Path
    port: int
    proc: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop by signal (its own pid only) and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_collector(data_dir: Path, extra_env: dict | None = None, args: tuple = ()) -> Collector:
    """Start ``tracework serve`` on a free port and wait until /healthz answers."""
    env = dict(os.environ)
    env.update(TEST_LIMITS)
    env["TRACEWORK_CONFIG"] = str(data_dir / "no-such-tracework.toml")
    env.update(extra_env or {})
    last_error = None
    for _attempt in range(3):  # the free port may be taken between probe and bind
        port = free_port()
        log_path = data_dir / f"collector-{port}.log"
        log_file = open(log_path, "wb")
        proc = subprocess.Popen(
            # `python -m tracework.collector` is `tracework serve` without the
            # other areas' CLI modules, so a broken module elsewhere in a shared
            # checkout cannot take these tests down.
            [sys.executable, "-m", "tracework.collector", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port),
             # Consent is on by default; these tests enable it only where it is their subject.
             *(() if "--require-consent" in args else ("--no-require-consent",)), *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log_file.close()
        collector = Collector(data_dir, port, proc, log_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(collector.url + "/healthz", timeout=1).status_code == 200:
                    return collector
            except httpx.TransportError as exc:
                last_error = exc
            time.sleep(0.1)
        collector.stop(signal.SIGKILL)
        last_error = collector.log()
    raise RuntimeError(f"the collector did not start: {last_error}")


@dataclass
class Device:
    device_id: str
    token: str
    person_id: str


def enroll(data_dir: Path, person: str = "alice", name: str = "laptop") -> Device:
    registry = DeviceRegistry(data_dir)
    try:
        device_id, token = registry.enroll(person, name)
    finally:
        registry.close()
    return Device(device_id, token, person)


def make_events(n: int, t_ns: int | None = None, session: str = "sess-1") -> list:
    """A realistic mix: mostly mouse moves, then keys, clicks, scrolls, focus."""
    t0 = time.time_ns() if t_ns is None else t_ns
    out = []
    for i in range(n):
        t = t0 + i * 1_000_000
        kind = i % 10
        if kind < 6:
            out.append(ev.MouseMove(seq=i, t_ns=t, session=session, x=i % 1920, y=i % 1080))
        elif kind == 6:
            out.append(ev.KeyDown(seq=i, t_ns=t, session=session, key_code=38, key_sym="a", char="a"))
        elif kind == 7:
            out.append(ev.KeyUp(seq=i, t_ns=t, session=session, key_code=38, key_sym="a", char="a"))
        elif kind == 8:
            out.append(ev.ButtonDown(seq=i, t_ns=t, session=session, x=10, y=20, button="left"))
        else:
            out.append(ev.FocusChange(seq=i, t_ns=t, session=session, app="xterm", title="term", window_id=7))
    return out


def make_batch(events: list, batch_id: str | None = None) -> tuple[str, bytes]:
    batch_id = batch_id or uuid.uuid4().hex
    header = ev.BatchHeader(batch_id=batch_id, schema_version=ev.SCHEMA_VERSION, event_count=len(events))
    return batch_id, ev.encode_batch(header, events)


def headers(token: str | None) -> dict:
    h = {"Content-Type": ev.CONTENT_TYPE, "Content-Encoding": ev.CONTENT_ENCODING}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    return h


def lake_state(data_dir: Path) -> tuple[int | None, int]:
    """(Delta version, row count) — what must not change after a refused batch."""
    dt = open_table(data_dir)
    if dt is None:
        return (None, 0)
    return (dt.version(), read_events(data_dir, columns=["seq"]).num_rows)




class ClockedCollector:
    """The collector (IngestService + its app) served by uvicorn on 127.0.0.1
    in this process, with a clock the test sets (``now``; None: the wall
    clock), so batches can be accepted "in the past". ``token``: reuse a
    device enrolled earlier on the same data folder; None enrolls one."""

    def __init__(self, data_dir: Path, max_age_days: int, max_future_seconds: int, token: str | None = None):
        import threading

        import uvicorn

        from tracework.collector.app import create_app
        from tracework.collector.ingest import IngestLimits, IngestService

        self.data_dir = data_dir
        self.now: int | None = None
        self.service = IngestService(
            data_dir, limits=IngestLimits(max_age_days=max_age_days, max_future_seconds=max_future_seconds),
            fsync=False, commit_interval_ms=5, clock=lambda: time.time_ns() if self.now is None else self.now,
        )
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.service, tune_gc=False), host="127.0.0.1", port=port,
                                                    log_level="error", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the collector did not start")
            time.sleep(0.02)
        self.token = token if token is not None else self.service.registry.enroll("pat", "laptop")[1]

    def send(self, body: bytes) -> httpx.Response:
        return httpx.post(self.url + "/v1/batches", content=body, headers=headers(self.token), timeout=60)

    def accept_at(self, events: list, at_ns: int) -> tuple[str, bytes]:
        """Upload ``events`` with the clock at ``at_ns`` and set the batch's
        ledger row to have been committed then (the ledger stamps rows with
        the wall clock). Returns the batch id and the body, for resends."""
        import sqlite3

        from tracework.collector.ledger import LEDGER_DB

        batch_id, body = make_batch(events, batch_id=uuid.uuid4().hex)
        self.now = at_ns
        try:
            r = self.send(body)
        finally:
            self.now = None
        assert r.status_code == 200 and r.json()["stored"] == len(events), r.text
        conn = sqlite3.connect(self.data_dir / LEDGER_DB, timeout=30)
        try:
            # The row's old version must not stay behind as free space (byte
            # checks on the ledger would find it and blame retention).
            conn.execute("PRAGMA secure_delete = ON")
            with conn:
                assert conn.execute("UPDATE batches SET committed_ns = ? WHERE batch_id = ?",
                                    (at_ns, batch_id)).rowcount == 1
        finally:
            conn.close()
        return batch_id, body

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)

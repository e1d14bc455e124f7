"""Fixtures for the governance tests: every store-facing test runs against
SQLite and against a real PostgreSQL server that this file starts itself
(initdb into a temporary folder, pg_ctl, a unix socket; as the ``postgres``
user when the tests run as root) and stops at the end of the session."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from tracework.governance import open_governance, operator


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL cluster reachable over a unix socket."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="tw-pg-", dir="/tmp"))
        self.datadir = self.root / "data"
        self.sockdir = self.root / "sock"
        self.sockdir.mkdir()
        self.port = _free_port()
        self.user = None
        self._dbs = itertools.count(1)
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as the postgres user.
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            for p in (self.root, self.sockdir):
                os.chown(p, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.user:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-c listen_addresses='' -c unix_socket_directories={self.sockdir} -p {self.port} -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", opts, "-l", str(self.root / "log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop", timeout=60)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@/{db}?host={self.sockdir}&port={self.port}"

    def new_database(self) -> str:
        import psycopg

        name = f"gov_test_{next(self._dbs)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL binaries are absent (/usr/lib/postgresql/*/bin); `make test` installs them")
    server = PostgresServer(bindir)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request):
    """'' (SQLite in the data folder) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return ""
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def gov(tmp_path, store_url):
    g = open_governance(tmp_path / "data", store_url)
    try:
        yield g
    finally:
        g.close()


@pytest.fixture
def op():
    return operator("test")


ROLES = ("person", "ml_engineer", "privacy_officer", "admin")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(gov, op):
    """A real collector (IngestService + the collector app + the governance
    routes, consent check plugged in) served by uvicorn on 127.0.0.1, with
    person "pat", one role token per role and an enrolled device."""
    from tracework.collector.app import create_app
    from tracework.collector.governance_routes import governance_routes
    from tracework.collector.ingest import IngestService

    service = IngestService(gov.data_dir, consent_check=gov.consent_check, fsync=False, commit_interval_ms=5)
    app = create_app(service, tune_gc=False)
    app.router.routes.extend(governance_routes(gov, device_registry=service.registry))
    port = _port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the collector did not start")
            time.sleep(0.02)
        gov.add_person(op, "pat", "Pat", "eng")
        tokens = {}
        for role in ROLES:
            tokens[role] = gov.issue_token(op, role, f"test {role}", "pat" if role == "person" else None)[1]
        device_id, device_token = service.registry.enroll("pat", "laptop")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield {"client": client, "tokens": tokens, "device": device_token, "service": service, "app": app,
                   "url": f"http://127.0.0.1:{port}"}
    finally:
        server.should_exit = True
        thread.join(timeout=60)



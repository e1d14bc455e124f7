"""Older collectors as real processes, for the rolling-upgrade tests
(imported by name: a unique module name keeps pytest's imports unambiguous).

An old revision's source is exported from git history (``git archive REV
src``) and run with only that source on ``PYTHONPATH``; its own CLI enrolls
the device (and grants consent where that revision enforces it)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tracework.demo.processes import free_port, stop_process

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class OldCollector:
    rev: str
    #: The wire format it stores today's batches in: "ndjson" after a 415, or "arrow".
    stores_as: str
    #: Whether ``serve`` enforces governance consent at that revision (then the
    #: person gets consent to every class through that revision's CLI).
    enforces_consent: bool


def export_source(rev: str, dest: Path) -> Path:
    """``git archive REV src`` unpacked under ``dest``; skips when the clone
    does not hold ``rev``."""
    found = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{rev}^{{commit}}"],
                           capture_output=True, check=False)
    if found.returncode != 0:
        pytest.skip(f"git revision {rev} is not in this clone (shallow?); fetch full history to run this test")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


class OldCollectorProcess:
    """An old revision's collector (``python -m tracework.collector``, the way
    both revisions were started) and its CLI, with only its own source on the path."""

    def __init__(self, old: OldCollector, src: Path, data_dir: Path):
        self.old = old
        self.data_dir = data_dir
        # Nothing from this machine's settings: only the old source and a config file that does not exist.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWORK_")}
        self.env.update(PYTHONPATH=str(src), TRACEWORK_CONFIG=str(data_dir / "no-such-tracework.toml"))
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def run(self, *args: str) -> str:
        done = subprocess.run([sys.executable, *args], env=self.env, cwd=self.data_dir, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{self.old.rev}: {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def cli(self, *args: str) -> str:
        return self.run("-m", "tracework", *args, "--data-dir", str(self.data_dir))

    def enroll(self, person: str) -> str:
        """Device token from that revision's ``devices enroll``."""
        if self.old.enforces_consent:
            self.cli("people", "add", person)
            self.cli("consent", "grant", person, "--purpose", "agent_training", "--notice-version", "1",
                     "--classes", "key_text,key_timing,mouse,web,window_titles")
        return json.loads(self.cli("devices", "enroll", "--person", person, "--name", "laptop", "--json"))["token"]

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(self.data_dir / "collector.log", "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tracework.collector", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
                 "--port", str(port)],
                env=self.env, cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60  # bounds a hang; not a timing assertion
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"the {self.old.rev} collector did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def log(self) -> str:
        path = self.data_dir / "collector.log"
        return path.read_text(errors="replace") if path.exists() else ""

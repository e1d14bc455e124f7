"""Helpers for the agent tests: a real agent subprocess, xdotool, lake reads."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tracework.demo.processes import stop_process  # noqa: F401  (re-exported for tests)

PYTHON = sys.executable


def run_tracework(*args: str, env: dict | None = None, timeout: float = 120, check: bool = False,
                  cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real ``tracework`` command line in a subprocess."""
    result = subprocess.run([PYTHON, "-m", "tracework", *args], env=env or dict(os.environ), cwd=cwd,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"tracework {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result

MODIFIER_SYMS = {"Shift_L", "Shift_R", "Control_L", "Control_R", "Alt_L", "Alt_R", "Super_L", "Super_R",
                 "ISO_Level3_Shift", "Meta_L", "Meta_R", "Caps_Lock"}


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value (a deadline, not a
    timing assertion: it only bounds a hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class AgentProcess:
    """``tracework agent run`` as a subprocess with its own home."""

    def __init__(self, home: Path, display: str | None, cwd: Path, extra_env: dict | None = None):
        self.home = home
        self.cwd = cwd
        self.env = dict(os.environ, TRACEWORK_HOME=str(home), PYTHONUNBUFFERED="1")
        self.env.pop("TRACEWORK_CONFIG", None)
        if display:
            self.env["DISPLAY"] = display
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run_tracework(*args, env=self.env, check=check, cwd=self.cwd)

    def start(self, *args: str, wait_for: str = "started on") -> "AgentProcess":
        """Start ``agent run ARGS`` and wait until its log shows ``wait_for``
        one more time (default: the session started; "capture waits for
        consent" for an agent that has none)."""
        self.runs += 1
        out = open(self.home.parent / f"{self.home.name}-run{self.runs}.out", "w")
        self.stdout_path = Path(out.name)
        self.proc = subprocess.Popen([sys.executable, "-m", "tracework", "agent", "run", *args], env=self.env,
                                     cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        sessions_before = self._log().count(wait_for)
        wait_until(lambda: self._log().count(wait_for) > sessions_before or self.proc.poll() is not None,
                   what="the agent to start")
        assert self.proc.poll() is None, f"the agent exited: {self.stdout_path.read_text()}"
        return self

    def _log(self) -> str:
        log = self.home / "agent.log"
        return log.read_text() if log.exists() else ""

    def log_text(self) -> str:
        return self._log()

    def stop(self, timeout: float = 60.0) -> dict:
        """SIGTERM and wait; returns the run summary the agent prints."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        text = self.stdout_path.read_text()
        self.proc = None
        for line in reversed(text.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise AssertionError(f"the agent printed no summary:\n{text}")

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def cleanup(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 30)
            self.proc = None

    def status(self) -> dict:
        """What `tracework agent status --json` prints (computed in-process:
        the same function, without a Python start-up per poll)."""
        from tracework import config
        from tracework.agent.runner import status

        return json.loads(json.dumps(status(config.load({"home": str(self.home)})), default=str))

    def setup(self, collector_url: str | None = None, token: str | None = None, consent: bool = True) -> None:
        """What `agent configure` and `agent consent --accept` write (through the
        same AgentHome calls; test_cli.py covers the commands themselves)."""
        from tracework.agent.home import AgentHome

        from tracework.agent.consent_gate import pin_key

        home = AgentHome(self.home)
        if collector_url or token:
            home.configure(collector_url, token)
            # What `agent configure` does on first contact: pin the collector's
            # consent key (trust on first use), so the agent can verify documents.
            key = pin_key(home, collector_url, None)
            if key and token:
                from tracework.agent.consent_gate import ConsentGate

                gate = ConsentGate(home, collector_url, token, public_key=key)
                gate.poll()  # and cache the first consent document, as configure does
                gate.close()
        if consent:
            home.set_consent(True)

    def spool_rows(self) -> list[dict]:
        """Events still in the spool (read-only, straight from SQLite)."""
        db = sqlite3.connect(f"file:{self.home / 'spool.db'}?mode=ro", uri=True)
        try:
            return [json.loads(r[0]) for r in db.execute("SELECT data FROM events ORDER BY seq")]
        finally:
            db.close()

    def spool_value(self, key: str):
        db = sqlite3.connect(f"file:{self.home / 'spool.db'}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
            return json.loads(row[0]) if row else None
        finally:
            db.close()


def xdo(display: str, *args: str) -> None:
    subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display), check=True,
                   capture_output=True, timeout=120)


def lake_rows(data_dir: Path) -> list[dict]:
    from tracework.lake import read_events

    rows = read_events(data_dir).to_pylist()
    rows.sort(key=lambda r: r["seq"])
    return rows


def typed_text(rows: list[dict]) -> str:
    """The text the key downs typed (BackSpace deletes, Return is a newline)."""
    out: list[str] = []
    for r in rows:
        if r["type"] != "key_down":
            continue
        if r["key_sym"] == "BackSpace":
            if out:
                out.pop()
        elif r["key_sym"] == "Return":
            out.append("\n")
        elif r["char"] and r["modifiers"] in (0, 1) and r["key_sym"] not in MODIFIER_SYMS:
            out.append(r["char"])
    return "".join(out)


def non_modifier_key_downs(rows: list[dict]) -> int:
    return sum(1 for r in rows if r["type"] == "key_down" and r["key_sym"] not in MODIFIER_SYMS)


def grant_consent(data_dir: Path, person: str, classes=None, purpose: str = "agent_training") -> None:
    """Record ``person``'s consent in the collector's governance (the same
    domain call `tracework consent grant` makes), adding the person first if
    needed. ``classes`` None = every class the purpose allows."""
    from tracework.errors import GovernanceError
    from tracework.governance import open_governance
    from tracework.governance.purposes import PURPOSES
    from tracework.governance.service import operator

    gov = open_governance(data_dir)
    try:
        try:
            gov.person(person)
        except GovernanceError:
            gov.add_person(operator("tests"), person)
        chosen = sorted(PURPOSES[purpose][1]) if classes is None else list(classes)
        gov.grant(operator("tests"), person, purpose, chosen, gov.notices.current_version(purpose))
    finally:
        gov.close()


def withdraw_consent(data_dir: Path, person: str, purpose: str = "agent_training") -> None:
    """Record ``person``'s withdrawal of ``purpose`` in governance."""
    from tracework.governance import open_governance
    from tracework.governance.service import operator

    gov = open_governance(data_dir)
    try:
        gov.withdraw(operator("tests"), person, purpose)
    finally:
        gov.close()


def attributed_keys(rows: list[dict]) -> list[tuple[str, str | None]]:
    """(char, app of the focused window the stream says it was typed in) per key down."""
    current = None
    out = []
    for r in rows:
        if r["type"] == "focus_change":
            current = r["app"]
        elif r["type"] == "key_down" and r["char"]:
            out.append((r["char"], current))
    return out

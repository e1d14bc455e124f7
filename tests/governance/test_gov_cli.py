"""The governance commands: --help everywhere, a whole request cycle through
the real `tracework` command, and bad input that explains itself and changes nothing."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import zipfile

import pytest
from click.testing import CliRunner

from tracework.cli import cli
from tracework.errors import TraceworkError

GROUPS = [("people",), ("consent",), ("audit",), ("retention",), ("privacy", "request")]


def _commands():
    out = []
    for path in GROUPS:
        group = cli
        for name in path:
            group = group.commands[name]
        out.append(path)
        for name in group.commands:
            out.append(path + (name,))
    return out


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p))
def test_every_governance_command_has_help(path):
    result = CliRunner().invoke(cli, list(path) + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    # The first help line says what the command does.
    assert len(result.output.split("\n\n")[1].strip()) > 10


def _tw(data, *args, input=None):
    return subprocess.run(
        [sys.executable, "-m", "tracework", *args, "--data-dir", str(data)],
        capture_output=True, text=True, timeout=120, input=input,
    )


def _state(data):
    conn = sqlite3.connect(data / "governance.db")
    try:
        return tuple(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                     for t in ("gov_people", "gov_consent_events", "gov_tokens", "gov_policy", "gov_requests", "gov_audit"))
    finally:
        conn.close()


def test_request_cycle_through_the_command(tmp_path):
    data = tmp_path / "data"
    runner = CliRunner()

    def tw(*args):
        # In process (the same click commands `tracework` runs); the first and
        # the erasure go through the real command line below.
        r = runner.invoke(cli, list(args) + ["--data-dir", str(data)])
        assert r.exit_code == 0, (args, r.output, r.exception)
        return r.output

    assert _tw(data, "people", "add", "zoe@example.com", "--name", "Zoe", "--team", "eng").returncode == 0
    assert "granted typing_models" in tw("consent", "grant", "zoe@example.com", "--purpose", "typing_models",
                                         "--classes", "key_timing", "--notice-version", "1")
    shown = json.loads(tw("consent", "show", "zoe@example.com"))
    assert shown["purposes"]["typing_models"]["state"] == "granted" and len(shown["history"]) == 1
    out = tmp_path / "zoe.zip"
    tw("privacy", "request", "access", "zoe@example.com", "--out", str(out))
    z = zipfile.ZipFile(io.BytesIO(out.read_bytes()))
    assert json.loads(z.read("person.json"))["person"]["person_id"] == "zoe@example.com"
    r = _tw(data, "privacy", "request", "erase", "zoe@example.com", "--yes")
    assert r.returncode == 0 and "verified" in r.stdout and "withdrew consent for typing_models" in r.stdout, r.stderr
    assert tw("people", "token", "privacy_officer", "--label", "dpo").strip().splitlines()[-1].startswith("twg_")
    assert "deleted 0 raw rows" in tw("retention", "run")
    assert "intact" in tw("audit", "verify")
    actions = [json.loads(line)["action"] for line in tw("audit", "show", "--json").splitlines()]
    assert actions == ["person.add", "consent.grant", "data.export", "consent.withdraw", "data.erase", "token.issue", "retention.run"]


def test_bad_input_explains_what_to_do_and_changes_nothing(tmp_path):
    data = tmp_path / "data"
    assert _tw(data, "people", "add", "yan", "--team", "eng").returncode == 0
    before = _state(data)
    cases = [
        (("consent", "grant", "nobody", "--purpose", "typing_models", "--classes", "key_timing", "--notice-version", "1"), "unknown person"),
        (("consent", "grant", "yan", "--purpose", "ads", "--classes", "key_timing", "--notice-version", "1"), "unknown purpose"),
        (("consent", "grant", "yan", "--purpose", "typing_models", "--classes", "mouse", "--notice-version", "1"), "does not use"),
        (("consent", "grant", "yan", "--purpose", "typing_models", "--classes", "key_timing", "--notice-version", "3"), "current notice"),
        (("consent", "withdraw", "yan", "--purpose", "ads"), "unknown purpose"),
        (("people", "add", "yan"), "already exists"),
        (("people", "whois", "someone"), "not a pseudonym"),
        (("people", "policy", "retention.raw_days", "0"), "between"),
        (("people", "policy", "nonsense", "1"), "unknown policy setting"),
        (("people", "revoke-token", "tok_nothing"), "no live token"),
        (("people", "token", "person"), "must name its person"),
        (("privacy", "request", "erase", "yan"), "--yes"),
        (("privacy", "request", "erase", "nobody", "--yes"), "unknown person"),
        (("privacy", "request", "access", "nobody", "--out", str(tmp_path / "x.zip")), "unknown person"),
    ]
    runner = CliRunner()
    for args, message in cases:
        # In process for speed: the error the command raises, with its hint.
        r = runner.invoke(cli, list(args) + ["--data-dir", str(data)])
        assert isinstance(r.exception, TraceworkError), (args, r.output, r.exception)
        assert message in str(r.exception) and r.exception.hint, (args, str(r.exception))
    # And through the real command: `error: …` and the hint on stderr, exit 2, no traceback.
    for args, message in cases[:2]:
        r = _tw(data, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert message in r.stderr and "→" in r.stderr and "Traceback" not in r.stderr
    assert _state(data) == before
    assert not (tmp_path / "x.zip").exists()
    r = _tw(data, "people", "token", "emperor")
    assert r.returncode == 2 and "Invalid value" in r.stderr
    assert _state(data) == before

"""Issue 3 end to end with real parts: xdotool types into real windows on
Xvfb, the real agent (`tracework agent run`) captures and protects, the spool
is inspected while the real collector is down, then the collector comes up
and the lake is inspected.

Typed: an email, a phone number, a card number, an AWS access key, a GitHub
token, a private key block, a password into a window titled like a sudo
prompt, and a harmless control sentence. In the spool and in the lake:
the typed text rebuilt from the key events, and every decoded string field
of every event, hold none of the secrets; the control sentence is there;
the key events that typed each secret exist and carry its placeholder; the
agent's counts name each placeholder.

Nothing is mocked.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))

from agent_helpers import AgentProcess, lake_rows, wait_until, xdo  # noqa: E402

from tracework.privacy.textstream import TypedText  # noqa: E402

pytestmark = pytest.mark.x11

MARK = "\u2588"
_rng = random.Random(20261123)
GITHUB = "ghp_" + "".join(_rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(36))
KEY_LINES = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
]
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_LINES) + "\n-----END RSA PRIVATE KEY-----"
SECRETS = {
    "EMAIL": "ana.lopez@example.org",
    "PHONE": "+1 415 555 0132",
    "CARD": "4111 1111 1111 1111",
    "AWS_KEY": "AKIAIOSFODNN7EXAMPLE",
    "GITHUB_TOKEN": GITHUB,
}
PASSWORD = "Hunter2-Tr0ub4dor"
CONTROL = "The quarterly report is ready for review."
SENTENCES = [
    f"Please write to {SECRETS['EMAIL']} about it.\n",
    f"Call me at {SECRETS['PHONE']} tomorrow.\n",
    f"My card is {SECRETS['CARD']} thanks.\n",
    f"export AWS_ACCESS_KEY_ID={SECRETS['AWS_KEY']}\n",
    f"git remote set-url origin https://{GITHUB}@github.com/acme/app.git\n",
    PEM + "\n",
    CONTROL + "\n",
]


@pytest.fixture
def agent_home(tmp_path, xvfb):
    made: list[AgentProcess] = []

    def make(name: str = "home") -> AgentProcess:
        a = AgentProcess(tmp_path / name, xvfb, tmp_path)
        made.append(a)
        return a

    try:
        yield make
    finally:
        for a in made:
            a.cleanup()


def rebuild(rows: list[dict]) -> str:
    """Typed text from stored key events; a redacted key types a mark."""
    buf = TypedText()
    for r in rows:
        if r.get("type") != "key_down":
            continue
        if r.get("redacted"):
            if r.get("key_class") != "other":  # "other": a scrubbed Shift, or a denied window's key
                buf._insert(MARK)
        else:
            buf.key_down(r.get("key_sym"), r.get("char"), r.get("modifiers") or 0)
    return buf.text()


def strings(rows: list[dict]) -> list[str]:
    out: list[str] = []

    def walk(v):
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    walk(rows)
    return out


def check_protected(rows: list[dict], where: str) -> None:
    text = rebuild(rows)
    fields = strings(rows)
    everything = "\n".join(fields)
    secrets = list(SECRETS.values()) + KEY_LINES + [PASSWORD]
    for secret in secrets:
        assert secret not in text, f"{where}: {secret!r} in the rebuilt text"
        assert secret not in everything, f"{where}: {secret!r} in a string field"
        # Not even a long piece of it (the card's groups are too short to mean anything).
        core = secret.replace(" ", "")
        for i in range(0, len(core) - 12, 6):
            assert core[i : i + 12] not in everything.replace(" ", ""), f"{where}: part of {secret!r} leaked"
    assert CONTROL in text, f"{where}: the control sentence is missing:\n{text}"
    assert "Please write to " + MARK * len(SECRETS["EMAIL"]) + " about it." in text

    downs = [r for r in rows if r.get("type") == "key_down"]
    ups = [r for r in rows if r.get("type") == "key_up"]
    for placeholder, secret in SECRETS.items():
        marked = [r for r in downs if r.get("redacted") == placeholder]
        # Shift presses for the secret's capitals are scrubbed too (class "other").
        assert all(r.get("key_sym") is None and r.get("modifiers") is None or r.get("modifiers") == 0 for r in marked)
        typed_keys = [r for r in marked if r.get("key_class") != "other"]
        # One key down per character of the secret.
        assert len(typed_keys) == len(secret), f"{where}: {placeholder} has {len(typed_keys)} keys, typed {len(secret)}:\n{text}\n{sorted(set(str(r.get('redacted')) for r in downs))}"
        assert all(r.get("char") is None and r.get("key_sym") is None and r.get("key_code") is None for r in typed_keys)
        assert {r["key_class"] for r in typed_keys} <= {"letter", "digit", "punct", "space"}
        assert len([r for r in ups if r.get("redacted") == placeholder and r.get("key_class") != "other"]) == len(secret)
    pem_keys = [r for r in downs if r.get("redacted") == "PRIVATE_KEY"]
    assert len(pem_keys) >= sum(len(line) for line in KEY_LINES)
    pw_keys = [r for r in downs if r.get("redacted") == "PASSWORD"]
    assert len(pw_keys) >= len(PASSWORD) and all(r["key_class"] == "other" for r in pw_keys)
    denied = [r for r in rows if r.get("type") == "focus_change" and r.get("denied")]
    assert denied and all(r.get("title") is None and r.get("app") is None for r in denied)


@pytest.mark.timeout(420)
def test_typed_secrets_never_reach_spool_or_lake(xvfb, x_window, collector, agent_home):
    c = collector()
    editor = x_window("Notes - redaction test", "RedactNotes", 20, 20)
    prompt = x_window("sudo - password for alice", "RedactTerm", 640, 40)
    a = agent_home()
    a.cli("agent", "configure", "--collector", c.url, "--token", c.enroll())
    a.cli("agent", "consent", "--accept")
    c.stop()  # collector down: everything waits in the spool, where we look first
    a.start()

    xdo(xvfb, "windowfocus", "--sync", str(editor["xid"]))
    for sentence in SENTENCES[:-1]:
        xdo(xvfb, "type", "--delay", "12", "--", sentence)
    # No wait before a switch: the agent attributes each key to the window
    # focused when it was pressed (focus events in the same XRecord stream).
    xdo(xvfb, "windowfocus", "--sync", str(prompt["xid"]))
    xdo(xvfb, "type", "--delay", "12", "--", PASSWORD)
    xdo(xvfb, "key", "Return")
    xdo(xvfb, "windowfocus", "--sync", str(editor["xid"]))
    xdo(xvfb, "type", "--delay", "12", "--", SENTENCES[-1])

    # The spool, before anything is uploaded.
    spooled = wait_until(lambda: (lambda rows: rows if CONTROL in rebuild(rows) else None)(a.spool_rows()),
                         timeout=120, what="the control sentence in the spool")
    check_protected(spooled, "spool")

    # The lake, after upload.
    c.start()
    wait_until(lambda: a.status().get("pending_events") == 0, timeout=180, what="the upload")
    status = a.status()
    summary = a.stop()
    rows = lake_rows(c.data_dir)
    check_protected(rows, "lake")

    counts = status.get("redaction_counts") or summary.get("redaction_counts") or {}
    for placeholder in list(SECRETS) + ["PRIVATE_KEY", "PASSWORD"]:
        assert counts.get(placeholder, 0) >= 1, (placeholder, counts)
    assert counts["EMAIL"] == counts["PHONE"] == counts["CARD"] == counts["AWS_KEY"] == counts["GITHUB_TOKEN"] == 1
    # The status command shows them to the person.
    shown = a.cli("agent", "status").stdout
    assert "EMAIL" in shown and "PASSWORD" in shown

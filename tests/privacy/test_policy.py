"""The app policy: default deny lists, allow-list mode, the policy file and
its errors, and what the policy stage keeps of a denied window."""

from __future__ import annotations

import pytest

from tracework.errors import PolicyError
from tracework.events.model import FocusChange, KeyDown, KeyUp, MouseMove
from tracework.privacy.chain import build_pipeline
from tracework.privacy.policy import PolicyStage, default_policy, load_policy, parse_policy, regex_safety_problem
from tracework.privacy.textstream import key_events_for_text


@pytest.mark.parametrize(
    "app,title,url,category",
    [
        ("1Password", "1Password", None, "password_manager"),
        ("KeePassXC", "Passwords.kdbx - KeePassXC", None, "password_manager"),
        ("Bitwarden", "Bitwarden", None, "password_manager"),
        ("seahorse", "Passwords and Keys", None, "password_manager"),
        ("firefox", "Mozilla Firefox Private Browsing", None, "private_browsing"),
        ("Google-chrome", "New Tab - Google Chrome (Incognito)", None, "private_browsing"),
        ("msedge", "New tab - [InPrivate] - Microsoft Edge", None, "private_browsing"),
        ("brave-browser", "New Tab - Brave (Private)", None, "private_browsing"),
        ("xscreensaver", "", None, "lock_screen"),
        ("LockApp.exe", "", None, "lock_screen"),
        ("xterm", "[sudo] password for alice", None, "credential_prompt"),
        ("gnome-terminal", "alice@host: sudo apt upgrade", None, "credential_prompt"),
        ("firefox", "Sign in - Google Accounts", None, "credential_prompt"),
        ("firefox", "Two-factor authentication", None, "credential_prompt"),
        ("firefox", "Enter verification code", None, "credential_prompt"),
        ("firefox", "Acme", "https://acme.example/login?next=/", "credential_prompt"),
        ("pinentry-gtk-2", "", None, "credential_prompt"),
    ],
)
def test_denied_by_default(app, title, url, category):
    d = default_policy().decide(app, title, url)
    assert not d.allowed and d.category == category


@pytest.mark.parametrize(
    "app,title,url",
    [
        ("code", "main.py - Visual Studio Code", None),
        ("firefox", "Pinterest - Mozilla Firefox", "https://pinterest.com/ideas"),
        ("xterm", "alice@host: ~/src", None),
        ("firefox", "Passport renewal guide", "https://gov.example/passport"),
        ("gedit", "notes.txt", None),
    ],
)
def test_ordinary_windows_recorded(app, title, url):
    assert default_policy().decide(app, title, url).allowed


def test_allow_list_mode_and_allow_overrides_title_rules():
    p = parse_policy({"mode": "allow_list", "allow": {"apps": ["code", "jira"]}})
    assert p.decide("code", "x", None).allowed
    assert not p.decide("gedit", "notes", None).allowed
    assert not p.decide("1password", "", None).allowed
    p = parse_policy({"allow": {"titles": ["^Login - Team Wiki$"]}})
    assert p.decide("firefox", "Login - Team Wiki", None).allowed
    assert not p.decide("keepassxc", "Login - Team Wiki", None).allowed  # app rules always apply


def test_inherit_defaults_false_replaces_lists():
    p = parse_policy({"inherit_defaults": False, "deny": {"mine": {"apps": ["slack"]}}})
    assert p.decide("1password", "", None).allowed
    assert not p.decide("slack", "", None).allowed


def test_policy_file_round_trip(tmp_path):
    f = tmp_path / "policy.toml"
    f.write_text('hold_timeout_ms = 1500\n[deny.chat]\napps = ["slack"]\n[redaction]\nallow_values = ["help@example.com"]\n')
    p = load_policy(f)
    assert p.hold_timeout_ms == 1500 and not p.decide("slack", "", None).allowed
    assert p.redactor().find("help@example.com") == []
    assert load_policy(None) is default_policy()


@pytest.mark.parametrize(
    "content,message",
    [
        ("mode = 'spy'", "mode must be"),
        ("hold_timeout_ms = 0", "hold_timeout_ms"),
        ("surprise = 1", "unknown policy keys"),
        ("[deny.x]\napps = ['(a+)+']", "repeat inside a repeat"),
        ("[deny.x]\napps = ['[unclosed']", "not a valid regular expression"),
        ("[deny.x]\nplaceholder = 'lower'", "upper-case"),
        ("[redaction]\ndisabled = ['nope']", "unknown detectors"),
        ("[redaction]\nphone_regions = ['XX']", "unknown regions"),
        ("[[redaction.custom]]\nname = 'EMP'\npattern = 'E[0-9]+'", "unbounded repeat"),
        ("[[redaction.custom]]\nname = 'EMP'", "exactly `name` and `pattern`"),
        ("this is = not toml =", "not valid TOML"),
    ],
)
def test_bad_policy_file_gives_clear_error(tmp_path, content, message):
    f = tmp_path / "policy.toml"
    f.write_text(content)
    with pytest.raises(PolicyError, match=message) as info:
        load_policy(f)
    assert str(f) in str(info.value)


def test_missing_and_binary_policy_files(tmp_path):
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "absent.toml")
    junk = tmp_path / "junk.toml"
    junk.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(junk)


def test_regex_safety_check():
    assert regex_safety_problem("EMP-[0-9]{6}") is None
    assert regex_safety_problem("(a|b){1,3}") is None
    assert "unbounded" in regex_safety_problem("a.*b")
    assert "repeat inside a repeat" in regex_safety_problem("(ab{1,3}){1,5}")
    assert regex_safety_problem("a.*b", allow_unbounded=True) is None


def test_stage_keeps_only_timing_in_denied_window():
    stage = PolicyStage()
    events = [
        FocusChange(seq=0, t_ns=1, session="s", app="keepassxc", title="db.kdbx", url=None, window_id=5, win_w=800),
        *key_events_for_text("S3cret!", seq0=1, t0_ns=2),
        MouseMove(seq=100, t_ns=10**9, session="s", x=3, y=4),
        FocusChange(seq=101, t_ns=2 * 10**9, session="s", app="gedit", title="notes"),
        *key_events_for_text("hi", seq0=102, t0_ns=3 * 10**9),
    ]
    out = stage.process(events, 4 * 10**9)
    assert [e.seq for e in out] == [e.seq for e in events] and [e.t_ns for e in out] == [e.t_ns for e in events]
    fc = out[0]
    assert fc.denied and (fc.app, fc.title, fc.url) == (None, None, None) and fc.window_id == 5 and fc.win_w == 800
    denied_keys = [e for e in out[1:15]]
    assert all(isinstance(e, (KeyDown, KeyUp)) for e in denied_keys)
    for e in denied_keys:
        assert (e.key_code, e.key_sym, e.char, e.modifiers) == (None, None, None, 0)
        assert e.key_class == "other" and e.redacted == "DENIED_WINDOW"
    assert out[15] == events[15]  # mouse untouched
    assert not out[16].denied and out[16].title == "notes"
    assert [e.char for e in out[17:]] == ["h", "h", "i", "i"]
    assert stage.counts() == {"DENIED_WINDOW": 1}
    assert stage.describe().name == "app_policy"


def test_allow_list_mode_denies_before_first_focus():
    stage = PolicyStage(parse_policy({"mode": "allow_list", "allow": {"apps": ["code"]}}))
    out = stage.process(key_events_for_text("x"), 10)
    assert all(e.redacted == "DENIED_WINDOW" and e.char is None for e in out)


def test_chain_puts_policy_then_redaction_first():
    names = [s.describe().name for s in build_pipeline().stages]
    assert names[:2] == ["app_policy", "text_redaction"]


def test_release_after_leaving_a_denied_window_is_scrubbed_too():
    stage = PolicyStage()
    events = [
        FocusChange(seq=0, t_ns=1, session="s", app="xterm", title="[sudo] password for bob"),
        KeyDown(seq=1, t_ns=2, session="s", key_code=38, key_sym="a", char="a"),
        FocusChange(seq=2, t_ns=3, session="s", app="gedit", title="notes"),
        KeyUp(seq=3, t_ns=4, session="s", key_code=38, key_sym="a", char="a"),
        KeyDown(seq=4, t_ns=5, session="s", key_code=38, key_sym="a", char="a"),
        KeyUp(seq=5, t_ns=6, session="s", key_code=38, key_sym="a", char="a"),
    ]
    out = stage.process(events, 10)
    assert out[3].char is None and out[3].redacted == "PASSWORD"
    assert out[4].char == "a" and out[5].char == "a"  # a new press in the allowed window is recorded


def test_docs_name_every_detector_placeholder_and_policy_key():
    from pathlib import Path

    from tracework.privacy import policy as policy_mod
    from tracework.privacy.redact import DETECTORS, PLACEHOLDERS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "privacy-redaction.md").read_text()
    missing = [f"`{name}`" for name in list(DETECTORS) + list(PLACEHOLDERS) if f"`{name}`" not in doc]
    keys = policy_mod._TOP_KEYS | policy_mod._DENY_KEYS | policy_mod._LIST_KEYS | policy_mod._REDACTION_KEYS
    missing += [f"`{k}`" for k in sorted(keys) if f"`{k}`" not in doc]
    assert not missing, f"docs/privacy-redaction.md does not mention {missing}"


def test_policy_example_in_docs_loads(tmp_path):
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "privacy-redaction.md").read_text()
    example = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)
    f = tmp_path / "policy.toml"
    f.write_text(example)
    p = load_policy(f)
    assert p.mode == "allow_list" and p.hold_timeout_ms == 2000
    assert p.decide("code", "x", None).allowed and not p.decide("slack", "x", None).allowed
    assert [s.placeholder for s in p.redactor().find("EMP-123456 at 10.0.0.1")] == ["EMPLOYEE_ID"]


def test_describe_names_the_policy_file_without_its_folder(tmp_path):
    f = tmp_path / "team-policy.toml"
    f.write_text("hold_timeout_ms = 1500\n")
    params = PolicyStage(load_policy(f)).describe().params
    assert params["source"] == "team-policy.toml" and str(tmp_path) not in str(params)

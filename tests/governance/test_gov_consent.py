"""Consent: grants and withdrawals with history, notice versions, the signed
document the agent verifies, the collector's batch check and the builder's filter."""

from __future__ import annotations

import time

import pytest
import zstandard

from tracework.errors import AuthError, ConsentError, GovernanceError
from tracework.events import BatchHeader, ButtonDown, FocusChange, KeyDown, MouseMove, SessionStart, decode_batch, encode_batch
from tracework.governance import (
    ConsentRefused,
    Principal,
    ReplayedRequest,
    event_classes,
    open_governance,
    verify_consent_document,
)

NOW = time.time_ns()


def _batch(events):
    body = encode_batch(BatchHeader(batch_id="batch-0001", schema_version=1, event_count=len(events)), events)
    return decode_batch(zstandard.ZstdDecompressor().decompress(body, max_output_size=1 << 24), max_events=1000)


KEYS = [KeyDown(seq=1, t_ns=NOW, session="s1", key_code=38, key_sym="a", char="a")]
KEY_CLASS_ONLY = [KeyDown(seq=1, t_ns=NOW, session="s1", key_class="letter")]
MOUSE = [MouseMove(seq=2, t_ns=NOW, session="s1", x=1, y=2), ButtonDown(seq=3, t_ns=NOW, session="s1", x=1, y=2, button="left")]
TITLE = [FocusChange(seq=4, t_ns=NOW, session="s1", app="xterm", title="notes")]
URL = [FocusChange(seq=5, t_ns=NOW, session="s1", url="https://intranet/x")]
CONTROL = [SessionStart(seq=0, t_ns=NOW, session="s1", platform="linux-x11", screen_w=800, screen_h=600, agent_version="t")]


class Device:
    """What the collector passes as identity (DeviceIdentity has these fields)."""

    def __init__(self, person_id):
        self.person_id = person_id
        self.device_id = "dev_1"


def test_event_classes_follow_the_documented_mapping():
    assert event_classes(KEYS[0]) == {"key_text", "key_timing"}
    assert event_classes(KEY_CLASS_ONLY[0]) == {"key_timing"}
    assert {c for e in MOUSE for c in event_classes(e)} == {"mouse"}
    assert event_classes(TITLE[0]) == {"window_titles"}
    assert event_classes(URL[0]) == {"web"}
    assert event_classes(CONTROL[0]) == set()


def test_grant_and_withdraw_history_is_kept_with_time_and_notice_version(gov, op):
    gov.add_person(op, "alice@example.com", "Alice", "eng")
    me = Principal("person", "tok_a", "alice@example.com")
    before = time.time_ns()
    gov.grant(me, "alice@example.com", "typing_models", ["key_timing"], 1, request_id="grant-0001")
    gov.withdraw(me, "alice@example.com", "typing_models", request_id="withdraw-0001")
    gov.grant(me, "alice@example.com", "typing_models", ["key_text", "key_timing"], 1, request_id="grant-0002")
    history = gov.consent_history(me, "alice@example.com")
    assert [(h["action"], h["classes"], h["notice_version"]) for h in history] == [
        ("grant", ["key_timing"], 1),
        ("withdraw", [], 0),
        ("grant", ["key_text", "key_timing"], 1),
    ]
    assert all(h["at_ns"] >= before for h in history)
    assert [h["at_ns"] for h in history] == sorted(h["at_ns"] for h in history)
    status = gov.consent_status(me, "alice@example.com")["purposes"]
    assert status["typing_models"]["state"] == "granted"
    assert status["cursor_models"]["state"] == "not_given"
    # Every change is in the audit log, under the audit name, never the identity.
    actions = [e.action for e in gov.audit.entries()]
    assert actions.count("consent.grant") == 2 and actions.count("consent.withdraw") == 1
    assert not any("alice" in (e.subject + e.actor + str(e.details)) for e in gov.audit.entries())


def test_a_new_notice_version_needs_a_new_consent(tmp_path, store_url, op):
    notices = tmp_path / "notices"
    notices.mkdir()
    g = open_governance(tmp_path / "data", store_url)
    try:
        g.add_person(op, "bob", "Bob", "eng")
        g.grant(op, "bob", "cursor_models", ["mouse"], 1)
        assert "cursor_models" in g.effective_consent("bob")
    finally:
        g.close()
    (notices / "cursor_models.v2.md").write_text("# Cursor models — notice version 2\n\nWe now also keep scroll speed.\n")
    g = open_governance(tmp_path / "data", store_url, notices_dir=notices)
    try:
        assert g.notices.current_version("cursor_models") == 2
        assert g.effective_consent("bob") == {}
        assert g.consent_status(op, "bob")["purposes"]["cursor_models"]["state"] == "needs_new_consent"
        with pytest.raises(GovernanceError, match="current notice"):
            g.grant(op, "bob", "cursor_models", ["mouse"], 1)
        g.grant(op, "bob", "cursor_models", ["mouse"], 2)
        assert g.effective_consent("bob")["cursor_models"].notice_version == 2
    finally:
        g.close()


def test_bad_grants_are_refused_and_change_nothing(gov, op):
    gov.add_person(op, "carol", "Carol", "ops")
    entries = len(gov.audit.entries())
    for args, match in [
        (("nobody", "typing_models", ["key_timing"], 1), "unknown person"),
        (("carol", "spying", ["key_timing"], 1), "unknown purpose"),
        (("carol", "typing_models", ["mouse"], 1), "does not use data class"),
        (("carol", "typing_models", ["keys"], 1), "unknown data class"),
        (("carol", "typing_models", [], 1), "at least one"),
        (("carol", "typing_models", ["key_timing"], 7), "current notice"),
    ]:
        with pytest.raises(GovernanceError, match=match):
            gov.grant(op, *args)
    other = Principal("person", "tok_x", "someone-else")
    with pytest.raises(AuthError, match="own data"):
        gov.grant(other, "carol", "typing_models", ["key_timing"], 1)
    gov.grant(op, "carol", "typing_models", ["key_timing"], 1, request_id="once-only-1")
    with pytest.raises(ReplayedRequest):
        gov.grant(op, "carol", "typing_models", ["key_timing"], 1, request_id="once-only-1")
    assert len(gov.consent_history(op, "carol")) == 1
    assert len(gov.audit.entries()) == entries + 1


def test_signed_document_verifies_and_refuses_forgery_expiry_and_replay(gov, op):
    gov.add_person(op, "dana", "Dana", "eng")
    gov.grant(op, "dana", "cursor_models", ["mouse", "window_titles"], 1)
    key = gov.consent_public_key()
    first = gov.consent_document("dana", "dev_1")
    doc = verify_consent_document(first, key)
    assert doc.classes == ["mouse", "window_titles"]
    assert doc.person == gov.pseudonym("dana") and doc.device == "dev_1"
    assert 0 < doc.expires_ns - doc.issued_ns <= 60 * 10**9

    # A document edited in transit (more classes) fails the signature.
    forged = dict(first, payload=first["payload"].replace('"classes":["mouse","window_titles"]', '"classes":["key_text","mouse","window_titles"]'))
    assert forged["payload"] != first["payload"]
    with pytest.raises(ConsentError, match="signature"):
        verify_consent_document(forged, key)
    # Signed by some other key.
    from tracework.governance.signing import SigningKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    impostor = SigningKey(Ed25519PrivateKey.generate())
    with pytest.raises(ConsentError, match="signature"):
        verify_consent_document(dict(first, signature=impostor.sign(first["payload"].encode())), key)
    # Expired.
    with pytest.raises(ConsentError, match="expired"):
        verify_consent_document(first, key, now_ns=doc.expires_ns)
    # Withdrawal: the new document carries no classes; replaying the old one is refused.
    gov.withdraw(op, "dana", "cursor_models")
    second = verify_consent_document(gov.consent_document("dana", "dev_1"), key)
    assert second.classes == [] and second.consent_version > doc.consent_version
    with pytest.raises(ConsentError, match="replayed"):
        verify_consent_document(first, key, min_consent_version=second.consent_version, min_issued_ns=second.issued_ns)
    for bad in ["not json", {"payload": 1}, {}]:
        with pytest.raises(ConsentError):
            verify_consent_document(bad, key)


def test_collector_check_refuses_classes_without_consent(gov, op):
    gov.add_person(op, "erin", "Erin", "eng")
    erin = Device("erin")
    with pytest.raises(ConsentRefused, match="no consent at all"):
        gov.consent_check(erin, _batch(KEYS))
    gov.consent_check(erin, _batch(CONTROL))  # control events carry no data class
    gov.grant(op, "erin", "typing_models", ["key_timing"], 1)
    gov.consent_check(erin, _batch(KEY_CLASS_ONLY))
    with pytest.raises(ConsentRefused, match="key_text") as info:
        gov.consent_check(erin, _batch(CONTROL + KEYS))
    assert info.value.status == 403 and "line 3" in str(info.value)
    with pytest.raises(ConsentRefused, match="mouse"):
        gov.consent_check(erin, _batch(MOUSE))
    gov.grant(op, "erin", "agent_training", ["key_text", "key_timing", "mouse", "window_titles"], 1)
    gov.consent_check(erin, _batch(KEYS + MOUSE + TITLE))
    with pytest.raises(ConsentRefused, match="web"):
        gov.consent_check(erin, _batch(URL))
    gov.withdraw(op, "erin", "agent_training")
    with pytest.raises(ConsentRefused, match="mouse"):
        gov.consent_check(erin, _batch(MOUSE))


def test_builder_filter_lists_only_people_consenting_to_the_purpose(gov, op):
    for pid in ("f1", "f2", "f3"):
        gov.add_person(op, pid, pid, "eng")
    gov.grant(op, "f1", "typing_models", ["key_timing"], 1)
    gov.grant(op, "f2", "cursor_models", ["mouse"], 1)
    gov.grant(op, "f3", "typing_models", ["key_timing"], 1)
    gov.withdraw(op, "f3", "typing_models")
    assert gov.allowed_persons("typing_models") == {gov.pseudonym("f1")}
    assert gov.allowed_persons("cursor_models") == {gov.pseudonym("f2")}
    assert gov.allowed_persons("agent_training") == set()
    with pytest.raises(GovernanceError, match="unknown purpose"):
        gov.allowed_persons("marketing")
    with pytest.raises(AuthError):
        gov.allowed_persons("typing_models", principal=Principal("admin", "tok_adm"))
    assert any(e.action == "dataset.build" for e in gov.audit.entries())


def test_pseudonyms_survive_key_rotation(gov, op):
    gov.add_person(op, "gil", "Gil", "eng")
    old = gov.pseudonym("gil")
    gov.keyring.rotate()
    assert gov.pseudonym("gil") != old
    assert gov.pseudonyms("gil") == [gov.pseudonym("gil"), old]
    who = gov.identity_of(op, old)
    assert who["person_id"] == "gil"


from hypothesis import given, settings, strategies as st  # noqa: E402

from tracework.governance.consent import batch_classes  # noqa: E402

_opt = st.one_of(st.none(), st.text(max_size=3))
_event = st.one_of(
    st.builds(KeyDown, seq=st.just(0), t_ns=st.just(NOW), session=st.just("s"), key_code=st.one_of(st.none(), st.integers(0, 300)), key_sym=_opt, char=_opt, key_class=_opt),
    st.builds(MouseMove, seq=st.just(0), t_ns=st.just(NOW), session=st.just("s"), x=st.integers(0, 9), y=st.integers(0, 9)),
    st.builds(FocusChange, seq=st.just(0), t_ns=st.just(NOW), session=st.just("s"), app=_opt, title=_opt, url=_opt),
    st.just(CONTROL[0]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=30))
def test_fast_batch_scan_agrees_with_the_documented_mapping(events):
    expected: dict[str, int] = {}
    for i, ev in enumerate(events):
        for c in event_classes(ev):
            expected.setdefault(c, i)
    assert batch_classes(events) == expected


def test_collector_hook_opens_governance_of_the_data_folder(tmp_path, op):
    from tracework.governance import collector_consent_check

    g = open_governance(tmp_path / "data")
    try:
        g.add_person(op, "hal", "Hal", "eng")
        g.grant(op, "hal", "typing_models", ["key_timing"], 1)
    finally:
        g.close()
    check = collector_consent_check(tmp_path / "data")
    check(Device("hal"), _batch(KEY_CLASS_ONLY))
    with pytest.raises(ConsentRefused):
        check(Device("hal"), _batch(MOUSE))


from tracework.events import events_to_table  # noqa: E402
from tracework.governance.consent import table_batch_classes  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=30))
def test_columnar_batch_scan_agrees_with_the_event_scan(events):
    """An Arrow batch is classified from its columns; same answer as walking
    the events (the collector's NDJSON path)."""
    assert table_batch_classes(events_to_table(events)) == batch_classes(events)

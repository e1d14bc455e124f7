"""The redaction stage on key-event streams: what is held, what comes out,
what is counted, and a property test over random text with planted secrets
split across random batch boundaries and edited with random backspaces."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracework.events.model import ButtonDown, FocusChange, KeyDown, KeyUp, MouseMove
from tracework.privacy.policy import PolicyStage, default_policy, parse_policy
from tracework.privacy.redaction_stage import RedactionStage, key_class
from tracework.privacy.stage import Pipeline
from tracework.privacy.textstream import TypedText, key_events_for_text

STEP = 80_000_000  # 80 ms between keys: fast typing, far below the hold timeout
SECRET_MARK = "\u2588"


def focus(seq: int, t: int, title: str = "notes.txt - editor", app: str = "gedit") -> FocusChange:
    return FocusChange(seq=seq, t_ns=t, session="s", app=app, title=title, window_id=7)


def run(events, chunk_sizes=None, stage=None, flush=True):
    stage = stage or RedactionStage()
    out = []
    i = 0
    sizes = iter(chunk_sizes or [])
    while i < len(events):
        n = next(sizes, 5)
        batch = events[i : i + n]
        i += n
        out += stage.process(batch, batch[-1].t_ns)
    if flush:
        out += stage.flush(events[-1].t_ns if events else 0)
    return out, stage


def output_text(events) -> str:
    """Rebuild the typed text from output key events; a redacted key types a mark."""
    buf = TypedText()
    for e in events:
        if isinstance(e, KeyDown):
            if e.redacted:
                buf._insert(SECRET_MARK)
            else:
                buf.key_down(e.key_sym, e.char, e.modifiers)
    return buf.text()


def all_strings(events) -> list[str]:
    out = []

    def walk(v):
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for e in events:
        walk(msgspec.to_builtins(e))
    return out


def typed(text: str, t0: int = STEP, seq0: int = 1):
    return key_events_for_text(text, t0_ns=t0, step_ns=STEP, seq0=seq0)


def test_key_class():
    assert [key_class(c) for c in ["a", "Z", "7", " ", "\n", "@", None]] == ["letter", "letter", "digit", "space", "space", "punct", "other"]


def test_secret_keys_lose_identity_keep_timing_and_class():
    text = "mail bob@example.com now "
    events = [focus(0, 0)] + typed(text)
    out, stage = run(events)
    assert [e.seq for e in out] == [e.seq for e in events]
    assert [e.t_ns for e in out] == [e.t_ns for e in events]
    start = text.index("bob")
    secret_seqs = {ev.seq for ev in events[1:][start * 2 : (start + len("bob@example.com")) * 2]}
    for e in out:
        if e.seq in secret_seqs:
            assert (e.key_code, e.key_sym, e.char) == (None, None, None)
            assert e.redacted == "EMAIL" and e.key_class in ("letter", "punct")
        elif isinstance(e, (KeyDown, KeyUp)):
            assert e.redacted is None and e.char is not None
    assert output_text(out) == "mail " + SECRET_MARK * 15 + " now "
    assert stage.counts() == {"EMAIL": 1}


def test_token_being_typed_is_held_until_complete():
    stage = RedactionStage()
    events = [focus(0, 0)] + typed("key AKIAIOSFODNN7EXA")
    out = stage.process(events, events[-1].t_ns)
    # "key " is out; the unfinished token is held, so nothing of it has been released.
    released = [e.char for e in out if isinstance(e, KeyDown)]
    assert "".join(released) == "key "
    more = typed("MPLE ok ", t0=events[-1].t_ns + STEP, seq0=events[-1].seq + 1)
    out2 = stage.process(more, more[-1].t_ns)
    keys = [e for e in out + out2 if isinstance(e, KeyDown)]
    assert "AKIA" not in "".join(e.char or "" for e in keys)
    assert sum(1 for e in keys if e.redacted == "AWS_KEY") == 20
    assert stage.counts() == {"AWS_KEY": 1}


def test_hold_timeout_releases_held_token_after_scanning_it():
    stage = RedactionStage()
    events = [focus(0, 0)] + typed("token ghp_" + "Ab12" * 9)
    out = stage.process(events, events[-1].t_ns)
    assert not any(getattr(e, "redacted", None) for e in out)
    assert "ghp_" not in "".join(e.char or "" for e in out if isinstance(e, KeyDown))
    timeout_ns = default_policy().hold_timeout_ms * 1_000_000
    out2 = stage.process([], events[-1].t_ns + timeout_ns)
    assert sum(1 for e in out2 if isinstance(e, KeyDown) and e.redacted == "GITHUB_TOKEN") == 40
    assert stage.counts() == {"GITHUB_TOKEN": 1}


def test_focus_change_click_and_mouse_keep_order():
    events = [focus(0, 0)] + typed("call +1 415 555 0132")
    t = events[-1].t_ns
    events += [MouseMove(seq=999, t_ns=t + 1, session="s", x=1, y=2), ButtonDown(seq=1000, t_ns=t + 2, session="s", x=1, y=2, button="left")]
    out, stage = run(events, flush=False)
    assert [e.seq for e in out] == [e.seq for e in events]  # the click completed the text
    assert output_text(out) == "call " + SECRET_MARK * 15
    assert stage.counts() == {"PHONE": 1}


def test_private_key_block_lines_are_held_and_redacted():
    body = ["MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun", "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK", "LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo"]
    block = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(body) + "\n-----END RSA PRIVATE KEY-----\n"
    events = [focus(0, 0)] + typed("here " + block + "done ")
    out, stage = run(events, chunk_sizes=[3] * 10000)
    text = output_text(out)
    for line in body:
        assert line not in text
        assert all(line[i : i + 8] not in "".join(all_strings(out)) for i in range(0, len(line) - 8, 8))
    assert "done " in text and stage.counts() == {"PRIVATE_KEY": 1}


def test_typed_then_erased_secret_is_scrubbed():
    secret = "AKIAIOSFODNN7EXAMPLE"
    events = [focus(0, 0)] + typed("x " + secret + "\b" * len(secret) + "fine ")
    out, _ = run(events)
    chars = "".join(e.char or "" for e in out if isinstance(e, KeyDown))
    assert "IOSFODNN" not in chars
    assert output_text(out) == "x fine "
    assert sum(1 for e in out if isinstance(e, KeyDown) and e.redacted == "AWS_KEY") == len(secret)


def test_policy_denied_keys_pass_untouched_and_pipeline_order():
    pipe = Pipeline([PolicyStage(), RedactionStage()])
    events = [focus(0, 0, title="[sudo] password for alice", app="xterm")] + typed("hunter2 ")
    out = pipe.process(events, events[-1].t_ns) + pipe.flush(events[-1].t_ns)
    assert out[0].denied and out[0].title is None and out[0].app is None
    keys = [e for e in out if isinstance(e, (KeyDown, KeyUp))]
    assert len(keys) == 16 and all(e.redacted == "PASSWORD" and e.char is None and e.key_class == "other" for e in keys)
    assert pipe.stages[0].counts() == {"PASSWORD": 1}
    assert pipe.stages[1].counts() == {}


def test_describe_has_parameters():
    t = RedactionStage().describe()
    assert t.name == "text_redaction" and t.params["hold_timeout_ms"] == default_policy().hold_timeout_ms


def test_custom_rule_from_policy_file_applies_in_stream():
    policy = parse_policy({"redaction": {"custom": [{"name": "EMPLOYEE_ID", "pattern": "EMP-[0-9]{6}"}]}})
    events = [focus(0, 0)] + typed("id EMP-123456 ok ")
    out, stage = run(events, stage=RedactionStage(policy))
    assert output_text(out) == "id " + SECRET_MARK * 10 + " ok "
    assert stage.counts() == {"EMPLOYEE_ID": 1}


# -- property test ----------------------------------------------------------

_WORDS = ["the", "plan", "is", "ok", "send", "it", "to", "me", "later", "thanks", "and", "then", "we", "ship"]


def _secrets(rng: random.Random) -> list[tuple[str, str, str]]:
    """(text typed, the secret part, placeholder) with fresh random values."""
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    gh = "ghp_" + "".join(rng.choice(alnum) for _ in range(36))
    aws = "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    user = "".join(rng.choice("abcdefghij") for _ in range(6))
    email = f"{user}.q@example{rng.randint(10, 99)}.org"
    digits = [rng.randint(0, 9) for _ in range(14)]
    # Luhn check digit for a 16-digit Visa-like number starting with 4.
    body = [4] + digits
    total = 0
    for i, d in enumerate(reversed(body)):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    card = "".join(map(str, body)) + str((10 - total % 10) % 10)
    pw = "".join(rng.choice(alnum) for _ in range(10)) + "!"
    spaced_card = " ".join(card[i : i + 4] for i in range(0, 16, 4))
    phone = f"+1 415 555 {rng.randint(1000, 9999)}"
    key_lines = ["".join(rng.choice(alnum + "+/") for _ in range(64)) for _ in range(2)]
    pem_body = "\n".join(key_lines)
    pem = "-----BEGIN PRIVATE KEY-----\n" + pem_body + "\n-----END PRIVATE KEY-----"
    return [
        (spaced_card, spaced_card, "CARD"),
        (phone, phone, "PHONE"),
        (pem, pem_body, "PRIVATE_KEY"),
        (gh, gh, "GITHUB_TOKEN"),
        (aws, aws, "AWS_KEY"),
        (email, email, "EMAIL"),
        (card, card, "CARD"),
        ("password=" + pw, pw, "PASSWORD"),
    ]


def _build(seed: int):
    """Key events typing random words with planted secrets, with random
    typos fixed by BackSpace and random secret prefixes erased and retyped.
    Returns (events, seqs of keys that typed secret characters, secrets)."""
    rng = random.Random(seed)
    planted = rng.sample(_secrets(rng), k=rng.randint(1, 3))
    script: list[tuple[str, bool]] = []  # (character or "\b", typed a secret character)
    for typed_text, secret, _ in planted:
        for _ in range(rng.randint(0, 4)):
            for ch in rng.choice(_WORDS) + " ":
                script.append((ch, False))
        s_at = typed_text.index(secret)
        for ch in typed_text[:s_at]:
            script.append((ch, False))
        i = 0
        while i < len(secret):
            r = rng.random()
            if r < 0.1:  # a typo, erased
                script += [(rng.choice("xyz#"), False), ("\b", False)]
            elif r < 0.2 and i > 0:  # erase part of the secret typed so far and retype it
                k = rng.randint(1, min(i, 6))
                script += [("\b", False)] * k
                i -= k
            script.append((secret[i], True))
            i += 1
        for ch in typed_text[s_at + len(secret) :]:
            script.append((ch, False))
        script.append((rng.choice([" ", "\n", ", "])[0], False))
    for ch in rng.choice(_WORDS) + " ":
        script.append((ch, False))
    events = [focus(0, 0)]
    secret_seqs: set[int] = set()
    seq, t = 1, STEP
    for ch, is_secret in script:
        pair = key_events_for_text(ch, t0_ns=t, step_ns=STEP, seq0=seq)
        if is_secret:
            secret_seqs.update(e.seq for e in pair)
        events += pair
        seq += 2
        t += STEP
    return events, secret_seqs, planted


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(1, 40), min_size=1, max_size=400))
def test_property_no_planted_secret_reaches_output(seed, cuts):
    events, secret_seqs, planted = _build(seed)
    out, stage = run(events, chunk_sizes=cuts)
    # Nothing lost, nothing reordered.
    assert [e.seq for e in out] == [e.seq for e in events]
    by_seq = {e.seq: e for e in out}
    # Every key event that typed a secret character (including ones later
    # erased) has lost its identity.
    for s in secret_seqs:
        e = by_seq[s]
        assert e.char is None and e.key_sym is None and e.key_code is None and e.redacted, e
    text = output_text(out)
    strings = all_strings(out)
    for _, secret, placeholder in planted:
        assert secret not in text
        assert not any(secret in v for v in strings)
        assert stage.counts().get(placeholder, 0) >= 1
    # Counts are per redacted span; a secret edited while typed can be seen
    # as more than one span, but never as fewer than the planted ones.
    assert sum(stage.counts().values()) >= len(planted)
    # And the redactor did not simply eat everything: the final word survives.
    assert text.endswith(" ") and text.rstrip().split()[-1].split(",")[-1] in _WORDS


def test_timeout_mid_secret_labels_the_suspect_prefix():
    stage = RedactionStage()
    events = [focus(0, 0)] + typed("key ghp_" + "Ab12" * 3)  # a GitHub token cut short
    stage.process(events, events[-1].t_ns)
    out = stage.process([], events[-1].t_ns + default_policy().hold_timeout_ms * 1_000_000)
    assert "ghp_" not in "".join(e.char or "" for e in out if isinstance(e, KeyDown))
    assert stage.counts() == {"SECRET": 1}
    # A plain word left unfinished is released as typed.
    stage = RedactionStage()
    events = [focus(0, 0)] + typed("see you tomorr")
    stage.process(events, events[-1].t_ns)
    out = stage.process([], events[-1].t_ns + default_policy().hold_timeout_ms * 1_000_000)
    assert "".join(e.char or "" for e in out if isinstance(e, KeyDown)) == "tomorr"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(1, 40), min_size=1, max_size=400), pauses=st.lists(st.booleans(), min_size=1, max_size=50))
def test_property_with_idle_pauses_between_batches(seed, cuts, pauses):
    """Batches sometimes arrive after the hold timeout (the typist paused):
    held tokens are released by timeout, and still no planted secret leaks."""
    events, secret_seqs, planted = _build(seed)
    stage = RedactionStage()
    timeout = default_policy().hold_timeout_ms * 1_000_000
    out, i, shift = [], 0, 0
    sizes, pause = iter(cuts), iter(pauses)
    while i < len(events):
        n = next(sizes, 5)
        batch = [msgspec.structs.replace(e, t_ns=e.t_ns + shift) for e in events[i : i + n]]
        i += n
        now = batch[-1].t_ns
        if next(pause, False):
            shift += timeout + 1
            now += timeout + 1
        out += stage.process(batch, now)
    out += stage.flush(events[-1].t_ns + shift)
    assert [e.seq for e in out] == [e.seq for e in events]
    text = output_text(out)
    for _, secret, _ in planted:
        assert secret not in text
        assert not any(secret in v for v in all_strings(out))


def test_shift_presses_inside_a_secret_are_scrubbed_with_it():
    events = [focus(0, 0)]
    seq, t = 1, STEP
    for ch in "id AKIAIOSFODNN7EXAMPLE ok ":
        if ch.isupper():
            events.append(KeyDown(seq=seq, t_ns=t, session="s", key_code=50, key_sym="Shift_L"))
            seq += 1
        pair = key_events_for_text(ch, t0_ns=t, step_ns=STEP, seq0=seq)
        events += pair
        seq += 2
        if ch.isupper():
            events.append(KeyUp(seq=seq, t_ns=t + 1, session="s", key_code=50, key_sym="Shift_L", modifiers=1))
            seq += 1
        t += STEP
    out, _ = run(events, chunk_sizes=[2] * 1000)
    assert [e.seq for e in out] == [e.seq for e in events]
    shifts = [e for e in out if isinstance(e, (KeyDown, KeyUp)) and e.key_sym == "Shift_L"]
    assert shifts == []  # "id" and "ok" have no capitals; every Shift belonged to the key
    scrubbed = [e for e in out if isinstance(e, (KeyDown, KeyUp)) and e.redacted == "AWS_KEY"]
    assert all(e.modifiers == 0 and e.key_sym is None for e in scrubbed)
    assert sum(1 for e in scrubbed if e.key_class == "other") == 2 * sum(c.isupper() for c in "AKIAIOSFODNN7EXAMPLE")
    # A Shift before an ordinary word passes as it was.
    events = [focus(0, 0), KeyDown(seq=1, t_ns=1, session="s", key_code=50, key_sym="Shift_L")] + typed("Hi ", t0=2, seq0=2)
    out, _ = run(events)
    assert out[1].key_sym == "Shift_L"


_SYMS = ["a", "B", "1", "space", "BackSpace", "Delete", "Left", "Right", "Home", "End", "Up", "Return", "Linefeed",
         "Tab", "Shift_L", "Control_L", "v", "Insert", "z", "x", "@", "period", "Key.backspace", "U+20AC", "0xfe03", None]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_SYMS), st.one_of(st.none(), st.text(max_size=3)), st.integers(0, 63),
                          st.booleans(), st.integers(0, 5)), max_size=300),
       st.lists(st.integers(1, 30), min_size=1, max_size=50))
def test_property_any_key_stream_passes_through_complete_and_in_order(keys, cuts):
    """Arbitrary key names, characters (control characters, several code
    points), modifiers, unmatched releases, clicks and focus changes: the
    stage never raises, never drops or reorders an event, and after flush
    holds nothing."""
    events = []
    t = 1
    for i, (sym, char, mods, down, extra) in enumerate(keys):
        cls = KeyDown if down else KeyUp
        events.append(cls(seq=len(events), t_ns=t, session="s", key_code=(hash(sym) % 200) if sym else None,
                          key_sym=sym, char=char, modifiers=mods))
        if extra == 5:
            events.append(ButtonDown(seq=len(events), t_ns=t, session="s", x=1, y=1, button="left"))
        elif extra == 4:
            events.append(focus(len(events), t))
        t += STEP // (1 + extra)
    stage = RedactionStage()
    out, i, sizes = [], 0, iter(cuts)
    while i < len(events):
        n = next(sizes, 7)
        batch = events[i : i + n]
        i += n
        out += stage.process(batch, batch[-1].t_ns)
    out += stage.flush(t)
    assert [e.seq for e in out] == [e.seq for e in events]
    assert stage.flush(t) == []

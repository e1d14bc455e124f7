"""Left/right modifier merge (tracework.privacy.typing.ModifierSideMerger) and its use in the typing stage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from tracework.errors import PolicyError
from tracework.events import KeyDown, KeyUp, MouseMove
from tracework.privacy.anonymize_stage import TypingStage, make_typing_stage
from tracework.privacy.typing import (MS, ModifierSideMerger, TypingParams, anonymize_key_events,
                                      merge_modifier_sides)

# Physical keys of an X11 (evdev) keyboard: (key_sym, key_code, char).
KEYS = [
    ("a", 38, "a"), ("s", 39, "s"), ("k", 45, "k"), ("space", 65, " "),
    ("Shift_L", 50, None), ("Shift_R", 62, None), ("Control_L", 37, None), ("Control_R", 105, None),
    ("ISO_Level3_Shift", 108, None),  # AltGr on this code: types other characters, never merged
    ("Caps_Lock", 66, None),  # a lock key: never merged, not held over the next key when re-timed
]
RIGHT_TO_LEFT = {("Shift_R", 62): ("Shift_L", 50), ("Control_R", 105): ("Control_L", 37)}
LEFT = set(RIGHT_TO_LEFT.values())


@st.composite
def key_stream(draw, max_steps=60):
    """Physically possible key events: a key goes down only when up, up only when down.

    Returns (events, physical key index per event). Keys may still be down at
    the end, as at a batch boundary.
    """
    steps = draw(st.lists(st.integers(0, len(KEYS) - 1), min_size=1, max_size=max_steps))
    t = 1_700_000_000_000 * MS
    down: set[int] = set()
    events, phys = [], []
    for seq, k in enumerate(steps):
        t += draw(st.integers(0, 300)) * MS
        sym, code, char = KEYS[k]
        cls = KeyUp if k in down else KeyDown
        down.symmetric_difference_update({k})
        events.append(cls(seq=seq, t_ns=t, session="s1", key_code=code, key_sym=sym, char=char))
        phys.append(k)
    return events, phys


def _check_merged(events, phys, out):
    assert len(out) == len(events)
    down_ids: set = set()
    given: dict[int, tuple] = {}
    for e, k, o in zip(events, phys, out):
        # Nothing but the modifier's name and code changes.
        assert (type(o), o.seq, o.t_ns, o.char, o.modifiers) == (type(e), e.seq, e.t_ns, e.char, e.modifiers)
        ident = (o.key_sym, o.key_code)
        if (e.key_sym, e.key_code) not in RIGHT_TO_LEFT and (e.key_sym, e.key_code) not in LEFT:
            assert o == e, "a key that is not a left/right modifier is untouched"
        if isinstance(o, KeyDown):
            assert ident not in down_ids, "the output never presses a key that is already down"
            if ident in RIGHT_TO_LEFT:
                assert RIGHT_TO_LEFT[ident] in down_ids, "the right identity only while the left one is down"
            down_ids.add(ident)
            given[k] = ident
        else:
            assert ident in down_ids, "every release pairs with a press that is down"
            if k in given:
                assert given.pop(k) == ident, "a release has its own press's identity"
            down_ids.discard(ident)


@settings(max_examples=80, deadline=None)
@given(key_stream())
def test_merge_keeps_text_order_and_pairs(stream):
    events, phys = stream
    _check_merged(events, phys, merge_modifier_sides(events))


@settings(max_examples=40, deadline=None)
@given(key_stream(), st.integers(1, 7))
def test_merge_is_streaming(stream, chunk):
    """Fed in batches, one merger gives what it gives on the whole stream."""
    events, phys = stream
    m = ModifierSideMerger()
    out = []
    for i in range(0, len(events), chunk):
        out += m.merge(events[i:i + chunk])
    assert out == merge_modifier_sides(events)


def test_right_shift_alone_is_recorded_as_left_and_both_held_stay_distinct():
    t = 1_700_000_000_000 * MS
    ev = [KeyDown(seq=0, t_ns=t, session="s", key_code=62, key_sym="Shift_R"),
          KeyDown(seq=1, t_ns=t + 1, session="s", key_code=38, key_sym="a", char="A"),
          KeyUp(seq=2, t_ns=t + 2, session="s", key_code=38, key_sym="a", char="A"),
          KeyUp(seq=3, t_ns=t + 3, session="s", key_code=62, key_sym="Shift_R"),
          # Both shifts held: the second one down gets the right identity.
          KeyDown(seq=4, t_ns=t + 4, session="s", key_code=62, key_sym="Shift_R"),
          KeyDown(seq=5, t_ns=t + 5, session="s", key_code=50, key_sym="Shift_L"),
          KeyUp(seq=6, t_ns=t + 6, session="s", key_code=62, key_sym="Shift_R"),
          KeyUp(seq=7, t_ns=t + 7, session="s", key_code=50, key_sym="Shift_L")]
    out = merge_modifier_sides(ev)
    assert [(e.key_sym, e.key_code) for e in out] == [
        ("Shift_L", 50), ("a", 38), ("a", 38), ("Shift_L", 50),
        ("Shift_L", 50), ("Shift_R", 62), ("Shift_L", 50), ("Shift_R", 62)]
    assert [e.char for e in out] == [e.char for e in ev]


def test_release_without_seen_press_and_non_key_events_pass():
    t = 1_700_000_000_000 * MS
    ev = [KeyUp(seq=0, t_ns=t, session="s", key_code=105, key_sym="Control_R"),
          MouseMove(seq=1, t_ns=t + 1, session="s", x=3, y=4),
          KeyDown(seq=2, t_ns=t + 2, session="s", key_class="modifier", redacted="PASSWORD")]
    out = merge_modifier_sides(ev)
    assert (out[0].key_sym, out[0].key_code) == ("Control_L", 37)
    assert out[1:] == ev[1:]


@settings(max_examples=40, deadline=None)
@given(key_stream(), st.integers(0, 2**32 - 1))
def test_anonymize_key_events_with_merge_keeps_pairs_and_press_order(stream, seed):
    events, phys = stream
    params = TypingParams(releases="population", modifier_sides="merge")
    out = anonymize_key_events(events, params, seed=seed)
    merged = merge_modifier_sides(events)
    # Press order and text kept: the presses come out in the same order with the same keys.
    presses = lambda evs: [(e.key_sym, e.key_code, e.char) for e in evs if isinstance(e, KeyDown)]
    assert presses(out) == presses(merged)
    t = [e.t_ns for e in out]
    assert all(b >= a for a, b in zip(t, t[1:]))
    down: dict = {}
    for e in out:
        ident = (e.key_sym, e.key_code)
        if isinstance(e, KeyDown):
            assert ident not in down
            down[ident] = e.t_ns
        elif ident in down:
            assert e.t_ns >= down.pop(ident)


def test_stage_merges_by_default_and_describes_it():
    stage = make_typing_stage(None)
    assert isinstance(stage, TypingStage) and stage.describe().params["modifier_sides"] == "merge"
    t = 1_700_000_000_000 * MS
    ev = [KeyDown(seq=0, t_ns=t, session="s", key_code=62, key_sym="Shift_R"),
          KeyDown(seq=1, t_ns=t + 80 * MS, session="s", key_code=38, key_sym="a", char="A"),
          KeyUp(seq=2, t_ns=t + 160 * MS, session="s", key_code=38, key_sym="a", char="A"),
          KeyUp(seq=3, t_ns=t + 200 * MS, session="s", key_code=62, key_sym="Shift_R")]
    # In two batches, the modifier held across them.
    out = stage.process(ev[:2], t + 90 * MS) + stage.process(ev[2:], t + 210 * MS) + stage.flush(t + 10_000 * MS)
    assert sorted(e.seq for e in out) == [0, 1, 2, 3]
    assert {(e.key_sym, e.key_code) for e in out if e.key_sym != "a"} == {("Shift_L", 50)}
    assert [e.char for e in out if isinstance(e, KeyDown)] == [None, "A"]


def test_stage_keep_and_bad_value():
    stage = make_typing_stage({"anonymizer": {"typing": {"modifier_sides": "keep"}}})
    t = 1_700_000_000_000 * MS
    ev = [KeyDown(seq=0, t_ns=t, session="s", key_code=62, key_sym="Shift_R")]
    out = stage.process(ev, t) + stage.flush(t + 10_000 * MS)
    assert (out[0].key_sym, out[0].key_code) == ("Shift_R", 62)
    with pytest.raises(PolicyError, match="modifier_sides"):
        make_typing_stage({"anonymizer": {"typing": {"modifier_sides": "left"}}})


@pytest.mark.parametrize("seed", range(5))
def test_caps_lock_gets_a_plain_hold_while_shift_is_held_over_its_letter(seed):
    """Caps Lock acts on its press: the re-timer does not hold it over the next key, as it does Shift."""
    t = 1_700_000_000_000 * MS
    params = TypingParams(releases="population", hesitation_ms=2000, pause_ms=2000)

    def run(sym, code):
        ev = [KeyDown(seq=0, t_ns=t, session="s", key_code=code, key_sym=sym),
              KeyUp(seq=1, t_ns=t + 100 * MS, session="s", key_code=code, key_sym=sym),
              KeyDown(seq=2, t_ns=t + 1900 * MS, session="s", key_code=38, key_sym="a", char="A"),
              KeyUp(seq=3, t_ns=t + 1950 * MS, session="s", key_code=38, key_sym="a", char="A")]
        out = anonymize_key_events(ev, params, seed=seed)
        at = {(type(e).__name__, e.key_sym): e.t_ns for e in out}
        return at[("KeyUp", sym)], at[("KeyDown", "a")]

    caps_up, letter_down = run("Caps_Lock", 66)
    assert caps_up < letter_down, "Caps Lock released with a population hold, before the letter"
    shift_up, letter_down = run("Shift_L", 50)
    assert shift_up > letter_down, "Shift stays down over the letter it modifies"

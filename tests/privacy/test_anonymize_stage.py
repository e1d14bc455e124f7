"""Streaming stages: chunking never changes the output, order and positions hold."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from tracework.errors import PolicyError
from tracework.events import ButtonDown, ButtonUp, FocusChange, KeyDown, KeyUp, MouseMove, Scroll
from tracework.privacy.anonymize_stage import (CursorStage, KloakStage, TypingStage, make_cursor_stage,
                                               make_typing_stage)
from tracework.privacy.chain import build_pipeline
from tracework.privacy.cursor import CursorParams
from tracework.privacy.stage import Pipeline
from tracework.privacy.typing import TypingParams

MS = 1_000_000


@st.composite
def mixed_stream(draw):
    """Interleaved typing, pointer motion, clicks, scrolls and focus changes, seq in time order."""
    n = draw(st.integers(1, 120))
    t = 1_700_000_000_000 * MS
    events = []
    x, y = 500, 500
    pending_up = []
    for _ in range(n):
        t += draw(st.one_of(st.integers(0, 60), st.integers(60, 2500))) * MS
        kind = draw(st.sampled_from(["key", "key", "key", "move", "move", "move", "click", "scroll", "focus"]))
        seq = len(events)
        if kind == "key":
            ch = draw(st.sampled_from("abcdefgh ."))
            events.append(KeyDown(seq=seq, t_ns=t, session="s", key_code=ord(ch), char=ch))
            pending_up.append(ch)
            if draw(st.booleans()):
                ch = pending_up.pop(0)
                events.append(KeyUp(seq=seq + 1, t_ns=t, session="s", key_code=ord(ch), char=ch))
        elif kind == "move":
            x = max(0, x + draw(st.integers(-200, 200)))
            y = max(0, y + draw(st.integers(-200, 200)))
            events.append(MouseMove(seq=seq, t_ns=t, session="s", x=x, y=y))
        elif kind == "click":
            events.append(ButtonDown(seq=seq, t_ns=t, session="s", x=x, y=y, button="left"))
            events.append(ButtonUp(seq=seq + 1, t_ns=t, session="s", x=x, y=y, button="left"))
        elif kind == "scroll":
            events.append(Scroll(seq=seq, t_ns=t, session="s", x=x, y=y, dy=1))
        else:
            events.append(FocusChange(seq=seq, t_ns=t, session="s", app="xterm"))
    for ch in pending_up:
        t += 10 * MS
        events.append(KeyUp(seq=len(events), t_ns=t, session="s", key_code=ord(ch), char=ch))
    return events


def _run(events, cuts, seed, releases="keep"):
    # releases="keep" keeps the whole press/release interleaving (what
    # _check_invariants checks); the default "population" keeps the press
    # order and text only (_check_invariants_releases).
    # The cursor stage keeps every move here (resample="off") so events pair one to one;
    # the default re-sampling mode has the same stream checks in test_cursor_resample.py.
    pipe = Pipeline([TypingStage(TypingParams(releases=releases), seed=seed),
                     CursorStage(CursorParams(resample="off"), seed=seed + 1)])
    out = []
    bounds = [0, *sorted(set(cuts)), len(events)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        chunk = events[a:b]
        # "now" is when the next chunk starts: what a real agent would see.
        now = events[b].t_ns if b < len(events) else events[-1].t_ns
        out += pipe.process(chunk, now)
    return out + pipe.flush(events[-1].t_ns)


def _check_invariants(events, out):
    assert [e.seq for e in out] == [e.seq for e in events], "same events, same order"
    t = [e.t_ns for e in out]
    assert all(b >= a for a, b in zip(t, t[1:])), "t_ns non-decreasing in seq order"
    for a, b in zip(events, out):
        assert type(a) is type(b)
        if isinstance(a, (ButtonDown, ButtonUp, Scroll)):
            assert (a.x, a.y, a.t_ns) == (b.x, b.y, b.t_ns), "clicks and scrolls untouched"
        if isinstance(a, (KeyDown, KeyUp)):
            assert (a.key_code, a.char) == (b.key_code, b.char)
        if isinstance(a, FocusChange):
            assert a == b


def _check_invariants_releases(events, out):
    """Default stage (releases redrawn): non-key events in place, presses and text kept."""
    assert [e.seq for e in out] == [e.seq for e in events], "same seq numbers, same order"
    t = [e.t_ns for e in out]
    assert all(b >= a for a, b in zip(t, t[1:])), "t_ns non-decreasing in seq order"
    for a, b in zip(events, out):
        assert isinstance(a, (KeyDown, KeyUp)) == isinstance(b, (KeyDown, KeyUp)), "key events stay in their runs"
        if isinstance(a, (ButtonDown, ButtonUp, Scroll)):
            assert (a.x, a.y, a.t_ns) == (b.x, b.y, b.t_ns), "clicks and scrolls untouched"
        if isinstance(a, FocusChange):
            assert a == b
    downs = lambda evs: [(e.key_code, e.char) for e in evs if isinstance(e, KeyDown)]  # noqa: E731
    assert downs(out) == downs(events), "key-press order and text unchanged"
    assert sorted((type(e).__name__, e.key_code) for e in out if isinstance(e, (KeyDown, KeyUp))) == \
           sorted((type(e).__name__, e.key_code) for e in events if isinstance(e, (KeyDown, KeyUp)))
    open_ = {}
    for e in out:
        if isinstance(e, KeyDown):
            open_[e.key_code] = open_.get(e.key_code, 0) + 1
        elif isinstance(e, KeyUp):
            assert open_.get(e.key_code, 0) > 0, "a key-up before its own key-down"
            open_[e.key_code] -= 1


@settings(max_examples=30, deadline=None)
@given(mixed_stream(), st.lists(st.integers(0, 200), max_size=12), st.integers(0, 2**31))
@pytest.mark.parametrize("releases", ["keep", "population"])
def test_chunking_never_changes_output(releases, events, cuts, seed):
    cuts = [c for c in cuts if 0 < c < len(events)]
    whole = _run(events, [], seed, releases)
    chunked = _run(events, cuts, seed, releases)
    (_check_invariants if releases == "keep" else _check_invariants_releases)(events, whole)
    assert [(e.seq, e.t_ns, getattr(e, "x", None), getattr(e, "y", None)) for e in whole] == \
           [(e.seq, e.t_ns, getattr(e, "x", None), getattr(e, "y", None)) for e in chunked]


@settings(max_examples=20, deadline=None)
@given(mixed_stream(), st.integers(0, 2**31))
def test_movement_before_click_lands_exactly(events, seed):
    out = _run(events, [], seed)
    for i, (a, b) in enumerate(zip(events, out)):
        if isinstance(a, MouseMove) and i + 1 < len(events) and not isinstance(events[i + 1], MouseMove):
            assert (a.x, a.y) == (b.x, b.y), "last sample before a click/key/scroll is exact"


@settings(max_examples=30, deadline=None)
@given(mixed_stream(), st.integers(0, 2**31))
def test_kloak_stage_keeps_order(events, seed):
    st_ = KloakStage(50, seed)
    out = st_.process(events, events[-1].t_ns) + st_.flush(events[-1].t_ns)
    assert [e.seq for e in out] == [e.seq for e in events]
    t = [e.t_ns for e in out]
    assert all(b >= a for a, b in zip(t, t[1:]))


def test_stages_hold_until_pause_then_release():
    stage = TypingStage(seed=1)
    t = 10**18
    evs = [KeyDown(seq=0, t_ns=t, session="s", key_code=97, char="a"),
           KeyUp(seq=1, t_ns=t + 80 * MS, session="s", key_code=97, char="a")]
    assert stage.process(evs, t + 100 * MS) == [], "a run is held while typing may go on"
    released = stage.process([], t + 5000 * MS)
    assert [e.seq for e in released] == [0, 1]
    cursor = CursorStage(seed=1)
    moves = [MouseMove(seq=i, t_ns=t + i * 8 * MS, session="s", x=10 * i, y=5 * i) for i in range(10)]
    assert cursor.process(moves, moves[-1].t_ns) == []
    released = cursor.flush(moves[-1].t_ns)
    assert released and all(isinstance(e, MouseMove) for e in released)
    assert (released[-1].x, released[-1].y, released[-1].t_ns) == (90, 45, moves[-1].t_ns)


def test_policy_configures_and_describe_names_params():
    pol = {"anonymizer": {"typing": {"hesitation_ms": 800, "speed_jitter": 0.02},
                          "cursor": {"strength": 0.5, "rest_ms": 250}, "seed": 4}}
    ts, cs = make_typing_stage(pol), make_cursor_stage(pol)
    d1, d2 = ts.describe(), cs.describe()
    assert d1.name == "typing_population_retime" and d1.params["hesitation_ms"] == 800.0
    assert d1.params["speed_jitter"] == 0.02
    assert d2.name == "cursor_synthetic_path" and d2.params["strength"] == 0.5 and d2.params["rest_ms"] == 250.0
    assert make_typing_stage({"anonymizer": {"typing": {"method": "kloak", "max_delay_ms": 20}}}).describe().params == {"max_delay_ms": 20.0}
    assert make_typing_stage({"anonymizer": {"typing": {"enabled": False}}}) is None
    assert make_cursor_stage({"anonymizer": {"cursor": {"enabled": False}}}) is None


@pytest.mark.parametrize("bad", [
    {"anonymizer": {"typing": {"pause_ms": "fast"}}},
    {"anonymizer": {"typing": {"no_such_key": 1}}},
    {"anonymizer": {"typing": {"method": "magic"}}},
    {"anonymizer": {"typing": {"hesitation_ms": 5000, "pause_ms": 100}}},
    {"anonymizer": {"cursor": {"strength": -2}}},
    {"anonymizer": {"cursor": {"retime": "yes"}}},
    {"anonymizer": {"seed": "x"}},
    {"anonymizer": {"other": {}}},
    {"anonymizer": []},
])
def test_bad_policy_is_a_clear_error(bad):
    with pytest.raises(PolicyError) as exc:
        make_typing_stage(bad)
        make_cursor_stage(bad)
    assert str(exc.value)


def test_default_pipeline_has_both_anonymizers_in_order():
    names = [t.name for t in build_pipeline(None).describe()]
    assert "typing_population_retime" in names and "cursor_synthetic_path" in names
    assert names.index("typing_population_retime") < names.index("cursor_synthetic_path")

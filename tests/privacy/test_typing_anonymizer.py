"""Property tests for the typing anonymizers (tracework.privacy.typing)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tracework.errors import PolicyError
from tracework.events import KeyDown, KeyUp
from tracework.privacy.typing import (MS, PopulationModel, TypingParams, anonymize_key_events, gap_classes,
                                      kloak_events, kloak_retime, population_retime, sequence_from_events)

CHARS = "abcdefghijklmnopqrstuvwxyz ,.1"


@st.composite
def typed(draw, max_keys=40):
    """Key events of a random typing burst: presses with random holds, incl. rollover and pauses."""
    n = draw(st.integers(1, max_keys))
    text = draw(st.text(alphabet=CHARS, min_size=n, max_size=n))
    t = 1_700_000_000_000 * MS
    raw = []
    released_at = {}  # a physical key cannot be pressed again before its release
    for i, ch in enumerate(text):
        t += draw(st.one_of(st.integers(0, 400), st.integers(400, 4000))) * MS
        t = max(t, released_at.get(ch, t))
        hold = draw(st.integers(0, 300)) * MS
        raw.append((t, True, i, ch))
        raw.append((t + hold, False, i, ch))
        released_at[ch] = t + hold
    raw.sort(key=lambda r: (r[0], r[2], not r[1]))
    events = []
    for seq, (tt, down, i, ch) in enumerate(raw):
        cls = KeyDown if down else KeyUp
        events.append(cls(seq=seq, t_ns=tt, session="s1", key_code=ord(ch), key_sym=ch, char=ch))
    return events


def _times(events):
    return [e.t_ns for e in events]


def _pairs_ok(events):
    """Every key-up is at or after its key-down (same key code, in order)."""
    down_at = {}
    for e in events:
        if isinstance(e, KeyDown):
            down_at.setdefault(e.key_code, []).append(e.t_ns)
        else:
            if not down_at.get(e.key_code) or e.t_ns < down_at[e.key_code].pop(0):
                return False
    return True


@settings(max_examples=60, deadline=None)
@given(typed(), st.integers(0, 2**32 - 1))
def test_population_keeps_order_text_and_is_monotone(events, seed):
    out = anonymize_key_events(events, seed=seed)
    assert [type(e) for e in out] == [type(e) for e in events]
    assert [(e.seq, e.key_code, e.char, e.key_sym) for e in out] == [(e.seq, e.key_code, e.char, e.key_sym) for e in events]
    t = _times(out)
    assert all(b >= a for a, b in zip(t, t[1:])), "timestamps must be non-decreasing"
    assert _pairs_ok(out), "no negative hold"
    # The burst never ends later than it did, and never starts later.
    assert t[0] <= events[0].t_ns and t[-1] <= events[-1].t_ns


@settings(max_examples=60, deadline=None)
@given(typed(), st.integers(0, 2**32 - 1), st.sampled_from([20, 50, 100]))
def test_kloak_keeps_order_and_bounds_delay(events, seed, max_ms):
    out = kloak_events(events, max_ms, seed=seed)
    t = _times(out)
    assert [e.seq for e in out] == [e.seq for e in events]
    assert all(b >= a for a, b in zip(t, t[1:]))
    assert _pairs_ok(out)
    # Each event is delayed, never advanced; a delay beyond max only comes from
    # waiting for the (delayed) event before it.
    assert all(o >= i for o, i in zip(t, _times(events)))
    assert all(o - i <= max_ms * MS or o == p for o, i, p in zip(t[1:], _times(events)[1:], t))


@settings(max_examples=40, deadline=None)
@given(typed(max_keys=30), st.integers(0, 2**32 - 1))
def test_determinism_under_seed(events, seed):
    assert _times(anonymize_key_events(events, seed=seed)) == _times(anonymize_key_events(events, seed=seed))


def test_unpredictable_without_seed():
    events = []
    t = 10**18
    for i, ch in enumerate("the quick brown fox jumps over the lazy dog"):
        events.append(KeyDown(seq=2 * i, t_ns=t, session="s", key_code=ord(ch), char=ch))
        events.append(KeyUp(seq=2 * i + 1, t_ns=t + 90 * MS, session="s", key_code=ord(ch), char=ch))
        t += 180 * MS
    outs = {tuple(_times(anonymize_key_events(events))) for _ in range(5)}
    assert len(outs) == 5, "without a seed every call must draw fresh timings"
    kl = {tuple(_times(kloak_events(events, 50))) for _ in range(5)}
    assert len(kl) == 5


def test_constant_rhythm_becomes_human_and_keeps_speed():
    """xdotool-like constant intervals come out varied, with the burst's duration kept."""
    events = []
    t = 10**18
    for i, ch in enumerate("constant rhythm typing from a robot " * 3):
        events.append(KeyDown(seq=2 * i, t_ns=t, session="s", key_code=ord(ch), char=ch))
        events.append(KeyUp(seq=2 * i + 1, t_ns=t + 40 * MS, session="s", key_code=ord(ch), char=ch))
        t += 120 * MS
    out = anonymize_key_events(events, TypingParams(speed_jitter=0.0), seed=3)
    downs = np.array([e.t_ns for e in out if isinstance(e, KeyDown)])
    intervals = np.diff(downs)
    assert len(set(intervals.tolist())) > len(intervals) // 2
    assert out[-1].t_ns == events[-1].t_ns and out[0].t_ns == events[0].t_ns


def test_hesitations_and_pauses_are_coarsened_down():
    seq_events = []
    t = 10**18
    gaps = [150, 150, 1337, 150, 150, 5555, 150, 150]
    ch = "abcdefghij"
    for i, g in enumerate(gaps + [150]):
        seq_events.append(KeyDown(seq=2 * i, t_ns=t, session="s", key_code=ord(ch[i]), char=ch[i]))
        seq_events.append(KeyUp(seq=2 * i + 1, t_ns=t + 50 * MS, session="s", key_code=ord(ch[i]), char=ch[i]))
        t += g * MS
    p = TypingParams(hesitation_ms=1000, pause_ms=2000, quantum_ms=200, speed_jitter=0.0)
    out = anonymize_key_events(seq_events, p, seed=1)
    downs = [e.t_ns for e in out if isinstance(e, KeyDown)]
    ups = [e.t_ns for e in out if isinstance(e, KeyUp)]
    # The 1337 ms hesitation became 1200 ms (press-to-release+release-to-press
    # gaps of the event stream are what is coarsened; 1337-50 = 1287 -> 1200).
    assert ups[2] <= downs[3] and downs[3] - ups[2] == 1200 * MS
    # The 5555 ms pause between runs: 5505 ms after the release -> 5400 ms.
    assert downs[6] - ups[5] == 5400 * MS


def test_gap_classes_know_holds_hands_and_kinds():
    ev = [KeyDown(seq=0, t_ns=0, session="s", key_code=1, char="a"),
          KeyUp(seq=1, t_ns=1, session="s", key_code=1, char="a"),
          KeyDown(seq=2, t_ns=2, session="s", key_code=2, char="s"),
          KeyDown(seq=3, t_ns=3, session="s", key_code=3, char="k"),
          KeyUp(seq=4, t_ns=4, session="s", key_code=2, char="s")]
    labels = gap_classes(sequence_from_events(ev))
    assert labels == ["hold|letter|letter", "UD|letter|letter|same_hand", "DD|letter|letter|alt_hand",
                      "DU|letter|letter|alt_hand"]


def test_bad_parameters_are_clear_errors():
    with pytest.raises(PolicyError):
        TypingParams(hesitation_ms=3000, pause_ms=1000).validate()
    with pytest.raises(PolicyError):
        kloak_retime(np.array([1, 2]), -5, np.random.default_rng(0))
    with pytest.raises(PolicyError):
        PopulationModel({})
    with pytest.raises(ValueError):
        from tracework.events import MouseMove
        anonymize_key_events([MouseMove(seq=0, t_ns=0, session="s", x=1, y=1)])


def test_shipped_model_is_aggregate_only():
    """The shipped model holds pooled quantiles per class, nothing per person."""
    import json
    from importlib import resources

    doc = json.loads(resources.files("tracework.privacy.models").joinpath("typing_population.json").read_text())
    assert set(doc) == {"meta", "quantiles"}
    assert doc["meta"]["min_people"] >= 20
    for label, q in doc["quantiles"].items():
        assert all(b >= a for a, b in zip(q, q[1:])), label
    seq = sequence_from_events([KeyDown(seq=0, t_ns=0, session="s", key_code=1, char="a"),
                                KeyUp(seq=1, t_ns=MS, session="s", key_code=1, char="a")])
    assert len(population_retime(seq, seed=0)) == 2


# ---- releases="population": key releases redrawn, presses and text kept ----

from tracework.privacy.anonymize_stage import TypingStage, make_typing_stage  # noqa: E402
from tracework.privacy.typing import TypingParams  # noqa: E402

POP = TypingParams(releases="population", speed_grid=0.09)


def _check_pairs(events):
    """Each key-up is at or after its own key-down and before the same key's next press."""
    pressed = {}
    for e in events:
        if isinstance(e, KeyDown):
            assert e.key_code not in pressed or pressed[e.key_code] is None, "re-pressed before its release"
            pressed[e.key_code] = e.t_ns
        else:
            assert pressed.get(e.key_code) is not None, "a key-up before its own key-down"
            assert e.t_ns >= pressed[e.key_code]
            pressed[e.key_code] = None


@settings(max_examples=60, deadline=None)
@given(typed(), st.integers(0, 2**32 - 1))
def test_population_releases_keep_presses_text_and_pairs(events, seed):
    out = anonymize_key_events(events, POP, seed=seed)
    assert sorted(e.seq for e in out) == [e.seq for e in out] == [e.seq for e in events]
    downs_in = [(e.key_code, e.char) for e in events if isinstance(e, KeyDown)]
    downs_out = [(e.key_code, e.char) for e in out if isinstance(e, KeyDown)]
    assert downs_out == downs_in, "key-press order and text unchanged"
    assert sorted((type(e).__name__, e.key_code) for e in out) == sorted((type(e).__name__, e.key_code) for e in events)
    t = [e.t_ns for e in out]
    assert all(b >= a for a, b in zip(t, t[1:])), "timestamps non-decreasing in seq order"
    _check_pairs(out)
    assert t[0] <= events[0].t_ns and t[-1] <= events[-1].t_ns
    assert anonymize_key_events(events, POP, seed=seed) == out, "deterministic with a seed"


def _rollover_text(n=40):
    """Every key released only after the next one is pressed (heavy rollover)."""
    evs, t = [], 1_700_000_000_000 * MS
    chars = "the quick brown fox jumps over the lazy dog"[:n]
    for i, ch in enumerate(chars):
        evs.append(KeyDown(seq=0, t_ns=t + i * 100 * MS, session="s", key_code=1000 + i, char=ch))
        evs.append(KeyUp(seq=0, t_ns=t + i * 100 * MS + 150 * MS, session="s", key_code=1000 + i, char=ch))
    evs.sort(key=lambda e: e.t_ns)
    return [type(e)(**{**{f: getattr(e, f) for f in e.__struct_fields__}, "seq": k}) for k, e in enumerate(evs)]


def test_rollover_pattern_no_longer_follows_the_person():
    events = _rollover_text()
    # Input: each key is released after the next key's press (the habit).
    def overlaps(evs):
        down_t = {e.key_code: e.t_ns for e in evs if isinstance(e, KeyDown)}
        up_t = {e.key_code: e.t_ns for e in evs if isinstance(e, KeyUp)}
        codes = sorted(down_t)
        return [up_t[a] > down_t[b] for a, b in zip(codes, codes[1:])]
    assert all(overlaps(events))
    out = anonymize_key_events(events, POP, seed=3)
    got = overlaps(out)
    assert not all(got), "some releases now come before the next press"
    kept = anonymize_key_events(events, TypingParams(releases="keep"), seed=3)
    assert all(overlaps(kept)), "releases='keep' keeps the interleaving"


def test_stage_default_redraws_releases_and_describes_it():
    stage = make_typing_stage(None)
    assert isinstance(stage, TypingStage)
    d = stage.describe()
    assert d.params["releases"] == "population" and d.params["speed_grid"] == 0.0
    events = _rollover_text()
    out = stage.process(events, events[-1].t_ns) + stage.flush(events[-1].t_ns)
    assert [e.seq for e in out] == [e.seq for e in events]
    assert "".join(e.char for e in out if isinstance(e, KeyDown)) == "".join(e.char for e in events if isinstance(e, KeyDown))
    _check_pairs(out)


def test_bad_release_and_grid_settings_are_refused():
    import pytest

    from tracework.errors import PolicyError

    with pytest.raises(PolicyError):
        make_typing_stage({"anonymizer": {"typing": {"releases": "shuffle"}}})
    with pytest.raises(PolicyError):
        make_typing_stage({"anonymizer": {"typing": {"speed_grid": 0.9}}})

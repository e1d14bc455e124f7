"""The default cursor anonymizer re-samples movements (tracework.privacy.cursor.resample_segment).

A movement comes out with a number of samples and a sampling rate that do not
follow the person's device, and a duration blended with a population draw;
its end point and end time stay exact and the stream's times stay monotone.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tracework.errors import PolicyError
from tracework.events import ButtonDown, ButtonUp, FocusChange, KeyDown, KeyUp, MouseMove, Scroll
from tracework.privacy.anonymize_stage import CursorStage, TypingStage, make_cursor_stage
from tracework.privacy.cursor import CursorModel, CursorParams, default_model, resample_segment
from tracework.privacy.stage import Pipeline

MS = 1_000_000


@st.composite
def segment(draw):
    """A movement as a device reports it: increasing times (gaps 0-40 ms), on-screen positions."""
    n = draw(st.integers(1, 60))
    t0 = draw(st.integers(10**17, 10**18))
    dts = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
    t = t0 + np.cumsum(np.array(dts, dtype=np.int64) * MS)
    x = np.array(draw(st.lists(st.integers(0, 3840), min_size=n, max_size=n)), dtype=np.int64)
    y = np.array(draw(st.lists(st.integers(0, 2160), min_size=n, max_size=n)), dtype=np.int64)
    start = draw(st.one_of(st.none(), st.tuples(st.integers(0, 3840), st.integers(0, 2160))))
    # The previous event was at most 5 s before the first sample, never after it.
    not_before = draw(st.one_of(st.none(), st.integers(0, 5000).map(lambda d: int(t[0]) - d * MS)))
    return start, t, x, y, not_before


@settings(max_examples=150, deadline=None)
@given(segment(), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 1.0, 2.0]))
def test_end_exact_times_monotone_no_repeats(seg, seed, blend, strength):
    start, t, x, y, not_before = seg
    nt, nx, ny = resample_segment(start, t, x, y, np.random.default_rng(seed),
                                  CursorParams(duration_blend=blend, strength=strength), None, not_before)
    assert len(nt) == len(nx) == len(ny) >= 1
    assert (nx[-1], ny[-1], nt[-1]) == (x[-1], y[-1], t[-1]), "the landing point and time are bit-exact"
    assert np.all(np.diff(nt) >= 0), "times never go back"
    if start is None and (x[0], y[0]) != (x[-1], y[-1]):
        assert (nt[0], nx[0], ny[0]) == (t[0], x[0], y[0]), "an unknown origin: the first sample is kept"
    elif start is None:
        assert len(nt) == 1, "no motion at all: one sample, at the end"
    else:
        limit = t[0] if not_before is None else not_before
        assert nt[0] >= min(limit, t[-1]), "the movement never starts before the previous event"
    prev = [(int(a), int(b)) for a, b in zip(nx, ny)]
    assert all(p != q for p, q in zip(prev, prev[1:])), "no sample repeats the position before it"
    if start is not None and len(prev) > 1:
        assert prev[0] != tuple(start), "the first sample is a move away from the origin"
    assert nx.min() >= 0 and ny.min() >= 0, "overshoot never leaves the screen's top-left"


def test_sample_count_and_rate_do_not_follow_the_device():
    """A 10 Hz remote-desktop trace and a 500 Hz gaming mouse over the same 600 ms
    movement come out at the drawn 60-125 Hz rate, so their sample counts overlap."""
    counts = {}
    for hz in (10, 500):
        n = int(0.6 * hz)
        t = 10**18 + np.round(np.arange(1, n + 1) * 1e9 / hz).astype(np.int64)
        x = np.linspace(100, 700, n).round().astype(np.int64)
        y = np.full(n, 400, dtype=np.int64)
        got = []
        for seed in range(40):
            nt, nx, ny = resample_segment((100, 400), t, x, y, np.random.default_rng(seed),
                                          CursorParams(duration_blend=1.0), None, 10**18 - 10**9)
            gaps = np.diff(nt) / MS
            # Typical intervals at the drawn rate; near the end the pointer creeps and
            # repeated positions are dropped (no motion, no report), so the max is longer.
            assert 1000 / 125 * 0.75 - 0.01 <= np.median(gaps) <= 1000 / 60 * 1.25 + 0.01
            got.append(len(nt))
        counts[hz] = got
    assert max(counts[10]) > 10, "the 10 Hz trace gets many more samples"
    assert min(counts[500]) < 300, "the 500 Hz trace gets far fewer"
    assert set(counts[10]) & set(counts[500]), "the two devices' counts overlap"


def test_duration_blend_moves_towards_the_population():
    """blend 1 keeps the person's duration; blend 0 draws it from the population at that distance."""
    model = default_model()
    rng = np.random.default_rng(3)
    # A very slow person: 3 s for 300 px (the population's median is well under that).
    t = 10**18 + np.arange(1, 31, dtype=np.int64) * 100 * MS
    x = np.linspace(110, 400, 30).round().astype(np.int64)
    y = np.full(30, 200, dtype=np.int64)
    spans = {}
    for blend in (1.0, 0.0):
        d = []
        for _ in range(200):
            nt, _, _ = resample_segment((100, 200), t, x, y, rng, CursorParams(duration_blend=blend), model,
                                        10**18 - 10 * 10**9)
            d.append((nt[-1] - nt[0]) / MS)
        spans[blend] = np.median(d)
    assert 2800 <= spans[1.0] <= 3100, "the person's 3 s movement keeps its duration"
    pop = np.median([model.draw_duration_ms(290, rng) for _ in range(400)])
    assert spans[0.0] < 0.6 * spans[1.0] and abs(spans[0.0] - pop) < 0.35 * pop, "population duration"


def test_start_never_crosses_the_previous_event():
    """The population may draw a duration longer than the gap: the start is clipped to the gap."""
    t = 10**18 + np.arange(1, 6, dtype=np.int64) * 10 * MS
    x = np.array([200, 400, 600, 800, 1000], dtype=np.int64)
    y = np.full(5, 100, dtype=np.int64)
    for seed in range(50):
        nt, nx, _ = resample_segment((0, 100), t, x, y, np.random.default_rng(seed), CursorParams(duration_blend=0.0),
                                     None, int(t[0]) - 5 * MS)
        assert nt[0] >= int(t[0]) - 5 * MS and nt[-1] == t[-1] and nx[-1] == 1000


def test_determinism_and_unpredictability():
    t = 10**18 + np.arange(30, dtype=np.int64) * 10 * MS
    x = np.linspace(0, 600, 30).astype(np.int64)
    y = np.linspace(0, 300, 30).astype(np.int64)
    a = resample_segment((0, 0), t, x, y, np.random.default_rng(5), None, None, 10**18 - 10**9)
    b = resample_segment((0, 0), t, x, y, np.random.default_rng(5), None, None, 10**18 - 10**9)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    fresh = {tuple(resample_segment((0, 0), t, x, y, np.random.default_rng(), None, None, 10**18 - 10**9)[1])
             for _ in range(5)}
    assert len(fresh) == 5


@pytest.mark.parametrize("bad", [
    {"resample": "sometimes"}, {"rate_hz_min": 0.0}, {"rate_hz_min": 200.0, "rate_hz_max": 100.0},
    {"duration_blend": 1.5}, {"duration_grid": 0.25}, {"retime": False},
])
def test_bad_resample_params_are_refused(bad):
    with pytest.raises(PolicyError):
        CursorParams(**bad).validate()
    with pytest.raises(PolicyError):
        make_cursor_stage({"anonymizer": {"cursor": bad}})


def test_keep_every_sample_mode_still_available():
    assert CursorParams(resample="off", duration_grid=0.25).validate() is None
    assert CursorParams(resample="off", retime=False).validate() is None


def test_model_without_duration_table_uses_a_fitts_like_fallback():
    m = CursorModel({})
    rng = np.random.default_rng(0)
    near = np.median([m.draw_duration_ms(10, rng) for _ in range(200)])
    far = np.median([m.draw_duration_ms(1000, rng) for _ in range(200)])
    assert 0 < near < far, "longer movements take longer"
    with pytest.raises(PolicyError):
        CursorModel({"duration_ms": [[100.0, 200.0]]}, {"duration_distance_edges_px": [0.0, 10.0]})


# ---- the streaming stage -------------------------------------------------------------

@st.composite
def mixed_stream(draw):
    """Pointer motion with clicks, scrolls, typing and focus changes, in time order."""
    n = draw(st.integers(1, 120))
    t = 1_700_000_000_000 * MS
    events = []
    x, y = 500, 500
    for _ in range(n):
        t += draw(st.one_of(st.integers(0, 40), st.integers(40, 2500))) * MS
        kind = draw(st.sampled_from(["move", "move", "move", "move", "click", "scroll", "key", "focus"]))
        seq = len(events)
        if kind == "move":
            x = max(0, x + draw(st.integers(-300, 300)))
            y = max(0, y + draw(st.integers(-300, 300)))
            events.append(MouseMove(seq=seq, t_ns=t, session="s", x=x, y=y))
        elif kind == "click":
            events.append(ButtonDown(seq=seq, t_ns=t, session="s", x=x, y=y, button="left"))
            events.append(ButtonUp(seq=seq + 1, t_ns=t, session="s", x=x, y=y, button="left"))
        elif kind == "scroll":
            events.append(Scroll(seq=seq, t_ns=t, session="s", x=x, y=y, dy=1))
        elif kind == "key":
            events.append(KeyDown(seq=seq, t_ns=t, session="s", key_code=97, char="a"))
            events.append(KeyUp(seq=seq + 1, t_ns=t + MS, session="s", key_code=97, char="a"))
            t += MS
        else:
            events.append(FocusChange(seq=seq, t_ns=t, session="s", app="xterm"))
    return events


def _run(events, cuts, seed):
    pipe = Pipeline([TypingStage(seed=seed), CursorStage(seed=seed + 1)])
    out = []
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(events))), len(events)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        now = events[b].t_ns if b < len(events) else events[-1].t_ns
        out += pipe.process(events[a:b], now)
    return out + pipe.flush(events[-1].t_ns)


@settings(max_examples=40, deadline=None)
@given(mixed_stream(), st.lists(st.integers(0, 200), max_size=12), st.integers(0, 2**31))
def test_stage_stream_invariants_and_chunking(events, cuts, seed):
    out = _run(events, [], seed)
    t = [e.t_ns for e in out]
    assert all(b >= a for a, b in zip(t, t[1:])), "t_ns non-decreasing in output order"
    assert all(e.session == "s" for e in out)
    fixed_in = [e for e in events if isinstance(e, (ButtonDown, ButtonUp, Scroll, FocusChange))]
    fixed_out = [e for e in out if isinstance(e, (ButtonDown, ButtonUp, Scroll, FocusChange))]
    assert fixed_out == fixed_in, "clicks, scrolls and focus changes untouched, same order"
    # Between two non-move events, moves in means moves out, ending where the input's ended.
    def runs(evs):
        cur, res = [], []
        for e in evs:
            if isinstance(e, MouseMove):
                cur.append(e)
            elif not isinstance(e, (KeyDown, KeyUp)):
                res.append(cur)
                cur = []
        return res + [cur]
    for a, b in zip(runs(events), runs(out)):
        assert bool(a) == bool(b)
        if a:
            assert (b[-1].x, b[-1].y, b[-1].t_ns) == (a[-1].x, a[-1].y, a[-1].t_ns), "movement lands exactly"
    chunked = _run(events, cuts, seed)
    assert [(type(e), e.t_ns, getattr(e, "x", None), getattr(e, "y", None)) for e in out] == \
           [(type(e), e.t_ns, getattr(e, "x", None), getattr(e, "y", None)) for e in chunked]


def test_stage_emits_a_different_number_of_moves_and_bounded_hold_back():
    """30 moves at 10 Hz over 3 s come out at 60-125 Hz: more moves, same last point and time."""
    stage = CursorStage(seed=2)
    t = 10**18
    click = ButtonDown(seq=0, t_ns=t, session="s", x=100, y=100, button="left")
    moves = [MouseMove(seq=i + 1, t_ns=t + (i + 1) * 100 * MS, session="s", x=100 + 20 * i, y=100 + 5 * i)
             for i in range(30)]
    out = stage.process([click, *moves], moves[-1].t_ns)
    assert out == [click], "the movement is held while it may go on"
    out = stage.process([], moves[-1].t_ns + 400 * MS)
    assert len(out) != len(moves) and all(isinstance(e, MouseMove) for e in out)
    assert (out[-1].x, out[-1].y, out[-1].t_ns) == (moves[-1].x, moves[-1].y, moves[-1].t_ns)
    assert out[0].t_ns >= click.t_ns
    assert stage.flush(moves[-1].t_ns + 500 * MS) == []
    assert stage.describe().params["resample"] == "population"

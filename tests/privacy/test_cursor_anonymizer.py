"""Property tests for the cursor anonymizer (tracework.privacy.cursor)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tracework.errors import PolicyError
from tracework.privacy.cursor import CursorModel, CursorParams, anonymize_segment, min_jerk, split_segments

MS = 1_000_000


@st.composite
def segment(draw):
    n = draw(st.integers(1, 60))
    t0 = draw(st.integers(10**17, 10**18))
    dts = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
    t = t0 + np.cumsum(np.array(dts, dtype=np.int64) * MS)
    x = np.array(draw(st.lists(st.integers(0, 3840), min_size=n, max_size=n)), dtype=np.int64)
    y = np.array(draw(st.lists(st.integers(0, 2160), min_size=n, max_size=n)), dtype=np.int64)
    start = draw(st.one_of(st.none(), st.tuples(st.integers(0, 3840), st.integers(0, 2160))))
    return start, t, x, y


@settings(max_examples=100, deadline=None)
@given(segment(), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.booleans())
def test_endpoints_exact_times_monotone_duration_kept(seg, seed, strength, retime):
    start, t, x, y = seg
    nt, nx, ny = anonymize_segment(start, t, x, y, np.random.default_rng(seed),
                                   CursorParams(strength=strength, retime=retime))
    assert len(nt) == len(t) and len(nx) == len(x)
    assert (nx[-1], ny[-1]) == (x[-1], y[-1]), "the landing point is bit-exact"
    if start is None:
        assert (nx[0], ny[0]) == (x[0], y[0])
    assert nt[0] == t[0] and nt[-1] == t[-1], "segment start and end time kept"
    assert np.all(np.diff(nt) >= 0)
    assert nx.dtype == np.int64 and ny.dtype == np.int64
    assert nx.min() >= 0 and ny.min() >= 0, "overshoot never leaves the screen's top-left"


def test_path_is_replaced_and_plausible():
    """A straight, constant-speed robot path comes out curved with a bell-shaped speed."""
    n = 40
    t = 10**18 + np.arange(n, dtype=np.int64) * 8 * MS
    x = np.linspace(100, 900, n).round().astype(np.int64)
    y = np.full(n, 500, dtype=np.int64)
    nt, nx, ny = anonymize_segment((80, 500), t, x, y, np.random.default_rng(7))
    assert not np.array_equal(nx, x) or not np.array_equal(ny, y)
    speed = np.hypot(np.diff(nx), np.diff(ny))
    peak = int(np.argmax(speed))
    assert 0 < peak < len(speed) - 1, "speed rises then falls (not constant, not at an end)"
    assert speed[0] < speed[peak] and speed[-1] < speed[peak]
    # Stays near the straight line: no wild excursions (within a movement distance).
    assert np.abs(ny - 500).max() < 800


def test_determinism_and_unpredictability():
    n = 30
    t = 10**18 + np.arange(n, dtype=np.int64) * 10 * MS
    x = np.linspace(0, 600, n).astype(np.int64)
    y = np.linspace(0, 300, n).astype(np.int64)
    a = anonymize_segment((0, 0), t, x, y, np.random.default_rng(5))
    b = anonymize_segment((0, 0), t, x, y, np.random.default_rng(5))
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    fresh = {tuple(anonymize_segment((0, 0), t, x, y, np.random.default_rng())[1]) for _ in range(5)}
    assert len(fresh) == 5


def test_min_jerk_profile_bounds():
    u = np.linspace(-0.5, 1.5, 101)
    m = min_jerk(u)
    assert m.min() == 0 and m.max() == 1 and np.all(np.diff(m) >= 0)


def test_split_segments_at_rests():
    t = np.array([0, 10, 20, 500, 510, 2000], dtype=np.int64) * MS
    assert [(s.start, s.stop) for s in split_segments(t, 300)] == [(0, 3), (3, 5), (5, 6)]


def test_bad_params_and_model():
    with pytest.raises(PolicyError):
        CursorParams(rest_ms=0).validate()
    with pytest.raises(PolicyError):
        CursorParams(strength=-1).validate()
    with pytest.raises(PolicyError):
        CursorModel.load(__file__)  # not JSON


@settings(max_examples=100, deadline=None)
@given(segment(), st.integers(0, 2**32 - 1), st.sampled_from([0.1, 0.25, 0.5]), st.floats(0, 1, exclude_max=True))
def test_duration_grid_rounds_down_and_keeps_the_end(seg, seed, grid, phase):
    start, t, x, y = seg
    nt, nx, ny = anonymize_segment(start, t, x, y, np.random.default_rng(seed),
                                   CursorParams(duration_grid=grid), grid_phase=phase)
    assert (nx[-1], ny[-1]) == (x[-1], y[-1]), "the landing point is bit-exact"
    assert nt[-1] == t[-1], "the segment's end time is kept"
    assert nt[0] >= t[0], "the start only moves later (never before what came earlier)"
    assert np.all(np.diff(nt) >= 0)
    dur, new = int(t[-1] - t[0]), int(nt[-1] - nt[0])
    if len(t) > 2 or (start is not None and len(t) > 1):
        # Rounded down by less than one grid step (plus a nanosecond of rounding).
        assert new <= dur and new * (1 + grid) >= dur - 1


def test_duration_grid_out_of_range_is_refused():
    with pytest.raises(PolicyError):
        CursorParams(duration_grid=2.0).validate()

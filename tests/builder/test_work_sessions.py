"""engine.work_sessions (one compiled pass over the sessionized rows) against
engine.reference_work_sessions (the group-by it replaced): the manifest's
work-session count, people, sessions and clock jumps come from it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_frames import as_read, random_raw
from polars.testing import assert_frame_equal

from tracework.builder import BuildSettings, engine, normalize, sessionize
from tracework.builder.engine import reference_work_sessions, work_sessions

KEY = ["person", "session", "work_session"]


def _equal(rows: pl.DataFrame) -> pl.DataFrame:
    fast = work_sessions(rows)
    ref = reference_work_sessions(rows)
    assert_frame_equal(fast.sort(KEY), ref.sort(KEY))
    return fast


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("layout", ["runs", "shuffled"])
def test_equals_the_group_by_on_random_sessions(seed, layout, monkeypatch):
    """Sessions with pauses, idle, locks, denied windows, gaps and backward
    clock jumps (kernel_frames), through normalize and sessionize; the
    compiled pass takes every such frame (no fall-back to the group-by)."""
    fallbacks = []
    monkeypatch.setattr(engine, "reference_work_sessions", lambda rows: fallbacks.append(rows) or reference_work_sessions(rows))
    for cfg in (BuildSettings(), BuildSettings(session_gap_s=2.0, task_pause_s=0.5)):
        rows = sessionize(normalize(as_read(random_raw(seed, sessions=5, events=200, layout=layout))), cfg).collect()
        out = _equal(rows)
        assert out.height > 0
    assert not fallbacks


def _rows(sid, person, ws, task, excluded, t_ns, jump) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "_sid": sid,
            "person": [f"p{p}" for p in person],
            "session": [f"s{s}" for s in sid],
            "work_session": ws,
            "task": task,
            "excluded": excluded,
            "t_ns": t_ns,
            "clock_jump": jump,
        },
        schema={"_sid": pl.Int64, "person": pl.Categorical, "session": pl.Categorical, "work_session": pl.Int32,
                "task": pl.Int32, "excluded": pl.Boolean, "t_ns": pl.Int64, "clock_jump": pl.Boolean},
    )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_equals_the_group_by_on_any_rows(data):
    """Arbitrary rows, also those the pass must refuse (unsorted sessions, two
    persons in a session, decreasing work sessions or tasks): then the
    group-by answers, so the result is always the group-by's."""
    n = data.draw(st.integers(1, 60))
    ints = st.lists(st.integers(0, 3), min_size=n, max_size=n)
    sid, person, ws, task = (data.draw(ints) for _ in range(4))
    if data.draw(st.booleans()):  # mostly the layout sessionize leaves
        sid, ws, task = sorted(sid), sorted(ws), sorted(task)
        person = [s % 2 for s in sid]
    excluded = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    t_ns = data.draw(st.lists(st.integers(-(10**12), 10**12), min_size=n, max_size=n))
    jump = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    _equal(_rows(sid, person, ws, task, excluded, t_ns, jump))


def test_all_excluded_and_nulls():
    rows = _rows([1, 1, 2], [0, 0, 1], [0, 0, 0], [0, 1, 0], [True, True, True], [5, 6, 7], [False, True, False])
    assert _equal(rows).height == 0
    with_null = rows.with_columns(pl.Series("t_ns", [5, None, 7], pl.Int64), pl.Series("excluded", [False] * 3))
    _equal(with_null)


def test_one_pass_counts():
    """A pinned case: tasks are distinct task numbers of included rows, the
    span is min/max time (a backward jump makes the last row not the end)."""
    rows = _rows(
        sid=[0, 0, 0, 0, 0, 1, 1],
        person=[0, 0, 0, 0, 0, 1, 1],
        ws=[0, 0, 0, 1, 1, 0, 0],
        task=[0, 1, 1, 2, 3, 0, 0],
        excluded=[False, True, False, False, False, False, False],
        t_ns=[10, 20, 30, 40, 35, 5, 6],
        jump=[False, False, False, False, True, False, False],
    )
    out = _equal(rows)
    assert out.sort(KEY).select("start_ns", "end_ns", "events", "tasks", "clock_jumps").rows() == [
        (10, 30, 2, 2, 0),
        (35, 40, 2, 2, 1),
        (5, 6, 2, 1, 0),
    ]
    assert np.all(out["events"].to_numpy() > 0)

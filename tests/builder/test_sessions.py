"""Work sessions and tasks: where the stream is cut, and what is left out."""

from __future__ import annotations

import polars as pl
from builder_script import Script, rows

from tracework.builder import reduce_actions, typing_fields
from tracework.events import Active, FocusChange, Idle, MouseMove, Pause, Resume


def cuts(script: Script, settings) -> pl.DataFrame:
    return rows([script], settings).collect()


def test_long_gap_starts_a_new_work_session(settings):
    s = Script()
    s.type("ab").type("cd", first_ms=(settings.session_gap_s + 1) * 1000)
    df = cuts(s, settings).filter(pl.col("type") == "key_down")
    assert df["work_session"].to_list() == [0, 0, 1, 1]


def test_app_switch_and_pause_start_new_tasks(settings):
    s = Script()
    s.focus("editor", "a.txt").type("x").focus("browser", "docs").type("y")
    s.type("z", first_ms=(settings.task_pause_s + 1) * 1000)
    df = cuts(s, settings).filter(pl.col("type") == "key_down")
    assert df["task"].to_list() == [1, 2, 3]  # task 0 is the session start before the first focus
    assert df["work_session"].to_list() == [0, 0, 0]


def test_paused_idle_denied_and_locked_events_are_excluded(settings):
    s = Script()
    s.focus("editor", "a").type("ok")
    s.add(Pause, reason="hotkey").type("no")  # keys while paused (should not exist) are dropped
    s.add(Resume, reason="hotkey").type("ok")
    s.add(FocusChange, denied=True).type("xx")
    s.focus("editor", "a").type("ok")
    s.focus("i3lock", "locked").type("yy")
    s.focus("editor", "a").add(Idle, idle_ms=60000).add(Active).type("ok")
    texts = typing_fields(rows([s], settings), settings)["text"].to_list()
    assert texts == ["ok", "ok", "ok", "ok"]
    ws = cuts(s, settings).filter(~pl.col("excluded") & (pl.col("type") == "key_down"))["work_session"].unique(maintain_order=True)
    # Each "ok" is in its own work session: at the start, after the resume,
    # after the denied window, and after idle (the session after the lock
    # holds only the focus change and the idle).
    assert ws.len() == 4 and ws.is_sorted()


def test_events_out_of_order_are_put_back_in_capture_order(settings):
    s = Script()
    s.move_to(100, 100).click(100, 100).type("hi")
    shuffled = Script()
    shuffled.events = list(reversed(s.events))
    a = reduce_actions(rows([s], settings), settings).collect()
    b = reduce_actions(rows([shuffled], settings), settings).collect()
    assert a.equals(b)
    assert a["action"].to_list() == ["click", "type"]


def test_clock_jump_backwards_cuts_the_session_without_negative_durations(settings):
    s = Script()
    s.type("ab")
    s.t -= 3_600 * 10**9  # the wall clock was set back an hour
    s.type("cd")
    df = cuts(s, settings)
    keys = df.filter(pl.col("type") == "key_down")
    assert keys["work_session"].to_list() == [0, 0, 1, 1]
    assert df["clock_jump"].sum() == 1
    acts = reduce_actions(rows([s], settings), settings).collect()
    assert acts["text"].to_list() == ["ab", "cd"]
    assert (acts["duration_ms"] >= 0).all()


def test_session_of_only_moves_has_no_typing(settings):
    s = Script()
    for i in range(30):
        s.add(MouseMove, 10, x=i * 10, y=i * 5)
    assert typing_fields(rows([s], settings), settings).height == 0


def test_the_next_sessions_first_row_is_not_a_clock_jump(settings, tmp_path):
    """Sessions lie one after another in the rows, each on its own clock: the
    first row of a session that started earlier than the previous session
    ended is not a backward jump (the manifest counted about half of all
    session starts as jumps)."""
    import json

    from builder_script import lake_table, write_lake

    from tracework.builder import build_datasets
    from tracework.builder.reference import reference_normalize, reference_sessionize

    scripts = []
    for i in range(6):
        s = Script(session=f"sess-{i}")  # every session starts at the same T0
        s.focus("editor", "doc").type("hello").end()
        scripts.append(s)
    frame = rows(scripts, settings).collect()
    ref = reference_sessionize(reference_normalize(pl.from_arrow(lake_table(scripts))), settings).collect()
    for f in (frame, ref):
        assert f["clock_jump"].sum() == 0
        assert f.group_by("session").agg(pl.col("work_session").n_unique())["work_session"].to_list() == [1] * 6
    write_lake(tmp_path / "data", scripts, [f"p_{i:024x}" for i in range(6)])
    build_datasets(tmp_path / "data", tmp_path / "ds", kinds=["typing"])
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["clock_jumps"] == 0

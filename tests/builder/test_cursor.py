"""Cursor movement segments and their kinematic features."""

from __future__ import annotations

import math

import pytest
from builder_script import Script, rows

from tracework.builder import cursor_segments
from tracework.events import MouseMove


def segments(s: Script, settings):
    return cursor_segments(rows([s], settings), settings).collect()


def test_straight_move_then_click(settings):
    s = Script()
    s.add(MouseMove, 0, x=0, y=0)
    s.move_to(300, 400, steps=10, dt_ms=10)
    s.click(300, 400, dt_ms=20)
    seg = segments(s, settings).row(0, named=True)
    assert seg["ends_with"] == "click"
    assert (seg["start_x"], seg["start_y"], seg["end_x"], seg["end_y"]) == (0, 0, 300, 400)
    assert seg["path_length_px"] == pytest.approx(500)
    assert seg["straightness"] == pytest.approx(1.0)
    assert seg["overshoot_px"] == 0
    assert seg["submovements"] == 1
    assert seg["duration_ms"] == pytest.approx(100)
    assert seg["peak_speed_px_s"] == pytest.approx(50 / 0.010)
    assert len(seg["path"]) == 11


def test_overshoot_and_correction(settings):
    s = Script()
    s.add(MouseMove, 0, x=0, y=100)
    for x in range(20, 241, 20):  # fast to 240, past the target at 200
        s.add(MouseMove, 10, x=x, y=100)
    for _ in range(6):  # nearly still for a moment
        s.add(MouseMove, 10, x=240, y=100)
    for x in (230, 220, 210, 200):  # slow correction back
        s.add(MouseMove, 20, x=x, y=100)
    seg = segments(s, settings).row(0, named=True)
    assert seg["ends_with"] == "rest"
    assert seg["overshoot_px"] == pytest.approx(40)
    assert seg["submovements"] == 2
    assert seg["straightness"] == pytest.approx(200 / 280)


def test_rest_splits_segments_and_drag_is_marked(settings):
    s = Script()
    s.add(MouseMove, 0, x=0, y=0)
    s.move_to(100, 0, steps=5)
    s.move_to(100, 100, steps=5, dt_ms=settings.rest_ms + 50)  # a rest before each step
    s.drag(100, 100, 300, 100)
    df = segments(s, settings)
    assert "drag" in df["ends_with"].to_list()
    drag = df.filter(df["ends_with"] == "drag").row(0, named=True)
    assert drag["end_x"] == 300
    assert math.isclose(drag["displacement_px"], drag["end_x"] - drag["start_x"])


def test_a_click_in_the_next_session_does_not_end_a_segment(settings):
    """What follows a segment is looked up in its own session: sessions lie one
    after another in the rows (hash order), and the next session's first
    button-down, at an earlier time, used to make this session's last
    movement end with a click it never had."""
    from tracework.builder.reference import reference_cursor_segments
    from tracework.events import ButtonDown, ButtonUp

    scripts = []
    for name in ("alpha", "beta"):
        s = Script(session=name)
        s.add(ButtonDown, 10, x=5, y=5, button="left")
        s.add(ButtonUp, 30, x=5, y=5, button="left")
        s.add(MouseMove, 10, x=5, y=5)
        s.move_to(200, 200, steps=5, dt_ms=10)
        s.end()
        scripts.append(s)
    for build in (cursor_segments, reference_cursor_segments):
        segs = build(rows(scripts, settings), settings).collect()
        assert segs.height == 2
        assert segs["ends_with"].to_list() == ["rest", "rest"], build.__name__

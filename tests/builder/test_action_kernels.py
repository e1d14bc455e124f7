"""Differential tests: the compiled action reduction (``reduce_actions``)
gives exactly what the Polars implementation (``reference_reduce_actions``)
gives, frame for frame, on generated sessions.

The generator writes sessions the way an agent records them (``Script``):
motion, clicks of every button (chained or not), drags, a button held while
keys are typed, a button released twice or never, scroll bursts in every
direction, typing with backspaces past the start, redacted spans, named keys,
hotkeys and lone modifiers, focus changes (some denied or locked), idle and
pause periods, long gaps (new work sessions and tasks), the clock set back, several sessions in
one frame, and settings other than the defaults.
"""

from __future__ import annotations

import polars as pl
import pytest
from builder_script import Script, rows
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from tracework.builder import BuildSettings, reduce_actions
from tracework.builder.actions import TRAJECTORY_COLUMNS, reference_reduce_actions
from tracework.events import (
    MOD_ALT,
    MOD_CTRL,
    MOD_META,
    MOD_SHIFT,
    Active,
    ButtonDown,
    ButtonUp,
    FocusChange,
    Idle,
    KeyDown,
    KeyUp,
    MouseMove,
    Pause,
    Resume,
    Scroll,
)

coord = st.integers(0, 1300)
gap = st.sampled_from([1, 8, 30, 80, 200, 450, 600, 2_000, 70_000, 400_000])

ops = st.one_of(
    st.tuples(st.just("move"), coord, coord, st.integers(1, 6), st.sampled_from([2, 10, 40])),
    st.tuples(st.just("jitter"), st.integers(-4, 4), st.integers(-4, 4)),
    st.tuples(st.just("click"), coord, coord, st.sampled_from(["left", "left", "right", "middle"]), gap),
    st.tuples(st.just("again"), st.integers(-6, 6), st.sampled_from([30, 80, 300, 600])),  # click near the last one
    st.tuples(st.just("drag"), coord, coord, coord, coord),
    st.tuples(st.just("down"), coord, coord, st.sampled_from(["left", "right"])),  # press without release
    st.tuples(st.just("up"), coord, coord),  # release (possibly with nothing held)
    st.tuples(st.just("scroll"), coord, coord, st.sampled_from([(0, -1), (0, 1), (1, 0), (-1, 0), (0, 0)]), st.integers(1, 5), gap),
    st.tuples(st.just("type"), st.text(alphabet="ab \b\b'\\é", min_size=1, max_size=12), st.sampled_from([20, 90, 700])),
    st.tuples(st.just("redacted"), st.sampled_from(["EMAIL", "PASSWORD"]), st.integers(1, 4)),
    st.tuples(st.just("key"), st.sampled_from([("Return", "\r"), ("Escape", "\x1b"), ("Tab", "\t"), ("F5", None), ("Left", None), ("BackSpace", None)]), st.integers(1, 3)),
    st.tuples(st.just("hotkey"), st.sampled_from([MOD_CTRL, MOD_CTRL | MOD_SHIFT, MOD_ALT, MOD_META, MOD_CTRL | MOD_ALT]), st.sampled_from(["s", "T", "BackSpace", "Return", None])),
    st.tuples(st.just("modifier"), st.sampled_from(["Control_L", "Shift_L", "Alt_L"])),
    st.tuples(st.just("focus"), st.sampled_from(["editor", "browser", "i3lock"]), st.booleans()),
    st.tuples(st.just("pause"), st.booleans()),
    st.tuples(st.just("idle"),),
    st.tuples(st.just("gap"), st.sampled_from([61_000, 301_000])),
    st.tuples(st.just("clock_back"), st.sampled_from([5, 500, 90_000])),  # the wall clock set back
)


def _play(s: Script, script: list[tuple]) -> Script:
    last = (100, 100)
    for op in script:
        kind = op[0]
        if kind == "move":
            s.move_to(op[1], op[2], steps=op[3], dt_ms=op[4])
            last = (op[1], op[2])
        elif kind == "jitter":
            s.add(MouseMove, 8, x=max(0, last[0] + op[1]), y=max(0, last[1] + op[2]))
        elif kind == "click":
            s.click(op[1], op[2], button=op[3], dt_ms=op[4])
            last = (op[1], op[2])
        elif kind == "again":
            last = (max(0, last[0] + op[1]), last[1])
            s.click(*last, dt_ms=op[2])
        elif kind == "drag":
            s.drag(*op[1:])
            last = (op[3], op[4])
        elif kind == "down":
            s.add(ButtonDown, 30, x=op[1], y=op[2], button=op[3])
            last = (op[1], op[2])
        elif kind == "up":
            s.add(ButtonUp, 30, x=op[1], y=op[2], button="left")
        elif kind == "scroll":
            (dx, dy), notches, dt = op[3], op[4], op[5]
            s.scroll(op[1], op[2], dx=dx, dy=dy, notches=notches, dt_ms=dt)
        elif kind == "type":
            s.type(op[1], dt_ms=op[2])
        elif kind == "redacted":
            s.redacted(op[1], op[2])
        elif kind == "key":
            (sym, ch), n = op[1], op[2]
            for _ in range(n):
                s.key(sym, ch)
        elif kind == "hotkey":
            mods, sym = op[1], op[2]
            if sym is None:  # a hotkey whose key has no name (seen from some layouts)
                s.add(KeyDown, 90, modifiers=mods).add(KeyUp, 40, modifiers=mods)
            else:
                s.key(sym, sym.lower() if len(sym) == 1 else None, modifiers=mods)
        elif kind == "modifier":
            s.key(op[1])
        elif kind == "focus":
            s.add(FocusChange, 10, app=op[1], title=f"{op[1]} window", denied=op[2] and op[1] == "browser")
        elif kind == "pause":
            s.add(Pause, 10, reason="hotkey")
            if op[1]:
                s.add(Resume, 500, reason="hotkey")
        elif kind == "idle":
            s.add(Idle, 10, idle_ms=60_000).add(Active, 60_000)
        elif kind == "gap":
            s.t += op[1] * 1_000_000
        elif kind == "clock_back":
            s.t -= op[1] * 1_000_000
    return s


def _both(scripts: list[Script], settings: BuildSettings) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = rows(scripts, settings).collect()
    fast = reduce_actions(frame.lazy(), settings).collect()
    ref = reference_reduce_actions(frame.lazy(), settings).collect()
    return fast, ref


settings_variants = st.sampled_from(
    [
        BuildSettings(),
        BuildSettings(multi_click_ms=2000.0, multi_click_px=20.0, drag_px=0.0, scroll_gap_ms=50.0, move_min_px=0.0),
        BuildSettings(multi_click_ms=0.0, drag_px=50.0, scroll_gap_ms=5000.0, move_min_px=50.0, task_pause_s=1.0),
    ]
)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.lists(ops, max_size=25), min_size=1, max_size=3), settings_variants, st.booleans())
def test_compiled_reduction_equals_the_polars_reference(sessions, settings, with_end):
    scripts = []
    for i, script in enumerate(sessions):
        s = _play(Script(session=f"s{i}", t0=1_763_900_000_000_000_000 + i * 10**12), script)
        scripts.append(s.end() if with_end else s)
    fast, ref = _both(scripts, settings)
    assert fast.columns == TRAJECTORY_COLUMNS
    assert_frame_equal(fast, ref)


def test_long_click_chain_and_every_kind(settings):
    """A chain of many clicks (every third starts anew) beside one of each kind."""
    s = Script()
    s.move_to(50, 50)
    for i in range(40):
        s.click(50, 50, dt_ms=60 if i else 30)
    s.drag(10, 10, 300, 300).scroll(5, 5, dy=-1, notches=3).type("x\b\by").key("Return", "\r").key("s", "s", modifiers=MOD_CTRL)
    fast, ref = _both([s.end()], settings)
    assert_frame_equal(fast, ref)
    assert fast["clicks"].drop_nulls().to_list()[:14] == [3] * 13 + [1]


def test_drag_never_released_and_press_without_down(settings):
    """A press the session ends in (no button-up) and a release with nothing
    held: the end point and the chain merge fall back as the reference does."""
    s = Script()
    s.click(10, 10).add(ButtonUp, 30, x=12, y=12, button="left")
    s.add(ButtonDown, 30, x=100, y=100, button="left").move_to(300, 300)
    s.click(400, 400, dt_ms=50)
    s.add(ButtonDown, 30, x=500, y=500, button="left").move_to(600, 650)
    fast, ref = _both([s], settings)
    assert_frame_equal(fast, ref)
    assert "drag" in fast["action"].to_list()


def test_scroll_without_direction(settings):
    s = Script()
    s.add(Scroll, 30, x=5, y=5).add(Scroll, 30, x=5, y=5).add(Scroll, 30, x=5, y=5, dy=1).add(Scroll, 30, x=5, y=5, dx=-1)
    fast, ref = _both([s.end()], settings)
    assert_frame_equal(fast, ref)


def test_sessions_of_only_motion_share_the_reference_group(settings):
    """Motion with no unit before or after in its session (no session_start:
    an imported stream) is one move action, as the reference groups it."""
    frames = []
    for i in range(3):
        s = Script(session=f"m{i}", t0=1_763_900_000_000_000_000 + i * 10**12)
        s.events.clear()
        s.move_to(100 * (i + 1), 50, steps=4)
        frames.append(s)
    fast, ref = _both(frames, settings)
    assert_frame_equal(fast, ref)


def test_empty_and_all_excluded_frames(settings):
    s = Script()
    s.add(Pause, 10, reason="hotkey").type("hidden").click(5, 5)
    fast, ref = _both([s], settings)
    assert fast.height == 0
    assert_frame_equal(fast, ref)
    empty = rows([s], settings).collect().clear()
    assert_frame_equal(reduce_actions(empty.lazy(), settings).collect(), reference_reduce_actions(empty.lazy(), settings).collect())


@pytest.mark.parametrize("column", ["t_ns", "seq", "modifiers"])
def test_nulls_the_lake_never_has_take_the_reference(settings, column):
    s = Script()
    s.move_to(200, 200).click(200, 200).type("hi")
    frame = rows([s.end()], settings).collect()
    frame = frame.with_columns(pl.when(pl.col("type") == "mouse_move").then(None).otherwise(pl.col(column)).alias(column))
    fast = reduce_actions(frame.lazy(), settings).collect()
    assert_frame_equal(fast, reference_reduce_actions(frame.lazy(), settings).collect())


def test_nullable_pointer_fields(settings):
    """Motion rows without coordinates and a screen size never recorded:
    coordinates, norms and commands go null exactly where the reference's do."""
    s = Script()
    s.move_to(200, 200).click(200, 200).drag(10, 10, 90, 90).scroll(5, 5, dy=1, notches=2).type("ok")
    frame = rows([s.end()], settings).collect()
    frame = frame.with_columns(
        pl.when((pl.col("type") == "mouse_move") & (pl.col("seq") % 3 == 0)).then(None).otherwise(pl.col("x")).alias("x"),
        pl.when(pl.col("seq") % 5 == 0).then(None).otherwise(pl.col("y")).alias("y"),
        pl.lit(None, dtype=pl.Int64).alias("screen_w"),
        pl.when(pl.col("type") == "button_down").then(None).otherwise(pl.col("button")).alias("button"),
        pl.lit(None, dtype=pl.Int64).alias("_focus"),
    )
    fast = reduce_actions(frame.lazy(), settings).collect()
    assert_frame_equal(fast, reference_reduce_actions(frame.lazy(), settings).collect())


def test_key_characters_of_every_class(settings):
    """Which characters count as typed text (decided per distinct character
    in the compiled path): control characters, DEL, an empty string, several
    characters from one key (dead keys, IMEs), non-ASCII, with and without
    modifiers."""
    s = Script()
    for sym, ch, mods in [
        ("a", "a", 0), ("Delete", "\x7f", 0), ("x", "", 0), ("dead", "ab", 0), ("e", "é", 0), ("smile", "🙂", 0),
        ("Return", "\r", 0), ("c", "c", MOD_CTRL), ("A", "A", MOD_SHIFT), ("BackSpace", None, 0), ("BackSpace", None, MOD_CTRL),
        ("Control_L", None, MOD_CTRL), ("b", "b", MOD_ALT | MOD_SHIFT), ("z", "z", 0),
    ]:  # fmt: skip
        s.key(sym, ch, modifiers=mods)
    fast, ref = _both([s.end()], settings)
    assert_frame_equal(fast, ref)
    assert "type" in fast["action"].to_list() and "hotkey" in fast["action"].to_list()

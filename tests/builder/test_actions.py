"""Action reduction on scripted sessions: each test states the actions a
person would name when watching the session, and checks the builder names
exactly those, in order, with the right coordinates, text and lineage."""

from __future__ import annotations

import polars as pl
from builder_script import Script, rows
from hypothesis import given, settings as hsettings, strategies as st

from tracework.builder import reduce_actions
from tracework.events import MOD_CTRL, MOD_SHIFT


def actions(script: Script, settings) -> pl.DataFrame:
    return reduce_actions(rows([script], settings), settings).collect()


def test_every_action_kind_in_order(settings):
    s = Script(screen=(1000, 800))
    s.focus("xterm", "shell")
    s.move_to(100, 100).click(100, 100)
    s.move_to(300, 200).click(300, 200, dt_ms=200).click(300, 200, dt_ms=80)
    s.move_to(400, 400).click(400, 400, dt_ms=300).click(400, 400, dt_ms=80).click(400, 400, dt_ms=80)
    s.click(400, 400, button="right", dt_ms=600)
    s.click(410, 400, button="middle", dt_ms=600)
    s.drag(500, 500, 700, 560)
    s.scroll(600, 300, dy=-1, notches=4).scroll(600, 300, dy=1, notches=2, dt_ms=700)
    s.scroll(600, 300, dx=1, notches=3, dt_ms=700)
    s.type("hrl\b\bello world", dt_ms=80)
    s.key("Return", "\r").key("Return", "\r")
    s.key("Control_L").key("s", "s", modifiers=MOD_CTRL)
    s.key("Control_L").key("Shift_L", modifiers=MOD_CTRL).key("T", "T", modifiers=MOD_CTRL | MOD_SHIFT)
    s.move_to(900, 50, dt_ms=20)
    df = actions(s.end(), settings)
    got = df.select("action", "x", "y", "end_x", "end_y", "text", "keys", "presses", "scroll_amount", "scroll_direction").rows()
    assert got == [
        ("click", 100, 100, None, None, None, None, None, None, None),
        ("double_click", 300, 200, None, None, None, None, None, None, None),
        ("triple_click", 400, 400, None, None, None, None, None, None, None),
        ("right_click", 400, 400, None, None, None, None, None, None, None),
        ("middle_click", 410, 400, None, None, None, None, None, None, None),
        ("drag", 500, 500, 700, 560, None, None, None, None, None),
        ("scroll", 600, 300, None, None, None, None, None, 4, "down"),
        ("scroll", 600, 300, None, None, None, None, None, 2, "up"),
        ("scroll", 600, 300, None, None, None, None, None, 3, "right"),
        ("type", None, None, None, None, "hello world", None, None, None, None),
        ("press", None, None, None, None, None, ["enter"], 2, None, None),
        ("hotkey", None, None, None, None, None, ["ctrl", "s"], None, None, None),
        ("hotkey", None, None, None, None, None, ["ctrl", "shift", "t"], None, None, None),
        ("move", 900, 50, None, None, None, None, None, None, None),
    ]
    # Normalised coordinates use the screen size from session_start.
    first = df.row(0, named=True)
    assert first["x_norm"] == 100 / 1000 and first["y_norm"] == 100 / 800
    drag = df.filter(pl.col("action") == "drag").row(0, named=True)
    assert drag["end_x_norm"] == 700 / 1000
    assert [p["x"] for p in drag["path"]][-1] == 700
    assert df["command"][1] == "pyautogui.doubleClick(x=300, y=200)"
    assert df["command"][9] == "pyautogui.write('hello world')"
    assert df["app"].to_list() == ["xterm"] * df.height


def test_click_carries_the_path_that_led_to_it_and_its_event_range(settings):
    s = Script()
    s.move_to(0, 0, steps=1).move_to(200, 100, steps=4).click(200, 100)
    df = actions(s, settings)
    click = df.row(0, named=True)
    assert click["action"] == "click"
    path = [(p["x"], p["y"]) for p in click["path"]]
    assert path[:5] == [(0, 0), (50, 25), (100, 50), (150, 75), (200, 100)]
    # Lineage: the raw events from the first move to the button-up.
    seqs = [e.seq for e in s.events]
    assert (click["seq_first"], click["seq_last"]) == (seqs[1], seqs[-1])
    assert click["event_count"] == len(s.events) - 1
    assert click["session"] == "s1"


def test_backspace_beyond_the_run_is_a_press_and_the_rest_is_text(settings):
    s = Script()
    s.type("ab\b\b\b\bxy")
    df = actions(s, settings)
    assert df.select("action", "text", "keys", "presses").rows() == [
        ("press", None, ["backspace"], 2),
        ("type", "xy", None, None),
    ]


def test_redacted_span_is_one_placeholder(settings):
    s = Script()
    s.type("mail ").redacted("EMAIL", 12).type(" ok")
    df = actions(s, settings)
    assert df["text"].to_list() == ["mail ⟨EMAIL⟩ ok"]


def test_slow_clicks_do_not_chain(settings):
    s = Script()
    s.click(10, 10).click(10, 10, dt_ms=900)
    assert actions(s, settings)["action"].to_list() == ["click", "click"]


def test_clicks_far_apart_do_not_chain(settings):
    s = Script()
    s.click(10, 10).click(60, 10, dt_ms=50)
    assert actions(s, settings)["action"].to_list() == ["click", "click"]


def test_session_of_only_moves_is_one_move(settings):
    s = Script()
    s.move_to(300, 300, steps=20)
    df = actions(s, settings)
    assert df.select("action", "x", "y").rows() == [("move", 300, 300)]


def test_focus_change_separates_typing(settings):
    s = Script()
    s.focus("a", "one").type("abc").focus("b", "two").type("def")
    df = actions(s, settings)
    assert df.select("text", "app", "title").rows() == [("abc", "a", "one"), ("def", "b", "two")]


def _replay(ops: list[str]) -> str:
    text: list[str] = []
    for op in ops:
        if op == "\b":
            if text:
                text.pop()
        else:
            text.append(op)
    return "".join(text)


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "\b"]), min_size=1, max_size=40))
def test_vectorised_text_equals_a_key_by_key_replay(ops):
    """The clamped-depth formula gives the same text as replaying keys one by one,
    with backspaces on empty text reported as presses."""
    from tracework.builder import BuildSettings

    s = Script()
    s.type("".join(ops))
    df = actions(s, BuildSettings())
    typed = "".join(df.filter(pl.col("action") == "type")["text"].to_list())
    assert typed == _replay(ops)
    leading = 0
    depth = 0
    for op in ops:
        if op == "\b":
            if depth == 0:
                leading += 1
            else:
                depth -= 1
        else:
            depth += 1
    presses = df.filter(pl.col("action") == "press")["presses"].sum()
    assert presses == leading


def test_focus_change_between_motion_and_click_keeps_the_path(settings):
    """The agent may record the focus change a click caused after the motion
    that led to it: the motion is still the click's path, not a move action."""
    s = Script()
    s.focus("a", "one").move_to(200, 200, steps=4).focus("b", "two", dt_ms=5).click(200, 200)
    df = actions(s, settings)
    assert df.select("action", "x", "y", "app").rows() == [("click", 200, 200, "b")]
    assert len(df["path"][0]) >= 4


def test_drag_cut_off_by_the_session_end_ends_where_the_pointer_last_was(settings):
    """A drag whose button-up was never recorded (the session stopped while
    the button was held) ends at the last pointer position of its own
    session: not where a later click's button came up (in the benchmark
    lake, a click of the next session)."""
    from tracework.events import ButtonDown

    s1 = Script(session="a")
    s1.add(ButtonDown, 30, x=100, y=100, button="left").move_to(300, 320)
    s2 = Script(session="b", t0=s1.t + 10**12)
    s2.click(900, 900)
    # (Sessions come in the order of their ids' hash.)
    df = reduce_actions(rows([s1, s2], settings), settings).collect().sort("session")
    assert df.select("session", "action", "x", "y", "end_x", "end_y").rows() == [
        ("a", "drag", 100, 100, 300, 320),
        ("b", "click", 900, 900, None, None),
    ]
    assert df["command"][0] == "pyautogui.moveTo(x=100, y=100); pyautogui.dragTo(x=300, y=320, button='left')"

"""The capture buffer: hotkey parsing, pause gating, coalescing, event building.

These call the Recorder callbacks directly (the X11 path is covered end to
end in test_agent_x11.py)."""

from __future__ import annotations

import pytest

from tracework.agent.capture import EventBuilder, Hotkey, Recorder
from tracework.errors import ConfigError
from tracework.events import MOD_ALT, MOD_CTRL, MOD_SHIFT, ButtonDown, FocusChange, KeyDown, MouseMove, Pause, Scroll


def test_hotkey_parses_pynput_syntax():
    hk = Hotkey.parse("<ctrl>+<alt>+<shift>+p")
    assert hk == Hotkey(MOD_CTRL | MOD_ALT | MOD_SHIFT, "p")


@pytest.mark.parametrize("bad", ["", "p", "<ctrl>", "<ctrl>+a+b", "+"])
def test_bad_hotkey_is_a_config_error(bad):
    with pytest.raises(ConfigError) as info:
        Hotkey.parse(bad)
    assert "pause_hotkey" in str(info.value)


def test_nothing_is_buffered_while_paused():
    rec = Recorder()
    assert rec.paused  # paused until a session starts
    rec.on_move(1, 2)
    rec.on_key(True, 38, "a", "a", 0)
    rec.on_button(1, 2, "left", True)
    rec.on_scroll(1, 2, 0, 1)
    rec.on_focus("app", "title", 5, (0, 0, 10, 10))
    assert rec.drain() == []
    rec.set_paused(False)
    rec.on_move(3, 4)
    assert len(rec.drain()) == 1


def test_hotkey_toggles_pause_and_is_not_recorded():
    toggles = []
    rec = Recorder(hotkey=Hotkey.parse("<ctrl>+<alt>+p"), on_hotkey=toggles.append)
    rec.set_paused(False)
    rec.on_key(True, 33, "p", "p", MOD_CTRL | MOD_ALT)
    rec.on_key(False, 33, "p", "p", MOD_CTRL | MOD_ALT)
    assert toggles == [True]
    assert rec.drain() == []
    rec.on_key(True, 33, "p", "p", 0)  # plain p is typing, not the hotkey
    assert len(rec.drain()) == 1


def test_mouse_coalescing_keeps_at_most_one_move_per_window():
    rec = Recorder(mouse_coalesce_ms=10_000)
    rec.set_paused(False)
    for i in range(100):
        rec.on_move(i, i)
    rec.on_button(5, 5, "left", True)
    kinds = [r[0] for r in rec.drain()]
    assert kinds.count(2) == 1 and len(kinds) == 2


def test_full_rate_by_default():
    rec = Recorder()
    rec.set_paused(False)
    for i in range(1000):
        rec.on_move(i, i)
    assert len(rec.drain()) == 1000


def test_builder_anchors_monotonic_time_to_the_wall_clock():
    rec = Recorder()
    rec.set_paused(False)
    rec.on_key(True, 38, "a", "a", MOD_SHIFT)
    rec.on_move(10, 20)
    rec.on_button(10, 20, "left", True, MOD_CTRL)
    rec.on_scroll(10, 20, 0, -1)
    rec.on_focus("Notes", "x" * 5000, 42, (1, 2, 3, 4))
    rec.set_paused(True, Pause(seq=0, t_ns=0, session="", reason="cli"))
    records = rec.drain()
    builder = EventBuilder("sess", wall_anchor_ns=10**18, mono_anchor_ns=records[0][1] - 5)
    events = builder.build(records)
    assert [type(e) for e in events] == [KeyDown, MouseMove, ButtonDown, Scroll, FocusChange, Pause]
    assert events[0].t_ns == 10**18 + 5
    assert all(e.session == "sess" for e in events)
    assert [e.t_ns for e in events] == sorted(e.t_ns for e in events)
    assert events[0].modifiers == MOD_SHIFT and events[0].char == "a" and events[0].key_code == 38
    assert events[4].title == "x" * 2048  # clipped to the model's limit, not refused
    assert (events[4].win_x, events[4].win_h) == (1, 4)

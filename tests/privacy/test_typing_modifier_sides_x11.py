"""End to end with real X input: the right Shift reaches the lake as the left one.

xdotool holds Shift_R (X keycode 62) while typing capitals, then Shift_L (50)
for one more, through `tracework agent run`, a real collector and the lake.
The stored text and key-press order are what was typed, every release still
pairs with its press, and no Shift_R is stored: which Shift the typist uses
is not in the data. Nothing is mocked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
from agent_helpers import AgentProcess, lake_rows, typed_text, xdo  # noqa: E402

pytestmark = pytest.mark.x11


def test_right_shift_is_stored_as_left_shift_with_text_intact(tmp_path, xvfb, x_window, collector):
    c = collector()
    w = x_window("Modifier sides e2e", "ModSidesE2E", 10, 10)
    a = AgentProcess(tmp_path / "home", xvfb, tmp_path)
    try:
        a.cli("agent", "configure", "--collector", c.url, "--token", c.enroll())
        a.cli("agent", "consent", "--accept")
        a.start()
        xdo(xvfb, "windowfocus", "--sync", str(w["xid"]))
        xdo(xvfb, "type", "--delay", "60", "ok ")
        xdo(xvfb, "keydown", "Shift_R", "key", "--delay", "60", "a", "b", "keyup", "Shift_R")
        xdo(xvfb, "type", "--delay", "60", " x ")
        xdo(xvfb, "keydown", "Shift_L", "key", "c", "keyup", "Shift_L")
        summary = a.stop()
    finally:
        a.cleanup()
    assert summary["pending"] == 0

    rows = lake_rows(c.data_dir)
    keys = [r for r in rows if r["type"] in ("key_down", "key_up")]
    assert typed_text(rows) == "ok AB x C"
    shifts = [(r["type"], (r["key_sym"], r["key_code"])) for r in keys if r["key_sym"] in ("Shift_L", "Shift_R")]
    left, right = ("Shift_L", 50), ("Shift_R", 62)
    # The first Shift pressed was the physical right one: stored as the left one.
    assert shifts[0] == ("key_down", left)
    # xdotool adds a Shift of its own while ours is held; the second copy held
    # gets the right identity, and only then. Pairs stay intact: no identity
    # pressed while down or released while up.
    down: set = set()
    group_starts = []  # a Shift pressed while no Shift was down
    for kind, ident in shifts:
        assert ident in (left, right)
        if kind == "key_down":
            if not down:
                group_starts.append(ident)
            assert ident not in down, "pressed while already down"
            assert ident == left or left in down, "the right Shift only while the left one is down"
            down.add(ident)
        else:
            assert ident in down, "released while up"
            down.discard(ident)
    assert not down
    # Both physical presses (the held Shift_R, the final Shift_L) are stored as
    # the left one, and every group of held Shifts starts with the left one.
    # (xdotool may add its own Shift inside a group, which then comes out as
    # the right one, and the anonymizer redraws releases, so how the presses
    # group is timing-dependent and not pinned.)
    assert shifts.count(("key_down", left)) >= 2
    assert group_starts and set(group_starts) == {left}

"""The poll's fallback for a focus switch the XRecord stream cannot show.

The agent learns of focus switches from FocusIn events in its XRecord stream,
which the server only delivers (and XRecord only records) for windows some
client selected focus events on. The agent selects them on every top-level
window, and on new ones when its 50 ms poll sees them appear. A window that
is created and focused in one burst, before that poll, gets a FocusIn nobody
selected: the stream never shows the switch. The poll then notices that the
input focus differs from what the stream says and puts a marker into the
stream, applied in order; keys typed after it belong to the new window.

Real parts: Xvfb, a real Tk window, a bare X window made here with python-xlib
(created, mapped and focused in one request burst on one connection), xdotool
typing, the real agent and a real collector; assertions on the lake.
"""

from __future__ import annotations

import time

import pytest
from Xlib import X, Xatom
from Xlib.display import Display

from agent_helpers import AgentProcess, attributed_keys, lake_rows, xdo

pytestmark = pytest.mark.x11



def test_a_switch_the_stream_missed_is_recorded_before_the_next_keys(xvfb, x_window, collector, tmp_path):
    c = collector()
    tk_window = x_window("Notes - fallback test", "FallbackNotes", 0, 0)
    agent = AgentProcess(tmp_path / "agent", xvfb, tmp_path, {})
    display = Display(xvfb)
    try:
        agent.setup(c.url, c.enroll())
        agent.start()
        xdo(xvfb, "windowfocus", "--sync", str(tk_window["xid"]), "type", "--args", "1", "ab")
        time.sleep(0.5)

        # Created, mapped and focused in one burst: no FocusIn can reach the stream.
        screen = display.screen()
        bare = screen.root.create_window(700, 100, 300, 200, 0, screen.root_depth, X.InputOutput,
                                         X.CopyFromParent, background_pixel=screen.white_pixel,
                                         event_mask=X.KeyPressMask)
        bare.set_wm_class("barewindow", "BareWindow")
        bare.change_property(Xatom.WM_NAME, Xatom.STRING, 8, b"Bare window - made by the test")
        bare.map()
        display.set_input_focus(bare, X.RevertToParent, X.CurrentTime)
        display.sync()
        assert display.get_input_focus().focus.id == bare.id

        time.sleep(0.5)  # the poll runs every 50 ms: it notices and marks the switch
        xdo(xvfb, "type", "--args", "1", "cd")
        time.sleep(0.5)
        xdo(xvfb, "windowfocus", "--sync", str(tk_window["xid"]), "type", "--args", "1", "ef")
        agent.stop()
    finally:
        display.close()
        agent.cleanup()

    rows = lake_rows(c.data_dir)
    keys = attributed_keys(rows)
    notes = keys[0][1]
    assert notes and notes != "BareWindow"
    assert keys == [("a", notes), ("b", notes), ("c", "BareWindow"), ("d", "BareWindow"), ("e", notes), ("f", notes)]
    bare_focus = [r for r in rows if r["type"] == "focus_change" and r["app"] == "BareWindow"]
    assert len(bare_focus) == 1 and bare_focus[0]["title"] == "Bare window - made by the test"

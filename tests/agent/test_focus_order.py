"""Focus attribution follows the X server's order, not the agent's processing.

The privacy bug this guards: the agent used to attribute a key to the window
focused when it *processed* the key. Under load XRecord delivers keys late; if
the focus moved on meanwhile (a password typed into a prompt, then a switch to
an editor), the last keys were recorded as the editor's text, where the app
policy that denies the prompt never saw them.

Real parts only: Xvfb, two real windows, xdotool, the real agent subprocess,
a real collector; assertions on the lake. The agent's processing is slowed
with its hidden test setting ``TRACEWORK_TEST_X11_LAG_MS`` (a sleep before
each input event is handled), and each round types into A and switches to B
inside one xdotool invocation, so no test-side wait separates the two.
"""

from __future__ import annotations

import pytest

from agent_helpers import AgentProcess, attributed_keys, lake_rows, xdo

pytestmark = pytest.mark.x11

ROUNDS = 4


@pytest.fixture
def agent(tmp_path, xvfb):
    made: list[AgentProcess] = []

    def make(name: str, **env) -> AgentProcess:
        a = AgentProcess(tmp_path / name, xvfb, tmp_path, {k: str(v) for k, v in env.items()})
        made.append(a)
        return a

    try:
        yield make
    finally:
        for a in made:
            a.cleanup()



@pytest.mark.parametrize("lag_ms", [0, 40])
def test_keys_belong_to_the_window_focused_when_they_were_pressed(xvfb, x_window, collector, agent, lag_ms):
    c = collector()
    first = x_window("Prompt A - focus order", "FocusOrderA", 0, 0)
    second = x_window("Editor B - focus order", "FocusOrderB", 640, 0)
    a = agent(f"lag{lag_ms}", TRACEWORK_TEST_X11_LAG_MS=lag_ms)
    a.setup(c.url, c.enroll())
    a.start()
    for _ in range(ROUNDS):
        # One invocation: the switch to B follows the last key for A at once.
        xdo(xvfb, "windowfocus", "--sync", str(first["xid"]), "type", "--args", "1", "abc",
            "windowfocus", "--sync", str(second["xid"]), "type", "--args", "1", "xyz")
    a.stop()

    rows = lake_rows(c.data_dir)
    keys = attributed_keys(rows)
    # Tk capitalises the WM_CLASS class name: "FocusOrderA" becomes "Focusordera".
    assert keys == [
        (ch, "Focusordera" if ch in "abc" else "Focusorderb") for ch in "abcxyz" * ROUNDS]
    # One focus change per switch, alternating, each before the keys typed there.
    focus = [r["app"] for r in rows if r["type"] == "focus_change"]
    assert focus == ["Focusordera", "Focusorderb"] * ROUNDS


def test_mouse_buttons_are_ordered_with_focus_changes(xvfb, x_window, collector, agent):
    """Keys, buttons and focus come from one XRecord stream: a click made
    after a switch follows the switch, a click before it precedes it."""
    c = collector()
    first = x_window("Click A - focus order", "ClickOrderA", 0, 0)
    second = x_window("Click B - focus order", "ClickOrderB", 640, 0)
    a = agent("buttons", TRACEWORK_TEST_X11_LAG_MS=40)
    a.setup(c.url, c.enroll())
    a.start()
    for _ in range(ROUNDS):
        xdo(xvfb, "windowfocus", "--sync", str(first["xid"]), "click", "1",
            "windowfocus", "--sync", str(second["xid"]), "click", "3")
    a.stop()

    current = None
    clicks = []
    for r in lake_rows(c.data_dir):
        if r["type"] == "focus_change":
            current = r["app"]
        elif r["type"] == "button_down":
            clicks.append((r["button"], current))
    assert clicks == [("left", "Clickordera"), ("right", "Clickorderb")] * ROUNDS


def test_input_after_a_resume_follows_a_focus_change_naming_its_window(xvfb, x_window, collector, agent):
    """After a pause nothing was looked at; the first input after the resume
    must still say which window it went to (recorded from the stream's state,
    not asked when the key is processed)."""
    c = collector()
    w = x_window("Resume A - focus order", "ResumeOrderA", 0, 0)
    a = agent("resume", TRACEWORK_TEST_X11_LAG_MS=40)
    a.setup(c.url, c.enroll())
    a.start()
    xdo(xvfb, "windowfocus", "--sync", str(w["xid"]), "type", "ab")
    a.cli("agent", "pause")
    a.cli("agent", "resume")
    xdo(xvfb, "type", "cd")
    a.stop()

    rows = lake_rows(c.data_dir)
    resume = next(i for i, r in enumerate(rows) if r["type"] == "resume")
    first_key = next(i for i, r in enumerate(rows) if i > resume and r["type"] == "key_down")
    between = [r["app"] for r in rows[resume:first_key] if r["type"] == "focus_change"]
    assert between == ["Resumeordera"]
    assert [k for k, _ in attributed_keys(rows)] == list("abcd")
    assert {app for _, app in attributed_keys(rows)} == {"Resumeordera"}

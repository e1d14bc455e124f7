"""End to end with real X input: xdotool drives a real Xvfb display, the real
agent (`tracework agent run`, with its privacy pipeline) uploads to a real
collector on 127.0.0.1, and the builder turns the lake into exactly the
actions the script performed, in order, with the right text and coordinates.

The agent subprocess helpers are the agent tests' own (tests/agent/agent_helpers.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
from agent_helpers import AgentProcess, xdo  # noqa: E402

from tracework.builder import build_datasets  # noqa: E402

pytestmark = pytest.mark.x11


@pytest.fixture
def agent(tmp_path, xvfb):
    made: list[AgentProcess] = []

    def make() -> AgentProcess:
        a = AgentProcess(tmp_path / "home", xvfb, tmp_path)
        made.append(a)
        return a

    try:
        yield make
    finally:
        for a in made:
            a.cleanup()


def test_scripted_session_becomes_exactly_its_actions(xvfb, x_window, collector, agent, tmp_path):
    c = collector()
    notes = x_window("Notes - builder test", "BuilderNotes", 20, 20)
    sketch = x_window("Sketch - builder test", "BuilderSketch", 640, 40)
    a = agent()
    a.cli("agent", "configure", "--collector", c.url, "--token", c.enroll("builder-person"))
    a.cli("agent", "consent", "--accept")
    a.start()

    xdo(xvfb, "windowfocus", "--sync", str(notes["xid"]))
    xdo(xvfb, "type", "--delay", "20", "Hello wrl")
    xdo(xvfb, "key", "--delay", "20", "BackSpace", "BackSpace")
    xdo(xvfb, "type", "--delay", "20", "orld")
    xdo(xvfb, "key", "ctrl+s")
    # No wait before a switch: the agent attributes input to the window
    # focused when it happened (focus events in the same XRecord stream).
    xdo(xvfb, "windowfocus", "--sync", str(sketch["xid"]))
    x0, y0 = sketch["x"] + 100, sketch["y"] + 100
    xdo(xvfb, "mousemove", "--sync", str(x0), str(y0))
    xdo(xvfb, "click", "1")                                            # click
    xdo(xvfb, "mousemove", "--sync", str(x0 + 150), str(y0))
    xdo(xvfb, "click", "--repeat", "2", "--delay", "40", "1")           # double click
    xdo(xvfb, "mousemove", "--sync", str(x0 + 150), str(y0 + 150))
    xdo(xvfb, "click", "--repeat", "3", "--delay", "40", "1")           # triple click
    xdo(xvfb, "mousemove", "--sync", str(x0), str(y0 + 200))
    xdo(xvfb, "mousedown", "1", "mousemove", str(x0 + 60), str(y0 + 220),
        "mousemove", str(x0 + 120), str(y0 + 240), "mouseup", "1")       # drag
    xdo(xvfb, "mousemove", "--sync", str(x0 + 250), str(y0 + 50))
    xdo(xvfb, "click", "3")                                            # right click
    xdo(xvfb, "click", "--repeat", "3", "--delay", "30", "5")           # scroll down 3
    xdo(xvfb, "click", "--repeat", "2", "--delay", "30", "4")           # scroll up 2
    xdo(xvfb, "windowfocus", "--sync", str(notes["xid"]))
    xdo(xvfb, "type", "--delay", "20", "Bye")
    summary = a.stop()
    assert summary["pending"] == 0

    out = tmp_path / "ds"
    build_datasets(c.data_dir, out, kinds=["trajectories", "typing"])
    acts = pl.read_parquet(out / "trajectories" / "*.parquet").sort(["session", "action_index"])
    got = acts.select("action", "x", "y", "end_x", "end_y", "text", "keys", "scroll_amount", "scroll_direction").rows()
    assert got == [
        ("type", None, None, None, None, "Hello world", None, None, None),
        ("hotkey", None, None, None, None, None, ["ctrl", "s"], None, None),
        ("click", x0, y0, None, None, None, None, None, None),
        ("double_click", x0 + 150, y0, None, None, None, None, None, None),
        ("triple_click", x0 + 150, y0 + 150, None, None, None, None, None, None),
        ("drag", x0, y0 + 200, x0 + 120, y0 + 240, None, None, None, None),
        ("right_click", x0 + 250, y0 + 50, None, None, None, None, None, None),
        ("scroll", x0 + 250, y0 + 50, None, None, None, None, 3, "down"),
        ("scroll", x0 + 250, y0 + 50, None, None, None, None, 2, "up"),
        ("type", None, None, None, None, "Bye", None, None, None),
    ]
    # Normalised to the Xvfb screen (1280x800), and in the windows they happened in.
    click = acts.row(2, named=True)
    assert (click["x_norm"], click["y_norm"]) == (x0 / 1280, y0 / 800)
    # (The first click's app is not asserted: the agent records the focus
    # change xdotool caused a few ms after that click, a race in focus polling.)
    apps = acts["app"].to_list()
    assert apps[0] == apps[-1] == "Buildernotes" and apps[3:9] == ["Buildersketch"] * 6
    # The click's path ends where the click happened.
    assert (click["path"][-1]["x"], click["path"][-1]["y"]) == (x0, y0)
    typing = pl.read_parquet(out / "typing" / "*.parquet").sort("start_ns")
    assert typing["text"].to_list()[0] == "Hello world"
    first = typing.row(0, named=True)
    assert first["deletions"] == 2 and first["corrections"] == 1

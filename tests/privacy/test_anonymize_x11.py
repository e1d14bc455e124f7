"""End to end with real X input: xdotool → `tracework agent run` → real collector → lake.

xdotool types with a constant delay and moves the pointer along a straight,
evenly stepped line: a robot's rhythm and path. What lands in the lake must
have the same text, the same key order and the same click position, but not
xdotool's timing and not its path. Nothing is mocked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
from agent_helpers import AgentProcess, MODIFIER_SYMS, lake_rows, typed_text, xdo  # noqa: E402

pytestmark = pytest.mark.x11

TEXT = "the quick brown fox jumps over the lazy dog"


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


def test_lake_holds_anonymized_rhythm_and_path_with_exact_text_and_clicks(xvfb, x_window, collector, agent):
    c = collector()
    w = x_window("Anonymizer e2e", "AnonE2E", 10, 10)
    a = agent()
    a.cli("agent", "configure", "--collector", c.url, "--token", c.enroll())
    a.cli("agent", "consent", "--accept")
    a.start()

    xdo(xvfb, "windowfocus", "--sync", str(w["xid"]))
    xdo(xvfb, "type", "--delay", "120", TEXT)
    # A robot's pointer path: 25 equal steps on a straight line, then a click.
    sx, sy = w["x"] + 40, w["y"] + 60
    tx, ty = w["x"] + 340, w["y"] + 210
    sent = [(round(sx + (tx - sx) * k / 25), round(sy + (ty - sy) * k / 25)) for k in range(26)]
    xdo(xvfb, "mousemove", "--sync", str(sent[0][0]), str(sent[0][1]))
    steps = []
    for x, y in sent[1:]:
        steps += ["mousemove", str(x), str(y), "sleep", "0.01"]
    xdo(xvfb, *steps)
    xdo(xvfb, "click", "1")
    summary = a.stop()
    assert summary["pending"] == 0

    rows = lake_rows(c.data_dir)
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    t = [r["t_ns"] for r in rows]
    assert all(b >= x for x, b in zip(t, t[1:])), "t_ns non-decreasing in seq order across key and mouse events"

    # The session says which transforms its events went through, with parameters.
    start = rows[0]
    transforms = start["transforms"]
    transforms = json.loads(transforms) if isinstance(transforms, str) else transforms
    names = [tr["name"] for tr in transforms]
    assert "typing_population_retime" in names and "cursor_synthetic_path" in names
    assert next(tr for tr in transforms if tr["name"] == "typing_population_retime")["params"]["pause_ms"] > 0

    # Text and key order intact.
    assert typed_text(rows) == TEXT
    downs = [r for r in rows if r["type"] == "key_down" and r["key_sym"] not in MODIFIER_SYMS]
    assert "".join(r["char"] for r in downs) == TEXT
    # Every key-up at or after its key-down.
    pending = {}
    for r in rows:
        if r["type"] == "key_down":
            pending.setdefault(r["key_code"], []).append(r["t_ns"])
        elif r["type"] == "key_up" and pending.get(r["key_code"]):
            assert r["t_ns"] >= pending[r["key_code"]].pop(0)

    # xdotool pressed a key every 120 ms: a flat rhythm. The stored intervals
    # are redrawn from the population, so they are spread out, not flat: the
    # longest is more than 1.5 times the shortest, where xdotool's would all
    # be the same delay.
    iv = np.diff([r["t_ns"] for r in downs])
    assert (iv >= 0).all()
    assert iv.max() > 1.5 * max(iv.min(), 1)
    assert len(set((iv // 1_000_000).tolist())) > len(iv) // 2, "not a constant rhythm"

    # Click exactly where xdotool clicked; the path to it is not xdotool's line.
    click = next(r for r in rows if r["type"] == "button_down")
    assert (click["x"], click["y"]) == (tx, ty)
    moves = [r for r in rows if r["type"] == "mouse_move" and r["seq"] < click["seq"]]
    assert (moves[-1]["x"], moves[-1]["y"]) == (tx, ty), "the segment lands exactly on the click"
    inner = [(m["x"], m["y"]) for m in moves[:-1] if (m["x"], m["y"]) != sent[0]]
    assert inner, "the pointer path was recorded"
    assert any(p not in sent for p in inner), "the stored path is synthetic, not xdotool's straight line"
    # The path was re-sampled at a drawn rate (its move count is not xdotool's): the
    # stage emitted its own moves, which the spool numbered, and none repeats a position.
    cursor_tr = next(tr for tr in transforms if tr["name"] == "cursor_synthetic_path")
    assert cursor_tr["params"]["resample"] == "population"
    pts = [(m["x"], m["y"]) for m in moves]
    assert all(p != q for p, q in zip(pts, pts[1:])), "no stored move repeats the one before"

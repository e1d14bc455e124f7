"""The agent's flusher and the Windows/macOS source, without an X server.

The flusher tests drive ``Agent._flush`` with a real spool and the real
default privacy pipeline, feeding the Recorder the way the listeners do.

The Windows/macOS test MOCKS pynput: those backends (Win32 hooks, Quartz event
taps) cannot run on Linux, so a stand-in ``pynput`` module delivers callbacks
the way pynput's generic listeners do. It checks only our routing and
modifier tracking, not the OS backends themselves.
"""

from __future__ import annotations

import enum
import sys
import time
import types

from tracework import config
from tracework.agent.capture import K_MARK, EventBuilder, Recorder
from tracework.agent.runner import Agent, RunOptions
from tracework.agent.sources import PynputSource
from tracework.agent.spool import Spool
from tracework.governance.purposes import DATA_CLASSES
from tracework.events import MOD_CTRL, MOD_SHIFT, Active, Idle, Pause, decode_event
from tracework.privacy.chain import build_pipeline


def make_agent(tmp_path, **settings):
    s = config.load({"home": str(tmp_path / "home")})
    s.update(settings)
    agent = Agent(s, RunOptions())
    # Governance allows every class here (the consent gate has its own tests).
    agent._allowed = frozenset(DATA_CLASSES)
    agent.recorder = Recorder()
    agent.recorder.set_paused(False)
    agent.pipeline = build_pipeline()
    agent.session = "flush-test"
    agent._last_input = time.monotonic_ns()
    agent._idle = False
    return agent


def stored(spool: Spool) -> list:
    return [decode_event(r[0]) for r in spool.db.execute("SELECT data FROM events ORDER BY seq")]


def test_idle_and_active_are_recorded_from_input_gaps(tmp_path):
    agent = make_agent(tmp_path, **{"agent.idle_seconds": 5})
    s = 1_000_000_000
    t0 = agent._last_input
    # Synthetic monotonic times: input at +1 s, a 7 s gap, input at +8 s, then silence.
    records = [(2, t0 + 1 * s, 10, 10), (2, t0 + 8 * s, 20, 20)]
    out = agent._idle_marks(records, now_mono=t0 + 9 * s)
    kinds = [type(r[2]).__name__ if r[0] == K_MARK else "input" for r in out]
    assert kinds == ["input", "Idle", "Active", "input"]
    assert out[1][1] == t0 + 6 * s and out[1][2].idle_ms == 5000  # idle began 5 s after the last input
    later = agent._idle_marks([], now_mono=t0 + 14 * s)
    assert [type(r[2]) for r in later] == [Idle]
    back = agent._idle_marks([(2, t0 + 20 * s, 1, 1)], now_mono=t0 + 20 * s)
    assert [type(r[2]) for r in back if r[0] == K_MARK] == [Active]


def test_flush_runs_the_pipeline_and_assigns_seq_in_the_spool(tmp_path):
    agent = make_agent(tmp_path)
    spool = Spool(tmp_path / "spool.db")
    builder = EventBuilder(agent.session, time.time_ns(), time.monotonic_ns())
    for i in range(50):
        agent.recorder.on_move(i, i)
    agent.recorder.on_key(True, 38, "a", "a", 0)
    agent.recorder.on_key(False, 38, "a", "a", 0)
    agent.recorder.set_paused(True, Pause(seq=0, t_ns=0, session="", reason="cli"))
    agent.recorder.on_move(999, 999)  # paused: not captured
    agent._flush(spool, builder, final=True)
    events = stored(spool)
    assert [e.seq for e in events] == list(range(len(events)))
    assert isinstance(events[-1], Pause) or any(isinstance(e, Pause) for e in events)
    assert not any(getattr(e, "x", None) == 999 for e in events)
    assert all(e.session == "flush-test" for e in events)


def test_flush_keeps_events_in_memory_on_disk_full_and_writes_them_later(tmp_path):
    agent = make_agent(tmp_path)
    # The default cursor anonymizer re-samples a movement at 60-125 Hz, so 3000 moves
    # recorded within a few ms would come out as one or two: keep every move here, to fill the spool.
    from tracework.privacy.anonymize_stage import CursorStage
    from tracework.privacy.cursor import CursorParams

    agent.pipeline.stages = [CursorStage(CursorParams(resample="off")) if isinstance(st, CursorStage) else st
                             for st in agent.pipeline.stages]
    spool = Spool(tmp_path / "spool.db")
    builder = EventBuilder(agent.session, time.time_ns(), time.monotonic_ns())
    pages = spool.db.execute("PRAGMA page_count").fetchone()[0]
    spool.db.execute(f"PRAGMA max_page_count={pages}")
    for i in range(3000):
        agent.recorder.on_move(i % 1000, i % 700)
    agent._flush(spool, builder, final=True)  # final: the cursor stage releases the moves it holds
    assert "spool_full" in agent.pause_reasons and agent.recorder.paused
    held = len(agent._unwritten)
    assert held > 0 and spool.pending()[0] == 0
    agent.recorder.on_move(1, 1)  # capture is stopped
    spool.db.execute("PRAGMA max_page_count=1000000")
    agent._flush(spool, builder, final=True)
    assert agent._unwritten == []
    assert spool.pending()[0] >= held
    agent._check_spool(spool)
    assert "spool_full" in agent.pause_reasons  # space alone is not enough: it waits for uploads to drain
    while (batch := spool.next_batch(500)) is not None:  # what the uploader does after each 2xx
        spool.ack(batch)
    agent._check_spool(spool)
    assert "spool_full" not in agent.pause_reasons and not agent.recorder.paused


def test_windows_and_macos_source_routes_pynput_callbacks(monkeypatch):
    """MOCK: a stand-in for pynput's Windows/macOS listeners (not testable here)."""

    class KeyCode:
        def __init__(self, vk=None, char=None):
            self.vk, self.char = vk, char

    class Key(enum.Enum):
        shift = KeyCode(vk=160)
        ctrl = KeyCode(vk=162)
        enter = KeyCode(vk=13)

    class Button(enum.Enum):
        left = 1
        right = 2

    listeners = []

    class Listener:
        def __init__(self, **callbacks):
            self.callbacks = callbacks
            listeners.append(self)

        def start(self):
            pass

        def wait(self):
            pass

        def stop(self):
            pass

        def join(self, timeout=None):
            pass

    keyboard = types.SimpleNamespace(Key=Key, KeyCode=KeyCode, Listener=Listener)
    mouse = types.SimpleNamespace(Button=Button, Listener=Listener)
    fake = types.ModuleType("pynput")
    fake.keyboard, fake.mouse = keyboard, mouse
    monkeypatch.setitem(sys.modules, "pynput", fake)

    rec = Recorder()
    rec.set_paused(False)
    source = PynputSource("windows")
    source.start(rec)
    kb, ms = listeners
    kb.callbacks["on_press"](Key.ctrl)
    kb.callbacks["on_press"](KeyCode(vk=0x53, char="s"))
    kb.callbacks["on_release"](KeyCode(vk=0x53, char="s"))
    kb.callbacks["on_release"](Key.ctrl)
    kb.callbacks["on_press"](Key.shift)
    kb.callbacks["on_press"](KeyCode(vk=0x41, char="A"))
    ms.callbacks["on_move"](10.0, 20.0)
    ms.callbacks["on_click"](10, 20, Button.right, True)
    ms.callbacks["on_scroll"](10, 20, 0, -2)
    source.stop()
    events = EventBuilder("w", 0, 0).build(rec.drain())
    names = [type(e).__name__ for e in events]
    assert names == ["KeyDown", "KeyDown", "KeyUp", "KeyUp", "KeyDown", "KeyDown", "MouseMove", "ButtonDown", "Scroll"]
    assert events[1].modifiers == MOD_CTRL and events[1].char == "s" and events[1].key_code == 0x53
    assert events[3].key_sym == "ctrl" and events[3].modifiers == 0
    assert events[5].modifiers == MOD_SHIFT
    assert (events[6].x, events[6].y) == (10, 20) and isinstance(events[6].x, int)
    assert events[7].button == "right" and events[8].dy == -2

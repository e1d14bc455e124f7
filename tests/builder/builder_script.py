"""Helpers for builder tests (imported as ``builder_script``): a small event script and real lakes on disk.

``Script`` writes events the way an agent records them (seq in order, times
in ns, one session); ``write_lake`` appends them through ``tracework.lake``
with pseudonymous person/device columns, as the collector does.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import polars as pl

from tracework.builder import BuildSettings, normalize, sessionize
from tracework.events import (
    ButtonDown,
    ButtonUp,
    FocusChange,
    KeyDown,
    KeyUp,
    MouseMove,
    Scroll,
    SessionEnd,
    SessionStart,
    events_to_table,
)

T0 = 1_763_900_000_000_000_000  # 2025-11-23, a fixed clock for reproducible tests


class Script:
    """Builds one capture session's events in order."""

    def __init__(self, session: str = "s1", screen=(1280, 800), t0: int = T0):
        self.session = session
        self.t = t0
        self.events: list = []
        self.add(SessionStart, 0, platform="linux-x11", screen_w=screen[0], screen_h=screen[1], agent_version="test")

    def add(self, cls, dt_ms: float = 10, **fields):
        self.t += int(dt_ms * 1_000_000)
        self.events.append(cls(seq=len(self.events), t_ns=self.t, session=self.session, **fields))
        return self

    def focus(self, app: str, title: str, dt_ms: float = 10, **kw):
        return self.add(FocusChange, dt_ms, app=app, title=title, **kw)

    def move_to(self, x: int, y: int, steps: int = 5, dt_ms: float = 10):
        last = next((e for e in reversed(self.events) if hasattr(e, "x")), None)
        x0, y0 = (last.x, last.y) if last is not None else (0, 0)
        for i in range(1, steps + 1):
            self.add(MouseMove, dt_ms, x=round(x0 + (x - x0) * i / steps), y=round(y0 + (y - y0) * i / steps))
        return self

    def click(self, x: int, y: int, button: str = "left", dt_ms: float = 30, modifiers: int = 0):
        self.add(ButtonDown, dt_ms, x=x, y=y, button=button, modifiers=modifiers)
        return self.add(ButtonUp, 60, x=x, y=y, button=button, modifiers=modifiers)

    def drag(self, x0: int, y0: int, x1: int, y1: int):
        self.add(ButtonDown, 30, x=x0, y=y0, button="left")
        for i in range(1, 6):
            self.add(MouseMove, 15, x=x0 + (x1 - x0) * i // 5, y=y0 + (y1 - y0) * i // 5)
        return self.add(ButtonUp, 30, x=x1, y=y1, button="left")

    def scroll(self, x: int, y: int, dy: int = 0, dx: int = 0, notches: int = 1, dt_ms: float = 40):
        for i in range(notches):
            # The first notch after dt_ms, the rest at a wheel's pace.
            self.add(Scroll, dt_ms if i == 0 else 40, x=x, y=y, dy=dy, dx=dx)
        return self

    def key(self, key_sym: str, char: str | None = None, modifiers: int = 0, dt_ms: float = 90, **kw):
        self.add(KeyDown, dt_ms, key_sym=key_sym, char=char, modifiers=modifiers, **kw)
        return self.add(KeyUp, 40, key_sym=key_sym, char=char, modifiers=modifiers, **kw)

    def type(self, text: str, dt_ms: float = 90, first_ms: float | None = None):
        """Type ``text`` ("\b" = backspace) a key every ``dt_ms``; the first
        key after ``first_ms`` when given (to open a gap)."""
        for i, ch in enumerate(text):
            if i == 0 and first_ms is not None:
                self.t += int((first_ms - dt_ms) * 1_000_000)
            if ch == "\b":
                self.key("BackSpace", dt_ms=dt_ms)
            else:
                self.key("space" if ch == " " else ch, ch, dt_ms=dt_ms)
        return self

    def redacted(self, kind: str, n: int, key_class: str = "letter"):
        for _ in range(n):
            self.add(KeyDown, 90, key_class=key_class, redacted=kind)
            self.add(KeyUp, 40, key_class=key_class, redacted=kind)
        return self

    def end(self):
        return self.add(SessionEnd, 10, reason="stop")


def lake_table(scripts: list[Script], persons: list[str] | None = None) -> pa.Table:
    """Lake rows (RAW_EVENTS_SCHEMA order) for scripts; person i owns script i."""
    from tracework.lake import RAW_EVENTS_SCHEMA

    tables = []
    for i, s in enumerate(scripts):
        t = events_to_table(s.events)
        n = t.num_rows
        person = (persons or [f"p_person{i:03d}"] * len(scripts))[i]
        t = (
            t.append_column("person", pa.array([person] * n))
            .append_column("device", pa.array([f"d_device{i:03d}"] * n))
            .append_column("batch_id", pa.array([f"batch-{i:08d}"] * n))
            .append_column("received_ns", pa.array([T0] * n, pa.int64()))
            .append_column("day", pc.strftime(pc.cast(t.column("t_ns"), pa.timestamp("ns", tz="UTC")), format="%Y-%m-%d"))
        )
        tables.append(t.select(RAW_EVENTS_SCHEMA.names).cast(RAW_EVENTS_SCHEMA))
    return pa.concat_tables(tables)


def write_lake(data_dir, scripts: list[Script], persons: list[str] | None = None) -> int:
    """Append the scripts' events to the lake at ``data_dir``; returns the version."""
    from tracework.lake import LakeWriter

    return LakeWriter(data_dir, fsync=False).append(lake_table(scripts, persons))


def rows(scripts: list[Script], settings: BuildSettings | None = None) -> pl.LazyFrame:
    """Sessionized rows of the scripts (the builder's input), no lake involved."""
    return sessionize(normalize(pl.from_arrow(lake_table(scripts))), settings or BuildSettings())

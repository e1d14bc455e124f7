"""The capture buffer: the cheap end of the agent that input callbacks call.

Capture sources (``tracework.agent.sources``) call the ``on_*`` methods of a
:class:`Recorder` from their listener threads. Those methods only take a
monotonic timestamp and append a tuple to an in-memory buffer, so the X
callback returns at once; turning tuples into events, the privacy pipeline and
the spool happen in the flusher (:meth:`Recorder.drain` / :func:`to_events`).

While the recorder is paused the callbacks return before touching the buffer:
nothing is captured, not even counts. The only thing still looked at is
whether a key press is the pause hotkey, so the same hotkey can resume.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError
from ..events import (
    MOD_ALT,
    MOD_ALTGR,
    MOD_CAPS,
    MOD_CTRL,
    MOD_META,
    MOD_SHIFT,
    ButtonDown,
    ButtonUp,
    Event,
    FocusChange,
    KeyDown,
    KeyUp,
    MouseMove,
    Scroll,
)

# Kinds of buffered records. Ints, not strings: the tuple is built on every
# mouse move and compared in the flusher.
K_KEY_DOWN, K_KEY_UP, K_MOVE, K_BTN_DOWN, K_BTN_UP, K_SCROLL, K_FOCUS, K_MARK = range(8)

INPUT_KINDS = frozenset({K_KEY_DOWN, K_KEY_UP, K_MOVE, K_BTN_DOWN, K_BTN_UP, K_SCROLL})

_HOTKEY_MODS = {
    "ctrl": MOD_CTRL, "control": MOD_CTRL, "alt": MOD_ALT, "shift": MOD_SHIFT,
    "cmd": MOD_META, "super": MOD_META, "meta": MOD_META, "win": MOD_META, "alt_gr": MOD_ALTGR,
}


@dataclass(frozen=True)
class Hotkey:
    """A parsed hotkey: modifiers that must be held and the key (lower-case key_sym)."""

    modifiers: int
    key: str

    @classmethod
    def parse(cls, text: str) -> "Hotkey":
        """Parse pynput's hotkey syntax, e.g. ``<ctrl>+<alt>+<shift>+p``."""
        mods = 0
        key = None
        for part in [p.strip() for p in text.split("+") if p.strip()]:
            if part.startswith("<") and part.endswith(">") and part[1:-1].lower() in _HOTKEY_MODS:
                mods |= _HOTKEY_MODS[part[1:-1].lower()]
            elif key is None:
                key = part.strip("<>").lower()
            else:
                key = None
                break
        if not key or not mods:
            raise ConfigError(
                f"agent.pause_hotkey {text!r} is not a hotkey",
                hint="use modifiers and one key in pynput syntax, e.g. <ctrl>+<alt>+<shift>+p",
            )
        return cls(mods, key)


class Recorder:
    """The in-memory capture buffer and the callbacks sources call.

    ``on_hotkey`` is called (from the source's thread) when the pause hotkey
    is pressed; the recorder has already switched its paused state then.
    """

    def __init__(self, *, hotkey: Hotkey | None = None, mouse_coalesce_ms: int = 0,
                 on_hotkey: Callable[[bool], None] | None = None):
        self._lock = threading.Lock()
        self._buf: list[tuple] = []
        self.paused = True  # nothing is captured until the agent starts a session
        # Counts switches from paused to capturing, so a source can record the
        # focused window again before the first input after each one.
        self.resumes = 0
        self.hotkey = hotkey
        self.on_hotkey = on_hotkey
        self._coalesce_ns = max(0, int(mouse_coalesce_ms)) * 1_000_000
        self._last_move_ns = 0
        self._swallow_release: int | None = None
        self.last_input_ns = time.monotonic_ns()

    # ---- callbacks (called from listener threads; keep them cheap) --------

    def on_key(self, pressed: bool, key_code: int | None, key_sym: str | None, char: str | None,
               modifiers: int) -> None:
        hk = self.hotkey
        if pressed and hk is not None and key_sym is not None and (modifiers & hk.modifiers) == hk.modifiers \
                and key_sym.lower() == hk.key:
            self._swallow_release = key_code
            self._toggle_from_hotkey()
            return
        if not pressed and key_code is not None and key_code == self._swallow_release:
            self._swallow_release = None
            return
        if self.paused:
            return
        t = time.monotonic_ns()
        with self._lock:
            self._buf.append((K_KEY_DOWN if pressed else K_KEY_UP, t, key_code, key_sym, char, modifiers))

    def on_move(self, x: int, y: int) -> None:
        if self.paused:
            return
        t = time.monotonic_ns()
        if self._coalesce_ns:
            if t - self._last_move_ns < self._coalesce_ns:
                return
            self._last_move_ns = t
        with self._lock:
            self._buf.append((K_MOVE, t, x, y))

    def on_button(self, x: int, y: int, button: str, pressed: bool, modifiers: int = 0) -> None:
        if self.paused:
            return
        t = time.monotonic_ns()
        with self._lock:
            self._buf.append((K_BTN_DOWN if pressed else K_BTN_UP, t, x, y, button, modifiers))

    def on_scroll(self, x: int, y: int, dx: int, dy: int, modifiers: int = 0) -> None:
        if self.paused:
            return
        t = time.monotonic_ns()
        with self._lock:
            self._buf.append((K_SCROLL, t, x, y, dx, dy, modifiers))

    def on_focus(self, app: str | None, title: str | None, window_id: int | None,
                 geometry: tuple[int, int, int, int] | None) -> None:
        if self.paused:
            return
        t = time.monotonic_ns()
        with self._lock:
            self._buf.append((K_FOCUS, t, app, title, window_id, geometry))

    # ---- control (agent side) ----------------------------------------------

    def mark(self, event: Event) -> None:
        """Put an agent-made event (pause, resume, session start/end) in the
        buffer at this point of the input stream, so ordering is exact."""
        with self._lock:
            self._buf.append((K_MARK, time.monotonic_ns(), event))

    def set_paused(self, paused: bool, marker: Event | None = None) -> None:
        """Pause or resume capture; ``marker`` is recorded in order at the switch.

        On pause the marker goes in before the switch (it is the last thing
        recorded); on resume the switch happens after it (it is the first).
        """
        with self._lock:
            if paused:
                if marker is not None:
                    self._buf.append((K_MARK, time.monotonic_ns(), marker))
                self.paused = True
            else:
                if marker is not None:
                    self._buf.append((K_MARK, time.monotonic_ns(), marker))
                if self.paused:
                    self.resumes += 1
                self.paused = False

    def _toggle_from_hotkey(self) -> None:
        paused = not self.paused
        if self.on_hotkey is not None:
            self.on_hotkey(paused)
        else:
            if self.paused and not paused:
                self.resumes += 1
            self.paused = paused

    def drain(self) -> list[tuple]:
        """Take everything buffered so far (flusher thread)."""
        with self._lock:
            buf, self._buf = self._buf, []
        return buf

    def buffered(self) -> int:
        return len(self._buf)


class EventBuilder:
    """Turns buffered tuples into event Structs (flusher thread).

    Times are monotonic ns anchored to the wall clock at session start, so
    the stream cannot jump when the system clock is adjusted mid-session.
    ``seq`` is left at 0 here: the spool assigns it in the transaction that
    stores the event, after the privacy pipeline (which may drop events).
    """

    def __init__(self, session: str, wall_anchor_ns: int, mono_anchor_ns: int):
        self.session = session
        self.offset = wall_anchor_ns - mono_anchor_ns

    def wall(self, mono_ns: int) -> int:
        return mono_ns + self.offset

    def build(self, records: list[tuple]) -> list[Event]:
        s = self.session
        off = self.offset
        out: list[Event] = []
        append = out.append
        for r in records:
            kind = r[0]
            t = r[1] + off
            if kind == K_MOVE:
                append(MouseMove(seq=0, t_ns=t, session=s, x=r[2], y=r[3]))
            elif kind == K_KEY_DOWN:
                append(KeyDown(seq=0, t_ns=t, session=s, key_code=r[2], key_sym=r[3], char=r[4], modifiers=r[5]))
            elif kind == K_KEY_UP:
                append(KeyUp(seq=0, t_ns=t, session=s, key_code=r[2], key_sym=r[3], char=r[4], modifiers=r[5]))
            elif kind == K_BTN_DOWN:
                append(ButtonDown(seq=0, t_ns=t, session=s, x=r[2], y=r[3], button=r[4], modifiers=r[5]))
            elif kind == K_BTN_UP:
                append(ButtonUp(seq=0, t_ns=t, session=s, x=r[2], y=r[3], button=r[4], modifiers=r[5]))
            elif kind == K_SCROLL:
                append(Scroll(seq=0, t_ns=t, session=s, x=r[2], y=r[3], dx=r[4], dy=r[5], modifiers=r[6]))
            elif kind == K_FOCUS:
                geo = r[5] or (None, None, None, None)
                append(FocusChange(seq=0, t_ns=t, session=s, app=_clip(r[2], 256), title=_clip(r[3], 2048),
                                   window_id=r[4], win_x=geo[0], win_y=geo[1], win_w=geo[2], win_h=geo[3]))
            elif kind == K_MARK:
                ev = r[2]
                ev.session = s
                ev.t_ns = t
                append(ev)
        return out


def _clip(text: str | None, limit: int) -> str | None:
    # The model caps titles and app names; a longer one must not make the
    # whole batch invalid at the collector.
    if text is None or len(text) <= limit:
        return text
    return text[:limit]


__all__ = ["Recorder", "EventBuilder", "Hotkey", "MOD_CAPS", "INPUT_KINDS"]

"""Importer for DuckTrack / OpenCUA AgentNet raw recordings.

A recording is a folder (or the events file itself) with:

- ``events.jsonl`` or ``events.jsonl.gz``: one JSON object per line with
  ``time_stamp`` (seconds, a monotonic clock) and ``action``: ``move`` (x, y),
  ``click`` (x, y, button, pressed), ``scroll`` (x, y, dx, dy), ``press`` /
  ``release`` (name: a character or a pynput key name such as ``enter``,
  ``shift``, ``cmd``);
- ``metadata.json`` beside it: ``screen_width``, ``screen_height``, ``system``
  (Darwin, Windows, Linux), ``start_time`` (``YYYY-mm-dd HH:MM:SS``, taken as
  UTC: the recorder does not say its zone) and ``id``;
- optionally ``top_window.jsonl``: window switches, one object per line with
  ``time_stamp`` and the window's ``title`` / ``window_name`` and ``app`` /
  ``app_name`` / ``process_name``.

Every line is validated and converted before anything is written: a bad or
truncated file raises :class:`RecordingError` naming the file and line, and
the lake is unchanged. The converted events go through the on-device privacy
pipeline (``tracework.privacy.chain.build_pipeline``) and are appended to the
lake in a single commit, with keyed pseudonyms for person and device.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..events import (
    MOD_ALT,
    MOD_CTRL,
    MOD_META,
    MOD_SHIFT,
    ButtonDown,
    ButtonUp,
    FocusChange,
    KeyDown,
    KeyUp,
    MouseMove,
    Scroll,
    SessionEnd,
    SessionStart,
)
from . import RecordingError

EVENT_FILES = ("events.jsonl", "events.jsonl.gz")
ACTIONS = ("move", "click", "scroll", "press", "release")
PLATFORMS = {"darwin": "macos", "windows": "windows", "linux": "linux-x11"}

# pynput key names → X11 keysyms (what the Linux agent records).
KEY_SYMS = {
    "enter": "Return",
    "backspace": "BackSpace",
    "tab": "Tab",
    "space": "space",
    "esc": "Escape",
    "escape": "Escape",
    "delete": "Delete",
    "up": "Up",
    "down": "Down",
    "left": "Left",
    "right": "Right",
    "home": "Home",
    "end": "End",
    "page_up": "Prior",
    "page_down": "Next",
    "caps_lock": "Caps_Lock",
    "shift": "Shift_L",
    "shift_l": "Shift_L",
    "shift_r": "Shift_R",
    "ctrl": "Control_L",
    "ctrl_l": "Control_L",
    "ctrl_r": "Control_R",
    "alt": "Alt_L",
    "alt_l": "Alt_L",
    "alt_r": "Alt_R",
    "alt_gr": "ISO_Level3_Shift",
    "cmd": "Super_L",
    "cmd_l": "Super_L",
    "cmd_r": "Super_R",
    "insert": "Insert",
    "menu": "Menu",
}
MODIFIER_BITS = {
    "Shift_L": MOD_SHIFT,
    "Shift_R": MOD_SHIFT,
    "Control_L": MOD_CTRL,
    "Control_R": MOD_CTRL,
    "Alt_L": MOD_ALT,
    "Alt_R": MOD_ALT,
    "Super_L": MOD_META,
    "Super_R": MOD_META,
}
CHAR_OF = {"space": " "}


@dataclass
class Recording:
    """A parsed recording: events in order (not yet through the privacy pipeline)."""

    path: Path
    events: list
    session: str
    person_hint: str
    device_hint: str
    platform: str
    screen_w: int
    screen_h: int


def _events_file(path: Path) -> Path:
    if path.is_dir():
        for name in EVENT_FILES:
            if (path / name).is_file():
                return path / name
        raise RecordingError(f"{path}: no events.jsonl or events.jsonl.gz in this folder", hint="point at a DuckTrack recording folder")
    if not path.is_file():
        raise RecordingError(f"{path}: no such file or folder")
    return path


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every non-empty line; gzip decoded when compressed."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        lines: list[tuple[int, str]] = []
        text_so_far = b""
        try:
            with gzip.open(path, "rb") as fh:
                for raw in fh:
                    text_so_far = raw
                    lines.append((len(lines) + 1, raw.decode("utf-8")))
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            raise RecordingError(
                f"{path}: the compressed file is truncated or damaged after line {len(lines)} ({exc})",
                hint="copy the recording again; nothing was imported",
            ) from None
        except UnicodeDecodeError:
            raise RecordingError(f"{path} line {len(lines) + 1}: not UTF-8 text") from None
        # A gzip stream cut exactly at a line end still decodes; the last line
        # of a cut file usually lacks its newline, which is checked below.
        if lines and not text_so_far.endswith(b"\n") and not lines[-1][1].rstrip().endswith("}"):
            raise RecordingError(f"{path} line {len(lines)}: the last line is cut off", hint="the recording is truncated")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordingError(f"{path}: not UTF-8 text ({exc})") from None
        lines = list(enumerate(text.splitlines(), start=1))
    return [(n, line) for n, line in lines if line.strip()]


def _number(obj: dict, name: str, where: str) -> float:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecordingError(f"{where}: `{name}` must be a finite number, got {value!r}")
    return float(value)


def _metadata(events_path: Path) -> dict:
    meta_path = events_path.parent / "metadata.json"
    if not meta_path.is_file():
        raise RecordingError(f"{meta_path}: missing", hint="DuckTrack writes metadata.json beside the events; it holds the screen size")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{meta_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise RecordingError(f"{meta_path}: expected a JSON object")
    for name in ("screen_width", "screen_height"):
        v = meta.get(name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise RecordingError(f"{meta_path}: `{name}` must be a positive number, got {v!r}")
    return meta


def _start_ns(meta: dict, events_path: Path) -> int:
    raw = meta.get("start_time")
    if raw:
        try:
            return int(datetime.strptime(str(raw), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp() * 1e9)
        except ValueError:
            raise RecordingError(f"{events_path.parent / 'metadata.json'}: start_time {raw!r} is not 'YYYY-mm-dd HH:MM:SS'") from None
    return int(events_path.stat().st_mtime * 1e9)


def _windows(events_path: Path) -> list[tuple[float, str | None, str | None]]:
    path = events_path.parent / "top_window.jsonl"
    if not path.is_file():
        return []
    out = []
    for n, line in _read_lines(path):
        where = f"{path} line {n}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise RecordingError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise RecordingError(f"{where}: expected a JSON object")
        ts = _number(obj, "time_stamp", where)
        title = obj.get("title", obj.get("window_name"))
        app = obj.get("app", obj.get("app_name", obj.get("process_name")))
        out.append((ts, None if title is None else str(title)[:2048], None if app is None else str(app)[:256]))
    return out


def read_recording(path: str | Path) -> Recording:
    """Parse and validate a recording; raises :class:`RecordingError` on bad input."""
    events_path = _events_file(Path(path))
    meta = _metadata(events_path)
    lines = _read_lines(events_path)
    if not lines:
        raise RecordingError(f"{events_path}: no events", hint="the recording is empty; nothing to import")
    digest = hashlib.sha256(events_path.read_bytes()).hexdigest()[:20]
    session = f"ducktrack-{digest}"
    parsed: list[tuple[float, int, dict]] = []
    for n, line in lines:
        where = f"{events_path} line {n}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise RecordingError(f"{where}: not valid JSON ({exc})", hint="the file is damaged or truncated; nothing was imported") from None
        if not isinstance(obj, dict):
            raise RecordingError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        action = obj.get("action")
        if action not in ACTIONS:
            raise RecordingError(f"{where}: unknown action {action!r}", hint="expected one of " + ", ".join(ACTIONS))
        ts = _number(obj, "time_stamp", where)
        if action in ("move", "click", "scroll"):
            _number(obj, "x", where)
            _number(obj, "y", where)
        if action == "click":
            if not isinstance(obj.get("button"), str) or not isinstance(obj.get("pressed"), bool):
                raise RecordingError(f"{where}: a click needs `button` (text) and `pressed` (true/false)")
        if action == "scroll":
            _number(obj, "dx", where)
            _number(obj, "dy", where)
        if action in ("press", "release"):
            name = obj.get("name")
            if not isinstance(name, str) or not name:
                raise RecordingError(f"{where}: a key {action} needs `name`")
        parsed.append((ts, n, obj))
    windows = _windows(events_path)
    t0 = min([p[0] for p in parsed] + [w[0] for w in windows])
    start_ns = _start_ns(meta, events_path)

    def t_ns(ts: float) -> int:
        return start_ns + int(round((ts - t0) * 1e9))

    platform = PLATFORMS.get(str(meta.get("system", "")).lower(), "unknown")
    screen_w, screen_h = int(meta["screen_width"]), int(meta["screen_height"])
    # Merge window switches into the stream by time; a stable sort keeps the
    # recorder's order for equal time stamps.
    stream: list[tuple[float, int, str, object]] = [(p[0], 1, "event", p[2]) for p in parsed]
    stream += [(w[0], 0, "window", w) for w in windows]
    stream.sort(key=lambda s: (s[0], s[1]))
    events: list = [
        SessionStart(seq=0, t_ns=t_ns(t0), session=session, platform=platform, screen_w=screen_w, screen_h=screen_h,
                     agent_version="ducktrack-import")
    ]
    held = 0
    for ts, _, kind, obj in stream:
        common = {"seq": len(events), "t_ns": t_ns(ts), "session": session}
        if kind == "window":
            _, title, app = obj
            events.append(FocusChange(**common, app=app, title=title))
            continue
        action = obj["action"]
        if action == "move":
            events.append(MouseMove(**common, x=round(obj["x"]), y=round(obj["y"])))
        elif action == "click":
            cls = ButtonDown if obj["pressed"] else ButtonUp
            button = obj["button"].removeprefix("Button.")
            events.append(cls(**common, x=round(obj["x"]), y=round(obj["y"]), button=button, modifiers=held))
        elif action == "scroll":
            events.append(Scroll(**common, x=round(obj["x"]), y=round(obj["y"]), dx=int(obj["dx"]), dy=int(obj["dy"]), modifiers=held))
        else:
            name = obj["name"].removeprefix("Key.")
            if len(name) == 1:
                key_sym, char = name, name
            else:
                key_sym, char = KEY_SYMS.get(name.lower(), name), CHAR_OF.get(name.lower())
            bit = MODIFIER_BITS.get(key_sym, 0)
            if action == "press":
                events.append(KeyDown(**common, key_sym=key_sym, char=char, modifiers=held))
                held |= bit
            else:
                held &= ~bit
                events.append(KeyUp(**common, key_sym=key_sym, char=char, modifiers=held))
    events.append(SessionEnd(seq=len(events), t_ns=events[-1].t_ns, session=session, reason="stop"))
    person_hint = f"ducktrack:{meta.get('id', digest)}"
    device_hint = f"ducktrack-device:{meta.get('id', digest)}"
    return Recording(events_path, events, session, person_hint, device_hint, platform, screen_w, screen_h)


def import_recording(
    path: str | Path,
    data_dir: str | Path,
    *,
    person: str | None = None,
    device: str | None = None,
    key: bytes | None = None,
    policy=None,
) -> dict:
    """Import one recording into the lake at ``data_dir``; returns a summary.

    ``key`` is the pseudonym key; by default the governance store's current key.
    """
    from ._write import write_to_lake

    rec = read_recording(path)
    summary = write_to_lake(
        rec.events,
        data_dir,
        person=person or rec.person_hint,
        device=device or rec.device_hint,
        key=key,
        policy=policy,
        source=str(rec.path),
    )
    summary["session"] = rec.session
    summary["platform"] = rec.platform
    summary["screen"] = [rec.screen_w, rec.screen_h]
    return summary


def now_ns() -> int:
    return time.time_ns()

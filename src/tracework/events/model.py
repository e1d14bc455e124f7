"""The one event model. Every other representation (wire batches, spool rows,
lake columns, JSON Schema) is derived from the Structs in this module.

Schema evolution: ``SCHEMA_VERSION`` goes up when fields are added; new fields
must have defaults so that older agents' batches still decode, and a field is
never removed or retyped.
"""

from __future__ import annotations

from typing import Annotated, Union

import msgspec

SCHEMA_VERSION = 1

# Modifier bits carried by key and button events. A bitmask keeps the lake
# column a plain integer instead of a list per row.
MOD_SHIFT = 1
MOD_CTRL = 2
MOD_ALT = 4
MOD_META = 8  # Super / Windows / Command
MOD_CAPS = 16
MOD_ALTGR = 32

MODIFIER_NAMES = {
    MOD_SHIFT: "shift",
    MOD_CTRL: "ctrl",
    MOD_ALT: "alt",
    MOD_META: "meta",
    MOD_CAPS: "caps",
    MOD_ALTGR: "altgr",
}


def modifier_names(mask: int) -> list[str]:
    """Names of the modifiers set in ``mask``, in a stable order."""
    return [name for bit, name in MODIFIER_NAMES.items() if mask & bit]


# msgspec.Meta constraints are attached with Annotated so they show up in the
# JSON Schema and are enforced on decode.
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
EpochNs = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
SessionId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ShortText = Annotated[str, msgspec.Meta(max_length=256)]
Title = Annotated[str, msgspec.Meta(max_length=2048)]
Coord = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]


class Event(msgspec.Struct, kw_only=True, tag_field="type", omit_defaults=True):
    """Fields every event has (see the module docstring for their meaning)."""

    seq: NonNegative
    t_ns: EpochNs
    session: SessionId


class KeyDown(Event, tag="key_down"):
    """A key was pressed.

    key_code: the platform's hardware key code (X11 keycode, Windows virtual key).
    key_sym: the key's symbolic name (``a``, ``Return``, ``BackSpace``, ``shift``).
    char: the character the key produced, when it produced one.
    modifiers: bitmask of ``MOD_*`` held when the key went down.
    key_class: coarse class kept when the key's identity was removed on the
        device (``letter``, ``digit``, ``punct``, ``space``, ``other``).
    redacted: placeholder type of the span this key typed (``EMAIL``,
        ``AWS_KEY``, ``PASSWORD``...); set together with key_class, in which
        case key_code, key_sym and char are absent.
    """

    key_code: int | None = None
    key_sym: ShortText | None = None
    char: ShortText | None = None
    modifiers: NonNegative = 0
    key_class: ShortText | None = None
    redacted: ShortText | None = None


class KeyUp(Event, tag="key_up"):
    """A key was released. Fields as in :class:`KeyDown`."""

    key_code: int | None = None
    key_sym: ShortText | None = None
    char: ShortText | None = None
    modifiers: NonNegative = 0
    key_class: ShortText | None = None
    redacted: ShortText | None = None


class MouseMove(Event, tag="mouse_move"):
    """The pointer moved to absolute screen coordinates (x, y)."""

    x: Coord
    y: Coord


class ButtonDown(Event, tag="button_down"):
    """A mouse button went down at (x, y). button: left, right, middle, x1, x2."""

    x: Coord
    y: Coord
    button: ShortText
    modifiers: NonNegative = 0


class ButtonUp(Event, tag="button_up"):
    """A mouse button went up at (x, y)."""

    x: Coord
    y: Coord
    button: ShortText
    modifiers: NonNegative = 0


class Scroll(Event, tag="scroll"):
    """A scroll at (x, y): dy > 0 scrolls up/away, dx > 0 scrolls right (in notches)."""

    x: Coord
    y: Coord
    dx: int = 0
    dy: int = 0
    modifiers: NonNegative = 0


class FocusChange(Event, tag="focus_change"):
    """The focused window changed.

    app: application or process name (WM_CLASS on X11, process name elsewhere).
    title: window title. url: page address, for browsers and the web SDK.
    denied: the app policy denied this window; app, title and url are then
        absent and no key identity is recorded until focus moves on.
    """

    app: ShortText | None = None
    title: Title | None = None
    window_id: int | None = None
    win_x: Coord | None = None
    win_y: Coord | None = None
    win_w: Coord | None = None
    win_h: Coord | None = None
    url: Title | None = None
    denied: bool = False


class Idle(Event, tag="idle"):
    """No input for ``idle_ms`` milliseconds (the agent's idle threshold)."""

    idle_ms: NonNegative


class Active(Event, tag="active"):
    """Input resumed after an idle period."""


class Pause(Event, tag="pause"):
    """Capture paused. reason: cli, hotkey, spool_full, consent, policy."""

    reason: ShortText


class Resume(Event, tag="resume"):
    """Capture resumed after a pause."""

    reason: ShortText


class Transform(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A privacy transform applied on the device, with its parameters, so
    dataset cards can state exactly what was done to the data."""

    name: ShortText
    params: dict[str, Union[int, float, str, bool]] = {}


class SessionStart(Event, tag="session_start"):
    """A capture session started.

    platform: ``linux-x11``, ``windows``, ``macos``, ``web``.
    transforms: the privacy transforms this session's events went through.
    """

    platform: ShortText
    screen_w: Coord
    screen_h: Coord
    agent_version: ShortText
    schema_version: NonNegative = SCHEMA_VERSION
    transforms: list[Transform] = []


class SessionEnd(Event, tag="session_end"):
    """A capture session ended. reason: stop, signal, consent_withdrawn, error."""

    reason: ShortText


AnyEvent = Union[
    KeyDown,
    KeyUp,
    MouseMove,
    ButtonDown,
    ButtonUp,
    Scroll,
    FocusChange,
    Idle,
    Active,
    Pause,
    Resume,
    SessionStart,
    SessionEnd,
]

EVENT_TYPES: tuple[type[Event], ...] = AnyEvent.__args__  # type: ignore[attr-defined]
EVENT_TAGS: dict[str, type[Event]] = {cls.__struct_config__.tag: cls for cls in EVENT_TYPES}


class BatchHeader(msgspec.Struct, kw_only=True, omit_defaults=True):
    """First line of a wire batch.

    batch_id: idempotency id; a resent batch carries the same id and is stored once.
    event_count: number of event lines that follow (checked by the collector).
    redaction_counts: spans redacted on the device in this batch, by placeholder type.
    """

    batch_id: Annotated[str, msgspec.Meta(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    schema_version: NonNegative
    event_count: NonNegative
    agent_version: ShortText = ""
    redaction_counts: dict[ShortText, NonNegative] = {}

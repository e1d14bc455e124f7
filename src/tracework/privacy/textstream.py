"""Rebuild the text being typed in one window from its key events.

Detectors need words and tokens, not single keys, so the redaction stage
replays each key into a :class:`TypedText`: characters insert at the caret
(replacing a selection), BackSpace/Delete remove, arrows/Home/End move the
caret (with Shift they select), Ctrl+BackSpace/Delete remove a word,
Ctrl+A selects all, Ctrl+X cuts, and Ctrl+V / Shift+Insert paste. The agent
never reads the clipboard, so a paste inserts one :data:`PASTE` cell whose
content is unknown.

Every character position is a :class:`Cell` that remembers which key events
typed it, so a span found in the text maps back to its events. Deleted cells
are kept (with the live cell to their left at deletion time) because the keys
that typed them carried characters too: if the deleted text was part of a
secret, those keys must be scrubbed as well.

Keys whose effect on the text cannot be known (Up/Down, Page Up/Down, undo,
a mouse click moving the caret) return :data:`CONTEXT_BREAK`: the caller
treats the text so far as complete.
"""

from __future__ import annotations

from typing import Callable

from ..events.model import MOD_ALT, MOD_ALTGR, MOD_CTRL, MOD_META, MOD_SHIFT

PASTE = "\ufffc"  # stands for pasted content the agent cannot see
CONTEXT_BREAK = "context-break"

# Key names are matched case-insensitively and cover X11 keysym names
# (BackSpace, Prior) and pynput names (backspace, page_up).
_BACKSPACE = {"backspace"}
_DELETE = {"delete", "kp_delete"}
_LEFT = {"left", "kp_left"}
_RIGHT = {"right", "kp_right"}
_HOME = {"home", "kp_home"}
_END = {"end", "kp_end"}
_ENTER = {"return", "enter", "kp_enter", "linefeed"}  # xdotool types "\n" as Linefeed
_TAB = {"tab"}
_SPACE = {"space"}
_INSERT = {"insert", "kp_insert"}
_BREAKING = {"up", "down", "prior", "next", "page_up", "page_down", "kp_up", "kp_down", "kp_prior", "kp_next"}

_WORD_CHARS_BREAK = " \t\n"

# Modifier keys (X11 and pynput names). They type nothing, but a Shift
# pressed for a secret's capital says something about the secret.
MODIFIER_KEYS = frozenset({
    "shift", "shift_l", "shift_r", "control", "control_l", "control_r", "ctrl", "ctrl_l", "ctrl_r",
    "alt", "alt_l", "alt_r", "alt_gr", "meta", "meta_l", "meta_r", "super", "super_l", "super_r",
    "cmd", "cmd_l", "cmd_r", "hyper_l", "hyper_r", "iso_level3_shift", "iso_level5_shift", "mode_switch",
    "caps_lock", "shift_lock", "num_lock",
})


def is_modifier(key_sym: str | None) -> bool:
    """True for Shift, Ctrl, Alt, AltGr, Super/Meta/Cmd and lock keys."""
    return key_name(key_sym) in MODIFIER_KEYS


class Cell:
    """One character of the typed text and the key events that typed it."""

    __slots__ = ("ch", "keys", "label", "span_key", "sticky", "released", "anchor", "deleted")

    def __init__(self, ch: str):
        self.ch = ch
        self.keys: list = []  # opaque references the caller attaches (held events)
        self.label: str | None = None  # placeholder type when part of a detected span
        self.span_key: tuple | None = None  # identifies the span, for counting
        self.sticky = False  # label set before deletion: kept even if no longer found
        self.released = False  # its events have gone on
        self.anchor: Cell | None = None  # for deleted cells: live left neighbour at deletion
        self.deleted = False

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Cell({self.ch!r}, label={self.label}, released={self.released})"


def key_name(key_sym: str | None) -> str:
    """Normalised key name: lower-case, ``Key.`` prefix of pynput removed."""
    if not key_sym:
        return ""
    name = key_sym.lower()
    return name[4:] if name.startswith("key.") else name


def typed_char(key_sym: str | None, char: str | None, modifiers: int) -> str | None:
    """The text a key press inserts, or None when it inserts none."""
    if modifiers & (MOD_CTRL | MOD_ALT | MOD_META) and not modifiers & MOD_ALTGR:
        return None  # a shortcut, not text
    name = key_name(key_sym)
    if name in _ENTER:
        return "\n"
    if name in _TAB:
        return "\t"
    if name in _SPACE:
        return " "
    if char:
        if len(char) == 1 and (char.isprintable() or char in "\n\t"):
            return char
        if char.isprintable():
            return char  # dead-key compositions can produce two characters
        return None
    if key_sym and len(key_sym) == 1 and key_sym.isprintable():
        return key_sym
    return None


class TypedText:
    """The text of one window as its keys build it. Pure: no clock, no I/O.

    ``before_delete(start, end)`` is called with live-cell indices just
    before cells are removed, so the caller can scan the text while the
    deleted characters are still in it.
    """

    def __init__(self, before_delete: Callable[[int, int], None] | None = None):
        self.cells: list[Cell] = []
        self.cursor = 0
        self.anchor: int | None = None  # selection anchor (the other end is the cursor)
        self.graveyard: list[Cell] = []  # deleted cells not yet released
        self.before_delete = before_delete

    # -- reading -----------------------------------------------------------
    def text(self) -> str:
        """The current text (a paste is one :data:`PASTE` character)."""
        return "".join(c.ch for c in self.cells)

    def selection(self) -> tuple[int, int] | None:
        """(start, end) of the selection, or None."""
        if self.anchor is None or self.anchor == self.cursor:
            return None
        return (min(self.anchor, self.cursor), max(self.anchor, self.cursor))

    # -- editing -----------------------------------------------------------
    def key_down(self, key_sym: str | None, char: str | None, modifiers: int) -> Cell | str | None:
        """Apply one key press. Returns the new :class:`Cell` when the key typed
        a character (or pasted), :data:`CONTEXT_BREAK` when the text can no
        longer be followed, else None (navigation, modifiers, deletions)."""
        name = key_name(key_sym)
        ctrl = bool(modifiers & MOD_CTRL) and not modifiers & MOD_ALTGR
        shift = bool(modifiers & MOD_SHIFT)
        if (ctrl and name == "v") or (shift and name in _INSERT):
            return self._insert(PASTE)
        if name in _BREAKING:
            return CONTEXT_BREAK
        if ctrl:
            if name in ("z", "y"):
                return CONTEXT_BREAK  # undo/redo: the result is not known
            if name == "a":
                self.anchor, self.cursor = 0, len(self.cells)
                return None
            if name == "x":
                self._delete_selection()
                return None
            if name in _BACKSPACE:
                if not self._delete_selection():
                    self._delete(self._word_left(self.cursor), self.cursor)
                return None
            if name in _DELETE:
                if not self._delete_selection():
                    self._delete(self.cursor, self._word_right(self.cursor))
                return None
            if name in _LEFT or name in _RIGHT:
                target = self._word_left(self.cursor) if name in _LEFT else self._word_right(self.cursor)
                self._move(target, shift)
                return None
            if name in _HOME or name in _END:
                self._move(0 if name in _HOME else len(self.cells), shift)
                return None
        if name in _BACKSPACE:
            if not self._delete_selection() and self.cursor > 0:
                self._delete(self.cursor - 1, self.cursor)
            return None
        if name in _DELETE:
            if not self._delete_selection() and self.cursor < len(self.cells):
                self._delete(self.cursor, self.cursor + 1)
            return None
        if name in _LEFT:
            sel = self.selection()
            self._move(sel[0] if sel and not shift else max(0, self.cursor - 1), shift)
            return None
        if name in _RIGHT:
            sel = self.selection()
            self._move(sel[1] if sel and not shift else min(len(self.cells), self.cursor + 1), shift)
            return None
        if name in _HOME:
            self._move(self._line_start(self.cursor), shift)
            return None
        if name in _END:
            self._move(self._line_end(self.cursor), shift)
            return None
        ch = typed_char(key_sym, char, modifiers)
        if ch is None:
            return None
        return self._insert(ch)

    # -- internals ---------------------------------------------------------
    def _insert(self, ch: str) -> Cell:
        self._delete_selection()
        cell = Cell(ch)
        self.cells.insert(self.cursor, cell)
        self.cursor += 1
        return cell

    def _move(self, target: int, extend: bool) -> None:
        if extend:
            if self.anchor is None:
                self.anchor = self.cursor
        else:
            self.anchor = None
        self.cursor = target

    def _delete_selection(self) -> bool:
        sel = self.selection()
        self.anchor = None
        if sel is None:
            return False
        self._delete(*sel)
        return True

    def _delete(self, start: int, end: int) -> None:
        if end <= start:
            return
        if self.before_delete is not None:
            self.before_delete(start, end)
        left = self.cells[start - 1] if start > 0 else None
        for cell in self.cells[start:end]:
            cell.deleted = True
            cell.anchor = left
            if not cell.released:
                self.graveyard.append(cell)
        del self.cells[start:end]
        self.cursor = start
        self.anchor = None

    def _word_left(self, pos: int) -> int:
        i = pos
        while i > 0 and self.cells[i - 1].ch in _WORD_CHARS_BREAK:
            i -= 1
        while i > 0 and self.cells[i - 1].ch not in _WORD_CHARS_BREAK:
            i -= 1
        return i

    def _word_right(self, pos: int) -> int:
        i, n = pos, len(self.cells)
        while i < n and self.cells[i].ch in _WORD_CHARS_BREAK:
            i += 1
        while i < n and self.cells[i].ch not in _WORD_CHARS_BREAK:
            i += 1
        return i

    def _line_start(self, pos: int) -> int:
        i = pos
        while i > 0 and self.cells[i - 1].ch != "\n":
            i -= 1
        return i

    def _line_end(self, pos: int) -> int:
        i, n = pos, len(self.cells)
        while i < n and self.cells[i].ch != "\n":
            i += 1
        return i


def replay(keys: list[tuple[str | None, str | None, int]]) -> str:
    """Text produced by a list of (key_sym, char, modifiers) presses (tests, tools)."""
    buf = TypedText()
    for key_sym, char, modifiers in keys:
        buf.key_down(key_sym, char, modifiers)
    return buf.text()


def key_events_for_text(text: str, *, session: str = "s", t0_ns: int = 0, step_ns: int = 80_000_000, seq0: int = 0):
    """KeyDown/KeyUp pairs that type ``text`` the way the X11 source records
    them (``\\b`` types BackSpace, ``\\n`` Return). For tests and benchmarks
    that need realistic key streams without a keyboard."""
    from ..events.model import KeyDown, KeyUp

    events = []
    seq, t = seq0, t0_ns
    for ch in text:
        if ch == "\b":
            sym, out, code = "BackSpace", None, 22
        elif ch == "\n":
            sym, out, code = "Return", "\r", 36
        elif ch == " ":
            sym, out, code = "space", " ", 65
        elif ch == "\t":
            sym, out, code = "Tab", "\t", 23
        else:
            sym, out, code = ch, ch, 10 + (ord(ch) % 80)
        mods = MOD_SHIFT if ch.isupper() or ch in '~!@#$%^&*()_+{}|:"<>?' else 0
        events.append(KeyDown(seq=seq, t_ns=t, session=session, key_code=code, key_sym=sym, char=out, modifiers=mods))
        events.append(KeyUp(seq=seq + 1, t_ns=t + step_ns // 2, session=session, key_code=code, key_sym=sym, char=out, modifiers=mods))
        seq += 2
        t += step_ns
    return events

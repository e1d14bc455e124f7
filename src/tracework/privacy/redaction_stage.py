"""Pipeline stage 2: removes typed secrets and personal identifiers from key events.

Keys of the focused window are replayed into a :class:`~.textstream.TypedText`;
the redactor scans that text, and every key event (down and up) that typed a
detected span loses ``key_code``, ``key_sym`` and ``char``, keeps its timing
and modifiers, and gets ``key_class`` (letter, digit, punct, space, other)
and ``redacted`` = the span's placeholder type.

Holding back. A token still being typed cannot be judged yet, so the stage
holds the keys of the *hold zone* (see :meth:`RedactionStage._hold_from`):
the token at the caret, plus the digits, spaces and capitals before it (a
phone, card or IBAN typed in groups), plus everything after an unfinished
``-----BEGIN ... PRIVATE KEY-----`` line. Events after a held key wait too,
so output order never changes. Held keys are released when the token is
complete (a space or newline ends it and the zone moves on), when focus
moves, on a context break (Up/Down, undo, a click), on idle/pause/session
events, when ``hold_timeout_ms`` passes with no key (the held text is still
scanned first), on flush, or when more than ``MAX_HELD`` keys are held.

Deletions. Just before characters are deleted the text is scanned with them
still in it, so a secret typed and then erased is labelled all the same;
deleted characters also inherit the label of a span their left neighbour
(at deletion time) belongs to, so the keys of a corrected secret prefix are
scrubbed with the secret.

Keys already marked by the app policy (``redacted`` set) pass untouched.
"""

from __future__ import annotations

import math
from collections import deque
from operator import attrgetter
from typing import Sequence

import msgspec

from ..events import Event, Transform
from ..events.model import (
    ButtonDown,
    FocusChange,
    Idle,
    KeyDown,
    KeyUp,
    Pause,
    Resume,
    SessionEnd,
    SessionStart,
)
from .policy import Policy, default_policy
from .redact import PRIVATE_KEY, SECRET, Redactor, secrets
from .redact.checks import char_classes, shannon_entropy
from .textstream import CONTEXT_BREAK, PASTE, Cell, TypedText, is_modifier

MAX_HELD = 8192  # held characters before the zone is forced out (after a scan)
KEEP_RELEASED = 1024  # released characters kept before the held ones, as context (more inside an open key block)
SCAN_CONTEXT = 512  # released characters before the hold zone that scans still see
_GROUPED_CHARS = frozenset("0123456789 +-()./ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_GROUPED_MAX = 48  # longest grouped number (IBAN with spaces is 42)
_BREAKERS = (Idle, Pause, Resume, SessionEnd, SessionStart)
_CH = attrgetter("ch")  # "".join(map(_CH, cells)): the text of cells at C speed


def key_class(ch: str | None) -> str:
    """Coarse class kept on a redacted key: letter, digit, punct, space, other."""
    if not ch or ch == PASTE:
        return "other"
    if ch.isalpha():
        return "letter"
    if ch.isdigit():
        return "digit"
    if ch.isspace():
        return "space"
    if ch.isprintable():
        return "punct"
    return "other"


class _Held:
    __slots__ = ("event", "cell", "modifier")

    def __init__(self, event: Event, cell: Cell | None = None):
        self.event = event
        self.cell = cell
        self.modifier = False


# Stands for "the next typed character" while a modifier press waits to
# learn which character it was pressed for.
_NEXT = Cell("")


class RedactionStage:
    """Detects secrets in reconstructed typed text and scrubs the keys that typed them."""

    def __init__(self, policy: Policy | None = None, redactor: Redactor | None = None):
        self.policy = policy or default_policy()
        self.redactor = redactor or self.policy.redactor()
        self.hold_ns = self.policy.hold_timeout_ms * 1_000_000
        self._queue: deque[_Held] = deque()
        self._buf = self._new_buffer()
        self._down: dict[object, Cell] = {}  # key identity -> cell its press typed
        self._last_key_ns = 0
        self._counts: dict[str, int] = {}
        self._dirty = False
        self._pending_mods: list[_Held] = []
        self._counted: set = set()
        self._counted_order: deque = deque()

    # -- Stage interface ---------------------------------------------------
    def process(self, events: Sequence[Event], now_ns: int) -> list[Event]:
        """Replay new events, scan, and return the events that are decided."""
        for ev in events:
            self._take(ev)
        if self._dirty:
            self._scan_and_release(final=False)
        if now_ns - self._last_key_ns >= self.hold_ns:
            self._settle_modifiers(None)  # a lone Shift with nothing typed after it
            if self._unreleased():
                self._label_suspect_token()
                self._scan_and_release(final=True)
        return self._emit()

    def flush(self, now_ns: int) -> list[Event]:
        """Scan and release everything held."""
        self._settle_modifiers(None)
        self._scan_and_release(final=True)
        return self._emit()

    def describe(self) -> Transform:
        """Name and parameters for the session's ``transforms``."""
        r = self.redactor
        return Transform(
            name="text_redaction",
            params={
                "hold_timeout_ms": self.policy.hold_timeout_ms,
                "disabled": ",".join(sorted(r.disabled)),
                "custom_rules": len(r.custom_rules),
                "allow_entries": len(r.allow_values) + len(r.allow_patterns),
                "key_fields_removed": "key_code,key_sym,char",
            },
        )

    def counts(self) -> dict[str, int]:
        """Redacted spans by placeholder type (since the stage started)."""
        return dict(self._counts)

    # -- replay ------------------------------------------------------------
    def _new_buffer(self) -> TypedText:
        buf = TypedText()
        buf.before_delete = lambda start, end, b=buf: self._before_delete(b, start, end)
        return buf

    def _take(self, ev: Event) -> None:
        held = _Held(ev)
        self._queue.append(held)
        if isinstance(ev, KeyDown):
            self._last_key_ns = ev.t_ns
            if ev.redacted is not None:
                return
            if is_modifier(ev.key_sym):
                # Held until the next key: it shares that key's fate.
                held.cell, held.modifier = _NEXT, True
                self._pending_mods.append(held)
                self._down[_key_id(ev)] = _NEXT
                return
            result = self._buf.key_down(ev.key_sym, ev.char, ev.modifiers)
            self._settle_modifiers(result if isinstance(result, Cell) else None)
            if result == CONTEXT_BREAK:
                self._scan_and_release(final=True)
                self._reset_buffer()
            elif isinstance(result, Cell):
                result.keys.append(held)
                held.cell = result
                self._down[_key_id(ev)] = result
                self._dirty = True
                # len(cells) bounds the held count: the O(n) search for the
                # first unreleased cell runs only when it could exceed MAX_HELD.
                cells = self._buf.cells
                if len(cells) > MAX_HELD and len(cells) - self._first_unreleased() > MAX_HELD:
                    self._scan_and_release(final=True)
            else:
                self._dirty = True  # deletions and caret moves change the hold zone
        elif isinstance(ev, KeyUp):
            self._last_key_ns = ev.t_ns
            if ev.redacted is not None:
                return
            cell = self._down.pop(_key_id(ev), None)
            if cell is _NEXT:
                held.cell, held.modifier = _NEXT, True
                self._pending_mods.append(held)
            elif cell is not None:
                cell.keys.append(held)
                held.cell = cell
                held.modifier = is_modifier(ev.key_sym)
        elif isinstance(ev, FocusChange) or isinstance(ev, ButtonDown) or isinstance(ev, _BREAKERS):
            self._settle_modifiers(None)
            # The text being typed is complete: focus moved, the caret moved
            # to an unknown place, or capture stops.
            self._scan_and_release(final=True)
            self._reset_buffer()

    def _settle_modifiers(self, cell: Cell | None) -> None:
        """Give waiting modifier presses the fate of ``cell`` (None: pass as they are)."""
        for held in self._pending_mods:
            held.cell = cell
            if cell is not None:
                cell.keys.append(held)
        self._pending_mods.clear()
        for k, v in list(self._down.items()):
            if v is _NEXT:
                if cell is None:
                    del self._down[k]
                else:
                    self._down[k] = cell

    def _reset_buffer(self) -> None:
        self._buf = self._new_buffer()

    # -- detection ---------------------------------------------------------
    def _first_unreleased(self) -> int:
        cells = self._buf.cells
        # Released cells form a prefix except after caret moves; scan from the end of that prefix.
        for i, c in enumerate(cells):
            if not c.released:
                return i
        return len(cells)

    def _unreleased(self) -> bool:
        return any(not c.released for c in self._buf.cells) or bool(self._buf.graveyard)

    def _before_delete(self, buf: TypedText, start: int, end: int) -> None:
        if any(not c.released for c in buf.cells[start:end]):
            self._label(buf, sticky=True)

    def _label(self, buf: TypedText, *, sticky: bool) -> None:
        """Scan the text around the unreleased cells and label what is found."""
        cells = buf.cells
        first = self._first_unreleased()
        lo = max(0, first - SCAN_CONTEXT)
        block = _open_block(cells)
        if block is not None:
            lo = min(lo, block)  # the BEGIN line must be in view for the block to be found
        if not sticky:
            for c in cells[first:]:
                if not c.released and not c.sticky:
                    c.label = c.span_key = None
        text = "".join(map(_CH, cells[lo:]))
        spans = [sp for sp in self.redactor.find(text) if lo + sp.end > first]
        core: set[int] = set()  # cells inside a detected span (not widened)
        for span in spans:
            key = (span.placeholder, id(cells[lo + span.start]))
            for i in range(lo + span.start, lo + span.end):
                core.add(i)
                self._apply(cells[i], span.placeholder, key, sticky)
        # A secret's token is redacted whole: a detector that stops inside a
        # token (a match running over two numbers typed side by side, a
        # checksum failing on a retyped digit) must not leave the token's other
        # characters as text. Widened cells never take over another span's
        # cells, and widening is bounded so scans stay linear.
        for span in spans:
            start, end = lo + span.start, lo + span.end
            grouped = span.placeholder in _GROUPED_NUMBERS
            while start > lo and end - start < secrets.MAX_TOKEN_SCAN and (
                not _token_edge(cells[start - 1].ch) or (grouped and _digit_group_gap(cells, start - 1, lo))
            ):
                start -= 1
            while end < len(cells) and end - start < secrets.MAX_TOKEN_SCAN and (
                not _token_edge(cells[end].ch) or (grouped and _digit_group_gap(cells, end, lo))
            ):
                end += 1
            key = (span.placeholder, id(cells[lo + span.start]))
            for i in range(start, end):
                if i not in core:
                    self._apply(cells[i], span.placeholder, key, sticky)
        # Deleted cells whose left neighbour (at deletion) is in a labelled
        # span or right before one take that span's label.
        index = {id(c): i for i, c in enumerate(cells)} if buf.graveyard else {}
        for dead in buf.graveyard:
            # (A label from the scan before its deletion stays unless the
            # span it now sits next to says better.)
            anchor = _live_anchor(dead)
            i = index.get(id(anchor), -1) if anchor is not None else -1
            for j in (i, i + 1):
                if 0 <= j < len(cells) and cells[j].label:
                    dead.label, dead.span_key = cells[j].label, cells[j].span_key
                    break

    @staticmethod
    def _apply(cell: Cell, placeholder: str, key: object, sticky: bool) -> None:
        if cell.released:
            return
        # A later, fuller view of the text decides the type (a card's first
        # groups may have looked like a phone number before a BackSpace); a
        # sticky label only survives where nothing is found now.
        cell.label, cell.span_key = placeholder, key
        cell.sticky = cell.sticky or sticky

    def _label_suspect_token(self) -> None:
        """On timeout the token at the caret may be a secret cut short (the
        typist paused mid-key). A complete one is found by the scan; a prefix
        is not, so a token that looks like the start of one is labelled
        SECRET: it starts with a provider prefix, or mixes three character
        classes with high entropy, or is a long digit run."""
        buf = self._buf
        cells = buf.cells
        end = buf.cursor
        start = end
        while start > 0 and not cells[start - 1].ch.isspace() and end - start < secrets.MAX_TOKEN_SCAN:
            start -= 1
        token_cells = [c for c in cells[start:end] if not c.released and not c.label]
        token = "".join(c.ch for c in cells[start:end])
        if len(token_cells) < 6 or not _looks_secret(token):
            return
        key = (SECRET, id(cells[start]))
        for c in token_cells:
            c.label, c.span_key, c.sticky = SECRET, key, True

    def _scan_and_release(self, *, final: bool) -> None:
        self._dirty = False
        buf = self._buf
        if not self._unreleased():
            return
        self._label(buf, sticky=False)
        cells = buf.cells
        hold_from = len(cells) if final else self._hold_from(buf)
        newly: list[Cell] = []
        for c in cells[:hold_from]:
            if not c.released:
                c.released = True
                newly.append(c)
        index = {id(c): i for i, c in enumerate(cells)} if buf.graveyard else {}
        keep: list[Cell] = []
        for dead in buf.graveyard:
            anchor = _live_anchor(dead)
            i = index.get(id(anchor), -1) if anchor is not None else -1
            if final or i + 1 < hold_from:
                dead.released = True
                newly.append(dead)
            else:
                keep.append(dead)
        buf.graveyard = keep
        # A span is counted once, when its first cells are released (a span
        # can be released over several passes).
        for key in {c.span_key for c in newly if c.label and c.span_key}:
            if key not in self._counted:
                self._counted.add(key)
                self._counted_order.append(key)
                self._counts[key[0]] = self._counts.get(key[0], 0) + 1
        while len(self._counted_order) > 4096:
            self._counted.discard(self._counted_order.popleft())
        # Keep only recent released text (and an open key block) as context,
        # so every pass costs O(held + KEEP_RELEASED), not O(all typed text).
        first = self._first_unreleased()
        keep_from = max(0, first - KEEP_RELEASED)
        block = _open_block(cells)
        if block is not None:
            keep_from = min(keep_from, block)
        if keep_from > 0:
            del cells[:keep_from]
            buf.cursor = max(0, buf.cursor - keep_from)
            if buf.anchor is not None:
                buf.anchor = max(0, buf.anchor - keep_from)

    def _hold_from(self, buf: TypedText) -> int:
        """Index of the first cell still held: the token at the caret, the
        grouped number before it, and an open private-key block."""
        cells = buf.cells
        pos = buf.cursor
        i = pos
        limit = max(0, pos - secrets.MAX_TOKEN_SCAN)
        while i > limit and not cells[i - 1].ch.isspace():
            i -= 1
        # A grouped number ("4111 1111 1111 1", "+1 415 555 01") continues
        # across spaces: hold its earlier groups too.
        j, floor = i, max(0, i - _GROUPED_MAX)
        while j > floor and cells[j - 1].ch in _GROUPED_CHARS:
            j -= 1
        if j < i and any(c.ch.isdigit() for c in cells[j:i]):
            i = j
        # Keys typed to the right of the caret (after moving left) are held too.
        hold = min(i, pos)
        # Inside an unfinished BEGIN ... block every line is held: a private
        # key's lines are only recognisable as a whole.
        block = _open_block(cells)
        if block is not None:
            hold = min(hold, max(block, self._first_unreleased()))
        return hold

    # -- output ------------------------------------------------------------
    def _emit(self) -> list[Event]:
        out: list[Event] = []
        q = self._queue
        while q:
            held = q[0]
            cell = held.cell
            if cell is not None and not cell.released:
                break
            q.popleft()
            ev = held.event
            if cell is not None and cell.label:
                # Modifiers go too: a Shift bit tells a capital from a small letter.
                ev = msgspec.structs.replace(
                    ev, key_code=None, key_sym=None, char=None, modifiers=0,
                    key_class="other" if held.modifier else key_class(cell.ch), redacted=cell.label,
                )
            out.append(ev)
        return out


# Literal prefixes that start provider tokens (context keywords excluded).
_PREFIXES = tuple(
    sorted(
        h
        for provider, hints in secrets.RULE_HINTS.items()
        if provider not in secrets.LOWER_HINT_RULES
        for h in hints
        if len(h) >= 3 and h[0].isalnum() and "/" not in h
    )
)


# Numbers typed in groups ("4086 1093 6254 1706"): a digit group right next to
# one of these spans is redacted with it, so that two numbers typed side by side
# (a phone, then a card) cannot leave the second one's tail readable when the
# detector's match took groups of both.
_GROUPED_NUMBERS = frozenset({"CARD", "PHONE", "IBAN", "SSN", "NATIONAL_ID"})


def _digit_group_gap(cells: list, i: int, lo: int) -> bool:
    """Cell i is a single space or dash between two digits."""
    return (
        cells[i].ch in " -"
        and lo < i < len(cells) - 1
        and cells[i - 1].ch.isdigit()
        and cells[i + 1].ch.isdigit()
    )


def _token_edge(ch: str) -> bool:
    """Where span widening stops: at any character that is not a letter, digit,
    ``_``, ``-`` or ``+``. So ``NAME=`` before a value, ``https://`` and ``@host``
    around a credential and punctuation around a card stay readable, while the
    rest of a digit run or token body a detector stopped inside is redacted."""
    return not (ch.isalnum() or ch in "+_-")


def _looks_secret(token: str) -> bool:
    core = token.split("=", 1)[-1].strip("\"'`:")
    if len(core) < 6:
        return False
    if core.startswith(_PREFIXES) or token.startswith(_PREFIXES):
        return True
    if sum(ch.isdigit() for ch in core) >= 6:
        return True
    # Short values cannot reach 3 bits/char; ask for near-maximal entropy instead.
    return char_classes(core) >= 3 and any(ch.isdigit() for ch in core) and shannon_entropy(core) >= min(3.0, math.log2(len(core)) - 0.3)


def _open_block(cells: list[Cell]) -> int | None:
    """Index of the last ``-----BEGIN`` with no ``-----END`` after it, when
    it is less than MAX_PEM characters back; else None."""
    n = len(cells)
    lo = max(0, n - secrets.MAX_PEM)
    text = "".join(map(_CH, cells[lo:]))
    begin = text.rfind("-----BEGIN")
    if begin == -1 or text.find("-----END", begin) != -1:
        return None
    return lo + begin


def _live_anchor(cell: Cell) -> Cell | None:
    anchor = cell.anchor
    hops = 0
    while anchor is not None and anchor.deleted and hops < 100000:
        anchor = anchor.anchor
        hops += 1
    return anchor


def _key_id(ev: KeyDown | KeyUp) -> object:
    return ev.key_code if ev.key_code is not None else (ev.key_sym or ev.char)


def make_stage(policy: Policy | None = None) -> RedactionStage:
    """Factory used by ``tracework.privacy.chain``."""
    return RedactionStage(policy)


__all__ = ["RedactionStage", "key_class", "make_stage", "MAX_HELD", "PRIVATE_KEY"]

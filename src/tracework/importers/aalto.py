"""Reader for the Aalto "136M keystrokes" files (Dhakal et al., CHI 2018).

Each participant file (tab-separated, gzip) lists the keystrokes of ~15
transcribed sentences: PRESS_TIME / RELEASE_TIME in ms, LETTER (the character,
or BKSP, SHIFT, CAPS_LOCK, ARW_LEFT...) and the browser KEYCODE. Some
participants' files have an empty LETTER; the character is then derived from
KEYCODE and the shift / caps-lock state, as the browser would have.

The rows become tracework key events (one capture session per file, one
focus change per sentence so that each sentence is one typing field). Used to
prove the typing-process builder on real typing; see tests/builder.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError
from ..events import MOD_CTRL, MOD_SHIFT, FocusChange, KeyDown, KeyUp, SessionStart

NAMED = {
    "BKSP": "BackSpace",
    "\x08": "BackSpace",
    "SHIFT": "Shift_L",
    "CAPS_LOCK": "Caps_Lock",
    "CTRL": "Control_L",
    "WIN": "Super_L",
    "MENU": "Menu",
    "INSERT": "Insert",
    "PAUSE": "Pause",
    "NUM_LK": "Num_Lock",
    "ARW_LEFT": "Left",
    "ARW_RIGHT": "Right",
    "ARW_UP": "Up",
    "ARW_DOWN": "Down",
    "HOME": "Home",
    "END": "End",
    "ENTER": "Return",
    "TAB": "Tab",
    "DELETE": "Delete",
}
_KEYCODE_NAMED = {8: "BackSpace", 16: "Shift_L", 17: "Control_L", 20: "Caps_Lock", 13: "Return", 9: "Tab",
                  37: "Left", 38: "Up", 39: "Right", 40: "Down", 46: "Delete", 36: "Home", 35: "End", 45: "Insert"}
_KEYCODE_PUNCT = {32: (" ", " "), 186: (";", ":"), 187: ("=", "+"), 188: (",", "<"), 189: ("-", "_"), 190: (".", ">"),
                  191: ("/", "?"), 192: ("`", "~"), 219: ("[", "{"), 220: ("\\", "|"), 221: ("]", "}"), 222: ("'", '"'),
                  173: ("-", "_"), 59: (";", ":"), 61: ("=", "+")}
_SHIFTED_DIGITS = ")!@#$%^&*("
# The numeric keypad (num lock on: it types digits whatever the shift state).
_KEYCODE_NUMPAD = {96 + d: str(d) for d in range(10)} | {106: "*", 107: "+", 109: "-", 110: ".", 111: "/"}
#: Longer than any real press of a character key: auto-repeat starts after
#: about 500 ms, and 99.98% of the dataset's character presses last < 500 ms.
STALE_PRESS_MS = 1000


@dataclass
class AaltoSentence:
    """One transcribed sentence: its section id, the target and what was typed."""

    section: str
    sentence: str
    user_input: str


def _key_from_code(code: int, shift: bool, caps: bool) -> tuple[str | None, str | None]:
    if code in _KEYCODE_NAMED:
        return _KEYCODE_NAMED[code], None
    if 65 <= code <= 90:
        ch = chr(code)
        return ch, ch if shift != caps else ch.lower()
    if 48 <= code <= 57:
        ch = _SHIFTED_DIGITS[code - 48] if shift else chr(code)
        return ch, ch
    if code in _KEYCODE_NUMPAD:
        ch = _KEYCODE_NUMPAD[code]
        return ch, ch
    if code in _KEYCODE_PUNCT:
        ch = _KEYCODE_PUNCT[code][1 if shift else 0]
        return ch, ch
    return None, None


def _lost_key(letter: str, code: int) -> str | None:
    """The character of ``code`` when it cannot have produced ``letter``."""
    if len(letter) != 1:
        return None
    if 65 <= code <= 90:
        return None if letter.lower() == chr(code).lower() else chr(code).lower()
    if 48 <= code <= 57:
        return None if letter in (chr(code), _SHIFTED_DIGITS[code - 48]) else chr(code)
    if code in _KEYCODE_PUNCT:
        return None if letter in _KEYCODE_PUNCT[code] else _KEYCODE_PUNCT[code][0]
    return None


def _layout_codes(rows: list[dict]) -> dict[str, int]:
    """LETTER -> the KEYCODE that types it on this participant's keyboard, where
    the file shows one: the code most of the letter's rows carry (at least two).

    A lost key is a random accident; a layout is systematic. On a UK keyboard
    the apostrophe reports keycode 192 (US: backquote), on some European ones
    keycode 55 (US: 7): when every apostrophe of a file carries that code, the
    code is the participant's apostrophe key, not the trace of a lost key.
    """
    import collections

    # Letter keys report their letter's code on every Latin layout, so a
    # letter keycode under another LETTER is always a trace, never a layout.
    pairs = collections.Counter(
        (r["LETTER"], r["KEYCODE"])
        for r in rows
        if len(r["LETTER"]) == 1 and r["KEYCODE"].isdigit() and not 65 <= int(r["KEYCODE"]) <= 90
    )
    per_letter = collections.Counter()
    for (letter, _), n in pairs.items():
        per_letter[letter] += n
    out: dict[str, int] = {}
    for (letter, code), n in pairs.most_common():
        if letter not in out and n >= 2 and 2 * n > per_letter[letter]:
            out[letter] = int(code)
    return out


def read_aalto(path: str | Path, session: str | None = None, *, repair: bool = True) -> tuple[list, list[AaltoSentence]]:
    """Events (ordered, with seq) and the sentences of one participant file.

    ``repair=False`` turns off the rules for flaws of the log (stale press
    times, keys lost in a shared row): the baseline the benchmark compares
    with. USER_INPUT is only returned for comparison; no rule reads it."""
    path = Path(path)
    try:
        raw = gzip.open(path, "rt", encoding="utf-8", errors="replace").read() if path.suffix == ".gz" else path.read_text()
    except (OSError, EOFError) as exc:
        raise BuildError(f"{path}: cannot read ({exc})", hint="is it a complete .txt.gz file?") from None
    # The files quote nothing: a sentence may contain a double quote.
    rows = list(csv.DictReader(io.StringIO(raw), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or "PRESS_TIME" not in rows[0]:
        raise BuildError(f"{path}: not an Aalto keystroke file (no PRESS_TIME column)")
    session = session or f"aalto-{rows[0]['PARTICIPANT_ID']}"
    mods = [(int(r["PRESS_TIME"]), int(r["RELEASE_TIME"]), MOD_SHIFT if r["LETTER"] == "SHIFT" or r["KEYCODE"] == "16" else MOD_CTRL)
            for r in rows if r["LETTER"] in ("SHIFT", "CTRL") or (r["LETTER"] == "" and r["KEYCODE"] in ("16", "17"))]
    sentences: list[AaltoSentence] = []
    layout = _layout_codes(rows)

    def press_of(r) -> int:
        press, release = int(r["PRESS_TIME"]), int(r["RELEASE_TIME"])
        if repair and release - press > STALE_PRESS_MS and r["LETTER"] not in NAMED:
            # A character key "held" for seconds without a single repeated row
            # was not held: the browser would have auto-repeated it after
            # ~500 ms. Its PRESS_TIME is stale (it can lie before the
            # sentence, even before the previous one), while KEYSTROKE_ID,
            # assigned as keys are logged on release, puts it where its
            # release is: the key went down just before its release.
            return release - 1
        return press

    presses = [press_of(r) for r in rows]
    # The file lists sentences one after another, each one's keys by press
    # time. Sentence order comes from the file, not from the clock: a stale
    # press must not pull a sentence's keys into the one before it.
    section_index: dict[str, int] = {}
    for i, r in enumerate(rows):
        if r["TEST_SECTION_ID"] not in section_index:
            section_index[r["TEST_SECTION_ID"]] = len(section_index)
            sentences.append(AaltoSentence(r["TEST_SECTION_ID"], r["SENTENCE"], r["USER_INPUT"]))
    first_press: dict[str, int] = {}
    for r, press in zip(rows, presses):
        first_press[r["TEST_SECTION_ID"]] = min(press, first_press.get(r["TEST_SECTION_ID"], press))
    timed: list[tuple[int, int, int, object]] = []  # (sentence, t_ms, order, event-maker)
    caps = False
    timed.append((-1, min(presses) - 2, 0, ("start",)))
    for section, idx in section_index.items():
        timed.append((idx, first_press[section] - 1, -1, ("focus", section)))
    for i, r in enumerate(rows):
        s_idx = section_index[r["TEST_SECTION_ID"]]
        press, release = presses[i], int(r["RELEASE_TIME"])
        modifiers = 0
        for mp, mr, bit in mods:
            if mp < press <= mr:
                modifiers |= bit
        letter = r["LETTER"]
        if len(letter) > 1 and letter not in NAMED:
            # A key name the logger spelled differently (one row reads
            # "ARw_DOWN"): the KEYCODE says which key it was.
            letter = ""
        elif r["KEYCODE"].isdigit() and int(r["KEYCODE"]) in _KEYCODE_NAMED and letter == chr(int(r["KEYCODE"])):
            # Some browsers' logs spell a non-character key as the character
            # of its code: Left (37) as "%", Right (39) as "'", Delete (46) as ".".
            letter = ""
        if letter in NAMED:
            key_sym, char = NAMED[letter], None
        elif letter == "":
            # Some participants' files record no letter: the KEYCODE and the
            # shift / caps-lock state say which character the browser typed.
            key_sym, char = _key_from_code(int(r["KEYCODE"] or 0), bool(modifiers & MOD_SHIFT), caps)
        else:
            key_sym, char = letter, letter
            code = int(r["KEYCODE"]) if r["KEYCODE"].isdigit() else 0
            lost = None if not repair or layout.get(letter) == code else _lost_key(letter, code)
            if lost is not None:
                # LETTER comes from the text field and KEYCODE from the key
                # event; when they disagree, two fast keystrokes were logged as
                # one row: the KEYCODE's key came first, then LETTER.
                lost_char = lost.upper() if (bool(modifiers & MOD_SHIFT) != caps) and lost.isalpha() else lost
                timed.append((s_idx, press, 2 * i, ("down", lost_char, lost_char, modifiers)))
                timed.append((s_idx, press, 2 * i, ("up", lost_char, lost_char, modifiers)))
        if key_sym == "Caps_Lock":
            caps = not caps
        if key_sym is None:
            continue
        timed.append((s_idx, press, 2 * i + 1, ("down", key_sym, char, modifiers)))
        timed.append((s_idx, max(release, press), 2 * i + 1, ("up", key_sym, char, modifiers)))
    timed.sort(key=lambda e: (e[0], e[1], e[2]))
    events = []
    for seq, (_, t_ms, _, spec) in enumerate(timed):
        t_ns = t_ms * 1_000_000
        if spec[0] == "start":
            events.append(SessionStart(seq=seq, t_ns=t_ns, session=session, platform="web", screen_w=1920, screen_h=1080,
                                       agent_version="aalto-import"))
        elif spec[0] == "focus":
            events.append(FocusChange(seq=seq, t_ns=t_ns, session=session, app="browser", title=spec[1]))
        else:
            cls = KeyDown if spec[0] == "down" else KeyUp
            events.append(cls(seq=seq, t_ns=t_ns, session=session, key_sym=spec[1], char=spec[2], modifiers=spec[3]))
    return events, sentences

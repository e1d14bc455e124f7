"""Reader for the Aalto "136M keystrokes" files (Dhakal et al., CHI 2018).

Each participant file (tab-separated, gzip) lists the keystrokes of ~15
transcribed sentences: PRESS_TIME / RELEASE_TIME in ms, LETTER (the character,
or BKSP, SHIFT, CAPS_LOCK, ARW_LEFT...) and the browser KEYCODE. Some
participants' files have an empty LETTER; the character is then derived from
KEYCODE and the shift / caps-lock state, as the browser would have.

The rows become tracework key events (one capture session per file, one
focus change per sentence so that each sentence is one typing field), as a
live capture would have recorded them: a held backspace becomes its
auto-repeated presses, a key lost in a shared row is restored. Each rule for
the log's flaws is justified by the log alone (USER_INPUT and SENTENCE are
returned for comparison, never read by a rule) and listed with its evidence
in docs/datasets.md. Used to prove the typing-process builder on real typing;
see tests/builder and tests/importers/test_aalto_repairs.py.
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
# The apostrophe's key where it is not the US one (222): German and Nordic
# keyboards report 191 (US "/"), British ones 192 (US "`"). In the dataset
# these codes never carry an apostrophe in a file that also types one with 222.
_NATIONAL_KEYS = frozenset({("'", 191), ("'", 192)})
# The French AZERTY layout as Firefox reports it (files without LETTER only).
# Its "!", ")", "$", "^", "ù" and "*" keys have keyCodes (161, 169, 164, 160,
# 165, 170) that no US-layout key reports: one of them in a file is the
# layout's signature. The digit row types "à&é\"'(-è_ç" without shift.
_AZERTY_DIGIT_ROW = "à&é\"'(-è_ç"
_AZERTY_PUNCT = {59: (";", "."), 188: (",", "?"), 58: (":", "/"), 161: ("!", "§"), 169: (")", "°"), 61: ("=", "+"),
                 165: ("ù", "%"), 170: ("*", "µ"), 160: ("^", "¨"), 164: ("$", "£"), 60: ("<", ">")}
_AZERTY_ONLY_CODES = frozenset({161, 169, 164, 160, 165, 170})
# The numeric keypad (num lock on: it types digits whatever the shift state).
_KEYCODE_NUMPAD = {96 + d: str(d) for d in range(10)} | {106: "*", 107: "+", 109: "-", 110: ".", 111: "/"}
#: Longer than any real press of a character key: auto-repeat starts after
#: about 500 ms, and 99.98% of the dataset's character presses last < 500 ms.
STALE_PRESS_MS = 1000
#: Keys whose auto-repeat edits the text or moves the caret. The log has one
#: row per key (press and release), never a row per repeat: a held key's
#: repeats are only visible in its duration.
REPEAT_KEYS = frozenset({"BackSpace", "Delete", "Left", "Right", "Up", "Down"})
#: Auto-repeat as the operating system sends it by default (Windows: delay
#: 500 ms, rate 31 of 31 = about 30 repeats per second; X11's xset defaults
#: are 660 ms / 25 per second). The best of the settings that
#: benchmarks/builder/aalto_replay.py --repeat-grid tries on the dataset.
REPEAT_DELAY_MS = 500
REPEAT_INTERVAL_MS = 33
#: A stale press this soon after the previous sentence's last key press was
#: that sentence's last key (its release lost when the sentence was sent).
LOST_KEYUP_MS = 1000
_MODIFIER_LETTERS = frozenset({"SHIFT", "CTRL", "CAPS_LOCK", "WIN", "MENU", "NUM_LK", "ALT", "ALT_GR"})
_MODIFIER_CODES = frozenset({"16", "17", "18", "20", "91", "92", "93", "144", "225"})


@dataclass
class AaltoSentence:
    """One transcribed sentence: its section id, the target and what was typed."""

    section: str
    sentence: str
    user_input: str


def _key_from_code(code: int, shift: bool, caps: bool, azerty: bool = False) -> tuple[str | None, str | None]:
    if code in _KEYCODE_NAMED:
        return _KEYCODE_NAMED[code], None
    if 65 <= code <= 90:
        ch = chr(code)
        return ch, ch if shift != caps else ch.lower()
    if azerty and (48 <= code <= 57 or code in _AZERTY_PUNCT):
        # French keyboard: the digit row types symbols unshifted and digits
        # with shift; its punctuation keys are its own.
        ch = chr(code) if 48 <= code <= 57 and shift else _AZERTY_DIGIT_ROW[code - 48] if 48 <= code <= 57 else _AZERTY_PUNCT[code][shift]
        return ch, ch
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
        if letter == "?":
            # The dataset's text columns store a character they cannot
            # encode as "?" (USER_INPUT shows the same "?"): a letter key that
            # typed a non-Latin character, one key, not "?" after a lost key.
            return None
        return None if letter.lower() == chr(code).lower() else chr(code).lower()
    if 48 <= code <= 57:
        return None if letter in (chr(code), _SHIFTED_DIGITS[code - 48]) else chr(code)
    if code in _KEYCODE_PUNCT:
        if (letter, code) in _NATIONAL_KEYS:
            # The apostrophe's own key on a national layout: a layout even
            # where the file shows it once (too rare for _layout_codes).
            return None
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


def _letter(r: dict) -> str:
    """LETTER, or "" where the KEYCODE must say which key it was."""
    letter = r["LETTER"]
    if len(letter) > 1 and letter not in NAMED:
        # A key name the logger spelled differently (one row reads
        # "ARw_DOWN"): the KEYCODE says which key it was.
        return ""
    if r["KEYCODE"].isdigit() and int(r["KEYCODE"]) in _KEYCODE_NAMED and letter == chr(int(r["KEYCODE"])):
        # Some browsers' logs spell a non-character key as the character
        # of its code: Left (37) as "%", Right (39) as "'", Delete (46) as ".".
        return ""
    return letter


def _is_modifier(r: dict) -> bool:
    return r["LETTER"] in _MODIFIER_LETTERS or (r["LETTER"] in ("", "\x10", "\x11", "\x14") and r["KEYCODE"] in _MODIFIER_CODES)


def _held_ms(others: list[tuple[int, int, int]], i: int, press: int, release: int) -> int | None:
    """How long row ``i`` (pressed at ``press``, released at ``release``) was
    held on its own: until its release or the next non-modifier key's press,
    whichever came first. ``None`` when another key went down *and up*
    inside the press: nobody holds a key through a whole other keystroke, so
    the press time is not when the key went down (a stale press time).

    ``others``: (press, release, row) of the file's non-modifier keys, by press.
    Modifiers do not count: shift goes down while backspace is still held
    (the next capital), and does not stop the repeat in the browser."""
    import bisect

    held = release - press
    for p, r, j in others[bisect.bisect_right(others, (press, release, i)) :]:
        if p >= release:
            break
        if j == i:
            continue
        if r <= release and p > press:
            return None
        held = min(held, p - press)
    return max(held, 0)


def read_aalto(path: str | Path, session: str | None = None, *, repair: bool = True) -> tuple[list, list[AaltoSentence]]:
    """Events (ordered, with seq) and the sentences of one participant file.

    ``repair=False`` turns off the rules for flaws of the log (stale press
    times, keys lost in a shared row): the baseline the benchmark compares
    with. USER_INPUT is only returned for comparison; no rule reads it."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
                raw = fh.read()
        else:
            raw = path.read_text()
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

    n = len(rows)
    letters = [_letter(r) for r in rows]
    codes = [int(r["KEYCODE"]) if r["KEYCODE"].isdigit() else 0 for r in rows]
    named = [NAMED[l] if l in NAMED else (_KEYCODE_NAMED.get(c) if l == "" else None) for l, c in zip(letters, codes)]
    is_mod = [_is_modifier(r) for r in rows]
    raw_presses = [int(r["PRESS_TIME"]) for r in rows]
    releases = [int(r["RELEASE_TIME"]) for r in rows]
    presses = list(raw_presses)
    stale = [False] * n
    # How long this participant holds a character key (median): where a key
    # with a stale press time really went down, about one press before its
    # release (its order among the keys around it, and its shift state).
    durations = sorted(
        releases[i] - raw_presses[i] for i in range(n) if named[i] is None and not is_mod[i] and releases[i] - raw_presses[i] <= STALE_PRESS_MS
    )
    typical_hold = max(durations[len(durations) // 2], 1) if durations else 100
    for i in range(n):
        if repair and named[i] is None and not is_mod[i] and releases[i] - raw_presses[i] > STALE_PRESS_MS:
            # A character key "held" for seconds without a single repeated row
            # was not held: the browser would have auto-repeated it after
            # ~500 ms. Its PRESS_TIME is stale (it can lie before the
            # sentence, even before the previous one), while KEYSTROKE_ID,
            # assigned as keys are logged on release, puts it where its
            # release is: the key went down one typical press before it.
            presses[i], stale[i] = releases[i] - typical_hold, True
    # The file lists sentences one after another, each one's keys by press
    # time. Sentence order comes from the file, not from the clock: a stale
    # press must not pull a sentence's keys into the one before it.
    section_index: dict[str, int] = {}
    for r in rows:
        if r["TEST_SECTION_ID"] not in section_index:
            section_index[r["TEST_SECTION_ID"]] = len(section_index)
            sentences.append(AaltoSentence(r["TEST_SECTION_ID"], r["SENTENCE"], r["USER_INPUT"]))
    sentence_of = [section_index[r["TEST_SECTION_ID"]] for r in rows]
    first_regular: dict[int, int] = {}
    for i in range(n):
        if not stale[i]:
            first_regular[sentence_of[i]] = min(presses[i], first_regular.get(sentence_of[i], presses[i]))
    for i in range(n):
        if stale[i] and named[i] is None and raw_presses[i] > first_regular.get(sentence_of[i], raw_presses[i]):
            # A stale press time inside the key's own sentence, after its
            # first regular key: the key went down there (LETTER was read
            # there) and only its release was logged late. In the data (two
            # rows) a key at the release would type a letter the text lacks.
            presses[i], stale[i] = raw_presses[i], False
    # Non-modifier keys by press time: which key went down next, and whether
    # one went down and up inside another key's press (see _held_ms).
    others = sorted((presses[i], releases[i], i) for i in range(n) if not is_mod[i])
    held_of: dict[int, int] = {}
    for i in range(n):
        if repair and named[i] in REPEAT_KEYS:
            held = _held_ms(others, i, presses[i], releases[i])
            if held is not None:
                held_of[i] = held
            elif releases[i] - presses[i] > STALE_PRESS_MS:
                # Another key went down and up inside this press: the key was
                # not held through it; its PRESS_TIME is stale, as above.
                presses[i], stale[i] = releases[i] - typical_hold, True
    # A file without LETTER typed on a French keyboard: its keycodes say so.
    azerty = repair and any(l == "" and c in _AZERTY_ONLY_CODES for l, c in zip(letters, codes))
    first_press: dict[int, int] = {}
    last_press: dict[int, int] = {}
    for i, r in enumerate(rows):
        s_idx = section_index[r["TEST_SECTION_ID"]]
        first_press[s_idx] = min(presses[i], first_press.get(s_idx, presses[i]))
        if not stale[i]:
            last_press[s_idx] = max(presses[i], last_press.get(s_idx, presses[i]))

    def modifiers_at(t: int) -> int:
        # A key that goes down in the millisecond its modifier goes up was
        # pressed after the release: one participant's "W" shares its
        # millisecond with ctrl's release, and ctrl+W would have closed the
        # study's browser tab.
        bits = 0
        for mp, mr, bit in mods:
            if mp < t < mr:
                bits |= bit
        return bits

    def typed(letter: str, code: int, modifiers: int, caps: bool) -> tuple[str | None, str | None]:
        if letter in NAMED:
            return NAMED[letter], None
        if letter == "":
            # Some participants' files record no letter: the KEYCODE and the
            # shift / caps-lock state say which character the browser typed.
            return _key_from_code(code, bool(modifiers & MOD_SHIFT), caps, azerty)
        return letter, letter

    timed: list[tuple[int, int, int, object]] = []  # (sentence, t_ms, order, event-maker)
    caps = False
    timed.append((-1, min(presses) - 2, 0, ("start",)))
    for section, idx in section_index.items():
        timed.append((idx, first_press[idx] - 1, -1, ("focus", section)))
    for i, r in enumerate(rows):
        s_idx = section_index[r["TEST_SECTION_ID"]]
        press, release, letter, code = presses[i], releases[i], letters[i], codes[i]
        modifiers = modifiers_at(press)
        if stale[i] and s_idx > 0 and s_idx - 1 in last_press:
            early = raw_presses[i]
            if last_press[s_idx - 1] < early <= last_press[s_idx - 1] + LOST_KEYUP_MS and early < first_press[s_idx]:
                # The stale PRESS_TIME is a real key press: the previous
                # sentence's last key, pressed just after its other keys. Its
                # release was never logged (the sentence was submitted while
                # it was down), so the row stayed open until the same key's
                # next release, in this sentence.
                early_mods = modifiers_at(early)
                key_sym, char = typed(letter, code, early_mods, caps)
                if key_sym is not None:
                    timed.append((s_idx - 1, early, 2 * i, ("down", key_sym, char, early_mods)))
                    timed.append((s_idx - 1, early, 2 * i, ("up", key_sym, char, early_mods)))
        key_sym, char = typed(letter, code, modifiers, caps)
        if stale[i] and char is not None and len(char) == 1 and char.isalpha():
            # LETTER was read when the stale press went down; the case is the
            # shift / caps-lock state of this press.
            char = key_sym = char.upper() if bool(modifiers & MOD_SHIFT) != caps else char.lower()
        if letter not in NAMED and letter != "":
            lost = None if not repair or layout.get(letter) == code else _lost_key(letter, code)
            if repair and code == 8 and len(letter) == 1:
                # The same with the backspace key: a character logged with
                # backspace's keycode is a backspace, then that character.
                timed.append((s_idx, press, 2 * i, ("down", "BackSpace", None, modifiers)))
                timed.append((s_idx, press, 2 * i, ("up", "BackSpace", None, modifiers)))
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
        if i in held_of:
            # Held past the repeat delay: the system sent the key again every
            # interval until the release or until another key went down
            # (auto-repeat follows the newest key). The log keeps one row;
            # the events say what the field received, as a live capture would.
            t = press + REPEAT_DELAY_MS
            while t < press + held_of[i]:
                timed.append((s_idx, t, 2 * i + 1, ("down", key_sym, char, modifiers)))
                t += REPEAT_INTERVAL_MS
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

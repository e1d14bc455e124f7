"""The Aalto converter's rules for key repeat and lost key releases, each on a
small file in the dataset's real format (tab-separated, gzip, its columns),
replayed through the real typing builder. The logs are synthetic; the
patterns are the ones the real files show (see docs/datasets.md)."""

from __future__ import annotations

import gzip

import polars as pl
import pyarrow as pa

from tracework.builder import BuildSettings, normalize, sessionize, typing_fields
from tracework.events import KeyDown, events_to_table
from tracework.importers import aalto
from tracework.importers.aalto import read_aalto

COLUMNS = ["PARTICIPANT_ID", "TEST_SECTION_ID", "SENTENCE", "USER_INPUT", "KEYSTROKE_ID", "PRESS_TIME", "RELEASE_TIME", "LETTER", "KEYCODE"]
CODES = {" ": 32, "'": 222, ".": 190, "?": 191}


def _write(path, sections: list[tuple[str, list[tuple[int, int, str, int]]]]) -> None:
    """sections: (section id, [(press_ms, release_ms, LETTER, KEYCODE)]) in file order.
    USER_INPUT is a constant: the converter must not need it."""
    lines = ["\t".join(COLUMNS)]
    kid = 1000
    for section, keys in sections:
        for press, release, letter, code in keys:
            kid += 1
            lines.append("\t".join(map(str, ["9", section, "s", "not read", kid, press, release, letter, code])))
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _typed(text: str, t0: int, step: int = 150, hold: int = 80) -> list[tuple[int, int, str, int]]:
    return [(t0 + step * i, t0 + step * i + hold, ch, CODES.get(ch, ord(ch.upper()))) for i, ch in enumerate(text)]


def _replay(path) -> dict[str, str]:
    events, sentences = read_aalto(path)
    t = events_to_table(events)
    t = t.append_column("person", pa.array(["p_test"] * t.num_rows))
    s = BuildSettings()
    fields = typing_fields(sessionize(normalize(pl.from_arrow(t)), s), s)
    got = dict(zip(fields["title"].to_list(), fields["text"].to_list()))
    assert [x.section for x in sentences] == list(got)
    return got


def _downs(path, key_sym: str) -> int:
    events, _ = read_aalto(path)
    return sum(isinstance(e, KeyDown) and e.key_sym == key_sym for e in events)


def test_held_backspace_repeats(tmp_path):
    # "hello world" typed, then backspace held alone for
    # 1,500 ms: one row in the log, 1 + ceil(1000 / 33) = 32 presses, which
    # erase all 11 characters; the sentence is then typed again.
    keys = _typed("hello world", 10_000)
    keys.append((12_000, 13_500, "BKSP", 8))
    keys += _typed("hi", 14_000)
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "hi"}
    expected = 1 + -(-(1_500 - aalto.REPEAT_DELAY_MS) // aalto.REPEAT_INTERVAL_MS)
    assert _downs(tmp_path / "9_keystrokes.txt.gz", "BackSpace") == expected


def test_short_backspace_does_not_repeat(tmp_path):
    # Held for less than the repeat delay: one backspace, one character.
    keys = _typed("abc", 10_000) + [(11_000, 11_000 + aalto.REPEAT_DELAY_MS - 50, "BKSP", 8)]
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "ab"}


def test_repeat_stops_when_the_next_key_goes_down(tmp_path):
    # Backspace goes down at 11,000 and is released at 11,900, but "x" goes
    # down at 11,600 (rollover): the repeat ran for 600 ms, not 900.
    keys = _typed("abcdefghij", 10_000, step=100)
    keys += [(11_000, 11_900, "BKSP", 8), (11_600, 11_950, "x", 88)]
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    held = 600
    erased = 1 + -(-(held - aalto.REPEAT_DELAY_MS) // aalto.REPEAT_INTERVAL_MS)
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "abcdefghij"[: 10 - erased] + "x"}


def test_held_left_arrow_moves_the_caret_several_places(tmp_path):
    # Left arrow (logged as "%", its code's character) held 600 ms: 1 + 4
    # moves back over "world", then "big " goes in front of it.
    keys = _typed("hi world", 10_000) + [(11_500, 12_100, "%", 37)] + _typed("big ", 12_500)
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    moves = 1 + -(-(600 - aalto.REPEAT_DELAY_MS) // aalto.REPEAT_INTERVAL_MS)
    assert moves == 5
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "hi big world"}


def test_stale_backspace_is_one_press_at_its_release(tmp_path):
    # A backspace "held" 3 s while whole other keystrokes happen inside it
    # was not held (the repeat would have stopped at the first one): its
    # press time is stale; it deletes one character where it was released.
    keys = [(10_000, 13_000, "BKSP", 8)] + _typed("abcdef", 11_000, step=150)
    keys = sorted(keys) + _typed("g", 13_200)
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "abcdeg"}


def test_lost_release_of_a_sentences_last_key(tmp_path):
    # Sentence 1's final "." went down 300 ms after its last key, and its
    # release was never logged: the row shows up in sentence 2 with that
    # press time and the release of sentence 2's own final ".".
    first = _typed("one", 10_000)
    second = [(10_600, 20_500, ".", 190)] + _typed("two", 20_000)
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", first), ("2", second)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "one.", "2": "two."}


def test_a_stale_press_long_after_the_last_key_is_not_added_to_it(tmp_path):
    # Five seconds after sentence 1's last key is not part of typing it.
    first = _typed("one", 10_000)
    second = [(15_300, 25_500, ".", 190)] + _typed("two", 25_000)
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", first), ("2", second)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "one", "2": "two."}


def test_stale_letter_takes_the_shift_state_of_its_real_press(tmp_path):
    # "t" (LETTER read at the stale press, lowercase) is released while
    # shift is down: the capital T starts the sentence. Shift is already up
    # one millisecond before the release; about one typical press before it,
    # it was down.
    keys = [(10_000, 20_100, "t", 84), (19_950, 20_080, "SHIFT", 16)] + _typed("he", 20_300)
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "The"}


def test_apostrophe_on_a_national_key_is_a_layout_even_once(tmp_path):
    # One apostrophe in the whole file, on keycode 191 (German / Nordic
    # keyboards) or 192 (British): the participant's apostrophe key, not a
    # lost "/" or "`" (_layout_codes needs two rows to see a layout).
    for code in (191, 192):
        keys = [(t, r, ch, code if ch == "'" else c) for t, r, ch, c in _typed("it's", 10_000)]
        _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
        assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "it's"}


def test_other_punctuation_on_a_neighbouring_key_is_still_a_lost_key(tmp_path):
    # "." logged with the keycode of "/" (the key beside it): "/" was typed
    # first, then ".", and both are erased by the two backspaces.
    keys = _typed("night", 10_000) + [(10_800, 10_860, ".", 191), (11_500, 11_560, "BKSP", 8), (11_700, 11_760, "BKSP", 8)]
    keys += [(12_000, 12_060, ".", 190)]
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "night."}


def _no_letter(text_keys: list[tuple[int, int, str, int]]) -> list[tuple[int, int, str, int]]:
    return [(t, r, "" if letter not in ("SHIFT", "BKSP") else letter, c) for t, r, letter, c in text_keys]


def test_french_keyboard_in_a_file_without_letter(tmp_path):
    # keyCode 161 is the AZERTY "!" key (no US key reports it): the file was
    # typed on a French keyboard, where 52 unshifted is the apostrophe and
    # shift + 59 the full stop.
    first = _no_letter(_typed("don", 10_000) + [(10_450, 10_520, "'", 52)] + _typed("t", 10_600) + [(10_700, 10_760, "!", 161)])
    second = _no_letter(_typed("ok", 20_000) + [(20_300, 20_500, "SHIFT", 16), (20_350, 20_420, ".", 59)])
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", first), ("2", second)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "don't!", "2": "ok."}


def test_without_the_french_signature_the_us_layout_stays(tmp_path):
    keys = _no_letter(_typed("don", 10_000) + [(10_450, 10_520, "'", 222)] + _typed("t", 10_600) + [(10_700, 10_760, ";", 59)])
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "don't;"}


def test_key_pressed_as_ctrl_is_released_is_typed(tmp_path):
    # Ctrl goes up in the same millisecond as "w" goes down: "w" is text,
    # not ctrl+w (which would have closed the browser tab mid-study).
    keys = [(10_000, 10_138, "CTRL", 17), (10_138, 10_200, "W", 87)] + _typed("e", 10_400)
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "We"}
    # Pressed while ctrl is still down, it is a hotkey and types nothing.
    keys = [(10_000, 10_138, "CTRL", 17), (10_137, 10_200, "W", 87)] + _typed("e", 10_400)
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "e"}


def test_character_logged_with_the_backspace_keycode_is_a_lost_backspace(tmp_path):
    # "ecp" typed, then a row LETTER "x" / KEYCODE 8: backspace and "x" were
    # logged as one row; the backspace came first.
    keys = _typed("ecp", 10_000) + [(10_500, 10_580, "BKSP", 8), (10_700, 10_780, "x", 8)] + _typed("pect", 10_900)
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "expect"}


def test_stale_press_inside_its_own_sentence_types_there(tmp_path):
    # "v" goes down after the sentence's first key (LETTER read there) and its
    # release is logged 3 s later, while " ok" is typed: the letter belongs
    # where it went down; no second "v" at the release.
    keys = _typed("e", 10_000) + [(10_150, 13_380, "v", 86)] + _typed("en ok", 10_300)
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "even ok"}


def test_question_mark_on_a_letter_key_is_an_unencodable_character(tmp_path):
    # LETTER "?" with the keycode of "s": the key typed a character the
    # dataset stored as "?", not a lost "s" followed by "?".
    keys = _typed("let", 10_000) + [(10_500, 10_580, "?", 83)] + _typed(" go", 10_700)
    _write(tmp_path / "9_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "9_keystrokes.txt.gz") == {"1": "let? go"}

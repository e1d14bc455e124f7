"""The Aalto converter's rules for flaws of the keystroke log, each on a small
real-format file (tab-separated, gzip, the dataset's columns), replayed through
the real typing builder."""

from __future__ import annotations

import gzip

import polars as pl
import pyarrow as pa
import pytest

from tracework.builder import BuildSettings, normalize, sessionize, typing_fields
from tracework.errors import BuildError
from tracework.events import events_to_table
from tracework.importers.aalto import read_aalto

COLUMNS = ["PARTICIPANT_ID", "TEST_SECTION_ID", "SENTENCE", "USER_INPUT", "KEYSTROKE_ID", "PRESS_TIME", "RELEASE_TIME", "LETTER", "KEYCODE"]
CODES = {" ": 32, "'": 222, ".": 190, "?": 191}


def _write(path, sections: list[tuple[str, list[tuple[int, int, str, int]]]]) -> None:
    """sections: (section id, [(press_ms, release_ms, LETTER, KEYCODE)]) in file order."""
    lines = ["\t".join(COLUMNS)]
    kid = 1000
    for section, keys in sections:
        for press, release, letter, code in keys:
            kid += 1
            lines.append("\t".join(map(str, ["7", section, "s", "u", kid, press, release, letter, code])))
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _typed(text: str, t0: int, letter_column: bool = True) -> list[tuple[int, int, str, int]]:
    out = []
    for i, ch in enumerate(text):
        code = CODES.get(ch, ord(ch.upper()))
        out.append((t0 + 150 * i, t0 + 150 * i + 80, ch if letter_column else "", code))
    return out


def _replay(path) -> dict[str, str]:
    events, sentences = read_aalto(path)
    t = events_to_table(events)
    t = t.append_column("person", pa.array(["p_test"] * t.num_rows))
    s = BuildSettings()
    fields = typing_fields(sessionize(normalize(pl.from_arrow(t)), s), s)
    got = dict(zip(fields["title"].to_list(), fields["text"].to_list()))
    assert [x.section for x in sentences] == list(got)
    return got


def test_stale_press_time_goes_where_the_key_was_released(tmp_path):
    # The final "." carries the sentence's first press time and is released
    # last: it was typed last, not first.
    keys = _typed("thank you", 10_000)
    keys.insert(0, (10_000, 10_000 + 150 * 9 + 200, ".", 190))
    _write(tmp_path / "7_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "7_keystrokes.txt.gz") == {"1": "thank you."}


def test_a_stale_press_does_not_pull_a_sentence_into_the_one_before(tmp_path):
    first = _typed("one", 10_000)
    # Sentence 2's first key has a press time from inside sentence 1.
    second = [(10_100, 20_080, "t", 84)] + _typed("wo", 20_150)
    _write(tmp_path / "7_keystrokes.txt.gz", [("1", first), ("2", second)])
    assert _replay(tmp_path / "7_keystrokes.txt.gz") == {"1": "one", "2": "two"}


def test_lost_key_is_restored_but_a_layout_is_not_a_lost_key(tmp_path):
    # LETTER " " with the keycode of "l": two fast keys logged as one row.
    lost = _typed("wil", 10_000) + [(10_300, 10_380, " ", 76)] + _typed("go", 10_450)
    # Every apostrophe of this file reports keycode 192 (a UK keyboard): that is the layout.
    uk = [(t, r, ch, 192 if ch == "'" else c) for t, r, ch, c in _typed("it's don't", 20_000)]
    _write(tmp_path / "7_keystrokes.txt.gz", [("1", lost), ("2", uk)])
    assert _replay(tmp_path / "7_keystrokes.txt.gz") == {"1": "will go", "2": "it's don't"}


def test_empty_letter_column_uses_keycodes_including_the_keypad(tmp_path):
    keys = _typed("in ", 10_000, letter_column=False) + [(10_500, 10_560, "", 97), (10_600, 10_660, "", 105), (10_700, 10_760, "", 109)]
    _write(tmp_path / "7_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "7_keystrokes.txt.gz") == {"1": "in 19-"}


def test_not_an_aalto_file(tmp_path):
    (tmp_path / "x.txt").write_text("a\tb\n1\t2\n")
    with pytest.raises(BuildError, match="not an Aalto keystroke file"):
        read_aalto(tmp_path / "x.txt")


def test_arrow_keys_logged_as_the_character_of_their_code(tmp_path):
    # Left (37) logged as "%", Right (39) as "'": caret moves, not characters.
    keys = _typed("ac", 10_000) + [(10_400, 10_450, "%", 37)] + _typed("b", 10_500) + [(10_700, 10_750, "'", 39)] + _typed("d", 10_800)
    _write(tmp_path / "7_keystrokes.txt.gz", [("1", keys)])
    assert _replay(tmp_path / "7_keystrokes.txt.gz") == {"1": "abcd"}

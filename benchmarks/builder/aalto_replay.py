"""Replay the Aalto 136M-keystrokes sentences through the typing builder and
list every sentence whose rebuilt text differs from USER_INPUT.

    .venv/bin/python benchmarks/builder/aalto_replay.py [--data ../shared/data/aalto-keystrokes] [--show 40] [--repeat-grid]

Prints the match rate, the mismatches grouped by the shape of the difference
(difflib opcodes) and by cause, and the first ``--show`` mismatches with
USER_INPUT and the rebuilt text. Causes are tested in order, each on the
sentence's own log rows and the difference (first that holds):

- the last key never logged: the rebuilt text is USER_INPUT minus its last
  character (the key went down as the sentence was sent; no row has it);
- a context-menu correction: the sentence's log has the MENU key (the
  participant picked a spelling suggestion; the text changed without keys);
- Up/Down: the sentence has an Up or Down arrow, which the builder takes to
  move the caret to the start / end of a single-line field;
- a held key's repeat: a backspace, Delete or arrow row is held past the
  repeat delay and another repeat setting (``REPEAT_GRID``) rebuilds the
  sentence exactly: the participant's rate is not the default one, which the
  log cannot tell;
- letter case: the texts differ only in case (LETTER or the shift / caps
  state disagree with the field);
- keys missing from a file without LETTER: characters missing from the
  replay in one of the files whose LETTER column is empty, where a key lost
  in a shared row leaves no trace (in files with LETTER the converter
  restores them from the LETTER/KEYCODE disagreement);
- keys missing from the log: characters missing, no trace in the log;
- text moved: the same characters in another order (caret placed with the
  mouse, which the log does not record);
- a logged key the field did not keep: one or two extra characters, nothing
  missing;
- text replaced without keys: the replay keeps extra text (3 or more
  characters) and lacks nothing (a mouse selection overtyped, autocompletion);
- other: characters other than typed (LETTER disagreeing with the field,
  mouse edits mixed with typing).

Baseline in the same run: the converter without its repairs of the log
(``read_aalto(..., repair=False)``: LETTER as typed at PRESS_TIME, BKSP
deletes, no lost-key, stale-time, key-repeat or layout rules) through the same
builder. ``--repeat-grid`` also replays with other repeat delays / intervals
(how sensitive the match rate is to the default 500 ms / 33 ms).
USER_INPUT is used only here, for comparison: the converter never reads it.
"""

from __future__ import annotations

import argparse
import collections
import csv
import difflib
import glob
import gzip
import time
from pathlib import Path

import polars as pl
import pyarrow as pa

from tracework.builder import BuildSettings, normalize, sessionize, typing_fields
from tracework.events import events_to_table
from tracework.importers import aalto


def rebuild(files: list[str], repair: bool = True) -> tuple[dict, dict]:
    tables, expected = [], {}
    for f in files:
        events, sentences = aalto.read_aalto(f, repair=repair)
        t = events_to_table(events)
        tables.append(t.append_column("person", pa.array(["p_aalto"] * t.num_rows)))
        for s in sentences:
            expected[(events[0].session, s.section)] = s
    settings = BuildSettings()
    fields = typing_fields(sessionize(normalize(pl.from_arrow(pa.concat_tables(tables))), settings), settings)
    got = {(r["session"], r["title"]): r["text"] for r in fields.select("session", "title", "text").iter_rows(named=True)}
    return expected, got


def shape(target: str, got: str) -> str:
    ops = [o for o in difflib.SequenceMatcher(None, target, got).get_opcodes() if o[0] != "equal"]
    if len(ops) == 1 and ops[0][0] == "delete" and ops[0][2] - ops[0][1] == 1:
        return "one character missing from the replay"
    names = {"delete": "text missing from the replay", "insert": "extra text in the replay", "replace": "different text"}
    return " + ".join(sorted({names[o[0]] for o in ops}))


REPEAT_CODES = {"8", "37", "38", "39", "40", "46"}


def raw_rows(files: list[str]) -> tuple[dict, set]:
    """(session, section) -> the sentence's log rows; and the sessions whose
    file has no LETTER for its character keys."""
    rows: dict = collections.defaultdict(list)
    no_letter = set()
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8", errors="replace") as fh:
            file_rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
        session = f"aalto-{file_rows[0]['PARTICIPANT_ID']}"
        chars = [r for r in file_rows if r["KEYCODE"].isdigit() and 65 <= int(r["KEYCODE"]) <= 90]
        if chars and sum(r["LETTER"] == "" for r in chars) > len(chars) / 2:
            no_letter.add(session)
        for r in file_rows:
            rows[(session, r["TEST_SECTION_ID"])].append(r)
    return rows, no_letter


#: Key-repeat settings (delay ms, interval ms) around what systems offer:
#: Windows' delay steps 250-1000 ms, X11's default 660 ms, rates of 12 to 40
#: repeats per second.
REPEAT_GRID = [(d, i) for d in (250, 400, 500, 660, 750, 1000) for i in (25, 33, 40, 50, 83)]


def held_repeat_key(rows: list[dict]) -> bool:
    return any(r["KEYCODE"] in REPEAT_CODES and int(r["RELEASE_TIME"]) - int(r["PRESS_TIME"]) > aalto.REPEAT_DELAY_MS for r in rows)


def other_rate_matches(files: list[str], keys: set, expected: dict) -> set:
    """The sentences among ``keys`` that another key-repeat setting rebuilds exactly."""
    sessions = {k[0] for k in keys}
    wanted = [f for f in files if f"aalto-{Path(f).name.split('_')[0]}" in sessions]
    default = (aalto.REPEAT_DELAY_MS, aalto.REPEAT_INTERVAL_MS)
    found = set()
    try:
        for delay, interval in REPEAT_GRID:
            aalto.REPEAT_DELAY_MS, aalto.REPEAT_INTERVAL_MS = delay, interval
            _, got = rebuild(wanted)
            found |= {k for k in keys if got.get(k) == expected[k].user_input}
    finally:
        aalto.REPEAT_DELAY_MS, aalto.REPEAT_INTERVAL_MS = default
    return found


def reason(target: str, got: str, rows: list[dict], no_letter: bool, other_rate: bool) -> str:
    """The cause of a mismatch, tested on the log rows and the difference."""
    ops = [o for o in difflib.SequenceMatcher(None, target, got, autojunk=False).get_opcodes() if o[0] != "equal"]
    missing = "".join(target[a:b] for o, a, b, _, _ in ops if o in ("delete", "replace"))
    extra = "".join(got[c:d] for o, _, _, c, d in ops if o in ("insert", "replace"))
    if got == target[:-1]:
        return "the last key never logged (the sentence was sent while it was down)"
    if any(r["LETTER"] == "MENU" or r["KEYCODE"] == "93" for r in rows):
        return "a correction picked from the context menu (MENU key: spelling suggestion)"
    if any(r["KEYCODE"] in ("38", "40") for r in rows):
        return "Up/Down pressed (the builder moves the caret to the field's start/end; the browser may not)"
    if other_rate:
        return "a held key's repeat count (another repeat delay/rate rebuilds it exactly)"
    if got.lower() == target.lower():
        return "letter case unlike the field (LETTER or the shift/caps state disagree with the text)"
    if not extra and no_letter:
        return "keys missing from a file without LETTER (a lost key leaves no trace there)"
    if not extra:
        return "keys missing from the log (no trace in the log)"
    if sorted(missing) == sorted(extra):
        return "text moved without keys (caret placed with the mouse)"
    if not missing and len(extra) <= 2:
        return "a logged key the field did not keep (its character is not in the text)"
    if not missing:
        return "text replaced without keys (mouse selection overtyped, autocompletion)"
    return "other characters than typed (mouse edits mixed with typing, autocorrection)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "aalto-keystrokes"))
    ap.add_argument("--show", type=int, default=40)
    ap.add_argument("--repeat-grid", action="store_true", help="also replay with other key-repeat delays / intervals")
    args = ap.parse_args()
    files = sorted(glob.glob(str(Path(args.data) / "*_keystrokes.txt.gz")))
    if not files:
        raise SystemExit(f"no *_keystrokes.txt.gz under {args.data}")
    t = time.perf_counter()
    expected, got = rebuild(files)
    bad = [(k, s, got.get(k) or "") for k, s in expected.items() if got.get(k) != s.user_input]
    n = len(expected)
    print(f"{len(files)} files, {n} sentences: {n - len(bad)} rebuilt exactly ({(n - len(bad)) / n:.1%}) in {time.perf_counter() - t:.1f} s")

    expected_b, got_b = rebuild(files, repair=False)
    ok_b = sum(got_b.get(k) == s.user_input for k, s in expected_b.items())
    print(f"baseline without the converter's repairs of the log: {ok_b} rebuilt exactly ({ok_b / n:.1%}); "
          f"ratio {(n - len(bad)) / max(ok_b, 1):.2f}x")
    print("mismatches by shape:")
    for name, count in collections.Counter(shape(s.user_input, g) for _, s, g in bad).most_common():
        print(f"  {count:4d}  {name}")
    rows, no_letter = raw_rows(files)
    held = {k for k, _, _ in bad if held_repeat_key(rows[k])}
    other_rate = other_rate_matches(files, held, expected)
    causes = {k: reason(s.user_input, g, rows[k], k[0] in no_letter, k in other_rate) for k, s, g in bad}
    print(f"mismatches by cause ({len(no_letter)} files have no LETTER column; they hold "
          f"{sum(k[0] in no_letter for k, _, _ in bad)} of the {len(bad)} mismatches):")
    for name, count in collections.Counter(causes.values()).most_common():
        example = next((k, s, g) for k, s, g in bad if causes[k] == name)
        print(f"  {count:4d}  {name}\n          e.g. {example[0][0]} section {example[0][1]}: "
              f"USER_INPUT {example[1].user_input!r}, rebuilt {example[2]!r}")
    if args.repeat_grid:
        default = (aalto.REPEAT_DELAY_MS, aalto.REPEAT_INTERVAL_MS)
        print("key-repeat sensitivity (delay ms / interval ms: sentences rebuilt exactly):")
        for delay, interval in [(250, 33), (400, 33), (500, 25), (500, 40), (500, 50), (500, 83), (600, 33), (660, 40)]:
            aalto.REPEAT_DELAY_MS, aalto.REPEAT_INTERVAL_MS = delay, interval
            _, got_g = rebuild(files)
            print(f"  {delay} / {interval}: {sum(got_g.get(k) == s.user_input for k, s in expected.items())}")
        aalto.REPEAT_DELAY_MS, aalto.REPEAT_INTERVAL_MS = default
    for (session, section), s, g in bad[: args.show]:
        print(f"- {session} section {section} [{causes[(session, section)].split(' (')[0]}]\n"
              f"    USER_INPUT: {s.user_input!r}\n    rebuilt:    {g!r}")


if __name__ == "__main__":
    main()

"""Replay the Aalto 136M-keystrokes sentences through the typing builder and
list every sentence whose rebuilt text differs from USER_INPUT.

    .venv/bin/python benchmarks/builder/aalto_replay.py [--data ../shared/data/aalto-keystrokes] [--show 40]

Prints the match rate, the mismatches grouped by the shape of the difference
(difflib opcodes: a character missing from the replay, extra text, ...) and by
likely reason (read off the shape: keys the log lacks, text moved or replaced
without keys, extra keys the field did not keep, other characters), and the
first ``--show`` mismatches with USER_INPUT and the rebuilt text.
Baseline in the same run: the converter without its repairs of the log
(``read_aalto(..., repair=False)``: LETTER as typed at PRESS_TIME, BKSP
deletes, no lost-key or stale-time rules) through the same builder.
USER_INPUT is used only here, for comparison: the converter never reads it.
"""

from __future__ import annotations

import argparse
import collections
import difflib
import glob
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


def reason(target: str, got: str) -> str:
    """The likely reason of a mismatch, read off the difference's shape."""
    ops = [o for o in difflib.SequenceMatcher(None, target, got, autojunk=False).get_opcodes() if o[0] != "equal"]
    missing = "".join(target[a:b] for o, a, b, _, _ in ops if o in ("delete", "replace"))
    extra = "".join(got[c:d] for o, _, _, c, d in ops if o in ("insert", "replace"))
    if not extra:
        return "keys missing from the log (the replay lacks characters, no trace in the log)"
    if sorted(missing) == sorted(extra):
        return "text moved without keys (caret placed with the mouse, or keys logged out of order)"
    if not missing and len(extra) >= 3:
        return "text replaced without keys (selected with the mouse and retyped; the replay keeps both)"
    if not missing:
        return "extra keys the field did not keep (dead keys, autocorrection, key repeat)"
    return "other characters than typed (layout without a LETTER column, autocorrection, mouse edits)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "aalto-keystrokes"))
    ap.add_argument("--show", type=int, default=40)
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
    print("mismatches by likely reason:")
    for name, count in collections.Counter(reason(s.user_input, g) for _, s, g in bad).most_common():
        print(f"  {count:4d}  {name}")
    for (session, section), s, g in bad[: args.show]:
        print(f"- {session} section {section}\n    USER_INPUT: {s.user_input!r}\n    rebuilt:    {g!r}")


if __name__ == "__main__":
    main()

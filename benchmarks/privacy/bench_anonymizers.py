#!/usr/bin/env python
"""Privacy vs utility of the typing and cursor anonymizers on real public data.

Baselines measured in the same run: the attacker on raw data and chance.
Each anonymized figure is printed with its ratio to both.

    .venv/bin/python benchmarks/privacy/bench_anonymizers.py \
        --aalto ../shared/data/aalto-keystrokes --balabit ../shared/data/balabit-mouse --out bench-out/privacy

Full data, no subsampling: 150 Aalto participants (all 15 sentences each),
all 65 Balabit training sessions. About 15-25 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console

from tracework.privacy.eval import cursor_eval as ce, typing_eval as te
from tracework.privacy.eval.datasets import load_aalto, load_balabit
from tracework.privacy.eval.report import cursor_plot, cursor_table, typing_plot, typing_table

console = Console(width=220)


def bench_typing(root: str, out: Path, max_people: int | None = None, quick: bool = False) -> None:
    t0 = time.time()
    people = load_aalto(root, max_people=max_people)
    console.print(f"[bold]typing[/]: {len(people)} people, "
                  f"{sum(len(s) for s in people.values())} sentences")
    if not quick:
        for kind, r in te.compare_attackers(people).items():
            console.print(f"  attacker {kind:7s} raw: top-1 per sentence {r.top1_sentence:.3f}, "
                          f"per person (5 sentences) {r.top1_person:.3f}; top-5 {r.top5_sentence:.3f}/{r.top5_person:.3f}")
    sweep = te.default_sweep()
    if quick:  # iteration: only the population rows and the references
        sweep = [r for r in sweep if r[0] != "kloak"]
    rows = te.evaluate(people, sweep)
    console.print(typing_table(rows))
    raw, chance = rows[0].ident, rows[0].ident.chance_top1
    for r in rows[1:]:
        console.print(f"  {r.name} {r.params}: top-1/sentence {r.ident.top1_sentence:.3f} "
                      f"= {r.ident.top1_sentence / raw.top1_sentence:.2f}x raw, {r.ident.top1_sentence / chance:.1f}x chance; "
                      f"top-1/person {r.ident.top1_person:.3f} = {r.ident.top1_person / chance:.1f}x chance")
    typing_plot(rows, out / "privacy_utility_typing.png")
    (out / "results_typing.json").write_text(json.dumps(
        [{"name": r.name, "params": r.params, "ident": r.ident.__dict__, "util": r.util.__dict__ if r.util else None}
         for r in rows], indent=1, default=float))
    console.print(f"typing done in {time.time() - t0:.0f}s")


def bench_cursor(root: str, out: Path, block: int) -> None:
    t0 = time.time()
    users = load_balabit(root)
    console.print(f"[bold]cursor[/]: {len(users)} users, {sum(len(s) for s in users.values())} sessions, "
                  f"{sum(len(x.t) for s in users.values() for x in s)} records; block = {block} actions")
    compared = ce.compare_attackers(users, block)
    for kind, r in compared.items():
        console.print(f"  attacker {kind:7s} raw: top-1 {r.top1:.3f}, top-5 {r.top5:.3f}, AUC {r.auc:.3f}")
    rows = ce.evaluate(users, block=block, raw=compared["logreg"])
    console.print(cursor_table(rows))
    raw = rows[0].ident
    for r in rows[1:]:
        console.print(f"  {r.name} {r.params}: top-1 {r.ident.top1:.3f} = {r.ident.top1 / raw.top1:.2f}x raw, "
                      f"{100 * (r.ident.top1 - raw.chance_top1):+.1f} points over chance; AUC {r.ident.auc:.3f}")
    cursor_plot(rows, out / "privacy_utility_cursor.png")
    (out / "results_cursor.json").write_text(json.dumps(
        [{"name": r.name, "params": r.params, "ident": r.ident.__dict__, "util": r.util.__dict__ if r.util else None}
         for r in rows], indent=1, default=float))
    console.print(f"cursor done in {time.time() - t0:.0f}s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aalto", default="../shared/data/aalto-keystrokes")
    ap.add_argument("--balabit", default="../shared/data/balabit-mouse")
    ap.add_argument("--out", default="bench-out/privacy")
    ap.add_argument("--block", type=int, default=20)
    ap.add_argument("--only", choices=["typing", "cursor"])
    ap.add_argument("--max-people", type=int, default=None, help="typing: first N people only (iteration)")
    ap.add_argument("--quick", action="store_true", help="typing: skip kloak rows and the attacker comparison")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "typing"):
        bench_typing(args.aalto, out, args.max_people, args.quick)
    if args.only in (None, "cursor"):
        bench_cursor(args.balabit, out, args.block)
    return 0


if __name__ == "__main__":
    sys.exit(main())

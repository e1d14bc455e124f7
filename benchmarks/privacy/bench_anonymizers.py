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


def bench_typing_ablation(root: str, out: Path, max_people: int | None = None, seeds: int = 3) -> None:
    """What carries the identification left after the default typing anonymizer (ablation, attacker views)."""
    from collections import Counter

    import numpy as np

    from tracework.privacy.anonymize_stage import DEFAULT_TYPING
    from tracework.privacy.eval import typing_ablation as ta
    from tracework.privacy.typing import TypingParams

    t0 = time.time()
    people = load_aalto(root, max_people=max_people)
    params = TypingParams(**{k: v for k, v in DEFAULT_TYPING.items() if k in TypingParams.__dataclass_fields__})
    console.print(f"[bold]typing ablation[/]: {len(people)} people; default anonymizer {params}")
    # Which modifier keys the data can tell apart: Aalto logs JavaScript key
    # codes, where left and right Shift/Ctrl/Alt share one code.
    mods = Counter((l, c) for ss in people.values() for s in ss for l, c in zip(s.letters, s.keycodes)
                   if l in ("SHIFT", "CAPS_LOCK", "CTRL", "ALT", "WIN"))
    caps_users = sum(any("CAPS_LOCK" in s.letters for s in ss) for ss in people.values())
    console.print(f"  modifier (LETTER, KEYCODE) pairs in the data: {dict(mods)}; "
                  f"{caps_users} of {len(people)} people use CAPS_LOCK")
    raw_m = te.feature_matrices(people)
    anon_m = te.feature_matrices(te.anonymize_people(people, te.population_anonymizer(params), 0))
    full = te.identify_features(anon_m)
    console.print(ta.ablation_table("Ablation, default anonymizer (seed 0), adaptive LDA attacker",
                                    ta.ablation(anon_m), full))
    views = {"raw": ta.attacker_views(raw_m, people)}
    for seed in range(seeds):
        m = anon_m if seed == 0 else te.feature_matrices(
            te.anonymize_people(people, te.population_anonymizer(params), seed))
        views[f"default seed {seed}"] = ta.attacker_views(m, people)
    sigma = 0.065  # median speed error about 4.4 %: the 5 % budget, with a margin
    noisy = te.anonymize_people(people, ta.speed_noise_reference(te.population_anonymizer(params), sigma), 0)
    views[f"default + speed noise {sigma}"] = ta.attacker_views(te.feature_matrices(noisy), people)
    console.print(ta.views_table(f"Attacker views among {len(people)} people (chance top-1 "
                                 f"{100 / len(people):.2f}%)", views))
    for view in views["raw"]:
        accs = [views[f"default seed {s}"][view].top1_sentence for s in range(seeds)]
        console.print(f"  {view}: default anonymizer top-1/sentence mean {100 * np.mean(accs):.1f}% "
                      f"(seeds {', '.join(f'{100 * a:.1f}' for a in accs)}) = {np.mean(accs) * len(people):.1f}x chance; "
                      f"raw {100 * views['raw'][view].top1_sentence:.1f}%")
    u = te.utility(people, noisy)
    console.print(f"  speed noise reference sigma {sigma}: median speed error {100 * u.speed_median_rel_error:.1f}%")
    (out / "results_typing_ablation.json").write_text(json.dumps(
        {name: {v: r.__dict__ for v, r in vs.items()} for name, vs in views.items()}, indent=1, default=float))
    console.print(f"typing ablation done in {time.time() - t0:.0f}s")


def bench_cursor(root: str, out: Path, block: int, max_sessions: int | None = None) -> None:
    t0 = time.time()
    users = load_balabit(root, max_sessions)
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
    ap.add_argument("--max-sessions", type=int, default=None,
                    help="cursor: first N sessions per user (iteration; the last third is still held out)")
    ap.add_argument("--quick", action="store_true", help="typing: skip kloak rows and the attacker comparison")
    ap.add_argument("--ablation", action="store_true",
                    help="typing: feature ablation and attacker views of the default anonymizer instead of the sweep")
    ap.add_argument("--seeds", type=int, default=3, help="typing ablation: anonymizer seeds for the attacker views")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "typing") and args.ablation:
        bench_typing_ablation(args.aalto, out, args.max_people, args.seeds)
    elif args.only in (None, "typing"):
        bench_typing(args.aalto, out, args.max_people, args.quick)
    if args.only in (None, "cursor"):
        bench_cursor(args.balabit, out, args.block, args.max_sessions)
    return 0


if __name__ == "__main__":
    sys.exit(main())

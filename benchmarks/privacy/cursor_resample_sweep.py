#!/usr/bin/env python
"""Cursor anonymizer settings side by side on Balabit: adaptive attackers, floor and utility.

    .venv/bin/python benchmarks/privacy/cursor_resample_sweep.py \
        '{"duration_blend": 1.0}' '{"duration_blend": 0.5}' '{"duration_blend": 0.0}'

Each argument is a CursorParams JSON (an empty '{}' is the default). Raw data is the baseline in
the same run (--skip-raw to leave it out). For each setting: the issue's attacker (22 per-action
features, logistic regression, 20-action blocks, last third of each user's sessions held out;
re-fitted on anonymized data), a stronger one that also sees screen coordinates, sample intervals
and gaps, the endpoint-exact floor (start/end points + click flag only), and the utility measures.
"""

import argparse
import json
import time

from tracework.privacy.cursor import CursorParams
from tracework.privacy.eval import cursor_ablation as ca, cursor_eval as ce
from tracework.privacy.eval.datasets import load_balabit

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("settings", nargs="*", default=["{}"])
ap.add_argument("--balabit", default="../shared/data/balabit-mouse")
ap.add_argument("--max-sessions", type=int, default=None, help="first N sessions per user (iteration)")
ap.add_argument("--skip-raw", action="store_true")
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()
t0 = time.time()
users = load_balabit(args.balabit, args.max_sessions)
chance = 1 / len(users)
print(f"{len(users)} users, {sum(len(s) for s in users.values())} sessions; chance top-1 {chance:.3f}", flush=True)


def attackers(data):
    train, test = ca.action_matrices(data)
    cols = [ca.ALL_NAMES.index(n) for n in ce.FEATURE_NAMES]
    issue = ce.identify_blocks(*ca.blocks(train, cols), *ca.blocks(test, cols))
    strong = ca.identify_subset(train, test, list(ca.GROUPS))
    floor = ca.identify_subset(train, test, ca.FLOOR)
    return issue, strong, floor


def line(label, r):
    return (f"  {label:34s} top-1 {r.top1:.3f} ({100 * (r.top1 - chance):+.1f} pts over chance)  top-5 {r.top5:.3f}"
            f"  AUC {r.auc:.3f}  test blocks {r.n_test_blocks}")


raw_top1 = None
if not args.skip_raw:
    issue, strong, floor = attackers(users)
    raw_top1 = issue.top1
    print(f"\n== raw ({time.time() - t0:.0f}s)")
    for label, r in (("issue attacker (22 features)", issue), ("strong attacker (+coords, gaps)", strong),
                     ("floor (start/end points + click)", floor)):
        print(line(label, r), flush=True)
for js in args.settings:
    params = CursorParams(**json.loads(js))
    params.validate()
    log: list = []
    anon = ce.anonymize_users(users, params, args.seed, log=log)
    issue, strong, floor = attackers(anon)
    util = (ce.utility_resampled(users, anon, log, params.rest_ms) if params.resample == "population"
            else ce.utility(users, anon, params.rest_ms))
    print(f"\n== {js} -> {params} ({time.time() - t0:.0f}s)")
    for label, r in (("issue attacker (22 features)", issue), ("strong attacker (+coords, gaps)", strong),
                     ("floor (start/end points + click)", floor)):
        print(line(label, r), flush=True)
    if raw_top1:
        print(f"  ratio to raw (issue attacker): {issue.top1 / raw_top1:.2f}x")
    print(f"  utility: end-point error {util.endpoint_error_px:g} px, duration error median "
          f"{100 * util.duration_median_rel_error:.1f} %, path-length ratio median {util.path_length_ratio:.2f}, "
          f"real-vs-anon AUC {util.real_vs_anon_auc:.3f}, extra {util.extra}", flush=True)
print(f"\ndone in {time.time() - t0:.0f}s")

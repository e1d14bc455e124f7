#!/usr/bin/env python
"""Which per-action features identify Balabit users, raw and anonymized, and the endpoint-exact floor.

    .venv/bin/python benchmarks/privacy/cursor_ablation.py                 # raw + default anonymizer
    .venv/bin/python benchmarks/privacy/cursor_ablation.py --params '{"resample": "off"}'

Same attacker as bench_anonymizers.py (logistic regression, 20-action blocks, last third of each
user's sessions held out), re-fitted on each subset of feature groups. Chance top-1 = 1 / users.
"""

import argparse
import json
import time

from tracework.privacy.cursor import CursorParams
from tracework.privacy.eval import cursor_ablation as ca, cursor_eval as ce
from tracework.privacy.eval.datasets import load_balabit

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--balabit", default="../shared/data/balabit-mouse")
ap.add_argument("--max-sessions", type=int, default=None, help="first N sessions per user (iteration)")
ap.add_argument("--params", default="{}", help="CursorParams as JSON for the anonymized run")
ap.add_argument("--skip-raw", action="store_true")
args = ap.parse_args()
t0 = time.time()
users = load_balabit(args.balabit, args.max_sessions)
print(f"{len(users)} users, {sum(len(s) for s in users.values())} sessions; chance top-1 {1 / len(users):.3f}")
runs = [] if args.skip_raw else [("raw", users)]
params = CursorParams(**json.loads(args.params))
runs.append((f"anonymized {params}", ce.anonymize_users(users, params, 0)))
for label, data in runs:
    train, test = ca.action_matrices(data)
    print(f"\n== {label} ({time.time() - t0:.0f}s)")
    for name, r in ca.ablation(train, test):
        print(f"  {name:62s} top-1 {r.top1:.3f}  top-5 {r.top5:.3f}  AUC {r.auc:.3f}  (test blocks {r.n_test_blocks})",
              flush=True)
print(f"done in {time.time() - t0:.0f}s")

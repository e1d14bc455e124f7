#!/usr/bin/env python
"""Cursor anonymizer with a duration grid vs the default, adaptive attacker, full Balabit data.

    .venv/bin/python benchmarks/privacy/cursor_duration_grid.py 0.25   # grid on
    .venv/bin/python benchmarks/privacy/cursor_duration_grid.py 0.0    # the default, same run conditions

Prints the attacker's result (top-1, top-5, AUC; chance top-1 = 1 / users) and the utility
measures. Caveat: the utility measure re-cuts anonymized sessions into actions at 300 ms rests;
a grid > 0 starts movements later and so changes where it cuts, which misaligns the paired
actions: its end-point and duration figures are then not meaningful (the property tests check
those invariants instead).
"""

import sys
import time

from tracework.privacy.cursor import CursorParams
from tracework.privacy.eval import cursor_eval as ce
from tracework.privacy.eval.datasets import load_balabit

t0 = time.time()
users = load_balabit(sys.argv[2] if len(sys.argv) > 2 else "../shared/data/balabit-mouse")
grid = float(sys.argv[1])
# The grid belongs to the keep-every-sample mode (the earlier default); the re-sampling
# default refuses it (CursorParams.validate).
params = CursorParams(duration_grid=grid, resample="off")
params.validate()
anon = ce.anonymize_users(users, params, 0)
print("duration_grid", grid, "chance top-1", 1 / len(users), ce.identify(anon, 20), f"{time.time() - t0:.0f}s", flush=True)
print("utility", ce.utility(users, anon), f"{time.time() - t0:.0f}s", flush=True)

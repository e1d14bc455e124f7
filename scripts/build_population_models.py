#!/usr/bin/env python
"""Build the population models the anonymizers ship with.

Typing: quantiles of the gap between consecutive key events per transition
class (see tracework.privacy.typing.gap_classes), pooled over every
participant of the Aalto 136M Keystrokes sample (Dhakal et al., CHI 2018).
Cursor: quantiles of movement-shape statistics (curvature, overshoot, timing
of peak speed, sub-movement count, jitter) pooled over the Balabit Mouse
Dynamics Challenge training sessions (Fülöp et al. 2016).

Only pooled quantiles are written (no per-person values, no raw sequences);
a class seen from fewer than MIN_PEOPLE people or MIN_COUNT gaps is left out
so that it falls back to a coarser class.

    .venv/bin/python scripts/build_population_models.py \
        --aalto ../shared/data/aalto-keystrokes --balabit ../shared/data/balabit-mouse
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from tracework.privacy.typing import gap_classes, _coarser

OUT = Path(__file__).resolve().parent.parent / "src/tracework/privacy/models"
N_QUANTILES = 41
MIN_COUNT = 200
MIN_PEOPLE = 20
MAX_GAP_MS = 2000.0  # longer gaps are pauses, never drawn from the model


def build_typing(root: str) -> dict:
    from tracework.privacy.eval.datasets import load_aalto

    people = load_aalto(root)
    gaps: dict[str, list[float]] = defaultdict(list)
    who: dict[str, set] = defaultdict(set)
    for pid, sentences in people.items():
        for s in sentences:
            seq = s.key_sequence()
            d = np.diff(seq.t_ns) / 1e6
            for label, g in zip(gap_classes(seq), d):
                if g >= MAX_GAP_MS:
                    continue
                for lab in _coarser(label):
                    gaps[lab].append(g)
                    who[lab].add(pid)
    probs = np.linspace(0.005, 0.995, N_QUANTILES)
    quantiles = {}
    counts = {}
    for lab, vals in sorted(gaps.items()):
        if len(vals) >= MIN_COUNT and len(who[lab]) >= MIN_PEOPLE:
            quantiles[lab] = [round(float(v), 2) for v in np.quantile(vals, probs)]
            counts[lab] = len(vals)
    all_vals = [g for lab, v in gaps.items() if "|" not in lab for g in v]
    quantiles["*"] = [round(float(v), 2) for v in np.quantile(all_vals, probs)]
    return {
        "meta": {
            "what": "quantiles (ms) of the gap between consecutive key events, per transition class",
            "source": "Aalto 136M Keystrokes sample, Dhakal, Feit, Kristensson, Oulasvirta, CHI 2018",
            "people": len(people),
            "probabilities": [round(float(p), 4) for p in probs],
            "max_gap_ms": MAX_GAP_MS,
            "min_count": MIN_COUNT,
            "min_people": MIN_PEOPLE,
            "counts": counts,
        },
        "quantiles": quantiles,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aalto", default="../shared/data/aalto-keystrokes")
    ap.add_argument("--balabit", default="../shared/data/balabit-mouse")
    ap.add_argument("--only", choices=["typing", "cursor"], default=None)
    args = ap.parse_args(argv)
    if args.only in (None, "typing"):
        doc = build_typing(args.aalto)
        (OUT / "typing_population.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        print(f"typing: {len(doc['quantiles'])} classes from {doc['meta']['people']} people")
    if args.only in (None, "cursor"):
        from tracework.privacy.eval.cursor_eval import build_cursor_population

        doc = build_cursor_population(args.balabit)
        (OUT / "cursor_population.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        print(f"cursor: {len(doc['quantiles'])} statistics from {doc['meta']['users']} users")
    return 0


if __name__ == "__main__":
    sys.exit(main())

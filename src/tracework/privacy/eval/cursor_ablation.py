"""Which per-action features identify Balabit users, and the endpoint-exact floor.

The mouse attacker of :mod:`cursor_eval` describes each action by 22
features. This module extends them with what an anonymizer that keeps click
positions exact cannot hide (start and end coordinates) and with the
sampling pattern (intervals between samples), then re-fits the same
attacker (logistic regression, 20-action blocks, held-out last third of
sessions) on subsets of feature groups:

* drop one group / keep one group, to see what carries the identification;
* the *floor*: only what an endpoint-exact anonymizer must keep (where each
  movement starts and ends, and whether it ends in a click). No anonymizer
  that keeps click positions exact can push the attacker below this.

Per-action features are computed once per session; each subset only
re-fits the classifier, so a full ablation costs about one attacker run.
"""

from __future__ import annotations

import numpy as np

from .cursor_eval import (FEATURE_NAMES, Action, _signed_log, action_features, identify_blocks, session_actions,
                          split_sessions)
from .datasets import MouseSession

EXTRA_NAMES = ["start_x", "start_y", "end_x", "end_y", "dt_mean", "dt_std", "dt_median", "gap_before"]
ALL_NAMES = FEATURE_NAMES + EXTRA_NAMES

# Feature groups (names from ALL_NAMES). "position" holds the coordinates the
# endpoint-exact anonymizer keeps; "geometry" is derived from them too.
GROUPS: dict[str, list[str]] = {
    "sampling": ["n", "dt_mean", "dt_std", "dt_median"],
    "duration": ["duration"],
    "geometry": ["distance", "dir_sin", "dir_cos"],
    "position": ["start_x", "start_y", "end_x", "end_y"],
    "click": ["click"],
    "gap": ["gap_before"],
    "shape_speed": ["path_len", "straightness", "v_mean", "v_std", "v_max", "a_mean", "a_std", "a_max",
                    "j_mean", "j_std", "w_mean", "w_std", "c_mean", "c_std", "t_peak", "max_dev"],
}

# What an endpoint-exact anonymizer must keep: start/end points (and so the
# distance and direction between them) and the click flag.
FLOOR = ["position", "geometry", "click"]


def extended_features(a: Action, prev_end_t: float | None) -> np.ndarray | None:
    """The 22 attacker features plus coordinates, sample intervals and the gap before the action."""
    base = action_features(a)
    if base is None:
        return None
    t = a.t
    keep = np.append(np.diff(t) > 0, True)
    dt = np.diff(t[keep])
    sx, sy = a.start if a.start is not None else (int(a.x[0]), int(a.y[0]))
    gap = float(t[0] - prev_end_t) if prev_end_t is not None else 0.0
    extra = [sx, sy, int(a.x[-1]), int(a.y[-1]),
             float(dt.mean()) if len(dt) else 0.0, float(dt.std()) if len(dt) else 0.0,
             float(np.median(dt)) if len(dt) else 0.0, max(gap, 0.0)]
    return np.concatenate([base, np.array(extra, dtype=float)])


def session_action_matrix(s: MouseSession, rest_ms: float = 300.0) -> np.ndarray:
    """(actions × ALL_NAMES) feature matrix of one session."""
    rows = []
    prev = None
    for a in session_actions(s, rest_ms):
        f = extended_features(a, prev)
        prev = float(a.t[-1])
        if f is not None:
            rows.append(f)
    return np.array(rows) if rows else np.zeros((0, len(ALL_NAMES)))


def _matrix_job(args):
    s, rest_ms = args
    return s.user, session_action_matrix(s, rest_ms)


def action_matrices(users: dict[str, list[MouseSession]], rest_ms: float = 300.0, workers: int = 2):
    """(train, test): lists of (user, action matrix) for the session split."""
    train, test = split_sessions(users)
    jobs = [(s, rest_ms) for s in train + test]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            done = list(ex.map(_matrix_job, jobs, chunksize=1))
    else:
        done = [_matrix_job(j) for j in jobs]
    return done[:len(train)], done[len(train):]


def blocks(mats, columns: list[int], block: int = 20, stats=("mean", "std", "median")):
    """Block feature vectors from action matrices, using only ``columns``."""
    xs, ys = [], []
    for user, m in mats:
        for k in range(0, len(m) - block + 1, block):
            b = _signed_log(m[k:k + block][:, columns])
            parts = []
            for st in stats:
                if st == "mean":
                    parts.append(b.mean(0))
                elif st == "std":
                    parts.append(b.std(0))
                elif st == "median":
                    parts.append(np.median(b, 0))
                elif st.startswith("q"):
                    parts.append(np.quantile(b, float(st[1:]) / 100, axis=0))
            xs.append(np.concatenate(parts))
            ys.append(user)
    return np.array(xs), np.array(ys)


def columns_of(groups: list[str]) -> list[int]:
    """Column indices of the named feature groups."""
    return [ALL_NAMES.index(n) for g in groups for n in GROUPS[g]]


def identify_subset(train, test, groups: list[str], block: int = 20, stats=("mean", "std", "median")):
    """The attacker (logistic regression) on the given feature groups only."""
    cols = columns_of(groups)
    return identify_blocks(*blocks(train, cols, block, stats), *blocks(test, cols, block, stats))


def ablation(train, test, block: int = 20) -> list[tuple[str, object]]:
    """Rows (label, MouseIdResult): the original attacker's features, drop-one, keep-one, the floor."""
    original = [g for g in GROUPS if g not in ("position", "gap")]
    original_cols = [ALL_NAMES.index(n) for n in FEATURE_NAMES]
    out = [("original 22 features", identify_blocks(*blocks(train, original_cols, block),
                                                     *blocks(test, original_cols, block)))]
    out.append(("all groups (original + position + sampling intervals + gap)", identify_subset(train, test, list(GROUPS), block)))
    for g in original:
        out.append((f"original without {g}", identify_subset(train, test, [h for h in original if h != g], block)))
    for g in GROUPS:
        out.append((f"only {g}", identify_subset(train, test, [g], block)))
    out.append(("FLOOR: start/end points + click flag", identify_subset(train, test, FLOOR, block)))
    out.append(("FLOOR, block quantiles 10/25/50/75/90 added",
                identify_subset(train, test, FLOOR, block, ("mean", "std", "median", "q10", "q25", "q75", "q90"))))
    out.append(("floor + gap before each action (kept click/rest timing)", identify_subset(train, test, FLOOR + ["gap"], block)))
    out.append(("floor + duration", identify_subset(train, test, FLOOR + ["duration"], block)))
    out.append(("floor + sampling", identify_subset(train, test, FLOOR + ["sampling"], block)))
    return out


__all__ = ["ALL_NAMES", "FLOOR", "GROUPS", "ablation", "action_matrices", "identify_subset"]

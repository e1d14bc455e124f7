"""Mouse-dynamics attacker and utility measures for the cursor anonymizer.

The attacker (closed-set identification among the users of a Balabit-style
folder, 10 in the Balabit training set):

* Actions: a session's move samples cut at rests (gap >= rest_ms) and at
  button and scroll events, as in Antal & Egyed-Zsigmond 2019 (MM / PC
  actions). Actions with fewer than 4 samples after merging samples with
  the same timestamp are skipped.
* Per-action features: duration, distance, path length, straightness,
  direction (sin/cos), sample count, speed mean/std/max, acceleration
  mean/std/max, jerk mean/std, angular velocity mean/std, curvature
  mean/std, time to peak speed, largest sideways deviation, click or not.
* Test unit: a block of ``block`` consecutive actions of one session
  (default 20), described by the mean, std and median of each feature.
* Split: the last third of each user's sessions (at least one) is held out;
  the attacker never sees a test session during training.
* Classifier: standard scaling + logistic regression, the strongest of the
  three compared in ``compare_attackers`` (random forest and extra-trees with
  500 trees were 4-5 points lower at 20-action blocks on Balabit).

The adaptive attacker is re-fitted on anonymized training sessions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..cursor import CursorModel, CursorParams, anonymize_segment, default_model, resample_segment, split_segments
from .datasets import MouseSession, load_balabit

MOVE_STATES = ("Move", "Drag")
CLICK_STATES = ("Pressed", "Released")


@dataclass
class Action:
    """One movement segment: samples (t in s, x, y), start point, whether a click ended it."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    click: bool
    start: tuple[int, int] | None


def session_actions(s: MouseSession, rest_ms: float = 300.0) -> list[Action]:
    """The movement segments of a session, in order."""
    out: list[Action] = []
    is_move = np.isin(s.state, MOVE_STATES)
    n = len(s.t)
    i = 0
    last_pos: tuple[int, int] | None = None
    while i < n:
        if not is_move[i]:
            last_pos = (int(s.x[i]), int(s.y[i]))
            i += 1
            continue
        j = i
        while j < n and is_move[j]:
            j += 1
        ends_in_click = j < n and s.state[j] == "Pressed"
        segs = split_segments((s.t[i:j] * 1e9).astype(np.int64), rest_ms)
        for k, sl in enumerate(segs):
            a, b = i + sl.start, i + sl.stop
            out.append(Action(s.t[a:b], s.x[a:b], s.y[a:b], ends_in_click and k == len(segs) - 1, last_pos))
            last_pos = (int(s.x[b - 1]), int(s.y[b - 1]))
        i = j
    return out


def anonymize_session(s: MouseSession, rng: np.random.Generator, params: CursorParams | None = None,
                      model: CursorModel | None = None, log: list | None = None) -> MouseSession:
    """A copy of ``s`` with every movement segment re-shaped (clicks, scrolls untouched).

    With ``params.resample == "population"`` segments may change their number
    of samples (as the agent's stage does); ``log``, if given, receives one
    ``(orig_duration_s, new_duration_s, orig_path_px, new_path_px, end_error_px)``
    per segment whose start is known, for the utility measures.
    """
    params = params or CursorParams()
    if params.resample == "population":
        return _resample_session(s, rng, params, model, log)
    phase = float(rng.random()) if params.duration_grid > 0 else 0.0  # one per session
    t = s.t.copy()
    x = s.x.copy()
    y = s.y.copy()
    is_move = np.isin(s.state, MOVE_STATES)
    n = len(t)
    i = 0
    last_pos: tuple[int, int] | None = None
    while i < n:
        if not is_move[i]:
            last_pos = (int(x[i]), int(y[i]))
            i += 1
            continue
        j = i
        while j < n and is_move[j]:
            j += 1
        tn = np.round(s.t[i:j] * 1e9).astype(np.int64)
        for sl in split_segments(tn, params.rest_ms):
            a, b = i + sl.start, i + sl.stop
            nt, nx, ny = anonymize_segment(last_pos, tn[sl], s.x[a:b], s.y[a:b], rng, params, model, phase)
            t[a:b] = nt / 1e9
            t[b - 1] = s.t[b - 1]  # keep the exact float end time
            t[a] = s.t[a]
            x[a:b], y[a:b] = nx, ny
            last_pos = (int(x[b - 1]), int(y[b - 1]))
        i = j
    return MouseSession(s.user, s.session, t, s.button, s.state, x, y)


def _path_len(x0, y0, x, y) -> float:
    xs = np.concatenate([[x0], x]).astype(float)
    ys = np.concatenate([[y0], y]).astype(float)
    return float(np.hypot(np.diff(xs), np.diff(ys)).sum())


def _resample_session(s: MouseSession, rng: np.random.Generator, params: CursorParams,
                      model: CursorModel | None, log: list | None) -> MouseSession:
    """The agent stage's re-sampling on a Balabit session (same start limits as ``CursorStage``)."""
    t_out: list[np.ndarray] = []
    b_out: list[np.ndarray] = []
    st_out: list[np.ndarray] = []
    x_out: list[np.ndarray] = []
    y_out: list[np.ndarray] = []
    is_move = np.isin(s.state, MOVE_STATES)
    n = len(s.t)
    i = 0
    last_pos: tuple[int, int] | None = None
    last_ns: int | None = None
    last_move = False
    rest_ns = int(params.rest_ms * 1_000_000)
    while i < n:
        if not is_move[i]:
            last_pos = (int(s.x[i]), int(s.y[i]))
            last_ns, last_move = int(round(s.t[i] * 1e9)), False
            t_out.append(s.t[i:i + 1]); b_out.append(s.button[i:i + 1]); st_out.append(s.state[i:i + 1])
            x_out.append(s.x[i:i + 1]); y_out.append(s.y[i:i + 1])
            i += 1
            continue
        j = i
        while j < n and is_move[j]:
            j += 1
        tn = np.round(s.t[i:j] * 1e9).astype(np.int64)
        for sl in split_segments(tn, params.rest_ms):
            a, b = i + sl.start, i + sl.stop
            seg_t = tn[sl]
            not_before = last_ns
            if not_before is not None and last_move:
                not_before = min(not_before + rest_ns, int(seg_t[0]))
            nt, nx, ny = resample_segment(last_pos, seg_t, s.x[a:b], s.y[a:b], rng, params, model, not_before)
            tf = nt / 1e9
            tf[-1] = s.t[b - 1]  # the exact float end time
            if log is not None and last_pos is not None and b - a >= 2:
                own = float(s.t[b - 1] - s.t[a] + max(float(np.median(np.diff(s.t[a:b]))), 0.0))
                new = float(nt[-1] - (nt[0] - (nt[1] - nt[0] if len(nt) > 1 else 0))) / 1e9
                log.append((own, new, _path_len(*last_pos, s.x[a:b], s.y[a:b]), _path_len(*last_pos, nx, ny),
                            float(max(abs(int(nx[-1]) - int(s.x[b - 1])), abs(int(ny[-1]) - int(s.y[b - 1]))))))
            t_out.append(tf); x_out.append(nx); y_out.append(ny)
            b_out.append(np.full(len(nt), s.button[b - 1], dtype=s.button.dtype))
            st_out.append(np.full(len(nt), s.state[b - 1], dtype=s.state.dtype))
            last_pos = (int(nx[-1]), int(ny[-1]))
            last_ns, last_move = int(nt[-1]), True
        i = j
    cat = lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dtype=dt)  # noqa: E731
    return MouseSession(s.user, s.session, cat(t_out, float), cat(b_out, s.button.dtype), cat(st_out, s.state.dtype),
                        cat(x_out, np.int64).astype(np.int64), cat(y_out, np.int64).astype(np.int64))


FEATURE_NAMES = [
    "duration", "distance", "path_len", "straightness", "dir_sin", "dir_cos", "n", "v_mean", "v_std",
    "v_max", "a_mean", "a_std", "a_max", "j_mean", "j_std", "w_mean", "w_std", "c_mean", "c_std",
    "t_peak", "max_dev", "click",
]


def action_features(a: Action) -> np.ndarray | None:
    """Per-action features (see module docstring), None if the action is too short."""
    t, x, y = a.t, a.x.astype(float), a.y.astype(float)
    # Merge samples that share a timestamp (RDP batches them): keep the last.
    keep = np.append(np.diff(t) > 0, True)
    t, x, y = t[keep], x[keep], y[keep]
    if a.start is not None and len(t) >= 2:
        dt0 = float(np.median(np.diff(t)))
        t = np.concatenate([[t[0] - dt0], t])
        x = np.concatenate([[a.start[0]], x])
        y = np.concatenate([[a.start[1]], y])
    if len(t) < 4:
        return None
    dt = np.diff(t)
    dx, dy = np.diff(x), np.diff(y)
    ds = np.hypot(dx, dy)
    path = float(ds.sum())
    chord_x, chord_y = x[-1] - x[0], y[-1] - y[0]
    dist = float(np.hypot(chord_x, chord_y))
    if path <= 0:
        return None
    v = ds / dt
    acc = np.diff(v) / dt[1:]
    jerk = np.diff(acc) / dt[2:] if len(acc) > 1 else np.zeros(1)
    ang = np.unwrap(np.arctan2(dy, dx))
    w = np.diff(ang) / dt[1:]
    curv = np.diff(ang) / np.maximum(ds[1:], 1e-9)
    if dist > 0:
        dev = np.abs((x - x[0]) * chord_y - (y - y[0]) * chord_x) / dist
        max_dev = float(dev.max() / dist)
    else:
        max_dev = 0.0
    dur = float(t[-1] - t[0])
    f = [
        dur, dist, path, dist / path, chord_y / (dist or 1), chord_x / (dist or 1), len(t),
        v.mean(), v.std(), v.max(), acc.mean(), acc.std(), np.abs(acc).max(),
        jerk.mean(), jerk.std(), w.mean(), w.std(), curv.mean(), curv.std(),
        float((t[1:][np.argmax(v)] - t[0]) / dur) if dur > 0 else 0.0, max_dev, float(a.click),
    ]
    out = np.array(f, dtype=float)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def _signed_log(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.log1p(np.abs(v))


def session_blocks(s: MouseSession, block: int, rest_ms: float) -> list[np.ndarray]:
    """Block-level feature vectors (mean, std, median of action features)."""
    feats = [f for f in (action_features(a) for a in session_actions(s, rest_ms)) if f is not None]
    out = []
    for k in range(0, len(feats) - block + 1, block):
        m = _signed_log(np.array(feats[k:k + block]))
        out.append(np.concatenate([m.mean(0), m.std(0), np.median(m, 0)]))
    return out


def split_sessions(users: dict[str, list[MouseSession]]):
    """(train sessions, test sessions): the last third of each user's sessions is held out."""
    train, test = [], []
    for u, sessions in users.items():
        n_test = max(1, len(sessions) // 3) if len(sessions) > 1 else 0
        train += sessions[: len(sessions) - n_test]
        test += sessions[len(sessions) - n_test:]
    return train, test


@dataclass
class MouseIdResult:
    """Block-level identification among the users."""

    top1: float
    top5: float
    auc: float
    n_users: int
    n_test_blocks: int
    n_train_blocks: int

    @property
    def chance_top1(self) -> float:
        return 1.0 / self.n_users


def _session_blocks_job(args):
    s, block, rest_ms = args
    return [(v, s.user) for v in session_blocks(s, block, rest_ms)]


def _blocks(sessions, block, rest_ms, workers: int = 2):
    """Block features of many sessions (in ``workers`` processes: it is the slow part)."""
    jobs = [(s, block, rest_ms) for s in sessions]
    if workers > 1 and len(jobs) > 4:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            parts = list(ex.map(_session_blocks_job, jobs, chunksize=1))
    else:
        parts = [_session_blocks_job(j) for j in jobs]
    pairs = [p for part in parts for p in part]
    return np.array([v for v, _ in pairs]), np.array([u for _, u in pairs])


def _classifier(kind: str, n_train: int = 10**6):
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Small folders (tests, --max-sessions) do not need 500 trees.
    trees = 500 if n_train >= 1000 else 100
    if kind == "rf":
        return RandomForestClassifier(n_estimators=trees, n_jobs=2, random_state=0)
    if kind == "et":
        return ExtraTreesClassifier(n_estimators=trees, n_jobs=2, random_state=0)
    if kind == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000))
    raise ValueError(f"unknown attacker classifier {kind!r}")


def block_features(users, block: int = 20, rest_ms: float = 300.0):
    """(x_train, y_train, x_test, y_test) blocks for the session split."""
    train, test = split_sessions(users)
    return (*_blocks(train, block, rest_ms), *_blocks(test, block, rest_ms))


def identify_blocks(xtr, ytr, xte, yte, classifier: str = "logreg") -> MouseIdResult:
    """Fit the attacker on training blocks, score it on test blocks."""
    from sklearn.metrics import roc_auc_score

    clf = _classifier(classifier, len(ytr))
    clf.fit(xtr, ytr)
    proba = clf.predict_proba(xte)
    classes = list(clf.classes_)
    truth = np.array([classes.index(u) for u in yte])
    order = np.argsort(-proba, axis=1)
    top1 = float(np.mean(order[:, 0] == truth))
    top5 = float(np.mean([t in row[:5] for t, row in zip(truth, order)]))
    try:
        present = sorted(set(truth))
        auc = float(roc_auc_score(truth, proba[:, present] / proba[:, present].sum(1, keepdims=True),
                                  multi_class="ovr", labels=present)) if len(present) > 2 else float("nan")
    except ValueError:
        auc = float("nan")
    return MouseIdResult(top1, top5, auc, len(classes), len(yte), len(ytr))


def identify(users: dict[str, list[MouseSession]], block: int = 20, rest_ms: float = 300.0,
             classifier: str = "logreg") -> MouseIdResult:
    """Identification of the user from held-out session blocks."""
    return identify_blocks(*block_features(users, block, rest_ms), classifier)


def compare_attackers(users, block: int = 20, kinds=("logreg", "rf", "et")) -> dict[str, MouseIdResult]:
    """Raw-data accuracy of each classifier, to justify the attacker chosen."""
    feats = block_features(users, block)
    return {k: identify_blocks(*feats, k) for k in kinds}


def _anonymize_job(args):
    s, seed, params, model = args
    log: list = []
    return anonymize_session(s, np.random.default_rng(seed), params, model, log), log


def anonymize_users(users, params: CursorParams, seed: int = 0, model: CursorModel | None = None,
                    workers: int = 2, log: list | None = None):
    """Every session through the cursor anonymizer (seeded per session, so reproducible).

    log: if given, receives the per-segment records of :func:`anonymize_session`
    (re-sampling mode only)."""
    jobs = [(s, [seed, k], params, model) for k, s in enumerate(s for ss in users.values() for s in ss)]
    if workers > 1 and len(jobs) > 4:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            done = list(ex.map(_anonymize_job, jobs, chunksize=1))
    else:
        done = [_anonymize_job(j) for j in jobs]
    out: dict[str, list[MouseSession]] = {u: [] for u in users}
    for s, seg_log in done:
        out[s.user].append(s)
        if log is not None:
            log += seg_log
    return out


@dataclass
class CursorUtility:
    """What survives: endpoints, durations, path lengths, realism."""

    endpoint_error_px: float  # max over segment ends, clicks and scrolls (must be 0)
    duration_median_rel_error: float
    path_length_ratio: float  # median anonymized / real path length
    real_vs_anon_auc: float  # RF telling anonymized from real actions (0.5 = indistinguishable)
    extra: dict = field(default_factory=dict)


def utility(real, anon, rest_ms: float = 300.0, max_actions: int = 3000, seed: int = 0) -> CursorUtility:
    """Utility measures between real and anonymized sessions."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_val_score

    end_err = 0.0
    dur_err, len_ratio, fr, fa = [], [], [], []
    for u in real:
        for sr, sa in zip(real[u], anon[u]):
            fixed = ~np.isin(sr.state, MOVE_STATES)
            if fixed.any():
                end_err = max(end_err, float(np.abs(sr.x[fixed] - sa.x[fixed]).max()),
                              float(np.abs(sr.y[fixed] - sa.y[fixed]).max()))
            for ar, aa in zip(session_actions(sr, rest_ms), session_actions(sa, rest_ms)):
                end_err = max(end_err, float(abs(ar.x[-1] - aa.x[-1])), float(abs(ar.y[-1] - aa.y[-1])))
                d = ar.t[-1] - ar.t[0]
                if d > 0:
                    dur_err.append(abs((aa.t[-1] - aa.t[0]) - d) / d)
                lr = np.hypot(np.diff(ar.x), np.diff(ar.y)).sum()
                la = np.hypot(np.diff(aa.x), np.diff(aa.y)).sum()
                if lr > 0:
                    len_ratio.append(la / lr)
                fr.append(ar)
                fa.append(aa)
    # The realism classifier looks at a random sample of action pairs
    # (feature extraction is the slow part; the checks above cover all).
    rng = np.random.default_rng(seed)
    pairs = [(action_features(fr[i]), action_features(fa[i])) for i in rng.permutation(len(fr))[:max_actions]]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    fr = [a for a, _ in pairs]
    fa = [b for _, b in pairs]
    idx = np.arange(len(fr))
    # Shape features only: endpoint- and duration-derived ones are identical by design.
    shape = [i for i, n in enumerate(FEATURE_NAMES) if n not in ("duration", "distance", "dir_sin", "dir_cos", "n", "click")]
    X = _signed_log(np.vstack([np.array(fr)[idx][:, shape], np.array(fa)[idx][:, shape]]))
    Y = np.r_[np.zeros(len(idx)), np.ones(len(idx))]
    auc = float(np.mean(cross_val_score(RandomForestClassifier(n_estimators=200 if len(idx) > 1000 else 60,
                                                               n_jobs=2 if len(idx) > 1000 else 1, random_state=0),
                                        X, Y, cv=5, scoring="roc_auc")))
    return CursorUtility(end_err, float(np.median(dur_err)) if dur_err else 0.0,
                         float(np.median(len_ratio)) if len_ratio else 1.0, auc,
                         {"actions_compared": len(idx)})


def _realism_auc(real_actions: list[Action], anon_actions: list[Action], max_actions: int, seed: int) -> tuple[float, int]:
    """AUC of a random forest telling anonymized from real actions by shape (0.5 = indistinguishable).

    Sample count and the features fixed by the end points are left out, as in :func:`utility`."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(seed)
    fr = [f for f in (action_features(real_actions[i]) for i in rng.permutation(len(real_actions))[:max_actions])
          if f is not None]
    fa = [f for f in (action_features(anon_actions[i]) for i in rng.permutation(len(anon_actions))[:max_actions])
          if f is not None]
    k = min(len(fr), len(fa))
    if k < 20:
        return float("nan"), k
    shape = [i for i, n in enumerate(FEATURE_NAMES) if n not in ("duration", "distance", "dir_sin", "dir_cos", "n", "click")]
    X = _signed_log(np.vstack([np.array(fr[:k])[:, shape], np.array(fa[:k])[:, shape]]))
    Y = np.r_[np.zeros(k), np.ones(k)]
    auc = float(np.mean(cross_val_score(RandomForestClassifier(n_estimators=200 if k > 1000 else 60,
                                                               n_jobs=2 if k > 1000 else 1, random_state=0),
                                        X, Y, cv=5, scoring="roc_auc")))
    return auc, k


def utility_resampled(real, anon, log: list, rest_ms: float = 300.0, max_actions: int = 3000,
                      seed: int = 0) -> CursorUtility:
    """Utility when segments were re-sampled (sample counts differ, so actions cannot be paired).

    End-point error: every click/scroll record (same records, same order) and
    every segment end from the anonymizer's log. Duration error and path
    length ratio: per segment, from the log. Realism: unpaired samples of
    real and anonymized actions.
    """
    end_err = 0.0
    ra, aa = [], []
    for u in real:
        for sr, sa in zip(real[u], anon[u]):
            fr = ~np.isin(sr.state, MOVE_STATES)
            fa = ~np.isin(sa.state, MOVE_STATES)
            if fr.sum() != fa.sum() or not np.array_equal(sr.t[fr], sa.t[fa]):
                end_err = float("inf")  # a click or scroll was lost, added or moved in time
            elif fr.any():
                end_err = max(end_err, float(np.abs(sr.x[fr] - sa.x[fa]).max()),
                              float(np.abs(sr.y[fr] - sa.y[fa]).max()))
            ra += session_actions(sr, rest_ms)
            aa += session_actions(sa, rest_ms)
    arr = np.array(log, dtype=float).reshape(-1, 5)
    if len(arr):
        end_err = max(end_err, float(arr[:, 4].max()))
    ok = arr[:, 0] > 0
    dur_err = np.abs(arr[ok, 1] - arr[ok, 0]) / arr[ok, 0]
    okl = arr[:, 2] > 0
    auc, k = _realism_auc(ra, aa, max_actions, seed)
    return CursorUtility(end_err, float(np.median(dur_err)) if len(dur_err) else 0.0,
                         float(np.median(arr[okl, 3] / arr[okl, 2])) if okl.any() else 1.0, auc,
                         {"actions_compared": k, "segments": int(len(arr)),
                          "duration_rel_error_p90": float(np.quantile(dur_err, 0.9)) if len(dur_err) else 0.0,
                          # Movements given no time at all (an immediate next event) count as 1 ms.
                          "duration_log_ratio_median": float(np.median(np.log(np.maximum(arr[ok, 1], 1e-3)
                                                                                / arr[ok, 0])))
                          if ok.any() else 0.0})


def anonymize_and_measure(users, params: CursorParams, block: int = 20, seed: int = 0):
    """(identification with an adaptive attacker, utility) for one setting."""
    log: list = []
    anon = anonymize_users(users, params, seed, log=log)
    ident = identify(anon, block, params.rest_ms)
    if params.resample == "population":
        return ident, utility_resampled(users, anon, log, params.rest_ms)
    return ident, utility(users, anon, params.rest_ms)


@dataclass
class CursorRow:
    """One line of the evaluation table."""

    name: str
    params: dict
    ident: MouseIdResult
    util: CursorUtility | None


def default_sweep() -> list[tuple[str, dict, CursorParams]]:
    """The re-sampling anonymizer at several duration blends, and the earlier keep-every-sample mode."""
    rows = []
    for blend in (1.0, 0.5, 0.0):
        rows.append(("synthetic_path", {"resample": "population", "duration_blend": blend},
                     CursorParams(duration_blend=blend)))
    rows.append(("synthetic_path", {"resample": "off", "retime": True}, CursorParams(resample="off")))
    return rows


def evaluate(users, sweep=None, block: int = 20, seed: int = 0, progress=None,
             raw: MouseIdResult | None = None) -> list[CursorRow]:
    """Raw attacker (or ``raw`` if already measured), then each setting with an adaptive attacker."""
    sweep = default_sweep() if sweep is None else sweep
    rows = [CursorRow("raw", {}, raw or identify(users, block), None)]
    if progress:
        progress()
    for name, params_dict, params in sweep:
        rows.append(CursorRow(name, params_dict, *anonymize_and_measure(users, params, block, seed)))
        if progress:
            progress()
    return rows


# ---- population model ------------------------------------------------------------

def segment_shape_stats(a: Action) -> dict[str, float] | None:
    """Shape statistics of one real movement (the model's raw material)."""
    if a.start is None or len(a.t) < 4:
        return None
    x = np.concatenate([[a.start[0]], a.x]).astype(float)
    y = np.concatenate([[a.start[1]], a.y]).astype(float)
    t = np.concatenate([[a.t[0] - float(np.median(np.diff(a.t)))], a.t])
    dx, dy = x[-1] - x[0], y[-1] - y[0]
    dist = float(np.hypot(dx, dy))
    if dist < 50 or t[-1] <= t[0]:
        return None
    ux, uy = dx / dist, dy / dist
    along = ((x - x[0]) * ux + (y - y[0]) * uy) / dist
    side = ((x - x[0]) * -uy + (y - y[0]) * ux) / dist
    ds = np.hypot(np.diff(x), np.diff(y))
    dt = np.maximum(np.diff(t), 1e-3)
    v = ds / dt
    pk = int(np.argmax(v))
    after = np.nonzero(v[pk:] < 0.2 * v[pk])[0]
    stop = pk + (int(after[0]) if len(after) else len(v) - 1 - pk)
    stop = min(stop + 1, len(x) - 1)
    frac = float((t[stop] - t[0]) / (t[-1] - t[0]))
    bow_i = int(np.argmax(np.abs(side)))
    resid = np.diff(side, 2) if len(side) > 3 else np.zeros(1)
    return {
        "bow": float(side[bow_i]),
        "along_error": float(along[stop] - 1.0),
        "side_error": float(side[stop]),
        "primary_fraction": frac,
        "tremor": float(np.std(resid) / 4),
    }


def segment_duration_ms(a: Action) -> tuple[float, float] | None:
    """(distance px, duration ms) of a movement whose start is known.

    Duration as the anonymizer measures it: last sample time minus first,
    plus one (median) sample interval for the motion onset before the first
    sample."""
    if a.start is None or len(a.t) < 2:
        return None
    dur = float(a.t[-1] - a.t[0] + max(float(np.median(np.diff(a.t))), 0.0)) * 1000.0
    if dur <= 0:
        return None
    return float(np.hypot(a.x[-1] - a.start[0], a.y[-1] - a.start[1])), dur


def _equal_weight_quantiles(per_user: list[np.ndarray], probs: np.ndarray) -> np.ndarray:
    """Quantiles of the mixture that gives every user the same weight."""
    vals = np.concatenate(per_user)
    w = np.concatenate([np.full(len(v), 1.0 / len(v)) for v in per_user])
    order = np.argsort(vals)
    vals, w = vals[order], w[order]
    cum = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(probs, cum, vals)


def build_cursor_population(root: str, n_quantiles: int = 41) -> dict:
    """Pooled quantiles of shape statistics over every user's movements,
    and of movement duration per distance band (every user weighted equally,
    so no one person's tempo dominates the population)."""
    from ..cursor import DURATION_EDGES_PX

    users = load_balabit(root)
    stats: dict[str, list[float]] = {k: [] for k in ("bow", "along_error", "side_error", "primary_fraction", "tremor")}
    edges = np.asarray(DURATION_EDGES_PX)
    durations: list[dict[int, list[float]]] = []
    for u, sessions in users.items():
        mine: dict[int, list[float]] = {}
        durations.append(mine)
        for s in sessions:
            for a in session_actions(s):
                dd = segment_duration_ms(a)
                if dd is not None:
                    band = max(int(np.searchsorted(edges, dd[0], side="right")) - 1, 0)
                    mine.setdefault(band, []).append(dd[1])
                st = segment_shape_stats(a)
                if st is None:
                    continue
                for k, v in st.items():
                    stats[k].append(v)
    probs = np.linspace(0.05, 0.95, n_quantiles)
    quantiles = {}
    for k, vals in stats.items():
        q = np.quantile(vals, probs)
        if k == "primary_fraction":
            q = np.clip(q, 0.3, 1.0)
        quantiles[k] = [round(float(v), 5) for v in q]
    dprobs = np.linspace(0.05, 0.95, 21)
    dur_q, dur_counts = [], []
    for band in range(len(edges)):
        per_user = [np.asarray(d[band]) for d in durations if len(d.get(band, [])) >= 20]
        dur_counts.append([len(per_user), int(sum(len(v) for v in per_user))])
        if len(per_user) < 3:  # too few people for a population figure: borrow the band below
            dur_q.append(dur_q[-1] if dur_q else [50.0, 1000.0])
            continue
        dur_q.append([round(float(v), 2) for v in np.maximum(_equal_weight_quantiles(per_user, dprobs), 1.0)])
    quantiles["duration_ms"] = dur_q
    return {
        "meta": {
            "what": "quantiles of movement-shape statistics (relative to movement distance), pooled over users",
            "source": "Balabit Mouse Dynamics Challenge training sessions, Fulop et al. 2016",
            "users": len(users),
            "movements": len(stats["bow"]),
            "probabilities": [round(float(p), 4) for p in probs],
            "duration_distance_edges_px": [float(e) for e in edges],
            "duration_probabilities": [round(float(p), 4) for p in dprobs],
            "duration_users_and_movements_per_band": dur_counts,
            "duration_what": "movement duration (ms, first-to-last sample plus one sample interval) per "
                             "distance band, quantiles of the mixture that weights every user equally",
        },
        "quantiles": quantiles,
    }


__all__ = ["anonymize_session", "build_cursor_population", "evaluate", "identify", "session_actions",
           "utility", "default_model"]

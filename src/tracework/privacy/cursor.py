"""Cursor-motion anonymizer: pure functions over pointer paths.

A pointer path between two rests or clicks carries the person's motor
signature (how fast they accelerate, how their path curves, how they
correct) and their device's (how often it reports a position). The
anonymizer keeps what data users need, where the motion started and ended
(a click's position bit-exact) and when it ended, and replaces everything in
between by a synthetic, humanly plausible path:

* a primary minimum-jerk sub-movement (Flash & Hogan 1985) aimed at a point
  near the target, with an along-path error (overshoot or undershoot) and a
  sideways error drawn from a population model;
* a bowed (curved) course, bow size drawn from the population;
* a corrective minimum-jerk sub-movement that lands exactly on the target,
  starting at a population-drawn fraction of the movement;
* small, smooth tremor that vanishes at both ends.

Default (``resample="population"``, see :func:`resample_segment`): the path
is re-sampled at a rate drawn per movement (60-125 Hz, with jitter), so the
number of samples and the intervals between them no longer follow the
person's mouse or remote-desktop link, and a segment may come out with a
different number of moves than went in. The movement's duration is a
blend (``duration_blend``) of the person's and one drawn from a population
model of duration given distance (Fitts: longer movements take longer);
the default (1) keeps the person's, so "the duration stays close". The
end time and end point are exact; the start only moves within the gap the
previous event leaves, so ``t_ns`` stays non-decreasing.

``resample="off"`` is the earlier behaviour: every sample kept, times
re-spaced evenly between the first and last sample (:func:`anonymize_segment`).

The population model (quantiles of bow, overshoot, sideways error,
correction onset and tremor, and of duration per distance band, pooled over
many people with equal weight per person) is built from public data by
``scripts/build_population_models.py`` and shipped in
``tracework/privacy/models/cursor_population.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import PolicyError
from .models import load_model_document

# Statistics the synthetic path draws from the population, with the
# fallback used if a model lacks one (values from the motor-control
# literature: mild curvature, ~5% overshoot, correction at ~75% of the time).
CURSOR_STATS = {
    "bow": [-0.08, 0.0, 0.08],  # signed max sideways deviation / distance
    "along_error": [-0.08, 0.0, 0.08],  # primary endpoint error along the path / distance
    "side_error": [-0.03, 0.0, 0.03],  # primary endpoint error sideways / distance
    "primary_fraction": [0.6, 0.75, 0.9],  # share of the time the primary movement takes
    "tremor": [0.0, 0.003, 0.01],  # tremor amplitude / distance
}


# Distance bands (px, lower edges) of the duration model, and the fallback
# used if a model file has no duration table: a Fitts-like median
# 150 + 120 * log2(1 + d / 8) ms with a spread of about x0.6..x1.6.
DURATION_EDGES_PX = [0.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0]


def _fallback_durations() -> list[list[float]]:
    mids = [2.0, 6.0, 12.0, 24.0, 48.0, 96.0, 192.0, 384.0, 768.0, 1536.0]
    spread = np.linspace(0.6, 1.6, 21)
    return [list(np.round((150 + 120 * np.log2(1 + d / 8)) * spread, 1)) for d in mids]


class CursorModel:
    """Quantile tables (evenly spaced probabilities) per shape statistic,
    and of movement duration (ms) per distance band."""

    def __init__(self, quantiles: dict[str, list[float]], meta: dict | None = None):
        self.quantiles = {k: np.asarray(quantiles.get(k, v), dtype=float) for k, v in CURSOR_STATS.items()}
        self.meta = meta or {}
        durations = quantiles.get("duration_ms")
        edges = self.meta.get("duration_distance_edges_px", DURATION_EDGES_PX)
        if durations is None:
            durations, edges = _fallback_durations(), DURATION_EDGES_PX
        self.duration_edges = np.asarray(edges, dtype=float)
        self.duration_ms = [np.asarray(q, dtype=float) for q in durations]
        if len(self.duration_ms) != len(self.duration_edges) or any(len(q) < 2 for q in self.duration_ms):
            raise PolicyError("cursor population model: duration_ms needs one quantile list (>= 2 values) "
                              "per distance band", hint="rebuild it with scripts/build_population_models.py")

    def draw_duration_ms(self, distance: float, rng: np.random.Generator) -> float:
        """A movement duration (ms) from the population at this distance (px)."""
        band = max(int(np.searchsorted(self.duration_edges, distance, side="right")) - 1, 0)
        q = self.duration_ms[band]
        pos = rng.random() * (len(q) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(q) - 1)
        # Interpolate in log space: durations are skewed.
        return float(math.exp(math.log(q[lo]) + (math.log(q[hi]) - math.log(q[lo])) * (pos - lo)))

    @classmethod
    def load(cls, path: str | None = None) -> "CursorModel":
        """Load a model file; None loads the one shipped with the package."""
        return cls(*load_model_document("cursor", "cursor_population.json", path))

    def draw(self, name: str, rng: np.random.Generator) -> float:
        """One value of statistic ``name`` from its population distribution."""
        q = self.quantiles[name]
        pos = rng.random() * (len(q) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(q) - 1)
        return float(q[lo] + (q[hi] - q[lo]) * (pos - lo))


_DEFAULT: CursorModel | None = None


def default_model() -> CursorModel:
    """The shipped cursor population model (loaded once)."""
    global _DEFAULT
    if _DEFAULT is None:
        try:
            _DEFAULT = CursorModel.load()
        except FileNotFoundError:  # a source checkout before the model is built
            _DEFAULT = CursorModel({})
    return _DEFAULT


@dataclass
class CursorParams:
    """Parameters (policy keys under ``anonymizer.cursor``).

    rest_ms: a gap between moves at least this long ends a movement segment.
    retime: re-space sample times evenly inside a segment (hides the
        person's speed profile in the timing); False keeps original times.
    strength: scales the population-drawn shape deviations (1 = population
        typical; 0 = straight minimum-jerk paths).
    resample: "population" re-samples each movement at a rate drawn per
        movement in [rate_hz_min, rate_hz_max] (sample count and intervals
        no longer the device's); "off" keeps every sample (re-spaced evenly
        if ``retime``).
    duration_blend: with resampling, the weight of the person's own
        duration in the (log) blend with a population draw for the
        movement's distance: 1 keeps it, 0 uses the population only.
    duration_grid: 0 keeps each segment's duration; ``g > 0`` rounds it
        *down* to a logarithmic grid with steps of a factor ``1 + g`` (phase
        drawn once per session), by moving the segment's first sample later;
        the end time and end point stay exact. Needs ``retime``.
    """

    rest_ms: float = 300.0
    retime: bool = True
    strength: float = 1.0
    duration_grid: float = 0.0
    resample: str = "population"
    rate_hz_min: float = 60.0
    rate_hz_max: float = 125.0
    duration_blend: float = 1.0

    def validate(self) -> None:
        """Raise PolicyError if a parameter is out of range."""
        if self.resample not in ("population", "off"):
            raise PolicyError(f"cursor resample must be 'population' or 'off', got {self.resample!r}",
                              hint="use 'population' (the default)")
        if not 1 <= self.rate_hz_min <= self.rate_hz_max <= 1000:
            raise PolicyError(f"cursor rate_hz_min/rate_hz_max must satisfy 1 <= min <= max <= 1000, got "
                              f"{self.rate_hz_min}/{self.rate_hz_max}", hint="use 60 and 125")
        if not 0 <= self.duration_blend <= 1:
            raise PolicyError(f"cursor duration_blend must be in [0, 1], got {self.duration_blend}",
                              hint="1 keeps the person's durations, 0 draws them from the population")
        if self.resample == "population" and self.duration_grid > 0:
            raise PolicyError("cursor duration_grid works only with resample='off'",
                              hint="set duration_grid = 0 or resample = 'off'")
        if self.resample == "population" and not self.retime:
            raise PolicyError("cursor retime=false needs resample='off' (re-sampling always re-times)",
                              hint="set resample = 'off' to keep the original sample times")
        if not self.rest_ms > 0:
            raise PolicyError(f"cursor rest_ms must be > 0, got {self.rest_ms}", hint="use e.g. 300")
        if not 0 <= self.strength <= 3:
            raise PolicyError(f"cursor strength must be in [0, 3], got {self.strength}", hint="use 1.0")
        if not 0 <= self.duration_grid <= 1:
            raise PolicyError(f"cursor duration_grid must be in [0, 1], got {self.duration_grid}",
                              hint="use 0 (off) or e.g. 0.2")


def min_jerk(u: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile: 0 at u<=0, 1 at u>=1, smooth between."""
    u = np.clip(u, 0.0, 1.0)
    return u ** 3 * (10 - 15 * u + 6 * u * u)


def synthetic_path(x0: float, y0: float, x1: int, y1: int, tau: np.ndarray, rng: np.random.Generator,
                   model: CursorModel | None = None, strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Integer positions at normalised times ``tau`` (0..1] from (x0,y0) to (x1,y1).

    The sample at tau == 1 (there must be one, the last) is exactly (x1, y1).
    """
    model = model or default_model()
    tau = np.asarray(tau, dtype=float)
    dx, dy = x1 - x0, y1 - y0
    dist = float(np.hypot(dx, dy))
    if dist < 1e-9:
        ux, uy = 1.0, 0.0
    else:
        ux, uy = dx / dist, dy / dist
    px, py = -uy, ux  # unit perpendicular
    s = strength
    along = model.draw("along_error", rng) * s
    side = model.draw("side_error", rng) * s
    bow = model.draw("bow", rng) * s
    prim = min(max(model.draw("primary_fraction", rng), 0.3), 1.0)
    trem = abs(model.draw("tremor", rng)) * s
    # Aim point of the primary sub-movement (near, not on, the target).
    ax = x1 + (ux * along + px * side) * dist
    ay = y1 + (uy * along + py * side) * dist
    m1 = min_jerk(tau / prim)
    onset = prim * 0.7  # the correction overlaps the end of the primary movement
    m2 = min_jerk((tau - onset) / max(1.0 - onset, 1e-6))
    xs = x0 + (ax - x0) * m1 + (x1 - ax) * m2
    ys = y0 + (ay - y0) * m1 + (y1 - ay) * m2
    # Bowed course: sideways offset that is zero at both ends.
    b = np.sin(np.pi * m1) * bow * dist
    xs += px * b
    ys += py * b
    if trem > 0 and len(tau) > 2:
        # Smooth tremor: a random walk, low-passed, faded out at both ends.
        w = rng.standard_normal((2, len(tau))).cumsum(axis=1)
        w -= np.linspace(0, 1, len(tau)) * w[:, -1:]
        w /= max(np.abs(w).max(), 1e-9)
        fade = np.sin(np.pi * np.clip(tau, 0, 1))
        xs += w[0] * fade * trem * dist
        ys += w[1] * fade * trem * dist
    xi = np.round(xs).astype(np.int64)
    yi = np.round(ys).astype(np.int64)
    # Never leave the screen's top-left quadrant because of overshoot.
    if x0 >= 0 and x1 >= 0:
        xi = np.maximum(xi, 0)
    if y0 >= 0 and y1 >= 0:
        yi = np.maximum(yi, 0)
    end = tau >= 1.0
    xi[end] = x1
    yi[end] = y1
    return xi, yi


def anonymize_segment(start: tuple[int, int] | None, t_ns: np.ndarray, x: np.ndarray, y: np.ndarray,
                      rng: np.random.Generator, params: CursorParams | None = None,
                      model: CursorModel | None = None, grid_phase: float = 0.0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New (t_ns, x, y) for the move samples of one segment.

    grid_phase: the session's phase (0..1) of the ``duration_grid``.

    start: where the pointer was before the segment's first sample (None if
    unknown: the first sample is then kept as the start). The last sample's
    position and time and the first sample's time are kept exactly.
    """
    params = params or CursorParams()
    t = np.asarray(t_ns, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    n = len(t)
    if n == 0:
        return t.copy(), x.copy(), y.copy()
    keep_first = start is None
    if keep_first:
        start = (int(x[0]), int(y[0]))
    if n == 1 or (keep_first and n == 2):
        return t.copy(), x.copy(), y.copy()
    if params.retime:
        t0 = int(t[0])
        dur = int(t[-1]) - t0
        if params.duration_grid > 0 and dur > 0:
            # Round the duration down on the session's log grid: the start
            # only moves later, so it never crosses what came before.
            step = math.log1p(params.duration_grid)
            k = math.floor(math.log(dur) / step - grid_phase)
            t0 = max(t0, int(t[-1]) - int(math.exp((k + grid_phase) * step)))
        t_new = t0 + np.round(np.linspace(0, int(t[-1]) - t0, n)).astype(np.int64)
        t_new[-1] = t[-1]
    else:
        t_new = t.copy()
    # Normalised time of each sample: the motion is taken to begin one
    # sample interval before the first sample (it was already moving then).
    k = np.arange(n, dtype=float)
    if keep_first:
        tau = k / (n - 1)
    else:
        tau = (k + 1) / n
    xs, ys = synthetic_path(start[0], start[1], int(x[-1]), int(y[-1]), tau, rng, model, params.strength)
    if keep_first:
        xs[0], ys[0] = x[0], y[0]
    return t_new, xs, ys


def resample_segment(start: tuple[int, int] | None, t_ns: np.ndarray, x: np.ndarray, y: np.ndarray,
                     rng: np.random.Generator, params: CursorParams | None = None,
                     model: CursorModel | None = None, not_before_ns: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New (t_ns, x, y) for one movement segment, re-sampled (possibly a different count).

    start: where the pointer was before the segment (None if unknown: the
    first sample is then kept, position and time, as the start).
    not_before_ns: the earliest time the movement may start (the previous
    event's time, or a rest after the previous movement); the start moves
    only inside ``[not_before_ns, end]``, so ``t_ns`` stays non-decreasing
    across the stream. None: the original start is the limit.

    Guarantees: the last sample is the segment's last position and time,
    bit-exact; times are non-decreasing and at or after ``not_before_ns``;
    no two consecutive samples share a position (a device reports motion
    only); at least one sample.
    """
    params = params or CursorParams()
    model = model or default_model()
    t = np.asarray(t_ns, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    n = len(t)
    if n == 0:
        return t.copy(), x.copy(), y.copy()
    end_t, x1, y1 = int(t[-1]), int(x[-1]), int(y[-1])
    lead_t: list[int] = []
    lead_x: list[int] = []
    lead_y: list[int] = []
    if start is None:
        # Unknown origin (first movement of a stream): the first sample is
        # the origin, kept where and when it was; the rest is re-drawn.
        if n == 1:
            return t.copy(), x.copy(), y.copy()
        start = (int(x[0]), int(y[0]))
        lead_t, lead_x, lead_y = [int(t[0])], [int(x[0])], [int(y[0])]
        begin = int(t[0])
    else:
        dist = math.hypot(x1 - start[0], y1 - start[1])
        # The person's duration: motion onset is taken one sample interval
        # before the first sample (it was already moving then).
        own_ns = None
        if n >= 2:
            own_ns = float(end_t - int(t[0]) + max(int(np.median(np.diff(t))), 0))
        pop_ns = model.draw_duration_ms(dist, rng) * MS_NS
        w = params.duration_blend if own_ns and own_ns > 0 else 0.0
        dur = math.exp(w * math.log(own_ns) + (1 - w) * math.log(pop_ns)) if w > 0 else pop_ns
        limit = int(t[0]) if not_before_ns is None else int(not_before_ns)
        begin = max(end_t - int(round(dur)), min(limit, end_t))
    span = end_t - begin
    if span <= 0:
        # No time to move in: the pointer arrives at once (one sample).
        out_t = np.array(lead_t + [end_t], dtype=np.int64)
        out_x = np.array(lead_x + [x1], dtype=np.int64)
        out_y = np.array(lead_y + [y1], dtype=np.int64)
        return _drop_repeats(out_t, out_x, out_y, start if not lead_t else None)
    # A rate drawn per movement, not the device's, with +-25 % jitter per interval.
    interval = 1e9 / rng.uniform(params.rate_hz_min, params.rate_hz_max)
    m = max(1, int(round(span / interval)))
    steps = interval * rng.uniform(0.75, 1.25, m)
    cum = np.cumsum(steps)
    tau = cum / cum[-1]
    tau[-1] = 1.0
    times = begin + np.round(tau * span).astype(np.int64)
    times[-1] = end_t
    xs, ys = synthetic_path(start[0], start[1], x1, y1, tau, rng, model, params.strength)
    out_t = np.concatenate([np.array(lead_t, dtype=np.int64), times])
    out_x = np.concatenate([np.array(lead_x, dtype=np.int64), xs])
    out_y = np.concatenate([np.array(lead_y, dtype=np.int64), ys])
    return _drop_repeats(out_t, out_x, out_y, start if not lead_t else None)


MS_NS = 1_000_000


def _drop_repeats(t: np.ndarray, x: np.ndarray, y: np.ndarray, origin: tuple[int, int] | None):
    """Drop samples at the position of the sample kept before (or of the origin).

    The last sample always stays (exact end time and point); a sample before
    it at the same position goes instead: the pointer is taken to arrive at
    the exact end time.
    """
    keep = np.ones(len(t), dtype=bool)
    px, py = origin if origin is not None else (None, None)
    last_kept = -1
    for i in range(len(t)):
        xi, yi = int(x[i]), int(y[i])
        if xi == px and yi == py:
            if i == len(t) - 1:
                if last_kept >= 0:
                    keep[last_kept] = False
            else:
                keep[i] = False
                continue
        px, py, last_kept = xi, yi, i
    return t[keep], x[keep], y[keep]


def split_segments(t_ns: np.ndarray, rest_ms: float) -> list[slice]:
    """Cut a run of move samples at gaps >= rest_ms."""
    t = np.asarray(t_ns, dtype=np.int64)
    if len(t) == 0:
        return []
    cuts = np.nonzero(np.diff(t) >= rest_ms * 1_000_000)[0] + 1
    bounds = [0, *cuts.tolist(), len(t)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


__all__ = ["CursorModel", "CursorParams", "anonymize_segment", "default_model", "min_jerk",
           "resample_segment", "split_segments", "synthetic_path"]

"""Streaming pipeline stages for the typing and cursor anonymizers.

Both stages follow ``tracework.privacy.stage.Stage``: ``process`` takes
newly captured events (in ``seq`` order) and returns the ones ready to go on,
``flush`` releases everything held, ``describe`` names the transform and its
parameters for the session's ``transforms`` list and the dataset cards.

Ordering guarantee: events leave a stage in the order they came in, and
re-timed ``t_ns`` stay non-decreasing in that order across interleaved key,
mouse and other events. Each stage re-times only inside a *held stretch*
that no other event interrupts (a typing run, a cursor movement segment); a
stretch keeps its end no later than the event that ended it and its start no
earlier than what was emitted before it.

Policy: a plain dict section ``anonymizer`` (or an object with an
``anonymizer`` attribute holding one)::

    anonymizer = {
        "typing": {"enabled": True, "method": "population",   # or "kloak"
                   "pause_ms": 2000, "hesitation_ms": 2000, "quantum_ms": 200,
                   "speed_jitter": 0.0, "releases": "population",  # or "keep"
                   "speed_grid": 0.0, "modifier_sides": "merge",  # or "keep"
                   "max_delay_ms": 50},  # max_delay_ms: kloak only
        "cursor": {"enabled": True, "rest_ms": 300, "retime": True, "strength": 1.0,
                   "duration_grid": 0.0, "resample": "population",   # or "off"
                   "rate_hz_min": 60, "rate_hz_max": 125, "duration_blend": 1.0},
        "seed": None,   # tests only: fixes the random draws; never set it in production
    }

Missing keys take the defaults above; unknown keys raise PolicyError.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Sequence

import numpy as np

from ..errors import PolicyError
from ..events import ButtonDown, ButtonUp, Event, MouseMove, Scroll, Transform
from .cursor import CursorParams, anonymize_segment, default_model as default_cursor_model, resample_segment
from .typing import (MS, ModifierSideMerger, PopulationRetimer, TypingParams, default_model as default_typing_model,
                     is_key_event, kloak_retime, reorder_by_time, sequence_from_events, with_times)

# Default parameters chosen from the sweep in benchmarks/privacy (see
# docs/privacy-anonymization.md and BENCHMARKS.md): releases="population"
# (key releases redrawn, so the rollover habit no longer follows the person)
# lowered identification most; a log speed grid (speed_grid 0.09/0.18) and
# speed_jitter 0.04/0.08 did not lower it measurably and cost speed accuracy,
# so they stay off. hesitation_ms = pause_ms (2000): gaps of 1-2 s are redrawn
# too rather than kept in place (150 people, 5 seeds: sentence top-1 9.5 % ->
# 8.2 %, speed kept exactly; a small gain, not seen on the first 50 people:
# 17.7 % vs 17.5 %, 6 seeds). modifier_sides="merge": left and right Shift/
# Control/Alt/Super recorded as one key (X11 key codes tell them apart; the
# Aalto data cannot, so this one is argued, not measured).
DEFAULT_TYPING = {"enabled": True, "method": "population", "pause_ms": 2000.0, "hesitation_ms": 2000.0,
                  "quantum_ms": 200.0, "speed_jitter": 0.0, "releases": "population", "speed_grid": 0.0,
                  "modifier_sides": "merge", "max_delay_ms": 50.0}
# Cursor defaults from the Balabit sweep (BENCHMARKS.md): re-sampling at a
# drawn 60-125 Hz cut identification from 50.0 % to 37.7 %; blending durations
# with the population (duration_blend 0.5 / 0) lowered it only to 36.8 / 31.7 %
# at 22.7 / 34.8 % median duration error, so the default keeps the person's
# duration (3.8 %: "the duration stays close"); set 0 for the stronger option.
DEFAULT_CURSOR = {"enabled": True, "rest_ms": 300.0, "retime": True, "strength": 1.0, "duration_grid": 0.0,
                  "resample": "population", "rate_hz_min": 60.0, "rate_hz_max": 125.0, "duration_blend": 1.0}

# A stretch is released after this many held events even without a pause,
# so memory stays bounded and events keep flowing during non-stop input.
MAX_HELD_EVENTS = 4000


def anonymizer_section(policy: Any) -> dict:
    """The ``anonymizer`` dict of a policy (None, dict or object), validated."""
    if policy is None:
        return {}
    section = policy.get("anonymizer", {}) if isinstance(policy, dict) else getattr(policy, "anonymizer", None)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise PolicyError(f"policy 'anonymizer' must be a table/dict, got {type(section).__name__}",
                          hint="write it as [anonymizer.typing] / [anonymizer.cursor] tables")
    unknown = set(section) - {"typing", "cursor", "seed"}
    if unknown:
        raise PolicyError(f"unknown anonymizer policy keys: {', '.join(sorted(unknown))}",
                          hint="allowed: typing, cursor, seed (see docs/privacy-anonymization.md)")
    return section


def _merged(defaults: dict, given: Any, what: str) -> dict:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise PolicyError(f"policy anonymizer.{what} must be a table/dict", hint="see docs/privacy-anonymization.md")
    unknown = set(given) - set(defaults)
    if unknown:
        raise PolicyError(f"unknown anonymizer.{what} keys: {', '.join(sorted(unknown))}",
                          hint=f"allowed: {', '.join(sorted(defaults))}")
    out = dict(defaults)
    for k, v in given.items():
        want = type(defaults[k])
        if want is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, want) or (want is not bool and isinstance(v, bool)):
            raise PolicyError(f"anonymizer.{what}.{k} must be {want.__name__}, got {v!r}",
                              hint=f"the default is {defaults[k]!r}")
        out[k] = v
    return out


def _rng(seed: Any) -> np.random.Generator:
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise PolicyError(f"anonymizer.seed must be an integer or absent, got {seed!r}", hint="leave it unset")
    return np.random.default_rng(seed)


def _params(cls, conf: dict):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in conf.items() if k in names})


class TypingStage:
    """Holds a run of key events until a pause, then re-times it (population method)."""

    name = "typing_population_retime"

    def __init__(self, params: TypingParams | None = None, seed: int | None = None):
        self.params = params or _params(TypingParams, DEFAULT_TYPING)
        self.retimer = PopulationRetimer(self.params, default_typing_model(), np.random.default_rng(seed))
        self.held: list[Event] = []
        # Applied as events arrive (before holding), so the state of which
        # modifier is down follows the stream across runs and batches.
        self.merge_sides = ModifierSideMerger() if self.params.modifier_sides == "merge" else None

    def _close(self, end_limit_ns: int | None) -> list[Event]:
        if not self.held:
            return []
        run, self.held = self.held, []
        new_t = self.retimer.retime_run(sequence_from_events(run), end_limit_ns)
        if self.params.releases == "population":
            # Releases were redrawn: the run's interleaving changed, so its
            # events go out in their new time order with the run's seq numbers.
            return reorder_by_time(run, new_t)
        return with_times(run, new_t)

    def process(self, events: Sequence[Event], now_ns: int) -> list[Event]:
        """See :class:`tracework.privacy.stage.Stage`."""
        out: list[Event] = []
        pause = self.params.pause_ms * MS
        for ev in events:
            if is_key_event(ev):
                if self.merge_sides is not None:
                    ev = self.merge_sides(ev)
                if self.held and (ev.t_ns - self.held[-1].t_ns >= pause or len(self.held) >= MAX_HELD_EVENTS):
                    out += self._close(None)
                self.held.append(ev)
            else:
                if self.held:
                    # Closing on this event may use the time up to it, unless a
                    # pause came first: then it closes exactly as a timeout
                    # would have, so chunking never changes the output.
                    gap = ev.t_ns - self.held[-1].t_ns
                    out += self._close(ev.t_ns if gap < pause else None)
                # Something other than typing came between: the next run's
                # pause is not coarse-grained against this one.
                self.retimer.forget_previous()
                out.append(ev)
        if self.held and now_ns - self.held[-1].t_ns >= pause:
            out += self._close(None)
        return out

    def flush(self, now_ns: int) -> list[Event]:
        """Release the held run (end of session, pause, shutdown)."""
        return self._close(None)

    def describe(self) -> Transform:
        """Name and parameters for the session's transforms."""
        p = self.params
        return Transform(name=self.name, params={
            "pause_ms": float(p.pause_ms), "hesitation_ms": float(p.hesitation_ms),
            "quantum_ms": float(p.quantum_ms), "speed_jitter": float(p.speed_jitter),
            "releases": str(p.releases), "speed_grid": float(p.speed_grid),
            "modifier_sides": str(p.modifier_sides),
            "model": str(self.retimer.model.meta.get("source", "custom"))[:200]})


class KloakStage:
    """Kloak-style baseline: every event delayed by U(0, max_delay_ms), order kept.

    Non-key events are not delayed on purpose but may be pushed later so the
    stream stays monotone. Holds nothing.
    """

    name = "typing_kloak_delay"

    def __init__(self, max_delay_ms: float = 50.0, seed: int | None = None):
        if max_delay_ms < 0:
            raise PolicyError(f"kloak max_delay_ms must be >= 0, got {max_delay_ms}", hint="use e.g. 50")
        self.max_delay_ms = max_delay_ms
        self.rng = np.random.default_rng(seed)
        self.last_out = -1

    def process(self, events: Sequence[Event], now_ns: int) -> list[Event]:
        """See :class:`tracework.privacy.stage.Stage`."""
        out = []
        for ev in events:
            t = ev.t_ns
            if is_key_event(ev):
                t = int(kloak_retime(np.array([t]), self.max_delay_ms, self.rng)[0])
            t = max(t, self.last_out)
            self.last_out = t
            out.append(with_times([ev], [t])[0] if t != ev.t_ns else ev)
        return out

    def flush(self, now_ns: int) -> list[Event]:
        """Nothing is held."""
        return []

    def describe(self) -> Transform:
        """Name and parameters for the session's transforms."""
        return Transform(name=self.name, params={"max_delay_ms": float(self.max_delay_ms)})


class CursorStage:
    """Holds a cursor movement segment until it ends, then re-shapes it.

    With ``resample="population"`` (the default) a segment comes out with
    a different number of MouseMove events than went in (re-sampled at a
    drawn rate). That is safe for the lake: ``seq`` is assigned by the spool
    after the pipeline (``agent.capture.EventBuilder``), so it stays unique
    and increasing per device; the moves keep the segment's session and the
    last input move's fields. The segment's last move keeps its position and
    time exactly; its start moves only after the last event this stage
    emitted (and at least ``rest_ms`` after a previous movement, so a
    re-cut of the stream finds the same segments), so ``t_ns`` stays
    non-decreasing. Hold-back is one segment, at most ``MAX_HELD_EVENTS``.
    """

    name = "cursor_synthetic_path"

    def __init__(self, params: CursorParams | None = None, seed: int | None = None):
        self.params = params or _params(CursorParams, DEFAULT_CURSOR)
        self.params.validate()
        self.model = default_cursor_model()
        self.rng = np.random.default_rng(seed)
        # Phase of the duration grid, one per session (so grid edges differ between people).
        self.grid_phase = float(self.rng.random())
        self.held: list[MouseMove] = []
        self.last_pos: tuple[int, int] | None = None
        # Time of the last event this stage let out, and whether it was a move.
        self.last_out_ns: int | None = None
        self.last_out_move = False

    def _close(self) -> list[Event]:
        if not self.held:
            return []
        seg, self.held = self.held, []
        t = np.fromiter((e.t_ns for e in seg), dtype=np.int64, count=len(seg))
        x = np.fromiter((e.x for e in seg), dtype=np.int64, count=len(seg))
        y = np.fromiter((e.y for e in seg), dtype=np.int64, count=len(seg))
        import msgspec

        if self.params.resample == "population":
            not_before = self.last_out_ns
            if not_before is not None and self.last_out_move:
                not_before = min(not_before + int(self.params.rest_ms * MS), int(t[0]))
            nt, nx, ny = resample_segment(self.last_pos, t, x, y, self.rng, self.params, self.model, not_before)
            last = seg[-1]
            out = [msgspec.structs.replace(last, t_ns=int(a), x=int(b), y=int(c)) for a, b, c in zip(nt, nx, ny)]
        else:
            nt, nx, ny = anonymize_segment(self.last_pos, t, x, y, self.rng, self.params, self.model,
                                           self.grid_phase)
            out = [msgspec.structs.replace(e, t_ns=int(a), x=int(b), y=int(c))
                   for e, a, b, c in zip(seg, nt, nx, ny)]
        self.last_pos = (int(nx[-1]), int(ny[-1]))
        self.last_out_ns, self.last_out_move = int(nt[-1]), True
        return out

    def process(self, events: Sequence[Event], now_ns: int) -> list[Event]:
        """See :class:`tracework.privacy.stage.Stage`."""
        out: list[Event] = []
        rest = self.params.rest_ms * MS
        for ev in events:
            if isinstance(ev, MouseMove):
                if self.held and (ev.t_ns - self.held[-1].t_ns >= rest or len(self.held) >= MAX_HELD_EVENTS):
                    out += self._close()
                self.held.append(ev)
                continue
            out += self._close()
            if isinstance(ev, (ButtonDown, ButtonUp, Scroll)):
                self.last_pos = (ev.x, ev.y)
            out.append(ev)
            self.last_out_ns, self.last_out_move = ev.t_ns, False
        if self.held and now_ns - self.held[-1].t_ns >= rest:
            out += self._close()
        return out

    def flush(self, now_ns: int) -> list[Event]:
        """Release the held segment."""
        return self._close()

    def describe(self) -> Transform:
        """Name and parameters for the session's transforms."""
        p = self.params
        return Transform(name=self.name, params={
            "rest_ms": float(p.rest_ms), "retime": bool(p.retime), "strength": float(p.strength),
            "duration_grid": float(p.duration_grid), "resample": str(p.resample),
            "rate_hz_min": float(p.rate_hz_min), "rate_hz_max": float(p.rate_hz_max),
            "duration_blend": float(p.duration_blend),
            "model": str(self.model.meta.get("source", "built-in"))[:200]})


def make_typing_stage(policy: Any = None):
    """The typing anonymizer stage the policy asks for (None if disabled)."""
    section = anonymizer_section(policy)
    conf = _merged(DEFAULT_TYPING, section.get("typing"), "typing")
    seed = section.get("seed")
    _rng(seed)
    if not conf["enabled"]:
        return None
    if conf["method"] == "kloak":
        return KloakStage(conf["max_delay_ms"], seed)
    if conf["method"] != "population":
        raise PolicyError(f"unknown typing anonymizer method {conf['method']!r}", hint="use 'population' or 'kloak'")
    params = _params(TypingParams, conf)
    params.validate()
    return TypingStage(params, seed)


def make_cursor_stage(policy: Any = None):
    """The cursor anonymizer stage the policy asks for (None if disabled)."""
    section = anonymizer_section(policy)
    conf = _merged(DEFAULT_CURSOR, section.get("cursor"), "cursor")
    seed = section.get("seed")
    _rng(seed)
    if not conf["enabled"]:
        return None
    params = _params(CursorParams, conf)
    params.validate()
    # A different stream of draws than the typing stage's, from the same seed.
    return CursorStage(params, None if seed is None else seed + 1)


__all__ = ["CursorStage", "KloakStage", "TypingStage", "anonymizer_section", "make_cursor_stage",
           "make_typing_stage", "DEFAULT_CURSOR", "DEFAULT_TYPING"]

"""Typing-rhythm anonymizers: pure functions over key-event sequences.

How someone types (how long each key is held, how long between keys, per
digraph) identifies them like a fingerprint. These functions change *when* key
events happened, never *which* events happened or in what order: the text, the
key order and the interleaving of presses and releases (rollover) are kept.

Two anonymizers:

``kloak_retime``
    The baseline, in the style of kloak (Vinterberg): every event is delayed by
    a uniform random amount in ``[0, max_delay_ms]`` and then pushed to be no
    earlier than the event before it, so the output is monotone and a key-up
    never precedes its key-down.

``PopulationRetimer``
    Tracework's default. The event stream is cut into *runs* of typing
    separated by pauses (a gap of at least ``pause_ms``). Inside a run every
    gap between consecutive key events is redrawn from a population model (see
    :class:`PopulationModel`) conditioned on the kind of transition (press to
    press, press to release of the same key = a hold, release to press...),
    the classes of the two keys (letter, space, punct, backspace, modifier...)
    and, for two letters, whether they are typed by the same hand. The redrawn
    gaps are then rescaled so the run keeps its original duration, i.e. its
    typing speed (optionally with a small random speed change,
    ``speed_jitter``). Hesitations inside a run (gaps of at least
    ``hesitation_ms``) and the pauses between runs are kept but coarse-grained:
    rounded *down* to a multiple of ``quantum_ms``, so they stay informative
    (a thinking pause before a word) without carrying exact personal timing.

With ``modifier_sides="merge"`` (the agent's default) the left and right
copies of Shift, Control, Alt and Super are recorded as one key
(:class:`ModifierSideMerger`): the text and the order of key presses do not
change, but which side a person uses no longer shows in the key codes.

The population model is aggregate statistics only (quantiles of gap lengths
per transition class), built from public data by
``scripts/build_population_models.py`` and shipped in
``tracework/privacy/models/typing_population.json``.

Why rounding down: a run's start may then move earlier but never later, so the
re-timed stream never overtakes an event that comes after it in sequence
order (the agent assigns ``seq`` before the privacy pipeline).
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from typing import Iterable, Sequence

import msgspec
import numpy as np

from ..errors import PolicyError
from .models import load_model_document
from ..events import Event, KeyDown, KeyUp

MS = 1_000_000  # nanoseconds per millisecond

# Key classes used to condition the population model. A redacted key keeps
# only its class, so these must be computable from ``key_class`` alone too.
KEY_CLASSES = ("letter", "digit", "space", "punct", "backspace", "modifier", "enter", "other")

# QWERTY hands. Same-hand digraphs are slower than alternating ones for almost
# everyone; conditioning on it keeps that population-level regularity in the
# re-timed data without keeping the person's own digraph timings.
_LEFT_HAND = set("qwertasdfgzxcvb")
_RIGHT_HAND = set("yuiophjklnm")

_MODIFIER_SYMS = {
    "shift", "shift_l", "shift_r", "control", "control_l", "control_r", "ctrl", "alt", "alt_l",
    "alt_r", "meta", "meta_l", "meta_r", "super", "super_l", "super_r", "caps_lock", "capslock",
    "iso_level3_shift", "altgr", "win", "cmd",
}


# Lock keys: class "modifier" (the population model has no class of its own
# for them) but they act when pressed, so they are not held over other keys.
LOCK_KEY_SYMS = frozenset({"caps_lock", "capslock", "num_lock", "numlock", "scroll_lock"})


def key_class_of(char: str | None, key_sym: str | None, key_class: str | None = None) -> str:
    """The coarse class of a key (one of ``KEY_CLASSES``).

    Uses the produced character when there is one, else the key's symbolic
    name, else an already-set ``key_class`` (redacted keys carry only that).
    """
    if char:
        c = char[0]
        if c == " ":
            return "space"
        if c.isalpha():
            return "letter"
        if c.isdigit():
            return "digit"
        if c in "\r\n":
            return "enter"
        if c == "\b":
            return "backspace"
        if c in string.punctuation or not c.isprintable():
            return "punct" if c in string.punctuation else "other"
        return "punct"
    if key_sym:
        s = key_sym.lower()
        if s in ("space", " "):
            return "space"
        if s in ("backspace", "bksp", "delete"):
            return "backspace"
        if s in ("return", "enter", "kp_enter"):
            return "enter"
        if s in _MODIFIER_SYMS:
            return "modifier"
        if len(s) == 1:
            return key_class_of(s, None)
        return "other"
    if key_class:
        return key_class if key_class in KEY_CLASSES else "other"
    return "other"


def hand_of(char: str | None) -> str:
    """``L`` or ``R`` for a letter on a QWERTY keyboard, ``-`` otherwise."""
    if char and len(char) == 1:
        c = char.lower()
        if c in _LEFT_HAND:
            return "L"
        if c in _RIGHT_HAND:
            return "R"
    return "-"


@dataclass(frozen=True)
class KeySequence:
    """A key-event sequence in the form the anonymizers work on.

    t_ns: event times (non-decreasing). is_down: press (True) or release.
    key: identity used to pair a release with its press (key code, symbol...).
    cls: key class (``KEY_CLASSES``). hand: ``L``/``R``/``-`` (letters only).
    toggle: per event, whether the key is a lock key (Caps Lock...): its class
    is ``modifier`` but it is not held over the keys it affects.
    """

    t_ns: np.ndarray
    is_down: np.ndarray
    key: tuple
    cls: tuple
    hand: tuple
    toggle: tuple = ()  # per event: a lock key (Caps/Num/Scroll Lock); empty = none

    def is_toggle(self, i: int) -> bool:
        """Whether event ``i`` is a lock key, which acts on press and need not be held."""
        return bool(self.toggle) and bool(self.toggle[i])

    def __len__(self) -> int:
        return len(self.t_ns)


def gap_classes(seq: KeySequence) -> list[str]:
    """The transition class of each gap (gap ``i`` lies before event ``i+1``).

    Format ``kind|prev_class|next_class[|hand relation]`` where kind is
    ``hold`` (press then release of the same key) or ``DD``/``DU``/``UD``/``UU``.
    """
    out = []
    for i in range(len(seq) - 1):
        a_down, b_down = bool(seq.is_down[i]), bool(seq.is_down[i + 1])
        if a_down and not b_down and seq.key[i] == seq.key[i + 1]:
            kind = "hold"
        else:
            kind = ("D" if a_down else "U") + ("D" if b_down else "U")
        ca, cb = seq.cls[i], seq.cls[i + 1]
        label = f"{kind}|{ca}|{cb}"
        if ca == "letter" and cb == "letter" and kind != "hold":
            ha, hb = seq.hand[i], seq.hand[i + 1]
            if seq.key[i] == seq.key[i + 1]:
                label += "|same_key"
            elif ha != "-" and hb != "-":
                label += "|same_hand" if ha == hb else "|alt_hand"
        out.append(label)
    return out


def _coarser(label: str) -> Iterable[str]:
    """Fallbacks from most to least specific, for classes rare in the model."""
    parts = label.split("|")
    yield label
    if len(parts) > 3:
        yield "|".join(parts[:3])
    yield parts[0]


class PopulationModel:
    """Quantiles of gap lengths (ms) per transition class, from many people.

    ``quantiles[label]`` is a non-decreasing list of gap lengths at evenly
    spaced probabilities 0..1; sampling interpolates it (inverse-CDF).
    """

    def __init__(self, quantiles: dict[str, list[float]], meta: dict | None = None):
        if not quantiles:
            raise PolicyError("the typing population model is empty", hint="rebuild it with scripts/build_population_models.py")
        self.quantiles = {k: np.asarray(v, dtype=float) for k, v in quantiles.items()}
        self.meta = meta or {}
        self._resolved: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, path: str | None = None) -> "PopulationModel":
        """Load a model file; None loads the one shipped with the package."""
        return cls(*load_model_document("typing", "typing_population.json", path))

    def table(self, label: str) -> np.ndarray:
        """The quantile table for ``label`` or its nearest coarser class."""
        got = self._resolved.get(label)
        if got is None:
            for cand in _coarser(label):
                if cand in self.quantiles:
                    got = self.quantiles[cand]
                    break
            else:
                got = self.quantiles["*"] if "*" in self.quantiles else next(iter(self.quantiles.values()))
            self._resolved[label] = got
        return got

    def sample(self, labels: Sequence[str], rng: np.random.Generator) -> np.ndarray:
        """One gap (ms) per label, drawn independently from the population."""
        u = rng.random(len(labels))
        out = np.empty(len(labels))
        for i, (lab, ui) in enumerate(zip(labels, u)):
            q = self.table(lab)
            pos = ui * (len(q) - 1)
            lo = int(pos)
            hi = min(lo + 1, len(q) - 1)
            out[i] = q[lo] + (q[hi] - q[lo]) * (pos - lo)
        return out


_DEFAULT_MODEL: PopulationModel | None = None


def default_model() -> PopulationModel:
    """The shipped population model (loaded once)."""
    global _DEFAULT_MODEL
    if _DEFAULT_MODEL is None:
        _DEFAULT_MODEL = PopulationModel.load()
    return _DEFAULT_MODEL


def kloak_retime(t_ns: np.ndarray, max_delay_ms: float, rng: np.random.Generator) -> np.ndarray:
    """Kloak-style baseline: delay each event by U(0, max_delay_ms), keep order.

    Each output time is ``max(previous output, input + delay)``, so the result
    is non-decreasing and no event moves before one that preceded it.
    """
    t = np.asarray(t_ns, dtype=np.int64)
    if max_delay_ms < 0:
        raise PolicyError(f"kloak max_delay_ms must be >= 0, got {max_delay_ms}", hint="use a delay such as 50")
    delays = (rng.random(len(t)) * max_delay_ms * MS).astype(np.int64)
    return np.maximum.accumulate(t + delays) if len(t) else t.copy()


@dataclass
class TypingParams:
    """Parameters of the population re-timer (policy keys under ``anonymizer.typing``).

    pause_ms: a gap at least this long ends a run of typing.
    hesitation_ms: a gap inside a run at least this long is kept (coarsened)
        rather than redrawn from the population.
    quantum_ms: hesitations and pauses are rounded down to a multiple of this.
    speed_jitter: each run's duration is multiplied by a random factor in
        ``[1 - speed_jitter, 1 + speed_jitter]``; a lengthened run is squeezed
        back so it never ends after the event that follows it (so in practice
        runs only get faster). 0 keeps every run's speed exact.
    releases: ``"keep"`` keeps the order of all events, including which
        key-up comes before which key-down (the person's rollover habit);
        ``"population"`` re-times presses from the population and draws every
        key release independently (hold times from the population), so the
        press/release interleaving no longer follows the person. The order of
        key presses and the text are kept; each key-up stays after its own
        key-down; events must then be re-sorted by time (see
        :func:`reorder_by_time`).
    speed_grid: 0 keeps each run's duration exactly; a value ``g > 0``
        rounds the run's duration to a logarithmic grid with steps of a factor
        ``1 + g`` whose phase is drawn once per retimer (session), so the
        exact speed is not kept and grid edges leak nothing fixed. Maximum
        speed error about ``g / 2``.
    """

    pause_ms: float = 2000.0
    hesitation_ms: float = 1000.0
    quantum_ms: float = 200.0
    speed_jitter: float = 0.0
    releases: str = "keep"
    speed_grid: float = 0.0
    modifier_sides: str = "keep"

    def validate(self) -> None:
        """Raise PolicyError if the parameters are inconsistent."""
        if not (self.quantum_ms > 0 and self.hesitation_ms > 0 and self.pause_ms >= self.hesitation_ms):
            raise PolicyError(
                f"typing anonymizer params are inconsistent: {self}",
                hint="need quantum_ms > 0, hesitation_ms > 0 and pause_ms >= hesitation_ms")
        if not 0 <= self.speed_jitter < 0.5:
            raise PolicyError(f"speed_jitter must be in [0, 0.5), got {self.speed_jitter}",
                              hint="use a small value such as 0.04")
        if self.releases not in ("keep", "population"):
            raise PolicyError(f"releases must be 'keep' or 'population', got {self.releases!r}",
                              hint="'population' re-draws key releases (stronger), 'keep' keeps the interleaving")
        if not 0 <= self.speed_grid <= 0.25:
            raise PolicyError(f"speed_grid must be in [0, 0.25], got {self.speed_grid}",
                              hint="use e.g. 0.09 (speed error at most about 4.5%)")
        if self.modifier_sides not in ("keep", "merge"):
            raise PolicyError(f"modifier_sides must be 'keep' or 'merge', got {self.modifier_sides!r}",
                              hint="'merge' records left and right Shift/Control/Alt/Super as one key")


def _quantize_down(gap_ns: float, quantum_ns: float, floor_ns: float) -> float:
    """Round a long gap down to the quantum grid, but not below ``floor_ns``."""
    return max(floor_ns, math.floor(gap_ns / quantum_ns) * quantum_ns)


class PopulationRetimer:
    """Re-times runs of typing from the population model (see module docstring).

    Stateful only across runs (the previous run's original and re-timed end,
    to coarse-grain the pause between runs) and in its random generator, so
    the same object can serve a batch function and a streaming stage.
    """

    def __init__(self, params: TypingParams | None = None, model: PopulationModel | None = None,
                 rng: np.random.Generator | None = None):
        self.params = params or TypingParams()
        self.params.validate()
        self.model = model or default_model()
        self.rng = rng if rng is not None else np.random.default_rng()
        self._prev_in_end: int | None = None  # original time of the last key event released
        self._prev_out_end: int | None = None  # its re-timed time
        # Phase of the speed grid, drawn once per retimer (one per session in
        # the agent) so the bucket edges are not the same for everyone.
        self._grid_phase = float(self.rng.random())

    def _grid_duration(self, target: float) -> float:
        """``target`` (ns) rounded to the session's logarithmic speed grid."""
        g = self.params.speed_grid
        if g <= 0 or target <= 0:
            return target
        step = math.log1p(g)
        k = round(math.log(target) / step - self._grid_phase)
        return math.exp((k + self._grid_phase) * step)

    def forget_previous(self) -> None:
        """The next run does not follow typing directly (something else came between)."""
        self._prev_in_end = None
        self._prev_out_end = None

    def retime_run(self, seq: KeySequence, end_limit_ns: int | None = None) -> np.ndarray:
        """New times for one run (no gap >= pause_ms inside it).

        The run starts at its original time, or earlier when it follows a
        previous run directly (the pause between them is coarse-grained). It
        ends no later than ``end_limit_ns`` (default: its original end).
        """
        p = self.params
        t = np.asarray(seq.t_ns, dtype=np.int64)
        n = len(t)
        if n == 0:
            return t.copy()
        start = int(t[0])
        if self._prev_in_end is not None and start >= self._prev_in_end:
            pause = start - self._prev_in_end
            start = int(self._prev_out_end + _quantize_down(pause, p.quantum_ms * MS, 0))
            # Never later than the original start: the run must not overtake
            # whatever follows it in sequence order.
            start = min(max(start, int(self._prev_out_end)), int(t[0]))
        orig_end = int(t[-1])
        limit = orig_end if end_limit_ns is None else max(orig_end, int(end_limit_ns))
        if p.releases == "population" and n > 1:
            out = self._retime_run_releases(seq, start, limit)
            self._prev_in_end = orig_end
            self._prev_out_end = int(out.max())
            return out
        if n == 1:
            out = np.array([start], dtype=np.int64)
        else:
            gaps = np.diff(t).astype(float)
            labels = gap_classes(seq)
            hes = gaps >= p.hesitation_ms * MS
            new = np.empty(n - 1)
            # Hesitations: kept in place, rounded down (never below the threshold).
            new[hes] = [_quantize_down(g, p.quantum_ms * MS, p.hesitation_ms * MS) for g in gaps[hes]]
            fluent = ~hes
            if fluent.any():
                drawn = self.model.sample([lab for lab, f in zip(labels, fluent) if f], self.rng) * MS
                # Population gaps can themselves be long; cap below the
                # hesitation threshold so a drawn gap is never mistaken for one.
                drawn = np.minimum(drawn, p.hesitation_ms * MS * 0.999)
                target = gaps[fluent].sum()
                if p.speed_jitter > 0:
                    target *= 1.0 + self.rng.uniform(-p.speed_jitter, p.speed_jitter)
                target = self._grid_duration(target)
                total = drawn.sum()
                if total > 0:
                    drawn *= target / total
                else:
                    drawn[:] = target / len(drawn)
                new[fluent] = drawn
            # Offsets are summed in float but added to the int64 start, since
            # epoch nanoseconds do not fit a float's 53-bit mantissa.
            offs = np.round(np.concatenate([[0.0], np.cumsum(new)])).astype(np.int64)
            span = max(limit - start, 0)
            if offs[-1] > span:
                # A jittered slow-down ran past the next event: squeeze the run
                # so it still ends before that event.
                offs = np.floor(offs * (span / offs[-1])).astype(np.int64)
            out = start + offs
            out = np.maximum.accumulate(out)
        self._prev_in_end = orig_end
        self._prev_out_end = int(out[-1])
        return out

    def _retime_run_releases(self, seq: KeySequence, start: int, limit: int) -> np.ndarray:
        """``releases="population"``: presses re-timed, every release redrawn.

        Returns one time per event in the input order; the result is *not*
        monotone in that order (a release may now come after a later press or
        before an earlier one's release). Guarantees: presses keep their order
        and stay inside ``[start, limit]``; each release is at or after its
        own press, before the same key's next press, and not after ``limit``;
        a release whose press is not in this run goes to the run's start; a
        modifier stays down until the next non-modifier key is pressed, so
        shifted characters stay shifted.
        """
        p = self.params
        t = np.asarray(seq.t_ns, dtype=np.int64)
        n = len(t)
        down_idx = np.nonzero(seq.is_down)[0]
        out = np.full(n, start, dtype=np.int64)
        if len(down_idx) == 0:
            return out
        # Pair each release with the latest unmatched press of the same key.
        open_: dict = {}
        release_of: dict[int, int] = {}
        for i in range(n):
            if seq.is_down[i]:
                open_.setdefault(seq.key[i], []).append(i)
            elif open_.get(seq.key[i]):
                release_of[open_[seq.key[i]].pop()] = i
        # Press-to-press intervals: a population hold of the first key plus a
        # population release-to-press gap of the pair. Both are person-free;
        # the sum is rescaled to the run's (gridded) press span below.
        pt = t[down_idx].astype(float)
        gaps = np.diff(pt)
        new = np.empty(len(gaps))
        if len(gaps):
            hes = gaps >= p.hesitation_ms * MS
            new[hes] = [_quantize_down(g, p.quantum_ms * MS, p.hesitation_ms * MS) for g in gaps[hes]]
            fluent = ~hes
            if fluent.any():
                a_idx, b_idx = down_idx[:-1][fluent], down_idx[1:][fluent]
                hold_labels = [f"hold|{seq.cls[a]}|{seq.cls[a]}" for a in a_idx]
                ud_labels = []
                for a, b in zip(a_idx, b_idx):
                    lab = f"UD|{seq.cls[a]}|{seq.cls[b]}"
                    if seq.cls[a] == "letter" and seq.cls[b] == "letter":
                        if seq.key[a] == seq.key[b]:
                            lab += "|same_key"
                        elif seq.hand[a] != "-" and seq.hand[b] != "-":
                            lab += "|same_hand" if seq.hand[a] == seq.hand[b] else "|alt_hand"
                    ud_labels.append(lab)
                drawn = (self.model.sample(hold_labels, self.rng) + self.model.sample(ud_labels, self.rng)) * MS
                drawn = np.minimum(drawn, p.hesitation_ms * MS * 0.999)
                target = gaps[fluent].sum()
                if p.speed_jitter > 0:
                    target *= 1.0 + self.rng.uniform(-p.speed_jitter, p.speed_jitter)
                target = self._grid_duration(target)
                total = drawn.sum()
                drawn = drawn * (target / total) if total > 0 else np.full(len(drawn), target / len(drawn))
                new[fluent] = drawn
        offs = np.round(np.concatenate([[0.0], np.cumsum(new)])).astype(np.int64)
        span = max(limit - start, 0)
        if offs[-1] > span:
            offs = np.floor(offs * (span / offs[-1])).astype(np.int64)
        press_t = start + offs
        out[down_idx] = press_t
        # Releases: population hold times, independent of the person.
        holds = self.model.sample([f"hold|{seq.cls[i]}|{seq.cls[i]}" for i in down_idx], self.rng) * MS
        mod_after = self.model.sample(["DU|letter|modifier"] * len(down_idx), self.rng) * MS
        next_same: dict[int, int] = {}
        last_by_key: dict = {}
        for j in range(len(down_idx) - 1, -1, -1):
            k = seq.key[down_idx[j]]
            if k in last_by_key:
                next_same[j] = last_by_key[k]
            last_by_key[k] = j
        next_nonmod = np.full(len(down_idx), -1)
        nxt = -1
        for j in range(len(down_idx) - 1, -1, -1):
            next_nonmod[j] = nxt
            if seq.cls[down_idx[j]] != "modifier":
                nxt = j
        for j, i in enumerate(down_idx):
            r = release_of.get(int(i))
            if r is None:
                continue
            # Offsets from the press in float, added to the int64 press time:
            # epoch nanoseconds do not fit a float's 53-bit mantissa.
            p0 = int(press_t[j])
            off = float(holds[j])
            # A held modifier (Shift, Control...) stays down over the next
            # key it modifies; a lock key acts on its press and gets a plain
            # population hold, so how a person uses Caps Lock does not shape it.
            if seq.cls[i] == "modifier" and next_nonmod[j] >= 0 and not seq.is_toggle(int(i)):
                off = max(off, float(int(press_t[next_nonmod[j]]) - p0) + float(mod_after[j]))
            if j in next_same:
                # Released before the same key is pressed again.
                off = min(off, float(int(press_t[next_same[j]]) - p0) * 0.9)
            out[r] = min(p0 + max(int(round(off)), 0), limit)
        return out

    def split_runs(self, t_ns: np.ndarray) -> list[slice]:
        """Cut a sequence into runs at gaps >= pause_ms."""
        t = np.asarray(t_ns, dtype=np.int64)
        if len(t) == 0:
            return []
        cuts = np.nonzero(np.diff(t) >= self.params.pause_ms * MS)[0] + 1
        bounds = [0, *cuts.tolist(), len(t)]
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def retime(self, seq: KeySequence) -> np.ndarray:
        """Re-time a whole key sequence (all runs, pauses coarse-grained)."""
        out = np.empty(len(seq), dtype=np.int64)
        for sl in self.split_runs(seq.t_ns):
            sub = KeySequence(seq.t_ns[sl], seq.is_down[sl], seq.key[sl], seq.cls[sl], seq.hand[sl],
                              seq.toggle[sl] if seq.toggle else ())
            out[sl] = self.retime_run(sub)
        return out


def population_retime(seq: KeySequence, params: TypingParams | None = None,
                      model: PopulationModel | None = None, seed: int | None = None) -> np.ndarray:
    """Re-time ``seq`` with a fresh :class:`PopulationRetimer` (pure function).

    seed: fixes the random draws (same input + seed → same output); None draws
    fresh entropy each call, which is what the agent does.
    """
    return PopulationRetimer(params, model, np.random.default_rng(seed)).retime(seq)


# ---- event-level helpers -------------------------------------------------------

def is_key_event(ev: Event) -> bool:
    """True for KeyDown and KeyUp."""
    return isinstance(ev, (KeyDown, KeyUp))


def key_identity(ev: KeyDown | KeyUp):
    """What pairs a release with its press: key code, else symbol, else class."""
    if ev.key_code is not None:
        return ("code", ev.key_code)
    if ev.key_sym is not None:
        return ("sym", ev.key_sym)
    if ev.char is not None:
        return ("char", ev.char)
    return ("class", ev.key_class)


def sequence_from_events(events: Sequence[KeyDown | KeyUp]) -> KeySequence:
    """The :class:`KeySequence` view of a list of key events."""
    t = np.fromiter((e.t_ns for e in events), dtype=np.int64, count=len(events))
    down = np.fromiter((isinstance(e, KeyDown) for e in events), dtype=bool, count=len(events))
    keys = tuple(key_identity(e) for e in events)
    cls = tuple(key_class_of(e.char, e.key_sym, e.key_class) for e in events)
    hand = tuple(hand_of(e.char if e.char else (e.key_sym if e.key_sym and len(e.key_sym) == 1 else None))
                 for e in events)
    toggle = tuple(bool(e.key_sym) and e.key_sym.lower() in LOCK_KEY_SYMS for e in events)
    return KeySequence(t, down, keys, cls, hand, toggle)


def with_times(events: Sequence[Event], t_ns: Sequence[int]) -> list[Event]:
    """Copies of ``events`` with new ``t_ns`` (everything else unchanged)."""
    return [msgspec.structs.replace(e, t_ns=int(t)) for e, t in zip(events, t_ns)]


def reorder_by_time(events: Sequence[Event], t_ns: Sequence[int]) -> list[Event]:
    """Events with new times, sorted by them, with ``seq`` re-assigned.

    For ``releases="population"``: a held run of key events (nothing else in
    between) gets new times that may change the press/release interleaving.
    The events are put in time order (ties keep the original order, so a
    key-up never precedes its own key-down) and take over the run's original
    ``seq`` values in that order, so ``seq`` order and time order still agree
    and the run occupies the same ``seq`` numbers as before.
    """
    t = np.asarray(t_ns, dtype=np.int64)
    order = np.lexsort((np.arange(len(t)), t))
    seqs = [e.seq for e in events]
    return [msgspec.structs.replace(events[int(i)], t_ns=int(t[i]), seq=s) for i, s in zip(order, seqs)]


# ---- left/right modifier keys --------------------------------------------------

# Left and right copies of the same modifier: (left name, left code, right
# name, right code) as each capture source reports them. Which side someone
# uses for Shift (always the left one, or the hand opposite the letter) is a
# stable personal habit and the key code says it outright. Only exact
# (name, code) matches are merged; anything else passes unchanged. AltGr
# (ISO_Level3_Shift, alt_gr) types other characters, so it is not an Alt.
MODIFIER_SIDE_PAIRS: tuple[tuple[str, int, str, int], ...] = (
    # X11 keycodes under evdev/libinput (Xorg, XWayland); names are X keysyms.
    ("Shift_L", 50, "Shift_R", 62), ("Control_L", 37, "Control_R", 105),
    ("Alt_L", 64, "Alt_R", 108), ("Super_L", 133, "Super_R", 134),
    # pynput on Windows: virtual-key codes VK_LSHIFT/VK_RSHIFT etc. (not tested: no such machine in CI).
    ("shift", 160, "shift_r", 161), ("ctrl_l", 162, "ctrl_r", 163), ("alt_l", 164, "alt_r", 165),
    ("cmd", 91, "cmd_r", 92),
    # pynput on macOS: kVK_Shift/kVK_RightShift etc. (not tested: no such machine in CI).
    ("shift", 56, "shift_r", 60), ("ctrl", 59, "ctrl_r", 62), ("alt", 58, "alt_r", 61), ("cmd", 55, "cmd_r", 54),
)
_SIDE_OF: dict[tuple[str, int], tuple[int, int]] = {}
for _i, (_ls, _lc, _rs, _rc) in enumerate(MODIFIER_SIDE_PAIRS):
    _SIDE_OF[(_ls.lower(), _lc)] = (_i, 0)
    _SIDE_OF[(_rs.lower(), _rc)] = (_i, 1)


class ModifierSideMerger:
    """Records left and right Shift/Control/Alt/Super as one key, streaming.

    A pressed modifier is given the *left* key's name and code, unless the
    left identity is already down (held by the other physical key): then it
    gets the right one. Its release gets the same identity as its press. So
    the output never presses a key that is already down, every release pairs
    with its own press, the text and the order of events are unchanged, and
    the only trace of sides left is that two copies were held at once, which
    the two presses show anyway.

    Stateful across calls (a modifier may be held across batches and typing
    runs); one instance per session.
    """

    def __init__(self) -> None:
        # pair index -> {physical side (0 left, 1 right): identity given (0/1)}
        self._down: dict[int, dict[int, int]] = {}

    def __call__(self, ev: Event) -> Event:
        """``ev`` with its modifier side replaced (other events unchanged)."""
        if not isinstance(ev, (KeyDown, KeyUp)) or ev.key_code is None or ev.key_sym is None:
            return ev
        hit = _SIDE_OF.get((ev.key_sym.lower(), ev.key_code))
        if hit is None:
            return ev
        pair, physical = hit
        down = self._down.setdefault(pair, {})
        given = down.get(physical)
        if given is None:
            given = 0 if 0 not in down.values() else 1
        if isinstance(ev, KeyDown):
            down[physical] = given  # autorepeat presses keep the identity they got
        else:
            down.pop(physical, None)
        if given == physical:
            return ev
        ls, lc, rs, rc = MODIFIER_SIDE_PAIRS[pair]
        sym, code = (ls, lc) if given == 0 else (rs, rc)
        return msgspec.structs.replace(ev, key_sym=sym, key_code=code)

    def merge(self, events: Sequence[Event]) -> list[Event]:
        """Every event of ``events`` through :meth:`__call__`."""
        return [self(e) for e in events]


def merge_modifier_sides(events: Sequence[Event]) -> list[Event]:
    """Left/right modifier merge of one event sequence (pure; see :class:`ModifierSideMerger`)."""
    return ModifierSideMerger().merge(events)


def anonymize_key_events(events: Sequence[KeyDown | KeyUp], params: TypingParams | None = None,
                         model: PopulationModel | None = None, seed: int | None = None) -> list[Event]:
    """Population re-timing of a list of key events; order, keys and text unchanged."""
    if not events:
        return []
    if not all(is_key_event(e) for e in events):
        raise ValueError("anonymize_key_events takes KeyDown/KeyUp events only")
    if params is not None and params.modifier_sides == "merge":
        events = merge_modifier_sides(events)
    seq = sequence_from_events(events)
    new_t = population_retime(seq, params, model, seed)
    if params is not None and params.releases == "population":
        return reorder_by_time(events, new_t)
    return with_times(events, new_t)


def kloak_events(events: Sequence[Event], max_delay_ms: float = 50.0, seed: int | None = None) -> list[Event]:
    """Kloak-style baseline over any events: random bounded delay, order kept."""
    if not events:
        return []
    t = np.fromiter((e.t_ns for e in events), dtype=np.int64, count=len(events))
    return with_times(events, kloak_retime(t, max_delay_ms, np.random.default_rng(seed)))


__all__ = [
    "KEY_CLASSES", "MODIFIER_SIDE_PAIRS", "KeySequence", "ModifierSideMerger", "PopulationModel",
    "PopulationRetimer", "TypingParams", "anonymize_key_events", "default_model", "gap_classes", "hand_of",
    "key_class_of", "kloak_events", "kloak_retime", "merge_modifier_sides", "population_retime",
    "reorder_by_time", "sequence_from_events", "with_times",
]

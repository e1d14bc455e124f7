"""Random raw lake frames for the differential tests of the compiled stages
(imported as ``kernel_frames``).

Physically valid like the agent's events: every event has a session, a seq
and a time; pointer events have coordinates; a session's seq increases in
capture order. What varies is everything the stages branch on: focus
changes (lock screens, denied windows, windows without an app), pauses,
idle/active, gaps over the task and session limits, backward clock jumps,
typing with backspaces, caret keys, word deletes, redacted spans, Enter/Tab,
hotkeys, pointer moves at several speeds with rests, clicks and drags, and
the lake layout (sessions split into runs, shuffled, interleaved).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import polars as pl

T0 = 1_763_900_000_000_000_000

_CHARS = list("abcdefgh  .,ÄxYz") + ["\t", "\r", "ab"]
_KEYS = [
    ("BackSpace", None, 0.20),
    ("Return", "\r", 0.03),
    ("Tab", "\t", 0.02),
    ("Left", None, 0.04),
    ("Right", None, 0.03),
    ("Home", None, 0.01),
    ("End", None, 0.01),
    ("Up", None, 0.01),
    ("Down", None, 0.01),
    ("Delete", None, 0.02),
    ("Escape", None, 0.01),
    ("Shift_L", None, 0.02),
]
_APPS = ["editor", "browser", "xterm", "i3lock", None]


def _session(rng: np.random.Generator, name: str, n: int, t0: int) -> list[dict]:
    rows: list[dict] = []
    t = t0
    x, y = int(rng.integers(0, 1920)), int(rng.integers(0, 1080))
    caret_fields = rng.random() < 0.5  # half the sessions never move the caret

    def add(typ: str, dt_ms: float, **kw) -> None:
        nonlocal t
        t += int(dt_ms * 1e6)
        rows.append({"type": typ, "session": name, "t_ns": t, **kw})

    add("session_start", 0, screen_w=1920, screen_h=1080)
    while len(rows) < n:
        r = rng.random()
        if r < 0.35:  # a movement: samples at some rate, sometimes with a rest
            dt = float(rng.choice([1, 4, 8, 16, 40]))
            # Sometimes a long one (over 128 samples: Polars sums those in blocks).
            for _ in range(int(rng.integers(1, 40)) if rng.random() > 0.05 else 300):
                x += int(rng.normal(0, 8))
                y += int(rng.normal(0, 6))
                gap = dt if rng.random() > 0.05 else float(rng.choice([0, 120, 151, 400]))
                add("mouse_move", gap, x=x, y=y)
        elif r < 0.45:  # a click or a drag
            button = str(rng.choice(["left", "right"]))
            add("button_down", float(rng.choice([5, 100, 150, 200])), x=x, y=y, button=button)
            for _ in range(int(rng.integers(0, 6))):
                x += int(rng.integers(-20, 20))
                add("mouse_move", 12, x=x, y=y)
            if rng.random() < 0.95:  # sometimes the up is lost
                add("button_up", 60, x=x, y=y, button=button)
        elif r < 0.80:  # typing
            for _ in range(int(rng.integers(1, 25))):
                q = rng.random()
                mods = 0
                acc = 0.0
                sym, ch = None, None
                for ksym, kch, p in _KEYS:
                    acc += p
                    if q < acc:
                        sym, ch = ksym, kch
                        break
                if sym in ("Left", "Right", "Home", "End", "Up", "Down", "Delete") and not caret_fields:
                    sym, ch = "BackSpace", None
                if sym is None:
                    ch = str(rng.choice(_CHARS))
                    sym = "space" if ch == " " else ch
                if rng.random() < 0.04:
                    mods = 2  # ctrl: hotkeys, and ctrl+BackSpace / ctrl+Delete delete words
                    if sym == "Delete" and not caret_fields:
                        sym = "BackSpace"
                if rng.random() < 0.03:
                    kind = str(rng.choice(["EMAIL", "AWS_KEY", ""]))
                    for _ in range(int(rng.integers(1, 5))):
                        add("key_down", 80, key_class="letter", redacted=kind, modifiers=0)
                        add("key_up", 30, key_class="letter", redacted=kind, modifiers=0)
                    continue
                add("key_down", float(rng.choice([0, 60, 90, 300, 900])), key_sym=sym, char=ch, modifiers=mods)
                if rng.random() < 0.9:
                    add("key_up", 40, key_sym=sym, char=ch, modifiers=mods)
        elif r < 0.88:  # a window switch
            app = _APPS[int(rng.integers(0, len(_APPS)))]
            denied = bool(rng.random() < 0.1)
            title = None if denied else str(rng.choice(["a", "b", "notes"]))
            add("focus_change", 30, app=None if denied else app, title=title, denied=denied)
        elif r < 0.92:
            add(str(rng.choice(["pause", "resume", "idle", "active"])), 50)
        elif r < 0.95:
            add("scroll", 40, x=x, y=y, dx=0, dy=int(rng.choice([-1, 1])))
        elif r < 0.97:  # a long gap: a new task or a new work session
            t += int(float(rng.choice([61, 301])) * 1e9)
        elif r < 0.98:  # the clock jumps backwards
            t -= int(float(rng.choice([0.001, 5, 500])) * 1e9)
        else:
            add("session_start", 10, screen_w=int(rng.choice([1280, 1920])), screen_h=800)
    for seq, row in enumerate(rows):
        row["seq"] = seq
    return rows


def random_raw(seed: int, sessions: int = 4, events: int = 300, layout: str = "runs") -> pl.DataFrame:
    """A raw lake frame (the lake's column names and types) of ``sessions``
    random sessions of about ``events`` events. ``layout``: ``runs`` (each
    session in one to three runs, the runs shuffled, as files of a lake),
    ``sorted`` (already in order) or ``shuffled`` (rows in random order)."""
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    parts: list[list[dict]] = []
    for s in range(sessions):
        sess = _session(rng, f"s{seed}-{s}", events, T0 + int(rng.integers(0, 10**12)))
        cuts = sorted(rng.choice(np.arange(1, len(sess)), size=int(rng.integers(0, 3)), replace=False).tolist())
        bounds = [0, *cuts, len(sess)]
        parts.extend(sess[a:b] for a, b in pairwise(bounds))
    if layout == "runs":
        for i in rng.permutation(len(parts)):
            rows.extend(parts[i])
    else:
        for p in parts:
            rows.extend(p)
        if layout == "shuffled":
            rows = [rows[i] for i in rng.permutation(len(rows))]
    schema = {
        "type": pl.String, "session": pl.String, "seq": pl.Int64, "t_ns": pl.Int64, "x": pl.Int64, "y": pl.Int64,
        "button": pl.String, "dx": pl.Int64, "dy": pl.Int64, "key_sym": pl.String, "char": pl.String,
        "modifiers": pl.Int64, "key_class": pl.String, "redacted": pl.String, "app": pl.String, "title": pl.String,
        "url": pl.String, "denied": pl.Boolean, "screen_w": pl.Int64, "screen_h": pl.Int64, "person": pl.String,
        "device": pl.String,
    }  # fmt: skip
    df = pl.DataFrame(rows, schema={k: v for k, v in schema.items() if k not in ("person", "device")})
    return df.with_columns(
        pl.concat_str(pl.lit("p_"), pl.col("session").str.slice(0, 3)).alias("person"),
        pl.lit(None, dtype=pl.String).alias("device"),
    ).select(list(schema))


def as_read(df: pl.DataFrame) -> pl.DataFrame:
    """The frame as the engine reads the lake: string columns dictionary-encoded (Categorical)."""
    return df.with_columns(pl.col(pl.String).cast(pl.Categorical))

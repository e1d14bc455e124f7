#!/usr/bin/env python
"""Events per second through the typing + cursor anonymizer stages.

Baseline measured in the same run: the same events through an empty
Pipeline (what the agent pays without the anonymizers). Input: a synthetic
mix of typing bursts (≈8 keys/s with pauses) and pointer motion (125 Hz
samples between clicks), fed in 250 ms chunks as the agent does.

    .venv/bin/python benchmarks/privacy/bench_stage_throughput.py --events 200000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tracework.events import ButtonDown, ButtonUp, KeyDown, KeyUp, MouseMove
from tracework.privacy.anonymize_stage import CursorStage, TypingStage
from tracework.privacy.stage import Pipeline

MS = 1_000_000


def make_events(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = 1_700_000_000_000 * MS
    out = []
    x, y = 500, 500
    while len(out) < n:
        if rng.random() < 0.5:  # a typing burst
            for _ in range(int(rng.integers(5, 40))):
                ch = chr(97 + int(rng.integers(0, 26)))
                out.append(KeyDown(seq=len(out), t_ns=t, session="s", key_code=ord(ch), char=ch))
                t += int(rng.integers(40, 120)) * MS
                out.append(KeyUp(seq=len(out), t_ns=t, session="s", key_code=ord(ch), char=ch))
                t += int(rng.integers(20, 150)) * MS
        else:  # a pointer movement and a click
            for _ in range(int(rng.integers(10, 80))):
                x = max(0, x + int(rng.integers(-15, 16)))
                y = max(0, y + int(rng.integers(-15, 16)))
                out.append(MouseMove(seq=len(out), t_ns=t, session="s", x=x, y=y))
                t += 8 * MS
            out.append(ButtonDown(seq=len(out), t_ns=t, session="s", x=x, y=y, button="left"))
            t += 90 * MS
            out.append(ButtonUp(seq=len(out), t_ns=t, session="s", x=x, y=y, button="left"))
        t += int(rng.integers(300, 3000)) * MS
    return out[:n]


def run(pipe: Pipeline, events) -> float:
    start = time.perf_counter()
    chunk: list = []
    edge = events[0].t_ns + 250 * MS
    out: list = []
    for ev in events:
        if ev.t_ns >= edge:
            out += pipe.process(chunk, edge)
            chunk = []
            edge = ev.t_ns + 250 * MS
        chunk.append(ev)
    out += pipe.process(chunk, edge) + pipe.flush(edge)
    # The cursor stage re-samples movements (its own number of moves); every other event passes once.
    non_moves = lambda evs: sum(not isinstance(e, MouseMove) for e in evs)  # noqa: E731
    assert non_moves(out) == non_moves(events)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    args = ap.parse_args()
    events = make_events(args.events)
    base = run(Pipeline([]), events)
    anon = run(Pipeline([TypingStage(), CursorStage()]), events)
    rate = len(events) / anon
    print(f"events: {len(events)}")
    print(f"baseline (empty pipeline): {len(events) / base:,.0f} events/s")
    print(f"typing + cursor anonymizers: {rate:,.0f} events/s "
          f"({anon / base:.1f}x the baseline's time; {rate / 20:,.0f}x one person's 20 events/s)")


if __name__ == "__main__":
    main()

"""Agent capture throughput: events per second per core, from the capture
callback to the durable spool.

What runs: a feeder thread calls ``handle_mouse_event`` — the function the X11
mouse listener calls for every XRecord device event — with MotionNotify
events, as fast as it can; the main thread is the agent's real flusher
(``Agent._flush``: drain, build events, privacy pipeline, one SQLite WAL
transaction with synchronous=FULL) every ``agent.flush_interval_ms``. The
figure is events captured (handed to the callback and carried through the
flusher into the spool) divided by the process's CPU seconds (all threads),
i.e. events per second per core. The person has consented to every data class
(the consent gate runs and passes everything). With the cursor anonymizer the
spool holds fewer moves than were captured (each movement is re-sampled at
60-125 Hz), so the stored count is printed beside the figure.

Baseline, same run: a naive capture that does one INSERT and one commit per
event on the same kind of spool (WAL, synchronous=FULL).

    .venv/bin/python benchmarks/agent/bench_capture.py [--events 1000000] [--baseline-events 3000]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import msgspec

from tracework import config
from tracework.agent.capture import EventBuilder, Recorder
from tracework.agent.runner import Agent, RunOptions
from tracework.agent.sources import handle_mouse_event
from tracework.agent.spool import Spool
from tracework.events import MouseMove
from tracework.governance.purposes import DATA_CLASSES
from tracework.privacy.chain import build_pipeline
from tracework.privacy.stage import Pipeline


def _events(n: int) -> list:
    # XRecord hands the listener parsed Xlib events; these carry the same
    # attributes the handler reads (type 6 = MotionNotify).
    return [SimpleNamespace(type=6, root_x=i % 1280, root_y=(i * 7) % 800, detail=0, state=0) for i in range(n)]


def run_agent_path(n: int, pipeline, folder: Path, flush_ms: int) -> dict:
    settings = config.load({"home": str(folder / "home")})
    agent = Agent(settings, RunOptions())
    agent.recorder = Recorder()
    agent.recorder.set_paused(False)
    agent._allowed = frozenset(DATA_CLASSES)  # consent to every class: the gate passes everything
    agent.pipeline = pipeline
    agent.session = "bench"
    agent._last_input = time.monotonic_ns()
    agent._idle = False
    builder = EventBuilder("bench", time.time_ns(), time.monotonic_ns())
    spool = Spool(folder / "spool.db")
    events = _events(n)
    done = threading.Event()

    def feed() -> None:
        recorder = agent.recorder
        for ev in events:
            handle_mouse_event(recorder, ev)
        done.set()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    feeder = threading.Thread(target=feed)
    feeder.start()
    interval = flush_ms / 1000.0
    while not done.is_set() or agent.recorder.buffered():
        done.wait(interval)
        agent._flush(spool, builder)
    agent._flush(spool, builder, final=True)
    feeder.join()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    stored = spool.pending()[0]
    spool.close()
    if stored == 0:
        raise RuntimeError("the agent path stored nothing: the benchmark no longer drives the capture path")
    return {"captured": n, "stored": stored, "cpu_s": cpu, "wall_s": wall, "per_core": n / cpu}


def run_naive(n: int, folder: Path) -> dict:
    db = sqlite3.connect(folder / "naive.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    enc = msgspec.json.Encoder()
    base = time.time_ns()
    seq = 0

    def on_move(x: int, y: int) -> None:
        nonlocal seq
        ev = MouseMove(seq=seq, t_ns=base + time.monotonic_ns(), session="bench", x=x, y=y)
        db.execute("BEGIN")
        db.execute("INSERT INTO events VALUES (?, ?)", (seq, enc.encode(ev)))
        db.execute("COMMIT")
        seq += 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    for ev in _events(n):
        on_move(ev.root_x, ev.root_y)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    stored = db.execute("SELECT count(*) FROM events").fetchone()[0]
    db.close()
    # A naive agent is bound by commits (fsync), not CPU: report both rates.
    return {"stored": stored, "cpu_s": cpu, "wall_s": wall, "per_core": stored / cpu, "per_s": stored / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--baseline-events", type=int, default=3000)
    parser.add_argument("--flush-ms", type=int, default=250)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        (tmp / "c").mkdir()
        bare = run_agent_path(args.events, Pipeline([]), tmp / "a", args.flush_ms)
        full_n = max(10_000, args.events // 10)
        full = run_agent_path(full_n, build_pipeline(), tmp / "b", args.flush_ms)
        naive = run_naive(args.baseline_events, tmp / "c")

    names = ", ".join(t.name for t in build_pipeline().describe())
    print(f"callback -> spool, agent path without privacy stages: {bare['per_core']:,.0f} events/s per core "
          f"({bare['captured']:,} events captured, {bare['stored']:,} stored, {bare['cpu_s']:.2f} CPU s, {bare['wall_s']:.2f} wall s)")
    print(f"callback -> spool, agent path with the default privacy pipeline [{names}]: "
          f"{full['per_core']:,.0f} events/s per core ({full['captured']:,} events captured, {full['stored']:,} stored, "
          f"{full['cpu_s']:.2f} CPU s)")
    print(f"baseline, one INSERT+commit per event: {naive['per_core']:,.0f} events/s per CPU core, "
          f"{naive['per_s']:,.0f} events/s wall ({naive['stored']:,} events)")
    print(f"ratio agent path / baseline (per core): {bare['per_core'] / naive['per_core']:.1f}x without stages, "
          f"{full['per_core'] / naive['per_core']:.1f}x with the pipeline; "
          f"wall-clock ratio {bare['captured'] / bare['wall_s'] / naive['per_s']:.1f}x")
    target = 100_000
    print(f"target >= {target:,}/s per core: {'met' if bare['per_core'] >= target else 'NOT met'} without stages, "
          f"{'met' if full['per_core'] >= target else 'NOT met'} with the pipeline")


if __name__ == "__main__":
    main()

"""Where a collector request thread's CPU goes, per 5,000-event Arrow batch, in process.

No HTTP and no writer: the benchmark batches of bench_ingest.py are
decompressed, read and validated in a loop, each step timed with the thread's
CPU clock (median of alternating rounds over many distinct batches, so caches
are as cold as in the server). Printed per batch and per event:

  * zstd decompression (the collector's one-step path),
  * the Arrow IPC read (schema check, record batch full validation),
  * validation against the event model (``arrow_wire._validate``),
  * and, with ``--reference PATH``, the same validation by an older
    implementation (a module with ``validate_reference(table)``, e.g.
    tests/events/arrow_wire_oracle.py) in the same rounds, with the ratio.

    .venv/bin/python benchmarks/collector/bench_request_split.py [--batches 40] [--rounds 15]
        [--reference tests/events/arrow_wire_oracle.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import pyarrow as pa

from tracework import events as ev
from tracework.collector.ingest import _decompress
from tracework.events import arrow_wire

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import realistic_events  # noqa: E402

BATCH = 5_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=40, help="distinct batches per round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--reference", default=None, help="module file with validate_reference(table)")
    args = parser.parse_args()

    t0 = time.time_ns() - 3_600 * 10**9
    bodies = []
    for b in range(args.batches):
        events = realistic_events(BATCH, t0 + b * BATCH * 1_000_000, f"session-{b % 50}")
        header = ev.BatchHeader(batch_id=uuid.uuid4().hex, schema_version=ev.SCHEMA_VERSION, event_count=BATCH)
        bodies.append(arrow_wire.encode_arrow_batch(header, events))
    limit = 64 << 20
    raws = [_decompress(body, limit) for body in bodies]
    tables = []
    for raw in raws:
        schema, batches = arrow_wire._read_stream(raw)
        tables.append(pa.Table.from_batches(batches, schema=schema.remove_metadata()))

    steps = {
        "zstd decompression": (bodies, lambda body: _decompress(body, limit)),
        "Arrow IPC read": (raws, arrow_wire._read_stream),
        "validation": (tables, arrow_wire._validate),
    }
    if args.reference:
        spec = importlib.util.spec_from_file_location("validation_reference", args.reference)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(os.path.abspath(args.reference)))
        spec.loader.exec_module(module)
        steps["validation (reference)"] = (tables, module.validate_reference)

    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, (inputs, step) in steps.items():
            started = time.thread_time()
            for item in inputs:
                step(item)
            times[name].append((time.thread_time() - started) / len(inputs))

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"{args.batches} batches of {BATCH:,} events, median of {args.rounds} rounds (thread CPU)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:24s} {median * 1e6:8.1f} us per batch = {median / BATCH * 1e9:6.1f} ns/event")
    if args.reference:
        new, old = statistics.median(times["validation"]), statistics.median(times["validation (reference)"])
        print(f"validation: {old / new:.2f}x the reference's speed")


if __name__ == "__main__":
    main()

"""Collector ingest benchmark: events per second per core, end to end.

A load generator on 127.0.0.1 posts wire batches of 5,000 events (Arrow IPC
stream batches, the agent's default, and in the same run zstd NDJSON
batches) to a real
``tracework serve`` (uvicorn, one worker, python -m tracework.collector) and
waits for each 200, which the collector only sends once the batch is durable
in the Delta lake. Measured:

  * events/s end to end (wall time from the first post to the last 200),
  * collector CPU seconds (utime+stime of the process from /proc, all its
    threads) -> events per CPU-second, i.e. per core,
  * peak RSS of the collector (VmHWM),
  * and the final lake row count, which must equal the events sent.

In the same run, the baseline: an ActivityWatch-style server
(aw_style_server.py) receiving one JSON event per POST into SQLite, driven
the same way (concurrent clients, bounded loop). Both figures and the ratio
are printed.

    .venv/bin/python benchmarks/collector/bench_ingest.py [--events 2000000] [--ndjson-events 1000000] [--baseline-events 20000]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import msgspec

from tracework import events as ev
from tracework.events.arrow_wire import ARROW_CONTENT_TYPE, encode_arrow_batch
from tracework.governance.devices import DeviceRegistry
from tracework.lake import read_events

HERE = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (utime+stime) per kind of thread of ``pid``: the event loop
    (the main thread: HTTP), the request worker threads (decode, checks) and
    the lake writer (Parquet, commit, fsync)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        kind = "loop" if task.name == str(pid) else "writer" if name == "tw-lake-writer" else "workers"
        out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def proc_status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def wait_listening(url: str, proc: subprocess.Popen, path: str = "/healthz") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited during startup")
        try:
            httpx.get(url + path, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def realistic_events(n: int, t0: int, session: str) -> list:
    """Mostly mouse moves, then keys, clicks, scrolls and focus changes."""
    out = []
    for i in range(n):
        t = t0 + i * 1_000_000
        k = i % 20
        if k < 13:
            out.append(ev.MouseMove(seq=i, t_ns=t, session=session, x=(i * 7) % 1920, y=(i * 3) % 1080))
        elif k < 15:
            out.append(ev.KeyDown(seq=i, t_ns=t, session=session, key_code=38 + k, key_sym="a", char="a"))
        elif k < 17:
            out.append(ev.KeyUp(seq=i, t_ns=t, session=session, key_code=38 + k, key_sym="a", char="a"))
        elif k == 17:
            out.append(ev.ButtonDown(seq=i, t_ns=t, session=session, x=100, y=200, button="left"))
        elif k == 18:
            out.append(ev.ButtonUp(seq=i, t_ns=t, session=session, x=100, y=200, button="left"))
        else:
            if i % 200 == 19:
                out.append(ev.FocusChange(seq=i, t_ns=t, session=session, app="firefox", title="Docs - page", window_id=42))
            else:
                out.append(ev.Scroll(seq=i, t_ns=t, session=session, x=5, y=6, dy=-1))
    return out


def run_parallel(items: list, clients: int, send) -> float:
    """Send ``items`` with ``clients`` threads; returns wall seconds."""
    index = iter(range(len(items)))
    lock = threading.Lock()
    errors: list[str] = []

    def worker():
        with httpx.Client(timeout=120) as client:
            while True:
                with lock:
                    i = next(index, None)
                if i is None or errors:
                    return
                err = send(client, items[i])
                if err:
                    errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} request(s) failed, first: {errors[0]}")
    return wall


def bench_tracework(total_events: int, batch_size: int, clients: int, workdir: Path, fmt: str = "arrow",
                    consent: bool = False) -> dict:
    data_dir = workdir / f"tracework-{fmt}{'-consent' if consent else ''}"
    registry = DeviceRegistry(data_dir)
    _, token = registry.enroll("bench-person", "bench-device")
    registry.close()
    if consent:
        # The person consents to every class of agent training, so every batch
        # passes the check; what is measured is the check's cost.
        from tracework.governance import open_governance, operator
        from tracework.governance.purposes import PURPOSES

        gov = open_governance(data_dir)
        try:
            gov.add_person(operator("bench"), "bench-person")
            gov.grant(operator("bench"), "bench-person", "agent_training", sorted(PURPOSES["agent_training"][1]),
                      gov.notices.current_version("agent_training"))
        finally:
            gov.close()
    n_batches = total_events // batch_size
    # Events are 1 ms apart; the run's newest event lies a minute in the past,
    # however many events there are (starting a fixed hour back pushed runs
    # over 3.6M events past the collector's 300 s future limit).
    t0 = time.time_ns() - (n_batches + 2) * batch_size * 1_000_000 - 60 * 10**9
    print(f"[tracework {fmt}] encoding {n_batches} batches of {batch_size} events (not timed)...", flush=True)
    encode = encode_arrow_batch if fmt == "arrow" else ev.encode_batch
    bodies = []
    for b in range(n_batches + 2):  # two warm-up batches
        events = realistic_events(batch_size, t0 + b * batch_size * 1_000_000, f"session-{b % 50}")
        header = ev.BatchHeader(batch_id=uuid.uuid4().hex, schema_version=ev.SCHEMA_VERSION, event_count=batch_size)
        bodies.append(encode(header, events))
    wire_bytes = sum(len(b) for b in bodies[2:])
    port = free_port()
    # Without --consent the check is off (--no-require-consent); with it, the
    # default of `tracework serve`: every batch's data classes checked.
    env = dict(os.environ, TRACEWORK_CONFIG=str(workdir / "none.toml"),
               TRACEWORK_COLLECTOR_REQUIRE_CONSENT="1" if consent else "0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracework.collector", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    content_type = ARROW_CONTENT_TYPE if fmt == "arrow" else ev.CONTENT_TYPE
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type, "Content-Encoding": ev.CONTENT_ENCODING}

    def send(client: httpx.Client, body: bytes):
        r = client.post(url + "/v1/batches", content=body, headers=headers)
        if r.status_code != 200 or r.json()["stored"] != batch_size:
            return f"{r.status_code} {r.text[:200]}"
        return None

    try:
        wait_listening(url, proc)
        with httpx.Client(timeout=120) as c:
            for body in bodies[:2]:  # warm-up: table creation, imports, caches
                assert send(c, body) is None
        cpu_before = proc_cpu_seconds(proc.pid)
        threads_before = thread_cpu_seconds(proc.pid)
        self_before = time.process_time()
        wall = run_parallel(bodies[2:], clients, send)
        cpu = proc_cpu_seconds(proc.pid) - cpu_before
        threads = thread_cpu_seconds(proc.pid)
        threads = {k: v - threads_before.get(k, 0.0) for k, v in threads.items()}
        loadgen_cpu = time.process_time() - self_before
        peak_rss_mb = proc_status_kb(proc.pid, "VmHWM") / 1024
        metrics = httpx.get(url + "/metrics", timeout=30).text
        commits = _metric(metrics, "tracework_commit_batches_count")
        batches_per_commit = _metric(metrics, "tracework_commit_batches_sum") / max(commits, 1)
    finally:
        stop(proc)
    stored = read_events(data_dir, columns=["seq"]).num_rows
    expected = (n_batches + 2) * batch_size
    if stored != expected:
        raise RuntimeError(f"lake holds {stored} rows, {expected} were sent")
    sent = n_batches * batch_size
    return {
        "events": sent,
        "wall_s": wall,
        "cpu_s": cpu,
        "events_per_s": sent / wall,
        "events_per_cpu_s": sent / cpu,
        "peak_rss_mb": peak_rss_mb,
        "wire_bytes_per_event": wire_bytes / sent,
        "loadgen_cpu_s": loadgen_cpu,
        "lake_rows_verified": stored,
        "batches_per_commit": batches_per_commit,
        # Threads that ended during the run (idle workers) are not counted here.
        "us_per_event_by_thread": {k: v / sent * 1e6 for k, v in sorted(threads.items())},
    }


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def bench_baseline(total_events: int, clients: int, workdir: Path) -> dict:
    db = workdir / "aw.sqlite"
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "aw_style_server.py"), str(db), str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    t0 = time.time_ns() - (total_events + 100) * 1_000_000 - 60 * 10**9
    bodies = [msgspec.json.encode(e) for e in realistic_events(total_events + 100, t0, "baseline")]

    def send(client: httpx.Client, body: bytes):
        r = client.post(url + "/api/0/buckets/bench/events", content=body, headers={"Content-Type": "application/json"})
        return None if r.status_code == 200 else f"{r.status_code} {r.text[:200]}"

    try:
        wait_listening(url, proc, "/")
        with httpx.Client(timeout=60) as c:
            for body in bodies[:100]:
                assert send(c, body) is None
        cpu_before = proc_cpu_seconds(proc.pid)
        wall = run_parallel(bodies[100:], clients, send)
        cpu = proc_cpu_seconds(proc.pid) - cpu_before
        peak_rss_mb = proc_status_kb(proc.pid, "VmHWM") / 1024
    finally:
        stop(proc)
    stored = sqlite3.connect(db).execute("SELECT count(*) FROM eventmodel").fetchone()[0]
    if stored != total_events + 100:
        raise RuntimeError(f"baseline stored {stored} rows, {total_events + 100} were sent")
    return {
        "events": total_events,
        "wall_s": wall,
        "cpu_s": cpu,
        "events_per_s": total_events / wall,
        "events_per_cpu_s": total_events / cpu,
        "peak_rss_mb": peak_rss_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000, help="events sent to the Tracework collector")
    parser.add_argument("--ndjson-events", type=int, default=1_000_000, help="events sent as NDJSON batches (0: skip)")
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=4, help="concurrent uploaders")
    parser.add_argument("--baseline-events", type=int, default=20_000, help="events sent to the baseline (one per POST)")
    parser.add_argument("--baseline-clients", type=int, default=8)
    parser.add_argument("--workdir", default=None, help="where to put the lake (default: a temp folder, removed)")
    parser.add_argument("--consent", action="store_true",
                        help="run the collector with the consent check on (the default of `tracework serve`); "
                        "the benchmark person consents to every class")
    args = parser.parse_args()

    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
        "the load generator runs on the same machine"
    )
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        ours = bench_tracework(args.events, args.batch_size, args.clients, work, "arrow", args.consent)
        print(f"consent check: {'on (every batch classified and checked)' if args.consent else 'off'}")
        print(
            f"tracework collector, Arrow batches: {ours['events']:,} events in {ours['wall_s']:.2f} s wall = {ours['events_per_s']:,.0f} events/s; "
            f"collector CPU {ours['cpu_s']:.2f} s = {ours['events_per_cpu_s']:,.0f} events/s per core; "
            f"peak RSS {ours['peak_rss_mb']:.0f} MB; {ours['wire_bytes_per_event']:.1f} wire bytes/event; "
            f"lake rows verified: {ours['lake_rows_verified']:,}; {ours['batches_per_commit']:.1f} batches per lake commit",
            flush=True,
        )
        print("  collector CPU per event by thread: " + ", ".join(f"{k} {v:.2f} us" for k, v in ours["us_per_event_by_thread"].items()))
        if args.ndjson_events:
            nd = bench_tracework(args.ndjson_events, args.batch_size, args.clients, work, "ndjson", args.consent)
            print(
                f"tracework collector, NDJSON batches: {nd['events']:,} events in {nd['wall_s']:.2f} s wall = "
                f"{nd['events_per_s']:,.0f} events/s; collector CPU {nd['cpu_s']:.2f} s = {nd['events_per_cpu_s']:,.0f} "
                f"events/s per core; peak RSS {nd['peak_rss_mb']:.0f} MB; {nd['wire_bytes_per_event']:.1f} wire bytes/event; "
                f"lake rows verified: {nd['lake_rows_verified']:,}; {nd['batches_per_commit']:.1f} batches per lake commit",
                flush=True,
            )
        base = bench_baseline(args.baseline_events, args.baseline_clients, work)
        print(
            f"baseline (one JSON event per POST, SQLite): {base['events']:,} events in {base['wall_s']:.2f} s wall = "
            f"{base['events_per_s']:,.0f} events/s; server CPU {base['cpu_s']:.2f} s = {base['events_per_cpu_s']:,.0f} "
            f"events/s per core; peak RSS {base['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    print(
        f"ratio tracework Arrow/baseline: {ours['events_per_cpu_s'] / base['events_per_cpu_s']:,.0f}x per core, "
        f"{ours['events_per_s'] / base['events_per_s']:,.0f}x wall-clock throughput"
    )
    if args.ndjson_events:
        print(
            f"ratio tracework NDJSON/baseline: {nd['events_per_cpu_s'] / base['events_per_cpu_s']:,.0f}x per core; "
            f"Arrow/NDJSON: {ours['events_per_cpu_s'] / nd['events_per_cpu_s']:.2f}x per core"
        )
    target = 1_000_000
    print(
        f"target {target:,} events/s per core: reached {ours['events_per_cpu_s'] / target:.0%}; "
        f"memory target < 500 MB: peak {ours['peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()

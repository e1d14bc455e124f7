"""Benchmark: raw events per second per core from the lake to exported shards.

    .venv/bin/python benchmarks/builder/bench_build.py [--events 10000000] [--baseline-events 500000]

1. Generates a lake of ``--events`` raw events (not timed): many sessions and
   people, a realistic mix (mostly mouse moves; key downs/ups with backspaces,
   Enter and ctrl hotkeys; clicks, double clicks and drags; scroll bursts;
   focus changes), written with deltalake directly.
2. Builds a small lake once in this process (fills numba's cache: the
   kernels are compiled once per machine, not per build; not counted).
   In a fresh child process (so its peak RSS is the build's alone) runs
   ``build_datasets`` for all three kinds and reports wall time, CPU seconds
   (user + system, all threads), events per CPU second and peak RSS; then
   again with Polars' allocator told to keep freed pages
   (``_RJEM_MALLOC_CONF``, skipped with ``--no-allocator-variant``).
3. Baseline in the same run: a naive per-event Python loop over
   ``--baseline-events`` events of that lake, and the vectorised
   sessionize + action reduction over the same subset; both rates and the
   ratio. The naive loop computes a subset of the fields (printed with the
   result), so the ratio favours the baseline.

Targets (issue 5): ≥ 2,000,000 raw events per second per core, peak RSS < 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

# jemalloc (Polars' allocator) options for the second build: keep freed pages.
# `tracework build` sets the same (tracework.cli._BUILD_ALLOCATOR).
KEEP_PAGES = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
EVENTS_PER_SESSION = 20_000
PEOPLE = 300
T0 = 1_763_900_000_000_000_000


def generate(data_dir: Path, n_events: int, seed: int = 5) -> None:
    """Write a lake of about ``n_events`` events (vectorised numpy, in chunks)."""
    from deltalake import write_deltalake

    from tracework.lake import RAW_EVENTS_SCHEMA, table_path

    rng = np.random.default_rng(seed)
    path = table_path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz     "))
    apps = np.array(["firefox", "code", "xterm", "slack", "libreoffice"])
    chunk_sessions = max(1, 2_000_000 // EVENTS_PER_SESSION)
    n_sessions = max(1, n_events // EVENTS_PER_SESSION)
    for first in range(0, n_sessions, chunk_sessions):
        sessions = range(first, min(n_sessions, first + chunk_sessions))
        # Units: 0 move, 1 key press (down+up), 2 click (down+up), 3 scroll, 4 focus, 5 drag (down, 4 moves, up)
        probs = np.array([0.70, 0.24, 0.02, 0.03, 0.004, 0.006])
        sizes = np.array([1, 2, 2, 1, 1, 6])
        n_units = int(len(sessions) * EVENTS_PER_SESSION / float((probs * sizes).sum()))
        kind = rng.choice(6, size=n_units, p=probs)
        size = sizes[kind]
        rows_total = int(size.sum())
        unit_of_row = np.repeat(np.arange(n_units), size)
        pos_in_unit = np.arange(rows_total) - np.repeat(np.cumsum(size) - size, size)
        k = kind[unit_of_row]
        typ = np.full(rows_total, "mouse_move", dtype=object)
        typ[(k == 1) & (pos_in_unit == 0)] = "key_down"
        typ[(k == 1) & (pos_in_unit == 1)] = "key_up"
        typ[(k == 2) & (pos_in_unit == 0)] = "button_down"
        typ[(k == 2) & (pos_in_unit == 1)] = "button_up"
        typ[k == 3] = "scroll"
        typ[k == 4] = "focus_change"
        typ[(k == 5) & (pos_in_unit == 0)] = "button_down"
        typ[(k == 5) & (pos_in_unit == 5)] = "button_up"
        per = rows_total // len(sessions)
        sess_idx = np.minimum(np.arange(rows_total) // per, len(sessions) - 1) + first
        starts = np.r_[True, sess_idx[1:] != sess_idx[:-1]]
        typ[starts] = "session_start"
        n = rows_total
        seq = np.arange(n) - np.repeat(np.flatnonzero(starts), np.diff(np.r_[np.flatnonzero(starts), n]))
        dt_ms = np.where(typ == "mouse_move", rng.exponential(12, n), rng.exponential(150, n))
        dt_ms[rng.random(n) < 0.0005] += 120_000  # occasional long pauses (tasks)
        t = np.cumsum((dt_ms * 1e6).astype(np.int64))
        t = T0 + t - np.repeat(t[starts], np.diff(np.r_[np.flatnonzero(starts), n])) + (sess_idx.astype(np.int64) * 3_600 * 10**9)
        x = np.clip(960 + np.cumsum(rng.normal(0, 6, n)).astype(np.int64) % 1920 - 960, 0, 1919)
        y = np.clip(540 + np.cumsum(rng.normal(0, 4, n)).astype(np.int64) % 1080 - 540, 0, 1079)
        is_key = (typ == "key_down") | (typ == "key_up")
        r = rng.random(n)
        ch = letters[rng.integers(0, len(letters), n)]
        key_sym = np.where(ch == " ", "space", ch).astype(object)
        key_sym[r < 0.06] = "BackSpace"
        key_sym[(r >= 0.06) & (r < 0.07)] = "Return"
        char = ch.astype(object)
        char[(r < 0.07)] = None
        mods = np.where((r >= 0.07) & (r < 0.075), 2, 0)
        pointer = np.isin(typ, ["mouse_move", "button_down", "button_up", "scroll"])
        columns = {name: pa.nulls(n, t_) for name, t_ in zip(RAW_EVENTS_SCHEMA.names, RAW_EVENTS_SCHEMA.types)}
        columns["type"] = pa.array(typ.astype(str))
        columns["seq"] = pa.array(seq)
        columns["t_ns"] = pa.array(t)
        columns["session"] = pa.array(np.char.add("bench-", sess_idx.astype(str)))
        columns["x"] = pa.array(np.where(pointer, x, 0), mask=~pointer)
        columns["y"] = pa.array(np.where(pointer, y, 0), mask=~pointer)
        btn = np.isin(typ, ["button_down", "button_up"])
        columns["button"] = pa.array(np.where(btn, np.where(rng.random(n) < 0.9, "left", "right"), None))
        sc = typ == "scroll"
        columns["dy"] = pa.array(np.where(sc, -1, 0), mask=~sc)
        columns["dx"] = pa.array(np.zeros(n, np.int64), mask=~sc)
        columns["key_sym"] = pa.array(np.where(is_key, key_sym, None))
        columns["char"] = pa.array(np.where(is_key, char, None))
        columns["modifiers"] = pa.array(np.where(is_key | btn, mods, 0), mask=~(is_key | btn))
        foc = typ == "focus_change"
        app = apps[rng.integers(0, len(apps), n)]
        columns["app"] = pa.array(np.where(foc, app, None))
        columns["title"] = pa.array(np.where(foc, np.char.add(app.astype(str), " window"), None))
        st = typ == "session_start"
        columns["platform"] = pa.array(np.where(st, "linux-x11", None))
        columns["screen_w"] = pa.array(np.where(st, 1920, 0), mask=~st)
        columns["screen_h"] = pa.array(np.where(st, 1080, 0), mask=~st)
        columns["agent_version"] = pa.array(np.where(st, "bench", None))
        columns["person"] = pa.array(np.char.add("p_bench", (sess_idx % PEOPLE).astype(str)))
        columns["device"] = pa.array(np.char.add("d_bench", (sess_idx % PEOPLE).astype(str)))
        columns["batch_id"] = pa.array(np.char.add("batch-", (seq // 2000 + sess_idx * 1000).astype(str)))
        columns["received_ns"] = pa.array(t)
        columns["day"] = pa.array(np.datetime_as_string(t.astype("datetime64[ns]"), unit="D"))
        table = pa.table([columns[c] for c in RAW_EVENTS_SCHEMA.names], schema=RAW_EVENTS_SCHEMA)
        write_deltalake(str(path), table, mode="append", partition_by=["day"])


def naive_actions(rows: list[dict], multi_click_ms=500.0, drag_px=5.0, scroll_gap_ms=500.0) -> list[dict]:
    """The same reduction, one event at a time in Python (the baseline)."""
    actions: list[dict] = []
    rows.sort(key=lambda r: (r["session"], r["seq"]))
    session = None
    press = None
    path: list[tuple] = []
    typing = None
    for r in rows:
        if r["session"] != session:
            session, press, path, typing = r["session"], None, [], None
        t = r["type"]
        if t == "mouse_move":
            path.append((r["x"], r["y"], r["t_ns"]))
            continue
        if t == "button_down":
            press = {"x": r["x"], "y": r["y"], "t": r["t_ns"], "button": r["button"], "seq": r["seq"], "path": path}
            path, typing = [], None
        elif t == "button_up" and press is not None:
            moved = abs(r["x"] - press["x"]) + abs(r["y"] - press["y"]) > drag_px
            last = actions[-1] if actions else None
            if (not moved and last and last["session"] == session and last["action"] in ("click", "double_click")
                    and r["t_ns"] - last["t"] <= multi_click_ms * 1e6 and last["x"] == press["x"]):
                last["action"] = "double_click" if last["action"] == "click" else "triple_click"
            else:
                actions.append({"session": session, "action": "drag" if moved else "click", "x": press["x"], "y": press["y"],
                                "t": press["t"], "path": press["path"] + path, "seq_first": press["seq"], "seq_last": r["seq"]})
            press, path = None, []
        elif t == "scroll":
            last = actions[-1] if actions else None
            if last and last["action"] == "scroll" and last["session"] == session and r["t_ns"] - last["t"] <= scroll_gap_ms * 1e6:
                last["amount"] += abs(r["dy"] or 0)
                last["t"] = r["t_ns"]
            else:
                actions.append({"session": session, "action": "scroll", "x": r["x"], "y": r["y"], "t": r["t_ns"], "amount": abs(r["dy"] or 0),
                                "path": path, "seq_first": r["seq"]})
            path, typing = [], None
        elif t == "key_down":
            key = (r["key_sym"] or "").lower()
            if r["modifiers"] & 14:
                actions.append({"session": session, "action": "hotkey", "keys": ["ctrl", key], "t": r["t_ns"], "seq_first": r["seq"]})
                typing = None
            elif r["char"] or key == "backspace":
                if typing is None:
                    typing = {"session": session, "action": "type", "chars": [], "t": r["t_ns"], "seq_first": r["seq"]}
                    actions.append(typing)
                if key == "backspace":
                    if typing["chars"]:
                        typing["chars"].pop()
                else:
                    typing["chars"].append(r["char"])
            else:
                actions.append({"session": session, "action": "press", "keys": [key], "t": r["t_ns"], "seq_first": r["seq"]})
                typing = None
        elif t == "focus_change":
            typing = None
    for a in actions:
        if a["action"] == "type":
            a["text"] = "".join(a.pop("chars"))
    return actions


def _peak_rss_mb() -> float:
    """This process's peak resident memory. ``VmHWM`` where Linux has it:
    ``ru_maxrss`` survives fork and exec, so a child started by a parent
    that generated the lake in memory reported the parent's peak (seen:
    2,140 MB for a build whose own peak was 1,180 MB)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_build(data_dir: str, out: str) -> None:
    from tracework.builder import build_datasets

    wall = time.perf_counter()
    cpu = time.process_time()
    times = os.times()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    result = build_datasets(data_dir, out)
    report = {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "user_s": os.times().user - times.user,
        "sys_s": os.times().system - times.system,
        "peak_rss_mb": _peak_rss_mb(),
        "minor_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
        "counts": result.counts,
    }
    print(json.dumps(report))


def stages(data_dir: Path, repeats: int = 5) -> None:
    """CPU seconds of each stage of the build on the lake's first chunk (the
    smallest of ``repeats`` runs, warm), to show where the time goes. Python's
    cycle collector is paused and Arrow allocates from the system allocator,
    as in ``build_datasets``."""
    from tracework.builder.engine import _arrow_system_pool, _cyclic_gc_paused

    with _cyclic_gc_paused(), _arrow_system_pool():
        _stages(data_dir, repeats)


def _stages(data_dir: Path, repeats: int) -> None:
    from tracework.builder import (
        BuildSettings,
        cursor_segments,
        normalize,
        plan_chunks,
        read_chunk,
        reduce_actions,
        sessionize,
        typing_fields,
    )
    from tracework.builder.engine import ENGINE, _write_kind, work_sessions

    settings = BuildSettings()
    best: dict[str, float] = {}

    def timed(name, fn):
        for _ in range(repeats):
            c0 = time.process_time()
            out = fn()
            best[name] = min(best.get(name, float("inf")), time.process_time() - c0)
        return out

    _, _, chunks, _ = timed("plan (whole lake)", lambda: plan_chunks(data_dir, settings.chunk_events))
    raw, _ = timed("read chunk", lambda: read_chunk(data_dir, chunks[0]))
    timed("normalize", lambda: normalize(raw).collect(engine=ENGINE))
    rows = sessionize(normalize(raw), settings).collect(engine=ENGINE)
    timed("normalize + sessionize", lambda: sessionize(normalize(raw), settings).collect(engine=ENGINE))
    timed("work-session summary", lambda: work_sessions(rows))
    lf = rows.lazy()
    frames = {
        "trajectories": timed("actions", lambda: reduce_actions(lf, settings).collect(engine=ENGINE)),
        "typing": timed("typing fields", lambda: typing_fields(lf, settings)),
        "cursor": timed("cursor segments", lambda: cursor_segments(lf, settings).collect(engine=ENGINE)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for kind in frames:
            (Path(tmp) / kind).mkdir()
        timed("write shards", lambda: [_write_kind(Path(tmp), k, df, settings, 0) for k, df in frames.items()])
    total = sum(v for k, v in best.items() if k not in ("normalize", "plan (whole lake)"))
    print(f"stages on the first chunk ({raw.height:,} events), CPU s, min of {repeats} warm runs:")
    for k, v in best.items():
        print(f"  {k:24s} {v:6.3f}")
    print(f"  read + transforms + write {total:6.3f} s -> {raw.height / total:,.0f} events per CPU second (chunk alone)")
    io = best["read chunk"] + best["work-session summary"] + best["write shards"]
    print(f"  of which read + write + work-session summary {io:6.3f} s ({io / raw.height * 1e6:.3f} per 1M events)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--baseline-events", type=int, default=500_000)
    ap.add_argument("--keep", help="folder to keep the generated lake in (reused when it exists)")
    ap.add_argument("--no-allocator-variant", dest="allocator_variant", action="store_false",
                    help="skip the second build with Polars' allocator keeping freed pages")
    ap.add_argument("--stages", action="store_true", help="also time each stage on the first chunk (where the time goes)")
    ap.add_argument("--child-build", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_build:
        _child_build(*args.child_build)
        return
    import polars as pl

    from tracework.builder import BuildSettings, normalize, reduce_actions, sessionize
    from tracework.lake import read_events

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tw-bench-build-"))
    data = root / "data"
    try:
        if not (data / "lake" / "events" / "_delta_log").exists():
            t = time.perf_counter()
            generate(data, args.events)
            print(f"generated the lake in {time.perf_counter() - t:.1f} s (not counted)")
        n_events = read_events(data, columns=["seq"]).num_rows
        out = root / "ds"
        # The compiled kernels are compiled once per machine into numba's cache
        # (a changed kernel: once per change). Fill the cache with a build of a
        # small lake first, so that a measured build only loads them, as every
        # build after the first does.
        with tempfile.TemporaryDirectory(prefix="tw-bench-warm-") as warm:
            from tracework.builder import build_datasets

            t = time.process_time()
            generate(Path(warm) / "data", 2 * EVENTS_PER_SESSION, seed=7)
            build_datasets(Path(warm) / "data", Path(warm) / "ds")
            print(f"warm-up build of a {2 * EVENTS_PER_SESSION:,}-event lake (fills numba's cache; not counted): {time.process_time() - t:.1f} s CPU")
        variants = [("default environment", {})]
        if args.allocator_variant:
            # Polars' jemalloc hands freed pages back to the OS and faults them
            # in again on the next allocation: a third of the build's CPU time
            # was system time. Keeping them is an environment setting (read
            # when Polars loads), so it is measured as a variant, not assumed.
            variants.append((f"_RJEM_MALLOC_CONF={KEEP_PAGES}, as `tracework build` runs", {"_RJEM_MALLOC_CONF": KEEP_PAGES}))
        for label, extra_env in variants:
            shutil.rmtree(out, ignore_errors=True)
            child = subprocess.run(
                [sys.executable, __file__, "--child-build", str(data), str(out)],
                capture_output=True, text=True, check=True, env={**os.environ, **extra_env},
            )  # fmt: skip
            r = json.loads(child.stdout.strip().splitlines()[-1])
            rate_cpu = n_events / r["cpu_s"]
            rate_wall = n_events / r["wall_s"]
            print(f"build ({label}): {n_events:,} events, wall {r['wall_s']:.2f} s, CPU {r['cpu_s']:.2f} s "
                  f"(process user {r['user_s']:.2f} s, system {r['sys_s']:.2f} s; cores: {os.cpu_count()})")
            print(f"  rows written: {json.dumps(r['counts'])}")
            print(f"  {rate_cpu:,.0f} events per CPU second (per core); {rate_wall:,.0f} events per wall second")
            print(f"  peak RSS {r['peak_rss_mb']:,.0f} MB; minor page faults {r['minor_faults']:,} ({r['minor_faults'] * 4 / 1024:,.0f} MB of pages first touched)")
            print(f"  target >= 2,000,000 events/s per core: {'met' if rate_cpu >= 2e6 else 'NOT met'}; RSS < 2048 MB: {'met' if r['peak_rss_mb'] < 2048 else 'NOT met'}")

        if args.stages:
            stages(data)

        # Baseline: naive per-event Python vs the vectorised reduction on the same subset.
        sessions = sorted(set(read_events(data, columns=["session"]).column("session").to_pylist()))
        import pyarrow.compute as pc

        subset = None
        take: list[str] = []
        for s in sessions:
            take.append(s)
            if len(take) * EVENTS_PER_SESSION >= args.baseline_events:
                break
        subset = read_events(data, filter=pc.field("session").isin(take))
        rows_py = subset.select(["session", "seq", "type", "t_ns", "x", "y", "button", "dx", "dy", "key_sym", "char", "modifiers"]).to_pylist()
        c0 = time.process_time()
        naive = naive_actions(rows_py)
        naive_cpu = time.process_time() - c0
        settings = BuildSettings()
        c0 = time.process_time()
        vec = reduce_actions(sessionize(normalize(pl.from_arrow(subset)), settings), settings).collect()
        vec_cpu = time.process_time() - c0
        n_sub = subset.num_rows
        print(f"baseline on {n_sub:,} events: naive per-event Python {n_sub / naive_cpu:,.0f} events/CPU-s ({len(naive):,} actions); "
              f"vectorised {n_sub / vec_cpu:,.0f} events/CPU-s ({vec.height:,} actions); ratio {naive_cpu / vec_cpu:.1f}x")
        print("  (the naive time excludes converting Arrow rows to Python dicts, which favours the baseline)")
        print("  NOT like for like: the naive loop covers only the action reduction's core (clicks, double clicks,")
        print("  drags, scroll bursts, typed text, hotkeys); it has no work sessions, tasks, focus/exclusion,")
        print("  move actions, paths relative to the action, normalised coordinates, commands, redaction")
        print("  placeholders or lineage counts, which the vectorised figure includes (sessionize + reduce_actions)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

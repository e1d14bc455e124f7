"""The real agent's CPU and memory while xdotool drives about 500 mouse
events per second for 30 seconds on a private Xvfb display.

Everything is real: Xvfb, `tracework agent run` (capture, default privacy
pipeline, spool, uploads), a `tracework serve` collector on 127.0.0.1, and
xdotool moving the pointer. CPU comes from /proc/PID/stat (utime+stime),
memory from /proc/PID/status (VmRSS sampled, VmHWM peak).

Baseline, same run: the same agent process idle (no input) for 10 seconds
before the load; the ratio is load CPU over idle CPU.

    .venv/bin/python benchmarks/agent/bench_agent_cpu.py [--rate 500] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tracework.demo.processes import free_port, stop_process

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def mem_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    stop_process(proc, timeout)


def start_xvfb() -> tuple[subprocess.Popen, str]:
    for number in range(150, 400):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            break
    display = f":{number}"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp",
                             "+extension", "RECORD", "-noreset"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if subprocess.run(["xdotool", "getmouselocation"], env=dict(os.environ, DISPLAY=display),
                          capture_output=True).returncode == 0:
            return proc, display
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError("Xvfb did not start")


def drive(display: str, rate: int, seconds: float) -> int:
    """Move the pointer ``rate`` times a second for ``seconds``; returns moves sent.

    One xdotool process per ~100 ms slice issuing the moves due by then,
    spread over the slice, paced against the wall clock so the rate holds.
    """
    env = dict(os.environ, DISPLAY=display)
    sent = 0
    start = time.monotonic()
    pause = 0.1 / (rate // 10) * 0.5  # adapted so that a slice of rate/10 moves takes about 100 ms
    while (elapsed := time.monotonic() - start) < seconds:
        # Send what the target rate asks for by now (catches up after a slow slice).
        due = min(int((elapsed + 0.1) * rate), int(seconds * rate)) - sent
        if due <= 0:
            time.sleep(0.01)
            continue
        args = []
        for i in range(due):
            k = sent + i
            args += ["mousemove", str(100 + k % 1000), str(100 + (k * 7) % 600), "sleep", f"{pause:.5f}"]
        began = time.monotonic()
        subprocess.run(["xdotool", *args], env=env, check=True, capture_output=True)
        took = time.monotonic() - began
        pause = max(0.0, pause + (0.095 * due / (rate / 10) - took) / due)
        sent += due
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    for tool in ("Xvfb", "xdotool"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: run `make deps`")

    tmp = Path(tempfile.mkdtemp(prefix="tw-bench-agent-"))
    procs: list[subprocess.Popen] = []
    try:
        xvfb, display = start_xvfb()
        procs.append(xvfb)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, TRACEWORK_HOME=str(tmp / "home"), TRACEWORK_DATA_DIR=str(tmp / "data"),
                   DISPLAY=display, PYTHONUNBUFFERED="1")
        env.pop("TRACEWORK_CONFIG", None)
        collector = subprocess.Popen([sys.executable, "-m", "tracework", "serve", "--port", str(port)], env=env,
                                     cwd=tmp, stdout=open(tmp / "collector.log", "w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        procs.append(collector)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)
        token = json.loads(subprocess.run([sys.executable, "-m", "tracework", "devices", "enroll", "--person",
                                           "bench", "--json"], env=env, cwd=tmp, check=True,
                                          capture_output=True, text=True).stdout)["token"]
        # Capture needs the person's consent in governance (the collector enforces it too).
        for cmd in (["people", "add", "bench"],
                    ["consent", "grant", "bench", "--purpose", "agent_training",
                     "--classes", "key_text,key_timing,mouse,window_titles", "--notice-version", "1"],
                    ["agent", "configure", "--collector", url, "--token", token], ["agent", "consent", "--accept"]):
            subprocess.run([sys.executable, "-m", "tracework", *cmd], env=env, cwd=tmp, check=True, capture_output=True)
        agent = subprocess.Popen([sys.executable, "-m", "tracework", "agent", "run", "--quiet"], env=env, cwd=tmp,
                                 stdout=open(tmp / "agent.out", "w"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
        procs.append(agent)
        time.sleep(3.0)  # imports and X connections done before measuring
        pid = agent.pid

        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(args.idle_seconds)
        idle_cpu = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
        idle_rss = mem_kb(pid, "VmRSS")

        rss_samples: list[int] = []
        c0, t0 = cpu_seconds(pid), time.monotonic()
        import threading

        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                rss_samples.append(mem_kb(pid, "VmRSS"))
                sampling.wait(0.5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        sent = drive(display, args.rate, args.seconds)
        load_wall = time.monotonic() - t0
        load_cpu_s = cpu_seconds(pid) - c0
        sampling.set()
        sampler.join()
        hwm = mem_kb(pid, "VmHWM")
        stop(agent, 60)
        summary_lines = [l for l in (tmp / "agent.out").read_text().splitlines() if l.startswith("{")]
        summary = json.loads(summary_lines[-1]) if summary_lines else {}
        load_cpu = load_cpu_s / load_wall

        print(f"xdotool drove {sent} pointer moves in {load_wall:.1f} s ({sent / load_wall:.0f}/s; target {args.rate}/s)")
        print(f"agent events captured this session: {summary.get('captured')} (still in spool at exit: {summary.get('pending')})")
        print(f"agent CPU under load: {load_cpu * 100:.1f}% of one core "
              f"({load_cpu_s * 1e6 / max(1, sent):.0f} CPU-us per pointer move, capture+pipeline+spool+upload)")
        print(f"agent memory under load: RSS median {sorted(rss_samples)[len(rss_samples) // 2] / 1024:.1f} MB, "
              f"peak (VmHWM) {hwm / 1024:.1f} MB")
        print(f"baseline, same agent idle {args.idle_seconds:.0f} s: {idle_cpu * 100:.2f}% of one core, "
              f"RSS {idle_rss / 1024:.1f} MB")
        print(f"ratio load / idle CPU: {load_cpu / max(idle_cpu, 1e-9):.1f}x")
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

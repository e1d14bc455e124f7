"""`make demo`: a scripted minute of real work, captured, protected, uploaded and counted.

What it does, all on this machine and all stopped at the end:
 1. a fresh data folder (.tracework-demo/), a collector on 127.0.0.1 with embedded storage;
 2. a private virtual X display (Xvfb) unless --use-current-display is given;
 3. registers the demo person, records their consent in governance (`tracework
    consent grant`, the current notice of ``agent_training``), enrolls the device,
    configures the agent (pinning the collector's consent key given at enrollment, then fetching the
    signed consent document), records the local opt-in, starts the agent;
 4. opens two real windows and drives them with xdotool for about a minute: typing
    sentences with corrections, clicks, double clicks, a drag, scrolling, window switches;
 5. stops the agent (which uploads what is left) and prints what the script sent
    next to what the lake stored, where the lake is, and a query to look at it.
"""

from __future__ import annotations

import argparse
import re
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .processes import free_port as _free_port
from .processes import stop_process as _stop
from .xdriver import XDriver, start_xvfb

# What the demo person consents to: everything the scripted session produces
# (no browser, so not ``web``).
DEMO_PURPOSE = "agent_training"
DEMO_CLASSES = ("key_text", "key_timing", "mouse", "window_titles")

# Wide enough for the summary table even when stdout is not a terminal (make, CI logs).
console = Console(width=max(100, shutil.get_terminal_size((100, 24)).columns))

SENTENCES = [
    "the quarterly report is almost done",
    "please check the numbers in column four",
    "we meet again on thursday at ten",
]


NON_MODIFIER_KEY_DOWNS = (
    "SELECT count(*) AS n FROM events WHERE type = 'key_down' AND NOT regexp_matches("
    "coalesce(key_sym, ''), '^(Shift|Control|Alt|Super|Meta|ISO_Level3|Caps_Lock)')"
)


def _tracework(*args: str, env: dict, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tracework", *args]
    result = subprocess.run(cmd, env=env, capture_output=capture, text=True, timeout=120)
    if check and result.returncode != 0:
        raise RuntimeError(f"`tracework {' '.join(args)}` failed:\n{result.stdout}\n{result.stderr}")
    return result


def _wait_http(url: str, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the collector did not answer at {url} within {timeout:.0f} s")


def _open_window(display: str, title: str, wm_class: str, x: int, y: int, stack: ExitStack) -> dict:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracework.demo.windows", "--title", title, "--wm-class", wm_class,
         "--x", str(x), "--y", str(y)],
        env=dict(os.environ, DISPLAY=display), stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    stack.callback(_stop, proc, 5)
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the demo window {title!r} did not open (is python3-tk available?)")
    return json.loads(line)


def run_script(x: XDriver, notes: dict, sketch: dict, reading_pause: float = 8.0) -> None:
    """Scripted work across two windows, with reading pauses between steps."""
    def in_text(win: dict) -> tuple[int, int]:
        return win["x"] + 120, win["y"] + 40

    def in_canvas(win: dict) -> tuple[int, int]:
        return win["x"] + win["width"] // 2, win["y"] + win["text_height"] + 120

    console.print("  typing in [bold]Notes[/] with corrections")
    x.focus(notes["window_id"])
    x.move(*in_text(notes))
    x.click(1)
    x.type(SENTENCES[0] + " ", delay_ms=90)
    x.type("an typo", delay_ms=90)
    x.key("BackSpace", "BackSpace", "BackSpace", "BackSpace", "BackSpace", "BackSpace", "BackSpace")
    x.type("a fixed typo. ", delay_ms=90)
    time.sleep(1.5)
    x.type(SENTENCES[1] + ". ", delay_ms=80)
    x.key("ctrl+s")
    console.print(f"  reading for {reading_pause:.0f} s")
    time.sleep(reading_pause)

    console.print("  switching to [bold]Sketch[/]: clicks, a double click, a drag, scrolling")
    x.focus(sketch["window_id"])
    cx, cy = in_canvas(sketch)
    x.move(cx, cy)
    x.click(1)
    time.sleep(0.5)
    x.move(cx + 60, cy + 20)
    x.click(1, repeat=2)
    time.sleep(0.5)
    x.drag(cx - 100, cy - 40, cx + 100, cy + 40)
    x.scroll(-3)
    time.sleep(0.3)
    x.scroll(2)
    x.move(cx - 50, cy + 50)
    x.click(3)
    console.print(f"  reading for {reading_pause:.0f} s")
    time.sleep(reading_pause)

    console.print("  back to [bold]Notes[/]")
    x.focus(notes["window_id"])
    x.move(*in_text(notes))
    x.click(1)
    x.type(SENTENCES[2] + " ", delay_ms=110)
    x.type("teh", delay_ms=110)
    x.key("BackSpace", "BackSpace", "BackSpace")
    x.type("the end.", delay_ms=110)
    time.sleep(2.0)
    # Mouse wandering between sentences, like a person reading.
    for i in range(20):
        x.move(notes["x"] + 50 + i * 15, notes["y"] + 100 + (i % 5) * 10)
        time.sleep(0.05)
    x.focus(sketch["window_id"])
    x.move(cx, cy)
    x.click(1, repeat=3)
    x.scroll(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tracework.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=".tracework-demo", help="where the demo keeps its data (wiped first)")
    parser.add_argument("--use-current-display", action="store_true",
                        help="drive the X display in $DISPLAY instead of a private Xvfb (it will type into your windows!)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="length of the scripted session; the script pauses to read between its steps")
    args = parser.parse_args(argv)

    root = Path(args.dir).resolve()
    if root.exists():
        shutil.rmtree(root)
    data_dir, home = root / "data", root / "agent-home"
    data_dir.mkdir(parents=True)
    home.mkdir(parents=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, TRACEWORK_DATA_DIR=str(data_dir), TRACEWORK_HOME=str(home),
               TRACEWORK_COLLECTOR_URL=url, TRACEWORK_COLLECTOR_PORT=str(port), PYTHONUNBUFFERED="1")
    env.pop("TRACEWORK_CONFIG", None)

    with ExitStack() as stack:
        if args.use_current_display and os.environ.get("DISPLAY"):
            display = os.environ["DISPLAY"]
        else:
            console.print("[bold]1.[/] starting a private virtual display (Xvfb)")
            xvfb, display = start_xvfb()
            stack.callback(_stop, xvfb, 5)
        env["DISPLAY"] = display

        console.print(f"[bold]2.[/] starting the collector on {url} (data in {data_dir})")
        collector_log = open(root / "collector.log", "w")
        stack.callback(collector_log.close)
        collector = subprocess.Popen(
            [sys.executable, "-m", "tracework", "serve", "--data-dir", str(data_dir), "--port", str(port)],
            env=env, stdout=collector_log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        stack.callback(_stop, collector, 30)
        _wait_http(url + "/healthz")

        console.print("[bold]3.[/] registering the demo person, granting consent in governance, "
                      "enrolling this device and recording the local opt-in")
        _tracework("people", "add", "demo-person", "--name", "Demo Person", "--team", "demo",
                   "--data-dir", str(data_dir), env=env)
        notices = _tracework("consent", "notice", "--data-dir", str(data_dir), env=env).stdout
        version = re.search(rf"^{DEMO_PURPOSE}\s.*\(notice v(\d+)\)", notices, re.MULTILINE)
        if version is None:
            raise RuntimeError(f"could not read the current {DEMO_PURPOSE} notice version from:\n{notices}")
        granted = _tracework("consent", "grant", "demo-person", "--purpose", DEMO_PURPOSE,
                             "--classes", ",".join(DEMO_CLASSES), "--notice-version", version.group(1),
                             "--data-dir", str(data_dir), env=env).stdout.strip()
        console.print(f"  {granted}")
        enrolled = json.loads(_tracework("devices", "enroll", "--person", "demo-person", "--name", "demo-laptop",
                                         "--data-dir", str(data_dir), "--json", env=env).stdout)
        # The key comes with the token from enrollment, so the agent pins it
        # from the start (no trust on first use).
        configured = _tracework("agent", "configure", "--collector", url, "--token", enrolled["token"],
                                "--collector-key", enrolled["collector_key"], env=env).stdout
        for line in configured.splitlines():
            console.print(f"  {line}")
        _tracework("agent", "consent", "--accept", env=env)

        notes = _open_window(display, "Notes - quarterly report", "DemoNotes", 40, 40, stack)
        sketch = _open_window(display, "Sketch - whiteboard", "DemoSketch", 660, 60, stack)

        console.print("[bold]4.[/] starting the agent and running the scripted session")
        agent_log = open(root / "agent.log", "w")
        stack.callback(agent_log.close)
        agent = subprocess.Popen([sys.executable, "-m", "tracework", "agent", "run"], env=env,
                                 stdout=agent_log, stderr=subprocess.STDOUT, start_new_session=True)
        stack.callback(_stop, agent, 60)
        # The session starts once the agent holds a valid consent document.
        deadline = time.monotonic() + 60
        while "started on" not in (root / "agent.log").read_text(errors="replace"):
            if agent.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the agent did not start its session; see {root / 'agent.log'}")
            time.sleep(0.1)
        x = XDriver(display)
        started = time.monotonic()
        run_script(x, notes, sketch, reading_pause=max(0.0, (args.seconds - 20.0) / 3))
        remaining = args.seconds - (time.monotonic() - started)
        if remaining > 0:
            console.print(f"  reading quietly for {remaining:.0f} s")
            time.sleep(remaining)

        console.print("[bold]5.[/] stopping the agent (it uploads what is left)")
        _stop(agent, 60)
        status = _tracework("agent", "status", "--json", env=env, check=False)
        query_out = _tracework("lake", "query", "--data-dir", str(data_dir), "--json",
                           "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY n DESC", env=env).stdout
        stored = [json.loads(line) for line in query_out.splitlines() if line.strip()]
        # Modifier keys are pressed by xdotool around shifted characters and hotkeys;
        # the comparison with what the script typed counts the other keys.
        keys_out = _tracework("lake", "query", "--data-dir", str(data_dir), "--json",
                              NON_MODIFIER_KEY_DOWNS, env=env).stdout
        stored.append({"type": "non_modifier_key_down", "n": json.loads(keys_out.splitlines()[0])["n"]})
        _print_summary(x, stored, data_dir, status.stdout, time.monotonic() - started)
    console.print("All demo processes stopped.")
    return 0


def _print_summary(x: XDriver, stored_rows: list[dict], data_dir: Path, status_json: str, seconds: float) -> None:
    stored = {row["type"]: row["n"] for row in stored_rows}
    non_modifier = stored.pop("non_modifier_key_down", 0)
    table = Table(title=f"Scripted session of {seconds:.0f} s: sent by xdotool vs stored in the lake")
    table.add_column("what")
    table.add_column("sent by the script", justify="right")
    table.add_column("stored in the lake", justify="right")
    clicks_sent = x.sent["click_left"] + x.sent["click_right"] + x.sent["click_middle"]
    table.add_row("mouse clicks (button down)", str(clicks_sent), str(stored.get("button_down", 0)))
    table.add_row("scroll notches", str(x.sent["scroll"]), str(stored.get("scroll", 0)))
    table.add_row("characters typed + keys pressed", str(x.sent["key_press"]),
                  f"{non_modifier} (+{stored.get('key_down', 0) - non_modifier} shift/ctrl presses)")
    table.add_row("window switches", str(x.sent["focus"]), f"{stored.get('focus_change', 0)} focus changes")
    # The cursor anonymizer re-draws each movement's samples at its own rate
    # (docs/privacy-anonymization.md), so the stored count is not xdotool's.
    table.add_row("pointer moves (incl. drag path)", str(x.sent["mouse_move"]),
                  f"{stored.get('mouse_move', 0)} (re-sampled on the device)")
    for kind in sorted(set(stored) - {"button_down", "scroll", "key_down", "focus_change", "mouse_move"}):
        table.add_row(f"  {kind}", "", str(stored[kind]))
    table.add_row("[bold]all events[/]", "", f"[bold]{sum(stored.values())}[/]")
    console.print(table)
    try:
        status = json.loads(status_json)
        counts = status.get("redaction_counts") or {}
        if counts:
            console.print(f"Redacted on the device: {counts}")
    except (ValueError, AttributeError):
        pass
    console.print(f"The lake is at [bold]{data_dir / 'lake' / 'events'}[/] (Delta table, partitioned by day).")
    console.print("Look at it with:")
    console.print(f"  .venv/bin/tracework lake query --data-dir {data_dir} "
                  "\"SELECT type, count(*) FROM events GROUP BY type\"")


if __name__ == "__main__":
    sys.exit(main())

"""`make demo` end to end (issue 2): the scripted session on a private Xvfb,
a real collector, the real agent; what the script sent equals what the lake
stored for every countable kind, and nothing is left running."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.x11


def _row(output: str, label: str) -> tuple[str, str]:
    m = re.search(re.escape(label) + r"\s*│\s*(\d*)\s*│\s*([^│]+?)\s*│", output)
    assert m, f"no row {label!r} in:\n{output}"
    return m.group(1), m.group(2)


def _processes_with_env(marker: str) -> list[str]:
    """Live processes that inherited ``marker`` in their environment: the demo
    and everything it started (Xvfb, collector, agent, windows)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append(f"{proc.name}: {(proc / 'cmdline').read_bytes().replace(bytes(1), b' ').decode(errors='replace')}")
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def test_make_demo_records_counts_and_leaves_nothing_running(tmp_path):
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("Xvfb and xdotool are needed (make test installs them)")
    demo_dir = tmp_path / "demo"
    marker = f"demo-test-{uuid.uuid4().hex}"
    env = dict(os.environ, COLUMNS="160", TRACEWORK_DEMO_TEST_MARKER=marker)
    env.pop("DISPLAY", None)
    env.pop("TRACEWORK_CONFIG", None)
    result = subprocess.run([sys.executable, "-m", "tracework.demo", "--dir", str(demo_dir), "--seconds", "12"],
                            capture_output=True, text=True, timeout=300, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for label in ("mouse clicks (button down)", "scroll notches", "window switches"):
        sent, stored = _row(output, label)
        assert sent and stored.split()[0] == sent, (label, sent, stored)
    sent, stored = _row(output, "characters typed + keys pressed")
    assert stored.split()[0] == sent
    assert "lake query" in output and "All demo processes stopped." in output
    assert (demo_dir / "data" / "lake" / "events" / "_delta_log").is_dir()
    assert _processes_with_env(marker) == []

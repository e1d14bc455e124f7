"""Drive real X input with xdotool and keep a tally of what was sent, so a
demo or test can compare what it did with what the lake holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_SHIFTED = set('ABCDEFGHIJKLMNOPQRSTUVWXYZ~!@#$%^&*()_+{}|:"<>?')


@dataclass
class XDriver:
    display: str
    sent: Counter = field(default_factory=Counter)
    typed_text: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if shutil.which("xdotool") is None:
            raise RuntimeError("xdotool is not installed: run `make deps` (or apt-get install xdotool)")

    def _run(self, *args: str) -> str:
        env = dict(os.environ, DISPLAY=self.display)
        out = subprocess.run(["xdotool", *args], env=env, check=True, capture_output=True, text=True, timeout=60)
        return out.stdout

    def move(self, x: int, y: int) -> None:
        self._run("mousemove", "--sync", str(x), str(y))
        self.sent["mouse_move"] += 1

    def click(self, button: int = 1, repeat: int = 1) -> None:
        self._run("click", "--repeat", str(repeat), "--delay", "80", str(button))
        name = {1: "left", 2: "middle", 3: "right"}[button]
        self.sent[f"click_{name}"] += repeat

    def scroll(self, notches: int) -> None:
        """Positive scrolls up (X button 4), negative down (button 5)."""
        button = "4" if notches > 0 else "5"
        self._run("click", "--repeat", str(abs(notches)), "--delay", "60", button)
        self.sent["scroll"] += abs(notches)

    def drag(self, x0: int, y0: int, x1: int, y1: int, steps: int = 20) -> None:
        self.move(x0, y0)
        self._run("mousedown", "1")
        for i in range(1, steps + 1):
            self._run("mousemove", str(x0 + (x1 - x0) * i // steps), str(y0 + (y1 - y0) * i // steps))
            time.sleep(0.02)
        self.sent["mouse_move"] += steps
        self._run("mouseup", "1")
        self.sent["click_left"] += 1
        self.sent["drag"] += 1

    def type(self, text: str, delay_ms: int = 70) -> None:
        self._run("type", "--delay", str(delay_ms), "--", text)
        self.typed_text.append(text)
        self.sent["key_press"] += len(text)
        self.sent["shifted_chars"] += sum(1 for c in text if c in _SHIFTED)

    def key(self, *keys: str) -> None:
        """Press named keys or combos (``BackSpace``, ``ctrl+s``) once each."""
        self._run("key", "--delay", "70", *keys)
        for combo in keys:
            self.sent["key_press"] += 1  # the non-modifier key of the combo
            self.sent[f"key:{combo}"] += 1

    def focus(self, window_id: int) -> None:
        self._run("windowfocus", "--sync", str(window_id))
        self.sent["focus"] += 1


def start_xvfb(display_number: int | None = None, size: str = "1280x800x24") -> tuple[subprocess.Popen, str]:
    """Start a private Xvfb and wait until it accepts connections."""
    if shutil.which("Xvfb") is None:
        raise RuntimeError("Xvfb is not installed: run `make deps` (or apt-get install xvfb)")
    number = display_number or _free_display_number()
    display = f":{number}"
    proc = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", size, "-nolisten", "tcp", "+extension", "RECORD", "-noreset"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Xvfb {display} exited with code {proc.returncode}")
        if Path(f"/tmp/.X11-unix/X{number}").exists():
            probe = subprocess.run(["xdotool", "getmouselocation"], env=dict(os.environ, DISPLAY=display),
                                   capture_output=True, timeout=5)
            if probe.returncode == 0:
                return proc, display
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"Xvfb {display} did not start within 15 s")


def _free_display_number() -> int:
    for number in range(90, 400):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return number
    raise RuntimeError("no free X display number between :90 and :399")

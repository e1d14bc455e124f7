"""Thresholds of the dataset builder, with their documented defaults.

Every field here is listed in docs/datasets.md ("Build settings") and can be
set with ``tracework build --set name=value``. The settings travel with the
build into the dataset card, so a dataset always says how it was cut.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..errors import BuildError

KINDS = ("trajectories", "typing", "cursor")


@dataclass(frozen=True)
class BuildSettings:
    """How raw events are cut into sessions, tasks, actions and segments."""

    # A gap without events longer than this starts a new work session.
    session_gap_s: float = 300.0
    # A pause without events longer than this starts a new task segment.
    task_pause_s: float = 60.0
    # Clicks of the same button closer than this in time and space chain
    # into double and triple clicks (the X server default is 400 ms).
    multi_click_ms: float = 500.0
    multi_click_px: float = 5.0
    # A press whose pointer travels further than this is a drag.
    drag_px: float = 5.0
    # Scroll notches in the same direction closer than this form one scroll.
    scroll_gap_ms: float = 500.0
    # Pointer motion shorter than this (net) is not reported as a move action.
    move_min_px: float = 5.0
    # A pointer still for this long ends a cursor movement segment.
    rest_ms: float = 150.0
    # Cursor speed is measured over this trailing window (smooths sampling noise).
    speed_window_ms: float = 30.0
    # Sub-movement peaks below this fraction of the segment's peak speed are noise.
    submovement_min_ratio: float = 0.1
    # Applications whose focus means the screen is locked (events excluded).
    lock_apps: tuple[str, ...] = (
        "gnome-screensaver",
        "xscreensaver",
        "i3lock",
        "light-locker",
        "LockApp",
        "loginwindow",
    )
    # Rows per Parquet shard.
    shard_rows: int = 500_000
    # Raw events processed at a time (whole sessions are kept together); bounds memory.
    chunk_events: int = 1_000_000
    # Share of people (by hashed pseudonym) in each split; the rest is test.
    train_share: float = 0.8
    validation_share: float = 0.1

    def as_dict(self) -> dict:
        """Settings as plain JSON-able values (for the card and manifest)."""
        d = asdict(self)
        d["lock_apps"] = list(self.lock_apps)
        return d

    def with_overrides(self, pairs: dict[str, str]) -> "BuildSettings":
        """A copy with ``name=value`` strings applied (from the command line)."""
        known = {f.name: f for f in fields(self)}
        changes = {}
        for name, raw in pairs.items():
            if name not in known:
                raise BuildError(
                    f"unknown build setting {name!r}",
                    hint="known settings: " + ", ".join(sorted(known)),
                )
            current = getattr(self, name)
            try:
                if isinstance(current, tuple):
                    value = tuple(s.strip() for s in raw.split(",") if s.strip())
                elif isinstance(current, int) and not isinstance(current, bool):
                    value = int(raw)
                else:
                    value = float(raw)
            except ValueError:
                raise BuildError(
                    f"build setting {name} must be a number, got {raw!r}", hint=f"for example --set {name}={current}"
                ) from None
            if not isinstance(value, tuple) and value < 0:
                raise BuildError(f"build setting {name} must not be negative, got {raw!r}")
            changes[name] = value
        new = replace(self, **changes)
        if new.train_share + new.validation_share > 1.0:
            raise BuildError("train_share + validation_share must be at most 1", hint="lower one of them")
        if new.shard_rows < 1 or new.chunk_events < 1:
            raise BuildError("shard_rows and chunk_events must be at least 1")
        return new

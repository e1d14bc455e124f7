"""The interface every on-device privacy stage implements.

The agent runs captured events through a chain of stages (app policy →
redaction → typing anonymizer → cursor anonymizer) before the spool. A stage
may hold events back (a token still being typed, a cursor path still in
motion) and must release them by ``flush`` when asked, so nothing that passed
a stage is lost and nothing skips one.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from ..events import Event, Transform


class Stage(Protocol):
    def process(self, events: Sequence[Event], now_ns: int) -> list[Event]:
        """Take newly captured events (in order), return those ready to go on.

        ``now_ns`` is the current time on the events' clock; stages use it to
        release held events after their timeout.
        """

    def flush(self, now_ns: int) -> list[Event]:
        """Release everything held (end of session, pause, shutdown)."""

    def describe(self) -> Transform:
        """Name and parameters, recorded in the session's ``transforms``."""


class Pipeline:
    """Stages in order; events go through all of them."""

    def __init__(self, stages: Sequence[Stage]):
        self.stages = list(stages)

    def process(self, events: Sequence[Event], now_ns: int) -> list[Event]:
        out = list(events)
        for stage in self.stages:
            out = stage.process(out, now_ns)
        return out

    def flush(self, now_ns: int) -> list[Event]:
        out: list[Event] = []
        for stage in self.stages:
            out = stage.process(out, now_ns) + stage.flush(now_ns)
        return out

    def describe(self) -> list[Transform]:
        return [stage.describe() for stage in self.stages]

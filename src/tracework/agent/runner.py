"""The agent process: capture → privacy pipeline → spool → uploader.

Threads:

* the source's listener threads call the :class:`Recorder` (cheap appends);
* the main thread runs :meth:`Agent.run`: every tick (at most 100 ms) it
  applies pause/resume requests, and at least every ``agent.flush_interval_ms``
  it drains the recorder, builds events, runs them through the privacy
  pipeline and appends them to the spool in one transaction;
* the uploader thread sends spool batches to the collector.

Why capture pauses (any of these stops capture; all must clear to resume):
``cli`` (``tracework agent pause``), ``hotkey`` (``agent.pause_hotkey``),
``spool_full`` (the spool reached ``agent.max_spool_bytes`` or the disk is
full), ``consent`` (governance's signed consent document is missing, expired,
invalid or lists no data class: see :mod:`tracework.agent.consent_gate`).
Each start of a pause records a :class:`Pause` event with its reason,
each end a :class:`Resume`; the pipeline is flushed at every pause.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..errors import ConfigError, SpoolFullError, TraceworkError
from ..events import Active, Event, Idle, Pause, Resume, SessionEnd, SessionStart
from ..privacy.chain import build_pipeline
from ..privacy.redact import warm_up
from ..governance.agent_consent import restrict_event
from .capture import INPUT_KINDS, K_MARK, EventBuilder, Hotkey, Recorder
from .consent_gate import GRANT_HINT, ConsentGate, pin_key
from .home import AgentHome
from .sources import Source, make_source
from .spool import Spool
from .uploader import WIRE_FORMATS, UploadSettings, Uploader

log = logging.getLogger("tracework.agent")

# Capture resumes after a spool-full stop once the spool is below this share
# of its bound, so it does not flap around the limit.
RESUME_FRACTION = 0.8
_TICK_S = 0.1
# Classes the consent gate removes after the privacy stages rather than before
# (the stages need titles to apply the app policy).
_REDUCED_AFTER_PIPELINE = frozenset({"key_text", "window_titles", "web"})
_STATE_EVERY_S = 0.5


@dataclass
class RunOptions:
    """Knobs of one run that are not settings (command-line only)."""

    duration_s: float | None = None
    collector_url: str | None = None
    backoff_cap_s: float = 60.0
    backoff_base_s: float = 0.5
    final_upload_s: float = 10.0
    # Test hook: PRAGMA max_page_count on the spool, to provoke a real SQLITE_FULL.
    spool_max_pages: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_policy(path: str):
    """The privacy policy named by ``agent.policy_file`` (None = built-in defaults)."""
    if not path:
        return None
    try:
        from ..privacy import policy as policy_mod  # added by the privacy work
    except ImportError:
        raise ConfigError(f"agent.policy_file is set ({path}) but this build has no policy loader",
                          hint="unset agent.policy_file to use the built-in defaults") from None
    return policy_mod.load_policy(path)


def _warm_up_redaction(pipeline) -> None:
    """Compile (or load from numba's cache) the redactor's compiled code
    before capture starts: otherwise the first number typed waits for it."""
    for stage in pipeline.stages:
        redactor = getattr(stage, "redactor", None)
        if redactor is not None:
            spent = warm_up(redactor)
            if spent > 2.0:
                log.info("compiled the redaction detectors in %.1f s (once after an install or upgrade)", spent)


def pipeline_counts(pipeline) -> dict[str, int]:
    """Redaction counts reported by the stages that keep them (``counts()``)."""
    total: dict[str, int] = {}
    for stage in getattr(pipeline, "stages", []):
        counts = getattr(stage, "counts", None)
        if callable(counts):
            try:
                for k, v in dict(counts()).items():
                    total[str(k)] = total.get(str(k), 0) + int(v)
            except Exception:  # a stage's report must never stop capture
                log.debug("counts() of %r failed", stage)
    return total


class AgentLock:
    """One agent per home: an exclusive flock on ``agent.lock``."""

    def __init__(self, home: AgentHome):
        home.path.mkdir(parents=True, exist_ok=True)
        self.path = home.path / "agent.lock"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise ConfigError(f"another agent is already running with home {home.path}",
                              hint="stop it first, or use `tracework agent status` to see it") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())

    def release(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
        except OSError:
            pass


def agent_running(home: AgentHome) -> bool:
    """True when an agent holds this home's lock."""
    path = home.path / "agent.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _wire_format(value: str) -> str:
    """The ``agent.wire_format`` setting, checked before anything starts."""
    if value not in WIRE_FORMATS:
        raise ConfigError(f"agent.wire_format must be one of {', '.join(WIRE_FORMATS)}, got {value!r}",
                          hint="use arrow (the default) or ndjson (for a collector older than the Arrow format)")
    return value


class Agent:
    """One agent run. Construct, then :meth:`run` (blocks until stopped)."""

    def __init__(self, settings: dict, options: RunOptions | None = None, *, source: Source | None = None):
        _wire_format(settings.get("agent.wire_format", "arrow"))  # a bad setting fails before capture
        self.settings = settings
        self.options = options or RunOptions()
        self.home = AgentHome(settings["home"])
        self.source = source
        self.stop_event = threading.Event()
        self.stop_reason = "stop"
        self._reasons_lock = threading.RLock()
        # Serialises the hotkey (listener thread) with CLI requests (main loop).
        self._control_lock = threading.Lock()
        self._hotkey_changed = False
        self._last_flush_ns = 0
        self.pause_reasons: set[str] = set()
        self._unwritten: list[Event] = []
        self._spool_full_at: int | None = None
        self.captured = 0
        self.pipeline = None
        self.session = ""
        self.gate: ConsentGate | None = None
        # Data classes governance allows now; empty = capture nothing.
        self._allowed: frozenset[str] = frozenset()
        self._session_started = False

    # ---- pause control ---------------------------------------------------------

    def _change_pause(self, reason: str, paused: bool) -> None:
        """Add or clear one pause reason; record Pause/Resume at the edges."""
        with self._reasons_lock:
            before = bool(self.pause_reasons)
            if paused:
                self.pause_reasons.add(reason)
            else:
                self.pause_reasons.discard(reason)
            after = bool(self.pause_reasons)
            if after and not before:
                self.recorder.set_paused(True, Pause(seq=0, t_ns=0, session=self.session, reason=reason))
                log.warning("capture paused (%s)", reason)
            elif before and not after:
                self.recorder.set_paused(False, Resume(seq=0, t_ns=0, session=self.session, reason=reason))
                log.warning("capture resumed (%s cleared)", reason)

    def _on_hotkey(self, paused: bool) -> None:
        # Called from the keyboard listener thread: act at once so not one more
        # key is recorded, and let the main loop persist the new state.
        with self._control_lock:
            if paused:
                self._change_pause("hotkey", True)
            else:
                with self._reasons_lock:  # one Resume, not two
                    self.pause_reasons.discard("cli")
                    self._change_pause("hotkey", False)
            self._hotkey_changed = True

    def _apply_control(self, spool: Spool) -> None:
        with self._control_lock:
            if self._hotkey_changed:
                self._hotkey_changed = False
                spool.set_many({"desired_paused": "hotkey" in self.pause_reasons})
                return
            desired = spool.get("desired_paused", False)
            if desired and not ({"cli", "hotkey"} & self.pause_reasons):
                self._change_pause("cli", True)
            elif not desired and ({"cli", "hotkey"} & self.pause_reasons):
                with self._reasons_lock:
                    self.pause_reasons.discard("hotkey")
                    self._change_pause("cli", False)

    # ---- governance consent ------------------------------------------------------

    def _follow_consent(self) -> None:
        """Apply the consent document's classes: start the session at the first
        valid one, pause (reason ``consent``) when none is left, resume when one
        comes back. Called every tick; the consent thread does the polling."""
        allowed = self.gate.allowed()
        self._allowed = allowed
        if not self._session_started:
            if not allowed:
                return
            w, h = self.source.screen_size()
            self.recorder.mark(SessionStart(seq=0, t_ns=0, session=self.session, platform=self.source.platform,
                                            screen_w=w, screen_h=h, agent_version=__version__,
                                            transforms=self.pipeline.describe()))
            self._session_started = True
            self._last_input = time.monotonic_ns()  # waiting for consent is not idleness
            with self._reasons_lock:
                self.pause_reasons.discard("consent")
                if self.pause_reasons:
                    reason = sorted(self.pause_reasons)[0]
                    self.recorder.set_paused(True, Pause(seq=0, t_ns=0, session=self.session, reason=reason))
                else:
                    self.recorder.set_paused(False)
            log.info("session %s started on %s (%dx%d); uploading to %s; consented: %s", self.session,
                     self.source.platform, w, h, self._collector_url, ", ".join(sorted(allowed)))
            return
        if not allowed and "consent" not in self.pause_reasons:
            log.warning("consent no longer allows capture (%s): capture stopped", self.gate.reason())
            self._change_pause("consent", True)
        elif allowed and "consent" in self.pause_reasons:
            self._change_pause("consent", False)

    # ---- spool bound -----------------------------------------------------------

    def _check_spool(self, spool: Spool) -> None:
        limit = int(self.settings["agent.max_spool_bytes"])
        used = spool.used_bytes()
        full = "spool_full" in self.pause_reasons
        if not full and used >= limit:
            spool.checkpoint()  # the WAL counts too; fold it in before deciding
            used = spool.used_bytes()
        if not full and used >= limit:
            self._spool_full_at = used
            self._change_pause("spool_full", True)
            log.error("the spool is full (%d bytes of %d): capture stopped until uploads drain it", used, limit)
            spool.checkpoint()
        elif full and not self._unwritten:
            bound = min(limit, self._spool_full_at or limit)
            if used >= RESUME_FRACTION * bound:
                spool.checkpoint()  # the WAL counts too; fold it in so draining shows
                used = spool.used_bytes()
            if used < RESUME_FRACTION * bound:
                self._spool_full_at = None
                self._change_pause("spool_full", False)

    # ---- flushing ----------------------------------------------------------------

    def _flush(self, spool: Spool, builder: EventBuilder, *, final: bool = False) -> None:
        records = self.recorder.drain()
        now_mono = time.monotonic_ns()
        if len(records) > 1:
            records.sort(key=lambda r: r[1])  # two listener threads: merge by time
        records = self._idle_marks(records, now_mono)
        events = builder.build(records)
        allowed = self._allowed
        # Consent gate, before the privacy stages: events of a class that is
        # not consented at all (mouse, key timing) go at once. Key identity,
        # titles and URLs are removed after the stages instead, because the
        # app policy needs the window's title to recognise a denied window.
        events = [ev for ev in events if restrict_event(ev, allowed | _REDUCED_AFTER_PIPELINE) is not None]
        now_ns = builder.wall(now_mono)
        out: list[Event] = []
        segment: list[Event] = []
        for ev in events:
            # The pipeline is flushed at every pause and at session end, so
            # nothing it holds is recorded after the pause that ended it.
            if isinstance(ev, (Pause, SessionEnd)):
                out += self.pipeline.process(segment, now_ns)
                out += self.pipeline.flush(now_ns)
                out += self.pipeline.process([ev], now_ns)
                segment = []
            else:
                segment.append(ev)
        out += self.pipeline.process(segment, now_ns)
        self._last_flush_ns = time.time_ns()
        if final:
            out += self.pipeline.flush(now_ns)
        # What is written is what governance allows at writing time: events the
        # pipeline held from before a withdrawal lose the withdrawn classes too.
        out = self.gate.filter(out, self._allowed) if self.gate is not None else out
        self._unwritten += out
        if not self._unwritten:
            return
        try:
            stored = spool.append(self._unwritten)
        except SpoolFullError as exc:
            # Keep the events in memory (capture is stopped, so this is bounded)
            # and retry next tick; a committed flush is never lost, an
            # uncommitted one is not dropped.
            if "spool_full" not in self.pause_reasons:
                self._spool_full_at = spool.used_bytes()
                self._change_pause("spool_full", True)
                log.error("%s", exc)
            return
        self.captured += stored
        self._unwritten = []
        self._last_flush_ns = time.time_ns()

    def _idle_marks(self, records: list[tuple], now_mono: int) -> list[tuple]:
        idle_ns = int(self.settings["agent.idle_seconds"]) * 1_000_000_000
        if idle_ns <= 0:
            return records
        out = []
        for r in records:
            if r[0] in INPUT_KINDS:
                if self._idle:
                    out.append((K_MARK, r[1], Active(seq=0, t_ns=0, session=self.session)))
                    self._idle = False
                elif r[1] - self._last_input >= idle_ns:
                    out.append((K_MARK, self._last_input + idle_ns,
                                Idle(seq=0, t_ns=0, session=self.session, idle_ms=idle_ns // 1_000_000)))
                    out.append((K_MARK, r[1], Active(seq=0, t_ns=0, session=self.session)))
                self._last_input = r[1]
            elif r[0] == K_MARK and isinstance(r[2], (Resume, Pause)):
                # Time spent paused is not idleness: restart the clock.
                self._last_input = r[1]
                self._idle = False
            out.append(r)
        if not self._idle and not self.recorder.paused and now_mono - self._last_input >= idle_ns:
            out.append((K_MARK, self._last_input + idle_ns,
                        Idle(seq=0, t_ns=0, session=self.session, idle_ms=idle_ns // 1_000_000)))
            self._idle = True
        return out

    # ---- status ----------------------------------------------------------------------

    def _write_state(self, spool: Spool, running: bool, uploader: Uploader | None) -> None:
        try:
            self._write_state_unsafe(spool, running, uploader)
        except SpoolFullError:
            # The disk is full: the log says so; status catches up once it is not.
            pass

    def _write_state_unsafe(self, spool: Spool, running: bool, uploader: Uploader | None) -> None:
        spool.set_many({"agent_state": {
            "running": running,
            "pid": os.getpid(),
            "heartbeat_ns": time.time_ns(),
            "session": self.session,
            "platform": getattr(self.source, "platform", None),
            "paused": bool(self.pause_reasons),
            "pause_reasons": sorted(self.pause_reasons),
            "spool_full": "spool_full" in self.pause_reasons,
            "spool_used_bytes": spool.used_bytes(),
            "spool_max_bytes": int(self.settings["agent.max_spool_bytes"]),
            "captured_this_session": self.captured,
            "last_flush_ns": self._last_flush_ns,
            "unwritten_in_memory": len(self._unwritten),
            "redaction_counts": pipeline_counts(self.pipeline),
            "uploads_stopped": uploader.stopped_reason if uploader else None,
            "collector_url": self._collector_url,
            "consent_classes": sorted(self._allowed),
            "consent_problem": None if self._allowed else (self.gate.reason() if self.gate else None),
        }})

    # ---- the run ---------------------------------------------------------------------

    def run(self) -> dict:
        """Capture until SIGTERM/SIGINT, ``duration_s`` or :meth:`stop`. Returns a summary."""
        self.home.require_consent()
        lock = AgentLock(self.home)
        try:
            return self._run_locked()
        finally:
            lock.release()

    def stop(self, reason: str = "stop") -> None:
        self.stop_reason = reason
        self.stop_event.set()

    def _run_locked(self) -> dict:
        s = self.settings
        device = self.home.device()
        self._collector_url = self.options.collector_url or device.get("collector_url") or s["collector.url"]
        token = device.get("token")
        hotkey = Hotkey.parse(s["agent.pause_hotkey"]) if s["agent.pause_hotkey"] else None
        self.pipeline = build_pipeline(load_policy(s["agent.policy_file"]))
        _warm_up_redaction(self.pipeline)

        spool = Spool(self.home.spool_file)
        if self.options.spool_max_pages:
            spool.db.execute(f"PRAGMA max_page_count={int(self.options.spool_max_pages)}")
        upload_spool = Spool(self.home.spool_file)
        uploader = None
        if token:
            uploader = Uploader(upload_spool, UploadSettings(
                collector_url=self._collector_url, token=token,
                batch_events=int(s["agent.batch_events"]),
                interval_s=int(s["agent.upload_interval_ms"]) / 1000.0,
                wire_format=_wire_format(s["agent.wire_format"]),
                backoff_base_s=self.options.backoff_base_s, backoff_cap_s=self.options.backoff_cap_s))
            spool.set_many({"uploads_stopped": None})
        else:
            log.warning("no device token: events are kept in the spool until you run "
                        "`tracework agent configure --collector URL --token TOKEN`")

        key = pin_key(self.home, self._collector_url, None) if token else None
        self.gate = ConsentGate(self.home, self._collector_url, token, public_key=key)
        self.gate.poll()
        self._allowed = self.gate.allowed()
        # Nothing is captured until governance's consent document allows it.
        self.pause_reasons = {"consent"}

        self.recorder = Recorder(hotkey=hotkey, mouse_coalesce_ms=int(s["agent.mouse_coalesce_ms"]),
                                 on_hotkey=self._on_hotkey)
        self.source = self.source or make_source()
        self.session = uuid.uuid4().hex
        wall0, mono0 = time.time_ns(), time.monotonic_ns()
        builder = EventBuilder(self.session, wall0, mono0)
        self._last_input = mono0
        self._idle = False

        previous_handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous_handlers[sig] = signal.signal(sig, lambda *_: self.stop("signal"))

        self.source.start(self.recorder)
        upload_stop = threading.Event()
        upload_thread = None
        consent_stop = threading.Event()
        consent_thread = None
        try:
            if spool.get("desired_paused", False):
                self._change_pause("cli", True)
            self._follow_consent()
            consent_thread = threading.Thread(target=self.gate.run, args=(consent_stop,),
                                              name="tracework-consent", daemon=True)
            consent_thread.start()
            if not self._session_started:
                log.warning("capture waits for consent (%s). To capture, %s; the agent checks every %.0f s",
                            self.gate.reason(), GRANT_HINT, self.gate.poll_interval_s)
            if uploader is not None:
                upload_thread = threading.Thread(target=uploader.run, args=(upload_stop,),
                                                 name="tracework-upload", daemon=True)
                upload_thread.start()

            flush_s = max(0.01, int(s["agent.flush_interval_ms"]) / 1000.0)
            tick = min(_TICK_S, flush_s)
            started = time.monotonic()
            last_flush = last_state = last_consent = 0.0
            while not self.stop_event.is_set():
                now = time.monotonic()
                if self.options.duration_s is not None and now - started >= self.options.duration_s:
                    self.stop("stop")
                    break
                reasons = set(self.pause_reasons)
                try:
                    self._apply_control(spool)
                except SpoolFullError:
                    pass  # retried next tick; the hotkey already acted in memory
                if reasons != self.pause_reasons:
                    last_state = 0.0  # show the change in `agent status` at once
                before_allowed = self._allowed
                self._follow_consent()  # cheap: the consent thread polls; expiry is checked here
                if self._allowed != before_allowed:
                    last_state = 0.0
                if now - last_consent >= 1.0:
                    last_consent = now
                    if not self.home.has_consent():
                        log.warning("consent withdrawn: ending the session")
                        self.stop("consent_withdrawn")
                        break
                if now - last_flush >= flush_s or self._unwritten:
                    last_flush = now
                    self._flush(spool, builder)
                    self._check_spool(spool)
                if now - last_state >= _STATE_EVERY_S:
                    last_state = now
                    self._write_state(spool, True, uploader)
                self.stop_event.wait(tick)

            # Clean end: input already delivered by the X server is taken in,
            # then nothing more; the pipeline is flushed; SessionEnd recorded.
            self.source.stop()
            self.recorder.set_paused(True, None)
            if self._session_started:
                self.recorder.mark(SessionEnd(seq=0, t_ns=0, session=self.session, reason=self.stop_reason))
            self._flush(spool, builder, final=True)
            if self._unwritten:
                log.error("%d events could not be written at shutdown: the spool is full",
                          len(self._unwritten))
        finally:
            if self.source is not None:
                try:
                    self.source.stop()
                except Exception:
                    pass
            upload_stop.set()
            if uploader is not None:
                uploader.wake()
            if upload_thread is not None:
                upload_thread.join(30)
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            consent_stop.set()
            if consent_thread is not None:
                consent_thread.join(15)  # an HTTP poll in flight ends within its 10 s timeout
            self.gate.close()

        final = "no-token"
        if uploader is not None:
            final = uploader.drain(self.options.final_upload_s)
            uploader.close()
        pending, _ = spool.pending()
        self._write_state(spool, False, uploader)
        spool.checkpoint()
        spool.close()
        upload_spool.close()
        summary = {"session": self.session if self._session_started else None, "captured": self.captured,
                   "pending": pending, "final_upload": final, "reason": self.stop_reason,
                   "consent_classes": sorted(self._allowed)}
        if not self._session_started:
            summary["consent_problem"] = self.gate.reason()
        log.info("session %s ended (%s): %d events captured, %d still in the spool", self.session,
                 self.stop_reason, self.captured, pending)
        return summary


def status(settings: dict) -> dict:
    """Everything ``tracework agent status`` shows, read from the agent home."""
    home = AgentHome(settings["home"])
    running = agent_running(home)
    out: dict[str, Any] = {
        "home": str(home.path),
        "running": running,
        "consent": (home.consent() or {}).get("accepted", False) if home.consent_file.exists() else False,
        "configured": bool(home.device().get("token")),
        "collector_url": home.device().get("collector_url") or settings["collector.url"],
    }
    if not home.spool_file.exists():
        out.update({"paused": False, "pending_events": 0, "pending_bytes": 0, "uploaded_events": 0,
                    "uploaded_batches": 0, "dead_letter_events": 0, "last_error": None, "spool_full": False,
                    "redaction_counts": {}, "session": None})
        return out
    spool = Spool(home.spool_file)
    try:
        state = spool.get("agent_state", {}) or {}
        pending, pending_bytes = spool.pending()
        out.update({
            "session": state.get("session"),
            "paused": bool(state.get("paused")) if running else bool(spool.get("desired_paused", False)),
            "pause_reasons": state.get("pause_reasons", []) if running else [],
            "desired_paused": bool(spool.get("desired_paused", False)),
            "spool_full": bool(state.get("spool_full")) if running else False,
            "spool_used_bytes": spool.used_bytes(),
            "spool_max_bytes": int(settings["agent.max_spool_bytes"]),
            "pending_events": pending,
            "pending_bytes": pending_bytes,
            "next_seq": spool.next_seq(),
            "uploaded_events": int(spool.get("uploaded_events", 0)),
            "uploaded_batches": int(spool.get("uploaded_batches", 0)),
            "last_upload_ns": spool.get("last_upload_ns"),
            "dead_letter_events": int(spool.get("dead_letter_events", 0)),
            "dead_letters": [d.__dict__ for d in spool.dead_letters()],
            "last_error": spool.get("last_error"),
            "uploads_stopped": spool.get("uploads_stopped"),
            "captured_this_session": state.get("captured_this_session", 0),
            "consent_classes": state.get("consent_classes", []) if running else [],
            "consent_problem": state.get("consent_problem") if running else None,
            "redaction_counts": state.get("redaction_counts", {}),
            "heartbeat_ns": state.get("heartbeat_ns"),
            "last_flush_ns": state.get("last_flush_ns"),
        })
    finally:
        spool.close()
    return out


def request_pause(settings: dict, paused: bool, wait_s: float = 3.0) -> dict:
    """Ask the agent (running or next to start) to pause or resume. Waits for
    a running agent to confirm; returns its status."""
    home = AgentHome(settings["home"])
    spool = Spool(home.spool_file)
    try:
        spool.set_many({"desired_paused": paused})
    finally:
        spool.close()
    if not agent_running(home):
        return status(settings)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        # Poll only the agent's state row: the full status scans the spool.
        spool = Spool(home.spool_file)
        try:
            state = spool.get("agent_state", {}) or {}
        finally:
            spool.close()
        user_paused = bool({"cli", "hotkey"} & set(state.get("pause_reasons", [])))
        if state.get("running") and user_paused == paused:
            return status(settings)
        time.sleep(0.05)
    raise TraceworkError("the running agent did not confirm within "
                         f"{wait_s:.0f} s", hint="check `tracework agent status` and the agent log")

"""Capture sources: where input comes from, behind one interface.

A source is started with a :class:`~tracework.agent.capture.Recorder` and
calls its ``on_key``, ``on_move``, ``on_button``, ``on_scroll`` and
``on_focus`` methods from its own threads until stopped.

* ``linux-x11`` (tested here, on Xvfb with xdotool): keyboard, mouse and
  focus changes through one XRecord context (pynput's keyboard listener,
  subclassed so the raw X key code and modifier state reach the event and so
  the context also records the delivered ``FocusIn``/``PropertyNotify``
  events): focus changes are ordered with keys and buttons by the X server
  itself. The window behind a focus event is described through python-xlib
  (``_NET_ACTIVE_WINDOW`` when a window manager sets it, else the input focus
  walked up to the top-level window that carries ``WM_NAME``/``_NET_WM_NAME``
  and ``WM_CLASS``), with its geometry.
* ``windows`` and ``macos``: pynput's generic listeners for keyboard and
  mouse; imported only on those systems. **Not tested here** (no Windows or
  macOS machine in CI); the active-window tracker is not implemented for them
  yet, so they record no focus changes.

pynput is imported lazily, inside :meth:`start`: importing it on Linux needs
a reachable X display.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Protocol

from ..errors import ConfigError
from ..events import MOD_ALT, MOD_ALTGR, MOD_CAPS, MOD_CTRL, MOD_META, MOD_SHIFT
from .capture import Recorder

log = logging.getLogger("tracework.agent")


class Source(Protocol):
    platform: str

    def start(self, recorder: Recorder) -> None:
        """Start the listeners; raises ConfigError if the platform cannot be reached."""

    def stop(self) -> None:
        """Stop the listeners and join their threads."""

    def screen_size(self) -> tuple[int, int]:
        """Size of the (primary) screen in pixels."""


def current_platform() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux-x11"


def make_source(platform: str | None = None, *, focus_poll_ms: int = 50) -> Source:
    """The capture source for ``platform`` (default: this machine's)."""
    platform = platform or current_platform()
    if platform == "linux-x11":
        return X11Source(focus_poll_ms=focus_poll_ms)
    if platform in ("windows", "macos"):
        return PynputSource(platform)
    raise ConfigError(f"no capture source for platform {platform!r}", hint="use linux-x11, windows or macos")


# ---------------------------------------------------------------------------
# X11


def _x11_modifiers(state: int, alt_mask: int, altgr_mask: int, meta_mask: int) -> int:
    """Our MOD_* bitmask from an X event's modifier state."""
    mods = 0
    if state & 1:  # ShiftMask
        mods |= MOD_SHIFT
    if state & 2:  # LockMask
        mods |= MOD_CAPS
    if state & 4:  # ControlMask
        mods |= MOD_CTRL
    if state & alt_mask:
        mods |= MOD_ALT
    if state & altgr_mask:
        mods |= MOD_ALTGR
    if state & meta_mask:
        mods |= MOD_META
    return mods


_BUTTONS = {1: "left", 2: "middle", 3: "right", 8: "x1", 9: "x2"}
# X reports scroll wheels as buttons 4-7; dy > 0 is up/away as in the model.
_SCROLL = {4: (0, 1), 5: (0, -1), 6: (-1, 0), 7: (1, 0)}


class X11Source:
    """X11 capture: one XRecord context for keys, pointer and focus, plus a
    window tracker.

    Focus changes are taken from the same XRecord stream as the keys and
    buttons (the delivered ``FocusIn`` events and ``PropertyNotify`` of
    ``_NET_ACTIVE_WINDOW`` on the root), so they reach the recorder in the X
    server's own order: a key pressed while window W had the input focus is
    attributed to W however late the agent processes it. The tracker's own
    connection selects ``FocusChangeMask`` on every top-level window (and on
    new ones as they appear), so the server delivers, and XRecord records, a
    ``FocusIn`` for every switch even to an application that does not ask for
    focus events itself. A 50 ms poll re-reads the current window's title (a
    fallback for title changes the stream missed) and catches a switch the
    stream missed (a window focused before the tracker could select its focus
    events) by putting a marker into the stream, never by recording the
    switch directly.
    """

    platform = "linux-x11"

    def __init__(self, *, focus_poll_ms: int = 50):
        self.focus_poll_s = max(10, focus_poll_ms) / 1000.0
        self._listener = None
        self._focus_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._focus_lock = threading.Lock()
        self._size = (0, 0)
        # Hidden test setting: delay the processing of every input event, to
        # prove that attribution does not depend on how late the agent is.
        self._test_lag_s = max(0, int(os.environ.get("TRACEWORK_TEST_X11_LAG_MS", "0") or 0)) / 1000.0

    def screen_size(self) -> tuple[int, int]:
        return self._size

    def start(self, recorder: Recorder) -> None:
        try:
            import Xlib.display
            import Xlib.error

            probe = Xlib.display.Display()
        except Exception as exc:  # python-xlib raises several unrelated types here
            raise ConfigError(
                f"cannot connect to the X display ({exc})",
                hint="run the agent inside an X session or set DISPLAY (for a virtual one: Xvfb :99 & DISPLAY=:99)",
            ) from None
        # The probe connection stays open until the listeners are connected:
        # a server started with reset-on-last-close would otherwise reset
        # between our connections.
        try:
            if not probe.has_extension("RECORD"):
                raise ConfigError("the X server has no RECORD extension, which keyboard and mouse capture needs",
                                  hint="enable it (Xvfb: +extension RECORD; Xorg: Load \"record\")")
            screen = probe.screen()
            self._size = (screen.width_in_pixels, screen.height_in_pixels)
            self._recorder = recorder
            self._tracker = X11WindowTracker()
            self._focus = FocusState(self._tracker, recorder)
            with self._focus_lock:
                self._tracker.watch_windows()
                # Seed from a query: the stream only says what changes.
                self._focus.seed()
            listener_cls = _x11_listener_class()
            self._listener = listener_cls(recorder, self._on_focus_event, self._before_input, self._test_lag_s)
            self._listener.start()
            self._listener.wait()
        finally:
            probe.close()
        self._stop.clear()
        self._focus_thread = threading.Thread(target=self._poll_focus, name="tracework-focus", daemon=True)
        self._focus_thread.start()

    def _before_input(self) -> None:
        """Listener thread, before an input event: after a resume the stream's
        current window is recorded first, so every session's (and every
        resumed stretch's) input follows a focus change naming its window."""
        focus = self._focus
        if focus.needs_record():
            with self._focus_lock:
                try:
                    focus.record()
                except Exception as exc:  # a window vanishing mid-query is normal on X
                    log.debug("focus record failed: %s", exc)
                    self._tracker.forget()

    def _on_focus_event(self, event) -> None:
        """A FocusIn/FocusOut/PropertyNotify from the XRecord stream (listener
        thread), in server order with the keys and buttons around it."""
        with self._focus_lock:
            self._focus.on_stream_event(event)

    def refresh_focus(self) -> None:
        """The poll's work (also callable directly): handle new windows, record
        the current window after a resume, re-read its title, and mark a
        switch the stream missed."""
        with self._focus_lock:
            try:
                self._tracker.handle_own_events()
                self._focus.poll()
            except Exception as exc:  # a window vanishing mid-query is normal on X
                log.debug("focus poll failed: %s", exc)
                self._tracker.forget()

    def _poll_focus(self) -> None:
        try:
            while not self._stop.is_set():
                self.refresh_focus()
                self._stop.wait(self.focus_poll_s)
        finally:
            with self._focus_lock:
                self._tracker.close()

    def stop(self) -> None:
        listener = self._listener
        if listener is not None:
            listener.finish()
        self._stop.set()  # after the listener: its last events may still resolve windows
        if listener is not None and listener.is_alive():  # finish() timed out: force it
            listener.stop()
            listener.join(5)
        if self._focus_thread is not None:
            self._focus_thread.join(5)


# X protocol numbers used below (Xlib.X names them; plain ints keep the
# listener's hot path free of attribute lookups).
_KEY_PRESS, _KEY_RELEASE, _BUTTON_PRESS, _MOTION_NOTIFY = 2, 3, 4, 6
_FOCUS_IN, _FOCUS_OUT, _PROPERTY_NOTIFY = 9, 10, 28
_NOTIFY_POINTER, _NOTIFY_POINTER_ROOT, _NOTIFY_DETAIL_NONE = 5, 6, 7
_NOTIFY_GRAB, _NOTIFY_UNGRAB = 1, 2
_PROPERTY_DELETE = 1


class FocusState:
    """The focused window as the XRecord stream says, and its recording.

    All methods run under the source's focus lock (listener and poll thread
    share the tracker's X connection, which is not thread-safe).
    """

    def __init__(self, tracker: "X11WindowTracker", recorder: Recorder):
        self.tracker = tracker
        self.recorder = recorder
        self.input_focus: int | None = None  # X window id of the input focus (None: no window)
        self.net_active: int = 0  # _NET_ACTIVE_WINDOW when a window manager sets it
        self.last: tuple | None = None  # last recorded (app, title, top id, geometry)
        self.prefer_net = False  # the stream's latest word came from _NET_ACTIVE_WINDOW
        self.was_paused = True
        self.resumes_seen = -1  # recorder.resumes when the focus was last recorded
        self.marker_info = None  # (marker number, what the poll saw) for a marker in the stream
        self.markers_seen = 0

    def seed(self) -> None:
        """Initial state from a query (before any stream event exists)."""
        self.net_active = self.tracker.net_active_window()
        self.input_focus = self.tracker.input_focus()
        self.prefer_net = bool(self.net_active)

    def current_window(self) -> int | None:
        # The latest word in the stream wins: a FocusIn says where keys go
        # from there on; a window manager's _NET_ACTIVE_WINDOW (set next to
        # its SetInputFocus) also names the active window when the input
        # focus itself is on no window or the root.
        if self.prefer_net and self.net_active:
            return self.net_active
        return self.input_focus or self.net_active or None

    def on_stream_event(self, event) -> None:
        etype = event.type & 0x7F
        if etype == _FOCUS_IN:
            if event.mode in (_NOTIFY_GRAB, _NOTIFY_UNGRAB) or event.detail == _NOTIFY_POINTER:
                return  # a keyboard grab or pointer-root detail: the focus did not move
            window = event.window.id if hasattr(event.window, "id") else int(event.window)
            if event.detail in (_NOTIFY_POINTER_ROOT, _NOTIFY_DETAIL_NONE) or window == self.tracker.root.id:
                self.input_focus = None
            else:
                self.input_focus = window
                self.prefer_net = False
        elif etype == _PROPERTY_NOTIFY:
            window = event.window.id if hasattr(event.window, "id") else int(event.window)
            atom = event.atom
            tracker = self.tracker
            if window == tracker.root.id and atom == tracker.atoms["_NET_ACTIVE_WINDOW"]:
                self.prefer_net = event.state != _PROPERTY_DELETE
                if self.recorder.paused:
                    self.net_active = 0 if event.state == _PROPERTY_DELETE else -1  # resolved on resume
                    return
                self.net_active = 0 if event.state == _PROPERTY_DELETE else tracker.net_active_window()
            elif window == tracker.marker_window and atom == tracker.atoms["_TRACEWORK_FOCUS_MARK"]:
                self.markers_seen += 1
                if self.marker_info is not None and self.marker_info[0] == self.markers_seen:
                    self.input_focus, self.net_active = self.marker_info[1]
                    self.prefer_net = bool(self.net_active)
                    self.marker_info = None
                else:
                    if self.marker_info is not None and self.markers_seen > self.marker_info[0]:
                        self.marker_info = None  # its marker was passed without a match: retry later
                    return
            elif self.last is not None and window == self.last[2] and atom in tracker.title_atoms:
                pass  # the title of the focused window changed: re-read below
            else:
                return
        else:
            return  # FocusOut: the FocusIn that follows says where the focus went
        self.record()

    def record(self, force: bool = False) -> None:
        """Record the stream's current window if it differs from the last one
        recorded (or after a resume). Paused: nothing is queried."""
        recorder = self.recorder
        if recorder.paused:
            self.was_paused = True
            return
        if self.net_active == -1:  # changed while paused
            self.net_active = self.tracker.net_active_window()
        window = self.current_window()
        if window is None:
            return
        info = self.tracker.describe(window)
        if info is None:
            return
        resumes = recorder.resumes
        if info != self.last or self.was_paused or force or resumes != self.resumes_seen:
            recorder.on_focus(info[0], info[1], info[2], info[3])
            self.last = info
        self.was_paused = False
        self.resumes_seen = resumes

    def needs_record(self) -> bool:
        """True when capture resumed since the focus was last recorded (a
        lock-free check the listener makes before each input event)."""
        recorder = self.recorder
        return not recorder.paused and recorder.resumes != self.resumes_seen

    def poll(self) -> None:
        """The poll thread's share: after a resume, and for title changes, the
        current window is recorded again; a switch the stream missed gets a
        marker in the stream (applied there, in order), never a direct record."""
        if self.recorder.paused:
            self.was_paused = True
            return
        tracker = self.tracker
        if self.marker_info is None and self.net_active != -1:
            seen = (tracker.input_focus(), tracker.net_active_window())
            if seen != (self.input_focus, self.net_active):
                window = (seen[1] if seen[1] and (self.prefer_net or not seen[0]) else seen[0]) or seen[1]
                seen_top = tracker.describe(window) if window else None
                ours = tracker.describe(self.current_window()) if self.current_window() else None
                if (seen_top and seen_top[2]) != (ours and ours[2]):
                    # Watch that window from now on and let the stream say
                    # where the switch falls relative to the keys: the marker
                    # is applied when the listener reaches it, in order.
                    tracker.watch(window)
                    number = tracker.put_marker()
                    # Asked again after the marker (same connection, so the
                    # server answers after it): a marker is only trusted if
                    # the focus was the same on both sides of it.
                    if (tracker.input_focus(), tracker.net_active_window()) == seen:
                        self.marker_info = (number, seen)
                    return
        self.record()


def _x11_listener_class():
    """pynput's XRecord keyboard listener, subclassed into one listener for
    keys, pointer and focus: one record context, so the three arrive in the X
    server's order. It keeps the raw key code and modifier state (pynput's
    own callbacks pass only a resolved key)."""
    from pynput._util.xorg import alt_gr_mask, alt_mask, display_manager
    from pynput.keyboard import Key, KeyCode
    from pynput.keyboard._xorg import Listener as XKeyboardListener
    import Xlib.display
    import Xlib.ext.record

    def _disable_record(self):
        # pynput disables the record context on the connection that is blocked
        # in record_enable_context and unflushed, so stop() hangs until the
        # next input event arrives. Disable it on a connection of our own
        # (the listener thread is still using both of pynput's, and
        # python-xlib connections are not safe to share between threads) and
        # sync, which ends the blocked call at once.
        if not hasattr(self, "_context"):
            self.wait()
        control = Xlib.display.Display()
        try:
            control.record_disable_context(self._context)
            control.sync()
        finally:
            control.close()

    def _finish(self):
        # A clean stop that loses nothing: ending the record context makes the
        # server send what it still holds and then end-of-data, and the
        # listener thread handles all of it before it returns. (pynput's own
        # stop() marks the listener stopped first, and its handler then drops
        # events that are already on their way.)
        if not self.is_alive():
            return
        self._stop_platform()
        self.join(5)
        self._running = False

    def _range(device=(0, 0), delivered=(0, 0)):
        return {"core_requests": (0, 0), "core_replies": (0, 0), "ext_requests": (0, 0, 0, 0),
                "ext_replies": (0, 0, 0, 0), "delivered_events": delivered, "device_events": device,
                "errors": (0, 0), "client_started": False, "client_died": False}

    class InputListener(XKeyboardListener):
        def __init__(self, recorder: Recorder, on_focus_event, before_input, lag_s: float = 0.0):
            super().__init__()
            self.recorder = recorder
            self.on_focus_event = on_focus_event
            self.before_input = before_input
            self.lag_s = lag_s
            self._masks = (8, 128, 64)

        def _run(self):
            # pynput's ListenerMixin._run with our ranges: device events
            # KeyPress..MotionNotify and the delivered FocusIn/FocusOut and
            # PropertyNotify events, all in one context (one ordered stream).
            with self._receive():
                self._display_stop = Xlib.display.Display()
                self._display_record = Xlib.display.Display()
                self._stopped = False
                with display_manager(self._display_record) as dm:
                    self._context = dm.record_create_context(
                        0, [Xlib.ext.record.AllClients],
                        [_range(device=(_KEY_PRESS, _MOTION_NOTIFY), delivered=(_FOCUS_IN, _FOCUS_OUT)),
                         _range(delivered=(_PROPERTY_NOTIFY, _PROPERTY_NOTIFY))])
                try:
                    self._initialize(self._display_stop)
                    self._mark_ready()
                    self._display_record.record_enable_context(self._context, self._handler)
                except Exception:  # pynput passes it to the starting thread
                    pass
                finally:
                    self._display_stop.record_disable_context(self._context)
                    self._display_stop.flush()
                    self._display_record.record_free_context(self._context)
                    self._display_stop.close()
                    self._display_record.close()

        def _initialize(self, display):
            super()._initialize(display)
            # Resolve the display's Alt and AltGr bits once, not per key.
            self._masks = (alt_mask(display) or 8, alt_gr_mask(display) or 128, 64)

        def _handle_message(self, display, event, injected):
            etype = event.type & 0x7F
            if etype > _MOTION_NOTIFY:
                self.on_focus_event(event)
                return
            if self.lag_s:
                time.sleep(self.lag_s)
            self.before_input()
            if etype >= _BUTTON_PRESS:
                handle_mouse_event(self.recorder, event, self._masks)
                return
            try:
                key = self._event_to_key(display, event)
            except IndexError:
                key = None
            if isinstance(key, Key):
                key = key.value
            char = key.char if isinstance(key, KeyCode) else None
            vk = key.vk if isinstance(key, KeyCode) else None
            key_sym = keysym_name(vk) if vk else None
            mods = _x11_modifiers(event.state, *self._masks)
            self.recorder.on_key(etype == _KEY_PRESS, event.detail, key_sym, char, mods)

        _stop_platform = _disable_record
        finish = _finish

    return InputListener


_KEYSYM_NAMES: dict[int, str] | None = None


def keysym_name(keysym: int) -> str:
    """X's name of a keysym (``a``, ``A``, ``space``, ``BackSpace``, ``Shift_L``);
    ``U+20AC`` style for Unicode keysyms, hex for unknown ones."""
    global _KEYSYM_NAMES
    if _KEYSYM_NAMES is None:
        import importlib

        names: dict[int, str] = {}
        # Later modules must not rename common keys, so the first name wins.
        for module in ("latin1", "miscellany", "xkb", "latin2", "latin3", "latin4", "greek", "cyrillic",
                       "technical", "special", "publishing", "xf86"):
            mod = importlib.import_module(f"Xlib.keysymdef.{module}")
            for attr, value in vars(mod).items():
                if attr.startswith("XK_") and isinstance(value, int):
                    names.setdefault(value, attr[3:])
        _KEYSYM_NAMES = names
    name = _KEYSYM_NAMES.get(keysym)
    if name is not None:
        return name
    if keysym & 0xFF000000 == 0x01000000:
        return f"U+{keysym & 0xFFFFFF:04X}"
    return f"0x{keysym:x}"


def handle_mouse_event(recorder: Recorder, event, masks: tuple[int, int, int] = (8, 128, 64)) -> None:
    """Route one X device event (as XRecord delivers it) to the recorder.

    Module-level so benchmarks call exactly what the listener calls.
    """
    etype = event.type
    if etype == 6:  # MotionNotify
        recorder.on_move(event.root_x, event.root_y)
    elif etype == 4:  # ButtonPress
        scroll = _SCROLL.get(event.detail)
        if scroll:
            recorder.on_scroll(event.root_x, event.root_y, scroll[0], scroll[1],
                               _x11_modifiers(event.state, *masks))
        else:
            recorder.on_button(event.root_x, event.root_y, _BUTTONS.get(event.detail, f"b{event.detail}"), True,
                               _x11_modifiers(event.state, *masks))
    elif etype == 5:  # ButtonRelease
        if event.detail not in _SCROLL:
            recorder.on_button(event.root_x, event.root_y, _BUTTONS.get(event.detail, f"b{event.detail}"), False,
                               _x11_modifiers(event.state, *masks))


class X11WindowTracker:
    """Which top-level window an X window belongs to, with its app, title and
    geometry; and the agent's own X connection that asks the server to
    deliver focus events (so that XRecord records them).

    Not thread-safe (one python-xlib connection): the source calls it under
    its focus lock.
    """

    _CACHE_MAX = 512

    def __init__(self):
        import Xlib.display

        self.display = Xlib.display.Display()
        self.root = self.display.screen().root
        self.atoms = {name: self.display.intern_atom(name) for name in
                      ("_NET_ACTIVE_WINDOW", "_NET_WM_NAME", "UTF8_STRING", "WM_STATE", "_TRACEWORK_FOCUS_MARK")}
        self.title_atoms = frozenset({self.atoms["_NET_WM_NAME"], 39})  # 39: WM_NAME
        self._tops: dict[int, tuple] = {}  # window id -> (top-level window, app, geometry)
        self._watched: set[int] = set()
        self._marks = 0
        self.marker_window = 0

    def close(self) -> None:
        try:
            self.display.close()
        except Exception:
            pass

    def forget(self) -> None:
        """Drop cached window facts (after a failed query: a window vanished)."""
        self._tops.clear()

    @staticmethod
    def _ignore(*_args) -> None:
        # An error for a window that vanished between two requests is normal on X.
        pass

    def watch_windows(self) -> None:
        """Select focus events on every top-level window and new ones, and
        property changes on the root (``_NET_ACTIVE_WINDOW``).

        Why: the server delivers FocusIn only to clients that selected it, and
        XRecord records only delivered events; selecting it ourselves makes
        every switch between top-level windows appear in the stream.
        """
        from Xlib import X

        self.root.change_attributes(event_mask=X.SubstructureNotifyMask | X.PropertyChangeMask | X.FocusChangeMask,
                                    onerror=self._ignore)
        for child in self.root.query_tree().children:
            self.watch(child.id)
        # A window of our own whose property changes are markers in the stream.
        marker = self.root.create_window(-10, -10, 1, 1, 0, 0, X.InputOnly, X.CopyFromParent,
                                         override_redirect=True, event_mask=X.PropertyChangeMask)
        self.marker_window = marker.id
        self.display.sync()

    def watch(self, window_id: int) -> None:
        """Ask for focus and property events of one window (once)."""
        from Xlib import X

        if not window_id or window_id in self._watched:
            return
        self._watched.add(window_id)
        window = self.display.create_resource_object("window", window_id)
        window.change_attributes(event_mask=X.FocusChangeMask | X.PropertyChangeMask, onerror=self._ignore)

    def handle_own_events(self) -> None:
        """Drain our connection's event queue (the events exist for XRecord;
        unread they would pile up) and watch windows that appeared."""
        display = self.display
        while display.pending_events():
            event = display.next_event()
            etype = event.type & 0x7F
            if etype in (16, 21):  # CreateNotify, ReparentNotify
                parent = getattr(event, "parent", None)
                if parent is not None and getattr(parent, "id", parent) == self.root.id:
                    self.watch(event.window.id)
            elif etype == 17:  # DestroyNotify
                wid = event.window.id
                self._watched.discard(wid)
                self._tops.pop(wid, None)
        if len(self._watched) > 4 * self._CACHE_MAX:
            self._watched = set(list(self._watched)[-self._CACHE_MAX:])

    def put_marker(self) -> int:
        """Change a property of our marker window: the PropertyNotify lands in
        the XRecord stream at this point of the server's order."""
        from Xlib import X, Xatom

        self._marks += 1
        window = self.display.create_resource_object("window", self.marker_window)
        window.change_property(self.atoms["_TRACEWORK_FOCUS_MARK"], Xatom.CARDINAL, 32, [self._marks & 0xFFFFFFFF],
                               X.PropModeReplace)
        self.display.flush()
        return self._marks

    def net_active_window(self) -> int:
        """``_NET_ACTIVE_WINDOW`` on the root (0: not set, no window manager)."""
        from Xlib import X

        prop = self.root.get_full_property(self.atoms["_NET_ACTIVE_WINDOW"], X.AnyPropertyType)
        if prop is not None and len(prop.value) and prop.value[0]:
            return int(prop.value[0])
        return 0

    def input_focus(self) -> int | None:
        """The X input focus window id, None for no window / PointerRoot / the root."""
        from Xlib import X

        focus = self.display.get_input_focus().focus
        if isinstance(focus, int) or focus in (X.NONE, X.PointerRoot) or focus.id == self.root.id:
            return None
        return focus.id

    def active_window(self):
        """(app, title, window_id, (x, y, w, h)) of the focused top-level
        window now, or None when no window has the focus."""
        window = self.net_active_window() or self.input_focus()
        return self.describe(window) if window else None

    def describe(self, window_id: int):
        """(app, title, top-level id, (x, y, w, h)) for the top-level window
        that ``window_id`` belongs to, or None if it has none (or vanished)."""
        cached = self._tops.get(window_id)
        if cached is not None:
            # Known window: only the title can have changed (a browser tab, a
            # document name); skip the ancestor walk and geometry queries.
            top, app, geometry = cached
        else:
            try:
                window = self.display.create_resource_object("window", window_id)
                top = self._named_ancestor(window)
                if top is None:
                    return None
                if top.get_wm_class() is None and not top.get_wm_name():
                    # A window manager's frame: the application window is inside it.
                    top = self._named_descendant(top) or top
                cls = top.get_wm_class()
                app = cls[1] if cls else None
                geom = top.get_geometry()
                pos = top.translate_coords(self.root, 0, 0)
                geometry = (-pos.x, -pos.y, geom.width, geom.height)
            except Exception as exc:  # BadWindow: it vanished
                log.debug("window %s: %s", window_id, exc)
                return None
            if len(self._tops) >= self._CACHE_MAX:
                self._tops.clear()
            self._tops[window_id] = (top, app, geometry)
            self.watch(top.id)  # its title changes then reach the stream
        try:
            title = self._title(top)
        except Exception as exc:
            log.debug("window %s title: %s", window_id, exc)
            self._tops.pop(window_id, None)
            return None
        return (app, title, top.id, geometry)

    def _named_ancestor(self, window):
        """The window itself or its nearest ancestor with WM_CLASS or a title
        (the focus is often on a child of the application's top-level window)."""
        current = window
        for _ in range(32):  # deeper nesting than this is not a real toplevel chain
            if current.get_wm_class() is not None or current.get_wm_name():
                return current
            tree = current.query_tree()
            if tree.parent == 0 or tree.parent.id == self.root.id or tree.parent.id == tree.root.id:
                return current
            current = tree.parent
        return current

    def _named_descendant(self, window, depth: int = 3):
        """The first window below ``window`` with WM_CLASS (breadth first)."""
        level = [window]
        for _ in range(depth):
            nxt = []
            for w in level:
                for child in w.query_tree().children:
                    if child.get_wm_class() is not None:
                        return child
                    nxt.append(child)
            level = nxt
        return None

    def _title(self, window) -> str | None:
        prop = window.get_full_property(self.atoms["_NET_WM_NAME"], self.atoms["UTF8_STRING"])
        if prop is not None and prop.value:
            value = prop.value
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        name = window.get_wm_name()
        if isinstance(name, bytes):
            return name.decode("latin-1")
        return name or None


# ---------------------------------------------------------------------------
# Windows and macOS (not tested here: no such machine in CI)


_PYNPUT_MODS = {
    "shift": MOD_SHIFT, "shift_l": MOD_SHIFT, "shift_r": MOD_SHIFT,
    "ctrl": MOD_CTRL, "ctrl_l": MOD_CTRL, "ctrl_r": MOD_CTRL,
    "alt": MOD_ALT, "alt_l": MOD_ALT, "alt_r": MOD_ALT, "alt_gr": MOD_ALTGR,
    "cmd": MOD_META, "cmd_l": MOD_META, "cmd_r": MOD_META, "caps_lock": MOD_CAPS,
}


class PynputSource:
    """Keyboard and mouse through pynput's native backend (Windows: low-level
    hooks; macOS: Quartz event taps). Modifier state is tracked from the key
    stream because those backends do not pass it with each event."""

    def __init__(self, platform: str):
        self.platform = platform
        self._listeners: list = []
        self._mods = 0
        self._size = (0, 0)

    def screen_size(self) -> tuple[int, int]:
        return self._size

    def start(self, recorder: Recorder) -> None:
        try:
            from pynput import keyboard, mouse
        except ImportError as exc:
            raise ConfigError(f"pynput cannot capture on this system ({exc})",
                              hint="on macOS grant Accessibility and Input Monitoring to the terminal") from None

        def key_info(key):
            if isinstance(key, keyboard.Key):
                name = key.name
                kc = key.value
            else:
                name = None
                kc = key
            char = getattr(kc, "char", None)
            vk = getattr(kc, "vk", None)
            return vk, name or char, char, name

        def on_press(key, injected=False):
            vk, sym, char, name = key_info(key)
            recorder.on_key(True, vk, sym, char, self._mods)
            if name in _PYNPUT_MODS:
                self._mods |= _PYNPUT_MODS[name]

        def on_release(key, injected=False):
            vk, sym, char, name = key_info(key)
            if name in _PYNPUT_MODS:
                self._mods &= ~_PYNPUT_MODS[name]
            recorder.on_key(False, vk, sym, char, self._mods)

        def on_click(x, y, button, pressed, injected=False):
            recorder.on_button(int(x), int(y), button.name, pressed, self._mods)

        def on_scroll(x, y, dx, dy, injected=False):
            recorder.on_scroll(int(x), int(y), int(dx), int(dy), self._mods)

        def on_move(x, y, injected=False):
            recorder.on_move(int(x), int(y))

        self._listeners = [keyboard.Listener(on_press=on_press, on_release=on_release),
                           mouse.Listener(on_move=on_move, on_click=on_click, on_scroll=on_scroll)]
        for listener in self._listeners:
            listener.start()
            listener.wait()

    def stop(self) -> None:
        for listener in self._listeners:
            listener.stop()
        for listener in self._listeners:
            listener.join(5)

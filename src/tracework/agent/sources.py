"""Capture sources: where input comes from, behind one interface.

A source is started with a :class:`~tracework.agent.capture.Recorder` and
calls its ``on_key``, ``on_move``, ``on_button``, ``on_scroll`` and
``on_focus`` methods from its own threads until stopped.

* ``linux-x11`` (tested here, on Xvfb with xdotool): keyboard and mouse through
  pynput's XRecord listeners, subclassed so the raw X key code and modifier
  state reach the event; the active window through python-xlib
  (``_NET_ACTIVE_WINDOW`` when a window manager sets it, else
  ``XGetInputFocus`` walked up to the top-level window that carries
  ``WM_NAME``/``_NET_WM_NAME`` and ``WM_CLASS``), with its geometry.
* ``windows`` and ``macos``: pynput's generic listeners for keyboard and
  mouse; imported only on those systems. **Not tested here** (no Windows or
  macOS machine in CI); the active-window tracker is not implemented for them
  yet, so they record no focus changes.

pynput is imported lazily, inside :meth:`start`: importing it on Linux needs
a reachable X display.
"""

from __future__ import annotations

import logging
import sys
import threading
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
    """X11 capture: pynput XRecord listeners plus an active-window tracker."""

    platform = "linux-x11"

    def __init__(self, *, focus_poll_ms: int = 50):
        self.focus_poll_s = max(10, focus_poll_ms) / 1000.0
        self._keyboard = None
        self._mouse = None
        self._focus_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._focus_lock = threading.Lock()
        self._size = (0, 0)

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
            self._tracker = X11WindowTracker()
            self._last_focus = None
            self._was_paused = True
            self._recorder = recorder
            keyboard_cls, mouse_cls = _x11_listener_classes()
            self._keyboard = keyboard_cls(recorder, self.refresh_focus)
            self._mouse = mouse_cls(recorder)
            self._keyboard.start()
            self._mouse.start()
            self._keyboard.wait()
            self._mouse.wait()
        finally:
            probe.close()
        self._stop.clear()
        self._focus_thread = threading.Thread(target=self._poll_focus, name="tracework-focus", daemon=True)
        self._focus_thread.start()

    def refresh_focus(self) -> None:
        """Record a focus change if the active window changed since last time.

        Called by the poll thread and, before each key press, by the keyboard
        listener: typing right after a window switch must be preceded by the
        switch in the stream, which polling alone cannot promise.
        """
        recorder = self._recorder
        with self._focus_lock:
            if recorder.paused:
                # Paused means not even looking: no window query at all.
                self._was_paused = True
                return
            try:
                info = self._tracker.active_window()
            except Exception as exc:  # a window vanishing mid-query is normal on X
                log.debug("active window query failed: %s", exc)
                self._tracker._cached = None
                return
            paused = recorder.paused
            # After a resume the focused window is recorded again, so a
            # session's stream always says which window input went to.
            if info is not None and not paused and (info != self._last_focus or self._was_paused):
                recorder.on_focus(info[0], info[1], info[2], info[3])
                self._last_focus = info
            self._was_paused = paused

    def _poll_focus(self) -> None:
        try:
            while not self._stop.is_set():
                self.refresh_focus()
                self._stop.wait(self.focus_poll_s)
        finally:
            with self._focus_lock:
                self._tracker.close()

    def stop(self) -> None:
        for listener in (self._keyboard, self._mouse):
            if listener is not None:
                listener.finish()
        self._stop.set()  # after the listeners: their last keys may still ask for the focus
        for listener in (self._keyboard, self._mouse):
            if listener is not None and listener.is_alive():  # finish() timed out: force it
                listener.stop()
                listener.join(5)
        if self._focus_thread is not None:
            self._focus_thread.join(5)


def _x11_listener_classes():
    """pynput's XRecord listeners, subclassed to keep the raw key code and
    modifier state (pynput's own callbacks pass only a resolved key)."""
    from pynput._util.xorg import alt_gr_mask, alt_mask
    from pynput.keyboard import Key, KeyCode
    from pynput.keyboard._xorg import Listener as XKeyboardListener
    from pynput.mouse._xorg import Listener as XMouseListener
    from Xlib import X

    def _disable_record(self):
        # pynput disables the record context on the connection that is blocked
        # in record_enable_context and unflushed, so stop() hangs until the
        # next input event arrives. Disable it on a connection of our own
        # (the listener thread is still using both of pynput's, and
        # python-xlib connections are not safe to share between threads) and
        # sync, which ends the blocked call at once.
        import Xlib.display

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

    class KeyboardListener(XKeyboardListener):
        def __init__(self, recorder: Recorder, before_press=None):
            super().__init__()
            self.recorder = recorder
            self.before_press = before_press
            self._masks = (8, 128, 64)

        def _initialize(self, display):
            super()._initialize(display)
            # Resolve the display's Alt and AltGr bits once, not per key.
            self._masks = (alt_mask(display) or 8, alt_gr_mask(display) or 128, 64)

        def _handle_message(self, display, event, injected):
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
            if event.type == X.KeyPress and self.before_press is not None and not self.recorder.paused:
                self.before_press()
            self.recorder.on_key(event.type == X.KeyPress, event.detail, key_sym, char, mods)

        _stop_platform = _disable_record
        finish = _finish

    class MouseListener(XMouseListener):
        def __init__(self, recorder: Recorder):
            super().__init__()
            self.recorder = recorder
            self._masks = (8, 128, 64)

        def _initialize(self, display):
            super()._initialize(display)
            self._masks = (alt_mask(display) or 8, alt_gr_mask(display) or 128, 64)

        def _handle_message(self, display, event, injected):
            handle_mouse_event(self.recorder, event, self._masks)

        _stop_platform = _disable_record
        finish = _finish

    return KeyboardListener, MouseListener


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
    """Which top-level window has the focus, with its app, title and geometry."""

    def __init__(self):
        import Xlib.display

        self.display = Xlib.display.Display()
        self.root = self.display.screen().root
        self.atoms = {name: self.display.intern_atom(name) for name in
                      ("_NET_ACTIVE_WINDOW", "_NET_WM_NAME", "UTF8_STRING", "WM_STATE")}
        self._cached = None  # (focused window id, top-level window, app, geometry)

    def close(self) -> None:
        try:
            self.display.close()
        except Exception:
            pass

    def active_window(self):
        """(app, title, window_id, (x, y, w, h)) of the focused top-level
        window, or None when no window has the focus."""
        from Xlib import X

        window = None
        prop = self.root.get_full_property(self.atoms["_NET_ACTIVE_WINDOW"], X.AnyPropertyType)
        if prop is not None and prop.value and prop.value[0]:
            window = self.display.create_resource_object("window", int(prop.value[0]))
        else:
            focus = self.display.get_input_focus().focus
            if isinstance(focus, int) or focus in (X.NONE, X.PointerRoot) or focus.id == self.root.id:
                return None
            window = focus
        if self._cached is not None and self._cached[0] == window.id:
            # Same focused window as last poll: only the title can have changed
            # (a browser tab, a document name); skip the ancestor walk and
            # geometry queries, which are most of the X round trips.
            _, top, app, geometry = self._cached
        else:
            top = self._named_ancestor(window)
            if top is None:
                return None
            cls = top.get_wm_class()
            app = cls[1] if cls else None
            geom = top.get_geometry()
            pos = top.translate_coords(self.root, 0, 0)
            geometry = (-pos.x, -pos.y, geom.width, geom.height)
            self._cached = (window.id, top, app, geometry)
        title = self._title(top)
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

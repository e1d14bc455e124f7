"""Readers for the public datasets the anonymizers are evaluated on.

Aalto 136M Keystrokes (Dhakal et al., CHI 2018): one gzip TSV per participant
with PARTICIPANT_ID, TEST_SECTION_ID, SENTENCE, USER_INPUT, KEYSTROKE_ID,
PRESS_TIME, RELEASE_TIME (ms), LETTER, KEYCODE.

Balabit Mouse Dynamics Challenge (Fülöp et al. 2016): ``<root>/user*/session_*``
gzip CSVs with record timestamp, client timestamp, button, state, x, y.

Both readers raise :class:`tracework.errors.ConfigError` with a hint when a
folder is not in the expected format, and change nothing on disk.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ConfigError
from ..typing import KeySequence, hand_of, key_class_of

AALTO_COLUMNS = ["PARTICIPANT_ID", "TEST_SECTION_ID", "SENTENCE", "USER_INPUT", "KEYSTROKE_ID",
                 "PRESS_TIME", "RELEASE_TIME", "LETTER", "KEYCODE"]

_AALTO_NAMED_KEYS = {
    "BKSP": ("BackSpace", None), "SHIFT": ("Shift_L", None), "CAPS_LOCK": ("Caps_Lock", None),
    "CTRL": ("Control_L", None), "ALT": ("Alt_L", None), "WIN": ("Super_L", None),
    "ENTER": ("Return", "\r"), "TAB": ("Tab", "\t"),
}


@dataclass
class TypedSentence:
    """One sentence typed by one person, as keystrokes and as an event sequence.

    letters/press_ms/release_ms are per keystroke (in press order). ev_ks and
    ev_down give the event sequence: event ``i`` is the press (ev_down) or
    release of keystroke ``ev_ks[i]``.
    """

    person: str
    sentence_id: str
    text: str
    letters: list[str]
    keycodes: list[int]
    press_ms: np.ndarray
    release_ms: np.ndarray
    ev_ks: np.ndarray
    ev_down: np.ndarray

    def key_sequence(self) -> KeySequence:
        """The event-order :class:`KeySequence` (times in ns)."""
        t_ms = np.where(self.ev_down, self.press_ms[self.ev_ks], self.release_ms[self.ev_ks])
        t_ns = np.round(t_ms * 1_000_000).astype(np.int64)
        keys = tuple(self.keycodes[k] for k in self.ev_ks)
        cls = tuple(self._classes[k] for k in self.ev_ks)
        hand = tuple(self._hands[k] for k in self.ev_ks)
        toggle = tuple(self.letters[k] == "CAPS_LOCK" for k in self.ev_ks)
        return KeySequence(t_ns, self.ev_down.copy(), keys, cls, hand, toggle)

    def with_event_times(self, t_ns: np.ndarray) -> "TypedSentence":
        """A copy whose press/release times come from re-timed events."""
        t_ms = np.asarray(t_ns, dtype=np.float64) / 1_000_000
        press = np.empty(len(self.letters))
        release = np.empty(len(self.letters))
        press[self.ev_ks[self.ev_down]] = t_ms[self.ev_down]
        release[self.ev_ks[~self.ev_down]] = t_ms[~self.ev_down]
        out = TypedSentence(self.person, self.sentence_id, self.text, self.letters, self.keycodes,
                            press, release, self.ev_ks, self.ev_down)
        return out

    @property
    def _classes(self) -> list[str]:
        return [key_class_of(*_aalto_key(l)) for l in self.letters]

    @property
    def _hands(self) -> list[str]:
        return [hand_of(l) if len(l) == 1 else "-" for l in self.letters]


def _aalto_key(letter: str) -> tuple[str | None, str | None]:
    """(char, key_sym) for an Aalto LETTER value."""
    if letter in _AALTO_NAMED_KEYS:
        sym, char = _AALTO_NAMED_KEYS[letter]
        return char, sym
    if len(letter) == 1:
        return letter, None
    return None, letter


_JS_KEYCODES = {8: "BKSP", 16: "SHIFT", 17: "CTRL", 18: "ALT", 20: "CAPS_LOCK", 13: "ENTER", 9: "TAB", 32: " "}


def _letter_from_keycode(letter: str, code: int) -> str:
    """Some participants' LETTER is empty; the JavaScript keycode still says the key."""
    if letter:
        return letter
    if 65 <= code <= 90:
        return chr(code).lower()
    if 48 <= code <= 57:
        return chr(code)
    return _JS_KEYCODES.get(code, f"KEY{code}")


def _event_order(press: np.ndarray, release: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(press)
    times = np.concatenate([press, release])
    ks = np.concatenate([np.arange(n), np.arange(n)])
    down = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    # Ties: earlier keystroke first, a key's press before its release.
    order = np.lexsort((~down, ks, times))
    return ks[order], down[order]


def read_aalto_file(path: Path) -> list[TypedSentence]:
    """All sentences of one participant file."""
    try:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            text = fh.read()
    except (OSError, EOFError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", hint="pass a folder of Aalto *_keystrokes.txt.gz files") from exc
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None or [h.strip() for h in header[: len(AALTO_COLUMNS)]] != AALTO_COLUMNS:
        raise ConfigError(f"{path} is not an Aalto keystroke file (header {header!r})",
                          hint=f"expected tab-separated columns {', '.join(AALTO_COLUMNS)}")
    rows: dict[str, list] = {}
    meta: dict[str, tuple[str, str]] = {}
    for row in reader:
        if len(row) < 9:
            continue
        try:
            press = float(row[5])
            release = float(row[6])
            code = int(row[8])
        except ValueError:
            continue
        sid = row[1]
        meta.setdefault(sid, (row[0], row[3]))
        rows.setdefault(sid, []).append((press, max(release, press), _letter_from_keycode(row[7], code), code, int(row[4]) if row[4].isdigit() else 0))
    out = []
    for sid, ks in rows.items():
        ks.sort(key=lambda r: (r[0], r[4]))
        press = np.array([r[0] for r in ks])
        release = np.array([r[1] for r in ks])
        ev_ks, ev_down = _event_order(press, release)
        person, user_input = meta[sid]
        out.append(TypedSentence(person, sid, user_input, [r[2] for r in ks], [r[3] for r in ks],
                                 press, release, ev_ks, ev_down))
    out.sort(key=lambda s: int(s.sentence_id) if s.sentence_id.isdigit() else 0)
    return out


def load_aalto(root: str | Path, max_people: int | None = None, min_sentences: int = 12) -> dict[str, list[TypedSentence]]:
    """Participants (id → sentences in presentation order) from an Aalto folder.

    People with fewer than ``min_sentences`` sentences are left out (they cannot
    be enrolled and tested). ``max_people`` keeps the first N files by name.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder", hint="pass the folder holding *_keystrokes.txt.gz files")
    files = sorted(root.glob("*_keystrokes.txt.gz"), key=lambda p: p.name)
    if not files:
        raise ConfigError(f"no *_keystrokes.txt.gz files in {root}",
                          hint="pass the Aalto 136M Keystrokes folder (one gzip TSV per participant)")
    people: dict[str, list[TypedSentence]] = {}
    for path in files:
        sentences = [s for s in read_aalto_file(path) if len(s.letters) >= 5]
        if len(sentences) >= min_sentences:
            people[sentences[0].person] = sentences
        if max_people and len(people) >= max_people:
            break
    if len(people) < 2:
        raise ConfigError(f"{root} holds {len(people)} usable participants; identification needs at least 2",
                          hint=f"each participant needs at least {min_sentences} sentences")
    return people


@dataclass
class MouseSession:
    """One Balabit session: client time (s), button, state, x, y per record."""

    user: str
    session: str
    t: np.ndarray
    button: np.ndarray
    state: np.ndarray
    x: np.ndarray
    y: np.ndarray


def read_balabit_session(path: Path, user: str) -> MouseSession:
    """One session file (gzip CSV, or plain CSV)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as fh:
            text = fh.read()
    except (OSError, EOFError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", hint="pass the Balabit training_files folder") from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or len(header) < 6 or "timestamp" not in header[1]:
        raise ConfigError(f"{path} is not a Balabit session file (header {header!r})",
                          hint="expected columns: record timestamp, client timestamp, button, state, x, y")
    t, b, s, x, y = [], [], [], [], []
    for row in reader:
        if len(row) < 6:
            continue
        try:
            ti, xi, yi = float(row[1]), int(float(row[4])), int(float(row[5]))
        except ValueError:
            continue
        # Balabit marks off-screen positions with huge values; they are not moves.
        if abs(xi) > 100_000 or abs(yi) > 100_000:
            continue
        t.append(ti); b.append(row[2]); s.append(row[3]); x.append(xi); y.append(yi)
    return MouseSession(user, path.name.split(".")[0], np.array(t), np.array(b), np.array(s),
                        np.array(x, dtype=np.int64), np.array(y, dtype=np.int64))


def load_balabit(root: str | Path, max_sessions_per_user: int | None = None) -> dict[str, list[MouseSession]]:
    """Users (folder name → sessions) from a Balabit ``training_files`` folder.

    Also accepts the dataset's top folder (it then reads ``training_files``).
    """
    root = Path(root)
    if (root / "training_files").is_dir():
        root = root / "training_files"
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder", hint="pass Balabit's training_files folder (user*/session_*)")
    users: dict[str, list[MouseSession]] = {}
    for udir in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in udir.iterdir() if p.name.startswith("session_"))
        if max_sessions_per_user:
            files = files[:max_sessions_per_user]
        sessions = [read_balabit_session(f, udir.name) for f in files]
        sessions = [s for s in sessions if len(s.t) > 10]
        if sessions:
            users[udir.name] = sessions
    if len(users) < 2:
        raise ConfigError(f"{root} holds {len(users)} users with sessions; identification needs at least 2",
                          hint="pass a folder with one sub-folder per user holding session_* files")
    return users

"""One C-speed pass that tells which detectors could match a text.

Most typed text holds no identifier at all, and most of the digits in it
are house numbers, dates and prices. Running every detector's own regex and
Python checks over such text is where the time went (see BENCHMARKS.md,
"Privacy: typed-text redaction"). This module compiles one Hyperscan
database with a *necessary condition* per detector family and per provider
token rule; ``Prefilter.scan(text)`` returns the ids of the conditions that
occur anywhere in the text, and ``Redactor`` runs only those detectors.

Correctness rests on each condition being a superset of what its detector
can report: a detector whose condition does not occur in the text would
have found nothing there. The conditions are either the detector's own
regex with its lookarounds removed (token rules, JWT; removing a lookaround
only widens a pattern, and Hyperscan's prefilter mode may report extra
matches but never misses one) or a shape the detector's checks imply (a
payment card needs 12 digits with single separators; a phone number needs 7
digits, see ``pii._phone_candidate_ok``). tests/privacy/test_redact_prefilter.py
checks, over random text, that the redactor finds exactly the same spans
with and without the prefilter.

Hyperscan matches bytes. Python's ``re`` matches Unicode digits for ``\\d``,
Unicode spaces for ``\\s`` and a few non-ASCII letters case-insensitively
(``ſ`` for ``s``, the Kelvin sign for ``k``), so non-ASCII text is first
mapped character for character onto ASCII that keeps those meanings
(``_ascii_view``). When Hyperscan is not installed (a platform without a
wheel), ``load()`` returns None and every detector runs, as before.
"""

from __future__ import annotations

import codecs
import re
import string
import threading
from collections.abc import Set as AbstractSet

from . import secrets

try:  # optional at run time: no wheel on some platforms, then every detector runs
    import hyperscan
except ImportError:  # pragma: no cover - exercised only where hyperscan is missing
    hyperscan = None

# Family ids (token rules get ids from TOKEN_BASE on, in secrets.TOKEN_RULES order).
EMAIL, CARD, IBAN, SSN, NATIONAL_ID, IPV4, IPV6, PHONE, URL_CREDENTIALS, GENERIC, JWT = range(11)
TOKEN_BASE = 16

# Python's \s on ASCII is [\t\n\v\f\r \x1c-\x1f]; Hyperscan's \s lacks \x1c-\x1f.
_WS = r"[\t\n\x0b\x0c\r \x1c-\x1f]"

# The patterns' (?<![\d\-]) and (?![\d\-]) edges, spelled without
# lookarounds. Exact on the ASCII view: only Unicode digits become digits
# there (they are \d to Python too), and nothing becomes '-'. (A number
# detector's window never ends right before a digit or inside a match, so
# matches found in windows are matches of the whole text.)
_NUM_L = r"(?:^|[^0-9\-])"
_NUM_R = r"(?:[^0-9\-]|$)"

# Hand-written conditions: each is implied by every span its detector reports.
_FAMILY_PATTERNS: dict[int, str] = {
    # find_emails: a local-part character, '@', then a domain's first character.
    EMAIL: r"[A-Za-z0-9._%+\-']@[A-Za-z0-9]",
    # _card_ok: 12-19 digits, single space or dash separators only.
    CARD: r"[0-9](?:[ \-]?[0-9]){11}",
    # IBAN_CANDIDATE without its lookarounds, cut to its first fixed part.
    IBAN: r"[A-Za-z]{2}[0-9]{2}(?:[A-Za-z0-9]{11}| [A-Za-z0-9]{4} [A-Za-z0-9]{4})",
    # SSN_PATTERN (3-2-4 with one separator, not inside a longer run of
    # digits and dashes) or the SSN_CONTEXT keyword.
    SSN: _NUM_L + r"[0-9]{3}[ \-][0-9]{2}[ \-][0-9]{4}" + _NUM_R + r"|(?i:ssn|social security)",
    # NINO (letters, 3x2 digits, A-D), SIN (3-3-3), Aadhaar (4-4-4); SIN and
    # Aadhaar with their patterns' edges, so a card's 16 digits fire neither.
    NATIONAL_ID: (
        r"[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]"
        r"|" + _NUM_L + r"[0-9]{3}[ \-][0-9]{3}[ \-][0-9]{3}" + _NUM_R
        + r"|" + _NUM_L + r"[0-9]{4}[ \-]?[0-9]{4}[ \-]?[0-9]{4}" + _NUM_R
    ),
    IPV4: r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]",
    # A valid IPv6 address is compressed ("::") or has eight groups (six
    # before an embedded IPv4): clock times like 11:34:35 are neither.
    IPV6: r"::|(?:[0-9A-Fa-f]{1,4}:){6}",
    # _phone_candidate_ok needs 7 digits in a PHONE_CANDIDATE match (main
    # part of at most 26 characters, or fewer digits plus an extension).
    PHONE: (
        r"[0-9](?:[ \-.()/]{0,24}[0-9]){6}"
        r"|[0-9][0-9 \-.()/]{4,24}[0-9]" + _WS + r"{0,2}(?:x|ext|#)"
    ),
    URL_CREDENTIALS: r"://[^:/?#@\"'<>]{1,128}:[^/?#@\"'<>]{1,256}@",
    # GENERIC_ASSIGNMENT up to its assignment operator.
    GENERIC: (
        r"(?i:pass|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|auth[_\-]?key"
        r"|private[_\-]?key|client[_\-]?secret|credential|key)"
        r"[A-Za-z0-9_\-]{0,20}[\"']?" + _WS + r"{0,3}[:=]"
    ),
    # No condition for pii.PHONE_CONTEXT: the phone word matters only next
    # to a short number that is already a PHONE candidate, where
    # find_phones looks for it in compiled code; as a Hyperscan condition it
    # cost a fifth of every scan (it fired in a third of presidio-synth's
    # sentences, most of which hold nothing else).
    # JWT_PATTERN up to the second part's start, upper bound dropped.
    JWT: r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ",
}

# A lookaround over one character class, e.g. (?<![A-Za-z0-9_\-]).
_LOOKAROUND = re.compile(r"\(\?<?[!=]\[(?:\\.|[^\]\\])*\]\)")
_LARGE_BOUND = re.compile(r"\{(\d+),(\d{3,})\}")


def derived_pattern(pattern: str) -> str:
    """A Python pattern as a Hyperscan condition that matches wherever the
    pattern does: lookarounds removed, ``\\s``/``\\d`` spelled as ASCII classes
    (the text is mapped to ASCII first, see ``_ascii_view``)."""
    out = _LOOKAROUND.sub("", pattern)
    if "(?<" in out or "(?=" in out or "(?!" in out:
        raise ValueError(f"pattern has a lookaround this prefilter cannot drop: {pattern!r}")
    out = out.replace(r"\s", _WS).replace(r"\d", "[0-9]")
    # A large upper bound only costs Hyperscan states; no bound is a superset.
    return _LARGE_BOUND.sub(r"{\1,}", out)


class _AsciiMap(dict):
    """str.translate table, filled on first sight of each character: ASCII
    maps to itself; a Unicode digit to '0' (Python's ``\\d`` matches it); a
    Unicode space to ' '; a letter that ``re`` matches case-insensitively
    against an ASCII letter to that letter; anything else to '~' (not a
    digit, space or letter, and outside every condition's classes but the
    token alphabet, where a non-ASCII character never counts either)."""

    def __missing__(self, code: int) -> int:
        ch = chr(code)
        if code < 128:
            out = code
        elif ch.isdecimal():
            out = ord("0")
        elif ch.isspace():
            out = ord(" ")
        else:
            out = next((ord(a) for a in string.ascii_lowercase if re.fullmatch("(?i:" + a + ")", ch)), ord("~"))
        self[code] = out
        return out


_ASCII_MAP = _AsciiMap()


def register_view(name: str, table: dict) -> None:
    """Register the codec error handler ``name``: ``text.encode("ascii",
    name)`` then gives ``text`` with each non-ASCII character mapped by the
    str.translate ``table``. The handler runs once per run of non-ASCII
    characters; the ASCII rest is copied in C (translating every character
    cost ~5 us per sentence)."""

    def map_non_ascii(err: UnicodeEncodeError):
        return err.object[err.start : err.end].translate(table), err.end

    codecs.register_error(name, map_non_ascii)


VIEW_CODEC = "tracework_ascii_view"  # text.encode("ascii", VIEW_CODEC) is _ascii_view(text)
register_view(VIEW_CODEC, _ASCII_MAP)


def _ascii_view(text: str) -> bytes:
    """``text`` as ASCII bytes of the same length (offsets unchanged)."""
    return text.encode("ascii", VIEW_CODEC)


class Prefilter:
    """A compiled Hyperscan database of the conditions above; thread-safe
    (one scratch space per thread)."""

    def __init__(self, token_rules=secrets.TOKEN_RULES) -> None:
        exprs, ids = [], []
        for fid, pat in _FAMILY_PATTERNS.items():
            exprs.append(pat.encode())
            ids.append(fid)
        for i, rule in enumerate(token_rules):
            exprs.append(derived_pattern(rule.pattern).encode())
            ids.append(TOKEN_BASE + i)
        flags = [hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_PREFILTER] * len(exprs)
        self.database = hyperscan.Database()
        self.database.compile(expressions=exprs, ids=ids, elements=len(exprs), flags=flags)
        self.local = threading.local()  # .scratch: this thread's scratch space

    def new_scratch(self):
        """A scratch space for this thread (``local.scratch`` from now on)."""
        self.local.scratch = hyperscan.Scratch(self.database)
        return self.local.scratch

    def scan(self, text: str) -> AbstractSet[int]:
        """Ids of the conditions that occur in ``text``."""
        return set(self.scan_view(text)[0])

    def scan_view(self, text: str) -> tuple[list[int], bytes]:
        """The ids of ``scan(text)`` as a list (each at most once, in the
        order they fired), and the ASCII view it scanned (``_ascii_view``).
        (``Redactor.find`` runs these steps inline.)"""
        try:
            scratch = self.local.scratch
        except AttributeError:  # first scan on this thread
            scratch = self.new_scratch()
        hits: list[int] = []
        view = text.encode("ascii", VIEW_CODEC)  # _ascii_view(text)
        # Positional arguments: the binding parses keywords into a dict on
        # every call, which cost more than scanning a typical sentence.
        self.database.scan(view, collect, 0, hits, scratch)
        return hits, view


def collect(fid, _start, _end, _flags, hits):
    """The scan's match callback: ``hits`` gets each id that fired, once
    (the patterns are compiled HS_FLAG_SINGLEMATCH)."""
    hits.append(fid)


_SHARED: Prefilter | None = None
_LOCK = threading.Lock()


def load() -> Prefilter | None:
    """The shared prefilter (compiled once), or None without Hyperscan."""
    global _SHARED
    if hyperscan is None:
        return None
    with _LOCK:
        if _SHARED is None:
            _SHARED = Prefilter()
    return _SHARED

"""Compiled loops over the prefilter's ASCII view of a text.

``Prefilter.scan_view`` already turns the text into bytes of the same length
in which exactly the characters Python's ``re`` calls ``\\d`` are ASCII
digits (``prefilter._ascii_view``). Finding the number windows
(``pii.digit_windows``) on those bytes in a numba-compiled loop gives the
same windows at about a third of the cost of the regex over the text;
tests/privacy/test_redact_fast.py checks the two against each other.

The compiled function writes into a caller's buffer and returns a count:
letting numba allocate and box a NumPy array per call cost more than the
loop itself on sentence-sized texts.
"""

from __future__ import annotations

import threading

import numba
import numpy as np

from . import pii

# Bits of a window's shape flags (the fourth value of digit_windows_ascii).
PHONE_SHAPED = 1  # a phone candidate with 7 digits may lie in the window
CARD_SHAPED = 2  # a card candidate with 12 digits may lie in the window
ALL_SHAPES = PHONE_SHAPED | CARD_SHAPED


@numba.njit(cache=True, nogil=True)
def _is_digit(c):  # pragma: no cover - compiled
    return 48 <= c <= 57


@numba.njit(cache=True, nogil=True)
def _in_phone_class(c):  # pragma: no cover - compiled
    # pii.PHONE_CANDIDATE's [\d \-.()/]
    return (48 <= c <= 57) or c == 32 or c == 45 or c == 46 or c == 40 or c == 41 or c == 47


@numba.njit(cache=True, nogil=True)
def _is_space(c):  # pragma: no cover - compiled
    # Python's \s on ASCII: \t \n \v \f \r, space and \x1c-\x1f (other
    # spaces are ' ' in the view)
    return c == 32 or (9 <= c <= 13) or (28 <= c <= 31)


@numba.njit(cache=True, nogil=True)
def _shapes(view, lo, hi):  # pragma: no cover - compiled
    # Necessary conditions for find_phones / find_cards to report anything
    # in view[lo:hi] (each a superset on the view, which only adds spaces):
    # phone: a run of [0-9 \-.()/] holding 7 digits (_phone_shape needs 7
    # digits in a candidate, all inside one such run) or holding a digit and
    # followed, after at most two spaces, by x, e or # (an extension, whose
    # digits count too); card: a run of [0-9 \- ] holding 12 digits
    # (_card_ok). Windows hold every digit near them, so counting inside the
    # window counts whole runs' digits.
    flags = 0
    i = lo
    while i < hi:
        if not _in_phone_class(view[i]):
            i += 1
            continue
        j = i
        phone_digits = 0
        card_digits = 0
        while j < hi and _in_phone_class(view[j]):
            c = view[j]
            if _is_digit(c):
                phone_digits += 1
                card_digits += 1
                if card_digits >= 12:
                    flags |= CARD_SHAPED
            elif c != 32 and c != 45:
                card_digits = 0  # '.', '(', ')' or '/' ends a card run
            j += 1
        if phone_digits >= 7:
            flags |= PHONE_SHAPED
        elif phone_digits > 0:
            k = j
            while k < hi and k < j + 2 and _is_space(view[k]):
                k += 1
            if k < hi and (view[k] == 120 or view[k] == 101 or view[k] == 35):  # x e #
                flags |= PHONE_SHAPED
        if flags == ALL_SHAPES:
            break
        i = j
    return flags


@numba.njit(cache=True, nogil=True)
def _windows_into(view, out, left, right):  # pragma: no cover - compiled; covered through digit_windows_ascii
    # A window is a maximal sequence of digit runs with gaps of at most
    # left + right characters (pii.digit_windows), widened by the margins.
    # out holds lo, hi, digits, shape flags per window; -1 when too small.
    n = len(view)
    k = 0
    last_end = -1
    i = 0
    while i < n:
        c = view[i]
        if c < 48 or c > 57:
            i += 1
            continue
        j = i + 1
        while j < n and 48 <= view[j] <= 57:
            j += 1
        if k == 0 or i - last_end > left + right:
            if 4 * k + 4 > len(out):
                return -1
            out[4 * k] = i
            out[4 * k + 2] = 0
            k += 1
        out[4 * k - 3] = j
        out[4 * k - 2] += j - i
        last_end = j
        i = j
    for w in range(k):
        lo = max(0, out[4 * w] - left)
        hi = min(n, out[4 * w + 1] + right)
        out[4 * w] = lo
        out[4 * w + 1] = hi
        out[4 * w + 3] = _shapes(view, lo, hi)
    return k


_local = threading.local()
_LEFT, _RIGHT = pii.WINDOW_LEFT, pii.WINDOW_RIGHT


def _new_buffer(n: int) -> memoryview:
    # One output buffer per thread, grown to the longest text seen: a text
    # of n characters has at most n // 2 + 1 digit runs, so as many windows.
    buf = _local.buf = memoryview(np.zeros(max(4 * (n // 2 + 1), 4 * 1024), np.int64))
    return buf


class Compiled:
    """A numba function called past its dispatcher once compiled (or loaded
    from the cache): the dispatcher's argument typing cost about as much as
    the work on a sentence. ``call`` is the compiled entry point after the
    first call; the dispatcher itself if this numba keeps its compiled code
    elsewhere or holds more than one signature."""

    def __init__(self, function) -> None:
        self.function = function
        self.call = self._first

    def _first(self, *args):
        result = self.function(*args)
        try:
            (entry,) = [c.entry_point for c in self.function.overloads.values()]
            self.call = entry
        except (AttributeError, TypeError, ValueError):  # pragma: no cover - numba internals changed
            self.call = self.function
        return result


_WINDOWS = Compiled(_windows_into)


def digit_windows_ascii(view: bytes) -> list[tuple[int, int, int, int]]:
    """``pii.digit_windows(text)`` computed from ``prefilter._ascii_view(text)``,
    each window with its shape flags (``PHONE_SHAPED``, ``CARD_SHAPED``): a
    detector whose flag is off cannot report anything in that window."""
    out = getattr(_local, "buf", None)
    if out is None or len(out) < 4 * (len(view) // 2 + 1):
        out = _new_buffer(len(view))
    k = _WINDOWS.call(view, out, _LEFT, _RIGHT)
    if k == 1:  # the usual case: one cluster of digits
        return [(out[0], out[1], out[2], out[3])]
    return [(out[i], out[i + 1], out[i + 2], out[i + 3]) for i in range(0, 4 * k, 4)]


# pii.PHONE_CANDIDATE in compiled code. The pattern is
#   (?<![\w+])(?:\+|\(\+?)?\d[\d \-.()/]{4,24}\d(?:\s{0,2}(?:x|ext\.?|#)\s{0,2}\d{1,6})?(?![\d])
# and ``_phone_next`` tries what re's backtracking tries, in the same order,
# so it returns the same leftmost match. It reads the text's
# numbers.compiled_view: an ASCII text's own bytes, where \w, \d, \s are
# their ASCII sets, or for other texts bytes that keep re's answers for
# them (the prefilter's view does not: it maps letters to '~').
# tests/privacy/test_redact_phone_compiled.py and test_redact_phone_tables.py
# compare it with the regex.

_NOT_PHONE_SHAPE, _NEEDS_WORD_SHAPE, _PHONE_SHAPE = 0, 1, 2  # pii._phone_shape's answers


@numba.njit(cache=True, nogil=True)
def _is_word(c):  # pragma: no cover - compiled
    # Python's \w on ASCII
    return (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c == 95


@numba.njit(cache=True, nogil=True)
def _phone_end(view, b, n):  # pragma: no cover - compiled
    # End of the match whose last body digit is at b, or -1. The extension
    # group is tried first (greedy "?"). Within it every step has one way
    # to go on: \s{0,2} is followed by a non-space (x, e, #, a digit), so
    # only taking all spaces (at most two) can succeed; "ext." then needs
    # a space or digit, so the dot is taken when present; \d{1,6}(?!\d)
    # needs a run of 1 to 6 digits.
    c = b + 1
    i = c
    while i < n and i < c + 2 and _is_space(view[i]):
        i += 1
    j = -1
    if i < n:
        if view[i] == 120 or view[i] == 35:  # x #
            j = i + 1
        elif i + 2 < n and view[i] == 101 and view[i + 1] == 120 and view[i + 2] == 116:  # ext
            j = i + 4 if i + 3 < n and view[i + 3] == 46 else i + 3
    if j >= 0:
        k = j
        while k < n and k < j + 2 and _is_space(view[k]):
            k += 1
        d = k
        while d < n and d < k + 7 and _is_digit(view[d]):
            d += 1
        if 1 <= d - k <= 6:
            return d
    # Without the extension: (?!\d) right after the last digit.
    if c < n and _is_digit(view[c]):
        return -1
    return c


@numba.njit(cache=True, nogil=True)
def _phone_body(view, a, n):  # pragma: no cover - compiled
    # \d[\d \-.()/]{4,24}\d and the rest from a: the match's end, or -1.
    # The class is greedy: the longest run first, then shorter ones.
    if a >= n or not _is_digit(view[a]):
        return -1
    run = 0
    while run < 24 and a + 1 + run < n and _in_phone_class(view[a + 1 + run]):
        run += 1
    for k in range(run, 3, -1):
        b = a + 1 + k
        if b < n and _is_digit(view[b]):
            e = _phone_end(view, b, n)
            if e >= 0:
                return e
    return -1


@numba.njit(cache=True, nogil=True)
def _digit_at(view, p, e, lo, hi):  # pragma: no cover - compiled
    return p < e and lo <= view[p] <= hi


@numba.njit(cache=True, nogil=True)
def _month_ends(view, p, e):  # pragma: no cover - compiled
    # Ends of (?:0?[1-9]|1[0-2]) at p, as a bit mask of lengths (bit 1: one
    # character, bit 2: two)
    ends = 0
    if _digit_at(view, p, e, 49, 57):
        ends |= 2
    if _digit_at(view, p, e, 48, 48) and _digit_at(view, p + 1, e, 49, 57):
        ends |= 4
    if _digit_at(view, p, e, 49, 49) and _digit_at(view, p + 1, e, 48, 50):
        ends |= 4
    return ends


@numba.njit(cache=True, nogil=True)
def _day_ends(view, p, e):  # pragma: no cover - compiled
    # (?:0?[1-9]|[12]\d|3[01]), as _month_ends
    ends = 0
    if _digit_at(view, p, e, 49, 57):
        ends |= 2
    if _digit_at(view, p, e, 48, 48) and _digit_at(view, p + 1, e, 49, 57):
        ends |= 4
    if _digit_at(view, p, e, 49, 50) and _digit_at(view, p + 1, e, 48, 57):
        ends |= 4
    if _digit_at(view, p, e, 51, 51) and _digit_at(view, p + 1, e, 48, 49):
        ends |= 4
    return ends


@numba.njit(cache=True, nogil=True)
def _century(view, p, e):  # pragma: no cover - compiled
    # (?:19|20) at p
    return (_digit_at(view, p, e, 49, 49) and _digit_at(view, p + 1, e, 57, 57)) or (
        _digit_at(view, p, e, 50, 50) and _digit_at(view, p + 1, e, 48, 48)
    )


@numba.njit(cache=True, nogil=True)
def _not_digit_at(view, p, e):  # pragma: no cover - compiled
    # (?!\d): the match is on the candidate alone, so e ends the string
    return p >= e or not _is_digit(view[p])


@numba.njit(cache=True, nogil=True)
def _short_year_ends(view, p, e):  # pragma: no cover - compiled
    # (?:19|20)?\d\d(?!\d) at p
    if (
        _century(view, p, e)
        and _digit_at(view, p + 2, e, 48, 57)
        and _digit_at(view, p + 3, e, 48, 57)
        and _not_digit_at(view, p + 4, e)
    ):
        return True
    return _digit_at(view, p, e, 48, 57) and _digit_at(view, p + 1, e, 48, 57) and _not_digit_at(view, p + 2, e)


@numba.njit(cache=True, nogil=True)
def _is_sep(c):  # pragma: no cover - compiled
    return c == 45 or c == 46 or c == 47  # [\-./]


@numba.njit(cache=True, nogil=True)
def _date_like(view, s, e):  # pragma: no cover - compiled
    # pii._DATE_LIKE.match(view[s:e]) is not None: each alternative's every
    # path (the optional "0" and century give each part one or two lengths),
    # the second separator equal to the first.
    # (?:19|20)\d\d([\-./])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])(?!\d)
    if _century(view, s, e) and _digit_at(view, s + 2, e, 48, 57) and _digit_at(view, s + 3, e, 48, 57):
        p = s + 4
        if p < e and _is_sep(view[p]):
            months = _month_ends(view, p + 1, e)
            for m in range(1, 3):
                q = p + 1 + m
                if months & (1 << m) and q < e and view[q] == view[p]:
                    days = _day_ends(view, q + 1, e)
                    for d in range(1, 3):
                        if days & (1 << d) and _not_digit_at(view, q + 1 + d, e):
                            return True
    # (?:0?[1-9]|[12]\d|3[01])([\-./])(?:0?[1-9]|1[0-2])\2(?:19|20)?\d\d(?!\d), then
    # (?:0?[1-9]|1[0-2])([\-./])(?:0?[1-9]|[12]\d|3[01])\3(?:19|20)?\d\d(?!\d)
    for order in range(2):
        first = _day_ends(view, s, e) if order == 0 else _month_ends(view, s, e)
        for a in range(1, 3):
            p = s + a
            if not (first & (1 << a) and p < e and _is_sep(view[p])):
                continue
            second = _month_ends(view, p + 1, e) if order == 0 else _day_ends(view, p + 1, e)
            for b in range(1, 3):
                q = p + 1 + b
                if second & (1 << b) and q < e and view[q] == view[p] and _short_year_ends(view, q + 1, e):
                    return True
    return False


@numba.njit(cache=True, nogil=True)
def phone_shape(view, s, e, min_digits):  # pragma: no cover - compiled
    """pii._phone_shape(text[s:e]) from its digit count, its digit groups
    (\\d{1,6} matches) and its lead ("+" or "(+"): (shape, digit count)."""
    digits = 0
    groups = 0
    run = 0
    for i in range(s, e):
        if _is_digit(view[i]):
            digits += 1
            if run % 6 == 0:
                groups += 1
            run += 1
        else:
            run = 0
    if digits < min_digits or digits > 17:
        return _NOT_PHONE_SHAPE, digits
    plus = view[s] == 43 or (view[s] == 40 and s + 1 < e and view[s + 1] == 43)
    if digits <= 8 and groups < 3 and not plus:
        return _NEEDS_WORD_SHAPE, digits
    return _PHONE_SHAPE, digits


@numba.njit(cache=True, nogil=True)
def _phone_next(view, pos, n, min_digits, plain_mask, prefixes):  # pragma: no cover - compiled
    # The first PHONE_CANDIDATE match in view[pos:n] (re's search(text, pos,
    # n): the lookbehind sees characters before pos, nothing at or after n
    # exists), packed as start << 36 | end << 4 | screened << 3 | rejected
    # << 2 | shape, or -1. shape is pii._phone_shape of the match (_NOT_PHONE_SHAPE, ...);
    # rejected says pii._phone_ok is False for it by its first tests: a date
    # (pii._DATE_LIKE), or a number without "+" or "(0)" whose digit count
    # fits no region (pii._length_fits_some_region, given as plain_mask and
    # prefixes, see screen_arrays); screened says both tests ran and passed
    # (a number without "+" or "(0)", shape not _NOT_PHONE_SHAPE).
    s = pos
    while s + 6 <= n:  # the shortest match is \d, four class characters, \d
        c = view[s]
        if not (_is_digit(c) or c == 43 or c == 40) or (s > 0 and (_is_word(view[s - 1]) or view[s - 1] == 43)):
            s += 1
            continue
        # (?:\+|\(\+?)? : "+", then "(+", then "(", then nothing.
        e = -1
        if c == 43:
            e = _phone_body(view, s + 1, n)
        elif c == 40:
            if s + 1 < n and view[s + 1] == 43:
                e = _phone_body(view, s + 2, n)
            if e < 0:
                e = _phone_body(view, s + 1, n)
        if e < 0:
            e = _phone_body(view, s, n)
        if e < 0:
            s += 1
            continue
        shape, digits = phone_shape(view, s, e, min_digits)
        # pii._phone_ok_uncached: a date is no phone number; nor, without "+"
        # or "(0)", one whose digit count fits no region.
        rejected = 1 if shape != _NOT_PHONE_SHAPE and _date_like(view, s, e) else 0
        screened = 0
        if shape != _NOT_PHONE_SHAPE and not rejected and c != 43 and not (c == 40 and view[s + 1] == 43):
            rejected = 1
            screened = 1
            for i in range(s, e - 2):
                if view[i] == 40 and view[i + 1] == 48 and view[i + 2] == 41:  # "(0)": parsed without it too
                    rejected = 0
                    screened = 0
            if rejected and (plain_mask >> digits) & 1:
                rejected = 0
            for p in range(prefixes.shape[0]):
                if rejected and (prefixes[p, 1] >> digits) & 1:
                    # digits.startswith(prefix): the first prefix-length digits
                    k = 0
                    i = s
                    while i < e and k < prefixes[p, 0]:
                        if _is_digit(view[i]):
                            if view[i] != prefixes[p, 2 + k]:
                                break
                            k += 1
                        i += 1
                    if k == prefixes[p, 0]:
                        rejected = 0
        return (s << 36) | (e << 4) | ((screened & (1 - rejected)) << 3) | (rejected << 2) | shape
    return -1


PHONE_NEXT = Compiled(_phone_next)


_MAX_PREFIX = 8
_SCREENS: dict[tuple, tuple[int, np.ndarray]] = {}


def screen_arrays(regions: tuple) -> tuple[int, np.ndarray]:
    """pii's length screen for ``regions`` as _phone_next reads it: a bit
    mask of the possible lengths, and per national prefix a row [length,
    mask of the lengths with it, its digits as ASCII codes]."""
    screen = _SCREENS.get(regions)
    if screen is None:  # the first call for these regions
        plain, prefixed = pii._length_screen(regions)
        rows = np.zeros((len(prefixed), 2 + _MAX_PREFIX), np.int64)
        for row, (prefix, lengths) in zip(rows, prefixed):
            if len(prefix) > _MAX_PREFIX or not (prefix.isascii() and prefix.isdigit()):
                raise ValueError(f"national prefix {prefix!r} is not a short digit string")
            row[0] = len(prefix)
            row[1] = sum(1 << k for k in lengths if k < 63)  # a candidate has at most 17 digits
            row[2 : 2 + len(prefix)] = list(prefix.encode())
        screen = _SCREENS[regions] = (sum(1 << k for k in plain if k < 63), rows)
    return screen


def phone_next(view: bytes, pos: int, n: int, regions: tuple) -> tuple[int, int, str, bool, bool] | None:
    """``pii.PHONE_CANDIDATE.search(text, pos, n)`` for a ``text`` whose
    ``numbers.compiled_view`` is ``view``: (start, end, pii._phone_shape of the match,
    True when pii._phone_ok rejects it as a date or by its length, True when
    it is no date, written without "+" and "(0)", and of a length that fits
    a region), or None."""
    plain_mask, prefixes = screen_arrays(regions)
    found = PHONE_NEXT.call(view, pos, n, pii.MIN_DIGITS_PHONE, plain_mask, prefixes)
    if found < 0:
        return None
    return found >> 36, (found >> 4) & 0xFFFFFFFF, SHAPES[found & 3], (found & 4) != 0, (found & 8) != 0


SHAPES = (pii._NOT_PHONE, pii._NEEDS_WORD, pii._PHONE_SHAPED)  # by _phone_next's shape bits


# pii.PHONE_CONTEXT on a compiled view: whether one of its words occurs in
# view[lo:hi], letters compared case-insensitively (on ASCII text re's
# IGNORECASE folds only A-Z). "ph" must end at a word boundary and the
# "dial" words must be whole words; "☎" is not ASCII. A search only asks
# whether a match exists, so the alternatives' order does not matter.
# tests/privacy/test_redact_phone_compiled.py compares it with the regex.
CONTEXT_WORDS = (
    "phone", "tel", "mobile", "cell", "call", "fax", "office", "number", "contact", "reach", "whatsapp", "sms",
    "text me", "home", "work", "answering", "voicemail", "landline", "hotline", "message",
)
_DIAL_SUFFIXES = ("", "ling", "ing", "led", "ed", "s")


def _word_table(words) -> np.ndarray:
    table = np.zeros((len(words), 1 + max(map(len, words))), np.uint8)
    for row, word in zip(table, words):
        row[0] = len(word)
        row[1 : 1 + len(word)] = list(word.encode("ascii"))
    return table


_CONTEXT_TABLE = _word_table(CONTEXT_WORDS)
_DIAL_TABLE = _word_table([s or "-" for s in _DIAL_SUFFIXES])
_DIAL_TABLE[0, 0] = 0  # the empty suffix


@numba.njit(cache=True, nogil=True)
def _lower(c):  # pragma: no cover - compiled
    return c | 32 if 65 <= c <= 90 else c


@numba.njit(cache=True, nogil=True)
def _word_at(view, p, hi, table, w):  # pragma: no cover - compiled
    # table row w's word at view[p:] (case-insensitive), inside hi
    length = table[w, 0]
    if p + length > hi:
        return False
    for k in range(length):
        if _lower(view[p + k]) != table[w, 1 + k]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _boundary_after(view, q, hi):  # pragma: no cover - compiled
    # \b after a letter at q - 1: the end (hi: re's endpos) or a non-word
    return q >= hi or not _is_word(view[q])


@numba.njit(cache=True, nogil=True)
def _has_context(view, lo, hi, words, dial):  # pragma: no cover - compiled
    for p in range(lo, hi):
        for w in range(words.shape[0]):
            if _word_at(view, p, hi, words, w):
                return True
        c = _lower(view[p])
        if c == 112 and p + 1 < hi and _lower(view[p + 1]) == 104 and _boundary_after(view, p + 2, hi):  # ph\b
            return True
        if (
            c == 100  # \bdial(?:l?ing|led|ed|s)?\b
            and (p == 0 or not _is_word(view[p - 1]))
            and p + 4 <= hi
            and _lower(view[p + 1]) == 105
            and _lower(view[p + 2]) == 97
            and _lower(view[p + 3]) == 108
        ):
            for s in range(dial.shape[0]):
                if _word_at(view, p + 4, hi, dial, s) and _boundary_after(view, p + 4 + dial[s, 0], hi):
                    return True
    return False


_HAS_CONTEXT = Compiled(_has_context)


def has_phone_context(view: bytes, lo: int, hi: int) -> bool:
    """``pii.PHONE_CONTEXT.search(text, lo, hi) is not None`` for a
    ``text`` whose ``numbers.compiled_view`` is ``view``."""
    return _HAS_CONTEXT.call(view, lo, hi, _CONTEXT_TABLE, _DIAL_TABLE)

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


def _kernel(view, out, left, right):
    """The compiled loop, called past numba's dispatcher once compiled (or
    loaded from the cache): the dispatcher's argument typing cost about as
    much as the loop on a sentence. Falls back to the dispatcher if this
    numba keeps its compiled code elsewhere."""
    global _kernel
    k = _windows_into(view, out, left, right)
    try:
        (entry,) = [c.entry_point for c in _windows_into.overloads.values()]
        if entry(view, out, left, right) == k:
            _kernel = entry
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - numba internals changed: keep the dispatcher
        _kernel = _windows_into
    return k


def digit_windows_ascii(view: bytes) -> list[tuple[int, int, int, int]]:
    """``pii.digit_windows(text)`` computed from ``prefilter._ascii_view(text)``,
    each window with its shape flags (``PHONE_SHAPED``, ``CARD_SHAPED``): a
    detector whose flag is off cannot report anything in that window."""
    out = getattr(_local, "buf", None)
    if out is None or len(out) < 4 * (len(view) // 2 + 1):
        out = _new_buffer(len(view))
    k = _kernel(view, out, _LEFT, _RIGHT)
    if k == 1:  # the usual case: one cluster of digits
        return [(out[0], out[1], out[2], out[3])]
    return [(out[i], out[i + 1], out[i + 2], out[i + 3]) for i in range(0, 4 * k, 4)]

"""Phone numbers and payment cards found in compiled code.

On identifier-dense text the phone and card detectors were most of
``Redactor.find``'s time, and most of that was Python around small steps: a
generator per window, a regex search per candidate, phonenumbers' metadata
consulted region by region (BENCHMARKS.md, "Privacy: typed-text
redaction"). Here the same steps run in numba over a view of the text
(``compiled_view``):

- ``_phone_loop``: ``pii.find_phones``' loop. The candidates are
  ``fastscan._phone_next`` (``PHONE_CANDIDATE`` in ``re``'s backtracking
  order, with the shape, date and length screens), the phone word is
  ``fastscan._has_context``, the metadata decision is phonemeta's tables,
  and the retries with shorter group sequences are those of find_phones.
  A candidate it cannot decide (written with "+", a trunk prefix "(0)", an
  extension, or a number whose answer needs ``phonenumbers.parse``) stops
  the loop, and Python decides it the old way (``ASK``).
- ``_card_loop``: ``pii.find_cards`` (``CARD_CANDIDATE``, single separators,
  12-19 digits, Luhn, not one repeated digit, the retries).
- ``_text_numbers``: both over every number window of a text
  (``fastscan._windows_into``), in one call: the usual sentence with a phone
  number or a card costs one compiled call instead of a dozen Python ones.

Every answer is the Python detectors' answer: tests/privacy/
test_redact_phone_tables.py and test_redact_prefilter.py compare them on
random texts (planted numbers, separators, dates, non-ASCII letters, digits
and spaces), and the reference path (``Redactor(use_prefilter=False)``)
runs none of this.
"""

from __future__ import annotations

import re
import string
import threading

import numba
import numpy as np

from . import fastscan, phonemeta, pii, prefilter
from .fastscan import (
    Compiled,
    _CONTEXT_TABLE,
    _DIAL_TABLE,
    _NEEDS_WORD_SHAPE,
    _NOT_PHONE_SHAPE,
    _date_like,
    _has_context,
    _is_digit,
    _is_word,
    _phone_next,
    _windows_into,
    phone_shape,
)

ASK = -1  # a loop's answer when a candidate needs Python (else the span count)
KIND_CARD, KIND_PHONE = 1, 2  # the third value of each span triple
WANT_CARDS, WANT_PHONES = 1, 2  # _text_numbers' detector flags

_UNKNOWN_SHAPE = 3
# The state array (one per thread and region tuple, see NumberKernel): the
# phone loop's outputs, where the other parts start, phonemeta's packed
# tables, the number windows, the spans found (triples: start, end, kind).
_S_POS, _S_BUDGET, _S_COUNT, _S_HIT, _S_SPANS_AT, _S_WINDOWS_AT, _S_TABLES = 0, 1, 2, 3, 4, 5, 8
_LEFT, _RIGHT = pii.WINDOW_LEFT, pii.WINDOW_RIGHT


# ------------------------------------------------------------------ phones


@numba.njit(cache=True, nogil=True)
def _length_fits(d, nd, plain_mask, prefixes):  # pragma: no cover - compiled
    # pii._length_fits_some_region for the digits d[:nd]
    if (plain_mask >> nd) & 1:
        return True
    for p in range(prefixes.shape[0]):
        if (prefixes[p, 1] >> nd) & 1 and prefixes[p, 0] <= nd:
            ok = True
            for k in range(prefixes[p, 0]):
                if d[k] != prefixes[p, 2 + k]:
                    ok = False
                    break
            if ok:
                return True
    return False


@numba.njit(cache=True, nogil=True)
def _candidate_decision(
    view, s, e, shape, screened, d, plain_mask, prefixes, regions, rules, literals, trans, accept
):  # pragma: no cover - compiled
    # pii._phone_candidate_ok(text, s, e, text[s:e], regions, True, ...):
    # phonemeta.YES, NO or ASK. shape _UNKNOWN_SHAPE: computed here (the
    # retries' shorter candidates); screened: _phone_next's flag.
    if shape == _UNKNOWN_SHAPE:
        shape, _digits = phone_shape(view, s, e, pii.MIN_DIGITS_PHONE)
    if shape == _NOT_PHONE_SHAPE:
        return phonemeta.NO
    nd = 0  # at most 17 digits here (phone_shape)
    for i in range(s, e):
        if _is_digit(view[i]):
            d[nd] = view[i]
            nd += 1
    plus = view[s] == 43 or (view[s] == 40 and s + 1 < e and view[s + 1] == 43)
    if shape == _NEEDS_WORD_SHAPE:
        lo = s - pii.PHONE_CONTEXT_CHARS if s > pii.PHONE_CONTEXT_CHARS else 0
        hi = e + pii.PHONE_CONTEXT_CHARS if e + pii.PHONE_CONTEXT_CHARS < len(view) else len(view)
        if not _has_context(view, lo, hi, _CONTEXT_TABLE, _DIAL_TABLE):
            return phonemeta.NO
    # pii._phone_ok_uncached
    for i in range(s, e):
        if view[i] == 120 or view[i] == 35:  # x, #: an extension, read by Python
            return phonemeta.ASK
    if not screened:
        if _date_like(view, s, e):
            return phonemeta.NO
        if plus:
            return phonemeta.ASK
        for i in range(s, e - 2):
            if view[i] == 40 and view[i + 1] == 48 and view[i + 2] == 41:  # "(0)"
                return phonemeta.ASK
        if not _length_fits(d, nd, plain_mask, prefixes):
            return phonemeta.NO
    return phonemeta.possible_in_regions(d, nd, regions, rules, literals, trans, accept)


@numba.njit(cache=True, nogil=True)
def _next_group_at(view, start):  # pragma: no cover - compiled
    # pii._next_group: the end of \d{1,64}[^\d] searched from start (a digit
    # run followed by a non-digit; the run's length does not move the end)
    n = len(view)
    i = start
    while i < n and not _is_digit(view[i]):
        i += 1
    while i < n and _is_digit(view[i]):
        i += 1
    return i + 1 if i < n else n


@numba.njit(cache=True, nogil=True)
def _group_ends(view, start, end, out):  # pragma: no cover - compiled
    # pii._group_ends(view[start:end]) into out, as offsets from start:
    # where each \d{1,6} match ends, but the last. Returns the count.
    ng = 0
    run = 0
    for i in range(start, end + 1):
        if i < end and _is_digit(view[i]):
            run += 1
            if run == 6:
                out[ng] = i + 1 - start
                ng += 1
                run = 0
        else:
            if run > 0:
                out[ng] = i - start
                ng += 1
            run = 0
    return ng - 1 if ng > 0 else 0


@numba.njit(cache=True, nogil=True)
def _add(out, k, start, end, kind):  # pragma: no cover - compiled
    out[3 * k] = start
    out[3 * k + 1] = end
    out[3 * k + 2] = kind
    return k + 1


@numba.njit(cache=True, nogil=True)
def _phone_loop(
    view, pos, n, stop, budget, plain_mask, prefixes, regions, rules, literals, trans, accept, out, k
):  # pragma: no cover - compiled
    # pii.find_phones(text, regions, pos, n, True, stop, view) from its
    # candidate at pos: spans into out from index k. Returns (asked, pos,
    # budget, k, hit): asked when a candidate needs Python, with that
    # candidate's _phone_next hit and pos and budget as they were before it.
    d = np.empty(32, np.uint8)
    ends = np.empty(32, np.int64)
    while pos < stop:
        hit = _phone_next(view, pos, n, pii.MIN_DIGITS_PHONE, plain_mask, prefixes)
        if hit < 0:
            break
        start = hit >> 36
        end = (hit >> 4) & 0xFFFFFFFF
        if (hit >> 2) & 1:  # rejected by the date or length screen
            ok = phonemeta.NO
        else:
            ok = _candidate_decision(
                view, start, end, hit & 3, (hit >> 3) & 1, d, plain_mask, prefixes, regions, rules, literals, trans, accept
            )
        if ok == phonemeta.ASK:
            return True, pos, budget, k, hit
        if ok == phonemeta.YES:
            k = _add(out, k, start, end, KIND_PHONE)
            pos = end
            continue
        space = False
        for i in range(start, end):
            if view[i] == 32:
                space = True
                break
        if budget <= 0 or not space:  # out of retries, or not two numbers side by side
            pos = end
            continue
        found = -1
        tries = 0
        for g in range(_group_ends(view, start, end, ends) - 1, -1, -1):
            group_end = ends[g]
            nd = 0
            for i in range(start, start + group_end):
                if _is_digit(view[i]):
                    nd += 1
            if nd > 15:
                continue
            if nd < pii.MIN_DIGITS_PHONE or tries == pii._PHONE_RETRIES:
                break
            tries += 1
            ok = _candidate_decision(
                view, start, start + group_end, _UNKNOWN_SHAPE, 0, d, plain_mask, prefixes,
                regions, rules, literals, trans, accept,
            )
            if ok == phonemeta.ASK:
                return True, pos, budget, k, hit
            if ok == phonemeta.YES:
                found = group_end
                break
        budget -= 1
        if found >= 0:
            k = _add(out, k, start, start + found, KIND_PHONE)
            pos = start + found
            continue
        pos = _next_group_at(view, start)
    return False, pos, budget, k, 0


# ------------------------------------------------------------------- cards


@numba.njit(cache=True, nogil=True)
def _card_next(view, pos, n):  # pragma: no cover - compiled
    # pii.CARD_CANDIDATE.search(text, pos, n), i.e.
    #   (?<![\w\-+])\d[\d \-]{10,21}\d(?![\d])
    # as start << 32 | end, or -1. The class is greedy: the longest run
    # first, then shorter ones, each needing a digit after it that is not
    # followed by one (nothing at or after n exists).
    s = pos
    while s + 12 <= n:
        if not _is_digit(view[s]) or (s > 0 and (_is_word(view[s - 1]) or view[s - 1] == 45 or view[s - 1] == 43)):
            s += 1
            continue
        run = 0
        while run < 21 and s + 1 + run < n and (_is_digit(view[s + 1 + run]) or view[s + 1 + run] == 32 or view[s + 1 + run] == 45):
            run += 1
        for k in range(run, 9, -1):
            b = s + 1 + k
            if b < n and _is_digit(view[b]) and (b + 1 >= n or not _is_digit(view[b + 1])):
                return (s << 32) | (b + 1)
        s += 1
    return -1


@numba.njit(cache=True, nogil=True)
def _card_ok(view, s, e):  # pragma: no cover - compiled
    # pii._card_ok_uncached(text[s:e]) for a candidate (digits, spaces, dashes)
    digits = 0
    after_separator = False
    for i in range(s, e):
        if view[i] == 32 or view[i] == 45:
            if after_separator:
                return False  # "  ", "--", " -" or "- "
            after_separator = True
        else:
            after_separator = False
            digits += 1
    if digits < 12 or digits > 19:
        return False
    total = 0
    doubled = False
    first = -1
    varied = False
    for i in range(e - 1, s - 1, -1):  # Luhn, from the right
        if view[i] == 32 or view[i] == 45:
            continue
        d = view[i] - 48
        if first < 0:
            first = d
        elif d != first:
            varied = True
        if doubled:
            d = 2 * d - 9 if d > 4 else 2 * d
        total += d
        doubled = not doubled
    return total % 10 == 0 and varied


@numba.njit(cache=True, nogil=True)
def _card_loop(view, pos, n, stop, budget, out, k):  # pragma: no cover - compiled
    # pii.find_cards(text, pos, n, stop): spans into out from index k;
    # returns the new count.
    ends = np.empty(32, np.int64)
    while pos < stop:
        hit = _card_next(view, pos, n)
        if hit < 0:
            break
        start = hit >> 32
        end = hit & 0xFFFFFFFF
        if _card_ok(view, start, end):
            k = _add(out, k, start, end, KIND_CARD)
            pos = end
            continue
        if budget <= 0:
            pos = end
            continue
        budget -= 1
        found = -1
        for g in range(_group_ends(view, start, end, ends) - 1, -1, -1):
            if _card_ok(view, start, start + ends[g]):
                found = ends[g]
                break
        if found >= 0:
            k = _add(out, k, start, start + found, KIND_CARD)
            pos = start + found
            continue
        pos = _next_group_at(view, start)
    return k


# ----------------------------------------------------------- entry points


@numba.njit(cache=True, nogil=True)
def _phones(view, pos, n, stop, budget, plain_mask, state):  # pragma: no cover - compiled
    # _phone_loop over state's tables, spans into state's span part; the
    # count, or ASK with the loop's state at _S_POS.. (see _phone_loop).
    prefixes, regions, rules, literals, trans, accept = phonemeta.unpack_all(state, _S_TABLES)
    out = state[state[_S_SPANS_AT] :]
    asked, pos, budget, k, hit = _phone_loop(
        view, pos, n, stop, budget, plain_mask, prefixes, regions, rules, literals, trans, accept, out, 0
    )
    state[_S_POS], state[_S_BUDGET], state[_S_COUNT], state[_S_HIT] = pos, budget, k, hit
    return ASK if asked else k


@numba.njit(cache=True, nogil=True)
def _cards(view, pos, n, stop, budget, state):  # pragma: no cover - compiled
    return _card_loop(view, pos, n, stop, budget, state[state[_S_SPANS_AT] :], 0)


@numba.njit(cache=True, nogil=True)
def _text_numbers(view, numbers_view, want, budget, plain_mask, state):  # pragma: no cover - compiled
    # Redactor._candidates' number-window loop for cards and phones alone:
    # the windows of view (the prefilter's view), the detectors on
    # numbers_view (compiled_view), each window's card search then its phone
    # search, with Redactor's digit minimums and a fresh budget each (one
    # find_* call per window). The span count, or ASK.
    prefixes, regions, rules, literals, trans, accept = phonemeta.unpack_all(state, _S_TABLES)
    windows = state[state[_S_WINDOWS_AT] : state[_S_SPANS_AT]]
    out = state[state[_S_SPANS_AT] :]
    n = len(view)
    count = _windows_into(view, windows, _LEFT, _RIGHT)
    if count < 0:
        return ASK
    k = 0
    for w in range(count):
        lo, hi, nd, shapes = windows[4 * w], windows[4 * w + 1], windows[4 * w + 2], windows[4 * w + 3]
        digits_end = hi - _RIGHT if hi < n else hi  # pii.window_digits_end
        if want & WANT_CARDS and nd >= pii.MIN_DIGITS_CARD and shapes & fastscan.CARD_SHAPED:
            # A card starts with a digit: the search starts where the window's
            # first digit is (WINDOW_LEFT in, unless cut at the text's start).
            k = _card_loop(numbers_view, lo + _LEFT if lo else 0, hi, digits_end, budget, out, k)
        if want & WANT_PHONES and nd >= pii.MIN_DIGITS_PHONE and shapes & fastscan.PHONE_SHAPED:
            asked, _pos, _budget, k, _hit = _phone_loop(
                numbers_view, lo, hi, digits_end, budget, plain_mask, prefixes, regions, rules, literals, trans,
                accept, out, k,
            )
            if asked:
                return ASK
    return k


_PHONES, _CARDS, _TEXT_NUMBERS = Compiled(_phones), Compiled(_cards), Compiled(_text_numbers)


class NumberKernel:
    """The compiled phone and card search for one tuple of phone regions
    (``kernel_for``); thread-safe (one state array per thread)."""

    def __init__(self, regions: tuple[str, ...], tables: phonemeta.Tables) -> None:
        self.regions = regions
        self.plain_mask, prefixes = fastscan.screen_arrays(regions)
        self._packed = tables.packed(prefixes)
        self._local = threading.local()

    def state(self, n: int) -> np.ndarray:
        """This thread's state array, with room for a text of n characters
        (grown to the longest text seen)."""
        local = self._local
        if getattr(local, "longest", -1) < n:
            longest = max(n, 4096)
            windows_at = _S_TABLES + len(self._packed)
            # A text has at most n // 2 + 1 digit runs, so as many windows;
            # spans of one kind never overlap and hold at least 7 characters.
            spans_at = windows_at + 4 * (longest // 2 + 1)
            state = np.zeros(spans_at + 3 * (2 * (longest // 7) + 8), np.int64)
            state[_S_TABLES:windows_at] = self._packed
            state[_S_WINDOWS_AT], state[_S_SPANS_AT] = windows_at, spans_at
            # spans_at and longest kept as Python ints too: reading them
            # back from the array costs a NumPy scalar per call.
            local.state, local.spans_at, local.longest = state, spans_at, longest
        return local.state

    def _spans(self, count: int) -> list[int]:
        at = self._local.spans_at
        return self._local.state[at : at + 3 * count].tolist()

    def text_spans(self, view: bytes, numbers_view: bytes, text_length: int, want: int) -> list[int] | None:
        """Cards and phone numbers of a whole text as a flat list of (start,
        end, kind) triples, or None when a candidate needs Python. ``view``:
        the prefilter's view; ``numbers_view``: ``compiled_view(text)``."""
        local = self._local
        state = local.state if getattr(local, "longest", -1) >= len(view) else self.state(len(view))
        count = _TEXT_NUMBERS.call(view, numbers_view, want, pii.retry_budget(text_length), self.plain_mask, state)
        if count <= 0:
            return [] if count == 0 else None
        at = local.spans_at
        return state[at : at + 3 * count].tolist()

    def phones(self, text: str, view: bytes, lo: int, hi: int, digits_end: int | None = None) -> list[tuple[int, int]]:
        """``list(pii.find_phones(text, regions, lo, hi, True, digits_end, view))``,
        ``view`` the text's ``compiled_view``: one compiled call, or the
        generator when a candidate needs Python."""
        count = _PHONES.call(
            view, lo, hi, hi if digits_end is None else digits_end, pii.retry_budget(len(text)), self.plain_mask,
            self.state(len(view)),
        )
        if count == ASK:
            return list(pii.find_phones(text, self.regions, lo, hi, True, digits_end, view))
        flat = self._spans(count) if count else []
        return list(zip(flat[::3], flat[1::3]))

    def phone_step(self, view: bytes, pos: int, n: int, stop: int, budget: int) -> tuple[list[int], tuple | None]:
        """For find_phones' generator: the spans (flat pairs) the compiled
        loop finds from pos, and, when it stopped at a candidate that needs
        Python, (pos, budget, hit) to go on from there; else None."""
        state = self.state(len(view))
        count = _PHONES.call(view, pos, n, stop, budget, self.plain_mask, state)
        pos, budget, found, hit = state[:4].tolist()
        flat = self._spans(found) if found else []
        pairs = [x for i in range(0, len(flat), 3) for x in flat[i : i + 2]]
        return pairs, ((pos, budget, hit) if count == ASK else None)

    def cards(self, view: bytes, text_length: int, lo: int, hi: int, digits_end: int | None = None) -> list[tuple[int, int]]:
        """``list(pii.find_cards(text, lo, hi, digits_end))`` for a text of
        ``text_length`` characters whose ``compiled_view`` is ``view``."""
        count = _CARDS.call(
            view, lo, hi, hi if digits_end is None else digits_end, pii.retry_budget(text_length), self.state(len(view))
        )
        flat = self._spans(count) if count else []
        return list(zip(flat[::3], flat[1::3]))


_KERNELS: dict[tuple[str, ...], NumberKernel | None] = {}


def kernel_for(regions: tuple[str, ...]) -> NumberKernel | None:
    """The kernel for ``regions`` (built once per tuple), or None when their
    metadata cannot be put in tables (phonemeta.for_regions)."""
    if regions not in _KERNELS:
        tables = phonemeta.for_regions(regions)
        _KERNELS[regions] = None if tables is None else NumberKernel(regions, tables)
    return _KERNELS[regions]


# -------------------------------------------------------------------- view


class _CompiledViewMap(dict):
    """str.translate table for ``compiled_view``, filled on first sight of
    each character: ASCII maps to itself; a letter that ``re`` matches
    case-insensitively against an ASCII letter (``ſ``, ``K``, ``İ``, ``ı``)
    to that letter (the phone words are matched case-insensitively); any
    other ``\\w`` character to ``q`` (a word character in no phone word and
    no extension marker); a ``\\s`` character to ``\\x1c`` (a space to
    ``re``, but not the literal space of a phone number or of "text me");
    anything else to ``~``. A non-ASCII ``\\d`` and the telephone sign map
    to NUL, which makes ``compiled_view`` give up."""

    def __missing__(self, code: int) -> int:
        ch = chr(code)
        if code < 128:
            out = code
        elif ch == "☎" or re.match(r"\d", ch):
            out = 0
        else:
            fold = next((a for a in string.ascii_lowercase if re.fullmatch("(?i:" + a + ")", ch)), None)
            if fold is not None:
                out = ord(fold)
            elif re.match(r"\w", ch):
                out = ord("q")
            elif re.match(r"\s", ch):
                out = 0x1C
            else:
                out = ord("~")
        self[code] = out
        return out


_COMPILED_VIEW_MAP = _CompiledViewMap()


prefilter.register_view("tracework_compiled_view", _COMPILED_VIEW_MAP)


def compiled_view(text: str) -> bytes | None:
    """Bytes of the same length as ``text`` on which the compiled phone and
    card steps give ``re``'s answers for ``text`` (see ``_CompiledViewMap``):
    the text's own bytes when it is ASCII. None when the text holds a
    non-ASCII digit (phonenumbers and Luhn read its value; the regexes
    decide) or the telephone sign (a phone word outside ASCII), and, as
    NUL marks those, when a non-ASCII text holds a NUL."""
    if text.isascii():
        return text.encode("ascii")
    view = text.encode("ascii", "tracework_compiled_view")
    return None if 0 in view else view

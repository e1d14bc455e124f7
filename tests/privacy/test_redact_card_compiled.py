"""The compiled card search (numbers._card_loop) and the whole-text number
kernel (numbers._text_numbers) against the Python detectors they replace:
the same spans for every text, window and search start, on texts built to
hit CARD_CANDIDATE's corners (separators single and doubled, runs too long,
word characters and '+' or '-' before a number, Luhn-valid numbers typed
next to each other, non-ASCII letters, digits and spaces)."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracework.privacy.redact import Redactor, fastscan, numbers, pii, prefilter

REGIONS = pii.DEFAULT_PHONE_REGIONS
KERNEL = numbers.kernel_for(REGIONS)
SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

_PIECES = st.one_of(
    st.sampled_from([
        "4111 1111 1111 1111", "4111-1111-1111-1111", "5500 0000 0000 0004", "378282246310005", "6011111111111117",
        "4012888888881881", "0000 0000 0000 0000", " ", "  ", "-", "--", " -", "- ", "+", "_", "a", "card ", "x",
        "é", "½", "\u00a0", "٣", "\u2003", "1", "0", "9999 ", "4", "call 415 555 0132 ",
    ]),
    st.text(alphabet="0123456789", min_size=1, max_size=24),
    st.text(alphabet="0123456789 -", min_size=1, max_size=20),
)
TEXTS = st.lists(_PIECES, max_size=12).map("".join)


@settings(max_examples=1500, **SETTINGS)
@given(TEXTS, st.data())
def test_compiled_cards_are_find_cards(text, data):
    view = numbers.compiled_view(text)
    if view is None:  # a non-ASCII digit: the regexes decide
        assert any(not c.isascii() and c.isdecimal() for c in text)
        return
    assert KERNEL.cards(view, len(text), 0, len(text)) == list(pii.find_cards(text))
    lo = data.draw(st.integers(0, len(text)))
    hi = data.draw(st.integers(lo, len(text)))
    stop = data.draw(st.integers(lo, hi))
    assert KERNEL.cards(view, len(text), lo, hi, stop) == list(pii.find_cards(text, lo, hi, stop))


@settings(max_examples=1500, **SETTINGS)
@given(TEXTS)
def test_whole_text_kernel_is_the_window_loop(text):
    # What Redactor._number_spans does window by window in Python, against
    # the one compiled call for the whole text (when it does not ask).
    ascii_view = prefilter._ascii_view(text)  # the prefilter's view
    view = numbers.compiled_view(text)
    if view is None:
        return
    flat = KERNEL.text_spans(ascii_view, view, len(text), numbers.WANT_CARDS | numbers.WANT_PHONES)
    expected = []
    for lo, hi, nd, shapes in fastscan.digit_windows_ascii(ascii_view):
        digits_end = hi - pii.WINDOW_RIGHT if hi < len(text) else hi
        if nd >= pii.MIN_DIGITS_CARD and shapes & fastscan.CARD_SHAPED:
            first = lo + pii.WINDOW_LEFT if lo else 0
            expected += [(s, e, numbers.KIND_CARD) for s, e in pii.find_cards(text, first, hi, digits_end)]
        if nd >= pii.MIN_DIGITS_PHONE and shapes & fastscan.PHONE_SHAPED:
            pii.clear_memos()
            expected += [(s, e, numbers.KIND_PHONE) for s, e in pii.find_phones(text, REGIONS, lo, hi, True, digits_end)]
    if flat is not None:
        assert list(zip(flat[::3], flat[1::3], flat[2::3])) == expected
    assert Redactor().find(text) == Redactor(use_prefilter=False).find(text)


def test_cards_named():
    text = "pay 4111 1111 1111 1111, not 4111 1111 1111 1112 or x4111111111111111; 378282246310005 5500-0000-0000-0004"
    view = numbers.compiled_view(text)
    amex, mastercard = text.index("3782"), text.index("5500")
    assert KERNEL.cards(view, len(text), 0, len(text)) == [(4, 23), (amex, amex + 15), (mastercard, mastercard + 19)]
    assert KERNEL.cards(view, len(text), 0, len(text)) == list(pii.find_cards(text))
    # Two numbers typed side by side: the card is found in the longer run.
    text = "4111 1111 1111 1111 2024"
    assert KERNEL.cards(numbers.compiled_view(text), len(text), 0, len(text)) == [(0, 19)] == list(pii.find_cards(text))


def test_warm_up_compiles_the_number_kernels():
    # The agent calls warm_up before capture starts, so that the first number
    # typed does not wait for numba. In a fresh interpreter (nothing compiled
    # yet by other tests): before it, each kernel would go through its
    # dispatcher; after it, its compiled entry point is bound.
    code = (
        "from tracework.privacy.redact import numbers, warm_up\n"
        "kernels = (numbers._TEXT_NUMBERS, numbers._PHONES, numbers._CARDS)\n"
        "assert all(k.call == k._first for k in kernels)\n"
        "assert warm_up() >= 0.0\n"
        "assert all(k.call != k._first and k.call is not k.function for k in kernels), [k.call for k in kernels]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=600)

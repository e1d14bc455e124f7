"""The redactor's speed-ups give the same answers as the plain code they
replace: the number windows found in compiled code from the prefilter's
ASCII view (fastscan) and by one regex (pii.digit_windows) equal the
run-by-run merge they replaced (kept below as the reference), and the
per-token memos (pii.Memo) never change a span, whatever was seen before and
however often they are emptied."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracework.privacy.redact import Redactor, fastscan, pii, prefilter

# hyperscan is a declared dependency: a missing one must fail, not skip.
import hyperscan  # noqa: E402,F401

_DIGIT_RUN = re.compile(r"\d{1,64}")


def reference_digit_windows(text: str) -> list[tuple[int, int, int]]:
    """pii.digit_windows as it was: digit runs merged into clusters when at
    most WINDOW_GAP apart, each widened by the margins, overlapping windows
    merged (digit counts summed)."""
    windows: list[tuple[int, int, int]] = []
    start = end = -1
    count = 0
    for m in _DIGIT_RUN.finditer(text):
        if start >= 0 and m.start() - end <= pii.WINDOW_GAP:
            end = m.end()
            count += end - m.start()
            continue
        if start >= 0:
            windows.append((max(0, start - pii.WINDOW_LEFT), min(len(text), end + pii.WINDOW_RIGHT), count))
        start, end = m.start(), m.end()
        count = end - start
    if start >= 0:
        windows.append((max(0, start - pii.WINDOW_LEFT), min(len(text), end + pii.WINDOW_RIGHT), count))
    merged: list[tuple[int, int, int]] = []
    for lo, hi, n in windows:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]), merged[-1][2] + n)
        else:
            merged.append((lo, hi, n))
    return merged


# Digits (ASCII and other scripts' decimal digits, which \d matches too),
# separators and letters, in runs whose gaps straddle the merge distances.
_PIECES = st.one_of(
    st.text(alphabet="0123456789٣٤७", min_size=1, max_size=70),
    st.integers(0, 50).map(lambda n: "a" * n),
    st.integers(0, 50).map(lambda n: " -" * (n // 2) + " " * (n % 2)),
    st.text(alphabet="ab -.()+@\n\u00a0é²½", max_size=45),
)
_NUMBERY = st.lists(_PIECES, max_size=14).map("".join)


@settings(max_examples=400, deadline=None)
@given(_NUMBERY)
def test_digit_windows_equal_the_run_by_run_merge(text):
    expected = reference_digit_windows(text)
    assert pii.digit_windows(text) == expected
    assert [w[:3] for w in fastscan.digit_windows_ascii(prefilter._ascii_view(text))] == expected


def test_digit_windows_at_every_gap_and_edge_distance():
    # The merge distances (WINDOW_GAP, LEFT + RIGHT) and the clamping at
    # both ends, one character either side of each.
    for gap in range(50):
        for before in (0, 1, 23, 24, 25, 30):
            for after in (0, 15, 16, 17):
                for sep in ("a", " ", "\u00a0"):
                    text = "x" * before + "12" + sep * gap + "345" + "y" * after + "6" * (after % 2)
                    expected = reference_digit_windows(text)
                    assert pii.digit_windows(text) == expected, text
                    assert [w[:3] for w in fastscan.digit_windows_ascii(prefilter._ascii_view(text))] == expected, text


def test_digit_windows_on_long_runs_and_the_buffer_growing():
    # Longer than the first buffer (3 * 1024 numbers), and runs longer than
    # DIGIT_RUN's 64 digits, which the reference splits and merges again.
    for text in ("7" * 5000, "1 " * 4000, ("12" + "x" * 41) * 300, "x" * 24 + "5" * 200 + "y" * 10):
        expected = reference_digit_windows(text)
        assert pii.digit_windows(text) == expected
        assert [w[:3] for w in fastscan.digit_windows_ascii(prefilter._ascii_view(text))] == expected


# Texts dense with number-shaped tokens, repeated with small changes, so the
# memos are hit, missed and (with a tiny limit) emptied mid-text.
_TOKENS = [
    "call 415 555 0132", "+44 20 7946 0958", "(0)8 123 45 67", "4111 1111 1111 1111", "4111-1111-1111-1112",
    "5555555555554444", "046 454 286", "2345 6789 0124", "078-05-1120", "12 34 56 78", "2019-05-12",
    "phone", "tel:", "ext. 12", "DE89370400440532013000", "192.168.0.1", "٣٤٥ ٦٧٨ ٩٠١٢", "SIN", "#15",
]
_DENSE = st.lists(
    st.one_of(st.sampled_from(_TOKENS), st.text(alphabet="0123456789 -+()x.", max_size=18)), max_size=10
).map(" ".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_DENSE, min_size=1, max_size=4))
def test_memos_never_change_a_span(texts):
    redactor = Redactor()
    pii.clear_memos()
    cold = []
    for text in texts:
        pii.clear_memos()
        cold.append(redactor.find(text))
    # Warm: every text again after all of them filled the memos.
    assert [redactor.find(t) for t in texts] == cold
    # Memos emptied every few entries (the bound): still the same.
    limits = [m.limit for m in pii.MEMOS]
    try:
        for m in pii.MEMOS:
            m.limit = 2
        assert [redactor.find(t) for t in reversed(texts)] == cold[::-1]
    finally:
        for m, limit in zip(pii.MEMOS, limits):
            m.limit = limit
    # And the same as the reference path (no prefilter, regex windows).
    assert [Redactor(use_prefilter=False).find(t) for t in texts] == cold


def test_phone_memo_keys_on_the_region_list():
    # The same candidate can be a phone number in one region list and not in
    # another: the answer is memoised per (candidate, regions).
    pii.clear_memos()
    raw = "020 7946 0958"
    assert pii._phone_ok(raw, ("GB",)) is True
    assert pii._phone_ok(raw, ("US",)) is False
    assert pii._phone_ok(raw, ["GB"]) is True  # a list is keyed as the tuple
    assert pii._phone_ok(raw, ("GB",)) == pii._phone_ok(raw, ("GB",), fast=False)


def test_memo_is_bounded():
    memo = pii.Memo(limit=3)
    for i in range(10):
        memo.store(i, i)
        assert len(memo) <= 3
    assert memo[9] == 9


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_NUMBERY, _DENSE))
def test_searches_stop_after_the_windows_last_digit(text):
    # No digit between window_digits_end and the window's end, so the card
    # and phone searches may stop there: same matches as searching on.
    for lo, hi, _ in pii.digit_windows(text):
        end = pii.window_digits_end(text, hi)
        assert not re.search(r"\d", text[end:hi])
        assert list(pii.find_cards(text, lo, hi, end)) == list(pii.find_cards(text, lo, hi))
        for words in (True, False):
            assert list(pii.find_phones(text, pii.DEFAULT_PHONE_REGIONS, lo, hi, words, end)) == list(
                pii.find_phones(text, pii.DEFAULT_PHONE_REGIONS, lo, hi, words)
            )


_SHAPED = st.lists(
    st.one_of(
        st.sampled_from(
            _TOKENS
            # 6 digits and an extension digit; 12-digit card numbers.
            + ["tel 123456 x 7", "tel 123456\t\tx 7", "call 030 1234 x5", "tel 123 456 x 7", "630427373398", "6304 2737 3398"]
            + ["x12", " ext. 7", "#9", "1234 x5", "(+1) 22", "12-34.56/78 (9)", "\u00a0", "\t"]
        ),
        st.text(alphabet="0123456789 -+()x.e#/\t\u00a0٣", max_size=20),
    ),
    max_size=10,
).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_SHAPED, _DENSE, _NUMBERY))
def test_windows_without_a_shape_hold_no_card_or_phone(text):
    # A window whose phone (card) flag is off gets no phone (card) search:
    # searching it anyway finds nothing, with and without a phone word.
    for lo, hi, _, shapes in fastscan.digit_windows_ascii(prefilter._ascii_view(text)):
        if not shapes & fastscan.CARD_SHAPED:
            assert list(pii.find_cards(text, lo, hi)) == []
        if not shapes & fastscan.PHONE_SHAPED:
            for words in (True, False):
                assert list(pii.find_phones(text, pii.DEFAULT_PHONE_REGIONS, lo, hi, words)) == []

"""The compiled phone steps (fastscan.phone_next, fastscan.has_phone_context)
against the regexes and Python tests they replace on ASCII texts: the same
candidate, shape, early rejection and phone-word answer for every text, search
start and end."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from tracework.privacy.redact import Redactor, fastscan, pii

REGION_SETS = (pii.DEFAULT_PHONE_REGIONS, ("GB", "JP", "BR", "AR", "MX", "RU"), ("HU", "BY", "US"))

# Pieces that make PHONE_CANDIDATE's and _DATE_LIKE's corners likely: leads
# ("+", "(+", "(", word characters before), separators, runs of digits long
# and short, extensions with their spaces, dates, "(0)".
_PIECES = st.one_of(
    st.sampled_from(
        [
            "+", "(+", "(", ")", "(0)", " ", "  ", "   ", "-", ".", "/", "x", "ext", "ext.", "#", "e", "\t", "\n",
            "\x1c", "a", "_", "Z", "call ", "415", "555", "0132", "07", "020", "1", "0", "31", "12", "2019",
            "1999", "2001", "19", "20", "06", "8", "00",
        ]
    ),
    st.text(alphabet="0123456789", min_size=1, max_size=20),
    st.text(alphabet="0123456789 -./()+x#e", min_size=1, max_size=12),
)
TEXTS = st.lists(_PIECES, max_size=14).map("".join)


def _reference(text: str, pos: int, n: int, regions: tuple):
    """What find_phones works out in Python for the first candidate."""
    m = pii.PHONE_CANDIDATE.search(text, pos, n)
    if m is None:
        return None
    raw = m.group()
    shape = pii._phone_shape(raw)
    digits = "".join(filter(str.isdigit, raw))
    date = pii._DATE_LIKE.match(raw) is not None
    plain = not raw.lstrip("(").startswith("+") and "(0)" not in raw
    fits = pii._length_fits_some_region(digits, regions)
    rejected = shape is not pii._NOT_PHONE and (date or (plain and not fits))
    screened = shape is not pii._NOT_PHONE and not date and plain and fits
    return m.start(), m.end(), shape, rejected, screened


@settings(max_examples=600, deadline=None)
@given(TEXTS, st.integers(0, 200), st.integers(0, 200), st.sampled_from(REGION_SETS))
def test_phone_next_is_the_regex_search(text, a, b, regions):
    pos, n = sorted((min(a, len(text)), min(b, len(text))))
    assert fastscan.phone_next(text.encode("ascii"), pos, n, regions) == _reference(text, pos, n, regions)


# A number and an extension with 0 to 3 spaces (or other \\s) on each side of
# its word and 0 to 8 digits: the bounds of \\s{0,2} and \\d{1,6}.
_SPACES = st.lists(st.sampled_from([" ", "\t", "\x1f"]), max_size=3).map("".join)
EXTENDED = st.tuples(
    st.sampled_from(["", "+", "(+", "a", "call "]),
    st.text(alphabet="0123456789 -", min_size=6, max_size=14),
    st.sampled_from("0123456789"),
    _SPACES,
    st.sampled_from(["x", "ext", "ext.", "#", "e", "X", "ext,"]),
    _SPACES,
    st.text(alphabet="0123456789", max_size=8),
    st.sampled_from(["", " ", "x", "5", "."]),
).map("".join)


@settings(max_examples=600, deadline=None)
@given(EXTENDED, st.sampled_from(REGION_SETS))
def test_phone_next_extensions(text, regions):
    assert fastscan.phone_next(text.encode("ascii"), 0, len(text), regions) == _reference(text, 0, len(text), regions)


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_every_candidate_of_a_text(text):
    # All candidates find_phones would meet, one after another.
    view, pos = text.encode("ascii"), 0
    while True:
        got = fastscan.phone_next(view, pos, len(text), pii.DEFAULT_PHONE_REGIONS)
        assert got == _reference(text, pos, len(text), pii.DEFAULT_PHONE_REGIONS)
        if got is None:
            break
        pos = got[0] + 1


_PART = st.tuples(st.sampled_from(["", "0", "1", "2", "3", "19", "20"]), st.text(alphabet="0123456789", max_size=3)).map(
    "".join
)
# Mostly the same separator twice (the regex's back-reference).
DATES = st.sampled_from("-./ ").flatmap(
    lambda sep: st.tuples(
        _PART, st.just(sep), _PART, st.sampled_from([sep, sep, sep, "-", "/"]), _PART, st.sampled_from(["", "x", "5", "-1"])
    )
).map("".join)


@settings(max_examples=800, deadline=None)
@given(st.one_of(DATES, st.lists(st.sampled_from(["0", "1", "2", "3", "9", "19", "20", "05", "12", "31", "-", ".", "/", " ", "x"]), max_size=10).map("".join)))
def test_date_like_is_the_regex(raw):
    assert fastscan._date_like(raw.encode("ascii"), 0, len(raw)) == (pii._DATE_LIKE.match(raw) is not None)


_WORDS = st.lists(
    st.one_of(
        st.sampled_from(
            [*fastscan.CONTEXT_WORDS, "ph", "dial", "dialling", "dialing", "dialled", "dialed", "dials", "dialx",
             "xdial", "text  me", " ", "_", "-", "1", "a", "tele", "wor"]
        ).flatmap(lambda w: st.sampled_from([w, w.upper(), w.title()])),
        st.text(alphabet="abcdehilmnoprstwxyz _-1.", max_size=3),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=600, deadline=None)
@given(_WORDS, st.integers(0, 100), st.integers(0, 100))
def test_has_phone_context_is_the_regex(text, a, b):
    lo, hi = sorted((min(a, len(text)), min(b, len(text))))
    expected = pii.PHONE_CONTEXT.search(text, lo, hi) is not None
    assert fastscan.has_phone_context(text.encode("ascii"), lo, hi) == expected


_EDGE_WORDS = st.sampled_from(["ph", "Ph", "dial", "DIAL", "dialling", "dialing", "dialled", "dialed", "dials", "fax", "text me"])
_AROUND = st.sampled_from(["", " ", "a", "_", "1", "-", "x", "s", "ing"])


@settings(max_examples=600, deadline=None)
@given(_AROUND, _EDGE_WORDS, _AROUND, st.integers(-1, 1), st.integers(-1, 1))
def test_has_phone_context_at_the_bounds(before, word, after, lo_shift, hi_shift):
    # The search window starting or ending right at, before or after a word:
    # \\b and the lookups of neighbours at lo and hi.
    text = before + word + after
    lo = min(max(0, len(before) + lo_shift), len(text))
    hi = max(lo, min(len(text), len(before) + len(word) + hi_shift))
    expected = pii.PHONE_CONTEXT.search(text, lo, hi) is not None
    assert fastscan.has_phone_context(text.encode("ascii"), lo, hi) == expected


def test_context_words_are_the_pattern_s():
    # Every word of PHONE_CONTEXT that fastscan reads without special rules.
    for word in fastscan.CONTEXT_WORDS:
        assert pii.PHONE_CONTEXT.fullmatch(word) and pii.PHONE_CONTEXT.fullmatch(word.upper())
    # The rest of the pattern: exactly "ph\\b", "☎" and the "dial" words,
    # which fastscan spells out.
    dial = r"\bdial(?:l?ing|led|ed|s)?\b"
    pattern = pii.PHONE_CONTEXT.pattern
    assert pattern.startswith("(?i:") and pattern.endswith(")") and dial in pattern
    rest = set(pattern[4:-1].replace(dial, "").split("|")) - set(fastscan.CONTEXT_WORDS)
    assert rest == {"ph\\b", "☎", ""}


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.sampled_from(REGION_SETS))
def test_find_phones_same_with_and_without_view(text, regions):
    pii.clear_memos()
    with_view = list(pii.find_phones(text, regions, view=text.encode("ascii")))
    pii.clear_memos()
    assert with_view == list(pii.find_phones(text, regions))


def test_example_numbers_and_sentences():
    texts = ["call me on 020 7946 0018 ext. 12 or 2019-05-12", "(+44) 20 7946 0018", "SIN 046 454 286",
             "tel: 555-0132", "born 12/05/1999, phone 07700 900123", "4111 1111 1111 1111 415 555 0132"]
    for region in ("US", "GB", "DE", "FR", "IN", "BR", "JP"):
        number = phonenumbers.example_number(region)
        for fmt in (phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL):
            texts.append(f"reach me at {phonenumbers.format_number(number, fmt)} x 7")
    redactor = Redactor()
    found = 0
    for text in texts:
        spans = [(s.start, s.end) for s in redactor.find(text) if s.placeholder == "PHONE"]
        pii.clear_memos()
        assert [(s, e) for s, e in pii.find_phones(text, pii.DEFAULT_PHONE_REGIONS)] == [
            (s, e) for s, e in pii.find_phones(text, pii.DEFAULT_PHONE_REGIONS, view=text.encode("ascii"))
        ]
        found += len(spans)
    assert found > 0

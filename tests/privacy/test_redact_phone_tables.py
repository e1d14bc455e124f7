"""The compiled phone decision (phonemeta's tables, the compiled find_phones
loop and its ``compiled_view`` of a text) against what it replaces.

Each step is checked against ``re`` or phonenumbers itself: a prefix
pattern's listed strings give ``re.match``'s end (1), a national number DFA
is ``re.fullmatch`` (2), ``phonemeta.decide`` is the parse-based region loop
whenever it answers (3), the compiled search gives the regex path's spans on
ASCII and non-ASCII texts (4), the view keeps re's \\w, \\s and \\d answers
per character (5), and the candidates left to Python still get their spans
(6). A wrong table or view byte would redact too little or too much without
any error, so each test compares values, never only "it runs".
"""

from __future__ import annotations

import random
import re
from functools import cache

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracework.privacy.redact import Redactor, numbers, phonemeta, pii

compiled_view = numbers.compiled_view


def find_phones_compiled(text, view, regions, lo, hi, digits_end=None):
    kernel = numbers.kernel_for(regions)
    assert kernel is not None  # tables for every region set used here
    return kernel.phones(text, view, lo, hi, digits_end)


REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
DIGITS = "0123456789"
SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
# As in test_redact_phone_fast.py: leading digits parse treats specially.
PREFIXES = [
    "", "", "0", "00", "000", "01", "011", "0011", "001", "0015", "010", "0019", "810", "8", "06", "1", "44",
    "49", "33", "91", "61", "55", "972", "34", "39", "31", "46", "41", "32", "7", "86", "380", "90", "183", "14",
    "1800", "180020", "12", "50", "5",
]
METAS = {r: phonenumbers.PhoneMetadata.metadata_for_region(r) for r in REGIONS}
# Metadata of every country code's main region (non-geographic ones too).
for _cc in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
    if pii._main_rule(_cc) is not None:
        _region = phonenumbers.region_code_for_country_code(_cc)
        METAS.setdefault(_region if _region in METAS else str(_cc),
                         phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(_cc, _region))


def _region_prefixes(meta) -> list[str]:
    prefixes = (meta.national_prefix, meta.national_prefix_for_parsing, meta.international_prefix,
                meta.preferred_international_prefix)
    return [str(meta.country_code)] + [p for p in prefixes if p and p.isdigit()]


_TYPES = ("FIXED_LINE", "MOBILE", "TOLL_FREE", "VOIP")
EXAMPLES = {  # national significant numbers of each region's example numbers
    region: [phonenumbers.national_significant_number(num) for kind in _TYPES
             if (num := phonenumbers.example_number_for_type(region, getattr(phonenumbers.PhoneNumberType, kind)))]
    for region in REGIONS
}
ALL_EXAMPLES = sorted({n for ns in EXAMPLES.values() for n in ns})


@st.composite
def digit_strings(draw, region: str | None = None, heads: list[str] = ()):
    prefixes = PREFIXES + list(heads) + (_region_prefixes(METAS[region]) if region else [])
    examples = (EXAMPLES.get(region) or ALL_EXAMPLES) if draw(st.booleans()) else ALL_EXAMPLES
    body = draw(st.one_of(
        st.text(alphabet=DIGITS, max_size=16),
        # An example number, cut short or run on by a digit or two.
        st.tuples(st.sampled_from(examples), st.integers(-2, 2), st.text(alphabet=DIGITS, max_size=2)).map(
            lambda e: e[0][: len(e[0]) + e[1]] if e[1] < 0 else e[0] + e[2][: e[1]]
        ),
    ))
    return draw(st.sampled_from(prefixes)) + body


# ---------------------------------------------------------------- 1. prefix patterns
PREFIX_PATTERNS: dict[str, tuple[list[str], set[str]]] = {}  # pattern -> (listed strings, region prefixes)
for _meta in METAS.values():
    for _p in (_meta.international_prefix, _meta.national_prefix_for_parsing):
        if _p:
            try:
                PREFIX_PATTERNS.setdefault(_p, (phonemeta._ordered_strings(_p), set()))[1].update(_region_prefixes(_meta))
            except phonemeta.Unsupported:
                pass


def _check_prefix(pattern: str, s: str) -> None:
    first = next((t for t in PREFIX_PATTERNS[pattern][0] if s.startswith(t)), None)
    m = re.match(pattern, s)
    assert (None if m is None else m.end()) == (None if first is None else len(first)), (pattern, s)


def test_every_listed_string_and_its_neighbours():
    # The default regions' international prefixes are all listed (the
    # tests below do not skip everything).
    assert all(METAS[r].international_prefix in PREFIX_PATTERNS for r in pii.DEFAULT_PHONE_REGIONS)
    assert len(PREFIX_PATTERNS) > 40
    for pattern, (strings, _) in PREFIX_PATTERNS.items():
        for t in strings:
            for s in (t, t[:-1], *(t + d for d in DIGITS), t + "00", t + "11"):
                _check_prefix(pattern, s)


@settings(max_examples=800, **SETTINGS)
@given(st.sampled_from(sorted(PREFIX_PATTERNS)).flatmap(lambda p: st.tuples(st.just(p), digit_strings(
    heads=PREFIX_PATTERNS[p][0][:40] + sorted(PREFIX_PATTERNS[p][1])))))
def test_listed_strings_are_re_match(case):
    _check_prefix(*case)


# ---------------------------------------------------------------- 2. national number DFAs
@cache
def _dfa(pattern: str):
    return phonemeta._dfa(pattern)


def _dfa_accepts(pattern: str, s: str) -> bool:
    trans, accept = _dfa(pattern)
    state = 0
    for c in s:
        if (state := trans[state, ord(c) - 48]) < 0:
            return False
    return bool(accept[state])


def test_every_national_number_pattern_compiles():
    failing = []
    for name, meta in METAS.items():  # every region and non-geographic main metadata
        try:
            _dfa(meta.general_desc.national_number_pattern)
        except (phonemeta.Unsupported, re.error, TypeError):
            failing.append(name)
    assert failing == []  # as today: a pattern that stops compiling is noticed here


@settings(max_examples=1000, **SETTINGS)
@given(st.sampled_from(sorted(METAS)).flatmap(
    lambda r: st.tuples(st.just(r), digit_strings(r), st.integers(0, 20), st.sampled_from(DIGITS))))
def test_dfa_is_fullmatch(case):
    region, s, at, digit = case
    pattern = METAS[region].general_desc.national_number_pattern
    for t in (s, s[:at] + digit + s[at + 1 :]):  # and with one digit changed
        assert _dfa_accepts(pattern, t) == (re.fullmatch(pattern, t) is not None), (region, t)


# ---------------------------------------------------------------- 3. decide is the parse-based region loop
def _check_decide(d: str, regions: tuple) -> int:
    answer = phonemeta.decide(d, regions)
    if answer != phonemeta.ASK and not pii._DATE_LIKE.match(d):
        expected = pii._phone_ok_uncached(d, regions, False)
        assert answer == (phonemeta.YES if expected else phonemeta.NO), (d, regions, answer)
    return answer


REGION_SETS = st.one_of(
    st.just(pii.DEFAULT_PHONE_REGIONS),
    st.sampled_from(REGIONS).map(lambda r: (r,)),
    st.lists(st.sampled_from(REGIONS), min_size=1, max_size=4).map(tuple),
)


@settings(max_examples=700, **SETTINGS)
@given(REGION_SETS.flatmap(lambda rs: st.tuples(st.just(rs), digit_strings(rs[0]))))
def test_decide_is_parse(case):
    regions, d = case
    _check_decide(d, regions)


def test_decide_on_every_region_s_examples():
    answered = 0
    for region in REGIONS:
        meta = METAS[region]
        trunk, cc = meta.national_prefix or "", str(meta.country_code)
        for nsn in EXAMPLES[region]:
            for d in (nsn, trunk + nsn, cc + nsn, cc + trunk + nsn, nsn[:-1], nsn + "0"):
                answered += _check_decide(d, (region,)) != phonemeta.ASK
    assert answered > 3000  # of ~4600: the tables answer most without parse


def test_decide_mostly_answers_for_the_default_regions():
    rng = random.Random(20240611)
    heads = PREFIXES + [p for r in pii.DEFAULT_PHONE_REGIONS for p in _region_prefixes(METAS[r])]
    examples = [n for r in pii.DEFAULT_PHONE_REGIONS for n in EXAMPLES[r]]
    answers = []
    while len(answers) < 400:
        body = rng.choice(examples) if rng.random() < 0.5 else "".join(rng.choices(DIGITS, k=rng.randint(6, 12)))
        d = rng.choice(heads) + body
        if pii._length_fits_some_region(d, pii.DEFAULT_PHONE_REGIONS):  # what reaches the region loop
            answers.append(_check_decide(d, pii.DEFAULT_PHONE_REGIONS))
    assert answers.count(phonemeta.ASK) < len(answers) // 2  # ~6% today
    assert answers.count(phonemeta.YES) > len(answers) // 2


# ---------------------------------------------------------------- 4. compiled search = regex search
PHONE_REGION_SETS = (pii.DEFAULT_PHONE_REGIONS, ("GB", "JP", "BR", "AR", "MX", "RU"), ("HU", "BY", "US"), ("BR",))
NON_ASCII = ["é", "ſms", "wor\u212a", "\u00a0", "\u2003", "Α", "½", "²", "☎", "٣", "dıal", "İ", "text\u00a0me"]
# As in test_redact_phone_compiled.py, plus non-ASCII pieces: letters that
# re folds to ASCII phone words, non-ASCII spaces, \w that is no \d.
_PIECES = st.one_of(
    st.sampled_from(
        [
            "+", "(+", "(", ")", "(0)", " ", "  ", "   ", "-", ".", "/", "x", "ext", "ext.", "#", "e", "\t", "\n",
            "\x1c", "a", "_", "Z", "call ", "415", "555", "0132", "07", "020", "1", "0", "31", "12", "2019",
            "1999", "2001", "19", "20", "06", "8", "00", "011", "0011", "phone ", "dial ", *NON_ASCII,
        ]
    ),
    st.sampled_from(ALL_EXAMPLES),
    st.text(alphabet=DIGITS, min_size=1, max_size=20),
    st.text(alphabet="0123456789 -./()+x#e", min_size=1, max_size=12),
)
_PLAIN_TEXTS = st.lists(_PIECES, max_size=14).map("".join)
# Half the texts hold a non-ASCII piece the view keeps (no ☎, no ٣).
_KEPT = [p for p in NON_ASCII if p not in ("☎", "٣")]
TEXTS = st.one_of(_PLAIN_TEXTS, st.tuples(_PLAIN_TEXTS, st.sampled_from(_KEPT), _PLAIN_TEXTS).map("".join))
REDACTOR, REFERENCE = Redactor(), Redactor(use_prefilter=False)


def _three_ways(text, view, regions, lo, hi, digits_end=None):
    pii.clear_memos()
    compiled = find_phones_compiled(text, view, regions, lo, hi, digits_end)
    pii.clear_memos()
    reference = list(pii.find_phones(text, regions, lo, hi, True, digits_end, None, False))
    pii.clear_memos()
    generator = list(pii.find_phones(text, regions, lo, hi, True, digits_end, view, True))
    assert compiled == reference == generator, (text, regions, lo, hi, digits_end)
    return reference


@settings(max_examples=800, **SETTINGS)
@given(TEXTS, st.sampled_from(PHONE_REGION_SETS), st.integers(0, 300), st.integers(0, 300))
def test_compiled_search_is_the_regex_search(text, regions, a, b):
    view = compiled_view(text)
    if view is None:
        assert any(c == "☎" or (not c.isascii() and re.match(r"\d", c)) for c in text)
        return
    assert len(view) == len(text)
    _three_ways(text, view, regions, 0, len(text))
    lo, hi = sorted((min(a, len(text)), min(b, len(text))))
    _three_ways(text, view, regions, lo, hi)
    for lo, hi, _ in pii.digit_windows(text):  # as the redactor calls it
        _three_ways(text, view, regions, lo, hi, pii.window_digits_end(text, hi))
    assert REDACTOR.find(text) == REFERENCE.find(text)


# ---------------------------------------------------------------- 5. the view of one character
_WORD_BYTES = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_SPACE_BYTES = frozenset(b" \t\n\v\f\r\x1c\x1d\x1e\x1f")
# Bytes PHONE_CANDIDATE matches literally (case-sensitive): no non-ASCII
# character may become one, or the view would show a number or an extension
# the regex does not see.
_LITERAL_BYTES = frozenset(b"0123456789 -.()/+x#et")
# Latin-1, Greek, Cyrillic, general punctuation, letterlike symbols, digits.
CODE_POINTS = [*range(0x100), *range(0x370, 0x530), *range(0x2000, 0x2070), *range(0x2100, 0x2150), 0x660, 0x663,
               0xFF10, 0x260E, 0x1D7CE]


def _check_char(c: str) -> None:
    view = compiled_view(c)
    if c == "☎" or (not c.isascii() and re.match(r"\d", c)):
        assert view is None, repr(c)
        return
    assert view is not None and len(view) == 1, repr(c)
    b = view[0]
    assert b < 128
    assert (re.match(r"\w", c) is not None) == (b in _WORD_BYTES), (repr(c), b)
    assert (re.match(r"\s", c) is not None) == (b in _SPACE_BYTES), (repr(c), b)
    if 48 <= b <= 57 or c.isascii():
        assert c == chr(b), (repr(c), b)
    else:
        assert b not in _LITERAL_BYTES, (repr(c), b)
        if chr(b).isalpha() and b != ord("q"):  # a letter re folds to ASCII: the phone words see it
            assert re.fullmatch(f"(?i:{chr(b)})", c), (repr(c), b)


def test_view_of_sampled_code_points():
    for code in CODE_POINTS:
        _check_char(chr(code))


@settings(max_examples=1500, **SETTINGS)
@given(st.characters(), st.text(max_size=30))
def test_view_of_any_character(c, text):
    _check_char(c)
    view = compiled_view(text)
    # None also for a non-ASCII text holding NUL (its own byte is the give-up
    # mark): the regexes decide, the same answers.
    gives_up = "\0" in text and not text.isascii()
    if view is None:
        assert gives_up or any(ch == "☎" or (not ch.isascii() and re.match(r"\d", ch)) for ch in text)
    else:
        assert len(view) == len(text) and view == bytes(compiled_view(ch)[0] for ch in text)


# ---------------------------------------------------------------- 6. named examples of the ASK paths
D = pii.DEFAULT_PHONE_REGIONS


@pytest.mark.parametrize(
    "text, regions, expected",
    [
        ("+44 20 7946 0958", D, [(0, 16)]),  # "+": the kernel hands it to Python
        ("call +46 (0)8 928 571 38", D, [(5, 24)]),  # a written trunk prefix "(0)"
        ("463-612-6138x036", D, [(0, 16)]),  # an extension
        ("call 0 21 2345 6789", ("BR",), [(5, 19)]),  # Brazil's prefix transform rule: parse decides
        ("ligue 0 21 98765 4321 já", ("BR",), [(6, 21)]),  # the same, on the view of a non-ASCII text
        ("call 011 683 4002", ("US",), [(5, 17)]),  # after the international prefix 011: +683 (Niue)
    ],
)
def test_ask_paths_give_the_spans(text, regions, expected):
    view = compiled_view(text)
    assert _three_ways(text, view, regions, 0, len(text)) == expected
    digits = "".join(filter(str.isdigit, text))
    if text.count("+") + text.count("(0)") + text.count("x") == 0:
        assert phonemeta.decide(digits, regions) == phonemeta.ASK  # the tables do leave it to Python

"""The metadata decision (pii._ParseRule) gives the same answer as
phonenumbers.parse + is_possible_number, which it replaces for plain digit
strings (with or without "+", an extension, a written trunk prefix "(0)")."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracework.privacy.redact import pii

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
SEPARATORS = ["", "", "", " ", "-", ".", "/", " - ", ") ", "("]
# Leading digits parse treats specially in some region: international
# prefixes (00, 011, 0011, 810, 001x, 0 0...), trunk prefixes (0, 1, 8, 06),
# common country codes, and digits after them.
PREFIXES = [
    "", "", "0", "00", "000", "01", "011", "0011", "001", "0015", "010", "0019", "810", "8", "06", "1", "44",
    "49", "33", "91", "61", "55", "972", "34", "39", "31", "46", "41", "32", "7", "86", "380", "90", "183", "14",
    "1800", "180020", "90", "12", "50", "5",
]
EXTENSIONS = ["", "", "", "x1", "x4587", " x 12", "ext. 7", "ext12", "#123", " # 9", "x1234567", "  ext  3"]
WRITTEN = st.sampled_from(["", "", "+", "(+", "(", "+ ", "++"])


def _region_prefixes(region: str) -> list[str]:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    out = [str(meta.country_code)]
    for p in (meta.national_prefix, meta.national_prefix_for_parsing, meta.international_prefix, meta.preferred_international_prefix):
        if p and p.isdigit():
            out.append(p)
    return out


def _example_numbers(region: str) -> list[str]:
    """National significant numbers of the region's example numbers (they
    fit its national number pattern, which parse tests before and after
    dropping a prefix; random digits rarely do)."""
    out = []
    for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
                 phonenumbers.PhoneNumberType.TOLL_FREE, phonenumbers.PhoneNumberType.VOIP):
        num = phonenumbers.example_number_for_type(region, kind)
        if num is not None:
            out.append(phonenumbers.national_significant_number(num))
    return out


EXAMPLES = {region: _example_numbers(region) for region in REGIONS}
ALL_EXAMPLES = sorted({n for ns in EXAMPLES.values() for n in ns})


@st.composite
def digit_strings(draw, region: str | None = None):
    prefixes = PREFIXES + (_region_prefixes(region) if region else [])
    head = draw(st.sampled_from(prefixes))
    examples = (EXAMPLES.get(region) or ALL_EXAMPLES) if draw(st.booleans()) else ALL_EXAMPLES
    body = draw(st.one_of(
        st.text(alphabet="0123456789", min_size=0, max_size=16),
        # An example number, cut short or run on by a digit or two.
        st.tuples(st.sampled_from(examples), st.integers(-2, 2), st.text(alphabet="0123456789", max_size=2)).map(
            lambda e: e[0][: len(e[0]) + e[1]] if e[1] < 0 else e[0] + e[2][: e[1]]
        ),
    ))
    return (head + body) or "0"


@st.composite
def candidates(draw):
    digits = draw(digit_strings(draw(st.sampled_from(REGIONS))))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(digits), max_size=len(digits)))
    body = "".join(d + s for d, s in zip(digits, seps[:-1])) + digits[-1]
    if draw(st.booleans()) and len(body) > 3:
        cut = draw(st.integers(1, len(body) - 1))
        body = body[:cut] + draw(st.sampled_from([" (0)", "(0)", " (0) "])) + body[cut:]
    return draw(WRITTEN) + body + draw(st.sampled_from(EXTENSIONS))


REGION_SETS = st.one_of(
    st.just(pii.DEFAULT_PHONE_REGIONS), st.lists(st.sampled_from(REGIONS), min_size=1, max_size=4).map(tuple)
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(candidates(), REGION_SETS)
def test_fast_decision_agrees_with_parse(raw, regions):
    pii.clear_memos()
    expected = pii._phone_ok(raw, regions, fast=False)
    assert pii._phone_ok(raw, regions, fast=True) == expected
    # As the detector calls it, with the digit string it already has.
    pii.clear_memos()
    assert pii._phone_ok(raw, regions, digits="".join(filter(str.isdigit, raw))) == expected


def _parse_says(number: str, region: str | None):
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(number, region))
    except phonenumbers.NumberParseException:
        return pii._PARSE_ERROR


@st.composite
def region_and_digits(draw):
    region = draw(st.sampled_from(REGIONS))
    return region, draw(digit_strings(region))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(region_and_digits())
def test_national_rule_is_parse_in_every_region(case):
    # Every region, not only those the redactor's length screen lets through:
    # international and trunk prefixes, leading country codes, local-only lengths.
    region, digits = case
    decided = pii._region_rule(region).national(digits)
    if decided is not None:
        assert decided == _parse_says(digits, region)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)), st.text(alphabet="0123456789", max_size=18))
def test_after_country_code_is_parse(cc, nsn):
    region = phonenumbers.region_code_for_country_code(cc)
    trunk = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(cc, region).national_prefix or ""
    for rest in (nsn, trunk + nsn):
        decided = pii._plus_fast(f"+{cc}{rest}")
        if decided is not None:
            assert decided == _parse_says(f"+{cc}{rest}", None)


@pytest.mark.parametrize(
    "raw, regions, expected",
    [
        ("905-674-3793", ("US",), True),  # decided by length: 10 digits in +1
        ("1 905 674 3793", ("US",), True),  # leading country code 1 dropped
        ("44 7946 0958", ("GB",), True),  # leading country code 44
        ("020 7946 0958", ("GB",), True),  # national prefix 0 dropped
        ("0612345678", ("IT",), True),  # Italian leading zero kept in the number
        ("+1-984-182-0190", (), True),  # "+" and a country code, decided by length
        ("+1 984 182", (), False),
        ("123 456 78", ("FR",), False),
        ("001-518-640-0854", pii.DEFAULT_PHONE_REGIONS, True),  # international prefix 001 (Israel, Australia...)
        ("+46 (0)8 928 571 38", (), True),  # trunk prefix written in brackets
        ("345-899-3560x4587", pii.DEFAULT_PHONE_REGIONS, True),  # extension (its digits count in the length screen)
        ("+1-903-140-4508x769", (), True),
        ("07700 063 966", ("GB",), True),
    ],
)
def test_examples_through_both_paths(raw, regions, expected):
    assert pii._phone_ok(raw, regions, fast=True) is expected
    assert pii._phone_ok(raw, regions, fast=False) is expected


def test_rule_answers_without_parse_where_parse_would_rewrite():
    us = pii._region_rule("US")
    assert us.national("9056743793") is True
    assert us.national("905674379") is False
    assert us.national("19056743793") is True  # country code 1 dropped
    assert us.national("0114420794609") is True  # international prefix 011, then +44
    assert pii._region_rule("GB").national("07700063966") is True  # trunk prefix 0 dropped
    # Brazil's national prefix rule rewrites the number: left to parse.
    assert pii._region_rule("BR").national("0151155552222") is None


def test_national_rule_is_parse_on_every_example_number():
    # Each region's example numbers as written at home: with and without the
    # trunk prefix, after the country code, and cut short or run on (parse
    # keeps a prefix when the number fits the region's pattern only with it).
    checked = 0
    for region in REGIONS:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        trunk, cc = meta.national_prefix or "", str(meta.country_code)
        rule = pii._region_rule(region)
        for nsn in EXAMPLES[region]:
            for digits in (nsn, trunk + nsn, cc + nsn, cc + trunk + nsn, nsn[:-1], nsn + "0", trunk + nsn[:-2]):
                decided = rule.national(digits)
                if decided is not None:
                    assert decided == _parse_says(digits, region), (region, digits)
                    checked += 1
    assert checked > 1000  # the rule decides almost all of them

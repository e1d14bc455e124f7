"""The length-only phone decision (pii._LengthRule) gives the same answer as
phonenumbers.parse + is_possible_number, which it replaces for plain digit
strings parse would not rewrite."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracework.privacy.redact import pii

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
SEPARATORS = ["", "", "", " ", "-", ".", "/", " - ", ") ", "("]


@st.composite
def candidates(draw):
    digits = draw(st.text(alphabet="0123456789", min_size=5, max_size=18))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(digits), max_size=len(digits)))
    body = "".join(d + s for d, s in zip(digits, seps[:-1])) + digits[-1]
    lead = draw(st.sampled_from(["", "", "+", "(+", "("]))
    return lead + body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(candidates(), st.one_of(st.just(pii.DEFAULT_PHONE_REGIONS), st.lists(st.sampled_from(REGIONS), min_size=1, max_size=4).map(tuple)))
def test_length_rule_agrees_with_parse(raw, regions):
    assert pii._phone_ok(raw, regions, fast=True) == pii._phone_ok(raw, regions, fast=False)


@pytest.mark.parametrize(
    "raw, regions, expected",
    [
        ("905-674-3793", ("US",), True),  # decided by length: 10 digits in +1
        ("1 905 674 3793", ("US",), True),  # leading country code 1: parse decides
        ("44 7946 0958", ("GB",), True),  # leading country code 44: parse decides
        ("020 7946 0958", ("GB",), True),  # national prefix: parse decides
        ("0612345678", ("IT",), True),  # Italian leading zero kept in the number
        ("+1-984-182-0190", (), True),  # "+" and a country code, decided by length
        ("+1 984 182", (), False),
        ("123 456 78", ("FR",), False),
    ],
)
def test_examples_through_both_paths(raw, regions, expected):
    assert pii._phone_ok(raw, regions, fast=True) is expected
    assert pii._phone_ok(raw, regions, fast=False) is expected


def test_length_rule_steps_aside_when_parse_would_rewrite():
    us = pii._LengthRule(phonenumbers.PhoneMetadata.metadata_for_region("US"))
    assert us.national("9056743793") is True
    assert us.national("905674379") is False
    assert us.national("19056743793") is None  # country code 1 / national prefix 1
    assert us.national("0114420794609") is None  # international prefix 011

"""Phone numbers written without a country code and with few groups count
only next to a word about phoning; a SIN-shaped 3-3-3 number next to such a
word (and no SIN word) is read as a phone number."""

from __future__ import annotations

import pytest

from tracework.privacy.redact import find_spans
from tracework.privacy.redact.checks import luhn_ok


def kinds(text: str) -> list[tuple[str, str]]:
    return [(s.placeholder, text[s.start : s.end]) for s in find_spans(text)]


@pytest.mark.parametrize(
    "text, value",
    [
        ("Nobody is answering at 91 234567", "91 234567"),  # answering (machine)
        ("I left a voicemail on 668 5702 this morning", "668 5702"),
        ("please dial 555 0199 from the lobby", "555 0199"),
        ("our landline is 4471 2290", "4471 2290"),
        ("got no message on my registered 668 5702", "668 5702"),
    ],
)
def test_short_number_next_to_a_phone_word(text, value):
    assert ("PHONE", value) in kinds(text), kinds(text)


@pytest.mark.parametrize("text", ["order 668 5702 shipped", "the answer is 42, then 1234567", "dialog id 1234 567"])
def test_short_number_without_a_phone_word(text):
    assert all(p != "PHONE" for p, _ in kinds(text)), kinds(text)


def test_sin_shaped_number_next_to_a_phone_word_is_a_phone():
    assert luhn_ok("516466638")
    assert ("PHONE", "516 466 638") in kinds("They're not answering at 516 466 638")
    # With a SIN word around it stays a national identifier.
    assert ("NATIONAL_ID", "516 466 638") in kinds("my SIN number is 516 466 638")
    assert ("NATIONAL_ID", "046 454 286") in kinds("social insurance: 046 454 286, call if wrong")
    # Without a phone word: a national identifier, as before.
    assert ("NATIONAL_ID", "516 466 638") in kinds("ref 516 466 638")

"""luhn_ok (string slicing and translate) agrees with the textbook digit loop."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracework.privacy.redact.checks import luhn_ok


def luhn_reference(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        if ch not in "0123456789":
            return False
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return len(digits) > 1 and total % 10 == 0


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="0123456789", max_size=24) | st.text(alphabet="0123456789 -a٣", max_size=24))
def test_luhn_agrees_with_reference(digits):
    assert luhn_ok(digits) == luhn_reference(digits)


def test_luhn_known_numbers():
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005") and luhn_ok("046454286")
    assert not luhn_ok("4111111111111112") and not luhn_ok("0") and not luhn_ok("٤١١١١١١١١١١١١١١١")

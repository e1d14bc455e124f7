"""The shortcuts (the Hyperscan prefilter, the digit count per number window)
only skip detectors that could not have matched: the redactor finds exactly
the same spans with them as without them (``use_prefilter=False``)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracework.privacy.redact import Redactor, prefilter, secrets

# hyperscan is a declared dependency: a missing one must fail, not skip.
import hyperscan  # noqa: E402,F401

WITH = Redactor()
WITHOUT = Redactor(use_prefilter=False)

# Pieces detectors start from, including the non-ASCII characters Python's
# re treats as digits, spaces or ASCII letters (Arabic-Indic digits, NBSP,
# long s, Kelvin sign), so the ASCII view is exercised.
FRAGMENTS = [
    "call 415 555 0132", "+44 20 7946 0958", "(0)8 123 45 67", "ext. 12", " x 9", "tel:",
    "4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444", "378282246310005",
    "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "078-05-1120", "SSN 078051120",
    "social security: 123456789", "AB 12 34 56 C", "046 454 286", "2345 6789 0124",
    "192.168.0.1", "fe80::1", "2001:db8::8a2e:370:7334", "::", "11:34:35",
    "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "0:0:0:0:0:ffff:10.1.2.3", "bob@example.org", "a.b@c.io",
    "postgres://user:pa55@db", "https://x:y@h", "password=hunter2", "api_key: 'Zx8Qw2Er5Ty7Ui9Op'",
    "AKIAIOSFODNN7EXAMPLE", "ghp_" + "a1B2" * 9, "xoxb-1234567890-abcdefghij", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "-----BEGIN PRIVATE KEY-----", "AIza" + "Sy" * 17 + "A",
    "٣٤٥ ٦٧٨ ٩٠١٢", "\u00a0", "ſecret=abcdefghijkl1234", "\u212aey: value1234567", "é", "Ω", "2019-05-12", "#15",
    "☎", "answering", "dial", "message", "SIN", "tel", "ph", "ext", "#",
]
ALPHABET = "abcXYZ0123456789 -./()+@:=_\"'\n\t#x\x1c٣\u00a0ſ\u212aé"

text_strategy = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet=ALPHABET, max_size=12)), max_size=12
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_strategy)
def test_same_spans_with_and_without_prefilter(text):
    assert WITH.find(text) == WITHOUT.find(text)


def test_prefilter_reports_each_family_and_token_rule():
    pf = prefilter.load()
    assert pf is not None
    cases = {
        prefilter.EMAIL: "mail bob@example.org", prefilter.CARD: "4111 1111 1111 1111",
        prefilter.IBAN: "DE89370400440532013000", prefilter.SSN: "078-05-1120",
        prefilter.NATIONAL_ID: "AB123456C", prefilter.IPV4: "10.0.0.1", prefilter.IPV6: "fe80::1",
        prefilter.IPV6 + 100: "2001:0db8:85a3:0000:0000:8a2e:0370:7334", prefilter.IPV6 + 200: "0:0:0:0:0:ffff:1.2.3.4",
        prefilter.PHONE: "(415) 555-0132", prefilter.URL_CREDENTIALS: "ftp://u:p@h",
        prefilter.GENERIC: "PASSWORD = x", prefilter.JWT: "eyJhbGciOiJI.eyJzdWIi",
    }
    for fid, text in cases.items():
        assert fid % 100 in pf.scan(text), text
    assert pf.scan("An ordinary sentence, typed on 12 May.") == set()
    # A run of 16 digits holds no SIN or Aadhaar (both need their edges); a
    # clock time is no IPv6 address.
    assert not pf.scan("card 4111111111111111 at 11:34:35") & {prefilter.NATIONAL_ID, prefilter.SSN, prefilter.IPV6}
    aws = prefilter.TOKEN_BASE + [r.provider for r in secrets.TOKEN_RULES].index("aws-access-key-id")
    assert pf.scan("key AKIAIOSFODNN7EXAMPLE") >= {aws}


def test_non_ascii_digits_spaces_and_case_folds_keep_their_meaning():
    # Python's re: \d matches Arabic-Indic digits, \s a no-break space, (?i)s
    # the long s. The ASCII view the prefilter scans keeps each of these.
    assert prefilter._ascii_view("٣\u00a0ſé") == b"0 s~"
    text = "SSN\u00a0078-05-1120 and ſecret=Zx8Qw2Er5Ty7Ui9Op"
    assert WITH.find(text) == WITHOUT.find(text) != []


def test_derived_pattern_drops_lookarounds_and_large_bounds():
    assert prefilter.derived_pattern(r"(?<![A-Za-z0-9_\-])ya29\.[0-9A-Za-z_\-]{20,500}(?![A-Za-z0-9_\-])") == (
        r"ya29\.[0-9A-Za-z_\-]{20,}"
    )
    with pytest.raises(ValueError, match="lookaround"):
        prefilter.derived_pattern(r"(?<=ab)c")

"""Detection work per kilobyte is bounded, even on input built to make
backtracking regexes explode.

Wall-clock thresholds would be flaky on shared CI machines, so the test has
two parts: (1) every pathological megabyte must finish under a generous
pytest-timeout (a catastrophic-backtracking pattern would take hours, not
seconds); (2) the structural caps that make the bound hold are checked
directly: every provider rule passes the linear-time shape check, long runs
of token characters are redacted whole instead of scanned, and scanning is
windowed at MAX_SCAN_CHARS.
"""

from __future__ import annotations

import random

import pytest

from tracework.privacy.redact import MAX_SCAN_CHARS, Redactor, find_spans, secrets

MB = 1 << 20


def _binary_junk(n: int) -> str:
    rng = random.Random(3)
    return bytes(rng.getrandbits(8) for _ in range(n)).decode("latin-1")


PATHOLOGICAL = {
    "one enormous token": "a" * MB,
    "a@ repeated": "a@" * (MB // 2),
    "digit run": "7" * MB,
    "spaced digits": "1 " * (MB // 2),
    "dotted digits": "1." * (MB // 2),
    "binary junk": _binary_junk(MB),
    "jwt-ish": ("eyJ" * 2700 + " ") * (MB // 8101),
    "jwt header then junk": ("eyJ" + "a" * 4000 + ".eyJ" + "b" * 3000 + " ") * (MB // 7010),
    "colons": "a:" * (MB // 2),
    "pem headers": "-----BEGIN RSA PRIVATE KEY-----\n" * (MB // 32),
    "assignments": "password=" * (MB // 9),
    "token-sized blocks of A": ("A" * 23 + " ") * (MB // 24),
    "keywords glued": ("aws_secret_key=" * 500 + " ") * (MB // 7501),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_megabyte_completes(name):
    text = PATHOLOGICAL[name]
    spans = find_spans(text)
    # Spans are well-formed whatever the input.
    assert all(0 <= s.start < s.end <= len(text) for s in spans)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


def test_enormous_token_is_redacted_whole_not_scanned():
    text = "x " + "Q" * (secrets.MAX_TOKEN_SCAN + 1) + " y"
    spans = find_spans(text)
    assert [(s.placeholder, s.start, s.end) for s in spans] == [("OVERSIZE_TOKEN", 2, 2 + secrets.MAX_TOKEN_SCAN + 1)]
    # At the cap it is scanned normally (and holds nothing).
    assert find_spans("x " + "Q" * secrets.MAX_TOKEN_SCAN + " y") == []


@pytest.mark.timeout(120)
def test_text_longer_than_scan_window_is_windowed_without_losing_spans():
    filler = "lorem ipsum dolor sit amet " * ((MAX_SCAN_CHARS // 27) + 10)
    key = "AKIAIOSFODNN7EXAMPLE"
    at = MAX_SCAN_CHARS - 10  # straddles the first window's end
    text = filler[:at] + " " + key + " " + filler[at:]
    spans = Redactor().find(text)
    assert [(s.placeholder, text[s.start : s.end]) for s in spans] == [("AWS_KEY", key)]


def _max_repeat(items) -> int:
    from re import _constants as c
    from re import _parser as sre_parse  # noqa: F401  (parse trees come from it)

    worst = 0
    for op, arg in items:
        if op in (c.MAX_REPEAT, c.MIN_REPEAT):
            worst = max(worst, arg[1], _max_repeat(arg[2]))
        elif op == c.SUBPATTERN:
            worst = max(worst, _max_repeat(arg[3]))
        elif op == c.BRANCH:
            worst = max([worst] + [_max_repeat(alt) for alt in arg[1]])
        elif op in (c.ASSERT, c.ASSERT_NOT):
            worst = max(worst, _max_repeat(arg[1]))
    return worst


def test_all_provider_quantifiers_are_bounded_by_max_token():
    from re import _parser as sre_parse

    for rule in secrets.TOKEN_RULES:
        # Bounded repeats only, none longer than MAX_TOKEN: the cost of a rule
        # at one start position is at most the sum of its bounds.
        assert _max_repeat(sre_parse.parse(rule.pattern)) <= secrets.MAX_TOKEN, rule.provider

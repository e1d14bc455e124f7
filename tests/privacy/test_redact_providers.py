"""Provider tokens generated from each provider's documented format
(benchmarks/redaction/provider_formats.py) are all detected with the right
placeholder, alone and inside typical surrounding text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tracework.privacy.policy import regex_safety_problem
from tracework.privacy.redact import find_spans, secrets

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "redaction" / "provider_formats.py"
_spec = importlib.util.spec_from_file_location("provider_formats", _PATH)
provider_formats = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(provider_formats)


def test_at_least_thirty_providers():
    providers = {name.split()[0] for name, _, _ in provider_formats.FORMATS}
    placeholders = {p for _, p, _ in provider_formats.FORMATS}
    assert len(providers) >= 30 and len(placeholders) >= 30


@pytest.mark.parametrize("name,placeholder,template", provider_formats.FORMATS, ids=[f[0] for f in provider_formats.FORMATS])
def test_documented_format_detected(name, placeholder, template):
    import random

    rng = random.Random(name)
    for _ in range(5):
        token = provider_formats.generate(template, rng)
        for context in ("{}", "export TOKEN_VALUE={} ", "here it is: {} - thanks", "'{}'"):
            text = context.format(token)
            spans = find_spans(text)
            hits = [s for s in spans if s.placeholder == placeholder]
            assert hits, (text, spans)
            # The secret part of the token is covered (context rules leave the name).
            covered = "".join(text[s.start : s.end] for s in hits)
            assert len(covered) >= 16


def test_every_token_rule_has_hints_and_is_linear():
    for rule in secrets.TOKEN_RULES:
        assert secrets.RULE_HINTS[rule.provider], rule.provider
        assert regex_safety_problem(rule.pattern) is None, (rule.provider, regex_safety_problem(rule.pattern))

"""Detectors for secrets and personal identifiers in text.

``Redactor.find(text)`` returns non-overlapping :class:`Span` objects, each
with the placeholder type that replaces it (``EMAIL``, ``CARD``, ``AWS_KEY``...).
Detector families live in ``pii`` (personal identifiers) and ``secrets``
(credentials); checksums in ``checks``.

Work is bounded: every pattern has bounded quantifiers, tokens are capped
(``secrets.MAX_TOKEN``, ``MAX_PEM``), and ``find`` scans at most
``MAX_SCAN_CHARS`` per call (callers pass a window, the stream stage never
holds more). See docs/privacy-redaction.md, "Bounded work".
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from . import fastscan, pii, prefilter, secrets
from .checks import char_classes, shannon_entropy

MAX_SCAN_CHARS = 1 << 20  # longest text one find() call looks at
_DIGIT = re.compile(r"\d")
# Every detector needs one of these: a digit (numbers, IBAN, NINO, IPs), '@'
# (emails), '=' or ':' (assignments, URLs, IPv6), "-----" (key blocks) or a
# run of 16 token characters (provider tokens, JWTs).
_SIMPLE_TRIGGER = re.compile(r"[\d@=:]")
# Any run of 16 non-space characters: a superset of secrets.LONG_TOKEN, and a
# plain class the regex engine scans fastest.
_LONG_RUN = re.compile(r"\S{16}")

# Placeholder types of the personal-identifier detectors.
EMAIL = "EMAIL"
PHONE = "PHONE"
CARD = "CARD"
IBAN = "IBAN"
SSN = "SSN"
NATIONAL_ID = "NATIONAL_ID"
IP_ADDRESS = "IP_ADDRESS"
URL_CREDENTIALS = "URL_CREDENTIALS"
PRIVATE_KEY = "PRIVATE_KEY"
JWT = "JWT"
PASSWORD = "PASSWORD"
SECRET = "SECRET"
OVERSIZE_TOKEN = "OVERSIZE_TOKEN"

# Lower number wins when spans overlap (then the longer span).
_PRIORITY = {
    PRIVATE_KEY: 0,
    URL_CREDENTIALS: 2,
    JWT: 3,
    CARD: 4,
    IBAN: 5,
    SSN: 6,
    NATIONAL_ID: 7,
    EMAIL: 8,
    IP_ADDRESS: 9,
    PHONE: 10,
    PASSWORD: 11,
    SECRET: 12,
    OVERSIZE_TOKEN: 13,
}
_TOKEN_PRIORITY = 1  # provider tokens: precise formats, after PEM blocks


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """Characters ``text[start:end]`` are a ``placeholder`` found by ``rule``."""

    start: int
    end: int
    placeholder: str
    rule: str


@dataclass(frozen=True, slots=True)
class CustomRule:
    """A rule from the policy file: a name (the placeholder) and a regex."""

    name: str
    pattern: re.Pattern


# Detector names usable in the policy's ``disabled`` list.
DETECTORS = (
    "email", "phone", "card", "iban", "ssn", "national_id", "ip", "url_credentials",
    "private_key", "jwt", "provider_tokens", "generic_secret",
)


@dataclass
class Redactor:
    """All detectors, configured by the policy. Pure: no I/O, no state between calls."""

    disabled: frozenset[str] = frozenset()
    allow_values: frozenset[str] = frozenset()
    allow_patterns: tuple[re.Pattern, ...] = ()
    custom_rules: tuple[CustomRule, ...] = ()
    phone_regions: tuple[str, ...] = pii.DEFAULT_PHONE_REGIONS
    # Shortcuts that skip detectors which cannot match: the Hyperscan pass
    # (prefilter.py) and the digit count per number window. Off: every
    # detector runs on every text with a trigger character and on every
    # digit window (the reference the shortcuts are tested against; the
    # results are the same).
    use_prefilter: bool = True
    _token_rules: list = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.disabled) - set(DETECTORS)
        if unknown:
            raise ValueError(f"unknown detectors {sorted(unknown)}; known: {', '.join(DETECTORS)}")
        self.phone_regions = tuple(self.phone_regions)  # a memo and table key
        self._token_scan = _CombinedTokenScan(secrets.TOKEN_RULES)
        self._on = {name: name not in self.disabled for name in DETECTORS}
        self._prefilter = prefilter.load() if self.use_prefilter else None
        # Custom rules have no prefilter condition: with them every text runs.
        self._hits_decide = not self.custom_rules
        # The compiled phone loop's tables and buffers for these regions.
        self._phone_context = pii.kernel_context(self.phone_regions) if self._prefilter is not None else None
        self._min_digits = (
            (pii.MIN_DIGITS_CARD, pii.MIN_DIGITS_SSN, pii.MIN_DIGITS_NATIONAL_ID, pii.MIN_DIGITS_PHONE)
            if self.use_prefilter
            else (0, 0, 0, 0)
        )

    def find(self, text: str) -> list[Span]:
        """Non-overlapping spans of ``text`` to redact, in order."""
        if len(text) > MAX_SCAN_CHARS:
            # Callers window their input; a longer text is scanned in
            # overlapping pieces so each call stays bounded.
            return _merge_windows(self, text)
        if self._prefilter is not None:
            hits, view = self._prefilter.scan_view(text)
            if not hits and self._hits_decide and len(text) <= secrets.MAX_TOKEN_SCAN and "-----BEGIN" not in text:
                return []  # no detector's necessary condition occurs
            return self._resolve(text, self._candidates(text, hits, view))
        if (
            not self.custom_rules
            and _SIMPLE_TRIGGER.search(text) is None
            and "-----" not in text
            and _LONG_RUN.search(text) is None
        ):
            # Nothing any detector starts from: no digit, '@', '=', ':', '-',
            # '/' or run of 16 token characters (checked in one C-speed scan).
            return []
        return self._resolve(text, self._candidates(text))

    def _scan(self, text: str) -> Collection[int] | None:
        return None if self._prefilter is None else self._prefilter.scan(text)

    def _candidates(self, text: str, hits: Collection[int] | None = None, view: bytes | None = None) -> list[Span]:
        # Each family runs only when the characters it needs are present:
        # ordinary prose (no digit, no '@', no '=' or ':', no long token)
        # costs a handful of C-speed scans. ``hits`` (from the prefilter)
        # narrows this to the families whose necessary condition occurs;
        # None means every family may match. ``view`` is the prefilter's
        # ASCII view of ``text``, from which the number windows are found
        # in compiled code (fastscan); without it, by regex. Spans are
        # appended to one list (no generator per family: this runs once
        # per identifier-bearing sentence).
        found: list[Span] = []
        add = found.append
        on = self._on
        may = _ALWAYS if hits is None else hits.__contains__
        if on["private_key"] and "-----BEGIN" in text:
            found.extend(_private_keys(text))
        token_rules = self._token_scan.rules_for(hits)
        tokens = (on["provider_tokens"] and token_rules) or (on["jwt"] and may(prefilter.JWT))
        if len(text) > secrets.MAX_TOKEN_SCAN and (on["provider_tokens"] or on["jwt"]):
            tokens = True  # a run this long is redacted whole (OVERSIZE_TOKEN)
        for m in secrets.LONG_TOKEN.finditer(text) if tokens else ():
            start, end = m.span()
            if end - start > secrets.MAX_TOKEN_SCAN:
                # No typed secret is this long; scanning inside it is where
                # bounded patterns get expensive, so the whole run goes.
                add(Span(start, end, OVERSIZE_TOKEN, "oversize-token"))
                continue
            # Context rules (``aws_secret = ...``) need the name before the value.
            lo = max(0, start - secrets.CONTEXT_BEFORE)
            if on["provider_tokens"] and token_rules:
                found.extend(self._token_scan.scan(text, lo, end, token_rules))
            if on["jwt"] and may(prefilter.JWT) and "eyJ" in m.group():
                for jm in secrets.JWT_PATTERN.finditer(text, start, end):
                    add(Span(jm.start(), jm.end(), JWT, "jwt"))
        if on["url_credentials"] and may(prefilter.URL_CREDENTIALS) and "://" in text:
            for m in secrets.URL_CREDENTIALS_PATTERN.finditer(text):
                add(Span(m.start(1), m.end(1), URL_CREDENTIALS, "url-credentials"))
        if on["email"] and may(prefilter.EMAIL) and "@" in text:
            for s, e in pii.find_emails(text):
                add(Span(s, e, EMAIL, "email"))
        card = on["card"] and may(prefilter.CARD)
        iban = on["iban"] and may(prefilter.IBAN)
        ssn = on["ssn"] and may(prefilter.SSN)
        nid = on["national_id"] and may(prefilter.NATIONAL_ID)
        phone = on["phone"] and may(prefilter.PHONE)
        ip = on["ip"] and (may(prefilter.IPV4) or may(prefilter.IPV6))
        if (card or iban or ssn or nid or ip or phone) and (view is not None or _DIGIT.search(text) is not None):
            # Number detectors run only in windows around digit clusters.
            min_card, min_ssn, min_nid, min_phone = self._min_digits
            if view is None:
                windows = [(lo, hi, nd, fastscan.ALL_SHAPES) for lo, hi, nd in pii.digit_windows(text)]
            else:
                # With each window's shape flags: cards and phones run only
                # where a run of digits and separators could hold one.
                windows = fastscan.digit_windows_ascii(view)
            n = len(text)
            # Phone and card numbers are found in compiled code on a view of
            # the text (fastscan.compiled_view: an ASCII text's own bytes;
            # offsets packed in 27 + 32 bits), or by the regexes where there
            # is none.
            compiled = None
            if (phone or card) and view is not None and n < 1 << 27:
                compiled = view if text.isascii() else fastscan.compiled_view(text)
            for lo, hi, nd, shapes in windows:
                digits_end = hi - pii.WINDOW_RIGHT if hi < n else hi  # pii.window_digits_end
                if card and nd >= min_card and shapes & fastscan.CARD_SHAPED:
                    # A card starts with a digit, and a window that is not
                    # cut at the text's start begins WINDOW_LEFT characters
                    # before its first one: the search starts there.
                    first = lo + pii.WINDOW_LEFT if lo else 0
                    if compiled is not None:
                        cards = fastscan.find_cards(compiled, n, first, hi, digits_end)
                    else:
                        cards = pii.find_cards(text, first, hi, digits_end)
                    for s, e in cards:
                        add(Span(s, e, CARD, "card-luhn"))
                if iban:
                    for s, e in pii.find_ibans(text, lo, hi):
                        add(Span(s, e, IBAN, "iban-mod97"))
                if ssn and nd >= min_ssn:
                    for s, e in pii.find_ssns(text, lo, hi):
                        add(Span(s, e, SSN, "us-ssn"))
                if nid and nd >= min_nid:
                    for s, e, kind in pii.find_national_ids(text, lo, hi):
                        add(Span(s, e, NATIONAL_ID, kind))
                if ip:
                    for s, e in pii.find_ips(text, lo, hi):
                        add(Span(s, e, IP_ADDRESS, "ip"))
                if phone and nd >= min_phone and shapes & fastscan.PHONE_SHAPED:
                    if compiled is not None:
                        phones = pii.find_phones_compiled(
                            text, compiled, self.phone_regions, lo, hi, digits_end, self._phone_context
                        )
                    else:
                        phones = pii.find_phones(text, self.phone_regions, lo, hi, True, digits_end)
                    for s, e in phones:
                        add(Span(s, e, PHONE, "phonenumbers"))
        if on["generic_secret"] and may(prefilter.GENERIC) and ("=" in text or ":" in text):
            found.extend(_generic_assignments(text))
        for rule in self.custom_rules:
            for m in rule.pattern.finditer(text):
                if m.end() > m.start():
                    add(Span(m.start(), m.end(), rule.name, "custom"))
        return found

    def _resolve(self, text: str, found: list[Span]) -> list[Span]:
        if not found:
            return []
        if self.allow_values or self.allow_patterns:
            found = [s for s in found if not self._allowed(text[s.start : s.end])]
        if len(found) == 1:
            return found  # nothing to overlap with
        found.sort(key=lambda s: (_span_priority(s), s.start - s.end, s.start))
        # Accepted spans never overlap, so their starts and ends interleave in
        # one sorted list: a new span is free iff it falls into one gap.
        starts: list[int] = []
        ends: list[int] = []
        taken: list[Span] = []
        for span in found:
            i = bisect.bisect_right(starts, span.start)
            if i > 0 and ends[i - 1] > span.start:
                continue
            if i < len(starts) and starts[i] < span.end:
                continue
            starts.insert(i, span.start)
            ends.insert(i, span.end)
            taken.insert(i, span)
        return taken

    def _allowed(self, value: str) -> bool:
        if value in self.allow_values:
            return True
        return any(p.fullmatch(value) for p in self.allow_patterns)


class _CombinedTokenScan:
    """Provider rules run over one candidate window: only the rules whose hint
    literal occurs in the window (see ``secrets.RULE_HINTS``)."""

    def __init__(self, rules) -> None:
        self._rules = []
        for rule in rules:
            hints = secrets.RULE_HINTS[rule.provider]
            self._rules.append((rule, re.compile(rule.pattern), hints, rule.provider in secrets.LOWER_HINT_RULES))

    def rules_for(self, hits: Collection[int] | None) -> list:
        """The rules whose prefilter condition fired (all when ``hits`` is None)."""
        if hits is None:
            return self._rules
        fired = [h for h in hits if h >= prefilter.TOKEN_BASE]
        if not fired:
            return []  # the usual case: no provider rule fired
        return [self._rules[h - prefilter.TOKEN_BASE] for h in sorted(fired)]

    def scan(self, text: str, lo: int, hi: int, rules: list | None = None) -> Iterator[Span]:
        window = text[lo:hi]
        lower = None
        for rule, rx, hints, use_lower in self._rules if rules is None else rules:
            if use_lower:
                if lower is None:
                    lower = window.lower()
                hay = lower
            else:
                hay = window
            if not any(h in hay for h in hints):
                continue
            for m in rx.finditer(text, lo, hi):
                yield Span(m.start(rule.group), m.end(rule.group), rule.placeholder, rule.provider)


def _ALWAYS(_fid: int) -> bool:
    return True


def _priority(placeholder: str) -> int:
    return _PRIORITY.get(placeholder, _TOKEN_PRIORITY)


def _span_priority(span: Span) -> float:
    if span.rule == "sin-phone-context":
        # A SIN-shaped number next to a phone word: PHONE first if the phone
        # detector accepted it too (pii.sin_reads_as_phone).
        return _PRIORITY[PHONE] + 0.5
    return _PRIORITY.get(span.placeholder, _TOKEN_PRIORITY)


def _private_keys(text: str) -> Iterator[Span]:
    """PEM private key blocks, BEGIN to END (or to MAX_PEM chars when the END
    line is missing: a key cut short is still a key)."""
    if "-----BEGIN" not in text:
        return
    for m in secrets.PEM_BEGIN.finditer(text):
        end_m = secrets.PEM_END.search(text, m.end(), m.end() + secrets.MAX_PEM)
        end = end_m.end() if end_m else min(len(text), m.end() + secrets.MAX_PEM)
        yield Span(m.start(), end, PRIVATE_KEY, "pem-private-key")


_PLACEHOLDER_VALUES = {"none", "null", "true", "false", "required", "optional", "changeme", "xxx", "xxxx", "****", "redacted", "undefined"}


def _generic_assignments(text: str) -> Iterator[Span]:
    for m in secrets.GENERIC_ASSIGNMENT.finditer(text):
        value = m.group(3)
        if value.lower() in _PLACEHOLDER_VALUES or value.startswith(("$", "{", "%", "<", "(")):
            continue  # a template variable or a placeholder, not a secret
        if m.group(1):  # password-like name: any non-trivial value is a password
            if len(value) >= 4:
                yield Span(m.start(3), m.end(3), PASSWORD, "password-assignment")
        elif len(value) >= 12 and char_classes(value) >= 2 and shannon_entropy(value) >= 3.0:
            yield Span(m.start(3), m.end(3), SECRET, "secret-assignment")


def _merge_windows(redactor: Redactor, text: str) -> list[Span]:
    # Windows overlap by more than the longest token so no span is cut in two.
    step = MAX_SCAN_CHARS - 2 * secrets.MAX_PEM
    spans: list[Span] = []
    for base in range(0, len(text), step):
        piece = text[base : base + MAX_SCAN_CHARS]
        spans.extend(
            Span(s.start + base, s.end + base, s.placeholder, s.rule)
            for s in redactor._candidates(piece, redactor._scan(piece))
        )
        if base + MAX_SCAN_CHARS >= len(text):
            break
    return redactor._resolve(text, list(set(spans)))


_DEFAULT: Redactor | None = None


def default_redactor() -> Redactor:
    """A Redactor with every detector on and no allow-list (built once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Redactor()
    return _DEFAULT


def find_spans(text: str) -> list[Span]:
    """Spans to redact in ``text`` with the default detectors."""
    return default_redactor().find(text)


def redact_text(text: str, spans: Iterable[Span] | None = None) -> str:
    """``text`` with each span replaced by ``[PLACEHOLDER]`` (for display and tests)."""
    out, pos = [], 0
    for span in sorted(find_spans(text) if spans is None else spans):
        out.append(text[pos : span.start])
        out.append(f"[{span.placeholder}]")
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


PLACEHOLDERS = tuple(sorted(set(_PRIORITY) | {r.placeholder for r in secrets.TOKEN_RULES}))

__all__ = [
    "Span", "Redactor", "CustomRule", "DETECTORS", "PLACEHOLDERS", "MAX_SCAN_CHARS",
    "default_redactor", "find_spans", "redact_text",
]

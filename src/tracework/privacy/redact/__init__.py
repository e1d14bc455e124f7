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
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, NamedTuple

from . import fastscan, numbers, pii, prefilter, secrets
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


class Span(NamedTuple):
    """Characters ``text[start:end]`` are a ``placeholder`` found by ``rule``.
    Immutable, ordered by its fields. (A named tuple: a frozen dataclass
    cost twice as much to build, and a sentence dense with identifiers
    builds several.)"""

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
        self._plans: dict[tuple[int, ...] | None, _Plan] = {}
        # The compiled phone and card search for these regions (numbers.py),
        # used with the prefilter's view.
        self._numbers = numbers.kernel_for(self.phone_regions) if self._prefilter is not None else None
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
        pf = self._prefilter
        if pf is not None:
            # pf.scan_view(text), inline: this runs for every text, most of
            # which hold nothing, and the call cost a tenth of such a text.
            try:
                scratch = pf.local.scratch
            except AttributeError:  # first scan on this thread
                scratch = pf.new_scratch()
            hits: list[int] = []
            view = text.encode("ascii", prefilter.VIEW_CODEC)
            pf.database.scan(view, prefilter.collect, 0, hits, scratch)
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
        key = None if hits is None else tuple(hits)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plan(key)
        if plan.private_key and "-----BEGIN" in text:
            found.extend(_private_keys(text))
        tokens = plan.tokens or (plan.tokens_on and len(text) > secrets.MAX_TOKEN_SCAN)
        for m in secrets.LONG_TOKEN.finditer(text) if tokens else ():
            start, end = m.span()
            if end - start > secrets.MAX_TOKEN_SCAN:
                # No typed secret is this long; scanning inside it is where
                # bounded patterns get expensive, so the whole run goes.
                add(Span(start, end, OVERSIZE_TOKEN, "oversize-token"))
                continue
            # Context rules (``aws_secret = ...``) need the name before the value.
            lo = max(0, start - secrets.CONTEXT_BEFORE)
            if plan.token_rules:
                found.extend(self._token_scan.scan(text, lo, end, plan.token_rules))
            if plan.jwt and "eyJ" in m.group():
                for jm in secrets.JWT_PATTERN.finditer(text, start, end):
                    add(Span(jm.start(), jm.end(), JWT, "jwt"))
        if plan.url_credentials and "://" in text:
            for m in secrets.URL_CREDENTIALS_PATTERN.finditer(text):
                add(Span(m.start(1), m.end(1), URL_CREDENTIALS, "url-credentials"))
        if plan.email and "@" in text:
            for s, e in pii.find_emails(text):
                add(Span(s, e, EMAIL, "email"))
        card, iban, ssn, nid, ip, phone = plan.card, plan.iban, plan.ssn, plan.nid, plan.ip, plan.phone
        if (card or iban or ssn or nid or ip or phone) and (view is not None or _DIGIT.search(text) is not None):
            self._number_spans(text, view, add, card, iban, ssn, nid, ip, phone)
        if plan.generic and ("=" in text or ":" in text):
            found.extend(_generic_assignments(text))
        for rule in self.custom_rules:
            for m in rule.pattern.finditer(text):
                if m.end() > m.start():
                    add(Span(m.start(), m.end(), rule.name, "custom"))
        return found

    def _plan(self, hits: tuple[int, ...] | None) -> "_Plan":
        """Which detectors run on a text with these prefilter hits (None:
        no prefilter, all that are on), given the policy's ``disabled``
        list. Kept per distinct hits tuple: the same few come back again
        and again, and working this out cost more than a short sentence's
        detectors."""
        on = self._on
        may = _ALWAYS if hits is None else set(hits).__contains__
        token_rules = self._token_scan.rules_for(hits) if on["provider_tokens"] else []
        plan = _Plan(
            private_key=on["private_key"],
            token_rules=token_rules,
            jwt=on["jwt"] and may(prefilter.JWT),
            tokens_on=on["provider_tokens"] or on["jwt"],
            url_credentials=on["url_credentials"] and may(prefilter.URL_CREDENTIALS),
            email=on["email"] and may(prefilter.EMAIL),
            card=on["card"] and may(prefilter.CARD),
            iban=on["iban"] and may(prefilter.IBAN),
            ssn=on["ssn"] and may(prefilter.SSN),
            nid=on["national_id"] and may(prefilter.NATIONAL_ID),
            ip=on["ip"] and (may(prefilter.IPV4) or may(prefilter.IPV6)),
            phone=on["phone"] and may(prefilter.PHONE),
            generic=on["generic_secret"] and may(prefilter.GENERIC),
        )
        if len(self._plans) >= 4096:
            self._plans.clear()  # bounded, whatever the input
        self._plans[hits] = plan
        return plan

    def _number_spans(
        self, text: str, view: bytes | None, add: Callable[[Span], None],
        card: bool, iban: bool, ssn: bool, nid: bool, ip: bool, phone: bool,
    ) -> None:
        """The number detectors that may match (the flags), run only in
        windows around digit clusters; spans go to ``add``."""
        n = len(text)
        kernel = self._numbers
        # Cards and phone numbers are found in compiled code (numbers.py) on
        # a view of the text (an ASCII text's own bytes; offsets packed in
        # 27 + 32 bits), or by the regexes where there is none.
        numbers_view = None
        if kernel is not None and (card or phone) and view is not None and n < 1 << 27:
            numbers_view = view if text.isascii() else numbers.compiled_view(text)
        if numbers_view is not None and not (iban or ssn or nid or ip):
            # Cards and phone numbers alone, the usual case: one compiled
            # call for every window of the text.
            want = (numbers.WANT_CARDS if card else 0) | (numbers.WANT_PHONES if phone else 0)
            flat = kernel.text_spans(view, numbers_view, n, want)
            if flat is not None:
                for i in range(0, len(flat), 3):
                    if flat[i + 2] == numbers.KIND_CARD:
                        add(Span(flat[i], flat[i + 1], CARD, "card-luhn"))
                    else:
                        add(Span(flat[i], flat[i + 1], PHONE, "phonenumbers"))
                return
            # A candidate needs Python: window by window below.
        min_card, min_ssn, min_nid, min_phone = self._min_digits
        if view is None:
            windows = [(lo, hi, nd, fastscan.ALL_SHAPES) for lo, hi, nd in pii.digit_windows(text)]
        else:
            # With each window's shape flags: cards and phones run only
            # where a run of digits and separators could hold one.
            windows = fastscan.digit_windows_ascii(view)
        for lo, hi, nd, shapes in windows:
            digits_end = hi - pii.WINDOW_RIGHT if hi < n else hi  # pii.window_digits_end
            if card and nd >= min_card and shapes & fastscan.CARD_SHAPED:
                # A card starts with a digit, and a window that is not cut at
                # the text's start begins WINDOW_LEFT characters before its
                # first one: the search starts there.
                first = lo + pii.WINDOW_LEFT if lo else 0
                if numbers_view is not None:
                    cards = kernel.cards(numbers_view, n, first, hi, digits_end)
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
                if numbers_view is not None:
                    phones = kernel.phones(text, numbers_view, lo, hi, digits_end)
                else:
                    phones = pii.find_phones(text, self.phone_regions, lo, hi, True, digits_end)
                for s, e in phones:
                    add(Span(s, e, PHONE, "phonenumbers"))

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


@dataclass(slots=True)
class _Plan:
    """The detectors Redactor._candidates runs for one set of prefilter hits."""

    private_key: bool
    token_rules: list  # provider rules whose condition fired (and are on)
    jwt: bool
    tokens_on: bool  # provider tokens or JWTs on: a run too long to scan goes whole
    url_credentials: bool
    email: bool
    card: bool
    iban: bool
    ssn: bool
    nid: bool
    ip: bool
    phone: bool
    generic: bool

    @property
    def tokens(self) -> bool:
        """Scan the long token runs at all (a provider rule or JWT fired)."""
        return bool(self.token_rules) or self.jwt


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


# Texts that take every compiled path of find (numbers.py, fastscan.py):
# national, short and "+" phone numbers, retries, a card, other number
# families, and a non-ASCII text.
_WARM_UP_TEXTS = (
    "call me on 415 555 0132 or 4111 1111 1111 1111, office 0494 92 82 32",
    "phone 555 0199 4111 1111 1111 1111 2024 and +44 20 7946 0958 x12",
    "SSN 078-05-1120, IBAN DE89 3704 0044 0532 0130 00, host 10.0.0.1, SIN 046 454 286",
    "Rufen Sie mich an: 0494 92 82 32, Straße 5, Karte 4111-1111-1111-1111",
)


def warm_up(redactor: Redactor | None = None) -> float:
    """Run ``redactor`` (the default one when None) over texts that take
    every compiled path, so that numba compiles them (the first start after
    an install, ~15-20 s on the CI machine) or loads them from its cache
    (~0.5 s) now, not at the first number someone types. Returns the CPU
    seconds it took."""
    start = time.process_time()
    redactor = redactor or default_redactor()
    for text in _WARM_UP_TEXTS:
        redactor.find(text)
    return time.process_time() - start


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
    "default_redactor", "find_spans", "redact_text", "warm_up",
]

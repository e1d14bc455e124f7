"""Personal-identifier detectors: emails, phone numbers (via ``phonenumbers``),
payment cards (Luhn), IBANs (mod 97), US SSNs, UK National Insurance numbers,
Canadian SINs (Luhn), Indian Aadhaar numbers (Verhoeff) and IP addresses
(validated by ``ipaddress``).

Patterns follow the same linear-time rules as ``secrets``: bounded
quantifiers, no nested quantifiers over overlapping characters. Email search
is anchored on ``@`` so that text without one costs a single ``str.find``.
"""

from __future__ import annotations

import importlib
import ipaddress
import re

import phonenumbers

from .checks import iban_ok, luhn_ok, verhoeff_ok

# Email: the local part is matched backwards from the '@' with a bounded
# class, the domain forwards. RFC 5321 caps: local 64, label 63.
EMAIL_LOCAL_TAIL = re.compile(r"[A-Za-z0-9._%+\-']{1,64}$")
EMAIL_DOMAIN_HEAD = re.compile(r"@((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24})(?![A-Za-z0-9\-])")

# Card: 12-19 digits, optionally grouped by single spaces or dashes.
CARD_CANDIDATE = re.compile(r"(?<![\w\-+])\d[\d \-]{10,21}\d(?![\d])")

# IBAN: country, check digits, then up to 30 alphanumerics, optionally in
# groups of four separated by one space.
IBAN_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[A-Za-z0-9]{11,30}|(?: [A-Za-z0-9]{4}){2,7}(?: [A-Za-z0-9]{1,3})?)(?![A-Za-z0-9])"
)

# US SSN: area 001-899 except 666, group 01-99, serial 0001-9999, with the
# same separator twice (or none when the word SSN is near, see below).
SSN_PATTERN = re.compile(r"(?<![\d\-])(?!000|666|9)\d{3}([\- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d\-])")
SSN_CONTEXT = re.compile(r"(?i:ssn|social security)[^0-9]{0,20}((?!000|666|9)\d{3}(?!00)\d{2}(?!0000)\d{4})(?!\d)")

# UK National Insurance number (HMRC format): two prefix letters (not D, F,
# I, Q, U, V; second not O; excluded pairs checked in code), six digits, A-D.
NINO_PATTERN = re.compile(
    r"(?<![A-Za-z0-9])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"
)
NINO_EXCLUDED = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}

# Canadian SIN: 9 digits in 3-3-3 groups, Luhn-valid; first digit not 8 (0 is
# unissued but appears in the CRA's own examples, so it is kept).
SIN_PATTERN = re.compile(r"(?<![\d\-])([0-79]\d{2})([\- ])(\d{3})\2(\d{3})(?![\d\-])")

# Aadhaar: 12 digits in 4-4-4, first digit 2-9, Verhoeff-valid.
AADHAAR_PATTERN = re.compile(r"(?<![\d\-])([2-9]\d{3})([ \-]?)(\d{4})\2(\d{4})(?![\d\-])")

IPV4_PATTERN = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d]|\.\d)")
# IPv6: a run of hex groups and colons with at least two colons; validated by
# ipaddress. The class is bounded so a long hex run cannot cost more than 45
# characters per start position.
IPV6_CANDIDATE = re.compile(r"(?<![A-Za-z0-9:.])[0-9A-Fa-f:.]{3,45}(?![A-Za-z0-9:.])")

# Phone candidates: digits with common separators, optional leading + or (
# and an extension. phonenumbers decides; this only keeps it off prose.
PHONE_CANDIDATE = re.compile(
    r"(?<![\w+])(?:\+|\(\+?)?\d[\d \-.()/]{4,24}\d(?:\s{0,2}(?:x|ext\.?|#)\s{0,2}\d{1,6})?(?![\d])"
)

# Regions tried, in order, for numbers written without a country code. The
# defaults cover the policy's default locales; a policy file can change them.
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "CA", "AU", "BR", "IL", "ES", "IT", "NL", "SE", "CH", "BE")


DIGIT_RUN = re.compile(r"\d{1,64}")
WINDOW_LEFT = 24  # "SSN: ", an IBAN's country code, a NINO's letters, "+(" before the first digit
WINDOW_RIGHT = 16  # a NINO's final letter, "ext. 12", an IBAN's last letters after the last digit
WINDOW_GAP = 10  # digit runs closer than this share a window (grouped numbers)


def digit_windows(text: str) -> list[tuple[int, int, int]]:
    """(lo, hi, digits) windows around clusters of digits: the number
    detectors only run there, so prose between numbers costs nothing.
    Digit runs closer than ``WINDOW_GAP`` form a cluster, so a grouped number
    is never split; clusters whose margins (``WINDOW_LEFT`` before the first
    digit, ``WINDOW_RIGHT`` after the last) touch share a window. ``digits``
    counts the ``\\d`` characters in the window's clusters, which are all the
    digits in it (a margin never reaches a digit outside the window).
    Detectors that need more digits than a window has skip it."""
    # Runs closer than WINDOW_GAP merge into a cluster and clusters closer
    # than WINDOW_LEFT + WINDOW_RIGHT merge into a window, and the second
    # bound is the larger: a window is a maximal sequence of digit runs with
    # gaps of at most WINDOW_LEFT + WINDOW_RIGHT characters, which one regex
    # finds (tests/privacy/test_redact_fast.py checks it against the
    # run-by-run merge this replaced).
    n = len(text)
    sub = _NON_DIGIT.sub
    return [
        (max(0, m.start() - WINDOW_LEFT), min(n, m.end() + WINDOW_RIGHT), len(sub("", m.group())))
        for m in _DIGIT_WINDOW.finditer(text)
    ]


assert WINDOW_GAP <= WINDOW_LEFT + WINDOW_RIGHT
# A digit run, then more runs each after at most LEFT + RIGHT non-digits.
# Linear: \d and \D are disjoint, so each repetition backtracks at most
# LEFT + RIGHT characters before giving up.
_DIGIT_WINDOW = re.compile(rf"\d+(?:\D{{1,{WINDOW_LEFT + WINDOW_RIGHT}}}\d+)*")
_NON_DIGIT = re.compile(r"\D+")


def window_digits_end(text: str, hi: int) -> int:
    """For a window (lo, hi, _) of ``digit_windows(text)``: a bound after its
    last digit. Unless cut at the end of the text, a window ends
    ``WINDOW_RIGHT`` characters after its last digit, and no digit lies in
    between (it would belong to the window). A detector whose matches start
    at or before a digit stops searching there (the search after the last
    match then costs nothing)."""
    return hi - WINDOW_RIGHT if hi < len(text) else hi


# Fewest \d characters a match of each number detector holds (see the
# patterns): a window with fewer cannot hold one.
MIN_DIGITS_CARD = 12
MIN_DIGITS_SSN = 9
MIN_DIGITS_NATIONAL_ID = 6  # NINO; SIN 9, Aadhaar 12
MIN_DIGITS_PHONE = 7  # _phone_candidate_ok


def find_emails(text: str):
    """Yield (start, end) of email addresses."""
    pos = text.find("@")
    while pos != -1:
        left = EMAIL_LOCAL_TAIL.search(text, max(0, pos - 64), pos)
        if left is not None:
            m = EMAIL_DOMAIN_HEAD.match(text, pos)
            if m is not None:
                start = left.start()
                # Local part may not start or end with a dot.
                while start < pos and text[start] in ".'":
                    start += 1
                if start < pos and text[pos - 1] != ".":
                    yield start, m.end()
        pos = text.find("@", pos + 1)


class Memo(dict):
    """Answers of a pure check per distinct token (a phone candidate, a card
    candidate). The stream stage scans the text around the cursor again at
    every word it holds back, so the same numbers are checked over and over;
    this makes each distinct token cost one check. Bounded: emptied when
    full, so memory stays small whatever the input."""

    __slots__ = ("limit",)

    def __init__(self, limit: int = 4096) -> None:
        super().__init__()
        self.limit = limit

    def store(self, key, value):
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


_CARD_OK = Memo()
_IBAN_OK = Memo()
_PHONE_OK = Memo()
_PHONE_SHAPES = Memo()
MEMOS = (_CARD_OK, _IBAN_OK, _PHONE_OK, _PHONE_SHAPES)


def clear_memos() -> None:
    """Forget every memoised answer (benchmarks measure cold runs with it)."""
    for memo in MEMOS:
        memo.clear()


def _card_ok(raw: str) -> bool:
    ok = _CARD_OK.get(raw)
    if ok is None:
        ok = _CARD_OK.store(raw, _card_ok_uncached(raw))
    return ok


def _card_ok_uncached(raw: str) -> bool:
    # Separators must be single: no "  ", "--" or mixed " -".
    if "  " in raw or "--" in raw or " -" in raw or "- " in raw:
        return False
    digits = raw.replace(" ", "").replace("-", "")
    return 12 <= len(digits) <= 19 and luhn_ok(digits) and len(set(digits)) > 1


def find_cards(text: str, lo: int = 0, hi: int | None = None, digits_end: int | None = None):
    """Yield (start, end) of Luhn-valid payment card numbers (12-19 digits).

    Numbers typed next to each other ("call 415 555 0132 4111 1111 1111
    1111") make one long candidate; when it fails, shorter group sequences
    ending earlier are tried, then the search resumes at the next digit
    group, so each group starts at most one candidate (linear work).
    ``digits_end``: no digit lies in [digits_end, hi) (see ``window_digits_end``).
    """
    pos, n = lo, len(text) if hi is None else hi
    stop = n if digits_end is None else digits_end
    budget = retry_budget(len(text))
    while pos < stop:  # a candidate starts with a digit
        m = CARD_CANDIDATE.search(text, pos, n)
        if m is None:
            return
        raw = m.group()
        if _card_ok(raw):
            yield m.start(), m.end()
            pos = m.end()
            continue
        if budget <= 0:
            pos = m.end()
            continue
        budget -= 1
        found = False
        for end in reversed(_group_ends(raw)):
            if _card_ok(raw[:end]):
                yield m.start(), m.start() + end
                pos, found = m.start() + end, True
                break
        if not found:
            pos = _next_group(text, m.start())


def retry_budget(text_length: int) -> int:
    """Failed candidates that may be re-split, per call on a text of this
    length: plenty for real text (the stream stage scans windows of a few
    hundred characters), small enough that a flood of digit groups cannot
    multiply the work."""
    return 32 + text_length // 1024


def _group_ends(raw: str) -> list[int]:
    """Offsets in ``raw`` where a digit group ends (before a separator or the end)."""
    return [g.end() for g in _GROUPS.finditer(raw)][:-1]


def _next_group(text: str, start: int) -> int:
    """Index of the digit group after the one at ``start``."""
    m = _NEXT_GROUP.search(text, start)
    return m.end() if m else len(text)


_NEXT_GROUP = re.compile(r"\d{1,64}[^\d]")


def find_ibans(text: str, lo: int = 0, hi: int | None = None):
    """Yield (start, end) of IBANs with a valid mod-97 checksum."""
    for m in IBAN_CANDIDATE.finditer(text, lo, len(text) if hi is None else hi):
        raw = m.group()
        ok = _IBAN_OK.get(raw)
        if ok is None:
            ok = _IBAN_OK.store(raw, iban_ok(raw))
        if ok:
            yield m.start(), m.end()


def find_ssns(text: str, lo: int = 0, hi: int | None = None):
    """Yield (start, end) of US social security numbers."""
    for m in SSN_PATTERN.finditer(text, lo, len(text) if hi is None else hi):
        yield m.start(), m.end()
    for m in SSN_CONTEXT.finditer(text, lo, len(text) if hi is None else hi):
        yield m.start(1), m.end(1)


def find_national_ids(text: str, lo: int = 0, hi: int | None = None):
    """Yield (start, end, kind) of UK NINOs, Luhn-valid Canadian SINs and
    Verhoeff-valid Aadhaar numbers. kind is "sin-phone-context" for a SIN-shaped
    number next to a phone word and no SIN word (see ``sin_reads_as_phone``),
    else "national-id"."""
    for m in NINO_PATTERN.finditer(text, lo, len(text) if hi is None else hi):
        if m.group(1).upper() not in NINO_EXCLUDED:
            yield m.start(), m.end(), "national-id"
    for m in SIN_PATTERN.finditer(text, lo, len(text) if hi is None else hi):
        if luhn_ok(m.group(1) + m.group(3) + m.group(4)):
            kind = "sin-phone-context" if sin_reads_as_phone(text, m.start(), m.end()) else "national-id"
            yield m.start(), m.end(), kind
    for m in AADHAAR_PATTERN.finditer(text, lo, len(text) if hi is None else hi):
        if verhoeff_ok(m.group(1) + m.group(3) + m.group(4)):
            yield m.start(), m.end(), "national-id"


SIN_CONTEXT = re.compile(r"(?i:\bsin\b|social insurance|insurance number|\bnas\b)")


def sin_reads_as_phone(text: str, start: int, end: int) -> bool:
    """A 3-3-3 digit group passes Luhn by chance one time in ten, and many
    9-digit phone numbers are written 3-3-3 (Spain, France without the
    trunk 0, Australia...). Next to a phone word and with no SIN word
    around, it is read as a phone number: the redactor then prefers PHONE
    when the phone detector accepts it (it stays redacted either way)."""
    lo, hi = max(0, start - PHONE_CONTEXT_CHARS), min(len(text), end + PHONE_CONTEXT_CHARS)
    return _phone_context(text, start, end) and SIN_CONTEXT.search(text, lo, hi) is None


def find_ips(text: str, lo: int = 0, hi: int | None = None):
    """Yield (start, end) of valid IPv4 and IPv6 addresses."""
    for m in IPV4_PATTERN.finditer(text, lo, len(text) if hi is None else hi):
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        yield m.start(), m.end()
    if text.count(":", lo, len(text) if hi is None else hi) >= 2:
        for m in IPV6_CANDIDATE.finditer(text, lo, len(text) if hi is None else hi):
            cand = m.group().rstrip(".")
            if cand.count(":") < 2:
                continue
            try:
                ipaddress.IPv6Address(cand)
            except ValueError:
                continue
            yield m.start(), m.start() + len(cand)


def find_phones(
    text: str, regions=DEFAULT_PHONE_REGIONS, lo: int = 0, hi: int | None = None, words: bool = True,
    digits_end: int | None = None, view: bytes | None = None, compiled_decision: bool = True,
):
    """Yield (start, end) of phone numbers that ``phonenumbers`` accepts as
    possible in one of ``regions`` (or anywhere, when written with +).
    ``words=False`` says the text holds no PHONE_CONTEXT word (the
    prefilter knows), so the context search is skipped.

    As for cards, a candidate that fails (two numbers typed one after the
    other) is retried as its leading group sequences of at most 15 digits,
    longest first (at most ``_PHONE_RETRIES``), then the search resumes at
    the next group: each digit group costs a bounded number of validations.

    ``view``: ``numbers.compiled_view(text)`` (an ASCII text's bytes); the
    candidates and their shapes are then found in compiled code
    (``fastscan.phone_next``), with the same results; and with
    ``compiled_decision`` (and ``words``) the whole loop, the metadata
    decision included, runs compiled (``numbers._phone_loop`` with
    ``phonemeta``'s tables), back in Python only for the candidates it
    cannot decide (``+``, ``(0)``, extensions, answers that need parse).
    """
    pos, n = lo, len(text) if hi is None else hi
    stop = n if digits_end is None else digits_end
    budget = retry_budget(len(text))
    kernel = None
    if view is not None:
        if type(regions) is not tuple:
            regions = tuple(regions)
        fastscan = _late("fastscan")
        plain_mask, prefixes = fastscan.screen_arrays(regions)
        if compiled_decision and words:
            kernel = _late("numbers").kernel_for(regions)
    while pos < stop:  # a candidate holds a digit at or after its start
        if view is None:
            m = PHONE_CANDIDATE.search(text, pos, n)
            if m is None:
                return
            start, end, shape, screened = m.start(), m.end(), None, None
        else:
            if kernel is not None:
                # The whole loop in compiled code (numbers._phone_loop), back
                # here only for a candidate it leaves to Python.
                spans, stopped = kernel.phone_step(view, pos, n, stop, budget)
                for i in range(0, len(spans), 2):
                    yield spans[i], spans[i + 1]
                if stopped is None:
                    return
                pos, budget, hit = stopped
            else:
                # fastscan.phone_next, unpacked here: a call less per candidate
                hit = fastscan.PHONE_NEXT.call(view, pos, n, MIN_DIGITS_PHONE, plain_mask, prefixes)
                if hit < 0:
                    return
            start, end, shape = hit >> 36, (hit >> 4) & 0xFFFFFFFF, fastscan.SHAPES[hit & 3]
            rejected, screened = hit & 4, hit & 8
            if rejected:
                shape = _NOT_PHONE  # _phone_ok is False: the same answer
            elif screened:
                # The decision below skips the date and length tests already
                # passed, and takes the digits from the bytes (faster than
                # filtering the str).
                screened = view[start:end].translate(None, _NOT_DIGIT_BYTES).decode("ascii")
        raw = text[start:end]
        if _phone_candidate_ok(text, start, end, raw, regions, words, shape, view, screened or None):
            yield start, end
            pos = end
            continue
        if budget <= 0 or " " not in raw:
            # Out of retries (digit floods), or not two numbers side by side.
            pos = end
            continue
        budget -= 1
        found = False
        tries = 0
        for group_end in reversed(_group_ends(raw)):
            prefix = raw[:group_end].rstrip(" -./(")
            digits = sum(map(str.isdigit, prefix))
            if digits > 15:
                continue
            if digits < 7 or tries == _PHONE_RETRIES:
                break
            tries += 1
            if _phone_candidate_ok(text, start, start + len(prefix), prefix, regions, words, None, view):
                yield start, start + len(prefix)
                pos, found = start + group_end, True
                break
        if found:
            continue
        pos = _next_group(text, start)


_NOT_DIGIT_BYTES = bytes(c for c in range(256) if not 48 <= c <= 57)
_LATE: dict[str, object] = {}


def _late(name: str):
    """A sibling module that imports this one (fastscan, numbers), imported
    on first use and kept (an import statement per find_phones call cost
    ~1 us)."""
    module = _LATE.get(name)
    if module is None:
        module = _LATE[name] = importlib.import_module("." + name, __package__)
    return module


_PHONE_RETRIES = 3  # shorter group sequences tried per failed candidate (bounds parses per group)


def _phone_candidate_ok(
    text: str, start: int, end: int, raw: str, regions, words: bool = True, shape: str | None = None,
    view: bytes | None = None, screened: str | None = None,
) -> bool:
    """``shape``: ``_phone_shape(raw)``, when the caller has it; ``view``:
    ``numbers.compiled_view(text)`` (the phone word is then looked for in
    compiled code); ``screened``: raw's digits, given when fastscan found raw
    no date, without "+" and "(0)", and of a length some region has."""
    digits = screened
    if shape is None:
        shape = _PHONE_SHAPES.get(raw)
    if shape is None:
        # The digit string serves the shape and, below, the decision.
        digits = "".join(filter(str.isdigit, raw))
        shape = _PHONE_SHAPES.store(raw, _phone_shape(raw, digits))
    if shape is _NOT_PHONE:
        return False
    if shape is _NEEDS_WORD:
        if not words:
            return False
        # Both the phone word and the number must pass. The word search
        # depends on the text around and is not memoised; a number already
        # known not to be one answers without it.
        if _PHONE_OK.get((raw, regions if type(regions) is tuple else tuple(regions))) is False:
            return False
        if not _phone_context(text, start, end, view):
            return False
    return _phone_ok(raw, regions, digits=digits, screened=screened is not None)


_NOT_PHONE, _NEEDS_WORD, _PHONE_SHAPED = "not-phone", "needs-word", "phone-shaped"


def _phone_shape(raw: str, digit_string: str | None = None) -> str:
    """What ``raw`` alone says: too few or too many digits for a phone
    number, or short enough that it needs a phone word nearby, or neither.
    ``digit_string``: raw's digits, when the caller has them."""
    digits = sum(map(str.isdigit, raw)) if digit_string is None else len(digit_string)
    if digits < MIN_DIGITS_PHONE or digits > 17:
        return _NOT_PHONE
    # Short numbers (8 digits or fewer, no country code) look like house
    # numbers, postcodes and ids; they count only next to a phone word.
    # Three or more groups ("60-56-85-91") is a phone number's shape.
    if digits <= 8 and len(_GROUPS.findall(raw)) < 3 and not raw.startswith(("+", "(+")):
        return _NEEDS_WORD
    return _PHONE_SHAPED


PHONE_CONTEXT = re.compile(
    r"(?i:phone|tel|mobile|cell|call|fax|office|number|contact|reach|whatsapp|sms|text me|ph\b|☎|home|work"
    # Words for reaching someone by phone: (not) answering, dial, voicemail,
    # landline, hotline, (text) message. Not "answer" or "dial..." alone:
    # "the answer is 42", "dialog 1234".
    r"|answering|\bdial(?:l?ing|led|ed|s)?\b|voicemail|landline|hotline|message)"
)
PHONE_CONTEXT_CHARS = 40


def _phone_context(text: str, start: int, end: int, view: bytes | None = None) -> bool:
    lo, hi = max(0, start - PHONE_CONTEXT_CHARS), min(len(text), end + PHONE_CONTEXT_CHARS)
    if view is not None:  # a compiled view: fastscan.has_phone_context, the same answer
        return _late("fastscan").has_phone_context(view, lo, hi)
    return PHONE_CONTEXT.search(text, lo, hi) is not None


def _region_lengths(region: str) -> tuple[str, frozenset[int]]:
    """National prefix and possible national-number lengths from phonenumbers' metadata."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None:
        raise ValueError(f"unknown phone region {region!r}")
    desc = meta.general_desc
    lengths = set(desc.possible_length or ()) | set(desc.possible_length_local_only or ())
    return meta.national_prefix or "", frozenset(lengths)


_REGION_CACHE: dict[str, tuple[str, frozenset[int]]] = {}

# Dates look like phone numbers to a length check; they are not phone numbers.
_DATE_LIKE = re.compile(
    r"(?:19|20)\d\d([\-./])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])(?!\d)"
    r"|(?:0?[1-9]|[12]\d|3[01])([\-./])(?:0?[1-9]|1[0-2])\2(?:19|20)?\d\d(?!\d)"
    r"|(?:0?[1-9]|1[0-2])([\-./])(?:0?[1-9]|[12]\d|3[01])\3(?:19|20)?\d\d(?!\d)"
)
_GROUPS = re.compile(r"\d{1,6}")


# Candidates the metadata decision below may handle: ASCII digits and the
# separators phonenumbers ignores, optionally after "+" or "(+", optionally
# followed by an extension written as PHONE_CANDIDATE writes one (with
# ASCII spaces).
_PLAIN = re.compile(r"[0-9 \-.()/]{1,64}")
_PLAIN_PLUS = re.compile(r"\(?\+[0-9 \-.()/]{1,64}")
_PLAIN_EXTENSION = re.compile(r"(\(?\+?[0-9 \-.()/]{0,64}[0-9]) {0,2}(?:x|ext\.?|#) {0,2}[0-9]{1,6}")

# phonenumbers' ValidationResult, as its _test_number_length returns it.
_IS_POSSIBLE, _IS_POSSIBLE_LOCAL_ONLY, _TOO_SHORT, _TOO_LONG, _INVALID_LENGTH = range(5)
_POSSIBLE = (_IS_POSSIBLE, _IS_POSSIBLE_LOCAL_ONLY)
_KEEP_NATIONAL_PREFIX = (_TOO_SHORT, _IS_POSSIBLE_LOCAL_ONLY, _INVALID_LENGTH)
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' _MIN_LENGTH_FOR_NSN, _MAX_LENGTH_FOR_NSN


class _ParseRule:
    """``phonenumbers.is_possible_number(phonenumbers.parse(d, region))`` for
    a plain ASCII digit string ``d``, without parse: the same steps on the
    same metadata (the international prefix, then the country code and the
    national prefix, each kept only where parse keeps it, then the length
    tests). parse costs ~25 us, this a few regex calls. None where these
    steps stop short (a national prefix transform rule, as Brazil's): parse
    decides. tests/privacy/test_redact_phone_fast.py checks it against parse
    on random digit strings built from each region's own prefixes."""

    __slots__ = ("cc", "cc_str", "idd", "npfp", "transform", "nnp", "lengths", "local")

    def __init__(self, meta) -> None:
        desc = meta.general_desc
        self.cc = meta.country_code
        self.cc_str = str(meta.country_code)
        # parse matches a never-matching pattern when there is no prefix.
        self.idd = re.compile(meta.international_prefix).match if meta.international_prefix is not None else None
        self.npfp = re.compile(meta.national_prefix_for_parsing).match if meta.national_prefix_for_parsing else None
        self.transform = bool(meta.national_prefix_transform_rule)
        self.nnp = re.compile(desc.national_number_pattern).fullmatch if desc.national_number_pattern else None
        self.lengths = tuple(desc.possible_length)
        self.local = frozenset(desc.possible_length_local_only or ())

    def _viable(self, number: str) -> bool:
        # phonenumbers' _match_national_number(number, general_desc, False)
        return self.nnp is not None and self.nnp(number) is not None

    def length(self, n: int) -> int:
        """phonenumbers' _test_number_length for a number of n digits."""
        if n in self.local:
            return _IS_POSSIBLE_LOCAL_ONLY
        lengths = self.lengths
        if lengths[0] == n:
            return _IS_POSSIBLE
        if lengths[0] > n:
            return _TOO_SHORT
        if lengths[-1] < n:
            return _TOO_LONG
        return _IS_POSSIBLE if n in lengths[1:] else _INVALID_LENGTH

    def strip_national_prefix(self, number: str) -> str | None:
        """phonenumbers' _maybe_strip_national_prefix_carrier_code (the
        number it returns), or None where it applies a transform rule."""
        if not number or self.npfp is None:
            return number
        m = self.npfp(number)
        if m is None:
            return number
        if self.transform:
            groups = m.re.groups
            if groups == 0 or m.group(groups) is not None:
                return None
        stripped = number[m.end() :]
        if self._viable(number) and not self._viable(stripped):
            return number
        return stripped

    def national(self, digits: str):
        """parse(digits, this region) is a possible number: True, False,
        _PARSE_ERROR (parse raises) or None (ask parse)."""
        if len(digits) < 3:
            return None  # parse's viability test: two digits only when not separated
        if self.idd is not None:
            m = self.idd(digits)
            # parse strips the prefix unless a 0 follows (no country code starts with 0).
            if m is not None and digits[m.end() : m.end() + 1] != "0":
                rest = digits[m.end() :]
                if len(rest) <= _MIN_NSN:
                    return _PARSE_ERROR  # too short after the international prefix
                cc, nsn = _country_code(rest)
                if cc == 0:
                    return _PARSE_ERROR  # an unknown country code after the prefix
                # parse reads the rest with the country code's main region
                # (this region's own metadata when it is that region).
                main = _main_rule(cc)
                return None if main is None else _finish(nsn, main, main)
        main = _main_rule(self.cc)
        if main is None:
            return None
        nsn, meta = digits, self
        if digits.startswith(self.cc_str):
            # parse drops a leading country code of the region when the
            # number fits the region's pattern only without it, or is too long.
            without = self.strip_national_prefix(digits[len(self.cc_str) :])
            if without is None:
                return None
            if (not self._viable(digits) and self._viable(without)) or self.length(len(digits)) == _TOO_LONG:
                nsn, meta = without, main
        return _finish(nsn, meta, main)

    def after_country_code(self, nsn: str):
        """parse("+<country code>" + nsn) is a possible number (this rule is
        the country code's main region), as ``national`` answers."""
        return _finish(nsn, self, self)


_PARSE_ERROR = "parse-error"  # parse raises NumberParseException (the caller tries the next form)


def _finish(nsn: str, meta: _ParseRule, main: _ParseRule):
    # The end of parse (national prefix, kept when the rest would be too
    # short or of an impossible length; the length cap) and is_possible_number
    # (the length test of the country code's main region). True, False,
    # _PARSE_ERROR, or None (ask parse).
    if len(nsn) < _MIN_NSN:
        return _PARSE_ERROR
    stripped = meta.strip_national_prefix(nsn)
    if stripped is None:
        return None
    if meta.length(len(stripped)) not in _KEEP_NATIONAL_PREFIX:
        nsn = stripped
    if len(nsn) > _MAX_NSN:
        return _PARSE_ERROR
    return main.length(len(nsn)) in _POSSIBLE


def _country_code(digits: str) -> tuple[int, str]:
    """phonenumbers' _extract_country_code: the leading 1-3 digits that are a
    country code, and the rest; (0, digits) when none is."""
    if not digits or digits[0] == "0":
        return 0, digits
    for i in range(1, min(len(digits), 3) + 1):
        cc = int(digits[:i])
        if cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return cc, digits[i:]
    return 0, digits


_PARSE_RULES: dict[object, _ParseRule | None] = {}


def _region_rule(region: str) -> _ParseRule | None:
    rule = _PARSE_RULES.get(region, False)
    if rule is False:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        rule = _PARSE_RULES[region] = _ParseRule(meta) if meta is not None else None
    return rule


def _main_rule(cc: int) -> _ParseRule | None:
    """The rule of the country code's main region (whose lengths
    is_possible_number tests, and whose metadata parse uses after a country
    code that is not the default region's)."""
    rule = _PARSE_RULES.get(cc, False)
    if rule is False:
        region = phonenumbers.region_code_for_country_code(cc)
        meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
        rule = _PARSE_RULES[cc] = _ParseRule(meta) if meta is not None else None
    return rule


def _plus_fast(cand: str):
    """is_possible_number(parse(cand, None)) for "+<digits>" without parse:
    True, False, _PARSE_ERROR or None (ask parse)."""
    if _PLAIN_PLUS.fullmatch(cand) is None:
        return None
    digits = "".join(filter(str.isdigit, cand))
    if len(digits) <= _MIN_NSN:
        return None
    cc, nsn = _country_code(digits)
    if cc == 0:
        return None
    rule = _main_rule(cc)
    return None if rule is None else rule.after_country_code(nsn)


_LENGTH_SCREENS: dict[tuple, tuple[frozenset[int], tuple[tuple[str, frozenset[int]], ...]]] = {}


def _length_fits_some_region(digits: str, regions) -> bool:
    """The region loop's length test for all regions at once: the digit count
    is a possible length somewhere, or is one once a region's national
    prefix it starts with is dropped (a card's 16 digits fit no region)."""
    if not isinstance(regions, tuple):
        regions = tuple(regions)
    screen = _LENGTH_SCREENS.get(regions) or _length_screen(regions)
    n = len(digits)
    if n in screen[0]:
        return True
    for prefix, lengths in screen[1]:  # a loop: a generator cost more than the test
        if n in lengths and digits.startswith(prefix):
            return True
    return False


def _length_screen(regions: tuple) -> tuple[frozenset[int], tuple[tuple[str, frozenset[int]], ...]]:
    """The possible lengths of ``regions`` (local-only ones too), and per
    national prefix the lengths of numbers written with it."""
    screen = _LENGTH_SCREENS.get(regions)
    if screen is None:
        plain: set[int] = set()
        prefixed: dict[str, set[int]] = {}
        for region in regions:
            info = _REGION_CACHE.get(region)
            if info is None:
                info = _REGION_CACHE[region] = _region_lengths(region)
            prefix, lengths = info
            plain |= lengths
            if prefix:
                prefixed.setdefault(prefix, set()).update(n + len(prefix) for n in lengths)
        screen = _LENGTH_SCREENS[regions] = (
            frozenset(plain), tuple((p, frozenset(ns)) for p, ns in prefixed.items())
        )
    return screen


def _phone_ok(raw: str, regions, fast: bool = True, digits: str | None = None, screened: bool = False) -> bool:
    """True when phonenumbers finds ``raw`` a possible number written with
    "+", or in one of ``regions``. ``fast=False`` always calls parse and
    skips the memo (the reference the metadata rules are tested against).
    ``digits``: raw's digit characters, when the caller has them."""
    if not fast:
        return _phone_ok_uncached(raw, regions, False)
    if type(regions) is not tuple:
        regions = tuple(regions)  # a memo key; policies pass tuples already
    key = (raw, regions)
    ok = _PHONE_OK.get(key)
    if ok is None:
        ok = _PHONE_OK.store(key, _phone_ok_uncached(raw, regions, True, digits, screened))
    return ok


def _phone_ok_uncached(
    raw: str, regions, fast: bool, raw_digits: str | None = None, screened: bool = False
) -> bool:
    # screened: raw is known no date and of a length some region has
    # (fastscan.phone_next ran both tests below).
    if not screened and _DATE_LIKE.match(raw):
        return False
    cands = [raw]
    # "+46 (0)8 ..." writes the trunk prefix in brackets; drop it for parsing.
    if "(0)" in raw:
        cands.append(raw.replace("(0)", ""))
    for cand in cands:
        # The fast decisions read the number without its extension, which
        # parse strips too (is_possible_number ignores it).
        ext = _PLAIN_EXTENSION.fullmatch(cand) if fast and ("x" in cand or "#" in cand) else None
        main = cand if ext is None else ext.group(1)
        if cand.lstrip("(").startswith("+"):
            decided = _plus_fast(main) if fast else None
            if decided is _PARSE_ERROR:
                continue
            if decided is not None:
                return decided
            try:
                return phonenumbers.is_possible_number(phonenumbers.parse(cand, None))
            except phonenumbers.NumberParseException:
                continue
        digits = raw_digits if cand is raw and raw_digits is not None else "".join(filter(str.isdigit, cand))
        if fast and not screened and not _length_fits_some_region(digits, regions):
            continue  # the loop below would skip every region
        plain = fast and _PLAIN.fullmatch(main) is not None
        main_digits = digits if main is cand else "".join(filter(str.isdigit, main))
        for region in regions:
            info = _REGION_CACHE.get(region)
            if info is None:
                info = _REGION_CACHE[region] = _region_lengths(region)
            prefix, lengths = info
            nsn = digits[len(prefix):] if prefix and digits.startswith(prefix) else digits
            # Only a length that fits the region is worth a full parse.
            if len(nsn) not in lengths and len(digits) not in lengths:
                continue
            if plain:
                rule = _PARSE_RULES.get(region, False)
                if rule is False:
                    rule = _region_rule(region)
                decided = rule.national(main_digits) if rule is not None else None
                if decided is True:
                    return True
                if decided is not None:
                    continue  # not possible here, or parse would raise
            try:
                num = phonenumbers.parse(cand, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_possible_number(num):
                return True
    return False

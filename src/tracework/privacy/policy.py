"""The app policy: which windows are recorded at all, and the policy file.

A :class:`Policy` says, per window (application name, title, URL), whether
it is recorded (``record_all`` mode: everything but the deny rules;
``allow_list`` mode: only what ``[allow]`` matches, minus the deny rules)
and holds the redactor's settings. :func:`load_policy` reads the built-in
``default_policy.toml`` and the optional policy file on top; it is the only
function in ``tracework.privacy`` that does I/O.

:class:`PolicyStage` is the first stage of the on-device pipeline. It follows
the focused window through ``FocusChange`` events. In a denied window:

* the ``FocusChange`` keeps its time, window id and geometry, gets
  ``denied=True`` and loses ``app``, ``title`` and ``url``;
* every ``KeyDown``/``KeyUp`` keeps only its time and sequence number: key
  code, key name, character and modifiers are removed, ``key_class`` is
  ``"other"`` (not letter/digit: a password's shape is secret too) and
  ``redacted`` names the reason (``PASSWORD`` for credential prompts and lock
  screens, ``DENIED_WINDOW`` for password managers and private windows);
* mouse, scroll and other events pass unchanged.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import msgspec

from ..errors import PolicyError
from ..events import Event, Transform
from ..events.model import FocusChange, KeyDown, KeyUp
from .redact import DETECTORS, CustomRule, Redactor

RECORD_ALL = "record_all"
ALLOW_LIST = "allow_list"
DENIED_WINDOW = "DENIED_WINDOW"
MAX_PATTERN_CHARS = 512
MAX_REPEAT = 1024
_PLACEHOLDER_RE = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")


@dataclass(frozen=True)
class DenyRule:
    """A category of denied windows and the placeholder its keys carry."""

    category: str
    placeholder: str
    apps: tuple[re.Pattern, ...] = ()
    titles: tuple[re.Pattern, ...] = ()
    urls: tuple[re.Pattern, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The policy's verdict on one window."""

    allowed: bool
    category: str | None = None  # deny category (or "not_allowed" in allow_list mode)
    placeholder: str | None = None


ALLOWED = Decision(True)


@dataclass(frozen=True)
class Policy:
    """A resolved privacy policy (built-in defaults plus the policy file)."""

    mode: str = RECORD_ALL
    hold_timeout_ms: int = 3000
    deny: tuple[DenyRule, ...] = ()
    allow_apps: tuple[re.Pattern, ...] = ()
    allow_titles: tuple[re.Pattern, ...] = ()
    allow_urls: tuple[re.Pattern, ...] = ()
    disabled: frozenset[str] = frozenset()
    allow_values: frozenset[str] = frozenset()
    allow_patterns: tuple[re.Pattern, ...] = ()
    custom_rules: tuple[CustomRule, ...] = ()
    phone_regions: tuple[str, ...] = ()
    # The [anonymizer] tables (typing, cursor), validated at load; read by
    # tracework.privacy.anonymize_stage (keys in docs/privacy-anonymization.md).
    anonymizer: dict = field(default_factory=dict, hash=False)
    source: str = "built-in"

    def decide(self, app: str | None, title: str | None, url: str | None) -> Decision:
        """Whether a window with this app name, title and URL is recorded."""
        app_s, title_s, url_s = app or "", title or "", url or ""
        allow_hit = (
            any(p.fullmatch(app_s) for p in self.allow_apps)
            or any(p.search(title_s) for p in self.allow_titles)
            or any(p.search(url_s) for p in self.allow_urls)
        )
        for rule in self.deny:
            if app_s and any(p.fullmatch(app_s) for p in rule.apps):
                return Decision(False, rule.category, rule.placeholder)
        for rule in self.deny:
            if allow_hit and self.mode == RECORD_ALL:
                break  # an explicit allow entry overrides title and URL rules
            if (title_s and any(p.search(title_s) for p in rule.titles)) or (
                url_s and any(p.search(url_s) for p in rule.urls)
            ):
                return Decision(False, rule.category, rule.placeholder)
        if self.mode == ALLOW_LIST and not allow_hit:
            return Decision(False, "not_allowed", DENIED_WINDOW)
        return ALLOWED

    def redactor(self) -> Redactor:
        """The text redactor this policy configures."""
        kwargs: dict[str, Any] = dict(
            disabled=self.disabled,
            allow_values=self.allow_values,
            allow_patterns=self.allow_patterns,
            custom_rules=self.custom_rules,
        )
        if self.phone_regions:
            kwargs["phone_regions"] = self.phone_regions
        return Redactor(**kwargs)


# -- loading ---------------------------------------------------------------

def default_policy_text() -> str:
    """The built-in policy file's text."""
    return resources.files("tracework.privacy").joinpath("default_policy.toml").read_text()


_DEFAULT: Policy | None = None


def default_policy() -> Policy:
    """The built-in policy (parsed once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = parse_policy({}, source="built-in")
    return _DEFAULT


def load_policy(path: str | Path | None = None) -> Policy:
    """Read the policy file at ``path`` (None or "" = built-in defaults only).

    Raises :class:`PolicyError` naming the file and the bad key when the file
    is missing, not TOML, or has a bad value.
    """
    if not path:
        return default_policy()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {p}: {exc.strerror}", hint="check agent.policy_file") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"policy file {p} is not valid TOML: {exc}", hint="fix the file; see docs/privacy-redaction.md") from None
    return parse_policy(data, source=str(p))


_TOP_KEYS = {"mode", "hold_timeout_ms", "deny", "allow", "redaction", "anonymizer", "inherit_defaults"}
_DENY_KEYS = {"placeholder", "apps", "titles", "urls"}
_LIST_KEYS = {"apps", "titles", "urls"}
_REDACTION_KEYS = {"disabled", "allow_values", "allow_patterns", "phone_regions", "custom"}


def parse_policy(data: dict, *, source: str = "<policy>") -> Policy:
    """Build a :class:`Policy` from a parsed policy file merged onto the defaults."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy must be a table", hint="see docs/privacy-redaction.md")
    _check_keys(data, _TOP_KEYS, source, "")
    inherit = data.get("inherit_defaults", True)
    if not isinstance(inherit, bool):
        raise PolicyError(f"{source}: inherit_defaults must be true or false")
    base = tomllib.loads(default_policy_text()) if inherit else {}
    merged = _merge(base, data)

    mode = merged.get("mode", RECORD_ALL)
    if mode not in (RECORD_ALL, ALLOW_LIST):
        raise PolicyError(f"{source}: mode must be {RECORD_ALL!r} or {ALLOW_LIST!r}, got {mode!r}")
    timeout = merged.get("hold_timeout_ms", 3000)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 100 <= timeout <= 60000:
        raise PolicyError(f"{source}: hold_timeout_ms must be an integer from 100 to 60000, got {timeout!r}")

    deny: list[DenyRule] = []
    deny_tables = merged.get("deny", {})
    if not isinstance(deny_tables, dict):
        raise PolicyError(f"{source}: [deny] must be a table of categories")
    for category, table in deny_tables.items():
        where = f"deny.{category}"
        if not isinstance(table, dict):
            raise PolicyError(f"{source}: [{where}] must be a table")
        _check_keys(table, _DENY_KEYS, source, where + ".")
        placeholder = table.get("placeholder", DENIED_WINDOW)
        if not isinstance(placeholder, str) or not _PLACEHOLDER_RE.match(placeholder):
            raise PolicyError(f"{source}: {where}.placeholder must be an upper-case name like PASSWORD, got {placeholder!r}")
        deny.append(
            DenyRule(
                category=category,
                placeholder=placeholder,
                apps=_patterns(table.get("apps", []), source, where + ".apps"),
                titles=_patterns(table.get("titles", []), source, where + ".titles"),
                urls=_patterns(table.get("urls", []), source, where + ".urls"),
            )
        )
    allow = merged.get("allow", {})
    if not isinstance(allow, dict):
        raise PolicyError(f"{source}: [allow] must be a table")
    _check_keys(allow, _LIST_KEYS, source, "allow.")

    red = merged.get("redaction", {})
    if not isinstance(red, dict):
        raise PolicyError(f"{source}: [redaction] must be a table")
    _check_keys(red, _REDACTION_KEYS, source, "redaction.")
    disabled = _strings(red.get("disabled", []), source, "redaction.disabled")
    unknown = set(disabled) - set(DETECTORS)
    if unknown:
        raise PolicyError(
            f"{source}: redaction.disabled names unknown detectors {sorted(unknown)}",
            hint=f"known detectors: {', '.join(DETECTORS)}",
        )
    regions = _strings(red.get("phone_regions", []), source, "redaction.phone_regions")
    import phonenumbers  # local: only needed to validate region codes

    bad_regions = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if bad_regions:
        raise PolicyError(f"{source}: redaction.phone_regions has unknown regions {bad_regions}", hint="use ISO 3166 codes like US, GB, DE")
    custom: list[CustomRule] = []
    custom_raw = red.get("custom", [])
    if not isinstance(custom_raw, list):
        raise PolicyError(f"{source}: redaction.custom must be a list of tables")
    for i, entry in enumerate(custom_raw):
        where = f"redaction.custom[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"name", "pattern"}:
            raise PolicyError(f"{source}: {where} must have exactly `name` and `pattern`")
        name = entry["name"]
        if not isinstance(name, str) or not _PLACEHOLDER_RE.match(name):
            raise PolicyError(f"{source}: {where}.name must be an upper-case name like EMPLOYEE_ID, got {name!r}")
        custom.append(CustomRule(name, _compile(entry["pattern"], source, where + ".pattern", case_insensitive=False)))

    anonymizer = merged.get("anonymizer", {})
    _check_anonymizer(anonymizer, source)

    return Policy(
        mode=mode,
        hold_timeout_ms=timeout,
        deny=tuple(deny),
        allow_apps=_patterns(allow.get("apps", []), source, "allow.apps"),
        allow_titles=_patterns(allow.get("titles", []), source, "allow.titles"),
        allow_urls=_patterns(allow.get("urls", []), source, "allow.urls"),
        disabled=frozenset(disabled),
        allow_values=frozenset(_strings(red.get("allow_values", []), source, "redaction.allow_values")),
        allow_patterns=_patterns(red.get("allow_patterns", []), source, "redaction.allow_patterns", strict=True),
        custom_rules=tuple(custom),
        phone_regions=tuple(regions),
        anonymizer=anonymizer,
        source=source,
    )


def _check_anonymizer(section: Any, source: str) -> None:
    """Build both anonymizer stages from ``section`` once, so a bad key, type
    or value fails when the policy is loaded, not when capture starts."""
    from .anonymize_stage import make_cursor_stage, make_typing_stage

    try:
        make_typing_stage({"anonymizer": section})
        make_cursor_stage({"anonymizer": section})
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc.message}",
                          hint=getattr(exc, "hint", None) or "see docs/privacy-anonymization.md") from None


def _merge(base: dict, override: dict) -> dict:
    """Tables merge key by key; lists are concatenated (defaults first);
    scalars from the override win."""
    out = dict(base)
    for key, value in override.items():
        if key == "inherit_defaults":
            continue
        if key in out and isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value)
        elif key in out and isinstance(out[key], list) and isinstance(value, list):
            out[key] = out[key] + value
        else:
            out[key] = value
    return out


def _check_keys(table: dict, allowed: set[str], source: str, prefix: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise PolicyError(
            f"{source}: unknown policy keys {sorted(prefix + k for k in unknown)}",
            hint=f"allowed here: {', '.join(sorted(allowed))}; see docs/privacy-redaction.md",
        )


def _strings(value: Any, source: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{source}: {where} must be a list of strings")
    return value


def _patterns(value: Any, source: str, where: str, *, strict: bool = False) -> tuple[re.Pattern, ...]:
    return tuple(_compile(p, source, f"{where}[{i}]", strict=strict) for i, p in enumerate(_strings(value, source, where)))


def _compile(pattern: Any, source: str, where: str, *, case_insensitive: bool = True, strict: bool = True) -> re.Pattern:
    """Compile a policy regex. Window patterns (``strict=False``) only ever
    see an app name, title or URL (at most 2048 characters), so a single
    unbounded repeat is fine there; redaction patterns run over typed text
    and must be bounded. Nested repeats are refused everywhere."""
    if not isinstance(pattern, str) or not pattern:
        raise PolicyError(f"{source}: {where} must be a non-empty string")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PolicyError(f"{source}: {where} is longer than {MAX_PATTERN_CHARS} characters")
    try:
        compiled = re.compile(pattern, re.IGNORECASE if case_insensitive else 0)
    except re.error as exc:
        raise PolicyError(f"{source}: {where} is not a valid regular expression: {exc}") from None
    problem = regex_safety_problem(pattern, allow_unbounded=not strict)
    if problem:
        raise PolicyError(f"{source}: {where} {pattern!r} is unsafe: {problem}", hint="use bounded repeats like {1,64} and no repeat inside a repeat")
    return compiled


def regex_safety_problem(pattern: str, *, allow_unbounded: bool = False) -> str | None:
    """Why ``pattern`` could take super-linear time in Python's backtracking
    engine, or None. Rejects unbounded repeats (``+``, ``*``, ``{n,}``) over
    anything but a single literal character, repeats above ``MAX_REPEAT``,
    and repeats nested inside repeats (the shape of catastrophic backtracking)."""
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]

    repeats = {c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT)}

    def walk(items, depth: int) -> str | None:
        for op, arg in items:
            if op in repeats:
                lo, hi, sub = arg
                if hi == c.MAXREPEAT:
                    single_literal = len(sub) == 1 and sub[0][0] == c.LITERAL
                    if (not single_literal and not allow_unbounded) or depth > 0:
                        return "unbounded repeat (+, * or {n,})"
                elif hi > MAX_REPEAT:
                    return f"repeat bound {hi} above {MAX_REPEAT}"
                if depth > 0 and hi > 1 and hi != 1:
                    return "a repeat inside a repeat"
                problem = walk(sub, depth + (1 if hi > 1 else 0))
                if problem:
                    return problem
            elif op == c.SUBPATTERN:
                problem = walk(arg[3], depth)
                if problem:
                    return problem
            elif op == c.BRANCH:
                for alt in arg[1]:
                    problem = walk(alt, depth)
                    if problem:
                        return problem
            elif op in (c.ASSERT, c.ASSERT_NOT):
                problem = walk(arg[1], depth)
                if problem:
                    return problem
            elif op == c.GROUPREF:
                return "back-references"
        return None

    return walk(sre_parse.parse(pattern), 0)


# -- the stage ---------------------------------------------------------------

class PolicyStage:
    """Pipeline stage 1: applies the app policy to the focused window."""

    def __init__(self, policy: Policy | None = None):
        self.policy = policy or default_policy()
        # Before any FocusChange the window is unknown: recorded in
        # record_all mode, denied in allow_list mode.
        self._current = ALLOWED if self.policy.mode == RECORD_ALL else Decision(False, "not_allowed", DENIED_WINDOW)
        self._typed_in_current = False
        self._counts: dict[str, int] = {}
        # Keys pressed in a denied window and not yet released: their release
        # is scrubbed too, even when focus has moved on in between.
        self._denied_down: dict[object, str] = {}

    def process(self, events: Sequence[Event], now_ns: int) -> list[Event]:
        """Rewrite focus and key events of denied windows (never holds events)."""
        out: list[Event] = []
        for ev in events:
            if isinstance(ev, FocusChange):
                self._current = self.policy.decide(ev.app, ev.title, ev.url)
                self._typed_in_current = False
                if not self._current.allowed:
                    ev = msgspec.structs.replace(ev, app=None, title=None, url=None, denied=True)
            elif isinstance(ev, (KeyDown, KeyUp)):
                key = ev.key_code if ev.key_code is not None else ev.key_sym
                placeholder = None
                if not self._current.allowed:
                    placeholder = self._current.placeholder or DENIED_WINDOW
                elif isinstance(ev, KeyUp) and key in self._denied_down:
                    placeholder = self._denied_down[key]
                if isinstance(ev, KeyUp):
                    self._denied_down.pop(key, None)
                if placeholder is not None:
                    if isinstance(ev, KeyDown):
                        self._denied_down[key] = placeholder
                        if len(self._denied_down) > 256:  # releases lost: do not grow without bound
                            self._denied_down.pop(next(iter(self._denied_down)))
                        if not self._typed_in_current:
                            # One count per visit to a denied window in which keys were typed.
                            self._typed_in_current = True
                            self._counts[placeholder] = self._counts.get(placeholder, 0) + 1
                    ev = msgspec.structs.replace(
                        ev, key_code=None, key_sym=None, char=None, modifiers=0, key_class="other", redacted=placeholder
                    )
            out.append(ev)
        return out

    def flush(self, now_ns: int) -> list[Event]:
        """Nothing is held."""
        return []

    def describe(self) -> Transform:
        """Name and parameters for the session's ``transforms``."""
        p = self.policy
        return Transform(
            name="app_policy",
            params={
                "mode": p.mode,
                "deny_categories": ",".join(r.category for r in p.deny),
                "allow_entries": len(p.allow_apps) + len(p.allow_titles) + len(p.allow_urls),
                # Only the file's name: a full path would carry the user's home folder.
                "source": Path(p.source).name[:200] if p.source != "built-in" else "built-in",
            },
        )

    def counts(self) -> dict[str, int]:
        """Typing visits to denied windows, by placeholder (since the stage started)."""
        return dict(self._counts)

    @property
    def current(self) -> Decision:
        """The verdict on the focused window."""
        return self._current


def make_stage(policy: Policy | None = None) -> PolicyStage:
    """Factory used by ``tracework.privacy.chain``."""
    return PolicyStage(policy)

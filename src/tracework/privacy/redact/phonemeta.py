"""phonenumbers' metadata decision for plain digit strings, as numba tables.

``pii._ParseRule.national`` answers "is ``parse(digits, region)`` a possible
number" with a few regex calls on phonenumbers' metadata per region: the
international prefix and the national prefix (``re.match``, whose match end
matters) and the national number pattern (``re.fullmatch``). Done in Python
for every phone candidate of a sentence, that decision and the calls around
it were a third of a pass over presidio-synth (BENCHMARKS.md). This module
turns the same metadata into tables a compiled loop reads:

- a ``re.fullmatch`` pattern over digits is a regular language: a DFA over
  the ten digits answers it exactly (``_dfa``);
- a ``re.match`` whose end is used (international and national prefix
  patterns) has a finite language of short strings in the metadata of the
  regions we compile: listing its strings in the order ``re``'s
  backtracking tries them makes the first one that is a prefix of the input
  the match ``re`` returns (``_ordered_strings``).

A pattern outside what these handle (an unbounded repeat in a prefix, a
lookaround, a very large language) makes its rule answer ``ASK``: the
caller then runs the Python decision, which runs parse where it must. So
does everything ``national`` leaves to parse (a national prefix transform
rule, as Brazil's, when its prefix matches) and the international-prefix
path (a number starting with the region's ``00`` or ``011``).

tests/privacy/test_redact_phone_tables.py checks the compiled decision
against ``phonenumbers.parse`` on random digit strings built from each
region's prefixes and example numbers.
"""

from __future__ import annotations

import re
from re import _constants as sre_c
from re import _parser as sre_parse

import numba
import numpy as np

from . import pii

# Answers of the compiled decision.
NO, YES, ASK = 0, 1, -1

_DIGITS = frozenset(range(48, 58))
_MAX_STRINGS = 512  # a prefix pattern with more strings than this is not compiled
_MAX_LITERAL = 24  # nor one with a longer string


class Unsupported(ValueError):
    """A pattern these tables do not express exactly."""


# ---------------------------------------------------------------- patterns


def _char_set(op, av) -> frozenset[int]:
    """The digits (ASCII codes) a one-character item matches."""
    if op is sre_c.LITERAL:
        return frozenset({av}) & _DIGITS
    if op is sre_c.NOT_LITERAL:
        return _DIGITS - {av}
    if op is sre_c.ANY:
        return _DIGITS
    if op is sre_c.IN:
        out: set[int] = set()
        negate = False
        for item_op, item_av in av:
            if item_op is sre_c.NEGATE:
                negate = True
            elif item_op is sre_c.LITERAL:
                out.add(item_av)
            elif item_op is sre_c.RANGE:
                out.update(range(item_av[0], item_av[1] + 1))
            elif item_op is sre_c.CATEGORY and item_av is sre_c.CATEGORY_DIGIT:
                out.update(_DIGITS)
            else:
                raise Unsupported(f"class item {item_op} {item_av}")
        return frozenset(_DIGITS - out if negate else out & _DIGITS)
    raise Unsupported(f"not a one-character item: {op}")


_ONE_CHAR = (sre_c.LITERAL, sre_c.NOT_LITERAL, sre_c.ANY, sre_c.IN)


def _parse(pattern: str):
    parsed = sre_parse.parse(pattern)
    if parsed.state.flags & ~(sre_c.SRE_FLAG_UNICODE):
        raise Unsupported(f"flags in {pattern!r}")
    return list(parsed)


def _ordered_strings(pattern: str) -> list[str]:
    """Every string ``pattern`` matches, in the order ``re``'s backtracking
    tries them: the first that is a prefix of a digit string is what
    ``re.match`` matches there. Only digit strings count (the input is
    one)."""
    count = [0]

    def seq(items, i):
        if i == len(items):
            yield ""
            return
        for head in item(items[i]):
            for tail in seq(items, i + 1):
                count[0] += 1
                if count[0] > 50 * _MAX_STRINGS:
                    raise Unsupported(f"too many strings in {pattern!r}")
                yield head + tail

    def item(node):
        op, av = node
        if op in _ONE_CHAR:
            yield from (chr(c) for c in sorted(_char_set(op, av)))
            # A class tries its members in pattern order; which member
            # matches does not depend on the order (one character, fixed
            # length), so sorted is the same first match.
        elif op is sre_c.BRANCH:
            for alt in av[1]:
                yield from seq(list(alt), 0)
        elif op is sre_c.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise Unsupported("inline flags")
            yield from seq(list(sub), 0)
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            lo, hi, sub = av
            if hi is sre_c.MAXREPEAT or hi > _MAX_LITERAL:
                raise Unsupported("unbounded repeat in a prefix pattern")
            yield from repeat(list(sub), lo, hi, op is sre_c.MAX_REPEAT, 0)
        else:
            raise Unsupported(f"{op} in {pattern!r}")

    def repeat(sub, lo, hi, greedy, done):
        # Greedy: another iteration before stopping; lazy: stopping first.
        if not greedy and done >= lo:
            yield ""
        if done < hi:
            for head in seq(sub, 0):
                if head == "":
                    raise Unsupported("a repeated item that can match nothing")
                for tail in repeat(sub, lo, hi, greedy, done + 1):
                    yield head + tail
        if greedy and done >= lo:
            yield ""

    out: list[str] = []
    seen: set[str] = set()
    for s in seq(_parse(pattern), 0):
        if s in seen:
            continue  # a later path to the same string is never the first
        seen.add(s)
        out.append(s)
        if len(out) > _MAX_STRINGS or len(s) > _MAX_LITERAL:
            raise Unsupported(f"{pattern!r} matches too many or too long strings")
    return out


class _Nfa:
    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.moves: list[list[tuple[frozenset[int], int]]] = []

    def state(self) -> int:
        self.eps.append([])
        self.moves.append([])
        return len(self.eps) - 1

    def build(self, items, start: int) -> int:
        """States for ``items`` from ``start``; returns the end state."""
        cur = start
        for op, av in items:
            if op in _ONE_CHAR:
                nxt = self.state()
                self.moves[cur].append((_char_set(op, av), nxt))
                cur = nxt
            elif op is sre_c.BRANCH:
                end = self.state()
                for alt in av[1]:
                    s = self.state()
                    self.eps[cur].append(s)
                    self.eps[self.build(list(alt), s)].append(end)
                cur = end
            elif op is sre_c.SUBPATTERN:
                if av[1] or av[2]:
                    raise Unsupported("inline flags")
                cur = self.build(list(av[3]), cur)
            elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None)):
                if op is not sre_c.MAX_REPEAT and op is not sre_c.MIN_REPEAT:
                    raise Unsupported("possessive repeat")
                lo, hi, sub = av
                sub = list(sub)
                for _ in range(lo):
                    cur = self.build(sub, cur)
                if hi is sre_c.MAXREPEAT:
                    loop = self.state()
                    self.eps[cur].append(loop)
                    self.eps[self.build(sub, loop)].append(loop)
                    cur = loop
                else:
                    end = self.state()
                    for _ in range(hi - lo):
                        self.eps[cur].append(end)
                        cur = self.build(sub, cur)
                    self.eps[cur].append(end)
                    cur = end
            else:
                raise Unsupported(f"{op} in a national number pattern")
        return cur

    def closure(self, states) -> frozenset[int]:
        out, todo = set(states), list(states)
        while todo:
            for t in self.eps[todo.pop()]:
                if t not in out:
                    out.add(t)
                    todo.append(t)
        return frozenset(out)


def _dfa(pattern: str) -> tuple[np.ndarray, np.ndarray]:
    """``re.fullmatch(pattern, s)`` for digit strings ``s`` as a DFA:
    transitions [state, digit] (-1: no match whatever follows) and the
    accepting states. State 0 is the start."""
    nfa = _Nfa()
    start = nfa.state()
    final = nfa.build(_parse(pattern), start)
    first = nfa.closure([start])
    index = {first: 0}
    order = [first]
    rows: list[list[int]] = []
    while len(rows) < len(order):
        current = order[len(rows)]
        row = []
        for digit in range(48, 58):
            nxt = nfa.closure([t for s in current for chars, t in nfa.moves[s] if digit in chars])
            if not nxt:
                row.append(-1)
                continue
            if nxt not in index:
                index[nxt] = len(order)
                order.append(nxt)
                if len(order) > 20000:
                    raise Unsupported(f"{pattern!r} needs too many DFA states")
            row.append(index[nxt])
        rows.append(row)
    return np.array(rows, np.int32).reshape(-1, 10), np.array([final in s for s in order], np.bool_)


# ------------------------------------------------------------------ tables

# Columns of a rule row (one pii._ParseRule).
(CC_LEN, CC0, CC1, CC2, IDD_KIND, IDD_FIRST, IDD_COUNT, NPFP_KIND, NPFP_FIRST, NPFP_COUNT, NNP,
 LEN_MASK, LEN_MIN, LEN_MAX, LOCAL_MASK, MAIN, USABLE, RULE_COLUMNS) = range(18)
# Columns of a region row (the region loop of pii._phone_ok_uncached).
R_PREFIX_LEN, R_PREFIX0, R_LENGTHS = 0, 1, 1 + 8
R_RULE = R_LENGTHS + 1
REGION_COLUMNS = R_RULE + 1
# A prefix pattern: absent (parse never matches it), listed (its strings in
# re's order), a DFA (whether it matches: a national prefix with a
# transform rule, where any match leaves the decision to parse), or not
# compiled.
_ABSENT, _LISTED, _MATCHES, _NOT_COMPILED = 0, 1, 2, -1


class Tables:
    """The decision's tables for one tuple of regions (``for_regions``)."""

    def __init__(self, regions: tuple[str, ...]) -> None:
        self.rules: list[list[int]] = []
        self.literals: list[str] = []
        self.trans_rows: list[np.ndarray] = []
        self.accept_rows: list[np.ndarray] = []
        self._rule_index: dict[int, int] = {}
        region_rows = []
        for region in regions:
            prefix, lengths = pii._REGION_CACHE.get(region) or pii._region_lengths(region)
            if len(prefix) > 8 or not prefix.isdigit() and prefix:
                raise Unsupported(f"national prefix {prefix!r}")
            row = [0] * REGION_COLUMNS
            row[R_PREFIX_LEN] = len(prefix)
            row[R_PREFIX0 : R_PREFIX0 + len(prefix)] = [ord(c) for c in prefix]
            row[R_LENGTHS] = sum(1 << k for k in lengths if k < 63)
            rule = pii._region_rule(region)
            row[R_RULE] = -1 if rule is None else self._rule(rule)
            region_rows.append(row)
        self.regions = np.array(region_rows, np.int64).reshape(-1, REGION_COLUMNS)
        self.rule_table = np.array(self.rules, np.int64).reshape(-1, RULE_COLUMNS)
        width = 1 + max([len(s) for s in self.literals], default=0)
        self.literal_table = np.zeros((max(1, len(self.literals)), width), np.uint8)
        for row, s in zip(self.literal_table, self.literals):
            row[0] = len(s)
            row[1 : 1 + len(s)] = list(s.encode("ascii"))
        if self.trans_rows:
            self.trans = np.concatenate(self.trans_rows)
            self.accept = np.concatenate(self.accept_rows)
        else:
            self.trans = np.full((1, 10), -1, np.int32)
            self.accept = np.zeros(1, np.bool_)

    def _matches(self, pattern: str) -> tuple[int, int, int]:
        try:
            return _MATCHES, self._add_dfa(pattern), 0
        except (Unsupported, re.error):
            return _NOT_COMPILED, 0, 0

    def _add_dfa(self, pattern: str) -> int:
        trans, accept = _dfa(pattern)
        base = sum(len(t) for t in self.trans_rows)
        self.trans_rows.append(np.where(trans >= 0, trans + base, -1).astype(np.int32))
        self.accept_rows.append(accept)
        return base

    def _listed(self, pattern: str | None) -> tuple[int, int, int]:
        if pattern is None:
            return _ABSENT, 0, 0
        try:
            strings = _ordered_strings(pattern)
        except (Unsupported, re.error):
            return _NOT_COMPILED, 0, 0
        first = len(self.literals)
        self.literals.extend(strings)
        return _LISTED, first, len(strings)

    def _rule(self, rule: "pii._ParseRule") -> int:
        """The row of ``rule`` (and of its country code's main rule)."""
        key = id(rule)
        if key in self._rule_index:
            return self._rule_index[key]
        index = self._rule_index[key] = len(self.rules)
        row = [0] * RULE_COLUMNS
        self.rules.append(row)
        cc = rule.cc_str
        row[CC_LEN] = len(cc)
        for k, c in enumerate(cc[:3]):
            row[CC0 + k] = ord(c)
        row[IDD_KIND], row[IDD_FIRST], row[IDD_COUNT] = self._listed(rule.idd.__self__.pattern if rule.idd else None)
        if rule.npfp is None:
            row[NPFP_KIND] = _ABSENT
        elif rule.transform:
            row[NPFP_KIND], row[NPFP_FIRST], row[NPFP_COUNT] = self._matches(rule.npfp.__self__.pattern)
        else:
            row[NPFP_KIND], row[NPFP_FIRST], row[NPFP_COUNT] = self._listed(rule.npfp.__self__.pattern)
        row[NNP] = -1  # no pattern: nothing is viable
        row[USABLE] = 1
        if rule.nnp is not None:
            try:
                row[NNP] = self._add_dfa(rule.nnp.__self__.pattern)
            except (Unsupported, re.error):
                row[USABLE] = 0  # the rule answers ASK
        if not rule.lengths or len(cc) > 3:
            row[USABLE] = 0
        else:
            row[LEN_MASK] = sum(1 << k for k in rule.lengths if k < 63)
            row[LEN_MIN], row[LEN_MAX] = rule.lengths[0], rule.lengths[-1]
            row[LOCAL_MASK] = sum(1 << k for k in rule.local if k < 63)
        main = pii._main_rule(rule.cc)
        row[MAIN] = -1 if main is None else self._rule(main)
        return index


    def packed(self, prefixes: np.ndarray) -> np.ndarray:
        """Every table (and the length screen's ``prefixes``) in one int64
        array, for a compiled caller: each array argument of a numba call
        costs a few hundred ns to unbox, more than a sentence's decisions.
        Layout: PACKED_HEADER values (offset, rows, columns per table, in
        PACKED_ORDER), then the tables' values."""
        parts = [prefixes, self.regions, self.rule_table, self.literal_table, self.trans, self.accept.reshape(-1, 1)]
        header = np.zeros(PACKED_HEADER, np.int64)
        offset = PACKED_HEADER
        for i, part in enumerate(parts):
            rows, cols = part.shape
            header[3 * i : 3 * i + 3] = offset, rows, cols
            offset += rows * cols
        return np.concatenate([header] + [np.ascontiguousarray(p, np.int64).ravel() for p in parts])


PACKED_ORDER = ("prefixes", "regions", "rules", "literals", "trans", "accept")
PACKED_HEADER = 3 * len(PACKED_ORDER)


@numba.njit(cache=True, nogil=True)
def unpack(packed, base, i):  # pragma: no cover - compiled
    """Table i of a packed array that starts at ``base`` (a view, no copy)."""
    offset = base + packed[base + 3 * i]
    rows = packed[base + 3 * i + 1]
    cols = packed[base + 3 * i + 2]
    return packed[offset : offset + rows * cols].reshape((rows, cols))


@numba.njit(cache=True, nogil=True)
def unpack_all(packed, base):  # pragma: no cover - compiled
    """The tables of a packed array, in PACKED_ORDER (accept as a vector)."""
    return (
        unpack(packed, base, 0), unpack(packed, base, 1), unpack(packed, base, 2), unpack(packed, base, 3),
        unpack(packed, base, 4), unpack(packed, base, 5)[:, 0],
    )


_TABLES: dict[tuple[str, ...], Tables | None] = {}


def for_regions(regions: tuple[str, ...]) -> Tables | None:
    """The tables of ``regions`` (built once per tuple), or None when a
    region's national prefix is not a short digit string."""
    if regions not in _TABLES:
        try:
            _TABLES[regions] = Tables(regions)
        except Unsupported:
            _TABLES[regions] = None
    return _TABLES[regions]


# ---------------------------------------------------------------- compiled
# pii._TOO_SHORT etc.: phonenumbers' ValidationResult.
_IS_POSSIBLE, _IS_POSSIBLE_LOCAL_ONLY, _TOO_SHORT, _TOO_LONG, _INVALID_LENGTH = range(5)
_STRIP_ASK = -2


@numba.njit(cache=True, nogil=True)
def _first_match(d, off, n, literals, first, count):  # pragma: no cover - compiled
    # re.match over d[off:n]: the end of the first listed string that is a
    # prefix there, or -1.
    for i in range(first, first + count):
        length = literals[i, 0]
        if off + length > n:
            continue
        ok = True
        for k in range(length):
            if d[off + k] != literals[i, 1 + k]:
                ok = False
                break
        if ok:
            return off + length
    return -1


@numba.njit(cache=True, nogil=True)
def _viable(d, off, n, rules, rule, trans, accept):  # pragma: no cover - compiled
    # _ParseRule._viable(d[off:n]): the national number pattern fullmatches.
    state = rules[rule, NNP]
    if state < 0:
        return False
    for i in range(off, n):
        state = trans[state, d[i] - 48]
        if state < 0:
            return False
    return accept[state]


@numba.njit(cache=True, nogil=True)
def _length(rules, rule, n):  # pragma: no cover - compiled
    # _ParseRule.length
    if (rules[rule, LOCAL_MASK] >> n) & 1:
        return _IS_POSSIBLE_LOCAL_ONLY
    if rules[rule, LEN_MIN] == n:
        return _IS_POSSIBLE
    if rules[rule, LEN_MIN] > n:
        return _TOO_SHORT
    if rules[rule, LEN_MAX] < n:
        return _TOO_LONG
    return _IS_POSSIBLE if (rules[rule, LEN_MASK] >> n) & 1 else _INVALID_LENGTH


@numba.njit(cache=True, nogil=True)
def _strip(d, off, n, rules, rule, literals, trans, accept):  # pragma: no cover - compiled
    # _ParseRule.strip_national_prefix(d[off:n]) as the offset where the
    # number it returns starts, or _STRIP_ASK where it would return None or
    # the pattern is not compiled.
    kind = rules[rule, NPFP_KIND]
    if off >= n or kind == _ABSENT:
        return off
    if kind == _MATCHES:
        # A transform rule: where the prefix matches, its capture groups
        # decide, and parse does; elsewhere the number is kept.
        state = rules[rule, NPFP_FIRST]
        if accept[state]:
            return _STRIP_ASK
        for i in range(off, n):
            state = trans[state, d[i] - 48]
            if state < 0:
                return off
            if accept[state]:
                return _STRIP_ASK
        return off
    if kind != _LISTED:
        return _STRIP_ASK
    end = _first_match(d, off, n, literals, rules[rule, NPFP_FIRST], rules[rule, NPFP_COUNT])
    if end < 0:
        return off
    if _viable(d, off, n, rules, rule, trans, accept) and not _viable(d, end, n, rules, rule, trans, accept):
        return off
    return end


@numba.njit(cache=True, nogil=True)
def _finish(d, off, n, rules, meta, main, literals, trans, accept):  # pragma: no cover - compiled
    # pii._finish: YES, NO (not possible, or parse raises) or ASK.
    if n - off < 2:
        return NO
    stripped = _strip(d, off, n, rules, meta, literals, trans, accept)
    if stripped == _STRIP_ASK:
        return ASK
    kept = _length(rules, meta, n - stripped)
    if not (kept == _TOO_SHORT or kept == _IS_POSSIBLE_LOCAL_ONLY or kept == _INVALID_LENGTH):
        off = stripped
    if n - off > 17:
        return NO
    result = _length(rules, main, n - off)
    return YES if result == _IS_POSSIBLE or result == _IS_POSSIBLE_LOCAL_ONLY else NO


@numba.njit(cache=True, nogil=True)
def _national(d, n, rules, rule, literals, trans, accept):  # pragma: no cover - compiled
    # _ParseRule.national(d[:n]): YES, NO or ASK.
    if n < 3 or not rules[rule, USABLE]:
        return ASK
    kind = rules[rule, IDD_KIND]
    if kind == _NOT_COMPILED:
        return ASK
    if kind == _LISTED:
        end = _first_match(d, 0, n, literals, rules[rule, IDD_FIRST], rules[rule, IDD_COUNT])
        if end >= 0 and not (end < n and d[end] == 48):
            return ASK  # after the international prefix: the country code's rules
    main = rules[rule, MAIN]
    if main < 0 or not rules[main, USABLE]:
        return ASK
    off = 0
    meta = rule
    cc_len = rules[rule, CC_LEN]
    leads = cc_len <= n
    for k in range(cc_len):
        if leads and d[k] != rules[rule, CC0 + k]:
            leads = False
    if leads:
        without = _strip(d, cc_len, n, rules, rule, literals, trans, accept)
        if without == _STRIP_ASK:
            return ASK
        if (
            not _viable(d, 0, n, rules, rule, trans, accept) and _viable(d, without, n, rules, rule, trans, accept)
        ) or _length(rules, rule, n) == _TOO_LONG:
            off = without
            meta = main
    return _finish(d, off, n, rules, meta, main, literals, trans, accept)


@numba.njit(cache=True, nogil=True)
def possible_in_regions(d, n, regions, rules, literals, trans, accept):  # pragma: no cover - compiled
    """The region loop of pii._phone_ok_uncached for the plain digit string
    d[:n] (ASCII codes), past its date and length screens: YES when some
    region finds it possible, else ASK when some region's answer needs
    parse, else NO. (The loop returns at the first YES; which region says
    so does not change the answer.)"""
    ask = False
    for r in range(regions.shape[0]):
        plen = regions[r, R_PREFIX_LEN]
        nsn = n
        if plen > 0 and plen <= n:
            starts = True
            for k in range(plen):
                if d[k] != regions[r, R_PREFIX0 + k]:
                    starts = False
                    break
            if starts:
                nsn = n - plen
        lengths = regions[r, R_LENGTHS]
        if not ((lengths >> nsn) & 1) and not ((lengths >> n) & 1):
            continue
        rule = regions[r, R_RULE]
        if rule < 0:
            ask = True
            continue
        answer = _national(d, n, rules, rule, literals, trans, accept)
        if answer == YES:
            return YES
        if answer == ASK:
            ask = True
    return ASK if ask else NO


def decide(digits: str, regions: tuple[str, ...]) -> int:
    """``possible_in_regions`` for a Python digit string (tests, tools)."""
    tables = for_regions(regions)
    if tables is None:
        return ASK
    d = np.frombuffer(digits.encode("ascii"), np.uint8)
    return possible_in_regions(
        d, len(digits), tables.regions, tables.rule_table, tables.literal_table, tables.trans, tables.accept
    )

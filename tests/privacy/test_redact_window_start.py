"""Detectors searched from inside a number window find what a search of the
whole text finds: the card search starts at the window's first digit (a
window not cut at the text's start begins WINDOW_LEFT characters before it)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracework.privacy.redact import CARD, Redactor, pii

CARDS = ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "4012888888881881"]
# Prose without digits; its last character is what the card pattern's
# lookbehind sees (letters, '-' and '+' block a match, spaces do not).
PROSE = st.text(alphabet="ab XY-+.:\n(é", max_size=90)


@st.composite
def card_texts(draw):
    number = draw(st.sampled_from(CARDS))
    sep = draw(st.sampled_from(["", " ", "-"]))
    written = sep.join(number[i : i + 4] for i in range(0, len(number), 4))
    return draw(PROSE) + written + draw(PROSE)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(card_texts())
def test_cards_found_from_the_window_as_in_the_whole_text(text):
    whole = list(pii.find_cards(text))
    for redactor in (Redactor(), Redactor(use_prefilter=False)):
        assert [(s.start, s.end) for s in redactor.find(text) if s.placeholder == CARD] == whole

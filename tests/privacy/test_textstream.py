"""Typed-text reconstruction: each editing key does to the text what it does
in a text field, and every character maps back to the key that typed it."""

from __future__ import annotations

from tracework.events.model import MOD_CTRL, MOD_SHIFT
from tracework.privacy.textstream import CONTEXT_BREAK, PASTE, TypedText, key_events_for_text, replay, typed_char


def keys(text: str):
    return [(ch, ch, MOD_SHIFT if ch.isupper() else 0) for ch in text]


K = lambda sym, mods=0: (sym, None, mods)  # noqa: E731


def test_plain_typing_and_special_keys():
    assert replay(keys("hello") + [K("space")] + keys("world") + [K("Return"), K("Tab")]) == "hello world\n\t"


def test_backspace_delete_and_arrows():
    seq = keys("abcd") + [K("BackSpace"), K("Left"), K("Left"), K("Delete")] + keys("X")
    # "abc" -> caret before "b" after two Lefts -> Delete removes "b" -> type X
    assert replay(seq) == "aXc"


def test_home_end_work_per_line():
    seq = keys("ab") + [K("Return")] + keys("cd") + [K("Home")] + keys("X") + [K("End")] + keys("Y")
    assert replay(seq) == "ab\nXcdY"


def test_shift_selection_replaced_by_typing_and_deleted_by_backspace():
    seq = keys("hello world") + [K("Left", MOD_SHIFT)] * 5 + keys("there")
    assert replay(seq) == "hello there"
    seq = keys("hello world") + [K("Home", MOD_SHIFT), K("BackSpace")] + keys("x")
    assert replay(seq) == "x"


def test_ctrl_backspace_deletes_a_word_and_ctrl_arrows_move_by_word():
    assert replay(keys("one two three") + [K("BackSpace", MOD_CTRL)]) == "one two "
    seq = keys("one two") + [K("Left", MOD_CTRL)] + keys("X")
    assert replay(seq) == "one Xtwo"
    assert replay(keys("one two") + [K("Home"), K("Delete", MOD_CTRL)]) == " two"


def test_ctrl_a_then_typing_replaces_all_and_ctrl_x_cuts():
    assert replay(keys("secret") + [K("a", MOD_CTRL)] + keys("new")) == "new"
    assert replay(keys("abc") + [K("Left", MOD_SHIFT), K("x", MOD_CTRL)]) == "ab"


def test_paste_is_marked_content_unknown():
    buf = TypedText()
    for k in keys("pw: ") + [K("v", MOD_CTRL)] + keys("!") + [K("Insert", MOD_SHIFT)]:
        buf.key_down(*k)
    assert buf.text() == f"pw: {PASTE}!{PASTE}"


def test_shortcuts_do_not_type_and_unknown_moves_break_context():
    buf = TypedText()
    assert buf.key_down("s", "s", MOD_CTRL) is None
    assert buf.text() == ""
    assert buf.key_down("Up", None, 0) == CONTEXT_BREAK
    assert buf.key_down("z", "z", MOD_CTRL) == CONTEXT_BREAK
    assert buf.key_down("Page_Down", None, 0) == CONTEXT_BREAK


def test_pynput_style_names_are_understood():
    assert replay(keys("ab") + [("Key.backspace", None, 0), ("Key.space", None, 0)] + keys("c")) == "a c"
    assert typed_char("Key.enter", None, 0) == "\n"


def test_cells_map_back_to_keys_and_deleted_cells_remember_their_neighbour():
    buf = TypedText()
    cells = [buf.key_down(ch, ch, 0) for ch in "abc"]
    assert [c.ch for c in buf.cells] == ["a", "b", "c"]
    assert buf.cells[1] is cells[1]
    buf.key_down("BackSpace", None, 0)
    assert buf.text() == "ab"
    dead = buf.graveyard[-1]
    assert dead is cells[2] and dead.deleted and dead.anchor is cells[1]


def test_before_delete_sees_the_text_with_the_deleted_characters():
    seen = []
    buf = TypedText()
    buf.before_delete = lambda s, e: seen.append((buf.text(), s, e))
    for k in keys("abc") + [K("BackSpace")]:
        buf.key_down(*k)
    assert seen == [("abc", 2, 3)]


def test_synthetic_key_events_replay_to_the_text():
    text = "Hello, World!\nsecond line\tend"
    events = key_events_for_text(text)
    downs = [e for e in events if type(e).__name__ == "KeyDown"]
    assert len(downs) == len(text)
    buf = TypedText()
    for e in downs:
        buf.key_down(e.key_sym, e.char, e.modifiers)
    assert buf.text() == text
    presses = [e for e in key_events_for_text("abc\b\bX") if type(e).__name__ == "KeyDown"]
    assert replay([(e.key_sym, e.char, e.modifiers) for e in presses]) == "aX"

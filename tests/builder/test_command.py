"""Differential test for the command column: the piecewise concatenation
(tracework.builder.actions.command_expr) equals the previous implementation,
one full string expression per action kind, kept here as the reference."""

from __future__ import annotations

import random

import polars as pl
from polars.testing import assert_series_equal

from tracework.builder.actions import command_expr

ACTIONS = ["click", "double_click", "triple_click", "right_click", "middle_click", "move", "drag", "scroll", "type", "press", "hotkey"]


def previous_command_expr() -> pl.Expr:
    """The command expression before it was built from pieces (one string expression per action kind)."""
    act = pl.col("action")
    xs = pl.col("x").cast(pl.String)
    ys = pl.col("y").cast(pl.String)
    at = pl.lit("(x=") + xs + pl.lit(", y=") + ys
    keys_repr = pl.col("keys").list.eval(pl.lit("'") + pl.element() + pl.lit("'")).list.join(", ")
    text_repr = pl.col("text").str.replace_all("\\", "\\\\", literal=True).str.replace_all("'", "\\'", literal=True).str.replace_all(
        "\n", "\\n", literal=True
    )
    amount = pl.col("scroll_amount").cast(pl.String)
    return (
        pl.when(act == "click")
        .then(pl.lit("pyautogui.click") + at + pl.lit(")"))
        .when(act == "double_click")
        .then(pl.lit("pyautogui.doubleClick") + at + pl.lit(")"))
        .when(act == "triple_click")
        .then(pl.lit("pyautogui.tripleClick") + at + pl.lit(")"))
        .when(act == "right_click")
        .then(pl.lit("pyautogui.rightClick") + at + pl.lit(")"))
        .when(act == "middle_click")
        .then(pl.lit("pyautogui.middleClick") + at + pl.lit(")"))
        .when(act == "move")
        .then(pl.lit("pyautogui.moveTo") + at + pl.lit(")"))
        .when(act == "drag")
        .then(
            pl.lit("pyautogui.moveTo")
            + at
            + pl.lit("); pyautogui.dragTo(x=")
            + pl.col("end_x").cast(pl.String)
            + pl.lit(", y=")
            + pl.col("end_y").cast(pl.String)
            + pl.lit(", button='")
            + pl.col("button")
            + pl.lit("')")
        )
        .when((act == "scroll") & pl.col("scroll_direction").is_in(["up", "down"]))
        .then(
            pl.lit("pyautogui.scroll(")
            + pl.when(pl.col("scroll_direction") == "down").then(pl.lit("-")).otherwise(pl.lit(""))
            + amount
            + pl.lit(", x=")
            + xs
            + pl.lit(", y=")
            + ys
            + pl.lit(")")
        )
        .when(act == "scroll")
        .then(
            pl.lit("pyautogui.hscroll(")
            + pl.when(pl.col("scroll_direction") == "left").then(pl.lit("-")).otherwise(pl.lit(""))
            + amount
            + pl.lit(", x=")
            + xs
            + pl.lit(", y=")
            + ys
            + pl.lit(")")
        )
        .when(act == "type")
        .then(pl.lit("pyautogui.write('") + text_repr + pl.lit("')"))
        .when(act == "press")
        .then(pl.lit("pyautogui.press(") + keys_repr + pl.lit(", presses=") + pl.col("presses").cast(pl.String) + pl.lit(")"))
        .otherwise(pl.lit("pyautogui.hotkey(") + keys_repr + pl.lit(")"))
    )


def _actions(seed: int, n: int = 400) -> pl.DataFrame:
    """Action rows as _finish leaves them, each field filled as its kind
    fills it, with missing values (null coordinates, keys, text) mixed in."""
    rng = random.Random(seed)

    def maybe(value, p_null=0.05):
        return None if rng.random() < p_null else value

    rows = []
    for _ in range(n):
        act = rng.choice(ACTIONS)
        text = "".join(rng.choice("ab 'x\\\n⟨EMAIL⟩") for _ in range(rng.randint(0, 8)))
        rows.append(
            {
                "action": act,
                "x": maybe(rng.randint(0, 4000)),
                "y": maybe(rng.randint(0, 3000)),
                "end_x": maybe(rng.randint(0, 4000)) if act == "drag" else None,
                "end_y": maybe(rng.randint(0, 3000)) if act == "drag" else None,
                "button": maybe(rng.choice(["left", "right", "middle"])) if act == "drag" else None,
                "scroll_direction": rng.choice(["up", "down", "left", "right"]) if act == "scroll" else None,
                "scroll_amount": maybe(rng.randint(1, 20)) if act == "scroll" else None,
                "text": maybe(text) if act == "type" else None,
                "keys": maybe(rng.sample(["ctrl", "shift", "alt", "c", "enter", "f5", "'"], rng.randint(1, 3))) if act in ("press", "hotkey") else None,
                "presses": maybe(rng.randint(1, 9)) if act == "press" else None,
            }
        )
    schema = {
        "action": pl.String, "x": pl.Int64, "y": pl.Int64, "end_x": pl.Int64, "end_y": pl.Int64, "button": pl.String,
        "scroll_direction": pl.String, "scroll_amount": pl.Int64, "text": pl.String, "keys": pl.List(pl.String), "presses": pl.UInt32,
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def test_command_equals_the_previous_expression():
    for seed in range(20):
        df = _actions(seed)
        new = df.select(command_expr().alias("command"))["command"]
        old = df.select(previous_command_expr().alias("command"))["command"]
        assert_series_equal(new, old)
        assert new.null_count() < df.height  # not vacuous: most commands are written


def test_command_examples():
    df = pl.DataFrame(
        {"action": ["scroll", "scroll", "drag"], "x": [10, 10, 1], "y": [20, 20, 2], "end_x": [None, None, 30], "end_y": [None, None, 40],
         "button": [None, None, "left"], "scroll_direction": ["down", "left", None], "scroll_amount": [3, 2, None], "text": [None] * 3,
         "keys": [None] * 3, "presses": [None] * 3},
        schema_overrides={"keys": pl.List(pl.String), "presses": pl.UInt32, "end_x": pl.Int64, "end_y": pl.Int64, "button": pl.String, "text": pl.String},
    )  # fmt: skip
    assert df.select(command_expr().alias("command"))["command"].to_list() == [
        "pyautogui.scroll(-3, x=10, y=20)",
        "pyautogui.hscroll(-2, x=10, y=20)",
        "pyautogui.moveTo(x=1, y=2); pyautogui.dragTo(x=30, y=40, button='left')",
    ]

"""What carries the typing attacker's accuracy: feature ablation and attacker views.

``evaluate`` in :mod:`typing_eval` gives one figure per anonymizer. This
module asks *why* that figure is what it is, on the features the attacker
(:class:`typing_eval.FeatureSpace`) computes:

* ablation: the attacker re-fitted with one feature group dropped, and with
  one group alone (same enrolment/test split, same classifier);
* attacker views, reported side by side because the issue's rules keep some
  features by design:

  - ``full``: every feature (the attacker of the benchmark table);
  - ``timing``: the keystroke-dynamics timing features only (per-key holds,
    digraph latencies, their quantiles, speed, rollover): the three
    text-habit ratios left out;
  - ``kept by the rules``: typing speed plus the text habits (backspace
    rate, shift/caps-lock rate, keystrokes per character). An anonymizer that
    keeps the text, the order of key presses and each sentence's speed
    within 5 % leaves these as they are, so this view is a floor for every
    such anonymizer;
  - ``speed`` and ``text habits`` alone;
  - ``rhythm``: the timing features with what the sentence's speed and text
    predict of them regressed out (a spline of speed, the text-habit ratios,
    the length and the counts of corrections and capitals, fitted on the
    enrolment data), i.e. the timing a re-timer is meant to remove. Not the
    issue's metric: an attacker is free to use speed and text too.

A timing feature adds identification beyond the floor only if ``full`` or
``timing`` beats ``kept by the rules``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .datasets import TypedSentence
from .typing_eval import (TEXT_HABIT_GROUPS, FeatureMatrices, IdResult, feature_groups, identify_features,
                          split_enrol_test)


@dataclass
class AblationRow:
    """Accuracy with one feature group dropped, and with that group alone."""

    group: str
    n_features: int
    dropped: IdResult
    alone: IdResult


def ablation(m: FeatureMatrices, classifier: str = "lda") -> list[AblationRow]:
    """Drop-one-group and keep-only-one-group accuracy for every feature group."""
    groups = feature_groups()
    every = list(range(m.xtr.shape[1]))
    rows = []
    for name, cols in groups.items():
        drop = set(cols)
        rows.append(AblationRow(name, len(cols), identify_features(m, classifier, [c for c in every if c not in drop]),
                                identify_features(m, classifier, cols)))
    return rows


def text_covariates(s: TypedSentence) -> list[float]:
    """What the text alone says about a sentence (identical before and after any re-timer)."""
    letters = s.letters
    n = len(letters)
    counts = [letters.count(k) for k in ("BKSP", "SHIFT", "CAPS_LOCK")]
    return [np.log(n), np.log(max(len(s.text), 1)), *(c / n for c in counts), *(float(c > 0) for c in counts)]


def rhythm_view(m: FeatureMatrices, people: dict[str, list[TypedSentence]], enrol: int = 10,
                classifier: str = "lda") -> IdResult:
    """Identification from timing features once speed and text are regressed out (see module docstring).

    ``people`` gives the text (the same for raw and anonymized data) in the
    order :func:`typing_eval.feature_matrices` used.
    """
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import SplineTransformer

    groups = feature_groups()
    text = [c for g in TEXT_HABIT_GROUPS for c in groups[g]]
    speed = groups["speed"]
    timing = [c for c in range(m.xtr.shape[1]) if c not in set(text + speed)]
    train, test = split_enrol_test(people, enrol)
    spline = SplineTransformer(n_knots=6, degree=3).fit(m.xtr[:, speed])

    def covariates(x, sentences):
        return np.hstack([spline.transform(x[:, speed]), x[:, text],
                          np.array([text_covariates(s) for s, _ in sentences])])

    ctr, cte = covariates(m.xtr, train), covariates(m.xte, test)
    reg = Ridge(alpha=1e-3).fit(ctr, m.xtr[:, timing])
    resid = FeatureMatrices(m.space, m.xtr[:, timing] - reg.predict(ctr), m.ytr,
                            m.xte[:, timing] - reg.predict(cte), m.yte)
    return identify_features(resid, classifier)


def attacker_views(m: FeatureMatrices, people: dict[str, list[TypedSentence]] | None = None,
                   classifier: str = "lda") -> dict[str, IdResult]:
    """Identification under each attacker view (see module docstring); ``rhythm`` needs ``people``."""
    groups = feature_groups()
    every = list(range(m.xtr.shape[1]))
    text = [c for g in TEXT_HABIT_GROUPS for c in groups[g]]
    views = {
        "full": identify_features(m, classifier),
        "timing": identify_features(m, classifier, [c for c in every if c not in set(text)]),
        "kept by the rules (speed + text habits)": identify_features(m, classifier, groups["speed"] + text),
        "speed": identify_features(m, classifier, groups["speed"]),
        "text habits": identify_features(m, classifier, text),
    }
    if people is not None:
        views["rhythm (timing beyond speed and text)"] = rhythm_view(m, people, classifier=classifier)
    return views


def ablation_table(title: str, rows: list[AblationRow], full: IdResult):
    """Rich table of an ablation (sentence and person top-1)."""
    from rich.table import Table

    t = Table(title=f"{title}: all features top-1 {100 * full.top1_sentence:.1f}% sentence / "
                    f"{100 * full.top1_person:.1f}% person (chance {100 * full.chance_top1:.2f}%)")
    for col in ("feature group", "features", "dropped: top-1 sent.", "dropped: top-1 person",
                "alone: top-1 sent.", "alone: top-1 person"):
        t.add_column(col, justify="left" if col == "feature group" else "right")
    for r in rows:
        t.add_row(r.group, str(r.n_features), f"{100 * r.dropped.top1_sentence:.1f}%",
                  f"{100 * r.dropped.top1_person:.1f}%", f"{100 * r.alone.top1_sentence:.1f}%",
                  f"{100 * r.alone.top1_person:.1f}%")
    return t


def views_table(title: str, views: dict[str, dict[str, IdResult]]):
    """Rich table: one row per attacker view, one column pair per dataset (raw, anonymized...)."""
    from rich.table import Table

    names = list(views)
    t = Table(title=title)
    t.add_column("attacker view", justify="left")
    for n in names:
        t.add_column(f"{n}: top-1 sent.", justify="right")
        t.add_column(f"{n}: top-1 person", justify="right")
    first = views[names[0]]
    for view in first:
        cells = []
        for n in names:
            r = views[n][view]
            cells += [f"{100 * r.top1_sentence:.1f}%", f"{100 * r.top1_person:.1f}%"]
        t.add_row(view, *cells)
    return t





def speed_noise_reference(base, sigma: float):
    """Anonymizer ``base`` followed by a random speed change per sentence (a reference, not shipped).

    Press-to-press gaps are stretched by ``exp(N(0, sigma))`` around the
    first press; holds are kept. Answers: if the 5 % speed-error budget were
    spent on hiding speed, how much would identification drop? ``sigma=0.065``
    gives a median speed error of about 4.4 %.
    """
    def run(s: TypedSentence, rng: np.random.Generator) -> TypedSentence:
        a = base(s, rng)
        f = float(np.exp(rng.normal(0.0, sigma)))
        t0 = float(a.press_ms.min())
        press = t0 + (a.press_ms - t0) * f
        return TypedSentence(a.person, a.sentence_id, a.text, a.letters, a.keycodes, press,
                             press + (a.release_ms - a.press_ms), a.ev_ks, a.ev_down)
    return run


__all__ = ["AblationRow", "ablation", "ablation_table", "attacker_views", "rhythm_view", "speed_noise_reference",
           "text_covariates", "views_table"]

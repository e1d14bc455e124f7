"""Redaction quality and speed, with Presidio's pattern recognizers as the
baseline measured in the same run.

    .venv/bin/pip install presidio-analyzer      # the `bench` extra; benchmark only
    .venv/bin/python benchmarks/redaction/bench_presidio_synth.py

Quality, on ../shared/data/presidio-synth (1,500 synthetic sentences with
labelled PII; microsoft/presidio-research synth_dataset_v2.json, MIT): per
entity type we claim, precision and recall, counting a prediction correct when
it has the same type and overlaps the labelled span. Label names map to our
placeholders: EMAIL_ADDRESS→EMAIL, PHONE_NUMBER→PHONE, CREDIT_CARD→CARD,
IBAN_CODE→IBAN, US_SSN→SSN, IP_ADDRESS→IP_ADDRESS. "any-type recall" counts a
labelled span as protected when any of our placeholders covers it (what
matters for privacy: a SIN-shaped phone number redacted as NATIONAL_ID is
still gone).

Provider tokens: generated from each provider's documented format
(provider_formats.py, written independently of the detector regexes),
embedded in sentences; recall per format. Presidio has no recognizers for
them. False positives of token/secret rules are counted on the two natural
corpora (presidio-synth and the Aalto typed sentences), which hold none.

Speed: CPU seconds in this one process (so per core; rounds of ours and of
Presidio interleaved, best of three each), characters per second through
``Redactor.find`` (as the stream stage calls it) and through Presidio's
recognizers,
over (a) presidio-synth, dense with identifiers, one call per sentence,
(b) the sentences people typed in the Aalto 136M Keystrokes study (Dhakal et
al., CHI 2018), i.e. ordinary typed text, one call per sentence, and (c) the
same texts in 512-character windows, the size the stream stage scans
(speed only). Presidio's recognizers are timed on the same texts. The rounds
repeat the same texts, so the redactor's per-token memos (pii.Memo; they
serve the stream stage, which rescans the text around the cursor) would
answer repeated numbers: a second figure empties them before every pass.
Also: key events per CPU second through the streaming RedactionStage.

Presidio is called through its recognizers directly (no AnalyzerEngine: that
needs a spaCy model, which cannot be downloaded here); tldextract, used by its
email validation, is pointed at its bundled suffix list so nothing is fetched.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parent))

import provider_formats  # noqa: E402

from tracework.privacy.redact import default_redactor, pii  # noqa: E402

LABELS = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "SSN",
    "IP_ADDRESS": "IP_ADDRESS",
}
PII = set(LABELS.values())


def load_synth() -> list[dict]:
    return json.loads((DATA / "presidio-synth" / "synth_dataset_v2.json").read_text())


def load_aalto(max_files: int = 150) -> list[str]:
    """Distinct final texts (USER_INPUT) people typed."""
    texts: dict[str, None] = {}
    for path in sorted((DATA / "aalto-keystrokes").glob("*_keystrokes.txt.gz"))[:max_files]:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                texts.setdefault(row["USER_INPUT"], None)
    return list(texts)


def presidio_recognizers():
    try:
        import tldextract
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            PhoneRecognizer,
            UsSsnRecognizer,
        )
    except ImportError:
        return None
    # Offline: the bundled public-suffix snapshot, no fetch.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    return [EmailRecognizer(), PhoneRecognizer(), CreditCardRecognizer(), IbanRecognizer(), UsSsnRecognizer(), IpRecognizer()]


def presidio_find(recognizers, text: str) -> list[tuple[int, int, str]]:
    out = []
    for r in recognizers:
        for res in r.analyze(text, r.supported_entities, None):
            if res.score > 0:  # AnalyzerEngine's default threshold
                out.append((res.start, res.end, LABELS.get(res.entity_type, res.entity_type)))
    return out


def ours_find(text: str) -> list[tuple[int, int, str]]:
    return [(s.start, s.end, s.placeholder) for s in default_redactor().find(text)]


class Timed:
    """A finder as the throughput rounds call it: ``find(text)`` once per
    text, ``before_pass()`` (when given) before every pass over a corpus."""

    def __init__(self, find, before_pass=None) -> None:
        self.find, self.before_pass = find, before_pass


def timed_finders(recognizers) -> dict[str, Timed]:
    # Ours is timed as the stream stage calls it, Redactor.find on a text
    # (ours_find's conversion of spans to tuples serves the scoring only; it
    # cost ~5 % of a pass). The cold finder empties the per-token memos
    # (pii.Memo) before every pass: each pass then checks every distinct
    # number as if seen for the first time (the rounds repeat the same
    # texts, which a warm memo would answer).
    find = default_redactor().find
    finds = {"tracework": Timed(find), "tracework-cold": Timed(find, pii.clear_memos)}
    if recognizers is not None:
        finds["presidio"] = Timed(lambda t: presidio_find(recognizers, t))
    return finds


def evaluate(data, find) -> tuple[dict, dict]:
    tp, fp, fn, any_hit = Counter(), Counter(), Counter(), Counter()
    for item in data:
        text = item["full_text"]
        preds = find(text)
        gold = [(s["start_position"], s["end_position"], LABELS[s["entity_type"]]) for s in item["spans"] if s["entity_type"] in LABELS]
        for gs, ge, gt in gold:
            if any(pt == gt and ps < ge and pe > gs for ps, pe, pt in preds):
                tp[gt] += 1
            else:
                fn[gt] += 1
            if any(ps < ge and pe > gs for ps, pe, _ in preds):
                any_hit[gt] += 1
        for ps, pe, pt in preds:
            if pt in PII and not any(gt == pt and ps < ge and pe > gs for gs, ge, gt in gold):
                fp[pt] += 1
    scores = {}
    for t in sorted(PII):
        n = tp[t] + fn[t]
        scores[t] = {
            "support": n,
            "precision": tp[t] / (tp[t] + fp[t]) if tp[t] + fp[t] else float("nan"),
            "recall": tp[t] / n if n else float("nan"),
            "any_type_recall": any_hit[t] / n if n else float("nan"),
        }
    total_tp, total_fp, total_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    overall = {"precision": total_tp / max(1, total_tp + total_fp), "recall": total_tp / max(1, total_tp + total_fn)}
    return scores, overall


def _round(texts: list[str], timed: Timed, chars: int, min_seconds: float) -> float:
    find, before_pass = timed.find, timed.before_pass
    passes, start = 0, time.process_time()
    while True:
        if before_pass is not None:
            before_pass()
        for t in texts:
            find(t)
        passes += 1
        spent = time.process_time() - start
        if spent >= min_seconds:
            return passes * chars / spent


def throughput(texts: list[str], finds: dict[str, Timed], min_seconds: float = 2.0) -> dict:
    """Characters per CPU second for each finder: best of three rounds of at
    least min_seconds, the finders' rounds interleaved so that load from other
    processes on a shared machine falls on both sides of the ratio alike."""
    chars = sum(len(t) for t in texts)
    best = dict.fromkeys(finds, 0.0)
    for _ in range(3):
        for name, find in finds.items():
            best[name] = max(best[name], _round(texts, find, chars, min_seconds))
    return best


def token_recall(per_format: int) -> tuple[dict, float]:
    contexts = ["{}", "export API_TOKEN={}\n", "here is the key: {} - keep it safe", 'cfg = {{"token": "{}"}}']
    hits, totals = Counter(), Counter()
    for name, placeholder, token in provider_formats.samples(per_format):
        for ctx in contexts:
            text = ctx.format(token)
            totals[name] += 1
            if any(pt == placeholder for _, _, pt in ours_find(text)):
                hits[name] += 1
    per = {name: hits[name] / totals[name] for name in totals}
    return per, sum(hits.values()) / sum(totals.values())


def secret_false_positives(texts: list[str]) -> Counter:
    c = Counter()
    for t in texts:
        for _, _, pt in ours_find(t):
            if pt not in PII:
                c[pt] += 1
    return c


def stage_events_per_second(texts: list[str]) -> tuple[float, int]:
    from tracework.events.model import FocusChange
    from tracework.privacy.redaction_stage import RedactionStage
    from tracework.privacy.textstream import key_events_for_text

    events = [FocusChange(seq=0, t_ns=0, session="b", app="gedit", title="bench")]
    events += key_events_for_text("\n".join(texts) + "\n", session="b", t0_ns=1, step_ns=50_000_000, seq0=1)
    stage = RedactionStage()
    start = time.process_time()
    out = []
    for i in range(0, len(events), 40):  # ~1 s of fast typing per batch
        batch = events[i : i + 40]
        out += stage.process(batch, batch[-1].t_ns)
    out += stage.flush(events[-1].t_ns)
    spent = time.process_time() - start
    assert len(out) == len(events)
    return len(events) / spent, len(events)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-format", type=int, default=50, help="generated tokens per provider format")
    ap.add_argument("--seconds", type=float, default=2.0, help="minimum CPU seconds per throughput round")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)

    synth = load_synth()
    aalto = load_aalto()
    synth_texts = [x["full_text"] for x in synth]
    recognizers = presidio_recognizers()

    ours_scores, ours_overall = evaluate(synth, ours_find)
    pres_scores = pres_overall = None
    if recognizers is not None:
        pres_scores, pres_overall = evaluate(synth, lambda t: presidio_find(recognizers, t))

    print(f"presidio-synth: {len(synth)} sentences, {sum(map(len, synth_texts)):,} characters")
    print(f"{'entity':12s} {'n':>4s} | {'tracework P':>11s} {'R':>6s} {'any-R':>6s} | {'presidio P':>10s} {'R':>6s}")
    for t in sorted(PII):
        o = ours_scores[t]
        p = pres_scores[t] if pres_scores else {"precision": float("nan"), "recall": float("nan")}
        print(f"{t:12s} {o['support']:4d} | {o['precision']:11.3f} {o['recall']:6.3f} {o['any_type_recall']:6.3f} | {p['precision']:10.3f} {p['recall']:6.3f}")
    print(f"{'all six':12s}      | {ours_overall['precision']:11.3f} {ours_overall['recall']:6.3f}        |"
          + (f" {pres_overall['precision']:10.3f} {pres_overall['recall']:6.3f}" if pres_overall else "  (presidio not installed)"))

    per_format, token_overall = token_recall(args.per_format)
    worst = sorted(per_format.items(), key=lambda kv: kv[1])[:5]
    print(f"\nprovider tokens: {len(provider_formats.FORMATS)} documented formats, "
          f"{len({p for _, p, _ in provider_formats.FORMATS})} placeholder types, "
          f"{args.per_format} tokens x 4 contexts each: recall {token_overall:.4f}")
    print("  lowest per-format recall: " + ", ".join(f"{n} {r:.3f}" for n, r in worst))
    fps = secret_false_positives(synth_texts + aalto)
    print(f"  token/secret spans on the natural corpora (all false positives): {sum(fps.values())} {dict(fps)}")

    print(f"\nthroughput (characters per CPU second, one core); Aalto typed text: {len(aalto)} sentences")
    figures = {}
    # The stream stage scans the held text plus up to 512 characters of
    # context, so windows of ~512 characters are its real unit of work.
    # (Window rows measure speed only: a cut may split an identifier.)
    def windows(texts):
        joined = "\n".join(texts)
        return [joined[i : i + 512] for i in range(0, len(joined), 512)]

    corpora = (
        ("presidio-synth", synth_texts), ("aalto-typed", aalto),
        ("synth-512-windows", windows(synth_texts)), ("aalto-512-windows", windows(aalto)),
    )
    finds = timed_finders(recognizers)
    for name, texts in corpora:
        speed = throughput(texts, finds, args.seconds)
        ours, cold = speed["tracework"], speed["tracework-cold"]
        line = f"  {name:17s} tracework {ours / 1e6:7.2f} MB/s (memos emptied each pass {cold / 1e6:6.2f})"
        figures[name] = {"tracework_chars_per_s": ours, "tracework_cold_memo_chars_per_s": cold}
        if recognizers is not None:
            pres = speed["presidio"]
            figures[name]["presidio_chars_per_s"] = pres
            line += f" | presidio {pres / 1e6:7.3f} MB/s | ratio {ours / pres:6.1f}x (cold {cold / pres:5.1f}x)"
        print(line)
    eps, n_events = stage_events_per_second(aalto[:2000])
    print(f"  RedactionStage on Aalto text as key events: {eps:,.0f} events per CPU second ({n_events:,} events)")

    if args.json:
        args.json.write_text(json.dumps({
            "quality": ours_scores, "quality_overall": ours_overall,
            "presidio_quality": pres_scores, "presidio_overall": pres_overall,
            "token_recall": token_overall, "token_recall_per_format": per_format,
            "secret_false_positives": dict(fps), "throughput": figures, "stage_events_per_s": eps,
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

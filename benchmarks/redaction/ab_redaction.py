"""Old vs new redactor in one process, rounds interleaved: the speed-up of the
working tree over a git revision, with the machine's load falling on both.

    .venv/bin/python benchmarks/redaction/ab_redaction.py --old 77afc39
    .venv/bin/python benchmarks/redaction/ab_redaction.py --old HEAD~1 --windows

On a shared machine the full benchmark's figure moves more between runs of
the same code than most single changes move it; here each round times the
old code, the new code, then the old code again, and the ratio of each
round is kept, so load that changes over minutes cancels out. The per-token
memos are emptied before every pass (the "cold" figure of
bench_presidio_synth.py). Spans are asserted equal on every text first.

The old package is ``git archive <rev> src/tracework/privacy/redact``,
loaded under another name; it works for revisions whose redact package
imports its own modules relatively (all of them so far).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

# Both packages are loaded under other names (redact_new, redact_old), and
# numba's on-disk cache records the module name of each compiled function: a
# cache entry written here would make the next ordinary import of the
# working tree fail (ModuleNotFoundError: redact_new). Compile into a
# throw-away cache instead (set before numba is imported).
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="ab_redaction_numba_")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
PACKAGE = "src/tracework/privacy/redact"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path / "__init__.py", submodule_search_locations=[str(path)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _export(rev: str, into: Path) -> Path:
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev, PACKAGE], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    return into / PACKAGE


def _spans(redactor, text: str) -> list[tuple]:
    return [(s.start, s.end, s.placeholder, s.rule) for s in redactor.find(text)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, help="git revision to compare the working tree with")
    ap.add_argument("--rounds", type=int, default=21, help="interleaved rounds (old, new, old each)")
    ap.add_argument("--windows", action="store_true", help="the texts joined and cut into 512-character windows")
    args = ap.parse_args(argv)

    texts = [x["full_text"] for x in json.loads((DATA / "presidio-synth" / "synth_dataset_v2.json").read_text())]
    if args.windows:
        joined = "\n".join(texts)
        texts = [joined[i : i + 512] for i in range(0, len(joined), 512)]
    chars = sum(map(len, texts))

    with tempfile.TemporaryDirectory() as tmp:
        old = _load("redact_old", _export(args.old, Path(tmp)))
        new = _load("redact_new", ROOT / PACKAGE)
        old_r, new_r = old.Redactor(), new.Redactor()
        for text in texts:
            if _spans(old_r, text) != _spans(new_r, text):
                print(f"spans differ on {text!r}", file=sys.stderr)
                return 1

        def one_pass(module, redactor) -> float:
            module.pii.clear_memos()
            start = time.process_time()
            for text in texts:
                redactor.find(text)
            return time.process_time() - start

        ratios, old_best, new_best = [], 0.0, 0.0
        for _ in range(args.rounds):
            a, b, c = one_pass(old, old_r), one_pass(new, new_r), one_pass(old, old_r)
            ratios.append((a + c) / 2 / b)
            old_best = max(old_best, chars / min(a, c))
            new_best = max(new_best, chars / b)

    q1, _, q3 = statistics.quantiles(ratios, n=4)
    corpus = "presidio-synth 512-character windows" if args.windows else "presidio-synth sentences"
    print(f"{corpus}, memos emptied each pass, {args.rounds} rounds: new/old speed "
          f"{statistics.median(ratios):.3f}x (quartiles {q1:.3f}-{q3:.3f}); "
          f"best pass old {old_best / 1e6:.2f} MB/s, new {new_best / 1e6:.2f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

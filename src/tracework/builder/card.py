"""The dataset card: README.md with the YAML header the Hugging Face hub reads.

The card states what is in the build (counts per kind and split, schema),
where it came from (Delta table and version), how it was made (command and
settings), and what was done for privacy (transforms with parameters,
redaction counts, consent purposes covered).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

KIND_TASKS = {
    "trajectories": "computer-use actions (PyAutoGUI vocabulary) for agent imitation learning",
    "typing": "typing process per field: final text, edit history, corrections, speed",
    "cursor": "cursor movement segments with kinematic features and paths",
}

DOC_COLUMNS = {
    "person": "pseudonym of the person (keyed hash; never an identity)",
    "device": "pseudonym of the device",
    "session": "capture session id (lineage: with seq_first/seq_last, the raw events of the row)",
    "seq_first": "first raw event sequence number in the session this row came from",
    "seq_last": "last raw event sequence number in the session this row came from",
}


def _yaml_str(s: str) -> str:
    return json.dumps(s)  # JSON strings are valid YAML scalars


def write_card(folder: Path, manifest: dict, schemas: dict[str, pl.Schema], *, license: str = "other") -> Path:
    """Write ``folder/README.md`` for the build described by ``manifest``."""
    counts = manifest["counts"]
    lines = ["---", f"license: {license}", "pretty_name: Tracework computer-work datasets"]
    lines += ["task_categories:", "- reinforcement-learning", "- time-series-forecasting", "- text-generation"]
    lines += ["tags:", "- computer-use", "- gui-agents", "- keystroke-dynamics", "- mouse-dynamics", "- tracework"]
    lines.append("configs:")
    for kind in manifest["kinds"]:
        splits = [s for s, n in counts[kind].items() if n > 0]
        if not splits:
            continue
        lines.append(f"- config_name: {kind}")
        if kind == manifest["kinds"][0]:
            lines.append("  default: true")
        lines.append("  data_files:")
        for s in splits:
            lines.append(f"  - split: {s}")
            lines.append(f"    path: {_yaml_str(f'{kind}/{s}-*.parquet')}")
    lines.append("---")
    lines.append("")
    lines.append("# Tracework computer-work datasets")
    lines.append("")
    lines.append(
        "Built by `tracework build` from consented recordings of real computer work. Every row holds "
        "pseudonyms only and records the raw events it came from (`session`, `seq_first`, `seq_last`), "
        "so an erasure request reaches every copy. Splits are by person: nobody appears in two splits."
    )
    lines.append("")
    lines.append("## Contents")
    lines.append("")
    lines.append("| kind | what | train | validation | test |")
    lines.append("|---|---|---:|---:|---:|")
    for kind in manifest["kinds"]:
        c = counts[kind]
        lines.append(f"| {kind} | {KIND_TASKS[kind]} | {c['train']} | {c['validation']} | {c['test']} |")
    lines.append("")
    lines.append(
        f"People: {len(manifest['persons'])} "
        f"(train {len(manifest['persons_by_split']['train'])}, validation {len(manifest['persons_by_split']['validation'])}, "
        f"test {len(manifest['persons_by_split']['test'])}); capture sessions: {len(manifest['sessions'])}; "
        f"work sessions: {manifest['work_sessions']}; backward clock jumps cut: {manifest['clock_jumps']}."
    )
    lines.append("")
    lines.append("Load with one line:")
    lines.append("")
    lines.append("```python")
    lines.append('datasets.load_dataset("parquet", data_files={"train": "trajectories/train-*.parquet"})')
    lines.append('polars.read_parquet("typing/*.parquet")')
    lines.append("```")
    lines.append("")
    lines.append("## Source")
    lines.append("")
    lines.append(f"- Delta table: `{manifest['source']['table']}`, version {manifest['source']['version']}")
    lines.append(f"- Built: {manifest['built_at']}")
    lines.append(f"- Command: `{manifest['command'] or '(library call)'}`")
    lines.append("- Settings:")
    lines.append("")
    lines.append("```json")
    lines.append(json.dumps(manifest["settings"], indent=2))
    lines.append("```")
    lines.append("")
    lines.append("## Privacy transforms applied on the device")
    lines.append("")
    if manifest["transforms"]:
        lines.append("| transform | parameters |")
        lines.append("|---|---|")
        for t in manifest["transforms"]:
            params = ", ".join(f"{k}={v}" for k, v in sorted((t.get("params") or {}).items())) or "-"
            lines.append(f"| {t.get('name')} | {params} |")
    else:
        lines.append("None recorded in the sessions' `session_start.transforms`.")
    lines.append("")
    lines.append("## Redactions")
    lines.append("")
    if manifest["redaction_counts"]:
        lines.append("Keys typed inside redacted spans, by placeholder type (they appear as ⟨TYPE⟩ in text):")
        lines.append("")
        lines.append("| placeholder | keys |")
        lines.append("|---|---:|")
        for k, v in sorted(manifest["redaction_counts"].items()):
            lines.append(f"| {k} | {v} |")
    else:
        lines.append("No redacted keys in the source events.")
    lines.append("")
    lines.append("## Consent purposes covered")
    lines.append("")
    if manifest["purposes"]:
        for p in manifest["purposes"]:
            lines.append(f"- {p}")
    else:
        lines.append("No purposes were given for this build (`--purpose`).")
    consent = manifest.get("consent") or {}
    if consent.get("classes"):
        lines.append("")
        lines.append("Included only people whose consent, at build time, covers these purposes and the data classes "
                     "the dataset needs: " + ", ".join(consent["classes"]) + ".")
    if "persons_excluded" in manifest:
        lines.append("")
        lines.append(f"People in the lake left out by the consent filter: {manifest['persons_excluded']}.")
    lines.append("")
    lines.append("## Schema")
    for kind in manifest["kinds"]:
        lines.append("")
        lines.append(f"### {kind}")
        lines.append("")
        lines.append("| column | type |")
        lines.append("|---|---|")
        if kind not in schemas:
            lines.append("| (no rows) | |")
            continue
        for name, dtype in schemas[kind].items():
            note = f" — {DOC_COLUMNS[name]}" if name in DOC_COLUMNS else ""
            lines.append(f"| {name} | {dtype}{note} |")
    lines.append("")
    lines.append("Column meanings: docs/datasets.md in the Tracework repository.")
    lines.append("")
    lines.append("## Files")
    lines.append("")
    for f in manifest["files"]:
        lines.append(f"- `{f}`")
    lines.append("")
    path = folder / "README.md"
    path.write_text("\n".join(lines))
    return path

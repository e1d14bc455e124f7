"""The local build engine: lake → sessions → datasets → Parquet shards + card.

``build_datasets`` is the one entry point (the CLI calls it). The transforms
it runs are the pure functions of ``sessions``, ``actions``, ``keystrokes``
and ``cursor``; only this module does I/O. A build is atomic: everything is
written into a temporary folder beside the destination and renamed into
place at the end, so a failed build leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import BuildError, LakeError
from .actions import reduce_actions
from .cursor import cursor_segments
from .keystrokes import typing_fields
from .sessions import SOURCE_COLUMNS, normalize, sessionize
from .settings import KINDS, BuildSettings

SPLITS = ("train", "validation", "test")
PersonFilter = Callable[[list[str]], Iterable[str]]
Progress = Callable[[str, float], None]


def _all_people(people: list[str]) -> set[str]:
    return set(people)


@dataclass
class LakeSnapshot:
    """Rows read from the lake at one Delta table version."""

    frame: pl.DataFrame
    version: int | None
    path: str
    transforms: list[dict] = field(default_factory=list)


@dataclass
class BuildResult:
    """What a build wrote."""

    out: Path
    counts: dict[str, dict[str, int]]
    manifest: dict
    seconds: float


def split_of(person: str, settings: BuildSettings) -> str:
    """Deterministic split of a pseudonymous person: a SHA-256 bucket, so the
    same person lands in the same split in every build and nobody in two."""
    bucket = int.from_bytes(hashlib.sha256(person.encode()).digest()[:8], "big") / 2**64
    if bucket < settings.train_share:
        return "train"
    if bucket < settings.train_share + settings.validation_share:
        return "validation"
    return "test"


def read_lake(data_dir: str | Path) -> LakeSnapshot:
    """The raw events the builder needs, from ``<data_dir>/lake/events``,
    read through ``tracework.lake`` at the table's current version."""
    import pyarrow.compute as pc

    from ..lake import RAW_EVENTS_SCHEMA, open_table, read_events, table_path

    path = table_path(data_dir)
    table = open_table(data_dir)
    if table is None:
        raise LakeError(
            f"no event table at {path}",
            hint="check --data-dir, or fill the lake first (tracework serve + agent, or tracework import)",
        )
    version = table.version()
    columns = [c for c in SOURCE_COLUMNS if c in RAW_EVENTS_SCHEMA.names]
    arrow = read_events(data_dir, columns=columns)
    transforms: list[dict] = []
    starts = read_events(data_dir, columns=["transforms"], filter=pc.field("type") == "session_start")
    for value in set(starts.column("transforms").to_pylist()):
        if value:
            try:
                transforms.extend(json.loads(value))
            except ValueError:
                pass  # a malformed record cannot stop a build; the card lists what parsed
    return LakeSnapshot(pl.from_arrow(arrow), version, str(path), transforms)


def build_frames(
    raw: pl.DataFrame | pl.LazyFrame,
    kinds: Iterable[str],
    settings: BuildSettings,
) -> dict[str, pl.DataFrame]:
    """The datasets of ``kinds`` from raw lake rows (pure: no I/O)."""
    rows = sessionize(normalize(raw), settings).collect()
    lf = rows.lazy()
    out: dict[str, pl.DataFrame] = {}
    for kind in kinds:
        if kind == "trajectories":
            out[kind] = reduce_actions(lf, settings).collect()
        elif kind == "typing":
            out[kind] = typing_fields(lf, settings)
        elif kind == "cursor":
            out[kind] = cursor_segments(lf, settings).collect()
    out["_sessions"] = (
        rows.lazy()
        .filter(~pl.col("excluded"))
        .group_by(["person", "session", "work_session"])
        .agg(
            pl.col("t_ns").min().alias("start_ns"),
            pl.col("t_ns").max().alias("end_ns"),
            pl.len().alias("events"),
            pl.col("task").n_unique().alias("tasks"),
            pl.col("clock_jump").sum().alias("clock_jumps"),
        )
        .sort(["session", "work_session"])
        .collect()
    )
    redacted = rows.filter((pl.col("type") == "key_down") & pl.col("redacted").is_not_null())["redacted"].value_counts()
    out["_redactions"] = redacted
    return out


def _check_kinds(kinds: Iterable[str]) -> list[str]:
    kinds = [k.strip() for k in kinds if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise BuildError(f"unknown dataset kind(s): {', '.join(unknown) or '(none given)'}", hint="choose from " + ", ".join(KINDS))
    return list(dict.fromkeys(kinds))


def build_datasets(
    data_dir: str | Path,
    out: str | Path,
    *,
    kinds: Iterable[str] = KINDS,
    settings: BuildSettings | None = None,
    purposes: Iterable[str] = (),
    person_filter: PersonFilter | None = None,
    overwrite: bool = False,
    command: str = "",
    progress: Progress | None = None,
    license: str = "other",
) -> BuildResult:
    """Build the datasets of ``kinds`` from the lake in ``data_dir`` into ``out``.

    ``person_filter`` receives every person pseudonym in the lake and returns
    those whose data may go into this dataset (the governance consent check
    plugs in here; default: everyone). ``purposes`` are the consent purposes
    this dataset is built for; they are stated in the card.
    """
    started = time.perf_counter()
    settings = settings or BuildSettings()
    kinds = _check_kinds(kinds)
    out = Path(out).resolve()
    report = progress or (lambda stage, fraction: None)
    if out.exists() and not overwrite:
        raise BuildError(f"{out} already exists", hint="choose another --out or pass --overwrite")
    if out.exists() and not (out / "manifest.json").exists():
        raise BuildError(f"{out} exists and is not a tracework dataset", hint="refusing to replace it; choose another --out")

    report("reading the lake", 0.05)
    snap = read_lake(data_dir)
    raw = snap.frame
    if raw.height == 0:
        raise BuildError(f"the lake at {snap.path} holds no events", hint="nothing to build; capture or import data first")
    people = sorted(raw["person"].drop_nulls().unique().to_list()) if "person" in raw.columns else []
    allowed = set((person_filter or _all_people)(people))
    if "person" in raw.columns:
        raw = raw.filter(pl.col("person").is_in(sorted(allowed)))
    if raw.height == 0:
        raise BuildError("no person in the lake passed the person filter", hint="check consent for the purposes requested")

    report("building datasets", 0.2)
    frames = build_frames(raw, kinds, settings)
    sessions = frames.pop("_sessions")
    redactions = frames.pop("_redactions")
    if all(frames[k].height == 0 for k in kinds):
        raise BuildError(
            "the lake's events produce no rows for " + ", ".join(kinds),
            hint="the sessions may hold only excluded (paused, locked, denied) events",
        )

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    # mkdtemp makes the folder private; a published dataset gets the usual mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        files: list[str] = []
        counts: dict[str, dict[str, int]] = {}
        for i, kind in enumerate(kinds):
            report(f"writing {kind}", 0.4 + 0.5 * i / len(kinds))
            counts[kind], written = _write_kind(tmp, kind, frames[kind], settings)
            files += written
        included = sorted(set(sessions["person"].to_list()))
        manifest = {
            "format": "tracework-dataset/1",
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": {"table": snap.path, "version": snap.version},
            "kinds": kinds,
            "counts": counts,
            "persons": included,
            "persons_by_split": {s: sorted({p for p in included if split_of(p, settings) == s}) for s in SPLITS},
            "sessions": sorted(set(sessions["session"].to_list())),
            "files": sorted(files),
            "settings": settings.as_dict(),
            "purposes": list(purposes),
            "command": command,
            "transforms": _unique_transforms(snap.transforms),
            "redaction_counts": {r["redacted"]: int(r["count"]) for r in redactions.to_dicts()},
            "work_sessions": sessions.height,
            "clock_jumps": int(sessions["clock_jumps"].sum()) if sessions.height else 0,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        from .card import write_card

        write_card(tmp, manifest, frames, license=license)
        report("publishing", 0.95)
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report("done", 1.0)
    return BuildResult(out, counts, manifest, time.perf_counter() - started)


def _unique_transforms(transforms: list[dict]) -> list[dict]:
    seen, out = set(), []
    for t in transforms:
        key = json.dumps(t, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def _write_kind(tmp: Path, kind: str, df: pl.DataFrame, settings: BuildSettings) -> tuple[dict[str, int], list[str]]:
    folder = tmp / kind
    folder.mkdir()
    split = pl.col("person").map_elements(lambda p: split_of(p, settings), return_dtype=pl.String)
    people = df.select(pl.col("person").unique())
    people = people.with_columns(split.alias("split"))
    df = df.join(people, on="person", how="left")
    counts: dict[str, int] = {}
    files: list[str] = []
    for name in SPLITS:
        part = df.filter(pl.col("split") == name).drop("split")
        counts[name] = part.height
        if part.height == 0:
            continue
        shards = max(1, -(-part.height // settings.shard_rows))
        for i in range(shards):
            rel = f"{kind}/{name}-{i:05d}-of-{shards:05d}.parquet"
            chunk = part.slice(i * settings.shard_rows, settings.shard_rows)
            pq.write_table(chunk.to_arrow(), tmp / rel, compression="zstd", compression_level=1)
            files.append(rel)
    return counts, files


def _publish(tmp: Path, out: Path) -> None:
    """Rename the finished build into place (same parent, so the rename is atomic)."""
    if out.exists():
        old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


def load_split(dataset_dir: str | Path, kind: str, split: str | None = None) -> pl.DataFrame:
    """A dataset kind (all splits, or one) as a Polars frame."""
    d = Path(dataset_dir) / kind
    pattern = f"{split}-*.parquet" if split else "*.parquet"
    files = sorted(d.glob(pattern))
    if not files:
        return pl.DataFrame()
    return pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")


def arrow_schema(df: pl.DataFrame) -> pa.Schema:
    """The Arrow schema a kind is written with (for the card)."""
    return df.to_arrow().schema

"""Consent-based purpose filtering for dataset builds (governance issue,
enforcement point 3).

    from tracework.builder.consent import build_for_purposes
    build_for_purposes("./tracework-data", "./datasets/v1", purposes=["typing_models"], kinds=["typing"])

A dataset serves one or more consent purposes. A person's records go into it
only if, at build time, their consent covers every one of those purposes and,
within each, every data class the requested dataset kinds are made of. The
purposes, the data classes and the consent records are governance's
(:data:`tracework.governance.PURPOSES`, ``Governance.allowed_persons``); this
module only says which classes each dataset kind carries, and plugs
governance's answer into the engine's ``person_filter``. The build is audited
through governance: one ``dataset.build`` entry per purpose checked (before)
and one for the finished (or failed) build, with counts and no identities.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..errors import BuildError, LakeError, TraceworkError
from .engine import BuildResult, build_datasets
from .settings import KINDS, BuildSettings

#: The data classes (governance's names) each dataset kind is made of.
#: trajectories: typed text and key timing, pointer actions, the focused
#: window; typing: key identity/text and timing; cursor: pointer motion.
KIND_CLASSES: dict[str, frozenset[str]] = {
    "trajectories": frozenset({"key_text", "key_timing", "mouse", "window_titles"}),
    "typing": frozenset({"key_text", "key_timing"}),
    "cursor": frozenset({"mouse"}),
}


def classes_for(kinds: Iterable[str]) -> list[str]:
    """The data classes a build of ``kinds`` needs (union over the kinds)."""
    unknown = [k for k in kinds if k not in KIND_CLASSES]
    if unknown:
        raise BuildError(f"unknown dataset kind(s): {', '.join(unknown)}", hint="choose from " + ", ".join(KINDS))
    return sorted(set().union(*(KIND_CLASSES[k] for k in kinds))) if kinds else []


def check_purposes(purposes: Iterable[str], kinds: Iterable[str]) -> tuple[list[str], list[str]]:
    """Validated (purposes, needed classes); a clear BuildError when no purpose
    is given, a purpose is unknown, or a purpose may not use a class the kinds need.
    Does no I/O."""
    from ..governance import DATA_CLASSES, PURPOSES

    purposes = list(dict.fromkeys(p.strip() for p in purposes if p and p.strip()))
    kinds = [k.strip() for k in kinds if k.strip()]
    if not purposes:
        raise BuildError(
            "no consent purpose given: every dataset must serve a purpose the people in it consented to",
            hint="pass --purpose with one of: " + ", ".join(sorted(PURPOSES)),
        )
    unknown = [p for p in purposes if p not in PURPOSES]
    if unknown:
        raise BuildError(f"unknown consent purpose {unknown[0]!r}", hint="pass --purpose with one of: " + ", ".join(sorted(PURPOSES)))
    needed = classes_for(kinds)
    for purpose in purposes:
        outside = [c for c in needed if c not in PURPOSES[purpose][1]]
        if outside:
            kind = next(k for k in kinds if KIND_CLASSES[k] & set(outside))
            raise BuildError(
                f"purpose {purpose!r} does not cover {DATA_CLASSES[outside[0]]} ({outside[0]}), which {kind} datasets are made of",
                hint=f"{purpose} uses only: {', '.join(sorted(PURPOSES[purpose][1]))}; choose --kinds it covers or another --purpose",
            )
    return purposes, needed


def consent_filter(gov, purposes: list[str], classes: list[str], dataset: str = "", principal=None):
    """A ``person_filter`` for :func:`build_datasets`: keeps the pseudonyms whose
    consent covers every purpose with every class (governance decides, now)."""

    def keep(people: list[str]) -> set[str]:
        allowed = set(people)
        for purpose in purposes:
            allowed &= gov.allowed_persons(purpose, principal, dataset=dataset, classes=classes)
        return allowed

    return keep


def build_for_purposes(
    data_dir: str | Path,
    out: str | Path,
    *,
    purposes: Iterable[str],
    kinds: Iterable[str] = KINDS,
    settings: BuildSettings | None = None,
    overwrite: bool = False,
    command: str = "",
    progress=None,
    license: str = "other",
    principal=None,
    store_url: str | None = None,
) -> BuildResult:
    """Build datasets of ``kinds`` holding only the records of people whose
    consent, at build time, covers ``purposes`` (and the classes ``kinds`` need).

    ``principal`` is the governance caller (default: the local operator); it
    needs the ``datasets.build`` permission. Bad input (no or unknown purpose,
    a purpose that does not cover a kind, no lake, an existing ``out``) fails
    before governance is opened, so nothing is written or audited.
    """
    from ..governance import open_governance, operator
    from ..lake import open_table, table_path

    kinds = [k.strip() for k in kinds if k.strip()]
    purposes, classes = check_purposes(purposes, kinds)
    out_path = Path(out).resolve()
    if out_path.exists() and not overwrite:
        raise BuildError(f"{out_path} already exists", hint="choose another --out or pass --overwrite")
    # Check the lake before opening governance: opening it creates its store
    # and keys, and a mistyped --data-dir must leave nothing behind.
    if open_table(data_dir) is None:
        raise LakeError(
            f"no event table at {table_path(data_dir)}",
            hint="check --data-dir, or fill the lake first (tracework serve + agent, or tracework import)",
        )
    gov = open_governance(data_dir, store_url)
    try:
        principal = principal or operator("build")
        dataset = out_path.name
        try:
            result = build_datasets(
                data_dir,
                out_path,
                kinds=kinds,
                settings=settings,
                purposes=purposes,
                person_filter=consent_filter(gov, purposes, classes, dataset, principal),
                consent={"purposes": purposes, "classes": classes, "decided_by": "governance.allowed_persons"},
                overwrite=overwrite,
                command=command,
                progress=progress,
                license=license,
            )
        except TraceworkError as exc:
            gov.record_dataset_build(principal, dataset, {"status": "failed", "purposes": purposes, "kinds": kinds, "error": exc.__class__.__name__})
            raise
        m = result.manifest
        gov.record_dataset_build(
            principal,
            dataset,
            {
                "status": "done",
                "purposes": purposes,
                "classes": classes,
                "kinds": m["kinds"],
                "persons_included": len(m["persons"]),
                "persons_excluded": m["persons_excluded"],
                "rows": {k: sum(v.values()) for k, v in m["counts"].items()},
                "source_version": m["source"]["version"],
            },
        )
        return result
    finally:
        gov.close()

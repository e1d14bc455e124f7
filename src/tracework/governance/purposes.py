"""Purposes, data classes and the versioned consent notices.

A person consents per *purpose* (what the data will be used for) and, within
it, per *data class* (what kind of data may be captured). Notices are plain
language markdown files shipped in ``tracework/governance/notices`` named
``<purpose>.v<N>.md``; the highest N is the current notice. A grant given
under an older notice does not count once a newer one ships: the person must
read and accept the new one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import GovernanceError

#: Data classes, with the plain-language label shown to people.
DATA_CLASSES: dict[str, str] = {
    "key_text": "key identity and text",
    "key_timing": "key timing",
    "mouse": "mouse movement, clicks and scrolls",
    "window_titles": "window titles and application names",
    "web": "web page events and addresses",
}

#: Purposes, with their label and the data classes each may use.
PURPOSES: dict[str, tuple[str, frozenset[str]]] = {
    "agent_training": ("computer-use agent training", frozenset(DATA_CLASSES)),
    "typing_models": ("typing models", frozenset({"key_text", "key_timing"})),
    "cursor_models": ("cursor models", frozenset({"mouse", "window_titles"})),
}

_NOTICE_NAME = re.compile(r"^(?P<purpose>[a-z_]+)\.v(?P<version>[0-9]+)\.md$")


@dataclass(frozen=True)
class Notice:
    """One version of a purpose's consent notice."""

    purpose: str
    version: int
    text: str

    @property
    def title(self) -> str:
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return first.lstrip("# ").strip()


class NoticeBook:
    """Every notice version: the packaged ones plus, optionally, an
    organisation's own folder of ``<purpose>.v<N>.md`` files (which may add
    newer versions; a newer version makes earlier grants stop counting)."""

    def __init__(self, extra_dir: str | Path | None = None):
        self._notices: dict[str, dict[int, Notice]] = {p: {} for p in PURPOSES}
        self._load(resources.files("tracework.governance") / "notices")
        if extra_dir:
            folder = Path(extra_dir)
            if not folder.is_dir():
                raise GovernanceError(f"notice folder {folder} does not exist", hint="create it or unset the option")
            self._load(folder)

    def _load(self, folder) -> None:
        for entry in folder.iterdir():
            m = _NOTICE_NAME.match(entry.name)
            if not m or m["purpose"] not in PURPOSES:
                continue
            version = int(m["version"])
            self._notices[m["purpose"]][version] = Notice(m["purpose"], version, entry.read_text(encoding="utf-8"))

    def notice(self, purpose: str, version: int | None = None) -> Notice:
        """The notice of ``purpose`` at ``version`` (None = current)."""
        check_purpose(purpose)
        versions = self._notices[purpose]
        if not versions:
            raise GovernanceError(f"no notice is shipped for purpose {purpose!r}", hint="reinstall tracework")
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise GovernanceError(
                f"purpose {purpose!r} has no notice version {version}",
                hint=f"the current version is {max(versions)}; read it and accept that one",
            )
        return versions[version]

    def current_version(self, purpose: str) -> int:
        """Version number of the notice a new grant for ``purpose`` must accept."""
        return self.notice(purpose).version

    def versions(self, purpose: str) -> list[int]:
        check_purpose(purpose)
        return sorted(self._notices[purpose])


def check_purpose(purpose: str) -> str:
    """``purpose`` if it is known; otherwise a GovernanceError listing the known ones."""
    if purpose not in PURPOSES:
        raise GovernanceError(
            f"unknown purpose {purpose!r}",
            hint=f"use one of: {', '.join(sorted(PURPOSES))}",
        )
    return purpose


def check_classes(purpose: str, classes) -> list[str]:
    """Validated, sorted data classes for ``purpose``."""
    if isinstance(classes, str) or not isinstance(classes, (list, tuple, set, frozenset)):
        raise GovernanceError("data classes must be a list of names", hint=f"use names from: {', '.join(DATA_CLASSES)}")
    bad = [c for c in classes if c not in DATA_CLASSES]
    if bad:
        raise GovernanceError(
            f"unknown data class {bad[0]!r}", hint=f"use names from: {', '.join(DATA_CLASSES)}"
        )
    allowed = PURPOSES[purpose][1]
    outside = sorted(set(classes) - allowed)
    if outside:
        raise GovernanceError(
            f"purpose {purpose!r} does not use data class {outside[0]!r}",
            hint=f"{purpose} uses: {', '.join(sorted(allowed))}",
        )
    if not classes:
        raise GovernanceError("a grant needs at least one data class", hint="to refuse everything, withdraw instead")
    return sorted(set(classes))

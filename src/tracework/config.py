"""Settings: defaults < tracework.toml < TRACEWORK_* environment < command-line flags.

Every setting is listed in ``SETTINGS`` with its default and meaning; docs/configuration.md
is generated from it and a test fails if they differ.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Setting:
    name: str  # dotted: section.key
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "TRACEWORK_" + self.name.upper().replace(".", "_")


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("home", "~/.tracework", "Folder for the agent's state (spool, consent, device token)."),
        Setting("data_dir", "./tracework-data", "Collector's data folder: lake, governance store, keys."),
        Setting("governance.store", "", "Governance store: empty = SQLite in the data folder, or a postgresql:// URL."),
        Setting("collector.url", "http://127.0.0.1:8470", "Where the agent uploads batches."),
        Setting("collector.host", "127.0.0.1", "Address the collector listens on."),
        Setting("collector.port", 8470, "Port the collector listens on."),
        Setting("collector.max_body_bytes", 8 * 1024 * 1024, "Largest compressed batch body accepted."),
        Setting("collector.max_decompressed_bytes", 64 * 1024 * 1024, "Largest decompressed batch accepted (zip-bomb guard)."),
        Setting("collector.max_events_per_batch", 20000, "Most events accepted in one batch."),
        Setting("collector.max_future_seconds", 300, "Events later than now plus this are rejected (clock skew)."),
        Setting("collector.max_age_days", 30, "Events older than this are rejected (matches raw retention). With max_future_seconds it also sets how long the batch ledger keeps batch ids: retention prunes older ones, and a batch older than what was pruned is refused (events_too_old) even after this is raised."),
        Setting("collector.require_consent", True, "Refuse (403) batches carrying data classes their person has not consented to in governance."),
        Setting("collector.commit_interval_ms", 50, "Longest the lake writer waits to group batches into one commit."),
        Setting("agent.flush_interval_ms", 250, "Captured events reach the spool at least this often."),
        Setting("agent.max_spool_bytes", 512 * 1024 * 1024, "Spool size bound; capture stops when it is reached."),
        Setting("agent.batch_events", 2000, "Most events per uploaded batch."),
        Setting("agent.upload_interval_ms", 1000, "How often the uploader looks for new events."),
        Setting("agent.wire_format", "arrow", "Batch format the agent uploads: `arrow` (columnar; less collector CPU) or `ndjson` (one JSON event per line)."),
        Setting("agent.mouse_coalesce_ms", 0, "Keep at most one mouse move per this many ms (0 = full rate)."),
        Setting("agent.idle_seconds", 60, "No input for this long records an idle event."),
        Setting("agent.pause_hotkey", "<ctrl>+<alt>+<shift>+p", "Hotkey that toggles pause (pynput syntax)."),
        Setting("agent.policy_file", "", "Privacy policy file (TOML); empty uses the built-in defaults."),
    ]
}


def _coerce(setting: Setting, raw: Any) -> Any:
    if isinstance(setting.default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        # A typo must not silently turn a safeguard (e.g. collector.require_consent) off.
        raise ConfigError(
            f"setting {setting.name} must be true or false, got {raw!r}",
            hint=f"fix it in tracework.toml or {setting.env}",
        )
    if isinstance(setting.default, int):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(
                f"setting {setting.name} must be an integer, got {raw!r}",
                hint=f"fix it in tracework.toml or {setting.env}",
            ) from None
    return str(raw)


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def load(overrides: dict[str, Any] | None = None, config_file: str | Path | None = None) -> dict[str, Any]:
    """Resolve every setting. ``overrides`` come from command-line flags (None = not given)."""
    values = {name: s.default for name, s in SETTINGS.items()}
    path = Path(config_file or os.environ.get("TRACEWORK_CONFIG", "tracework.toml"))
    if path.exists():
        try:
            file_values = _flatten(tomllib.loads(path.read_text()))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}", hint="fix the file or remove it") from None
        for key, raw in file_values.items():
            if key not in SETTINGS:
                raise ConfigError(f"{path}: unknown setting {key!r}", hint="see docs/configuration.md")
            values[key] = _coerce(SETTINGS[key], raw)
    for name, s in SETTINGS.items():
        if s.env in os.environ:
            values[name] = _coerce(s, os.environ[s.env])
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = _coerce(SETTINGS[name], raw)
    for name in ("home", "data_dir"):
        values[name] = str(Path(values[name]).expanduser())
    return values


def render_docs() -> str:
    """docs/configuration.md, generated from ``SETTINGS`` (a test keeps them equal)."""
    lines = [
        "# Configuration",
        "",
        "Every setting, resolved in this order (later wins): built-in default < `tracework.toml`",
        "(or the file named by `TRACEWORK_CONFIG`) < `TRACEWORK_*` environment variable < command-line flag.",
        "In `tracework.toml` a dotted name is a section and key: `collector.port = 9000` is",
        "`[collector]` / `port = 9000`.",
        "",
        "Generated from `tracework/config.py` by `python -m tracework.config`.",
        "",
        "| setting | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for s in SETTINGS.values():
        lines.append(f"| `{s.name}` | `{s.env}` | `{s.default!r}` | {s.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/configuration.md")
    target.write_text(render_docs())
    print(f"wrote {target}")

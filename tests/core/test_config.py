"""Settings resolve in the documented order and every one is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracework import config
from tracework.errors import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented():
    assert DOCS.read_text() == config.render_docs(), "run: python -m tracework.config"


def test_precedence_default_file_env_flag(tmp_path, monkeypatch):
    monkeypatch.delenv("TRACEWORK_COLLECTOR_PORT", raising=False)
    cfg = tmp_path / "tracework.toml"
    assert config.load(config_file=cfg)["collector.port"] == 8470
    cfg.write_text("[collector]\nport = 9001\n")
    assert config.load(config_file=cfg)["collector.port"] == 9001
    monkeypatch.setenv("TRACEWORK_COLLECTOR_PORT", "9002")
    assert config.load(config_file=cfg)["collector.port"] == 9002
    assert config.load({"collector.port": 9003}, config_file=cfg)["collector.port"] == 9003


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("[collector\nport = 1", "not valid TOML"),
        ("[collector]\nbogus = 1\n", "unknown setting"),
        ("[collector]\nport = 'eighty'\n", "must be an integer"),
    ],
)
def test_bad_config_file_is_a_clear_error(tmp_path, monkeypatch, content, fragment):
    monkeypatch.delenv("TRACEWORK_COLLECTOR_PORT", raising=False)
    cfg = tmp_path / "tracework.toml"
    cfg.write_text(content)
    with pytest.raises(ConfigError) as info:
        config.load(config_file=cfg)
    assert fragment in str(info.value)

"""Fixtures for builder tests; the event script helper is in builder_script.py."""

from __future__ import annotations

import pytest

from tracework.builder import BuildSettings


@pytest.fixture
def settings() -> BuildSettings:
    return BuildSettings()

"""Fixtures for the collector tests: a real ``tracework serve`` process on a
free 127.0.0.1 port, an enrolled device, and batch builders."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector_helpers import (  # noqa: F401  (re-exported for fixtures)
    free_port,
    Collector,
    start_collector,
    Device,
    enroll,
    make_events,
    make_batch,
    headers,
    lake_state,
)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def shared_collector(tmp_path_factory):
    """One collector for the many bad-input tests (each checks it still serves)."""
    d = tmp_path_factory.mktemp("collector")
    device = enroll(d)
    collector = start_collector(d)
    try:
        yield collector, device
    finally:
        collector.stop()


@pytest.fixture
def collector(data_dir):
    """A collector of this test's own (for restarts and counts)."""
    device = enroll(data_dir)
    c = start_collector(data_dir)
    try:
        yield c, device
    finally:
        c.stop()

"""`tracework build` asks Polars' allocator to keep freed pages (a batch job
that allocates the same chunk-sized buffers again and again); no other
command does, and a user's own setting wins."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tracework.cli import _BUILD_ALLOCATOR

PROBE = (
    "import os, sys; from tracework.cli import _tune_allocator_for_build as t; "
    "t(sys.argv[1:]); print(os.environ.get('_RJEM_MALLOC_CONF', ''))"
)


def _probe(*argv: str, env: dict | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    r = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True, env={**base, **(env or {})})
    return r.stdout.strip()


def test_build_keeps_freed_pages():
    assert _probe("build", "--out", "x") == _BUILD_ALLOCATOR[1]


@pytest.mark.parametrize("argv", [("serve",), ("agent", "run"), ("lake", "stats"), ("build", "--help"), ()])
def test_other_commands_leave_the_allocator_alone(argv):
    assert _probe(*argv) == ""


def test_a_users_setting_wins():
    assert _probe("build", env={"_RJEM_MALLOC_CONF": "narenas:1"}) == "narenas:1"

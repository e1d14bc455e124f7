"""The anonymizers are configured in the privacy policy file (issue 4, Parts 3):
an [anonymizer.typing] / [anonymizer.cursor] table reaches the stages, their
parameters travel in describe() (what the dataset card states), and a bad key
or value fails when the policy is loaded, naming the file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tracework.errors import PolicyError
from tracework.privacy.chain import build_pipeline
from tracework.privacy.policy import load_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
from agent_helpers import run_tracework  # noqa: E402


def _described(policy) -> dict[str, dict]:
    return {t.name: t.params for t in (s.describe() for s in build_pipeline(policy).stages)}


def test_anonymizer_tables_reach_the_stages(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[anonymizer.typing]\nhesitation_ms = 1500\nreleases = "keep"\n\n'
                    '[anonymizer.cursor]\nduration_blend = 0.5\nrate_hz_min = 80\n')
    stages = _described(load_policy(path))
    assert stages["typing_population_retime"]["hesitation_ms"] == 1500
    assert stages["typing_population_retime"]["releases"] == "keep"
    assert stages["cursor_synthetic_path"]["duration_blend"] == 0.5
    assert stages["cursor_synthetic_path"]["rate_hz_min"] == 80
    # Without the tables: the defaults, both on.
    defaults = _described(load_policy(None))
    assert "typing_population_retime" in defaults and "cursor_synthetic_path" in defaults
    assert defaults["cursor_synthetic_path"]["duration_blend"] == 1.0


def test_an_anonymizer_can_be_switched_off_or_to_kloak(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[anonymizer.typing]\nmethod = "kloak"\nmax_delay_ms = 20\n\n[anonymizer.cursor]\nenabled = false\n')
    stages = _described(load_policy(path))
    assert stages["typing_kloak_delay"]["max_delay_ms"] == 20
    assert "cursor_synthetic_path" not in stages and "typing_population_retime" not in stages


@pytest.mark.parametrize("body, needle", [
    ('[anonymizer.cursor]\nduration_blnd = 0.0\n', "unknown anonymizer.cursor keys: duration_blnd"),
    ('[anonymizer.typing]\nhesitation_ms = "slow"\n', "anonymizer.typing.hesitation_ms"),
    ('[anonymizer.typing]\nmethod = "fast"\n', "unknown typing anonymizer method"),
    ('[anonymizer]\nsomething = 1\n', "unknown anonymizer policy keys"),
    ('anonymizer = 3\n', "anonymizer"),
])
def test_bad_anonymizer_settings_fail_at_load_naming_the_file(tmp_path, body, needle):
    path = tmp_path / "policy.toml"
    path.write_text(body)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert needle in str(info.value) and str(path) in str(info.value)


def test_the_agent_refuses_to_start_with_a_bad_anonymizer_setting(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[anonymizer.cursor]\nrate_hz_min = 5000\n')
    env = dict(os.environ, TRACEWORK_HOME=str(tmp_path / "home"), TRACEWORK_AGENT_POLICY_FILE=str(path))
    env.pop("DISPLAY", None)
    run_tracework("agent", "consent", "--accept", env=env, check=True)
    result = run_tracework("agent", "run", "--duration", "1", env=env)
    assert result.returncode != 0 and "rate_hz" in result.stderr and str(path) in result.stderr

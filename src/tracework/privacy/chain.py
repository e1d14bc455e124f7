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
    from . import policy as _policy, redaction_stage as _redaction

    resolved = policy if policy is not None else _policy.default_policy()
    stages.append(_policy.make_stage(resolved))
    stages.append(_redaction.make_stage(resolved))
    from .anonymize_stage import make_cursor_stage, make_typing_stage

    # 3. typing anonymizer, 4. cursor anonymizer (each None when the policy disables it).
    for make in (make_typing_stage, make_cursor_stage):
        stage = make(policy)
        if stage is not None:
            stages.append(stage)
    return Pipeline(stages)

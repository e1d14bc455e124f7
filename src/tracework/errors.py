"""Tracework's exception tree. Every error says what went wrong and what to do.

    TraceworkError                 base; ``transient`` tells retry logic whether trying again can help
    ├── ConfigError                a setting is missing or malformed (terminal)
    ├── ConsentError               capture or use without the needed consent (terminal)
    ├── PolicyError                a policy file is malformed (terminal)
    ├── SpoolFullError             the agent's spool reached its size bound (transient: drains when uploads resume)
    ├── UploadError                a batch could not be delivered
    │   ├── CollectorUnavailable   network down, 5xx, timeout (transient)
    │   └── BatchRejected          the collector refused the batch with a 4xx (terminal for that batch)
    ├── AuthError                  unknown, revoked or missing credentials (terminal)
    ├── LakeError                  a lake table is missing or unreadable (terminal)
    ├── BuildError                 a dataset build failed; nothing was published (terminal)
    ├── GovernanceError            a governance request is invalid (terminal)
    └── RecordingError             an imported recording is malformed or truncated; nothing written
                                   (terminal; defined in tracework.importers)
"""

from __future__ import annotations


class TraceworkError(Exception):
    transient = False

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message


class ConfigError(TraceworkError):
    pass


class ConsentError(TraceworkError):
    pass


class PolicyError(TraceworkError):
    pass


class SpoolFullError(TraceworkError):
    transient = True


class UploadError(TraceworkError):
    pass


class CollectorUnavailable(UploadError):
    transient = True


class BatchRejected(UploadError):
    def __init__(self, message: str, *, status: int, code: str, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code


class AuthError(TraceworkError):
    pass


class LakeError(TraceworkError):
    pass


class BuildError(TraceworkError):
    pass


class GovernanceError(TraceworkError):
    pass

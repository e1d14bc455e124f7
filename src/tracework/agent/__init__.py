"""The desktop agent: capture sources, the capture buffer, the spool, the
uploader and the agent process. See docs/agent.md.

Public names are re-exported here; the submodules are implementation detail.
"""

from .capture import EventBuilder, Hotkey, Recorder
from .home import AgentHome
from .runner import Agent, RunOptions, request_pause, status
from .spool import Batch, Spool
from .uploader import UploadSettings, Uploader

__all__ = [
    "Agent", "AgentHome", "Batch", "EventBuilder", "Hotkey", "Recorder", "RunOptions", "Spool",
    "UploadSettings", "Uploader", "request_pause", "status",
]

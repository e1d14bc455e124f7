"""Dataset builder: sessions, actions, typing process and cursor segments
from the raw-event lake, exported as Parquet shards with a dataset card.

    from tracework.builder import build_datasets, BuildSettings
    build_datasets("./tracework-data", "./datasets/v1", kinds=["trajectories"])

The per-session transforms (``sessionize``, ``reduce_actions``,
``typing_fields``, ``cursor_segments``) are pure functions over Polars frames;
``engine`` is the only module that reads or writes files.
"""

from .actions import TRAJECTORY_COLUMNS, reduce_actions
from .cursor import CURSOR_COLUMNS, cursor_segments
from .engine import BuildResult, build_datasets, build_frames, load_split, plan_chunks, read_chunk, split_of
from .keystrokes import TYPING_COLUMNS, typing_fields
from .sessions import normalize, sessionize
from .settings import KINDS, BuildSettings

__all__ = [
    "BuildResult",
    "BuildSettings",
    "CURSOR_COLUMNS",
    "KINDS",
    "TRAJECTORY_COLUMNS",
    "TYPING_COLUMNS",
    "build_datasets",
    "build_frames",
    "cursor_segments",
    "load_split",
    "normalize",
    "plan_chunks",
    "read_chunk",
    "reduce_actions",
    "sessionize",
    "split_of",
    "typing_fields",
]

"""DuckTrack / AgentNet import: the real example recording, and bad files.

The example (../shared/data/ducktrack-example) is a 33-second macOS session:
the person clicks the browser's address bar, types "wikipedia" and Enter,
clicks the search box and types "transformer model", opens the article and
reads it, scrolling down, selecting text by dragging and triple-clicking,
and finally clicks at the top of the screen.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tracework.builder import BuildSettings, build_frames
from tracework.importers import RecordingError, import_recording, read_recording
from tracework.lake import open_table, read_events

EXAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ducktrack-example"
KEY = b"k" * 32


@pytest.fixture
def example() -> Path:
    if not (EXAMPLE / "events.jsonl.gz").is_file():
        pytest.skip(f"DuckTrack example not found at {EXAMPLE}")
    return EXAMPLE


def test_example_reads_as_a_person_would_describe_it(example, tmp_path):
    data = tmp_path / "data"
    summary = import_recording(example, data, person="alice", key=KEY)
    lines = [ln for ln in gzip.decompress((example / "events.jsonl.gz").read_bytes()).splitlines() if ln.strip()]
    assert summary["events_read"] == len(lines) + 2  # every line, plus session start and end
    assert summary["screen"] == [1512, 982] and summary["platform"] == "macos"
    raw = pl.from_arrow(read_events(data))
    assert raw["person"].unique().to_list() == [summary["person"]]
    assert not raw["person"].str.contains("alice").any()  # only the pseudonym reaches the lake

    frames = build_frames(raw, ["trajectories", "typing"], BuildSettings())
    acts = frames["trajectories"]
    names = acts["action"].to_list()
    # The opening: click the address bar, type, Enter, click the search box, type.
    assert acts.head(5).select("action", "x", "y", "text", "keys").rows() == [
        ("click", 1319, 65, None, None),
        ("type", None, None, "wikipedia", None),
        ("press", None, None, None, ["enter"]),
        ("click", 660, 629, None, None),
        ("type", None, None, "transformer model", None),
    ]
    assert frames["typing"]["text"].to_list() == ["wikipedia", "transformer model"]
    # Reading the article: every scroll goes down, text is selected by three
    # drags and one triple click, and no key is pressed after the search.
    scrolls = acts.filter(pl.col("action") == "scroll")
    assert set(scrolls["scroll_direction"].to_list()) == {"down"}
    assert scrolls["scroll_amount"].sum() == 13 + 18 + 7 + 16 + 8 + 5 + 26 + 18 + 3 + 8 + 18
    drags = acts.filter(pl.col("action") == "drag").select("x", "y", "end_x", "end_y").rows()
    assert drags == [(363, 360, 564, 403), (387, 438, 688, 516), (371, 174, 627, 179)]
    assert acts.filter(pl.col("action") == "triple_click").select("x", "y").rows() == [(457, 398)]
    assert names.count("type") == 2 and names[-1] == "click"
    assert acts.row(-1, named=True)["x"] == 1179 and acts.row(-1, named=True)["y"] == 50
    # Normalised to the 1512×982 screen.
    assert acts.row(0, named=True)["x_norm"] == pytest.approx(1319 / 1512)


def _copy(example: Path, tmp_path: Path) -> Path:
    rec = tmp_path / "rec"
    shutil.copytree(example, rec)
    os.chmod(rec, 0o755)
    for p in rec.iterdir():
        os.chmod(p, 0o644)
    return rec


def _lines(rec: Path) -> list[bytes]:
    return gzip.decompress((rec / "events.jsonl.gz").read_bytes()).splitlines(keepends=True)


def test_truncated_recording_is_refused_and_nothing_written(example, tmp_path):
    rec = _copy(example, tmp_path)
    whole = (rec / "events.jsonl.gz").read_bytes()
    (rec / "events.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(RecordingError, match=r"events.jsonl.gz.*truncated or damaged after line \d+"):
        import_recording(rec, tmp_path / "data", key=KEY)
    assert open_table(tmp_path / "data") is None


@pytest.mark.parametrize(
    "bad_line, message",
    [
        (b"{not json\n", "line 5: not valid JSON"),
        (b'{"time_stamp": 1.0, "action": "teleport"}\n', "line 5: unknown action 'teleport'"),
        (b'{"time_stamp": "soon", "action": "move", "x": 1, "y": 2}\n', "line 5: `time_stamp` must be a finite number"),
        (b'{"time_stamp": 1.0, "action": "click", "x": 1, "y": 2}\n', "line 5: a click needs `button`"),
        (b'{"time_stamp": 1.0, "action": "press"}\n', "line 5: a key press needs `name`"),
        (b"[1, 2]\n", "line 5: expected a JSON object"),
    ],
)
def test_garbage_line_names_file_and_line(example, tmp_path, bad_line, message):
    rec = _copy(example, tmp_path)
    lines = _lines(rec)
    lines.insert(4, bad_line)
    (rec / "events.jsonl.gz").write_bytes(gzip.compress(b"".join(lines)))
    with pytest.raises(RecordingError, match=message.replace("(", r"\(").replace("[", r"\[")):
        import_recording(rec, tmp_path / "data", key=KEY)
    assert open_table(tmp_path / "data") is None


def test_missing_or_bad_metadata(example, tmp_path):
    rec = _copy(example, tmp_path)
    (rec / "metadata.json").unlink()
    with pytest.raises(RecordingError, match="metadata.json: missing"):
        read_recording(rec)
    (rec / "metadata.json").write_text(json.dumps({"screen_width": 0, "screen_height": 10}))
    with pytest.raises(RecordingError, match="screen_width"):
        read_recording(rec)


def test_plain_jsonl_with_window_switches(tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "metadata.json").write_text(json.dumps({"screen_width": 1920, "screen_height": 1080, "system": "Windows",
                                                   "start_time": "2024-05-01 10:00:00", "id": 7}))
    events = [
        {"time_stamp": 10.0, "action": "move", "x": 10, "y": 10},
        {"time_stamp": 10.1, "action": "click", "x": 10, "y": 10, "button": "left", "pressed": True},
        {"time_stamp": 10.2, "action": "click", "x": 10, "y": 10, "button": "left", "pressed": False},
        {"time_stamp": 11.0, "action": "press", "name": "ctrl"},
        {"time_stamp": 11.1, "action": "press", "name": "c"},
        {"time_stamp": 11.2, "action": "release", "name": "c"},
        {"time_stamp": 11.3, "action": "release", "name": "ctrl"},
        {"time_stamp": 12.0, "action": "press", "name": "h"},
        {"time_stamp": 12.1, "action": "press", "name": "i"},
    ]
    (rec / "events.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    (rec / "top_window.jsonl").write_text(
        json.dumps({"time_stamp": 9.0, "window_name": "Inbox", "app_name": "outlook.exe"}) + "\n"
        + json.dumps({"time_stamp": 11.9, "window_name": "Notes", "app_name": "notepad.exe"}) + "\n"
    )
    data = tmp_path / "data"
    import_recording(rec, data, key=KEY)
    raw = pl.from_arrow(read_events(data))
    start = raw.filter(pl.col("type") == "session_start").row(0, named=True)
    assert (start["platform"], start["screen_w"]) == ("windows", 1920)
    assert raw["day"].unique().to_list() == ["2024-05-01"]
    acts = build_frames(raw, ["trajectories"], BuildSettings())["trajectories"]
    assert acts.select("action", "keys", "text", "app").rows() == [
        ("click", None, None, "outlook.exe"),
        ("hotkey", ["ctrl", "c"], None, "outlook.exe"),
        ("type", None, "hi", "notepad.exe"),
    ]


def test_cli_import_twice_and_bad_path(example, tmp_path):
    env = dict(os.environ, TRACEWORK_CONFIG=str(tmp_path / "none.toml"))
    data = tmp_path / "data"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "tracework", "import", *args], capture_output=True, text=True,
                              timeout=120, env=env, cwd=tmp_path)

    r = run("ducktrack", str(example), "--data-dir", str(data), "--person", "bob")
    assert r.returncode == 0, r.stderr
    version = open_table(data).version()
    r = run("agentnet", str(example), "--data-dir", str(data))
    assert r.returncode != 0 and "already imported" in r.stderr
    r = run("ducktrack", str(tmp_path / "nowhere"), "--data-dir", str(data))
    assert r.returncode != 0 and "no such file or folder" in r.stderr
    assert open_table(data).version() == version
    assert run("ducktrack", "--help").returncode == 0

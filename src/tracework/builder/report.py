"""``tracework build report``: an HTML page a person can open, with plots
(action mix, typing speed distribution, sample cursor paths drawn on the
screen area, session timeline) embedded as PNG data, so the page is one file."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import polars as pl

from ..errors import BuildError
from .engine import load_split


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def write_report(dataset_dir: str | Path, out: str | Path | None = None, *, sample_paths: int = 30) -> Path:
    """Write ``report.html`` for a built dataset; returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed: the plots are written to the page
    import matplotlib.pyplot as plt

    d = Path(dataset_dir)
    manifest_path = d / "manifest.json"
    if not manifest_path.is_file():
        raise BuildError(f"{d} is not a tracework dataset (no manifest.json)", hint="give the --out folder of a tracework build")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise BuildError(f"{manifest_path} is not valid JSON ({exc})", hint="rebuild the dataset") from None
    out = Path(out) if out else d / "report.html"
    sections: list[str] = []
    kinds = manifest.get("kinds", [])

    if "trajectories" in kinds:
        traj = load_split(d, "trajectories")
        if traj.height:
            mix = traj.group_by("action").len().sort("len", descending=True)
            fig, ax = plt.subplots(figsize=(7, 3.5))
            ax.barh(mix["action"].to_list()[::-1], mix["len"].to_list()[::-1], color="#3b6ea5")
            ax.set_xlabel("actions")
            ax.set_title("Action mix")
            sections.append(_section("Action mix", _png(fig), f"{traj.height} actions"))
            spans = (
                traj.group_by(["session", "work_session", "app"])
                .agg(pl.col("start_ns").min(), pl.col("end_ns").max())
                .sort("start_ns")
                .head(200)
            )
            if spans.height:
                fig, ax = plt.subplots(figsize=(9, 3.5))
                sessions = sorted(set(spans["session"].to_list()))
                t0 = spans["start_ns"].min()
                apps = sorted({a or "(unknown)" for a in spans["app"].to_list()})
                colors = {a: plt.cm.tab20(i % 20) for i, a in enumerate(apps)}
                for r in spans.to_dicts():
                    yi = sessions.index(r["session"])
                    ax.barh(yi, (r["end_ns"] - r["start_ns"]) / 60e9 or 0.01, left=(r["start_ns"] - t0) / 60e9,
                            color=colors[r["app"] or "(unknown)"])
                ax.set_yticks(range(len(sessions)), [s[:18] for s in sessions])
                ax.set_xlabel("minutes since the first action")
                ax.set_title("Session timeline (colour = application)")
                handles = [plt.Rectangle((0, 0), 1, 1, color=colors[a]) for a in apps[:12]]
                ax.legend(handles, apps[:12], fontsize=7, loc="upper right")
                sections.append(_section("Session timeline", _png(fig), f"{len(sessions)} capture sessions"))

    if "typing" in kinds:
        typing = load_split(d, "typing")
        speeds = typing.filter(pl.col("wpm").is_not_null() & (pl.col("insertions") >= 5))["wpm"] if typing.height else pl.Series([])
        if len(speeds):
            fig, ax = plt.subplots(figsize=(7, 3.5))
            ax.hist(speeds.to_list(), bins=30, color="#a5533b")
            ax.set_xlabel("words per minute (fields with ≥5 characters typed)")
            ax.set_ylabel("fields")
            ax.set_title("Typing speed")
            sections.append(_section("Typing speed distribution", _png(fig), f"median {speeds.median():.1f} wpm over {len(speeds)} fields"))

    if "cursor" in kinds:
        cur = load_split(d, "cursor")
        if cur.height:
            sample = cur.sort("path_length_px", descending=True).head(sample_paths)
            sw = int(sample["screen_w"].drop_nulls().max() or max(p["x"] for ps in sample["path"].to_list() for p in ps) + 1)
            sh = int(sample["screen_h"].drop_nulls().max() or max(p["y"] for ps in sample["path"].to_list() for p in ps) + 1)
            fig, ax = plt.subplots(figsize=(8, 8 * sh / max(sw, 1)))
            ax.add_patch(plt.Rectangle((0, 0), sw, sh, fill=False, edgecolor="black"))
            for path, ends in zip(sample["path"].to_list(), sample["ends_with"].to_list()):
                xs = [p["x"] for p in path]
                ys = [p["y"] for p in path]
                ax.plot(xs, ys, linewidth=0.8)
                ax.plot(xs[-1:], ys[-1:], "o" if ends == "click" else "x", markersize=4, color="black")
            ax.set_xlim(0, sw)
            ax.set_ylim(sh, 0)  # screen coordinates: y grows downwards
            ax.set_aspect("equal")
            ax.set_title(f"Sample cursor paths on the {sw}×{sh} screen (o = click, x = rest/drag)")
            sections.append(_section("Cursor paths", _png(fig), f"{len(sample)} longest of {cur.height} segments"))

    counts = manifest.get("counts", {})
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td>" + "".join(f"<td>{c.get(s, 0)}</td>" for s in ("train", "validation", "test")) + "</tr>"
        for k, c in counts.items()
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tracework dataset report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}img{{max-width:100%}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .6em}}</style></head>
<body><h1>Tracework dataset report</h1>
<p>Dataset: <code>{html.escape(str(d))}</code> — source table version {html.escape(str(manifest.get('source', {}).get('version')))},
built {html.escape(str(manifest.get('built_at')))}, {len(manifest.get('persons', []))} people (pseudonymous).</p>
<table><tr><th>kind</th><th>train</th><th>validation</th><th>test</th></tr>{rows}</table>
{''.join(sections) or '<p>No rows to plot.</p>'}
</body></html>
"""
    out.write_text(page)
    return out


def _section(title: str, img: str, caption: str) -> str:
    return f'<h2>{html.escape(title)}</h2><p>{html.escape(caption)}</p><img alt="{html.escape(title)}" src="{img}">'

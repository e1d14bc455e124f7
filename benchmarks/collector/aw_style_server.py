"""Baseline for bench_ingest.py: an ActivityWatch-style ingest server.

One JSON event object per POST (like aw-server's
``POST /api/0/buckets/<bucket>/events``), validated against the same event
model, inserted into SQLite with one transaction per request (aw-server's
peewee datastore does the same). SQLite runs in WAL mode with
synchronous=NORMAL — fewer fsyncs than the Tracework collector does, so the
comparison is generous to the baseline.

Run: python aw_style_server.py <sqlite-path> <port>
"""

from __future__ import annotations

import sqlite3
import sys
import threading

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tracework.events import AnyEvent

_decoder = msgspec.json.Decoder(AnyEvent)


def create_app(db_path: str) -> Starlette:
    conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS eventmodel (id INTEGER PRIMARY KEY, bucket_id TEXT, "
        "timestamp INTEGER, type TEXT, datastr TEXT)"
    )
    lock = threading.Lock()

    async def post_event(request: Request):
        body = await request.body()
        try:
            event = _decoder.decode(body)
        except msgspec.DecodeError as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        with lock:
            conn.execute("BEGIN")
            conn.execute(
                "INSERT INTO eventmodel (bucket_id, timestamp, type, datastr) VALUES (?, ?, ?, ?)",
                (request.path_params["bucket"], event.t_ns, event.__struct_config__.tag, body.decode()),
            )
            conn.execute("COMMIT")
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/api/0/buckets/{bucket}/events", post_event, methods=["POST"])])


if __name__ == "__main__":
    uvicorn.run(create_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)

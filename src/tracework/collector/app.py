"""The collector's HTTP surface: thin Starlette routes over :class:`IngestService`.

    POST /v1/batches   Authorization: Bearer <token>, Content-Type: application/x-ndjson,
                       Content-Encoding: zstd, body = tracework.events.encode_batch(...)
                       200 {"ok": true, "batch_id": …, "stored": N, "duplicate": false}
    GET  /healthz      200 {"ok": true, "status": "serving"}
    GET  /metrics      Prometheus text format
    …                  the governance routes (tracework.collector.governance_routes)

Every error, on every route, has one shape:
``{"ok": false, "status": 4xx|5xx, "error": {"code": "...", "message": "..."}}``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .ingest import IngestError, IngestService

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The one error shape of the collector."""
    return JSONResponse({"ok": False, "status": status, "error": {"code": code, "message": message}}, status_code=status)


def _bearer(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    scheme, _, token = (value or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _json_body(content: dict) -> bytes:
    # Byte for byte what Starlette's JSONResponse renders.
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


class BatchEndpoint:
    """``POST /v1/batches`` as a bare ASGI app: the hot route of the collector
    (one request per 5,000 events) without Starlette's Request/Response
    objects, routing or middleware — the event loop's CPU per request is a
    noticeable part of the collector's total. Same behaviour as a Starlette
    route: authentication before the body is read, 415 on the declared
    content type/encoding before the body is read, the body cap enforced
    while reading (Content-Length only used to refuse early, never trusted),
    the one error shape, a 400 when the client disconnects mid-body, a 500
    (logged) on anything unexpected."""

    def __init__(self, service: IngestService):
        self.service = service

    async def __call__(self, scope, receive, send) -> None:
        service = self.service
        try:
            status, content = 200, None
            # Header names arrive lower-cased (ASGI); the first of repeated
            # headers wins, as with Starlette's Headers.get.
            auth = ctype = cenc = clen = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    if auth is None:
                        auth = value.decode("latin-1")
                elif name == b"content-type":
                    if ctype is None:
                        ctype = value.decode("latin-1")
                elif name == b"content-encoding":
                    if cenc is None:
                        cenc = value.decode("latin-1")
                elif name == b"content-length" and clen is None:
                    clen = value.decode("latin-1")
            try:
                token = _bearer(auth)
                identity = await run_in_threadpool(service.authenticate, token)
                service.check_headers(ctype, cenc)
                body = await _read_capped(receive, clen, service.limits.max_body_bytes, service.body_too_large)
                result = await run_in_threadpool(service.ingest, token, body, ctype, cenc, identity=identity)
                content = result.to_json()
            except IngestError as exc:
                status, content = exc.status, exc.to_json()
            except ClientDisconnect:
                status, content = 400, _error_json(
                    400, "client_disconnected", "the client disconnected before sending the whole body"
                )
        except Exception:  # answered with the one error shape, and logged
            log.exception("unexpected error serving %s", scope.get("path"))
            status, content = 500, _error_json(
                500, "internal_error", "the collector hit an unexpected error; retry later and report it"
            )
        payload = _json_body(content)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _read_capped(receive, declared: str | None, limit: int, too_large) -> bytes:
    """Read the body, refusing (``too_large()``) as soon as it passes ``limit``
    bytes; the Content-Length header is only used to refuse early, never trusted."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large()
    chunks = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise too_large()
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif kind == "http.disconnect":
            raise ClientDisconnect()


def _error_json(status: int, code: str, message: str) -> dict:
    return {"ok": False, "status": status, "error": {"code": code, "message": message}}


class CollectorApp(Starlette):
    """The Starlette app, except that ``POST /v1/batches`` goes straight to
    its :class:`BatchEndpoint` (the same endpoint the route table lists, so
    a request that does not match exactly — e.g. under a ``root_path`` —
    still gets the same handling through Starlette's routing)."""

    batch_endpoint: BatchEndpoint | None = None

    async def __call__(self, scope, receive, send) -> None:
        endpoint = self.batch_endpoint
        if (
            endpoint is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/v1/batches"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            await endpoint(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def governance_routes(service: IngestService) -> list:
    """The governance area's routes (consent documents, people, requests…),
    owned by tracework.collector.governance_routes, for ``service``'s data
    folder; they open the governance store on first use. ``tracework serve``
    mounts them; apps built directly (tests) mount what they need."""
    try:
        from .governance_routes import governance_routes_for
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.governance_routes":
            raise
        return []
    return governance_routes_for(service)


def create_app(service: IngestService, *, tune_gc: bool = True, on_shutdown=None, extra_routes=None) -> CollectorApp:
    """The ASGI app serving ``service`` (plus ``extra_routes``, e.g.
    :func:`governance_routes`). The service is closed (queued batches
    committed) when the app shuts down; ``on_shutdown()`` is called after that."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "status": "serving"})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        hint = {404: "the collector serves POST /v1/batches, GET /healthz and GET /metrics",
                405: "check the HTTP method: batches are POSTed"}
        return error_response(
            exc.status_code, codes.get(exc.status_code, "http_error"), hint.get(exc.status_code, str(exc.detail))
        )

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error serving %s", request.url.path)
        return error_response(500, "internal_error", "the collector hit an unexpected error; retry later and report it")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if tune_gc:
            # A 5,000-event batch allocates 5,000+ objects at once; with the
            # default gen-0 threshold (700) the cyclic GC runs many times per
            # batch and roughly doubled decode cost in measurements. The
            # objects are acyclic and freed by refcount, so collect rarely.
            gc.freeze()
            gc.set_threshold(200_000, 50, 100)
        try:
            yield
        finally:
            await run_in_threadpool(service.close)
            if on_shutdown is not None:
                on_shutdown()

    batch_endpoint = BatchEndpoint(service)
    routes = [
        Route("/v1/batches", batch_endpoint, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    routes += list(extra_routes or [])
    app = CollectorApp(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )
    app.batch_endpoint = batch_endpoint
    app.state.service = service
    return app

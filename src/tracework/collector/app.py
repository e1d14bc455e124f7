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


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def _read_capped(request: Request, limit: int, too_large: IngestError) -> bytes:
    """Read the body, refusing as soon as it passes ``limit`` bytes; the
    Content-Length header is only used to refuse early, never trusted."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


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


def create_app(service: IngestService, *, tune_gc: bool = True, on_shutdown=None, extra_routes=None) -> Starlette:
    """The ASGI app serving ``service`` (plus ``extra_routes``, e.g.
    :func:`governance_routes`). The service is closed (queued batches
    committed) when the app shuts down; ``on_shutdown()`` is called after that."""

    async def post_batch(request: Request) -> Response:
        try:
            token = _bearer(request)
            identity = await run_in_threadpool(service.authenticate, token)
            service.check_headers(request.headers.get("content-type"), request.headers.get("content-encoding"))
            body = await _read_capped(request, service.limits.max_body_bytes, service.body_too_large())
            result = await run_in_threadpool(
                service.ingest,
                token,
                body,
                request.headers.get("content-type"),
                request.headers.get("content-encoding"),
                identity=identity,
            )
        except IngestError as exc:
            return JSONResponse(exc.to_json(), status_code=exc.status)
        except ClientDisconnect:
            return error_response(400, "client_disconnected", "the client disconnected before sending the whole body")
        return JSONResponse(result.to_json())

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

    routes = [
        Route("/v1/batches", post_batch, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    routes += list(extra_routes or [])
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
        lifespan=lifespan,
    )
    app.state.service = service
    return app

"""Governance HTTP routes, mounted by the collector app: thin layers over
:class:`tracework.governance.service.Governance`.

Authentication: ``Authorization: Bearer <token>``. ``GET /v1/consent`` takes a
*device* token (the agent's upload token); every other authenticated route a
*role* token (``tracework people token``). Which role may call which route is
:data:`ROUTES` (checked again inside the domain API), and the
authorization-matrix test walks every route for every role.

Errors have the collector's one shape:
``{"ok": false, "status": 4xx, "error": {"code": "...", "message": "..."}}``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import AuthError, ConsentError, GovernanceError, LakeError, TraceworkError
from ..governance.purposes import PURPOSES
from ..governance.requests import access_archive, erase_person
from ..governance.retention import run_retention
from ..governance.roles import Principal
from ..governance.stats import activity_stats

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024



class ConsentChange(msgspec.Struct, forbid_unknown_fields=True):
    action: str
    purpose: str
    request_id: str
    classes: list[str] = []
    notice_version: int = 0


class PersonRequest(msgspec.Struct, forbid_unknown_fields=True):
    person_id: str
    request_id: str


class OwnErasure(msgspec.Struct, forbid_unknown_fields=True):
    request_id: str
    confirm: bool
    keep_consent: bool = False


class ErasureRequest(msgspec.Struct, forbid_unknown_fields=True):
    person_id: str
    request_id: str
    keep_consent: bool = False


class NewPerson(msgspec.Struct, forbid_unknown_fields=True):
    person_id: str
    display_name: str = ""
    team: str = ""


class DeviceRevoke(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = "revoked by an administrator"


class PolicyChange(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    value: Any


class RetentionRun(msgspec.Struct, forbid_unknown_fields=True):
    dry_run: bool = False


@dataclass(frozen=True)
class RouteSpec:
    """One governance route: path, method, who may call it."""

    path: str
    method: str
    auth: str  # "public", "device" or "role"
    roles: frozenset[str]
    handler: Callable


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "status": status, "error": {"code": code, "message": message}}, status_code=status)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _map_error(exc: Exception) -> JSONResponse:
    status = getattr(exc, "status", None)
    if isinstance(exc, AuthError):
        return _error(status or 401, "forbidden" if status == 403 else "unauthorized", str(exc))
    if isinstance(exc, ConsentError):
        return _error(403, getattr(exc, "code", "consent_refused"), str(exc))
    if isinstance(exc, GovernanceError):
        code = {404: getattr(exc, "code", "unknown_person"), 409: "replayed_request"}.get(status or 400, "bad_request")
        return _error(status or 400, code, str(exc))
    if isinstance(exc, LakeError):
        return _error(503, "lake_unavailable", str(exc))
    return _error(400, "bad_request", str(exc))


async def _body(request: Request, schema: type) -> Any:
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise GovernanceError(f"the request body is larger than {MAX_BODY} bytes", hint="governance requests are small JSON objects")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise GovernanceError("the request body must be JSON", hint="send Content-Type: application/json")
    try:
        return msgspec.json.decode(data, type=schema)
    except msgspec.ValidationError as exc:
        raise GovernanceError(f"malformed request: {exc}", hint="see docs/governance.md for the request fields") from None
    except msgspec.DecodeError as exc:
        raise GovernanceError(f"the body is not valid JSON: {exc}", hint="send one JSON object") from None


def route_specs(gov) -> list[RouteSpec]:
    """Every governance route with its handler and allowed roles (also used by
    docs and the authorization-matrix test)."""

    async def consent_document(request: Request, principal) -> Response:
        identity = principal
        doc = await run_in_threadpool(gov.consent_document, identity.person_id, identity.device_id)
        return JSONResponse(doc)

    async def consent_public_key(request: Request, principal) -> Response:
        return JSONResponse({"ok": True, "algorithm": "Ed25519", "public_key": gov.consent_public_key(), "key_id": gov.consent_key.key_id})

    async def notices(request: Request, principal) -> Response:
        out = {}
        for purpose, (label, classes) in PURPOSES.items():
            n = gov.notices.notice(purpose)
            out[purpose] = {"label": label, "classes": sorted(classes), "current_version": n.version, "title": n.title}
        return JSONResponse({"ok": True, "purposes": out})

    async def notice(request: Request, principal) -> Response:
        purpose = request.path_params["purpose"]
        version = request.query_params.get("version")
        if version is not None and not version.isdigit():
            raise GovernanceError("version must be a whole number", hint="omit it for the current notice")
        n = gov.notices.notice(purpose, int(version) if version else None)
        return JSONResponse({"ok": True, "purpose": purpose, "version": n.version, "text": n.text})

    async def my_consent(request: Request, principal: Principal) -> Response:
        status = await run_in_threadpool(gov.consent_status, principal, principal.person_id)
        history = await run_in_threadpool(gov.consent_history, principal, principal.person_id)
        return JSONResponse({"ok": True, **status, "history": history})

    async def change_my_consent(request: Request, principal: Principal) -> Response:
        body = await _body(request, ConsentChange)
        if body.action == "grant":
            result = await run_in_threadpool(
                gov.grant, principal, principal.person_id, body.purpose, body.classes, body.notice_version, body.request_id
            )
        elif body.action == "withdraw":
            result = await run_in_threadpool(gov.withdraw, principal, principal.person_id, body.purpose, body.request_id)
        else:
            raise GovernanceError(f"action must be 'grant' or 'withdraw', not {body.action!r}", hint='see docs/governance.md')
        return JSONResponse({"ok": True, "event": result})

    async def my_archive(request: Request, principal: Principal) -> Response:
        request_id = request.query_params.get("request_id")
        data = await run_in_threadpool(access_archive, gov, principal, principal.person_id, request_id)
        return Response(data, media_type="application/zip", headers={"content-disposition": 'attachment; filename="tracework-access.zip"'})

    async def my_erasure(request: Request, principal: Principal) -> Response:
        body = await _body(request, OwnErasure)
        if not body.confirm:
            raise GovernanceError("erasure is permanent", hint="send confirm: true to go ahead")
        report = await run_in_threadpool(
            lambda: erase_person(gov, principal, principal.person_id, body.request_id, keep_consent=body.keep_consent)
        )
        return JSONResponse({"ok": report.verified, **report.as_dict()})

    async def access_request(request: Request, principal: Principal) -> Response:
        body = await _body(request, PersonRequest)
        data = await run_in_threadpool(access_archive, gov, principal, body.person_id, body.request_id)
        return Response(data, media_type="application/zip", headers={"content-disposition": 'attachment; filename="tracework-access.zip"'})

    async def erasure_request(request: Request, principal: Principal) -> Response:
        body = await _body(request, ErasureRequest)
        report = await run_in_threadpool(
            lambda: erase_person(gov, principal, body.person_id, body.request_id, keep_consent=body.keep_consent)
        )
        return JSONResponse({"ok": report.verified, **report.as_dict()})

    async def list_requests(request: Request, principal: Principal) -> Response:
        return JSONResponse({"ok": True, "requests": await run_in_threadpool(gov.requests, principal)})

    async def audit_entries(request: Request, principal: Principal) -> Response:
        after = request.query_params.get("after", "0")
        limit = request.query_params.get("limit", "1000")
        if not after.isdigit() or not limit.isdigit() or not 1 <= int(limit) <= 10000:
            raise GovernanceError("after must be a whole number and limit between 1 and 10000", hint="for example ?after=0&limit=100")
        gov.authorize(principal, "audit.read")
        entries = await run_in_threadpool(gov.audit.entries, after=int(after), limit=int(limit))
        await run_in_threadpool(gov.audit.append, gov.actor(principal), "audit.read", "audit", {"after": int(after), "count": len(entries)})
        return JSONResponse({"ok": True, "entries": [e.to_dict() for e in entries]})

    async def audit_verify(request: Request, principal: Principal) -> Response:
        gov.authorize(principal, "audit.read")
        report = await run_in_threadpool(gov.audit.verify)
        return JSONResponse({"ok": report.ok, "entries": report.entries, "signed_heads": report.signed_heads, "problems": report.problems})

    async def identity(request: Request, principal: Principal) -> Response:
        result = await run_in_threadpool(gov.identity_of, principal, request.path_params["pseudonym"])
        return JSONResponse({"ok": True, **result})

    async def people(request: Request, principal: Principal) -> Response:
        return JSONResponse({"ok": True, "people": await run_in_threadpool(gov.people, principal)})

    async def add_person(request: Request, principal: Principal) -> Response:
        body = await _body(request, NewPerson)
        person = await run_in_threadpool(gov.add_person, principal, body.person_id, body.display_name, body.team)
        return JSONResponse({"ok": True, "person": person}, status_code=201)

    async def devices(request: Request, principal: Principal) -> Response:
        return JSONResponse({"ok": True, "devices": await run_in_threadpool(gov.list_devices, principal)})

    async def revoke_device(request: Request, principal: Principal) -> Response:
        body = await _body(request, DeviceRevoke)
        await run_in_threadpool(gov.revoke_device, principal, request.path_params["device_id"], body.reason)
        return JSONResponse({"ok": True, "revoked": request.path_params["device_id"]})

    async def policy(request: Request, principal: Principal) -> Response:
        return JSONResponse({"ok": True, "policy": await run_in_threadpool(gov.read_policy, principal)})

    async def change_policy(request: Request, principal: Principal) -> Response:
        body = await _body(request, PolicyChange)
        return JSONResponse({"ok": True, "policy": await run_in_threadpool(gov.set_policy, principal, body.name, body.value)})

    async def retention(request: Request, principal: Principal) -> Response:
        body = await _body(request, RetentionRun)
        return JSONResponse({"ok": True, **await run_in_threadpool(run_retention, gov, principal, None, body.dry_run)})

    async def consent_stats(request: Request, principal: Principal) -> Response:
        return JSONResponse({"ok": True, **await run_in_threadpool(gov.consent_stats, principal)})

    async def activity(request: Request, principal: Principal) -> Response:
        return JSONResponse({"ok": True, **await run_in_threadpool(activity_stats, gov, principal)})

    from ..governance.service import PERMISSIONS as P

    return [
        RouteSpec("/v1/consent", "GET", "device", frozenset(), consent_document),
        RouteSpec("/v1/consent/public-key", "GET", "public", frozenset(), consent_public_key),
        RouteSpec("/v1/notices", "GET", "public", frozenset(), notices),
        RouteSpec("/v1/notices/{purpose}", "GET", "public", frozenset(), notice),
        RouteSpec("/v1/me/consent", "GET", "role", P["consent.own"], my_consent),
        RouteSpec("/v1/me/consent", "POST", "role", P["consent.own"], change_my_consent),
        RouteSpec("/v1/me/archive", "GET", "role", P["data.own"], my_archive),
        RouteSpec("/v1/me/erasure", "POST", "role", P["data.own"], my_erasure),
        RouteSpec("/v1/requests/access", "POST", "role", P["requests.handle"], access_request),
        RouteSpec("/v1/requests/erasure", "POST", "role", P["requests.handle"], erasure_request),
        RouteSpec("/v1/requests", "GET", "role", P["requests.handle"], list_requests),
        RouteSpec("/v1/audit", "GET", "role", P["audit.read"], audit_entries),
        RouteSpec("/v1/audit/verify", "GET", "role", P["audit.read"], audit_verify),
        RouteSpec("/v1/identity/{pseudonym}", "GET", "role", P["identity.read"], identity),
        RouteSpec("/v1/people", "GET", "role", P["people.manage"], people),
        RouteSpec("/v1/people", "POST", "role", P["people.manage"], add_person),
        RouteSpec("/v1/devices", "GET", "role", P["people.manage"], devices),
        RouteSpec("/v1/devices/{device_id}/revoke", "POST", "role", P["people.manage"], revoke_device),
        RouteSpec("/v1/policy", "GET", "role", P["policy.read"], policy),
        RouteSpec("/v1/policy", "PUT", "role", P["policy.change"], change_policy),
        RouteSpec("/v1/retention/run", "POST", "role", P["retention.run"], retention),
        RouteSpec("/v1/stats/consent", "GET", "role", P["stats.read"], consent_stats),
        RouteSpec("/v1/stats/activity", "GET", "role", P["stats.read"], activity),
    ]


def governance_routes(gov, device_registry=None) -> list[Route]:
    """Starlette routes over ``gov`` for the collector app to mount.
    ``device_registry`` authenticates agents for ``GET /v1/consent``
    (default: ``gov.devices``)."""
    registry = device_registry or gov.devices
    specs = route_specs(gov)

    def wrap(spec: RouteSpec):
        async def endpoint(request: Request) -> Response:
            try:
                principal = None
                if spec.auth == "device":
                    if registry is None:
                        return _error(503, "devices_unavailable", "the device registry is not available on this collector")
                    result = await run_in_threadpool(registry.check, _bearer(request))
                    if result.identity is None:
                        return _error(401, f"{result.reason}_token", "send the device's upload token: Authorization: Bearer <token>")
                    principal = result.identity
                elif spec.auth == "role":
                    principal = await run_in_threadpool(gov.tokens.authenticate, _bearer(request))
                    if principal.role not in spec.roles:
                        return _error(403, "forbidden", f"the {principal.role} role may not call {spec.method} {spec.path}")
                return await spec.handler(request, principal)
            except TraceworkError as exc:
                return _map_error(exc)
            except Exception:  # noqa: BLE001 - one error shape, never a stack trace to the client
                log.exception("governance route %s %s failed", spec.method, spec.path)
                return _error(500, "internal_error", "the governance service hit an unexpected error; retry later and report it")

        endpoint.__name__ = f"{spec.method.lower()}_{spec.path.strip('/').replace('/', '_')}"
        return endpoint

    # Several specs share a path with different methods: one Route per path
    # dispatching by method, so an unsupported method is a clean 405.
    by_path: dict[str, dict[str, RouteSpec]] = {}
    for spec in specs:
        by_path.setdefault(spec.path, {})[spec.method] = spec
    routes = []
    for path, methods in by_path.items():
        handlers = {m: wrap(s) for m, s in methods.items()}

        async def dispatch(request: Request, handlers=handlers, path=path) -> Response:
            handler = handlers.get(request.method)
            if handler is None:
                return _error(405, "method_not_allowed", f"{path} accepts {', '.join(sorted(handlers))}")
            return await handler(request)

        routes.append(Route(path, dispatch, methods=sorted(handlers)))
    return routes


class _LazyGovernance:
    """Opens the governance service on first use, so a collector that never
    serves a governance request creates no governance state."""

    def __init__(self, data_dir):
        self._data_dir = data_dir
        self._gov = None
        self._lock = __import__("threading").Lock()

    def __getattr__(self, name):
        if self._gov is None:
            with self._lock:
                if self._gov is None:
                    from ..governance import open_governance

                    self._gov = open_governance(self._data_dir)
        return getattr(self._gov, name)


def governance_routes_for(service) -> list[Route]:
    """The governance routes for a collector's :class:`IngestService` (same
    data folder, same device registry). The collector app mounts them with
    ``routes += governance_routes_for(service)``."""
    return governance_routes(_LazyGovernance(service.data_dir), device_registry=service.registry)

"""Governance routes on a real collector served by uvicorn on 127.0.0.1:
the authorization matrix over every route and role, bad input on every
route (nothing changes), the consent document and the collector's 403."""

from __future__ import annotations

import hashlib
import secrets
import time

from tracework.collector.governance_routes import route_specs
from tracework.events import BatchHeader, KeyDown, MouseMove, encode_batch
from tracework.governance import verify_consent_document
from tracework.lake import open_table

ROLES = ("person", "ml_engineer", "privacy_officer", "admin")


def _rid() -> str:
    return "req-" + secrets.token_hex(6)


def _sample(gov, method: str, path: str) -> dict:
    """A well-formed request for each route (so an allowed role gets a 2xx)."""
    if path == "/v1/notices/{purpose}":
        return {"url": "/v1/notices/typing_models"}
    if path == "/v1/devices/{device_id}/revoke":
        # A fresh device to revoke on every allowed call.
        device_id, _ = gov.devices.enroll("pat", "spare") if gov.devices is not None else (None, None)
        return {"url": f"/v1/devices/{device_id}/revoke", "json": {}}
    if path == "/v1/identity/{pseudonym}":
        return {"url": f"/v1/identity/{gov.pseudonym('pat')}"}
    bodies = {
        ("POST", "/v1/me/consent"): {"action": "grant", "purpose": "typing_models", "classes": ["key_timing"], "notice_version": 1, "request_id": _rid()},
        ("POST", "/v1/me/erasure"): {"request_id": _rid(), "confirm": True},
        ("POST", "/v1/requests/access"): {"person_id": "pat", "request_id": _rid()},
        ("POST", "/v1/requests/erasure"): {"person_id": "pat", "request_id": _rid()},
        ("POST", "/v1/people"): {"person_id": "new-" + secrets.token_hex(4), "team": "eng"},
        ("PUT", "/v1/policy"): {"name": "retention.raw_days", "value": 30},
        ("POST", "/v1/retention/run"): {"dry_run": True},
    }
    out = {"url": path}
    if (method, path) in bodies:
        out["json"] = bodies[(method, path)]
    return out


def _call(client, gov, spec, token):
    req = _sample(gov, spec.method, spec.path)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return client.request(spec.method, req["url"], json=req.get("json"), headers=headers)


def test_authorization_matrix_covers_every_route_for_every_role(gov, served):
    client, tokens = served["client"], served["tokens"]
    specs = route_specs(gov)
    # Every governance route of the running app is in the matrix.
    app_paths = {r.path for r in served["app"].routes if r.path.startswith("/v1/") and r.path != "/v1/batches"}
    assert app_paths == {s.path for s in specs}
    checked = 0
    for spec in specs:
        for role in ROLES:
            r = _call(client, gov, spec, tokens[role])
            if spec.auth == "public":
                expected_ok = True
            elif spec.auth == "device":
                expected_ok = False  # role tokens are not device tokens
            else:
                expected_ok = role in spec.roles
            if expected_ok:
                assert 200 <= r.status_code < 300, (spec.method, spec.path, role, r.status_code, r.text)
            else:
                assert r.status_code in (401, 403), (spec.method, spec.path, role, r.status_code, r.text)
                assert r.json()["ok"] is False and r.json()["error"]["message"]
                if spec.auth == "role":
                    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
            checked += 1
        if spec.auth != "public":
            # No token, and a forged one, are refused on every non-public route.
            for token in (None, "twg_" + secrets.token_urlsafe(32)):
                r = _call(client, gov, spec, token)
                assert r.status_code == 401, (spec.path, token, r.text)
        if spec.auth == "device":
            r = _call(client, gov, spec, served["device"])
            assert r.status_code == 200
    assert checked == len(specs) * len(ROLES)


def _snapshot(gov) -> tuple:
    counts = tuple(
        gov.store.query(f"SELECT COUNT(*) FROM {t}")[0][0]
        for t in ("gov_people", "gov_consent_events", "gov_tokens", "gov_policy", "gov_requests", "gov_audit")
    )
    dt = open_table(gov.data_dir)
    files = sorted(str(p) + hashlib.sha256(p.read_bytes()).hexdigest() for p in (gov.data_dir / "datasets").rglob("*") if p.is_file()) if (gov.data_dir / "datasets").exists() else []
    return counts, None if dt is None else dt.version(), tuple(files), tuple(sorted(gov.policy().items(), key=str))


def test_bad_input_on_every_route_gets_a_clear_error_and_changes_nothing(gov, served):
    client, tokens = served["client"], served["tokens"]
    h = {role: {"authorization": f"Bearer {t}"} for role, t in tokens.items()}
    before = _snapshot(gov)
    bad_bodies = [b"{not json", b"[]", b'{"unexpected": 1}', b"\xff\xfe"]
    for spec in route_specs(gov):
        if spec.method in ("POST", "PUT"):
            role = sorted(spec.roles)[0]
            for body in bad_bodies:
                r = client.request(spec.method, spec.path, content=body, headers={**h[role], "content-type": "application/json"})
                assert r.status_code == 400, (spec.path, body, r.text)
                assert r.json()["error"]["code"] == "bad_request" and r.json()["error"]["message"]
            r = client.request(spec.method, spec.path, content=b"x=1", headers={**h[role], "content-type": "application/x-www-form-urlencoded"})
            assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
            r = client.request(spec.method, spec.path, content=b"{" + b" " * 70000 + b"}", headers={**h[role], "content-type": "application/json"})
            assert r.status_code == 400
    cases = [
        # (role, method, url, json, status, code)
        ("privacy_officer", "POST", "/v1/requests/access", {"person_id": "nobody", "request_id": _rid()}, 404, "unknown_person"),
        ("privacy_officer", "POST", "/v1/requests/erasure", {"person_id": "nobody", "request_id": _rid()}, 404, "unknown_person"),
        ("privacy_officer", "POST", "/v1/requests/erasure", {"person_id": "pat", "request_id": "x"}, 400, "bad_request"),
        ("privacy_officer", "POST", "/v1/requests/erasure", {"person_id": 5, "request_id": _rid()}, 400, "bad_request"),
        ("privacy_officer", "GET", "/v1/identity/p_000000000000000000000000", None, 400, "bad_request"),
        ("privacy_officer", "GET", "/v1/identity/robert'); DROP TABLE gov_people;--", None, 400, "bad_request"),
        ("privacy_officer", "GET", "/v1/audit?limit=0", None, 400, "bad_request"),
        ("person", "POST", "/v1/me/consent", {"action": "grant", "purpose": "spying", "classes": ["mouse"], "notice_version": 1, "request_id": _rid()}, 400, "bad_request"),
        ("person", "POST", "/v1/me/consent", {"action": "grant", "purpose": "typing_models", "classes": ["mouse"], "notice_version": 1, "request_id": _rid()}, 400, "bad_request"),
        ("person", "POST", "/v1/me/consent", {"action": "grant", "purpose": "typing_models", "classes": ["key_timing"], "notice_version": 9, "request_id": _rid()}, 400, "bad_request"),
        ("person", "POST", "/v1/me/consent", {"action": "delete", "purpose": "typing_models", "request_id": _rid()}, 400, "bad_request"),
        ("person", "POST", "/v1/me/erasure", {"request_id": _rid(), "confirm": False}, 400, "bad_request"),
        ("person", "GET", "/v1/notices/spying", None, 400, "bad_request"),
        ("person", "GET", "/v1/notices/typing_models?version=x", None, 400, "bad_request"),
        ("person", "GET", "/v1/notices/typing_models?version=99", None, 400, "bad_request"),
        ("admin", "POST", "/v1/people", {"person_id": ""}, 400, "bad_request"),
        ("admin", "POST", "/v1/people", {"person_id": "pat"}, 400, "bad_request"),
        ("admin", "PUT", "/v1/policy", {"name": "retention.raw_days", "value": -1}, 400, "bad_request"),
        ("admin", "POST", "/v1/devices/dev_nothing/revoke", {}, 404, "unknown_device"),
        ("admin", "POST", "/v1/devices/dev_nothing/revoke", {"reason": 7}, 400, "bad_request"),
        ("admin", "PUT", "/v1/policy", {"name": "everything", "value": 1}, 400, "bad_request"),
        ("admin", "PUT", "/v1/policy", {"name": "agent_policy", "value": [1]}, 400, "bad_request"),
        # Forged role: a person token with a role header is still a person.
        ("person", "GET", "/v1/audit", None, 403, "forbidden"),
        ("person", "POST", "/v1/requests/erasure", {"person_id": "pat", "request_id": _rid()}, 403, "forbidden"),
        ("ml_engineer", "GET", f"/v1/identity/{gov.pseudonym('pat')}", None, 403, "forbidden"),
    ]
    for role, method, url, body, status, code in cases:
        r = client.request(method, url, json=body, headers={**h[role], "x-role": "admin", "x-tracework-role": "admin"})
        assert r.status_code == status, (url, body, r.text)
        assert r.json()["ok"] is False and r.json()["error"]["code"] == code and r.json()["error"]["message"]
    assert _snapshot(gov) == before
    # Method not served on a governance path.
    assert client.delete("/v1/people", headers=h["admin"]).status_code == 405


def test_replayed_request_is_refused_and_changes_nothing(gov, served):
    client, h = served["client"], {"authorization": f"Bearer {served['tokens']['person']}"}
    body = {"action": "grant", "purpose": "typing_models", "classes": ["key_timing"], "notice_version": 1, "request_id": _rid()}
    assert client.post("/v1/me/consent", json=body, headers=h).status_code == 200
    before = _snapshot(gov)
    r = client.post("/v1/me/consent", json=body, headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "replayed_request"
    body2 = dict(body, action="withdraw", classes=[])
    assert client.post("/v1/me/consent", json=body2, headers=h).status_code == 409
    assert _snapshot(gov) == before
    assert [e["action"] for e in client.get("/v1/me/consent", headers=h).json()["history"]] == ["grant"]


def _batch(events, batch_id):
    return encode_batch(BatchHeader(batch_id=batch_id, schema_version=1, event_count=len(events)), events)


def test_consent_document_and_collector_refusal_follow_withdrawal(gov, served):
    client, device = served["client"], served["device"]
    person = {"authorization": f"Bearer {served['tokens']['person']}"}
    agent = {"authorization": f"Bearer {device}", "content-type": "application/x-ndjson", "content-encoding": "zstd"}
    key = client.get("/v1/consent/public-key").json()["public_key"]
    doc = verify_consent_document(client.get("/v1/consent", headers={"authorization": f"Bearer {device}"}).json(), key)
    assert doc.classes == []
    now = time.time_ns()
    keys = [KeyDown(seq=i, t_ns=now + i, session="s1", key_code=38, key_sym="a", char="a") for i in range(3)]
    mouse = [MouseMove(seq=10 + i, t_ns=now + i, session="s1", x=i, y=i) for i in range(3)]
    r = client.post("/v1/batches", content=_batch(keys, "batch-keys-1"), headers=agent)
    assert r.status_code == 403 and r.json()["error"]["code"] == "consent_refused"
    assert open_table(gov.data_dir) is None  # nothing stored

    grant = {"action": "grant", "purpose": "typing_models", "classes": ["key_text", "key_timing"], "notice_version": 1, "request_id": _rid()}
    assert client.post("/v1/me/consent", json=grant, headers=person).status_code == 200
    doc2 = verify_consent_document(client.get("/v1/consent", headers={"authorization": f"Bearer {device}"}).json(), key,
                                   min_consent_version=doc.consent_version)
    assert doc2.classes == ["key_text", "key_timing"]
    assert client.post("/v1/batches", content=_batch(keys, "batch-keys-2"), headers=agent).status_code == 200
    r = client.post("/v1/batches", content=_batch(mouse, "batch-mouse-1"), headers=agent)
    assert r.status_code == 403 and "mouse" in r.json()["error"]["message"]
    version = open_table(gov.data_dir).version()

    withdraw = {"action": "withdraw", "purpose": "typing_models", "request_id": _rid()}
    assert client.post("/v1/me/consent", json=withdraw, headers=person).status_code == 200
    doc3 = verify_consent_document(client.get("/v1/consent", headers={"authorization": f"Bearer {device}"}).json(), key)
    assert doc3.classes == []
    r = client.post("/v1/batches", content=_batch(keys, "batch-keys-3"), headers=agent)
    assert r.status_code == 403
    open_table(gov.data_dir).update_incremental()
    assert open_table(gov.data_dir).version() == version


def test_aggregate_statistics_suppress_groups_under_k(gov, op, served):
    client, h = served["client"], {"authorization": f"Bearer {served['tokens']['ml_engineer']}"}
    for i in range(4):  # with pat: 5 in eng
        gov.add_person(op, f"eng{i}", "", "eng")
    for i in range(4):  # 4 in sales: under k=5
        gov.add_person(op, f"sales{i}", "", "sales")
    for pid in ("pat", "eng0", "eng1", "sales0"):
        gov.grant(op, pid, "cursor_models", ["mouse"], 1)
    body = client.get("/v1/stats/consent", headers=h).json()
    groups = {g["team"]: g for g in body["groups"]}
    assert body["k"] == 5
    assert groups["eng"] == {"team": "eng", "suppressed": False, "people": 5, "consenting": {"agent_training": 0, "typing_models": 0, "cursor_models": 3}}
    assert groups["sales"] == {"team": "sales", "suppressed": True, "reason": "fewer than 5 people"}
    act = client.get("/v1/stats/activity", headers=h).json()
    assert act["groups"] == [] and act["released_total"] == {"people": 0, "events": 0}
    # Lowering k is a policy change by an administrator, and is audited.
    gov.set_policy(op, "k_anonymity", 4)
    groups = {g["team"]: g for g in client.get("/v1/stats/consent", headers=h).json()["groups"]}
    assert groups["sales"]["suppressed"] is False and groups["sales"]["consenting"]["cursor_models"] == 1

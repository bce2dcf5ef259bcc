"""The look-ups answered outside FastAPI's routing (service/hot_routes.py): same answers, same refusals, same
metrics as the declared routes, and FastAPI's router really is skipped for them (that is their reason to be)."""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from service_helpers import make_config, make_keys, make_settings
from threatexchange.signal_type.pdq.signal import PdqSignal

from tripwire.service import hma_matching
from tripwire.service.app import create_app
from tripwire.service.hot_routes import HotRoutes
from tripwire.store.db import open_db

PDQ = PdqSignal.get_examples()[0]


@pytest.fixture()
def service(tmp_path):
    db = open_db(f"sqlite:///{tmp_path / 'hot.db'}")
    keys = make_keys(db)
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config), database=db)
    routed: list[str] = []
    router_app = app.router

    async def watching_router(scope, receive, send):  # records what FastAPI's router was asked to route
        routed.append(scope.get("path", scope["type"]))
        await router_app(scope, receive, send)

    app.router = watching_router  # type: ignore[assignment]
    with TestClient(app) as client:
        assert client.post("/c/banks", json={"name": "BENIGN_TEST"}, headers=keys.h("admin")).status_code == 201
        added = client.post("/c/bank/BENIGN_TEST/signal", json={"pdq": PDQ}, headers=keys.h("admin"))
        assert added.status_code == 200, added.text
        routed.clear()
        yield client, keys, routed
    db.dispose()


def test_hot_lookups_answer_without_the_router(service):
    client, keys, routed = service
    near = PDQ[:-1] + ("0" if PDQ[-1] != "0" else "1")  # a few bits away
    query = {"signal_type": "pdq", "signal": near, "include_distance": "true"}
    raw = client.get("/m/raw_lookup", params=query, headers=keys.h("submitter"))
    by_bank = client.get("/m/lookup", params=query, headers=keys.h("submitter"))
    assert raw.status_code == 200 and by_bank.status_code == 200
    [match] = raw.json()["matches"]
    assert match["distance"] in ("1", "2")  # the last hex digit changed: one or two bits
    assert by_bank.json() == {"BENIGN_TEST": [match]}
    assert raw.headers["cache-control"] == "no-store" and raw.headers["x-content-type-options"] == "nosniff"
    assert routed == []  # neither went through FastAPI's router
    # the same paths with another method or a trailing slash are the router's, as before
    assert client.post("/m/raw_lookup", params=query, headers=keys.h("submitter")).status_code == 405
    assert routed == ["/m/raw_lookup"]


def test_hot_lookups_refuse_as_the_declared_routes_do(service):
    client, keys, routed = service
    query = {"signal_type": "pdq", "signal": PDQ}
    refused = client.get("/m/raw_lookup", params=query, headers=keys.h("auditor"))
    assert refused.status_code == 403
    assert refused.json() == {"detail": "the auditor role may not do this (lookup)"}
    assert client.get("/m/raw_lookup", params=query).status_code == 401  # no key: the auth middleware's answer
    missing = client.get("/m/raw_lookup", params={"signal_type": "pdq"}, headers=keys.h("submitter"))
    assert missing.status_code == 422 and missing.json() == {"message": "signal required"}
    unknown = client.get("/m/lookup", params={"signal_type": "nope", "signal": "x"}, headers=keys.h("submitter"))
    assert unknown.status_code == 400 and "No such SignalType" in unknown.json()["message"]
    assert routed == []
    metrics = client.get("/metrics", headers=keys.h("admin")).text
    for route, status in (("/m/raw_lookup", 403), ("/m/raw_lookup", 422), ("/m/lookup", 400)):  # the declared route's label
        assert re.search(rf'tripwire_http_requests_total{{method="GET",replica="[^"]+",route="{route}",status="{status}"}} 1.0',
                         metrics), (route, status)


def test_a_hot_route_must_be_declared():
    router = APIRouter()

    @router.get("/declared")
    async def declared() -> dict:
        return {}

    async def answer(svc, params):  # pragma: no cover - never called
        raise AssertionError

    with pytest.raises(ValueError, match="not declared"):
        HotRoutes(declared, None, {("GET", "/elsewhere"): ("lookup", answer)}, router.routes)  # type: ignore[arg-type]
    assert set(hma_matching.HOT) <= {(m, r.path) for r in hma_matching.router.routes for m in r.methods}

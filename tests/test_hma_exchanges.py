"""HMA's exchange routes (OpenMediaMatch blueprints/curation.py: exchange_api_list, exchange_api_config_get_or_update,
exchange_api_schema_get, exchange_create, exchange_list, exchange_show_by_name, exchange_get_fetch_status,
exchange_update, exchange_delete) through the real app, and the background fetcher of ``tripwire serve`` against
a fake ThreatExchange server (tests/fake_exchanges.py)."""

from __future__ import annotations

import random
import time

from fake_exchanges import TE_TOKEN, FakeThreatExchange, TeUpdate
from fastapi.testclient import TestClient
from service_helpers import make_config, make_keys, make_settings
from sqlalchemy import select

from tripwire.config import Config
from tripwire.service.app import create_app
from tripwire.store.db import open_db


def test_hma_exchange_routes(db_url, tmp_path, monkeypatch):
    from tripwire.review.models import AuditEvent

    for var in ("TX_NCMEC_CREDENTIALS", "TX_ACCESS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.tx_ncmec_credentials from the machine
    db = open_db(db_url)
    keys = make_keys(db)
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config), database=db)
    admin = keys.h("admin")
    with TestClient(app, base_url="https://testserver") as client:
        assert client.get("/c/exchanges/apis", headers=admin).json() == ["fb_threatexchange", "ncmec", "stop_ncii", "local_file"]
        assert client.get("/c/exchanges/api/ncmec", headers=admin).json() == {
            "supports_authentification": True, "has_set_authentification": False}
        assert client.get("/c/exchanges/api/local_file", headers=admin).json()["supports_authentification"] is False
        r = client.post("/c/exchanges/api/ncmec", headers=admin, json={"credential_json": {"user": "u", "password": "p"}})
        assert r.status_code == 400 and "does not store" in r.json()["message"]
        assert client.get("/c/exchanges/api/nope", headers=admin).status_code == 400
        assert client.get("/c/exchanges/api/nope/schema", headers=admin).status_code == 404
        schema = client.get("/c/exchanges/api/ncmec/schema", headers=admin).json()
        (env_field,) = [f for f in schema["config_schema"]["fields"] if f["name"] == "environment"]
        assert env_field["type"] == "enum" and "https://hashsharing.ncmec.org/npo" in env_field["choices"]
        assert [f["name"] for f in schema["credentials_schema"]["fields"]] == ["user", "password"]
        assert client.get("/c/exchanges/api/local_file/schema", headers=admin).json()["credentials_schema"] is None

        def create(body: dict) -> tuple[int, str]:
            r = client.post("/c/exchanges", headers=admin, json=body)
            return r.status_code, r.json()["message"]

        assert create({"bank": "lower case", "api": "ncmec"})[0] == 400
        assert create({"bank": "TE_X"}) == (400, "Field `api_type` is required")
        assert create({"bank": "TE_X", "api": "nope"}) == (400, "No such exchange type 'nope'")
        assert create({"bank": "TE_X", "api": "fb_threatexchange", "api_json": []}) == (400, "Field `api_json` must be object")
        status, message = create({"bank": "TE_X", "api": "fb_threatexchange", "api_json": {"privacy_group": "x"}})
        assert status == 400 and message.startswith("Failed to parse `api_json`")
        assert create({"bank": "FILE", "api": "local_file", "api_json": {"filename": "/etc/hostname"}})[0] == 400
        assert client.post("/c/exchanges", headers=keys.h("reviewer"),
                           json={"bank": "TE_X", "api": "fb_threatexchange", "api_json": {"privacy_group": 5}}).status_code == 403
        assert create({"bank": "TE_X", "api": "fb_threatexchange", "api_json": {"privacy_group": 555, "enabled": False}}) == (
            201, "Created successfully")
        assert create({"bank": "TE_X", "api": "fb_threatexchange", "api_json": {"privacy_group": 555}})[0] == 400

        assert client.get("/c/exchanges", headers=admin).json() == ["TE_X"]
        assert client.get("/c/exchange/TE_X", headers=admin).json() == {
            "name": "TE_X", "api": "fb_threatexchange", "enabled": False, "privacy_group": 555}
        assert client.get("/c/exchange/NOPE", headers=admin).status_code == 404
        status = client.get("/c/exchange/TE_X/status", headers=admin).json()
        assert status == {"checkpoint_ts": None, "running_fetch_start_ts": None, "last_fetch_complete_ts": None,
                          "last_fetch_succeeded": None, "up_to_date": False, "fetched_items": 0, "pages_skipped": 0,
                          "last_error": None}
        assert client.put("/c/exchange/TE_X", headers=admin, json={"enabled": "yes"}).status_code == 400
        assert client.put("/c/exchange/TE_X", headers=admin, json={"enabled": True}).json()["enabled"] is True
        assert client.put("/c/exchange/NOPE", headers=admin, json={"enabled": True}).status_code == 404
        assert "TE_X" in [b["name"] for b in client.get("/c/banks", headers=admin).json()]  # HMA: the bank is made
        assert client.delete("/c/exchange/TE_X", headers=admin).json() == {"message": "Exchange deleted"}
        assert client.delete("/c/exchange/TE_X", headers=admin).status_code == 200  # as HMA: idempotent
        assert client.get("/c/exchanges", headers=admin).json() == []
        assert "TE_X" in [b["name"] for b in client.get("/c/banks", headers=admin).json()]  # the bank stays
    with db.session() as s:
        kinds = [e.kind for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq)) if e.kind.startswith("exchange.")]
    assert kinds == ["exchange.create", "exchange.update", "exchange.delete"]
    db.dispose()


def test_serve_background_fetcher_keeps_a_bank_current(tmp_path, monkeypatch):
    from tripwire.banks.exchanges.store import ExchangeStore

    monkeypatch.setenv("TRIPWIRE_EXCHANGE_CREDENTIALS_TE_BG", TE_TOKEN)
    rnd = random.Random(11)
    values = ["%064x" % rnd.getrandbits(256) for _ in range(300)]
    db = open_db(f"sqlite:///{tmp_path / 'svc.db'}")
    keys = make_keys(db)
    config = Config(sections={**make_config(tmp_path).sections, "exchanges": {"fetch_interval": 0.2}})
    with FakeThreatExchange([TeUpdate(1_700_000_000 + i, v) for i, v in enumerate(values)], privacy_group=9) as server:
        ExchangeStore(db).create("TE_BG", "fb_threatexchange", settings={"privacy_group": 9}, base_url=server.url)
        app = create_app(config=config, settings=make_settings(config), database=db)
        with TestClient(app, base_url="https://testserver") as client:
            def status() -> dict:
                return client.get("/c/exchange/TE_BG/status", headers=keys.h("admin")).json()

            deadline = time.monotonic() + 30
            while status()["fetched_items"] < 300 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert status()["last_fetch_succeeded"] is True and status()["fetched_items"] == 300
            found = client.get("/m/lookup", headers=keys.h("admin"), params={"signal": values[7], "signal_type": "pdq"}).json()
            assert list(found) == ["TE_BG"]
            # the source adds a value: a later round fetches it (incrementally) without a restart
            server.add([TeUpdate(1_700_001_000, "%064x" % rnd.getrandbits(256))])
            while status()["fetched_items"] < 301 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert status()["fetched_items"] == 301
    db.dispose()

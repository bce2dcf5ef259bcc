"""The service API through the real app (FastAPI TestClient, lifespan included), on SQLite and PostgreSQL:
auth on every route, roles, rate and size limits, no CORS, scan, lookup, banks, decisions, audit, metrics."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from helpers import image_bytes, synth_image
from service_helpers import all_routes, make_config, make_keys, make_settings, scan
from sqlalchemy import select

from tripwire.review import audit
from tripwire.review.models import AuditEvent, ItemContext
from tripwire.service.app import create_app
from tripwire.store.db import open_db


@pytest.fixture
def env(db_url, tmp_path):
    """(client, keys, db) around a fresh service."""
    db = open_db(db_url)
    keys = make_keys(db)
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config), database=db)
    with TestClient(app, base_url="https://testserver") as client:
        yield client, keys, db
    db.dispose()


def _fill(path: str) -> str:
    return (path.replace("{item_id}", "1").replace("{name}", "bank").replace("{key_id}", "abcdefabcdef")
            .replace("{bank_name}", "bank"))


def test_every_route_but_healthz_needs_a_key(env):
    client, keys, _ = env
    routes = all_routes(client.app)
    assert ("POST", "/v1/scan") in routes and ("GET", "/m/lookup") in routes and ("GET", "/console/queue") in routes
    public = {("GET", "/healthz"), ("GET", "/console/login"), ("POST", "/console/login"),
              ("GET", "/status"), ("GET", "/status/live")}  # HMA's load-balancer checks: no information given
    checked = 0
    for method, path in routes:
        if (method, path) in public:
            continue
        r = client.request(method, _fill(path), follow_redirects=False)
        if path.startswith("/console") and method == "GET":
            assert r.status_code == 303 and r.headers["location"].startswith("/console/login"), (method, path, r.status_code)
        else:
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert r.headers.get("www-authenticate", "").startswith("Bearer")
        checked += 1
    assert checked >= 30
    assert client.get("/healthz").text == "ok"
    # a key works where none did
    assert client.get("/readyz", headers=keys.h("auditor")).status_code == 200


def test_bad_keys_are_refused(env):
    client, keys, db = env
    for header in ({"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"},
                   {"Authorization": "Bearer twk_000000000000_" + "x" * 43},
                   {"Authorization": f"Bearer {keys.admin[:-2]}zz"}):
        assert client.get("/v1/banks", headers=header).status_code == 401, header
    created = client.post("/v1/keys", headers=keys.h("admin"), json={"name": "temp", "role": "submitter"}).json()
    temp = {"Authorization": f"Bearer {created['key']}"}
    assert client.post("/v1/lookup", headers=temp, json={"hashes": []}).status_code == 200
    assert client.delete(f"/v1/keys/{created['key_id']}", headers=keys.h("admin")).status_code == 200
    assert client.post("/v1/lookup", headers=temp, json={"hashes": []}).status_code == 401
    listed = client.get("/v1/keys", headers=keys.h("admin")).json()["keys"]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert any(k["key_id"] == created["key_id"] and k["revoked_at"] for k in listed)
    # only a salted hash is stored: the key text is nowhere in the table
    from tripwire.service.models import ApiKey

    with db.session() as s:
        rows = list(s.scalars(select(ApiKey)))
    assert rows and all(created["key"] not in (r.key_hash + r.salt) and len(r.salt) == 32 for r in rows)


@pytest.mark.parametrize("role,method,path,body", [
    ("submitter", "GET", "/v1/review/queue", None),
    ("submitter", "POST", "/v1/banks", {"name": "x"}),
    ("submitter", "GET", "/v1/audit", None),
    ("submitter", "GET", "/m/lookup?signal=" + "0" * 64 + "&signal_type=pdq", "ok"),
    ("auditor", "POST", "/v1/lookup", {"hashes": []}),
    ("auditor", "POST", "/v1/items/1/decision", {"decision": "not_abuse"}),
    ("reviewer", "POST", "/v1/banks", {"name": "x"}),
    ("reviewer", "POST", "/v1/keys", {"name": "x", "role": "admin"}),
    ("reviewer", "GET", "/v1/audit/verify", None),
    ("reviewer", "GET", "/metrics", None),
    ("reviewer", "POST", "/c/bank/x/signal", {"pdq": "0" * 64}),
])
def test_roles(env, role, method, path, body):
    client, keys, _ = env
    r = client.request(method, path, headers=keys.h(role), json=body if isinstance(body, dict) else None)
    if body == "ok":
        assert r.status_code == 200, r.text  # submitters may look up through the HMA endpoints
    else:
        assert r.status_code == 403, (role, path, r.status_code, r.text)
        assert role in r.json()["detail"]


def test_rate_limit_per_key(db_url, tmp_path):
    db = open_db(db_url)
    keys = make_keys(db)
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config, rate_per_s=2.0, rate_burst=3.0), database=db)
    with TestClient(app, base_url="https://testserver") as client:
        codes = [client.get("/v1/banks", headers=keys.h("admin")).status_code for _ in range(6)]
        assert codes[:3] == [200, 200, 200] and codes[-1] == 429, codes
        r = client.get("/v1/banks", headers=keys.h("admin"))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        # another key has its own bucket
        assert client.get("/v1/banks", headers=keys.h("reviewer")).status_code == 200
    db.dispose()


def test_request_size_limit(db_url, tmp_path):
    db = open_db(db_url)
    keys = make_keys(db)
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config, max_request_bytes=64 * 1024), database=db)
    with TestClient(app, base_url="https://testserver") as client:
        big = b"\0" * (100 * 1024)
        r = scan(client, keys.h("submitter"), [("big.bin", big)])
        assert r.status_code == 413 and "limit" in r.json()["detail"]

        def chunks():  # no Content-Length: the limit is enforced while streaming
            for _ in range(10):
                yield b"x" * 16 * 1024

        r = client.post("/v1/lookup", headers={**keys.h("submitter"), "Content-Type": "application/json"}, content=chunks())
        assert r.status_code == 413
        small = image_bytes(synth_image(3))
        assert scan(client, keys.h("submitter"), [("ok.jpg", small)]).status_code == 200
        # an anonymous client is refused before its body is read
        assert client.post("/v1/scan", files=[("files", ("big.bin", big, "application/octet-stream"))]).status_code == 401
    db.dispose()


def test_no_cors_by_default(env):
    client, keys, _ = env
    r = client.options("/v1/lookup", headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in {k.lower() for k in r.headers}
    r = client.get("/v1/banks", headers={**keys.h("admin"), "Origin": "https://elsewhere.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in {k.lower() for k in r.headers}
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"


def test_banks_and_batch_lookup(env):
    client, keys, _ = env
    a = keys.h("admin")
    assert client.post("/v1/banks", headers=a, json={"name": "hotline", "category_scheme": "vics"}).status_code == 201
    assert client.post("/v1/banks", headers=a, json={"name": "hotline"}).status_code == 409
    pdq = "f" * 16 + "0" * 48
    near = "e" + "f" * 15 + "0" * 48  # 1 bit away
    entries = [{"signal_type": "md5", "value": "A" * 32, "category": "1"}, {"signal_type": "pdq", "value": pdq, "category": "1"},
               {"signal_type": "sha256", "value": "b" * 64}]
    r = client.post("/v1/banks/hotline/entries", headers=a, json={"entries": entries})
    assert r.status_code == 200 and r.json()["added"] == 3
    bad = client.post("/v1/banks/hotline/entries", headers=a, json={"entries": [{"signal_type": "md5", "value": "xyz"}]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["position"] == "entries[0]"
    listed = client.get("/v1/banks", headers=keys.h("reviewer")).json()["banks"]
    assert listed[0]["name"] == "hotline" and listed[0]["entries"] == 3

    hashes = [{"signal_type": "md5", "value": f"{i:032x}"} for i in range(997)]
    hashes += [{"signal_type": "md5", "value": "a" * 32}, {"signal_type": "pdq", "value": near},
               {"signal_type": "sha256", "value": "B" * 64}]
    r = client.post("/v1/lookup", headers=keys.h("submitter"), json={"hashes": hashes})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 1000 and r.json()["matched"] == 3
    assert results[997]["matches"][0]["bank"] == "hotline" and results[997]["matches"][0]["category_label"].startswith("CAM")
    assert results[998]["matches"][0]["distance"] == 1 and results[998]["matches"][0]["signal_type"] == "pdq"
    assert results[999]["matches"][0]["value"] == "b" * 64
    assert all(not x["matches"] for x in results[:997])
    too_many = client.post("/v1/lookup", headers=keys.h("submitter"), json={"hashes": hashes + hashes[:1]})
    assert too_many.status_code == 413
    wrong = client.post("/v1/lookup", headers=keys.h("submitter"), json={"hashes": [{"signal_type": "pdq", "value": "12"}]})
    assert wrong.status_code == 422

    # removal takes effect at once; the tombstone stays
    r = client.post("/v1/banks/hotline/remove", headers=a, json={"values": [pdq], "reason": "false positive"})
    assert r.json()["removed"] == 1
    r = client.post("/v1/lookup", headers=keys.h("submitter"), json={"hashes": [{"signal_type": "pdq", "value": near}]})
    assert r.json()["results"][0]["matches"] == []
    # an allow-list suppresses
    assert client.post("/v1/banks", headers=a, json={"name": "allow", "negative": True}).status_code == 201
    client.post("/v1/banks/allow/entries", headers=a, json={"entries": [{"signal_type": "md5", "value": "a" * 32}]})
    res = client.post("/v1/lookup", headers=keys.h("submitter"), json={"hashes": [{"signal_type": "md5", "value": "a" * 32}]}).json()
    assert res["results"][0]["matches"] == [] and res["results"][0]["matches_suppressed"][0]["bank"] == "hotline"
    assert client.patch("/v1/banks/allow", headers=a, json={"enabled": False}).json()["enabled"] is False
    assert client.delete("/v1/banks/allow", headers=a).json()["deleted_entries"] == 1
    assert client.get("/v1/banks/allow", headers=a).status_code == 404


def test_bank_import_file(env, tmp_path):
    client, keys, _ = env
    a = keys.h("admin")
    client.post("/v1/banks", headers=a, json={"name": "list"})
    lines = "\n".join([f"{i:032x}" for i in range(1, 501)] + ["not-a-hash"]) + "\n"
    r = client.post("/v1/banks/list/import", headers=a, files={"file": ("hashes.txt", lines.encode(), "text/plain")})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["added"] == 500 and rep["error_count"] == 1 and rep["format"] == "lines"
    csv = "signal_type,value,category\npdq," + "0f" * 32 + ",2\n"
    r = client.post("/v1/banks/list/import", headers=a, files={"file": ("list.csv", csv.encode(), "text/csv")})
    assert r.json()["added"] == 1
    ambiguous = client.post("/v1/banks/list/import", headers=a, files={"file": ("x.txt", ("ab" * 32 + "\n").encode(), "text/plain")})
    assert ambiguous.status_code == 400 and "nothing was stored" in ambiguous.json()["detail"]
    assert client.post("/v1/banks/nope/import", headers=a, files={"file": ("x.txt", b"", "text/plain")}).status_code == 404
    hit = client.post("/v1/lookup", headers=a, json={"hashes": [{"signal_type": "md5", "value": f"{7:032x}"}]}).json()
    assert hit["matched"] == 1


def test_scan_fixture_files(env, fixtures):
    client, keys, db = env
    files = [("Canon_40D.jpg", (fixtures / "camera" / "Canon_40D.jpg").read_bytes()),
             ("a1111_duck.png", (fixtures / "generators" / "a1111_duck.png").read_bytes()),
             ("empty.bin", b"")]
    ctx = {"platform": "example-social", "post_id": "post-42", "account_id": "acct-7", "account_handle": "@alpha",
           "url": "https://example.invalid/p/42", "ip_events": [{"ip": "203.0.113.5", "event": "Upload"}]}
    r = scan(client, keys.h("submitter"), files, ctx)
    assert r.status_code == 200, r.text
    body = r.json()
    by_name = {f["filename"]: f for f in body["files"]}
    camera, duck, empty = by_name["Canon_40D.jpg"], by_name["a1111_duck.png"], by_name["empty.bin"]
    rec = camera["records"][0]
    for field in ("md5", "sha1", "sha256", "pdq", "provenance", "matches", "priority", "priority_reason", "policy", "item_id"):
        assert field in rec, field
    assert rec["provenance"]["label"] == "camera_original" and camera["action"] == "allow"
    assert duck["records"][0]["provenance"]["label"] == "ai_generated"
    assert duck["action"] == "review" and duck["records"][0]["policy"]["rule"] == "ai-unmatched"
    assert empty["records"][0]["error"]["code"] == "empty_file"
    assert body["action"] == "review"
    assert "/tmp" not in json.dumps(body) and "/dev/shm" not in json.dumps(body)
    # stored with its context; queued when the policy says so
    queue = client.get("/v1/review/queue", headers=keys.h("reviewer")).json()
    assert [i["id"] for i in queue["items"]] == [duck["item_id"]]
    assert queue["items"][0]["context"]["platform"] == "example-social"
    detail = client.get(f"/v1/items/{duck['item_id']}", headers=keys.h("reviewer")).json()
    assert detail["context"]["account_handle"] == "@alpha" and detail["context"]["ip_events"][0]["ip"] == "203.0.113.5"
    assert detail["record"]["sha256"] == duck["records"][0]["sha256"] and detail["record"]["policy"]["action"] == "review"
    assert detail["media_available"] is False and detail["case"] == "service"
    with db.session() as s:
        assert s.scalar(select(ItemContext.post_id).where(ItemContext.item_id == camera["item_id"])) == "post-42"
    bad_ctx = client.post("/v1/scan", headers=keys.h("submitter"), files=[("files", ("a.jpg", b"x", "image/jpeg"))],
                          data={"context": json.dumps({"platform": "x", "unknown_field": 1})})
    assert bad_ctx.status_code == 422


def test_archive_upload_is_expanded(env, tmp_path):
    import io
    import zipfile

    client, keys, _ = env
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.jpg", image_bytes(synth_image(11)))
        z.writestr("b.png", image_bytes(synth_image(12), "PNG"))
    body = scan(client, keys.h("submitter"), [("bundle.zip", buf.getvalue())]).json()
    records = body["files"][0]["records"]
    assert len(records) == 3 and records[0]["media_type"] == "application/zip"
    assert {r["path"].rsplit("!/", 1)[-1] for r in records[1:]} == {"a.jpg", "b.png"}
    assert all(r["item_id"] for r in records)


def test_decision_adds_to_bank_and_next_scan_matches(env):
    client, keys, _ = env
    a, rv = keys.h("admin"), keys.h("reviewer")
    client.post("/v1/banks", headers=a, json={"name": "confirmed", "category_scheme": "none"})
    client.post("/v1/banks", headers=a, json={"name": "allow", "negative": True})
    picture = synth_image(21, (320, 240))
    original = image_bytes(picture)
    first = scan(client, keys.h("submitter"), [("upload.jpg", original)]).json()["files"][0]
    assert first["action"] == "allow" and first["records"][0]["matches"] == []
    item = first["item_id"]
    # wrong polarity and unknown banks are refused
    assert client.post(f"/v1/items/{item}/decision", headers=rv, json={"decision": "confirmed_abuse", "bank": "allow"}).status_code == 400
    assert client.post(f"/v1/items/{item}/decision", headers=rv, json={"decision": "confirmed_abuse", "bank": "nope"}).status_code == 404
    assert client.post(f"/v1/items/{item}/decision", headers=rv, json={"decision": "ai_generated", "bank": "confirmed"}).status_code == 400
    assert client.post("/v1/items/999999/decision", headers=rv, json={"decision": "not_abuse"}).status_code == 404
    r = client.post(f"/v1/items/{item}/decision", headers=rv,
                    json={"decision": "confirmed_abuse", "bank": "confirmed", "note": "matches the reported series"})
    assert r.status_code == 200, r.text
    assert r.json()["bank"]["added"] == 4 and r.json()["reviewer"].startswith("test-reviewer#")

    again = scan(client, keys.h("submitter"), [("again.jpg", original)]).json()["files"][0]
    assert again["action"] == "block" and again["records"][0]["policy"]["rule"] == "known-match"
    assert {m["signal_type"] for m in again["records"][0]["matches"]} == {"md5", "sha1", "sha256", "pdq"}
    # a re-encoded, resized copy matches through PDQ alone
    resized = image_bytes(picture.resize((240, 180)), quality=80)
    near = scan(client, keys.h("submitter"), [("resized.jpg", resized)]).json()["files"][0]
    assert near["action"] == "block"
    assert [m["signal_type"] for m in near["records"][0]["matches"]] == ["pdq"]
    # the matched uploads are queued, highest priority first; deciding one removes it from the open queue
    queue = client.get("/v1/review/queue", headers=rv).json()
    assert {i["id"] for i in queue["items"]} == {again["item_id"], near["item_id"]}
    client.post(f"/v1/items/{near['item_id']}/decision", headers=rv, json={"decision": "needs_escalation", "note": "second look"})
    assert [i["id"] for i in client.get("/v1/review/queue", headers=rv).json()["items"]] == [again["item_id"]]
    assert [i["id"] for i in client.get("/v1/review/queue?state=escalated", headers=rv).json()["items"]] == [near["item_id"]]
    detail = client.get(f"/v1/items/{near['item_id']}", headers=keys.h("auditor")).json()
    assert detail["decisions"][0]["decision"] == "needs_escalation" and detail["queue"]["state"] == "escalated"


def test_audit_trail_records_changes(env, db_url):
    client, keys, db = env
    a = keys.h("admin")
    client.post("/v1/banks", headers=a, json={"name": "b1"})
    client.post("/v1/banks/b1/entries", headers=a, json={"entries": [{"signal_type": "md5", "value": "c" * 32}]})
    item = scan(client, keys.h("submitter"), [("x.jpg", image_bytes(synth_image(5)))]).json()["files"][0]["item_id"]
    client.post(f"/v1/items/{item}/decision", headers=keys.h("reviewer"), json={"decision": "not_abuse", "note": "benign"})
    client.post("/v1/keys", headers=a, json={"name": "new", "role": "auditor"})
    events = client.get("/v1/audit", headers=keys.h("auditor")).json()["events"]
    kinds = [e["kind"] for e in events]
    assert kinds.count("key.create") == 5 and "bank.create" in kinds and "bank.add" in kinds and "decision" in kinds
    decision = next(e for e in events if e["kind"] == "decision")
    assert decision["subject"] == f"item:{item}" and decision["data"]["note"] == "benign"
    assert decision["actor"].startswith("test-reviewer#")
    ok = client.get("/v1/audit/verify", headers=keys.h("auditor")).json()
    assert ok["ok"] and ok["events"] == len(events)
    with db.session() as s:  # tamper: the service reports the first bad event
        s.execute(AuditEvent.__table__.update().where(AuditEvent.seq == decision["seq"]).values(actor="someone-else"))
    bad = client.get("/v1/audit/verify", headers=keys.h("auditor")).json()
    assert not bad["ok"] and bad["first_bad_seq"] == decision["seq"]
    with db.session() as s:
        assert not audit.verify(s).ok


def test_hma_compatible_endpoints(env):
    client, keys, _ = env
    a, sub = keys.h("admin"), keys.h("submitter")
    client.post("/v1/banks", headers=a, json={"name": "HMA_BANK"})
    client.post("/v1/banks", headers=a, json={"name": "OFF_BANK", "enabled": False})
    banks = client.get("/c/banks", headers=keys.h("reviewer")).json()
    assert client.get("/c/banks", headers=sub).status_code == 403  # submitters: scan and look up only
    assert banks == [{"name": "HMA_BANK", "matching_enabled_ratio": 1.0}, {"name": "OFF_BANK", "matching_enabled_ratio": 0.0}]

    img = image_bytes(synth_image(31, (300, 300)))
    hashed = client.post("/h/hash", headers=sub, files={"photo": ("x.jpg", img, "image/jpeg")})
    assert hashed.status_code == 200 and set(hashed.json()) == {"pdq"}
    pdq = hashed.json()["pdq"]
    record = scan(client, sub, [("x.jpg", img)]).json()["files"][0]["records"][0]
    assert record["pdq"] == pdq  # the same hash the pipeline computes
    assert client.post("/h/hash", headers=sub, files={"video": ("v.mp4", b"\0\0\0\x18ftypmp42", "video/mp4")}).json().keys() == {"video_md5"}
    assert client.post("/h/hash", headers=sub, files={"audio": ("x", b"abc", "audio/mpeg")}).json() == {"message": "no such content_type: 'audio'"}
    assert client.post("/h/hash", headers=sub, files={"photo": ("x.txt", b"plain text", "text/plain")}).status_code == 400

    added = client.post("/c/bank/HMA_BANK/signal", headers=a, json={"pdq": pdq})
    assert added.status_code == 200 and set(added.json()) == {"id", "signals"} and added.json()["signals"] == {"pdq": pdq}
    content_id = added.json()["id"]
    off = client.post("/c/bank/OFF_BANK/signal", headers=a, json={"pdq": pdq}).json()["id"]
    assert client.post("/c/bank/NOPE/signal", headers=a, json={"pdq": pdq}).json() == {"message": "bank 'NOPE' not found"}
    assert client.post("/c/bank/HMA_BANK/signal", headers=a, json={"photodna": "1"}).status_code == 400

    flipped = format(int(pdq, 16) ^ 0b111, "064x")  # 3 bits away
    r = client.get("/m/lookup", headers=sub, params={"signal": flipped, "signal_type": "pdq"})
    assert r.json() == {"HMA_BANK": [{"bank_content_id": content_id, "distance": "3"}]}
    raw = client.get("/m/raw_lookup", headers=sub, params={"signal": flipped, "signal_type": "pdq"}).json()
    assert sorted(raw["matches"]) == sorted([content_id, off])  # raw: disabled banks included, as HMA's raw index
    raw_d = client.get("/m/raw_lookup", headers=sub, params={"signal": flipped, "signal_type": "pdq", "include_distance": "true"}).json()
    assert {"bank_content_id": content_id, "distance": "3"} in raw_d["matches"]
    only = client.get("/m/lookup", headers=sub, params={"signal": flipped, "signal_type": "pdq", "banks": "OFF_BANK"}).json()
    assert only == {}
    assert client.get("/m/lookup", headers=sub, params={"signal": "zz", "signal_type": "pdq"}).status_code == 400
    assert client.get("/m/lookup", headers=sub, params={"signal": pdq, "signal_type": "nope"}).json() == {"message": "No such SignalType 'nope'"}
    assert client.get("/m/lookup", headers=sub).status_code == 400
    md5 = record["md5"]
    client.post("/c/bank/HMA_BANK/signal", headers=a, json={"video_md5": md5})
    assert list(client.get("/m/lookup", headers=sub, params={"signal": md5, "signal_type": "video_md5"}).json()) == ["HMA_BANK"]


def test_readyz_metrics_and_docs(env):
    client, keys, _ = env
    r = client.get("/readyz", headers=keys.h("submitter"))
    assert r.status_code == 200 and r.json()["ready"] and r.json()["database"]["ok"] and r.json()["index"]["ok"]
    scan(client, keys.h("submitter"), [("a.jpg", image_bytes(synth_image(2)))])
    client.get("/v1/banks")  # refused: counted
    text = client.get("/metrics", headers=keys.h("auditor")).text
    replica = client.app.state.service.replica  # every sample names the replica (default <hostname>:<port or pid>)
    assert replica and r.json()["replica"]["id"] == replica
    assert f'tripwire_http_requests_total{{method="POST",replica="{replica}",route="/v1/scan",status="200"}} 1.0' in text
    assert f'tripwire_scan_files_total{{action="allow",replica="{replica}"}} 1.0' in text
    assert f'tripwire_index_hashes{{replica="{replica}"}} 0.0' in text and "tripwire_index_age_seconds" in text
    assert f'tripwire_review_queue_items{{replica="{replica}",state="open"}}' in text and f'tripwire_auth_failures_total{{replica="{replica}"}} 1.0' in text
    assert "tripwire_http_request_duration_seconds_bucket" in text
    spec = client.get("/openapi.json", headers=keys.h("submitter")).json()
    assert "/v1/scan" in spec["paths"] and "/m/lookup" in spec["paths"] and "/console/queue" not in spec["paths"]
    docs = client.get("/docs", headers=keys.h("submitter"))
    assert docs.status_code == 200 and "/docs-static/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text.lower()
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200

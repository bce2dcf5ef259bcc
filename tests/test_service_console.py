"""The review console through the real app: login with a key, cookie flags, CSRF, queue order, decisions by
form, media only when preserved (audited reads and reveals), and bank changes that commit with their audit
event or not at all."""

from __future__ import annotations

import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from helpers import image_bytes, synth_image
from service_helpers import make_config, make_keys, make_settings, scan
from sqlalchemy import select

from tripwire.banks.models import BankEntry
from tripwire.banks.store import BankStore
from tripwire.review import audit
from tripwire.review.models import AuditEvent
from tripwire.service.app import create_app
from tripwire.service.bankops import joined_store
from tripwire.store.db import open_db


@pytest.fixture
def console(db_url, tmp_path):
    db = open_db(db_url)
    keys = make_keys(db)
    media_dir = tmp_path / "preserved"
    media_dir.mkdir()
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config, media_dir=str(media_dir)), database=db)
    with TestClient(app, base_url="https://testserver") as client:
        yield client, keys, db, media_dir
    db.dispose()


def login(client: TestClient, key: str) -> str:
    form = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    r = client.post("/console/login", data={"key": key, "csrf": csrf, "next": "/console/queue"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["set-cookie"]


def page_csrf(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def _queue_two(client, keys, fixtures) -> tuple[int, int]:
    """Two queued items: a bank match (priority 100) and an AI-generated image (lower)."""
    a = keys.h("admin")
    client.post("/v1/banks", headers=a, json={"name": "known", "category_scheme": "none"})
    known = image_bytes(synth_image(40, (320, 240)))
    client.post("/v1/banks/known/entries", headers=a,
                json={"entries": [{"signal_type": "sha256", "value": hashlib.sha256(known).hexdigest()}]})
    ai = scan(client, keys.h("submitter"), [("duck.png", (fixtures / "generators" / "a1111_duck.png").read_bytes())]).json()
    hit = scan(client, keys.h("submitter"), [("known.jpg", known)]).json()
    return hit["files"][0]["item_id"], ai["files"][0]["item_id"]


def test_login_sets_a_strict_session_cookie(console):
    client, keys, _, _ = console
    assert client.get("/console/queue", follow_redirects=False).headers["location"].startswith("/console/login")
    cookie = login(client, keys.reviewer)
    assert "tw_session=" in cookie and "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = client.get("/console/queue")
    assert page.status_code == 200 and "Review queue" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"] and page.headers["x-frame-options"] == "DENY"
    # the cookie is not a key: the JSON API still wants a Bearer key
    assert client.get("/v1/banks").status_code == 401


def test_login_refusals(console):
    client, keys, _, _ = console
    form = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    bad = client.post("/console/login", data={"key": "twk_000000000000_" + "y" * 43, "csrf": csrf})
    assert bad.status_code == 401 and "not valid" in bad.text
    no_csrf = client.post("/console/login", data={"key": keys.reviewer, "csrf": "forged"})
    assert no_csrf.status_code == 401 and "expired" in no_csrf.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text).group(1)
    submitter = client.post("/console/login", data={"key": keys.submitter, "csrf": csrf})
    assert "cannot use the console" in submitter.text and "tw_session" not in client.cookies
    # no open redirect after login
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text).group(1)
    r = client.post("/console/login", data={"key": keys.reviewer, "csrf": csrf, "next": "https://evil.example/"}, follow_redirects=False)
    assert r.headers["location"] == "/console/queue"


def test_queue_item_and_decision_by_form(console, fixtures):
    client, keys, db, _ = console
    hit, ai = _queue_two(client, keys, fixtures)
    login(client, keys.reviewer)
    queue = client.get("/console/queue").text
    assert queue.index(f'data-item="{hit}"') < queue.index(f'data-item="{ai}"')  # priority order
    page = client.get(f"/console/items/{hit}")
    assert page.status_code == 200
    assert "known" in page.text and "No preserved media" in page.text and 'id="media-frame"' not in page.text
    detail = client.get(f"/v1/items/{hit}", headers=keys.h("reviewer")).json()
    assert detail["record"]["sha256"] in page.text and detail["record"]["md5"] in page.text
    csrf = page_csrf(page.text)
    forged = client.post(f"/console/items/{hit}/decision", data={"decision": "not_abuse", "csrf": "nope"}, follow_redirects=False)
    assert forged.status_code == 403
    r = client.post(f"/console/items/{hit}/decision", data={"decision": "confirmed_abuse", "note": "seen before", "csrf": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/console/items/{ai}?done={hit}"  # the queue advances
    nxt = client.get(r.headers["location"]).text
    assert f'action="/console/items/{hit}/undo"' in nxt and "confirmed abuse</strong> recorded by" in nxt  # with an Undo
    # undo: a new, audited "withdrawn" decision; the item is back in the open queue; nothing is rewritten
    r = client.post(f"/console/items/{hit}/undo", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/console/items/{hit}"
    assert client.post(f"/console/items/{hit}/undo", data={"csrf": csrf}).status_code == 409  # nothing left to undo
    assert f'data-item="{hit}"' in client.get("/console/queue").text
    undone = client.get(f"/v1/items/{hit}", headers=keys.h("reviewer")).json()
    assert [d["decision"] for d in undone["decisions"]] == ["confirmed_abuse", "withdrawn"]
    assert undone["queue"]["state"] == "open" and "undo of decision" in undone["decisions"][1]["note"]
    client.post(f"/console/items/{hit}/decision", data={"decision": "confirmed_abuse", "csrf": csrf})
    r = client.post(f"/console/items/{ai}/decision", data={"decision": "ai_generated", "csrf": csrf}, follow_redirects=False)
    assert r.headers["location"].startswith("/console/queue")
    assert "Nothing waiting" in client.get("/console/queue").text
    decided = client.get("/console/queue?state=decided").text  # the Decided view: decision, reviewer, time
    assert "confirmed abuse" in decided and "ai generated" in decided and 'class="reviewer"' in decided
    with db.session() as s:
        kinds = [e.kind for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
        assert kinds.count("decision") == 4 and "session.login" in kinds
        assert audit.verify(s).ok


def test_media_only_when_preserved_and_every_read_audited(console, fixtures):
    client, keys, db, media_dir = console
    hit, ai = _queue_two(client, keys, fixtures)
    duck = (fixtures / "generators" / "a1111_duck.png").read_bytes()
    (media_dir / hashlib.sha256(duck).hexdigest()).write_bytes(duck)  # preserved content for one item only
    login(client, keys.reviewer)
    with_media = client.get(f"/console/items/{ai}").text
    assert 'class="media-frame concealed"' in with_media and "Reveal for this item" in with_media
    assert "autoplay" not in with_media
    assert "No preserved media" in client.get(f"/console/items/{hit}").text
    assert client.get(f"/console/items/{hit}/media").status_code == 404
    r = client.get(f"/console/items/{ai}/media")
    assert r.status_code == 200 and r.content == duck and r.headers["cache-control"] == "no-store"
    csrf = page_csrf(with_media)
    assert client.post(f"/console/items/{ai}/reveal").status_code == 403  # no CSRF header
    assert client.post(f"/console/items/{ai}/reveal", headers={"X-CSRF-Token": csrf}).status_code == 204
    with db.session() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.kind.in_(["media.view", "media.reveal"])).order_by(AuditEvent.seq)))
    assert [e.kind for e in events] == ["media.view", "media.reveal"]
    assert all(e.actor.startswith("test-reviewer#") for e in events) and events[1].subject == f"item:{ai}"
    # a swapped file is never shown under another item's hash
    (media_dir / hashlib.sha256(duck).hexdigest()).write_bytes(b"not the same bytes")
    assert client.get(f"/console/items/{ai}/media").status_code == 404


def test_auditor_sees_the_audit_page_but_cannot_decide(console, fixtures):
    client, keys, _, _ = console
    hit, _ = _queue_two(client, keys, fixtures)
    login(client, keys.auditor)
    assert client.get("/console/", follow_redirects=False).headers["location"] == "/console/audit"
    page = client.get("/console/audit")
    assert page.status_code == 200 and "Chain verified" in page.text and "bank.create" in page.text
    item = client.get(f"/console/items/{hit}").text
    assert 'id="decide-form"' not in item
    csrf = page_csrf(item)
    assert client.post(f"/console/items/{hit}/decision", data={"decision": "not_abuse", "csrf": csrf}).status_code == 403
    assert client.get(f"/console/items/{hit}/media").status_code == 403


def test_logout_ends_the_session(console):
    client, keys, _, _ = console
    login(client, keys.reviewer)
    csrf = page_csrf(client.get("/console/queue").text)
    token = client.cookies.get("tw_session")
    r = client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    client.cookies.set("tw_session", token)  # a copied cookie is dead too
    assert client.get("/console/queue", follow_redirects=False).status_code == 303


def test_revoking_a_key_ends_its_sessions(console):
    client, keys, _, _ = console
    login(client, keys.reviewer)
    assert client.get("/console/queue").status_code == 200
    key_id = keys.reviewer.split("_")[1]
    assert client.delete(f"/v1/keys/{key_id}", headers=keys.h("admin")).status_code == 200
    assert client.get("/console/queue", follow_redirects=False).status_code == 303


def test_bank_change_and_audit_event_commit_together(db_url, tmp_path):
    """The adapter joins BankStore's writes to the caller's transaction: a failure after the insert leaves
    neither the entries nor an audit event behind."""
    db = open_db(db_url)
    info = BankStore(db).create_bank("atomic")
    with pytest.raises(RuntimeError):
        with db.session() as s:
            joined_store(db, s).insert_batch(info.id, [{"signal_type": "md5", "value": "d" * 32}])
            audit.append(s, "bank.add", "test", data={})
            raise RuntimeError("the request failed after the insert")
    with db.session() as s:
        assert s.scalar(select(BankEntry.id).where(BankEntry.bank_id == info.id)) is None
        assert s.scalar(select(AuditEvent.seq)) is None
    with db.session() as s:
        joined_store(db, s).insert_batch(info.id, [{"signal_type": "md5", "value": "d" * 32}])
        audit.append(s, "bank.add", "test", data={})
    with db.session() as s:
        assert s.scalar(select(BankEntry.value).where(BankEntry.bank_id == info.id)) == "d" * 32
        assert audit.verify(s).events == 1
    db.dispose()


def test_console_reads_preserved_evidence(db_url, tmp_path, monkeypatch, fixtures):
    """With evidence preservation configured, the console shows preserved media (decrypted, concealed, each
    read an ``evidence.read`` audit event) and nothing for items whose content was not preserved."""
    from tripwire.config import Config
    from tripwire.evidence import EvidenceStore
    from tripwire.evidence.store import generate_key

    monkeypatch.setenv("TRIPWIRE_EVIDENCE_KEY", generate_key())
    db = open_db(db_url)
    keys = make_keys(db)
    config = Config(sections={"banks": {"index_path": str(tmp_path / "idx")}, "evidence": {"root": str(tmp_path / "evidence")}})
    app = create_app(config=config, settings=make_settings(config), database=db)
    duck = (fixtures / "generators" / "a1111_duck.png").read_bytes()
    with TestClient(app, base_url="https://testserver") as client:
        item = scan(client, keys.h("submitter"), [("duck.png", duck)]).json()["files"][0]["item_id"]
        other = scan(client, keys.h("submitter"), [("x.jpg", image_bytes(synth_image(9)))]).json()["files"][0]["item_id"]
        with db.session() as s:
            EvidenceStore.from_config(config).preserve(s, duck, "test-reviewer", "queued for review", item_id=item)
        login(client, keys.reviewer)
        assert 'class="media-frame concealed"' in client.get(f"/console/items/{item}").text
        assert "No preserved media" in client.get(f"/console/items/{other}").text
        r = client.get(f"/console/items/{item}/media")
        assert r.status_code == 200 and r.content == duck and r.headers["content-type"] == "image/png"
        assert client.get(f"/v1/items/{item}", headers=keys.h("reviewer")).json()["media_available"] is True
    with db.session() as s:
        reads = list(s.scalars(select(AuditEvent).where(AuditEvent.kind == "evidence.read")))
        assert len(reads) == 1 and reads[0].actor.startswith("test-reviewer#")
        assert audit.verify(s).ok
    db.dispose()

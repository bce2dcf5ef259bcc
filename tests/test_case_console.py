"""Case work in the console, through the routes (TestClient) on a case scanned with the real pipeline: the case
list, the grid's server-made thumbnails (greyscale, blurred, from the file or the archive member where the
scan found it, and never once the file changed), bulk categorisation through the one decision path (CSRF,
items of another case refused, VICS category standing for its decision, a bank; undo as a withdrawn decision
that takes the bank entries out again), and the
related items of an item (same file, near-duplicates with PDQ distances, same account, same series).

Benign synthetic pictures only (gradients with shapes)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import image_bytes, synth_image
from PIL import Image
from service_helpers import make_config, make_keys, make_settings
from sqlalchemy import func, select
from test_service_console import login, page_csrf

from tripwire.banks.models import BankEntry
from tripwire.banks.store import BankStore
from tripwire.config import Config
from tripwire.pipeline.scan import run_scan
from tripwire.review import audit
from tripwire.review.models import AuditEvent, Decision, ItemContext
from tripwire.service.app import create_app
from tripwire.service.case_view import related_items
from tripwire.service.casefiles import item_file
from tripwire.store.db import open_db
from tripwire.store.models import Case, ItemRow


@pytest.fixture
def case(tmp_path, db_url):
    """A scanned case: three pictures (one resized copy of another: near-duplicates), one inside a zip that
    also holds an exact copy, and a text file; (client, keys, db, folder, {name: item id}, case id)."""
    folder = tmp_path / "drive"
    folder.mkdir()
    base = synth_image(1, (320, 240))
    (folder / "a.jpg").write_bytes(image_bytes(base))
    (folder / "a-small.jpg").write_bytes(image_bytes(base.resize((200, 150))))
    (folder / "b.png").write_bytes(image_bytes(synth_image(2, (240, 180)), "PNG"))
    (folder / "notes.txt").write_text("placeholder notes\n", encoding="utf-8")
    with zipfile.ZipFile(folder / "pack.zip", "w") as zf:
        zf.writestr("inner/c.jpg", image_bytes(synth_image(3, (300, 200))))
        zf.writestr("copy-of-b.png", (folder / "b.png").read_bytes())
    db = open_db(db_url)
    config = Config()
    run_scan([str(folder)], db, "drive-1", None, config, workers=1, quiet=True)
    keys = make_keys(db)
    service_config = make_config(tmp_path)
    app = create_app(config=service_config, settings=make_settings(service_config), database=db)
    with db.session() as s:
        ids = {Path(r.path.replace("!/", "/")).name: r.id for r in s.scalars(select(ItemRow))}
        case_id = s.scalar(select(Case.id).where(Case.name == "drive-1"))
    with TestClient(app, base_url="https://testserver") as client:
        yield client, keys, db, folder, ids, case_id
    db.dispose()


def test_case_list_grid_thumbnails_and_related_items(case):
    client, keys, db, folder, ids, case_id = case
    _check_related_items(db, ids)
    login(client, keys.reviewer)
    listing = client.get("/console/cases").text
    assert "drive-1" in listing and f'data-case="{case_id}"' in listing
    per_case = client.get(f"/console/queue?case_id={case_id}").text  # the policy queue's share of this case
    assert 'id="queue-case">case drive-1<' in per_case and 'id="queue-empty"' in per_case  # nothing the policy queues
    assert client.get("/console/queue?case_id=999999").status_code == 404
    grid = client.get(f"/console/cases/{case_id}").text
    tiles = [int(i) for i in re.findall(r'<li class="tile[^"]*" data-item="(\d+)"', grid)]
    assert sorted(tiles) == sorted(ids.values())  # case mode: every item, whatever the policy said
    with db.session() as s:
        prio = {r.id: r.priority or 0 for r in s.scalars(select(ItemRow))}
    assert [prio[i] for i in tiles] == sorted((prio[i] for i in tiles), reverse=True)  # highest priority first
    for name in ("a.jpg", "b.png", "c.jpg", "copy-of-b.png"):  # files and archive members
        r = client.get(f"/console/items/{ids[name]}/thumb")
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        img = Image.open(io.BytesIO(r.content))
        assert img.mode == "L" and max(img.size) <= 200
    for name in ("notes.txt", "pack.zip"):
        assert client.get(f"/console/items/{ids[name]}/thumb").status_code == 404
        assert f'src="/console/items/{ids[name]}/thumb"' not in grid
    with db.session() as s:  # one audit event per grid page, naming the items whose pictures it showed
        event = s.scalars(select(AuditEvent).where(AuditEvent.kind == "media.grid")).one()
    assert set(event.data["items"]) == {ids[n] for n in ("a.jpg", "a-small.jpg", "b.png", "c.jpg", "copy-of-b.png")}

    # the item page shows the case file concealed; reading it is audited; a changed file is never shown
    page = client.get(f"/console/items/{ids['a.jpg']}?case_id={case_id}").text
    assert 'class="media-frame concealed"' in page and f'name="case_id" value="{case_id}"' in page
    assert client.get(f"/console/items/{ids['a.jpg']}/media").content == (folder / "a.jpg").read_bytes()
    with db.session() as s:
        views = [e.data for e in s.scalars(select(AuditEvent).where(AuditEvent.kind == "media.view"))]
    assert views and views[-1]["source"] == "case-file" and views[-1]["item"] == ids["a.jpg"]
    (folder / "a.jpg").write_bytes(image_bytes(synth_image(7, (320, 240))))
    assert client.get(f"/console/items/{ids['a.jpg']}/thumb").status_code == 404
    assert client.get(f"/console/items/{ids['a.jpg']}/media").status_code == 404
    assert item_file(ItemRow(path="upload/a.jpg", source_path="upload/a.jpg", sha256="0" * 64)) is None  # not a scanned file
    (folder / "pack.zip").unlink()
    assert client.get(f"/console/items/{ids['c.jpg']}/thumb").status_code == 404
    login(client, keys.auditor)  # a role without the media permission sees the grid without pictures
    assert "/thumb" not in client.get(f"/console/cases/{case_id}").text
    assert client.get(f"/console/items/{ids['b.png']}/thumb").status_code == 403


def test_bulk_categorisation_goes_through_the_decision_path(case):
    client, keys, db, _, ids, case_id = case
    login(client, keys.reviewer)
    grid = client.get(f"/console/cases/{case_id}").text
    csrf = page_csrf(grid)
    picked = [ids["a.jpg"], ids["b.png"], ids["c.jpg"]]
    url = f"/console/cases/{case_id}/decisions"
    assert client.post(url, data={"item": picked, "vics": "1", "csrf": "wrong"}).status_code == 403
    assert client.post(url, data={"item": picked, "csrf": csrf}).status_code == 400  # no decision
    assert client.post(url, data={"item": picked, "vics": "1", "decision": "not_abuse", "csrf": csrf}).status_code == 400
    assert client.post(url, data={"item": picked, "vics": "9", "csrf": csrf}).status_code == 400
    with db.session() as s:
        other = db.case_id("other-case")
        s.add(ItemRow(case_id=other, path_key="x", path="x", source_path="x"))
        s.flush()
        foreign = s.scalar(select(ItemRow.id).where(ItemRow.case_id == other))
    assert client.post(url, data={"item": [*picked, foreign], "vics": "1", "csrf": csrf}).status_code == 400
    with db.session() as s:
        assert s.scalar(select(Decision.id)) is None  # nothing recorded by a refused request

    r = client.post(url, data={"item": picked, "vics": "3", "note": "reviewed together", "csrf": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("decided=3")
    with db.session() as s:
        rows = list(s.scalars(select(Decision).order_by(Decision.id)))
        events = [e for e in s.scalars(select(AuditEvent).where(AuditEvent.kind == "decision"))]
        assert audit.verify(s).ok
    assert [(d.item_id, d.decision) for d in rows] == [(i, "ai_generated") for i in sorted(picked)]  # VICS 3 = CGI
    assert all(d.note.startswith("VICS category 3. reviewed together [bulk decision") for d in rows)
    assert len(events) == 3 and all(e.data["via"] == "console" for e in events)
    todo = client.get(f"/console/cases/{case_id}").text
    assert not any(f'data-item="{i}"' in todo for i in picked)
    decided = client.get(f"/console/cases/{case_id}?view=decided").text
    assert decided.count('data-decision="ai_generated"') == 3 and "test-reviewer" in decided

    # undo from the Decided view: a withdrawn decision each (nothing rewritten); the items are to do again
    r = client.post(url, data={"item": picked[:2], "decision": "withdrawn", "view": "decided", "csrf": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and "view=decided" in r.headers["location"]
    with db.session() as s:
        assert [d.decision for d in s.scalars(select(Decision).order_by(Decision.id))][-2:] == ["withdrawn", "withdrawn"]
    todo = client.get(f"/console/cases/{case_id}").text
    assert all(f'data-item="{i}"' in todo for i in picked[:2]) and f'data-item="{picked[2]}"' not in todo

    # categorised into a bank, then undone: the entries the decisions added leave the bank again
    BankStore(db).create_bank("own-confirmed")
    r = client.post(url, data={"item": picked[:2], "vics": "1", "bank": "own-confirmed", "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303

    def active() -> dict[str, int]:
        with db.session() as s:
            rows = s.execute(select(BankEntry.source_id, func.count()).where(BankEntry.removed_at.is_(None))
                             .group_by(BankEntry.source_id)).all()
        return {source: n for source, n in rows}

    assert set(active()) == {f"item:{i}" for i in picked[:2]}
    assert client.post(url, data={"item": picked[:2], "decision": "withdrawn", "csrf": csrf}).status_code == 200
    assert active() == {}
    with db.session() as s:
        removals = list(s.scalars(select(AuditEvent).where(AuditEvent.kind == "bank.remove")))
        assert sorted(e.data["from_item"] for e in removals) == sorted(picked[:2]) and audit.verify(s).ok


def _check_related_items(db, ids) -> None:
    rel = related_items(db, ids["b.png"])
    assert [r["id"] for r in rel["copies"]] == [ids["copy-of-b.png"]]  # the same file inside the zip
    near = related_items(db, ids["a.jpg"])
    assert near["cluster"] is not None and ids["a-small.jpg"] in [r["id"] for r in near["near"]]
    small = next(r for r in near["near"] if r["id"] == ids["a-small.jpg"])
    assert small["distance"] is not None and small["close"]
    assert related_items(db, ids["c.jpg"])["near"] == []
    with db.session() as s:
        for name in ("a.jpg", "c.jpg"):
            s.add(ItemContext(item_id=ids[name], platform="example-social", account_id="acct-1", account_handle="@bravo"))
    shared = related_items(db, ids["a.jpg"])
    assert [r["id"] for r in shared["account"]] == [ids["c.jpg"]] and shared["account_label"] == "@bravo"

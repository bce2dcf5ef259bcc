"""Re-matching: a bank change reaches the stored items of every case without reading a file again.

A folder of benign fixtures is scanned into a case with no banks; the files are then deleted (so any attempt
to read them would fail or find nothing); a bank holding the SHA-256 of one and the PDQ of a *rotated* copy of
another is imported; the two stored items newly match (the second through its stored rotation variants), enter
the review queue with the reason, and show in the regenerated reports. Removing the PDQ entry removes that
match. SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from helpers import hamming, read_jsonl, tripwire
from PIL import Image
from sqlalchemy import select

from tripwire.store.db import open_db

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
A = FIXTURES / "camera/Canon_PowerShot_S40.jpg"   # banked by SHA-256
B = FIXTURES / "camera/gps/DSCN0010.jpg"           # banked by the PDQ of a copy turned 90 degrees
C = FIXTURES / "camera/Nikon_D70.jpg"              # never banked


def run_ok(*args: str, env: dict) -> str:
    proc = tripwire(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def pdq_of(path: Path) -> str:
    from tripwire.config import Config
    from tripwire.pipeline.inspect import inspect_file

    (record,) = list(inspect_file(str(path), Config(), None))
    return record["pdq"]


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "TRIPWIRE_ACTOR": "analyst-1"}


def test_bank_import_rematches_stored_items_without_reading_files(db_url, tmp_path, env):
    folder = tmp_path / "seized"
    folder.mkdir()
    for src in (A, B, C):
        shutil.copy(src, folder / src.name)
    run_ok("scan", str(folder), "--db", db_url, "--case", "drive-1", "--out", str(tmp_path / "out0"), "--workers", "1",
           "-q", env=env)
    before = {Path(r["path"]).name: r for r in read_jsonl(tmp_path / "out0/items.jsonl")}
    assert all(r["matches"] == [] for r in before.values())

    # the bank: A's SHA-256, and the PDQ of B turned 90 degrees (far from B's own PDQ: only B's stored
    # rotation variants can find it)
    rotated = tmp_path / "elsewhere" / "rotated.png"
    rotated.parent.mkdir()
    Image.open(B).convert("RGB").rotate(90, expand=True).save(rotated)
    rot_pdq = pdq_of(rotated)
    assert hamming(rot_pdq, before[B.name]["pdq"]) > 31
    assert min(hamming(rot_pdq, v) for v in before[B.name]["pdq_variants"].values()) <= 31
    sha_a = hashlib.sha256(A.read_bytes()).hexdigest()
    listing = tmp_path / "list.csv"
    listing.write_text(f"signal_type,value,category\nsha256,{sha_a},1\npdq,{rot_pdq},1\n", encoding="utf-8")

    shutil.rmtree(folder)  # the files are gone: a re-match that tried to read them could not match anything
    run_ok("bank", "create", "known-list", "--db", db_url, env=env)
    stderr = run_ok("bank", "import", "known-list", str(listing), "--db", db_url, env=env)
    assert "2 stored items newly match in cases drive-1 (2)" in stderr

    db = open_db(db_url)
    from tripwire.banks.models import BankEntry
    from tripwire.review.models import AuditEvent, QueueEntry
    from tripwire.store.models import ItemRow

    with db.session() as s:
        items = {Path(r.path).name: r for r in s.scalars(select(ItemRow))}
        entries = {r.signal_type: r.id for r in s.scalars(select(BankEntry))}
        queue = {q.item_id: q for q in s.scalars(select(QueueEntry))}
        events = [e for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq)) if e.kind == "rematch"]
    for name, kind in ((A.name, "sha256"), (B.name, "pdq")):
        item = items[name]
        assert [m["entry_id"] for m in item.stage_data["matches"]] == [entries[kind]]
        assert item.priority == 100.0
        note = item.stage_data["rematch"]
        assert note["reason"] == f"newly matches bank known-list entry {entries[kind]} (re-match)"
        assert note["reason"] in item.stage_data["policy"]["reason"]
        entry = queue[item.id]
        assert (entry.state, entry.action, entry.rule) == ("open", "block", "known-abuse")
    assert items[B.name].stage_data["matches"][0]["variant"] not in (None, "original")  # found through a variant
    assert items[C.name].stage_data["matches"] == [] and items[C.name].id not in queue
    assert events and events[-1].actor == "analyst-1"  # the run is audited
    assert sorted(events[-1].data["newly_matching"]["drive-1"]) == sorted([items[A.name].id, items[B.name].id])

    # the reports say so (regenerated from the database: no file is read)
    run_ok("report", "drive-1", "--db", db_url, "--out", str(tmp_path / "out1"), env=env)
    after = {Path(r["path"]).name: r for r in read_jsonl(tmp_path / "out1/items.jsonl")}
    assert [m["bank"] for m in after[A.name]["matches"]] == ["known-list"]
    assert [m["signal_type"] for m in after[B.name]["matches"]] == ["pdq"]
    html = (tmp_path / "out1/report.html").read_text(encoding="utf-8")
    assert re.search(r"<b>2</b>\s*items matching a bank", html)

    # on demand: nothing new to find
    proc = tripwire("rematch", "--case", "drive-1", "--bank", "known-list", "--db", db_url, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["newly_matching"] == {}

    # removing the PDQ entry removes B's match (A's stands)
    stderr = run_ok("bank", "remove", "known-list", rot_pdq, "--db", db_url, env=env)
    assert "1 no longer match" in stderr
    run_ok("report", "drive-1", "--db", db_url, "--out", str(tmp_path / "out2"), env=env)
    last = {Path(r["path"]).name: r for r in read_jsonl(tmp_path / "out2/items.jsonl")}
    assert last[B.name]["matches"] == [] and len(last[A.name]["matches"]) == 1
    assert last[B.name]["priority"] < 100
    db.dispose()


def test_rematch_on_demand_finds_a_case_scanned_before_the_list(db_url, tmp_path, env):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(C, folder / C.name)
    run_ok("bank", "create", "later", "--db", db_url, env=env)
    sha_c = hashlib.sha256(C.read_bytes()).hexdigest()
    # a list added with the service's code path but without its re-match: rematch on demand catches up
    from tripwire.banks.store import BankStore

    db = open_db(db_url)
    run_ok("scan", str(folder), "--db", db_url, "--case", "old-case", "--out", str(tmp_path / "o"), "-q", env=env)
    BankStore(db).add_entries("later", [{"signal_type": "sha256", "value": sha_c}])
    os.chmod(folder / C.name, 0)
    proc = tripwire("rematch", "--db", db_url, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data["newly_matching"]) == ["old-case"] and data["queued"] == 1
    assert tripwire("rematch", "--case", "nope", "--db", db_url, env=env).returncode == 2
    os.chmod(folder / C.name, 0o644)
    db.dispose()


def test_api_bank_additions_rematch_stored_items(db_url, tmp_path):
    from fastapi.testclient import TestClient
    from service_helpers import make_config, make_keys, make_settings

    from tripwire.pipeline.scan import run_scan
    from tripwire.service.app import create_app

    config = make_config(tmp_path)
    db = open_db(db_url)
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(C, folder / C.name)
    run_scan([str(folder)], db, "api-case", None, config, workers=1, quiet=True)
    (folder / C.name).unlink()
    keys = make_keys(db)
    app = create_app(config=config, settings=make_settings(config), database=db)
    with TestClient(app, base_url="https://testserver") as client:
        assert client.post("/v1/banks", headers=keys.h("admin"), json={"name": "api-bank"}).status_code in (200, 201)
        sha_c = hashlib.sha256(C.read_bytes()).hexdigest()
        r = client.post("/v1/banks/api-bank/entries", headers=keys.h("admin"),
                        json={"entries": [{"signal_type": "sha256", "value": sha_c, "category": "1"}]})
        assert r.status_code == 200, r.text
        assert r.json()["rematch"]["summary"].startswith("1 stored item newly match in cases api-case (1)")
        r = client.post("/v1/banks/api-bank/remove", headers=keys.h("admin"), json={"values": [sha_c]})
        assert r.status_code == 200, r.text
        assert r.json()["rematch"]["no_longer_matching"] == {"api-case": [1]}
    db.dispose()


def test_stored_index_is_kept_in_step_and_never_trusted_blindly(tmp_path):
    from sqlalchemy import insert

    from tripwire.match.stored_index import StoredHashIndex
    from tripwire.store.models import Content, Fact, ItemRow

    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    case_id = db.case_id("c")

    def store(n: int, pdq: str, variants: dict) -> str:
        sha = hashlib.sha256(str(n).encode()).hexdigest()
        with db.engine.begin() as conn:
            conn.execute(insert(Content), [{"sha256": sha, "md5": "0" * 32, "sha1": "0" * 40, "size": 1,
                                            "media_type": "image/png", "pdq": pdq, "pdq_quality": 90}])
            conn.execute(insert(Fact), [{"sha256": sha, "extractor": "pdq_variants", "version": "2",
                                         "data": {"pdq_variants": variants, "pdq_unletterbox": None}}])
            conn.execute(insert(ItemRow), [{"case_id": case_id, "path_key": sha, "path": f"/x/{n}", "source_path": "/x",
                                            "sha256": sha}])
        return sha

    one = store(1, "f" * 64, {"original": "f" * 64, "rot90": "0" * 64})
    index = StoredHashIndex.for_database(db)
    assert index.open() == 1 and (len(index), index.codes) == (1, 2)  # identical variant hashes indexed once
    [hit] = index.search(["0" * 63 + "1"], 31)
    assert (hit.sha256, hit.label, hit.distance) == (one, "rot90", 1)
    two = store(2, "a" * 64, {"original": "a" * 64, "unletterbox:rot180": "5" * 64})
    again = StoredHashIndex.for_database(db)
    assert again.open() == 1 and len(again) == 2 and again.loaded_from_disk  # loaded, then caught up by item id
    assert [h.label for h in again.search(["5" * 64], 0)] == ["unletterbox:rot180"]
    assert {h.sha256 for h in again.search(["f" * 64, "a" * 64], 0)} == {one, two}
    # a persisted index that disagrees with the database's count is rebuilt
    with db.engine.begin() as conn:
        conn.execute(insert(Content), [{"sha256": "e" * 64, "md5": "1" * 32, "sha1": "1" * 40, "size": 1,
                                        "media_type": "image/png", "pdq": "e" * 64, "pdq_quality": 90}])
    third = StoredHashIndex.for_database(db)
    third.open()
    assert len(third) == 3 and third.search(["e" * 64], 0)
    db.dispose()

"""tripwire as a drop-in for HMA (Meta's Hasher-Matcher-Actioner / OpenMediaMatch): HMA's own API tests,
replayed against tripwire's real app (FastAPI TestClient, lifespan included) on SQLite and PostgreSQL.

Each test names the HMA test it comes from (facebook/ThreatExchange, hasher-matcher-actioner/src/
OpenMediaMatch/tests/<file>::<function>) or, where HMA's tests leave a route untested, the blueprint function
whose behaviour it checks. Where tripwire differs on purpose (docs/service.md, "HMA compatibility"), the
test asserts tripwire's documented answer and says so: content comes from an upload, never a URL; a bank is
on or off; every registered signal type matches; a key is needed (HMA leaves auth to a deployment hook).
Images are synthetic checkerboards (HMA's own test images), hashes are python-threatexchange's examples.
"""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from service_helpers import make_config, make_keys, make_settings
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal

from conftest import database_url

from tripwire.service.app import create_app
from tripwire.store.db import open_db


def checkerboard(cell: int) -> bytes:
    """HMA's tests/utils.py image_server pictures: a 128x128 black-and-white checkerboard, as JPEG."""
    img = Image.new("RGB", (128, 128))
    px = img.load()
    for x in range(128):
        for y in range(128):
            px[x, y] = (255, 255, 255) if (x // cell + y // cell) % 2 else (0, 0, 0)
    out = io.BytesIO()
    img.save(out, format="JPEG")
    return out.getvalue()


IMAGE1, IMAGE2 = checkerboard(8), checkerboard(16)


class Hma:
    """An HMA client: the TestClient with an admin key on every request (HMA itself has no keys)."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def __getattr__(self, method: str):
        return lambda url, **kw: self.client.request(method.upper(), url, headers=self.headers, **kw)

    @property
    def service(self):
        return self.client.app.state.service


def _service(db_url: str, folder):
    db = open_db(db_url)
    keys = make_keys(db)
    config = make_config(folder)
    app = create_app(config=config, settings=make_settings(config), database=db)
    with TestClient(app, base_url="https://testserver") as client:
        yield Hma(client, keys.h("admin"))
    db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_service(request, tmp_path_factory):
    """One service for the module (starting one per test would cost most of the suite's time)."""
    folder = tmp_path_factory.mktemp("hma")
    for url in database_url(request.param, folder):
        yield from _service(url, folder)


@pytest.fixture
def hma(shared_service):
    """The shared service with no banks, as HMA's tests start (their fixture resets the tables)."""
    for bank in shared_service.get("/c/banks").json():
        assert shared_service.delete(f"/c/bank/{bank['name']}").status_code == 200
    return shared_service


@pytest.fixture
def fresh_hma(db_url, tmp_path):
    """A service of its own (for a test that stops its index refresh)."""
    yield from _service(db_url, tmp_path)


def create_bank(hma: Hma, name: str) -> None:
    """tests/utils.py::create_bank."""
    r = hma.post("/c/banks", json={"name": name})
    assert r.status_code == 201
    assert r.json() == {"matching_enabled_ratio": 1.0, "name": name}


def add_image(hma: Hma, bank: str, image: bytes = IMAGE1, **form: str):
    """tests/utils.py::add_hash_to_bank, by upload (tripwire fetches no URL)."""
    return hma.post(f"/c/bank/{bank}/content", files={"photo": ("image.jpg", image, "image/jpeg")}, data=form or None)


# -- status (test_api.py) -------------------------------------------------------------------------------------

def test_status(fresh_hma, monkeypatch):
    """test_api.py::test_status_response and ::test_status_live_always_alive; no key needed (load balancers)."""
    hma = fresh_hma
    for path in ("/status", "/status/live"):
        r = hma.client.get(path)
        assert (r.status_code, r.text) == (200, "I-AM-ALIVE")
    svc = hma.service
    monkeypatch.setattr(svc, "index_age", lambda: 10_000.0)  # the refresher has not caught up for hours
    assert (hma.client.get("/status").status_code, hma.client.get("/status").text) == (503, "INDEX-STALE")
    assert hma.client.get("/status/live").text == "I-AM-ALIVE"
    svc._stop.set()  # no background refresh from here on: the index stays "not loaded"
    svc._refresher.join(5)
    monkeypatch.setattr(svc.matcher, "_opened", False)
    assert (hma.client.get("/status").status_code, hma.client.get("/status").text) == (503, "INDEX-NOT-LOADED")
    assert hma.client.get("/status/live").status_code == 200
    assert hma.get("/m/lookup", params={"signal": PdqSignal.get_examples()[0], "signal_type": "pdq"}).json() == {
        "message": "index not yet ready"}


# -- banks (test_api_banks.py) ----------------------------------------------------------------------------------

def test_banks_create_update_delete(hma):
    """test_api_banks.py::test_banks_empty_index, ::test_banks_create, ::test_banks_update, ::test_banks_delete."""
    assert hma.get("/c/banks").json() == []
    assert hma.post("/c/banks", json={"name": "01_TEST_BANK"}).status_code == 400
    assert hma.post("/c/banks", json={"name": "my_test_bank"}).status_code == 400
    assert hma.post("/c/banks", json={"enabled": True}).status_code == 422  # schemas/curation.py::BankCreateRequest
    created = hma.post("/c/banks", json={"name": "MY_TEST_BANK_01"})
    assert created.status_code == 201 and created.json() == {"matching_enabled_ratio": 1.0, "name": "MY_TEST_BANK_01"}
    assert hma.get("/c/banks").json() == [created.json()]
    assert hma.post("/c/banks", json={"name": "MY_TEST_BANK_01"}).status_code == 403  # curation.py::bank_create_impl
    assert hma.get("/c/bank/MY_TEST_BANK_01").json() == created.json()  # curation.py::bank_show_by_name
    assert hma.get("/c/bank/NOPE").status_code == 404

    assert hma.put("/c/bank/MY_TEST_BANK_01", json={"name": "1_invalid_name"}).status_code == 400
    renamed = hma.put("/c/bank/MY_TEST_BANK_01", json={"name": "MY_TEST_BANK_RENAMED"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "MY_TEST_BANK_RENAMED"
    off = hma.put("/c/bank/MY_TEST_BANK_RENAMED", json={"enabled": False})
    assert off.status_code == 200 and off.json()["matching_enabled_ratio"] == 0
    # deliberate difference: HMA samples matches at enabled_ratio 0.5; a tripwire bank is on (1) or off (0)
    assert hma.put("/c/bank/MY_TEST_BANK_RENAMED", json={"enabled_ratio": 0.5}).status_code == 400
    assert hma.put("/c/bank/MY_TEST_BANK_RENAMED", json={"enabled_ratio": 1}).json()["matching_enabled_ratio"] == 1.0
    assert hma.get("/c/banks").json() == [{"name": "MY_TEST_BANK_RENAMED", "matching_enabled_ratio": 1.0}]
    assert hma.put("/c/bank/NOPE", json={"enabled": True}).status_code == 404

    assert hma.delete("/c/bank/MY_TEST_BANK_RENAMED").json() == {"message": "Done"}
    assert hma.delete("/c/bank/MY_TEST_BANK_RENAMED").status_code == 200  # deleting a missing bank succeeds
    assert hma.get("/c/banks").json() == []


# -- content (test_api_banks.py) ---------------------------------------------------------------------------------

def test_add_content_by_upload_and_get_it(hma):
    """test_api_banks.py::test_banks_add_content, ::test_bank_get_content, ::test_bank_get_content_with_signals,
    ::test_bank_get_content_404; the PDQ is python-threatexchange's (PdqSignal, what HMA computes)."""
    assert hma.get("/c/bank/TEST_BANK_GET/content/1").status_code == 404  # no such bank
    create_bank(hma, "TEST_BANK_GET")
    assert hma.get("/c/bank/TEST_BANK_GET/content/1").status_code == 404  # no such content
    r = add_image(hma, "TEST_BANK_GET")
    assert r.status_code == 200, r.text
    content_id = r.json()["id"]
    assert r.json() == {"id": content_id, "signals": {"pdq": PdqSignal.hash_from_bytes(IMAGE1)}}
    got = hma.get(f"/c/bank/TEST_BANK_GET/content/{content_id}").json()
    assert got == {"id": content_id, "disable_until_ts": 1, "original_media_uri": None,
                   "bank": {"name": "TEST_BANK_GET", "matching_enabled_ratio": 1.0}}
    with_signals = hma.get(f"/c/bank/TEST_BANK_GET/content/{content_id}", params={"include_signals": "true"}).json()
    assert with_signals["signals"] == {"pdq": PdqSignal.hash_from_bytes(IMAGE1)}
    assert hma.get("/c/bank/TEST_BANK_GET/content/abc").status_code == 404
    # deliberate difference: the service fetches no URL
    refused = hma.post(f"/c/bank/TEST_BANK_GET/content?url=https://example.com/a.jpg&content_type=photo")
    assert refused.status_code == 400 and "url" in refused.json()["message"]
    assert hma.post("/c/bank/TEST_BANK_GET/content", json={}).json() == {
        "message": "Neither `url` nor multipart file upload was received"}
    assert hma.post("/c/bank/NOPE/content", files={"photo": ("a.jpg", IMAGE1, "image/jpeg")}).status_code == 404


def test_content_metadata(hma):
    """test_api_banks.py::test_banks_add_metadata, ::test_bank_get_content_returns_stored_metadata,
    ::test_bank_get_content_include_metadata_false, ::test_bank_get_content_without_metadata_omitted
    (metadata as HMA's multipart form field)."""
    create_bank(hma, "TEST_BANK_METADATA")
    bad = add_image(hma, "TEST_BANK_METADATA", metadata='{"invalid_metadata": 5}')
    assert bad.status_code == 400 and bad.json()["message"].startswith("Invalid metadata")
    assert add_image(hma, "TEST_BANK_METADATA", metadata="{not json").status_code == 400
    assert add_image(hma, "TEST_BANK_METADATA", metadata="[" * 10_000).status_code == 400  # not a RecursionError
    huge = json.dumps({"json": {"blob": "x" * 70_000}})
    assert add_image(hma, "TEST_BANK_METADATA", metadata=huge).json()["message"].startswith("Invalid metadata")
    metadata = {"content_id": "ext-id-123", "content_uri": "https://example.com/item/123",
                "json": {"source": "test", "nested": {"key": "value"}}}
    added = add_image(hma, "TEST_BANK_METADATA", metadata=json.dumps({**metadata, "collab": {"X": ["1"]}}))
    assert added.status_code == 200, added.text
    cid = added.json()["id"]
    assert hma.get(f"/c/bank/TEST_BANK_METADATA/content/{cid}").json()["metadata"] == metadata
    assert "metadata" not in hma.get(f"/c/bank/TEST_BANK_METADATA/content/{cid}",
                                     params={"include_metadata": "false"}).json()
    plain = add_image(hma, "TEST_BANK_METADATA", IMAGE2).json()["id"]
    assert "metadata" not in hma.get(f"/c/bank/TEST_BANK_METADATA/content/{plain}").json()


def test_content_notes(hma):
    """test_api_banks.py::test_bank_add_content_with_note, ::test_bank_add_content_without_note_omitted,
    ::test_bank_update_content_note, ::test_bank_add_note_too_long, ::test_bank_add_hash_with_note."""
    create_bank(hma, "TEST_BANK_NOTE")
    with_note = add_image(hma, "TEST_BANK_NOTE", note="Reported by user X").json()["id"]
    assert hma.get(f"/c/bank/TEST_BANK_NOTE/content/{with_note}").json()["note"] == "Reported by user X"
    without = add_image(hma, "TEST_BANK_NOTE", IMAGE2).json()["id"]
    assert "note" not in hma.get(f"/c/bank/TEST_BANK_NOTE/content/{without}").json()
    for note in ("Initial note", "Updated note"):
        assert hma.put(f"/c/bank/TEST_BANK_NOTE/content/{without}", json={"note": note}).status_code == 200
        assert hma.get(f"/c/bank/TEST_BANK_NOTE/content/{without}").json()["note"] == note
    assert hma.put(f"/c/bank/TEST_BANK_NOTE/content/{without}", json={"note": ""}).status_code == 200
    assert "note" not in hma.get(f"/c/bank/TEST_BANK_NOTE/content/{without}").json()
    assert add_image(hma, "TEST_BANK_NOTE", IMAGE2, note="x" * 256).status_code == 400
    # the defect issue 14 names: HMA pops `note` before reading the signals
    r = hma.post("/c/bank/TEST_BANK_NOTE/signal", json={"pdq": "0" * 64, "note": "Hash from campaign ABC"})
    assert r.status_code == 200, r.text
    assert hma.get(f"/c/bank/TEST_BANK_NOTE/content/{r.json()['id']}").json()["note"] == "Hash from campaign ABC"
    assert hma.post("/c/bank/TEST_BANK_NOTE/signal", json={"pdq": "1" * 64, "note": "x" * 256}).status_code == 400


def test_update_and_delete_content(hma):
    """test_api_banks.py::test_bank_update_content, ::test_bank_update_content_400, ::test_banks_delete_content;
    disabled content leaves /m/lookup but not /m/raw_lookup (matching.py::lookup, ::raw_lookup)."""
    create_bank(hma, "TEST_BANK_UPDATE")
    added = add_image(hma, "TEST_BANK_UPDATE").json()
    cid, pdq = added["id"], added["signals"]["pdq"]
    query = {"signal": pdq, "signal_type": "pdq"}
    assert hma.get("/m/lookup", params=query).json() == {"TEST_BANK_UPDATE": [{"bank_content_id": cid, "distance": "0"}]}
    until = int((datetime.now() + timedelta(days=365)).timestamp())
    updated = hma.put(f"/c/bank/TEST_BANK_UPDATE/content/{cid}", json={"disable_until_ts": until})
    assert updated.status_code == 200 and updated.json()["disable_until_ts"] == until
    assert updated.json()["bank"] == {"name": "TEST_BANK_UPDATE", "matching_enabled_ratio": 1.0}
    assert hma.get("/m/lookup", params=query).json() == {}
    assert hma.get("/m/raw_lookup", params=query).json() == {"matches": [cid]}
    assert hma.put(f"/c/bank/TEST_BANK_UPDATE/content/{cid}", json={"disable_until_ts": 9999999999}).status_code == 400
    assert hma.put(f"/c/bank/TEST_BANK_UPDATE/content/{cid}", json={"disable_until_ts": -5}).status_code == 400
    assert hma.put(f"/c/bank/TEST_BANK_UPDATE/content/{cid}", json={"disable_until_ts": int(time.time()) - 1}).status_code == 200
    assert list(hma.get("/m/lookup", params=query).json()) == ["TEST_BANK_UPDATE"]  # the time has passed
    assert hma.put(f"/c/bank/TEST_BANK_UPDATE/content/{cid + 1000}", json={"note": "n"}).status_code == 404

    assert hma.delete(f"/c/bank/TEST_BANK_UPDATE/content/{cid}").json() == {"deleted": 1}
    assert hma.get(f"/c/bank/TEST_BANK_UPDATE/content/{cid}").status_code == 404
    assert hma.get("/m/raw_lookup", params=query).json() == {"matches": []}
    assert hma.delete(f"/c/bank/TEST_BANK_UPDATE/content/{cid}").json() == {"deleted": 0}
    # tripwire keeps the tombstone: a removed hash is not re-added behind the reviewer's back
    assert hma.post("/c/bank/TEST_BANK_UPDATE/signal", json={"pdq": pdq}).status_code == 400


def test_one_content_item_carries_several_signals(hma):
    """curation.py::_bank_add_signals (one content item, every signal looks up to its id); the defect issue
    14 names: several signals in one POST got several ids."""
    create_bank(hma, "MULTI")
    pdq, md5 = PdqSignal.get_examples()[0], VideoMD5Signal.get_examples()[0]
    r = hma.post("/c/bank/MULTI/signal", json={"pdq": pdq, "video_md5": md5, "note": "two signals"})
    assert r.status_code == 200, r.text
    cid = r.json()["id"]
    assert r.json() == {"id": cid, "signals": {"pdq": pdq, "video_md5": md5}}
    for signal_type, signal in (("pdq", pdq), ("video_md5", md5)):
        assert hma.get("/m/lookup", params={"signal": signal, "signal_type": signal_type}).json() == {
            "MULTI": [{"bank_content_id": cid, "distance": "0"}]}
    got = hma.get(f"/c/bank/MULTI/content/{cid}", params={"include_signals": "true"}).json()
    assert got["signals"] == {"pdq": pdq, "video_md5": md5} and got["note"] == "two signals"
    # the same content again is the same item; an unknown type or a bad value adds nothing
    assert hma.post("/c/bank/MULTI/signal", json={"pdq": pdq, "video_md5": md5}).json()["id"] == cid
    assert hma.post("/c/bank/MULTI/signal", json={"pdq": pdq, "nope": "1"}).json() == {"message": "No such signal type nope"}
    assert hma.post("/c/bank/MULTI/signal", json={"pdq": "zz"}).json()["message"].startswith("Invalid pdq signal")
    assert hma.post("/c/bank/MULTI/signal", json={}).json() == {"message": "No signals given"}
    assert hma.post("/c/bank/NOPE/signal", json={"pdq": pdq}).status_code == 404
    # deleting the item removes every signal it carries
    assert hma.delete(f"/c/bank/MULTI/content/{cid}").json() == {"deleted": 1}
    assert hma.get("/m/raw_lookup", params={"signal": md5, "signal_type": "video_md5"}).json() == {"matches": []}


# -- matching (test_api.py, test_match_api.py, test_e2e_workflow.py) ---------------------------------------------

def test_add_hashes_and_find_match(hma):
    """test_e2e_workflow.py::test_add_hashes_and_find_match (no index build step: changes apply at once)."""
    create_bank(hma, "TEST_BANK")
    ids = []
    for pdq in PdqSignal.get_examples():
        r = hma.post("/c/bank/TEST_BANK/signal", json={"pdq": pdq})
        assert r.status_code == 200
        ids.append(r.json()["id"])
    status = hma.get("/m/index/status", params={"signal_type": "pdq"})
    assert status.status_code == 200 and set(status.json()) == {"pdq"}
    assert status.json()["pdq"]["present"] is True and status.json()["pdq"]["size"] == len(ids)
    assert status.json()["pdq"]["built_to"] >= int(time.time()) - 120
    last = PdqSignal.get_examples()[-1]
    assert hma.get(f"/m/lookup?signal_type=pdq&signal={last}").json() == {
        "TEST_BANK": [{"bank_content_id": ids[-1], "distance": "0"}]}
    assert hma.get("/m/lookup?signal_type=pdq&signal={}".format("5" * 64)).json() == {}
    assert hma.get("/m/index/status", params={"signal_type": "nope"}).status_code == 400


def test_banks_add_hash_index(hma):
    """test_api_banks.py::test_banks_add_hash_index."""
    create_bank(hma, "NEW_BANK")
    create_bank(hma, "NEW_BANK_2")
    first = add_image(hma, "NEW_BANK", IMAGE1).json()
    second = add_image(hma, "NEW_BANK", IMAGE2).json()
    for added in (first, second):
        r = hma.get(f"/m/raw_lookup?signal_type=pdq&signal={added['signals']['pdq']}")
        assert r.status_code == 200 and r.json() == {"matches": [added["id"]]}


def test_lookups_for_every_signal_type(hma):
    """test_match_api.py::test_raw_lookups and ::test_lookups: one example of each of HMA's types."""
    create_bank(hma, "SAMPLE")
    examples = {"pdq": PdqSignal.get_examples()[0], "video_md5": VideoMD5Signal.get_examples()[0]}
    for name, signal in examples.items():
        assert hma.post("/c/bank/SAMPLE/signal", json={name: signal}).status_code == 200
    for name, signal in examples.items():
        query = {"signal": signal, "signal_type": name}
        raw = hma.get("/m/raw_lookup", params=query).json()["matches"]
        assert len(raw) >= 1
        with_distance = hma.get("/m/raw_lookup", params={**query, "include_distance": True}).json()["matches"]
        assert len(with_distance) == len(raw) and all(set(m) == {"bank_content_id", "distance"} for m in with_distance)
        found = hma.get("/m/lookup", params=query).json()
        assert list(found) == ["SAMPLE"] and all(set(m) == {"bank_content_id", "distance"} for m in found["SAMPLE"])


def test_bank_filters(hma):
    """test_match_api.py::test_raw_lookup_with_bank_filter, ::test_raw_lookup_with_distance_and_bank_filter,
    ::test_lookup_with_bank_filter."""
    pdq = PdqSignal.get_examples()[0]
    for bank in ("BANK_A", "BANK_B", "BANK_C"):
        create_bank(hma, bank)
        hma.post(f"/c/bank/{bank}/signal", json={"pdq": pdq})
    query = {"signal": pdq, "signal_type": "pdq"}
    raw = lambda **kw: hma.get("/m/raw_lookup", params={**query, **kw}).json()["matches"]  # noqa: E731
    assert len(raw()) == 3 and len(raw(banks="BANK_A")) == 1 and len(raw(banks="BANK_A,BANK_B")) == 2
    assert raw(banks="NON_EXISTENT_BANK") == []
    both = raw(banks="BANK_A,BANK_B", include_distance=True)
    assert len(both) == 2 and all(set(m) == {"bank_content_id", "distance"} for m in both)
    found = lambda **kw: hma.get("/m/lookup", params={**query, **kw}).json()  # noqa: E731
    assert set(found()) == {"BANK_A", "BANK_B", "BANK_C"}
    assert set(found(banks="BANK_A")) == {"BANK_A"} and found(banks="BANK_A")["BANK_A"]
    assert set(found(banks="BANK_A,BANK_C")) == {"BANK_A", "BANK_C"}
    assert found(banks="NON_EXISTENT_BANK") == {}


def test_lookup_by_upload(hma):
    """test_api.py::test_lookup_success (POST with a photo and with a "video"); a URL is refused, not fetched."""
    create_bank(hma, "UPLOADS")
    cid = add_image(hma, "UPLOADS").json()["id"]
    photo = hma.post("/m/lookup", files={"photo": ("a.jpg", IMAGE1, "image/jpeg")})
    assert photo.status_code == 200 and photo.json() == {"pdq": {"UPLOADS": [{"bank_content_id": cid, "distance": "0"}]}}
    video = hma.post("/m/lookup", files={"video": ("a.jpg", IMAGE1, "image/jpeg")})  # MD5 hashes any bytes
    assert video.status_code == 200 and video.json() == {"video_md5": {}}
    assert hma.post("/m/lookup", files={"file": ("a.jpg", IMAGE1, "image/jpeg")}).status_code == 400
    assert hma.get("/m/lookup", params={"url": "https://example.com/a.jpg"}).status_code == 400
    hma.put("/c/bank/UPLOADS", json={"enabled": False})
    assert hma.post("/m/lookup", files={"photo": ("a.jpg", IMAGE1, "image/jpeg")}).json() == {"pdq": {}}
    bypass = hma.post("/m/lookup?bypass_coinflip=true", files={"photo": ("a.jpg", IMAGE1, "image/jpeg")}).json()
    assert list(bypass["pdq"]) == ["UPLOADS"]  # HMA's coin flip at 0 lets disabled banks through


def test_raw_lookup_needs_signal(hma):
    """matching.py::raw_lookup validates RawLookupRequest first (signal, signal_type required): 422, not 400."""
    assert hma.get("/m/raw_lookup", params={"signal_type": "pdq"}).status_code == 422
    assert hma.get("/m/raw_lookup", params={"signal": "0" * 64}).status_code == 422
    assert hma.get("/m/raw_lookup", params={"signal": "0" * 64, "signal_type": "nope"}).json() == {
        "message": "No such SignalType 'nope'"}
    assert hma.get("/m/lookup", params={"signal_type": "pdq"}).json() == {
        "message": "Either url or both signal and signal_type are required"}


def test_compare_hashes(hma):
    """test_api.py::test_compare_hashes."""
    specimen1 = "facd8bcb2a49bcebdec1985298d5fe84bcd006c187c598c720c3c087b3fdb318"
    specimen2 = "facd8bcb2a49bcebdec1985228d5ae84bcd006c187c598c720c2b087b3fdb318"
    assert hma.post("/m/compare", json={"pdq": [specimen1, specimen2]}).json() == {"pdq": [True, {"distance": 9}]}
    far = format(int(specimen1, 16) ^ ((1 << 40) - 1), "064x")
    assert hma.post("/m/compare", json={"pdq": [specimen1, far]}).json() == {"pdq": [False, {"distance": 40}]}
    md5 = VideoMD5Signal.get_examples()[0]
    assert hma.post("/m/compare", json={"video_md5": [md5, md5]}).json() == {"video_md5": [True, {}]}
    for bad in (["banana"], {"pdq": "banana"}, {"pdq": []}, {"pdq": ["banana", "banana"]},
                {"pdq": [specimen1, specimen2, specimen1]}, {"nope": [specimen1, specimen2]}):
        assert hma.post("/m/compare", json=bad).status_code == 400, bad


# -- hashing (hashing.py) --------------------------------------------------------------------------------------

def test_hash_matches_threatexchange(hma):
    """hashing.py::hash_media_post: the PDQ python-threatexchange computes; below quality 50 it is "" (the
    defect issue 14 names), as threatexchange's PdqSignal.hash_from_bytes answers."""
    for image in (IMAGE1, IMAGE2):
        assert hma.post("/h/hash", files={"photo": ("a.jpg", image, "image/jpeg")}).json() == {
            "pdq": PdqSignal.hash_from_bytes(image)}
    flat = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(flat, format="PNG")
    assert PdqSignal.hash_from_bytes(flat.getvalue()) == ""
    assert hma.post("/h/hash", files={"photo": ("flat.png", flat.getvalue(), "image/png")}).json() == {"pdq": ""}
    assert hma.post("/h/hash?types=pdq", files={"photo": ("a.jpg", IMAGE1, "image/jpeg")}).status_code == 200
    assert hma.post("/h/hash?types=video_md5", files={"photo": ("a.jpg", IMAGE1, "image/jpeg")}).status_code == 400
    assert hma.get("/h/hash", params={"url": "https://example.com/a.jpg"}).status_code == 400


# -- configuration (curation.py) -----------------------------------------------------------------------------------

def test_configuration_routes(hma):
    """curation.py::get_all_signal_types, ::update_signal_type_config, ::signal_type_index_status,
    ::get_all_content_types: answered from the signal-type registry and the matcher's indexes."""
    types = hma.get("/c/signal_type").json()
    assert {"name": "pdq", "enabled_ratio": 1.0} in types and {"name": "video_md5", "enabled_ratio": 1.0} in types
    assert hma.put("/c/signal_type/pdq", json={"enabled_ratio": 1.0}).status_code == 204
    # deliberate difference: every registered type matches
    assert hma.put("/c/signal_type/pdq", json={"enabled_ratio": 0}).status_code == 400
    assert hma.put("/c/signal_type/pdq", json={}).json() == {"message": "enabled_ratio is required"}
    assert hma.put("/c/signal_type/nope", json={"enabled_ratio": 1}).status_code == 404
    assert hma.get("/c/content_type").json() == [{"name": "photo", "enabled": True}, {"name": "video", "enabled": True}]

    empty = hma.get("/c/signal_type/index", params={"signal_type": "pdq"}).json()
    assert empty == {"pdq": {"db_size": 0, "index_size": 0, "index_out_of_date": False, "newest_db_item": 0,
                             "index_built_to": 0}}
    create_bank(hma, "CONFIG")
    hma.post("/c/bank/CONFIG/signal", json={"pdq": PdqSignal.get_examples()[0], "video_md5": VideoMD5Signal.get_examples()[0]})
    index = hma.get("/c/signal_type/index").json()
    assert {"pdq", "video_md5"} <= set(index)
    for name in ("pdq", "video_md5"):
        assert index[name]["db_size"] == index[name]["index_size"] == 1
        assert index[name]["index_out_of_date"] is False
        assert index[name]["newest_db_item"] == index[name]["index_built_to"] >= int(time.time()) - 120
    assert hma.get("/c/signal_type/index", params={"signal_type": "nope"}).status_code == 400


def test_change_made_by_another_process_reaches_lookups(hma):
    """curation.py::bank_update_content as HMA's other workers see it (after their 30 s index refresh): a
    disable time written by another process (here: straight to the database) reaches this process's
    /m/lookup through the service's background refresh, within about a second."""
    from sqlalchemy import update

    from tripwire.banks.models import BankContent
    from tripwire.store.models import utcnow

    create_bank(hma, "ELSEWHERE")
    pdq = PdqSignal.get_examples()[1]
    cid = hma.post("/c/bank/ELSEWHERE/signal", json={"pdq": pdq}).json()["id"]
    query = {"signal": pdq, "signal_type": "pdq"}
    assert list(hma.get("/m/lookup", params=query).json()) == ["ELSEWHERE"]
    with hma.service.db.session() as s:
        s.execute(update(BankContent).where(BankContent.id == cid).values(disable_until_ts=0, updated_at=utcnow()))
    deadline = time.monotonic() + 10
    while hma.get("/m/lookup", params=query).json() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert hma.get("/m/lookup", params=query).json() == {}
    assert hma.get("/m/raw_lookup", params=query).json() == {"matches": [cid]}


def test_hits_seen_before_query_nothing(hma):
    """Not an HMA test: tripwire's look-ups answer from memory (docs/service.md, "How current look-ups are"),
    and mapping a hit to its content item keeps it that way — a hit seen before costs no database query."""
    from sqlalchemy import event

    create_bank(hma, "MEMORY")
    pdq, md5 = PdqSignal.get_examples()[2], VideoMD5Signal.get_examples()[0]
    cid = hma.post("/c/bank/MEMORY/signal", json={"pdq": pdq, "video_md5": md5}).json()["id"]
    queries = [{"signal": pdq, "signal_type": "pdq"}, {"signal": md5, "signal_type": "video_md5"}]
    for q in queries:  # first sight: rows and items read once
        assert hma.get("/m/raw_lookup", params=q).json() == {"matches": [cid]}
    statements: list[str] = []
    engine = hma.service.db.engine

    def count(conn, cursor, statement, *rest) -> None:
        if threading.current_thread().name != "tripwire-index-refresh":  # the refresher's once-a-second catch-up
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for q in queries:
            assert hma.get("/m/raw_lookup", params=q).json() == {"matches": [cid]}
            assert hma.get("/m/lookup", params=q).json() == {"MEMORY": [{"bank_content_id": cid, "distance": "0"}]}
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [s for s in statements if "bank_content" in s or "bank_entries" in s] == []

"""Bank management in the console through the real app: banks with counts and settings, entries page by page,
adding by hash and by file upload (audited, stored items re-matched), test-matching a hash and a file, and the
exchanges with their last fetch; CSRF and roles as on every console page. Uploaded files are benign fixtures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_helpers import make_config, make_keys, make_settings
from sqlalchemy import select

from tripwire.banks.exchanges.store import ExchangeStore
from tripwire.banks.store import BankStore
from tripwire.service.app import create_app
from tripwire.store.db import open_db

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
PHOTO = FIXTURES / "camera/Canon_PowerShot_S40.jpg"


@pytest.fixture
def console(tmp_path):
    db = open_db(f"sqlite:///{tmp_path / 'c.db'}")
    keys = make_keys(db)
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config), database=db)
    with TestClient(app, base_url="https://testserver") as client:
        yield client, keys, db
    db.dispose()


def _login(client: TestClient, key: str) -> None:
    form = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    r = client.post("/console/login", data={"key": key, "csrf": csrf, "next": "/console/banks"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def _csrf(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def test_console_banks_browse_add_test_and_exchanges(console, tmp_path):
    from tripwire.review.models import AuditEvent

    client, keys, db = console
    store = BankStore(db)
    store.create_bank("known", description="test list")
    store.add_entries("known", [{"signal_type": "md5", "value": f"{i:032x}"} for i in range(120)])
    store.remove_entries("known", values=[f"{3:032x}"], reason="false positive")
    listing = tmp_path / "list.txt"
    listing.write_text("pdq " + "e" * 64 + "\n", encoding="utf-8")
    ExchangeStore(db).create("LIST", "local_file", settings={"filename": str(listing)})

    assert client.get("/console/banks", follow_redirects=False).status_code == 303  # login first
    _login(client, keys.admin)
    page = client.get("/console/banks")
    assert page.status_code == 200 and "known" in page.text
    row = re.search(r'<a href="/console/banks/known">known</a>.*?</tr>', page.text, re.S).group(0)
    assert '<td class="num">119</td>' in row and '<td class="num">1</td>' in row and "PDQ radius 31" in row
    assert "exchange <a href=\"/console/exchanges\">LIST</a>" in page.text

    # entries, 50 a page, keyset paging; removed ones shown with their reason unless hidden
    first = client.get("/console/banks/known")
    assert first.text.count('<td class="num">') >= 50 and "false positive" in first.text
    nxt = re.search(r'id="next-page" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    second = client.get(nxt)
    assert f"{50:032x}" in second.text and f"{49:032x}" not in second.text
    assert "false positive" not in client.get("/console/banks/known?hide=1").text
    assert f"{7:032x}" in client.get(f"/console/banks/known?q={7:032x}").text

    csrf = _csrf(page.text)
    # CSRF is required
    assert client.post("/console/banks/known/add", data={"signal_type": "md5", "value": "a" * 32}).status_code == 403
    # add by hash, then by file (its SHA-256 and PDQ; the file itself is not kept)
    r = client.post("/console/banks/known/add", data={"csrf": csrf, "signal_type": "md5", "value": "A" * 32})
    assert r.status_code == 200 and "Added 1 (md5" in r.text
    r = client.post("/console/banks/known/add", data={"csrf": csrf},
                    files={"file": (PHOTO.name, PHOTO.read_bytes(), "image/jpeg")})
    assert "Added 2 (sha256, pdq" in r.text and "stored items newly match" in r.text
    r = client.post("/console/banks/known/add", data={"csrf": csrf, "signal_type": "pdq", "value": "xyz"})
    assert "Not added" in r.text
    added = {e.signal_type for e in store.iter_entries("known") if e.signal_type in ("sha256", "pdq")}
    assert added == {"sha256", "pdq"}
    assert not list(tmp_path.glob("**/" + PHOTO.name))  # nothing of the upload lands on disk here
    with db.session() as s:
        adds = [e.data for e in s.scalars(select(AuditEvent)) if e.kind == "bank.add"]
    assert [a["via"] for a in adds] == ["console hash", "console file"]

    # test-match: the file matches through its PDQ and SHA-256; an unknown hash does not
    r = client.post("/console/banks/known/test", data={"csrf": csrf}, files={"file": (PHOTO.name, PHOTO.read_bytes(), "image/jpeg")})
    result = re.search(r'id="test-result">(.*?)</section>', r.text, re.S).group(1)
    assert "2 matches in known" in result and "sha256" in result and "pdq" in result
    r = client.post("/console/banks/known/test", data={"csrf": csrf, "signal_type": "md5", "value": "a" * 32})
    assert "1 match in known" in r.text
    r = client.post("/console/banks/known/test", data={"csrf": csrf, "signal_type": "md5", "value": "b" * 32})
    assert "No match in known" in r.text

    # exchanges: last fetch status, enable/disable (audited)
    from tripwire.config import Config
    from tripwire.pipeline.exchanges import fetch_and_rematch

    assert fetch_and_rematch(db, Config(), "LIST").fetch.complete
    ex = client.get("/console/exchanges")
    row = re.search(r'data-exchange="LIST">(.*?)</tr>', ex.text, re.S).group(1)
    assert "local_file" in row and ">ok<" in row and '<td class="num">1</td>' in row
    r = client.post("/console/exchanges/LIST/enabled", data={"csrf": csrf, "enabled": "0"})
    assert r.status_code == 200 and "disabled" in r.text and ExchangeStore(db).get("LIST").enabled is False

    # an auditor may look but not add
    client.cookies.clear()
    _login(client, keys.auditor)
    assert client.get("/console/banks/known").status_code == 200
    auditor_csrf = _csrf(client.get("/console/banks").text)
    assert client.post("/console/banks/known/add", data={"csrf": auditor_csrf, "signal_type": "md5",
                                                         "value": "c" * 32}).status_code == 403

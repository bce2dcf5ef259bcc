"""``[scan] pdq_decode = "draft"`` / ``tripwire scan --pdq-decode draft``: the fast PDQ decode, and honesty about it.

One real draft scan (subprocess, like a user runs it) of the camera fixtures plus rotated/mirrored copies of
a 2048x1536 photo, into a database holding a bank with the *exact* (threatexchange) hash of that photo; the
tests read its outputs. The default path's equality with threatexchange is tests/test_pdq_interop.py's.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

from helpers import hamming, read_jsonl, tripwire
from test_matcher_scan import cli, cli_ok
from tripwire.config import Config, ScanSettings, load_config, with_scan_settings
from tripwire.errors import UsageError
from tripwire.records import PDQ_DRAFT_NOTE

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
CAMERA = FIXTURES / "camera"
PHOTO = CAMERA / "hdr" / "canon_hdr_NO.jpg"  # 2048x1536
#: a copy turned or mirrored -> the variant label that maps it back onto the bank's picture
TURNS = {"rot90.jpg": (Image.Transpose.ROTATE_90, "rot270"), "mirror.jpg": (Image.Transpose.FLIP_LEFT_RIGHT, "flip_horizontal")}


@pytest.fixture(scope="module")
def draft_scan(tmp_path_factory):
    root = tmp_path_factory.mktemp("draft")
    turned = root / "turned"
    turned.mkdir()
    with Image.open(PHOTO) as im:
        for name, (op, _) in TURNS.items():
            im.transpose(op).save(turned / name, quality=90)
    db = str(root / "t.db")
    exact, _ = pdq_from_file(PHOTO)  # the hash partners compute: what a shared bank holds
    (root / "bank.txt").write_text(f"pdq {exact}\n")
    cli_ok("bank", "create", "hotline", "--db", db)
    cli_ok("bank", "import", "hotline", str(root / "bank.txt"), "--format", "te", "--db", db)
    proc = tripwire("scan", str(CAMERA), str(turned), "--pdq-decode", "draft", "--case", "d", "--db", db,
                    "--out", str(root / "out"), "--workers", "1", "-q")
    assert proc.returncode == 0, proc.stderr
    with (root / "out" / "items.csv").open(encoding="utf-8", newline="") as fh:
        rows = {Path(r["path"]): r for r in csv.DictReader(fh)}
    return {"db": db, "turned": turned, "records": {Path(r["path"]): r for r in read_jsonl(root / "out" / "items.jsonl")},
            "csv": rows}


def test_draft_scan_marks_reduced_hashes_and_stays_within_10_bits(draft_scan):
    """Every JPEG the draft scaled down carries ``pdq_decode: draft`` (jsonl and csv) and is within 10 bits of
    threatexchange's hash; every other image got the exact hash and no mark."""
    drafted = 0
    assert len(draft_scan["records"]) == 52
    for path, record in draft_scan["records"].items():
        expected, quality = pdq_from_file(path)
        with Image.open(path) as im:
            reduced = min(im.size) >= 1024  # the draft scales a JPEG only when both sides allow >= 512 px
        if reduced:
            drafted += 1
            assert record["pdq_decode"] == draft_scan["csv"][path]["pdq_decode"] == "draft", path
            if quality >= 80:
                assert hamming(record["pdq"], expected) <= 10, path
        else:
            assert "pdq_decode" not in record and draft_scan["csv"][path]["pdq_decode"] == "", path
            assert record["pdq"] == expected, path
    assert drafted == 9  # 7 camera photos of 2-9 MP and the 2 turned copies


def test_rotated_and_mirrored_copies_match_the_exact_hash_in_draft_mode(draft_scan):
    records = draft_scan["records"]
    assert [(m["bank"], m["variant"]) for m in records[PHOTO]["matches"]] == [("hotline", "original")]
    for name, (_, label) in TURNS.items():
        record = records[draft_scan["turned"] / name]
        assert [(m["bank"], m["variant"]) for m in record["matches"]] == [("hotline", label)], name
        assert record["matches"][0]["distance"] <= 10 and record["pdq_decode"] == "draft", name


def test_one_decode_per_item_in_draft_mode():
    """``pdq`` and the variants share one draft decode; nothing decodes the photo at full size."""
    from tripwire.media.item import Item
    from tripwire.pipeline.extractors import default_extractors
    from tripwire.pipeline.worker import new_record, run_extractors
    from tripwire.signals.pdq import DRAFT_DECODE_SIZE

    config = with_scan_settings(Config(), pdq_decode="draft")
    data = PHOTO.read_bytes()
    item = Item(str(PHOTO), data, len(data), config.limits)
    raw = run_extractors(item, default_extractors(config), new_record(str(PHOTO), str(PHOTO)))
    assert raw["error"] is None and raw["facts"]["pdq"]["data"]["pdq_decode"] == "draft"
    assert list(item._stored) == list(item._stored_arrays) == list(item._pdq_passes) == [DRAFT_DECODE_SIZE]
    assert item._decoded is None


def test_default_and_config_and_override(tmp_path):
    """Exact by default (no mark); the config file selects draft (inspect shows it); --pdq-decode overrides it."""
    plain = json.loads(cli_ok("inspect", str(PHOTO), "--json").stdout)
    assert "pdq_decode" not in plain
    conf = tmp_path / "draft.toml"
    conf.write_text('[scan]\npdq_decode = "draft"\n')
    drafted = json.loads(cli_ok("inspect", str(PHOTO), "--json", "--config", str(conf)).stdout)
    assert drafted["pdq_decode"] == "draft" and 0 < hamming(drafted["pdq"], plain["pdq"]) <= 10
    shown = cli_ok("inspect", str(PHOTO), "--config", str(conf)).stdout
    assert "pdq_decode" in shown and "not that hash" in " ".join(shown.split())
    out = tmp_path / "out"
    cli_ok("scan", str(PHOTO), "--config", str(conf), "--pdq-decode", "exact", "--db", str(tmp_path / "t.db"),
           "--out", str(out), "--workers", "1", "-q")
    (record,) = read_jsonl(out / "items.jsonl")
    assert record["pdq"] == plain["pdq"] and "pdq_decode" not in record


def test_bad_values_are_refused_clearly(tmp_path):
    assert ScanSettings.from_config(Config()).pdq_decode == "exact"
    conf = tmp_path / "bad.toml"
    conf.write_text('[scan]\npdq_decode = "fast"\n')
    with pytest.raises(UsageError, match="scan.pdq_decode .* must be 'exact' or 'draft', not 'fast'"):
        ScanSettings.from_config(load_config(conf))
    conf.write_text('[scan]\npdq_decoding = "draft"\n')  # a typo is not silently the default
    with pytest.raises(UsageError, match="unknown setting scan.pdq_decoding"):
        ScanSettings.from_config(load_config(conf))
    db = tmp_path / "t.db"
    for args in (["--pdq-decode", "fast"], ["--config", str(conf)]):
        res = cli("scan", str(PHOTO), *args, "--db", str(db), "--out", str(tmp_path / "out"), "--workers", "1")
        assert res.returncode == 2 and "pdq_decod" in res.stderr, res.stderr
    assert not db.exists()  # refused before the case database is created
    res = cli("inspect", str(PHOTO), "--config", str(conf))
    assert res.returncode == 2 and "unknown setting scan.pdq_decoding" in res.stderr


def test_service_scans_draft_but_hma_hashing_stays_exact(db_url, tmp_path):
    """A service configured for the draft decode: ``POST /v1/scan`` records (and the console shows) a marked
    draft hash, while ``/h/hash`` answers threatexchange's hash (the HMA drop-in contract)."""
    from fastapi.testclient import TestClient
    from service_helpers import make_config, make_keys, make_settings, scan

    from test_service_console import login
    from tripwire.service.app import create_app
    from tripwire.store.db import open_db

    db = open_db(db_url)
    keys = make_keys(db)
    config = with_scan_settings(make_config(tmp_path), pdq_decode="draft")
    expected, _ = pdq_from_file(PHOTO)
    data = PHOTO.read_bytes()
    try:
        with TestClient(create_app(config=config, settings=make_settings(config), database=db),
                        base_url="https://testserver") as client:
            ((record,),) = [f["records"] for f in scan(client, keys.h("submitter"), [("photo.jpg", data)]).json()["files"]]
            assert record["pdq_decode"] == "draft" and 0 < hamming(record["pdq"], expected) <= 10
            hashed = client.post("/h/hash", headers=keys.h("submitter"), files={"photo": ("photo.jpg", data)})
            assert hashed.status_code == 200 and hashed.json() == {"pdq": expected}
            login(client, keys.reviewer)
            page = client.get(f"/console/items/{record['item_id']}").text
            assert record["pdq"] in page and "draft decode: within ~10 bits of the hash partners compute" in page
    finally:
        db.dispose()


def test_exports_say_a_draft_hash_is_not_the_exact_one(draft_scan):
    """Shared signals, VICS and NCMEC reports carry a note with a draft PDQ, and the commands warn."""
    db = draft_scan["db"]
    from lxml import etree

    db, records = draft_scan["db"], draft_scan["records"]
    drafted, exact = records[draft_scan["turned"] / "rot90.jpg"], records[CAMERA / "Canon_PowerShot_S40.jpg"]
    for record in (drafted, exact):
        cli_ok("decide", str(record["item_id"]), "--decision", "confirmed_abuse", "--actor", "reviewer-1", "--db", db)
    res = cli_ok("signals", "export", "--case", "d", "--format", "lantern", "--db", db)
    notes = {r["signal_value"]: r["note"] for r in csv.DictReader(res.stdout.splitlines()) if r["signal_type"] == "pdq"}
    assert notes == {drafted["pdq"]: PDQ_DRAFT_NOTE, exact["pdq"]: ""}
    assert "1 PDQ hash(es) in this output come from the draft decode" in " ".join(res.stderr.split())
    res = cli_ok("signals", "export", "--case", "d", "--format", "te-csv", "--db", db)
    assert [line.startswith(f"pdq,{drafted['pdq']},") for line in res.stdout.splitlines() if "pdq_decode:draft" in line] == [True]
    res = cli_ok("export", "vics", "d", "--db", db)
    comments = [m.get("Comments", "") for m in json.loads(res.stdout)["value"][0]["Media"]]
    assert sorted(PDQ_DRAFT_NOTE in c for c in comments) == [False, True] and "1 PDQ hash(es)" in res.stderr
    for record, note in ((drafted, [PDQ_DRAFT_NOTE]), (exact, [])):
        res = cli_ok("report", "ncmec", str(record["item_id"]), "--dry-run", "--db", db, "--json")
        (details,) = json.loads(res.stdout)[0]["file_details_xml"]
        pairs = {p.findtext("name"): p.findtext("value") for p in etree.fromstring(details.encode()).iter("nameValuePair")}
        assert pairs["PDQ"] == record["pdq"] and [v for k, v in pairs.items() if k == "PDQ decode"] == note
        assert ("draft decode" in res.stderr) == bool(note)

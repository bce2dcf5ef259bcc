"""VICS 2.0 case export and import: one Media per unique file, categories from decisions, exact round trip."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from helpers import tripwire
from reporting_helpers import add_context, context_for, decide, media_folder, store_files

from tripwire.banks.store import BankStore
from tripwire.banks.vics import read_vics
from tripwire.errors import UsageError
from tripwire.report.reviewed import reviewed_items
from tripwire.report.vics_case import export_case
from tripwire.review.vics_import import import_case, iter_media
from tripwire.review import audit
from tripwire.store.db import open_db


@pytest.fixture
def case(db_url, tmp_path):
    """Four paths, three unique files: the AI file occurs twice (a copy in a sub-folder)."""
    db = open_db(db_url)
    files = media_folder(tmp_path / "media")
    copy = tmp_path / "media" / "sub" / "duck-copy.png"
    copy.parent.mkdir()
    shutil.copyfile(files["ai"], copy)
    ids = store_files(db, "c1", [*files.values(), copy])
    by = {k: ids[str(p)] for k, p in files.items()}
    by["copy"] = ids[str(copy)]
    add_context(db, by["ai"], **context_for(0))
    decide(db, by["ai"], "ai_generated", note="synthetic")
    decide(db, by["copy"], "ai_generated")
    decide(db, by["camera"], "confirmed_abuse")
    # the synthesised file has no decision: it must not be exported
    yield db, by, files, copy
    db.dispose()


def _export(db, name):
    out = io.StringIO()
    summary = export_case(db, name, out)
    return json.loads(out.getvalue()), summary


def _comparable(doc):
    """The Media of an export without the ids that differ between two exports."""
    media = doc["value"][0]["Media"]
    return sorted((json.dumps({k: v for k, v in m.items() if k != "MediaID"}, sort_keys=True) for m in media))


def test_export_has_one_media_per_unique_decided_file(case):
    db, by, files, copy = case
    doc, summary = _export(db, "c1")
    assert doc["@odata.context"].endswith("$metadata#Cases")
    (vcase,) = doc["value"]
    assert vcase["CaseNumber"] == "c1" and vcase["SourceApplicationName"] == "tripwire"
    media = {m["MD5"].lower(): m for m in vcase["Media"]}
    assert len(media) == 2 and summary.media == 2 and summary.files == 3
    with db.session() as s:
        items = {i.item_id: i for i in reviewed_items(s, case="c1", allowed=("ai_generated", "confirmed_abuse"))}
    ai, cam = items[by["ai"]], items[by["camera"]]
    m_ai, m_cam = media[ai.md5], media[cam.md5]
    assert m_ai["SHA1"] == ai.sha1.upper() and m_ai["Category"] == 3 and m_cam["Category"] == 1
    assert m_ai["IsPrecategorized"] is True and m_ai["MediaSize"] == files["ai"].stat().st_size
    paths = sorted(f"{f['FilePath']}/{f['FileName']}" for f in m_ai["MediaFiles"])
    assert paths == sorted([str(files["ai"]), str(copy)])
    hashes = {h["HashName"]: h["HashValue"] for h in m_cam["AlternativeHashes"]}
    assert hashes == {"PDQ": cam.pdq, "SHA256": cam.sha256}
    assert {h["HashName"] for h in m_ai["AlternativeHashes"]} == {"SHA256"}  # the duck's PDQ quality is too low
    assert "tripwire:provenance=ai_generated" in m_ai["Tags"] and "tripwire:tool=AUTOMATIC1111" in m_ai["Tags"]
    assert "tripwire:provenance=camera_original" in m_cam["Tags"] and "tripwire:decision=confirmed_abuse" in m_cam["Tags"]
    assert m_ai["Comments"] == "synthetic"
    assert not any(files["synth"].name in f["FileName"] for m in vcase["Media"] for f in m["MediaFiles"])


def test_round_trip_through_a_case(case, tmp_path):
    db, by, files, copy = case
    first, _ = _export(db, "c1")
    path = tmp_path / "case.json"
    path.write_text(json.dumps(first), encoding="utf-8")
    with open(path, "rb") as fh:
        summary = import_case(db, fh, "c2", str(path), reviewer="analyst-5")
    assert summary.media == 2 and summary.items == 3 and summary.decisions == 3 and not summary.errors
    second, _ = _export(db, "c2")
    assert _comparable(second) == _comparable(first)
    # imported categories became decisions only because a named person vouched for them, each audited
    with db.session() as s:
        items = reviewed_items(s, case="c2", allowed=("ai_generated", "confirmed_abuse"))
        assert {i.decision.reviewer for i in items} == {"analyst-5"}
        assert all("imported from VICS" in i.decision.note for i in items)
        assert audit.verify(s).ok
    # importing again adds nothing
    with open(path, "rb") as fh:
        again = import_case(db, fh, "c2", str(path), reviewer="analyst-5")
    assert again.items == 0 and again.existing == 3 and again.decisions == 0


def test_import_without_a_reviewer_records_no_decisions(case, tmp_path):
    db, *_ = case
    doc, _ = _export(db, "c1")
    summary = import_case(db, io.BytesIO(json.dumps(doc).encode()), "c3", "x.json")
    assert summary.items == 3 and summary.decisions == 0
    exported, _ = _export(db, "c3")
    assert exported["value"][0]["Media"] == []  # someone else's categories are facts, not our decisions
    from tripwire.store import queries
    records = list(queries.iter_records(db, db.case_id("c3", create=False)))
    assert sorted(r["vics"]["category"] for r in records) == [1, 3, 3]
    assert all(r["md5"] and r["sha1"] and r["sha256"] for r in records)
    with pytest.raises(UsageError):
        _export(db, "no-such-case")


def test_round_trip_through_a_bank_with_the_bank_importer(case):
    db, *_ = case
    doc, _ = _export(db, "c1")
    details: dict = {}
    entries = [e for e in read_vics(io.BytesIO(json.dumps(doc).encode()), details) if hasattr(e, "signal_type")]
    assert details["envelope"] == "v2" and details["media"] == 2
    got = {(e.signal_type.lower(), str(e.value).lower(), e.category) for e in entries}
    media = doc["value"][0]["Media"]
    want = set()
    for m in media:
        want.add(("md5", m["MD5"].lower(), m["Category"]))
        want.add(("sha1", m["SHA1"].lower(), m["Category"]))
        for h in m["AlternativeHashes"]:
            want.add((h["HashName"].lower(), h["HashValue"].lower(), m["Category"]))
    assert got == want


def test_iter_media_reads_hash_sets_and_rejects_non_vics():
    v1 = {"odata.metadata": "x", "value": [{"MediaID": 1, "MD5": "A" * 32, "Category": 0},
                                           {"MediaID": 2, "MD5": "B" * 32, "Category": 1}]}
    got = list(iter_media(io.BytesIO(json.dumps(v1).encode())))
    assert [m["MediaID"] for _, m, _ in got] == [1, 2]
    with pytest.raises(UsageError):
        list(iter_media(io.BytesIO(b'{"something": 1}')))


def test_cli_export_and_import(case, tmp_path):
    db, *_ = case
    if db.dialect != "sqlite":
        pytest.skip("the command line runs on SQLite here; the library tests above cover PostgreSQL")
    out = tmp_path / "case.json"
    proc = tripwire("export", "vics", "c1", "--db", db.url)
    assert proc.returncode == 0, proc.stderr
    out.write_text(proc.stdout, encoding="utf-8")
    assert len(json.loads(proc.stdout)["value"][0]["Media"]) == 2
    proc = tripwire("import", "vics", str(out), "--bank", "from-vics", "--db", db.url)
    assert proc.returncode == 0, proc.stderr
    assert {e.signal_type for e in BankStore(db).iter_entries("from-vics")} == {"md5", "sha1", "sha256", "pdq"}
    proc = tripwire("import", "vics", str(out), "--case", "c9", "--record-decisions", "--db", db.url)
    assert proc.returncode == 2 and "--reviewer" in proc.stderr
    proc = tripwire("import", "vics", str(out), "--case", "c9", "--record-decisions", "--reviewer", "analyst-5",
                    "--db", db.url, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["decisions"] == 3

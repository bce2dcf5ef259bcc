"""``tripwire scan`` over the hostile corpus (tests/hostile.py): every file recorded, PDQ kept, no traceback.

The corpus is built in memory and written to a temporary folder; nothing hostile is committed. Each issue 11
item has its own test below asserting the documented outcome (docs/security.md, "What each bad input gets"),
and each crash the fuzzing harness found is a regression test at the end of this file.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

import hostile
from tripwire.config import load_config
from tripwire.errors import ERROR_CODES, UsageError
from tripwire.pipeline.scan import run_scan
from tripwire.store import queries
from tripwire.store.db import open_db

REPO = Path(__file__).resolve().parents[1]


def scan_folder(folder: Path, tmp: Path, case: str = "hostile") -> tuple[Any, list[dict[str, Any]], str]:
    """Scan ``folder`` (one worker) into a fresh SQLite case; (result, records, what reached stderr)."""
    db = open_db(f"sqlite:///{tmp / 'case.db'}")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as err:
        os.dup2(err.fileno(), 2)  # the worker process inherits it: a traceback anywhere lands here
        try:
            result = run_scan([str(folder)], db, case, tmp / "out", load_config(environ={}), workers=1, quiet=True)
            records = list(queries.iter_records(db, db.case_id(case)))
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            db.dispose()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return result, records, stderr


def _top_level(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["path"]: r for r in records if "!/" not in r["path"]}


@pytest.fixture(scope="module")
def corpus_scan(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    folder = tmp / "in"
    written = hostile.write_corpus(folder)
    result, records, stderr = scan_folder(folder, tmp)
    return written, result, records, tmp, stderr


def test_scan_returns_and_records_every_file(corpus_scan):
    written, result, records, _tmp, _stderr = corpus_scan
    assert result.items_written == len(records)
    top = _top_level(records)
    for path in written:
        assert path in top, f"no record for {path!r}"
        rec = top[path]
        assert rec.get("sha256") and rec.get("md5") and rec.get("sha1"), f"no digests for {path!r}: {rec.get('error')}"


def test_pdq_whenever_pixels_are_valid(corpus_scan):
    written, _result, records, _tmp, _stderr = corpus_scan
    top = _top_level(records)
    missing = {p: top[p].get("error") for p, valid in written.items() if valid and not top[p].get("pdq")}
    assert not missing, f"valid pixels without PDQ: {missing}"


def test_no_tracebacks_and_known_error_codes(corpus_scan):
    _written, _result, records, _tmp, stderr = corpus_scan
    assert "Traceback" not in stderr, stderr[-3000:]
    for rec in records:
        err = rec.get("error")
        if err:
            assert err["code"] in ERROR_CODES
            assert err["code"] != "extractor_error", f"{rec['path']!r}: {err}"
            assert "Traceback" not in (err.get("message") or "")
        notes = (rec.get("provenance") or {}).get("notes") or []
        assert not any("Traceback" in str(n) for n in notes)


def test_expected_outcomes(corpus_scan):
    """The documented outcome of each hostile container (see docs/security.md)."""
    written, _result, records, tmp, _stderr = corpus_scan
    by_path = {r["path"]: r for r in records}
    folder = str(tmp / "in")

    def code(rel: str) -> str | None:
        rec = by_path[os.path.join(folder, rel)]
        return (rec.get("error") or {}).get("code")

    assert code("zip-bomb.zip!/zeros.bin") == "archive_bomb"
    assert by_path[os.path.join(folder, "zip-bomb.zip!/picture.png")].get("pdq")
    deep = [p for p in by_path if p.startswith(os.path.join(folder, "nested-past-depth.zip"))]
    assert any((by_path[p].get("error") or {}).get("code") == "archive_too_deep" for p in deep)
    for rel in ("unsafe-names.zip!/../escape.png", "unsafe-names.zip!//etc/absolute.png", "unsafe-names.tar!/../escape.png"):
        assert code(rel) == "unsafe_member_name", rel
        assert by_path[os.path.join(folder, rel)].get("pdq"), "an unsafe name is evidence: still hashed"
    gz = [p for p in by_path if p.startswith(os.path.join(folder, "corrupt.gz"))]
    assert any((by_path[p].get("error") or {}).get("code") == "archive_error" for p in gz), gz
    assert code("png-declares-14000x14000.png") in ("decode_error", "decompression_bomb")
    assert code("outside-root") == "symlink_outside_root"
    # links are never followed: the loop and the self link get one record each, nothing under them
    assert code("loop/up") == "symlink_loop" and code("self-link") == "symlink_loop"
    assert not any(p.startswith(os.path.join(folder, "loop", "up") + os.sep) for p in by_path), "the symlink loop was followed"
    assert not any(p.startswith(os.path.join(folder, "outside-root") + os.sep) for p in by_path)


def test_hostile_metadata_leaves_notes_not_errors(corpus_scan):
    _written, _result, records, tmp, _stderr = corpus_scan
    rec = _top_level(records)[str(tmp / "in" / "png-20k-text-chunks.png")]
    assert rec.get("error") is None
    assert any("text chunks" in n for n in rec["provenance"]["notes"])


def test_items_csv_neutralises_formula_cells(corpus_scan):
    """A text cell starting with a formula trigger is written with a leading ' (tripwire.csvsafe); numbers as they are."""
    import csv

    from tripwire.csvsafe import TRIGGERS

    _written, _result, _records, tmp, _stderr = corpus_scan
    escaped = 0
    with open(tmp / "out" / "items.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for key, value in row.items():
                value = value or ""
                if value.startswith("-"):
                    try:
                        float(value)
                        continue  # a number tripwire computed: it cannot carry a formula
                    except ValueError:
                        pass
                assert not value.startswith(TRIGGERS), f"{key}: {value[:60]!r}"
                escaped += value.startswith("'=")
    assert escaped, "the formula text of png-formula.png reaches items.csv, escaped"


def test_non_utf8_file_names_are_recorded(tmp_path):
    """Names that are not UTF-8 are scanned; records carry the display form (records.shown_path: ``\\xNN``)."""
    from tripwire.records import shown_path

    folder = tmp_path / "in"
    written = hostile.write_corpus(folder, non_utf8=True, symlinks=False, only=["png-broken-exif.png"])
    _result, records, stderr = scan_folder(folder, tmp_path)
    assert "Traceback" not in stderr, stderr[-3000:]
    top = _top_level(records)
    assert set(top) == {shown_path(p) for p in written}
    for path, valid in written.items():
        rec = top[shown_path(path)]
        assert rec.get("sha256"), rec.get("error")
        if valid:
            assert rec.get("pdq")
    assert os.path.join(str(folder), "latin1-caf\\xe9.jpg") in top
    tar = [r for r in records if "non-utf8-members.tar!/" in r["path"]]
    assert len(tar) == 2 and all(r.get("pdq") for r in tar)
    assert any(r["path"].endswith("!/caf\\xe9-alpha.png") for r in tar), [r["path"] for r in tar]


def _run_limited(code: str, timeout: float = 60, mem_gib: float = 3.0) -> subprocess.CompletedProcess:
    """Run ``code`` in a child with an address-space cap, so a quadratic blow-up fails the test, not the box."""
    limit = int(mem_gib * 1024**3)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO / "tests")]))
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=timeout, preexec_fn=cap, env=env)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, -9, "", f"timed out after {timeout}s")


def test_vics_deep_nesting_is_bounded(tmp_path):
    """Nesting past 64 stops reading there, with an error naming the record; what came before is kept.

    Run under a 3 GiB address-space cap: before the cap, 100,000 levels cost tens of gigabytes."""
    proc = _run_limited("""
        import io, hostile
        from tripwire.banks.importer import read_entries
        from tripwire.banks.entries import RawEntry, RowError
        from tripwire.review.vics_import import import_case
        from tripwire.store.db import open_db
        out = list(read_entries("vics", io.BytesIO(hostile.vics_deep())))
        assert out and all(isinstance(e, RowError) for e in out), out  # value[0] is an array: no Media at all
        assert "nested deeper than 64 levels, reading stopped" in out[-1].message, out
        out = list(read_entries("vics", io.BytesIO(hostile.vics_deep_in_media())))
        assert [e.value for e in out if isinstance(e, RawEntry)] == ["9" * 32], out  # before the deep Media
        [err] = [e for e in out if isinstance(e, RowError)]
        assert err.position == "record 2 (value[1])" and "nested deeper than 64 levels, reading stopped" in err.message
        db = open_db("sqlite:///CASE_DB")
        summary = import_case(db, io.BytesIO(hostile.vics_deep_in_media()), "deep", "deep.json")
        assert summary.media == 1 and summary.items == 1, summary
        assert [e["position"] for e in summary.errors] == ["value[1]"], summary.errors
        assert "nested deeper than 64 levels, reading stopped" in summary.errors[0]["message"]
        summary = import_case(db, io.BytesIO(hostile.vics_deep()), "deep-2", "deep-2.json")
        assert summary.media == 0 and len(summary.errors) == 1 and "nested deeper" in summary.errors[0]["message"]
        print("ok")
    """.replace("CASE_DB", str(tmp_path / "case.db")))
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


def test_vics_big_integers(tmp_path):
    """Integers beyond 64 bits are read (ijson's Python backend takes over) and judged like any value."""
    from tripwire.banks.importer import read_entries, run_import
    from tripwire.banks.store import BankStore
    from tripwire.review.vics_import import import_case
    from tripwire.store.models import ItemRow
    from sqlalchemy import select

    db = open_db(f"sqlite:///{tmp_path / 'bank.db'}")
    try:
        store = BankStore(db)
        store.create_bank("big")
        report = run_import(store, "big", read_entries("vics", io.BytesIO(hostile.vics_big_ints())), "vics")
        # MediaID 2**63 is a source id like any other; Category 2**64+3 is out of range and costs that Media's
        # hash, as Category 9 would; the bank reader ignores MediaSize
        assert report.added == 3 and report.error_count == 1, report.as_dict()
        assert report.errors[0].position == "record 2 (value[1]) MD5" and "invalid VICS category" in report.errors[0].message
        # the case import keeps all three; MediaSize 2**70 does not fit a size column: that field is dropped
        summary = import_case(db, io.BytesIO(hostile.vics_big_ints()), "big-case", "vics-big-ints.json")
        assert summary.media == 3 and summary.items == 3, summary
        assert [e["position"] for e in summary.errors] == ["value[2] MediaSize"], summary.errors
        with db.session() as s:
            row = s.scalars(select(ItemRow).where(ItemRow.path == "case/big.png")).one()
            assert row.size is None and "size" not in row.stage_data
    finally:
        db.dispose()


@pytest.mark.parametrize("builder", [hostile.corrupt_gz, hostile.truncated_gz_list], ids=["garbage", "truncated"])
def test_corrupt_gz_bank_list_is_reported(tmp_path, builder):
    """A damaged .gz stops the import with a row error at the byte where it broke; whole rows before it load."""
    from tripwire.banks.importer import import_file
    from tripwire.banks.store import BankStore

    path = tmp_path / "list.txt.gz"
    path.write_bytes(builder())
    db = open_db(f"sqlite:///{tmp_path / 'bank.db'}")
    try:
        store = BankStore(db)
        store.create_bank("gz")
        report = import_file(store, "gz", path, "lines", signal_type="md5")
        damage = report.errors[-1]
        assert damage.position.startswith("byte ") and "corrupt or truncated .gz, reading stopped" in damage.message
        if builder is hostile.truncated_gz_list:
            assert report.added > 1000, report.as_dict()  # the lines before the cut
        else:
            assert report.added == 0 and report.error_count == 1, report.as_dict()
    finally:
        db.dispose()


def test_csv_formula_list_imports(tmp_path):
    """A CSV list whose cells start with '=' loads as text (it is data, never evaluated)."""
    from tripwire.banks.importer import read_entries, run_import
    from tripwire.banks.store import BankStore

    db = open_db(f"sqlite:///{tmp_path / 'bank.db'}")
    try:
        store = BankStore(db)
        store.create_bank("csv")
        report = run_import(store, "csv", read_entries("csv", io.BytesIO(hostile.csv_formula_list())), "csv")
        assert report.added == 2, report.as_dict()
    finally:
        db.dispose()


def test_posts_feed_with_escapes():
    from tripwire.trade.posts import read_posts

    errors: list[dict[str, Any]] = []
    posts = list(read_posts(io.StringIO(hostile.posts_escapes().decode()), errors))
    assert [n for n, _ in posts] == [1, 2]
    assert errors and errors[0]["line"] == 3
    json.dumps(posts)  # everything read is plain data


# --- crashes found by the fuzzing harness (tests/test_fuzz.py, bench/fuzz.py): regression tests ----------

_MD5 = '"MD5":"' + "a" * 32 + '"'
_FULL = _MD5 + ',"SHA1":"' + "b" * 40 + '","SHA256":"' + "c" * 64 + '"'
_BEFORE = '{"MediaID":0,"MD5":"' + "9" * 32 + '"}'  # a good Media ahead of the bad bytes
_BAD_UTF8 = b'{"value":[' + _BEFORE.encode() + b',{' + _MD5.encode() + b',"k\xc0\x80":null}]}'


def test_vics_bank_invalid_utf8_is_a_row_error():
    """Bytes that are not UTF-8 inside a string stop the reading there (JSON is UTF-8) with a row error; the
    Media before it load. (Found by fuzzing: ijson's C backend raised UnicodeDecodeError out of read_vics.)"""
    from tripwire.banks.entries import RawEntry, RowError
    from tripwire.banks.importer import read_entries

    out = list(read_entries("vics", io.BytesIO(_BAD_UTF8)))
    assert [e.value for e in out if isinstance(e, RawEntry)] == ["9" * 32]
    [err] = [e for e in out if isinstance(e, RowError)]
    assert err.position == "after record 1" and "invalid UTF-8" in err.message and "reading stopped" in err.message


def test_vics_case_import_invalid_utf8_stops_with_position(tmp_path):
    from tripwire.review.vics_import import import_case

    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    try:
        summary = import_case(db, io.BytesIO(_BAD_UTF8), "fuzz-finding", "finding.json")
    finally:
        db.dispose()
    assert summary.media == 1 and summary.items == 1
    assert [e["position"] for e in summary.errors] == ["value[1]"], summary.errors
    assert "invalid UTF-8" in summary.errors[0]["message"] and "reading stopped" in summary.errors[0]["message"]


@pytest.mark.parametrize("field, value, error", [
    ("Tags", "1", "value[0] Tags"),                         # TypeError in review/vics.py decision_from
    ("Tags", "true", "value[0] Tags"),
    ("Tags", '[["nested"]]', "value[0] Tags"),
    ("MediaFiles", "true", "value[0] MediaFiles"),          # TypeError in review/vics_import.py import_case
    ("MediaFiles", '[{"FileName":{"a":1}}]', "value[0] MediaFiles[0]"),
    ("MediaSize", '"abc"', "value[0] MediaSize"),           # ValueError int('abc')
    ("MediaSize", "1e300", "value[0] MediaSize"),           # OverflowError at the SQLite insert
    ("MediaSize", "-5", "value[0] MediaSize"),
    ("MediaSize", str(2**70), "value[0] MediaSize"),
    ("MediaID", '{"a":1}', "value[0] MediaID"),
    ("Category", "[1]", "value[0] Category"),
    ("Comments", "false", "value[0] Comments"),
    ("IsPrecategorized", "{}", "value[0] IsPrecategorized"),
])
def test_vics_case_import_malformed_field_costs_that_field(tmp_path, field, value, error):
    """A malformed field of a Media is a row error and is left out; the Media and the import go on."""
    from tripwire.review.vics_import import import_case

    raw = ('{"value":[{%s,"%s":%s}]}' % (_FULL, field, value)).encode()
    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    try:
        summary = import_case(db, io.BytesIO(raw), "fuzz-finding", "finding.json", reviewer="fuzz-reviewer")
    finally:
        db.dispose()
    assert summary.media == 1 and summary.items == 1, summary
    assert [e["position"] for e in summary.errors] == [error], summary.errors
    assert "ignored" in summary.errors[0]["message"]


@pytest.mark.parametrize("media", ['"Tags":1', '"Tags":{"a":1}', '"MediaID":[1]', '"Series":true'])
def test_vics_bank_malformed_field_costs_that_field(media):
    """The bank reader makes the same check (banks.vics.check_media): the hashes load, the field does not."""
    from tripwire.banks.entries import RawEntry, RowError
    from tripwire.banks.importer import read_entries

    out = list(read_entries("vics", io.BytesIO(('{"value":[{%s,%s}]}' % (_FULL, media)).encode())))
    assert len([e for e in out if isinstance(e, RawEntry)]) == 3
    [err] = [e for e in out if isinstance(e, RowError)]
    assert err.position == "record 1 (value[0]) " + media.split('"')[1] and "ignored" in err.message


def test_vics_case_import_good_fields_still_apply(tmp_path):
    """The check keeps what is well formed: a size given as digits, a lone tag as text, files with names."""
    from tripwire.review.vics_import import import_case
    from tripwire.store.models import ItemRow
    from sqlalchemy import select

    raw = ('{"value":[{%s,"MediaSize":"1234","Tags":"tripwire:decision=not_abuse",'
           '"MediaFiles":[{"FileName":"a.png","FilePath":"case/"},{"FileName":7}]}]}' % _FULL).encode()
    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    try:
        summary = import_case(db, io.BytesIO(raw), "good", "good.json", reviewer="fuzz-reviewer")
        with db.session() as s:
            sizes = sorted((r.path, r.size) for r in s.scalars(select(ItemRow)))
    finally:
        db.dispose()
    assert not summary.errors and summary.items == 2 and summary.decisions == 2, summary
    assert sizes == [("7", 1234), ("case/a.png", 1234)]


@pytest.mark.parametrize("before", ["", '{"MD5":"%s","MediaID":%d},' % ("8" * 32, 2**70)],
                         ids=["c-backend", "after-a-big-int"])
def test_vics_lone_surrogate_escape_is_a_row_error(tmp_path, before):
    """``"\\ud800"`` is valid JSON syntax but not text: the readers stop there as for invalid UTF-8. After a number
    beyond 64 bits the Python backend reads on, and it let the surrogate through (UnicodeEncodeError at the
    bank insert; found while fixing the fuzz findings)."""
    from tripwire.banks.importer import read_entries, run_import
    from tripwire.banks.store import BankStore
    from tripwire.review.vics_import import import_case

    bad = '{"MD5":"%s","Comments":"x\\ud800y","MediaFiles":[{"FileName":"\\udcff.png"}]}' % ("a" * 32)
    raw = ('{"value":[' + _BEFORE + "," + before + bad + "]}").encode()
    good = 2 if before else 1
    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    try:
        store = BankStore(db)
        store.create_bank("s")
        report = run_import(store, "s", read_entries("vics", io.BytesIO(raw)), "vics")
        assert report.added == good and report.error_count == 1, report.as_dict()
        assert "lone surrogate" in report.errors[0].message and "reading stopped" in report.errors[0].message
        summary = import_case(db, io.BytesIO(raw), "s", "s.json")
        assert summary.media == good and [e["position"] for e in summary.errors] == [f"value[{good}]"], summary
    finally:
        db.dispose()


def test_vics_control_character_after_a_big_int_is_a_row_error(tmp_path):
    """After a number beyond 64 bits the Python backend reads on; a raw control character in a key then raised
    json.JSONDecodeError out of read_vics (found by bench/fuzz.py, seed 1114412717). It is invalid JSON: a row error."""
    from tripwire.banks.entries import RawEntry, RowError
    from tripwire.banks.importer import read_entries
    from tripwire.review.vics_import import import_case

    raw = ('{"value":[' + _BEFORE + ',{"MediaID":%d,"MD5":"%s","Alternative\x00Hashes":null}]}' % (2**70, "a" * 32)).encode()
    out = list(read_entries("vics", io.BytesIO(raw)))
    assert [e.value for e in out if isinstance(e, RawEntry)] == ["9" * 32]
    [err] = [e for e in out if isinstance(e, RowError)]
    assert err.position == "after record 1" and "control character" in err.message and "reading stopped" in err.message
    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    try:
        summary = import_case(db, io.BytesIO(raw), "ctl", "ctl.json")
    finally:
        db.dispose()
    assert summary.media == 1 and [e["position"] for e in summary.errors] == ["value[1]"], summary

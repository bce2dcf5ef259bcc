"""Hostile JSON and compressed inputs (issue 11, items 5 and 9), each built here:

* a 200 KB VICS file nested 100,000 deep used to take 23.5 GB (ijson built a path string per level); under a
  4 GB address-space limit ``tripwire bank import`` now stops at the nesting cap with a clear error naming
  the record, keeps the records before it and exits 3;
* the same cap in the JSONL reader, the VICS case import and the HMA bank-signal body;
* a VICS integer beyond 64 bits stopped ijson's C backend and dropped every later record; now it is a row
  error and the records after it load;
* a corrupt or cut-short ``.gz`` was a zlib/EOFError traceback; now the rows decoded before the damage load
  and the damage is a row error naming its byte, exit 3.
"""

from __future__ import annotations

import gzip
import io
import json
import resource
import subprocess
import sys

from fastapi.testclient import TestClient
from service_helpers import make_config, make_keys, make_settings
from sqlalchemy import func, select

from tripwire.banks.models import BankEntry
from tripwire.jsonl import read_jsonl
from tripwire.store.db import open_db

DEPTH = 100_000


def _md5(i: int) -> str:
    return "%032x" % i


def _deep_vics(tmp_path):
    good = ",".join(json.dumps({"MD5": _md5(i), "Category": 1}) for i in (1, 2, 3))
    hostile = '{"MD5":"%s","Tags":%s%s}' % (_md5(9), "[" * DEPTH, "]" * DEPTH)
    path = tmp_path / "deep.json"
    path.write_text('{"@odata.context":"x","value":[' + good + "," + hostile + "]}")
    assert path.stat().st_size < 250_000
    return path


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4_000_000_000, 4_000_000_000))


def _tripwire(*args: str, limited: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tripwire", *args], capture_output=True, text=True, timeout=300,
                          preexec_fn=_limit_memory if limited else None)


def _entries(db_path) -> int:
    db = open_db(str(db_path))
    try:
        with db.session() as s:
            return s.scalar(select(func.count()).select_from(BankEntry)) or 0
    finally:
        db.dispose()


def test_deep_vics_stops_at_the_cap_under_a_4gb_limit(tmp_path):
    vics = _deep_vics(tmp_path)
    db = tmp_path / "b.db"
    assert _tripwire("bank", "create", "deep", "--db", str(db)).returncode == 0
    r = _tripwire("bank", "import", "deep", str(vics), "--db", str(db), "--no-index", limited=True)
    assert r.returncode == 3, r.stderr[-2000:]
    assert "record 4 (value[3]): nested deeper than 64 levels, reading stopped" in r.stderr, r.stderr
    assert "3 added" in r.stderr and "Traceback" not in r.stderr
    assert _entries(db) == 3


def test_deep_vics_case_import_reports_where_it_stopped(tmp_path):
    vics = _deep_vics(tmp_path)
    r = _tripwire("import", "vics", str(vics), "--case", "c1", "--db", str(tmp_path / "c.db"), "--json", limited=True)
    assert r.returncode == 3, r.stderr[-2000:]
    summary = json.loads(r.stdout)
    assert summary["media"] == 3 and summary["items"] == 3
    assert any("nested deeper than 64 levels, reading stopped" in e["message"] and e["position"] == "value[3]"
               for e in summary["errors"]), summary["errors"]


def test_jsonl_line_nested_too_deep_is_a_line_error():
    text = '{"a": 1}\n' + "[" * DEPTH + "]" * DEPTH + '\n{"b": 2}\n'
    out = list(read_jsonl(io.StringIO(text)))
    assert out[0] == (1, {"a": 1}) and out[2] == (3, {"b": 2})
    assert isinstance(out[1][1], ValueError) and "nested deeper than 64 levels (column 65)" in str(out[1][1])
    # brackets inside strings do not count
    assert list(read_jsonl(io.StringIO(json.dumps({"s": "[" * 500}) + "\n"))) == [(1, {"s": "[" * 500})]


def test_hma_signal_body_nested_too_deep_is_a_400(tmp_path):
    db = open_db(f"sqlite:///{tmp_path / 'svc.db'}")
    keys = make_keys(db)
    config = make_config(tmp_path)
    from tripwire.service.app import create_app

    app = create_app(config=config, settings=make_settings(config), database=db)
    try:
        with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
            body = '{"pdq":' + "[" * 5000 + "]" * 5000 + "}"
            r = client.post("/c/bank/HMA_BANK/signal", headers={**keys.h("admin"), "Content-Type": "application/json"},
                            content=body)
            assert r.status_code == 400 and "nests deeper than 64" in r.text, (r.status_code, r.text)
    finally:
        db.dispose()


def test_vics_integer_beyond_64_bits_is_a_row_error_and_later_records_load(tmp_path):
    records = [{"MD5": _md5(1)}, "BIGINT", {"MD5": _md5(3)}, {"MD5": _md5(4)}]
    text = json.dumps({"value": records}).replace('"BIGINT"', '{"MediaID": 1, "MD5": 184467440737095516160}')
    (tmp_path / "big.json").write_text(text)
    db = tmp_path / "b.db"
    assert _tripwire("bank", "create", "big", "--db", str(db)).returncode == 0
    r = _tripwire("bank", "import", "big", str(tmp_path / "big.json"), "--db", str(db), "--no-index")
    assert r.returncode == 3, r.stderr
    assert "record 2 (value[1]) MD5" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert _entries(db) == 3


def test_corrupt_gz_loads_the_rows_before_the_damage(tmp_path):
    rows = "".join(_md5(i) + "\n" for i in range(1, 20_001)).encode()
    packed = gzip.compress(rows)
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    db = tmp_path / "b.db"
    assert _tripwire("bank", "create", "gz", "--db", str(db)).returncode == 0
    r = _tripwire("bank", "import", "gz", str(cut), "--db", str(db), "--no-index", "--signal-type", "md5", "--json")
    assert r.returncode == 3, r.stderr
    report = json.loads(r.stdout)
    damage = [e for e in report["errors"] if "corrupt or truncated .gz" in e["message"]]
    assert len(damage) == 1 and damage[0]["position"].startswith("byte ") and "Traceback" not in r.stderr
    offset = int(damage[0]["position"].split()[1])
    complete = offset // 33  # every whole line decoded before the damage
    assert complete > 1000 and report["added"] >= complete
    assert _entries(db) == report["added"]

    notgz = tmp_path / "plain.txt.gz"
    notgz.write_bytes(b"this is not gzip data\n")
    r = _tripwire("bank", "import", "gz", str(notgz), "--db", str(db), "--no-index", "--signal-type", "md5", "--json")
    assert r.returncode == 3 and json.loads(r.stdout)["errors"][0]["position"] == "byte 0 of the decompressed data"

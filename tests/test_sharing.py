"""Signal sharing: only human-confirmed signals leave, and python-threatexchange's own code loads them."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tripwire
from reporting_helpers import add_context, context_for, decide, media_folder, store_files
from threatexchange.cli.main import _DEFAULT_SIGNAL_TYPES
from threatexchange.exchanges.impl.file_api import FileCollaborationConfig, LocalFileSignalExchangeAPI
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.trend_query import TrendQuery, TrendQuerySignal
from threatexchange.signal_type.url import URLSignal

from tripwire.banks.importer import run_import
from tripwire.banks.store import BankStore
from tripwire.report.reviewed import NotDecided
from tripwire.sharing.indicators import SharedSignal, collect_signals, read_signals, write_signals
from tripwire.store.db import open_db


@pytest.fixture
def case(db_url, tmp_path):
    db = open_db(db_url)
    files = media_folder(tmp_path / "media")
    ids = store_files(db, "c1", list(files.values()))
    by = {k: ids[str(p)] for k, p in files.items()}
    for n, key in enumerate(("ai", "camera", "synth")):
        ctx = context_for(n, account=f"acct-{n}")
        ctx["extra"] = {"keywords": ["term-1", "alpha bravo"]} if key == "camera" else {}
        add_context(db, by[key], **ctx)
    decide(db, by["ai"], "ai_generated")
    decide(db, by["camera"], "confirmed_abuse")
    decide(db, by["synth"], "not_abuse")  # a reviewed false positive: never shared
    yield db, by
    db.dispose()


def _signals(db, **kw):
    return collect_signals(db, case="c1", **kw)


def test_only_human_confirmed_items_are_exported(case):
    db, by = case
    signals = _signals(db)
    values = {(s.type, s.value) for s in signals}
    assert ("account", "exampleshare:acct-1") in values and ("account", "exampleshare:acct-0") in values
    assert ("account", "exampleshare:acct-2") not in values  # the not_abuse item's account
    assert ("url", "https://share.example.org/p/2") not in values
    assert ("keyword", "term-1") in values and ("keyword", "alpha bravo") in values
    kinds = sorted({s.type for s in signals})
    assert kinds == ["account", "keyword", "md5", "pdq", "sha256", "url"]
    pdq = [s for s in signals if s.type == "pdq"]
    assert len(pdq) == 1 and pdq[0].provenance == "camera_original"  # the duck's low-quality PDQ is left out
    md5 = {s.provenance: s for s in signals if s.type == "md5"}
    assert md5["ai_generated"].category == "ai_generated" and md5["camera_original"].category == "confirmed_abuse"
    assert all(s.confidence == 1.0 for s in signals if s.type in ("md5", "sha256", "pdq"))
    assert all(s.confidence < 1.0 for s in signals if s.type in ("url", "account", "keyword"))
    with pytest.raises(NotDecided):
        collect_signals(db, item_ids=[by["synth"]])


def test_te_file_loads_with_threatexchanges_own_parser(case, tmp_path):
    db, _ = case
    signals = _signals(db)
    path = tmp_path / "signals.te"
    with open(path, "w", encoding="utf-8") as fh:
        written, skipped = write_signals(signals, "te", fh)
    assert skipped == {"account": 2}  # no threatexchange type for accounts
    collab = FileCollaborationConfig(name="tripwire-peer", filename=str(path))
    api = LocalFileSignalExchangeAPI.for_collab(collab)
    fetched = {}
    for delta in api.fetch_iter(_DEFAULT_SIGNAL_TYPES, None):
        fetched.update(delta.updates)
    by_type = LocalFileSignalExchangeAPI.naive_convert_to_signal_type(_DEFAULT_SIGNAL_TYPES, collab, fetched)
    loaded = {(cls.get_name(), value) for cls, values in by_type.items() for value in values}
    assert len(loaded) == written  # nothing dropped as invalid by threatexchange
    expected_md5 = {s.value for s in signals if s.type == "md5"}
    assert {v for t, v in loaded if t == VideoMD5Signal.get_name()} == expected_md5
    assert {v for t, v in loaded if t == PdqSignal.get_name()} == {s.value for s in signals if s.type == "pdq"}
    assert {v for t, v in loaded if t == URLSignal.get_name()} == {s.value for s in signals if s.type == "url"}
    queries = [v for t, v in loaded if t == TrendQuerySignal.get_name()]
    assert len(queries) == 2
    assert any(TrendQuery(json.loads(q)).matches("a post with alpha bravo in it") for q in queries)
    assert not any(TrendQuery(json.loads(q)).matches("the alphabet") for q in queries)


def test_threatexchange_cli_fetches_the_export(case, tmp_path):
    """What a peer actually runs: configure a local_file collaboration, fetch, print the dataset."""
    db, _ = case
    if db.dialect != "sqlite":
        pytest.skip("the threatexchange command line runs once, on SQLite")
    path = tmp_path / "shared.te"
    with open(path, "w", encoding="utf-8") as fh:
        write_signals(_signals(db), "te", fh)
    exe = shutil.which("threatexchange", path=str(Path(sys.executable).parent))
    assert exe, "the threatexchange CLI is installed with the package"
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    run = lambda *a: subprocess.run([exe, *a], capture_output=True, text=True, env=env, timeout=120)  # noqa: E731
    assert run("config", "collab", "edit", "local_file", "--create", "--filename", str(path), "peer").returncode == 0
    assert run("fetch").returncode == 0
    dataset = run("dataset", "-P", "--csv")
    rows = list(csv.DictReader(io.StringIO(dataset.stdout)))
    assert {r["collab"] for r in rows} == {"peer"}
    assert {r["signal_type"] for r in rows} == {"pdq", "video_md5", "video_sha256", "url", "trend_query"}


def test_csv_formats_round_trip_into_a_bank(case, tmp_path):
    db, _ = case
    signals = _signals(db)
    store = BankStore(db)
    for fmt, scheme in (("te-csv", "vics"), ("lantern", "none"), ("jsonl", "none"), ("te", "vics")):
        buf = io.StringIO()
        write_signals(signals, fmt, buf, collab="tripwire")
        bank = store.create_bank(f"peer-{fmt}", category_scheme=scheme)
        report = run_import(store, bank.name, read_signals(io.BytesIO(buf.getvalue().encode()), free_text_category=scheme == "none"))
        assert report.error_count == 0, report.errors
        entries = {(e.signal_type, e.value): e for e in store.iter_entries(bank.name)}
        expected = {(s.type, s.value) for s in signals if fmt in ("lantern", "jsonl") or s.type != "account"}
        assert set(entries) == expected, fmt
        md5 = next(e for (t, _), e in entries.items() if t == "md5")
        if fmt != "te":  # the bare te format carries no metadata
            assert any(t.startswith("confidence:") for t in md5.tags) and any(t.startswith("category:") for t in md5.tags)
        if scheme == "none":
            assert md5.category in ("ai_generated", "confirmed_abuse")


def test_trade_signals_are_consumed(case):
    from tripwire.trade.confirmed import Signal

    db, _ = case
    trade = [Signal("url", "https://pay.example.net/creator-1", "trade", 0.8, "tripwire posts scan (run-1)",
                    confirmed_by="analyst-7", confirmed_at="2026-11-01T10:00:00Z"),
             Signal("account", "exampleshare:acct-1", "trade", 0.7, "tripwire posts scan (run-1)", confirmed_by="analyst-7")]
    signals = collect_signals(db, case="c1", trade_signals=trade)
    url = next(s for s in signals if s.value == "https://pay.example.net/creator-1")
    assert url.category == "trade" and url.confidence == 0.8
    merged = next(s for s in signals if s.value == "exampleshare:acct-1")
    assert merged.category == "confirmed_abuse;trade" and merged.confidence == 0.9
    buf = io.StringIO()
    write_signals(signals, "lantern", buf)
    assert "analyst-7" not in buf.getvalue()  # reviewer names stay home
    with pytest.raises(ValueError):
        SharedSignal("md5", "x", "c", 1.5)


def test_signals_cli(case, tmp_path):
    db, _ = case
    if db.dialect != "sqlite":
        pytest.skip("the command line runs on SQLite here; the library tests above cover PostgreSQL")
    out = tmp_path / "lantern.csv"
    proc = tripwire("signals", "export", "--case", "c1", "--format", "lantern", "--out", str(out), "--db", db.url)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {"account", "md5", "url"} <= {r["signal_type"] for r in rows}
    proc = tripwire("signals", "import", str(out), "--bank", "lantern-peer", "--db", db.url)
    assert proc.returncode == 0, proc.stderr
    assert "kept (not matched against media)" in " ".join(proc.stderr.split())
    proc = tripwire("signals", "export", "--db", db.url)
    assert proc.returncode == 2

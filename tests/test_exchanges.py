"""Exchanges against fake servers that speak NCMEC's, ThreatExchange's and StopNCII's protocols (tests/fake_exchanges.py),
fetched by python-threatexchange's own clients — no network, no mocked client.

* A real ``tripwire scan`` of benign fixtures stores items; an NCMEC fetch (2,000 entries over 20 pages, then
  deletions) is killed with SIGKILL mid-fetch and resumed: every entry is in the bank exactly once, deletions
  are tombstones, every page is in the audit trail (which still verifies), and the stored items whose PDQ the
  source lists are queued for review. (bench/exchange_fetch.py runs the same with 100,000 entries over 200 pages.)
* A malformed page is recorded and skipped, throttling (HTTP 429) is waited out, the fetch completes.
* ThreatExchange: pages, incremental resume from the checkpoint, ``should_delete`` and "not harmful" opinions
  remove values; a value listed again is restored, a person's removal is not undone.
* StopNCII: pages, the client's own 429 retries, incremental resume from ``nextSetTimestamp``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_exchanges import NCMEC_PASSWORD, NCMEC_USER, TE_TOKEN, FakeNcmec, FakeThreatExchange, NcmecUpdate, TeUpdate
from helpers import read_jsonl, tripwire
from sqlalchemy import select

from tripwire.config import Config
from tripwire.store.db import open_db

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
A = FIXTURES / "camera/Canon_PowerShot_S40.jpg"   # listed by the source (its PDQ)
B = FIXTURES / "camera/gps/DSCN0010.jpg"           # listed by the source (its PDQ)
C = FIXTURES / "camera/Nikon_D70.jpg"              # never listed


def _pdq(rnd: random.Random) -> str:
    return "%064x" % rnd.getrandbits(256)


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "TRIPWIRE_ACTOR": "analyst-1",
            "TRIPWIRE_EXCHANGE_CREDENTIALS_NCMEC_TEST": f"{NCMEC_USER}:{NCMEC_PASSWORD}"}


def _run_ok(*args: str, env: dict) -> subprocess.CompletedProcess:
    proc = tripwire(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_ncmec_fetch_killed_mid_fetch_resumes_with_every_entry_once(db_url, tmp_path, env):
    from tripwire.banks.exchanges.models import Exchange, ExchangeRecord
    from tripwire.banks.models import BankEntry
    from tripwire.review.audit import verify
    from tripwire.review.models import AuditEvent, QueueEntry
    from tripwire.store.models import ItemRow

    folder = tmp_path / "drive"
    folder.mkdir()
    for src in (A, B, C):
        (folder / src.name).write_bytes(src.read_bytes())
    _run_ok("scan", str(folder), "--db", db_url, "--case", "drive-1", "--out", str(tmp_path / "out"), "--workers", "1",
            "-q", env=env)
    pdq = {Path(r["path"]).name: r["pdq"] for r in read_jsonl(tmp_path / "out/items.jsonl")}

    rnd = random.Random(14)
    t0 = int(time.time()) - 120
    listed = [_pdq(rnd) for _ in range(2000)]
    listed[234], listed[1345] = pdq[A.name], pdq[B.name]
    updates = [NcmecUpdate(t0, 40 + i % 3, f"image-{i}", fingerprints={"pdq": v, "md5": "%032x" % rnd.getrandbits(128)})
               for i, v in enumerate(listed)]
    deleted = list(range(0, 2000, 97))  # 21 entries withdrawn later (none of them A's or B's)
    updates += [NcmecUpdate(t0 + 30, 40 + i % 3, f"image-{i}", deleted=True) for i in deleted]
    with FakeNcmec(updates, page_size=100, delay=0.02) as server:
        _run_ok("exchange", "add", "NCMEC_TEST", "--api", "ncmec", "--set", "environment=NGO", "--base-url", server.url,
                "--db", db_url, env=env)
        proc = subprocess.Popen([sys.executable, "-m", "tripwire", "exchange", "fetch", "NCMEC_TEST", "--db", db_url],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        db = open_db(db_url)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:  # until about half the entries are committed
            with db.session() as s:
                if len(s.scalars(select(BankEntry.id)).all()) >= 900:
                    break
            time.sleep(0.01)
        assert proc.poll() is None, "the fetch ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

        with db.session() as s:
            ex = s.scalar(select(Exchange))
            stored = len(s.scalars(select(BankEntry.id)).all())
            killed_state = (ex.last_success, ex.rematch_entry_id, (ex.checkpoint or {}).get("paging_info"))
        # killed mid-fetch: some pages committed, the checkpoint points into the middle of the window
        assert killed_state[0] is None and killed_state[1] is not None and killed_state[2] is not None
        assert 0 < stored < 2000

        done = _run_ok("exchange", "fetch", "NCMEC_TEST", "--db", db_url, "--json", env=env)
    (run,) = json.loads(done.stdout)
    assert run["complete"] and run["error"] is None

    gone = {listed[i] for i in deleted}
    with db.session() as s:
        rows = list(s.execute(select(BankEntry.value, BankEntry.removed_at, BankEntry.removed_reason)))
        records = s.scalar(select(ExchangeRecord.id).order_by(ExchangeRecord.id.desc()).limit(1))
        held = {v for (v,) in s.execute(select(ExchangeRecord.value))}
        events = [e for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq)) if e.kind == "exchange_page"]
        chain = verify(s)
        items = {Path(r.path).name: r for r in s.scalars(select(ItemRow))}
        queue = {q.item_id: q for q in s.scalars(select(QueueEntry))}
    # every entry exactly once: one bank row per listed value, each added by exactly one committed page
    assert len(rows) == len({v for v, _, _ in rows}) == 2000
    assert {v for v, removed, _ in rows if removed is None} == set(listed) - gone
    assert {v for v, removed, why in rows if removed is not None and "deleted at source" in (why or "")} == gone
    assert held == set(listed) - gone and records is not None
    added = [v for e in events for v in e.data["added_values"]]
    assert sum(e.data["added"] for e in events) == 2000 == len(added) == len(set(added))
    assert sum(e.data["removed"] for e in events) == len(gone)
    assert chain.ok, chain.problem
    # the stored items the source lists are queued for review (the re-match covers the killed run's pages too)
    for name in (A.name, B.name):
        item = items[name]
        assert [m["bank"] for m in item.stage_data["matches"]] == ["NCMEC_TEST"]
        assert queue[item.id].state == "open"
        assert "newly matches bank NCMEC_TEST" in item.stage_data["rematch"]["reason"]
    assert items[C.name].stage_data["matches"] == [] and items[C.name].id not in queue
    from tripwire.banks.exchanges.store import ExchangeStore

    shown = ExchangeStore(db).get("NCMEC_TEST").as_dict()  # what `tripwire exchange list --json` prints
    assert shown["last_success"] is True and shown["records"] == 2000 - len(gone) and not shown["rematch_pending"]
    db.dispose()


def test_malformed_page_is_recorded_and_skipped_and_throttling_waited_out(tmp_path, monkeypatch):
    from tripwire.banks.exchanges.store import ExchangeStore
    from tripwire.banks.store import BankStore
    from tripwire.pipeline.exchanges import fetch_and_rematch
    from tripwire.review.models import AuditEvent

    monkeypatch.setenv("TRIPWIRE_EXCHANGE_CREDENTIALS_NCMEC_BAD", f"{NCMEC_USER}:{NCMEC_PASSWORD}")
    rnd = random.Random(7)
    t0 = int(time.time()) - 120
    values = [_pdq(rnd) for _ in range(1000)]
    updates = [NcmecUpdate(t0, 7, f"e{i}", fingerprints={"pdq": v}) for i, v in enumerate(values)]
    config = Config(sections={"exchanges": {"backoff": 0.01, "max_backoff": 0.05}})
    db = open_db(f"sqlite:///{tmp_path / 'x.db'}")
    with FakeNcmec(updates, page_size=100) as server:
        server.malformed.add("301")  # the 4th page of the window can never be parsed
        server.throttle(6)           # more 429s than the client's own 4 retries: tripwire backs off
        ExchangeStore(db).create("NCMEC_BAD", "ncmec", settings={"environment": "NGO"}, base_url=server.url)
        run = fetch_and_rematch(db, config, "NCMEC_BAD", actor="tester")
        assert server.throttled == 6
    report = run.fetch
    assert report.complete and report.skipped_pages == 1 and report.retries >= 1, report.summary()
    active = {e.value for e in BankStore(db).iter_entries("NCMEC_BAD")}
    assert active == set(values[:300] + values[400:])  # exactly the skipped page's 100 entries are missing
    info = ExchangeStore(db).get("NCMEC_BAD")
    assert info.pages_skipped == 1 and info.last_success is True
    with db.session() as s:
        errors = [e for e in s.scalars(select(AuditEvent)) if e.kind == "exchange_error"]
    assert len(errors) == 1 and errors[0].data["skipped"] == "entries 301-400 of the window"
    assert "ParseError" in errors[0].data["error"] or "parse" in errors[0].data["error"].lower()
    db.dispose()


def test_threatexchange_pages_resume_deletes_and_restores(tmp_path, monkeypatch):
    from tripwire.banks.exchanges.store import ExchangeStore
    from tripwire.banks.store import BankStore
    from tripwire.pipeline.exchanges import fetch_and_rematch

    monkeypatch.setenv("TRIPWIRE_EXCHANGE_CREDENTIALS_TE", TE_TOKEN)
    rnd = random.Random(3)
    values = [_pdq(rnd) for _ in range(1000)]
    updates = [TeUpdate(1_700_000_000 + i, v, tags=["tag-a"]) for i, v in enumerate(values)]
    config = Config(sections={"exchanges": {"backoff": 0.01}})
    db = open_db(f"sqlite:///{tmp_path / 'te.db'}")
    banks = BankStore(db)
    with FakeThreatExchange(updates, privacy_group=555) as server:
        ExchangeStore(db).create("TE", "fb_threatexchange", settings={"privacy_group": 555}, base_url=server.url)
        # a token the source rejects: the fetch stops at once, recorded, nothing skipped
        monkeypatch.setenv("TRIPWIRE_EXCHANGE_CREDENTIALS_TE", "9999999999|" + "z" * 24)
        refused = fetch_and_rematch(db, config, "TE").fetch
        assert not refused.complete and "refused" in refused.error and refused.skipped_pages == 0
        assert ExchangeStore(db).get("TE").last_success is False and ExchangeStore(db).get("TE").checkpoint is None
        monkeypatch.setenv("TRIPWIRE_EXCHANGE_CREDENTIALS_TE", TE_TOKEN)
        server.throttle(2)  # the ThreatExchange client does not retry: tripwire waits and resumes
        first = fetch_and_rematch(db, config, "TE").fetch
        assert first.complete and first.added == 1000 and first.retries == 2, first.summary()
        assert first.pages == 10  # the client asks for 100 per page
        assert ExchangeStore(db).get("TE").checkpoint_time() == 1_700_000_999
        # a person removes one value as a false positive; the source then deletes others, marks one "not
        # harmful", lists one of its deletions again, and adds new ones
        banks.remove_entries("TE", values=[values[5]], reason="false positive (analyst)")
        server.add([TeUpdate(1_700_001_000 + i, values[i], deleted=True) for i in range(10, 20)])
        server.add([TeUpdate(1_700_001_050, values[20], status="NON_MALICIOUS")])
        server.add([TeUpdate(1_700_001_060, values[5])])
        fresh = [_pdq(rnd) for _ in range(50)]
        server.add([TeUpdate(1_700_001_100 + i, v) for i, v in enumerate(fresh)])
        served = server.served
        second = fetch_and_rematch(db, config, "TE").fetch
        assert second.complete and second.added == 50 and second.removed == 11, second.summary()
        assert server.served - served == 1  # incremental: only the updates since the checkpoint
        server.add([TeUpdate(1_700_002_000, values[12])])  # a deleted value listed again comes back
        third = fetch_and_rematch(db, config, "TE").fetch
        assert third.restored == 1
    rows = {e.value: e for e in banks.iter_entries("TE", include_removed=True)}
    active = {v for v, e in rows.items() if e.removed_at is None}
    assert active == (set(values) - {values[5]} - {values[i] for i in range(10, 21) if i != 12}) | set(fresh)
    assert rows[values[5]].removed_reason == "false positive (analyst)"  # a person's removal stays
    assert rows[values[0]].tags == ("tag-a",) and rows[values[0]].source_id == json.dumps(["HASH_PDQ", values[0]])
    db.dispose()


def test_stopncii_pages_and_resume(tmp_path, monkeypatch):
    from fake_exchanges import STOPNCII_KEYS, FakeStopNcii, StopNciiRecord

    from tripwire.banks.exchanges.store import ExchangeStore
    from tripwire.banks.store import BankStore
    from tripwire.pipeline.exchanges import fetch_and_rematch

    monkeypatch.setenv("TRIPWIRE_EXCHANGE_CREDENTIALS_SNCII", ",".join(STOPNCII_KEYS))
    rnd = random.Random(5)
    values = [_pdq(rnd) for _ in range(250)]
    db = open_db(f"sqlite:///{tmp_path / 's.db'}")
    with FakeStopNcii([StopNciiRecord(1_700_000_000 + i, v, feedback=["Blocked"]) for i, v in enumerate(values)],
                      page_size=100) as server:
        ExchangeStore(db).create("SNCII", "stop_ncii", base_url=server.url)
        server.throttle(2)  # the StopNCII client retries 429 itself (4 times)
        first = fetch_and_rematch(db, Config(), "SNCII").fetch
        assert first.complete and first.pages == 3 and first.added == 250 and first.retries == 0, first.summary()
        more = [_pdq(rnd) for _ in range(20)]
        server.add([StopNciiRecord(1_700_001_000 + i, v) for i, v in enumerate(more)])
        served = server.entries_served
        second = fetch_and_rematch(db, Config(), "SNCII").fetch
        assert second.complete and second.added == 20
        assert server.entries_served - served <= 21  # from the checkpoint, not from the start
    assert {e.value for e in BankStore(db).iter_entries("SNCII")} == set(values) | set(more)
    db.dispose()


def test_exchange_commands(tmp_path, monkeypatch):
    """The command group on a list-file exchange: apis, add (settings validated), list, disable/enable (``fetch
    --all`` skips a disabled one), fetch with its re-match line, reset, remove (the bank stays)."""
    from typer.testing import CliRunner

    from tripwire.banks.store import BankStore
    from tripwire.cli import app

    def cli(*args: str):
        return CliRunner().invoke(app, [*args, "--db", db])

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("TRIPWIRE_ACTOR", "analyst-2")
    listing = tmp_path / "partner.txt"
    listing.write_text("pdq " + "d" * 64 + "\nvideo_md5 " + "c" * 32 + "\n", encoding="utf-8")
    apis = json.loads(CliRunner().invoke(app, ["exchange", "apis", "--json"]).stdout)
    assert set(apis) == {"fb_threatexchange", "ncmec", "stop_ncii", "local_file"} and apis["ncmec"]["credentials"]
    assert cli("exchange", "add", "P", "--api", "nope").exit_code == 2
    assert cli("exchange", "add", "P", "--api", "fb_threatexchange", "--set", "privacy_group=abc").exit_code == 2
    assert cli("exchange", "add", "PARTNER", "--api", "local_file", "--set", f"filename={listing}").exit_code == 0
    assert cli("exchange", "disable", "PARTNER").exit_code == 0
    skipped = cli("exchange", "fetch", "--all", "--json")
    assert skipped.exit_code == 0 and json.loads(skipped.stdout) == []
    assert cli("exchange", "enable", "PARTNER").exit_code == 0
    fetched = cli("exchange", "fetch", "--all")
    assert fetched.exit_code == 0, fetched.output
    assert "PARTNER (local_file): 1 pages, 2 records: 2 entries added" in fetched.output
    assert "stored items newly match" in fetched.output
    (shown,) = json.loads(cli("exchange", "list", "--json").stdout)
    assert shown["records"] == 2 and shown["last_success"] is True and shown["bank"] == "PARTNER"
    assert cli("exchange", "fetch", "NOPE").exit_code == 2
    assert cli("exchange", "reset", "PARTNER").exit_code == 0
    assert cli("exchange", "remove", "PARTNER").exit_code == 0
    assert json.loads(cli("exchange", "list", "--json").stdout) == []
    assert len(list(BankStore(open_db(db)).iter_entries("PARTNER"))) == 2

"""An exchange fetch of 100,000 entries over 200 pages from a fake NCMEC server, killed with SIGKILL mid-fetch and
resumed: every entry exactly once, deletions applied, the stored items the source lists queued (issue 14).

    python bench/exchange_fetch.py                         # 100k entries, 200 pages of 500; ~3-6 minutes
    python bench/exchange_fetch.py --entries 5000 --page 100

What runs: tests/fake_exchanges.FakeNcmec (NCMEC's v2 ``/entries`` XML protocol, paging ``next`` URLs) on
localhost; ``tripwire scan`` of three benign fixtures into a SQLite case; ``tripwire exchange add ... --api ncmec
--base-url`` and ``tripwire exchange fetch`` as subprocesses (python-threatexchange's own NCMEC client and
``fetch_iter``). All entries carry one timestamp, so NCMEC's window probing settles on one window and the data
arrive in exactly ``entries / page`` pages; 1% of them are deleted at a later timestamp; two are the PDQ hashes of
scanned fixtures. The first fetch is SIGKILLed once about ``--kill-at`` of the entries are committed; the second
resumes from the committed checkpoint.

Checks (the script exits 1 if one fails): bank rows = distinct values delivered (each once), the active ones =
delivered minus deleted, the deleted ones tombstoned; the ``added`` counts of all ``exchange_page`` audit events
sum to the number of values and no value is listed twice; the audit chain verifies; both listed fixtures queued.

Peer, measured in the same run: ``tripwire bank import`` of the same values from a one-hash-per-line file into
another bank (the file path into the same ``BankStore``), rate compared with the fetch's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from fake_exchanges import NCMEC_PASSWORD, NCMEC_USER, FakeNcmec, NcmecUpdate  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from tripwire.banks.exchanges.models import Exchange  # noqa: E402
from tripwire.banks.models import BankEntry  # noqa: E402
from tripwire.review.audit import verify  # noqa: E402
from tripwire.review.models import AuditEvent, QueueEntry  # noqa: E402
from tripwire.store.db import open_db  # noqa: E402
from tripwire.store.models import ItemRow  # noqa: E402

LISTED = ["camera/Canon_PowerShot_S40.jpg", "camera/gps/DSCN0010.jpg"]


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "tripwire", *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"tripwire {' '.join(args)} failed: {proc.stderr}")
    return proc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--page", type=int, default=500)
    ap.add_argument("--kill-at", type=float, default=0.5, help="fraction of entries committed before the SIGKILL")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tw-exbench-"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "XDG_CACHE_HOME": str(work / "cache"), "TRIPWIRE_ACTOR": "bench",
           "TRIPWIRE_EXCHANGE_CREDENTIALS_NCMEC_BENCH": f"{NCMEC_USER}:{NCMEC_PASSWORD}"}
    db_url = f"sqlite:///{work / 'case.db'}"
    try:
        drive = work / "drive"
        drive.mkdir()
        for rel in LISTED + ["camera/Nikon_D70.jpg"]:
            shutil.copy(FIXTURES / rel, drive / Path(rel).name)
        run(["scan", str(drive), "--db", db_url, "--case", "drive-1", "--out", str(work / "out"), "--workers", "1", "-q"], env)
        pdq = {Path(json.loads(line)["path"]).name: json.loads(line)["pdq"]
               for line in (work / "out/items.jsonl").read_text().splitlines() if line.strip()}

        rnd = random.Random(14)
        t0 = int(time.time()) - 300
        values = ["%064x" % rnd.getrandbits(256) for _ in range(args.entries)]
        values[args.entries // 3] = pdq[Path(LISTED[0]).name]
        values[2 * args.entries // 3] = pdq[Path(LISTED[1]).name]
        updates = [NcmecUpdate(t0, 100 + i % 7, f"image-{i}", fingerprints={"pdq": v}) for i, v in enumerate(values)]
        deleted = [i for i in range(0, args.entries, 100) if values[i] not in pdq.values()]
        updates += [NcmecUpdate(t0 + 60, 100 + i % 7, f"image-{i}", deleted=True) for i in deleted]
        db = open_db(db_url)
        with FakeNcmec(updates, page_size=args.page) as server:
            run(["exchange", "add", "NCMEC_BENCH", "--api", "ncmec", "--set", "environment=NGO", "--base-url", server.url,
                 "--db", db_url], env)
            started = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "tripwire", "exchange", "fetch", "NCMEC_BENCH", "--db", db_url, "-q"],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            target = int(args.entries * args.kill_at)
            while proc.poll() is None:
                with db.session() as s:
                    if (s.scalar(select(func.count()).select_from(BankEntry)) or 0) >= target:
                        break
                time.sleep(0.05)
            if proc.poll() is not None:
                sys.exit("the fetch finished before it could be killed: raise --entries or lower --kill-at")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_after = time.monotonic() - started
            with db.session() as s:
                at_kill = s.scalar(select(func.count()).select_from(BankEntry)) or 0
                ex = s.scalar(select(Exchange))
                pages_at_kill = ex.pages
            started2 = time.monotonic()
            done = run(["exchange", "fetch", "NCMEC_BENCH", "--db", db_url, "--json"], env)
            resumed = time.monotonic() - started2
            requests = server.requests
        (report,) = json.loads(done.stdout)

        # the peer: the same values through `bank import` (one hash per line)
        listing = work / "values.txt"
        listing.write_text("".join(f"{v}\n" for v in values), encoding="utf-8")
        run(["bank", "create", "import-peer", "--db", db_url], env)
        t = time.monotonic()
        run(["bank", "import", "import-peer", str(listing), "--signal-type", "pdq", "--db", db_url, "-q"], env)
        peer = time.monotonic() - t

        gone = {values[i] for i in deleted}
        with db.session() as s:
            bank_id = s.scalar(select(Exchange.bank_id))
            rows = list(s.execute(select(BankEntry.value, BankEntry.removed_at).where(BankEntry.bank_id == bank_id)))
            events = [e.data for e in s.scalars(select(AuditEvent).where(AuditEvent.kind == "exchange_page"))]
            chain = verify(s)
            queued = {Path(p).name for (p,) in s.execute(select(ItemRow.path).join(QueueEntry, QueueEntry.item_id == ItemRow.id))}
        added = [v for e in events for v in e["added_values"]]
        checks = {
            "one bank row per value": len(rows) == len({v for v, _ in rows}) == len(set(values)),
            "active = delivered - deleted": {v for v, r in rows if r is None} == set(values) - gone,
            "deleted are tombstones": {v for v, r in rows if r is not None} == gone,
            "each value added by exactly one page": sum(e["added"] for e in events) == len(added) == len(set(added)) == len(set(values)),
            "audit chain verifies": chain.ok,
            "listed fixtures queued": queued == {Path(p).name for p in LISTED},
            "resumed fetch complete": report["complete"],
        }
        total = killed_after + resumed
        print(f"entries {args.entries}, page {args.page}, deleted {len(gone)}; server answered {requests} requests")
        print(f"killed after {killed_after:.1f} s with {at_kill} entries in {pages_at_kill} committed pages; "
              f"resumed fetch {resumed:.1f} s (pages {report['pages']}, added {report['added']}, removed {report['removed']}); "
              f"re-match: {report['rematch']['summary'] if report['rematch'] else None}")
        print(f"fetch total {total:.1f} s = {args.entries / total:,.0f} entries/s; peer `bank import` of the same values "
              f"{peer:.1f} s = {args.entries / peer:,.0f} entries/s (fetch/import time ratio {total / peer:.2f})")
        for name, ok in checks.items():
            print(f"  {'ok ' if ok else 'FAIL'} {name}")
        if not all(checks.values()):
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

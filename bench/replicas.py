"""Two ``tripwire serve`` replicas on one PostgreSQL: what sharing costs and what it buys (docs/replicas.md).

Each round starts a pair of real replicas (separate processes and ports, one fresh database) in each of two
modes, interleaved:

* **shared** — the defaults on PostgreSQL: rate-limit buckets reconciled through the database every 0.1 s
  (``[service] rate_sync_s``), bank changes announced by LISTEN/NOTIFY (``bank_notify``);
* **local** — the peer: ``rate_sync_s = 0`` (buckets per process, as on SQLite) and ``bank_notify = false``
  (the once-a-second poll of the bank change log alone).

and measures, per mode:

1. **propagation**: an MD5 entry added through replica A (alternately B), then looked up through the other every
   5 ms: seconds from A's answer to B's first match (median and max of ``--adds``);
2. **look-up cost**: ``POST /v1/lookup`` with one hash per request (so per-request costs such as the rate
   limiter dominate) from two kept-alive clients against replica A for ``--seconds``: requests per second of
   replica A's CPU time (its process's user + system time);
3. **limiter**: microseconds per ``take`` (what every request pays) of a shared and a process-local limiter,
   200,000 calls each, in the bench process;
4. **rate limit**: a key with 2 requests/s (burst 4) sent as fast as one client can through A and B alternately
   for ``--seconds``: requests admitted in total, against the bound (docs/replicas.md) and against what
   process-local buckets admit.

Run from the repository root with a PostgreSQL server whose user may create databases:
``TRIPWIRE_TEST_PG_URL=postgresql://tripwire:tripwire@127.0.0.1:5432/tripwire_test python bench/replicas.py
[--rounds 3] [--seconds 3] [--adds 10]``. Prints a JSON summary (medians over rounds) as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))
# the replicas are `python -m tripwire serve` subprocesses: they run this tree's code too
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from service_helpers import ServeProcess  # noqa: E402

from tripwire.banks.store import BankStore  # noqa: E402
from tripwire.service.auth import create_key  # noqa: E402
from tripwire.service.ratelimit import RateLimiter, SharedRateLimiter  # noqa: E402
from tripwire.store.db import open_db  # noqa: E402

BANK = "bench-replicas"
RATE, BURST = 2.0, 4.0
MODES = {
    "shared": {},
    "local": {"TRIPWIRE_SERVICE_RATE_SYNC_S": "0", "TRIPWIRE_SERVICE_BANK_NOTIFY": "false"},
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def propagation(a: ServeProcess, b: ServeProcess, admin: str, adds: int) -> list[float]:
    out = []
    h = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(headers=h, timeout=30) as c:
        for n in range(adds):
            writer, reader = (a, b) if n % 2 == 0 else (b, a)
            value = secrets.token_hex(16)
            r = c.post(f"{writer.base}/v1/banks/{BANK}/entries", json={"entries": [{"signal_type": "md5", "value": value}]})
            r.raise_for_status()
            done = time.monotonic()
            while not c.post(f"{reader.base}/v1/lookup", json={"hashes": [{"signal_type": "md5", "value": value}]}).json()["matched"]:
                time.sleep(0.005)
            out.append(time.monotonic() - done)
    return out


def lookup_cost(a: ServeProcess, admin: str, seconds: float) -> float:
    """Requests per CPU-second of replica A (one hash per request)."""
    count = [0, 0]
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        with httpx.Client(base_url=a.base, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as c:
            while time.monotonic() < stop:
                r = c.post("/v1/lookup", json={"hashes": [{"signal_type": "md5", "value": secrets.token_hex(16)}]})
                assert r.status_code == 200, r.text
                count[n] += 1

    cpu0 = cpu_seconds(a.proc.pid)
    threads = [threading.Thread(target=client, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / max(1e-9, cpu_seconds(a.proc.pid) - cpu0)


def hammer(a: ServeProcess, b: ServeProcess, key: str, seconds: float) -> tuple[int, int, float]:
    """(admitted, sent, seconds) for the limited key through both replicas."""
    clients = [httpx.Client(base_url=r.base, headers={"Authorization": f"Bearer {key}"}, timeout=30) for r in (a, b)]
    admitted = sent = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        r = clients[sent % 2].get("/m/lookup", params={"signal": secrets.token_hex(16), "signal_type": "md5"})
        admitted += r.status_code == 200
        sent += 1
    elapsed = time.monotonic() - t0
    for c in clients:
        c.close()
    return admitted, sent, elapsed


def take_cost(url: str, n: int = 200_000) -> dict[str, float]:
    """Microseconds per ``take`` of the request path's limiter: shared (PostgreSQL) against process-local."""
    db = open_db(url)
    try:
        out = {}
        for name, limiter in (("local", RateLimiter()), ("shared", SharedRateLimiter(db))):
            t0 = time.perf_counter()
            for _ in range(n):
                limiter.take("bench-key", 1e9)
            out[f"take_us_{name}"] = (time.perf_counter() - t0) / n * 1e6
        return out
    finally:
        db.dispose()


def run_mode(mode: str, admin_url: str, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    name = f"tw_bench_{secrets.token_hex(5)}"
    admin_engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        db = open_db(url)
        BankStore(db).create_bank(BANK, category_scheme="none")
        with db.session() as s:
            admin = create_key(s, "bench-admin", "admin", "bench", rate_per_s=1_000_000).key
            limited = create_key(s, "bench-limited", "submitter", "bench", rate_per_s=RATE).key
        db.dispose()
        micro = take_cost(url)
        pair = [ServeProcess(url, folder / f"{mode}-{r}.log", env={
            **MODES[mode], "TRIPWIRE_REPLICA_ID": f"{mode}-{r}",
            "TRIPWIRE_BANKS_INDEX_PATH": str(folder / f"index-{mode}-{r}-{name}")}) for r in "ab"]
        try:
            for replica in pair:
                replica.wait_ready(admin)
            a, b = pair
            delays = propagation(a, b, admin, args.adds)
            per_cpu = lookup_cost(a, admin, args.seconds)
            admitted, sent, elapsed = hammer(a, b, limited, args.seconds)
        finally:
            for replica in pair:
                replica.stop()
    finally:
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()
    return {**micro, "propagation_median_s": statistics.median(delays), "propagation_max_s": max(delays),
            "lookups_per_cpu_s": per_cpu, "admitted": admitted, "sent": sent, "hammer_s": elapsed,
            "bound": RATE * elapsed + 2 * BURST + 2 * RATE * (0.1 + 0.05),
            "local_expected": 2 * (BURST + RATE * elapsed)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--adds", type=int, default=10)
    args = parser.parse_args()
    pg = os.environ.get("TRIPWIRE_TEST_PG_URL")
    if not pg:
        sys.exit("set TRIPWIRE_TEST_PG_URL to a PostgreSQL URL whose user may create databases")
    admin_url = pg.replace("postgresql://", "postgresql+psycopg://", 1)
    results: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    with TemporaryDirectory(prefix="tw-bench-replicas-") as tmp:
        for n in range(args.rounds):
            for mode in (MODES if n % 2 == 0 else reversed(list(MODES))):  # interleaved, alternating order
                r = run_mode(mode, admin_url, Path(tmp), args)
                results[mode].append(r)
                print(f"round {n + 1} {mode}: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()), flush=True)
    summary = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in results.items()}
    summary["ratio_lookups_per_cpu_shared_vs_local"] = (summary["shared"]["lookups_per_cpu_s"]
                                                       / summary["local"]["lookups_per_cpu_s"])
    takes = [r for rs in results.values() for r in rs]
    summary["take_us"] = {k: statistics.median(r[f"take_us_{k}"] for r in takes) for k in ("local", "shared")}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

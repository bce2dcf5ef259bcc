"""Load and crash test of ``tripwire serve`` on loopback, with a 1M-hash bank.

1. **Bank**: N random entries (half PDQ, half MD5; seeded) bulk-loaded with the banks code
   (``BankStore.add_entries``) into a SQLite case database — cached in bench/out/ so later runs only copy it.
2. **Load**: the real ``tripwire serve`` (a subprocess) and concurrent clients on 127.0.0.1 for a bounded
   time and request count: ``/v1/scan`` clients upload small synthetic JPEGs (the full pipeline: digests,
   PDQ + 8 variants, provenance, matching, policy, storage), ``/v1/lookup`` clients send batches of hashes
   (10% known, checked to match). Reported: requests/s, requests per server CPU-second (= per core),
   p50/p99 latency, errors (non-2xx or a wrong answer).
3. **Crash**: writers record decisions and bank additions; the server is SIGKILLed mid-load, restarted on
   the same database, and every change the server had acknowledged with a 2xx must be there (decisions by
   id, entries by lookup), with the audit chain intact.

Run from the repository root: ``python bench/service.py`` (defaults: 1,000,000 hashes, 3 x 10 s of load, ~3 min
the first time, ~1.5 min with the cached bank). Exit status 1 if any request failed or any acknowledged
change was lost. The client threads share the machine with the server: on a small box they take CPU from
it, which is why the per-CPU-second figure is the one to compare.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from proctree import cpu_seconds, process_tree, stop_group  # noqa: E402

CACHE = REPO / "bench" / "out"
SEED = 20261125


# -- data ---------------------------------------------------------------------------------------------------

def bank_values(n: int, seed: int = SEED, pdq_only: bool = False):
    """The bank's entries, reproducibly: (signal_type, value) with PDQ on odd rows, MD5 on even rows (or PDQ on
    every row: the side-by-side with HMA uses a PDQ bank, as HMA deployments do)."""
    rng = random.Random(seed)
    for i in range(n):
        if i % 2 or pdq_only:
            yield "pdq", f"{rng.getrandbits(256):064x}"
        else:
            yield "md5", f"{rng.getrandbits(128):032x}"


def build_bank(db_url: str, n: int, pdq_only: bool = False) -> float:
    """Bulk-load the bank with the banks code into a SQLite file or a PostgreSQL database; returns seconds."""
    from tripwire.banks.store import BankStore
    from tripwire.store.db import open_db

    sqlite = not db_url.startswith("postgresql://")
    if sqlite:
        for suffix in ("", "-wal", "-shm"):
            Path(db_url + suffix).unlink(missing_ok=True)
    started = time.monotonic()
    db = open_db(db_url)
    store = BankStore(db)
    store.create_bank("bench-hotline", source="synthetic", category_scheme="vics")
    rows = ({"signal_type": t, "value": v, "category": "1"} for t, v in bank_values(n, pdq_only=pdq_only))
    store.add_entries("bench-hotline", rows, batch_size=20_000)
    if sqlite:
        with db.engine.connect() as conn:  # fold the WAL in so that the cached file is complete on its own
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return time.monotonic() - started


def synth_jpeg(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    """A distinct benign picture (gradient and shapes) per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    c1, c2, c3 = rng.random((3, 3))
    arr = np.clip((x * c1 + y * c2 + (1 - x) * (1 - y) * c3) * 200 + rng.normal(0, 6, (h, w, 3)), 0, 255)
    img = Image.fromarray(arr.astype("uint8"), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - w // 8)), int(rng.integers(0, h - h // 8))
        draw.ellipse((x0, y0, x0 + int(rng.integers(8, w // 2)), y0 + int(rng.integers(8, h // 2))),
                     fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


# -- server -------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, db: Path | str, workdir: Path, workers: int) -> None:
        self.db, self.workdir, self.workers = db, workdir, workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = open(workdir / "server.log", "a")

    def start(self, key: str, timeout: float = 600) -> float:
        env = {**os.environ, "TRIPWIRE_BANKS_INDEX_PATH": str(self.workdir / "pdqindex"),
               "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "tripwire", "serve", "--db", str(self.db), "--port",
                                      str(self.port), "--workers", str(self.workers), "--log-level", "warning"],
                                     stdout=self.log, stderr=self.log, env=env, start_new_session=True)
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited ({self.proc.returncode}); see {self.workdir / 'server.log'}")
            try:
                r = httpx.get(f"{self.base}/readyz", headers={"Authorization": f"Bearer {key}"}, timeout=5)
                if r.status_code == 200 and r.json().get("ready"):
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("the server did not become ready")

    def pids(self) -> list[int]:
        """The server process and its workers (for CPU accounting)."""
        if self.proc is None:
            return []
        return process_tree(self.proc.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pids())

    def rss_mib(self) -> float:
        """Resident memory of the server and its workers (MiB)."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def kill(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None


# -- load ---------------------------------------------------------------------------------------------------

@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    item_ids: list[int] = field(default_factory=list)
    hashes: int = 0


def run_load(server: Server, key: str, args, hits: list[tuple[str, str]], images: list[bytes],
             scan_clients: int, lookup_clients: int) -> dict[str, Stats]:
    stats = {"scan": Stats(), "lookup": Stats()}
    lock = threading.Lock()
    deadline = time.monotonic() + args.duration
    budget = {"scan": args.max_requests, "lookup": args.max_requests}

    def take(kind: str) -> bool:
        with lock:
            if budget[kind] <= 0:
                return False
            budget[kind] -= 1
            return True

    def scan_client(n: int) -> None:
        client = httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {key}"}, timeout=120)
        i = n
        while time.monotonic() < deadline and take("scan"):
            img = images[i % len(images)]
            i += args.scan_clients
            ctx = json.dumps({"platform": "bench", "post_id": f"p-{n}-{i}"})
            t = time.perf_counter()
            try:
                r = client.post("/v1/scan", files=[("files", (f"img-{i}.jpg", img, "image/jpeg"))], data={"context": ctx})
                ok = r.status_code == 200
                body = r.json() if ok else None
                if ok and not body["files"][0]["records"][0].get("pdq"):
                    ok = False
            except httpx.HTTPError as exc:
                ok, body = False, None
                r = exc  # type: ignore[assignment]
            dt = time.perf_counter() - t
            with lock:
                stats["scan"].latencies.append(dt)
                if ok:
                    stats["scan"].item_ids.append(body["files"][0]["item_id"])
                else:
                    stats["scan"].errors.append(str(getattr(r, "status_code", r))[:200])
        client.close()

    def lookup_client(n: int) -> None:
        rng = random.Random(SEED + n)
        client = httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {key}"}, timeout=120)
        while time.monotonic() < deadline and take("lookup"):
            batch, expected = [], []
            for _ in range(args.lookup_batch):
                if rng.random() < 0.1:
                    t_, v = hits[rng.randrange(len(hits))]
                    expected.append(True)
                elif rng.random() < 0.5:
                    t_, v = "pdq", f"{rng.getrandbits(256):064x}"
                    expected.append(False)
                else:
                    t_, v = "md5", f"{rng.getrandbits(128):032x}"
                    expected.append(False)
                batch.append({"signal_type": t_, "value": v})
            t = time.perf_counter()
            try:
                r = client.post("/v1/lookup", json={"hashes": batch})
                ok = r.status_code == 200
                if ok:
                    got = [bool(x["matches"]) for x in r.json()["results"]]
                    # a known hash must match; a random one matches only by (astronomically rare) chance
                    ok = all(g for g, e in zip(got, expected) if e) and len(got) == len(batch)
                err = "" if ok else f"{r.status_code} or wrong answer"
            except httpx.HTTPError as exc:
                ok, err = False, str(exc)
            dt = time.perf_counter() - t
            with lock:
                stats["lookup"].latencies.append(dt)
                stats["lookup"].hashes += len(batch)
                if not ok:
                    stats["lookup"].errors.append(err[:200])
        client.close()

    threads = [threading.Thread(target=scan_client, args=(n,)) for n in range(scan_clients)]
    threads += [threading.Thread(target=lookup_client, args=(n,)) for n in range(lookup_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats


def raw_queries(pdq_hits: list[str], n: int, seed: int) -> list[tuple[str, int | None]]:
    """``n`` PDQ queries, the same for every server: 10% near-duplicates of bank entries (0-12 bits flipped; the
    answer must be that entry at exactly that distance), the rest random codes (the answer must be empty)."""
    rng = random.Random(f"raw-queries-{seed}")  # a stream of its own: a seed shared with the bank would replay its codes
    out: list[tuple[str, int | None]] = []
    for _ in range(n):
        if rng.random() < 0.1:
            flips = rng.randrange(13)
            code = int(pdq_hits[rng.randrange(len(pdq_hits))], 16)
            for bit in rng.sample(range(256), flips):
                code ^= 1 << bit
            out.append((f"{code:064x}", flips))
        else:
            out.append((f"{rng.getrandbits(256):064x}", None))
    return out


def run_raw_lookups(port: int, headers: dict[str, str], args, queries: list[tuple[str, int | None]],
                    keep_alive: bool) -> Stats:
    """HMA's ``GET /m/raw_lookup?include_distance=true`` from ``args.raw_clients`` connections, one PDQ per request
    (``queries``, each checked: a near-duplicate must come back at its planted distance, a random code empty),
    each connection kept alive or a new connection per request."""
    import http.client

    stats = Stats()
    lock = threading.Lock()
    deadline = time.monotonic() + args.duration
    budget = [min(args.max_requests, len(queries))]
    next_query = [0]

    def client(n: int) -> None:
        conn: http.client.HTTPConnection | None = None
        while time.monotonic() < deadline:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
                value, expected = queries[next_query[0]]
                next_query[0] += 1
            t = time.perf_counter()
            err = ""
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", f"/m/raw_lookup?signal_type=pdq&include_distance=true&signal={value}",
                             headers=headers if keep_alive else {**headers, "Connection": "close"})
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    err = f"{r.status}"
                else:
                    distances = sorted(int(m["distance"]) for m in json.loads(body)["matches"])
                    if distances != ([] if expected is None else [expected]):
                        err = f"wrong answer: {distances} for expected {expected}"
                if not keep_alive:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                err = str(exc)
                if conn is not None:
                    conn.close()
                conn = None
            dt = time.perf_counter() - t
            with lock:
                stats.latencies.append(dt)
                if err:
                    stats.errors.append(err[:200])
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.raw_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


# -- crash ---------------------------------------------------------------------------------------------------

def crash_test(server: Server, admin: str, reviewer: str, args, item_ids: list[int]) -> dict:
    h_admin = {"Authorization": f"Bearer {admin}"}
    h_rev = {"Authorization": f"Bearer {reviewer}"}
    httpx.post(f"{server.base}/v1/banks", headers=h_admin, json={"name": "crash-bank", "category_scheme": "none"}, timeout=60)
    acked_entries: list[str] = []
    acked_decisions: list[tuple[int, int, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def bank_writer(n: int) -> None:
        rng = random.Random(SEED * 7 + n)
        client = httpx.Client(base_url=server.base, headers=h_admin, timeout=30)
        while not stop.is_set():
            value = f"{rng.getrandbits(128):032x}"
            try:
                r = client.post("/v1/banks/crash-bank/entries", json={"entries": [{"signal_type": "md5", "value": value}]})
            except httpx.HTTPError:
                break  # the server is gone: whatever was not acknowledged does not count
            if r.status_code == 200:
                with lock:
                    acked_entries.append(value)
        client.close()

    def decision_writer(n: int) -> None:
        client = httpx.Client(base_url=server.base, headers=h_rev, timeout=30)
        i = n
        while not stop.is_set() and item_ids:
            item = item_ids[i % len(item_ids)]
            i += args.crash_writers
            note = f"bench-{n}-{i}"
            try:
                r = client.post(f"/v1/items/{item}/decision", json={"decision": "not_abuse", "note": note})
            except httpx.HTTPError:
                break
            if r.status_code == 200:
                with lock:
                    acked_decisions.append((item, r.json()["id"], note))
        client.close()

    writers = [threading.Thread(target=bank_writer, args=(n,)) for n in range(args.crash_writers)]
    writers += [threading.Thread(target=decision_writer, args=(n,)) for n in range(args.crash_writers)]
    for t in writers:
        t.start()
    time.sleep(args.crash_after)
    with lock:
        before_kill = (len(acked_entries), len(acked_decisions))
    server.kill()  # SIGKILL, mid-request
    stop.set()
    for t in writers:
        t.join()
    restart_s = server.start(admin)
    # every acknowledged change must be there
    missing_entries = 0
    for start in range(0, len(acked_entries), 1000):
        chunk = acked_entries[start : start + 1000]
        r = httpx.post(f"{server.base}/v1/lookup", headers=h_admin, timeout=120,
                       json={"hashes": [{"signal_type": "md5", "value": v} for v in chunk]})
        for res in r.json()["results"]:
            if not any(m["bank"] == "crash-bank" for m in res["matches"]):
                missing_entries += 1
    missing_decisions = 0
    by_item: dict[int, set[int]] = {}
    for item, dec_id, _ in acked_decisions:
        by_item.setdefault(item, set()).add(dec_id)
    for item, ids in by_item.items():
        got = {d["id"] for d in httpx.get(f"{server.base}/v1/items/{item}", headers=h_admin, timeout=60).json()["decisions"]}
        missing_decisions += len(ids - got)
    verify = httpx.get(f"{server.base}/v1/audit/verify", headers=h_admin, timeout=300).json()
    return {"acked_entries": len(acked_entries), "acked_decisions": len(acked_decisions), "acked_at_kill": before_kill,
            "missing_entries": missing_entries, "missing_decisions": missing_decisions, "audit": verify,
            "restart_s": restart_s}


# -- side by side with HMA -------------------------------------------------------------------------------------

def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else float("nan")


def side_by_side(args) -> int:
    """tripwire and HMA on one PostgreSQL, the same PDQ bank, the same worker count and the same queries, in
    interleaved rounds (the order alternates each round), kept-alive and new connections; server CPU and
    PostgreSQL CPU counted apart. Returns the exit status (1 on any error or differing answer)."""
    from hma_peer import HmaPeer, existing_rows, recreate_database
    from proctree import postgres_pids, pss_mib

    from tripwire.service.auth import create_key
    from tripwire.store.db import open_db

    if not args.pg_url or not args.hma_venv or not args.hma_src:
        raise SystemExit("--peer hma needs --pg-url, --hma-venv and --hma-src (see bench/hma_peer.py)")
    workdir = Path(tempfile.mkdtemp(prefix="tw-bench-hma-"))
    pdq_values = [v for _, v in bank_values(args.bank_size, pdq_only=True)]
    print(f"same bank for both: {len(pdq_values):,} PDQ hashes; {args.workers} worker process(es) each; "
          f"{args.raw_clients} connections; {args.rounds} interleaved rounds of {args.duration:.0f} s", flush=True)

    n = len(pdq_values)
    reuse = args.reuse_banks and existing_rows(args.pg_url, "tw_bench", "bank_entries") == n \
        and existing_rows(args.pg_url, "hma_bench", "content_signal") == n
    if reuse:
        tw_url = args.pg_url.rsplit("/", 1)[0] + "/tw_bench"
        print("reusing both banks from an earlier run (--reuse-banks)", flush=True)
    else:
        tw_url = recreate_database(args.pg_url, "tw_bench")
        tw_build = build_bank(tw_url, n, pdq_only=True)
    db = open_db(tw_url)
    with db.session() as s:
        key = create_key(s, "bench-submitter", "submitter", "bench", rate_per_s=1e6).key
    db.dispose()
    hma = HmaPeer(Path(args.hma_venv), Path(args.hma_src), args.pg_url, workdir, args.workers, free_port(), keep=reuse)
    if not reuse:
        hma_load, hma_index = hma.load_bank(pdq_values)
        print(f"bank load: tripwire {tw_build:.1f} s (BankStore.add_entries); HMA {hma_load:.1f} s (COPY) "
              f"+ {hma_index:.1f} s `flask build_indices`", flush=True)

    tw = Server(tw_url, workdir, args.workers)
    status = 0
    rows: dict[tuple[str, bool], list[dict]] = {}
    try:
        tw_ready = tw.start(key)
        hma_ready = hma.start()
        print(f"ready after start: tripwire {tw_ready:.1f} s (index built from the bank), HMA {hma_ready:.1f} s "
              f"(each worker loads the stored index)", flush=True)
        systems = {"tripwire": (tw.port, {"Authorization": f"Bearer {key}"}, tw.pids),
                   "HMA": (hma.port, {}, hma.pids)}
        warm = raw_queries(pdq_values[:1000], 50, SEED - 1)
        for name, (port, headers, _) in systems.items():
            run_raw_lookups(port, headers, argparse.Namespace(**{**vars(args), "duration": 30}), warm, True)
        for rnd in range(args.rounds):
            queries = raw_queries(pdq_values, args.max_requests, SEED + rnd)
            order = list(systems) if rnd % 2 == 0 else list(systems)[::-1]
            for keep_alive in (True, False):
                for name in order:
                    port, headers, pids = systems[name]
                    cpu0, pg0, wall0 = cpu_seconds(pids()), cpu_seconds(postgres_pids()), time.monotonic()
                    st = run_raw_lookups(port, headers, args, queries, keep_alive)
                    cpu, pg = cpu_seconds(pids()) - cpu0, cpu_seconds(postgres_pids()) - pg0
                    wall = time.monotonic() - wall0
                    n = len(st.latencies)
                    rows.setdefault((name, keep_alive), []).append(
                        {"n": n, "rps": n / wall, "per_cpu": n / max(cpu, 1e-9), "pg_ms": 1000 * pg / max(n, 1),
                         "p50": pct(st.latencies, 50) * 1000, "p99": pct(st.latencies, 99) * 1000,
                         "errors": len(st.errors)})
                    print(f"  round {rnd + 1} {name:8} {'keep-alive' if keep_alive else 'new conn  '}: {n} requests, "
                          f"{n / max(cpu, 1e-9):.0f} per server CPU-s, p50 {rows[(name, keep_alive)][-1]['p50']:.1f} ms, "
                          f"p99 {rows[(name, keep_alive)][-1]['p99']:.1f} ms, errors {len(st.errors)}", flush=True)
                    if st.errors:
                        status = 1
                        print(f"    errors (first 5): {st.errors[:5]}")
        memory = {name: pss_mib(pids()) for name, (_, _, pids) in systems.items()}
    finally:
        tw.stop()
        hma.stop()
    print("\n| server | connections | req per server CPU-s (median, range) | req/s | PostgreSQL CPU ms/req | "
          "p50 ms | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for (name, keep_alive), rs in rows.items():
        per_cpu = [r["per_cpu"] for r in rs]
        print(f"| {name} | {'keep-alive' if keep_alive else 'new per request'} | {median(per_cpu):.0f} "
              f"({min(per_cpu):.0f}-{max(per_cpu):.0f}) | {median([r['rps'] for r in rs]):.0f} | "
              f"{median([r['pg_ms'] for r in rs]):.2f} | {median([r['p50'] for r in rs]):.1f} | "
              f"{median([r['p99'] for r in rs]):.1f} | {sum(r['errors'] for r in rs)} |")
    for keep_alive in (True, False):
        ratio = median([r["per_cpu"] for r in rows[("tripwire", keep_alive)]]) / median(
            [r["per_cpu"] for r in rows[("HMA", keep_alive)]])
        print(f"tripwire / HMA, requests per server CPU-second, {'keep-alive' if keep_alive else 'new connections'}: "
              f"{ratio:.2f}x")
    print(f"server memory (PSS, all processes) after the load: tripwire {memory['tripwire']:.0f} MiB, "
          f"HMA {memory['HMA']:.0f} MiB")
    print("answers: identical (every query checked against its planted answer on both)" if status == 0
          else f"kept {workdir} for a look")
    if status == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    return status


# -- main ------------------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bank-size", type=int, default=1_000_000, help="hashes in the bank (half PDQ, half MD5)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of load per phase (scan, lookup, mixed)")
    ap.add_argument("--max-requests", type=int, default=20_000, help="cap per endpoint")
    ap.add_argument("--scan-clients", type=int, default=4)
    ap.add_argument("--lookup-clients", type=int, default=4)
    ap.add_argument("--lookup-batch", type=int, default=100, help="hashes per /v1/lookup request")
    ap.add_argument("--workers", type=int, default=1, help="server processes (tripwire serve --workers)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of the look-up phases (interleaved)")
    ap.add_argument("--crash-writers", type=int, default=4, help="threads each for decisions and bank additions")
    ap.add_argument("--crash-after", type=float, default=5.0, help="seconds of writes before the SIGKILL")
    ap.add_argument("--rebuild-bank", action="store_true", help="rebuild the cached bank database")
    ap.add_argument("--raw-clients", type=int, default=8, help="connections for the /m/raw_lookup phases")
    ap.add_argument("--only-lookups", action="store_true",
                    help="only the look-up phases (/m/raw_lookup kept alive and not, /v1/lookup): no scans, no crash test")
    ap.add_argument("--peer", choices=["hma"], help="side by side with HMA on one PostgreSQL (see bench/hma_peer.py)")
    ap.add_argument("--pg-url", help="PostgreSQL server for --peer (databases tw_bench and hma_bench are recreated)")
    ap.add_argument("--hma-venv", help="HMA's virtual environment (bench/hma_peer.py says how to make it)")
    ap.add_argument("--hma-src", help="the hasher-matcher-actioner folder of a ThreatExchange checkout")
    ap.add_argument("--reuse-banks", action="store_true",
                    help="--peer: keep the tw_bench and hma_bench databases of an earlier run when they hold the bank")
    args = ap.parse_args()
    if args.peer:
        return side_by_side(args)

    from tripwire.service.auth import create_key
    from tripwire.store.db import open_db

    CACHE.mkdir(parents=True, exist_ok=True)
    cached = CACHE / f"service-bank-{args.bank_size}.db"
    build_s = None
    if args.rebuild_bank or not cached.exists():
        print(f"building a {args.bank_size:,}-hash bank with BankStore.add_entries ...", flush=True)
        build_s = build_bank(str(cached), args.bank_size)
        print(f"  {build_s:.1f} s ({args.bank_size / build_s:,.0f} entries/s)", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="tw-bench-service-"))
    db_path = workdir / "service.db"
    shutil.copyfile(cached, db_path)
    db = open_db(str(db_path))
    with db.session() as s:
        submitter = create_key(s, "bench-submitter", "submitter", "bench", rate_per_s=1e6).key
        admin = create_key(s, "bench-admin", "admin", "bench", rate_per_s=1e6).key
        reviewer = create_key(s, "bench-reviewer", "reviewer", "bench", rate_per_s=1e6).key
    db.dispose()
    hits = list(bank_values(min(args.bank_size, 20_000)))
    images = [synth_jpeg(i) for i in range(64)]

    server = Server(db_path, workdir, args.workers)
    status = 0
    try:
        first_start = server.start(admin)
        print(f"server ready in {first_start:.1f} s (index built from {args.bank_size:,} entries), "
              f"{server.rss_mib():.0f} MiB resident ({args.workers} worker(s) + supervisor)", flush=True)
        # warm-up (first requests load extractors)
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {submitter}"}, timeout=120) as c:
            for img in images[:2]:
                c.post("/v1/scan", files=[("files", ("w.jpg", img, "image/jpeg"))])
            c.post("/v1/lookup", json={"hashes": [{"signal_type": "md5", "value": "0" * 32}]})
        print(f"\nload on loopback: {args.duration:.0f} s per phase, server {args.workers} worker(s), "
              f"{os.cpu_count()} cores on the box (clients included), bank {args.bank_size:,} hashes, "
              f"lookups of {args.lookup_batch} hashes (10% known)\n")
        print("| phase | endpoint | clients | requests | req/s | req per server CPU-s | server cores busy | p50 ms | p99 ms | errors |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        pdq_hits = [v for t, v in hits if t == "pdq"]
        for rnd in range(args.rounds):
            for keep_alive in (True, False):
                with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {submitter}"}) as c:
                    c.get("/m/raw_lookup", params={"signal_type": "pdq", "signal": pdq_hits[0]})
                cpu0, wall0 = server.cpu_seconds(), time.monotonic()
                st = run_raw_lookups(server.port, {"Authorization": f"Bearer {submitter}"}, args,
                                     raw_queries(pdq_hits, args.max_requests, SEED + rnd), keep_alive)
                cpu, wall = server.cpu_seconds() - cpu0, time.monotonic() - wall0
                n = len(st.latencies)
                label = f"raw_lookup {'keep-alive' if keep_alive else 'new connection'} (round {rnd + 1})"
                print(f"| {label} | /m/raw_lookup | {args.raw_clients} | {n} | {n / wall:.1f} | {n / max(cpu, 1e-9):.1f} | "
                      f"{cpu / wall:.2f} | {pct(st.latencies, 50) * 1000:.1f} | {pct(st.latencies, 99) * 1000:.1f} | "
                      f"{len(st.errors)} |", flush=True)
                if st.errors:
                    status = 1
                    print(f"  errors (first 5): {st.errors[:5]}")
        item_ids: list[int] = []
        phases = [("scan only", args.scan_clients, 0), ("lookup only", 0, args.lookup_clients),
                  ("mixed", args.scan_clients, args.lookup_clients)]
        if args.only_lookups:
            phases = [("lookup only", 0, args.lookup_clients)] * args.rounds
        for phase, n_scan, n_lookup in phases:
            cpu0, wall0 = server.cpu_seconds(), time.monotonic()
            stats = run_load(server, submitter, args, hits, images, n_scan, n_lookup)
            cpu, wall = server.cpu_seconds() - cpu0, time.monotonic() - wall0
            total = sum(len(x.latencies) for x in stats.values())
            item_ids += stats["scan"].item_ids
            for name, st in stats.items():
                n = len(st.latencies)
                if not n:
                    continue
                clients = n_scan if name == "scan" else n_lookup
                per_cpu = f"{n / max(cpu, 1e-9):.1f}" if (n_scan == 0 or n_lookup == 0) else "—"
                extra = (f" ({st.hashes / wall:,.0f} hashes/s, {st.hashes / max(cpu, 1e-9):,.0f} per server CPU-s)"
                         if name == "lookup" else "")
                print(f"| {phase} | /v1/{name}{extra} | {clients} | {n} | {n / wall:.1f} | {per_cpu} | {cpu / wall:.2f} | "
                      f"{pct(st.latencies, 50) * 1000:.1f} | {pct(st.latencies, 99) * 1000:.1f} | {len(st.errors)} |")
                if st.errors:
                    status = 1
                    print(f"  {name} errors (first 5): {st.errors[:5]}")
            if n_scan and n_lookup:
                print(f"| {phase} | all | {n_scan + n_lookup} | {total} | {total / wall:.1f} | {total / max(cpu, 1e-9):.1f} | "
                      f"{cpu / wall:.2f} | | | {sum(len(x.errors) for x in stats.values())} |")
        sys.stdout.flush()
        print(f"server resident memory after the load: {server.rss_mib():.0f} MiB")

        if not args.only_lookups:
            print("\ncrash: decisions and bank additions under load, SIGKILL, restart ...", flush=True)
            crash = crash_test(server, admin, reviewer, args, item_ids)
            print(f"acknowledged before the SIGKILL: {crash['acked_entries']} bank additions, {crash['acked_decisions']} decisions")
            print(f"after restart ({crash['restart_s']:.1f} s): missing bank additions {crash['missing_entries']}, "
                  f"missing decisions {crash['missing_decisions']}; audit chain ok={crash['audit']['ok']} "
                  f"({crash['audit']['events']} events)")
            if crash["missing_entries"] or crash["missing_decisions"] or not crash["audit"]["ok"]:
                status = 1
            if not crash["acked_entries"] or not crash["acked_decisions"]:
                print("warning: nothing was acknowledged before the kill: raise --crash-after")
                status = 1
    finally:
        server.stop()
        if status == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir} (server.log) for a look")
    print("\nresult:", "OK" if status == 0 else "FAILED")
    return status


if __name__ == "__main__":
    sys.exit(main())

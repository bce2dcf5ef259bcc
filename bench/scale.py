"""Cluster scans: the Ray engine against local worker processes on the same photos, and the database's write ceiling.

What, in the same run (interleaved rounds, medians):

* ``tripwire scan --workers 2`` (local worker processes) — the peer;
* ``tripwire scan --engine ray --workers 2`` (a local Ray started by the command: 2 actors);
* ``tripwire scan --engine ray --ray-address HEAD --workers 2`` on two Ray nodes of this machine
  (``ray start --head --num-cpus 1`` + ``ray start --address HEAD --num-cpus 1``, started once, as a cluster is);

each over the same N synthesised photo-like JPEGs (benign gradients and shapes), into a fresh SQLite case
database. Two figures per run: the command's wall time (start-up included: Ray's is seconds) and the
steady-state rate, files/s between 10% and 90% of the sources committed (read from the database while the
command runs, the same way for every engine). Then the write ceiling: the stage half and the batched commit
alone (``Pipeline.finish`` + ``Pipeline.store``, 500 items a transaction, as a scan commits) on PostgreSQL
(``--pg URL``, a throw-away database is created and dropped) and SQLite.

How::

    .venv/bin/python bench/scale.py [--photos 500] [--rounds 3] [--pg postgresql://tripwire:tripwire@127.0.0.1/tripwire]

The table is what bench/README.md and docs/scale.md record.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]
os.environ["PYTHONPATH"] = str(REPO / "src")  # the scans and the Ray nodes run this tree's tripwire

from helpers import image_bytes, synth_image  # noqa: E402
from ray_helpers import RayNodes  # noqa: E402


def photos(folder: Path, n: int) -> Path:
    """N distinct photo-like JPEGs (640x480, quality 90), made once and reused."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        p = folder / f"photo_{i:05d}.jpg"
        if not p.exists():
            p.write_bytes(image_bytes(synth_image(10_000 + i, (640, 480)), "JPEG", quality=90))
    return folder


def _sources(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return int(conn.execute("select count(*) from sources").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def scan(name: str, args: list[str], folder: Path, n: int, work: Path) -> dict[str, float]:
    """Run one scan command; wall seconds and the steady-state files/s (10%..90% of sources committed)."""
    db = work / f"{name}-{uuid.uuid4().hex[:8]}.db"
    cmd = [sys.executable, "-m", "tripwire", "scan", str(folder), "--db", str(db), "--out", str(work / "out"), "-q", *args]
    env = dict(os.environ)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marks: list[tuple[float, int]] = []
    while proc.poll() is None:
        marks.append((time.monotonic(), _sources(db)))
        time.sleep(0.1)
    wall = time.monotonic() - started
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0 or _sources(db) != n:
        raise SystemExit(f"{name} failed ({proc.returncode}, {_sources(db)}/{n} sources): {err[-2000:]}")
    lo = next(t for t, c in marks if c >= 0.1 * n)
    hi_t, hi_c = next((t, c) for t, c in marks if c >= 0.9 * n) if any(c >= 0.9 * n for _, c in marks) else marks[-1]
    lo_c = next(c for t, c in marks if c >= 0.1 * n)
    db.unlink(missing_ok=True)
    return {"wall": wall, "rate": (hi_c - lo_c) / (hi_t - lo) if hi_t > lo else float("nan")}


def write_ceiling(url: str, batches: int = 20, per_batch: int = 500) -> float:
    """Items/s through the stage half and the batched upsert (no extraction): the database's share of a scan."""
    from tripwire.config import Config
    from tripwire.pipeline.pipeline import Pipeline
    from tripwire.pipeline.worker import new_record
    from tripwire.store.db import Database

    db = Database(url)
    db.migrate()
    config = Config()
    pipeline = Pipeline.from_config(config, db)
    case_id = db.case_id("ceiling")
    elapsed = 0.0
    for b in range(batches):
        batch = []
        for i in range(per_batch):
            path = f"/bench/{b}/{i}.jpg"
            data = f"{b}-{i}-{uuid.uuid4()}".encode()
            raw = new_record(path, path, 4096, "image/jpeg")
            raw["facts"]["digests"] = {"version": "1", "error": None, "data": {
                "md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(),
                "sha256": hashlib.sha256(data).hexdigest()}}
            raw["facts"]["image"] = {"version": "1", "error": None, "data": {"width": 640, "height": 480}}
            batch.append((path, [raw]))
        started = time.perf_counter()
        pipeline.store(db, case_id, [(source, pipeline.finish(raws)) for source, raws in batch])
        elapsed += time.perf_counter() - started
    db.dispose()
    return batches * per_batch / elapsed


def _pg_database(admin_url: str):
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    name = f"tw_scale_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return admin, name, admin_url.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default=os.environ.get("TRIPWIRE_TEST_PG_URL"))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "tripwire-bench-scale")
    args = parser.parse_args()
    folder = photos(args.cache / f"photos-{args.photos}", args.photos)
    work = Path(tempfile.mkdtemp(prefix="twscale"))
    nodes = RayNodes(head_cpus=1)
    nodes.add_worker(cpus=1)
    import ray

    ray.shutdown()  # this process only started the nodes; the scans are the drivers
    contenders = {
        "local --workers 2": ["--workers", "2"],
        "ray local, 2 workers": ["--engine", "ray", "--workers", "2"],
        "ray 2 nodes x 1 CPU": ["--engine", "ray", "--ray-address", nodes.address, "--workers", "2"],
    }
    results: dict[str, list[dict[str, float]]] = {k: [] for k in contenders}
    try:
        for r in range(args.rounds):
            for name, extra in contenders.items():
                results[name].append(scan(name.split()[0], extra, folder, args.photos, work))
                print(f"round {r + 1} {name}: {results[name][-1]}", file=sys.stderr, flush=True)
    finally:
        nodes.stop()
    base = results["local --workers 2"]
    base_rate = statistics.median(x["rate"] for x in base)
    base_wall = statistics.median(x["wall"] for x in base)
    print(f"\n{args.photos} photos (640x480 JPEG), median of {args.rounds} interleaved rounds\n")
    print("| contender | wall s | × local | steady files/s | × local |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in results.items():
        wall = statistics.median(x["wall"] for x in runs)
        rate = statistics.median(x["rate"] for x in runs)
        print(f"| {name} | {wall:.1f} | {wall / base_wall:.2f} | {rate:.1f} | {rate / base_rate:.2f} |")
    print(f"\nitems/s per worker core (local, steady): {base_rate / 2:.1f}")
    ceilings = {"sqlite": write_ceiling(f"sqlite:///{work / 'ceiling.db'}")}
    if args.pg:
        admin, name, url = _pg_database(args.pg)
        try:
            ceilings["postgresql"] = write_ceiling(url)
        finally:
            import sqlalchemy as sa

            with admin.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    for db_name, rate in ceilings.items():
        print(f"write ceiling ({db_name}, stage half + upsert, 500 items/transaction): {rate:.0f} items/s")


if __name__ == "__main__":
    main()

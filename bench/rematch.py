"""Re-matching at 1M stored items: a bank gains 1,000 (or 1) PDQ hashes; how long until every stored item
that newly matches is updated and queued — against what re-scanning the files would cost.

    python bench/rematch.py                      # 1M items x 8 PDQ hashes each; ~5 minutes, ~2 GB peak
    python bench/rematch.py --items 100000       # a quick run

Data (seeded): ``--items`` stored items, each with its own content (random digests, a random PDQ hash and
``--variants`` further random PDQ hashes standing for the 8 rotations/flips a scan records; default 7, so 8
codes per item as for a real photo), inserted in bulk straight into ``contents``, ``facts`` and ``items`` of a
SQLite case database (no file is scanned for them). Then the stored-hash index is built once (timed, labelled).

Measured (median of ``--repeat`` runs, each with fresh hashes): ``bank add`` — the new entries inserted
through ``BankStore`` (what an import does) — then ``rematch(since=mark)``, the whole re-match: candidate
search of the new entries in the stored-hash index, verification of every candidate by the Matcher, match
fields/priority/policy updated, queue entries and the audit event committed. 10 of each 1,000 new hashes (and
the single hash) are near copies (5 bits off) of a stored item's *rotation variant*, so every run really
updates and queues items. The matcher and the index are open (a long-running process, the service); the
cold path of one CLI run (index loaded from disk, matcher opened) is reported once as well.

Peer, measured in the same run: ``tripwire scan --workers 1`` over the fixture images (real files), whose
rate is extrapolated to the same number of items — an extrapolation, labelled as such.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
sys.path.insert(0, str(REPO / "src"))

from sqlalchemy import insert  # noqa: E402

from tripwire.banks.store import BankStore  # noqa: E402
from tripwire.config import Config  # noqa: E402
from tripwire.match.matcher import Matcher  # noqa: E402
from tripwire.match.stored_index import StoredHashIndex  # noqa: E402
from tripwire.pipeline.rematch import mark, rematch  # noqa: E402
from tripwire.signals.pdq_labels import DIHEDRAL_VARIANTS  # noqa: E402
from tripwire.store.db import open_db  # noqa: E402
from tripwire.store.models import Content, Fact, ItemRow  # noqa: E402

CHUNK = 20_000


def hexes(rng: np.random.Generator, n: int, nbytes: int) -> list[str]:
    raw = rng.integers(0, 256, (n, nbytes), dtype=np.uint8).tobytes().hex()
    w = 2 * nbytes
    return [raw[i : i + w] for i in range(0, len(raw), w)]


def flip(hex_: str, bits: int, rng: np.random.Generator) -> str:
    value = int(hex_, 16)
    for b in rng.choice(256, bits, replace=False).tolist():
        value ^= 1 << b
    return f"{value:064x}"


def fill(db, n: int, variants: int, rng: np.random.Generator) -> list[tuple[str, dict]]:
    """Insert n contents/facts/items; returns a sample of (sha256, variants) to make near copies of."""
    case_id = db.case_id("bench")
    labels = DIHEDRAL_VARIANTS[1 : 1 + variants]
    sample: list[tuple[str, dict]] = []
    for start in range(0, n, CHUNK):
        k = min(CHUNK, n - start)
        shas, md5s, sha1s = hexes(rng, k, 32), hexes(rng, k, 16), hexes(rng, k, 20)
        pdqs = hexes(rng, k * (1 + variants), 32)
        contents, facts, items = [], [], []
        for i in range(k):
            own = pdqs[i * (1 + variants) : (i + 1) * (1 + variants)]
            var = {"original": own[0], **dict(zip(labels, own[1:]))}
            contents.append({"sha256": shas[i], "md5": md5s[i], "sha1": sha1s[i], "size": 100_000,
                             "media_type": "image/jpeg", "width": 640, "height": 480, "pdq": own[0], "pdq_quality": 100})
            facts.append({"sha256": shas[i], "extractor": "pdq_variants", "version": "2",
                          "data": {"pdq_variants": var, "pdq_unletterbox": None, "pdq_unletterbox_quality": None}})
            path = f"/evidence/drive/{start + i:08d}.jpg"
            items.append({"case_id": case_id, "path_key": hashlib.sha256(path.encode()).hexdigest(), "path": path,
                          "source_path": path, "sha256": shas[i], "size": 100_000, "media_type": "image/jpeg",
                          "stage_data": {"matches": [], "matches_suppressed": [], "priority": 60.0,
                                         "priority_reason": "bench", "policy": {"action": "allow", "queue": False,
                                                                                "rule": None, "reason": "bench"}},
                          "priority": 60.0})
            if len(sample) < 10_000 and rng.random() < 0.02:
                sample.append((shas[i], var))
        with db.engine.begin() as conn:
            conn.execute(insert(Content), contents)
            conn.execute(insert(Fact), facts)
            conn.execute(insert(ItemRow), items)
        if start and start % 200_000 == 0:
            print(f"  {start:,} items stored", flush=True)
    return sample


def scan_rate(tmp: Path) -> tuple[int, float]:
    """(files, seconds) of `tripwire scan --workers 1` over the fixture images."""
    files = [p for p in sorted(FIXTURES.rglob("*")) if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "XDG_CACHE_HOME": str(tmp / "cache")}
    listing = "\n".join(str(p) for p in files) + "\n"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tripwire", "scan", "-", "--db", str(tmp / "scan.db"), "--out",
                    str(tmp / "scan-out"), "--workers", "1", "-q"], input=listing, text=True, check=True,
                   capture_output=True, env=env)
    return len(files), time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--variants", type=int, default=7, help="extra PDQ hashes per item (rotations/flips), 0-7")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="tw-rematch-"))
    try:
        db = open_db(f"sqlite:///{tmp / 'case.db'}")
        config = Config()
        t = time.perf_counter()
        sample = fill(db, args.items, args.variants, rng)
        print(f"stored {args.items:,} items ({1 + args.variants} PDQ hashes each) in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        index = StoredHashIndex.for_database(db, config)
        index.rebuild()
        print(f"stored-hash index built once: {len(index):,} contents, {index.codes:,} codes, "
              f"{index.index.memory_bytes() / 2**20:.0f} MiB, {time.perf_counter() - t:.1f} s (then kept in step by scans)")
        store = BankStore(db)
        store.create_bank("new-list")
        matcher = Matcher.from_config(db, config)
        matcher.open()
        labels = DIHEDRAL_VARIANTS[1 : 1 + args.variants] or ("original",)
        used = 0

        def batch(n: int) -> tuple[list[str], int]:
            nonlocal used
            near = min(10, n) if n > 1 else 1
            rows = [flip(sample[used + i][1][labels[i % len(labels)]], 5, rng) for i in range(near)]
            used += near
            return rows + hexes(rng, n - near, 32), near

        results: dict[int, dict[str, list[float]]] = {}
        for n in (1000, 1):
            results[n] = {"add": [], "rematch": []}
            for _ in range(args.repeat):
                values, near = batch(n)
                before = mark(db)
                t = time.perf_counter()
                store.add_entries("new-list", [{"signal_type": "pdq", "value": v, "category": "1"} for v in values])
                results[n]["add"].append(time.perf_counter() - t)
                t = time.perf_counter()
                report = rematch(db, config, since=before, matcher=matcher, index=index, trigger="bench")
                results[n]["rematch"].append(time.perf_counter() - t)
                assert report.newly >= near, report.summary()
            print(f"{n:>5} new PDQ hashes: re-match median {statistics.median(results[n]['rematch']):.3f} s "
                  f"(runs: {', '.join(f'{x:.3f}' for x in results[n]['rematch'])}); bank add median "
                  f"{statistics.median(results[n]['add']):.3f} s; last run: {report.summary()}")
        # the cold path: what one `tripwire bank import` process pays on top (index from disk, matcher opened)
        values, near = batch(1000)
        before = mark(db)
        store.add_entries("new-list", [{"signal_type": "pdq", "value": v, "category": "1"} for v in values])
        t = time.perf_counter()
        report = rematch(db, config, since=before, trigger="bench")
        cold = time.perf_counter() - t
        print(f" cold (one CLI process: index loaded + checked, matcher opened), 1000 hashes: {cold:.2f} s")
        files, seconds = scan_rate(tmp)
        rate = files / seconds
        print(f"re-scan peer: `tripwire scan --workers 1` of {files} fixture images in {seconds:.1f} s = {rate:.1f} files/s;"
              f" EXTRAPOLATED to {args.items:,} items: {args.items / rate / 3600:.1f} h on one worker "
              f"({args.items / rate / 3600 / (os.cpu_count() or 1):.1f} h on all {os.cpu_count()} cores)")
        med = statistics.median(results[1000]["rematch"])
        print(f"re-match of 1,000 new hashes is {args.items / rate / med:,.0f}x faster than the extrapolated re-scan")
        db.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The ceiling of `tripwire scan`'s parent process: items/s it can finish and store, whatever the workers do.

    python bench/scan_parent.py [--items 5000] [--rounds 3] [--profile]

The parent of a scan runs the stage half of the pipeline for every item (flatten, match against the banks,
cluster stage, priority, policy) and stores items, sources and queue entries in batched transactions
(``pipeline/scan.py``: one commit per 0.1 s or per 500 items). This feeds it pre-extracted worker records
(real records of the camera fixtures, re-pathed so every item is new) with no workers at all, so the rate is
the most items per second the parent can take: the scan is parent-bound above it. One core, SQLite, an
empty bank set (the default install); medians of interleaved rounds, CPU time of this process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from tripwire.config import load_config
    from tripwire.pipeline.pipeline import Pipeline
    from tripwire.pipeline.scan import COMMIT_MAX_ITEMS
    from tripwire.pipeline.worker import SourceProcessor, Task
    from tripwire.store.db import open_db

    config = load_config()
    processor = SourceProcessor(config)
    raws = []
    for i, f in enumerate(sorted((REPO.parent / "shared" / "fixtures" / "camera").rglob("*.jpg"))):
        processor.process(Task(i, str(f)), lambda m: raws.append(m[2]) if m[0] == "record" else None)
    finish_ms, store_ms, rates = [], [], []
    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            db = open_db(os.path.join(tmp, "parent.db"))
            pipeline = Pipeline.from_config(config, db)
            case_id = db.case_id("bench")
            batch: list = []
            t_finish = t_store = 0.0
            start = time.process_time()
            if prof is not None:
                prof.enable()
            for k in range(args.items):
                raw = dict(raws[k % len(raws)])
                raw["path"] = raw["source"] = f"/bench/{r}/{k}.jpg"
                t = time.process_time()
                rows = pipeline.finish([raw])
                t_finish += time.process_time() - t
                batch.append((raw["path"], rows))
                if len(batch) >= COMMIT_MAX_ITEMS:
                    t = time.process_time()
                    pipeline.store(db, case_id, batch)
                    t_store += time.process_time() - t
                    batch = []
            if batch:
                t = time.process_time()
                pipeline.store(db, case_id, batch)
                t_store += time.process_time() - t
            if prof is not None:
                prof.disable()
            total = time.process_time() - start
            db.dispose()
        rates.append(args.items / total)
        finish_ms.append(t_finish / args.items * 1e3)
        store_ms.append(t_store / args.items * 1e3)
    print(f"parent ceiling, {args.items} items x {args.rounds} rounds, one core (CPU time):")
    print(f"  items/s: median {statistics.median(rates):,.0f} (range {min(rates):,.0f}-{max(rates):,.0f})")
    print(f"  per item: stages (flatten, match, cluster, priority, policy) {statistics.median(finish_ms):.3f} ms, "
          f"store (batched commits) {statistics.median(store_ms):.3f} ms")
    if prof is not None:
        import pstats

        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()

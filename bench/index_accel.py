"""PdqIndex look-up tables (``accelerate=True``) against the scan, one core, same codes, same queries.

    taskset -c 0 python bench/index_accel.py                       # 200k, 500k and 1M, ~1 minute
    taskset -c 0 python bench/index_accel.py --sizes 10000000      # ~1.6 GiB peak, a few minutes

Data (seeded), per size N, two banks:
  - uniform: N random codes;
  - clustered: 2% of N are near-duplicates of 2000 random centres, each flipped in a uniformly drawn
    0..40 bits (so answers at the radius and just past it exist), the rest random.
Queries per call: 8 (one image's dihedral variants) or 50 (``POST /v1/lookup``'s PDQ share): 10% codes of
the bank, 20% (clustered bank) centres, the rest random. Radius 31.

Each call is timed for both indexes back to back (CPU time of this process), alternating which goes
first, for ``--rounds`` calls; reported are medians, the median of per-call ratios, and whether every
answer (query rows, ids, distances) was identical. Also: table build time (CPU) and bytes per hash.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tripwire.signals.index import PdqIndex  # noqa: E402

RADIUS = 31


def flip(codes: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row of ``codes`` with counts[i] distinct random bits flipped."""
    bits = np.unpackbits(codes, axis=1)
    for i, k in enumerate(counts):
        bits[i, rng.choice(256, size=int(k), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def bank(n: int, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(codes, centres); centres is empty for the uniform bank."""
    codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    if kind == "uniform":
        return codes, codes[:0]
    centres = rng.integers(0, 256, (2000, 32), dtype=np.uint8)
    near = n // 50
    which = rng.integers(0, centres.shape[0], near)
    codes[rng.choice(n, size=near, replace=False)] = flip(centres[which], rng.integers(0, 41, near), rng)
    return codes, centres


def queries(codes: np.ndarray, centres: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    q = rng.integers(0, 256, (m, 32), dtype=np.uint8)
    known = max(1, m // 10)
    q[:known] = codes[rng.integers(0, codes.shape[0], known)]
    if centres.shape[0]:
        k = max(1, m // 5)
        q[known:known + k] = centres[rng.integers(0, centres.shape[0], k)]
    return q


def timed(index: PdqIndex, q: np.ndarray) -> tuple[float, tuple[np.ndarray, ...]]:
    t = time.process_time()
    found = index.search_arrays(q, RADIUS)
    return time.process_time() - t, found


def run(n: int, kind: str, per_call: list[int], rounds: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    codes, centres = bank(n, kind, rng)
    ids = np.arange(1, n + 1, dtype=np.int64)
    scan = PdqIndex()
    scan.add(ids, codes)
    fast = PdqIndex()
    fast.add(ids, codes)
    t = time.process_time()
    fast.accelerate = True
    build_s = time.process_time() - t
    out = []
    for m in per_call:
        timed(scan, queries(codes, centres, m, rng))  # warm: compile/load the kernels, fault the pages in
        timed(fast, queries(codes, centres, m, rng))
        t_scan: list[float] = []
        t_fast: list[float] = []
        same = True
        hits = 0
        for r in range(rounds):
            q = queries(codes, centres, m, rng)
            pair = [(scan, t_scan), (fast, t_fast)]
            answers = []
            for index, sink in (pair if r % 2 == 0 else pair[::-1]):
                dt, found = timed(index, q)
                sink.append(dt)
                answers.append(found)
            same &= all(np.array_equal(a, b) for a, b in zip(*answers))
            hits += int(answers[0][0].size)
        ratios = [a / b for a, b in zip(t_scan, t_fast) if b > 0]
        out.append({
            "n": n, "bank": kind, "queries": m,
            "scan_ms": 1e3 * statistics.median(t_scan), "tables_ms": 1e3 * statistics.median(t_fast),
            "speedup": statistics.median(ratios), "identical": same, "hits": hits,
            "build_s": build_s, "bytes_per_hash": fast.memory_bytes() / n,
            "scan_bytes_per_hash": scan.memory_bytes() / n,
        })
        print(out[-1], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="200000,500000,1000000")
    ap.add_argument("--banks", default="uniform,clustered")
    ap.add_argument("--queries", default="8,50", help="queries per call")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    PdqIndex(accelerate=True).add(np.arange(1 << 17), np.zeros((1 << 17, 32), np.uint8))  # load the kernels
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        for kind in args.banks.split(","):
            rows += run(n, kind, [int(x) for x in args.queries.split(",")], args.rounds, args.seed)
    print()
    print("| codes | bank | queries/call | scan ms/call | tables ms/call | speed-up (median of per-call ratios) "
          "| identical answers | tables build s | B/hash scan / tables |")
    print("|---:|---|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['bank']} | {r['queries']} | {r['scan_ms']:.3f} | {r['tables_ms']:.3f} | "
              f"{r['speedup']:.1f}x | {r['identical']} ({r['hits']} hits) | {r['build_s']:.2f} | "
              f"{r['scan_bytes_per_hash']:.0f} / {r['bytes_per_hash']:.0f} |")


if __name__ == "__main__":
    main()

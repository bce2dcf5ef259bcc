"""PDQ index at 1M-10M codes, one core: tripwire's PdqIndex against FAISS, in the same run.

    python bench/matching.py --size 1000000            # ~1 minute
    python bench/matching.py --size 10000000           # a few minutes, ~2.5 GB peak (HMA's index)
    python bench/matching.py --bank clustered          # near-duplicate families instead of uniform codes
    python bench/matching.py --cpu haswell             # tripwire's kernel compiled for AVX2 only (no AVX-512)

Data (a realistic mix, seeded): near-duplicates of the real PDQ hashes of the images in
../shared/fixtures (each hash flipped in a uniformly drawn 0..48 bits, so codes sit at every distance around
the radius, 30, 31 and 32 included), ``--near`` of the index (default 1%), scattered at random rows; the
rest uniformly random codes (``--bank uniform``) or, as real banks are, **near-duplicate families**
(``--bank clustered``): family centres drawn at random, family sizes geometric with mean 8, each member its
centre with 0..16 bits flipped. Ids are 1..N.

CPU features: the report starts with the host's SIMD flags, the target numba compiles tripwire's kernel for
(``--cpu NAME`` sets ``NUMBA_CPU_NAME``, e.g. ``haswell`` = AVX2 without AVX-512, to measure the CPUs most
users have on a machine that has more) and FAISS's build options. faiss-cpu wheels with dynamic dispatch
("DD") pick their kernels from the host at run time, so with ``--cpu haswell`` FAISS may still use AVX-512
while tripwire is held to AVX2: a handicap for tripwire, never for the peer.

Queries: the 8 dihedral variants (pdqhash's rotations and flips) of each fixture image, radius 31, one
image = one batch of 8, as tripwire's matcher sends them.

Contenders, measured one after the other on the same codes and queries, one thread each:
  - tripwire PdqIndex             (exact scan: 128-bit prefilter, 8 variants per pass)
  - FAISS IndexBinaryMultiHash(256, 16, 16), nflip=1   (HMA's configuration; exact at radius 31)
  - FAISS IndexBinaryFlat          (brute force; also the ground truth)

Reported: build time, ms per image (median and p95 over the images), speed-up against HMA's
configuration, bytes per hash (the arrays the index holds, and the process's resident-memory growth when
the index is loaded or built), recall against brute force, and for PdqIndex: 100k new hashes added and
matchable, 1 hash added and matchable, 100k removed, save and load times.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"
if "--cpu" in sys.argv:  # before numba is imported: its target CPU is fixed at import
    os.environ["NUMBA_CPU_NAME"] = sys.argv[sys.argv.index("--cpu") + 1]

import warnings  # noqa: E402

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore", category=UserWarning, module="PIL")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
sys.path.insert(0, str(REPO / "src"))

from tripwire.signals.index import PdqIndex  # noqa: E402
from tripwire.signals.pdq_variants import variant_hashes  # noqa: E402
from tripwire.signals.pdq import pdq_dihedral_of_array  # noqa: E402

RADIUS = 31
OURS = "tripwire PdqIndex"
HMA = "FAISS MultiHash(256,16,16) nflip=1 (HMA)"
FLAT = "FAISS IndexBinaryFlat"


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_of_fresh_load(path: Path) -> int:
    """Resident-memory growth of a new process when it loads the saved index (what a service pays)."""
    import subprocess

    code = (
        "import sys; sys.path.insert(0, sys.argv[2]);"
        "from tripwire.signals.index import PdqIndex;"
        "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * __import__('os').sysconf('SC_PAGE_SIZE');"
        "r0 = rss(); idx = PdqIndex.load(sys.argv[1]); print(rss() - r0)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path), str(REPO / "src")], check=True,
                         capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def fixture_hashes(limit: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(images, 8, 32) uint8: dihedral PDQ codes of the decodable fixture images (distinct originals);
    and per image the codes tripwire's matcher sends by default (variant_hashes: 4 passes + unletterbox)."""
    from PIL import Image

    out: list[np.ndarray] = []
    full: list[np.ndarray] = []
    seen: set[bytes] = set()
    for path in sorted(FIXTURES.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in {".jpg", ".jpeg", ".png", ".webp"}:
            continue
        try:
            with Image.open(path) as im:
                if min(im.size) < 32:
                    continue
                im.draft("RGB", (512, 512))
                rgb = np.asarray(im.convert("RGB"))
        except Exception:  # noqa: BLE001 - malformed fixtures are expected here
            continue
        hexes, _quality = pdq_dihedral_of_array(rgb)
        codes = np.stack([np.frombuffer(bytes.fromhex(h), dtype=np.uint8) for h in hexes])
        if codes[0].tobytes() in seen:
            continue
        seen.add(codes[0].tobytes())
        out.append(codes)
        full.append(variant_hashes(rgb).codes())
        if len(out) >= limit:
            break
    return np.stack(out), full


def flip_random_bits(codes: np.ndarray, rng: np.random.Generator, max_bits: int) -> np.ndarray:
    """Each code with k ~ U{0..max_bits} distinct bits flipped."""
    bits = np.unpackbits(codes, axis=1)
    k = rng.integers(0, max_bits + 1, size=codes.shape[0])
    order = np.argsort(rng.random(bits.shape), axis=1)  # a random permutation of bit positions per row
    flip = order < k[:, None]
    return np.packbits(bits ^ flip, axis=1)


def make_codes(n: int, bases: np.ndarray, near_frac: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    n_near = int(n * near_frac)
    rows = rng.choice(n, size=n_near, replace=False)
    step = 50_000
    for start in range(0, n_near, step):
        part = rows[start : start + step]
        src = bases[rng.integers(0, bases.shape[0], size=part.size)]
        codes[part] = flip_random_bits(src, rng, 48)
    return codes


def make_clustered_codes(n: int, bases: np.ndarray, near_frac: float, seed: int) -> np.ndarray:
    """Like :func:`make_codes`, but the non-fixture codes form near-duplicate families (mean size 8, each
    member 0..16 bits from its random centre), shuffled over the rows."""
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(int(rng.geometric(1 / 8)))
    centres = rng.integers(0, 256, size=(len(sizes), 32), dtype=np.uint8)
    family = np.repeat(np.arange(len(sizes)), sizes)[:n]
    codes = np.empty((n, 32), dtype=np.uint8)
    step = 200_000
    for start in range(0, n, step):
        codes[start : start + step] = flip_random_bits(centres[family[start : start + step]], rng, 16)
    codes = codes[rng.permutation(n)]
    n_near = int(n * near_frac)
    rows = rng.choice(n, size=n_near, replace=False)
    for start in range(0, n_near, 50_000):
        part = rows[start : start + 50_000]
        codes[part] = flip_random_bits(bases[rng.integers(0, bases.shape[0], size=part.size)], rng, 48)
    return codes


def cpu_report() -> str:
    """The SIMD features that matter here: the host's, numba's target for the kernel, FAISS's build."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    host = [f for f in ("popcnt", "avx2", "avx512f", "avx512_vpopcntdq") if f in flags]
    import numba
    from llvmlite import binding as llvm

    target = numba.config.CPU_NAME or llvm.get_host_cpu_name()
    features = numba.config.CPU_FEATURES or llvm.get_host_cpu_features().flatten()
    kernel = [f for f in ("avx2", "avx512f", "avx512vpopcntdq") if f"+{f}" in features.split(",")]
    if numba.config.CPU_NAME:  # a named CPU: its own feature set, not the host's
        kernel = ["(features of " + target + ")"]
    import faiss

    faiss_opts = faiss.get_compile_options() if hasattr(faiss, "get_compile_options") else "?"
    return (f"host SIMD: {', '.join(host) or 'none detected'}; tripwire kernel (numba) target: {target} "
            f"[{', '.join(kernel)}]; FAISS library loaded: {faiss_opts.strip()}")


def interleaved(
    contenders: dict[str, object], queries: list[np.ndarray], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list]]:
    """Time each contender on each image, alternating contenders image by image and round by round, so
    that load from other jobs on a shared machine hits them alike. Returns per-contender times (seconds,
    one per image per round) and the first round's results."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    results: dict[str, list] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for i, q in enumerate(queries):
            order = names if (i + r) % 2 == 0 else names[::-1]
            for name in order:
                fn = contenders[name]
                t0 = time.perf_counter()
                out = fn(q)  # type: ignore[operator]
                times[name].append(time.perf_counter() - t0)
                if r == 0:
                    results[name].append(out)
    return times, results


def p95(xs: list[float]) -> float:
    return float(np.percentile(xs, 95))


def faiss_sets(lims: np.ndarray, dist: np.ndarray, labels: np.ndarray) -> set[tuple[int, int, int]]:
    out = set()
    for j in range(len(lims) - 1):
        for k in range(lims[j], lims[j + 1]):
            out.add((j, int(labels[k]) + 1, int(dist[k])))  # row r holds id r + 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000, help="codes in the index (default 1M)")
    ap.add_argument("--images", type=int, default=100, help="query images (8 variants each)")
    ap.add_argument("--near", type=float, default=0.01, help="fraction of near-duplicates of fixture hashes")
    ap.add_argument("--add", type=int, default=100_000, help="hashes added incrementally")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds over the images")
    ap.add_argument("--skip", default="", help="comma list of contenders to skip: multihash,flat")
    ap.add_argument("--bank", choices=("uniform", "clustered"), default="uniform", help="the non-fixture codes")
    ap.add_argument("--cpu", default=None, help="numba target CPU for tripwire's kernel (e.g. haswell: AVX2 only)")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    import faiss

    faiss.omp_set_num_threads(1)
    t0 = time.perf_counter()
    qimg, qfull = fixture_hashes(args.images)
    bases = qimg[:, 0, :]
    codes = (make_clustered_codes if args.bank == "clustered" else make_codes)(args.size, bases, args.near, args.seed)
    ids = np.arange(1, args.size + 1, dtype=np.int64)
    print(cpu_report())
    print(f"data: {args.bank} bank, {args.size:,} codes ({args.near:.0%} near-duplicates of {bases.shape[0]} fixture hashes), "
          f"{qimg.shape[0]} query images x 8 variants, radius {RADIUS}; generated in {time.perf_counter() - t0:.1f} s",
          flush=True)
    rows: list[dict] = []

    rows: dict[str, dict] = {}
    pairs: list[tuple[str, str, float]] = []  # (contender, peer, median of per-image time ratios)

    def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
        return float(np.median(np.array(times[b]) / np.array(times[a])))

    # ---- phase 1: PdqIndex and IndexBinaryFlat (the ground truth), side by side ------------------------------
    gc.collect()
    t0 = time.perf_counter()
    index = PdqIndex()
    index.add(ids, codes)
    build_ours = time.perf_counter() - t0
    index.search(qimg[0], RADIUS)  # JIT compile (cached on disk after the first run) outside the timing
    contenders: dict[str, object] = {OURS: lambda q: index.search(q, RADIUS)}
    truth: list[set] | None = None
    if "flat" not in skip:
        t0 = time.perf_counter()
        flat = faiss.IndexBinaryFlat(256)
        flat.add(codes)
        rows[FLAT] = dict(build=time.perf_counter() - t0, bytes=32.0, rss=float("nan"), recall=1.0)
        contenders[FLAT] = lambda q: flat.range_search(q, RADIUS + 1)  # faiss: distance < radius
    times, res = interleaved(contenders, list(qimg), args.rounds)
    ours = [set(r) for r in res[OURS]]
    rows[OURS] = dict(build=build_ours, bytes=index.memory_bytes() / len(index), rss=float("nan"),
                      recall=None, times=times[OURS])
    if "flat" not in skip:
        truth = [faiss_sets(*r) for r in res[FLAT]]
        rows[FLAT]["times"] = times[FLAT]
        pairs.append((OURS, FLAT, ratio(times, OURS, FLAT)))
        found = sum(len(a & b) for a, b in zip(ours, truth))
        total = sum(len(b) for b in truth)
        rows[OURS]["recall"] = found / total if total else 1.0
        exact = all(a == b for a, b in zip(ours, truth))
        print(f"PdqIndex: {total:,} true (query, id) pairs within {RADIUS}; identical to brute force "
              f"(ids and distances): {exact}", flush=True)
        del flat, contenders[FLAT]
    del res
    gc.collect()
    times_full, _ = interleaved({OURS: lambda q: index.search(q, RADIUS)}, qfull, 1)
    print(f"phase 1 done: PdqIndex {statistics.median(times[OURS]) * 1e3:.2f} ms/image", flush=True)

    # ---- phase 2: PdqIndex and HMA's configuration, side by side ---------------------------------------------
    if "multihash" not in skip:
        # HMA's tables take ~280 B/hash: the codes go to a scratch file and are fed back in chunks, so the
        # peak is PdqIndex + HMA's index, without a second copy of the codes.
        spill = Path(tempfile.mkdtemp()) / "codes.u8"
        codes.tofile(spill)
        del codes
        gc.collect()
        r0 = rss_bytes()
        t0 = time.perf_counter()
        mh = faiss.IndexBinaryMultiHash(256, 16, 16)
        mh.nflip = 1
        step = 1_000_000
        for start in range(0, args.size, step):
            count = min(step, args.size - start)
            mh.add(np.fromfile(spill, dtype=np.uint8, count=count * 32, offset=start * 32).reshape(count, 32))
        build = time.perf_counter() - t0
        grown = rss_bytes() - r0
        spill.unlink()
        spill.parent.rmdir()
        times, res = interleaved({OURS: lambda q: index.search(q, RADIUS),
                                  HMA: lambda q: mh.range_search(q, RADIUS + 1)}, list(qimg), args.rounds)
        recall = None
        if truth is not None:
            got = [faiss_sets(*r) for r in res[HMA]]
            total = sum(len(b) for b in truth)
            recall = sum(len(a & b) for a, b in zip(got, truth)) / total if total else 1.0
        rows[HMA] = dict(build=build, times=times[HMA], bytes=float("nan"), rss=grown / args.size, recall=recall)
        rows[OURS]["times_vs_hma"] = times[OURS]
        pairs.append((OURS, HMA, ratio(times, OURS, HMA)))
        del mh, res
        gc.collect()
        print(f"phase 2 done: HMA config {statistics.median(times[HMA]) * 1e3:.2f} ms/image, PdqIndex "
              f"{statistics.median(times[OURS]) * 1e3:.2f}", flush=True)

    # ---- phase 3: PdqIndex updates and persistence -------------------------------------------------------------
    extra: dict[str, str] = {
        "search, all codes of variant_hashes() per image": f"{statistics.median(times_full[OURS]) * 1e3:.2f} ms median "
        f"({statistics.median([len(q) for q in qfull]):.0f} codes median, {max(len(q) for q in qfull)} max)",
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.pdqidx"
        t0 = time.perf_counter()
        index.save(path)
        extra["save"] = f"{time.perf_counter() - t0:.2f} s ({path.stat().st_size / 2**20:.0f} MiB)"
        # incremental: 100k near-duplicates of the query images, added then searched for at once
        rng = np.random.default_rng(args.seed + 1)
        new_codes = flip_random_bits(bases[rng.integers(0, bases.shape[0], args.add)], rng, 20)
        new_ids = np.arange(10**9, 10**9 + args.add, dtype=np.int64)
        probe = qimg[int(np.flatnonzero((np.unpackbits(new_codes[:1] ^ bases, axis=1).sum(1) <= 20))[0])]
        t0 = time.perf_counter()
        index.add(new_ids, new_codes)
        t_add = time.perf_counter() - t0
        hits = index.search(probe, RADIUS)
        t_visible = time.perf_counter() - t0
        assert any(i >= 10**9 for _, i, _ in hits), "new hashes not matchable"
        extra[f"add {args.add:,} + first match"] = f"{t_visible:.3f} s (add {t_add:.3f} s)"
        one = flip_random_bits(bases[:1], rng, 5)
        t0 = time.perf_counter()
        index.add([2 * 10**9], one)
        ok = any(i == 2 * 10**9 for _, i, _ in index.search(qimg[0], RADIUS))
        extra["add 1 + first match"] = f"{(time.perf_counter() - t0) * 1e3:.1f} ms ({'found' if ok else 'MISSING'})"
        t0 = time.perf_counter()
        index.remove(new_ids)
        gone = not any(10**9 <= i < 2 * 10**9 for _, i, _ in index.search(probe, RADIUS))
        status = "gone" if gone else "STILL MATCHING"
        extra[f"remove {args.add:,} + check"] = f"{time.perf_counter() - t0:.3f} s ({status})"
        extra["segments after updates"] = str(index.segment_count)
        del index
        gc.collect()
        rows[OURS]["rss"] = rss_of_fresh_load(path) / args.size
        t0 = time.perf_counter()
        loaded = PdqIndex.load(path)
        extra["load (read)"] = f"{time.perf_counter() - t0:.2f} s"
        same = [set(loaded.search(q, RADIUS)) for q in qimg[:10]] == ours[:10]
        extra["reloaded answers identical"] = str(same)
        del loaded
        gc.collect()
        t0 = time.perf_counter()
        mapped = PdqIndex.load(path, mmap=True)
        extra["load (mmap)"] = f"{(time.perf_counter() - t0) * 1e3:.1f} ms"
        del mapped
    extra["peak RSS of this run"] = f"{peak_rss() / 2**30:.2f} GiB"

    # ---- report --------------------------------------------------------------------------------------------------
    print()
    print(f"## {args.size:,} codes, {qimg.shape[0]} images x 8 variants, radius {RADIUS}, one core, "
          f"{args.rounds} interleaved rounds")
    print()
    print("| index | build s | ms/image median | ms/image p95 | B/hash (arrays) | B/hash (RSS) "
          "| recall vs brute force |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in (OURS, HMA, FLAT):
        if name not in rows:
            continue
        r = rows[name]
        arrays = "-" if r["bytes"] != r["bytes"] else f"{r['bytes']:.1f}"
        rss = "-" if r["rss"] != r["rss"] else f"{r['rss']:.1f}"
        rec = "-" if r["recall"] is None else f"{r['recall']:.2%}"
        print(f"| {name} | {r['build']:.1f} | {statistics.median(r['times']) * 1e3:.2f} | {p95(r['times']) * 1e3:.2f} "
              f"| {arrays} | {rss} | {rec} |")
    print()
    print("| speed-up, same run, image by image | median of per-image time ratios |")
    print("|---|---:|")
    for a, b, x in pairs:
        print(f"| {a} vs {b} | {x:.1f}x |")
    print()
    print("| PdqIndex operation | result |")
    print("|---|---|")
    for k, v in extra.items():
        print(f"| {k} | {v} |")

if __name__ == "__main__":
    main()

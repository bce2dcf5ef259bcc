"""Hashing and scan throughput against python-threatexchange's PDQ, per corpus, interleaved per file.

    python bench/hashing.py [--rounds 3] [--photos 50] [--no-cli] [--no-inprocess] [--profile]

Corpora, reported separately (never mixed into one average):
  - camera      ../shared/fixtures/camera: 50 JPEGs, mostly 100x75 thumbnails with large EXIF blocks,
                nine 640x480 GPS photos and a few 2-9 MP phone/HDR shots;
  - photos      --photos photo-like JPEGs of 1.2-10 MP (see ``make_photos``: there are no real photos of that
                size among the shared fixtures, so they are made from the camera fixtures' largest pictures,
                resized to typical camera sizes, with sensor-like noise, JPEG q90 4:2:0; cached in bench/out);
  - generators  the generator PNGs (../shared/fixtures/generators/*.png and watermark/*_png.png).

In process, one core, **interleaved per file**: for every file each contender runs once, in an order that
rotates from file to file, so load from other jobs hits every contender alike. Contenders:
  - python-threatexchange   PdqSignal.hash_from_file (full decode, pdqhash; the HMA reference)
  - tripwire PDQ            PdqExtractor: the stored-pixels hash, full decode (equal to threatexchange's)
  - tripwire PDQ draft      PdqExtractor(decode_size=512): JPEG drafted to >= 512 px (not interop-exact)
  - tripwire all            every default extractor (SourceProcessor.process: digests, size, PDQ and its 8
                            exact rotation/flip variants, provenance with C2PA/EXIF/XMP/generators/watermark)
  - tripwire all, draft     the same with ``[scan] pdq_decode = "draft"`` (PDQ and its variants from one draft
                            decode; not interop-exact)
and per extractor the ms/image inside that run (the first one to need pixels pays the decode).
Asserted: the draft's PDQ stays within 10 bits of the full decode on every image of quality >= 80.

Whole process (--no-cli skips): ``tripwire scan --workers 1`` over photos + camera (database, matching,
clustering, reports included), over camera alone, ``--workers 2`` over photos + camera, and ``--workers 1
--pdq-decode draft`` over photos + camera and over camera alone, against threatexchange's PDQ-only loop over
the same files in one process (in process: its start-up not counted). Rounds are interleaved (every job, in
an order that rotates from round to round); medians and ranges are reported.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

# one BLAS thread, as tripwire's CLI and scan workers run (set before numpy is imported)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
CAMERA = FIXTURES / "camera"
OUT = REPO / "bench" / "out"
sys.path.insert(0, str(REPO / "src"))

#: photo sizes (megapixels 1.2-10.6): the common 4:3, 3:2, 16:9 and square camera and phone outputs
PHOTO_SIZES = [(1280, 960), (1600, 1200), (2048, 1536), (1920, 1920), (2000, 2000), (2592, 1944), (3000, 2000),
               (3264, 2448), (3456, 2592), (3840, 2160), (2448, 3264), (1536, 2048), (3648, 2736)]


def one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def make_photos(n: int) -> list[Path]:
    """``n`` photo-like JPEGs of 1.2-10 MP from the camera fixtures' largest pictures (deterministic, cached)."""
    import numpy as np
    from PIL import Image

    folder = OUT / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    bases = [p for p in sorted(CAMERA.rglob("*.jpg")) if p.stat().st_size > 150_000]
    rng = np.random.default_rng(12)
    paths = []
    for i in range(n):
        w, h = PHOTO_SIZES[i % len(PHOTO_SIZES)]
        path = folder / f"photo_{i:02d}_{w}x{h}.jpg"
        paths.append(path)
        if path.exists():
            continue
        with Image.open(bases[i % len(bases)]) as im:
            im = im.convert("RGB")
            # a different crop of the base for each photo, resized to the camera size
            cw, ch = im.size
            x0, y0 = int(rng.integers(0, cw // 6 + 1)), int(rng.integers(0, ch // 6 + 1))
            crop = im.crop((x0, y0, x0 + cw * 5 // 6, y0 + ch * 5 // 6)).resize((w, h), Image.Resampling.BICUBIC)
        arr = np.asarray(crop).astype(np.float32) + rng.normal(0, 3.0, (h, w, 1)).astype(np.float32)
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=90, subsampling=2)
    return paths


def corpora(photos: int) -> dict[str, list[Path]]:
    gens = sorted((FIXTURES / "generators").glob("*.png")) + sorted((FIXTURES / "watermark").glob("*_png.png"))
    return {"camera": sorted(CAMERA.rglob("*.jpg")), "photos": make_photos(photos), "generators": gens}


def in_process(files: dict[str, list[Path]], rounds: int, profile: bool) -> None:
    from threatexchange.signal_type.pdq.signal import PdqSignal

    from tripwire.config import load_config, with_scan_settings
    from tripwire.media.item import Item
    from tripwire.pipeline.worker import SourceProcessor, run_extractors, new_record
    from tripwire.signals.pdq import DRAFT_DECODE_SIZE, PdqExtractor

    config = load_config()
    processor = SourceProcessor(config)
    drafting = SourceProcessor(with_scan_settings(config, pdq_decode="draft"))
    pdq, draft = PdqExtractor(), PdqExtractor(decode_size=DRAFT_DECODE_SIZE)
    per_extractor: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def item(path: Path) -> Item:
        data = path.read_bytes()
        return Item(str(path), data, len(data), config.limits)

    class Timed:
        """An extractor wrapper that records its time per image (inside the real extraction loop)."""

        def __init__(self, inner, corpus: str) -> None:
            self.inner, self.corpus = inner, corpus
            self.name, self.version, self.produces = inner.name, inner.version, inner.produces

        def extract(self, it: Item):
            t = time.perf_counter()
            try:
                return self.inner.extract(it)
            finally:
                per_extractor[self.corpus][self.name].append(time.perf_counter() - t)

    def all_extractors(path: Path, corpus: str) -> None:
        it = item(path)
        run_extractors(it, [Timed(e, corpus) for e in processor.extractors], new_record(str(path), str(path)))

    contenders = {
        "python-threatexchange PDQ": lambda p, c: PdqSignal.hash_from_file(p),
        "tripwire PDQ (stored pixels, exact)": lambda p, c: pdq.extract(item(p)),
        "tripwire PDQ draft (not exact)": lambda p, c: draft.extract(item(p)),
        "tripwire all extractors": all_extractors,
        "tripwire all extractors, draft": lambda p, c: run_extractors(item(p), drafting.extractors,
                                                                      new_record(str(p), str(p))),
    }
    names = list(contenders)
    # warm-up: imports, caches, numba-free paths
    for corpus, paths in files.items():
        for fn in contenders.values():
            fn(paths[0], "warm-up")
    per_extractor.clear()
    times: dict[str, dict[str, list[float]]] = {c: {n: [] for n in names} for c in files}
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    for r in range(rounds):
        for corpus, paths in files.items():
            totals = {n: 0.0 for n in names}
            for i, path in enumerate(paths):
                k = (i + r) % len(names)
                for name in names[k:] + names[:k]:
                    if prof is not None and name == "tripwire all extractors":
                        prof.enable()
                    t = time.perf_counter()
                    contenders[name](path, corpus)
                    totals[name] += time.perf_counter() - t
                    if prof is not None:
                        prof.disable()
            for n in names:
                times[corpus][n].append(totals[n])
    for corpus, paths in files.items():
        base = times[corpus]["python-threatexchange PDQ"]
        print(f"\n{corpus}: {len(paths)} files, one core, {rounds} rounds interleaved per file (median, range of x)")
        print(f"{'contender':38} {'ms/file':>9} {'x threatexchange':>17} {'range':>13}")
        for n in names:
            ts = times[corpus][n]
            ratios = [b / t for b, t in zip(base, ts)]
            print(f"{n:38} {statistics.median(ts) / len(paths) * 1e3:9.2f} {statistics.median(ratios):17.2f} "
                  f"{min(ratios):6.2f}-{max(ratios):<6.2f}")
        print(f"  per extractor inside 'tripwire all' (ms/file, median over files x rounds; mean):")
        for ext, ts in per_extractor[corpus].items():
            print(f"    {ext:20} median {statistics.median(ts) * 1e3:7.2f}   mean {statistics.fmean(ts) * 1e3:7.2f}")
    if prof is not None:
        import pstats

        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    # draft vs full decode
    worst, counted = 0, 0
    for paths in files.values():
        for path in paths:
            a, b = pdq.extract(item(path)), draft.extract(item(path))
            if a.get("pdq_quality", 0) >= 80:
                counted += 1
                worst = max(worst, bin(int(a["pdq"], 16) ^ int(b["pdq"], 16)).count("1"))
    print(f"\nmax Hamming distance draft vs full decode: {worst} bits over {counted} images with quality >= 80 (limit 10)")
    assert worst <= 10, f"draft decode drifted {worst} bits from the full decode"


TE_LOOP = """
import sys, time
from pathlib import Path
from threatexchange.signal_type.pdq.signal import PdqSignal
paths = [Path(p) for p in sys.argv[1:]]
t = time.perf_counter()
for p in paths:
    PdqSignal.hash_from_file(p)
print(time.perf_counter() - t)
"""


def whole_process(files: dict[str, list[Path]], rounds: int) -> None:
    mixed = files["photos"] + files["camera"]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    with tempfile.TemporaryDirectory() as tmp:
        def stage(name: str, paths: list[Path]) -> Path:
            root = Path(tmp) / name
            for i, p in enumerate(paths):
                dest = root / f"{i:03d}_{p.name}"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, dest)
            return root

        roots = {"mixed": stage("mixed", mixed), "camera": stage("camera", files["camera"])}

        def scan(root: Path, workers: int, *options: str) -> float:
            db = Path(tmp) / "scan.db"
            for leftover in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
                leftover.unlink(missing_ok=True)
            shutil.rmtree(Path(tmp) / "o", ignore_errors=True)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tripwire", "scan", str(root), "--db", str(db), "--out",
                            str(Path(tmp) / "o"), "--workers", str(workers), "-q", *options], check=True,
                           capture_output=True, env=env)
            return time.perf_counter() - t

        def te(root: Path) -> float:
            paths = sorted(str(p) for p in root.iterdir())
            out = subprocess.run([sys.executable, "-c", TE_LOOP, *paths], check=True, capture_output=True, text=True, env=env)
            return float(out.stdout.strip().splitlines()[-1])

        jobs = {"te mixed": lambda: te(roots["mixed"]), "te camera": lambda: te(roots["camera"]),
                "scan w1 mixed": lambda: scan(roots["mixed"], 1), "scan w2 mixed": lambda: scan(roots["mixed"], 2),
                "scan w1 camera": lambda: scan(roots["camera"], 1),
                "scan w1 draft mixed": lambda: scan(roots["mixed"], 1, "--pdq-decode", "draft"),
                "scan w1 draft camera": lambda: scan(roots["camera"], 1, "--pdq-decode", "draft")}
        names = list(jobs)
        got: dict[str, list[float]] = {n: [] for n in names}
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                got[name].append(jobs[name]())
        print(f"\nwhole process, {rounds} rounds interleaved: {len(mixed)} files (photos + camera), {len(files['camera'])} camera")
        print(f"{'run':62} {'s (median)':>11} {'range':>15} {'x TE loop':>10}")
        rows = [("threatexchange PDQ loop, photos + camera (in process)", "te mixed", "te mixed"),
                ("tripwire scan --workers 1, photos + camera", "scan w1 mixed", "te mixed"),
                ("tripwire scan --workers 2, photos + camera", "scan w2 mixed", "te mixed"),
                ("tripwire scan --workers 1 --pdq-decode draft, photos + camera", "scan w1 draft mixed", "te mixed"),
                ("threatexchange PDQ loop, camera (in process)", "te camera", "te camera"),
                ("tripwire scan --workers 1, camera", "scan w1 camera", "te camera"),
                ("tripwire scan --workers 1 --pdq-decode draft, camera", "scan w1 draft camera", "te camera")]
        for label, key, base in rows:
            ratios = [b / t for b, t in zip(got[base], got[key])]
            print(f"{label:62} {statistics.median(got[key]):11.2f} {min(got[key]):7.2f}-{max(got[key]):<7.2f} "
                  f"{statistics.median(ratios):10.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
        scaling = [a / b for a, b in zip(got["scan w1 mixed"], got["scan w2 mixed"])]
        print(f"--workers 2 vs 1 (same files, same round): {statistics.median(scaling):.2f}x "
              f"({min(scaling):.2f}-{max(scaling):.2f}); load average now {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", type=int, default=50)
    parser.add_argument("--no-cli", action="store_true", help="skip the whole-process runs")
    parser.add_argument("--no-inprocess", action="store_true", help="skip the in-process runs")
    parser.add_argument("--profile", action="store_true", help="cProfile of 'tripwire all' (cumulative)")
    args = parser.parse_args()
    files = corpora(args.photos)
    from PIL import Image

    for name, paths in files.items():
        mp = []
        for p in paths:
            with Image.open(p) as im:
                mp.append(im.size[0] * im.size[1] / 1e6)
        print(f"{name}: {len(paths)} files, {sum(mp):.1f} MP, {min(mp):.2f}-{max(mp):.2f} MP each")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    if not args.no_cli:  # before pinning: the scans get the whole box (--workers 2 needs 2 cores)
        whole_process(files, args.rounds)
    if not args.no_inprocess:
        one_core()
        in_process(files, args.rounds, args.profile)


if __name__ == "__main__":
    main()

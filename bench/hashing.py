"""PDQ throughput on ../shared/fixtures/camera, one core, against the peers, in the same run.

    python bench/hashing.py [--rounds 5] [--copies 10]

Measures, interleaved round by round so machine noise hits every contender alike:
  - python-threatexchange  PdqSignal.hash_from_file (full decode, the HMA reference)
  - perception             hashers.PDQHash().compute (when installed; see bench/README.md)
  - tripwire PDQ           PdqExtractor on a draft-mode decode (what `tripwire scan` runs)
  - tripwire core          digests, size and PDQ in process: the foundation's extractors
  - tripwire all           every default extractor, in process (adds provenance with C2PA/EXIF/XMP/
                           generators/watermarks, and the 8 exact rotation/flip PDQ variants the matcher uses)
  - tripwire scan (CLI)    the real command, --workers 1, over --copies copies of the folder, database
                           and reports included
and the largest Hamming distance between draft-mode and full-decode PDQ on images of quality >= 80.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAMERA = REPO.parent / "shared" / "fixtures" / "camera"


def one_core() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def contenders(files: list[Path]):
    from threatexchange.signal_type.pdq.signal import PdqSignal

    from tripwire.config import load_config
    from tripwire.media.item import Item
    from tripwire.pipeline.worker import SourceProcessor, Task
    from tripwire.signals.pdq import PdqExtractor

    from tripwire.signals.digests import DigestExtractor
    from tripwire.signals.imageinfo import ImageInfoExtractor

    pdq = PdqExtractor()
    processor = SourceProcessor(load_config())
    # the foundation's own extractors (digests, size, PDQ): what `tripwire scan` ran before provenance
    # and the matcher's rotation/flip variants were added
    core = SourceProcessor(load_config(), [DigestExtractor(), ImageInfoExtractor(), PdqExtractor()])

    def te():
        for f in files:
            PdqSignal.hash_from_file(f)

    def tw_pdq():
        for f in files:
            data = f.read_bytes()
            pdq.extract(Item(str(f), data, len(data)))

    def tw_all():
        for i, f in enumerate(files):
            processor.process(Task(i, str(f)), lambda message: None)

    def tw_core():
        for i, f in enumerate(files):
            core.process(Task(i, str(f)), lambda message: None)

    out = {"python-threatexchange PDQ": te, "tripwire PDQ (draft decode)": tw_pdq,
           "tripwire digests+size+PDQ": tw_core, "tripwire all extractors": tw_all}
    try:
        from perception import hashers

        hasher = hashers.PDQHash()

        def perception_pdq():
            for f in files:
                hasher.compute(str(f))

        out["perception PDQHash"] = perception_pdq
    except ImportError:
        print("perception not installed: skipped (pip install perception in a separate venv, see bench/README.md)")
    return out


def cli_rate(files: list[Path], copies: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "media"
        for c in range(copies):
            for f in files:
                dest = root / f"c{c}" / f.relative_to(CAMERA)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dest)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tripwire", "scan", str(root), "--db", str(Path(tmp) / "b.db"),
                        "--out", str(Path(tmp) / "o"), "--workers", "1", "-q"], check=True, capture_output=True)
        return copies * len(files) / (time.perf_counter() - started)


def max_draft_distance(files: list[Path]) -> tuple[int, int]:
    from tripwire.media.item import Item
    from tripwire.signals.pdq import PdqExtractor

    full, draft = PdqExtractor(decode_size=None), PdqExtractor()
    worst, counted = 0, 0
    for f in files:
        data = f.read_bytes()
        a, b = full.extract(Item(str(f), data, len(data))), draft.extract(Item(str(f), data, len(data)))
        if a["pdq_quality"] >= 80:
            counted += 1
            worst = max(worst, bin(int(a["pdq"], 16) ^ int(b["pdq"], 16)).count("1"))
    return worst, counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--copies", type=int, default=10, help="copies of the folder for the CLI run")
    parser.add_argument("--config", help="TOML configuration for the tripwire runs (e.g. [banks] variant_passes = 1)")
    args = parser.parse_args()
    if args.config:
        os.environ["TRIPWIRE_CONFIG"] = os.path.abspath(args.config)
    one_core()
    files = sorted(CAMERA.rglob("*.jpg"))
    megapixels = 0.0
    from PIL import Image

    for f in files:
        with Image.open(f) as im:
            megapixels += im.size[0] * im.size[1] / 1e6
    print(f"{len(files)} files, {megapixels:.1f} megapixels in {CAMERA}; one core; {args.rounds} rounds (median)")
    runs = contenders(files)
    for fn in runs.values():  # warm-up: imports, caches
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    cli: list[float] = []
    for _ in range(args.rounds):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
        cli.append(cli_rate(files, args.copies))
    base = len(files) / statistics.median(times["python-threatexchange PDQ"])
    print(f"\n{'contender':34} {'files/s':>9} {'x threatexchange':>17}")
    for name, ts in times.items():
        rate = len(files) / statistics.median(ts)
        print(f"{name:34} {rate:9.1f} {rate / base:17.2f}")
    rate = statistics.median(cli)
    print(f"{'tripwire scan CLI (--workers 1)':34} {rate:9.1f} {rate / base:17.2f}")
    worst, counted = max_draft_distance(files)
    print(f"\nmax Hamming distance draft vs full decode: {worst} bits over {counted} images with quality >= 80 (limit 10)")


if __name__ == "__main__":
    main()

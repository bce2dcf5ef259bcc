"""vPDQ: tripwire against Meta's reference library (``vpdq``), on the same synthetic 720p H.264 files.

1. **Throughput, one core**: decoded frames per second of wall time, hashing one frame a second, in this
   process pinned to one CPU; tripwire's ``signals.vpdq.hash_frames`` and the reference's
   ``vpdq.computeHash(thread_count=1)`` alternate file by file (interleaved rounds, medians).
2. **Agreement**: Hamming distance between the two libraries' hashes of the same frames.
3. **Recall on transformed copies** (tests/video_synth.py: lower bitrate, half size, trimmed 20%, letterboxed,
   MP4 -> WebM -> MP4) with threatexchange's decision (80% query match, 31 bits, quality 50), for tripwire's
   hashes (plus its unletterboxed hash, as the matcher queries it) and the reference's; false matches among
   unrelated videos.
4. **Index**: a query video's frames against 1M bank frames in :class:`PdqIndex` (what the matcher searches).

Run: ``python bench/video.py [--rounds 5] [--files 3] [--seconds 20] [--originals 8]`` with the reference
installed (``pip install vpdq==0.2.5``: it builds against FFmpeg's development packages, see .ci/run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import video_synth as vs  # noqa: E402
from tripwire.media.item import Item  # noqa: E402
from tripwire.media.video import VideoReader  # noqa: E402
from tripwire.signals.hamming import hamming_hex  # noqa: E402
from tripwire.signals.vpdq import (VideoExtractor, VpdqFeature, compare, from_json,  # noqa: E402
                                   hash_frames, prepare, to_json)


def ours(path: Path) -> tuple[list[VpdqFeature], int]:
    data = path.read_bytes()
    reader = VideoReader(Item(str(path), data, len(data)))
    features = hash_frames(reader)
    return features, int(reader.info.frames or 0)


def reference(path: Path) -> list[VpdqFeature]:
    import vpdq

    return [VpdqFeature(f.hex, f.quality, f.timestamp) for f in vpdq.computeHash(str(path), seconds_per_hash=1.0, thread_count=1)]


def throughput(files: list[Path], rounds: int) -> None:
    per: dict[str, list[float]] = {"tripwire": [], "reference vpdq": []}
    frames = {p: ours(p)[1] for p in files}
    total = sum(frames.values())
    distances: list[int] = []
    for _ in range(rounds):
        spent = {"tripwire": 0.0, "reference vpdq": 0.0}
        for path in files:
            started = time.perf_counter()
            a, _ = ours(path)
            spent["tripwire"] += time.perf_counter() - started
            started = time.perf_counter()
            b = reference(path)
            spent["reference vpdq"] += time.perf_counter() - started
            distances += [hamming_hex(x.pdq_hex, y.pdq_hex) for x, y in zip(a, b)]
        for name, seconds in spent.items():
            per[name].append(total / seconds)
    base = statistics.median(per["reference vpdq"])
    print(f"\n1. throughput: {len(files)} files, {total} frames of 1280x720 H.264, median of {rounds} rounds, one core")
    print("| contender | frames/s | x reference | rounds |\n|---|---:|---:|---|")
    for name, values in per.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.0f} | {med / base:.2f} | {', '.join(f'{v:.0f}' for v in values)} |")
    print(f"\n2. agreement: {len(distances)} frame pairs; identical {sum(d == 0 for d in distances)}, "
          f"within 10 bits {sum(d <= 10 for d in distances)}, max {max(distances)} bits")


def recall(root: Path, originals: int) -> None:
    rows: dict[str, list[tuple[bool, bool]]] = {}
    bank_ours, bank_ref = [], []
    extractor = VideoExtractor()

    def both(path: Path) -> tuple[list, list, list]:
        data = path.read_bytes()
        rec = extractor.extract(Item(str(path), data, len(data)))
        trimmed = from_json(rec["vpdq_unletterbox"]) if "vpdq_unletterbox" in rec else None
        return from_json(rec["vpdq"]), trimmed or [], reference(path)

    for n in range(originals):
        folder = root / f"o{n}"
        folder.mkdir()
        original = vs.synth(folder / "original.mp4", 1000 + n)
        mine, _, theirs = both(original)
        bank_ours.append(prepare(mine))
        bank_ref.append(prepare(theirs))
        for name, path in vs.transforms(original, folder).items():
            q_ours, q_trim, q_ref = both(path)
            hit = compare(prepare(q_ours), bank_ours[-1]).matches() or (
                bool(q_trim) and compare(prepare(q_trim), bank_ours[-1]).matches())
            rows.setdefault(name, []).append((hit, compare(prepare(q_ref), bank_ref[-1]).matches()))
    unrelated = [vs.synth(root / f"u{n}.mp4", 5000 + n) for n in range(originals * 2)]
    false_ours = false_ref = pairs = 0
    for path in unrelated:
        q_ours, q_trim, q_ref = both(path)
        for b_ours, b_ref in zip(bank_ours, bank_ref):
            pairs += 1
            false_ours += compare(prepare(q_ours), b_ours).matches() or (bool(q_trim) and compare(prepare(q_trim), b_ours).matches())
            false_ref += compare(prepare(q_ref), b_ref).matches()
    print(f"\n3. recall: {originals} originals (240x180, 10 s, 10 fps), threatexchange's decision")
    print("| transform | tripwire | reference vpdq |\n|---|---:|---:|")
    for name, hits in rows.items():
        print(f"| {name} | {sum(a for a, _ in hits)}/{len(hits)} | {sum(b for _, b in hits)}/{len(hits)} |")
    total = sum(len(h) for h in rows.values())
    print(f"| all copies | {sum(a for h in rows.values() for a, _ in h)}/{total} | {sum(b for h in rows.values() for _, b in h)}/{total} |")
    print(f"| false matches (unrelated x bank pairs) | {false_ours}/{pairs} | {false_ref}/{pairs} |")


def index(bank_frames: int, rounds: int) -> None:
    from tripwire.signals.index import PdqIndex
    from tripwire.signals.registry import registry

    kind = registry.get("vpdq")
    rng = np.random.default_rng(0)
    per_video = 60
    codes = rng.integers(0, 256, (bank_frames, 32), dtype=np.uint8)
    values = [to_json([VpdqFeature(bytes(c).hex(), 90, float(t)) for t, c in enumerate(codes[i : i + per_video])])
              for i in range(0, bank_frames, per_video)]
    started = time.perf_counter()
    idx = PdqIndex()
    idx.add(*kind.index_rows(list(range(1, len(values) + 1)), values))
    built = time.perf_counter() - started
    query = values[len(values) // 2]
    q_ids, q_codes = kind.index_rows([0], [query])
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        _, ids, _ = idx.search_arrays(q_codes, 31)
        times.append(time.perf_counter() - started)
    owners = set(kind.index_owner(ids).tolist())
    print(f"\n4. index: {len(idx)} bank frames in {len(values)} videos, built in {built:.1f} s; "
          f"a {len(q_codes)}-frame query at radius 31: median {statistics.median(times) * 1000:.0f} ms "
          f"({rounds} rounds), candidates {sorted(owners)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--originals", type=int, default=8)
    parser.add_argument("--bank-frames", type=int, default=1_000_000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = [vs.write(root / f"hd{n}.mp4", vs.frames(200 + n, w=1280, h=720, fps=30, seconds=args.seconds,
                                                         scene_s=4.0), fps=30) for n in range(args.files)]
        throughput(files, args.rounds)
        recall(root, args.originals)
    index(args.bank_frames, args.rounds)


if __name__ == "__main__":
    main()

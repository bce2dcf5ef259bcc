"""tripwire's vPDQ against Meta's reference library (``vpdq`` on PyPI, built against FFmpeg's development
packages; .ci/run installs it). Skipped where the reference is not installed, so the README's test command
works without it.

Must show: frame hashes within 10 bits of the reference's on >= 95% of frames (same frames sampled, same
timestamps and qualities, the same JSON where the hashes agree), and the same match decision on every pair.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

import video_synth as vs
from tripwire.media.item import Item
from tripwire.signals.hamming import hamming_hex
from tripwire.signals.vpdq import VideoExtractor, VpdqFeature, compare, from_json, prepare, to_json

vpdq = pytest.importorskip("vpdq", reason="Meta's reference vpdq is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("ref")
    out = []
    for seed in (21, 22):
        original = vs.synth(root / f"o{seed}.mp4", seed)
        out.append(original)
        folder = root / f"c{seed}"
        folder.mkdir()
        copies = vs.transforms(original, folder)
        out += [copies["low_bitrate"], copies["half_size"], copies["trimmed_20pct"], copies["webm"]]
    out.append(vs.synth(root / "u30.mp4", 30))
    # NTSC rate (30000/1001): every 29th frame, timestamps in single precision, as the reference computes them
    out.append(vs.write(root / "ntsc.mp4", vs.frames(31, w=320, h=180, fps=30, seconds=6), fps=Fraction(30000, 1001)))
    out.append(vs.synth(root / "wide.mp4", 32, w=640, h=360, fps=25, seconds=6))
    return out


def ours(path: Path) -> list[VpdqFeature]:
    data = path.read_bytes()
    return from_json(VideoExtractor().extract(Item(str(path), data, len(data)))["vpdq"])


def reference(path: Path) -> list[VpdqFeature]:
    return [VpdqFeature(f.hex, f.quality, f.timestamp) for f in vpdq.computeHash(str(path), seconds_per_hash=1.0, thread_count=1)]


def test_frame_hashes_agree_with_the_reference(files):
    close = total = 0
    for path in files:
        a, b = ours(path), reference(path)
        assert [str(f.timestamp) for f in a] == [str(float(f"{f.timestamp:.3}")) for f in b], path
        assert len(a) == len(b) > 0
        for x, y in zip(a, b):
            total += 1
            close += hamming_hex(x.pdq_hex, y.pdq_hex) <= 10
            if x.pdq_hex == y.pdq_hex:
                assert str(x) == str(y) and x.quality == y.quality
    assert close >= 0.95 * total, (close, total)


def test_match_decisions_agree_with_the_reference(files):
    mine = {p: prepare(ours(p)) for p in files}
    theirs = {p: prepare(reference(p)) for p in files}
    disagree = [(q.name, c.name) for q in files for c in files
                if compare(mine[q], mine[c]).matches() != compare(theirs[q], theirs[c]).matches()]
    assert not disagree
    assert sum(compare(mine[q], mine[c]).matches() for q in files for c in files) > len(files)  # copies matched
    assert to_json(reference(files[0])) == to_json(ours(files[0]))

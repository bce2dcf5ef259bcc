"""vPDQ, Meta's video hash: the PDQ hash of one frame a second, with each frame's quality and timestamp.

The value is written exactly as python-threatexchange's ``VPDQSignal`` writes it (``vpdq_util.vpdq_to_json``):
a JSON list of ``"<pdq hex>,<quality>,<timestamp>"`` strings, the timestamp in Python's ``{:.3}`` format
(three significant digits: ``0.967``, ``12.0``, ``1.23e+02``), so a hash computed here can be put in an HMA
bank or sent to ThreatExchange, and theirs read here. Frames are sampled as Meta's reference library samples
them (:mod:`tripwire.media.video`); the reference comparison test and ``bench/video.py`` measure agreement.

Two videos are compared as ``vpdq_brute_matcher.match_VPDQ_hash_brute`` compares them: drop repeated frame
hashes, drop frames under the quality floor (50), then the *query-match percentage* is the share of the
query's frames within 31 bits of some frame of the other video, and the *compared-match percentage* the
share of the other video's frames within 31 bits of some query frame. ``VPDQSignal.compare_hash`` calls
it a match at >= 80% and >= 0%. Here the frames that matched also give the time ranges that match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import ItemError
from ..media.item import Item
from ..media.video import VideoReader, is_video_item
from .hamming import hex_to_words, popcount
from .pdq_matrix import pdq_frame
from .unletterbox import trim_uniform_borders

#: python-threatexchange's defaults (``vpdq_util``)
QUALITY_THRESHOLD = 50
DISTANCE_THRESHOLD = 31
QUERY_MATCH_PERCENT = 80.0
COMPARED_MATCH_PERCENT = 0.0
TIMESTAMP_PRECISION = 3
#: the most frames one value may hold (10 hours at one frame a second)
MAX_FRAMES = 36_000
#: PDQ needs at least this many pixels on each side (the reference refuses smaller frames)
MIN_HASHABLE_SIDE = 5
_PDQ_HEX = 64
#: pairs compared per block when matching two videos (bounds the distance matrix's memory)
_BLOCK = 1 << 20


@dataclass(frozen=True)
class VpdqFeature:
    """One sampled frame: its PDQ hash (64 hex), quality (0-100) and time in seconds."""

    pdq_hex: str
    quality: int
    timestamp: float

    def __str__(self) -> str:
        return f"{self.pdq_hex},{self.quality},{self.timestamp:.{TIMESTAMP_PRECISION}}"

    @classmethod
    def parse(cls, text: Any) -> "VpdqFeature":
        """The inverse of ``str``, with threatexchange's checks (``VpdqCompactFeature.from_str``)."""
        if not isinstance(text, str):
            raise ValueError(f"a vPDQ frame is a string, not {type(text).__name__}")
        parts = text.split(",")
        try:
            pdq_hex, quality, timestamp = parts
            feature = cls(pdq_hex.strip().lower(), int(quality), float(timestamp))
            int(feature.pdq_hex, 16)
        except ValueError:
            raise ValueError(f"invalid vPDQ frame {text[:100]!r}") from None
        if len(feature.pdq_hex) != _PDQ_HEX or not 0 <= feature.quality <= 100 or not feature.timestamp >= 0:
            raise ValueError(f"invalid vPDQ frame {text[:100]!r}")
        return feature


def to_json(features: Sequence[VpdqFeature]) -> str:
    """threatexchange's ``vpdq_to_json``: a JSON list of the frames' strings."""
    return json.dumps([str(f) for f in features])


def from_json(text: str) -> list[VpdqFeature]:
    """threatexchange's ``json_to_vpdq`` (empty text: no frames), at most :data:`MAX_FRAMES` frames."""
    try:
        items = json.loads(text or "[]")
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"a vPDQ value is a JSON list of frames: {exc}") from None
    if not isinstance(items, list):
        raise ValueError("a vPDQ value is a JSON list of frames")
    if len(items) > MAX_FRAMES:
        raise ValueError(f"{len(items)} vPDQ frames exceed the cap of {MAX_FRAMES}")
    return [VpdqFeature.parse(s) for s in items]


@dataclass
class PreparedFrames:
    """A video's frames ready for comparison: deduplicated, quality-filtered, as 64-bit words."""

    hexes: list[str]
    timestamps: list[float]
    words: np.ndarray

    def __len__(self) -> int:
        return len(self.hexes)


def prepare(features: Sequence[VpdqFeature], quality: int = QUALITY_THRESHOLD) -> PreparedFrames:
    """threatexchange's brute matcher's order: drop repeated hashes (first kept), then low-quality frames."""
    seen: set[str] = set()
    kept: list[VpdqFeature] = []
    for f in features:
        if f.pdq_hex not in seen:
            seen.add(f.pdq_hex)
            kept.append(f)
    kept = [f for f in kept if f.quality >= quality]
    hexes = [f.pdq_hex for f in kept]
    words = hex_to_words(hexes) if hexes else np.zeros((0, 4), dtype=np.uint64)
    return PreparedFrames(hexes, [f.timestamp for f in kept], words)


@dataclass
class VpdqComparison:
    """How two videos compare (percentages as threatexchange computes them) and where they match."""

    query_match_percent: float
    compared_match_percent: float
    #: the smallest frame distance found (bits); None when no frame matched
    best_distance: int | None
    #: [start, end] seconds of the query (of the compared video) covered by matching frames
    query_ranges: list[list[float]] = field(default_factory=list)
    compared_ranges: list[list[float]] = field(default_factory=list)

    def matches(self, query_match: float = QUERY_MATCH_PERCENT, compared_match: float = COMPARED_MATCH_PERCENT) -> bool:
        """``VPDQSignal.compare_hash``'s decision; nothing matches when no frame did."""
        return (self.best_distance is not None and self.query_match_percent >= query_match
                and self.compared_match_percent >= compared_match)


def compare(query: PreparedFrames, compared: PreparedFrames, distance: int = DISTANCE_THRESHOLD) -> VpdqComparison:
    """Compare two prepared videos (every frame against every frame, in blocks)."""
    if not len(query) or not len(compared):
        return VpdqComparison(0.0, 0.0, None)
    q_hit = np.zeros(len(query), dtype=bool)
    c_hit = np.zeros(len(compared), dtype=bool)
    best = 257
    rows = max(1, _BLOCK // len(compared))
    for start in range(0, len(query), rows):
        block = query.words[start : start + rows]
        d = popcount(block[:, None, :] ^ compared.words[None, :, :]).sum(axis=-1)
        within = d <= distance
        q_hit[start : start + len(block)] = within.any(axis=1)
        c_hit |= within.any(axis=0)
        best = min(best, int(d.min()))
    matched = bool(q_hit.any())
    return VpdqComparison(
        query_match_percent=float(q_hit.sum()) * 100 / len(query),
        compared_match_percent=float(c_hit.sum()) * 100 / len(compared),
        best_distance=best if matched else None,
        query_ranges=time_ranges(query.timestamps, q_hit),
        compared_ranges=time_ranges(compared.timestamps, c_hit))


def time_ranges(timestamps: Sequence[float], hit: np.ndarray) -> list[list[float]]:
    """The matching frames' times as ranges: neighbours in sampling order closer than 1.5 sampling steps
    (the median gap between frames) join one range."""
    order = sorted(range(len(timestamps)), key=lambda i: timestamps[i])
    times = [timestamps[i] for i in order]
    gaps = np.diff(times) if len(times) > 1 else np.array([1.0])
    step = float(np.median(gaps[gaps > 0])) if np.any(gaps > 0) else 1.0
    ranges: list[list[float]] = []
    for i in order:
        if not hit[i]:
            continue
        t = round(float(timestamps[i]), TIMESTAMP_PRECISION)
        if ranges and t - ranges[-1][1] <= 1.5 * step:
            ranges[-1][1] = t
        else:
            ranges.append([t, t])
    return ranges


def hash_frames(reader: VideoReader, seconds_per_sample: float = 1.0, max_side: int | None = None,
                trimmed: list[VpdqFeature] | None = None) -> list[VpdqFeature]:
    """The vPDQ frames of a video: PDQ of each sampled frame. With ``trimmed``, that list receives the frames
    hashed without their solid borders (:func:`~tripwire.signals.unletterbox.trim_uniform_borders`; frames
    without borders as they are): a letterboxed copy's frames hashed so reach the original's."""
    features: list[VpdqFeature] = []
    for frame in reader.frames(seconds_per_sample, max_side):
        if min(frame.rgb.shape[:2]) < MIN_HASHABLE_SIDE:
            raise ItemError("unsupported_media", f"frames of {frame.rgb.shape[1]}x{frame.rgb.shape[0]} pixels are too small to hash")
        hex_, quality = pdq_frame(frame.rgb)
        features.append(VpdqFeature(hex_, quality, frame.timestamp))
        if trimmed is not None:
            inner = trim_uniform_borders(frame.rgb)
            if inner is not None and min(inner.shape[:2]) >= MIN_HASHABLE_SIDE:
                hex_, quality = pdq_frame(inner)
            trimmed.append(VpdqFeature(hex_, quality, frame.timestamp))
    return features


class VideoExtractor:
    """``video`` (what the video is: :class:`~tripwire.media.video.VideoInfo`), ``vpdq`` (its hash) and, when
    most sampled frames have solid borders (a letterboxed copy), ``vpdq_unletterbox`` (the frames hashed
    without them, which the matcher also queries), for video containers and animated GIF/WebP."""

    name = "video"
    version = "1"
    produces = ("video", "vpdq", "vpdq_unletterbox")

    def __init__(self, seconds_per_sample: float = 1.0, max_side: int | None = None) -> None:
        self.seconds_per_sample = seconds_per_sample
        self.max_side = max_side

    def extract(self, item: Item) -> dict[str, object]:
        if not is_video_item(item):
            return {}
        reader = VideoReader(item)
        trimmed: list[VpdqFeature] = []
        try:
            features = hash_frames(reader, self.seconds_per_sample, self.max_side, trimmed)
        finally:
            reader.close()
        out: dict[str, object] = {"video": reader.info.as_dict(), "vpdq": to_json(features)}
        changed = sum(a.pdq_hex != b.pdq_hex for a, b in zip(features, trimmed))
        if features and changed * 2 >= len(features):
            out["vpdq_unletterbox"] = to_json(trimmed)
        return out

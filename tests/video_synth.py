"""Benign synthetic videos for the video tests and bench/video.py: gradients, moving shapes, mild noise.

Nothing here depicts anything: each scene is a smooth colour field with a few coloured rectangles drifting
across it, plus a little noise, and a new scene starts every few seconds. A ``seed`` fixes the content, so two
seeds are two unrelated videos. The transforms are the edits a copy of a video
goes through when it is passed around (re-encoded, scaled, trimmed, letterboxed, converted to WebM).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from PIL import Image

CODECS = {"mp4": "libx264", "webm": "libvpx-vp9", "mkv": "libx264"}


def _field(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A smooth colour field: a 4x3 grid of random colours, upsampled bilinearly."""
    grid = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)


def frames(seed: int, w: int = 240, h: int = 180, fps: int = 10, seconds: float = 10.0,
           scene_s: float = 2.5) -> Iterator[np.ndarray]:
    """RGB frames of one synthetic video: a new scene every ``scene_s`` seconds, shapes drifting slowly."""
    rng = np.random.default_rng(seed)
    n = int(round(fps * seconds))
    per_scene = max(1, int(round(fps * scene_s)))
    for i in range(n):
        if i % per_scene == 0:
            bg = _field(rng, w, h)
            shapes = [(rng.uniform(0, w * 0.7), rng.uniform(0, h * 0.7), int(rng.uniform(w / 10, w / 4)),
                       int(rng.uniform(h / 10, h / 4)), rng.uniform(-w / 25, w / 25), rng.uniform(-h / 25, h / 25),
                       rng.integers(0, 256, 3)) for _ in range(5)]
        img = bg.copy()
        t = (i % per_scene) / fps
        for x0, y0, sw, sh, vx, vy, colour in shapes:
            x, y = int(x0 + vx * t) % (w - sw), int(y0 + vy * t) % (h - sh)
            img[y : y + sh, x : x + sw] = colour
        img += rng.normal(0, 3, img.shape).astype(np.float32)
        yield np.clip(img, 0, 255).astype(np.uint8)


def write(path: str | Path, images: Iterator[np.ndarray] | list[np.ndarray], fps: int | Fraction = 10,
          bit_rate: int | None = None, codec: str | None = None) -> Path:
    """Encode RGB frames into a container chosen by the path's suffix (mp4, webm, mkv)."""
    path = Path(path)
    codec = codec or CODECS[path.suffix.lstrip(".")]
    container = av.open(str(path), "w")
    stream = None
    for img in images:
        if stream is None:
            stream = container.add_stream(codec, rate=fps)
            stream.height, stream.width = img.shape[0] - img.shape[0] % 2, img.shape[1] - img.shape[1] % 2
            stream.pix_fmt = "yuv420p"
            if bit_rate:
                stream.bit_rate = bit_rate
            if codec == "libvpx-vp9":
                stream.options = {"deadline": "realtime", "cpu-used": "8"}
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: stream.height, : stream.width]), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
    if stream is not None:
        for packet in stream.encode():
            container.mux(packet)
    container.close()
    return path


def decoded(path: str | Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def synth(path: str | Path, seed: int, fps: int = 10, bit_rate: int | None = None, **kwargs: float) -> Path:
    """Write synthetic video ``seed`` to ``path`` (``kwargs``: w, h, seconds, scene_s)."""
    return write(path, frames(seed, fps=fps, **kwargs), fps=fps, bit_rate=bit_rate)  # type: ignore[arg-type]


def transforms(original: Path, out: Path, fps: int = 10) -> dict[str, Path]:
    """The copies of ``original`` a matcher must still recognise, written into ``out``."""
    src = decoded(original)
    h, w = src[0].shape[:2]
    cut = len(src) // 5
    bars = h // 6
    letterboxed = [np.concatenate([np.zeros((bars, w, 3), np.uint8), f, np.zeros((bars, w, 3), np.uint8)]) for f in src]
    half = [np.asarray(Image.fromarray(f).resize((w // 2, h // 2), Image.Resampling.BILINEAR)) for f in src]
    copies = {
        "low_bitrate": write(out / "low_bitrate.mp4", src, fps, bit_rate=60_000),
        "half_size": write(out / "half_size.mp4", half, fps),
        "trimmed_20pct": write(out / "trimmed.mp4", src[cut:], fps),
        "letterboxed": write(out / "letterboxed.mp4", letterboxed, fps),
        "webm": write(out / "converted.webm", src, fps),
    }
    copies["webm_to_mp4"] = write(out / "back.mp4", decoded(copies["webm"]), fps)
    return copies

"""Synthesised benign test images (gradients, shapes, noise) and small utilities shared by tests."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def synth_image(seed: int, size: tuple[int, int] = (256, 192)) -> Image.Image:
    """A distinct, textured RGB picture for each seed: a colour gradient with random shapes on it."""
    rng = np.random.default_rng(seed)
    w, h = size
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    c1, c2, c3 = rng.random((3, 3))
    arr = (x * c1 + y * c2 + (1 - x) * (1 - y) * c3) * 200
    arr = arr + rng.normal(0, 6, (h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype("uint8"), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, max(1, w - w // 8))), int(rng.integers(0, max(1, h - h // 8)))
        x1, y1 = x0 + int(rng.integers(1, max(2, w // 2))), y0 + int(rng.integers(1, max(2, h // 2)))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
    return img


def image_bytes(img: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def write_images(folder: Path, count: int, fmt: str = "JPEG", size: tuple[int, int] = (256, 192)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ext = {"JPEG": "jpg", "PNG": "png"}[fmt]
    paths = []
    for i in range(count):
        p = folder / f"img_{i:05d}.{ext}"
        p.write_bytes(image_bytes(synth_image(i, size), fmt))
        paths.append(p)
    return paths


def tripwire(*args: str, input: str | None = None, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real command line in a subprocess."""
    return subprocess.run([sys.executable, "-m", "tripwire", *args], input=input, capture_output=True, text=True,
                          timeout=timeout, env=env)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")

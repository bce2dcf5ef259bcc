"""Bounded decode memory (issue 11): a small PNG declaring a huge canvas must not take gigabytes.

A 570 KB PNG of 14000x14000 pixels peaked at 6.1 GB RSS in ``tripwire inspect``. Images above
``limits.max_decode_pixels`` are now decoded reduced (PNG strip by strip, JPEG by DCT scaling); the
reduced PNG decode must equal a full decode box-reduced by the same factor, pixel for pixel.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tripwire.config import Limits
from tripwire.errors import ItemError
from tripwire.media.image import _to_rgb, load_full, load_oriented
from tripwire.media.item import Item
from tripwire.media.reduced import reduce_factor

# the source tree the child runs (TRIPWIRE_TEST_CHILD_SRC: an older checkout, to see the test fail there)
SRC = os.environ.get("TRIPWIRE_TEST_CHILD_SRC") or str(Path(__file__).resolve().parents[1] / "src")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def big_png(path: Path, width: int, height: int) -> None:
    """A benign RGB test pattern (bands and a gradient block), streamed row by row: small file, huge canvas."""
    packer = zlib.compressobj(6)
    parts = []
    gradient = (np.arange(width, dtype=np.uint32) * 255 // max(1, width - 1)).astype(np.uint8)
    for y in range(height):
        row = np.empty((width, 3), dtype=np.uint8)
        row[:] = (30, 90, 160) if (y // 500) % 2 else (200, 180, 40)
        if height // 3 <= y < 2 * height // 3:
            row[width // 4 : width // 2, 0] = gradient[width // 4 : width // 2]
        parts.append(packer.compress(b"\x00" + row.tobytes()))
    parts.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b""))


def test_inspect_of_a_huge_png_stays_within_memory(tmp_path):
    # 8000x8000 = 64 million pixels, over the default decode cap: before the fix ~2 GB peak, now ~0.25 GB
    path = tmp_path / "canvas.png"
    big_png(path, 8000, 8000)
    assert path.stat().st_size < 2_000_000
    child = (
        "import resource, runpy, sys\n"
        "sys.argv = ['tripwire', 'inspect', sys.argv[1], '--json']\n"
        "try:\n"
        "    runpy.run_module('tripwire', run_name='__main__')\n"
        "finally:\n"
        "    print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True, text=True, env=env, timeout=300)
    peak_kib = int(done.stderr.rsplit("MAXRSS", 1)[1].split()[0])
    assert peak_kib < 1_500_000, f"peak RSS {peak_kib / 1024:.0f} MiB"
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout)
    record = record[0] if isinstance(record, list) else record
    assert record["error"] is None
    assert len(record["pdq"]) == 64


def _png_bytes(img: Image.Image, **save: object) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG", **save)
    return out.getvalue()


def _pattern(width: int, height: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 3) % 256, (y * 5) % 256, ((x + y) * 2) % 256], axis=-1)
    return (base + rng.integers(0, 40, size=base.shape)).clip(0, 255).astype(np.uint8)


def _images() -> dict[str, Image.Image]:
    rgb = _pattern(301, 203)
    alpha = ((np.arange(301)[None, :] + np.arange(203)[:, None]) % 256).astype(np.uint8)
    grey16 = (rgb[:, :, 0].astype(np.uint16) * 257 + 3).astype(np.uint16)
    palette = Image.fromarray(rgb).quantize(16)
    palette.info["transparency"] = 2
    return {
        "rgb": Image.fromarray(rgb),
        "rgba": Image.fromarray(np.dstack([rgb, alpha])),
        "la": Image.fromarray(np.dstack([rgb[:, :, 0], alpha]), "LA"),
        "grey": Image.fromarray(rgb[:, :, 1]),
        "bilevel": Image.fromarray(rgb[:, :, 2]).convert("1"),
        "palette4": Image.fromarray(rgb).quantize(16),
        "palette_trns": palette,
        "grey16": Image.fromarray(grey16),
    }


@pytest.mark.parametrize("name", sorted(_images()))
def test_reduced_png_equals_full_decode_reduced(name):
    img = _images()[name]
    data = _png_bytes(img, bits=4) if name == "palette4" else _png_bytes(img)
    budget = 301 * 203 // 7
    item = Item("x.png", data, len(data), limits=Limits(max_decode_pixels=budget))
    reduced = load_oriented(item)
    factor = reduce_factor(301, 203, budget)
    assert factor > 1 and reduced.size == (-(-301 // factor), -(-203 // factor))
    assert reduced.size[0] * reduced.size[1] <= budget
    full = Image.open(io.BytesIO(data))
    full.load()
    expected = np.asarray(_to_rgb(full).reduce(factor) if name != "grey16" else _to_rgb(full.convert("I").reduce(factor)))
    got = np.asarray(reduced)
    if name == "grey16":  # scaled by the reduced image's peak, not the full one's
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2
    else:
        assert np.array_equal(got, expected)
    with pytest.raises(ItemError) as info:
        load_full(Item("x.png", data, len(data), limits=Limits(max_decode_pixels=budget)))
    assert info.value.code == "too_large"


def test_reduced_16_bit_colour_png():
    rgb = _pattern(130, 90).astype(np.uint16) * 257 + np.uint16(7)
    out = io.BytesIO()
    # Pillow cannot write 16-bit RGB: build the PNG by hand (filter Sub on every row, so strips chain)
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb)
    ihdr = struct.pack(">IIBBBBB", 130, 90, 16, 2, 0, 0, 0)
    out.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))
    data = out.getvalue()
    item = Item("x.png", data, len(data), limits=Limits(max_decode_pixels=130 * 90 // 5))
    got = np.asarray(load_oriented(item))
    full = Image.open(io.BytesIO(data))
    full.load()
    factor = reduce_factor(130, 90, 130 * 90 // 5)
    assert np.array_equal(got, np.asarray(_to_rgb(full).reduce(factor)))


def test_interlaced_png_uses_its_first_pass():
    img = Image.fromarray(_pattern(400, 320))
    data = _interlaced(img)
    item = Item("x.png", data, len(data), limits=Limits(max_decode_pixels=400 * 320 // 70))
    got = load_oriented(item)
    expected = np.asarray(img)[::8, ::8]
    assert np.array_equal(np.asarray(got), np.asarray(Image.fromarray(expected).reduce(2)))


def _interlaced(img: Image.Image) -> bytes:
    """An Adam7 PNG of ``img`` (Pillow does not write interlaced PNGs), filter type 0."""
    arr = np.asarray(img)
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = arr[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + row.tobytes() for row in sub)
    h, w = arr.shape[:2]
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def test_other_formats_over_the_budget_are_refused_not_decoded():
    out = io.BytesIO()
    Image.fromarray(_pattern(200, 150)).save(out, "WEBP", lossless=True)
    data = out.getvalue()
    item = Item("x.webp", data, len(data), limits=Limits(max_decode_pixels=200 * 150 // 4))
    with pytest.raises(ItemError) as info:
        load_oriented(item)
    assert info.value.code == "too_large"


def test_large_jpeg_is_drafted_within_the_budget():
    out = io.BytesIO()
    Image.fromarray(_pattern(640, 480)).save(out, "JPEG", quality=90)
    data = out.getvalue()
    item = Item("x.jpg", data, len(data), limits=Limits(max_decode_pixels=640 * 480 // 10))
    img = load_oriented(item)
    assert img.size == (160, 120) and img.mode == "RGB"


def test_ordinary_images_decode_exactly_as_before():
    img = Image.fromarray(_pattern(301, 203))
    data = _png_bytes(img)
    item = Item("x.png", data, len(data))
    assert np.array_equal(np.asarray(load_oriented(item, 512)), np.asarray(img))
    assert load_full(item).size == (301, 203)


def test_exif_thumbnail_bomb_is_not_decoded():
    from tripwire.provenance.exif import THUMBNAIL_MAX_PIXELS, thumbnail_facts

    out = io.BytesIO()
    Image.new("L", (4096, 4096), 128).save(out, "JPEG", quality=20)
    thumb = out.getvalue()
    # a little-endian TIFF: IFD0 with no entries, IFD1 with JPEGInterchangeFormat(+Length) pointing at the JPEG
    ifd1_at = 8 + 2 + 4
    entries = struct.pack("<HHII", 0x0201, 4, 1, ifd1_at + 2 + 2 * 12 + 4) + struct.pack("<HHII", 0x0202, 4, 1, len(thumb))
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + struct.pack("<I", ifd1_at)
    tiff += struct.pack("<H", 2) + entries + struct.pack("<I", 0) + thumb
    assert 4096 * 4096 > THUMBNAIL_MAX_PIXELS
    facts = thumbnail_facts(tiff, None)
    assert facts["present"] is True
    assert "not decoded" in facts.get("problem", "")

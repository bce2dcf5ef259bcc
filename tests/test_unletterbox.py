"""Unletterbox: solid bands from padding are found on any side, in any colour, through JPEG noise."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from tripwire.signals.pdq import pdq_of_array
from tripwire.signals.unletterbox import find_uniform_borders, trim_uniform_borders

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


def content(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A busy synthetic picture whose edges are not uniform: gradient + noise + shapes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=2)
    img = np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        draw.ellipse([x0, y0, x0 + 40 + int(rng.integers(0, 60)), y0 + 30 + int(rng.integers(0, 50))],
                     fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return np.asarray(pil)


def pad(img: np.ndarray, top: int, bottom: int, left: int, right: int, colour) -> np.ndarray:
    h, w = img.shape[:2]
    out = np.empty((h + top + bottom, w + left + right, 3), dtype=np.uint8)
    out[:] = colour
    out[top : top + h, left : left + w] = img
    return out


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


@pytest.mark.parametrize(
    "bands",
    [(48, 48, 0, 0), (0, 0, 64, 64), (30, 30, 40, 40), (0, 25, 0, 0), (20, 0, 0, 50), (5, 0, 0, 0)],
)
@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (37, 140, 201)])
def test_exact_bands_any_side_any_colour(bands, colour):
    img = content()
    padded = pad(img, *bands, colour)
    h, w = padded.shape[:2]
    assert find_uniform_borders(padded) == (bands[0], h - bands[1], bands[2], w - bands[3])
    trimmed = trim_uniform_borders(padded)
    assert trimmed is not None and np.array_equal(trimmed, img)


@pytest.mark.parametrize("quality", [90, 70, 50])
@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (200, 60, 90)])
def test_jpeg_noise_at_the_edges(quality, colour):
    img = content(seed=3)
    padded = jpeg(pad(img, 60, 60, 0, 0, colour), quality)
    box = find_uniform_borders(padded)
    assert box is not None
    top, bottom, left, right = box
    assert abs(top - 60) <= 2 and abs(bottom - 300) <= 2 and (left, right) == (0, 320)
    trimmed = trim_uniform_borders(padded)
    original, _ = pdq_of_array(img)
    assert hamming(pdq_of_array(np.ascontiguousarray(trimmed))[0], original) <= 31  # matchable again
    assert hamming(pdq_of_array(padded)[0], original) > 31  # padding alone defeats plain PDQ


def test_noisy_band_and_speckles_are_tolerated():
    img = content(seed=5)
    padded = pad(img, 0, 0, 50, 50, (0, 0, 0)).astype(np.int16)
    rng = np.random.default_rng(1)
    padded[:, :50] += rng.integers(0, 12, padded[:, :50].shape)  # sensor-like noise in one band
    padded[100:103, 10:12] = 255  # a few speckles
    padded = np.clip(padded, 0, 255).astype(np.uint8)
    assert find_uniform_borders(padded) == (0, 240, 50, 370)


@pytest.mark.parametrize("maker", ["noise", "content", "gradient"])
def test_images_without_borders_give_none(maker):
    rng = np.random.default_rng(7)
    if maker == "noise":
        img = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    elif maker == "content":
        img = content(seed=11)
    else:
        img = np.repeat(np.linspace(0, 255, 300, dtype=np.uint8)[None, :, None], 200, axis=0).repeat(3, axis=2)
    assert find_uniform_borders(img) is None
    assert trim_uniform_borders(jpeg(img, 85)) is None


def test_real_photos_without_padding_give_none():
    photos = sorted((FIXTURES / "camera" / "gps").glob("*.jpg"))[:4]
    assert photos
    for photo in photos:
        with Image.open(photo) as im:
            assert trim_uniform_borders(np.asarray(im.convert("RGB"))) is None, photo.name


def test_never_trims_to_nothing_or_a_sliver():
    assert trim_uniform_borders(np.full((100, 100, 3), 128, np.uint8)) is None  # one colour
    speck = np.random.default_rng(2).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    small = pad(speck, 90, 90, 90, 90, (255, 255, 255))  # content 10% of each side
    assert trim_uniform_borders(small) is None
    ok = trim_uniform_borders(small, min_keep=0.05)
    assert ok is not None and ok.shape[:2] == (20, 20)
    for bands in [(0, 60, 0, 0), (30, 30, 30, 30), (70, 0, 0, 0)]:
        out = trim_uniform_borders(pad(content(), *bands, (0, 0, 0)))
        assert out is not None and out.shape[0] >= 0.25 * (240 + bands[0] + bands[1])
    assert trim_uniform_borders(np.zeros((4, 4, 3), np.uint8)) is None


def test_min_band_ignores_hairlines():
    img = pad(content(), 1, 0, 0, 0, (0, 0, 0))
    assert trim_uniform_borders(img) is None
    assert find_uniform_borders(img, min_band=0.0) is None  # still needs 2 pixels
    assert find_uniform_borders(pad(content(), 3, 0, 0, 0, (0, 0, 0)), min_band=0.0) == (3, 243, 0, 320)


def test_own_border_survives_padding_of_another_colour():
    """A picture with its own black top border, pillarboxed in white: only the white goes."""
    img = pad(content(200, 320), 20, 0, 0, 0, (0, 0, 0))
    padded = pad(img, 0, 0, 60, 60, (255, 255, 255))
    assert find_uniform_borders(padded) == (0, 220, 60, 380)


def test_grey_and_rgba_inputs():
    rgb = pad(content(), 40, 40, 0, 0, (10, 10, 10))
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    assert find_uniform_borders(grey) == (40, 280, 0, 320)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert find_uniform_borders(rgba) == (40, 280, 0, 320)
    with pytest.raises(ValueError):
        find_uniform_borders(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ValueError):
        find_uniform_borders(np.zeros((10, 10, 3), np.float32))


def test_returns_a_view_not_a_copy():
    padded = pad(content(), 40, 40, 0, 0, (0, 0, 0))
    trimmed = trim_uniform_borders(padded)
    assert trimmed is not None and np.shares_memory(trimmed, padded)

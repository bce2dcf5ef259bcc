"""Stable Diffusion dwtDct watermark: soft decoder, statistical decision, applicability, on the shared fixtures.

fixtures/watermark/manifest.json is the ground truth (mark x variant). Detection floors below are the counts
measured with this decoder (bench/watermark.py prints the full table next to the reference decoder's).
"""

from __future__ import annotations

import io
import json
import math
import time
from collections import Counter
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pywt
from PIL import Image

from tripwire.media.item import Item
from tripwire.provenance import watermark as wm

# no pytest import: bench/watermark.py imports embed() from here in an environment without pytest
FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
MARKS = FIXTURES / "watermark"
SCHEMES = ("sd1", "sd2", "sdxl")


def manifest() -> list[dict]:
    return json.loads((MARKS / "manifest.json").read_text())["files"]


def item_of(path: Path) -> Item:
    data = path.read_bytes()
    return Item(path=str(path), data=data, size=len(data))


@lru_cache(maxsize=None)
def evidence_of(name: str) -> tuple[dict, ...]:
    """watermark_evidence() of one fixture, decoded once per test session."""
    return tuple(wm.watermark_evidence(item_of(MARKS / name)))


def by_scheme(entries) -> dict[str, dict]:
    out = {e["scheme"]: e for e in entries}
    assert set(out) == set(SCHEMES)
    return out


def embed(bgr: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """invisible-watermark 0.2.0 ``EmbedMaxDct.encode`` (dwtDct, U channel, step 36), vectorised.

    Same arithmetic as the reference, quirks included (detail bands swapped on the inverse DWT, float->uint8
    truncation); bench/watermark.py checks it against the installed library. Used to mark benign pictures at
    sizes and channel orders the fixtures do not cover.
    """
    bits = np.asarray(bits, dtype=np.float64)
    rows, cols = bgr.shape[:2]
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
    ca, (h1, v1, d1) = pywt.dwt2(yuv[: rows // 4 * 4, : cols // 4 * 4, 1], "haar")
    r, c = ca.shape[0] // 4, ca.shape[1] // 4
    blk = ca[: r * 4, : c * 4].reshape(r, 4, c, 4).transpose(0, 2, 1, 3).reshape(r * c, 16).copy()
    idx = np.arange(r * c)
    pos = np.abs(blk[:, 1:]).argmax(axis=1) + 1
    val = blk[idx, pos]
    new = (np.abs(val) // 36 + 0.25 + 0.5 * bits[idx % bits.size]) * 36
    blk[idx, pos] = np.where(val >= 0, new, -new)
    ca[: r * 4, : c * 4] = blk.reshape(r, c, 4, 4).transpose(0, 2, 1, 3).reshape(r * 4, c * 4)
    yuv[: rows // 4 * 4, : cols // 4 * 4, 1] = pywt.idwt2((ca, (v1, h1, d1)), "haar")
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)


def base_rgb(name: str = "none_1024_b1_png.png") -> np.ndarray:
    return np.asarray(Image.open(MARKS / name).convert("RGB"))


def jpeg(rgb: np.ndarray, quality: int, subsampling: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ the fixtures


def test_no_detection_on_any_unmarked_file():
    """Zero false positives: every `none` file, every variant, every scheme, both channel orders."""
    unmarked = [f for f in manifest() if f["mark"] == "none"]
    assert len(unmarked) == 32 and {f["variant"] for f in unmarked} == {"png", "jpg90", "jpg75", "half"}
    for f in unmarked:
        for e in evidence_of(f["file"]):
            assert e["source"] == "watermark" and e["detected"] is False, (f["file"], e)
            if "skipped" not in e:
                assert e["p_value"] > e["p_threshold"], (f["file"], e)


def test_marked_png_originals_all_detected_with_the_right_scheme_only():
    """All 12 marked PNGs: the embedded scheme detected (BGR order, >= 98% bits), no other scheme."""
    marked = [f for f in manifest() if f["mark"] != "none" and f["variant"] == "png"]
    assert len(marked) == 12
    for f in marked:
        ev = by_scheme(evidence_of(f["file"]))
        hit = ev[f["mark"]]
        assert hit["detected"] is True, (f["file"], hit)
        assert hit["bits"] == f["payload_bits"] and hit["channel_order"] == "bgr"
        assert hit["bit_accuracy"] >= 0.98 and hit["p_value"] <= hit["p_threshold"]
        assert hit["matched_bits"] == round(hit["bit_accuracy"] * hit["bits"])
        for other in set(SCHEMES) - {f["mark"]}:
            assert ev[other]["detected"] is False, (f["file"], ev[other])


def test_detection_rate_per_mark_and_variant_meets_measured_floor():
    """Floors = counts measured with this decoder (of 4 files each); the reference decoder, same rule, finds
    png 3/2/3, jpg90 0/0/1, jpg75 0/0/0 (bench/watermark.py). `half` defeats the method: nothing to find."""
    floors = {
        ("sd1", "png"): 4, ("sd2", "png"): 4, ("sdxl", "png"): 4,
        ("sd1", "jpg90"): 4, ("sd2", "jpg90"): 1, ("sdxl", "jpg90"): 4,
        ("sd1", "jpg75"): 0, ("sd2", "jpg75"): 0, ("sdxl", "jpg75"): 1,
    }  # fmt: skip
    found: Counter = Counter()
    wrong: list[tuple[str, str]] = []
    for f in manifest():
        if f["mark"] == "none":
            continue
        for e in evidence_of(f["file"]):
            if e["detected"] and e["scheme"] == f["mark"]:
                found[(f["mark"], f["variant"])] += 1
            elif e["detected"]:
                wrong.append((f["file"], e["scheme"]))
    assert not wrong, wrong
    for key, floor in floors.items():
        assert found[key] >= floor, (key, found[key], floor)
    assert sum(found[(m, "jpg90")] for m in SCHEMES) >= 9  # reference: 1
    assert all(found[(m, "half")] == 0 for m in SCHEMES)  # 50% downscale: decodes to chance, as it should


def test_reference_bits_equal_invisible_watermark_output():
    """reference_bits() reproduces imwatermark 0.2.0 WatermarkDecoder('bits', n).decode(bgr, 'dwtDct') bit for
    bit; expected values were produced with the library (bench extra), including its all-ones/all-zeros
    outputs on unmarked or recompressed files, which show the bias a raw vote has."""
    cases = [
        ("sd1_512_b0_png.png", 136, "bgr", "fffdef63fd7fffffffffff77e9ff7fffff"),
        ("sd2_768_b1_jpg90.jpg", 32, "bgr", "7f4003bf"),
        ("sdxl_1024_b3_jpg75.jpg", 48, "rgb", "ffffffffffff"),
        ("none_512_b2_png.png", 48, "bgr", "000000000000"),
        ("sdxl_1024_b2_png.png", 48, "rgb", "4c136f844e61"),
    ]
    for name, n, order, hexbits in cases:
        rgb = base_rgb(name)
        arr = np.ascontiguousarray(rgb[:, :, ::-1] if order == "bgr" else rgb)
        got = np.packbits(wm.reference_bits(arr, n)).tobytes().hex()
        assert got == hexbits, name


# ----------------------------------------------------------------------------- synthesised marked images


def test_rgb_order_mark_on_a_non_square_size_is_found_with_its_order():
    """diffusers' SDXL watermarker hands invisible-watermark an RGB array: the mark sits in the "rgb" order."""
    crop = np.ascontiguousarray(base_rgb()[:640, :1024])
    marked = embed(crop.copy(), wm.payload_bits("sdxl"))  # RGB in, RGB out
    ev = by_scheme(wm.detect(marked))
    assert ev["sdxl"]["detected"] and ev["sdxl"]["channel_order"] == "rgb" and ev["sdxl"]["bit_accuracy"] == 1.0
    assert not ev["sd1"]["detected"] and not ev["sd2"]["detected"]
    # the scripts' BGR order on a portrait SD 1.x size, saved as a 4:2:0 JPEG q90 and read through an Item
    bgr = np.ascontiguousarray(base_rgb("none_1024_b3_png.png")[:768, :512, ::-1])
    rgb = np.ascontiguousarray(embed(bgr, wm.payload_bits("sd1"))[:, :, ::-1])
    data = jpeg(rgb, 90, 2)
    ev = by_scheme(wm.watermark_evidence(Item("sd1.jpg", data, len(data))))
    assert ev["sd1"]["detected"] and ev["sd1"]["channel_order"] == "bgr", ev["sd1"]
    assert not ev["sd2"]["detected"] and not ev["sdxl"]["detected"]


def test_decode_bits_soft_scores_read_the_payload():
    bgr = np.ascontiguousarray(base_rgb("sd2_768_b0_png.png")[:, :, ::-1])
    scores = wm.decode_bits(bgr, 32)
    assert scores.shape == (32,)
    ones = wm.payload_bits("sd2")
    assert np.array_equal(scores > 0, ones)
    # read with another payload length the blocks mix bits: no longer the payload, nor the other schemes'
    for scheme in ("sd1", "sdxl"):
        other = wm.payload_bits(scheme)
        k = int(np.count_nonzero((wm.decode_bits(bgr, other.size) > 0) == other))
        assert wm.binomial_tail(k, other.size) > 1e-3


def test_undoing_chroma_upsampling_recovers_the_lowpass_band():
    """A 4:2:0 JPEG at q100 (no quantisation to speak of) blurs the U LL band by [1/8, 3/4, 1/8]; undoing it
    must bring the band much closer to the original's, 4:4:4 must not need it."""
    rgb = base_rgb("sdxl_1024_b1_png.png")[:512, :512].copy()
    original = wm._haar_ll(wm._u_channel(rgb, cv2.COLOR_RGB2YUV))

    def rms_after(data: bytes, blur) -> float:
        dec = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        ll = wm._undo_upsampling(wm._haar_ll(wm._u_channel(dec, cv2.COLOR_RGB2YUV)), blur)
        return float(np.sqrt(np.mean((ll - original) ** 2)))

    sub = jpeg(rgb, 100, 2)
    assert wm.chroma_blur_of("image/jpeg", sub) == (True, True)
    plain, undone = rms_after(sub, (False, False)), rms_after(sub, (True, True))
    assert undone < 0.75 * plain, (plain, undone)
    full = jpeg(rgb, 100, 0)
    assert wm.chroma_blur_of("image/jpeg", full) == (False, False)
    assert rms_after(full, (False, False)) < plain


def test_inverse_filter_is_exact_on_a_blurred_signal():
    rng = np.random.default_rng(3)
    x = rng.normal(260, 20, (40, 56))
    k = np.array([0.125, 0.75, 0.125])
    y = cv2.sepFilter2D(x, cv2.CV_64F, k, k, borderType=cv2.BORDER_REPLICATE)  # libjpeg: edge replicated
    assert np.allclose(wm._undo_upsampling(y, (True, True)), x, atol=1e-4)
    yh = cv2.sepFilter2D(x, cv2.CV_64F, k, np.array([1.0]), borderType=cv2.BORDER_REPLICATE)
    assert np.allclose(wm._undo_upsampling(yh, (False, True)), x, atol=1e-4)


def test_chroma_blur_of_formats():
    rgb = base_rgb()[:256, :256].copy()
    assert wm.chroma_blur_of("image/jpeg", jpeg(rgb, 90, 1)) == (False, True)  # 4:2:2
    for lossless, expected in ((False, (True, True)), (True, (False, False))):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "WEBP", lossless=lossless, quality=90)
        assert wm.chroma_blur_of("image/webp", buf.getvalue()) == expected
    assert wm.chroma_blur_of("image/png", b"\x89PNG\r\n\x1a\n") == (False, False)


def test_synthetic_unmarked_pictures_are_not_detected():
    """Flat colour, gradients, noise, stripes on the bit period: content with no mark never reaches the bar."""
    rng = np.random.default_rng(7)
    h, w = 768, 768
    x = np.linspace(0, 255, w)[None, :]
    pictures = {
        "flat": np.full((h, w, 3), (90, 140, 200), np.uint8),
        "gradient": np.stack(np.broadcast_arrays(x, x.T, 255 - x), -1).astype(np.uint8),
        "noise": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        # vertical stripes with the period of the SD 2 bit cycle (32 blocks of 8 px)
        "stripes": np.repeat(np.where((np.arange(w) // 8) % 32 < 13, 200, 40)[None, :, None], h, 0)
        .repeat(3, 2)
        .astype(np.uint8),
    }
    for name, pic in pictures.items():
        for e in wm.detect(pic):
            assert not e["detected"], (name, e)
    flat = by_scheme(wm.detect(pictures["flat"]))
    assert all(e["p_value"] == 1.0 and e["matched_bits"] == 0 for e in flat.values())  # no information


# -------------------------------------------------------------------------------- statistics and API


def test_binomial_tail_exact():
    assert wm.binomial_tail(0, 32) == 1.0 and wm.binomial_tail(33, 32) == 0.0
    assert wm.binomial_tail(32, 32) == 2.0**-32
    assert math.isclose(wm.binomial_tail(17, 32), 0.5 - 601080390 / 2**33, rel_tol=1e-12)
    assert wm.binomial_tail(136, 136) == 2.0**-136
    # thresholds the default alpha implies (1e-6 over 6 tries)
    thr = wm.DEFAULT_ALPHA / 6
    assert wm.binomial_tail(30, 32) <= thr < wm.binomial_tail(29, 32)
    assert wm.binomial_tail(42, 48) <= thr < wm.binomial_tail(41, 48)
    assert wm.binomial_tail(98, 136) <= thr < wm.binomial_tail(97, 136)


def test_payloads():
    assert np.packbits(wm.payload_bits("sd1")).tobytes() == b"StableDiffusionV1"
    assert wm.payload_bits("sd2").size == 32 and wm.payload_bits("sdxl").size == 48
    assert np.packbits(wm.payload_bits("sdxl")).tobytes().hex() == "b3ec907bb19e"
    try:
        wm.detect(np.zeros((256, 256, 3), np.uint8), ["sd3"])
    except ValueError as exc:
        assert "sd3" in str(exc)
    else:
        raise AssertionError("an unknown scheme must be refused")


def test_evidence_fields_are_json_and_complete():
    ev = wm.watermark_evidence(item_of(MARKS / "sdxl_1024_b2_jpg90.jpg"))
    json.dumps(ev)
    for e in ev:
        assert {"source", "scheme", "detected", "bit_accuracy", "p_value", "channel_order", "bits"} <= set(e)
        assert 0.0 <= e["bit_accuracy"] <= 1.0 and 0.0 <= e["p_value"] <= 1.0
        assert e["channel_order"] in ("bgr", "rgb")


# ------------------------------------------------------------------------------------ skip reasons


def skipped(entries) -> set[str]:
    entries = list(entries)
    assert [e["scheme"] for e in entries] == list(SCHEMES)
    assert all(e["detected"] is False and e["source"] == "watermark" for e in entries)
    return {e["skipped"] for e in entries}


def test_camera_size_photo_is_skipped_without_decoding():
    item = item_of(FIXTURES / "camera" / "mobile" / "HMD_Nokia_8.3_5G.jpg")  # 4608x1976
    start = time.perf_counter()
    reasons = skipped(wm.watermark_evidence(item))
    assert time.perf_counter() - start < 1.0
    assert item._decoded is None  # header only: no pixel was decoded
    (reason,) = reasons
    assert "4608x1976" in reason and "larger than any generator output" in reason


def test_photo_sizes_that_pass_the_side_rule_are_skipped_from_the_header():
    """3-4 MP photo sizes are multiples of 8 with sides <= 2048, but larger than any generator output: not decoded."""
    for width, height in ((2048, 1536), (1536, 2048), (1920, 1920), (2000, 2000)):
        buf = io.BytesIO()
        Image.new("RGB", (width, height), (90, 120, 150)).save(buf, "JPEG", quality=90)
        item = Item("photo.jpg", buf.getvalue(), buf.tell())
        (reason,) = skipped(wm.watermark_evidence(item))
        assert f"{width}x{height}" in reason and "larger than any generator output" in reason
        assert item._decoded is None and not item._oriented  # header only
    # the generators' own sizes still apply: SD 1.x/2.x, SDXL and its extreme buckets, a large request
    for size in ((512, 512), (768, 768), (1024, 1024), (1216, 832), (2048, 512), (512, 2048), (1536, 1536)):
        assert wm.applicability(*size) is None, size


def test_other_skip_reasons():
    (reason,) = skipped(wm.watermark_evidence(Item("notes.txt", b"plain text, not a picture", 25)))
    assert reason.startswith("not an image")
    (reason,) = skipped(wm.watermark_evidence(item_of(FIXTURES / "camera" / "Canon_40D.jpg")))  # 100x68
    assert "too small" in reason
    (reason,) = skipped(wm.watermark_evidence(item_of(FIXTURES / "camera" / "orientation" / "landscape_1.jpg")))
    assert "600x450 is not a multiple of 8" in reason  # not a generation size
    grey = io.BytesIO()
    Image.fromarray(base_rgb()[:512, :512, 1]).save(grey, "PNG")
    (reason,) = skipped(wm.watermark_evidence(Item("grey.png", grey.getvalue(), grey.tell())))
    assert "no colour channels" in reason
    data = (MARKS / "sd1_512_b0_jpg90.jpg").read_bytes()
    (reason,) = skipped(wm.watermark_evidence(Item("truncated.jpg", data[: len(data) // 3], len(data) // 3)))
    assert reason.startswith("image not decodable: decode_error")


def test_malformed_files_never_crash():
    for path in sorted((FIXTURES / "malformed").iterdir()):
        entries = wm.watermark_evidence(item_of(path))
        assert [e["scheme"] for e in entries] == list(SCHEMES) and not any(e["detected"] for e in entries)


def test_camera_fixtures_never_detected():
    """Every camera original: skipped or decoded, never a detection (the 640x480 ones are decoded)."""
    decoded = 0
    for path in sorted((FIXTURES / "camera").rglob("*.jpg")):
        for e in wm.watermark_evidence(item_of(path)):
            assert not e["detected"], (path.name, e)
            decoded += "skipped" not in e
    assert decoded >= 3 * 9  # at least the nine 640x480 GPS photos were actually tried


def test_provenance_extractor_reports_the_mark_as_ai_generated_evidence():
    """The real scan path: the provenance extractor calls watermark_evidence and the verdict uses it."""
    from tripwire.config import Config
    from tripwire.provenance.extractor import ProvenanceExtractor

    facts = ProvenanceExtractor(Config()).extract(item_of(MARKS / "sdxl_1024_b1_jpg90.jpg"))
    json.dumps(facts)
    marks = [e for e in facts["provenance"]["evidence"] if e["source"] == "watermark"]
    assert [e["scheme"] for e in marks] == list(SCHEMES)
    assert [e["scheme"] for e in marks if e["detected"]] == ["sdxl"]
    assert facts["provenance"]["label"] == "ai_generated"

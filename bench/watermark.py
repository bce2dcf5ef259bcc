"""Stable Diffusion dwtDct watermark: tripwire's soft decoder vs invisible-watermark's decoder, same rule.

    python bench/watermark.py [--no-analysis] [--no-null] [--rounds 5]

Both decoders read ../shared/fixtures/watermark (manifest.json = ground truth: mark x variant) and the SAME
statistical rule decides for both: per scheme and channel order (BGR, RGB) the decoded bits are compared with
the payload, p = P(Binomial(n, 1/2) >= matches), a scheme is detected when its best p <= 1e-6 / 6 (3 schemes x
2 orders, Bonferroni). The reference's bits are ``imwatermark.WatermarkDecoder('bits', n).decode(arr,
'dwtDct')``; tripwire's are the signs of ``decode_bits`` (what ``watermark_evidence`` runs).

Sections:
  1. detections / files and mean bit accuracy per mark and variant, false positives on the unmarked controls;
  2. what limits detection after JPEG: the 12 marked PNGs re-encoded by Pillow at q100/q90/q75 with 4:4:4
     and 4:2:0 chroma; bit accuracy of the reference, of tripwire without undoing the chroma upsampling, and
     of tripwire; plus, where the unmarked original exists (sd1 at 512, sdxl at 1024), how often the
     embedded coefficient is still its block's largest and how far JPEG moved its value;
  3. null calibration: unmarked camera photos cut to generator sizes (PNG and JPEG q90), share of tries
     with p <= 1e-2 / 1e-3 for both decoders (a calibrated test gives at most the nominal share);
  4. time per image (median of --rounds) at the fixture sizes: tripwire's full try set (3 schemes x 2
     orders) vs the reference's 6 decodes, on already-decoded pixels.

invisible-watermark is a bench-only peer: ``bench/.venv/bin/pip install --no-deps invisible-watermark==0.2.0``
(its metadata pulls torch, used only by its rivaGan method; an empty stand-in module is inserted when torch
is absent so that ``import imwatermark`` succeeds).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
import types
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
MARKS = FIXTURES / "watermark"
sys.path.insert(0, str(REPO / "src"))

import cv2  # noqa: E402

from tripwire.media.item import Item  # noqa: E402
from tripwire.provenance import watermark as wm  # noqa: E402

SCHEMES = ("sd1", "sd2", "sdxl")
VARIANTS = ("png", "jpg90", "jpg75", "half")
THRESHOLD = wm.DEFAULT_ALPHA / (2 * len(SCHEMES))


def import_reference():
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.modules["torch"] = types.ModuleType("torch")  # imwatermark.rivaGan imports it; dwtDct never uses it
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError:
        sys.exit("invisible-watermark is not installed: bench/.venv/bin/pip install --no-deps invisible-watermark==0.2.0")
    return WatermarkDecoder, WatermarkEncoder


WatermarkDecoder, WatermarkEncoder = import_reference()


# ------------------------------------------------------------------------------------------ decoders


def ref_tries(rgb: np.ndarray, schemes=SCHEMES) -> dict[str, tuple[float, float]]:
    """scheme -> (best p, bit accuracy) over both channel orders, reference hard bits."""
    orders = (np.ascontiguousarray(rgb[:, :, ::-1]), np.ascontiguousarray(rgb))
    out = {}
    for scheme in schemes:
        expected = wm.payload_bits(scheme)
        n = expected.size
        best = (2.0, 0.0)
        for arr in orders:
            bits = np.asarray(WatermarkDecoder("bits", n).decode(arr, "dwtDct")).astype(bool)
            k = int(np.count_nonzero(bits == expected))
            best = min(best, (wm.binomial_tail(k, n), -k / n))
        out[scheme] = (best[0], -best[1])
    return out


def our_tries(rgb: np.ndarray, blur, schemes=SCHEMES) -> dict[str, tuple[float, float]]:
    """scheme -> (best p, bit accuracy), tripwire's soft decoder (the same path as detect())."""
    return {
        e["scheme"]: (wm.binomial_tail(e["matched_bits"], e["bits"]), e["bit_accuracy"])  # exact p, not the rounded one
        for e in wm.detect(rgb, schemes, chroma_blur=blur)
    }


def load(path: Path) -> tuple[np.ndarray, tuple[bool, bool]]:
    data = path.read_bytes()
    img = Image.open(io.BytesIO(data))
    media = "image/jpeg" if img.format == "JPEG" else "image/png"
    return np.asarray(img.convert("RGB")), wm.chroma_blur_of(media, data, img)


def jpeg_roundtrip(rgb: np.ndarray, quality: int, subsampling: int) -> tuple[np.ndarray, tuple[bool, bool]]:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    data = buf.getvalue()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), wm.chroma_blur_of("image/jpeg", data)


def webp_roundtrip(rgb: np.ndarray, quality: int) -> tuple[np.ndarray, tuple[bool, bool]]:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "WEBP", quality=quality)
    data = buf.getvalue()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), wm.chroma_blur_of("image/webp", data)


def fmt_acc(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f}" if values else "-"


# ------------------------------------------------------------------------------------------ section 1


def fixture_table() -> None:
    files = json.loads((MARKS / "manifest.json").read_text())["files"]
    rows: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for f in files:
        rgb, blur = load(MARKS / f["file"])
        for name, tries in (("ours", our_tries(rgb, blur)), ("ref", ref_tries(rgb))):
            row = rows[(f["mark"], f["variant"])]
            if f["mark"] == "none":
                row[name + "_fp"].append(any(p <= THRESHOLD for p, _ in tries.values()))
                row[name + "_minp"].append(min(p for p, _ in tries.values()))
            else:
                p, acc = tries[f["mark"]]
                row[name + "_det"].append(p <= THRESHOLD)
                row[name + "_acc"].append(acc)
                row[name + "_cross"].append(any(p <= THRESHOLD for s, (p, _) in tries.items() if s != f["mark"]))
    print(f"\n## 1. Fixtures: detections / files (mean bit accuracy), rule p <= {THRESHOLD:.2e} per try\n")
    print("| mark | variant | tripwire | reference |")
    print("|---|---|---:|---:|")
    totals = defaultdict(int)
    for mark in ("sd1", "sd2", "sdxl"):
        for variant in VARIANTS:
            row = rows[(mark, variant)]
            ours, ref = sum(row["ours_det"]), sum(row["ref_det"])
            totals[("ours", variant)] += ours
            totals[("ref", variant)] += ref
            n = len(row["ours_det"])
            print(f"| {mark} | {variant} | {ours}/{n} ({fmt_acc(row['ours_acc'])}) | {ref}/{n} ({fmt_acc(row['ref_acc'])}) |")
            if any(row["ours_cross"]) or any(row["ref_cross"]):
                print(f"|  | (wrong scheme detected: tripwire {sum(row['ours_cross'])}, reference {sum(row['ref_cross'])}) | | |")
    for variant in VARIANTS:
        print(f"| all marks | {variant} | {totals[('ours', variant)]}/12 | {totals[('ref', variant)]}/12 |")
    print("\nUnmarked controls (any scheme, either order): false positives / files (smallest p)\n")
    print("| variant | tripwire | reference |")
    print("|---|---:|---:|")
    for variant in VARIANTS:
        row = rows[("none", variant)]
        print(
            f"| {variant} | {sum(row['ours_fp'])}/{len(row['ours_fp'])} (min p {min(row['ours_minp']):.1e}) "
            f"| {sum(row['ref_fp'])}/{len(row['ref_fp'])} (min p {min(row['ref_minp']):.1e}) |"
        )


# ------------------------------------------------------------------------------------------ section 2


def _blocks_u(rgb: np.ndarray, blur=(False, False)) -> np.ndarray:
    ll = wm._undo_upsampling(wm._haar_ll(wm._u_channel(rgb, cv2.COLOR_RGB2YUV)), blur)
    return wm._blocks(ll)[0]


def jpeg_analysis() -> None:
    files = [f for f in json.loads((MARKS / "manifest.json").read_text())["files"] if f["mark"] != "none" and f["variant"] == "png"]
    settings = [(100, 2), (90, 0), (90, 2), (75, 0), (75, 2), ("webp", 90), ("webp", 75)]
    label = {0: "JPEG {} 4:4:4", 2: "JPEG {} 4:2:0"}
    acc: dict[tuple, list] = defaultdict(list)
    det: dict[tuple, int] = defaultdict(int)
    for f in files:
        rgb = np.asarray(Image.open(MARKS / f["file"]).convert("RGB"))
        mark = f["mark"]
        for q, sub in settings:
            dec, blur = webp_roundtrip(rgb, sub) if q == "webp" else jpeg_roundtrip(rgb, q, sub)
            for name, (p, a) in (
                ("ref", ref_tries(dec, [mark])[mark]),
                ("ours, upsampling kept", our_tries(dec, (False, False), [mark])[mark]),
                ("ours", our_tries(dec, blur, [mark])[mark]),
            ):
                acc[(name, q, sub, mark)].append(a)
                det[(name, q, sub)] += p <= THRESHOLD
    print("\n## 2. Re-encoding: bit accuracy sd1 / sd2 / sdxl (detections of 12), marked PNGs re-encoded by Pillow\n")
    names = ("ref", "ours, upsampling kept", "ours")
    print("| encoding | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for q, sub in settings:
        cells = []
        for name in names:
            accs = " / ".join(f"{statistics.mean(acc[(name, q, sub, m)]):.2f}" for m in SCHEMES)
            cells.append(f"{accs} ({det[(name, q, sub)]})")
        title = f"WebP q{sub} (lossy, 4:2:0)" if q == "webp" else label[sub].format(f"q{q}")
        print(f"| {title} | " + " | ".join(cells) + " |")

    print("\nThe embedded coefficient after re-encoding (sd1 at 512, sdxl at 1024: unmarked originals exist)\n")
    print("| file state | still the block's largest | its value moved by: mean | std |")
    print("|---|---:|---:|---:|")
    stats: dict[str, list] = defaultdict(list)
    for f in files:
        if f["mark"] not in ("sd1", "sdxl"):
            continue
        size = f["size"]
        base = f["file"].split("_")[2]
        original = np.asarray(Image.open(MARKS / f"none_{size}_{base}_png.png").convert("RGB"))
        marked = np.asarray(Image.open(MARKS / f["file"]).convert("RGB"))
        orig_blocks = _blocks_u(original)
        pos = np.abs(orig_blocks[:, 1:]).argmax(axis=1) + 1  # where the embedder wrote
        idx = np.arange(len(pos))
        target = _blocks_u(marked)[idx, pos]
        for state, (arr, blur) in {
            "PNG (as embedded)": (marked, (False, False)),
            "q90 4:4:4": jpeg_roundtrip(marked, 90, 0),
            "q90 4:2:0": jpeg_roundtrip(marked, 90, 2),
            "q90 4:2:0, upsampling undone": jpeg_roundtrip(marked, 90, 2),
            "q75 4:2:0, upsampling undone": jpeg_roundtrip(marked, 75, 2),
        }.items():
            undo = blur if "undone" in state else (False, False)
            blocks = _blocks_u(arr, undo)
            kept = np.abs(blocks[:, 1:]).argmax(axis=1) + 1 == pos
            moved = blocks[idx, pos] - target
            stats[state].append((kept.mean(), moved))
    for state, values in stats.items():
        kept = statistics.mean(v[0] for v in values)
        moved = np.concatenate([v[1] for v in values])
        print(f"| {state} | {kept:.0%} | {moved.mean():+.1f} | {moved.std():.1f} |")
    print("\n(LL units; the quantisation step is 36 and a bit flips when a value moves by 9 or more.)")


# ------------------------------------------------------------------------------------------ section 3


def null_calibration() -> None:
    ours_p: list[float] = []
    ref_p: list[float] = []
    images = 0
    for path in sorted((FIXTURES / "camera").rglob("*.jpg")):
        try:
            img = Image.open(path)
            img.load()
        except Exception:
            continue
        rgb = np.asarray(img.convert("RGB"))
        h, w = rgb.shape[:2]
        for cw, ch in ((512, 512), (768, 768), (640, 448)):
            if cw > w or ch > h:
                continue
            for ox, oy in {(0, 0), ((w - cw) // 2, (h - ch) // 2), (w - cw, h - ch)}:
                crop = np.ascontiguousarray(rgb[oy : oy + ch, ox : ox + cw])
                for arr, blur in ((crop, (False, False)), jpeg_roundtrip(crop, 90, 2)):
                    images += 1
                    for scheme in SCHEMES:
                        expected = wm.payload_bits(scheme)
                        n = expected.size
                        for code in (cv2.COLOR_RGB2YUV, cv2.COLOR_BGR2YUV):
                            feats, _, _ = wm._block_features(wm._u_channel(arr, code), blur)
                            k = wm._matches(wm._bit_scores(feats, n), expected)
                            ours_p.append(wm.binomial_tail(k, n))
                        for order in (arr[:, :, ::-1], arr):
                            bits = np.asarray(WatermarkDecoder("bits", n).decode(np.ascontiguousarray(order), "dwtDct")).astype(bool)
                            ref_p.append(wm.binomial_tail(int(np.count_nonzero(bits == expected)), n))
    print(f"\n## 3. Null calibration: {images} unmarked camera crops (512x512, 768x768, 640x448; PNG and q90), "
          f"{len(ours_p)} tries each\n")
    print("| share of tries with | nominal (at most) | tripwire | reference |")
    print("|---|---:|---:|---:|")
    for level in (1e-2, 1e-3, 1e-4):
        o = np.mean(np.asarray(ours_p) <= level)
        r = np.mean(np.asarray(ref_p) <= level)
        print(f"| p <= {level:g} | {level:g} | {o:.4f} | {r:.4f} |")
    print(f"| smallest p | | {min(ours_p):.1e} | {min(ref_p):.1e} |")


# ------------------------------------------------------------------------------------------ section 4


def timing(rounds: int) -> None:
    print(f"\n## 4. Time per image, decoded pixels in memory, median of {rounds} rounds (3 schemes x 2 orders)\n")
    print("| size | file | tripwire ms | tripwire incl. file decode ms | reference ms | reference / tripwire |")
    print("|---|---|---:|---:|---:|---:|")
    for name in ("sd1_512_b0_half.png", "sd2_768_b0_half.png", "sd1_512_b0_png.png", "sd2_768_b0_jpg90.jpg", "sdxl_1024_b0_png.png", "sdxl_1024_b0_jpg90.jpg"):
        path = MARKS / name
        rgb, blur = load(path)
        data = path.read_bytes()
        ours, full, ref = [], [], []
        for _ in range(rounds):  # interleaved so load hits every contender alike
            t = time.perf_counter()
            wm.detect(rgb, chroma_blur=blur)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            wm.watermark_evidence(Item(str(path), data, len(data)))
            full.append(time.perf_counter() - t)
            t = time.perf_counter()
            ref_tries(rgb)
            ref.append(time.perf_counter() - t)
        o, fu, r = (statistics.median(x) * 1000 for x in (ours, full, ref))
        print(f"| {rgb.shape[1]}x{rgb.shape[0]} | {name} | {o:.1f} | {fu:.1f} | {r:.0f} | {r / o:.0f}x |")
    big = np.random.default_rng(0).integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    samples = []
    for _ in range(max(1, rounds // 2)):
        t = time.perf_counter()
        wm.detect(big, chroma_blur=(True, True))
        samples.append(time.perf_counter() - t)
    print(f"| 2048x2048 | random pixels, 4:2:0 path | {statistics.median(samples) * 1000:.1f} | | | |")


def check_embedder() -> None:
    """The tests' vectorised embedder must equal invisible-watermark's encoder (it marks synthetic images)."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_watermark import embed

    rgb = np.asarray(Image.open(MARKS / "none_1024_b1_png.png").convert("RGB"))[:640, :1024]
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    bits = wm.payload_bits("sdxl").astype(int)
    enc = WatermarkEncoder()
    enc.set_watermark("bits", list(bits))
    same = np.array_equal(enc.encode(bgr.copy(), "dwtDct"), embed(bgr.copy(), bits))
    ref_equal = all(
        np.array_equal(np.asarray(WatermarkDecoder("bits", n).decode(bgr, "dwtDct")).astype(bool), wm.reference_bits(bgr, n))
        for n in (136, 32, 48)
    )
    print(f"\ntests' embedder == imwatermark encoder: {same}; wm.reference_bits == imwatermark decoder: {ref_equal}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-analysis", action="store_true", help="skip the JPEG re-encoding analysis (section 2)")
    ap.add_argument("--no-null", action="store_true", help="skip the null calibration on camera crops (section 3)")
    ap.add_argument("--rounds", type=int, default=5, help="timing rounds (section 4)")
    args = ap.parse_args()
    start = time.perf_counter()
    print(f"# Watermark bench: opencv {cv2.__version__}, numpy {np.__version__}")
    check_embedder()
    fixture_table()
    if not args.no_analysis:
        jpeg_analysis()
    if not args.no_null:
        null_calibration()
    timing(args.rounds)
    print(f"\n(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

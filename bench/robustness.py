"""Recall at >= 99.99% precision per transform: plain PDQ vs tripwire's matcher (dihedral + unletterbox).

    python bench/robustness.py [--max-side 512] [--workers 1]

Perception-style: a benign corpus of distinct images is the "bank" (plain PDQ of each original, as a
hotline list holds it). Every original is transformed (JPEG 95/75, resize 0.5, crop 5%, pad 20%, rotate 4
degrees, rotations by 90/180/270, horizontal and vertical flips, blur, gamma, text overlay) and the copy is
matched against the whole bank:

  - plain PDQ:      the copy's PDQ hash only (what HMA and perception's PDQHash query);
  - dihedral 1-pass: the copy's 8 dihedral variants from pdqhash.compute_dihedral (one DCT);
  - tripwire 1-pass: those 8 plus, when the copy has solid bands, the 8 variants of the copy with its bands
                     trimmed (tripwire.signals.pdq_variants.variant_hashes(passes=1));
  - tripwire exact:  the same with passes=4 (variant_hashes' default): the 8 exact codes, each the hash of
                     the really transformed copy, from one luminance buffer (pdqhash's single-DCT variants
                     are 10-30 bits off on even-sized images);
  - tripwire exact+: passes=4 with all_outputs=True: also pdqhash's single-DCT outputs of each mirrored view
                     (32 codes; the inexact ones act as one-pixel-shifted copies), 4x the codes to search;
  - matcher as wired: the hashes tripwire's PdqVariantsExtractor records for the matcher
                     (tripwire.signals.pdq_variants.variant_facts: pdqhash's 8 variants + the plain hash of
                     the trimmed image), when that module is present.
The distance of a pair is the smallest over the query's hashes.

A pair (copy of i, original i) is a true match; every (copy of i, original j != i) is a distractor. For each
transform the threshold is the largest distance <= 31 at which precision over all pairs stays >= 99.99%
(with a few hundred images: no false positive at all); recall is the share of copies matched to their
original at that threshold. The table also gives recall at the fixed radius 31 and the false positives
there.

Corpus: every distinct fixture photo of ../shared/fixtures (the project's benign set), 3x3 grids of crops
of large photos of landscapes, plants and objects (chosen by eye: no street scenes, no paintings, no
people), and synthesised images (gradients with shapes, smooth noise textures, rendered words).
Near-duplicates are removed (PDQ distance <= 40 between an image already in and any rotation or flip of
the candidate: the orientation fixtures are one photo stored 8 ways) and images of PDQ quality < 50 are
left out, as tripwire's matcher does not match them.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
sys.path.insert(0, str(REPO / "src"))
warnings.filterwarnings("ignore", category=UserWarning, module="PIL")

import pdqhash  # noqa: E402

from tripwire.signals.index import PdqIndex  # noqa: E402
from tripwire.signals.pdq_variants import variant_hashes  # noqa: E402
from tripwire.signals.types.pdq import TRIMMED_LABELS  # noqa: E402

try:  # the matcher's own variant extractor (issue 4's banks work), measured as wired when present
    from tripwire.signals.pdq_variants import variant_facts
except ImportError:  # pragma: no cover
    variant_facts = None

RADIUS = 31
PRECISION = 0.9999
DEDUP = 40
MIN_QUALITY = 50

# Large fixture photos of landscapes, plants and objects (no street scenes, no paintings, no people) that are
# cut into 3x3 crops to add distinct natural images to the corpus.
CROP_SOURCES = [
    "c2pa/C.jpg", "c2pa/mars.webp", "c2pa/ocsp.jpg", "c2pa/prerelease.jpg", "c2pa/sample1.png",
    "camera/Reconyx_HC500_Hyperfire.jpg", "camera/hdr/canon_hdr_NO.jpg", "camera/hdr/iphone_hdr_NO.jpg",
    "camera/mobile/HMD_Nokia_8.3_5G.jpg", "camera/mobile/jolla.jpg", "malformed/exif_11-tests.jpg",
    "malformed/exif_28-hex_value.jpg", "malformed/exif_30-type_error.jpg", "malformed/exif_33-type_error.jpg",
    "malformed/exif_corrupted.jpg", "watermark/none_1024_b0_png.png",
    "watermark/none_1024_b1_png.png", "watermark/none_1024_b3_png.png",
]
WORDS = ("harbour lantern meadow pebble orchard compass violet granite ember willow summit lagoon "
         "cobalt saffron thistle canyon glacier juniper meridian quartz").split()


# ---------------------------------------------------------------------------------------------- corpus


def _fit(img: Image.Image, max_side: int) -> np.ndarray:
    img = img.convert("RGB")
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(img)


def fixture_photos(max_side: int) -> list[tuple[str, np.ndarray]]:
    out = []
    for path in sorted(FIXTURES.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in {".jpg", ".jpeg", ".png", ".webp"}:
            continue
        try:
            with Image.open(path) as im:
                if min(im.size) < 64:
                    continue
                im.draft("RGB", (max_side, max_side))
                out.append((f"fixture:{path.relative_to(FIXTURES)}", _fit(im, max_side)))
        except Exception:  # noqa: BLE001 - malformed fixtures are expected
            continue
    return out


def crops(max_side: int) -> list[tuple[str, np.ndarray]]:
    out = []
    for rel in CROP_SOURCES:
        path = FIXTURES / rel
        if not path.exists():
            continue
        with Image.open(path) as im:
            im.draft("RGB", (1536, 1536))
            im = im.convert("RGB")
            w, h = im.size
            for gy in range(3):
                for gx in range(3):
                    box = (gx * w // 3, gy * h // 3, (gx + 1) * w // 3, (gy + 1) * h // 3)
                    out.append((f"crop:{rel}[{gy},{gx}]", _fit(im.crop(box), max_side)))
    return out


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    small = rng.random((cells, cells, 3)) * 255
    return np.asarray(Image.fromarray(small.astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC))


def synthetic(count: int, max_side: int, seed: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    font_path = None
    out = []
    for k in range(count):
        w = int(rng.integers(max_side // 2, max_side + 1))
        h = int(rng.integers(max_side // 2, max_side + 1))
        kind = ("shapes", "texture", "text")[k % 3]
        if kind == "shapes":  # gradient background with random shapes
            y, x = np.mgrid[0:h, 0:w] / max(h, w)
            a, b = rng.random(3) * 255, rng.random(3) * 255
            angle = rng.random() * np.pi
            t = (np.cos(angle) * x + np.sin(angle) * y)[..., None]
            t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
            img = Image.fromarray((a * (1 - t) + b * t).astype(np.uint8))
            draw = ImageDraw.Draw(img)
            for _ in range(int(rng.integers(4, 12))):
                x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
                x1, y1 = x0 + int(rng.integers(w // 10, w // 2)), y0 + int(rng.integers(h // 10, h // 2))
                fill = tuple(int(c) for c in rng.integers(0, 256, 3))
                shape = rng.integers(0, 3)
                if shape == 0:
                    draw.ellipse([x0, y0, x1, y1], fill=fill)
                elif shape == 1:
                    draw.rectangle([x0, y0, x1, y1], fill=fill)
                else:
                    pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(3)]
                    draw.polygon(pts, fill=fill)
        elif kind == "texture":  # smooth multi-scale colour noise
            arr = sum(_smooth_noise(rng, h, w, c).astype(np.float32) / (i + 1)
                      for i, c in enumerate((int(rng.integers(3, 6)), int(rng.integers(8, 16)), 40)))
            arr = (arr - arr.min()) / max(float(np.ptp(arr)), 1e-6) * 255
            img = Image.fromarray(arr.astype(np.uint8))
        else:  # rendered words on a soft texture
            img = Image.fromarray(_smooth_noise(rng, h, w, int(rng.integers(2, 5))))
            draw = ImageDraw.Draw(img)
            for _ in range(int(rng.integers(3, 7))):
                size = int(rng.integers(h // 14, h // 5))
                font = ImageFont.load_default(size=size) if font_path is None else ImageFont.truetype(font_path, size)
                text = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4))))
                xy = (int(rng.integers(-w // 8, w // 2)), int(rng.integers(0, h - size)))
                draw.text(xy, text, font=font, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        out.append((f"synthetic:{kind}-{k:03d}", np.asarray(img.convert("RGB"))))
    return out


def pdq_code(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(bits.astype(np.uint8)), int(quality)


def build_corpus(max_side: int, n_synthetic: int, seed: int) -> tuple[list[str], list[np.ndarray], dict[str, int]]:
    candidates = fixture_photos(max_side) + crops(max_side) + synthetic(n_synthetic, max_side, seed)
    names: list[str] = []
    images: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    dropped = {"low quality": 0, "near-duplicate": 0}
    for name, rgb in candidates:
        code, quality = pdq_code(rgb)
        if quality < MIN_QUALITY:
            dropped["low quality"] += 1
            continue
        if codes:  # a rotated or mirrored copy of an image already in is a near-duplicate too
            variants = variant_hashes(rgb, passes=4, unletterbox=False).codes()
            dist = np.unpackbits(np.stack(codes)[:, None, :] ^ variants[None], axis=2).sum(axis=2)
            if dist.min() <= DEDUP:
                dropped["near-duplicate"] += 1
                continue
        names.append(name)
        images.append(rgb)
        codes.append(code)
    return names, images, dropped


# ---------------------------------------------------------------------------------------------- transforms


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def t_crop5(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cut 5% of the width and 5% of the height, split at random between the two ends."""
    h, w = rgb.shape[:2]
    dh, dw = max(1, round(0.05 * h)), max(1, round(0.05 * w))
    top, left = int(rng.integers(0, dh + 1)), int(rng.integers(0, dw + 1))
    return rgb[top : h - (dh - top), left : w - (dw - left)]


def t_pad20(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Solid bands 20% of the side on both ends (letterbox, pillarbox or all four sides; black, white or a
    random colour), then re-encoded as JPEG q90 as an edited copy would be."""
    h, w = rgb.shape[:2]
    layout = int(rng.integers(0, 3))
    colour = [(0, 0, 0), (255, 255, 255), tuple(int(c) for c in rng.integers(0, 256, 3))][int(rng.integers(0, 3))]
    ph = round(0.2 * h) if layout in (0, 2) else 0
    pw = round(0.2 * w) if layout in (1, 2) else 0
    out = np.empty((h + 2 * ph, w + 2 * pw, 3), dtype=np.uint8)
    out[:] = colour
    out[ph : ph + h, pw : pw + w] = rgb
    return _jpeg(out, 90)


def t_rotate4(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).rotate(4, resample=Image.Resampling.BILINEAR))


def t_text(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = Image.fromarray(rgb)
    w, h = img.size
    size = max(10, h // 9)
    draw = ImageDraw.Draw(img)
    text = " ".join(rng.choice(WORDS, size=3))
    draw.text((w // 20, int(h * 0.72)), text, font=ImageFont.load_default(size=size), fill=(255, 255, 255),
              stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0))
    return np.asarray(img)


def t_gamma(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lut = (255 * (np.arange(256) / 255) ** 0.6).round().astype(np.uint8)
    return lut[rgb]


TRANSFORMS = {
    "JPEG q95": lambda x, r: _jpeg(x, 95),
    "JPEG q75": lambda x, r: _jpeg(x, 75),
    "resize 0.5": lambda x, r: np.asarray(Image.fromarray(x).resize(
        (max(1, x.shape[1] // 2), max(1, x.shape[0] // 2)), Image.Resampling.BILINEAR)),
    "crop 5%": t_crop5,
    "pad 20%": t_pad20,
    "rotate 4 deg": t_rotate4,
    "rotate 90": lambda x, r: np.rot90(x, 1),
    "rotate 180": lambda x, r: np.rot90(x, 2),
    "rotate 270": lambda x, r: np.rot90(x, 3),
    "flip horizontal": lambda x, r: x[:, ::-1],
    "flip vertical": lambda x, r: x[::-1],
    "blur (gaussian r=2)": lambda x, r: np.asarray(Image.fromarray(x).filter(ImageFilter.GaussianBlur(2))),
    "gamma 0.6": t_gamma,
    "text overlay": t_text,
}


# ---------------------------------------------------------------------------------------------- scoring


def pair_distances(index: PdqIndex, groups: list[np.ndarray]) -> dict[tuple[int, int], int]:
    """Smallest distance <= RADIUS between any hash of group i (a copy of image i) and bank entry j."""
    stacked = np.concatenate(groups)
    owner = np.concatenate([np.full(len(g), i) for i, g in enumerate(groups)])
    qrow, ids, dist = index.search_arrays(stacked, RADIUS)
    best: dict[tuple[int, int], int] = {}
    for q, j, d in zip(owner[qrow].tolist(), ids.tolist(), dist.tolist()):
        key = (q, j)
        if d < best.get(key, 999):
            best[key] = d
    return best


def recall_at_precision(best: dict[tuple[int, int], int], n: int) -> tuple[float, int, float, int]:
    """(recall, threshold) at the largest threshold <= RADIUS with precision >= PRECISION; then recall and
    false positives at RADIUS."""
    true_d = np.array([d for (i, j), d in best.items() if i == j])
    false_d = np.array([d for (i, j), d in best.items() if i != j])
    chosen_t, chosen_r = -1, 0.0
    for t in range(RADIUS + 1):
        tp = int((true_d <= t).sum())
        fp = int((false_d <= t).sum())
        precision = tp / (tp + fp) if tp + fp else 1.0
        if precision >= PRECISION:
            chosen_t, chosen_r = t, tp / n
    return chosen_r, chosen_t, float((true_d <= RADIUS).sum()) / n, int((false_d <= RADIUS).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-side", type=int, default=512, help="originals are scaled to fit this box")
    ap.add_argument("--synthetic", type=int, default=150, help="synthesised images offered to the corpus")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N corpus images (smoke test)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    names, images, dropped = build_corpus(args.max_side, args.synthetic, args.seed)
    if args.limit:
        names, images = names[: args.limit], images[: args.limit]
    kinds: dict[str, int] = {}
    for name in names:
        kinds[name.split(":")[0]] = kinds.get(name.split(":")[0], 0) + 1
    n = len(images)
    print(f"corpus: {n} distinct images ({', '.join(f'{v} {k}' for k, v in kinds.items())}); left out: "
          f"{dropped['near-duplicate']} near-duplicates (<= {DEDUP} bits), {dropped['low quality']} of quality "
          f"< {MIN_QUALITY}; built in {time.perf_counter() - t0:.0f} s", flush=True)

    bank = PdqIndex()
    bank.add(np.arange(n), np.stack([pdq_code(img)[0] for img in images]))

    try:  # perception's PDQHash is the same pdqhash binding: check that the plain rows are its numbers too
        from perception import hashers

        ph = hashers.PDQHash()
        same = all(ph.compute(Image.fromarray(img), hash_format="vector").astype(bool).tolist()
                   == np.unpackbits(pdq_code(img)[0]).astype(bool).tolist() for img in images[:20])
        perception_note = f"perception PDQHash gives the same hashes as plain PDQ here: {same}"
    except Exception as exc:  # noqa: BLE001 - perception is an optional peer (bench extra)
        perception_note = f"perception not available ({type(exc).__name__}); plain PDQ = pdqhash.compute"

    rows = []
    for tname, fn in TRANSFORMS.items():
        rng = np.random.default_rng(args.seed * 100 + len(rows))  # per-transform choices (pad colour, crop)
        groups: dict[str, list[np.ndarray]] = {"plain": [], "dihedral": [], "tw1": [], "tw4": [], "tw4all": []}
        if variant_facts is not None:
            groups["wired"] = []
        trimmed = 0
        for img in images:
            copy = np.ascontiguousarray(fn(img, rng))
            one = variant_hashes(copy, passes=1)
            four = variant_hashes(copy, passes=4)
            trimmed += one.trim_box is not None
            direct = [k for k, v in enumerate(one.hashes) if v not in TRIMMED_LABELS]
            groups["plain"].append(one.codes()[:1])
            groups["dihedral"].append(one.codes()[direct])
            groups["tw1"].append(one.codes())
            groups["tw4"].append(four.codes())
            groups["tw4all"].append(variant_hashes(copy, passes=4, all_outputs=True).codes())
            if variant_facts is not None:
                facts = variant_facts(copy)
                hexes = list(facts["pdq_variants"].values())  # the trimmed image's hashes are in there too
                groups["wired"].append(np.stack([np.frombuffer(bytes.fromhex(h), dtype=np.uint8) for h in hexes]))
        row = [tname] + [recall_at_precision(pair_distances(bank, g), n) for g in groups.values()]
        rows.append((row, trimmed))
        print(f"  {tname}: done", flush=True)

    print()
    print(f"## Recall at >= {PRECISION:.2%} precision, {n} images, thresholds <= {RADIUS}")
    print()
    wired = " | matcher as wired" if variant_facts is not None else ""
    print(f"| transform | plain PDQ | dihedral 1-pass | tripwire 1-pass | tripwire exact | tripwire exact+{wired} "
          "| tripwire exact at 31 (false pairs) | trimmed |")
    print("|---|---:|---:|---:|---:|---:|" + ("---:|" if wired else "") + "---:|---:|")
    for row, trimmed in rows:
        cells = [f"{r:.1%} (t={t})" if t >= 0 else "0.0% (none)" for r, t, _, _ in row[1:]]
        r31, fp31 = row[4][2], row[4][3]
        print(f"| {row[0]} | {' | '.join(cells)} | {r31:.1%} ({fp31}) | {trimmed}/{n} |")
    print()
    print(perception_note)


if __name__ == "__main__":
    main()

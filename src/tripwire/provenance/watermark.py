"""Stable Diffusion's invisible watermark (``invisible-watermark`` method ``dwtDct``): a soft decoder.

Stable Diffusion's reference scripts (SD 1.x ``txt2img.py``, SD 2.x scripts, diffusers' SDXL pipelines) stamp
every output with the ``invisible-watermark`` library, method ``dwtDct``. Finding that mark is evidence that
an image came out of one of those pipelines, so it feeds the provenance verdict as *strong* evidence.

How the mark is embedded (invisible-watermark 0.2.0, ``imwatermark/maxDct.py``), which this module mirrors:

1. the image, a uint8 **BGR** array, is converted with ``cv2.COLOR_BGR2YUV``; only the **U** channel carries
   the mark (scales ``[0, 36, 36]`` but the loop runs over channels 0 and 1 only, and Y has scale 0);
2. U (cropped to a multiple of 4) goes through a level-1 Haar DWT; the LL band is cut into 4x4 blocks in
   raster order, block ``i`` carries payload bit ``i % n_bits``;
3. in each block the largest-magnitude coefficient other than the top-left one is *quantised* with step 36:
   ``v -> (v // 36 + 0.25 + 0.5 * bit) * 36``, i.e. its phase ``(v mod 36) / 36`` is set to 0.25 for a 0 and
   0.75 for a 1. Despite the name, no DCT is applied in this code path: the block is read in the LL domain.

The reference decoder reads that phase back from each block's largest coefficient, makes a hard 0/1 decision
per block, and takes a per-bit vote. That works on lossless outputs but throws away most of the information
once the file has been re-encoded: after a 4:2:0 JPEG at q90 the embedded coefficient is no longer its
block's largest in ~60% of blocks, the value it kept moves by ~11 (the decision margin is 9), and an
unnormalised vote is dominated by the picture's own bias (all-ones or all-zeros outputs are common).

This decoder keeps the soft information and removes what is not watermark:

* **JPEG/WebP chroma upsampling is undone.** A 4:2:0 encoder averages 2x2 chroma pixels - exactly the Haar
  LL band - and the decoder's "fancy" upsampling (libjpeg-turbo, libwebp) blurs them back with the
  triangle kernel ``[1/8, 3/4, 1/8]`` per subsampled axis. That blur is inverted exactly (a 19-tap inverse
  filter with mirrored edges, which reproduces libjpeg's edge replication).
* **Two soft features per block** instead of one hard bit: the phase of the largest coefficient as a unit
  phasor ``exp(2*pi*i*v/36)`` and its *prominence* ``v - mean(block)``: quantising to phase 0.75 raises the
  peak by 9 on average and phase 0.25 lowers it by 9, a difference that survives JPEG about as well as the
  phase does and adds to it.
* **Content bias is removed.** Flat chroma regions give every block the same phase whatever the mark; a
  local mean over the 5x5 neighbouring blocks (leaving out blocks that carry the same bit) is subtracted,
  then each bit's average is centred across bits.
* **The bits are read along the direction the data points to.** Per bit the three averaged features form a
  3-vector ``+/-d + noise``; after standardising, the principal axis estimates ``d`` (JPEG rotates the phase,
  so a fixed axis would be wrong) and its sign is fixed by the prominence (on average a 1 is the more prominent peak).
  Nothing here looks at the expected payload, so on an unmarked image the decoded bits stay coin flips.

The decision is a binomial test: ``k`` of ``n`` decoded bits equal the scheme's payload, ``p = P(X >= k)`` for
``X ~ Binomial(n, 1/2)``. Every image is tried for three schemes in two channel orders (the SD scripts embed on
a BGR array, diffusers' SDXL watermarker hands it an RGB one), so a scheme is reported as ``detected`` when
``p <= alpha / 6`` (Bonferroni): the chance that an unmarked image yields any detection is at most ``alpha``
(default 1e-6).

Applicability: the blocks are aligned to the top-left pixel and the bit assignment depends on the number of
blocks per row, so the mark can only be read at the size it was embedded at. The pipelines that embed it
generate at their native sizes: SD 1.x scripts 512x512, SD 2.x 512 and 768, SDXL 1024x1024 and its aspect
buckets (about one megapixel each, from 2048x512 to 512x2048), all multiples of 8 (the VAE factor);
invisible-watermark refuses images smaller than 256x256. So a size is decoded only when both sides are
multiples of 8, no side exceeds 2048 and the area is at most ``MAX_PIXELS`` (1536x1536, over twice the
largest native area, for requests above the defaults). Anything else is skipped with the reason, without
decoding pixels: 12 MP camera photos, and also the 3-4 MP ones (2048x1536, 1920x1920, 2000x2000) that the
side rule alone would let through. The one embedder this leaves out is the SD 2.x x4 upscaler demo, whose
outputs (4x an input padded to multiples of 64) are sized like camera photos: decoding them would mean
decoding every such photo; ``watermark_evidence(item, max_pixels=...)`` widens the rule where they matter.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Iterable, Literal, Sequence

import numpy as np

if TYPE_CHECKING:
    from ..media.item import Item

__all__ = [
    "SCHEMES",
    "DEFAULT_ALPHA",
    "MIN_PIXELS",
    "MAX_SIDE",
    "MAX_PIXELS",
    "SIZE_MULTIPLE",
    "Scheme",
    "payload_bits",
    "reference_bits",
    "decode_bits",
    "binomial_tail",
    "detect",
    "applicability",
    "chroma_blur_of",
    "watermark_evidence",
]

#: invisible-watermark's quantisation step for the U channel (``scales=[0, 36, 36]``).
STEP = 36.0
#: Block side in the LL band (``block=4``).
BLOCK = 4
#: Family-wise false-positive bound per image over all tries (schemes x channel orders).
DEFAULT_ALPHA = 1e-6
#: invisible-watermark refuses to embed or decode below 256*256 pixels.
MIN_PIXELS = 256 * 256
#: Largest side accepted (SDXL's buckets reach 1536 px; 2048 leaves room for larger requests and upscaler outputs).
MAX_SIDE = 2048
#: Largest area accepted: the native sizes are at most ~1 MP (SDXL's buckets), 1536x1536 leaves room for larger
#: requests while keeping 3-4 MP camera photos (2048x1536, 1920x1920, 2000x2000) from being decoded.
MAX_PIXELS = 1536 * 1536
#: Latent-diffusion outputs are multiples of the VAE factor.
SIZE_MULTIPLE = 8
#: Neighbourhood (in blocks) whose mean is the local content bias removed from every block's features.
_BIAS_WINDOW = 5


@dataclass(frozen=True)
class Scheme:
    """One known payload: its name in evidence, the bits it embeds and who embeds it."""

    name: str
    payload: bytes
    description: str

    @property
    def n_bits(self) -> int:
        return 8 * len(self.payload)


SCHEMES: dict[str, Scheme] = {
    "sd1": Scheme("sd1", b"StableDiffusionV1", "Stable Diffusion 1.x scripts: bytes 'StableDiffusionV1' (136 bits)"),
    "sd2": Scheme("sd2", b"SDV2", "Stable Diffusion 2.x scripts: bytes 'SDV2' (32 bits)"),
    "sdxl": Scheme("sdxl", bytes.fromhex("B3EC907BB19E"), "SDXL (diffusers/generative-models): 48 bits 0xB3EC907BB19E"),
}


def payload_bits(scheme: str | Scheme) -> np.ndarray:
    """The payload as a bool array, most significant bit of the first byte first (``np.unpackbits``)."""
    sch = SCHEMES[scheme] if isinstance(scheme, str) else scheme
    return np.unpackbits(np.frombuffer(sch.payload, dtype=np.uint8)).astype(bool)


# ---------------------------------------------------------------------------------------------- transforms


def _u_channel(arr: np.ndarray, code: int) -> np.ndarray:
    """The uint8 U channel of a colour array, cropped to a multiple of 4 as invisible-watermark does."""
    import cv2

    if arr.ndim != 3 or arr.shape[2] < 3:
        raise ValueError(f"expected an HxWx3 colour array, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr[:, :, :3], dtype=np.uint8)
    rows, cols = arr.shape[:2]
    return cv2.cvtColor(arr, code)[: rows // 4 * 4, : cols // 4 * 4, 1]


def _u_ll(bgr: np.ndarray) -> np.ndarray:
    """The Haar LL band of U computed exactly as invisible-watermark does (pywt, bit-for-bit)."""
    import cv2
    import pywt

    ll, _details = pywt.dwt2(_u_channel(bgr, cv2.COLOR_BGR2YUV), "haar")
    return ll


def _haar_ll(u: np.ndarray) -> np.ndarray:
    """The Haar LL band in exact arithmetic: each 2x2 sum halved (pywt differs by ~1e-13, 10x slower)."""
    f = u.astype(np.float64)
    return (f[0::2, 0::2] + f[1::2, 0::2] + f[0::2, 1::2] + f[1::2, 1::2]) * 0.5


#: Impulse response of the inverse of ``[1/8, 3/4, 1/8]``: sqrt(2) * r**|k| with r = 2*sqrt(2) - 3, the root
#: of z**2 + 6z + 1 inside the unit circle. |r| = 0.17, so 9 taps a side are exact to 1e-7.
_INVERSE_TAPS = math.sqrt(2.0) * (2.0 * math.sqrt(2.0) - 3.0) ** np.abs(np.arange(-9, 10))


def _undo_upsampling(ll: np.ndarray, axes: Sequence[bool]) -> np.ndarray:
    """Invert the decoder's triangle chroma upsampling as seen in the LL band.

    A 2x-subsampled chroma plane is rebuilt by libjpeg-turbo/libwebp with weights 3/4 and 1/4 per axis; two
    such pixels summed (the Haar LL) equal ``1/8 c[i-1] + 3/4 c[i] + 1/8 c[i+1]`` of the stored samples ``c``.
    Its frequency response ``0.75 + 0.25 cos w`` never drops below 0.5, so the inverse is stable and short.
    Mirrored borders (``fedcba|abcdef``) reproduce libjpeg's replicated edge samples exactly.
    """
    import cv2

    vertical, horizontal = (bool(a) for a in axes)
    if not (vertical or horizontal):
        return ll
    identity = np.array([1.0])
    kx = _INVERSE_TAPS if horizontal else identity
    ky = _INVERSE_TAPS if vertical else identity
    return cv2.sepFilter2D(
        np.asarray(ll, dtype=np.float64), cv2.CV_64F, kx, ky, borderType=cv2.BORDER_REFLECT
    )


def _blocks(ll: np.ndarray) -> tuple[np.ndarray, int, int]:
    """4x4 blocks of the LL band in raster order, as an (R*C, 16) array, plus R and C."""
    rows, cols = ll.shape[0] // BLOCK, ll.shape[1] // BLOCK
    view = ll[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK).transpose(0, 2, 1, 3)
    return view.reshape(rows * cols, BLOCK * BLOCK), rows, cols


# ------------------------------------------------------------------------------------- reference decoding


def reference_bits(bgr: np.ndarray, n_bits: int) -> np.ndarray:
    """Hard bits exactly as ``imwatermark.WatermarkDecoder('bits', n_bits).decode(bgr, 'dwtDct')`` returns them.

    Kept for comparison and tests: one hard decision per block (phase above one half), then a per-bit vote
    (``mean * 255 > 127``). :func:`decode_bits` is the decoder to use.
    """
    blocks, _, _ = _blocks(_u_ll(bgr))
    if len(blocks) < n_bits:
        raise ValueError(f"image has {len(blocks)} blocks, fewer than {n_bits} bits")
    mags = np.abs(blocks[:, 1:])
    peak = mags[np.arange(len(mags)), mags.argmax(axis=1)]
    hard = (peak % STEP > 0.5 * STEP).astype(np.float64)
    idx = np.arange(len(blocks)) % n_bits
    votes = np.bincount(idx, hard, n_bits) / np.bincount(idx, None, n_bits)
    return votes * 255 > 127


# ------------------------------------------------------------------------------------------ soft decoding


def _block_features(u: np.ndarray, chroma_blur: Sequence[bool]) -> tuple[np.ndarray, int, int]:
    """Per-block soft features of a U plane, shape (3, R, C): cos and sin of the peak's phase, its prominence."""
    ll = _undo_upsampling(_haar_ll(u), chroma_blur)
    blocks, rows, cols = _blocks(ll)
    mags = np.abs(blocks[:, 1:])
    peak = mags[np.arange(len(mags)), mags.argmax(axis=1)]
    angle = (2.0 * np.pi / STEP) * peak
    prominence = peak - np.abs(blocks).mean(axis=1)
    feats = np.stack([np.cos(angle), np.sin(angle), prominence]).reshape(3, rows, cols)
    return feats, rows, cols


def _remove_local_bias(feats: np.ndarray, n_bits: int) -> np.ndarray:
    """Subtract from every block the mean of its 5x5 block neighbourhood, skipping blocks with the same bit.

    Content (a flat sky, a colour cast) pushes the features of whole regions one way whatever the mark; the
    mark itself changes from one block to the next. Blocks carrying the same bit are left out of the mean so
    the subtraction removes no signal (with 96 blocks per row and 32 bits, a block's vertical neighbours all
    carry its bit).
    """
    _, rows, cols = feats.shape
    h = _BIAS_WINDOW // 2
    mode: Literal["reflect", "edge"] = "reflect" if min(rows, cols) > 1 else "edge"
    padded = np.pad(feats, ((0, 0), (h, h), (h, h)), mode=mode)
    acc = np.zeros_like(feats)
    count = 0
    for dr in range(-h, h + 1):
        for dc in range(-h, h + 1):
            if (dr * cols + dc) % n_bits == 0:  # the block itself, or one carrying the same bit
                continue
            acc += padded[:, h + dr : h + dr + rows, h + dc : h + dc + cols]
            count += 1
    return feats - acc / max(count, 1)


def _bit_scores(feats: np.ndarray, n_bits: int) -> np.ndarray:
    """Soft per-bit scores from block features: positive means 1; magnitudes in units of their spread."""
    _, rows, cols = feats.shape
    flat = _remove_local_bias(feats, n_bits).reshape(3, rows * cols)
    idx = np.arange(rows * cols) % n_bits
    counts = np.bincount(idx, None, n_bits)
    per_bit = np.stack([np.bincount(idx, f, n_bits) / counts for f in flat], axis=1)  # (n_bits, 3)
    per_bit -= per_bit.mean(axis=0)
    scale = per_bit.std(axis=0)
    if not np.all(scale > 1e-12):
        keep = scale > 1e-12
        if not keep.any():
            return np.zeros(n_bits)
        per_bit, scale = per_bit[:, keep], scale[keep]
        has_prominence = bool(keep[2])
    else:
        has_prominence = True
    z = per_bit / scale
    _, vecs = np.linalg.eigh(z.T @ z)
    axis = vecs[:, -1]
    if has_prominence and axis[-1] < 0:  # a 1 raises the peak: orient the axis so prominence counts for 1
        axis = -axis
    scores = z @ axis
    spread = scores.std()
    return scores / spread if spread > 0 else scores


def decode_bits(bgr: np.ndarray, n_bits: int, *, chroma_blur: Sequence[bool] = (False, False)) -> np.ndarray:
    """Soft scores for the ``n_bits`` payload bits of a dwtDct mark embedded on this BGR uint8 array.

    ``score > 0`` reads as bit 1, ``< 0`` as 0, ``0`` as no information; the magnitude is in units of the
    scores' spread. ``chroma_blur`` = (vertical, horizontal) says which axes the file's decoder upsampled the
    chroma along (see :func:`chroma_blur_of`); the blur is undone before reading. To decode an RGB array
    as if it were BGR (the diffusers SDXL case) pass it unchanged; for the SD scripts' BGR order pass
    ``rgb[:, :, ::-1]``.
    """
    import cv2

    feats, rows, cols = _block_features(_u_channel(bgr, cv2.COLOR_BGR2YUV), chroma_blur)
    if rows * cols < n_bits:
        raise ValueError(f"image has {rows * cols} blocks, fewer than {n_bits} bits")
    return _bit_scores(feats, n_bits)


# ---------------------------------------------------------------------------------------------- statistics


_TAIL_CACHE: dict[tuple[int, int], float] = {}


def binomial_tail(k: int, n: int) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, 1/2)``, exact (integer arithmetic, no underflow before 2**-1074)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    key = (k, n)
    if key not in _TAIL_CACHE:
        _TAIL_CACHE[key] = float(Fraction(sum(math.comb(n, j) for j in range(k, n + 1)), 2**n))
    return _TAIL_CACHE[key]


def _sig(x: float, digits: int = 4) -> float:
    """Round to significant digits for reports (3.552713678800501e-15 -> 3.553e-15)."""
    return float(f"{x:.{digits}g}")


def _matches(scores: np.ndarray, expected: np.ndarray) -> int:
    """Decoded bits equal to the payload; a score of exactly 0 (no information) never counts as a match."""
    return int(np.count_nonzero((scores > 0) & expected) + np.count_nonzero((scores < 0) & ~expected))


# ----------------------------------------------------------------------------------------------- detection


def detect(
    rgb: np.ndarray,
    schemes: Iterable[str] = ("sd1", "sd2", "sdxl"),
    *,
    alpha: float = DEFAULT_ALPHA,
    chroma_blur: Sequence[bool] = (False, False),
) -> list[dict[str, Any]]:
    """Try every scheme in both channel orders on an HxWx3 uint8 **RGB** array (a decoded image as stored).

    Returns one evidence dict per scheme: ``detected``, ``bit_accuracy`` and ``p_value`` of the better channel
    order (``"bgr"``: embedded by the SD scripts on a BGR array; ``"rgb"``: on an RGB array passed as BGR),
    ``bits`` (payload length), ``matched_bits`` and ``p_threshold`` = ``alpha / (2 * len(schemes))``.
    """
    names = list(schemes)
    for name in names:
        if name not in SCHEMES:
            raise ValueError(f"unknown watermark scheme {name!r} (known: {', '.join(SCHEMES)})")
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.dtype != np.uint8:
        raise ValueError("detect() needs an HxWx3 uint8 RGB array")
    threshold = alpha / (2 * max(len(names), 1))
    import cv2

    # "bgr": the SD scripts' order, BGR2YUV of rgb[..., ::-1], which is RGB2YUV of rgb (bit-exact, no copy);
    # "rgb": the array itself handed to BGR2YUV, as diffusers' SDXL watermarker does.
    codes = {"bgr": cv2.COLOR_RGB2YUV, "rgb": cv2.COLOR_BGR2YUV}
    features = {order: _block_features(_u_channel(rgb, code), chroma_blur) for order, code in codes.items()}
    results = []
    for name in names:
        expected = payload_bits(name)
        n = expected.size
        signs = np.where(expected, 1.0, -1.0)
        best: tuple[float, float, int, str] | None = None
        for order, (feats, rows, cols) in features.items():
            if rows * cols < n:
                continue
            scores = _bit_scores(feats, n)
            k = _matches(scores, expected)
            p = binomial_tail(k, n)
            # lower p wins; on a tie (both orders at the floor 2**-n) the stronger soft agreement wins
            key = (p, -float(np.dot(scores, signs)))
            if best is None or key < best[:2]:
                best = (key[0], key[1], k, order)
        if best is None:
            results.append({"source": "watermark", "scheme": name, "detected": False, "skipped": "too few blocks for the payload"})
            continue
        p, _, k, order = best
        results.append(
            {
                "source": "watermark",
                "scheme": name,
                "method": "dwtDct",
                "detected": bool(p <= threshold),
                "bit_accuracy": round(k / n, 4),
                "p_value": _sig(p),
                "p_threshold": _sig(threshold),
                "channel_order": order,
                "bits": n,
                "matched_bits": k,
            }
        )
    return results


# ----------------------------------------------------------------------------------------- applicability


def applicability(width: int, height: int, *, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS) -> str | None:
    """Why an image of this size cannot carry a readable mark, or None when decoding applies.

    The mark is only readable at the exact size it was embedded at (block grid and bit order depend on it),
    and the pipelines that embed it output sides that are multiples of 8, at most ``max_side`` (2048), with at
    least 256x256 pixels (invisible-watermark refuses smaller images) and at most ``max_pixels``. Pure
    arithmetic on the header's size: it runs before anything else is read.
    """
    if width * height < MIN_PIXELS:
        return f"image too small: {width}x{height} is under 256x256 pixels, the minimum invisible-watermark embeds in"
    if max(width, height) > max_side:
        return (
            f"size {width}x{height} is larger than any generator output ({max_side} px per side): "
            "the mark is only readable at its original generation size"
        )
    if width * height > max_pixels:
        return (
            f"size {width}x{height} is larger than any generator output ({max_pixels / 1e6:.2f} megapixels): "
            "the mark is only readable at its original generation size"
        )
    if width % SIZE_MULTIPLE or height % SIZE_MULTIPLE:
        return (
            f"size {width}x{height} is not a multiple of {SIZE_MULTIPLE}: not a generator output size "
            "(cropped or resized), and the mark is only readable at its original generation size"
        )
    return None


def _riff_chunks(data: bytes) -> Iterable[bytes]:
    pos = 12
    while pos + 8 <= len(data):
        fourcc = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        yield fourcc
        pos += 8 + size + (size & 1)


def chroma_blur_of(media_type: str, data: bytes | None, image: Any = None) -> tuple[bool, bool]:
    """(vertical, horizontal): along which axes this file's decoder upsampled subsampled chroma.

    JPEG: from the stored sampling factors (4:2:0 both, 4:2:2 horizontal, 4:4:4 none; the decoder is
    libjpeg-turbo with fancy upsampling, as in Pillow and OpenCV). Lossy WebP (VP8) is always 4:2:0 with the
    same triangle upsampler; lossless WebP and PNG have full-resolution chroma. Other formats: none assumed.
    """
    if media_type == "image/jpeg":
        try:
            from PIL import Image, JpegImagePlugin

            img = image if image is not None else Image.open(io.BytesIO(data or b""))
            sampling = JpegImagePlugin.get_sampling(img)
        except Exception:
            sampling = -1
        if sampling == 2:
            return (True, True)
        if sampling == 1:
            return (False, True)
        return (False, False)
    if media_type == "image/webp" and data:
        for fourcc in _riff_chunks(data[:1 << 20]):
            if fourcc == b"VP8 ":
                return (True, True)
            if fourcc == b"VP8L":
                return (False, False)
    return (False, False)


def _skipped(reason: str, schemes: Iterable[str]) -> list[dict[str, Any]]:
    return [{"source": "watermark", "scheme": name, "detected": False, "skipped": reason} for name in schemes]


_COLOUR_MODES = {"RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBa"}


def watermark_evidence(
    item: "Item",
    *,
    alpha: float = DEFAULT_ALPHA,
    max_side: int = MAX_SIDE,
    max_pixels: int = MAX_PIXELS,
    schemes: Sequence[str] = ("sd1", "sd2", "sdxl"),
) -> list[dict[str, Any]]:
    """One evidence dict per scheme for this item: decoded (see :func:`detect`) or skipped with the reason.

    The size check reads only the header, so files that cannot carry a mark (camera-size photos, resized or
    cropped images, thumbnails) are skipped without decoding a pixel. Pixels are the stored grid (no EXIF
    orientation: the mark was embedded before any rotation).
    """
    from ..errors import ItemError
    from ..media.sniff import is_image

    if not is_image(item.media_type):
        return _skipped(f"not an image ({item.media_type or 'unknown type'})", schemes)
    if item.data is None:
        return _skipped("file larger than the decode cap: pixels not read", schemes)
    try:
        header = item.open_image()
    except ItemError as exc:
        return _skipped(f"image not decodable: {exc.code}: {exc.message}"[:300], schemes)
    width, height = header.size
    reason = applicability(width, height, max_side=max_side, max_pixels=max_pixels)
    if reason is not None:
        return _skipped(reason, schemes)
    if getattr(header, "n_frames", 1) > 1 and item.media_type in ("image/gif", "image/webp"):
        return _skipped("animated image: generators output single frames", schemes)
    if header.mode not in _COLOUR_MODES:
        return _skipped(f"no colour channels (mode {header.mode}): the mark lives in the chroma (U) channel", schemes)
    blur = chroma_blur_of(item.media_type, item.data, header)
    try:
        img = item.decoded()
    except ItemError as exc:
        return _skipped(f"image not decodable: {exc.code}: {exc.message}"[:300], schemes)
    if img.mode in ("RGB", "RGBA", "RGBX"):
        arr = np.asarray(img)[:, :, :3]
    else:
        arr = np.asarray(img.convert("RGB"))
    if arr.dtype != np.uint8:
        return _skipped(f"unsupported sample type {arr.dtype}", schemes)
    return detect(arr, schemes, alpha=alpha, chroma_blur=blur)

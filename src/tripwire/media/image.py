"""Open images safely: pixel caps before decoding, bounded memory, clear error codes, EXIF orientation applied.

**Memory.** Two caps (``config.Limits``): ``max_pixels`` refuses an image by its declared size before any
pixel is decoded; ``max_decode_pixels`` (sized from a memory budget) is the most pixels ever held decoded for
one item. Images within it decode at full resolution as always (hashes unchanged). Larger ones are decoded
*reduced* for hashing and the pixel readers (:func:`load_oriented`, :func:`load_preview`): JPEGs in draft mode
(the DCT scales by 1/2, 1/4 or 1/8), PNGs strip by strip with a box reduction (:mod:`tripwire.media.reduced`),
other formats refused with ``too_large``; :func:`load_full` (the exact stored grid, for stealth copies,
signatures and watermarks) refuses them. Conversions never hold two full-size copies: RGB conversion runs
before the orientation transpose (they commute) and composites transparency strip by strip.

The decoder only ever sees the *pixel view* of a file (:mod:`tripwire.media.pixelview`): the bytes minus the
metadata carriers (PNG text/EXIF/ICC chunks, JPEG APPn/COM segments) that Pillow would otherwise parse on the
way and fail the whole image over (oversized ``zTXt``, a broken ICC segment, a lying EXIF IFD ...). Metadata
is read separately by the provenance readers, whose failures are notes, never the item's error; the EXIF
orientation is read from the original bytes by a bounded parser of our own and applied here.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING, Protocol

from PIL import Image

from ..errors import ItemError
from .pixelview import exif_orientation, pixel_view
from .sniff import is_image

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config import Limits

try:  # HEIC/HEIF/AVIF support is optional at runtime but installed by default
    import pillow_heif

    pillow_heif.register_heif_opener()
    if hasattr(pillow_heif, "register_avif_opener"):
        pillow_heif.register_avif_opener()
except ImportError:  # pragma: no cover - exercised only on installs without pillow-heif
    pass  # Pillow then refuses HEIC/AVIF files as undecodable, like any format it has no opener for

# Pillow warns between its cap and twice its cap: treat that as the error it is for us.
warnings.simplefilter("error", Image.DecompressionBombWarning)

_ORIENTATION_TAG = 0x0112
#: ``img.info`` key under which :func:`open_image` leaves the orientation read from the original bytes
ORIENTATION_INFO = "tripwire.orientation"
#: how each EXIF orientation is undone (the table of ``ImageOps.exif_transpose``)
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


#: the same turns as pixel operations on the stored grid, by the names of
#: :data:`tripwire.signals.pdq_labels.DIHEDRAL_VARIANTS` (counter-clockwise quarter turns, as ``np.rot90``)
ORIENTATION_OPS = {
    2: "flip_horizontal",
    3: "rot180",
    4: "flip_vertical",
    5: "transpose",
    6: "rot270",
    7: "antitranspose",
    8: "rot90",
}


class Decodable(Protocol):
    """What decoding reads of an :class:`~tripwire.media.item.Item`.

    A protocol rather than the class itself because ``item.py`` imports this module (for ``decoded()``).
    """

    data: bytes | None
    size: int
    limits: Limits
    media_type: str
    _oriented: dict[int | None, Image.Image]
    _stored: dict[int | None, Image.Image]
    #: the full-resolution decode of the stored grid, shared (``Item.decoded()``)
    _decoded: Image.Image | None
    #: the pixel view of ``data`` and the orientation read from ``data``, computed once
    _pixel_view: bytes | None
    _orientation: int | None


def open_image(item: Decodable) -> Image.Image:
    """Parse the header of ``item`` and refuse it before any pixel is decoded if it is too big."""
    if item.data is None:
        raise ItemError("too_large", f"{item.size} bytes exceeds the decode cap of {item.limits.max_decode_bytes}")
    if not is_image(item.media_type):
        raise ItemError("unsupported_media", f"{item.media_type or 'unknown type'} is not a decodable image")
    # Pillow's own bomb check (at open, for most formats) enforces our cap; the explicit check below
    # covers formats whose headers Pillow does not check.
    Image.MAX_IMAGE_PIXELS = item.limits.max_pixels
    data = item.data
    if item._pixel_view is None:
        item._pixel_view = pixel_view(data)
    try:
        try:
            img = Image.open(io.BytesIO(item._pixel_view))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise
        except Exception:
            bare = pixel_view(data, keep_mpf=False)  # a malformed MPF index: Pillow's fallback is a base JPEG
            if bare == item._pixel_view:
                raise
            img = Image.open(io.BytesIO(bare))
            item._pixel_view = bare
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ItemError("decompression_bomb", f"{exc} (cap: {item.limits.max_pixels} pixels)") from exc
    except Exception as exc:  # Pillow raises many types on hostile headers
        raise ItemError("decode_error", f"cannot open image: {exc}") from exc
    if item._orientation is None:
        found = exif_orientation(data)
        item._orientation = found if found is not None else _decoder_orientation(img)
    img.info[ORIENTATION_INFO] = item._orientation
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ItemError("decode_error", f"invalid image dimensions {width}x{height}")
    if width * height > item.limits.max_pixels:
        raise ItemError(
            "decompression_bomb",
            f"{width}x{height} = {width * height} pixels exceeds the cap of {item.limits.max_pixels}",
        )
    return img


def _load(img: Image.Image) -> Image.Image:
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ItemError("decompression_bomb", str(exc)) from exc
    except MemoryError as exc:
        raise ItemError("decompression_bomb", "out of memory while decoding") from exc
    except Exception as exc:
        raise ItemError("decode_error", f"cannot decode image: {exc}") from exc
    return img


def _over_budget(item: Decodable, img: Image.Image) -> bool:
    width, height = img.size
    return width * height > item.limits.max_decode_pixels


def load_full(item: Decodable) -> Image.Image:
    """Decode every pixel at full resolution (no orientation applied: the stored pixel grid).

    Refused with ``too_large`` above ``limits.max_decode_pixels``: the exact grid of a larger image would not
    fit the memory budget (the hashing path decodes those reduced instead, see :func:`load_oriented`).
    """
    img = open_image(item)
    if _over_budget(item, img):
        width, height = img.size
        raise ItemError(
            "too_large",
            f"{width}x{height} = {width * height} pixels is over the full-resolution decode cap of "
            f"{item.limits.max_decode_pixels} (limits.max_decode_pixels)",
        )
    return _load(img)


#: an over-budget PNG decoded for hashing (``min_size``) is reduced to about this many times ``min_size`` on its
#: short side when that is smaller than the budget allows: PDQ filters down to 64x64 anyway, and hashing the
#: smaller image is much faster
HASH_OVERSAMPLE = 4


def _load_reduced(item: Decodable, img: Image.Image, min_size: int | None = None) -> Image.Image:
    """``img`` (opened, over the decode budget) decoded reduced to at most ``max_decode_pixels``, RGB, stored grid.

    With ``min_size`` (decoding for hashing), JPEGs are drafted exactly as within the budget, and PNGs reduced
    down to about ``HASH_OVERSAMPLE * min_size`` on the short side.
    """
    from PIL import JpegImagePlugin

    from .reduced import decode_png_reduced, reduce_factor

    width, height = img.size
    budget = item.limits.max_decode_pixels
    if isinstance(img, JpegImagePlugin.JpegImageFile):
        if min_size and img.format == "JPEG":
            img.draft("RGB", (min(width, min_size), min(height, min_size)))
            if img.size[0] * img.size[1] <= budget:
                out = _load(img)
                return out if out.mode == "RGB" else _to_rgb(out)
        scale = 1
        while scale < 8 and -(-width // scale) * -(-height // scale) > budget:
            scale *= 2
        if -(-width // scale) * -(-height // scale) <= budget:
            img.draft("RGB", (width // scale, height // scale))
            out = _load(img)
            return out if out.mode == "RGB" else _to_rgb(out)
    elif img.format == "PNG" and item._pixel_view is not None:
        factor = reduce_factor(width, height, budget)
        if min_size:
            factor = max(factor, min(width, height) // (HASH_OVERSAMPLE * min_size))
        try:
            return decode_png_reduced(item._pixel_view, img, factor, _to_rgb)
        except ItemError:
            raise
        except MemoryError as exc:
            raise ItemError("decompression_bomb", "out of memory while decoding") from exc
        except Exception as exc:
            raise ItemError("decode_error", f"cannot decode image: {exc}") from exc
    raise ItemError(
        "too_large",
        f"{width}x{height} {img.format or 'image'} = {width * height} pixels is over the decode cap of {budget} "
        "(limits.max_decode_pixels) and cannot be decoded reduced",
    )


def orientation(img: Image.Image) -> int:
    """The EXIF orientation (1-8) of an image from :func:`open_image`, 1 when absent or malformed.

    The value was read from the original file's bytes (the decoder's view has no EXIF); images opened some
    other way fall back to Pillow's EXIF reader.
    """
    value = img.info.get(ORIENTATION_INFO)
    if isinstance(value, int) and 1 <= value <= 8:
        return value
    return _decoder_orientation(img)


def _decoder_orientation(img: Image.Image) -> int:
    """Orientation through Pillow's EXIF reader (TIFF, HEIC/AVIF ...), 1 when absent or malformed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            value = int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


def load_oriented(item: Decodable, min_size: int | None = None) -> Image.Image:
    """Decode as displayed (EXIF orientation applied), RGB; decoded once per item and size.

    With ``min_size``, JPEGs are decoded in Pillow's draft mode: the DCT scales down by 1/2, 1/4 or 1/8
    while both sides stay >= ``min_size``, which skips most of the decoding work for perceptual hashing.
    The turn is applied to :func:`load_stored`'s decode (the same pixels, not a second decode).
    Callers must not modify the returned image (it is shared).
    """
    cached = item._oriented.get(min_size)
    if cached is None:
        stored = load_stored(item, min_size)
        turn = item._orientation or 1
        # the table, not ImageOps.exif_transpose: that re-reads and re-serialises the EXIF, which can fail
        cached = item._oriented[min_size] = stored.transpose(_TRANSPOSE[turn]) if turn != 1 else stored
    return cached


def load_stored(item: Decodable, min_size: int | None = None) -> Image.Image:
    """Decode the stored pixel grid (no EXIF orientation), RGB; decoded once per item and size.

    ``min_size`` drafts JPEGs as :func:`load_oriented` describes. What PDQ hashes (as threatexchange and HMA
    do). Callers must not modify the returned image (it is shared).
    """
    cached = item._stored.get(min_size)
    if cached is None:
        cached = item._stored[min_size] = _decode_stored(item, min_size)
    return cached


def _decode_stored(item: Decodable, min_size: int | None) -> Image.Image:
    img = open_image(item)  # also reads the orientation (item._orientation) for load_oriented
    if _over_budget(item, img):
        img = _load_reduced(item, img, min_size)
    elif min_size and img.format == "JPEG":
        w, h = img.size
        img.draft("RGB", (min(w, min_size), min(h, min_size)))
        img = _load(img)
        if img.size == (w, h) and item._decoded is None:
            item._decoded = img  # too small to scale down: this is the full decode, shared like the one below
    else:
        # the full decode, shared with the readers of the exact grid (Item.decoded()): one decode per item
        if item._decoded is None:
            item._decoded = _load(img)
        img = item._decoded
    return img if img.mode == "RGB" else _to_rgb(img)


def load_preview(item: Decodable, mode: str, size: tuple[int, int]) -> Image.Image:
    """The stored grid (no orientation) cheaply decoded at no less than about ``size``, for ``.convert(mode)``.

    JPEGs are drafted (``img.draft(mode, size)``); others decode at full resolution within the decode budget and reduced
    (RGB) beyond it. For comparisons that look at a few pixels (the EXIF thumbnail check). Not shared: the
    caller may modify it only after a copy.
    """
    img = open_image(item)
    if _over_budget(item, img):
        return _load_reduced(item, img)
    if img.format == "JPEG":
        img.draft(mode, size)
        return _load(img)
    return item._decoded if item._decoded is not None else _load(img)


#: pixels converted at a time by the strip-wise conversions of :func:`_to_rgb`
_STRIP_PIXELS = 1 << 20


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to RGB; transparency is composited on white so padding hashes consistently.

    Per-pixel conversions with full-size intermediates (compositing, 16-bit scaling) run strip by strip into
    the RGB result, so converting holds the source and the result, never two more copies.
    """
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return _by_strips(img, _composite_on_white)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        peak = float(img.getextrema()[1]) or 1.0  # type: ignore[arg-type]
        return _by_strips(img, lambda strip: _scale_to_rgb(strip, peak))
    return img.convert("RGB")


def _by_strips(img: Image.Image, convert: "Callable[[Image.Image], Image.Image]") -> Image.Image:
    width, height = img.size
    rows = max(1, _STRIP_PIXELS // max(1, width))
    if rows >= height:
        return convert(img)
    out = Image.new("RGB", img.size)
    for top in range(0, height, rows):
        out.paste(convert(img.crop((0, top, width, min(height, top + rows)))), (0, top))
    return out


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _scale_to_rgb(img: Image.Image, peak: float) -> Image.Image:
    import numpy as np

    arr = np.asarray(img, dtype=np.float64)
    return Image.fromarray((arr * (255.0 / peak)).astype("uint8")).convert("RGB")

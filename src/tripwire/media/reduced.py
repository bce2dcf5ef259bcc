"""Bounded-memory decoding of PNGs too large to hold at full resolution: strip by strip, box-reduced.

Pillow decodes a PNG into one full-size buffer, and a 570 KB file can declare 14000x14000 pixels (588 MB as
RGB; 6.1 GB peak through the hashing path before issue 11). Here the image is decoded a strip of rows at a
time and each strip is box-reduced (``Image.reduce``) by an integer factor into the output, so at most one
strip and the reduced image are ever held:

- the ``IDAT`` stream is inflated incrementally (``zlib.decompressobj`` with ``max_length``), never whole;
- each strip's filtered scanlines are unfiltered by Pillow's own PNG decoder: they are wrapped in a small
  synthetic PNG (one ``IDAT``, stored zlib blocks) whose first row is the previous strip's last raw row with
  filter type 0, so the ``Up``/``Average``/``Paeth`` filters of the strip's first row see the right row (for
  the first strip, zeros: PNG's own rule). The synthetic PNG's colour type is chosen so that Pillow's output
  bytes *are* the raw scanline bytes (8-bit grey, grey+alpha, RGB or RGBA for 1, 2, 3 or 4 bytes per pixel;
  16-bit RGB/RGBA, 6 and 8 bytes per pixel, are read twice, high and low bytes);
- the raw rows become a Pillow image with the file's own mode and raw mode (``Image.frombytes``), palette and
  transparency, exactly as Pillow's decoder would have unpacked them, and go through the same RGB conversion
  as a full decode.

Interlaced (Adam7) PNGs are reduced to their first pass: an exact 1/8 x 1/8 subsample of the image that the
file stores first, as its own complete sequence of scanlines, decoded as a small PNG on its own.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Callable, Iterator

from PIL import Image, ImageFile

from ..errors import ItemError
from .pixelview import PNG_SIGNATURE

#: decoded bytes one strip may take (raw rows + unpacked + RGB); the strip height follows from the width
STRIP_BYTES = 16 * 1024 * 1024
#: a strip is at least ``factor`` rows; images whose rows are so wide that this exceeds this bound are refused
MAX_STRIP_BYTES = 256 * 1024 * 1024
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: colour type of an 8-bit PNG whose pixels are this many bytes: Pillow hands back its raw scanline bytes
_RAW_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}
#: per 16-bit colour type: the (mode, raw modes giving the high and the low byte of each sample)
_WIDE = {2: ("RGB", "RGB;16B", "RGB;16L"), 6: ("RGBA", "RGBA;16B", "RGBA;16L")}


def reduce_factor(width: int, height: int, budget: int) -> int:
    """The smallest integer factor that brings the image to at most ``budget`` pixels."""
    factor = max(1, math.isqrt(max(0, width * height // max(1, budget))))
    while math.ceil(width / factor) * math.ceil(height / factor) > budget:
        factor += 1
    return factor


class _Png:
    def __init__(self, data: bytes) -> None:
        if not data.startswith(PNG_SIGNATURE):
            raise ItemError("decode_error", "not a PNG")
        self.data = data
        self.palette: bytes | None = None
        self.trns: bytes | None = None
        self.idat: list[tuple[int, int]] = []  # (offset, length) of every IDAT chunk's data, in order
        pos = 8
        header = None
        while pos + 8 <= len(data):
            length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
            body = pos + 8
            end = body + length
            if ctype == b"IHDR":
                header = data[body:end]
            elif ctype == b"PLTE":
                self.palette = data[body:end]
            elif ctype == b"tRNS":
                self.trns = data[body:end]
            elif ctype == b"IDAT":
                self.idat.append((body, min(length, len(data) - body)))
            elif ctype == b"IEND":
                break
            pos = end + 4
        if header is None or len(header) < 13:
            raise ItemError("decode_error", "PNG without a valid IHDR")
        fields: tuple[int, ...] = struct.unpack(">IIBBBBB", header[:13])
        self.width, self.height, self.depth, self.ctype, _c, _f, self.interlace = fields
        if self.ctype not in _CHANNELS:
            raise ItemError("decode_error", f"PNG colour type {self.ctype} is invalid")
        self.bits = self.depth * _CHANNELS[self.ctype]
        self.bpp = max(1, self.bits // 8)

    def rowbytes(self, width: int) -> int:
        return (width * self.bits + 7) // 8

    def chunks(self) -> Iterator[memoryview]:
        view = memoryview(self.data)
        for offset, length in self.idat:
            yield view[offset : offset + length]

    def synthetic(self, width: int, height: int, depth: int, ctype: int, *rows: bytes, extra: bool = True) -> bytes:
        """A PNG of these scanlines (filter bytes included), stored uncompressed, with PLTE/tRNS if ``extra``."""

        def chunk(kind: bytes, body: bytes, crc: bool = True) -> bytes:
            check = zlib.crc32(body, zlib.crc32(kind)) if crc else 0
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", check)

        parts = [PNG_SIGNATURE, chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0))]
        if extra and self.palette is not None:
            parts.append(chunk(b"PLTE", self.palette))
        if extra and self.trns is not None:
            parts.append(chunk(b"tRNS", self.trns))
        packer = zlib.compressobj(0)
        stored = b"".join([packer.compress(r) for r in rows] + [packer.flush()])
        # Pillow does not check an IDAT's CRC (its decoder reads the data past the chunk reader): no need to
        # spend a CRC pass over every strip
        parts += [chunk(b"IDAT", stored, crc=False), chunk(b"IEND", b"")]
        return b"".join(parts)


def _rows(png: _Png, rowbytes: int, count: int, want: int) -> Iterator[bytes]:
    """The filtered scanlines (1 + ``rowbytes`` bytes each), ``want`` rows at a time, ``count`` rows in all."""
    inflater = zlib.decompressobj()
    size = 1 + rowbytes
    pending = bytearray()
    left = count
    chunks = png.chunks()
    tail = b""
    while left > 0:
        need = min(want, left) * size
        while len(pending) < need:
            if tail:
                src: bytes | memoryview = tail
            else:
                nxt = next(chunks, None)
                if nxt is None:
                    raise ItemError("decode_error", "PNG image data ends early")
                src = nxt
            pending += inflater.decompress(src, need - len(pending))
            tail = inflater.unconsumed_tail
            if inflater.eof and len(pending) < need:
                raise ItemError("decode_error", "PNG image data ends early")
        block = bytes(pending[:need])
        del pending[:need]
        left -= need // size
        yield block


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _unfilter(png: _Png, prev: bytes, rows: bytes, n: int) -> bytes:
    """The raw bytes of ``n`` filtered scanlines that follow the raw row ``prev``."""
    rowbytes = len(prev)
    body = (b"\x00", prev, rows)
    if png.bpp in _RAW_TYPE:
        raw_type = _RAW_TYPE[png.bpp]
        out = _open(png.synthetic(rowbytes // png.bpp, n + 1, 8, raw_type, *body, extra=False)).tobytes()
    else:  # 16-bit RGB(A): Pillow keeps 8 bits per sample, so read the high and then the low bytes
        import numpy as np

        mode, high, low = _WIDE[png.ctype]
        halves = []
        for rawmode in (high, low):
            img = Image.open(io.BytesIO(png.synthetic(png.width, n + 1, 16, png.ctype, *body, extra=False)))
            img.tile = [img.tile[0]._replace(args=rawmode)]
            img.load()
            halves.append(np.frombuffer(img.tobytes(), dtype=np.uint8))
        both = np.empty(halves[0].size * 2, dtype=np.uint8)
        both[0::2], both[1::2] = halves
        out = both.tobytes()
    return out[rowbytes:]


def decode_png_reduced(
    data: bytes,
    header: Image.Image,
    factor: int,
    to_rgb: Callable[[Image.Image], Image.Image],
) -> Image.Image:
    """The PNG in ``data`` (``header``: it opened by Pillow, not loaded) as RGB, box-reduced by ``factor``."""
    png = _Png(data)
    if (png.width, png.height) != header.size:
        raise ItemError("decode_error", "PNG header disagrees with itself")
    if png.interlace:
        return _first_pass(png, factor, to_rgb)
    tile = header.tile[0] if isinstance(header, ImageFile.ImageFile) and header.tile else None
    if tile is None:
        raise ItemError("decode_error", "PNG without image data")
    args = tile.args
    rawmode = args if isinstance(args, str) else str(args[0]) if args else header.mode
    mode = header.mode
    rowbytes = png.rowbytes(png.width)
    per_row = rowbytes + png.width * 8  # raw + unpacked (at most 4 bytes a pixel) + converted
    if min(factor, png.height) * per_row > MAX_STRIP_BYTES:
        raise ItemError("too_large", f"rows of {png.width} pixels are too wide to decode in bounded memory")
    step = factor * max(1, STRIP_BYTES // (per_row * factor))
    wide = mode.startswith("I")  # I;16 grey: reduced as 32-bit integers, scaled once at the end
    out = Image.new("I" if wide else "RGB", (math.ceil(png.width / factor), math.ceil(png.height / factor)))
    prev = bytes(rowbytes)
    top = 0
    for rows in _rows(png, rowbytes, png.height, step):
        n = len(rows) // (rowbytes + 1)
        raw = _unfilter(png, prev, rows, n)
        prev = raw[-rowbytes:]
        strip = Image.frombytes(mode, (png.width, n), raw, "raw", rawmode)
        if mode in ("P", "PA") and header.palette is not None:
            strip.putpalette(header.palette)
        strip.info.update(header.info)
        strip = strip.convert("I") if wide else to_rgb(strip)
        out.paste(strip.reduce(factor), (0, top // factor))
        top += n
    return to_rgb(out) if wide else out


def _first_pass(png: _Png, factor: int, to_rgb: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """Adam7's first pass (every 8th pixel of every 8th row) as its own image, reduced the rest of the way."""
    width, height = (png.width + 7) // 8, (png.height + 7) // 8
    rowbytes = png.rowbytes(width)
    rows = b"".join(_rows(png, rowbytes, height, height))
    img = to_rgb(_open(png.synthetic(width, height, png.depth, png.ctype, rows)))
    rest = math.ceil(factor / 8)
    return img.reduce(rest) if rest > 1 else img

"""The pixel view of an image file: the same bytes minus the metadata carriers, for the pixel decoder.

Why: Pillow parses metadata while it opens and decodes, and gives up on the whole image when that fails —
a PNG ``zTXt`` chunk that inflates past ``PngImagePlugin.MAX_TEXT_CHUNK`` (1 MiB), text chunks adding up
past ``MAX_TEXT_MEMORY``, an ``iCCP`` chunk with an unknown compression method, an ancillary chunk with a
bad CRC, a JPEG ``ICC_PROFILE``/``Photoshop``/``JFIF`` segment a few bytes short, an EXIF block Pillow reads
at open for the dpi. Browsers show all of these pictures, so a scanner that lets metadata fail the decode
is blind to them (issue 11: one zTXt chunk cost an item its PDQ and every match).

The rule: **pixels are decoded whenever a browser would show them**, and metadata never decides that. So the
decoder is never handed the metadata at all. Lifting Pillow's limits for the decode would not do: a
compressed text chunk is a zlib bomb (1 MiB of zTXt inflates to 1 GiB), and other carriers fail for reasons
no limit controls. Removing the carriers is exact, because none of them changes a decoded pixel:

- PNG: every ancillary chunk (lower-case first letter) is dropped except ``tRNS`` (transparency) and the
  APNG chunks ``acTL``/``fcTL``/``fdAT`` (frames). Critical chunks (IHDR, PLTE, IDAT, IEND, unknown
  upper-case ones) pass through verbatim, CRCs included, so a damaged image stays exactly as damaged.
  ``gAMA``/``cHRM``/``sRGB``/``iCCP``/``cICP``/``pHYs`` only fill ``img.info`` in Pillow; nothing here reads them.
- JPEG: up to the first start-of-scan, APPn and COM segments are dropped except what steers decoding —
  APP0 ``JFIF`` and APP14 ``Adobe`` (colour transform) when long enough for libjpeg to honour them (14 and 12
  bytes; libjpeg ignores shorter ones, so dropping those changes nothing), APP2 ``MPF`` and the main APP1
  XMP packet (Pillow decides MPO vs JPEG, and Ultra HDR, from these; both are bounded at 64 KiB and only
  stored). If Pillow still rejects the MPF, the view without it is used: Pillow's own fallback for a
  malformed MPO is "a base JPEG" too. Everything from the scan on is copied verbatim.
- Anything else (WebP, whose metadata libwebp only hands over as bytes; GIF, TIFF, HEIC/AVIF ...) is
  decoded as it is.

Metadata is read separately, by tripwire's own bounded readers (:mod:`tripwire.provenance.containers`), and
their failures become provenance notes. The one piece of metadata the pixels need, the EXIF orientation, is
read here by :func:`exif_orientation`: a hand-written, bounds-checked look at IFD0 that cannot raise.
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: ancillary PNG chunks that change what the decoder produces
_PNG_KEEP_ANCILLARY = {b"tRNS", b"acTL", b"fcTL", b"fdAT"}
_ORIENTATION_TAG = 0x0112
_XMP_SIG = b"http://ns.adobe.com/xap/1.0/\x00"


def pixel_view(data: bytes, keep_mpf: bool = True) -> bytes:
    """``data`` without the metadata carriers that do not change a decoded pixel (``data`` itself if none)."""
    try:
        if data.startswith(PNG_SIGNATURE):
            return _png_view(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_view(data, keep_mpf)
    except Exception:  # pragma: no cover - the walkers are bounds-checked; never lose the decode over them
        return data
    return data


def _png_view(data: bytes) -> bytes:
    parts: list[bytes] = [data[:8]]
    pos = 8
    dropped = False
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):  # truncated or lying: hand the rest over as it is
            break
        if ctype[:1].islower() and ctype not in _PNG_KEEP_ANCILLARY:
            dropped = True
        else:
            parts.append(data[pos:end])
        pos = end
        if ctype == b"IEND":
            break
    if not dropped:
        return data
    parts.append(data[pos:])
    return b"".join(parts)


def _keep_jpeg_segment(marker: int, body: bytes, keep_mpf: bool) -> bool:
    if marker == 0xFE:  # COM
        return False
    if not 0xE0 <= marker <= 0xEF:
        return True
    if marker == 0xE0:
        return body.startswith(b"JFIF\x00") and len(body) >= 14
    if marker == 0xEE:
        return body.startswith(b"Adobe") and len(body) >= 12
    if marker == 0xE2:
        return keep_mpf and body.startswith(b"MPF\x00")
    if marker == 0xE1:
        return body.startswith(_XMP_SIG)
    return False


def _jpeg_view(data: bytes, keep_mpf: bool) -> bytes:
    parts: list[bytes] = [data[:2]]
    pos = 2
    dropped = False
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break  # not at a marker: leave the rest to the decoder as it is
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            parts.append(data[pos : pos + 1])
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            parts.append(data[pos : pos + 2])
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan: the rest is entropy-coded data
            break
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        end = pos + 2 + length
        if length < 2 or end > len(data):
            break
        if _keep_jpeg_segment(marker, data[pos + 4 : end], keep_mpf):
            parts.append(data[pos:end])
        else:
            dropped = True
        pos = end
    if not dropped:
        return data
    parts.append(data[pos:])
    return b"".join(parts)


# --- EXIF orientation -------------------------------------------------------------------------------------


def find_exif(data: bytes) -> bytes | None:
    """The TIFF-structured EXIF block of a PNG (first ``eXIf``), JPEG (first APP1 Exif) or WebP (``EXIF``);
    None when absent or the container is not one of these."""
    if data.startswith(PNG_SIGNATURE):
        pos = 8
        while pos + 8 <= len(data):
            length = struct.unpack(">I", data[pos : pos + 4])[0]
            ctype = data[pos + 4 : pos + 8]
            if ctype == b"eXIf":
                return strip_exif_header(data[pos + 8 : pos + 8 + length])
            if ctype == b"IEND":
                break
            pos += 12 + length
        return None
    if data.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 4 <= len(data) and data[pos] == 0xFF:
            marker = data[pos + 1]
            if marker == 0xFF:
                pos += 1
                continue
            if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
                pos += 2
                continue
            if marker in (0xD9, 0xDA):
                break
            length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
            if length < 2:
                break
            body = data[pos + 4 : pos + 2 + length]
            if marker == 0xE1 and body.startswith(b"Exif\x00"):
                return strip_exif_header(body)
            pos += 2 + length
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        pos = 12
        while pos + 8 <= len(data):
            ctype = data[pos : pos + 4]
            length = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
            if ctype == b"EXIF":
                return strip_exif_header(data[pos + 8 : pos + 8 + length])
            pos += 8 + length + (length & 1)
        return None
    return None


def strip_exif_header(raw: bytes) -> bytes:
    """A TIFF-structured EXIF block without the ``Exif\\0\\0`` marker that JPEG APP1, PNG and WebP may carry."""
    if raw.startswith(b"Exif\x00\x00"):
        return raw[6:]
    if raw.startswith(b"Exif\x00"):
        return raw[5:]
    return raw


def tiff_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of IFD0 in a TIFF-structured block, 1 when absent, malformed or out of range."""
    if tiff[:4] == b"II*\x00":
        fmt = "<"
    elif tiff[:4] == b"MM\x00*":
        fmt = ">"
    else:
        return 1
    try:
        ifd = struct.unpack(fmt + "I", tiff[4:8])[0]
        if ifd + 2 > len(tiff):
            return 1
        count = struct.unpack(fmt + "H", tiff[ifd : ifd + 2])[0]
        count = min(count, (len(tiff) - ifd - 2) // 12)
        for i in range(count):
            at = ifd + 2 + 12 * i
            tag, typ, n = struct.unpack(fmt + "HHI", tiff[at : at + 8])
            if tag != _ORIENTATION_TAG:
                continue
            if n < 1:
                return 1
            if typ == 3:  # SHORT
                value = struct.unpack(fmt + "H", tiff[at + 8 : at + 10])[0]
            elif typ == 4:  # LONG
                value = struct.unpack(fmt + "I", tiff[at + 8 : at + 12])[0]
            elif typ == 1:  # BYTE
                value = tiff[at + 8]
            else:
                return 1
            return value if 1 <= value <= 8 else 1
    except (struct.error, IndexError):
        return 1
    return 1


def exif_orientation(data: bytes) -> int | None:
    """The displayed orientation (1-8) from the file's own EXIF, or None when this module cannot find EXIF in
    this kind of container (the caller then asks the decoder)."""
    if not (data.startswith((PNG_SIGNATURE, b"\xff\xd8")) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")):
        return None
    tiff = find_exif(data)
    return tiff_orientation(tiff) if tiff else 1

"""Pull the metadata carriers out of an image file without trusting it: text chunks, EXIF, XMP, comments.

Every provenance reader (EXIF, XMP, the generator parsers) needs the same raw carriers, and every one of them
would otherwise re-open the file with a different parser that fails differently on hostile input. This module
walks the container structure once, by hand, with hard caps on what it keeps, and never raises: a truncated
or lying file yields whatever could be read plus a note saying what went wrong.

Covered: PNG (tEXt, zTXt, iTXt, eXIf — also after IDAT, where Pillow only looks after a full decode), JPEG
(APP1 EXIF, APP1 XMP incl. extended XMP, COM), WebP (EXIF, XMP chunks), TIFF (the file itself is the EXIF
structure; XMP in tag 700) and, through Pillow, HEIC/AVIF and anything else that exposes ``info['exif']`` /
``info['xmp']``.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field

#: one text value (PNG chunk, comment, XMP packet) is cut at this many bytes
MAX_TEXT_BYTES = 4 * 1024 * 1024
#: all text kept from one file, summed
MAX_TOTAL_TEXT_BYTES = 16 * 1024 * 1024
#: at most this many PNG/RIFF chunks or JPEG segments are walked
MAX_CHUNKS = 100_000


@dataclass
class MetadataBundle:
    """The raw metadata carriers of one file, as found (bounded)."""

    media_type: str
    #: PNG text chunks, keyword -> text (a repeated keyword gets ``keyword#2`` ...)
    text: dict[str, str] = field(default_factory=dict)
    #: TIFF-structured EXIF bytes (starting with ``II*\\0`` / ``MM\\0*``), or None
    exif: bytes | None = None
    #: XMP packets as text
    xmp: list[str] = field(default_factory=list)
    #: JPEG COM segments
    comments: list[str] = field(default_factory=list)
    #: what could not be read, for the record (never raised)
    notes: list[str] = field(default_factory=list)


class _Budget:
    def __init__(self, total: int = MAX_TOTAL_TEXT_BYTES) -> None:
        self.left = total

    def take(self, raw: bytes) -> bytes | None:
        if self.left <= 0:
            return None
        raw = raw[: min(MAX_TEXT_BYTES, self.left)]
        self.left -= len(raw)
        return raw


def _inflate(raw: bytes, limit: int = MAX_TEXT_BYTES) -> bytes:
    """zlib-decompress at most ``limit`` bytes (a compressed chunk can be a bomb)."""
    d = zlib.decompressobj()
    out = d.decompress(raw, limit)
    return out


def _strip_exif_header(raw: bytes) -> bytes:
    if raw.startswith(b"Exif\x00\x00"):
        return raw[6:]
    if raw.startswith(b"Exif\x00"):
        return raw[5:]
    return raw


def _add_text(bundle: MetadataBundle, key: str, value: str) -> None:
    name, n = key, 1
    while name in bundle.text:
        n += 1
        name = f"{key}#{n}"
    bundle.text[name] = value


def _png(data: bytes, bundle: MetadataBundle, budget: _Budget) -> None:
    pos = 8
    count = 0
    while pos + 8 <= len(data) and count < MAX_CHUNKS:
        count += 1
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        ctype = data[pos + 4 : pos + 8]
        start, end = pos + 8, pos + 8 + length
        if end > len(data):
            bundle.notes.append(f"png: chunk {ctype!r} runs past the end of the file")
            end = len(data)
        body = data[start:end]
        pos = end + 4  # skip CRC
        try:
            if ctype == b"tEXt":
                key, _, value = body.partition(b"\x00")
                kept = budget.take(value)
                if kept is not None:
                    _add_text(bundle, key.decode("latin-1"), kept.decode("latin-1"))
            elif ctype == b"zTXt":
                key, _, rest = body.partition(b"\x00")
                kept = budget.take(_inflate(rest[1:]))
                if kept is not None:
                    _add_text(bundle, key.decode("latin-1"), kept.decode("latin-1"))
            elif ctype == b"iTXt":
                key, _, rest = body.partition(b"\x00")
                if len(rest) < 2:
                    continue
                compressed = rest[0] == 1
                rest = rest[2:]
                _lang, _, rest = rest.partition(b"\x00")
                _tkey, _, value = rest.partition(b"\x00")
                if compressed:
                    value = _inflate(value)
                kept = budget.take(value)
                if kept is None:
                    continue
                text = kept.decode("utf-8", errors="replace")
                keyword = key.decode("latin-1")
                if keyword == "XML:com.adobe.xmp":
                    bundle.xmp.append(text)
                else:
                    _add_text(bundle, keyword, text)
            elif ctype == b"eXIf":
                if bundle.exif is None:
                    bundle.exif = _strip_exif_header(body)
            elif ctype == b"IEND":
                break
        except (zlib.error, ValueError, IndexError) as exc:
            bundle.notes.append(f"png: unreadable {ctype!r} chunk ({exc})")


_XMP_SIG = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_EXT_SIG = b"http://ns.adobe.com/xmp/extension/\x00"


def _jpeg(data: bytes, bundle: MetadataBundle, budget: _Budget) -> None:
    pos = 2
    count = 0
    extended: dict[bytes, dict[int, bytes]] = {}
    while pos + 4 <= len(data) and count < MAX_CHUNKS:
        count += 1
        if data[pos] != 0xFF:
            # not at a marker: tolerate fill bytes / garbage by resyncing on the next 0xFF
            nxt = data.find(b"\xff", pos)
            if nxt < 0:
                break
            pos = nxt
            continue
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan: metadata lives before the scan
            break
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if length < 2:
            bundle.notes.append(f"jpeg: segment 0x{marker:02X} has invalid length {length}")
            break
        body = data[pos + 4 : pos + 2 + length]
        pos += 2 + length
        if marker == 0xE1:
            if body.startswith(b"Exif\x00") and bundle.exif is None:
                bundle.exif = _strip_exif_header(body)
            elif body.startswith(_XMP_SIG):
                kept = budget.take(body[len(_XMP_SIG) :])
                if kept is not None:
                    bundle.xmp.append(kept.decode("utf-8", errors="replace"))
            elif body.startswith(_XMP_EXT_SIG):
                rest = body[len(_XMP_EXT_SIG) :]
                if len(rest) >= 40:
                    guid = rest[:32]
                    offset = struct.unpack(">I", rest[36:40])[0]
                    parts = extended.setdefault(guid, {})
                    if len(parts) < 4096:
                        parts[offset] = rest[40:]
        elif marker == 0xFE:
            kept = budget.take(body)
            if kept is not None:
                bundle.comments.append(kept.decode("utf-8", errors="replace"))
    for parts in extended.values():
        joined = b"".join(parts[k] for k in sorted(parts))
        kept = budget.take(joined)
        if kept is not None:
            bundle.xmp.append(kept.decode("utf-8", errors="replace"))


def _webp(data: bytes, bundle: MetadataBundle, budget: _Budget) -> None:
    pos = 12
    count = 0
    while pos + 8 <= len(data) and count < MAX_CHUNKS:
        count += 1
        ctype = data[pos : pos + 4]
        length = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + length]
        pos += 8 + length + (length & 1)
        if ctype == b"EXIF" and bundle.exif is None:
            bundle.exif = _strip_exif_header(body)
        elif ctype == b"XMP ":
            kept = budget.take(body)
            if kept is not None:
                bundle.xmp.append(kept.decode("utf-8", errors="replace"))


def _via_pillow(data: bytes, bundle: MetadataBundle, budget: _Budget) -> None:
    """HEIC/AVIF/TIFF/GIF...: let Pillow (and pillow-heif) find the carriers; headers only, no pixels."""
    from PIL import Image

    try:
        from ..media import image as _register_heif  # noqa: F401  (registers the HEIF/AVIF openers)
    except Exception:  # pragma: no cover
        pass
    try:
        with Image.open(io.BytesIO(data)) as img:
            info = dict(img.info)
            if img.format == "TIFF":
                xmp = getattr(img, "tag_v2", {}).get(700)
                if xmp:
                    raw = xmp if isinstance(xmp, bytes) else str(xmp).encode("utf-8")
                    kept = budget.take(raw)
                    if kept is not None:
                        bundle.xmp.append(kept.decode("utf-8", errors="replace"))
                if bundle.exif is None:
                    bundle.exif = data  # a TIFF file is itself the EXIF structure
            exif = info.get("exif")
            if isinstance(exif, bytes) and bundle.exif is None:
                bundle.exif = _strip_exif_header(exif)
            xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
            if xmp and img.format != "TIFF":
                raw = xmp if isinstance(xmp, bytes) else str(xmp).encode("utf-8")
                kept = budget.take(raw)
                if kept is not None:
                    bundle.xmp.append(kept.decode("utf-8", errors="replace"))
            comment = info.get("comment")
            if isinstance(comment, bytes | str) and comment:
                raw = comment if isinstance(comment, bytes) else comment.encode("utf-8")
                kept = budget.take(raw)
                if kept is not None:
                    bundle.comments.append(kept.decode("utf-8", errors="replace"))
    except Exception as exc:  # hostile headers raise anything
        bundle.notes.append(f"metadata: cannot parse container ({type(exc).__name__}: {exc})")


def read_bundle(data: bytes | None, media_type: str) -> MetadataBundle:
    """Collect every metadata carrier of ``data``; never raises."""
    bundle = MetadataBundle(media_type=media_type)
    if not data:
        return bundle
    budget = _Budget()
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            _png(data, bundle, budget)
        elif data.startswith(b"\xff\xd8"):
            _jpeg(data, bundle, budget)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            _webp(data, bundle, budget)
        else:
            _via_pillow(data, bundle, budget)
    except Exception as exc:  # a parser bug must not lose the item: record and go on
        bundle.notes.append(f"metadata: {type(exc).__name__}: {exc}")
    return bundle

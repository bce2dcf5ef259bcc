"""Pull the metadata carriers out of an image file without trusting it: text chunks, EXIF, XMP, comments.

Every provenance reader (EXIF, XMP, the generator parsers) needs the same raw carriers, and every one of them
would otherwise re-open the file with a different parser that fails differently on hostile input. This module
walks the container structure once, by hand, with hard caps on what it keeps, and never raises: a truncated
or lying file yields whatever could be read plus a note saying what went wrong.

Covered: PNG (tEXt, zTXt, iTXt, eXIf — also after IDAT, where Pillow only looks after a full decode), JPEG
(APP1 EXIF, APP1 XMP incl. extended XMP, COM), WebP (EXIF, XMP chunks), TIFF (the file itself is the EXIF
structure; XMP in tag 700) and, through Pillow, HEIC/AVIF and anything else that exposes ``info['exif']`` /
``info['xmp']``.

These readers are also why the pixel decoder never sees the metadata (:mod:`tripwire.media.pixelview`):
Pillow gives up on a whole image when a text chunk is over its limits, this module keeps what fits its own
caps and notes the rest, so a hostile carrier costs the item some metadata, never its digests or PDQ.

Caps bound CPU as well as memory: at most ``MAX_CHUNKS`` chunks/segments are walked, each doing constant
work plus a copy of its own bytes; compressed text is inflated only while the byte budget lasts (so a file of
many small zlib bombs inflates at most ``MAX_TOTAL_TEXT_BYTES`` in all); at most ``MAX_TEXT_ENTRIES`` text
chunks are kept, and repeated keywords are numbered with a per-keyword counter (linear, where probing
``key#2``, ``key#3`` ... for every repeat was quadratic: 20,000 ``tEXt`` chunks named ``k`` took ~95 s).
Every cap that is hit leaves one note.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field

from ..media.pixelview import strip_exif_header

#: one text value (PNG chunk, comment, XMP packet) is cut at this many bytes
MAX_TEXT_BYTES = 4 * 1024 * 1024
#: all text kept from one file, summed
MAX_TOTAL_TEXT_BYTES = 16 * 1024 * 1024
#: at most this many PNG/RIFF chunks or JPEG segments are walked
MAX_CHUNKS = 100_000
#: at most this many PNG text chunks are kept (generators write a handful)
MAX_TEXT_ENTRIES = 1024
#: at most this many notes are kept per file
MAX_NOTES = 50


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
    #: next number per repeated keyword (keeps numbering linear)
    _repeats: dict[str, int] = field(default_factory=dict, repr=False)
    _notes_dropped: int = field(default=0, repr=False)
    _text_capped: bool = field(default=False, repr=False)

    def note(self, text: str) -> None:
        """Record a problem (bounded: a file of a million bad chunks does not make a million notes)."""
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text)
        else:
            self._notes_dropped += 1


class _Budget:
    """The text bytes one file may still contribute; notes once when a value is cut or the budget runs out."""

    def __init__(self, bundle: MetadataBundle, total: int = MAX_TOTAL_TEXT_BYTES) -> None:
        self.left = total
        self.bundle = bundle
        self.exhausted_noted = False

    def room(self) -> int:
        """How many bytes the next value may have (0: none; the caller should not even inflate)."""
        if self.left <= 0 and not self.exhausted_noted:
            self.exhausted_noted = True
            self.bundle.note(f"metadata: text budget of {MAX_TOTAL_TEXT_BYTES} bytes used up; further text dropped")
        return max(0, min(MAX_TEXT_BYTES, self.left))

    def take(self, raw: bytes, what: str = "text") -> bytes | None:
        room = self.room()
        if room <= 0:
            return None
        if len(raw) > room:
            self.bundle.note(f"metadata: {what} truncated to {room} of {len(raw)} bytes")
            raw = raw[:room]
        self.left -= len(raw)
        return raw


def _inflate(raw: bytes, limit: int = MAX_TEXT_BYTES) -> tuple[bytes, bool]:
    """zlib-decompress at most ``limit`` bytes (a compressed chunk can be a bomb); (output, cut short)."""
    d = zlib.decompressobj()
    out = d.decompress(raw, limit)
    return out, bool(d.unconsumed_tail)


def _inflate_text(raw: bytes, budget: _Budget, what: str) -> bytes | None:
    """Inflate a compressed text value within the budget (nothing at all once it is spent)."""
    room = budget.room()
    if room <= 0:
        return None
    out, cut = _inflate(raw, room)
    if cut:
        budget.bundle.note(f"metadata: {what} truncated: inflates to more than {room} bytes")
    return budget.take(out, what)


def _text_room(bundle: MetadataBundle) -> bool:
    """May one more text chunk be kept? Notes (once) when the cap is reached."""
    if len(bundle.text) < MAX_TEXT_ENTRIES:
        return True
    if not bundle._text_capped:
        bundle._text_capped = True
        bundle.note(f"png: more than {MAX_TEXT_ENTRIES} text chunks; the rest were not kept")
    return False


def _add_text(bundle: MetadataBundle, key: str, value: str) -> None:
    """Keep ``value`` under ``key``, or ``key#2``, ``key#3`` ... when repeated (a counter per key: linear)."""
    if not _text_room(bundle):
        return
    name = key
    if name in bundle.text:
        n = bundle._repeats.get(key, 1)
        while name in bundle.text:
            n += 1
            name = f"{key}#{n}"
        bundle._repeats[key] = n
    bundle.text[name] = value


def _png(data: bytes, bundle: MetadataBundle, budget: _Budget) -> None:
    pos = 8
    count = 0
    icc_seen = False
    while pos + 8 <= len(data) and count < MAX_CHUNKS:
        count += 1
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        ctype = data[pos + 4 : pos + 8]
        start, end = pos + 8, pos + 8 + length
        if end > len(data):
            bundle.note(f"png: chunk {ctype!r} runs past the end of the file")
            end = len(data)
        pos = end + 4  # skip CRC
        if ctype in (b"tEXt", b"zTXt") and not _text_room(bundle):
            continue  # over the cap: not even sliced, so 100,000 chunks stay cheap
        body = data[start:end]
        try:
            if ctype == b"tEXt":
                key, _, value = body.partition(b"\x00")
                kept = budget.take(value, f"tEXt {key[:40]!r}")
                if kept is not None:
                    _add_text(bundle, key.decode("latin-1"), kept.decode("latin-1"))
            elif ctype == b"zTXt":
                key, _, rest = body.partition(b"\x00")
                kept = _inflate_text(rest[1:], budget, f"zTXt {key[:40]!r}")
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
                what = f"iTXt {key[:40]!r}"
                kept = _inflate_text(value, budget, what) if compressed else budget.take(value, what)
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
                    bundle.exif = strip_exif_header(body)
            elif ctype == b"iCCP" and not icc_seen:
                icc_seen = True
                _check_iccp(body, bundle)
            elif ctype == b"IEND":
                break
        except (zlib.error, ValueError, IndexError) as exc:
            bundle.note(f"png: unreadable {ctype!r} chunk ({exc})")
    if count >= MAX_CHUNKS and pos + 8 <= len(data):
        bundle.note(f"png: more than {MAX_CHUNKS} chunks; the rest were not read")


def _check_iccp(body: bytes, bundle: MetadataBundle) -> None:
    """The ICC profile is not kept, only checked: a note when it cannot be read (Pillow would have failed)."""
    _name, _, rest = body.partition(b"\x00")
    if not rest:
        bundle.note("png: iCCP chunk has no profile")
    elif rest[0] != 0:
        bundle.note(f"png: iCCP chunk uses unknown compression method {rest[0]}")
    else:
        _out, cut = _inflate(rest[1:], MAX_TEXT_BYTES)
        if cut:
            bundle.note(f"png: iCCP profile inflates to more than {MAX_TEXT_BYTES} bytes")


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
            bundle.note(f"jpeg: segment 0x{marker:02X} has invalid length {length}")
            break
        body = data[pos + 4 : pos + 2 + length]
        pos += 2 + length
        if marker == 0xE1:
            if body.startswith(b"Exif\x00") and bundle.exif is None:
                bundle.exif = strip_exif_header(body)
            elif body.startswith(_XMP_SIG):
                kept = budget.take(body[len(_XMP_SIG) :], "XMP packet")
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
        elif marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00") and len(body) < 14:
            bundle.note("jpeg: malformed ICC_PROFILE segment (shorter than its header)")
        elif marker == 0xFE:
            kept = budget.take(body, "JPEG comment")
            if kept is not None:
                bundle.comments.append(kept.decode("utf-8", errors="replace"))
    for parts in extended.values():
        joined = b"".join(parts[k] for k in sorted(parts))
        kept = budget.take(joined, "extended XMP packet")
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
            bundle.exif = strip_exif_header(body)
        elif ctype == b"XMP ":
            kept = budget.take(body, "XMP packet")
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
                bundle.exif = strip_exif_header(exif)
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
        bundle.note(f"metadata: cannot parse container ({type(exc).__name__}: {exc})")


def read_bundle(data: bytes | None, media_type: str) -> MetadataBundle:
    """Collect every metadata carrier of ``data``; never raises."""
    bundle = MetadataBundle(media_type=media_type)
    if not data:
        return bundle
    budget = _Budget(bundle)
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
        bundle.note(f"metadata: {type(exc).__name__}: {exc}")
    if bundle._notes_dropped:
        bundle.notes.append(f"metadata: {bundle._notes_dropped} more problems not listed")
    return bundle

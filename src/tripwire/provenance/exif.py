"""EXIF camera evidence: what a camera wrote about itself, and whether it still fits the picture.

EXIF is trivially forged, so on its own it is only *supporting* evidence for ``camera_original``; what makes it
useful is the detail (body serial, lens, maker note, an embedded thumbnail that still matches the pixels) and
its disagreement with other evidence (camera EXIF in a file that also carries a generator's parameters).

GPS is reported as present or absent only: coordinates never leave this module, so they never reach a report.
Generators abuse EXIF fields (ComfyUI writes its workflow into Make/Model, Fooocus its scheme name into the
maker note), so those are recognised and not mistaken for a camera. So are games and image programs that
write their own name into Make/Model (a Gran Turismo screenshot says Make "Polyphony Digital Inc."): the entry
keeps the fields, says why they are ``not_camera`` and carries ``camera: false``. An editing program in
``Software`` ("GIMP 2.4.5") is named in ``editor``: editing evidence (see :mod:`.software`).
"""

from __future__ import annotations

import io
import struct
import warnings
from typing import TYPE_CHECKING, Any

from PIL import Image

from .software import editor_name, not_camera_reason

if TYPE_CHECKING:
    import numpy as np

#: tags read from IFD0 / the Exif IFD (numeric ids keep this independent of Pillow's name tables)
MAKE, MODEL, SOFTWARE, DATETIME, ORIENTATION = 0x010F, 0x0110, 0x0131, 0x0132, 0x0112
IMAGE_DESCRIPTION, ARTIST, COPYRIGHT, DOCUMENT_NAME = 0x010E, 0x013B, 0x8298, 0x010D
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
MAKER_NOTE, USER_COMMENT = 0x927C, 0x9286
BODY_SERIAL, LENS_MAKE, LENS_MODEL, LENS_SERIAL = 0xA431, 0xA433, 0xA434, 0xA435
CAMERA_OWNER = 0xA430
THUMB_OFFSET, THUMB_LENGTH = 0x0201, 0x0202

_MAX_FIELD = 256
#: generator payloads that land in camera fields
_GENERATOR_PREFIXES = ("prompt:", "workflow:", "{", "[")
#: maker-note values written by generators instead of a real maker note
_FAKE_MAKER_NOTES = {"fooocus", "a1111"}


def load_exif(tiff: bytes | None, notes: list[str] | None = None) -> Image.Exif | None:
    """Parse TIFF-structured EXIF bytes with Pillow; None when absent or unparseable.

    With ``notes``, what was wrong with the block is appended there (for the provenance record): the EXIF
    reader's trouble is evidence about the file, never the item's error.
    """
    if not tiff:
        return None
    if len(tiff) < 8:
        if notes is not None:
            notes.append(f"exif: EXIF block of {len(tiff)} bytes is too short to read")
        return None
    try:
        with warnings.catch_warnings(record=True) as caught:  # Pillow warns on every bad tag of a damaged IFD
            warnings.simplefilter("always")
            exif = Image.Exif()
            exif.load(tiff)
        if caught and notes is not None:
            notes.append(f"exif: damaged IFD, {len(caught)} problem(s), first: {str(caught[0].message)[:120]}")
        return exif
    except Exception as exc:
        if notes is not None:
            notes.append(f"exif: unreadable EXIF block ({type(exc).__name__}: {str(exc)[:120]})")
        return None


def _ifd(exif: Image.Exif, tag: int) -> dict[int, Any]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(exif.get_ifd(tag) or {})
    except Exception:
        return {}


def clean_text(value: Any, limit: int = _MAX_FIELD) -> str | None:
    """A printable, stripped, bounded string from an EXIF value (bytes, str, or junk)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.split(b"\x00", 1)[0].decode("utf-8", errors="replace")
    elif not isinstance(value, str):
        value = str(value)
    value = value.replace("\x00", "").strip()
    value = "".join(ch for ch in value if ch.isprintable())
    return value[:limit] or None


def decode_user_comment(raw: Any) -> str | None:
    """Decode an EXIF UserComment: 8-byte charset prefix (ASCII / UNICODE / JIS / undefined) + payload.

    ``UNICODE`` payloads are UTF-16 without a BOM; writers disagree on the byte order (A1111 via piexif writes
    big-endian whatever the TIFF order), so the order is guessed from where the zero bytes of ASCII-range
    text fall.
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw.strip("\x00").strip() or None
    if not isinstance(raw, bytes | bytearray):
        return None
    raw = bytes(raw)
    prefix, body = raw[:8], raw[8:]
    if prefix == b"UNICODE\x00":
        sample = body[:400]
        even_zeros = sample[0::2].count(0)
        odd_zeros = sample[1::2].count(0)
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            text = body.decode("utf-16", errors="replace")
        else:
            text = body.decode("utf-16-be" if even_zeros >= odd_zeros else "utf-16-le", errors="replace")
    elif prefix == b"ASCII\x00\x00\x00":
        text = body.decode("utf-8", errors="replace")
    elif prefix == b"JIS\x00\x00\x00\x00\x00":
        text = body.decode("shift_jis", errors="replace")
    elif prefix == b"\x00" * 8:
        text = body.decode("utf-8", errors="replace")
    else:  # no charset prefix at all (Fooocus writes plain UTF-8)
        text = raw.decode("utf-8", errors="replace")
    text = text.rstrip("\x00").strip()
    return text or None


def exif_texts(exif: Image.Exif | None) -> dict[str, str]:
    """The free-text EXIF fields that generators write into, decoded (for the generator parsers)."""
    if exif is None:
        return {}
    out: dict[str, str] = {}
    for tag, name in (
        (IMAGE_DESCRIPTION, "ImageDescription"),
        (MAKE, "Make"),
        (MODEL, "Model"),
        (SOFTWARE, "Software"),
        (ARTIST, "Artist"),
        (COPYRIGHT, "Copyright"),
        (DOCUMENT_NAME, "DocumentName"),
    ):
        value = exif.get(tag)
        if value is not None:
            text = clean_text(value, limit=4 * 1024 * 1024)
            if text:
                out[name] = text
    sub = _ifd(exif, EXIF_IFD)
    comment = decode_user_comment(sub.get(USER_COMMENT))
    if comment:
        out["UserComment"] = comment
    maker = sub.get(MAKER_NOTE)
    if isinstance(maker, bytes | str) and len(maker) <= 64:
        text = clean_text(maker)
        if text and text.lower() in _FAKE_MAKER_NOTES:
            out["MakerNote"] = text
    return out


def _looks_like_camera_field(value: str | None) -> bool:
    if not value:
        return False
    return not value.lower().startswith(_GENERATOR_PREFIXES) and len(value) <= 128


def _thumbnail(tiff: bytes) -> tuple[bytes | None, str | None]:
    """The IFD1 JPEG thumbnail bytes, read with bounds checks on every offset."""
    try:
        order = tiff[:2]
        if order == b"II":
            fmt = "<"
        elif order == b"MM":
            fmt = ">"
        else:
            return None, None
        ifd0 = struct.unpack(fmt + "I", tiff[4:8])[0]
        if ifd0 + 2 > len(tiff):
            return None, "IFD0 offset outside the EXIF block"
        n = struct.unpack(fmt + "H", tiff[ifd0 : ifd0 + 2])[0]
        nxt_at = ifd0 + 2 + 12 * n
        if nxt_at + 4 > len(tiff):
            return None, None
        ifd1 = struct.unpack(fmt + "I", tiff[nxt_at : nxt_at + 4])[0]
        if ifd1 == 0:
            return None, None
        if ifd1 + 2 > len(tiff):
            return None, "IFD1 offset outside the EXIF block"
        n1 = min(struct.unpack(fmt + "H", tiff[ifd1 : ifd1 + 2])[0], 512)
        offset = length = None
        for i in range(n1):
            at = ifd1 + 2 + 12 * i
            if at + 12 > len(tiff):
                break
            tag, typ, _count = struct.unpack(fmt + "HHI", tiff[at : at + 8])
            value = struct.unpack(fmt + ("H" if typ == 3 else "I"), tiff[at + 8 : at + (10 if typ == 3 else 12)])[0]
            if tag == THUMB_OFFSET:
                offset = value
            elif tag == THUMB_LENGTH:
                length = value
        if offset is None or not length:
            return None, None
        if offset + length > len(tiff) or length > 1024 * 1024:
            return None, "thumbnail offset/length outside the EXIF block"
        return tiff[offset : offset + length], None
    except struct.error:
        return None, "malformed IFD"


def _content_box(gray: np.ndarray) -> tuple[int, int, int, int]:
    """Crop the black letterbox bars cameras add when the thumbnail's aspect differs from the photo's."""
    import numpy as np

    rows = np.where(gray.mean(axis=1) > 12)[0]
    cols = np.where(gray.mean(axis=0) > 12)[0]
    if len(rows) < 4 or len(cols) < 4:
        return 0, 0, gray.shape[1], gray.shape[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


#: EXIF thumbnails are about 160x120; one declaring more pixels than this is not decoded (a decompression bomb)
THUMBNAIL_MAX_PIXELS = 1 << 20


def thumbnail_facts(tiff: bytes, item: Any | None) -> dict[str, Any]:
    """Is there an embedded thumbnail, and does it still look like the main image?

    A mismatch means the pixels were changed after the camera wrote its EXIF (or the EXIF was transplanted):
    a cheap and telling check. The comparison is a correlation of 16x16 grey thumbnails after removing
    letterbox bars; the main image is decoded in JPEG draft mode, so this costs milliseconds.
    """
    import numpy as np

    thumb, problem = _thumbnail(tiff)
    facts: dict[str, Any] = {"present": thumb is not None}
    if problem:
        facts["problem"] = problem
    if thumb is None:
        return facts
    try:
        with Image.open(io.BytesIO(thumb)) as t:
            if t.size[0] * t.size[1] > THUMBNAIL_MAX_PIXELS:  # a few KB of JPEG can declare gigapixels
                facts["problem"] = f"thumbnail declares {t.size[0]}x{t.size[1]} pixels: not decoded"
                return facts
            t.load()
            facts["width"], facts["height"] = t.size
            tg = np.asarray(t.convert("L"), dtype=np.float64)
    except Exception as exc:
        facts["problem"] = f"thumbnail does not decode ({type(exc).__name__})"
        return facts
    if item is None:
        return facts
    try:
        from ..media.image import load_preview

        # JPEG: drafted to about twice the thumbnail; others within the decode budget, reduced beyond it
        main = load_preview(item, "L", (max(64, t.size[0] * 2), max(64, t.size[1] * 2))).convert("L")
        x0, y0, x1, y1 = _content_box(tg)
        tcrop = Image.fromarray(tg[y0:y1, x0:x1].astype("uint8"))
        a = np.asarray(tcrop.resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float64).ravel()
        b = np.asarray(main.resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float64).ravel()
        thumb_aspect = (x1 - x0) / max(1, y1 - y0)
        main_aspect = main.size[0] / max(1, main.size[1])
        facts["aspect_delta"] = round(abs(thumb_aspect - main_aspect) / main_aspect, 3)
        if a.std() < 1e-6 or b.std() < 1e-6:
            facts["consistent"] = None
            return facts
        corr = float(np.corrcoef(a, b)[0, 1])
        facts["correlation"] = round(corr, 3)
        facts["consistent"] = bool(corr >= 0.75 and facts["aspect_delta"] <= 0.1)
    except Exception as exc:
        facts["problem"] = f"cannot compare with the image ({type(exc).__name__})"
    return facts


def camera_evidence(tiff: bytes | None, item: Any | None = None, check_thumbnail: bool = True) -> dict[str, Any] | None:
    """The ``exif`` evidence entry, or None when the file has no EXIF at all."""
    exif = load_exif(tiff)
    if exif is None or tiff is None:  # exif is None whenever tiff is: the second test narrows tiff's type
        return None
    sub = _ifd(exif, EXIF_IFD)
    gps = _ifd(exif, GPS_IFD)
    make = clean_text(exif.get(MAKE))
    model = clean_text(exif.get(MODEL))
    if not _looks_like_camera_field(make):
        make = None
    if not _looks_like_camera_field(model):
        model = None
    maker_note = sub.get(MAKER_NOTE)
    maker_note_present = False
    if isinstance(maker_note, bytes | str) and len(maker_note) > 0:
        text = clean_text(maker_note) if len(maker_note) <= 64 else None
        maker_note_present = not (text and text.lower() in _FAKE_MAKER_NOTES)
    try:
        orientation_tag = exif.get(ORIENTATION)
        orientation = int(orientation_tag) if orientation_tag is not None else None
    except (TypeError, ValueError):
        orientation = None
    lens = clean_text(sub.get(LENS_MODEL))
    lens_make = clean_text(sub.get(LENS_MAKE))
    entry: dict[str, Any] = {
        "source": "exif",
        "make": make,
        "model": model,
        "body_serial": clean_text(sub.get(BODY_SERIAL)),
        "lens": " ".join(x for x in (lens_make, lens) if x) or None,
        "software": clean_text(exif.get(SOFTWARE)),
        "capture_time": clean_text(sub.get(DATETIME_ORIGINAL)) or clean_text(exif.get(DATETIME)),
        "gps_present": any(k in gps for k in (1, 2, 3, 4)),  # latitude/longitude refs and values
        "orientation": orientation if orientation and 1 <= orientation <= 8 else None,
        "maker_note_present": maker_note_present,
    }
    if check_thumbnail and isinstance(tiff, bytes):
        entry["thumbnail"] = thumbnail_facts(tiff, item)
    else:
        entry["thumbnail"] = {"present": _thumbnail(tiff)[0] is not None}
    not_camera = not_camera_reason(make, model)
    if not_camera:
        entry["not_camera"] = not_camera
    editor = editor_name(entry["software"])
    if editor:
        entry["editor"] = editor
    entry["camera"] = bool(make or model or entry["body_serial"]) and not not_camera
    return entry

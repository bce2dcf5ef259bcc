"""Identify a file's type from its first bytes, never from its name.

Names lie (renamed evidence, uploads with fake extensions); magic bytes rarely do. The table covers the
image formats tripwire decodes, the video containers it must at least recognise and record, and the
archive formats it expands.
"""

from __future__ import annotations

OCTET_STREAM = "application/octet-stream"

IMAGE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/tiff",
        "image/bmp",
        "image/heic",
        "image/heif",
        "image/avif",
    }
)
ARCHIVE_TYPES = frozenset(
    {"application/zip", "application/x-tar", "application/gzip", "application/x-bzip2", "application/x-xz"}
)

# ISO base media file format brands (the 4 bytes after 'ftyp')
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_HEIF_BRANDS = {b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}
_QUICKTIME_BRANDS = {b"qt  "}
_3GP_PREFIX = (b"3gp", b"3g2")

#: How many leading bytes sniff() needs; callers read at least this much.
SNIFF_BYTES = 512


def _sniff_isobmff(head: bytes) -> str | None:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    major = head[8:12]
    try:
        box_len = int.from_bytes(head[0:4], "big")
    except ValueError:  # pragma: no cover - slicing bytes cannot fail
        box_len = 0
    compatible = {head[i : i + 4] for i in range(16, min(box_len, len(head)) - 3, 4)}
    brands = {major} | compatible
    if major in _AVIF_BRANDS:
        return "image/avif"
    if major in _HEIC_BRANDS:
        return "image/heic"
    if major in _HEIF_BRANDS:
        if brands & _AVIF_BRANDS:
            return "image/avif"
        if brands & _HEIC_BRANDS:
            return "image/heic"
        return "image/heif"
    if major in _QUICKTIME_BRANDS:
        return "video/quicktime"
    if major.startswith(_3GP_PREFIX):
        return "video/3gpp"
    return "video/mp4"


def sniff(head: bytes) -> str:
    """Return the MIME type for a file whose first bytes are ``head`` (use at least SNIFF_BYTES)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image/tiff"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
        return "image/bmp"
    isobmff = _sniff_isobmff(head)
    if isobmff:
        return isobmff
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"FLV\x01"):
        return "video/x-flv"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "video/x-ms-asf"
    if head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return "video/mpeg"
    if len(head) >= 377 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        return "video/mp2t"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "application/zip"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    if head.startswith(b"BZh") and len(head) > 3 and head[3:4].isdigit():
        return "application/x-bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "application/x-xz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "application/x-tar"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return OCTET_STREAM


def is_image(media_type: str | None) -> bool:
    return media_type in IMAGE_TYPES


def is_video(media_type: str | None) -> bool:
    return media_type is not None and media_type.startswith("video/")


def is_archive(media_type: str | None) -> bool:
    return media_type in ARCHIVE_TYPES

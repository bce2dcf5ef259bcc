"""Hostile metadata must never cost an image its digests, PDQ or matches (issue 11).

Every input here is built in the test from a benign synthesised picture (gradient + shapes) with a metadata
carrier bolted on that a metadata parser chokes on: oversized text chunks, many text chunks, a broken EXIF
IFD, a bad ICC profile, a giant XMP packet. Browsers show all of these pictures, so the scan must hash them:
the record has digests and the same PDQ as the clean picture, no item error, and the metadata reader's
trouble shows up as a provenance note instead.
"""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import pytest
from PIL import Image

from helpers import synth_image
from tripwire.config import load_config


def item_record(path: Path) -> dict[str, Any]:
    """The flat item record the scan stores for ``path`` (one place to adapt if the pipeline API moves)."""
    from tripwire.pipeline.worker import SourceProcessor, Task
    from tripwire.records import from_worker

    raws: list[dict[str, Any]] = []
    SourceProcessor(load_config()).process(Task(0, str(path)), lambda m: raws.append(m[2]) if m[0] == "record" else None)
    assert len(raws) == 1
    return from_worker(raws[0])


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def notes_of(record: dict[str, Any]) -> list[str]:
    return list((record.get("provenance") or {}).get("notes") or [])


# --- builders -------------------------------------------------------------------------------------------

MB = 1024 * 1024


def picture() -> Image.Image:
    return synth_image(11, (320, 240))


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def png_with(before_idat: list[bytes] = (), after_idat: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    """The clean PNG with extra chunks inserted right after IHDR and/or right before IEND."""
    buf = io.BytesIO()
    picture().save(buf, "PNG")
    data = buf.getvalue()
    ihdr_end = 8 + 12 + 13
    iend = data.rindex(b"IEND") - 4
    return data[:ihdr_end] + b"".join(before_idat) + data[ihdr_end:iend] + b"".join(after_idat) + data[iend:]


def ztxt(key: bytes, text: bytes) -> bytes:
    return _chunk(b"zTXt", key + b"\x00\x00" + zlib.compress(text, 9))


def itxt(key: bytes, text: bytes, compressed: bool) -> bytes:
    value = zlib.compress(text, 9) if compressed else text
    return _chunk(b"iTXt", key + b"\x00" + (b"\x01\x00" if compressed else b"\x00\x00") + b"\x00\x00" + value)


def text(key: bytes, value: bytes) -> bytes:
    return _chunk(b"tEXt", key + b"\x00" + value)


def broken_exif() -> bytes:
    """TIFF-structured EXIF whose IFD0 lies: huge counts, offsets past the end, a sub-IFD pointing at itself."""
    entries = [
        (0x010F, 2, 0xFFFFFFFF, 0x7FFFFFF0),  # Make: 4 GiB of ASCII far past the end
        (0x0110, 7, 0x00FFFFFF, 8),  # Model: 16 MiB UNDEFINED at the start of the block
        (0x8769, 4, 1, 8),  # Exif IFD pointer -> IFD0 itself (a loop)
        (0x0201, 4, 1, 0xFFFFFF00),  # thumbnail offset past the end
        (0x0202, 4, 1, 0x7FFFFFFF),  # thumbnail length absurd
        (0x9999, 12, 0x20000000, 0x10),  # DOUBLE x 512M
    ]
    body = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + struct.pack("<I", 8)
    return b"II*\x00" + struct.pack("<I", 8) + body + b"\x00" * 64


def big_ifd_exif(entries: int, size: int) -> bytes:
    """A well-formed-looking IFD0 with ``entries`` tags, each claiming the whole ``size``-byte block as its value."""
    head = b"II*\x00" + struct.pack("<I", 8)
    ifd = struct.pack("<H", entries) + b"".join(struct.pack("<HHII", 0xC000 + (i % 0x3000), 7, size - 16, 16)
                                                for i in range(entries)) + struct.pack("<I", 0)
    block = head + ifd
    return block + b"\x00" * max(0, size - len(block))


def xmp_packet(size: int) -> bytes:
    filler = b"<rdf:li>" + b"x" * 1000 + b"</rdf:li>"
    body = filler * (size // len(filler) + 1)
    return (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            b"<rdf:Bag>" + body + b"</rdf:Bag></rdf:RDF></x:xmpmeta>")


def jpeg_with(segments: list[bytes], keep_jfif: bool = True) -> bytes:
    """The clean JPEG with extra marker segments inserted right after SOI (and the JFIF APP0, if kept)."""
    buf = io.BytesIO()
    picture().save(buf, "JPEG", quality=92)
    data = buf.getvalue()
    assert data[2:4] == b"\xff\xe0"
    app0_end = 4 + struct.unpack(">H", data[4:6])[0]
    head = data[:app0_end] if keep_jfif else data[:2]
    return head + b"".join(segments) + data[app0_end:]


def seg(marker: int, body: bytes) -> bytes:
    assert len(body) + 2 <= 0xFFFF
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def extended_xmp(total: int) -> list[bytes]:
    """A giant XMP packet the way JPEG carries one: the main packet plus extended-XMP APP1 segments."""
    guid = b"0123456789ABCDEF0123456789ABCDEF"
    packet = xmp_packet(total)
    chunk = 65000
    out = [seg(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp_packet(100))]
    for off in range(0, len(packet), chunk):
        part = packet[off : off + chunk]
        out.append(seg(0xE1, b"http://ns.adobe.com/xmp/extension/\x00" + guid + struct.pack(">II", len(packet), off) + part))
    return out


def webp_with(**kw: Any) -> bytes:
    buf = io.BytesIO()
    picture().save(buf, "WEBP", lossless=True, **kw)
    return buf.getvalue()


def clean(fmt: str) -> bytes:
    if fmt == "png":
        return png_with()
    if fmt == "jpeg":
        return jpeg_with([])
    return webp_with()


#: name -> (format, builder, substring expected in a provenance note or None)
VARIANTS: dict[str, tuple[str, Callable[[], bytes], str | None]] = {
    # PNG text chunks: Pillow's MAX_TEXT_CHUNK (1 MiB decompressed) and MAX_TEXT_MEMORY (64 MiB in all)
    "png-ztxt-oversized": ("png", lambda: png_with([ztxt(b"Comment", b"a" * (5 * MB))]), "truncated"),
    "png-ztxt-oversized-after-idat": ("png", lambda: png_with(after_idat=[ztxt(b"Comment", b"a" * (5 * MB))]), "truncated"),
    "png-itxt-compressed-oversized": ("png", lambda: png_with([itxt(b"parameters", b"b" * (5 * MB), True)]), "truncated"),
    "png-itxt-plain-oversized": ("png", lambda: png_with([itxt(b"parameters", b"c" * (5 * MB), False)]), "truncated"),
    "png-text-oversized": ("png", lambda: png_with([text(b"Comment", b"d" * (5 * MB))]), "truncated"),
    "png-many-text-chunks": ("png", lambda: png_with([ztxt(b"k%d" % i, b"e" * 1_000_000) for i in range(70)]), "budget"),
    "png-xmp-giant": ("png", lambda: png_with([itxt(b"XML:com.adobe.xmp", xmp_packet(5 * MB), True)]), "truncated"),
    # PNG EXIF and ICC
    "png-exif-broken-ifd": ("png", lambda: png_with([_chunk(b"eXIf", broken_exif())]), "exif"),
    "png-exif-huge-ifd": ("png", lambda: png_with([_chunk(b"eXIf", big_ifd_exif(4000, 2 * MB))]), "exif"),
    "png-icc-bad-method": ("png", lambda: png_with([_chunk(b"iCCP", b"icc\x00\x01" + zlib.compress(b"x" * 100))]), "iCCP"),
    "png-icc-oversized": ("png", lambda: png_with([_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(b"\x00" * (5 * MB)))]), "iCCP"),
    "png-text-bad-crc": ("png", lambda: png_with([text(b"Comment", b"hello")[:-4] + b"\x00\x00\x00\x00"]), None),
    # JPEG: APP1 EXIF / XMP, APP2 ICC (Pillow parses EXIF at open for the dpi when JFIF gives none)
    "jpeg-exif-broken-ifd": ("jpeg", lambda: jpeg_with([seg(0xE1, b"Exif\x00\x00" + broken_exif())], keep_jfif=False), "exif"),
    "jpeg-exif-huge-ifd": ("jpeg", lambda: jpeg_with([seg(0xE1, b"Exif\x00\x00" + big_ifd_exif(5000, 65000))], keep_jfif=False), "exif"),
    "jpeg-icc-truncated": ("jpeg", lambda: jpeg_with([seg(0xE2, b"ICC_PROFILE\x00")]), "ICC"),
    "jpeg-icc-garbage": ("jpeg", lambda: jpeg_with([seg(0xE2, b"ICC_PROFILE\x00\x01\x01" + b"\xff" * 300)]), None),
    "jpeg-xmp-giant": ("jpeg", lambda: jpeg_with(extended_xmp(20 * MB)), "truncated"),
    "jpeg-photoshop-truncated": ("jpeg", lambda: jpeg_with([seg(0xED, b"Photoshop 3.0\x008BIM\x04\x04")]), None),
    "jpeg-jfif-truncated": ("jpeg", lambda: jpeg_with([seg(0xE0, b"JFIF\x00\x01")], keep_jfif=False), None),
    # WebP: EXIF / XMP / ICCP chunks
    "webp-exif-broken-ifd": ("webp", lambda: webp_with(exif=b"Exif\x00\x00" + broken_exif()), "exif"),
    "webp-xmp-giant": ("webp", lambda: webp_with(xmp=xmp_packet(20 * MB)), "truncated"),
    "webp-icc-garbage": ("webp", lambda: webp_with(icc_profile=b"\x00" * 300), None),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """The records of the clean pictures, one per container format."""
    folder = tmp_path_factory.mktemp("clean")
    out = {}
    for fmt in ("png", "jpeg", "webp"):
        path = folder / f"clean.{fmt}"
        path.write_bytes(clean(fmt))
        out[fmt] = item_record(path)
        assert out[fmt]["error"] is None and out[fmt]["pdq"]
    return out


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_hostile_metadata_keeps_digests_and_pdq(name, reference, tmp_path):
    fmt, build, note = VARIANTS[name]
    path = tmp_path / f"{name}.{fmt}"
    data = build()
    path.write_bytes(data)
    # sanity: the hostile carrier really is there and the pixels did not change
    ref = reference[fmt]

    record = item_record(path)

    assert record["error"] is None, record["error"]
    assert record["sha256"] and record["md5"] and record["sha1"]
    assert record["size"] == len(data)
    assert (record["width"], record["height"]) == (ref["width"], ref["height"])
    assert record["pdq"], "no PDQ"
    assert hamming(record["pdq"], ref["pdq"]) <= 2, (record["pdq"], ref["pdq"])
    assert record["pdq_quality"] == ref["pdq_quality"] or abs(record["pdq_quality"] - ref["pdq_quality"]) <= 2
    # the metadata readers ran and reported their trouble as provenance notes, not as the item's error
    assert record.get("provenance"), "provenance verdict missing"
    if note is not None:
        notes = notes_of(record)
        assert any(note.lower() in n.lower() for n in notes), notes


def test_many_text_chunks_are_linear(tmp_path):
    """20,000 tEXt chunks with one keyword: the key#n probing was quadratic (~95 s); now capped and linear."""
    path = tmp_path / "many.png"
    path.write_bytes(png_with([text(b"k", b"v") for _ in range(20_000)]))
    assert path.stat().st_size < 400_000

    start = time.monotonic()
    record = item_record(path)
    elapsed = time.monotonic() - start

    assert record["error"] is None, record["error"]
    assert record["pdq"]
    assert any("text chunks" in n for n in notes_of(record)), notes_of(record)
    assert elapsed < 10, f"{elapsed:.1f} s for 20,000 text chunks"


def test_text_chunk_keys_still_numbered():
    """Ordinary files keep today's shape: repeated keywords become key, key#2, key#3 ..."""
    from tripwire.provenance.containers import read_bundle

    bundle = read_bundle(png_with([text(b"k", b"1"), text(b"k", b"2"), text(b"k#2", b"x"), text(b"k", b"3")]), "image/png")
    assert bundle.text == {"k": "1", "k#2": "2", "k#2#2": "x", "k#3": "3"}
    assert bundle.notes == []


def test_orientation_still_applied_with_hostile_text(tmp_path):
    """EXIF orientation 6 in a PNG that also carries an oversized zTXt: dimensions swapped, PDQ variant as displayed."""
    exif = Image.Exif()
    exif[0x0112] = 6
    tiff = exif.tobytes()[6:] if exif.tobytes().startswith(b"Exif") else exif.tobytes()
    plain = tmp_path / "plain.png"
    plain.write_bytes(png_with())
    turned_pixels = tmp_path / "turned.png"
    buf = io.BytesIO()
    picture().transpose(Image.Transpose.ROTATE_90).save(buf, "PNG")  # what orientation 6 undoes
    turned_pixels.write_bytes(buf.getvalue())
    hostile = tmp_path / "hostile.png"
    buf = io.BytesIO()
    picture().transpose(Image.Transpose.ROTATE_90).save(buf, "PNG")
    data = buf.getvalue()
    hostile.write_bytes(data[:33] + _chunk(b"eXIf", tiff) + ztxt(b"Comment", b"a" * (2 * MB)) + data[33:])

    ref = item_record(plain)
    record = item_record(hostile)
    assert record["error"] is None, record["error"]
    assert (record["width"], record["height"]) == (ref["width"], ref["height"]) == (320, 240)
    assert hamming(record["pdq_variants"]["original"], ref["pdq"]) <= 2  # as displayed: orientation applied
    assert record["pdq"] == item_record(turned_pixels)["pdq"]  # the stored grid, as threatexchange hashes it

"""Hostile-input corpus, built in memory: every file is benign bytes (gradients, noise, placeholder words).

Nothing here is a committed binary blob; each builder returns the bytes of one hostile file, and
:func:`write_corpus` lays the whole corpus out in a folder (plus what only a folder can hold: a symbolic-link
loop, names with terminal escapes or bidi overrides, optionally a name that is not UTF-8).

Shapes follow issue 11: oversized zTXt/iTXt/tEXt, 20,000 text chunks, broken EXIF IFDs, bad ICC, giant XMP,
a PNG declaring 14000x14000, a zip bomb (compression ratio), archives nested past the depth cap, ``../`` and
absolute member names, non-UTF-8 member and file names, a symlink loop, VICS JSON nested 100,000 deep, VICS
integers above 2**63, a corrupt ``.gz`` bank list, CSV cells starting with ``=``, text with ESC/OSC
sequences and U+202E.

``CORPUS`` maps a file name to ``(builder, pixels_valid)``: ``pixels_valid`` says the file holds a decodable
picture whose PDQ the scan must still compute (the hostile part is metadata or the container around it).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Callable

from helpers import image_bytes, synth_image

MB = 1024 * 1024

# --- pictures -------------------------------------------------------------------------------------------


def picture(seed: int = 11, size: tuple[int, int] = (160, 120)):
    return synth_image(seed, size)


def clean_png(seed: int = 11) -> bytes:
    return image_bytes(picture(seed), "PNG")


def clean_jpeg(seed: int = 11) -> bytes:
    return image_bytes(picture(seed), "JPEG", quality=90)


# --- PNG chunks -----------------------------------------------------------------------------------------


def chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(type, body)`` of every chunk of a well-formed PNG."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunk(t, b) for t, b in chunks)


def png_with(before_idat: list[bytes] = (), after_idat: list[bytes] = (), seed: int = 11) -> bytes:  # type: ignore[assignment]
    """A clean PNG with raw chunks inserted right after IHDR and/or right before IEND."""
    data = clean_png(seed)
    ihdr_end = 8 + 12 + 13
    iend = data.rindex(b"IEND") - 4
    return data[:ihdr_end] + b"".join(before_idat) + data[ihdr_end:iend] + b"".join(after_idat) + data[iend:]


def text_chunk(key: bytes, value: bytes) -> bytes:
    return chunk(b"tEXt", key + b"\x00" + value)


def ztxt_chunk(key: bytes, value: bytes) -> bytes:
    return chunk(b"zTXt", key + b"\x00\x00" + zlib.compress(value, 9))


def itxt_chunk(key: bytes, value: bytes, compressed: bool) -> bytes:
    body = zlib.compress(value, 9) if compressed else value
    return chunk(b"iTXt", key + b"\x00" + (b"\x01\x00" if compressed else b"\x00\x00") + b"\x00\x00" + body)


# --- JPEG segments --------------------------------------------------------------------------------------


def segment(marker: int, body: bytes) -> bytes:
    assert len(body) + 2 <= 0xFFFF
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The marker segments of a JPEG before its first SOS, and the rest (SOS onwards, the pixel data)."""
    pos, out = 2, []
    while data[pos + 1] != 0xDA:
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        out.append((marker, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length
    return out, data[pos:]


def jpeg_from_segments(segments: list[tuple[int, bytes]], rest: bytes) -> bytes:
    return b"\xff\xd8" + b"".join(segment(m, b) for m, b in segments) + rest


def jpeg_with(extra: list[bytes], keep_jfif: bool = True, seed: int = 11) -> bytes:
    data = clean_jpeg(seed)
    app0_end = 4 + struct.unpack(">H", data[4:6])[0]
    head = data[:app0_end] if keep_jfif else data[:2]
    return head + b"".join(extra) + data[app0_end:]


# --- metadata payloads ----------------------------------------------------------------------------------


def broken_exif() -> bytes:
    """TIFF-structured EXIF whose IFD0 lies: huge counts, offsets past the end, a sub-IFD pointing at itself."""
    entries = [
        (0x010F, 2, 0xFFFFFFFF, 0x7FFFFFF0),  # Make: 4 GiB of ASCII far past the end
        (0x0110, 7, 0x00FFFFFF, 8),  # Model: 16 MiB UNDEFINED
        (0x8769, 4, 1, 8),  # Exif IFD -> IFD0 itself (a loop)
        (0x0112, 3, 1, 0x0009),  # Orientation 9 (out of range)
        (0x0201, 4, 1, 0xFFFFFF00),  # thumbnail offset past the end
        (0x0202, 4, 1, 0x7FFFFFFF),  # thumbnail length absurd
        (0x9999, 12, 0x20000000, 0x10),  # DOUBLE x 512M
    ]
    body = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + struct.pack("<I", 8)
    return b"II*\x00" + struct.pack("<I", 8) + body + b"\x00" * 64


def bad_icc() -> bytes:
    """An ICC profile that is all header and lies: size field 2 GiB, tag count 10^9, garbage tags."""
    header = struct.pack(">I", 0x7FFFFFFF) + b"lcms" + b"\x04\x30\x00\x00" + b"mntrRGB XYZ " + b"\x00" * 100
    return header[:128].ljust(128, b"\x00") + struct.pack(">I", 1_000_000_000) + b"\xff" * 200


def xmp_packet(size: int) -> bytes:
    filler = b"<rdf:li>alpha bravo term-1 " + b"x" * 1000 + b"</rdf:li>"
    body = filler * (size // len(filler) + 1)
    return (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            b"<rdf:Bag>" + body + b"</rdf:Bag></rdf:RDF></x:xmpmeta>")


def extended_xmp_segments(total: int) -> list[bytes]:
    guid = b"0123456789ABCDEF0123456789ABCDEF"
    packet = xmp_packet(total)
    out = [segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp_packet(100))]
    for off in range(0, len(packet), 65000):
        part = packet[off : off + 65000]
        out.append(segment(0xE1, b"http://ns.adobe.com/xmp/extension/\x00" + guid + struct.pack(">II", len(packet), off) + part))
    return out


ESCAPES = "term-1 \x1b[31mred\x1b[0m \x1b]0;window-title\x07 \x1b]8;;http://example.invalid/\x1b\\link\x1b]8;;\x1b\\ \u202ealpha-gnp.exe"

# --- images ---------------------------------------------------------------------------------------------


def png_ztxt_oversized() -> bytes:
    return png_with([ztxt_chunk(b"Comment", b"a" * (5 * MB))])


def png_itxt_oversized() -> bytes:
    return png_with([itxt_chunk(b"parameters", b"alpha " * (MB), True)], [itxt_chunk(b"Comment", b"b" * (5 * MB), False)])


def png_text_oversized() -> bytes:
    return png_with([text_chunk(b"Comment", b"c" * (5 * MB))])


def png_20k_text_chunks() -> bytes:
    return png_with([text_chunk(b"k", b"term-%d" % i) for i in range(20_000)])


def png_broken_exif() -> bytes:
    return png_with([chunk(b"eXIf", broken_exif())])


def png_bad_icc() -> bytes:
    return png_with([chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(bad_icc()))])


def png_icc_bomb() -> bytes:
    return png_with([chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(b"\x00" * (8 * MB)))])


def png_giant_xmp() -> bytes:
    return png_with([itxt_chunk(b"XML:com.adobe.xmp", xmp_packet(6 * MB), True)])


def png_escape_text() -> bytes:
    """Generator-looking parameters whose text carries ESC/OSC sequences and U+202E (placeholder words)."""
    params = f"{ESCAPES}\nNegative prompt: bravo\nSteps: 20, Sampler: Euler, Seed: 1, Size: 160x120, Model: term-2"
    return png_with([itxt_chunk(b"parameters", params.encode("utf-8"), False), text_chunk(b"Software", ESCAPES.encode("latin-1", "replace"))])


def png_formula_text() -> bytes:
    params = "=HYPERLINK(\"http://example.invalid\",\"alpha\")\nSteps: 20, Sampler: Euler, Seed: 1, Size: 160x120"
    return png_with([text_chunk(b"parameters", params.encode())])


def png_declares_14000() -> bytes:
    """IHDR says 14000x14000 RGB (196 megapixels, under the 200 MP cap); the IDAT holds a few rows only."""
    ihdr = struct.pack(">IIBBBBB", 14000, 14000, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" + b"\x80" * (14000 * 3) * 4)
    return png_from_chunks([(b"IHDR", ihdr), (b"IDAT", rows), (b"IEND", b"")])


def jpeg_broken_exif() -> bytes:
    return jpeg_with([segment(0xE1, b"Exif\x00\x00" + broken_exif())], keep_jfif=False)


def jpeg_bad_icc() -> bytes:
    return jpeg_with([segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + bad_icc()), segment(0xE2, b"ICC_PROFILE\x00")])


def jpeg_giant_xmp() -> bytes:
    return jpeg_with(extended_xmp_segments(20 * MB))


def jpeg_escape_comment() -> bytes:
    return jpeg_with([segment(0xFE, ESCAPES.encode("utf-8"))])


# --- archives -------------------------------------------------------------------------------------------


def zip_of(members: list[tuple[str | bytes, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name if isinstance(name, str) else name.decode("cp437"))
            info.compress_type = compression
            zf.writestr(info, data)
    return buf.getvalue()


def tar_of(members: list[tuple[str | bytes, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name if isinstance(name, str) else name.decode("utf-8", "surrogateescape"))
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bomb() -> bytes:
    """One member of 24 MiB of zeros: ratio ~1000:1, above the 200:1 cap (and above the 1 MiB floor)."""
    return zip_of([("zeros.bin", b"\x00" * (24 * MB)), ("picture.png", clean_png(21))])


def nested_past_depth(depth: int = 8) -> bytes:
    """A PNG inside ``depth`` zips inside each other (the cap is 5 levels)."""
    data = clean_png(22)
    name = "picture.png"
    for level in range(depth):
        data = zip_of([(name, data)])
        name = f"level{depth - level}.zip"
    return data


def unsafe_names_zip() -> bytes:
    png = clean_png(23)
    return zip_of([("../escape.png", png), ("/etc/absolute.png", png), ("C:\\drive.png", png), ("a/../../up.png", png),
                   ("fine/picture.png", png)])


def unsafe_names_tar() -> bytes:
    png = clean_png(24)
    return tar_of([("../escape.png", png), ("/abs/picture.png", png), ("ok.png", png)])


def non_utf8_member_tar() -> bytes:
    """A tar whose member names are not UTF-8 (Latin-1 and bare 0xFF bytes): decoded with surrogates by tarfile."""
    png = clean_png(25)
    return tar_of([(b"caf\xe9-alpha.png", png), (b"\xff\xfe-bravo.png", png)])


def non_utf8_member_zip() -> bytes:
    """A zip whose names are raw bytes without the UTF-8 flag (read as cp437)."""
    png = clean_png(26)
    return zip_of([(b"caf\x82-alpha.png", png), (b"\xff\xfe.png", png)])


def escape_member_zip() -> bytes:
    png = clean_png(27)
    return zip_of([("\x1b]0;title\x07alpha.png", png), ("\u202egnp.exe", png), ("=1+1.png", png)])


def corrupt_gz() -> bytes:
    """A gzip header followed by garbage deflate data."""
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"not-deflate-data-term-1" * 20


def truncated_gz_list() -> bytes:
    """A gzip'd hash list cut in the middle of its deflate stream."""
    lines = b"".join(b"%032x\n" % i for i in range(2000))
    full = gzip.compress(lines)
    return full[: len(full) // 2]


def truncated_tar_gz() -> bytes:
    full = tar_of([("a.png", clean_png(28)), ("b.png", clean_png(29))], mode="w:gz")
    return full[: len(full) * 2 // 3]


# --- lists and JSON -------------------------------------------------------------------------------------


def vics_deep(depth: int = 100_000) -> bytes:
    return b'{"value":' + b"[" * depth + b"]" * depth + b"}"


def vics_deep_in_media(depth: int = 100_000) -> bytes:
    """A valid Media, then one whose ``Tags`` value is nested ``depth`` arrays deep, then another valid one."""
    return (b'{"@odata.context":"x","value":[{"MediaID":1,"MD5":"' + b"9" * 32 + b'"},{"MediaID":2,"MD5":"'
            + b"a" * 32 + b'","Tags":' + b"[" * depth + b"]" * depth + b'},{"MediaID":3,"MD5":"' + b"b" * 32 + b'"}]}')


def vics_big_ints() -> bytes:
    """Numbers above 2**63 (and above 2**64) where VICS expects small integers; each Media has a valid MD5."""
    media = [
        {"MediaID": 2**63, "Category": 1, "MD5": "c" * 32},
        {"MediaID": 7, "Category": 2**64 + 3, "MD5": "d" * 32},
        {"MediaID": 8, "MediaSize": 2**70, "MD5": "e" * 32, "SHA1": "f" * 40,
         "MediaFiles": [{"FileName": "big.png", "FilePath": "case/"}]},
    ]
    return json.dumps({"@odata.context": "x", "value": media}).encode()


def csv_formula_list() -> bytes:
    """A CSV bank list whose text cells start with ``=``, ``+``, ``-``, ``@`` (spreadsheet formulas)."""
    rows = ["signal_type,value,category,source_id,series,tags,notes",
            "md5," + "1" * 32 + ",1,=HYPERLINK(\"http://example.invalid\"),+alpha,@bravo,=1+2",
            "md5," + "2" * 32 + ",2,-term-1,=cmd|' /C calc'!A0,alpha,\"=SUM(A1:A2)\""]
    return ("\n".join(rows) + "\n").encode()


def posts_escapes() -> bytes:
    lines = [
        {"platform": "example", "post_id": "1", "account": {"id": "a1", "bio": ESCAPES}, "text": ESCAPES, "tags": ["\u202ealpha"]},
        {"platform": "example", "post_id": "2", "account": {"id": "a2"}, "text": "=HYPERLINK(\"http://example.invalid\")"},
    ]
    return ("\n".join(json.dumps(x) for x in lines) + "\n{not json\n").encode()


#: file name -> (builder, the pixels are valid: PDQ required)
CORPUS: dict[str, tuple[Callable[[], bytes], bool]] = {
    "png-ztxt-oversized.png": (png_ztxt_oversized, True),
    "png-itxt-oversized.png": (png_itxt_oversized, True),
    "png-text-oversized.png": (png_text_oversized, True),
    "png-20k-text-chunks.png": (png_20k_text_chunks, True),
    "png-broken-exif.png": (png_broken_exif, True),
    "png-bad-icc.png": (png_bad_icc, True),
    "png-icc-bomb.png": (png_icc_bomb, True),
    "png-giant-xmp.png": (png_giant_xmp, True),
    "png-escapes.png": (png_escape_text, True),
    "png-formula.png": (png_formula_text, True),
    "png-declares-14000x14000.png": (png_declares_14000, False),
    "jpeg-broken-exif.jpg": (jpeg_broken_exif, True),
    "jpeg-bad-icc.jpg": (jpeg_bad_icc, True),
    "jpeg-giant-xmp.jpg": (jpeg_giant_xmp, True),
    "jpeg-escape-comment.jpg": (jpeg_escape_comment, True),
    "zip-bomb.zip": (zip_bomb, False),
    "nested-past-depth.zip": (nested_past_depth, False),
    "unsafe-names.zip": (unsafe_names_zip, False),
    "unsafe-names.tar": (unsafe_names_tar, False),
    "non-utf8-members.zip": (non_utf8_member_zip, False),
    "escape-members.zip": (escape_member_zip, False),
    "corrupt.gz": (corrupt_gz, False),
    "hashes.txt.gz": (truncated_gz_list, False),
    "truncated.tar.gz": (truncated_tar_gz, False),
    "vics-deep.json": (lambda: vics_deep(100_000), False),
    "vics-big-ints.json": (vics_big_ints, False),
    "formula-list.csv": (csv_formula_list, False),
    "posts-escapes.jsonl": (posts_escapes, False),
    # names that are hostile themselves (valid UTF-8): terminal escapes, bidi override, formula
    "\x1b]0;title\x07esc-name.png": (lambda: clean_png(31), True),
    "\u202egnp.exe-bidi-name.png": (lambda: clean_png(32), True),
    "=HYPERLINK(1)-formula-name.png": (lambda: clean_png(33), True),
}

#: members only a tar can name this way; scanned separately (issue 11: non-UTF-8 names)
NON_UTF8_CORPUS: dict[bytes, tuple[Callable[[], bytes], bool]] = {
    b"non-utf8-\xff\xfe-name.png": (lambda: clean_png(34), True),
    b"latin1-caf\xe9.jpg": (lambda: clean_jpeg(35), True),
    b"non-utf8-members.tar": (non_utf8_member_tar, False),
}


def write_corpus(folder: Path, *, non_utf8: bool = False, symlinks: bool = True,
                 only: list[str] | None = None) -> dict[str, bool]:
    """Write the corpus into ``folder``; returns ``{path: pixels_valid}`` for every regular file written.

    With ``symlinks``, adds a loop (``loop/up -> ..``, ``self -> self``) and a link out of the root; with
    ``non_utf8``, also the files whose names are not UTF-8 (bytes paths, returned with surrogates).
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, bool] = {}
    for name, (build, valid) in CORPUS.items():
        if only is not None and name not in only:
            continue
        path = folder / name
        path.write_bytes(build())
        written[str(path)] = valid
    if non_utf8:
        base = os.fsencode(folder)
        for raw, (build, valid) in NON_UTF8_CORPUS.items():
            full = os.path.join(base, raw)
            with open(full, "wb") as fh:
                fh.write(build())
            written[os.fsdecode(full)] = valid
    if symlinks:
        loop = folder / "loop"
        loop.mkdir(exist_ok=True)
        os.symlink("..", loop / "up")  # a directory cycle
        os.symlink("self-link", folder / "self-link")  # a link to itself
        os.symlink("/", folder / "outside-root")  # leaves the root: recorded, not followed
    return written

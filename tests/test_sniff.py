"""Magic-byte sniffing: every supported type recognised whatever the file is called."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest
from tripwire.media.sniff import sniff

from helpers import image_bytes, synth_image


@pytest.mark.parametrize(
    "fmt,mime",
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("GIF", "image/gif"), ("WEBP", "image/webp"),
     ("TIFF", "image/tiff"), ("BMP", "image/bmp")],
)
def test_pillow_formats(fmt, mime):
    assert sniff(image_bytes(synth_image(1, (32, 32)), fmt)[:512]) == mime


def test_heic_and_avif_fixtures(fixtures):
    assert sniff((fixtures / "c2pa" / "sample1.heic").read_bytes()[:512]) == "image/heic"
    assert sniff((fixtures / "c2pa" / "sample1.avif").read_bytes()[:512]) == "image/avif"


def _ftyp(brand: bytes, compatible: list[bytes]) -> bytes:
    body = b"ftyp" + brand + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (len(body) + 4).to_bytes(4, "big") + body + b"\x00" * 64


@pytest.mark.parametrize(
    "head,mime",
    [
        (_ftyp(b"isom", [b"isom", b"mp41"]), "video/mp4"),
        (_ftyp(b"qt  ", [b"qt  "]), "video/quicktime"),
        (_ftyp(b"3gp5", [b"3gp5"]), "video/3gpp"),
        (_ftyp(b"mif1", [b"mif1", b"heic"]), "image/heic"),
        (_ftyp(b"mif1", [b"mif1", b"avif"]), "image/avif"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm" + b"\x00" * 40, "video/webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska" + b"\x00" * 40, "video/x-matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video/x-msvideo"),
        (b"FLV\x01\x05", "video/x-flv"),
        (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9", "video/x-ms-asf"),
        (b"\x00\x00\x01\xba\x44", "video/mpeg"),
        ((b"\x47" + b"\x00" * 187) * 3, "video/mp2t"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"hello, plain text", "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_magic(head, mime):
    assert sniff(head) == mime


def test_archives():
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("a.txt", "alpha")
    assert sniff(zbuf.getvalue()[:512]) == "application/zip"
    for mode, mime in (("w", "application/x-tar"), ("w:gz", "application/gzip"), ("w:bz2", "application/x-bzip2"), ("w:xz", "application/x-xz")):
        tbuf = io.BytesIO()
        with tarfile.open(fileobj=tbuf, mode=mode) as tf:
            info = tarfile.TarInfo("a.txt")
            info.size = 5
            tf.addfile(info, io.BytesIO(b"alpha"))
        assert sniff(tbuf.getvalue()[:512]) == mime, mode

"""Property-based fuzzing (Hypothesis) of every parser that reads untrusted bytes.

For each target the property is the same: the parser returns, or raises only what it documents (``ItemError``
with a known code, ``RowError`` rows, ``JsonlError``/``UsageError`` with a position, ``AmbiguousSignalType``
for a whole list of 64-hex values), within a bounded time per example (the Hypothesis deadline). For images
there is one more: a fuzzed metadata chunk never costs the PDQ of otherwise-valid pixels.

Short by default (``FUZZ_EXAMPLES`` examples per target, derandomized, no example database: reproducible in
CI). Long runs: ``TRIPWIRE_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py`` (random seeds; add
``TRIPWIRE_FUZZ_SEED=N`` to replay one) or ``bench/fuzz.py`` (a time budget per target, figures for
bench/README.md).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import string
import struct
import tarfile
import zipfile
import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st

import hostile
from tripwire.config import Limits, load_config
from tripwire.errors import ERROR_CODES, ItemError, UsageError
from tripwire.jsonl import JsonlError, read_jsonl
from tripwire.media.archive import Budget, Member, iter_members
from tripwire.media.item import Item
from tripwire.media.sniff import sniff

#: Pillow warns on every damaged TIFF/EXIF tag it skips: expected noise when the input is fuzzed
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

LONG = int(os.environ.get("TRIPWIRE_FUZZ_EXAMPLES", "0") or 0)
FUZZ_EXAMPLES = LONG or 40
#: per-example time bound (ms); generous because the shared box is slow and noisy, tight enough to catch a hang
DEADLINE_MS = int(os.environ.get("TRIPWIRE_FUZZ_DEADLINE_MS", "5000"))

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
           HealthCheck.function_scoped_fixture, HealthCheck.large_base_example]


def fuzz_settings(examples: int | None = None, deadline_ms: int | None = None):
    n = examples if examples is not None and not LONG else FUZZ_EXAMPLES
    return settings(max_examples=n, deadline=deadline_ms or DEADLINE_MS, derandomize=not LONG, database=None,
                    suppress_health_check=_HEALTH, print_blob=True)


def replay(fn):
    """``TRIPWIRE_FUZZ_SEED=N``: a long run's failing seed, replayed."""
    value = os.environ.get("TRIPWIRE_FUZZ_SEED")
    return seed(int(value))(fn) if value else fn


LIMITS = Limits()
CONFIG = load_config(environ={})

# --- shared strategies ----------------------------------------------------------------------------------

#: short placeholder words and hostile characters (escapes, bidi, NUL, surrogate-free non-ASCII)
WORDS = st.sampled_from(["alpha", "bravo", "term-1", "term-2", "Steps: 20", "Seed: 7", "Negative prompt:", "{", "[", ":",
                         ",", "\n", "\x00", "\x1b]0;t\x07", "\u202e", "=1+1", "../", "é", "\ufeff", "NaN", "1e309"])
TEXT = st.one_of(st.text(max_size=200), st.lists(WORDS, max_size=30).map(" ".join))
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                        st.floats(allow_nan=False, allow_infinity=False), TEXT)
JSON = st.recursive(JSON_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                          st.dictionaries(st.one_of(TEXT, WORDS), inner, max_size=5)),
                    max_leaves=25)


@st.composite
def mutated(draw, data: bytes, max_edits: int = 8) -> bytes:
    """``data`` with a few random edits: byte flips, inserts, deletes, truncation, a chunk duplicated."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, max_edits))):
        if not buf:
            break
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup"]))
        pos = draw(st.integers(0, len(buf) - 1))
        if op == "flip":
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            buf[pos] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del buf[pos : pos + draw(st.integers(1, 64))]
        elif op == "truncate":
            del buf[pos:]
        else:
            n = draw(st.integers(1, 256))
            buf[pos:pos] = buf[pos : pos + n]
    return bytes(buf)


# --- the item property: run every default extractor, check the record -----------------------------------

_EXTRACTORS: list[Any] = []


def extractors() -> list[Any]:
    if not _EXTRACTORS:
        from tripwire.pipeline.extractors import default_extractors

        _EXTRACTORS.extend(default_extractors(CONFIG))
    return _EXTRACTORS


def run_item(data: bytes, name: str = "fuzz") -> dict[str, Any]:
    """The raw record of ``data`` through every default extractor; asserts the error contract."""
    from tripwire.pipeline.worker import new_record, run_extractors

    item = Item(name, data, len(data), LIMITS)
    record = run_extractors(item, extractors(), new_record(name, name, len(data), item.media_type))
    for ext, entry in record["facts"].items():
        err = entry["error"]
        if err is not None:
            assert err["code"] in ERROR_CODES, (ext, err)
            # extractor_error is the worker catching an exception nobody documented: a crash, found
            assert err["code"] != "extractor_error", (ext, err)
    assert record["facts"]["digests"]["data"]["sha256"]
    prov = record["facts"].get("provenance", {}).get("data") or {}
    for note in (prov.get("provenance") or {}).get("notes") or []:
        # parse_all turns a generator parser's exception into a note; that is a crash, found
        assert not any(note.startswith(f"{n}: ") for n in _PARSER_NAMES), note
    return record


_PARSER_NAMES = ("novelai", "comfyui", "invokeai", "swarmui", "fooocus", "midjourney", "a1111", "stealth")


@pytest.fixture(scope="module", autouse=True)
def _warm():
    """Import and JIT everything once, so the first example's deadline measures the parser, not start-up."""
    run_item(hostile.clean_png())
    run_item(hostile.clean_jpeg())


# --- 1. sniffing ----------------------------------------------------------------------------------------

MAGICS = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP", b"II*\x00", b"MM\x00*", b"BM",
          b"\x00\x00\x00\x18ftypheic", b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00avif", b"PK\x03\x04", b"\x1f\x8b",
          b"BZh9", b"\xfd7zXZ\x00", b"\x1aE\xdf\xa3", b"%PDF-", b""]


@replay
@fuzz_settings(examples=200, deadline_ms=500)
@given(st.sampled_from(MAGICS), st.binary(max_size=600))
def test_sniff(magic, tail):
    head = magic + tail
    kind = sniff(head)
    assert isinstance(kind, str) and "/" in kind
    assert sniff(head[:512]) == sniff(head[:512])


# --- 2. image open/decode + every provenance reader, through Item and the extractors ----------------------

SEEDS = {fmt: {"png": hostile.clean_png, "jpeg": hostile.clean_jpeg}[fmt]() for fmt in ("png", "jpeg")}


def _other_formats() -> dict[str, bytes]:
    from helpers import image_bytes

    pic = hostile.picture(5, (96, 64))
    out = {"gif": image_bytes(pic.convert("P"), "GIF"), "webp": image_bytes(pic, "WEBP", quality=80),
           "tiff": image_bytes(pic, "TIFF"), "bmp": image_bytes(pic, "BMP"),
           "png16": image_bytes(pic.convert("I;16"), "PNG"), "rgba": image_bytes(pic.convert("RGBA"), "PNG")}
    return out


SEEDS.update(_other_formats())


@replay
@fuzz_settings()
@given(st.data())
def test_image_bytes_mutated(data):
    fmt = data.draw(st.sampled_from(sorted(SEEDS)))
    run_item(data.draw(mutated(SEEDS[fmt], max_edits=12)), f"fuzz.{fmt}")


@replay
@fuzz_settings()
@given(st.binary(max_size=4096), st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x10\x00\x00WEBP",
                                                  b"II*\x00", b"GIF89a", b"\x00\x00\x00\x18ftypheic", b"BM"]))
def test_image_random_body(body, magic):
    run_item(magic + body)


# --- 3. fuzzed metadata never removes the PDQ of valid pixels ---------------------------------------------

#: metadata chunk types (never tRNS / APNG chunks, which change pixels or frames by design)
PNG_META = [b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"caBX", b"sRGB", b"gAMA", b"cHRM", b"pHYs", b"tIME", b"sBIT",
            b"bKGD", b"hIST", b"sPLT", b"dSIG", b"vpAg", b"orNT"]


@st.composite
def png_meta_chunk(draw) -> bytes:
    ctype = draw(st.one_of(st.sampled_from(PNG_META),
                           st.text(string.ascii_lowercase, min_size=1, max_size=1).flatmap(
                               lambda a: st.text(string.ascii_letters, min_size=3, max_size=3).map(lambda r: (a + r).encode()))))
    assume(ctype not in (b"tRNS", b"acTL", b"fcTL", b"fdAT"))
    kind = draw(st.sampled_from(["raw", "text", "ztxt", "itxt", "exif", "icc"]))
    if kind == "raw":
        body = draw(st.binary(max_size=300))
    elif kind == "text":
        body = draw(TEXT).encode("latin-1", "replace") + b"\x00" + draw(st.binary(max_size=200))
    elif kind == "ztxt":
        body = draw(TEXT).encode("utf-8")[:79] + b"\x00" + bytes([draw(st.integers(0, 2))]) + zlib.compress(draw(st.binary(max_size=400)))
    elif kind == "itxt":
        payload = draw(JSON.map(json.dumps)).encode("utf-8")
        comp = draw(st.booleans())
        body = (draw(st.sampled_from([b"parameters", b"prompt", b"workflow", b"XML:com.adobe.xmp", b"Comment", b"Description"]))
                + b"\x00" + bytes([comp, 0]) + b"en\x00\x00" + (zlib.compress(payload) if comp else payload))
    elif kind == "exif":
        body = draw(st.one_of(mutated(hostile.broken_exif()), st.binary(max_size=200).map(lambda b: b"MM\x00*\x00\x00\x00\x08" + b)))
    else:
        body = b"icc\x00\x00" + zlib.compress(draw(mutated(hostile.bad_icc())))
    raw = hostile.chunk(ctype, body)
    if draw(st.booleans()):  # sometimes lie about the CRC or the length
        raw = raw[:-4] + draw(st.binary(min_size=4, max_size=4))
    return raw


@st.composite
def jpeg_meta_segment(draw) -> bytes:
    marker = draw(st.sampled_from([0xE0, 0xE1, 0xE2, 0xE3, 0xEB, 0xEC, 0xED, 0xEF, 0xFE]))
    prefix = draw(st.sampled_from([b"", b"Exif\x00\x00", b"http://ns.adobe.com/xap/1.0/\x00", b"ICC_PROFILE\x00",
                                   b"http://ns.adobe.com/xmp/extension/\x00", b"Photoshop 3.0\x00", b"JFIF\x00", b"jumb"]))
    body = prefix + draw(st.one_of(st.binary(max_size=400), mutated(hostile.broken_exif()),
                                   JSON.map(lambda j: json.dumps(j).encode()), mutated(hostile.xmp_packet(300))))
    # segments the pixel view keeps on purpose, because they change how pixels decode, are not metadata
    assume(not (marker == 0xE2 and body.startswith(b"MPF\x00")))
    assume(not (marker == 0xE0 and body.startswith(b"JFIF\x00") and len(body) >= 14))
    return hostile.segment(marker, body[:65000])


_PDQ_REF: dict[tuple[str, int], str] = {}


def expected_pdq(fmt: str, orientation: int) -> str:
    """The clean picture's PDQ as displayed under ``orientation`` (a fuzzed EXIF may carry a real one)."""
    from tripwire.media.image import _TRANSPOSE
    from tripwire.signals.pdq import pdq_of_array

    key = (fmt, orientation)
    if key not in _PDQ_REF:
        img = Item("ref", SEEDS[fmt], len(SEEDS[fmt]), LIMITS).decoded().convert("RGB")
        if orientation in _TRANSPOSE:
            img = img.transpose(_TRANSPOSE[orientation])
        _PDQ_REF[key] = pdq_of_array(np.asarray(img))[0]
    return _PDQ_REF[key]


def _check_pdq(fmt: str, data: bytes) -> None:
    from tripwire.media.pixelview import exif_orientation

    record = run_item(data, f"meta.{fmt}")
    pdq = record["facts"]["pdq"]
    assert pdq["error"] is None, pdq["error"]
    assert pdq["data"]["pdq"] == expected_pdq(fmt, 1)  # the stored pixels, whatever the (fuzzed) EXIF says
    orientation = exif_orientation(data) or 1  # the displayed picture's hash is the variant "original"
    assert record["facts"]["pdq_variants"]["data"]["pdq_variants"]["original"] == expected_pdq(fmt, orientation)


@replay
@fuzz_settings()
@given(st.lists(png_meta_chunk(), min_size=1, max_size=6), st.lists(png_meta_chunk(), max_size=3))
def test_png_metadata_keeps_pdq(before, after):
    _check_pdq("png", hostile.png_with(before, after))


@replay
@fuzz_settings()
@given(st.lists(jpeg_meta_segment(), min_size=1, max_size=6), st.booleans())
def test_jpeg_metadata_keeps_pdq(segments, keep_jfif):
    _check_pdq("jpeg", hostile.jpeg_with(segments, keep_jfif=keep_jfif))


# --- 4. each provenance reader on its own ---------------------------------------------------------------


@replay
@fuzz_settings()
@given(st.one_of(st.binary(max_size=2000), mutated(hostile.broken_exif()), mutated(b"II*\x00\x08\x00\x00\x00" + bytes(200))))
def test_exif_reader(tiff):
    from tripwire.provenance.exif import camera_evidence, exif_texts, load_exif

    notes: list[str] = []
    exif = load_exif(tiff, notes)
    texts = exif_texts(exif)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in texts.items())
    camera_evidence(tiff, None, check_thumbnail=False)


XMP_DOC = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
           b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
           b'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
           b'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia" '
           b'xmp:CreatorTool="term-1"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


@replay
@fuzz_settings()
@given(st.one_of(st.text(max_size=500), mutated(XMP_DOC, 10).map(lambda b: b.decode("utf-8", "replace")),
                 st.just('<!DOCTYPE x [<!ENTITY a "alpha"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>')))
def test_xmp_reader(packet):
    from tripwire.provenance.xmp import parse_xmp, xmp_evidence

    facts = parse_xmp(packet)
    assert isinstance(facts, dict)
    xmp_evidence([packet, packet])


@replay
@fuzz_settings(deadline_ms=10_000)
@given(st.data())
def test_c2pa_reader(data):
    from tripwire.provenance.c2pa import c2pa_evidence

    fmt = data.draw(st.sampled_from(["png", "jpeg"]))
    base = SEEDS[fmt]
    jumbf = b"\x00\x00\x00\x30jumb\x00\x00\x00\x28jumdc2pa\x00\x11\x00\x10\x80\x00\x00\xaa\x008\x9bqc2pa\x00" + data.draw(st.binary(max_size=200))
    if fmt == "png":
        raw = hostile.png_with([hostile.chunk(b"caBX", jumbf)])
    else:
        raw = hostile.jpeg_with([hostile.segment(0xEB, b"JP\x00\x00\x00\x00\x00\x01" + jumbf)])
    raw = data.draw(st.one_of(st.just(raw), mutated(raw), mutated(base)))
    entry = c2pa_evidence(raw, f"image/{fmt}")
    assert entry["source"] == "c2pa" and "state" in entry


@replay
@fuzz_settings()
@given(st.binary(max_size=3000), st.sampled_from(["image/png", "image/jpeg", "image/webp", "image/tiff", "image/heic", "image/gif"]),
       st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"RIFF\x00\x00\x00\x00WEBP", b"II*\x00", b"GIF89a", b""]))
def test_metadata_containers(body, media_type, magic):
    from tripwire.provenance.containers import MAX_NOTES, read_bundle

    bundle = read_bundle(magic + body, media_type)
    assert len(bundle.notes) <= MAX_NOTES + 1


GENERATOR_KEYS = ["parameters", "prompt", "workflow", "Comment", "Description", "Software", "Title", "Source",
                  "Generation time", "invokeai_metadata", "sd-metadata", "Dream", "fooocus_scheme", "generation_data",
                  "Author", "Make", "negative_prompt", "sui_image_params"]


def _infotext(fields: dict[str, str], prompt: str) -> str:
    return prompt + "\nNegative prompt: bravo\n" + ", ".join(f"{k}: {v}" for k, v in fields.items())


GEN_VALUE = st.one_of(
    TEXT,
    JSON.map(json.dumps),
    st.dictionaries(st.sampled_from(["Steps", "Sampler", "CFG scale", "Seed", "Size", "Model", "Model hash", "Version"]),
                    st.one_of(TEXT, st.integers().map(str), st.just("1x")), max_size=8).flatmap(
        lambda f: TEXT.map(lambda p: _infotext(f, p))),
    st.dictionaries(st.sampled_from(["prompt", "steps", "seed", "sampler", "cfg_scale", "width", "height", "model",
                                     "uc", "scale", "n_samples", "signed_hash", "request_type", "inputs", "class_type",
                                     "image", "nodes", "links", "metadata_scheme", "base_model", "app_version"]),
                    JSON, max_size=8).map(json.dumps),
)


@st.composite
def parse_input(draw):
    from tripwire.provenance.containers import MetadataBundle
    from tripwire.provenance.generators import ParseInput

    bundle = MetadataBundle(media_type=draw(st.sampled_from(["image/png", "image/jpeg", "image/webp"])))
    bundle.text = draw(st.dictionaries(st.sampled_from(GENERATOR_KEYS), GEN_VALUE, max_size=4))
    bundle.comments = draw(st.lists(GEN_VALUE, max_size=2))
    exif_text = draw(st.dictionaries(st.sampled_from(["UserComment", "Software", "Make", "Model", "ImageDescription",
                                                      "Artist", "MakerNote"]), GEN_VALUE, max_size=3))
    # the shape parse_xmp returns: strings, plus the list of source types
    xmp = draw(st.dictionaries(st.sampled_from(["creator_tool", "ai_system", "ai_system_version", "ai_prompt", "description",
                                                "credit", "make", "model", "user_comment"]), TEXT, max_size=3))
    if draw(st.booleans()):
        xmp["digital_source_types"] = draw(st.lists(st.sampled_from(["trainedAlgorithmicMedia", "digitalCapture", "x"]), max_size=2))
    return ParseInput(bundle=bundle, exif_text=exif_text, xmp=xmp, pixels=None)


@replay
@fuzz_settings(examples=80)
@given(parse_input())
def test_generator_parsers(inp):
    """Each generator parser on its own: the registry would hide an exception as a note (a crash, found)."""
    from tripwire.provenance.generators import PARSERS

    for name, parse in PARSERS:
        results = parse(inp)
        assert isinstance(results, list), name
        json.dumps(results, default=str)


def _embed_alpha(payload_bits: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    arr = np.full((h, w, 4), 200, dtype=np.uint8)
    alpha = np.full(h * w, 254, dtype=np.uint8)
    n = min(len(payload_bits), h * w)
    alpha[:n] |= payload_bits[:n]
    arr[:, :, 3] = alpha.reshape(w, h).T  # column-major, as the reader walks it
    return arr


@replay
@fuzz_settings()
@given(st.sampled_from([b"stealth_pnginfo", b"stealth_pngcomp"]), st.integers(0, 2**32 - 1), st.one_of(
    st.binary(max_size=300), GEN_VALUE.map(lambda t: gzip.compress(t.encode())), GEN_VALUE.map(str.encode)), st.booleans())
def test_stealth_payload(signature, declared, payload, honest):
    from tripwire.provenance.containers import MetadataBundle
    from tripwire.provenance.generators import ParseInput, parse_all

    nbits = len(payload) * 8 if honest else declared
    head = signature + nbits.to_bytes(4, "big")
    bits = np.unpackbits(np.frombuffer(head + payload, dtype=np.uint8))
    arr = _embed_alpha(bits, (64, 64))
    inp = ParseInput(bundle=MetadataBundle(media_type="image/png"), pixels=lambda: arr)
    found, errors = parse_all(inp)
    assert not errors, errors
    json.dumps(found, default=str)


@replay
@fuzz_settings(examples=20, deadline_ms=15_000)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(256, 256), (264, 520), (512, 384)]), st.sampled_from(["RGB", "RGBA", "P", "L", "CMYK"]))
def test_watermark_decoder(noise_seed, size, mode):
    from PIL import Image

    from helpers import image_bytes
    from tripwire.provenance.watermark import watermark_evidence

    rng = np.random.default_rng(noise_seed)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB").convert(mode)
    data = image_bytes(img, "PNG" if mode != "CMYK" else "JPEG")
    entries = watermark_evidence(Item("wm", data, len(data), LIMITS))
    assert all(e["source"] == "watermark" for e in entries)


# --- 5. archives ----------------------------------------------------------------------------------------

MEMBER_NAME = st.one_of(
    st.text(min_size=1, max_size=40),
    st.sampled_from(["../up.png", "/abs.png", "C:\\x.png", "a/../../b", "dir/", ".", "..", "a\x00b", "\u202egnp.exe",
                     "\x1b]0;t\x07", "=1+1", "x" * 300]),
)
PNG3 = hostile.clean_png(3)
MEMBER_DATA = st.one_of(st.binary(max_size=300), st.just(PNG3), mutated(PNG3))


def _build_archive(kind: str, members: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    if kind == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(zipfile.ZipInfo(name.replace("\x00", "_") or "_"), data)
        return buf.getvalue(), "application/zip"
    if kind in ("tar", "tar.gz", "tar.bz2", "tar.xz"):
        mode = {"tar": "w", "tar.gz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}[kind]
        raw = hostile.tar_of([(n.replace("\x00", "_") or "_", d) for n, d in members], mode=mode)
        return raw, {"tar": "application/x-tar", "tar.gz": "application/gzip", "tar.bz2": "application/x-bzip2",
                     "tar.xz": "application/x-xz"}[kind]
    payload = members[0][1] if members else b""
    return {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind](payload), {
        "gz": "application/gzip", "bz2": "application/x-bzip2", "xz": "application/x-xz"}[kind]


def _drain(source: bytes, media_type: str, limits: Limits = LIMITS) -> list[Member]:
    out: list[Member] = []
    try:
        for member in iter_members(source, media_type, "fuzz.archive", limits, Budget(limits)):
            assert isinstance(member.name, str)
            if member.error is not None:
                assert member.error.code in ERROR_CODES
            if member.data is not None:
                assert len(member.data) == member.size
            out.append(member)
    except ItemError as exc:
        assert exc.code in ERROR_CODES
    return out


@replay
@fuzz_settings()
@given(st.sampled_from(["zip", "tar", "tar.gz", "tar.bz2", "tar.xz", "gz", "bz2", "xz"]),
       st.lists(st.tuples(MEMBER_NAME, MEMBER_DATA), max_size=5), st.data())
def test_archive_walker(kind, members, data):
    raw, media_type = _build_archive(kind, members)
    if data.draw(st.booleans()):
        raw = data.draw(mutated(raw))
    tiny = Limits(max_member_bytes=200, max_archive_total_bytes=500, max_archive_members=3, max_compression_ratio=2.0)
    _drain(raw, media_type)
    _drain(raw, media_type, tiny)
    # the same bytes through the scan's source processor (nesting, depth, per-member extractors)
    from tripwire.pipeline.worker import SourceProcessor, Task

    sent: list[Any] = []
    proc = SourceProcessor(CONFIG, extractors())
    item = Item("fuzz.archive", raw, len(raw), LIMITS, media_type)
    record = proc._item_record(item, "fuzz.archive")
    proc._expand(Task(0, "fuzz.archive"), raw, media_type, "fuzz.archive", 1, Budget(LIMITS), record, sent.append)
    for kind_, _tid, payload in sent:
        if kind_ == "record" and payload["error"]:
            assert payload["error"]["code"] in ERROR_CODES
            assert payload["error"]["code"] != "extractor_error", payload["error"]


# --- 6. bank importers ----------------------------------------------------------------------------------

HEXES = st.one_of(st.text("0123456789abcdefABCDEF", min_size=0, max_size=70), st.sampled_from(["a" * 32, "b" * 40, "c" * 64]),
                  TEXT, st.integers(-(2**70), 2**70))
MEDIA = st.fixed_dictionaries({}, optional={
    "MediaID": JSON_SCALAR, "MD5": HEXES, "SHA1": HEXES, "SHA256": HEXES, "Category": JSON, "Series": JSON,
    "Tags": JSON, "Comments": JSON, "MediaSize": JSON_SCALAR, "IsPrecategorized": JSON,
    "Category@tripwire.code": JSON,
    "AlternativeHashes": st.one_of(JSON, st.lists(st.fixed_dictionaries({}, optional={"HashName": st.one_of(
        st.sampled_from(["PDQ", "PhotoDNA", "SHA256", "MD5", "pdq", ""]), TEXT, JSON_SCALAR), "HashValue": HEXES}), max_size=3)),
    "MediaFiles": st.one_of(JSON, st.lists(st.fixed_dictionaries({}, optional={"FileName": TEXT, "FilePath": TEXT}), max_size=2)),
})
CASE = st.fixed_dictionaries({"Media": st.one_of(st.lists(MEDIA, max_size=3), JSON)}, optional={"CaseNumber": JSON_SCALAR})
VICS_DOC = st.one_of(
    st.fixed_dictionaries({"value": st.lists(st.one_of(MEDIA, CASE, JSON), max_size=4)},
                          optional={"@odata.context": TEXT, "odata.metadata": TEXT}),
    st.lists(st.one_of(MEDIA, CASE), max_size=4),
    JSON,
)


@st.composite
def vics_bytes(draw) -> bytes:
    raw = json.dumps(draw(VICS_DOC), ensure_ascii=draw(st.booleans())).encode("utf-8")
    return draw(st.one_of(st.just(raw), mutated(raw, 4)))


@st.composite
def csv_bytes(draw) -> bytes:
    header = draw(st.lists(st.sampled_from(["signal_type", "value", "hash", "category", "source_id", "series", "tags",
                                            "notes", "added_at", "signal_str", "collab", "x"]), min_size=1, max_size=7))
    rows = draw(st.lists(st.lists(st.one_of(HEXES.map(str), st.sampled_from(["md5", "sha1", "pdq", "PhotoDNA", "=1+1",
                                                                            '["a;b","c"]', "[broken"])),
                                  min_size=0, max_size=len(header) + 1), max_size=6))
    quote = draw(st.sampled_from(['"', ""]))
    lines = [",".join(header)] + [",".join(quote + c.replace('"', '""') + quote if quote else c for c in r) for r in rows]
    raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    return draw(st.one_of(st.just(raw), mutated(raw, 4)))


@st.composite
def lines_bytes(draw) -> bytes:
    lines = draw(st.lists(st.one_of(HEXES.map(str), st.sampled_from(["# comment", "", "pdq " + "c" * 64, "md5 " + "a" * 32,
                                                                    "video_md5 x", "photodna abc"])), max_size=10))
    raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    return draw(st.one_of(st.just(raw), mutated(raw, 4), st.binary(max_size=300)))


@pytest.fixture(scope="module")
def bank_store(tmp_path_factory):
    from tripwire.banks.store import BankStore
    from tripwire.store.db import open_db

    db = open_db(f"sqlite:///{tmp_path_factory.mktemp('fuzzbank') / 'bank.db'}")
    store = BankStore(db)
    for scheme in ("vics", "ncmec", "uk"):
        try:
            store.create_bank(f"fuzz-{scheme}", category_scheme=scheme)
        except Exception:
            store.create_bank(f"fuzz-{scheme}")
    yield store
    db.dispose()


def _import(store, fmt: str, raw: bytes, signal_type: str | None, bank: str = "fuzz-vics") -> None:
    from tripwire.banks.entries import RawEntry, RowError
    from tripwire.banks.importer import read_entries, run_import
    from tripwire.signals.registry import AmbiguousSignalType

    try:
        entries = list(read_entries(fmt, io.BytesIO(raw), signal_type))
    except AmbiguousSignalType:
        return  # documented: a list of bare 64-hex values needs --signal-type
    assert all(isinstance(e, (RawEntry, RowError)) for e in entries)
    try:
        report = run_import(store, bank, iter(entries), fmt, default_type=signal_type)
    except AmbiguousSignalType:
        return
    assert report.read == len(entries)
    json.dumps(report.as_dict(), default=str)


@replay
@fuzz_settings()
@given(vics_bytes(), st.sampled_from(["fuzz-vics", "fuzz-ncmec", "fuzz-uk"]))
def test_bank_import_vics(bank_store, raw, bank):
    _import(bank_store, "vics", raw, None, bank)


@replay
@fuzz_settings()
@given(csv_bytes(), st.sampled_from([None, "md5", "pdq", "sha256"]))
def test_bank_import_csv(bank_store, raw, signal_type):
    _import(bank_store, "csv", raw, signal_type)


@replay
@fuzz_settings()
@given(lines_bytes(), st.sampled_from(["lines", "te"]), st.sampled_from([None, "md5", "pdq", "sha1"]))
def test_bank_import_lines_te(bank_store, raw, fmt, signal_type):
    _import(bank_store, fmt, raw, signal_type)


@replay
@fuzz_settings()
@given(st.one_of(vics_bytes(), csv_bytes(), lines_bytes()), st.sampled_from(["list.json", "list.csv", "list.txt", "list.txt.gz"]),
       st.one_of(st.none(), st.floats(0, 1)))
def test_bank_import_file(bank_store, tmp_path_factory, raw, name, cut):
    """``import_file``: format detection, ``.gz`` streaming; a ``.gz`` cut short (``cut``) is a row error."""
    from tripwire.banks.importer import import_file
    from tripwire.signals.registry import AmbiguousSignalType

    path = tmp_path_factory.mktemp("list") / name
    packed = gzip.compress(raw) if name.endswith(".gz") else raw
    path.write_bytes(packed if cut is None or not name.endswith(".gz") else packed[: int(len(packed) * cut)])
    try:
        import_file(bank_store, "fuzz-vics", path)
    except AmbiguousSignalType:
        pass


# --- 7. the posts feed and the JSONL reader --------------------------------------------------------------

POST = st.fixed_dictionaries({}, optional={
    "platform": JSON_SCALAR, "post_id": JSON_SCALAR, "created_at": JSON, "url": JSON_SCALAR, "text": JSON_SCALAR,
    "account": st.one_of(JSON, st.fixed_dictionaries({}, optional={k: JSON_SCALAR for k in ("id", "handle", "display_name", "profile_url", "bio")})),
    "tags": JSON, "groups": JSON, "links": st.one_of(JSON, st.lists(TEXT, max_size=3)),
    "media": st.one_of(JSON, st.lists(st.dictionaries(st.sampled_from(["sha256", "md5", "pdq", "url"]), JSON_SCALAR), max_size=2)),
})


@replay
@fuzz_settings()
@given(st.lists(st.one_of(POST.map(json.dumps), JSON.map(json.dumps), TEXT), max_size=8), st.sampled_from(["\n", "\r\n", "\r"]))
def test_posts_feed(lines, newline):
    from tripwire.trade.posts import read_posts

    errors: list[dict[str, Any]] = []
    text = newline.join(lines)
    posts = list(read_posts(io.StringIO(text, newline=None), errors))
    for number, post in posts:
        assert isinstance(number, int) and post["platform"] is not None and post["account"]["id"]
    for err in errors:
        assert isinstance(err["line"], int) and err["line"] >= 1 and err["error"]


@replay
@fuzz_settings()
@given(st.text(max_size=400), st.integers(1, 64))
def test_jsonl_reader(text, max_line):
    lines = list(read_jsonl(io.StringIO(text), max_line=max_line))
    previous = 0
    for number, value in lines:
        assert number > previous
        previous = number
        if isinstance(value, JsonlError):
            assert value.line == number and value.message


# --- 8. VICS case import --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def case_db(tmp_path_factory):
    from tripwire.store.db import open_db

    db = open_db(f"sqlite:///{tmp_path_factory.mktemp('fuzzcase') / 'case.db'}")
    yield db
    db.dispose()


@replay
@fuzz_settings()
@given(vics_bytes(), st.one_of(st.none(), st.just("fuzz-reviewer")))
def test_vics_case_import(case_db, raw, reviewer):
    from tripwire.review.vics_import import import_case

    try:
        summary = import_case(case_db, io.BytesIO(raw), "fuzz-case", "fuzz.json", reviewer=reviewer)
    except UsageError:
        return  # documented: not VICS JSON at all
    json.dumps(summary.as_dict(), default=str)

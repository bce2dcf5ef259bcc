"""Verdicts say why: a reason for every unknown or weak verdict, games and image programs are not cameras,
editing software is editing evidence, and inspect folds watermark checks that found nothing into one line.

Real fixtures (a valid C2PA manifest declaring ``algorithmicMedia``; a Gran Turismo 5 screenshot whose EXIF
Make is "Polyphony Digital Inc."; camera photos re-saved with GIMP 2.4.5) and small synthesised gradients
carrying the EXIF tags in question.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console

from tripwire.config import Config
from tripwire.media.item import Item
from tripwire.policy import prioritise
from tripwire.provenance.exif import MAKE, MODEL, SOFTWARE
from tripwire.provenance.extractor import ProvenanceExtractor
from tripwire.provenance.render import render_provenance
from tripwire.provenance.software import editor_name, not_camera_reason

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
NO_WATERMARK = ProvenanceExtractor(Config(sections={"provenance": {"watermark": False}}))


def _record(path: str, data: bytes, extractor: ProvenanceExtractor = NO_WATERMARK) -> dict:
    rec = {"path": path, "media_type": "image/jpeg" if data[:2] == b"\xff\xd8" else "image/png", "error": None}
    rec.update(extractor.extract(Item(path=path, data=data, size=len(data))))
    return rec


def _fixture(name: str, extractor: ProvenanceExtractor = NO_WATERMARK) -> dict:
    return _record(name, (FIXTURES / name).read_bytes(), extractor)


def _gradient_jpeg(**tags: str) -> bytes:
    """A 96x64 colour gradient with the given EXIF IFD0 text tags (make, model, software)."""
    img = Image.new("RGB", (96, 64))
    img.putdata([(x * 2, y * 3, 120) for y in range(64) for x in range(96)])
    exif = Image.Exif()
    for name, tag in (("make", MAKE), ("model", MODEL), ("software", SOFTWARE)):
        if name in tags:
            exif[tag] = tags[name]
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def _evidence(rec: dict, source: str) -> dict:
    (entry,) = [e for e in rec["provenance"]["evidence"] if e["source"] == source]
    return entry


def test_valid_c2pa_algorithmic_media_is_explained_and_priority_agrees():
    rec = _fixture("c2pa/C.jpg")
    prov, c2pa = rec["provenance"], _evidence(rec, "c2pa")
    assert c2pa["state"] == "valid" and "algorithmicMedia" in c2pa["digital_source_types"]
    assert prov["label"] == "unknown"
    assert prov["reason"].startswith("the C2PA manifest (valid, signer not on the trust list) declares algorithmicMedia")
    assert "neither generative-AI nor camera evidence" in prov["reason"]
    value, reason = prioritise(rec)
    assert value == 60.0 and "no provenance evidence" not in reason and "algorithmicMedia" in reason


def test_game_maker_is_not_camera_evidence():
    rec = _fixture("malformed/exif_45-gps_ifd.jpg")  # a Gran Turismo 5 screenshot
    exif = _evidence(rec, "exif")
    assert (exif["make"], exif["model"]) == ("Polyphony Digital Inc.", "Gran Turismo 5")
    assert exif["camera"] is False and "software or game maker" in exif["not_camera"]
    prov = rec["provenance"]
    assert prov["label"] == "unknown" and prov["basis"] == []
    assert "Polyphony Digital" in prov["reason"] and "not a camera" in prov["reason"]
    assert "not a camera" in prioritise(rec)[1]

    console = Console(record=True, width=200)
    render_provenance(rec, console)
    text = console.export_text()
    assert "provenance: unknown" in text and "because EXIF Make names Polyphony Digital" in text


@pytest.mark.parametrize(("tags", "camera", "editor"), [
    ({"make": "Sony Interactive Entertainment", "model": "PlayStation 5"}, False, None),
    ({"make": "Example Games Studios", "model": "Racer"}, False, None),     # the word heuristics
    ({"make": "Canon", "model": "Canon EOS R5", "software": "Firmware Version 1.8.1"}, True, None),
    ({"make": "NIKON CORPORATION", "model": "NIKON Z 6", "software": "Adobe Photoshop Lightroom Classic 12.0"}, True,
     "Adobe Photoshop Lightroom"),
    ({"make": "FUJIFILM", "model": "X-T4", "software": "GIMP 2.10.34"}, True, "GIMP"),
])
def test_synthesised_exif_makers_and_editors(tags, camera, editor):
    rec = _record("synth.jpg", _gradient_jpeg(**tags))
    exif = _evidence(rec, "exif")
    assert exif["camera"] is camera and exif.get("editor") == editor
    prov = rec["provenance"]
    assert prov["label"] == ("camera_original" if camera else "unknown")
    assert prov["reason"]  # unknown or weak: always a reason
    if editor:
        assert prov["edits"] == [f"edited with {editor} (EXIF Software {tags['software']!r})"]
        assert f"; edited with {editor}):" in prioritise(rec)[1]
    else:
        assert prov["edits"] == []


def test_editing_software_in_real_camera_files():
    rec = _fixture("camera/Nikon_D70.jpg")
    prov = rec["provenance"]
    assert (prov["label"], prov["confidence"]) == ("camera_original", "supporting")  # an edited photo is still a photo
    assert "edited with GIMP (EXIF Software 'GIMP 2.4.5')" in prov["edits"]
    assert "edited with Adobe Photoshop (XMP CreatorTool 'Adobe Photoshop CS2 Windows')" in prov["edits"]
    assert prov["reason"].startswith("weak: rests on supporting evidence only (EXIF camera fields (NIKON D70))")
    console = Console(record=True, width=200)
    render_provenance(rec, console)
    text = console.export_text()
    assert "edited: edited with GIMP (EXIF Software 'GIMP 2.4.5')" in text and "because weak:" in text


def test_plain_image_without_evidence_says_so():
    img = Image.new("RGB", (64, 48), (30, 90, 160))
    out = io.BytesIO()
    img.save(out, "PNG")
    rec = _record("plain.png", out.getvalue())
    assert rec["provenance"]["label"] == "unknown"
    assert rec["provenance"]["reason"].startswith("no provenance evidence in the file")
    assert prioritise(rec)[1].startswith("origin unknown (no provenance evidence in the file")


def test_inspect_folds_watermark_checks_into_one_line():
    rec = _fixture("c2pa/C.jpg", ProvenanceExtractor(Config()))  # watermarks on: all three skipped (size)
    assert len([e for e in rec["provenance"]["evidence"] if e["source"] == "watermark"]) == 3
    console = Console(record=True, width=400)
    render_provenance(rec, console)
    lines = console.export_text().splitlines()
    watermark = [line for line in lines if "watermark" in line]
    assert len(watermark) == 1 and watermark[0].strip().startswith("watermark: sd1, sd2, sdxl not checked (size 2048x1365")
    assert not [line for line in lines if line.strip().startswith("skipped")]
    assert lines[1].strip().startswith("because the C2PA manifest (valid")


def test_every_unknown_or_weak_fixture_verdict_has_a_reason():
    names = [p for folder in ("c2pa", "generators", "camera") for p in sorted((FIXTURES / folder).iterdir())
             if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")]
    assert len(names) >= 30
    for path in names:
        prov = _record(path.name, path.read_bytes())["provenance"]
        assert prov["reason"] and "\n" not in prov["reason"], path
        if prov["label"] == "unknown" or prov["confidence"] == "supporting":
            assert prov["reason"].startswith(("weak:", "the C2PA", "EXIF", "XMP", "no provenance", "pixel")), (path, prov["reason"])


def test_lists_are_data_matched_on_whole_words():
    assert not_camera_reason("Polyphony Digital Inc.", "Gran Turismo 5")
    assert not_camera_reason("Canon", "Canon EOS 40D") is None and not_camera_reason("Google", "Pixel 7") is None
    assert editor_name("GIMP 2.4.5") == "GIMP" and editor_name("Paint.NET v3.36") == "Paint.NET"
    assert editor_name("gimped firmware") is None and editor_name("Ver.1.00") is None

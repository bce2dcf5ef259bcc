"""Provenance on the shared fixtures: every generator file, the C2PA set, camera originals, malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tripwire.config import Config
from tripwire.pipeline.extractors import default_extractors
from tripwire.media.item import Item
from tripwire.provenance.extractor import ProvenanceExtractor

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
EXTRACTOR = ProvenanceExtractor(Config(sections={"provenance": {"watermark": False}}))


def extract(path: Path, extractor: ProvenanceExtractor = EXTRACTOR) -> dict:
    data = path.read_bytes()
    facts = extractor.extract(Item(path=str(path), data=data, size=len(data)))
    json.dumps(facts)  # the record must stay JSON-serialisable
    return facts


def evidence(facts: dict, source: str) -> list[dict]:
    return [e for e in facts["provenance"]["evidence"] if e["source"] == source]


# file -> (tool, seed, model, prompt start, mode, carrier)
GENERATORS = {
    "a1111_duck.png": ("AUTOMATIC1111", 235284042, "realistic_realisticVisionV20_v20", "photo of a duck", "txt2img", "png:parameters"),
    "a1111_duck.jpg": ("AUTOMATIC1111", 235284042, "realistic_realisticVisionV20_v20", "photo of a duck", "txt2img", "exif:UserComment"),
    "a1111_stealth_alpha.png": ("AUTOMATIC1111", 2015833630, "realisticVisionV51_v51VAE", "a circle", "txt2img", "stealth:stealth_pngcomp"),
    "comfyui_img2img.png": ("ComfyUI", 280823642470253, "v1-5-pruned-emaonly.ckpt", "photograph of", "img2img", "png:prompt"),
    "fooocus_goldfish.png": ("Fooocus", 6952411511246973023, "juggernautXL_v8Rundiffusion", "a smiling goldfish", "txt2img", "png:parameters"),
    "invokeai_v3_painting.png": ("InvokeAI", 3293022630, "juggernautXL", "digital artwork, oil painting", "txt2img", "png:invokeai_metadata"),
    "novelai_cat.png": ("NovelAI", 2253955223, "Stable Diffusion", "masterpiece, best quality", None, "png:Comment"),
}


def test_every_generator_fixture_is_covered():
    assert sorted(p.name for p in (FIXTURES / "generators").iterdir()) == sorted(GENERATORS)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_fixture(name):
    tool, seed, model, prompt, mode, carrier = GENERATORS[name]
    facts = extract(FIXTURES / "generators" / name)
    gen = facts["generator"]
    assert gen["tool"] == tool
    assert gen["seed"] == seed
    assert gen["model"] == model
    assert gen["prompt"].startswith(prompt)
    assert gen["mode"] == mode
    assert gen["carrier"] == carrier
    assert gen["raw"], "raw fields are kept"
    prov = facts["provenance"]
    assert prov["label"] == ("ai_edited" if mode == "img2img" else "ai_generated")
    assert prov["confidence"] == "strong"
    assert prov["tool"] == tool
    assert evidence(facts, "generator")[0]["tool"] == tool


def test_generator_details():
    duck = extract(FIXTURES / "generators" / "a1111_duck.jpg")["generator"]
    assert duck | {"raw": None} == duck | {
        "negative_prompt": "monochrome", "steps": 15, "sampler": "UniPC", "cfg": 5.0, "size": "512x400",
        "model_hash": "c0d1994c73", "raw": None,
        "model_ref": {"name": "realistic_realisticVisionV20_v20", "hashes": {"autov2": "c0d1994c73"}},
        "loras": [], "embeddings": [], "vae": None, "prompt_template": "photo of a duck",
    }
    stealth = extract(FIXTURES / "generators" / "a1111_stealth_alpha.png")["generator"]
    assert stealth["tool_version"] == "v1.9.4-169-ga30b19dd" and stealth["negative_prompt"] == "a square"
    comfy = extract(FIXTURES / "generators" / "comfyui_img2img.png")["generator"]
    assert comfy["negative_prompt"].startswith("watermark, text") and comfy["steps"] == 20 and comfy["cfg"] == 8.0
    nai = extract(FIXTURES / "generators" / "novelai_cat.png")["generator"]
    assert nai["model_hash"] == "1D44365E" and nai["sampler"] == "k_euler_ancestral" and nai["cfg"] == 10.0
    assert nai["signature"] == {"present": False}
    assert nai["model_ref"] == {"name": "Stable Diffusion", "hashes": {}}, "NovelAI's model id is not a file hash"
    fooocus = extract(FIXTURES / "generators" / "fooocus_goldfish.png")["generator"]
    assert fooocus["tool_version"] == "v2.4.3" and fooocus["size"] == "768x1280" and fooocus["cfg"] == 4.0
    assert fooocus["model_ref"] == {"name": "juggernautXL_v8Rundiffusion", "hashes": {"autov2": "aeb7e9e689"}}
    assert (fooocus["loras"], fooocus["vae"]) == ([], None), "'Default (model)' names no VAE"
    invoke = extract(FIXTURES / "generators" / "invokeai_v3_painting.png")["generator"]
    assert invoke["size"] == "1024x1024" and invoke["steps"] == 35 and invoke["negative_prompt"].startswith("grainy")
    assert (invoke["model_ref"], invoke["vae"]) == ({"name": "juggernautXL", "hashes": {}}, {"name": "VAEFix", "hashes": {}})
    assert comfy["model_ref"] == {"name": "v1-5-pruned-emaonly.ckpt", "hashes": {}} and comfy["loras"] == []


C2PA_EXPECTED = {
    "C.jpg": ("valid", []),
    "CA.jpg": ("valid", []),
    "XCA.jpg": ("invalid", ["assertion.dataHash.mismatch"]),
    "E-sig-CA.jpg": ("invalid", ["claimSignature.mismatch"]),
    "ocsp.jpg": ("valid", []),
    "cloud.jpg": ("remote_not_fetched", []),
    "prerelease.jpg": ("invalid", ["manifest.prerelease"]),
    "no_manifest.jpg": ("none", []),
    "earth_apollo17.jpg": ("none", []),
    "libpng-test.png": ("none", []),
    "mars.webp": ("none", []),
    "sample1.png": ("none", []),
    "sample1.webp": ("none", []),
    "sample1.avif": ("none", []),
    "sample1.heic": ("none", []),
}


def test_every_c2pa_fixture_is_covered():
    assert sorted(p.name for p in (FIXTURES / "c2pa").iterdir()) == sorted(C2PA_EXPECTED)


@pytest.mark.parametrize("name", sorted(C2PA_EXPECTED))
def test_c2pa_fixture(name):
    state, codes = C2PA_EXPECTED[name]
    facts = extract(FIXTURES / "c2pa" / name)
    (entry,) = evidence(facts, "c2pa")
    assert entry["state"] == state
    for code in codes:
        assert code in entry["codes"]
    prov = facts["provenance"]
    if state == "invalid":
        assert any(c["kind"] == "c2pa_invalid" for c in prov["conflicts"])
        assert prov["label"] == "unknown", "an invalid manifest is never proof of origin"
    if state == "valid":
        assert entry["codes"] == ["signingCredential.untrusted"], "the test signers are untrusted by default"


def test_c2pa_firefly_and_remote():
    facts = extract(FIXTURES / "c2pa" / "ocsp.jpg")
    prov = facts["provenance"]
    assert (prov["label"], prov["confidence"], prov["tool"]) == ("ai_generated", "strong", "Adobe Firefly")
    (entry,) = evidence(facts, "c2pa")
    assert "trainedAlgorithmicMedia" in entry["digital_source_types"]
    assert "Adobe Firefly" in entry["software_agents"]
    assert entry["signer"]["issuer"] == "Adobe Inc."
    (cloud,) = evidence(extract(FIXTURES / "c2pa" / "cloud.jpg"), "c2pa")
    assert cloud["remote_url"].startswith("https://cai-manifests.adobe.com/")
    (ca,) = evidence(extract(FIXTURES / "c2pa" / "CA.jpg"), "c2pa")
    assert ca["ingredients"] == [{"title": "A.jpg", "relationship": "parentOf", "format": "image/jpeg", "has_manifest": False}]
    assert ca["claim_generator"].startswith("make_test_images")


CAMERA = sorted(p for p in (FIXTURES / "camera").rglob("*") if p.is_file())


def test_camera_fixtures_never_ai():
    labels = {}
    for path in CAMERA:
        facts = extract(path)
        labels[path.name] = facts["provenance"]["label"]
        assert facts["generator"] is None
        text = json.dumps(facts)
        assert "GPSLatitude" not in text and "latitude" not in text.lower()
    assert len(labels) >= 50
    assert not [name for name, label in labels.items() if label in ("ai_generated", "ai_edited")]
    assert sum(label == "camera_original" for label in labels.values()) >= 30


def test_camera_exif_facts():
    facts = extract(FIXTURES / "camera" / "gps" / "DSCN0010.jpg")
    (exif,) = evidence(facts, "exif")
    assert (exif["make"], exif["model"], exif["gps_present"], exif["maker_note_present"]) == ("NIKON", "COOLPIX P6000", True, True)
    assert exif["capture_time"] == "2008:10:22 16:28:39"
    assert exif["thumbnail"]["present"] and exif["thumbnail"]["consistent"] is True
    assert facts["provenance"]["label"] == "camera_original" and facts["provenance"]["confidence"] == "supporting"
    iphone = evidence(extract(FIXTURES / "camera" / "hdr" / "iphone_hdr_YES.jpg"), "exif")[0]
    assert iphone["lens"].startswith("Apple iPhone 6 back camera")
    rotated = evidence(extract(FIXTURES / "camera" / "orientation" / "landscape_6.jpg"), "exif")[0]
    assert rotated["orientation"] == 6


@pytest.mark.parametrize("path", sorted((FIXTURES / "malformed").iterdir()), ids=lambda p: p.name)
def test_malformed_never_crash(path):
    data = path.read_bytes()
    item = Item(path=str(path), data=data, size=len(data))
    facts = EXTRACTOR.extract(item)
    json.dumps(facts)
    if facts:
        assert facts["provenance"]["label"] in ("ai_generated", "ai_edited", "camera_original", "unknown")


def test_registered_in_default_extractors():
    names = [e.name for e in default_extractors(Config())]
    assert names[-1] == "provenance" and names.index("provenance") > names.index("pdq")


def test_non_image_and_oversized():
    assert EXTRACTOR.extract(Item(path="a.txt", data=b"hello world", size=11)) == {}
    big = Item(path="big.jpg", data=None, size=10**10, media_type="image/jpeg")
    facts = EXTRACTOR.extract(big)
    assert facts["provenance"]["label"] == "unknown"
    assert facts["provenance"]["evidence"][0]["skipped"]


def test_watermark_evidence_feeds_the_verdict():
    pytest.importorskip("tripwire.provenance.watermark")
    extractor = ProvenanceExtractor(Config())
    facts = extract(FIXTURES / "watermark" / "sd1_512_b0_png.png", extractor)
    marks = evidence(facts, "watermark")
    assert {m["scheme"] for m in marks} >= {"sd1", "sd2", "sdxl"}
    prov = facts["provenance"]
    assert (prov["label"], prov["confidence"], prov["tool"]) == ("ai_generated", "strong", "Stable Diffusion 1.x")
    control = extract(FIXTURES / "watermark" / "none_512_b0_png.png", extractor)
    assert control["provenance"]["label"] == "unknown"
    assert not any(m.get("detected") for m in evidence(control, "watermark"))


def test_mutated_fixtures_never_crash():
    """Flip bytes in real generator and C2PA files: every outcome is a verdict, never an exception."""
    import random

    rng = random.Random(1234)
    sources = [FIXTURES / "generators" / n for n in ("a1111_duck.jpg", "comfyui_img2img.png", "novelai_cat.png", "a1111_stealth_alpha.png")]
    sources += [FIXTURES / "c2pa" / n for n in ("C.jpg", "ocsp.jpg")]
    for path in sources:
        original = path.read_bytes()
        for _ in range(6):
            data = bytearray(original)
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            cut = bytes(data[: rng.randint(len(data) // 4, len(data))])
            for blob in (bytes(data), cut):
                facts = EXTRACTOR.extract(Item(path=str(path), data=blob, size=len(blob)))
                json.dumps(facts)


def test_compressed_text_bomb_is_bounded():
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG")
    png = buf.getvalue()
    bomb = chunk(b"zTXt", b"parameters\x00\x00" + zlib.compress(b"A" * (64 * 1024 * 1024), 9))
    data = png[:33] + bomb + png[33:]
    assert len(data) < 200_000
    from tripwire.provenance.containers import MAX_TEXT_BYTES, read_bundle

    bundle = read_bundle(data, "image/png")
    assert len(bundle.text["parameters"]) == MAX_TEXT_BYTES
    facts = EXTRACTOR.extract(Item(path="bomb.png", data=data, size=len(data)))
    assert facts["provenance"]["label"] == "unknown"

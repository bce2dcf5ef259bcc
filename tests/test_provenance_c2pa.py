"""C2PA fixtures signed in the test with c2pa-python's Builder and the test keys: untrusted vs trusted, AI vs
capture, tampering after signing, and the trust-anchor setting."""

from __future__ import annotations

import io
import re
from pathlib import Path

import c2pa
import pytest
from PIL import Image

from tripwire.config import Config
from tripwire.errors import UsageError
from tripwire.media.item import Item
from tripwire.provenance.c2pa import C2paSettings, c2pa_evidence
from tripwire.provenance.extractor import ProvenanceExtractor

CERTS = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "certs"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def _source_jpeg() -> bytes:
    img = Image.new("RGB", (96, 64), (40, 110, 170))
    for x in range(96):  # a gradient, so edits change real content
        for y in range(0, 64, 8):
            img.putpixel((x, y), (x * 2, 200 - y, 90))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def sign(source_type: str, agent: str = "Example Generator 2.0", alg: str = "es256") -> bytes:
    cert = (CERTS / f"{alg}.pub").read_bytes()
    key = (CERTS / f"{alg}.pem").read_bytes()
    algorithm = c2pa.C2paSigningAlg.ES256 if alg == "es256" else c2pa.C2paSigningAlg.ED25519
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(algorithm, cert, key, None))
    manifest = {
        "claim_generator_info": [{"name": "tripwire-tests", "version": "1"}],
        "title": "lighthouse.jpg",
        "format": "image/jpeg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "softwareAgent": agent, "digitalSourceType": IPTC + source_type}]},
            }
        ],
    }
    ctx = c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False}, "builder": {"thumbnail": {"enabled": False}}})
    out = io.BytesIO()
    with c2pa.Builder(manifest, context=ctx) as builder:
        builder.sign(signer, "image/jpeg", io.BytesIO(_source_jpeg()), out)
    return out.getvalue()


@pytest.fixture(scope="module")
def anchors_pem(tmp_path_factory) -> Path:
    """The test chains' CA certificates (the intermediates that issued the signers) as a trust-anchor bundle."""
    cas = []
    for alg in ("es256", "ed25519"):
        chain = (CERTS / f"{alg}.pub").read_text()
        cas.append(re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", chain, re.S)[1])
    path = tmp_path_factory.mktemp("trust") / "anchors.pem"
    path.write_text("\n".join(cas) + "\n")
    return path


@pytest.fixture(scope="module")
def ai_signed() -> bytes:
    return sign("trainedAlgorithmicMedia")


def run(data: bytes, config: Config | None = None) -> dict:
    extractor = ProvenanceExtractor(config or Config(sections={"provenance": {"watermark": False}}))
    return extractor.extract(Item(path="signed.jpg", data=data, size=len(data)))["provenance"]


def test_valid_untrusted_ai_assertion_is_strong(ai_signed):
    prov = run(ai_signed)
    c2 = prov["evidence"][0]
    assert c2["state"] == "valid" and c2["codes"] == ["signingCredential.untrusted"]
    assert c2["signer"]["common_name"] == "C2PA Signer"
    assert (prov["label"], prov["confidence"], prov["tool"]) == ("ai_generated", "strong", "Example Generator 2.0")


def test_trusted_ai_assertion_is_definitive(ai_signed, anchors_pem):
    config = Config(sections={"provenance": {"trust_anchors": str(anchors_pem), "watermark": False}})
    prov = run(ai_signed, config)
    c2 = prov["evidence"][0]
    assert c2["state"] == "trusted" and c2["codes"] == []
    assert (prov["label"], prov["confidence"]) == ("ai_generated", "definitive")


def test_ed25519_signed_capture_is_camera_original(anchors_pem):
    data = sign("digitalCapture", agent="Example Camera", alg="ed25519")
    assert run(data)["label"] == "camera_original"
    assert run(data)["confidence"] == "strong"
    config = Config(sections={"provenance": {"trust_anchors": str(anchors_pem), "watermark": False}})
    prov = run(data, config)
    assert (prov["label"], prov["confidence"], prov["tool"]) == ("camera_original", "definitive", "Example Camera")


def test_composite_is_ai_edited():
    prov = run(sign("compositeWithTrainedAlgorithmicMedia", agent="Example Fill"))
    assert (prov["label"], prov["confidence"], prov["tool"]) == ("ai_edited", "strong", "Example Fill")


def test_edit_after_signing_is_tamper_evidence_not_origin(ai_signed):
    # flip bytes in the entropy-coded data: the data hash no longer matches
    tampered = bytearray(ai_signed)
    end = len(tampered) - 2
    for i in range(end - 200, end - 100):
        tampered[i] ^= 0x01
    prov = run(bytes(tampered))
    c2 = prov["evidence"][0]
    assert c2["state"] == "invalid"
    assert "assertion.dataHash.mismatch" in c2["codes"]
    assert prov["label"] == "unknown"
    assert [c["kind"] for c in prov["conflicts"]] == ["c2pa_invalid"]


def test_garbage_and_truncated_inputs_do_not_raise(ai_signed):
    for data in (b"", b"\xff\xd8\xff", ai_signed[: len(ai_signed) // 3], b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, b"jumbc2pa" * 100):
        entry = c2pa_evidence(data, "image/jpeg")
        assert entry["source"] == "c2pa" and entry["state"] in ("none", "invalid")


def test_trust_anchor_setting_validation(tmp_path):
    with pytest.raises(UsageError):
        C2paSettings.from_config({"trust_anchors": str(tmp_path / "missing.pem")})
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(UsageError):
        C2paSettings.from_config({"trust_anchors": str(junk)})
    assert C2paSettings.from_config({}) == C2paSettings()

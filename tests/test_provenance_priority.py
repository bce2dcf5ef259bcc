"""Triage priority (possibly-real first) and the readable provenance report."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from tripwire.config import Config
from tripwire.errors import UsageError
from tripwire.media.item import Item
from tripwire.policy import DEFAULT_WEIGHTS, PriorityStage, prioritise
from tripwire.provenance.extractor import ProvenanceExtractor
from tripwire.provenance.render import render_provenance

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


def record(label: str | None, confidence: str | None = None, conflicts: int = 0, **extra) -> dict:
    rec = {"path": "x", "media_type": "image/jpeg", "error": None}
    if label is not None:
        rec["provenance"] = {"label": label, "confidence": confidence, "tool": None, "evidence": [],
                             "conflicts": [{"kind": "k", "detail": "d"}] * conflicts}
    rec.update(extra)
    return rec


def test_possibly_real_ranks_above_synthetic():
    order = [
        record("ai_generated", "definitive", matches=[{"bank": "hotline"}]),
        record("camera_original", "supporting"),
        record("ai_edited", "strong"),
        record("unknown"),
        record("ai_generated", "supporting"),
        record("ai_generated", "strong"),
        record("ai_generated", "definitive"),
        {"path": "a.zip", "media_type": "application/zip", "error": None},
    ]
    scores = [prioritise(r)[0] for r in order]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)
    value, reason = prioritise(order[0])
    assert value == DEFAULT_WEIGHTS["match"] and "hotline" in reason
    assert "real photograph" in prioritise(order[1])[1]


def test_negative_matches_and_conflicts_and_errors():
    allow_only = record("ai_generated", "strong", matches=[{"bank": "allow", "negative": True}])
    assert prioritise(allow_only)[0] == DEFAULT_WEIGHTS["ai_generated_strong"]
    value, reason = prioritise(record("ai_generated", "strong", conflicts=2))
    assert value == DEFAULT_WEIGHTS["ai_generated_strong"] + DEFAULT_WEIGHTS["conflict"] and "2 provenance conflict" in reason
    broken = {"path": "x.jpg", "media_type": "image/jpeg", "error": {"code": "decode_error", "message": "truncated"}}
    assert prioritise(broken) == (DEFAULT_WEIGHTS["error"], "image could not be analysed (decode_error)")


def test_weights_are_configurable():
    settings = {"ai_generated_definitive": 90, "camera_original": 10}
    assert prioritise(record("ai_generated", "definitive"), settings)[0] == 90.0
    assert prioritise(record("camera_original", "supporting"), settings)[0] == 10.0
    with pytest.raises(UsageError):
        prioritise(record("unknown"), {"typo": 1})
    with pytest.raises(UsageError):
        PriorityStage(Config(sections={"priority": {"match": "high"}}))
    stage = PriorityStage(Config(sections={"priority": {"unknown": 61}}))
    rec = record("unknown")
    stage.apply(rec)
    assert rec["priority"] == 61.0 and rec["priority_reason"]


def test_priority_on_fixtures_camera_above_generated():
    extractor = ProvenanceExtractor(Config(sections={"provenance": {"watermark": False}}))

    def run(path: Path) -> float:
        data = path.read_bytes()
        rec = {"path": str(path), "media_type": "image/jpeg", "error": None}
        rec.update(extractor.extract(Item(path=str(path), data=data, size=len(data))))
        return prioritise(rec)[0]

    assert run(FIXTURES / "camera" / "Canon_40D.jpg") > run(FIXTURES / "c2pa" / "ocsp.jpg")
    assert run(FIXTURES / "generators" / "comfyui_img2img.png") > run(FIXTURES / "generators" / "a1111_duck.png")


def test_render_verdict_first_and_escaped():
    extractor = ProvenanceExtractor(Config(sections={"provenance": {"watermark": False}}))
    out = {}
    for name in ("c2pa/ocsp.jpg", "generators/comfyui_img2img.png", "camera/gps/DSCN0010.jpg", "c2pa/XCA.jpg"):
        data = (FIXTURES / name).read_bytes()
        rec = extractor.extract(Item(path=name, data=data, size=len(data)))
        console = Console(record=True, width=120)
        render_provenance(rec, console)
        out[name] = console.export_text()
    assert out["c2pa/ocsp.jpg"].startswith("provenance: ai_generated (strong) — Adobe Firefly")
    assert "trainedAlgorithmicMedia by Adobe Firefly" in out["c2pa/ocsp.jpg"]
    assert "photograph of victorian woman" in out["generators/comfyui_img2img.png"]
    assert "recorded (coordinates not shown)" in out["camera/gps/DSCN0010.jpg"]
    assert "conflict: C2PA manifest fails validation (assertion.dataHash.mismatch)" in out["c2pa/XCA.jpg"]
    hostile = {"provenance": {"label": "ai_generated", "confidence": "strong", "tool": "[bold red]x[/]", "evidence": [],
                              "conflicts": []}}
    console = Console(record=True, width=120)
    render_provenance(hostile, console)
    assert "[bold red]x[/]" in console.export_text()
    console = Console(record=True)
    render_provenance({"path": "a.txt"}, console)
    assert "not analysed" in console.export_text()

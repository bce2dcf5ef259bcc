"""The ONNX detector slot with a tiny model built here (score = sigmoid(k * (mean R - mean B))): scoring,
supporting-only evidence, ROC AUC / threshold maths, and ``tripwire detector evaluate``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image
from typer.testing import CliRunner

from tripwire.cli import app
from tripwire.config import Config
from tripwire.errors import UsageError
from tripwire.media.item import Item
from tripwire.provenance.detector import DetectorConfig, OnnxDetector, roc_auc, threshold_at_fpr
from tripwire.provenance.extractor import ProvenanceExtractor

K = 10.0
REAL_DIFFS = [-120, -80, -30, 50]  # R - B of the solid test images
SYNTHETIC_DIFFS = [30, 80, 120, 150]


def expected_score(diff: int) -> float:
    return 1.0 / (1.0 + math.exp(-K * diff / 255.0))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    mean = helper.make_node("ReduceMean", ["input"], ["means"], axes=[2, 3], keepdims=0)
    weights = helper.make_tensor("w", TensorProto.FLOAT, [3, 1], [K, 0.0, -K])
    matmul = helper.make_node("MatMul", ["means", "w"], ["logit"])
    sigmoid = helper.make_node("Sigmoid", ["logit"], ["score"])
    graph = helper.make_graph(
        [mean, matmul, sigmoid],
        "red_minus_blue",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    onnx.save(model, str(path))
    return path


def solid(diff: int, size=(40, 30)) -> Image.Image:
    r = 128 + diff // 2
    b = r - diff
    return Image.new("RGB", size, (r, 90, b))


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sets")
    for name, diffs in (("real", REAL_DIFFS), ("synthetic", SYNTHETIC_DIFFS)):
        (root / name).mkdir()
        for i, diff in enumerate(diffs):
            solid(diff).save(root / name / f"{i}.png")
        (root / name / "notes.txt").write_text("not an image")
    return root / "real", root / "synthetic"


def config(model_path: Path, **extra) -> DetectorConfig:
    return DetectorConfig.from_section({"model": str(model_path), "input_size": 16, "scale": 255.0, **extra})


def test_scores_match_the_model_maths(model_path):
    det = OnnxDetector(config(model_path))
    for diff in (-120, 0, 80):
        assert det.score(solid(diff)) == pytest.approx(expected_score(diff), abs=1e-5)
    # BGR + NHWC handling: swapping channel order flips the sign
    bgr = OnnxDetector(config(model_path, channel_order="BGR"))
    assert bgr.score(solid(80)) == pytest.approx(expected_score(-80), abs=1e-5)


def test_roc_auc_and_threshold_maths():
    assert roc_auc([0.1, 0.2], [0.3, 0.4]) == 1.0
    assert roc_auc([0.3, 0.4], [0.1, 0.2]) == 0.0
    assert roc_auc([0.5, 0.5], [0.5, 0.5]) == 0.5
    real = [expected_score(d) for d in REAL_DIFFS]
    syn = [expected_score(d) for d in SYNTHETIC_DIFFS]
    assert roc_auc(real, syn) == pytest.approx(15 / 16)
    op = threshold_at_fpr(real, syn, 0.25)
    assert (op["fpr"], op["tpr"]) == (0.25, 1.0)
    strict = threshold_at_fpr(real, syn, 0.0)
    assert (strict["fpr"], strict["tpr"]) == (0.0, 0.75)
    assert strict["threshold"] > expected_score(50)


def test_evaluate_cli(model_path, folders):
    real, synthetic = folders
    result = CliRunner().invoke(
        app,
        ["detector", "evaluate", "--real", str(real), "--synthetic", str(synthetic), "--model", str(model_path), "--fpr", "0.25", "--json"],
    )
    assert result.exit_code == 2, "input size comes from the config; the default 224 does not fit this model"
    cfg = real.parent / "tripwire.toml"
    cfg.write_text('[provenance.detector]\ninput_size = 16\nscale = 255.0\n')
    result = CliRunner().invoke(
        app,
        ["detector", "evaluate", "--real", str(real), "--synthetic", str(synthetic), "--model", str(model_path),
         "--fpr", "0.25", "--json", "--config", str(cfg)],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["n_real"], out["n_synthetic"]) == (4, 4)
    assert out["roc_auc"] == pytest.approx(15 / 16)
    assert (out["fpr"], out["tpr"]) == (0.25, 1.0)
    table = CliRunner().invoke(app, ["detector", "evaluate", "--real", str(real), "--synthetic", str(synthetic),
                                     "--model", str(model_path), "--config", str(cfg)])
    assert table.exit_code == 0 and "ROC AUC" in table.output and "0.9375" in table.output


def test_detector_evidence_is_supporting_only(model_path, tmp_path):
    import io

    section = {"watermark": False, "detector": {"model": str(model_path), "input_size": [16, 16], "threshold": 0.5}}
    extractor = ProvenanceExtractor(Config(sections={"provenance": section}))
    buf = io.BytesIO()
    solid(120).save(buf, "PNG")
    data = buf.getvalue()
    prov = extractor.extract(Item(path="x.png", data=data, size=len(data)))["provenance"]
    det = [e for e in prov["evidence"] if e["source"] == "detector"][0]
    assert det["flagged"] is True and det["model"] == "tiny.onnx" and len(det["model_sha256"]) == 64
    assert (prov["label"], prov["confidence"]) == ("ai_generated", "supporting")
    # camera EXIF against a detector flag: weak against weak, the possibly-real reading wins
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Nikon", "Nikon D750"
    buf = io.BytesIO()
    solid(120).save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    data = buf.getvalue()
    prov = extractor.extract(Item(path="x.jpg", data=data, size=len(data)))["provenance"]
    assert prov["label"] == "camera_original" and prov["conflicts"][0]["kind"] == "ai_and_camera"
    # the extractor (with its session) still pickles for worker processes
    import pickle

    assert pickle.loads(pickle.dumps(extractor)).detector_config == extractor.detector_config


def test_config_errors(model_path, tmp_path):
    assert DetectorConfig.from_section({}) is None
    with pytest.raises(UsageError):
        DetectorConfig.from_section({"model": str(model_path), "colour": "blue"})
    with pytest.raises(UsageError):
        DetectorConfig.from_section({"model": str(model_path), "std": [0, 1, 1]})
    with pytest.raises(UsageError):
        OnnxDetector(DetectorConfig.from_section({"model": str(tmp_path / "missing.onnx")}))
    broken = {"watermark": False, "detector": {"model": str(tmp_path / "missing.onnx")}}
    item = Item(path="x.png", data=np.zeros(8, dtype=np.uint8).tobytes(), size=8, media_type="image/png")
    prov = ProvenanceExtractor(Config(sections={"provenance": broken})).extract(item)["provenance"]
    assert [e for e in prov["evidence"] if e["source"] == "detector"][0]["skipped"]

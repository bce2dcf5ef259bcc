"""A slot for an "AI-generated" pixel classifier in ONNX format: supporting evidence only, never a verdict.

Pixel detectors generalise poorly to generators they were not trained on and are easy to fool, so a score
never outranks metadata, C2PA or a watermark: it is evidence of the weakest kind (``supporting``). tripwire
ships no weights; an operator points ``[provenance.detector]`` at a model they trust and describes its input::

    [provenance.detector]
    model = "/models/ai-detector.onnx"
    input_size = [224, 224]          # width, height (or one number for a square)
    resize = "stretch"               # or "center_crop" (shorter side to size, then crop)
    scale = 255.0                    # pixels are divided by this first
    mean = [0.485, 0.456, 0.406]     # then (x - mean) / std per channel
    std = [0.229, 0.224, 0.225]
    layout = "NCHW"                  # or "NHWC"
    channel_order = "RGB"            # or "BGR"
    output = 0                       # which model output holds the scores
    positive_index = 1               # which class is "AI-generated" (ignored for a single score)
    activation = "softmax"           # "sigmoid", "softmax" or "none" (already a probability)
    threshold = 0.5                  # score >= threshold flags the image (calibrate with `detector evaluate`)

``tripwire detector evaluate --real DIR --synthetic DIR`` measures ROC AUC on the operator's own labelled
sets and the threshold that keeps the false-positive rate on real photos at a chosen level.
onnxruntime is an optional dependency (``pip install tripwire[detector]``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UsageError

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class DetectorConfig:
    model: str
    input_size: tuple[int, int] = (224, 224)
    resize: str = "stretch"
    scale: float = 255.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    layout: str = "NCHW"
    channel_order: str = "RGB"
    output: int = 0
    positive_index: int = 1
    activation: str = "none"
    threshold: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_section(cls, section: dict[str, Any] | None, model: str | None = None) -> "DetectorConfig | None":
        """Build from ``[provenance.detector]``; None when no model is configured."""
        section = dict(section or {})
        model = model or section.pop("model", None)
        section.pop("model", None)
        if not model:
            return None
        size = section.pop("input_size", (224, 224))
        if isinstance(size, int):
            size = (size, size)
        try:
            cfg = cls(
                model=str(model),
                input_size=(int(size[0]), int(size[1])),
                resize=str(section.pop("resize", "stretch")),
                scale=float(section.pop("scale", 255.0)),
                mean=tuple(float(x) for x in section.pop("mean", (0.0, 0.0, 0.0))),
                std=tuple(float(x) for x in section.pop("std", (1.0, 1.0, 1.0))),
                layout=str(section.pop("layout", "NCHW")).upper(),
                channel_order=str(section.pop("channel_order", "RGB")).upper(),
                output=int(section.pop("output", 0)),
                positive_index=int(section.pop("positive_index", 1)),
                activation=str(section.pop("activation", "none")).lower(),
                threshold=float(section.pop("threshold", 0.5)),
            )
        except (TypeError, ValueError, IndexError) as exc:
            raise UsageError(f"provenance.detector: {exc}") from exc
        if section:
            raise UsageError(f"provenance.detector: unknown settings {sorted(section)}")
        if cfg.layout not in ("NCHW", "NHWC") or cfg.channel_order not in ("RGB", "BGR"):
            raise UsageError("provenance.detector: layout must be NCHW/NHWC and channel_order RGB/BGR")
        if cfg.activation not in ("none", "sigmoid", "softmax") or cfg.resize not in ("stretch", "center_crop"):
            raise UsageError("provenance.detector: activation none/sigmoid/softmax, resize stretch/center_crop")
        if len(cfg.mean) != 3 or len(cfg.std) != 3 or any(s == 0 for s in cfg.std):
            raise UsageError("provenance.detector: mean and std need 3 values, std non-zero")
        return cfg


class OnnxDetector:
    """Loads the model once per process and scores RGB images."""

    def __init__(self, config: DetectorConfig) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise UsageError("the pixel detector needs onnxruntime: pip install 'tripwire[detector]'") from exc
        path = Path(config.model).expanduser()
        if not path.is_file():
            raise UsageError(f"provenance.detector.model: {path} does not exist")
        self.config = config
        self.name = path.name
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def preprocess(self, rgb: Image.Image) -> np.ndarray:
        """PIL RGB image -> the model's input tensor (batch of one)."""
        from PIL import Image

        w, h = self.config.input_size
        img = rgb.convert("RGB")
        if self.config.resize == "center_crop":
            ratio = max(w / img.width, h / img.height)
            img = img.resize((max(w, round(img.width * ratio)), max(h, round(img.height * ratio))), Image.Resampling.BILINEAR)
            left, top = (img.width - w) // 2, (img.height - h) // 2
            img = img.crop((left, top, left + w, top + h))
        else:
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        arr: np.ndarray = np.asarray(img, dtype=np.float32) / np.float32(self.config.scale)  # float32 throughout
        arr = (arr - np.asarray(self.config.mean, dtype=np.float32)) / np.asarray(self.config.std, dtype=np.float32)
        if self.config.channel_order == "BGR":
            arr = arr[:, :, ::-1]
        if self.config.layout == "NCHW":
            arr = arr.transpose(2, 0, 1)
        return np.ascontiguousarray(arr[None, ...], dtype=np.float32)

    def score(self, rgb: Image.Image) -> float:
        """Probability-like score that the image is AI-generated (0..1 after the configured activation)."""
        out = self.session.run(None, {self.input_name: self.preprocess(rgb)})[self.config.output]
        values = np.asarray(out, dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError("the model returned an empty output")
        if values.size == 1:
            value = values[0]
            return float(1.0 / (1.0 + math.exp(-value))) if self.config.activation == "sigmoid" else float(value)
        if self.config.activation == "softmax":
            exp = np.exp(values - values.max())
            values = exp / exp.sum()
        elif self.config.activation == "sigmoid":
            values = 1.0 / (1.0 + np.exp(-values))
        return float(values[self.config.positive_index])

    def evidence(self, rgb: Image.Image) -> dict[str, Any]:
        score = self.score(rgb)
        return {
            "source": "detector",
            "model": self.name,
            "model_sha256": self.sha256,
            "score": round(score, 6),
            "threshold": self.config.threshold,
            "flagged": bool(score >= self.config.threshold),
        }


def roc_auc(negatives: list[float], positives: list[float]) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties counted half."""
    if not negatives or not positives:
        raise ValueError("ROC AUC needs at least one real and one synthetic score")
    neg = np.asarray(negatives, dtype=np.float64)
    pos = np.asarray(positives, dtype=np.float64)
    allv = np.concatenate([neg, pos])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv), dtype=np.float64)
    sorted_v = allv[order]
    i = 0
    while i < len(sorted_v):  # average ranks over ties
        j = i
        while j + 1 < len(sorted_v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    pos_ranks = ranks[len(neg) :].sum()
    return float((pos_ranks - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg)))


def threshold_at_fpr(negatives: list[float], positives: list[float], target_fpr: float) -> dict[str, float]:
    """The lowest threshold whose false-positive rate on ``negatives`` is <= ``target_fpr`` (flag: score >= t)."""
    if not 0.0 <= target_fpr <= 1.0:
        raise ValueError("the false-positive rate must be between 0 and 1")
    neg = np.sort(np.asarray(negatives, dtype=np.float64))[::-1]
    pos = np.asarray(positives, dtype=np.float64)
    allowed = int(math.floor(target_fpr * len(neg) + 1e-9))
    if allowed >= len(neg):
        threshold = float(min(neg.min(), pos.min() if len(pos) else neg.min()))
    else:
        threshold = float(np.nextafter(neg[allowed], np.inf))
    fpr = float((neg >= threshold).sum() / len(neg))
    tpr = float((pos >= threshold).sum() / len(pos)) if len(pos) else 0.0
    return {"threshold": threshold, "fpr": fpr, "tpr": tpr}


def image_files(folder: Path) -> list[Path]:
    """Regular files under ``folder`` whose magic bytes say image (names are not trusted)."""
    from ..media.sniff import SNIFF_BYTES, is_image, sniff

    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        try:
            with path.open("rb") as fh:
                head = fh.read(SNIFF_BYTES)
        except OSError:
            continue
        if is_image(sniff(head)):
            out.append(path)
    return out


def score_folder(detector: OnnxDetector, folder: Path) -> tuple[list[float], list[str]]:
    """Scores of every image in ``folder``; files that fail to decode are listed, not scored."""
    from ..config import Limits
    from ..media.image import load_oriented
    from ..media.item import Item

    scores: list[float] = []
    failures: list[str] = []
    for path in image_files(folder):
        try:
            data = path.read_bytes()
            item = Item(path=str(path), data=data, size=len(data), limits=Limits())
            scores.append(detector.score(load_oriented(item)))
        except Exception as exc:
            failures.append(f"{path}: {type(exc).__name__}: {exc}")
    return scores, failures


def evaluate(detector: OnnxDetector, real: Path, synthetic: Path, target_fpr: float = 0.01) -> dict[str, Any]:
    """ROC AUC and the operating threshold at ``target_fpr`` on two labelled folders."""
    real_scores, real_fail = score_folder(detector, real)
    syn_scores, syn_fail = score_folder(detector, synthetic)
    if not real_scores or not syn_scores:
        first = (real_fail + syn_fail)[:1]
        raise UsageError(
            f"need scored images in both folders (real: {len(real_scores)}, synthetic: {len(syn_scores)})"
            + (f"; first failure: {first[0]}" if first else "")
        )
    op = threshold_at_fpr(real_scores, syn_scores, target_fpr)
    return {
        "model": detector.name,
        "model_sha256": detector.sha256,
        "n_real": len(real_scores),
        "n_synthetic": len(syn_scores),
        "roc_auc": roc_auc(real_scores, syn_scores),
        "target_fpr": target_fpr,
        "threshold": op["threshold"],
        "fpr": op["fpr"],
        "tpr": op["tpr"],
        "failures": real_fail + syn_fail,
    }

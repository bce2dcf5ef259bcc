"""The provenance extractor: every provenance reader on one item, and the verdict they add up to.

Adds two top-level fields to an image's or a video's record (videos: :mod:`.video`):

- ``provenance``: ``{label, confidence, tool, evidence: [...], conflicts: [...], basis: [...], notes: [...]}``
  (see verdict.py); evidence entries carry ``source`` = c2pa | xmp | exif | generator | watermark | detector;
- ``generator``: the normalised facts of the most specific generator found (tool, tool_version, model,
  model_hash, seed, steps, sampler, cfg, size, prompt, negative_prompt, mode, carrier, model_ref, loras,
  embeddings, vae, prompt_template, raw), or null. Prompts (and the prompt template) live here, in full
  (bounded), for the case database and the detail view; summaries truncate them. Evidence entries keep the
  model facts (model_ref, loras, embeddings, vae) of every parser that recognised the file.

Settings come from ``[provenance]`` in the TOML config::

    [provenance]
    trust_anchors = "c2pa-anchors.pem"   # PEM bundle: C2PA signers chaining to these are "trusted"
    allowed_list = "allowed-signers.pem" # PEM: end-entity certificates trusted as they are
    novelai_verify_keys = []             # extra Ed25519 keys (base64); NovelAI's own key is always used
    thumbnail_check = true               # compare the EXIF thumbnail with the image
    watermark = true                     # try the Stable Diffusion invisible watermarks
    pixel_cap = 64000000                 # decode at most this many pixels for stealth copies / signatures
    [provenance.detector]                # optional ONNX pixel classifier (see detector.py)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Config
from ..media.item import Item
from ..media.sniff import is_image, is_video
from .c2pa import C2paSettings, c2pa_evidence
from .containers import read_bundle
from .detector import DetectorConfig, OnnxDetector
from .exif import camera_evidence, exif_texts, load_exif
from .generators import ParseInput, parse_all
from .verdict import decide
from .xmp import parse_xmp, xmp_evidence

_EVIDENCE_SKIP = ("raw", "prompt", "negative_prompt", "prompt_template")


def _generator_entry(facts: dict[str, Any]) -> dict[str, Any]:
    """The evidence entry for one generator result: its facts minus the bulky text (kept in ``generator``)."""
    entry: dict[str, Any] = {"source": "generator"}
    entry.update({k: v for k, v in facts.items() if k not in _EVIDENCE_SKIP})
    entry["has_prompt"] = bool(facts.get("prompt"))
    return entry


class ProvenanceExtractor:
    """C2PA, XMP/IPTC, EXIF, generator metadata, watermarks and the optional detector -> one verdict."""

    name = "provenance"
    #: 2: model facts (model_ref, loras, embeddings, vae, prompt_template) in ``generator`` and the evidence;
    #: 3: the verdict's ``reason`` and ``edits``, EXIF ``not_camera`` (games, image programs) and ``editor``
    version = "3"
    produces = ("provenance", "generator")

    def __init__(self, config: Config | None = None, base_dir: Path | None = None) -> None:
        sections = config.sections if config is not None else {}
        section = dict(sections.get("provenance") or {})
        self.settings = section
        self.c2pa_settings = C2paSettings.from_config(section, base=base_dir)
        self.detector_config = DetectorConfig.from_section(section.get("detector"))
        self.check_thumbnail = bool(section.get("thumbnail_check", True))
        self.use_watermark = bool(section.get("watermark", True))
        #: images above this many pixels are not decoded for stealth copies / signatures (metadata still read)
        self.pixel_cap = int(section.get("pixel_cap", 64_000_000))
        self._detector: OnnxDetector | None = None

    def __getstate__(self) -> dict[str, Any]:  # the ONNX session is per process, not picklable
        state = dict(self.__dict__)
        state["_detector"] = None
        return state

    def _detector_evidence(self, item: Item) -> dict[str, Any] | None:
        if self.detector_config is None:
            return None
        from ..media.image import load_oriented

        try:
            if self._detector is None:
                self._detector = OnnxDetector(self.detector_config)
            return self._detector.evidence(load_oriented(item))
        except Exception as exc:
            return {"source": "detector", "skipped": f"{type(exc).__name__}: {exc}"[:300]}

    def _watermark_evidence(self, item: Item) -> list[dict[str, Any]]:
        if not self.use_watermark:
            return []
        try:
            from .watermark import watermark_evidence
        except ImportError:
            return []
        try:
            return [e for e in watermark_evidence(item) or [] if isinstance(e, dict)]
        except Exception as exc:  # a decoder failure is recorded, never fatal
            return [{"source": "watermark", "skipped": f"decoder error: {type(exc).__name__}: {exc}"[:300]}]

    def _video(self, item: Item) -> dict[str, Any]:
        """A video container: C2PA (BMFF), XMP, ComfyUI's comment JSON, AI tool tags, phone/camera tags."""
        from .video import video_evidence

        evidence = [c2pa_evidence(item.data, item.media_type, self.c2pa_settings)]
        if item.data is None:
            verdict = decide(evidence)
            verdict["notes"] = ["file larger than the decode cap: metadata not read"]
            return {"provenance": verdict, "generator": None}
        entries, generators, notes = video_evidence(item.data, item.media_type, self.settings)
        evidence += entries
        evidence.extend(_generator_entry(f) for f in generators)
        verdict = decide(evidence)
        verdict["notes"] = notes[:50]
        return {"provenance": verdict, "generator": generators[0] if generators else None}

    def extract(self, item: Item) -> dict[str, Any]:
        if is_video(item.media_type):
            return self._video(item)
        if not is_image(item.media_type):
            return {}
        if item.data is None:
            entry = c2pa_evidence(None, item.media_type, self.c2pa_settings)
            verdict = decide([entry])
            verdict["notes"] = ["file larger than the decode cap: metadata not read"]
            return {"provenance": verdict, "generator": None}

        evidence: list[dict[str, Any]] = []
        notes: list[str] = []
        evidence.append(c2pa_evidence(item.data, item.media_type, self.c2pa_settings))

        bundle = read_bundle(item.data, item.media_type)
        notes.extend(bundle.notes)
        xmp_entry = xmp_evidence(bundle.xmp)
        if xmp_entry is not None:
            evidence.append(xmp_entry)
        exif_entry = camera_evidence(bundle.exif, item, check_thumbnail=self.check_thumbnail)
        if exif_entry is not None:
            evidence.append(exif_entry)

        xmp_facts: dict[str, Any] = {}
        for packet in bundle.xmp[:4]:
            facts = parse_xmp(packet)
            for key, value in facts.items():
                xmp_facts.setdefault(key, value)

        def pixels() -> Any:  # the RGB(A) array, or None
            """The stored pixel grid for stealth copies and signatures: 8-bit RGB(A) only, within the cap."""
            import numpy as np

            try:
                header = item.open_image()
                if header.mode not in ("RGB", "RGBA") or header.width * header.height > self.pixel_cap:
                    return None
                return np.asarray(item.decoded())
            except Exception:
                return None

        inp = ParseInput(
            bundle=bundle,
            exif_text=exif_texts(load_exif(bundle.exif, notes)),
            xmp=xmp_facts,
            pixels=pixels,
            settings=self.settings,
        )
        generators, errors = parse_all(inp)
        notes.extend(errors)
        evidence.extend(_generator_entry(f) for f in generators)

        evidence.extend(self._watermark_evidence(item))
        detector = self._detector_evidence(item)
        if detector is not None:
            evidence.append(detector)

        verdict = decide(evidence)
        verdict["notes"] = notes[:50]
        return {"provenance": verdict, "generator": generators[0] if generators else None}

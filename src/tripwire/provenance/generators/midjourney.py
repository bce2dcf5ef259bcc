"""Midjourney: the prompt and job id in ``Description`` (PNG text chunk, or dc:description / EXIF
ImageDescription in JPEG/WebP downloads), e.g.::

    a watercolor lighthouse at dusk --ar 16:9 --v 6.1 Job ID: 0b5c6a5e-7a43-4a5a-9f0f-2f7d1d7d6a11

Parameters after ``--`` are Midjourney's flags (--v / --niji model version, --ar aspect, --seed, --s stylize,
--c chaos, --q quality...). Midjourney also labels downloads ``trainedAlgorithmicMedia`` in XMP; that is read
by xmp.py as separate evidence.
"""

from __future__ import annotations

import re
from typing import Any

from .base import ParseInput, make_facts

TOOL = "Midjourney"
_JOB = re.compile(r"Job ID:\s*([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})")
_FLAG = re.compile(r"(?:^|\s)--([a-zA-Z]+)(?:\s+([^\s-][^\s]*))?")


def _facts(text: str, carrier: str, extra: dict[str, Any]) -> dict[str, Any] | None:
    job = _JOB.search(text)
    if not job:
        return None
    body = text[: job.start()].strip()
    cut = body.find(" --")
    prompt = body[:cut].strip() if cut >= 0 else body
    flags: dict[str, str] = {}
    for match in _FLAG.finditer(body[cut:] if cut >= 0 else ""):
        flags[match.group(1).lower()] = match.group(2) or "true"
    model = None
    if "niji" in flags:
        model = f"niji {flags['niji']}" if flags["niji"] != "true" else "niji"
    elif "v" in flags or "version" in flags:
        model = f"v{flags.get('v') or flags.get('version')}"
    facts = make_facts(
        TOOL,
        carrier,
        {"Description": text, **extra},
        model=model,
        seed=flags.get("seed"),
        prompt=prompt,
        negative_prompt=flags.get("no"),
        mode="img2img" if re.match(r"^<?https?://", prompt) else "txt2img",
    )
    facts["job_id"] = job.group(1).lower()
    facts["flags"] = flags
    return facts


def parse(inp: ParseInput) -> list[dict[str, Any]]:
    extra: dict[str, Any] = {k: inp.bundle.text[k] for k in ("Author", "Creation Time") if k in inp.bundle.text}
    sources = []
    if "Description" in inp.bundle.text:
        sources.append(("png:Description", inp.bundle.text["Description"]))
    if "ImageDescription" in inp.exif_text:
        sources.append(("exif:ImageDescription", inp.exif_text["ImageDescription"]))
    if inp.xmp.get("description"):
        sources.append(("xmp:dc:description", inp.xmp["description"]))
    for carrier, text in sources:
        facts = _facts(text, carrier, extra)
        if facts:
            return [facts]
    return []

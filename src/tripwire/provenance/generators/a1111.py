"""AUTOMATIC1111 / Forge (and forks writing the same text block): the ``parameters`` infotext.

Where it is found: PNG ``parameters`` text chunk; JPEG/WebP EXIF ``UserComment`` (``UNICODE`` prefix + UTF-16);
the stealth alpha/RGB copies (``stealth_pnginfo``/``stealth_pngcomp``/``stealth_rgbinfo``/``stealth_rgbcomp``).
Format::

    <prompt, possibly several lines>
    Negative prompt: <negative prompt, possibly several lines>
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: abc, Model: name, ...

The last line holds ``key: value`` pairs; values may be double-quoted with commas inside (A1111's own
``re_param`` rule). Forge writes the same block with a ``Version: f<forge>v<a1111>`` value.

Model facts (models.py): ``Model``/``Model hash`` (AutoV2, or AutoV1 when 8 hex), ``VAE``/``VAE hash``,
``Lora hashes: "name: autov3, ..."``, ``TI hashes: "name: hash, ..."`` (first 12 hex of the embedding file's
SHA-256, kept as its AutoV2 form), ``Lora weights`` (Fooocus's A1111 scheme), ``Hashes: {"model": ..,
"vae": .., "lora:NAME": .., "embed:NAME": ..}`` (JSON, written by Civitai tooling), ``<lora:name:weight>`` tags
in either prompt, and Civitai's unquoted ``Civitai resources: [{"type", "modelName", "weight", "hash"?,
"air"?}]`` JSON list.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .base import ParseInput, load_json, make_facts
from .models import ModelFacts, as_list, split_pairs

TOOL = "AUTOMATIC1111"
_PARAM = re.compile(r'\s*([\w][\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")
#: parameters Civitai writes as bare (unquoted) JSON, which the ``key: value`` rule would cut at a comma
_BARE_JSON = ("Civitai resources", "Civitai metadata")
_DECODER = json.JSONDecoder()


def _cut_bare_json(line: str) -> tuple[str, dict[str, str]]:
    """Take ``Civitai resources: [...]``-style values out of the parameter line (as JSON text)."""
    found: dict[str, str] = {}
    for key in _BARE_JSON:
        at = line.find(f"{key}:")
        if at < 0:
            continue
        start = at + len(key) + 1
        while start < len(line) and line[start] == " ":
            start += 1
        if start >= len(line) or line[start] not in "[{":
            continue
        try:
            value, end = _DECODER.raw_decode(line, start)
        except (ValueError, RecursionError):
            continue
        found[key] = line[start:end]
        line = line[:at] + line[end:].lstrip(", ")
    return line, found


def parse_infotext(text: str) -> dict[str, Any] | None:
    """Split an infotext into prompt, negative prompt and the key/value parameters; None if it is not one."""
    if not text or len(text) > 1_000_000:
        return None
    lines = text.strip().split("\n")
    last, params = _cut_bare_json(lines[-1])
    for match in _PARAM.finditer(last):
        key, value = match.group(1).strip(), match.group(2).strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if not (key in _BARE_JSON and key in params):  # a bare JSON value taken out above wins
            params[key] = value
    if len(params) < 3 or "Steps" not in params:
        return None
    lines = lines[:-1]
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in lines:
        if line.startswith("Negative prompt:"):
            target = negative_lines
            line = line[len("Negative prompt:") :].lstrip()
        target.append(line)
    return {"prompt": "\n".join(prompt_lines).strip(), "negative_prompt": "\n".join(negative_lines).strip(), "params": params}


def tool_of(params: dict[str, str]) -> tuple[str, str | None]:
    """Which A1111-family tool wrote the block (from ``Version``/``App``)."""
    version = params.get("Version", "")
    app = params.get("App", "")
    if app:
        return app, version or None
    if re.match(r"^f\d", version):
        return "Forge", version
    if version.lower().startswith("fooocus"):
        return "Fooocus", version.split(" ", 1)[-1]
    if "neo" in version.lower() and version.startswith("f"):
        return "Forge", version
    return TOOL, version or None


def mode_of(params: dict[str, str]) -> str:
    if any(k in params for k in ("Mask blur", "Inpaint area", "Masked content", "Mask mode")):
        return "inpaint"
    if "Denoising strength" in params and "Hires upscale" not in params and "Hires upscaler" not in params:
        return "img2img"
    return "txt2img"


def _civitai_resources(collected: ModelFacts, text: Any) -> None:
    checkpoint_seen = False
    for item in as_list(load_json(text) if isinstance(text, str) else None):
        if not isinstance(item, dict):
            continue
        kind = str(item.get("type") or "").lower()
        name = item.get("modelName") or item.get("modelVersionName")
        digest = item.get("hash")
        if kind in ("checkpoint", "model") and not checkpoint_seen:
            checkpoint_seen = True  # the first one is the generation's checkpoint; any other is a refiner's
            collected.set_model(name, digest)
        elif kind in ("lora", "lycoris", "locon", "dora"):
            collected.loras.add(name, item.get("weight"), air=item.get("air"))
            collected.loras.hash_for(name, digest)
        elif kind in ("embed", "embedding", "textualinversion"):
            collected.embeddings.add(name, air=item.get("air"))
            collected.embeddings.hash_for(name, digest)
        elif kind == "vae":
            collected.set_vae(name, digest)


def _hashes_json(collected: ModelFacts, text: Any) -> None:
    """``Hashes: {"model": .., "vae": .., "lora:NAME": .., "lyco:NAME": .., "embed:NAME": ..}``."""
    data = load_json(text) if isinstance(text, str) else None
    if not isinstance(data, dict):
        return
    for key, digest in list(data.items())[:256]:
        kind, _, name = str(key).partition(":")
        kind = kind.lower()
        if kind == "model" and not name:
            collected.set_model(None, digest)
        elif kind == "vae" and not name:
            collected.set_vae(None, digest)
        elif kind in ("lora", "lyco", "lycoris") and name:
            collected.loras.hash_for(name, digest)
        elif kind in ("embed", "embedding", "ti") and name:
            collected.embeddings.hash_for(name, digest, scheme="file12")


def model_facts(params: dict[str, str], prompt: str, negative: str) -> dict[str, Any]:
    """The model facts of one infotext (see the module docstring for every source)."""
    collected = ModelFacts()
    collected.set_model(params.get("Model"), params.get("Model hash"))
    collected.set_vae(params.get("VAE"), params.get("VAE hash"))
    collected.add_prompt_tags(prompt)
    collected.add_prompt_tags(negative)
    for name, weight in split_pairs(params.get("Lora weights")):
        collected.loras.add(name, weight)
    for name, digest in split_pairs(params.get("Lora hashes")):
        collected.loras.hash_for(name, digest)
    for name, digest in split_pairs(params.get("TI hashes")):
        collected.embeddings.hash_for(name, digest, scheme="file12")
    _hashes_json(collected, params.get("Hashes"))
    _civitai_resources(collected, params.get("Civitai resources"))
    return collected.values()


def facts_from_infotext(text: str, carrier: str, tool_override: str | None = None) -> dict[str, Any] | None:
    parsed = parse_infotext(text)
    if parsed is None:
        return None
    params = parsed["params"]
    tool, version = tool_of(params)
    if tool_override:
        tool = tool_override
    size = params.get("Size")
    if size and not _SIZE.match(size):
        size = None
    return make_facts(
        tool,
        carrier,
        {"parameters": text},
        tool_version=version,
        model=params.get("Model"),
        model_hash=params.get("Model hash"),
        seed=params.get("Seed"),
        steps=params.get("Steps"),
        sampler=" ".join(x for x in (params.get("Sampler"), params.get("Schedule type")) if x and x != "Automatic")
        or None,
        cfg=params.get("CFG scale"),
        size=size.replace(" ", "") if size else None,
        prompt=parsed["prompt"],
        negative_prompt=parsed["negative_prompt"],
        mode=mode_of(params),
        **model_facts(params, parsed["prompt"], parsed["negative_prompt"]),
    )


def candidates(inp: ParseInput) -> list[tuple[str, str]]:
    """(carrier, text) pairs that may hold an infotext."""
    out: list[tuple[str, str]] = []
    for key, value in inp.bundle.text.items():
        if key.split("#")[0] == "parameters":
            out.append((f"png:{key}", value))
    if inp.exif_text.get("UserComment"):
        out.append(("exif:UserComment", inp.exif_text["UserComment"]))
    for i, comment in enumerate(inp.bundle.comments):
        out.append((f"jpeg:COM{'' if i == 0 else i + 1}", comment))
    for found in inp.stealth:
        payload = found.get("payload")
        if isinstance(payload, bytes):
            out.append((f"stealth:{found['signature']}", payload.decode("utf-8", errors="replace")))
    if inp.xmp.get("user_comment"):
        out.append(("xmp:exif:UserComment", inp.xmp["user_comment"]))
    return out


def parse(inp: ParseInput) -> list[dict[str, Any]]:
    found = []
    for carrier, text in candidates(inp):
        if load_json(text) is not None:  # JSON blocks belong to Fooocus/SwarmUI/NovelAI
            continue
        facts = facts_from_infotext(text, carrier)
        if facts is None or facts["tool"] == "Fooocus":  # fooocus.py reports Fooocus's a1111 scheme
            continue
        found.append(facts)
    return found

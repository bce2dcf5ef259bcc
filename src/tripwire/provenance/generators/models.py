"""Model facts: which checkpoint, LoRAs, embeddings and VAE an image names, with validated hash forms.

A LoRA is evidence (a person-LoRA can depict a real, identifiable person even when every pixel is
synthetic), so every generator parser reports the models its metadata names in one shape::

    model_ref   {"name", "hashes": {...}} | None
    loras       [{"name", "weight", "hashes": {...}, "air"?}]     (at most MAX_REFS)
    embeddings  [{"name", "hashes": {...}, "air"?}]               (at most MAX_REFS)
    vae         {"name", "hashes": {...}} | None
    prompt_template  str | None                                  (see :func:`prompt_template`)

``hashes`` holds only validated lowercase hex under the name of its form:

- ``autov1``: 8 hex, legacy A1111 "model hash" (64 KiB of the file at offset 1 MiB);
- ``autov2``: 10 hex, the first 10 of the file's SHA-256 (A1111/Forge ``Model hash``, Fooocus hashes);
- ``autov3``: 12 hex, the first 12 of the SHA-256 of a safetensors file's data after its header (A1111
  ``Lora hashes``; SwarmUI's ``0x`` tensor hashes are the full form of it, kept as their AutoV3 prefix);
- ``sha256``: 64 hex, the whole file's SHA-256 (InvokeAI ``sha256:``, custom ComfyUI nodes);
- ``blake3``: 64 hex, InvokeAI's default ``blake3:`` model hash (kept; no other form can be derived from it).

A value that is not hex, or has a length that is no known form, is dropped and a note says so: a wrong
hash on record would be worse than none. Names are cut at MAX_NAME characters with control characters
removed; weights are finite floats. Nothing here raises on hostile input — every reader takes ``Any``.
"""

from __future__ import annotations

import re
from typing import Any

from .base import MAX_PROMPT, to_float

#: at most this many LoRAs / embeddings per image (a real workflow uses a handful)
MAX_REFS = 64
#: names are cut here
MAX_NAME = 256
#: at most this many notes per parse
MAX_NOTES = 16
#: a hash string longer than this is not looked at (the longest real form is "blake3:" + 64 hex)
MAX_HASH_TEXT = 80

_HEX = re.compile(r"[0-9a-f]+")
_FORM_BY_LENGTH = {8: "autov1", 10: "autov2", 12: "autov3", 64: "sha256"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft", ".gguf")
#: names tools write when no model of that kind was chosen
_NONE_NAMES = {"", "none", "null", "automatic", "auto", "default", "default (model)", "baked vae", "baked"}

#: ``<lora:name:weight>`` and the other extra-network tags A1111/Forge/SwarmUI read from prompts
EXTRA_NETWORK = re.compile(r"<\s*([A-Za-z_][A-Za-z0-9_]{0,31})\s*:([^<>]{0,1024})>")
_LORA_TAGS = {"lora", "lyco", "locon", "loha", "lokr"}
_EMBED_TAGS = {"embed", "embedding"}
#: ComfyUI / SwarmUI embedding syntax inside prompt text
_COMFY_EMBED = re.compile(r"embedding:([\w.\-/\\]{1,256})")


def clean_name(value: Any) -> str | None:
    """A model name as text: strings and numbers only, control characters removed, at most MAX_NAME."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = _CONTROL.sub("", str(value)[: MAX_NAME * 4]).strip()
    return text[:MAX_NAME] or None


def is_none_name(name: str | None) -> bool:
    return name is None or name.strip().lower() in _NONE_NAMES


def name_key(name: str) -> str:
    """How two mentions of one model are recognised inside one image: case, slashes and extension ignored."""
    key = name.strip().lower().replace("\\", "/")
    for ext in _EXTENSIONS:
        if key.endswith(ext):
            key = key[: -len(ext)]
            break
    return key


class Notes:
    """Bounded list of what was dropped and why."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        if len(self.items) < MAX_NOTES and text not in self.items:
            self.items.append(text[:300])


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else type(value).__name__
    return repr(_CONTROL.sub("?", text[:40]) + ("…" if len(text) > 40 else ""))


def hash_forms(value: Any, notes: Notes, what: str, scheme: str = "auto") -> dict[str, str]:
    """Validated hash forms from one written hash value (``{}`` when absent or invalid).

    ``scheme`` says what the tool's value is when its length alone would mislead:
    ``auto`` (by length, see the module docstring), ``tensor`` (a SwarmUI/ModelSpec SHA-256 of the tensor
    data: its AutoV3 prefix is kept) or ``file12`` (A1111 ``TI hashes``: the first 12 hex of the file's
    SHA-256, whose first 10 are the AutoV2 form).
    """
    if value is None or value == "":
        return {}
    if not isinstance(value, str):
        notes.add(f"{what}: hash is a {type(value).__name__}, not text; dropped")
        return {}
    text = value.strip().lower()
    if not text:
        return {}
    if len(text) > MAX_HASH_TEXT:
        notes.add(f"{what}: hash of {len(text)} characters is no known form; dropped")
        return {}
    algo = ""
    if ":" in text:
        algo, _, text = text.partition(":")
        algo = algo.strip()
        text = text.strip()
    if text.startswith("0x"):
        text = text[2:]
        if scheme == "auto" and algo == "" and len(text) == 64:
            scheme = "tensor"
    if not _HEX.fullmatch(text):
        notes.add(f"{what}: hash {_shown(value)} is not hexadecimal; dropped")
        return {}
    if algo == "blake3":
        if len(text) == 64:
            return {"blake3": text}
        notes.add(f"{what}: blake3 hash of {len(text)} hex digits is no known form; dropped")
        return {}
    if algo not in ("", "sha256", "autov1", "autov2", "autov3"):
        notes.add(f"{what}: {_shown(algo)} hashes are not a known form; dropped")
        return {}
    if scheme == "tensor" and len(text) in (12, 64):
        return {"autov3": text[:12]}
    if scheme == "file12" and len(text) == 12:
        return {"autov2": text[:10]}
    form = _FORM_BY_LENGTH.get(len(text))
    if form is None or (algo == "sha256" and form != "sha256") or (algo.startswith("autov") and algo != form):
        notes.add(f"{what}: hash {_shown(value)} ({len(text)} hex digits) is no known form; dropped")
        return {}
    return {form: text}


def _merge_hashes(into: dict[str, str], new: dict[str, str], notes: Notes, what: str) -> None:
    for form, digest in new.items():
        old = into.get(form)
        if old is None:
            into[form] = digest
        elif old != digest:
            notes.add(f"{what}: two different {form} hashes written; the first is kept")


class RefList:
    """LoRAs or embeddings named by one image: merged by :func:`name_key`, capped at MAX_REFS."""

    def __init__(self, kind: str, notes: Notes, weighted: bool) -> None:
        self.kind = kind
        self.notes = notes
        self.weighted = weighted
        self.items: list[dict[str, Any]] = []
        self._index: dict[str, int] = {}
        self.dropped = 0

    def add(self, name: Any, weight: Any = None, hashes: dict[str, str] | None = None, air: Any = None) -> None:
        text = clean_name(name)
        if text is None:
            if name is not None and not isinstance(name, str):
                self.notes.add(f"{self.kind}: a name that is a {type(name).__name__} was ignored")
            return
        if is_none_name(text):
            return
        key = name_key(text)
        value = to_float(weight) if isinstance(weight, int | float | str) and not isinstance(weight, bool) else None
        if key in self._index:
            entry = self.items[self._index[key]]
            if self.weighted and entry.get("weight") is None:
                entry["weight"] = value
            _merge_hashes(entry["hashes"], hashes or {}, self.notes, f"{self.kind} {text!r}")
            if air is not None and "air" not in entry:
                air_text = clean_name(air)
                if air_text:
                    entry["air"] = air_text
            return
        if len(self.items) >= MAX_REFS:
            self.dropped += 1
            return
        entry = {"name": text}
        if self.weighted:
            entry["weight"] = value
        entry["hashes"] = dict(hashes or {})
        air_text = clean_name(air) if air is not None else None
        if air_text:
            entry["air"] = air_text
        self._index[key] = len(self.items)
        self.items.append(entry)

    def hash_for(self, name: Any, digest: Any, scheme: str = "auto") -> None:
        """A hash written apart from the mention (``Lora hashes``, ``sui_models``): attach or add by name."""
        text = clean_name(name)
        if text is None:
            return
        self.add(text, hashes=hash_forms(digest, self.notes, f"{self.kind} {text!r}", scheme))

    def result(self) -> list[dict[str, Any]]:
        if self.dropped:
            self.notes.add(f"more {self.kind} entries than {MAX_REFS}: at least {self.dropped} not kept")
        return self.items


class ModelFacts:
    """Collects the model facts of one parse from as many places as the tool writes them."""

    def __init__(self) -> None:
        self.notes = Notes()
        self.model: dict[str, Any] | None = None
        self.vae: dict[str, Any] | None = None
        self.loras = RefList("lora", self.notes, weighted=True)
        self.embeddings = RefList("embedding", self.notes, weighted=False)

    def _single(self, current: dict[str, Any] | None, kind: str, name: Any, digest: Any, scheme: str) -> dict[str, Any] | None:
        text = clean_name(name)
        if text is not None and is_none_name(text):
            text = None
        hashes = hash_forms(digest, self.notes, f"{kind} {text!r}" if text else kind, scheme)
        if current is None:
            if text is None and not hashes:
                return None
            return {"name": text, "hashes": hashes}
        if current.get("name") is None and text is not None:
            current["name"] = text
        _merge_hashes(current["hashes"], hashes, self.notes, kind)
        return current

    def set_model(self, name: Any = None, digest: Any = None, scheme: str = "auto") -> None:
        self.model = self._single(self.model, "model", name, digest, scheme)

    def set_vae(self, name: Any = None, digest: Any = None, scheme: str = "auto") -> None:
        self.vae = self._single(self.vae, "vae", name, digest, scheme)

    def add_prompt_tags(self, text: Any) -> None:
        """``<lora:name:weight>`` (weight 1.0 when not written), ``<lyco:…>``, ``<embed:name>``, ``embedding:name``."""
        if not isinstance(text, str):
            return
        for match in EXTRA_NETWORK.finditer(text[: MAX_PROMPT * 4]):
            tag = match.group(1).lower()
            args = match.group(2).split(":")
            if tag in _LORA_TAGS:
                weight: Any = 1.0
                if len(args) > 1:
                    first = args[1].strip()
                    weight = first.split("=", 1)[1] if "=" in first else first  # named args: unet=0.8
                self.loras.add(args[0], weight)
            elif tag in _EMBED_TAGS:
                self.embeddings.add(args[0])
        for match in _COMFY_EMBED.finditer(text[: MAX_PROMPT * 4]):
            self.embeddings.add(match.group(1))

    def values(self) -> dict[str, Any]:
        """The keyword arguments for ``make_facts``."""
        out: dict[str, Any] = {
            "model_ref": self.model,
            "loras": self.loras.result(),
            "embeddings": self.embeddings.result(),
            "vae": self.vae,
        }
        if self.notes.items:
            out["model_notes"] = list(self.notes.items)
        return out


def complete(facts: dict[str, Any]) -> dict[str, Any]:
    """Give one parse result every model key: derived from ``model``/``model_hash``/``prompt`` when the parser
    wrote none (a tool that records nothing more specific still names its checkpoint)."""
    if "model_ref" not in facts:
        collected = ModelFacts()
        collected.set_model(facts.get("model"), facts.get("model_hash"))
        for key, value in collected.values().items():
            facts.setdefault(key, value)
    for key, default in (("loras", []), ("embeddings", []), ("vae", None)):
        facts.setdefault(key, default)
    if "prompt_template" not in facts:
        facts["prompt_template"] = prompt_template(facts.get("prompt"))
    return facts


def split_pairs(text: Any, limit: int = MAX_REFS * 4) -> list[tuple[str, str]]:
    """``"name: value, name2: value2"`` (A1111 ``Lora hashes``/``TI hashes``) as pairs; the last ``:`` splits."""
    if not isinstance(text, str):
        return []
    out: list[tuple[str, str]] = []
    for part in text.split(",", limit)[:limit]:
        name, sep, value = part.rpartition(":")
        if sep and name.strip():
            out.append((name.strip(), value.strip()))
    return out


def as_list(value: Any, limit: int = MAX_REFS * 4) -> list[Any]:
    """A JSON list, or a comma separated string (SwarmUI writes both), bounded."""
    if isinstance(value, list):
        return value[:limit]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",", limit)[:limit]]
    return []


# --- prompt template -------------------------------------------------------------------------------------

_WITH_LORA = re.compile(r"\b(?:with|use)Lora\([^()]{0,300}\)")
_WEIGHT_SUFFIX = re.compile(r"\s*:\s*[-+]?(?:\d+\.?\d*|\.\d+)\s*(?=[)\]])")
_COMPEL_NUMBER = re.compile(r"(?<=\))[-+]?(?:\d+\.?\d*|\.\d+)")
_COMPEL_SIGNS = re.compile(r"(?<=[\w)])[+\-]+(?=[\s,.;)\]]|$)")
_BRACKETS = re.compile(r"\\?[()\[\]{}]")
_SPACE = re.compile(r"\s+")


def prompt_template(prompt: Any) -> str | None:
    """The prompt reduced to what a creator reuses across a series (rule documented in docs/provenance.md).

    1. extra-network tags ``<name:…>`` (``<lora:…>``, ``<lyco:…>``, ``<hypernet:…>``, ``<embed:…>``,
       SwarmUI ``<wildcard:…>``…) and InvokeAI 2.3 ``withLora(…)``/``useLora(…)`` are removed;
    2. attention weights are dropped: ``:1.2`` before a closing ``)`` or ``]``, a Compel number straight after
       ``)`` (``(word)1.1``) and Compel ``+``/``-`` after a word (``word++``);
    3. the brackets ``( ) [ ] { }`` (escaped or not) become spaces, so ``(word:1.2)`` and ``[word]`` leave
       ``word``;
    4. lowercased; split at commas, each part's whitespace (newlines included) collapsed to single spaces,
       empty parts dropped, joined with ``", "``; cut at MAX_PROMPT characters.

    Numbers that are part of the text are kept. ``None`` when nothing is left.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        return None
    text = prompt[: MAX_PROMPT * 2]
    text = EXTRA_NETWORK.sub(" ", text)
    text = _WITH_LORA.sub(" ", text)
    text = _WEIGHT_SUFFIX.sub("", text)
    text = _COMPEL_NUMBER.sub("", text)
    text = _COMPEL_SIGNS.sub("", text)
    text = _BRACKETS.sub(" ", text)
    text = text.lower()
    parts = (_SPACE.sub(" ", part).strip() for part in text.split(","))
    out = ", ".join(p for p in parts if p)
    return out[:MAX_PROMPT] or None

"""Hashes of AI model files (checkpoints, LoRAs, embeddings, VAEs): a match says how an image was *made*.

Generators write which model files they used (AUTOMATIC1111/Forge ``Model hash:``, ``Lora hashes:``,
``TI hashes:``, Civitai resources, InvokeAI, ComfyUI custom nodes; the provenance parsers normalise them into
the record's ``generator`` facts). A bank of model files — a person-LoRA seized or traded, a checkpoint
fine-tuned for abuse — then matches every image whose metadata names one of them.

One type per hash *function*; its short forms are prefixes of the full value, not types of their own:

==================  ====  ======================================================================  ===========
type                hex   what                                                                    short forms
==================  ====  ======================================================================  ===========
``model_sha256``    64    SHA-256 of the whole file (A1111 ``sha256``, Civitai ``SHA256``)          10: AutoV2
``model_autov3``    64    SHA-256 of a safetensors file's bytes after its header (kohya/addnet      12: AutoV3
                          hash; A1111 writes its first 12 hex in ``Lora hashes``)
``model_autov1``    8     A1111's legacy ``model hash``: SHA-256 of the 64 KiB at offset 1 MiB      —
==================  ====  ======================================================================  ===========

Why not separate ``autov2`` and ``autov3`` types: a bank entry made from a file holds the full value, and
the short form an image carries is, by definition, its prefix — storing both would report one model twice.
A list that only knows a short form (a Civitai page gives AutoV2) stores the short value honestly under
the same type; a full value in an image then matches it by its prefix. :meth:`SignalType.same` decides,
:meth:`SignalType.form` names the form a match rests on, and the matcher reports how many distinct banked
models share a short prefix (``ambiguous``: more than one).

``queries`` reads the ``generator`` record field and every generator evidence entry (the facts contract
of issue 17: ``model_ref``, ``loras``, ``embeddings``, ``vae``, each with ``hashes`` keyed ``sha256``,
``autov1``, ``autov2``, ``autov3``); the query's ``variant`` is the role that named the model:
``model``, ``vae``, ``lora:<name>``, ``embedding:<name>`` (``model:<name>`` when the checkpoint is named).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping

from .base import Query, SignalType

if TYPE_CHECKING:
    from ...config import BankSettings

#: longest role name kept in a variant label (names come from an image's metadata: untrusted, bounded)
MAX_NAME = 120
#: most model references read from one record (a hostile workflow may list thousands)
MAX_REFS = 256


def _name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())[:MAX_NAME]
    return text or None


def _label(role: str, name: str | None) -> str:
    return f"{role}:{name}" if name else role


def model_refs(record: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(role label, hashes) of every model reference in a record: its ``generator`` facts first, then the
    generator evidence entries (a file may carry several tools' metadata), at most :data:`MAX_REFS`."""
    sources: list[Any] = [record.get("generator")]
    provenance = record.get("provenance")
    evidence = provenance.get("evidence") if isinstance(provenance, Mapping) else None
    if isinstance(evidence, list):
        sources += [e for e in evidence if isinstance(e, Mapping) and e.get("source") == "generator"]
    count = 0
    for facts in sources:
        if not isinstance(facts, Mapping):
            continue
        found: list[tuple[str, Any]] = []
        for role, key in (("model", "model_ref"), ("vae", "vae")):
            ref = facts.get(key)
            if isinstance(ref, Mapping):
                found.append((_label(role, _name(ref.get("name"))), ref))
        for role, key in (("lora", "loras"), ("embedding", "embeddings")):
            refs = facts.get(key)
            for ref in refs if isinstance(refs, list) else ():
                if isinstance(ref, Mapping):
                    found.append((_label(role, _name(ref.get("name"))), ref))
        for label, ref in found:
            hashes = ref.get("hashes")
            if isinstance(hashes, Mapping):
                count += 1
                if count > MAX_REFS:
                    return
                yield label, hashes


class ModelHashSignal(SignalType):
    """A hash of a model file; matched exactly (with prefix forms) against model banks."""

    matching = "exact"
    describes = "model"
    #: keys of a model reference's ``hashes`` this type reads
    hash_keys: ClassVar[tuple[str, ...]] = ()

    def queries(self, record: Mapping[str, Any], settings: "BankSettings") -> list[Query]:
        out: list[Query] = []
        seen: set[tuple[str, str]] = set()
        for label, hashes in model_refs(record):
            for key in self.hash_keys:
                value = self.valid(hashes.get(key)) if isinstance(hashes.get(key), str) else None
                if value is not None and (value, label) not in seen:
                    seen.add((value, label))
                    out.append(Query(self.name, value, label))
        return out


class ModelSha256Signal(ModelHashSignal):
    name = "model_sha256"
    aliases = ("modelsha256", "autov2", "modelautov2")
    display_name = "ModelSHA256"
    hex_length = 64
    prefix_lengths = (10,)
    forms = {64: "SHA256", 10: "AutoV2"}
    hash_keys = ("sha256", "autov2")

    def display_name_for(self, value: str) -> str:
        return "AutoV2" if len(value) == 10 else self.display_name


class ModelAutoV3Signal(ModelHashSignal):
    name = "model_autov3"
    aliases = ("autov3", "modelautov3", "addnethash")
    display_name = "AutoV3"
    hex_length = 64
    prefix_lengths = (12,)
    forms = {64: "AutoV3 (full)", 12: "AutoV3"}
    hash_keys = ("autov3",)


class ModelAutoV1Signal(ModelHashSignal):
    name = "model_autov1"
    aliases = ("autov1", "modelautov1")
    display_name = "AutoV1"
    hex_length = 8
    forms = {8: "AutoV1"}
    hash_keys = ("autov1",)


MODEL_TYPES: tuple[str, ...] = ("model_sha256", "model_autov3", "model_autov1")

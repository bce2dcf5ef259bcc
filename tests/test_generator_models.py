"""Model facts in provenance (issue 17, deliverable 1): the checkpoint, LoRAs, embeddings and VAE each tool
writes, with validated hash forms and the prompt template, read from benign images built here.

Every picture is synthesised noise or a gradient; prompts are benign landscapes; model names are placeholders
(``ckpt-one``, ``style-alpha``, ``style-bravo``). The hostile cases check that oversized or malformed metadata
gives bounded facts and notes, never an exception or a parser error.
"""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from rich.console import Console

from helpers import read_jsonl, tripwire
from tripwire.config import Config
from tripwire.media.item import Item
from tripwire.provenance.extractor import ProvenanceExtractor
from tripwire.provenance.generators.models import MAX_NAME, MAX_REFS, hash_forms, Notes, prompt_template
from tripwire.provenance.render import render_provenance

PROMPT = "a mountain lake at dawn, (oil painting:1.2), [misty], <lora:style-alpha:0.8> <lora:style-bravo>"
TEMPLATE = "a mountain lake at dawn, oil painting, misty"
NEGATIVE = "blurry, low contrast"
SHA_CKPT = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SHA_LORA = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
AUTOV2 = SHA_CKPT[:10]
AUTOV3_ALPHA = "0123456789ab"
AUTOV3_BRAVO = "ba9876543210"
CIVITAI = json.dumps(
    [
        {"type": "checkpoint", "modelVersionId": 101, "modelName": "ckpt-one", "modelVersionName": "v1"},
        {"type": "lora", "weight": 0.8, "modelVersionId": 202, "modelName": "style-alpha", "air": "urn:air:sdxl:lora:civitai:20@202"},
        {"type": "embed", "modelVersionId": 303, "modelName": "calm-water", "hash": "aabbccddee"},
    ],
    separators=(",", ":"),
)
INFOTEXT = (
    f"{PROMPT}\nNegative prompt: {NEGATIVE}\n"
    f"Steps: 24, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234567, Size: 64x48, "
    f"Model hash: {AUTOV2.upper()}, Model: ckpt-one, VAE hash: 1122334455, VAE: vae-one.safetensors, "
    f'Lora hashes: "style-alpha: {AUTOV3_ALPHA}, style-bravo: {AUTOV3_BRAVO}", TI hashes: "soft-light: 00112233445a", '
    f"Civitai resources: {CIVITAI}, Version: v1.10.1"
)
A1111_MODELS = {
    "model_ref": {"name": "ckpt-one", "hashes": {"autov2": AUTOV2}},
    "loras": [
        {"name": "style-alpha", "weight": 0.8, "hashes": {"autov3": AUTOV3_ALPHA}, "air": "urn:air:sdxl:lora:civitai:20@202"},
        {"name": "style-bravo", "weight": 1.0, "hashes": {"autov3": AUTOV3_BRAVO}},
    ],
    "embeddings": [
        {"name": "soft-light", "hashes": {"autov2": "0011223344"}},
        {"name": "calm-water", "hashes": {"autov2": "aabbccddee"}},
    ],
    "vae": {"name": "vae-one.safetensors", "hashes": {"autov2": "1122334455"}},
    "prompt_template": TEMPLATE,
}
MODEL_KEYS = ("model_ref", "loras", "embeddings", "vae", "prompt_template")


def extract(data: bytes) -> dict:
    facts = ProvenanceExtractor(Config(sections={"provenance": {"watermark": False}})).extract(Item(path="x", data=data, size=len(data)))
    json.dumps(facts)
    return facts


def models_of(gen: dict) -> dict:
    return {k: gen[k] for k in MODEL_KEYS}


def picture(mode: str = "RGB", size=(64, 48), seed: int = 3) -> Image.Image:
    """Benign noise over a gradient."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 40, size=(size[1], size[0], 4 if mode == "RGBA" else 3), dtype=np.uint8)
    arr[..., 2] += np.linspace(60, 200, size[0], dtype=np.uint8)[None, :]
    if mode == "RGBA":
        arr[..., 3] = 255
    return Image.fromarray(arr, mode)


def png(text: dict[str, str], img: Image.Image | None = None) -> bytes:
    info = PngInfo()
    for k, v in text.items():
        info.add_text(k, v)
    buf = io.BytesIO()
    (img or picture()).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def generator_entries(facts: dict) -> list[dict]:
    return [e for e in facts["provenance"]["evidence"] if e["source"] == "generator"]


# --- AUTOMATIC1111 / Forge ---------------------------------------------------------------------------------


def test_a1111_model_facts_exact():
    facts = extract(png({"parameters": INFOTEXT}))
    gen = facts["generator"]
    assert gen["tool"] == "AUTOMATIC1111"
    assert models_of(gen) == A1111_MODELS
    assert "model_notes" not in gen, gen.get("model_notes")
    # the old string fields are unchanged: the name and the hash as written
    assert (gen["model"], gen["model_hash"], gen["seed"], gen["steps"], gen["size"]) == ("ckpt-one", AUTOV2.upper(), 1234567, 24, "64x48")
    # the Civitai JSON list did not leak into other parameters (it is cut out before the key: value rule)
    assert gen["tool_version"] == "v1.10.1"
    (entry,) = generator_entries(facts)
    assert {k: entry[k] for k in ("model_ref", "loras", "embeddings", "vae")} == {k: A1111_MODELS[k] for k in ("model_ref", "loras", "embeddings", "vae")}
    assert "prompt_template" not in entry and "prompt" not in entry, "prompt text stays in `generator` only"


def test_forge_and_stealth_copy_carry_the_same_facts():
    forge = INFOTEXT.replace("Version: v1.10.1", "Version: f2.0.1v1.10.1-previous-313")
    gen = extract(png({"parameters": forge}))["generator"]
    assert gen["tool"] == "Forge" and models_of(gen) == A1111_MODELS
    # stealth_pngcomp: the infotext gzip'ed into the alpha LSBs only (test-only writer of the published layout)
    img = picture("RGBA", size=(128, 128))
    payload = gzip.compress(INFOTEXT.encode())
    bits = np.unpackbits(np.frombuffer(b"stealth_pngcomp" + (len(payload) * 8).to_bytes(4, "big") + payload, dtype=np.uint8))
    arr = np.array(img)
    plane = arr[..., 3].T.copy().reshape(-1)
    plane[: len(bits)] = (plane[: len(bits)] & 0xFE) | bits
    arr[..., 3] = plane.reshape(arr.shape[1], arr.shape[0]).T
    gen = extract(png({}, Image.fromarray(arr, "RGBA")))["generator"]
    assert gen["carrier"] == "stealth:stealth_pngcomp" and models_of(gen) == A1111_MODELS


def test_a1111_legacy_autov1_hashes_json_and_lora_weights():
    text = (
        "a lighthouse on a cliff <lyco:style-bravo:0.5:0.3>, <lora:style-alpha:unet=0.6>\n"
        'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x48, Model hash: 0123ABCD, Model: ckpt-one, '
        f'Hashes: "{{\\"model\\": \\"{AUTOV2}\\", \\"lora:style-alpha\\": \\"{AUTOV3_ALPHA}\\", \\"embed:calm-water\\": \\"00112233445a\\"}}"'
    )
    gen = extract(png({"parameters": text}))["generator"]
    assert gen["model_ref"] == {"name": "ckpt-one", "hashes": {"autov1": "0123abcd", "autov2": AUTOV2}}
    assert gen["loras"] == [
        {"name": "style-bravo", "weight": 0.5, "hashes": {}},
        {"name": "style-alpha", "weight": 0.6, "hashes": {"autov3": AUTOV3_ALPHA}},
    ]
    assert gen["embeddings"] == [{"name": "calm-water", "hashes": {"autov2": "0011223344"}}]
    assert gen["prompt_template"] == "a lighthouse on a cliff"


# --- ComfyUI -----------------------------------------------------------------------------------------------

COMFY = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 18, "cfg": 5.5, "sampler_name": "euler", "scheduler": "normal",
                                                "denoise": 1.0, "model": ["11", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "ckpt-one.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 832, "height": 1216, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a mountain lake at dawn, (oil painting:1.1), embedding:calm-water", "clip": ["11", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["11", 1]}},
    "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "style-alpha.safetensors", "strength_model": 0.8, "strength_clip": 0.7,
                                                   "model": ["4", 0], "clip": ["4", 1]}},
    "11": {"class_type": "LoraLoader", "inputs": {"lora_name": "loras/style-bravo.safetensors", "strength_model": 0.45, "strength_clip": 1.0,
                                                   "model": ["10", 0], "clip": ["10", 1], "sha256": SHA_LORA.upper()}},
    "12": {"class_type": "VAELoader", "inputs": {"vae_name": "vae-one.safetensors"}},
}


def test_comfyui_checkpoint_loras_vae_embedding():
    gen = extract(png({"prompt": json.dumps(COMFY)}))["generator"]
    assert gen["tool"] == "ComfyUI" and gen["model"] == "ckpt-one.safetensors"
    assert models_of(gen) == {
        "model_ref": {"name": "ckpt-one.safetensors", "hashes": {}},
        "loras": [
            {"name": "style-alpha.safetensors", "weight": 0.8, "hashes": {}},
            {"name": "loras/style-bravo.safetensors", "weight": 0.45, "hashes": {"sha256": SHA_LORA}},
        ],
        "embeddings": [{"name": "calm-water", "hashes": {}}],
        "vae": {"name": "vae-one.safetensors", "hashes": {}},
        "prompt_template": "a mountain lake at dawn, oil painting, embedding:calm-water",
    }


def test_comfyui_custom_nodes_and_ui_graph():
    graph = dict(COMFY)
    graph["4"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "ckpt-one.safetensors", "model_hash": AUTOV2}}
    graph["13"] = {"class_type": "Power Lora Loader (rgthree)", "inputs": {
        "lora_1": {"on": True, "lora": "style-charlie.safetensors", "strength": 0.3},
        "lora_2": {"on": False, "lora": "style-delta.safetensors", "strength": 1.0}, "model": ["4", 0]}}
    graph["14"] = {"class_type": "CR LoRA Stack", "inputs": {
        "switch_1": "On", "lora_name_1": "style-echo.safetensors", "model_weight_1": 0.9,
        "switch_2": "Off", "lora_name_2": "style-foxtrot.safetensors", "model_weight_2": 1.0}}
    gen = extract(png({"prompt": json.dumps(graph)}))["generator"]
    assert gen["model_ref"] == {"name": "ckpt-one.safetensors", "hashes": {"autov2": AUTOV2}}
    assert [(x["name"], x["weight"]) for x in gen["loras"]] == [
        ("style-alpha.safetensors", 0.8), ("loras/style-bravo.safetensors", 0.45), ("style-charlie.safetensors", 0.3), ("style-echo.safetensors", 0.9)]
    workflow = {"nodes": [
        {"id": 4, "type": "CheckpointLoaderSimple", "mode": 0, "widgets_values": ["ckpt-one.safetensors"]},
        {"id": 10, "type": "LoraLoader", "mode": 0, "widgets_values": ["style-alpha.safetensors", 0.8, 0.7]},
        {"id": 11, "type": "LoraLoader", "mode": 4, "widgets_values": ["style-bravo.safetensors", 1.0, 1.0]},
        {"id": 6, "type": "CLIPTextEncode", "mode": 0, "widgets_values": ["a mountain lake at dawn"]},
    ]}
    gen = extract(png({"workflow": json.dumps(workflow)}))["generator"]
    assert gen["carrier"] == "png:workflow"
    assert gen["loras"] == [{"name": "style-alpha.safetensors", "weight": 0.8, "hashes": {}}], "a bypassed node did not run"
    assert gen["model_ref"] == {"name": "ckpt-one.safetensors", "hashes": {}}


# --- InvokeAI ----------------------------------------------------------------------------------------------


def test_invokeai_v4_and_v3_loras():
    meta = {
        "generation_mode": "sdxl_txt2img", "positive_prompt": "a mountain lake at dawn, oil painting", "negative_prompt": NEGATIVE,
        "width": 1024, "height": 1024, "seed": 7, "steps": 30, "cfg_scale": 6.0, "scheduler": "euler", "app_version": "5.6.0",
        "model": {"key": "k-1", "hash": f"sha256:{SHA_CKPT}", "name": "ckpt-one", "base": "sdxl", "type": "main"},
        "vae": {"key": "k-2", "hash": "blake3:" + "ab" * 32, "name": "vae-one", "base": "sdxl", "type": "vae"},
        "loras": [
            {"model": {"key": "k-3", "hash": f"sha256:{SHA_LORA}", "name": "style-alpha", "base": "sdxl", "type": "lora"}, "weight": 0.75},
            {"lora": {"model_name": "style-bravo", "base_model": "sdxl"}, "weight": 0.5},
        ],
    }
    gen = extract(png({"invokeai_metadata": json.dumps(meta)}))["generator"]
    assert models_of(gen) == {
        "model_ref": {"name": "ckpt-one", "hashes": {"sha256": SHA_CKPT}},
        "loras": [
            {"name": "style-alpha", "weight": 0.75, "hashes": {"sha256": SHA_LORA}},
            {"name": "style-bravo", "weight": 0.5, "hashes": {}},
        ],
        "embeddings": [],
        "vae": {"name": "vae-one", "hashes": {"blake3": "ab" * 32}},
        "prompt_template": "a mountain lake at dawn, oil painting",
    }
    assert gen["model_hash"] == f"sha256:{SHA_CKPT}", "the string as written stays"


def test_invokeai_graph_lora_loader_and_v2_with_lora():
    graph = {"nodes": {
        "m": {"type": "sdxl_model_loader", "model": {"name": "ckpt-one", "hash": f"sha256:{SHA_CKPT}"}},
        "l": {"type": "sdxl_lora_loader", "lora": {"name": "style-alpha", "hash": f"sha256:{SHA_LORA}"}, "weight": 0.6},
        "p": {"type": "sdxl_compel_prompt", "prompt": "a mountain lake at dawn"},
    }}
    gen = extract(png({"invokeai_graph": json.dumps(graph)}))["generator"]
    assert gen["model_ref"] == {"name": "ckpt-one", "hashes": {"sha256": SHA_CKPT}}
    assert gen["loras"] == [{"name": "style-alpha", "weight": 0.6, "hashes": {"sha256": SHA_LORA}}]
    v2 = {"model_weights": "ckpt-one", "model_hash": AUTOV2, "app_id": "invoke-ai/InvokeAI", "app_version": "2.3.5",
          "image": {"prompt": "a mountain lake withLora(style-alpha, 0.7) at dawn", "steps": 20, "seed": 3, "width": 64, "height": 48, "type": "txt2img"}}
    gen = extract(png({"sd-metadata": json.dumps(v2)}))["generator"]
    assert gen["model_ref"] == {"name": "ckpt-one", "hashes": {"autov2": AUTOV2}}
    assert gen["loras"] == [{"name": "style-alpha", "weight": 0.7, "hashes": {}}]
    assert gen["prompt_template"] == "a mountain lake at dawn"


# --- Fooocus -----------------------------------------------------------------------------------------------


def test_fooocus_json_and_a1111_scheme():
    params = {"prompt": "a mountain lake at dawn", "negative_prompt": "", "base_model": "ckpt-one", "base_model_hash": AUTOV2,
              "seed": "123", "steps": 30, "guidance_scale": 4, "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras",
              "resolution": "(64, 48)", "version": "Fooocus v2.5.5", "vae": "Default (model)", "metadata_scheme": "fooocus",
              "loras": [["style-alpha", 0.8, SHA_LORA[:10]], ["style-bravo", 0.25, "not-a-hash"]]}
    gen = extract(png({"parameters": json.dumps(params), "fooocus_scheme": "fooocus"}))["generator"]
    assert gen["tool"] == "Fooocus"
    assert models_of(gen) == {
        "model_ref": {"name": "ckpt-one", "hashes": {"autov2": AUTOV2}},
        "loras": [
            {"name": "style-alpha", "weight": 0.8, "hashes": {"autov2": SHA_LORA[:10]}},
            {"name": "style-bravo", "weight": 0.25, "hashes": {}},
        ],
        "embeddings": [], "vae": None, "prompt_template": "a mountain lake at dawn",
    }
    assert gen["model_notes"] == ["lora 'style-bravo': hash 'not-a-hash' is not hexadecimal; dropped"]
    old = dict(params, loras=[], lora_combined_1="style-alpha.safetensors : 0.5", lora_combined_2="False : style-bravo.safetensors : 1.0")
    gen = extract(png({"parameters": json.dumps(old), "fooocus_scheme": "fooocus"}))["generator"]
    assert gen["loras"] == [{"name": "style-alpha.safetensors", "weight": 0.5, "hashes": {}}]
    text = ("a mountain lake at dawn\nSteps: 30, Sampler: DPM++ 2M SDE Karras, Seed: 123, Size: 64x48, CFG scale: 4, "
            f'Model: ckpt-one, Model hash: {AUTOV2}, Lora hashes: "style-alpha: {SHA_LORA[:10]}", Lora weights: "style-alpha: 0.8", '
            "Version: Fooocus v2.5.5")
    gen = extract(png({"parameters": text, "fooocus_scheme": "a1111"}))["generator"]
    assert gen["tool"] == "Fooocus"
    assert gen["loras"] == [{"name": "style-alpha", "weight": 0.8, "hashes": {"autov2": SHA_LORA[:10]}}]


# --- SwarmUI -----------------------------------------------------------------------------------------------


def test_swarmui_loras_weights_and_tensor_hashes():
    data = {
        "sui_image_params": {"prompt": "a mountain lake at dawn, <embed:calm-water>", "model": "SDXL/ckpt-one", "seed": 5, "steps": 20,
                             "cfgscale": 7, "width": 64, "height": 48, "loras": ["style-alpha", "style-bravo"], "loraweights": ["0.8", "1"],
                             "vae": "vae-one", "swarm_version": "0.9.5.1"},
        "sui_models": [
            {"name": "SDXL/ckpt-one.safetensors", "param": "model", "hash": "0x" + SHA_CKPT},
            {"name": "style-alpha.safetensors", "param": "loras", "hash": "0x" + SHA_LORA},
            {"name": "style-bravo.safetensors", "param": "loras", "hash": "0xABC"},
            {"name": "calm-water.safetensors", "param": "used_embeddings", "hash": "0x" + SHA_LORA},
        ],
    }
    gen = extract(png({"parameters": json.dumps(data)}))["generator"]
    assert gen["tool"] == "SwarmUI"
    assert models_of(gen) == {
        "model_ref": {"name": "SDXL/ckpt-one", "hashes": {"autov3": SHA_CKPT[:12]}},
        "loras": [
            {"name": "style-alpha", "weight": 0.8, "hashes": {"autov3": SHA_LORA[:12]}},
            {"name": "style-bravo", "weight": 1.0, "hashes": {}},
        ],
        "embeddings": [{"name": "calm-water", "hashes": {"autov3": SHA_LORA[:12]}}],
        "vae": {"name": "vae-one", "hashes": {}},
        "prompt_template": "a mountain lake at dawn",
    }
    assert any("'0xABC'" in note for note in gen["model_notes"])


# --- NovelAI, Midjourney: names only -------------------------------------------------------------------------


def test_novelai_and_midjourney_have_no_hash_forms():
    comment = {"prompt": "a mountain lake at dawn", "steps": 28, "sampler": "k_euler", "seed": 9, "scale": 5.0, "uc": "blurry",
               "width": 64, "height": 48}
    gen = extract(png({"Title": "NovelAI generated image", "Software": "NovelAI", "Source": "NovelAI Diffusion V4.5 4BDE2A90",
                       "Description": "a mountain lake at dawn", "Comment": json.dumps(comment)}))["generator"]
    assert gen["tool"] == "NovelAI" and gen["model_hash"] == "4BDE2A90"
    assert gen["model_ref"] == {"name": "NovelAI Diffusion V4.5", "hashes": {}}, "NovelAI's model id is not a file hash"
    assert (gen["loras"], gen["embeddings"], gen["vae"]) == ([], [], None)
    mj = "a mountain lake at dawn, oil painting --ar 16:9 --v 6.1 Job ID: 0b5c6a5e-7a43-4a5a-9f0f-2f7d1d7d6a11"
    gen = extract(png({"Description": mj}))["generator"]
    assert gen["model_ref"] == {"name": "v6.1", "hashes": {}} and gen["prompt_template"] == "a mountain lake at dawn, oil painting"


# --- the prompt template rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "template"),
    [
        ("A Mountain Lake,  ((Oil Painting:1.3)),\n\n[misty:0.5] , 2 boats", "a mountain lake, oil painting, misty, 2 boats"),
        ("<lora:style-alpha:0.8>a lake <hypernet:calm:1>, <wildcard:colour> sky", "a lake, sky"),
        ("\\(castle\\) on a hill, (stone walls)1.2, moss++ ivy-, low-key light", "castle on a hill, stone walls, moss ivy, low-key light"),
        ("[sunrise:sunset:0.4] over 3 hills, {red|blue} kites", "sunrise:sunset over 3 hills, red|blue kites"),
        (",,, \n ", None),
        (None, None),
    ],
)
def test_prompt_template_rule(prompt, template):
    assert prompt_template(prompt) == template


def test_template_is_shared_by_a_series():
    """Weights, LoRA tags, case and spacing differ; the template a creator reuses does not."""
    variants = [
        "a mountain lake at dawn, (oil painting:1.2), <lora:style-alpha:0.8>",
        "A mountain lake at dawn,  oil painting <lora:style-alpha:0.6>",
        "a mountain lake at dawn, ((oil painting)), <lora:style-alpha>",
    ]
    assert {prompt_template(v) for v in variants} == {"a mountain lake at dawn, oil painting"}


def test_hash_forms_validation():
    notes = Notes()
    assert hash_forms("C0D1994C73", notes, "model") == {"autov2": "c0d1994c73"}
    assert hash_forms("0123abcd", notes, "model") == {"autov1": "0123abcd"}
    assert hash_forms(" 0x" + SHA_CKPT.upper(), notes, "model") == {"autov3": SHA_CKPT[:12]}, "0x + 64 hex is SwarmUI's tensor hash"
    assert hash_forms("sha256:" + SHA_CKPT, notes, "model") == {"sha256": SHA_CKPT}
    assert hash_forms("blake3:" + SHA_CKPT, notes, "model") == {"blake3": SHA_CKPT}
    assert hash_forms("00112233445a", notes, "ti", scheme="file12") == {"autov2": "0011223344"}
    assert notes.items == []
    for bad in ("c0d1994c7", "xyz0123456", "md5:" + "a" * 32, "sha256:0123456789", "a" * 500, 12345, {"h": 1}, "autov2:0123456789ab"):
        assert hash_forms(bad, notes, "model") == {}
    assert len(notes.items) == 8 and all(len(n) <= 300 for n in notes.items)


# --- hostile metadata: bounded, never an error -------------------------------------------------------------


def test_hostile_lora_hashes_and_tags_are_bounded():
    pairs = ", ".join(f"style-{i}: {i:012x}" for i in range(10_000))
    tags = " ".join(f"<lora:tag-{i}:0.5>" for i in range(5_000))
    text = f"a lake {tags}\nSteps: 20, Sampler: Euler, Seed: 1, Size: 64x48, Model: ckpt-one, Lora hashes: \"{pairs}\", TI hashes: \"{pairs}\""
    facts = extract(png({"parameters": text}))
    gen = facts["generator"]
    assert gen["tool"] == "AUTOMATIC1111"
    assert len(gen["loras"]) == MAX_REFS and len(gen["embeddings"]) == MAX_REFS
    assert any(n.startswith("more lora entries than 64: at least") for n in gen["model_notes"])
    assert len(gen["model_notes"]) <= 16
    assert not [n for n in facts["provenance"]["notes"] if "a1111" in n or "Error" in n]


def test_hostile_values_in_json_tools():
    comfy = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 2, "model": ["10", 0], "positive": ["6", 0]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lake"}},
        "10": {"class_type": "LoraLoader", "inputs": {"lora_name": {"evil": ["x"] * 5}, "strength_model": {"x": 1}, "model": ["4", 0]}},
        "11": {"class_type": "LoraLoader", "inputs": {"lora_name": "n" * 10_000 + "\x1b[31m", "strength_model": "NaN"}},
        "12": {"class_type": "LoraLoader", "inputs": {"lora_name": "style-alpha", "strength_model": 1e300, "hash": ["a"]}},
        "13": {"class_type": "VAELoader", "inputs": {"vae_name": 5.5}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "ckpt-one", "sha256": "g" * 64}},
    }
    facts = extract(png({"prompt": json.dumps(comfy)}))
    gen = facts["generator"]
    assert gen["tool"] == "ComfyUI" and not [n for n in facts["provenance"]["notes"] if n.startswith("comfyui")]
    assert gen["model_ref"] == {"name": "ckpt-one", "hashes": {}}
    long_name, alpha = gen["loras"]
    assert len(long_name["name"]) == MAX_NAME and "\x1b" not in long_name["name"] and long_name["weight"] is None
    assert alpha == {"name": "style-alpha", "weight": None, "hashes": {}}
    assert gen["vae"] is None, "a number is no VAE file name"
    assert any("dict" in n for n in gen["model_notes"]) and any("not hexadecimal" in n for n in gen["model_notes"])
    invoke = {"positive_prompt": "a lake", "model": ["not", "a", "dict"], "loras": "style-alpha", "vae": {"name": {"x": 1}, "hash": 7}}
    gen = extract(png({"invokeai_metadata": json.dumps(invoke)}))["generator"]
    assert (gen["model_ref"], gen["loras"], gen["vae"]) == (None, [], None)
    swarm = {"sui_image_params": {"prompt": "a lake", "loras": "a,b," * 500, "loraweights": {"x": 1}}, "sui_models": {"param": "model"}}
    gen = extract(png({"parameters": json.dumps(swarm)}))["generator"]
    assert len(gen["loras"]) == 2 and all(x["weight"] is None for x in gen["loras"])
    fooocus = {"version": "Fooocus v2.5.5", "base_model": "ckpt-one", "loras": [None, [], [{"a": 1}, "x"], ["style-alpha"] * 9]}
    gen = extract(png({"parameters": json.dumps(fooocus), "fooocus_scheme": "fooocus"}))["generator"]
    assert [x["name"] for x in gen["loras"]] == ["style-alpha"]
    civitai = 'a lake\nSteps: 20, Seed: 1, Size: 64x48, Civitai resources: [1, "x", {"type": "lora", "modelName": ["x"]}, {"type": {}}]'
    gen = extract(png({"parameters": civitai}))["generator"]
    assert gen["loras"] == [] and gen["tool"] == "AUTOMATIC1111"


# --- inspect and items.jsonl ---------------------------------------------------------------------------------


def test_inspect_renders_model_facts():
    facts = extract(png({"parameters": INFOTEXT}))
    console = Console(record=True, width=200, color_system=None)
    render_provenance(facts, console)
    text = " ".join(console.export_text().split())  # table columns are padded
    assert f"model ref ckpt-one (autov2 {AUTOV2})" in text
    assert f"style-alpha ×0.8 (autov3 {AUTOV3_ALPHA}) urn:air:sdxl:lora:civitai:20@202" in text
    assert f"style-bravo ×1 (autov3 {AUTOV3_BRAVO})" in text
    assert "soft-light (autov2 0011223344)" in text and "vae-one.safetensors (autov2 1122334455)" in text
    assert f"prompt template {TEMPLATE}" in text


def test_scan_writes_model_facts_to_items_jsonl(tmp_path):
    media = tmp_path / "m"
    media.mkdir()
    (media / "lake.png").write_bytes(png({"parameters": INFOTEXT}))
    proc = tripwire("scan", str(media), "--db", str(tmp_path / "t.db"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    (record,) = read_jsonl(tmp_path / "o" / "items.jsonl")
    assert models_of(record["generator"]) == A1111_MODELS
    (entry,) = generator_entries(record)
    assert entry["loras"] == A1111_MODELS["loras"] and "prompt_template" not in entry
    assert record["extractors"]["provenance"] == ProvenanceExtractor.version == "3"

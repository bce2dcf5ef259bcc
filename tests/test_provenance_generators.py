"""Generator formats the shared fixtures lack, synthesised here with benign prompts: A1111 EXIF (UTF-16 both
byte orders) and Forge, the four stealth variants, ComfyUI WebP EXIF, Fooocus EXIF, SwarmUI, Midjourney,
InvokeAI v2, NovelAI alpha copy and Ed25519 signature; XMP/IPTC in every container; conflicts."""

from __future__ import annotations

import base64
import gzip
import io
import json

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tripwire.config import Config
from tripwire.media.item import Item
from tripwire.provenance.extractor import ProvenanceExtractor
from tripwire.provenance.xmp import normalise_source_type, parse_xmp

PROMPT = "a watercolor lighthouse at dusk"
NEGATIVE = "blurry, low contrast"
INFOTEXT = (
    f"{PROMPT}\nNegative prompt: {NEGATIVE}\n"
    'Steps: 24, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234567, Size: 64x48, '
    'Model hash: 0123abcd, Model: example_model_v1, Lora hashes: "alpha: 1a2b, bravo: 3c4d", Version: v1.10.1'
)


def extract(data: bytes, settings: dict | None = None) -> dict:
    sections = {"provenance": {"watermark": False, **(settings or {})}}
    facts = ProvenanceExtractor(Config(sections=sections)).extract(Item(path="x", data=data, size=len(data)))
    json.dumps(facts)
    return facts


def picture(mode: str = "RGB", size=(64, 48), seed: int = 7) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = 4 if mode == "RGBA" else 3
    arr = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    if mode == "RGBA":
        arr[..., 3] = 255
    return Image.fromarray(arr, mode)


def png(img: Image.Image, text: dict[str, str] | None = None, itxt: dict[str, str] | None = None) -> bytes:
    info = PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    for k, v in (itxt or {}).items():
        info.add_itxt(k, v)
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def with_exif(fmt: str, ifd0: dict[int, object] | None = None, exif_ifd: dict[int, object] | None = None, **kw) -> bytes:
    exif = Image.Exif()
    for tag, value in (ifd0 or {}).items():
        exif[tag] = value
    if exif_ifd:
        sub = exif.get_ifd(0x8769)
        sub.update(exif_ifd)
    buf = io.BytesIO()
    picture().save(buf, fmt, exif=exif.tobytes(), **kw)
    return buf.getvalue()


def embed_stealth(img: Image.Image, payload: bytes, signature: str) -> Image.Image:
    """Test-only writer for the stealth-pnginfo layout (column-major LSBs), to synthesise fixtures."""
    arr = np.array(img)
    bits = np.unpackbits(np.frombuffer(signature.encode() + (len(payload) * 8).to_bytes(4, "big") + payload, dtype=np.uint8))
    if "png" in signature:  # alpha variants
        plane = arr[..., 3].T.copy().reshape(-1)
        plane[: len(bits)] = (plane[: len(bits)] & 0xFE) | bits
        arr[..., 3] = plane.reshape(arr.shape[1], arr.shape[0]).T
    else:
        rgb = arr[..., :3].transpose(1, 0, 2).copy().reshape(-1)
        rgb[: len(bits)] = (rgb[: len(bits)] & 0xFE) | bits
        arr[..., :3] = rgb.reshape(arr.shape[1], arr.shape[0], 3).transpose(1, 0, 2)
    return Image.fromarray(arr, img.mode)


def check_infotext(gen: dict, carrier: str) -> None:
    assert gen["tool"] == "AUTOMATIC1111"
    assert (gen["prompt"], gen["negative_prompt"], gen["seed"], gen["steps"]) == (PROMPT, NEGATIVE, 1234567, 24)
    assert (gen["model"], gen["model_hash"], gen["cfg"], gen["size"]) == ("example_model_v1", "0123abcd", 6.5, "64x48")
    assert gen["sampler"] == "DPM++ 2M Karras" and gen["tool_version"] == "v1.10.1"
    assert gen["carrier"] == carrier
    # model facts: the 8-hex model hash is AutoV1; the 4-hex LoRA hashes are no known form (names kept, hashes dropped)
    assert gen["model_ref"] == {"name": "example_model_v1", "hashes": {"autov1": "0123abcd"}}
    assert gen["loras"] == [{"name": "alpha", "weight": None, "hashes": {}}, {"name": "bravo", "weight": None, "hashes": {}}]
    assert (gen["embeddings"], gen["vae"], gen["prompt_template"]) == ([], None, PROMPT)
    assert len(gen["model_notes"]) == 2 and "'1a2b' (4 hex digits) is no known form" in gen["model_notes"][0]


@pytest.mark.parametrize("order", ["utf-16-be", "utf-16-le"])
@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_a1111_exif_usercomment_unicode(fmt, order):
    data = with_exif(fmt, exif_ifd={0x9286: b"UNICODE\x00" + INFOTEXT.encode(order)})
    facts = extract(data)
    check_infotext(facts["generator"], "exif:UserComment")
    assert facts["provenance"]["label"] == "ai_generated"


def test_forge_version_and_inpaint_mode():
    text = INFOTEXT.replace("Version: v1.10.1", "Denoising strength: 0.6, Mask blur: 4, Version: f2.0.1v1.10.1-previous-313")
    gen = extract(png(picture(), {"parameters": text}))["generator"]
    assert (gen["tool"], gen["tool_version"], gen["mode"]) == ("Forge", "f2.0.1v1.10.1-previous-313", "inpaint")


@pytest.mark.parametrize("signature", ["stealth_pnginfo", "stealth_pngcomp", "stealth_rgbinfo", "stealth_rgbcomp"])
def test_stealth_variants(signature):
    payload = INFOTEXT.encode()
    if signature.endswith("comp"):
        payload = gzip.compress(payload)
    img = embed_stealth(picture("RGBA" if "png" in signature else "RGB", size=(96, 80)), payload, signature)
    facts = extract(png(img))  # no text chunks: only the pixels carry the parameters
    check_infotext(facts["generator"], f"stealth:{signature}")
    assert facts["provenance"]["label"] == "ai_generated"


def test_stealth_garbage_payload_still_reported():
    img = embed_stealth(picture("RGBA", size=(64, 64)), b"\x00\x01not gzip", "stealth_pngcomp")
    facts = extract(png(img))
    assert facts["generator"]["carrier"] == "stealth:stealth_pngcomp" and facts["generator"]["error"]


def test_no_stealth_in_plain_pixels():
    assert extract(png(picture("RGBA")))["generator"] is None


COMFY_PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 18, "cfg": 5.5, "sampler_name": "euler", "scheduler": "normal",
                                                "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "example_xl.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 832, "height": 1216, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["4", 1]}},
}


def test_comfyui_webp_exif():
    workflow = {"last_node_id": 7, "nodes": [], "version": 0.4}
    data = with_exif("WEBP", ifd0={0x0110: "prompt:" + json.dumps(COMFY_PROMPT), 0x010F: "workflow:" + json.dumps(workflow)}, lossless=True)
    facts = extract(data)
    gen = facts["generator"]
    assert (gen["tool"], gen["seed"], gen["model"], gen["size"], gen["mode"]) == ("ComfyUI", 42, "example_xl.safetensors", "832x1216", "txt2img")
    assert (gen["prompt"], gen["negative_prompt"], gen["carrier"]) == (PROMPT, NEGATIVE, "exif:Model")
    exif = [e for e in facts["provenance"]["evidence"] if e["source"] == "exif"][0]
    assert exif["camera"] is False and exif["make"] is None, "a workflow in Make is not a camera"
    assert facts["provenance"]["conflicts"] == []


def test_comfyui_inpaint_graph():
    graph = json.loads(json.dumps(COMFY_PROMPT))
    graph["8"] = {"class_type": "VAEEncodeForInpaint", "inputs": {"pixels": ["9", 0], "vae": ["4", 2], "mask": ["9", 1]}}
    graph["9"] = {"class_type": "LoadImage", "inputs": {"image": "input.png"}}
    graph["3"]["inputs"]["latent_image"] = ["8", 0]
    facts = extract(png(picture(), {"prompt": json.dumps(graph)}))
    assert facts["generator"]["mode"] == "inpaint" and facts["provenance"]["label"] == "ai_edited"


def test_fooocus_exif_variant():
    params = {"prompt": PROMPT, "negative_prompt": NEGATIVE, "base_model": "exampleXL_v2", "base_model_hash": "a1b2c3d4e5",
              "seed": "99887766", "steps": 30, "guidance_scale": 4.0, "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras",
              "resolution": "(896, 1152)", "version": "Fooocus v2.5.5"}
    data = with_exif("JPEG", ifd0={0x0131: "Fooocus v2.5.5"}, exif_ifd={0x9286: json.dumps(params).encode(), 0x927C: b"fooocus"})
    facts = extract(data)
    gen = facts["generator"]
    assert (gen["tool"], gen["tool_version"], gen["seed"], gen["size"], gen["carrier"]) == ("Fooocus", "v2.5.5", 99887766, "896x1152", "exif:UserComment")
    exif = [e for e in facts["provenance"]["evidence"] if e["source"] == "exif"][0]
    assert exif["maker_note_present"] is False, "Fooocus's scheme name is not a camera maker note"


def test_fooocus_a1111_scheme():
    text = INFOTEXT.replace("Version: v1.10.1", "Version: Fooocus v2.5.5")
    gen = extract(png(picture(), {"parameters": text, "fooocus_scheme": "a1111"}))["generator"]
    assert (gen["tool"], gen["tool_version"], gen["seed"]) == ("Fooocus", "v2.5.5", 1234567)


def test_swarmui():
    params = {"sui_image_params": {"prompt": PROMPT, "negativeprompt": NEGATIVE, "model": "example_xl", "seed": 31337,
                                   "steps": 20, "cfgscale": 7, "width": 1024, "height": 768, "sampler": "euler",
                                   "scheduler": "normal", "swarm_version": "0.9.5.1"},
              "sui_extra_data": {"date": "2025-01-01"}, "sui_models": [{"name": "example_xl.safetensors", "param": "model", "hash": "0xabc"}]}
    gen = extract(png(picture(), {"parameters": json.dumps(params)}))["generator"]
    assert (gen["tool"], gen["tool_version"], gen["seed"], gen["model"], gen["model_hash"]) == ("SwarmUI", "0.9.5.1", 31337, "example_xl", "0xabc")
    assert (gen["prompt"], gen["negative_prompt"], gen["size"], gen["cfg"]) == (PROMPT, NEGATIVE, "1024x768", 7.0)
    jpeg = with_exif("JPEG", exif_ifd={0x9286: b"UNICODE\x00" + json.dumps(params).encode("utf-16-be")})
    assert extract(jpeg)["generator"]["tool"] == "SwarmUI"


def test_midjourney():
    job = "0b5c6a5e-7a43-4a5a-9f0f-2f7d1d7d6a11"
    text = {"Description": f"{PROMPT} --ar 16:9 --v 6.1 --seed 777 Job ID: {job}", "Author": "example-user"}
    facts = extract(png(picture(), text))
    gen = facts["generator"]
    assert (gen["tool"], gen["model"], gen["seed"], gen["prompt"], gen["job_id"]) == ("Midjourney", "v6.1", 777, PROMPT, job)
    assert gen["flags"]["ar"] == "16:9"
    assert extract(png(picture(), {"Description": PROMPT}))["generator"] is None, "a plain description is not Midjourney"


def test_invokeai_v2_sd_metadata_and_dream():
    meta = {"model": "stable diffusion", "model_weights": "stable-diffusion-1.5", "model_hash": "cc6cb27103",
            "app_id": "invoke-ai/InvokeAI", "app_version": "2.3.5",
            "image": {"prompt": [{"prompt": f"{PROMPT} [{NEGATIVE}]", "weight": 1.0}], "steps": 50, "cfg_scale": 7.5,
                      "seed": 4242, "width": 512, "height": 512, "sampler": "k_lms", "type": "txt2img"}}
    gen = extract(png(picture(), {"sd-metadata": json.dumps(meta)}))["generator"]
    assert (gen["tool"], gen["tool_version"], gen["model"], gen["model_hash"]) == ("InvokeAI", "2.3.5", "stable-diffusion-1.5", "cc6cb27103")
    assert (gen["seed"], gen["steps"], gen["cfg"], gen["size"], gen["prompt"], gen["negative_prompt"]) == (4242, 50, 7.5, "512x512", PROMPT, NEGATIVE)
    dream = f'"{PROMPT} [{NEGATIVE}]" -s 30 -S 9001 -W 640 -H 448 -C 8.0 -A k_euler_a'
    gen = extract(png(picture(), {"Dream": dream}))["generator"]
    assert (gen["tool"], gen["seed"], gen["steps"], gen["size"], gen["sampler"], gen["prompt"], gen["negative_prompt"]) == (
        "InvokeAI", 9001, 30, "640x448", "k_euler_a", PROMPT, NEGATIVE)


def test_invokeai_v5_metadata_and_graph_only():
    meta = {"positive_prompt": PROMPT, "negative_prompt": NEGATIVE, "seed": 5, "steps": 30, "cfg_scale": 6, "scheduler": "dpmpp_3m_k",
            "width": 1024, "height": 1024, "model": {"name": "exampleXL", "base": "sdxl", "hash": "blake3:abcd"},
            "generation_mode": "sdxl_inpaint", "app_version": "5.6.0"}
    gen = extract(png(picture(), {"invokeai_metadata": json.dumps(meta)}))["generator"]
    assert (gen["model"], gen["model_hash"], gen["mode"], gen["tool_version"]) == ("exampleXL", "blake3:abcd", "inpaint", "5.6.0")
    graph = {"id": "g", "nodes": {"n1": {"type": "noise", "seed": 77}, "n2": {"type": "sdxl_compel_prompt", "prompt": PROMPT},
                                  "n3": {"type": "denoise_latents", "steps": 25, "cfg_scale": 5, "scheduler": "euler"}}}
    gen = extract(png(picture(), {"invokeai_graph": json.dumps(graph)}))["generator"]
    assert (gen["tool"], gen["seed"], gen["prompt"], gen["steps"]) == ("InvokeAI", 77, PROMPT, 25)


# -- NovelAI: Ed25519 signed_hash over RGB bytes + json.dumps(comment without signed_hash) ------------------

@pytest.fixture(scope="module")
def nai_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    return key, public


def nai_image(key, tamper: bool = False, text_chunks: bool = True, alpha_copy: bool = False) -> bytes:
    img = picture("RGBA", size=(64, 64), seed=11)
    comment = {"prompt": PROMPT, "steps": 28, "height": 64, "width": 64, "scale": 5.0, "uc": NEGATIVE, "seed": 24680,
               "sampler": "k_euler_ancestral", "request_type": "PromptGenerateRequest"}
    rgb = np.asarray(img)[:, :, :3].tobytes()
    comment["signed_hash"] = base64.b64encode(key.sign(rgb + json.dumps(comment).encode())).decode()
    fields = {"Title": "NovelAI generated image", "Description": PROMPT, "Software": "NovelAI",
              "Source": "NovelAI Diffusion V4.5 4BDE2A90", "Comment": json.dumps(comment)}
    if alpha_copy:
        img = embed_stealth(img, gzip.compress(json.dumps(fields).encode()), "stealth_pngcomp")
    if tamper:
        arr = np.array(img)
        arr[10, 10, 0] ^= 0x10
        img = Image.fromarray(arr, "RGBA")
    return png(img, fields if text_chunks else None)


def test_novelai_signature_verifies(nai_key):
    key, public = nai_key
    facts = extract(nai_image(key), {"novelai_verify_keys": [public]})
    gen = facts["generator"]
    assert gen["signature"] == {"present": True, "verified": True, "key": "configured-1"}
    assert (gen["model"], gen["model_hash"], gen["mode"], gen["size"]) == ("NovelAI Diffusion V4.5", "4BDE2A90", "txt2img", "64x64")
    prov = facts["provenance"]
    assert (prov["label"], prov["confidence"], prov["tool"]) == ("ai_generated", "definitive", "NovelAI")


def test_novelai_signature_fails_on_changed_pixels_and_unknown_key(nai_key):
    key, public = nai_key
    facts = extract(nai_image(key, tamper=True), {"novelai_verify_keys": [public]})
    assert facts["generator"]["signature"]["verified"] is False
    prov = facts["provenance"]
    assert prov["confidence"] == "strong" and [c["kind"] for c in prov["conflicts"]] == ["signature_invalid"]
    # NovelAI's own published key does not verify a signature made with another key
    assert extract(nai_image(key))["generator"]["signature"]["verified"] is False


def test_novelai_alpha_copy_survives_stripped_text(nai_key):
    key, public = nai_key
    facts = extract(nai_image(key, text_chunks=False, alpha_copy=True), {"novelai_verify_keys": [public]})
    gen = facts["generator"]
    assert (gen["tool"], gen["carrier"], gen["seed"]) == ("NovelAI", "stealth:stealth_pngcomp", 24680)
    assert gen["signature"]["verified"] is True


# -- XMP / IPTC --------------------------------------------------------------------------------------------

def xmp_packet(value: str, attribute: bool = True, tool: str = "Example Tool 1.0") -> str:
    body = (f'<rdf:Description rdf:about="" Iptc4xmpExt:DigitalSourceType="{value}" xmp:CreatorTool="{tool}"/>'
            if attribute else
            f'<rdf:Description rdf:about=""><Iptc4xmpExt:DigitalSourceType rdf:resource="{value}"/></rdf:Description>')
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
            f"{body}</rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>")


@pytest.mark.parametrize("value,code", [
    ("http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia", "trainedAlgorithmicMedia"),
    ("https://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia/", "trainedAlgorithmicMedia"),
    ("trainedalgorithmicmedia", "trainedAlgorithmicMedia"),
    ("http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"),
    ("http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture", "digitalCapture"),
    ("http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia", "algorithmicMedia"),
])
def test_normalise_source_type(value, code):
    assert normalise_source_type(value) == code
    assert parse_xmp(xmp_packet(value, attribute=False))["digital_source_types"] == [code]


def _containers(packet: str) -> dict[str, bytes]:
    out = {"png": png(picture(), itxt={"XML:com.adobe.xmp": packet})}
    for fmt, kw in (("JPEG", {"xmp": packet.encode()}), ("WEBP", {"xmp": packet.encode()}), ("TIFF", {"tiffinfo": {700: packet.encode()}})):
        buf = io.BytesIO()
        picture().save(buf, fmt, **kw)
        out[fmt.lower()] = buf.getvalue()
    return out


@pytest.mark.parametrize("container", ["png", "jpeg", "webp", "tiff"])
def test_xmp_in_every_container(container):
    data = _containers(xmp_packet("https://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"))[container]
    facts = extract(data)
    xmp = [e for e in facts["provenance"]["evidence"] if e["source"] == "xmp"][0]
    assert xmp["digital_source_types"] == ["trainedAlgorithmicMedia"] and xmp["creator_tool"] == "Example Tool 1.0"
    prov = facts["provenance"]
    assert (prov["label"], prov["confidence"], prov["tool"]) == ("ai_generated", "strong", "Example Tool 1.0")


def test_xmp_entity_expansion_is_refused():
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>')
    assert "error" in parse_xmp(bomb)
    facts = extract(png(picture(), itxt={"XML:com.adobe.xmp": bomb}))
    assert facts["provenance"]["label"] == "unknown"


def test_camera_exif_plus_generator_chunk_is_a_conflict():
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 5D Mark IV"
    exif.get_ifd(0x8825).update({1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)})
    info = PngInfo()
    info.add_text("parameters", INFOTEXT)
    buf = io.BytesIO()
    picture().save(buf, "PNG", pnginfo=info, exif=exif.tobytes())
    facts = extract(buf.getvalue())
    prov = facts["provenance"]
    assert (prov["label"], prov["confidence"]) == ("ai_generated", "strong")
    assert prov["conflicts"][0]["kind"] == "ai_and_camera"
    assert "Canon EOS 5D Mark IV" in prov["conflicts"][0]["detail"]
    exif_entry = [e for e in prov["evidence"] if e["source"] == "exif"][0]
    assert exif_entry["gps_present"] is True
    assert "51.0" not in json.dumps(facts), "coordinates never leave the EXIF reader"

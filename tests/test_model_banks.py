"""Model banks (issue 17): model files hashed into every form generators write, images that name them matched.

The model files are benign fakes made here: a valid safetensors header over random bytes (the LoRA
``style-alpha``), and random bytes named ``ckpt-one.ckpt`` (a checkpoint; never unpickled, so it need not be a
pickle). The records are built in the shape the provenance parsers emit (``generator.model_ref``, ``loras``,
``embeddings``, ``vae``, each with ``hashes``), so matching is tested without depending on the parsers.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from pathlib import Path

import pytest

from tripwire.banks.exporter import export_bank
from tripwire.banks.importer import import_file
from tripwire.banks.modelfiles import MAX_HEADER, ModelFileError, hash_model_file
from tripwire.banks.store import BankStore
from tripwire.match.lookup import parse_query
from tripwire.match.matcher import Matcher
from tripwire.policy.policy import Policy
from tripwire.policy.priority import prioritise
from tripwire.policy.stage import PolicyStage
from tripwire.sharing.indicators import model_bank_signals, read_signals, write_signals
from tripwire.signals.registry import registry
from tripwire.store.db import open_db


def safetensors(path: Path, name: str, payload: int = 16) -> Path:
    header = json.dumps({"__metadata__": {"name": name},
                         "w": {"dtype": "F32", "shape": [payload // 4], "data_offsets": [0, payload]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + os.urandom(payload))
    return path


@pytest.fixture
def models(tmp_path) -> dict[str, Path]:
    return {"lora": safetensors(tmp_path / "style-alpha.safetensors", "style-alpha"),
            "big_lora": safetensors(tmp_path / "style-bravo.safetensors", "style-bravo", payload=0x100000 + 4096),
            "ckpt": _random(tmp_path / "ckpt-one.ckpt", 0x100000 + 70_000)}


def _random(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def cli(*args: str):
    from typer.testing import CliRunner

    from tripwire.cli import app

    return CliRunner().invoke(app, list(args))


def addnet(path: Path) -> str:
    """AutoV3 computed independently: SHA-256 of what follows the header (kohya-ss addnet_hash_safetensors)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + n:]).hexdigest()


def record(model=None, loras=(), embeddings=(), vae=None, evidence=()) -> dict:
    """An item record in the facts contract's shape (what the provenance extractor writes)."""
    generator = {"tool": "automatic1111", "model": "ckpt-one", "model_ref": model, "loras": list(loras),
                 "embeddings": list(embeddings), "vae": vae}
    return {"media_type": "image/png", "generator": generator,
            "provenance": {"label": "ai_generated", "confidence": "strong", "tool": "automatic1111",
                           "evidence": [{"source": "generator", **e} for e in evidence], "conflicts": []}}


# -- hashing files -------------------------------------------------------------------------------------------


def test_hashes_match_their_documented_definitions(models):
    """SHA-256 of the file (AutoV2 = its first 10 hex), AutoV3 of the data after the safetensors header, AutoV1
    of the 64 KiB at 1 MiB; the same in any chunk size (the window and header straddle chunk boundaries)."""
    lora = hash_model_file(models["lora"])
    assert lora.format == "safetensors" and lora.metadata_name == "style-alpha"
    assert lora.sha256 == hashlib.sha256(models["lora"].read_bytes()).hexdigest()
    assert lora.autov2 == lora.sha256[:10]
    assert lora.autov3 == addnet(models["lora"]) and not lora.sha256.startswith(lora.autov3[:12])
    assert lora.autov1 is None  # 1 MiB or smaller: the legacy window is empty
    ckpt = hash_model_file(models["ckpt"])
    data = models["ckpt"].read_bytes()
    assert ckpt.autov1 == hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]
    assert ckpt.autov3 is None and ckpt.format == "unknown"
    for name in models:
        assert hash_model_file(models[name], chunk=4093) == hash_model_file(models[name])
    big = hash_model_file(models["big_lora"], chunk=1000)
    assert big.autov3 == addnet(models["big_lora"]) and big.autov1 is not None


def test_hostile_header_lengths_are_compared_never_allocated(tmp_path):
    """A header length of 2^62, or past the 100 MB cap, or past the file's end: no AutoV3, a warning, and the
    file is still hashed (peak memory stays one chunk: the length is never used to size a read)."""
    import tracemalloc

    for n in (1 << 62, MAX_HEADER + 1, 5000):
        path = tmp_path / f"bad-{n}.safetensors"
        path.write_bytes(struct.pack("<Q", n) + b'{"a":1}' + os.urandom(3000))
        tracemalloc.start()
        h = hash_model_file(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert h.autov3 is None and any("header is not valid" in w for w in h.warnings)
        assert h.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert peak < 8 << 20


def test_unreadable_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        hash_model_file(tmp_path / "missing.ckpt")
    with pytest.raises(ModelFileError, match="not a regular file"):
        hash_model_file(tmp_path)


# -- a bank made with `bank add-model`, matched by records ----------------------------------------------------


def _bank(db_url: str, models: dict[str, Path], tmp_path: Path) -> None:
    assert cli("bank", "create", "models-a", "--db", db_url).exit_code == 0
    result = cli("bank", "add-model", "models-a", *(str(p) for p in models.values()),
                 str(tmp_path / "nope.bin"), "--notes", "test models", "--db", db_url, "--json")
    assert result.exit_code == 3, result.output  # one file could not be read; the others were added
    report = json.loads(result.stdout)
    assert report["errors"] == [{"path": str(tmp_path / "nope.bin"), "message": f"{tmp_path / 'nope.bin'}: no such file"}]
    assert report["added"] == 2 + 3 + 2  # lora: sha256+autov3; big lora: +autov1; ckpt: sha256+autov1


def test_add_model_bank_matches_every_form_and_nothing_else(db_url, models, tmp_path):
    _bank(db_url, models, tmp_path)
    db = open_db(db_url)
    store = BankStore(db)
    rows = list(store.iter_entries("models-a"))
    assert {r.source_id for r in rows} == {"style-alpha.safetensors", "style-bravo.safetensors", "ckpt-one.ckpt"}
    assert {r.notes for r in rows} == {"test models"}
    lora, big, ckpt = (hash_model_file(models[k]) for k in ("lora", "big_lora", "ckpt"))
    matcher = Matcher(db, persist=False)
    matcher.open()

    def matched(rec: dict) -> list[tuple]:
        return sorted((m["signal_type"], m["source_id"], m["variant"], m["form"], m.get("ambiguous"))
                      for m in matcher.match_record(rec).matches)

    # the checkpoint by AutoV2 (Model hash:), by SHA-256, by AutoV1
    assert matched(record(model={"name": "ckpt-one", "hashes": {"autov2": ckpt.autov2}})) == [
        ("model_sha256", "ckpt-one.ckpt", "model:ckpt-one", "AutoV2", False)]
    assert matched(record(model={"name": None, "hashes": {"sha256": ckpt.sha256}})) == [
        ("model_sha256", "ckpt-one.ckpt", "model", "SHA256", None)]
    assert matched(record(model={"name": "ckpt-one", "hashes": {"autov1": ckpt.autov1}})) == [
        ("model_autov1", "ckpt-one.ckpt", "model:ckpt-one", "AutoV1", None)]
    # LoRAs by AutoV3 (Lora hashes:) and by SHA-256 / AutoV2 (Civitai resources), an embedding, a VAE
    rec = record(model={"name": "base", "hashes": {"autov2": "0123456789"}},
                 loras=[{"name": "style-alpha", "weight": 0.8, "hashes": {"autov3": lora.autov3[:12]}},
                        {"name": "style-bravo", "weight": 1.0, "hashes": {"sha256": big.sha256}}],
                 embeddings=[{"name": "emb-x", "hashes": {"autov2": big.autov2}}],
                 vae={"name": "vae-one", "hashes": {"sha256": ckpt.sha256}})
    assert matched(rec) == [
        ("model_autov3", "style-alpha.safetensors", "lora:style-alpha", "AutoV3", False),
        ("model_sha256", "ckpt-one.ckpt", "vae:vae-one", "SHA256", None),
        ("model_sha256", "style-bravo.safetensors", "lora:style-bravo", "SHA256", None)]
    # another tool's evidence entry in the same file is read too
    other = record(evidence=[{"tool": "comfyui", "loras": [{"name": "style-alpha", "hashes": {"sha256": lora.sha256}}]}])
    assert matched(other) == [("model_sha256", "style-alpha.safetensors", "lora:style-alpha", "SHA256", None)]
    # nothing else: unrelated hashes, a form under the wrong key (AutoV3 given as AutoV2 / sha256), malformed
    # values, the model's SHA-256 as the *image's* own digest
    none = [record(model={"name": "x", "hashes": {"autov2": "abcdef0123", "sha256": "ab" * 32, "autov1": "deadbeef"}}),
            record(loras=[{"name": "style-alpha", "hashes": {"autov2": lora.autov3[:10], "sha256": lora.autov3}}]),
            record(loras=[{"name": "y", "hashes": {"autov3": lora.autov3[:11], "sha256": lora.sha256[:12]}}]),
            {"sha256": lora.sha256, "generator": None},
            record(model={"name": "x", "hashes": "not a dict"}, loras=["not a dict", {"name": 5}])]
    for rec in none:
        assert matched(rec) == []


def test_short_prefix_shared_by_two_models_is_reported_ambiguous(db_url, tmp_path):
    """Two banked files whose SHA-256s share their first 10 hex (crafted list entries) and an AutoV2-only entry:
    a query by that AutoV2 matches all three, each saying 2 distinct models share the prefix."""
    db = open_db(db_url)
    store = BankStore(db)
    store.create_bank("models-b")
    prefix = "c0ffee1234"
    csv_path = tmp_path / "models.csv"
    csv_path.write_text("signal_type,value,source_id\n"
                        f"model_sha256,{prefix}{'a' * 54},one.safetensors\n"
                        f"model_sha256,{prefix}{'b' * 54},two.safetensors\n"
                        f"AutoV2,{prefix.upper()},civitai-page\n"
                        f"model_sha256,{'c0ffee1235'}{'a' * 54},three.safetensors\n")
    assert import_file(store, "models-b", csv_path).added == 4
    matcher = Matcher(db, persist=False)
    matcher.open()
    hits = matcher.match_record(record(model={"name": "m", "hashes": {"autov2": prefix}})).matches
    assert sorted((h["source_id"], h["form"], h["prefix_candidates"], h["ambiguous"]) for h in hits) == [
        ("civitai-page", "AutoV2", 2, True), ("one.safetensors", "AutoV2", 2, True),
        ("two.safetensors", "AutoV2", 2, True)]
    # a full SHA-256 in an image finds its own entry and the AutoV2-only entry (by the entry's prefix)
    hits = matcher.match_record(record(model={"name": "m", "hashes": {"sha256": prefix + "b" * 54}})).matches
    assert sorted((h["source_id"], h["form"]) for h in hits) == [("civitai-page", "AutoV2"), ("two.safetensors", "SHA256")]
    # the same answers through the look-up API path (parse_query accepts the short forms by their names)
    q = parse_query("AutoV2", prefix)
    assert q.signal_type == "model_sha256"
    assert len(matcher.lookup_many([q])[0]["matches"]) == 3
    # cached mode (the service): a short form is not answered from memory, the database answers it
    matcher.enable_cache()
    matcher.refresh(force=True)
    assert matcher.lookup_from_memory([q]) == (None, [])
    assert len(matcher.lookup_many([q])[0]["matches"]) == 3
    full = parse_query("model_sha256", prefix + "a" * 54)
    assert sorted(m["source_id"] for m in matcher.lookup_many([full])[0]["matches"]) == ["civitai-page", "one.safetensors"]


@pytest.mark.parametrize("fmt", ["csv", "vics"])
def test_model_bank_export_import_round_trip(db_url, models, tmp_path, fmt):
    """CSV (signal_type column) and VICS (one Media per file, AlternativeHashes ModelSHA256/AutoV3/AutoV1, AutoV2
    for a short entry) give back exactly the entries they were written from."""
    _bank(db_url, models, tmp_path)
    db = open_db(db_url)
    store = BankStore(db)
    store.add_entries("models-a", [{"signal_type": "model_sha256", "value": "c0ffee1234", "source_id": "civitai-page"}])
    out = io.StringIO()
    report = export_bank(store, "models-a", fmt, out)
    assert report.entries == 8
    if fmt == "vics":
        media = json.loads(out.getvalue())["value"]
        assert report.media == len(media) == 4
        names = {m["MediaID"]: sorted(a["HashName"] for a in m["AlternativeHashes"]) for m in media}
        assert names == {"ckpt-one.ckpt": ["AutoV1", "ModelSHA256"], "civitai-page": ["AutoV2"],
                         "style-alpha.safetensors": ["AutoV3", "ModelSHA256"],
                         "style-bravo.safetensors": ["AutoV1", "AutoV3", "ModelSHA256"]}
    path = tmp_path / f"export.{'json' if fmt == 'vics' else 'csv'}"
    path.write_text(out.getvalue(), encoding="utf-8")
    store.create_bank("copy")
    imported = import_file(store, "copy", path)
    assert imported.error_count == 0 and imported.added == 8
    assert sorted(e.content() for e in store.iter_entries("copy")) == sorted(e.content() for e in store.iter_entries("models-a"))


# -- priority, policy, allow-lists, sharing ---------------------------------------------------------------


def test_banked_model_priority_and_policy(db_url, models, tmp_path):
    """Made with a banked LoRA: priority 90 (above generic AI output at 30 and camera originals at 80, below an
    image-bank match at 100), the reason names the LoRA, form and bank; the default policy sends it to review.
    An image that is itself banked stays at 100 and is blocked, its model named in the reason as well."""
    _bank(db_url, models, tmp_path)
    db = open_db(db_url)
    lora = hash_model_file(models["lora"])
    matcher = Matcher(db, persist=False)
    matcher.open()
    stage = PolicyStage(Policy.load(None))

    rec = record(loras=[{"name": "style-alpha", "weight": 0.8, "hashes": {"autov3": lora.autov3[:12]}}])
    rec["matches"] = matcher.match_record(rec).matches
    priority, reason = prioritise(rec)
    assert priority == 90
    assert reason == "made with banked model: lora:style-alpha (AutoV3, bank models-a: style-alpha.safetensors)"
    rec["priority"] = priority
    stage.apply(rec)
    assert rec["policy"] == {"action": "review", "queue": True, "rule": "banked-model",
                             "reason": "made with a banked model (its metadata names a model, LoRA or embedding in a bank)"}
    assert prioritise(record())[0] == 30  # the same image without the banked LoRA: generic AI output
    assert prioritise(rec, {"model_match": 55})[0] == 55  # configurable under [priority]

    image = {"bank": "images", "bank_id": 9, "entry_id": 1, "signal_type": "sha256", "value": "ab" * 32,
             "category": None, "distance": 0, "variant": None}
    both = {**rec, "matches": [*rec["matches"], image]}
    priority, reason = prioritise(both)
    assert priority == 100 and "matches 1 bank entry (images)" in reason and "lora:style-alpha" in reason
    stage.apply(both)
    assert both["policy"]["rule"] == "known-match" and both["policy"]["action"] == "block"


def test_model_allow_list_suppresses_only_that_model(db_url, models, tmp_path):
    """A base checkpoint on an allow-list suppresses matches of that reference, not the banked LoRA beside it,
    and does not make the item 'allow-listed' for the policy."""
    _bank(db_url, models, tmp_path)
    db = open_db(db_url)
    store = BankStore(db)
    ckpt, lora = hash_model_file(models["ckpt"]), hash_model_file(models["lora"])
    store.create_bank("base-models", negative=True)
    store.add_entries("base-models", [{"signal_type": "model_sha256", "value": ckpt.sha256, "source_id": "base"}])
    matcher = Matcher(db, persist=False)
    matcher.open()
    rec = record(model={"name": "ckpt-one", "hashes": {"autov2": ckpt.autov2}},
                 loras=[{"name": "style-alpha", "hashes": {"sha256": lora.sha256}}])
    result = matcher.match_record(rec)
    assert [m["variant"] for m in result.matches] == ["lora:style-alpha"]
    assert [(m["variant"], m["suppressed_by"]["bank"]) for m in result.suppressed] == [("model:ckpt-one", "base-models")]
    rec.update(matches=result.matches, matches_suppressed=result.suppressed)
    policy = Policy.from_dict({"rule": [{"name": "allowed", "action": "allow", "when": {"allow_listed": True}}],
                               "default": {"action": "review"}})
    assert policy.evaluate(rec).rule is None


def test_model_hashes_shared_as_signals(db_url, models, tmp_path):
    """A model bank's hashes as signals: lantern and jsonl carry them (note = file name) and read back as the
    same types; ThreatExchange has no model type, so its file skips them and counts them."""
    _bank(db_url, models, tmp_path)
    db = open_db(db_url)
    signals = model_bank_signals(db, "models-a")
    assert len(signals) == 7 and {s.type for s in signals} == {"model_sha256", "model_autov3", "model_autov1"}
    out = io.StringIO()
    assert write_signals(signals, "te", out) == (0, {"model_sha256": 3, "model_autov3": 2, "model_autov1": 2})
    for fmt in ("lantern", "jsonl"):
        out = io.StringIO()
        assert write_signals(signals, fmt, out)[0] == 7
        back = list(read_signals(io.BytesIO(out.getvalue().encode()), fmt))
        assert sorted((e.signal_type, e.value, e.notes) for e in back) == sorted(
            (s.type, s.value, s.note) for s in signals)
        assert all(registry.get(str(e.signal_type)).describes == "model" for e in back)


# -- end to end: real generator metadata, a real scan ----------------------------------------------------------


def _png_with_parameters(path: Path, parameters: str, shade: int) -> Path:
    """A benign synthesised picture (a gradient) carrying an A1111 ``parameters`` text chunk."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    ramp = bytes((x * 3 + shade) % 256 for x in range(64))
    img = Image.frombytes("L", (64, 48), ramp * 48).convert("RGB")
    info = PngInfo()
    info.add_text("parameters", parameters)
    img.save(path, pnginfo=info)
    return path


def test_a_scan_matches_images_that_name_banked_models_and_nothing_else(tmp_path, models):
    """bank add-model from the files; images naming them by AutoV2 / AutoV3 / SHA-256 match, others do not."""
    import json as _json

    from tripwire.config import Config
    from tripwire.pipeline.scan import run_scan

    db_path = tmp_path / "case.db"
    result = cli("bank", "create", "models", "--db", str(db_path))
    assert result.exit_code == 0, result.output
    result = cli("bank", "add-model", "models", str(models["lora"]), str(models["ckpt"]), "--db", str(db_path), "-q")
    assert result.exit_code == 0, result.output
    ckpt_sha = hashlib.sha256(models["ckpt"].read_bytes()).hexdigest()
    lora_v3 = addnet(models["lora"])
    lora_sha = hashlib.sha256(models["lora"].read_bytes()).hexdigest()
    steps = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x48"
    folder = tmp_path / "images"
    folder.mkdir()
    cases = {
        "by_autov2.png": f"a mountain lake at dawn\nNegative prompt: blur\n{steps}, Model hash: {ckpt_sha[:10]}, Model: ckpt-one",
        "by_autov3.png": (f"a quiet harbour, <lora:style-alpha:0.8>\n{steps}, Model hash: 0000000000, Model: other, "
                          f'Lora hashes: "style-alpha: {lora_v3[:12]}"'),
        "by_sha256.png": (f"a field of tulips\n{steps}, Model: other, "
                          f'Civitai resources: [{{"type":"checkpoint","modelName":"ckpt-one","hash":"{ckpt_sha}"}}]'),
        "unrelated.png": (f"a red bicycle\n{steps}, Model hash: 1111111111, Model: other, "
                          f'Lora hashes: "style-bravo: 222222222222"'),
    }
    for n, (name, text) in enumerate(cases.items()):
        _png_with_parameters(folder / name, text, shade=n * 40)
    db = open_db(str(db_path))
    try:
        run_scan([str(folder)], db, "models-case", tmp_path / "out", Config(), workers=1, quiet=True)
    finally:
        db.dispose()
    records = {Path(r["path"]).name: r for r in map(_json.loads, (tmp_path / "out" / "items.jsonl").read_text().splitlines())}
    forms = {name: sorted((m["signal_type"], m.get("form")) for m in records[name]["matches"]) for name in cases}
    assert forms["by_autov2.png"] == [("model_sha256", "AutoV2")]
    assert forms["by_autov3.png"] == [("model_autov3", "AutoV3")]
    assert forms["by_sha256.png"] == [("model_sha256", "SHA256")]
    assert forms["unrelated.png"] == []
    assert lora_sha not in {m["value"] for r in records.values() for m in r["matches"]}  # the LoRA was named by AutoV3
    assert records["by_autov3.png"]["policy"]["rule"] == "banked-model"
    assert "style-alpha" in records["by_autov3.png"]["priority_reason"]
    assert records["by_autov3.png"]["priority"] > records["unrelated.png"]["priority"]

"""Video: decoding with limits, vPDQ (threatexchange's format and percentages), matching copies, frames
against image banks, bank formats. Every video is synthesised here (tests/video_synth.py: shapes, noise)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import video_synth as vs
from tripwire.banks.exporter import export_bank
from tripwire.banks.importer import import_file
from tripwire.banks.store import BankStore
from tripwire.config import BankSettings, Limits
from tripwire.match.matcher import Matcher
from tripwire.media.item import Item
from tripwire.pipeline.worker import new_record, run_extractors
from tripwire.signals.digests import DigestExtractor
from tripwire.signals.pdq import PdqExtractor
from tripwire.signals.registry import registry
from tripwire.signals.vpdq import VideoExtractor, VpdqFeature, compare, from_json, prepare, to_json
from tripwire.store.db import open_db

ORIGINALS = (11, 12, 13)
UNRELATED = tuple(range(40, 46))


def record_of(path: Path, limits: Limits | None = None) -> dict:
    data = path.read_bytes()
    item = Item(str(path), data, len(data), limits or Limits())
    record: dict = {}
    for extractor in (DigestExtractor(), VideoExtractor()):
        record.update(extractor.extract(item))
    return record


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """{"originals": {seed: record}, "copies": {(seed, transform): record}, "unrelated": {seed: record}}"""
    root = tmp_path_factory.mktemp("videos")
    out: dict = {"originals": {}, "copies": {}, "unrelated": {}, "paths": {}}
    for seed in ORIGINALS:
        folder = root / f"o{seed}"
        folder.mkdir()
        original = vs.synth(folder / "original.mp4", seed)
        out["paths"][seed] = original
        out["originals"][seed] = record_of(original)
        for name, path in vs.transforms(original, folder).items():
            out["copies"][(seed, name)] = record_of(path)
    for seed in UNRELATED:
        out["unrelated"][seed] = record_of(vs.synth(root / f"u{seed}.mp4", seed))
    return out


@pytest.fixture
def bank_db(db_url, videos):
    """A bank holding the originals' vPDQ (SQLite, and PostgreSQL where configured: values longer than the
    key column)."""
    db = open_db(db_url)
    store = BankStore(db)
    store.create_bank("videos", source="stand-in list")
    store.add_entries("videos", [{"signal_type": "vpdq", "value": rec["vpdq"], "source_id": f"video-{seed}", "category": "1"}
                                 for seed, rec in videos["originals"].items()])
    yield db
    db.dispose()


def test_video_facts(videos):
    rec = videos["originals"][ORIGINALS[0]]
    info = rec["video"]
    assert (info["codec"], info["width"], info["height"], info["fps"], info["frames"]) == ("h264", 240, 180, 10.0, 100)
    assert info["duration"] == pytest.approx(10.0, abs=0.2) and info["streams"] == {"video": 1}
    frames = from_json(rec["vpdq"])
    assert [f.timestamp for f in frames] == [float(t) for t in range(10)]  # one frame a second, as Meta's vPDQ
    assert all(0 <= f.quality <= 100 and len(f.pdq_hex) == 64 for f in frames)
    assert "vpdq_unletterbox" not in rec  # no borders, no second hash
    assert "vpdq_unletterbox" in videos["copies"][(ORIGINALS[0], "letterboxed")]


def test_rotation_is_applied_to_the_displayed_size(tmp_path):
    path = tmp_path / "turned.mp4"
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=5)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.set_display_rotation(90)
    for img in vs.frames(1, w=64, h=48, fps=5, seconds=1):
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    info = record_of(path)["video"]
    assert (info["width"], info["height"]) == (48, 64) and info["rotation"] in (90, 270)


def test_animated_webp_and_gif_are_videos(tmp_path):
    images = [Image.fromarray(img) for img in vs.frames(3, w=96, h=64, fps=2, seconds=6)]
    for fmt in ("webp", "gif"):
        buf = io.BytesIO()
        images[0].save(buf, fmt.upper(), save_all=True, append_images=images[1:], duration=500, loop=0)
        data = buf.getvalue()
        rec = VideoExtractor().extract(Item(f"a.{fmt}", data, len(data)))
        assert rec["video"]["animated_image"] and rec["video"]["frames"] == 12
        assert rec["video"]["duration"] == pytest.approx(6.0)
        assert [f.timestamp for f in from_json(rec["vpdq"])] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    still = io.BytesIO()
    images[0].save(still, "WEBP")
    assert VideoExtractor().extract(Item("s.webp", still.getvalue(), len(still.getvalue()))) == {}


def test_serialisation_is_threatexchanges():
    """``VpdqCompactFeature.__str__``: ``hex,quality,{timestamp:.3}``, and json.dumps of the list."""
    h = "f" * 64
    frames = [VpdqFeature(h, 100, 0.0), VpdqFeature(h, 51, 0.9676), VpdqFeature(h, 7, 123.0)]
    text = to_json(frames)
    assert text == f'["{h},100,0.0", "{h},51,0.968", "{h},7,1.23e+02"]'
    assert [(f.quality, f.timestamp) for f in from_json(text)] == [(100, 0.0), (51, 0.968), (7, 123.0)]
    for bad in ('["abc,1,0"]', f'["{h},101,0"]', f'["{h},5,-1"]', f'["{h},5"]', '{"0": 1}', "not json"):
        with pytest.raises(ValueError):
            registry.normalise_value("vpdq", bad)


def test_percentages_are_threatexchanges():
    rng = np.random.default_rng(5)
    random = [rng.bytes(32).hex() for _ in range(6)]  # ~128 bits apart from each other
    a = [VpdqFeature(random[i], 100, float(i)) for i in range(4)]
    far, poor = random[4], random[5]
    b = [a[0], a[1], VpdqFeature(far, 100, 2.0), VpdqFeature(far, 100, 3.0), VpdqFeature(poor, 20, 4.0)]
    # query a: 2 of 4 frames match; compared b: deduplicated (one "far") and quality-filtered -> 2 of 3
    got = compare(prepare(a), prepare(b))
    assert (got.query_match_percent, round(got.compared_match_percent, 2)) == (50.0, 66.67)
    assert got.query_ranges == [[0.0, 1.0]] and not got.matches()


def test_transformed_copies_match_and_unrelated_videos_do_not(bank_db, videos):
    matcher = Matcher(bank_db, None)
    matcher.open()
    found = {}
    for (seed, name), rec in videos["copies"].items():
        hits = [m for m in matcher.match_record(rec).matches if m["signal_type"] == "vpdq"]
        found[(seed, name)] = [m["source_id"] for m in hits]
        for m in hits:
            assert m["bank"] == "videos" and m["query_match_percent"] >= 80 and m["compared_match_percent"] >= 0
            assert m["matched_ranges"] and m["bank_ranges"] and m["distance"] <= 31
    recalled = sum(ids == [f"video-{seed}"] for (seed, _), ids in found.items())
    assert recalled >= 0.95 * len(found), found
    assert len(found) == len(ORIGINALS) * 6
    trimmed = next(m for m in matcher.match_record(videos["copies"][(ORIGINALS[0], "trimmed_20pct")]).matches)
    assert trimmed["query_match_percent"] >= 80 and trimmed["compared_match_percent"] <= 90  # a fifth is gone
    assert trimmed["matched_ranges"][0][0] == 0.0 and trimmed["bank_ranges"][0][0] >= 1.0
    false = {seed: matcher.match_record(rec).matches for seed, rec in videos["unrelated"].items()}
    assert not any(false.values()), false


def test_per_bank_thresholds(bank_db, videos):
    trimmed = videos["copies"][(ORIGINALS[0], "trimmed_20pct")]
    strict = BankSettings(vpdq_thresholds={"videos": (80.0, 95.0)})
    assert not Matcher(bank_db, None, bank_settings=strict).match_record(trimmed).matches
    assert Matcher(bank_db, None).match_record(trimmed).matches


def test_a_known_image_inside_a_video_matches_the_image_bank(tmp_path, videos):
    """A still of the video (saved as a JPEG) in a PDQ bank: the video's sampled frames find it."""
    frame = vs.decoded(videos["paths"][ORIGINALS[1]])[40]  # 4.0 s
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, "JPEG", quality=85)
    data = buf.getvalue()
    pdq = PdqExtractor().extract(Item("still.jpg", data, len(data)))["pdq"]
    db = open_db(f"sqlite:///{tmp_path / 'img.db'}")
    store = BankStore(db)
    store.create_bank("images")
    store.add_entries("images", [{"signal_type": "pdq", "value": pdq, "source_id": "still"}])
    matcher = Matcher(db, tmp_path / "idx")
    matcher.open()
    hits = matcher.match_record(videos["copies"][(ORIGINALS[1], "webm")]).matches
    assert [(m["bank"], m["signal_type"], m["variant"]) for m in hits] == [("images", "pdq", "frame@4")]
    assert not matcher.match_record(videos["originals"][ORIGINALS[0]]).matches
    db.dispose()


@pytest.mark.parametrize("fmt", ["te", "vics", "csv"])
def test_bank_export_import_round_trip(bank_db, videos, fmt, tmp_path):
    store = BankStore(bank_db)
    rec = videos["originals"][ORIGINALS[0]]
    store.add_entries("videos", [{"signal_type": "md5", "value": rec["md5"], "source_id": f"video-{ORIGINALS[0]}",
                                  "category": "1"}])
    out = io.StringIO()
    report = export_bank(store, "videos", fmt, out)
    assert report.entries == len(ORIGINALS) + 1 and not report.skipped
    if fmt == "te":
        assert f"vpdq {rec['vpdq']}\n" in out.getvalue() and f"video_md5 {rec['md5']}\n" in out.getvalue()
    if fmt == "vics":
        alternatives = [a for m in json.loads(out.getvalue())["value"] for a in m.get("AlternativeHashes", [])]
        assert {a["HashName"] for a in alternatives} == {"VPDQ"}
    path = tmp_path / f"export.{fmt}"
    path.write_text(out.getvalue())
    store.create_bank("copy")
    imported = import_file(store, "copy", path, fmt)
    assert imported.added == len(ORIGINALS) + 1, imported
    original = sorted(e.content()[:2] for e in store.iter_entries(store.get_bank("videos").id))
    copied = sorted(e.content()[:2] for e in store.iter_entries(store.get_bank("copy").id))
    assert copied == original and any(t == "vpdq" and v == rec["vpdq"] for t, v in copied)


def _error(data: bytes, limits: Limits | None = None, path: str = "x.mp4") -> dict | None:
    item = Item(path, data, len(data), limits or Limits())
    record = run_extractors(item, [VideoExtractor()], new_record(path, path, len(data)))
    return record["error"]


def test_hostile_videos_become_error_records(videos, tmp_path):
    data = videos["paths"][ORIGINALS[0]].read_bytes()
    assert _error(data) is None
    assert _error(data[: len(data) // 3])["code"] == "decode_error"  # truncated
    assert _error(b"\0\0\0\x18ftypmp42" + b"\xff" * 4000)["code"] == "decode_error"
    for limit, code in ((Limits(max_video_frame_pixels=1000), "too_large"), (Limits(max_video_frames=50), "too_large"),
                        (Limits(max_video_seconds=5), "too_large"), (Limits(max_video_decode_s=0.0), "timeout")):
        assert _error(data, limit)["code"] == code, limit
    # a container with many streams (a parser attack when there are thousands)
    crowded = tmp_path / "crowded.mkv"
    container = av.open(str(crowded), "w")
    streams = [container.add_stream("libx264", rate=5) for _ in range(8)]
    for stream in streams:
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
    for stream in streams:
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")),
                       *stream.encode()]:
            container.mux(packet)
    container.close()
    assert _error(crowded.read_bytes(), Limits(max_video_streams=4), "crowded.mkv")["code"] == "too_large"
    assert _error(crowded.read_bytes(), path="crowded.mkv") is None


def _tagged(path: Path, tags: dict[str, str], options: dict[str, str] | None = None) -> bytes:
    container = av.open(str(path), "w", options=options or {})
    container.metadata.update(tags)
    stream = container.add_stream("libx264", rate=5)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    for img in vs.frames(2, w=64, h=48, fps=5, seconds=1):
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path.read_bytes()


def _provenance(data: bytes, path: str) -> dict:
    from tripwire.policy.priority import prioritise
    from tripwire.provenance.extractor import ProvenanceExtractor

    record = {"path": path, "media_type": Item(path, data, len(data)).media_type,
              **ProvenanceExtractor().extract(Item(path, data, len(data)))}
    record["priority"], record["priority_reason"] = prioritise(record)
    return record


COMFY_PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20, "cfg": 7.0, "sampler_name": "euler",
                                               "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                                               "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "model-alpha.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 16}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
}


def test_video_provenance_and_priority(tmp_path):
    """ComfyUI VideoHelperSuite's comment JSON, an AI tool's tag, phone make/model tags, nothing at all."""
    comfy = _provenance(_tagged(tmp_path / "comfy.mp4", {"comment": json.dumps({"prompt": json.dumps(COMFY_PROMPT),
                                                                                 "workflow": {"nodes": []}})}), "comfy.mp4")
    assert (comfy["provenance"]["label"], comfy["provenance"]["tool"]) == ("ai_generated", "ComfyUI")
    assert comfy["generator"]["model"] == "model-alpha.safetensors" and comfy["generator"]["carrier"] == "video comment:prompt"
    assert comfy["priority"] == 30
    tool = _provenance(_tagged(tmp_path / "tool.mp4", {"title": "made with Kling 1.6"}), "tool.mp4")
    assert (tool["provenance"]["label"], tool["provenance"]["confidence"], tool["provenance"]["tool"]) == \
        ("ai_generated", "strong", "Kling")
    phone = _provenance(_tagged(tmp_path / "phone.mov", {"com.apple.quicktime.make": "Apple",
                                                         "com.apple.quicktime.model": "iPhone 15"},
                                {"movflags": "use_metadata_tags"}), "phone.mov")
    assert phone["provenance"]["label"] == "camera_original" and phone["priority"] == 80
    assert "recording" in phone["priority_reason"]
    plain = _provenance(_tagged(tmp_path / "plain.mp4", {}), "plain.mp4")
    assert plain["provenance"]["label"] == "unknown" and plain["priority"] == 60  # never "last because video"


def test_a_matched_video_ranks_first_with_its_ranges(bank_db, videos):
    from tripwire.policy.priority import prioritise

    record = dict(videos["copies"][(ORIGINALS[2], "trimmed_20pct")], media_type="video/mp4")
    record["matches"] = Matcher(bank_db, None).match_record(record).matches
    priority, reason = prioritise(record)
    assert priority == 100 and "video 100%/" in reason and " at 0-" in reason, reason


def test_mutated_videos_never_raise(videos):
    """Random byte edits of a real MP4 and WebM: each is decoded or becomes an error record with a known code."""
    rng = np.random.default_rng(7)
    for seed_path in (videos["paths"][ORIGINALS[0]], videos["paths"][ORIGINALS[0]].parent / "converted.webm"):
        data = seed_path.read_bytes()
        for _ in range(12):
            buf = bytearray(data)
            for at in rng.integers(0, len(buf), 24):
                buf[at] = int(rng.integers(0, 256))
            error = _error(bytes(buf), path=seed_path.name)
            assert error is None or error["code"] in ("decode_error", "too_large", "unsupported_media"), error


def test_ncmec_file_details_carry_the_video_and_its_matched_ranges(bank_db, videos):
    """The NCMEC ``fileDetails`` of a reviewed video: duration, codec, size and the matched time ranges."""
    from lxml import etree

    from test_reporting_ncmec import settings
    from tripwire.report.ncmec import build_file_details
    from tripwire.report.reviewed import DecisionInfo, ReviewedItem

    record = dict(videos["copies"][(ORIGINALS[1], "low_bitrate")], media_type="video/mp4")
    record["matches"] = Matcher(bank_db, None).match_record(record).matches
    item = ReviewedItem(1, 1, "case", "copy.mp4", record["sha256"], 1000, "video/mp4", None, record,  # type: ignore[arg-type]
                        DecisionInfo(1, "report", "reviewer-1", None, None, None))
    doc = etree.fromstring(build_file_details(item, settings(), 7, "file-1"))
    info = doc.findtext("additionalInfo")
    assert info.startswith("video 10.0 s, h264, 240x180; matched 0-9 s (bank videos)"), info


def test_console_contact_sheet_is_grey_blurred_and_audited(db_url, tmp_path, videos):
    """The console's contact sheet of a preserved video: a PNG of greyscale blurred frames, made on the fly;
    reading it is a ``media.view`` audit event; no sheet without the media permission or for a non-video."""
    import hashlib

    from fastapi.testclient import TestClient
    from service_helpers import make_config, make_keys, make_settings, scan
    from sqlalchemy import select

    from test_service_console import login
    from tripwire.review.models import AuditEvent
    from tripwire.service.app import create_app

    db = open_db(db_url)
    keys = make_keys(db)
    media_dir = tmp_path / "preserved"
    media_dir.mkdir()
    config = make_config(tmp_path)
    data = videos["paths"][ORIGINALS[0]].read_bytes()
    (media_dir / hashlib.sha256(data).hexdigest()).write_bytes(data)
    app = create_app(config=config, settings=make_settings(config, media_dir=str(media_dir)), database=db)
    with TestClient(app, base_url="https://testserver") as client:
        item = scan(client, keys.h("submitter"), [("clip.mp4", data)]).json()["files"][0]
        assert item["item_id"] and not item.get("error"), item
        url = f"/console/items/{item['item_id']}/contact-sheet"
        login(client, keys.auditor)
        assert client.get(url).status_code == 403
        login(client, keys.reviewer)
        page = client.get(f"/console/items/{item['item_id']}").text
        assert f'src="{url}"' in page and "<dt>Video</dt><dd>10.0 s · h264 · 240×180 · 10.00 fps</dd>" in page
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.headers["cache-control"] == "no-store"
        sheet = Image.open(io.BytesIO(r.content))
        assert sheet.mode == "L" and sheet.size == (4 * 160 + 12, 3 * 120 + 8)  # 10 s: 10 frames, 4 columns
        original = np.asarray(Image.fromarray(vs.decoded(videos["paths"][ORIGINALS[0]])[0]).convert("L").resize((160, 120)), float)
        shown = np.asarray(sheet, float)[:120, :160]
        sharpest = np.abs(np.diff(original, axis=1)).max()  # the shapes' edges
        assert sharpest > 40 and np.abs(np.diff(shown, axis=1)).max() < 0.3 * sharpest  # blurred
        with db.session() as s:
            kinds = list(s.scalars(select(AuditEvent.kind).where(AuditEvent.kind == "media.view")))
        assert kinds == ["media.view"]
    db.dispose()


def test_hma_endpoints_hash_and_look_up_vpdq(db_url, tmp_path, videos):
    """HMA clients: ``POST /h/hash`` gives a video's ``video_md5`` and ``vpdq``; ``/c/bank/NAME/signal`` stores a
    vPDQ; ``/m/lookup?signal_type=vpdq`` finds it from a re-encoded copy's hash."""
    from fastapi.testclient import TestClient
    from service_helpers import make_config, make_keys, make_settings

    from tripwire.service.app import create_app

    db = open_db(db_url)
    keys = make_keys(db)
    config = make_config(tmp_path)
    data = videos["paths"][ORIGINALS[2]].read_bytes()
    with TestClient(create_app(config=config, settings=make_settings(config), database=db), base_url="https://testserver") as client:
        a, sub = keys.h("admin"), keys.h("submitter")
        hashed = client.post("/h/hash", headers=sub, files={"video": ("v.mp4", data, "video/mp4")}).json()
        assert hashed == {"video_md5": videos["originals"][ORIGINALS[2]]["md5"], "vpdq": videos["originals"][ORIGINALS[2]]["vpdq"]}
        junk = b"\0\0\0\x18ftypmp42"
        assert client.post("/h/hash", headers=sub, files={"video": ("v.mp4", junk, "video/mp4")}).json().keys() == {"video_md5"}
        assert client.post("/h/hash?types=vpdq", headers=sub, files={"video": ("v.mp4", junk, "video/mp4")}).status_code == 400
        client.post("/v1/banks", headers=a, json={"name": "HMA_VIDEOS"})
        added = client.post("/c/bank/HMA_VIDEOS/signal", headers=a, json={"vpdq": hashed["vpdq"]})
        assert added.status_code == 200, added.text
        copy = videos["copies"][(ORIGINALS[2], "low_bitrate")]["vpdq"]
        found = client.get("/m/lookup", headers=sub, params={"signal": copy, "signal_type": "vpdq"}).json()
        assert list(found) == ["HMA_VIDEOS"] and found["HMA_VIDEOS"][0]["bank_content_id"] == added.json()["id"]
        other = videos["unrelated"][UNRELATED[0]]["vpdq"]
        assert client.get("/m/lookup", headers=sub, params={"signal": other, "signal_type": "vpdq"}).json() == {}
    db.dispose()


def test_vpdq_entries_are_removed_by_their_json_or_key(bank_db, videos):
    store = BankStore(bank_db)
    value = videos["originals"][ORIGINALS[0]]["vpdq"]
    assert store.remove_entries("videos", values=[value], signal_type="vpdq") == 1
    assert store.restore_entries("videos", values=[registry.get("vpdq").storage_key(value)], signal_type="vpdq") == 1
    assert [e.value for e in store.find(registry.get("vpdq").storage_key(value))] == [value]


def test_frame_pdq_equals_pdqhash():
    """``pdq_frame`` (PDQ's filters as taps) gives pdqhash's hash and quality, on frames of several sizes."""
    from tripwire.signals.pdq import pdq_of_array
    from tripwire.signals.pdq_matrix import pdq_frame

    rng = np.random.default_rng(3)
    # (a frame only a few lines high repeats them over PDQ's 64x64 grid: its DCT has ties at the median, and
    # both hashes rest on rounding there)
    sizes = [(180, 240), (720, 1280), (61, 97), (1080, 607), (48, 300)]
    for h, w in sizes:
        for img in list(vs.frames(int(rng.integers(1000)), w=w, h=h, fps=1, seconds=2)) + [rng.integers(0, 256, (h, w, 3), np.uint8)]:
            assert pdq_frame(img) == pdq_of_array(img), (h, w)


def test_vpdq_index_is_persisted_and_kept_in_step(tmp_path, videos):
    """The frames index is saved beside PDQ's, reloaded by the next matcher, and follows removals."""
    db = open_db(f"sqlite:///{tmp_path / 'p.db'}")
    store = BankStore(db)
    store.create_bank("videos")
    store.add_entries("videos", [{"signal_type": "vpdq", "value": rec["vpdq"], "source_id": str(seed)}
                                 for seed, rec in videos["originals"].items()])
    first = Matcher(db, tmp_path / "idx")
    first.open()
    assert (tmp_path / "idx" / "vpdq" / "state.json").exists()
    query = videos["copies"][(ORIGINALS[0], "webm")]
    assert [m["source_id"] for m in first.match_record(query).matches if m["signal_type"] == "vpdq"] == [str(ORIGINALS[0])]
    second = Matcher(db, tmp_path / "idx")
    second.open()
    assert second.indexes["vpdq"].loaded_from_disk and second.indexes["vpdq"].entries_indexed() == len(ORIGINALS)
    store.remove_entries("videos", values=[videos["originals"][ORIGINALS[0]]["vpdq"]], signal_type="vpdq")
    second.refresh(force=True)
    assert second.indexes["vpdq"].entries_indexed() == len(ORIGINALS) - 1
    assert not second.match_record(query).matches
    db.dispose()


def test_c2pa_manifest_in_an_mp4(tmp_path, videos):
    """A C2PA manifest signed into an MP4 (c2pa-python's Builder, the test keys): AI-generated by it (strong:
    the test signer is not on a trust list), and the matching still works on the signed copy."""
    import c2pa

    from test_provenance_c2pa import CERTS, IPTC

    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, (CERTS / "es256.pub").read_bytes(),
                                                       (CERTS / "es256.pem").read_bytes(), None))
    manifest = {"claim_generator_info": [{"name": "tripwire-tests", "version": "1"}], "title": "clip.mp4",
                "format": "video/mp4", "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "softwareAgent": "Example Video Generator 1.0",
                     "digitalSourceType": IPTC + "trainedAlgorithmicMedia"}]}}]}
    ctx = c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False}, "builder": {"thumbnail": {"enabled": False}}})
    out = io.BytesIO()
    with c2pa.Builder(manifest, context=ctx) as builder:
        builder.sign(signer, "video/mp4", io.BytesIO(videos["paths"][ORIGINALS[1]].read_bytes()), out)
    record = _provenance(out.getvalue(), "clip.mp4")
    verdict = record["provenance"]
    assert (verdict["label"], verdict["confidence"], verdict["tool"]) == ("ai_generated", "strong", "Example Video Generator 1.0")
    assert record["priority"] == 30
    (tmp_path / "signed.mp4").write_bytes(out.getvalue())
    assert from_json(record_of(tmp_path / "signed.mp4")["vpdq"]) == from_json(videos["originals"][ORIGINALS[1]]["vpdq"])


def test_hostile_animations_become_error_records():
    images = [Image.fromarray(img) for img in vs.frames(4, w=64, h=48, fps=5, seconds=4)]
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:], duration=200, loop=0)
    data = buf.getvalue()
    assert _error(data, path="a.gif") is None
    assert _error(data, Limits(max_video_frames=10), "a.gif")["code"] == "too_large"
    assert _error(data, Limits(max_video_seconds=2), "a.gif")["code"] == "too_large"
    assert _error(data, Limits(max_video_decode_s=0.0), "a.gif")["code"] == "timeout"
    assert _error(data[: len(data) // 2], path="a.gif")["code"] == "decode_error"  # truncated


def test_comfyui_animated_webp(tmp_path):
    """ComfyUI's SaveAnimatedWEBP writes its graph into EXIF (Model: ``prompt:{...}``, Make: ``workflow:{...}``):
    an animated WebP is a video with a vPDQ, and its provenance names ComfyUI."""
    images = [Image.fromarray(img) for img in vs.frames(6, w=96, h=64, fps=4, seconds=3)]
    exif = Image.Exif()
    exif[0x0110] = "prompt:" + json.dumps(COMFY_PROMPT)
    exif[0x010F] = "workflow:" + json.dumps({"nodes": [], "version": 0.4})
    buf = io.BytesIO()
    images[0].save(buf, "WEBP", save_all=True, append_images=images[1:], duration=250, exif=exif.tobytes())
    data = buf.getvalue()
    record = _provenance(data, "anim.webp")
    assert (record["provenance"]["label"], record["generator"]["tool"]) == ("ai_generated", "ComfyUI")
    assert record["generator"]["prompt"] == "a lighthouse at dusk" and record["priority"] == 30
    assert len(from_json(VideoExtractor().extract(Item("anim.webp", data, len(data)))["vpdq"])) == 3

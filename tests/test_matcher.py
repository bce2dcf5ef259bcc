"""The bank-aware matcher: transforms of known (benign stand-in) images, negative banks, removal, persistence.

The "known" list is built from hashes of benign fixtures: the code cannot tell the difference.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tripwire.banks.store import BankStore
from tripwire.match.matcher import Matcher, PdqQuery, default_index_path
from tripwire.media.image import load_oriented
from tripwire.media.item import Item
from tripwire.signals.digests import DigestExtractor
from tripwire.signals.pdq import PdqExtractor
from tripwire.signals.pdq_variants import PdqVariantsExtractor
from tripwire.store.db import open_db

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
#: photos large enough for PDQ to be meaningful, with no uniform edges of their own
KNOWN = ["camera/gps/DSCN0010.jpg", "camera/gps/DSCN0021.jpg", "camera/gps/DSCN0038.jpg",
         "camera/Canon_PowerShot_S40.jpg", "c2pa/CA.jpg", "camera/orientation/landscape_6.jpg"]
#: transform -> the variant of the query that should reach the original's hash
TRANSFORMS = {"jpeg75": "original", "resize50": "original", "rotate90": "rot270", "rotate180": "rot180",
              "rotate270": "rot90", "flip": "flip_horizontal", "pad20": "unletterbox"}
#: the bank holds each file's ``pdq``, the stored grid's hash (what partners compute); for an EXIF-rotated
#: file that is the displayed picture turned by this (landscape_6: displayed = stored turned clockwise)
STORED_FROM_DISPLAYED = {"camera/orientation/landscape_6.jpg": "rot90"}


def expected_variant(rel: str, variant: str) -> str:
    """The variant label that reaches the bank's hash: ``variant`` (query -> displayed), then displayed -> stored."""
    import numpy as np

    from tripwire.signals.pdq_labels import trimmed_label
    from tripwire.signals.pdq_variants import DIHEDRAL_VARIANTS, OPS

    then = STORED_FROM_DISPLAYED.get(rel, "original")
    trimmed = variant.startswith("unletterbox")
    first = variant.partition(":")[2] or "original" if trimmed else variant
    probe = np.arange(6).reshape(2, 3)
    want = OPS[then](OPS[first](probe))
    name = next(n for n in DIHEDRAL_VARIANTS if OPS[n](probe).shape == want.shape and (OPS[n](probe) == want).all())
    return trimmed_label(name) if trimmed else name


def record_of(data: bytes, path: str = "x") -> dict:
    """The fields the matcher reads, from the same extractors `tripwire scan` runs."""
    item = Item(path, data, len(data))
    record: dict = {}
    for extractor in (DigestExtractor(), PdqExtractor(), PdqVariantsExtractor()):
        record.update(extractor.extract(item))
    return record


def transformed(img: Image.Image, kind: str) -> bytes:
    if kind == "resize50":
        img = img.resize((img.width // 2, img.height // 2), Image.LANCZOS)
    elif kind.startswith("rotate"):
        img = img.rotate(int(kind[6:]), expand=True)
    elif kind == "flip":
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    elif kind == "pad20":
        pad = int(0.2 * max(img.size))
        canvas = Image.new("RGB", (img.width + 2 * pad, img.height + 2 * pad), (0, 0, 0))
        canvas.paste(img, (pad, pad))
        img = canvas
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=75)
    return buf.getvalue()


def flip_bits(hex_: str, count: int, start: int = 0) -> str:
    value = int(hex_, 16)
    for bit in range(start, start + count):
        value ^= 1 << bit
    return f"{value:064x}"


@pytest.fixture(scope="module")
def known():
    """{fixture: (original bytes, record, displayed image)}"""
    out = {}
    for rel in KNOWN:
        data = (FIXTURES / rel).read_bytes()
        out[rel] = (data, record_of(data, rel), load_oriented(Item(rel, data, len(data))))
    return out


@pytest.fixture
def db(db_url):
    database = open_db(db_url)
    yield database
    database.dispose()


def hotline(store: BankStore, known, name="hotline", **settings) -> None:
    store.create_bank(name, source="stand-in list", **settings)
    rows = []
    for rel, (_, rec, _) in known.items():
        rows += [{"signal_type": "pdq", "value": rec["pdq"], "category": "1", "source_id": rel},
                 {"signal_type": "md5", "value": rec["md5"], "category": "1", "source_id": rel},
                 {"signal_type": "sha256", "value": rec["sha256"], "category": "1", "source_id": rel}]
    store.add_entries(name, rows)


def test_known_images_match_after_every_transform(tmp_path, known):
    db = open_db(str(tmp_path / "case.db"))
    hotline(BankStore(db), known)
    matcher = Matcher(db, tmp_path / "idx")
    matcher.open()
    plain = Matcher(db, None, use_variants=False, use_unletterbox=False)
    plain.open()
    plain_hits: dict[str, int] = {kind: 0 for kind in TRANSFORMS}
    for rel, (data, rec, img) in known.items():
        exact = matcher.match_record(rec).matches
        assert {(m["signal_type"], m["distance"], m["variant"]) for m in exact} == \
            {("md5", 0, None), ("sha256", 0, None), ("pdq", 0, "original")}
        for kind, variant in TRANSFORMS.items():
            query = record_of(transformed(img, kind))
            result = matcher.match_record(query)
            pdq_hits = [m for m in result.matches if m["signal_type"] == "pdq"]
            assert [m["source_id"] for m in pdq_hits] == [rel], (rel, kind, result.matches)
            hit = pdq_hits[0]
            assert hit["variant"] == expected_variant(rel, variant) and hit["distance"] <= 31, (rel, kind, hit)
            assert hit["bank"] == "hotline" and hit["category"] == "1" and hit["category_label"].startswith("CAM")
            assert not [m for m in result.matches if m["signal_type"] != "pdq"]  # re-encoded: digests differ
            plain_hits[kind] += bool(plain.match_record(query).matches)
    # plain PDQ at radius 31 (HMA's configuration) finds the re-encoded and resized copies only, of the upright
    # files; for the EXIF-rotated one the bank holds the stored grid (as HMA would), which only the copy turned
    # back onto it (rotate90) reaches
    upright = len(known) - len(STORED_FROM_DISPLAYED)
    assert plain_hits == {"jpeg75": upright, "resize50": upright, "rotate90": 1, "rotate180": 0,
                          "rotate270": 0, "flip": 0, "pad20": 0}
    db.dispose()


def test_negative_bank_suppresses(db, known, tmp_path):
    store = BankStore(db)
    hotline(store, known)
    rel = KNOWN[0]
    _, rec, img = known[rel]
    store.create_bank("allow", negative=True)
    store.add_entries("allow", [{"signal_type": "pdq", "value": rec["pdq"], "notes": "reviewed false positive"}])
    matcher = Matcher(db, None)
    matcher.open()
    result = matcher.match_record(rec)
    # a negative PDQ hit suppresses the PDQ match; the byte-identical digest matches stand
    assert sorted(m["signal_type"] for m in result.matches) == ["md5", "sha256"]
    assert [m["signal_type"] for m in result.suppressed] == ["pdq"]
    assert result.suppressed[0]["suppressed_by"]["bank"] == "allow"
    assert result.allowed_by[0]["bank"] == "allow"
    rotated = matcher.match_record(record_of(transformed(img, "rotate90")))
    assert rotated.matches == [] and len(rotated.suppressed) == 1
    # an exact allow-list hit suppresses everything
    store.add_entries("allow", [{"signal_type": "sha256", "value": rec["sha256"]}])
    result = matcher.match_record(rec)
    assert result.matches == [] and len(result.suppressed) == 3
    # other images are unaffected
    other = known[KNOWN[1]][1]
    assert len(matcher.match_record(other).matches) == 3


def test_removing_an_entry_stops_its_matches_immediately(db, known):
    store = BankStore(db)
    hotline(store, known)
    rel = KNOWN[2]
    _, rec, img = known[rel]
    query = record_of(transformed(img, "flip"))
    matcher = Matcher(db, None, refresh_interval=3600)  # no background catching up: the database decides
    matcher.open()
    assert [m["source_id"] for m in matcher.match_record(query).matches] == [rel]
    assert store.remove_entries("hotline", values=[rec["pdq"], rec["md5"]], reason="test") == 2
    assert matcher.match_record(query).matches == []
    assert [m["signal_type"] for m in matcher.match_record(rec).matches] == ["sha256"]
    store.restore_entries("hotline", values=[rec["pdq"]])
    matcher.refresh(force=True)
    assert [m["source_id"] for m in matcher.match_record(query).matches] == [rel]


def test_new_entries_are_matchable_without_a_rebuild(db, known):
    store = BankStore(db)
    store.create_bank("b")
    matcher = Matcher(db, None, refresh_interval=3600)
    matcher.open()
    _, rec, img = known[KNOWN[3]]
    query = record_of(transformed(img, "rotate180"))
    assert matcher.match_record(query).matches == []
    store.add_entries("b", [{"signal_type": "pdq", "value": rec["pdq"]}])
    stats = matcher.refresh(force=True)
    assert not stats.rebuilt and stats.added == 1
    assert [m["variant"] for m in matcher.match_record(query).matches] == ["rot180"]


def test_per_bank_radius_quality_floor_and_enabled(db):
    store = BankStore(db)
    base = "%064x" % 0x0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
    store.create_bank("tight", pdq_radius=8)
    store.create_bank("loose", pdq_radius=31, min_quality=80)
    store.add_entries("tight", [{"signal_type": "pdq", "value": base}])
    store.add_entries("loose", [{"signal_type": "pdq", "value": base}])
    matcher = Matcher(db, None, refresh_interval=0)
    matcher.open()

    def banks(hex_, quality):
        return sorted(m["bank"] for m in matcher.match(pdq=[PdqQuery("original", hex_, quality)]).matches)

    assert banks(flip_bits(base, 5), 90) == ["loose", "tight"]
    assert banks(flip_bits(base, 12), 90) == ["loose"]       # beyond tight's radius
    assert banks(flip_bits(base, 12), 60) == []              # below loose's quality floor
    assert banks(flip_bits(base, 5), 60) == ["tight"]        # tight has the default floor (50)
    assert banks(flip_bits(base, 5), None) == ["loose", "tight"]  # unknown quality: floors not applied
    assert banks(flip_bits(base, 32), 90) == []
    store.update_bank("loose", enabled=False)
    assert banks(flip_bits(base, 5), 90) == ["tight"]
    store.update_bank("loose", enabled=True, pdq_radius=4)
    assert banks(flip_bits(base, 5), 90) == ["tight"]
    store.delete_bank("tight")
    assert banks(flip_bits(base, 3), 90) == ["loose"]
    assert matcher.last_sync is not None and matcher.last_sync.rebuilt  # a dropped bank rebuilds the index


def test_exact_lookup_and_truncation(db):
    store = BankStore(db)
    store.create_bank("b")
    base = "%064x" % (0xFEDCBA9876543210 << 100)
    store.add_entries("b", [{"signal_type": "pdq", "value": flip_bits(base, 1, start=i)} for i in range(60)]
                      + [{"signal_type": "sha256", "value": "ab" * 32}])
    matcher = Matcher(db, None, max_matches=10)
    matcher.open()
    result = matcher.match(pdq=[PdqQuery("original", base, 100)])
    assert len(result.matches) == 10 and result.truncated == 50
    assert [m["signal_type"] for m in matcher.match(digests={"sha256": "AB" * 32}).matches] == ["sha256"]
    assert matcher.match(digests={"md5": "ab" * 16}).matches == []


def test_index_persists_reloads_and_catches_up(tmp_path, known):
    db = open_db(str(tmp_path / "case.db"))
    store = BankStore(db)
    hotline(store, known)
    path = default_index_path(db)
    assert path == Path(str(tmp_path / "case.db") + ".pdqindex")
    first = Matcher(db, path)
    assert first.open().rebuilt and (path / "state.json").exists()

    queries = [record_of(transformed(img, kind)) for _, _, img in known.values() for kind in ("rotate90", "pad20")]

    def answers(m):
        return [sorted((x["entry_id"], x["distance"], x["variant"]) for x in m.match_record(q).matches) for q in queries]

    expected = answers(first)
    second = Matcher(db, path)
    stats = second.open()
    assert second.bank_index.loaded_from_disk and not stats.rebuilt and stats.changes == 0
    assert answers(second) == expected

    # changes made while no matcher runs are replayed on the next open, not rebuilt
    removed_rel = KNOWN[0]
    store.remove_entries("hotline", values=[known[removed_rel][1]["pdq"]])
    store.create_bank("more")
    store.add_entries("more", [{"signal_type": "pdq", "value": flip_bits(known[KNOWN[1]][1]["pdq"], 3)}])
    third = Matcher(db, path)
    stats = third.open()
    assert third.bank_index.loaded_from_disk and not stats.rebuilt and (stats.added, stats.removed) == (1, 1)
    fresh = Matcher(db, None)
    fresh.open()
    assert answers(third) == answers(fresh) != expected

    # an index that belongs to another database is never trusted
    other = open_db(str(tmp_path / "other.db"))
    BankStore(other).create_bank("empty")
    shutil.copytree(path, default_index_path(other))
    foreign = Matcher(other, default_index_path(other))
    assert foreign.open().rebuilt and len(foreign.bank_index) == 0
    # nor is a damaged one
    (path / "state.json").write_text("{not json")
    assert Matcher(db, path).open().rebuilt
    other.dispose()
    db.dispose()


def test_no_banks_means_empty_matches_and_no_index_files(tmp_path):
    from tripwire.config import load_config
    from tripwire.match.matcher import match_stage

    db = open_db(str(tmp_path / "case.db"))
    stage = match_stage(load_config(environ={}), db)
    record = {"md5": "a" * 32, "pdq": "f" * 64, "pdq_quality": 100}
    stage.apply(record)
    assert record["matches"] == [] and record["matches_suppressed"] == []
    assert not default_index_path(db).exists()
    none_stage = match_stage(load_config(environ={}), None)
    rec2: dict = {}
    none_stage.apply(rec2)
    assert rec2["matches"] == []
    db.dispose()


def test_variants_are_the_hashes_of_the_transformed_images():
    """With 4 passes every orientation is exact, on odd and even sizes alike (pdqhash's single-DCT
    variants are not: that is what the extra passes are for)."""
    import numpy as np
    from helpers import synth_image

    from tripwire.signals.pdq import pdq_of_array
    from tripwire.signals.pdq_variants import OPS, dihedral_hashes, variant_facts

    single_dct_off = 0
    for seed, size in enumerate([(320, 240), (321, 241), (300, 201), (97, 300)]):
        rgb = np.asarray(synth_image(seed, size))
        exact, quality = dihedral_hashes(rgb, passes=4)
        one_pass, _ = dihedral_hashes(rgb, passes=1)
        assert 0 <= quality <= 100 and list(exact) == list(one_pass)
        for name, hex_ in exact.items():
            truth = pdq_of_array(np.ascontiguousarray(OPS[name](rgb)))[0]
            assert hex_ == truth, (size, name)
            single_dct_off += one_pass[name] != truth
    assert single_dct_off > 0
    # padding: the trimmed image is hashed in every orientation too
    rgb = np.asarray(synth_image(9, (200, 150)))
    padded = np.zeros((250, 200, 3), dtype=np.uint8)
    padded[50:200, :] = rgb
    facts = variant_facts(padded)
    assert facts["pdq_unletterbox"] == pdq_of_array(rgb)[0] and facts["pdq_unletterbox_quality"] == pdq_of_array(rgb)[1]
    assert facts["pdq_variants"]["unletterbox"] == facts["pdq_unletterbox"]
    assert "unletterbox:rot90" in facts["pdq_variants"]
    assert variant_facts(rgb)["pdq_unletterbox"] is None

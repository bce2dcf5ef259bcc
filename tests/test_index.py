"""PdqIndex: exact answers against brute force, immediate add/remove, persistence, hex helpers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tripwire.signals import index_kernel
from tripwire.signals.index import PdqIndex, codes_to_hex, hex_to_codes
from tripwire.signals.pdq import pdq_dihedral_of_array, pdq_of_array

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


def brute_force(codes: np.ndarray, ids: np.ndarray, queries: np.ndarray, radius: int) -> set[tuple[int, int, int]]:
    """Reference answer computed bit by bit, independently of the index's word layout and kernel."""
    bits = np.unpackbits(codes, axis=1).astype(np.int16)
    out: set[tuple[int, int, int]] = set()
    for j, q in enumerate(np.unpackbits(queries, axis=1).astype(np.int16)):
        d = np.abs(bits - q).sum(axis=1)
        for row in np.flatnonzero(d <= radius):
            out.add((j, int(ids[row]), int(d[row])))
    return out


def flip_bits(code: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(code)
    pos = rng.choice(256, size=k, replace=False)
    bits[pos] ^= 1
    return np.packbits(bits)


def near_duplicate_mix(rng: np.random.Generator, n_random: int, centres: np.ndarray, per_centre: int):
    """Random codes plus near-duplicates of each centre at every distance 0..48 (so 30, 31, 32 are there)."""
    codes = [rng.integers(0, 256, (n_random, 32), dtype=np.uint8)]
    for c in centres:
        codes.append(np.stack([flip_bits(c, int(k), rng) for k in rng.integers(0, 49, per_centre)]))
        codes.append(np.stack([flip_bits(c, k, rng) for k in (30, 31, 32)]))
    return np.concatenate(codes)


@pytest.fixture(scope="module")
def mix():
    rng = np.random.default_rng(4)
    centres = rng.integers(0, 256, (12, 32), dtype=np.uint8)
    codes = near_duplicate_mix(rng, 6000, centres, 150)
    ids = rng.permutation(np.arange(10**6, 10**6 + codes.shape[0] * 3))[: codes.shape[0]]
    queries = np.concatenate([centres, rng.integers(0, 256, (4, 32), dtype=np.uint8), codes[:4]])
    return codes, ids.astype(np.int64), queries


@pytest.mark.parametrize("radius", [0, 5, 31, 40, 90])
def test_exact_against_brute_force(mix, radius):
    codes, ids, queries = mix
    idx = PdqIndex()
    idx.add(ids, codes)
    got = idx.search(queries, radius)
    assert set(got) == brute_force(codes, ids, queries, radius)
    assert len(got) == len(set(got))
    assert got == sorted(got, key=lambda t: (t[0], t[2], t[1]))
    if radius == 31:  # the boundary: near-duplicates at 31 are in, those at 32 are out
        dists = {d for _, _, d in got}
        assert 31 in dists and max(dists) == 31


def test_exact_across_segments_and_tombstones(mix):
    """Many small adds (several segments and merges), removals and replacements still answer exactly."""
    codes, ids, queries = mix
    rng = np.random.default_rng(9)
    idx = PdqIndex()
    live: dict[int, np.ndarray] = {}
    order = rng.permutation(codes.shape[0])
    for batch in np.array_split(order, 23):
        idx.add(ids[batch], codes[batch])
        live.update({int(ids[r]): codes[r] for r in batch})
        gone = rng.choice(list(live), size=min(25, len(live)), replace=False)
        assert idx.remove(gone) == len(gone)
        for g in gone:
            del live[int(g)]
    replaced = rng.choice(list(live), size=200, replace=False)
    new_codes = np.repeat(queries[:1], 200, axis=0)
    idx.add(replaced, new_codes)
    live.update({int(i): new_codes[0] for i in replaced})
    assert idx.segment_count > 1
    assert len(idx) == len(live)
    ref_ids = np.array(list(live), dtype=np.int64)
    ref_codes = np.stack([live[i] for i in ref_ids])
    assert set(idx.search(queries, 31)) == brute_force(ref_codes, ref_ids, queries, 31)
    assert np.array_equal(idx.ids(), np.sort(ref_ids))
    idx.compact()
    assert idx.segment_count == 1
    assert set(idx.search(queries, 31)) == brute_force(ref_codes, ref_ids, queries, 31)


def test_add_is_immediate_and_remove_is_immediate():
    rng = np.random.default_rng(1)
    idx = PdqIndex()
    idx.add(np.arange(5000), rng.integers(0, 256, (5000, 32), dtype=np.uint8))
    probe = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    assert idx.search(probe, 31) == []
    near = flip_bits(probe[0], 20, rng)[None]
    idx.add([900001], near)
    assert idx.search(probe, 31) == [(0, 900001, 20)]
    assert 900001 in idx and len(idx) == 5001
    assert idx.remove([900001, 424242]) == 1  # unknown ids are ignored
    assert idx.search(probe, 31) == []
    assert 900001 not in idx and len(idx) == 5000
    idx.add([900001], probe)  # re-adding a removed id works
    assert idx.search(probe, 0) == [(0, 900001, 0)]


def test_readd_replaces_code_and_last_duplicate_wins():
    a, b, c = (np.full((1, 32), v, dtype=np.uint8) for v in (0x00, 0xFF, 0x0F))
    idx = PdqIndex()
    idx.add([1, 2], np.concatenate([a, a]))
    idx.add([1], b)
    assert idx.search(a, 0) == [(0, 2, 0)]
    assert idx.search(b, 0) == [(0, 1, 0)]
    idx.add([3, 3], np.concatenate([a, c]))
    assert idx.search(c, 0) == [(0, 3, 0)]
    assert len(idx) == 3


def test_save_load_round_trip(tmp_path, mix):
    codes, ids, queries = mix
    idx = PdqIndex()
    idx.add(ids[:4000], codes[:4000])
    idx.add(ids[4000:], codes[4000:])
    idx.remove(ids[::17])
    path = tmp_path / "sub" / "bank.pdqidx"
    idx.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["bank.pdqidx"]  # no temporary file left behind
    want = idx.search(queries, 31)
    for mmap in (False, True):
        back = PdqIndex.load(path, mmap=mmap)
        assert len(back) == len(idx)
        assert back.search(queries, 31) == want
        assert np.array_equal(back.ids(), idx.ids())
    back = PdqIndex.load(path, mmap=True)  # a mapped index accepts changes (they go to new segments)
    back.add([5], queries[:1])
    back.remove(ids[1:2])
    assert (0, 5, 0) in back.search(queries[:1], 0)
    # overwriting replaces atomically and keeps answers
    idx.add([77], queries[:1])
    idx.save(path)
    assert PdqIndex.load(path).search(queries, 31) == idx.search(queries, 31)


def test_load_rejects_damaged_files(tmp_path):
    idx = PdqIndex()
    idx.add(np.arange(100), np.random.default_rng(0).integers(0, 256, (100, 32), dtype=np.uint8))
    path = tmp_path / "i.idx"
    idx.save(path)
    data = path.read_bytes()
    (tmp_path / "short.idx").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="truncated|bytes"):
        PdqIndex.load(tmp_path / "short.idx")
    (tmp_path / "junk.idx").write_bytes(b"not an index at all")
    with pytest.raises(ValueError, match="not a tripwire"):
        PdqIndex.load(tmp_path / "junk.idx")
    empty = PdqIndex()
    empty.save(tmp_path / "empty.idx")
    assert len(PdqIndex.load(tmp_path / "empty.idx")) == 0


def test_wide_id_range_and_memory():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    compact = PdqIndex()
    compact.add(np.arange(3000) + 10**12, codes)  # narrow span: 4-byte id offsets
    assert compact.memory_bytes() <= 36 * 3000
    wide = PdqIndex()
    wide_ids = np.concatenate([[-(2**62)], np.arange(1, 2999), [2**62]]).astype(np.int64)
    wide.add(wide_ids, codes)  # span over 2**32: 8-byte ids
    assert wide.memory_bytes() <= 40 * 3000
    got = wide.search(codes[[0, -1]], 0)
    assert got == [(0, -(2**62), 0), (1, 2**62, 0)]
    assert wide.remove([2**62]) == 1 and wide.search(codes[-1:], 0) == []
    edge = PdqIndex()  # ids at the ends of int64, compact encoding: lookups must not wrap around
    top = np.iinfo(np.int64).max
    edge.add([top - 5, top], codes[:2])
    assert edge.remove([np.iinfo(np.int64).min, -1, top - 4]) == 0
    assert top in edge and (top - 5) in edge and len(edge) == 2
    assert edge.remove([top]) == 1 and edge.search(codes[:2], 0) == [(0, top - 5, 0)]


def test_many_hits_overflow_the_result_buffer():
    code = np.random.default_rng(3).integers(0, 256, (1, 32), dtype=np.uint8)
    idx = PdqIndex()
    idx.add(np.arange(10000), np.repeat(code, 10000, axis=0))
    got = idx.search(np.repeat(code, 2, axis=0), 0)
    assert len(got) == 20000 and got[0] == (0, 0, 0) and got[-1] == (1, 9999, 0)


def test_numpy_fallback_agrees_with_kernel(mix, monkeypatch):
    monkeypatch.setattr(index_kernel, "NUMBA_MIN_WORK", 0)  # the compiled kernel even for this small search
    assert index_kernel.load_kernels() is not None
    codes, _, queries = mix
    w = np.ascontiguousarray(codes.view("<u8").T)
    q = np.ascontiguousarray(queries.view("<u8"))
    for radius in (0, 31, 70):
        a = index_kernel.scan(w, q, radius)
        b = index_kernel.scan_numpy(w, q, radius)
        assert sorted(zip(*(x.tolist() for x in a))) == sorted(zip(*(x.tolist() for x in b)))


def test_input_validation():
    idx = PdqIndex()
    with pytest.raises(ValueError):
        idx.add([1, 2], np.zeros((1, 32), np.uint8))
    with pytest.raises(ValueError):
        idx.add([1], np.zeros((1, 31), np.uint8))
    with pytest.raises(ValueError):
        idx.add([1.5], np.zeros((1, 32), np.uint8))
    with pytest.raises(ValueError):
        idx.search(np.zeros((1, 32), np.uint8), radius=-1)
    assert idx.search(np.zeros((1, 32), np.uint8)) == []
    assert idx.remove([]) == 0


def test_hex_helpers():
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    hexes = codes_to_hex(codes)
    assert all(len(h) == 64 and h == h.lower() for h in hexes)
    assert np.array_equal(hex_to_codes(hexes), codes)
    assert np.array_equal(hex_to_codes([h.upper() for h in hexes]), codes)
    assert hex_to_codes([]).shape == (0, 32)
    with pytest.raises(ValueError, match="row 2"):
        hex_to_codes([hexes[0], hexes[1], "zz" * 32])
    with pytest.raises(ValueError, match="row 1"):
        hex_to_codes([hexes[0], hexes[1][:-1]])


def test_hex_matches_pdq_signal_and_rotations_match():
    """The index speaks the same hex as tripwire.signals.pdq; a rotated copy of a real photo matches."""
    photo = sorted((FIXTURES / "camera").rglob("*.jpg"))[0]
    with Image.open(photo) as im:
        rgb = np.asarray(im.convert("RGB").resize((400, 300)))
    hex_, _ = pdq_of_array(rgb)
    idx = PdqIndex()
    idx.add([42], hex_to_codes([hex_]))
    assert codes_to_hex(hex_to_codes([hex_])) == [hex_]
    rotated_variants, _ = pdq_dihedral_of_array(np.ascontiguousarray(np.rot90(rgb)))
    hits = idx.search(hex_to_codes(rotated_variants), 31)
    assert any(i == 42 for _, i, _ in hits)
    plain = idx.search(hex_to_codes(rotated_variants[:1]), 31)
    assert plain == []  # the rotated image's own hash alone does not match: the variants are needed


def test_concurrent_search_during_updates():
    rng = np.random.default_rng(6)
    base = rng.integers(0, 256, (20000, 32), dtype=np.uint8)
    idx = PdqIndex()
    idx.add(np.arange(20000), base)
    probe = base[:8]
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        try:
            while not stop.is_set():
                ids = {i for _, i, _ in idx.search(probe, 0)}
                assert ids <= set(range(8)) | set(range(10**6, 10**6 + 8))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    for k in range(30):
        idx.add(np.arange(10**6, 10**6 + 8) , probe)
        idx.remove(np.arange(10**6, 10**6 + 8))
    stop.set()
    t.join()
    assert not errors
    assert {i for _, i, _ in idx.search(probe, 0)} == set(range(8))

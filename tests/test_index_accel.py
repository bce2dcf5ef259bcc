"""PdqIndex's look-up tables (``accelerate=True``): the same answers as the scan, ids and distances, exactly.

Codes are random bytes and near-duplicates of random centres (bits flipped on purpose, including the
per-chunk distance patterns that sit right at the edge of the tables' pigeonhole bound); nothing here is
derived from any image.
"""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from tripwire.banks.store import BankStore
from tripwire.config import Config
from tripwire.match.lookup import parse_query
from tripwire.match.matcher import Matcher
from tripwire.signals import index_kernel
from tripwire.signals.index import PdqIndex, codes_to_hex
from tripwire.store.db import open_db

RADII = [0, 8, 15, 16, 31, 32, 50]


def _flip_in_chunks(centre: np.ndarray, per_chunk: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``centre`` with per_chunk[c] bits flipped inside 16-bit chunk c of the index's word layout (chunk c
    is bits 16*(c%4).. of little-endian word c//4, i.e. bytes 2c and 2c+1 of the code)."""
    bits = np.unpackbits(centre.copy(), bitorder="little")
    for c, k in enumerate(per_chunk):
        pos = 16 * c + rng.choice(16, size=int(k), replace=False)
        bits[pos] ^= 1
    return np.packbits(bits, bitorder="little")


def _edge_patterns(radius: int) -> list[np.ndarray]:
    """Per-chunk distance vectors summing to ``radius`` that the tables' bound only just covers: chunks of
    distance <= t followed by a neighbour that pushes the pair over s, except one pair somewhere."""
    t, s = radius // 16, radius // 8
    out = []
    for lead in range(t + 1):
        pair = [lead, s + 1 - lead]
        vec = (pair * 8)[:16]
        while sum(vec) > radius:  # relax pairs one bit at a time until the total fits
            i = int(np.argmax(vec))
            vec[i] -= 1
        out.append(np.array(vec))
    out.append(np.array([t + 1] * 15 + [max(0, radius - 15 * (t + 1))]))  # all chunks just above t but one
    return [v for v in out if v.sum() <= radius and v.max() <= 16]


def _clustered(rng: np.random.Generator, n_random: int, n_centres: int,
               per_centre: int) -> tuple[np.ndarray, np.ndarray]:
    """Random codes plus near-duplicates of a few centres at distances 0..40 (random bits and edge patterns);
    returns (codes, centres)."""
    centres = rng.integers(0, 256, (n_centres, 32), dtype=np.uint8)
    parts = [rng.integers(0, 256, (n_random, 32), dtype=np.uint8)]
    for c in centres:
        near = []
        for k in rng.integers(0, 41, per_centre):
            per_chunk = np.bincount(rng.choice(16, size=int(k)), minlength=16).clip(max=16)
            near.append(_flip_in_chunks(c, per_chunk, rng))
        for radius in (7, 8, 15, 16, 31, 32):
            near += [_flip_in_chunks(c, v, rng) for v in _edge_patterns(radius)]
        parts.append(np.stack(near))
    return np.concatenate(parts), centres


def _answers(index: PdqIndex, queries: np.ndarray, radius: int) -> tuple[np.ndarray, ...]:
    return index.search_arrays(queries, radius)


def _assert_same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> None:
    assert all(np.array_equal(x, y) for x, y in zip(a, b)), "accelerated answers differ from the scan's"


@pytest.fixture
def small_tables(monkeypatch):
    """Tables on segments from 64 rows on, so a small test has many table-backed segments and merges."""
    monkeypatch.setattr(index_kernel, "TABLE_MIN_ROWS", 64)


def test_tables_equal_the_scan_at_every_radius_up_to_31(small_tables):
    """The kernel itself on one segment of clustered codes: every radius 0-31 against the scan."""
    rng = np.random.default_rng(11)
    codes, centres = _clustered(rng, 30000, 6, 120)
    w = np.ascontiguousarray(codes.view("<u8").T)
    tables = index_kernel.build_tables(w)
    assert tables is not None and tables.rows.shape == (16, codes.shape[0])
    queries = np.concatenate([centres, codes[rng.integers(0, codes.shape[0], 10)],
                              rng.integers(0, 256, (6, 32), dtype=np.uint8)])
    q = np.ascontiguousarray(queries.view("<u8"))
    edge_hits = 0
    for radius in range(32):
        want = sorted(zip(*(a.tolist() for a in index_kernel.scan(w, q, radius))))
        got = list(zip(*(a.tolist() for a in index_kernel.search_tables(w, tables, q, radius))))
        assert sorted(got) == want, f"radius {radius}"
        assert len(got) == len(set(got)), "a code was reported twice"
        edge_hits += sum(1 for _, _, d in got if d == radius)
    assert edge_hits > 50  # codes exactly at the radius were there to find
    numpy_rows, _, _ = index_kernel.scan_numpy(w, q, 31)
    assert sorted(numpy_rows.tolist()) == sorted(index_kernel.search_tables(w, tables, q, 31)[0].tolist())
    with pytest.raises(ValueError):
        index_kernel.search_tables(w, tables, q, 32)
    assert index_kernel.build_tables(np.ascontiguousarray(w[:, :63])) is None  # small segments keep the scan


def test_edge_patterns_cover_the_pigeonhole_bound():
    """The edge patterns really are at the bound: each has a single qualifying chunk (or none above 31)."""
    for radius in (7, 8, 15, 16, 31):
        t, s = radius // 16, radius // 8
        for vec in _edge_patterns(radius):
            qualifying = [c for c in range(16) if vec[c] <= t and vec[c] + vec[(c + 1) % 16] <= s]
            assert vec.sum() <= radius and len(qualifying) >= 1
    assert any(len([c for c in range(16) if v[c] <= 1 and v[c] + v[(c + 1) % 16] <= 3]) == 1
               for v in _edge_patterns(31))


def test_accelerated_index_equals_scan_through_adds_removals_merges_and_save_load(small_tables, tmp_path):
    rng = np.random.default_rng(5)
    codes, centres = _clustered(rng, 3000, 8, 60)
    ids = rng.permutation(np.arange(10**9, 10**9 + 4 * codes.shape[0]))[: codes.shape[0]].astype(np.int64)
    queries = np.concatenate([centres, codes[:5], rng.integers(0, 256, (3, 32), dtype=np.uint8)])
    plain, fast = PdqIndex(), PdqIndex(accelerate=True)
    order = rng.permutation(codes.shape[0])
    for step, batch in enumerate(np.array_split(order, 9)):
        for index in (plain, fast):
            index.add(ids[batch], codes[batch])
        live = plain.ids()
        gone = rng.choice(live, size=min(300, live.size // 5), replace=False)
        assert plain.remove(gone) == fast.remove(gone)
        if step == 4:  # replace codes of live ids with near-duplicates of a centre
            again = rng.choice(plain.ids(), size=40, replace=False)
            new = np.stack([_flip_in_chunks(centres[0], np.bincount(rng.choice(16, size=20), minlength=16), rng)
                            for _ in again])
            plain.add(again, new)
            fast.add(again, new)
        for radius in (8, 31, 32):
            _assert_same(_answers(fast, queries, radius), _answers(plain, queries, radius))
    assert any(s.tables is not None for s in fast._segs) and all(s.tables is None for s in plain._segs)
    assert fast.memory_bytes() > plain.memory_bytes()
    for radius in RADII:
        _assert_same(_answers(fast, queries, radius), _answers(plain, queries, radius))
    fast.save(tmp_path / "a.pdqidx")
    for loaded in (PdqIndex.load(tmp_path / "a.pdqidx", accelerate=True),
                   PdqIndex.load(tmp_path / "a.pdqidx", mmap=True, accelerate=True)):
        assert loaded.accelerate and loaded.segment_count == 1 and loaded._segs[0].tables is not None
        for radius in RADII:
            _assert_same(_answers(loaded, queries, radius), _answers(plain, queries, radius))
    fast.compact()
    assert fast.segment_count == 1 and fast._segs[0].tables is not None
    _assert_same(_answers(fast, queries, 31), _answers(plain, queries, 31))
    fast.accelerate = False  # dropping the tables gives the memory back and the same answers
    assert fast.memory_bytes() == 36 * len(fast) and fast._segs[0].tables is None
    _assert_same(_answers(fast, queries, 31), _answers(plain, queries, 31))


def test_turning_acceleration_on_later_builds_the_tables(small_tables):
    rng = np.random.default_rng(8)
    n = 20000
    codes, centres = _clustered(rng, n, 3, 30)
    index = PdqIndex()
    total = codes.shape[0]
    for part in np.array_split(np.arange(total), [total - 4000, total - 1000]):  # three segments
        index.add(part, codes[part])
    index.remove(np.arange(0, n, 7))
    assert index.segment_count == 3
    queries = np.concatenate([centres, codes[:4]])
    before = {r: _answers(index, queries, r) for r in (0, 31, 50)}
    index.accelerate = True  # merged into one segment (one set of tables), removed rows dropped
    assert index.segment_count == 1 and index._segs[0].tables is not None
    extra = index.memory_bytes() - 36 * len(index)
    assert extra == 96 * len(index) + 16 * 65537 * 4
    for radius, want in before.items():
        _assert_same(_answers(index, queries, radius), want)


def test_searches_during_merges_see_a_consistent_index(small_tables):
    """Readers in another thread while adds merge segments and rebuild their tables: every answer holds the
    codes that were never removed, and nothing that was never added."""
    rng = np.random.default_rng(6)
    base = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    index = PdqIndex(accelerate=True)
    index.add(np.arange(3000), base)
    probe = base[:8]
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                found = {(q, i) for q, i, _ in index.search(probe, 31)}
                assert {(q, q) for q in range(8)} <= found <= {(q, q) for q in range(8)} | {
                    (q, 10**6 + k * 8 + q) for q in range(8) for k in range(40)}
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    for k in range(40):  # copies of the probe under new ids, and random codes that grow and merge segments
        index.add(np.arange(10**6 + k * 8, 10**6 + k * 8 + 8), probe)
        index.add(np.arange(10**7 + k * 500, 10**7 + k * 500 + 500), rng.integers(0, 256, (500, 32), dtype=np.uint8))
        if k % 3 == 0:
            index.remove(np.arange(10**6 + k * 8, 10**6 + k * 8 + 8))
    stop.set()
    thread.join()
    assert not errors
    assert any(s.tables is not None for s in index._segs)
    live = {int(i) for i in index.ids()}
    assert {(q, i) for q, i, _ in index.search(probe, 31)} == {
        (q, i) for q in range(8) for i in [q] + [10**6 + k * 8 + q for k in range(40)] if i in live}


def test_the_service_matcher_accelerates_and_scans_and_the_cli_do_not(tmp_path, small_tables):
    """Cached mode (the service) builds the PDQ tables unless ``[banks] index_accel = false``; a plain
    matcher (scan, CLI) keeps the scan; both give the same matches."""
    db = open_db(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        rng = np.random.default_rng(2)
        codes, centres = _clustered(rng, 300, 4, 30)
        store = BankStore(db)
        store.create_bank("b", category_scheme="none")
        store.add_entries("b", [{"signal_type": "pdq", "value": v} for v in codes_to_hex(codes)])
        plain = Matcher(db, None, refresh_interval=3600)
        plain.open()
        cached = Matcher(db, tmp_path / "idx", refresh_interval=3600)
        cached.enable_cache()
        cached.open()
        off = Matcher.from_config(db, Config(sections={"banks": {"index_accel": False}}), index_path=None)
        off.enable_cache()
        off.open()
        assert not plain.bank_index.index.accelerate and not off.bank_index.index.accelerate
        assert cached.bank_index.index.accelerate
        assert any(s.tables is not None for s in cached.bank_index.index._segs)
        queries = [parse_query("pdq", h) for h in codes_to_hex(centres)]
        queries += [parse_query("pdq", f"{random.Random(i).getrandbits(256):064x}") for i in range(5)]
        expected = plain.lookup_many(queries)
        assert sum(len(r["matches"]) for r in expected) > 20
        assert cached.lookup_many(queries) == expected == off.lookup_many(queries)
        cached.save()
        reopened = Matcher(db, tmp_path / "idx", refresh_interval=3600)
        reopened.enable_cache()
        reopened.open()  # loaded from the saved file: tables rebuilt on load
        assert reopened.bank_index.loaded_from_disk and reopened.bank_index.index.accelerate
        assert reopened.lookup_many(queries) == expected
    finally:
        db.dispose()

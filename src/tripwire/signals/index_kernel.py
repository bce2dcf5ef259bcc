"""The scan kernel behind :class:`tripwire.signals.index.PdqIndex`: exact radius search over 256-bit codes.

Why a scan and not a hash-table index: an exact radius-31 search over 256 bits needs, by the pigeonhole
principle, about 16 views of the data (16 chunks of 16 bits, probed at distance <= 1); 16 id tables cost
64-128 bytes per hash, which is what makes HMA's FAISS ``IndexBinaryMultiHash`` need 160 bytes per hash.
A 40-byte budget leaves room for the 32-byte code and a 4-byte id only, so the index is a linear scan made
cheap instead:

* codes are stored column-wise, as four uint64 words per code in four arrays (``w[0..3]``), so a block of
  rows is a contiguous run of each word and LLVM vectorises the loop (AVX-512 VPOPCNTQ where present);
* a first pass reads only the first 128 bits: a random code is within 31 of a query on 128 bits with
  probability ~3e-9, so half the memory is read and the other half is touched only for real candidates.
  The 128-bit distance is a lower bound of the 256-bit one, so nothing within the radius is ever skipped;
* the 8 dihedral variants of an image (any number of queries, in fact) are checked against a block of
  rows while it is in L1 cache, so the data is read from memory once per batch, not once per query.

On one core this streams ~30 GB/s and checks a row against 8 queries in ~1.5 ns (bench/matching.py).
A pure-numpy scan gives identical answers where numba is unavailable (about 10x slower) and answers the
small searches (``NUMBA_MIN_WORK``), so a small scan or a CLI command never imports numba: the kernels live in
:mod:`.index_numba`, imported on the first search that needs them.

Where look-up latency matters more than memory (the service), a large segment can also carry **look-up
tables** (:func:`build_tables`, :func:`search_tables`, 96 bytes per hash): multi-index hashing, exact for a
radius up to 31, about 4x faster than the scan at 500k codes and 10x at 10M. Its design
and the proof that it misses nothing are in :func:`search_tables`.
"""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType
from typing import Callable, NamedTuple

import numpy as np

from .hamming import popcount

#: below this many row x query checks the numpy scan answers in milliseconds: numba (whose import and cached
#: kernel load cost ~1-2 s per process) is loaded only for the first search that needs it
NUMBA_MIN_WORK = 1 << 21
#: the look-up tables answer radii up to this one exactly (16 chunks of 16 bits: see search_tables)
TABLE_MAX_RADIUS = 31
#: a segment gets look-up tables from this many rows on: below it the scan is at most 2x slower and the
#: fixed 4 MiB of bucket offsets would cost more than 32 bytes per hash
TABLE_MIN_ROWS = 1 << 17
_CHUNKS = 16
_BUCKETS = 1 << 16

@lru_cache(maxsize=1)
def load_kernels() -> ModuleType | None:
    """The compiled kernels (:mod:`.index_numba`), imported once, or None without numba."""
    try:
        from . import index_numba
    except ImportError:  # pragma: no cover - numba is a declared dependency
        return None
    return index_numba


def _popcount_u64(x: np.ndarray) -> np.ndarray:
    return popcount(x).astype(np.int32)


def scan_numpy(w: np.ndarray, q: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Same contract as :func:`scan`, in blocked numpy (the fallback; also a cross-check in tests)."""
    rows_out: list[np.ndarray] = []
    q_out: list[np.ndarray] = []
    d_out: list[np.ndarray] = []
    n = w.shape[1]
    step = 1 << 16
    for b0 in range(0, n, step):
        blk = w[:, b0 : b0 + step]
        for j in range(q.shape[0]):
            d = _popcount_u64(blk[0] ^ q[j, 0]) + _popcount_u64(blk[1] ^ q[j, 1])
            cand = np.flatnonzero(d <= radius)
            if cand.size == 0:
                continue
            d = d[cand] + _popcount_u64(blk[2, cand] ^ q[j, 2]) + _popcount_u64(blk[3, cand] ^ q[j, 3])
            keep = d <= radius
            rows_out.append(cand[keep] + b0)
            q_out.append(np.full(int(keep.sum()), j, dtype=np.int32))
            d_out.append(d[keep].astype(np.int32))
    if not rows_out:
        return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int32)
    return (
        np.concatenate(rows_out).astype(np.int64),
        np.concatenate(q_out),
        np.concatenate(d_out),
    )


def scan(w: np.ndarray, q: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (row, query, distance) with Hamming distance <= radius between a row of ``w`` and a query.

    ``w`` is a (4, n) C-contiguous uint64 array (code words, column-wise), ``q`` a (m, 4) uint64 array in
    the same word layout. Rows come back in ascending order within each block, queries interleaved.
    """
    if w.shape[1] == 0 or q.shape[0] == 0:
        return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int32)
    kernels = load_kernels() if w.shape[1] * q.shape[0] >= NUMBA_MIN_WORK else None
    if kernels is None:
        return scan_numpy(w, q, radius)
    return _collect(lambda rows, queries, dists: int(
        kernels.scan_kernel(w[0], w[1], w[2], w[3], q, np.int64(radius), rows, queries, dists)))


def _collect(kernel: Callable[[np.ndarray, np.ndarray, np.ndarray], int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a kernel that writes (row, query, distance) triples into buffers and returns how many it found."""
    cap = 4096
    while True:
        out_row = np.empty(cap, np.int64)
        out_query = np.empty(cap, np.int32)
        out_dist = np.empty(cap, np.int32)
        count = kernel(out_row, out_query, out_dist)
        if count <= cap:
            return out_row[:count], out_query[:count], out_dist[:count]
        cap = count  # more hits than the buffer held: rerun once with room for all of them


class Tables(NamedTuple):
    """Look-up tables of one segment (see :func:`search_tables`): per chunk c, the rows sorted by the
    chunk's value (``rows[c]``), each with the value of chunk c + 1 (``nbr[c]``), and where each of the
    65536 values' bucket starts (``offsets[c]``)."""

    offsets: np.ndarray  # (16, 65537) uint32
    rows: np.ndarray  # (16, n) uint32
    nbr: np.ndarray  # (16, n) uint16

    @property
    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.rows.nbytes + self.nbr.nbytes)


def build_tables(w: np.ndarray) -> Tables | None:
    """The look-up tables of a (4, n) column-word segment; None where they do not pay (fewer than
    :data:`TABLE_MIN_ROWS` rows, more than 2**32, or no numba): the scan answers those.

    Cost: 96 bytes per row (16 tables of a 4-byte row number and a 2-byte chunk) plus 4 MiB of offsets;
    0.1-0.2 s of CPU per million rows up to 1M (one counting sort per chunk), ~0.3 s per million at 10M."""
    n = int(w.shape[1])
    kernels = load_kernels() if TABLE_MIN_ROWS <= n < 2**32 else None
    if kernels is None:
        return None
    offsets = np.zeros((_CHUNKS, _BUCKETS + 1), np.uint32)
    rows = np.empty((_CHUNKS, n), np.uint32)
    nbr = np.empty((_CHUNKS, n), np.uint16)
    kernels.build_kernel(w, offsets, rows, nbr)
    return Tables(offsets, rows, nbr)


def search_tables(w: np.ndarray, tables: Tables, q: np.ndarray,
                  radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Same answer as :func:`scan` (in another order) for ``radius`` <= :data:`TABLE_MAX_RADIUS`, from
    the segment's tables: multi-index hashing with a filter on the neighbouring chunk.

    Split a code into 16 chunks of 16 bits; let d_c be the distance of chunk c to the query's and
    t = radius // 16, s = radius // 8. **Every code within the radius has a chunk c with d_c <= t and
    d_c + d_(c+1 mod 16) <= s.** (If none had, each chunk with d_c <= t would be followed by one with
    d >= s + 1 - d_c >= t + 1, so those pairs are disjoint and sum to >= s + 1 each, every other chunk is
    >= t + 1, and the total is >= min(16 (t + 1), 8 (s + 1)) > radius.) So a query reads, per chunk, the
    bucket of its own value and, when t = 1, the 16 buckets one bit away (FAISS ``IndexBinaryMultiHash``
    with ``nflip=1``, HMA's setting), and keeps a row only when the stored value of the next chunk is
    within s - d_c: a random row passes with probability ~0.2-1%, so about 5 rows per query at 500k codes
    are read from the segment and verified on the full 256 bits, instead of ~2000. A code is reported from
    the first chunk whose probe finds it, so exactly once. Radii above 31 need the scan.
    """
    if not 0 <= radius <= TABLE_MAX_RADIUS:
        raise ValueError(f"the look-up tables answer radii 0-{TABLE_MAX_RADIUS}, not {radius}")
    if w.shape[1] == 0 or q.shape[0] == 0:
        return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int32)
    probes = _CHUNKS * (_CHUNKS + 1)
    starts = np.empty((2, probes), np.uint32)  # two queries' buckets at a time (the kernel's pipeline)
    ends = np.empty((2, probes), np.uint32)
    kernels = load_kernels()
    assert kernels is not None  # tables exist only where the kernels do
    return _collect(lambda rows, queries, dists: int(
        kernels.search_kernel(w[0], w[1], w[2], w[3], tables.offsets, tables.rows, tables.nbr, q, np.int64(radius),
                      starts, ends, rows, queries, dists)))

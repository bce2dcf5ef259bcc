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
small searches (``NUMBA_MIN_WORK``), so a small scan or a CLI command never imports numba.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, cast

import numpy as np

from .hamming import popcount

#: rows checked per block: w0 and w1 of a block (16 KiB) stay in L1 while every query is checked
BLOCK_ROWS = 1024

#: below this many row x query checks the numpy scan answers in milliseconds: numba (whose import and cached
#: kernel load cost ~1-2 s per process) is loaded only for the first search that needs it
NUMBA_MIN_WORK = 1 << 21


@lru_cache(maxsize=1)
def _numba_kernel() -> Callable[..., int] | None:
    """The compiled scan kernel (numba, ``cache=True``: compiled once per install), or None without numba."""
    try:
        from numba import njit, types
        from numba.extending import intrinsic
    except ImportError:  # pragma: no cover - numba is a declared dependency
        return None

    @intrinsic
    def _ctpop(typingctx, x):  # type: ignore[no-untyped-def]
        """LLVM's ctpop on a uint64: one POPCNT, or VPOPCNTQ lanes once the loop is vectorised."""
        sig = types.uint64(types.uint64)

        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            return builder.ctpop(args[0])

        return sig, codegen

    # numba's stubs type an intrinsic by its typing hook (typingctx, x); jitted code calls it with x only
    _popcount = cast("Callable[[np.uint64], np.uint64]", _ctpop)
    block_rows = BLOCK_ROWS

    @njit(nogil=True, cache=True, boundscheck=False)
    def _scan_numba(w0, w1, w2, w3, q, radius, out_row, out_query, out_dist):  # type: ignore[no-untyped-def]
        # Unsigned loop indices matter: with signed ones numba adds negative-index wraparound to every
        # load, LLVM turns the loads into gathers and the loop runs 8x slower.
        n = w0.shape[0]
        nq = q.shape[0]
        cap = out_row.shape[0]
        count = 0
        for b0 in range(0, n, block_rows):
            b1 = min(n, b0 + block_rows)
            lo = np.uint64(b0)
            hi = np.uint64(b1)
            for j in range(nq):
                q0 = q[j, 0]
                q1 = q[j, 1]
                best = np.int64(256)
                for i in range(lo, hi):  # vectorised: 128-bit lower bound, min over the block
                    d = np.int64(_popcount(w0[i] ^ q0) + _popcount(w1[i] ^ q1))
                    best = min(best, d)
                if best <= radius:  # rare for random rows: only blocks holding a candidate get here
                    q2 = q[j, 2]
                    q3 = q[j, 3]
                    for i in range(lo, hi):
                        d = np.int64(_popcount(w0[i] ^ q0) + _popcount(w1[i] ^ q1))
                        if d <= radius:
                            d += np.int64(_popcount(w2[i] ^ q2) + _popcount(w3[i] ^ q3))
                            if d <= radius:
                                if count < cap:
                                    out_row[count] = i
                                    out_query[count] = j
                                    out_dist[count] = d
                                count += 1
        return count

    return cast("Callable[..., int]", _scan_numba)


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
    kernel = _numba_kernel() if w.shape[1] * q.shape[0] >= NUMBA_MIN_WORK else None
    if kernel is None:
        return scan_numpy(w, q, radius)
    cap = 4096
    while True:
        out_row = np.empty(cap, np.int64)
        out_query = np.empty(cap, np.int32)
        out_dist = np.empty(cap, np.int32)
        count = kernel(w[0], w[1], w[2], w[3], q, np.int64(radius), out_row, out_query, out_dist)
        if count <= cap:
            return out_row[:count], out_query[:count], out_dist[:count]
        cap = int(count)  # more hits than the buffer held: rerun once with room for all of them

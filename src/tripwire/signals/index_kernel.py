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
A pure-numpy fallback gives identical answers where numba is unavailable; it is about 10x slower.

Where look-up latency matters more than memory (the service), a large segment can also carry **look-up
tables** (:func:`build_tables`, :func:`search_tables`, 96 bytes per hash): multi-index hashing, exact for a
radius up to 31, about 4x faster than the scan at 500k codes and 10x at 10M. Its design
and the proof that it misses nothing are in :func:`search_tables`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, cast

import numpy as np

from .hamming import popcount

#: rows checked per block: w0 and w1 of a block (16 KiB) stay in L1 while every query is checked
BLOCK_ROWS = 1024
#: the look-up tables answer radii up to this one exactly (16 chunks of 16 bits: see search_tables)
TABLE_MAX_RADIUS = 31
#: a segment gets look-up tables from this many rows on: below it the scan is at most 2x slower and the
#: fixed 4 MiB of bucket offsets would cost more than 32 bytes per hash
TABLE_MIN_ROWS = 1 << 17
_CHUNKS = 16
_BUCKETS = 1 << 16

try:  # pragma: no branch - the fallback is exercised by tests through ``scan_numpy`` directly
    from llvmlite import ir
    from numba import njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a declared dependency
    HAVE_NUMBA = False


if HAVE_NUMBA:

    @intrinsic
    def _ctpop(typingctx, x):  # type: ignore[no-untyped-def]
        """LLVM's ctpop on a uint64: one POPCNT, or VPOPCNTQ lanes once the loop is vectorised."""
        sig = types.uint64(types.uint64)

        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            return builder.ctpop(args[0])

        return sig, codegen

    # numba's stubs type an intrinsic by its typing hook (typingctx, x); jitted code calls it with x only
    _popcount = cast("Callable[[np.uint64], np.uint64]", _ctpop)

    @intrinsic
    def _prefetch_intr(typingctx, arr, idx):  # type: ignore[no-untyped-def]
        """LLVM's prefetch of ``arr[idx]`` into all cache levels: the bucket reads of a query are issued
        together, so their memory latencies overlap instead of adding up."""
        sig = types.void(arr, idx)

        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])  # type: ignore[no-untyped-call]
            i32 = ir.IntType(32)
            byte_ptr = ir.IntType(8).as_pointer()  # one declaration for arrays of any dtype
            fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
                builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]), "llvm.prefetch.p0")
            builder.call(fn, [builder.bitcast(ptr, byte_ptr), i32(0), i32(3), i32(1)])  # read, keep in all caches
            return context.get_dummy_value()

        return sig, codegen

    _prefetch = cast("Callable[[np.ndarray, np.uint64], None]", _prefetch_intr)

    @njit(inline="always")
    def _chunk(x0, x1, x2, x3, c):  # type: ignore[no-untyped-def]
        """16-bit chunk ``c`` (0-15) of a code given as its four words: word c // 4, bits 16 * (c % 4)."""
        wv = x0 if c < 4 else (x1 if c < 8 else (x2 if c < 12 else x3))
        return (wv >> ((c & np.uint64(3)) * np.uint64(16))) & np.uint64(0xFFFF)

    @njit(nogil=True, cache=True, boundscheck=False)
    def _build_numba(w, offsets, rows, nbr):  # type: ignore[no-untyped-def]
        # a counting sort per chunk: rows of a bucket stay in ascending order
        n = np.uint64(w.shape[1])
        for c in range(np.uint64(0), np.uint64(16)):
            word = c >> np.uint64(2)
            shift = (c & np.uint64(3)) * np.uint64(16)
            c2 = (c + np.uint64(1)) & np.uint64(15)
            word2 = c2 >> np.uint64(2)
            shift2 = (c2 & np.uint64(3)) * np.uint64(16)
            cnt = offsets[c]
            for i in range(np.uint64(0), n):
                v = (w[word, i] >> shift) & np.uint64(0xFFFF)
                cnt[v + np.uint64(1)] += np.uint32(1)
            for v in range(np.uint64(1), np.uint64(65537)):
                cnt[v] += cnt[v - np.uint64(1)]
            pos = cnt[:65536].copy()
            r = rows[c]
            nb = nbr[c]
            for i in range(np.uint64(0), n):
                v = (w[word, i] >> shift) & np.uint64(0xFFFF)
                p = pos[v]
                r[p] = np.uint32(i)
                nb[p] = np.uint16((w[word2, i] >> shift2) & np.uint64(0xFFFF))
                pos[v] = p + np.uint32(1)

    @njit(inline="always")
    def _prefetch_offsets(offsets, q, j, flips):  # type: ignore[no-untyped-def]
        """Ask for the bucket bounds query ``j`` will read (their addresses depend on the query alone)."""
        for c in range(np.uint64(0), np.uint64(16)):
            qv = _chunk(q[j, 0], q[j, 1], q[j, 2], q[j, 3], c)
            off = offsets[c]
            for f in range(np.int64(-1), flips):
                _prefetch(off, qv if f < 0 else qv ^ (np.uint64(1) << np.uint64(f)))

    @njit(inline="always")
    def _bounds(offsets, nbr, q, j, flips, starts, ends):  # type: ignore[no-untyped-def]
        """Read the bounds of query ``j``'s buckets and ask for each bucket's first line."""
        p = 0
        for c in range(np.uint64(0), np.uint64(16)):
            qv = _chunk(q[j, 0], q[j, 1], q[j, 2], q[j, 3], c)
            off = offsets[c]
            nb = nbr[c]
            for f in range(np.int64(-1), flips):
                v = qv if f < 0 else qv ^ (np.uint64(1) << np.uint64(f))
                k0 = off[v]
                starts[p] = k0
                ends[p] = off[v + np.uint64(1)]
                _prefetch(nb, np.uint64(k0))  # a hint: never faults, even one past the end (empty last bucket)
                p += 1

    @njit(nogil=True, cache=True, boundscheck=False)
    def _search_numba(w0, w1, w2, w3, offsets, rows, nbr, q, radius, starts, ends,  # type: ignore[no-untyped-def]
                      out_row, out_query, out_dist):
        nq = q.shape[0]
        cap = out_row.shape[0]
        t = radius // 16  # bits a probed chunk may differ by
        s = radius // 8  # bits a probed chunk and its successor may differ by together
        flips = np.int64(16) if t else np.int64(0)
        count = 0
        # A query's work is three dependent rounds of memory reads (bucket bounds, bucket contents, the
        # rare full code). They are pipelined over the queries: while query j is filtered, the buckets of
        # j + 1 and the bounds of j + 2 are on their way, so the latencies overlap instead of adding up.
        for j in range(min(nq, 2)):
            _prefetch_offsets(offsets, q, j, flips)
        if nq:
            _bounds(offsets, nbr, q, 0, flips, starts[0], ends[0])
        for j in range(nq):
            if j + 2 < nq:
                _prefetch_offsets(offsets, q, j + 2, flips)
            if j + 1 < nq:
                _bounds(offsets, nbr, q, j + 1, flips, starts[(j + 1) & 1], ends[(j + 1) & 1])
            q0 = q[j, 0]
            q1 = q[j, 1]
            q2 = q[j, 2]
            q3 = q[j, 3]
            st = starts[j & 1]
            en = ends[j & 1]
            # filter on the successor chunk, verify the few left on the full code
            p = 0
            for c in range(np.uint64(0), np.uint64(16)):
                qn = _chunk(q0, q1, q2, q3, (c + np.uint64(1)) & np.uint64(15))
                r = rows[c]
                nb = nbr[c]
                for f in range(np.int64(-1), flips):
                    lim = s if f < 0 else s - 1
                    k0 = np.uint64(st[p])
                    k1 = np.uint64(en[p])
                    p += 1
                    for k in range(k0, k1):
                        if np.int64(_popcount(np.uint64(nb[k]) ^ qn)) > lim:
                            continue
                        i = np.uint64(r[k])
                        x0 = w0[i] ^ q0
                        x1 = w1[i] ^ q1
                        x2 = w2[i] ^ q2
                        x3 = w3[i] ^ q3
                        d = np.int64(_popcount(x0) + _popcount(x1) + _popcount(x2) + _popcount(x3))
                        if d > radius:
                            continue
                        # report a code from the first chunk whose probe finds it, and from no other
                        first = np.uint64(16)
                        d_first = np.int64(_popcount(_chunk(x0, x1, x2, x3, np.uint64(0))))
                        prev = d_first
                        for c2 in range(np.uint64(0), np.uint64(16)):
                            if c2 == np.uint64(15):
                                nxt = d_first
                            else:
                                nxt = np.int64(_popcount(_chunk(x0, x1, x2, x3, c2 + np.uint64(1))))
                            if prev <= t and prev + nxt <= s:
                                first = np.uint64(c2)
                                break
                            prev = nxt
                        if first == c:
                            if count < cap:
                                out_row[count] = i
                                out_query[count] = j
                                out_dist[count] = d
                            count += 1
        return count

    @njit(nogil=True, cache=True, boundscheck=False)
    def _scan_numba(w0, w1, w2, w3, q, radius, out_row, out_query, out_dist):  # type: ignore[no-untyped-def]
        # Unsigned loop indices matter: with signed ones numba adds negative-index wraparound to every
        # load, LLVM turns the loads into gathers and the loop runs 8x slower.
        n = w0.shape[0]
        nq = q.shape[0]
        cap = out_row.shape[0]
        count = 0
        for b0 in range(0, n, BLOCK_ROWS):
            b1 = min(n, b0 + BLOCK_ROWS)
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
    if not HAVE_NUMBA:  # pragma: no cover
        return scan_numpy(w, q, radius)
    return _collect(lambda rows, queries, dists: int(
        _scan_numba(w[0], w[1], w[2], w[3], q, np.int64(radius), rows, queries, dists)))


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
    if not HAVE_NUMBA or n < TABLE_MIN_ROWS or n >= 2**32:
        return None
    offsets = np.zeros((_CHUNKS, _BUCKETS + 1), np.uint32)
    rows = np.empty((_CHUNKS, n), np.uint32)
    nbr = np.empty((_CHUNKS, n), np.uint16)
    _build_numba(w, offsets, rows, nbr)
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
    return _collect(lambda rows, queries, dists: int(
        _search_numba(w[0], w[1], w[2], w[3], tables.offsets, tables.rows, tables.nbr, q, np.int64(radius),
                      starts, ends, rows, queries, dists)))

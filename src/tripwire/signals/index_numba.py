"""The numba kernels behind :mod:`tripwire.signals.index_kernel`: the scan, and the look-up tables' build and
search. A module of their own so that importing the index never imports numba (about 1-2 s per process with
the cached kernels loaded): :func:`tripwire.signals.index_kernel.load_kernels` imports this module on the first
search that needs it. Defined at module level so that numba caches the compiled code on disk (``cache=True``).
"""

from __future__ import annotations

from typing import Callable, cast

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

#: rows checked per block: w0 and w1 of a block (16 KiB) stay in L1 while every query is checked
BLOCK_ROWS = 1024


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
def build_kernel(w, offsets, rows, nbr):  # type: ignore[no-untyped-def]
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
def search_kernel(w0, w1, w2, w3, offsets, rows, nbr, q, radius, starts, ends,  # type: ignore[no-untyped-def]
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
def scan_kernel(w0, w1, w2, w3, q, radius, out_row, out_query, out_dist):  # type: ignore[no-untyped-def]
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

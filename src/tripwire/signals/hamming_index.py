"""A small exact Hamming index for any bit-string signal type that has no index of its own.

PDQ has :class:`~tripwire.signals.index.PdqIndex` (segments, persistence, a compiled kernel) because banks
hold millions of PDQ hashes. Another distance type (a 64-bit image hash, a video frame hash) gets this one:
codes of any fixed width in one array, searched by a vectorised scan. Same contract as ``PdqIndex``'s
``add``/``remove``/``search_arrays``, so :class:`~tripwire.match.matcher.BankIndex` keeps it in step with
the database the same way; it lives in memory and is rebuilt when a matcher opens.
"""

from __future__ import annotations

import numpy as np

from .hamming import code_distances


class HammingIndex:
    """Codes (an (n, bytes) uint8 array) under int64 ids; adding an existing id replaces its code."""

    def __init__(self) -> None:
        self._ids = np.empty(0, np.int64)
        self._codes: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self._ids.size)

    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        codes = np.asarray(codes, dtype=np.uint8)
        if self._codes is None:
            self._codes = np.empty((0, codes.shape[1]), np.uint8)
        if codes.shape[1] != self._codes.shape[1]:
            raise ValueError(f"codes of {codes.shape[1]} bytes in an index of {self._codes.shape[1]}-byte codes")
        keep = ~np.isin(self._ids, ids)
        self._ids = np.concatenate([self._ids[keep], ids])
        self._codes = np.concatenate([self._codes[keep], codes])

    def remove(self, ids: np.ndarray) -> int:
        """Drop ``ids``; returns how many were present."""
        gone = np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        self._ids = self._ids[~gone]
        if self._codes is not None:
            self._codes = self._codes[~gone]
        return int(gone.sum())

    def search_arrays(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query rows, ids, distances) within ``radius``, sorted by query row, then distance, then id."""
        qs, ids, ds = [], [], []
        if self._codes is not None and self._ids.size:
            for row, query in enumerate(np.asarray(queries, dtype=np.uint8)):
                dist = code_distances(self._codes, query)
                hit = np.flatnonzero(dist <= radius)
                qs.append(np.full(hit.size, row, np.int64))
                ids.append(self._ids[hit])
                ds.append(dist[hit])
        if not qs:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)
        qa, ia, da = np.concatenate(qs), np.concatenate(ids), np.concatenate(ds).astype(np.int32)
        order = np.lexsort((ia, da, qa))
        return qa[order], ia[order], da[order]

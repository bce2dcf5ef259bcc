"""Media matching for post feeds: the interface, and a plain hash-list matcher behind it.

A post's ``media[]`` entries carry hashes computed by the platform (``sha256``, ``md5``, ``pdq``), never the
media itself. Post scanning asks a *media matcher* -- any callable ``media_matcher(media: dict) -> list of
match dicts`` -- whether each entry is known. A match dict has at least ``bank`` (list name),
``signal_type`` (``sha256``/``md5``/``pdq``) and ``value`` (the bank's hash), plus ``distance`` for PDQ and
whatever the bank knows (``category``). Banks from the case database (tripwire's banks and matcher) plug in
through the same interface; :class:`HashListMatcher` reads plain files so that feeds can be checked today:

* one hex digest per line: 32 hex = MD5, 64 hex = SHA-256 *or* PDQ (compared with the media's ``sha256``
  exactly and with its ``pdq`` by Hamming distance, since both are 64 hex characters);
* or CSV ``signal_type,value[,category[,...]]`` (header optional), signal types ``md5``, ``sha256``,
  ``pdq`` (ThreatExchange names such as ``photo_md5``/``video_md5`` are read as MD5).

PDQ matches are within ``radius`` bits (default 31, as elsewhere in tripwire) and media whose declared
``pdq_quality`` is below ``min_quality`` (default 50) are not PDQ-matched.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import UsageError

__all__ = ["MediaMatcher", "HashListMatcher", "popcount64", "pdq_to_words"]

#: the interface post scanning uses: media entry -> matches (empty list when unknown)
MediaMatcher = Callable[[dict[str, Any]], list[dict[str, Any]]]

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_TYPE_ALIASES = {"md5": "md5", "photo_md5": "md5", "video_md5": "md5", "sha256": "sha256", "sha-256": "sha256",
                 "pdq": "pdq", "photo_pdq": "pdq"}


def pdq_to_words(hexes: Iterable[str]) -> np.ndarray:
    """64-hex PDQ strings as an (n, 4) uint64 array (big-endian words), for vectorised Hamming distance."""
    raw = b"".join(bytes.fromhex(h) for h in hexes)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 4)


_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount64(a: np.ndarray) -> np.ndarray:
    """Set bits per uint64 element (numpy's bitwise_count where available)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(a)
    return _POP8[a.view(np.uint8)].reshape(*a.shape, 8).sum(axis=-1)


class HashListMatcher:
    """Exact MD5/SHA-256 and PDQ-within-radius matching against hash-list files (see the module doc)."""

    def __init__(self, radius: int = 31, min_quality: int = 50) -> None:
        self.radius = radius
        self.min_quality = min_quality
        self._exact: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (type, value) -> [(bank, category)]
        self._pdq_hex: list[str] = []
        self._pdq_meta: list[tuple[str, str]] = []
        self._pdq_words: np.ndarray | None = None
        self.counts: dict[str, int] = {}

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], radius: int = 31, min_quality: int = 50) -> "HashListMatcher":
        m = cls(radius, min_quality)
        for p in paths:
            m.add_file(p)
        return m

    def add(self, bank: str, signal_type: str, value: str, category: str = "") -> None:
        value = value.strip().lower()
        if signal_type == "pdq":
            self._pdq_hex.append(value)
            self._pdq_meta.append((bank, category))
            self._pdq_words = None
        else:
            self._exact.setdefault((signal_type, value), []).append((bank, category))
        self.counts[bank] = self.counts.get(bank, 0) + 1

    def add_file(self, path: str | Path) -> None:
        p = Path(path)
        bank = p.stem
        try:
            text = p.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read hash list {p}: {exc}") from exc
        first = next((ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
        if "," in first:
            self._add_csv(text, bank, p.name)
            return
        for lineno, line in enumerate(text.splitlines(), 1):
            v = line.strip()
            if not v or v.startswith("#"):
                continue
            if not _HEX.match(v) or len(v) not in (32, 64):
                raise UsageError(f"{p.name}:{lineno}: not an MD5 (32 hex) or SHA-256/PDQ (64 hex) value")
            if len(v) == 32:
                self.add(bank, "md5", v)
            else:
                self._exact.setdefault(("sha256", v.lower()), []).append((bank, ""))
                self._pdq_hex.append(v.lower())
                self._pdq_meta.append((bank, ""))
                self._pdq_words = None
                self.counts[bank] = self.counts.get(bank, 0) + 1

    def _add_csv(self, text: str, bank: str, name: str) -> None:
        rows = csv.reader(io.StringIO(text))
        for lineno, row in enumerate(rows, 1):
            if not row or row[0].strip().startswith("#"):
                continue
            kind = row[0].strip().lower()
            if kind in ("signal_type", "type"):
                continue
            st = _TYPE_ALIASES.get(kind)
            if st is None:
                raise UsageError(f"{name}:{lineno}: unknown signal type {row[0]!r} (md5, sha256, pdq)")
            value = row[1].strip().lower() if len(row) > 1 else ""
            want = 32 if st == "md5" else 64
            if len(value) != want or not _HEX.match(value):
                raise UsageError(f"{name}:{lineno}: {st} value must be {want} hex characters")
            self.add(bank, st, value, row[2].strip() if len(row) > 2 else "")

    def __len__(self) -> int:
        return sum(self.counts.values())

    def __call__(self, media: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for st in ("sha256", "md5"):
            v = media.get(st)
            if isinstance(v, str) and v:
                for bank, category in self._exact.get((st, v.strip().lower()), ()):
                    out.append({"bank": bank, "signal_type": st, "value": v.strip().lower(), "distance": 0,
                                "category": category})
        pdq = media.get("pdq")
        quality = media.get("pdq_quality")
        if (isinstance(pdq, str) and len(pdq) == 64 and _HEX.match(pdq) and self._pdq_hex
                and not (isinstance(quality, (int, float)) and quality < self.min_quality)):
            if self._pdq_words is None:
                self._pdq_words = pdq_to_words(self._pdq_hex)
            q = pdq_to_words([pdq.lower()])
            dist = popcount64(self._pdq_words ^ q).sum(axis=1)
            for i in np.nonzero(dist <= self.radius)[0]:
                bank, category = self._pdq_meta[int(i)]
                out.append({"bank": bank, "signal_type": "pdq", "value": self._pdq_hex[int(i)],
                            "distance": int(dist[i]), "category": category})
        return out

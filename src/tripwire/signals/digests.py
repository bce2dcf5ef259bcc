"""MD5, SHA-1 and SHA-256 in one pass: the exact-match keys every hash list uses."""

from __future__ import annotations

import hashlib
from typing import IO

from ..media.item import Item


def digest_bytes(data: bytes) -> dict[str, str]:
    return {
        "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def digest_file(path: str, chunk: int = 1 << 20) -> dict[str, str]:
    """Digest a file too large to hold in memory, in chunks."""
    with open(path, "rb") as fh:
        return digest_stream(fh, chunk)


def digest_stream(fh: IO[bytes], chunk: int = 1 << 20) -> dict[str, str]:
    """Digest a stream too large to hold in memory (a big object in object storage), in chunks."""
    hashers = [hashlib.md5(usedforsecurity=False), hashlib.sha1(usedforsecurity=False), hashlib.sha256()]
    while block := fh.read(chunk):
        for h in hashers:
            h.update(block)
    return dict(zip(("md5", "sha1", "sha256"), (h.hexdigest() for h in hashers)))


class DigestExtractor:
    name = "digests"
    version = "1"
    produces = ("md5", "sha1", "sha256")

    def extract(self, item: Item) -> dict[str, str]:
        if item.data is None:  # large files are digested by the source walker, not here
            return {}
        return digest_bytes(item.data)

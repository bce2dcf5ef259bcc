"""Hashing AI model files into every form generators write, for model banks (``tripwire bank add-model``).

A model file (safetensors, ckpt, pt, pth, bin) is read once, front to back, in 1 MiB chunks: nothing is
loaded as tensors and nothing is unpickled (a ``.ckpt``/``.pt``/``.bin`` is a pickle, and unpickling runs
code). One pass computes:

* **SHA-256** of the whole file (``model_sha256``; its first 10 hex are A1111's and Civitai's *AutoV2*);
* **AutoV3** for a safetensors file: SHA-256 of the bytes after the 8-byte little-endian header length and
  the header JSON (kohya-ss sd-scripts ``addnet_hash_safetensors``, which A1111 uses for ``Lora hashes``,
  first 12 hex). It is *not* a prefix of the file's SHA-256, so it is stored as its own value
  (``model_autov3``, all 64 hex; the 12-hex form matches it by prefix);
* **AutoV1**, A1111's legacy ``model hash``: SHA-256 of the 0x10000 bytes at offset 0x100000, first 8 hex
  (``sd_models.model_hash`` / sd-scripts ``model_hash``, implemented from that documented definition).
  A file no longer than 1 MiB has nothing in that window and would get SHA-256("")'s ``e3b0c442`` — the same
  for every small file, so no AutoV1 is recorded for it.

A file counts as safetensors when its header is plausible, whatever its name: a length of at most
:data:`MAX_HEADER` (100 MB, the safetensors format's own limit) that fits in the file, followed by ``{``.
The length is only compared, never used to allocate: a hostile header cannot make the hash read or hold
more than one chunk. A ``.safetensors`` file whose header is not plausible gets no AutoV3 and a warning.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .entries import RawEntry

if TYPE_CHECKING:
    from .store import BankStore

#: suffixes of the model files generators load
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
#: largest safetensors header accepted (the format's own cap)
MAX_HEADER = 100_000_000
AUTOV1_OFFSET = 0x100000
AUTOV1_SIZE = 0x10000
CHUNK = 1 << 20


class ModelFileError(Exception):
    """A file that cannot be hashed (missing, not a regular file, unreadable); the message says which."""


@dataclass
class ModelHashes:
    """Every hash form of one model file."""

    path: str
    name: str
    size: int
    #: "safetensors", "pickle-zip" (torch's zip container), "pickle" or "unknown" (from magic bytes)
    format: str
    sha256: str
    autov1: str | None = None
    #: full 64 hex (safetensors only)
    autov3: str | None = None
    metadata_name: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def autov2(self) -> str:
        return self.sha256[:10]

    def forms(self) -> dict[str, str]:
        """{form: value} as generators write them (short forms included)."""
        out = {"sha256": self.sha256, "autov2": self.autov2}
        if self.autov3:
            out["autov3"] = self.autov3[:12]
        if self.autov1:
            out["autov1"] = self.autov1
        return out

    def entries(self) -> list[tuple[str, str]]:
        """(signal type, value) of the bank entries for this file: one per hash function, full values."""
        out = [("model_sha256", self.sha256)]
        if self.autov3:
            out.append(("model_autov3", self.autov3))
        if self.autov1:
            out.append(("model_autov1", self.autov1))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "name": self.name, "size": self.size, "format": self.format,
                "sha256": self.sha256, "autov2": self.autov2, "autov3": self.autov3, "autov1": self.autov1,
                "metadata_name": self.metadata_name, "warnings": self.warnings}


def _safetensors_header(head: bytes, size: int) -> int | None:
    """The header length when ``head`` (the file's first bytes) starts a plausible safetensors file."""
    if len(head) < 9:
        return None
    n = int.from_bytes(head[:8], "little")
    if n < 2 or n > MAX_HEADER or 8 + n > size or head[8:9] != b"{":
        return None
    return n


def _format(head: bytes, header: int | None) -> str:
    if header is not None:
        return "safetensors"
    if head[:4] == b"PK\x03\x04":
        return "pickle-zip"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    return "unknown"


def _metadata_name(header: bytes) -> str | None:
    """``__metadata__`` ``name`` / ``ss_output_name`` of a safetensors header, when it is in the first chunk
    (read as JSON text only: a header is data, never code)."""
    import json

    try:
        meta = json.loads(header.decode("utf-8")).get("__metadata__")
    except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(meta, dict):
        return None
    for key in ("name", "ss_output_name", "modelspec.title"):
        if isinstance(meta.get(key), str) and meta[key].strip():
            return " ".join(meta[key].split())[:200]
    return None


def hash_model_file(path: str | Path, progress: Callable[[int], None] | None = None,
                    chunk: int = CHUNK) -> ModelHashes:
    """Every hash form of one file, in one streaming pass; ``progress(bytes)`` after each chunk."""
    p = Path(path)
    try:
        if not stat.S_ISREG(os.stat(p).st_mode):  # before opening: opening a FIFO would wait for a writer
            raise ModelFileError(f"{p}: not a regular file")
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ModelFileError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{p}: is a directory") from None
    except OSError as exc:
        raise ModelFileError(f"{p}: cannot open ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ModelFileError(f"{p}: not a regular file")
        size = st.st_size
        whole = hashlib.sha256()
        window = hashlib.sha256()
        data: Any = None  # AutoV3's hash, once the header is known
        header: int | None = None
        head = b""
        offset = 0
        try:
            while True:
                block = f.read(chunk)
                if not block:
                    break
                if offset == 0:
                    head = block[:4096]
                    header = _safetensors_header(block, size)
                    if header is not None:
                        data = hashlib.sha256()
                end = offset + len(block)
                whole.update(block)
                lo, hi = max(offset, AUTOV1_OFFSET), min(end, AUTOV1_OFFSET + AUTOV1_SIZE)
                if lo < hi:
                    window.update(block[lo - offset : hi - offset])
                if data is not None and header is not None and end > 8 + header:
                    data.update(block[max(0, 8 + header - offset):])
                offset = end
                if progress is not None:
                    progress(len(block))
        except OSError as exc:
            raise ModelFileError(f"{p}: read error after {offset:,} bytes ({exc.strerror or exc})") from None
    if offset != size:
        raise ModelFileError(f"{p}: changed while it was read ({size:,} bytes expected, {offset:,} read)")
    result = ModelHashes(path=str(p), name=p.name, size=size, format=_format(head, header),
                         sha256=whole.hexdigest(),
                         autov1=window.hexdigest()[:8] if size > AUTOV1_OFFSET else None,
                         autov3=data.hexdigest() if data is not None else None)
    if header is not None and header + 8 <= len(head):
        result.metadata_name = _metadata_name(head[8 : 8 + header])
    if p.suffix.lower() == ".safetensors" and header is None:
        result.warnings.append("named .safetensors but its header is not valid: no AutoV3")
    if p.suffix.lower() not in MODEL_SUFFIXES:
        result.warnings.append(f"unusual suffix {p.suffix or '(none)'!r} for a model file (hashed anyway)")
    if result.autov1 is None:
        result.warnings.append("1 MiB or smaller: no AutoV1 (its window would be empty)")
    return result


def model_bank_rows(hashes: ModelHashes, *, source_id: str, category: str | None = None,
                    notes: str | None = None) -> list[RawEntry]:
    """The bank entries of one file, as a reader would yield them (validated by the importer): one per hash
    function, sharing ``source_id`` so VICS and CSV exports keep them together."""
    return [RawEntry(f"{hashes.name} {t}", t, v, category=category, source_id=source_id, notes=notes)
            for t, v in hashes.entries()]


def source_ids(all_hashes: Iterable[ModelHashes]) -> list[str]:
    """A source id per file: its name, or its SHA-256 when the name is too long for the column or two
    different files share it."""
    items = list(all_hashes)
    by_name: dict[str, set[str]] = {}
    for h in items:
        by_name.setdefault(h.name, set()).add(h.sha256)
    return [h.name if len(h.name) <= 200 and len(by_name[h.name]) == 1 else h.sha256 for h in items]


@dataclass
class AddModelReport:
    bank: str
    files: list[ModelHashes] = field(default_factory=list)
    #: files that could not be hashed: {"path", "message"}
    errors: list[dict[str, str]] = field(default_factory=list)
    added: int = 0
    existing: int = 0
    tombstoned: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"bank": self.bank, "files": [h.as_dict() for h in self.files], "errors": self.errors,
                "added": self.added, "existing": self.existing, "tombstoned": self.tombstoned}


def add_model_files(store: "BankStore", bank: str, paths: Iterable[str | Path], *, category: str | None = None,
                    notes: str | None = None, progress: Callable[[int], None] | None = None,
                    on_file: Callable[[str], None] | None = None) -> AddModelReport:
    """Hash ``paths`` and add their entries to ``bank`` (which must exist). A file that cannot be read is
    reported in ``errors`` and the others are still added; a category or notes that the bank rejects is a
    ValueError before anything is read."""
    from .importer import normalise_entry

    info = store.get_bank(bank)
    normalise_entry(RawEntry("options", "model_sha256", "0" * 64, category=category, notes=notes), info)
    report = AddModelReport(info.name)
    for path in paths:
        if on_file is not None:
            on_file(str(path))
        try:
            report.files.append(hash_model_file(path, progress))
        except ModelFileError as exc:
            report.errors.append({"path": str(path), "message": str(exc)})
    rows = [normalise_entry(raw, info)
            for h, sid in zip(report.files, source_ids(report.files))
            for raw in model_bank_rows(h, source_id=sid, category=category, notes=notes)]
    result = store.add_entries(info.name, rows)
    report.added, report.existing, report.tombstoned = result.added, result.existing, result.tombstoned
    return report

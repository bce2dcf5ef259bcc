"""Preserved media for the review console: shown only when it exists, and every read is audited.

tripwire stores no media by default (../shared/SAFETY.md rule 6), so most items have none and the console
shows hashes and metadata instead. Media exists only where an operator opted in to evidence preservation:

* :class:`EvidenceMedia` reads through :class:`tripwire.evidence.EvidenceStore` (evidence preservation,
  ``[evidence]`` in the config), which decrypts and audits each read (``evidence.read``, or
  ``evidence.read_failed`` with the reason when the key is wrong or the file was altered);
* :class:`DirectoryMedia` reads a read-only folder of files named by their SHA-256 (``[service]
  media_dir``), for preserved content kept by other means; each read is an audit event ``media.view``.

Besides preserved content, a case's own files are shown from where the scan found them while they are
still there (:mod:`.casefiles`, ``[service] case_files``): read on the fly, audited like the others
(``media.view`` with source ``case-file``), never copied.

The console asks through :func:`media_for_item`; a file is only returned if its bytes still hash to the
item's SHA-256, so a swapped file is never shown under another item's name.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Protocol

from ..config import Limits
from ..media.sniff import SNIFF_BYTES, sniff
from ..review import audit
from ..signals.registry import registry
from ..store.db import Database
from ..store.models import ItemRow
from .casefiles import ItemFile, blurred_thumbnail, item_file, present, read_case_file

log = logging.getLogger(__name__)

#: media types the console will display (others: hashes and metadata only)
DISPLAYABLE = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/avif",
               "video/mp4", "video/webm")


class MediaSource(Protocol):
    """Where preserved content comes from."""

    name: str

    def available(self, sha256: str) -> bool:
        """Whether content with this SHA-256 is preserved (no read, no audit event)."""
        ...

    def read(self, sha256: str, actor: str) -> bytes | None:
        """The content, or None when none is preserved; the read is audited."""
        ...


class DirectoryMedia:
    """Preserved content in a folder, one file per content named by its lowercase SHA-256."""

    name = "directory"

    def __init__(self, root: str | Path, db: Database) -> None:
        self.root = Path(root)
        self.db = db

    def _path(self, sha256: str) -> Path | None:
        sha = registry.get("sha256").valid(sha256 or "")
        if sha is None:
            return None
        return self.root / sha

    def available(self, sha256: str) -> bool:
        path = self._path(sha256)
        return path is not None and path.is_file()

    def read(self, sha256: str, actor: str) -> bytes | None:
        path = self._path(sha256)
        if path is None or not path.is_file():
            return None
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256.lower():
            log.warning("preserved file %s does not match its SHA-256: not shown", path)
            return None
        with self.db.session() as s:
            audit.append(s, "media.view", actor, subject=f"sha256:{sha256.lower()}", data={"source": self.name, "bytes": len(data)})
        return data


class EvidenceMedia:
    """Preserved evidence (:class:`tripwire.evidence.EvidenceStore`): encrypted at rest, each read an audit
    event (``evidence.read``) committed before the bytes are used."""

    name = "evidence"

    def __init__(self, store: Any, db: Database) -> None:
        self.store = store
        self.db = db

    def available(self, sha256: str) -> bool:
        try:
            return bool(self.store.has(sha256))
        except Exception:
            return False

    def read(self, sha256: str, actor: str) -> bytes | None:
        from ..evidence import EvidenceError

        try:
            with self.db.session() as s:
                return self.store.read(s, sha256, actor, reason="review console")
        except EvidenceError as exc:  # purged, wrong key, tampered file: nothing is shown
            log.warning("evidence %s not shown: %s", sha256, exc)
            return None


def evidence_source(db: Database, config: Any) -> MediaSource | None:
    """The evidence store as a media source when evidence preservation is configured (``[evidence]`` or
    ``$TRIPWIRE_EVIDENCE_DIR``), else None."""
    import os

    sections = getattr(config, "sections", None) or {}
    if not sections.get("evidence") and not os.environ.get("TRIPWIRE_EVIDENCE_DIR"):
        return None
    try:
        from ..evidence import EvidenceError, EvidenceStore
    except ImportError:
        return None
    try:
        store = EvidenceStore.from_config(config)
    except EvidenceError as exc:
        log.warning("evidence store configured but not usable, the console shows no media: %s", exc)
        return None
    for warning in store.warnings:
        log.warning("%s", warning)
    return EvidenceMedia(store, db)


class MediaAccess:
    """What the console uses: which items have media, and the bytes for one item (audited).

    Preserved content (``sources``) comes first; with ``case_files`` (the scan's limits; ``[service]
    case_files``, on by default) an item without preserved content is read from the file it was scanned
    from, if still there and unchanged (:mod:`.casefiles`): nothing is copied or kept.
    """

    def __init__(self, db: Database, sources: list[MediaSource], case_files: Limits | None = None) -> None:
        self.db = db
        self.sources = sources
        self.case_files = case_files

    def _row(self, item_id: int) -> tuple[str | None, str | None, ItemFile | None]:
        with self.db.session() as s:
            row = s.get(ItemRow, item_id)
            if row is None:
                return None, None, None
            return row.sha256, row.media_type, item_file(row) if self.case_files is not None else None

    def has_media(self, item_id: int) -> bool:
        sha, media_type, found = self._row(item_id)
        if not sha or media_type not in DISPLAYABLE:
            return False
        return any(src.available(sha) for src in self.sources) or (found is not None and present(found))

    def media_for_item(self, item_id: int, actor: str) -> tuple[bytes, str] | None:
        """(bytes, media type) of the item's preserved content or case file, or None; only displayable types."""
        sha, media_type, found = self._row(item_id)
        if not sha or media_type not in DISPLAYABLE:
            return None
        data = next((d for d in (src.read(sha, actor) for src in self.sources) if d is not None), None)
        if data is None and found is not None and self.case_files is not None:
            data = read_case_file(found, self.case_files)
            if data is not None:
                with self.db.session() as s:
                    audit.append(s, "media.view", actor, subject=f"sha256:{sha.lower()}",
                                 data={"source": "case-file", "item": item_id, "bytes": len(data)})
        if data is None:
            return None
        sniffed = sniff(data[:SNIFF_BYTES])
        return (data, sniffed) if sniffed in DISPLAYABLE else None

    def thumbnail(self, item_id: int) -> bytes | None:
        """A greyscale, blurred thumbnail of the item's case file (:func:`.casefiles.blurred_thumbnail`), made
        now and kept nowhere; None without case files, for a file gone or changed, or not an image."""
        sha, media_type, found = self._row(item_id)
        if self.case_files is None or found is None or not (media_type or "").startswith("image/"):
            return None
        data = read_case_file(found, self.case_files)
        return blurred_thumbnail(data, self.case_files) if data is not None else None

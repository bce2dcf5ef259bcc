"""A case's own files, read again where the scan found them, for the case grid and the item page.

tripwire keeps no media (../shared/SAFETY.md rule 6). A hotline or an investigator reviewing a seized drive
still has the drive: the scan recorded each item's path (or archive member path), so the console can show
the picture *from there*, on the fly, for as long as the file is still there — nothing is copied, cached
or written. A file is only shown if its bytes still hash to the item's SHA-256: a file replaced since the
scan (or a path that names something else on the server) is never shown under the item's name.

Wellness first (rule 7): the grid's thumbnails are made greyscale (one channel) and blurred *on the server*
(:func:`blurred_thumbnail`), so an unblurred picture never reaches the browser from the grid, whatever the
page's CSS does; the full picture on the item page comes through the audited media route, concealed by
the page until a deliberate, audited reveal.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass

from ..config import Limits
from ..media.archive import read_member
from ..records import shown_path, stored_path
from ..store.models import ItemRow

#: longest side of a grid thumbnail, in pixels
THUMB_PX = 200
#: Gaussian blur radius applied to a thumbnail (pixels at THUMB_PX): shapes and tones stay, detail does not
THUMB_BLUR = 6.0


@dataclass(frozen=True)
class ItemFile:
    """Where an item's content was found: the file on disk and, for an archive member, its item path."""

    top: str
    path: str
    sha256: str


def item_file(row: ItemRow) -> ItemFile | None:
    """The file (or archive member) an item was read from, or None: no content digest, or not a scanned file
    (``tripwire scan`` records absolute paths; an upload's name is relative and never looked up on disk)."""
    if not row.sha256:
        return None
    full = stored_path(row.path, row.path_raw)
    if row.path == row.source_path:
        return ItemFile(full, full, row.sha256) if os.path.isabs(full) else None
    cut = full.find("!/")
    while cut > 0:  # the top-level file: the prefix whose display form is the recorded source
        if shown_path(full[:cut]) == row.source_path:
            return ItemFile(full[:cut], full, row.sha256) if os.path.isabs(full[:cut]) else None
        cut = full.find("!/", cut + 2)
    return None


def present(found: ItemFile) -> bool:
    """Whether the file is still there (no read: the grid asks this for a page of items)."""
    return os.path.isfile(found.top)


def read_case_file(found: ItemFile, limits: Limits) -> bytes | None:
    """The item's bytes from its file, if still there, no larger than ``limits.max_decode_bytes`` and still
    hashing to the item's SHA-256; else None."""
    try:
        if found.top == found.path:
            if os.path.getsize(found.top) > limits.max_decode_bytes:
                return None
            with open(found.top, "rb") as fh:
                data: bytes | None = fh.read(limits.max_decode_bytes + 1)
        else:
            data = read_member(found.top, found.path, limits)
    except OSError:
        return None
    if data is None or len(data) > limits.max_decode_bytes:
        return None
    return data if hashlib.sha256(data).hexdigest() == found.sha256.lower() else None


def blurred_thumbnail(data: bytes, limits: Limits, size: int = THUMB_PX, radius: float = THUMB_BLUR) -> bytes | None:
    """A greyscale (single-channel), blurred JPEG no larger than ``size`` on its longest side, or None when
    the bytes are not a decodable image. Decoded with the scan's caps (a huge image is decoded reduced)."""
    from PIL import ImageFilter

    from ..media.image import load_oriented
    from ..media.item import Item

    item = Item("thumbnail", data, len(data), limits)
    if not item.media_type.startswith("image/"):
        return None
    try:
        img = load_oriented(item, min_size=size).convert("L")
    except Exception:  # untrusted bytes: any decoder failure (ItemError, OSError, a bomb ...) means no thumbnail
        return None
    img.thumbnail((size, size))
    img = img.filter(ImageFilter.GaussianBlur(radius * max(img.size) / size))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=70)
    return out.getvalue()

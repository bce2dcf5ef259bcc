"""Stable error codes for per-item outcomes.

Every failure on one item becomes a recorded outcome with one of these codes, so that an analyst (or a
script reading items.jsonl) can filter and count failures without parsing messages. Codes never change
meaning once published; new ones may be added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import ItemErrorDict

#: code -> one-line explanation (documented in docs/schema.md)
ERROR_CODES: dict[str, str] = {
    "empty_file": "the file has zero bytes",
    "unreadable": "the file could not be read (permissions, I/O error, vanished)",
    "too_large": "the file or archive member is larger than the configured size cap",
    "decode_error": "the image is truncated or corrupt and could not be decoded",
    "decompression_bomb": "the image declares more pixels than the configured cap",
    "unsupported_media": "the media type is recognised but cannot be decoded here",
    "timeout": "processing the item exceeded the per-item time limit",
    "worker_crashed": "the worker process died while processing the item",
    "archive_error": "the archive is corrupt or could not be listed",
    "archive_bomb": "an archive member exceeds the compression-ratio or total-size caps",
    "archive_too_deep": "archives nested deeper than the configured depth",
    "unsafe_member_name": "an archive member name is absolute or escapes the archive with '..'",
    "symlink_outside_root": "a symbolic link points outside the scanned root and was not followed",
    "symlink_inside_root": "a symbolic link inside the scanned root: not followed; its target is recorded under its own path",
    "symlink_loop": "a symbolic link that loops (resolves to itself, or to a folder that contains it): not followed",
    "not_a_regular_file": "a device, socket or FIFO was skipped",
    "extractor_error": "an extractor failed unexpectedly on this item, or produced a fact it did not declare",
}


class ItemError(Exception):
    """A failure that belongs to one item: recorded with its code, never fatal for the batch."""

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    def as_dict(self) -> ItemErrorDict:
        return {"code": self.code, "message": self.message}


class UsageError(Exception):
    """A problem with how tripwire was invoked or configured: the command exits non-zero."""

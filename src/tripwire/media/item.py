"""The unit that flows through the pipeline: one file's bytes plus where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import Limits
from .sniff import sniff

if TYPE_CHECKING:
    from PIL import Image


@dataclass
class Item:
    """One file or archive member.

    ``path`` is the display path: a filesystem path, or ``outer.zip!/dir/inner.jpg`` for archive members
    (nested: ``a.zip!/b.tar!/c.png``). ``data`` holds the whole content; items above
    ``Limits.max_decode_bytes`` are digested from disk in chunks instead and carry ``data=None``.
    """

    path: str
    data: bytes | None
    size: int
    limits: Limits = field(default_factory=Limits)
    media_type: str = ""
    _decoded: "Image.Image | None" = field(default=None, repr=False)
    #: stored-grid and displayed-orientation RGB decodes by draft size, shared by the extractors that hash
    #: pixels (the displayed one is the stored one turned, not a second decode)
    _stored: "dict[int | None, Image.Image]" = field(default_factory=dict, repr=False)
    _oriented: "dict[int | None, Image.Image]" = field(default_factory=dict, repr=False)
    #: the bytes the decoder sees (metadata carriers removed, see pixelview.py) and the EXIF orientation
    _pixel_view: bytes | None = field(default=None, repr=False)
    _orientation: int | None = field(default=None, repr=False)
    #: the stored decode as a numpy array by draft size, and the 8 rotation/flip PDQ DCT blocks and the quality
    #: (signals.pdq.stored_array, dihedral_item)
    _stored_arrays: dict[int | None, Any] = field(default_factory=dict, repr=False)
    _pdq_passes: dict[int | None, tuple[dict[Any, Any], int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.media_type and self.data is not None:
            self.media_type = sniff(self.data[:512])

    def open_image(self) -> "Image.Image":
        """A fresh, lazily-decoded Pillow image (header parsed, limits checked, pixels not loaded)."""
        from .image import open_image

        return open_image(self)

    def decoded(self) -> "Image.Image":
        """The full-resolution decoded image, decoded once and shared by the extractors that need it.

        Raises ``ItemError("too_large")`` above ``limits.max_decode_pixels`` (the memory budget); the hashing
        path (:func:`tripwire.media.image.load_oriented`) decodes such images reduced instead.
        """
        if self._decoded is None:
            from .image import load_full

            self._decoded = load_full(self)
        return self._decoded

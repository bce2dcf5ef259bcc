"""Width and height as displayed (EXIF orientation applied), from the header alone."""

from __future__ import annotations

from ..media.image import orientation
from ..media.item import Item
from ..media.sniff import is_image


class ImageInfoExtractor:
    name = "image"
    version = "1"
    produces = ("width", "height")

    def extract(self, item: Item) -> dict[str, int | None]:
        if not is_image(item.media_type):
            return {}
        img = item.open_image()
        width, height = img.size
        if orientation(img) in (5, 6, 7, 8):  # rotated by 90 degrees one way or the other
            width, height = height, width
        return {"width": width, "height": height}

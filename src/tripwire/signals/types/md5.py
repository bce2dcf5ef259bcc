"""MD5 of the file's bytes (ThreatExchange's and HMA's ``video_md5``; also ``photo_md5`` in lists)."""

from __future__ import annotations

from .digest import DigestSignal


class Md5Signal(DigestSignal):
    name = "md5"
    aliases = ("hashmd5", "videomd5", "photomd5")
    te_name = "video_md5"
    te_class_path = "threatexchange.signal_type.md5:VideoMD5Signal"
    hma_name = "video_md5"
    hma_content_types = ("video",)
    display_name = "MD5"
    hex_length = 32
    inferable = True

"""SHA-256 of the file's bytes (ThreatExchange's ``video_sha256``). 64 hex, like PDQ: never inferred."""

from __future__ import annotations

from .digest import DigestSignal


class Sha256Signal(DigestSignal):
    name = "sha256"
    aliases = ("hashsha256", "videosha256", "photosha256")
    te_name = "video_sha256"
    te_class_path = "threatexchange.signal_type.sha256:VideoSHA256Signal"
    display_name = "SHA256"
    hex_length = 64

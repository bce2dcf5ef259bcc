"""SHA-1 of the file's bytes (IWF-style lists; ThreatExchange has no SHA-1 type)."""

from __future__ import annotations

from .digest import DigestSignal


class Sha1Signal(DigestSignal):
    name = "sha1"
    aliases = ("hashsha1",)
    display_name = "SHA1"
    hex_length = 40
    inferable = True

"""Types tripwire knows by name but cannot compute or match: kept verbatim so exports give them back."""

from __future__ import annotations

from .base import OpaqueSignal


class PhotoDnaSignal(OpaqueSignal):
    name = "photodna"
    aliases = ("pdna",)
    display_name = "PhotoDNA"


class TmkPdqfSignal(OpaqueSignal):
    name = "tmk_pdqf"
    aliases = ("tmkpdqf", "videotmkpdqf")
    display_name = "TMK+PDQF"

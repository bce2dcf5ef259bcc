"""Signal types a bank entry can hold, and how their values are normalised.

Hash lists arrive with every spelling of every name ("SHA-1", "HASH_MD5", "video_md5", "PhotoDNA") and
upper- or lower-case hex. Entries are stored under one canonical type name with the value normalised, so
that a value imported from VICS and the same value imported from a CSV are the same entry, and so that the
matcher can look digests up by plain equality.

Types tripwire can match are :data:`SUPPORTED` (``md5``, ``sha1``, ``sha256``, ``pdq``). Anything else
(PhotoDNA, TMK+PDQF, ...) is kept verbatim under a normalised type name and reported as unsupported: a
list is never silently shortened, and the values come back out on export.
"""

from __future__ import annotations

import re

#: signal type -> number of hex characters
HEX_LENGTHS: dict[str, int] = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64}
SUPPORTED: frozenset[str] = frozenset(HEX_LENGTHS)
#: digests matched by exact equality
EXACT_TYPES: tuple[str, ...] = ("md5", "sha1", "sha256")
#: longest value stored for any type (PhotoDNA as comma-separated decimals is ~600 characters)
MAX_VALUE_LENGTH = 1024

_ALIASES: dict[str, str] = {
    "md5": "md5",
    "hashmd5": "md5",
    "videomd5": "md5",
    "photomd5": "md5",
    "sha1": "sha1",
    "hashsha1": "sha1",
    "sha256": "sha256",
    "hashsha256": "sha256",
    "videosha256": "sha256",
    "photosha256": "sha256",
    "pdq": "pdq",
    "hashpdq": "pdq",
    "photopdq": "pdq",
    "photodna": "photodna",
    "pdna": "photodna",
    "tmkpdqf": "tmk_pdqf",
    "videotmkpdqf": "tmk_pdqf",
}

#: how unsupported-but-known types are spelled in VICS ``AlternativeHashes`` on export
DISPLAY_NAMES: dict[str, str] = {
    "md5": "MD5",
    "sha1": "SHA1",
    "sha256": "SHA256",
    "pdq": "PDQ",
    "photodna": "PhotoDNA",
    "tmk_pdqf": "TMK+PDQF",
}

_HEX = re.compile(r"^[0-9a-f]+$")
_TYPE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]{0,31}$")


def normalise_signal_type(name: str) -> str:
    """The canonical type for any common spelling; unknown names become lowercase snake case.

    >>> normalise_signal_type("SHA-1"), normalise_signal_type("HASH_PDQ"), normalise_signal_type("PhotoDNA")
    ('sha1', 'pdq', 'photodna')
    """
    raw = (name or "").strip()
    if not raw:
        raise ValueError("empty signal type")
    key = re.sub(r"[^a-z0-9]", "", raw.lower())
    if key in _ALIASES:
        return _ALIASES[key]
    snake = re.sub(r"[^a-z0-9]+", "_", raw.lower()).strip("_")
    if not snake or not _TYPE_NAME.match(snake):
        raise ValueError(f"invalid signal type {name!r}")
    return snake


def normalise_value(signal_type: str, value: str) -> str:
    """A validated value: lowercase hex of the right length for supported types, stripped text otherwise."""
    if value is None:
        raise ValueError("missing value")
    text = str(value).strip()
    if not text:
        raise ValueError("empty value")
    expected = HEX_LENGTHS.get(signal_type)
    if expected is None:
        if len(text) > MAX_VALUE_LENGTH:
            raise ValueError(f"{signal_type} value longer than {MAX_VALUE_LENGTH} characters")
        return text
    text = text.lower()
    if text.startswith("0x"):
        text = text[2:]
    if len(text) != expected or not _HEX.match(text):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise ValueError(f"{shown!r} is not a {signal_type} value ({expected} hex characters)")
    return text


def infer_signal_type(value: str) -> str:
    """Type of a bare hex digest from its length (32 md5, 40 sha1); 64 is ambiguous (sha256 or pdq)."""
    text = value.strip().lower()
    if not _HEX.match(text or "-"):
        raise ValueError(f"{value.strip()[:80]!r} is not a hex digest")
    if len(text) == 32:
        return "md5"
    if len(text) == 40:
        return "sha1"
    if len(text) == 64:
        raise AmbiguousSignalType(
            "a 64-character hex value may be SHA-256 or PDQ: pass the signal type explicitly"
        )
    raise ValueError(f"cannot infer the type of a {len(text)}-character hex value")


def display_name(signal_type: str) -> str:
    return DISPLAY_NAMES.get(signal_type, signal_type.upper())


class AmbiguousSignalType(ValueError):
    """The list's type cannot be inferred; the whole import needs an explicit ``--signal-type``."""

"""What a signal type is: its names, how its values are validated, compared, indexed, queried and computed.

Modelled on python-threatexchange's ``SignalType``: each kind of hash is one class, and everything that
depends on the kind (the spellings a hash list may use, the ThreatExchange/HMA/VICS names, hex validation,
the distance, the index, the values an item record offers for matching, the extractor that computes them)
is asked of that class through :mod:`tripwire.signals.registry`, never hard-coded by type name elsewhere.

``matching`` says how the matcher uses a type: ``"exact"`` (looked up by value), ``"distance"`` (searched
in an index within a radius) or None (kept verbatim in banks and exports, never matched: PhotoDNA).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from ..hamming import hamming_hex, hex_to_codes

if TYPE_CHECKING:
    import numpy as np

    from ...config import BankSettings, Config
    from ...extractor import Extractor

#: longest value stored for any type (PhotoDNA as comma-separated decimals is ~600 characters)
MAX_VALUE_LENGTH = 1024
_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class Query:
    """One value to look up: its type, which variant of the item it is, and its quality (None: unknown)."""

    signal_type: str
    value: str
    variant: str | None = None
    quality: int | None = None


class SignalType:
    """A kind of signal. Subclasses set the class attributes; instances are what the registry holds."""

    #: canonical name (the ``signal_type`` stored in banks and written in records)
    name: ClassVar[str]
    #: other spellings hash lists use; compared with case and punctuation removed ("HASH_MD5" -> "hashmd5")
    aliases: ClassVar[tuple[str, ...]] = ()
    #: python-threatexchange's name for the type (``VideoMD5Signal.get_name()``), None when TE has none
    te_name: ClassVar[str | None] = None
    #: ``module:Class`` of the python-threatexchange signal class, loaded on demand
    te_class_path: ClassVar[str | None] = None
    #: the name HMA clients use, when it differs from ``name`` (HMA's ``video_md5`` is our md5)
    hma_name: ClassVar[str | None] = None
    #: HMA content types (``photo``, ``video``) whose uploads the HMA routes hash with this type
    hma_content_types: ClassVar[tuple[str, ...]] = ()
    #: VICS ``HashName`` (``AlternativeHashes`` on export)
    display_name: ClassVar[str]
    #: "exact", "distance", or None (known but not matchable)
    matching: ClassVar[str | None] = None
    #: hex characters of a value; None: opaque text
    hex_length: ClassVar[int | None] = None
    #: a bare hex value of this length may be inferred to be this type (MD5, SHA-1)
    inferable: ClassVar[bool] = False
    #: default match radius (distance types)
    radius: ClassVar[int] = 0
    #: default quality floor for queries that carry a quality
    min_quality: ClassVar[int] = 0
    #: what a match by this type says: "media" (the item itself is in a bank) or "model" (the item names a
    #: banked model/LoRA in its metadata: a fact about how it was made, ranked and ruled on separately)
    describes: ClassVar[str] = "media"
    #: shorter lengths (hex characters) a value may have: a prefix of the full value (AutoV2 is the first 10
    #: hex of a file's SHA-256). A value of such a length matches every value it is a prefix of, and the
    #: reverse; :meth:`form` names the form a length stands for.
    prefix_lengths: ClassVar[tuple[int, ...]] = ()
    #: names of the forms by length (prefix types), e.g. {64: "SHA256", 10: "AutoV2"}
    forms: ClassVar[dict[int, str]] = {}
    #: a value holds several codes (vPDQ: one per frame), indexed as rows of one entry (:meth:`index_rows`)
    several_codes: ClassVar[bool] = False

    def __repr__(self) -> str:
        return f"<signal type {self.name}>"

    # -- values --------------------------------------------------------------------------------------------

    def normalise(self, value: Any) -> str:
        """A validated value: lowercase hex of the right length, or stripped text for opaque types."""
        if value is None:
            raise ValueError("missing value")
        text = str(value).strip()
        if not text:
            raise ValueError("empty value")
        if self.hex_length is None:
            if len(text) > MAX_VALUE_LENGTH:
                raise ValueError(f"{self.name} value longer than {MAX_VALUE_LENGTH} characters")
            return text
        text = text.lower()
        if text.startswith("0x"):
            text = text[2:]
        if (len(text) != self.hex_length and len(text) not in self.prefix_lengths) or not _HEX.match(text):
            shown = text if len(text) <= 80 else text[:77] + "..."
            lengths = " or ".join(str(n) for n in (self.hex_length, *self.prefix_lengths))
            raise ValueError(f"{shown!r} is not a {self.name} value ({lengths} hex characters)")
        return text

    # -- prefix forms (types with ``prefix_lengths``) -------------------------------------------------------

    def lookup_values(self, value: str) -> list[str]:
        """The values an exact look-up of ``value`` asks for: itself and its shorter forms (a full SHA-256
        also finds a bank entry that holds only its AutoV2 prefix)."""
        return [value] + [value[:n] for n in self.prefix_lengths if n < len(value)]

    def prefix_search(self, value: str) -> bool:
        """True when ``value`` is a short form: entries it is a prefix of must be found by a range look-up."""
        return bool(self.prefix_lengths) and self.hex_length is not None and len(value) < self.hex_length

    def same(self, query: str, entry: str) -> bool:
        """Does an entry value match a query value (equal, or one a registered prefix form of the other)?"""
        if query == entry or not self.prefix_lengths:
            return query == entry
        short, long = (query, entry) if len(query) < len(entry) else (entry, query)
        return len(short) in self.prefix_lengths and long.startswith(short)

    def form(self, value: str) -> str:
        """The name of the form a value of this length is (``AutoV2``); the display name otherwise."""
        return self.forms.get(len(value), self.display_name)

    def display_name_for(self, value: str) -> str:
        """The VICS ``HashName`` written for one value (a prefix type may name its short form)."""
        return self.display_name

    def valid(self, value: Any) -> str | None:
        """The normalised value, or None when ``value`` is not one (for values computed or sent by others)."""
        try:
            return self.normalise(value)
        except ValueError:
            return None

    def distance(self, a: str, b: str) -> int:
        """Bits that differ between two values (hex types); opaque values are 0 apart or 1."""
        if self.hex_length is None:
            return int(a != b)
        return hamming_hex(a, b)

    def codes(self, values: list[str]) -> "np.ndarray":
        """Values as an (n, bytes) uint8 array, what a distance index stores."""
        if self.hex_length is None:
            raise TypeError(f"{self.name} values are not bit strings")
        return hex_to_codes(values, self.hex_length // 2)

    def storage_key(self, value: str) -> str:
        """What a bank keys a value by (its ``bank_entries.value``): the value itself, or for a type whose
        values outgrow the key column (vPDQ) a digest of it, the value then being stored beside it."""
        return value

    # -- index rows (a value may hold several codes: vPDQ holds one per frame) --------------------------------

    def index_rows(self, ids: Sequence[int], values: Sequence[str]) -> "tuple[np.ndarray, np.ndarray]":
        """(index ids, codes) for the entries ``ids`` holding ``values``: one row per value here; a type whose
        value holds several codes gives a row per code, under ids :meth:`index_owner` maps back to entries."""
        import numpy as np

        return np.asarray(ids, dtype=np.int64), self.codes(list(values))

    def index_owner(self, index_ids: "np.ndarray") -> "np.ndarray":
        """The entry (or query row) each index id belongs to (identity when a value is one code)."""
        return index_ids

    # -- matching ------------------------------------------------------------------------------------------

    def index_class(self) -> type | None:
        """The candidate index for a distance type (constructed with the code width in bytes)."""
        if self.matching != "distance":
            return None
        from ..hamming_index import HammingIndex

        return HammingIndex

    def radius_for(self, bank: Any) -> int:
        """A bank's match radius for this type (only PDQ has a per-bank setting)."""
        return self.radius

    def min_quality_for(self, bank: Any) -> int:
        return self.min_quality

    def verify(self, query: Query, entry_value: str, bank: Any,
               settings: "BankSettings") -> tuple[int, dict[str, Any]] | None:
        """Does a candidate the index found match under ``bank``'s settings? (distance, fields the match adds)
        or None. By default: its distance is within the bank's radius; vPDQ compares whole videos."""
        d = self.distance(query.value, entry_value)
        return (d, {}) if d <= self.radius_for(bank) else None

    def queries(self, record: Mapping[str, Any], settings: "BankSettings") -> list[Query]:
        """The values an item record offers for matching: by default the record's field named after the type."""
        value = self.valid(record.get(self.name)) if record.get(self.name) else None
        if value is None or self.matching is None:
            return []
        return [Query(self.name, value, None if self.matching == "exact" else "original")]

    # -- import/export and computing ------------------------------------------------------------------------

    def te_class(self) -> Any:
        """python-threatexchange's signal class (validation and names of its file formats), or None."""
        if self.te_class_path is None:
            return None
        import importlib

        module, _, cls = self.te_class_path.partition(":")
        return getattr(importlib.import_module(module), cls)

    def extractor(self, config: "Config | None" = None) -> "Extractor | None":
        """The extractor that computes this type from an item (None: values only come from elsewhere)."""
        return None

    def extractors(self, config: "Config | None" = None) -> "list[Extractor]":
        """Every extractor whose facts :meth:`queries` reads (PDQ adds its rotation/flip variants)."""
        one = self.extractor(config)
        return [one] if one is not None else []


class OpaqueSignal(SignalType):
    """A type tripwire keeps but cannot match: values are stored verbatim and come back on export."""

    matching = None

    def __init__(self, name: str | None = None) -> None:
        if name is not None:  # an unknown type name met in a list, kept as it came
            self.name = name  # type: ignore[misc]
            self.display_name = name.upper()  # type: ignore[misc]

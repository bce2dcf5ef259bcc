"""What a list reader yields: an entry as found in the file, or an error at a position in it.

The readers (:mod:`.csv_lines`, :mod:`.te`, :mod:`.vics`, the trade hash lists) produce these and
:mod:`.importer` validates and stores them; keeping them here lets readers and importer depend on this
module instead of on each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class RawEntry:
    """One hash as a reader found it, before validation."""

    position: str
    signal_type: str | None
    value: Any
    category: Any = None
    #: the category is a VICS ``Category`` number (read through the bank's scheme mapping)
    vics_category: bool = False
    source_id: Any = None
    series: Any = None
    tags: Any = None
    notes: Any = None


@dataclass
class RowError:
    position: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"position": self.position, "message": self.message}

"""vPDQ, Meta's video hash: one PDQ hash a second (:mod:`tripwire.signals.vpdq`), matched as HMA matches it.

A value is python-threatexchange's ``VPDQSignal`` JSON (a list of ``"hex,quality,timestamp"`` frames), stored
in banks under the SHA-256 of its canonical form (:meth:`VpdqSignal.storage_key`; the JSON is too long for
the key column) with the JSON beside it.

**Index.** Every frame of every bank entry goes into one :class:`~tripwire.signals.index.PdqIndex` under
``entry_id << 20 | frame`` (:meth:`index_rows`; ``>> 20`` gives the entry back, :meth:`index_owner`), so a
query video's frames are searched together against millions of bank frames and only the entries that share
a frame within the radius are compared in full. The matcher saves this index beside PDQ's (``vpdq/``).

**Decision** (:meth:`verify`): threatexchange's brute comparison with the bank's PDQ radius (31) and quality
floor (50) applied to frames, and the ``[banks]`` percentages (``vpdq_query_match`` 80,
``vpdq_compared_match`` 0, per bank in ``[banks.vpdq_thresholds]``). A match names both percentages and
the time ranges of each video that matched.

**Frames against image banks.** A video also offers each distinct sampled frame as a PDQ query
(``variant`` ``frame@<seconds>``), so a known image inside a video is matched by the PDQ banks through the
same index as any image.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .base import Query, SignalType

if TYPE_CHECKING:
    import numpy as np

    from ...config import BankSettings, Config
    from ...extractor import Extractor
    from ..vpdq import PreparedFrames

#: bits of an index id that number the frame within its entry (entries hold at most 2**20 frames)
FRAME_BITS = 20
#: most distinct frames of one video offered to the image (PDQ) banks, evenly spread
MAX_FRAME_QUERIES = 3600


@lru_cache(maxsize=256)
def _prepared(value: str, quality: int) -> "PreparedFrames":
    """A value's frames ready for comparison (a query video is compared with many candidates)."""
    from ..vpdq import from_json, prepare

    return prepare(from_json(value), quality)


class _TeVpdq:
    """The two things tripwire's ThreatExchange formats ask of a TE signal class, for vPDQ: its name and its
    validation (``VPDQSignal`` itself imports Meta's compiled ``vpdq`` module, which may not be installed)."""

    @staticmethod
    def get_name() -> str:
        return "vpdq"

    @staticmethod
    def validate_signal_str(signal_str: str) -> str:
        from ..vpdq import from_json

        from_json(signal_str)
        return signal_str


class VpdqSignal(SignalType):
    name = "vpdq"
    aliases = ("videopdq", "hashvpdq")
    te_name = "vpdq"
    hma_name = "vpdq"
    hma_content_types = ("video",)
    display_name = "VPDQ"
    matching = "distance"
    radius = 31
    min_quality = 50
    several_codes = True

    # -- values --------------------------------------------------------------------------------------------

    def normalise(self, value: Any) -> str:
        """The canonical JSON (threatexchange's form); ValueError for anything ``VPDQSignal`` would refuse."""
        from ..vpdq import from_json, to_json

        if value is None or not str(value).strip():
            raise ValueError("empty value")
        features = from_json(str(value).strip())
        if not features:
            raise ValueError("a vPDQ value needs at least one frame")
        return to_json(features)

    def storage_key(self, value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()

    def distance(self, a: str, b: str) -> int:
        """The closest pair of frames, in bits (256 when either has no frame)."""
        from ..vpdq import compare

        found = compare(_prepared(a, 0), _prepared(b, 0), 256).best_distance
        return 256 if found is None else found

    def te_class(self) -> Any:
        return _TeVpdq

    # -- index -----------------------------------------------------------------------------------------------

    def index_class(self) -> type:
        from ..index import PdqIndex

        return PdqIndex

    def index_rows(self, ids: Sequence[int], values: Sequence[str]) -> "tuple[np.ndarray, np.ndarray]":
        """One row per distinct frame of each value (low-quality frames too: banks set their own floor)."""
        import numpy as np

        from ..hamming import hex_to_codes
        from ..vpdq import from_json

        out_ids: list[int] = []
        hexes: list[str] = []
        for entry_id, value in zip(ids, values):
            seen: set[str] = set()
            for f in from_json(value):
                if f.pdq_hex not in seen:
                    out_ids.append((int(entry_id) << FRAME_BITS) | len(seen))
                    seen.add(f.pdq_hex)
                    hexes.append(f.pdq_hex)
        return np.array(out_ids, dtype=np.int64), hex_to_codes(hexes)

    def index_owner(self, index_ids: "np.ndarray") -> "np.ndarray":
        import numpy as np

        return np.asarray(index_ids, dtype=np.int64) >> FRAME_BITS

    def radius_for(self, bank: Any) -> int:
        return int(bank.pdq_radius)

    def min_quality_for(self, bank: Any) -> int:
        return int(bank.min_quality)

    def verify(self, query: Query, entry_value: str, bank: Any,
               settings: "BankSettings") -> tuple[int, dict[str, Any]] | None:
        from ..vpdq import compare

        quality = self.min_quality_for(bank)
        found = compare(_prepared(query.value, quality), _prepared(entry_value, quality), self.radius_for(bank))
        query_match, compared_match = settings.vpdq_thresholds_for(bank.name)
        if not found.matches(query_match, compared_match) or found.best_distance is None:
            return None
        return found.best_distance, {
            "query_match_percent": round(found.query_match_percent, 2),
            "compared_match_percent": round(found.compared_match_percent, 2),
            "matched_ranges": found.query_ranges,
            "bank_ranges": found.compared_ranges,
        }

    # -- queries and computing ------------------------------------------------------------------------------

    def queries(self, record: Mapping[str, Any], settings: "BankSettings") -> list[Query]:
        """The whole video against vPDQ banks, and its distinct frames against PDQ (image) banks."""
        value = record.get(self.name)
        if not isinstance(value, str) or not value:
            return []
        from ..pdq_labels import UNLETTERBOX
        from ..vpdq import from_json

        try:
            features = from_json(value)
        except ValueError:
            return []
        if not features:
            return []
        out = [Query(self.name, self.normalise(value), "video")]
        trimmed = self.valid(record.get("vpdq_unletterbox")) if settings.unletterbox else None
        if trimmed is not None:
            out.append(Query(self.name, trimmed, UNLETTERBOX))
        seen: set[str] = set()
        frames = []
        for f in features:
            if f.pdq_hex not in seen:
                seen.add(f.pdq_hex)
                frames.append(f)
        step = max(1, -(-len(frames) // MAX_FRAME_QUERIES))
        out += [Query("pdq", f.pdq_hex, f"frame@{f.timestamp:g}", f.quality) for f in frames[::step]]
        return out

    def extractor(self, config: "Config | None" = None) -> "Extractor":
        from ..vpdq import VideoExtractor

        return VideoExtractor()

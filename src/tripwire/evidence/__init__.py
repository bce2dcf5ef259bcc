"""Evidence preservation: reported media kept encrypted, for a bounded time, with every access audited.

tripwire keeps no media by default (../shared/SAFETY.md, rule 6). When a policy or a reviewer opts in — and
US law requires it for reported material (18 U.S.C. 2258A(h), one year since the REPORT Act of 2024) — the
bytes go into an :class:`~tripwire.evidence.store.EvidenceStore`: AES-256-GCM encrypted at rest with a key
that lives outside the database, content-addressed by SHA-256, purged once retention ends unless a legal
hold stops it.
"""

from .store import EvidenceError, EvidenceInfo, EvidenceStore, PurgedEvidence

__all__ = ["EvidenceError", "EvidenceInfo", "EvidenceStore", "PurgedEvidence"]

"""Stages run in the scanning process after extraction, on each item record, before it is stored.

Extractors look at one item's bytes in a worker process and produce content-level facts. Stages add what
depends on state outside the item — the hash banks (matches) and the triage policy (priority) — and run in
the main process, where that state lives. A stage sets item-level record fields; the store keeps them in
``items.stage_data`` (and ``items.priority``), so they can differ between two paths of the same content.
The policy runs after these stages (:class:`~tripwire.policy.stage.PolicyStage`, held by the pipeline
because it also reads the upload's context).
"""

from __future__ import annotations

from typing import Any, Protocol

from ..config import Config
from ..records import ItemRecord


class Stage(Protocol):
    name: str

    def apply(self, record: ItemRecord) -> None:
        """Add item-level fields to ``record`` in place (e.g. ``matches``, ``priority``)."""
        ...


def default_stages(config: Config, db: Any | None = None) -> list[Stage]:
    """Stages every scan runs, in order: matching first, then triage (which reads the matches)."""
    from ..match.cluster import ClusterStage
    from ..match.matcher import match_stage
    from ..policy.priority import PriorityStage

    stages: list[Stage] = [match_stage(config, db), ClusterStage(), PriorityStage(config)]
    return stages

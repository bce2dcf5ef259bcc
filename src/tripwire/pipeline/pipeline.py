"""One pipeline for every front: source -> items -> extractors -> matcher -> policy -> actions -> store.

``tripwire scan`` (:mod:`.scan`, extraction in a pool of worker processes), ``tripwire inspect``
(:mod:`.inspect`, one file in this process, nothing stored) and ``POST /v1/scan``
(:mod:`tripwire.service.scanning`, uploads in service threads) all build a :class:`Pipeline` and differ only
in where the items come from and how extraction is scheduled, so the three produce the same records,
the same policy outcomes and the same review-queue entries for the same file.

The pipeline has two halves. The *extraction* half (:class:`~.worker.SourceProcessor` running the
extractors) needs only the item's bytes and runs wherever is convenient (a worker process, a thread). The
*stage* half (:meth:`Pipeline.finish`: flatten, match, cluster, priority, policy) needs the banks and runs
in the process that owns the database, as does :meth:`Pipeline.store` (items, sources and the actions in
one transaction).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from sqlalchemy.orm import Session

from ..config import Config
from ..extractor import Extractor
from ..policy.policy import Policy
from ..policy.stage import BankScheme, PolicyStage, configured_policy
from ..records import ItemRecord, RawRecord, from_worker
from ..store.db import Database
from ..store.queries import item_ids, write_sources
from .actions import queue_items, wants_review
from .extractors import check_declarations, default_extractors
from .stages import Stage, default_stages
from .worker import Message, SourceProcessor, Task

#: (raw worker record, flat item record, the fields the stages added): what the store writes per item
Row = tuple[RawRecord, ItemRecord, dict[str, Any]]
#: finished sources with their rows, committed together
Batch = list[tuple[str, list[Row]]]


class Pipeline:
    """The extractors, the stages and the policy of one scan front; checked when built."""

    def __init__(self, config: Config, stages: Sequence[Stage], policy: PolicyStage,
                 extractors: Callable[[], Sequence[Extractor]] | None = None) -> None:
        """``extractors`` makes the extractor set for one extraction half (default: :func:`default_extractors`);
        each thread or worker gets its own instances, as extractors keep per-process state (a model session)."""
        self.config = config
        self._new_extractors = extractors or (lambda: default_extractors(config))
        self.extractors = list(self._new_extractors())
        check_declarations(self.extractors)  # a fact key claimed twice fails here, before any file is read
        self.stages = list(stages)
        self.policy = policy

    @classmethod
    def from_config(cls, config: Config, db: Database | None = None, policy: Policy | None = None) -> "Pipeline":
        """The default pipeline: default extractors and stages (banks from ``db``), ``policy`` or the configured one."""
        stages = default_stages(config, db)
        return cls(config, stages, PolicyStage(policy or configured_policy(config), bank_scheme_of(stages)))

    # -- extraction half ---------------------------------------------------------------------------------

    def processor(self) -> SourceProcessor:
        """An extraction half with its own extractor instances (one per thread: it is not thread-safe)."""
        return SourceProcessor(self.config, list(self._new_extractors()))

    def extract(self, path: str, processor: SourceProcessor | None = None) -> list[RawRecord]:
        """Raw records of one file in this process (several for an archive), in the order produced."""
        raws: list[RawRecord] = []

        def send(message: Message) -> None:
            if message[0] == "record":
                raws.append(message[2])

        (processor or self.processor()).process(Task(0, path), send)
        return raws

    # -- stage half --------------------------------------------------------------------------------------

    def finish(self, raws: Sequence[RawRecord], context: Mapping[str, Any] | None = None) -> list[Row]:
        """Flatten each raw record, run the stages and the policy; ``context`` is the upload's context."""
        rows: list[Row] = []
        for raw in raws:
            flat = from_worker(raw)
            before = set(flat)
            for stage in self.stages:
                stage.apply(flat)
            self.policy.apply(flat, context)
            rows.append((raw, flat, {k: v for k, v in flat.items() if k not in before}))
        return rows

    def store(self, db: Database, case_id: int, batch: Batch,
              then: Callable[[Session, dict[str, int]], None] | None = None) -> dict[str, int]:
        """Items, their sources' done-markers and the actions (review-queue entries) in ONE transaction.

        ``then(session, ids)`` adds the caller's own rows in that transaction; ``ids`` (path -> item id) then
        covers every item of the batch, otherwise only the queued ones. Returns ``ids``.
        """
        records = [flat for _, rows in batch for _, flat, _ in rows]
        ids: dict[str, int] = {}

        def actions(s: Session) -> None:
            wanted = records if then is not None else [r for r in records if wants_review(r)]
            if wanted:
                ids.update(item_ids(s, case_id, (r["path"] for r in wanted)))
            queue_items(s, records, ids)
            if then is not None:
                then(s, ids)

        write_sources(db, case_id, batch, then=actions)
        return ids


def by_depth(record: ItemRecord) -> tuple[int, str]:
    """Sort key: an archive before its members, then by path (how inspect and the API list records)."""
    return (record["path"].count("!/"), record["path"])


def bank_scheme_of(stages: Sequence[Stage]) -> BankScheme:
    """A bank's category scheme as the match stage's matcher knows it (banks may change while serving)."""
    matcher = next((getattr(s, "matcher", None) for s in stages if getattr(s, "matcher", None) is not None), None)

    def scheme(bank: str) -> str | None:
        if matcher is None:
            return None
        return next((b.category_scheme for b in matcher.banks.values() if b.name == bank), None)

    return scheme

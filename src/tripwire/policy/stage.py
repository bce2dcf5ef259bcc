"""The policy as a pipeline stage: every record gets ``policy`` = ``{action, queue, rule, reason}``.

It runs last among the stages (it reads the matches, the provenance verdict and the triage priority), in
``tripwire scan``, ``tripwire inspect`` and ``POST /v1/scan`` alike, so all three recommend the same action
for the same file. Which policy: the one the caller passes (the service's ``--policy``), else the file
named by ``[service] policy`` in the config, else the shipped ``default_policy.toml``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..config import Config
from ..records import ItemRecord
from .policy import Policy

BankScheme = Callable[[str], "str | None"]


def configured_policy(config: Config | None) -> Policy:
    """The policy named by ``[service] policy`` (the setting ``tripwire serve`` reads), or the default."""
    sections = (config.sections if config is not None else None) or {}
    path = (sections.get("service") or {}).get("policy")
    return Policy.load(path or None)


class PolicyStage:
    """Sets ``record["policy"]``; ``bank_scheme(bank)`` names a bank's category scheme (``vics``, ``uk``)."""

    name = "policy"

    def __init__(self, policy: Policy, bank_scheme: BankScheme | None = None) -> None:
        self.policy = policy
        self.bank_scheme = bank_scheme

    def apply(self, record: ItemRecord, context: Mapping[str, Any] | None = None) -> None:
        """``context``: where the item came from (an upload's platform); the ``platform`` condition reads it."""
        outcome = self.policy.evaluate(record, context or None, self.bank_scheme)
        record["policy"] = outcome.as_dict()

"""Policy: rules that turn extracted facts into decisions an analyst acts on (triage priority, actions)."""

from .priority import DEFAULT_WEIGHTS, PriorityStage, prioritise
from .stage import PolicyStage

__all__ = ["DEFAULT_WEIGHTS", "PolicyStage", "PriorityStage", "prioritise"]

"""Policy: rules that turn extracted facts into decisions an analyst acts on (triage priority first)."""

from .priority import DEFAULT_WEIGHTS, PriorityStage, prioritise

__all__ = ["DEFAULT_WEIGHTS", "PriorityStage", "prioritise"]

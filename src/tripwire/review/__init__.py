"""Human review: the context an item arrived with, reviewers' decisions, and the tamper-evident audit trail."""

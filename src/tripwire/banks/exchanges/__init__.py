"""Exchanges: banks that keep themselves current from ThreatExchange, NCMEC, StopNCII and hash-list files.

Fetching goes through python-threatexchange's own ``SignalExchangeAPI`` implementations (their clients,
pagination and checkpoints); this package stores what they deliver. Each page of updates, the source records
it came from and the checkpoint after it commit in one transaction, so a killed fetch resumes from the last
committed page with nothing lost and nothing twice (``fetch.py``). Audit events and re-matching of stored
items are layered on top by :mod:`tripwire.pipeline.exchanges` (this layer may not import them).
"""

"""Hash banks: lists of known content (hotline lists, a platform's own decisions, allow-lists).

:mod:`.store` holds banks and entries in the case database, :mod:`.importer` streams lists in
(VICS JSON, CSV, plain lists, ThreatExchange/HMA), :mod:`.exporter` streams them out, and
:mod:`.categories` maps the grading schemes (VICS US, UK A/B/C, NCMEC industry A1-B2).
"""

from .store import BankError, BankInfo, BankStore, BankSummary, EntryRow

__all__ = ["BankError", "BankInfo", "BankStore", "BankSummary", "EntryRow"]

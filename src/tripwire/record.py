"""TO BE DELETED AT MERGE: the old name of :mod:`tripwire.records`, kept only until report/reviewed.py,
report/writer.py and service/reviewing.py (owned by another helper) import ``tripwire.records``."""

from .records import Record, flatten, from_worker, ordered  # noqa: F401

"""What the evidence tests share: a database with an evidence store under a fixed test key, and audit events."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tripwire.evidence.store import EvidenceStore
from tripwire.review.models import AuditEvent
from tripwire.store.db import open_db

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


@pytest.fixture
def env(db_url, tmp_path):
    db = open_db(db_url)
    store = EvidenceStore(tmp_path / "evidence", KEY)
    yield db, store
    db.dispose()


def events(db, kind):
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.seq)))

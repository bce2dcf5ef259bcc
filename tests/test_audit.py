"""The hash-chained audit trail: appends chain, and any edit, deletion or reordering is caught."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update

from tripwire.review import audit
from tripwire.review.models import AuditEvent
from tripwire.store.db import open_db


@pytest.fixture
def db(db_url):
    database = open_db(db_url)
    with database.session() as s:
        for i in range(5):
            audit.append(s, "decision", f"reviewer-{i % 2}", subject=f"item:{i}", data={"decision": "not_abuse", "n": i})
    yield database
    database.dispose()


def _verify(db):
    with db.session() as s:
        return audit.verify(s)


def test_chain_verifies(db):
    result = _verify(db)
    assert result.ok and result.events == 5 and len(result.head) == 64


def test_edited_event_is_caught(db):
    with db.session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(actor="someone-else"))
    result = _verify(db)
    assert not result.ok and result.first_bad_seq == 3 and "edited" in result.problem


def test_deleted_event_is_caught(db):
    with db.session() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.seq == 2))
    result = _verify(db)
    assert not result.ok and result.first_bad_seq == 2


def test_truncated_tail_is_caught(db):
    with db.session() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.seq == 5))
    result = _verify(db)
    assert not result.ok and "removed from the end" in result.problem


def test_reordered_events_are_caught(db):
    with db.session() as s:  # swap the sequence numbers of events 2 and 4
        s.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(seq=-2))
        s.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(seq=2))
        s.execute(update(AuditEvent).where(AuditEvent.seq == -2).values(seq=4))
    result = _verify(db)
    assert not result.ok and result.first_bad_seq == 2


def test_rolled_back_action_leaves_no_event(db):
    with pytest.raises(RuntimeError):
        with db.session() as s:
            audit.append(s, "bank.add", "admin", data={})
            raise RuntimeError("the action failed")
    assert _verify(db).events == 5
    with db.session() as s:
        audit.append(s, "bank.add", "admin", data={"ok": True})
    assert _verify(db).ok and _verify(db).events == 6

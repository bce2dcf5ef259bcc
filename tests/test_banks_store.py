"""Banks and entries in the database, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tripwire.banks.models import BankChange
from tripwire.banks.store import BankError, BankStore
from tripwire.store.db import open_db

MD5 = ["%032x" % (0xD1CE + i) for i in range(20)]
PDQ = ["%064x" % ((0xABC << 240) + 31 * i) for i in range(20)]


@pytest.fixture
def db(db_url):
    database = open_db(db_url)
    yield database
    database.dispose()


def test_create_update_list_delete(db):
    store = BankStore(db)
    bank = store.create_bank("hotline", source="unit test", description="d", negative=False)
    assert (bank.pdq_radius, bank.min_quality, bank.enabled, bank.category_scheme) == (31, 50, True, "vics")
    with pytest.raises(BankError, match="already exists"):
        store.create_bank("hotline")
    with pytest.raises(BankError, match="radius"):
        store.create_bank("x", pdq_radius=300)
    with pytest.raises(BankError, match="scheme"):
        store.create_bank("x", category_scheme="nope")
    allow = store.create_bank("allow", negative=True, pdq_radius=10, min_quality=70)
    assert allow.negative and allow.pdq_radius == 10 and allow.min_quality == 70

    store.add_entries("hotline", [{"signal_type": "md5", "value": v, "category": "1"} for v in MD5[:5]]
                      + [{"signal_type": "pdq", "value": v} for v in PDQ[:3]]
                      + [{"signal_type": "photodna", "value": "QUJD"}])
    store.remove_entries("hotline", values=[MD5[0]])
    summary = {s.bank.name: s for s in store.list_banks()}
    assert summary["hotline"].counts == {"md5": 4, "pdq": 3, "photodna": 1}
    assert summary["hotline"].removed == 1 and summary["hotline"].unsupported == {"photodna": 1}
    assert summary["allow"].active == 0

    updated = store.update_bank("hotline", pdq_radius=20, enabled=False, name="hotline-2")
    assert (updated.name, updated.pdq_radius, updated.enabled) == ("hotline-2", 20, False)
    with pytest.raises(BankError, match="categorised entries"):
        store.update_bank("hotline-2", category_scheme="uk")
    store.update_bank("allow", category_scheme="ncmec")  # no categorised entries yet: allowed
    with pytest.raises(BankError, match="no bank named 'hotline'"):
        store.get_bank("hotline")

    assert store.delete_bank("hotline-2") == 9
    assert [b.name for b in store.banks()] == ["allow"]
    with db.session() as s:
        assert s.scalars(select(BankChange.op).order_by(BankChange.id)).all() == ["remove", "drop"]


def test_batches_are_idempotent(db):
    store = BankStore(db)
    bank = store.create_bank("b")
    rows = [{"signal_type": "pdq", "value": v} for v in PDQ[:4]] + [{"signal_type": "md5", "value": MD5[0]}]
    first = store.insert_batch(bank.id, rows)
    assert first.added == 5
    again = store.insert_batch(bank.id, rows + [{"signal_type": "md5", "value": MD5[0]}])
    assert (again.added, again.existing, again.tombstoned) == (0, 6, 0)
    store.remove_entries("b", values=[PDQ[0], PDQ[1]])
    third = store.insert_batch(bank.id, rows + [{"signal_type": "md5", "value": MD5[1]}])
    assert (third.added, third.existing, third.tombstoned) == (1, 3, 2)
    # the same value in another bank is another entry
    other = store.create_bank("other")
    assert store.insert_batch(other.id, rows[:1]).added == 1
    assert len(store.find(PDQ[0], include_removed=True)) == 2 and len(store.find(PDQ[0])) == 1


def test_remove_and_restore_log_changes(db):
    store = BankStore(db)
    store.create_bank("b")
    store.add_entries("b", [{"signal_type": "md5", "value": v} for v in MD5[:6]])
    ids = [e.id for e in store.iter_entries("b", order="id")]
    assert store.remove_entries("b", ids=ids[:2], reason="reviewed") == 2
    assert store.remove_entries("b", ids=ids[:2]) == 0  # already removed
    assert store.remove_entries("b", values=[MD5[5].upper()]) == 1  # values are normalised
    assert len(list(store.iter_entries("b"))) == 3
    assert store.restore_entries("b", ids=[ids[0]]) == 1
    active = {e.id for e in store.iter_entries("b")}
    assert ids[0] in active and ids[1] not in active
    assert store.find(MD5[1]) == [] and store.find(MD5[1], include_removed=True)[0].removed_reason == "reviewed"
    with db.session() as s:
        log = s.execute(select(BankChange.op, BankChange.entry_id).order_by(BankChange.id)).all()
    assert [op for op, _ in log] == ["remove", "remove", "remove", "restore"]
    assert log[-1][1] == ids[0]
    with pytest.raises(BankError):
        store.remove_entries("b")


def test_entries_stream_grouped_by_source(db):
    store = BankStore(db)
    store.create_bank("b")
    store.add_entries("b", [{"signal_type": "md5", "value": MD5[0], "source_id": "2"},
                            {"signal_type": "md5", "value": MD5[1]},
                            {"signal_type": "md5", "value": MD5[2], "source_id": "1"},
                            {"signal_type": "pdq", "value": PDQ[0], "source_id": "2", "tags": ["alpha"]}])
    order = [(e.source_id, e.value) for e in store.iter_entries("b", chunk=2)]
    assert order == [("1", MD5[2]), ("2", MD5[0]), ("2", PDQ[0]), (None, MD5[1])]
    tagged = [e for e in store.iter_entries("b") if e.signal_type == "pdq"][0]
    assert tagged.tags == ("alpha",)


def test_migration_downgrades_and_upgrades(db):
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import inspect

    from tripwire.store.db import MIGRATIONS

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert "banks" not in inspect(db.engine).get_table_names()
    db.migrate()
    tables = set(inspect(db.engine).get_table_names())
    assert {"banks", "bank_entries", "bank_changes"} <= tables
    BankStore(db).create_bank("works-again")

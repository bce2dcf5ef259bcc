"""The matcher's cached mode (what ``tripwire serve`` uses): look-ups answered from memory, with no database
query for a miss or for a hit seen before, and bank changes made elsewhere seen at the next refresh.

Values are random hex stand-ins for hashes; nothing here is derived from any image.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import event

from tripwire.banks.store import BankStore
from tripwire.match.lookup import parse_query
from tripwire.match.matcher import Matcher
from tripwire.store.db import open_db


def _hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


@pytest.fixture
def bank(tmp_path):
    db = open_db(f"sqlite:///{tmp_path / 'c.db'}")
    rng = random.Random(7)
    md5s = [_hex(rng, 128) for _ in range(200)]
    pdqs = [_hex(rng, 256) for _ in range(200)]
    store = BankStore(db)
    store.create_bank("hot", category_scheme="none")
    store.add_entries("hot", [{"signal_type": "md5", "value": v} for v in md5s]
                      + [{"signal_type": "pdq", "value": v} for v in pdqs])
    yield db, store, md5s, pdqs
    db.dispose()


class QueryCounter:
    def __init__(self, db) -> None:
        self.n = 0
        event.listen(db.engine, "before_cursor_execute", self._count)

    def _count(self, *_args) -> None:
        self.n += 1


def _near(value: str, bits: int = 3) -> str:
    n = int(value, 16)
    for b in range(bits):
        n ^= 1 << (17 * b + 5)
    return f"{n:064x}"


def test_cached_answers_equal_the_database_answers_and_misses_query_nothing(bank, tmp_path):
    db, store, md5s, pdqs = bank
    plain = Matcher(db, None, refresh_interval=3600)
    cached = Matcher(db, None, refresh_interval=3600)
    cached.enable_cache()
    plain.open()
    cached.open()
    rng = random.Random(3)
    queries = ([parse_query("md5", v) for v in md5s[:20]] + [parse_query("pdq", _near(v)) for v in pdqs[:20]]
               + [parse_query("md5", _hex(rng, 128)) for _ in range(30)]
               + [parse_query("pdq", _hex(rng, 256)) for _ in range(30)])
    expected = plain.lookup_many(queries)
    misses = queries[40:]
    expected_misses = plain.lookup_many(misses)
    assert sum(bool(r["matches"]) for r in expected) == 40
    results, missing = cached.lookup_from_memory(queries)
    assert results is None and len(missing) == 40  # first sight of the 40 matching entries
    cached.load_rows(missing)
    counter = QueryCounter(db)
    results, missing = cached.lookup_from_memory(queries)
    assert missing == [] and results == expected
    assert cached.lookup_from_memory(misses)[0] == expected_misses
    assert counter.n == 0, "a cached look-up must not query the database"
    assert cached.lookup_many(queries) == expected
    # not in cached mode: nothing from memory
    assert plain.lookup_from_memory(queries) == (None, [])


def test_changes_made_elsewhere_are_seen_at_the_next_refresh(bank):
    db, store, md5s, pdqs = bank
    cached = Matcher(db, None, refresh_interval=3600)
    cached.enable_cache()
    cached.open()
    q_md5, q_pdq = parse_query("md5", md5s[0]), parse_query("pdq", _near(pdqs[0]))
    assert all(r["matches"] for r in cached.lookup_many([q_md5, q_pdq]))
    # another process removes both entries and adds a new value
    store.remove_entries("hot", values=[md5s[0], pdqs[0]], reason="test")
    new = "ab" * 16
    store.add_entries("hot", [{"signal_type": "md5", "value": new}])
    q_new = parse_query("md5", new)
    cached.refresh(force=True)
    results, missing = cached.lookup_from_memory([q_md5, q_pdq, q_new])
    if results is None:
        cached.load_rows(missing)
        results, missing = cached.lookup_from_memory([q_md5, q_pdq, q_new])
    assert [bool(r["matches"]) for r in results] == [False, False, True]
    store.restore_entries("hot", values=[md5s[0]])
    cached.refresh(force=True)
    assert [bool(r["matches"]) for r in cached.lookup_many([q_md5, q_pdq])] == [True, False]
    # a dropped bank rebuilds the memory
    store.delete_bank("hot")
    cached.refresh(force=True)
    assert not any(r["matches"] for r in cached.lookup_many([q_md5, q_new]))


def test_a_row_read_before_a_removal_is_not_cached_after_it(bank):
    """A reader fetches an entry's row, the entry is removed and a refresh drops it from the cache, and only
    then does the reader store what it read: that stale row must not stay cached."""
    db, store, md5s, _ = bank
    cached = Matcher(db, None, refresh_interval=3600)
    cached.enable_cache()
    cached.open()
    q = parse_query("md5", md5s[1])
    fired = []

    def remove_meanwhile(conn, cursor, statement, *_args) -> None:
        if not fired and "bank_entries" in statement and "removed_reason" not in statement and " IN " in statement:
            fired.append(True)
            store.remove_entries("hot", values=[md5s[1]], reason="test")
            cached.refresh(force=True)

    results, missing = cached.lookup_from_memory([q])
    assert results is None and missing
    event.listen(db.engine, "after_cursor_execute", remove_meanwhile)
    cached.load_rows(missing)  # reads the row (active at the time), then the removal lands
    event.remove(db.engine, "after_cursor_execute", remove_meanwhile)
    assert fired
    results, missing = cached.lookup_from_memory([q])
    assert results is None and missing, "the row read before the removal was cached"
    assert not cached.lookup_many([q])[0]["matches"]


def test_a_first_sight_hit_searches_the_index_once(bank, monkeypatch):
    """The service asks from memory, reads the rows it lacks, and asks again: the second ask reuses the first
    one's index answers (``searched``) instead of searching the whole index a second time."""
    db, store, md5s, pdqs = bank
    cached = Matcher(db, None, refresh_interval=3600)
    cached.enable_cache()
    cached.open()
    index = cached.indexes["pdq"]
    searches = []
    real = type(index).search
    monkeypatch.setattr(type(index), "search", lambda self, *a, **k: searches.append(1) or real(self, *a, **k))
    queries = [parse_query("pdq", _near(v)) for v in pdqs[:5]] + [parse_query("md5", md5s[0])]
    searched: dict = {}
    results, missing = cached.lookup_from_memory(queries, searched=searched)
    assert results is None and len(missing) == 6
    cached.load_rows(missing)
    results, missing = cached.lookup_from_memory(queries, searched=searched)
    assert missing == [] and all(r["matches"] for r in results)
    assert [m["distance"] for r in results[:5] for m in r["matches"]] == [3] * 5
    assert len(searches) == 1

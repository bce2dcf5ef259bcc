"""A signal type defined here, outside tripwire, is imported into a bank and matched by a real scan.

The toy type is a 64-bit difference hash (one bit per horizontally adjacent pixel pair of a 9x8 grey
thumbnail). Adding it takes its class, its extractor and one ``registry.register`` line; naming it in
``[signals] types`` lets the scan's worker processes (fresh interpreters) register it as well.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tripwire.banks.importer import import_file
from tripwire.banks.store import BankStore
from tripwire.config import Config
from tripwire.media.image import load_oriented
from tripwire.media.item import Item
from tripwire.media.sniff import is_image
from tripwire.pipeline.scan import run_scan
from tripwire.signals.registry import registry
from tripwire.signals.types.base import SignalType
from tripwire.store.db import open_db


class ToyExtractor:
    name = "toy_dhash"
    version = "1"
    produces = ("toy",)

    def extract(self, item: Item) -> dict[str, str]:
        if not is_image(item.media_type):
            return {}
        grey = np.asarray(load_oriented(item, min_size=64).convert("L").resize((9, 8)), dtype=np.int16)
        bits = (grey[:, 1:] > grey[:, :-1]).flatten()
        return {"toy": np.packbits(bits.astype(np.uint8)).tobytes().hex()}


class ToySignal(SignalType):
    name = "toy"
    display_name = "TOY"
    matching = "distance"
    hex_length = 16
    radius = 4

    def extractor(self, config=None):
        return ToyExtractor()


@pytest.fixture
def toy():
    registry.register(ToySignal)
    yield Config(sections={"signals": {"types": [f"{__name__}:ToySignal"]}})
    registry.unregister("toy")


def toy_hash(path) -> str:
    data = path.read_bytes()
    return ToyExtractor().extract(Item(str(path), data, len(data)))["toy"]


def test_a_registered_type_is_imported_and_matched_by_a_scan(tmp_path, fixtures, toy):
    known, other = fixtures / "camera" / "gps" / "DSCN0010.jpg", fixtures / "camera" / "gps" / "DSCN0012.jpg"
    assert registry.get("toy").distance(toy_hash(known), toy_hash(other)) > ToySignal.radius  # a real miss
    folder = tmp_path / "scan"
    folder.mkdir()
    shutil.copy(known, folder / "known.jpg")
    shutil.copy(other, folder / "other.jpg")
    hashes = tmp_path / "toy.csv"
    hashes.write_text(f"signal_type,value\ntoy,{toy_hash(known).upper()}\n", encoding="utf-8")
    db = open_db(str(tmp_path / "case.db"))
    store = BankStore(db)
    store.create_bank("toys")
    report = import_file(store, "toys", hashes)
    assert (report.added, report.error_count, report.unsupported) == (1, 0, {})

    run_scan([str(folder)], db, "toy-case", tmp_path / "out", toy, workers=1, quiet=True)

    records = {r["path"].rsplit("/", 1)[-1]: r for r in
               map(json.loads, (tmp_path / "out" / "items.jsonl").read_text().splitlines())}
    assert records["known.jpg"]["toy"] == toy_hash(known)
    assert [(m["bank"], m["signal_type"], m["distance"], m["value"]) for m in records["known.jpg"]["matches"]] == \
        [("toys", "toy", 0, toy_hash(known))]
    assert records["other.jpg"]["toy"] == toy_hash(other) and records["other.jpg"]["matches"] == []


def test_registration_is_checked_and_undone(toy):
    assert registry.resolve("TOY") == "toy" and "toy" in registry.names("distance")
    assert registry.normalise_value("toy", "0xABCDEF0123456789") == "abcdef0123456789"
    with pytest.raises(ValueError, match="not a toy value"):
        registry.normalise_value("toy", "abc")
    with pytest.raises(ValueError, match="clashes"):
        registry.register(ToySignal)
    registry.unregister("toy")
    try:
        assert "toy" not in registry and registry.normalise_value("toy", "abc") == "abc"  # opaque again
    finally:
        registry.register(ToySignal)  # the fixture removes it

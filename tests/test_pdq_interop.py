"""The ``pdq`` a scan records (and /h/hash answers, reports and exports carry) is python-threatexchange's hash.

Every fixture in ../shared/fixtures, upright and EXIF-rotated (orientation 2-8), through the extraction half
of the real pipeline, against ``threatexchange``'s own hasher (``pdq_from_file``: what
``PdqSignal.hash_from_file`` and HMA return, before their quality floor of 50). The documented exceptions
(docs/pdq-index.md) are checked too, so that each stays an exception for the reason given.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

from tripwire.config import Config
from tripwire.pipeline.worker import SourceProcessor, Task
from tripwire.signals.pdq import PdqExtractor
from tripwire.signals.pdq_variants import PdqVariantsExtractor

from helpers import hamming

#: palette PNG: threatexchange hashes the palette *indices* (np.asarray of a mode-P image), not the colours
PALETTE = {"c2pa/libpng-test.png"}


def _records(paths: list[Path]) -> dict[Path, dict]:
    processor = SourceProcessor(Config(), [PdqExtractor(), PdqVariantsExtractor()])
    out: dict[Path, dict] = {}
    for i, path in enumerate(paths):
        processor.process(Task(i, str(path)), lambda m, p=path: out.__setitem__(p, m[2]) if m[0] == "record" else None)
    return out


def test_record_pdq_equals_threatexchange_for_every_fixture(fixtures):
    paths = sorted(p for p in fixtures.rglob("*") if p.is_file() and p.suffix.lower() not in (".json", ".md", ".pub", ".pem", ".key"))
    records = _records(paths)
    compared, rotated = 0, 0
    for path in paths:
        name = path.relative_to(fixtures).as_posix()
        try:
            expected, te_quality = pdq_from_file(path)
        except Exception:
            continue  # threatexchange cannot open it (empty or not an image): nothing to compare
        facts = records[path]["facts"].get("pdq", {}).get("data") or {}
        got = facts.get("pdq")
        if got is None:  # tripwire refused the decode: only over the memory budget (a 51 MP HEIC)
            assert records[path]["error"]["code"] == "too_large", name
            continue
        if name in PALETTE:
            assert hamming(got, expected) > 31, name  # would it ever agree, the exception could go
            continue
        if te_quality == 0:  # a flat picture: PDQ's bits are float rounding noise in any implementation
            assert facts["pdq_quality"] == 0, name
            continue
        assert got == expected, name
        compared += 1
        rotated += "orientation/" in name and not name.endswith("_1.jpg")
    assert compared >= 150 and rotated == 14  # 2 x orientations 2-8 (7 of them with the EXIF orientation tag)


@pytest.mark.parametrize("name", ["camera/orientation/landscape_6.jpg", "camera/orientation/portrait_5.jpg"])
def test_displayed_hash_is_kept_as_the_original_variant(fixtures, name):
    upright = fixtures / "camera" / "orientation" / (name.split("/")[-1].split("_")[0] + "_1.jpg")
    records = _records([fixtures / name, upright])
    turned = records[fixtures / name]["facts"]
    variants = turned["pdq_variants"]["data"]["pdq_variants"]
    assert turned["pdq"]["data"]["pdq"] in variants.values()  # the stored grid is one of the 8
    upright_pdq = records[upright]["facts"]["pdq"]["data"]["pdq"]
    assert hamming(variants["original"], upright_pdq) <= 31 < hamming(turned["pdq"]["data"]["pdq"], upright_pdq)

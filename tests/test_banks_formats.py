"""Hash-list formats: VICS JSON (v1/v2, hash sets and cases), CSV, plain lists, ThreatExchange.

Every value here is a made-up digest or the hash of a synthesised picture; categories are codes only.
"""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc

import pytest

from tripwire.banks.exporter import export_bank
from tripwire.banks.importer import detect_format, import_file, read_entries, run_import
from tripwire.signals.registry import AmbiguousSignalType, registry
from tripwire.banks.store import BankStore
from tripwire.banks.vics import read_vics
from tripwire.store.db import open_db

MD5 = ["%032x" % (0xA11CE + i) for i in range(10)]
SHA1 = ["%040x" % (0xB0B + i) for i in range(10)]
SHA256 = ["%064x" % (0xC0FFEE + i) for i in range(10)]
PDQ = ["%064x" % ((0xF0F0 << 200) + 977 * i) for i in range(10)]


@pytest.fixture
def store(db_url):
    db = open_db(db_url)
    yield BankStore(db)
    db.dispose()


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def contents(store, bank):
    return sorted(e.content() for e in store.iter_entries(bank))


# -- normalisation ------------------------------------------------------------------------------------------


def test_signal_names_and_values_are_normalised():
    assert [registry.resolve(n) for n in ("MD5", "SHA-1", "sha_256", "HASH_PDQ", "video_md5", "PhotoDNA", "TMK+PDQF")] == \
        ["md5", "sha1", "sha256", "pdq", "md5", "photodna", "tmk_pdqf"]
    assert registry.normalise_value("md5", "  " + MD5[0].upper() + " ") == MD5[0]
    with pytest.raises(ValueError, match="32 hex"):
        registry.normalise_value("md5", "xyz")
    with pytest.raises(ValueError, match="64 hex"):
        registry.normalise_value("pdq", "f" * 63)
    assert registry.normalise_value("photodna", " AbC+/== ") == "AbC+/=="  # unknown types are kept verbatim


# -- VICS ---------------------------------------------------------------------------------------------------


def vics_v2_hashset(media):
    return json.dumps({"@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media",
                       "value": media})


def test_vics_v2_hash_set(store, tmp_path):
    store.create_bank("vic")
    media = [
        {"MediaID": 1, "Category": 1, "MD5": MD5[0].upper(), "SHA1": SHA1[0].upper(), "Series": "series-a",
         "Tags": ["alpha", "bravo"], "AlternativeHashes": [{"HashName": "PDQ", "HashValue": PDQ[0]},
                                                           {"HashName": "PhotoDNA", "HashValue": "QUJDRA=="}]},
        {"MediaID": 2, "Category": 3, "MD5": MD5[1], "Comments": "term-1"},
        {"MediaID": 3, "Category": 0, "SHA1": SHA1[2], "IsPrecategorized": "true"},
    ]
    report = import_file(store, "vic", write(tmp_path / "set.json", vics_v2_hashset(media)))
    assert report.format == "vics" and report.details["envelope"] == "v2"
    assert report.error_count == 0 and report.added == 6 and report.unsupported == {"photodna": 1}
    rows = {e.value: e for e in store.iter_entries("vic")}
    assert rows[MD5[0]].signal_type == "md5" and rows[SHA1[0]].signal_type == "sha1"
    assert rows[PDQ[0]].signal_type == "pdq" and rows[PDQ[0]].category == "1" and rows[PDQ[0]].source_id == "1"
    assert rows[PDQ[0]].series == "series-a" and rows[PDQ[0]].tags == ("alpha", "bravo")
    assert rows["QUJDRA=="].signal_type == "photodna"  # kept, case preserved, reported unsupported
    assert rows[MD5[1]].category == "3" and rows[MD5[1]].notes == "term-1"
    assert rows[SHA1[2]].category == "0"


def test_vics_v1_cases_with_media_arrays(store, tmp_path):
    store.create_bank("vic")
    doc = {"odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml/$metadata#Cases",
           "value": [
               {"CaseID": "case-1", "ContactOrganization": "unit", "Media": [
                   {"MediaID": "a-1", "Category": 2, "MD5": MD5[0]},
                   {"MediaID": "a-2", "Category": 1, "SHA1": SHA1[1]}]},
               {"CaseID": "case-2", "Media": [{"MediaID": "b-1", "Category": 4, "MD5": MD5[2]}], "SourceApplicationName": "x"},
           ]}
    report = import_file(store, "vic", write(tmp_path / "cases.json", json.dumps(doc)))
    assert report.details["envelope"] == "v1" and report.details["cases"] == 2 and report.details["media"] == 3
    assert report.added == 3 and report.error_count == 0
    assert {e.source_id: e.category for e in store.iter_entries("vic")} == {"a-1": "2", "a-2": "1", "b-1": "4"}


def test_vics_malformed_media_reported_with_position_while_the_rest_loads(store, tmp_path):
    store.create_bank("vic")
    doc = {"odata.metadata": "m", "value": [{"CaseID": "c", "Media": [
        {"MediaID": 1, "Category": 1, "MD5": MD5[0]},
        {"MediaID": 2, "Category": 9, "MD5": MD5[1]},                       # category out of range
        [1, 2],                                                               # not an object
        {"MediaID": 4, "MD5": "zz"},                                          # not hex
        {"MediaID": 5, "Category": 1},                                        # no hash at all
        {"MediaID": 6, "AlternativeHashes": [{"HashValue": PDQ[0]}, {"HashName": "PDQ", "HashValue": PDQ[1]}]},
        {"MediaID": 7, "Category": 1, "SHA1": SHA1[0]},
    ]}]}
    report = import_file(store, "vic", write(tmp_path / "bad.json", json.dumps(doc)))
    assert report.added == 3  # Media 1, the valid PDQ of Media 6, Media 7
    positions = {e.position: e.message for e in report.errors}
    assert positions["record 2 (value[0].Media[1]) MD5"].startswith("invalid VICS category")
    assert "expected a Media object" in positions["record 3 (value[0].Media[2])"]
    assert "md5" in positions["record 4 (value[0].Media[3]) MD5"]
    assert "no MD5" in positions["record 5 (value[0].Media[4])"]
    assert positions["record 6 (value[0].Media[5]) AlternativeHashes[0]"] == "missing HashName"
    assert report.error_count == 5


def test_vics_truncated_file_keeps_what_came_before(store, tmp_path):
    store.create_bank("vic")
    text = vics_v2_hashset([{"MediaID": i, "Category": 1, "MD5": MD5[i]} for i in range(5)])
    cut = text[: text.index(MD5[3]) + 5]  # stops in the middle of the 4th Media
    report = import_file(store, "vic", write(tmp_path / "cut.json", cut))
    assert report.added == 3
    assert report.errors[-1].position == "after record 3" and "invalid JSON" in report.errors[-1].message
    assert report.details["truncated"] is True


def test_vics_reader_streams(tmp_path):
    """The reader yields the first Media long before the end of a huge file, holding one Media at a time."""

    class Endless(io.RawIOBase):
        def __init__(self):
            self.head = b'{"@odata.context": "c", "value": ['
            self.n = 0

        def readable(self):
            return True

        def readinto(self, buf):
            out = self.head
            while len(out) < len(buf):
                out += (b"," if self.n else b"") + json.dumps({"MediaID": self.n, "Category": 1, "MD5": "%032x" % self.n}).encode()
                self.n += 1
            self.head = out[len(buf):]
            buf[: len(buf)] = out[: len(buf)]
            return len(buf)

    source = Endless()
    tracemalloc.start()
    seen = 0
    for entry in read_vics(io.BufferedReader(source)):
        seen += 1
        if seen == 20_000:
            break
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seen == 20_000
    assert peak < 10 * 1024 * 1024  # ~1.6 MB of JSON read so far (of an endless file): nothing accumulates


# -- CSV and plain lists --------------------------------------------------------------------------------------


def test_csv_with_header_aliases_and_errors(store, tmp_path):
    store.create_bank("c")
    text = (
        "Type,Hash,Category,MediaID,Series,Tags,Comment,extra\n"
        f"md5,{MD5[0].upper()},1,m1,s,alpha;bravo,note,x\n"
        f",{SHA1[0]},2,,,,,\n"                     # type inferred from length
        f"sha256,{SHA256[0]},0,,,,,\n"
        f"md5,{MD5[1]},7,,,,,\n"                   # bad category -> line 5
        f"md5,{MD5[2]},1\n"                        # wrong field count -> line 6
        f"pdq,{PDQ[0][:-2]},1,,,,,\n"              # short PDQ -> line 7
        "\n"
        f"photodna,QUJD,1,,,,,\n"
    )
    report = import_file(store, "c", write(tmp_path / "list.csv", text))
    assert report.format == "csv"
    assert report.added == 4 and report.unsupported == {"photodna": 1}
    assert [(e.position, e.message.split(" (")[0]) for e in report.errors] == [
        ("line 5", "invalid VICS category '7'"), ("line 6", "expected 8 fields, found 3"),
        ("line 7", f"'{PDQ[0][:-2]}' is not a pdq value"),
    ]
    first = store.find(MD5[0])[0]
    assert (first.category, first.source_id, first.series, first.tags, first.notes) == ("1", "m1", "s", ("alpha", "bravo"), "note")


def test_plain_lines_infer_md5_and_sha1(store, tmp_path):
    store.create_bank("iwf")
    text = f"# list of {len(MD5)} digests\n{MD5[0]}\n\n{SHA1[0].upper()}\nnot-a-hash\n{MD5[1]} trailing\n{MD5[2]}\n"
    report = import_file(store, "iwf", write(tmp_path / "list.txt", text))
    assert report.format == "lines" and report.added == 3
    assert [e.position for e in report.errors] == ["line 5", "line 6"]
    assert {e.signal_type for e in store.iter_entries("iwf")} == {"md5", "sha1"}


def test_plain_64_hex_list_needs_a_type(store, tmp_path):
    store.create_bank("l")
    path = write(tmp_path / "list.txt", "\n".join(SHA256[:3]) + "\n")
    with pytest.raises(AmbiguousSignalType):
        import_file(store, "l", path)
    report = import_file(store, "l", path, signal_type="sha256")
    assert report.added == 3 and {e.signal_type for e in store.iter_entries("l")} == {"sha256"}


def test_gzip_input(store, tmp_path):
    store.create_bank("g")
    path = tmp_path / "list.txt.gz"
    path.write_bytes(gzip.compress(("\n".join(MD5) + "\n").encode()))
    report = import_file(store, "g", path)
    assert report.added == len(MD5) and report.error_count == 0


# -- ThreatExchange --------------------------------------------------------------------------------------------


def test_threatexchange_signal_file(store, tmp_path):
    store.create_bank("te")
    text = f"pdq {PDQ[0]}\nvideo_md5 {MD5[0]}\npdq {PDQ[1][:-1]}\nvideo_tmk_pdqf abc\n{PDQ[2]}\n"
    report = import_file(store, "te", write(tmp_path / "signals.txt", text), fmt="te")
    assert report.added == 4 and report.unsupported == {"tmk_pdqf": 1}
    assert [e.position for e in report.errors] == ["line 3"] and "invalid PDQ hash" in report.errors[0].message
    assert {(e.signal_type, e.value) for e in store.iter_entries("te") if e.signal_type != "tmk_pdqf"} == \
        {("pdq", PDQ[0]), ("md5", MD5[0]), ("pdq", PDQ[2])}


def test_threatexchange_dataset_csv(store, tmp_path):
    store.create_bank("te")
    text = ("signal_type,signal_str,collab,category,tags\n"
            f"pdq,{PDQ[0]},Sample Collab,POSITIVE_CLASS,alpha bravo\n"
            f"video_md5,{MD5[0]},Sample Collab,INVESTIGATION_SEED,\n")
    path = write(tmp_path / "dataset.csv", text)
    assert detect_format(path, path.read_bytes()) == "te"
    report = import_file(store, "te", path)
    assert report.added == 2 and report.error_count == 0
    pdq = store.find(PDQ[0])[0]
    assert pdq.tags == ("alpha", "bravo") and pdq.series == "Sample Collab" and pdq.notes is None
    assert store.find(MD5[0])[0].notes == "threatexchange opinion: INVESTIGATION_SEED"


def test_threatexchange_export_is_readable_by_threatexchange(store, tmp_path):
    from threatexchange.exchanges.impl.file_api import FileCollaborationConfig, LocalFileSignalExchangeAPI

    store.create_bank("te")
    store.add_entries("te", [{"signal_type": "pdq", "value": PDQ[0]}, {"signal_type": "md5", "value": MD5[0]},
                             {"signal_type": "sha1", "value": SHA1[0]}])
    out = io.StringIO()
    report = export_bank(store, "te", "te", out)
    assert report.entries == 2 and report.skipped == {"sha1": 1}
    path = write(tmp_path / "te.txt", out.getvalue())
    api = LocalFileSignalExchangeAPI(FileCollaborationConfig(name="c", api="local_file", enabled=True, filename=str(path)))
    fetched = set()
    for delta in api.fetch_iter([], None):
        fetched.update(delta.updates)
    assert fetched == {("pdq", PDQ[0]), ("video_md5", MD5[0])}


# -- round trips -------------------------------------------------------------------------------------------------


def seed_bank(store, name, scheme):
    categories = {"vics": ["0", "1", "2", "3", "4"], "uk": ["A", "B", "C", "0"], "ncmec": ["A1", "A2", "B1", "B2"],
                  "none": ["platform-label", "other label"]}[scheme]
    store.create_bank(name, category_scheme=scheme)
    rows = []
    for i in range(8):
        cat = categories[i % len(categories)] if i != 5 else None
        common = {"category": cat, "source_id": str(100 + i // 2) if i < 6 else None,
                  "series": "series-x" if i % 3 == 0 else None, "tags": ["alpha", "bravo, with comma"] if i == 2 else (["term-1"] if i == 4 else None),
                  "notes": "note; with separators, quotes \" and\nnewline" if i == 1 else None}
        rows.append({"signal_type": "md5", "value": MD5[i], **common})
        rows.append({"signal_type": "sha1", "value": SHA1[i], **common})
        rows.append({"signal_type": "pdq", "value": PDQ[i], **common})
        if i % 2:
            rows.append({"signal_type": "sha256", "value": SHA256[i], **common})
        if i == 3:
            rows.append({"signal_type": "photodna", "value": "QUJDREVGR0g=", **common})
    # two entries of one Media that disagree on metadata, and a second MD5 under the same source id
    rows.append({"signal_type": "md5", "value": MD5[9], "category": categories[0], "source_id": "100"})
    store.add_entries(name, rows)
    return len(rows)


@pytest.mark.parametrize("scheme", ["vics", "uk", "ncmec", "none"])
def test_vics_round_trip_is_identical(store, tmp_path, scheme):
    n = seed_bank(store, "orig", scheme)
    out = io.StringIO()
    report = export_bank(store, "orig", "vics", out)
    assert report.entries == n
    doc = json.loads(out.getvalue())  # the export is plain JSON with the v2 envelope
    assert "@odata.context" in doc and all("MD5" in m or "SHA1" in m or "AlternativeHashes" in m for m in doc["value"])
    store.create_bank("copy", category_scheme=scheme)
    back = import_file(store, "copy", write(tmp_path / "export.json", out.getvalue()))
    assert back.error_count == 0 and back.added == n
    assert contents(store, "copy") == contents(store, "orig")


def test_csv_round_trip_is_identical(store, tmp_path):
    n = seed_bank(store, "orig", "vics")
    out = io.StringIO()
    assert export_bank(store, "orig", "csv", out).entries == n
    store.create_bank("copy")
    back = import_file(store, "copy", write(tmp_path / "export.csv", out.getvalue()))
    assert back.error_count == 0 and back.added == n
    assert contents(store, "copy") == contents(store, "orig")


def test_te_and_lines_round_trip(store, tmp_path):
    store.create_bank("orig")
    rows = [{"signal_type": t, "value": v} for t, vals in (("pdq", PDQ), ("md5", MD5), ("sha256", SHA256)) for v in vals]
    store.add_entries("orig", rows)
    out = io.StringIO()
    export_bank(store, "orig", "te", out)
    store.create_bank("te-copy")
    assert import_file(store, "te-copy", write(tmp_path / "te.txt", out.getvalue()), fmt="te").added == len(rows)
    assert contents(store, "te-copy") == contents(store, "orig")
    lines = io.StringIO()
    export_bank(store, "orig", "lines", lines, signal_type="md5")
    store.create_bank("md5-copy")
    assert import_file(store, "md5-copy", write(tmp_path / "md5.txt", lines.getvalue())).added == len(MD5)
    assert contents(store, "md5-copy") == sorted(e for e in contents(store, "orig") if e[0] == "md5")


def test_reimport_is_idempotent_and_keeps_tombstones(store, tmp_path):
    store.create_bank("c")
    path = write(tmp_path / "l.txt", "\n".join(MD5) + "\n")
    assert import_file(store, "c", path).added == len(MD5)
    assert store.remove_entries("c", values=[MD5[0]], reason="false positive") == 1
    again = import_file(store, "c", path)
    assert (again.added, again.existing, again.tombstoned) == (0, len(MD5) - 1, 1)
    assert MD5[0] not in {e.value for e in store.iter_entries("c")}
    removed = [e for e in store.iter_entries("c", include_removed=True) if e.value == MD5[0]][0]
    assert removed.removed_at is not None and removed.removed_reason == "false positive"


def test_duplicates_inside_one_file_are_counted_once(store, tmp_path):
    store.create_bank("c")
    report = import_file(store, "c", write(tmp_path / "l.txt", f"{MD5[0]}\n{MD5[0].upper()}\n{MD5[1]}\n"), batch_size=2)
    assert (report.added, report.existing) == (2, 1)


def test_error_sink_gets_every_error(store, tmp_path):
    store.create_bank("c")
    text = "\n".join(["nothex"] * 30 + [MD5[0]]) + "\n"
    sink = io.StringIO()
    entries = read_entries("lines", io.BytesIO(text.encode()))
    report = run_import(store, "c", entries, "lines", error_sink=sink)
    lines = [json.loads(x) for x in sink.getvalue().splitlines()]
    assert report.added == 1 and report.error_count == 30 and len(lines) == 30
    assert lines[0] == {"position": "line 1", "message": lines[0]["message"]} and lines[-1]["position"] == "line 30"

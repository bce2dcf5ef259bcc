"""Banks through the command line and inside `tripwire scan`: matches on every record, clusters, report."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from helpers import image_bytes, read_jsonl, synth_image, tripwire
from PIL import Image

from tripwire.match.cluster import ClusterUnit, cluster_units

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
A = FIXTURES / "camera/gps/DSCN0010.jpg"
B = FIXTURES / "camera/Canon_PowerShot_S40.jpg"
C = FIXTURES / "c2pa/CA.jpg"


def flip_bits(hex_: str, count: int, start: int = 0) -> str:
    value = int(hex_, 16)
    for bit in range(start, start + count):
        value ^= 1 << bit
    return f"{value:064x}"


# -- clustering ------------------------------------------------------------------------------------------------


def test_clusters_are_connected_components():
    base = "%064x" % (0x5A5A5A5A << 128 | 0x1234567)
    units = [
        ClusterUnit("a", base, 90),
        ClusterUnit("b", flip_bits(base, 20), 90),             # 20 from a
        ClusterUnit("c", flip_bits(base, 40), 90),             # 40 from a, 20 from b: joins through b
        ClusterUnit("lonely", flip_bits(base, 120), 90),
        ClusterUnit("flat", flip_bits(base, 2), 10),            # below the quality floor: never linked
        ClusterUnit("dup", None, None, items=3),                # one content seen 3 times (no PDQ)
        ClusterUnit("rot", flip_bits(base, 128, start=64), 90, queries=[flip_bits(base, 6)]),  # a variant is near a
    ]
    groups = cluster_units(units, radius=31, min_quality=50)
    named = [sorted(units[i].key for i in g) for g in groups]
    assert named == [["a", "b", "c", "rot"], ["dup"]]
    tight = [sorted(units[i].key for i in g) for g in cluster_units(units, radius=12, min_quality=50)]
    assert tight == [["dup"], ["a", "rot"]]  # largest first: "dup" stands for 3 items


# -- command line ------------------------------------------------------------------------------------------------


def run_ok(*args, **kw):
    proc = tripwire(*args, **kw)
    assert proc.returncode == 0, proc.stderr
    return proc


class _Result:
    def __init__(self, result):
        self.returncode = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr


def cli(*args: str) -> _Result:
    """The command line in this process (no interpreter start per call)."""
    from typer.testing import CliRunner

    from tripwire.cli import app

    return _Result(CliRunner().invoke(app, list(args)))


def cli_ok(*args: str) -> _Result:
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    return result


def test_bank_cli_import_export_list_match(tmp_path):
    db = str(tmp_path / "t.db")
    inspect = json.loads(cli_ok("inspect", str(A), "--json").stdout)
    cli_ok("bank", "create", "hotline", "--source", "stand-in", "--db", db)
    cli_ok("bank", "create", "allow", "--negative", "--pdq-radius", "10", "--db", db)
    listing = tmp_path / "list.csv"
    listing.write_text("signal_type,value,category\n"
                       f"pdq,{inspect['pdq']},1\n"
                       f"md5,{inspect['md5']},1\n"
                       "md5,not-a-digest,1\n"
                       f"sha1,{'b' * 40},9\n", encoding="utf-8")
    proc = cli("bank", "import", "hotline", str(listing), "--db", db, "--json", "--errors", str(tmp_path / "errors.jsonl"))
    assert proc.returncode == 3, proc.stderr  # finished, with malformed rows
    report = json.loads(proc.stdout)
    assert report["added"] == 2 and report["error_count"] == 2
    assert [e["position"] for e in report["errors"]] == ["line 4", "line 5"]
    assert len((tmp_path / "errors.jsonl").read_text().splitlines()) == 2
    assert (tmp_path / "t.db.pdqindex" / "state.json").exists()  # the import brought the index up to date

    banks = {b["name"]: b for b in json.loads(cli_ok("bank", "list", "--db", db, "--json").stdout)}
    assert banks["hotline"]["by_type"] == {"md5": 1, "pdq": 1} and banks["allow"]["negative"] is True

    rotated = tmp_path / "rotated.png"
    Image.open(A).rotate(90, expand=True).save(rotated)
    results = json.loads(cli_ok("match", str(A), str(rotated), "--db", db, "--json").stdout)
    assert [sorted(m["signal_type"] for m in r["matches"]) for r in results] == [["md5", "pdq"], ["pdq"]]
    assert results[1]["matches"][0]["variant"] == "rot270" and results[1]["matches"][0]["category"] == "1"
    by_hash = json.loads(cli_ok("match", "--pdq", flip_bits(inspect["pdq"], 7), "--md5", inspect["md5"].upper(), "--db", db, "--json").stdout)
    assert [r["matches"][0]["distance"] for r in by_hash] == [7, 0]
    nothing = cli("match", "--sha256", "0" * 64, "--db", db, "--json")
    assert nothing.returncode == 1 and json.loads(nothing.stdout)[0]["matches"] == []  # no match: exit 1, like grep

    exported = cli_ok("bank", "export", "hotline", "--format", "vics", "--db", db).stdout
    doc = json.loads(exported)
    assert [m.get("MD5") for m in doc["value"]] == [None, inspect["md5"].upper()]  # entries without a MediaID: one Media each
    assert doc["value"][0]["AlternativeHashes"] == [{"HashName": "PDQ", "HashValue": inspect["pdq"]}]
    out = tmp_path / "bank.csv"
    cli_ok("bank", "export", "hotline", "--format", "csv", "--out", str(out), "--db", db)
    assert sorted(r["value"] for r in csv.DictReader(out.open())) == sorted([inspect["pdq"], inspect["md5"]])

    cli_ok("bank", "remove", "hotline", inspect["pdq"], "--reason", "test", "--db", db)
    after = cli("match", str(rotated), "--db", db, "--json")
    assert after.returncode == 1 and json.loads(after.stdout)[0]["matches"] == []
    assert cli("bank", "import", "nope", str(listing), "--db", db).returncode == 2
    assert cli("bank", "delete", "allow", "--db", db).returncode == 2  # needs --yes
    cli_ok("bank", "delete", "allow", "--yes", "--db", db)


def test_scan_records_carry_matches_and_clusters(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(A, media / "a.jpg")
    shutil.copy(B, media / "b.jpg")
    shutil.copy(C, media / "c.jpg")
    img_a = Image.open(A).convert("RGB")
    img_a.rotate(270, expand=True).save(media / "a_rotated.jpg", quality=80)
    img_b = Image.open(B).convert("RGB")
    pad = int(0.2 * max(img_b.size))
    padded = Image.new("RGB", (img_b.width + 2 * pad, img_b.height + 2 * pad), (255, 255, 255))
    padded.paste(img_b, (pad, pad))
    padded.save(media / "b_padded.png")
    (media / "unrelated.jpg").write_bytes(image_bytes(synth_image(7), "JPEG"))
    (media / "notes.txt").write_text("plain text, no image\n")

    db = str(tmp_path / "t.db")
    records_a = json.loads(run_ok("inspect", str(A), "--json").stdout)
    records_b = json.loads(run_ok("inspect", str(B), "--json").stdout)
    listing = tmp_path / "hotline.txt"
    listing.write_text(f"pdq {records_a['pdq']}\npdq {records_b['pdq']}\n")
    run_ok("bank", "create", "hotline", "--db", db)
    run_ok("bank", "import", "hotline", str(listing), "--format", "te", "--db", db)

    out = tmp_path / "out"
    run_ok("scan", str(media), "--db", db, "--out", str(out), "--workers", "1")
    records = {Path(r["path"]).name: r for r in read_jsonl(out / "items.jsonl")}
    assert all(isinstance(r["matches"], list) and "cluster" in r for r in records.values())
    matched = {name: sorted(m["variant"] for m in r["matches"]) for name, r in records.items() if r["matches"]}
    assert matched == {"a.jpg": ["original"], "a_rotated.jpg": ["rot90"], "b.jpg": ["original"], "b_padded.png": ["unletterbox"]}
    assert records["unrelated.jpg"]["matches"] == [] and records["notes.txt"]["matches"] == []
    assert "pdq_variants" in records["a.jpg"] and records["b_padded.png"]["pdq_unletterbox"]

    clusters = {name: r["cluster"] for name, r in records.items()}
    assert clusters["a.jpg"] is not None and clusters["a.jpg"] == clusters["a_rotated.jpg"]
    assert clusters["b.jpg"] is not None and clusters["b.jpg"] == clusters["b_padded.png"]
    assert clusters["a.jpg"] != clusters["b.jpg"]
    assert clusters["c.jpg"] is None and clusters["unrelated.jpg"] is None and clusters["notes.txt"] is None

    rows = {Path(r["path"]).name: r for r in csv.DictReader((out / "items.csv").open())}
    assert rows["a_rotated.jpg"]["match_count"] == "1" and rows["a.jpg"]["cluster"] == str(clusters["a.jpg"])
    html = (out / "report.html").read_text()
    assert "<b>4</b>items matching a bank (4 matches)" in html
    assert "Near-duplicate clusters" in html and "a_rotated.jpg" in html

    # a later scan into the same case re-clusters with the new items
    more = tmp_path / "more"
    more.mkdir()
    shutil.copy(C, more / "c_copy.jpg")
    run_ok("scan", str(more), "--db", db, "--out", str(out), "--workers", "1")
    records = {Path(r["path"]).name: r for r in read_jsonl(out / "items.jsonl")}
    assert records["c.jpg"]["cluster"] is not None and records["c.jpg"]["cluster"] == records["c_copy.jpg"]["cluster"]

"""posts scan matches media hashes against case-database banks through the scan's own matcher."""

from __future__ import annotations

import json

from helpers import tripwire


def test_posts_scan_matches_database_banks(tmp_path, fixtures):
    db = str(tmp_path / "case.db")
    photo = fixtures / "camera" / "gps" / "DSCN0010.jpg"
    record = json.loads(tripwire("inspect", str(photo), "--json").stdout)
    hashes = tmp_path / "known.csv"
    hashes.write_text(f"signal_type,value,category\nsha256,{record['sha256']},1\npdq,{record['pdq']},1\n")
    assert tripwire("bank", "create", "known", "--db", db).returncode == 0
    imported = tripwire("bank", "import", "known", str(hashes), "--format", "csv", "--db", db)
    assert imported.returncode == 0, imported.stderr
    near = format(int(record["pdq"], 16) ^ 0b1011, "064x")  # 3 bits away: a near-duplicate
    posts = tmp_path / "posts.jsonl"
    lines = [
        {"platform": "x", "post_id": "1", "account": {"id": "a1", "handle": "one"}, "text": "hello",
         "media": [{"sha256": record["sha256"]}]},
        {"platform": "x", "post_id": "2", "account": {"id": "a2", "handle": "two"}, "text": "hello",
         "media": [{"pdq": near, "pdq_quality": 100}]},
        {"platform": "x", "post_id": "3", "account": {"id": "a3", "handle": "three"}, "text": "hello",
         "media": [{"sha256": "0" * 64}]},
    ]
    posts.write_text("".join(json.dumps(p) + "\n" for p in lines))
    out = tmp_path / "out"
    proc = tripwire("posts", "scan", str(posts), "--out", str(out), "--bank", "known", "--db", db, "-q")
    assert proc.returncode == 0, proc.stderr
    results = {r["post_id"]: r for r in map(json.loads, (out / "posts.jsonl").read_text().splitlines())}
    text = {k: json.dumps(v) for k, v in results.items()}
    assert '"bank": "known"' in text["1"] and '"distance": 0' in text["1"]
    assert '"bank": "known"' in text["2"] and '"distance": 3' in text["2"]
    assert '"bank": "known"' not in text["3"]
    missing = tripwire("posts", "scan", str(posts), "--out", str(out), "--bank", "nope", "--db", db)
    assert missing.returncode == 2 and "no bank named nope" in missing.stderr

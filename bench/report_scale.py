"""The triage report at case scale: time and size of report.html + report-pages/ for N items.

What: ``write_reports`` (items.jsonl, items.csv, report.html and the static item pages) over N synthetic item
records shaped like a scanned drive (camera / AI / unknown verdicts, one bank match in 500, a decision in
1,000), against the floor it is built on in the same run: items.jsonl + items.csv alone, written by the same
code. Medians of interleaved rounds; the ratio is the report's cost over the floor.

How: ``PYTHONPATH=src python bench/report_scale.py [--items 100000] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from tripwire import csvsafe
from tripwire.report import writer

LABELS = [("camera_original", "supporting", "Canon EOS 40D"), ("ai_generated", "strong", "ComfyUI"),
          ("unknown", None, None), ("ai_edited", "strong", "AUTOMATIC1111")]


def records(n: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(7)
    for i in range(n):
        label, confidence, tool = LABELS[rng.randrange(len(LABELS))]
        matches = [{"bank": "hotline-list", "category": "1", "signal_type": "pdq", "distance": 4, "variant": "rot90"}] \
            if i % 500 == 0 else []
        yield {"path": f"/evidence/drive-1/DCIM/{i // 1000:03d}CANON/IMG_{i:06d}.JPG", "size": 2_000_000 + i,
               "media_type": "image/jpeg", "md5": f"{i:032x}", "sha1": f"{i:040x}", "sha256": f"{i:064x}",
               "pdq": f"{rng.getrandbits(256):064x}", "pdq_quality": 90, "error": None,
               "provenance": {"label": label, "confidence": confidence, "tool": tool, "reason": "r",
                              "evidence": [{"source": "exif", "camera": label == "camera_original", "make": "Canon"}]},
               "matches": matches, "priority": 100.0 if matches else {"camera_original": 80.0, "ai_edited": 70.0,
                                                                      "unknown": 60.0}.get(label, 30.0),
               "priority_reason": "camera evidence and no AI evidence (supporting by Canon EOS 40D): possibly a real photograph",
               "cluster": None, "series": None, "item_id": i + 1}


def floor(n: int, out: Path) -> None:
    """items.jsonl + items.csv only, with the writer's own row code."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "items.jsonl", "w", encoding="utf-8") as jsonl, open(out / "items.csv", "w", encoding="utf-8", newline="") as fh:
        w = csvsafe.DictWriter(fh, fieldnames=writer.CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for record in records(n):
            jsonl.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            w.writerow(writer.csv_row(record))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    decisions = {i: {"decision": "not_abuse", "reviewer": "analyst-1", "at": "2026-11-30T12:00:00+00:00", "note": None}
                 for i in range(1, args.items + 1, 1000)}
    times: dict[str, list[float]] = {"floor": [], "report": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            start = time.perf_counter()
            floor(args.items, Path(tmp) / "floor")
            times["floor"].append(time.perf_counter() - start)
            start = time.perf_counter()
            writer.write_reports(records(args.items), Path(tmp) / "report", "bench", decisions=decisions)
            times["report"].append(time.perf_counter() - start)
        out = Path(tmp) / "report"
        pages = sorted((out / writer.PAGES_DIR).glob("*.html"))
        size = {"report.html": (out / "report.html").stat().st_size, "pages": sum(p.stat().st_size for p in pages),
                "largest page": max(p.stat().st_size for p in pages), "items.jsonl": (out / "items.jsonl").stat().st_size}
    f, r = statistics.median(times["floor"]), statistics.median(times["report"])
    print(f"{args.items} items, {args.rounds} interleaved rounds (median s): jsonl+csv floor {f:.2f}, "
          f"full report {r:.2f} ({r / f:.2f}x the floor)")
    print(f"{len(pages)} item pages; " + ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in size.items()))


if __name__ == "__main__":
    main()

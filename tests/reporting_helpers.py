"""Shared setup for the reporting, evidence and sharing tests: real records of benign fixtures in a case DB.

Files are copied from ../shared/fixtures (a generator output, a camera photo) or synthesised, run through the
real extractors (digests, PDQ, provenance), stored through the scan pipeline's own writer, then given platform
context and reviewer decisions directly in the database, as the review console would.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from helpers import image_bytes, synth_image

from tripwire.config import load_config
from tripwire.pipeline.worker import SourceProcessor, Task
from tripwire.records import from_worker
from tripwire.review import audit
from tripwire.review.models import Decision, ItemContext
from tripwire.store import queries
from tripwire.store.db import Database
from tripwire.store.models import ItemRow

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
AI_FIXTURE = FIXTURES / "generators" / "a1111_duck.png"
CAMERA_FIXTURE = FIXTURES / "camera" / "Canon_40D.jpg"


def media_folder(tmp: Path) -> dict[str, Path]:
    """Three benign files: an AI generator output, a camera photo, a synthesised picture."""
    tmp.mkdir(parents=True, exist_ok=True)
    files = {"ai": tmp / "duck.png", "camera": tmp / "canon.jpg", "synth": tmp / "pattern.jpg"}
    shutil.copyfile(AI_FIXTURE, files["ai"])
    shutil.copyfile(CAMERA_FIXTURE, files["camera"])
    files["synth"].write_bytes(image_bytes(synth_image(7)))
    return files


@lru_cache(maxsize=16)
def _raw(path: str, mtime: float) -> dict[str, Any]:
    raws: list[dict] = []
    SourceProcessor(load_config()).process(Task(0, path), lambda m: raws.append(m[2]) if m[0] == "record" else None)
    return raws[-1]


def store_files(db: Database, case: str, paths: list[Path], stage: dict[str, dict] | None = None) -> dict[str, int]:
    """Extract and store ``paths`` in ``case``; returns {path: item id}."""
    case_id = db.case_id(case)
    batch = []
    for p in paths:
        raw = _raw(str(p), p.stat().st_mtime)
        batch.append((str(p), [(raw, from_worker(raw), (stage or {}).get(str(p), {}))]))
    queries.write_sources(db, case_id, batch)
    with db.session() as s:
        return {r.path: r.id for r in s.query(ItemRow).filter(ItemRow.case_id == case_id)}


def add_context(db: Database, item_id: int, **fields: Any) -> None:
    with db.session() as s:
        s.add(ItemContext(item_id=item_id, **fields))


def decide(db: Database, item_id: int, decision: str, reviewer: str = "reviewer-1", note: str | None = None) -> int:
    with db.session() as s:
        row = Decision(item_id=item_id, decision=decision, reviewer=reviewer, note=note,
                       created_at=datetime.now(timezone.utc))
        s.add(row)
        s.flush()
        audit.append(s, "decision", reviewer, subject=f"item:{item_id}", data={"decision": decision, "decision_id": row.id})
        return row.id


def context_for(n: int, account: str = "acct-1") -> dict[str, Any]:
    """Platform context for a reported item (documentation IP ranges, example.org URLs)."""
    return {
        "platform": "ExampleShare", "post_id": f"post-{n}", "url": f"https://share.example.org/p/{n}",
        "account_id": account, "account_handle": f"handle_{account}",
        "profile_url": f"https://share.example.org/u/{account}",
        "ip_events": [{"ip": "203.0.113.5", "at": "2026-11-20T10:00:00Z", "event": "Upload"},
                      {"ip": "198.51.100.7", "at": "2026-11-19T08:30:00Z", "event": "login"}],
    }


REPORTER_TOML = """
[reporting.ncmec]
environment = "test"
esp_service = "ExampleShare"
company_template = "Example Corp trust and safety; legal process: legal@example.org"
legal_url = "https://example.org/legal"

[reporting.ncmec.reporter]
first_name = "Alex"
last_name = "Rivera"
email = "trust@example.org"
phone = "5550100"
phone_country_code = "+1"

[reporting.ncmec.reporter.address]
street = "1 Example Way"
city = "Springfield"
zip = "00000"
state = "VA"
country = "US"
type = "Business"
"""

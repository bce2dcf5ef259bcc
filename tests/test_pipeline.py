"""The one Pipeline: declared facts (collisions refused at start-up, undeclared keys refused per item), and
``tripwire scan`` and ``POST /v1/scan`` producing the same records, policy outcomes and queue entries."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from fastapi.testclient import TestClient
from helpers import image_bytes, synth_image
from service_helpers import make_config, make_keys, make_settings, scan
from sqlalchemy import select

from tripwire.errors import UsageError
from tripwire.pipeline.pipeline import Pipeline
from tripwire.pipeline.scan import run_scan
from tripwire.policy.policy import Policy
from tripwire.policy.stage import PolicyStage
from tripwire.review.models import QueueEntry
from tripwire.service.app import create_app
from tripwire.signals.digests import DigestExtractor
from tripwire.store import queries
from tripwire.store.db import open_db
from tripwire.store.models import ItemRow


class ToyExtractor:
    """A real extractor in miniature: facts from the item's length."""

    version = "1"

    def __init__(self, name: str, produces: tuple[str, ...], emits: tuple[str, ...] | None = None) -> None:
        self.name = name
        self.produces = produces
        self.emits = produces if emits is None else emits

    def extract(self, item) -> dict:
        return {key: item.size for key in self.emits}


def _pipeline(config, extractors) -> Pipeline:
    return Pipeline(config, [], PolicyStage(Policy.load()), lambda: extractors)


def test_two_extractors_declaring_one_fact_fail_at_start_up(tmp_path):
    config = make_config(tmp_path)
    with pytest.raises(UsageError) as err:
        _pipeline(config, [ToyExtractor("alpha", ("length",)), ToyExtractor("beta", ("width", "length"))])
    assert "'alpha'" in str(err.value) and "'beta'" in str(err.value) and "'length'" in str(err.value)
    # a toy fact that collides with a shipped extractor's fact is caught the same way
    with pytest.raises(UsageError, match="'digests' and 'alpha' both declare the fact 'sha256'"):
        _pipeline(config, [DigestExtractor(), ToyExtractor("alpha", ("sha256",))])
    # distinct keys are fine
    assert len(_pipeline(config, [ToyExtractor("alpha", ("length",)), ToyExtractor("beta", ("width",))]).extractors) == 2


def test_undeclared_fact_is_an_extractor_error_and_the_others_still_run(tmp_path):
    path = tmp_path / "pic.jpg"
    path.write_bytes(image_bytes(synth_image(3)))
    rogue = ToyExtractor("rogue", ("length",), emits=("length", "sha256"))
    pipeline = _pipeline(make_config(tmp_path), [rogue, DigestExtractor(), ToyExtractor("after", ("size_again",))])
    [raw] = pipeline.extract(str(path))
    facts = raw["facts"]
    assert facts["rogue"]["error"]["code"] == "extractor_error" and "sha256" in facts["rogue"]["error"]["message"]
    assert facts["rogue"]["data"] == {"length": path.stat().st_size}  # the declared fact is kept
    assert facts["digests"]["error"] is None and facts["after"]["data"] == {"size_again": path.stat().st_size}
    [(_, flat, _)] = pipeline.finish([raw])
    # the rogue key never reached the record: sha256 is the digest extractor's
    assert flat["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert flat["error"]["code"] == "extractor_error" and flat["policy"]["action"] in ("allow", "review", "block")


def _comparable(record: dict) -> dict:
    """A record without what differs by where it was stored: paths, ids, the API's response extras."""
    out = {k: v for k, v in record.items() if k not in ("path", "item_id", "action", "case")}
    out["matches"] = [{k: v for k, v in m.items() if k not in ("bank_id", "entry_id")} for m in record["matches"]]
    return out


def test_local_scan_and_upload_scan_agree(tmp_path, fixtures):
    names = {"Canon_40D.jpg": fixtures / "camera" / "Canon_40D.jpg",
             "Nikon_D70.jpg": fixtures / "camera" / "Nikon_D70.jpg",
             "a1111_duck.png": fixtures / "generators" / "a1111_duck.png"}
    media = tmp_path / "media"
    media.mkdir()
    for name, src in names.items():
        shutil.copy(src, media / name)
    banked = hashlib.sha256(names["Canon_40D.jpg"].read_bytes()).hexdigest()

    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    keys = make_keys(db)
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config), database=db)
    with TestClient(app, base_url="https://testserver") as client:
        admin = keys.h("admin")
        assert client.post("/v1/banks", headers=admin, json={"name": "hotline", "category_scheme": "vics"}).status_code == 201
        added = client.post("/v1/banks/hotline/entries", headers=admin,
                            json={"entries": [{"signal_type": "sha256", "value": banked, "category": "1"}]})
        assert added.json()["added"] == 1
        result = run_scan([str(media)], db, "local", None, config, workers=1, quiet=True)
        assert result.items_written == 3
        body = scan(client, keys.h("submitter"), [(n, p.read_bytes()) for n, p in names.items()]).json()
    uploaded = {f["filename"]: f["records"][0] for f in body["files"]}
    local_case = db.case_id("local")
    local = {r["path"].rsplit("/", 1)[-1]: r for r in queries.iter_records(db, local_case)}
    assert set(local) == set(uploaded) == set(names)
    for name in names:
        assert _comparable(local[name]) == _comparable(uploaded[name]), name
    outcomes = {name: (r["policy"]["action"], r["policy"]["rule"], r["policy"]["queue"]) for name, r in local.items()}
    assert outcomes == {"Canon_40D.jpg": ("block", "known-abuse", True), "Nikon_D70.jpg": ("allow", None, False),
                        "a1111_duck.png": ("review", "ai-unmatched", True)}

    with db.session() as s:
        entries = s.execute(select(ItemRow.case_id, ItemRow.path, QueueEntry.state, QueueEntry.action, QueueEntry.rule,
                                   QueueEntry.priority).join(QueueEntry, QueueEntry.item_id == ItemRow.id)).all()
    queued = {case: sorted((path.rsplit("/", 1)[-1], state, action, rule, priority)
                           for c, path, state, action, rule, priority in entries if c == case)
              for case in {c for c, *_ in entries}}
    assert queued[local_case] == queued[db.case_id("service")]
    assert [(name, action, rule) for name, _, action, rule, _ in queued[local_case]] == [
        ("Canon_40D.jpg", "block", "known-abuse"), ("a1111_duck.png", "review", "ai-unmatched")]
    # a second run over the same folder stores nothing and queues nothing twice
    again = run_scan([str(media)], db, "local", None, config, workers=1, quiet=True)
    assert again.items_written == 0
    with db.session() as s:
        assert len(list(s.scalars(select(QueueEntry.item_id)))) == 4
    db.dispose()

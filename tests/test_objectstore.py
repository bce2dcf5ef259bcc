"""``tripwire scan s3://bucket/prefix`` against a real S3-compatible server (moto, started here; never the network)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("moto")

from s3_helpers import CREDENTIALS, s3_server, seed  # noqa: E402

from tripwire.config import Config, Limits  # noqa: E402
from tripwire.errors import UsageError  # noqa: E402
from tripwire.media.objectstore import S3Settings  # noqa: E402
from tripwire.pipeline.scan import run_scan  # noqa: E402
from tripwire.store import queries  # noqa: E402
from tripwire.store.db import Database  # noqa: E402


@pytest.fixture
def s3(monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with s3_server() as endpoint:
        yield endpoint


def test_scan_of_a_bucket_prefix_records_every_object_once_under_its_uri(s3, tmp_path):
    objects = seed(s3, "evidence")
    # a limit below the archive's size: digested from the stream, not expanded (object storage has no seeks)
    limits = dataclasses.replace(Limits(), max_decode_bytes=32 * 1024)
    assert max(len(b) for k, b in objects.items() if k != "scan/bundle.zip") < 32 * 1024 < len(objects["scan/bundle.zip"])
    config = Config(limits=limits, sections={"s3": {"endpoint_url": s3}})
    db = Database(f"sqlite:///{tmp_path / 'case.db'}")
    db.migrate()
    try:
        first = run_scan(["s3://evidence/scan"], db, "c", tmp_path / "out", config, workers=1, quiet=True)
        records = {r["path"]: r for r in queries.iter_records(db, db.case_id("c", create=False))}
        assert set(records) == {f"s3://evidence/{k}" for k in objects}  # nothing outside the prefix
        for key, body in objects.items():
            assert records[f"s3://evidence/{key}"]["sha256"] == hashlib.sha256(body).hexdigest()
        assert all(records[f"s3://evidence/scan/img_{i}.jpg"]["pdq"] for i in range(3))
        assert records["s3://evidence/scan/deeper/level/img.png"]["media_type"] == "image/png"
        assert records["s3://evidence/scan/bundle.zip"]["error"]["code"] == "too_large"
        assert records["s3://evidence/scan/empty.bin"]["error"]["code"] == "empty_file"
        again = run_scan(["s3://evidence/scan/"], db, "c", None, config, workers=1, quiet=True)
        assert (first.items_written, again.items_written, again.sources_skipped) == (len(objects), 0, len(objects))
        missing = run_scan(["s3://evidence/nothing-here"], db, "m", None, config, workers=1, quiet=True)
        (record,) = queries.iter_records(db, db.case_id("m", create=False))
        assert missing.items_written == 1 and record["error"]["code"] == "unreadable"
    finally:
        db.dispose()


def test_s3_settings_environment_wins_and_typos_are_refused():
    config = Config(sections={"s3": {"endpoint_url": "http://minio.local:9000", "region": "eu-west-1"}})
    assert S3Settings.from_config(config, {}) == S3Settings("http://minio.local:9000", "eu-west-1")
    assert S3Settings.from_config(config, {"AWS_ENDPOINT_URL": "http://other:9000"}).endpoint_url == "http://other:9000"
    with pytest.raises(UsageError, match="endpoint"):
        S3Settings.from_config(Config(sections={"s3": {"endpoint": "x"}}), {})


def test_overlapping_arguments_are_listed_once(tmp_path):
    from tripwire.pipeline.engine import roots

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f.jpg").write_bytes(b"x")
    args = [str(tmp_path / "a" / "b" / "f.jpg"), str(tmp_path / "a"), str(tmp_path / "a") + "/", "s3://bkt/p/",
            "s3://bkt/p", "s3://bkt/p/q", "s3://bkt/pq"]
    assert roots(args) == [str(tmp_path / "a"), "s3://bkt/p", "s3://bkt/pq"]

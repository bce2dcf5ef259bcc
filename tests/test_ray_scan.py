"""``tripwire scan --engine ray``: the same records as a local scan, and every item exactly once when a Ray
worker process, a Ray node or the driver is killed mid-scan (on PostgreSQL when TRIPWIRE_TEST_PG_URL is set,
else on SQLite).

One Ray cluster of real ``ray start`` nodes serves the whole module (start-up costs seconds); the node test
adds a second node and kills it, so it runs last.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

# not imported here: Ray reads its authentication mode when first imported, after RayNodes has set it
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray not installed (the cluster extra)")

from conftest import PG_URL, _pg_database  # noqa: E402
from helpers import image_bytes, synth_image, write_images  # noqa: E402
from ray_helpers import Holder, RayNodes  # noqa: E402
from s3_helpers import CREDENTIALS, s3_server, seed  # noqa: E402

from tripwire.config import Config  # noqa: E402
from tripwire.pipeline.scan import run_scan  # noqa: E402
from tripwire.store import queries  # noqa: E402
from tripwire.store.db import Database  # noqa: E402
from tripwire.store.models import ItemRow, SourceRow  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def db_url(tmp_path):
    """One case database per test, not one per kind: PostgreSQL (a cluster scan's database) when
    TRIPWIRE_TEST_PG_URL is set, as in CI, else SQLite (a local single-node Ray); Ray tests take seconds each."""
    if PG_URL:
        yield from _pg_database()
    else:
        yield f"sqlite:///{tmp_path / 'case.db'}"


@pytest.fixture(scope="module")
def cluster():
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)  # before the nodes start: their workers read object storage with them
    nodes = RayNodes(head_cpus=2)
    yield nodes
    nodes.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _open(url: str) -> Database:
    db = Database(url)
    db.migrate()
    return db


def _records(db: Database, case: str) -> dict[str, dict]:
    case_id = db.case_id(case, create=False)
    return {r["path"]: {k: v for k, v in r.items() if k != "item_id"} for r in queries.iter_records(db, case_id)}


def _counts(db: Database, case: str) -> tuple[dict[str, int], int]:
    """path -> stored rows, and the number of done-markers: exactly-once means every count is 1."""
    case_id = db.case_id(case, create=False)
    with db.session() as s:
        per_path = dict(s.execute(select(ItemRow.path, func.count()).where(ItemRow.case_id == case_id)
                                  .group_by(ItemRow.path)).all())
        sources = s.scalar(select(func.count()).select_from(SourceRow).where(SourceRow.case_id == case_id))
    return per_path, int(sources or 0)


def _media(root: Path, images: int) -> int:
    """Benign synthesised pictures, an archive, a sub-folder, an empty file and a dangling link; returns items."""
    write_images(root / "media", images, size=(96, 72))
    write_images(root / "media" / "sub", 2, fmt="PNG", size=(64, 48))
    with zipfile.ZipFile(root / "media" / "bundle.zip", "w") as zf:
        for i in range(2):
            zf.writestr(f"inner/{i}.jpg", image_bytes(synth_image(500 + i, (64, 48))))
    (root / "media" / "empty.bin").write_bytes(b"")
    os.symlink(root / "media" / "gone.jpg", root / "media" / "dangling.jpg")
    return images + 2 + 1 + 2 + 1 + 1


def test_ray_scan_stores_the_records_of_a_local_scan(cluster, db_url, tmp_path):
    expected = _media(tmp_path, 6)
    db = _open(db_url)
    try:
        local = run_scan([str(tmp_path / "media")], db, "local", None, Config(), workers=2, quiet=True)
        on_ray = run_scan([str(tmp_path / "media")], db, "ray", None, Config(), workers=2, quiet=True, engine="ray")
        assert local.items_written == on_ray.items_written == expected
        a, b = _records(db, "local"), _records(db, "ray")
        assert len(a) == expected and a == b
        assert b[str(tmp_path / "media" / "dangling.jpg")]["error"]["code"] == "unreadable"
        assert b[str(tmp_path / "media" / "bundle.zip") + "!/inner/1.jpg"]["pdq"]
        again = run_scan([str(tmp_path / "media")], db, "ray", None, Config(), workers=2, quiet=True, engine="ray")
        assert (again.items_written, again.sources_skipped) == (0, on_ray.sources_total)
        assert _counts(db, "ray") == ({p: 1 for p in a}, on_ray.sources_total)
    finally:
        db.dispose()


def test_ray_scan_of_object_storage_equals_a_local_one(cluster, db_url):
    db = _open(db_url)
    try:
        with s3_server() as endpoint:
            objects = seed(endpoint, "evidence")
            config = Config(sections={"s3": {"endpoint_url": endpoint}})
            run_scan(["s3://evidence/scan"], db, "local", None, config, workers=1, quiet=True)
            on_ray = run_scan(["s3://evidence/scan"], db, "ray", None, config, workers=2, quiet=True, engine="ray")
        a, b = _records(db, "local"), _records(db, "ray")
        assert on_ray.items_written == len(objects) + 2 == len(b)  # + the archive's members
        assert a == b and "s3://evidence/scan/bundle.zip!/inner/0.jpg" in b
    finally:
        db.dispose()


def test_killed_ray_worker_processes_lose_and_repeat_nothing(cluster, db_url, tmp_path):
    from ray_helpers import killing

    write_images(tmp_path / "media", 10, size=(96, 72))
    (tmp_path / "media" / "victim.jpg").write_bytes(image_bytes(synth_image(99, (96, 72))))
    (tmp_path / "media" / "sub").mkdir()
    (tmp_path / "media" / "sub" / "poison.jpg").write_bytes(image_bytes(synth_image(98, (96, 72))))
    db = _open(db_url)
    try:
        result = run_scan([str(tmp_path / "media")], db, "c", None, Config(), workers=2, quiet=True, engine="ray",
                          extractors=killing)
        assert (tmp_path / "victim.jpg.killed").exists(), "the worker was never killed"
        per_path, sources = _counts(db, "c")
        assert result.items_written == len(per_path) == sources == 12
        assert set(per_path.values()) == {1}
        bad = {p: (r["error"], r.get("pdq")) for p, r in _records(db, "c").items() if r["error"] or not r.get("pdq")}
        # the file that kills its worker every time is recorded after 3 attempts; every other item is complete
        assert list(bad) == [str(tmp_path / "media" / "sub" / "poison.jpg")]
        assert bad[str(tmp_path / "media" / "sub" / "poison.jpg")][0]["code"] == "worker_crashed"
    finally:
        db.dispose()


def test_killed_driver_then_same_command_stores_every_item_once(cluster, db_url, tmp_path):
    write_images(tmp_path / "media", 48, size=(64, 48))
    script = ("import sys; from ray_helpers import slow; from tripwire.config import Config; "
              "from tripwire.pipeline.scan import run_scan; from tripwire.store.db import Database; "
              "db = Database(sys.argv[1]); db.migrate(); "
              "run_scan([sys.argv[2]], db, 'c', None, Config(), workers=2, quiet=True, engine='ray', "
              "ray_address=sys.argv[3], extractors=slow)")
    cmd = [sys.executable, "-c", script, db_url, str(tmp_path / "media"), cluster.address]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    db = _open(db_url)
    try:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _counts(db, "c")[1] < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        partial = _counts(db, "c")[1]
        assert 0 < partial < 48, "the driver was killed too late to show anything"
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        per_path, sources = _counts(db, "c")
        assert len(per_path) == sources == 48 and set(per_path.values()) == {1}
    finally:
        db.dispose()


def test_killed_ray_node_loses_and_repeats_nothing(cluster, db_url, tmp_path):
    from ray_helpers import slow

    import ray

    # the head's CPUs are held, so the scan's actors start on the second node; the kill frees them again,
    # as a replacement node would (Ray restarts the lost actors wherever there is room)
    holder = ray.remote(num_cpus=2)(Holder).remote()
    ray.get(holder.ready.remote())
    before = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    victim_proc = cluster.add_worker(cpus=2)
    victim = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] not in before)
    write_images(tmp_path / "media", 24, size=(64, 48))
    db = _open(db_url)
    outcome: dict[str, object] = {}

    def scan() -> None:
        try:
            outcome["result"] = run_scan([str(tmp_path / "media")], db, "c", None, Config(), workers=2, quiet=True,
                                         engine="ray", extractors=slow)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    try:
        thread = threading.Thread(target=scan)
        thread.start()
        deadline = time.monotonic() + 120
        while not (tmp_path / f"started-{victim}").exists() and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (tmp_path / f"started-{victim}").exists(), "no work ran on the second node"
        cluster.kill(victim_proc)
        ray.kill(holder)
        thread.join(timeout=180)
        assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
        per_path, sources = _counts(db, "c")
        assert len(per_path) == sources == 24 and set(per_path.values()) == {1}
        nodes = {r["ray_node"] for r in _records(db, "c").values()}
        assert nodes - {victim}, "nothing was extracted after the node died"
    finally:
        db.dispose()

"""The service's default scan concurrency is sized from CPUs and a memory budget (issue 11 item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tripwire.config import DECODE_MEMORY_BUDGET, Config, Limits
from tripwire.errors import UsageError
from tripwire.service.settings import (ITEM_PEAK_BYTES, SERVICE_RESERVE_BYTES, ServiceSettings, available_memory,
                                       item_peak_bytes, scan_concurrency_for, sized_scan_concurrency)

GiB = 1024 ** 3


def test_item_peak_follows_the_decode_budget():
    assert abs(ITEM_PEAK_BYTES - (DECODE_MEMORY_BUDGET + GiB // 2)) < 64  # max_decode_pixels rounds down
    assert item_peak_bytes(Limits().max_decode_pixels // 2) < GiB + 1  # half the pixels: 0.5 + 0.5 GiB
    assert SERVICE_RESERVE_BYTES == GiB // 2


@pytest.mark.parametrize("cpus, memory, processes, expected", [
    (8, 64 * GiB, 1, 8),        # plenty of memory: one per CPU
    (8, 4 * GiB, 1, 2),         # (4 - 0.5) / 1.5 = 2.33
    (8, int(3.5 * GiB), 1, 2),  # exactly two slots
    (8, int(3.4 * GiB), 1, 1),
    (2, 16 * GiB, 1, 2),        # CPUs are the limit
    (16, 1 * GiB, 1, 1),        # too little memory: still one
    (16, 0, 1, 1),
    (0, 64 * GiB, 1, 1),        # a CPU count of 0 is taken as 1
    (8, 64 * GiB, 4, 2),        # tripwire serve --workers 4: the CPUs are shared
    (64, 8 * GiB, 2, 2),        # (8 - 2 x 0.5) / 1.5 = 4 slots, 2 per process
    (64, 4 * GiB, 4, 1),        # (4 - 2) / 1.5 = 1 slot for 4 processes: each still gets one
])
def test_scan_concurrency_for(cpus, memory, processes, expected):
    assert scan_concurrency_for(cpus, memory, processes) == expected


def test_setting_wins_and_budget_overrides_detection(monkeypatch):
    monkeypatch.setattr("tripwire.service.settings.available_cpus", lambda: 8)
    monkeypatch.setattr("tripwire.service.settings.available_memory", lambda: 64 * GiB)
    assert sized_scan_concurrency(ServiceSettings())[0] == 8
    n, how = sized_scan_concurrency(ServiceSettings(memory_budget_bytes=5 * GiB))
    assert n == 3 and "memory_budget_bytes" in how
    assert sized_scan_concurrency(ServiceSettings(scan_concurrency=5, memory_budget_bytes=GiB))[0] == 5
    # a lower [limits] max_decode_pixels means a smaller slot: (5 - 0.5) / (0.25 + 0.5) = 6
    assert sized_scan_concurrency(ServiceSettings(memory_budget_bytes=5 * GiB), 1, Limits().max_decode_pixels // 4)[0] == 6
    monkeypatch.setattr("tripwire.service.settings.available_memory", lambda: None)
    assert sized_scan_concurrency(ServiceSettings())[0] == 8  # memory unknown: one per CPU


def test_memory_budget_setting_from_config_and_environment():
    config = Config(sections={"service": {"memory_budget_bytes": 6 * GiB}})
    assert ServiceSettings.from_config(config, environ={}).memory_budget_bytes == 6 * GiB
    env = {"TRIPWIRE_SERVICE_MEMORY_BUDGET_BYTES": str(2 * GiB)}
    assert ServiceSettings.from_config(config, environ=env).memory_budget_bytes == 2 * GiB
    with pytest.raises(UsageError):
        ServiceSettings.from_config(Config(sections={"service": {"memory_budget_bytes": -1}}), environ={})


def _fake_proc(tmp: Path, meminfo_kib: int, cgroup: str) -> Path:
    proc = tmp / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(f"MemTotal: 99999999 kB\nMemFree: 1 kB\nMemAvailable: {meminfo_kib} kB\n")
    (proc / "self" / "cgroup").write_text(cgroup)
    return proc


def test_available_memory_cgroup_v2(tmp_path):
    proc = _fake_proc(tmp_path, 32 * 1024 ** 2, "0::/system.slice/tripwire.service\n")
    root = tmp_path / "cg"
    (root / "system.slice" / "tripwire.service").mkdir(parents=True)
    (root / "system.slice" / "tripwire.service" / "memory.max").write_text("max\n")
    (root / "system.slice" / "memory.max").write_text(f"{6 * GiB}\n")  # a parent's limit applies too
    assert available_memory(str(proc), str(root)) == 6 * GiB


def test_available_memory_cgroup_v1_and_meminfo(tmp_path):
    proc = _fake_proc(tmp_path, 3 * 1024 ** 2, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    root = tmp_path / "cg"
    (root / "memory" / "docker" / "abc").mkdir(parents=True)
    (root / "memory" / "docker" / "abc" / "memory.limit_in_bytes").write_text(f"{8 * GiB}\n")
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "unlimited"
    assert available_memory(str(proc), str(root)) == 3 * GiB  # MemAvailable is lower than the limit
    (root / "memory" / "docker" / "abc" / "memory.limit_in_bytes").write_text(f"{2 * GiB}\n")
    assert available_memory(str(proc), str(root)) == 2 * GiB


def test_available_memory_unknown(tmp_path):
    assert available_memory(str(tmp_path / "none"), str(tmp_path / "none")) is None


def test_readyz_shows_the_chosen_concurrency(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient
    from service_helpers import make_config, make_keys, make_settings

    from tripwire.service.app import create_app
    from tripwire.store.db import open_db

    monkeypatch.setattr("tripwire.service.settings.available_cpus", lambda: 8)
    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    keys = make_keys(db)
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config, memory_budget_bytes=5 * GiB), database=db)
    with TestClient(app, base_url="https://testserver") as client:
        body = client.get("/readyz", headers=keys.h("auditor")).json()
    assert body["scans"] == {"concurrency": 3, "workers": 4}

"""The command line as a user meets it: stdin lists, inspect, report, exit codes."""

from __future__ import annotations

import json

from helpers import image_bytes, read_jsonl, synth_image, tripwire, write_images


def test_scan_reads_paths_from_stdin(tmp_path):
    paths = write_images(tmp_path / "m", 3)
    listing = "\n".join(str(p) for p in paths[:2]) + "\n\n"
    proc = tripwire("scan", "-", "--db", str(tmp_path / "t.db"), "--out", str(tmp_path / "o"), input=listing)
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["path"] for r in read_jsonl(tmp_path / "o" / "items.jsonl")) == sorted(str(p) for p in paths[:2])


def test_piped_scan_is_line_oriented(tmp_path):
    write_images(tmp_path / "m", 2)
    proc = tripwire("scan", str(tmp_path / "m"), "--db", str(tmp_path / "t.db"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 0
    assert "\x1b[" not in proc.stderr  # no terminal control codes when not on a terminal
    assert "2 items stored from 2 files" in proc.stderr


def test_inspect_json_and_text(tmp_path):
    jpg = tmp_path / "named.png"  # a JPEG with the wrong extension
    jpg.write_bytes(image_bytes(synth_image(3), "JPEG"))
    proc = tripwire("inspect", str(jpg), "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["media_type"] == "image/jpeg" and len(record["pdq"]) == 64 and record["error"] is None
    assert list(record)[:11] == ["path", "size", "media_type", "width", "height", "md5", "sha1", "sha256", "pdq", "pdq_quality", "error"]
    text = tripwire("inspect", str(jpg))
    assert text.returncode == 0 and record["sha256"] in text.stdout


def test_report_rewrites_from_the_database(tmp_path):
    write_images(tmp_path / "m", 2)
    assert tripwire("scan", str(tmp_path / "m"), "--db", str(tmp_path / "t.db"), "--case", "c1", "--out", str(tmp_path / "o")).returncode == 0
    proc = tripwire("report", "c1", "--db", str(tmp_path / "t.db"), "--out", str(tmp_path / "again"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "again" / "items.jsonl").read_text() == (tmp_path / "o" / "items.jsonl").read_text()
    missing = tripwire("report", "nope", "--db", str(tmp_path / "t.db"))
    assert missing.returncode == 2 and "c1" in missing.stderr


def test_usage_errors_exit_2(tmp_path):
    assert tripwire("scan").returncode == 2
    assert tripwire("scan", str(tmp_path), "--workers", "0").returncode == 2
    assert tripwire("inspect", str(tmp_path / "missing.jpg")).returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[limits]\nno_such_limit = 3\n")
    proc = tripwire("scan", str(tmp_path), "--config", str(bad))
    assert proc.returncode == 2 and "no_such_limit" in proc.stderr


def test_config_file_and_environment(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[limits]\nmax_pixels = 1000\n")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.jpg").write_bytes(image_bytes(synth_image(1, (64, 64)), "JPEG"))
    proc = tripwire("scan", str(tmp_path / "m"), "--db", str(tmp_path / "t.db"), "--out", str(tmp_path / "o"), "--config", str(cfg))
    assert proc.returncode == 0
    assert read_jsonl(tmp_path / "o" / "items.jsonl")[0]["error"]["code"] == "decompression_bomb"


def test_help_and_version_load_no_domain_libraries():
    """Command modules import their domain code inside the commands: --help and --version stay fast."""
    import subprocess
    import sys

    heavy = ("numpy", "numba", "sqlalchemy", "networkx", "c2pa", "fastapi", "threatexchange", "PIL")
    code = ("import sys\nfrom tripwire.cli import app\n"
            "for args in (['--version'], ['--help'], ['bank', '--help'], ['posts', 'scan', '--help']):\n"
            "    try:\n        app(args, prog_name='tripwire')\n    except SystemExit:\n        pass\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_bank_create_help_names_every_category_scheme():
    from tripwire.banks.categories import SCHEMES

    proc = tripwire("bank", "create", "--help", env={**__import__("os").environ, "COLUMNS": "400"})
    assert proc.returncode == 0, proc.stderr
    assert f"Category codes: {', '.join(SCHEMES)}." in proc.stdout

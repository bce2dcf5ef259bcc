"""mypy over the whole package, with the settings in pyproject.toml (strict on the core).

Run here so that the README's one test command (and CI, which runs exactly it) type-checks too.
"""

from __future__ import annotations

import os
from pathlib import Path

from mypy import api

REPO = Path(__file__).resolve().parents[1]


def test_mypy_is_clean():
    cwd = os.getcwd()
    os.chdir(REPO)  # mypy reads [tool.mypy] from the pyproject.toml of the working directory
    try:
        stdout, stderr, status = api.run(["--config-file", str(REPO / "pyproject.toml"),
                                          "--cache-dir", str(REPO / ".mypy_cache")])
    finally:
        os.chdir(cwd)
    assert status == 0, stdout + stderr

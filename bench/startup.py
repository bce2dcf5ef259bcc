"""The fixed cost of ``tripwire scan`` (issue 12): this tree against another one, interleaved, whole processes.

Three commands per tree and round, each a fresh process with a NEW case database (SQLite) and output folder:
``tripwire --version``, ``tripwire scan ONE_FILE --workers 1`` and ``tripwire scan CAMERA --workers 1`` (the 50
camera fixtures), plus python-threatexchange's PDQ loop over the same 50 files in process (bench/hashing.py's
``TE_LOOP``, its own start-up not counted) as the issue's yardstick. Measured: wall time of the whole command (``subprocess.run`` with captured output, as
bench/hashing.py runs it) and the CPU time (user + sys) of the command and the workers it waited for
(``RUSAGE_CHILDREN``; the multiprocessing resource tracker, which outlives the command, is not counted).

    PYTHONPATH=src python bench/startup.py --base 4e5fd64 [--rounds 5] [--pycache DIR]

``--base`` is a git revision of this repository (its ``src/`` is exported to a temporary folder) or a ``src``
folder; the order of the two trees alternates from round to round. ``--pycache DIR`` gives both trees warm
bytecode caches in DIR (``PYTHONPYCACHEPREFIX``, one warm-up run each), as an installed package has; without it
the environment decides (with ``PYTHONDONTWRITEBYTECODE=1``, as on the shared box, tripwire's own modules are
compiled again by every process).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from hashing import TE_LOOP

HERE = Path(__file__).resolve().parents[1]
CAMERA = HERE.parent / "shared" / "fixtures" / "camera"
ONE_FILE = CAMERA / "Canon_40D.jpg"


def export_src(rev: str, into: Path) -> Path:
    """``src/`` of revision ``rev`` of this repository, written under ``into``."""
    archive = subprocess.run(["git", "-C", str(HERE), "archive", rev, "src"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run(src: Path, args: list[str], work: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s) of one ``python -m tripwire ARGS`` with a new database and output folder in ``work``."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if args[0] == "scan":
        args = [*args, "--db", str(work / "case.db"), "--out", str(work / "out"), "--workers", "1", "-q"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tripwire", *args], check=True, capture_output=True,
                   env=dict(env, PYTHONPATH=str(src)))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision or src folder to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pycache", type=Path, help="warm bytecode caches in this folder (PYTHONPYCACHEPREFIX)")
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.base) if Path(args.base).is_dir() else export_src(args.base, Path(tmp) / "base")
        trees = {"before": base.resolve(), "this tree": HERE / "src"}
        if args.pycache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(args.pycache.resolve())
        commands = {"--version": ["--version"], "scan 1 file": ["scan", str(ONE_FILE)],
                    "scan camera (50)": ["scan", str(CAMERA)]}
        if args.pycache:
            for src in trees.values():
                for argv in commands.values():
                    run(src, argv, Path(tmp) / "warm", env)
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        te: list[float] = []
        camera = [str(p) for p in sorted(CAMERA.rglob("*")) if p.is_file()]
        for r in range(args.rounds):
            order = list(trees.items()) if r % 2 == 0 else list(reversed(trees.items()))
            for command, argv in commands.items():
                for name, src in order:
                    times.setdefault((command, name), []).append(run(src, argv, Path(tmp) / "w", env))
            out = subprocess.run([sys.executable, "-c", TE_LOOP, *camera], check=True, capture_output=True, text=True,
                                 env=env)
            te.append(float(out.stdout.strip().splitlines()[-1]))
        print(f"{args.rounds} interleaved rounds; medians (range); bytecode: "
              f"{'warm, ' + str(args.pycache) if args.pycache else 'as the environment says'}")
        print("| command | tree | wall s | CPU s (user+sys) | wall before / this tree |")
        print("|---|---|---:|---:|---:|")
        for command in commands:
            walls = {name: [w for w, _ in times[(command, name)]] for name in trees}
            for name in trees:
                wall = walls[name]
                cpu = [c for _, c in times[(command, name)]]
                ratio = [b / t for b, t in zip(walls["before"], walls["this tree"])]
                print(f"| {command} | {name} | {statistics.median(wall):.2f} ({min(wall):.2f}-{max(wall):.2f}) | "
                      f"{statistics.median(cpu):.2f} ({min(cpu):.2f}-{max(cpu):.2f}) | "
                      + (f"{statistics.median(ratio):.2f}x |" if name == "this tree" else "|"))
        print(f"\nthreatexchange PDQ loop over the {len(camera)} camera files, in process: {statistics.median(te):.2f} s "
              f"({min(te):.2f}-{max(te):.2f}); x threatexchange (its s / scan s, per round): "
              + ", ".join(f"{name} {statistics.median([t / w for t, (w, _) in zip(te, times[('scan camera (50)', name)])]):.2f}x"
                          for name in trees))


if __name__ == "__main__":
    main()

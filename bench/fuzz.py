"""Long fuzzing run: every target of tests/test_fuzz.py for a time budget, random seeds, crashes collected.

What: each Hypothesis target of ``tests/test_fuzz.py`` (same strategies, same properties) is run again and
again with fresh random seeds until its share of the time budget is spent; every failure is shrunk by
Hypothesis, de-duplicated by exception type and the innermost tripwire source line, and listed with its
minimal example and traceback. Counts are test cases Hypothesis executed (shrinking included).

How::

    nice -n 10 .venv/bin/python bench/fuzz.py --minutes 10 [--targets image,archive] [--json out.json]

The summary table is what bench/README.md records. A crash found here is replayed with
``TRIPWIRE_FUZZ_SEED=<seed> TRIPWIRE_FUZZ_EXAMPLES=<chunk> pytest tests/test_fuzz.py -k <target>``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("HYPOTHESIS_EXPERIMENTAL_OBSERVABILITY_NOCOVER", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]

from hypothesis import seed  # noqa: E402
from hypothesis.internal.observability import add_observability_callback  # noqa: E402

test_fuzz: Any = None


def _load(chunk: int) -> None:
    """Import the targets with ``chunk`` examples per run and random (not derandomized) generation."""
    global test_fuzz
    os.environ["TRIPWIRE_FUZZ_EXAMPLES"] = str(chunk)
    import test_fuzz as module

    test_fuzz = module


class _Factory:
    """Enough of pytest's tmp_path_factory for the targets."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=name, dir=self.root))


def _fixtures(root: Path) -> dict[str, Any]:
    from tripwire.banks.store import BankStore
    from tripwire.store.db import open_db

    bank_db = open_db(f"sqlite:///{root / 'bank.db'}")
    store = BankStore(bank_db)
    for scheme in ("vics", "ncmec", "uk"):
        store.create_bank(f"fuzz-{scheme}", category_scheme=scheme)
    return {"bank_store": store, "case_db": open_db(f"sqlite:///{root / 'case.db'}"), "tmp_path_factory": _Factory(root)}


def targets() -> dict[str, Any]:
    return {name[len("test_"):]: fn for name, fn in vars(test_fuzz).items()
            if name.startswith("test_") and hasattr(fn, "hypothesis")}


_COUNT = {"cases": 0}


def _observe(obs: Any) -> None:
    if getattr(obs, "type", None) == "test_case":
        _COUNT["cases"] += 1


def _signature(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/src/tripwire/" in f.filename]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    loc = f"{where.filename.split('/src/')[-1]}:{where.lineno}" if where else "?"
    return f"{type(exc).__name__} at {loc}"


def run(minutes: float, only: list[str] | None, chunk: int) -> dict[str, Any]:
    _load(chunk)
    found = targets()
    names = [n for n in found if not only or any(o in n for o in only)]
    budget = minutes * 60 / max(1, len(names))
    root = Path(tempfile.mkdtemp(prefix="tripwire-fuzz-"))
    fixtures = _fixtures(root)
    test_fuzz.run_item(test_fuzz.hostile.clean_png())  # warm up (imports, JIT) outside every deadline
    add_observability_callback(_observe)
    results: dict[str, Any] = {}
    for name in names:
        fn = found[name]
        params = [p for p in fn.hypothesis.inner_test.__code__.co_varnames[: fn.hypothesis.inner_test.__code__.co_argcount]
                  if p in fixtures]
        kwargs = {p: fixtures[p] for p in params}
        start, runs = time.monotonic(), 0
        before = _COUNT["cases"]
        crashes: dict[str, dict[str, Any]] = {}
        while time.monotonic() - start < budget:
            s = random.getrandbits(32)
            test = seed(s)(fn)
            runs += 1
            try:
                test(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - every failure is a finding
                if isinstance(exc, KeyboardInterrupt):
                    raise
                sig = _signature(exc)
                entry = crashes.setdefault(sig, {"count": 0, "seed": s, "chunk": chunk})
                entry["count"] += 1
                if "traceback" not in entry:
                    entry["message"] = f"{type(exc).__name__}: {exc}"[:2000]
                    entry["notes"] = [str(n)[:3000] for n in getattr(exc, "__notes__", [])]
                    entry["traceback"] = "".join(traceback.format_exception(exc))[-6000:]
        results[name] = {"cases": _COUNT["cases"] - before, "runs": runs, "seconds": round(time.monotonic() - start, 1),
                         "crashes": crashes}
        print(f"{name:32s} {results[name]['cases']:>8,d} cases  {len(crashes)} distinct crash(es)", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="total budget, shared equally by the targets")
    ap.add_argument("--targets", default="", help="comma-separated substrings of target names (default: all)")
    ap.add_argument("--chunk", type=int, default=200, help="examples per Hypothesis run (one seed)")
    ap.add_argument("--json", default="", help="write the full results (tracebacks included) here")
    args = ap.parse_args()
    only = [t for t in args.targets.split(",") if t] or None
    results = run(args.minutes, only, args.chunk)
    print("\n| target | test cases | seconds | distinct crashes |\n|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['cases']:,} | {r['seconds']:.0f} | {len(r['crashes'])} |")
    total = sum(r["cases"] for r in results.values())
    print(f"| **total** | **{total:,}** | {sum(r['seconds'] for r in results.values()):.0f} | "
          f"{sum(len(r['crashes']) for r in results.values())} |")
    for name, r in results.items():
        for sig, c in r["crashes"].items():
            print(f"\n## {name}: {sig} (x{c['count']}, seed {c['seed']})\n{c['message']}\n" + "\n".join(c["notes"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()

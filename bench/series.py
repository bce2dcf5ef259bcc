"""Series recovery: 3 synthetic "creators" + unrelated generator records -> purity, completeness, speed.

Each creator has its own checkpoint + LoRA set + prompt template and varies it the way a creator's month
does: a word swapped for a synonym, an adjective added or dropped, a different or consecutive seed, LoRA
weights nudged. One creator (C) uses a public checkpoint with no LoRA, the same checkpoint many unrelated
records use, so only the prompt template keeps them apart. Unrelated records draw checkpoints from a small
public pool (including creator C's) and prompts from the same benign vocabulary. Prompts are benign
landscape/object descriptions; model and LoRA names are placeholders (``ckpt-one``, ``style-alpha``).

Purity: of the items placed in a creator's majority series, the share that belong to that creator (and no
unrelated record shares a series with a creator's records). Completeness: the share of a creator's records
in its largest series. Both must be ≥ 0.95.

    PYTHONPATH=src python bench/series.py [--per-creator 100] [--unrelated 300] [--scale 100000] [--db]

``--scale`` times the in-memory assignment (facts, MinHash, LSH, verification: what ``assign_series`` does
per item besides database I/O) on that many records; ``--db`` also times :func:`assign_series` against a
SQLite database on ``--db-items`` items.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

SUBJECTS = ["mountain lake", "pine forest", "harbour", "lighthouse", "wheat field", "desert canyon", "old bridge",
            "glacier", "river delta", "city skyline", "orchard", "waterfall", "meadow", "sea cliff", "volcano",
            "bamboo grove", "snowy village", "rice terrace", "coral reef", "sand dunes"]
TIMES = ["at dawn", "at dusk", "at noon", "at night", "in winter", "in autumn", "after rain", "in fog"]
STYLES = ["oil painting", "watercolor", "pencil sketch", "digital art", "photograph", "gouache", "ink drawing",
          "pastel", "linocut", "mosaic"]
ADJECTIVES = ["misty", "quiet", "golden", "soft", "vivid", "calm", "wide", "distant", "bright", "muted"]
EXTRAS = ["detailed", "wide angle", "soft light", "high contrast", "film grain", "muted colors", "symmetry",
          "long exposure", "bokeh", "sharp focus", "volumetric light", "minimal"]
SWAPS = {"dawn": "sunrise", "dusk": "sunset", "lake": "pond", "painting": "artwork", "misty": "foggy",
         "quiet": "still", "boats": "ships", "harbour": "port", "glowing": "shining", "forest": "woods"}

CREATORS: list[dict[str, Any]] = [
    {"name": "A", "model": "ckpt-one", "model_hash": "1a2b3c4d5e", "tool": "AUTOMATIC1111",
     "loras": [("style-alpha", "0a1b2c3d4e5f")],
     "template": "masterpiece, a {adj} mountain lake at dawn, reflections, oil painting, style-alpha, detailed brush strokes"},
    {"name": "B", "model": "ckpt-two", "model_hash": "6f7e8d9c0b", "tool": "AUTOMATIC1111",
     "loras": [("style-bravo", "111122223333"), ("style-charlie", "444455556666")],
     "template": "a {adj} harbour with small boats, glowing lanterns, watercolor, style-bravo, soft palette, wide view"},
    {"name": "C", "model": "sdxl-base", "model_hash": "9999888877", "tool": "AUTOMATIC1111", "loras": [],
     "template": "an old {adj} lighthouse on a sea cliff, storm clouds, pencil sketch, crosshatching, style-delta"},
]
PUBLIC_MODELS = [("sdxl-base", "9999888877"), ("ckpt-public-1", "abcabcabca"), ("ckpt-public-2", "0123401234"),
                 ("ckpt-public-3", "5678956789")]


def _vary(template: str, rng: random.Random) -> str:
    words = template.replace("{adj}", rng.choice(ADJECTIVES)).split(" ")
    for _ in range(rng.choice([0, 1, 1, 2])):  # synonym swaps
        i = rng.randrange(len(words))
        bare = words[i].rstrip(",")
        if bare in SWAPS:
            words[i] = words[i].replace(bare, SWAPS[bare])
    if rng.random() < 0.4:  # drop an adjective-like word (not the first)
        del words[rng.randrange(1, len(words))]
    if rng.random() < 0.4:  # add one
        words.insert(rng.randrange(1, len(words)), rng.choice(ADJECTIVES))
    return " ".join(words)


def _parameters(prompt: str, seed: int, model: str, model_hash: str, loras: list[tuple[str, str]]) -> str:
    line = f"Steps: 28, Sampler: DPM++ 2M, CFG scale: 6.5, Seed: {seed}, Size: 768x512, Model hash: {model_hash}, Model: {model}"
    if loras:
        line += ', Lora hashes: "' + ", ".join(f"{n}: {h}" for n, h in loras) + '"'
    return f"{prompt}\nNegative prompt: blurry, low quality\n{line}"


def make_records(per_creator: int = 100, unrelated: int = 300, seed: int = 17) -> list[tuple[str, dict[str, Any]]]:
    """(truth label, ``generator`` field as the AUTOMATIC1111 parser reports it) for every record, shuffled;
    unrelated records are labelled ``u<n>`` (each its own truth)."""
    rng = random.Random(seed)
    out: list[tuple[str, dict[str, Any]]] = []
    for c in CREATORS:
        base_seed = rng.randrange(1, 2 ** 32)
        for n in range(per_creator):
            prompt = _vary(c["template"], rng)
            tags = "".join(f", <lora:{name}:{rng.choice([0.6, 0.7, 0.8, 0.9])}>" for name, _ in c["loras"])
            prompt_full = prompt + tags
            s = base_seed + n if rng.random() < 0.7 else rng.randrange(1, 2 ** 32)  # mostly consecutive seeds
            gen = {"tool": c["tool"], "model": c["model"], "model_hash": c["model_hash"], "seed": s,
                   "prompt": prompt_full, "raw": {"parameters": _parameters(prompt_full, s, c["model"], c["model_hash"], c["loras"])}}
            out.append((c["name"], gen))
    for n in range(unrelated):
        model, model_hash = rng.choice(PUBLIC_MODELS)
        words = [f"a {rng.choice(ADJECTIVES)} {rng.choice(SUBJECTS)} {rng.choice(TIMES)}", rng.choice(STYLES)]
        words += rng.sample(EXTRAS, rng.randrange(1, 4))
        prompt = ", ".join(words)
        s = rng.randrange(1, 2 ** 32)
        out.append((f"u{n}", {"tool": "AUTOMATIC1111", "model": model, "model_hash": model_hash, "seed": s,
                              "prompt": prompt, "raw": {"parameters": _parameters(prompt, s, model, model_hash, [])}}))
    rng.shuffle(out)
    return out


def score(truth: list[str], labels: list[Any]) -> dict[str, Any]:
    """Per creator: its majority series, purity (creator's share of that series) and completeness (share of
    the creator's records in it); overall: the minimum of each."""
    creators = sorted({t for t in truth if not t.startswith("u")})
    per: dict[str, dict[str, float]] = {}
    for c in creators:
        mine = [lab for t, lab in zip(truth, labels) if t == c]
        series, count = Counter(mine).most_common(1)[0]
        members = [t for t, lab in zip(truth, labels) if lab == series and lab is not None]
        per[c] = {"series": series, "members": len(members), "purity": members.count(c) / len(members),
                  "completeness": count / len(mine)}
    return {"per_creator": per, "purity": min(p["purity"] for p in per.values()),
            "completeness": min(p["completeness"] for p in per.values()),
            "series": len({lab for lab in labels if lab is not None})}


def _db_time(items: int) -> float:
    """Seconds :func:`assign_series` takes for ``items`` stored items (SQLite, temp dir), after inserting them."""
    import tempfile

    from sqlalchemy import insert

    from tripwire.match.series import assign_series
    from tripwire.store.db import open_db
    from tripwire.store.models import Content, Fact, ItemRow

    records = make_records(items // 3 // 2, items - 3 * (items // 3 // 2))
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(f"sqlite:///{tmp}/series.db")
        case = db.case_id("bench")
        with db.session() as s:
            for n, (_, gen) in enumerate(records):
                sha = f"{n:064x}"
                s.execute(insert(Content).values(sha256=sha, md5=sha[:32], sha1=sha[:40], size=1, media_type="image/png"))
                s.execute(insert(Fact).values(sha256=sha, extractor="provenance", version="1", data={"generator": gen}))
                s.execute(insert(ItemRow).values(case_id=case, path_key=sha, path=f"/bench/{n}.png", source_path=f"/bench/{n}.png",
                                                 sha256=sha, size=1, media_type="image/png", stage_data={}))
        started = time.perf_counter()
        assign_series(db, case)
        seconds = time.perf_counter() - started
        db.dispose()
    return seconds


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from tripwire.match.series import DEFAULT_THRESHOLD, group_records

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-creator", type=int, default=100)
    ap.add_argument("--unrelated", type=int, default=300)
    ap.add_argument("--scale", type=int, default=100_000)
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--db", action="store_true", help="also time assign_series on a SQLite database")
    ap.add_argument("--db-items", type=int, default=20_000)
    args = ap.parse_args(argv)

    records = make_records(args.per_creator, args.unrelated)
    labels = group_records([g for _, g in records], args.threshold)
    result = score([t for t, _ in records], labels)
    print(f"records: {len(records)} ({args.per_creator} per creator x 3 + {args.unrelated} unrelated), "
          f"threshold {args.threshold}")
    for c, p in result["per_creator"].items():
        print(f"  creator {c}: series {p['series']} with {p['members']} members, purity {p['purity']:.3f}, "
              f"completeness {p['completeness']:.3f}")
    print(f"purity {result['purity']:.3f}  completeness {result['completeness']:.3f}  series found {result['series']}")
    big = make_records(args.scale // 3 // 2, args.scale - 3 * (args.scale // 3 // 2), seed=99)
    started = time.perf_counter()
    group_records([g for _, g in big], args.threshold)
    seconds = time.perf_counter() - started
    print(f"in-memory assignment: {len(big)} records in {seconds:.2f} s = {seconds * 100_000 / len(big):.1f} s per 100k")
    if args.db:
        db_seconds = _db_time(args.db_items)
        print(f"assign_series on SQLite: {args.db_items} items in {db_seconds:.2f} s = "
              f"{db_seconds * 100_000 / args.db_items:.1f} s per 100k")
    ok = result["purity"] >= 0.95 and result["completeness"] >= 0.95
    print("OK" if ok else "BELOW 95%")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

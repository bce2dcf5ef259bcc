"""Peak memory (RSS) of one item at the default limits: the largest images they accept, decoded and hashed.

Issue 11: a 570 KB PNG of 14000x14000 pixels peaked at 6.1 GB in ``tripwire inspect``. This builds, in a
temporary folder, benign synthesised images (gradients and bands, streamed to disk row by row):

- ``png-max-pixels``: RGBA PNG at ``limits.max_pixels`` (the largest accepted; decoded reduced, strip-wise);
- ``png-14000``: the issue's 14000x14000 RGB PNG;
- ``png-decode-cap``: RGBA PNG at ``limits.max_decode_pixels`` (the largest decoded at full resolution, with
  transparency compositing and the stealth reader's exact-pixel array: the worst full-resolution case);
- ``jpeg-max-pixels`` / ``jpeg-decode-cap``: baseline JPEGs of the same two sizes (RGB);

and for each measures the peak RSS (``ru_maxrss`` of the child, via ``os.wait4``) of
``python -m tripwire inspect FILE --json`` and of the in-process record path (``tripwire.inspect.inspect_file``,
the code a scan worker runs on an item). Run from the repository root:

    PYTHONPATH=src python bench/memory.py [--only NAME ...] [--src PATH]

``--src`` runs another source tree (an older checkout) for comparison.
"""

from __future__ import annotations

import argparse
import math
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def _rows(width: int, height: int, channels: int):
    ramp = (np.arange(width, dtype=np.uint32) * 255 // max(1, width - 1)).astype(np.uint8)
    for y in range(height):
        row = np.empty((width, channels), dtype=np.uint8)
        row[:, 0] = ramp
        row[:, 1] = (y * 255) // max(1, height - 1)
        row[:, 2] = 40 if (y // 700) % 2 else 200
        if channels == 4:
            row[:, 3] = 255 - ramp // 2
        yield row


def write_png(path: Path, width: int, height: int, channels: int) -> None:
    packer = zlib.compressobj(1)
    with path.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6 if channels == 4 else 2, 0, 0, 0)))
        pending = []
        size = 0
        for row in _rows(width, height, channels):
            part = packer.compress(b"\x01" + _sub_filter(row.tobytes(), channels))
            if part:
                pending.append(part)
                size += len(part)
            if size > 1 << 22:
                fh.write(_chunk(b"IDAT", b"".join(pending)))
                pending, size = [], 0
        pending.append(packer.flush())
        fh.write(_chunk(b"IDAT", b"".join(pending)) + _chunk(b"IEND", b""))


def _sub_filter(raw: bytes, bpp: int) -> bytes:
    arr = np.frombuffer(raw, dtype=np.uint8)
    out = arr.copy()
    out[bpp:] = arr[bpp:] - arr[:-bpp]
    return out.tobytes()


def write_jpeg(path: Path, width: int, height: int) -> None:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    img = Image.new("RGB", (width, height))
    band = 1024
    for top in range(0, height, band):
        rows = np.stack(list(_rows(width, min(band, height - top), 3)))
        img.paste(Image.fromarray(rows), (0, top))
    img.save(path, "JPEG", quality=85)


def peak_rss_mib(cmd: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, proc.returncode, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--src", default=str(HERE / "src"))
    args = parser.parse_args()
    sys.path.insert(0, str(HERE / "src"))
    from tripwire.config import Limits

    limits = Limits()
    side_max = math.isqrt(limits.max_pixels)
    side_cap = math.isqrt(getattr(limits, "max_decode_pixels", 44_739_242))
    cases = {
        "png-max-pixels": ("png", side_max, side_max, 4),
        "png-14000": ("png", 14000, 14000, 3),
        "png-decode-cap": ("png", side_cap, side_cap, 4),
        "jpeg-max-pixels": ("jpeg", side_max, side_max, 3),
        "jpeg-decode-cap": ("jpeg", side_cap, side_cap, 3),
    }
    env = dict(os.environ, PYTHONPATH=args.src)
    record = "import sys\nfrom tripwire.config import load_config\nfrom tripwire.inspect import inspect_file\ninspect_file(sys.argv[1], load_config())\n"
    print(f"limits: max_pixels={limits.max_pixels:,} max_decode_pixels={getattr(limits, 'max_decode_pixels', None)}; src={args.src}")
    print(f"{'case':18} {'size':>13} {'file':>9} {'inspect CLI':>14} {'record path':>14}")
    with tempfile.TemporaryDirectory(prefix="tw-mem-") as tmp:
        for name, (kind, w, h, ch) in cases.items():
            if args.only and name not in args.only:
                continue
            path = Path(tmp) / f"{name}.{kind}"
            # written by a child of its own: a child's ru_maxrss starts from its parent's RSS at fork, so this
            # process must never grow (the JPEG writer holds the whole image)
            writer = f"import sys; sys.path.insert(0, {str(HERE / 'bench')!r}); import memory as m; "
            writer += f"m.write_png(m.Path({str(path)!r}), {w}, {h}, {ch})" if kind == "png" else f"m.write_jpeg(m.Path({str(path)!r}), {w}, {h})"
            subprocess.run([sys.executable, "-c", writer], check=True)
            cli = peak_rss_mib([sys.executable, "-m", "tripwire", "inspect", str(path), "--json"], env)
            rec = peak_rss_mib([sys.executable, "-c", record, str(path)], env)
            size = f"{path.stat().st_size / 1e6:.1f} MB"
            fmt = lambda r: f"{r[0]:7.0f} MiB{'' if r[1] == 0 else ' rc' + str(r[1])} {r[2]:4.0f}s"  # noqa: E731
            print(f"{name:18} {f'{w}x{h}':>13} {size:>9} {fmt(cli):>14} {fmt(rec):>14}", flush=True)
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

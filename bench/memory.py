"""Peak memory (RSS) of one item at the default limits: the largest images they accept, decoded and hashed.

Issue 11: a 570 KB PNG of 14000x14000 pixels peaked at 6.1 GB in ``tripwire inspect``. This builds, in a
temporary folder, benign synthesised images (gradients and bands, streamed to disk row by row):

- ``png-max-pixels``: RGBA PNG at ``limits.max_pixels`` (the largest accepted; decoded reduced, strip-wise);
- ``png-14000``: the issue's 14000x14000 RGB PNG;
- ``png-decode-cap``: RGBA PNG at ``limits.max_decode_pixels`` (the largest decoded at full resolution, with
  transparency compositing and the stealth reader's exact-pixel array: the worst full-resolution case);
- ``jpeg-max-pixels`` / ``jpeg-decode-cap``: baseline JPEGs of the same two sizes (RGB);

and for each measures the peak RSS (``ru_maxrss`` of the child, via ``os.wait4``) and wall time of
``python -m tripwire inspect FILE --json`` and of the in-process record path (``tripwire.inspect.inspect_file``,
the code a scan worker runs on an item; ``tripwire.inspect`` in older trees), then of one ``POST /v1/scan`` of the file: a fresh ``tripwire serve``
(subprocess, loopback port, temporary SQLite database, a submitter key from ``tripwire keys create``), warmed
with a small upload so its extraction workers are up, then the file. The service's figures are each process's
``VmHWM`` (peak RSS) from ``/proc/<pid>/status``: the server, the extraction worker that took the item (the
largest), and the sum over the server and all its descendants (workers, multiprocessing's resource tracker) —
an upper bound on what the service held at once. Time: the request's wall time with warm workers (the CLI's
includes starting Python and importing). Run from the repository root:

    PYTHONPATH=src python bench/memory.py [--only NAME ...] [--src PATH] [--no-service]

``--src`` runs another source tree (an older checkout) for comparison.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from proctree import process_tree

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


def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Served:
    """A fresh ``tripwire serve`` on a loopback port with a temporary SQLite database and a submitter key."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        import httpx

        self.dir = Path(tempfile.mkdtemp(prefix="serve-", dir=tmp))
        db = str(self.dir / "service.db")
        out = subprocess.run([sys.executable, "-m", "tripwire", "keys", "create", "--role", "submitter", "--name",
                              "bench-memory", "--rate", "1000", "--db", db, "--json"],
                             env=env, check=True, capture_output=True, text=True).stdout
        self.key = json.loads(out)["key"]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.log = open(self.dir / "server.log", "wb")
        env = dict(env, TRIPWIRE_BANKS_INDEX_PATH=str(self.dir / "pdqindex"),
                   TRIPWIRE_SERVICE_ITEM_TIMEOUT_S=env.get("TRIPWIRE_SERVICE_ITEM_TIMEOUT_S", "900"))
        self.proc = subprocess.Popen([sys.executable, "-m", "tripwire", "serve", "--db", db, "--port", str(port),
                                      "--log-level", "info"], stdout=self.log, stderr=self.log, env=env,
                                     start_new_session=True)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=1800,
                                   headers={"Authorization": f"Bearer {self.key}"})
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {self.dir / 'server.log'}")
            try:
                r = self.client.get("/readyz")
                if r.status_code == 200 and r.json().get("ready"):
                    self.ready = r.json()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)

    def scan(self, name: str, data: io.BufferedReader | bytes) -> tuple[dict, float]:
        started = time.monotonic()
        r = self.client.post("/v1/scan", files=[("files", (name, data, "application/octet-stream"))])
        r.raise_for_status()
        return r.json(), time.monotonic() - started

    def warm(self) -> None:
        """One small upload starts the extraction workers; wait until all of them have imported."""
        from PIL import Image

        buf = io.BytesIO()
        Image.linear_gradient("L").convert("RGB").save(buf, "PNG")
        self.scan("warm.png", buf.getvalue())
        want = (self.ready.get("scans") or {}).get("workers")
        stable, last = 0, None
        while stable < 3:
            time.sleep(1)
            now = [(p, _status_kib(p, "VmRSS") // 4096) for p in process_tree(self.proc.pid)]
            stable = stable + 1 if now == last and (want is None or len(now) >= want + 1) else 0
            last = now

    def peaks_mib(self) -> tuple[float, float, float, int]:
        """(server VmHWM, largest descendant VmHWM, sum over all, process count) in MiB."""
        pids = process_tree(self.proc.pid)
        hwm = {p: _status_kib(p, "VmHWM") / 1024 for p in pids}
        children = [v for p, v in hwm.items() if p != self.proc.pid]
        return hwm[self.proc.pid], max(children, default=0.0), sum(hwm.values()), len(pids)

    def stop(self) -> None:
        self.client.close()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        self.log.close()


def serve_peak(path: Path, tmp: Path, env: dict[str, str]) -> dict:
    served = Served(tmp, env)
    try:
        served.warm()
        base = served.peaks_mib()
        with path.open("rb") as fh:
            body, seconds = served.scan(path.name, fh)
        peak = served.peaks_mib()
        record = body["files"][0]["records"][0]
        return {"base": base, "peak": peak, "seconds": seconds, "server_seconds": body.get("seconds"),
                "error": record.get("error"),
                "pdq": bool(record.get("pdq")), "scans": served.ready.get("scans")}
    finally:
        served.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--src", default=str(HERE / "src"))
    parser.add_argument("--no-service", action="store_true", help="only tripwire inspect and the record path")
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
    record = ("import sys\nfrom tripwire.config import load_config\ntry:\n    from tripwire.pipeline.inspect import inspect_file\n"
              "except ImportError:  # an older tree (--src)\n    from tripwire.inspect import inspect_file\n"
              "inspect_file(sys.argv[1], load_config())\n")
    print(f"limits: max_pixels={limits.max_pixels:,} max_decode_pixels={getattr(limits, 'max_decode_pixels', None)}; src={args.src}")
    print(f"{'case':18} {'size':>13} {'file':>9} {'inspect CLI':>14} {'record path':>14}")
    fmt = lambda r: f"{r[0]:7.0f} MiB{'' if r[1] == 0 else ' rc' + str(r[1])} {r[2]:4.0f}s"  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="tw-mem-") as tmp:
        files = []
        for name, (kind, w, h, ch) in cases.items():
            if args.only and name not in args.only:
                continue
            path = Path(tmp) / f"{name}.{kind}"
            # written by a child of its own: a child's ru_maxrss starts from its parent's RSS at fork, so this
            # process must never grow (the JPEG writer holds the whole image); the service part, which imports
            # more here, therefore runs after every ru_maxrss measurement
            writer = f"import sys; sys.path.insert(0, {str(HERE / 'bench')!r}); import memory as m; "
            writer += f"m.write_png(m.Path({str(path)!r}), {w}, {h}, {ch})" if kind == "png" else f"m.write_jpeg(m.Path({str(path)!r}), {w}, {h})"
            subprocess.run([sys.executable, "-c", writer], check=True)
            cli = peak_rss_mib([sys.executable, "-m", "tripwire", "inspect", str(path), "--json"], env)
            rec = peak_rss_mib([sys.executable, "-c", record, str(path)], env)
            size = f"{path.stat().st_size / 1e6:.1f} MB"
            print(f"{name:18} {f'{w}x{h}':>13} {size:>9} {fmt(cli):>14} {fmt(rec):>14}", flush=True)
            files.append((name, f"{w}x{h}", size, path))
        if args.no_service:
            return 0
        print("\nPOST /v1/scan of the same files (peak RSS, VmHWM: server / largest worker / sum over n processes;"
              " before the upload in brackets)")
        print(f"{'case':18} {'size':>13} {'file':>9} {'server':>9} {'worker':>9} {'all (n)':>14} {'request':>8}")
        for name, dims, size, path in files:
            sv = serve_peak(path, Path(tmp), env)
            server, worker, total, n = sv["peak"]
            line = (f"{name:18} {dims:>13} {size:>9} {server:5.0f} MiB {worker:5.0f} MiB {total:6.0f} MiB ({n})"
                    f" {sv['seconds']:7.1f}s  [{sv['base'][0]:.0f} / {sv['base'][1]:.0f} / {sv['base'][2]:.0f} MiB;"
                    f" server-timed {sv['server_seconds']}s; pdq {'yes' if sv['pdq'] else 'no'}"
                    f"{'; error ' + str(sv['error']) if sv['error'] else ''}; scans {sv['scans']}]")
            print(line, flush=True)
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

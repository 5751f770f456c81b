"""Latency of one grid update of `gankit serve`, over HTTP, with the default-sized model.

Starts `gankit serve` as a subprocess on a free port of 127.0.0.1 and times GET /api/grid
(16 samples of one class, every request a new slider value, like a dragged slider) from a
client that keeps its connection open, as a browser does. Prints the median and the 90th
percentile; the target is a median under 100 ms on this CPU.

    python benchmarks/serve_speed.py [--run RUN] [--requests N] [--n 16]

Without --run it trains the `default` preset for one step on 64 images (the weights do not
change the time, the architecture does) in a temporary folder.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests.serve.server

from tests.serve.server import serving  # noqa: E402


def default_sized_run(folder: Path) -> Path:
    from gankit.config import resolve
    from gankit.training.loop import Trainer
    cfg = resolve("default", {"epochs": 1, "data.limit": 64, "eval.every": 0,
                              "val_diagnostics": 64, "sample_every": 100})
    Trainer(cfg, folder, progress=False).run()
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a trained run folder (default: a default-preset one made here)")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--n", type=int, default=16, help="samples per grid (default 16)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else default_sized_run(Path(tmp) / "run")
        with serving([run], "--which", "last") as url:
            u = urlparse(url)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            info = json.loads(_get(conn, "/api/info"))
            model = info["models"][0]
            times, model_ms = [], []
            for i in range(args.requests + 5):
                slider = round(-3 + 6 * (i % 61) / 60, 2)
                query = f"/api/grid?class={i % max(1, info['num_classes'])}&n={args.n}" \
                        f"&seed=0&sliders={slider},0,0"
                t0 = time.perf_counter()
                body = json.loads(_get(conn, query))
                if i >= 5:                                    # the first few warm up
                    times.append(1000 * (time.perf_counter() - t0))
                    model_ms.append(body["ms"])
            conn.close()
    times.sort()
    print(f"model: {model['preset']} ({model['arch']}, nz {model['nz']}, "
          f"image {'x'.join(map(str, model['shape']))}), {args.n} samples per grid")
    print(f"grid update over HTTP: median {statistics.median(times):.1f} ms, "
          f"p90 {times[int(0.9 * (len(times) - 1))]:.1f} ms, max {times[-1]:.1f} ms "
          f"({len(times)} requests; G + D + PNG in the server: median "
          f"{statistics.median(model_ms):.1f} ms); target < 100 ms")


def _get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit(f"GET {path}: HTTP {r.status}: {body[:300]!r}")
    return body


if __name__ == "__main__":
    main()

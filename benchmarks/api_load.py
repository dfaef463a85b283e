"""Load test of the governed API on loopback: 50 concurrent users on the read endpoints.

    python benchmarks/api_load.py [--users 50] [--seconds 30] [--members 5000]

Prints figures; asserts nothing. Target (issue 8): p95 latency under 300 ms with no errors. A synthetic
county is ingested into a temporary workspace, `caretwin serve` is started on 127.0.0.1 in its own process,
and each simulated user (an analyst with a session opened beforehand) loops over the read endpoints (status, runs, model
cards, aggregates by one and two dimensions, with suppression), waiting for each answer and then reading it
for a while (`--think`, 1 s on average) before the next. `--think 0` measures the saturated server instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from caretwin import Workspace
from caretwin.governance.store import engine_for
from caretwin.governance.users import add_user, log_in
from caretwin.ingest import ingest
from caretwin.synth import CountyParams, write_extract

PASSWORD = "load test passphrase"
READS = ["/api/status", "/api/runs", "/api/models", "/api/aggregates/members?by=region",
         "/api/aggregates/members?by=region&by=age_band", "/api/aggregates/members?by=race_ethnicity&sort=-count"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def user(base: str, token: str, i: int, until: float, think: float, latencies: list[float],
               errors: list[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        headers = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "planning"}
        k = i
        while time.perf_counter() < until:
            path = READS[k % len(READS)]
            k += 1
            t0 = time.perf_counter()
            res = await client.get(path, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if res.status_code != 200:
                errors.append(f"{path}: {res.status_code}")
            await asyncio.sleep(think * (0.5 + (k * 0.618) % 1))  # a person reads the answer: 0.5-1.5 x think


async def load(base: str, tokens: list[str], seconds: float, think: float) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    await asyncio.gather(*(user(base, t, i, start + seconds, think, latencies, errors) for i, t in enumerate(tokens)))
    return latencies, errors, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--members", type=int, default=5000)
    ap.add_argument("--think", type=float, default=1.0, help="Mean seconds a user waits between requests (0: none).")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="caretwin-load-"))
    write_extract(CountyParams(members=args.members, regions=8, months=6, seed=5), root / "extract")
    ws = Workspace.create(root / "ws")
    ingest(ws, root / "extract")
    ws.close()
    engine = engine_for(root / "ws")
    tokens = []
    for i in range(args.users):
        add_user(engine, f"analyst{i}", "analyst", PASSWORD)
        # sessions opened here: log-ins from one address are rate-limited, and this measures the reads
        tokens.append(log_in(engine, f"analyst{i}", PASSWORD)[0])
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "caretwin.cli", "serve", str(root / "ws"), "--port", str(port)],
                              env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/api/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        lat, errors, wall = asyncio.run(load(base, tokens, args.seconds, args.think))
    finally:
        server.terminate()
        server.wait()
    ms = np.array(lat) * 1000
    print(f"{args.users} concurrent users (think time {args.think:.1f} s), {len(ms):,} requests in {wall:.1f} s ({len(ms) / wall:,.0f} requests/s) "
          f"on {os.cpu_count()} cores")
    print(f"latency ms: p50 {np.percentile(ms, 50):.0f}, p95 {np.percentile(ms, 95):.0f}, "
          f"p99 {np.percentile(ms, 99):.0f}, max {ms.max():.0f}; errors {len(errors)}"
          + (f" (first: {errors[0]})" if errors else ""))


if __name__ == "__main__":
    main()

"""Benchmarks: generator rows/s, ingest rows/s for CSV and Parquet. Prints figures; asserts nothing.

    python benchmarks/run.py [--members N] [--months M]

Defaults: 200,000 members x 12 months. The issue's scale (1M members x 24 months) is
`--members 1000000 --months 24`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from caretwin import Workspace, ingest
from caretwin.synth import CountyParams, write_extract


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", type=int, default=200_000)
    ap.add_argument("--months", type=int, default=12)
    args = ap.parse_args()
    params = CountyParams(members=args.members, regions=12, months=args.months, seed=1)
    with tempfile.TemporaryDirectory(prefix="caretwin-bench-") as tmp:
        root = Path(tmp)
        for fmt in ("parquet", "csv"):
            t0 = time.perf_counter()
            result = write_extract(params, root / fmt, fmt=fmt)
            gen = time.perf_counter() - t0
            rows = sum(result.rows.values())
            print(f"generator  {fmt:<8} {args.members:>9,} members x {args.months} months: "
                  f"{rows:>11,} rows in {gen:6.1f} s = {rows / gen:>11,.0f} rows/s "
                  f"(visits {result.rows['visits']:,})")
            with Workspace.create(root / f"ws-{fmt}") as ws:
                t0 = time.perf_counter()
                ingest(ws, result.path)
                dt = time.perf_counter() - t0
                print(f"ingest     {fmt:<8} {rows:>11,} rows in {dt:6.1f} s = {rows / dt:>11,.0f} rows/s")


if __name__ == "__main__":
    main()

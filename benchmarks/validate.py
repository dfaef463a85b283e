"""Backtest speed: `caretwin validate` on a synthetic county. Prints figures; asserts nothing.

    python benchmarks/validate.py [--members 100000] [--months 24] [--holdout-weeks 12] [--replications 100]

Target (issue 5): a 100k-member, 24-month extract within 5 minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from caretwin import Workspace, ingest
from caretwin.calibrate import calibrate
from caretwin.simulate.validate import validate
from caretwin.synth import CountyParams, write_extract


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--holdout-weeks", type=int, default=12)
    ap.add_argument("--replications", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="caretwin-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        extract = write_extract(CountyParams(members=args.members, regions=12, months=args.months, seed=1), root / "x")
        ws = Workspace.create(root / "ws")
        ingest(ws, extract.path)
        t1 = time.perf_counter()
        print(f"setup (synth + ingest, not part of validate): {t1 - t0:.1f} s")
        cal = calibrate(ws)
        t2 = time.perf_counter()
        print(f"calibrate alone: {t2 - t1:.1f} s ({sum(e.supported for e in cal.estimates)} estimates)")
        v = validate(ws, holdout_weeks=args.holdout_weeks, replications=args.replications)
        t3 = time.perf_counter()
        s = v.summary()
        print(f"validate ({args.members:,} members, {args.months} months, {args.holdout_weeks}-week holdout, "
              f"{args.replications} replications): {t3 - t2:.1f} s; coverage {s['coverage']}")


if __name__ == "__main__":
    main()

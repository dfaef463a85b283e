"""How honest the forecast bands are: `caretwin validate` on several synthetic counties, one seed each, with
the coverage of the 50/80/95% bands by randomised PIT and the WIS against the naive forecast. Prints figures;
asserts nothing (tests/test_calibrate.py holds the tolerances).

    python benchmarks/backtest_scores.py [--members 5000] [--months 12] [--regions 6] [--seeds 5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from caretwin import Workspace, ingest
from caretwin.simulate.validate import METRICS, validate
from caretwin.synth import CountyParams, write_extract


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", type=int, default=5000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--regions", type=int, default=6)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--holdout-weeks", type=int, default=12)
    ap.add_argument("--replications", type=int, default=100)
    args = ap.parse_args()
    print(f"{'seed':<6}{'50%':>7}{'80%':>7}{'95%':>7}{'rel. WIS':>10}  " + "  ".join(f"{m[:12]:>12}" for m in METRICS))
    coverage = []
    with tempfile.TemporaryDirectory(prefix="caretwin-backtest-") as tmp:
        for seed in range(args.seeds):
            root = Path(tmp) / str(seed)
            params = CountyParams(members=args.members, regions=args.regions, months=args.months, seed=seed)
            with Workspace.create(root / "ws") as ws:
                ingest(ws, write_extract(params, root / "x").path)
                s = validate(ws, holdout_weeks=args.holdout_weeks, replications=args.replications, seed=seed).summary()
            c = [s["coverage"][k] for k in ("50", "80", "95")]
            coverage.append(c)
            per_metric = "  ".join(f"{s['by_metric'][m]['relative_wis'] or float('nan'):>12.2f}" for m in METRICS)
            print(f"{seed:<6}" + "".join(f"{x:>7.1%}" for x in c) + f"{s['relative_wis']:>10.2f}  {per_metric}")
    print(f"{'mean':<6}" + "".join(f"{x:>7.1%}" for x in np.mean(coverage, axis=0)) +
          "   (nominal 50/80/95%; relative WIS below 1 beats the naive forecast)")


if __name__ == "__main__":
    main()

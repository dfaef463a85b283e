"""Scenario benchmark: a baseline and two alternatives, 26 weeks, 200 replications, 100k members: run and compare.

    python benchmarks/scenarios.py [--members 100000] [--replications 200] [--workspace PATH]

Prints figures; asserts nothing. Target (issue 6, 2-core machine): run and compare in <= 2 minutes.
The workspace (a synthetic county, 6 months of history) is built once and kept at --workspace.
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

from caretwin import Workspace
from caretwin.ingest import ingest
from caretwin.scenarios import compare, run_scenarios
from caretwin.synth import CountyParams, write_extract

FILES = {
    "baseline.yaml": "name: baseline\nbaseline: defaults\nhorizon_weeks: 26\nreplications: 200\nseed: 1\n",
    "surge.yaml": "name: surge\nextends: baseline.yaml\nshocks:\n"
                  "  - referrals: {change: +15%, ramp_weeks: 8}\n",
    "response.yaml": textwrap.dedent("""\
        name: response
        extends: surge.yaml
        interventions:
          - add_capacity: {service_line: hcbs, region: R03, fte: 20, start_week: 4, cost_per_fte_week: 250}
          - redeploy_staff: {from: R01, to: R07, fte: 10, start_week: 4}
          - care_coordination: {share: 30%, tier_min: 3, acute_change: -15%, cost_per_member_month: 120, start_week: 4}
        """),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--replications", type=int, default=200)
    ap.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "caretwin-bench-scenarios")
    a = ap.parse_args()
    ws_path = a.workspace / f"ws-{a.members}"
    t0 = time.perf_counter()
    if not ws_path.exists():
        extract = write_extract(CountyParams(members=a.members, regions=12, months=6, seed=1), a.workspace / "extract")
        ws = Workspace.create(ws_path)
        ingest(ws, extract.path)
        ws.close()
        print(f"built the workspace ({a.members:,} members, 12 regions) in {time.perf_counter() - t0:.0f} s")
    folder = a.workspace / "files"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (folder / name).write_text(text)
    with Workspace.open(ws_path) as ws:
        t1 = time.perf_counter()
        runs = run_scenarios(ws, [folder / n for n in FILES], replications=a.replications)
        t2 = time.perf_counter()
        c = compare(ws, [r.run_id for r in runs])
        t3 = time.perf_counter()
    for r in runs:
        t = r.result.timings
        print(f"  {r.name:<10} {t['wall_s']:6.1f} s  ({t['member_days_per_s'] / 1e6:.1f}M member-days/s)")
    print(f"3 scenarios x {a.replications} replications x 26 weeks x {a.members:,} members: run {t2 - t1:.1f} s, "
          f"compare {t3 - t2:.1f} s, total {t3 - t1:.1f} s (target <= 120 s)")
    d = c.scenarios[1].difference("waitlist_hcbs").difference
    print(f"  response vs baseline, people waiting: {d.mean:+.1f} (95% interval {d.low:+.1f} to {d.high:+.1f})")


if __name__ == "__main__":
    main()

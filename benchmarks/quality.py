"""Quality engine speed: every check over a workspace with 10M visit rows. Prints figures; asserts nothing.

    python benchmarks/quality.py [--visits N]

The tables are written straight into a workspace with SQL (the generator would take minutes
to make this many visits); their shape follows the synthetic county's. Target: all checks
over 10M visits in 30 s or less on a 2-core machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from caretwin import Workspace
from caretwin.quality import run_quality


def fill(ws: Workspace, visits: int) -> None:
    members, auths, providers = visits // 20, visits // 10, 1000
    con = ws.con
    con.execute("INSERT INTO regions SELECT 'R' || i, 'Region ' || i, 'urban', 100000, NULL, NULL FROM range(10) t(i)")
    con.execute(f"""INSERT INTO members (member_id, birth_year, sex, region_id, enrollment_start)
        SELECT 'p_' || md5(i::VARCHAR)[:20], 1930 + i % 80, ['female', 'male'][1 + i % 2], 'R' || i % 10,
               DATE '2020-01-01' + CAST(i % 900 AS INTEGER) FROM range({members}) t(i)""")
    con.execute(f"""INSERT INTO providers (provider_id, name, service_line, region_id, capacity, capacity_unit, status)
        SELECT 'P' || i, 'Provider ' || i, 'hcbs', 'R' || i % 10, 400, 'staffed_hours_per_week', 'active'
        FROM range({providers}) t(i)""")
    con.execute(f"""INSERT INTO authorizations (authorization_id, member_id, provider_id, service_line, start_date, end_date, hours_per_week)
        SELECT 'A' || i, 'p_' || md5((i % {members})::VARCHAR)[:20], 'P' || i % {providers}, 'hcbs',
               DATE '2022-01-01' + CAST(i % 365 AS INTEGER), DATE '2022-01-01' + CAST(i % 365 AS INTEGER) + 400, 10
        FROM range({auths}) t(i)""")
    con.execute(f"""INSERT INTO visits
        SELECT 'V' || i, 'A' || i % {auths}, 'p_' || md5((i % {auths} % {members})::VARCHAR)[:20],
               'P' || i % {auths} % {providers}, DATE '2022-01-01' + CAST(i % {auths} % 365 AS INTEGER) + CAST(i // {auths} AS INTEGER) * 7,
               ['delivered', 'delivered', 'delivered', 'missed_provider', 'missed_member'][1 + i % 5], 2.0
        FROM range({visits}) t(i)""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--visits", type=int, default=10_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="caretwin-bench-") as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        t0 = time.perf_counter()
        fill(ws, args.visits)
        ws.con.execute("CHECKPOINT")
        print(f"setup         {args.visits:>12,} visits written in {time.perf_counter() - t0:6.1f} s")
        t0 = time.perf_counter()
        report = run_quality(ws)
        dt = time.perf_counter() - t0
        s = report.summary()
        print(f"quality       {s['checks']:>12,} checks over {args.visits:,} visits in {dt:6.1f} s "
              f"({s['fail']} failed, {s['not_applicable']} not applicable, {s['error']} errors)")
        ws.close()


if __name__ == "__main__":
    main()

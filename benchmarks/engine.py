"""Engine benchmarks: member-days per second, state bytes per member, scaling in members, replications.

    python benchmarks/engine.py [--members 1000000] [--replications 100] [--rep-members 100000] [--quick]

Prints figures; asserts nothing. Targets (issue 4, 2-core machine): >= 25M member-days/s with all
modules (a 1M-member year in <= 15 s), <= 200 bytes of state per member, time linear in members;
issue 20: memory for outputs under 200 MB at 100 regions.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numba
import numpy as np

from caretwin.simulate import Engine, run_replications
from caretwin.simulate.results import summary_table
from caretwin.synth import CountyParams
from caretwin.synth.world import build_population

DAYS = 364  # 52 weekly steps


def world_of(members: int):
    return build_population(CountyParams(members=members, regions=12, seed=1)).world


def one_year(members: int) -> tuple[float, int]:
    """Wall seconds of one replication of a year, and bytes of engine state per member."""
    world = world_of(members)
    engine = Engine(world)
    t0 = time.perf_counter()
    sim = engine.run(seed=1, weeks=DAYS // 7)
    wall = time.perf_counter() - t0
    return wall, sim.m.nbytes // members


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def peak_memory(members: int) -> None:
    """Peak resident memory of one replication above the loaded interpreter, per member (Linux)."""
    Engine(world_of(2000)).run(seed=0, weeks=1)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current resident size
    base = _status_kib("VmRSS")
    one_year(members)
    peak = _status_kib("VmHWM")
    print(f"   peak memory, {members:,} members: {(peak - base) / 1024:.0f} MiB above the loaded interpreter = "
          f"{(peak - base) * 1024 / members:.0f} B per member (the world as loaded plus one replication's state)")


def outputs_memory(regions: int, members: int = 2000, replications: int = 100, weeks: int = 26) -> None:
    """Peak memory of a run's outputs (replications' metrics and their summary) above a warmed-up interpreter."""
    world = build_population(CountyParams(members=members, regions=regions, seed=1)).world
    run_replications(world, weeks=1, replications=1, workers=1)  # compiles, or loads the cache
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kib("VmRSS")
    result = run_replications(world, weeks=weeks, replications=replications, workers=1)
    summary = summary_table(result)
    peak = _status_kib("VmHWM")
    kept = (result.metrics.nbytes + result.groups.nbytes) / 2**20
    print(f"   {regions:>4} regions: peak {(peak - base) / 1024:6.0f} MiB above the warmed-up interpreter; "
          f"replications' arrays {kept:5.0f} MiB; summary {summary.num_rows:,} rows")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--replications", type=int, default=100)
    ap.add_argument("--rep-members", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--peak-memory", type=int, metavar="N", help=argparse.SUPPRESS)
    ap.add_argument("--outputs-memory", type=int, metavar="REGIONS", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peak_memory:
        peak_memory(args.peak_memory)
        return
    if args.outputs_memory:
        outputs_memory(args.outputs_memory)
        return
    if args.quick:
        args.members, args.replications, args.rep_members = 200_000, 8, 20_000
    print(f"numba threads: {numba.get_num_threads()}")
    Engine(world_of(2000)).run(seed=0, weeks=2)  # compile (or load the cache) outside the timings

    print(f"\n1. one replication, all twelve modules, {DAYS} days")
    sizes = [args.members // 8, args.members // 4, args.members // 2, args.members]
    walls = []
    for n in sizes:
        wall, per_member = one_year(n)
        walls.append(wall)
        print(f"   {n:>10,} members: {wall:6.2f} s  {n * DAYS / wall / 1e6:6.1f}M member-days/s  "
              f"engine state {per_member} B/member")
    slope = np.polyfit(sizes, walls, 1)
    fit = np.polyval(slope, sizes)
    r2 = 1 - ((np.array(walls) - fit) ** 2).sum() / ((np.array(walls) - np.mean(walls)) ** 2).sum()
    print(f"   linear fit: {slope[0] * 1e6:.2f} s per million members + {slope[1]:.2f} s fixed; R^2 = {r2:.4f}")
    print(f"   time per member, smallest vs largest: {walls[0] / sizes[0] * 1e6:.2f} vs {walls[-1] / sizes[-1] * 1e6:.2f} us")
    subprocess.run([sys.executable, __file__, "--peak-memory", str(args.members)], check=True)

    print(f"\n2. {args.replications} replications of a {args.rep_members:,}-member county x {DAYS} days (process pool)")
    world = world_of(args.rep_members)
    t0 = time.perf_counter()
    result = run_replications(world, weeks=DAYS // 7, replications=args.replications, seed=1)
    wall = time.perf_counter() - t0
    print(f"   {wall:.1f} s wall ({result.workers} workers, {result.backend}); "
          f"{args.rep_members * DAYS * args.replications / wall / 1e6:.1f}M member-days/s")

    print("\n3. memory for outputs by regions: a 2,000-member county, 100 replications x 26 weeks, run and summarised")
    for regions in (8, 40, 100):
        subprocess.run([sys.executable, __file__, "--outputs-memory", str(regions)], check=True)


if __name__ == "__main__":
    main()

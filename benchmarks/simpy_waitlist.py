"""The HCBS waitlist part of the model written plainly in SimPy, against the engine on the same workload.

    python benchmarks/simpy_waitlist.py [--members 20000] [--days 364] [--reps 5] [--engine-reps 20]

The SimPy version is the same daily-step model as one would write it with SimPy: a process per
member that wakes each day and may be referred (with the engine's daily probability, refreshed
at each week start), and daily processes for authorisation (care coordinators work the backlog
oldest first), matching (acuity first, own region first, then the nearest within the travel
limit) and the end of services. The engine runs its demand, authorisation, matching and
delivery modules. Outputs are compared as means across replications with 95% intervals, and
the speed ratio is printed. Prints figures; asserts nothing. SimPy is a development dependency.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import simpy

from caretwin.simulate import Engine, declared_params
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.modules import Authorisation, Delivery, Demand, Matching
from caretwin.simulate.state import ACTIVE, ENROLLED, LINE, NONE, PENDING, WAITING
from caretwin.synth import CountyParams
from caretwin.synth.world import build_population

OUTPUTS = ("referrals", "starts", "mean_wait_days", "waitlist_at_end", "in_service_at_end")


def engine_run(world, seed: int, days: int) -> dict[str, float]:
    engine = Engine(world, modules=[Demand(), Authorisation(), Matching(), Delivery()])
    sim = engine.run(seed=seed, weeks=days // 7)
    M = sim.M.sum(axis=1)
    starts = M[:, SLOTS("starts", "hcbs")].sum()
    return {"referrals": M[:, SLOTS("referrals", "hcbs")].sum(), "starts": starts,
            "mean_wait_days": M[:, SLOTS("wait_days", "hcbs")].sum() / starts,
            "waitlist_at_end": M[-1, SLOTS("waitlist", "hcbs")], "in_service_at_end": M[-1, SLOTS("in_service", "hcbs")]}


def simpy_run(world, seed: int, days: int) -> dict[str, float]:
    p = declared_params()
    rng = np.random.default_rng(seed)
    m, pr = world.members, world.providers
    n = world.n_members
    svc = m["svc"].copy()
    hours = m["hours"].astype(float).copy()
    provider = m["provider"].copy()
    referred = m["ti_referred"].copy()
    priority = np.where(m["priority"] > 0, m["priority"], m["tier"]).astype(int)
    committed = pr["committed"].astype(float).copy()
    capacity = pr["capacity"].astype(float).copy()
    region, tier, age, caregiver = m["region"], m["tier"], m["age"], m["caregiver"]
    rate = np.array(p.rate_hcbs_referral_tier)[tier - 1] * np.where(age >= 65, p.rel_hcbs_referral_65plus,
                                                                     np.where(age < 18, p.rel_hcbs_referral_child, 1.0))
    p_day = 1.0 - np.exp(-rate * np.where(caregiver, 1.0, p.rel_hcbs_referral_no_caregiver) / 365.0)
    coord = pr["line"] == LINE["care_coordination"]
    per_day = np.floor(np.bincount(pr["region"][coord], weights=pr["capacity"][coord], minlength=world.n_regions)
                       * p.auths_per_coordinator_day).astype(int)
    hcbs_providers = [k for k in range(len(pr["line"])) if pr["line"][k] == LINE["hcbs"]]
    travel = world.travel
    out = {"referrals": 0, "starts": 0, "wait": 0.0}
    env = simpy.Environment()
    pending: list[int] = []
    waiting: list[int] = []
    service_end: dict[int, simpy.Event] = {}

    def member(i: int):
        yield env.timeout(0.1)  # referrals come first each day, then authorisation (.2), matching (.3), ends (.4)
        while True:
            if svc[i] != NONE:  # wait for the service to end, then for the next weekly refresh
                yield service_end.setdefault(i, env.event())
                yield env.timeout(7 - (int(env.now) % 7) + 0.1 - (env.now % 1))
                continue
            if rng.random() < p_day[i]:
                day = int(env.now)
                svc[i] = PENDING
                referred[i] = day
                hours[i] = round(p.hcbs_hours_by_tier[tier[i] - 1] * rng.uniform(0.75, 1.25) * 2) / 2
                duration[i] = max(1, int(rng.exponential(p.dur_hcbs_service_days)))
                priority[i] = tier[i]
                pending.append(i)
                out["referrals"] += 1
            yield env.timeout(1.0)

    def authorise():
        yield env.timeout(0.2)
        while True:
            day = int(env.now)
            ready = sorted((referred[i], i) for i in pending if referred[i] + p.min_auth_days <= day)
            taken = np.zeros(world.n_regions, int)
            for _, i in ready:
                if taken[region[i]] < per_day[region[i]]:
                    taken[region[i]] += 1
                    pending.remove(i)
                    svc[i] = WAITING
                    waiting.append(i)
            yield env.timeout(1.0)

    def match():
        yield env.timeout(0.3)
        while True:
            day = int(env.now)
            for i in sorted(waiting, key=lambda i: (-priority[i], referred[i], i)):
                best, best_t = -1, math.inf
                for k in hcbs_providers:
                    if capacity[k] - committed[k] >= hours[i] - 1e-9:
                        t = travel[region[i], pr["region"][k]]
                        if t <= p.travel_limit_minutes and t < best_t:
                            best, best_t = k, t
                            if t == 0:
                                break
                if best >= 0:
                    waiting.remove(i)
                    svc[i] = ACTIVE
                    provider[i] = best
                    committed[best] += hours[i]
                    out["starts"] += 1
                    out["wait"] += day - referred[i]
                    env.process(serve(i, day + duration[i]))
            yield env.timeout(1.0)

    def serve(i: int, end: int):
        yield env.timeout(end + 0.4 - env.now)
        committed[provider[i]] -= hours[i]
        svc[i] = NONE
        provider[i] = -1
        service_end.pop(i, env.event()).succeed()

    duration = np.zeros(n, int)
    for i in np.flatnonzero(m["status"] == ENROLLED):  # enrolment is the mortality module's, not run here
        env.process(member(i))
        if svc[i] == ACTIVE:
            env.process(serve(i, max(int(m["ti_service_end"][i]), 0)))  # services already due end on day 0
    env.process(authorise())
    env.process(match())
    env.run(until=days)
    return {"referrals": out["referrals"], "starts": out["starts"], "mean_wait_days": out["wait"] / max(out["starts"], 1),
            "waitlist_at_end": len(waiting), "in_service_at_end": int((svc == ACTIVE).sum())}


def summary(rows: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    return {k: (float(np.mean([r[k] for r in rows])), float(1.96 * np.std([r[k] for r in rows], ddof=1) / math.sqrt(len(rows))))
            for k in OUTPUTS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=364)
    ap.add_argument("--reps", type=int, default=5, help="SimPy replications")
    ap.add_argument("--engine-reps", type=int, default=20)
    args = ap.parse_args()
    world = build_population(CountyParams(members=args.members, regions=6, seed=1)).world
    engine_run(world, 0, 14)  # compile outside the timing
    t0 = time.perf_counter()
    ours = [engine_run(world, s, args.days) for s in range(args.engine_reps)]
    t_ours = (time.perf_counter() - t0) / args.engine_reps
    t0 = time.perf_counter()
    peer = [simpy_run(world, 1000 + s, args.days) for s in range(args.reps)]
    t_peer = (time.perf_counter() - t0) / args.reps
    a, b = summary(ours), summary(peer)
    print(f"HCBS waitlist, {args.members:,} members x {args.days} days; engine {args.engine_reps} reps, SimPy {args.reps} reps")
    print(f"{'output':<20}{'engine mean ± 95%':>24}{'SimPy mean ± 95%':>24}   agree")
    for k in OUTPUTS:
        (ma, ha), (mb, hb) = a[k], b[k]
        agree = abs(ma - mb) <= math.hypot(ha, hb) or abs(ma - mb) <= 0.02 * max(abs(mb), 1e-9)
        print(f"{k:<20}{ma:>14.1f} ± {ha:<8.1f}{mb:>14.1f} ± {hb:<8.1f}   {'yes' if agree else 'NO'}")
    print(f"seconds per replication: engine {t_ours:.3f}, SimPy {t_peer:.2f}; engine is {t_peer / t_ours:.0f}x faster")


if __name__ == "__main__":
    main()

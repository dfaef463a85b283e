"""Workforce: hires, separations and overtime per provider; sustained overtime raises separations."""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.rng import uniform
from caretwin.simulate.engine import Module
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.params import Param
from caretwin.simulate.state import LINE

STAFFED = (LINE["hcbs"], LINE["home_health"])


@nb.njit(cache=True)
def _week(key, day, staffed, headcount, budget, committed, capacity, missed_share, ot_share, ot_sustained, seps_4w,
          hires_4w, training, rel_sep, rel_hire, hires_out, seps_out, overtime_out, hpf, max_ot, rate_sep, rel_ot, p_hire, hire_slowdown):
    for j in range(len(staffed)):
        k = staffed[j]
        hours = headcount[k] * hpf
        demand = committed[k]
        overtime = min(max(demand - hours, 0.0), max_ot * hours)
        missed = max(demand - hours - overtime, 0.0)
        missed_share[k] = missed / demand if demand > 0 else 0.0
        ot = overtime / hours if hours > 0 else 0.0
        ot_share[k] = ot
        ot_sustained[k] = 0.5 * ot_sustained[k] + 0.5 * ot
        p_sep = 1.0 - np.exp(-rate_sep * rel_sep[k] / 52.0 * (1.0 + rel_ot * ot_sustained[k]))
        seps = 0
        for s in range(headcount[k]):
            if uniform(key, day, k, s) < p_sep:
                seps += 1
        vac = max(int(np.round(budget[k])) - headcount[k], 0)
        hires = 0
        for v in range(vac):
            if uniform(key, day, k, 100000 + v) < p_hire[j] * hire_slowdown * rel_hire[k]:
                hires += 1
        headcount[k] += hires - seps
        capacity[k] = headcount[k] * hpf
        seps_4w[k] = 0.75 * seps_4w[k] + seps
        hires_4w[k] = 0.75 * hires_4w[k] + hires
        training[k] = min(max(0.97 - 0.8 * hires_4w[k] / max(headcount[k], 1), 0.3), 0.99)
        hires_out[j] = hires
        seps_out[j] = seps
        overtime_out[j] = overtime


class Workforce(Module):
    name = "workforce"
    params = (
        Param("hours_per_fte_week", 35.0, "hours/week", "contracted hours of one direct-care worker"),
        Param("rate_separation", 0.45, "per worker-year", "baseline separation rate of direct-care staff",
              "PHI, Direct Care Workers in the United States (2023): turnover 40-60% a year"),
        Param("rel_separation_per_overtime", 4.0, "ratio", "separation hazard x (1 + this x sustained overtime share)"),
        Param("p_hire_week_by_rurality", (0.10, 0.08, 0.05, 0.04), "per vacancy-week",
              "chance a vacancy is filled in a week: urban, suburban, rural, frontier"),
        Param("rel_hiring", 1.0, "ratio", "scenario multiplier on hiring (1 = as calibrated)"),
        Param("max_overtime_share", 0.1, "share", "most overtime a provider can add, as a share of staffed hours",
              "assumption: about 3.5 extra hours on a 35-hour week; hours beyond it are missed visits"),
    )
    provider_columns = {"overtime_share": (np.float32, 0.0), "ot_sustained": (np.float32, 0.0),
                        "seps_4w": (np.float32, 0.0), "hires_4w": (np.float32, 0.0), "training": (np.float32, 0.9),
                        # a provider's own multipliers, 1 unless an intervention (e.g. a wage rise) changes them
                        "rel_separation": (np.float64, 1.0), "rel_hiring": (np.float64, 1.0)}

    def init(self, sim) -> None:
        pr = sim.pr
        self.staffed_mask = np.isin(pr.line, STAFFED)
        pr.capacity[self.staffed_mask] = pr.headcount[self.staffed_mask] * sim.p.hours_per_fte_week
        self.rurality = np.asarray(sim.world.rurality, np.int64).clip(0, 3)

    def week(self, sim, day: int) -> None:
        pr, p = sim.pr, sim.p
        staffed = np.flatnonzero(self.staffed_mask & pr.is_open)
        n = len(staffed)
        hires, seps, ot = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n)
        p_hire = np.array(p.p_hire_week_by_rurality)[self.rurality[pr.region[staffed]]]
        _week(sim.key("workforce"), day, staffed, pr.headcount, pr.budget_fte, pr.committed, pr.capacity,
              pr.missed_share, pr.overtime_share, pr.ot_sustained, pr.seps_4w, pr.hires_4w, pr.training, pr.rel_separation, pr.rel_hiring, hires, seps, ot, p.hours_per_fte_week,
              p.max_overtime_share, p.rate_separation, p.rel_separation_per_overtime, p_hire, p.rel_hiring)
        for line in ("hcbs", "home_health"):
            sel = pr.line[staffed] == LINE[line]
            reg = pr.region[staffed[sel]]
            sim.add_region(reg, SLOTS("hires", line), hires[sel])
            sim.add_region(reg, SLOTS("separations", line), seps[sel])
            sim.add_region(reg, SLOTS("overtime_hours", line), ot[sel])
        if sim.recorder is not None:
            sim.recorder.workforce(sim, staffed, day, hires, seps, ot)

    def week_end(self, sim, day: int) -> None:
        pr, p = sim.pr, sim.p
        for line in ("hcbs", "home_health"):
            sel = np.flatnonzero((pr.line == LINE[line]) & pr.is_open)
            reg = pr.region[sel]
            sim.add_region(reg, SLOTS("staffed_hours", line), pr.headcount[sel] * p.hours_per_fte_week)
            sim.add_region(reg, SLOTS("committed_hours", line), pr.committed[sel])
            sim.add_region(reg, SLOTS("headcount", line), pr.headcount[sel].astype(float))
            sim.add_region(reg, SLOTS("vacancies", line), np.maximum(np.round(pr.budget_fte[sel]) - pr.headcount[sel], 0))

    @staticmethod
    def redeploy(sim, line: str, from_region: int, to_region: int, staff: int) -> int:
        """Move up to `staff` workers (and their budgeted posts) between regions' providers; returns those moved."""
        pr = sim.pr
        src = np.flatnonzero((pr.line == LINE[line]) & (pr.region == from_region) & pr.is_open)
        dst = np.flatnonzero((pr.line == LINE[line]) & (pr.region == to_region) & pr.is_open)
        if len(src) == 0 or len(dst) == 0:
            return 0
        moved = 0
        for k in src[np.argsort(-pr.headcount[src], kind="stable")]:
            take = int(min(pr.headcount[k], staff - moved))
            pr.headcount[k] -= take
            pr.budget_fte[k] -= take
            moved += take
        target = dst[np.argmax(pr.budget_fte[dst])]
        pr.headcount[target] += moved
        pr.budget_fte[target] += moved
        hpf = sim.p.hours_per_fte_week
        pr.capacity[src] = pr.headcount[src] * hpf
        pr.capacity[target] = pr.headcount[target] * hpf
        return moved

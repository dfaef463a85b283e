"""Housing: weekly stable / at-risk / homeless transitions; supportive housing units placed by acuity."""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.rng import uniform
from caretwin.simulate.engine import Module
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.modules.hospital import joins_census
from caretwin.simulate.params import Param
from caretwin.simulate.state import ENROLLED, LINE

STABLE, AT_RISK, HOMELESS = 0, 1, 2


@nb.njit(cache=True)
def _transitions(key, day, status, housing, supported, unmet, p_s2r, p_r2h, p_r2s, p_h2r, rel_unmet, changed):
    n = 0
    for i in range(len(status)):
        if status[i] != ENROLLED or supported[i]:
            continue
        u = uniform(key, day, i)
        h = housing[i]
        new = h
        if h == STABLE and u < p_s2r * (1.0 + rel_unmet * unmet[i]):
            new = AT_RISK
        elif h == AT_RISK:
            if u < p_r2h:
                new = HOMELESS
            elif u > 1.0 - p_r2s:
                new = STABLE
        elif h == HOMELESS and u < p_h2r:
            new = AT_RISK
        if new != h:
            housing[i] = new
            changed[n] = i
            n += 1
    return n


class Housing(Module):
    name = "housing"
    params = (
        Param("p_week_stable_to_at_risk", 0.0015, "per week", "stably housed members becoming at risk"),
        Param("p_week_at_risk_to_homeless", 0.0015, "per week", "at-risk members becoming homeless",
              "set with the next so that about 0.5-1% of members are homeless at a time, a few times the 0.23% of "
              "the whole population (HUD AHAR 2024)"),
        Param("p_week_at_risk_to_stable", 0.03, "per week", "at-risk members becoming stably housed"),
        Param("p_week_homeless_to_at_risk", 0.02, "per week", "homeless members finding unstable housing",
              "a mean homeless spell of about a year"),
        Param("rel_at_risk_per_unmet_need", 2.0, "ratio", "stable-to-at-risk x (1 + this x unmet-need index)"),
    )

    def init(self, sim) -> None:
        pr, R = sim.pr, sim.world.n_regions
        sel = (pr.line == LINE["supportive_housing"]) & pr.is_open
        self.units = np.round(np.bincount(pr.region[sel], weights=pr.capacity[sel], minlength=R)).astype(np.int64)
        self.used = np.bincount(sim.m.region[sim.m.supported], minlength=R).astype(np.int64)
        self.changed = np.zeros(len(sim.m.region), np.int64)

    def week(self, sim, day: int) -> None:
        m, p = sim.m, sim.p
        before = m.housing.copy() if sim.recorder is not None else None
        n = _transitions(sim.key("housing"), day, m.status, m.housing, m.supported, m.unmet, p.p_week_stable_to_at_risk,
                         p.p_week_at_risk_to_homeless, p.p_week_at_risk_to_stable, p.p_week_homeless_to_at_risk,
                         p.rel_at_risk_per_unmet_need, self.changed)
        changed = self.changed[:n].copy()
        # supportive housing: free units go to the region's homeless members, highest acuity first
        free = self.units - self.used
        if free.any():
            cand = np.flatnonzero((m.housing == HOMELESS) & ~m.supported & (m.status == ENROLLED))
            cand = cand[free[m.region[cand]] > 0]
            order = cand[np.lexsort((cand, -m.tier[cand].astype(np.int16), m.region[cand]))]
            regions = m.region[order]
            rank = np.arange(len(order)) - np.searchsorted(regions, regions, "left")
            placed = order[rank < free[regions]]
            m.supported[placed] = True
            joins_census(sim, placed)
            m.housing[placed] = STABLE
            self.used += np.bincount(m.region[placed], minlength=len(self.used))
            changed = np.union1d(changed, placed)
        sim.add(changed[m.housing[changed] == HOMELESS], SLOTS("became_homeless"))
        sim.add(changed[m.housing[changed] == STABLE], SLOTS("became_stably_housed"))
        if sim.recorder is not None:
            sim.recorder.housing(sim, changed[m.housing[changed] != before[changed]], day)

    def release(self, sim, members: np.ndarray) -> None:
        m = sim.m
        gone = members[m.supported[members]]
        m.supported[gone] = False
        self.used -= np.bincount(m.region[gone], minlength=len(self.used))

    def week_end(self, sim, day: int) -> None:
        m = sim.m
        sim.add(np.flatnonzero((m.housing == HOMELESS) & (m.status == ENROLLED)), SLOTS("homeless"))
        sim.add_region(np.arange(sim.world.n_regions), SLOTS("beds", "supportive_housing"), self.units.astype(float))

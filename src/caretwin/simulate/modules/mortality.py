"""Institutionalisation and death; enrolment and disenrolment."""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.rng import uniform
from caretwin.simulate.engine import Module, p_day
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.modules.services import close_for
from caretwin.simulate.params import Param
from caretwin.simulate.state import (
    DIED,
    DISENROLLED,
    ENROLLED,
    INSTITUTIONALISED,
    NOT_YET,
)


@nb.njit(parallel=True, cache=True)
def _hazards(out_death, out_exit, status, age, tier, svc, rate_age, rel_tier, rate_exit, rel_exit_served):
    for i in nb.prange(len(status)):
        if status[i] != ENROLLED:
            out_death[i] = 0.0
            out_exit[i] = 0.0
            continue
        a = 0 if age[i] < 18 else (1 if age[i] < 65 else (2 if age[i] < 80 else 3))
        out_death[i] = p_day(rate_age[a] * rel_tier[tier[i] - 1])
        r = rate_exit * (rel_exit_served if svc[i] != 0 else 1.0)
        out_exit[i] = p_day(r)


@nb.njit(cache=True)
def _institutionalise(key, day, status, tier, unmet, rate, rel_unmet, min_tier):
    hits = []
    for i in range(len(status)):
        if status[i] != ENROLLED or tier[i] < min_tier:
            continue
        p = 1.0 - np.exp(-rate / 52.0 * (1.0 + rel_unmet * unmet[i]))
        if uniform(key, day, i) < p:
            hits.append(i)
    out = np.empty(len(hits), np.int64)
    for j in range(len(hits)):
        out[j] = hits[j]
    return out


class Mortality(Module):
    name = "mortality"
    hazards = ("death", "disenrolment")
    params = (
        Param("rate_death_by_age", (0.0004, 0.004, 0.03, 0.08), "per member-year",
              "death rate by age 0-17, 18-64, 65-79, 80+ (tier 2)", "order of magnitude of CDC WONDER all-cause rates"),
        Param("rel_death_by_tier", (0.5, 1.0, 2.0, 3.5), "ratio", "death rate multiplier by acuity tier"),
        Param("rate_disenroll", 0.08, "per member-year", "members leaving the programme alive"),
        Param("rel_disenroll_in_service", 0.25, "ratio", "disenrolment multiplier while in or waiting for a service"),
        Param("rate_institutionalisation", 0.03, "per member-year",
              "permanent nursing-facility entry from the community, tiers 3-4"),
        Param("rel_institutionalisation_per_unmet_need", 3.0, "ratio",
              "institutionalisation hazard x (1 + this x unmet-need index)"),
        Param("p_snf_long_stay", 0.1, "per SNF stay", "post-acute SNF stays that become permanent"),
        Param("dur_institutional_days", 900.0, "days", "mean remaining life in a nursing facility"),
    )

    def init(self, sim) -> None:
        m = sim.m
        self.j = (sim.hazard_index["death"], sim.hazard_index["disenrolment"])
        future = np.flatnonzero(m.status == NOT_YET)
        self.joiners = future[np.argsort(m.ti_enrol[future], kind="stable")]
        self.next = 0

    def week(self, sim, day: int) -> None:
        m, p = sim.m, sim.p
        _hazards(m.hazard[self.j[0]], m.hazard[self.j[1]], m.status, m.age, m.tier, m.svc, np.array(p.rate_death_by_age),
                 np.array(p.rel_death_by_tier), p.rate_disenroll, p.rel_disenroll_in_service)
        who = _institutionalise(sim.key("institutionalisation"), day, m.status, m.tier, m.unmet,
                                p.rate_institutionalisation, p.rel_institutionalisation_per_unmet_need, 3)
        self.leave(sim, who, day, INSTITUTIONALISED)

    def day(self, sim, day: int) -> None:
        m = sim.m
        hi = self.next
        while hi < len(self.joiners) and m.ti_enrol[self.joiners[hi]] <= day:
            hi += 1
        if hi > self.next:
            new = self.joiners[self.next:hi]
            m.status[new] = ENROLLED
            sim.add(new, SLOTS("enrolments"))
            self.next = hi
        self.leave(sim, sim.events("death"), day, DIED)
        self.leave(sim, sim.events("disenrolment"), day, DISENROLLED)

    def leave(self, sim, members: np.ndarray, day: int, status: int) -> None:
        """Members leave the community: open services close, supportive housing is released."""
        if len(members) == 0:
            return
        m = sim.m
        close_for(sim, members, day, "died" if status == DIED else "left")
        m.status[members] = status
        housing = sim.module("housing") if any(mod.name == "housing" for mod in sim.modules) else None
        if housing is not None:
            housing.release(sim, members)
        slot = {DIED: "deaths", DISENROLLED: "disenrolments", INSTITUTIONALISED: "institutionalisations"}[status]
        sim.add(members, SLOTS(slot))
        if sim.recorder is not None:
            sim.recorder.left(sim, members, day, status)



"""Crisis pathway: mobile crisis response; a stabilisation bed if one is free within reach, else ED
boarding, which past a limit ends in a psychiatric admission or a return home."""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.rng import uniforms
from caretwin.simulate.engine import Module, p_day
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.modules.hospital import bed_nodes, joins_census, place_initial
from caretwin.simulate.params import Param
from caretwin.simulate.state import BOARDING, CSU, ENROLLED, HOME


@nb.njit(parallel=True, cache=True)
def _hazard(out, status, smi, sud, housing, unmet, rel_acute, rate_bh, rate_other, rel_housing, rel_unmet):
    for i in nb.prange(len(status)):
        if status[i] != ENROLLED:
            out[i] = 0.0
            continue
        r = rate_bh if (smi[i] or sud[i]) else rate_other
        r *= rel_housing[housing[i]] * rel_acute[i] * (1.0 + rel_unmet * unmet[i])
        out[i] = p_day(r)


class Crisis(Module):
    name = "crisis"
    hazards = ("crisis",)
    params = (
        Param("rate_crisis_bh", 0.35, "per member-year", "behavioural health crises of members with SMI or SUD"),
        Param("rate_crisis_other", 0.01, "per member-year", "crises of other members"),
        Param("rel_crisis_per_unmet_need", 1.0, "ratio", "crisis hazard x (1 + this x unmet-need index)"),
        Param("p_crisis_needs_bed", 0.4, "per episode", "crisis episodes that need a stabilisation bed"),
        Param("dur_csu_days", 3.0, "days", "mean stabilisation-unit stay (exponential)",
              "SAMHSA National Guidelines for Behavioral Health Crisis Care (2020): stays under a week"),
        Param("max_boarding_days", 1.0, "days", "ED boarding before the member is admitted or sent home"),
        Param("p_boarding_psych_admission", 0.3, "per boarding", "boardings that end in a psychiatric admission"),
    )

    def init(self, sim) -> None:
        p, w = sim.p, sim.world
        self.nodes = bed_nodes(sim, "crisis_stabilization", p.max_boarding_days)
        # members are taken to the nearest region with stabilisation beds, within the travel limit
        limit = p.travel_limit_minutes if "travel_limit_minutes" in p else 60.0
        has = self.nodes.c > 0
        self.node_of_region = np.arange(w.n_regions)
        for r in range(w.n_regions):
            if not has[r] and has.any():
                cand = np.flatnonzero(has & (w.travel[r] <= limit))
                if len(cand):
                    self.node_of_region[r] = cand[np.argmin(w.travel[r, cand])]
        self.j = sim.hazard_index["crisis"]
        m = sim.m
        who = np.flatnonzero(m.loc == CSU)
        queued = place_initial(sim, self.nodes, self.node_of_region[m.region[who]], who,
                               np.full(len(who), p.dur_csu_days), "csu-initial")
        m.loc[queued] = BOARDING  # more occupants on record than beds

    def week(self, sim, day: int) -> None:
        m, p = sim.m, sim.p
        _hazard(m.hazard[self.j], m.status, m.smi, m.sud, m.housing, m.unmet, m.rel_acute, p.rate_crisis_bh, p.rate_crisis_other,
                np.array(p.rel_by_housing), p.rel_crisis_per_unmet_need)

    def day(self, sim, day: int) -> None:
        m, p = sim.m, sim.p
        who = sim.events("crisis")
        sim.add(who, SLOTS("crisis_episodes"))
        key = sim.key("crisis")
        u = uniforms(key, day, who, 0)
        bed = who[u < p.p_crisis_needs_bed]
        if sim.recorder is not None:
            sim.recorder.crisis(sim, who, u < p.p_crisis_needs_bed, day)
        m.loc[bed] = BOARDING
        joins_census(sim, bed)
        t = day + uniforms(key, day, bed, 1)
        service = -p.dur_csu_days * np.log1p(-uniforms(key, day, bed, 2))
        kind, _, member, _, _ = self.nodes.advance(self.node_of_region[m.region[bed]], bed, t, service, day + 1.0)
        start, end, gone = member[kind == 0], member[kind == 1], member[kind == 2]
        m.loc[start] = CSU
        sim.add(start, SLOTS("bed_arrivals", "crisis_stabilization"))
        m.loc[end] = HOME
        m.loc[gone] = HOME
        psych = gone[uniforms(key, day, gone, 3) < p.p_boarding_psych_admission]
        if sim.recorder is not None:
            sim.recorder.csu_events(sim, start, end, gone, psych, day)
        sim.add(psych, SLOTS("psychiatric_admissions"))
        sim.module("hospital").admit(sim, psych, day, psych=True)

    def week_end(self, sim, day: int) -> None:
        sim.add_region(np.arange(sim.world.n_regions), SLOTS("beds", "crisis_stabilization"), self.nodes.c.astype(float))

"""Hospital and discharge: stays, post-acute needs, SNF beds; delayed discharge, and discharge without
support past a limit, which raises the 30-day readmission hazard."""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.rng import geometric_days, uniform, uniforms
from caretwin.simulate.engine import Module, add_member
from caretwin.simulate.metrics import BEDS, SLOTS
from caretwin.simulate.modules.services import HCBS, HOME_HEALTH, open_for
from caretwin.simulate.nodes import Nodes
from caretwin.simulate.params import Param
from caretwin.simulate.state import (
    ACTIVE,
    BOARDING,
    CSU,
    DIED,
    ENROLLED,
    HOME,
    HOSPITAL,
    LINE,
    NEED_DIED,
    NEED_HCBS,
    NEED_HOME,
    NEED_HOME_HEALTH,
    NEED_PSYCH,
    NEED_SNF,
    NEED_SNF_QUEUED,
    NONE,
    NURSING,
    SNF,
    WAITING,
)


@nb.njit(cache=True)
def _admit(key, day, members, psych, tier, age, svc, loc, need, ti_ready, ti_admit, dur_los, p_death, p_death_child,
           p_snf, p_snf_65, p_hh, p_hcbs):
    for j in range(len(members)):
        i = members[j]
        loc[i] = HOSPITAL
        ti_admit[i] = day
        ti_ready[i] = day + geometric_days(key, day, i, 0, dur_los[tier[i] - 1])
        u = uniform(key, day, i, 1)
        c = p_death_child if age[i] < 18 else p_death
        if u < c:
            need[i] = NEED_DIED
            continue
        c += p_snf_65 if age[i] >= 65 else (p_snf if age[i] >= 18 else 0.0)  # children do not go to SNFs
        if u < c:
            need[i] = NEED_SNF
            continue
        c += p_hh
        if u < c:
            need[i] = NEED_HOME_HEALTH
            continue
        c += p_hcbs if svc[i] == NONE else 0.0
        need[i] = NEED_HCBS if u < c else NEED_HOME
        if psych:
            need[i] = NEED_PSYCH


@nb.njit(cache=True)
def _census(M, G, w, day, members, loc, need, ti_ready, supported, status, region, g_age, g_sex, g_race, k_hosp,
            k_snf, k_csu, k_sh, k_nf, k_board, k_delayed):
    """Daily census of where the members away from home are: bed-days by bed type, delayed discharge and
    boarding days, and supportive-housing unit-days."""
    for j in range(len(members)):
        i = members[j]
        if loc[i] == HOSPITAL:
            add_member(M, G, w, region[i], g_age[i], g_sex[i], g_race[i], k_hosp, 1.0)
            if need[i] == NEED_SNF_QUEUED and day >= ti_ready[i]:
                add_member(M, G, w, region[i], g_age[i], g_sex[i], g_race[i], k_delayed, 1.0)
        elif loc[i] == SNF:
            add_member(M, G, w, region[i], g_age[i], g_sex[i], g_race[i], k_snf, 1.0)
        elif loc[i] == CSU:
            add_member(M, G, w, region[i], g_age[i], g_sex[i], g_race[i], k_csu, 1.0)
        elif loc[i] == BOARDING:
            add_member(M, G, w, region[i], g_age[i], g_sex[i], g_race[i], k_board, 1.0)
        elif loc[i] == NURSING:
            add_member(M, G, w, region[i], g_age[i], g_sex[i], g_race[i], k_nf, 1.0)
        if supported[i] and status[i] == ENROLLED:
            add_member(M, G, w, region[i], g_age[i], g_sex[i], g_race[i], k_sh, 1.0)


def away(sim) -> np.ndarray:
    """Members away from home (in a bed of any kind, boarding, a nursing-facility resident) or in supportive
    housing, in member order: the few the daily census counts, without scanning everyone. Whoever moves a member
    out of their home (or into supportive housing) calls `joins_census`; those back home drop out when it is read."""
    loc, supported = sim.m.loc, sim.m.supported
    return sim.tracked("away", lambda: np.flatnonzero((loc != HOME) | supported),
                       lambda r: (loc[r] != HOME) | supported[r])


def joins_census(sim, members: np.ndarray) -> None:
    sim.join("away", members)


def place_initial(sim, nodes: Nodes, node: np.ndarray, who: np.ndarray, mean_stay: np.ndarray, stream: str) -> np.ndarray:
    """Put the members already in beds when the run starts into their nodes (just before day 0, with a
    fresh memoryless stay); returns those who found no bed and are queued instead."""
    if len(who) == 0:
        return who
    service = np.maximum(-mean_stay * np.log1p(-uniforms(sim.key(stream), 0, who)), 1e-6)  # no stay ends before day 0
    kind, _, member, _, _ = nodes.advance(node.astype(np.int64), who.astype(np.int64), np.full(len(who), -1e-9),
                                          service, 0.0)
    return who[~np.isin(who, member[kind == 0])]


def bed_nodes(sim, line: str, patience: float) -> Nodes:
    """One node per region, with the beds of that region's open providers of the line."""
    pr = sim.pr
    sel = (pr.line == LINE[line]) & pr.is_open
    beds = np.bincount(pr.region[sel], weights=pr.capacity[sel], minlength=sim.world.n_regions)
    return Nodes(np.round(beds).astype(np.int64), np.full(sim.world.n_regions, patience))


class Hospital(Module):
    name = "hospital"
    params = (
        Param("dur_los_by_tier", (3.0, 4.0, 5.0, 6.5), "days", "mean inpatient length of stay by acuity tier",
              "AHRQ HCUP: mean US stay about 4.5-5 days"),
        Param("p_inpatient_death", 0.015, "per stay", "adult stays that end in death", "AHRQ HCUP: about 2% of stays"),
        Param("p_inpatient_death_child", 0.002, "per stay", "stays of children that end in death",
              "AHRQ HCUP: well under 1% of children's stays end in death"),
        Param("p_discharge_snf", 0.06, "per stay", "stays needing a SNF bed, ages 18-64 (children need none)"),
        Param("p_discharge_snf_65plus", 0.22, "per stay", "stays needing a SNF bed, 65 and over"),
        Param("p_discharge_home_health", 0.12, "per stay", "stays discharged to home health"),
        Param("p_discharge_hcbs", 0.04, "per stay", "stays discharged with a new HCBS referral"),
        Param("max_delayed_discharge_days", 10.0, "days", "days a medically ready patient waits for a SNF bed"),
        Param("delay_limit_distribution", 0, "policy", "0 = fixed: every patient waits up to the limit; "
              "1 = exponential with the limit as its mean (Erlang A)"),
        Param("dur_snf_days", 22.0, "days", "mean post-acute SNF stay (exponential), long stays included: a stay "
              "that turns permanent moves to a nursing-facility bed at its end"),
        Param("readmission_window_days", 30, "days", "window in which an admission counts as a readmission"),
        Param("p_readmission_30d", 0.14, "per discharge", "30-day readmission with the needed support",
              "AHRQ HCUP Statistical Brief 248: about 14% all-payer"),
        Param("p_readmission_30d_without_support", 0.28, "per discharge",
              "30-day readmission after discharge without the needed post-acute service"),
    )
    member_columns = {"ti_ready": (np.int32, 0), "ti_admit": (np.int32, 0), "need": (np.int8, NEED_HOME),
                      "long_stay": (np.bool_, False)}

    def init(self, sim) -> None:
        self.snf = bed_nodes(sim, "snf", sim.p.max_delayed_discharge_days)
        pr = sim.pr
        hosp = (pr.line == LINE["hospital"]) & pr.is_open
        self.hospital_beds = np.bincount(pr.region[hosp], weights=pr.capacity[hosp], minlength=sim.world.n_regions)
        self.k = {n: SLOTS("bed_days", n) for n in BEDS}
        self._arrivals = []
        self._placed_snf(sim)

    def _placed_snf(self, sim) -> None:
        """Members in a SNF bed when the run starts keep it, for a fresh (memoryless) stay."""
        m = sim.m
        who = np.flatnonzero(m.loc == SNF)
        queued = place_initial(sim, self.snf, m.region[who], who, np.full(len(who), sim.p.dur_snf_days), "snf-initial")
        # more occupants on record than beds: the rest wait in hospital, as delayed discharges
        m.loc[queued] = HOSPITAL
        m.need[queued] = NEED_SNF_QUEUED
        m.ti_ready[queued] = 0

    def _arrive(self, sim, who, t, service, patience) -> None:
        self._arrivals.append((sim.m.region[who].astype(np.int64), who.astype(np.int64), t, service, patience))

    def admit(self, sim, members: np.ndarray, day: int, psych: bool = False) -> None:
        m, p = sim.m, sim.p
        members = np.unique(members)
        members = members[(m.status[members] == ENROLLED) & (m.loc[members] == HOME)]
        if len(members) == 0:
            return
        readmit = members[m.readmit_until[members] >= day]
        _admit(sim.key("admission"), day, members, psych, m.tier, m.age, m.svc, m.loc, m.need, m.ti_ready, m.ti_admit,
               np.array(p.dur_los_by_tier), p.p_inpatient_death, p.p_inpatient_death_child, p.p_discharge_snf, p.p_discharge_snf_65plus,
               p.p_discharge_home_health, p.p_discharge_hcbs)
        m.readmit_until[members] = -1
        joins_census(sim, members)
        sim.add(members, SLOTS("admissions"))
        sim.add(readmit, SLOTS("readmissions"))
        sim.add(members, SLOTS("bed_arrivals", "hospital"))
        if sim.recorder is not None:
            sim.recorder.admitted(sim, members, day, psych)

    def _home(self, sim, who: np.ndarray, day: int, supported: bool) -> None:
        m, p = sim.m, sim.p
        m.loc[who] = HOME
        m.readmit_until[who] = day + p.readmission_window_days
        p30 = p.p_readmission_30d if supported else p.p_readmission_30d_without_support
        m.p_readmit[who] = -np.log1p(-p30) / p.readmission_window_days

    def day(self, sim, day: int) -> None:
        m, p = sim.m, sim.p
        self._arrivals = []
        inpatients = away(sim)
        inpatients = inpatients[m.loc[inpatients] == HOSPITAL]
        ready = inpatients[(m.ti_ready[inpatients] <= day) & (m.need[inpatients] != NEED_SNF_QUEUED)]
        need = m.need[ready]
        rec = sim.recorder
        died = ready[need == NEED_DIED]
        m.loc[died] = HOME
        if rec is not None:
            rec.discharged(sim, ready[need != NEED_SNF], day)
        sim.module("mortality").leave(sim, died, day, DIED)
        snf = ready[need == NEED_SNF]
        if len(snf):
            key = sim.key("snf")
            service = -p.dur_snf_days * np.log1p(-uniforms(key, day, snf, 1))
            t = day + uniforms(key, day, snf, 2)
            m.long_stay[snf] = uniforms(key, day, snf, 0) < p.p_snf_long_stay
            m.need[snf] = NEED_SNF_QUEUED
            limit = np.full(len(snf), p.max_delayed_discharge_days)
            if p.delay_limit_distribution == 1:
                limit = -limit * np.log1p(-uniforms(key, day, snf, 3))
            self._arrive(sim, snf, t, service, limit)
        home = ready[np.isin(need, (NEED_HOME, NEED_PSYCH, NEED_HOME_HEALTH, NEED_HCBS))]
        self._home(sim, home, day, supported=True)
        for code, line in ((NEED_HOME_HEALTH, HOME_HEALTH), (NEED_HCBS, HCBS)):
            who = home[(m.need[home] == code) & (m.svc[home] != ACTIVE)]
            open_for(sim, who, line, day, WAITING, priority=4)
            m.ti_authorised[who] = day
        self._run_snf(sim, day)
        w = sim.day // 7
        if w < sim.weeks:
            _census(sim.M, sim.G, w, day, away(sim), m.loc, m.need, m.ti_ready, m.supported, m.status, m.region, m.g_age, m.g_sex,
                    m.g_race, self.k["hospital"], self.k["snf"], self.k["crisis_stabilization"],
                    self.k["supportive_housing"], self.k["nursing_facility"], SLOTS("ed_boarding_days"),
                    SLOTS("delayed_discharge_days"))

    def _run_snf(self, sim, day: int) -> None:
        m = sim.m
        parts = self._arrivals or [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0))]
        node, who, t, service, patience = (np.concatenate(x) for x in zip(*parts))
        kind, _, member, _, _ = self.snf.advance(node, who, t, service, day + 1.0, patience)
        rec = sim.recorder
        start = member[kind == 0]
        m.loc[start] = SNF
        m.need[start] = NEED_HOME
        sim.add(start, SLOTS("bed_arrivals", "snf"))
        end = member[kind == 1]
        gone = member[kind == 2]
        # a stay that turned permanent ends in a move to a nursing-facility bed, when one is free
        long = end[m.long_stay[end] & (m.status[end] == ENROLLED)]
        m.long_stay[end] = False
        moved = sim.module("mortality").move_in(sim, long, day, record=False)
        if rec is not None:
            rec.snf_events(sim, start, end, gone, moved, day)
        back = end[~np.isin(end, moved)]
        self._home(sim, back[m.status[back] == ENROLLED], day, supported=True)
        m.loc[back] = HOME
        m.need[gone] = NEED_HOME
        self._home(sim, gone, day, supported=False)
        sim.add(gone, SLOTS("discharges_without_support"))

    def week_end(self, sim, day: int) -> None:
        R = np.arange(sim.world.n_regions)
        sim.add_region(R, SLOTS("beds", "hospital"), self.hospital_beds)
        sim.add_region(R, SLOTS("beds", "snf"), self.snf.c.astype(float))
        sim.add_region(R, SLOTS("beds", "nursing_facility"), sim.module("mortality").nf_beds.astype(float))



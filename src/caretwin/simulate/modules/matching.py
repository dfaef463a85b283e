"""Matching: authorised members to providers with free hours, in region or within a travel limit;
members who wait long enough give up (they find other care, move or stop qualifying)."""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.rng import uniforms
from caretwin.simulate.engine import Module
from caretwin.simulate.modules.services import close_for
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.params import Param
from caretwin.simulate.state import ACTIVE, HOME, LINE, WAITING


@nb.njit(cache=True)
def _match(order, day, svc, svc_line, region, hours, provider, ti_referred, dur_service, ti_service_end,
           p_line, p_region, p_open, p_capacity, committed, travel, limit):
    """First fit in the member's region, else the nearest region within the travel limit. Returns started members."""
    started = np.empty(len(order), np.int64)
    n = 0
    # free hours only shrink during a call, so the largest free slot per line bounds who can be placed
    most_free = np.zeros(np.max(p_line) + 1 if len(p_line) else 1)
    for k in range(len(p_line)):
        if p_open[k]:
            most_free[p_line[k]] = max(most_free[p_line[k]], p_capacity[k] - committed[k])
    for j in range(len(order)):
        i = order[j]
        if hours[i] - 1e-9 > most_free[svc_line[i]]:
            continue
        best = -1
        best_t = np.inf
        for k in range(len(p_line)):
            if p_line[k] != svc_line[i] or not p_open[k] or p_capacity[k] - committed[k] < hours[i] - 1e-9:
                continue
            t = travel[region[i], p_region[k]]
            if t <= limit and t < best_t:
                best, best_t = k, t
                if t == 0.0:
                    break
        if best >= 0:
            svc[i] = ACTIVE
            provider[i] = best
            committed[best] += hours[i]
            ti_service_end[i] = day + dur_service[i]
            started[n] = i
            n += 1
    return started[:n]


class Matching(Module):
    name = "matching"
    params = (
        Param("travel_limit_minutes", 60.0, "minutes", "longest trip a provider makes to a member outside its region"),
        Param("waitlist_priority", 0, "policy", "0 = acuity first (then oldest), 1 = first come first served"),
        Param("booking_share_of_vacancies", 1.0, "share",
              "share of its vacant posts' hours a provider still books cases against",
              "assumption: agencies size caseloads to funded posts and cover vacancies (15.3% of DSP posts, National "
              "Core Indicators State of the Workforce 2022) with overtime first, then missed visits"),
        Param("rate_waitlist_withdrawal", 0.4, "per member-year", "members leaving the HCBS waiting list unserved",
              "assumption: a list where a third of those waiting leave it unserved within a year, so that it "
              "settles at months of waiting instead of growing without end (KFF: waits of months, often over 6)"),
    )
    member_columns = {"ti_service_end": (np.int32, 0), "ti_started": (np.int32, 0)}

    def init(self, sim) -> None:
        self.k = {LINE[l]: (SLOTS("starts", l), SLOTS("wait_days", l)) for l in ("hcbs", "home_health")}
        self.travel = np.ascontiguousarray(sim.world.travel, dtype=np.float64)

    def day(self, sim, day: int) -> None:
        m, pr = sim.m, sim.pr
        waiting = np.flatnonzero(m.svc == WAITING)
        if len(waiting) == 0:
            return
        waiting = waiting[m.loc[waiting] == HOME]
        if sim.p.waitlist_priority == 0:
            order = waiting[np.lexsort((waiting, m.ti_referred[waiting], -m.priority[waiting].astype(np.int16)))]
        else:
            order = waiting[np.lexsort((waiting, m.ti_referred[waiting]))]
        # agencies take cases against their budgeted posts, not only the staff they have today: the hours of a
        # vacant post they book are covered by overtime, or missed (see the workforce module)
        vacant = np.where(pr.headcount > 0, np.maximum(np.round(pr.budget_fte) - pr.headcount, 0), 0)
        vacant = vacant * sim.p.hours_per_fte_week  # an agency with nobody left books no one
        bookable = pr.capacity + sim.p.booking_share_of_vacancies * vacant
        started = _match(order, day, m.svc, m.svc_line, m.region, m.hours, m.provider, m.ti_referred, m.dur_service,
                         m.ti_service_end, pr.line, pr.region, pr.is_open, bookable, pr.committed, self.travel,
                         sim.p.travel_limit_minutes)
        m.ti_started[started] = day
        for line, (k_start, k_wait) in self.k.items():
            s = started[m.svc_line[started] == line]
            sim.add(s, k_start)
            sim.add(s, k_wait, (day - m.ti_referred[s]).astype(np.float64))
        if sim.recorder is not None:
            sim.recorder.started(sim, started, day)

    def week(self, sim, day: int) -> None:
        m = sim.m
        waiting = np.flatnonzero((m.svc == WAITING) & (m.svc_line == LINE["hcbs"]))
        p = 1.0 - np.exp(-sim.p.rate_waitlist_withdrawal / 52.0)
        close_for(sim, waiting[uniforms(sim.key("waitlist-withdrawal"), day, waiting) < p], day, "withdrawn")

    def week_end(self, sim, day: int) -> None:
        m = sim.m
        for state, name in ((WAITING, "waitlist"), (ACTIVE, "in_service")):
            who = np.flatnonzero(m.svc == state)
            for line in ("hcbs", "home_health"):
                sim.add(who[m.svc_line[who] == LINE[line]], SLOTS(name, line))

"""Matching: authorised members to providers with free hours, in region or within a travel limit;
members who wait long enough give up (they find other care, move or stop qualifying)."""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.rng import uniforms
from caretwin.simulate.engine import Module
from caretwin.simulate.modules.services import close_for, in_state
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.params import Param
from caretwin.simulate.state import ACTIVE, HOME, LINE, WAITING


@nb.njit(cache=True)
def _match(order, day, svc, svc_line, region, hours, provider, dur_service, ti_service_end, p_line, p_region, p_open,
           p_capacity, committed, starts, cand, cand_t, reach, limit):
    """First fit in the member's region, else the nearest region within the travel limit. Returns started members.

    `cand[starts[l * R + r]:starts[l * R + r + 1]]` are line l's providers in order of travel time from region r
    (then provider order), with those times in `cand_t`: the first with room is the nearest. The largest free slot
    of each line within reach of each region is kept as members are placed, so a member no slot can take is
    passed over at once (free hours only shrink during a call)."""
    R = reach.shape[0]
    n_lines = np.max(p_line) + 1 if len(p_line) else 1
    free = np.zeros((n_lines, R))  # largest free slot by line and provider region
    for k in range(len(p_line)):
        if p_open[k]:
            free[p_line[k], p_region[k]] = max(free[p_line[k], p_region[k]], p_capacity[k] - committed[k])
    in_reach = np.zeros((n_lines, R))
    for ln in range(n_lines):
        for r in range(R):
            for r2 in range(R):
                if reach[r, r2]:
                    in_reach[ln, r] = max(in_reach[ln, r], free[ln, r2])
    started = np.empty(len(order), np.int64)
    n = 0
    for j in range(len(order)):
        i = order[j]
        ln = svc_line[i]
        if hours[i] - 1e-9 > in_reach[ln, region[i]]:
            continue
        best = -1
        key = ln * R + region[i]
        for q in range(starts[key], starts[key + 1]):
            if cand_t[q] > limit:
                break
            k = cand[q]
            if p_open[k] and p_capacity[k] - committed[k] >= hours[i] - 1e-9:
                best = k
                break
        if best >= 0:
            svc[i] = ACTIVE
            provider[i] = best
            committed[best] += hours[i]
            ti_service_end[i] = day + dur_service[i]
            started[n] = i
            n += 1
            rb = p_region[best]  # that region's largest free slot may have shrunk
            f = 0.0
            for q in range(starts[ln * R + rb], starts[ln * R + rb + 1]):
                k = cand[q]
                if p_region[k] == rb and p_open[k]:
                    f = max(f, p_capacity[k] - committed[k])
            free[ln, rb] = f
            for r in range(R):
                if reach[r, rb]:
                    m = 0.0
                    for r2 in range(R):
                        if reach[r, r2]:
                            m = max(m, free[ln, r2])
                    in_reach[ln, r] = m
    return started[:n]


def _by_travel(line: np.ndarray, p_region: np.ndarray, travel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every (line, member region): the line's providers by travel time, then provider order (CSR arrays)."""
    n_lines, R = int(line.max()) + 1 if len(line) else 1, travel.shape[0]
    starts, cand, cand_t = [0], [], []
    for ln in range(n_lines):
        mine = np.flatnonzero(line == ln)
        for r in range(R):
            t = travel[r, p_region[mine]]
            o = np.lexsort((mine, t))
            cand.append(mine[o])
            cand_t.append(t[o])
            starts.append(starts[-1] + len(mine))
    return (np.array(starts, np.int64), np.concatenate(cand).astype(np.int64) if cand else np.empty(0, np.int64),
            np.concatenate(cand_t).astype(np.float64) if cand_t else np.empty(0))


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
        self.starts, self.cand, self.cand_t = _by_travel(sim.pr.line, sim.pr.region, self.travel)

    def day(self, sim, day: int) -> None:
        m, pr = sim.m, sim.pr
        waiting = in_state(sim, WAITING)
        waiting = waiting[m.loc[waiting] == HOME]
        if len(waiting) == 0:
            return
        # agencies take cases against their budgeted posts, not only the staff they have today: the hours of a
        # vacant post they book are covered by overtime, or missed (see the workforce module)
        vacant = np.where(pr.headcount > 0, np.maximum(np.round(pr.budget_fte) - pr.headcount, 0), 0)
        vacant = vacant * sim.p.hours_per_fte_week  # an agency with nobody left books no one
        bookable = pr.capacity + sim.p.booking_share_of_vacancies * vacant
        if sim.p.waitlist_priority == 0:
            order = waiting[np.lexsort((waiting, m.ti_referred[waiting], -m.priority[waiting].astype(np.int16)))]
        else:
            order = waiting[np.lexsort((waiting, m.ti_referred[waiting]))]
        limit = sim.p.travel_limit_minutes
        started = _match(order, day, m.svc, m.svc_line, m.region, m.hours, m.provider, m.dur_service, m.ti_service_end,
                         pr.line, pr.region, pr.is_open, bookable, pr.committed, self.starts, self.cand, self.cand_t,
                         self.travel <= limit, limit)
        m.ti_started[started] = day
        for line, (k_start, k_wait) in self.k.items():
            s = started[m.svc_line[started] == line]
            sim.add(s, k_start)
            sim.add(s, k_wait, (day - m.ti_referred[s]).astype(np.float64))
        if sim.recorder is not None:
            sim.recorder.started(sim, started, day)

    def week(self, sim, day: int) -> None:
        m = sim.m
        waiting = in_state(sim, WAITING)
        waiting = waiting[m.svc_line[waiting] == LINE["hcbs"]]
        p = 1.0 - np.exp(-sim.p.rate_waitlist_withdrawal / 52.0)
        close_for(sim, waiting[uniforms(sim.key("waitlist-withdrawal"), day, waiting) < p], day, "withdrawn")

    def week_end(self, sim, day: int) -> None:
        m = sim.m
        for state, name in ((WAITING, "waitlist"), (ACTIVE, "in_service")):
            who = in_state(sim, state)
            for line in ("hcbs", "home_health"):
                sim.add(who[m.svc_line[who] == LINE[line]], SLOTS(name, line))

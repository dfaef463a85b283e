"""Delivery and unmet need: scheduled visits, missed when a provider is short-staffed; a rolling unmet-need index."""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.rng import uniform
from caretwin.simulate.engine import Module, add_member
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.modules.services import close_for, in_state
from caretwin.simulate.params import Param
from caretwin.simulate.state import ACTIVE, HOME, LINE, PENDING, WAITING

DELIVERED, MISSED_PROVIDER, MISSED_MEMBER = 0, 1, 2


@nb.njit(cache=True)
def _visits(key, day, weekday, w, M, G, k_sched, k_missed, k_member, k_auth, k_deliv, active, svc_line, pattern, visits_pw,
            hours, provider, loc, region, g_age, g_sex, g_race, missed_share, week_missed, n_sched, n_missed, visit,
            p_base, p_member, record):
    """Today's visits of the members in service (metrics by line and group)."""
    for j in range(len(active)):
        i = active[j]
        if record:
            visit[i] = -1
        if (pattern[i] >> weekday) & 1 == 0:
            continue
        p = provider[i]
        u = uniform(key, day, i)
        h = hours[i] / visits_pw[i]
        if loc[i] != HOME:
            s = MISSED_MEMBER
        elif u < p_base + missed_share[p]:
            s = MISSED_PROVIDER
            week_missed[p] += 1
        elif u > 1.0 - p_member:
            s = MISSED_MEMBER
        else:
            s = DELIVERED
        n_sched[i] += 1
        if s != DELIVERED:
            n_missed[i] += 1
        if record:
            visit[i] = s
        if w >= 0:
            line = svc_line[i]
            add_member(M, G, w, region[i], g_age[i], g_sex[i], g_race[i], k_sched[line], 1.0)
            add_member(M, G, w, region[i], g_age[i], g_sex[i], g_race[i], k_auth[line], h)
            if s == DELIVERED:
                add_member(M, G, w, region[i], g_age[i], g_sex[i], g_race[i], k_deliv[line], h)
            elif s == MISSED_PROVIDER:
                add_member(M, G, w, region[i], g_age[i], g_sex[i], g_race[i], k_missed[line], 1.0)
            else:
                add_member(M, G, w, region[i], g_age[i], g_sex[i], g_race[i], k_member[line], 1.0)


@nb.njit(cache=True)
def _unmet(svc, n_sched, n_missed, unmet, weight):
    for i in range(len(svc)):
        if svc[i] == PENDING or svc[i] == WAITING:
            frac = 1.0
        elif svc[i] == ACTIVE and n_sched[i] > 0:
            frac = n_missed[i] / n_sched[i]
        else:
            frac = 0.0
        unmet[i] = (1.0 - weight) * unmet[i] + weight * frac
        n_sched[i] = 0
        n_missed[i] = 0


class Delivery(Module):
    name = "delivery"
    params = (
        Param("p_missed_provider_base", 0.01, "per visit", "visits a fully staffed provider still misses"),
        Param("p_missed_member_visit", 0.03, "per visit", "visits the member misses or cancels"),
        Param("unmet_need_weight", 0.3, "share", "weight of the latest week in the rolling unmet-need index"),
    )
    member_columns = {"n_sched_w": (np.int8, 0), "n_missed_w": (np.int8, 0), "visit": (np.int8, -1)}
    provider_columns = {"week_missed": (np.int32, 0)}

    def init(self, sim) -> None:
        n_lines = max(LINE.values()) + 1
        self.k = {}
        for name in ("scheduled_visits", "missed_visits", "member_missed_visits", "authorised_hours", "delivered_hours"):
            arr = np.zeros(n_lines, np.int64)
            for line in ("hcbs", "home_health"):
                arr[LINE[line]] = SLOTS(name, line)
            self.k[name] = arr

    def week(self, sim, day: int) -> None:
        m = sim.m
        _unmet(m.svc, m.n_sched_w, m.n_missed_w, m.unmet, sim.p.unmet_need_weight)

    def day(self, sim, day: int) -> None:
        m, pr, k = sim.m, sim.pr, self.k
        w = sim.day // 7 if sim.day // 7 < sim.weeks else -1
        active = in_state(sim, ACTIVE)
        _visits(sim.key("visits"), day, day % 7, w, sim.M, sim.G, k["scheduled_visits"], k["missed_visits"],
                k["member_missed_visits"], k["authorised_hours"], k["delivered_hours"], active, m.svc_line, m.pattern,
                m.visits_pw, m.hours, m.provider, m.loc, m.region, m.g_age, m.g_sex, m.g_race, pr.missed_share,
                pr.week_missed, m.n_sched_w, m.n_missed_w, m.visit, sim.p.p_missed_provider_base,
                sim.p.p_missed_member_visit, sim.recorder is not None)
        if sim.recorder is not None:
            sim.recorder.visits(sim, day)
        close_for(sim, active[m.ti_service_end[active] <= day], day, "completed")

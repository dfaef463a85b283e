"""Authorisation: care coordinators work the referral backlog, oldest first, at a daily capacity."""

from __future__ import annotations

import numpy as np

from caretwin.simulate.engine import Module
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.modules.services import in_state
from caretwin.simulate.params import Param
from caretwin.simulate.state import LINE, PENDING, WAITING


class Authorisation(Module):
    name = "authorisation"
    params = (
        Param("auths_per_coordinator_day", 3.0, "authorisations/day", "assessments one care coordinator completes a day"),
        Param("members_per_coordinator", 2500.0, "members", "members per coordinator where the data name none"),
        Param("min_auth_days", 1.0, "days", "shortest time from referral to authorisation"),
    )

    def init(self, sim) -> None:
        pr, w = sim.pr, sim.world
        coord = (pr.line == LINE["care_coordination"]) & pr.is_open
        self.capacity = np.bincount(pr.region[coord], weights=pr.capacity[coord], minlength=w.n_regions)
        none = self.capacity <= 0  # regions without a coordination provider on record
        members = np.bincount(sim.m.region, minlength=w.n_regions)
        self.capacity[none] = np.ceil(members[none] / sim.p.members_per_coordinator)
        self.per_day = np.floor(self.capacity * sim.p.auths_per_coordinator_day).astype(np.int64)
        self.k = {line: SLOTS("auth_backlog", line) for line in ("hcbs", "home_health")}

    def day(self, sim, day: int) -> None:
        m = sim.m
        pending = in_state(sim, PENDING)
        if len(pending) == 0:
            return
        pending = pending[m.ti_referred[pending] + sim.p.min_auth_days <= day]
        order = pending[np.lexsort((pending, m.ti_referred[pending], m.region[pending]))]
        regions = m.region[order]
        rank = np.arange(len(order)) - np.searchsorted(regions, regions, "left")
        done = order[rank < self.per_day[regions]]
        m.svc[done] = WAITING
        m.ti_authorised[done] = day
        if sim.recorder is not None:
            sim.recorder.authorised(sim, done, day)

    def week_end(self, sim, day: int) -> None:
        m = sim.m
        pending = in_state(sim, PENDING)
        for line, k in self.k.items():
            sim.add(pending[m.svc_line[pending] == LINE[line]], k)

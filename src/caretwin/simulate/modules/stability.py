"""Quality and provider stability: incidents and complaints from turnover, overtime and training; a
provider risk index; exit under sustained strain, which sends the provider's members back to the waitlist."""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.rng import poisson, uniform
from caretwin.simulate.engine import Module
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.modules.services import in_state
from caretwin.simulate.params import Param
from caretwin.simulate.state import ACTIVE, LINE, WAITING

STAFFED = (LINE["hcbs"], LINE["home_health"])


@nb.njit(cache=True)
def _week(key, day, staffed, headcount, budget, training, ot_share, missed_share, week_missed, seps_4w, strain,
          risk, incidents, complaints, exits, rate_inc, rate_cmp, strain_share, strain_weeks, p_exit, w0, w_turn,
          w_ot, w_missed, w_inc):
    for j in range(len(staffed)):
        k = staffed[j]
        hc = max(headcount[k], 0)
        turnover = seps_4w[k] / max(hc, 1)
        lam = rate_inc * hc * (1.0 + 3.0 * turnover) * (1.0 + 2.0 * ot_share[k]) * (1.6 - training[k])
        incidents[j] = poisson(key, day, k, 0, lam)
        complaints[j] = poisson(key, day, k, 2, rate_cmp * week_missed[k] + 0.001 * hc)
        x = w0 + w_turn * turnover + w_ot * ot_share[k] + w_missed * missed_share[k] + w_inc * incidents[j] / max(hc, 1)
        risk[k] = 1.0 / (1.0 + np.exp(-x))
        strain[k] = strain[k] + 1 if hc < strain_share * budget[k] else 0
        exits[j] = strain[k] >= strain_weeks and uniform(key, day, k, 4) < p_exit
        week_missed[k] = 0


class Stability(Module):
    name = "stability"
    params = (
        Param("rate_incident_per_staff_week", 0.004, "per worker-week", "critical incidents at a stable, trained provider"),
        Param("rate_complaint_per_missed_visit", 0.02, "per missed visit", "complaints per visit the provider missed"),
        Param("strain_headcount_share", 0.55, "share", "headcount below this share of budget strains a provider"),
        Param("strain_weeks_before_exit_risk", 6, "weeks", "consecutive strained weeks before exit becomes possible"),
        Param("p_exit_week_when_strained", 0.15, "per week", "chance a long-strained provider closes in a week"),
        Param("risk_intercept", -3.0, "log-odds", "provider risk index: baseline"),
        Param("risk_per_turnover", 8.0, "log-odds per share", "risk index weight of 4-week turnover"),
        Param("risk_per_overtime", 6.0, "log-odds per share", "risk index weight of the overtime share"),
        Param("risk_per_missed_share", 6.0, "log-odds per share", "risk index weight of the share of hours missed"),
        Param("risk_per_incident_rate", 20.0, "log-odds per incident/worker", "risk index weight of weekly incidents per worker"),
    )
    provider_columns = {"strain_weeks": (np.int32, 0), "risk": (np.float32, 0.0),
                        "ti_closed": (np.int32, np.iinfo(np.int32).max)}

    def init(self, sim) -> None:
        self.staffed_mask = np.isin(sim.pr.line, STAFFED)

    def week_end(self, sim, day: int) -> None:
        pr, p = sim.pr, sim.p
        staffed = np.flatnonzero(self.staffed_mask & pr.is_open)
        n = len(staffed)
        inc, cmp_, exits = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.bool_)
        _week(sim.key("stability"), day, staffed, pr.headcount, pr.budget_fte, pr.training, pr.overtime_share,
              pr.missed_share, pr.week_missed, pr.seps_4w, pr.strain_weeks, pr.risk, inc, cmp_, exits,
              p.rate_incident_per_staff_week, p.rate_complaint_per_missed_visit, p.strain_headcount_share,
              p.strain_weeks_before_exit_risk, p.p_exit_week_when_strained, p.risk_intercept, p.risk_per_turnover,
              p.risk_per_overtime, p.risk_per_missed_share, p.risk_per_incident_rate)
        for line in ("hcbs", "home_health"):
            sel = pr.line[staffed] == LINE[line]
            reg = pr.region[staffed[sel]]
            sim.add_region(reg, SLOTS("incidents", line), inc[sel])
            sim.add_region(reg, SLOTS("complaints", line), cmp_[sel])
            sim.add_region(reg, SLOTS("provider_risk", line), pr.risk[staffed[sel]].astype(float))
            sim.add_region(reg, SLOTS("providers_open", line), np.ones(int(sel.sum())))
        if sim.recorder is not None:
            sim.recorder.quality(sim, staffed, inc, cmp_, day)
        closing = staffed[exits]
        if len(closing):
            self.close(sim, closing, day)

    def close(self, sim, providers: np.ndarray, day: int) -> None:
        """Providers exit: their members go back to the waitlist, first in line, with their remaining service."""
        pr, m = sim.pr, sim.m
        pr.is_open[providers] = False
        pr.ti_closed[providers] = day
        for line in ("hcbs", "home_health"):
            sel = providers[pr.line[providers] == LINE[line]]
            sim.add_region(pr.region[sel], SLOTS("provider_exits", line), np.ones(len(sel)))
        active = in_state(sim, ACTIVE)
        displaced = active[np.isin(m.provider[active], providers)]
        pr.committed[providers] = 0.0
        if sim.recorder is not None:
            sim.recorder.displaced(sim, displaced, day)
        m.provider[displaced] = -1
        m.svc[displaced] = WAITING
        m.priority[displaced] = 5
        m.ti_referred[displaced] = day
        m.dur_service[displaced] = np.maximum(m.ti_service_end[displaced] - day, 1)
        for line in ("hcbs", "home_health"):
            sim.add(displaced[m.svc_line[displaced] == LINE[line]], SLOTS("displaced", line))

"""Demand: referrals for home- and community-based services, drawn from the members who need them."""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.simulate.engine import Module, p_day
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.modules.services import (
    HCBS,
    HOME_HEALTH,
    complete_episodes,
    open_for,
)
from caretwin.simulate.params import Param
from caretwin.simulate.state import ACTIVE, ENROLLED, NONE, PENDING


@nb.njit(parallel=True, cache=True)
def _referral_hazard(out, status, svc, tier, age, caregiver, rate_tier, rel_65, rel_no_cg, rel_child, rel, region, rel_region):
    for i in nb.prange(len(status)):
        if status[i] != ENROLLED or svc[i] != NONE:
            out[i] = 0.0
            continue
        r = rate_tier[tier[i] - 1] * rel * rel_region[region[i]]
        if age[i] >= 65:
            r *= rel_65
        elif age[i] < 18:
            r *= rel_child
        if not caregiver[i]:
            r *= rel_no_cg
        out[i] = p_day(r)


class Demand(Module):
    name = "demand"
    hazards = ("referral",)
    params = (
        Param("rate_hcbs_referral_tier", (0.003, 0.012, 0.05, 0.14), "per member-year",
              "HCBS referral rate by acuity tier 1-4"),
        Param("rel_hcbs_referral_65plus", 2.0, "ratio", "referral rate multiplier at age 65 and over"),
        Param("rel_hcbs_referral_child", 0.2, "ratio", "referral rate multiplier under 18"),
        Param("rel_hcbs_referral_no_caregiver", 1.5, "ratio", "referral rate multiplier without an unpaid caregiver"),
        Param("rel_referrals", 1.0, "ratio", "scenario multiplier on all HCBS referrals (1 = as calibrated)"),
        Param("rel_hcbs_referral_region", 1.0, "ratio", "referral rate multiplier of each region", per_region=True),
        Param("referral_trend_per_year", 0.0, "log-rate per year", "referrals grow by exp(this x years from the start)"),
        Param("referral_seasonality", 0.0, "ratio", "amplitude of the yearly cosine in referrals"),
        Param("referral_peak_day", 15.0, "day of year", "day of the year when referrals peak"),
        Param("hcbs_hours_by_tier", (6.0, 10.0, 16.0, 24.0), "hours/week", "authorised HCBS hours by acuity tier"),
        Param("dur_hcbs_service_days", 700.0, "days", "mean length of an HCBS episode (exponential)"),
        Param("dur_home_health_days", 45.0, "days", "mean length of a home health episode (14 days + exponential)"),
        Param("home_health_hours_week", 3.0, "hours/week", "home health visit hours per week"),
    )
    member_columns = {
        "dur_service": (np.int32, 0), "pattern": (np.int8, 0), "visits_pw": (np.int8, 1), "priority": (np.int8, 0),
        "ti_authorised": (np.int32, 0),
    }

    def init(self, sim) -> None:
        m, p = sim.m, sim.p
        open_ = np.flatnonzero(m.svc != NONE)
        complete_episodes(sim.key("initial-episodes"), open_, HOME_HEALTH, p.dur_hcbs_service_days,
                          p.dur_home_health_days, m.svc_line, m.hours, m.dur_service, m.ti_service_end, m.pattern,
                          m.visits_pw, m.svc == ACTIVE)
        m.priority[open_[m.priority[open_] == 0]] = m.tier[open_[m.priority[open_] == 0]]
        self.k_ref = SLOTS("referrals", "hcbs")
        self.j = sim.hazard_index["referral"]

    def week(self, sim, day: int) -> None:
        m, p = sim.m, sim.p
        doy = (sim.world.start.timetuple().tm_yday - 1 + day) % 365
        season = 1.0 + p.referral_seasonality * np.cos(2 * np.pi * (doy - p.referral_peak_day) / 365)
        trend = np.exp(p.referral_trend_per_year * day / 365.0)
        _referral_hazard(m.hazard[self.j], m.status, m.svc, m.tier, m.age, m.caregiver, np.array(p.rate_hcbs_referral_tier),
                         p.rel_hcbs_referral_65plus, p.rel_hcbs_referral_no_caregiver, p.rel_hcbs_referral_child,
                         p.rel_referrals * season * trend, m.region,
                         p.by_region("rel_hcbs_referral_region", sim.world.region_ids))

    def day(self, sim, day: int) -> None:
        who = sim.events("referral")
        who = who[sim.m.svc[who] == NONE]
        open_for(sim, who, HCBS, day, PENDING)
        sim.add(who, self.k_ref)

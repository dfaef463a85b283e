"""Costs: unit costs times the week's quantities, by region, and for the county and its subgroups."""

from __future__ import annotations

from caretwin.simulate.engine import Module
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.params import Param

_ILLUSTRATIVE = "illustrative 2024 US Medicaid-scale figure; load the agency's fee schedule into unit_costs"
# cost category -> (unit-cost parameter, quantity: (metric, line, sign) summed, multiplier)
CATEGORIES = {
    "hcbs": ("cost_hcbs_hour", (("delivered_hours", "hcbs", 1),), 1.0),
    "home_health": ("cost_home_health_visit", (("scheduled_visits", "home_health", 1),
                                               ("missed_visits", "home_health", -1),
                                               ("member_missed_visits", "home_health", -1)), 1.0),
    "emergency": ("cost_ed_visit", (("ed_visits", "all", 1),), 1.0),
    "inpatient": ("cost_inpatient_day", (("bed_days", "hospital", 1),), 1.0),
    "snf": ("cost_snf_day", (("bed_days", "snf", 1),), 1.0),
    "nursing_facility": ("cost_nursing_facility_day", (("bed_days", "nursing_facility", 1),), 1.0),
    "crisis": ("cost_mobile_crisis_episode", (("crisis_episodes", "all", 1),), 1.0),
    "crisis_stabilization": ("cost_csu_day", (("bed_days", "crisis_stabilization", 1),), 1.0),
    "supportive_housing": ("cost_supportive_housing_day", (("bed_days", "supportive_housing", 1),), 1.0),
    "care_coordination": ("cost_care_coordination_month", (("in_service", "hcbs", 1), ("in_service", "home_health", 1)),
                          7.0 / 30.44),
}
# unit_costs.item in the workspace -> parameter
ITEMS = {
    "hcbs_hour": "cost_hcbs_hour", "home_health_visit": "cost_home_health_visit", "ed_visit": "cost_ed_visit",
    "inpatient_day": "cost_inpatient_day", "snf_day": "cost_snf_day",
    "nursing_facility_day": "cost_nursing_facility_day", "csu_day": "cost_csu_day",
    "mobile_crisis_episode": "cost_mobile_crisis_episode", "care_coordination_month": "cost_care_coordination_month",
    "supportive_housing_day": "cost_supportive_housing_day",
}


class Costs(Module):
    name = "costs"
    params = (
        Param("cost_hcbs_hour", 28.0, "currency/hour", "HCBS personal care, per delivered hour", _ILLUSTRATIVE),
        Param("cost_home_health_visit", 145.0, "currency/visit", "home health, per visit", _ILLUSTRATIVE),
        Param("cost_ed_visit", 780.0, "currency/visit", "emergency department visit", _ILLUSTRATIVE),
        Param("cost_inpatient_day", 2900.0, "currency/bed-day", "inpatient bed-day", _ILLUSTRATIVE),
        Param("cost_snf_day", 265.0, "currency/bed-day", "skilled nursing bed-day", _ILLUSTRATIVE),
        Param("cost_nursing_facility_day", 240.0, "currency/bed-day", "long-stay nursing-facility bed-day",
              _ILLUSTRATIVE),
        Param("cost_csu_day", 950.0, "currency/bed-day", "crisis stabilisation bed-day", _ILLUSTRATIVE),
        Param("cost_mobile_crisis_episode", 1100.0, "currency/episode", "mobile crisis response", _ILLUSTRATIVE),
        Param("cost_care_coordination_month", 120.0, "currency/member-month", "care coordination of a member in service",
              _ILLUSTRATIVE),
        Param("cost_supportive_housing_day", 45.0, "currency/unit-day", "supportive housing unit-day", _ILLUSTRATIVE),
    )

    def init(self, sim) -> None:
        self.plan = [(SLOTS("cost", cat), param, [(SLOTS(name, line), sign) for name, line, sign in qty], mult)
                     for cat, (param, qty, mult) in CATEGORIES.items()]

    def week_end(self, sim, day: int) -> None:
        w = sim.day // 7
        if w >= sim.weeks:
            return
        p = sim.p
        for X in (sim.M, sim.G):
            for k_cost, param, qty, mult in self.plan:
                X[w, :, k_cost] = sum(sign * X[w, :, q] for q, sign in qty) * p[param] * mult

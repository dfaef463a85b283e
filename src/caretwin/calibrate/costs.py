"""Unit costs: the workspace's fee schedule, latest year per item (no uncertainty)."""

from __future__ import annotations

from caretwin.calibrate.data import Window
from caretwin.calibrate.estimate import Estimate

ITEMS = {  # unit_costs.item -> engine parameter
    "hcbs_hour": "cost_hcbs_hour", "home_health_visit": "cost_home_health_visit", "ed_visit": "cost_ed_visit",
    "inpatient_day": "cost_inpatient_day", "snf_day": "cost_snf_day", "csu_day": "cost_csu_day",
    "mobile_crisis_episode": "cost_mobile_crisis_episode", "care_coordination_month": "cost_care_coordination_month",
    "supportive_housing_day": "cost_supportive_housing_day",
}


def estimate(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    rows = dict(con.execute("SELECT item, arg_max(cost, year) FROM unit_costs GROUP BY 1").fetchall())
    return [Estimate(param, float(rows[item]), None, "the workspace's unit cost, latest year", "unit_costs",
                     low=float(rows[item]), high=float(rows[item]))
            for item, param in ITEMS.items() if item in rows]

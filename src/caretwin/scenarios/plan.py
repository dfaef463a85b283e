"""A scenario compiled against a world: week-by-week parameter changes and one-off events, run by a
module that acts first each week, and the interventions' own costs.

Parameter changes multiply each replication's own values (so calibration draws keep their spread)
and are applied at week boundaries; one-off events (staff moved, beds opened, providers closed,
members enrolled) happen at the start of their week. A scenario that changes nothing leaves every
replication exactly as the baseline's, and nothing changes before an intervention's first week.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from caretwin.errors import Problem, ValidationError
from caretwin.rng import uniforms
from caretwin.scenarios.spec import (
    BED_LINES,
    AddCapacity,
    CareCoordination,
    HousingSupport,
    Located,
    ProviderClosure,
    RedeployStaff,
    Referrals,
    SeasonalSurge,
    StaffLoss,
    TransitionalCare,
    TravelTimeLimit,
    WageIncrease,
)
from caretwin.simulate.engine import Module
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.params import Params
from caretwin.simulate.state import ENROLLED, LINE, World

SURGE_PARAMS = {"referrals": ("rel_referrals",), "ed_visits": ("rate_ed",), "admissions": ("rate_admission",),
                "crisis": ("rate_crisis_bh", "rate_crisis_other")}
DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class Event:
    week: int  # 0-based
    kind: str
    args: dict[str, Any]


@dataclass
class Plan:
    """What a scenario does to a run, week by week (0-based weeks). Pure data: it travels to workers."""

    weeks: int
    region_ids: tuple[str, ...]
    factors: dict[str, np.ndarray] = field(default_factory=dict)  # scalar parameter -> [weeks] multiplier
    region_factors: dict[str, np.ndarray] = field(default_factory=dict)  # per-region parameter -> [weeks, R]
    sets: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)  # parameter -> [(from week, value)]
    events: list[Event] = field(default_factory=list)
    fixed_cost: np.ndarray | None = None  # [weeks, R] cost of capacity held
    transitional_cost: list[tuple[int, float]] = field(default_factory=list)  # (from week, cost per admission)

    def __post_init__(self) -> None:
        if self.fixed_cost is None:
            self.fixed_cost = np.zeros((self.weeks, len(self.region_ids)))

    def factor(self, name: str) -> np.ndarray:
        return self.factors.setdefault(name, np.ones(self.weeks))

    def region_factor(self, name: str) -> np.ndarray:
        return self.region_factors.setdefault(name, np.ones((self.weeks, len(self.region_ids))))

    def param_weeks(self) -> set[int]:
        """Weeks at whose start the parameters change."""
        weeks = {w for changes in self.sets.values() for w, _ in changes}
        for f in list(self.factors.values()) + list(self.region_factors.values()):
            g = f.reshape(len(f), -1)
            if np.any(g[0] != 1):
                weeks.add(0)
            weeks.update((np.flatnonzero(np.any(g[1:] != g[:-1], axis=1)) + 1).tolist())
        return weeks


class ScenarioModule(Module):
    """Applies a plan; acts first each week, so the mechanisms see the week's changes."""

    name = "scenario"

    def __init__(self, plan: Plan):
        self.plan = plan
        self.change_weeks = plan.param_weeks()
        self.events: dict[int, list[Event]] = {}
        for ev in plan.events:
            self.events.setdefault(ev.week, []).append(ev)

    def init(self, sim) -> None:
        self.base = sim.p
        self.moved: dict[int, int] = {}
        self.coordinated: list[tuple[np.ndarray, float]] = []  # members enrolled, cost per member-week
        self.wage: list[tuple[np.ndarray, float]] = []  # providers with a pay rise, extra cost per staffed hour
        if 0 in self.change_weeks:
            sim.p = self.params_at(0)

    def params_at(self, w: int) -> Params:
        plan, p = self.plan, self.base.copy()
        values: dict[str, Any] = {}
        for name, changes in plan.sets.items():
            for start, v in changes:
                if start <= w:
                    values[name] = v
        p.update(values)
        for name, f in plan.factors.items():
            values[name] = p[name] * float(f[w])
        for name, f in plan.region_factors.items():
            values[name] = dict(zip(plan.region_ids, (p.by_region(name, plan.region_ids) * f[w]).tolist()))
        return p.update(values)

    def week(self, sim, day: int) -> None:
        w = sim.day // 7
        if w > 0 and w in self.change_weeks:
            sim.p = self.params_at(w)
        for ev in self.events.get(w, ()):
            getattr(self, "_" + ev.kind)(sim, day, **ev.args)

    # ------------------------------------------------------------------------------- one-off events
    def _redeploy(self, sim, day, line, src, dst, fte, tag, back=False) -> None:
        workforce = sim.module("workforce")
        if back:
            workforce.redeploy(sim, line, src, dst, self.moved.pop(tag, 0))
        else:
            self.moved[tag] = workforce.redeploy(sim, line, src, dst, fte)

    def _staff_loss(self, sim, day, line, regions, fte, share) -> None:
        pr = sim.pr
        for r in regions:
            sel = np.flatnonzero((pr.line == LINE[line]) & (pr.region == r) & pr.is_open)
            sel = sel[np.argsort(-pr.headcount[sel], kind="stable")]
            if share is not None:
                pr.headcount[sel] -= np.round(pr.headcount[sel] * share).astype(pr.headcount.dtype)
            else:
                left = fte
                for k in sel:
                    take = min(int(pr.headcount[k]), left)
                    pr.headcount[k] -= take
                    left -= take
            pr.capacity[sel] = pr.headcount[sel] * sim.p.hours_per_fte_week

    def _close(self, sim, day, providers) -> None:
        providers = np.asarray(providers, np.int64)
        providers = providers[sim.pr.is_open[providers]]
        if len(providers):
            sim.module("stability").close(sim, providers, day)

    def _add_staff(self, sim, day, line, region, fte) -> None:
        pr = sim.pr
        sel = np.flatnonzero((pr.line == LINE[line]) & (pr.region == region) & pr.is_open)
        if len(sel) == 0:
            return  # every provider of the line there has closed: nobody to employ them
        k = sel[np.argmax(pr.budget_fte[sel])]
        pr.headcount[k] += fte
        pr.budget_fte[k] += fte
        pr.capacity[k] = pr.headcount[k] * sim.p.hours_per_fte_week

    def _add_beds(self, sim, day, line, region, beds) -> None:
        if line == "supportive_housing":
            sim.module("housing").units[region] += beds
            return
        nodes = sim.module("hospital").snf if line == "snf" else sim.module("crisis").nodes
        nodes.set_capacity(region, int(nodes.c[region]) + beds)

    def _wage(self, sim, day, line, regions, sep, hire, cost_per_hour) -> None:
        pr = sim.pr
        sel = np.flatnonzero((pr.line == LINE[line]) & np.isin(pr.region, regions))
        pr.rel_separation[sel] *= sep
        pr.rel_hiring[sel] *= hire
        self.wage.append((sel, cost_per_hour))

    def _coordinate(self, sim, day, regions, members, share, tier_min, factor, cost_per_week) -> None:
        m = sim.m
        eligible = np.flatnonzero((m.status == ENROLLED) & (m.tier >= tier_min) & np.isin(m.region, regions)
                                  & (m.rel_acute == 1.0))
        n = members if members is not None else int(round(share * len(eligible)))
        u = uniforms(sim.key("care-coordination"), day, eligible)
        chosen = eligible[np.lexsort((u, -m.tier[eligible].astype(np.int16)))][:n]
        m.rel_acute[chosen] *= factor
        self.coordinated.append((np.sort(chosen), cost_per_week))

    # ------------------------------------------------------------------------------------ costs
    def week_end(self, sim, day: int) -> None:
        w = sim.day // 7
        if w >= sim.weeks:
            return
        k = SLOTS("intervention_cost")
        M, m, pr = sim.M, sim.m, sim.pr
        M[w, :, 0, k] += self.plan.fixed_cost[w]
        for members, cost in self.coordinated:
            alive = members[m.status[members] == ENROLLED]
            sim.add_region(m.region[alive], k, np.full(len(alive), cost))
        for providers, cost in self.wage:
            open_ = providers[pr.is_open[providers]]
            sim.add_region(pr.region[open_], k, pr.headcount[open_] * sim.p.hours_per_fte_week * cost)
        for start, cost in self.plan.transitional_cost:
            if w >= start:
                M[w, :, 0, k] += M[w, :, 0, SLOTS("admissions")] * cost


# ------------------------------------------------------------------------------------- compiling
def compile_plan(located: Located, world: World, params: Params) -> Plan:
    """Turn a validated scenario into a plan for this world; unknown regions or providers are located errors."""
    sc = located.scenario
    W = sc.horizon_weeks
    R = world.n_regions
    plan = Plan(W, tuple(world.region_ids))
    region_index = {r: i for i, r in enumerate(world.region_ids)}
    provider_index = {p: i for i, p in enumerate(world.provider_ids)}
    problems: list[Problem] = []

    def regions_of(value, at) -> list[int]:
        if value == "all":
            return list(range(R))
        out = []
        for j, r in enumerate(value):
            if r not in region_index:
                problems.append(located.problem(at + (j,), f"unknown region {r!r}; regions: {', '.join(world.region_ids)}"))
            else:
                out.append(region_index[r])
        return out

    def region(value, at) -> int:
        if value not in region_index:
            problems.append(located.problem(at, f"unknown region {value!r}; regions: {', '.join(world.region_ids)}"))
            return 0
        return region_index[value]

    def weeks_of(item) -> range:
        end = W if getattr(item, "end_week", None) is None else min(item.end_week, W)
        return range(item.start_week - 1, end)

    for section, kind, i, item in sc.items():
        at = (section, i, kind)
        w0 = item.start_week - 1 if hasattr(item, "start_week") else 0
        if isinstance(item, Referrals):
            regs = regions_of(item.regions, at + ("regions",))
            for w in weeks_of(item):
                frac = min(1.0, (w - w0 + 1) / item.ramp_weeks) if item.ramp_weeks else 1.0
                f = 1.0 + item.change * frac
                if item.service_line == "hcbs":
                    plan.region_factor("rel_hcbs_referral_region")[w, regs] *= f
                elif item.regions != "all":
                    problems.append(located.problem(at + ("regions",), "home health referrals come from hospital "
                                                    "discharges and change for all regions at once; use regions: all"))
                else:
                    plan.factor("p_discharge_home_health")[w] *= f
        elif isinstance(item, SeasonalSurge):
            peak = item.peak_week - 1
            for w in range(W):
                d = abs(w - peak)
                if d < item.width_weeks:
                    f = 1.0 + item.change * 0.5 * (1.0 + np.cos(np.pi * d / item.width_weeks))
                    for what in item.affects:
                        for name in SURGE_PARAMS[what]:
                            plan.factor(name)[w] *= f
        elif isinstance(item, StaffLoss):
            plan.events.append(Event(w0, "staff_loss", dict(line=item.service_line, share=item.share, fte=item.fte,
                                                            regions=regions_of(item.regions, at + ("regions",)))))
        elif isinstance(item, ProviderClosure):
            if item.providers:
                idx = []
                for j, pid in enumerate(item.providers):
                    if pid not in provider_index:
                        problems.append(located.problem(at + ("providers", j), f"unknown provider {pid!r}"))
                    else:
                        idx.append(provider_index[pid])
            else:
                r = region(item.region, at + ("region",))
                pr = world.providers
                sel = np.flatnonzero((pr["line"] == LINE[item.service_line]) & (pr["region"] == r) & pr["is_open"])
                if len(sel) < item.count:
                    problems.append(located.problem(at + ("count",), f"region {item.region} has {len(sel)} open "
                                                    f"{item.service_line} provider(s)"))
                idx = sel[np.argsort(-pr["budget_fte"][sel], kind="stable")][:item.count].tolist()
            plan.events.append(Event(w0, "close", dict(providers=idx)))
        elif isinstance(item, RedeployStaff):
            src, dst = region(item.from_region, at + ("from",)), region(item.to_region, at + ("to",))
            args = dict(line=item.service_line, src=src, dst=dst, fte=item.fte, tag=i)
            plan.events.append(Event(w0, "redeploy", args))
            if item.end_week is not None and item.end_week < W:
                plan.events.append(Event(item.end_week, "redeploy", {**args, "src": dst, "dst": src, "back": True}))
        elif isinstance(item, AddCapacity):
            r = region(item.region, at + ("region",))
            if item.service_line in BED_LINES:
                plan.events.append(Event(w0, "add_beds", dict(line=item.service_line, region=r, beds=item.beds)))
                plan.fixed_cost[w0:, r] += item.beds * item.cost_per_bed_day * 7
            else:
                plan.events.append(Event(w0, "add_staff", dict(line=item.service_line, region=r, fte=item.fte)))
                plan.fixed_cost[w0:, r] += item.fte * item.cost_per_fte_week
        elif isinstance(item, WageIncrease):
            plan.events.append(Event(w0, "wage", dict(
                line=item.service_line, regions=regions_of(item.regions, at + ("regions",)),
                sep=1.0 + item.separation_change, hire=1.0 + item.hiring_change,
                cost_per_hour=item.increase * item.hourly_wage)))
        elif isinstance(item, CareCoordination):
            plan.events.append(Event(w0, "coordinate", dict(
                regions=regions_of(item.regions, at + ("regions",)), members=item.members, share=item.share,
                tier_min=item.tier_min, factor=1.0 + item.acute_change,
                cost_per_week=item.cost_per_member_month * 7 / DAYS_PER_MONTH)))
        elif isinstance(item, TransitionalCare):
            for name in ("p_readmission_30d", "p_readmission_30d_without_support"):
                plan.factor(name)[w0:] *= 1.0 + item.readmission_change
            plan.transitional_cost.append((w0, item.cost_per_discharge))
        elif isinstance(item, HousingSupport):
            r = region(item.region, at + ("region",))
            plan.events.append(Event(w0, "add_beds", dict(line="supportive_housing", region=r, beds=item.units)))
            plan.fixed_cost[w0:, r] += item.units * item.cost_per_unit_day * 7
        elif isinstance(item, TravelTimeLimit):
            plan.sets.setdefault("travel_limit_minutes", []).append((w0, float(item.minutes)))
    if sc.policies.waitlist_priority is not None:
        plan.sets["waitlist_priority"] = [(0, 0 if sc.policies.waitlist_priority == "acuity_first" else 1)]
    for name, value in sc.parameters.items():
        try:
            params.copy().update({name: value})
        except ValidationError as exc:
            problems += [located.problem(("parameters", name), p.reason) for p in exc.problems]
            continue
        plan.sets[name] = [(0, value)]
    if problems:
        raise ValidationError(problems)
    return plan

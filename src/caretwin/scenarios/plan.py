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
from caretwin.model.schema import SERVICE_LINES
from caretwin.scenarios.spec import (
    BED_LINES,
    STAFFED_LINES,
    AddCapacity,
    CareCoordination,
    Enrolment,
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
from caretwin.simulate.modules.mortality import POOL_HEADROOM
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
    changes: list[str] = field(default_factory=list)  # what each action changes, in words, for the run record

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
        pr = sim.pr
        providers = np.asarray(providers, np.int64)
        providers = providers[pr.is_open[providers]]
        beds = providers[~np.isin(pr.line[providers], [LINE[x] for x in STAFFED_LINES])]
        for k in beds:  # their beds take no new patients; the occupants stay until their stays end
            self._add_beds(sim, day, SERVICE_LINES[pr.line[k]], int(pr.region[k]), -int(round(pr.capacity[k])))
        pr.is_open[beds] = False
        staffed = providers[~np.isin(providers, beds)]
        if len(staffed):
            sim.module("stability").close(sim, staffed, day)

    def _add_staff(self, sim, day, line, region, fte) -> None:
        pr = sim.pr
        if fte < 0:
            self._staff_loss(sim, day, line, [region], -fte, None)
            return
        sel = np.flatnonzero((pr.line == LINE[line]) & (pr.region == region) & pr.is_open)
        if len(sel) == 0:
            return  # every provider of the line there has closed since the start: nobody to employ them
        k = sel[np.argmax(pr.budget_fte[sel])]
        pr.headcount[k] += fte
        pr.budget_fte[k] += fte
        pr.capacity[k] = pr.headcount[k] * sim.p.hours_per_fte_week

    def _add_beds(self, sim, day, line, region, beds) -> None:
        """Beds (or units) added in a region, or removed when `beds` is negative (never below none)."""
        if line == "supportive_housing":
            units = sim.module("housing").units
            units[region] = max(0, units[region] + beds)
        elif line == "nursing_facility":
            nf = sim.module("mortality").nf_beds
            nf[region] = max(0, nf[region] + beds)
        else:
            nodes = sim.module("hospital").snf if line == "snf" else sim.module("crisis").nodes
            nodes.set_capacity(region, max(0, int(nodes.c[region]) + beds))

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
        m, pr = sim.m, sim.pr
        regions = np.arange(sim.world.n_regions)
        sim.add_region(regions, k, self.plan.fixed_cost[w])
        for members, cost in self.coordinated:
            alive = members[m.status[members] == ENROLLED]
            sim.add_region(m.region[alive], k, np.full(len(alive), cost))
        for providers, cost in self.wage:
            open_ = providers[pr.is_open[providers]]
            sim.add_region(pr.region[open_], k, pr.headcount[open_] * sim.p.hours_per_fte_week * cost)
        for start, cost in self.plan.transitional_cost:
            if w >= start:
                sim.add_region(regions, k, sim.M[w, :, SLOTS("admissions")] * cost)


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

    pr, mem = world.providers, world.members

    def open_of(line: str, regs) -> np.ndarray:
        return np.flatnonzero((pr["line"] == LINE[line]) & np.isin(pr["region"], regs) & pr["is_open"])

    def amount(line: str, regs) -> int:
        """Staff (staffed lines) or beds of the line's open providers in these regions at the start."""
        sel = open_of(line, regs)
        return int(pr["headcount"][sel].sum() if line in STAFFED_LINES else np.round(pr["capacity"][sel]).sum())

    def names(regs) -> str:
        return "all regions" if len(regs) == R else ", ".join(world.region_ids[r] for r in regs)

    def provider_text(k: int) -> str:
        line = SERVICE_LINES[pr["line"][k]]
        size = f"{pr['headcount'][k]} staff" if line in STAFFED_LINES else f"{pr['capacity'][k]:.0f} beds"
        return f"{world.provider_ids[k]} ({line} in {world.region_ids[pr['region'][k]]}, {size})"

    def ramped(item) -> list[tuple[int, float]]:
        """(week, multiplier) of a change reached linearly over the item's ramp_weeks."""
        w0 = item.start_week - 1
        return [(w, 1.0 + item.change * (min(1.0, (w - w0 + 1) / item.ramp_weeks) if item.ramp_weeks else 1.0))
                for w in weeks_of(item)]

    def reached(item) -> str:
        return f" (reached over {item.ramp_weeks} weeks)" if item.ramp_weeks else ""

    def change(item, text: str) -> None:
        plan.changes.append(f"week {item.start_week if hasattr(item, 'start_week') else 1}: {text}")

    for section, kind, i, item in sc.items():
        at = (section, i, kind)
        w0 = item.start_week - 1 if hasattr(item, "start_week") else 0
        if isinstance(item, Referrals):
            regs = regions_of(item.regions, at + ("regions",))
            change(item, f"{item.service_line} referrals in {names(regs)} {item.change:+.0%}{reached(item)}")
            for w, f in ramped(item):
                if item.service_line == "hcbs":
                    plan.region_factor("rel_hcbs_referral_region")[w, regs] *= f
                elif item.regions != "all":
                    problems.append(located.problem(at + ("regions",), "home health referrals come from hospital "
                                                    "discharges and change for all regions at once; use regions: all"))
                else:
                    plan.factor("p_discharge_home_health")[w] *= f
        elif isinstance(item, Enrolment):
            regs = regions_of(item.regions, at + ("regions",))
            change(item, f"new enrolment in {names(regs)} {item.change:+.0%}{reached(item)}")
            for w, f in ramped(item):
                plan.region_factor("rel_enrolment_region")[w, regs] *= f
            if plan.region_factor("rel_enrolment_region").max() > POOL_HEADROOM + 1e-9:
                problems.append(located.problem(at + ("change",), "enrolment shocks together raise new enrolment "
                                                f"more than {POOL_HEADROOM:g}x somewhere; the engine reserves no more"))
        elif isinstance(item, SeasonalSurge):
            change(item, f"{', '.join(item.affects)} {item.change:+.0%} at the peak in week {item.peak_week}")
            peak = item.peak_week - 1
            for w in range(W):
                d = abs(w - peak)
                if d < item.width_weeks:
                    f = 1.0 + item.change * 0.5 * (1.0 + np.cos(np.pi * d / item.width_weeks))
                    for what in item.affects:
                        for name in SURGE_PARAMS[what]:
                            plan.factor(name)[w] *= f
        elif isinstance(item, StaffLoss):
            regs = regions_of(item.regions, at + ("regions",))
            staff = amount(item.service_line, regs)
            if staff == 0:
                problems.append(located.problem(at + ("regions",), f"no {item.service_line} staff in {names(regs)}: "
                                                "the loss would remove nobody"))
            lost = f"{item.share:.0%} (about {round(staff * item.share)})" if item.share is not None else f"{item.fte}"
            change(item, f"{names(regs)} lose {lost} of their {staff} {item.service_line} staff")
            plan.events.append(Event(w0, "staff_loss", dict(line=item.service_line, share=item.share, fte=item.fte,
                                                            regions=regs)))
        elif isinstance(item, ProviderClosure):
            if item.providers:
                idx = []
                for j, pid in enumerate(item.providers):
                    k = provider_index.get(pid)
                    line = SERVICE_LINES[pr["line"][k]] if k is not None else None
                    if k is None:
                        problems.append(located.problem(at + ("providers", j), f"unknown provider {pid!r}"))
                    elif not pr["is_open"][k]:
                        problems.append(located.problem(at + ("providers", j), f"provider {pid} is already closed"))
                    elif line not in STAFFED_LINES + BED_LINES:
                        problems.append(located.problem(at + ("providers", j), f"provider {pid} is {line}: closing it "
                                                        "changes nothing the engine models (it closes "
                                                        + ", ".join(STAFFED_LINES + BED_LINES) + " providers)"))
                    else:
                        idx.append(k)
            else:
                r = region(item.region, at + ("region",))
                sel = open_of(item.service_line, [r])
                if len(sel) < item.count:
                    problems.append(located.problem(at + ("count",), f"region {item.region} has {len(sel)} open "
                                                    f"{item.service_line} provider(s)"))
                size = pr["budget_fte"] if item.service_line in STAFFED_LINES else pr["capacity"]
                idx = sel[np.argsort(-size[sel], kind="stable")][:item.count].tolist()
            for k in idx:
                change(item, f"{provider_text(k)} closes")
            plan.events.append(Event(w0, "close", dict(providers=idx)))
        elif isinstance(item, RedeployStaff):
            src, dst = region(item.from_region, at + ("from",)), region(item.to_region, at + ("to",))
            have = amount(item.service_line, [src])
            if have < item.fte:
                problems.append(located.problem(at + ("fte",), f"{item.from_region} has {have} {item.service_line} "
                                                f"staff; cannot move {item.fte}"))
            if len(open_of(item.service_line, [dst])) == 0:
                problems.append(located.problem(at + ("to",), f"no open {item.service_line} provider in "
                                                f"{item.to_region} to take them"))
            change(item, f"{item.fte} {item.service_line} staff move from {item.from_region} (of {have}) to "
                   f"{item.to_region}" + (f", back in week {item.end_week + 1}" if item.end_week is not None
                                          and item.end_week < W else ""))
            args = dict(line=item.service_line, src=src, dst=dst, fte=item.fte, tag=i)
            plan.events.append(Event(w0, "redeploy", args))
            if item.end_week is not None and item.end_week < W:
                plan.events.append(Event(item.end_week, "redeploy", {**args, "src": dst, "dst": src, "back": True}))
        elif isinstance(item, AddCapacity):
            r = region(item.region, at + ("region",))
            bed = item.service_line in BED_LINES
            n, what = (item.beds, "beds") if bed else (item.fte, "staff")
            have = amount(item.service_line, [r])
            if n < 0 and -n > have:
                problems.append(located.problem(at + (what if bed else "fte",), f"{item.region} has {have} "
                                                f"{item.service_line} {what}; cannot remove {-n}"))
            if not bed and len(open_of(item.service_line, [r])) == 0:
                problems.append(located.problem(at + ("region",), f"no open {item.service_line} provider in "
                                                f"{item.region} to employ them"))
            change(item, f"{item.service_line} {what} in {item.region}: {have} -> {have + n}"
                   + (" (removed beds take no new patients; their occupants stay until their stays end)"
                      if bed and n < 0 else ""))
            if bed:
                plan.events.append(Event(w0, "add_beds", dict(line=item.service_line, region=r, beds=item.beds)))
                plan.fixed_cost[w0:, r] += item.beds * item.cost_per_bed_day * 7
            else:
                plan.events.append(Event(w0, "add_staff", dict(line=item.service_line, region=r, fte=item.fte)))
                plan.fixed_cost[w0:, r] += item.fte * item.cost_per_fte_week
        elif isinstance(item, WageIncrease):
            regs = regions_of(item.regions, at + ("regions",))
            sel = open_of(item.service_line, regs)
            if len(sel) == 0:
                problems.append(located.problem(at + ("regions",), f"no open {item.service_line} provider in "
                                                f"{names(regs)}: nobody's pay would rise"))
            change(item, f"pay of {pr['headcount'][sel].sum()} {item.service_line} staff at {len(sel)} providers in "
                   f"{names(regs)} {item.increase:+.0%}; assumed: separations {item.separation_change:+.0%}, "
                   f"hiring {item.hiring_change:+.0%}")
            plan.events.append(Event(w0, "wage", dict(
                line=item.service_line, regions=regs,
                sep=1.0 + item.separation_change, hire=1.0 + item.hiring_change,
                cost_per_hour=item.increase * item.hourly_wage)))
        elif isinstance(item, CareCoordination):
            regs = regions_of(item.regions, at + ("regions",))
            eligible = int(((mem["status"] == ENROLLED) & (mem["tier"] >= item.tier_min)
                            & np.isin(mem["region"], regs)).sum())
            if eligible == 0:
                problems.append(located.problem(at + ("tier_min",), f"no enrolled member of tier {item.tier_min} or "
                                                f"above in {names(regs)}: nobody to enrol"))
            n = item.members if item.members is not None else round(item.share * eligible)
            change(item, f"{min(n, eligible)} of {eligible} eligible members (tier {item.tier_min}+, {names(regs)}) "
                   f"enrolled in care coordination; assumed: acute care {item.acute_change:+.0%}")
            plan.events.append(Event(w0, "coordinate", dict(
                regions=regs, members=item.members, share=item.share,
                tier_min=item.tier_min, factor=1.0 + item.acute_change,
                cost_per_week=item.cost_per_member_month * 7 / DAYS_PER_MONTH)))
        elif isinstance(item, TransitionalCare):
            change(item, f"transitional care after every discharge; assumed: 30-day readmission "
                   f"{item.readmission_change:+.0%}")
            for name in ("p_readmission_30d", "p_readmission_30d_without_support"):
                plan.factor(name)[w0:] *= 1.0 + item.readmission_change
            plan.transitional_cost.append((w0, item.cost_per_discharge))
        elif isinstance(item, HousingSupport):
            r = region(item.region, at + ("region",))
            have = amount("supportive_housing", [r])
            change(item, f"supportive housing units in {item.region}: {have} -> {have + item.units}")
            plan.events.append(Event(w0, "add_beds", dict(line="supportive_housing", region=r, beds=item.units)))
            plan.fixed_cost[w0:, r] += item.units * item.cost_per_unit_day * 7
        elif isinstance(item, TravelTimeLimit):
            change(item, f"travel limit {params['travel_limit_minutes']:g} -> {item.minutes:g} minutes")
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
        plan.changes.append(f"week 1: parameter {name} {params[name]} -> {value}")
    if sc.policies.waitlist_priority is not None:
        plan.changes.append(f"week 1: waiting list served {sc.policies.waitlist_priority.replace('_', ' ')}")
    if problems:
        raise ValidationError(problems)
    return plan

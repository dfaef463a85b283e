"""Virtual pilots: a randomised trial among the member twins, inside one simulation.

Each replication draws a cohort of eligible members, randomises them to the intervention (care
coordination with a stated effect on acute care) or to control, and follows both arms for the
horizon. Each replication is one virtual trial: its estimate and interval are what a real pilot
of that size could have seen; across replications we get the effect in the simulated system, the
chance a pilot of this size detects it, and the size a real pilot would need for the power asked.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field
from scipy import stats

from caretwin.errors import ValidationError
from caretwin.rng import uniforms
from caretwin.scenarios.compare import Interval, mean_interval, wilson
from caretwin.scenarios.run import baseline_params
from caretwin.scenarios.spec import Change, Item, Located, Regions, load_yaml
from caretwin.simulate.engine import Module, default_modules
from caretwin.simulate.initial import from_workspace
from caretwin.simulate.runner import Progress, run_replications
from caretwin.simulate.state import ENROLLED, HOME, HOSPITAL
from caretwin.workspace import Workspace


class Cohort(Item):
    regions: Regions = "all"
    tier_min: Annotated[int, Field(ge=1, le=4)] = 3
    size: Annotated[int, Field(ge=20)]


class PilotIntervention(Item):
    acute_change: Change  # effect on ED visits, admissions and crises of the members it reaches
    cost_per_member_month: Annotated[float, Field(ge=0)] = 0.0


class Pilot(Item):
    name: Annotated[str, Field(min_length=1, max_length=80)]
    description: str = ""
    baseline: str = "calibrated"
    horizon_weeks: Annotated[int, Field(ge=1, le=520)] = 26
    replications: Annotated[int, Field(ge=2, le=10_000)] = 50
    seed: Annotated[int, Field(ge=0)] = 0
    cohort: Cohort
    allocation: Annotated[float, Field(gt=0, lt=1)] = 0.5  # share randomised to the intervention
    intervention: PilotIntervention
    outcome: Literal["any_acute", "ed_visits", "admissions", "crisis"] = "any_acute"
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    power: Annotated[float, Field(gt=0.5, lt=1)] = 0.8


def load_pilot(path: str | Path) -> tuple[Pilot, Located]:
    return load_yaml(path, Pilot)


class PilotModule(Module):
    """Randomises the cohort at the start and counts each cohort member's acute events; acts last each day."""

    name = "pilot"

    def __init__(self, pilot: Pilot, regions: np.ndarray):
        self.pilot = pilot
        self.regions = regions

    def init(self, sim) -> None:
        m, pl = sim.m, self.pilot
        eligible = np.flatnonzero((m.status == ENROLLED) & (m.loc == HOME) & (m.tier >= pl.cohort.tier_min)
                                  & np.isin(m.region, self.regions))
        key = sim.key("pilot")
        u = uniforms(key, -1, eligible, 0)
        self.cohort = np.sort(eligible[np.argsort(u, kind="stable")][:pl.cohort.size])
        self.treated = uniforms(key, -1, self.cohort, 1) < pl.allocation
        m.rel_acute[self.cohort[self.treated]] *= 1.0 + pl.intervention.acute_change
        self.pos = np.full(len(sim.m.region), -1, np.int64)
        self.pos[self.cohort] = np.arange(len(self.cohort))
        self.events = np.zeros((len(self.cohort), 3), np.int32)  # ED visits, admissions, crises

    def day(self, sim, day: int) -> None:
        m = sim.m
        for j, who in ((0, sim.events("ed")), (2, sim.events("crisis"))):
            at = self.pos[who]
            np.add.at(self.events[:, j], at[at >= 0], 1)
        c = self.cohort
        admitted = (m.ti_admit[c] == day) & (m.loc[c] == HOSPITAL)
        self.events[admitted, 1] += 1

    def outcome(self, sim) -> dict[str, np.ndarray]:
        return {"pilot_treated": self.treated.copy(), "pilot_events": self.events.copy()}


@dataclass
class PilotResult:
    name: str
    outcome: str
    replications: int
    cohort_size: int
    treated: float  # mean members randomised to the intervention per trial
    control_rate: Interval  # share of control members with the outcome
    treated_rate: Interval
    effect: Interval  # treated minus control share, across replications (the effect in the simulated system)
    relative_risk: float
    single_trial_half_width: float  # median half-width of one trial's 95% interval
    power_at_cohort: Interval  # share of trials whose interval excludes zero in the effect's direction
    needed_per_arm: int | None  # for a two-sided test at `alpha` with `power`, 1:1 allocation
    intervention_cost: float  # per trial
    events_per_member: dict[str, dict[str, float]]

    def to_dict(self) -> dict:
        return asdict(self)


def sample_size_per_arm(p_control: float, p_treated: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Members per arm for a two-proportion z-test (two-sided), 1:1 allocation (Fleiss 1981, without continuity)."""
    d = abs(p_treated - p_control)
    if d == 0 or not (0 < p_control < 1):
        return None
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    pbar = (p_control + p_treated) / 2
    n = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p_control * (1 - p_control)
                                                                 + p_treated * (1 - p_treated))) ** 2 / d**2
    return int(math.ceil(n))


def analyse(pilot: Pilot, outcomes: list[dict[str, np.ndarray]]) -> PilotResult:
    col = {"ed_visits": [0], "admissions": [1], "crisis": [2], "any_acute": [0, 1, 2]}[pilot.outcome]
    za = stats.norm.ppf(1 - pilot.alpha / 2)
    pt, pc, hw, detect, n_t = [], [], [], [], []
    per_member = {"intervention": np.zeros(3), "control": np.zeros(3)}
    for o in outcomes:
        t, ev = o["pilot_treated"], o["pilot_events"]
        hit = ev[:, col].sum(axis=1) > 0
        a, b = hit[t].mean(), hit[~t].mean()
        se = math.sqrt(a * (1 - a) / max(t.sum(), 1) + b * (1 - b) / max((~t).sum(), 1))
        pt.append(a), pc.append(b), hw.append(za * se), n_t.append(t.sum())
        detect.append(abs(a - b) > za * se and (a - b) * pilot.intervention.acute_change > 0)
        per_member["intervention"] += ev[t].mean(axis=0) / len(outcomes)
        per_member["control"] += ev[~t].mean(axis=0) / len(outcomes)
    pt, pc = np.array(pt), np.array(pc)
    effect = mean_interval(pt - pc)
    months = pilot.horizon_weeks * 7 / 30.44
    return PilotResult(
        pilot.name, pilot.outcome, len(outcomes), len(outcomes[0]["pilot_treated"]), float(np.mean(n_t)),
        mean_interval(pc), mean_interval(pt), effect, float(pt.mean() / pc.mean()) if pc.mean() else math.nan,
        float(np.median(hw)), wilson(float(sum(detect)), len(detect)),
        sample_size_per_arm(float(pc.mean()), float(pt.mean()), pilot.alpha, pilot.power),
        float(np.mean(n_t)) * months * pilot.intervention.cost_per_member_month,
        {arm: dict(zip(("ed_visits", "admissions", "crisis"), v.round(4).tolist())) for arm, v in per_member.items()})


def run_pilot(workspace: Workspace | str | os.PathLike[str], file: str | os.PathLike[str], *,
              replications: int | None = None, seed: int | None = None, workers: int | None = None,
              progress: Progress | None = None) -> PilotResult:
    """Run a virtual pilot described by a YAML file against the workspace's current state."""
    pilot, located = load_pilot(file)
    pilot = pilot.model_copy(update={k: v for k, v in (("replications", replications), ("seed", seed)) if v is not None})
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    try:
        world = from_workspace(ws)
        regions = (np.arange(world.n_regions) if pilot.cohort.regions == "all" else
                   np.array([world.region_ids.index(r) for r in pilot.cohort.regions if r in world.region_ids]))
        unknown = [r for r in pilot.cohort.regions if r not in world.region_ids] if pilot.cohort.regions != "all" else []
        if unknown:
            raise ValidationError([located.problem(("cohort", "regions"), f"unknown region {unknown[0]!r}; regions: "
                                                   f"{', '.join(world.region_ids)}")])
        params, draws, _ = baseline_params(ws, pilot.baseline, located, world)
    finally:
        if ws is not workspace:
            ws.close()
    m = world.members
    eligible = int(((m["status"] == ENROLLED) & (m["loc"] == HOME) & (m["tier"] >= pilot.cohort.tier_min)
                    & np.isin(m["region"], regions)).sum())
    if eligible < pilot.cohort.size:
        raise ValidationError([located.problem(("cohort", "size"), f"only {eligible} members are eligible "
                                               f"(tier {pilot.cohort.tier_min}+, at home, in the regions named)")])
    result = run_replications(world, params, weeks=pilot.horizon_weeks, replications=pilot.replications,
                              seed=pilot.seed, workers=workers, progress=progress, draws=draws,
                              modules=default_modules() + [PilotModule(pilot, regions)])
    return analyse(pilot, result.outcomes)

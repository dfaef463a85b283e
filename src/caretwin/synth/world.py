"""A generated county as an engine World: regions, members, providers, and the services already running.

This is the synthetic county's starting point. Its history is then produced by the
simulation engine (`caretwin.synth.county`), so the county and the twin share mechanisms.
Provider capacity is sized from the engine's own parameters (expected referrals,
admissions, crises), so changing a mechanism's parameter also resizes the county.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caretwin.model.schema import RACE_ETHNICITY
from caretwin.rng import stream
from caretwin.simulate.engine import declared_params
from caretwin.simulate.params import Params
from caretwin.simulate.state import (
    ACTIVE,
    ENROLLED,
    HOME,
    INSTITUTIONALISED,
    LINE,
    NOT_YET,
    NURSING,
    WAITING,
    Columns,
    World,
)
from caretwin.synth.params import CountyParams

STABLE, AT_RISK, HOMELESS = 0, 1, 2
COMMUNITY_LINES = (LINE["hcbs"], LINE["home_health"])


@dataclass
class Population:
    """The generated world plus what the extract needs and the engine does not (birth year, language...)."""

    world: World
    birth_year: np.ndarray
    language: np.ndarray
    chronic: np.ndarray
    enroll_start: np.ndarray
    opened_day: np.ndarray
    population: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    reference_population: dict[str, dict[str, float]]


def _annual(p: Params, m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Expected annual rates per member under the engine's parameters (used to size providers)."""
    tier = m["tier"] - 1
    age = m["age"]
    ref = np.array(p.rate_hcbs_referral_tier)[tier] * np.where(age >= 65, p.rel_hcbs_referral_65plus,
                                                                np.where(age < 18, p.rel_hcbs_referral_child, 1.0))
    ref = ref * np.where(m["caregiver"], 1.0, p.rel_hcbs_referral_no_caregiver)
    band = np.digitize(age, [18, 65, 80])
    death = np.array(p.rate_death_by_age)[band] * np.array(p.rel_death_by_tier)[tier]
    adm = p.rate_admission * np.array(p.rel_admission_by_tier)[tier] * np.where(
        age >= 65, p.rel_admission_65plus, np.where(age < 18, p.rel_admission_child, 1.0))
    adm = adm + p.rate_ed * np.array(p.rel_ed_by_tier)[tier] * p.p_ed_admitted  # admissions through the ED
    adm = adm * np.where(m["smi"], 1.3, 1.0) * np.where(m["sud"], 1.2, 1.0) * np.array(p.rel_by_housing)[m["housing"]]
    crisis = np.where(m["smi"] | m["sud"], p.rate_crisis_bh, p.rate_crisis_other)
    return {"referral": ref, "death": death, "admission": adm, "crisis": crisis}


def build_population(cp: CountyParams, p: Params | None = None) -> Population:
    """Regions, members and providers of a synthetic county; day 0 is the first day of the burn-in."""
    p = declared_params() if p is None else p
    seed, R, n, year = cp.seed, cp.regions, cp.members, cp.start.year
    d0 = -cp.burn_in_days
    # ---------------------------------------------------------------- regions
    rng = stream(seed, "regions")
    shares = np.array(cp.rurality_shares)
    counts = np.floor(shares * R).astype(int)
    counts[0] = max(counts[0], 1)
    while counts.sum() < R:
        counts[np.argmax(shares * R - counts)] += 1
    while counts.sum() > R:
        counts[np.argmax(counts)] -= 1
    rural = np.repeat(np.arange(4), counts).astype(np.int8)
    weight = np.array(cp.rurality_population_weight)[rural] * rng.lognormal(0, 0.25, R)
    radius = np.array([0.15, 0.5, 1.0, 1.6])[rural] * rng.uniform(0.7, 1.3, R)
    angle = rng.uniform(0, 2 * np.pi, R)
    lat, lon = 40.0 + radius * np.sin(angle), -89.0 + radius * np.cos(angle) * 1.3
    members_share = weight / weight.sum()
    population = np.round(members_share * n / cp.enrolled_share_of_population).astype(np.int64)
    km = np.hypot((lat[:, None] - lat[None, :]) * 111.0, (lon[:, None] - lon[None, :]) * 85.0)
    speed = np.where((rural[:, None] >= 2) | (rural[None, :] >= 2), 75.0, 45.0)
    travel = np.where(km > 0, 10.0 + 60.0 * km / speed, 0.0).round(1)
    pop_shares = np.array(cp.race_population_shares, dtype=float)
    rural_tilt = np.where(np.arange(len(pop_shares)) == RACE_ETHNICITY.index("nh_aian"), 2.0, 1.0)
    reference = {}
    for r in range(R):
        s = pop_shares * (rural_tilt if rural[r] >= 2 else 1.0)
        s = s / s.sum()
        reference[f"R{r + 1:02d}"] = {g: round(float(v), 5) for g, v in zip(RACE_ETHNICITY, s) if v > 0}
    # ---------------------------------------------------------------- members
    rng = stream(seed, "members")
    region = rng.choice(R, size=n, p=members_share).astype(np.int16)
    band = rng.choice(4, size=n, p=np.array(cp.age_band_shares) / sum(cp.age_band_shares))
    # from age 1: a member of age 0 would be born inside the window, an enrolment the inflow does not count
    age = rng.integers(np.array([1, 18, 65, 80])[band], np.array([18, 65, 80, 96])[band])
    birth_year = (year - age).astype(np.int16)
    sex = np.where(rng.random(n) < cp.female_share, 0, 1).astype(np.int8)
    race = np.empty(n, dtype=np.int8)
    for r in range(R):
        idx = np.flatnonzero(region == r)
        w = np.array([reference[f"R{r + 1:02d}"].get(g, 0.0) for g in RACE_ETHNICITY]) * np.array(cp.race_representation)
        race[idx] = rng.choice(len(RACE_ETHNICITY), size=len(idx), p=w / w.sum())
    race[rng.random(n) < cp.unknown_race_share] = RACE_ETHNICITY.index("unknown")
    lang = np.zeros(n, dtype=np.int8)
    hisp = race == RACE_ETHNICITY.index("hispanic")
    lang[hisp & (rng.random(n) < 0.45)] = 1
    asian = race == RACE_ETHNICITY.index("nh_asian")
    pick = asian & (rng.random(n) < 0.4)
    lang[pick] = rng.integers(2, 6, size=int(pick.sum()))
    other = ~hisp & ~asian & (rng.random(n) < 0.02)
    lang[other] = rng.integers(6, 8, size=int(other.sum()))
    adult = age >= 18
    smi = adult & (rng.random(n) < cp.smi_share * 1.4)
    sud = adult & (rng.random(n) < cp.sud_share * 1.4)
    chronic = rng.poisson(0.3 + np.clip(age, 0, 95) / 22.0 + 0.8 * smi).astype(np.int8)
    score = chronic + 2 * smi + sud + rng.normal(0, 1.0, n)
    tier = (1 + np.digitize(score, [2.0, 4.5, 7.0])).astype(np.int8)
    u = rng.random(n)
    rural_rel = np.where(rural[region] == 0, 1.5, 0.8)
    housing = np.full(n, STABLE, dtype=np.int8)
    housing[u < cp.at_risk_share + cp.homeless_share * rural_rel] = AT_RISK
    housing[u < cp.homeless_share * rural_rel * (1 + smi + sud)] = HOMELESS
    caregiver = rng.random(n) < cp.caregiver_share
    # joiners enrol inside the window at the engine's inflow rate per member on the books at its start
    inflow = p.rate_enrolment * cp.days / 365.0
    joiner = rng.random(n) < inflow / (1.0 + inflow)
    start = np.where(joiner, rng.integers(0, cp.days, n), d0 - rng.integers(0, 5 * 365, n))
    birth_day = (np.array([np.datetime64(f"{y}-01-01") for y in range(1900, year + 2)])
                 - np.datetime64(cp.start)).astype(np.int64)
    start = np.maximum(start, birth_day[birth_year - 1900] + 1).astype(np.int32)
    m = Columns(region=region, age=np.minimum(age, 127).astype(np.int8), sex=sex, race=race, tier=tier, smi=smi,
                sud=sud, caregiver=caregiver, housing=housing,
                status=np.where(start <= d0, ENROLLED, NOT_YET).astype(np.int8), ti_enrol=start)
    rates = _annual(p, m)
    # ---------------------------------------------------------------- providers
    rng = stream(seed, "providers")
    in_region = np.bincount(region, minlength=R)
    rows: dict[str, list] = {k: [] for k in ("line", "region", "capacity", "budget_fte")}

    def add(line: str, r: int, capacity: float, budget: float = 0.0) -> None:
        for k, v in zip(rows, (LINE[line], r, capacity, budget)):
            rows[k].append(v)

    exit_rate = 365.0 / p.dur_hcbs_service_days + rates["death"] + p.rate_disenroll * p.rel_disenroll_in_service
    prevalence = rates["referral"] / (rates["referral"] + exit_rate)
    ip_daily = rates["admission"] / 365.0
    p_snf = np.where(age >= 65, p.p_discharge_snf_65plus, np.where(age >= 18, p.p_discharge_snf, 0.0))
    snf_census = np.bincount(region, weights=ip_daily * p_snf * p.dur_snf_days, minlength=R)
    # long-stay residents: moves from the community (tiers 3-4) and from post-acute stays, times the remaining life
    nf_entries = np.where((tier >= 3) & (age >= 18), p.rate_institutionalisation, 0.0) + np.where(
        age >= 18, ip_daily * 365.0 * p_snf * p.p_snf_long_stay, 0.0)
    nf_census = np.bincount(region, weights=nf_entries * p.dur_institutional_days / 365.0, minlength=R)
    csu_census = np.bincount(region, weights=rates["crisis"] / 365.0 * p.p_crisis_needs_bed * p.dur_csu_days, minlength=R)
    hh_census = np.bincount(region, weights=ip_daily * 1.5 * p.p_discharge_home_health * p.dur_home_health_days, minlength=R)
    homeless = np.bincount(region, weights=housing == HOMELESS, minlength=R)
    demand_hours = np.bincount(region, weights=prevalence * np.array(p.hcbs_hours_by_tier)[tier - 1], minlength=R)
    for r in range(R):
        ratio = cp.staffing_ratio_by_rurality[rural[r]]
        for share in rng.dirichlet(np.full(max(1, int(round(demand_hours[r] / p.hours_per_fte_week / 25))), 4.0)):
            add("hcbs", r, 0.0, share)  # budget set from the seeded caseload below
        hh_fte = hh_census[r] * p.home_health_hours_week / p.hours_per_fte_week * ratio
        for share in rng.dirichlet(np.full(max(1, int(round(hh_fte / 15))), 4.0)):
            add("home_health", r, 0.0, max(1.0, round(hh_fte * share)))
        add("hospital", r, float(max(10, round(population[r] * 2.4 / 1000))))
        add("snf", r, float(max(1, np.round(snf_census[r] * cp.snf_bed_ratio_by_rurality[rural[r]]))))
        add("nursing_facility", r, float(max(1, np.ceil(nf_census[r] / cp.nursing_facility_occupancy))))
        if rural[r] <= 1:
            add("crisis_stabilization", r, float(max(2, np.ceil(csu_census[r] * cp.csu_bed_ratio * 2.0))))
        add("mobile_crisis", r, float(1 + in_region[r] // 50_000))
        add("behavioral_health", r, float(max(20, round(in_region[r] * 0.05))))
        add("care_coordination", r, float(max(1, int(np.ceil(in_region[r] / p.members_per_coordinator)))))
        add("supportive_housing", r, float(max(1, round(homeless[r] * cp.supportive_housing_share_of_homeless))))
    line = np.array(rows["line"], np.int8)
    budget = np.array(rows["budget_fte"])
    P = len(line)
    pr = Columns(line=line, region=np.array(rows["region"], np.int16), capacity=np.array(rows["capacity"]),
                 budget_fte=budget, headcount=np.round(budget * rng.uniform(0.85, 0.97, P)).astype(np.int32))
    opened = d0 - rng.integers(365, 20 * 365, P).astype(np.int32)
    # ---------------------------------------------------------------- nursing-facility residents
    rng = stream(seed, "seed-residents")
    resident = np.zeros(n, bool)
    for r in range(R):
        cands = np.flatnonzero((region == r) & (start <= d0) & (nf_entries > 0))
        k = min(len(cands), int(round(nf_census[r])))
        if k:
            w = nf_entries[cands]
            resident[rng.choice(cands, size=k, replace=False, p=w / w.sum())] = True
    m.status[resident] = INSTITUTIONALISED
    m["loc"] = np.where(resident, NURSING, HOME).astype(np.int8)
    m["ti_admit"] = np.where(resident, d0 - rng.exponential(p.dur_institutional_days, n), 0).astype(np.int32)
    # ---------------------------------------------------------------- services already running
    rng = stream(seed, "seed-services")
    eligible = np.flatnonzero((start <= d0) & ~resident & (rng.random(n) < prevalence))
    received = (d0 - rng.integers(30, 3 * 365, len(eligible))).astype(np.int32)
    hours = np.round(np.array(p.hcbs_hours_by_tier)[tier[eligible] - 1] * rng.uniform(0.75, 1.25, len(eligible)) * 2) / 2
    visits = np.clip(np.ceil(hours / 4), 1, 7).astype(np.int8)
    offset = rng.integers(0, 7, len(eligible))
    pattern = np.zeros(len(eligible), np.int16)
    for k in range(7):
        pattern |= np.where(k < visits, 1 << ((offset + (k * 7) // np.maximum(visits, 1)) % 7), 0).astype(np.int16)
    provider = np.full(len(eligible), -1, np.int32)
    for r in range(R):
        mine = np.flatnonzero(region[eligible] == r)
        cands = np.flatnonzero((line == LINE["hcbs"]) & (pr.region == r))
        if len(mine) and len(cands):
            provider[mine] = cands[rng.choice(len(cands), size=len(mine), p=budget[cands] / budget[cands].sum())]
    authorised = received + rng.integers(3, 20, len(eligible)).astype(np.int32)
    started = authorised + rng.integers(5, 60, len(eligible)).astype(np.int32)
    remaining = np.maximum(1, rng.exponential(p.dur_hcbs_service_days, len(eligible))).astype(np.int32)
    # demand beyond the agencies' staff: a waiting list of authorised members, months old
    waits = rng.random(len(eligible)) < cp.hcbs_waitlist_share
    received[waits] = d0 - rng.integers(7, 365, int(waits.sum()))
    authorised[waits] = np.minimum(received[waits] + rng.integers(3, 20, int(waits.sum())), d0 - 1)
    provider[waits] = -1
    svc = {k: np.zeros(n, dt) for k, dt in (("svc", np.int8), ("svc_line", np.int8), ("provider", np.int32),
                                             ("hours", np.float32), ("ti_referred", np.int32), ("ti_authorised", np.int32),
                                             ("ti_started", np.int32), ("ti_service_end", np.int32),
                                             ("dur_service", np.int32), ("pattern", np.int8), ("visits_pw", np.int8),
                                             ("priority", np.int8))}
    svc["provider"][:] = -1
    for k, v in (("svc", np.where(waits, WAITING, ACTIVE)), ("svc_line", LINE["hcbs"]), ("provider", provider),
                 ("hours", hours),
                 ("ti_referred", received), ("ti_authorised", authorised), ("ti_started", started),
                 ("ti_service_end", d0 + remaining), ("dur_service", remaining), ("pattern", pattern.astype(np.int8)),
                 ("visits_pw", visits), ("priority", tier[eligible])):
        svc[k][eligible] = v
    m.update(svc)
    committed = np.bincount(provider[~waits], weights=hours[~waits], minlength=P)
    # budgeted staff of each HCBS agency: its caseload times the region's staffing ratio
    hcbs = np.flatnonzero(line == LINE["hcbs"])
    ratio = np.array(cp.staffing_ratio_by_rurality)[rural[pr.region[hcbs]]]
    pr.budget_fte[hcbs] = np.maximum(1.0, np.round(committed[hcbs] * ratio / p.hours_per_fte_week))
    pr.headcount[hcbs] = np.round(pr.budget_fte[hcbs] * stream(seed, "staffing").uniform(0.9, 1.0, len(hcbs))).astype(np.int32)
    pr["committed"] = committed
    staffed = np.isin(line, COMMUNITY_LINES)
    pr.capacity[staffed] = pr.headcount[staffed] * p.hours_per_fte_week
    world = World(start=cp.start, region_ids=tuple(f"R{r + 1:02d}" for r in range(R)), rurality=rural,
                  travel=travel.astype(np.float32), members=m, providers=pr,
                  provider_ids=tuple(f"P{k + 1:05d}" for k in range(P)))
    return Population(world, birth_year, lang, chronic, start, opened, population, lat.round(4), lon.round(4), reference)



"""The synthetic county: a population, its providers and a daily history of what happens to them.

The history comes from small mechanisms over struct-of-arrays state, one function per
mechanism (demand, authorisation, matching, workforce, delivery, utilisation, hospital
and discharge, crisis, housing, quality and provider stability, death and enrolment),
so that the simulation engine can take them over unchanged. Days are indexed from the
window's first day (day 0); the burn-in runs on negative days and is not written out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from caretwin.model.schema import (
    DISCHARGE_DISPOSITIONS,
    ENCOUNTER_CLASSES,
    HOUSING_STATUS,
    RACE_ETHNICITY,
    SERVICE_LINES,
)
from caretwin.rng import stream
from caretwin.synth.params import CountyParams
from caretwin.synth.state import Log, Records

NEVER = np.iinfo(np.int32).max
LANGUAGES = ("en", "es", "zh", "vi", "ko", "tl", "ar", "ru")
LINE = {name: i for i, name in enumerate(SERVICE_LINES)}
ENC = {name: i for i, name in enumerate(ENCOUNTER_CLASSES)}
DISP = {name: i for i, name in enumerate(DISCHARGE_DISPOSITIONS)}
STABLE, AT_RISK, HOMELESS = (HOUSING_STATUS.index(s) for s in ("stable", "at_risk", "homeless"))
# episode (referral) states
PENDING, AUTHORISED, STARTED, CLOSED, WITHDRAWN = range(5)
COMMUNITY_LINES = (LINE["hcbs"], LINE["home_health"])
DX = {
    "emergency": ("R07.9", "R10.9", "J06.9", "S09.90XA", "N39.0", "R51.9", "M54.50"),
    "inpatient": ("I50.9", "J44.1", "J18.9", "A41.9", "N39.0", "E11.65", "I63.9", "S72.001A"),
    "psych": ("F20.9", "F31.9", "F32.9", "F10.129", "R45.851"),
}
DX_CODES = tuple(code for codes in DX.values() for code in codes)  # stays store an index into this


def _per_day(annual: np.ndarray | float) -> np.ndarray | float:
    return 1.0 - np.exp(-np.asarray(annual) / 365.0)


def _age_band(birth_year: np.ndarray, year: int) -> np.ndarray:
    age = year - birth_year
    return np.digitize(age, [18, 65, 80]).astype(np.int8)


@dataclass
class County:
    """Everything the history produces: state arrays and event logs."""

    params: CountyParams
    regions: dict[str, np.ndarray] = field(default_factory=dict)
    travel: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    members: dict[str, np.ndarray] = field(default_factory=dict)
    providers: dict[str, np.ndarray] = field(default_factory=dict)
    episodes: Records | None = None
    stays: Records | None = None
    logs: dict[str, Log] = field(default_factory=dict)
    reference_population: dict[str, dict[str, float]] = field(default_factory=dict)


class _History:
    """Runs the daily mechanisms over the county's state."""

    def __init__(self, p: CountyParams):
        self.p = p
        self.seed = p.seed
        self.c = County(p)
        self.year = p.start.year
        self._build_regions()
        self._build_members()
        self._build_providers()
        self._init_logs()

    # ------------------------------------------------------------------ world
    def _build_regions(self) -> None:
        p, rng = self.p, stream(self.seed, "regions")
        R = p.regions
        shares = np.array(p.rurality_shares)
        counts = np.floor(shares * R).astype(int)
        counts[0] = max(counts[0], 1)
        while counts.sum() < R:
            counts[np.argmax(shares * R - counts)] += 1
        while counts.sum() > R:
            counts[np.argmax(counts)] -= 1
        rural = np.repeat(np.arange(4), counts).astype(np.int8)
        weight = np.array(p.rurality_population_weight)[rural] * rng.lognormal(0, 0.25, R)
        radius = np.array([0.15, 0.5, 1.0, 1.6])[rural] * rng.uniform(0.7, 1.3, R)
        angle = rng.uniform(0, 2 * np.pi, R)
        lat = 40.0 + radius * np.sin(angle)
        lon = -89.0 + radius * np.cos(angle) * 1.3
        members_share = weight / weight.sum()
        population = np.round(members_share * p.members / p.enrolled_share_of_population).astype(np.int64)
        km = np.hypot((lat[:, None] - lat[None, :]) * 111.0, (lon[:, None] - lon[None, :]) * 85.0)
        speed = np.where((rural[:, None] >= 2) | (rural[None, :] >= 2), 75.0, 45.0)
        self.c.travel = np.where(km > 0, 10.0 + 60.0 * km / speed, 0.0).round(1)
        self.c.regions = {"rurality": rural, "weight": members_share, "population": population, "lat": lat.round(4), "lon": lon.round(4)}
        # reference population by race/ethnicity (the census the enrolled members are compared with)
        pop_shares = np.array(p.race_population_shares, dtype=float)
        rural_tilt = np.where(np.arange(len(pop_shares)) == RACE_ETHNICITY.index("nh_aian"), 2.0, 1.0)
        ref = {}
        for r in range(R):
            s = pop_shares * (rural_tilt if rural[r] >= 2 else 1.0)
            s = s / s.sum()
            ref[f"R{r + 1:02d}"] = {g: round(float(v), 5) for g, v in zip(RACE_ETHNICITY, s) if v > 0}
        self.c.reference_population = ref

    def _build_members(self) -> None:
        p, rng, n = self.p, stream(self.seed, "members"), self.p.members
        reg = self.c.regions
        region = rng.choice(len(reg["weight"]), size=n, p=reg["weight"]).astype(np.int16)
        band = rng.choice(4, size=n, p=np.array(p.age_band_shares) / sum(p.age_band_shares))
        lo, hi = np.array([0, 18, 65, 80])[band], np.array([18, 65, 80, 96])[band]
        age = rng.integers(lo, hi)
        birth_year = (self.year - age).astype(np.int16)
        sex = np.where(rng.random(n) < p.female_share, 0, 1).astype(np.int8)
        # race/ethnicity: population shares (rural tilt) times representation among enrolees
        race = np.empty(n, dtype=np.int8)
        repr_ = np.array(p.race_representation)
        for r in range(len(reg["weight"])):
            idx = np.flatnonzero(region == r)
            ref = self.c.reference_population[f"R{r + 1:02d}"]
            w = np.array([ref.get(g, 0.0) for g in RACE_ETHNICITY]) * repr_
            race[idx] = rng.choice(len(RACE_ETHNICITY), size=len(idx), p=w / w.sum())
        race[rng.random(n) < p.unknown_race_share] = RACE_ETHNICITY.index("unknown")
        lang = np.zeros(n, dtype=np.int8)
        hisp = race == RACE_ETHNICITY.index("hispanic")
        lang[hisp & (rng.random(n) < 0.45)] = 1
        asian = race == RACE_ETHNICITY.index("nh_asian")
        pick = asian & (rng.random(n) < 0.4)
        lang[pick] = rng.integers(2, 6, size=int(pick.sum()))
        other = ~hisp & ~asian & (rng.random(n) < 0.02)
        lang[other] = rng.integers(6, 8, size=int(other.sum()))
        adult = age >= 18
        smi = adult & (rng.random(n) < p.smi_share * 1.4)
        sud = adult & (rng.random(n) < p.sud_share * 1.4)
        chronic = rng.poisson(0.3 + np.clip(age, 0, 95) / 22.0 + 0.8 * smi).astype(np.int8)
        score = chronic + 2 * smi + sud + rng.normal(0, 1.0, n)
        tier = (1 + np.digitize(score, [2.0, 4.5, 7.0])).astype(np.int8)
        u = rng.random(n)
        rural_rel = np.where(reg["rurality"][region] == 0, 1.5, 0.8)
        housing = np.full(n, STABLE, dtype=np.int8)
        housing[u < p.at_risk_share + p.homeless_share * rural_rel] = AT_RISK
        housing[u < p.homeless_share * rural_rel * (1 + smi + sud)] = HOMELESS
        caregiver = rng.random(n) < p.caregiver_share
        joiner = rng.random(n) < p.joiner_share
        start = np.where(joiner, rng.integers(0, p.days, n), -p.burn_in_days - rng.integers(0, 5 * 365, n))
        # nobody enrols before birth
        birth_day = (np.array([np.datetime64(f"{y}-01-01") for y in range(1900, self.year + 2)])
                     - np.datetime64(p.start)).astype(np.int64)
        start = np.maximum(start, birth_day[birth_year - 1900] + 1).astype(np.int32)
        self.c.members = {
            "region": region, "birth_year": birth_year, "sex": sex, "race": race, "language": lang,
            "tier": tier, "chronic": chronic, "smi": smi, "sud": sud, "housing": housing,
            "caregiver": caregiver, "enroll_start": start, "enroll_end": np.full(n, NEVER, np.int32),
            "death": np.full(n, NEVER, np.int32), "unmet": np.zeros(n, np.float32),
            "in_facility": np.zeros(n, bool), "readmit_until": np.full(n, -1, np.int32),
            "readmit_hazard": np.zeros(n, np.float32), "episode": np.full(n, -1, np.int32),
            "supported_housing": np.zeros(n, bool), "age_band": _age_band(birth_year, self.year),
        }

    def _build_providers(self) -> None:
        """Providers per region and line, sized from the region's expected demand."""
        p, m, rng = self.p, self.c.members, stream(self.seed, "providers")
        R = p.regions
        rural = self.c.regions["rurality"]
        in_region = np.bincount(m["region"], minlength=R)
        rows: dict[str, list] = {k: [] for k in ("line", "region", "capacity", "budget_fte")}

        def add(line: str, r: int, capacity: float, budget: float = 0.0) -> None:
            rows["line"].append(LINE[line]); rows["region"].append(r)
            rows["capacity"].append(capacity); rows["budget_fte"].append(budget)

        # steady-state HCBS prevalence: referral rate x service duration, where the duration is
        # cut short by the end of service, death and disenrolment
        ref_rate = self._hcbs_referral_rate()
        exit_rate = 365.0 / p.dur_hcbs_service_days + self._death_rate() + p.rate_disenroll / 4
        self._hcbs_prevalence = ref_rate / (ref_rate + exit_rate)
        ip_daily = self._admission_rate() / 365.0
        p_snf = np.where(m["age_band"] >= 2, p.p_discharge_snf_65plus, p.p_discharge_snf)
        snf_census = np.bincount(m["region"], weights=ip_daily * p_snf * p.dur_snf_days * (1 + 3 * p.p_snf_long_stay), minlength=R)
        crisis_daily = np.where(m["smi"] | m["sud"], p.rate_crisis_bh, p.rate_crisis_other) / 365.0
        csu_census = np.bincount(m["region"], weights=crisis_daily * p.p_crisis_needs_bed * p.dur_csu_days, minlength=R)
        hh_census = np.bincount(m["region"], weights=ip_daily * 1.5 * p.p_discharge_home_health * p.dur_home_health_days, minlength=R)
        homeless = np.bincount(m["region"], weights=m["housing"] == HOMELESS, minlength=R)
        hours = np.array(p.hcbs_hours_by_tier)[m["tier"] - 1]
        demand_hours = np.bincount(m["region"], weights=self._hcbs_prevalence * hours, minlength=R)
        for r in range(R):
            ratio = p.staffing_ratio_by_rurality[rural[r]]
            n_hcbs = max(1, int(round(demand_hours[r] / p.hours_per_fte_week / 25)))
            for share in rng.dirichlet(np.full(n_hcbs, 4.0)):
                add("hcbs", r, 0.0, share)  # budget set from the seeded caseload in _size_staffing
            hh_fte = hh_census[r] * 3.0 / p.hours_per_fte_week * ratio
            for share in rng.dirichlet(np.full(max(1, int(round(hh_fte / 15))), 4.0)):
                add("home_health", r, 0.0, max(1.0, round(hh_fte * share)))
            add("hospital", r, float(max(10, round(self.c.regions["population"][r] * 2.4 / 1000))))
            add("snf", r, float(max(1, np.ceil(snf_census[r] * p.snf_bed_ratio_by_rurality[rural[r]]))))
            if rural[r] <= 1:
                add("crisis_stabilization", r, float(max(2, np.ceil(csu_census[r] * p.csu_bed_ratio * 2.0))))
            add("mobile_crisis", r, float(1 + in_region[r] // 50_000))
            add("behavioral_health", r, float(max(20, round(in_region[r] * 0.05))))
            add("care_coordination", r, float(max(1, int(np.ceil(in_region[r] / p.members_per_coordinator)))))
            add("supportive_housing", r, float(max(1, round(homeless[r] * p.supportive_housing_share_of_homeless))))
        line = np.array(rows["line"], np.int8)
        budget = np.array(rows["budget_fte"])
        headcount = np.round(budget * rng.uniform(0.85, 0.97, len(budget))).astype(np.int32)
        is_staffed = np.isin(line, COMMUNITY_LINES)
        capacity = np.where(is_staffed, headcount * p.hours_per_fte_week, np.array(rows["capacity"]))
        P = len(line)
        self.c.providers = {
            "line": line, "region": np.array(rows["region"], np.int16), "capacity": capacity,
            "budget_fte": budget, "headcount": headcount, "is_staffed": is_staffed,
            "open": np.ones(P, bool), "closed_day": np.full(P, NEVER, np.int32),
            "opened_day": -p.burn_in_days - rng.integers(365, 20 * 365, P).astype(np.int32),
            "committed": np.zeros(P), "missed_share": np.zeros(P), "overtime_share": np.zeros(P),
            "training": rng.uniform(0.8, 0.97, P), "strain_weeks": np.zeros(P, np.int32),
            "hires_4w": np.zeros(P), "seps_4w": np.zeros(P), "used": np.zeros(P, np.int32),
            "week_missed": np.zeros(P), "week_scheduled": np.zeros(P),
        }

    def _init_logs(self) -> None:
        i4, i2, i1, f4 = np.int32, np.int16, np.int8, np.float32
        self.c.episodes = Records(
            capacity=max(1024, self.p.members // 5), member=i4, line=i1, region=i2, received=i4,
            authorised=i4, started=i4, ended=i4, status=i1, hours=f4, visits_pw=i1, pattern=i1,
            provider=i4, planned_end=i4, priority=i1,
        )
        self.c.stays = Records(
            capacity=4096, member=i4, cls=i1, facility=i4, admit=i4, ready=i4, discharge=i4,
            disposition=i1, need=i1, dx=i2,
        )
        self.c.logs = {
            "visits": Log(episode=i4, day=i4, status=i1, hours=f4),
            "workforce": Log(provider=i4, day=i4, headcount=i4, vacancies=i4, hires=i4, separations=i4, overtime=f4, training=f4),
            "incidents": Log(provider=i4, member=i4, day=i4, kind=i1, severity=i1),
            "complaints": Log(provider=i4, member=i4, day=i4, kind=i1, severity=i1),
            "housing": Log(member=i4, day=i4, status=i1),
        }

    # ------------------------------------------------------------------ rates
    def _hcbs_referral_rate(self) -> np.ndarray:
        p, m = self.p, self.c.members
        rate = np.array(p.rate_hcbs_referral_tier)[m["tier"] - 1]
        rate = rate * np.where(m["age_band"] >= 2, p.rel_hcbs_referral_65plus, 1.0)
        rate = rate * np.where(m["caregiver"], 1.0, p.rel_hcbs_referral_no_caregiver)
        return np.where(m["age_band"] >= 1, rate, rate * 0.2)

    def _death_rate(self) -> np.ndarray:
        p, m = self.p, self.c.members
        return np.array(p.rate_death_by_age)[m["age_band"]] * np.array(p.rel_death_by_tier)[m["tier"] - 1]

    def _admission_rate(self) -> np.ndarray:
        p, m = self.p, self.c.members
        rate = p.rate_admission * np.array(p.rel_admission_by_tier)[m["tier"] - 1]
        rate = rate * np.where(m["age_band"] >= 2, 1.8, 1.0) * np.where(m["smi"], 1.3, 1.0) * np.where(m["sud"], 1.2, 1.0)
        return rate * np.array(p.rel_by_housing)[m["housing"]] * (1 + p.rel_admission_per_unmet_need * m["unmet"])

    def hazards(self, day: int) -> None:
        """Daily probabilities of each member-level event, refreshed weekly."""
        p, m = self.p, self.c.members
        housing = np.array(p.rel_by_housing)[m["housing"]]
        ed = p.rate_ed * np.array(p.rel_ed_by_tier)[m["tier"] - 1] * housing
        ed = ed * np.where(m["smi"], 1.6, 1.0) * np.where(m["sud"], 1.5, 1.0) * (1 + p.rel_ed_per_unmet_need * m["unmet"])
        crisis = np.where(m["smi"] | m["sud"], p.rate_crisis_bh, p.rate_crisis_other) * housing * (1 + m["unmet"])
        death = self._death_rate()
        disenroll = np.where(m["episode"] >= 0, p.rate_disenroll / 4, p.rate_disenroll)
        referral = np.where(m["episode"] >= 0, 0.0, self._hcbs_referral_rate())
        rates = np.stack([ed, self._admission_rate(), crisis, death, disenroll, referral], axis=1)
        self.cum_hazard = np.cumsum(_per_day(rates), axis=1).astype(np.float32)
        self.active = (m["enroll_start"] <= day) & (m["enroll_end"] > day) & (m["death"] > day)

    # ------------------------------------------------------------------ run
    def run(self) -> County:
        p = self.p
        self._seed_services()
        self._size_staffing()
        weekday0 = p.start.weekday()
        for day in range(-p.burn_in_days, p.days):
            if (weekday0 + day) % 7 == 0 or day == -p.burn_in_days:
                self.weekly(day)
            self.daily(day, (weekday0 + day) % 7)
        return self.c

    def _seed_services(self) -> None:
        """Members already in HCBS when the burn-in starts, so the history starts from a running system."""
        p, m, rng = self.p, self.c.members, stream(self.seed, "seed-services")
        d0 = -p.burn_in_days
        eligible = (m["enroll_start"] <= d0) & (rng.random(p.members) < self._hcbs_prevalence)
        idx = np.flatnonzero(eligible)
        eps = self._new_episodes(idx, LINE["hcbs"], d0 - rng.integers(30, 3 * 365, len(idx)).astype(np.int32), rng)
        e = self.c.episodes
        e.authorised[eps] = e.received[eps] + rng.integers(3, 20, len(eps))
        pr = self.c.providers
        for r in range(p.regions):
            mine = eps[e.region[eps] == r]
            cands = np.flatnonzero((pr["line"] == LINE["hcbs"]) & (pr["region"] == r))
            if len(mine) == 0 or len(cands) == 0:
                continue
            w = pr["budget_fte"][cands] / pr["budget_fte"][cands].sum()  # market shares until staffing is sized
            chosen = cands[rng.choice(len(cands), size=len(mine), p=w)]
            self._start(mine, chosen, e.authorised[mine] + rng.integers(5, 60, len(mine)).astype(np.int32))

    def _size_staffing(self) -> None:
        """Budgeted staff of each HCBS agency: its seeded caseload times the region's staffing ratio."""
        p, pr, rng = self.p, self.c.providers, stream(self.seed, "staffing")
        hcbs = np.flatnonzero(pr["line"] == LINE["hcbs"])
        ratio = np.array(p.staffing_ratio_by_rurality)[self.c.regions["rurality"][pr["region"][hcbs]]]
        budget = np.maximum(1.0, np.round(pr["committed"][hcbs] * ratio / p.hours_per_fte_week))
        pr["budget_fte"][hcbs] = budget
        pr["headcount"][hcbs] = np.round(budget * rng.uniform(0.9, 1.0, len(hcbs))).astype(np.int32)
        pr["capacity"][hcbs] = pr["headcount"][hcbs] * p.hours_per_fte_week

    def _new_episodes(self, members: np.ndarray, line: int, received: np.ndarray | int, rng: np.random.Generator,
                      status: int = PENDING) -> np.ndarray:
        p, m = self.p, self.c.members
        if line == LINE["hcbs"]:
            hours = np.array(p.hcbs_hours_by_tier, np.float32)[m["tier"][members] - 1]
            hours = np.round(hours * rng.uniform(0.75, 1.25, len(members)) * 2) / 2
            dur = rng.exponential(p.dur_hcbs_service_days, len(members))
        else:
            hours = np.full(len(members), 3.0, np.float32)
            dur = 14 + rng.exponential(p.dur_home_health_days - 14, len(members))
        visits = np.clip(np.ceil(hours / 4), 1, 7).astype(np.int8)
        offset = rng.integers(0, 7, len(members))
        pattern = np.zeros(len(members), np.int16)
        for k in range(7):  # spread k visits evenly over the week from a random weekday
            on = k < visits
            pattern |= np.where(on, 1 << ((offset + (k * 7) // np.maximum(visits, 1)) % 7), 0).astype(np.int16)
        idx = self.c.episodes.add(
            member=members, line=np.full(len(members), line, np.int8), region=m["region"][members],
            received=np.broadcast_to(received, len(members)).astype(np.int32), authorised=np.full(len(members), NEVER, np.int32),
            started=np.full(len(members), NEVER, np.int32), ended=np.full(len(members), NEVER, np.int32),
            status=np.full(len(members), status, np.int8), hours=hours, visits_pw=visits, pattern=pattern.astype(np.int8),
            provider=np.full(len(members), -1, np.int32), planned_end=dur.astype(np.int32), priority=m["tier"][members],
        )
        m["episode"][members] = idx
        return idx

    def _start(self, eps: np.ndarray, providers: np.ndarray, day: np.ndarray | int) -> None:
        e, pr = self.c.episodes, self.c.providers
        e.provider[eps] = providers
        e.started[eps] = day
        e.status[eps] = STARTED
        e.planned_end[eps] = e.started[eps] + e.planned_end[eps]
        np.add.at(pr["committed"], providers, e.hours[eps])

    def _end(self, eps: np.ndarray, day: int, status: int = CLOSED) -> None:
        if len(eps) == 0:
            return
        e, pr, m = self.c.episodes, self.c.providers, self.c.members
        started = e.status[eps] == STARTED
        np.add.at(pr["committed"], e.provider[eps[started]], -e.hours[eps[started]])
        e.status[eps] = np.where(started, CLOSED, status)
        e.ended[eps] = day
        m["episode"][e.member[eps]] = -1

    # ------------------------------------------------------------------ weekly mechanisms
    def weekly(self, day: int) -> None:
        self.unmet_need(day)
        self.workforce(day)
        self.quality(day)
        self.housing(day)
        self.hazards(day)

    def unmet_need(self, day: int) -> None:
        """Rolling unmet-need index: share of needed hours not delivered (waiting counts as all unmet)."""
        m, e, pr = self.c.members, self.c.episodes, self.c.providers
        frac = np.zeros(self.p.members, np.float32)
        open_eps = np.flatnonzero(e.status < CLOSED)
        waiting = open_eps[e.status[open_eps] < STARTED]
        frac[e.member[waiting]] = 1.0
        serving = open_eps[e.status[open_eps] == STARTED]
        frac[e.member[serving]] = pr["missed_share"][e.provider[serving]]
        m["unmet"] = (0.7 * m["unmet"] + 0.3 * frac).astype(np.float32)

    def workforce(self, day: int) -> None:
        """Hires, separations (raised by overtime), overtime and the share of hours missed."""
        p, pr = self.p, self.c.providers
        rng = stream(self.seed, "workforce", day)
        staffed = np.flatnonzero(pr["is_staffed"] & pr["open"])
        hc = pr["headcount"][staffed].astype(float)
        hours = hc * p.hours_per_fte_week
        demand = pr["committed"][staffed]
        overtime = np.clip(demand - hours, 0, p.max_overtime_share * hours)
        missed = np.clip(demand - hours - overtime, 0, None)
        ot_share = np.divide(overtime, hours, out=np.zeros_like(hours), where=hours > 0)
        p_sep = 1 - np.exp(-p.rate_separation / 52 * (1 + p.rel_separation_per_overtime * ot_share))
        seps = rng.binomial(pr["headcount"][staffed], p_sep)
        vac = np.maximum(np.round(pr["budget_fte"][staffed]).astype(np.int64) - pr["headcount"][staffed], 0)
        p_hire = np.array(p.p_hire_week_by_rurality)[self.c.regions["rurality"][pr["region"][staffed]]]
        hires = rng.binomial(vac, p_hire)
        pr["headcount"][staffed] += hires - seps
        pr["capacity"][staffed] = pr["headcount"][staffed] * p.hours_per_fte_week
        pr["missed_share"][staffed] = np.divide(missed, demand, out=np.zeros_like(demand), where=demand > 0)
        pr["overtime_share"][staffed] = ot_share
        pr["hires_4w"][staffed] = 0.75 * pr["hires_4w"][staffed] + hires
        pr["seps_4w"][staffed] = 0.75 * pr["seps_4w"][staffed] + seps
        new_share = np.divide(pr["hires_4w"][staffed], np.maximum(pr["headcount"][staffed], 1))
        pr["training"][staffed] = np.clip(0.97 - 0.8 * new_share, 0.3, 0.99)
        self.c.logs["workforce"].add(
            provider=staffed, day=np.full(len(staffed), day), headcount=pr["headcount"][staffed],
            vacancies=np.maximum(np.round(pr["budget_fte"][staffed]) - pr["headcount"][staffed], 0), hires=hires,
            separations=seps, overtime=overtime.round(1), training=pr["training"][staffed].round(3),
        )

    def quality(self, day: int) -> None:
        """Incidents and complaints driven by turnover, overtime and missed visits; provider exits under strain."""
        p, pr, e = self.p, self.c.providers, self.c.episodes
        rng = stream(self.seed, "quality", day)
        staffed = np.flatnonzero(pr["is_staffed"] & pr["open"])
        hc = np.maximum(pr["headcount"][staffed], 0)
        turnover = np.divide(pr["seps_4w"][staffed], np.maximum(hc, 1))
        lam = p.rate_incident_per_staff_week * hc * (1 + 3 * turnover) * (1 + 2 * pr["overtime_share"][staffed])
        lam = lam * (1.6 - pr["training"][staffed])
        n_inc = rng.poisson(lam)
        n_cmp = rng.poisson(p.rate_complaint_per_missed_visit * pr["week_missed"][staffed] + 0.01 * hc / 10)
        serving = np.flatnonzero(e.status == STARTED)
        for log, counts, kinds, kp in (
            ("incidents", n_inc, 6, (0.3, 0.2, 0.05, 0.2, 0.15, 0.1)),
            ("complaints", n_cmp, 6, (0.3, 0.3, 0.15, 0.1, 0.1, 0.05)),
        ):
            prov = np.repeat(staffed, counts)
            if len(prov) == 0:
                continue
            member = np.full(len(prov), -1, np.int32)
            by_provider = e.provider[serving]
            order = np.argsort(by_provider, kind="stable")
            lo = np.searchsorted(by_provider[order], prov, "left")
            hi = np.searchsorted(by_provider[order], prov, "right")
            has = hi > lo
            pick = lo + (rng.random(len(prov)) * np.maximum(hi - lo, 1)).astype(np.int64)
            member[has] = e.member[serving[order[np.minimum(pick[has], len(order) - 1)]]]
            self.c.logs[log].add(
                provider=prov, member=member, day=day + rng.integers(0, 7, len(prov)),
                kind=rng.choice(kinds, len(prov), p=kp), severity=rng.choice(4, len(prov), p=(0.5, 0.3, 0.15, 0.05)),
            )
        pr["week_missed"][:] = 0
        pr["week_scheduled"][:] = 0
        # provider stability: sustained understaffing can end in exit, and its members go back to waiting
        strained = hc < p.strain_headcount_share * pr["budget_fte"][staffed]
        pr["strain_weeks"][staffed] = np.where(strained, pr["strain_weeks"][staffed] + 1, 0)
        at_risk = staffed[pr["strain_weeks"][staffed] >= p.strain_weeks_before_exit_risk]
        exits = at_risk[rng.random(len(at_risk)) < p.p_exit_week_when_strained]
        if len(exits) and day >= 0:
            pr["open"][exits] = False
            pr["closed_day"][exits] = day
            displaced = serving[np.isin(e.provider[serving], exits)]
            members = e.member[displaced]
            line = e.line[displaced]
            self._end(displaced, day)
            for ln in np.unique(line):
                sel = members[line == ln]
                new = self._new_episodes(sel, int(ln), day, rng, status=AUTHORISED)
                self.c.episodes.authorised[new] = day
                self.c.episodes.priority[new] = 5  # displaced members go first

    def housing(self, day: int) -> None:
        p, m, pr = self.p, self.c.members, self.c.providers
        rng = stream(self.seed, "housing", day)
        u = rng.random(p.members, dtype=np.float32)
        h = m["housing"]
        new = h.copy()
        alive = (m["enroll_start"] <= day) & (m["enroll_end"] > day) & (m["death"] > day)
        new[(h == STABLE) & (u < p.p_week_stable_to_at_risk * (1 + 2 * m["unmet"]))] = AT_RISK
        new[(h == AT_RISK) & (u < p.p_week_at_risk_to_homeless)] = HOMELESS
        new[(h == AT_RISK) & (u > 1 - p.p_week_at_risk_to_stable)] = STABLE
        new[(h == HOMELESS) & (u < p.p_week_homeless_to_at_risk)] = AT_RISK
        # supportive housing: free units go to homeless members of the region, highest acuity first
        units = np.flatnonzero((pr["line"] == LINE["supportive_housing"]) & pr["open"])
        for k in units:
            free = int(pr["capacity"][k]) - pr["used"][k]
            if free <= 0:
                continue
            cand = np.flatnonzero((new == HOMELESS) & alive & ~m["supported_housing"] & (m["region"] == pr["region"][k]))
            if len(cand) == 0:
                continue
            take = cand[np.argsort(-m["tier"][cand], kind="stable")[:free]]
            m["supported_housing"][take] = True
            pr["used"][k] += len(take)
            new[take] = STABLE
        changed = np.flatnonzero((new != h) & alive)
        m["housing"] = new
        self.c.logs["housing"].add(member=changed, day=day + rng.integers(0, 7, len(changed)), status=new[changed])

    # ------------------------------------------------------------------ daily mechanisms
    def daily(self, day: int, weekday: int) -> None:
        self.authorise(day)
        self.match(day)
        self.deliver(day, weekday)
        self.utilisation(day)
        self.discharge(day)
        self.end_services(day)

    def authorise(self, day: int) -> None:
        """Care coordinators work the pending referrals, oldest first, at a fixed daily capacity."""
        e, pr = self.c.episodes, self.c.providers
        pending = np.flatnonzero(e.status == PENDING)
        if len(pending) == 0:
            return
        coord = (pr["line"] == LINE["care_coordination"])
        per_region = np.zeros(self.p.regions)
        np.add.at(per_region, pr["region"][coord], pr["capacity"][coord] * self.p.auths_per_coordinator_day)
        order = pending[np.lexsort((e.received[pending], e.region[pending]))]
        regions = e.region[order]
        rank = np.arange(len(order)) - np.searchsorted(regions, regions, "left")
        done = order[(rank < per_region[regions]) & (e.received[order] < day)]
        e.authorised[done] = day
        e.status[done] = AUTHORISED

    def match(self, day: int) -> None:
        """Waiting members to providers with free staffed hours: own region first, then within the travel limit."""
        e, pr, p = self.c.episodes, self.c.providers, self.p
        waiting = np.flatnonzero(e.status == AUTHORISED)
        if len(waiting) == 0:
            return
        waiting = waiting[~self.c.members["in_facility"][e.member[waiting]]]
        free = np.where(pr["open"] & pr["is_staffed"], pr["capacity"] - pr["committed"], 0.0)
        for near_only in (True, False):
            for line in COMMUNITY_LINES:
                for r in np.unique(e.region[waiting]):
                    w = waiting[(e.region[waiting] == r) & (e.line[waiting] == line) & (e.status[waiting] == AUTHORISED)]
                    if len(w) == 0:
                        continue
                    reach = [r] if near_only else np.flatnonzero(self.c.travel[r] <= p.travel_limit_minutes)
                    cands = np.flatnonzero((pr["line"] == line) & np.isin(pr["region"], reach) & (free > 0))
                    if len(cands) == 0:
                        continue
                    w = w[np.lexsort((e.received[w], -e.priority[w]))]
                    need = np.cumsum(e.hours[w])
                    room = np.cumsum(free[cands])
                    ok = need <= room[-1]
                    if not ok.any():
                        continue
                    chosen = cands[np.minimum(np.searchsorted(room, need[ok] - 1e-9), len(cands) - 1)]
                    self._start(w[ok], chosen, day)
                    np.subtract.at(free, chosen, e.hours[w[ok]])

    def deliver(self, day: int, weekday: int) -> None:
        """Scheduled visits today: missed by the provider when short-staffed, by the member sometimes."""
        e, pr, p = self.c.episodes, self.c.providers, self.p
        serving = np.flatnonzero((e.status == STARTED) & ((e.pattern.astype(np.int16) >> weekday) & 1 == 1))
        if len(serving) == 0:
            return
        rng = stream(self.seed, "visits", day)
        u = rng.random(len(serving), dtype=np.float32)
        prov = e.provider[serving]
        p_prov = pr["missed_share"][prov] + p.p_missed_provider_base
        away = self.c.members["in_facility"][e.member[serving]]
        status = np.where(u < p_prov, 1, np.where((u > 1 - p.p_missed_member_visit) | away, 2, 0)).astype(np.int8)
        hours = (e.hours[serving] / e.visits_pw[serving]).astype(np.float32)
        np.add.at(pr["week_missed"], prov, status == 1)
        if day >= 0:
            self.c.logs["visits"].add(episode=serving, day=np.full(len(serving), day, np.int32), status=status, hours=hours)

    def utilisation(self, day: int) -> None:
        """One uniform draw per member and day picks at most one event from the member's daily hazards."""
        p, m = self.p, self.c.members
        rng = stream(self.seed, "utilisation", day)
        u = rng.random(p.members, dtype=np.float32)
        cum = self.cum_hazard
        cand = np.flatnonzero(u < cum[:, -1])
        cand = cand[self.active[cand] & ~m["in_facility"][cand] & (m["death"][cand] > day) & (m["enroll_end"][cand] > day)]
        event = (u[cand, None] >= cum[cand]).sum(axis=1)
        # readmission window: extra admission hazard after a discharge
        recent = np.flatnonzero(m["readmit_until"] >= day)
        recent = recent[~m["in_facility"][recent] & (m["death"][recent] > day)]
        readmit = recent[rng.random(len(recent)) < m["readmit_hazard"][recent]]
        ed, adm, crisis, death, disenroll, referral = (cand[event == k] for k in range(6))
        adm = np.union1d(adm, np.setdiff1d(readmit, cand))
        self.emergency(day, ed, rng)
        self.admit(day, adm, rng)
        self.crisis(day, crisis, rng)
        self._leave(day, death, died=True)
        self._leave(day, disenroll, died=False)
        referral = referral[m["episode"][referral] < 0]
        if len(referral):
            self._new_episodes(referral, LINE["hcbs"], day, rng)

    def _hospital(self, members: np.ndarray) -> np.ndarray:
        pr = self.c.providers
        hosp = np.full(self.p.regions, -1, np.int32)
        idx = np.flatnonzero(pr["line"] == LINE["hospital"])
        hosp[pr["region"][idx]] = idx
        return hosp[self.c.members["region"][members]]

    def _dx(self, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
        offset = DX_CODES.index(DX[kind][0])
        return (offset + rng.integers(0, len(DX[kind]), n)).astype(np.int16)

    def emergency(self, day: int, members: np.ndarray, rng: np.random.Generator) -> None:
        if len(members) == 0:
            return
        admitted = rng.random(len(members)) < self.p.p_ed_admitted
        n = len(members)
        self.c.stays.add(
            member=members, cls=np.full(n, ENC["emergency"]), facility=self._hospital(members), admit=np.full(n, day),
            ready=np.full(n, day), discharge=np.full(n, day),
            disposition=np.where(admitted, DISP["transfer"], DISP["home"]), need=np.full(n, -1), dx=self._dx("emergency", n, rng),
        )
        self.admit(day, members[admitted], rng)

    def admit(self, day: int, members: np.ndarray, rng: np.random.Generator, psych: bool = False) -> None:
        """Inpatient stays: length of stay by acuity; the post-acute need is known at admission."""
        p, m = self.p, self.c.members
        members = members[~m["in_facility"][members]]
        n = len(members)
        if n == 0:
            return
        los = 1 + rng.geometric(1 / np.array(p.dur_los_by_tier)[m["tier"][members] - 1])
        u = rng.random(n)
        p_snf = np.where(m["age_band"][members] >= 2, p.p_discharge_snf_65plus, p.p_discharge_snf)
        cuts = np.cumsum(np.stack([np.full(n, p.p_inpatient_death), p_snf, np.full(n, p.p_discharge_home_health),
                                   np.where(m["episode"][members] < 0, p.p_discharge_hcbs, 0.0)], 1), axis=1)
        need_code = np.array([DISP["died"], DISP["snf"], DISP["home_health"], DISP["hcbs"], DISP["home"]])
        need = need_code[(u[:, None] >= cuts).sum(1)]
        if psych:
            need = np.where(need == DISP["died"], DISP["home"], DISP["psychiatric"])
        self.c.stays.add(
            member=members, cls=np.full(n, ENC["inpatient"]), facility=self._hospital(members), admit=np.full(n, day),
            ready=(day + los).astype(np.int32), discharge=np.full(n, NEVER), disposition=np.full(n, -1), need=need,
            dx=self._dx("psych" if psych else "inpatient", n, rng),
        )
        m["in_facility"][members] = True

    def crisis(self, day: int, members: np.ndarray, rng: np.random.Generator) -> None:
        """Mobile crisis response; then a stabilisation bed if one is free nearby, else ED boarding."""
        p, m, pr = self.p, self.c.members, self.c.providers
        n = len(members)
        if n == 0:
            return
        team = np.full(p.regions, -1, np.int32)
        idx = np.flatnonzero(pr["line"] == LINE["mobile_crisis"])
        team[pr["region"][idx]] = idx
        needs_bed = rng.random(n) < p.p_crisis_needs_bed
        self.c.stays.add(
            member=members, cls=np.full(n, ENC["crisis"]), facility=team[m["region"][members]], admit=np.full(n, day),
            ready=np.full(n, day), discharge=np.full(n, day),
            disposition=np.where(needs_bed, DISP["transfer"], DISP["home"]), need=np.full(n, -1), dx=self._dx("psych", n, rng),
        )
        csu = np.flatnonzero((pr["line"] == LINE["crisis_stabilization"]) & pr["open"])
        boarded = []
        for who in members[needs_bed]:
            r = m["region"][who]
            near = csu[(self.c.travel[r, pr["region"][csu]] <= p.travel_limit_minutes) & (pr["used"][csu] < pr["capacity"][csu])]
            if len(near):
                bed = near[np.argmin(self.c.travel[r, pr["region"][near]])]
                pr["used"][bed] += 1
                los = 1 + rng.geometric(1 / p.dur_csu_days)
                self.c.stays.add(member=np.array([who]), cls=ENC["crisis"], facility=bed, admit=day, ready=day + los,
                                 discharge=NEVER, disposition=-1, need=DISP["home"], dx=self._dx("psych", 1, rng))
                m["in_facility"][who] = True
            else:
                boarded.append(who)
        if boarded:
            b = np.array(boarded)
            wait = rng.integers(1, 3, len(b))
            psych = rng.random(len(b)) < p.p_boarding_psych_admission
            self.c.stays.add(
                member=b, cls=np.full(len(b), ENC["emergency"]), facility=self._hospital(b), admit=np.full(len(b), day),
                ready=np.full(len(b), day), discharge=(day + wait).astype(np.int32),
                disposition=np.where(psych, DISP["psychiatric"], DISP["home"]), need=np.full(len(b), -1),
                dx=self._dx("psych", len(b), rng),
            )
            self.admit(day, b[psych], rng, psych=True)

    def discharge(self, day: int) -> None:
        """Stays that are ready end, unless the member waits for a SNF bed (delayed discharge)."""
        p, s, m, pr = self.p, self.c.stays, self.c.members, self.c.providers
        ready = np.flatnonzero((s.discharge == NEVER) & (s.ready <= day))
        if len(ready) == 0:
            return
        rng = stream(self.seed, "discharge", day)
        snf_beds = np.flatnonzero((pr["line"] == LINE["snf"]) & pr["open"])
        waiting, placed = [], []
        for k in ready[(s.cls[ready] == ENC["inpatient"]) & (s.need[ready] == DISP["snf"])]:
            r = m["region"][s.member[k]]
            free = snf_beds[(pr["region"][snf_beds] == r) & (pr["used"][snf_beds] < pr["capacity"][snf_beds])]
            if len(free):
                pr["used"][free[0]] += 1
                placed.append((s.member[k], free[0]))
            elif day - s.ready[k] < p.max_delayed_discharge_days:
                waiting.append(k)  # delayed discharge: medically ready, still in hospital
            else:
                s.need[k] = DISP["home_without_support"]
        ready = np.setdiff1d(ready, waiting)
        who, need, cls = s.member[ready], s.need[ready], s.cls[ready]
        bedded = ready[np.isin(cls, (ENC["snf"], ENC["crisis"])) & (s.facility[ready] >= 0)]
        np.subtract.at(pr["used"], s.facility[bedded], 1)
        s.discharge[ready] = day
        s.disposition[ready] = need
        m["in_facility"][who] = False
        self._leave(day, who[need == DISP["died"]], died=True)
        inpatient = (cls == ENC["inpatient"]) & (need != DISP["died"])
        m["readmit_until"][who[inpatient]] = day + p.readmission_window_days
        p30 = np.where(need[inpatient] == DISP["home_without_support"], p.p_readmission_30d_without_support, p.p_readmission_30d)
        m["readmit_hazard"][who[inpatient]] = -np.log1p(-p30) / p.readmission_window_days
        for line, code in ((LINE["home_health"], DISP["home_health"]), (LINE["hcbs"], DISP["hcbs"])):
            refer = np.unique(who[inpatient & (need == code)])
            refer = refer[m["episode"][refer] < 0]
            if len(refer):
                eps = self._new_episodes(refer, line, day, rng, status=AUTHORISED)
                self.c.episodes.authorised[eps] = day
                self.c.episodes.priority[eps] = 4
        if placed:
            who = np.array([w for w, _ in placed])
            beds = np.array([b for _, b in placed])
            los = 1 + rng.geometric(1 / p.dur_snf_days, len(who))
            long = rng.random(len(who)) < p.p_snf_long_stay  # institutionalised: stays to the end
            after = rng.choice([DISP["home"], DISP["home_health"], DISP["died"]], len(who), p=(0.7, 0.2, 0.1))
            self.c.stays.add(member=who, cls=np.full(len(who), ENC["snf"]), facility=beds, admit=np.full(len(who), day),
                             ready=np.where(long, NEVER - 1, day + los).astype(np.int32), discharge=np.full(len(who), NEVER),
                             disposition=np.full(len(who), -1), need=after, dx=self._dx("inpatient", len(who), rng))
            m["in_facility"][who] = True

    def end_services(self, day: int) -> None:
        e = self.c.episodes
        done = np.flatnonzero((e.status == STARTED) & (e.planned_end <= day))
        self._end(done, day)

    def _leave(self, day: int, members: np.ndarray, died: bool) -> None:
        """Death or disenrolment: enrolment ends and open services close."""
        if len(members) == 0:
            return
        m, e = self.c.members, self.c.episodes
        if died:
            m["death"][members] = day
        m["enroll_end"][members] = np.minimum(m["enroll_end"][members], day)
        eps = m["episode"][members]
        eps = eps[eps >= 0]
        self._end(eps[e.status[eps] == STARTED], day)
        self._end(eps[e.status[eps] < STARTED], day, status=WITHDRAWN)


def simulate_county(params: CountyParams) -> County:
    """Build a county and run its history over the window (after a burn-in)."""
    return _History(params).run()

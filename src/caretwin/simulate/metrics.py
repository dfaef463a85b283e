"""Weekly metrics: declared once, accumulated into one dense array per replication.

The array is `[week, region, group, slot]`. A slot is one (metric, service line) pair.
Groups are the whole population (0) and the subgroups of DESIGN section 4: age band,
sex and race/ethnicity; rurality is a property of the region, so it is summed over
regions when summarising. Provider-level metrics (staffing, exits) have group 0 only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caretwin.model.schema import AGE_BANDS, RACE_ETHNICITY, SEX

AGE_EDGES = (18, 45, 65, 75, 85)  # AGE_BANDS boundaries
G_AGE = 1
G_SEX = G_AGE + len(AGE_BANDS)
G_RACE = G_SEX + len(SEX)
N_GROUPS = G_RACE + len(RACE_ETHNICITY)
GROUPS: tuple[tuple[str, str], ...] = (
    (("all", "all"),)
    + tuple(("age_band", b) for b in AGE_BANDS)
    + tuple(("sex", s) for s in SEX)
    + tuple(("race_ethnicity", r) for r in RACE_ETHNICITY)
)

COMMUNITY = ("hcbs", "home_health")
BEDS = ("hospital", "snf", "crisis_stabilization", "supportive_housing", "nursing_facility")
COST_CATEGORIES = ("hcbs", "home_health", "emergency", "inpatient", "snf", "nursing_facility", "crisis", "crisis_stabilization",
                   "supportive_housing", "care_coordination")


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    kind: str  # "flow": summed over the week's days; "stock": value on the week's last day
    lines: tuple[str, ...]  # service lines it is reported for ("all" when not line-specific)
    by_group: bool
    meaning: str


METRICS: tuple[Metric, ...] = (
    # members and enrolment
    Metric("members", "members", "stock", ("all",), True, "members enrolled and alive at week end"),
    Metric("enrolments", "members", "flow", ("all",), True, "members entering the population"),
    Metric("disenrolments", "members", "flow", ("all",), True, "members leaving the programme alive"),
    Metric("deaths", "members", "flow", ("all",), True, "deaths, in the community, in hospital or in a nursing facility"),
    Metric("resident_deaths", "members", "flow", ("all",), True,
           "deaths of permanent nursing-facility residents (included in deaths; they had already left the community)"),
    Metric("institutionalisations", "members", "flow", ("all",), True, "permanent moves to a nursing facility"),
    # community services
    Metric("referrals", "referrals", "flow", COMMUNITY, True, "new referrals received"),
    Metric("auth_backlog", "referrals", "stock", COMMUNITY, True, "referrals waiting for authorisation"),
    Metric("waitlist", "members", "stock", COMMUNITY, True, "authorised members waiting for a provider"),
    Metric("starts", "members", "flow", COMMUNITY, True, "starts of care"),
    Metric("wait_days", "days", "flow", COMMUNITY, True, "days from referral to start, summed over this week's starts"),
    Metric("in_service", "members", "stock", COMMUNITY, True, "members receiving the service"),
    Metric("displaced", "members", "flow", COMMUNITY, True, "members sent back to the waitlist by a provider exit"),
    Metric("authorised_hours", "hours", "flow", COMMUNITY, True, "hours scheduled under authorisations"),
    Metric("delivered_hours", "hours", "flow", COMMUNITY, True, "hours delivered"),
    Metric("scheduled_visits", "visits", "flow", COMMUNITY, True, "visits scheduled"),
    Metric("missed_visits", "visits", "flow", COMMUNITY, True, "visits missed by the provider"),
    Metric("member_missed_visits", "visits", "flow", COMMUNITY, True, "visits missed by the member (away, in hospital)"),
    # workforce and providers
    Metric("staffed_hours", "hours/week", "stock", COMMUNITY, False, "staffed capacity: headcount x contracted hours"),
    Metric("committed_hours", "hours/week", "stock", COMMUNITY, False, "weekly hours promised to members in service"),
    Metric("headcount", "staff", "stock", COMMUNITY, False, "direct-care staff employed"),
    Metric("vacancies", "staff", "stock", COMMUNITY, False, "budgeted posts not filled"),
    Metric("hires", "staff", "flow", COMMUNITY, False, "staff hired"),
    Metric("separations", "staff", "flow", COMMUNITY, False, "staff who left"),
    Metric("overtime_hours", "hours", "flow", COMMUNITY, False, "overtime worked"),
    Metric("incidents", "incidents", "flow", COMMUNITY, False, "critical incidents reported"),
    Metric("complaints", "complaints", "flow", COMMUNITY, False, "complaints received"),
    Metric("provider_risk", "index 0-1", "stock", COMMUNITY, False, "mean provider risk index of open providers"),
    Metric("providers_open", "providers", "stock", COMMUNITY, False, "providers operating"),
    Metric("provider_exits", "providers", "flow", COMMUNITY, False, "providers that closed"),
    # acute care, discharge, crisis
    Metric("ed_visits", "visits", "flow", ("all",), True, "emergency department visits"),
    Metric("admissions", "stays", "flow", ("all",), True, "inpatient admissions"),
    Metric("readmissions", "stays", "flow", ("all",), True, "admissions within the readmission window of a discharge"),
    Metric("discharges_without_support", "members", "flow", ("all",), True,
           "discharged home without the post-acute service they needed"),
    Metric("delayed_discharge_days", "bed-days", "flow", ("all",), True, "hospital days after medical readiness, waiting for a SNF bed"),
    Metric("crisis_episodes", "episodes", "flow", ("all",), True, "mobile crisis responses"),
    Metric("ed_boarding_days", "days", "flow", ("all",), True, "days spent boarding in the ED waiting for a stabilisation bed"),
    Metric("psychiatric_admissions", "stays", "flow", ("all",), True, "crisis boarding that ended in a psychiatric admission"),
    Metric("bed_days", "bed-days", "flow", BEDS, True, "occupied bed-days (mean occupancy = bed_days / 7)"),
    Metric("beds", "beds", "stock", BEDS, False, "beds or units available"),
    Metric("bed_arrivals", "stays", "flow", BEDS, True, "stays that started"),
    # housing
    Metric("homeless", "members", "stock", ("all",), True, "members homeless at week end"),
    Metric("became_homeless", "members", "flow", ("all",), True, "transitions into homelessness"),
    Metric("became_stably_housed", "members", "flow", ("all",), True, "transitions into stable housing"),
    # costs
    Metric("cost", "currency", "flow", COST_CATEGORIES, True, "cost by category: unit cost x quantity"),
    Metric("intervention_cost", "currency", "flow", ("all",), False,
           "what a scenario's interventions cost beyond the services they lead to (staff, beds held, programmes)"),
)


class Slots:
    """Maps (metric, line) to a column of the metrics array."""

    def __init__(self, metrics: tuple[Metric, ...] = METRICS):
        self.metrics = metrics
        self.index: dict[tuple[str, str], int] = {}
        self.rows: list[tuple[Metric, str]] = []
        for m in metrics:
            for line in m.lines:
                self.index[(m.name, line)] = len(self.rows)
                self.rows.append((m, line))

    def __call__(self, name: str, line: str = "all") -> int:
        return self.index[(name, line)]

    def __len__(self) -> int:
        return len(self.rows)

    def is_stock(self) -> np.ndarray:
        return np.array([m.kind == "stock" for m, _ in self.rows])


SLOTS = Slots()


def age_band_index(age: np.ndarray) -> np.ndarray:
    return np.digitize(age, AGE_EDGES).astype(np.int8)

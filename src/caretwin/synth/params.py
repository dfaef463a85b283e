"""Every parameter of the synthetic county, recorded in its manifest as ground truth.

Rates are annual unless named otherwise. Defaults are plausible orders of magnitude for
a US Medicaid population with HCBS, chosen for structure, not calibrated to one state:
HCBS direct-care turnover is commonly reported near 40-60% a year (PHI, "Direct Care
Workers in the United States", 2023); Medicaid adults visit an ED about 0.4-0.5 times a
year (NCHS Data Brief 402); 30-day readmission runs near 15-20% (AHRQ HCUP Statistical
Brief 248).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class CountyParams:
    members: int = 20_000
    regions: int = 8
    months: int = 12
    seed: int = 0
    start: date = date(2024, 1, 1)
    burn_in_days: int = 91

    # region mix and geography
    rurality_shares: tuple[float, float, float, float] = (0.3, 0.3, 0.3, 0.1)  # urban, suburban, rural, frontier
    rurality_population_weight: tuple[float, float, float, float] = (4.0, 2.0, 1.0, 0.3)
    enrolled_share_of_population: float = 0.22

    # demography: population shares by race/ethnicity (RACE_ETHNICITY order) and how
    # well each group is represented among enrolled members relative to its population share
    race_population_shares: tuple[float, ...] = (0.24, 0.44, 0.17, 0.07, 0.02, 0.005, 0.035, 0.01, 0.0)
    race_representation: tuple[float, ...] = (0.8, 1.0, 1.1, 0.45, 0.5, 0.5, 1.0, 1.0, 1.0)
    unknown_race_share: float = 0.03
    age_band_shares: tuple[float, float, float, float] = (0.36, 0.44, 0.13, 0.07)  # 0-17, 18-64, 65-79, 80+
    female_share: float = 0.55
    smi_share: float = 0.045
    sud_share: float = 0.08
    homeless_share: float = 0.02
    at_risk_share: float = 0.06
    caregiver_share: float = 0.6
    joiner_share: float = 0.12  # members whose enrolment starts inside the window
    rate_disenroll: float = 0.08

    # HCBS demand and service
    rate_hcbs_referral_tier: tuple[float, float, float, float] = (0.003, 0.012, 0.05, 0.14)
    rel_hcbs_referral_65plus: float = 2.0
    rel_hcbs_referral_no_caregiver: float = 1.5
    hcbs_hours_by_tier: tuple[float, float, float, float] = (6.0, 10.0, 16.0, 24.0)
    dur_hcbs_service_days: float = 700.0
    dur_home_health_days: float = 45.0
    auths_per_coordinator_day: float = 3.0
    members_per_coordinator: int = 2500
    travel_limit_minutes: float = 60.0

    # workforce
    hours_per_fte_week: float = 35.0
    staffing_ratio_by_rurality: tuple[float, float, float, float] = (1.08, 1.0, 0.85, 0.75)
    rate_separation: float = 0.45
    rel_separation_per_overtime: float = 4.0  # separation hazard x (1 + this x overtime share)
    p_hire_week_by_rurality: tuple[float, float, float, float] = (0.10, 0.08, 0.05, 0.04)
    max_overtime_share: float = 0.2
    p_missed_member_visit: float = 0.03
    p_missed_provider_base: float = 0.01

    # utilisation (annual rates, multiplied by the relative risks below)
    rate_ed: float = 0.45
    rate_admission: float = 0.09
    rate_crisis_bh: float = 0.35  # members with SMI or SUD
    rate_crisis_other: float = 0.01
    rel_ed_by_tier: tuple[float, float, float, float] = (0.7, 1.0, 1.8, 2.8)
    rel_admission_by_tier: tuple[float, float, float, float] = (0.5, 1.0, 2.2, 4.0)
    rel_by_housing: tuple[float, float, float] = (1.0, 1.4, 2.3)  # stable, at risk, homeless
    rel_ed_per_unmet_need: float = 1.5  # ED hazard x (1 + this x unmet-need index)
    rel_admission_per_unmet_need: float = 1.0
    p_ed_admitted: float = 0.15
    p_readmission_30d: float = 0.14
    p_readmission_30d_without_support: float = 0.28
    readmission_window_days: int = 30

    # hospital, discharge, SNF, crisis beds
    dur_los_by_tier: tuple[float, float, float, float] = (3.0, 4.0, 5.0, 6.5)
    p_discharge_snf: float = 0.06
    p_discharge_snf_65plus: float = 0.22
    p_discharge_home_health: float = 0.12
    p_discharge_hcbs: float = 0.04
    p_inpatient_death: float = 0.015
    max_delayed_discharge_days: int = 10
    dur_snf_days: float = 22.0
    p_snf_long_stay: float = 0.1
    snf_bed_ratio_by_rurality: tuple[float, float, float, float] = (1.2, 1.1, 0.85, 0.8)
    p_crisis_needs_bed: float = 0.4
    dur_csu_days: float = 3.0
    csu_bed_ratio: float = 1.1
    p_boarding_psych_admission: float = 0.3

    # housing (weekly transition probabilities)
    p_week_stable_to_at_risk: float = 0.0015
    p_week_at_risk_to_homeless: float = 0.01
    p_week_at_risk_to_stable: float = 0.03
    p_week_homeless_to_at_risk: float = 0.01
    supportive_housing_share_of_homeless: float = 0.4

    # death (annual, by age band 0-17, 18-64, 65-79, 80+), times rel by tier
    rate_death_by_age: tuple[float, float, float, float] = (0.0004, 0.004, 0.03, 0.08)
    rel_death_by_tier: tuple[float, float, float, float] = (0.5, 1.0, 2.0, 3.5)

    # quality and provider stability (weekly)
    rate_incident_per_staff_week: float = 0.004
    rate_complaint_per_missed_visit: float = 0.02
    strain_headcount_share: float = 0.55  # below this share of budget a provider is strained
    strain_weeks_before_exit_risk: int = 6
    p_exit_week_when_strained: float = 0.15

    @property
    def days(self) -> int:
        """Days in the window: `months` calendar months from `start`."""
        y, m = divmod(self.start.month - 1 + self.months, 12)
        return (date(self.start.year + y, m + 1, self.start.day) - self.start).days

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = self.start.isoformat()
        d["days"] = self.days
        return d

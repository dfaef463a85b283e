"""The synthetic county's population and provider-sizing parameters, recorded in its manifest.

The mechanisms that produce its history are the engine's, with the engine's parameters
(`caretwin.simulate`); the manifest records both, as the ground truth calibration is
checked against.
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
    homeless_share: float = 0.004  # with the engine's housing transitions, about 0.5-1% homeless at a time (HUD: 0.23% of everyone)
    at_risk_share: float = 0.06
    caregiver_share: float = 0.6

    # provider sizing (the mechanisms' own parameters live in the engine's modules)
    # budgeted HCBS staff per hour of the agencies' caseload; the waiting list is demand beyond it (agencies report
    # capacity below demand: KFF waiting-list surveys; 77% of providers turning referrals away, ANCOR 2023)
    staffing_ratio_by_rurality: tuple[float, float, float, float] = (1.05, 1.0, 0.92, 0.88)
    hcbs_waitlist_share: float = 0.2
    # post-acute SNF beds per bed of the expected post-acute census (an upper estimate: members leave, die or move
    # to long-stay care, so about four in five beds are filled); rural regions are tighter
    snf_bed_ratio_by_rurality: tuple[float, float, float, float] = (0.75, 0.7, 0.65, 0.6)
    nursing_facility_occupancy: float = 0.88  # long-stay beds sized so the expected residents fill this share
    csu_bed_ratio: float = 1.1
    supportive_housing_share_of_homeless: float = 0.4

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

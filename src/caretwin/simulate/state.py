"""Engine state: the world (static across replications) and struct-of-arrays columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from caretwin.model.schema import SERVICE_LINES

NEVER = np.iinfo(np.int32).max
LINE = {name: i for i, name in enumerate(SERVICE_LINES)}

# member.status
NOT_YET, ENROLLED, DISENROLLED, DIED, INSTITUTIONALISED = range(5)
# member.loc: where the member is today
HOME, HOSPITAL, SNF, CSU, BOARDING, NURSING = range(6)  # NURSING: a nursing-facility resident
# member.svc: the member's community service episode (HCBS or home health)
NONE, PENDING, WAITING, ACTIVE = range(4)
# member.need: post-acute need decided at admission
NEED_HOME, NEED_DIED, NEED_SNF, NEED_HOME_HEALTH, NEED_HCBS, NEED_PSYCH, NEED_SNF_QUEUED = range(7)


class Columns(dict):
    """Named numpy arrays of one length: `cols.region` is `cols["region"]`."""

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.values())


# Columns a World must give for members and providers (the modules add their own).
MEMBER_CORE: dict[str, tuple[type, Any]] = {
    "region": (np.int16, 0), "age": (np.int8, 40), "sex": (np.int8, 3), "race": (np.int8, 8),
    "tier": (np.int8, 2), "smi": (np.bool_, False), "sud": (np.bool_, False), "caregiver": (np.bool_, True),
    "status": (np.int8, ENROLLED), "ti_enrol": (np.int32, 0),
    # read by several modules, so owned by the engine
    "loc": (np.int8, HOME), "housing": (np.int8, 0), "unmet": (np.float32, 0.0),
    "readmit_until": (np.int32, -1), "p_readmit": (np.float32, 0.0),
    "svc": (np.int8, NONE), "svc_line": (np.int8, 0), "provider": (np.int32, -1), "hours": (np.float32, 0.0),
    "ti_referred": (np.int32, 0), "supported": (np.bool_, False),
}
PROVIDER_CORE: dict[str, tuple[type, Any]] = {
    "line": (np.int8, 0), "region": (np.int16, 0), "capacity": (np.float64, 0.0),
    "budget_fte": (np.float64, 0.0), "headcount": (np.int32, 0), "is_open": (np.bool_, True),
    "committed": (np.float64, 0.0), "missed_share": (np.float32, 0.0),
}


@dataclass
class World:
    """What a run starts from: regions, travel times, members and providers as of day 0.

    Built from a workspace (`caretwin.simulate.from_workspace`) or by the synthetic county.
    Member columns beyond MEMBER_CORE (e.g. `svc`, `loc`, `housing`) carry the current
    state of services and stays; columns a World lacks start at the module's default.
    `joiners` are templates for the members who enrol during a run.
    """

    start: date
    region_ids: tuple[str, ...]
    rurality: np.ndarray  # int8 per region: 0 urban .. 3 frontier
    travel: np.ndarray  # float32 [R, R] minutes
    members: Columns
    providers: Columns
    provider_ids: tuple[str, ...] = ()
    unit_costs: dict[str, float] = field(default_factory=dict)
    # what new members are like on joining (region, age, sex, race, tier, ...): the enrolment inflow copies them.
    # None when the world's members already include their future joiners (status NOT_YET, as in the synthetic county)
    joiners: Columns | None = None

    def __post_init__(self) -> None:
        for cols, core in ((self.members, MEMBER_CORE), (self.providers, PROVIDER_CORE)):
            n = len(next(iter(cols.values()))) if cols else 0
            for name, (dt, default) in core.items():
                if name not in cols:
                    cols[name] = np.full(n, default, dt)
                else:
                    cols[name] = np.ascontiguousarray(cols[name], dtype=dt)
        if not self.provider_ids:
            self.provider_ids = tuple(f"P{i:05d}" for i in range(self.n_providers))

    @property
    def n_members(self) -> int:
        return len(self.members["region"])

    @property
    def n_providers(self) -> int:
        return len(self.providers["line"])

    @property
    def n_regions(self) -> int:
        return len(self.region_ids)

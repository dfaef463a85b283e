"""Institutionalisation and death; enrolment and disenrolment; nursing-facility residents.

New members arrive as a Poisson stream in each region, at `rate_enrolment` per member on the books at
the start (an inflow, not a growth rate: the eligible population, not the enrolled one, drives it). A
forecast's world gives templates of what recent joiners were like; each replication reserves a pool of
not-yet-enrolled members copied from them, large enough for twice the expected inflow.

Long-stay nursing-facility care is its own line: a member who moves there permanently (from the
community, or at the end of a post-acute SNF stay) takes one of the region's nursing-facility beds,
stays a Medicaid member who costs a bed-day a day, and leaves it only by dying. When every bed is
taken, the move waits: the member stays at home and is drawn again the next week.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.errors import CaretwinError
from caretwin.rng import poisson, stream, uniform, uniforms
from caretwin.simulate.engine import Module, p_day
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.modules.hospital import joins_census
from caretwin.simulate.modules.services import close_for
from caretwin.simulate.params import Param
from caretwin.simulate.state import (
    DIED,
    DISENROLLED,
    ENROLLED,
    HOME,
    INSTITUTIONALISED,
    LINE,
    NEVER,
    NOT_YET,
    NURSING,
    Columns,
)

POOL_HEADROOM = 2.0  # the pool holds twice the expected joiners: room for an enrolment shock of up to +100%


def _on_books(world) -> np.ndarray:
    """Members on the books at the start (enrolled or in a nursing facility), by region."""
    st = world.members["status"]
    return np.bincount(world.members["region"][(st == ENROLLED) | (st == INSTITUTIONALISED)],
                       minlength=world.n_regions).astype(float)


@nb.njit(parallel=True, cache=True)
def _hazards(out_death, out_exit, status, age, tier, svc, rate_age, rel_tier, rate_exit, rel_exit_served):
    for i in nb.prange(len(status)):
        if status[i] != ENROLLED:
            out_death[i] = 0.0
            out_exit[i] = 0.0
            continue
        a = 0 if age[i] < 18 else (1 if age[i] < 65 else (2 if age[i] < 80 else 3))
        out_death[i] = p_day(rate_age[a] * rel_tier[tier[i] - 1])
        r = rate_exit * (rel_exit_served if svc[i] != 0 else 1.0)
        out_exit[i] = p_day(r)


@nb.njit(cache=True)
def _institutionalise(key, day, status, tier, age, unmet, rate, rel_unmet, min_tier):
    hits = []
    for i in range(len(status)):
        if status[i] != ENROLLED or tier[i] < min_tier or age[i] < 18:
            continue
        p = 1.0 - np.exp(-rate / 52.0 * (1.0 + rel_unmet * unmet[i]))
        if uniform(key, day, i) < p:
            hits.append(i)
    out = np.empty(len(hits), np.int64)
    for j in range(len(hits)):
        out[j] = hits[j]
    return out


class Mortality(Module):
    name = "mortality"
    hazards = ("death", "disenrolment")
    params = (
        Param("rate_death_by_age", (0.0002, 0.004, 0.016, 0.045), "per member-year",
              "deaths at home by age 0-17, 18-64, 65-79, 80+ (tier 2)",
              "CDC provisional mortality 2022 (MMWR): 15-27 per 100,000 children, 4,470 per 100,000 at 65+; "
              "in-hospital and nursing-facility deaths come on top"),
        Param("rel_death_by_tier", (0.5, 1.0, 2.0, 3.5), "ratio", "death rate multiplier by acuity tier"),
        Param("rate_disenroll", 0.08, "per member-year", "members leaving the programme alive"),
        Param("rel_disenroll_in_service", 0.25, "ratio", "disenrolment multiplier while in or waiting for a service"),
        Param("rate_institutionalisation", 0.1, "per member-year",
              "permanent nursing-facility entry from the community, adults in tiers 3-4",
              "set so that about 1 in 10 HCBS users moves to a nursing facility in a year (about 1 in 5 survivors "
              "within 24 months on Indiana's aged and disabled waiver, a Medicaid claims study)"),
        Param("rel_institutionalisation_per_unmet_need", 0.5, "ratio",
              "institutionalisation hazard x (1 + this x unmet-need index)",
              "assumption: waiting raises the hazard by half at most, in proportion to HCBS's effect on "
              "hospitalisation (risk ratio about 0.74, BMC Geriatrics 2023)"),
        Param("rate_enrolment", 0.09, "per member-year", "new members a year per member on the books at the start",
              "assumption: an inflow matching the default exits (disenrolment 8% and deaths about 1% a year), so "
              "enrolment is flat as it was nationally in 2015-2019 (CMS monthly enrollment reports); calibration "
              "estimates it from the enrolment start dates"),
        Param("rel_enrolment", 1.0, "ratio", "scenario multiplier on new enrolment (1 = as calibrated)"),
        Param("rel_enrolment_region", 1.0, "ratio", "new-enrolment multiplier of each region", per_region=True),
        Param("p_snf_long_stay", 0.1, "per SNF stay", "post-acute SNF stays that end in a permanent nursing-facility move"),
        Param("dur_institutional_days", 900.0, "days", "mean remaining life of a nursing-facility resident (exponential)",
              "assumption: a mean of about 2.5 years, a third of residents dying each year; replace with the "
              "state's MDS-based survival of long-stay residents"),
    )

    def init(self, sim) -> None:
        m = sim.m
        self.j = (sim.hazard_index["death"], sim.hazard_index["disenrolment"])
        pr, R = sim.pr, sim.world.n_regions
        sel = (pr.line == LINE["nursing_facility"]) & pr.is_open
        self.nf_beds = np.round(np.bincount(pr.region[sel], weights=pr.capacity[sel], minlength=R)).astype(np.int64)
        self.nf_used = np.bincount(m.region[self.residents(sim)], minlength=R).astype(np.int64)
        future = np.flatnonzero((m.status == NOT_YET) & (m.ti_enrol < NEVER))
        self.joiners = future[np.argsort(m.ti_enrol[future], kind="stable")]
        self.next = 0
        pool = np.flatnonzero((m.status == NOT_YET) & (m.ti_enrol == NEVER))  # reserved by `reserve`, in region order
        self.pool = [pool[m.region[pool] == r] for r in range(R)] if len(pool) else []
        self.pool_next = np.zeros(R, np.int64)
        self.on_books = _on_books(sim.world)

    def reserve(self, world, p, seed: int, weeks: int) -> Columns | None:
        t = world.joiners
        if t is None or len(t["region"]) == 0 or p.rate_enrolment <= 0:
            return None
        expected = (POOL_HEADROOM * p.rate_enrolment * max(p.rel_enrolment, 1.0) * 7 * weeks / 365.0
                    * _on_books(world) * np.maximum(p.by_region("rel_enrolment_region", world.region_ids), 1.0))
        size = np.where(expected > 0, np.ceil(expected + 4 * np.sqrt(expected) + 3), 0).astype(np.int64)
        rng = stream(seed, "joiner-pool")
        rows = []
        for r in range(world.n_regions):
            local = np.flatnonzero(t["region"] == r)
            local = local if len(local) else np.arange(len(t["region"]))  # no recent joiner there: anyone's profile
            rows.append(local[rng.integers(0, len(local), size[r])])
        pick = np.concatenate(rows)
        out = Columns({k: np.asarray(v)[pick] for k, v in t.items()})
        out["region"] = np.repeat(np.arange(world.n_regions), size).astype(np.int16)
        out["status"] = np.full(len(pick), NOT_YET, np.int8)
        out["ti_enrol"] = np.full(len(pick), NEVER, np.int32)
        return out

    def week(self, sim, day: int) -> None:
        m, p = sim.m, sim.p
        _hazards(m.hazard[self.j[0]], m.hazard[self.j[1]], m.status, m.age, m.tier, m.svc, np.array(p.rate_death_by_age),
                 np.array(p.rel_death_by_tier), p.rate_disenroll, p.rel_disenroll_in_service)
        who = _institutionalise(sim.key("institutionalisation"), day, m.status, m.tier, m.age, m.unmet,
                                p.rate_institutionalisation, p.rel_institutionalisation_per_unmet_need, 3)
        self.move_in(sim, who, day)

    def residents(self, sim) -> np.ndarray:
        """Nursing-facility residents in member order (`move_in` is the only way in), without a daily scan."""
        m = sim.m

        def here(r: np.ndarray) -> np.ndarray:
            return (m.loc[r] == NURSING) & (m.status[r] == INSTITUTIONALISED)

        return sim.tracked("residents", lambda: np.flatnonzero(here(np.arange(len(m.loc)))), here)

    def move_in(self, sim, members: np.ndarray, day: int, record: bool = True) -> np.ndarray:
        """Permanent moves to a nursing facility, in member order while the region has a free bed; returns
        who moved (the others stay where they are). `record=False` when the caller records the move."""
        m = sim.m
        members = np.sort(members)
        region = m.region[members]
        order = np.argsort(region, kind="stable")
        rank = np.empty(len(members), np.int64)
        rank[order] = np.arange(len(members)) - np.searchsorted(region[order], region[order], "left")
        moved = members[rank < (self.nf_beds - self.nf_used)[region]]
        self.leave(sim, moved, day, INSTITUTIONALISED, record)
        m.loc[moved] = NURSING
        sim.join("residents", moved)
        joins_census(sim, moved)
        self.nf_used += np.bincount(m.region[moved], minlength=len(self.nf_used))
        return moved

    def _resident_deaths(self, sim, day: int) -> None:
        m = sim.m
        who = self.residents(sim)
        died = who[uniforms(sim.key("resident-death"), day, who) < 1.0 / sim.p.dur_institutional_days]
        if len(died):
            self.nf_used -= np.bincount(m.region[died], minlength=len(self.nf_used))
            m.loc[died] = HOME
            self.leave(sim, died, day, DIED)
            sim.add(died, SLOTS("resident_deaths"))

    def day(self, sim, day: int) -> None:
        m = sim.m
        self._resident_deaths(sim, day)
        hi = self.next
        while hi < len(self.joiners) and m.ti_enrol[self.joiners[hi]] <= day:
            hi += 1
        if hi > self.next:
            new = self.joiners[self.next:hi]
            m.status[new] = ENROLLED
            sim.add(new, SLOTS("enrolments"))
            self.next = hi
        if self.pool:
            self._inflow(sim, day)
        self.leave(sim, sim.events("death"), day, DIED)
        self.leave(sim, sim.events("disenrolment"), day, DISENROLLED)

    def _inflow(self, sim, day: int) -> None:
        p, ids = sim.p, sim.world.region_ids
        lam = p.rate_enrolment * p.rel_enrolment * p.by_region("rel_enrolment_region", ids) * self.on_books / 365.0
        key = sim.key("enrolment")
        new = []
        for r in np.flatnonzero(lam > 0):
            k = poisson(key, day, int(r), 0, float(lam[r]))
            if k == 0:
                continue
            at = self.pool_next[r]
            if at + k > len(self.pool[r]):
                raise CaretwinError(f"new enrolment in region {ids[r]} outran its reserve of {len(self.pool[r])} "
                                    f"joiners: an enrolment rate over {POOL_HEADROOM:g}x the calibrated one")
            new.append(self.pool[r][at:at + k])
            self.pool_next[r] = at + k
        if new:
            new = np.sort(np.concatenate(new))
            sim.m.status[new] = ENROLLED
            sim.m.ti_enrol[new] = day
            sim.add(new, SLOTS("enrolments"))

    def leave(self, sim, members: np.ndarray, day: int, status: int, record: bool = True) -> None:
        """Members leave the community: open services close, supportive housing is released."""
        if len(members) == 0:
            return
        m = sim.m
        close_for(sim, members, day, "died" if status == DIED else "left")
        m.status[members] = status
        housing = sim.module("housing") if any(mod.name == "housing" for mod in sim.modules) else None
        if housing is not None:
            housing.release(sim, members)
        slot = {DIED: "deaths", DISENROLLED: "disenrolments", INSTITUTIONALISED: "institutionalisations"}[status]
        sim.add(members, SLOTS(slot))
        if record and sim.recorder is not None:
            sim.recorder.left(sim, members, day, status)



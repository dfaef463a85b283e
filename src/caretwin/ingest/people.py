"""What adapters learn about people and facilities across a source, staged once it is all read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from caretwin.ingest.regions import RegionResolver
from caretwin.ingest.staging import Staging


@dataclass
class Person:
    """What the adapter learns about one patient across resources."""

    file: str
    row: int | None
    birth_year: int | None = None
    sex: str | None = None
    race_ethnicity: str | None = None
    language: str | None = None
    region_id: str | None = None
    death: str | None = None
    first_seen: str | None = None
    coverage_start: str | None = None
    coverage_end: str | None = None
    program: tuple[str, str] | None = None  # (date, programme) of the latest coverage seen

    def seen(self, when: str | None) -> None:
        if when and (self.first_seen is None or when < self.first_seen):
            self.first_seen = when

    def covered(self, when: str | None, program: str | None) -> None:
        """Record coverage from `when`; the latest wins, and being uninsured (None) counts too."""
        if when and (self.program is None or when >= self.program[0]):
            self.program = (when, program or "")


@dataclass
class Org:
    file: str
    row: int | None
    name: str
    region_id: str
    beds: int | None = None
    classes: Counter = field(default_factory=Counter)


def facility_service_line(classes: Counter) -> str:
    """A facility's service line from the episodes it hosted (documented rule `facility_service_line`/1)."""
    if classes["inpatient"] or classes["emergency"] or classes["observation"]:
        return "hospital"
    if classes["snf"]:
        return "snf"
    if classes["home"] or classes["hospice"]:
        return "home_health"
    if classes["crisis"]:
        return "crisis_stabilization"
    return "ambulatory"


def stage_people(st: Staging, people: dict[str, Person], orgs: dict[str, Org], regions: RegionResolver,
                 until: str | None) -> None:
    """Stage members, providers and the regions they fall in.

    Enrolment starts at the earliest coverage on record, else the first care seen; it
    ends at death, or when the last coverage ended before the end of the data (`until`).
    """
    for pid, p in people.items():
        if p.birth_year is None and not p.file:  # referred to but never defined: its rows become orphans
            continue
        start = p.coverage_start or p.first_seen or (f"{p.birth_year}-01-01" if p.birth_year else None)
        end = p.death or (p.coverage_end if p.coverage_end and until and p.coverage_end < until else None)
        st.add("members", {
            "member_id": pid, "birth_year": p.birth_year, "sex": p.sex, "race_ethnicity": p.race_ethnicity,
            "language": p.language, "region_id": p.region_id, "enrollment_start": start, "enrollment_end": end,
            "programs": (p.program[1] or None) if p.program else None, "death_date": p.death,
        }, p.file, p.row)
    for oid, o in orgs.items():
        st.add("providers", {
            "provider_id": oid, "name": o.name, "service_line": facility_service_line(o.classes), "region_id": o.region_id,
            "capacity": o.beds or None, "capacity_unit": "beds" if o.beds else None, "status": "active",
        }, o.file, o.row)
    for r in regions.rows():
        st.add("regions", r, str(regions.path or "(derived from addresses)"))

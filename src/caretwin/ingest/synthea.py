"""Synthea CSV adapter: patients and their coverage, encounters, diagnoses, costs, facilities.

Files are read row by row. Columns that identify a person (names, SSN, driver's licence,
passport, street address, exact birth date) are never read into memory or the workspace.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

from caretwin.errors import CaretwinError
from caretwin.ingest.fhir import HOUSING_LOINC, housing_status
from caretwin.ingest.maps import CodeMaps
from caretwin.ingest.people import Org, Person, stage_people
from caretwin.ingest.regions import RegionResolver
from caretwin.ingest.staging import Staging

FILES = ("patients", "encounters", "conditions", "procedures", "observations", "organizations", "providers", "payers",
         "payer_transitions", "claims")
RACE = {"white": "nh_white", "black": "nh_black", "asian": "nh_asian", "native": "nh_aian", "hawaiian": "nh_nhpi",
        "other": "other"}
SEX = {"F": "female", "M": "male"}


def is_synthea(source: Path) -> bool:
    return source.is_dir() and (source / "patients.csv").is_file() and (source / "encounters.csv").is_file()


# Columns the adapter needs in each file.
NEEDS = {
    "patients": ("Id", "BIRTHDATE", "GENDER"), "encounters": ("Id", "START", "PATIENT", "ENCOUNTERCLASS"),
    "conditions": ("START", "PATIENT", "CODE"), "observations": ("DATE", "PATIENT", "CODE", "VALUE"),
    "organizations": ("Id",), "payers": ("Id", "NAME"), "payer_transitions": ("PATIENT", "PAYER"),
    "procedures": ("START", "PATIENT"),
}


def _rows(path: Path) -> Any:
    """(row number, row) for each record; a file that is not UTF-8 text or has a quote that never closes is
    refused at the line where the trouble starts (read leniently, the rest of the file would vanish into one
    value)."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, strict=True)
        start = 1
        try:
            missing = [c for c in NEEDS.get(path.stem, ()) if c not in (reader.fieldnames or [])]
            if missing:
                raise CaretwinError(f"{path}: the header lacks {', '.join(missing)}")
            for n, row in enumerate(reader, start=1):
                yield n, row
                start = reader.line_num + 1
        except csv.Error as exc:
            raise CaretwinError(f"{path}, line {start}: not a well-formed CSV record ({exc}); "
                                "a quote opened there may never close") from None
        except UnicodeDecodeError:
            raise CaretwinError(f"{path}, line {start}: not UTF-8 text (Synthea writes UTF-8)") from None


def _day(value: str | None) -> str | None:
    v = (value or "").strip()
    if len(v) == 4 and v.isdigit():
        return f"{v}-01-01"
    return v[:10] if len(v) >= 10 else None


def _num(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class SyntheaReader:
    def __init__(self, staging: Staging, regions: RegionResolver, maps: CodeMaps):
        self.st, self.regions, self.maps = staging, regions, maps
        self.people: dict[str, Person] = {}
        self.orgs: dict[str, Org] = {}
        self.read: Counter = Counter()
        self.unmapped: Counter = Counter()
        self.last_day = ""
        self.payers: dict[str, str] = {}

    def read_folder(self, folder: Path) -> list[Path]:
        used = [folder / f"{name}.csv" for name in FILES if (folder / f"{name}.csv").is_file()]
        for name in ("organizations", "patients", "payers", "payer_transitions", "encounters", "conditions",
                     "observations", "procedures", "providers", "claims"):
            path = folder / f"{name}.csv"
            if not path.is_file():
                continue
            file = str(path)
            for n, r in _rows(path):
                self.read[name] += 1
                if name == "organizations":
                    self.orgs[r["Id"]] = Org(file, n, r.get("NAME") or r["Id"], self._region(r))
                elif name == "patients":
                    self._patient(r, file, n)
                elif name == "payers":
                    self.payers[r["Id"]] = r.get("NAME") or ""
                elif name == "payer_transitions":
                    self._transition(r)
                elif name == "encounters":
                    self._encounter(r, file, n)
                elif name == "conditions":
                    self._condition(r, file, n)
                elif name == "observations":
                    self._observation(r, file, n)
                elif name == "procedures":
                    p = self.people.get(r.get("PATIENT", ""))
                    if p:
                        p.seen(_day(r.get("START")))
        return used

    def _region(self, r: dict[str, str]) -> str:
        return self.regions.resolve(county=r.get("COUNTY"), state=r.get("STATE"), postal_code=r.get("ZIP"),
                                    lat=_num(r.get("LAT")), lon=_num(r.get("LON")))

    def _patient(self, r: dict[str, str], file: str, n: int) -> None:
        birth = r.get("BIRTHDATE") or ""
        hispanic = (r.get("ETHNICITY") or "").lower() == "hispanic"
        race = (r.get("RACE") or "").lower()
        self.people[r["Id"]] = Person(
            file, n, birth_year=int(birth[:4]) if birth[:4].isdigit() else None, sex=SEX.get(r.get("GENDER", ""), "unknown"),
            race_ethnicity="hispanic" if hispanic else RACE.get(race, "unknown"), region_id=self._region(r),
            death=_day(r.get("DEATHDATE")))

    def _transition(self, r: dict[str, str]) -> None:
        p = self.people.get(r.get("PATIENT", ""))
        if p is None:
            return
        start, end = _day(r.get("START_YEAR")), _day(r.get("END_YEAR"))
        if start and (p.coverage_start is None or start < p.coverage_start):
            p.coverage_start = start
        if end and (p.coverage_end is None or end > p.coverage_end):
            p.coverage_end = end
        programs = {self.maps.program(self.payers.get(r.get(k) or "")) for k in ("PAYER", "SECONDARY_PAYER")} - {None}
        if {"medicaid", "medicare"} <= programs:
            programs = {"dual"}
        p.covered(start or "0000", ";".join(sorted(programs)))  # type: ignore[arg-type]

    def _encounter(self, r: dict[str, str], file: str, n: int) -> None:
        raw = r.get("ENCOUNTERCLASS", "")
        cls = self.maps.synthea_encounter_class.get(raw)
        start, stop = _day(r.get("START")), _day(r.get("STOP"))
        p = self.people.get(r.get("PATIENT", ""))
        if p:
            p.seen(start)
        self.last_day = max(self.last_day, start or "", stop or "")
        if cls is None:
            self.unmapped[f"ENCOUNTERCLASS {raw}"] += 1
            return
        org = r.get("ORGANIZATION") or None
        if org in self.orgs:
            self.orgs[org].classes[cls] += 1
        self.st.add("encounters", {
            "encounter_id": r["Id"], "member_id": r.get("PATIENT"), "facility_id": org if org in self.orgs else None,
            "encounter_class": cls, "admit_date": start, "discharge_date": stop,
        }, file, n)
        self.st.add("claims", {
            "claim_id": f"encounter-{r['Id']}", "member_id": r.get("PATIENT"), "encounter_id": r["Id"],
            "service_date": start, "billed_amount": _num(r.get("TOTAL_CLAIM_COST")),
            "paid_amount": _num(r.get("PAYER_COVERAGE")), "program": self.maps.program(self.payers.get(r.get("PAYER") or "")),
        }, file, n)

    def _condition(self, r: dict[str, str], file: str, n: int) -> None:
        key = f"{r.get('PATIENT')}|{r.get('ENCOUNTER')}|{r.get('CODE')}|{r.get('START')}"
        self.st.add("diagnoses", {
            "diagnosis_id": key, "member_id": r.get("PATIENT"), "encounter_id": r.get("ENCOUNTER") or None,
            "code_system": "snomed", "code": r.get("CODE"), "onset_date": _day(r.get("START")),
            "abatement_date": _day(r.get("STOP")),
        }, file, n)

    def _observation(self, r: dict[str, str], file: str, n: int) -> None:
        status = housing_status(r.get("VALUE")) if r.get("CODE") == HOUSING_LOINC else None
        if status:
            self.st.add("housing_events", {
                # the event key would carry the patient's id: it is pseudonymised like one
                "housing_event_id": self.st.pseudonym(f"{r.get('PATIENT')}|{r.get('DATE')}|{HOUSING_LOINC}"),
                "member_id": r.get("PATIENT"), "event_date": _day(r.get("DATE")), "housing_status": status,
            }, file, n)

    def finish(self) -> None:
        stage_people(self.st, self.people, self.orgs, self.regions, self.last_day or None)

    def details(self) -> dict[str, Any]:
        return {"rows_read": dict(self.read), "not_mapped": dict(self.unmapped),
                "reference_only": [f for f in ("procedures", "providers", "claims") if self.read[f]]}

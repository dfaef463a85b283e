"""FHIR R4 adapter: Bundles (transaction, batch, collection, searchset; JSON) and Bulk Data NDJSON.

Resources stream one at a time; what stays in memory is one row chunk per table plus one
small record per patient and per organisation (enrolment and service line are only known
once every resource has been read). Resource types the canonical model has no place for
are counted and reported, never silently ignored.

References resolve in the forms real exports use: `urn:uuid:` (through the bundle's
fullUrl), `Type/id`, absolute URLs ending in `Type/id`, and conditional references such
as `Organization?identifier=system|value` (through the identifiers of the resources read).
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from caretwin.errors import CaretwinError
from caretwin.ingest.maps import CodeMaps
from caretwin.ingest.people import Org, Person, stage_people
from caretwin.ingest.regions import RegionResolver
from caretwin.ingest.staging import Staging

MAPPED = (
    "Patient", "Encounter", "Condition", "Procedure", "Observation", "Organization", "Location", "Practitioner",
    "PractitionerRole", "Coverage", "Claim", "ExplanationOfBenefit",
)
# Read for references or counts only: nothing of theirs has a canonical table.
REFERENCE_ONLY = ("Procedure", "Practitioner", "PractitionerRole")
# Directory resources first, so that references to them resolve as soon as they are met.
ORDER = {t: i for i, t in enumerate(("Organization", "Location", "Practitioner", "PractitionerRole", "Patient", "Coverage",
                                    "Encounter"))}
_TYPE = re.compile(r'"resourceType"\s*:\s*"([A-Za-z]+)"')
ICD10 = {"http://hl7.org/fhir/sid/icd-10-cm": "icd10cm", "http://hl7.org/fhir/sid/icd-10": "icd10cm",
         "http://snomed.info/sct": "snomed", "http://hl7.org/fhir/sid/icd-9-cm": "icd9cm"}
RACE = {"2106-3": "nh_white", "2054-5": "nh_black", "2028-9": "nh_asian", "1002-5": "nh_aian", "2076-8": "nh_nhpi"}
HOUSING_LOINC = "71802-3"  # Housing status (PRAPARE: "What is your housing situation today?")


def housing_status(answer: str | None) -> str | None:
    """Canonical housing status from a PRAPARE housing-situation answer (LOINC answer code or text)."""
    a = (answer or "").strip().lower()
    if a in ("la31993-1", "i have housing"):
        return "stable"
    if a == "la31994-9" or a.startswith("i do not have housing"):
        return "homeless"
    return None


def race_ethnicity(races: list[str], hispanic: bool | None) -> str:
    """OMB categories, Hispanic of any race."""
    if hispanic:
        return "hispanic"
    mapped = {RACE[r] for r in races if r in RACE}
    if len(mapped) > 1:
        return "multiracial"
    if mapped:
        return mapped.pop()
    return "other" if races else "unknown"


def _nubc(code: str | None) -> str:
    """NUBC status codes are two digits; some exports drop the leading zero."""
    return code.zfill(2) if code and code.isdigit() else (code or "")


def day(value: str | None) -> str | None:
    """The calendar date of a FHIR date or dateTime, as written (local time of the source)."""
    return value[:10] if value and len(value) >= 10 else None


MAX_LINE = 64 << 20  # characters in one NDJSON line (one resource); a longer line is refused


def _json(text: str, where: str) -> Any:
    """Parse JSON, refusing with `where` what is not JSON, nests too deeply or holds a number too long to read."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CaretwinError(f"{where}: not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except RecursionError:
        raise CaretwinError(f"{where}: JSON nested too deeply to be a FHIR resource") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise CaretwinError(f"{where}: a value cannot be read: {str(exc).split(';')[0]}") from None


class FhirReader:
    """Maps FHIR resources into staged canonical rows."""

    def __init__(self, staging: Staging, regions: RegionResolver, maps: CodeMaps, *, strict: bool = False):
        self.st, self.regions, self.maps, self.strict = staging, regions, maps, strict
        self.people: dict[str, Person] = {}
        self.orgs: dict[str, Org] = {}
        self.location_org: dict[str, str] = {}
        self.identifiers: dict[str, str] = {}  # "Type?identifier=system|value" -> id
        self.read: Counter = Counter()
        self.skipped: Counter = Counter()
        self.invalid: list[dict[str, Any]] = []
        self.unmapped: Counter = Counter()
        self.labels: dict[str, str] = {}  # file path -> how records and lineage name it

    # -- input --------------------------------------------------------------------
    def read_path(self, path: Path) -> None:
        name = path.name.lower()
        if name.endswith((".ndjson", ".ndjson.gz", ".jsonl")):
            self._ndjson(path)
        elif name.endswith(".json"):
            self._bundle(path)

    def _ndjson(self, path: Path) -> None:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        file = str(path)
        with opener(path, "rb") as fh:  # type: ignore[operator]
            n = 0
            while raw := fh.readline(MAX_LINE + 1):  # one line at a time, never more than MAX_LINE in memory
                n += 1
                if len(raw) > MAX_LINE:
                    raise CaretwinError(f"{file}: line {n}: longer than {MAX_LINE >> 20} MiB; not one FHIR resource")
                try:
                    line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
                except UnicodeDecodeError:
                    raise CaretwinError(f"{file}: line {n}: not UTF-8 text (FHIR NDJSON is UTF-8)") from None
                if not line.strip():
                    continue
                m = _TYPE.search(line, 0, 200)
                if m and m.group(1) not in MAPPED:  # counted without parsing: most of a bulk export
                    self.skipped[m.group(1)] += 1
                    continue
                self.resource(_json(line, f"{file}: line {n}"), file, n, {})

    def _bundle(self, path: Path) -> None:
        file = str(path)
        try:
            doc = _json(path.read_text(encoding="utf-8"), file)
        except UnicodeDecodeError:
            raise CaretwinError(f"{file}: not UTF-8 text (FHIR JSON is UTF-8)") from None
        if not isinstance(doc, dict) or "resourceType" not in doc:
            raise CaretwinError(f"{file}: not a FHIR resource (no resourceType)")
        if doc["resourceType"] != "Bundle":
            self.resource(doc, file, None, {})
            return
        entry = doc.get("entry") or []
        if not isinstance(entry, list):
            raise CaretwinError(f"{file}: Bundle.entry is not a list")
        entries = [e for e in entry if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        if any(e["resource"].get("resourceType") == "Patient" for e in entries):
            # exporters often name a patient's bundle after the patient: never store that name
            file = self.labels[str(path)] = str(path.parent / f"patient-bundle-{self.st.pseudonym(path.name)}.json")
        for e in entries:  # transaction bundles may leave ids to the server: the fullUrl names the resource
            if not e["resource"].get("id") and str(e.get("fullUrl", "")).startswith("urn:uuid:"):
                e["resource"]["id"] = e["fullUrl"][9:]
        local = {e["fullUrl"]: e["resource"].get("id") for e in entries if e.get("fullUrl")}
        order = sorted(range(len(entries)), key=lambda i: (ORDER.get(entries[i]["resource"].get("resourceType"), 99), i))
        for i in order:
            self.resource(entries[i]["resource"], file, i + 1, local)

    # -- references ---------------------------------------------------------------
    def ref(self, reference: dict | None, local: dict[str, str]) -> str | None:
        """The logical id a reference points to (a conditional reference not yet resolvable stays as written)."""
        if not reference:
            return None
        r = reference.get("reference")
        if not r:
            ident = reference.get("identifier")
            if ident:
                return self.identifiers.get(f"?identifier={ident.get('system', '')}|{ident.get('value', '')}")
            return None
        if r in local:
            return local[r]
        if r.startswith("urn:uuid:"):
            return r[9:]
        if "?" in r:
            return self.identifiers.get(r[r.index("?"):], r)
        parts = r.rstrip("/").split("/")
        if len(parts) >= 4 and parts[-2] == "_history":
            parts = parts[:-2]
        return parts[-1]

    def _index(self, res: dict) -> None:
        for ident in res.get("identifier") or []:
            if ident.get("value"):
                self.identifiers[f"?identifier={ident.get('system', '')}|{ident['value']}"] = res["id"]
                self.identifiers[f"?identifier={ident['value']}"] = res["id"]

    # -- resources ----------------------------------------------------------------
    def resource(self, res: dict, file: str, row: int | None, local: dict[str, str]) -> None:
        if not isinstance(res, dict):
            self.invalid.append({"file": file, "row": row, "resourceType": None, "reason": "not a JSON object"})
            return
        rt = res.get("resourceType", "(not a FHIR resource)")
        rt = rt if isinstance(rt, str) else "(not a FHIR resource)"
        if rt not in MAPPED:
            self.skipped[rt] += 1
            return
        if self.strict and not self._valid(res, file, row):
            return
        if not res.get("id"):
            self.invalid.append({"file": file, "row": row, "resourceType": rt, "reason": "no id"})
            return
        try:
            getattr(self, f"_{rt.lower()}")(res, file, row, local)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            # an element of another shape than R4's (a string where a list belongs, say): counted, not loaded
            self.invalid.append({"file": file, "row": row, "resourceType": rt,
                                 "reason": f"an element is not of its FHIR R4 shape ({type(exc).__name__})"})
            return
        self.read[rt] += 1

    def _valid(self, res: dict, file: str, row: int | None) -> bool:
        from caretwin.ingest.strict import validate

        problem = validate(res)
        if problem:
            self.invalid.append({"file": file, "row": row, "resourceType": res.get("resourceType"), "reason": problem})
            return False
        return True

    def _address_region(self, address: dict | None, position: tuple[float | None, float | None] = (None, None)) -> str:
        a = address or {}
        lat, lon = position
        for ext in a.get("extension") or []:
            if ext.get("url", "").endswith("geolocation"):
                vals = {e.get("url"): e.get("valueDecimal") for e in ext.get("extension") or []}
                lat, lon = vals.get("latitude", lat), vals.get("longitude", lon)
        return self.regions.resolve(county=a.get("district"), state=a.get("state"), postal_code=a.get("postalCode"),
                                    lat=lat, lon=lon)

    def _patient(self, r: dict, file: str, row: int | None, local: dict) -> None:
        self._index(r)
        p = self.people.get(r["id"]) or Person(file, row)
        p.file, p.row = file, row
        birth = r.get("birthDate")
        p.birth_year = int(birth[:4]) if birth and birth[:4].isdigit() else None
        p.sex = r.get("gender") or "unknown"
        races, hispanic = [], None
        for ext in r.get("extension") or []:
            url = ext.get("url", "")
            codes = [e["valueCoding"]["code"] for e in ext.get("extension") or []
                     if e.get("url") == "ombCategory" and e.get("valueCoding")]
            if url.endswith("us-core-race"):
                races += codes
            elif url.endswith("us-core-ethnicity"):
                hispanic = "2135-2" in codes
        p.race_ethnicity = race_ethnicity(races, hispanic)
        for comm in r.get("communication") or []:
            code = next((c.get("code") for c in (comm.get("language") or {}).get("coding") or [] if c.get("code")), None)
            if code:
                p.language = code[:2].lower()
                break
        addresses = r.get("address") or []
        p.region_id = self._address_region(addresses[-1] if addresses else None)
        p.death = day(r.get("deceasedDateTime"))
        self.people[r["id"]] = p

    def _person(self, pid: str | None) -> Person | None:
        if pid is None:
            return None
        p = self.people.get(pid)
        if p is None:  # seen before its Patient resource; filled in when that arrives
            p = self.people[pid] = Person("", None)
        return p

    def _organization(self, r: dict, file: str, row: int | None, local: dict) -> None:
        self._index(r)
        addresses = r.get("address") or []
        beds = next((e.get("valueInteger") for e in r.get("extension") or [] if e.get("url", "").endswith("bed-count-extension")), None)
        org = self.orgs.get(r["id"])
        if org is None:
            self.orgs[r["id"]] = Org(file, row, r.get("name") or r["id"], self._address_region(addresses[0] if addresses else None), beds)
        else:
            org.file, org.row, org.name, org.beds = file, row, r.get("name") or r["id"], beds

    def _location(self, r: dict, file: str, row: int | None, local: dict) -> None:
        self._index(r)
        org = self.ref(r.get("managingOrganization"), local)
        if org:
            self.location_org[r["id"]] = org
            o = self.orgs.get(org)
            pos = r.get("position") or {}
            if o is not None and o.region_id == "unassigned":
                o.region_id = self._address_region(r.get("address"), (pos.get("latitude"), pos.get("longitude")))

    def _practitioner(self, r: dict, file: str, row: int | None, local: dict) -> None:
        self._index(r)  # a person: names and addresses are never read

    def _practitionerrole(self, r: dict, file: str, row: int | None, local: dict) -> None:
        self._index(r)

    def _procedure(self, r: dict, file: str, row: int | None, local: dict) -> None:
        p = self._person(self.ref(r.get("subject"), local))
        if p:
            p.seen(day(r.get("performedDateTime") or (r.get("performedPeriod") or {}).get("start")))

    def _coverage(self, r: dict, file: str, row: int | None, local: dict) -> None:
        p = self._person(self.ref(r.get("beneficiary"), local))
        if p is None:
            return
        period = r.get("period") or {}
        start, end = day(period.get("start")), day(period.get("end"))
        payor = next((x.get("display") for x in r.get("payor") or [] if x.get("display")), None) or (r.get("type") or {}).get("text")
        if start and (p.coverage_start is None or start < p.coverage_start):
            p.coverage_start = start
        if end and (p.coverage_end is None or end > p.coverage_end):
            p.coverage_end = end
        p.covered(start or "0000", self.maps.program(payor))

    def _encounter(self, r: dict, file: str, row: int | None, local: dict) -> None:
        pid = self.ref(r.get("subject"), local)
        cls_code = (r.get("class") or {}).get("code")
        types = [c.get("code") for t in r.get("type") or [] for c in t.get("coding") or []]
        cls = next((self.maps.encounter_type[t] for t in types if t in self.maps.encounter_type), None)
        cls = cls or self.maps.fhir_encounter_class.get(cls_code or "")
        period = r.get("period") or {}
        p = self._person(pid)
        if p:
            p.seen(day(period.get("start")))
        status = r.get("status")
        if status in ("planned", "cancelled", "entered-in-error"):  # not episodes of care
            self.unmapped[f"Encounter.status {status}"] += 1
            return
        if cls is None:
            self.unmapped[f"Encounter.class {cls_code}"] += 1
            return
        facility = self.ref(r.get("serviceProvider"), local)
        if facility is None:
            for loc in r.get("location") or []:
                lid = self.ref(loc.get("location"), local)
                facility = self.location_org.get(lid or "")
                if facility:
                    break
        if facility in self.orgs:
            self.orgs[facility].classes[cls] += 1
        hosp = r.get("hospitalization") or {}
        disp_code = next((c.get("code") for c in (hosp.get("dischargeDisposition") or {}).get("coding") or []), None)
        dx = None
        for reason in r.get("reasonCode") or []:
            for c in reason.get("coding") or []:
                if ICD10.get(c.get("system", "")) == "icd10cm":
                    dx = c.get("code")
        finished = status in (None, "finished")
        self.st.add("encounters", {
            "encounter_id": r["id"], "member_id": pid, "facility_id": facility, "encounter_class": cls,
            "admit_date": day(period.get("start")), "discharge_date": day(period.get("end")) if finished else None,
            "discharge_disposition": self.maps.discharge_disposition.get(_nubc(disp_code)) if disp_code else None,
            "primary_diagnosis": dx,
        }, file, row)
        if disp_code and _nubc(disp_code) not in self.maps.discharge_disposition:
            self.unmapped[f"dischargeDisposition {disp_code}"] += 1

    def _condition(self, r: dict, file: str, row: int | None, local: dict) -> None:
        codings = (r.get("code") or {}).get("coding") or []
        coding = next((c for c in codings if c.get("system") in ICD10), codings[0] if codings else None)
        if coding is None:
            self.unmapped["Condition without a code"] += 1
            return
        self.st.add("diagnoses", {
            "diagnosis_id": r["id"], "member_id": self.ref(r.get("subject"), local),
            "encounter_id": self.ref(r.get("encounter"), local), "code_system": ICD10.get(coding.get("system", ""), "other"),
            "code": coding.get("code"), "onset_date": day(r.get("onsetDateTime") or r.get("recordedDate")),
            "abatement_date": day(r.get("abatementDateTime")),
        }, file, row)

    def _observation(self, r: dict, file: str, row: int | None, local: dict) -> None:
        parts = [r, *(r.get("component") or [])]
        answer = None
        for part in parts:
            if any(c.get("code") == HOUSING_LOINC for c in (part.get("code") or {}).get("coding") or []):
                value = part.get("valueCodeableConcept") or {}
                answer = next((housing_status(c.get("code")) for c in value.get("coding") or [] if housing_status(c.get("code"))),
                              None) or housing_status(value.get("text")) or housing_status(part.get("valueString"))
        if answer is None:
            self.unmapped["Observation (not a housing status)"] += 1
            return
        self.st.add("housing_events", {
            "housing_event_id": f"{r['id']}", "member_id": self.ref(r.get("subject"), local),
            "event_date": day(r.get("effectiveDateTime") or r.get("issued")), "housing_status": answer,
        }, file, row)

    def _claim_row(self, r: dict, local: dict, claim_id: str, patient_ref: dict | None) -> dict[str, Any]:
        enc = None
        for item in r.get("item") or []:
            for e in item.get("encounter") or []:
                enc = enc or self.ref(e, local)
        payer = next((i.get("coverage", {}).get("display") for i in r.get("insurance") or [] if i.get("focal", True)), None)
        pid = self.ref(patient_ref, local)
        when = day((r.get("billablePeriod") or {}).get("start"))
        p = self._person(pid)
        if p:
            p.covered(when, self.maps.program(payer))
        return {"claim_id": claim_id, "member_id": pid, "encounter_id": enc, "service_date": when,
                "program": self.maps.program(payer)}

    def _claim(self, r: dict, file: str, row: int | None, local: dict) -> None:
        row_ = self._claim_row(r, local, r["id"], r.get("patient"))
        row_["billed_amount"] = (r.get("total") or {}).get("value")
        self.st.add("claims", row_, file, row)

    def _explanationofbenefit(self, r: dict, file: str, row: int | None, local: dict) -> None:
        claim_id = self.ref(r.get("claim"), local) or r["id"]
        row_ = self._claim_row(r, local, claim_id, r.get("patient"))
        totals = {c.get("code"): (t.get("amount") or {}).get("value")
                  for t in r.get("total") or [] for c in (t.get("category") or {}).get("coding") or []}
        row_["billed_amount"] = totals.get("submitted")
        row_["paid_amount"] = ((r.get("payment") or {}).get("amount") or {}).get("value", totals.get("benefit"))
        self.st.add("claims", row_, file, row)

    # -- end of input -------------------------------------------------------------
    def finish(self, until: str | None) -> None:
        """Stage members, providers and regions, now that every resource has been read."""
        stage_people(self.st, self.people, self.orgs, self.regions, until)

    def details(self) -> dict[str, Any]:
        return {"resources_read": dict(self.read), "resources_skipped": dict(self.skipped),
                "reference_only": [t for t in REFERENCE_ONLY if self.read[t]],
                "not_mapped": dict(self.unmapped), "invalid": self.invalid[:100], "invalid_count": len(self.invalid)}


def fhir_files(source: Path) -> list[Path]:
    """The FHIR files under `source`, directory resources first (Bulk Data names files by type)."""
    if source.is_file():
        return [source]
    files = [p for p in sorted(source.rglob("*")) if p.is_file() and p.name.lower().endswith(
        (".json", ".ndjson", ".ndjson.gz", ".jsonl")) and not p.name.startswith(".")]

    def rank(p: Path) -> tuple[int, str]:
        head = p.name.split(".")[0]
        if head in ORDER:
            return ORDER[head], p.name
        if head.lower().startswith(("hospitalinformation", "practitionerinformation")):
            return -1, p.name
        return 50, p.name

    return sorted(files, key=rank)

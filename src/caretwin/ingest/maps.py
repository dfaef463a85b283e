"""Code maps from source vocabularies to canonical values: documented defaults, overridable.

Override any entry with `--mapping FILE`, a TOML file whose tables have the names below,
e.g.

    [hsds_taxonomy]
    "LT-2800" = "home_health"
    [payer_program]
    "Acme Health Plan" = "managed_care"

A value of "" removes a default entry (the code is then reported as unmapped).
`docs/ingest.md` lists every default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from caretwin.errors import CaretwinError
from caretwin.model.schema import (
    DISCHARGE_DISPOSITIONS,
    ENCOUNTER_CLASSES,
    PROGRAMS,
    SERVICE_LINES,
)

# FHIR R4 Encounter.class (v3 ActCode) -> canonical encounter class.
FHIR_ENCOUNTER_CLASS = {
    "AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient", "ACUTE": "inpatient", "NONAC": "inpatient",
    "OBSENC": "observation", "SS": "observation", "HH": "home", "VR": "ambulatory", "PRENC": "ambulatory",
    "FLD": "ambulatory",
}
# Encounter.type (SNOMED CT) codes that say more than the class does; Synthea's CSV classes agree with these.
ENCOUNTER_TYPE = {
    "702927004": "urgent_care",        # Urgent care clinic
    "449411000124106": "snf",          # Admission to skilled nursing facility
    "385763009": "hospice",            # Hospice care
}
# Synthea CSV encounters.ENCOUNTERCLASS -> canonical encounter class.
SYNTHEA_ENCOUNTER_CLASS = {
    "wellness": "ambulatory", "ambulatory": "ambulatory", "outpatient": "ambulatory", "virtual": "ambulatory",
    "emergency": "emergency", "inpatient": "inpatient", "urgentcare": "urgent_care", "snf": "snf", "home": "home",
    "hospice": "hospice",
}
# Discharge disposition: NUBC UB-04 patient discharge status codes, and FHIR's discharge-disposition codes.
DISCHARGE_DISPOSITION = {
    "01": "home", "02": "transfer", "03": "snf", "04": "transfer", "05": "transfer", "06": "home_health",
    "07": "against_advice", "09": "still_in_care", "20": "died", "21": "transfer", "30": "still_in_care",
    "40": "died", "41": "died", "42": "died", "43": "transfer", "50": "home", "51": "transfer", "61": "snf",
    "62": "transfer", "63": "transfer", "64": "snf", "65": "psychiatric", "66": "transfer", "69": "transfer",
    "70": "transfer",
    "home": "home", "alt-home": "home", "other-hcf": "transfer", "hosp": "transfer", "long": "snf",
    "aadvice": "against_advice", "exp": "died", "psy": "psychiatric", "rehab": "transfer", "snf": "snf",
}
# Payer names (Synthea payers.csv NAME, FHIR Coverage payor display) -> programme; others are "private".
PAYER_PROGRAM = {
    "medicaid": "medicaid", "medicare": "medicare", "dual eligible": "dual", "no_insurance": "", "no insurance": "",
    "chip": "chip",
}
# Open Referral HSDS taxonomy (AIRS / 211 LA codes) -> service line; the longest matching prefix wins.
HSDS_TAXONOMY = {
    "BH-8400.3000": "supportive_housing",      # Homeless Permanent Supportive Housing
    "BH-8400.6000-840": "hcbs",               # Supported Living Services for Adults With Disabilities
    "PH-3300": "hcbs",                        # In Home Assistance (homemaker, meal preparation, personal care)
    "PH-0320": "hcbs",                        # Adult Day Programs
    "PH-7000": "hcbs",                        # Respite Care
    "LT-2800": "home_health",                 # Home Health Care
    "YO-3000.5000-300": "home_health",        # Home Health Aides
    "LL-6000": "snf",                         # Nursing Facilities
    "LL-3000": "hospital",                    # Hospitals
    "RP-1500.3300": "mobile_crisis",          # In Person Crisis Intervention
    "RP-1500.3400": "crisis_stabilization",   # Crisis Stabilization
    "RP-6400.8000-600": "care_coordination",  # Psychiatric Case Management
    "PH-1000": "care_coordination",           # Case/Care Management
    "RD": "behavioral_health", "RF": "behavioral_health", "RM": "behavioral_health",
    "RP": "behavioral_health", "RX": "behavioral_health",  # Mental health and substance use services
    "LN-1500": "ambulatory",                  # Community Clinics
}


@dataclass
class CodeMaps:
    fhir_encounter_class: dict[str, str] = field(default_factory=lambda: dict(FHIR_ENCOUNTER_CLASS))
    encounter_type: dict[str, str] = field(default_factory=lambda: dict(ENCOUNTER_TYPE))
    synthea_encounter_class: dict[str, str] = field(default_factory=lambda: dict(SYNTHEA_ENCOUNTER_CLASS))
    discharge_disposition: dict[str, str] = field(default_factory=lambda: dict(DISCHARGE_DISPOSITION))
    payer_program: dict[str, str] = field(default_factory=lambda: dict(PAYER_PROGRAM))
    hsds_taxonomy: dict[str, str] = field(default_factory=lambda: dict(HSDS_TAXONOMY))

    @classmethod
    def load(cls, path: str | Path | None) -> CodeMaps:
        """The defaults, with the overrides in the TOML file at `path` applied and checked."""
        maps = cls()
        if path is None:
            return maps
        p = Path(path)
        try:
            doc = tomllib.loads(p.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CaretwinError(f"{p}: cannot read the mapping file: {exc}") from None
        allowed = {
            "fhir_encounter_class": ENCOUNTER_CLASSES, "encounter_type": ENCOUNTER_CLASSES,
            "synthea_encounter_class": ENCOUNTER_CLASSES, "discharge_disposition": DISCHARGE_DISPOSITIONS,
            "payer_program": PROGRAMS, "hsds_taxonomy": SERVICE_LINES,
        }
        for name, entries in doc.items():
            if name not in allowed:
                raise CaretwinError(f"{p}: unknown table [{name}]; mapping tables: {', '.join(allowed)}")
            target: dict[str, str] = getattr(maps, name)
            for code, value in entries.items():
                if value == "":
                    target.pop(code.lower() if name == "payer_program" else code, None)
                elif value not in allowed[name]:
                    raise CaretwinError(f"{p}: [{name}] {code!r} = {value!r}: not one of {', '.join(allowed[name])}")
                else:
                    target[code.lower() if name == "payer_program" else code] = value
        return maps

    def program(self, payer: str | None) -> str | None:
        """The programme a payer name stands for (None when uninsured or unknown)."""
        if not payer:
            return None
        hit = self.payer_program.get(payer.strip().lower(), "private")
        return hit or None

    def service_line(self, taxonomy_code: str) -> tuple[str, int] | None:
        """(service line, length of the matching prefix) for an HSDS taxonomy code, or None."""
        code = taxonomy_code.strip().upper()
        for n in range(len(code), 0, -1):
            hit = self.hsds_taxonomy.get(code[:n])
            if hit and (n == len(code) or not code[n].isalnum()):
                return hit, n
        return None

"""The canonical data model: every table and column, declared once.

Validators (`caretwin.ingest`), the synthetic county (`caretwin.synth`), the
workspace DDL and the docs (`docs/data-model.md`) all read these declarations,
so a column's meaning, type, unit and constraints live in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SCHEMA_VERSION = "1.3.0"

DType = Literal["string", "integer", "float", "boolean", "date"]

SQL_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
}

# Hard bounds for every date column; plausibility ("not in the future") is the quality layer's job.
DATE_MIN = "1900-01-01"
DATE_MAX = "2100-12-31"

SERVICE_LINES = (
    "hcbs",
    "home_health",
    "behavioral_health",
    "mobile_crisis",
    "crisis_stabilization",
    "snf",
    "hospital",
    "supportive_housing",
    "care_coordination",
    "ambulatory",
    "nursing_facility",  # long-stay nursing-facility care (custodial); snf is post-acute
)
RURALITY = ("urban", "suburban", "rural", "frontier", "unknown")
SEX = ("female", "male", "other", "unknown")
RACE_ETHNICITY = (
    "hispanic",
    "nh_white",
    "nh_black",
    "nh_asian",
    "nh_aian",
    "nh_nhpi",
    "multiracial",
    "other",
    "unknown",
)
PROGRAMS = ("medicaid", "chip", "dual", "hcbs_waiver", "managed_care", "medicare", "private")
HOUSING_STATUS = ("stable", "at_risk", "homeless")
# The first five are the facility episodes the engine models; the rest are kept for risk models.
ENCOUNTER_CLASSES = (
    "emergency", "inpatient", "observation", "snf", "crisis", "ambulatory", "urgent_care", "home", "hospice",
)
CODE_SYSTEMS = ("icd10cm", "icd9cm", "snomed", "other")
DISCHARGE_DISPOSITIONS = (
    "home",
    "home_without_support",
    "home_health",
    "hcbs",
    "snf",
    "psychiatric",
    "transfer",
    "against_advice",
    "died",
    "still_in_care",
    "nursing_facility",  # a permanent move to long-stay care
)
SEVERITY = ("low", "moderate", "high", "critical")
AGE_BANDS = ("0-17", "18-44", "45-64", "65-74", "75-84", "85+")


@dataclass(frozen=True)
class Column:
    """One column: its type, unit, meaning and constraints."""

    name: str
    dtype: DType
    description: str
    required: bool = False
    unit: str | None = None
    allowed: tuple[str, ...] | None = None
    minimum: float | str | None = None
    maximum: float | str | None = None
    pattern: str | None = None
    references: str | None = None  # "table.column"
    list_separator: str | None = None  # multi-valued: each item must be in `allowed`
    pseudonymised: bool = False  # replaced by a keyed hash at ingest

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.dtype]

    @property
    def bounds(self) -> tuple[float | str | None, float | str | None]:
        if self.dtype == "date":
            return (self.minimum or DATE_MIN, self.maximum or DATE_MAX)
        return (self.minimum, self.maximum)


@dataclass(frozen=True)
class RowCheck:
    """A constraint across columns of one row, as a SQL predicate that is TRUE when violated."""

    name: str
    violated_when: str
    message: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    checks: tuple[RowCheck, ...] = ()
    date_column: str | None = None  # the column whose range `caretwin status` reports
    person_level: bool = False
    derived: bool = False  # built by caretwin from other tables, never loaded from a source

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def foreign_keys(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.references)


def _member_ref(required: bool = True) -> Column:
    return Column(
        "member_id",
        "string",
        "The member, pseudonymised with the workspace key at ingest.",
        required=required,
        references="members.member_id",
        pseudonymised=True,
    )


def _provider_ref(description: str = "The provider.", required: bool = True) -> Column:
    return Column("provider_id", "string", description, required=required, references="providers.provider_id")


def _service_line(description: str = "Service line.") -> Column:
    return Column("service_line", "string", description, required=True, allowed=SERVICE_LINES)


def _ordered(later: str, earlier: str, label: str) -> RowCheck:
    return RowCheck(
        f"{later}_after_{earlier}",
        f"{later} < {earlier}",
        f"{label}: {later} is before {earlier}",
        (earlier, later),
    )


_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"
_ICD10 = r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$"

TABLES: tuple[Table, ...] = (
    Table(
        "regions",
        "Geographic units the twin reports on (county, district or service area).",
        (
            Column("region_id", "string", "Region key.", required=True, pattern=_ID_PATTERN),
            Column("name", "string", "Display name.", required=True),
            Column("rurality", "string", "Settlement class.", required=True, allowed=RURALITY),
            Column("population", "integer", "Resident population (all ages); the reference for representation checks.", unit="people", minimum=0),
            Column("lat", "float", "Latitude of the population centre (WGS84).", unit="degrees", minimum=-90, maximum=90),
            Column("lon", "float", "Longitude of the population centre (WGS84).", unit="degrees", minimum=-180, maximum=180),
        ),
        primary_key=("region_id",),
    ),
    Table(
        "travel_times",
        "Typical drive time between region centres, for matching outside a member's region.",
        (
            Column("from_region_id", "string", "Origin region.", required=True, references="regions.region_id"),
            Column("to_region_id", "string", "Destination region.", required=True, references="regions.region_id"),
            Column("minutes", "float", "Typical one-way drive time.", required=True, unit="minutes", minimum=0),
        ),
        primary_key=("from_region_id", "to_region_id"),
    ),
    Table(
        "members",
        "People enrolled in the programmes the twin covers. No direct identifiers: birth year only, pseudonymised key.",
        (
            Column("member_id", "string", "Member key, pseudonymised with the workspace key at ingest.", required=True, pseudonymised=True),
            Column("birth_year", "integer", "Year of birth (never the full date).", required=True, unit="year", minimum=1900, maximum=2100),
            Column("sex", "string", "Sex as recorded.", required=True, allowed=SEX),
            Column("race_ethnicity", "string", "Race and ethnicity (OMB categories, Hispanic of any race).", allowed=RACE_ETHNICITY),
            Column("language", "string", "Preferred language, ISO 639-1 code.", pattern=r"^[a-z]{2}$"),
            Column("region_id", "string", "Region of residence.", required=True, references="regions.region_id"),
            Column("enrollment_start", "date", "First day of the current enrolment.", required=True),
            Column("enrollment_end", "date", "Last day of enrolment; empty while enrolled."),
            Column("programs", "string", "Programmes the member is enrolled in, separated by ';'.", allowed=PROGRAMS, list_separator=";"),
            Column("acuity_tier", "integer", "Care needs, 1 (low) to 4 (very high).", minimum=1, maximum=4),
            Column("chronic_conditions", "integer", "Number of chronic conditions.", unit="conditions", minimum=0, maximum=50),
            Column("serious_mental_illness", "boolean", "Serious mental illness on record."),
            Column("substance_use_disorder", "boolean", "Substance use disorder on record."),
            Column("housing_status", "string", "Housing status at the end of the extract.", allowed=HOUSING_STATUS),
            Column("caregiver_support", "boolean", "An unpaid caregiver helps the member."),
            Column("death_date", "date", "Date of death, if the member died."),
        ),
        primary_key=("member_id",),
        checks=(
            _ordered("enrollment_end", "enrollment_start", "enrolment"),
            RowCheck(
                "born_before_enrollment",
                "birth_year > year(enrollment_start)",
                "enrolment starts before the birth year",
                ("birth_year", "enrollment_start"),
            ),
            _ordered("death_date", "enrollment_start", "death"),
        ),
        date_column="enrollment_start",
        person_level=True,
    ),
    Table(
        "providers",
        "Organisations that deliver services, with capacity in the service line's natural unit.",
        (
            Column("provider_id", "string", "Provider key.", required=True, pattern=_ID_PATTERN),
            Column("name", "string", "Organisation name.", required=True),
            _service_line(),
            Column("region_id", "string", "Base region.", required=True, references="regions.region_id"),
            Column("regions_served", "string", "Regions served besides the base region, separated by ';'.", list_separator=";"),
            Column("capacity", "float", "Capacity in `capacity_unit`; empty when the source does not say (directories).", minimum=0),
            Column(
                "capacity_unit",
                "string",
                "Unit of capacity: beds, staffed hours per week, caseload slots or response teams.",
                allowed=("beds", "staffed_hours_per_week", "slots", "teams", "units"),
            ),
            Column("status", "string", "Operating status at the end of the extract.", required=True, allowed=("active", "suspended", "closed")),
            Column("opened_date", "date", "Date the provider started operating, if known."),
            Column("closed_date", "date", "Date the provider stopped operating."),
        ),
        primary_key=("provider_id",),
        checks=(_ordered("closed_date", "opened_date", "provider"),),
    ),
    Table(
        "workforce",
        "Weekly direct-care staffing of each provider.",
        (
            _provider_ref(),
            Column("week_start", "date", "Monday of the week.", required=True),
            Column("headcount", "integer", "Direct-care staff employed.", required=True, unit="people", minimum=0),
            Column("vacancies", "integer", "Budgeted positions unfilled.", unit="positions", minimum=0),
            Column("hires", "integer", "Staff hired this week.", unit="people", minimum=0),
            Column("separations", "integer", "Staff who left this week.", unit="people", minimum=0),
            Column("overtime_hours", "float", "Overtime worked this week.", unit="hours", minimum=0),
            Column("training_completion", "float", "Share of staff with required training complete.", unit="fraction", minimum=0, maximum=1),
        ),
        primary_key=("provider_id", "week_start"),
        checks=(
            RowCheck("week_starts_monday", "isodow(week_start) <> 1", "week_start is not a Monday", ("week_start",)),
        ),
        date_column="week_start",
    ),
    Table(
        "referrals",
        "Requests for a service for a member, from receipt to start of care.",
        (
            Column("referral_id", "string", "Referral key.", required=True, pattern=_ID_PATTERN),
            _member_ref(),
            _service_line("Service line requested."),
            Column("received_date", "date", "Date the referral was received.", required=True),
            Column("authorized_date", "date", "Date the service was authorised."),
            Column("start_of_care_date", "date", "Date the first service was delivered."),
            Column("hours_per_week", "float", "Hours per week requested.", unit="hours/week", minimum=0, maximum=168),
            Column(
                "status",
                "string",
                "Status at the end of the extract.",
                required=True,
                allowed=("pending", "authorized", "started", "closed", "withdrawn", "denied"),
            ),
        ),
        primary_key=("referral_id",),
        checks=(
            _ordered("authorized_date", "received_date", "referral"),
            _ordered("start_of_care_date", "authorized_date", "referral"),
        ),
        date_column="received_date",
        person_level=True,
    ),
    Table(
        "authorizations",
        "Authorised service: which provider serves a member, for how many hours, over which dates.",
        (
            Column("authorization_id", "string", "Authorisation key.", required=True, pattern=_ID_PATTERN),
            Column("referral_id", "string", "The referral that led to it, if any.", references="referrals.referral_id"),
            _member_ref(),
            _provider_ref(),
            _service_line(),
            Column("start_date", "date", "First authorised day.", required=True),
            Column("end_date", "date", "Last authorised day.", required=True),
            Column("hours_per_week", "float", "Authorised hours per week.", required=True, unit="hours/week", minimum=0, maximum=168),
        ),
        primary_key=("authorization_id",),
        checks=(_ordered("end_date", "start_date", "authorisation"),),
        date_column="start_date",
        person_level=True,
    ),
    Table(
        "visits",
        "Scheduled home and community visits and what happened (electronic visit verification).",
        (
            Column("visit_id", "string", "Visit key.", required=True, pattern=_ID_PATTERN),
            Column("authorization_id", "string", "Authorisation the visit is billed to.", required=True, references="authorizations.authorization_id"),
            _member_ref(),
            _provider_ref(),
            Column("scheduled_date", "date", "Scheduled day.", required=True),
            Column(
                "status",
                "string",
                "Outcome.",
                required=True,
                allowed=("delivered", "missed_provider", "missed_member"),
            ),
            Column("hours", "float", "Scheduled hours.", required=True, unit="hours", minimum=0, maximum=24),
        ),
        primary_key=("visit_id",),
        date_column="scheduled_date",
        person_level=True,
    ),
    Table(
        "encounters",
        "Facility episodes: emergency visits, inpatient and observation stays, SNF stays, crisis episodes.",
        (
            Column(
                "encounter_id",
                "string",
                "Encounter key (a hospital account number in most sources), pseudonymised at ingest.",
                required=True,
                pseudonymised=True,
            ),
            _member_ref(),
            Column("facility_id", "string", "Facility or team that provided the care.", references="providers.provider_id"),
            Column("encounter_class", "string", "Kind of episode.", required=True, allowed=ENCOUNTER_CLASSES),
            Column("admit_date", "date", "Day the episode began.", required=True),
            Column("ready_for_discharge_date", "date", "Day the member was medically ready to leave; later days are delayed discharge."),
            Column("discharge_date", "date", "Day the episode ended; empty while ongoing."),
            Column("discharge_disposition", "string", "Where the member went.", allowed=DISCHARGE_DISPOSITIONS),
            Column("primary_diagnosis", "string", "Primary diagnosis, ICD-10-CM with its dot.", pattern=_ICD10),
        ),
        primary_key=("encounter_id",),
        checks=(
            _ordered("discharge_date", "admit_date", "encounter"),
            _ordered("ready_for_discharge_date", "admit_date", "encounter"),
            _ordered("discharge_date", "ready_for_discharge_date", "encounter"),
        ),
        date_column="admit_date",
        person_level=True,
    ),
    Table(
        "incidents",
        "Critical incidents reported by or about providers.",
        (
            Column("incident_id", "string", "Incident key.", required=True, pattern=_ID_PATTERN),
            _provider_ref(),
            _member_ref(required=False),
            Column("incident_date", "date", "Day of the incident.", required=True),
            Column(
                "incident_type",
                "string",
                "Kind of incident.",
                required=True,
                allowed=("fall", "medication_error", "abuse_neglect", "missed_care", "injury", "other"),
            ),
            Column("severity", "string", "Severity.", required=True, allowed=SEVERITY),
        ),
        primary_key=("incident_id",),
        date_column="incident_date",
        person_level=True,
    ),
    Table(
        "complaints",
        "Complaints and grievances about providers.",
        (
            Column("complaint_id", "string", "Complaint key.", required=True, pattern=_ID_PATTERN),
            _provider_ref(),
            _member_ref(required=False),
            Column("complaint_date", "date", "Day the complaint was received.", required=True),
            Column(
                "complaint_type",
                "string",
                "Subject of the complaint.",
                required=True,
                allowed=("quality", "timeliness", "staff_conduct", "access", "billing", "other"),
            ),
            Column("severity", "string", "Severity.", required=True, allowed=SEVERITY),
        ),
        primary_key=("complaint_id",),
        date_column="complaint_date",
        person_level=True,
    ),
    Table(
        "housing_events",
        "Changes in a member's housing status.",
        (
            Column("housing_event_id", "string", "Event key.", required=True, pattern=_ID_PATTERN),
            _member_ref(),
            Column("event_date", "date", "Day the new status began.", required=True),
            Column("housing_status", "string", "New status.", required=True, allowed=HOUSING_STATUS),
        ),
        primary_key=("housing_event_id",),
        date_column="event_date",
        person_level=True,
    ),
    Table(
        "unit_costs",
        "Unit costs used to cost scenarios.",
        (
            Column("item", "string", "What is costed, e.g. hcbs_hour or inpatient_day.", required=True, pattern=_ID_PATTERN),
            Column("unit", "string", "Unit the cost is per.", required=True, allowed=("hour", "visit", "bed_day", "episode", "encounter", "member_month")),
            Column("cost", "float", "Cost per unit.", required=True, unit="currency", minimum=0),
            Column("currency", "string", "ISO 4217 currency code.", required=True, pattern=r"^[A-Z]{3}$"),
            Column("year", "integer", "Price year.", required=True, unit="year", minimum=1990, maximum=2100),
        ),
        primary_key=("item",),
    ),
    Table(
        "diagnoses",
        "Diagnoses on record for a member (problem lists, encounter and claim diagnoses), for comorbidity scores.",
        (
            Column("diagnosis_id", "string", "Diagnosis key, pseudonymised at ingest.", required=True, pseudonymised=True),
            _member_ref(),
            Column("encounter_id", "string", "Encounter the diagnosis was recorded at, pseudonymised like encounters.encounter_id.", pseudonymised=True),
            Column("code_system", "string", "Coding system of `code`.", required=True, allowed=CODE_SYSTEMS),
            Column("code", "string", "Diagnosis code as recorded (ICD-10-CM with or without its dot, SNOMED CT concept id).", required=True),
            Column("onset_date", "date", "Day the condition was first recorded.", required=True),
            Column("abatement_date", "date", "Day the condition resolved, if it did."),
        ),
        primary_key=("diagnosis_id",),
        checks=(_ordered("abatement_date", "onset_date", "diagnosis"),),
        date_column="onset_date",
        person_level=True,
    ),
    Table(
        "claims",
        "Claims and payments for a member's care (the payer's view of cost).",
        (
            Column("claim_id", "string", "Claim key, pseudonymised at ingest.", required=True, pseudonymised=True),
            _member_ref(),
            Column("encounter_id", "string", "Encounter the claim is for, pseudonymised like encounters.encounter_id.", pseudonymised=True),
            Column("service_date", "date", "First day of service.", required=True),
            Column("billed_amount", "float", "Total charged.", unit="currency", minimum=0),
            Column("paid_amount", "float", "Amount the payer paid.", unit="currency", minimum=0),
            Column("program", "string", "Programme or payer type that paid.", allowed=PROGRAMS),
        ),
        primary_key=("claim_id",),
        date_column="service_date",
        person_level=True,
    ),
    Table(
        "member_features",
        "Derived after every load: what the risk models and the engine need about each member.",
        (
            Column("member_id", "string", "The member.", required=True, references="members.member_id", pseudonymised=True),
            Column("as_of", "date", "Reference day: the last day with data in the workspace.", required=True),
            Column("age", "integer", "Age in whole years on `as_of`, from the birth year (so within a year).", unit="years", minimum=0),
            Column("age_band", "string", "Age band on `as_of`.", required=True, allowed=AGE_BANDS),
            Column("charlson_index", "integer", "Charlson comorbidity index, 1987 weights, ICD-10 codes (Quan 2005), without age.", minimum=0),
            Column("charlson_quan", "integer", "Charlson index with Quan 2011 updated weights.", minimum=0),
            Column("coded_diagnoses", "integer", "ICD-10 diagnoses on record (the Charlson indices see only these).", minimum=0),
            Column("ed_visits_12m", "integer", "Emergency visits in the 365 days before `as_of`.", minimum=0),
            Column("admissions_12m", "integer", "Inpatient admissions in the 365 days before `as_of`.", minimum=0),
            Column("crisis_episodes_12m", "integer", "Crisis episodes in the 365 days before `as_of`.", minimum=0),
            Column("acuity_tier", "integer", "Acuity tier from the source, or derived when the source has none.", required=True, minimum=1, maximum=4),
            Column("acuity_source", "string", "Where the acuity tier came from.", required=True, allowed=("source", "derived")),
        ),
        primary_key=("member_id",),
        person_level=True,
        derived=True,
    ),
)

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}


def table(name: str) -> Table:
    """The table called `name`, or a KeyError that lists the known tables."""
    try:
        return TABLES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; canonical tables: {', '.join(TABLES_BY_NAME)}") from None


def load_order() -> list[Table]:
    """Tables ordered so that every table comes after the tables it references."""
    done: list[str] = []
    pending = list(TABLES)
    while pending:
        for t in pending:
            deps = {c.references.split(".")[0] for c in t.foreign_keys} - {t.name}
            if deps <= set(done):
                done.append(t.name)
                pending.remove(t)
                break
        else:  # pragma: no cover - the model above is acyclic; a test checks it
            raise ValueError("cyclic references in the canonical model")
    return [TABLES_BY_NAME[n] for n in done]

"""Write a simulated county as a canonical extract (CSV or Parquet), optionally with known defects."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from caretwin._version import __version__
from caretwin.files import new_folder
from caretwin.model.schema import (
    DISCHARGE_DISPOSITIONS,
    ENCOUNTER_CLASSES,
    HOUSING_STATUS,
    RACE_ETHNICITY,
    SCHEMA_VERSION,
    SERVICE_LINES,
    SEVERITY,
)
from caretwin.simulate.params import Params
from caretwin.simulate.state import LINE
from caretwin.synth.county import DX_CODES, LANGUAGES, NEVER, County, simulate_county
from caretwin.synth.defects import generated_tables, inject_defects
from caretwin.synth.params import CountyParams

FORMATS = ("csv", "parquet")
AUTH_DAYS = 365  # authorisations are renewed yearly
UNIT_COSTS = (  # illustrative 2024 US Medicaid-scale unit costs; replace with the agency's fee schedule
    ("hcbs_hour", "hour", 28.0), ("home_health_visit", "visit", 145.0), ("ed_visit", "encounter", 780.0),
    ("inpatient_day", "bed_day", 2900.0), ("snf_day", "bed_day", 265.0),
    ("nursing_facility_day", "bed_day", 240.0), ("csu_day", "bed_day", 950.0),
    ("mobile_crisis_episode", "episode", 1100.0), ("care_coordination_month", "member_month", 120.0),
    ("supportive_housing_day", "bed_day", 45.0),
)
INCIDENT_TYPES = ("fall", "medication_error", "abuse_neglect", "missed_care", "injury", "other")
COMPLAINT_TYPES = ("quality", "timeliness", "staff_conduct", "access", "billing", "other")
REFERRAL_STATUS = ("pending", "authorized", "started", "closed", "withdrawn")
VISIT_STATUS = ("delivered", "missed_provider", "missed_member")
RURALITY_NAMES = ("urban", "suburban", "rural", "frontier")
LINE_LABEL = {
    "hcbs": "Home Care", "home_health": "Home Health", "behavioral_health": "Behavioral Health",
    "mobile_crisis": "Mobile Crisis Team", "crisis_stabilization": "Crisis Stabilization Unit",
    "snf": "Skilled Nursing", "nursing_facility": "Nursing Facility", "hospital": "Hospital", "supportive_housing": "Supportive Housing",
    "care_coordination": "Care Coordination",
}


@dataclass
class ExtractResult:
    path: Path
    rows: dict[str, int]
    manifest: dict[str, Any]


def _codes(values: tuple[str, ...]) -> str:
    """A DuckDB list literal to map 0-based codes to labels: `{list}[code + 1]`."""
    return "[" + ", ".join("'" + v + "'" for v in values) + "]"


def _day(col: str, never: bool = True) -> str:
    expr = f"(DATE '{{start}}' + CAST({col} AS INTEGER))"
    return f"CASE WHEN {col} < {NEVER - 1} THEN {expr} END" if never else expr


class _Builder:
    """Turns the county's arrays into canonical tables (`t_<name>`, each with a row order `_ord`)."""

    def __init__(self, county: County, con: duckdb.DuckDBPyConnection):
        self.c, self.con, self.p = county, con, county.params
        self.fmt = {"start": self.p.start.isoformat()}

    def register(self, name: str, cols: dict[str, np.ndarray]) -> None:
        self.con.register(name, pa.table({k: np.ascontiguousarray(v) for k, v in cols.items()}))

    def create(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE TABLE t_{name} AS {sql.format(**self.fmt)}")

    def build(self) -> None:
        c, p, D = self.c, self.p, self.p.days
        R = p.regions
        reg = c.regions
        self.register("r", {"i": np.arange(R), "rural": reg["rurality"], "pop": reg["population"], "lat": reg["lat"], "lon": reg["lon"]})
        self.create("regions", f"""SELECT i AS _ord, 'R' || lpad(CAST(i + 1 AS VARCHAR), 2, '0') AS region_id,
            'Region ' || lpad(CAST(i + 1 AS VARCHAR), 2, '0') AS name, {_codes(RURALITY_NAMES)}[rural + 1] AS rurality,
            pop AS population, lat, lon FROM r""")
        a, b = np.meshgrid(np.arange(R), np.arange(R), indexing="ij")
        self.register("tt", {"a": a.ravel(), "b": b.ravel(), "minutes": c.travel.ravel()})
        self.create("travel_times", """SELECT a * 1000 + b AS _ord, 'R' || lpad(CAST(a + 1 AS VARCHAR), 2, '0') AS from_region_id,
            'R' || lpad(CAST(b + 1 AS VARCHAR), 2, '0') AS to_region_id, minutes FROM tt""")

        m = c.members
        e = c.episodes
        ever_hcbs = np.zeros(p.members, bool)
        ever_hcbs[e.member[(e.line == LINE["hcbs"]) & (e.started < D) & (e.ended >= 0)]] = True
        rng = np.random.default_rng([p.seed, 17])
        keep = (m["enroll_start"] < D) & (m["enroll_end"] >= 0)
        self.register("m", {
            "i": np.arange(p.members), "keep": keep, "byear": m["birth_year"], "sex": m["sex"], "race": m["race"],
            "lang": m["language"], "region": m["region"], "es": m["enroll_start"], "ee": m["enroll_end"],
            "tier": m["tier"], "chronic": m["chronic"], "smi": m["smi"], "sud": m["sud"], "housing": m["housing"],
            "cg": m["caregiver"], "death": m["death"], "band": m["age_band"], "hcbs": ever_hcbs,
            "mc": rng.random(p.members) < 0.8, "chip": rng.random(p.members) < 0.5,
        })
        self.create("members", f"""SELECT i AS _ord, 'M' || lpad(CAST(i + 1 AS VARCHAR), 8, '0') AS member_id,
            CAST(byear AS BIGINT) AS birth_year, ['female', 'male'][sex + 1] AS sex, {_codes(RACE_ETHNICITY)}[race + 1] AS race_ethnicity,
            {_codes(LANGUAGES)}[lang + 1] AS language, 'R' || lpad(CAST(region + 1 AS VARCHAR), 2, '0') AS region_id,
            {_day('es', never=False)} AS enrollment_start, {_day('ee')} AS enrollment_end,
            concat_ws(';', 'medicaid', CASE WHEN band = 0 AND chip THEN 'chip' END, CASE WHEN band >= 2 THEN 'dual' END,
                      CASE WHEN hcbs THEN 'hcbs_waiver' END, CASE WHEN mc THEN 'managed_care' END) AS programs,
            CAST(tier AS BIGINT) AS acuity_tier, CAST(chronic AS BIGINT) AS chronic_conditions,
            smi AS serious_mental_illness, sud AS substance_use_disorder, {_codes(HOUSING_STATUS)}[housing + 1] AS housing_status,
            cg AS caregiver_support, {_day('death')} AS death_date FROM m WHERE keep""")

        pr = c.providers
        P = len(pr["line"])
        names, served = [], []
        counter: dict[tuple[int, int], int] = {}
        for k in range(P):
            line, r = SERVICE_LINES[pr["line"][k]], int(pr["region"][k])
            counter[(r, line)] = counter.get((r, line), 0) + 1
            names.append(f"Region {r + 1:02d} {LINE_LABEL[line]} {counter[(r, line)]}")
            near = np.flatnonzero((c.travel[r] <= c.engine_params.travel_limit_minutes) & (np.arange(R) != r)) if pr["is_staffed"][k] else []
            served.append(";".join(f"R{j + 1:02d}" for j in near) or None)
        unit = np.where(pr["is_staffed"], 1, np.where(np.isin(pr["line"], [LINE["snf"], LINE["hospital"], LINE["crisis_stabilization"],
                                                                                  LINE["nursing_facility"]]), 0,
                        np.where(pr["line"] == LINE["mobile_crisis"], 3, np.where(pr["line"] == LINE["supportive_housing"], 4, 2))))
        self.register("pr", {"i": np.arange(P), "line": pr["line"], "region": pr["region"], "cap": np.round(pr["capacity"], 1),
                             "unit": unit, "open": pr["open"], "closed": pr["closed_day"], "opened": pr["opened_day"]})
        self.con.register("pnames", pa.table({"i": np.arange(P), "name": names, "served": served}))
        self.create("providers", f"""SELECT pr.i AS _ord, 'P' || lpad(CAST(pr.i + 1 AS VARCHAR), 5, '0') AS provider_id, name,
            {_codes(SERVICE_LINES)}[line + 1] AS service_line, 'R' || lpad(CAST(region + 1 AS VARCHAR), 2, '0') AS region_id,
            served AS regions_served, cap AS capacity,
            ['beds', 'staffed_hours_per_week', 'slots', 'teams', 'units'][unit + 1] AS capacity_unit,
            CASE WHEN open THEN 'active' ELSE 'closed' END AS status, {_day('opened', never=False)} AS opened_date,
            {_day('closed')} AS closed_date FROM pr JOIN pnames USING (i)""")

        w = c.logs["workforce"].columns()
        self.register("w", w)
        self.create("workforce", f"""SELECT row_number() OVER (ORDER BY day, provider) AS _ord,
            'P' || lpad(CAST(provider + 1 AS VARCHAR), 5, '0') AS provider_id, {_day('day', never=False)} AS week_start,
            CAST(headcount AS BIGINT) AS headcount, CAST(vacancies AS BIGINT) AS vacancies, CAST(hires AS BIGINT) AS hires,
            CAST(separations AS BIGINT) AS separations, CAST(overtime AS DOUBLE) AS overtime_hours,
            CAST(training AS DOUBLE) AS training_completion FROM w WHERE day >= 0 AND day < {D}""")

        self._referrals_and_authorizations(D)
        self._visits(D)
        self._encounters(D)
        self.create("diagnoses", """SELECT _ord, 'DX' || substr(encounter_id, 2) AS diagnosis_id, member_id, encounter_id,
            'icd10cm' AS code_system, primary_diagnosis AS code, admit_date AS onset_date,
            CAST(NULL AS DATE) AS abatement_date FROM t_encounters""")
        for log, types in (("incidents", INCIDENT_TYPES), ("complaints", COMPLAINT_TYPES)):
            cols = c.logs[log].columns()
            self.register("q", cols)
            key, date, kind = {"incidents": ("incident", "incident_date", "incident_type"),
                               "complaints": ("complaint", "complaint_date", "complaint_type")}[log]
            prefix = "IN" if log == "incidents" else "CP"
            self.create(log, f"""SELECT row_number() OVER (ORDER BY day, provider, member) AS _ord,
                '{prefix}' || lpad(CAST(row_number() OVER (ORDER BY day, provider, member) AS VARCHAR), 7, '0') AS {key}_id,
                'P' || lpad(CAST(provider + 1 AS VARCHAR), 5, '0') AS provider_id,
                CASE WHEN member >= 0 THEN 'M' || lpad(CAST(member + 1 AS VARCHAR), 8, '0') END AS member_id,
                {_day('day', never=False)} AS {date}, {_codes(types)}[kind + 1] AS {kind},
                {_codes(SEVERITY)}[severity + 1] AS severity FROM q WHERE day >= 0 AND day < {D}""")
            self.con.unregister("q")
        h = c.logs["housing"].columns()
        self.register("h", h)
        self.create("housing_events", f"""SELECT row_number() OVER (ORDER BY day, member) AS _ord,
            'H' || lpad(CAST(row_number() OVER (ORDER BY day, member) AS VARCHAR), 8, '0') AS housing_event_id,
            'M' || lpad(CAST(member + 1 AS VARCHAR), 8, '0') AS member_id, {_day('day', never=False)} AS event_date,
            {_codes(HOUSING_STATUS)}[status + 1] AS housing_status FROM h WHERE day >= 0 AND day < {D}""")
        self.con.register("uc", pa.table({"item": [u[0] for u in UNIT_COSTS], "unit": [u[1] for u in UNIT_COSTS],
                                          "cost": [u[2] for u in UNIT_COSTS]}))
        self.create("unit_costs", f"SELECT row_number() OVER (ORDER BY item) AS _ord, item, unit, cost, 'USD' AS currency, "
                                  f"CAST({p.start.year} AS BIGINT) AS year FROM uc")

    def _referrals_and_authorizations(self, D: int) -> None:
        e = self.c.episodes
        cols = e.columns()
        self.register("e", {k: cols[k] for k in ("member", "line", "received", "authorised", "started", "ended", "status", "hours", "provider")}
                      | {"i": np.arange(e.n)})
        live = f"received < {D} AND ended >= 0"
        self.create("referrals", f"""SELECT i AS _ord, 'RF' || lpad(CAST(i + 1 AS VARCHAR), 8, '0') AS referral_id,
            'M' || lpad(CAST(member + 1 AS VARCHAR), 8, '0') AS member_id, {_codes(SERVICE_LINES)}[line + 1] AS service_line,
            {_day('received', never=False)} AS received_date, {_day('authorised')} AS authorized_date,
            {_day('started')} AS start_of_care_date, CAST(hours AS DOUBLE) AS hours_per_week,
            CASE WHEN status = 3 AND started >= {NEVER - 1} THEN 'withdrawn' ELSE {_codes(REFERRAL_STATUS)}[status + 1] END AS status
            FROM e WHERE {live}""")
        # one authorisation per year of service, renewed on the anniversary of the start of care
        self.create("authorizations", f"""WITH s AS (
                SELECT *, least(ended, {D - 1}) AS last FROM e WHERE started < {NEVER - 1} AND {live} AND started < {D}
            ), b AS (
                SELECT s.*, k FROM s, range(CAST(greatest(0, ceil((-started - {AUTH_DAYS - 1}) / {AUTH_DAYS})) AS BIGINT),
                                            CAST(floor((last - started) / {AUTH_DAYS}) AS BIGINT) + 1) r(k)
            )
            SELECT i * 100 + k AS _ord, 'AU' || lpad(CAST(i + 1 AS VARCHAR), 8, '0') || '-' || CAST(k + 1 AS VARCHAR) AS authorization_id,
                'RF' || lpad(CAST(i + 1 AS VARCHAR), 8, '0') AS referral_id, 'M' || lpad(CAST(member + 1 AS VARCHAR), 8, '0') AS member_id,
                'P' || lpad(CAST(provider + 1 AS VARCHAR), 5, '0') AS provider_id, {_codes(SERVICE_LINES)}[line + 1] AS service_line,
                DATE '{{start}}' + CAST(started + k * {AUTH_DAYS} AS INTEGER) AS start_date,
                DATE '{{start}}' + CAST(CASE WHEN ended < {NEVER - 1} THEN least(ended, started + (k + 1) * {AUTH_DAYS} - 1)
                                     ELSE started + (k + 1) * {AUTH_DAYS} - 1 END AS INTEGER) AS end_date,
                CAST(hours AS DOUBLE) AS hours_per_week FROM b""")

    def _visits(self, D: int) -> None:
        v = self.c.logs["visits"].columns()
        e = self.c.episodes
        ep = v["episode"]
        self.register("v", {"ep": ep, "day": v["day"], "status": v["status"], "hours": v["hours"],
                            "member": e.member[ep], "provider": e.provider[ep], "started": e.started[ep]})
        self.create("visits", f"""SELECT row_number() OVER (ORDER BY day, ep) AS _ord,
            'V' || lpad(CAST(row_number() OVER (ORDER BY day, ep) AS VARCHAR), 10, '0') AS visit_id,
            'AU' || lpad(CAST(ep + 1 AS VARCHAR), 8, '0') || '-' || CAST((day - started) // {AUTH_DAYS} + 1 AS VARCHAR) AS authorization_id,
            'M' || lpad(CAST(member + 1 AS VARCHAR), 8, '0') AS member_id, 'P' || lpad(CAST(provider + 1 AS VARCHAR), 5, '0') AS provider_id,
            {_day('day', never=False)} AS scheduled_date, {_codes(VISIT_STATUS)}[status + 1] AS status,
            round(CAST(hours AS DOUBLE), 2) AS hours FROM v WHERE day < {D}""")

    def _encounters(self, D: int) -> None:
        s = self.c.stays.columns()
        self.register("st", s | {"i": np.arange(self.c.stays.n)})
        self.create("encounters", f"""SELECT i AS _ord, 'E' || lpad(CAST(i + 1 AS VARCHAR), 9, '0') AS encounter_id,
            'M' || lpad(CAST(member + 1 AS VARCHAR), 8, '0') AS member_id,
            CASE WHEN facility >= 0 THEN 'P' || lpad(CAST(facility + 1 AS VARCHAR), 5, '0') END AS facility_id,
            {_codes(ENCOUNTER_CLASSES)}[cls + 1] AS encounter_class, {_day('admit', never=False)} AS admit_date,
            CASE WHEN ready < {D} THEN {_day('ready', never=False)} END AS ready_for_discharge_date,
            CASE WHEN discharge < {D} THEN {_day('discharge', never=False)} END AS discharge_date,
            CASE WHEN discharge < {D} AND disposition >= 0 THEN {_codes(DISCHARGE_DISPOSITIONS)}[disposition + 1] END AS discharge_disposition,
            {_codes(DX_CODES)}[dx + 1] AS primary_diagnosis
            FROM st WHERE admit < {D} AND discharge >= 0""")


def _write(con: duckdb.DuckDBPyConnection, out: Path, fmt: str) -> dict[str, int]:
    rows = {}
    for t in generated_tables(con):
        cols = ", ".join(t.column_names)
        target = out / f"{t.name}.{fmt}"
        opts = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT parquet, COMPRESSION zstd"
        con.execute(f"COPY (SELECT {cols} FROM t_{t.name} ORDER BY _ord) TO '{target}' ({opts})")
        rows[t.name] = con.execute(f"SELECT count(*) FROM t_{t.name}").fetchone()[0]
    return rows


def write_extract(params: CountyParams, out: str | os.PathLike[str], *, fmt: str = "csv", defects: float = 0.0,
                  engine_params: Params | None = None) -> ExtractResult:
    """Simulate a county and write it to `out` as a canonical extract with a manifest.

    The manifest records every generating parameter, the reference population and, when
    `defects` > 0, every injected defect with its table, row, key and column. The folder
    is written next to `out` and renamed into place, so a failure leaves nothing half-written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    if not 0.0 <= defects < 0.5:
        raise ValueError(f"defect rate must be in [0, 0.5), not {defects}")
    target = Path(out).absolute()
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target}: already exists and is not empty")
    county = simulate_county(params, engine_params)
    with new_folder(target) as tmp:
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        _Builder(county, con).build()
        injected = inject_defects(con, defects, params.seed) if defects > 0 else []
        rows = _write(con, tmp, fmt)
        con.close()
        manifest = {
            "generator": "caretwin.synth",
            "caretwin_version": __version__,
            "schema_version": SCHEMA_VERSION,
            "format": fmt,
            "window": {"start": params.start.isoformat(), "days": params.days},
            "parameters": params.to_dict(),
            "engine_parameters": county.engine_params.by_module(),
            "rows": rows,
            "reference_population": {"race_ethnicity_by_region": county.reference_population},
            "defects": {"rate": defects, "count": len(injected), "items": injected},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return ExtractResult(target, rows, manifest)

"""The engine's starting state from a workspace: who is enrolled, waiting, served or in a bed, and the
providers and staff, as of the last day the data cover."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

from caretwin.errors import CaretwinError
from caretwin.model.schema import HOUSING_STATUS, RACE_ETHNICITY, RURALITY, SEX
from caretwin.simulate.modules.services import UNKNOWN_END
from caretwin.simulate.state import (
    ACTIVE,
    CSU,
    ENROLLED,
    HOME,
    HOSPITAL,
    INSTITUTIONALISED,
    LINE,
    NONE,
    NURSING,
    PENDING,
    SNF,
    WAITING,
    Columns,
    World,
)
from caretwin.workspace import Workspace

# Medicare covers at most 100 days of post-acute SNF care (42 CFR 409.61(b)); a stay open longer is long-stay care
POST_ACUTE_DAYS = 100
JOINER_COLUMNS = ("region", "age", "sex", "race", "tier", "smi", "sud", "caregiver", "housing")
MIN_JOINERS = 20  # fewer recent joiners than this: new members look like the members now enrolled
HOURS_PER_FTE = 35.0  # used only to turn staffed hours into headcount when the data have no workforce rows


def _codes(values: tuple[str, ...]) -> str:
    """SQL expression mapping a label to its 0-based index in `values` (NULL when absent)."""
    return "list_position([" + ", ".join(f"'{v}'" for v in values) + "], {col}) - 1"


def data_end(ws: Workspace) -> date:
    """The last day the workspace's activity tables cover."""
    (d,) = ws.con.execute("""SELECT max(d) FROM (
        SELECT max(scheduled_date) AS d FROM visits UNION ALL SELECT max(admit_date) FROM encounters
        UNION ALL SELECT max(received_date) FROM referrals UNION ALL SELECT max(week_start) FROM workforce
        UNION ALL SELECT max(enrollment_start) FROM members)""").fetchone()
    if d is None:
        raise CaretwinError(f"{ws.path}: the workspace holds no members or activity to start a simulation from")
    return d


def from_workspace(ws: Workspace, as_of: date | None = None) -> World:
    """Build the World the engine starts from, as of the end of `as_of` (default: the data's last day)."""
    con = ws.con
    as_of = as_of or data_end(ws)
    day0 = as_of + timedelta(days=1)
    regions = con.execute("SELECT region_id, rurality, lat, lon FROM regions ORDER BY region_id").fetchall()
    if not regions:
        raise CaretwinError(f"{ws.path}: no regions; load a regions table before simulating")
    region_ids = tuple(r[0] for r in regions)
    rindex = {r: i for i, r in enumerate(region_ids)}
    known = RURALITY[:4]  # urban .. frontier; unknown is treated as suburban
    rurality = np.array([known.index(r[1]) if r[1] in known else 1 for r in regions], np.int8)
    R = len(region_ids)
    travel = np.full((R, R), np.inf, np.float32)
    np.fill_diagonal(travel, 0.0)
    lat = np.array([r[2] if r[2] is not None else np.nan for r in regions])
    lon = np.array([r[3] if r[3] is not None else np.nan for r in regions])
    km = np.hypot((lat[:, None] - lat[None, :]) * 111.0, (lon[:, None] - lon[None, :]) * 85.0)
    est = np.where(np.isfinite(km), 10.0 + km, np.inf)  # about 60 km/h door to door when no travel times are given
    travel = np.minimum(travel, est.astype(np.float32))
    for a, b, minutes in con.execute("SELECT from_region_id, to_region_id, minutes FROM travel_times").fetchall():
        if a in rindex and b in rindex:
            travel[rindex[a], rindex[b]] = minutes
    con.execute("CREATE OR REPLACE TEMP TABLE _sim_regions AS SELECT * FROM (VALUES " +
                ", ".join(f"('{r}', {i})" for r, i in rindex.items()) + ") t(region_id, i)")
    d = f"DATE '{as_of.isoformat()}'"
    members = con.execute(f"""
        WITH h AS (
            SELECT member_id, arg_max(housing_status, event_date) AS status FROM housing_events
            WHERE event_date <= {d} GROUP BY 1
        ), ref AS (
            SELECT member_id, arg_max(struct_pack(service_line, received_date, authorized_date, start_of_care_date,
                                                  hours_per_week, status, referral_id), received_date) AS r
            FROM referrals WHERE service_line IN ('hcbs', 'home_health') AND received_date <= {d} GROUP BY 1
        ), au AS (
            SELECT referral_id, arg_max(struct_pack(provider_id, hours_per_week), start_date) AS a FROM authorizations
            -- in force on the run's first day: a service whose authorisation ended on the last day has ended,
            -- while one renewed from the next day goes on
            WHERE start_date <= DATE '{day0}' AND (end_date IS NULL OR end_date >= DATE '{day0}') GROUP BY 1
        ), stay AS (
            SELECT e.member_id, arg_max(struct_pack(e.encounter_class, e.admit_date, e.ready_for_discharge_date,
                                                    p.service_line), e.admit_date) AS s
            FROM encounters e LEFT JOIN providers p ON p.provider_id = e.facility_id
            WHERE e.admit_date <= {d} AND (e.discharge_date IS NULL OR e.discharge_date > {d})
              AND e.encounter_class IN ('inpatient', 'snf', 'crisis') GROUP BY 1
        )
        SELECT m.member_id, r.i AS region,
               coalesce(f.age, year({d}) - m.birth_year, 40) AS age,
               coalesce({_codes(SEX).format(col='m.sex')}, 3) AS sex,
               coalesce({_codes(RACE_ETHNICITY).format(col='m.race_ethnicity')}, 8) AS race,
               least(greatest(coalesce(m.acuity_tier, f.acuity_tier, 2), 1), 4) AS tier,
               coalesce(m.serious_mental_illness, false) AS smi, coalesce(m.substance_use_disorder, false) AS sud,
               coalesce(m.caregiver_support, true) AS caregiver,
               coalesce({_codes(HOUSING_STATUS).format(col='coalesce(h.status, m.housing_status)')}, 0) AS housing,
               ref.r.service_line AS line,
               CASE WHEN ref.r IS NULL THEN 'none'
                    WHEN ref.r.start_of_care_date <= {d} AND au.a.provider_id IS NOT NULL THEN 'active'
                    WHEN ref.r.start_of_care_date <= {d} THEN 'ended'
                    WHEN ref.r.status = 'withdrawn' THEN 'withdrawn'
                    WHEN ref.r.authorized_date <= {d} THEN 'waiting'
                    ELSE 'pending' END AS state,
               ref.r.received_date - DATE '{day0}' AS referred,
               coalesce(ref.r.authorized_date, ref.r.received_date) - DATE '{day0}' AS authorised,
               coalesce(au.a.hours_per_week, ref.r.hours_per_week, 0) AS hours, au.a.provider_id AS provider_id,
               stay.s.encounter_class AS stay_class, stay.s.service_line AS stay_line,
               coalesce(stay.s.ready_for_discharge_date, stay.s.admit_date + 4) - DATE '{day0}' AS ready,
               stay.s.admit_date - DATE '{day0}' AS admitted, m.enrollment_start - DATE '{day0}' AS enrolled
        FROM members m JOIN _sim_regions r USING (region_id)
        LEFT JOIN member_features f USING (member_id) LEFT JOIN h USING (member_id) LEFT JOIN ref USING (member_id)
        LEFT JOIN au ON au.referral_id = ref.r.referral_id LEFT JOIN stay USING (member_id)
        LEFT JOIN _member_order o USING (member_id)
        WHERE m.enrollment_start <= {d} AND (m.enrollment_end IS NULL OR m.enrollment_end > {d})
          AND (m.death_date IS NULL OR m.death_date > {d})
        ORDER BY o.seq, m.member_id""").fetchnumpy()
    if len(members["member_id"]) == 0:
        raise CaretwinError(f"{ws.path}: no member is enrolled on {as_of}; nothing to simulate")
    providers = con.execute(f"""
        WITH w AS (
            SELECT provider_id, arg_max(struct_pack(headcount, vacancies), week_start) AS w FROM workforce
            WHERE week_start <= {d} GROUP BY 1
        )
        SELECT p.provider_id, p.service_line, r.i AS region, coalesce(p.capacity, 0) AS capacity,
               w.w.headcount AS headcount, w.w.vacancies AS vacancies
        FROM providers p JOIN _sim_regions r USING (region_id) LEFT JOIN w USING (provider_id)
        WHERE coalesce(p.status, 'active') <> 'closed' AND (p.closed_date IS NULL OR p.closed_date > {d})
          AND (p.opened_date IS NULL OR p.opened_date <= {d})
        ORDER BY p.provider_id""").fetchnumpy()
    costs = dict(con.execute("SELECT item, arg_max(cost, year) FROM unit_costs GROUP BY 1").fetchall())
    con.execute("DROP TABLE _sim_regions")
    return _world(day0, region_ids, rurality, travel, members, providers, costs)


def _num(x) -> np.ndarray:
    """A fetched column as floats, NULL as NaN."""
    return np.ma.filled(np.ma.asarray(x).astype(float), np.nan)


def _obj(x) -> np.ndarray:
    """A fetched column as Python objects, NULL as None."""
    return np.ma.filled(np.ma.asarray(x).astype(object), None)


def _world(day0: date, region_ids, rurality, travel, m: dict, p: dict, costs: dict) -> World:
    n, P = len(m["member_id"]), len(p["provider_id"])
    pindex = {pid: k for k, pid in enumerate(p["provider_id"])}
    line = np.array([LINE.get(s, LINE["ambulatory"]) for s in p["service_line"]], np.int8)
    staffed = np.isin(line, (LINE["hcbs"], LINE["home_health"]))
    cap = np.nan_to_num(_num(p["capacity"]))
    on_record = _num(p["headcount"])
    known = np.isfinite(on_record)
    headcount = np.where(known, on_record, np.round(cap / HOURS_PER_FTE))
    budget = headcount + np.where(known, np.nan_to_num(_num(p["vacancies"])), 0.0)
    providers = Columns(line=line, region=np.asarray(p["region"], np.int16), capacity=np.where(staffed, 0.0, cap),
                        budget_fte=np.where(staffed, budget, 0.0), headcount=np.where(staffed, headcount, 0).astype(np.int32))
    state = _obj(m["state"])
    svc_line = np.array([LINE.get(s, 0) if s else 0 for s in _obj(m["line"])], np.int8)
    provider = np.array([pindex.get(x, -1) if x else -1 for x in _obj(m["provider_id"])], np.int32)
    # in service with a provider that is no longer open: waiting for another one
    svc = np.where(state == "active", np.where(provider >= 0, ACTIVE, WAITING),
                   np.where(state == "pending", PENDING, np.where(state == "waiting", WAITING, NONE)))
    svc = svc.astype(np.int8)
    hours = np.nan_to_num(_num(m["hours"])).astype(np.float32)
    committed = np.bincount(provider[svc == ACTIVE], weights=hours[svc == ACTIVE], minlength=P)
    providers["committed"] = committed
    stay_class, stay_line = _obj(m["stay_class"]), _obj(m["stay_line"])
    loc = np.full(n, HOME, np.int8)
    loc[stay_class == "inpatient"] = HOSPITAL
    loc[stay_class == "snf"] = SNF
    # long-stay residents: a stay in a nursing facility, or a SNF stay open longer than post-acute care lasts
    admitted = np.nan_to_num(_num(m["admitted"]), nan=0.0)
    resident = (stay_class == "snf") & ((stay_line == "nursing_facility") | (admitted < -POST_ACUTE_DAYS))
    loc[resident] = NURSING
    loc[(stay_class == "crisis") & (stay_line == "crisis_stabilization")] = CSU
    members = Columns(
        region=np.asarray(m["region"], np.int16), age=np.clip(np.asarray(m["age"], float), 0, 127).astype(np.int8),
        sex=np.asarray(m["sex"], np.int8), race=np.asarray(m["race"], np.int8), tier=np.asarray(m["tier"], np.int8),
        smi=np.asarray(m["smi"], bool), sud=np.asarray(m["sud"], bool), caregiver=np.asarray(m["caregiver"], bool),
        housing=np.asarray(m["housing"], np.int8), svc=svc, svc_line=svc_line, provider=np.where(svc == ACTIVE, provider, -1),
        hours=hours, ti_referred=np.nan_to_num(_num(m["referred"])).astype(np.int32),
        ti_authorised=np.nan_to_num(_num(m["authorised"])).astype(np.int32), loc=loc,
        ti_ready=np.nan_to_num(_num(m["ready"])).astype(np.int32),
        ti_service_end=np.full(n, UNKNOWN_END, np.int32),  # drawn per replication by the demand module
        status=np.where(resident, INSTITUTIONALISED, ENROLLED).astype(np.int8),
    )
    return World(start=day0, region_ids=tuple(region_ids), rurality=rurality, travel=travel, members=members,
                 providers=providers, provider_ids=tuple(p["provider_id"]), unit_costs=costs,
                 joiners=_joiners(members, np.nan_to_num(_num(m["enrolled"]), nan=-1e9), resident))


def _joiners(members: Columns, enrolled: np.ndarray, resident: np.ndarray) -> Columns:
    """Templates for new enrolment: members who joined in the last year, as they were on joining (younger by
    the years since); all members at home when fewer than MIN_JOINERS joined."""
    recent = (enrolled >= -365) & ~resident
    if recent.sum() < MIN_JOINERS:
        recent = ~resident
    years = np.floor(np.maximum(-enrolled[recent], 0) / 365.25)
    out = Columns({k: members[k][recent] for k in JOINER_COLUMNS})
    out["age"] = np.maximum(out["age"] - years, 0).astype(np.int8)
    return out



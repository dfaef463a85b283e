"""Labelled examples from a workspace: what was known about a member on a cut-off day, and what followed
within the outcome's horizon.

Two kinds of example. Member outcomes (ED visit, crisis, admission, placement, cost) take everyone enrolled
on cut-offs every `step_days` across the history. Readmission takes each hospital discharge, with the
discharge day as its cut-off. Either way every feature is from on or before the cut-off and every label
from after it; cut-offs leave `lookback_days` of history before them and the full horizon after them. A
member appears many times: evaluations split and resample by member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from caretwin.errors import CaretwinError
from caretwin.workspace import Workspace


@dataclass(frozen=True)
class Outcome:
    meaning: str
    horizon_days: int
    label: str  # SQL: (member_id, cutoff, y) for the points in `p`, over (cutoff, cutoff + horizon]
    kind: str = "binary"  # or "amount" (a regression target, in currency)
    unit: str = "member"  # or "discharge"


def _encounters(cls: str, extra: str = "") -> str:
    return f"""SELECT p.member_id, p.cutoff, 1 AS y FROM p JOIN encounters x ON x.member_id = p.member_id
        AND x.encounter_class = '{cls}' AND x.admit_date > p.cutoff AND x.admit_date <= p.cutoff + $horizon {extra}
        GROUP BY ALL"""


# The payer's view of a year's cost: paid claims where the workspace has them, otherwise the year's use
# priced with the workspace's unit costs (stays counted by the days inside the year).
_DAYS = "greatest(least(coalesce(x.discharge_date, p.cutoff + $horizon), p.cutoff + $horizon) - greatest(x.admit_date, p.cutoff), 1)"
COST = f"""
    SELECT p.member_id, p.cutoff, sum(paid_amount) AS y FROM p JOIN claims c ON c.member_id = p.member_id
        AND c.service_date > p.cutoff AND c.service_date <= p.cutoff + $horizon
        WHERE EXISTS (SELECT 1 FROM claims) GROUP BY ALL
    UNION ALL
    SELECT member_id, cutoff, sum(amount) FROM (
        SELECT p.member_id, p.cutoff, CASE
            WHEN x.encounter_class = 'emergency' THEN (SELECT cost FROM u WHERE item = 'ed_visit')
            WHEN x.encounter_class = 'inpatient' THEN {_DAYS} * (SELECT cost FROM u WHERE item = 'inpatient_day')
            WHEN x.encounter_class = 'snf' THEN {_DAYS} * (SELECT cost FROM u WHERE item = 'snf_day')
            WHEN x.encounter_class = 'crisis' AND coalesce(x.discharge_date, x.admit_date) > x.admit_date
                THEN {_DAYS} * (SELECT cost FROM u WHERE item = 'csu_day')
            WHEN x.encounter_class = 'crisis' THEN (SELECT cost FROM u WHERE item = 'mobile_crisis_episode')
            END AS amount
        FROM p JOIN encounters x ON x.member_id = p.member_id
            AND x.admit_date <= p.cutoff + $horizon AND coalesce(x.discharge_date, x.admit_date) > p.cutoff
        UNION ALL
        SELECT p.member_id, p.cutoff, CASE a.service_line
            WHEN 'hcbs' THEN v.hours * (SELECT cost FROM u WHERE item = 'hcbs_hour')
            WHEN 'home_health' THEN (SELECT cost FROM u WHERE item = 'home_health_visit') END
        FROM p JOIN visits v ON v.member_id = p.member_id AND v.status = 'delivered'
            AND v.scheduled_date > p.cutoff AND v.scheduled_date <= p.cutoff + $horizon
        JOIN authorizations a USING (authorization_id))
    WHERE NOT EXISTS (SELECT 1 FROM claims) GROUP BY ALL"""

OUTCOMES: dict[str, Outcome] = {
    "readmission_30d": Outcome("a hospital readmission within 30 days of discharge", 30, _encounters("inpatient"),
                               unit="discharge"),
    "ed_90d": Outcome("an emergency department visit within 90 days", 90, _encounters("emergency")),
    "crisis_90d": Outcome("a behavioural health crisis episode within 90 days", 90, _encounters("crisis")),
    "admission_90d": Outcome("an inpatient admission within 90 days", 90, _encounters("inpatient")),
    "placement_12m": Outcome(
        "a long-term nursing-facility placement (a stay of 90 days or more, or still open) within 12 months", 365,
        _encounters("snf", "AND (x.discharge_date IS NULL OR x.discharge_date - x.admit_date >= 90)")),
    "cost_12m": Outcome("the payer's cost over the next 12 months", 365, COST, kind="amount"),
}
NUMERIC = ("age", "acuity_tier", "chronic_conditions", "ed_visits_90d", "ed_visits_365d", "admissions_365d",
           "crisis_365d", "days_enrolled")
FLAGS = ("serious_mental_illness", "substance_use_disorder", "no_caregiver", "housing_at_risk", "homeless")
STAY = ("length_of_stay", "emergency_admission", "discharged_to_facility", "discharged_with_services")
WORDS = {
    "age": "age {:.0f}", "acuity_tier": "acuity tier {:.0f}", "chronic_conditions": "{:.0f} chronic conditions",
    "ed_visits_90d": "{:.0f} ED visits in the last 90 days", "ed_visits_365d": "{:.0f} ED visits in the last year",
    "admissions_365d": "{:.0f} admissions in the last year", "crisis_365d": "{:.0f} crisis episodes in the last year",
    "days_enrolled": "enrolled {:.0f} days", "serious_mental_illness": "serious mental illness",
    "substance_use_disorder": "substance use disorder", "no_caregiver": "no unpaid caregiver",
    "housing_at_risk": "housing at risk", "homeless": "homeless", "length_of_stay": "a {:.0f}-day hospital stay",
    "emergency_admission": "admitted through the emergency department",
    "discharged_to_facility": "discharged to a nursing or psychiatric facility",
    "discharged_with_services": "discharged with home services",
}

MEMBER_POINTS = """
    SELECT m.member_id, c.cutoff, NULL::INTEGER AS los, NULL::BOOLEAN AS emergent, NULL::VARCHAR AS disposition
    FROM members m, _cutoffs c
    WHERE m.enrollment_start <= c.cutoff AND (m.enrollment_end IS NULL OR m.enrollment_end > c.cutoff)
      AND (m.death_date IS NULL OR m.death_date > c.cutoff)"""
# discharges alive and not onward to another hospital (a transfer continues the same stay)
DISCHARGE_POINTS = """
    SELECT x.member_id, x.discharge_date AS cutoff, x.discharge_date - x.admit_date AS los,
           EXISTS (SELECT 1 FROM encounters ed WHERE ed.member_id = x.member_id AND ed.encounter_class = 'emergency'
                   AND ed.admit_date BETWEEN x.admit_date - 1 AND x.admit_date) AS emergent,
           x.discharge_disposition AS disposition
    FROM encounters x JOIN members m USING (member_id)
    WHERE x.encounter_class = 'inpatient' AND x.discharge_date BETWEEN $first AND $last
      AND coalesce(x.discharge_disposition, 'home') NOT IN ('died', 'transfer')
      AND (m.death_date IS NULL OR m.death_date > x.discharge_date)"""

FEATURES_SQL = """
WITH u AS (SELECT item, arg_max(cost, year) AS cost FROM unit_costs GROUP BY 1),
p AS ({points}),
e AS (
    SELECT p.member_id, p.cutoff,
        count(*) FILTER (WHERE encounter_class = 'emergency' AND admit_date > p.cutoff - 90) AS ed90,
        count(*) FILTER (WHERE encounter_class = 'emergency') AS ed365,
        count(*) FILTER (WHERE encounter_class = 'inpatient') AS adm365,
        count(*) FILTER (WHERE encounter_class = 'crisis') AS cr365
    FROM p JOIN encounters x ON x.member_id = p.member_id AND x.admit_date <= p.cutoff AND x.admit_date > p.cutoff - 365
    GROUP BY ALL),
h AS (
    SELECT p.member_id, p.cutoff, arg_max(housing_status, event_date) AS housing
    FROM p JOIN housing_events x ON x.member_id = p.member_id AND x.event_date <= p.cutoff GROUP BY ALL),
y AS ({label})
SELECT p.member_id, p.cutoff, year(p.cutoff) - m.birth_year AS age, coalesce(m.acuity_tier, 2),
       coalesce(m.chronic_conditions, 0),
       coalesce(e.ed90, 0), coalesce(e.ed365, 0), coalesce(e.adm365, 0), coalesce(e.cr365, 0),
       p.cutoff - m.enrollment_start,
       coalesce(m.serious_mental_illness, false), coalesce(m.substance_use_disorder, false),
       NOT coalesce(m.caregiver_support, true), coalesce(h.housing = 'at_risk', false),
       coalesce(h.housing = 'homeless', false),
       coalesce(p.los, 0), coalesce(p.emergent, false), coalesce(p.disposition IN ('snf', 'psychiatric'), false),
       coalesce(p.disposition IN ('home_health', 'hcbs'), false),
       coalesce(y.y, 0), m.sex, coalesce(m.race_ethnicity, 'unknown'), m.region_id, coalesce(r.rurality, 'unknown'),
       o.seq
FROM p JOIN members m USING (member_id) LEFT JOIN e USING (member_id, cutoff) LEFT JOIN h USING (member_id, cutoff)
LEFT JOIN y USING (member_id, cutoff) LEFT JOIN regions r ON r.region_id = m.region_id
LEFT JOIN _member_order o USING (member_id)
ORDER BY p.cutoff, o.seq, p.member_id
"""


def feature_names(outcome: str) -> list[str]:
    return list(NUMERIC + FLAGS + (STAY if OUTCOMES[outcome].unit == "discharge" else ()))


@dataclass
class Examples:
    outcome: str
    X: np.ndarray  # [row, feature], columns as `names`
    y: np.ndarray  # 0/1, or an amount
    member_id: np.ndarray
    person: np.ndarray  # the member's arrival number: splits and resampling by person use it, not the keyed id
    cutoff: np.ndarray  # datetime64[D]
    groups: dict[str, np.ndarray]  # sex, race_ethnicity, age_band, region, rurality: for equity review

    @property
    def names(self) -> list[str]:
        return feature_names(self.outcome)


def data_span(ws: Workspace) -> tuple[date, date]:
    first, last = ws.con.execute("SELECT min(admit_date), max(admit_date) FROM encounters").fetchone()
    return first, last


def _outcome(name: str) -> Outcome:
    if name not in OUTCOMES:
        raise CaretwinError(f"outcome must be one of: {', '.join(OUTCOMES)}")
    return OUTCOMES[name]


def _query(ws: Workspace, outcome: str, cutoffs: list[date], first: date, last: date, horizon: int) -> Examples:
    o = _outcome(outcome)
    points = DISCHARGE_POINTS if o.unit == "discharge" else MEMBER_POINTS
    sql = FEATURES_SQL.format(points=points, label=o.label)
    con = ws.con
    con.execute("CREATE OR REPLACE TEMP TABLE _cutoffs (cutoff DATE)")
    con.executemany("INSERT INTO _cutoffs VALUES (?)", [[c] for c in cutoffs])
    params = {"horizon": horizon} | ({"first": first, "last": last} if o.unit == "discharge" else {})
    try:
        cols = list(con.execute(sql, params).fetchnumpy().values())
    finally:
        con.execute("DROP TABLE IF EXISTS _cutoffs")
    k = len(feature_names(outcome))
    X = np.column_stack([np.asarray(c, dtype=float) for c in cols[2:2 + k]]) if len(cols[0]) else np.empty((0, k))
    age = X[:, 0]
    band = np.select([age < 18, age < 45, age < 65, age < 75, age < 85], ["0-17", "18-44", "45-64", "65-74", "75-84"],
                     "85+")
    y = np.asarray(cols[2 + len(NUMERIC + FLAGS + STAY)], dtype=float)
    groups = dict(zip(("sex", "race_ethnicity", "region", "rurality"), (np.asarray(c, dtype=object) for c in cols[-5:-1])))
    return Examples(outcome, X, y if o.kind == "amount" else y.astype(int), np.asarray(cols[0], dtype=object),
                    np.ma.filled(np.ma.asarray(cols[-1]).astype(np.int64), -1),
                    np.asarray(cols[1], dtype="datetime64[D]"), groups | {"age_band": band})


def build(ws: Workspace, outcome: str, *, step_days: int = 30, lookback_days: int = 180) -> Examples:
    """Examples with `lookback_days` of history before each cut-off and the full horizon after it."""
    o = _outcome(outcome)
    first, last = data_span(ws)
    if first is None:
        raise CaretwinError("no encounters in the workspace")
    start, end = first + timedelta(days=lookback_days), last - timedelta(days=o.horizon_days)
    if start > end:
        raise CaretwinError(f"{outcome} needs at least {lookback_days + o.horizon_days} days of encounters; the data "
                         f"span {first} to {last}")
    cutoffs = [start + timedelta(days=d) for d in range(0, (end - start).days + 1, step_days)]
    return _query(ws, outcome, cutoffs, start, end, o.horizon_days)


def features_at(ws: Workspace, outcome: str, as_of: date) -> tuple[np.ndarray, np.ndarray]:
    """Member ids and features of everyone at risk on `as_of` (to score them; no label is read): the
    enrolled, or for readmission the members discharged in the 30 days up to `as_of`."""
    o = _outcome(outcome)
    ex = _query(ws, outcome, [as_of], as_of - timedelta(days=o.horizon_days - 1), as_of, 0)
    return ex.member_id, ex.X


def predict(model, X: np.ndarray) -> np.ndarray:
    """The score: a probability for a classifier, the expected amount for a regressor."""
    return model.predict_proba(X)[:, 1] if hasattr(model, "predict_proba") else model.predict(X)


def reasons(model, X: np.ndarray, reference: np.ndarray, names: list[str], top: int = 3) -> list[list[str]]:
    """For each row, the features that raise its score most, in words: the drop in the score when the
    feature is set to the reference (typical) value, largest first; only features that raise it."""
    base = predict(model, X)
    amount = not hasattr(model, "predict_proba")
    deltas = np.empty((X.shape[0], X.shape[1]))
    for j in range(X.shape[1]):
        Xj = X.copy()
        Xj[:, j] = reference[j]
        deltas[:, j] = base - predict(model, Xj)
    floor = 1.0 if amount else 0.001
    order = np.argsort(-deltas, axis=1)[:, :top]
    out = []
    for i in range(X.shape[0]):
        out.append([f"{WORDS[names[j]].format(X[i, j])} "
                    + (f"(+${deltas[i, j]:,.0f})" if amount else f"(+{deltas[i, j] * 100:.1f} points)")
                    for j in order[i] if deltas[i, j] > floor])
    return out

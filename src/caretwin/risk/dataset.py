"""Labelled examples from a workspace: what was known about each member on a cut-off day, and whether
the outcome followed within the horizon.

Cut-offs are taken every `step_days` across the history, leaving a year of look-back before the first
and a full horizon after the last, so every feature is from before the cut-off and every label from
after it. A member appears once per cut-off: evaluations split and resample by member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from caretwin.workspace import Workspace

OUTCOMES: dict[str, tuple[str, int, str]] = {  # name -> (meaning, horizon in days, encounter class)
    "ed_90d": ("an emergency department visit within 90 days", 90, "emergency"),
    "crisis_90d": ("a behavioural health crisis episode within 90 days", 90, "crisis"),
    "admission_90d": ("an inpatient admission within 90 days", 90, "inpatient"),
}
NUMERIC = ("age", "acuity_tier", "chronic_conditions", "ed_visits_90d", "ed_visits_365d", "admissions_365d",
           "crisis_365d", "days_enrolled")
FLAGS = ("serious_mental_illness", "substance_use_disorder", "no_caregiver", "housing_at_risk", "homeless")
CATEGORICAL = ("sex", "race_ethnicity")  # kept for equity review, not used as predictors
WORDS = {
    "age": "age {:.0f}", "acuity_tier": "acuity tier {:.0f}", "chronic_conditions": "{:.0f} chronic conditions",
    "ed_visits_90d": "{:.0f} ED visits in the last 90 days", "ed_visits_365d": "{:.0f} ED visits in the last year",
    "admissions_365d": "{:.0f} admissions in the last year", "crisis_365d": "{:.0f} crisis episodes in the last year",
    "days_enrolled": "enrolled {:.0f} days", "serious_mental_illness": "serious mental illness",
    "substance_use_disorder": "substance use disorder", "no_caregiver": "no unpaid caregiver",
    "housing_at_risk": "housing at risk", "homeless": "homeless",
}


@dataclass
class Examples:
    outcome: str
    X: np.ndarray  # [row, feature] (NUMERIC then FLAGS)
    y: np.ndarray
    member_id: np.ndarray
    cutoff: np.ndarray
    groups: dict[str, np.ndarray]  # sex, race_ethnicity, age_band, region_id: for equity review

    @property
    def names(self) -> list[str]:
        return list(NUMERIC + FLAGS)


FEATURES_SQL = """
WITH m AS (
    SELECT m.*, ?::DATE AS cutoff FROM members m
    WHERE m.enrollment_start <= ?::DATE AND (m.enrollment_end IS NULL OR m.enrollment_end > ?::DATE)
      AND (m.death_date IS NULL OR m.death_date > ?::DATE)),
e AS (
    SELECT e.member_id,
        count(*) FILTER (WHERE encounter_class = 'emergency' AND admit_date > cutoff - 90) AS ed90,
        count(*) FILTER (WHERE encounter_class = 'emergency') AS ed365,
        count(*) FILTER (WHERE encounter_class = 'inpatient') AS adm365,
        count(*) FILTER (WHERE encounter_class = 'crisis') AS cr365
    FROM encounters e JOIN m USING (member_id)
    WHERE e.admit_date <= m.cutoff AND e.admit_date > m.cutoff - 365 GROUP BY 1),
h AS (
    SELECT member_id, arg_max(housing_status, event_date) AS housing FROM housing_events
    WHERE event_date <= ?::DATE GROUP BY 1),
y AS (
    SELECT DISTINCT member_id FROM encounters
    WHERE encounter_class = ? AND admit_date > ?::DATE AND admit_date <= ?::DATE + ?)
SELECT m.member_id, year(m.cutoff) - m.birth_year AS age, coalesce(m.acuity_tier, 2) AS acuity_tier,
       coalesce(m.chronic_conditions, 0) AS chronic_conditions,
       coalesce(e.ed90, 0), coalesce(e.ed365, 0), coalesce(e.adm365, 0), coalesce(e.cr365, 0),
       m.cutoff - m.enrollment_start AS days_enrolled,
       coalesce(m.serious_mental_illness, false), coalesce(m.substance_use_disorder, false),
       NOT coalesce(m.caregiver_support, true), coalesce(h.housing = 'at_risk', false),
       coalesce(h.housing = 'homeless', false),
       y.member_id IS NOT NULL AS y, m.sex, coalesce(m.race_ethnicity, 'unknown'), m.region_id
FROM m LEFT JOIN e USING (member_id) LEFT JOIN h USING (member_id) LEFT JOIN y USING (member_id)
ORDER BY m.member_id
"""


def data_span(ws: Workspace) -> tuple[date, date]:
    first, last = ws.con.execute("SELECT min(admit_date), max(admit_date) FROM encounters").fetchone()
    return first, last


def build(ws: Workspace, outcome: str, *, step_days: int = 30, lookback_days: int = 180) -> Examples:
    """Examples at every cut-off with `lookback_days` of history before it and the full horizon after it."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of: {', '.join(OUTCOMES)}")
    _, horizon, cls = OUTCOMES[outcome]
    first, last = data_span(ws)
    if first is None:
        raise ValueError("no encounters in the workspace")
    cutoffs = []
    c = first + timedelta(days=lookback_days)
    while c + timedelta(days=horizon) <= last:
        cutoffs.append(c)
        c += timedelta(days=step_days)
    if not cutoffs:
        raise ValueError(f"{outcome} needs at least {lookback_days + horizon} days of encounters; the data "
                         f"span {first} to {last}")
    parts = []
    for c in cutoffs:
        rows = ws.con.execute(FEATURES_SQL, [c, c, c, c, c, cls, c, c, horizon]).fetchall()
        parts += [(c, r) for r in rows]
    X = np.array([r[1:1 + len(NUMERIC) + len(FLAGS)] for _, r in parts], dtype=float)
    k = 1 + len(NUMERIC) + len(FLAGS)
    age = X[:, 0]
    band = np.select([age < 18, age < 45, age < 65, age < 75, age < 85], ["0-17", "18-44", "45-64", "65-74", "75-84"],
                     "85+")
    return Examples(outcome, X, np.array([r[k] for _, r in parts], dtype=int),
                    np.array([r[0] for _, r in parts]), np.array([c for c, _ in parts]),
                    {"sex": np.array([r[k + 1] for _, r in parts]), "race_ethnicity": np.array([r[k + 2] for _, r in parts]),
                     "age_band": band, "region": np.array([r[k + 3] for _, r in parts])})


def features_at(ws: Workspace, outcome: str, cutoff: date) -> tuple[np.ndarray, np.ndarray]:
    """Member ids and features of everyone enrolled on `cutoff` (to score them; no label is read)."""
    _, _, cls = OUTCOMES[outcome]
    rows = ws.con.execute(FEATURES_SQL, [cutoff, cutoff, cutoff, cutoff, cutoff, cls, cutoff, cutoff, 0]).fetchall()
    n = len(NUMERIC) + len(FLAGS)
    return np.array([r[0] for r in rows]), np.array([r[1:1 + n] for r in rows], dtype=float).reshape(len(rows), n)


def reasons(model, X: np.ndarray, reference: np.ndarray, names: list[str], top: int = 3) -> list[list[str]]:
    """For each row, the features that raise its risk most, in words: the drop in predicted risk when
    the feature is set to the reference (typical) value, largest first; only features that raise it."""
    base = model.predict_proba(X)[:, 1]
    deltas = np.empty((X.shape[0], X.shape[1]))
    for j in range(X.shape[1]):
        Xj = X.copy()
        Xj[:, j] = reference[j]
        deltas[:, j] = base - model.predict_proba(Xj)[:, 1]
    out = []
    for i in range(X.shape[0]):
        order = [j for j in np.argsort(-deltas[i]) if deltas[i, j] > 0.001][:top]
        out.append([f"{WORDS[names[j]].format(X[i, j])} (+{deltas[i, j] * 100:.1f} points)" for j in order])
    return out

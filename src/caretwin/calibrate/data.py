"""Person-time from the workspace: one row per member and week at risk, the base of rate estimates.

A week belongs to a member when the member is enrolled and alive at its start; covariates
(region, acuity, age, caregiver, SMI/SUD, housing, community-service state, and whether the
member is in a hospital, nursing or stabilisation bed) are those at the week's start. Events are counted in the week they happen, for the member's row of that week.
This is the data the engine's weekly hazard refresh sees, so estimates map onto its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from caretwin.errors import CaretwinError
from caretwin.workspace import Workspace


@dataclass(frozen=True)
class Window:
    start: date  # first day of week 0
    end: date  # last day used (inclusive)

    @property
    def weeks(self) -> int:
        return (self.end - self.start).days // 7 + 1

    def sql(self) -> dict[str, str]:
        return {"start": f"DATE '{self.start}'", "end": f"DATE '{self.end}'"}


def window(ws: Workspace, until: date | None = None) -> Window:
    """From the first week of activity (visits, encounters, workforce) to `until` or the last day of data."""
    # visits and workforce rows mark the window best; encounters alone (FHIR, Synthea) when there are none,
    # since a stay admitted before the window may be recorded for its discharge inside it
    (first, last), = ws.con.execute("""SELECT coalesce(min(d0) FILTER (WHERE src = 'ops'), min(d0)), max(d1) FROM (
        SELECT 'ops' AS src, min(scheduled_date) AS d0, max(scheduled_date) AS d1 FROM visits
        UNION ALL SELECT 'ops', min(week_start), max(week_start) FROM workforce
        UNION ALL SELECT 'enc', min(admit_date), max(admit_date) FROM encounters)""").fetchall()
    if first is None:
        raise CaretwinError(f"{ws.path}: no visits, encounters or workforce rows to calibrate from")
    end = min(until, last) if until else last
    if (end - first).days < 28:
        raise CaretwinError(f"{ws.path}: fewer than four weeks of activity before {end}; nothing to calibrate on")
    return Window(first, end)


def build(con: duckdb.DuckDBPyConnection, w: Window) -> None:
    """Temporary tables `_cal_episodes` and `_cal_mw` (member-weeks) for the window."""
    s, e = w.sql()["start"], w.sql()["end"]
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _cal_episodes AS
        WITH au AS (SELECT referral_id, max(end_date) AS last_end FROM authorizations GROUP BY 1)
        SELECT r.referral_id, r.member_id, r.service_line, r.received_date, r.authorized_date, r.start_of_care_date,
               r.status, r.authorized_date = r.received_date AS from_discharge,
               -- withdrawn before it started: the data do not say when, so neither when the wait ended
               r.status = 'withdrawn' AND au.last_end IS NULL AND r.start_of_care_date IS NULL AS end_unknown,
               CASE WHEN r.status IN ('closed', 'withdrawn')
                    THEN coalesce(au.last_end, r.start_of_care_date, r.received_date) END AS ended
        FROM referrals r LEFT JOIN au USING (referral_id)
        WHERE r.service_line IN ('hcbs', 'home_health') AND r.received_date <= {e}""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _cal_mw AS
        WITH weeks AS (SELECT range AS week, {s} + CAST(7 * range AS INTEGER) AS ws FROM range({w.weeks})),
        mw AS (
            SELECT m.member_id, w.week, w.ws, m.region_id, least(greatest(coalesce(m.acuity_tier, 2), 1), 4) AS tier,
                   year(w.ws) - m.birth_year AS age, NOT coalesce(m.caregiver_support, true) AS no_caregiver,
                   coalesce(m.serious_mental_illness, false) AS smi, coalesce(m.substance_use_disorder, false) AS sud,
                   m.housing_status AS housing_now
            -- a member leaving on the week's first day was still there when the day began
            FROM members m JOIN weeks w ON m.enrollment_start <= w.ws
             AND (m.enrollment_end IS NULL OR m.enrollment_end >= w.ws) AND (m.death_date IS NULL OR m.death_date >= w.ws)
            WHERE w.ws + 6 <= {e}
        ), svc AS (
            SELECT mw.member_id, mw.week,
                   max(CASE WHEN ep.start_of_care_date <= mw.ws THEN 2 ELSE 1 END) AS svc
            FROM mw JOIN _cal_episodes ep ON ep.member_id = mw.member_id AND ep.received_date < mw.ws
             AND (ep.ended IS NULL OR ep.ended >= mw.ws)
            GROUP BY ALL
        ), away AS (
            SELECT DISTINCT mw.member_id, mw.week FROM mw JOIN encounters e ON e.member_id = mw.member_id
             AND e.encounter_class IN ('inpatient', 'snf', 'crisis') AND e.admit_date < mw.ws
             AND (e.discharge_date IS NULL OR e.discharge_date > mw.ws) AND e.discharge_date IS DISTINCT FROM e.admit_date
        ), unknown AS (  -- after a referral withdrawn on an unknown day: waiting or not, nobody knows
            SELECT DISTINCT mw.member_id, mw.week FROM mw JOIN _cal_episodes ep ON ep.member_id = mw.member_id
             AND ep.end_unknown AND ep.received_date < mw.ws
        ), recent AS (  -- a service ended in the 12 weeks before: the unmet-need index has not yet decayed
            SELECT DISTINCT mw.member_id, mw.week FROM mw JOIN _cal_episodes ep ON ep.member_id = mw.member_id
             AND ep.ended BETWEEN mw.ws - 84 AND mw.ws
        ), post AS (
            SELECT DISTINCT mw.member_id, mw.week FROM mw JOIN encounters e ON e.member_id = mw.member_id
             AND e.encounter_class = 'inpatient' AND e.discharge_date BETWEEN mw.ws - 30 AND mw.ws - 1
        ), first_event AS (
            SELECT member_id, arg_min(housing_status, event_date) AS status, min(event_date) AS d FROM housing_events
            GROUP BY 1
        )
        SELECT mw.member_id, mw.week, mw.region_id, mw.tier, mw.age, mw.no_caregiver, mw.smi, mw.sud,
               coalesce(svc.svc, 0) AS svc, away.member_id IS NOT NULL AS away,
               post.member_id IS NOT NULL AS post_discharge, recent.member_id IS NOT NULL AS recent_service,
               unknown.member_id IS NOT NULL AS after_withdrawal,
               -- known only after a member's first recorded change: earlier states are guessed (below), and
               -- members who never change are selected on their future, which would bias transition rates
               h.housing_status IS NOT NULL AS housing_known,
               coalesce(h.housing_status,
                        -- before a member's first recorded change: the state next to it (changes are one step)
                        CASE WHEN fe.status IS NULL THEN mw.housing_now WHEN fe.status = 'at_risk' THEN 'stable'
                             ELSE 'at_risk' END, 'stable') AS housing
        FROM mw LEFT JOIN svc USING (member_id, week) LEFT JOIN away USING (member_id, week)
        LEFT JOIN post USING (member_id, week) LEFT JOIN recent USING (member_id, week)
        LEFT JOIN unknown USING (member_id, week)
        LEFT JOIN first_event fe USING (member_id)
        ASOF LEFT JOIN housing_events h ON h.member_id = mw.member_id AND h.event_date <= mw.ws""")


def week_of(col: str, w: Window) -> str:
    """SQL for the window week a date falls in."""
    return f"CAST(floor(({col} - {w.sql()['start']}) / 7) AS BIGINT)"


def span(w: Window) -> str:
    return f"{w.start} .. {w.end} ({w.weeks} weeks)"



"""The overview page's figures: the system on the last day of data, by region, and a month before.

Capacity and occupancy by service line (beds, staffed hours, slots, teams, units, as each provider counts
them), the waitlist and waits for community services, the workforce, and use. Occupancy counts what is in
progress on the day: stays in a bed line's facilities, and authorised hours or people for the other lines.
The waitlist is referrals received and not yet started (withdrawn and closed-without-care ones left out,
by their final status).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from caretwin.governance.suppression import suppress_table
from caretwin.simulate.initial import data_end
from caretwin.workspace import Workspace

MONTH = 28  # days: "since last month" compares the last day with four weeks before
BED_LINES = ("hospital", "snf", "crisis_stabilization", "nursing_facility")
HOUR_UNITS = ("staffed_hours_per_week",)


@dataclass
class Region:
    region_id: str
    name: str
    rurality: str
    members: int | None = 0  # None: suppressed
    capacity: dict[str, tuple[float, str]] = field(default_factory=dict)  # line -> (capacity, unit)
    occupancy: dict[str, float | None] = field(default_factory=dict)  # line -> share of capacity in use (None:
    # the data hold no use of this line)
    stays: dict[str, int] = field(default_factory=dict)  # bed line -> stays in progress on the day
    hidden: set[str] = field(default_factory=set)  # lines whose occupancy rests on 1-10 stays (suppressed)
    waiting: int | None = 0  # None: suppressed
    median_wait_days: float | None = None
    starts: int = 0  # services started in the four weeks to the day (the median wait's people)
    headcount: int = 0
    vacancies: int = 0
    separations: int = 0
    overtime_per_worker: float = 0.0
    missed_visit_rate: float | None = None  # None: no visits, or suppressed (1-10 missed)
    visits: int = 0  # visits scheduled in the four weeks to the day: the rate's denominator
    missed: int = 0  # of them missed by the provider (shown only with person-level access)
    ed_count: int = 0  # ED visits in the four weeks to the day
    ed_per_1000: float | None = None  # a month's ED visits per 1,000 members; None: suppressed or no members


@dataclass
class Snapshot:
    as_of: date
    regions: list[Region]
    lines: list[str]


def _snapshot(ws: Workspace, d: date) -> Snapshot:
    con = ws.con
    regions = {r[0]: Region(r[0], r[1] or r[0], r[2] or "unknown") for r in con.execute(
        "SELECT region_id, name, rurality FROM regions ORDER BY region_id").fetchall()}
    for rid, n in con.execute("""SELECT region_id, count(*) FROM members WHERE enrollment_start <= $d
            AND (enrollment_end IS NULL OR enrollment_end >= $d) AND (death_date IS NULL OR death_date > $d)
            GROUP BY 1""", {"d": d}).fetchall():
        if rid in regions:
            regions[rid].members = n
    open_ = "p.opened_date IS NULL OR p.opened_date <= $d) AND (p.closed_date IS NULL OR p.closed_date > $d"
    cap = con.execute(f"""SELECT region_id, service_line, any_value(capacity_unit), sum(capacity) FROM providers p
        WHERE ({open_}) GROUP BY 1, 2""", {"d": d}).fetchall()
    used = dict(((r, line), v) for r, line, v in con.execute(f"""
        SELECT p.region_id, p.service_line, count(*) FROM encounters e JOIN providers p ON p.provider_id = e.facility_id
        WHERE p.service_line IN {BED_LINES} AND e.admit_date <= $d AND (e.discharge_date IS NULL OR e.discharge_date > $d)
        GROUP BY 1, 2
        UNION ALL
        SELECT p.region_id, p.service_line,
               CASE WHEN any_value(p.capacity_unit) IN {HOUR_UNITS + ('',)} THEN sum(a.hours_per_week) ELSE count(*) END
        FROM authorizations a JOIN providers p USING (provider_id)
        WHERE p.service_line NOT IN {BED_LINES} AND a.start_date <= $d AND (a.end_date IS NULL OR a.end_date >= $d)
        GROUP BY 1, 2""", {"d": d}).fetchall())
    lines = sorted({line for _, line, _, _ in cap})
    recorded = {line for (line,) in con.execute(f"""
        SELECT DISTINCT p.service_line FROM encounters e JOIN providers p ON p.provider_id = e.facility_id
        WHERE p.service_line IN {BED_LINES}
        UNION SELECT DISTINCT service_line FROM authorizations""").fetchall()}  # lines whose use the data hold
    for rid, line, unit, capacity in cap:
        if rid in regions:
            regions[rid].capacity[line] = (float(capacity or 0), unit or "")
            if line in BED_LINES:
                regions[rid].stays[line] = int(used.get((rid, line), 0))
            regions[rid].occupancy[line] = (float(used.get((rid, line), 0)) / capacity
                                            if capacity and line in recorded else None)
    for rid, waiting, median, starts in con.execute("""
        SELECT m.region_id,
               count(*) FILTER (WHERE r.received_date <= $d AND (r.start_of_care_date IS NULL OR r.start_of_care_date > $d)
                                AND NOT (r.status = 'withdrawn' OR (r.status = 'closed' AND r.start_of_care_date IS NULL))),
               median(r.start_of_care_date - r.received_date) FILTER (WHERE r.start_of_care_date BETWEEN $d - 27 AND $d),
               count(*) FILTER (WHERE r.start_of_care_date BETWEEN $d - 27 AND $d)
        FROM referrals r JOIN members m USING (member_id) GROUP BY 1""", {"d": d}).fetchall():
        if rid in regions:
            regions[rid].waiting, regions[rid].median_wait_days = int(waiting), median
            regions[rid].starts = int(starts)
    for rid, head, vac, sep, ot in con.execute("""
        WITH w AS (SELECT w.*, p.region_id FROM workforce w JOIN providers p USING (provider_id)
                   WHERE w.week_start BETWEEN $d - 27 AND $d),
             latest AS (SELECT region_id, provider_id, arg_max(headcount, week_start) AS head,
                               arg_max(vacancies, week_start) AS vac FROM w GROUP BY 1, 2),
             month AS (SELECT region_id, sum(separations) AS sep, sum(overtime_hours) / nullif(sum(headcount), 0) AS ot
                       FROM w GROUP BY 1)
        SELECT region_id, sum(head), sum(vac), any_value(sep), any_value(ot) FROM latest JOIN month USING (region_id)
        GROUP BY 1""", {"d": d}).fetchall():
        if rid in regions:
            r = regions[rid]
            r.headcount, r.vacancies, r.separations = int(head or 0), int(vac or 0), int(sep or 0)
            r.overtime_per_worker = float(ot or 0)
    for rid, missed, visits in con.execute("""SELECT p.region_id, count(*) FILTER (WHERE v.status = 'missed_provider'),
            count(*) FROM visits v JOIN providers p USING (provider_id) WHERE v.scheduled_date BETWEEN $d - 27 AND $d
            GROUP BY 1""", {"d": d}).fetchall():
        if rid in regions:
            r = regions[rid]
            r.missed, r.visits, r.missed_visit_rate = int(missed), int(visits), missed / visits
    ed = dict(con.execute("""SELECT m.region_id, count(*) FROM encounters e JOIN members m USING (member_id)
        WHERE e.encounter_class = 'emergency' AND e.admit_date BETWEEN $d - 27 AND $d GROUP BY 1""", {"d": d}).fetchall())
    for rid, r in regions.items():
        r.ed_count = ed.get(rid, 0)
        r.ed_per_1000 = 1000 * r.ed_count / r.members if r.members else None
    return Snapshot(d, list(regions.values()), lines)


def _suppress(s: Snapshot) -> None:
    """Hide every figure resting on 1-10 people or events, with partner cells where a total would give one away
    (for roles without person-level access): members, the waitlist, the median wait (of those who started), ED
    rates, missed-visit rates (missed visits) and the occupancy of bed lines (stays in progress)."""
    if not s.regions:
        return

    def hidden(counts: list[float]) -> np.ndarray:
        return suppress_table(np.array(counts, float)[:, None])[:, 0]

    for r, hide in zip(s.regions, hidden([r.members or 0 for r in s.regions])):
        if hide:
            r.members = None
    for r, hide in zip(s.regions, hidden([r.waiting or 0 for r in s.regions])):
        if hide:
            r.waiting = None
    for r, hide in zip(s.regions, hidden([r.starts for r in s.regions])):
        if hide or r.waiting is None:
            r.median_wait_days = None
    for r, hide in zip(s.regions, hidden([r.ed_count for r in s.regions])):
        if hide or r.members is None:
            r.ed_per_1000 = None
    for line in BED_LINES:
        with_line = [r for r in s.regions if line in r.stays]
        for r, hide in zip(with_line, hidden([r.stays[line] for r in with_line]) if with_line else ()):
            if hide:
                r.hidden.add(line)
                r.occupancy[line] = None
    for r, hide in zip(s.regions, hidden([r.missed for r in s.regions])):
        if hide:
            r.missed_visit_rate = None
    for r in s.regions:
        r.stays, r.ed_count, r.starts, r.missed = {}, 0, 0, 0  # the counts behind the shown figures do not leave


def overview(ws: Workspace, *, person_level: bool) -> tuple[Snapshot, Snapshot]:
    """The last day of data and four weeks before it (small cells suppressed unless `person_level`)."""
    end = data_end(ws)
    now, before = _snapshot(ws, end), _snapshot(ws, end - timedelta(days=MONTH))
    if not person_level:
        _suppress(now)
        _suppress(before)
    return now, before

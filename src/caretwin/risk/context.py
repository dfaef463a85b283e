"""What a reviewer needs beside a flag: the member's recent history, and, for those allowed, who they are.

The history is read from the workspace (pseudonymous keys only): admissions, ED visits, crisis episodes,
services authorised and visits missed, referrals still waiting, housing changes and incidents in the months
before the flag's date.

Re-identification turns a pseudonym back into the agency's own member id. The workspace never holds the
agency's ids (they are replaced by keyed hashes at ingest), so it cannot be reversed from the workspace alone:
the reviewer names a roster the agency already holds (any CSV with the id column, such as the extract that
was loaded), each id in it is pseudonymised with the workspace key, and the one that matches is returned.
Only a role with person-level access may ask, for a purpose that needs a person's record, and every request,
found or not, is recorded with the pseudonym, never the id.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from caretwin.errors import CaretwinError
from caretwin.governance.access import allowed
from caretwin.governance.audit import Actor, record_event, trail_for
from caretwin.governance.privacy import pseudonymise
from caretwin.workspace import Workspace

MONTHS = 12
SINGULAR = {"admissions": "admission", "ED visits": "ED visit", "crisis episodes": "crisis episode",
            "visits missed by providers": "visit missed by a provider"}
ACRONYMS = {"hcbs": "HCBS", "snf": "nursing facility"}
STAYS = {"inpatient": "admitted to hospital", "snf": "in a nursing facility", "crisis": "crisis episode",
         "observation": "hospital observation"}  # encounter classes that are stays, in words


def _line(service_line: str) -> str:
    return ACRONYMS.get(service_line, service_line.replace("_", " "))


@dataclass
class Event:
    day: date
    what: str  # in words: "ED visit", "admitted (4 days)", "HCBS authorised, 12 h a week"


@dataclass
class History:
    member_id: str
    region_id: str | None
    age: int | None
    since: date
    until: date
    counts: dict[str, int] = field(default_factory=dict)  # admissions, ED visits, crisis episodes, ...
    waiting: list[str] = field(default_factory=list)  # referrals received and not started, with days waited
    events: list[Event] = field(default_factory=list)  # newest first

    def summary(self) -> str:
        """One line: the counts that are not zero, and what the member is waiting for."""
        shown = [f"{n} {k if n != 1 else SINGULAR[k]}" for k, n in self.counts.items() if n]
        return ", ".join(shown) + (f"; waiting for {', '.join(self.waiting)}" if self.waiting else "") or \
            f"nothing recorded in the last {MONTHS} months"


def member_history(ws: Workspace, member_id: str, until: date, *, months: int = MONTHS,
                   limit: int = 20) -> History:
    """The member's last `months` of care to `until` (counts, referrals waiting, the newest `limit` events).
    It reads one person's records: callers record the look (`review.show` does)."""
    since = until - timedelta(days=round(months * 30.44))
    params = {"m": member_id, "a": since, "b": until}

    def rows(sql: str) -> list[tuple]:  # DuckDB refuses parameters a query does not use
        return ws.con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).fetchall()

    row = next(iter(rows("SELECT region_id, birth_year FROM members WHERE member_id = $m")), None)
    h = History(member_id, row[0] if row else None, until.year - row[1] if row and row[1] else None, since, until)
    events: list[Event] = []
    counted = {"inpatient": "admissions", "emergency": "ED visits", "crisis": "crisis episodes"}
    h.counts = dict.fromkeys([*counted.values(), "visits missed by providers"], 0)
    for cls, admit, discharge, disposition in rows("""
            SELECT encounter_class, admit_date, discharge_date, discharge_disposition FROM encounters
            WHERE member_id = $m AND admit_date BETWEEN $a AND $b"""):
        if cls in counted:
            h.counts[counted[cls]] += 1
        if cls == "emergency":
            events.append(Event(admit, "ED visit"))
        elif cls in STAYS:
            n = (discharge - admit).days if discharge else None
            days = "still in" if n is None else "same day" if n == 0 else f"{n} day{'s' if n != 1 else ''}"
            to = f", to {disposition.replace('_', ' ')}" if disposition else ""
            events.append(Event(admit, f"{STAYS[cls]} ({days}{to})"))
    for line, start, end, hours in rows("""
            SELECT service_line, start_date, end_date, hours_per_week FROM authorizations
            WHERE member_id = $m AND start_date <= $b AND (end_date IS NULL OR end_date >= $a)"""):
        a_week = f", {hours:g} h a week" if hours else ""
        events.append(Event(start, f"{_line(line)} authorised{a_week}"
                                   + ("" if end is None or end > until else f" (ended {end})")))
    h.counts["visits missed by providers"] = rows("""SELECT count(*) FROM visits WHERE member_id = $m
            AND status = 'missed_provider' AND scheduled_date BETWEEN $a AND $b""")[0][0]
    for line, received in rows("""
            SELECT service_line, received_date FROM referrals WHERE member_id = $m AND received_date <= $b
            AND (start_of_care_date IS NULL OR start_of_care_date > $b) AND status IN ('pending', 'authorized')"""):
        h.waiting.append(f"{_line(line)} ({(until - received).days} days)")
        events.append(Event(received, f"referred to {_line(line)}, not yet started"))
    for day, status in rows("""SELECT event_date, housing_status FROM housing_events
            WHERE member_id = $m AND event_date BETWEEN $a AND $b"""):
        events.append(Event(day, f"housing: {status.replace('_', ' ')}"))
    for day, kind, severity in rows("""SELECT incident_date, incident_type, severity FROM incidents
            WHERE member_id = $m AND incident_date BETWEEN $a AND $b"""):
        events.append(Event(day, f"incident: {kind.replace('_', ' ')} ({severity})"))
    h.events = sorted(events, key=lambda e: e.day, reverse=True)[:limit]
    return h


def workspace_roster(ws: Workspace) -> tuple[Path, str]:
    """The roster a workspace names for re-identification on the server (`[review] roster`, a path relative to
    the workspace folder or absolute, and `[review] roster_column`, default member_id)."""
    cfg = ws.config.get("review", {})
    if not cfg.get("roster"):
        raise CaretwinError("this workspace names no roster of the agency's member ids: an administrator sets "
                            "[review] roster in caretwin.toml")
    return ws.path / cfg["roster"], str(cfg.get("roster_column", "member_id"))


def reidentify(ws: Workspace, member_id: str, roster: str | Path | None = None, *, column: str | None = None,
               actor: Actor | None = None) -> str:
    """The agency's own id behind pseudonym `member_id`, found in `roster` (a CSV with `column`; default the
    workspace's own, `workspace_roster`). Refused unless `actor` has person-level access for a purpose that
    needs it; every request is recorded."""
    actor = actor or Actor.local("care_management")
    decision = allowed(actor, "person.read")
    if not decision.allowed:
        trail_for(ws).record(kind="security", action="R", subtype="member.reidentify", agent=actor.name,
                             role=actor.role, purpose=actor.purpose[:64], entity_type="member", entity_id=member_id,
                             outcome="4", detail={"refused": decision.reason})
        raise CaretwinError(decision.reason)
    if roster is None:
        roster, default_column = workspace_roster(ws)
        column = column or default_column
    key, roster, column = ws.key(), Path(roster), column or "member_id"
    found = None
    try:
        with roster.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if column not in (reader.fieldnames or []):
                raise CaretwinError(f"{roster.name}: no column {column!r} (its columns: {', '.join(reader.fieldnames or [])})")
            found = next((r[column] for r in reader if r[column] and pseudonymise(r[column].strip(), key) == member_id),
                         None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CaretwinError(f"{roster.name}: cannot read the roster ({type(exc).__name__})") from None
    record_event(ws, actor, kind="read", action="R", subtype="member.reidentify", entity_type="member",
                 entity_id=member_id, outcome="0" if found else "4",
                 detail={"roster": roster.name, **({} if found else {"result": "not in the roster"})})
    if found is None:
        raise CaretwinError(f"{member_id} is not in {roster.name}: it holds nobody loaded under this workspace's key")
    return found.strip()

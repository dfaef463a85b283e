"""Provider early warning: an index of strain for each home- and community-based provider, its trend,
and the factors behind it in plain words.

Factors, over a window of weeks ending on the last week of data: staff turnover, vacancy rate,
overtime per worker, critical incidents and complaints per worker, the share of visits the provider
missed, and the share of staff without required training. Each is placed against the other providers
(a robust z-score: distance from the median in units of the interquartile range) and the index is the
mean of the capped scores, mapped to 0-100. With no labelled provider failures to fit weights to, the
factors weigh equally; the index ranks providers for a person to look at, it does not decide anything.
Documentation delays are not in the data model yet, so they are not a factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from caretwin.workspace import Workspace

FACTORS: dict[str, tuple[str, str]] = {  # name -> (plain words, how the value reads)
    "turnover": ("staff turnover", "{:.0%} a year"),
    "vacancy_rate": ("vacancies", "{:.0%} of posts unfilled"),
    "overtime_per_worker": ("overtime", "{:.1f} hours per worker a week"),
    "incidents_per_worker": ("critical incidents", "{:.2f} per worker"),
    "complaints_per_worker": ("complaints", "{:.2f} per worker"),
    "missed_visit_rate": ("visits missed by the provider", "{:.1%} of visits"),
    "training_gap": ("staff without required training", "{:.0%} of staff"),
}
CAP = 3.0  # robust z-scores are capped so that one extreme factor cannot carry the index alone


@dataclass(frozen=True)
class Driver:
    factor: str
    value: float
    score: float  # robust z-score against the other providers (capped)
    words: str


@dataclass(frozen=True)
class ProviderRisk:
    provider_id: str
    name: str
    region_id: str
    service_line: str
    index: float  # 0-100: 50 is a typical provider
    trend: float | None  # change from the window before (points); None without earlier data
    drivers: tuple[Driver, ...]  # factors above typical, largest first


def _factors(ws: Workspace, start: date, end: date) -> dict[str, dict[str, float]]:
    """Factor values per provider for the weeks starting in [start, end)."""
    rows = ws.con.execute("""
        WITH w AS (
            SELECT provider_id, avg(headcount) AS staff, avg(coalesce(vacancies, 0)) AS vac,
                   sum(coalesce(separations, 0)) AS seps, avg(coalesce(overtime_hours, 0)) AS ot,
                   avg(training_completion) AS trained, count(*) AS weeks
            FROM workforce WHERE week_start >= ? AND week_start < ? GROUP BY 1),
        i AS (SELECT provider_id, count(*) AS n FROM incidents
              WHERE incident_date >= ? AND incident_date < ?
                AND severity IN ('high', 'critical') GROUP BY 1),
        c AS (SELECT provider_id, count(*) AS n FROM complaints
              WHERE complaint_date >= ? AND complaint_date < ? GROUP BY 1),
        v AS (SELECT provider_id, avg((status = 'missed_provider')::DOUBLE) AS missed FROM visits
              WHERE scheduled_date >= ? AND scheduled_date < ? GROUP BY 1)
        SELECT w.provider_id, w.staff, w.vac, w.seps, w.ot, w.trained, w.weeks,
               coalesce(i.n, 0), coalesce(c.n, 0), v.missed
        FROM w LEFT JOIN i USING (provider_id) LEFT JOIN c USING (provider_id) LEFT JOIN v USING (provider_id)
    """, [start, end] * 4).fetchall()
    out = {}
    for pid, staff, vac, seps, ot, trained, weeks, inc, cmp_, missed in rows:
        staff = max(float(staff or 0), 1.0)
        out[pid] = {
            "turnover": float(seps) / staff * 52.0 / weeks,
            "vacancy_rate": float(vac) / (staff + float(vac)),
            "overtime_per_worker": float(ot) / staff,
            "incidents_per_worker": inc / staff,
            "complaints_per_worker": cmp_ / staff,
            "missed_visit_rate": float(missed) if missed is not None else np.nan,
            "training_gap": 1.0 - float(trained) if trained is not None else np.nan,
        }
    return out


def _scores(values: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Robust z-scores of each factor across providers (0 where a factor has no spread or no value)."""
    pids = list(values)
    out: dict[str, dict[str, float]] = {p: {} for p in pids}
    for f in FACTORS:
        x = np.array([values[p][f] for p in pids], dtype=float)
        ok = ~np.isnan(x)
        med = np.median(x[ok]) if ok.any() else 0.0
        q1, q3 = np.percentile(x[ok], (25, 75)) if ok.any() else (0.0, 0.0)
        spread = (q3 - q1) / 1.349 or (np.std(x[ok]) if ok.sum() > 1 else 0.0)
        z = np.where(ok & (spread > 0), (x - med) / (spread if spread > 0 else 1.0), 0.0)
        for p, v in zip(pids, np.clip(z, -CAP, CAP)):
            out[p][f] = float(v)
    return out


def _by_peers(values: dict[str, dict[str, float]], info: dict[str, tuple]) -> dict[str, dict[str, float]]:
    """Scores against providers of the same service line (all providers when a line has fewer than 3)."""
    line = {p: info.get(p, ("?", "?", "?"))[2] for p in values}
    out: dict[str, dict[str, float]] = {}
    for ln in set(line.values()):
        peers = [p for p in values if line[p] == ln]
        pool = peers if len(peers) >= 3 else list(values)
        if len(pool) < 2:
            continue
        scored = _scores({p: values[p] for p in pool})
        out.update({p: scored[p] for p in peers})
    return out


def _index(scores: dict[str, float]) -> float:
    """0-100: the mean capped score mapped through a logistic (50 = typical, 90+ = several factors far out)."""
    return float(100.0 / (1.0 + np.exp(-1.5 * np.mean(list(scores.values())))))


def provider_warnings(ws: Workspace, *, weeks: int = 8, as_of: date | None = None) -> list[ProviderRisk]:
    """Every home- and community-based provider with staffing data, highest index first."""
    if as_of is None:
        last = ws.con.execute("SELECT max(week_start) FROM workforce").fetchone()[0]
        if last is None:
            return []
        as_of = last + timedelta(days=7)
    start, before = as_of - timedelta(weeks=weeks), as_of - timedelta(weeks=2 * weeks)
    info = {r[0]: r[1:] for r in ws.con.execute(
        "SELECT provider_id, name, region_id, service_line FROM providers").fetchall()}
    now = _factors(ws, start, as_of)
    earlier = _factors(ws, before, start)
    s_now, s_before = _by_peers(now, info), _by_peers(earlier, info)
    out = []
    for pid, sc in s_now.items():
        idx = _index(sc)
        trend = idx - _index(s_before[pid]) if pid in s_before else None
        drivers = tuple(sorted((Driver(f, now[pid][f], sc[f], f"{FACTORS[f][0]}: {FACTORS[f][1].format(now[pid][f])}")
                                for f in FACTORS if sc[f] > 0.5), key=lambda d: -d.score))
        name, region, line = info.get(pid, ("?", "?", "?"))
        out.append(ProviderRisk(pid, name, region, line, round(idx, 1),
                                None if trend is None else round(trend, 1), drivers))
    return sorted(out, key=lambda r: (-r.index, r.provider_id))

"""Workforce and provider quality: separations (and the overtime effect), hires, overtime ceiling,
missed visits, incidents, complaints and provider exits, from the weekly workforce rows and visits."""

from __future__ import annotations

import numpy as np
from scipy import optimize

from caretwin.calibrate.data import Window, span
from caretwin.calibrate.estimate import Estimate
from caretwin.calibrate.fit import SE_LIMIT, beta_draws, gamma_rate_draws

HOURS_PER_FTE = 35.0  # the engine's contracted week; workforce rows do not carry it
RURALITY = ("urban", "suburban", "rural", "frontier")


def _rows(con, w: Window) -> dict[str, np.ndarray]:
    s, e = w.sql()["start"], w.sql()["end"]
    return con.execute(f"""
        WITH wf AS (
            SELECT w.*, p.service_line, coalesce(r.rurality, 'suburban') AS rurality,
                   max(w.headcount + w.vacancies) OVER (PARTITION BY w.provider_id) AS budget
            FROM workforce w JOIN providers p USING (provider_id) LEFT JOIN regions r ON r.region_id = p.region_id
            WHERE w.week_start BETWEEN {s} AND {e}
        ), missed AS (
            SELECT provider_id, {s} + CAST(7 * floor((scheduled_date - {s}) / 7) AS INTEGER) AS week_start,
                   count(*) FILTER (WHERE status = 'missed_provider') AS missed, count(*) AS visits
            FROM visits WHERE scheduled_date BETWEEN {s} AND {e} GROUP BY ALL
        ), inc AS (
            SELECT provider_id, {s} + CAST(7 * floor((incident_date - {s}) / 7) AS INTEGER) AS week_start,
                   count(*) AS incidents FROM incidents GROUP BY ALL
        ), cmp AS (
            SELECT provider_id, {s} + CAST(7 * floor((complaint_date - {s}) / 7) AS INTEGER) AS week_start,
                   count(*) AS complaints FROM complaints GROUP BY ALL
        )
        SELECT wf.provider_id, wf.week_start, wf.rurality, wf.headcount, wf.vacancies, wf.hires, wf.separations,
               coalesce(wf.overtime_hours, 0) AS overtime, coalesce(wf.training_completion, 0.9) AS training, wf.budget,
               coalesce(missed.missed, 0) AS missed, coalesce(missed.visits, 0) AS visits,
               coalesce(inc.incidents, 0) AS incidents, coalesce(cmp.complaints, 0) AS complaints
        FROM wf LEFT JOIN missed USING (provider_id, week_start) LEFT JOIN inc USING (provider_id, week_start)
        LEFT JOIN cmp USING (provider_id, week_start)
        ORDER BY wf.provider_id, wf.week_start""").fetchnumpy()


def _ewma(provider: np.ndarray, x: np.ndarray, keep: float, weight: float) -> np.ndarray:
    """Per-provider running sums `acc = keep * acc + weight * x`, this week included, as the engine keeps them
    (rows sorted by provider, week)."""
    out = np.zeros(len(x))
    acc, prev = 0.0, None
    for i in range(len(x)):
        if provider[i] != prev:
            acc, prev = 0.0, provider[i]
        acc = keep * acc + weight * x[i]
        out[i] = acc
    return out


def estimate(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    r = _rows(con, w)
    n = len(r["headcount"])
    data = f"{n:,} provider-weeks of workforce rows, {span(w)}"
    if n < 20:
        return [Estimate(x, None, supported=False, data=data, note="fewer than 20 provider-weeks of workforce data")
                for x in ("rate_separation", "rel_separation_per_overtime", "p_hire_week_by_rurality")]
    rng = np.random.default_rng(seed)
    hc = r["headcount"].astype(float)
    hires, seps = r["hires"].astype(float), r["separations"].astype(float)
    before = hc - hires + seps  # headcount at the week's start
    ot_share = np.divide(r["overtime"], before * HOURS_PER_FTE, out=np.zeros(n), where=before > 0)
    sustained = _ewma(r["provider_id"], ot_share, 0.5, 0.5)  # the engine's ot_sustained
    ok = before > 0

    def nll(theta: np.ndarray) -> float:
        rate, rel = np.exp(theta)
        p = 1 - np.exp(-rate / 52.0 * (1 + rel * sustained[ok]))
        return -np.sum(seps[ok] * np.log(p) + (before[ok] - seps[ok]) * np.log1p(-p))

    res = optimize.minimize(nll, np.log([0.4, 2.0]), method="BFGS")
    cov = res.hess_inv if np.all(np.isfinite(res.hess_inv)) else np.eye(2) * 1e-2
    D = rng.multivariate_normal(res.x, cov, size=n_draws)
    theta = res.x.copy()
    unknown = np.sqrt(np.abs(np.diag(cov))) > SE_LIMIT  # e.g. an overtime effect the data barely inform
    theta[unknown], D[:, unknown] = np.nan, np.nan
    theta, D = np.exp(theta), np.exp(D)
    method = "binomial likelihood of weekly separations with the engine's overtime link, normal draws on the log scale"
    out = [Estimate("rate_separation", float(theta[0]), D[:, 0], method, data),
           Estimate("rel_separation_per_overtime", float(theta[1]), D[:, 1], method, data,
                    note="overtime share smoothed week to week as the engine does")]
    # hires: each vacancy at the week's start is filled with a probability that depends on rurality
    vac_before = np.maximum(np.round(r["budget"]) - before, 0)
    rur = np.asarray(r["rurality"], object)
    values, draws = [], []
    for k in RURALITY:
        sel = rur == k
        h, v = float(hires[sel].sum()), float(vac_before[sel].sum())
        values.append(h / v if v else np.nan)
        draws.append(beta_draws(h, v, n_draws, rng.integers(1 << 31)) if v else np.full(n_draws, np.nan))
    seen = [i for i, v in enumerate(values) if not np.isnan(v)]
    if not seen:
        out.append(Estimate("p_hire_week_by_rurality", None, supported=False, data=data, note="no vacancies observed"))
    else:
        missing = [RURALITY[i] for i in range(4) if i not in seen]
        out.append(Estimate("p_hire_week_by_rurality", np.array(values), np.column_stack(draws),
                            "hires per open vacancy-week by rurality (Jeffreys beta draws)", data,
                            note=f"no providers in {', '.join(missing)}: the default is kept there (NaN)" if missing else ""))
    out.append(Estimate("max_overtime_share", float(ot_share.max()), None, "largest overtime share observed", data,
                        low=float(ot_share.max()), high=float(ot_share.max())))
    # missed visits: provider-weeks without overtime are fully staffed, so their misses are the base rate
    calm = (r["overtime"] == 0) & (before > 0)  # a provider with no staff left misses every visit
    k, m = float(r["missed"][calm].sum()), float(r["visits"][calm].sum())
    if m:
        out.append(Estimate("p_missed_provider_base", k / m, beta_draws(k, m, n_draws, rng.integers(1 << 31)),
                            "share of visits missed by providers in weeks without overtime", data))
    k, m = con.execute(f"""SELECT count(*) FILTER (WHERE v.status = 'missed_member'), count(*) FROM visits v
        WHERE v.scheduled_date BETWEEN {w.sql()['start']} AND {w.sql()['end']}
          AND NOT EXISTS (SELECT 1 FROM encounters x WHERE x.member_id = v.member_id  -- away in a bed that day
                          AND x.encounter_class IN ('inpatient', 'snf', 'crisis', 'emergency')
                          AND x.admit_date <= v.scheduled_date
                          AND (x.discharge_date IS NULL OR x.discharge_date > v.scheduled_date))""").fetchone()
    if m:
        out.append(Estimate("p_missed_member_visit", k / m, beta_draws(k, m, n_draws, rng.integers(1 << 31)),
                            "share of visits missed by members at home (Jeffreys beta draws)", data))
    # incidents: rate per worker-week with the engine's turnover, overtime and training factors as exposure
    turnover = _ewma(r["provider_id"], seps, 0.75, 1.0) / np.maximum(hc, 1)  # the engine's seps_4w per worker
    exposure = hc * (1 + 3 * turnover) * (1 + 2 * ot_share) * (1.6 - r["training"])
    k = float(r["incidents"].sum())
    out.append(Estimate("rate_incident_per_staff_week", k / exposure.sum(),
                        gamma_rate_draws(k, exposure.sum(), n_draws, rng.integers(1 << 31)),
                        "incidents per adjusted worker-week (Jeffreys gamma draws)", data))
    base = 0.001 * hc.sum()
    k, missed = float(r["complaints"].sum()), float(r["missed"].sum())
    if missed:
        d = (gamma_rate_draws(k, 1.0, n_draws, rng.integers(1 << 31)) - base) / missed
        out.append(Estimate("rate_complaint_per_missed_visit", max(k - base, 0) / missed, np.maximum(d, 0),
                            "complaints per provider-missed visit, after the engine's small per-worker baseline", data))
    return out

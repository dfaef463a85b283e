"""Referral rates: by acuity, age, caregiver support and region, with a trend and a seasonal cycle."""

from __future__ import annotations

import numpy as np
from scipy import stats

from caretwin.calibrate.data import Window, span, week_of
from caretwin.calibrate.estimate import Estimate
from caretwin.calibrate.fit import poisson


def estimate(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    s = w.sql()["start"]
    rows = con.execute(f"""
        WITH cells AS (
            SELECT week, region_id, tier, age >= 65 AS old, age < 18 AS child, no_caregiver, count(*) AS n
            FROM _cal_mw WHERE svc = 0 AND NOT away AND NOT after_withdrawal GROUP BY ALL
        ), ev AS (
            SELECT mw.week, mw.region_id, mw.tier, mw.age >= 65 AS old, mw.age < 18 AS child, mw.no_caregiver,
                   count(*) AS y
            FROM _cal_episodes ep JOIN _cal_mw mw ON mw.member_id = ep.member_id
             AND mw.week = {week_of('ep.received_date', w)}
            WHERE ep.service_line = 'hcbs' AND NOT coalesce(ep.from_discharge, false) AND mw.svc = 0 AND NOT mw.away
              AND NOT mw.after_withdrawal
              AND ep.received_date >= {s}
            GROUP BY ALL
        )
        SELECT week, region_id, tier, old, child, no_caregiver, n, coalesce(y, 0) AS y
        FROM cells LEFT JOIN ev USING (week, region_id, tier, old, child, no_caregiver)
        ORDER BY ALL""").fetchnumpy()
    regions = sorted(set(rows["region_id"].tolist()))
    week = rows["week"].astype(float)
    mid = w.start.timetuple().tm_yday - 1 + 7 * week + 3.5  # 0-based day of year of the week's middle
    theta = 2 * np.pi * mid / 365.0
    tier = rows["tier"].astype(int)
    cols = {"intercept": np.ones(len(week))}
    for k in (2, 3, 4):
        cols[f"tier{k}"] = (tier == k).astype(float)
    cols |= {"old": rows["old"].astype(float), "child": rows["child"].astype(float),
             "no_caregiver": rows["no_caregiver"].astype(float), "trend": 7 * week / 365.0,
             "cos": np.cos(theta), "sin": np.sin(theta)}
    for r in regions[1:]:
        cols[f"region:{r}"] = (rows["region_id"] == r).astype(float)
    names = list(cols)
    X = np.column_stack(list(cols.values()))
    exposure = rows["n"] * 7 / 365.0  # person-years at risk
    fit = poisson(rows["y"].astype(float), X, exposure, names)
    B = fit.draws(n_draws, seed)
    data = (f"{int(fit.events):,} HCBS referrals (not from hospital discharge) over {fit.exposure:,.0f} "
            f"person-years without an open service, {span(w)}")
    method = "Poisson regression on person-time (statsmodels GLM), normal draws of the coefficients"
    t_end = (w.end - w.start).days / 365.0  # the twin starts after the window: levels at its end

    def col(name: str) -> np.ndarray:
        return B[:, fit.index(name)]

    tier_cols = [fit.index(n) for n in ("tier2", "tier3", "tier4")]

    def tier_rates(c: np.ndarray) -> np.ndarray:
        return np.exp(c[fit.index("intercept")] + c[fit.index("trend")] * t_end + np.r_[0.0, c[tier_cols]])

    out = [
        Estimate("rate_hcbs_referral_tier", tier_rates(fit.coef), np.array([tier_rates(b) for b in B]), method, data,
                 note=f"level at {w.end} (reference region {regions[0]})"),
        Estimate("rel_hcbs_referral_65plus", *fit.multiplier("old", B), method, data),
        Estimate("rel_hcbs_referral_child", *fit.multiplier("child", B), method, data),
        Estimate("rel_hcbs_referral_no_caregiver", *fit.multiplier("no_caregiver", B), method, data),
        Estimate("referral_trend_per_year", float(fit.coef[fit.index("trend")]), col("trend"), method, data),
    ]
    if len(regions) > 1:
        draws = {regions[0]: np.ones(n_draws)} | {r: np.exp(col(f"region:{r}")) for r in regions[1:]}
        value = {regions[0]: 1.0} | {r: float(np.exp(fit.coef[fit.index(f"region:{r}")])) for r in regions[1:]}
        out.append(Estimate("rel_hcbs_referral_region", value, draws, method, data,
                            note=f"relative to {regions[0]}, whose multiplier is fixed at 1"))
    # seasonality: a cos + b sin = A cos(theta - phase); an amplitude not distinguishable from zero is reported
    # as zero with a one-sided interval (the amplitude cannot be negative)
    ia, ib = fit.index("cos"), fit.index("sin")
    ab = fit.coef[[ia, ib]]
    if not np.isfinite(ab).all():  # not estimable: the defaults stay
        return out
    chi2 = float(ab @ np.linalg.solve(fit.cov[np.ix_([ia, ib], [ia, ib])], ab))
    amp = np.hypot(col("cos"), col("sin"))
    peak = (np.degrees(np.arctan2(col("sin"), col("cos"))) / 360.0 * 365.0) % 365.0
    if stats.chi2.sf(chi2, 2) > 0.10:
        out.append(Estimate("referral_seasonality", 0.0, None, method, data, low=0.0, high=float(np.quantile(amp, 0.9)),
                            note="no seasonal cycle detected (p > 0.10); 90% upper bound given"))
    else:
        out.append(Estimate("referral_seasonality", float(np.hypot(*ab)), amp, method, data))
        out.append(Estimate("referral_peak_day", float(np.quantile(peak, 0.5)), peak, method, data))
    return out

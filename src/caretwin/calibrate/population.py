"""Members and services: deaths, disenrolment, institutionalisation, housing transitions, the hours
and lengths of community services, and the shortest authorisation delay."""

from __future__ import annotations

import numpy as np

from caretwin.calibrate.data import Window, span, week_of
from caretwin.calibrate.estimate import Estimate
from caretwin.calibrate.fit import beta_draws, gamma_rate_draws, poisson

METHOD = "Poisson regression on person-weeks at home (statsmodels GLM), normal draws of the coefficients"


def deaths(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    s, e = w.sql()["start"], w.sql()["end"]
    out: list[Estimate] = []
    method = METHOD
    # deaths at home (not in a bed), by age band and acuity
    c = con.execute(f"""
        WITH d AS (
            SELECT m.member_id, m.death_date AS d FROM members m WHERE m.death_date BETWEEN {s} AND {e}
              AND NOT EXISTS (SELECT 1 FROM encounters x WHERE x.member_id = m.member_id
                              AND x.discharge_disposition = 'died' AND x.discharge_date = m.death_date)
        ), hit AS (
            SELECT mw.member_id, mw.week, count(*) AS y FROM d
            JOIN _cal_mw mw ON mw.member_id = d.member_id AND mw.week = {week_of('d.d', w)} GROUP BY ALL
        )
        SELECT CASE WHEN age < 18 THEN 0 WHEN age < 65 THEN 1 WHEN age < 80 THEN 2 ELSE 3 END AS band, tier,
               count(*) AS n, coalesce(sum(hit.y), 0) AS y
        FROM _cal_mw mw LEFT JOIN hit USING (member_id, week) WHERE NOT mw.away GROUP BY ALL ORDER BY ALL""").fetchnumpy()
    band, tier = c["band"].astype(int), c["tier"].astype(int)
    X = np.column_stack([np.ones(len(band))] + [(band == b) * 1.0 for b in (0, 2, 3)] + [(tier == t) * 1.0 for t in (1, 3, 4)])
    names = ["c", "b0", "b2", "b3", "t1", "t3", "t4"]
    fit = poisson(c["y"].astype(float), X, c["n"] * 7 / 365.0, names)
    B = fit.draws(n_draws, seed)
    data = f"{int(fit.events):,} deaths at home over {fit.exposure:,.0f} person-years, {span(w)}"

    def ages(v):  # a band with almost no deaths (children) has a very uncertain, possibly huge, coefficient
        with np.errstate(over="ignore"):
            return np.exp(v[0] + np.array([v[1], 0.0, v[2], v[3]]))

    def tiers(v):
        return np.exp(np.array([v[4], 0.0, v[5], v[6]]))

    out.append(Estimate("rate_death_by_age", ages(fit.coef), np.array([ages(b) for b in B]), method, data,
                        note="tier 2; age bands 0-17, 18-64, 65-79, 80+"))
    out.append(Estimate("rel_death_by_tier", tiers(fit.coef), np.array([tiers(b) for b in B]), method, data))
    return out


def enrolment(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    s, e = w.sql()["start"], w.sql()["end"]
    out: list[Estimate] = []
    method = METHOD
    # disenrolment (alive), with its lower rate while a service is open
    c = con.execute(f"""
        WITH d AS (SELECT member_id, enrollment_end AS d FROM members WHERE death_date IS NULL
                   AND enrollment_end BETWEEN {s} AND {e}),
        hit AS (SELECT mw.member_id, mw.week, count(*) AS y FROM d
                JOIN _cal_mw mw ON mw.member_id = d.member_id AND mw.week = {week_of('d.d', w)} GROUP BY ALL)
        SELECT svc > 0 AS open_service, count(*) AS n, coalesce(sum(hit.y), 0) AS y
        FROM _cal_mw mw LEFT JOIN hit USING (member_id, week) WHERE NOT mw.away GROUP BY ALL ORDER BY ALL""").fetchnumpy()
    X = np.column_stack([np.ones(len(c["n"])), c["open_service"].astype(float)])
    fit = poisson(c["y"].astype(float), X, c["n"] * 7 / 365.0, ["c", "open"])
    B = fit.draws(n_draws, seed + 1)
    data = f"{int(fit.events):,} disenrolments over {fit.exposure:,.0f} person-years, {span(w)}"
    out.append(Estimate("rate_disenroll", float(np.exp(fit.coef[0])), np.exp(B[:, 0]), method, data))
    out.append(Estimate("rel_disenroll_in_service", float(np.exp(fit.coef[1])), np.exp(B[:, 1]), method, data))
    # new enrolment: members whose enrolment starts inside the window, per person-year on the books
    k, py = con.execute(f"""WITH last AS (SELECT {s} + CAST(7 * max(week) + 6 AS INTEGER) AS d FROM _cal_mw)
        SELECT (SELECT count(*) FROM members, last WHERE enrollment_start > {s} AND enrollment_start <= last.d),
               (SELECT count(*) * 7 / 365.0 FROM _cal_mw)""").fetchone()
    if k < 10:
        out.append(Estimate("rate_enrolment", None, supported=False, data=f"{k} enrolments starting {span(w)}",
                            note="fewer than 10 members joined inside the window"))
    else:
        out.append(Estimate("rate_enrolment", k / py, gamma_rate_draws(k, py, n_draws, seed + 3),
                            "enrolments starting inside the window per person-year on the books (Jeffreys gamma)",
                            f"{k:,} new members over {py:,.0f} person-years, {span(w)}"))
    # institutionalisation from the community: an open-ended nursing-facility stay not following a hospital stay
    # (members with no open service: unmet need, which the data do not record, raises the rate for the others)
    k, = con.execute(f"""SELECT count(*) FROM encounters x JOIN _cal_mw mw ON mw.member_id = x.member_id
         AND mw.week = {week_of('x.admit_date', w)}
        WHERE x.encounter_class = 'snf' AND x.admit_date BETWEEN {s} AND {e}
          AND (x.discharge_date IS NULL OR x.discharge_disposition = 'died')
          AND mw.tier >= 3 AND mw.svc = 0 AND NOT mw.away AND NOT mw.recent_service AND NOT mw.after_withdrawal
          AND NOT EXISTS (SELECT 1 FROM encounters i WHERE i.member_id = x.member_id
                          AND i.encounter_class IN ('inpatient', 'snf') AND i.discharge_date = x.admit_date)""").fetchone()
    py, = con.execute("""SELECT count(*) * 7 / 365.0 FROM _cal_mw
        WHERE NOT away AND tier >= 3 AND svc = 0 AND NOT recent_service AND NOT after_withdrawal""").fetchone()
    out.append(Estimate("rate_institutionalisation", k / py, gamma_rate_draws(k, py, n_draws, seed + 2),
                        "nursing-facility entries from the community per person-year, tiers 3-4 (Jeffreys gamma)",
                        f"{k:,} entries over {py:,.0f} person-years, {span(w)}",
                        note="members with no service open or ended in the last 12 weeks, whose unmet need is near zero"))
    return out


def housing(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    rng = np.random.default_rng(seed)
    out: list[Estimate] = []
    # housing: weekly transitions between states
    # only weeks whose state is on record (after a member's first change, or members who never changed), and
    # without an open service, whose unmet need would raise the risk of losing housing
    h = con.execute("""SELECT a.housing AS src, b.housing AS dst, count(*) FROM _cal_mw a JOIN _cal_mw b
        ON b.member_id = a.member_id AND b.week = a.week + 1 WHERE a.housing_known AND a.svc = 0 AND NOT a.after_withdrawal GROUP BY ALL""").fetchall()
    counts = {(a, b): n for a, b, n in h}
    for name, src, dst in (("p_week_stable_to_at_risk", "stable", "at_risk"), ("p_week_at_risk_to_homeless", "at_risk", "homeless"),
                           ("p_week_at_risk_to_stable", "at_risk", "stable"), ("p_week_homeless_to_at_risk", "homeless", "at_risk")):
        n = sum(v for (a, _), v in counts.items() if a == src)
        k = counts.get((src, dst), 0)
        if n < 100:
            out.append(Estimate(name, None, supported=False, data=f"{n} member-weeks {src} on record",
                                note="fewer than 100 member-weeks in the state"))
            continue
        out.append(Estimate(name, k / max(n, 1), beta_draws(k, n, n_draws, rng.integers(1 << 31)),
                            "weekly transitions between housing states (Jeffreys beta draws)",
                            f"{n:,} member-weeks {src}, {span(w)}",
                            note="supportive-housing placements count as moves to stable" if dst == "stable" else ""))
    return out


def services(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    s, e = w.sql()["start"], w.sql()["end"]
    rng = np.random.default_rng(seed)
    out: list[Estimate] = []
    # community services: hours by acuity, lengths of service, the shortest authorisation delay
    hrs = con.execute(f"""SELECT least(greatest(coalesce(m.acuity_tier, 2), 1), 4) AS tier, r.hours_per_week AS h
        FROM referrals r JOIN members m USING (member_id) WHERE r.service_line = 'hcbs' AND r.hours_per_week > 0
        AND r.received_date BETWEEN {s} AND {e} AND r.authorized_date IS DISTINCT FROM r.received_date""").fetchnumpy()
    if len(hrs["h"]) >= 20:
        means, draws = [], []
        for t in (1, 2, 3, 4):
            x = hrs["h"][hrs["tier"] == t].astype(float)
            x = x if len(x) > 1 else hrs["h"].astype(float)
            means.append(x.mean())
            draws.append(rng.normal(x.mean(), x.std(ddof=1) / np.sqrt(len(x)), n_draws))
        out.append(Estimate("hcbs_hours_by_tier", np.array(means), np.column_stack(draws),
                            "mean authorised HCBS hours a week by acuity", f"{len(hrs['h']):,} HCBS referrals, {span(w)}"))
    for name, line, shift in (("dur_hcbs_service_days", "hcbs", 0.0), ("dur_home_health_days", "home_health", 14.0)):
        # a service completes when it closes and the member neither died, left, entered a nursing facility nor
        # was sent back to the waitlist by a provider exit that day; other endings censor it
        ended, days = con.execute(f"""
            WITH ep AS (
                SELECT ep.*, ep.status = 'closed' AND ep.ended <= {e} AND m.death_date IS DISTINCT FROM ep.ended
                       AND m.enrollment_end IS DISTINCT FROM ep.ended
                       AND NOT EXISTS (SELECT 1 FROM referrals r WHERE r.member_id = ep.member_id
                                       AND r.received_date = ep.ended AND r.referral_id <> ep.referral_id)
                       AND NOT EXISTS (SELECT 1 FROM encounters x WHERE x.member_id = ep.member_id
                                       AND x.encounter_class = 'snf' AND x.admit_date = ep.ended) AS completed
                FROM _cal_episodes ep JOIN members m USING (member_id)
                WHERE ep.service_line = '{line}' AND ep.start_of_care_date IS NOT NULL
                  AND coalesce(ep.ended, {e}) >= {s} AND ep.start_of_care_date <= {e}
            )
            SELECT count(*) FILTER (WHERE completed),
                   sum(greatest(least(coalesce(ended, {e}), {e}) - greatest(start_of_care_date + {int(shift)}, {s}), 0))
            FROM ep""").fetchone()
        if ended and days:
            d = shift + 1.0 / gamma_rate_draws(ended, float(days), n_draws, rng.integers(1 << 31))
            out.append(Estimate(name, shift + float(days) / ended, d, "exponential length of service with censoring: service-days "
                                "in the window per ending (draws of the rate from its Jeffreys gamma)",
                                f"{ended:,} {line} services ended in {span(w)}",
                                note="home health: 14 days plus an exponential, as the engine draws it" if shift else ""))
    hh, = con.execute(f"""SELECT avg(hours_per_week) FROM referrals WHERE service_line = 'home_health'
        AND received_date BETWEEN {s} AND {e}""").fetchone()
    if hh:
        out.append(Estimate("home_health_hours_week", float(hh), None, "mean home-health hours a week",
                            span(w), low=float(hh), high=float(hh)))
    lo, = con.execute(f"""SELECT min(authorized_date - received_date) FROM _cal_episodes
        WHERE NOT coalesce(from_discharge, false) AND received_date BETWEEN {s} AND {e}""").fetchone()
    if lo is not None:
        out.append(Estimate("min_auth_days", float(lo), None, "shortest referral-to-authorisation delay", span(w),
                            low=float(lo), high=float(lo)))
    return out

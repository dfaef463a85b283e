"""Care-coordination capacity and provider exits: estimable only when the data show them binding."""

from __future__ import annotations

import numpy as np

from caretwin.calibrate.data import Window, span
from caretwin.calibrate.estimate import Estimate
from caretwin.calibrate.fit import beta_draws


def authorisation(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    """Authorisations a coordinator completes a day, from the days when the backlog outran them.

    On a day when referrals old enough to authorise were left pending, the region worked at capacity,
    so its authorisations that day divided by its coordinators is the capacity. Without such days the
    data only give a lower bound, and the default is kept.
    """
    s, e = w.sql()["start"], w.sql()["end"]
    rows = con.execute(f"""
        WITH coord AS (
            SELECT region_id, sum(capacity) AS coordinators FROM providers
            WHERE service_line = 'care_coordination' AND coalesce(status, 'active') <> 'closed' GROUP BY 1
        ), days AS (SELECT DISTINCT authorized_date AS d FROM referrals WHERE authorized_date BETWEEN {s} AND {e}),
        done AS (
            SELECT m.region_id, r.authorized_date AS d, count(*) AS n FROM referrals r JOIN members m USING (member_id)
            WHERE r.authorized_date BETWEEN {s} AND {e} AND r.authorized_date > r.received_date GROUP BY ALL
        ), left_over AS (
            SELECT m.region_id, days.d, count(*) AS n FROM days JOIN referrals r ON r.received_date < days.d
             AND (r.authorized_date IS NULL OR r.authorized_date > days.d) AND r.status <> 'withdrawn'
            JOIN members m USING (member_id) GROUP BY ALL
        )
        SELECT done.region_id, done.d, done.n, coalesce(left_over.n, 0) AS waiting, coord.coordinators
        FROM done JOIN coord USING (region_id) LEFT JOIN left_over USING (region_id, d)""").fetchnumpy()
    per = rows["n"] / np.maximum(rows["coordinators"], 1e-9)
    binding = rows["waiting"] > 0
    data = f"{int(rows['n'].sum()):,} authorisations on {len(per):,} region-days, {span(w)}"
    if binding.sum() >= 5:
        x = per[binding]
        rng = np.random.default_rng(seed)
        return [Estimate("auths_per_coordinator_day", float(np.median(x)),
                         rng.choice(x, size=(n_draws, len(x))).mean(axis=1),
                         "authorisations per coordinator on days the backlog was left pending (bootstrap)", data)]
    bound = float(per.max()) if len(per) else 0.0
    return [Estimate("auths_per_coordinator_day", None, supported=False, data=data,
                     note=f"the backlog never outran the coordinators; capacity is at least {bound:.2f} a day")]


def provider_exit(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    """Weekly exit probability of providers that have been short of staff for the engine's strain period."""
    s, e = w.sql()["start"], w.sql()["end"]
    rows = con.execute(f"""
        WITH wf AS (
            SELECT provider_id, week_start, headcount,
                   max(headcount + vacancies) OVER (PARTITION BY provider_id) AS budget
            FROM workforce WHERE week_start BETWEEN {s} AND {e}
        ), flagged AS (
            SELECT *, headcount < 0.55 * budget AS strained,
                   sum(CASE WHEN headcount < 0.55 * budget THEN 0 ELSE 1 END)
                       OVER (PARTITION BY provider_id ORDER BY week_start) AS spell
            FROM wf
        ), runs AS (
            SELECT *, row_number() OVER (PARTITION BY provider_id, spell ORDER BY week_start) - 1 AS weeks_strained
            FROM flagged
        )
        SELECT count(*) FILTER (WHERE strained AND weeks_strained >= 6) AS exposed,
               (SELECT count(*) FROM providers WHERE closed_date BETWEEN {s} AND {e}) AS exits
        FROM runs""").fetchone()
    exposed, exits = int(rows[0] or 0), int(rows[1] or 0)
    data = f"{exits} provider exits, {exposed} provider-weeks past six strained weeks, {span(w)}"
    if exposed < 10:
        return [Estimate("p_exit_week_when_strained", None, supported=False, data=data,
                         note="too few long-strained provider-weeks to estimate exits")]
    k = min(exits, exposed)
    return [Estimate("p_exit_week_when_strained", k / exposed, beta_draws(k, exposed, n_draws, seed),
                     "exits per provider-week past the strain period (Jeffreys beta draws)", data)]

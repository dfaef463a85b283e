"""ED visits, admissions and crises: Poisson regressions on person-time at home."""

from __future__ import annotations

import numpy as np

from caretwin.calibrate.data import Window, span, week_of
from caretwin.calibrate.estimate import Estimate
from caretwin.calibrate.fit import Fit, beta_draws, poisson
from caretwin.calibrate.hospital import PSYCH

HOUSING = ("stable", "at_risk", "homeless")


def _cells(con, w: Window, events_sql: str, where: str = "TRUE") -> dict[str, np.ndarray]:
    """Person-weeks at home by covariates, with the events of `events_sql` (member_id, d) in them."""
    return con.execute(f"""
        WITH ev AS ({events_sql}),
        hit AS (
            SELECT mw.member_id, mw.week, count(*) AS y FROM ev
            JOIN _cal_mw mw ON mw.member_id = ev.member_id AND mw.week = {week_of('ev.d', w)} AND NOT mw.away
            WHERE {where} GROUP BY ALL
        )
        SELECT mw.tier, mw.housing, mw.smi, mw.sud, mw.age >= 65 AS old, mw.age < 18 AS child, mw.svc, count(*) AS n,
               coalesce(sum(hit.y), 0) AS y
        FROM _cal_mw mw LEFT JOIN hit USING (member_id, week)
        WHERE NOT mw.away AND {where} GROUP BY ALL ORDER BY ALL""").fetchnumpy()


def _design(c: dict[str, np.ndarray], ref_tier: int = 2) -> tuple[np.ndarray, list[str]]:
    tier = c["tier"].astype(int)
    cols = {"intercept": np.ones(len(tier))}
    for t in (1, 2, 3, 4):
        if t != ref_tier:
            cols[f"tier{t}"] = (tier == t).astype(float)
    housing = np.asarray(c["housing"], object)
    cols |= {"at_risk": (housing == "at_risk").astype(float), "homeless": (housing == "homeless").astype(float),
             "smi": c["smi"].astype(float), "sud": c["sud"].astype(float), "old": c["old"].astype(float),
             "child": c["child"].astype(float),
             "waiting": (c["svc"] == 1).astype(float), "in_service": (c["svc"] == 2).astype(float)}
    return np.column_stack(list(cols.values())), list(cols)


def _fit(cells: dict[str, np.ndarray], n_draws: int, seed: int) -> tuple[Fit, np.ndarray]:
    """The GLM of `_design` on person-years, with coefficient draws."""
    X, names = _design(cells)
    fit = poisson(cells["y"].astype(float), X, cells["n"] * 7 / 365.0, names)
    return fit, fit.draws(n_draws, seed)


def _tier_tuple(fit, B) -> tuple[np.ndarray, np.ndarray]:
    def f(c):
        return np.array([np.exp(c[fit.index("tier1")]), 1.0, np.exp(c[fit.index("tier3")]), np.exp(c[fit.index("tier4")])])
    return f(fit.coef), np.array([f(b) for b in B])


METHOD = "Poisson regression on person-weeks at home (statsmodels GLM), normal draws of the coefficients"


def ed(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    s, e = w.sql()["start"], w.sql()["end"]
    out: list[Estimate] = []
    method = METHOD
    confounded = "waiting and in-service effects mix with the unmet-need index, which the data do not record"
    # ED visits that are not boarding for a crisis bed (those last longer than the day)
    ed = _cells(con, w, f"""SELECT member_id, admit_date AS d FROM encounters WHERE encounter_class = 'emergency'
        AND admit_date BETWEEN {s} AND {e} AND discharge_date = admit_date""")
    fit, B = _fit(ed, n_draws, seed)
    data = f"{int(fit.events):,} ED visits over {fit.exposure:,.0f} person-years at home, {span(w)}"
    out.append(Estimate("rate_ed", *fit.multiplier("intercept", B), method, data,
                        note="tier 2, stably housed, no SMI/SUD, no open service"))
    v, d = _tier_tuple(fit, B)
    out.append(Estimate("rel_ed_by_tier", v, d, method, data, note="tier 2 is the reference (1)"))
    (risk, risk_d), (homeless, homeless_d) = fit.multiplier("at_risk", B), fit.multiplier("homeless", B)
    out.append(Estimate("rel_by_housing", np.array([1.0, risk, homeless]),
                        np.column_stack([np.ones(n_draws), risk_d, homeless_d]), method, data,
                        note="estimated on ED visits; the engine applies it to admissions and crises too"))
    out.append(Estimate("rel_ed_smi", *fit.multiplier("smi", B), method, data))
    out.append(Estimate("rel_ed_sud", *fit.multiplier("sud", B), method, data))
    for name in ("rel_acute_waiting", "rel_acute_in_service", "rel_ed_per_unmet_need", "rel_admission_per_unmet_need"):
        out.append(Estimate(name, None, supported=False, data=data, note=confounded))
    transfer, total = con.execute(f"""SELECT count(*) FILTER (WHERE discharge_disposition = 'transfer'), count(*)
        FROM encounters WHERE encounter_class = 'emergency' AND admit_date BETWEEN {s} AND {e}
          AND discharge_date = admit_date""").fetchone()
    out.append(Estimate("p_ed_admitted", transfer / max(total, 1), beta_draws(transfer, total, n_draws, seed + 1),
                        "share of ED visits transferred to an inpatient bed", f"{total:,} ED visits, {span(w)}"))
    return out


def admissions(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    s, e = w.sql()["start"], w.sql()["end"]
    out: list[Estimate] = []
    method = METHOD
    # admissions the hazard makes: not through the ED, not psychiatric, not within 30 days of a discharge
    adm = _cells(con, w, f"""SELECT i.member_id, i.admit_date AS d FROM encounters i
        WHERE i.encounter_class = 'inpatient' AND i.admit_date BETWEEN {s} AND {e} AND NOT {PSYCH}
          AND NOT EXISTS (SELECT 1 FROM encounters x WHERE x.member_id = i.member_id AND x.encounter_class = 'emergency'
                          AND x.admit_date = i.admit_date AND x.discharge_disposition = 'transfer')
          """, where="NOT mw.post_discharge")  # weeks near a discharge carry the readmission hazard
    fit, B = _fit(adm, n_draws, seed + 2)
    data = f"{int(fit.events):,} direct admissions over {fit.exposure:,.0f} person-years at home, {span(w)}"
    out.append(Estimate("rate_admission", *fit.multiplier("intercept", B), method, data,
                        note="tier 2, aged 18-64, stably housed, no SMI/SUD; readmission windows excluded"))
    v, d = _tier_tuple(fit, B)
    out.append(Estimate("rel_admission_by_tier", v, d, method, data, note="tier 2 is the reference (1)"))
    out.append(Estimate("rel_admission_65plus", *fit.multiplier("old", B), method, data))
    out.append(Estimate("rel_admission_child", *fit.multiplier("child", B), method, data))
    return out


def crisis(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    s, e = w.sql()["start"], w.sql()["end"]
    out: list[Estimate] = []
    method = METHOD
    # crises: mobile crisis responses
    cr = _cells(con, w, f"""SELECT e.member_id, e.admit_date AS d FROM encounters e JOIN providers p
        ON p.provider_id = e.facility_id WHERE e.encounter_class = 'crisis' AND p.service_line = 'mobile_crisis'
        AND e.admit_date BETWEEN {s} AND {e}""")
    bh = (cr["smi"] | cr["sud"]).astype(float)
    housing = np.asarray(cr["housing"], object)
    X = np.column_stack([np.ones(len(bh)), bh, (housing == "at_risk").astype(float), (housing == "homeless").astype(float),
                         (cr["svc"] == 1).astype(float), (cr["svc"] == 2).astype(float)])
    fit = poisson(cr["y"].astype(float), X, cr["n"] * 7 / 365.0, ["other", "bh", "at_risk", "homeless", "w", "s"])
    B = fit.draws(n_draws, seed + 3)
    data = f"{int(fit.events):,} mobile crisis responses over {fit.exposure:,.0f} person-years at home, {span(w)}"
    out.append(Estimate("rate_crisis_other", float(np.exp(fit.coef[0])), np.exp(B[:, 0]), method, data))
    out.append(Estimate("rate_crisis_bh", float(np.exp(fit.coef[0] + fit.coef[1])), np.exp(B[:, 0] + B[:, 1]), method,
                        data, note="members with serious mental illness or a substance use disorder"))
    k, m = con.execute(f"""SELECT count(*) FILTER (WHERE e.discharge_disposition = 'transfer'), count(*)
        FROM encounters e JOIN providers p ON p.provider_id = e.facility_id WHERE e.encounter_class = 'crisis'
        AND p.service_line = 'mobile_crisis' AND e.admit_date BETWEEN {s} AND {e}""").fetchone()
    out.append(Estimate("p_crisis_needs_bed", k / max(m, 1), beta_draws(k, m, n_draws, seed + 4),
                        "share of crisis responses referred on to a stabilisation bed", data))
    csu = con.execute(f"""SELECT e.discharge_date - e.admit_date FROM encounters e JOIN providers p
        ON p.provider_id = e.facility_id WHERE e.encounter_class = 'crisis' AND p.service_line = 'crisis_stabilization'
        AND e.admit_date >= {s} AND e.discharge_date <= {e}""").fetchnumpy()
    x = next(iter(csu.values())).astype(float)
    if len(x) >= 10:
        rng = np.random.default_rng(seed + 5)
        out.append(Estimate("dur_csu_days", x.mean(), rng.normal(x.mean(), x.std(ddof=1) / np.sqrt(len(x)), n_draws),
                            "mean stabilisation-unit stay", f"{len(x):,} stays ended {span(w)}"))
    k, m = con.execute(f"""SELECT count(*) FILTER (WHERE discharge_disposition = 'psychiatric'), count(*)
        FROM encounters WHERE encounter_class = 'emergency' AND discharge_date > admit_date
        AND admit_date BETWEEN {s} AND {e}""").fetchone()
    if m:
        out.append(Estimate("p_boarding_psych_admission", k / m, beta_draws(k, m, n_draws, seed + 6),
                            "share of ED boardings that ended in a psychiatric admission", f"{m:,} boardings, {span(w)}"))
    return out

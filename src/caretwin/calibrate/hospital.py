"""Hospital and discharge: lengths of stay by acuity, post-acute needs, SNF stays, the delay limit."""

from __future__ import annotations

import numpy as np

from caretwin.calibrate.data import Window, span
from caretwin.calibrate.estimate import Estimate
from caretwin.calibrate.fit import beta_draws

PSYCH = "(primary_diagnosis LIKE 'F%' OR primary_diagnosis LIKE 'R45%')"


def _mean_draws(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draws of a mean: normal with its standard error (the sample sizes here are in the hundreds or more)."""
    return rng.normal(x.mean(), x.std(ddof=1) / np.sqrt(len(x)), size=n) if len(x) > 1 else np.full(n, x.mean())


def estimate(con, w: Window, n_draws: int, seed: int) -> list[Estimate]:
    s, e = w.sql()["start"], w.sql()["end"]
    rng = np.random.default_rng(seed)
    stays = con.execute(f"""
        SELECT least(greatest(coalesce(m.acuity_tier, 2), 1), 4) AS tier, year(i.admit_date) - m.birth_year AS age,
               coalesce(i.ready_for_discharge_date, i.discharge_date) - i.admit_date AS los,
               i.discharge_date - coalesce(i.ready_for_discharge_date, i.discharge_date) AS delay,
               i.discharge_disposition AS disp, coalesce(mw.svc, 0) AS svc
        FROM encounters i JOIN members m USING (member_id)
        LEFT JOIN _cal_mw mw ON mw.member_id = i.member_id AND mw.week = CAST(floor((i.admit_date - {s}) / 7) AS BIGINT)
        WHERE i.encounter_class = 'inpatient' AND i.admit_date >= {s} AND i.admit_date <= {e} - 45
          AND i.discharge_date <= {e} AND NOT {PSYCH}""").fetchnumpy()
    n = len(stays["los"])
    data = f"{n:,} inpatient stays (psychiatric excluded) admitted 45+ days before the end, {span(w)}"
    if n < 20:
        return [Estimate(name, None, supported=False, data=data, note="fewer than 20 inpatient stays")
                for name in ("dur_los_by_tier", "p_inpatient_death", "p_inpatient_death_child", "p_discharge_snf", "p_discharge_snf_65plus",
                             "p_discharge_home_health", "p_discharge_hcbs", "max_delayed_discharge_days")]
    los, tier, age, disp = stays["los"].astype(float), stays["tier"], stays["age"], np.asarray(stays["disp"], object)
    out = []
    # length of stay: the engine's family is a geometric number of days >= 1; say how it compares with a Poisson
    means, draws, family = [], [], []
    for t in (1, 2, 3, 4):
        x = los[tier == t]
        x = x if len(x) else los
        means.append(x.mean())
        draws.append(_mean_draws(x, n_draws, rng))
        p = 1 / max(x.mean(), 1.0 + 1e-9)
        ll_geo = np.sum(np.log(p) + (x - 1) * np.log1p(-p))
        lam = max(x.mean() - 1, 1e-9)
        from scipy.special import gammaln
        ll_poi = np.sum((x - 1) * np.log(lam) - lam - gammaln(x))
        family.append("geometric" if ll_geo >= ll_poi else "Poisson")
    out.append(Estimate("dur_los_by_tier", np.array(means), np.column_stack(draws),
                        "mean days from admission to medical readiness, by acuity tier", data,
                        note="best-fitting family by tier (geometric vs shifted Poisson): " + ", ".join(family)))
    need_snf = np.isin(disp, ("snf", "home_without_support"))
    old = age >= 65
    for name, hit, among in (("p_inpatient_death", disp == "died", age >= 18),
                             ("p_inpatient_death_child", disp == "died", age < 18),
                             ("p_discharge_snf", need_snf, ~old & (age >= 18)), ("p_discharge_snf_65plus", need_snf, old),
                             ("p_discharge_home_health", disp == "home_health", np.ones(n, bool)),
                             ("p_discharge_hcbs", disp == "hcbs", stays["svc"] == 0)):
        k, m = float(hit[among].sum()), float(among.sum())
        out.append(Estimate(name, k / max(m, 1), beta_draws(k, m, n_draws, rng.integers(1 << 31)),
                            "share of stays (Jeffreys beta draws)", data + (", members with no open service"
                                                                            if name == "p_discharge_hcbs" else "")))
    gave_up = stays["delay"][disp == "home_without_support"]
    if len(gave_up):
        out.append(Estimate("max_delayed_discharge_days", float(gave_up.max()), None,
                            "longest delay before a discharge without the needed SNF bed", data,
                            low=float(gave_up.max()), high=float(gave_up.max())))
    else:
        out.append(Estimate("max_delayed_discharge_days", None, supported=False, data=data,
                            note="no discharge without support observed"))
    snf = con.execute(f"""SELECT discharge_date - admit_date FROM encounters
        WHERE encounter_class = 'snf' AND admit_date >= {s} AND admit_date <= {e} - 120 AND discharge_date <= {e}
          AND discharge_disposition <> 'died'""").fetchnumpy()
    x = next(iter(snf.values())).astype(float)
    if len(x) >= 10:
        out.append(Estimate("dur_snf_days", x.mean(), _mean_draws(x, n_draws, rng), "mean SNF stay ending at home",
                            f"{len(x):,} SNF stays ended {span(w)}",
                            note="stays admitted 120+ days before the end, so few are cut off by it"))
    return out

"""Backtesting: calibrate up to a cut-off, simulate the held-out weeks from the state on that day, and
compare the forecast bands with what happened, per metric, region and week."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from caretwin.calibrate import calibrate
from caretwin.simulate import scoring
from caretwin.simulate.calibrated import N_DRAWS, params_of
from caretwin.simulate.initial import data_end, from_workspace
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.runner import run_replications
from caretwin.workspace import Workspace

LEVELS = (50, 80, 95)
METRICS = ("referrals", "waitlist", "missed_visit_rate", "ed_visits", "admissions")


def observed(ws: Workspace, start: date, weeks: int, region_ids: tuple[str, ...]) -> dict[str, np.ndarray]:
    """What happened in each week from `start`, by region: the same definitions as the engine's metrics."""
    con = ws.con
    s, R = f"DATE '{start}'", len(region_ids)
    wk = f"CAST(floor((d - {s}) / 7) AS BIGINT)"
    queries = {
        "referrals": """SELECT m.region_id, r.received_date AS d, 1.0 AS v FROM referrals r JOIN members m USING (member_id)
            WHERE r.service_line = 'hcbs' AND r.authorized_date IS DISTINCT FROM r.received_date""",
        "ed_visits": """SELECT m.region_id, e.admit_date AS d, 1.0 AS v FROM encounters e JOIN members m USING (member_id)
            WHERE e.encounter_class = 'emergency' AND e.discharge_date = e.admit_date""",
        "admissions": """SELECT m.region_id, e.admit_date AS d, 1.0 AS v FROM encounters e JOIN members m USING (member_id)
            WHERE e.encounter_class = 'inpatient'""",
        "missed": """SELECT m.region_id, v.scheduled_date AS d, (v.status = 'missed_provider')::DOUBLE AS v FROM visits v
            JOIN members m USING (member_id) JOIN authorizations a USING (authorization_id) WHERE a.service_line = 'hcbs'""",
        "scheduled": """SELECT m.region_id, v.scheduled_date AS d, 1.0 AS v FROM visits v JOIN members m USING (member_id)
            JOIN authorizations a USING (authorization_id) WHERE a.service_line = 'hcbs'""",
    }
    index = {r: i for i, r in enumerate(region_ids)}
    out = {}
    for name, q in queries.items():
        a = np.zeros((weeks, R))
        for region, week, v in con.execute(f"""SELECT region_id, {wk} AS week, sum(v) FROM ({q})
                WHERE d >= {s} AND d < {s} + {7 * weeks} GROUP BY ALL""").fetchall():
            if region in index:
                a[week, index[region]] = v
        out[name] = a
    # the waitlist on each week's last day: authorised, not started, not withdrawn by then
    a = np.zeros((weeks, R))
    for week in range(weeks):
        d = f"{s} + {7 * week + 6}"
        for region, n in con.execute(f"""SELECT m.region_id, count(*) FROM referrals r JOIN members m USING (member_id)
                WHERE r.service_line = 'hcbs' AND r.authorized_date <= {d}
                  AND (r.start_of_care_date IS NULL OR r.start_of_care_date > {d}) AND r.status <> 'withdrawn'
                  AND (m.death_date IS NULL OR m.death_date > {d}) AND (m.enrollment_end IS NULL OR m.enrollment_end > {d})
                GROUP BY 1""").fetchall():
            if region in index:
                a[week, index[region]] = n
    out["waitlist"] = a
    with np.errstate(invalid="ignore", divide="ignore"):
        out["missed_visit_rate"] = np.where(out["scheduled"] > 0, out["missed"] / out["scheduled"], np.nan)
    return out


def forecast(result, metric: str) -> np.ndarray:
    """[replication, week, region] of one metric from a run."""
    M = result.metrics
    if metric == "missed_visit_rate":
        with np.errstate(invalid="ignore", divide="ignore"):
            s = M[..., SLOTS("scheduled_visits", "hcbs")]
            return np.where(s > 0, M[..., SLOTS("missed_visits", "hcbs")] / s, np.nan)
    line = "hcbs" if metric in ("referrals", "waitlist") else "all"
    return M[..., SLOTS(metric, line)]


PIT_BINS = 10
# each band's lower and upper bound as positions among the hub quantiles
BOUNDS = {lv: tuple(int(np.argmin(np.abs(scoring.QUANTILES - x))) for x in ((1 - lv / 100) / 2, (1 + lv / 100) / 2))
          for lv in LEVELS}
HISTORY_WEEKS = 26  # weeks before the cut-off that the naive forecast learns its spread from


@dataclass
class Validation:
    cutoff: date
    weeks: int
    replications: int
    region_ids: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per metric, region and week

    def coverage(self, rows: list[dict[str, Any]] | None = None) -> dict[str, float]:
        """Share of observations inside each central band, judged by randomised PIT (ties spread evenly)."""
        rows = self.rows if rows is None else rows
        return {str(lv): float(np.mean([r[f"in{lv}"] for r in rows])) if rows else float("nan") for lv in LEVELS}

    @staticmethod
    def scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Mean WIS of the forecast and of the naive forecast, their ratio (below 1: better than naive), bias
        (relative error of the median), MAPE and the PIT histogram (share of observations per tenth)."""
        obs = np.array([r["observed"] for r in rows])
        med = np.array([r["p50"] for r in rows])
        w, naive = np.array([r["wis"] for r in rows]), np.array([r["naive_wis"] for r in rows])
        both = np.isfinite(w) & np.isfinite(naive)
        pit = np.array([r["pit"] for r in rows])
        pos = obs > 0
        return {
            "wis": float(w.mean()) if len(w) else None,
            "naive_wis": float(naive[both].mean()) if both.any() else None,
            "relative_wis": float(w[both].mean() / naive[both].mean()) if both.any() and naive[both].mean() else None,
            "bias": float((med.mean() - obs.mean()) / obs.mean()) if len(obs) and obs.mean() else None,
            "mape": float(np.mean(np.abs(med[pos] - obs[pos]) / obs[pos])) if pos.any() else None,
            "pit_histogram": (np.histogram(pit, PIT_BINS, (0, 1))[0] / max(len(pit), 1)).round(4).tolist(),
        }

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cutoff": str(self.cutoff), "holdout_weeks": self.weeks,
                               "replications": self.replications, "observations": len(self.rows),
                               "coverage": self.coverage(), **self.scores(self.rows), "by_metric": {}}
        for m in METRICS:
            rows = [r for r in self.rows if r["metric"] == m]
            out["by_metric"][m] = {
                "coverage": self.coverage(rows), **self.scores(rows),
                "by_region": {rid: self.coverage([r for r in rows if r["region_id"] == rid]) for rid in self.region_ids},
            }
        # metrics differ in scale, so over all of them the relative WIS is the geometric mean of each metric's
        rel = [d["relative_wis"] for d in out["by_metric"].values() if d["relative_wis"]]
        out["relative_wis"] = float(np.exp(np.mean(np.log(rel)))) if rel else None
        return out


def validate(ws: Workspace, *, holdout_weeks: int = 12, replications: int = 100, seed: int = 0,
             workers: int | None = None) -> Validation:
    """Calibrate on the data before the last `holdout_weeks` weeks, forecast those weeks and score the forecast
    against what happened (randomised PIT coverage, WIS against a naive forecast); `seed` seeds everything."""
    end = data_end(ws)
    cutoff = end - timedelta(days=7 * holdout_weeks)
    cal = calibrate(ws, until=cutoff, draws=N_DRAWS, seed=seed)
    world = from_workspace(ws, as_of=cutoff)
    base = params_of(cal)
    draws = [params_of(cal, k) for k in range(min(N_DRAWS, replications))]
    result = run_replications(world, base, weeks=holdout_weeks, replications=replications, seed=seed, workers=workers,
                              draws=draws)
    obs = observed(ws, world.start, holdout_weeks, world.region_ids)
    h = max(1, min(HISTORY_WEEKS, (cutoff - cal.window.start).days // 7))
    past = observed(ws, world.start - timedelta(days=7 * h), h, world.region_ids)
    rng = np.random.default_rng([seed, 0x5017])  # the PIT's tie-breaking draws
    v = Validation(cutoff, holdout_weeks, replications, world.region_ids)
    for m in METRICS:
        f = forecast(result, m)
        q = scoring.quantiles_of(f)  # the bands' bounds are among the hub quantiles
        med = q[..., len(scoring.ALPHAS)]
        pit = scoring.randomised_pit(f, obs[m], rng)
        w = scoring.wis(np.nan_to_num(obs[m]), np.nan_to_num(q))
        naive = scoring.naive_quantiles(past[m], holdout_weeks)
        naive_w = scoring.wis(np.nan_to_num(obs[m]), np.nan_to_num(naive, nan=0.0))
        naive_w = np.where(np.isnan(naive).any(axis=-1), np.nan, naive_w)
        for wk in range(holdout_weeks):
            for r, rid in enumerate(world.region_ids):
                if np.isnan(pit[wk, r]):
                    continue
                row = {"metric": m, "region_id": rid, "week": wk, "observed": float(obs[m][wk, r]),
                       "p50": float(med[wk, r]), "pit": float(pit[wk, r]), "wis": float(w[wk, r]),
                       "naive_wis": float(naive_w[wk, r])}
                for lv in LEVELS:
                    row[f"in{lv}"] = bool(scoring.central_hit(pit[wk, r], lv / 100))
                    lo, hi = BOUNDS[lv]
                    row[f"lo{lv}"], row[f"hi{lv}"] = float(q[wk, r, lo]), float(q[wk, r, hi])
                v.rows.append(row)
    return v


def _svg(rows: list[dict[str, Any]], width: int = 220, height: int = 90) -> str:
    """Observed (dots) against the forecast median and its 50% and 95% bands, week by week."""
    rows = sorted(rows, key=lambda r: r["week"])
    if not rows:
        return ""
    top = max(max(r["hi95"], r["observed"]) for r in rows) or 1.0
    n = max(len(rows) - 1, 1)
    x = lambda i: 4 + (width - 8) * i / n
    y = lambda v: height - 4 - (height - 8) * v / top

    def band(lo: str, hi: str) -> str:
        pts = [f"{x(i):.1f},{y(r[hi]):.1f}" for i, r in enumerate(rows)]
        pts += [f"{x(i):.1f},{y(r[lo]):.1f}" for i, r in reversed(list(enumerate(rows)))]
        return " ".join(pts)

    median = " ".join(f"{x(i):.1f},{y(r['p50']):.1f}" for i, r in enumerate(rows))
    dots = "".join(f'<circle cx="{x(i):.1f}" cy="{y(r["observed"]):.1f}" r="2.2" class="{"in" if r["in95"] else "out"}"/>'
                   for i, r in enumerate(rows))
    return (f'<svg width="{width}" height="{height}" role="img"><polygon points="{band("lo95", "hi95")}" class="b95"/>'
            f'<polygon points="{band("lo50", "hi50")}" class="b50"/><polyline points="{median}" class="med"/>{dots}</svg>')


def _pit_svg(hist: list[float], width: int = 160, height: int = 60) -> str:
    """A PIT histogram: bars of the share of observations in each tenth, and the flat line a calibrated forecast
    gives (a U shape: bands too narrow; a hump: too wide; a slope: biased)."""
    top = max(max(hist), 2 / len(hist)) or 1.0
    bw = width / len(hist)
    bars = "".join(f'<rect x="{i * bw + 1:.1f}" y="{height - height * h / top:.1f}" width="{bw - 2:.1f}" '
                   f'height="{height * h / top:.1f}" class="bar"><title>{h:.1%}</title></rect>' for i, h in enumerate(hist))
    flat = height - height * (1 / len(hist)) / top
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="PIT histogram">{bars}'
            f'<line x1="0" x2="{width}" y1="{flat:.1f}" y2="{flat:.1f}" class="flat"/></svg>')


def render_html(v: Validation) -> str:
    """A self-contained report: coverage and scores, PIT histograms, then observed against forecast bands."""
    from html import escape

    s = v.summary()
    head = "".join(f"<th>{lv}% band</th>" for lv in LEVELS)

    def line(name: str, d: dict[str, Any], bold: bool = False) -> str:
        tag = ("<b>", "</b>") if bold else ("", "")
        cov = d["coverage"]
        cells = "".join(f"<td>{tag[0]}{cov[str(lv)]:.0%}{tag[1]}</td>" for lv in LEVELS)
        rel = "" if d["relative_wis"] is None else f"{d['relative_wis']:.2f}"
        wis = "" if d["wis"] is None else f"{d['wis']:.3g}"
        return (f"<tr><td>{tag[0]}{escape(name)}{tag[1]}</td>{cells}<td>{wis}</td><td>{rel}</td>"
                f"<td>{(d['bias'] or 0):+.1%}</td><td>{(d['mape'] or 0):.0%}</td>"
                f"<td>{_pit_svg(d['pit_histogram'])}</td></tr>")

    rows = "".join(line(m, d) for m, d in s["by_metric"].items()) + line("all", s, bold=True)
    charts = ""
    for m in METRICS:
        charts += f"<h2>{escape(m)}</h2><div class=grid>"
        for rid in v.region_ids:
            charts += (f"<figure>{_svg([r for r in v.rows if r['metric'] == m and r['region_id'] == rid])}"
                       f"<figcaption>{escape(rid)}</figcaption></figure>")
        charts += "</div>"
    return f"""<!doctype html><html lang="en"><meta charset="utf-8"><title>caretwin backtest</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}td:first-child{{text-align:left}}
.grid{{display:flex;flex-wrap:wrap;gap:8px}}figure{{margin:0}}figcaption{{font-size:12px;color:#555}}
.b95{{fill:#c6dbef}}.b50{{fill:#6baed6}}.med{{fill:none;stroke:#08519c;stroke-width:1.5}}
.in{{fill:#222}}.out{{fill:#d62728}}.bar{{fill:#6baed6}}.flat{{stroke:#222;stroke-dasharray:3 2}}</style>
<h1>Backtest: forecast against what happened</h1>
<p>Calibrated on data up to {v.cutoff}; the following {v.weeks} weeks forecast from the state on that day,
{v.replications} replications, each with its own draw of the parameters. {s['observations']} weekly
region-level observations.</p>
<p>Coverage is the share of observations inside each central band, judged by the randomised probability integral
transform (PIT): ties between a count and the forecast are spread evenly, so an honest band holds its nominal share
exactly. WIS is the weighted interval score over 23 quantiles (lower is better); relative WIS divides it by the WIS
of a naive forecast (the last week's value, with the spread of past changes over the same horizon): below 1 beats it
(over all metrics, the geometric mean of theirs). Bias is the
median's relative error. The PIT histogram of a calibrated forecast is flat (dashed line): a U shape means bands
too narrow, a hump too wide, a slope a biased forecast.</p>
<table><tr><th>metric</th>{head}<th>WIS</th><th>relative WIS</th><th>bias</th><th>MAPE</th><th>PIT histogram</th></tr>
{rows}</table>
<p>Charts: light band 95%, dark band 50%, line the median; dots what happened (red when outside the 95% band).</p>
{charts}</html>
"""

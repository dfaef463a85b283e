"""Comparing scenarios with the baseline, replication by replication.

Scenarios run with the same seed and replication count share their random numbers (common random
numbers), so the difference in replication r is mostly the scenario's effect; its mean across
replications gets a 95% t-interval. The first run given is the baseline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from caretwin.errors import CaretwinError
from caretwin.governance.suppression import suppress_breakdown
from caretwin.model.schema import RURALITY
from caretwin.scenarios.run import changes_of, scenario_of
from caretwin.scenarios.spec import Failure
from caretwin.simulate.metrics import COST_CATEGORIES, GROUPS, SLOTS
from caretwin.simulate.evidence import Evidence
from caretwin.simulate.results import RUNS_DDL, evidence_of_run, replicates_path
from caretwin.workspace import Workspace

TARGET_RELATIVE_HALF_WIDTH = 0.05  # a key interval narrower than +/-5% of its estimate is precise enough
Z95 = 1.959963984540054


@dataclass
class Replicates:
    """One stored run's replications: `weekly[rep, week, region, slot]` (whole population) and
    `groups[rep, group, slot]` (the county and its subgroups, summed over the horizon)."""

    run_id: str
    name: str
    weekly: np.ndarray
    groups: np.ndarray
    region_ids: list[str]
    rurality: np.ndarray
    info: dict[str, Any]
    failure: Failure

    def slot(self, metric: str, line: str = "all") -> np.ndarray:
        """`[rep, week, region]` of one slot."""
        return self.weekly[..., SLOTS(metric, line)].astype(np.float64)


def load(ws: Workspace, run_id: str) -> Replicates:
    ws.con.execute(RUNS_DDL)
    row = ws.con.execute("SELECT run_id, label, start_date, weeks, replications, seed, members FROM _runs "
                         "WHERE run_id = ?", [run_id]).fetchone()
    path = replicates_path(ws, run_id)
    if row is None:
        raise CaretwinError(f"no run {run_id!r} in {ws.path}; `caretwin runs {ws.path}` lists them")
    if not path.exists():
        raise CaretwinError(f"run {run_id} has no stored replications ({path}); run it again with this version")
    with np.load(path) as z:
        weekly, groups, regions, rurality = z["weekly"], z["groups"], list(z["region_ids"]), z["rurality"]
        slots = [str(s) for s in z["slots"]]
    if groups.ndim == 4:  # stored by an earlier version, with subgroups by region
        groups = groups.sum(axis=1)
    weekly, groups = by_slot_name(weekly, slots), by_slot_name(groups, slots)
    spec = scenario_of(ws, run_id) or {}
    info = dict(zip(("run_id", "label", "start_date", "weeks", "replications", "seed", "members"), row))
    info["start_date"] = str(info["start_date"])
    info["changes"] = changes_of(ws, run_id)
    return Replicates(run_id, spec.get("name") or row[1] or run_id, weekly, groups, [str(r) for r in regions],
                      rurality, info, Failure(**spec.get("failure", {})))


def by_slot_name(a: np.ndarray, stored: list[str]) -> np.ndarray:
    """A stored array's last axis laid out as today's slots, matched by name ("metric/line"): a run stored
    before a metric existed reads NaN for it (unknown, not zero), and a metric since removed is dropped."""
    if stored == [f"{m.name}/{line}" for m, line in SLOTS.rows]:
        return a
    at = {name: j for j, name in enumerate(stored)}
    out = np.full(a.shape[:-1] + (len(SLOTS),), np.nan, np.float32)
    for k, (m, line) in enumerate(SLOTS.rows):
        if (j := at.get(f"{m.name}/{line}")) is not None:
            out[..., k] = a[..., j]
    return out


# ------------------------------------------------------------------------------ what is compared
Measure = Callable[[Replicates], np.ndarray]  # -> [rep, region] (summed or averaged over the horizon)


def _total(metric: str, line: str = "all") -> Measure:
    return lambda r: r.slot(metric, line).sum(axis=1)


def _mean(metric: str, line: str = "all") -> Measure:
    return lambda r: r.slot(metric, line).mean(axis=1)


def _end(metric: str, line: str = "all") -> Measure:
    return lambda r: r.slot(metric, line)[:, -1]


def _cost(r: Replicates) -> np.ndarray:
    return sum(r.slot("cost", c).sum(axis=1) for c in COST_CATEGORIES)


@dataclass(frozen=True)
class Key:
    name: str
    label: str
    unit: str
    area: str
    measure: Measure
    denominator: Measure | None = None  # a ratio: summed numerator over summed denominator
    better: int = -1  # -1: lower is better; +1: higher is better; 0: neither


KEYS: tuple[Key, ...] = (
    Key("waitlist_hcbs", "people waiting for HCBS (weekly average)", "people", "waits", _mean("waitlist", "hcbs")),
    # the wait of those who started: clearing a backlog raises it, so it carries no better/worse verdict
    Key("mean_wait_days_hcbs", "mean wait of people who started HCBS", "days", "waits",
        _total("wait_days", "hcbs"), _total("starts", "hcbs"), better=0),
    Key("starts_hcbs", "HCBS starts", "people", "waits", _total("starts", "hcbs"), better=1),
    Key("missed_visits_hcbs", "missed HCBS visits", "visits", "missed visits", _total("missed_visits", "hcbs")),
    Key("missed_visit_rate_hcbs", "share of HCBS visits missed", "share", "missed visits",
        _total("missed_visits", "hcbs"), _total("scheduled_visits", "hcbs")),
    Key("ed_visits", "emergency department visits", "visits", "avoidable utilisation", _total("ed_visits")),
    Key("admissions", "hospital admissions", "stays", "avoidable utilisation", _total("admissions")),
    Key("readmissions", "30-day readmissions", "stays", "avoidable utilisation", _total("readmissions")),
    Key("delayed_discharge_days", "delayed-discharge days", "bed-days", "avoidable utilisation",
        _total("delayed_discharge_days")),
    Key("crisis_episodes", "crisis episodes", "episodes", "avoidable utilisation", _total("crisis_episodes")),
    Key("ed_boarding_days", "ED boarding days", "days", "avoidable utilisation", _total("ed_boarding_days")),
    Key("institutionalisations", "permanent moves to a nursing facility", "people", "avoidable utilisation",
        _total("institutionalisations")),
    Key("deaths", "deaths", "people", "avoidable utilisation", _total("deaths")),
    Key("separations_hcbs", "HCBS staff separations", "staff", "workforce", _total("separations", "hcbs")),
    Key("vacancies_hcbs", "HCBS vacancies at the end", "posts", "workforce", _end("vacancies", "hcbs")),
    Key("overtime_hours_hcbs", "HCBS overtime hours", "hours", "workforce", _total("overtime_hours", "hcbs")),
    Key("provider_exits", "provider exits", "providers", "workforce",
        lambda r: r.slot("provider_exits", "hcbs").sum(axis=1) + r.slot("provider_exits", "home_health").sum(axis=1)),
    Key("service_cost", "cost of services used", "currency", "costs", _cost),
    Key("intervention_cost", "cost of the interventions", "currency", "costs", _total("intervention_cost")),
    Key("total_cost", "total cost", "currency", "costs", lambda r: _cost(r) + _total("intervention_cost")(r)),
)
HEADLINE = ("waitlist_hcbs", "mean_wait_days_hcbs", "missed_visit_rate_hcbs", "ed_visits", "admissions",
            "institutionalisations", "total_cost")


def value_of(key: Key, r: Replicates, region: int | None = None) -> np.ndarray:
    """Per replication, for all regions or one."""
    def pick(x: np.ndarray) -> np.ndarray:
        return x.sum(axis=1) if region is None else x[:, region]
    num = pick(key.measure(r))
    if key.denominator is None:
        return num
    den = pick(key.denominator(r))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


# ------------------------------------------------------------------------------------- statistics
@dataclass
class Interval:
    mean: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def mean_interval(x: np.ndarray, level: float = 0.95) -> Interval:
    """The mean and its t-interval (a point when every replication agrees)."""
    x = np.asarray(x, dtype=np.float64)
    m = float(x.mean())
    if len(x) < 2:
        return Interval(m, math.nan, math.nan)
    se = float(x.std(ddof=1)) / math.sqrt(len(x))
    h = float(stats.t.ppf(0.5 + level / 2, len(x) - 1)) * se
    return Interval(m, m - h, m + h)


def wilson(k: float, n: int) -> Interval:
    """A proportion and its 95% Wilson score interval."""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    p = k / n
    d = 1 + Z95**2 / n
    c = (p + Z95**2 / (2 * n)) / d
    h = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / d
    return Interval(p, max(0.0, c - h), min(1.0, c + h))


def replications_needed(n: int, rel_half_width: float, target: float = TARGET_RELATIVE_HALF_WIDTH) -> int | None:
    """Replications for a relative half-width of `target` (half-widths shrink as 1/sqrt(n)); None if met."""
    if not math.isfinite(rel_half_width) or rel_half_width <= target:
        return None
    return int(math.ceil(n * (rel_half_width / target) ** 2))


# ----------------------------------------------------------------------------------- the results
@dataclass
class Difference:
    key: str
    label: str
    unit: str
    area: str
    better: int
    baseline: Interval
    scenario: Interval
    difference: Interval  # scenario minus baseline, paired
    relative_half_width: float  # of the scenario's mean
    replications_suggested: int | None  # for the scenario's mean to reach the target precision
    replications_to_resolve: int | None  # for this difference's interval to exclude zero, when it does not yet


@dataclass
class RegionFailure:
    region_id: str
    rurality: str
    baseline: Interval
    scenario: Interval
    difference: Interval
    causes: dict[str, float]  # share of replications failing by each criterion (scenario)


@dataclass
class GapRow:
    group_kind: str
    group_value: str
    outcome: str
    members: float | None  # average members (None: suppressed; the rates may still show)
    baseline_rate: float | None  # per 1,000 members a year (None: suppressed)
    scenario_rate: float | None
    difference: Interval | None


@dataclass
class Value:
    intervention_cost: Interval
    avoided_cost: Interval  # baseline service cost minus the scenario's
    net_cost: Interval  # change in total cost (negative: saves money)
    roi: Interval | None  # (avoided - intervention) / intervention; None without an intervention cost


@dataclass
class ScenarioComparison:
    run_id: str
    name: str
    differences: list[Difference]
    failure: list[RegionFailure]
    any_region_fails: Interval
    gap: list[GapRow]
    value: Value
    changes: list[str] = field(default_factory=list)  # what the scenario's actions change, in words

    @property
    def assumptions(self) -> list[str]:
        """The effects the scenario file assumes (a stated effect size is an input, not a finding)."""
        return [c for c in self.changes if "assumed" in c]

    def difference(self, key: str) -> Difference:
        return next(d for d in self.differences if d.key == key)


@dataclass
class Comparison:
    baseline_run: str
    baseline_name: str
    replications: int
    weeks: int
    seed: int
    start_date: str
    region_ids: list[str]
    failure_rule: dict[str, Any]
    baseline_failure: list[RegionFailure]
    scenarios: list[ScenarioComparison] = field(default_factory=list)
    weekly: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)  # run -> series -> quantile bands
    evidence: dict[str, Any] | None = None  # the baseline's parameters: estimated, set or defaults (None: not kept)
    resting_on_defaults: list[str] = field(default_factory=list)  # headline outcomes resting mainly on defaults

    def evidence_summary(self) -> str:
        """One sentence: what the numbers rest on."""
        ev = Evidence.from_dict(self.evidence)
        return ev.summary() if ev is not None else "not recorded (the runs were stored by an older version)"

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, np.generic):
        return _clean(x.item())
    return x


# ------------------------------------------------------------------------------------- failure
def failing(r: Replicates, rule: Failure) -> dict[str, np.ndarray]:
    """`[rep, region]` booleans: which regions fail in which replications, by criterion."""
    missed = r.slot("missed_visits", "hcbs")
    sched = r.slot("scheduled_visits", "hcbs")
    with np.errstate(invalid="ignore", divide="ignore"):
        high = np.where(sched > 0, missed / np.where(sched > 0, sched, 1), 0.0) > rule.missed_visit_rate
    run = np.zeros(high.shape[::2], np.int64)
    longest = np.zeros_like(run)
    for w in range(high.shape[1]):
        run = np.where(high[:, w], run + 1, 0)
        longest = np.maximum(longest, run)
    out = {"missed visits": longest >= rule.consecutive_weeks}
    if rule.provider_exit:
        exits = r.slot("provider_exits", "hcbs") + r.slot("provider_exits", "home_health")
        out["provider exit"] = exits.sum(axis=1) > 0
    wl = r.slot("waitlist", "hcbs")
    out["waitlist doubled"] = ((wl > rule.waitlist_ratio * wl[:, :1]) & (wl > rule.min_waitlist)).any(axis=1)
    return out


def _fails(r: Replicates, rule: Failure) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    causes = failing(r, rule)
    return np.logical_or.reduce(list(causes.values())), causes


def _region_failures(b: Replicates, s: Replicates, rule: Failure) -> tuple[list[RegionFailure], Interval]:
    fb, _ = _fails(b, rule)
    fs, causes = _fails(s, rule)
    n = fs.shape[0]
    rows = []
    for j, rid in enumerate(s.region_ids):
        rows.append(RegionFailure(rid, RURALITY[int(s.rurality[j])], wilson(fb[:, j].sum(), n),
                                  wilson(fs[:, j].sum(), n), mean_interval(fs[:, j].astype(float) - fb[:, j]),
                                  {c: float(v[:, j].mean()) for c, v in causes.items()}))
    rows.sort(key=lambda f: (-f.scenario.mean, f.region_id))
    return rows, wilson(fs.any(axis=1).sum(), n)


# ------------------------------------------------------------------------------ who bears the gap
GAP_OUTCOMES = (("ed_visits", "all", "ED visits"), ("admissions", "all", "admissions"),
                ("institutionalisations", "all", "moves to a nursing facility"),
                ("missed_visits", "hcbs", "missed HCBS visits"), ("waitlist", "hcbs", "people waiting for HCBS"))


def _group_table(r: Replicates) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Breakdowns as (kind, value) labels and `[rep, cell, slot]` horizon totals; region and rurality included."""
    G = r.groups.astype(np.float64)  # [rep, group, slot]
    by_region = r.weekly.sum(axis=1, dtype=np.float64)  # [rep, region, slot]
    labels, parts = [], []
    for g, (kind, value) in enumerate(GROUPS):
        if g == 0:
            continue
        labels.append((kind, value))
        parts.append(G[:, g])
    for j, rid in enumerate(r.region_ids):
        labels.append(("region", rid))
        parts.append(by_region[:, j])
    for c in sorted(set(int(x) for x in r.rurality)):
        labels.append(("rurality", RURALITY[c]))
        parts.append(by_region[:, r.rurality == c].sum(axis=1))
    return labels, np.stack(parts, axis=1)


def _gap(b: Replicates, s: Replicates, weeks: int) -> list[GapRow]:
    labels, B = _group_table(b)
    _, S = _group_table(s)
    k_members = SLOTS("members")
    members = B[:, :, k_members].mean(axis=0) / weeks  # average members (a stock summed over weeks)
    rows = []
    kinds = sorted({k for k, _ in labels}, key=[k for k, _ in labels].index)
    for name, line, label in GAP_OUTCOMES:
        k = SLOTS(name, line)
        # flows: per 1,000 members a year; stocks (people waiting): per 1,000 members on an average week
        per = 1.0 / weeks if SLOTS.rows[k][0].kind == "stock" else 1.0
        scale = 1000.0 * (per if per != 1.0 else 52.0 / weeks)
        for kind in kinds:
            cells = [i for i, (kk, _) in enumerate(labels) if kk == kind]
            hide = suppress_breakdown(members[cells], B[:, cells, k].mean(axis=0) * per,
                                      S[:, cells, k].mean(axis=0) * per)
            hide_members = suppress_breakdown(members[cells])
            for i, cell in enumerate(cells):
                kind_, value = labels[cell]
                if hide[i]:
                    rows.append(GapRow(kind_, value, label, None, None, None, None))
                    continue
                xb = B[:, cell, k] * scale / max(members[cell], 1e-9)
                xs = S[:, cell, k] * scale / max(members[cell], 1e-9)
                rows.append(GapRow(kind_, value, label, None if hide_members[i] else float(members[cell]),
                                   float(xb.mean()), float(xs.mean()), mean_interval(xs - xb)))
    return rows


# ------------------------------------------------------------------------------------ comparing
def _check_paired(b: Replicates, s: Replicates) -> None:
    for f in ("start_date", "weeks", "replications", "seed", "members"):
        if b.info[f] != s.info[f]:
            raise CaretwinError(f"runs {b.run_id} and {s.run_id} differ in {f} ({b.info[f]} vs {s.info[f]}): "
                                "paired comparisons need the same workspace state, horizon, replications and seed")
    if b.region_ids != s.region_ids:
        raise CaretwinError(f"runs {b.run_id} and {s.run_id} have different regions")


def _difference(key: Key, b: Replicates, s: Replicates) -> Difference:
    xb, xs = value_of(key, b), value_of(key, s)
    n = len(xs)
    ib, is_, d = mean_interval(xb), mean_interval(xs), mean_interval(xs - xb)
    rel = is_.half_width / abs(is_.mean) if is_.mean else (0.0 if is_.half_width == 0 else math.inf)
    resolve = None
    if not d.excludes_zero() and d.mean != 0 and math.isfinite(d.half_width):
        resolve = int(math.ceil(n * (d.half_width / abs(d.mean)) ** 2)) + 1
    return Difference(key.name, key.label, key.unit, key.area, key.better, ib, is_, d, rel,
                      replications_needed(n, rel), resolve)


def _value(b: Replicates, s: Replicates) -> Value:
    ic = _total("intervention_cost")(s).sum(axis=1) - _total("intervention_cost")(b).sum(axis=1)
    avoided = _cost(b).sum(axis=1) - _cost(s).sum(axis=1)
    roi = mean_interval((avoided - ic) / ic) if np.all(ic > 0) else None
    return Value(mean_interval(ic), mean_interval(avoided), mean_interval(ic - avoided), roi)


def _bands(r: Replicates) -> dict[str, list[list[float]]]:
    """Weekly 5/25/50/75/95% bands of the series the report draws."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sched = r.slot("scheduled_visits", "hcbs").sum(axis=2)
        series = {
            "waitlist_hcbs": r.slot("waitlist", "hcbs").sum(axis=2),
            "missed_visit_rate_hcbs": np.where(sched > 0, r.slot("missed_visits", "hcbs").sum(axis=2)
                                               / np.where(sched > 0, sched, 1), 0.0),
            "ed_visits": r.slot("ed_visits").sum(axis=2),
            "total_cost": sum(r.slot("cost", c).sum(axis=2) for c in COST_CATEGORIES)
            + r.slot("intervention_cost").sum(axis=2),
        }
    return {k: np.quantile(v, (0.05, 0.25, 0.5, 0.75, 0.95), axis=0).round(4).tolist() for k, v in series.items()}


def compare(workspace: Workspace | str, run_ids: list[str]) -> Comparison:
    """Compare each run with the first (the baseline): paired differences, failure risk, who bears the gap, value."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    try:
        if len(run_ids) < 2:
            raise CaretwinError("compare needs a baseline run and at least one scenario run")
        runs = [load(ws, r) for r in run_ids]
        evidence = evidence_of_run(ws, run_ids[0])
    finally:
        if ws is not workspace:
            ws.close()
    b = runs[0]
    for s in runs[1:]:
        _check_paired(b, s)
    rule = b.failure
    weeks = int(b.info["weeks"])
    base_fail, _ = _region_failures(b, b, rule)
    out = Comparison(b.run_id, b.name, int(b.info["replications"]), weeks, int(b.info["seed"]), b.info["start_date"],
                     b.region_ids, rule.model_dump(), base_fail)
    out.weekly = {r.run_id: _bands(r) for r in runs}
    if evidence is not None:
        out.evidence = evidence.to_dict()
        keys = {k.name: k for k in KEYS}
        out.resting_on_defaults = [keys[h].label for h in HEADLINE if evidence.rests_on_defaults(keys[h].area)]
    for s in runs[1:]:
        failure, anywhere = _region_failures(b, s, rule)
        out.scenarios.append(ScenarioComparison(
            s.run_id, s.name, [_difference(k, b, s) for k in KEYS], failure, anywhere, _gap(b, s, weeks),
            _value(b, s), s.info["changes"]))
    return out

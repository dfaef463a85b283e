"""Run results: quantile bands across replications, stored in the workspace under a run id and
optionally written as Parquet (`--out`)."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from caretwin.files import new_folder
from caretwin.governance.audit import Actor, audited
from caretwin.model.schema import RURALITY, SCHEMA_VERSION
from caretwin.simulate.metrics import GROUPS, SLOTS
from caretwin.simulate.runner import RunResult
from caretwin.workspace import Workspace

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# derived metric -> (numerator, denominator, denominator scale); computed per replication, then summarised
DERIVED = {
    "mean_wait_days": ("wait_days", "starts", 1.0),
    "missed_visit_rate": ("missed_visits", "scheduled_visits", 1.0),
    "delivered_share": ("delivered_hours", "authorised_hours", 1.0),
    "provider_risk_mean": ("provider_risk", "providers_open", 1.0),
    "occupancy": ("bed_days", "beds", 7.0),
}

RUNS_DDL = """CREATE TABLE IF NOT EXISTS _runs (
    run_id VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL, start_date DATE NOT NULL, weeks INTEGER NOT NULL,
    replications INTEGER NOT NULL, seed UBIGINT NOT NULL, backend VARCHAR NOT NULL, workers INTEGER NOT NULL,
    members BIGINT NOT NULL, providers BIGINT NOT NULL, parameters VARCHAR NOT NULL, changed_parameters VARCHAR NOT NULL,
    caretwin_version VARCHAR NOT NULL, schema_version VARCHAR NOT NULL, timings VARCHAR NOT NULL, label VARCHAR
)"""
# where the run's parameters came from (caretwin.simulate.evidence; added in schema 1.3, older runs have none)
RUNS_EVIDENCE = "ALTER TABLE _runs ADD COLUMN IF NOT EXISTS evidence VARCHAR"
METRICS_DDL = """CREATE TABLE IF NOT EXISTS _run_metrics (
    run_id VARCHAR NOT NULL, week INTEGER NOT NULL, week_start DATE NOT NULL, region_id VARCHAR NOT NULL,
    service_line VARCHAR NOT NULL, group_kind VARCHAR NOT NULL, group_value VARCHAR NOT NULL, metric VARCHAR NOT NULL,
    mean DOUBLE, p05 DOUBLE, p25 DOUBLE, p50 DOUBLE, p75 DOUBLE, p95 DOUBLE
)"""


def _slot_table() -> list[tuple[str, str, bool, list[int] | tuple[int, int, float]]]:
    """(metric, line, by_group, how): `how` is a slot index or (numerator, denominator, scale) slots."""
    rows = [(m.name, line, m.by_group, k) for k, (m, line) in enumerate(SLOTS.rows)]
    by_group = {(m.name, line): m.by_group for m, line in SLOTS.rows}
    for name, (num, den, scale) in DERIVED.items():
        for (metric, line), k in SLOTS.index.items():
            if metric == num and (den, line) in SLOTS.index:
                grouped = by_group[(num, line)] and by_group[(den, line)]
                rows.append((name, line, grouped, (k, SLOTS(den, line), scale)))
    return rows


def summary_cells(result: RunResult) -> list[tuple[str, str, str]]:
    """The places a run is summarised for, as (region_id, group_kind, group_value): each region, the county,
    each rurality class (regions summed) and each subgroup (the county's members in it)."""
    rur = np.asarray(result.world.rurality)
    cells = [(rid, "all", "all") for rid in result.world.region_ids] + [("all", "all", "all")]
    cells += [("all", "rurality", RURALITY[c]) for c in range(4) if (rur == c).any()]
    return cells + [("all", kind, value) for kind, value in GROUPS[1:]]


def summary_values(result: RunResult) -> Iterator[np.ndarray]:
    """Per-replication values `[rep, week, cell]` (cells as `summary_cells`) of each metric of `_slot_table`,
    one metric at a time, so that summarising needs little memory beyond the run's own arrays."""
    rur = np.asarray(result.world.rurality)
    classes = [rur == c for c in range(4) if (rur == c).any()]

    def cells(k: int) -> np.ndarray:
        X = result.metrics[..., k]  # [rep, week, region]
        parts = [X, X.sum(axis=2, keepdims=True)] + [X[..., c].sum(axis=2, keepdims=True) for c in classes]
        return np.concatenate(parts + [result.groups[:, :, 1:, k]], axis=2)

    with np.errstate(invalid="ignore", divide="ignore"):
        for _, _, _, how in _slot_table():
            if isinstance(how, tuple):
                num, den, scale = how
                d = cells(den)
                yield np.where(d > 0, cells(num) / (scale * d), np.nan).astype(np.float32)
            else:
                yield cells(how)


def _nan_quantiles(V: np.ndarray, qs: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles (linear interpolation, as numpy's default) and means over axis 0, ignoring NaN.

    np.nanquantile loops in Python over cells; sorting once is hundreds of times faster here.
    """
    S = np.sort(V, axis=0)  # NaN sorts last
    n = (~np.isnan(V)).sum(axis=0)
    out = np.full((len(qs),) + V.shape[1:], np.nan)
    last = np.maximum(n - 1, 0)
    for i, q in enumerate(qs):
        pos = q * last
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, last)
        a = np.take_along_axis(S, lo[None], axis=0)[0]
        b = np.take_along_axis(S, hi[None], axis=0)[0]
        out[i] = np.where(n > 0, a + (b - a) * (pos - lo), np.nan)
    total = np.where(np.isnan(V), 0.0, V).sum(axis=0, dtype=np.float64)
    mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return out, mean


def summary_table(result: RunResult) -> pa.Table:
    """Quantile bands (5, 25, 50, 75, 95%) and means across replications, one row per week, place (region,
    county, rurality class, subgroup of the county) and metric. Subgroups appear only for member-level metrics.

    Built metric by metric, so that its peak memory is the table itself plus one metric's values.
    """
    cells = summary_cells(result)
    region, kind, value = (pa.array(x) for x in zip(*cells))  # labels of the cells, taken by index below
    subgroup = np.array([k not in ("all", "rurality") for _, k, _ in cells])
    starts = np.array(result.week_starts(), dtype="datetime64[D]")
    W, C = len(starts), len(cells)
    w_all, c_all = (x.ravel() for x in np.meshgrid(np.arange(W), np.arange(C), indexing="ij"))
    chunks = []
    for (name, line, grouped, _), V in zip(_slot_table(), summary_values(result)):
        q, mean = _nan_quantiles(V, QUANTILES)  # [quantile, week, cell], [week, cell]
        keep = np.ones(W * C, bool) if grouped else ~subgroup[c_all]
        w, c = w_all[keep], pa.array(c_all[keep].astype(np.int32))
        cols = {
            "week": pa.array(w.astype(np.int32)), "week_start": pa.array(starts[w]),
            "region_id": pa.DictionaryArray.from_arrays(c, region),
            "service_line": pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(w), np.int32)), pa.array([line])),
            "group_kind": pa.DictionaryArray.from_arrays(c, kind), "group_value": pa.DictionaryArray.from_arrays(c, value),
            "metric": pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(w), np.int32)), pa.array([name])),
            "mean": pa.array(mean.ravel()[keep].astype(np.float64)),
        }
        for qi, qv in enumerate(QUANTILES):
            cols[f"p{int(qv * 100):02d}"] = pa.array(q[qi].ravel()[keep].astype(np.float64))
        chunks.append(pa.table(cols))
    return pa.concat_tables(chunks)


def replications_table(result: RunResult) -> pa.Table:
    """Every replication's weekly metrics by region and service line (whole population), long format."""
    X = result.metrics
    n, W, R, K = X.shape
    rep, w, r, k = np.meshgrid(np.arange(n), np.arange(W), np.arange(R), np.arange(K), indexing="ij")
    starts = np.array(result.week_starts(), dtype="datetime64[D]")
    return pa.table({
        "replication": pa.array(rep.ravel().astype(np.int32)), "week": pa.array(w.ravel().astype(np.int32)),
        "week_start": pa.array(starts[w.ravel()]),
        "region_id": pa.array(np.array(result.world.region_ids, object)[r.ravel()]),
        "metric": pa.array(np.array([m.name for m, _ in SLOTS.rows], object)[k.ravel()]),
        "service_line": pa.array(np.array([line for _, line in SLOTS.rows], object)[k.ravel()]),
        "value": pa.array(X.ravel().astype(np.float64)),
    })


def run_record(result: RunResult, label: str | None = None) -> dict:
    return {
        "run_id": result.run_id, "start_date": result.world.start.isoformat(), "weeks": result.weeks,
        "replications": result.replications, "seed": result.seed, "backend": result.backend,
        "workers": result.workers, "members": result.world.n_members, "providers": result.world.n_providers,
        "parameters": result.params.by_module(), "changed_parameters": result.params.changed(),
        "caretwin_version": result.code_version, "schema_version": SCHEMA_VERSION, "timings": result.timings,
        "parameter_sets": result.parameter_sets, "label": label,
        "evidence": result.evidence.to_dict() if result.evidence is not None else None,
    }


REPLICATES_DIR = "runs"


def replicates_path(ws: Workspace, run_id: str) -> Path:
    return ws.path / REPLICATES_DIR / f"{run_id}.npz"


def store(ws: Workspace, result: RunResult, summary: pa.Table | None = None, label: str | None = None,
          extra: Callable[[duckdb.DuckDBPyConnection], None] | None = None, *, actor: Actor | None = None) -> None:
    """Save the run and its quantile bands in the workspace, in one transaction, and every replication's
    weekly metrics by region and horizon totals by subgroup beside it (for paired comparisons).

    `extra` adds rows of its own in the same transaction. The run is recorded in the audit trail (`actor`:
    the operating-system user unless given).
    """
    summary = summary_table(result) if summary is None else summary
    rec = run_record(result, label)
    target = replicates_path(ws, result.run_id)
    target.parent.mkdir(exist_ok=True)
    tmp = target.with_suffix(".tmp.npz")
    _save_npz(tmp, weekly=result.metrics, groups=result.groups.sum(axis=1),
              region_ids=np.array(result.world.region_ids), rurality=np.asarray(result.world.rurality),
              slots=np.array([f"{m.name}/{line}" for m, line in SLOTS.rows]))
    try:
        _insert(ws, result, summary, rec, label, extra, actor)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """`np.savez_compressed` at zlib's fastest level: a quarter of the time, nearly the same size here."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, a in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(a), allow_pickle=False)


def _insert(ws: Workspace, result: RunResult, summary: pa.Table, rec: dict, label: str | None, extra,
            actor: Actor | None) -> None:
    with audited(ws, actor, kind="change", action="C", subtype="simulate.run", entity_type="run",
                 entity_id=result.run_id, detail={"label": label, "weeks": rec["weeks"],
                                                  "replications": rec["replications"], "seed": rec["seed"]}) as event, \
            ws.transaction() as con:
        con.execute(RUNS_DDL)
        con.execute(METRICS_DDL)
        con.execute(
            "INSERT INTO _runs (run_id, created_at, start_date, weeks, replications, seed, backend, workers, members, "
            "providers, parameters, changed_parameters, caretwin_version, schema_version, timings, label) "
            "VALUES (?, now()::TIMESTAMP, ?::DATE, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [rec["run_id"], rec["start_date"], rec["weeks"], rec["replications"], rec["seed"], rec["backend"],
             rec["workers"], rec["members"], rec["providers"], json.dumps(rec["parameters"]),
             json.dumps(rec["changed_parameters"]), rec["caretwin_version"], rec["schema_version"],
             json.dumps(rec["timings"]), label])
        con.execute(RUNS_EVIDENCE)
        con.execute("UPDATE _runs SET evidence = ? WHERE run_id = ?", [json.dumps(rec["evidence"]), rec["run_id"]])
        con.register("_summary", summary)
        con.execute(f"INSERT INTO _run_metrics SELECT '{result.run_id}', * FROM _summary")
        con.unregister("_summary")
        if extra is not None:
            extra(con)
        event.record()


def write_out(result: RunResult, out: str | os.PathLike[str], summary: pa.Table | None = None,
              label: str | None = None) -> Path:
    """Write run.json, summary.parquet and replications.parquet into `out` (written aside, then renamed)."""
    target = Path(out).absolute()
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target}: already exists and is not empty")
    with new_folder(target) as tmp:
        (tmp / "run.json").write_text(json.dumps(run_record(result, label), indent=1, sort_keys=True))
        pq.write_table(summary_table(result) if summary is None else summary, tmp / "summary.parquet", compression="zstd")
        pq.write_table(replications_table(result), tmp / "replications.parquet", compression="zstd")
    return target




def list_runs(ws: Workspace) -> list[dict]:
    """Stored runs, newest first."""
    from caretwin.simulate.evidence import Evidence

    con = ws.con
    con.execute(RUNS_DDL)
    con.execute(RUNS_EVIDENCE)
    cur = con.execute("SELECT run_id, created_at, start_date, weeks, replications, seed, backend, workers, members, "
                      "label, timings, evidence FROM _runs ORDER BY created_at DESC")
    names = [d[0] for d in cur.description]
    out = []
    for row in cur.fetchall():
        run = dict(zip(names, row))
        ev = Evidence.from_dict(json.loads(run.pop("evidence"))) if run["evidence"] else None
        run["parameters"] = ev.short() if ev is not None else "not recorded"
        out.append(run)
    return out


def evidence_of_run(ws: Workspace, run_id: str) -> Any:
    """The stored evidence of a run (an Evidence), or None for a run stored before it was kept."""
    from caretwin.simulate.evidence import Evidence

    ws.con.execute(RUNS_DDL)
    ws.con.execute(RUNS_EVIDENCE)
    row = ws.con.execute("SELECT evidence FROM _runs WHERE run_id = ?", [run_id]).fetchone()
    return Evidence.from_dict(json.loads(row[0])) if row and row[0] else None

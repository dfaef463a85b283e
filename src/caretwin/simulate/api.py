"""`simulate`: the Python equivalent of `caretwin simulate`."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np

from caretwin.governance.audit import Actor
from caretwin.simulate.calibrated import draws_for
from caretwin.simulate.evidence import evidence_of
from caretwin.simulate.initial import from_workspace
from caretwin.simulate.results import store, summary_table, write_out
from caretwin.simulate.runner import (
    Progress,
    RunResult,
    resolve_params,
    run_replications,
)
from caretwin.workspace import Workspace


def simulate(workspace: Workspace | str | os.PathLike[str], *, params: str | os.PathLike[str] | None = None,
             weeks: int = 26, replications: int = 100, workers: int | None = None, scheduler: str | None = None,
             seed: int = 0, out: str | os.PathLike[str] | None = None, as_of: date | None = None,
             label: str | None = None, progress: Progress | None = None, actor: Actor | None = None) -> RunResult:
    """Simulate the workspace's system forward from its current state; store the run in the workspace (recorded
    in the audit trail as done by `actor`, the operating-system user unless given).

    `params` is a TOML parameter file (see `caretwin params`); `scheduler` a Dask scheduler
    address. With `out`, the run's summary and every replication's weekly metrics are also
    written there as Parquet.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    try:
        world = from_workspace(ws, as_of)
        resolved = resolve_params(world, params)
        # a calibrated file carries draws of its parameters: each replication runs with its own
        draws = draws_for(Path(params), resolved) if params is not None else None
        result = run_replications(world, resolved, weeks=weeks, replications=replications, seed=seed,
                                  workers=workers, scheduler=scheduler, progress=progress, draws=draws)
        result.evidence = evidence_of(str(params) if params is not None else "defaults", resolved)
        summary = summary_table(result)
        if out is not None:
            write_out(result, Path(out), summary, label)
        store(ws, result, summary, label, actor=actor)
    finally:
        if ws is not workspace:
            ws.close()
    return result


def headline(result: RunResult) -> list[tuple[str, str, float, float, float]]:
    """Whole-horizon totals (or last-week values for stocks) with 5/50/95% across replications."""
    from caretwin.simulate.metrics import COST_CATEGORIES, SLOTS

    rows = []
    for metric, line in (("referrals", "hcbs"), ("starts", "hcbs"), ("waitlist", "hcbs"), ("missed_visits", "hcbs"),
                         ("separations", "hcbs"), ("provider_exits", "hcbs"), ("ed_visits", "all"),
                         ("admissions", "all"), ("readmissions", "all"), ("delayed_discharge_days", "all"),
                         ("crisis_episodes", "all"), ("ed_boarding_days", "all"), ("institutionalisations", "all"),
                         ("deaths", "all")):
        m = SLOTS.rows[SLOTS(metric, line)][0]
        x = result.weekly(metric, line)
        v = x[:, -1] if m.kind == "stock" else x.sum(axis=1)
        rows.append((metric + ("" if line == "all" else f" ({line})") + (" at end" if m.kind == "stock" else ""),
                     m.unit, *np.quantile(v, (0.05, 0.5, 0.95))))
    cost = result.metrics[:, :, :, [SLOTS("cost", c) for c in COST_CATEGORIES]].sum(axis=(1, 2, 3))
    rows.append(("cost, all categories", "currency", *np.quantile(cost, (0.05, 0.5, 0.95))))
    return rows

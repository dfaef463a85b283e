"""Running scenarios against a workspace: one world, one seed, so every scenario's replication r sees
the same random numbers as the baseline's (common random numbers) and their differences are signal."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from caretwin.errors import ValidationError
from caretwin.governance.audit import Actor
from caretwin.scenarios.plan import Plan, ScenarioModule, compile_plan
from caretwin.scenarios.spec import Located, load_scenario
from caretwin.simulate.calibrated import draws_for
from caretwin.simulate.evidence import evidence_of
from caretwin.simulate.engine import Module, default_modules
from caretwin.simulate.initial import from_workspace
from caretwin.simulate.params import Params
from caretwin.simulate.results import store, summary_table, write_out
from caretwin.simulate.runner import Job, Progress, RunResult, resolve_params, run_many
from caretwin.simulate.state import World
from caretwin.workspace import Workspace

SCENARIOS_DDL = """CREATE TABLE IF NOT EXISTS _scenario_runs (
    run_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, file VARCHAR NOT NULL, scenario VARCHAR NOT NULL,
    baseline_parameters VARCHAR NOT NULL
)"""
# what each action changed, in words (added in schema 1.3; older runs have none)
SCENARIOS_CHANGES = "ALTER TABLE _scenario_runs ADD COLUMN IF NOT EXISTS changes VARCHAR"


@dataclass
class ScenarioRun:
    located: Located
    plan: Plan
    result: RunResult

    @property
    def name(self) -> str:
        return self.located.scenario.name

    @property
    def run_id(self) -> str:
        return self.result.run_id


def baseline_params(ws: Workspace, which: str, located: Located, world: World) -> tuple[Params, list[Params] | None, str]:
    """Starting parameters (and calibration draws, when there are some) and where they came from.

    `which` is "calibrated" (WORKSPACE/calibrated.toml), "defaults" or a parameter file beside the scenario.
    """
    if which == "defaults":
        return resolve_params(world, None), None, "defaults"
    path = ws.path / "calibrated.toml" if which == "calibrated" else Path(located.file).parent / which
    if not path.exists():
        hint = ("run `caretwin calibrate WORKSPACE` first, or say `baseline: defaults`" if which == "calibrated"
                else "give a parameter file (see `caretwin params --toml`), `calibrated` or `defaults`")
        raise ValidationError([located.problem(("baseline",), f"no parameter file {path}: {hint}")])
    params = resolve_params(world, path)
    return params, draws_for(path, params), str(path)


def scenario_modules(plan: Plan) -> list[Module]:
    return [ScenarioModule(plan)] + default_modules()


Prepared = tuple[Located, Plan, Params, "list[Params] | None", str]


def _prepare(ws: Workspace, files: list, overrides: dict, as_of: date | None) -> tuple[World, list[Prepared]]:
    """Read every file and check it against the workspace; all problems are reported together."""
    located, problems = [], []
    for f in files:
        try:
            located.append(load_scenario(f))
        except ValidationError as exc:
            problems += exc.problems
    if problems:
        raise ValidationError(problems)
    world = from_workspace(ws, as_of)
    prepared = []
    for loc in located:
        if overrides:
            loc.scenario = loc.scenario.model_copy(update=overrides)
        try:
            params, draws, source = baseline_params(ws, loc.scenario.baseline, loc, world)
            prepared.append((loc, compile_plan(loc, world, params), params, draws, source))
        except ValidationError as exc:
            problems += exc.problems
    if problems:
        raise ValidationError(problems)
    return world, prepared


def check_scenarios(workspace: Workspace | str | os.PathLike[str],
                    files: list[str | os.PathLike[str]]) -> list[tuple[Located, Plan]]:
    """Validate scenario files against a workspace (regions, providers, baseline) without running them; each
    with its plan, whose `changes` say what every action would change."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    try:
        return [(p[0], p[1]) for p in _prepare(ws, files, {}, None)[1]]
    finally:
        if ws is not workspace:
            ws.close()


def run_scenarios(workspace: Workspace | str | os.PathLike[str], files: list[str | os.PathLike[str]], *,
                  replications: int | None = None, seed: int | None = None, weeks: int | None = None,
                  workers: int | None = None, scheduler: str | None = None, as_of: date | None = None,
                  progress: Progress | None = None,
                  on_stored: Callable[[ScenarioRun], None] | None = None,
                  actor: Actor | None = None) -> list[ScenarioRun]:
    """Run each scenario file and store it in the workspace; `replications`, `seed` and `weeks` override the files'.
    Each run is recorded in the audit trail as done by `actor` (the operating-system user unless given).

    Every file is read and checked against the workspace before anything runs, so a mistake in the
    third file does not cost the first two runs.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    try:
        overrides = {k: v for k, v in (("replications", replications), ("seed", seed), ("horizon_weeks", weeks))
                     if v is not None}
        world, prepared = _prepare(ws, files, overrides, as_of)
        jobs = [Job(params, loc.scenario.horizon_weeks, loc.scenario.replications, loc.scenario.seed,
                    scenario_modules(plan), draws) for loc, plan, params, draws, _ in prepared]
        runs = []
        # one pool for every scenario: while a run is stored, the workers go on with the next
        results = run_many(world, jobs, workers=workers, scheduler=scheduler, progress=progress)
        for (loc, plan, params, _, source), result in zip(prepared, results):
            sc = loc.scenario
            result.evidence = evidence_of(source, params)
            summary = summary_table(result)
            if sc.outputs.folder:
                write_out(result, Path(loc.file).parent / sc.outputs.folder, summary, sc.name)

            def extra(con: duckdb.DuckDBPyConnection, loc=loc, result=result, source=source, plan=plan) -> None:
                con.execute(SCENARIOS_DDL)
                con.execute(SCENARIOS_CHANGES)
                con.execute("INSERT INTO _scenario_runs (run_id, name, file, scenario, baseline_parameters, changes) "
                            "VALUES (?, ?, ?, ?, ?, ?)", [result.run_id, loc.scenario.name, loc.file,
                                                          loc.scenario.to_json(), source, json.dumps(plan.changes)])

            store(ws, result, summary, sc.name, extra=extra, actor=actor)
            runs.append(ScenarioRun(loc, plan, result))
            if on_stored is not None:
                on_stored(runs[-1])
        return runs
    finally:
        if ws is not workspace:
            ws.close()


def scenario_of(ws: Workspace, run_id: str) -> dict | None:
    """The stored scenario of a run (None for a plain `caretwin simulate` run)."""
    ws.con.execute(SCENARIOS_DDL)
    row = ws.con.execute("SELECT scenario FROM _scenario_runs WHERE run_id = ?", [run_id]).fetchone()
    return json.loads(row[0]) if row else None


def changes_of(ws: Workspace, run_id: str) -> list[str]:
    """What a stored scenario run's actions changed, in words (none for runs stored before they were kept)."""
    ws.con.execute(SCENARIOS_DDL)
    ws.con.execute(SCENARIOS_CHANGES)
    row = ws.con.execute("SELECT changes FROM _scenario_runs WHERE run_id = ?", [run_id]).fetchone()
    return json.loads(row[0]) if row and row[0] else []

"""The `caretwin` command: a thin layer over the Python API."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from caretwin._version import __version__
from caretwin.errors import CaretwinError, ValidationError

app = typer.Typer(
    name="caretwin",
    help="Digital twins of health and human services systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _print_run(result) -> None:
    from caretwin.simulate import headline

    t = result.timings
    typer.echo(f"run {result.run_id}: {result.world.n_members:,} members, {result.weeks} weeks from "
               f"{result.world.start}, {result.replications} replications ({result.backend}, {result.workers} workers) "
               f"in {t['wall_s']:.1f} s ({t['member_days_per_s'] / 1e6:.1f}M member-days/s)")
    typer.echo(f"\n{'whole horizon, all regions':<44}{'p05':>12}{'median':>12}{'p95':>12}")
    for name, _unit, lo, mid, hi in headline(result):
        typer.echo(f"{name:<44}{lo:>12,.0f}{mid:>12,.0f}{hi:>12,.0f}")


def _print_status(status: dict) -> None:
    typer.echo(f"workspace  {status['name']}  ({status['path']})")
    typer.echo(f"schema     {status['schema_version']}   caretwin {status['caretwin_version']}")
    typer.echo("")
    typer.echo(f"{'table':<16}{'rows':>12}   date range")
    for name, n in status["tables"].items():
        rng = status["date_ranges"].get(name)
        span = f"{rng['first']} .. {rng['last']}  ({rng['column']})" if rng and rng["first"] else ""
        typer.echo(f"{name:<16}{n:>12,}   {span}")
    typer.echo("")
    loads = status["loads"]
    typer.echo(f"loads: {len(loads)}")
    for ld in loads:
        new = sum(ld["inserted"].values())
        rep = sum(ld["replaced"].values())
        held = sum((ld["details"].get("quarantined") or {}).values())
        fixed = sum((ld["details"].get("repaired") or {}).values())
        typer.echo(f"  #{ld['load_id']}  {ld['finished_at']}  {ld['format']}  {ld['source']}  (+{new:,} new, {rep:,} replaced"
                   + (f", {held:,} quarantined" if held else "") + (f", {fixed:,} repaired" if fixed else "") + ")")


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Folder to create the workspace in (must not exist or be empty).")],
    name: Annotated[str | None, typer.Option(help="Display name; defaults to the folder name.")] = None,
) -> None:
    """Create a workspace: a DuckDB database, a config file and a pseudonymisation key (mode 0600)."""
    from caretwin.workspace import Workspace

    try:
        ws = Workspace.create(path, name=name)
    except CaretwinError as exc:
        _fail(str(exc))
    typer.echo(f"created workspace {ws.name} at {ws.path}")
    ws.close()


@app.command()
def status(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object (with a `tables` map of row counts).")] = False,
) -> None:
    """Show table counts, date ranges, schema version and the history of loads."""
    from caretwin.workspace import Workspace

    try:
        with Workspace.open(workspace) as ws:
            st = ws.status().to_dict()
    except CaretwinError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(st, indent=2))
    else:
        _print_status(st)


@app.command()
def ingest(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    source: Annotated[Path, typer.Argument(help="Source: a canonical extract, FHIR bundles or Bulk NDJSON, a Synthea CSV folder or an HSDS directory.")],
    format: Annotated[str, typer.Option("--format", help="Source format: auto, canonical, fhir, synthea or hsds.")] = "auto",
    error_limit: Annotated[int | None, typer.Option(help="Most problems listed per file (setting error_limit).")] = None,
    on_error: Annotated[str, typer.Option("--on-error", help="quarantine: load good rows, keep bad ones with reasons; reject: refuse the whole source.")] = "quarantine",
    regions: Annotated[Path | None, typer.Option("--regions", help="Region definition file: CSV by ZIP or county, or GeoJSON polygons.")] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", help="TOML file overriding code maps (encounter classes, dispositions, payers, taxonomy).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Validate every FHIR resource in full (needs caretwin[fhir]).")] = False,
    follow_links: Annotated[bool, typer.Option("--follow-links", help="Read files through symbolic links in the source (refused otherwise).")] = False,
) -> None:
    """Load a source; rows that break a rule are quarantined with their reasons (or, with --on-error reject, refuse it whole)."""
    from caretwin.ingest import ingest as run_ingest
    from caretwin.workspace import Workspace

    try:
        with Workspace.open(workspace) as ws:
            report = run_ingest(ws, source, format=format, error_limit=error_limit, on_error=on_error,
                                regions=regions, mapping=mapping, strict=strict, follow_links=follow_links,
                                actor=_actor(ws, "data.ingest"))
    except ValidationError as exc:
        typer.echo(f"error: {source} was not loaded; the workspace is unchanged. {exc}", err=True)
        raise typer.Exit(1)
    except CaretwinError as exc:
        _fail(str(exc))
    for w in report.warnings:
        typer.echo(f"warning: {w}", err=True)
    for f in report.files:
        t = str(f["table"])
        extra = "".join(f"  {n:,} {what}" for what, n in (("quarantined", report.quarantined.get(t, 0)),
                                                          ("repaired", report.repaired.get(t, 0))) if n)
        typer.echo(f"  {t:<16}{f['rows']:>12,} rows{extra}")
    skipped = report.details.get("resources_skipped") or {}
    if skipped:
        typer.echo("  not mapped (no canonical table): " + ", ".join(f"{k} {v:,}" for k, v in sorted(skipped.items())))
    if report.details.get("services_unmapped"):
        typer.echo(f"  HSDS services with no service line in the taxonomy map: {report.details['services_unmapped']:,} "
                   f"of {report.details['services']:,} (listed in the load record)")
    rate = report.rows / report.seconds if report.seconds else 0
    typer.echo(f"load #{report.load_id} ({report.details.get('adapter', 'canonical')}): {report.rows:,} rows in "
               f"{report.seconds:.1f} s ({rate:,.0f} rows/s); {sum(report.inserted.values()):,} new, "
               f"{sum(report.replaced.values()):,} replaced, {sum(report.quarantined.values()):,} quarantined")


@app.command()
def quality(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON (schema caretwin.quality/1).")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the report as one self-contained HTML page.")] = None,
    fail_on: Annotated[str | None, typer.Option("--fail-on", help="Exit with status 1 when a check of this severity (fatal or convention) fails.")] = None,
    thresholds: Annotated[Path | None, typer.Option("--thresholds", help="TOML file of per-check thresholds, each with a note (default: WORKSPACE/quality.toml if present).")] = None,
    reference: Annotated[Path | None, typer.Option("--reference", help="Census table (CSV: dimension, group, share) for representation checks.")] = None,
    purpose: Annotated[str | None, _PURPOSE] = None,
) -> None:
    """Check the workspace's data: completeness, conformance, plausibility, representation."""
    from caretwin.quality import Thresholds, render_html, run_quality
    from caretwin.workspace import Workspace

    if fail_on not in (None, "fatal", "convention"):
        _fail(f"--fail-on must be fatal or convention, not {fail_on!r}")
    try:
        with Workspace.open(workspace) as ws:
            own = ws.path / "quality.toml"  # a workspace may keep its thresholds beside its data
            th = Thresholds.load(thresholds or (own if own.is_file() else None), reference)
            report = run_quality(ws, thresholds=th, actor=_actor(ws, "quality.read", purpose, "quality_improvement"))
    except CaretwinError as exc:
        _fail(str(exc))
    for path, text in ((json_out, lambda: json.dumps(report.to_dict(), indent=1)), (html_out, lambda: render_html(report))):
        if path:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text())
            tmp.replace(path)
    s = report.summary()
    typer.echo(f"{s['checks']} checks in {report.seconds:.1f} s: {s['pass']} passed, {s['fail']} failed, "
               f"{s['not_applicable']} not applicable, {s['error']} errors")
    for sev in ("fatal", "convention", "characterisation"):
        failed = report.failed((sev,))
        if failed:
            typer.echo(f"  {sev}: " + ", ".join(f"{r.check} ({r.violating:,})" for r in failed[:8]) +
                       (f" and {len(failed) - 8} more" if len(failed) > 8 else ""))
    levels = {"fatal": ("fatal",), "convention": ("fatal", "convention")}
    if fail_on and report.failed(levels[fail_on]):
        raise typer.Exit(1)


@app.command()
def lineage(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    table: Annotated[str, typer.Argument(help="Canonical or derived table, e.g. encounters or member_features.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show what a table was built from: inputs, rule versions, rows in, out, quarantined and repaired."""
    from caretwin.quality import lineage as table_lineage
    from caretwin.workspace import Workspace

    try:
        with Workspace.open(workspace) as ws:
            steps = table_lineage(ws, table)
    except CaretwinError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(steps, indent=1))
        return
    if not steps:
        typer.echo(f"{table}: nothing has been loaded into it yet")
    for s in steps:
        typer.echo(f"load #{s['load_id']} {s['step']} ({s['format']}) at {s['recorded_at']}: {s['rows_in']:,} rows in, "
                   f"{s['rows_out']:,} out, {s['rows_quarantined']:,} quarantined, {s['rows_repaired']:,} repaired")
        for i in s["inputs"]:
            name = i.get("file") or f"table {i.get('table')}"
            typer.echo(f"    from {name}" + (f" (sha256 {str(i['sha256'])[:12]}…)" if i.get("sha256") else "")
                       + (f", {i['rows']:,} rows" if i.get("rows") is not None else ""))
        typer.echo("    rules: " + ", ".join(f"{k} {v}" for k, v in s["rules"].items()))


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the extract to (must not exist or be empty).")],
    members: Annotated[int, typer.Option(help="Members in the county.", min=100)] = 20_000,
    regions: Annotated[int, typer.Option(help="Regions (urban, suburban, rural, frontier).", min=1, max=99)] = 8,
    months: Annotated[int, typer.Option(help="Months of history.", min=1, max=120)] = 12,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same extract.")] = 0,
    format: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    defects: Annotated[float, typer.Option(help="Share of rows given a known defect (listed in manifest.json).", min=0.0, max=0.49)] = 0.0,
    params: Annotated[Path | None, typer.Option("--params", help="Engine parameter file (TOML) the history is run with.")] = None,
    report: Annotated[bool, typer.Option("--report", help="Then print its headline figures against published ones.")] = False,
) -> None:
    """Write a synthetic county as a canonical extract, its history run by the simulation engine."""
    from caretwin.simulate import declared_params
    from caretwin.synth import CountyParams, write_extract

    t0 = time.perf_counter()
    try:
        engine_params = declared_params().load(params) if params else None
        result = write_extract(CountyParams(members=members, regions=regions, months=months, seed=seed), out,
                               fmt=format, defects=defects, engine_params=engine_params)
    except ValidationError as exc:
        _fail(str(exc))
    except (ValueError, FileExistsError, OSError) as exc:
        _fail(str(exc))
    total = sum(result.rows.values())
    for name, n in result.rows.items():
        typer.echo(f"  {name:<16}{n:>12,}")
    typer.echo(f"wrote {total:,} rows to {result.path} in {time.perf_counter() - t0:.1f} s"
               + (f"; {result.manifest['defects']['count']:,} defects listed in manifest.json" if defects else ""))
    if report:
        from caretwin.synth.plausibility import plausibility
        from caretwin.synth.plausibility import report as plausibility_report

        typer.echo("\n" + plausibility_report(plausibility(result.path)))


@app.command()
def simulate(
    workspace: Annotated[Path, typer.Argument(help="Workspace to simulate forward from its current state.")],
    params: Annotated[Path | None, typer.Option("--params", help="Parameter file (TOML); see `caretwin params`.")] = None,
    weeks: Annotated[int, typer.Option(help="Weeks to simulate.", min=1, max=520)] = 26,
    replications: Annotated[int, typer.Option(help="Replications (independent runs).", min=1)] = 100,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).", min=1)] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://10.0.0.5:8786.")] = None,
    seed: Annotated[int, typer.Option(help="Root seed; same seed and inputs give identical results.", min=0)] = 0,
    out: Annotated[Path | None, typer.Option(help="Also write run.json, summary.parquet and replications.parquet here.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Start from the state at the end of this date (default: last day of data).")] = None,
    label: Annotated[str | None, typer.Option(help="A name for the run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")] = False,
) -> None:
    """Run replications of the twin forward from the workspace's current state and store them under a run id."""
    from datetime import date

    from caretwin.simulate import simulate as run
    from caretwin.simulate.results import run_record
    from caretwin.workspace import Workspace

    try:
        start = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        _fail(f"--as-of: {as_of!r} is not a date (YYYY-MM-DD)")
    with typer.progressbar(length=replications, label="replications", file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.update(done - bar.pos)

        try:
            with Workspace.open(workspace) as ws:
                actor = _actor(ws, "scenario.run", fallback="planning")
            result = run(workspace, params=params, weeks=weeks, replications=replications, workers=workers,
                         scheduler=scheduler, seed=seed, out=out, as_of=start, label=label, progress=progress, actor=actor)
        except (CaretwinError, FileExistsError, OSError) as exc:
            _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(run_record(result, label), indent=1, default=str))
        return
    _print_run(result)
    typer.echo("\nstored in the workspace (_runs, _run_metrics)" + (f"; Parquet in {out}" if out else ""))


@app.command()
def calibrate(
    workspace: Annotated[Path, typer.Argument(help="Workspace whose history to calibrate on.")],
    until: Annotated[str | None, typer.Option(help="Use data up to this date (YYYY-MM-DD); default: all.")] = None,
    out: Annotated[Path | None, typer.Option(help="Parameter file to write (default WORKSPACE/calibrated.toml).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the parameter draws.", min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the estimates as JSON.")] = False,
    accept_defaults: Annotated[bool, typer.Option(
        "--accept-defaults", help="Exit 0 even when most parameters stay at their defaults.")] = False,
) -> None:
    """Estimate the engine's parameters from the workspace's history, with intervals, and write the parameter file.

    Exits 3 (after writing the file) when fewer than half of the parameters could be estimated, unless
    --accept-defaults: runs on such a file rest mainly on defaults, and whoever uses them should know."""
    from datetime import date

    from caretwin.simulate.calibrated import calibrate_to, sidecar
    from caretwin.workspace import Workspace

    try:
        cutoff = date.fromisoformat(until) if until else None
    except ValueError:
        _fail(f"--until: {until!r} is not a date (YYYY-MM-DD)")
    target = out or workspace / "calibrated.toml"
    try:
        with Workspace.open(workspace) as ws:
            cal, record = calibrate_to(ws, target, until=cutoff, seed=seed,
                                       actor=_actor(ws, "model.calibrate", fallback="planning"))
    except (CaretwinError, OSError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps({k: v for k, v in record.items() if k != "draws"}, indent=1, default=str))
        return
    typer.echo(f"calibrated on {cal.window.start} .. {cal.window.end}; 90% intervals")
    for e in cal.estimates:
        if e.supported:
            typer.echo(f"  {e.name:<36}{_short(e.value):<34}[{_short(e.low)} .. {_short(e.high)}]  {e.method.split(' (')[0]}")
    for estimator, why in cal.skipped:
        typer.echo(f"  ({estimator}: nothing estimated: {why})")
    skipped = [e for e in cal.estimates if not e.supported] + record["defaults"]
    names = sorted({d.name if hasattr(d, "name") else d["name"] for d in skipped})
    typer.echo(f"\nnot estimated from these data, default used ({len(names)}): {', '.join(names)}")
    typer.echo(f"\nwrote {target} and {sidecar(target)} (estimates, methods, data, defaults and "
               f"{len(record['draws'])} parameter draws); use it with `caretwin simulate --params {target}`")
    estimated = sum(e.supported for e in cal.estimates)
    if estimated < len(names):
        typer.echo(f"\nWARNING: only {estimated} of {estimated + len(names)} parameters were estimated from these "
                   "data; runs with this file rest mainly on defaults, and their comparisons and reports will say so"
                   + ("." if accept_defaults else " (exit 3; --accept-defaults to exit 0)."), err=True)
        if not accept_defaults:
            raise typer.Exit(3)


def _short(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {x:.3g}" for k, x in list(v.items())[:3]) + (", ..." if len(v) > 3 else "") + "}"
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(f"{x:.3g}" for x in v) + ")"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@app.command()
def validate(
    workspace: Annotated[Path, typer.Argument(help="Workspace to backtest on.")],
    holdout_weeks: Annotated[int, typer.Option(help="Weeks at the end held out of calibration and forecast.", min=1)] = 12,
    replications: Annotated[int, typer.Option(help="Replications of the forecast.", min=10)] = 100,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).", min=1)] = None,
    seed: Annotated[int, typer.Option(help="Seed.", min=0)] = 0,
    html: Annotated[Path | None, typer.Option(help="Write an HTML report of observed against forecast bands.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write coverage, WIS, bias, MAPE and PIT histograms as JSON.")] = None,
) -> None:
    """Calibrate up to a cut-off, forecast the held-out weeks and score the forecast against what happened."""
    from caretwin.simulate.validate import render_html
    from caretwin.simulate.validate import validate as run
    from caretwin.workspace import Workspace

    try:
        with Workspace.open(workspace) as ws:
            v = run(ws, holdout_weeks=holdout_weeks, replications=replications, seed=seed, workers=workers)
    except (CaretwinError, OSError) as exc:
        _fail(str(exc))
    s = v.summary()
    typer.echo(f"calibrated to {v.cutoff}, forecast {v.weeks} weeks x {v.replications} replications; "
               f"{s['observations']} weekly region-level observations")
    typer.echo("coverage: share of observations inside each central band, by randomised PIT (nominal 50/80/95%); "
               "WIS: weighted interval score, and its ratio to a naive forecast's (below 1 beats it)")
    typer.echo(f"\n{'metric':<22}{'50%':>6}{'80%':>6}{'95%':>6}{'WIS':>10}{'rel. WIS':>10}{'bias':>8}{'MAPE':>7}")
    for m, d in [*s["by_metric"].items(), ("all", s)]:
        c, rel, wis = d["coverage"], d["relative_wis"], d["wis"]
        typer.echo(f"{m:<22}{c['50']:>6.0%}{c['80']:>6.0%}{c['95']:>6.0%}{'' if wis is None else f'{wis:.3g}':>10}"
                   f"{'' if rel is None else f'{rel:.2f}':>10}{(d['bias'] or 0):>+8.1%}{(d['mape'] or 0):>7.0%}")
    if json_out:
        json_out.write_text(json.dumps(s, indent=1))
    if html:
        html.write_text(render_html(v))


@app.command()
def runs(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the simulation runs stored in a workspace."""
    from caretwin.simulate.results import list_runs
    from caretwin.workspace import Workspace

    try:
        with Workspace.open(workspace) as ws:
            rows = list_runs(ws)
    except CaretwinError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(rows, indent=1, default=str))
        return
    for r in rows:
        typer.echo(f"{r['run_id']}  {r['created_at']}  {r['weeks']} weeks x {r['replications']} from {r['start_date']}"
                   f"  seed {r['seed']}  parameters: {r['parameters']}  {r['label'] or ''}")
    if not rows:
        typer.echo("no runs yet: try `caretwin simulate`")


scenario_app = typer.Typer(help="Scenarios: what-if runs against the baseline, and their comparison.",
                            no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")


@contextmanager
def _refusals() -> Iterator[None]:
    """A refused input exits with status 1 and its located problems; other user errors with status 2."""
    try:
        yield
    except ValidationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except (CaretwinError, OSError) as exc:
        _fail(str(exc))


def _actor(ws, action: str, purpose: str | None = None, fallback: str = "operations"):
    """Who is acting, for `purpose` (else the workspace's `[access] purpose`, else `fallback`); a refusal (the
    role or the purpose does not allow `action`, or log-in is required) is recorded and raised."""
    from caretwin.governance.access import cli_actor, default_purpose

    return cli_actor(ws, action, purpose or default_purpose(ws, fallback))


_PURPOSE = typer.Option("--purpose", help="Purpose of use (recorded; default: the workspace's [access] purpose).")


def _progress_bar(label: str) -> Callable[[int, int], None]:
    """A progress callback drawing a bar on standard error, opened at the first report."""
    state: dict = {}

    def progress(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = typer.progressbar(length=total, label=label, file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)
        if done == total:
            bar.__exit__(None, None, None)
            state.pop("bar")

    return progress


@scenario_app.command("run")
def scenario_run(
    workspace: Annotated[Path, typer.Argument(help="Workspace to run the scenarios against.")],
    files: Annotated[list[Path], typer.Argument(help="Scenario files (YAML); the first is usually the baseline.")],
    replications: Annotated[int | None, typer.Option(help="Replications, for every file (default: each file's).", min=1)] = None,
    weeks: Annotated[int | None, typer.Option(help="Horizon in weeks, for every file (default: each file's).", min=1, max=520)] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed, for every file (default: each file's).", min=0)] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).", min=1)] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://10.0.0.5:8786.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON on standard output.")] = False,
) -> None:
    """Run scenario files and store each run; compare them with `caretwin scenario compare`."""
    from caretwin.scenarios import run_scenarios
    from caretwin.simulate.results import run_record

    from caretwin.workspace import Workspace

    with _refusals():
        with Workspace.open(workspace) as ws:
            actor = _actor(ws, "scenario.run", fallback="planning")
        runs = run_scenarios(workspace, files, replications=replications, weeks=weeks, seed=seed, workers=workers,
                             scheduler=scheduler, progress=_progress_bar("replications"), actor=actor)
    if as_json:
        typer.echo(json.dumps([{"scenario": r.name, "file": r.located.file, "changes": r.plan.changes,
                                **run_record(r.result, r.name)} for r in runs], indent=1, default=str))
        return
    for r in runs:
        t = r.result.timings
        typer.echo(f"{r.run_id}  {r.name}: {r.result.weeks} weeks x {r.result.replications} replications "
                   f"in {t['wall_s']:.1f} s")
        for text in r.plan.changes:
            typer.echo(f"  {text}")
    typer.echo(f"\ncompare: caretwin scenario compare {workspace} " + " ".join(r.run_id for r in runs))


@scenario_app.command("check")
def scenario_check(
    workspace: Annotated[Path, typer.Argument(help="Workspace whose regions and providers the files name.")],
    files: Annotated[list[Path], typer.Argument(help="Scenario files (YAML).")],
) -> None:
    """Check scenario files against a workspace without running them."""
    from caretwin.scenarios import check_scenarios

    with _refusals():
        checked = check_scenarios(workspace, files)
    for loc, plan in checked:
        sc = loc.scenario
        typer.echo(f"{loc.file}: {sc.name}: {len(sc.shocks)} shock(s), {len(sc.interventions)} intervention(s), "
                   f"{sc.horizon_weeks} weeks x {sc.replications} replications: ok")
        for text in plan.changes or ["changes nothing: the baseline"]:
            typer.echo(f"  {text}")


@scenario_app.command("compare")
def scenario_compare(
    workspace: Annotated[Path, typer.Argument(help="Workspace holding the runs.")],
    run_ids: Annotated[list[str], typer.Argument(metavar="RUN...", help="Run ids; the first is the baseline.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole comparison as JSON on standard output.")] = False,
) -> None:
    """Compare scenario runs with the baseline: paired differences with 95% intervals, failure risk, value."""
    from caretwin.reports.board import evidence_points, fmt, fmt_signed, summary_points
    from caretwin.scenarios import compare

    try:
        c = compare(workspace, run_ids)
    except (CaretwinError, OSError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(c.to_json())
        return
    warning, points = evidence_points(c)
    if warning:
        typer.echo(f"WARNING: {warning}")
    for line in points:
        typer.echo(line)
    for s in c.scenarios:
        typer.echo(f"\n{s.name} ({s.run_id}) against {c.baseline_name} ({c.baseline_run}), "
                   f"{c.replications} paired replications")
        typer.echo(f"{'measure':<46}{'baseline':>13}{'scenario':>13}{'difference (95% interval)':>38}")
        for d in s.differences:
            ci = f"{fmt_signed(d.difference.mean, d.unit)} ({fmt_signed(d.difference.low, d.unit)}, " \
                 f"{fmt_signed(d.difference.high, d.unit)})"
            typer.echo(f"{d.label[:45]:<46}{fmt(d.baseline.mean, d.unit):>13}{fmt(d.scenario.mean, d.unit):>13}{ci:>38}")
        typer.echo("failure risk by region: " + ", ".join(
            f"{f.region_id} {f.scenario.mean * 100:.0f}% ({f.baseline.mean * 100:.0f}%)" for f in s.failure))
        for line in summary_points(c, s)[-2:]:
            typer.echo(line)


@app.command()
def report(
    workspace: Annotated[Path, typer.Argument(help="Workspace holding the runs.")],
    run_ids: Annotated[list[str], typer.Argument(metavar="RUN...", help="Run ids; the first is the baseline.")],
    html: Annotated[Path, typer.Option("--html", help="HTML report to write (self-contained).")],
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Also print it to this PDF (needs Chromium or Chrome).")] = None,
    title: Annotated[str, typer.Option(help="Report title.")] = "Scenario comparison",
) -> None:
    """Write the board report comparing scenario runs with the baseline: summary, fan charts, failure map, tables."""
    from caretwin.reports import report as write
    from caretwin.workspace import Workspace

    try:
        with Workspace.open(workspace) as ws:
            path = write(ws, run_ids, html, pdf, title, actor=_actor(ws, "report.read", fallback="planning"))
    except (CaretwinError, OSError) as exc:
        _fail(str(exc))
    typer.echo(f"report: {path}" + (f"\npdf: {pdf}" if pdf else ""))


@app.command()
def pilot(
    workspace: Annotated[Path, typer.Argument(help="Workspace to run the virtual pilot in.")],
    file: Annotated[Path, typer.Argument(help="Pilot file (YAML): cohort, intervention, outcome.")],
    replications: Annotated[int | None, typer.Option(help="Virtual trials (default: the file's).", min=2)] = None,
    seed: Annotated[int | None, typer.Option(help="Root seed (default: the file's).", min=0)] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on standard output.")] = False,
) -> None:
    """Randomise a cohort of member twins to an intervention or control, estimate the effect, size a real pilot."""
    from caretwin.scenarios import run_pilot

    progress = _progress_bar("virtual trials")
    with _refusals():
        r = run_pilot(workspace, file, replications=replications, seed=seed, workers=workers, progress=progress)
    if as_json:
        typer.echo(json.dumps(r.to_dict(), indent=1, default=float))
        return
    pct = lambda i: f"{i.mean * 100:.1f}% (95% interval {i.low * 100:.1f}% to {i.high * 100:.1f}%)"  # noqa: E731
    typer.echo(f"{r.name}: {r.replications} virtual trials of {r.cohort_size:,} members "
               f"({r.treated:,.0f} to the intervention); outcome: {r.outcome.replace('_', ' ')}")
    typer.echo(f"  control arm with the outcome:       {pct(r.control_rate)}")
    typer.echo(f"  intervention arm with the outcome:  {pct(r.treated_rate)}")
    typer.echo(f"  effect (difference):                {r.effect.mean * 100:+.2f} points (95% interval "
               f"{r.effect.low * 100:+.2f} to {r.effect.high * 100:+.2f}); relative risk {r.relative_risk:.2f}")
    typer.echo(f"  one trial of this size: interval half-width about {r.single_trial_half_width * 100:.2f} points; "
               f"it detects the effect in {pct(r.power_at_cohort)} of trials")
    need = f"{r.needed_per_arm:,} members per arm" if r.needed_per_arm else "no detectable effect to power for"
    typer.echo(f"  a real pilot needs {need} (two-sided, 1:1)")
    if r.intervention_cost:
        typer.echo(f"  intervention cost per trial: ${r.intervention_cost:,.0f}")


models_app = typer.Typer(help="The model registry: versions, cards, approvals for named purposes.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every model version with its status and the purposes it is approved for."""
    from caretwin.risk.registry import list_models
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace) as ws:
        rows = list_models(ws)
    if as_json:
        typer.echo(json.dumps(rows, indent=1, default=str))
        return
    for r in rows:
        approved = ", ".join(r["approved_for"]) or "-"
        typer.echo(f"{r['name']:<24} v{r['version']:<4} {r['status']:<9} approved for: {approved:<30} "
                   f"changed {r['changed_at']:%Y-%m-%d} by {r['changed_by'] or '-'}")
    if not rows:
        typer.echo("no models registered yet")


@models_app.command("show")
def models_show(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int | None, typer.Option(help="Version (default: the latest).", min=1)] = None,
) -> None:
    """Print a model version's card (Markdown)."""
    from caretwin.risk.registry import get_card
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace) as ws:
        typer.echo(get_card(ws, name, version).markdown(), nl=False)


@models_app.command("approve")
def models_approve(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to approve.", min=1)],
    purpose: Annotated[list[str], typer.Option("--purpose", help="A purpose of use it is approved for (repeat).")],
    by: Annotated[str, typer.Option("--by", help="Name of the person approving.")],
) -> None:
    """Approve a model version for named purposes of use, recording who approved it."""
    from caretwin.risk.registry import approve
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace) as ws:
        c = approve(ws, name, version, purpose, by=by, actor=_actor(ws, "models.approve"))
    typer.echo(f"{name} v{version}: approved for {', '.join(c.approved_for)} by {by}")


@models_app.command("retire")
def models_retire(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to retire.", min=1)],
    by: Annotated[str, typer.Option("--by", help="Name of the person retiring it.")],
) -> None:
    """Retire a model version: it can no longer score, for any purpose."""
    from caretwin.risk.registry import retire
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace) as ws:
        retire(ws, name, version, by=by, actor=_actor(ws, "models.approve"))
    typer.echo(f"{name} v{version}: retired by {by}")


@app.command()
def providers(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    weeks: Annotated[int, typer.Option(help="Weeks of data the factors cover.", min=2, max=52)] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Provider early warning: each HCBS and home health provider's strain index, its trend and its drivers."""
    from dataclasses import asdict

    from caretwin.risk.providers import provider_warnings
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace) as ws:
        rows = provider_warnings(ws, weeks=weeks)
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=1))
        return
    for r in rows:
        trend = "  new" if r.trend is None else f"{r.trend:+5.1f}"
        typer.echo(f"{r.provider_id:<10} {r.service_line:<12} {r.region_id:<6} index {r.index:5.1f}  trend {trend}  "
                   + ("; ".join(d.words for d in r.drivers[:3]) or "no factor above typical"))
    if not rows:
        typer.echo("no staffing data (workforce table) in this workspace")


risk_app = typer.Typer(help="Risk scoring with approved models.", no_args_is_help=True)
app.add_typer(risk_app, name="risk")
review_app = typer.Typer(help="The human review queue: flags wait for a person's decision.", no_args_is_help=True)
app.add_typer(review_app, name="review")


_REVIEWER = typer.Option("--reviewer", help="The reviewer's name, recorded beside who is acting (default: the "
                         "logged-in user, else the operating-system user).")
_DATABASE = typer.Option("--database", help="Governance database URL (default: the workspace's SQLite file, "
                         "or CARETWIN_DATABASE_URL).")


@risk_app.command("train")
def risk_train(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    outcome: Annotated[str, typer.Option("--outcome", help="What to predict: readmission_30d, ed_90d, crisis_90d, "
                                         "admission_90d, placement_12m or cost_12m.")],
    kind: Annotated[str, typer.Option(help="logistic (a GLM for cost) or boosted (gradient-boosted trees).")] = "logistic",
    calibration: Annotated[str | None, typer.Option(help="isotonic or sigmoid (default: isotonic for boosted).")] = None,
    lookback_days: Annotated[int, typer.Option(help="History before the first cut-off.", min=0)] = 180,
    by: Annotated[str, typer.Option(help="Who registers it (recorded).")] = "analyst",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    purpose: Annotated[str | None, _PURPOSE] = None,
) -> None:
    """Fit a model on 75% of members, evaluate it on the rest, and register it as a draft with its card."""
    from caretwin.risk.registry import register
    from caretwin.risk.train import fit_outcome
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace) as ws:
        actor = _actor(ws, "models.train", purpose, "quality_improvement")
        f = fit_outcome(ws, outcome, kind=kind, calibration=calibration, lookback_days=lookback_days,
                        random_state=seed, actor=actor)
        card = register(ws, f.model, f.card, by=by, actor=actor)
    typer.echo(f"registered {card.name} v{card.version} (draft) on {card.validation['test examples']:,} held-out examples:")
    for k, v in f.evaluation.items():
        typer.echo(f"  {k.replace('_', ' ')}: {v}")
    flagged = [f"{r.feature}={r.group} ({', '.join(r.flagged)})" for r in f.equity if r.flagged]
    typer.echo(f"  groups flagged in the equity review: {', '.join(flagged) or 'none'}")
    typer.echo(f"approve it with: caretwin models approve {workspace} {card.name} {card.version} "
               "--purpose care_management --by NAME")


@risk_app.command("score")
def risk_score(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    model: Annotated[str, typer.Option("--model", help="Registered model name.")],
    version: Annotated[int | None, typer.Option(help="Version (default: the latest).", min=1)] = None,
    purpose: Annotated[str | None, typer.Option(help="Purpose of use; the version must be approved for it "
                                                "(default: the workspace's [access] purpose, else care_management).")] = None,
    rise: Annotated[float, typer.Option(help="Also flag a rise of this much since the member's last score.", min=0)] = 0.10,
    capacity: Annotated[int | None, typer.Option(help="Flags the reviewers can work through before the next "
                                                 "scoring (default: the workspace's [review] capacity, else no limit).", min=0)] = None,
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """Score every enrolled member and put flags (above the threshold, or a large rise) in the review queue."""
    from caretwin.risk.review import score
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        actor = _actor(ws, "person.read", purpose, "care_management")
        n = score(ws, model, version=version, purpose=actor.purpose, rise=rise, capacity=capacity, actor=actor)
    typer.echo(f"scored {n['scored']:,} members; {n['flagged']:,} new flags in the review queue"
               + (f" ({n['already_open']:,} already waiting)" if n["already_open"] else "")
               + (f"; {n['over_capacity']:,} more above the threshold not queued (over the queue's capacity)"
                  if n["over_capacity"] else ""))


@review_app.command("list")
def review_list(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    reviewer: Annotated[str | None, _REVIEWER] = None,
    purpose: Annotated[str | None, _PURPOSE] = None,
    include_decided: Annotated[bool, typer.Option("--all", help="Include decided flags.")] = False,
    region: Annotated[str | None, typer.Option(help="Only flags of members in this region.")] = None,
    why: Annotated[str | None, typer.Option(help="Only flags raised for this: threshold or rise.")] = None,
    sort: Annotated[str, typer.Option(help="Order: risk (highest first), region, reason or oldest.")] = "risk",
    limit: Annotated[int | None, typer.Option(help="Show at most this many.", min=1)] = None,
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """The queue: open and deferred flags with their region and what drives each, highest risk first."""
    from caretwin.risk.review import list_flags, score_text
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        a = _actor(ws, "review.read", purpose, "care_management")
        rows = list_flags(ws, reviewer=reviewer or a.name, role=a.role, purpose=a.purpose, where=a.where,
                          include_decided=include_decided, region=region, why=why, sort=sort, limit=limit)
    for r in rows:
        typer.echo(f"{r['flag_id']}  {score_text(r['outcome'], r['score']):>9}  {r['region_id'] or '-':<6} "
                   f"{r['why']:<22} {r['status']:<9} {'; '.join(r['reasons'][:2]) or 'no single factor stands out'}")
    if not rows:
        typer.echo("no flags match" if region or why else "the queue is empty")


@review_app.command("show")
def review_show(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    flag: Annotated[str, typer.Argument(help="Flag id.")],
    reviewer: Annotated[str | None, _REVIEWER] = None,
    purpose: Annotated[str | None, _PURPOSE] = None,
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """One flag: the member (pseudonym), the risk, why it was flagged, the reasons, and decisions so far."""
    from caretwin.risk.review import score_text, show
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        a = _actor(ws, "review.read", purpose, "care_management")
        f = show(ws, flag, reviewer=reviewer or a.name, role=a.role, purpose=a.purpose, where=a.where)
    typer.echo(f"flag {f['flag_id']} ({f['status']}): member {f['member_id']}, {f['outcome']} "
               f"{score_text(f['outcome'], f['score'])} as of {f['as_of']} ({f['why']}; threshold "
               f"{score_text(f['outcome'], f['threshold'])}), {f['model']} v{f['version']}")
    for reason in f["reasons"]:
        typer.echo(f"  - {reason}")
    h = f["history"]
    typer.echo(f"the last year ({h.since} to {h.until}): {h.summary()}")
    for e in h.events:
        typer.echo(f"  {e.day}  {e.what}")
    for d in f["decisions"]:
        typer.echo(f"  {d['decided_at']:%Y-%m-%d %H:%M} {d['reviewer']}: {d['decision']}: {d['reason']}")


@review_app.command("decide")
def review_decide(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    flag: Annotated[str, typer.Argument(help="Flag id.")],
    decision: Annotated[str, typer.Option("--decision", help="accept, override or defer.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required).")],
    reviewer: Annotated[str | None, _REVIEWER] = None,
    purpose: Annotated[str | None, _PURPOSE] = None,
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """Record a decision on a flag: accept or override close it; defer keeps it in the queue."""
    from caretwin.risk.review import decide
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        a = _actor(ws, "review.decide", purpose, "care_management")
        status = decide(ws, flag, decision, reason, reviewer=reviewer or a.name, role=a.role, purpose=a.purpose,
                        where=a.where)
    typer.echo(f"flag {flag}: {decision} recorded; it is now {status}")


@review_app.command("reidentify")
def review_reidentify(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    member: Annotated[str, typer.Argument(help="The member's pseudonym, as `caretwin review show` gives it.")],
    roster: Annotated[Path | None, typer.Option("--roster", help="A CSV the agency holds with its member ids (such "
                                                "as the extract's members.csv; default: [review] roster).")] = None,
    column: Annotated[str | None, typer.Option(help="The roster's column of member ids (default member_id).")] = None,
    purpose: Annotated[str | None, _PURPOSE] = None,
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """Say which of the agency's members a pseudonym is (person-level roles only; recorded, found or not)."""
    from caretwin.risk.context import reidentify
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        found = reidentify(ws, member, roster, column=column,
                           actor=_actor(ws, "person.read", purpose, "care_management"))
    typer.echo(f"{member} is {found} in the agency's roster")


@review_app.command("export")
def review_export(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    out: Annotated[Path, typer.Argument(help="CSV file to write.")],
    reviewer: Annotated[str | None, _REVIEWER] = None,
    purpose: Annotated[str | None, _PURPOSE] = None,
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """Write every decision, with its flag, to CSV."""
    from caretwin.risk.review import export_decisions
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        a = _actor(ws, "review.read", purpose, "quality_improvement")
        n = export_decisions(ws, out, reviewer=reviewer or a.name, role=a.role, purpose=a.purpose, where=a.where)
    typer.echo(f"{n:,} decisions written to {out}")


@app.command()
def login(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    user: Annotated[str, typer.Option("--user", help="Your user name in this workspace.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, envvar="CARETWIN_PASSWORD",
                                          help="Your password (asked for when not given).")],
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """Log in at the command line: later commands on WORKSPACE act as you, with your role and purposes, for 8
    hours (needed where the workspace's caretwin.toml has `[access] require_login = true`)."""
    from caretwin.governance.access import cli_log_in, requires_login, session_file
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        u = cli_log_in(ws, user, password)
        kept, needed = session_file(ws), requires_login(ws)
    typer.echo(f"logged in to {workspace} as {u.name} ({u.role}); session kept in {kept}"
               + ("" if needed else "\n(this workspace does not require log-in: commands act as you only after it "
                                    "does, with [access] require_login = true)"))


@app.command()
def logout(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """End your command-line session on WORKSPACE."""
    from caretwin.governance.access import cli_log_out
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        ended = cli_log_out(ws)
    typer.echo("logged out" if ended else "no session to end")


@app.command()
def serve(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8000,
    database: Annotated[str | None, typer.Option("--database", help="Governance database URL (default: the "
                                                 "workspace's SQLite file, or CARETWIN_DATABASE_URL).")] = None,
) -> None:
    """Serve the web dashboard (at /) and the governed REST API (under /api; its OpenAPI schema at /openapi.json)."""
    import uvicorn

    from caretwin.web.views import create_site

    with _refusals():
        api = create_site(workspace, database=database)
    typer.echo(f"caretwin serving {workspace}: the dashboard at http://{host}:{port}/ and the API under /api "
               "(schema at /openapi.json); stop with Ctrl+C")
    uvicorn.run(api, host=host, port=port, log_level="warning", access_log=False)


users_app = typer.Typer(help="Local users of the governed server.", no_args_is_help=True)
app.add_typer(users_app, name="users")
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@users_app.command("add")
def users_add(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option("--role", help="admin, analyst, care_coordinator, executive or auditor.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          envvar="CARETWIN_PASSWORD", help="At least 12 characters.")],
    by: Annotated[str | None, typer.Option("--by", help="Who asked for the user (recorded beside the "
                                                        "operating-system user).")] = None,
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """Add a user with a role (the password is hashed with argon2id; it is never stored or shown)."""
    from caretwin.governance.audit import Actor, trail_for
    from caretwin.governance.store import store_for
    from caretwin.governance.users import add_user, list_users
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        # the first user of a workspace is added by whoever holds it; later ones by someone who may manage users
        first = not list_users(store_for(ws))
        actor = Actor.local("administration") if first else _actor(ws, "users.manage", fallback="administration")
        u = add_user(store_for(ws), name, role, password, trail=trail_for(ws), by=by, actor=actor)
    typer.echo(f"added {u.name} ({u.role})")


@users_app.command("disable")
def users_disable(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    name: Annotated[str, typer.Argument(help="User name.")],
    by: Annotated[str | None, typer.Option("--by", help="Who asked for it (recorded beside the "
                                                        "operating-system user).")] = None,
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """Disable a user and end their sessions (the account stays on record)."""
    from caretwin.governance.audit import trail_for
    from caretwin.governance.store import store_for
    from caretwin.governance.users import disable_user
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        disable_user(store_for(ws), name, trail=trail_for(ws), by=by,
                     actor=_actor(ws, "users.manage", fallback="administration"))
    typer.echo(f"disabled {name}")


@users_app.command("list")
def users_list(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """List users with their roles and whether they are active."""
    from caretwin.governance.store import store_for
    from caretwin.governance.users import list_users
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        rows = list_users(store_for(ws))
    for u in rows:
        typer.echo(f"{u.name:<24} {u.role:<18} {'active' if u.active else 'disabled'}")
    if not rows:
        typer.echo("no users yet: add one with caretwin users add")


@audit_app.command("verify")
def audit_verify(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    checkpoints: Annotated[Path | None, typer.Option("--checkpoints", help="A file of checkpoints kept elsewhere "
                                                      "(`caretwin audit checkpoint`): each must still hold.")] = None,
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """Check every entry's hash, the chain between entries, the head kept apart and any checkpoints; exit 1
    naming each problem."""
    from caretwin.governance.audit import trail_for
    from caretwin.workspace import Workspace

    try:
        kept = [json.loads(line) for line in checkpoints.read_text().splitlines() if line.strip()] if checkpoints else []
    except (OSError, ValueError) as exc:
        _fail(f"{checkpoints}: not a file of checkpoints ({exc})")
    with _refusals(), Workspace.open(workspace, database) as ws:
        trail = trail_for(ws)
        problems, n = trail.verify(kept), trail.count()
    if problems:
        for p in problems:
            typer.echo(f"error: {p}", err=True)
        raise typer.Exit(1)
    typer.echo(f"the audit trail is intact: {n:,} entries")


@audit_app.command("checkpoint")
def audit_checkpoint(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    out: Annotated[Path, typer.Argument(help="File to append the checkpoint to: keep it outside the workspace "
                                             "(an auditor's own store, write-once media).")],
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """Append a signed checkpoint of the trail's newest entry to OUT; `audit verify --checkpoints OUT` then finds a
    trail rolled back or wiped with its head."""
    from caretwin.governance.audit import trail_for
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        c = trail_for(ws).checkpoint()
    with out.open("a") as fh:
        fh.write(json.dumps(c) + "\n")
    typer.echo(f"checkpoint of entry {c['seq']:,} appended to {out}")


@audit_app.command("export")
def audit_export(
    workspace: Annotated[Path, typer.Argument(help="Workspace folder.")],
    out: Annotated[Path, typer.Argument(help="NDJSON file to write.")],
    by: Annotated[str | None, typer.Option("--by", help="Who asked for the export (recorded beside the "
                                                        "operating-system user).")] = None,
    database: Annotated[str | None, _DATABASE] = None,
) -> None:
    """Write the trail as FHIR R4 AuditEvent resources, one per line (the export is recorded)."""
    from caretwin.governance.audit import audited, trail_for
    from caretwin.workspace import Workspace

    with _refusals(), Workspace.open(workspace, database) as ws:
        with audited(ws, _actor(ws, "audit.read", fallback="audit"), kind="export", action="R", subtype="audit.export",
                     entity_type="audit_trail") as event:
            n = trail_for(ws).export(out)
            event.record(detail={"entries": n, "file": out.name, **({"by": by} if by else {})})
    typer.echo(f"{n:,} audit events written to {out}")


@app.command()
def params(
    module: Annotated[str | None, typer.Option(help="Only this module's parameters.")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the Markdown of docs/parameters.md.")] = False,
    toml: Annotated[bool, typer.Option("--toml", help="Print a parameter file with every default, to edit.")] = False,
) -> None:
    """List the engine's parameters: module, default, unit, meaning and the source of the default."""
    from caretwin.simulate import declared_params
    from caretwin.simulate.docs import render_markdown

    if markdown:
        typer.echo(render_markdown(), nl=False)
        return
    p = declared_params()
    if toml:
        typer.echo(p.dumps(), nl=False)
        return
    for name, (mod, decl) in p.declared.items():
        if module is None or mod == module:
            typer.echo(f"{mod:<14}{name:<40}{decl.default!s:<30}{decl.unit:<22}{decl.meaning}")


@app.command()
def demo(
    path: Annotated[Path, typer.Argument(help="Workspace folder for the demo.")] = Path("demo-workspace"),
    members: Annotated[int, typer.Option(help="Members in the demo county.", min=100)] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    replications: Annotated[int, typer.Option(help="Replications of each 26-week scenario.", min=2)] = 40,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).", min=1)] = None,
) -> None:
    """The whole journey on a synthetic county: synth, ingest, quality, calibrate, three scenarios, the report."""
    from caretwin.demo import run_journey

    t0 = time.perf_counter()
    progress = _progress_bar("replications")
    try:
        j = run_journey(path, members=members, seed=seed, replications=replications, workers=workers,
                        echo=typer.echo, progress=progress)
    except (CaretwinError, FileExistsError) as exc:
        _fail(str(exc))
    typer.echo(f"\ndemo ready in {time.perf_counter() - t0:.0f} s")
    typer.echo("runs: " + ", ".join(f"{name} {run}" for name, run in j.runs))
    if j.pdf is None:
        typer.echo("(no PDF: Chromium or Chrome was not found; the HTML report needs nothing)")
    typer.echo(f"try: caretwin scenario compare {path} {' '.join(r for _, r in j.runs)}")
    typer.echo(f"     caretwin pilot {path} {path / 'scenarios' / 'coordination-pilot.yaml'}")
    typer.echo(f"report: {j.report}" + (f"  (PDF: {j.pdf})" if j.pdf else ""))
    exe = Path(sys.argv[0])
    exe = exe.relative_to(Path.cwd()) if exe.is_absolute() and exe.is_relative_to(Path.cwd()) else exe
    typer.echo(f"dashboard: {exe if exe.name == 'caretwin' else 'caretwin'} serve {path}   then open "
               "http://127.0.0.1:8000/")
    typer.echo(f"  log in as analyst, password {j.logins['analyst']}, working for planning; the care "
               f"coordinator, executive, auditor and admin log-ins are in {path / 'demo-logins.txt'}")


@app.command()
def schema(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the Markdown of docs/data-model.md.")] = False,
) -> None:
    """Show the canonical data model: tables, columns, types, units and constraints."""
    from caretwin.model import SCHEMA_VERSION, TABLES
    from caretwin.model.docs import render_markdown

    if markdown:
        typer.echo(render_markdown(), nl=False)
        return
    typer.echo(f"canonical data model, schema version {SCHEMA_VERSION}")
    for t in TABLES:
        typer.echo(f"\n{t.name}  (key: {', '.join(t.primary_key)})  {t.description}")
        for c in t.columns:
            typer.echo(f"  {c.name:<26}{c.dtype:<9}{'required' if c.required else '':<10}{c.unit or ''}")


@app.command()
def settings(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the Markdown of docs/settings.md.")] = False,
) -> None:
    """List the settings, their environment variables and defaults."""
    from caretwin.settings import SETTINGS, render_markdown

    if markdown:
        typer.echo(render_markdown(), nl=False)
        return
    for s in SETTINGS:
        typer.echo(f"{s.name:<14}{s.env_var:<26}default {s.default!r:<10} {s.help}")


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


def main() -> None:
    app(prog_name="caretwin")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

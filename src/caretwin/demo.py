"""The demo: a synthetic county loaded into a fresh workspace, and the whole journey on it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from caretwin.files import write_private
from caretwin.ingest import LoadReport, ingest
from caretwin.synth import CountyParams, write_extract
from caretwin.workspace import Workspace
from caretwin.workspace.workspace import CONFIG_FILE


def build_demo(path: str | Path, *, members: int = 5000, regions: int = 6, months: int = 12, seed: int = 42,
               replace: bool = False) -> tuple[Workspace, LoadReport]:
    """Generate a county, create a workspace at `path` and load the county into it."""
    target = Path(path)
    if target.exists() and replace:
        if not (target / CONFIG_FILE).exists():
            raise FileExistsError(f"{target}: exists and is not a caretwin workspace; not replacing it")
        shutil.rmtree(target)
    ws = Workspace.create(target, name="demo county")
    # the extract stays inside the demo workspace, so its load history points at files that exist
    extract = write_extract(CountyParams(members=members, regions=regions, months=months, seed=seed), ws.path / "extract")
    report = ingest(ws, extract.path)
    return ws, report


EXAMPLES = Path(__file__).parent / "scenarios" / "examples"
DEMO_SCENARIOS = ("baseline.yaml", "referral-surge.yaml", "surge-response.yaml")


@dataclass
class Journey:
    workspace: Path
    quality_report: Path
    calibrated: Path
    runs: list[tuple[str, str]]  # (scenario name, run id)
    report: Path
    pdf: Path | None
    flags: int = 0  # flags the demo's risk model put in the review queue
    logins: dict[str, str] = field(default_factory=dict)  # demo user -> password (also in WORKSPACE/demo-logins.txt)


def run_journey(path: str | Path, *, members: int = 5000, seed: int = 42, replications: int = 40,
                workers: int | None = None, echo: Callable[[str], None] = print,
                progress: Callable[[int, int], None] | None = None) -> Journey:
    """The whole journey on a synthetic county: synth and ingest, quality, calibrate, a baseline and two
    alternatives (the example scenarios, copied into the workspace to edit), the comparison and its report."""
    from caretwin.quality import render_html, run_quality
    from caretwin.reports.board import find_browser, report
    from caretwin.scenarios import run_scenarios
    from caretwin.simulate.calibrated import calibrate_to

    path = Path(path)
    echo(f"1. generating a synthetic county of {members:,} members over 12 months (seed {seed}) and loading it ...")
    ws, _ = build_demo(path, members=members, seed=seed, replace=True)
    with ws:
        echo("2. checking data quality ...")
        quality = run_quality(ws)
        quality_path = path / "quality.html"
        quality_path.write_text(render_html(quality))
        s = quality.summary()
        echo(f"   {s['checks']} checks, {s['fail']} failed: {quality_path}")
        echo("3. calibrating the twin to the county's history ...")
        calibrated = path / "calibrated.toml"
        cal, _ = calibrate_to(ws, calibrated, seed=seed)
        echo(f"   {len(cal.estimates)} parameters estimated from {cal.window.start} to {cal.window.end}: {calibrated}")
        folder = path / "scenarios"
        folder.mkdir(exist_ok=True)
        for name in DEMO_SCENARIOS + ("coordination-pilot.yaml",):
            shutil.copy(EXAMPLES / name, folder / name)
        echo(f"4. running the baseline and two alternatives ({replications} replications each; files in {folder}) ...")
        runs = run_scenarios(ws, [folder / n for n in DEMO_SCENARIOS], replications=replications, workers=workers,
                             progress=progress, on_stored=lambda r: echo(f"   {r.name}: {r.run_id}"))
        echo("5. comparing them and writing the board report ...")
        pdf = path / "report.pdf" if find_browser() else None
        html = report(ws, [r.run_id for r in runs], path / "report.html", pdf,
                      title="Demo county: a referral surge, and a response")
        echo("6. training a model of ED visits within 90 days, approving it and scoring the county ...")
        flags = _risk_queue(ws, seed)
        echo(f"   {flags:,} members flagged for a care coordinator's review (the queue is kept to "
             f"{DEMO_CAPACITY}, the highest risks first)")
        logins = _demo_users(ws)
    return Journey(path, quality_path, calibrated, [(r.name, r.run_id) for r in runs], html, pdf, flags, logins)


DEMO_ROLES = {"analyst": "analyst", "coordinator": "care_coordinator", "executive": "executive",
              "auditor": "auditor", "admin": "admin"}  # demo user -> role


DEMO_CAPACITY = 150  # flags kept in the demo's queue: two coordinators at about 15 reviews a day each, for a week


def _risk_queue(ws: Workspace, seed: int) -> int:
    """A registered, approved model and its flags, so the review queue has something for a person to decide."""
    from caretwin.risk.registry import approve, register
    from caretwin.risk.review import score
    from caretwin.risk.train import fit_outcome

    fitted = fit_outcome(ws, "ed_90d", lookback_days=90, random_state=seed, n_boot=50)
    card = register(ws, fitted.model, fitted.card, by="demo")
    approve(ws, card.name, card.version, ["care_management", "planning"], by="demo")
    # what two coordinators can review in a week, about; and the agency's roster (here the synthetic extract)
    ws.configure("review", capacity=DEMO_CAPACITY, roster="extract/members.csv")
    return score(ws, card.name)["flagged"]


def _demo_users(ws: Workspace) -> dict[str, str]:
    """One demo user for each role, with random passwords written to WORKSPACE/demo-logins.txt (mode 0600)."""
    from caretwin.governance.audit import trail_for
    from caretwin.governance.store import store_for
    from caretwin.governance.users import add_user

    logins = {name: secrets.token_urlsafe(12) for name in DEMO_ROLES}
    for name, password in logins.items():
        add_user(store_for(ws), name, DEMO_ROLES[name], password, trail=trail_for(ws), by="caretwin demo")
    write_private(ws.path / "demo-logins.txt",
                  "# demo log-ins for `caretwin serve` (demo data only; delete this file for anything else)\n"
                  + "".join(f"{name}\t{DEMO_ROLES[name]}\t{password}\n" for name, password in logins.items()))
    return logins

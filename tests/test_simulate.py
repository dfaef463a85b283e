"""Simulating a workspace: from its current state, through the CLI and the API, on a process pool or Dask."""

import json
from datetime import timedelta

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from caretwin.cli import app
from caretwin.ingest import ingest
from caretwin.simulate import declared_params, from_workspace, run_replications
from caretwin.simulate.initial import data_end
from caretwin.simulate.state import ACTIVE, HOSPITAL, PENDING, WAITING
from caretwin.synth import CountyParams, write_extract

runner = CliRunner()


@pytest.fixture()
def loaded(workspace, extract_csv):
    ingest(workspace, extract_csv)
    return workspace


def test_the_engine_starts_from_who_is_enrolled_waiting_served_and_in_hospital(loaded):
    world = from_workspace(loaded)
    end = data_end(loaded)
    assert world.start == end + timedelta(days=1)
    d = f"DATE '{end}'"
    enrolled, = loaded.con.execute(f"""SELECT count(*) FROM members WHERE enrollment_start <= {d}
        AND (enrollment_end IS NULL OR enrollment_end > {d}) AND (death_date IS NULL OR death_date > {d})""").fetchone()
    inpatients, = loaded.con.execute(f"""SELECT count(DISTINCT member_id) FROM encounters WHERE encounter_class = 'inpatient'
        AND admit_date <= {d} AND (discharge_date IS NULL OR discharge_date > {d})""").fetchone()
    m = world.members
    assert world.n_members == enrolled
    assert (m["loc"] == HOSPITAL).sum() == inpatients > 0
    latest = dict(loaded.con.execute(f"""
        WITH enrolled AS (SELECT member_id FROM members WHERE enrollment_start <= {d}
            AND (enrollment_end IS NULL OR enrollment_end > {d}) AND (death_date IS NULL OR death_date > {d}))
        SELECT status, count(*) FROM (
            SELECT member_id, arg_max(status, received_date) AS status FROM referrals
            WHERE service_line IN ('hcbs', 'home_health') AND received_date <= {d} GROUP BY 1
        ) JOIN enrolled USING (member_id) GROUP BY 1""").fetchall())
    assert (m["svc"] == PENDING).sum() == latest.get("pending", 0)
    assert (m["svc"] == WAITING).sum() == latest["authorized"] > 0
    assert 0 < (m["svc"] == ACTIVE).sum() <= latest["started"]
    # the hours promised to members in service are what the providers carry
    assert world.providers["committed"].sum() == pytest.approx(m["hours"][m["svc"] == ACTIVE].sum())
    assert world.unit_costs["hcbs_hour"] == 28.0


def test_cli_simulate_stores_the_run_and_writes_every_replication(loaded, tmp_path):
    loaded.close()
    out = tmp_path / "out"
    res = runner.invoke(app, ["simulate", str(loaded.path), "--weeks", "4", "--replications", "3", "--workers", "1",
                              "--seed", "5", "--out", str(out), "--label", "baseline"])
    assert res.exit_code == 0, res.output
    assert "run run-" in res.output and "delayed_discharge_days" in res.output
    record = json.loads((out / "run.json").read_text())
    assert record["replications"] == 3 and record["seed"] == 5 and record["label"] == "baseline"
    assert record["parameters"]["workforce"]["rate_separation"] == 0.45
    reps = pq.read_table(out / "replications.parquet")
    assert set(reps.column("replication").to_pylist()) == {0, 1, 2}
    summary = pq.read_table(out / "summary.parquet")
    q = duckdb.connect()
    bad, = q.execute(f"SELECT count(*) FROM '{out / 'summary.parquet'}' WHERE NOT (p05 <= p50 AND p50 <= p95)").fetchone()
    assert bad == 0
    kinds = {r[0] for r in q.execute(f"SELECT DISTINCT group_kind FROM '{out / 'summary.parquet'}'").fetchall()}
    assert kinds == {"all", "age_band", "sex", "race_ethnicity", "rurality"}
    assert summary.column_names[:8] == ["week", "week_start", "region_id", "service_line", "group_kind", "group_value",
                                        "metric", "mean"]
    con = duckdb.connect(str(loaded.path / "caretwin.duckdb"), read_only=True)
    (run_id, label), = con.execute("SELECT run_id, label FROM _runs").fetchall()
    assert label == "baseline" and run_id == record["run_id"]
    n, = con.execute("SELECT count(*) FROM _run_metrics WHERE run_id = ?", [run_id]).fetchone()
    con.close()
    assert n == summary.num_rows
    listed = runner.invoke(app, ["runs", str(loaded.path)])
    assert run_id in listed.output


def test_a_bad_parameter_file_is_refused_by_line_and_name_and_nothing_is_stored(loaded, tmp_path):
    loaded.close()
    bad = tmp_path / "p.toml"
    bad.write_text("[workforce]\nrate_separation = 'high'\n")
    res = runner.invoke(app, ["simulate", str(loaded.path), "--params", str(bad), "--weeks", "2", "--replications", "1"])
    assert res.exit_code == 2
    assert f"{bad}, line 2, field workforce.rate_separation: expected one number" in res.output
    con = duckdb.connect(str(loaded.path / "caretwin.duckdb"), read_only=True)
    assert "_runs" not in {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()


def test_dask_gives_the_same_numbers_as_the_local_pool():
    from dask import (
        distributed,  # the `distributed` extra, installed with the development tools
    )

    from caretwin.synth.world import build_population

    world = build_population(CountyParams(members=2000, regions=3, seed=1)).world
    local = run_replications(world, weeks=4, replications=3, seed=9, workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                                  host="127.0.0.1") as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")  # what --scheduler takes
        dask = run_replications(world, weeks=4, replications=3, seed=9, scheduler=cluster.scheduler_address)
    assert dask.backend == "dask"
    assert np.array_equal(local.metrics, dask.metrics)


def test_synth_history_is_run_by_the_engine_with_its_parameters(tmp_path):
    # one model, not two: doubling the engine's ED rate roughly doubles the county's ED encounters
    # (rate and its unmet-need multiplier, seed 3; asserted > 1.6x)
    params = CountyParams(members=3000, regions=3, months=3, seed=3)
    base = write_extract(params, tmp_path / "a")
    rate = 2 * declared_params()["rate_ed"]
    doubled = write_extract(params, tmp_path / "b", engine_params=declared_params().update({"rate_ed": rate}))

    def ed(path):
        sql = f"SELECT count(*) FROM '{path}/encounters.csv' WHERE encounter_class = 'emergency'"
        return duckdb.connect().execute(sql).fetchone()[0]

    assert ed(doubled.path) > 1.6 * ed(base.path)
    assert doubled.manifest["engine_parameters"]["utilisation"]["rate_ed"] == rate


def test_the_demo_runs_the_whole_journey_and_prints_the_report_path(tmp_path):
    demo = tmp_path / "demo"
    res = runner.invoke(app, ["demo", str(demo), "--members", "1500", "--replications", "4"])  # every region keeps an HCBS agency
    assert res.exit_code == 0, res.output
    assert "checks," in res.output and "parameters estimated" in res.output
    last = res.output.rstrip().splitlines()[-3:]  # the report, the dashboard's command, a demo log-in
    assert last[0].startswith(f"report: {demo / 'report.html'}")
    assert last[1].startswith("dashboard: ") and f"serve {demo}" in last[1] and "http://127.0.0.1:8000/" in last[1]
    password = last[2].split("password ")[1].split(",")[0]
    from caretwin.governance.store import engine_for
    from caretwin.governance.users import log_in

    assert log_in(engine_for(demo), "analyst", password)[1].role == "analyst"
    logins = (demo / "demo-logins.txt").read_text().splitlines()[1:]
    assert {line.split("\t")[1] for line in logins} == {"admin", "analyst", "care_coordinator", "executive", "auditor"}
    assert (demo / "demo-logins.txt").stat().st_mode & 0o077 == 0  # readable by its owner only
    assert "members flagged for a care coordinator's review" in res.output
    assert (demo / "calibrated.toml").exists() and (demo / "quality.html").exists()
    assert sorted(p.name for p in (demo / "scenarios").iterdir()) == [
        "baseline.yaml", "coordination-pilot.yaml", "referral-surge.yaml", "surge-response.yaml"]
    con = duckdb.connect(str(demo / "caretwin.duckdb"), read_only=True)
    assert con.execute("SELECT label, replications, weeks FROM _runs ORDER BY created_at").fetchall() == [
        ("baseline", 4, 26), ("referral surge", 4, 26), ("surge with response", 4, 26)]
    con.close()
    assert "surge with response" in (demo / "report.html").read_text()
    # every step the demo took is in the audit trail, recorded by the services themselves, and the trail holds
    from caretwin import Workspace
    from caretwin.governance.audit import trail_for

    with Workspace.open(demo) as ws:
        trail = trail_for(ws)
        steps = [e.subtype for e in trail.entries()]
        assert trail.verify() == []
    assert steps == ["data.ingest", "data.enrich", "quality.run", "model.calibrate", "simulate.run", "simulate.run",
                     "simulate.run", "report.write", "model.train", "models.register", "models.approve",
                     "settings.change", "risk.score"] + ["users.add"] * 5, steps


def test_members_already_in_beds_keep_them_and_every_bed_is_accounted_for(loaded):
    from caretwin.simulate import Engine
    from caretwin.simulate.state import CSU, SNF

    world = from_workspace(loaded)
    on_record = {SNF: int((world.members["loc"] == SNF).sum()), CSU: int((world.members["loc"] == CSU).sum())}
    assert on_record[SNF] > 0
    engine = Engine(world)
    sim = engine.new_sim(seed=1, weeks=2)
    snf, csu = sim.module("hospital").snf, sim.module("crisis").nodes
    assert snf.occupancy().sum() + snf.q_len.sum() == on_record[SNF]
    assert csu.occupancy().sum() + csu.q_len.sum() == on_record[CSU]
    for day in range(14):
        engine.advance(sim, day, day + 1)
        assert (sim.m.loc == SNF).sum() == snf.occupancy().sum()
        assert (sim.m.loc == CSU).sum() == csu.occupancy().sum()


def test_synth_takes_an_engine_parameter_file_and_refuses_a_bad_one(tmp_path):
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text("[hospital]\nmax_delayed_discharge_days = 3\n")
    bad.write_text("[hospital]\nrate_ed = 0.9\n")
    res = runner.invoke(app, ["synth", str(tmp_path / "x"), "--members", "500", "--regions", "2", "--months", "1",
                              "--params", str(good)])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert manifest["engine_parameters"]["hospital"]["max_delayed_discharge_days"] == 3
    res = runner.invoke(app, ["synth", str(tmp_path / "y"), "--members", "500", "--params", str(bad)])
    assert res.exit_code == 2 and "hospital.rate_ed: belongs to [utilisation]" in res.output
    assert not (tmp_path / "y").exists()


def test_the_state_at_a_past_cutoff_is_what_the_county_was_then(tmp_path):
    # the synthetic county's own episodes and stays are the truth; the workspace only has its canonical rows
    from caretwin import Workspace
    from caretwin.synth.county import simulate_county

    params = CountyParams(members=3000, regions=4, months=6, seed=21)
    county = simulate_county(params)
    ws = Workspace.create(tmp_path / "ws")
    ingest(ws, write_extract(params, tmp_path / "x").path)
    e, m, st = county.episodes, county.members, county.stays
    for cut in (45, 90, 150):
        world = from_workspace(ws, as_of=params.start + timedelta(days=cut))
        alive = (m["enroll_start"] <= cut) & (m["enroll_end"] > cut) & (m["death"] > cut)
        open_ = (e.ended > cut) & alive[e.member]
        svc = world.members["svc"]
        assert world.n_members == alive.sum()
        assert (world.members["loc"] == HOSPITAL).sum() == ((st.cls == 1) & (st.admit <= cut) & (st.discharge > cut)
                                                           & alive[st.member]).sum()
        assert (svc == PENDING).sum() == ((e.received <= cut) & (e.authorised > cut) & open_).sum()
        # a service ending on the cut-off day is still covered by its authorisation that day: allow a few
        assert abs((svc == ACTIVE).sum() - ((e.started <= cut) & open_).sum()) <= 3
        assert abs((svc == WAITING).sum() - ((e.authorised <= cut) & (e.started > cut) & open_).sum()) <= 3


def test_one_extract_gives_identical_runs_in_workspaces_with_different_keys(extract_csv, tmp_path):
    # members are numbered in the order they arrived, not by their keyed pseudonyms, so a run (here with the
    # calibration's parameter draws, seed 3) is bit-identical in two workspaces whose secret keys differ
    from caretwin import Workspace
    from caretwin.calibrate import calibrate
    from caretwin.simulate.calibrated import params_of

    runs = []
    for name in ("a", "b"):
        with Workspace.create(tmp_path / name) as ws:
            ingest(ws, extract_csv)
            cal = calibrate(ws, draws=4, seed=3)
            draws = [params_of(cal, k) for k in range(4)]
            runs.append(run_replications(from_workspace(ws), params_of(cal), weeks=6, replications=4, seed=3,
                                         workers=1, draws=draws))
    assert (tmp_path / "a" / "secret.key").read_bytes() != (tmp_path / "b" / "secret.key").read_bytes()
    assert runs[0].metrics.sum() > 0
    np.testing.assert_array_equal(runs[0].metrics, runs[1].metrics)


def test_members_keep_their_arrival_order_across_loads_and_upgrades(loaded, extract_csv):
    # the engine numbers members by arrival: a reload keeps every place, and a workspace from before schema 1.2
    # gets the order its members are stored in
    from caretwin import Workspace
    from caretwin.model import SCHEMA_VERSION

    con = loaded.con
    order = con.execute("SELECT member_id FROM _member_order ORDER BY seq").fetchall()
    assert len(order) == con.execute("SELECT count(*) FROM members").fetchone()[0]
    ingest(loaded, extract_csv)
    assert con.execute("SELECT member_id FROM _member_order ORDER BY seq").fetchall() == order
    con.execute("DROP TABLE _member_order")
    loaded.close()
    cfg = loaded.path / "caretwin.toml"
    cfg.write_text(cfg.read_text().replace(f'schema_version = "{SCHEMA_VERSION}"', 'schema_version = "1.1.0"'))
    with Workspace.open(loaded.path) as again:
        seqs = again.con.execute("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM _member_order").fetchone()
        assert seqs == (len(order), len(order), 1, len(order))
        assert from_workspace(again).n_members > 0

"""Calibration recovers the parameters that made a synthetic county, and its forecasts cover what happened."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from caretwin import Workspace, ingest
from caretwin.calibrate import calibrate
from caretwin.cli import app
from caretwin.simulate import declared_params
from caretwin.simulate.validate import validate
from caretwin.synth import CountyParams, write_extract

runner = CliRunner()
SHARED = Path(__file__).parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def counties(tmp_path_factory):
    """Five synthetic counties (20,000 members, 12 months, seeds 0-4) loaded into workspaces."""
    out = []
    for seed in range(5):
        root = tmp_path_factory.mktemp(f"county{seed}")
        ws = Workspace.create(root / "ws")
        ingest(ws, write_extract(CountyParams(members=20_000, regions=6, months=12, seed=seed), root / "x").path)
        out.append(ws)
    yield out
    for ws in out:
        ws.close()


def test_calibration_recovers_the_generating_parameters(counties):
    # over five seeds (calibration draws seeded 1), the share of estimated parameters whose 90% interval holds
    # the value that generated the data must reach 85%; measured 85.7% (258 of 301) when this was written
    truth = declared_params()
    hits = []
    for ws in counties:
        cal = calibrate(ws, seed=1)
        for e in cal.estimates:
            if e.supported:
                hits.append(e.contains(truth[e.name]))
    share = float(np.mean(hits))
    assert len(hits) >= 5 * 55, "fewer parameters estimated than expected"
    assert share >= 0.85, f"recovered {share:.1%} of {len(hits)} parameter intervals"


def test_forecast_bands_cover_the_held_out_weeks_at_their_nominal_rate(counties):
    # calibrate on the first 40 weeks, forecast 12 (100 replications, seed 0): weekly region-level referrals,
    # waitlist, missed-visit rate, ED visits and admissions; 80% bands must hold 70-90%, 95% bands at least 88%
    v = validate(counties[0], holdout_weeks=12, replications=100, seed=0)
    s = v.summary()
    assert s["observations"] >= 5 * 12 * 6 * 0.9
    assert 0.70 <= s["coverage"]["80"] <= 0.90, s["coverage"]
    assert s["coverage"]["95"] >= 0.88, s["coverage"]
    assert set(s["by_metric"]) == {"referrals", "waitlist", "missed_visit_rate", "ed_visits", "admissions"}


def test_cli_calibrates_simulates_with_its_draws_and_validates(counties, tmp_path):
    ws = counties[1]
    path = ws.path
    ws.close()
    res = runner.invoke(app, ["calibrate", str(path), "--out", str(tmp_path / "p.toml")])
    assert res.exit_code == 0, res.output
    assert "rate_ed" in res.output and "not estimated from these data" in res.output
    record = json.loads((tmp_path / "p.calibration.json").read_text())
    ed = next(e for e in record["estimates"] if e["name"] == "rate_ed")
    assert ed["low"] < ed["value"] < ed["high"] and ed["method"] and ed["data"]
    assert {d["name"] for d in record["defaults"]} >= {"travel_limit_minutes", "unmet_need_weight"}
    assert len(record["draws"]) == 200
    res = runner.invoke(app, ["simulate", str(path), "--params", str(tmp_path / "p.toml"), "--weeks", "2",
                              "--replications", "3", "--workers", "1", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{"):])["parameter_sets"] == 200  # each replication its own draw
    res = runner.invoke(app, ["validate", str(path), "--holdout-weeks", "4", "--replications", "20", "--workers", "1",
                              "--json", str(tmp_path / "v.json"), "--html", str(tmp_path / "v.html")])
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "v.json").read_text())
    assert set(out["coverage"]) == {"50", "80", "95"} and "waitlist" in out["by_metric"]
    assert "<svg" in (tmp_path / "v.html").read_text()


@pytest.mark.skipif(not (SHARED / "synthea_ca50" / "csv").is_dir(), reason="../shared/data not present")
def test_sparse_real_data_says_plainly_what_it_could_not_estimate(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ingest(ws, SHARED / "synthea_ca50" / "csv")
    cal = calibrate(ws)
    assert cal.skipped, "50 Synthea patients cannot support every model"
    assert any(e.supported for e in cal.estimates)
    why = dict(cal.skipped)
    assert any("events" in reason for reason in why.values())
    ws.close()

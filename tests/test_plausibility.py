"""The default synthetic county against published figures (shared/reference/plausibility.md).

Each headline figure is computed with SQL over the county's extract and must meet its published
range: for counted figures, its exact 95% interval must reach the range (so a small county is not
failed for noise, and a large one is held close). Two sizes and two seeds, 24 months each.
"""

from pathlib import Path

import pytest

from caretwin.synth import CountyParams, write_extract
from caretwin.synth.plausibility import MEASURES, NOT_REPRESENTED, plausibility, report

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "plausibility.md"


@pytest.fixture(scope="module", params=[(20_000, 1), (20_000, 2), (50_000, 1), (50_000, 2)], ids=lambda p: f"{p[0]}-s{p[1]}")
def checks(request, tmp_path_factory):
    members, seed = request.param
    out = tmp_path_factory.mktemp(f"county-{members}-{seed}") / "extract"
    write_extract(CountyParams(members=members, months=24, seed=seed), out, fmt="parquet")
    return plausibility(out)


def test_every_headline_figure_meets_its_published_range(checks):
    out = [c for c in checks if not c.ok]
    assert not out, "\n" + report(checks)


def test_every_figure_is_computed_from_enough_data(checks):
    # a figure with no data behind it (no SNF beds, no HCBS user) would pass by saying nothing
    for c in checks:
        assert c.value is not None and c.denominator > 0, c.measure.name


def test_every_row_of_the_reference_is_measured_or_listed_as_not_represented():
    rows = [line for line in REFERENCE.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| measure")]
    assert len(rows) == 21
    covered = len(MEASURES) + len(NOT_REPRESENTED)
    # 21 rows: the two mortality figures, three ED figures and both SNF-and-nursing-facility occupancies are
    # measured separately, and "Medicaid HCBS users" and the HCBS-hospitalisation effect are covered by
    # the engine's parameters and the paired scenario tests
    assert covered >= 20
    assert all(m.source and m.published for m in MEASURES)


def test_the_report_says_which_figures_are_out(tmp_path):
    out = tmp_path / "small"
    write_extract(CountyParams(members=2_000, months=3, seed=3), out)
    text = report(plausibility(out))
    assert "not represented by the model" in text
    assert text.count(" ok ") + text.count(" OUT ") == len(MEASURES)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from caretwin.ingest import ingest
    from caretwin.workspace import Workspace

    root = tmp_path_factory.mktemp("forecast")
    ws = Workspace.create(root / "ws")
    ingest(ws, write_extract(CountyParams(members=20_000, months=12, seed=1), root / "x").path)
    yield ws
    ws.close()


def test_no_bed_line_of_the_overview_is_more_than_full(workspace):
    # beds hold at most their occupants: SNF (post-acute), nursing-facility residents, stabilisation, hospital
    from caretwin.web.overview import BED_LINES, overview

    for snap in overview(workspace, person_level=True):
        shown = [(r.region_id, line, r.occupancy[line]) for r in snap.regions for line in BED_LINES
                 if r.occupancy.get(line) is not None]
        assert {line for _, line, _ in shown} >= {"snf", "nursing_facility"}
        assert all(v <= 1.0 for _, _, v in shown), shown


def test_a_forecast_starts_where_the_data_end(workspace):
    # no phantom queue: the first forecast week's delayed-discharge days (median of 8 replications, seed 1)
    # lie within the range of the data's last 13 weeks, and discharges without support stay at their usual level
    import numpy as np

    from caretwin.simulate import run_replications
    from caretwin.simulate.initial import data_end, from_workspace

    end = data_end(workspace)
    weekly = [n for (n,) in workspace.con.execute("""
        WITH d AS (SELECT unnest(generate_series($end - 90, $end, INTERVAL 1 DAY))::DATE AS day)
        SELECT count(e.encounter_id) FROM d LEFT JOIN encounters e ON e.encounter_class = 'inpatient'
          AND e.ready_for_discharge_date <= d.day AND e.discharge_date > d.day
        GROUP BY floor((d.day - ($end - 90)) / 7) ORDER BY 1""", {"end": end}).fetchall()]
    unsupported = [n for (n,) in workspace.con.execute("""
        SELECT count(*) FROM encounters WHERE encounter_class = 'inpatient' AND discharge_disposition = 'home_without_support'
          AND discharge_date > $end - 91 GROUP BY floor((discharge_date - ($end - 90)) / 7)""", {"end": end}).fetchall()]
    result = run_replications(from_workspace(workspace), weeks=4, replications=8, seed=1, workers=1)
    week1 = float(np.median(result.weekly("delayed_discharge_days")[:, 0]))
    assert min(weekly) <= week1 <= max(weekly), (week1, weekly)
    assert np.median(result.weekly("discharges_without_support")[:, :2]) <= max(unsupported + [1])

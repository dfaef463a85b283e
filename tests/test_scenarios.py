"""Scenarios: files with located errors, runs paired with the baseline, comparisons, reports and pilots."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from caretwin import Workspace
from caretwin.cli import app
from caretwin.errors import CaretwinError, ValidationError
from caretwin.governance.suppression import suppress_breakdown
from caretwin.ingest import ingest
from caretwin.scenarios import compare, load_scenario, run_pilot, run_scenarios
from caretwin.scenarios.compare import KEYS, by_slot_name, mean_interval
from caretwin.scenarios.pilot import sample_size_per_arm
from caretwin.simulate.metrics import SLOTS

runner = CliRunner()
BASE = """
name: baseline
baseline: defaults
horizon_weeks: 16
replications: 12
seed: 3
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture(scope="module")
def county(tmp_path_factory, extract_csv) -> Workspace:
    ws = Workspace.create(tmp_path_factory.mktemp("scenarios") / "ws")
    ingest(ws, extract_csv)
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("files")
    write(folder, "baseline.yaml", BASE)
    write(folder, "same.yaml", "name: same\nextends: baseline.yaml\n")
    write(folder, "late.yaml", """
        name: late capacity
        extends: baseline.yaml
        interventions:
          - add_capacity: {service_line: hcbs, region: R01, fte: 15, start_week: 10, cost_per_fte_week: 100}
          - add_capacity: {service_line: snf, region: R02, beds: 3, start_week: 10, cost_per_bed_day: 50}
          - care_coordination: {share: 50%, acute_change: -30%, cost_per_member_month: 90, start_week: 10}
        """)
    write(folder, "capacity.yaml", """
        name: more staff
        extends: baseline.yaml
        interventions:
          - add_capacity: {service_line: hcbs, region: R01, fte: 8}
          - add_capacity: {service_line: hcbs, region: R02, fte: 8}
          - add_capacity: {service_line: hcbs, region: R03, fte: 8}
          - add_capacity: {service_line: hcbs, region: R04, fte: 8}
        """)
    write(folder, "surge.yaml", """
        name: surge
        extends: baseline.yaml
        shocks:
          - referrals: {change: +80%, ramp_weeks: 4}
          - staff_loss: {share: 25%, start_week: 2}
        """)
    return folder


@pytest.fixture(scope="module")
def runs(county, files):
    """Five scenarios, one seed: every scenario's replication r shares the baseline's random numbers."""
    names = ["baseline", "same", "late", "capacity", "surge"]
    out = run_scenarios(county, [files / f"{n}.yaml" for n in names], workers=2)
    return dict(zip(names, out))


# ------------------------------------------------------------------------------------------ files
def test_mistakes_are_reported_by_file_line_and_field_with_the_allowed_values(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    bad = write(tmp_path, "bad.yaml", """
        name: surge
        extends: base.yaml
        shocks:
          - referrals: {service_line: hcbx, change: 15}
          - flood: {}
        interventions:
          - redeploy_staff: {from: R01, to: R02, fte: 3, colour: red}
        policies:
          waitlist_priority: random
        """)
    with pytest.raises(ValidationError) as err:
        load_scenario(bad)
    text = str(err.value)
    assert f"{bad}, line 4, field shocks.0.referrals.service_line: Input should be 'hcbs' or 'home_health'" in text
    assert "line 4, field shocks.0.referrals.change: 15 is ambiguous: write 15% or 0.15" in text
    assert "line 5, field shocks.1.flood: unknown shock; allowed: referrals, enrolment, seasonal_surge, staff_loss" in text
    assert "line 7, field interventions.0.redeploy_staff.colour: unknown field; allowed: start_week, end_week" in text
    assert "line 9, field policies.waitlist_priority: Input should be 'acuity_first' or 'first_come'" in text


def test_a_scenario_extends_another_adding_to_its_lists_and_replacing_its_values(tmp_path):
    write(tmp_path, "base.yaml", BASE + "shocks:\n  - referrals: {change: +10%}\n")
    child = write(tmp_path, "child.yaml", """
        name: child
        extends: base.yaml
        replications: 50
        shocks:
          - staff_loss: {fte: 2, regions: [R01]}
        """)
    sc = load_scenario(child).scenario
    assert (sc.name, sc.replications, sc.horizon_weeks) == ("child", 50, 16)
    assert [kind for _, kind, _, _ in sc.items()] == ["referrals", "staff_loss"]
    assert sc.items()[0][3].change == pytest.approx(0.10)
    write(tmp_path, "loop.yaml", "name: loop\nextends: loop2.yaml\n")
    write(tmp_path, "loop2.yaml", "name: loop2\nextends: loop.yaml\n")
    with pytest.raises(ValidationError, match="cycle"):
        load_scenario(tmp_path / "loop.yaml")


def test_unknown_regions_are_located_and_nothing_runs(county, tmp_path):
    write(tmp_path, "base.yaml", BASE)
    bad = write(tmp_path, "bad.yaml", "name: bad\nextends: base.yaml\ninterventions:\n"
                                      "  - redeploy_staff: {from: R01, to: R99, fte: 2}\n")
    before = county.con.execute("SELECT count(*) FROM _runs").fetchone()[0] if _has(county, "_runs") else 0
    res = runner.invoke(app, ["scenario", "run", str(county.path), str(tmp_path / "base.yaml"), str(bad)])
    assert res.exit_code == 1
    assert f"{bad}, line 4, field interventions.0.redeploy_staff.to: unknown region 'R99'; regions: R01, R02" in res.output
    after = county.con.execute("SELECT count(*) FROM _runs").fetchone()[0] if _has(county, "_runs") else 0
    assert after == before  # the good file did not run either


def _has(ws, table):
    return ws.con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()[0]


# ------------------------------------------------------------------------------ paired comparisons
def test_a_scenario_identical_to_the_baseline_shows_zero_difference_in_every_metric(county, runs):
    b, s = runs["baseline"].result, runs["same"].result
    assert np.array_equal(b.metrics, s.metrics)
    c = compare(county, [b.run_id, s.run_id])
    for d in c.scenarios[0].differences:
        assert (d.difference.mean, d.difference.low, d.difference.high) == (0.0, 0.0, 0.0), d.key
    assert all(f.difference.mean == 0 for f in c.scenarios[0].failure)


def test_an_intervention_from_week_10_changes_nothing_before_week_10(runs):
    b, late = runs["baseline"].result.metrics, runs["late"].result.metrics
    assert np.array_equal(b[:, :9], late[:, :9])  # weeks 1-9
    assert not np.array_equal(b[:, 9], late[:, 9])


def test_interventions_cost_what_the_file_says(runs):
    late = runs["late"].result
    cost = late.weekly("intervention_cost")  # [rep, week]
    assert np.all(cost[:, :9] == 0)
    # capacity held from week 10: 15 staff x 100 a week, and 3 beds x 50 a day; coordination on top
    fixed = 15 * 100 + 3 * 50 * 7
    assert np.all(cost[:, 9:] > fixed)
    coordination = cost[:, 9:] - fixed
    per_member_week = 90 * 7 / 30.44
    members = coordination / per_member_week
    assert np.allclose(members, np.round(members), atol=1e-6)  # whole members enrolled, each costed a week


def test_more_capacity_means_fewer_people_waiting(county, runs):
    c = compare(county, [runs["baseline"].run_id, runs["capacity"].run_id])
    waiting = c.scenarios[0].difference("waitlist_hcbs")
    assert waiting.difference.high < 0, waiting
    assert c.scenarios[0].difference("starts_hcbs").difference.low > 0


def test_a_surge_without_response_raises_the_risk_of_service_failure(county, runs):
    c = compare(county, [runs["baseline"].run_id, runs["surge"].run_id])
    s = c.scenarios[0]
    base = {f.region_id: f.scenario.mean for f in c.baseline_failure}
    assert s.any_region_fails.mean > max(base.values())
    assert sum(f.scenario.mean for f in s.failure) > sum(base.values())
    assert s.difference("waitlist_hcbs").difference.low > 0
    # the ranking puts the most likely failure first
    assert [f.scenario.mean for f in s.failure] == sorted((f.scenario.mean for f in s.failure), reverse=True)


def test_the_comparison_says_when_there_are_too_few_replications(county, runs):
    c = compare(county, [runs["baseline"].run_id, runs["late"].run_id])
    for d in c.scenarios[0].differences:
        if d.relative_half_width > 0.05 and math.isfinite(d.relative_half_width):
            assert d.replications_suggested > c.replications
            # half-widths shrink as 1/sqrt(n): the suggestion reaches the target
            assert d.relative_half_width * math.sqrt(c.replications / d.replications_suggested) <= 0.05 + 1e-9
        else:
            assert d.replications_suggested is None


def test_runs_that_cannot_be_paired_are_refused(county, files, runs):
    other = run_scenarios(county, [files / "baseline.yaml"], replications=5, workers=1)[0]
    with pytest.raises(CaretwinError, match="differ in replications"):
        compare(county, [runs["baseline"].run_id, other.run_id])
    with pytest.raises(CaretwinError, match="no run 'run-nope'"):
        compare(county, [runs["baseline"].run_id, "run-nope"])


def test_results_do_not_depend_on_the_number_of_workers(county, files, runs):
    serial = run_scenarios(county, [files / "late.yaml"], workers=1)[0].result.metrics
    assert np.array_equal(serial, runs["late"].result.metrics)


# ------------------------------------------------------------------------------- who bears the gap
def test_stored_runs_are_read_by_metric_name_so_a_new_metric_does_not_orphan_them():
    today = [f"{m.name}/{line}" for m, line in SLOTS.rows]
    older = [s for s in today if s != "ed_visits/all"][::-1]  # stored in another order, before ED visits existed
    stored = np.array([[today.index(s) for s in older]], np.float32)  # each value is today's slot number
    read = by_slot_name(stored, older)
    assert np.isnan(read[0, SLOTS("ed_visits")])  # unknown, not zero
    known = [k for k in range(len(SLOTS)) if k != SLOTS("ed_visits")]
    assert np.array_equal(read[0, known], np.array(known, np.float32))


def test_small_cells_are_hidden_and_cannot_be_recovered_from_the_total():
    # one small cell alone would be total minus the others: a second cell is hidden with it
    assert suppress_breakdown(np.array([120.0, 7.0, 300.0, 45.0])).tolist() == [False, True, False, True]
    # zero may show; two small cells already protect each other
    assert suppress_breakdown(np.array([0.0, 3.0, 9.0, 500.0])).tolist() == [False, True, True, False]
    # a cell is hidden when any count describing it is small (people, or events among them)
    assert suppress_breakdown(np.array([50.0, 60.0, 70.0]), np.array([4.0, 30.0, 0.0])).tolist() == [True, True, False]
    assert not suppress_breakdown(np.array([11.0, 0.0, 10.6])).tolist()[0]


def test_no_group_outcome_shown_rests_on_1_to_10_people_or_events(county, runs):
    c = compare(county, [runs["baseline"].run_id, runs["surge"].run_id])
    gap = c.scenarios[0].gap
    assert any(g.difference is None for g in gap), "the small county has small groups to hide"
    kinds = {(g.group_kind, g.outcome) for g in gap}
    for kind, outcome in kinds:
        rows = [g for g in gap if (g.group_kind, g.outcome) == (kind, outcome)]
        hidden = [g for g in rows if g.difference is None]
        assert len(hidden) != 1, f"{kind}/{outcome}: a lone hidden cell is derivable from the total"
        for g in rows:
            if g.members is not None:
                assert g.members == 0 or round(g.members) > 10


# ------------------------------------------------------------------------------------------ report
def test_compare_json_gives_each_metric_its_paired_difference_and_interval(county, runs):
    res = runner.invoke(app, ["scenario", "compare", str(county.path), runs["baseline"].run_id, runs["late"].run_id,
                              "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    diffs = {d["key"]: d for d in data["scenarios"][0]["differences"]}
    assert set(diffs) == {k.name for k in KEYS}
    ed = diffs["ed_visits"]["difference"]
    assert ed["low"] <= ed["mean"] <= ed["high"]
    assert data["scenarios"][0]["value"]["intervention_cost"]["mean"] > 0


def test_the_report_is_one_self_contained_file_whose_claims_carry_intervals(county, runs, tmp_path):
    ids = [runs["baseline"].run_id, runs["surge"].run_id, runs["capacity"].run_id]
    res = runner.invoke(app, ["report", str(county.path), *ids, "--html", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "r.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html and "<link" not in html
    summary = html.split("id='summary'>", 1)[1].split("</section>", 1)[0]
    points = summary.split("<li>")[1:]
    assert len(points) >= 2 * 8
    assert all("95% interval" in p for p in points)
    assert html.count("<svg") == 4 + 3  # four fan charts, a failure tile grid per run
    assert "suppressed" in html


def test_the_report_renders_offline_in_headless_chromium(county, runs, tmp_path):
    from caretwin.reports.board import browser_render, find_browser, report

    if find_browser() is None:
        pytest.skip("no Chromium here; .ci/run installs it so CI runs this test")
    html = report(county, [runs["baseline"].run_id, runs["surge"].run_id], tmp_path / "r.html", tmp_path / "r.pdf")
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    png = tmp_path / "r.png"
    browser_render(html, png=png, size=(1280, 1800))
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 50_000  # a page of text and charts, not a blank or error page


# ------------------------------------------------------------------------------------------- pilot
def test_sample_size_matches_the_textbook_two_proportion_formula():
    # 50% vs 40%, two-sided 5%, 80% power: 388 per arm (Fleiss, Statistical Methods for Rates and Proportions)
    assert sample_size_per_arm(0.5, 0.4) == 388
    assert sample_size_per_arm(0.3, 0.3) is None


def test_a_virtual_pilot_recovers_a_real_effect_and_finds_none_where_there_is_none(county, tmp_path):
    pilot = """
        name: pilot
        baseline: defaults
        horizon_weeks: 16
        replications: 16
        seed: 5
        cohort: {tier_min: 2, size: 800}
        intervention: {acute_change: %s, cost_per_member_month: 100}
        outcome: any_acute
        """
    real = run_pilot(county, write(tmp_path, "real.yaml", pilot % "-40%"), workers=2)
    assert real.effect.high < 0 and real.relative_risk < 0.9
    assert real.needed_per_arm is not None and real.needed_per_arm > 0
    assert real.intervention_cost > 0
    null = run_pilot(county, write(tmp_path, "null.yaml", pilot % "0%"), workers=2)
    # 95% interval, seed 5: no effect built in, none found
    assert null.effect.low < 0 < null.effect.high
    assert mean_interval(np.array([1.0, 1.0])).half_width == 0


def test_a_scenario_cannot_read_files_outside_its_folder_or_expand_aliases(tmp_path):
    # `extends:` names a scenario beside the file, never another path (the server keeps its scenarios in
    # WORKSPACE/scenarios/ and its secret key one folder up); the refusal says nothing of the target
    (tmp_path / "secret.yaml").write_text("name: secret\nkey: hidden-value\n")
    folder = tmp_path / "scenarios"
    folder.mkdir()
    for target in ("../secret.yaml", str(tmp_path / "secret.yaml"), "/etc/passwd", "../missing.yaml"):
        f = write(folder, "nosy.yaml", f"name: nosy\nextends: {target}\n")
        with pytest.raises(ValidationError) as exc:
            load_scenario(f)
        assert "expected the name of a .yaml scenario file in the same folder" in str(exc.value)
        assert "hidden-value" not in str(exc.value) and "key" not in str(exc.value)
    # a "billion laughs" file: nine levels of nine aliases would build 9^9 nodes; it is refused at once
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    bomb = write(folder, "bomb.yaml", "name: bomb\n" + "\n".join(lines) + "\n")
    with pytest.raises(ValidationError, match=r"line 3: YAML aliases \(\*a0\) are not allowed"):
        load_scenario(bomb)


# ------------------------------------------------------------------------------ actions that must do something
def test_closing_a_snf_by_its_id_removes_its_beds_and_says_so(county, tmp_path):
    from caretwin.scenarios import check_scenarios

    pid, region, beds = county.con.execute("""SELECT provider_id, region_id, capacity FROM providers
        WHERE service_line = 'snf' ORDER BY capacity DESC, provider_id LIMIT 1""").fetchone()
    write(tmp_path, "base.yaml", BASE.replace("replications: 12", "replications: 2"))
    close = write(tmp_path, "close.yaml", f"name: close\nextends: base.yaml\nshocks:\n"
                                          f"  - provider_closure: {{providers: [{pid}], start_week: 3}}\n")
    ((_, plan),) = check_scenarios(county, [close])
    assert plan.changes == [f"week 3: {pid} (snf in {region}, {beds:.0f} beds) closes"]
    base, shut = run_scenarios(county, [tmp_path / "base.yaml", close])
    r = [str(x) for x in county.con.execute("SELECT region_id FROM regions ORDER BY 1").fetchall()].index(f"('{region}',)")
    before, after = base.result.weekly("beds", "snf", region=r), shut.result.weekly("beds", "snf", region=r)
    assert np.array_equal(before[:, :2], after[:, :2])  # nothing changes before week 3
    assert (after[:, 2:] == before[:, 2:] - beds).all()
    res = runner.invoke(app, ["scenario", "check", str(county.path), str(close)])
    assert res.exit_code == 0 and f"{pid} (snf in {region}" in res.output


def test_actions_that_would_change_nothing_are_refused_where_they_are_written(county, tmp_path):
    from caretwin.scenarios import check_scenarios

    hospital = county.con.execute("SELECT provider_id FROM providers WHERE service_line = 'hospital' LIMIT 1").fetchone()[0]
    beds = county.con.execute("SELECT sum(capacity) FROM providers WHERE service_line = 'snf' AND region_id = 'R01'"
                              ).fetchone()[0]
    write(tmp_path, "base.yaml", BASE)
    bad = write(tmp_path, "bad.yaml", f"""
        name: bad
        extends: base.yaml
        shocks:
          - provider_closure: {{providers: [{hospital}]}}
        interventions:
          - add_capacity: {{service_line: snf, region: R01, beds: -{int(beds) + 5}}}
          - redeploy_staff: {{from: R01, to: R02, fte: 100000}}
        """)
    with pytest.raises(ValidationError) as err:
        check_scenarios(county, [bad])
    found = {(p.row, p.reason) for p in err.value.problems}
    assert (4, f"provider {hospital} is hospital: closing it changes nothing the engine models (it closes hcbs, "
               "home_health, snf, nursing_facility, crisis_stabilization, supportive_housing providers)") in found
    assert (6, f"R01 has {int(beds)} snf beds; cannot remove {int(beds) + 5}") in found
    assert any(row == 7 and reason.startswith("R01 has ") and reason.endswith("cannot move 100000")
               for row, reason in found)


def test_cutting_beds_admits_no_one_until_the_occupants_have_left():
    # a node cut from 3 beds to 2 while all 3 are taken: a newcomer starts only when two have left (not one)
    from caretwin.simulate.nodes import Nodes

    node = Nodes(np.array([3]), np.array([10.0]))
    node.advance(np.zeros(3, np.int64), np.arange(3), np.array([0.1, 0.2, 0.3]), np.array([5.0, 6.0, 7.0]), 1.0)
    node.set_capacity(0, 2)
    kind, _, member, time, _ = node.advance(np.zeros(1, np.int64), np.array([9]), np.array([1.5]), np.array([1.0]), 8.0)
    starts = time[(kind == 0) & (member == 9)]
    assert len(starts) == 1 and starts[0] == pytest.approx(6.2)  # after the second occupant left at 6.2


def test_new_members_keep_arriving_and_an_enrolment_shock_changes_only_the_inflow(county, tmp_path):
    from caretwin.scenarios import check_scenarios

    write(tmp_path, "base.yaml", BASE.replace("replications: 12", "replications: 4"))
    cut = write(tmp_path, "cut.yaml", "name: redetermination\nextends: base.yaml\nshocks:\n"
                                      "  - enrolment: {change: -50%, start_week: 5}\n")
    ((_, plan),) = check_scenarios(county, [cut])
    assert plan.changes == ["week 5: new enrolment in all regions -50%"]
    base, shock = run_scenarios(county, [tmp_path / "base.yaml", cut])
    members = base.result.weekly("members")
    joined, joined_shock = base.result.weekly("enrolments"), shock.result.weekly("enrolments")
    # without a shock the population holds: exits are replaced by joiners (within 3% over 16 weeks)
    assert (joined.sum(axis=1) > 0).all()
    assert np.abs(members[:, -1] / members[:, 0] - 1).max() < 0.03, members[:, [0, -1]]
    # the same draws until week 5, then about half the joiners (within a third of the halving, 4 replications)
    assert np.array_equal(joined[:, :4], joined_shock[:, :4])
    ratio = joined_shock[:, 4:].sum() / joined[:, 4:].sum()
    assert 0.35 < ratio < 0.65, ratio
    assert (shock.result.weekly("members")[:, -1] < members[:, -1]).all()
    too_much = write(tmp_path, "boom.yaml", "name: boom\nextends: base.yaml\nshocks:\n"
                                            "  - enrolment: {change: +80%}\n  - enrolment: {change: +80%}\n")
    with pytest.raises(ValidationError) as err:
        check_scenarios(county, [too_much])
    assert any(p.row == 5 and "more than 2x" in p.reason for p in err.value.problems)


def test_a_comparison_on_defaults_says_so_at_the_top_with_what_each_scenario_assumes(county, runs, tmp_path):
    # the fixture's runs use `baseline: defaults`: nothing was estimated, so every headline rests on defaults
    ids = [runs["baseline"].run_id, runs["late"].run_id]
    c = compare(county, ids)
    assert c.evidence["basis"] == "defaults" and not c.evidence["estimated"]
    assert "people waiting for HCBS" in " ".join(c.resting_on_defaults) and len(c.resting_on_defaults) == 7
    assert any("care coordination" in a and "assumed: acute care -30%" in a for a in c.scenarios[0].assumptions)
    res = runner.invoke(app, ["report", str(county.path), *ids, "--html", str(tmp_path / "r.html")])
    html = (tmp_path / "r.html").read_text()
    top = html.split("id='summary'>", 1)[0]  # before the executive summary
    assert "role='alert'" in top and "rest mainly on default parameters" in top
    assert "assumes its own effect size" in top and "none was estimated from this workspace" in top
    res = runner.invoke(app, ["scenario", "compare", str(county.path), *ids])
    assert res.exit_code == 0 and res.output.startswith("WARNING: These results rest mainly on default parameters")
    res = runner.invoke(app, ["runs", str(county.path)])
    assert "parameters: defaults only" in res.output


def test_differences_and_axes_carry_no_false_precision():
    from caretwin.reports.board import _sentence, fmt_change
    from caretwin.reports.charts import _tick, _ticks
    from caretwin.scenarios.compare import Difference, Interval

    tiny = Interval(0.00003, 0.00001, 0.00005)  # a share up by 0.003 points, interval 0.001 to 0.005
    assert fmt_change(tiny.mean, tiny, "share") == "+0.0030 pts"
    d = Difference("missed_visit_rate_hcbs", "share of HCBS visits missed", "share", "missed visits", -1,
                   Interval(0.04, 0.039, 0.041), Interval(0.04003, 0.03903, 0.04103), tiny, 0.01, None, None)
    text = _sentence(d)
    assert text.startswith("Share of HCBS visits missed: practically unchanged") and "0.00%" not in text
    assert "(worse)" not in text
    top, step = _ticks(0.025)
    labels = [_tick(step * i, True, step) for i in range(round(top / step) + 1)]
    assert labels == ["0.0%", "0.5%", "1.0%", "1.5%", "2.0%", "2.5%"] and len(set(labels)) == len(labels)
    from caretwin.reports.charts import tile_grid

    svg = tile_grid("hours booked", [("R01", None, "rural"), ("R02", 1.12, "urban")], missing="no HCBS")
    assert "no HCBS" in svg and "112%" in svg and ">0%<" not in svg  # a region with nothing to measure is not 0%

"""The quality and lineage commands, as a pipeline would call them."""

import json

from typer.testing import CliRunner

from caretwin.cli import app
from caretwin.synth import CountyParams, write_extract

runner = CliRunner()


def test_ingest_quarantines_then_quality_fails_on_fatal_and_writes_both_reports(tmp_path):
    extract = write_extract(CountyParams(members=800, regions=3, months=3, seed=5), tmp_path / "extract", defects=0.01)
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["init", str(ws)]).exit_code == 0
    out = runner.invoke(app, ["ingest", str(ws), str(extract.path)])
    assert out.exit_code == 0, out.output
    assert "quarantined" in out.output
    refused = runner.invoke(app, ["ingest", str(ws), str(extract.path), "--on-error", "reject"])
    assert refused.exit_code == 1 and "workspace is unchanged" in refused.output
    q = runner.invoke(app, ["quality", str(ws), "--json", str(tmp_path / "q.json"), "--html", str(tmp_path / "q.html"),
                            "--fail-on", "fatal"])
    assert q.exit_code == 1, q.output  # the quarantined rows broke fatal rules
    assert "fatal:" in q.output
    report = json.loads((tmp_path / "q.json").read_text())
    assert report["summary"]["fail"] >= 1
    assert (tmp_path / "q.html").read_text().startswith("<!doctype html>")
    lineage = runner.invoke(app, ["lineage", str(ws), "visits", "--json"])
    steps = json.loads(lineage.output)
    assert steps[0]["rows_quarantined"] >= 1 and steps[0]["inputs"][0]["file"].endswith("visits.csv")


def test_quality_passes_on_a_clean_extract_and_lineage_names_unknown_tables(tmp_path):
    extract = write_extract(CountyParams(members=800, regions=3, months=3, seed=5), tmp_path / "extract")
    ws = tmp_path / "ws"
    runner.invoke(app, ["init", str(ws)])
    runner.invoke(app, ["ingest", str(ws), str(extract.path)])
    assert runner.invoke(app, ["quality", str(ws), "--fail-on", "fatal"]).exit_code == 0
    bad = runner.invoke(app, ["lineage", str(ws), "vistis"])
    assert bad.exit_code != 0 and "unknown table 'vistis'" in bad.output

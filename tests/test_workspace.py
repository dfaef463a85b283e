"""A workspace is a folder: DuckDB database, config, and a private pseudonymisation key."""

import json
import stat

import pytest
from typer.testing import CliRunner

from caretwin import CaretwinError, Workspace
from caretwin.cli import app
from caretwin.model import SCHEMA_VERSION, TABLES


def test_create_makes_database_config_and_private_key(tmp_path):
    ws = Workspace.create(tmp_path / "county")
    assert (ws.path / "caretwin.duckdb").is_file()
    assert stat.S_IMODE((ws.path / "secret.key").stat().st_mode) == 0o600
    assert len(ws.key()) == 32
    assert ws.counts() == {t.name: 0 for t in TABLES}
    ws.close()
    again = Workspace.open(tmp_path / "county")
    assert again.config["workspace"]["schema_version"] == SCHEMA_VERSION
    again.close()


def test_each_workspace_has_its_own_key(tmp_path):
    a, b = Workspace.create(tmp_path / "a"), Workspace.create(tmp_path / "b")
    assert a.key() != b.key()


def test_create_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(CaretwinError, match="not an empty folder"):
        Workspace.create(tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep me"


def test_open_explains_what_is_missing(tmp_path):
    with pytest.raises(CaretwinError, match="not a caretwin workspace"):
        Workspace.open(tmp_path)


def test_open_refuses_an_incompatible_schema(tmp_path):
    ws = Workspace.create(tmp_path / "old")
    ws.close()
    cfg = tmp_path / "old" / "caretwin.toml"
    cfg.write_text(cfg.read_text().replace(f'schema_version = "{SCHEMA_VERSION}"', 'schema_version = "0.1.0"'))
    with pytest.raises(CaretwinError, match="schema version 0.1.0"):
        Workspace.open(tmp_path / "old")


def test_cli_init_then_status_json(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["init", str(tmp_path / "w")]).exit_code == 0
    result = runner.invoke(app, ["status", str(tmp_path / "w"), "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["tables"]["members"] == 0
    assert status["schema_version"] == SCHEMA_VERSION
    assert status["loads"] == []


def test_settings_come_from_the_workspace_config_and_environment(tmp_path, monkeypatch):
    ws = Workspace.create(tmp_path / "w")
    ws.close()
    cfg = tmp_path / "w" / "caretwin.toml"
    cfg.write_text(cfg.read_text().replace("[settings]", "[settings]\nerror_limit = 7"))
    assert Workspace.open(tmp_path / "w").settings["error_limit"] == 7
    monkeypatch.setenv("CARETWIN_ERROR_LIMIT", "3")
    assert Workspace.open(tmp_path / "w").settings["error_limit"] == 3


def test_the_demo_workspace_names_an_extract_that_exists_and_passes_fatal_checks(tmp_path):
    from pathlib import Path

    from caretwin.demo import build_demo
    from caretwin.quality import run_quality

    ws, report = build_demo(tmp_path / "demo", members=600, months=3)
    with ws:
        (load,) = ws.loads()
        assert Path(load["source"]).is_dir() and report.quarantined == {}
        assert run_quality(ws).failed(("fatal",)) == []

"""Every CLI command, option and setting is documented, and the README shows the two commands."""

from pathlib import Path

import typer.main

from caretwin.cli import app
from caretwin.settings import SETTINGS, render_markdown

ROOT = Path(__file__).parents[1]


def _commands(group, prefix=""):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, f"{prefix}{name} ")
        else:
            yield prefix + name, cmd


def test_every_cli_command_and_option_is_in_docs_cli():
    text = (ROOT / "docs" / "cli.md").read_text()
    for name, cmd in _commands(typer.main.get_command(app)):
        assert f"## caretwin {name}" in text, f"docs/cli.md lacks a section for `caretwin {name}`"
        section = text.split(f"## caretwin {name}", 1)[1].split("\n## ", 1)[0]
        for param in cmd.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in section, f"docs/cli.md: `caretwin {name}` does not document {opt}"
                else:
                    shown = (param.metavar or param.name.upper()).rstrip(".")
                    assert shown in section, f"docs/cli.md: `caretwin {name}` does not document {shown}"


def test_settings_docs_are_generated_from_the_code():
    text = (ROOT / "docs" / "settings.md").read_text()
    assert text == render_markdown(), "docs/settings.md is stale: run `make docs`"
    assert all(f"`{s.name}`" in text for s in SETTINGS)


def test_engine_parameter_docs_are_generated_from_the_modules():
    from caretwin.simulate.docs import render_markdown as parameters_markdown

    assert (ROOT / "docs" / "parameters.md").read_text() == parameters_markdown(), "docs/parameters.md is stale: run `make docs`"


def test_readme_shows_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_every_code_map_entry_and_quality_check_kind_is_documented():
    from caretwin.ingest import maps
    from caretwin.quality.checks import KINDS

    ingest_doc = (ROOT / "docs" / "ingest.md").read_text()
    for table in (maps.FHIR_ENCOUNTER_CLASS, maps.ENCOUNTER_TYPE, maps.SYNTHEA_ENCOUNTER_CLASS,
                  maps.DISCHARGE_DISPOSITION, maps.PAYER_PROGRAM, maps.HSDS_TAXONOMY):
        for code, value in table.items():
            assert f"| `{code}` | `{value or '(none)'}` |" in ingest_doc, f"docs/ingest.md lacks {code} -> {value}"
    quality_doc = (ROOT / "docs" / "quality.md").read_text()
    for kind, (severity, threshold, _) in KINDS.items():
        assert f"| `{kind}` | {severity} | {threshold:g}% |" in quality_doc, f"docs/quality.md lacks {kind}"


def test_every_api_route_is_in_docs_api(tmp_path):
    from caretwin import Workspace
    from caretwin.api.app import create_app

    Workspace.create(tmp_path / "ws").close()
    text = (ROOT / "docs" / "api.md").read_text()
    for route in create_app(tmp_path / "ws").routes:
        if route.path.startswith("/api/"):
            for method in route.methods:
                assert f"`{method} {route.path}" in text, f"docs/api.md lacks {method} {route.path}"


def test_every_engine_parameter_has_a_source_in_docs_parameters():
    # every row of every parameter table names where its default comes from (a study, a published
    # figure, or "assumption: ..." said as such), and every declared parameter has a row
    from caretwin.simulate import declared_params

    rows = [line.split(" | ") for line in (ROOT / "docs" / "parameters.md").read_text().splitlines()
            if line.startswith("| `")]
    named = {row[0].strip("| `"): row[-1].rstrip(" |") for row in rows}
    for name in declared_params():
        assert name in named, f"docs/parameters.md has no row for {name}"
        assert len(named[name]) > 10, f"docs/parameters.md: {name} has no source"

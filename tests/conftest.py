"""Shared fixtures: small synthetic extracts (generated once per session) and fresh workspaces."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from caretwin import Workspace
from caretwin.synth import CountyParams, write_extract

SMALL = CountyParams(members=3000, regions=5, months=6, seed=11)


@pytest.fixture(scope="session")
def extract_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_extract(SMALL, tmp_path_factory.mktemp("csv") / "extract").path


@pytest.fixture(scope="session")
def extract_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_extract(SMALL, tmp_path_factory.mktemp("pq") / "extract", fmt="parquet").path


@pytest.fixture()
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture()
def editable_extract(extract_csv: Path, tmp_path: Path) -> Path:
    """A private copy of the CSV extract that a test may corrupt."""
    return Path(shutil.copytree(extract_csv, tmp_path / "extract"))

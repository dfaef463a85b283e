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


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh, empty governance database: a SQLite file, and a throw-away PostgreSQL database when
    CARETWIN_TEST_DATABASE_URL names a server (./.ci/postgres starts one and prints the URL; CI sets
    CARETWIN_REQUIRE_POSTGRES so these runs can never be skipped there)."""
    import os
    import uuid

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'governance.sqlite'}"
        return
    admin = os.environ.get("CARETWIN_TEST_DATABASE_URL")
    if not admin:
        if os.environ.get("CARETWIN_REQUIRE_POSTGRES"):
            pytest.fail("CARETWIN_REQUIRE_POSTGRES is set but CARETWIN_TEST_DATABASE_URL is not")
        pytest.skip("no PostgreSQL: set CARETWIN_TEST_DATABASE_URL (./.ci/postgres starts one and prints it)")
    import sqlalchemy as sa

    from caretwin.governance import store

    name = f"caretwin_test_{uuid.uuid4().hex[:12]}"
    server = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    yield url
    if engine := store._engines.pop(url, None):
        engine.dispose()
    with server.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    server.dispose()


GOVERNED_PASSWORD = "a long enough passphrase"


@pytest.fixture(scope="session")
def governed_workspace(tmp_path_factory: pytest.TempPathFactory, extract_csv: Path):
    """Makes workspaces for the server's tests: the small county, an approved risk model that has put flags in
    the review queue, a baseline and a surge scenario, and one user per role (named after it, with the
    password GOVERNED_PASSWORD)."""
    return lambda **kw: _governed(tmp_path_factory.mktemp("governed") / "ws", extract_csv, **kw)


def _governed(root: Path, extract: Path, *, weeks: int = 4, replications: int = 3) -> Path:
    from caretwin.governance.policy import ROLES
    from caretwin.governance.store import engine_for
    from caretwin.governance.users import add_user
    from caretwin.ingest import ingest
    from caretwin.risk.registry import approve, register
    from caretwin.risk.review import score
    from caretwin.risk.train import fit_outcome

    with Workspace.create(root) as ws:
        ingest(ws, extract)
        f = fit_outcome(ws, "ed_90d", lookback_days=60, n_boot=10)
        card = register(ws, f.model, f.card, by="analyst")
        approve(ws, card.name, card.version, ["care_management"], by="medical director")
        score(ws, card.name)
    (root / "scenarios").mkdir()
    (root / "scenarios" / "baseline.yaml").write_text(
        f"name: baseline\nbaseline: defaults\nhorizon_weeks: {weeks}\nreplications: {replications}\nseed: 1\n")
    (root / "scenarios" / "surge.yaml").write_text(
        "name: surge\nextends: baseline.yaml\nshocks:\n  - referrals: {service_line: hcbs, regions: all, "
        "change: +30%, ramp_weeks: 2}\n")
    for role in ROLES:
        add_user(engine_for(root), role, role, GOVERNED_PASSWORD)
    return root

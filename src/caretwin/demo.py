"""The demo: a synthetic county loaded into a fresh workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

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

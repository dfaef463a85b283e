"""Ingest: adapters that map source data into the canonical model and load it into a workspace."""

from __future__ import annotations

from pathlib import Path

from caretwin.errors import CaretwinError
from caretwin.ingest.canonical import LoadReport, ingest_canonical
from caretwin.workspace import Workspace

FORMATS = ("auto", "canonical")


def ingest(ws: Workspace, source: str | Path, *, format: str = "auto", error_limit: int | None = None,
           on_error: str = "quarantine") -> LoadReport:
    """Load `source` into the workspace, choosing the adapter from `format` ("auto" detects it)."""
    if format not in FORMATS:
        raise CaretwinError(f"unknown format {format!r}; choose one of: {', '.join(FORMATS)}")
    return ingest_canonical(ws, source, error_limit=error_limit, on_error=on_error)


__all__ = ["FORMATS", "LoadReport", "ingest", "ingest_canonical"]

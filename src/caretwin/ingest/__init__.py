"""Ingest: adapters that map source data into the canonical model and load it into a workspace."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from caretwin.errors import CaretwinError
from caretwin.files import check_expansion
from caretwin.governance.audit import Actor
from caretwin.ingest.canonical import LoadReport, ingest_canonical, sha256_of
from caretwin.ingest.enrich import enrich
from caretwin.ingest.maps import CodeMaps
from caretwin.ingest.regions import RegionResolver
from caretwin.ingest.staging import Staging
from caretwin.workspace import Workspace

FORMATS = ("auto", "canonical", "fhir", "synthea", "hsds")


def detect_format(source: Path) -> str:
    """Which adapter reads `source`: by its files, never by guessing from content deep inside."""
    from caretwin.ingest.hsds import is_hsds
    from caretwin.ingest.synthea import is_synthea

    if not source.exists():
        raise CaretwinError(f"{source}: no such file or folder")
    if is_synthea(source):
        return "synthea"
    if is_hsds(source):
        return "hsds"
    names = [p.name.lower() for p in (source.rglob("*") if source.is_dir() else [source]) if p.is_file()]
    if any(n.endswith((".ndjson", ".ndjson.gz", ".jsonl")) for n in names):
        return "fhir"
    if any(n.endswith(".json") and n not in ("manifest.json",) for n in names) and not any(
            n.endswith((".csv", ".csv.gz", ".parquet")) for n in names):
        return "fhir"
    return "canonical"


def check_source(src: Path, *, follow_links: bool = False) -> None:
    """Refuse what should not be read: symbolic links (unless asked) and gzip files that expand past reason."""
    if not src.exists():
        raise CaretwinError(f"{src}: no such file or folder")
    paths = [src, *src.rglob("*")] if src.is_dir() else [src]
    links = [p for p in paths if p.is_symlink()]
    if links and not follow_links:
        raise CaretwinError(f"{links[0]}: a symbolic link ({len(links)} in the source); refused, since a link can "
                            "point anywhere: copy the files in, or follow links on purpose (--follow-links)")
    for p in paths:
        if p.is_file():
            check_expansion(p)


def ingest(ws: Workspace, source: str | Path, *, format: str = "auto", error_limit: int | None = None,
           on_error: str = "quarantine", regions: str | Path | None = None, mapping: str | Path | None = None,
           strict: bool = False, follow_links: bool = False, actor: Actor | None = None) -> LoadReport:
    """Load `source` into the workspace, choosing the adapter from `format` ("auto" detects it).

    `regions` is a region definition file (see `caretwin.ingest.regions`), `mapping` a TOML
    file of code-map overrides (see `caretwin.ingest.maps`); `strict` validates every FHIR
    resource in full. A source holding symbolic links is refused unless `follow_links` (a link can point at
    any file the server may read), and a gzip file that expands past reason is refused. After the load, derived tables (`member_features`) are rebuilt. The load is recorded in
    the audit trail as done by `actor` (the operating-system user unless given).
    """
    if format not in FORMATS:
        raise CaretwinError(f"unknown format {format!r}; choose one of: {', '.join(FORMATS)}")
    src = Path(source)
    check_source(src, follow_links=follow_links)
    fmt = detect_format(src) if format == "auto" else format
    if fmt == "canonical":
        report = ingest_canonical(ws, src, error_limit=error_limit, on_error=on_error, actor=actor)
    else:
        report = _ingest_adapted(ws, src, fmt, error_limit=error_limit, on_error=on_error,
                                 resolver=RegionResolver(regions), maps=CodeMaps.load(mapping), strict=strict,
                                 actor=actor)
    enrich(ws, report.load_id, actor=actor)
    return report


def _ingest_adapted(ws: Workspace, src: Path, fmt: str, *, error_limit: int | None, on_error: str,
                    resolver: RegionResolver, maps: CodeMaps, strict: bool, actor: Actor | None) -> LoadReport:
    if not src.exists():
        raise CaretwinError(f"{src}: no such file or folder")
    folder = Path(tempfile.mkdtemp(prefix=".staging-", dir=ws.path))
    try:
        st = Staging(folder, ws.key(), merge={"claims": "claim_id"})
        details: dict[str, Any]
        labels: dict[str, str] = {}
        if fmt == "fhir":
            from caretwin.ingest.fhir import FhirReader, fhir_files

            reader = FhirReader(st, resolver, maps, strict=strict)
            used = fhir_files(src)
            if not used:
                raise CaretwinError(f"{src}: no FHIR files (.json bundles or .ndjson)")
            for path in used:
                reader.read_path(path)
            reader.finish(None)
            details = reader.details()
            labels = reader.labels
        elif fmt == "synthea":
            from caretwin.ingest.synthea import SyntheaReader

            if not src.is_dir():
                raise CaretwinError(f"{src}: a Synthea CSV export is a folder (patients.csv, encounters.csv, ...)")
            sreader = SyntheaReader(st, resolver, maps)
            used = sreader.read_folder(src)
            sreader.finish()
            details = sreader.details()
        else:
            from caretwin.ingest.hsds import read_hsds

            used, details = read_hsds(src, st, resolver, maps)
        staged = st.finish()
        details = {"adapter": fmt, "staged_rows": staged, **details}
        named = {str(p): labels.get(str(p), str(p)) for p in used}
        inputs = [{"file": named[str(p)], "sha256": sha256_of(p), "tables": sorted(st.sources.get(named[str(p)], ()))}
                  for p in used]
        derived = sorted({t for f, ts in st.sources.items() if f not in set(named.values()) for t in ts})
        if derived:
            inputs.append({"file": str(resolver.path or "(derived from addresses)"), "tables": derived})
        if not staged:
            raise CaretwinError(f"{src}: read as {fmt}, but nothing in it maps to a canonical table")
        return ingest_canonical(ws, folder, error_limit=error_limit, on_error=on_error, format=fmt, inputs=inputs,
                                pseudonymised=True, details=details, actor=actor)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["FORMATS", "LoadReport", "detect_format", "ingest", "ingest_canonical"]

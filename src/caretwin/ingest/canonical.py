"""Load a canonical extract (CSV or Parquet, one file per table) into a workspace.

Every file is staged, checked against the canonical model in a few vectorised
SQL scans, pseudonymised and upserted by primary key inside one transaction:
either the whole extract loads, or the workspace is left exactly as it was.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from caretwin._version import __version__
from caretwin.errors import CaretwinError, Problem, ValidationError
from caretwin.governance import privacy
from caretwin.model.schema import SCHEMA_VERSION, Column, Table, load_order, table
from caretwin.workspace import Workspace

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
IGNORED_FILES = {"manifest.json"}
WITHHELD = "value withheld: person identifier"


@dataclass
class SourceFile:
    path: Path
    table: Table
    kind: str  # "csv" or "parquet"

    @property
    def staging(self) -> str:
        return f"_stage_{self.table.name}"


@dataclass
class LoadReport:
    """What a load did, as recorded in the workspace's load history."""

    load_id: int
    source: str
    files: list[dict[str, object]]
    inserted: dict[str, int]
    replaced: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(int(f["rows"]) for f in self.files)  # type: ignore[call-overload]


def _table_for(path: Path) -> tuple[str, str] | None:
    name = path.name.lower()
    for kind, suffixes in (("csv", CSV_SUFFIXES), ("parquet", PARQUET_SUFFIXES)):
        for suffix in suffixes:
            if name.endswith(suffix):
                return name[: -len(suffix)], kind
    return None


def discover(source: Path) -> tuple[list[SourceFile], list[str]]:
    """The extract's files in load order (referenced tables first), and warnings about other files."""
    if not source.exists():
        raise CaretwinError(f"{source}: no such file or folder")
    paths = sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() else [source]
    found: dict[str, SourceFile] = {}
    warnings: list[str] = []
    for p in paths:
        hit = _table_for(p)
        if hit is None:
            if p.name not in IGNORED_FILES:
                warnings.append(f"{p}: not a CSV or Parquet file; ignored")
            continue
        name, kind = hit
        try:
            t = table(name)
        except KeyError as exc:
            if not source.is_dir():
                raise CaretwinError(f"{p}: {exc.args[0]}") from None
            warnings.append(f"{p}: {exc.args[0]}; ignored")
            continue
        if name in found:
            raise CaretwinError(f"{source}: two files for table {name}: {found[name].path.name} and {p.name}")
        found[name] = SourceFile(p, t, kind)
    if not found:
        raise CaretwinError(f"{source}: no canonical table files (expected names like members.csv or visits.parquet)")
    return [found[t.name] for t in load_order() if t.name in found], warnings


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:  # type: ignore[operator]
        return [h.strip() for h in next(csv.reader(fh), [])]


class _Loader:
    """Stages, validates and writes one extract on one connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, error_limit: int):
        self.con = con
        self.limit = error_limit
        self.problems: list[Problem] = []
        self.truncated = False

    def add(self, problem: Problem) -> None:
        if len(self.problems) < self.limit:
            self.problems.append(problem)
        else:
            self.truncated = True

    # -- staging ------------------------------------------------------------------
    def stage(self, f: SourceFile) -> list[str]:
        """Copy the file into a temporary table; returns the columns it has."""
        if f.kind == "parquet":
            try:
                self.con.execute(f"CREATE TEMP TABLE {f.staging} AS SELECT * FROM read_parquet({_quote(str(f.path))})")
            except duckdb.Error as exc:
                self.add(Problem(str(f.path), None, None, f"cannot read Parquet: {str(exc).splitlines()[0]}"))
                return []
            return [d[0] for d in self.con.execute(f"SELECT * FROM {f.staging} LIMIT 0").description]
        header = _csv_header(f.path)
        if not header or len(set(header)) != len(header) or "" in header:
            self.add(Problem(str(f.path), None, None, f"the header row is empty, has blank or repeated names: {header}"))
            return []
        columns = "{" + ", ".join(f"{_quote(h)}: 'VARCHAR'" for h in header) + "}"
        try:
            self.con.execute(
                f"CREATE TEMP TABLE {f.staging} AS SELECT * FROM read_csv({_quote(str(f.path))}, columns={columns}, "
                "header=true, auto_detect=false, delim=',', quote='\"', escape='\"', "
                "store_rejects=true, rejects_table='_rejects', rejects_scan='_rejects_scan')"
            )
        except duckdb.Error as exc:
            self.add(Problem(str(f.path), None, None, f"cannot read CSV: {str(exc).splitlines()[0]}"))
            return []
        for line, col, err in self.con.execute(
            "SELECT line, column_name, error_message FROM _rejects ORDER BY line"
        ).fetchall():
            self.add(Problem(str(f.path), int(line) - 1, col, f"malformed CSV row: {err}"))
        self.con.execute("DROP TABLE _rejects")
        self.con.execute("DROP TABLE _rejects_scan")
        return header

    # -- checks -------------------------------------------------------------------
    def typed_expr(self, col: Column, source_type: str | None) -> str:
        """SQL giving the column's value in its canonical type, NULL when missing or not convertible."""
        if source_type is None:
            return f"CAST(NULL AS {col.sql_type})"
        q = f'"{col.name}"'
        if source_type == "VARCHAR":
            v = f"NULLIF(trim({q}), '')"
            if col.dtype == "integer":
                return f"CASE WHEN regexp_full_match({v}, '[+-]?[0-9]+') THEN TRY_CAST({v} AS BIGINT) END"
            if col.dtype == "date":  # ISO 8601 only: 2024-03-01, never 3/1/2024
                return f"CASE WHEN regexp_full_match({v}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') THEN TRY_CAST({v} AS DATE) END"
            if col.dtype == "string":
                return v
            return f"TRY_CAST({v} AS {col.sql_type})"
        if col.dtype == "integer" and (source_type in ("DOUBLE", "FLOAT") or source_type.startswith("DECIMAL")):
            return f"CASE WHEN {q} = trunc({q}) THEN TRY_CAST({q} AS BIGINT) END"
        return f"TRY_CAST({q} AS {col.sql_type})"

    def checks(self, t: Table, types: dict[str, str]) -> list[tuple[str | None, str, str, str]]:
        """(column, reason, violation predicate, value shown) for every check of table `t`."""
        out: list[tuple[str | None, str, str, str]] = []
        typed = {c.name: self.typed_expr(c, types.get(c.name)) for c in t.columns}
        for c in t.columns:
            if c.name not in types:
                continue
            q, v = f'"{c.name}"', typed[c.name]
            raw_missing = f"NULLIF(trim({q}), '') IS NULL" if types[c.name] == "VARCHAR" else f"{q} IS NULL"
            shown = "NULL" if c.pseudonymised else f"CAST({q} AS VARCHAR)"
            if c.required:
                out.append((c.name, "required value is missing", raw_missing, shown))
            out.append((c.name, f"not a valid {c.dtype}" + (" (YYYY-MM-DD)" if c.dtype == "date" else ""),
                        f"NOT ({raw_missing}) AND {v} IS NULL", shown))
            if c.allowed and c.list_separator:
                items = "[" + ", ".join(map(_quote, c.allowed)) + "]"
                out.append((c.name, f"contains a value not in: {', '.join(c.allowed)}",
                            f"NOT list_has_all({items}, string_split({v}, {_quote(c.list_separator)}))", shown))
            elif c.allowed:
                out.append((c.name, f"not one of: {', '.join(c.allowed)}",
                            f"{v} NOT IN ({', '.join(map(_quote, c.allowed))})", shown))
            lo, hi = c.bounds
            for bound, op, word in ((lo, "<", "below the minimum"), (hi, ">", "above the maximum")):
                if bound is not None:
                    lit = f"DATE '{bound}'" if c.dtype == "date" else repr(bound)
                    out.append((c.name, f"{word} {bound}", f"{v} {op} {lit}", shown))
            if c.pattern:
                out.append((c.name, f"does not match the pattern {c.pattern}",
                            f"NOT regexp_full_match({v}, {_quote(c.pattern)})", shown))
        for chk in t.checks:
            if all(col in types for col in chk.columns):
                # columns named in the predicate stand for their typed values
                names = re.compile(r"\b(" + "|".join(chk.columns) + r")\b")
                pred = names.sub(lambda m: f"({typed[m.group(1)]})", chk.violated_when)
                shown = " || ', ' || ".join(f"'{n}=' || coalesce(CAST({typed[n]} AS VARCHAR), '')" for n in chk.columns)
                out.append((None, chk.message, pred, shown))
        return out

    def validate(self, f: SourceFile, present: list[str]) -> None:
        t, name = f.table, str(f.path)
        known = set(t.column_names)
        for col in t.columns:
            if col.required and col.name not in present:
                self.add(Problem(name, None, col.name, "required column is missing from the header"))
        if any(c.required and c.name not in present for c in t.columns):
            return
        types = {
            r[0]: r[1]
            for r in self.con.execute(f"DESCRIBE {f.staging}").fetchall()
            if r[0] in known
        }
        checks = self.checks(t, types)
        if checks:
            counts = self.con.execute(
                "SELECT " + ", ".join(f"count(*) FILTER (WHERE {pred})" for _, _, pred, _ in checks) + f" FROM {f.staging}"
            ).fetchone()
            for (column, reason, pred, shown), n in zip(checks, counts):
                if n == 0:
                    continue
                rows = self.con.execute(
                    f"SELECT rowid, {shown} FROM {f.staging} WHERE {pred} ORDER BY rowid LIMIT {self.limit}"
                ).fetchall()
                for rowid, value in rows:
                    if value is None:
                        detail = reason
                    else:
                        detail = f"{reason} (got {value!r})" if column else f"{reason} ({value})"
                    self.add(Problem(name, int(rowid) + 1, column, detail))
                if n > len(rows):
                    self.truncated = True
        key = ", ".join(self.typed_expr(t.column(k), types[k]) for k in t.primary_key)
        for rows in self.con.execute(
            f"SELECT list(rowid ORDER BY rowid) AS r FROM {f.staging} GROUP BY {key} HAVING count(*) > 1 "
            f"ORDER BY r[1] LIMIT {self.limit}"
        ).fetchall():
            first = rows[0][0] + 1
            for rowid in rows[0][1:]:
                self.add(Problem(name, rowid + 1, ",".join(t.primary_key), f"duplicate key: same as row {first}"))

    # -- write --------------------------------------------------------------------
    def prepare(self, f: SourceFile) -> None:
        """Build `_new_<table>`: typed, pseudonymised rows exactly as they will be stored."""
        t = f.table
        types = {r[0]: r[1] for r in self.con.execute(f"DESCRIBE {f.staging}").fetchall()}
        exprs = []
        for c in t.columns:
            v = self.typed_expr(c, types.get(c.name))
            exprs.append(f"pseudonymise({v}) AS {c.name}" if c.pseudonymised else f"{v} AS {c.name}")
        self.con.execute(f"CREATE TEMP TABLE _new_{t.name} AS SELECT rowid AS _row, {', '.join(exprs)} FROM {f.staging}")

    def check_references(self, f: SourceFile, loaded: set[str]) -> None:
        t = f.table
        for c in t.foreign_keys:
            ref_table, ref_col = c.references.split(".")  # type: ignore[union-attr]
            pool = f"SELECT {ref_col} FROM {ref_table}"
            if ref_table in loaded:
                pool += f" UNION ALL SELECT {ref_col} FROM _new_{ref_table}"
            for row, value in self.con.execute(
                f"SELECT _row, {'NULL' if c.pseudonymised else c.name} FROM _new_{t.name} n "
                f"WHERE n.{c.name} IS NOT NULL AND n.{c.name} NOT IN ({pool}) ORDER BY _row LIMIT {self.limit}"
            ).fetchall():
                shown = WITHHELD if c.pseudonymised else repr(value)
                self.add(Problem(str(f.path), row + 1, c.name, f"refers to no row of {ref_table} ({shown})"))

    def upsert(self, t: Table) -> tuple[int, int]:
        """Replace rows with the same key, insert the rest; returns (inserted, replaced)."""
        match = " AND ".join(f"{t.name}.{k} = n.{k}" for k in t.primary_key)
        replaced = self.con.execute(f"DELETE FROM {t.name} USING _new_{t.name} n WHERE {match}").fetchone()[0]
        cols = ", ".join(t.column_names)
        total = self.con.execute(f"INSERT INTO {t.name} SELECT {cols} FROM _new_{t.name}").fetchone()[0]
        return int(total) - int(replaced), int(replaced)


def ingest_canonical(ws: Workspace, source: str | Path, *, error_limit: int | None = None) -> LoadReport:
    """Load a canonical extract (a folder of <table>.csv / .parquet files, or one such file).

    Raises `ValidationError` listing every located problem (up to `error_limit`), in which
    case the workspace is unchanged. Rows whose key is already in the workspace replace it,
    so loading the same extract twice leaves the same rows.
    """
    started = time.perf_counter()
    started_at = _utcnow()
    src = Path(source)
    files, warnings = discover(src)
    loader = _Loader(ws.con, error_limit or int(ws.settings["error_limit"]))
    digests = {str(f.path): _sha256(f.path) for f in files}
    con = ws.con
    try:
        # Staging and checks use temporary tables outside the transaction, so that row
        # numbers are file positions; only the writes at the end are transactional.
        con.execute(privacy.sql_macro(ws.key()))
        for f in files:
            present = loader.stage(f)
            if present:
                extra = sorted(set(present) - set(f.table.column_names))
                if extra:
                    warnings.append(f"{f.path}: columns not in the canonical model, ignored: {', '.join(extra)}")
                loader.validate(f, present)
        if loader.problems:
            raise ValidationError(loader.problems, loader.truncated)
        for f in files:
            loader.prepare(f)
        loaded = {f.table.name for f in files}
        for f in files:
            loader.check_references(f, loaded)
        if loader.problems:
            raise ValidationError(loader.problems, loader.truncated)
        inserted: dict[str, int] = {}
        replaced: dict[str, int] = {}
        file_rows = []
        with ws.transaction():
            for f in files:
                inserted[f.table.name], replaced[f.table.name] = loader.upsert(f.table)
                file_rows.append({
                    "file": str(f.path),
                    "table": f.table.name,
                    "sha256": digests[str(f.path)],
                    "rows": inserted[f.table.name] + replaced[f.table.name],
                })
            load_id = con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM _loads").fetchone()[0]
            con.execute(
                "INSERT INTO _loads VALUES (?, ?, ?, ?, 'canonical', ?, ?, ?, ?, ?)",
                [load_id, started_at, _utcnow(), str(src.absolute()), json.dumps(file_rows),
                 json.dumps(inserted), json.dumps(replaced), SCHEMA_VERSION, __version__],
            )
    finally:
        for f in files:
            con.execute(f"DROP TABLE IF EXISTS {f.staging}")
            con.execute(f"DROP TABLE IF EXISTS _new_{f.table.name}")
    return LoadReport(load_id, str(src), file_rows, inserted, replaced, warnings, time.perf_counter() - started)

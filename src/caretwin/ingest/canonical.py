"""Load a canonical extract (CSV or Parquet, one file per table) into a workspace.

The pipeline, per table: stage the file as received; cleanse it under documented rules
(`CLEANSING`); check every row against the rules generated from the canonical model;
drop exact duplicates; put rows that break a rule, or refer to a row that is not there,
in quarantine with their reasons; pseudonymise; upsert by primary key. All writes
(rows, quarantine, repairs, lineage, load record) happen in one transaction: a load that
fails leaves the workspace exactly as it was. With `on_error="reject"` any row that would
be quarantined refuses the whole load instead, with every problem located.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from caretwin._version import __version__
from caretwin.errors import CaretwinError, Problem, ValidationError
from caretwin.governance import privacy
from caretwin.governance.audit import Actor, audited
from caretwin.model.rules import RULES_VERSION, column_rules
from caretwin.model.schema import SCHEMA_VERSION, Column, Table, load_order, table
from caretwin.workspace import Workspace

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
IGNORED_FILES = {"manifest.json"}
WITHHELD = "value withheld: person identifier"
ON_ERROR = ("quarantine", "reject")
_ICD10_LOOSE = "[A-Z][0-9][0-9A-Z][0-9A-Z]{1,4}"

# Documented cleansing rules; a change to what a rule does bumps its version.
CLEANSING = {
    "blank_is_missing": ("1", "Leading and trailing spaces are removed; an empty field is a missing value."),
    "value_set_spelling": ("1", "A coded value that matches an allowed value apart from case, spaces or hyphens "
                                "becomes that value ('Home Health' -> home_health)."),
    "icd10_dot": ("1", "An ICD-10 code without its dot, or in lower case, is rewritten (e119 -> E11.9)."),
    "exact_duplicate": ("1", "A row identical to an earlier row of the same load is dropped; rows that share a key "
                             "but differ are ambiguous and go to quarantine."),
}


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
    quarantined: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)

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
    return datetime.now(UTC).replace(tzinfo=None)


def sha256_of(path: Path) -> str:
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
    """Stages, cleanses, checks and writes one extract on one connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, error_limit: int, on_error: str, pseudonymised: bool):
        self.con = con
        self.limit = error_limit
        self.reject = on_error == "reject"
        self.pseudonymised = pseudonymised
        self.problems: list[Problem] = []
        self.truncated = False
        con.execute("CREATE OR REPLACE TEMP TABLE _bad (tbl VARCHAR, _row BIGINT, rule VARCHAR, message VARCHAR)")
        con.execute("CREATE OR REPLACE TEMP TABLE _fix (tbl VARCHAR, _row BIGINT, column_name VARCHAR, rule VARCHAR, "
                    "before VARCHAR, after VARCHAR)")
        con.execute("CREATE OR REPLACE TEMP TABLE _malformed (tbl VARCHAR, line BIGINT, message VARCHAR, chars BIGINT)")
        con.execute("CREATE OR REPLACE TEMP TABLE _pseudo (raw VARCHAR, p VARCHAR)")

    def add(self, problem: Problem) -> None:
        if len(self.problems) < self.limit:
            self.problems.append(problem)
        else:
            self.truncated = True

    def pseudo(self, expr: str) -> str:
        return expr if self.pseudonymised else f"pseudonymise({expr})"

    def stored(self, col: Column, source_type: str) -> str:
        """SQL for the value as the workspace stores it: typed, and pseudonymised for person identifiers."""
        v = self.typed_expr(col, source_type)
        return self.pseudo(v) if col.pseudonymised else v

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
        for line, col, err, raw in self.con.execute(
            "SELECT line, column_name, error_message, csv_line FROM _rejects ORDER BY line"
        ).fetchall():
            if "unterminated quote" in err:  # the reader ran to the end of the file inside one value
                with f.path.open("rb") as fh:
                    after = sum(1 for _ in fh) - int(line)
                self.add(Problem(str(f.path), int(line) - 1, col, f"a quote opened on this row is never closed, so "
                                 f"the {after:,} lines after it would be lost inside one value; close the quote or "
                                 "remove the row"))
            elif self.reject:
                self.add(Problem(str(f.path), int(line) - 1, col, f"malformed CSV row: {err}"))
            # a line that cannot be parsed cannot be pseudonymised either: only its place and length are kept
            self.con.execute("INSERT INTO _malformed VALUES (?, ?, ?, ?)",
                             [f.table.name, int(line) - 1, f"malformed CSV row: {err}", len(raw or "")])
        self.con.execute("DROP TABLE _rejects")
        self.con.execute("DROP TABLE _rejects_scan")
        return header

    # -- cleansing ----------------------------------------------------------------
    @staticmethod
    def _spelling(x: str, allowed: tuple[str, ...]) -> str:
        canon = f"lower(replace(replace({x}, '-', '_'), ' ', '_'))"
        return f"CASE WHEN {canon} IN ({', '.join(map(_quote, allowed))}) THEN {canon} ELSE {x} END"

    def cleanse(self, f: SourceFile, present: list[str]) -> None:
        """Build `_clean_<table>`: `_row` plus each canonical column after the cleansing rules."""
        t = f.table
        types = {r[0]: r[1] for r in self.con.execute(f"DESCRIBE {f.staging}").fetchall()}
        exprs, fixes = [], []
        for c in t.columns:
            if c.name not in present:
                continue
            q = f'"{c.name}"'
            if types[c.name] != "VARCHAR":
                exprs.append(f"{q} AS {c.name}")
                continue
            base = f"NULLIF(trim({q}), '')"
            rule, cleaned = None, base
            if c.allowed and c.list_separator:
                sep = _quote(c.list_separator)
                item = self._spelling("trim(x)", c.allowed)
                rule, cleaned = "value_set_spelling", f"array_to_string(list_transform(string_split({base}, {sep}), lambda x: {item}), {sep})"
            elif c.allowed:
                rule, cleaned = "value_set_spelling", self._spelling(base, c.allowed)
            elif c.pattern and c.pattern.startswith("^[A-Z][0-9][0-9A-Z]"):
                up = f"upper({base})"
                rule = "icd10_dot"
                cleaned = (f"CASE WHEN regexp_full_match({up}, '{_ICD10_LOOSE}') THEN substr({up}, 1, 3) || '.' || substr({up}, 4) "
                           f"ELSE {up} END")
            exprs.append(f"{cleaned} AS {c.name}")
            if rule:
                before = "NULL" if c.pseudonymised else base
                fixes.append(f"SELECT '{t.name}', _row, '{c.name}', '{rule}', {before}, {c.name} FROM _clean_{t.name} "
                             f"WHERE {c.name} IS DISTINCT FROM _b_{c.name}")
                exprs.append(f"{base} AS _b_{c.name}")
        source_row = "_source_row" if "_source_row" in types else "rowid + 1"
        source_file = "_source_file" if "_source_file" in types else _quote(str(f.path))
        self.con.execute(f"CREATE TEMP TABLE _clean_{t.name} AS SELECT rowid AS _row, {source_row} AS _src, "
                         f"{source_file} AS _file, {', '.join(exprs)} FROM {f.staging}")
        for sql in fixes:
            self.con.execute(f"INSERT INTO _fix {sql}")

    # -- checks -------------------------------------------------------------------
    def typed_expr(self, col: Column, source_type: str | None) -> str:
        """SQL giving the column's value in its canonical type, NULL when missing or not convertible."""
        if source_type is None:
            return f"CAST(NULL AS {col.sql_type})"
        q = f'"{col.name}"'
        if source_type == "VARCHAR":
            if col.dtype == "integer":
                return f"CASE WHEN regexp_full_match({q}, '[+-]?[0-9]+') THEN TRY_CAST({q} AS BIGINT) END"
            if col.dtype == "date":  # ISO 8601 only: 2024-03-01, never 3/1/2024
                return f"CASE WHEN regexp_full_match({q}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') THEN TRY_CAST({q} AS DATE) END"
            if col.dtype == "string":
                return q
            return f"TRY_CAST({q} AS {col.sql_type})"
        if col.dtype == "integer" and (source_type in ("DOUBLE", "FLOAT") or source_type.startswith("DECIMAL")):
            return f"CASE WHEN {q} = trunc({q}) THEN TRY_CAST({q} AS BIGINT) END"
        return f"TRY_CAST({q} AS {col.sql_type})"

    def _types(self, t: Table) -> dict[str, str]:
        known = set(t.column_names)
        return {r[0]: r[1] for r in self.con.execute(f"DESCRIBE _clean_{t.name}").fetchall() if r[0] in known}

    def validate(self, f: SourceFile, present: list[str]) -> bool:
        """Record every rule each row breaks in `_bad`; False when the file cannot be loaded at all."""
        t, name = f.table, str(f.path)
        missing_cols = [c.name for c in t.columns if c.required and c.name not in present]
        for col in missing_cols:
            self.add(Problem(name, None, col, "required column is missing from the header"))
        if missing_cols:
            return False
        types = self._types(t)
        typed = {c: self.typed_expr(t.column(c), ty) for c, ty in types.items()}
        missing = {c: f"{q} IS NULL" for c in types for q in [f'"{c}"']}
        rules = column_rules(t, typed, missing)
        counts = self.con.execute(
            "SELECT " + ", ".join(f"count(*) FILTER (WHERE {r.predicate})" for r in rules) + f" FROM _clean_{t.name}"
        ).fetchone()
        for r, n in zip(rules, counts):
            if n == 0:
                continue
            self.con.execute(f"INSERT INTO _bad SELECT '{t.name}', _row, ?, ? FROM _clean_{t.name} WHERE {r.predicate}",
                             [r.name, r.message])
            if self.reject:
                for file, src, value in self.con.execute(
                    f"SELECT _file, _src, {r.shown} FROM _clean_{t.name} WHERE {r.predicate} ORDER BY _row LIMIT {self.limit}"
                ).fetchall():
                    detail = r.message if value is None else (
                        f"{r.message} (got {value!r})" if r.column else f"{r.message} ({value})")
                    self.add(Problem(file, int(src), r.column, detail))
                if n > self.limit:
                    self.truncated = True
        self.duplicates(f, typed)
        return True

    def duplicates(self, f: SourceFile, typed: dict[str, str]) -> None:
        """Exact copies of a row are dropped (a repair); rows that share a key but differ are quarantined."""
        t = f.table
        key = ", ".join(typed[k] for k in t.primary_key)
        cols = [c for c in typed]
        rule = f"unique:{t.name}"
        keys = ", ".join(f"{typed[k]} AS _k{i}" for i, k in enumerate(t.primary_key))
        match = " AND ".join(f"{typed[k]} IS NOT DISTINCT FROM d._k{i}" for i, k in enumerate(t.primary_key))
        groups = self.con.execute(
            f"WITH d AS (SELECT {keys} FROM _clean_{t.name} GROUP BY ALL HAVING count(*) > 1) "
            f"SELECT list(_row ORDER BY _row), list(_src ORDER BY _row), count(DISTINCT ({', '.join(cols)})), min(_file) "
            f"FROM _clean_{t.name} JOIN d ON {match} GROUP BY {key} ORDER BY min(_row)"
        ).fetchall()
        for rows, srcs, variants, file in groups:
            if variants == 1:  # identical copies: keep the first
                for r in rows[1:]:
                    self.con.execute("INSERT INTO _fix VALUES (?, ?, NULL, 'exact_duplicate', NULL, NULL)", [t.name, r])
                continue
            for r, src in zip(rows, srcs):
                self.con.execute("INSERT INTO _bad VALUES (?, ?, ?, ?)",
                                 [t.name, r, rule, f"duplicate key: rows {', '.join(map(str, srcs))} differ"])
            if self.reject:
                for src in srcs[1:]:
                    self.add(Problem(file, int(src), ",".join(t.primary_key), f"duplicate key: same as row {srcs[0]}"))

    # -- write --------------------------------------------------------------------
    def prepare(self, f: SourceFile) -> None:
        """Build `_new_<table>`: typed, pseudonymised rows exactly as they will be stored, less the bad ones."""
        t = f.table
        types = self._types(t)
        exprs, joins = [], []
        for c in t.columns:
            v = self.typed_expr(c, types.get(c.name))
            if c.pseudonymised and c.name in types and not self.pseudonymised:
                # hash each distinct identifier once: a member has many visits
                self.con.execute(f"INSERT INTO _pseudo SELECT DISTINCT v, pseudonymise(v) FROM (SELECT {v} AS v FROM "
                                 f"_clean_{t.name}) WHERE v IS NOT NULL AND v NOT IN (SELECT raw FROM _pseudo)")
                joins.append(f"LEFT JOIN _pseudo _p_{c.name} ON _p_{c.name}.raw = {v}")
                exprs.append(f"_p_{c.name}.p AS {c.name}")
            else:
                exprs.append(f"{v} AS {c.name}")
        self.con.execute(
            f"CREATE TEMP TABLE _new_{t.name} AS SELECT _row, _src, _file, {', '.join(exprs)} FROM _clean_{t.name} "
            f"{' '.join(joins)} WHERE _row NOT IN (SELECT _row FROM _bad WHERE tbl = '{t.name}') "
            f"AND _row NOT IN (SELECT _row FROM _fix WHERE tbl = '{t.name}' AND rule = 'exact_duplicate')"
        )

    def check_references(self, f: SourceFile, loaded: set[str]) -> None:
        """Rows that refer to nothing go to quarantine; so do rows whose parent went there (a cascade)."""
        t = f.table
        for c in t.foreign_keys:
            ref_table, ref_col = c.references.split(".")  # type: ignore[union-attr]
            pool = f"SELECT {ref_col} FROM {ref_table}"
            if ref_table in loaded:
                pool += f" UNION ALL SELECT {ref_col} FROM _new_{ref_table}"
            parent_bad = "FALSE"
            if ref_table in loaded:
                parent_bad = (f"n.{c.name} IN (SELECT {ref_col} FROM _parents_{ref_table})")
            orphan, cascade = f"foreign_key:{t.name}.{c.name}", f"foreign_key_cascade:{t.name}.{c.name}"
            self.con.execute(
                f"INSERT INTO _bad SELECT '{t.name}', _row, CASE WHEN {parent_bad} THEN '{cascade}' ELSE '{orphan}' END, "
                f"CASE WHEN {parent_bad} THEN 'refers to a row of {ref_table} that was quarantined' "
                f"ELSE 'refers to no row of {ref_table}' END "
                f"FROM _new_{t.name} n WHERE n.{c.name} IS NOT NULL AND n.{c.name} NOT IN ({pool})"
            )
            if self.reject:
                for file, src, value in self.con.execute(
                    f"SELECT _file, _src, {'NULL' if c.pseudonymised else c.name} FROM _new_{t.name} n "
                    f"WHERE n.{c.name} IS NOT NULL AND n.{c.name} NOT IN ({pool}) ORDER BY _row LIMIT {self.limit}"
                ).fetchall():
                    shown = WITHHELD if c.pseudonymised else repr(value)
                    self.add(Problem(file, int(src), c.name, f"refers to no row of {ref_table} ({shown})"))
        self.con.execute(f"DELETE FROM _new_{t.name} WHERE _row IN (SELECT _row FROM _bad WHERE tbl = '{t.name}')")
        self.remember_quarantined_keys(t)

    def remember_quarantined_keys(self, t: Table) -> None:
        """`_parents_<table>`: keys of this table's quarantined rows, as children would refer to them."""
        types = self._types(t)
        keys = [k for k in t.primary_key if k in types]
        exprs = [f"{self.stored(t.column(k), types[k])} AS {k}" for k in keys]
        self.con.execute(f"CREATE TEMP TABLE _parents_{t.name} AS SELECT {', '.join(exprs)} FROM _clean_{t.name} "
                         f"WHERE _row IN (SELECT _row FROM _bad WHERE tbl = '{t.name}')")

    def upsert(self, t: Table) -> tuple[int, int]:
        """Replace rows with the same key, insert the rest; returns (inserted, replaced)."""
        match = " AND ".join(f"{t.name}.{k} = n.{k}" for k in t.primary_key)
        replaced = self.con.execute(f"DELETE FROM {t.name} USING _new_{t.name} n WHERE {match}").fetchone()[0]
        cols = ", ".join(t.column_names)
        total = self.con.execute(f"INSERT INTO {t.name} SELECT {cols} FROM _new_{t.name}").fetchone()[0]
        if t.name == "members":  # new members join the arrival order in source order (see workspace._MEMBER_ORDER_DDL)
            self.con.execute("""INSERT INTO _member_order SELECT member_id, (SELECT coalesce(max(seq), 0) FROM _member_order)
                + row_number() OVER (ORDER BY _row) FROM _new_members
                WHERE member_id NOT IN (SELECT member_id FROM _member_order)""")
        return int(total) - int(replaced), int(replaced)

    def quarantine(self, f: SourceFile, load_id: int) -> int:
        """Write this table's bad and malformed rows to `_quarantine`; returns how many."""
        t = f.table
        types = self._types(t)
        fields = []
        for c in t.columns:
            if c.name in types:
                v = f'CAST("{c.name}" AS VARCHAR)'
                fields.append(f"{_quote(c.name)}: {self.pseudo(v) if c.pseudonymised else v}")
        n = self.con.execute(
            f"INSERT INTO _quarantine SELECT ?, ?, c._file, c._src, b.rules, b.reason, to_json({{{', '.join(fields)}}}) "
            f"FROM _clean_{t.name} c JOIN (SELECT _row, list(DISTINCT rule ORDER BY rule) AS rules, "
            f"string_agg(DISTINCT message, '; ' ORDER BY message) AS reason FROM _bad WHERE tbl = ? GROUP BY _row) b "
            f"USING (_row)", [load_id, t.name, t.name]).fetchone()[0]
        n += self.con.execute(
            "INSERT INTO _quarantine SELECT ?, tbl, ?, line, ['malformed:' || tbl], message, "
            "to_json({'line': 'not kept: it could not be parsed, so not pseudonymised', 'characters': chars}) "
            "FROM _malformed WHERE tbl = ?", [load_id, str(f.path), t.name]).fetchone()[0]
        return int(n)

    def repairs(self, f: SourceFile, load_id: int) -> int:
        t = f.table
        types = self._types(t)
        key = ", ".join(
            f"{_quote(k)}: {self.stored(t.column(k), types[k])}"
            for k in t.primary_key)
        n = self.con.execute(
            f"INSERT INTO _repairs SELECT ?, ?, c._src, to_json({{{key}}}), x.column_name, x.rule, x.before, x.after "
            f"FROM _fix x JOIN _clean_{t.name} c USING (_row) WHERE x.tbl = ?", [load_id, t.name, t.name]).fetchone()[0]
        return int(n)

    def drop(self, files: list[SourceFile]) -> None:
        for f in files:
            for prefix in ("_clean_", "_new_", "_parents_"):
                self.con.execute(f"DROP TABLE IF EXISTS {prefix}{f.table.name}")
            self.con.execute(f"DROP TABLE IF EXISTS {f.staging}")
        for name in ("_bad", "_fix", "_malformed", "_pseudo"):
            self.con.execute(f"DROP TABLE IF EXISTS {name}")


def ingest_canonical(
    ws: Workspace,
    source: str | Path,
    *,
    error_limit: int | None = None,
    on_error: str = "quarantine",
    format: str = "canonical",
    inputs: list[dict[str, object]] | None = None,
    pseudonymised: bool = False,
    details: dict[str, object] | None = None,
    actor: Actor | None = None,
) -> LoadReport:
    """Load a canonical extract (a folder of <table>.csv / .parquet files, or one such file).

    Rows that break a rule go to quarantine (`on_error="quarantine"`, the default) or
    refuse the load (`"reject"`: a `ValidationError` listing every located problem, up to
    `error_limit`, and the workspace unchanged). Rows whose key is already in the workspace
    replace it, so loading the same extract twice leaves the same rows.

    Adapters pass the files they staged with `inputs` (the real sources, for lineage),
    `pseudonymised=True` when they already hashed person identifiers, and `details`. The load is recorded in
    the audit trail, in the same transaction, as done by `actor` (the operating-system user unless given).
    """
    if on_error not in ON_ERROR:
        raise CaretwinError(f"on_error must be one of {', '.join(ON_ERROR)}, not {on_error!r}")
    started = time.perf_counter()
    started_at = _utcnow()
    src = Path(source)
    files, warnings = discover(src)
    if any(f.table.derived for f in files):
        raise CaretwinError(f"{src}: {', '.join(f.table.name for f in files if f.table.derived)} is derived by caretwin, not loaded")
    loader = _Loader(ws.con, error_limit or int(ws.settings["error_limit"]), on_error, pseudonymised)
    digests = {str(f.path): sha256_of(f.path) for f in files}
    con = ws.con
    try:
        # Staging and checks use temporary tables outside the transaction, so that row
        # numbers are file positions; only the writes at the end are transactional.
        con.execute(privacy.sql_macro(ws.key()))
        usable = []
        for f in files:
            present = loader.stage(f)
            if not present:
                continue
            extra = sorted(set(present) - set(f.table.column_names) - {"_source_row", "_source_file"})
            if extra:
                warnings.append(f"{f.path}: columns not in the canonical model, ignored: {', '.join(extra)}")
            loader.cleanse(f, present)
            if loader.validate(f, present):
                usable.append(f)
        if loader.problems and (loader.reject or len(usable) < len(files)):
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
        quarantined: dict[str, int] = {}
        repaired: dict[str, int] = {}
        file_rows = []
        with audited(ws, actor, kind="change", action="C", subtype="data.ingest", entity_type="load") as event, \
                ws.transaction():
            load_id = con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM _loads").fetchone()[0]
            for f in files:
                t = f.table.name
                inserted[t], replaced[t] = loader.upsert(f.table)
                quarantined[t] = loader.quarantine(f, load_id)
                repaired[t] = loader.repairs(f, load_id)
                rows_in = con.execute(f"SELECT count(*) FROM {f.staging}").fetchone()[0]
                file_rows.append({"file": str(f.path), "table": t, "sha256": digests[str(f.path)],
                                  "rows": inserted[t] + replaced[t]})
                _record_lineage(con, load_id, t, _lineage_inputs(f, digests, rows_in, inputs), int(rows_in),
                                inserted[t] + replaced[t], quarantined[t], repaired[t])
            con.execute(
                "INSERT INTO _loads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [load_id, started_at, _utcnow(), str(src.absolute()) if inputs is None else str(source_label(inputs)),
                 format, json.dumps(file_rows), json.dumps(inserted), json.dumps(replaced), SCHEMA_VERSION, __version__,
                 json.dumps({**(details or {}), "quarantined": {k: v for k, v in quarantined.items() if v},
                             "repaired": {k: v for k, v in repaired.items() if v}})],
            )
            event.record(entity_id=str(load_id), detail={"format": format, "inserted": inserted, "replaced": replaced,
                                                         "quarantined": sum(quarantined.values())})
    finally:
        loader.drop(files)
    quarantined = {k: v for k, v in quarantined.items() if v}
    repaired = {k: v for k, v in repaired.items() if v}
    if quarantined:
        warnings.append(f"{sum(quarantined.values())} rows quarantined ({', '.join(f'{k}: {v}' for k, v in quarantined.items())}); "
                        f"see `caretwin quality` or the _quarantine table")
    return LoadReport(load_id, str(src), file_rows, inserted, replaced, warnings, time.perf_counter() - started,
                      quarantined, repaired, details or {})


def source_label(inputs: list[dict[str, object]]) -> str:
    """A short label for a load made from several source files: their common folder."""
    paths = [Path(str(i["file"])) for i in inputs if "file" in i]
    if not paths:
        return "(adapter)"
    common = Path(*[p for p in paths[0].parts if all(p in q.parts for q in paths)]) if len(paths) > 1 else paths[0]
    return str(common)


def _lineage_inputs(f: SourceFile, digests: dict[str, str], rows: int,
                    inputs: list[dict[str, object]] | None) -> list[dict[str, object]]:
    if inputs is None:
        return [{"file": str(f.path), "sha256": digests[str(f.path)], "rows": rows}]
    return [i for i in inputs if f.table.name in i.get("tables", [])]  # type: ignore[operator]


def _record_lineage(con: duckdb.DuckDBPyConnection, load_id: int, table_name: str, inputs: list[dict[str, object]],
                    rows_in: int, rows_out: int, quarantined: int, repaired: int, step: str = "ingest",
                    rules: dict[str, str] | None = None) -> None:
    rules = rules or {"schema": SCHEMA_VERSION, "model_rules": RULES_VERSION,
                      **{f"cleanse.{k}": v for k, (v, _) in CLEANSING.items()}}
    con.execute("INSERT INTO _lineage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [load_id, table_name, step, _utcnow(), json.dumps(inputs), json.dumps(rules),
                 rows_in, rows_out, quarantined, repaired])

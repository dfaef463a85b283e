"""A workspace: one folder holding the twin's state in an embedded DuckDB database.

    PATH/caretwin.duckdb   canonical tables, load history
    PATH/caretwin.toml     name, schema version, settings overrides
    PATH/secret.key        per-workspace pseudonymisation key (mode 0600)
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from caretwin._version import __version__
from caretwin.errors import CaretwinError
from caretwin.files import new_folder
from caretwin.governance import privacy
from caretwin.model.schema import SCHEMA_VERSION, TABLES
from caretwin.settings import resolve

DB_FILE = "caretwin.duckdb"
CONFIG_FILE = "caretwin.toml"
KEY_FILE = "secret.key"

_LOADS_DDL = """
CREATE TABLE _loads (
    load_id INTEGER PRIMARY KEY,
    started_at TIMESTAMP NOT NULL,   -- UTC
    finished_at TIMESTAMP NOT NULL,  -- UTC
    source VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    files VARCHAR NOT NULL,      -- JSON: [{file, table, sha256, rows}]
    inserted VARCHAR NOT NULL,   -- JSON: table -> rows new to the workspace
    replaced VARCHAR NOT NULL,   -- JSON: table -> rows that replaced a row with the same key
    schema_version VARCHAR NOT NULL,
    caretwin_version VARCHAR NOT NULL,
    details VARCHAR              -- JSON: what the adapter read, skipped and could not map
)"""

# Rows a load could not repair: kept with the rules they broke, never silently dropped.
_QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS _quarantine (
    load_id INTEGER NOT NULL,
    table_name VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_row BIGINT,            -- 1-based data row in the file (NULL when the adapter made the row)
    rules VARCHAR[] NOT NULL,     -- quality rule names, e.g. required:visits.status
    reason VARCHAR NOT NULL,      -- the rules' messages, for people
    record VARCHAR NOT NULL       -- JSON of the row as received, person identifiers pseudonymised
)"""

# Values a load changed under a documented cleansing rule.
_REPAIRS_DDL = """
CREATE TABLE IF NOT EXISTS _repairs (
    load_id INTEGER NOT NULL,
    table_name VARCHAR NOT NULL,
    source_row BIGINT,
    row_key VARCHAR NOT NULL,     -- JSON of the primary key as stored
    column_name VARCHAR,
    rule VARCHAR NOT NULL,
    before VARCHAR,               -- NULL for pseudonymised columns
    after VARCHAR
)"""

# What each table was built from: inputs, rule versions, rows in, out, quarantined, repaired.
_LINEAGE_DDL = """
CREATE TABLE IF NOT EXISTS _lineage (
    load_id INTEGER NOT NULL,
    table_name VARCHAR NOT NULL,
    step VARCHAR NOT NULL,        -- ingest | enrich
    recorded_at TIMESTAMP NOT NULL,
    inputs VARCHAR NOT NULL,      -- JSON list of {file|table, sha256?, rows}
    rules VARCHAR NOT NULL,       -- JSON {rule set: version}
    rows_in BIGINT NOT NULL,
    rows_out BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    rows_repaired BIGINT NOT NULL
)"""

# The order in which members first reached the workspace: a load's source order, after every member of earlier
# loads. It does not depend on the workspace key (pseudonyms do), so the engine, which numbers members in this
# order, gives the same run from the same extract and seed in every workspace.
_MEMBER_ORDER_DDL = """
CREATE TABLE IF NOT EXISTS _member_order (
    member_id VARCHAR PRIMARY KEY,
    seq BIGINT NOT NULL
)"""

INTERNAL_DDL = (_QUARANTINE_DDL, _REPAIRS_DDL, _LINEAGE_DDL, _MEMBER_ORDER_DDL)


def _create_tables_sql() -> list[str]:
    stmts = []
    for t in TABLES:
        cols = ", ".join(f"{c.name} {c.sql_type}{' NOT NULL' if c.required else ''}" for c in t.columns)
        stmts.append(f"CREATE TABLE {t.name} ({cols})")
    return stmts


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _write_toml(path: Path, data: dict[str, dict[str, Any]]) -> None:
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))


@dataclass
class WorkspaceStatus:
    path: str
    name: str
    schema_version: str
    caretwin_version: str
    tables: dict[str, int]
    date_ranges: dict[str, dict[str, str | None]]
    loads: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Workspace:
    """An open workspace. Use `Workspace.create(path)` or `Workspace.open(path)`."""

    def __init__(self, path: Path, config: dict[str, Any], database: str | None = None):
        self.path = path
        self.config = config
        self.database = database  # the governance store's URL; None: CARETWIN_DATABASE_URL or governance.sqlite
        self.settings = resolve(config.get("settings", {}))
        self._con: duckdb.DuckDBPyConnection | None = None

    # -- life cycle -----------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], name: str | None = None) -> Workspace:
        """Create a new workspace at `path` (which must not exist, or be an empty folder)."""
        target = Path(path).absolute()
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise CaretwinError(f"{target}: already exists and is not an empty folder")
        # Build in a sibling temporary folder, then rename: a failed init leaves nothing behind.
        with new_folder(target, mode=0o700) as tmp:
            config = {
                "workspace": {
                    "name": name or target.name,
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    "schema_version": SCHEMA_VERSION,
                    "caretwin_version": __version__,
                },
                "settings": {},
            }
            _write_toml(tmp / CONFIG_FILE, config)
            privacy.create_key(tmp / KEY_FILE)
            con = duckdb.connect(str(tmp / DB_FILE))
            try:
                for stmt in [*_create_tables_sql(), _LOADS_DDL, *INTERNAL_DDL]:
                    con.execute(stmt)
            finally:
                con.close()
        return cls.open(target)

    @classmethod
    def open(cls, path: str | os.PathLike[str], database: str | None = None) -> Workspace:
        """Open an existing workspace, checking that its schema version is one this code reads; `database`
        names its governance store (users, audit trail, review queue, jobs) when that is not the default."""
        root = Path(path).absolute()
        cfg_path = root / CONFIG_FILE
        if not cfg_path.is_file() or not (root / DB_FILE).is_file():
            raise CaretwinError(f"{root}: not a caretwin workspace (create one with `caretwin init {path}`)")
        try:
            config = tomllib.loads(cfg_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise CaretwinError(f"{cfg_path}: not valid TOML: {exc}") from None
        found = str(config.get("workspace", {}).get("schema_version", "?"))
        if found.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise CaretwinError(
                f"{root}: schema version {found} cannot be read by this caretwin (schema {SCHEMA_VERSION})"
            )
        ws = cls(root, config, database)
        if found != SCHEMA_VERSION:
            ws._migrate()
        return ws

    def _migrate(self) -> None:
        """Bring a workspace of an earlier minor schema version up to this one (additive changes only)."""
        con = self.con
        with self.transaction():
            have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            for t, ddl in zip(TABLES, _create_tables_sql()):
                if t.name not in have:
                    con.execute(ddl)
                    continue
                cols = {r[0]: r[1] for r in con.execute(
                    "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = ?", [t.name]).fetchall()}
                for c in t.columns:
                    if c.name not in cols:
                        con.execute(f"ALTER TABLE {t.name} ADD COLUMN {c.name} {c.sql_type}")
                    elif not c.required and cols[c.name] == "NO":
                        con.execute(f"ALTER TABLE {t.name} ALTER {c.name} DROP NOT NULL")
            con.execute("ALTER TABLE _loads ADD COLUMN IF NOT EXISTS details VARCHAR")
            for ddl in INTERNAL_DDL:
                con.execute(ddl)
            # members loaded before arrival order was recorded: their stored order is the best there is
            con.execute("""INSERT INTO _member_order SELECT member_id, (SELECT coalesce(max(seq), 0) FROM _member_order)
                + row_number() OVER (ORDER BY rowid) FROM members WHERE member_id NOT IN (SELECT member_id FROM _member_order)""")
        self.config["workspace"]["schema_version"] = SCHEMA_VERSION
        self._save_config()

    def _save_config(self) -> None:
        tmp = self.path / f".{CONFIG_FILE}.tmp"
        _write_toml(tmp, self.config)
        os.replace(tmp, self.path / CONFIG_FILE)

    def configure(self, section: str, *, actor=None, **values: Any) -> None:
        """Set values in a section of `caretwin.toml` (such as `review.capacity` or `access.require_login`),
        written aside and renamed, and recorded in the audit trail as done by `actor` (default: the
        operating-system user)."""
        from caretwin.governance.audit import Actor, audited

        with audited(self, actor or Actor.local("administration"), kind="change", action="U",
                     subtype="settings.change", entity_type="settings", entity_id=f"{CONFIG_FILE} [{section}]",
                     detail={"values": values}):
            self.config.setdefault(section, {}).update(values)
            self._save_config()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- access ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.config["workspace"]["name"])

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The workspace's DuckDB connection, opened on first use with the workspace's settings."""
        if self._con is None:
            cfg: dict[str, Any] = {}
            if self.settings["threads"]:
                cfg["threads"] = self.settings["threads"]
            if self.settings["memory_limit"]:
                cfg["memory_limit"] = self.settings["memory_limit"]
            self._con = duckdb.connect(str(self.path / DB_FILE), config=cfg)
            self._con.execute("SET enable_progress_bar = false")
        return self._con

    def key(self) -> bytes:
        """The pseudonymisation key. Never log it or copy it out of the workspace."""
        return privacy.read_key(self.path / KEY_FILE)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: commit when the block ends, roll back if it raises."""
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    # -- reporting ------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Rows in each canonical table."""
        sql = " UNION ALL ".join(f"SELECT '{t.name}', count(*) FROM {t.name}" for t in TABLES)
        return {name: int(n) for name, n in self.con.execute(sql).fetchall()}

    def loads(self) -> list[dict[str, Any]]:
        rows = self.con.execute("SELECT * FROM _loads ORDER BY load_id").fetchall()
        cols = [d[0] for d in self.con.description]
        out = []
        for row in rows:
            rec = dict(zip(cols, row))
            for k in ("files", "inserted", "replaced", "details"):
                rec[k] = json.loads(rec[k]) if rec[k] else {}
            for k in ("started_at", "finished_at"):
                rec[k] = rec[k].isoformat(timespec="seconds") + "Z"
            out.append(rec)
        return out

    def status(self) -> WorkspaceStatus:
        ranges: dict[str, dict[str, str | None]] = {}
        for t in TABLES:
            if t.date_column:
                lo, hi = self.con.execute(f"SELECT min({t.date_column}), max({t.date_column}) FROM {t.name}").fetchone()
                ranges[t.name] = {"column": t.date_column, "first": lo and lo.isoformat(), "last": hi and hi.isoformat()}
        ws = self.config["workspace"]
        return WorkspaceStatus(
            path=str(self.path),
            name=self.name,
            schema_version=str(ws["schema_version"]),
            caretwin_version=__version__,
            tables=self.counts(),
            date_ranges=ranges,
            loads=self.loads(),
        )

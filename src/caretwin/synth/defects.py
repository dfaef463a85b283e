"""Known data defects injected into a synthetic extract, so the quality layer can be scored.

Each defect touches one row (duplicates add a row) and is listed with its kind, table,
data row (1-based, as written), key, column, original and injected values.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from caretwin.model.schema import TABLES, Table
from caretwin.rng import stream

KINDS = ("missing_required", "inconsistent_value", "duplicate_key", "impossible_date", "orphan_foreign_key")
OUT_OF_RANGE_DATE = "1850-06-01"


def generated_tables(con: duckdb.DuckDBPyConnection) -> list[Table]:
    """The canonical tables the generator built (`t_<name>`), in model order."""
    built = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 't\\_%' ESCAPE '\\'").fetchall()}
    return [t for t in TABLES if f"t_{t.name}" in built]


def _date_pairs(t: Table) -> list[tuple[str, str]]:
    """(later, earlier) date columns from the table's ordering checks."""
    return [(chk.columns[1], chk.columns[0]) for chk in t.checks
            if len(chk.columns) == 2 and all(t.column(c).dtype == "date" for c in chk.columns)]


def _candidates(t: Table) -> dict[str, list[str]]:
    """Columns each kind of defect can touch in table `t` (an empty list: the kind does not apply)."""
    return {
        "missing_required": [c.name for c in t.columns if c.required and c.name not in t.primary_key],
        "inconsistent_value": [c.name for c in t.columns if c.allowed and not c.list_separator],
        "duplicate_key": list(t.primary_key),
        "impossible_date": [c.name for c in t.columns if c.dtype == "date"],
        "orphan_foreign_key": [c.name for c in t.foreign_keys],
    }


def _show(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def inject_defects(con: duckdb.DuckDBPyConnection, rate: float, seed: int) -> list[dict[str, Any]]:
    """Inject defects into the `t_<table>` tables at `rate` defects per row; returns the list."""
    items: list[dict[str, Any]] = []
    for t in generated_tables(con):
        name = f"t_{t.name}"
        con.execute(f"ALTER TABLE {name} ALTER _ord TYPE DOUBLE")
        ords = np.array([r[0] for r in con.execute(f"SELECT _ord FROM {name} ORDER BY _ord").fetchall()])
        kinds = [k for k, cols in _candidates(t).items() if cols]
        rng = stream(seed, "defects", TABLES.index(t))
        expected = rate * len(ords) / len(kinds)
        counts = [int(expected) + int(rng.random() < expected - int(expected)) for _ in kinds]
        if sum(counts) == 0:
            continue
        chosen = rng.choice(ords, size=min(sum(counts), len(ords)), replace=False)
        start = 0
        for kind, k in zip(kinds, counts):
            rows = np.sort(chosen[start : start + k])
            start += k
            for o in rows:
                items.append(_inject_one(con, t, name, kind, float(o), rng))
    # data row numbers as written (the extract is sorted by _ord)
    for t in generated_tables(con):
        mine = [it for it in items if it["table"] == t.name]
        if not mine:
            continue
        con.register("_d", pa.table({"o": [it.pop("_ord") for it in mine]}))
        pos = dict(con.execute(
            f"SELECT _ord, r FROM (SELECT _ord, row_number() OVER (ORDER BY _ord) AS r FROM t_{t.name}) JOIN _d ON _ord = o"
        ).fetchall())
        for it, o in zip(mine, con.execute("SELECT o FROM _d").fetchall()):
            it["row"] = int(pos[o[0]])
        con.unregister("_d")
    return items


def _inject_one(con: duckdb.DuckDBPyConnection, t: Table, name: str, kind: str, o: float,
                rng: np.random.Generator) -> dict[str, Any]:
    cur = con.execute(f"SELECT * FROM {name} WHERE _ord = ?", [o])
    row = dict(zip([d[0] for d in cur.description], cur.fetchone()))
    cols = _candidates(t)[kind]
    column = cols[int(rng.integers(len(cols)))]
    original = row.get(column)
    injected: Any
    target = o
    if kind == "missing_required":
        injected = None
    elif kind == "inconsistent_value":
        value = str(original) if original is not None else t.column(column).allowed[0]  # type: ignore[index]
        injected = value.upper() if rng.random() < 0.5 else value[:1].upper() + value[1:]
    elif kind == "duplicate_key":
        target = o + 0.5
        con.execute(f"INSERT INTO {name} SELECT * REPLACE (_ord + 0.5 AS _ord) FROM {name} WHERE _ord = ?", [o])
        column, injected = ",".join(t.primary_key), None
        original = None
    elif kind == "impossible_date":
        pairs = [(a, b) for a, b in _date_pairs(t) if row.get(a) is not None and row.get(b) is not None]
        if pairs:  # a later date moved before its earlier partner
            column, earlier = pairs[int(rng.integers(len(pairs)))]
            original = row[column]
            injected = row[earlier] - timedelta(days=int(rng.integers(1, 60)))
        else:  # a date outside any plausible range
            column = next((c for c in cols if row.get(c) is not None), cols[0])
            original, injected = row.get(column), OUT_OF_RANGE_DATE
    else:  # orphan_foreign_key
        filled = [c for c in cols if row.get(c) is not None]
        column = filled[int(rng.integers(len(filled)))] if filled else column
        original = row.get(column)
        injected = f"X{original}" if original is not None else "X-UNKNOWN"
    if kind != "duplicate_key":
        con.execute(f"UPDATE {name} SET {column} = ? WHERE _ord = ?", [injected, o])
    key = {k: _show(row[k]) for k in t.primary_key}
    return {"kind": kind, "table": t.name, "key": key, "column": column, "original": _show(original),
            "injected": _show(injected), "_ord": target}

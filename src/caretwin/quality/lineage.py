"""Lineage: what each table was built from, under which rules, with rows in, out and quarantined."""

from __future__ import annotations

import json
from typing import Any

from caretwin.errors import CaretwinError
from caretwin.model.schema import table
from caretwin.workspace import Workspace


def lineage(ws: Workspace, table_name: str) -> list[dict[str, Any]]:
    """Every recorded step that wrote `table_name`, newest first."""
    try:
        table(table_name)
    except KeyError as exc:
        raise CaretwinError(exc.args[0]) from None
    rows = ws.con.execute(
        "SELECT l.load_id, l.step, l.recorded_at, l.inputs, l.rules, l.rows_in, l.rows_out, l.rows_quarantined, "
        "l.rows_repaired, d.format, d.source FROM _lineage l LEFT JOIN _loads d USING (load_id) "
        "WHERE l.table_name = ? ORDER BY l.recorded_at DESC, l.load_id DESC", [table_name]).fetchall()
    return [{
        "load_id": r[0], "step": r[1], "recorded_at": r[2].isoformat(timespec="seconds") + "Z",
        "inputs": json.loads(r[3]), "rules": json.loads(r[4]), "rows_in": r[5], "rows_out": r[6],
        "rows_quarantined": r[7], "rows_repaired": r[8], "format": r[9], "source": r[10],
    } for r in rows]

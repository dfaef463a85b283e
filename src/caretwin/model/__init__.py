"""The canonical data model that every adapter maps into and every later layer reads."""

from caretwin.model.schema import (
    SCHEMA_VERSION,
    TABLES,
    Column,
    RowCheck,
    Table,
    load_order,
    table,
)

__all__ = ["SCHEMA_VERSION", "TABLES", "Column", "RowCheck", "Table", "load_order", "table"]

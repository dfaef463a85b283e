"""Render the canonical data model as Markdown (the source of docs/data-model.md)."""

from __future__ import annotations

from caretwin.model.schema import SCHEMA_VERSION, TABLES, Column


def _constraints(col: Column) -> str:
    parts: list[str] = []
    if col.allowed:
        label = "each of" if col.list_separator else "one of"
        parts.append(f"{label} {', '.join(f'`{v}`' for v in col.allowed)}")
    lo, hi = col.bounds
    if lo is not None and hi is not None:
        parts.append(f"{lo} to {hi}")
    elif lo is not None:
        parts.append(f"≥ {lo}")
    elif hi is not None:
        parts.append(f"≤ {hi}")
    if col.pattern:
        parts.append(f"matches `{col.pattern}`")
    if col.references:
        parts.append(f"references `{col.references}`")
    if col.pseudonymised:
        parts.append("pseudonymised at ingest")
    return "; ".join(parts).replace("|", "\\|")


def render_markdown() -> str:
    """The whole model: one section per table, one row per column."""
    lines = [
        "# The canonical data model",
        "",
        f"Schema version **{SCHEMA_VERSION}**. Generated from `caretwin.model.schema` by "
        "`caretwin schema --markdown`; do not edit by hand (a test compares them).",
        "",
        "Types: `string`, `integer` (64-bit), `float` (64-bit), `boolean` (`true`/`false`), "
        "`date` (ISO 8601, `YYYY-MM-DD`). An empty CSV field is a missing value.",
        "",
    ]
    for t in TABLES:
        lines += [f"## `{t.name}`", "", t.description, "", f"Primary key: `{', '.join(t.primary_key)}`.", ""]
        lines += ["| column | type | required | unit | meaning | constraints |", "|---|---|---|---|---|---|"]
        for c in t.columns:
            lines.append(
                f"| `{c.name}` | {c.dtype} | {'yes' if c.required else 'no'} | {c.unit or ''} | "
                f"{c.description} | {_constraints(c)} |"
            )
        if t.checks:
            lines += ["", "Row checks:", ""]
            lines += [f"- `{chk.name}`: refused when {chk.message}." for chk in t.checks]
        lines.append("")
    return "\n".join(lines)

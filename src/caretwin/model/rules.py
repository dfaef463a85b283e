"""Row rules generated from the canonical model's metadata.

The loader uses them to decide what to quarantine; the quality engine reports on them.
Each rule is a SQL predicate, TRUE when a row breaks it, written over a relation whose
columns hold the typed value of each canonical column (`typed`) and, for raw sources,
the text as received (`raw`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from caretwin.model.schema import Column, Table

RULES_VERSION = "model-rules/2"


@dataclass(frozen=True)
class Rule:
    name: str  # kind:table.column, e.g. value_set:members.sex
    table: str
    column: str | None
    kind: str  # required | type | value_set | range | pattern | row
    category: str  # Kahn: conformance | completeness | plausibility
    message: str
    predicate: str
    shown: str  # SQL for the offending value, shown in errors (NULL for person identifiers)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _literal(c: Column, bound: float | str) -> str:
    return f"DATE '{bound}'" if c.dtype == "date" else repr(bound)


def column_rules(t: Table, typed: dict[str, str], missing: dict[str, str], raw: dict[str, str] | None = None) -> list[Rule]:
    """Rules for every column in `typed` (column -> typed SQL) and every row check they cover.

    `missing[c]` is the SQL that is TRUE when the source left column c empty; `raw[c]`,
    the value as received, is what error messages show.
    """
    out: list[Rule] = []
    for c in t.columns:
        if c.name not in typed:
            continue
        v, gone = typed[c.name], missing[c.name]
        shown = "NULL" if c.pseudonymised else f"CAST({(raw or typed)[c.name]} AS VARCHAR)"
        at = f"{t.name}.{c.name}"

        def add(kind: str, category: str, message: str, predicate: str, shown: str = shown, at: str = at,
                column: str = c.name) -> None:
            out.append(Rule(f"{kind}:{at}", t.name, column, kind, category, message, predicate, shown))

        if c.required:
            add("required", "completeness", "required value is missing", gone)
        add("type", "conformance", f"not a valid {c.dtype}" + (" (YYYY-MM-DD)" if c.dtype == "date" else ""),
            f"NOT ({gone}) AND {v} IS NULL")
        if c.allowed and c.list_separator:
            items = "[" + ", ".join(map(_quote, c.allowed)) + "]"
            add("value_set", "conformance", f"contains a value not in: {', '.join(c.allowed)}",
                f"NOT list_has_all({items}, string_split({v}, {_quote(c.list_separator)}))")
        elif c.allowed:
            add("value_set", "conformance", f"not one of: {', '.join(c.allowed)}",
                f"{v} NOT IN ({', '.join(map(_quote, c.allowed))})")
        lo, hi = c.bounds
        bounds = [f"{v} {op} {_literal(c, b)}" for b, op in ((lo, "<"), (hi, ">")) if b is not None]
        finite = c.dtype == "float"  # NaN and infinity parse as numbers but are no count, capacity or cost
        if bounds or finite:
            add("range", "plausibility", ("not a finite number, or outside " if finite else "outside ")
                + f"the allowed range [{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]",
                " OR ".join(bounds + ([f"NOT isfinite({v})"] if finite else [])))
        if c.pattern:
            add("pattern", "conformance", f"does not match the pattern {c.pattern}",
                f"NOT regexp_full_match({v}, {_quote(c.pattern)})")
    for chk in t.checks:
        if all(col in typed for col in chk.columns):
            names = re.compile(r"\b(" + "|".join(chk.columns) + r")\b")
            pred = names.sub(lambda m: f"({typed[m.group(1)]})", chk.violated_when)
            shown = " || ', ' || ".join(f"'{n}=' || coalesce(CAST({typed[n]} AS VARCHAR), '')" for n in chk.columns)
            out.append(Rule(f"row:{t.name}.{chk.name}", t.name, None, "row", "plausibility", chk.message, pred, shown))
    return out

"""The canonical data model is declared once, consistent, and its docs are generated from it."""

from pathlib import Path

from caretwin.model import SCHEMA_VERSION, TABLES, load_order, table
from caretwin.model.docs import render_markdown

DOCS = Path(__file__).parents[1] / "docs"


def test_every_reference_names_an_existing_key_column():
    for t in TABLES:
        for col in t.foreign_keys:
            ref_table, ref_col = col.references.split(".")
            assert ref_col in table(ref_table).primary_key, f"{t.name}.{col.name} -> {col.references}"


def test_load_order_puts_referenced_tables_first():
    order = [t.name for t in load_order()]
    assert sorted(order) == sorted(t.name for t in TABLES)
    for t in TABLES:
        for col in t.foreign_keys:
            assert order.index(col.references.split(".")[0]) <= order.index(t.name)


def test_keys_are_required_and_person_ids_are_pseudonymised():
    for t in TABLES:
        for k in t.primary_key:
            assert t.column(k).required, f"{t.name}.{k}"
        for col in t.columns:
            if col.name == "member_id":
                assert col.pseudonymised, f"{t.name}.member_id must be pseudonymised"


def test_row_checks_only_name_columns_of_their_table():
    for t in TABLES:
        for chk in t.checks:
            assert set(chk.columns) <= set(t.column_names)


def test_data_model_docs_are_generated_from_the_code():
    text = (DOCS / "data-model.md").read_text()
    assert text == render_markdown(), "docs/data-model.md is stale: run `make docs`"
    assert SCHEMA_VERSION in text

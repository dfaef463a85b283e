"""Where adapters put canonical rows: pseudonymised as they arrive, spilled to Parquet in chunks.

Adapters stream their source and call `Staging.add`; memory holds at most one chunk per
table. `finish` writes the files the canonical loader reads, so every adapter shares the
loader's cleansing, rules, quarantine and lineage.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from caretwin.governance.privacy import pseudonymise
from caretwin.model.schema import table

CHUNK_ROWS = 50_000


class Staging:
    """Canonical rows from one adapter run, buffered per table and written to Parquet in chunks."""

    def __init__(self, folder: Path, key: bytes, *, merge: dict[str, str] | None = None):
        self.folder = folder
        self.key = key
        self.merge = merge or {}  # table -> key column: rows with the same key are combined
        self.buffers: dict[str, dict[str, list[Any]]] = {}
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = defaultdict(int)
        self.sources: dict[str, set[str]] = defaultdict(set)  # source file -> tables it fed
        self._hidden: dict[str, tuple[str, ...]] = {}
        self._cache: dict[str, str] = {}

    def pseudonym(self, value: str) -> str:
        hit = self._cache.get(value)
        if hit is None:
            if len(self._cache) > 500_000:
                self._cache.clear()
            hit = self._cache[value] = pseudonymise(value, self.key)
        return hit

    def add(self, name: str, row: dict[str, Any], source_file: str, source_row: int | None = None) -> None:
        """Stage one canonical row; person identifiers are replaced by pseudonyms here."""
        buf = self.buffers.get(name)
        if buf is None:
            t = table(name)
            self._hidden[name] = tuple(c.name for c in t.columns if c.pseudonymised)
            buf = self.buffers[name] = {c: [] for c in (*t.column_names, "_source_file", "_source_row")}
        for c in self._hidden[name]:
            v = row.get(c)
            if v is not None:
                row[c] = self.pseudonym(str(v))
        for c, values in buf.items():
            if c == "_source_file":
                values.append(source_file)
            elif c == "_source_row":
                values.append(source_row)
            else:
                v = row.get(c)
                values.append(None if v is None else str(v))
        self.rows[name] += 1
        self.sources[source_file].add(name)
        if len(buf["_source_file"]) >= CHUNK_ROWS:
            self._flush(name)

    def _flush(self, name: str) -> None:
        buf = self.buffers[name]
        if not buf["_source_file"]:
            return
        arrays = {c: pa.array(v, type=pa.int64() if c == "_source_row" else pa.string()) for c, v in buf.items()}
        data = pa.table(arrays)
        if name not in self.writers:
            target = self.folder / (f"_{name}.parquet" if name in self.merge else f"{name}.parquet")
            self.writers[name] = pq.ParquetWriter(target, data.schema)
        self.writers[name].write_table(data)
        for v in buf.values():
            v.clear()

    def finish(self) -> dict[str, int]:
        """Close every file (combining rows to merge); returns rows staged per table."""
        for name in list(self.buffers):
            self._flush(name)
            self.writers[name].close()
        for name, key in self.merge.items():
            if name not in self.writers:
                continue
            cols = [c for c in self.buffers[name] if c != key]
            con = duckdb.connect()
            src, dst = self.folder / f"_{name}.parquet", self.folder / f"{name}.parquet"
            aggs = ", ".join(f"first({c} ORDER BY _source_row) FILTER (WHERE {c} IS NOT NULL) AS {c}" for c in cols)
            con.execute(f"COPY (SELECT {key}, {aggs} FROM read_parquet('{src}') GROUP BY {key} ORDER BY min(_source_file), "
                        f"min(_source_row)) TO '{dst}' (FORMAT parquet)")
            self.rows[name] = con.execute(f"SELECT count(*) FROM read_parquet('{dst}')").fetchone()[0]
            con.close()
            src.unlink()
        return dict(self.rows)

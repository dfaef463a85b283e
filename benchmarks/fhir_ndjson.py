"""FHIR Bulk NDJSON adapter speed on one core. Prints figures; asserts nothing.

    python benchmarks/fhir_ndjson.py [--copies N] [--data DIR]

Builds a larger Bulk export by copying the 10-patient sample in ../shared/data N times with
fresh ids (references rewritten to match), then times (1) the adapter reading and mapping
every resource into staged rows and (2) the whole `ingest` (adapter, checks, load, enrichment).
DuckDB is held to one thread so the figure is a one-core figure. Target: 20,000 resources/s.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from caretwin import Workspace
from caretwin.ingest import ingest
from caretwin.ingest.fhir import FhirReader, fhir_files
from caretwin.ingest.maps import CodeMaps
from caretwin.ingest.regions import RegionResolver
from caretwin.ingest.staging import Staging

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "synthea_bulk_fhir_10pt"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-([0-9a-f]{12})")


def build(src: Path, out: Path, copies: int) -> int:
    """Write `copies` id-shifted copies of every NDJSON file; returns the resource count."""
    out.mkdir()
    n = 0
    for f in sorted(src.glob("*.ndjson")):
        if f.name == "log.ndjson":
            continue
        text = f.read_text()
        with (out / f.name).open("w") as fh:
            for c in range(copies):
                fh.write(UUID.sub(lambda m, c=c: m.group(0)[:-12] + f"{int(m.group(1), 16) ^ c:012x}", text))
                n += text.count("\n")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"sample data not found at {args.data}")
    with tempfile.TemporaryDirectory(prefix="caretwin-bench-") as tmp:
        root = Path(tmp)
        n = build(args.data, root / "bulk", args.copies)
        size = sum(p.stat().st_size for p in (root / "bulk").iterdir()) / 1e6
        staging = root / "staging"
        staging.mkdir()
        st = Staging(staging, b"k" * 32, merge={"claims": "claim_id"})
        reader = FhirReader(st, RegionResolver(), CodeMaps())
        t0 = time.perf_counter()
        for p in fhir_files(root / "bulk"):
            reader.read_path(p)
        reader.finish(None)
        rows = st.finish()
        dt = time.perf_counter() - t0
        mapped = sum(reader.read.values())
        print(f"fhir adapter  {n:>10,} resources ({size:,.0f} MB, {mapped:,} mapped, {n - mapped:,} counted only) "
              f"in {dt:6.2f} s = {n / dt:>9,.0f} resources/s ({mapped / dt:,.0f} mapped/s); {sum(rows.values()):,} rows")
        ws = Workspace.create(root / "ws")
        ws.settings["threads"] = 1
        t0 = time.perf_counter()
        report = ingest(ws, root / "bulk")
        dt = time.perf_counter() - t0
        print(f"fhir ingest   {n:>10,} resources in {dt:6.2f} s = {n / dt:>9,.0f} resources/s "
              f"(adapter, checks, load and enrichment; {report.rows:,} rows, DuckDB on 1 thread)")
        ws.close()


if __name__ == "__main__":
    main()

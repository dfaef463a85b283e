"""Risk scoring benchmark: score 1,000,000 members with an approved model and queue the flags.

    python benchmarks/risk_scoring.py [--members 1000000] [--kind logistic|boosted|both] [--workspace PATH]

Prints figures; asserts nothing. Target (issue 7, 2-core machine): scoring 1M members in <= 30 s.

A 20,000-member synthetic county (12 months of history) is generated and ingested; models for ED visits
within 90 days are trained on it. The scoring workspace holds whole copies of that county under new ids
(members, encounters, housing events), enough that at least `--members` are enrolled on the last day, so
the data look like the county's. The time measured is `caretwin.risk.review.score`: features for everyone
enrolled on the last day, the scores, and writing scores and flags. Each model is scored twice: the second run also compares
with the previous scores (rises) and skips members with open flags. Reasons in words are worked out when a
reviewer first opens a flag; the time to open one is printed too.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from caretwin import Workspace
from caretwin.ingest import ingest
from caretwin.risk.registry import approve, register
from caretwin.risk.review import list_flags, score, show
from caretwin.risk.train import fit_outcome
from caretwin.synth import CountyParams, write_extract

COPIED = {  # table -> its key columns made unique per copy
    "members": ("member_id",), "encounters": ("encounter_id", "member_id"),
    "housing_events": ("housing_event_id", "member_id"),
}


def build(root: Path, members: int) -> tuple[Workspace, Workspace]:
    write_extract(CountyParams(members=20_000, regions=8, months=12, seed=3), root / "extract")
    small = Workspace.create(root / "county")
    ingest(small, root / "extract")
    # whole copies, enough that at least `members` are enrolled on the last day (the ones scored)
    enrolled, = small.con.execute("""SELECT count(*) FROM members WHERE enrollment_end IS NULL AND death_date IS NULL
        """).fetchone()
    small.close()
    big = Workspace.create(root / "big")
    copies = -(-members // enrolled)
    con = big.con
    con.execute(f"ATTACH '{root / 'county' / 'caretwin.duckdb'}' AS c (READ_ONLY)")
    for table in ("regions", "unit_costs"):
        con.execute(f"INSERT INTO {table} SELECT * FROM c.{table}")
    for table, keys in COPIED.items():
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        sel = ", ".join(f"{c} || '-' || k AS {c}" if c in keys else c for c in cols)
        con.execute(f"INSERT INTO {table} SELECT {sel} FROM c.{table}, range({copies}) t(k)")
    con.execute("DETACH c")
    return Workspace.open(root / "county"), big


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--kind", choices=("logistic", "boosted", "both"), default="both")
    ap.add_argument("--workspace", type=Path, help="Folder to build in (default: a temporary one).")
    args = ap.parse_args()
    root = args.workspace or Path(tempfile.mkdtemp(prefix="caretwin-risk-"))
    t0 = time.perf_counter()
    small, big = build(root, args.members)
    n, = big.con.execute("SELECT count(*) FROM members").fetchone()
    print(f"built: {n:,} members (copies of the county) in {time.perf_counter() - t0:.1f} s ({root})")
    for kind in ("logistic", "boosted") if args.kind == "both" else (args.kind,):
        t0 = time.perf_counter()
        f = fit_outcome(small, "ed_90d", kind=kind, n_boot=20)
        f.card.name = f"ed-90d-{kind}"
        card = register(big, f.model, f.card, by="benchmark")
        approve(big, card.name, card.version, ["care_management"], by="benchmark")
        print(f"{kind}: trained on {f.card.validation['test examples'] * 3:,} examples in "
              f"{time.perf_counter() - t0:.1f} s; held-out AUC {f.evaluation['auc']}")
        for attempt in ("first", "second"):
            t0 = time.perf_counter()
            counts = score(big, card.name)
            dt = time.perf_counter() - t0
            print(f"{kind} {attempt} scoring: {counts['scored']:,} members in {dt:.1f} s "
                  f"({counts['scored'] / dt:,.0f} members/s), {counts['flagged']:,} new flags")
        queue = list_flags(big, reviewer="benchmark")[:20]
        t0 = time.perf_counter()
        for q in queue:
            show(big, q["flag_id"], reviewer="benchmark")  # reasons are worked out on first look
        print(f"{kind} opening a flag (reasons in words on first look): "
              f"{(time.perf_counter() - t0) / len(queue) * 1000:.0f} ms each, over {len(queue)} flags")


if __name__ == "__main__":
    main()

"""How long the dashboard's pages take on the demo workspace (issue 9's target: under a second each).

    python benchmarks/dashboard.py [--members 5000] [--repeat 5]

Prints figures; asserts nothing. Builds the demo (`caretwin demo`: a 5,000-member county, three scenario
runs of 40 replications, a scored risk model and a demo user per role) in a temporary folder, then asks
for each page as the role that would open it, through the application in-process (no network), and
prints the first request (nothing cached) and the median of the next `--repeat`.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from caretwin.demo import run_journey
from caretwin.web.views import create_site


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        j = run_journey(Path(tmp) / "demo", members=args.members, echo=lambda s: None)
        print(f"demo workspace of {args.members:,} members built in {time.perf_counter() - t0:.0f} s")
        logins = {line.split("\t")[0]: line.split("\t")[2]
                  for line in (j.workspace / "demo-logins.txt").read_text().splitlines()[1:]}
        t0 = time.perf_counter()
        app = create_site(j.workspace)
        print(f"server start: {time.perf_counter() - t0:.2f} s")

        def client(name: str, purpose: str) -> TestClient:
            c = TestClient(app)
            c.post("/login", data={"name": name, "password": logins[name], "purpose": purpose})
            return c

        analyst, coordinator = client("analyst", "planning"), client("coordinator", "care_management")
        auditor, admin = client("auditor", "audit"), client("admin", "administration")
        runs = "&".join(f"run={r}" for _, r in j.runs)
        flag = re.search(r'href="/review/([0-9a-f]+)"', coordinator.get("/review").text).group(1)
        pages = [(analyst, "/overview"), (analyst, "/quality"), (analyst, "/quality?table=members"),
                 (analyst, "/scenarios"), (analyst, f"/scenarios/compare?{runs}"), (analyst, "/providers"),
                 (analyst, "/equity"), (coordinator, "/review"), (coordinator, f"/review/{flag}"),
                 (admin, "/governance"), (auditor, "/governance/audit"), (admin, "/governance/users")]
        print(f"{'page':<34}{'status':>7}{'first':>10}{'then (median)':>16}{'KB':>8}")
        for c, path in pages:
            times = []
            for _ in range(args.repeat + 1):
                t = time.perf_counter()
                res = c.get(path)
                times.append(time.perf_counter() - t)
            label = re.sub(r"run=[^&]+", "run=…", path)[:33]
            print(f"{label:<34}{res.status_code:>7}{times[0] * 1000:>8.0f}ms{statistics.median(times[1:]) * 1000:>14.0f}ms"
                  f"{len(res.content) / 1024:>8.0f}")


if __name__ == "__main__":
    main()

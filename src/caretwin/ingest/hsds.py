"""Open Referral HSDS adapter: 1.x datapackages and 3.0 (CSV or JSON tables).

Each service at a location becomes a provider (a service with no location becomes one
provider based in `unassigned`). Its service line comes from its taxonomy terms through
the `hsds_taxonomy` map (the longest matching code prefix wins; among several terms, the
most specific). Services no term maps are reported with their ids, never guessed.
Directories state no capacity, so providers from HSDS have none until another source or
a calibration supplies it.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from caretwin.errors import CaretwinError
from caretwin.ingest.maps import CodeMaps
from caretwin.ingest.regions import RegionResolver
from caretwin.ingest.staging import Staging

# canonical name -> names the table goes by (3.0 singular, 1.x plural)
TABLES = {
    "organization": ("organization", "organizations"),
    "service": ("service", "services"),
    "location": ("location", "locations"),
    "service_at_location": ("service_at_location", "services_at_location"),
    "address": ("address", "physical_address", "physical_addresses"),
    "schedule": ("schedule", "regular_schedule", "regular_schedules"),
    "service_taxonomy": ("service_taxonomy", "services_taxonomy"),
    "taxonomy": ("taxonomy_term", "taxonomy"),
    "attribute": ("attribute", "attributes"),
}
# Columns the adapter cannot do without, per table.
NEEDS = {
    "organization": ("id",), "service": ("id",), "location": ("id",), "service_at_location": ("id", "service_id", "location_id"),
    "service_taxonomy": ("service_id", "taxonomy_id"), "taxonomy": ("id",), "attribute": ("link_id",), "address": ("location_id",),
}
STATUS = {"active": "active", "inactive": "closed", "defunct": "closed", "temporarily closed": "suspended"}


def is_hsds(source: Path) -> bool:
    if not source.is_dir():
        return False
    if (source / "datapackage.json").is_file():
        return True
    names = {p.stem.lower() for p in source.glob("*.*")} | {p.stem.lower() for p in source.glob("data/*.*")}
    return bool({"service", "services"} & names) and bool({"organization", "organizations"} & names)


class HsdsDirectory:
    """The tables of one HSDS directory, whatever version and file format."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.paths: dict[str, Path] = {}
        self._cache: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.version = "3.0"
        pkg = folder / "datapackage.json"
        declared: dict[str, Path] = {}
        if pkg.is_file():
            try:
                doc = json.loads(pkg.read_text())
            except json.JSONDecodeError as exc:
                raise CaretwinError(f"{pkg}: not valid JSON: {exc}") from None
            self.version = "1.x"
            for res in doc.get("resources", []):
                if res.get("path") and (folder / res["path"]).is_file():
                    declared[res["name"]] = folder / res["path"]
        for canon, names in TABLES.items():
            for name in names:
                hit = declared.get(name) or next((p for d in (folder, folder / "data") for ext in (".csv", ".json")
                                                  if (p := d / f"{name}{ext}").is_file()), None)
                if hit:
                    self.paths[canon] = hit
                    if name.endswith("s") and name != "address" and not pkg.is_file():
                        self.version = "1.x"
                    break
        for required in ("organization", "service"):
            if required not in self.paths:
                raise CaretwinError(f"{folder}: HSDS directory without a {required} table")

    def rows(self, name: str) -> list[tuple[int, dict[str, Any]]]:
        if name not in self._cache:
            rows = self._read(name)
            for n, row in rows:
                missing = [c for c in NEEDS.get(name, ()) if row.get(c) in (None, "")]
                if missing:
                    raise CaretwinError(f"{self.paths[name]}: row {n}: {', '.join(missing)} is empty or missing")
            self._cache[name] = rows
        return self._cache[name]

    def _read(self, name: str) -> list[tuple[int, dict[str, Any]]]:
        path = self.paths.get(name)
        if path is None:
            return []
        if path.suffix == ".json":
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise CaretwinError(f"{path}: not valid JSON: {exc}") from None
            if isinstance(data, dict):
                data = data.get("contents") or data.get("items") or [data]
            return list(enumerate(data, start=1))
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return [(n, {k.strip(): (v or "").strip() for k, v in row.items() if k}) for n, row in enumerate(csv.DictReader(fh), start=1)]


def _float(v: Any) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def read_hsds(folder: Path, st: Staging, regions: RegionResolver, maps: CodeMaps) -> tuple[list[Path], dict[str, Any]]:
    d = HsdsDirectory(folder)
    orgs = {str(r["id"]): r for _, r in d.rows("organization")}
    services = d.rows("service")
    terms = {str(r["id"]): str(r.get("code") or r["id"]) for _, r in d.rows("taxonomy")}
    codes: dict[str, set[str]] = defaultdict(set)
    for _, r in d.rows("service_taxonomy"):
        codes[str(r["service_id"])].add(terms.get(str(r["taxonomy_id"]), str(r["taxonomy_id"])))
    for _, r in d.rows("attribute"):
        if r.get("link_type", "service") == "service" and r.get("taxonomy_term_id"):
            codes[str(r["link_id"])].add(terms.get(str(r["taxonomy_term_id"]), str(r["taxonomy_term_id"])))
    for _, r in services:
        for code in str(r.get("taxonomy_ids") or "").replace(";", ",").split(","):
            if code.strip():
                codes[str(r["id"])].add(terms.get(code.strip(), code.strip()))
    addresses = {str(r["location_id"]): r for _, r in d.rows("address")
                 if r.get("location_id") and r.get("address_type", "physical") == "physical"}
    locations = {}
    for _, r in d.rows("location"):
        a = addresses.get(str(r["id"]), {})
        locations[str(r["id"])] = regions.resolve(county=a.get("region"), state=a.get("state_province"),
                                                  postal_code=a.get("postal_code"), lat=_float(r.get("latitude")),
                                                  lon=_float(r.get("longitude")))
    at: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for n, r in d.rows("service_at_location"):
        at[str(r["service_id"])].append((n, r))
    unmapped: list[dict[str, str]] = []
    lines: Counter = Counter()
    sal_file = str(d.paths.get("service_at_location", d.paths["service"]))
    for n, svc in services:
        sid = str(svc["id"])
        hits = [h for c in codes.get(sid, ()) if (h := maps.service_line(c))]
        if not hits:
            unmapped.append({"service_id": sid, "name": str(svc.get("name") or "")[:80],
                             "taxonomy": ";".join(sorted(codes.get(sid, ()))) or "(none)"})
            continue
        line = max(hits, key=lambda h: (h[1], -len(h[0])))[0]
        org = orgs.get(str(svc.get("organization_id")), {})
        name = " - ".join(x for x in (str(org.get("name") or ""), str(svc.get("name") or "")) if x) or sid
        status = STATUS.get(str(svc.get("status") or "active").lower(), "active")
        places = at.get(sid) or [(None, None)]
        for m, sal in places:
            lines[line] += 1
            region = locations.get(str(sal["location_id"]), "unassigned") if sal else regions.resolve()
            pid = f"hsds:{sal['id']}" if sal else f"hsds:service:{sid}"
            st.add("providers", {"provider_id": pid, "name": name, "service_line": line, "region_id": region,
                                 "status": status}, sal_file if sal else str(d.paths["service"]), m if sal else n)
    for r in regions.rows():
        st.add("regions", r, str(regions.path or "(derived from addresses)"))
    details = {
        "hsds_version": d.version,
        "rows_read": {k: len(d.rows(k)) for k in d.paths},
        "services": len(services), "services_mapped": len(services) - len(unmapped),
        "services_unmapped": len(unmapped), "unmapped_examples": unmapped[:50],
        "providers_by_service_line": dict(lines),
    }
    return list(d.paths.values()), details

"""Where people and providers are: a source address becomes a region, never a stored address.

A region definition file decides how (`--regions FILE`):

- CSV with `region_id`, `name` and one of `zip` (five digits or ZIP3) or `county` (with an
  optional `state`); optional `rurality` and `population` columns fill the regions table;
- GeoJSON FeatureCollection of Polygon / MultiPolygon features whose properties hold
  `region_id`, `name` and optionally `rurality` and `population`; points (lat/lon) are
  placed by point-in-polygon.

Without a file, a record's region is its three-digit ZIP (the Safe Harbor form, with the
sparsely populated prefixes listed by HHS replaced by 000), else `unassigned`: the same
rule for people and providers whatever the source, so they meet in the same regions.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from caretwin.errors import CaretwinError

UNASSIGNED = "unassigned"
# ZIP3 areas of 20,000 people or fewer (HHS de-identification guidance, 2000 census): shown as 000.
SPARSE_ZIP3 = frozenset(["036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878", "879", "884", "890", "893"])


def zip3(code: str | None) -> str | None:
    digits = re.sub(r"\D", "", code or "")[:5]
    if len(digits) < 3:
        return None
    z = digits[:3]
    return "000" if z in SPARSE_ZIP3 else z


@dataclass
class Region:
    region_id: str
    name: str
    rurality: str = "unknown"
    population: int | None = None
    lat: float | None = None
    lon: float | None = None


def _ring_contains(ring: list[list[float]], x: float, y: float) -> bool:
    """Even-odd rule for one linear ring of (lon, lat) points."""
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _polygon_contains(rings: list[list[list[float]]], x: float, y: float) -> bool:
    return _ring_contains(rings[0], x, y) and not any(_ring_contains(h, x, y) for h in rings[1:])


class RegionResolver:
    """Turns county, ZIP or coordinates into a region id, remembering the regions it used."""

    def __init__(self, definition: str | Path | None = None):
        self.path = Path(definition) if definition else None
        self.by_zip: dict[str, str] = {}
        self.by_county: dict[tuple[str, str], str] = {}
        self.polygons: list[tuple[str, list[list[list[list[float]]]]]] = []
        self.defined: dict[str, Region] = {}
        self.used: dict[str, Region] = {}
        if self.path:
            self._load(self.path)

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise CaretwinError(f"{path}: region definition file not found")
        if path.suffix.lower() in (".geojson", ".json"):
            try:
                doc = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise CaretwinError(f"{path}: not valid JSON: {exc}") from None
            for i, feat in enumerate(doc.get("features", []), start=1):
                props, geom = feat.get("properties") or {}, feat.get("geometry") or {}
                rid = props.get("region_id") or props.get("id")
                if not rid or geom.get("type") not in ("Polygon", "MultiPolygon"):
                    raise CaretwinError(f"{path}: feature {i}: needs a region_id property and a Polygon or MultiPolygon")
                polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
                self.polygons.append((str(rid), polys))
                self._define(str(rid), props)
            return
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or [])
            if not {"region_id", "name"} <= cols or not ({"zip", "county"} & cols):
                raise CaretwinError(f"{path}: needs columns region_id, name and zip or county; has {sorted(cols)}")
            for n, row in enumerate(reader, start=1):
                rid = (row.get("region_id") or "").strip()
                if not rid:
                    raise CaretwinError(f"{path}: row {n}: region_id is empty")
                if row.get("zip"):
                    z = re.sub(r"\D", "", row["zip"])
                    self.by_zip[z] = rid
                if row.get("county"):
                    self.by_county[(_norm(row["county"]), _norm(row.get("state") or ""))] = rid
                self._define(rid, row)

    def _define(self, rid: str, props: dict) -> None:
        pop = props.get("population")
        self.defined.setdefault(rid, Region(
            rid, str(props.get("name") or rid), str(props.get("rurality") or "unknown"),
            int(float(pop)) if pop not in (None, "") else None))

    def resolve(self, *, county: str | None = None, state: str | None = None, postal_code: str | None = None,
                lat: float | None = None, lon: float | None = None) -> str:
        rid = self._lookup(county, state, postal_code, lat, lon)
        if rid not in self.used:
            if rid in self.defined:
                self.used[rid] = self.defined[rid]
            elif rid.startswith("zip3-"):
                self.used[rid] = Region(rid, f"ZIP3 {rid[5:]}")
            else:
                self.used[rid] = Region(rid, "Unassigned (no usable location)")
        return rid

    def _lookup(self, county: str | None, state: str | None, postal_code: str | None,
                lat: float | None, lon: float | None) -> str:
        if self.path:
            if self.polygons and lat is not None and lon is not None:
                for rid, polys in self.polygons:
                    if any(_polygon_contains(p, lon, lat) for p in polys):
                        return rid
            if postal_code and self.by_zip:
                z = re.sub(r"\D", "", postal_code)
                rid = self.by_zip.get(z[:5]) or self.by_zip.get(z[:3])
                if rid:
                    return rid
            if county and self.by_county:
                rid = self.by_county.get((_norm(county), _norm(state or ""))) or self.by_county.get((_norm(county), ""))
                if rid:
                    return rid
            return UNASSIGNED
        z = zip3(postal_code)
        return f"zip3-{z}" if z else UNASSIGNED

    def rows(self) -> list[dict[str, object]]:
        """The regions used so far, as canonical `regions` rows."""
        return [{"region_id": r.region_id, "name": r.name, "rurality": r.rurality, "population": r.population,
                 "lat": r.lat, "lon": r.lon} for r in self.used.values()]


def _norm(s: str) -> str:
    return re.sub(r"\s+county$", "", s.strip().lower())

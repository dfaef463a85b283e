"""Real data in: FHIR bundles and Bulk NDJSON, Synthea CSV and HSDS directories map into the model.

Tests that read ../shared/data skip, saying so, when it is absent. Expected counts come
from the sources themselves (see ../shared/data/MANIFEST.md).
"""

import csv
import gzip
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from caretwin import Workspace
from caretwin.errors import CaretwinError
from caretwin.governance.privacy import pseudonymise
from caretwin.ingest import detect_format, ingest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared test data not found at {DATA}")
CA = DATA / "synthea_ca50"
BULK = DATA / "synthea_bulk_fhir_10pt"


def loaded(tmp_path, source, name="ws", **kw):
    ws = Workspace.create(tmp_path / name)
    report = ingest(ws, source, **kw)
    return ws, report


def by_class(ws):
    return dict(ws.con.execute("SELECT encounter_class, count(*) FROM encounters GROUP BY 1").fetchall())


@needs_data
def test_formats_are_detected_from_the_files():
    assert detect_format(CA / "csv") == "synthea"
    assert detect_format(CA / "fhir") == "fhir"
    assert detect_format(BULK) == "fhir"
    assert detect_format(DATA / "hsds_211miami") == "hsds"
    assert detect_format(DATA / "hsds1_sample" / "all_resources") == "hsds"


@needs_data
def test_fhir_bundles_load_with_counts_that_match_the_source(tmp_path):
    ws, report = loaded(tmp_path, CA / "fhir")
    counts = ws.counts()
    # per MANIFEST: 31 patient bundles plus the hospital and practitioner bundles
    assert counts["members"] == 31 and counts["encounters"] == 663 and counts["diagnoses"] == 433
    assert counts["providers"] == 173  # one per Organization
    assert counts["claims"] == 832  # every Claim; its ExplanationOfBenefit adds what was paid
    assert ws.con.execute("SELECT count(*) FROM claims WHERE paid_amount IS NOT NULL").fetchone()[0] == 663
    assert report.quarantined == {}
    assert report.details["resources_skipped"]["DiagnosticReport"] == 1059
    assert report.details["resources_read"]["Practitioner"] == 173  # read for references, never stored


@needs_data
def test_bulk_ndjson_resolves_conditional_references(tmp_path):
    ws, report = loaded(tmp_path, BULK)
    assert ws.counts()["members"] == 13 and ws.counts()["encounters"] == 1215 and ws.counts()["diagnoses"] == 555
    classes = by_class(ws)
    # per MANIFEST: AMB 1133, IMP 49, EMER 23, HH 9, VR 1 (class codes; some types refine them)
    assert classes["emergency"] == 23 and sum(classes.values()) == 1215
    assert classes.get("inpatient", 0) + classes.get("snf", 0) == 49
    assert classes.get("home", 0) + classes.get("hospice", 0) == 9
    unresolved = ws.con.execute(
        "SELECT count(*) FROM encounters WHERE facility_id IS NULL OR facility_id NOT IN (SELECT provider_id FROM providers)"
    ).fetchone()[0]
    assert unresolved == 0  # Organization?identifier=system|value references all resolved
    assert report.details["resources_skipped"]["(not a FHIR resource)"] == 4  # the export's log.ndjson


@needs_data
def test_gzipped_ndjson_gives_the_same_rows(tmp_path):
    src = tmp_path / "gz"
    src.mkdir()
    for f in BULK.glob("*.ndjson"):
        with f.open("rb") as a, gzip.open(src / (f.name + ".gz"), "wb") as b:
            shutil.copyfileobj(a, b)
    ws, _ = loaded(tmp_path, src)
    plain, _ = loaded(tmp_path, BULK, name="plain")
    assert ws.counts() == plain.counts()


@needs_data
def test_synthea_csv_loads_members_coverage_and_encounters(tmp_path):
    ws, report = loaded(tmp_path, CA / "csv")
    assert ws.counts()["members"] == 59 and ws.counts()["encounters"] == 2590 and ws.counts()["diagnoses"] == 1534
    # MANIFEST classes: wellness 1063, ambulatory 774, outpatient 463, emergency 98, inpatient 94, home 47,
    # urgentcare 37, snf 9, hospice 5
    assert by_class(ws) == {"ambulatory": 1063 + 774 + 463, "emergency": 98, "inpatient": 94, "home": 47,
                            "urgent_care": 37, "snf": 9, "hospice": 5}
    programs = Counter(r[0] for r in ws.con.execute("SELECT programs FROM members").fetchall())
    medicaid = {pid for pid, in ws.con.execute("SELECT member_id FROM members WHERE programs LIKE '%medicaid%'").fetchall()}
    assert medicaid, programs  # some of the California patients are on Medicaid
    # the latest payer transition of each patient decides the programme
    transitions = {}
    payers = {r["Id"]: r["NAME"] for r in csv.DictReader(open(CA / "csv" / "payers.csv"))}
    for r in csv.DictReader(open(CA / "csv" / "payer_transitions.csv")):
        if r["PATIENT"] not in transitions or r["START_YEAR"] >= transitions[r["PATIENT"]][0]:
            transitions[r["PATIENT"]] = (r["START_YEAR"], payers.get(r["PAYER"]), payers.get(r["SECONDARY_PAYER"]))
    expected = {pseudonymise(p, ws.key()) for p, (_, a, b) in transitions.items() if "Medicaid" in (a, b)}
    assert medicaid == expected
    assert report.quarantined == {}


@needs_data
def test_no_direct_identifier_reaches_the_workspace(tmp_path):
    ws, _ = loaded(tmp_path, CA / "csv")
    patients = list(csv.DictReader(open(CA / "csv" / "patients.csv")))
    secrets = {p[c] for p in patients for c in ("Id", "SSN", "FIRST", "LAST", "ADDRESS", "PASSPORT", "DRIVERS")
               if p[c] and len(p[c]) > 4}
    text = []
    for (name,) in ws.con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
        text += [str(v) for row in ws.con.execute(f"SELECT * FROM {name}").fetchall() for v in row]
    blob = "\n".join(text)
    leaked = [s for s in secrets if s in blob]
    assert leaked == []
    # a birth date may equal a day of care, but the member record holds only the year
    member_text = " ".join(str(v) for row in ws.con.execute("SELECT * FROM members").fetchall() for v in row)
    assert not [p["BIRTHDATE"] for p in patients if p["BIRTHDATE"] in member_text]
    years = dict(ws.con.execute("SELECT member_id, birth_year FROM members").fetchall())
    some = patients[0]
    assert years[pseudonymise(some["Id"], ws.key())] == int(some["BIRTHDATE"][:4])


@needs_data
def test_synthea_csv_and_fhir_agree_on_the_patients_in_both(tmp_path):
    csv_ws, _ = loaded(tmp_path, CA / "csv", name="csv")
    fhir_ws, _ = loaded(tmp_path, CA / "fhir", name="fhir")
    ids = [p["Id"] for p in csv.DictReader(open(CA / "csv" / "patients.csv"))]

    def people(ws):
        rows = ws.con.execute("SELECT member_id, birth_year, sex, race_ethnicity, region_id, death_date FROM members").fetchall()
        return {r[0]: r[1:] for r in rows}

    def visits(ws):
        rows = ws.con.execute("SELECT member_id, encounter_class, count(*) FROM encounters GROUP BY ALL").fetchall()
        return Counter({(m, c): n for m, c, n in rows})

    a, b = people(csv_ws), people(fhir_ws)
    both = [i for i in ids if pseudonymise(i, fhir_ws.key()) in b]
    assert len(both) == 31
    for i in both:
        assert a[pseudonymise(i, csv_ws.key())] == b[pseudonymise(i, fhir_ws.key())]
    va, vb = visits(csv_ws), visits(fhir_ws)
    for i in both:
        pa, pb = pseudonymise(i, csv_ws.key()), pseudonymise(i, fhir_ws.key())
        assert {c: n for (m, c), n in va.items() if m == pa} == {c: n for (m, c), n in vb.items() if m == pb}


@needs_data
def test_hsds_211_miami_maps_services_to_providers_and_reports_the_rest(tmp_path):
    ws, report = loaded(tmp_path, DATA / "hsds_211miami")
    d = report.details
    assert d["hsds_version"] == "1.x" and d["services"] == 4089 and d["rows_read"]["service_at_location"] == 4089
    assert ws.counts()["providers"] + d["services_unmapped"] == 4089  # one service at one location each
    assert d["services_unmapped"] > 0 and all(e["service_id"] for e in d["unmapped_examples"])
    lines = dict(ws.con.execute("SELECT service_line, count(*) FROM providers GROUP BY 1").fetchall())
    assert lines["behavioral_health"] > 100 and lines["supportive_housing"] >= 1 and lines["home_health"] >= 1
    assert ws.con.execute("SELECT count(*) FROM providers WHERE capacity IS NOT NULL").fetchone()[0] == 0


@needs_data
def test_hsds_sample_datapackage_loads_and_reports_every_unmapped_service(tmp_path):
    ws, report = loaded(tmp_path, DATA / "hsds1_sample" / "all_resources")
    assert report.details["services"] == 13 and report.details["services_unmapped"] == 13
    assert ws.counts()["providers"] == 0  # its taxonomy is fictional: nothing is guessed


def _hsds3(folder: Path, as_json: bool) -> Path:
    tables = {
        "organization": [{"id": "o1", "name": "Eastside Care"}, {"id": "o2", "name": "City Food Bank"}],
        "service": [{"id": "s1", "organization_id": "o1", "name": "Personal care aides", "status": "active"},
                    {"id": "s2", "organization_id": "o1", "name": "Crisis team", "status": "inactive"},
                    {"id": "s3", "organization_id": "o2", "name": "Food pantry", "status": "active"}],
        "location": [{"id": "l1", "organization_id": "o1", "name": "Main office", "latitude": "", "longitude": ""}],
        "address": [{"id": "a1", "location_id": "l1", "address_1": "1 Main St", "city": "Springfield",
                     "state_province": "IL", "postal_code": "62701", "address_type": "physical"}],
        "service_at_location": [{"id": "sl1", "service_id": "s1", "location_id": "l1"}],
        "taxonomy_term": [{"id": "t1", "code": "PH-3300.6500", "name": "Personal Care"},
                          {"id": "t2", "code": "RP-1500.3300", "name": "In Person Crisis Intervention"},
                          {"id": "t3", "code": "BD-1800.2000", "name": "Food Pantries"}],
        "attribute": [{"id": "x1", "link_id": "s1", "link_type": "service", "taxonomy_term_id": "t1"},
                      {"id": "x2", "link_id": "s2", "link_type": "service", "taxonomy_term_id": "t2"},
                      {"id": "x3", "link_id": "s3", "link_type": "service", "taxonomy_term_id": "t3"}],
    }
    folder.mkdir()
    for name, rows in tables.items():
        if as_json:
            (folder / f"{name}.json").write_text(json.dumps(rows))
        else:
            with (folder / f"{name}.csv").open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
    return folder


@pytest.mark.parametrize("as_json", [False, True], ids=["csv", "json"])
def test_hsds_3_tables_map_through_attributes_and_taxonomy_terms(tmp_path, as_json):
    ws, report = loaded(tmp_path, _hsds3(tmp_path / "hsds3", as_json))
    rows = ws.con.execute("SELECT provider_id, service_line, region_id, status FROM providers ORDER BY 1").fetchall()
    assert rows == [("hsds:service:s2", "mobile_crisis", "unassigned", "closed"),
                    ("hsds:sl1", "hcbs", "zip3-627", "active")]
    assert report.details["services_unmapped"] == 1
    assert report.details["unmapped_examples"][0]["taxonomy"] == "BD-1800.2000"


@needs_data
def test_a_region_file_places_people_by_point_in_polygon(tmp_path):
    square = [[-125, 30], [-110, 30], [-110, 45], [-125, 45], [-125, 30]]
    geo = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"region_id": "west", "name": "West", "rurality": "urban", "population": 1000},
         "geometry": {"type": "Polygon", "coordinates": [square]}}]}
    f = tmp_path / "regions.geojson"
    f.write_text(json.dumps(geo))
    ws, _ = loaded(tmp_path, CA / "fhir", regions=f)
    regions = dict(ws.con.execute("SELECT region_id, count(*) FROM members GROUP BY 1").fetchall())
    assert regions == {"west": 31}  # every California patient falls in the square
    assert ws.con.execute("SELECT rurality, population FROM regions WHERE region_id = 'west'").fetchone() == ("urban", 1000)


def test_a_zip_region_file_and_unknown_zips(tmp_path):
    from caretwin.ingest.regions import RegionResolver

    f = tmp_path / "regions.csv"
    f.write_text("region_id,name,zip,population\nnorth,North,93291,5000\nsouth,South,932,7000\n")
    r = RegionResolver(f)
    assert r.resolve(postal_code="93291-1234") == "north"
    assert r.resolve(postal_code="93277") == "south"
    assert r.resolve(postal_code="10001") == "unassigned"
    assert RegionResolver().resolve(postal_code="03601") == "zip3-000"  # a sparse ZIP3 (Safe Harbor)


@needs_data
def test_code_maps_are_overridable_and_checked(tmp_path):
    f = tmp_path / "maps.toml"
    f.write_text('[fhir_encounter_class]\nEMER = "crisis"\n')
    ws, _ = loaded(tmp_path, BULK, mapping=f)
    assert by_class(ws)["crisis"] == 23
    f.write_text('[fhir_encounter_class]\nEMER = "er"\n')
    with pytest.raises(CaretwinError, match="maps.toml.*'er'.*not one of"):
        loaded(tmp_path, BULK, name="bad", mapping=f)


def test_a_broken_ndjson_line_is_located_and_nothing_is_loaded(tmp_path):
    src = tmp_path / "bulk"
    src.mkdir()
    (src / "Patient.000.ndjson").write_text(
        '{"resourceType":"Patient","id":"a","gender":"female","birthDate":"1950-02-03"}\n{"resourceType": "Pat\n')
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(CaretwinError, match=r"Patient\.000\.ndjson: line 2: not valid JSON"):
        ingest(ws, src)
    assert sum(ws.counts().values()) == 0 and ws.loads() == []


@needs_data
def test_strict_mode_validates_each_resource_and_skips_invalid_ones(tmp_path):
    src = tmp_path / "bulk"
    src.mkdir()
    lines = (BULK / "Patient.000.ndjson").read_text().splitlines()
    bad = json.loads(lines[0])
    bad["gender"] = ["female"]  # a list where FHIR wants a code
    (src / "Patient.000.ndjson").write_text("\n".join([json.dumps(bad), *lines[1:]]) + "\n")
    ws, report = loaded(tmp_path, src, strict=True)
    assert ws.counts()["members"] == 12
    (invalid,) = report.details["invalid"]
    assert invalid["row"] == 1 and invalid["resourceType"] == "Patient" and "gender" in invalid["reason"]
    # without --strict the adapter maps what it can; the model's checks quarantine the bad value
    lenient, report = loaded(tmp_path, src, name="lenient")
    assert lenient.counts()["members"] == 12 and report.quarantined == {"members": 1}


def test_a_transaction_bundle_without_ids_uses_full_urls_and_reports_resources_it_cannot_use(tmp_path):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "gender": "male", "birthDate": "1960-04-02",
                                                 "address": [{"postalCode": "93291"}]}},
        {"fullUrl": "urn:uuid:e1", "resource": {"resourceType": "Encounter", "status": "finished",
                                                 "class": {"code": "EMER"}, "subject": {"reference": "urn:uuid:p1"},
                                                 "period": {"start": "2024-03-01T10:00:00Z", "end": "2024-03-01T14:00:00Z"},
                                                 "hospitalization": {"dischargeDisposition": {"coding": [{"code": "01"}]}}}},
        {"resource": {"resourceType": "Condition", "code": {"coding": [{"code": "X"}]}}},
        {"resource": {"resourceType": "Medication"}},
    ]}
    f = tmp_path / "bundle.json"
    f.write_text(json.dumps(bundle))
    ws, report = loaded(tmp_path, f)
    row = ws.con.execute("SELECT encounter_class, admit_date::VARCHAR, discharge_disposition FROM encounters").fetchone()
    assert row == ("emergency", "2024-03-01", "home")
    assert ws.con.execute("SELECT region_id, birth_year FROM members").fetchone() == ("zip3-932", 1960)
    assert report.details["invalid"] == [{"file": str(f.parent / f"patient-bundle-{pseudonymise('bundle.json', ws.key())}.json"),
                                          "row": 3, "resourceType": "Condition", "reason": "no id"}]
    assert report.details["resources_skipped"] == {"Medication": 1}


def test_searchset_bundles_resolve_relative_and_absolute_references(tmp_path):
    base = "https://ehr.example.org/fhir"
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"fullUrl": f"{base}/Organization/o1", "resource": {"resourceType": "Organization", "id": "o1", "name": "General",
                                                            "address": [{"postalCode": "62701"}]}},
        {"fullUrl": f"{base}/Patient/p1", "resource": {"resourceType": "Patient", "id": "p1", "gender": "female",
                                                       "birthDate": "1940"}},
        {"resource": {"resourceType": "Encounter", "id": "e1", "status": "in-progress", "class": {"code": "IMP"},
                      "subject": {"reference": "Patient/p1"}, "serviceProvider": {"reference": f"{base}/Organization/o1/_history/3"},
                      "period": {"start": "2024-05-02"}}},
        {"resource": {"resourceType": "Encounter", "id": "e2", "status": "finished", "class": {"code": "EMER"},
                      "subject": {"reference": f"{base}/Patient/p1"}, "period": {"start": "2024-04-30", "end": "2024-04-30"}}},
        {"resource": {"resourceType": "Encounter", "id": "e3", "status": "cancelled", "class": {"code": "AMB"},
                      "subject": {"reference": "Patient/p1"}, "period": {"start": "2024-06-01"}}},
        {"search": {"mode": "outcome"}, "resource": {"resourceType": "OperationOutcome", "id": "x"}},
    ]}
    f = tmp_path / "search.json"
    f.write_text(json.dumps(bundle))
    ws, report = loaded(tmp_path, f)
    rows = ws.con.execute("SELECT encounter_class, facility_id, discharge_date FROM encounters ORDER BY admit_date").fetchall()
    assert rows == [("emergency", None, __import__("datetime").date(2024, 4, 30)), ("inpatient", "o1", None)]
    assert ws.con.execute("SELECT service_line FROM providers").fetchone() == ("hospital",)
    assert report.details["resources_skipped"] == {"OperationOutcome": 1}
    assert report.details["not_mapped"] == {"Encounter.status cancelled": 1}  # a cancelled visit is no episode


def test_an_hsds_row_without_its_id_is_refused_with_file_and_row(tmp_path):
    folder = _hsds3(tmp_path / "hsds3", as_json=False)
    text = (folder / "service.csv").read_text().replace("s3,o2", ",o2")
    (folder / "service.csv").write_text(text)
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(CaretwinError, match=r"service\.csv: row 3: id is empty"):
        ingest(ws, folder)
    assert ws.loads() == []


@needs_data
def test_a_synthea_file_without_a_needed_column_is_refused_by_name(tmp_path):
    src = Path(shutil.copytree(CA / "csv", tmp_path / "csv"))
    lines = (src / "encounters.csv").read_text().splitlines()
    lines[0] = lines[0].replace("ENCOUNTERCLASS", "CLASS")
    (src / "encounters.csv").write_text("\n".join(lines) + "\n")
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(CaretwinError, match=r"encounters\.csv: the header lacks ENCOUNTERCLASS"):
        ingest(ws, src)
    assert ws.loads() == []


@pytest.mark.parametrize("damage, said", [
    (lambda text: text.replace("\n", '\n"', 2).replace('\n"', "\n", 1), "line 3: not a well-formed CSV record"),
    (lambda text: text + "x,\udcff,y\n", "not UTF-8 text"),
])
def test_a_synthea_file_broken_mid_way_is_refused_at_its_line_and_no_patient_is_dropped(tmp_path, damage, said):
    import shutil

    from caretwin import Workspace
    from caretwin.errors import CaretwinError
    from caretwin.ingest import ingest

    folder = tmp_path / "csv"
    shutil.copytree(CA / "csv", folder)
    patients = folder / "patients.csv"
    patients.write_bytes(damage(patients.read_text(encoding="utf-8")).encode("utf-8", "surrogateescape"))
    with Workspace.create(tmp_path / "ws") as ws:
        with pytest.raises(CaretwinError, match=said):
            ingest(ws, folder)
        assert ws.counts()["members"] == 0


@pytest.mark.parametrize("line, said", [
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
    ('{"resourceType": "Patient", "id": "p", "birthDate": ' + "9" * 5000 + "}", "a value cannot be read"),
    (b'{"resourceType": "Patient", "id": "\xff"}', "not UTF-8 text"),
])
def test_fhir_that_cannot_be_read_is_refused_at_its_line(tmp_path, line, said):
    from caretwin import Workspace
    from caretwin.errors import CaretwinError
    from caretwin.ingest import ingest

    good = '{"resourceType": "Patient", "id": "a", "gender": "female", "birthDate": "1980-01-01"}\n'
    (tmp_path / "Patient.ndjson").write_bytes(good.encode() + (line if isinstance(line, bytes) else line.encode()) + b"\n")
    with Workspace.create(tmp_path / "ws") as ws:
        with pytest.raises(CaretwinError, match=f"Patient.ndjson: line 2: {said}"):
            ingest(ws, tmp_path / "Patient.ndjson")


def test_fhir_resources_of_the_wrong_shape_are_counted_as_invalid_and_the_rest_load(tmp_path):
    import json

    from caretwin import Workspace
    from caretwin.ingest import ingest

    good = {"resourceType": "Patient", "id": "a", "gender": "female", "birthDate": "1980-01-01"}
    odd = [{"resourceType": "Patient", "id": "b", "address": "12 Main St"},  # a string where a list belongs
           {"resourceType": "Patient", "id": "c", "name": 7, "extension": {"url": 1}},
           ["not", "an", "object"], {"resourceType": 5, "id": "d"}]
    (tmp_path / "Patient.ndjson").write_text("\n".join(json.dumps(r) for r in [good, *odd]) + "\n")
    with Workspace.create(tmp_path / "ws") as ws:
        report = ingest(ws, tmp_path / "Patient.ndjson")
        assert ws.counts()["members"] == 1
    assert report.details["invalid_count"] == 3, report.details["invalid"]

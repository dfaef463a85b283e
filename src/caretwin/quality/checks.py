"""The data-quality engine: checks generated from the canonical model, plus hand-written ones.

Modelled on the OHDSI Data Quality Dashboard: every check has a Kahn category
(conformance, completeness, plausibility) and context (verification against the model's
own rules, validation against something outside the data), a severity (fatal,
convention, characterisation) and a threshold: the share of rows allowed to violate it.

A check counts what is in the workspace *and* what loads put in quarantine or repaired
for breaking the same rule, so a defect is reported whether it was kept out, fixed or let
in. Thresholds and notes can be overridden in a TOML file (see `docs/quality.md`).
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from caretwin._version import __version__
from caretwin.errors import CaretwinError
from caretwin.governance.audit import Actor, record_event
from caretwin.model.rules import RULES_VERSION, Rule, column_rules
from caretwin.model.schema import TABLES, Table, table
from caretwin.workspace import Workspace

REPORT_SCHEMA = "caretwin.quality/1"
CATEGORIES = ("conformance", "completeness", "plausibility")
SEVERITIES = ("fatal", "convention", "characterisation")
STATUSES = ("pass", "fail", "not_applicable", "error")
EXAMPLES = 5
GAP_MIN_NEIGHBOUR_ROWS = 5  # a Poisson month expecting 5 rows is empty by chance less than 1% of the time

# Severity and default threshold (% of rows) of each kind of check.
KINDS: dict[str, tuple[str, float, str]] = {
    "required": ("fatal", 0.0, "A required value is missing: the row cannot be modelled."),
    "type": ("fatal", 0.0, "A value is not of the column's type."),
    "value_set": ("fatal", 0.0, "A coded value is outside the canonical value set."),
    "range": ("fatal", 0.0, "A value is outside its hard bounds."),
    "pattern": ("convention", 0.0, "A code or key does not follow its documented format."),
    "row": ("fatal", 0.0, "Dates within a row are out of order."),
    "unique": ("fatal", 0.0, "Two rows share a primary key."),
    "foreign_key": ("fatal", 0.0, "A row refers to a row that does not exist."),
    "foreign_key_cascade": ("characterisation", 0.0,
                            "A row refers to a row that was itself quarantined; it follows its parent, it is not a new defect."),
    "malformed": ("fatal", 0.0, "A CSV line could not be parsed."),
    "future_date": ("convention", 0.0, "A date lies after the day the check ran."),
    "after_birth": ("fatal", 0.0, "A person's event is dated before their birth year."),
    "before_death": ("convention", 0.5, "A person's event is dated after their death."),
    "within_authorization": ("convention", 1.0, "A visit falls outside the dates of its authorisation."),
    "same_parties": ("fatal", 0.0, "A visit's member or provider differs from its authorisation's."),
    "within_enrollment": ("characterisation", 5.0, "An encounter falls outside the member's enrolment."),
    "gap_in_time": ("characterisation", 0.0, "A calendar month inside the table's date range has no rows."),
    "inadequate_history": ("characterisation", 20.0,
                           "Members with less than the minimum months of enrolment inside the data window."),
    "representation": ("characterisation", 0.0,
                       "A group's share of members is below the reference share by more than the set ratio."),
}
CONTEXT = {"representation": "validation", "gap_in_time": "validation", "future_date": "validation"}


@dataclass
class CheckResult:
    check: str
    table: str
    field: str | None
    category: str
    context: str
    severity: str
    threshold_pct: float
    threshold_note: str
    description: str
    status: str = "pass"
    violating: int = 0
    repaired: int = 0
    denominator: int = 0
    pct: float = 0.0
    examples: list[dict[str, Any]] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list, repr=False)  # every flagged key (JSON), on request

    def finish(self) -> None:
        if self.status in ("not_applicable", "error"):
            return
        self.pct = round(100.0 * self.violating / self.denominator, 4) if self.denominator else 0.0
        self.status = "fail" if self.violating and self.pct > self.threshold_pct else "pass"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("keys")
        return d


@dataclass
class Thresholds:
    """Per-check thresholds and notes, from defaults and an optional TOML file."""

    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    representation_ratio: float = 0.8
    min_history_months: int = 3
    reference: dict[str, dict[str, float]] = field(default_factory=dict)  # dimension -> group -> share
    source: str | None = None

    @classmethod
    def load(cls, path: str | Path | None, reference: str | Path | None = None) -> Thresholds:
        t = cls()
        if path:
            p = Path(path)
            try:
                doc = tomllib.loads(p.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise CaretwinError(f"{p}: cannot read the thresholds file: {exc}") from None
            t.source = str(p)
            for name, entry in (doc.get("checks") or {}).items():
                if "threshold_pct" not in entry or "note" not in entry:
                    raise CaretwinError(f"{p}: [checks.{name!r}] needs threshold_pct and a note saying why")
                t.overrides[name] = entry
            rep = doc.get("representation") or {}
            t.representation_ratio = float(rep.get("ratio", t.representation_ratio))
            t.min_history_months = int((doc.get("history") or {}).get("min_months", t.min_history_months))
        if reference:
            t.reference = read_reference(Path(reference))
        return t

    def apply(self, r: CheckResult) -> CheckResult:
        o = self.overrides.get(r.check) or self.overrides.get(r.check.split(":")[0])
        if o:
            r.threshold_pct, r.threshold_note = float(o["threshold_pct"]), f"{o['note']} (from {self.source})"
        return r


def read_reference(path: Path) -> dict[str, dict[str, float]]:
    """A census table: CSV with columns dimension, group, share (shares of each dimension sum to 1)."""
    import csv

    out: dict[str, dict[str, float]] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=1):
                try:
                    out.setdefault(row["dimension"], {})[row["group"]] = float(row["share"])
                except (KeyError, ValueError):
                    raise CaretwinError(f"{path}: row {n}: needs dimension, group and a numeric share") from None
    except OSError as exc:
        raise CaretwinError(f"{path}: {exc}") from None
    return out


class _Run:
    def __init__(self, ws: Workspace, thresholds: Thresholds, keys: bool):
        self.ws, self.con, self.t, self.keys = ws, ws.con, thresholds, keys
        self.counts = ws.counts()
        self.results: list[CheckResult] = []
        self.quarantine = self._quarantine()
        self.repairs = self._repairs()

    def new(self, check: str, tbl: str, column: str | None, kind: str, category: str, description: str = "") -> CheckResult:
        severity, threshold, note = KINDS[kind]
        r = CheckResult(check, tbl, column, category, CONTEXT.get(kind, "verification"), severity, threshold,
                        "default", description or note)
        self.results.append(r)
        return self.t.apply(r)

    def _quarantine(self) -> dict[str, dict[str, Any]]:
        """rule -> {n, keys, examples} over the distinct quarantined records."""
        out: dict[str, dict[str, Any]] = {}
        rows = self.con.execute(
            "SELECT rule, table_name, source_file, source_row, record FROM "
            "(SELECT DISTINCT ON (table_name, record) * FROM _quarantine ORDER BY table_name, record, load_id DESC), "
            "unnest(rules) AS u(rule)").fetchall()
        for rule, tbl, file, row, record in rows:
            rec = json.loads(record)
            key = _key_json(tbl, rec)
            hit = out.setdefault(rule, {"n": 0, "keys": [], "examples": []})
            hit["n"] += 1
            if self.keys:
                hit["keys"].append(key)
            if len(hit["examples"]) < EXAMPLES:
                hit["examples"].append({"key": json.loads(key), "source_file": file, "source_row": row, "where": "quarantine"})
        return out

    def _repairs(self) -> dict[tuple[str, str, str | None], dict[str, Any]]:
        out: dict[tuple[str, str, str | None], dict[str, Any]] = {}
        for tbl, rule, column, key, before, after in self.con.execute(
                "SELECT DISTINCT ON (table_name, row_key, column_name, rule) table_name, rule, column_name, row_key, before, after "
                "FROM _repairs ORDER BY table_name, row_key, column_name, rule, load_id DESC").fetchall():
            hit = out.setdefault((tbl, rule, column), {"n": 0, "keys": [], "examples": []})
            key = json.dumps(json.loads(key), sort_keys=True)
            hit["n"] += 1
            if self.keys:
                hit["keys"].append(key)
            if len(hit["examples"]) < EXAMPLES:
                hit["examples"].append({"key": json.loads(key), "before": before, "after": after, "where": "repaired"})
        return out

    # -- generated from the model ---------------------------------------------------
    def model_rules(self, t: Table) -> None:
        n = self.counts[t.name]
        quarantined = self.con.execute("SELECT count(DISTINCT record) FROM _quarantine WHERE table_name = ?", [t.name]).fetchone()[0]
        typed = {c.name: c.name for c in t.columns}
        rules = column_rules(t, typed, {c: f"{c} IS NULL" for c in typed})
        counts = self.con.execute(
            "SELECT " + ", ".join(f"count(*) FILTER (WHERE {r.predicate})" for r in rules) + f" FROM {t.name}").fetchone() if rules else []
        for r, found in zip(rules, counts):
            self._rule(t, r, int(found), n + quarantined)
        key_desc = ", ".join(t.primary_key)
        uniq = self.new(f"unique:{t.name}", t.name, key_desc, "unique", "conformance")
        dup = self.con.execute(f"SELECT count(*) - count(DISTINCT ({key_desc})) FROM {t.name}").fetchone()[0]
        self._fold(uniq, int(dup), n + quarantined, f"SELECT {key_desc} FROM {t.name} GROUP BY ALL HAVING count(*) > 1", t,
                   repair=(t.name, "exact_duplicate", None))
        for c in t.foreign_keys:
            ref_table, ref_col = c.references.split(".")  # type: ignore[union-attr]
            where = f"{c.name} IS NOT NULL AND {c.name} NOT IN (SELECT {ref_col} FROM {ref_table})"
            r = self.new(f"foreign_key:{t.name}.{c.name}", t.name, c.name, "foreign_key", "conformance",
                         f"{c.name} refers to no row of {ref_table}.")
            found = self.con.execute(f"SELECT count(*) FROM {t.name} WHERE {where}").fetchone()[0]
            self._fold(r, int(found), n + quarantined, f"SELECT * FROM {t.name} WHERE {where}", t)
            cascade = self.new(f"foreign_key_cascade:{t.name}.{c.name}", t.name, c.name, "foreign_key_cascade", "conformance")
            self._fold(cascade, 0, n + quarantined, None, t)

    def _flagged(self, res: CheckResult, t: Table, key_sql: str, from_where: str) -> None:
        """Add the keys of flagged workspace rows to `res`: a few as examples, all when keys were asked for."""
        limit = "" if self.keys else f" LIMIT {EXAMPLES}"
        rows = self.con.execute(f"SELECT {key_sql} {from_where}{limit}").fetchall()
        keys = [json.dumps(dict(zip(t.primary_key, map(_plain, r))), sort_keys=True) for r in rows]
        res.examples = ([{"key": json.loads(k), "where": "workspace"} for k in keys[:EXAMPLES]] + res.examples)[:EXAMPLES]
        if self.keys:
            res.keys += keys

    def _rule(self, t: Table, r: Rule, found: int, denominator: int) -> None:
        res = self.new(r.name, t.name, r.column, r.kind, r.category, f"{r.column or 'row'}: {r.message}.")
        repair_rule = {"value_set": "value_set_spelling", "pattern": "icd10_dot"}.get(r.kind)
        self._fold(res, found, denominator, f"SELECT * FROM {t.name} WHERE {r.predicate}", t,
                   repair=(t.name, repair_rule, r.column) if repair_rule else None)

    def _fold(self, res: CheckResult, found: int, denominator: int, rows_sql: str | None, t: Table,
              repair: tuple[str, str, str | None] | None = None) -> None:
        """Add workspace violations, quarantined rows and repairs of the same rule to `res`."""
        q = self.quarantine.get(res.check, {"n": 0, "keys": [], "examples": []})
        fix = self.repairs.get(repair, {"n": 0, "keys": [], "examples": []}) if repair else {"n": 0, "keys": [], "examples": []}
        res.violating = found + q["n"]
        res.repaired = fix["n"]
        res.denominator = denominator
        res.examples = (q["examples"] + fix["examples"])[:EXAMPLES]
        if found and rows_sql:
            self._flagged(res, t, ", ".join(t.primary_key), f"FROM ({rows_sql})")
        if self.keys:
            res.keys += q["keys"] + fix["keys"]
        if res.repaired:
            res.detail["repaired_note"] = f"{res.repaired} rows were repaired at load under a cleansing rule"
        if not denominator:
            res.status = "not_applicable"
        res.finish()

    # -- hand-written ---------------------------------------------------------------
    def dates(self) -> None:
        for t in TABLES:
            for c in t.columns:
                if c.dtype != "date" or t.derived:
                    continue
                r = self.new(f"future_date:{t.name}.{c.name}", t.name, c.name, "future_date", "plausibility")
                self._simple(r, t, f"{c.name} > current_date", f"{c.name} IS NOT NULL")
        person_dates = [("encounters", "admit_date"), ("visits", "scheduled_date"), ("referrals", "received_date"),
                        ("authorizations", "start_date"), ("diagnoses", "onset_date"), ("claims", "service_date"),
                        ("housing_events", "event_date"), ("members", "enrollment_start")]
        for tbl, col in person_dates:
            t = table(tbl)
            join = "" if tbl == "members" else " JOIN members m USING (member_id)"
            prefix = "" if tbl == "members" else "x."
            r = self.new(f"after_birth:{tbl}.{col}", tbl, col, "after_birth", "plausibility")
            self._simple(r, t, f"year({prefix}{col}) < {'' if tbl == 'members' else 'm.'}birth_year", None, join=join)
            if tbl != "members":
                extra = " AND x.status = 'delivered'" if tbl == "visits" else ""
                r = self.new(f"before_death:{tbl}.{col}", tbl, col, "before_death", "plausibility")
                self._simple(r, t, f"x.{col} > m.death_date{extra}", None, join=join)

    def _simple(self, r: CheckResult, t: Table, violated: str, denominator_where: str | None, join: str = "") -> None:
        alias = " x" if join else ""
        base = f"FROM {t.name}{alias}{join}"
        found, denom = self.con.execute(
            f"SELECT count(*) FILTER (WHERE {violated}), count(*) FILTER (WHERE {denominator_where or 'TRUE'}) {base}").fetchone()
        r.violating, r.denominator = int(found), int(denom)
        if found:
            self._flagged(r, t, ", ".join(f"{'x.' if join else ''}{k}" for k in t.primary_key), f"{base} WHERE {violated}")
        if not denom:
            r.status = "not_applicable"
        r.finish()

    def cross_table(self) -> None:
        v = table("visits")
        r = self.new("within_authorization:visits.scheduled_date", "visits", "scheduled_date", "within_authorization",
                     "plausibility")
        self._simple(r, v, "x.scheduled_date NOT BETWEEN a.start_date AND a.end_date", None,
                     join=" JOIN authorizations a USING (authorization_id)")
        r = self.new("same_parties:visits.authorization_id", "visits", "authorization_id", "same_parties", "conformance")
        self._simple(r, v, "x.member_id <> a.member_id OR x.provider_id <> a.provider_id", None,
                     join=" JOIN authorizations a USING (authorization_id)")
        r = self.new("within_enrollment:encounters.admit_date", "encounters", "admit_date", "within_enrollment", "plausibility")
        self._simple(r, table("encounters"), "x.admit_date < m.enrollment_start OR x.admit_date > coalesce(m.enrollment_end, DATE '9999-12-31')",
                     None, join=" JOIN members m USING (member_id)")

    def gaps(self) -> None:
        """A month with no rows where the months around it have enough that a zero is not chance.

        Checked for each table as a whole and, where rows name a provider, for each provider's
        feed (an EVV or staffing feed that stops while the provider is still open).
        """
        for t in TABLES:
            if not t.date_column or t.derived:
                continue
            self._gap(t, None)
            if "provider_id" in t.column_names and t.name != "providers":
                self._gap(t, "provider_id")

    def _gap(self, t: Table, by: str | None) -> None:
        name = f"gap_in_time:{t.name}" + (f".by_{by}" if by else "")
        who = f" for one {by.removesuffix('_id')}" if by else ""
        r = self.new(name, t.name, t.date_column, "gap_in_time", "completeness",
                     f"Calendar months with no rows{who} although the three months on each side average at least "
                     f"{GAP_MIN_NEIGHBOUR_ROWS} rows.")
        d, part = t.date_column, by or "0"
        window = "PARTITION BY g ORDER BY mo ROWS BETWEEN 3 PRECEDING AND 3 FOLLOWING"
        months, gaps, examples = self.con.execute(f"""
            WITH m AS (SELECT {part} AS g, year({d}) * 12 + month({d}) - 1 AS mo, count(*) AS n FROM {t.name}
                       WHERE {d} IS NOT NULL {f'AND {by} IS NOT NULL' if by else ''} GROUP BY ALL),
                 grid AS (SELECT g, unnest(range(min(mo), max(mo) + 1)) AS mo FROM m GROUP BY g),
                 f AS (SELECT g, mo, coalesce(n, 0) AS n FROM grid LEFT JOIN m USING (g, mo)),
                 w AS (SELECT *, (sum(n) OVER ({window}) - n) / greatest(count(*) OVER ({window}) - 1, 1) AS around FROM f)
            SELECT count(*), count(*) FILTER (WHERE n = 0 AND around >= {GAP_MIN_NEIGHBOUR_ROWS}),
                   list({{'g': g, 'mo': mo}} ORDER BY g, mo) FILTER (WHERE n = 0 AND around >= {GAP_MIN_NEIGHBOUR_ROWS})
            FROM w""").fetchone()
        if not months or months < 2:
            r.status = "not_applicable"
            return
        r.violating, r.denominator = int(gaps), int(months)
        r.examples = [{**({by: e["g"]} if by else {}), "month": f"{e['mo'] // 12}-{e['mo'] % 12 + 1:02d}"}
                      for e in (examples or [])[:EXAMPLES]]
        r.finish()

    def history(self) -> None:
        months = self.t.min_history_months
        r = self.new("inadequate_history:members", "members", "enrollment_start", "inadequate_history", "completeness",
                     f"Members enrolled for fewer than {months} months before the end of the data: too little history to model.")
        self._simple(r, table("members"),
                     f"date_diff('month', enrollment_start, coalesce(least(enrollment_end, f.as_of), f.as_of)) < {months}",
                     None, join=" JOIN member_features f USING (member_id)")
        r.detail["min_months"] = months

    def representation(self) -> None:
        dims: dict[str, tuple[str, dict[str, float]]] = {}
        pop = self.con.execute("SELECT region_id, population FROM regions WHERE population > 0").fetchall()
        if pop:
            total = sum(p for _, p in pop)
            dims["region_id"] = ("region", {rid: p / total for rid, p in pop})
        for dim, shares in self.t.reference.items():
            dims[dim] = (dim, shares)
        n = self.counts["members"]
        for column, (label, reference) in dims.items():
            expr = "f.age_band" if column == "age_band" else f"m.{column}"
            join = " LEFT JOIN member_features f USING (member_id)" if column == "age_band" else ""
            observed = dict(self.con.execute(f"SELECT {expr}, count(*) FROM members m{join} GROUP BY 1").fetchall())
            for group, share in sorted(reference.items()):
                r = self.new(f"representation:members.{column}={group}", "members", column, "representation", "plausibility",
                             f"Share of members in {label} {group!r} against the reference share.")
                got = observed.get(group, 0)
                expected = share * n
                ratio = got / expected if expected else None
                sd = (n * share * (1 - share)) ** 0.5
                under = bool(expected and ratio is not None and ratio < self.t.representation_ratio and got < expected - 2 * sd)
                r.denominator, r.violating = n, (1 if under else 0)
                r.detail = {"group": group, "members": got, "share": round(got / n, 4) if n else None,
                            "reference_share": round(share, 4), "ratio": round(ratio, 3) if ratio is not None else None,
                            "ratio_threshold": self.t.representation_ratio}
                r.status = "fail" if under else ("not_applicable" if not n else "pass")
                r.pct = round(100 * got / n, 2) if n else 0.0

    def malformed(self) -> None:
        for rule, hit in self.quarantine.items():
            if rule.startswith("malformed:"):
                tbl = rule.split(":", 1)[1]
                r = self.new(rule, tbl, None, "malformed", "conformance")
                r.violating, r.denominator, r.examples = hit["n"], self.counts.get(tbl, 0) + hit["n"], hit["examples"]
                r.keys = hit["keys"]
                r.finish()


def _plain(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def _key_json(tbl: str, record: dict[str, Any]) -> str:
    t = table(tbl) if tbl in {x.name for x in TABLES} else None
    if t is None or "line" in record:
        return json.dumps(record, sort_keys=True)
    return json.dumps({k: record.get(k) for k in t.primary_key}, sort_keys=True)


@dataclass
class QualityReport:
    workspace: str
    generated_at: str
    seconds: float
    results: list[CheckResult]
    thresholds_file: str | None = None

    def summary(self) -> dict[str, Any]:
        by = lambda attr: {v: {s: sum(1 for r in self.results if getattr(r, attr) == v and r.status == s) for s in STATUSES}
                           for v in (CATEGORIES if attr == "category" else SEVERITIES)}
        return {
            "checks": len(self.results),
            **{s: sum(1 for r in self.results if r.status == s) for s in STATUSES},
            "by_category": by("category"), "by_severity": by("severity"),
            "quarantined_rows": sum(r.violating for r in self.results if r.check.startswith(("malformed:",))),
        }

    def failed(self, severities: tuple[str, ...] = SEVERITIES) -> list[CheckResult]:
        return [r for r in self.results if r.status == "fail" and r.severity in severities]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": REPORT_SCHEMA, "caretwin_version": __version__, "rules_version": RULES_VERSION,
                "workspace": self.workspace, "generated_at": self.generated_at, "seconds": round(self.seconds, 3),
                "thresholds_file": self.thresholds_file, "summary": self.summary(),
                "results": [r.to_dict() for r in self.results]}


def run_quality(ws: Workspace, *, thresholds: Thresholds | None = None, keys: bool = False,
                only: Callable[[CheckResult], bool] | None = None, actor: Actor | None = None) -> QualityReport:
    """Run every check over the workspace (it reads every record: recorded as done by `actor`, the
    operating-system user unless given). `keys=True` keeps every flagged row key (for scoring)."""
    started = time.perf_counter()
    th = thresholds or Thresholds()
    run = _Run(ws, th, keys)
    for t in TABLES:
        if not t.derived:
            run.model_rules(t)
    run.malformed()
    run.dates()
    run.cross_table()
    run.gaps()
    run.history()
    run.representation()
    results = [r for r in run.results if only is None or only(r)]
    report = QualityReport(str(ws.path), datetime.now(UTC).isoformat(timespec="seconds"),
                           time.perf_counter() - started, results, th.source)
    record_event(ws, actor or Actor.local("quality_improvement"), kind="query", action="E", subtype="quality.run",
                 entity_type="workspace", entity_id=ws.name,
                 detail={**{k: v for k, v in report.summary().items() if k == "checks" or k in STATUSES},
                         "thresholds": th.source, "keys": keys})
    return report

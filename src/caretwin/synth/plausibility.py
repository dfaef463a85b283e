"""Is the synthetic county a plausible world? Its headline figures, computed with SQL over the extract,
set against published figures (`shared/reference/plausibility.md` holds them with their sources).

Each figure comes with a range: a county may differ from the national figure, but a default far
outside it misleads everyone who uses the twin. Figures the model does not represent are listed as
such, with the reason, so that nobody reads silence as agreement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
from scipy import stats

from caretwin.errors import CaretwinError

Kind = Literal["rate", "share", "point"]


@dataclass(frozen=True)
class Measure:
    name: str
    published: str
    low: float
    high: float
    unit: str
    source: str
    sql: str  # one row: (value, numerator, denominator)
    kind: Kind = "point"  # rate: Poisson events over exposure; share: binomial; point: no interval
    per: float = 1.0  # a rate's scale (per 1,000 member-years: 1000)


@dataclass(frozen=True)
class Check:
    measure: Measure
    value: float | None
    numerator: float
    denominator: float

    @property
    def interval(self) -> tuple[float, float] | None:
        """Exact 95% interval of the figure: Poisson (Garwood) for rates, Clopper-Pearson for shares."""
        k, n, kind = self.numerator, self.denominator, self.measure.kind
        if self.value is None or kind == "point" or n <= 0:
            return None
        if kind == "share":
            lo = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
            hi = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
            return float(lo), float(hi)
        lo = stats.chi2.ppf(0.025, 2 * k) / 2 if k > 0 else 0.0
        hi = stats.chi2.ppf(0.975, 2 * k + 2) / 2
        return float(lo * self.measure.per / n), float(hi * self.measure.per / n)

    @property
    def ok(self) -> bool:
        """The figure, or its 95% interval where it has one, meets the published range."""
        if self.value is None:
            return False
        lo, hi = self.interval or (self.value, self.value)
        return lo <= self.measure.high and hi >= self.measure.low


# Exposure: days enrolled and alive inside the window, by age band on the window's first day.
_EXPOSURE = """
CREATE TEMP VIEW exposure AS
SELECT member_id, year(DATE '{start}') - birth_year AS age,
       greatest(0, least(coalesce(enrollment_end, DATE '{end}'), coalesce(death_date, DATE '{end}'), DATE '{end}')
                   - greatest(enrollment_start, DATE '{start}')) / 365.25 AS years
FROM members"""

_IN = "BETWEEN DATE '{start}' AND DATE '{end}' - 1"


def _rate(name: str, published: str, low: float, high: float, per: float, source: str, events: str,
          ages: str) -> Measure:
    """Events among members of some ages, per `per` member-years of their exposure."""
    sql = f"""WITH e AS (SELECT count(*) AS n FROM ({events}) x JOIN exposure USING (member_id) WHERE {ages}),
                   y AS (SELECT sum(years) AS py FROM exposure WHERE {ages})
              SELECT {per} * n / py, n, py FROM e, y"""
    return Measure(name, published, low, high, f"per {per:,.0f} member-years", source, sql, "rate", per)


ED = f"SELECT member_id FROM encounters WHERE encounter_class = 'emergency' AND admit_date {_IN}"
STAYS = f"SELECT member_id FROM encounters WHERE encounter_class = 'inpatient' AND admit_date {_IN}"
DEATHS = f"SELECT member_id FROM members WHERE death_date {_IN}"
FACILITY_STAYS = """
    SELECT e.member_id, e.admit_date, e.discharge_date FROM encounters e JOIN providers p ON p.provider_id = e.facility_id
    WHERE e.encounter_class = 'snf' AND p.service_line = '{line}'"""


def _occupancy(line: str) -> str:
    stays = FACILITY_STAYS.format(line=line)
    return f"""WITH d AS (SELECT unnest(generate_series(DATE '{{start}}', DATE '{{end}}' - 1, INTERVAL 1 DAY))::DATE AS day),
                    s AS ({stays}),
                    census AS (SELECT count(*) AS n FROM d JOIN s ON s.admit_date <= d.day
                               AND (s.discharge_date IS NULL OR s.discharge_date > d.day)),
                    beds AS (SELECT sum(capacity) AS b FROM providers WHERE service_line = '{line}')
               SELECT n / (b * {{days}}), n / {{days}}, b FROM census, beds"""


HCBS_USERS = f"""SELECT DISTINCT v.member_id FROM visits v JOIN providers p USING (provider_id)
                 WHERE p.service_line = 'hcbs' AND v.status = 'delivered' AND v.scheduled_date {_IN}"""

MEASURES: tuple[Measure, ...] = (
    _rate("ED visits, adults", "947 per 1,000 Medicaid adults a year", 650, 1300, 1000,
          "Tang et al., JAMA 2010 (NHAMCS 2007)", ED, "age >= 18"),
    _rate("ED visits, children", "about 534 per 1,000 a year (44.5 per 1,000 beneficiary-months)", 350, 800, 1000,
          "CMS Child Core Set, AMB-CH, FFY 2020", ED, "age < 18"),
    Measure("share of ED visits admitted", "about 11%", 0.07, 0.15, "share", "NCHS Data Brief 252",
            f"""SELECT avg((discharge_disposition IN ('transfer', 'psychiatric'))::INT),
                       sum((discharge_disposition IN ('transfer', 'psychiatric'))::INT), count(*)
                FROM encounters WHERE encounter_class = 'emergency' AND admit_date {_IN}""", "share"),
    _rate("hospital stays", "116 per 1,000 people a year (all ages, all payers)", 80, 170, 1000,
          "HCUP Statistical Brief 180 (2012)", STAYS, "true"),
    Measure("mean length of stay", "4.5 days", 3.5, 6.0, "days", "HCUP Statistical Brief 180 (2012)",
            f"""SELECT avg(discharge_date - admit_date), sum(discharge_date - admit_date), count(*) FROM encounters
                WHERE encounter_class = 'inpatient' AND discharge_date {_IN}"""),
    Measure("30-day readmission", "all payers 13.9%, Medicare 17.1%, Medicaid between", 0.11, 0.20, "share",
            "HCUP Statistical Brief 248 (2016)",
            f"""WITH s AS (SELECT member_id, admit_date, discharge_date, discharge_disposition FROM encounters
                           WHERE encounter_class = 'inpatient'),
                     d AS (SELECT member_id, discharge_date FROM s WHERE discharge_disposition <> 'died'
                           AND discharge_date BETWEEN DATE '{{start}}' AND DATE '{{end}}' - 31),
                     r AS (SELECT d.member_id, d.discharge_date, bool_or(s.admit_date > d.discharge_date
                                  AND s.admit_date <= d.discharge_date + 30) AS back
                           FROM d LEFT JOIN s USING (member_id) GROUP BY ALL)
                SELECT avg(back::INT), sum(back::INT), count(*) FROM r""", "share"),
    # the range reaches down to 60%: a region of a small county has one to three post-acute beds, which cannot be
    # 85% full without long queues (Erlang), as small rural facilities are not
    Measure("SNF occupancy", "about 81-85.5%", 0.60, 0.97, "share of beds", "NIC MAP, US skilled nursing 2020-2023",
            _occupancy("snf")),
    Measure("nursing-facility occupancy", "about 81-85.5%", 0.65, 0.97, "share of beds",
            "NIC MAP, US skilled nursing 2020-2023", _occupancy("nursing_facility")),
    Measure("members using HCBS", "about 4.5 million of about 80 million full-benefit enrollees (about 5-6%)", 0.025,
            0.10, "share of members", "KFF, Medicaid HCBS users",
            f"""WITH u AS ({HCBS_USERS}) SELECT (SELECT count(*) FROM u) / count(*), (SELECT count(*) FROM u), count(*)
                FROM exposure WHERE years > 0""", "share"),
    # community referrals: those authorised on the day they arrive come from a hospital discharge, which is seen first
    Measure("HCBS wait, community referrals", "waits of months, often over 6", 45, 400, "median days",
            "KFF waiting-list surveys; ASPE/Mathematica 2014 (Iowa)",
            f"""SELECT median(start_of_care_date - received_date), count(*), count(*) FROM referrals
                WHERE service_line = 'hcbs' AND start_of_care_date {_IN} AND authorized_date > received_date"""),
    Measure("nursing-facility entry of HCBS users", "about 1 in 5 survivors within 24 months (about 10% a year)",
            0.05, 0.20, "share entering within a year",
            "Medicaid claims study of the Indiana aged and disabled waiver",
            f"""WITH u AS (SELECT DISTINCT v.member_id FROM visits v JOIN providers p USING (provider_id)
                           WHERE p.service_line = 'hcbs' AND v.status = 'delivered'
                             AND v.scheduled_date BETWEEN DATE '{{start}}' AND DATE '{{start}}' + 29),
                     nf AS ({FACILITY_STAYS.format(line='nursing_facility')}),
                     hit AS (SELECT DISTINCT u.member_id FROM u JOIN nf USING (member_id)
                             WHERE nf.admit_date BETWEEN DATE '{{start}}' AND DATE '{{start}}' + 364)
                SELECT (SELECT count(*) FROM hit) / count(*), (SELECT count(*) FROM hit), count(*) FROM u""", "share"),
    Measure("direct-care staff turnover", "40.9% (DSPs, 2022) to 64-82% (home care agencies)", 0.35, 0.90,
            "separations per year / mean headcount", "NCI State of the Workforce 2022; Home Care Pulse",
            f"""WITH w AS (SELECT w.* FROM workforce w JOIN providers p USING (provider_id)
                           WHERE p.service_line = 'hcbs' AND week_start {_IN})
                SELECT sum(separations) / (sum(headcount) / 52.18), sum(separations), sum(headcount) / 52.18 FROM w""",
            "rate"),
    Measure("direct-care vacancy rate", "15.3%", 0.05, 0.25, "vacancies / budgeted posts",
            "NCI State of the Workforce 2022",
            f"""SELECT sum(vacancies) / sum(headcount + vacancies), sum(vacancies), sum(headcount + vacancies)
                FROM workforce w JOIN providers p USING (provider_id)
                WHERE p.service_line = 'hcbs' AND week_start {_IN}"""),
    Measure("homelessness, point prevalence", "0.23% of the whole US population on one night", 0.002, 0.012,
            "share of members on the last day", "HUD Annual Homeless Assessment Report 2024 (Medicaid enrollees "
            "are poorer than the population, so a few times the national figure is plausible)",
            """SELECT avg((housing_status = 'homeless')::INT), sum((housing_status = 'homeless')::INT), count(*)
               FROM members WHERE enrollment_start < DATE '{end}' AND enrollment_end IS NULL AND death_date IS NULL""",
            "share"),
    _rate("mortality, children", "26.9 (ages 1-4) and 14.8 (ages 5-14) per 100,000", 8, 60, 100_000,
          "CDC provisional mortality 2022, MMWR", DEATHS, "age < 18"),
    _rate("mortality, 65 and over", "4,470 per 100,000 (age-adjusted)", 2500, 9000, 100_000,
          "CDC provisional mortality 2022, MMWR (Medicaid's older members are sicker than their age group)",
          DEATHS, "age >= 65"),
)

# Rows of the reference the model does not represent, and why.
NOT_REPRESENTED: tuple[tuple[str, str], ...] = (
    ("readmission, home health vs SNF (+5.6 points)", "one readmission hazard for every supported discharge"),
    ("providers turning referrals away (77%)", "providers accept every match they have hours for"),
    ("psychiatric ED boarding over 6 hours (21.5%)", "the engine counts boarding in days, not hours"),
    ("pay and turnover (+25% pay, a third less turnover)", "a scenario's response: a wage_increase's effect on "
     "separations is the analyst's assumption, not yet held to this figure"),
    ("Medicaid spending per enrollee ($633 a month)", "the model prices only the services it represents "
     "(no pharmacy, physician or outpatient care)"),
)


def _open(con: duckdb.DuckDBPyConnection, extract: Path) -> dict[str, str]:
    manifest = extract / "manifest.json"
    if not manifest.is_file():
        raise CaretwinError(f"{extract}: no manifest.json; the plausibility report reads a synthetic county's extract")
    window = json.loads(manifest.read_text())["window"]
    for table in ("members", "providers", "encounters", "referrals", "visits", "workforce"):
        csv, parquet = extract / f"{table}.csv", extract / f"{table}.parquet"
        source = f"read_parquet('{parquet}')" if parquet.is_file() else f"read_csv('{csv}', header = true)"
        con.execute(f"CREATE TEMP VIEW {table} AS SELECT * FROM {source}")
    (end,) = con.execute(f"SELECT DATE '{window['start']}' + {int(window['days'])}").fetchone()
    fmt = {"start": window["start"], "end": end.isoformat(), "days": int(window["days"])}
    con.execute(_EXPOSURE.format(**fmt))
    return fmt


def plausibility(extract: Path) -> list[Check]:
    """The county's headline figures, each with its published range."""
    con = duckdb.connect()
    try:
        fmt = _open(con, Path(extract))
        out = []
        for m in MEASURES:
            value, num, den = con.execute(m.sql.format(**fmt)).fetchone()
            out.append(Check(m, None if value is None else float(value), float(num or 0), float(den or 0)))
        return out
    finally:
        con.close()


def _fmt(x: float | None, share: bool) -> str:
    if x is None:
        return "none"
    return f"{x:.1%}" if share else f"{x:,.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:.1f}"


def report(checks: list[Check]) -> str:
    """The table `caretwin synth --report` prints: each figure, its 95% interval, the published range."""
    lines = [f"{'measure':<38}{'county':>8}  {'95% interval':<16}{'range':<15}{'':<5}published (source)"]
    for c in checks:
        m = c.measure
        share = m.high <= 1.0
        ci = "-".join(_fmt(x, share) for x in c.interval) if c.interval else ""
        rng = f"{_fmt(m.low, share)}-{_fmt(m.high, share)}"
        lines.append(f"{m.name:<38}{_fmt(c.value, share):>8}  {ci:<16}{rng:<15}{'ok' if c.ok else 'OUT':<5}"
                     f"{m.published} ({m.source})")
    lines.append("not represented by the model:")
    lines += [f"  {name}: {why}" for name, why in NOT_REPRESENTED]
    return "\n".join(lines)

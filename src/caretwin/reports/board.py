"""The decision report: one self-contained HTML file (and a PDF of it) that a board can read.

Every claim in the summary is written from the comparison's numbers and carries its 95%
interval; a difference whose interval includes zero is reported as no detectable change.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from caretwin._version import __version__
from caretwin.errors import CaretwinError
from caretwin.governance.audit import Actor, record_event
from caretwin.reports.charts import PALETTE, fan_chart, tile_grid
from caretwin.scenarios.compare import (
    HEADLINE,
    TARGET_RELATIVE_HALF_WIDTH,
    Comparison,
    Difference,
    Interval,
    ScenarioComparison,
    compare,
)
from caretwin.workspace import Workspace

SERIES = (("waitlist_hcbs", "People waiting for HCBS, each week", False),
          ("missed_visit_rate_hcbs", "Share of HCBS visits missed, each week", True),
          ("ed_visits", "Emergency department visits, each week", False),
          ("total_cost", "Total cost each week (services and interventions)", False))


def fmt(v: float | None, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if unit == "share":
        return f"{v * 100:.1f}%" if abs(v) >= 0.01 or v == 0 else f"{v * 100:.2f}%"
    if unit == "currency":
        return ("-" if v < 0 else "") + f"${abs(v):,.0f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.2f}"


def fmt_signed(v: float, unit: str = "") -> str:
    return ("+" if v > 0 else "") + fmt(v, unit) if v else fmt(0.0, unit)


def interval(i: Interval, unit: str = "", signed: bool = False) -> str:
    f = fmt_signed if signed else fmt
    return f"{f(i.mean, unit)} (95% interval {f(i.low, unit)} to {f(i.high, unit)})"


def verdict(d: Difference) -> str:
    if not d.difference.excludes_zero():
        return "no detectable change"
    if d.better == 0:
        return "higher" if d.difference.mean > 0 else "lower"
    better = (d.difference.mean < 0) == (d.better < 0)
    return "better" if better else "worse"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


NEGLIGIBLE = 0.001  # a difference under a thousandth of the baseline's level is reported as negligible


def fmt_change(x: float, i: Interval, unit: str = "", signed: bool = True) -> str:
    """A difference with as many digits as its interval's width supports (shares in percentage points)."""
    scale, suffix = (100.0, " pts") if unit == "share" else (1.0, "")
    width = abs(i.high - i.low) * scale
    digits = 0 if width <= 0 or not math.isfinite(width) else max(0, 1 - math.floor(math.log10(width)))
    digits = min(digits, 4)
    v = x * scale
    text = f"{abs(v):,.{digits}f}"
    if unit == "currency":
        text = "$" + text
    sign = ("+" if v > 0 else "-" if v < 0 else "") if signed else ("-" if v < 0 else "")
    return (sign if float(text.replace("$", "").replace(",", "")) else "") + text + suffix


def _sentence(d: Difference) -> str:
    i = d.difference
    ci = f"95% interval {fmt_change(i.low, i, d.unit)} to {fmt_change(i.high, i, d.unit)}"
    if not i.excludes_zero():
        return (f"{_cap(d.label)}: no change we can detect ({fmt(d.scenario.mean, d.unit)}; difference "
                f"{fmt_change(i.mean, i, d.unit)}, {ci}).")
    direction = "up" if i.mean > 0 else "down"
    if abs(i.mean) < NEGLIGIBLE * abs(d.baseline.mean):
        return (f"{_cap(d.label)}: practically unchanged ({direction} by {fmt_change(i.mean, i, d.unit, signed=False)}, "
                f"under 0.1% of its level of {fmt(d.baseline.mean, d.unit)}; {ci}).")
    return (f"{_cap(d.label)}: {direction} by {fmt_change(i.mean, i, d.unit, signed=False)} ({ci}), from "
            f"{fmt(d.baseline.mean, d.unit)} to {fmt(d.scenario.mean, d.unit)}"
            + (f" ({verdict(d)})." if d.better else "."))


def summary_points(c: Comparison, s: ScenarioComparison) -> list[str]:
    """Plain sentences about one scenario, each with its interval."""
    out = [_sentence(s.difference(k)) for k in HEADLINE]
    top = s.failure[0]
    base = next(f for f in c.baseline_failure if f.region_id == top.region_id)
    if top.scenario.mean == 0 and not any(f.scenario.mean for f in c.baseline_failure):
        out.append(f"No region failed in any of the {c.replications} replications of either run, so none is "
                   f"singled out as most at risk (95% interval for each region: 0% to "
                   f"{top.scenario.high * 100:.0f}%).")
    else:
        out.append(f"Region most at risk of service failure: {top.region_id} ({top.rurality}), failing in "
                   f"{top.scenario.mean * 100:.0f}% of replications (95% interval {top.scenario.low * 100:.0f}% "
                   f"to {top.scenario.high * 100:.0f}%), against {base.scenario.mean * 100:.0f}% under the baseline.")
    v = s.value
    if v.intervention_cost.mean > 0:
        roi = (f"; return on investment {v.roi.mean * 100:+.0f}% (95% interval {v.roi.low * 100:+.0f}% to "
               f"{v.roi.high * 100:+.0f}%)") if v.roi else ""
        out.append(f"The interventions cost {interval(v.intervention_cost, 'currency')}; they avoid "
                   f"{interval(v.avoided_cost, 'currency')} of service costs; the net change in total cost is "
                   f"{interval(v.net_cost, 'currency', signed=True)}{roi}.")
    elif v.net_cost.low == v.net_cost.high == 0:
        out.append("Service costs are the same in every replication.")
    else:
        out.append(f"Service costs change by {interval(v.net_cost, 'currency', signed=True)}.")
    return out


def precision_points(c: Comparison) -> list[str]:
    wide = [(s.name, d) for s in c.scenarios for d in s.differences
            if d.key in HEADLINE and d.replications_suggested]
    if not wide:
        return [f"With {c.replications} replications every headline estimate is within "
                f"±{TARGET_RELATIVE_HALF_WIDTH * 100:.0f}% of its value (95% interval)."]
    need = max(d.replications_suggested for _, d in wide)
    names = ", ".join(sorted({d.label for _, d in wide}))
    return [f"With {c.replications} replications, {len(wide)} headline estimate(s) are less precise than "
            f"±{TARGET_RELATIVE_HALF_WIDTH * 100:.0f}% ({names}); about {need:,} replications would bring them "
            f"within it."]


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#111;
 max-width:1040px;margin:2rem auto;padding:0 1.2rem;line-height:1.45;font-size:16px}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{font-size:1.3rem;border-bottom:2px solid #0072B2;padding-bottom:.2rem;
 margin-top:2.2rem}h3{font-size:1.08rem;margin-bottom:.3rem}
.meta{color:#444;font-size:.9rem}.summary li{margin:.35rem 0}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.6rem 0 1.2rem}
th,td{border-bottom:1px solid #ccc;padding:.3rem .45rem;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}th{background:#f0f4f8}
.better{color:#006b3c;font-weight:600}.worse{color:#b30000;font-weight:600}.same{color:#555}
.chart{max-width:640px;display:block;margin:.6rem 0}.ct{font-size:14px;font-weight:600}.ax{font-size:11px;fill:#333}
.lg{font-size:12px}.grid{stroke:#e2e2e2}.tl{font-size:14px;font-weight:700}.tv{font-size:20px;font-weight:700}
.ts{font-size:10px}.tiles{display:inline-block;margin:0 1rem 1rem 0;vertical-align:top}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
.note{font-size:.85rem;color:#444}.sup{color:#777;font-style:italic}
.warning{border-left:4px solid #b35806;background:#fdf3e7;padding:.5rem .8rem}
@media print{body{margin:0;max-width:none;font-size:12px}h2{page-break-after:avoid}.chart,.tiles{page-break-inside:avoid}}
"""


def evidence_points(c: Comparison) -> tuple[str | None, list[str]]:
    """A warning when the headline rests mainly on defaults (None otherwise), and what the numbers rest on:
    the parameters' origin and every effect a scenario assumes."""
    warning = None
    if c.evidence is None:
        warning = ("Where these runs' parameters came from was not recorded (they were stored by an older version); "
                   "treat every figure as resting on the engine's defaults.")
    elif c.resting_on_defaults:
        what = ", ".join(c.resting_on_defaults)
        warning = (f"These results rest mainly on default parameters, not on this workspace's data: {what} "
                   "come from mechanisms whose parameters were mostly not estimated here. Read them as what the "
                   "model assumes, not as findings about this system.")
    points = [f"Parameters: {c.evidence_summary()}."]
    for s in c.scenarios:
        for a in s.assumptions:
            points.append(f"{s.name} assumes its own effect size ({a}); the result follows from that assumption.")
    return warning, points


def evidence_section(c: Comparison) -> str:
    warning, points = evidence_points(c)
    out = ["<section><h2 id='evidence'>What these results rest on</h2>"]
    if warning:
        out.append(f"<p class='warning' role='alert'><strong>{escape(warning)}</strong></p>")
    out.append("<ul>" + "".join(f"<li>{escape(p)}</li>" for p in points) + "</ul></section>")
    return "".join(out)


def render_html(c: Comparison, title: str = "Scenario comparison") -> str:
    """The board report: one self-contained HTML page (its styles inline, its charts SVG)."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
            f"content='width=device-width,initial-scale=1'><title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body><header><h1>{escape(title)}</h1><p class='meta'>{escape(describe(c))} caretwin {__version__}, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</p></header><main>{render_sections(c)}</main></body></html>")


def describe(c: Comparison) -> str:
    """What was compared, in one sentence."""
    return (f"Baseline {c.baseline_name} against {', '.join(s.name for s in c.scenarios)}: {c.weeks} weeks from "
            f"{c.start_date}, {c.replications} replications each, seed {c.seed}; every scenario shares the "
            "baseline's random numbers, so differences are paired.")


def render_sections(c: Comparison) -> str:
    """The report's sections (summary, over time, failure, differences, value, who bears the gap, method)."""
    names = [c.baseline_name] + [s.name for s in c.scenarios]
    runs = [c.baseline_run] + [s.run_id for s in c.scenarios]
    h: list[str] = []
    add = h.append
    add(evidence_section(c))
    add("<section><h2 id='summary'>Executive summary</h2>")
    for s in c.scenarios:
        add(f"<h3>{escape(s.name)} compared with {escape(c.baseline_name)}</h3><ul class='summary'>")
        for p in summary_points(c, s):
            add(f"<li>{escape(p)}</li>")
        add("</ul>")
    add(f"<p>{escape(' '.join(precision_points(c)))}</p>")
    basis = "as calibrated from its own data" if (c.evidence or {}).get("basis") == "calibrated" else \
        "under the parameters named above"
    add(f"<p class='note'>These are simulated futures of the system {basis}; intervals show the spread over "
        "replications (the model's randomness and, when calibrated, its parameters' uncertainty), not every way "
        "the model could be wrong.</p></section>")

    add("<section><h2 id='time'>Over time</h2><p class='note'>Lines are medians across replications; the darker "
        "band holds the middle 50% of replications and the lighter band 90%.</p>")
    for key, label, pct in SERIES:
        add(fan_chart(label, [(n, c.weekly[r][key]) for n, r in zip(names, runs)], percent=pct))
    add("</section>")

    add("<section><h2 id='failure'>Where services fail</h2><p class='note'>A region fails in a replication when "
        f"more than {c.failure_rule['missed_visit_rate'] * 100:.0f}% of HCBS visits are missed for "
        f"{c.failure_rule['consecutive_weeks']} or more weeks in a row"
        + (", a provider closes" if c.failure_rule["provider_exit"] else "")
        + f", or its HCBS waitlist rises above {c.failure_rule['waitlist_ratio']:g} times its first-week level "
          f"(and above {c.failure_rule['min_waitlist']} people). Tiles show the share of replications in which "
          "each region fails.</p>")
    add(tile_grid(f"{c.baseline_name}", [(f.region_id, f.scenario.mean, f.rurality)
                                         for f in sorted(c.baseline_failure, key=lambda f: f.region_id)]))
    for s in c.scenarios:
        add(tile_grid(s.name, [(f.region_id, f.scenario.mean, f.rurality)
                               for f in sorted(s.failure, key=lambda f: f.region_id)]))
    for s in c.scenarios:
        add(f"<h3>Regions ranked by failure risk: {escape(s.name)}</h3><table><thead><tr><th>region</th>"
            "<th>rurality</th><th>baseline</th><th>scenario (95% interval)</th><th>change (95% interval)</th>"
            "<th>main cause</th></tr></thead><tbody>")
        for f in s.failure:
            cause = max(f.causes, key=f.causes.get) if any(f.causes.values()) else "none"
            add(f"<tr><td>{escape(f.region_id)}</td><td>{escape(f.rurality)}</td><td>{f.baseline.mean * 100:.0f}%</td>"
                f"<td>{f.scenario.mean * 100:.0f}% ({f.scenario.low * 100:.0f}-{f.scenario.high * 100:.0f}%)</td>"
                f"<td>{f.difference.mean * 100:+.0f} pts ({max(f.difference.low, -1) * 100:+.0f} to "
                f"{min(f.difference.high, 1) * 100:+.0f})</td><td>{escape(cause)}</td></tr>")
        add(f"</tbody></table><p>At least one region fails in {s.any_region_fails.mean * 100:.0f}% of replications "
            f"(95% interval {s.any_region_fails.low * 100:.0f}% to {s.any_region_fails.high * 100:.0f}%).</p>")
    add("</section>")

    add("<section><h2 id='differences'>Differences from the baseline</h2>")
    for s in c.scenarios:
        add(f"<h3>{escape(s.name)}</h3><table><thead><tr><th>measure</th><th>baseline</th><th>scenario</th>"
            "<th>difference (95% interval)</th><th>verdict</th><th>precision</th></tr></thead><tbody>")
        area = None
        for d in s.differences:
            if d.area != area:
                area = d.area
                add(f"<tr><th colspan='6'>{escape(area)}</th></tr>")
            v = verdict(d)
            cls = {"better": "better", "worse": "worse"}.get(v, "same")
            prec = (f"±{d.relative_half_width * 100:.1f}%" if math.isfinite(d.relative_half_width) else "n/a") + (
                f"; {d.replications_suggested:,} reps for ±{TARGET_RELATIVE_HALF_WIDTH * 100:.0f}%"
                if d.replications_suggested else "")
            add(f"<tr><td>{escape(d.label)} ({escape(d.unit)})</td><td>{fmt(d.baseline.mean, d.unit)}</td>"
                f"<td>{fmt(d.scenario.mean, d.unit)}</td><td>{fmt_signed(d.difference.mean, d.unit)} "
                f"({fmt_signed(d.difference.low, d.unit)} to {fmt_signed(d.difference.high, d.unit)})</td>"
                f"<td class='{cls}'>{v}</td><td>{prec}</td></tr>")
        add("</tbody></table>")
    add("</section>")

    add("<section><h2 id='value'>Value for money</h2><table><thead><tr><th>scenario</th><th>intervention cost</th>"
        "<th>service cost avoided</th><th>net change in total cost</th><th>return on investment</th></tr></thead><tbody>")
    for s in c.scenarios:
        v = s.value
        roi = (f"{v.roi.mean * 100:+.0f}% ({v.roi.low * 100:+.0f}% to {v.roi.high * 100:+.0f}%)" if v.roi else "n/a")
        add(f"<tr><td>{escape(s.name)}</td><td>{interval(v.intervention_cost, 'currency')}</td>"
            f"<td>{interval(v.avoided_cost, 'currency')}</td><td>{interval(v.net_cost, 'currency', True)}</td>"
            f"<td>{roi}</td></tr>")
    add("</tbody></table><p class='note'>Intervention cost is what the interventions themselves cost (staff, "
        "beds held, programme fees); services they lead to are costed at the unit costs, like any other use.</p>"
        "</section>")

    add("<section><h2 id='gap'>Who bears the gap</h2><p class='note'>Change from the baseline by group, per 1,000 "
        "members a year (people waiting: per 1,000 members on an average week), with 95% intervals. Cells that "
        "rest on 1 to 10 people or events are suppressed, with a second cell where one alone could be worked "
        "out from the total.</p>")
    for s in c.scenarios:
        add(f"<h3>{escape(s.name)}</h3>")
        outcomes = list(dict.fromkeys(g.outcome for g in s.gap))
        kinds = list(dict.fromkeys(g.group_kind for g in s.gap))
        for kind in kinds:
            add(f"<table><thead><tr><th>{escape(kind.replace('_', ' '))}</th><th>members</th>"
                + "".join(f"<th>{escape(o)}</th>" for o in outcomes) + "</tr></thead><tbody>")
            values = list(dict.fromkeys(g.group_value for g in s.gap if g.group_kind == kind))
            for val in values:
                cells = {g.outcome: g for g in s.gap if g.group_kind == kind and g.group_value == val}
                first = next(iter(cells.values()))
                if first.members == 0:
                    continue
                mem = "<span class='sup'>suppressed</span>" if first.members is None else fmt(first.members)
                row = [f"<td>{escape(val)}</td><td>{mem}</td>"]
                for o in outcomes:
                    g = cells[o]
                    row.append("<td class='sup'>suppressed</td>" if g.difference is None else
                               f"<td>{fmt_signed(g.difference.mean)} ({fmt_signed(g.difference.low)} to "
                               f"{fmt_signed(g.difference.high)})</td>")
                add("<tr>" + "".join(row) + "</tr>")
            add("</tbody></table>")
    add("</section>")

    add("<section><h2 id='method'>How these figures were made</h2><ul class='note'>"
        "<li>Runs: " + ", ".join(f"<span class='swatch' style='background:{PALETTE[i % len(PALETTE)]}'></span>"
                                  f"{escape(n)} ({escape(r)})" for i, (n, r) in enumerate(zip(names, runs))) + "</li>"
        "<li>Each difference is the mean over replications of the scenario's value minus the baseline's in the "
        "same replication, with a t-interval; precision is the half-width of the scenario's own interval "
        "relative to its value.</li><li>Failure probabilities use Wilson score intervals.</li></ul></section>")
    return "".join(h)


def find_browser() -> str | None:
    """A Chromium or Chrome executable (CARETWIN_BROWSER wins), for PDFs and screenshots."""
    env = os.environ.get("CARETWIN_BROWSER")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_render(html: Path, *, pdf: Path | None = None, png: Path | None = None,
                   size: tuple[int, int] = (1280, 2400)) -> None:
    """Print a local HTML file to PDF or PNG with headless Chromium, with networking switched off."""
    browser = find_browser()
    if browser is None:
        raise CaretwinError("a PDF needs Chromium or Chrome (e.g. `apt-get install chromium`), or set "
                            "CARETWIN_BROWSER to its path; the HTML report needs nothing")
    with tempfile.TemporaryDirectory() as profile:
        args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", f"--user-data-dir={profile}"]
        if pdf is not None:
            args += [f"--print-to-pdf={pdf}", "--no-pdf-header-footer"]
        if png is not None:
            args += [f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", "--hide-scrollbars"]
        proc = subprocess.run(args + [html.absolute().as_uri()], capture_output=True, text=True, timeout=120)
    out = pdf if pdf is not None else png
    if proc.returncode != 0 or out is None or not out.exists():
        raise CaretwinError(f"{browser} could not render {html}: {proc.stderr.strip()[-400:]}")


def write_report(c: Comparison, html: Path, pdf: Path | None = None, title: str = "Scenario comparison") -> Path:
    """Write the HTML report (written aside, then renamed) and, if asked, its PDF."""
    html = Path(html)
    html.parent.mkdir(parents=True, exist_ok=True)
    tmp = html.with_name(f".{html.name}.tmp")
    tmp.write_text(render_html(c, title), encoding="utf-8")
    os.replace(tmp, html)
    if pdf is not None:
        pdf = Path(pdf)
        part = pdf.with_name(f".{pdf.name}.tmp.pdf")
        try:
            browser_render(html, pdf=part)
            os.replace(part, pdf)
        finally:
            part.unlink(missing_ok=True)
    return html


def report(workspace: Workspace | str, run_ids: list[str], html: str | Path, pdf: str | Path | None = None,
           title: str = "Scenario comparison", *, actor: Actor | None = None) -> Path:
    """Compare stored runs (the first is the baseline) and write the board report; what left the workspace is
    recorded as done by `actor` (the operating-system user unless given)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    try:
        path = write_report(compare(ws, run_ids), Path(html), Path(pdf) if pdf else None, title)
        _record(ws, actor, run_ids, path.name, pdf=bool(pdf))
        return path
    finally:
        if ws is not workspace:
            ws.close()


def report_html(ws: Workspace, run_ids: list[str], title: str = "Scenario comparison", *,
                actor: Actor | None = None, file: str = "download") -> str:
    """The board report of stored runs as one page, for a download; it leaving is recorded like a written one."""
    html = render_html(compare(ws, run_ids), title)
    _record(ws, actor, run_ids, file, pdf=False)
    return html


def _record(ws: Workspace, actor: Actor | None, run_ids: list[str], file: str, *, pdf: bool) -> None:
    record_event(ws, actor or Actor.local("planning"), kind="export", action="R", subtype="report.write",
                 entity_type="report", entity_id=file, detail={"runs": run_ids, "pdf": pdf})

"""The quality report as one self-contained HTML page, written for people who do not read SQL."""

from __future__ import annotations

import json
from html import escape

from caretwin.quality.checks import CATEGORIES, SEVERITIES, CheckResult, QualityReport

_CSS = """
body{font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1b1b1b;max-width:72rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.7rem;margin-bottom:.2rem} h2{margin-top:2rem;border-bottom:2px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.5rem 0} th,td{border:1px solid #ccc;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0} td.n{text-align:right;font-variant-numeric:tabular-nums}
.fail{background:#fde2e1} .pass{background:#e3f4e1} .na{color:#555}
.verdict{font-size:1.15rem;padding:.75rem 1rem;border-left:6px solid #b3261e;background:#fff4f3}
.verdict.ok{border-color:#2e7d32;background:#f1f8f1}
code{font-size:.85em;overflow-wrap:anywhere} td:last-child{max-width:18rem} details{margin:.5rem 0} .muted{color:#555;font-size:.9rem}
"""


def _coverage(report: QualityReport) -> str:
    """A caveat when many checks could not run: a pass then says nothing about what the data do not hold."""
    na = sum(r.status == "not_applicable" for r in report.results)
    n = len(report.results)
    if n and na * 2 >= n:
        return (f" But {na:,} of {n:,} checks could not run because the data do not hold what they test (tables or "
                "fields that are empty): the data were checked only where they exist, and what is missing cannot be "
                "calibrated from them.")
    return ""


def _verdict(report: QualityReport) -> tuple[str, bool]:
    fatal = report.failed(("fatal",))
    convention = report.failed(("convention",))
    if fatal:
        return (f"{len(fatal)} fatal check{'s' if len(fatal) != 1 else ''} failed. Rows that break them were kept out of "
                f"the twin (quarantined) or are still in it: fix the source before calibrating.", False)
    if convention:
        return (f"No fatal problems. {len(convention)} convention check{'s' if len(convention) != 1 else ''} failed: "
                "the data can be used, with the caveats listed below." + _coverage(report), True)
    return "No fatal or convention problems were found." + _coverage(report), True


def _row(r: CheckResult) -> str:
    cls = {"fail": "fail", "pass": "pass"}.get(r.status, "na")
    examples = "; ".join(escape(json.dumps(e.get("key", e), sort_keys=True)) for e in r.examples[:3])
    repaired = f"<br><span class=muted>{r.repaired:,} repaired at load</span>" if r.repaired else ""
    return (f"<tr class={cls}><td>{escape(r.description)}<br><code>{escape(r.check)}</code></td><td>{escape(r.category)} / "
            f"{escape(r.context)}</td><td>{escape(r.severity)}</td><td>{escape(r.status.replace('_', ' '))}</td>"
            f"<td class=n>{r.violating:,} of {r.denominator:,}{repaired}</td><td class=n>{r.pct:g}%</td>"
            f"<td class=n>{r.threshold_pct:g}%<br><span class=muted>{escape(r.threshold_note)}</span></td>"
            f"<td><code>{examples}</code></td></tr>")


_HEAD = ("<tr><th>Check</th><th>Category / context</th><th>Severity</th><th>Status</th><th>Rows violating</th>"
         "<th>Share</th><th>Threshold</th><th>Examples (pseudonymised keys)</th></tr>")


def render_html(report: QualityReport) -> str:
    summary = report.summary()
    repaired = [r for r in report.results if r.repaired]
    fixes = "".join(f"<tr><td>{escape(r.description)}<br><code>{escape(r.check)}</code></td><td class=n>{r.repaired:,}</td></tr>"
                    for r in repaired)
    text, ok = _verdict(report)
    grid = ["<tr><th>Category</th>" + "".join(f"<th>{s}</th>" for s in SEVERITIES) + "</tr>"]
    for c in CATEGORIES:
        cells = []
        for s in SEVERITIES:
            rs = [r for r in report.results if r.category == c and r.severity == s]
            failed = sum(1 for r in rs if r.status == "fail")
            cells.append(f"<td class='n {'fail' if failed else 'pass' if rs else 'na'}'>{failed} failed of {len(rs)}</td>")
        grid.append(f"<tr><th>{c}</th>{''.join(cells)}</tr>")
    failed_rows = "".join(_row(r) for r in sorted(report.failed(), key=lambda r: (SEVERITIES.index(r.severity), r.check)))
    rep = [r for r in report.results if r.check.startswith("representation:")]
    rep_rows = "".join(
        f"<tr class={'fail' if r.status == 'fail' else 'pass'}><td>{escape(str(r.field))}</td><td>{escape(str(r.detail.get('group')))}</td>"
        f"<td class=n>{r.detail.get('members', 0):,}</td><td class=n>{(r.detail.get('share') or 0) * 100:.1f}%</td>"
        f"<td class=n>{r.detail.get('reference_share', 0) * 100:.1f}%</td><td class=n>{r.detail.get('ratio')}</td></tr>"
        for r in rep)
    all_rows = "".join(_row(r) for r in report.results)
    return f"""<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width,initial-scale=1">
<title>Data quality report</title><style>{_CSS}</style></head><body>
<h1>Data quality report</h1>
<p class=muted>Workspace {escape(report.workspace)} &middot; {escape(report.generated_at)} &middot; {summary['checks']} checks in {report.seconds:.1f} s</p>
<p class="verdict{' ok' if ok else ''}">{escape(text)}</p>
<h2>Overview</h2>
<p>Checks follow Kahn's categories: <b>conformance</b> (values have the right form), <b>completeness</b> (values and periods are
present), <b>plausibility</b> (values are believable). <b>Fatal</b> problems stop rows from being used; <b>convention</b>
problems are worth fixing; <b>characterisation</b> describes the data.</p>
<table>{''.join(grid)}</table>
<p>{summary['pass']} passed, {summary['fail']} failed, {summary['not_applicable']} not applicable, {summary['error']} could not run.</p>
<h2>What failed</h2>
{('<table>' + _HEAD + failed_rows + '</table>') if failed_rows else '<p>Nothing failed.</p>'}
<h2>What the loads repaired</h2>
{('<p>Values changed under a documented cleansing rule (see docs/ingest.md); the source should still be fixed.</p>'
  '<table><tr><th>Check</th><th>Rows repaired</th></tr>' + fixes + '</table>') if fixes else '<p>Nothing needed repair.</p>'}
<h2>Who is in the data</h2>
{('<table><tr><th>Dimension</th><th>Group</th><th>Members</th><th>Share</th><th>Reference</th><th>Ratio</th></tr>' + rep_rows + '</table>')
 if rep_rows else '<p>No reference distribution (region populations or a census table) was available.</p>'}
<h2>Every check</h2>
<details><summary>Show all {summary['checks']} checks</summary><table>{_HEAD}{all_rows}</table></details>
</body></html>
"""

"""Reports: the board's decision report (HTML and PDF)."""

from caretwin.reports.board import render_html, report, write_report

__all__ = ["render_html", "report", "write_report"]

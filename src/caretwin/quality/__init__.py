"""Quality: checks over the workspace (and what loads quarantined or repaired), reports, lineage."""

from caretwin.quality.checks import CheckResult, QualityReport, Thresholds, run_quality
from caretwin.quality.lineage import lineage
from caretwin.quality.report import render_html

__all__ = ["CheckResult", "QualityReport", "Thresholds", "lineage", "render_html", "run_quality"]

"""Calibration: engine parameters estimated from the workspace's history, with their uncertainty."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from caretwin.calibrate import data
from caretwin.calibrate.estimate import LEVEL, Estimate
from caretwin.workspace import Workspace

# (module, function): each estimates one mechanism's parameters; one that cannot (thin data) is reported
ESTIMATORS = (("demand", "estimate"), ("utilisation", "ed"), ("utilisation", "admissions"), ("utilisation", "crisis"),
              ("hospital", "estimate"), ("workforce", "estimate"), ("population", "deaths"),
              ("population", "enrolment"), ("population", "housing"), ("population", "services"),
              ("operations", "authorisation"), ("operations", "provider_exit"), ("costs", "estimate"))


@dataclass
class Calibration:
    """Every estimate, and the window of data they came from."""

    window: data.Window
    estimates: list[Estimate] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (estimator, why it estimated nothing)

    def values(self) -> dict[str, Any]:
        return {e.name: e.value for e in self.estimates if e.supported}

    def draw(self, k: int) -> dict[str, Any]:
        return {e.name: e.draw(k) for e in self.estimates if e.supported}

    def __getitem__(self, name: str) -> Estimate:
        return next(e for e in self.estimates if e.name == name)

    def records(self) -> list[dict[str, Any]]:
        return [e.record() for e in self.estimates]

    def draws(self, n: int) -> list[dict[str, Any]]:
        """n parameter draws (each a name -> value mapping of the supported estimates)."""
        return [self.draw(k) for k in range(n)]


def calibrate(ws: Workspace, *, until: date | None = None, draws: int = 200, seed: int = 0) -> Calibration:
    """Estimate the engine parameters the workspace's data support, up to `until` (default: the last day)."""
    from importlib import import_module

    w = data.window(ws, until)
    data.build(ws.con, w)
    cal = Calibration(w)
    for i, (module, function) in enumerate(ESTIMATORS):
        estimator = getattr(import_module(f"caretwin.calibrate.{module}"), function)
        try:
            cal.estimates += estimator(ws.con, w, draws, seed + 100 * i)
        except (ValueError, np.linalg.LinAlgError) as exc:  # thin or degenerate data: say so, keep defaults
            cal.skipped.append((f"{module}.{function}", str(exc).split("\n")[0]))
    return cal


__all__ = ["LEVEL", "Calibration", "Estimate", "calibrate"]

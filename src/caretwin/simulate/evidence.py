"""What a run rests on: which of the engine's parameters came from this workspace's data and which are
defaults (with their sources) or an analyst's values, and, for each outcome, the share of the parameters
behind it that the data informed.

A run records its evidence when it is stored; comparisons, reports and the dashboard read it back, so an
outcome that rests mainly on defaults says so wherever it is shown.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from caretwin.simulate.calibrated import sidecar
from caretwin.simulate.engine import declared_params

# the mechanisms behind each area of outcomes a comparison reports (DESIGN section 4); costs are priced use
DRIVERS: dict[str, tuple[str, ...]] = {
    "waits": ("demand", "authorisation", "matching", "workforce"),
    "missed visits": ("delivery", "workforce"),
    "avoidable utilisation": ("utilisation", "hospital", "crisis", "mortality", "housing"),
    "workforce": ("workforce", "stability"),
    "costs": ("costs", "utilisation", "hospital", "demand", "workforce"),
}
MOSTLY = 0.5  # an outcome rests mainly on defaults when fewer than half of the parameters behind it were estimated
# parameters a scenario sets (scenario multipliers, policies) are not evidence either way
NEUTRAL_PREFIXES = ("rel_referrals", "rel_hiring", "rel_enrolment", "waitlist_priority")


@dataclass
class Evidence:
    """Where each of a run's parameters came from: `estimated` (name -> the data it was estimated from),
    `set` (name -> the file an analyst set it in) and `defaults` (name -> the default's source)."""

    basis: str  # "calibrated", "defaults" or a parameter file
    estimated: dict[str, str] = field(default_factory=dict)
    set: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)

    def of_modules(self, modules: tuple[str, ...]) -> tuple[int, int]:
        """(estimated, all) among the parameters the named modules declare."""
        declared = declared_params().declared
        names = [n for n, (mod, _) in declared.items() if mod in modules and not n.startswith(NEUTRAL_PREFIXES)]
        return sum(n in self.estimated for n in names), len(names)

    def rests_on_defaults(self, area: str) -> bool:
        k, n = self.of_modules(DRIVERS.get(area, ()))
        return n > 0 and k < MOSTLY * n

    def summary(self) -> str:
        n = len(self.estimated) + len(self.set) + len(self.defaults)
        if not self.estimated and not self.set:
            return f"every one of the {n} parameters is a documented default; none was estimated from this workspace"
        parts = [f"{len(self.estimated)} of {n} parameters estimated from this workspace's data"]
        if self.set:
            parts.append(f"{len(self.set)} set in {next(iter(self.set.values()))}")
        parts.append(f"{len(self.defaults)} documented defaults")
        return ", ".join(parts)

    def short(self) -> str:
        """A few words for a list of runs."""
        if self.basis == "calibrated":
            return f"calibrated ({len(self.estimated)} estimated, {len(self.defaults)} defaults)"
        if self.basis == "defaults":
            return "defaults only"
        return f"{Path(self.basis).name} ({len(self.set)} set, {len(self.defaults)} defaults)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Evidence | None:
        return cls(**d) if d else None


def evidence_of(source: str, params: Any = None) -> Evidence:
    """The evidence behind a run's parameters, from where they came: "defaults", or a parameter file (with the
    calibration record written beside it, when calibration wrote it). `params` (the run's Params) names the
    values a hand-written file changed."""
    declared = declared_params().declared
    sources = {n: p.source or "no source given" for n, (_, p) in declared.items()}
    if source == "defaults":
        return Evidence("defaults", defaults=sources)
    side = sidecar(Path(source))
    if side.exists():
        record = json.loads(side.read_text())
        estimated = {e["name"]: e.get("data") or "this workspace" for e in record["estimates"] if e.get("supported")}
        return Evidence("calibrated", estimated=estimated,
                        defaults={n: s for n, s in sources.items() if n not in estimated})
    changed = set(params.changed()) if params is not None else set()
    return Evidence(source, set={n: source for n in changed},
                    defaults={n: s for n, s in sources.items() if n not in changed})

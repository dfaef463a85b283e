"""Scenarios: what-if files run against the baseline, paired comparisons and virtual pilots."""

from caretwin.scenarios.compare import Comparison, compare
from caretwin.scenarios.pilot import PilotResult, run_pilot
from caretwin.scenarios.run import ScenarioRun, check_scenarios, run_scenarios
from caretwin.scenarios.spec import Scenario, load_scenario

__all__ = ["Comparison", "PilotResult", "Scenario", "ScenarioRun", "check_scenarios", "compare", "load_scenario",
           "run_pilot", "run_scenarios"]

"""The simulation engine: the twin's mechanisms over struct-of-arrays state, with reproducible replications."""

from caretwin.simulate.api import headline, simulate
from caretwin.simulate.engine import (
           Engine,
           Module,
           Sim,
           declared_params,
           default_modules,
)
from caretwin.simulate.initial import from_workspace
from caretwin.simulate.params import Param, Params
from caretwin.simulate.runner import RunResult, run_replications
from caretwin.simulate.state import World

__all__ = ["Engine", "Module", "Param", "Params", "RunResult", "Sim", "World", "declared_params", "default_modules",
           "from_workspace", "headline", "run_replications", "simulate"]

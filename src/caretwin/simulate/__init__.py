"""The simulation engine: the twin's mechanisms over struct-of-arrays state, with reproducible replications."""

from caretwin.simulate.engine import Engine, Module, Sim, declared_params, default_modules
from caretwin.simulate.params import Param, Params
from caretwin.simulate.state import World

__all__ = ["Engine", "Module", "Param", "Params", "Sim", "World", "declared_params", "default_modules"]
